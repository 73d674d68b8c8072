/* Unit tests for the store interface and its file:// back end
 * (src/store/store.h STORE-ST1 to STORE-ST3, store.c STORE-S1, store_file.c STORE-F1 to STORE-F5, STORE-F9). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "store/store.h"
#include "util/error.h"

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

typedef struct {
    char dir[256];
    dm_store *s;
} fixture;

static int rm_rf(const char *path)
{
    DIR *d = opendir(path);
    if (d) {
        struct dirent *de;
        while ((de = readdir(d)) != NULL) {
            if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
                continue;
            char sub[PATH_MAX];
            snprintf(sub, sizeof sub, "%s/%s", path, de->d_name);
            rm_rf(sub);
        }
        closedir(d);
        return rmdir(path);
    }
    return unlink(path);
}

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    snprintf(f->dir, sizeof f->dir, "/tmp/dm_test_store.XXXXXX");
    if (!f || !mkdtemp(f->dir))
        return -1;
    char url[PATH_MAX + 16], err[256];
    snprintf(url, sizeof url, "file://%s/root", f->dir);
    if (store_open(url, &f->s, err, sizeof err) != 0)
        return -1;
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    store_close(f->s);
    rm_rf(f->dir);
    free(f);
    return 0;
}

static void put_ok(dm_store *s, const char *key, const char *data)
{
    char err[256] = "";
    int rc = store_put(s, key, data, strlen(data), err, sizeof err);
    if (rc != 0)
        fail_msg("put %s: %d %s", key, rc, err);
}

static void get_is(dm_store *s, const char *key, const char *want)
{
    char err[256] = "";
    void *data = NULL;
    size_t len = 0;
    int rc = store_get(s, key, 1 << 20, &data, &len, err, sizeof err);
    if (rc != 0)
        fail_msg("get %s: %d %s", key, rc, err);
    assert_int_equal(len, strlen(want));
    assert_memory_equal(data, want, len);
    free(data);
}

static void test_round_trip(void **state)
{
    fixture *f = *state;
    char err[256];
    put_ok(f->s, "a", "hello");
    put_ok(f->s, "packs/3f/3f00", "pack-bytes");
    put_ok(f->s, "empty", "");
    get_is(f->s, "a", "hello");
    get_is(f->s, "packs/3f/3f00", "pack-bytes");
    get_is(f->s, "empty", "");

    char buf[8] = {0};
    assert_int_equal(store_get_range(f->s, "packs/3f/3f00", 5, 5, buf, err, sizeof err), 0);
    assert_memory_equal(buf, "bytes", 5);
    assert_int_equal(store_get_range(f->s, "packs/3f/3f00", 0, 0, buf, err, sizeof err), 0);
    /* a range past the end is a protocol error, not a short read */
    assert_int_equal(store_get_range(f->s, "packs/3f/3f00", 6, 5, buf, err, sizeof err),
                     DM_E_PROTOCOL);
    assert_int_equal(store_get_range(f->s, "nope", 0, 1, buf, err, sizeof err), DM_E_NOT_FOUND);

    int ex = -1;
    assert_int_equal(store_exists(f->s, "a", &ex, err, sizeof err), 0);
    assert_int_equal(ex, 1);
    assert_int_equal(store_exists(f->s, "packs/3f", &ex, err, sizeof err), 0);
    assert_int_equal(ex, 0); /* a directory is not an object */
    assert_int_equal(store_exists(f->s, "a/b", &ex, err, sizeof err), 0);
    assert_int_equal(ex, 0);

    assert_int_equal(store_delete(f->s, "a", err, sizeof err), 0);
    assert_int_equal(store_exists(f->s, "a", &ex, err, sizeof err), 0);
    assert_int_equal(ex, 0);
    assert_int_equal(store_delete(f->s, "a", err, sizeof err), 0); /* missing: 0 */
    assert_int_equal(store_delete(f->s, "x/y/z", err, sizeof err), 0);
    assert_string_equal(store_url(f->s) + strlen(store_url(f->s)) - 5, "/root");
}

static void test_missing(void **state)
{
    fixture *f = *state;
    char err[256] = "";
    void *data = (void *)0x1;
    size_t len = 77;
    assert_int_equal(store_get(f->s, "snapshots/none", 100, &data, &len, err, sizeof err),
                     DM_E_NOT_FOUND);
    assert_ptr_equal(data, (void *)0x1); /* outputs untouched on failure */
    assert_int_equal(len, 77);
    assert_non_null(strstr(err, "snapshots/none"));
}

/* STORE-ST2: the first content wins; the second put still succeeds. */
static void test_immutable(void **state)
{
    fixture *f = *state;
    put_ok(f->s, "index/abc", "first");
    put_ok(f->s, "index/abc", "second, longer");
    get_is(f->s, "index/abc", "first");
    char err[256];
    /* a key that is a directory is not an object: put fails, nothing changes */
    assert_int_not_equal(store_put(f->s, "index", "x", 1, err, sizeof err), 0);
}

/* STORE-ST3 */
static void test_max_len(void **state)
{
    fixture *f = *state;
    char err[256];
    void *data = NULL;
    size_t len = 0;
    put_ok(f->s, "big", "0123456789");
    assert_int_equal(store_get(f->s, "big", 9, &data, &len, err, sizeof err), DM_E_TOO_BIG);
    assert_null(data);
    assert_int_equal(store_get(f->s, "big", 10, &data, &len, err, sizeof err), 0);
    assert_int_equal(len, 10);
    free(data);
}

static void bad(dm_store *s, const char *key)
{
    char err[256], buf[4];
    void *data = NULL;
    size_t len;
    int ex;
    if (store_key_valid(key))
        fail_msg("key \"%s\" accepted", key);
    assert_int_equal(store_put(s, key, "x", 1, err, sizeof err), DM_E_INVALID);
    assert_int_equal(store_get(s, key, 10, &data, &len, err, sizeof err), DM_E_INVALID);
    assert_int_equal(store_get_range(s, key, 0, 1, buf, err, sizeof err), DM_E_INVALID);
    assert_int_equal(store_exists(s, key, &ex, err, sizeof err), DM_E_INVALID);
    assert_int_equal(store_delete(s, key, err, sizeof err), DM_E_INVALID);
}

/* STORE-S1 */
static void test_bad_keys(void **state)
{
    fixture *f = *state;
    const char *keys[] = {"",           "../x",   "a/../b",    "..",          ".",
                          "/abs",       "a//b",   "a/",        "./a",         ".hidden",
                          "a/.tmp.1.2", "sp ace", "new\nline", "back\\slash", "a:b",
                          "q?",         "star*",  "\xc3\xa9"};
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++)
        bad(f->s, keys[i]);
    char longkey[STORE_KEY_MAX + 1];
    memset(longkey, 'a', STORE_KEY_MAX);
    longkey[STORE_KEY_MAX] = '\0';
    bad(f->s, longkey);
    longkey[STORE_KEY_MAX - 1] = '\0'; /* 255 bytes: the longest key */
    assert_true(store_key_valid(longkey));
    assert_true(store_key_valid("packs/3f/3f9a-x_y.Z"));
    assert_true(store_key_valid("a.b"));
    /* nothing appeared outside the root */
    char outside[PATH_MAX];
    snprintf(outside, sizeof outside, "%s/x", f->dir);
    assert_int_not_equal(access(outside, F_OK), 0);
}

typedef struct {
    char keys[16][STORE_KEY_MAX];
    uint64_t sizes[16];
    int n;
} seen;

static int collect(const char *key, uint64_t size, void *ctx)
{
    seen *s = ctx;
    if (s->n >= 16)
        return -1;
    snprintf(s->keys[s->n], STORE_KEY_MAX, "%s", key);
    s->sizes[s->n++] = size;
    return 0;
}

static int has_key(const seen *s, const char *key)
{
    for (int i = 0; i < s->n; i++)
        if (!strcmp(s->keys[i], key))
            return 1;
    return 0;
}

static int stop_at_first(const char *key, uint64_t size, void *ctx)
{
    (void)key, (void)size;
    ++*(int *)ctx;
    return 42;
}

static void test_list(void **state)
{
    fixture *f = *state;
    char err[256];
    put_ok(f->s, "packs/3f/3f01", "1");
    put_ok(f->s, "packs/3f/3f02", "22");
    put_ok(f->s, "packs/40/4001", "333");
    put_ok(f->s, "index/i1", "4444");
    put_ok(f->s, "top", "5");
    /* a stray temp file (as a crashed put leaves) is not listed */
    char tmp[PATH_MAX];
    snprintf(tmp, sizeof tmp, "%s/root/packs/3f/.tmp.1.1", f->dir);
    FILE *fp = fopen(tmp, "w");
    assert_non_null(fp);
    fclose(fp);

    seen s = {0};
    assert_int_equal(store_list(f->s, "packs/", collect, &s, err, sizeof err), 0);
    assert_int_equal(s.n, 3);
    assert_true(has_key(&s, "packs/3f/3f01") && has_key(&s, "packs/40/4001"));
    memset(&s, 0, sizeof s);
    assert_int_equal(store_list(f->s, "packs/3f", collect, &s, err, sizeof err), 0);
    assert_int_equal(s.n, 2);
    memset(&s, 0, sizeof s);
    assert_int_equal(store_list(f->s, "", collect, &s, err, sizeof err), 0);
    assert_int_equal(s.n, 5);
    for (int i = 0; i < s.n; i++)
        if (!strcmp(s.keys[i], "index/i1"))
            assert_int_equal(s.sizes[i], 4);
    memset(&s, 0, sizeof s);
    assert_int_equal(store_list(f->s, "snapshots/", collect, &s, err, sizeof err), 0);
    assert_int_equal(s.n, 0);
    int calls = 0;
    assert_int_equal(store_list(f->s, "packs", stop_at_first, &calls, err, sizeof err), 42);
    assert_int_equal(calls, 1);
    assert_int_equal(store_list(f->s, "../", collect, &s, err, sizeof err), DM_E_INVALID);
    assert_int_equal(store_list(f->s, "/etc", collect, &s, err, sizeof err), DM_E_INVALID);
}

static int count_dot_files(const char *path)
{
    int n = 0;
    DIR *d = opendir(path);
    if (!d)
        return 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
            continue;
        char sub[PATH_MAX];
        snprintf(sub, sizeof sub, "%s/%s", path, de->d_name);
        if (de->d_name[0] == '.')
            n++;
        n += count_dot_files(sub);
    }
    closedir(d);
    return n;
}

/* STORE-F1: no temp file is left behind, whether the put wrote or kept. */
static void test_no_temp_left(void **state)
{
    fixture *f = *state;
    char key[64], root[PATH_MAX];
    for (int i = 0; i < 50; i++) {
        snprintf(key, sizeof key, "d%d/k%d", i % 5, i);
        put_ok(f->s, key, "data");
        put_ok(f->s, key, "again");
    }
    snprintf(root, sizeof root, "%s/root", f->dir);
    assert_int_equal(count_dot_files(root), 0);
}

/* STORE-F4: a symlink planted inside the store is not followed. */
static void test_symlink_not_followed(void **state)
{
    fixture *f = *state;
    char link_path[PATH_MAX], target[PATH_MAX], err[256];
    snprintf(target, sizeof target, "%s/secret", f->dir);
    FILE *fp = fopen(target, "w");
    assert_non_null(fp);
    fputs("secret", fp);
    fclose(fp);
    snprintf(link_path, sizeof link_path, "%s/root/evil", f->dir);
    assert_int_equal(symlink(target, link_path), 0);
    void *data = NULL;
    size_t len;
    assert_int_equal(store_get(f->s, "evil", 100, &data, &len, err, sizeof err), DM_E_NOT_FOUND);
    assert_null(data);
}

typedef struct {
    const char *store, *op, *code;
    uint64_t n;
} stat_query;

static void on_stat(const char *store, const char *op, const char *code, uint64_t n, void *ctx)
{
    stat_query *q = ctx;
    if (!strcmp(store, q->store) && !strcmp(op, q->op) && !strcmp(code, q->code))
        q->n = n;
}

/* The count of (file, op, code) so far (store_stats.c STORE-SS2). */
static uint64_t file_count(const char *op, const char *code)
{
    stat_query q = {"file", op, code, 0};
    store_stats_each(on_stat, &q);
    return q.n;
}

static int count_key(const char *key, uint64_t size, void *ctx)
{
    (void)key, (void)size;
    ++*(int *)ctx;
    return 0;
}

/* STORE-F9: each operation is counted under its op with its result. */
static void test_counted(void **state)
{
    fixture *f = *state;
    char err[256], buf[4];
    int exists, listed = 0;
    uint64_t put = file_count("put", "ok"), get = file_count("get", "ok");
    uint64_t missing = file_count("get", "not_found"), head = file_count("head", "ok");
    uint64_t list = file_count("list", "ok"), del = file_count("delete", "ok");
    uint64_t sync = file_count("sync", "ok"), bad = file_count("get", "error");
    put_ok(f->s, "c/one", "1234");
    get_is(f->s, "c/one", "1234");
    assert_int_equal(store_get_range(f->s, "c/one", 0, 4, buf, err, sizeof err), 0);
    assert_int_equal(store_get_range(f->s, "nope", 0, 1, buf, err, sizeof err), DM_E_NOT_FOUND);
    assert_int_equal(store_exists(f->s, "c/one", &exists, err, sizeof err), 0);
    assert_int_equal(store_list(f->s, "c/", count_key, &listed, err, sizeof err), 0);
    assert_int_equal(listed, 1);
    assert_int_equal(store_sync(f->s, err, sizeof err), 0);
    assert_int_equal(store_delete(f->s, "c/one", err, sizeof err), 0);
    assert_int_equal(store_get_range(f->s, "a//b", 0, 1, buf, err, sizeof err), DM_E_INVALID);
    assert_int_equal(file_count("put", "ok") - put, 1);
    assert_int_equal(file_count("get", "ok") - get, 2); /* get and get_range */
    assert_int_equal(file_count("get", "not_found") - missing, 1);
    assert_int_equal(file_count("head", "ok") - head, 1);
    assert_int_equal(file_count("list", "ok") - list, 1);
    assert_int_equal(file_count("sync", "ok") - sync, 1);
    assert_int_equal(file_count("delete", "ok") - del, 1);
    assert_int_equal(file_count("get", "error") - bad, 0); /* refused keys reach no back end */
    assert_int_equal(store_stats_retries(), 0);            /* file:// never retries */
}

static void test_open_schemes(void **state)
{
    (void)state;
    dm_store *s = NULL;
    char err[256] = "";
    assert_int_equal(store_open("s4://bucket/x", &s, err, sizeof err), DM_E_INVALID);
    assert_non_null(strstr(err, "file://"));
    assert_int_equal(store_open("", &s, err, sizeof err), DM_E_INVALID);
    assert_null(s);
    store_close(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_round_trip, setup, teardown),
        cmocka_unit_test_setup_teardown(test_missing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_immutable, setup, teardown),
        cmocka_unit_test_setup_teardown(test_max_len, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_keys, setup, teardown),
        cmocka_unit_test_setup_teardown(test_list, setup, teardown),
        cmocka_unit_test_setup_teardown(test_no_temp_left, setup, teardown),
        cmocka_unit_test_setup_teardown(test_symlink_not_followed, setup, teardown),
        cmocka_unit_test_setup_teardown(test_counted, setup, teardown),
        cmocka_unit_test(test_open_schemes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

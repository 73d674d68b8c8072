/* store/store_s3.c settings and store/store_mirror.c, without a server:
 *   - s3:// URLs and settings are validated at open, nothing is sent (S3-8);
 *   - store_url() names bucket, prefix and endpoint, never a secret (STORE-S2, S3-1);
 *   - the B2 variables alone give credentials, endpoint and region;
 *   - an unreachable endpoint fails with one line after the tries (S3-7),
 *     each try counted for /metrics (store_stats.c STORE-SS2 to STORE-SS3), and each
 *     retry logged with its reason;
 *   - a multipart ETag is compared as S3 documents it (S3-11);
 *   - the settings handed to another process (store_env.c STORE-S5 to STORE-S7)
 *     and presigned URLs (STORE-ST7);
 *   - the mirror writes both stores and reads the mirror when the primary
 *     lacks an object (STORE-M1, STORE-M2) or its copy is damaged (STORE-ST6), and reports a
 *     mirror failure as its own (STORE-M1).
 * The real server is in tests/integration/test_s3_store.sh. */
#define _XOPEN_SOURCE 700 /* nftw */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "store/s3_http.h"
#include "store/store.h"
#include "util/error.h"

#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char *vars[] = {"AWS_ACCESS_KEY_ID",
                             "AWS_SECRET_ACCESS_KEY",
                             "AWS_SESSION_TOKEN",
                             "B2_ENDPOINT",
                             "B2_KEY_ID",
                             "B2_APPLICATION_KEY",
                             "B2_BUCKET",
                             "DUMONT_S3_ENDPOINT",
                             "DUMONT_S3_REGION",
                             "DUMONT_S3_ADDRESSING",
                             "DUMONT_S3_PART_SIZE",
                             "DUMONT_S3_CONCURRENCY",
                             "DUMONT_S3_TRIES",
                             "DUMONT_S3_CA_FILE",
                             "DUMONT_S3_MULTIPART_THRESHOLD",
                             "DUMONT_STORE_MIRROR"};

static int clear_env(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof vars / sizeof vars[0]; i++)
        unsetenv(vars[i]);
    return 0;
}

static void test_open_validates(void **state)
{
    (void)state;
    char err[512];
    dm_store *s = NULL;
    assert_int_equal(store_open("s3://bucket/p", &s, err, sizeof err), DM_E_UNAUTHORIZED);
    assert_non_null(strstr(err, "no credentials"));
    setenv("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE", 1);
    setenv("AWS_SECRET_ACCESS_KEY", "very-secret-key", 1);
    assert_int_equal(store_open("s3://b/p", &s, err, sizeof err), DM_E_INVALID); /* short bucket */
    assert_int_equal(store_open("s3://bu*cket/p", &s, err, sizeof err), DM_E_INVALID);
    assert_int_equal(store_open("s3://bucket/../x", &s, err, sizeof err), DM_E_INVALID);
    assert_int_equal(store_open("s3://bucket/a//b", &s, err, sizeof err), DM_E_INVALID);
    setenv("DUMONT_S3_ENDPOINT", "ftp://host", 1);
    assert_int_equal(store_open("s3://bucket/p", &s, err, sizeof err), DM_E_INVALID);
    setenv("DUMONT_S3_ENDPOINT", "http://host/path", 1);
    assert_int_equal(store_open("s3://bucket/p", &s, err, sizeof err), DM_E_INVALID);
    setenv("DUMONT_S3_ENDPOINT", "http://127.0.0.1:9000", 1);
    setenv("DUMONT_S3_PART_SIZE", "1024", 1); /* below S3's 5 MiB minimum */
    assert_int_equal(store_open("s3://bucket/p", &s, err, sizeof err), DM_E_INVALID);
    unsetenv("DUMONT_S3_PART_SIZE");
    setenv("DUMONT_S3_ADDRESSING", "sideways", 1);
    assert_int_equal(store_open("s3://bucket/p", &s, err, sizeof err), DM_E_INVALID);
    unsetenv("DUMONT_S3_ADDRESSING");
    setenv("DUMONT_S3_CONCURRENCY", "0", 1);
    assert_int_equal(store_open("s3://bucket/p", &s, err, sizeof err), DM_E_INVALID);
    unsetenv("DUMONT_S3_CONCURRENCY");
    assert_null(s);
}

static void test_display_has_no_secret(void **state)
{
    (void)state;
    char err[512];
    dm_store *s = NULL;
    setenv("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE", 1);
    setenv("AWS_SECRET_ACCESS_KEY", "very-secret-key", 1);
    setenv("AWS_SESSION_TOKEN", "session-token-value", 1);
    setenv("DUMONT_S3_ENDPOINT", "https://s3.example.com", 1);
    assert_int_equal(store_open("s3://my-bucket/dumont/", &s, err, sizeof err), 0);
    assert_string_equal(store_url(s), "s3://my-bucket/dumont (https://s3.example.com)");
    assert_null(strstr(store_url(s), "secret"));
    assert_null(strstr(store_url(s), "AKID"));
    store_close(s);
}

static void test_b2_variables(void **state)
{
    (void)state;
    char err[512];
    dm_store *s = NULL;
    setenv("B2_ENDPOINT", "https://s3.us-west-004.backblazeb2.com", 1);
    setenv("B2_KEY_ID", "0040000000000000000000001", 1);
    setenv("B2_APPLICATION_KEY", "K004secret", 1);
    assert_int_equal(store_open("s3://seed-bucket/dumont", &s, err, sizeof err), 0);
    assert_string_equal(store_url(s),
                        "s3://seed-bucket/dumont (https://s3.us-west-004.backblazeb2.com)");
    store_close(s);
}

/* S3-12, STORE-S8: the storage's name, from where its endpoint was set. */
static const char *name_with(const char *var, const char *endpoint)
{
    static char name[32];
    char err[512];
    dm_store *s = NULL;
    unsetenv("DUMONT_S3_ENDPOINT");
    unsetenv("B2_ENDPOINT");
    setenv(var, endpoint, 1);
    assert_int_equal(store_open("s3://seed-bucket/dumont", &s, err, sizeof err), 0);
    snprintf(name, sizeof name, "%s", store_storage_name(s));
    store_close(s);
    return name;
}

static void test_storage_name(void **state)
{
    (void)state;
    setenv("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE", 1);
    setenv("AWS_SECRET_ACCESS_KEY", "very-secret-key", 1);
    assert_string_equal(name_with("B2_ENDPOINT", "http://127.0.0.1:9000"), "backblaze_b2");
    assert_string_equal(name_with("DUMONT_S3_ENDPOINT", "https://s3.eu-central-003.backblazeb2.com"),
                        "backblaze_b2");
    assert_string_equal(name_with("DUMONT_S3_ENDPOINT", "https://abc123.r2.cloudflarestorage.com"),
                        "cloudflare_r2");
    assert_string_equal(name_with("DUMONT_S3_ENDPOINT", "https://s3.example.com"), "s3");
    assert_string_equal(name_with("DUMONT_S3_ENDPOINT", "https://notbackblazeb2.com"), "s3");
    assert_string_equal(name_with("DUMONT_S3_ENDPOINT", "http://127.0.0.1:9000"), "s3");
    char err[512];
    dm_store *s = NULL;
    assert_int_equal(store_open("file:///tmp", &s, err, sizeof err), 0);
    assert_string_equal(store_storage_name(s), "file");
    store_close(s);
}

typedef struct {
    const char *op, *code;
    uint64_t n;
} stat_query;

static void on_stat(const char *store, const char *op, const char *code, uint64_t n, void *ctx)
{
    stat_query *q = ctx;
    if (!strcmp(store, "s3") && !strcmp(op, q->op) && !strcmp(code, q->code))
        q->n = n;
}

/* The count of (s3, op, code) so far. */
static uint64_t s3_count(const char *op, const char *code)
{
    stat_query q = {op, code, 0};
    store_stats_each(on_stat, &q);
    return q.n;
}

static void test_unreachable(void **state)
{
    (void)state;
    char err[512];
    dm_store *s = NULL;
    int exists = 7;
    setenv("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE", 1);
    setenv("AWS_SECRET_ACCESS_KEY", "very-secret-key", 1);
    setenv("DUMONT_S3_ENDPOINT", "http://127.0.0.1:1", 1); /* nothing listens on port 1 */
    setenv("DUMONT_S3_TRIES", "2", 1);
    assert_int_equal(store_open("s3://bucket/p", &s, err, sizeof err), 0);
    uint64_t heads = s3_count("head", "error"), retries = store_stats_retries();
    char logpath[] = "/tmp/test_store_s3.log.XXXXXX"; /* the log is stderr: catch it */
    int lfd = mkstemp(logpath), saved = dup(2);
    assert_true(lfd >= 0 && saved >= 0);
    fflush(stderr);
    dup2(lfd, 2);
    int rc = store_exists(s, "a/b", &exists, err, sizeof err);
    fflush(stderr);
    dup2(saved, 2);
    close(saved);
    char logbuf[4096] = "";
    ssize_t got = pread(lfd, logbuf, sizeof logbuf - 1, 0);
    close(lfd);
    unlink(logpath);
    assert_true(got > 0);
    assert_int_equal(rc, DM_E_UNAVAILABLE);
    /* S3-7: the transport-level retry is logged, with its reason */
    assert_non_null(strstr(logbuf, "event=store.s3.retry op=\"head\" key=a/b try=2 reason="));
    assert_non_null(strstr(logbuf, "Couldn't connect to server"));
    assert_int_equal(exists, 7); /* ret_* untouched on failure */
    /* store_stats.c STORE-SS2 to STORE-SS3: each try counted, without an HTTP answer; one retry */
    assert_int_equal(s3_count("head", "error") - heads, 2);
    assert_int_equal(store_stats_retries() - retries, 1);
    assert_non_null(strstr(err, "cannot reach http://127.0.0.1:1"));
    assert_null(strchr(err, '\n'));
    assert_null(strstr(err, "very-secret-key"));
    store_close(s);
}

/* S3-11: the ETag of a completed multipart upload is the MD5 of its parts'
 * binary MD5s, "-", and their count (the values computed apart, with
 * Python's hashlib, for the parts "part one" and "part two"). */
static void test_multipart_etag(void **state)
{
    (void)state;
    char parts[2][128] = {"\"3303e12af474ca11d85ed2966a932992\"",
                          "\"3ea4e15b91a17dc76052c56cfcdf67a2\""};
    assert_true(s3_multipart_etag_matches("\"0732917abc3288784e318ac0aab1757a-2\"", parts, 2));
    assert_true(s3_multipart_etag_matches("0732917ABC3288784E318AC0AAB1757A-2", parts, 2));
    assert_false(s3_multipart_etag_matches("\"0732917abc3288784e318ac0aab1757b-2\"", parts, 2));
    assert_false(s3_multipart_etag_matches("\"0732917abc3288784e318ac0aab1757a-3\"", parts, 2));
    assert_false(s3_multipart_etag_matches("\"0732917abc3288784e318ac0aab1757a-2\"", parts, 1));
    /* not S3's multipart form, or parts that are no MD5: nothing to compare */
    assert_true(s3_multipart_etag_matches("\"3303e12af474ca11d85ed2966a932992\"", parts, 2));
    assert_true(s3_multipart_etag_matches("", parts, 2));
    char kms[2][128] = {"\"opaque\"", "\"3ea4e15b91a17dc76052c56cfcdf67a2\""};
    assert_true(s3_multipart_etag_matches("\"0732917abc3288784e318ac0aab1757b-2\"", kms, 2));
}

static int rm_one(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb, (void)flag, (void)ftw;
    return remove(path);
}

static void test_mirror(void **state)
{
    (void)state;
    char tmpl[] = "/tmp/dumont-test-mirror.XXXXXX", url_p[128], url_m[128], err[512], path[256];
    assert_non_null(mkdtemp(tmpl));
    snprintf(url_p, sizeof url_p, "file://%s/p", tmpl);
    snprintf(url_m, sizeof url_m, "file://%s/m", tmpl);
    setenv("DUMONT_STORE_MIRROR", url_m, 1);
    dm_store *s = NULL;
    assert_int_equal(store_open(url_p, &s, err, sizeof err), 0);
    assert_non_null(strstr(store_url(s), "(mirror file://"));
    assert_int_equal(store_put(s, "packs/ab/x", "hello", 5, err, sizeof err), 0);
    snprintf(path, sizeof path, "%s/m/packs/ab/x", tmpl);
    assert_int_equal(access(path, F_OK), 0); /* STORE-M1: written twice */
    snprintf(path, sizeof path, "%s/p/packs/ab/x", tmpl);
    assert_int_equal(unlink(path), 0); /* the primary loses it */
    void *data = NULL;
    size_t len = 0;
    char buf[3];
    assert_int_equal(store_get(s, "packs/ab/x", 100, &data, &len, err, sizeof err),
                     0); /* STORE-M2 */
    assert_int_equal(len, 5);
    assert_memory_equal(data, "hello", 5);
    free(data);
    assert_int_equal(store_get_range(s, "packs/ab/x", 1, 3, buf, err, sizeof err), 0);
    assert_memory_equal(buf, "ell", 3);
    assert_int_equal(store_get(s, "packs/ab/x", 2, &data, &len, err, sizeof err), DM_E_TOO_BIG);
    assert_int_equal(store_get(s, "packs/zz/none", 9, &data, &len, err, sizeof err),
                     DM_E_NOT_FOUND);
    assert_non_null(strstr(err, "mirror file://")); /* both errors named */
    /* STORE-ST6: a primary copy that reads fine but is damaged (the caller's
     * hash check says so): the checked read comes from the mirror */
    assert_int_equal(store_put(s, "packs/cd/y", "world", 5, err, sizeof err), 0);
    snprintf(path, sizeof path, "%s/p/packs/cd/y", tmpl);
    FILE *dmg = fopen(path, "r+");
    assert_non_null(dmg);
    assert_true(fputs("W0", dmg) >= 0);
    fclose(dmg);
    assert_int_equal(store_get_range(s, "packs/cd/y", 0, 3, buf, err, sizeof err), 0);
    assert_memory_equal(buf, "W0r", 3); /* a plain read does not know */
    assert_int_equal(store_get_range_verified(s, "packs/cd/y", 0, 3, buf, err, sizeof err), 0);
    assert_memory_equal(buf, "wor", 3);
    assert_int_equal(store_delete(s, "packs/ab/x", err, sizeof err), 0);
    store_close(s);

    /* STORE-M1: a mirror that cannot be written fails the put with its own message */
    snprintf(url_m, sizeof url_m, "file://%s/m/file-not-dir", tmpl);
    snprintf(path, sizeof path, "%s/m/file-not-dir", tmpl);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fclose(f);
    setenv("DUMONT_STORE_MIRROR", url_m, 1);
    assert_int_not_equal(store_open(url_p, &s, err, sizeof err), 0);
    assert_non_null(strstr(err, "DUMONT_STORE_MIRROR"));
    unsetenv("DUMONT_STORE_MIRROR");
    assert_int_equal(nftw(tmpl, rm_one, 16, FTW_DEPTH | FTW_PHYS), 0);
}

/* store_env.c STORE-S5 to STORE-S7: the settings a second process needs, and
 * nothing else, go through a settings text. */
static void test_env_export_import(void **state)
{
    (void)state;
    char buf[STORE_ENV_MAX], err[256] = "";
    size_t len = 99;
    /* nothing set: nothing to pass */
    assert_int_equal(store_env_export("s3://b/p", buf, sizeof buf, &len, err, sizeof err), 0);
    assert_int_equal(len, 0);
    setenv("B2_ENDPOINT", "http://127.0.0.1:9", 1);
    setenv("B2_KEY_ID", "kid", 1);
    setenv("B2_APPLICATION_KEY", "s3cret", 1);
    setenv("DUMONT_STORE_MIRROR", "file:///tmp/m", 1);
    setenv("PATH_NOT_A_STORE_SETTING", "x", 1);
    /* STORE-S6: a file:// store and mirror get no key */
    assert_int_equal(store_env_export("file:///x", buf, sizeof buf, &len, err, sizeof err), 0);
    assert_null(strstr(buf, "s3cret"));
    assert_null(strstr(buf, "B2_KEY_ID"));
    assert_non_null(strstr(buf, "DUMONT_STORE_MIRROR=file:///tmp/m\n"));
    /* an s3:// store gets them all */
    assert_int_equal(store_env_export("s3://b/p", buf, sizeof buf, &len, err, sizeof err), 0);
    assert_int_equal(len, strlen(buf));
    assert_non_null(strstr(buf, "B2_APPLICATION_KEY=s3cret\n"));
    assert_non_null(strstr(buf, "B2_KEY_ID=kid\n"));
    assert_non_null(strstr(buf, "B2_ENDPOINT=http://127.0.0.1:9\n"));
    assert_null(strstr(buf, "PATH_NOT_A_STORE_SETTING"));
    /* too small a buffer: an error, and nothing of the key left in it */
    char small[40];
    assert_int_equal(store_env_export("s3://b/p", small, sizeof small, &len, err, sizeof err),
                     DM_E_TOO_BIG);
    for (size_t i = 0; i + 6 <= sizeof small; i++)
        assert_false(memcmp(small + i, "s3cret", 6) == 0);
    /* import sets them in a process that has none */
    clear_env(NULL);
    assert_int_equal(store_env_import(buf, err, sizeof err), 0);
    assert_string_equal(getenv("B2_APPLICATION_KEY"), "s3cret");
    assert_string_equal(getenv("DUMONT_STORE_MIRROR"), "file:///tmp/m");
    unsetenv("DUMONT_STORE_MIRROR"); /* (no directory made for it here) */
    dm_store *st = NULL;             /* and the store opens with them */
    assert_int_equal(store_open("s3://b2-test/dumont", &st, err, sizeof err), 0);
    store_close(st);
    /* STORE-S5: another name fails the whole text, and sets nothing */
    clear_env(NULL);
    char bad[] = "B2_KEY_ID=kid\nLD_PRELOAD=/evil.so\n";
    assert_int_equal(store_env_import(bad, err, sizeof err), DM_E_INVALID);
    assert_non_null(strstr(err, "LD_PRELOAD"));
    assert_null(getenv("B2_KEY_ID"));
    assert_null(getenv("LD_PRELOAD"));
    char noeq[] = "B2_KEY_ID\n";
    assert_int_equal(store_env_import(noeq, err, sizeof err), DM_E_INVALID);
    unsetenv("PATH_NOT_A_STORE_SETTING");
    clear_env(NULL);
}

/* STORE-ST7: a presigned URL names the object on the endpoint, carries no
 * secret, and is refused where it would be wrong (file://, a PUT past a mirror). */
static void test_presign(void **state)
{
    (void)state;
    char err[256] = "", url[2048];
    dm_store *st = NULL;
    setenv("DUMONT_S3_ENDPOINT", "http://127.0.0.1:9", 1);
    setenv("AWS_ACCESS_KEY_ID", "AKID", 1);
    setenv("AWS_SECRET_ACCESS_KEY", "presign-s3cret", 1);
    assert_int_equal(store_open("s3://bkt/pre", &st, err, sizeof err), 0);
    assert_int_equal(
        store_presign(st, "GET", "packs/ab/abcd", 300, url, sizeof url, err, sizeof err), 0);
    assert_true(strncmp(url, "http://127.0.0.1:9/bkt/pre/packs/ab/abcd?X-Amz-Algorithm=", 57) == 0);
    assert_non_null(strstr(url, "X-Amz-Expires=300&"));
    assert_non_null(strstr(url, "X-Amz-Credential=AKID%2F"));
    assert_null(strstr(url, "presign-s3cret"));
    assert_int_equal(
        store_presign(st, "DELETE", "packs/ab/abcd", 300, url, sizeof url, err, sizeof err),
        DM_E_INVALID);
    assert_int_equal(store_presign(st, "GET", "../x", 300, url, sizeof url, err, sizeof err),
                     DM_E_INVALID);
    store_close(st);
    char dir[] = "/tmp/dumont-presign.XXXXXX", murl[64];
    assert_non_null(mkdtemp(dir));
    snprintf(murl, sizeof murl, "file://%s", dir);
    assert_int_equal(store_open(murl, &st, err, sizeof err), 0);
    assert_int_equal(store_presign(st, "GET", "k", 300, url, sizeof url, err, sizeof err),
                     DM_E_INVALID);
    store_close(st);
    setenv("DUMONT_STORE_MIRROR", murl, 1);
    assert_int_equal(store_open("s3://bkt/pre", &st, err, sizeof err), 0);
    assert_int_equal(store_presign(st, "GET", "k", 300, url, sizeof url, err, sizeof err), 0);
    assert_int_equal(store_presign(st, "PUT", "k", 300, url, sizeof url, err, sizeof err),
                     DM_E_INVALID);
    assert_non_null(strstr(err, "mirror"));
    store_close(st);
    rmdir(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_open_validates, clear_env),
        cmocka_unit_test_setup(test_display_has_no_secret, clear_env),
        cmocka_unit_test_setup(test_b2_variables, clear_env),
        cmocka_unit_test_setup(test_storage_name, clear_env),
        cmocka_unit_test_setup(test_unreachable, clear_env),
        cmocka_unit_test_setup(test_multipart_etag, clear_env),
        cmocka_unit_test_setup(test_mirror, clear_env),
        cmocka_unit_test_setup(test_env_export_import, clear_env),
        cmocka_unit_test_setup(test_presign, clear_env),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

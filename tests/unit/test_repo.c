/* Unit tests for the chunk repository (src/snapshot/repo.h SNAP-RP1 to SNAP-RP7,
 * repo.c SNAP-R1 to SNAP-R6, pack.c SNAP-PK1 to SNAP-PK4) on a file:// store in a temp directory. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "snapshot/pack.h"
#include "snapshot/repo.h"
#include "snapshot/repo_internal.h" /* SNAP-RP7: which pack holds a chunk */
#include "store/store.h"
#include "util/error.h"

#include <dirent.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

typedef struct {
    char dir[256];
    dm_store *s;
    repo *r;
} fixture;

static int rm_rf(const char *path)
{
    DIR *d = opendir(path);
    if (!d)
        return unlink(path);
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

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    char err[256];
    if (!f)
        return -1;
    snprintf(f->dir, sizeof f->dir, "/tmp/dm_test_repo.XXXXXX");
    if (!mkdtemp(f->dir) || store_open(f->dir, &f->s, err, sizeof err) != 0 ||
        repo_open(f->s, &f->r, err, sizeof err) != 0)
        return -1;
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    repo_close(f->r);
    store_close(f->s);
    rm_rf(f->dir);
    free(f);
    return 0;
}

static void reopen(fixture *f)
{
    char err[256] = "";
    repo_close(f->r);
    f->r = NULL;
    if (repo_open(f->s, &f->r, err, sizeof err) != 0)
        fail_msg("reopen: %s", err);
}

/* Deterministic data: random (incompressible) or text-like. */
static uint64_t rng_state = 88172645463325252ull;
static uint64_t rnd(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}

static uint8_t *random_buf(size_t len)
{
    uint8_t *b = malloc(len ? len : 1);
    for (size_t i = 0; i < len; i++)
        b[i] = (uint8_t)rnd();
    return b;
}

static uint8_t *text_buf(size_t len)
{
    static const char *words[] = {"tensor ", "gradient ",       "import torch\n", "loss = ",
                                  "epoch ",  "model.train()\n", "0.0001 ",        "def step(x):\n"};
    uint8_t *b = malloc(len ? len : 1);
    for (size_t i = 0; i < len;) {
        const char *w = words[rnd() % 8];
        for (size_t k = 0; w[k] && i < len; k++)
            b[i++] = (uint8_t)w[k];
    }
    return b;
}

static chunk_id add_ok(repo *r, const void *data, size_t len, int want_new)
{
    char err[256] = "";
    chunk_id id;
    int isnew = -1;
    int rc = repo_add_chunk(r, data, len, &id, &isnew, err, sizeof err);
    if (rc != 0)
        fail_msg("add %zu bytes: %d %s", len, rc, err);
    if (want_new >= 0)
        assert_int_equal(isnew, want_new);
    return id;
}

static void read_is(repo *r, const chunk_id *id, const void *want, size_t len)
{
    char err[512] = "";
    size_t got = 0;
    uint8_t *buf = malloc(len + 16);
    int rc = repo_read_chunk(r, id, buf, len + 16, &got, err, sizeof err);
    if (rc != 0)
        fail_msg("read: %d %s", rc, err);
    assert_int_equal(got, len);
    if (len)
        assert_memory_equal(buf, want, len);
    free(buf);
}

static void flush_ok(repo *r)
{
    char err[256] = "";
    if (repo_flush(r, err, sizeof err) != 0)
        fail_msg("flush: %s", err);
}

static void test_ids(void **state)
{
    (void)state;
    chunk_id id, back;
    char hex[65];
    chunk_id_of("abc", 3, &id);
    chunk_id_hex(&id, hex);
    assert_string_equal(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    assert_int_equal(chunk_id_parse(hex, &back), 0);
    assert_memory_equal(back.b, id.b, 32);
    assert_int_equal(chunk_id_parse("BA7816", &back), DM_E_INVALID);
    hex[3] = 'X';
    assert_int_equal(chunk_id_parse(hex, &back), DM_E_INVALID);
}

/* SNAP-RP1, SNAP-RP3, SNAP-R1: before flush (from the open pack) and after (from the store). */
static void test_round_trip(void **state)
{
    fixture *f = *state;
    size_t mib = 1 << 20;
    uint8_t *rnd1 = random_buf(mib), *txt = text_buf(mib);
    chunk_id e = add_ok(f->r, "", 0, 1);
    chunk_id t = add_ok(f->r, "hello", 5, 1);
    chunk_id c = add_ok(f->r, txt, mib, 1);
    chunk_id n = add_ok(f->r, rnd1, mib, 1);
    repo_stats st;
    repo_get_stats(f->r, &st);
    assert_int_equal(st.chunks_added, 4);
    assert_int_equal(st.bytes_added, 2 * mib + 5);
    /* random data stored raw, text compressed */
    assert_true(st.bytes_stored < mib + mib / 2);
    assert_true(st.bytes_stored >= mib + 5);
    for (int pass = 0; pass < 2; pass++) {
        read_is(f->r, &e, "", 0);
        read_is(f->r, &t, "hello", 5);
        read_is(f->r, &c, txt, mib);
        read_is(f->r, &n, rnd1, mib);
        flush_ok(f->r);
    }
    size_t sz = 0;
    assert_int_equal(repo_chunk_size(f->r, &c, &sz), 0);
    assert_int_equal(sz, mib);
    reopen(f);
    read_is(f->r, &c, txt, mib);
    read_is(f->r, &e, "", 0);
    repo_get_stats(f->r, &st);
    assert_int_equal(st.chunks_added, 0); /* stats are per session */
    free(rnd1);
    free(txt);
}

static void test_limits(void **state)
{
    fixture *f = *state;
    char err[256];
    chunk_id id;
    uint8_t *big = calloc(1, REPO_CHUNK_MAX + 1);
    assert_int_equal(repo_add_chunk(f->r, big, REPO_CHUNK_MAX + 1, &id, NULL, err, sizeof err),
                     DM_E_TOO_BIG);
    id = add_ok(f->r, big, REPO_CHUNK_MAX, 1); /* the largest chunk is fine */
    size_t got;
    assert_int_equal(repo_read_chunk(f->r, &id, big, 100, &got, err, sizeof err), DM_E_TOO_BIG);
    chunk_id unknown;
    chunk_id_of("nope", 4, &unknown);
    assert_int_equal(repo_read_chunk(f->r, &unknown, big, 100, &got, err, sizeof err),
                     DM_E_NOT_FOUND);
    assert_int_equal(repo_chunk_size(f->r, &unknown, &got), DM_E_NOT_FOUND);
    assert_false(repo_has_chunk(f->r, &unknown));
    free(big);
}

/* SNAP-RP2 */
static void test_dedup(void **state)
{
    fixture *f = *state;
    uint8_t *a = text_buf(300000);
    chunk_id x = add_ok(f->r, a, 300000, 1);
    repo_stats before, after;
    repo_get_stats(f->r, &before);
    chunk_id y = add_ok(f->r, a, 300000, 0);
    assert_memory_equal(x.b, y.b, 32);
    flush_ok(f->r);
    add_ok(f->r, a, 300000, 0); /* also once it is in the store */
    repo_get_stats(f->r, &after);
    assert_int_equal(after.chunks_added, 1);
    assert_int_equal(after.chunks_deduped, 2);
    assert_int_equal(after.bytes_stored, before.bytes_stored);
    assert_int_equal(after.packs_written, 1);
    reopen(f);
    add_ok(f->r, a, 300000, 0); /* and after reopening */
    free(a);
}

/* SNAP-RP7: chunks added to two streams, interleaved, land in packs of their
 * own stream, in the order they were added. */
static void test_streams(void **state)
{
    fixture *f = *state;
    enum { N = 12, LEN = 3 << 20 };
    chunk_id ids[2][N];
    char err[256] = "";
    for (int i = 0; i < N; i++)
        for (int k = 0; k < 2; k++) {
            uint8_t *b = random_buf(LEN);
            assert_int_equal(repo_add_chunk_to(f->r, k, b, LEN, &ids[k][i], NULL, err, sizeof err),
                             0);
            free(b);
        }
    assert_int_not_equal(repo_add_chunk_to(f->r, REPO_STREAMS, "x", 1, &ids[0][0], NULL, err,
                                           sizeof err),
                         0);
    flush_ok(f->r);
    uint32_t last[2] = {0, 0};
    for (int k = 0; k < 2; k++)
        for (int i = 0; i < N; i++) {
            int64_t e = repo_chunk_find(f->r, &ids[k][i]);
            assert_true(e >= 0);
            uint32_t pack = repo_ent(f->r, (size_t)e)->pack;
            if (i > 0)
                assert_true(pack >= last[k]); /* in order within the stream */
            last[k] = pack;
        }
    for (int i = 0; i < N; i++) { /* no pack of stream 0 holds a chunk of stream 1 */
        uint32_t p0 = repo_ent(f->r, (size_t)repo_chunk_find(f->r, &ids[0][i]))->pack;
        for (int j = 0; j < N; j++)
            assert_int_not_equal(p0, repo_ent(f->r, (size_t)repo_chunk_find(f->r, &ids[1][j]))->pack);
    }
    reopen(f);
    uint8_t *probe = malloc(LEN);
    size_t got = 0;
    assert_int_equal(repo_read_chunk(f->r, &ids[1][N - 1], probe, LEN, &got, err, sizeof err), 0);
    assert_int_equal(got, LEN);
    free(probe);
}

typedef struct {
    char keys[64][STORE_KEY_MAX];
    int n;
} keys;

static int collect(const char *key, uint64_t size, void *ctx)
{
    keys *k = ctx;
    (void)size;
    if (k->n < 64)
        snprintf(k->keys[k->n++], STORE_KEY_MAX, "%s", key);
    return 0;
}

static keys list(dm_store *s, const char *prefix)
{
    keys k = {0};
    char err[256];
    assert_int_equal(store_list(s, prefix, collect, &k, err, sizeof err), 0);
    return k;
}

/* Several packs; every chunk is back after reopening. */
static void test_reopen_many(void **state)
{
    fixture *f = *state;
    enum { N = 40 };
    size_t len = 1 << 20;
    uint8_t *data[N];
    chunk_id ids[N];
    for (int i = 0; i < N; i++) {
        data[i] = i % 2 ? random_buf(len) : text_buf(len);
        ids[i] = add_ok(f->r, data[i], len, 1);
    }
    flush_ok(f->r);
    repo_stats st;
    repo_get_stats(f->r, &st);
    assert_true(st.packs_written >= 2);
    assert_int_equal(list(f->s, "index/").n, 1); /* ONE index per flush */
    assert_int_equal(list(f->s, "packs/").n, (int)st.packs_written);
    reopen(f);
    for (int i = 0; i < N; i++) {
        read_is(f->r, &ids[i], data[i], len);
        free(data[i]);
    }
    assert_int_equal(repo_bad_indexes(f->r), 0);
}

/* SNAP-RP4: chunks never flushed are not visible, even when their pack was
 * written; and no index names them. */
static void test_unflushed(void **state)
{
    fixture *f = *state;
    size_t len = 4 << 20;
    uint8_t *a = random_buf(len);
    chunk_id ida = add_ok(f->r, a, len, 1);
    flush_ok(f->r);
    chunk_id more[6];
    for (int i = 0; i < 6; i++) { /* 24 MiB: one pack gets written */
        uint8_t *b = random_buf(len);
        more[i] = add_ok(f->r, b, len, 1);
        free(b);
    }
    repo_stats st;
    for (int tries = 0; tries < 1000; tries++) { /* the writer thread: poll, 10 s deadline */
        repo_get_stats(f->r, &st);
        if (st.packs_written == 2)
            break;
        usleep(10000);
    }
    assert_int_equal(st.packs_written, 2);
    reopen(f); /* close drops the open pack and the pending index */
    read_is(f->r, &ida, a, len);
    for (int i = 0; i < 6; i++)
        assert_false(repo_has_chunk(f->r, &more[i]));
    assert_int_equal(list(f->s, "index/").n, 1);
    assert_int_equal(list(f->s, "packs/").n, 2); /* the orphan pack stays */
    free(a);
}

typedef struct {
    repo *r;
    int seed;
    chunk_id ids[48];
    uint8_t *data[48];
    int rc;
} worker;

enum { WLEN = 256 << 10 };

static void *add_worker(void *arg)
{
    worker *w = arg;
    for (int i = 0; i < 48; i++) {
        /* chunk i%12 of every thread is shared: threads race on dedup */
        uint64_t seed = (i % 4 == 0) ? (uint64_t)(i + 1000) : (uint64_t)(w->seed * 100 + i + 1);
        uint8_t *b = malloc(WLEN);
        uint64_t x = seed * 0x9E3779B97F4A7C15ull;
        for (size_t k = 0; k < WLEN; k++) {
            x ^= x << 13, x ^= x >> 7, x ^= x << 17;
            b[k] = (i % 3 == 0) ? (uint8_t)('a' + x % 4) : (uint8_t)x;
        }
        char err[256];
        int isnew;
        if ((w->rc = repo_add_chunk(w->r, b, WLEN, &w->ids[i], &isnew, err, sizeof err)) != 0)
            return NULL;
        w->data[i] = b;
    }
    return NULL;
}

/* SNAP-RP5 */
static void test_concurrent(void **state)
{
    fixture *f = *state;
    worker w[4];
    pthread_t th[4];
    for (int t = 0; t < 4; t++) {
        memset(&w[t], 0, sizeof w[t]);
        w[t].r = f->r;
        w[t].seed = t + 1;
        assert_int_equal(pthread_create(&th[t], NULL, add_worker, &w[t]), 0);
    }
    for (int t = 0; t < 4; t++)
        pthread_join(th[t], NULL);
    for (int t = 0; t < 4; t++)
        assert_int_equal(w[t].rc, 0);
    repo_stats st;
    repo_get_stats(f->r, &st);
    /* 12 shared chunks + 36 own per thread */
    assert_int_equal(st.chunks_added, 12 + 4 * 36);
    assert_int_equal(st.chunks_deduped, 3 * 12);
    flush_ok(f->r);
    reopen(f);
    for (int t = 0; t < 4; t++)
        for (int i = 0; i < 48; i++) {
            read_is(f->r, &w[t].ids[i], w[t].data[i], WLEN);
            free(w[t].data[i]);
        }
}

static void pack_path(fixture *f, char *buf, size_t len)
{
    keys k = list(f->s, "packs/");
    assert_int_equal(k.n, 1);
    snprintf(buf, len, "%s/%s", f->dir, k.keys[0]);
}

static void flip_byte(const char *path, off_t off)
{
    int fd = open(path, O_RDWR);
    assert_true(fd >= 0);
    uint8_t b;
    assert_int_equal(pread(fd, &b, 1, off), 1);
    b ^= 0x40;
    assert_int_equal(pwrite(fd, &b, 1, off), 1);
    close(fd);
}

static int nbad_calls;
static void on_bad(const chunk_id *id, const char *why, void *ctx)
{
    (void)id, (void)ctx;
    assert_non_null(strstr(why, "packs/"));
    nbad_calls++;
}

/* SNAP-RP1: corruption is never returned as data; verify counts it. */
static void test_corrupt_pack(void **state)
{
    fixture *f = *state;
    size_t len = 100000;
    uint8_t *raw = random_buf(len), *txt = text_buf(len);
    chunk_id ids[2] = {add_ok(f->r, raw, len, 1), add_ok(f->r, txt, len, 1)};
    flush_ok(f->r);
    char path[PATH_MAX + 300], err[512] = "";
    pack_path(f, path, sizeof path);
    flip_byte(path, 500);        /* inside the raw blob */
    flip_byte(path, len + 3000); /* inside the LZ4 blob */
    uint8_t *buf = malloc(len);
    size_t got = 0;
    assert_int_equal(repo_read_chunk(f->r, &ids[0], buf, len, &got, err, sizeof err),
                     DM_E_PROTOCOL);
    assert_non_null(strstr(err, "packs/"));
    char hex[65];
    chunk_id_hex(&ids[0], hex);
    assert_non_null(strstr(err, hex));
    assert_int_equal(repo_read_chunk(f->r, &ids[1], buf, len, &got, err, sizeof err),
                     DM_E_PROTOCOL);
    uint64_t nbad = 0;
    nbad_calls = 0;
    assert_int_equal(repo_verify(f->r, ids, 2, on_bad, NULL, &nbad, err, sizeof err), 0);
    assert_int_equal(nbad, 2);
    assert_int_equal(nbad_calls, 2);
    free(buf);
    free(raw);
    free(txt);
}

static void test_truncated_pack(void **state)
{
    fixture *f = *state;
    size_t len = 100000;
    uint8_t *a = text_buf(len), *b = random_buf(len);
    chunk_id ida = add_ok(f->r, a, len, 1), idb = add_ok(f->r, b, len, 1);
    flush_ok(f->r);
    char path[PATH_MAX + 300], err[512];
    pack_path(f, path, sizeof path);
    assert_int_equal(truncate(path, 1000), 0);
    uint8_t *buf = malloc(len);
    size_t got;
    assert_int_equal(repo_read_chunk(f->r, &idb, buf, len, &got, err, sizeof err), DM_E_PROTOCOL);
    assert_non_null(strstr(err, "packs/"));
    assert_int_equal(unlink(path), 0); /* a missing pack is damage too */
    assert_int_equal(repo_read_chunk(f->r, &ida, buf, len, &got, err, sizeof err), DM_E_PROTOCOL);
    chunk_id ids[2] = {ida, idb};
    uint64_t nbad = 0;
    assert_int_equal(repo_verify(f->r, ids, 2, NULL, NULL, &nbad, err, sizeof err), 0);
    assert_int_equal(nbad, 2);
    free(buf);
    free(a);
    free(b);
}

static void put_named(dm_store *s, const void *data, size_t len)
{
    chunk_id h;
    char hex[65], key[80], err[256];
    chunk_id_of(data, len, &h);
    chunk_id_hex(&h, hex);
    snprintf(key, sizeof key, "index/%s", hex);
    assert_int_equal(store_put(s, key, data, len, err, sizeof err), 0);
}

/* SNAP-R4: damaged index objects are ignored, counted and logged; the rest loads. */
static void test_bad_index(void **state)
{
    fixture *f = *state;
    uint8_t *a = text_buf(5000), *b = text_buf(7000);
    chunk_id ida = add_ok(f->r, a, 5000, 1);
    flush_ok(f->r);
    keys k = list(f->s, "index/");
    assert_int_equal(k.n, 1);
    void *idx;
    size_t idxlen;
    char err[256];
    assert_int_equal(store_get(f->s, k.keys[0], 1 << 20, &idx, &idxlen, err, sizeof err), 0);
    chunk_id idb = add_ok(f->r, b, 7000, 1);
    flush_ok(f->r);
    k = list(f->s, "index/");
    assert_int_equal(k.n, 2);
    put_named(f->s, "garbage that is no index", 24); /* does not parse */
    put_named(f->s, idx, idxlen - 7);                /* truncated */
    /* a name that does not match the content */
    assert_int_equal(
        store_put(f->s, "index/0000000000000000000000000000000000000000000000000000000000000000",
                  idx, idxlen, err, sizeof err),
        0);
    reopen(f);
    assert_int_equal(repo_bad_indexes(f->r), 3);
    read_is(f->r, &ida, a, 5000);
    read_is(f->r, &idb, b, 7000);
    free(idx);
    free(a);
    free(b);
}

static chunk_id add_flushed(fixture *f, uint8_t **keep, size_t len, int text)
{
    *keep = text ? text_buf(len) : random_buf(len);
    return add_ok(f->r, *keep, len, 1);
}

/* SNAP-R6: prune keeps used chunks, drops unused packs, rewrites mostly-unused. */
static void test_prune(void **state)
{
    fixture *f = *state;
    size_t len = 200000;
    uint8_t *d[7];
    chunk_id id[7];
    for (int i = 0; i < 4; i++) /* pack 1: A B C D */
        id[i] = add_flushed(f, &d[i], len, 0);
    flush_ok(f->r);
    for (int i = 4; i < 6; i++) /* pack 2: E F */
        id[i] = add_flushed(f, &d[i], len, 0);
    flush_ok(f->r);
    id[6] = add_flushed(f, &d[6], len, 0); /* pack 3: G */
    flush_ok(f->r);
    assert_int_equal(list(f->s, "packs/").n, 3);
    assert_int_equal(list(f->s, "index/").n, 3);

    chunk_id used[3] = {id[0], id[4], id[0]}; /* A (25% of pack 1), E (50% of pack 2) */
    repo_prune_stats ps = {0};
    char err[256] = "";
    if (repo_prune(f->r, used, 3, &ps, err, sizeof err) != 0)
        fail_msg("prune: %s", err);
    assert_int_equal(ps.packs_deleted, 1);   /* pack 3 */
    assert_int_equal(ps.packs_rewritten, 1); /* pack 1 */
    assert_true(ps.bytes_freed >= 4 * len);
    assert_int_equal(list(f->s, "packs/").n, 2);
    assert_int_equal(list(f->s, "index/").n, 1);
    read_is(f->r, &id[0], d[0], len);
    read_is(f->r, &id[4], d[4], len);
    read_is(f->r, &id[5], d[5], len); /* F stays: its pack was kept whole */
    assert_false(repo_has_chunk(f->r, &id[1]));
    assert_false(repo_has_chunk(f->r, &id[6]));
    reopen(f);
    read_is(f->r, &id[0], d[0], len);
    read_is(f->r, &id[4], d[4], len);
    assert_false(repo_has_chunk(f->r, &id[6]));
    /* a prune that changes nothing must not delete the index it rewrote */
    assert_int_equal(repo_prune(f->r, id, 6, &ps, err, sizeof err), 0);
    reopen(f);
    read_is(f->r, &id[0], d[0], len);
    read_is(f->r, &id[5], d[5], len);
    assert_int_equal(list(f->s, "index/").n, 1);
    /* new chunks after a prune still work */
    chunk_id again = add_ok(f->r, d[6], len, 1);
    flush_ok(f->r);
    reopen(f);
    read_is(f->r, &again, d[6], len);
    for (int i = 0; i < 7; i++)
        free(d[i]);
}

/* SNAP-R2: a pack that cannot be written breaks the repo: later adds, flush and
 * reads of its chunks fail instead of pretending the chunks are stored. */
static void test_write_failure(void **state)
{
    fixture *f = *state;
    char path[PATH_MAX], err[512] = "";
    snprintf(path, sizeof path, "%s/packs", f->dir);
    FILE *fp = fopen(path, "w"); /* a file where the packs directory goes */
    assert_non_null(fp);
    fclose(fp);
    size_t len = 4 << 20;
    uint8_t *b = random_buf(len);
    chunk_id first;
    int rc = 0;
    for (int i = 0; i < 8 && rc == 0; i++) { /* the writer fails on the first pack */
        b[0] = (uint8_t)i;
        rc = repo_add_chunk(f->r, b, len, i ? NULL : &first, NULL, err, sizeof err);
    }
    if (rc == 0)
        rc = repo_flush(f->r, err, sizeof err);
    assert_int_not_equal(rc, 0);
    assert_non_null(strstr(err, "packs/"));
    assert_int_not_equal(repo_flush(f->r, err, sizeof err), 0); /* sticky */
    size_t got;
    assert_int_equal(repo_read_chunk(f->r, &first, b, len, &got, err, sizeof err), DM_E_PROTOCOL);
    assert_int_equal(list(f->s, "index/").n, 0);
    free(b);
}

static int count_entry(const chunk_id *pid, const pack_entry *e, void *ctx)
{
    (void)pid, (void)e;
    ++*(int *)ctx;
    return 0;
}

/* SNAP-PK2, SNAP-RP6: every truncation and many byte flips of an index object are
 * refused before any entry is reported; SNAP-PK3: damaged LZ4 frames never
 * decode to the wrong length or past the buffer. */
static void test_decoders_bounded(void **state)
{
    (void)state;
    uint8_t ents[3 * PACK_ENTRY_SIZE];
    for (int i = 0; i < 3; i++) {
        pack_entry e = {.off = (uint32_t)i * 100, .stored = 100, .plain = 100};
        chunk_id_of(&i, sizeof i, &e.id);
        pack_entry_encode(&e, ents + i * PACK_ENTRY_SIZE);
    }
    chunk_id pid;
    chunk_id_of("p", 1, &pid);
    uint8_t *ep = ents, *idx;
    uint32_t cnt = 3;
    size_t len;
    assert_int_equal(index_encode(&pid, &ep, &cnt, 1, &idx, &len), 0);
    int n = 0;
    char err[200];
    assert_int_equal(index_parse(idx, len, count_entry, &n, err, sizeof err), 0);
    assert_int_equal(n, 3);
    for (size_t cut = 0; cut < len; cut++) {
        n = 0;
        assert_int_equal(index_parse(idx, cut, count_entry, &n, err, sizeof err), DM_E_PROTOCOL);
        assert_int_equal(n, 0);
    }
    for (size_t pos = 0; pos < len; pos++) { /* flips: refused, or still in bounds */
        idx[pos] ^= 0xff;
        n = 0;
        int rc = index_parse(idx, len, count_entry, &n, err, sizeof err);
        assert_true(rc == 0 || (rc == DM_E_PROTOCOL && n == 0));
        idx[pos] ^= 0xff;
    }
    free(idx);

    size_t plain = 200000;
    uint8_t *src = text_buf(plain), *out = malloc(plain), *scratch = NULL;
    size_t scap = 0, slen;
    const void *stored;
    uint8_t flags;
    assert_int_equal(pack_compress(src, plain, &scratch, &scap, &stored, &slen, &flags), 0);
    assert_int_equal(flags, PACK_FLAG_LZ4);
    assert_int_equal(pack_decompress(stored, slen, out, plain), 0);
    assert_memory_equal(out, src, plain);
    assert_int_not_equal(pack_decompress(stored, slen, out, plain - 1), 0); /* capped */
    assert_int_not_equal(pack_decompress(stored, slen - 1, out, plain), 0); /* truncated */
    int refused = 0; /* under ASan: no read or write out of bounds, whatever the damage */
    for (size_t pos = 0; pos < slen; pos += 97) {
        scratch[pos] ^= 0x5a;
        refused += pack_decompress(stored, slen, out, plain) != 0;
        scratch[pos] ^= 0x5a;
    }
    assert_true(refused > 0); /* (a flip that still decodes is caught by SNAP-RP1) */
    free(scratch);
    free(src);
    free(out);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ids),
        cmocka_unit_test(test_decoders_bounded),
        cmocka_unit_test_setup_teardown(test_round_trip, setup, teardown),
        cmocka_unit_test_setup_teardown(test_limits, setup, teardown),
        cmocka_unit_test_setup_teardown(test_dedup, setup, teardown),
        cmocka_unit_test_setup_teardown(test_streams, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reopen_many, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unflushed, setup, teardown),
        cmocka_unit_test_setup_teardown(test_concurrent, setup, teardown),
        cmocka_unit_test_setup_teardown(test_corrupt_pack, setup, teardown),
        cmocka_unit_test_setup_teardown(test_truncated_pack, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_index, setup, teardown),
        cmocka_unit_test_setup_teardown(test_prune, setup, teardown),
        cmocka_unit_test_setup_teardown(test_write_failure, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

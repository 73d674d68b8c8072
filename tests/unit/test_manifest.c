/* Unit tests for the manifest format (src/snapshot/manifest.h, MANIF-MF1 to MANIF-MF4). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "snapshot/manifest.h"
#include "util/error.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char odd_name[] = "odd\x80\x81\xfe\xff\nname";

static mf_entry *add(manifest *m, const char *path, size_t len, mf_type t, uint32_t mode)
{
    mf_entry *e = manifest_push(m);
    assert_non_null(e);
    assert_int_equal(mf_entry_set_path(e, path, len), 0);
    e->type = t;
    e->mode = mode;
    e->uid = 1000;
    e->gid = 1001;
    e->mtime_ns = 1764331200123456789LL;
    e->ino = 77 + m->n;
    e->dev = 2049;
    return e;
}

static void add_ext(mf_entry *e, uint64_t len, int hole, uint8_t fill)
{
    mf_extent x = {.len = len, .hole = hole};
    memset(x.id.b, fill, sizeof x.id.b);
    assert_int_equal(mf_entry_add_extent(e, &x), 0);
    e->size += len;
}

/* A manifest with every kind of entry. */
static manifest *sample(void)
{
    manifest *m = manifest_new();
    assert_non_null(m);
    snprintf(m->info.source, sizeof m->info.source, "/workspace");
    snprintf(m->info.tag, sizeof m->info.tag, "nightly");
    snprintf(m->info.parent, sizeof m->info.parent, "%064d", 7);
    m->info.time_ms = 1764331200123;
    m->info.files = 3;
    m->info.bytes = 6ull << 30;
    add(m, "", 0, MF_DIR, 0755);
    add(m, "d", 1, MF_DIR, 0700);
    mf_entry *f = add(m, "d/f", 3, MF_FILE, 0640);
    add_ext(f, 1 << 20, 0, 0x11);
    add_ext(f, 5ull << 30, 1, 0); /* a 5 GiB hole: 64-bit sizes */
    add_ext(f, 100, 0, 0x22);
    add(m, "empty", 5, MF_FILE, 0600);
    mf_entry *l = add(m, "link", 4, MF_SYMLINK, 0777);
    assert_int_equal(mf_entry_set_link(l, "../t\x80\xff", 6), 0);
    mf_entry *o = add(m, odd_name, sizeof odd_name - 1, MF_FILE, 0644);
    add_ext(o, 12, 0, 0x33);
    mf_entry *h = add(m, "zz", 2, MF_HARDLINK, 0640);
    h->link_to = 2;
    return m;
}

static void assert_entry_equal(const mf_entry *a, const mf_entry *b)
{
    assert_int_equal(a->type, b->type);
    assert_int_equal(a->path_len, b->path_len);
    assert_memory_equal(a->path, b->path, a->path_len);
    assert_int_equal(a->mode, b->mode);
    assert_int_equal(a->uid, b->uid);
    assert_int_equal(a->gid, b->gid);
    assert_true(a->mtime_ns == b->mtime_ns);
    assert_true(a->size == b->size);
    assert_true(a->ino == b->ino && a->dev == b->dev);
    assert_int_equal(a->n_ext, b->n_ext);
    for (uint32_t i = 0; i < a->n_ext; i++) {
        assert_true(a->ext[i].len == b->ext[i].len);
        assert_int_equal(a->ext[i].hole, b->ext[i].hole);
        if (!a->ext[i].hole)
            assert_memory_equal(a->ext[i].id.b, b->ext[i].id.b, 32);
    }
    if (a->type == MF_SYMLINK) {
        assert_int_equal(a->link_len, b->link_len);
        assert_memory_equal(a->link, b->link, a->link_len);
    }
    if (a->type == MF_HARDLINK)
        assert_int_equal(a->link_to, b->link_to);
}

static void test_round_trip(void **state)
{
    (void)state;
    manifest *m = sample(), *d = NULL;
    void *buf = NULL, *buf2 = NULL;
    size_t len = 0, len2 = 0;
    char err[256];
    assert_int_equal(manifest_encode(m, &buf, &len, err, sizeof err), 0);
    assert_int_equal(manifest_decode(buf, len, &d, err, sizeof err), 0);
    assert_int_equal(d->n, m->n);
    for (size_t i = 0; i < m->n; i++)
        assert_entry_equal(&m->e[i], &d->e[i]);
    assert_string_equal(d->info.source, "/workspace");
    assert_string_equal(d->info.tag, "nightly");
    assert_string_equal(d->info.parent, m->info.parent);
    assert_true(d->info.time_ms == m->info.time_ms && d->info.bytes == m->info.bytes);
    assert_int_equal(manifest_find(d, odd_name, sizeof odd_name - 1), 5);
    assert_int_equal(manifest_find(d, "nope", 4), -1);
    /* MANIF-MF4: re-encoding gives the same bytes (and so the same id) */
    assert_int_equal(manifest_encode(d, &buf2, &len2, err, sizeof err), 0);
    assert_int_equal(len, len2);
    assert_memory_equal(buf, buf2, len);
    /* the header alone is enough for list */
    snap_info in;
    memset(&in, 0, sizeof in);
    assert_int_equal(manifest_decode_info(buf, len < 200 ? len : 200, &in, err, sizeof err), 0);
    assert_string_equal(in.source, "/workspace");
    free(buf);
    free(buf2);
    manifest_free(m);
    manifest_free(d);
}

static void test_truncated_and_garbage(void **state)
{
    (void)state;
    manifest *m = sample(), *d = NULL;
    uint8_t *buf = NULL;
    size_t len = 0;
    char err[256];
    assert_int_equal(manifest_encode(m, (void **)&buf, &len, err, sizeof err), 0);
    for (size_t n = 0; n < len; n++) /* MANIF-MF1: every truncation fails cleanly */
        assert_int_equal(manifest_decode(buf, n, &d, err, sizeof err), DM_E_PROTOCOL);
    assert_null(d);
    uint8_t junk[4096];
    for (size_t i = 0; i < sizeof junk; i++)
        junk[i] = (uint8_t)(i * 131 + 7);
    assert_int_equal(manifest_decode(junk, sizeof junk, &d, err, sizeof err), DM_E_PROTOCOL);
    memcpy(junk, buf, 12); /* right magic, garbage after */
    assert_int_equal(manifest_decode(junk, sizeof junk, &d, err, sizeof err), DM_E_PROTOCOL);
    /* every single-byte flip either fails or decodes to a valid manifest */
    for (size_t i = 0; i < len; i++) {
        buf[i] ^= 0x5a;
        if (manifest_decode(buf, len, &d, err, sizeof err) == 0) {
            manifest_free(d);
            d = NULL;
        }
        buf[i] ^= 0x5a;
    }
    free(buf);
    manifest_free(m);
}

static int encode_decode(manifest *m)
{
    void *buf = NULL;
    size_t len = 0;
    char err[256];
    manifest *d = NULL;
    assert_int_equal(manifest_encode(m, &buf, &len, err, sizeof err), 0);
    int rc = manifest_decode(buf, len, &d, err, sizeof err);
    free(buf);
    manifest_free(d);
    manifest_free(m);
    return rc;
}

/* MANIF-MF2, MANIF-MF3: manifests that would be unsafe to restore are refused. */
static void test_unsafe_refused(void **state)
{
    (void)state;
    static const char *bad[] = {"../x", "a/../../x", "/abs", "a//b", "./a", "a/", "a/."};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        manifest *m = manifest_new();
        add(m, "", 0, MF_DIR, 0755);
        add(m, "a", 1, MF_DIR, 0755);
        add(m, bad[i], strlen(bad[i]), MF_FILE, 0644);
        assert_int_equal(encode_decode(m), DM_E_PROTOCOL);
    }
    manifest *m = manifest_new(); /* parent is a symlink: would write through it */
    add(m, "", 0, MF_DIR, 0755);
    mf_entry *l = add(m, "a", 1, MF_SYMLINK, 0777);
    mf_entry_set_link(l, "/etc", 4);
    add(m, "a/passwd", 8, MF_FILE, 0644);
    assert_int_equal(encode_decode(m), DM_E_PROTOCOL);
    m = manifest_new(); /* NUL in a name */
    add(m, "", 0, MF_DIR, 0755);
    add(m, "a\0b", 3, MF_FILE, 0644);
    assert_int_equal(encode_decode(m), DM_E_PROTOCOL);
    m = manifest_new(); /* duplicates / out of order */
    add(m, "", 0, MF_DIR, 0755);
    add(m, "b", 1, MF_FILE, 0644);
    add(m, "a", 1, MF_FILE, 0644);
    assert_int_equal(encode_decode(m), DM_E_PROTOCOL);
    m = manifest_new(); /* hard link forward or to a non-file */
    add(m, "", 0, MF_DIR, 0755);
    add(m, "a", 1, MF_HARDLINK, 0644)->link_to = 1;
    assert_int_equal(encode_decode(m), DM_E_PROTOCOL);
    m = manifest_new(); /* extents do not add up to the size */
    add(m, "", 0, MF_DIR, 0755);
    mf_entry *f = add(m, "f", 1, MF_FILE, 0644);
    add_ext(f, 10, 0, 1);
    f->size = 11;
    assert_int_equal(encode_decode(m), DM_E_PROTOCOL);
    m = manifest_new(); /* no root */
    add(m, "f", 1, MF_FILE, 0644);
    assert_int_equal(encode_decode(m), DM_E_PROTOCOL);
}

/* MANIF-MF1: a declared body far larger than the data is refused before any
 * allocation (decompression bomb). */
static void test_body_len_capped(void **state)
{
    (void)state;
    manifest *m = sample(), *d = NULL;
    uint8_t *buf = NULL;
    size_t len = 0;
    char err[256];
    assert_int_equal(manifest_encode(m, (void **)&buf, &len, err, sizeof err), 0);
    /* body_len is the 10th u64 of the header, after magic(8) + header_len(4) */
    size_t at = 12 + 9 * 8;
    uint64_t huge = 400u << 20;
    memcpy(buf + at, &huge, 8); /* little-endian host */
    assert_int_equal(manifest_decode(buf, len, &d, err, sizeof err), DM_E_PROTOCOL);
    free(buf);
    manifest_free(m);
}

/* SNAP-CR4 support: removing vanished files drops hard links to them and
 * renumbers the others. */
static void test_remove(void **state)
{
    (void)state;
    manifest *m = manifest_new();
    add(m, "", 0, MF_DIR, 0755);
    add(m, "a", 1, MF_FILE, 0644);
    add(m, "b", 1, MF_FILE, 0644);
    add(m, "c", 1, MF_HARDLINK, 0644)->link_to = 1;
    add(m, "d", 1, MF_HARDLINK, 0644)->link_to = 2;
    char gone[5] = {0, 1, 0, 0, 0};
    assert_int_equal(manifest_remove(m, gone), 0);
    assert_int_equal(m->n, 3); /* "", b, d */
    assert_string_equal(m->e[1].path, "b");
    assert_string_equal(m->e[2].path, "d");
    assert_int_equal(m->e[2].link_to, 1);
    assert_int_equal(encode_decode(m), 0);
}

static void test_path_order(void **state)
{
    (void)state;
    /* '/' sorts before every byte: a directory's children follow it */
    assert_true(mf_path_cmp("a/b", 3, "a-c", 3) < 0);
    assert_true(mf_path_cmp("a", 1, "a/b", 3) < 0);
    assert_true(mf_path_cmp("a/b", 3, "a\x80", 2) < 0);
    assert_true(mf_path_cmp("", 0, "\x01", 1) < 0);
    assert_int_equal(mf_path_cmp("x", 1, "x", 1), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip),     cmocka_unit_test(test_truncated_and_garbage),
        cmocka_unit_test(test_unsafe_refused), cmocka_unit_test(test_body_len_capped),
        cmocka_unit_test(test_path_order),     cmocka_unit_test(test_remove),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

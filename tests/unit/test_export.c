/* Unit tests for snapshot export and import (src/snapshot/export.c, SNAP-EX1 to SNAP-EX8).
 *
 * Export: a generated tree is snapshotted, exported, and read back with
 * libarchive: every entry, type, mode, link and byte must match (SNAP-EX2).
 * Import: every archive of the malicious corpus is refused with a message
 * naming the entry and the rule, nothing appears outside, and the private
 * directory is gone afterwards (SNAP-EX3 to SNAP-EX8). The corpus is made here, by raw
 * ustar/pax blocks (no library can be trusted to write an evil archive),
 * and also written to tests/fixtures/malicious/ by `test_export
 * --write-corpus DIR`; the committed files there are imported too.
 *
 * Run alone: ./test_export; regenerate the corpus:
 *   ./test_export --write-corpus tests/fixtures/malicious */
#define _GNU_SOURCE /* nftw */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "snapshot/export.h"
#include "snapshot/snapshot.h"
#include "store/store.h"
#include "util/error.h"

#include <archive.h>
#include <archive_entry.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <lz4frame.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define BIG (3u << 20) /* several chunks */

static char tmp[PATH_MAX];
static char outside[PATH_MAX + 16], imptmp[PATH_MAX + 16], src[PATH_MAX + 16];
static dm_store *st;

/* ---- helpers ---------------------------------------------------------- */

typedef struct {
    uint8_t *p;
    size_t n, cap;
} buf;

static void b_put(buf *b, const void *d, size_t n)
{
    if (b->n + n > b->cap) {
        b->cap = (b->n + n) * 2 + 4096;
        b->p = realloc(b->p, b->cap);
        assert_non_null(b->p);
    }
    memcpy(b->p + b->n, d, n);
    b->n += n;
}

static void b_zero(buf *b, size_t n)
{
    static const uint8_t z[4096];
    while (n) {
        size_t k = n < sizeof z ? n : sizeof z;
        b_put(b, z, k);
        n -= k;
    }
}

/* One raw ustar header (names < 100 bytes). */
static void hdr(buf *b, const char *name, char type, uint64_t size, const char *link)
{
    uint8_t h[512] = {0};
    unsigned sum = 0;
    memcpy(h, name, strlen(name));
    snprintf((char *)h + 100, 8, "%07o", type == '5' ? 0755 : 0644);
    snprintf((char *)h + 108, 8, "%07o", 0);
    snprintf((char *)h + 116, 8, "%07o", 0);
    char num[32];
    snprintf(num, sizeof num, "%011llo", (unsigned long long)(size & 077777777777ull));
    memcpy(h + 124, num, 11);
    snprintf((char *)h + 136, 12, "%011o", 1700000000);
    memset(h + 148, ' ', 8);
    h[156] = (uint8_t)type;
    if (link)
        memcpy(h + 157, link, strlen(link));
    memcpy(h + 257, "ustar", 6);
    memcpy(h + 263, "00", 2);
    for (int i = 0; i < 512; i++)
        sum += h[i];
    snprintf((char *)h + 148, 8, "%06o", sum);
    b_put(b, h, 512);
}

static void file_entry(buf *b, const char *name, const char *data)
{
    size_t n = strlen(data);
    hdr(b, name, '0', n, NULL);
    b_put(b, data, n);
    b_zero(b, (512 - n % 512) % 512);
}

static void end(buf *b)
{
    b_zero(b, 1024);
}

static void lz4_wrap(buf *b)
{
    size_t cap = LZ4F_compressFrameBound(b->n, NULL);
    uint8_t *o = malloc(cap);
    assert_non_null(o);
    size_t n = LZ4F_compressFrame(o, cap, b->p, b->n, NULL);
    assert_false(LZ4F_isError(n));
    free(b->p);
    b->p = o;
    b->n = n;
    b->cap = cap;
}

static void write_file(const char *path, const void *d, size_t n)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, d, n), (ssize_t)n);
    close(fd);
}

static int dir_is_empty(const char *path)
{
    DIR *d = opendir(path);
    struct dirent *e;
    int empty = 1;
    if (!d)
        return 0;
    while ((e = readdir(d)))
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, ".."))
            empty = 0;
    closedir(d);
    return empty;
}

static void rm_rf(const char *path)
{
    char *argv[] = {"rm", "-rf", (char *)path, NULL};
    pid_t p = fork();
    if (p == 0) {
        execvp("rm", argv);
        _exit(127);
    }
    int stc;
    waitpid(p, &stc, 0);
}

/* ---- the malicious corpus (SNAP-EX3 to SNAP-EX6) ------------------------------------ */

typedef struct {
    const char *name;
    const char *expect; /* in the error message */
    void (*make)(buf *b);
    uint64_t max_bytes, max_entries; /* 0: defaults */
} evil;

static void m_absolute(buf *b)
{
    char p[PATH_MAX + 32];
    snprintf(p, sizeof p, "%s/pwned", outside);
    if (strlen(p) >= 100)
        snprintf(p, sizeof p, "/tmp/dumont-pwned-absolute");
    file_entry(b, p, "x");
    end(b);
}
static void m_dotdot(buf *b)
{
    file_entry(b, "ok/../../pwned", "x"), end(b);
}
static void m_dotdot_lead(buf *b)
{
    file_entry(b, "../pwned", "x"), end(b);
}
static void m_sym_abs(buf *b)
{
    hdr(b, "evil", '2', 0, "/etc"), file_entry(b, "evil/passwd", "x"), end(b);
}
static void m_sym_up(buf *b)
{
    hdr(b, "d/evil", '2', 0, "../../outside"), end(b);
}
static void m_sym_mid(buf *b)
{
    /* each link alone looks inside; the chain d/s1 -> "..", s2 -> d/s1/.. escapes */
    hdr(b, "d/", '5', 0, NULL);
    hdr(b, "d/s1", '2', 0, "..");
    hdr(b, "s2", '2', 0, "d/s1/..");
    end(b);
}
static void m_through_link(buf *b)
{
    hdr(b, "sub/", '5', 0, NULL);
    hdr(b, "in", '2', 0, "sub");
    file_entry(b, "in/f", "x");
    end(b);
}
static void m_hard_abs(buf *b)
{
    hdr(b, "h", '1', 0, "/etc/passwd"), end(b);
}
static void m_hard_up(buf *b)
{
    hdr(b, "h", '1', 0, "../outside/secret"), end(b);
}
static void m_hard_unknown(buf *b)
{
    hdr(b, "h", '1', 0, "nosuch"), end(b);
}
static void m_hard_dir(buf *b)
{
    hdr(b, "d/", '5', 0, NULL), hdr(b, "h", '1', 0, "d"), end(b);
}
static void m_chr(buf *b)
{
    hdr(b, "null", '3', 0, NULL), end(b);
}
static void m_blk(buf *b)
{
    hdr(b, "sda", '4', 0, NULL), end(b);
}
static void m_fifo(buf *b)
{
    hdr(b, "fifo", '6', 0, NULL), end(b);
}
static void m_root_file(buf *b)
{
    file_entry(b, "./", "x"), end(b);
}
static void m_garbage(buf *b)
{
    b_put(b, "this is not a tar archive at all\n", 33), b_zero(b, 2000);
}

static void m_truncated(buf *b)
{
    hdr(b, "f", '0', 5000, NULL);
    b_zero(b, 1024); /* 1 KiB of the 5000 bytes, then nothing */
}

static void m_many(buf *b)
{
    char n[32];
    for (int i = 0; i < 101; i++) {
        snprintf(n, sizeof n, "f%03d", i);
        hdr(b, n, '0', 0, NULL);
    }
    end(b);
    lz4_wrap(b);
}

/* A header claiming 8 GiB, then nothing: refused before a byte is written. */
static void m_claims_huge(buf *b)
{
    hdr(b, "huge", '0', 077777777777ull, NULL);
    b_zero(b, 1024);
    lz4_wrap(b);
}

/* A real decompression bomb: 64 MiB of zeros in ~256 KiB. */
static void m_bomb(buf *b)
{
    hdr(b, "zeros", '0', 64u << 20, NULL);
    b_zero(b, 64u << 20);
    end(b);
    lz4_wrap(b);
}

/* 8 MiB of pax extended header (not an entry's data) in a tiny frame. */
static void m_pax_bomb(buf *b)
{
    size_t n = 8u << 20;
    char head[32];
    int k = snprintf(head, sizeof head, "%zu comment=", n);
    hdr(b, "PaxHeader/x", 'x', n, NULL);
    b_put(b, head, (size_t)k);
    for (size_t i = (size_t)k; i < n - 1; i++)
        b_put(b, "A", 1);
    b_put(b, "\n", 1);
    b_zero(b, (512 - n % 512) % 512);
    file_entry(b, "x", "x");
    end(b);
    lz4_wrap(b);
}

/* Many pax headers, each under libarchive's own limit, none an entry's data:
 * the decompressed-stream cap stops them (SNAP-EX6). */
static void m_pax_many(buf *b)
{
    size_t n = 512u << 10;
    char head[32], name[32];
    for (int e = 0; e < 24; e++) {
        int k = snprintf(head, sizeof head, "%zu comment=", n);
        snprintf(name, sizeof name, "f%02d", e);
        hdr(b, "PaxHeader/x", 'x', n, NULL);
        b_put(b, head, (size_t)k);
        for (size_t i = (size_t)k; i < n - 1; i++)
            b_put(b, "B", 1);
        b_put(b, "\n", 1);
        b_zero(b, (512 - n % 512) % 512);
        hdr(b, name, '0', 0, NULL);
    }
    end(b);
    lz4_wrap(b);
}

static const evil corpus[] = {
    {"absolute", "absolute path", m_absolute, 0, 0},
    {"dotdot", "'..'", m_dotdot, 0, 0},
    {"dotdot-lead", "'..'", m_dotdot_lead, 0, 0},
    {"symlink-absolute", "symlink target leaves the tree", m_sym_abs, 0, 0},
    {"symlink-up", "symlink target leaves the tree", m_sym_up, 0, 0},
    {"symlink-chain", "symlink target leaves the tree", m_sym_mid, 0, 0},
    {"through-symlink", "through a symlink", m_through_link, 0, 0},
    {"hardlink-absolute", "absolute path", m_hard_abs, 0, 0},
    {"hardlink-up", "'..'", m_hard_up, 0, 0},
    {"hardlink-unknown", "not in the archive", m_hard_unknown, 0, 0},
    {"hardlink-dir", "not in the archive", m_hard_dir, 0, 0},
    {"chardev", "device file", m_chr, 0, 0},
    {"blockdev", "device file", m_blk, 0, 0},
    {"fifo", "FIFO", m_fifo, 0, 0},
    {"root-as-file", "refused entry", m_root_file, 0, 0},
    {"garbage", "", m_garbage, 0, 0},
    {"truncated", "'f'", m_truncated, 0, 0},
    {"too-many-entries", "too many entries", m_many, 0, 100},
    {"claims-8GiB", "larger than the cap", m_claims_huge, 1u << 20, 0},
    {"bomb-64MiB", "larger than the cap", m_bomb, 1u << 20, 0},
    {"pax-header-bomb", "", m_pax_bomb, 1u << 20, 0},
    {"pax-many", "larger than the cap", m_pax_many, 1u << 20, 0},
};

/* Imports path; it must fail with expect in the message, and leave no
 * trace outside nor in the temp dir (SNAP-EX3, SNAP-EX8). */
static void import_refused(const char *path, const evil *ev)
{
    char err[1024] = "";
    snap_info info;
    snap_import_limits lim;
    snap_import_limits_init(&lim);
    lim.tmp_dir = imptmp;
    if (ev && ev->max_bytes)
        lim.max_bytes = ev->max_bytes;
    if (ev && ev->max_entries)
        lim.max_entries = ev->max_entries;
    int fd = open(path, O_RDONLY);
    assert_true(fd >= 0);
    int rc = snap_import_ex(st, fd, "evil", NULL, &lim, &info, err, sizeof err);
    close(fd);
    if (getenv("DUMONT_TEST_VERBOSE"))
        fprintf(stderr, "%s: %s\n", path, err);
    if (rc == 0 || (ev && !strstr(err, ev->expect)))
        fail_msg("%s: rc=%d err='%s' (expected a refusal with '%s')", path, rc, err,
                 ev ? ev->expect : "");
    assert_true(dir_is_empty(outside));
    assert_true(dir_is_empty(imptmp));
    assert_int_equal(access("/tmp/dumont-pwned-absolute", F_OK), -1);
}

static void make_evil(const evil *ev, const char *path)
{
    buf b = {0};
    ev->make(&b);
    write_file(path, b.p, b.n);
    free(b.p);
}

static void test_malicious_corpus(void **state)
{
    (void)state;
    char path[PATH_MAX + 64];
    for (size_t i = 0; i < sizeof corpus / sizeof corpus[0]; i++) {
        snprintf(path, sizeof path, "%s/%s.tar", tmp, corpus[i].name);
        make_evil(&corpus[i], path);
        import_refused(path, &corpus[i]);
        unlink(path);
    }
}

/* The committed corpus: every file must be refused with the default caps,
 * except those that need a small cap (named *-capped-*). */
static void test_committed_corpus(void **state)
{
    (void)state;
    char dir[PATH_MAX], path[PATH_MAX * 2];
    snprintf(dir, sizeof dir, "%s", __FILE__);
    char *slash = strrchr(dir, '/');
    if (!slash)
        skip();
    snprintf(slash, sizeof dir - (size_t)(slash - dir), "/../fixtures/malicious");
    DIR *d = opendir(dir);
    if (!d)
        skip();
    struct dirent *e;
    int n = 0;
    while ((e = readdir(d))) {
        if (!strstr(e->d_name, ".tar"))
            continue;
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        const evil *ev = NULL;
        for (size_t i = 0; i < sizeof corpus / sizeof corpus[0]; i++)
            if (strncmp(e->d_name, corpus[i].name, strlen(corpus[i].name)) == 0 &&
                e->d_name[strlen(corpus[i].name)] == '.')
                ev = &corpus[i];
        import_refused(path, ev);
        n++;
    }
    closedir(d);
    assert_true(n >= 10);
}

/* ---- round trips (SNAP-EX1, SNAP-EX2) ------------------------------------------- */

static void make_tree(void)
{
    char p[PATH_MAX * 2];
    uint8_t *big = malloc(BIG);
    assert_non_null(big);
    uint32_t x = 12345;
    for (size_t i = 0; i < BIG; i++) {
        x = x * 1103515245u + 12345u;
        big[i] = (uint8_t)(x >> 16);
    }
    assert_int_equal(mkdir(src, 0755), 0);
    snprintf(p, sizeof p, "%s/sub", src), assert_int_equal(mkdir(p, 0750), 0);
    snprintf(p, sizeof p, "%s/big.bin", src), write_file(p, big, BIG);
    snprintf(p, sizeof p, "%s/empty", src), write_file(p, "", 0);
    snprintf(p, sizeof p, "%s/sub/hello.txt", src), write_file(p, "hello\n", 6);
    snprintf(p, sizeof p, "%s/sub/odd \x01\xff name", src), write_file(p, "odd", 3);
    snprintf(p, sizeof p, "%s/link", src), assert_int_equal(symlink("sub/hello.txt", p), 0);
    char q[PATH_MAX * 2];
    snprintf(p, sizeof p, "%s/sub/hello.txt", src);
    snprintf(q, sizeof q, "%s/hard", src);
    assert_int_equal(link(p, q), 0);
    snprintf(p, sizeof p, "%s/run.sh", src), write_file(p, "#!/bin/sh\n", 10);
    assert_int_equal(chmod(p, 0755), 0);
    free(big);
}

/* Compares one archive entry with the source tree. Returns 1 for a file. */
static int check_entry(struct archive *a, struct archive_entry *e)
{
    char p[PATH_MAX * 2], tgt[PATH_MAX * 2];
    struct stat sb;
    const char *name = archive_entry_pathname(e);
    snprintf(p, sizeof p, "%s/%s", src, name);
    assert_int_equal(lstat(p, &sb), 0);
    assert_int_equal(archive_entry_perm(e), sb.st_mode & 07777);
    assert_int_equal(archive_entry_mtime(e), sb.st_mtime);
    if (archive_entry_hardlink(e)) {
        struct stat hb;
        snprintf(tgt, sizeof tgt, "%s/%s", src, archive_entry_hardlink(e));
        assert_int_equal(stat(tgt, &hb), 0);
        assert_int_equal(hb.st_ino, sb.st_ino);
        return 0;
    }
    if (S_ISLNK(sb.st_mode)) {
        ssize_t n = readlink(p, tgt, sizeof tgt - 1);
        assert_true(n > 0);
        tgt[n] = '\0';
        assert_string_equal(archive_entry_symlink(e), tgt);
        return 0;
    }
    if (S_ISDIR(sb.st_mode))
        return assert_int_equal(archive_entry_filetype(e), AE_IFDIR), 0;
    assert_int_equal(archive_entry_size(e), sb.st_size);
    uint8_t *want = malloc((size_t)sb.st_size + 1), *got = malloc((size_t)sb.st_size + 1);
    int fd = open(p, O_RDONLY);
    assert_int_equal(read(fd, want, (size_t)sb.st_size), sb.st_size);
    close(fd);
    assert_int_equal(archive_read_data(a, got, (size_t)sb.st_size + 1), sb.st_size);
    assert_memory_equal(want, got, (size_t)sb.st_size);
    free(want);
    free(got);
    return 1;
}

static void read_back(const char *path, int *ret_entries, int *ret_files)
{
    struct archive *a = archive_read_new();
    struct archive_entry *e;
    archive_read_support_filter_all(a);
    archive_read_support_format_all(a);
    assert_int_equal(archive_read_open_filename(a, path, 65536), ARCHIVE_OK);
    int r;
    *ret_entries = *ret_files = 0;
    while ((r = archive_read_next_header(a, &e)) == ARCHIVE_OK) {
        (*ret_entries)++;
        *ret_files += check_entry(a, e);
    }
    assert_int_equal(r, ARCHIVE_EOF);
    assert_int_equal(archive_filter_code(a, 0), ARCHIVE_FILTER_LZ4);
    archive_read_free(a);
}

static void test_export_read_back(void **state)
{
    (void)state;
    char err[1024] = "", path[PATH_MAX + 32];
    snap_info info;
    make_tree();
    if (snap_create(st, src, NULL, &info, err, sizeof err) != 0)
        fail_msg("snap_create: %s", err);
    snprintf(path, sizeof path, "%s/ws.tar.lz4", tmp);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (snap_export(st, info.id, fd, NULL, err, sizeof err) != 0)
        fail_msg("snap_export: %s", err);
    close(fd);
    int entries, files;
    read_back(path, &entries, &files);
    assert_int_equal(entries, 8); /* sub, big.bin, empty, hello, odd, link, hard, run.sh */
    assert_int_equal(files, 5);   /* the hard link carries no data */
    /* and the reverse: import of our own export, then restore, is the same tree */
    char out[PATH_MAX + 32];
    snap_info back;
    fd = open(path, O_RDONLY);
    if (snap_import(st, fd, "ws.tar.lz4", NULL, &back, err, sizeof err) != 0)
        fail_msg("snap_import: %s", err);
    close(fd);
    assert_int_equal(back.files, info.files);
    assert_int_equal(back.bytes, info.bytes);
    assert_non_null(strstr(back.source, "ws.tar.lz4#")); /* SNAP-EX10 */
    snprintf(out, sizeof out, "%s/restored", tmp);
    if (snap_restore(st, back.id, out, 0, NULL, err, sizeof err) != 0)
        fail_msg("snap_restore: %s", err);
}

static void test_export_unknown(void **state)
{
    (void)state;
    char err[512] = "";
    int fd = open("/dev/null", O_WRONLY);
    assert_int_not_equal(
        snap_export(st, "0000000000000000000000000000000000000000000000000000000000000000", fd,
                    NULL, err, sizeof err),
        0);
    assert_non_null(strstr(err, "no snapshot"));
    assert_int_not_equal(snap_export(st, "../x", fd, NULL, err, sizeof err), 0);
    close(fd);
}

static char pack_path[PATH_MAX];

static int find_pack(const char *p, const struct stat *sb, int flag, struct FTW *f)
{
    (void)f;
    if (flag == FTW_F && sb->st_size > 100000 && strstr(p, "/packs/"))
        snprintf(pack_path, sizeof pack_path, "%s", p);
    return 0;
}

/* SNAP-EX1: a damaged chunk stops the export, naming the file. */
static void test_export_corrupt(void **state)
{
    (void)state;
    char err[1024] = "", dir[PATH_MAX + 32], url[PATH_MAX + 32], f[PATH_MAX + 64];
    dm_store *s2;
    snap_info info;
    uint8_t *data = malloc(BIG);
    assert_non_null(data);
    uint32_t x = 777; /* incompressible: the pack holds it raw */
    for (size_t i = 0; i < BIG; i++) {
        x = x * 1103515245u + 12345u;
        data[i] = (uint8_t)(x >> 16);
    }
    snprintf(dir, sizeof dir, "%s/c-src", tmp);
    snprintf(f, sizeof f, "%s/model.bin", dir);
    assert_int_equal(mkdir(dir, 0755), 0);
    write_file(f, data, BIG);
    free(data);
    snprintf(url, sizeof url, "%s/c-store", tmp);
    assert_int_equal(store_open(url, &s2, err, sizeof err), 0);
    if (snap_create(s2, dir, NULL, &info, err, sizeof err) != 0)
        fail_msg("snap_create: %s", err);
    pack_path[0] = '\0';
    nftw(url, find_pack, 16, FTW_PHYS);
    assert_true(pack_path[0]);
    int fd = open(pack_path, O_RDWR);
    assert_true(fd >= 0);
    assert_int_equal(pwrite(fd, "\xff\x00\xff", 3, 50000), 3);
    close(fd);
    fd = open("/dev/null", O_WRONLY);
    assert_int_not_equal(snap_export(s2, info.id, fd, NULL, err, sizeof err), 0);
    close(fd);
    if (!strstr(err, "model.bin"))
        fail_msg("the error does not name the file: %s", err);
    store_close(s2);
}

/* A benign archive with links inside the tree imports (SNAP-EX4 allows them). */
static void test_import_good_links(void **state)
{
    (void)state;
    char err[1024] = "", path[PATH_MAX + 32];
    snap_info info;
    buf b = {0};
    hdr(&b, "sub/", '5', 0, NULL);
    file_entry(&b, "sub/f", "data");
    hdr(&b, "up", '2', 0, "sub/f");
    hdr(&b, "sub/back", '2', 0, "../up");
    hdr(&b, "sub/same", '2', 0, "./f");
    hdr(&b, "h", '1', 0, "sub/f");
    hdr(&b, "./", '5', 0, NULL);
    end(&b);
    lz4_wrap(&b);
    snprintf(path, sizeof path, "%s/good.tar.lz4", tmp);
    write_file(path, b.p, b.n);
    free(b.p);
    snap_import_limits lim;
    snap_import_limits_init(&lim);
    lim.tmp_dir = imptmp;
    int fd = open(path, O_RDONLY);
    if (snap_import_ex(st, fd, "good", NULL, &lim, &info, err, sizeof err) != 0)
        fail_msg("snap_import: %s", err);
    close(fd);
    assert_int_equal(info.files, 2);
    assert_int_equal(info.symlinks, 3);
    assert_true(dir_is_empty(imptmp));
}

static int setup(void **state)
{
    (void)state;
    char err[512], url[PATH_MAX + 32];
    const char *t = getenv("TMPDIR");
    snprintf(tmp, sizeof tmp, "%s/dumont-test-export.XXXXXX", t && *t ? t : "/tmp");
    if (!mkdtemp(tmp))
        return -1;
    snprintf(outside, sizeof outside, "%s/outside", tmp);
    snprintf(imptmp, sizeof imptmp, "%s/imptmp", tmp);
    snprintf(src, sizeof src, "%s/src", tmp);
    snprintf(url, sizeof url, "file://%s/store", tmp);
    if (mkdir(outside, 0755) || mkdir(imptmp, 0755))
        return -1;
    return store_open(url, &st, err, sizeof err) == 0 ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    store_close(st);
    if (!getenv("DUMONT_TEST_KEEP"))
        rm_rf(tmp);
    return 0;
}

static int write_corpus(const char *dir)
{
    char path[PATH_MAX * 2];
    /* too long for a ustar name: m_absolute falls back to a fixed path */
    snprintf(outside, sizeof outside, "/tmp/dumont-test-outside/%0100d", 0);
    for (size_t i = 0; i < sizeof corpus / sizeof corpus[0]; i++) {
        snprintf(path, sizeof path, "%s/%s.tar%s", dir, corpus[i].name,
                 corpus[i].max_bytes || corpus[i].max_entries ? ".lz4" : "");
        if (corpus[i].max_bytes || corpus[i].max_entries)
            continue; /* need a small cap: made at test time only */
        make_evil(&corpus[i], path);
    }
    return 0;
}

int main(int argc, char **argv)
{
    if (argc == 3 && strcmp(argv[1], "--write-corpus") == 0)
        return write_corpus(argv[2]);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_malicious_corpus),  cmocka_unit_test(test_committed_corpus),
        cmocka_unit_test(test_export_unknown),    cmocka_unit_test(test_export_corrupt),
        cmocka_unit_test(test_import_good_links), cmocka_unit_test(test_export_read_back),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}

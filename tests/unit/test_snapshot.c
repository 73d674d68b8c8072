/* Unit tests for the snapshot engine (src/snapshot/snapshot.h, SNAP-SN1 to SNAP-SN5) on a
 * file:// store in a temp directory: create/restore round trips over a tree
 * of every kind of entry, incremental creates, corruption, diff, prune. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "snapshot/manifest.h"
#include "snapshot/snap_internal.h"
#include "snapshot/snapshot.h"
#include "store/store.h"
#include "util/error.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <pthread.h>
#include <time.h>
#include <unistd.h>

#define BIG_SIZE (10u << 20)
#define GiB      (1ull << 30)
static const char odd_name[] = "odd\x80\xff\nname";

typedef struct {
    char dir[PATH_MAX]; /* the test's temp directory */
    char src[PATH_MAX]; /* the generated tree */
    char out[PATH_MAX]; /* restore target */
    dm_store *s;
    uint64_t sparse_size; /* 5 GiB, or less where the fs refuses */
    char err[1024];
} fixture;

static char *pj(char *buf, const char *a, const char *b) /* path join, PATH_MAX buffer */
{
    int n = snprintf(buf, PATH_MAX, "%s/%s", a, b);
    assert_true(n > 0 && n < PATH_MAX);
    return buf;
}

static void write_file(const char *path, const void *data, size_t n, mode_t mode)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, data, n), (ssize_t)n);
    assert_int_equal(fchmod(fd, mode), 0);
    assert_int_equal(close(fd), 0);
}

static void pwrite_at(const char *path, uint64_t off, const char *s)
{
    int fd = open(path, O_WRONLY);
    assert_true(fd >= 0);
    assert_int_equal(pwrite(fd, s, strlen(s), (off_t)off), (ssize_t)strlen(s));
    close(fd);
}

static void set_mtime(const char *path, time_t sec, long nsec)
{
    struct timespec ts[2] = {{.tv_sec = sec, .tv_nsec = nsec}, {.tv_sec = sec, .tv_nsec = nsec}};
    assert_int_equal(utimensat(AT_FDCWD, path, ts, AT_SYMLINK_NOFOLLOW), 0);
}

static void fill_random(uint8_t *b, size_t n, uint64_t seed)
{
    uint64_t x = seed | 1;
    for (size_t i = 0; i < n; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        b[i] = (uint8_t)(x >> 24);
    }
}

static void make_sparse(fixture *f, const char *path)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    assert_true(fd >= 0);
    f->sparse_size = 5 * GiB;
    if (ftruncate(fd, (off_t)f->sparse_size) != 0) { /* fs without big files */
        f->sparse_size = 100u << 20;
        assert_int_equal(ftruncate(fd, (off_t)f->sparse_size), 0);
    }
    close(fd);
    pwrite_at(path, 0, "HEAD");
    pwrite_at(path, f->sparse_size / 2 + 123, "MIDDLE");
    pwrite_at(path, f->sparse_size - 4, "TAIL");
}

/* Every kind of entry SNAP-SN4 names. */
static void make_tree(fixture *f)
{
    char p[PATH_MAX], q[PATH_MAX];
    uint8_t *big = malloc(BIG_SIZE);
    assert_non_null(big);
    assert_int_equal(mkdir(f->src, 0755), 0);
    write_file(pj(p, f->src, "empty"), "", 0, 0644);
    write_file(pj(p, f->src, "small.txt"), "hello\n", 6, 0644);
    write_file(pj(p, f->src, "f640"), "mode 0640\n", 10, 0640);
    fill_random(big, BIG_SIZE, 99);
    write_file(pj(p, f->src, "big.bin"), big, BIG_SIZE, 0644);
    for (size_t i = 0; i < BIG_SIZE; i++)
        big[i] = "the quick brown fox jumps over the lazy dog\n"[i % 44];
    write_file(pj(p, f->src, "text.txt"), big, 3u << 20, 0644);
    free(big);
    make_sparse(f, pj(p, f->src, "sparse"));
    write_file(pj(p, f->src, odd_name), "odd\n", 4, 0644);
    assert_int_equal(symlink("text.txt", pj(p, f->src, "link")), 0);
    assert_int_equal(symlink("../nowhere/\x80", pj(p, f->src, "dangling")), 0);
    assert_int_equal(link(pj(p, f->src, "small.txt"), pj(q, f->src, "hard")), 0);
    assert_int_equal(mkdir(pj(p, f->src, "a"), 0755), 0);
    assert_int_equal(mkdir(pj(p, f->src, "a/b"), 0755), 0);
    write_file(pj(p, f->src, "a/b/deep"), "deep\n", 5, 0600);
    assert_int_equal(mkdir(pj(p, f->src, "emptydir"), 0750), 0);
    assert_int_equal(mkdir(pj(p, f->src, "private"), 0755), 0);
    write_file(pj(p, f->src, "private/secret"), "s\n", 2, 0600);
    set_mtime(pj(p, f->src, "small.txt"), 1700000000, 123456789);
    set_mtime(pj(p, f->src, "big.bin"), 1600000000, 1);
    set_mtime(pj(p, f->src, "link"), 1500000000, 5);
    assert_int_equal(chmod(pj(p, f->src, "private"), 0700), 0);
    set_mtime(pj(p, f->src, "a/b"), 1400000000, 0);
    set_mtime(pj(p, f->src, "a"), 1400000001, 0);
}

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    const char *t = getenv("TMPDIR");
    char p[PATH_MAX];
    if (!f)
        return -1;
    snprintf(f->dir, sizeof f->dir, "%s/dumont-test-snap.XXXXXX", t && *t ? t : "/tmp");
    if (!mkdtemp(f->dir))
        return -1;
    pj(f->src, f->dir, "src");
    pj(f->out, f->dir, "out");
    if (store_open(pj(p, f->dir, "store"), &f->s, f->err, sizeof f->err) != 0)
        return -1;
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    store_close(f->s);
    int rc = snap_rm_tree(f->dir);
    free(f);
    return rc;
}

/* ---- tree comparison: stat fields and contents ---- */

static int name_cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static size_t list_dir(const char *dir, char **names, size_t cap)
{
    DIR *d = opendir(dir);
    assert_non_null(d);
    size_t n = 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
            continue;
        assert_true(n < cap);
        names[n++] = strdup(de->d_name);
    }
    closedir(d);
    qsort(names, n, sizeof *names, name_cmp);
    return n;
}

static void same_bytes_at(const char *a, const char *b, uint64_t off, size_t len)
{
    char x[64] = {0}, y[64] = {0};
    int fa = open(a, O_RDONLY), fb = open(b, O_RDONLY);
    assert_true(fa >= 0 && fb >= 0);
    assert_int_equal(pread(fa, x, len, (off_t)off), (ssize_t)len);
    assert_int_equal(pread(fb, y, len, (off_t)off), (ssize_t)len);
    assert_memory_equal(x, y, len);
    close(fa);
    close(fb);
}

static void same_content(const char *a, const char *b, uint64_t size)
{
    if (size > (64u << 20)) { /* the sparse file: its data, and zeros around */
        same_bytes_at(a, b, 0, 8);
        same_bytes_at(a, b, size / 2 + 120, 12);
        same_bytes_at(a, b, size - 8, 8);
        same_bytes_at(a, b, size / 4, 16);
        return;
    }
    FILE *fa = fopen(a, "rb"), *fb = fopen(b, "rb");
    assert_true(fa && fb);
    static char x[1 << 16], y[1 << 16];
    size_t n;
    while ((n = fread(x, 1, sizeof x, fa)) > 0) {
        assert_int_equal(fread(y, 1, n, fb), n);
        assert_memory_equal(x, y, n);
    }
    assert_int_equal(fread(y, 1, 1, fb), 0);
    fclose(fa);
    fclose(fb);
}

static void same_entry(const char *a, const char *b)
{
    struct stat sa, sb;
    assert_int_equal(lstat(a, &sa), 0);
    assert_int_equal(lstat(b, &sb), 0);
    assert_int_equal(sa.st_mode, sb.st_mode);
    assert_true(sa.st_size == sb.st_size || S_ISDIR(sa.st_mode));
    assert_int_equal(sa.st_mtim.tv_sec, sb.st_mtim.tv_sec);
    assert_int_equal(sa.st_mtim.tv_nsec, sb.st_mtim.tv_nsec);
    assert_int_equal(sa.st_nlink > 1, sb.st_nlink > 1);
    if (S_ISREG(sa.st_mode))
        same_content(a, b, (uint64_t)sa.st_size);
    if (S_ISLNK(sa.st_mode)) {
        char x[PATH_MAX], y[PATH_MAX];
        ssize_t nx = readlink(a, x, sizeof x), ny = readlink(b, y, sizeof y);
        assert_int_equal(nx, ny);
        assert_memory_equal(x, y, (size_t)nx);
    }
}

static void same_tree(const char *a, const char *b)
{
    char *na[64], *nb[64], pa[PATH_MAX], pb[PATH_MAX];
    size_t n = list_dir(a, na, 64), m = list_dir(b, nb, 64);
    assert_int_equal(n, m);
    for (size_t i = 0; i < n; i++) {
        assert_string_equal(na[i], nb[i]);
        struct stat st;
        assert_int_equal(lstat(pj(pa, a, na[i]), &st), 0);
        if (S_ISDIR(st.st_mode))
            same_tree(pa, pj(pb, b, nb[i]));
        same_entry(pa, pj(pb, b, nb[i]));
        free(na[i]);
        free(nb[i]);
    }
    same_entry(a, b);
}

/* No staging or set-aside directory is left beside the target. */
static void no_leftovers(const fixture *f)
{
    char *names[64];
    size_t n = list_dir(f->dir, names, 64);
    for (size_t i = 0; i < n; i++) {
        assert_null(strstr(names[i], ".dumont-"));
        free(names[i]);
    }
}

static snap_info create(fixture *f, const char *src)
{
    snap_info in;
    memset(&in, 0, sizeof in);
    int rc = snap_create(f->s, src, NULL, &in, f->err, sizeof f->err);
    if (rc != 0)
        fail_msg("create: %s", f->err);
    return in;
}

/* ---- tests ---- */

/* SNAP-SN4: every kind of entry comes back identical; SNAP-SN2 swap into a new path. */
static void test_round_trip(void **state)
{
    fixture *f = *state;
    char p[PATH_MAX], q[PATH_MAX];
    make_tree(f);
    snap_info in = create(f, f->src);
    assert_true(snap_id_valid(in.id));
    assert_int_equal(in.files, 10); /* 9 files + the hard link */
    assert_int_equal(in.dirs, 5);   /* root, a, a/b, emptydir, private */
    assert_int_equal(in.symlinks, 2);
    assert_string_equal(in.parent, "");
    assert_true(in.bytes_new >= BIG_SIZE && in.bytes_new < BIG_SIZE + (4u << 20));
    snap_opts o;
    snap_opts_init(&o);
    o.threads = 3;
    if (snap_restore(f->s, in.id, f->out, 0, &o, f->err, sizeof f->err) != 0)
        fail_msg("restore: %s", f->err);
    same_tree(f->src, f->out);
    struct stat a, b;
    assert_int_equal(stat(pj(p, f->out, "small.txt"), &a), 0);
    assert_int_equal(stat(pj(q, f->out, "hard"), &b), 0);
    assert_true(a.st_ino == b.st_ino); /* hard link kept */
    assert_int_equal(stat(pj(p, f->out, "sparse"), &a), 0);
    assert_true((uint64_t)a.st_size == f->sparse_size);
    assert_int_equal(stat(pj(q, f->src, "sparse"), &b), 0);
    if (b.st_blocks < 1024) /* holes stay holes where the fs has them */
        assert_true(a.st_blocks < 1024);
    no_leftovers(f);
    /* get, latest and list agree */
    snap_info g;
    char id[SNAP_ID_MAX];
    assert_int_equal(snap_get(f->s, in.id, &g, f->err, sizeof f->err), 0);
    assert_true(g.files == in.files && g.bytes == in.bytes);
    assert_int_equal(snap_latest(f->s, f->src, id, sizeof id, f->err, sizeof f->err), 0);
    assert_string_equal(id, in.id);
    snap_info *v = NULL;
    size_t n = 0;
    assert_int_equal(snap_list(f->s, &v, &n, f->err, sizeof f->err), 0);
    assert_int_equal(n, 1);
    assert_string_equal(v[0].id, in.id);
    free(v);
    uint64_t bad = 1;
    assert_int_equal(snap_verify(f->s, in.id, NULL, NULL, NULL, &bad, f->err, sizeof f->err), 0);
    assert_int_equal(bad, 0);
}

/* SNAP-SN1: unchanged files are not read again; only the changed one adds data. */
static void test_incremental(void **state)
{
    fixture *f = *state;
    char p[PATH_MAX];
    make_tree(f);
    snap_info s1 = create(f, f->src);
    snap_info s2 = create(f, f->src);
    assert_string_equal(s2.parent, s1.id);
    assert_int_equal(s2.bytes_new, 0); /* unchanged tree */
    assert_true(s2.bytes == s1.bytes);
    /* one file changed: only its bytes are new */
    write_file(pj(p, f->src, "small.txt"), "changed!\n", 9, 0644);
    snap_info s3 = create(f, f->src);
    assert_int_equal(s3.bytes_new, 9);
    /* proof that unchanged files are not read: change bytes but keep size,
     * mtime and inode; the snapshot keeps the old content (SNAP-SN1) */
    struct stat st;
    assert_int_equal(stat(pj(p, f->src, "f640"), &st), 0);
    pwrite_at(p, 0, "MODE");
    set_mtime(p, st.st_mtim.tv_sec, st.st_mtim.tv_nsec);
    snap_info s4 = create(f, f->src);
    assert_int_equal(s4.bytes_new, 0);
    assert_int_equal(snap_restore(f->s, s4.id, f->out, 0, NULL, f->err, sizeof f->err), 0);
    char buf[16] = {0};
    int fd = open(pj(p, f->out, "f640"), O_RDONLY);
    assert_true(fd >= 0);
    assert_int_equal(read(fd, buf, sizeof buf - 1), 10);
    close(fd);
    assert_string_equal(buf, "mode 0640\n");
}

static void collect_bad(const char *path, const char *why, void *ctx)
{
    (void)why;
    snprintf(ctx, PATH_MAX, "%s", path);
}

static int corrupt_packs(const char *dir, int depth)
{
    char *names[64], p[PATH_MAX];
    int n_done = 0;
    size_t n = list_dir(dir, names, 64);
    for (size_t i = 0; i < n; i++) {
        struct stat st;
        assert_int_equal(lstat(pj(p, dir, names[i]), &st), 0);
        if (S_ISDIR(st.st_mode)) {
            n_done += corrupt_packs(p, depth + 1);
        } else if (depth > 0 && st.st_size > 4096) {
            int fd = open(p, O_RDWR);
            uint8_t c;
            assert_int_equal(pread(fd, &c, 1, 2048), 1);
            c ^= 0xff;
            assert_int_equal(pwrite(fd, &c, 1, 2048), 1);
            close(fd);
            n_done++;
        }
        free(names[i]);
    }
    return n_done;
}

/* SNAP-SN2: a corrupt chunk fails the restore, names the file, and leaves an
 * existing target as it was; verify finds it. */
static void test_corrupt_restore(void **state)
{
    fixture *f = *state;
    char p[PATH_MAX], badpath[PATH_MAX] = "";
    make_tree(f);
    snap_info in = create(f, f->src);
    assert_true(corrupt_packs(pj(p, f->dir, "store/packs"), 0) > 0);
    uint64_t bad = 0;
    assert_int_equal(
        snap_verify(f->s, in.id, NULL, collect_bad, badpath, &bad, f->err, sizeof f->err), 0);
    assert_true(bad > 0);
    assert_true(badpath[0] != '\0');
    assert_int_equal(mkdir(f->out, 0755), 0);
    write_file(pj(p, f->out, "keep"), "precious\n", 9, 0644);
    int rc = snap_restore(f->s, in.id, f->out, 1, NULL, f->err, sizeof f->err);
    assert_int_not_equal(rc, 0);
    assert_non_null(strstr(f->err, "restore: "));
    char *names[4];
    size_t n = list_dir(f->out, names, 4);
    assert_int_equal(n, 1);
    assert_string_equal(names[0], "keep");
    free(names[0]);
    no_leftovers(f);
    /* the message names a damaged file (one verify reported, or another) */
    int named = 0;
    static const char *files[] = {"big.bin", "text.txt", "small.txt", "f640", "sparse"};
    for (size_t i = 0; i < sizeof files / sizeof *files; i++)
        named |= strstr(f->err, files[i]) != NULL;
    assert_true(named || strstr(f->err, badpath));
}

/* SNAP-SN2: a non-empty target needs force; an empty directory does not. */
static void test_target_rules(void **state)
{
    fixture *f = *state;
    char p[PATH_MAX];
    make_tree(f);
    snap_info in = create(f, f->src);
    assert_int_equal(mkdir(f->out, 0755), 0);
    write_file(pj(p, f->out, "keep"), "x", 1, 0644);
    assert_int_equal(snap_restore(f->s, in.id, f->out, 0, NULL, f->err, sizeof f->err),
                     DM_E_CONFLICT);
    struct stat st;
    assert_int_equal(stat(p, &st), 0);
    assert_int_equal(snap_restore(f->s, in.id, f->out, 1, NULL, f->err, sizeof f->err), 0);
    assert_int_not_equal(stat(p, &st), 0); /* old content replaced */
    same_tree(f->src, f->out);
    no_leftovers(f);
    assert_int_equal(snap_rm_tree(f->out), 0);
    assert_int_equal(mkdir(f->out, 0755), 0); /* empty directory: allowed */
    pj(p, f->out, "/");                       /* "out//": the staging dir goes beside, not inside */
    assert_int_equal(snap_restore(f->s, in.id, p, 0, NULL, f->err, sizeof f->err), 0);
    same_tree(f->src, f->out);
    no_leftovers(f);
    char id[SNAP_ID_MAX];
    assert_int_equal(snap_latest(f->s, f->dir, id, sizeof id, f->err, sizeof f->err),
                     DM_E_NOT_FOUND);
    assert_true(snap_create(f->s, pj(p, f->dir, "missing"), NULL, NULL, f->err, sizeof f->err) < 0);
    assert_int_equal(
        snap_restore(f->s, "nothex", pj(p, f->dir, "x"), 0, NULL, f->err, sizeof f->err),
        DM_E_INVALID);
}

typedef struct {
    char lines[32][128];
    int n;
} difflog;

static void on_diff(snap_change what, const char *path, void *ctx)
{
    difflog *d = ctx;
    static const char *w[] = {"A", "R", "M", "T"};
    assert_true(d->n < 32);
    snprintf(d->lines[d->n++], 128, "%s %s", w[what], path);
}

static void test_diff(void **state)
{
    fixture *f = *state;
    char p[PATH_MAX];
    make_tree(f);
    snap_info a = create(f, f->src);
    write_file(pj(p, f->src, "new"), "n", 1, 0644);
    assert_int_equal(unlink(pj(p, f->src, "empty")), 0);
    write_file(pj(p, f->src, "text.txt"), "now short\n", 10, 0644);
    assert_int_equal(chmod(pj(p, f->src, "f640"), 0600), 0);
    set_mtime(pj(p, f->src, "a/b/deep"), 1300000000, 0);
    snap_info b = create(f, f->src);
    difflog d = {.n = 0};
    assert_int_equal(snap_diff(f->s, a.id, b.id, on_diff, &d, f->err, sizeof f->err), 0);
    static const char *want[] = {"T .", "T a/b/deep", "R empty", "T f640", "A new", "M text.txt"};
    assert_int_equal(d.n, 6);
    for (int i = 0; i < d.n; i++)
        assert_string_equal(d.lines[i], want[i]);
    d.n = 0; /* a snapshot against itself: nothing */
    assert_int_equal(snap_diff(f->s, b.id, b.id, on_diff, &d, f->err, sizeof f->err), 0);
    assert_int_equal(d.n, 0);
}

static uint64_t dir_bytes(const char *dir)
{
    char *names[64], p[PATH_MAX];
    uint64_t total = 0;
    size_t n = list_dir(dir, names, 64);
    for (size_t i = 0; i < n; i++) {
        struct stat st;
        assert_int_equal(lstat(pj(p, dir, names[i]), &st), 0);
        total += S_ISDIR(st.st_mode) ? dir_bytes(p) : (uint64_t)st.st_size;
        free(names[i]);
    }
    return total;
}

/* Prune keeps the newest of each source; the others' data goes. */
static void test_prune(void **state)
{
    fixture *f = *state;
    char p[PATH_MAX], other[PATH_MAX], id[SNAP_ID_MAX];
    uint8_t *buf = malloc(2u << 20);
    snap_info s[3];
    assert_non_null(buf);
    assert_int_equal(mkdir(f->src, 0755), 0);
    for (int i = 0; i < 3; i++) { /* each snapshot holds 2 MiB of its own */
        fill_random(buf, 2u << 20, 1000 + 2 * (uint64_t)i);
        write_file(pj(p, f->src, "weights"), buf, 2u << 20, 0644);
        s[i] = create(f, f->src);
    }
    assert_int_equal(mkdir(pj(other, f->dir, "other"), 0755), 0);
    write_file(pj(p, other, "x"), "other\n", 6, 0644);
    snap_info o = create(f, other);
    uint64_t before = dir_bytes(pj(p, f->dir, "store"));
    snap_prune_stats ps;
    assert_int_equal(snap_prune(f->s, 0, SNAP_PRUNE_GRACE_MS, &ps, f->err, sizeof f->err), DM_E_INVALID);
    if (snap_prune(f->s, 1, SNAP_PRUNE_GRACE_MS, &ps, f->err, sizeof f->err) != 0)
        fail_msg("prune: %s", f->err);
    assert_int_equal(ps.snapshots_deleted, 2);
    uint64_t after = dir_bytes(pj(p, f->dir, "store"));
    if (before - after < (4u << 20))
        fail_msg("before %llu after %llu packs_deleted %llu rewritten %llu freed %llu",
                 (unsigned long long)before, (unsigned long long)after,
                 (unsigned long long)ps.packs_deleted, (unsigned long long)ps.packs_rewritten,
                 (unsigned long long)ps.bytes_freed);
    snap_info *v = NULL;
    size_t n = 0;
    assert_int_equal(snap_list(f->s, &v, &n, f->err, sizeof f->err), 0);
    assert_int_equal(n, 2);
    assert_true(!strcmp(v[0].id, o.id) || !strcmp(v[1].id, o.id));
    assert_true(!strcmp(v[0].id, s[2].id) || !strcmp(v[1].id, s[2].id));
    free(v);
    snap_info g;
    assert_int_equal(snap_get(f->s, s[0].id, &g, f->err, sizeof f->err), DM_E_NOT_FOUND);
    assert_int_equal(snap_latest(f->s, f->src, id, sizeof id, f->err, sizeof f->err), 0);
    assert_string_equal(id, s[2].id);
    uint64_t bad = 1;
    assert_int_equal(snap_verify(f->s, s[2].id, NULL, NULL, NULL, &bad, f->err, sizeof f->err), 0);
    assert_int_equal(bad, 0);
    assert_int_equal(snap_restore(f->s, s[2].id, f->out, 0, NULL, f->err, sizeof f->err), 0);
    same_tree(f->src, f->out);
    free(buf);
}

/* A damaged manifest is refused by get/restore and skipped by list. */
static void test_corrupt_manifest(void **state)
{
    fixture *f = *state;
    char p[PATH_MAX], key[PATH_MAX];
    make_tree(f);
    snap_info in = create(f, f->src);
    snprintf(key, sizeof key, "store/snapshots/%s", in.id);
    int fd = open(pj(p, f->dir, key), O_RDWR);
    assert_true(fd >= 0);
    assert_int_equal(pwrite(fd, "X", 1, 40), 1);
    close(fd);
    snap_info g;
    assert_int_equal(snap_get(f->s, in.id, &g, f->err, sizeof f->err), DM_E_PROTOCOL);
    assert_int_equal(snap_restore(f->s, in.id, f->out, 0, NULL, f->err, sizeof f->err),
                     DM_E_PROTOCOL);
    struct stat st;
    assert_int_not_equal(lstat(f->out, &st), 0);
    no_leftovers(f);
}

/* MANIF-MF2/RS2: a manifest planted in the store with a path that climbs out is
 * refused before anything is written. */
static void test_planted_manifest(void **state)
{
    fixture *f = *state;
    manifest *m = manifest_new();
    mf_entry *e = manifest_push(m);
    mf_entry_set_path(e, "", 0);
    e->type = MF_DIR;
    e = manifest_push(m);
    mf_entry_set_path(e, "../escape", 9);
    e->type = MF_FILE;
    void *buf = NULL;
    size_t len = 0;
    char id[65], key[STORE_KEY_MAX], p[PATH_MAX];
    assert_int_equal(manifest_encode(m, &buf, &len, f->err, sizeof f->err), 0);
    snap_sha256_hex(buf, len, id);
    snprintf(key, sizeof key, "snapshots/%s", id);
    assert_int_equal(store_put(f->s, key, buf, len, f->err, sizeof f->err), 0);
    assert_int_equal(snap_restore(f->s, id, f->out, 0, NULL, f->err, sizeof f->err), DM_E_PROTOCOL);
    struct stat st;
    assert_int_not_equal(lstat(pj(p, f->dir, "escape"), &st), 0);
    free(buf);
    manifest_free(m);
}

static void on_progress(uint64_t done, uint64_t total, void *ctx)
{
    uint64_t *last = ctx;
    assert_true(done >= *last && done <= total);
    *last = done;
}

/* WALK-WK4: FIFOs are skipped (and never opened, which would block); one worker
 * thread works as well as many; progress only grows. */
static void test_special_files(void **state)
{
    fixture *f = *state;
    char p[PATH_MAX];
    uint8_t *buf = malloc(3u << 20);
    assert_non_null(buf);
    assert_int_equal(mkdir(f->src, 0755), 0);
    assert_int_equal(mkfifo(pj(p, f->src, "fifo"), 0644), 0);
    fill_random(buf, 3u << 20, 5);
    write_file(pj(p, f->src, "data"), buf, 3u << 20, 0644);
    memset(buf, 0, 1u << 20); /* zeros become a hole: counted, not stored */
    write_file(pj(p, f->src, "zeros"), buf, 1u << 20, 0644);
    snap_opts o;
    uint64_t last = 0;
    snap_opts_init(&o);
    o.threads = 1;
    o.progress = on_progress;
    o.progress_ctx = &last;
    o.tag = "t1";
    snap_info in;
    assert_int_equal(snap_create(f->s, f->src, &o, &in, f->err, sizeof f->err), 0);
    assert_int_equal(last, 4u << 20);
    assert_string_equal(in.tag, "t1");
    assert_int_equal(in.files, 2);
    assert_int_equal(in.bytes, 4u << 20);
    assert_int_equal(in.bytes_new, 3u << 20);
    last = 0;
    assert_int_equal(snap_restore(f->s, in.id, f->out, 0, &o, f->err, sizeof f->err), 0);
    assert_int_equal(last, 3u << 20); /* restore counts the data it writes */
    struct stat st;
    assert_int_equal(stat(f->src, &st), 0);
    assert_int_equal(unlink(pj(p, f->src, "fifo")), 0);
    set_mtime(f->src, st.st_mtim.tv_sec, st.st_mtim.tv_nsec);
    same_tree(f->src, f->out);
    free(buf);
}

typedef struct {
    int fd;         /* pipe to the parent */
    uint64_t after; /* bytes before the child signals and stops */
} stopper;

/* In the child: once enough is done, tell the parent and wait to be killed,
 * so the kill lands in the middle of the operation (no timing guesses). */
static void stop_midway(uint64_t done, uint64_t total, void *ctx)
{
    stopper *st = ctx;
    (void)total;
    if (done < st->after)
        return;
    if (write(st->fd, "x", 1) != 1)
        _exit(3);
    for (;;)
        pause();
}

static size_t count_pack_files(const fixture *f);

/* Runs create (target NULL) or restore in a child, kill -9 once `after` bytes
 * are done (and, with new_pack, once one more pack is in the store: the pack
 * writer threads go on while the child waits in its progress callback). */
static void killed_after(fixture *f, const char *restore_id, const char *target, uint64_t after,
                         int new_pack)
{
    size_t before = new_pack ? count_pack_files(f) : 0;
    int p[2];
    assert_int_equal(pipe(p), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        stopper st = {.fd = p[1], .after = after};
        snap_opts o;
        snap_opts_init(&o);
        o.progress = stop_midway;
        o.progress_ctx = &st;
        if (restore_id)
            snap_restore(f->s, restore_id, target, 1, &o, f->err, sizeof f->err);
        else
            snap_create(f->s, f->src, &o, NULL, f->err, sizeof f->err);
        _exit(2); /* finished without stopping: the test is wrong */
    }
    char c;
    assert_int_equal(read(p[0], &c, 1), 1);
    for (int i = 0; new_pack && i < 1000 && count_pack_files(f) == before; i++)
        usleep(10000);
    assert_true(!new_pack || count_pack_files(f) > before);
    assert_int_equal(kill(pid, SIGKILL), 0);
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFSIGNALED(status));
    close(p[0]);
    close(p[1]);
}

static void killed_midway(fixture *f, const char *restore_id, const char *target)
{
    killed_after(f, restore_id, target, 4u << 20, 0);
}

/* SNAP-SN3: kill -9 during create leaves earlier snapshots intact and the store
 * usable; kill -9 during restore leaves the target as it was. */
static void test_kill9(void **state)
{
    fixture *f = *state;
    char p[PATH_MAX];
    make_tree(f);
    snap_info s1 = create(f, f->src);
    uint8_t *buf = malloc(12u << 20);
    assert_non_null(buf);
    fill_random(buf, 12u << 20, 77);
    write_file(pj(p, f->src, "big.bin"), buf, 12u << 20, 0644);
    free(buf);
    killed_midway(f, NULL, NULL);
    char id[SNAP_ID_MAX];
    assert_int_equal(snap_latest(f->s, f->src, id, sizeof id, f->err, sizeof f->err), 0);
    assert_string_equal(id, s1.id);
    uint64_t bad = 1;
    assert_int_equal(snap_verify(f->s, s1.id, NULL, NULL, NULL, &bad, f->err, sizeof f->err), 0);
    assert_int_equal(bad, 0);
    snap_info s2 = create(f, f->src); /* the store still works */
    assert_string_equal(s2.parent, s1.id);
    assert_int_equal(snap_restore(f->s, s2.id, f->out, 0, NULL, f->err, sizeof f->err), 0);
    same_tree(f->src, f->out);
    /* restore killed midway over an existing target: the target is intact */
    killed_midway(f, s1.id, f->out);
    same_tree(f->src, f->out);
    /* SNAP-RS7: its staging directory is left; the next restore of that target
     * removes it, but not the staging directory of a restore still alive
     * (here: one whose lock this process holds) */
    char **names = calloc(64, sizeof *names);
    size_t n = list_dir(f->dir, names, 64), staged = 0;
    for (size_t i = 0; i < n; i++) {
        staged += strstr(names[i], ".dumont-restore.") != NULL;
        free(names[i]);
    }
    assert_int_equal(staged, 1);
    char live[PATH_MAX + 32];
    snprintf(live, sizeof live, "%s.dumont-restore.alive1", f->out);
    assert_int_equal(mkdir(live, 0700), 0);
    int lfd = open(live, O_RDONLY | O_DIRECTORY);
    assert_true(lfd >= 0);
    assert_int_equal(flock(lfd, LOCK_EX | LOCK_NB), 0);
    assert_int_equal(snap_restore(f->s, s2.id, f->out, 1, NULL, f->err, sizeof f->err), 0);
    same_tree(f->src, f->out);
    n = list_dir(f->dir, names, 64);
    staged = 0;
    for (size_t i = 0; i < n; i++) {
        staged += strstr(names[i], ".dumont-restore.") != NULL;
        free(names[i]);
    }
    assert_int_equal(staged, 1); /* only the live one */
    struct stat st;
    assert_int_equal(stat(live, &st), 0);
    close(lfd);
    assert_int_equal(rmdir(live), 0);
    no_leftovers(f);
    free(names);
}

/* ---- pack verify, orphans, locks, damaged manifests ---- */

typedef struct {
    char path[PATH_MAX];
    off_t size;
} packfile;

/* The pack files of the store (store/packs/xx/<64 hex>), at most cap. */
static size_t find_packs(const fixture *f, packfile *out, size_t cap)
{
    char top[PATH_MAX], sub[PATH_MAX];
    size_t n = 0;
    DIR *d = opendir(pj(top, f->dir, "store/packs"));
    if (!d)
        return 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        if (de->d_name[0] == '.')
            continue;
        DIR *e = opendir(pj(sub, top, de->d_name));
        struct dirent *fe;
        while (e && (fe = readdir(e)) != NULL) {
            struct stat st;
            if (fe->d_name[0] == '.' || n == cap)
                continue;
            pj(out[n].path, sub, fe->d_name);
            if (stat(out[n].path, &st) == 0 && S_ISREG(st.st_mode))
                out[n++].size = st.st_size;
        }
        if (e)
            closedir(e);
    }
    closedir(d);
    return n;
}

static void flip_byte(const char *path, off_t off)
{
    int fd = open(path, O_RDWR);
    uint8_t b;
    assert_true(fd >= 0);
    assert_int_equal(pread(fd, &b, 1, off), 1);
    b ^= 0x20;
    assert_int_equal(pwrite(fd, &b, 1, off), 1);
    close(fd);
}

typedef struct {
    const char *why;
    int n;
} bad_seen;

static void note_bad(const char *path, const char *why, void *ctx)
{
    bad_seen *b = ctx;
    (void)path;
    b->n++;
    if (!b->why)
        b->why = strdup(why);
}

/* SNAP-R7, SNAP-PK5: a byte flipped anywhere in a pack, its trailer and header
 * included (which reading the chunks alone never looks at), fails verify,
 * naming the pack; flipped back, verify passes again. */
static void test_verify_pack_bytes(void **state)
{
    fixture *f = *state;
    packfile pk[8];
    make_tree(f);
    snap_info in = create(f, f->src);
    size_t n = find_packs(f, pk, 8);
    assert_true(n >= 1);
    off_t offs[12];
    int no = 0;
    for (int k = 1; k <= 8; k++) /* every trailer byte */
        offs[no++] = pk[0].size - k;
    offs[no++] = pk[0].size - 8 - 40; /* in the header's last entry */
    offs[no++] = 0;                   /* the first blob */
    for (int i = 0; i < no; i++) {
        bad_seen b = {0};
        uint64_t bad = 0;
        flip_byte(pk[0].path, offs[i]);
        assert_int_equal(snap_verify(f->s, in.id, NULL, note_bad, &b, &bad, f->err, sizeof f->err),
                         0);
        if (bad == 0)
            fail_msg("a byte flipped at %lld of %lld in a pack passed verify", (long long)offs[i],
                     (long long)pk[0].size);
        assert_int_equal(b.n, (int)bad);
        assert_non_null(strstr(b.why, "packs/"));
        free((void *)b.why);
        flip_byte(pk[0].path, offs[i]);
        assert_int_equal(snap_verify(f->s, in.id, NULL, NULL, NULL, &bad, f->err, sizeof f->err),
                         0);
        assert_int_equal(bad, 0);
    }
}

static size_t count_dir(const char *path)
{
    DIR *d = opendir(path);
    size_t n = 0;
    struct dirent *de;
    while (d && (de = readdir(d)) != NULL)
        n += de->d_name[0] != '.';
    if (d)
        closedir(d);
    return n;
}

static size_t count_pack_files(const fixture *f)
{
    packfile pk[64];
    return find_packs(f, pk, 64);
}

/* SNAP-R8, STORE-F10, SNAP-L2: what a killed create left (packs no index
 * names, a temp file, its lock) is freed by prune once older than the grace;
 * within the grace it is kept and said so. What the kept snapshot needs stays. */
static void test_prune_killed_create(void **state)
{
    fixture *f = *state;
    char p[PATH_MAX], tmp[PATH_MAX];
    make_tree(f);
    snap_info s1 = create(f, f->src);
    size_t big = 40u << 20;
    uint8_t *buf = malloc(big);
    assert_non_null(buf);
    fill_random(buf, big, 4242);
    write_file(pj(p, f->src, "big.bin"), buf, big, 0644);
    free(buf);
    killed_after(f, NULL, NULL, 36u << 20, 1);
    assert_int_equal(count_dir(pj(p, f->dir, "store/locks")), 1); /* the dead create's */
    /* a temp file of a put cut short, two hours old */
    pj(tmp, f->dir, "store/packs/.tmp.999999.1");
    write_file(tmp, "partial", 7, 0600);
    set_mtime(tmp, time(NULL) - 7200, 0);
    snap_prune_stats ps;
    if (snap_prune(f->s, 1, SNAP_PRUNE_GRACE_MS, &ps, f->err, sizeof f->err) != 0)
        fail_msg("prune: %s", f->err);
    assert_int_equal(ps.snapshots_deleted, 0);
    assert_int_equal(ps.orphans_deleted, 0);
    assert_true(ps.orphans_kept >= 1); /* within the hour: a create may be writing them */
    assert_true(ps.orphan_bytes_kept >= (8u << 20));
    assert_int_equal(ps.temp_deleted, 1);
    struct stat st;
    assert_int_not_equal(lstat(tmp, &st), 0);
    assert_int_equal(count_dir(pj(p, f->dir, "store/locks")), 0); /* stale: removed */
    uint64_t before = dir_bytes(pj(p, f->dir, "store"));
    if (snap_prune(f->s, 1, 0, &ps, f->err, sizeof f->err) != 0)
        fail_msg("prune: %s", f->err);
    assert_true(ps.orphans_deleted >= 1);
    assert_int_equal(ps.orphans_kept, 0);
    assert_true(ps.bytes_freed >= (8u << 20));
    uint64_t after = dir_bytes(pj(p, f->dir, "store"));
    assert_true(before - after >= ps.bytes_freed - 4096);
    uint64_t bad = 1;
    assert_int_equal(snap_verify(f->s, s1.id, NULL, NULL, NULL, &bad, f->err, sizeof f->err), 0);
    assert_int_equal(bad, 0);
    snap_info s2 = create(f, f->src);
    assert_string_equal(s2.parent, s1.id);
    assert_int_equal(snap_restore(f->s, s2.id, f->out, 0, NULL, f->err, sizeof f->err), 0);
    same_tree(f->src, f->out);
}

/* Writes a lock object as another holder would (SNAP-L1 key and content). */
static void put_lock(fixture *f, const char *kind, int64_t age_ms, const char *host, long pid,
                     char *key, size_t keylen)
{
    char body[256];
    int n = snprintf(body, sizeof body, "dumont-lock v1\nkind=%s\nhost=%s\npid=%ld\n", kind, host,
                     pid);
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    int64_t now = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
    snprintf(key, keylen, "locks/%s-%016lld-00000000000000aa", kind, (long long)(now - age_ms));
    assert_int_equal(store_put(f->s, key, body, (size_t)n, f->err, sizeof f->err), 0);
}

typedef struct {
    fixture *f;
    int rc;
    snap_info in;
    char err[512];
    int fd_started; /* create: written once it is past its lock */
    int fd_go;      /* create: read before it goes on */
    int waited;
} bg_create;

static void hold_midway(uint64_t done, uint64_t total, void *ctx)
{
    bg_create *b = ctx;
    char c;
    (void)total;
    if (b->waited || done == 0)
        return;
    b->waited = 1;
    assert_int_equal(write(b->fd_started, "s", 1), 1);
    assert_int_equal(read(b->fd_go, &c, 1), 1);
}

static void *bg_create_main(void *arg)
{
    bg_create *b = arg;
    snap_opts o;
    snap_opts_init(&o);
    o.progress = hold_midway;
    o.progress_ctx = b;
    b->rc = snap_create(b->f->s, b->f->src, &o, &b->in, b->err, sizeof b->err);
    return NULL;
}

/* SNAP-L1: prune refuses while a create runs (here one held halfway, its
 * packs written but not yet indexed, in this process, and one of another
 * machine through its lock object) and deletes nothing; the create then
 * finishes into a whole snapshot. A stale lock of another machine blocks
 * nobody. A create waits for a running prune. */
static void test_prune_concurrent_create(void **state)
{
    fixture *f = *state;
    char p[PATH_MAX], key[STORE_KEY_MAX], key2[STORE_KEY_MAX];
    make_tree(f);
    snap_info s1 = create(f, f->src);
    size_t big = 20u << 20;
    uint8_t *buf = malloc(big);
    assert_non_null(buf);
    fill_random(buf, big, 99);
    write_file(pj(p, f->src, "big.bin"), buf, big, 0644);
    free(buf);
    int a[2], g[2];
    assert_int_equal(pipe(a), 0);
    assert_int_equal(pipe(g), 0);
    bg_create b = {.f = f, .fd_started = a[1], .fd_go = g[0]};
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, bg_create_main, &b), 0);
    char c;
    assert_int_equal(read(a[0], &c, 1), 1);
    snap_prune_stats ps;
    assert_int_equal(snap_prune(f->s, 1, 0, &ps, f->err, sizeof f->err), DM_E_BUSY);
    assert_non_null(strstr(f->err, "create"));
    assert_int_equal(write(g[1], "g", 1), 1);
    assert_int_equal(pthread_join(th, NULL), 0);
    if (b.rc != 0)
        fail_msg("create: %s", b.err);
    uint64_t bad = 1;
    assert_int_equal(snap_verify(f->s, b.in.id, NULL, NULL, NULL, &bad, f->err, sizeof f->err), 0);
    assert_int_equal(bad, 0);
    /* another machine's create, alive (fresh lock) */
    put_lock(f, "create", 1000, "another-host.example", 4242, key, sizeof key);
    assert_int_equal(snap_prune(f->s, 1, 0, &ps, f->err, sizeof f->err), DM_E_BUSY);
    assert_non_null(strstr(f->err, "another-host.example"));
    snap_info g1;
    assert_int_equal(snap_get(f->s, s1.id, &g1, f->err, sizeof f->err), 0); /* not pruned */
    assert_int_equal(store_delete(f->s, key, f->err, sizeof f->err), 0);
    /* stale: 20 minutes without a refresh */
    put_lock(f, "create", 20 * 60 * 1000, "another-host.example", 4242, key, sizeof key);
    if (snap_prune(f->s, 1, 0, &ps, f->err, sizeof f->err) != 0)
        fail_msg("prune: %s", f->err);
    assert_int_equal(ps.snapshots_deleted, 1);
    assert_int_equal(count_dir(pj(p, f->dir, "store/locks")), 0);
    /* a create waits for a prune (a live one of this process) */
    put_lock(f, "prune", 0, "another-host.example", 4242, key2, sizeof key2);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        usleep(1500 * 1000);
        _exit(store_delete(f->s, key2, f->err, sizeof f->err) == 0 ? 0 : 1);
    }
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    snap_info s3 = create(f, f->src);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(t1.tv_sec - t0.tv_sec >= 1);
    assert_string_equal(s3.parent, b.in.id);
    close(a[0]);
    close(a[1]);
    close(g[0]);
    close(g[1]);
}

/* SNAP-I6, SNAP-I7: list shows a damaged manifest, marked, with what its
 * header tells; latest skips it; prune neither counts nor deletes it. */
static void test_list_damaged(void **state)
{
    fixture *f = *state;
    char p[PATH_MAX], key[PATH_MAX];
    make_tree(f);
    snap_info s1 = create(f, f->src);
    write_file(pj(p, f->src, "new.txt"), "new\n", 4, 0644);
    snap_info s2 = create(f, f->src);
    snprintf(key, sizeof key, "store/snapshots/%s", s1.id);
    struct stat st;
    assert_int_equal(stat(pj(p, f->dir, key), &st), 0);
    flip_byte(p, st.st_size - 3); /* in the body: the header still parses */
    snap_info *v = NULL;
    size_t n = 0;
    assert_int_equal(snap_list(f->s, &v, &n, f->err, sizeof f->err), 0);
    assert_int_equal(n, 2);
    int found = 0;
    for (size_t i = 0; i < n; i++) {
        if (!strcmp(v[i].id, s1.id)) {
            found++;
            assert_int_equal(v[i].problem_rc, DM_E_PROTOCOL);
            assert_non_null(strstr(v[i].problem, "damaged"));
            assert_int_equal(v[i].time_ms, s1.time_ms);
        } else {
            assert_string_equal(v[i].problem, "");
        }
    }
    assert_int_equal(found, 1);
    free(v);
    /* the header too: still listed, marked */
    assert_int_equal(truncate(p, 10), 0);
    assert_int_equal(snap_list(f->s, &v, &n, f->err, sizeof f->err), 0);
    assert_int_equal(n, 2);
    for (size_t i = 0; i < n; i++)
        assert_true(!strcmp(v[i].id, s1.id) ? v[i].problem[0] != '\0' : v[i].problem[0] == '\0');
    free(v);
    snap_prune_stats ps;
    if (snap_prune(f->s, 1, 0, &ps, f->err, sizeof f->err) != 0)
        fail_msg("prune: %s", f->err);
    assert_int_equal(ps.snapshots_deleted, 0);
    assert_int_equal(ps.snapshots_damaged, 1);
    assert_int_equal(stat(p, &st), 0);
    uint64_t bad = 1;
    assert_int_equal(snap_verify(f->s, s2.id, NULL, NULL, NULL, &bad, f->err, sizeof f->err), 0);
    assert_int_equal(bad, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_round_trip, setup, teardown),
        cmocka_unit_test_setup_teardown(test_incremental, setup, teardown),
        cmocka_unit_test_setup_teardown(test_corrupt_restore, setup, teardown),
        cmocka_unit_test_setup_teardown(test_target_rules, setup, teardown),
        cmocka_unit_test_setup_teardown(test_diff, setup, teardown),
        cmocka_unit_test_setup_teardown(test_prune, setup, teardown),
        cmocka_unit_test_setup_teardown(test_corrupt_manifest, setup, teardown),
        cmocka_unit_test_setup_teardown(test_planted_manifest, setup, teardown),
        cmocka_unit_test_setup_teardown(test_special_files, setup, teardown),
        cmocka_unit_test_setup_teardown(test_kill9, setup, teardown),
        cmocka_unit_test_setup_teardown(test_verify_pack_bytes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_prune_killed_create, setup, teardown),
        cmocka_unit_test_setup_teardown(test_prune_concurrent_create, setup, teardown),
        cmocka_unit_test_setup_teardown(test_list_damaged, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

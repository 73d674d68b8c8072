/* The file:// store: one file per object under a root directory; the key is
 * the relative path ("packs/3f/3f9a..." -> <root>/packs/3f/3f9a...).
 *
 * Keys were validated by store.c (STORE-S1), so a key never names "..", "." or a
 * hidden file; this back end names its temp files ".tmp.<pid>.<n>", which no
 * key can be, so list() can skip them without ambiguity.
 *
 * STORE-F1 (STORE-ST1): put writes a temp file in the object's own directory, fsyncs it,
 *     hard-links it to the final name, unlinks the temp name and fsyncs the
 *     directory: a reader sees the whole object or none.
 * STORE-F2 (STORE-ST2): link() fails with EEXIST when the object exists, so a second put
 *     keeps the first content and succeeds; of two racing writers the first
 *     wins. Where hard links are unsupported, rename() is used after an
 *     existence check (a race there can replace an object with an identical
 *     one, which content-addressed keys make harmless).
 * STORE-F3 (STORE-ST3): get checks the size before allocating and never reads more than
 *     max_len bytes, even if the file grows meanwhile.
 * STORE-F4: objects are opened with O_NOFOLLOW: a symlink planted as an object is
 *     not followed out of the root. Intermediate directories are created on
 *     demand with mode 0700, objects with 0600: a store holds workspaces,
 *     which may hold secrets (docs/security.md "Files"), whatever the
 *     umask of the program that writes it.
 * STORE-F6 (STORE-ST4): a lazy put skips both fsyncs; sync() is one syncfs() of the
 *     store's file system, which writes back every object and directory
 *     entry put so far (the kernel has been writing them back meanwhile).
 * STORE-F7: a lazy put of a large page-aligned buffer (a pack) is written with
 *     O_DIRECT (the unaligned tail buffered) and fdatasync'd by the caller's
 *     thread, the pack writer, which runs beside the work. In a buffered
 *     write the page-cache copy and the page allocation cost more CPU than
 *     hashing (and vary 10x in a VM), and the one sync at the end had to
 *     push out every byte at once (~0.5 s per 800 MB stalled the end of a
 *     snapshot). Where O_DIRECT is refused (tmpfs, some FUSE) the write is
 *     buffered as before. Only the directory entries are left to sync().
 * STORE-F8 (STORE-ST5): prefetch is POSIX_FADV_WILLNEED on the object's file.
 * STORE-F5: list() walks the directory of the prefix recursively, bounded by the
 *     key length cap, reports regular files only, and skips dot names.
 * STORE-F10: clean_temp (STORE-ST8) removes .tmp.* files older than the cut-off;
 *     see clean_one().
 * STORE-F9: every operation but prefetch is counted with its result for /metrics
 *     (store_stats.c): get and get_range as get, exists as head. */
#define _GNU_SOURCE /* syncfs */
#include "store/store_backend.h"

#include "util/error.h"
#include "util/fsutil.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define ROOT_MAX (PATH_MAX - STORE_KEY_MAX - 64)

typedef struct {
    char root[ROOT_MAX];
} fstore;

static atomic_uint tmp_seq; /* unique temp names across threads */

static int full_path(const fstore *fs, const char *key, char *buf, size_t len)
{
    int n = snprintf(buf, len, "%s/%s", fs->root, key);
    return (n < 0 || (size_t)n >= len) ? -ENAMETOOLONG : 0;
}

static int fail_errno(char *err, size_t errlen, int rc, const char *what, const char *key)
{
    if (rc == -ENOENT)
        return dm_fail(err, errlen, DM_E_NOT_FOUND, "store: %s %s: not found", what, key);
    return dm_fail(err, errlen, rc, "store: %s %s: %s", what, key, strerror(-rc));
}

static int fsync_dir(const char *dir)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    int rc = fsync(fd) == 0 ? 0 : -errno;
    close(fd);
    return rc;
}

static int write_all(int fd, const void *data, size_t len)
{
    const char *p = data;
    while (len > 0) {
        ssize_t w = write(fd, p, len);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0)
            return -errno;
        p += w;
        len -= (size_t)w;
    }
    return 0;
}

#define DIRECT_ALIGN 4096u
#define DIRECT_MIN   (1u << 20)

/* STORE-F7: writes data to the empty file fd, the aligned body with O_DIRECT if
 * the file system takes it, and makes it durable. 1: not attempted (the
 * caller writes it buffered), 0: done, < 0: -errno. */
static int write_direct(int fd, const void *data, size_t len)
{
    size_t body = len & ~(size_t)(DIRECT_ALIGN - 1);
    int fl = fcntl(fd, F_GETFL);
    if ((uintptr_t)data % DIRECT_ALIGN || body < DIRECT_MIN || fl < 0 ||
        fcntl(fd, F_SETFL, fl | O_DIRECT) != 0)
        return 1;
    int rc = write_all(fd, data, body);
    if (fcntl(fd, F_SETFL, fl) != 0 && rc == 0)
        rc = -errno;
    if (rc == -EINVAL) /* alignment the device refuses: start again, buffered */
        return ftruncate(fd, 0) == 0 && lseek(fd, 0, SEEK_SET) == 0 ? 1 : -errno;
    if (rc == 0)
        rc = write_all(fd, (const char *)data + body, len - body);
    if (rc == 0 && fdatasync(fd) != 0)
        rc = -errno;
    return rc;
}

/* Creates and fills the temp file tmp (STORE-F1); the caller links it. */
static int write_temp(const char *tmp, const void *data, size_t len, int lazy)
{
    int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0)
        return -errno;
    int rc = lazy ? write_direct(fd, data, len) : 1;
    if (rc == 1)
        rc = write_all(fd, data, len);
    if (rc == 0 && !lazy && fsync(fd) != 0)
        rc = -errno;
    if (close(fd) != 0 && rc == 0)
        rc = -errno;
    if (rc)
        unlink(tmp);
    return rc;
}

/* Moves tmp to path unless path exists (STORE-F2). Returns 0 either way. */
static int publish(const char *tmp, const char *path)
{
    int rc = link(tmp, path) == 0 ? 0 : -errno;
    if (rc == -EEXIST)
        rc = 0;
    else if (rc == -EPERM || rc == -EOPNOTSUPP || rc == -ENOSYS)
        rc = access(path, F_OK) == 0 ? 0 : rename(tmp, path) == 0 ? 0 : -errno;
    unlink(tmp);
    return rc;
}

static int fput(void *st, const char *key, const void *data, size_t len, int flags, char *err,
                size_t errlen)
{
    int lazy = (flags & STORE_PUT_LAZY) != 0;
    fstore *fs = st;
    char path[PATH_MAX], tmp[PATH_MAX];
    int rc = full_path(fs, key, path, sizeof path);
    if (rc)
        goto out;
    struct stat sb;
    if (lstat(path, &sb) == 0) { /* STORE-ST2: already there, nothing to write */
        rc = S_ISREG(sb.st_mode) ? 0 : -EEXIST;
        goto out;
    }
    char *slash = strrchr(path, '/'); /* exists: the root is non-empty */
    int n = snprintf(tmp, sizeof tmp, "%.*s/.tmp.%ld.%u", (int)(slash - path), path, (long)getpid(),
                     atomic_fetch_add(&tmp_seq, 1));
    if (n < 0 || (size_t)n >= sizeof tmp) {
        rc = -ENAMETOOLONG;
        goto out;
    }
    rc = write_temp(tmp, data, len, lazy);
    if (rc == -ENOENT) { /* directory missing: create it on demand */
        *slash = '\0';
        rc = fs_mkdir_p(path, 0700);
        *slash = '/';
        if (rc == 0)
            rc = write_temp(tmp, data, len, lazy);
    }
    if (rc == 0)
        rc = publish(tmp, path);
    if (rc == 0 && !lazy) {
        *slash = '\0';
        rc = fsync_dir(path);
    }
out:
    return rc ? fail_errno(err, errlen, rc, "put", key) : 0;
}

static int fsync_all(void *st, char *err, size_t errlen)
{
    fstore *fs = st;
    int fd = open(fs->root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    int rc = fd < 0 ? -errno : syncfs(fd) == 0 ? 0 : -errno;
    if (fd >= 0)
        close(fd);
    return rc ? dm_fail(err, errlen, rc, "store: sync %s: %s", fs->root, strerror(-rc)) : 0;
}

static int open_object(const fstore *fs, const char *key, struct stat *ret_st)
{
    char path[PATH_MAX];
    int rc = full_path(fs, key, path, sizeof path);
    if (rc)
        return rc;
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0)
        return errno == ELOOP ? -ENOENT : -errno;
    if (fstat(fd, ret_st) != 0 || !S_ISREG(ret_st->st_mode)) {
        rc = S_ISREG(ret_st->st_mode) ? -errno : -ENOENT;
        close(fd);
        return rc;
    }
    return fd;
}

/* Reads up to len bytes at off; returns the count read or -errno. */
static ssize_t read_at(int fd, void *buf, size_t len, uint64_t off)
{
    size_t got = 0;
    while (got < len) {
        ssize_t r = pread(fd, (char *)buf + got, len - got, (off_t)(off + got));
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            return -errno;
        if (r == 0)
            break;
        got += (size_t)r;
    }
    return (ssize_t)got;
}

static int fget(void *st, const char *key, size_t max_len, void **ret_data, size_t *ret_len,
                char *err, size_t errlen)
{
    struct stat sb;
    char *buf = NULL;
    int rc = 0;
    int fd = open_object(st, key, &sb);
    if (fd < 0)
        return fail_errno(err, errlen, fd, "get", key);
    if ((uint64_t)sb.st_size > max_len) { /* STORE-F3 */
        rc = dm_fail(err, errlen, DM_E_TOO_BIG, "store: get %s: %lld bytes, cap %zu", key,
                     (long long)sb.st_size, max_len);
        goto out;
    }
    size_t len = (size_t)sb.st_size;
    buf = malloc(len ? len : 1);
    if (!buf) {
        rc = fail_errno(err, errlen, -ENOMEM, "get", key);
        goto out;
    }
    ssize_t got = read_at(fd, buf, len, 0);
    if (got < 0 || (size_t)got != len) {
        rc = got < 0 ? fail_errno(err, errlen, (int)got, "get", key)
                     : dm_fail(err, errlen, DM_E_PROTOCOL, "store: get %s: short read", key);
        goto out;
    }
    *ret_data = buf;
    *ret_len = len;
    buf = NULL;
out:
    free(buf);
    close(fd);
    return rc;
}

static int fget_range(void *st, const char *key, uint64_t off, size_t len, void *buf, char *err,
                      size_t errlen)
{
    struct stat sb;
    int fd = open_object(st, key, &sb);
    if (fd < 0)
        return fail_errno(err, errlen, fd, "get", key);
    int rc = 0;
    ssize_t got = read_at(fd, buf, len, off);
    if (got < 0)
        rc = fail_errno(err, errlen, (int)got, "get", key);
    else if ((size_t)got != len)
        rc = dm_fail(err, errlen, DM_E_PROTOCOL,
                     "store: get %s: object too short for %zu bytes at offset %llu", key, len,
                     (unsigned long long)off);
    close(fd);
    return rc;
}

static int fexists(void *st, const char *key, int *ret_exists, char *err, size_t errlen)
{
    char path[PATH_MAX];
    struct stat sb;
    int rc = full_path(st, key, path, sizeof path);
    if (rc)
        return fail_errno(err, errlen, rc, "stat", key);
    if (lstat(path, &sb) != 0) {
        if (errno != ENOENT && errno != ENOTDIR)
            return fail_errno(err, errlen, -errno, "stat", key);
        *ret_exists = 0;
        return 0;
    }
    *ret_exists = S_ISREG(sb.st_mode);
    return 0;
}

static int fdel(void *st, const char *key, char *err, size_t errlen)
{
    char path[PATH_MAX];
    int rc = full_path(st, key, path, sizeof path);
    if (rc == 0 && unlink(path) != 0)
        rc = (errno == ENOENT || errno == ENOTDIR) ? 0 : -errno;
    if (rc == 0) { /* make the removal durable too */
        *strrchr(path, '/') = '\0';
        int frc = fsync_dir(path);
        rc = frc == -ENOENT ? 0 : frc;
    }
    return rc ? fail_errno(err, errlen, rc, "delete", key) : 0;
}

typedef struct {
    const fstore *fs;
    const char *prefix; /* full prefix the keys must start with */
    store_list_info_fn fn;
    void *ctx;
    char *err;
    size_t errlen;
    int64_t temp_before_ms; /* clean_temp: remove .tmp.* written before this */
    uint64_t temp_files, temp_bytes;
} list_walk;

static int64_t mtime_ms_of(const struct stat *sb)
{
    return (int64_t)sb->st_mtim.tv_sec * 1000 + sb->st_mtim.tv_nsec / 1000000;
}

/* STORE-F10 (STORE-ST8): a temp file of an interrupted put (".tmp.<pid>.<n>",
 * STORE-F1) last written before the cut-off is removed. A put in progress
 * writes its temp file continuously and is done within seconds, so a
 * cut-off of minutes never removes one that is still being written. */
static void clean_one(list_walk *w, DIR *d, const char *name)
{
    struct stat sb;
    if (strncmp(name, ".tmp.", 5) != 0 ||
        fstatat(dirfd(d), name, &sb, AT_SYMLINK_NOFOLLOW) != 0 || !S_ISREG(sb.st_mode) ||
        mtime_ms_of(&sb) >= w->temp_before_ms)
        return;
    if (unlinkat(dirfd(d), name, 0) == 0) {
        w->temp_files++;
        w->temp_bytes += (uint64_t)sb.st_size;
    }
}

/* Walks the directory holding key prefix rel (STORE-F5). */
static int walk(list_walk *w, char *rel, size_t rlen, int depth)
{
    char path[PATH_MAX];
    if (depth > STORE_KEY_MAX / 2)
        return 0;
    int rc = full_path(w->fs, rel, path, sizeof path);
    if (rc)
        return fail_errno(w->err, w->errlen, rc, "list", rel);
    DIR *d = opendir(path);
    if (!d)
        return (errno == ENOENT || errno == ENOTDIR)
                   ? 0
                   : fail_errno(w->err, w->errlen, -errno, "list", rel);
    struct dirent *de;
    while (rc == 0 && (de = readdir(d)) != NULL) {
        size_t n = strlen(de->d_name);
        if (de->d_name[0] == '.' && w->temp_before_ms > 0)
            clean_one(w, d, de->d_name);
        if (de->d_name[0] == '.' || rlen + 1 + n >= STORE_KEY_MAX)
            continue; /* dot names are temp files (or "." / ".."); longer: not a key */
        int k = rlen ? snprintf(rel + rlen, STORE_KEY_MAX - rlen, "/%s", de->d_name)
                     : snprintf(rel, STORE_KEY_MAX, "%s", de->d_name);
        size_t klen = rlen + (size_t)k;
        size_t cmp = klen < strlen(w->prefix) ? klen : strlen(w->prefix);
        struct stat sb;
        if (strncmp(rel, w->prefix, cmp) != 0 || !store_key_valid(rel) ||
            fstatat(dirfd(d), de->d_name, &sb, AT_SYMLINK_NOFOLLOW) != 0)
            goto next;
        if (S_ISDIR(sb.st_mode))
            rc = walk(w, rel, klen, depth + 1);
        else if (S_ISREG(sb.st_mode) && klen >= strlen(w->prefix) && w->fn)
            rc = w->fn(rel, (uint64_t)sb.st_size, mtime_ms_of(&sb), w->ctx);
    next:
        rel[rlen] = '\0';
    }
    closedir(d);
    return rc;
}

static int flist(void *st, const char *prefix, store_list_info_fn fn, void *ctx, char *err,
                 size_t errlen)
{
    list_walk w = {.fs = st, .prefix = prefix, .fn = fn, .ctx = ctx, .err = err, .errlen = errlen};
    char rel[STORE_KEY_MAX];
    /* start at the directory part of the prefix ("packs/3f" -> "packs") */
    const char *slash = strrchr(prefix, '/');
    size_t rlen = slash ? (size_t)(slash - prefix) : 0;
    memcpy(rel, prefix, rlen);
    rel[rlen] = '\0';
    return walk(&w, rel, rlen, 0);
}

/* STORE-F8: asks the kernel to read the object into the page cache in the
 * background (POSIX_FADV_WILLNEED). Packs written with O_DIRECT (STORE-F7) are
 * not in the cache, and a restore reading them chunk by chunk from disk
 * was 3x slower than from memory; read-ahead of the next packs overlaps
 * the disk with the restore's work. */
static void fprefetch(void *st, const char *key)
{
    char path[PATH_MAX];
    if (full_path(st, key, path, sizeof path) != 0)
        return;
    int fd = open(path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0)
        return;
    posix_fadvise(fd, 0, 0, POSIX_FADV_WILLNEED);
    close(fd);
}

static void fclose_store(void *st)
{
    free(st);
}

/* STORE-F9 */
static int cput(void *st, const char *key, const void *data, size_t len, int flags, char *err,
                size_t errlen)
{
    return store_count_file(STORE_OP_PUT, fput(st, key, data, len, flags, err, errlen));
}

static int csync(void *st, char *err, size_t errlen)
{
    return store_count_file(STORE_OP_SYNC, fsync_all(st, err, errlen));
}

static int cget(void *st, const char *key, size_t max_len, void **ret_data, size_t *ret_len,
                char *err, size_t errlen)
{
    return store_count_file(STORE_OP_GET, fget(st, key, max_len, ret_data, ret_len, err, errlen));
}

static int cget_range(void *st, const char *key, uint64_t off, size_t len, void *buf, char *err,
                      size_t errlen)
{
    return store_count_file(STORE_OP_GET, fget_range(st, key, off, len, buf, err, errlen));
}

static int cexists(void *st, const char *key, int *ret_exists, char *err, size_t errlen)
{
    return store_count_file(STORE_OP_HEAD, fexists(st, key, ret_exists, err, errlen));
}

static int clist(void *st, const char *prefix, store_list_info_fn fn, void *ctx, char *err,
                 size_t errlen)
{
    return store_count_file(STORE_OP_LIST, flist(st, prefix, fn, ctx, err, errlen));
}

/* STORE-F10: the whole tree, removing old temp files, reporting no key. */
static int fclean_temp(void *st, int64_t before_ms, uint64_t *ret_files, uint64_t *ret_bytes,
                       char *err, size_t errlen)
{
    list_walk w = {.fs = st, .prefix = "", .err = err, .errlen = errlen,
                   .temp_before_ms = before_ms > 0 ? before_ms : 1};
    char rel[STORE_KEY_MAX] = "";
    int rc = store_count_file(STORE_OP_DELETE, walk(&w, rel, 0, 0));
    *ret_files = w.temp_files;
    *ret_bytes = w.temp_bytes;
    return rc;
}

static int cdel(void *st, const char *key, char *err, size_t errlen)
{
    return store_count_file(STORE_OP_DELETE, fdel(st, key, err, errlen));
}

static const store_ops file_ops = {
    .scheme = "file",
    .put = cput,
    .get = cget,
    .get_range = cget_range,
    .exists = cexists,
    .list = clist,
    .del = cdel,
    .sync = csync,
    .close = fclose_store,
    .prefetch = fprefetch,
    .clean_temp = fclean_temp,
};

int store_file_open(const char *dir, const store_ops **ret_ops, void **ret_st, char *err,
                    size_t errlen)
{
    size_t n = strlen(dir);
    while (n > 1 && dir[n - 1] == '/')
        n--;
    if (n == 0 || n >= ROOT_MAX)
        return dm_fail(err, errlen, DM_E_INVALID, "store: directory path empty or too long");
    fstore *fs = calloc(1, sizeof *fs);
    if (!fs)
        return dm_fail(err, errlen, -ENOMEM, "store: out of memory");
    memcpy(fs->root, dir, n);
    fs->root[n] = '\0';
    int rc = fs_mkdir_p(fs->root, 0700);
    struct stat sb;
    if (rc == 0 && stat(fs->root, &sb) != 0)
        rc = -errno;
    if (rc == 0 && !S_ISDIR(sb.st_mode))
        rc = -ENOTDIR;
    if (rc) {
        free(fs);
        return dm_fail(err, errlen, rc, "store: cannot open directory: %s", strerror(-rc));
    }
    *ret_ops = &file_ops;
    *ret_st = fs;
    return 0;
}

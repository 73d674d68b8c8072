/* snap_restore() (SNAP-SN2): rebuild a snapshot's tree in a staging directory
 * beside the target, then swap it in.
 *
 * Steps: check the target; mkdtemp <target>.dumont-restore.XXXXXX; create
 * the directories (0700 while we fill them); create each file, ftruncate it
 * to its size (holes stay holes: only data extents are written) and hand its
 * chunks to the worker pool, which reads each with repo_read_chunk()
 * (verified, SNAP-RP1) and pwrite()s it at its offset; then symlinks and hard
 * links; then owners (as root), modes and mtimes: a file's through its
 * descriptor when its last chunk is written, directories and symlinks in
 * reverse tree order, so a directory's mtime is final; then the swap.
 *
 * SNAP-RS1: the target is touched only by the final renames, after every chunk
 *      was read and verified and every entry created: on any failure the
 *      staging directory is removed and the error names the file.
 * SNAP-RS2: nothing is written through a symlink: manifest_decode() guarantees
 *      (MANIF-MF2) each entry's parent is a directory entry, which we created
 *      ourselves with mkdir in a fresh mkdtemp directory; files are created
 *      O_CREAT|O_EXCL|O_NOFOLLOW, so an entry can never land on something
 *      that already exists.
 * SNAP-RS3: bounded: per worker one buffer of the largest chunk, and no more
 *      workers than fit SNAP_BUF_BUDGET; at most
 *      RS_OPEN_MAX files open; the job queue holds 64 jobs.
 * SNAP-RS4: swap: no target -> rename; an empty directory -> rename over it
 *      (atomic on Linux); otherwise only with force: target renamed aside,
 *      staging renamed in (on failure the old one is renamed back), old
 *      tree removed.
 * SNAP-RS6: read-ahead: a second cursor walks the manifest's data extents ahead
 *      of the producer and hints each new pack to the store (repo_prefetch,
 *      STORE-ST5), staying RS_AHEAD packs ahead of the job being queued. Packs,
 *      not jobs, are counted: 64 queued jobs may be 4 packs of model
 *      weights or a few hundred small files in one pack. On s3:// the next
 *      packs then download while the workers decode the current one.
 * SNAP-RS7: a restore holds flock() on its staging directory while it lives; a
 *      restore killed with -9 loses the lock with its life. Before making
 *      its own, a restore removes the staging directories beside the same
 *      target whose lock it can take (their owner is gone). Only staging
 *      directories: a "<target>.dumont-old.*" may hold the user's previous
 *      tree (a swap cut short) and is never touched.
 * SNAP-RS5: timing (snap_opts.restore_stats) is measured per thread: each job
 *      notes its thread's store_thread_fetch_ns() before and after reading
 *      its chunk, and its own busy time; the fetch share of the data phase's
 *      wall time is fetch/busy (snapshot.h). No clock is read when stats
 *      are not asked for. */
#include "snapshot/snapshot.h"

#include "snapshot/repo.h"
#include "snapshot/snap_internal.h"
#include "snapshot/workq.h"
#include "util/clock.h"
#include "util/error.h"
#include "util/log.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#define RS_OPEN_MAX 256
#define RS_AHEAD    4 /* SNAP-RS6 */
#define RS_PATH     (PATH_MAX + MF_PATH_MAX + 64)

typedef struct {
    repo *r;
    const manifest *m;
    const snap_opts *o;
    char stage[PATH_MAX];
    pthread_mutex_t lock; /* rc/err, open_files, progress */
    pthread_cond_t room;
    int open_files;
    int rc;
    char err[768];
    uint8_t **buf;
    size_t bufcap;
    uint64_t done, total;
    int timed;                  /* SNAP-RS5: o->restore_stats asked for */
    uint64_t fetch_ns, busy_ns; /* SNAP-RS5: sums over worker jobs */
    uint64_t chunks;
    int stage_fd; /* SNAP-RS7: holds the staging directory's lock; -1 none */
    /* SNAP-RS6: the read-ahead cursor, and where each hinted pack starts */
    size_t la_fi;
    uint32_t la_xi, la_pack;
    size_t ring_fi[RS_AHEAD];
    uint32_t ring_xi[RS_AHEAD];
    int ring_head, ring_n;
} rctx;

typedef struct {
    int fd, refs; /* refs: jobs + the producer */
    uint32_t fi;
} rfile;

typedef struct {
    rfile *f;
    uint32_t xi;
    uint64_t off;
} rjob;

static void rs_error(rctx *c, int rc, const char *path, const char *why)
{
    pthread_mutex_lock(&c->lock);
    if (c->rc == 0) {
        c->rc = rc;
        snprintf(c->err, sizeof c->err, "restore: %s: %s", path[0] ? path : ".", why);
    }
    pthread_mutex_unlock(&c->lock);
}

static int rs_failed(rctx *c)
{
    pthread_mutex_lock(&c->lock);
    int rc = c->rc;
    pthread_mutex_unlock(&c->lock);
    return rc;
}

static void stage_path(const rctx *c, const mf_entry *e, char *buf, size_t len)
{
    if (e->path_len)
        snprintf(buf, len, "%s/%s", c->stage, e->path);
    else
        snprintf(buf, len, "%s", c->stage);
}

static void mtime_ts(const mf_entry *e, struct timespec ts[2])
{
    ts[0] = (struct timespec){.tv_sec = 0, .tv_nsec = UTIME_OMIT};
    ts[1] =
        (struct timespec){.tv_sec = e->mtime_ns / 1000000000, .tv_nsec = e->mtime_ns % 1000000000};
    if (ts[1].tv_nsec < 0) {
        ts[1].tv_sec -= 1;
        ts[1].tv_nsec += 1000000000;
    }
}

/* A file's owner, mode and mtime, through its descriptor once its last
 * chunk is written (no path lookups for the 10,000 small files case). */
static int file_meta(const mf_entry *e, int fd)
{
    struct timespec ts[2];
    mtime_ts(e, ts);
    if (geteuid() == 0 && fchown(fd, e->uid, e->gid) != 0)
        return -errno;
    return fchmod(fd, e->mode) == 0 && futimens(fd, ts) == 0 ? 0 : -errno;
}

static void rfile_release(rctx *c, rfile *f)
{
    pthread_mutex_lock(&c->lock);
    int last = --f->refs == 0;
    pthread_mutex_unlock(&c->lock);
    if (!last)
        return;
    const mf_entry *e = &c->m->e[f->fi];
    int rc = rs_failed(c) ? 0 : file_meta(e, f->fd);
    if (close(f->fd) != 0 && rc == 0)
        rc = -errno;
    if (rc != 0)
        rs_error(c, rc, e->path, strerror(-rc));
    pthread_mutex_lock(&c->lock);
    c->open_files--;
    pthread_cond_signal(&c->room);
    pthread_mutex_unlock(&c->lock);
    free(f);
}

static int pwrite_all(int fd, const uint8_t *p, size_t n, uint64_t off)
{
    while (n > 0) {
        ssize_t w = pwrite(fd, p, n, (off_t)off);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return w < 0 ? -errno : -EIO;
        p += w;
        n -= (size_t)w;
        off += (uint64_t)w;
    }
    return 0;
}

/* (a, ak) is before (b, bk) in manifest order. */
static int before(size_t a, uint32_t ak, size_t b, uint32_t bk)
{
    return a < b || (a == b && ak < bk);
}

/* SNAP-RS6: the producer is about to queue extent xi of entry fi. */
static void read_ahead(rctx *c, size_t fi, uint32_t xi)
{
    while (c->ring_n > 0 && !before(fi, xi, c->ring_fi[c->ring_head], c->ring_xi[c->ring_head])) {
        c->ring_head = (c->ring_head + 1) % RS_AHEAD;
        c->ring_n--;
    }
    if (before(c->la_fi, c->la_xi, fi, xi)) {
        c->la_fi = fi;
        c->la_xi = xi;
    }
    while (c->ring_n < RS_AHEAD && c->la_fi < c->m->n) {
        const mf_entry *e = &c->m->e[c->la_fi];
        if (e->type != MF_FILE || c->la_xi >= e->n_ext) {
            c->la_fi++;
            c->la_xi = 0;
            continue;
        }
        uint32_t k = c->la_xi++;
        if (!e->ext[k].hole && repo_prefetch(c->r, &e->ext[k].id, &c->la_pack)) {
            int slot = (c->ring_head + c->ring_n++) % RS_AHEAD;
            c->ring_fi[slot] = c->la_fi;
            c->ring_xi[slot] = k;
        }
    }
}

static void restore_worker(void *p, void *ctx, int worker)
{
    rjob *j = p;
    rctx *c = ctx;
    const mf_entry *e = &c->m->e[j->f->fi];
    const mf_extent *x = &e->ext[j->xi];
    char err[512] = "out of memory";
    size_t len = 0;
    int rc = rs_failed(c) ? 1 : -ENOMEM;
    int64_t t0 = c->timed ? clock_mono_us() : 0;
    uint64_t f0 = c->timed ? store_thread_fetch_ns() : 0;
    if (rc < 0 && (c->buf[worker] || (c->buf[worker] = malloc(c->bufcap))))
        rc = repo_read_chunk(c->r, &x->id, c->buf[worker], c->bufcap, &len, err, sizeof err);
    uint64_t f1 = c->timed ? store_thread_fetch_ns() : 0;
    if (rc == 0 && len != x->len) {
        rc = DM_E_PROTOCOL;
        snprintf(err, sizeof err, "chunk has %zu bytes, manifest says %" PRIu64, len, x->len);
    }
    if (rc == 0 && (rc = pwrite_all(j->f->fd, c->buf[worker], len, j->off)) != 0)
        snprintf(err, sizeof err, "write: %s", strerror(-rc));
    if (rc < 0) /* rc 1: skipped, the restore has already failed */
        rs_error(c, rc, e->path, err);
    pthread_mutex_lock(&c->lock);
    if (c->timed) {
        c->fetch_ns += f1 - f0;
        c->busy_ns += (uint64_t)(clock_mono_us() - t0) * 1000u;
        c->chunks++;
    }
    c->done += x->len;
    if (c->o && c->o->progress)
        c->o->progress(c->done, c->total, c->o->progress_ctx);
    pthread_mutex_unlock(&c->lock);
    rfile_release(c, j->f);
    free(j);
}

/* Creates file fi and queues its data extents (SNAP-RS2, SNAP-RS3). */
static int restore_file(rctx *c, workq *q, uint32_t fi)
{
    const mf_entry *e = &c->m->e[fi];
    char path[RS_PATH];
    stage_path(c, e, path, sizeof path);
    pthread_mutex_lock(&c->lock);
    while (c->open_files >= RS_OPEN_MAX)
        pthread_cond_wait(&c->room, &c->lock);
    c->open_files++;
    pthread_mutex_unlock(&c->lock);
    rfile *f = calloc(1, sizeof *f);
    int fd = f ? open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600) : -1;
    int rc = f ? (fd < 0 ? -errno : 0) : -ENOMEM;
    if (rc == 0 && ftruncate(fd, (off_t)e->size) != 0)
        rc = -errno;
    if (rc != 0) {
        rs_error(c, rc, e->path, strerror(-rc));
        if (fd >= 0)
            close(fd);
        free(f);
        pthread_mutex_lock(&c->lock);
        c->open_files--;
        pthread_mutex_unlock(&c->lock);
        return rc;
    }
    *f = (rfile){.fd = fd, .refs = 1, .fi = fi};
    uint64_t off = 0;
    for (uint32_t k = 0; k < e->n_ext && !rs_failed(c); k++) {
        rjob *j = e->ext[k].hole ? NULL : malloc(sizeof *j);
        if (j) {
            read_ahead(c, f->fi, k);
            *j = (rjob){.f = f, .xi = k, .off = off};
            pthread_mutex_lock(&c->lock);
            f->refs++;
            pthread_mutex_unlock(&c->lock);
            wq_push(q, j);
        } else if (!e->ext[k].hole) {
            rs_error(c, -ENOMEM, e->path, "out of memory");
        }
        off += e->ext[k].len;
    }
    rfile_release(c, f);
    return rs_failed(c);
}

static int restore_data(rctx *c, int threads)
{
    workq *q = NULL;
    int rc = wq_new(threads, 64, restore_worker, c, &q);
    if (rc != 0) {
        rs_error(c, rc, "", "cannot start threads");
        return rc;
    }
    for (size_t i = 0; i < c->m->n && rc == 0; i++)
        if (c->m->e[i].type == MF_FILE)
            rc = restore_file(c, q, (uint32_t)i);
    wq_finish(q);
    return rs_failed(c);
}

static int make_dirs(rctx *c)
{
    char path[RS_PATH];
    for (size_t i = 1; i < c->m->n; i++) {
        const mf_entry *e = &c->m->e[i];
        if (e->type != MF_DIR)
            continue;
        stage_path(c, e, path, sizeof path);
        if (mkdir(path, 0700) != 0) {
            rs_error(c, -errno, e->path, strerror(errno));
            return -1;
        }
    }
    return 0;
}

static int make_links(rctx *c)
{
    char path[RS_PATH], target[RS_PATH];
    for (size_t i = 1; i < c->m->n; i++) {
        const mf_entry *e = &c->m->e[i];
        stage_path(c, e, path, sizeof path);
        int r = 0;
        if (e->type == MF_SYMLINK) {
            r = symlink(e->link, path);
        } else if (e->type == MF_HARDLINK) {
            stage_path(c, &c->m->e[e->link_to], target, sizeof target);
            r = link(target, path);
        }
        if (r != 0) {
            rs_error(c, -errno, e->path, strerror(errno));
            return -1;
        }
    }
    return 0;
}

/* Owners (root only), modes, mtimes of directories and symlinks: reverse
 * tree order, so a directory's mtime is set after its children exist. */
static int set_meta(rctx *c)
{
    char path[RS_PATH];
    int as_root = geteuid() == 0;
    for (size_t k = c->m->n; k-- > 0;) {
        const mf_entry *e = &c->m->e[k];
        if (e->type == MF_HARDLINK || e->type == MF_FILE) /* files: file_meta() */
            continue;
        stage_path(c, e, path, sizeof path);
        struct timespec ts[2];
        mtime_ts(e, ts);
        int r = as_root ? lchown(path, e->uid, e->gid) : 0;
        if (r == 0 && e->type != MF_SYMLINK)
            r = chmod(path, e->mode);
        if (r == 0)
            r = utimensat(AT_FDCWD, path, ts, AT_SYMLINK_NOFOLLOW);
        if (r != 0) {
            rs_error(c, -errno, e->path, strerror(errno));
            return -1;
        }
    }
    return 0;
}

/* ---- removal ---- */

static int rm_at(int dfd, const char *name, int depth)
{
    struct stat st;
    if (depth > 4096)
        return -ELOOP;
    if (fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) != 0)
        return errno == ENOENT ? 0 : -errno;
    if (!S_ISDIR(st.st_mode))
        return unlinkat(dfd, name, 0) == 0 ? 0 : -errno;
    int fd = openat(dfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    fchmod(fd, 0700); /* a restored 0500 directory must be emptied too */
    DIR *d = fdopendir(fd);
    if (!d) {
        close(fd);
        return -errno;
    }
    int rc = 0;
    struct dirent *de;
    while (rc == 0 && (de = readdir(d)) != NULL)
        if (strcmp(de->d_name, ".") && strcmp(de->d_name, ".."))
            rc = rm_at(dirfd(d), de->d_name, depth + 1);
    closedir(d);
    if (rc == 0 && unlinkat(dfd, name, AT_REMOVEDIR) != 0)
        rc = -errno;
    return rc;
}

int snap_rm_tree(const char *path)
{
    return rm_at(AT_FDCWD, path, 0);
}

/* ---- target checks and swap ---- */

/* 0: absent; 1: empty directory; 2: anything else. */
static int target_state(const char *target, int *ret)
{
    struct stat st;
    if (lstat(target, &st) != 0) {
        *ret = 0;
        return errno == ENOENT ? 0 : -errno;
    }
    *ret = 2;
    if (!S_ISDIR(st.st_mode))
        return 0;
    DIR *d = opendir(target);
    if (!d)
        return -errno;
    struct dirent *de;
    int n = 0;
    while ((de = readdir(d)) != NULL)
        n += strcmp(de->d_name, ".") && strcmp(de->d_name, "..");
    closedir(d);
    *ret = n ? 2 : 1;
    return 0;
}

static int swap_in(rctx *c, const char *target, char *err, size_t errlen)
{
    int state = 0, rc = target_state(target, &state);
    char aside[PATH_MAX + 64];
    if (rc != 0)
        return dm_fail(err, errlen, rc, "restore: %s: %s", target, strerror(-rc));
    if (state < 2) { /* SNAP-RS4: absent or empty directory */
        if (rename(c->stage, target) != 0)
            return dm_fail(err, errlen, -errno, "restore: %s: %s", target, strerror(errno));
        return 0;
    }
    const char *suffix = strrchr(c->stage, '.');
    snprintf(aside, sizeof aside, "%s.dumont-old%s", target, suffix ? suffix : ".x");
    if (rename(target, aside) != 0)
        return dm_fail(err, errlen, -errno, "restore: %s: %s", target, strerror(errno));
    if (rename(c->stage, target) != 0) {
        rc = dm_fail(err, errlen, -errno, "restore: %s: %s", target, strerror(errno));
        rename(aside, target);
        return rc;
    }
    if ((rc = snap_rm_tree(aside)) != 0) {
        char q[PATH_MAX + 80];
        log_warn("snapshot.restore.cleanup", "path=%s error=%s", log_quote(q, sizeof q, aside),
                 strerror(-rc));
    }
    return 0;
}

static int check_target(const char *target, int force, char *err, size_t errlen)
{
    int state = 0, rc = target_state(target, &state);
    if (rc != 0)
        return dm_fail(err, errlen, rc, "restore: %s: %s", target, strerror(-rc));
    if (state == 2 && !force)
        return dm_fail(err, errlen, DM_E_CONFLICT,
                       "restore: %s exists and is not an empty directory (use force)", target);
    if (strlen(target) + 32 >= PATH_MAX)
        return dm_fail(err, errlen, -ENAMETOOLONG, "restore: %s: path too long", target);
    return 0;
}

static void restore_prepare(rctx *c)
{
    for (size_t i = 0; i < c->m->n; i++) {
        const mf_entry *e = &c->m->e[i];
        for (uint32_t k = 0; e->type == MF_FILE && k < e->n_ext; k++) {
            if (e->ext[k].hole)
                continue;
            c->total += e->ext[k].len;
            c->bufcap = e->ext[k].len > c->bufcap ? e->ext[k].len : c->bufcap;
        }
    }
}

/* SNAP-RS7: removes the staging directories of dead restores of target. */
static void remove_stale_staging(const char *target)
{
    char parent[PATH_MAX], path[PATH_MAX + 256], q[PATH_MAX + 80];
    const char *slash = strrchr(target, '/');
    const char *base = slash ? slash + 1 : target;
    snprintf(parent, sizeof parent, "%.*s", slash ? (int)(slash - target) : 1,
             slash ? (slash == target ? "/" : target) : ".");
    size_t blen = strlen(base);
    DIR *d = opendir(parent);
    if (!d)
        return;
    for (struct dirent *de; (de = readdir(d)) != NULL;) {
        if (strncmp(de->d_name, base, blen) != 0 ||
            strncmp(de->d_name + blen, ".dumont-restore.", 16) != 0)
            continue;
        snprintf(path, sizeof path, "%s/%s", parent, de->d_name);
        int fd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0)
            continue;
        if (flock(fd, LOCK_EX | LOCK_NB) == 0) { /* its restore is gone */
            int rc = snap_rm_tree(path);
            log_info("snapshot.restore.stale", "path=%s removed=%s",
                     log_quote(q, sizeof q, path), rc == 0 ? "yes" : strerror(-rc));
        }
        close(fd);
    }
    closedir(d);
}

static int restore_run(rctx *c, const char *target, int force, int threads, int64_t *ret_data_us,
                       char *err, size_t errlen)
{
    int rc;
    remove_stale_staging(target);
    snprintf(c->stage, sizeof c->stage, "%s.dumont-restore.XXXXXX", target);
    if (!mkdtemp(c->stage)) {
        c->stage[0] = '\0';
        return dm_fail(err, errlen, -errno, "restore: staging beside %s: %s", target,
                       strerror(errno));
    }
    c->stage_fd = open(c->stage, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (c->stage_fd >= 0)
        flock(c->stage_fd, LOCK_EX | LOCK_NB); /* SNAP-RS7; fresh: nobody else has it */
    restore_prepare(c);
    threads = snap_threads_for(threads, c->bufcap);
    if (make_dirs(c) != 0)
        return dm_fail(err, errlen, c->rc, "%s", c->err);
    int64_t t0 = clock_mono_us();
    if (restore_data(c, threads) != 0)
        return dm_fail(err, errlen, c->rc, "%s", c->err);
    *ret_data_us = clock_mono_us() - t0;
    if (make_links(c) != 0 || set_meta(c) != 0)
        return dm_fail(err, errlen, c->rc, "%s", c->err);
    if ((rc = swap_in(c, target, err, errlen)) != 0)
        return rc;
    c->stage[0] = '\0'; /* swapped in: nothing to clean */
    return 0;
}

/* "out/" would put the staging directory inside the target. */
static int trim_target(const char *target, char *buf, size_t len, char *err, size_t errlen)
{
    size_t n = strlen(target);
    while (n > 1 && target[n - 1] == '/')
        n--;
    if (n == 0 || n >= len || (n == 1 && target[0] == '/'))
        return dm_fail(err, errlen, DM_E_INVALID, "restore: bad target path");
    memcpy(buf, target, n);
    buf[n] = '\0';
    return 0;
}

/* SNAP-RS5: the wall-time share of fetching (snapshot.h snap_restore_stats). */
static void fill_stats(const rctx *c, int64_t t0_us, uint64_t main_fetch_ns, int64_t data_us,
                       snap_restore_stats *st)
{
    memset(st, 0, sizeof *st);
    st->total_ms = (clock_mono_us() - t0_us) / 1000;
    double share = c->busy_ns ? (double)c->fetch_ns / (double)c->busy_ns : 0.0;
    if (share > 1.0)
        share = 1.0;
    int64_t fetch_us = (int64_t)(main_fetch_ns / 1000u) + (int64_t)((double)data_us * share);
    st->fetch_ms = fetch_us / 1000;
    if (st->fetch_ms > st->total_ms)
        st->fetch_ms = st->total_ms;
    st->other_ms = st->total_ms - st->fetch_ms;
    st->fetch_thread_ms = (int64_t)((c->fetch_ns + main_fetch_ns) / 1000000u);
    st->busy_thread_ms = (int64_t)(c->busy_ns / 1000000u);
    st->bytes = c->total;
    st->chunks = c->chunks;
}

int snap_restore(dm_store *s, const char *id, const char *target_in, int force, const snap_opts *o,
                 char *err, size_t errlen)
{
    manifest *m = NULL;
    rctx c = {.o = o, .timed = o && o->restore_stats, .la_pack = UINT32_MAX, .stage_fd = -1};
    char target[PATH_MAX];
    int threads = snap_threads(o), rc;
    int64_t t0_us = clock_mono_us(), data_us = 0;
    uint64_t f0 = store_thread_fetch_ns();
    pthread_mutex_init(&c.lock, NULL);
    pthread_cond_init(&c.room, NULL);
    if ((rc = trim_target(target_in, target, sizeof target, err, errlen)) != 0 ||
        (rc = check_target(target, force, err, errlen)) != 0 ||
        (rc = snap_load(s, id, &m, err, errlen)) != 0 ||
        (rc = repo_open(s, &c.r, err, errlen)) != 0)
        goto out;
    c.m = m;
    if (!(c.buf = calloc((size_t)threads, sizeof *c.buf))) {
        rc = dm_fail(err, errlen, -ENOMEM, "restore: out of memory");
        goto out;
    }
    rc = restore_run(&c, target, force, threads, &data_us, err, errlen);
    if (rc == 0 && c.timed)
        fill_stats(&c, t0_us, store_thread_fetch_ns() - f0, data_us, o->restore_stats);
out:
    if (c.stage[0])
        snap_rm_tree(c.stage); /* SNAP-RS1 */
    if (c.stage_fd >= 0)
        close(c.stage_fd); /* SNAP-RS7: the lock goes with it */
    for (int i = 0; c.buf && i < threads; i++)
        free(c.buf[i]);
    free(c.buf);
    repo_close(c.r);
    manifest_free(m);
    pthread_mutex_destroy(&c.lock);
    pthread_cond_destroy(&c.room);
    return rc;
}

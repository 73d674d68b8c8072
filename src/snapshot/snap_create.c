/* snap_create(): walk, chunk, store, write the manifest, then the pointer.
 *
 * Pipeline: the calling thread walks the tree (walk.c), reuses the parent
 * snapshot's chunk lists where it may (SN1), then reads the other files in
 * tree order, cuts them with FastCDC (chunker.c) and hands each chunk to a
 * pool of workers (workq.c) that call repo_add_chunk() (hash + compress +
 * append, thread-safe by RP5). The chunk's slot in its file's extent list
 * is reserved before the job is queued, so per-file order is kept whatever
 * order the workers finish in.
 *
 * CR1: memory is bounded (SN5): one 8 MiB read buffer plus at most
 *      CR_INFLIGHT bytes of chunk copies waiting for or inside workers; the
 *      reader blocks when that budget is used.
 * CR2: holes are not read: SEEK_DATA/SEEK_HOLE find the data regions; a
 *      chunk of zeros (e.g. on a file system without SEEK_HOLE) is recorded
 *      as a hole too. Holes are extents with no chunk; restore recreates
 *      them with ftruncate (SN4).
 * CR3: a file's entry takes size/mtime/ino/dev from fstat() of the opened
 *      file, before reading: if it changes while being read, its mtime or
 *      size differs next time and it is read again then.
 * CR4: entries that vanish (or stop being regular files) between the walk
 *      and the read are dropped from the manifest, with hard links to them.
 * CR5: order of writes (SN3): chunks, repo_flush() (packs, then index),
 *      manifest snapshots/<id>, then the pointer latest/<src>/<ms>-<id>.
 *      Until the manifest exists nothing refers to the new data. */
#define _GNU_SOURCE /* SEEK_DATA, SEEK_HOLE */
#include "snapshot/snapshot.h"

#include "snapshot/chunker.h"
#include "snapshot/repo.h"
#include "snapshot/snap_internal.h"
#include "snapshot/walk.h"
#include "snapshot/workq.h"
#include "util/clock.h"
#include "util/error.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Small enough that buffers are reused while still warm: every fresh page
 * costs a fault, which dominated incremental snapshots at 16/96 MiB. */
#define CR_RBUF     (8u << 20) /* >= 2 * CHUNK_MAX */
#define CR_INFLIGHT (32u << 20)

typedef struct {
    repo *r;
    manifest *m;
    const snap_opts *o;
    const char *root;
    pthread_mutex_t lock; /* extent lists, rc/err, inflight, progress */
    pthread_cond_t room;
    size_t inflight;
    int rc;
    char err[512];
    uint64_t done, total;
    uint8_t *rbuf;
    char *vanished; /* per entry: CR4 */
} cctx;

typedef struct {
    uint8_t *data;
    size_t len;
    uint32_t fi, xi;
} cjob;

static void set_error(cctx *c, int rc, const char *path, const char *why)
{
    pthread_mutex_lock(&c->lock);
    if (c->rc == 0) {
        c->rc = rc;
        snprintf(c->err, sizeof c->err, "create: %s: %s", path, why);
    }
    pthread_mutex_unlock(&c->lock);
}

static int failed(cctx *c)
{
    pthread_mutex_lock(&c->lock);
    int rc = c->rc;
    pthread_mutex_unlock(&c->lock);
    return rc;
}

static void add_worker(void *p, void *ctx, int worker)
{
    cjob *j = p;
    cctx *c = ctx;
    char err[256] = "";
    chunk_id id;
    /* rc 1: skipped, the create has already failed */
    int rc = failed(c) ? 1 : repo_add_chunk(c->r, j->data, j->len, &id, NULL, err, sizeof err);
    if (rc < 0)
        set_error(c, rc, c->m->e[j->fi].path, err[0] ? err : dm_strerror(rc));
    pthread_mutex_lock(&c->lock);
    if (rc == 0)
        c->m->e[j->fi].ext[j->xi].id = id;
    c->inflight -= j->len;
    pthread_cond_signal(&c->room);
    pthread_mutex_unlock(&c->lock);
    free(j->data);
    free(j);
}

/* Caller holds c->lock. Holes count as done: total is the files' sizes. */
static void progress_locked(cctx *c, uint64_t n)
{
    c->done += n;
    if (c->o && c->o->progress)
        c->o->progress(c->done, c->total, c->o->progress_ctx);
}

/* Appends an extent (merging adjacent holes); *ret_xi gets its index. */
static int add_extent(cctx *c, mf_entry *e, const mf_extent *x, uint32_t *ret_xi)
{
    int rc = 0;
    pthread_mutex_lock(&c->lock);
    if (x->hole && e->n_ext > 0 && e->ext[e->n_ext - 1].hole)
        e->ext[e->n_ext - 1].len += x->len;
    else
        rc = mf_entry_add_extent(e, x);
    *ret_xi = e->n_ext - 1;
    if (x->hole)
        progress_locked(c, x->len);
    pthread_mutex_unlock(&c->lock);
    return rc;
}

static int all_zero(const uint8_t *p, size_t n)
{
    return n > 0 && p[0] == 0 && memcmp(p, p + 1, n - 1) == 0;
}

/* CR1: waits for budget, copies the chunk and queues it. */
static int submit(cctx *c, workq *q, uint32_t fi, const uint8_t *data, size_t n)
{
    mf_extent x = {.len = n, .hole = all_zero(data, n)};
    uint32_t xi;
    if (x.hole) /* CR2 */
        return add_extent(c, &c->m->e[fi], &x, &xi);
    cjob *j = malloc(sizeof *j);
    uint8_t *copy = malloc(n);
    int rc = (j && copy) ? add_extent(c, &c->m->e[fi], &x, &xi) : -ENOMEM;
    if (rc != 0) {
        free(j);
        free(copy);
        return rc;
    }
    memcpy(copy, data, n);
    *j = (cjob){.data = copy, .len = n, .fi = fi, .xi = xi};
    pthread_mutex_lock(&c->lock);
    while (c->inflight > 0 && c->inflight + n > CR_INFLIGHT)
        pthread_cond_wait(&c->room, &c->lock);
    c->inflight += n;
    progress_locked(c, n);
    pthread_mutex_unlock(&c->lock);
    wq_push(q, j);
    return 0;
}

/* Reads [off, end) of fd and submits its chunks; *ret_got: bytes read
 * (less than asked if the file shrank meanwhile). */
static int read_region(cctx *c, workq *q, uint32_t fi, int fd, uint64_t off, uint64_t end,
                       uint64_t *ret_got)
{
    size_t have = 0, start = 0;
    uint64_t rpos = off;
    int eof = 0, rc;
    while (!eof || start < have) {
        memmove(c->rbuf, c->rbuf + start, have - start);
        have -= start;
        start = 0;
        while (!eof && have < CR_RBUF) {
            size_t want = CR_RBUF - have;
            if (want > end - rpos)
                want = (size_t)(end - rpos);
            ssize_t n = want ? pread(fd, c->rbuf + have, want, (off_t)rpos) : 0;
            if (n < 0 && errno == EINTR)
                continue;
            if (n < 0)
                return -errno;
            eof = n == 0;
            have += (size_t)n;
            rpos += (uint64_t)n;
        }
        while (start < have && (eof || have - start >= CHUNK_MAX)) {
            size_t n = chunker_cut(c->rbuf + start, have - start);
            if ((rc = submit(c, q, fi, c->rbuf + start, n)) != 0)
                return rc;
            start += n;
        }
        if ((rc = failed(c)) != 0)
            return rc;
    }
    *ret_got = rpos - off;
    return 0;
}

/* CR2: data regions by SEEK_DATA/SEEK_HOLE; holes become hole extents. */
static int read_extents(cctx *c, workq *q, uint32_t fi, int fd, uint64_t size)
{
    mf_entry *e = &c->m->e[fi];
    uint64_t off = 0;
    uint32_t xi;
    int rc = 0;
    while (off < size && rc == 0) {
        off_t d = lseek(fd, (off_t)off, SEEK_DATA);
        uint64_t data = d >= 0 ? (uint64_t)d : errno == ENXIO ? size : off;
        data = data > size ? size : data;
        if (data > off) {
            mf_extent x = {.len = data - off, .hole = 1};
            rc = add_extent(c, e, &x, &xi);
            off = data;
        }
        if (rc != 0 || off >= size)
            break;
        off_t h = lseek(fd, (off_t)data, SEEK_HOLE);
        uint64_t hole = h > (off_t)data && (uint64_t)h < size ? (uint64_t)h : size, got = 0;
        rc = read_region(c, q, fi, fd, data, hole, &got);
        off = data + got;
        if (got < hole - data)
            break; /* the file shrank: keep what was read (CR3) */
    }
    e->size = off;
    return rc;
}

static int read_file(cctx *c, workq *q, uint32_t fi)
{
    mf_entry *e = &c->m->e[fi];
    char path[PATH_MAX + MF_PATH_MAX + 2];
    struct stat st;
    snprintf(path, sizeof path, "%s/%s", c->root, e->path);
    int fd = open(path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
    if (fd < 0 && (errno == ENOENT || errno == ELOOP || errno == ENOTDIR)) {
        c->vanished[fi] = 1; /* CR4 */
        return 0;
    }
    if (fd < 0 || fstat(fd, &st) != 0) {
        int rc = -errno;
        if (fd >= 0)
            close(fd);
        return rc;
    }
    int rc = 0;
    if (!S_ISREG(st.st_mode)) {
        c->vanished[fi] = 1;
        goto out;
    }
    e->mode = st.st_mode & 07777; /* CR3 */
    e->mtime_ns = (int64_t)st.st_mtim.tv_sec * 1000000000 + st.st_mtim.tv_nsec;
    e->ino = st.st_ino;
    e->dev = st.st_dev;
    posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);
    rc = read_extents(c, q, fi, fd, (uint64_t)st.st_size);
out:
    close(fd);
    return rc;
}

/* SN1: same path, size, mtime, inode and device as in the parent (and its
 * chunks still in the repository): take the parent's extents unread. */
static int reuse_one(cctx *c, mf_entry *e, const manifest *p)
{
    long k = p ? manifest_find(p, e->path, e->path_len) : -1;
    const mf_entry *pe = k >= 0 ? &p->e[k] : NULL;
    if (!pe || pe->type != MF_FILE || pe->size != e->size || pe->mtime_ns != e->mtime_ns ||
        pe->ino != e->ino || pe->dev != e->dev)
        return 0;
    for (uint32_t i = 0; i < pe->n_ext; i++)
        if (!pe->ext[i].hole && !repo_has_chunk(c->r, &pe->ext[i].id))
            return 0;
    if (pe->n_ext) {
        e->ext = malloc(pe->n_ext * sizeof *e->ext);
        if (!e->ext)
            return 0;
        memcpy(e->ext, pe->ext, pe->n_ext * sizeof *e->ext);
    }
    e->n_ext = e->cap_ext = pe->n_ext;
    return 1;
}

static void reuse_parent(cctx *c, const manifest *p, char *need)
{
    for (size_t i = 0; i < c->m->n; i++) {
        mf_entry *e = &c->m->e[i];
        if (e->type != MF_FILE)
            continue;
        need[i] = !reuse_one(c, e, p);
        c->total += need[i] ? e->size : 0;
    }
}

static void count_entries(const manifest *m, snap_info *in)
{
    for (size_t i = 0; i < m->n; i++) {
        const mf_entry *e = &m->e[i];
        in->files += e->type == MF_FILE || e->type == MF_HARDLINK;
        in->dirs += e->type == MF_DIR;
        in->symlinks += e->type == MF_SYMLINK;
        in->bytes += e->type == MF_FILE ? e->size : 0;
    }
}

/* Reads every file that needs it through the worker pool. */
static int read_all(cctx *c, const char *need, int threads, char *err, size_t errlen)
{
    workq *q = NULL;
    int rc = wq_new(threads, 64, add_worker, c, &q);
    if (rc != 0)
        return dm_fail(err, errlen, rc, "create: cannot start threads");
    for (size_t i = 0; i < c->m->n && rc == 0; i++) {
        if (!need[i])
            continue;
        rc = read_file(c, q, (uint32_t)i);
        if (rc != 0)
            set_error(c, rc, c->m->e[i].path, dm_strerror(rc));
    }
    wq_finish(q);
    if (c->rc != 0)
        return dm_fail(err, errlen, c->rc, "%s", c->err);
    if (manifest_remove(c->m, c->vanished) != 0)
        return dm_fail(err, errlen, -ENOMEM, "create: out of memory");
    return 0;
}

/* CR5: manifest, then pointer. */
static int write_manifest(dm_store *s, const manifest *m, snap_info *in, char *err, size_t errlen)
{
    void *data = NULL;
    size_t len = 0;
    char key[2 * STORE_KEY_MAX], prefix[STORE_KEY_MAX];
    int rc = manifest_encode(m, &data, &len, err, errlen);
    if (rc != 0)
        return rc;
    snap_sha256_hex(data, len, in->id);
    snprintf(key, sizeof key, "snapshots/%s", in->id);
    if ((rc = store_put(s, key, data, len, err, errlen)) != 0)
        goto out;
    snap_latest_prefix(in->source, prefix, sizeof prefix);
    snprintf(key, sizeof key, "%s%016" PRId64 "-%.64s", prefix, in->time_ms, in->id);
    rc = store_put(s, key, in->id, 64, err, errlen);
out:
    free(data);
    return rc;
}

static int load_parent(dm_store *s, const char *source, manifest **ret, char *parent_id)
{
    char err[256];
    if (snap_latest(s, source, parent_id, SNAP_ID_MAX, err, sizeof err) != 0) {
        parent_id[0] = '\0';
        return 0;
    }
    if (snap_load(s, parent_id, ret, err, sizeof err) != 0)
        parent_id[0] = '\0'; /* unreadable parent: read everything */
    return 0;
}

static int create_run(dm_store *s, cctx *c, const snap_opts *o, snap_info *in, char *err,
                      size_t errlen)
{
    manifest *parent = NULL;
    char *need = calloc(c->m->n + 1, 1);
    repo_stats st;
    int rc = -ENOMEM;
    c->vanished = calloc(c->m->n + 1, 1);
    c->rbuf = malloc(CR_RBUF);
    if (!need || !c->vanished || !c->rbuf)
        goto out;
    if ((rc = repo_open(s, &c->r, err, errlen)) != 0)
        goto out;
    load_parent(s, in->source, &parent, in->parent);
    reuse_parent(c, parent, need);
    if ((rc = read_all(c, need, snap_threads(o), err, errlen)) != 0 ||
        (rc = repo_flush(c->r, err, errlen)) != 0)
        goto out;
    repo_get_stats(c->r, &st);
    in->bytes_new = st.bytes_added;
    in->stored_new = st.bytes_stored;
    count_entries(c->m, in);
out:
    manifest_free(parent);
    free(need);
    return rc;
}

int snap_create(dm_store *s, const char *source_dir, const snap_opts *o, snap_info *ret, char *err,
                size_t errlen)
{
    char root[PATH_MAX];
    cctx c = {.o = o, .root = root};
    int64_t t0 = clock_mono_ms();
    int rc;
    pthread_mutex_init(&c.lock, NULL);
    pthread_cond_init(&c.room, NULL);
    if (!realpath(source_dir, root)) {
        rc = dm_fail(err, errlen, -errno, "create: %s: %s", source_dir, strerror(errno));
        goto out;
    }
    const char *source = o && o->source_name ? o->source_name : root;
    if (!(c.m = manifest_new()) || strlen(source) >= sizeof c.m->info.source) {
        rc = dm_fail(err, errlen, c.m ? DM_E_INVALID : -ENOMEM, "create: bad source name");
        goto out;
    }
    snap_info *in = &c.m->info;
    snprintf(in->source, sizeof in->source, "%s", source);
    snprintf(in->tag, sizeof in->tag, "%s", o && o->tag ? o->tag : "");
    in->time_ms = clock_wall_ms();
    if ((rc = walk_tree(root, c.m, err, errlen)) != 0 ||
        (rc = create_run(s, &c, o, in, err, errlen)) != 0)
        goto out;
    in->duration_ms = clock_mono_ms() - t0;
    if ((rc = write_manifest(s, c.m, in, err, errlen)) != 0)
        goto out;
    if (ret)
        *ret = *in;
out:
    repo_close(c.r);
    manifest_free(c.m);
    free(c.rbuf);
    free(c.vanished);
    pthread_mutex_destroy(&c.lock);
    pthread_cond_destroy(&c.room);
    return rc;
}

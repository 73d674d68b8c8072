/* snap_create(): walk, chunk, store, write the manifest, then the pointer.
 *
 * Pipeline: the calling thread walks the tree (walk.c), reuses the parent
 * snapshot's chunk lists where it may (SNAP-SN1), then CR_READERS readers read
 * the other files, each file whole by one reader, cut them with FastCDC
 * (chunker.c) and hand each chunk to a pool of workers (workq.c) that call
 * repo_add_chunk() (hash + compress + append, thread-safe by SNAP-RP5). The
 * chunk's slot in its file's extent list is reserved before the job is
 * queued, so per-file order is kept whatever order the workers finish in.
 *
 * SNAP-CR6: files are taken in tree order from two queues, small files (< 1 MiB:
 *      system calls, hashing of many small chunks) and large ones (bytes:
 *      copies and disk writes); reader 0 prefers the large ones, reader 1
 *      the small ones, and each takes from the other queue when its own is
 *      empty. Both kinds of work so overlap instead of taking turns, which
 *      a single reader in tree order made them do. Each reader's chunks go
 *      to its own pack stream (SNAP-RP7), so packs follow tree order per reader
 *      and a restore does not come back to a pack it has read.
 *
 * SNAP-CR1: memory is bounded (SNAP-SN5): one 8 MiB read buffer per reader plus at
 *      most CR_INFLIGHT bytes of chunk copies waiting for or inside workers;
 *      a reader blocks when that budget is used.
 * SNAP-CR2: holes are not read: SEEK_DATA/SEEK_HOLE find the data regions; a
 *      chunk of zeros (e.g. on a file system without SEEK_HOLE) is recorded
 *      as a hole too. Holes are extents with no chunk; restore recreates
 *      them with ftruncate (SNAP-SN4).
 * SNAP-CR3: a file's entry takes size/mtime/ino/dev from fstat() of the opened
 *      file, before reading: if it changes while being read, its mtime or
 *      size differs next time and it is read again then.
 * SNAP-CR4: entries that vanish (or stop being regular files) between the walk
 *      and the read are dropped from the manifest, with hard links to them.
 * SNAP-CR5: order of writes (SNAP-SN3): chunks, repo_flush() (packs, then index),
 *      manifest snapshots/<id>, then the pointer latest/<src>/<ms>-<id>.
 *      Until the manifest exists nothing refers to the new data. */
#define _GNU_SOURCE /* SEEK_DATA, SEEK_HOLE */
#include "snapshot/snapshot.h"

#include "snapshot/chunker.h"
#include "snapshot/repo.h"
#include "snapshot/snap_internal.h"
#include "snapshot/walk.h"
#include "snapshot/workq.h"
#include "util/bigbuf.h"
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
#define CR_READERS  2
#define CR_SMALL    (1u << 20) /* SNAP-CR6 */

/* SNAP-CR7: chunk copies of CR_BIGCOPY bytes or more come from a pool of
 * huge-page buffers (util/bigbuf.h; capacity rounded up to 2 MiB) kept for
 * reuse, up to POOL_MAX bytes: a fresh malloc of ~1 MiB per chunk is a
 * fresh mapping whose page faults cost more than the copy itself (they were
 * a fifth of an incremental snapshot's time). Smaller copies (small files)
 * are malloc'd: the heap reuses those. The in-flight budget (SNAP-CR1) counts a
 * copy's capacity, so it bounds the memory really held. */
#define CR_BIGCOPY (256u << 10)
#define POOL_MAX   (CR_INFLIGHT + (8u << 20))
#define POOL_SLOTS 64
#define POOL_ROUND ((size_t)2 << 20)

typedef struct {
    uint8_t *p;
    size_t cap;
} pbuf;

typedef struct {
    pthread_mutex_t lock;
    pbuf free[POOL_SLOTS];
    int n;
    size_t bytes;
} bpool;

static size_t copy_cap(size_t len)
{
    return len < CR_BIGCOPY ? len : (len + POOL_ROUND - 1) / POOL_ROUND * POOL_ROUND;
}

static pbuf pool_get(bpool *bp, size_t len)
{
    size_t cap = copy_cap(len);
    if (cap < CR_BIGCOPY)
        return (pbuf){malloc(len ? len : 1), len};
    pbuf b = {0};
    pthread_mutex_lock(&bp->lock);
    for (int i = 0; i < bp->n && !b.p; i++)
        if (bp->free[i].cap == cap) {
            b = bp->free[i];
            bp->free[i] = bp->free[--bp->n];
            bp->bytes -= b.cap;
        }
    pthread_mutex_unlock(&bp->lock);
    if (!b.p)
        b = (pbuf){bigbuf_alloc(cap), cap};
    return b;
}

static void pbuf_free(pbuf b)
{
    if (b.cap < CR_BIGCOPY)
        free(b.p);
    else
        bigbuf_free(b.p, b.cap);
}

static void pool_put(bpool *bp, pbuf b)
{
    if (b.cap >= CR_BIGCOPY) {
        pthread_mutex_lock(&bp->lock);
        if (bp->n < POOL_SLOTS && bp->bytes + b.cap <= POOL_MAX) {
            bp->free[bp->n++] = b;
            bp->bytes += b.cap;
            b.p = NULL;
        }
        pthread_mutex_unlock(&bp->lock);
    }
    pbuf_free(b);
}

static void pool_drain(bpool *bp)
{
    for (int i = 0; i < bp->n; i++)
        pbuf_free(bp->free[i]);
    bp->n = 0;
    bp->bytes = 0;
}

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
    const char *need;      /* per entry: to be read */
    size_t cursor[2];      /* SNAP-CR6: next entry to look at, small / large */
    char *vanished;        /* per entry: SNAP-CR4 */
    workq *q;
    bpool pool; /* SNAP-CR7 */
} cctx;

typedef struct {
    pbuf buf;
    size_t len;
    uint32_t fi, xi;
    int stream; /* SNAP-RP7: the reader's own packs */
} cjob;

typedef struct { /* one reader's own state */
    uint8_t *rbuf;
    int stream;
} rstate;

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
    int rc = failed(c) ? 1 : repo_add_chunk_to(c->r, j->stream, j->buf.p, j->len, &id, NULL, err,
                                                   sizeof err);
    if (rc < 0)
        set_error(c, rc, c->m->e[j->fi].path, err[0] ? err : dm_strerror(rc));
    pthread_mutex_lock(&c->lock);
    if (rc == 0)
        c->m->e[j->fi].ext[j->xi].id = id;
    c->inflight -= j->buf.cap;
    pthread_cond_signal(&c->room);
    pthread_mutex_unlock(&c->lock);
    pool_put(&c->pool, j->buf);
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

/* SNAP-CR1: waits for budget, copies the chunk and queues it. */
static int submit(cctx *c, const rstate *rs, uint32_t fi, const uint8_t *data, size_t n)
{
    mf_extent x = {.len = n, .hole = all_zero(data, n)};
    uint32_t xi;
    if (x.hole) /* SNAP-CR2 */
        return add_extent(c, &c->m->e[fi], &x, &xi);
    size_t cap = copy_cap(n);
    pthread_mutex_lock(&c->lock);
    while (c->inflight > 0 && c->inflight + cap > CR_INFLIGHT)
        pthread_cond_wait(&c->room, &c->lock);
    c->inflight += cap;
    pthread_mutex_unlock(&c->lock);
    cjob *j = malloc(sizeof *j);
    pbuf copy = pool_get(&c->pool, n);
    int rc = (j && copy.p) ? add_extent(c, &c->m->e[fi], &x, &xi) : -ENOMEM;
    pthread_mutex_lock(&c->lock);
    if (rc == 0)
        progress_locked(c, n);
    else
        c->inflight -= cap;
    pthread_mutex_unlock(&c->lock);
    if (rc != 0) {
        free(j);
        pbuf_free(copy);
        return rc;
    }
    memcpy(copy.p, data, n);
    *j = (cjob){.buf = copy, .len = n, .fi = fi, .xi = xi, .stream = rs->stream};
    wq_push(c->q, j);
    return 0;
}

/* Reads [off, end) of fd and submits its chunks; *ret_got: bytes read
 * (less than asked if the file shrank meanwhile). */
static int read_region(cctx *c, const rstate *rs, uint32_t fi, int fd, uint64_t off, uint64_t end,
                       uint64_t *ret_got)
{
    uint8_t *rbuf = rs->rbuf;
    size_t have = 0, start = 0;
    uint64_t rpos = off;
    int eof = 0, rc;
    while (!eof || start < have) {
        memmove(rbuf, rbuf + start, have - start);
        have -= start;
        start = 0;
        while (!eof && have < CR_RBUF) {
            size_t want = CR_RBUF - have;
            if (want > end - rpos)
                want = (size_t)(end - rpos);
            ssize_t n = want ? pread(fd, rbuf + have, want, (off_t)rpos) : 0;
            if (n < 0 && errno == EINTR)
                continue;
            if (n < 0)
                return -errno;
            eof = n == 0;
            have += (size_t)n;
            rpos += (uint64_t)n;
        }
        while (start < have) { /* SNAP-CK4: cut while the bytes decide; the tail waits */
            size_t n = chunker_find(rbuf + start, have - start);
            if (!n && !eof)
                break;
            n = n ? n : have - start;
            if ((rc = submit(c, rs, fi, rbuf + start, n)) != 0)
                return rc;
            start += n;
        }
        if ((rc = failed(c)) != 0)
            return rc;
    }
    *ret_got = rpos - off;
    return 0;
}

/* SNAP-CR2: data regions by SEEK_DATA/SEEK_HOLE; holes become hole extents. */
/* *size: the file's size in, the bytes recorded out (SNAP-CR3). */
static int read_extents(cctx *c, const rstate *rs, uint32_t fi, int fd, uint64_t *ret_size)
{
    uint64_t size = *ret_size;
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
        rc = read_region(c, rs, fi, fd, data, hole, &got);
        off = data + got;
        if (got < hole - data)
            break; /* the file shrank: keep what was read (SNAP-CR3) */
    }
    *ret_size = off;
    return rc;
}

static int read_file(cctx *c, const rstate *rs, uint32_t fi)
{
    mf_entry *e = &c->m->e[fi];
    char path[PATH_MAX + MF_PATH_MAX + 2];
    struct stat st;
    snprintf(path, sizeof path, "%s/%s", c->root, e->path);
    int fd = open(path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
    if (fd < 0 && (errno == ENOENT || errno == ELOOP || errno == ENOTDIR)) {
        c->vanished[fi] = 1; /* SNAP-CR4 */
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
    e->mode = st.st_mode & 07777; /* SNAP-CR3 */
    e->mtime_ns = (int64_t)st.st_mtim.tv_sec * 1000000000 + st.st_mtim.tv_nsec;
    e->ino = st.st_ino;
    e->dev = st.st_dev;
    uint64_t size = (uint64_t)st.st_size;
    if (size >= CR_SMALL)
        posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);
    if ((uint64_t)st.st_blocks * 512 >= size) /* allocated in full: no holes to look for */
        rc = read_region(c, rs, fi, fd, 0, size, &size);
    else
        rc = read_extents(c, rs, fi, fd, &size);
    e->size = size;
out:
    close(fd);
    return rc;
}

/* SNAP-SN1: same path, size, mtime, inode and device as in the parent (and its
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

/* SNAP-CR6: the next file to read, from queue `prefer` first; -1 when none. */
static long next_file(cctx *c, int prefer)
{
    long fi = -1;
    pthread_mutex_lock(&c->lock);
    for (int k = 0; k < 2 && fi < 0 && c->rc == 0; k++) {
        int large = (prefer + k) % 2;
        while (fi < 0 && c->cursor[large] < c->m->n) {
            size_t i = c->cursor[large]++;
            if (c->need[i] && (c->m->e[i].size >= CR_SMALL) == large)
                fi = (long)i;
        }
    }
    pthread_mutex_unlock(&c->lock);
    return fi;
}

typedef struct {
    cctx *c;
    int prefer; /* SNAP-CR6: 1 large files first, 0 small ones */
    int id;     /* its pack stream (SNAP-RP7) */
    pthread_t thread;
} reader;

static void *reader_main(void *arg)
{
    reader *rd = arg;
    cctx *c = rd->c;
    rstate rs = {.rbuf = bigbuf_alloc(CR_RBUF), .stream = rd->id % REPO_STREAMS};
    if (!rs.rbuf)
        set_error(c, -ENOMEM, c->root, "out of memory");
    for (long fi; rs.rbuf && (fi = next_file(c, rd->prefer)) >= 0;) {
        int rc = read_file(c, &rs, (uint32_t)fi);
        if (rc != 0)
            set_error(c, rc, c->m->e[fi].path, dm_strerror(rc));
    }
    bigbuf_free(rs.rbuf, CR_RBUF);
    return NULL;
}

/* Reads every file that needs it: CR_READERS readers (SNAP-CR6), the calling
 * thread being the first, feeding the worker pool. */
static int read_all(cctx *c, int threads, char *err, size_t errlen)
{
    reader rd[CR_READERS];
    int rc = wq_new(threads, 64, add_worker, c, &c->q), started = 0;
    if (rc != 0)
        return dm_fail(err, errlen, rc, "create: cannot start threads");
    for (int i = 0; i < CR_READERS; i++)
        rd[i] = (reader){.c = c, .prefer = (i + 1) % 2, .id = i};
    for (int i = 1; i < CR_READERS; i++) /* one fewer is fine: readers share the files */
        if (pthread_create(&rd[i].thread, NULL, reader_main, &rd[i]) == 0)
            started = i;
    reader_main(&rd[0]);
    for (int i = 1; i <= started; i++)
        pthread_join(rd[i].thread, NULL);
    wq_finish(c->q);
    c->q = NULL;
    if (c->rc != 0)
        return dm_fail(err, errlen, c->rc, "%s", c->err);
    if (manifest_remove(c->m, c->vanished) != 0)
        return dm_fail(err, errlen, -ENOMEM, "create: out of memory");
    return 0;
}

/* SNAP-CR5: manifest, then pointer. */
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
    c->need = need;
    if (!need || !c->vanished)
        goto out;
    if ((rc = repo_open(s, &c->r, err, errlen)) != 0)
        goto out;
    load_parent(s, in->source, &parent, in->parent);
    reuse_parent(c, parent, need);
    if ((rc = read_all(c, snap_threads(o), err, errlen)) != 0 ||
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
    snap_lock *lk = NULL;
    int64_t t0 = clock_mono_ms();
    int rc;
    pthread_mutex_init(&c.lock, NULL);
    pthread_mutex_init(&c.pool.lock, NULL);
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
    /* SNAP-L1: before the repository is loaded, so no prune runs from here
     * until the manifest names every chunk this create relies on */
    if ((rc = snap_lock_take(s, 0, &lk, err, errlen)) != 0 ||
        (rc = walk_tree(root, c.m, err, errlen)) != 0 ||
        (rc = create_run(s, &c, o, in, err, errlen)) != 0)
        goto out;
    in->duration_ms = clock_mono_ms() - t0;
    if ((rc = write_manifest(s, c.m, in, err, errlen)) != 0)
        goto out;
    if (ret)
        *ret = *in;
out:
    repo_close(c.r);
    snap_lock_release(lk); /* after the manifest and its pointer */
    manifest_free(c.m);
    free(c.vanished);
    pool_drain(&c.pool);
    pthread_mutex_destroy(&c.lock);
    pthread_mutex_destroy(&c.pool.lock);
    pthread_cond_destroy(&c.room);
    return rc;
}

/* The chunk repository (repo.h SNAP-RP1 to SNAP-RP6): a table of every known chunk in
 * memory, one open pack being filled, packs written to the store as they
 * fill, and index objects naming them written at flush.
 *
 * Memory: an entry is 48 bytes (id, pack number, offset, stored length,
 * plain length with the LZ4 flag in bit 31), kept in blocks of 64 Ki entries
 * so growth never copies them; the hash table holds 4-byte entry numbers
 * (open addressing, linear probing, load <= 0.7). Three million chunks take
 * ~144 MiB of entries and <= 32 MiB of table.
 *
 * Concurrency (SNAP-RP5): one mutex guards all state. repo_add_chunk hashes and
 * compresses without it; it holds it only to look the id up and to copy the
 * stored bytes into the open pack. A full pack is handed to the writer
 * threads (REPO_WRITER_THREADS, started on first use), which write it
 * without the lock, so hashing and compression go on while the store
 * fsyncs (two, so one's fdatasync overlaps the other's write: a file://
 * pack is made durable as it is written, store_file.c STORE-F7). At most
 * REPO_WRITERS packs are queued or being written; an adder that needs a new pack beyond that waits
 * (condition variable), so memory stays under REPO_WRITERS + REPO_STREAMS
 * pack buffers (SNAP-RP7: one open pack per stream).
 *
 * SNAP-R1: a chunk in the table is in the open pack, in a pack being written, or
 *     in a pack in the store; reads of the first two copy from the buffer
 *     under the lock (the buffer is recycled only under the lock once the
 *     pack is written).
 * SNAP-R2: a pack write that fails marks the repo broken: every later add and
 *     flush fails with that message, since chunks the table claims would be
 *     missing. Reopen to retry.
 * SNAP-R3: an index object is written only after every pack it names (SNAP-RP4);
 *     repo_flush waits for in-flight packs first. Pending index data beyond
 *     INDEX_TARGET is written early, so memory stays bounded; each index
 *     object stays under INDEX_TARGET and loads are capped at INDEX_MAX.
 * SNAP-R4: repo_open ignores an index object whose content does not hash to its
 *     name or does not parse (logged as repo.index.bad, counted by
 *     repo_bad_indexes()): its chunks look missing, so verify reports them
 *     and new snapshots store them again. Errors reading the store fail.
 * SNAP-R5: the first copy of a chunk wins when indexes list it twice (after an
 *     interrupted prune); a pack listed twice is one pack.
 * SNAP-R6: prune (repo_prune.c, SNAP-P1 to SNAP-P4) holds the lock throughout and needs
 *     exclusive use of the store (no other writer process). */
#include "snapshot/repo.h"

#include "snapshot/pack.h"
#include "snapshot/repo_internal.h"
#include "util/error.h"
#include "util/hex.h"
#include "util/log.h"

#include <errno.h>
#include <openssl/sha.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- ids ---------------------------------------------------------------- */

void chunk_id_hex(const chunk_id *id, char out[65])
{
    hex_encode(id->b, sizeof id->b, out);
}

int chunk_id_parse(const char *hex, chunk_id *ret)
{
    chunk_id id;
    /* ids are canonical lowercase: "AB.." is not the same key as "ab.." */
    if (!hex || strnlen(hex, 65) != 64 || strspn(hex, "0123456789abcdef") != 64 ||
        hex_decode(hex, sizeof id.b, id.b) != 0)
        return DM_E_INVALID;
    *ret = id;
    return 0;
}

void chunk_id_of(const void *data, size_t len, chunk_id *ret)
{
    SHA256(data, len, ret->b);
}

void repo_pack_key(const chunk_id *id, char key[KEY_LEN])
{
    char hex[65];
    chunk_id_hex(id, hex);
    snprintf(key, KEY_LEN, "packs/%.2s/%s", hex, hex);
}

/* ---- the id table ------------------------------------------------------- */

typedef const chunk_id *(*key_fn)(const repo *r, uint32_t i);

static const chunk_id *chunk_key(const repo *r, uint32_t i)
{
    return &r->blocks[i >> ENT_SHIFT][i & (ENT_BLOCK - 1)].id;
}

static const chunk_id *pack_id_key(const repo *r, uint32_t i)
{
    return &r->packs[i].id;
}

static size_t id_hash(const chunk_id *id)
{
    uint64_t h;
    memcpy(&h, id->b, sizeof h); /* SHA-256: already uniform */
    return (size_t)h;
}

static int64_t tab_find(const repo *r, const idtab *t, key_fn key, const chunk_id *id)
{
    if (!t->cap)
        return -1;
    for (size_t i = id_hash(id) & (t->cap - 1);; i = (i + 1) & (t->cap - 1)) {
        uint32_t v = t->slots[i];
        if (!v)
            return -1;
        if (!memcmp(key(r, v - 1)->b, id->b, 32))
            return v - 1;
    }
}

static void tab_place(const repo *r, idtab *t, key_fn key, uint32_t v)
{
    size_t i = id_hash(key(r, v)) & (t->cap - 1);
    while (t->slots[i])
        i = (i + 1) & (t->cap - 1);
    t->slots[i] = v + 1;
}

/* Adds item v (its id is key(r, v)); grows the table at load 0.7. */
static int tab_insert(const repo *r, idtab *t, key_fn key, uint32_t v)
{
    if ((t->n + 1) * 10 > t->cap * 7) {
        size_t ncap = t->cap ? t->cap * 2 : 1024;
        uint32_t *ns = calloc(ncap, sizeof *ns);
        if (!ns)
            return -ENOMEM;
        idtab nt = {ns, ncap, t->n};
        for (size_t i = 0; i < t->cap; i++)
            if (t->slots[i])
                tab_place(r, &nt, key, t->slots[i] - 1);
        free(t->slots);
        *t = nt;
    }
    tab_place(r, t, key, v);
    t->n++;
    return 0;
}

rentry *repo_ent(const repo *r, size_t i)
{
    return &r->blocks[i >> ENT_SHIFT][i & (ENT_BLOCK - 1)];
}

int64_t repo_pack_find(const repo *r, const chunk_id *id)
{
    return tab_find(r, &r->packtab, pack_id_key, id);
}

int64_t repo_chunk_find(const repo *r, const chunk_id *id)
{
    return tab_find(r, &r->chunks, chunk_key, id);
}

/* Records a chunk's location; the caller checked it is not known. */
static int chunk_insert(repo *r, const pack_entry *e, uint32_t pack)
{
    if (r->n >= UINT32_MAX - 1)
        return DM_E_TOO_BIG;
    if ((r->n >> ENT_SHIFT) >= r->nblocks) {
        rentry **nb = realloc(r->blocks, (r->nblocks + 1) * sizeof *nb);
        if (!nb)
            return -ENOMEM;
        r->blocks = nb;
        if (!(nb[r->nblocks] = malloc(ENT_BLOCK * sizeof(rentry))))
            return -ENOMEM;
        r->nblocks++;
    }
    rentry *x = repo_ent(r, r->n);
    *x = (rentry){e->id, pack, e->off, e->stored, e->plain | (e->flags ? PLAIN_LZ4 : 0)};
    int rc = tab_insert(r, &r->chunks, chunk_key, (uint32_t)r->n);
    if (rc == 0)
        r->n++;
    return rc;
}

static int pack_new(repo *r, uint8_t state, uint32_t *ret)
{
    if (r->npacks == r->packs_cap) {
        size_t ncap = r->packs_cap ? r->packs_cap * 2 : 64;
        pack_info *np = realloc(r->packs, ncap * sizeof *np);
        if (!np)
            return -ENOMEM;
        r->packs = np;
        r->packs_cap = ncap;
    }
    memset(&r->packs[r->npacks], 0, sizeof r->packs[0]);
    r->packs[r->npacks].state = state;
    *ret = (uint32_t)r->npacks++;
    return 0;
}

/* ---- index objects ------------------------------------------------------ */

/* Takes ownership of ents (count encoded entries of pack pid). */
int repo_batch_add(idx_batch *b, const chunk_id *pid, uint8_t *ents, uint32_t count)
{
    if (b->n == b->cap) {
        size_t ncap = b->cap ? b->cap * 2 : 16;
        chunk_id *ni = realloc(b->ids, ncap * sizeof *ni);
        if (ni)
            b->ids = ni;
        uint8_t **ne = realloc(b->ents, ncap * sizeof *ne);
        if (ne)
            b->ents = ne;
        uint32_t *nc = realloc(b->counts, ncap * sizeof *nc);
        if (nc)
            b->counts = nc;
        if (!ni || !ne || !nc) {
            free(ents);
            return -ENOMEM;
        }
        b->cap = ncap;
    }
    b->ids[b->n] = *pid;
    b->ents[b->n] = ents;
    b->counts[b->n++] = count;
    b->bytes += INDEX_PACK_FIXED + (size_t)count * PACK_ENTRY_SIZE;
    return 0;
}

static void batch_clear(idx_batch *b)
{
    for (size_t i = 0; i < b->n; i++)
        free(b->ents[i]);
    b->n = 0;
    b->bytes = 0;
}

void repo_batch_free(idx_batch *b)
{
    batch_clear(b);
    free(b->ids);
    free(b->ents);
    free(b->counts);
    memset(b, 0, sizeof *b);
}

static int index_key_add(repo *r, const char *key)
{
    if (r->nindex == r->index_cap) {
        size_t ncap = r->index_cap ? r->index_cap * 2 : 16;
        char(*nk)[KEY_LEN] = realloc(r->index_keys, ncap * sizeof *nk);
        if (!nk)
            return -ENOMEM;
        r->index_keys = nk;
        r->index_cap = ncap;
    }
    snprintf(r->index_keys[r->nindex++], KEY_LEN, "%s", key);
    return 0;
}

/* Writes packs [from, to) of b as one index object (SNAP-R3). */
static int index_put(repo *r, idx_batch *b, size_t from, size_t to, char *err, size_t errlen)
{
    uint8_t *data = NULL;
    size_t len;
    int rc = index_encode(b->ids + from, b->ents + from, b->counts + from, to - from, &data, &len);
    if (rc)
        return dm_fail(err, errlen, rc, "repo: out of memory for an index object");
    chunk_id iid;
    char hex[65], key[KEY_LEN];
    chunk_id_of(data, len, &iid);
    chunk_id_hex(&iid, hex);
    snprintf(key, sizeof key, "index/%s", hex);
    rc = store_sync(r->s, err, errlen); /* SNAP-RP4: the packs it names are durable first */
    if (rc == 0)
        rc = store_put(r->s, key, data, len, err, errlen);
    if (rc == 0)
        rc = index_key_add(r, key);
    free(data);
    return rc;
}

/* Writes every pack of b in index objects of at most INDEX_TARGET bytes. */
int repo_batch_write(repo *r, idx_batch *b, char *err, size_t errlen)
{
    size_t from = 0, bytes = INDEX_HDR_FIXED;
    for (size_t i = 0; i < b->n; i++) {
        size_t one = INDEX_PACK_FIXED + (size_t)b->counts[i] * PACK_ENTRY_SIZE;
        if (i > from && bytes + one > INDEX_TARGET) {
            int rc = index_put(r, b, from, i, err, errlen);
            if (rc)
                return rc;
            from = i;
            bytes = INDEX_HDR_FIXED;
        }
        bytes += one;
    }
    int rc = b->n > from ? index_put(r, b, from, b->n, err, errlen) : 0;
    if (rc == 0)
        batch_clear(b);
    return rc;
}

/* ---- loading ------------------------------------------------------------ */

typedef struct {
    repo *r;
    chunk_id last_pack;
    uint32_t last_idx;
    int have_last;
} load_ctx;

static int pack_for_id(load_ctx *c, const chunk_id *pid, uint32_t *ret)
{
    repo *r = c->r;
    if (c->have_last && !memcmp(c->last_pack.b, pid->b, 32)) {
        *ret = c->last_idx;
        return 0;
    }
    int64_t f = tab_find(r, &r->packtab, pack_id_key, pid);
    uint32_t idx;
    if (f >= 0) {
        idx = (uint32_t)f;
    } else { /* SNAP-R5: one pack_info per pack id */
        int rc = pack_new(r, PK_WRITTEN, &idx);
        if (rc)
            return rc;
        r->packs[idx].id = *pid;
        if ((rc = tab_insert(r, &r->packtab, pack_id_key, idx)) != 0) {
            r->npacks--;
            return rc;
        }
    }
    c->last_pack = *pid;
    c->last_idx = idx;
    c->have_last = 1;
    *ret = idx;
    return 0;
}

static int load_entry(const chunk_id *pid, const pack_entry *e, void *ctx)
{
    load_ctx *c = ctx;
    uint32_t idx;
    int rc = pack_for_id(c, pid, &idx);
    if (rc)
        return rc;
    pack_info *p = &c->r->packs[idx];
    if ((uint64_t)e->off + e->stored > p->blobs)
        p->blobs = (uint64_t)e->off + e->stored;
    if (repo_chunk_find(c->r, &e->id) >= 0) /* SNAP-R5 */
        return 0;
    return chunk_insert(c->r, e, idx);
}

static void index_bad(repo *r, const char *key, const char *why)
{
    char q[256];
    r->bad_indexes++;
    log_warn("repo.index.bad", "key=%s why=%s", key, log_quote(q, sizeof q, why));
}

/* Loads one index object (SNAP-R4). */
static int load_index(repo *r, const char *key, char *err, size_t errlen)
{
    void *data = NULL;
    size_t len = 0;
    char why[200] = "";
    chunk_id want, got;
    int rc = store_get(r->s, key, INDEX_MAX, &data, &len, why, sizeof why);
    if (rc == DM_E_TOO_BIG || rc == DM_E_NOT_FOUND) { /* too big: not ours; gone: raced */
        if (rc == DM_E_TOO_BIG)
            index_bad(r, key, why);
        return 0;
    }
    if (rc)
        return dm_fail(err, errlen, rc, "repo: reading %s: %s", key, why);
    chunk_id_of(data, len, &got);
    if (chunk_id_parse(key + 6, &want) != 0 || memcmp(want.b, got.b, 32) != 0) {
        index_bad(r, key, "content does not match its name");
        goto out;
    }
    load_ctx c = {.r = r};
    rc = index_parse(data, len, load_entry, &c, why, sizeof why);
    if (rc == DM_E_PROTOCOL) {
        index_bad(r, key, why);
        rc = 0;
    } else if (rc == 0) {
        rc = index_key_add(r, key);
    }
    if (rc)
        rc = dm_fail(err, errlen, rc, "repo: loading %s: %s", key, dm_strerror(rc));
out:
    free(data);
    return rc;
}

typedef struct {
    char (*keys)[KEY_LEN];
    size_t n, cap;
} key_list;

static int collect_index(const char *key, uint64_t size, void *ctx)
{
    key_list *l = ctx;
    chunk_id id;
    (void)size;
    if (strncmp(key, "index/", 6) != 0 || chunk_id_parse(key + 6, &id) != 0)
        return 0; /* not an index object name: not ours */
    if (l->n == l->cap) {
        size_t ncap = l->cap ? l->cap * 2 : 64;
        char(*nk)[KEY_LEN] = realloc(l->keys, ncap * sizeof *nk);
        if (!nk)
            return -ENOMEM;
        l->keys = nk;
        l->cap = ncap;
    }
    snprintf(l->keys[l->n++], KEY_LEN, "%s", key);
    return 0;
}

int repo_load(repo *r, char *err, size_t errlen)
{
    key_list l = {0};
    int rc = store_list(r->s, "index/", collect_index, &l, err, errlen);
    if (rc == -ENOMEM)
        rc = dm_fail(err, errlen, rc, "repo: out of memory listing index objects");
    for (size_t i = 0; rc == 0 && i < l.n; i++)
        rc = load_index(r, l.keys[i], err, errlen);
    free(l.keys);
    return rc;
}

/* Drops the in-memory table, packs and index names (not the open pack). */
void repo_forget(repo *r)
{
    for (size_t i = 0; i < r->nblocks; i++)
        free(r->blocks[i]);
    free(r->blocks);
    free(r->chunks.slots);
    free(r->packtab.slots);
    free(r->packs);
    free(r->index_keys);
    r->blocks = NULL;
    r->nblocks = r->n = 0;
    memset(&r->chunks, 0, sizeof r->chunks);
    memset(&r->packtab, 0, sizeof r->packtab);
    r->packs = NULL;
    r->npacks = r->packs_cap = 0;
    r->index_keys = NULL;
    r->nindex = r->index_cap = 0;
}

int repo_open(dm_store *s, repo **ret, char *err, size_t errlen)
{
    if (!s || !ret)
        return dm_fail(err, errlen, DM_E_INVALID, "repo: no store");
    repo *r = calloc(1, sizeof *r);
    if (!r)
        return dm_fail(err, errlen, -ENOMEM, "repo: out of memory");
    r->s = s;
    pthread_mutex_init(&r->mu, NULL);
    pthread_cond_init(&r->cv, NULL);
    int rc = repo_load(r, err, errlen);
    if (rc) {
        repo_close(r);
        return rc;
    }
    *ret = r;
    return 0;
}

void repo_close(repo *r)
{
    if (!r)
        return;
    if (r->writer_started) { /* it finishes the pack it writes, drops the rest */
        pthread_mutex_lock(&r->mu);
        r->stop = 1;
        pthread_cond_broadcast(&r->cv);
        pthread_mutex_unlock(&r->mu);
        for (int i = 0; i < r->writer_started; i++)
            pthread_join(r->writer[i], NULL);
    }
    repo_forget(r);
    for (int k = 0; k < REPO_STREAMS; k++)
        pack_builder_done(&r->open[k]);
    for (int i = 0; i < r->nspare; i++)
        pack_builder_done(&r->spare[i]);
    repo_batch_free(&r->pend);
    pthread_mutex_destroy(&r->mu);
    pthread_cond_destroy(&r->cv);
    free(r);
}

uint64_t repo_bad_indexes(repo *r)
{
    pthread_mutex_lock(&r->mu);
    uint64_t n = r->bad_indexes;
    pthread_mutex_unlock(&r->mu);
    return n;
}

/* ---- writing ------------------------------------------------------------ */

static void set_broken(repo *r, int rc, const char *msg)
{
    if (!r->broken)
        snprintf(r->broken_msg, sizeof r->broken_msg, "%s (%s)", msg, dm_strerror(rc));
    r->broken = rc;
}

void repo_builder_release(repo *r, pack_builder *b)
{
    if (r->nspare < REPO_SPARES) {
        pack_builder_reset(b);
        r->spare[r->nspare++] = *b;
    } else {
        pack_builder_done(b);
    }
    memset(b, 0, sizeof *b);
}

/* Writer thread, lock held on entry and exit: writes one queued pack
 * without the lock, then files it for the next index object (SNAP-R3). */
static void write_queued(repo *r, queued_pack *q)
{
    pthread_mutex_unlock(&r->mu);
    chunk_id pid;
    char key[KEY_LEN], msg[160] = "";
    size_t len = pack_finish(&q->b, &pid);
    repo_pack_key(&pid, key);
    int rc = store_put_lazy(r->s, key, q->b.buf, len, msg, sizeof msg); /* synced by index_put */
    uint8_t *ents = NULL;
    if (rc == 0 && !(ents = malloc((size_t)q->b.count * PACK_ENTRY_SIZE + 1)))
        rc = -ENOMEM;
    if (ents)
        memcpy(ents, q->b.ents, (size_t)q->b.count * PACK_ENTRY_SIZE);

    pthread_mutex_lock(&r->mu);
    pack_info *p = &r->packs[q->idx];
    p->buf = NULL;
    if (rc == 0) {
        p->id = pid;
        p->state = PK_WRITTEN;
        p->blobs = q->b.len;
        r->st.packs_written++;
        rc = repo_batch_add(&r->pend, &pid, ents, q->b.count);
    }
    if (rc == 0 && r->pend.bytes >= INDEX_TARGET) /* SNAP-R3: bound pending memory */
        rc = repo_batch_write(r, &r->pend, msg, sizeof msg);
    if (rc) {
        set_broken(r, rc, msg[0] ? msg : "writing a pack failed");
        p->state = p->state == PK_WRITTEN ? PK_WRITTEN : PK_FAILED;
    }
    repo_builder_release(r, &q->b);
    r->inflight--;
    pthread_cond_broadcast(&r->cv);
}

static void *writer_main(void *arg)
{
    repo *r = arg;
    pthread_mutex_lock(&r->mu);
    for (;;) {
        while (!r->stop && r->qlen == 0)
            pthread_cond_wait(&r->cv, &r->mu);
        if (r->stop)
            break;
        queued_pack q = r->queue[r->qhead];
        r->qhead = (r->qhead + 1) % REPO_WRITERS;
        r->qlen--;
        write_queued(r, &q);
    }
    while (r->qlen > 0) { /* closing without flush: drop them (repo_close) */
        repo_builder_release(r, &r->queue[r->qhead].b);
        r->qhead = (r->qhead + 1) % REPO_WRITERS;
        r->qlen--;
        r->inflight--;
    }
    pthread_mutex_unlock(&r->mu);
    return NULL;
}

/* Under the lock: hands stream k's open pack to the writer threads. The
 * caller checked inflight < REPO_WRITERS. */
static int queue_open_pack(repo *r, int k, char *err, size_t errlen)
{
    while (r->writer_started < REPO_WRITER_THREADS) {
        int rc = -pthread_create(&r->writer[r->writer_started], NULL, writer_main, r);
        if (rc && !r->writer_started)
            return dm_fail(err, errlen, rc, "repo: cannot start the pack writer");
        if (rc)
            break; /* one writer is enough to go on */
        r->writer_started++;
    }
    r->queue[(r->qhead + r->qlen) % REPO_WRITERS] = (queued_pack){r->open[k], r->open_pack[k]};
    r->qlen++;
    r->inflight++;
    r->packs[r->open_pack[k]].state = PK_WRITING;
    memset(&r->open[k], 0, sizeof r->open[k]);
    r->has_open[k] = 0;
    pthread_cond_broadcast(&r->cv);
    return 0;
}

static int start_pack(repo *r, int k)
{
    uint32_t idx;
    int rc = pack_new(r, PK_OPEN, &idx);
    if (rc)
        return rc;
    if (r->nspare > 0) {
        r->open[k] = r->spare[--r->nspare];
    } else if ((rc = pack_builder_init(&r->open[k])) != 0) {
        r->npacks--;
        return rc;
    }
    r->packs[idx].buf = r->open[k].buf;
    r->open_pack[k] = idx;
    r->has_open[k] = 1;
    return 0;
}

static int broken_fail(repo *r, char *err, size_t errlen)
{
    return dm_fail(err, errlen, r->broken, "repo: %s", r->broken_msg);
}

/* Under the lock: appends e's blob unless the chunk appeared meanwhile. */
static int append_locked(repo *r, int k, pack_entry *e, const void *stored, int *ret_new,
                         char *err, size_t errlen)
{
    for (;;) {
        if (r->broken)
            return broken_fail(r, err, errlen);
        if (repo_chunk_find(r, &e->id) >= 0) {
            r->st.chunks_deduped++;
            return 0;
        }
        if (r->has_open[k] && pack_fits(&r->open[k], e->stored)) {
            e->off = (uint32_t)r->open[k].len;
            int rc = chunk_insert(r, e, r->open_pack[k]);
            if (rc)
                return dm_fail(err, errlen, rc, "repo: out of memory for the chunk table");
            pack_append(&r->open[k], e, stored);
            r->st.chunks_added++;
            r->st.bytes_added += e->plain;
            r->st.bytes_stored += e->stored;
            *ret_new = 1;
            return 0;
        }
        int rc = 0;
        if (r->has_open[k] && r->inflight >= REPO_WRITERS)
            pthread_cond_wait(&r->cv, &r->mu); /* SNAP-RP5: memory stays bounded */
        else if (r->has_open[k])
            rc = queue_open_pack(r, k, err, errlen);
        else if ((rc = start_pack(r, k)) != 0)
            rc = dm_fail(err, errlen, rc, "repo: out of memory for a pack");
        if (rc)
            return rc;
    }
}

int repo_add_chunk(repo *r, const void *data, size_t len, chunk_id *ret_id, int *ret_new, char *err,
                   size_t errlen)
{
    return repo_add_chunk_to(r, 0, data, len, ret_id, ret_new, err, errlen);
}

int repo_add_chunk_to(repo *r, int stream, const void *data, size_t len, chunk_id *ret_id,
                      int *ret_new, char *err, size_t errlen)
{
    if (!r || (!data && len) || stream < 0 || stream >= REPO_STREAMS)
        return dm_fail(err, errlen, DM_E_INVALID, "repo: no data");
    if (len > REPO_CHUNK_MAX)
        return dm_fail(err, errlen, DM_E_TOO_BIG, "repo: chunk of %zu bytes over the cap %u", len,
                       REPO_CHUNK_MAX);
    pack_entry e = {.plain = (uint32_t)len};
    chunk_id_of(data, len, &e.id);
    uint8_t *scratch = NULL;
    size_t scap = 0;
    int isnew = 0, rc = 0;
    pthread_mutex_lock(&r->mu);
    int known = repo_chunk_find(r, &e.id) >= 0;
    if (known)
        r->st.chunks_deduped++;
    pthread_mutex_unlock(&r->mu);
    if (!known) { /* SNAP-RP5: compress outside the lock */
        const void *stored;
        size_t slen;
        rc = pack_compress(data, len, &scratch, &scap, &stored, &slen, &e.flags);
        if (rc) {
            rc = dm_fail(err, errlen, rc, "repo: compressing a chunk: %s", dm_strerror(rc));
            goto out;
        }
        e.stored = (uint32_t)slen;
        pthread_mutex_lock(&r->mu);
        rc = append_locked(r, stream, &e, stored, &isnew, err, errlen);
        pthread_mutex_unlock(&r->mu);
    }
    if (rc == 0) {
        if (ret_id)
            *ret_id = e.id;
        if (ret_new)
            *ret_new = isnew;
    }
out:
    free(scratch);
    return rc;
}

/* Under the lock: queues the open pack and waits until every pack is
 * written (SNAP-R3). */
static int drain_locked(repo *r, char *err, size_t errlen)
{
    for (;;) {
        if (r->broken)
            return broken_fail(r, err, errlen);
        int rc = 0, k = 0, pending = 0;
        for (; k < REPO_STREAMS && !(r->has_open[k] && r->open[k].count > 0); k++)
            ;
        pending = k < REPO_STREAMS;
        if (pending && r->inflight < REPO_WRITERS)
            rc = queue_open_pack(r, k, err, errlen);
        else if (r->inflight > 0 || pending)
            pthread_cond_wait(&r->cv, &r->mu);
        else
            return 0;
        if (rc)
            return rc;
    }
}

int repo_flush(repo *r, char *err, size_t errlen)
{
    pthread_mutex_lock(&r->mu);
    int rc = drain_locked(r, err, errlen);
    if (rc == 0)
        rc = repo_batch_write(r, &r->pend, err, errlen);
    pthread_mutex_unlock(&r->mu);
    return rc;
}

/* ---- reading ------------------------------------------------------------ */

int repo_has_chunk(repo *r, const chunk_id *id)
{
    pthread_mutex_lock(&r->mu);
    int has = repo_chunk_find(r, id) >= 0;
    pthread_mutex_unlock(&r->mu);
    return has;
}

int repo_chunk_size(repo *r, const chunk_id *id, size_t *ret_len)
{
    pthread_mutex_lock(&r->mu);
    int64_t i = repo_chunk_find(r, id);
    if (i >= 0)
        *ret_len = repo_ent(r, (size_t)i)->plain & ~PLAIN_LZ4;
    pthread_mutex_unlock(&r->mu);
    return i >= 0 ? 0 : DM_E_NOT_FOUND;
}

int repo_prefetch(repo *r, const chunk_id *id, uint32_t *last)
{
    char key[KEY_LEN] = "";
    pthread_mutex_lock(&r->mu);
    int64_t i = repo_chunk_find(r, id);
    uint32_t pack = i >= 0 ? repo_ent(r, (size_t)i)->pack : UINT32_MAX;
    if (pack != UINT32_MAX && pack != *last && r->packs[pack].state == PK_WRITTEN) {
        repo_pack_key(&r->packs[pack].id, key);
        *last = pack;
    }
    pthread_mutex_unlock(&r->mu);
    if (key[0])
        store_prefetch(r->s, key);
    return key[0] != '\0';
}

void repo_get_stats(repo *r, repo_stats *ret)
{
    pthread_mutex_lock(&r->mu);
    *ret = r->st;
    pthread_mutex_unlock(&r->mu);
}

/* Where a chunk lives, copied out under the lock. If its pack is not
 * written yet the stored bytes are copied into *ret_mem (SNAP-R1). */
typedef struct {
    rentry e;
    char key[KEY_LEN];
    uint8_t *mem; /* malloc'd copy of the blob, or NULL: read the store */
} chunk_loc;

static int locate(repo *r, const chunk_id *id, chunk_loc *ret)
{
    int rc = 0;
    pthread_mutex_lock(&r->mu);
    int64_t i = repo_chunk_find(r, id);
    if (i < 0) {
        rc = DM_E_NOT_FOUND;
        goto out;
    }
    ret->e = *repo_ent(r, (size_t)i);
    const pack_info *p = &r->packs[ret->e.pack];
    ret->mem = NULL;
    if (p->state == PK_WRITTEN) {
        repo_pack_key(&p->id, ret->key);
    } else if (p->state == PK_FAILED) { /* R2 */
        rc = DM_E_PROTOCOL;
    } else {
        snprintf(ret->key, sizeof ret->key, "(pack being written)");
        if (!(ret->mem = malloc(ret->e.stored ? ret->e.stored : 1)))
            rc = -ENOMEM;
        else
            memcpy(ret->mem, p->buf + ret->e.off, ret->e.stored);
    }
out:
    pthread_mutex_unlock(&r->mu);
    return rc;
}

/* Fetches and decodes the blob of loc into buf (plain bytes); verified:
 * from a copy the store checks whole (STORE-ST6), after damage was found. */
static int fetch(repo *r, const chunk_loc *loc, int verified, void *buf, char *err, size_t errlen)
{
    int (*get)(dm_store *, const char *, uint64_t, size_t, void *, char *, size_t) =
        verified ? store_get_range_verified : store_get_range;
    const rentry *e = &loc->e;
    uint32_t plain = e->plain & ~PLAIN_LZ4;
    uint8_t *tmp = loc->mem;
    int rc = 0;
    if (!(e->plain & PLAIN_LZ4)) {
        if (tmp)
            memcpy(buf, tmp, plain);
        else
            rc = get(r->s, loc->key, e->off, plain, buf, err, errlen);
        return rc;
    }
    if (!tmp && !(tmp = malloc(e->stored)))
        return dm_fail(err, errlen, -ENOMEM, "repo: out of memory");
    if (!loc->mem)
        rc = get(r->s, loc->key, e->off, e->stored, tmp, err, errlen);
    if (rc == 0 && pack_decompress(tmp, e->stored, buf, plain) != 0)
        rc = dm_fail(err, errlen, DM_E_PROTOCOL, "LZ4 frame does not decode to %u bytes", plain);
    if (tmp != loc->mem)
        free(tmp);
    return rc;
}

int repo_read_chunk(repo *r, const chunk_id *id, void *buf, size_t cap, size_t *ret_len, char *err,
                    size_t errlen)
{
    chunk_loc loc;
    char hex[65], why[200] = "";
    chunk_id_hex(id, hex);
    int rc = locate(r, id, &loc);
    if (rc)
        return dm_fail(err, errlen, rc, "repo: chunk %s: %s", hex,
                       rc == DM_E_NOT_FOUND  ? "not in the repository"
                       : rc == DM_E_PROTOCOL ? "its pack could not be written"
                                             : dm_strerror(rc));
    uint32_t plain = loc.e.plain & ~PLAIN_LZ4;
    if (plain > cap) {
        rc = dm_fail(err, errlen, DM_E_TOO_BIG, "repo: chunk %s: %u bytes, buffer %zu", hex, plain,
                     cap);
        goto out;
    }
    /* SNAP-RP1; a damaged blob is read once more from a checked copy (STORE-ST6: the
     * whole object verified, or the mirror's) */
    for (int verified = 0; verified < 2; verified++) {
        rc = fetch(r, &loc, verified, buf, why, sizeof why);
        if (rc == 0) {
            chunk_id got;
            chunk_id_of(buf, plain, &got);
            if (memcmp(got.b, id->b, 32) != 0)
                rc = dm_fail(why, sizeof why, DM_E_PROTOCOL, "content does not match its id");
        }
        if (rc != DM_E_PROTOCOL || loc.mem)
            break;
    }
    if (rc == DM_E_NOT_FOUND) /* an indexed pack is gone: damage, not absence */
        rc = DM_E_PROTOCOL;
    if (rc)
        rc = dm_fail(err, errlen, rc, "repo: chunk %s in %s: %s", hex, loc.key, why);
    else
        *ret_len = plain;
out:
    free(loc.mem);
    return rc;
}

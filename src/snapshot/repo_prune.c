/* Repository maintenance: verify (re-read and re-hash chunks) and prune
 * (repo.h; the invariants SNAP-R1 to SNAP-R6 are in repo.c, prune's is SNAP-R6):
 *
 * SNAP-P1: nothing is deleted before everything that replaces it is durable:
 *     rewritten packs, then the new index objects, then deletion of the old
 *     index objects, then of the old packs.
 * SNAP-P2: an old object whose name equals a new one's (same content) is not
 *     deleted: it IS the new one (STORE-ST2).
 * SNAP-P3: a pack is dropped when none of its chunks is used, rewritten when its
 *     used chunks are under half of its blob bytes (copied as stored, no
 *     recompression), kept whole otherwise.
 * SNAP-P4: after deleting, the state is reloaded from the store, even after a
 *     failure part way, so memory never names a deleted pack.
 * SNAP-R7 (verify): a pack is read whole and every byte of it checked
 *     (pack_check, SNAP-PK5), once however many of its chunks are asked for;
 *     the index's entry for each chunk must be the pack header's own entry.
 *     Packs are checked on several threads, one pack per job.
 * SNAP-R8 (orphans): a pack no index names is what a writer left that was
 *     killed before its repo_flush, or one still writing (its index comes at
 *     the end). Only those written before the caller's cut-off are deleted,
 *     and only under the exclusive store lock (SNAP-L1), which no create
 *     holds at the same time: the cut-off is a second guard, for a writer
 *     whose lock was judged stale while it still ran. */
#include "snapshot/repo.h"

#include "snapshot/pack.h"
#include "snapshot/repo_internal.h"
#include "snapshot/workq.h"
#include "util/error.h"

#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int repo_verify(repo *r, const chunk_id *ids, size_t n, repo_bad_fn bad, void *ctx,
                uint64_t *ret_bad, char *err, size_t errlen)
{
    uint8_t *buf = malloc(REPO_CHUNK_MAX);
    if (!buf)
        return dm_fail(err, errlen, -ENOMEM, "repo: out of memory");
    uint64_t nbad = 0;
    for (size_t i = 0; i < n; i++) {
        char why[400] = "";
        size_t len;
        if (repo_read_chunk(r, &ids[i], buf, REPO_CHUNK_MAX, &len, why, sizeof why) == 0)
            continue;
        nbad++;
        if (bad)
            bad(&ids[i], why, ctx);
    }
    free(buf);
    *ret_bad = nbad;
    return 0;
}

/* ---- verify by pack (SNAP-R7) ----------------------------------------------- */

typedef struct {
    repo *r;
    const chunk_id *ids;
    char **why;
    uint32_t *order;  /* request numbers sorted by pack */
    size_t *first;    /* per pack + 1: start in order */
    uint8_t **plain;  /* per worker: REPO_CHUNK_MAX scratch */
    pthread_mutex_t lock;
    uint64_t done, total;
    repo_progress_fn progress;
    void *pctx;
} vp_ctx;

static int ent_cmp_id(const void *a, const void *b)
{
    return memcmp(((const pack_entry *)a)->id.b, ((const pack_entry *)b)->id.b, 32);
}

/* The reason for request i in pack p, or NULL when it is good. */
static const char *vp_reason(const rentry *e, const pack_entry *ents, const uint8_t *status,
                             uint32_t n, const char *pack_why)
{
    pack_entry key = {.id = e->id};
    const pack_entry *h = ents ? bsearch(&key, ents, n, sizeof *ents, ent_cmp_id) : NULL;
    if (ents && !h)
        return "the pack's header does not list it, though the index says it is there";
    if (h && (h->off != e->off || h->stored != e->stored ||
              h->plain != (e->plain & ~PLAIN_LZ4) ||
              (h->flags == PACK_FLAG_LZ4) != !!(e->plain & PLAIN_LZ4)))
        return "the index and the pack's header disagree on where it is";
    if (h && status[h - ents])
        return pack_blob_why(status[h - ents]);
    return pack_why[0] ? pack_why : NULL;
}

static void vp_one(void *job, void *ctx, int worker)
{
    vp_ctx *v = ctx;
    uint32_t p = (uint32_t)(uintptr_t)job - 1;
    repo *r = v->r;
    char key[KEY_LEN], pack_why[300] = "", msg[600];
    void *obj = NULL;
    size_t len = 0;
    pack_entry *ents = NULL;
    uint8_t *status = NULL;
    uint32_t n = 0;
    repo_pack_key(&r->packs[p].id, key);
    int rc = -ENOMEM;
    if (v->plain[worker] || (v->plain[worker] = malloc(REPO_CHUNK_MAX)))
        rc = store_get(r->s, key, PACK_BUF_CAP, &obj, &len, pack_why, sizeof pack_why);
    if (rc == 0)
        rc = pack_check(obj, len, &r->packs[p].id, v->plain[worker], &ents, &status, &n, pack_why,
                        sizeof pack_why);
    if (rc && !pack_why[0])
        snprintf(pack_why, sizeof pack_why, "%s", dm_strerror(rc));
    /* entries in id order for the lookups, each status riding along in the
     * spare high bits of its flags (flags are 0 or 1) */
    for (uint32_t i = 0; ents && i < n; i++)
        ents[i].flags |= (uint8_t)(status[i] << 4);
    if (ents)
        qsort(ents, n, sizeof *ents, ent_cmp_id);
    for (uint32_t i = 0; ents && i < n; i++) {
        status[i] = ents[i].flags >> 4;
        ents[i].flags &= 0x0f;
    }
    pthread_mutex_lock(&v->lock);
    for (size_t k = v->first[p]; k < v->first[p + 1]; k++) {
        uint32_t i = v->order[k];
        const rentry *e = repo_ent(r, (size_t)repo_chunk_find(r, &v->ids[i]));
        const char *why = vp_reason(e, ents, status, n, pack_why);
        if (!why || v->why[i])
            continue;
        char hex[65];
        chunk_id_hex(&v->ids[i], hex);
        snprintf(msg, sizeof msg, "chunk %s in %s: %s", hex, key, why);
        v->why[i] = strdup(msg);
    }
    v->done += r->packs[p].blobs;
    if (v->progress)
        v->progress(v->done, v->total, v->pctx);
    pthread_mutex_unlock(&v->lock);
    free(obj);
    free(ents);
    free(status);
}

int repo_verify_packs(repo *r, const chunk_id *ids, size_t n, int threads, char **why,
                      repo_progress_fn progress, void *pctx, char *err, size_t errlen)
{
    vp_ctx v = {.r = r, .ids = ids, .why = why, .progress = progress, .pctx = pctx};
    uint32_t *pk = malloc((n + 1) * sizeof *pk); /* per request: pack + 1, 0 none */
    size_t *fill = calloc(r->npacks + 1, sizeof *fill);
    int rc = 0;
    v.order = malloc((n + 1) * sizeof *v.order);
    v.first = calloc(r->npacks + 2, sizeof *v.first);
    v.plain = calloc((size_t)(threads > 0 ? threads : 1), sizeof *v.plain);
    pthread_mutex_init(&v.lock, NULL);
    if (!pk || !fill || !v.order || !v.first || !v.plain) {
        rc = dm_fail(err, errlen, -ENOMEM, "verify: out of memory");
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        int64_t k = repo_chunk_find(r, &ids[i]);
        pk[i] = k < 0 ? 0 : repo_ent(r, (size_t)k)->pack + 1;
        if (k < 0 && !why[i]) {
            char hex[65], msg[200];
            chunk_id_hex(&ids[i], hex);
            snprintf(msg, sizeof msg, "chunk %s: not in the repository", hex);
            why[i] = strdup(msg);
        }
        if (pk[i])
            v.first[pk[i]]++;
    }
    for (size_t p = 0; p < r->npacks; p++) {
        if (v.first[p + 1])
            v.total += r->packs[p].blobs;
        v.first[p + 1] += v.first[p];
    }
    for (size_t i = 0; i < n; i++)
        if (pk[i])
            v.order[v.first[pk[i] - 1] + fill[pk[i] - 1]++] = (uint32_t)i;
    workq *q = NULL;
    if ((rc = wq_new(threads > 0 ? threads : 1, (size_t)threads + 1, vp_one, &v, &q)) != 0) {
        rc = dm_fail(err, errlen, rc, "verify: cannot start threads");
        goto out;
    }
    for (size_t p = 0; p < r->npacks; p++)
        if (v.first[p + 1] > v.first[p])
            wq_push(q, (void *)(uintptr_t)(p + 1));
    wq_finish(q);
out:
    for (int i = 0; v.plain && i < (threads > 0 ? threads : 1); i++)
        free(v.plain[i]);
    free(v.plain);
    free(v.order);
    free(v.first);
    free(fill);
    free(pk);
    pthread_mutex_destroy(&v.lock);
    return rc;
}

/* ---- orphans (SNAP-R8) --------------------------------------------------------- */

typedef struct {
    repo *r;
    int64_t before_ms;
    char (*keys)[KEY_LEN];
    size_t n, cap;
    repo_orphan_stats st;
} orphan_ctx;

static int orphan_seen(const char *key, uint64_t size, int64_t mtime_ms, void *ctx)
{
    orphan_ctx *o = ctx;
    const char *slash = strrchr(key, '/');
    chunk_id id;
    if (!slash || chunk_id_parse(slash + 1, &id) != 0)
        return 0; /* not a pack name: not ours to remove */
    char canon[KEY_LEN];
    repo_pack_key(&id, canon);
    if (strcmp(canon, key) != 0 || repo_pack_find(o->r, &id) >= 0)
        return 0;
    if (mtime_ms < 0 || mtime_ms >= o->before_ms) { /* unknown age counts as new */
        o->st.packs_kept++;
        o->st.bytes_kept += size;
        return 0;
    }
    if (o->n == o->cap) {
        size_t nc = o->cap ? o->cap * 2 : 64;
        char (*nk)[KEY_LEN] = realloc(o->keys, nc * sizeof *nk);
        if (!nk)
            return -ENOMEM;
        o->keys = nk;
        o->cap = nc;
    }
    snprintf(o->keys[o->n++], KEY_LEN, "%s", key);
    o->st.bytes_freed += size;
    return 0;
}

int repo_prune_orphans(repo *r, int64_t before_ms, repo_orphan_stats *ret, char *err,
                       size_t errlen)
{
    orphan_ctx o = {.r = r, .before_ms = before_ms};
    pthread_mutex_lock(&r->mu);
    int rc = store_list_info(r->s, "packs/", orphan_seen, &o, err, errlen);
    for (size_t i = 0; rc == 0 && i < o.n; i++) {
        if ((rc = store_delete(r->s, o.keys[i], err, errlen)) == 0)
            o.st.packs_deleted++;
    }
    pthread_mutex_unlock(&r->mu);
    if (rc == 0)
        rc = store_clean_temp(r->s, before_ms, &o.st.temp_deleted, &o.st.temp_bytes, err, errlen);
    if (rc == -ENOMEM)
        rc = dm_fail(err, errlen, rc, "prune: out of memory");
    if (rc == 0 && ret)
        *ret = o.st;
    free(o.keys);
    return rc;
}

/* ---- prune (SNAP-R6) ----------------------------------------------------------- */

enum { KEEP = 0, DROP, REWRITE };

typedef struct {
    repo *r;
    uint8_t *action;   /* per pack */
    uint64_t *used;    /* per pack: stored bytes of used chunks */
    uint8_t *ent_used; /* per entry: bitmap */
    uint32_t *order;   /* entry numbers sorted by pack */
    size_t *first;     /* per pack + 1: start in order */
    idx_batch idx;     /* the new index */
    pack_builder nb;   /* a rewritten pack being filled */
    chunk_id *new_ids; /* packs written by this prune */
    size_t nnew;
    repo_prune_stats st;
} prune_ctx;

static int prune_alloc(prune_ctx *c, const chunk_id *used, size_t n)
{
    repo *r = c->r;
    c->action = calloc(r->npacks + 1, 1);
    c->used = calloc(r->npacks + 1, sizeof *c->used);
    c->ent_used = calloc(r->n / 8 + 1, 1);
    c->order = malloc((r->n + 1) * sizeof *c->order);
    c->first = calloc(r->npacks + 2, sizeof *c->first);
    if (!c->action || !c->used || !c->ent_used || !c->order || !c->first)
        return -ENOMEM;
    for (size_t i = 0; i < n; i++) {
        int64_t k = repo_chunk_find(r, &used[i]);
        if (k < 0 || (c->ent_used[k / 8] & (1u << (k % 8))))
            continue;
        c->ent_used[k / 8] |= (uint8_t)(1u << (k % 8));
        c->used[repo_ent(r, (size_t)k)->pack] += repo_ent(r, (size_t)k)->stored;
    }
    for (size_t i = 0; i < r->n; i++) /* counting sort of entries by pack */
        c->first[repo_ent(r, i)->pack + 1]++;
    for (size_t p = 0; p < r->npacks; p++)
        c->first[p + 1] += c->first[p];
    size_t *fill = calloc(r->npacks + 1, sizeof *fill);
    if (!fill)
        return -ENOMEM;
    for (size_t i = 0; i < r->n; i++) {
        uint32_t p = repo_ent(r, i)->pack;
        c->order[c->first[p] + fill[p]++] = (uint32_t)i;
    }
    free(fill);
    for (size_t p = 0; p < r->npacks; p++) {
        uint64_t total = r->packs[p].blobs;
        c->action[p] = c->used[p] == 0 ? DROP : c->used[p] * 2 < total ? REWRITE : KEEP;
    }
    return 0;
}

static void prune_free(prune_ctx *c)
{
    free(c->action);
    free(c->used);
    free(c->ent_used);
    free(c->order);
    free(c->first);
    free(c->new_ids);
    repo_batch_free(&c->idx);
    pack_builder_done(&c->nb);
}

/* Writes the rewritten pack being filled and files it in the new index. */
static int prune_pack_out(prune_ctx *c, char *err, size_t errlen)
{
    if (c->nb.count == 0)
        return 0;
    chunk_id pid;
    char key[KEY_LEN];
    size_t len = pack_finish(&c->nb, &pid);
    repo_pack_key(&pid, key);
    int rc = store_put(c->r->s, key, c->nb.buf, len, err, errlen);
    uint8_t *ents = rc ? NULL : malloc((size_t)c->nb.count * PACK_ENTRY_SIZE);
    if (rc == 0 && !ents)
        rc = dm_fail(err, errlen, -ENOMEM, "repo: out of memory");
    chunk_id *nn = rc ? NULL : realloc(c->new_ids, (c->nnew + 1) * sizeof *nn);
    if (rc == 0 && !nn) {
        free(ents);
        rc = dm_fail(err, errlen, -ENOMEM, "repo: out of memory");
    }
    if (rc == 0) {
        c->new_ids = nn;
        c->new_ids[c->nnew++] = pid;
        memcpy(ents, c->nb.ents, (size_t)c->nb.count * PACK_ENTRY_SIZE);
        rc = repo_batch_add(&c->idx, &pid, ents, c->nb.count);
        c->st.packs_rewritten++;
    }
    pack_builder_reset(&c->nb);
    return rc;
}

/* Copies a used chunk's stored blob, as it is, into the new pack. */
static int prune_copy(prune_ctx *c, const rentry *e, char *err, size_t errlen)
{
    char key[KEY_LEN];
    pack_entry pe = {e->id, 0, e->stored, e->plain & ~PLAIN_LZ4,
                     (e->plain & PLAIN_LZ4) ? PACK_FLAG_LZ4 : 0};
    if (!pack_fits(&c->nb, pe.stored)) {
        int rc = prune_pack_out(c, err, errlen);
        if (rc)
            return rc;
    }
    repo_pack_key(&c->r->packs[e->pack].id, key);
    uint8_t *dst = c->nb.buf + c->nb.len; /* read straight into the pack */
    int rc = store_get_range(c->r->s, key, e->off, e->stored, dst, err, errlen);
    if (rc == 0)
        pack_append(&c->nb, &pe, dst);
    return rc;
}

/* Files a kept pack, with every chunk the table places in it, in the new
 * index. */
static int prune_keep(prune_ctx *c, uint32_t p)
{
    size_t cnt = c->first[p + 1] - c->first[p];
    uint8_t *ents = malloc(cnt * PACK_ENTRY_SIZE + 1);
    if (!ents)
        return -ENOMEM;
    for (size_t k = 0; k < cnt; k++) {
        const rentry *e = repo_ent(c->r, c->order[c->first[p] + k]);
        pack_entry pe = {e->id, e->off, e->stored, e->plain & ~PLAIN_LZ4,
                         (e->plain & PLAIN_LZ4) ? PACK_FLAG_LZ4 : 0};
        pack_entry_encode(&pe, ents + k * PACK_ENTRY_SIZE);
    }
    return repo_batch_add(&c->idx, &c->r->packs[p].id, ents, (uint32_t)cnt);
}

/* New packs and the new index; nothing is deleted yet. */
static int prune_build(prune_ctx *c, char *err, size_t errlen)
{
    repo *r = c->r;
    int rc = 0;
    for (uint32_t p = 0; rc == 0 && p < r->npacks; p++) {
        if (c->action[p] == KEEP) {
            if ((rc = prune_keep(c, p)) != 0)
                rc = dm_fail(err, errlen, rc, "repo: out of memory");
            continue;
        }
        if (c->action[p] != REWRITE)
            continue;
        if (!c->nb.buf && (rc = pack_builder_init(&c->nb)) != 0)
            return dm_fail(err, errlen, rc, "repo: out of memory");
        for (size_t k = c->first[p]; rc == 0 && k < c->first[p + 1]; k++) {
            uint32_t i = c->order[k];
            if (c->ent_used[i / 8] & (1u << (i % 8)))
                rc = prune_copy(c, repo_ent(r, i), err, errlen);
        }
    }
    if (rc == 0)
        rc = prune_pack_out(c, err, errlen);
    if (rc == 0)
        rc = repo_batch_write(r, &c->idx, err, errlen);
    return rc;
}

/* 1 if this prune wrote an object of that name: same content, same name
 * (STORE-ST2), so deleting the old one would delete the new one. */
static int index_written_now(const prune_ctx *c, size_t old_index, const char *key)
{
    for (size_t i = old_index; i < c->r->nindex; i++)
        if (!strcmp(c->r->index_keys[i], key))
            return 1;
    return 0;
}

static int pack_written_now(const prune_ctx *c, const chunk_id *pack)
{
    for (size_t i = 0; i < c->nnew; i++)
        if (!memcmp(c->new_ids[i].b, pack->b, 32))
            return 1;
    return 0;
}

/* Old index objects first, then the packs nothing names any more. */
static int prune_delete(prune_ctx *c, size_t old_index, char *err, size_t errlen)
{
    repo *r = c->r;
    char key[KEY_LEN];
    for (size_t i = 0; i < old_index; i++) {
        if (index_written_now(c, old_index, r->index_keys[i]))
            continue;
        int rc = store_delete(r->s, r->index_keys[i], err, errlen);
        if (rc)
            return rc;
    }
    for (uint32_t p = 0; p < r->npacks; p++) {
        if (c->action[p] == KEEP || pack_written_now(c, &r->packs[p].id))
            continue;
        repo_pack_key(&r->packs[p].id, key);
        int rc = store_delete(r->s, key, err, errlen);
        if (rc)
            return rc;
        if (c->action[p] == DROP)
            c->st.packs_deleted++;
        c->st.bytes_freed += r->packs[p].blobs - c->used[p];
    }
    return 0;
}

int repo_prune(repo *r, const chunk_id *used, size_t n, repo_prune_stats *ret, char *err,
               size_t errlen)
{
    prune_ctx c = {.r = r};
    int rc = repo_flush(r, err, errlen);
    if (rc)
        return rc;
    pthread_mutex_lock(&r->mu);
    for (int k = 0; k < REPO_STREAMS; k++)
        if (r->has_open[k] && r->open[k].count > 0) { /* an add raced the flush */
            rc = dm_fail(err, errlen, DM_E_BUSY, "repo: prune needs exclusive use");
            goto out;
        }
    if ((rc = prune_alloc(&c, used, n)) != 0) {
        rc = dm_fail(err, errlen, rc, "repo: out of memory");
        goto out;
    }
    for (int k = 0; k < REPO_STREAMS; k++) {
        if (r->has_open[k]) /* empty; its pack number dies with the table */
            repo_builder_release(r, &r->open[k]);
        r->has_open[k] = 0;
    }
    size_t old_index = r->nindex;
    rc = prune_build(&c, err, errlen);
    if (rc)
        goto out;
    rc = prune_delete(&c, old_index, err, errlen);
    repo_forget(r); /* reload what the store now holds, even after a failure */
    int lrc = repo_load(r, rc ? NULL : err, rc ? 0 : errlen);
    rc = rc ? rc : lrc;
    if (rc == 0 && ret)
        *ret = c.st;
out:
    prune_free(&c);
    pthread_mutex_unlock(&r->mu);
    return rc;
}

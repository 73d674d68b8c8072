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
 *     failure part way, so memory never names a deleted pack. */
#include "snapshot/repo.h"

#include "snapshot/pack.h"
#include "snapshot/repo_internal.h"
#include "util/error.h"

#include <errno.h>
#include <pthread.h>
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

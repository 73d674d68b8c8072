/* The snapshot engine: the read side (list, get, latest, verify, diff,
 * prune) and helpers shared with snap_create.c and snap_restore.c.
 * docs/snapshot.md explains the whole engine; snapshot.h has SNAP-SN1 to SNAP-SN5.
 *
 * SNAP-I1: a manifest is trusted only after its bytes hash to its id (ids are
 *     content addresses) and manifest_decode() accepted it (MANIF-MF1 to MANIF-MF3).
 * SNAP-I2: latest/ holds one immutable pointer per snapshot (store objects are
 *     immutable, STORE-ST2); the newest pointer whose manifest exists wins, so a
 *     crash between manifest and pointer, or a pruned manifest whose pointer
 *     is still there, can never make latest name something missing.
 * SNAP-I3: prune decides and reads every kept manifest before it deletes
 *     anything; it deletes pointers, then manifests, then (repo_prune) data,
 *     so an interruption leaves only unreferenced objects behind.
 * SNAP-I4: verify and diff report in tree order, whatever the thread timing.
 * SNAP-I5 (verify), SNAP-I6 (list), SNAP-I7 (prune and damaged manifests): at
 *     their functions below. */
#include "snapshot/snapshot.h"

#include "snapshot/pack.h"
#include "snapshot/repo.h"
#include "snapshot/snap_internal.h"
#include "util/clock.h"
#include "util/error.h"
#include "util/hex.h"
#include "util/log.h"

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

void snap_opts_init(snap_opts *o)
{
    memset(o, 0, sizeof *o);
}

int snap_threads(const snap_opts *o)
{
    long n = o && o->threads > 0 ? o->threads : sysconf(_SC_NPROCESSORS_ONLN);
    return n < 1 ? 1 : n > 64 ? 64 : (int)n;
}

int snap_threads_for(int threads, size_t bufcap)
{
    size_t most = bufcap ? SNAP_BUF_BUDGET / bufcap : (size_t)threads;
    most = most < 1 ? 1 : most;
    return (size_t)threads > most ? (int)most : threads;
}

void snap_sha256_hex(const void *data, size_t len, char out[65])
{
    unsigned char md[32];
    unsigned int mdlen = 0;
    EVP_Digest(data, len, md, &mdlen, EVP_sha256(), NULL);
    hex_encode(md, sizeof md, out);
}

int snap_id_valid(const char *id)
{
    size_t n = strnlen(id, 65);
    if (n != 64)
        return 0;
    return strspn(id, "0123456789abcdef") == 64;
}

void snap_latest_prefix(const char *source, char *buf, size_t len)
{
    char h[65];
    snap_sha256_hex(source, strlen(source), h);
    snprintf(buf, len, "latest/%s/", h);
}

int snap_load(dm_store *s, const char *id, manifest **ret, char *err, size_t errlen)
{
    char key[STORE_KEY_MAX], h[65];
    void *data = NULL;
    size_t len = 0;
    manifest *m = NULL;
    int rc;
    if (!snap_id_valid(id))
        return dm_fail(err, errlen, DM_E_INVALID, "snapshot id must be 64 hex digits");
    snprintf(key, sizeof key, "snapshots/%s", id);
    rc = store_get(s, key, MF_MAX_OBJECT, &data, &len, err, errlen);
    if (rc != 0)
        goto out;
    snap_sha256_hex(data, len, h);
    if (strcmp(h, id) != 0) { /* SNAP-I1 */
        rc = dm_fail(err, errlen, DM_E_PROTOCOL, "snapshot %.12s: manifest is corrupt (hash)", id);
        goto out;
    }
    if ((rc = manifest_decode(data, len, &m, err, errlen)) != 0)
        goto out;
    snprintf(m->info.id, sizeof m->info.id, "%s", id);
    *ret = m;
out:
    free(data);
    return rc;
}

int snap_get(dm_store *s, const char *id, snap_info *ret, char *err, size_t errlen)
{
    manifest *m = NULL;
    int rc = snap_load(s, id, &m, err, errlen);
    if (rc == 0)
        *ret = m->info;
    manifest_free(m);
    return rc;
}

/* ---- latest ---- */

typedef struct {
    char **keys;
    size_t n, cap;
} keylist;

static int keylist_add(const char *key, uint64_t size, void *ctx)
{
    keylist *k = ctx;
    if (k->n == k->cap) {
        size_t nc = k->cap ? k->cap * 2 : 64;
        char **nk = k->n >= SNAP_MAX_SNAPSHOTS ? NULL : realloc(k->keys, nc * sizeof *nk);
        if (!nk)
            return DM_E_TOO_BIG;
        k->keys = nk;
        k->cap = nc;
    }
    if (!(k->keys[k->n] = strdup(key)))
        return -ENOMEM;
    k->n++;
    return 0;
}

static void keylist_done(keylist *k)
{
    for (size_t i = 0; i < k->n; i++)
        free(k->keys[i]);
    free(k->keys);
}

static int key_desc(const void *a, const void *b)
{
    return -strcmp(*(char *const *)a, *(char *const *)b);
}

/* The id at the end of a pointer key ".../<ms>-<id>", or NULL. */
static const char *pointer_id(const char *key)
{
    const char *dash = strrchr(key, '-');
    return dash && snap_id_valid(dash + 1) ? dash + 1 : NULL;
}

int snap_latest(dm_store *s, const char *source_dir, char *ret_id, size_t idlen, char *err,
                size_t errlen)
{
    char prefix[STORE_KEY_MAX], key[STORE_KEY_MAX], real[PATH_MAX];
    keylist k = {0};
    struct stat st;
    int rc;
    /* create records the real path of a directory; names (import) as given */
    if (realpath(source_dir, real) && stat(real, &st) == 0 && S_ISDIR(st.st_mode))
        source_dir = real;
    snap_latest_prefix(source_dir, prefix, sizeof prefix);
    if ((rc = store_list(s, prefix, keylist_add, &k, err, errlen)) != 0)
        goto out;
    if (k.n > 1)
        qsort(k.keys, k.n, sizeof *k.keys, key_desc);
    rc = dm_fail(err, errlen, DM_E_NOT_FOUND, "no snapshot of %s", source_dir);
    for (size_t i = 0; i < k.n; i++) {
        const char *id = pointer_id(k.keys[i]);
        int exists = 0;
        if (!id)
            continue;
        snprintf(key, sizeof key, "snapshots/%s", id);
        int e = store_exists(s, key, &exists, err, errlen);
        if (e != 0) {
            rc = e;
            goto out;
        }
        if (exists) { /* SNAP-I2 */
            if (strlen(id) >= idlen) {
                rc = dm_fail(err, errlen, DM_E_INVALID, "id buffer too small");
                goto out;
            }
            memcpy(ret_id, id, strlen(id) + 1);
            rc = 0;
            goto out;
        }
    }
out:
    keylist_done(&k);
    return rc;
}

/* ---- list ---- */

typedef struct {
    snap_info *v;
    size_t n, cap;
    dm_store *s;
} infolist;

/* SNAP-I6: list reads each manifest whole and checks it against its id (SNAP-I1),
 * so a damaged one is listed as damaged (snap_info.problem), with what its
 * header still tells, instead of as good or not at all. */
static void read_info(dm_store *s, const char *key, snap_info *in)
{
    char err[256] = "";
    void *data = NULL;
    size_t len = 0;
    int rc = store_get(s, key, MF_MAX_OBJECT, &data, &len, err, sizeof err);
    if (rc == 0) {
        char h[65], id[SNAP_ID_MAX];
        snprintf(id, sizeof id, "%s", in->id);
        snap_sha256_hex(data, len, h);
        int drc = manifest_decode_info(data, len < MF_HEADER_MAX + 16 ? len : MF_HEADER_MAX + 16,
                                       in, err, sizeof err);
        snprintf(in->id, sizeof in->id, "%s", id);
        if (strcmp(h, id) != 0) {
            rc = DM_E_PROTOCOL;
            snprintf(err, sizeof err, "manifest damaged: its content does not hash to its id");
        } else if (drc != 0) {
            rc = drc;
        }
    }
    free(data);
    if (rc == 0)
        return;
    char q[STORE_KEY_MAX + 8];
    in->problem_rc = rc;
    snprintf(in->problem, sizeof in->problem, "%s", err[0] ? err : dm_strerror(rc));
    log_warn("snapshot.list.damaged", "key=%s error=\"%s\"", log_quote(q, sizeof q, key),
             in->problem);
}

static int info_add(const char *key, uint64_t size, void *ctx)
{
    infolist *l = ctx;
    snap_info in;
    const char *id = key + strlen("snapshots/");
    (void)size;
    if (strncmp(key, "snapshots/", 10) != 0 || !snap_id_valid(id))
        return 0;
    memset(&in, 0, sizeof in);
    memcpy(in.id, id, 65);
    read_info(l->s, key, &in);
    if (l->n == l->cap) {
        size_t nc = l->cap ? l->cap * 2 : 16;
        snap_info *nv = l->n >= SNAP_MAX_SNAPSHOTS ? NULL : realloc(l->v, nc * sizeof *nv);
        if (!nv)
            return DM_E_TOO_BIG;
        l->v = nv;
        l->cap = nc;
    }
    l->v[l->n++] = in;
    return 0;
}

static int info_newest_first(const void *a, const void *b)
{
    const snap_info *x = a, *y = b;
    if (x->time_ms != y->time_ms)
        return x->time_ms > y->time_ms ? -1 : 1;
    return strcmp(x->id, y->id);
}

int snap_list(dm_store *s, snap_info **ret, size_t *ret_n, char *err, size_t errlen)
{
    infolist l = {.s = s};
    int rc = store_list(s, "snapshots/", info_add, &l, err, errlen);
    if (rc != 0) {
        free(l.v);
        return rc;
    }
    if (l.n > 1)
        qsort(l.v, l.n, sizeof *l.v, info_newest_first);
    *ret = l.v;
    *ret_n = l.n;
    return 0;
}

/* ---- diff ---- */

static int ext_equal(const mf_entry *a, const mf_entry *b)
{
    if (a->size != b->size || a->n_ext != b->n_ext)
        return 0;
    for (uint32_t i = 0; i < a->n_ext; i++) {
        const mf_extent *x = &a->ext[i], *y = &b->ext[i];
        if (x->len != y->len || x->hole != y->hole ||
            (!x->hole && memcmp(x->id.b, y->id.b, 32) != 0))
            return 0;
    }
    return 1;
}

static int content_equal(const manifest *ma, const mf_entry *a, const manifest *mb,
                         const mf_entry *b)
{
    if (a->type != b->type)
        return 0;
    if (a->type == MF_FILE)
        return ext_equal(a, b);
    if (a->type == MF_SYMLINK)
        return a->link_len == b->link_len && memcmp(a->link, b->link, a->link_len) == 0;
    if (a->type == MF_HARDLINK) {
        const mf_entry *ta = &ma->e[a->link_to], *tb = &mb->e[b->link_to];
        return mf_path_cmp(ta->path, ta->path_len, tb->path, tb->path_len) == 0;
    }
    return 1;
}

static void diff_pair(const manifest *ma, const mf_entry *a, const manifest *mb, const mf_entry *b,
                      snap_diff_fn fn, void *ctx)
{
    const char *p = a->path_len ? a->path : ".";
    if (!content_equal(ma, a, mb, b))
        fn(SNAP_MODIFIED, p, ctx);
    else if (a->mode != b->mode || a->mtime_ns != b->mtime_ns || a->uid != b->uid ||
             a->gid != b->gid)
        fn(SNAP_META, p, ctx);
}

int snap_diff(dm_store *s, const char *id_a, const char *id_b, snap_diff_fn fn, void *ctx,
              char *err, size_t errlen)
{
    manifest *ma = NULL, *mb = NULL;
    int rc;
    if ((rc = snap_load(s, id_a, &ma, err, errlen)) != 0 ||
        (rc = snap_load(s, id_b, &mb, err, errlen)) != 0)
        goto out;
    size_t i = 0, j = 0;
    while (i < ma->n || j < mb->n) { /* both in tree order (MANIF-MF2): a merge */
        const mf_entry *a = i < ma->n ? &ma->e[i] : NULL, *b = j < mb->n ? &mb->e[j] : NULL;
        int c = !a ? 1 : !b ? -1 : mf_path_cmp(a->path, a->path_len, b->path, b->path_len);
        if (c < 0)
            fn(SNAP_REMOVED, a->path, ctx), i++;
        else if (c > 0)
            fn(SNAP_ADDED, b->path, ctx), j++;
        else
            diff_pair(ma, a, mb, b, fn, ctx), i++, j++;
    }
out:
    manifest_free(ma);
    manifest_free(mb);
    return rc;
}

/* ---- verify ---- */

/* 1 if an extent of file[k]'s file before k was already reported damaged. */
static int why_seen(char *const *why, const uint32_t *file, size_t k)
{
    for (size_t j = k; j-- > 0 && file[j] == file[k];)
        if (why[j])
            return 1;
    return 0;
}

/* SNAP-I5: verify checks every byte of every pack the snapshot's chunks are in
 * (repo_verify_packs, SNAP-R7), each pack read once, and each extent's length
 * against the chunk's; a file is reported once, with its first damage in
 * extent order. */
int snap_verify(dm_store *s, const char *id, const snap_opts *o, snap_bad_fn bad, void *ctx,
                uint64_t *ret_bad, char *err, size_t errlen)
{
    manifest *m = NULL;
    repo *r = NULL;
    chunk_id *ids = NULL;
    uint32_t *file = NULL;
    char **why = NULL;
    size_t n = 0, cap = 0;
    uint64_t nbad = 0;
    int rc;
    if ((rc = snap_load(s, id, &m, err, errlen)) != 0 ||
        (rc = repo_open(s, &r, err, errlen)) != 0)
        goto out;
    for (size_t i = 0; i < m->n; i++)
        for (uint32_t k = 0; m->e[i].type == MF_FILE && k < m->e[i].n_ext; k++)
            cap += m->e[i].ext[k].hole ? 0 : 1;
    ids = malloc((cap + 1) * sizeof *ids);
    file = malloc((cap + 1) * sizeof *file);
    why = calloc(cap + 1, sizeof *why);
    if (!ids || !file || !why) {
        rc = dm_fail(err, errlen, -ENOMEM, "verify: out of memory");
        goto out;
    }
    for (size_t i = 0; i < m->n; i++)
        for (uint32_t k = 0; m->e[i].type == MF_FILE && k < m->e[i].n_ext; k++) {
            const mf_extent *x = &m->e[i].ext[k];
            size_t len = 0;
            if (x->hole)
                continue;
            if (repo_chunk_size(r, &x->id, &len) == 0 && len != x->len) {
                char msg[160];
                snprintf(msg, sizeof msg, "chunk has %zu bytes, manifest says %" PRIu64, len,
                         x->len);
                why[n] = strdup(msg);
            }
            file[n] = (uint32_t)i;
            ids[n++] = x->id;
        }
    int threads = snap_threads_for(snap_threads(o), PACK_BUF_CAP + REPO_CHUNK_MAX);
    if ((rc = repo_verify_packs(r, ids, n, threads, why, o ? o->progress : NULL,
                                o ? o->progress_ctx : NULL, err, errlen)) != 0)
        goto out;
    for (size_t k = 0; k < n; k++) { /* SNAP-I4: tree order, one report per file */
        if (!why[k] || why_seen(why, file, k))
            continue;
        nbad++;
        if (bad)
            bad(m->e[file[k]].path, why[k], ctx);
    }
    if (ret_bad)
        *ret_bad = nbad;
out:
    for (size_t k = 0; why && k < n; k++)
        free(why[k]);
    free(why);
    free(ids);
    free(file);
    repo_close(r);
    manifest_free(m);
    return rc;
}

/* ---- prune ---- */

typedef struct {
    chunk_id *v;
    size_t n, cap;
} idset;

static int idset_add_manifest(idset *u, const manifest *m)
{
    for (size_t i = 0; i < m->n; i++) {
        const mf_entry *e = &m->e[i];
        for (uint32_t k = 0; e->type == MF_FILE && k < e->n_ext; k++) {
            if (e->ext[k].hole)
                continue;
            if (u->n == u->cap) {
                size_t nc = u->cap ? u->cap * 2 : 1024;
                chunk_id *nv = realloc(u->v, nc * sizeof *nv);
                if (!nv)
                    return -ENOMEM;
                u->v = nv;
                u->cap = nc;
            }
            u->v[u->n++] = e->ext[k].id;
        }
    }
    return 0;
}

static int id_cmp(const void *a, const void *b)
{
    return memcmp(a, b, sizeof(chunk_id));
}

static void idset_unique(idset *u)
{
    if (u->n < 2)
        return;
    qsort(u->v, u->n, sizeof *u->v, id_cmp);
    size_t w = 1;
    for (size_t i = 1; i < u->n; i++)
        if (memcmp(&u->v[i], &u->v[w - 1], sizeof(chunk_id)) != 0)
            u->v[w++] = u->v[i];
    u->n = w;
}

static int by_source_newest(const void *a, const void *b)
{
    const snap_info *x = a, *y = b;
    int c = strcmp(x->source, y->source);
    return c ? c : info_newest_first(a, b);
}

/* Marks drop[i] for all but the newest keep of each source (v sorted). */
static void prune_choose(const snap_info *v, size_t n, int keep, char *drop)
{
    int rank = 0;
    for (size_t i = 0; i < n; i++) {
        rank = (i > 0 && strcmp(v[i].source, v[i - 1].source) == 0) ? rank + 1 : 0;
        drop[i] = rank >= keep;
    }
}

static int prune_delete(dm_store *s, const snap_info *in, char *err, size_t errlen)
{
    char prefix[STORE_KEY_MAX], key[STORE_KEY_MAX];
    keylist k = {0};
    snap_latest_prefix(in->source, prefix, sizeof prefix);
    int rc = store_list(s, prefix, keylist_add, &k, err, errlen);
    for (size_t i = 0; rc == 0 && i < k.n; i++) {
        const char *id = pointer_id(k.keys[i]);
        if (id && strcmp(id, in->id) == 0)
            rc = store_delete(s, k.keys[i], err, errlen);
    }
    keylist_done(&k);
    snprintf(key, sizeof key, "snapshots/%s", in->id);
    return rc ? rc : store_delete(s, key, err, errlen); /* SNAP-I3: pointers first */
}

static int prune_collect(dm_store *s, const snap_info *v, size_t n, const char *drop, idset *u,
                         char *err, size_t errlen)
{
    for (size_t i = 0; i < n; i++) {
        manifest *m = NULL;
        if (drop[i])
            continue;
        int rc = snap_load(s, v[i].id, &m, err, errlen);
        if (rc == 0)
            rc = idset_add_manifest(u, m);
        manifest_free(m);
        if (rc != 0)
            return rc; /* SNAP-I3: nothing deleted yet */
    }
    idset_unique(u);
    return 0;
}

/* SNAP-I7: damaged manifests take no part in prune: they count towards no
 * keep and are not deleted (they are listed as damaged, for a person to
 * look at); the chunks only they name are not protected (nothing can
 * restore them). A manifest that could not be read at all (the store
 * failed, not the content) stops prune before anything is deleted: what it
 * names is unknown. */
static int prune_sort_out_damaged(snap_info *v, size_t *n, uint64_t *ret_damaged, char *err,
                                  size_t errlen)
{
    size_t w = 0;
    for (size_t i = 0; i < *n; i++) {
        if (!v[i].problem[0]) {
            v[w++] = v[i];
            continue;
        }
        if (v[i].problem_rc != DM_E_PROTOCOL)
            return dm_fail(err, errlen, v[i].problem_rc,
                           "prune: snapshot %.12s cannot be read (%s); nothing deleted", v[i].id,
                           v[i].problem);
        (*ret_damaged)++;
    }
    *n = w;
    return 0;
}

int snap_prune(dm_store *s, int keep, int64_t grace_ms, snap_prune_stats *ret, char *err,
               size_t errlen)
{
    snap_info *v = NULL;
    size_t n = 0;
    char *drop = NULL;
    idset u = {0};
    repo *r = NULL;
    snap_lock *lk = NULL;
    repo_prune_stats rs = {0};
    repo_orphan_stats os = {0};
    snap_prune_stats st = {0};
    int rc;
    if (keep < 1)
        return dm_fail(err, errlen, DM_E_INVALID, "prune: keep must be at least 1");
    if (grace_ms < 0)
        return dm_fail(err, errlen, DM_E_INVALID, "prune: the grace must not be negative");
    int64_t before_ms = clock_wall_ms() - grace_ms; /* taken before anything is read */
    if ((rc = snap_lock_take(s, 1, &lk, err, errlen)) != 0 ||
        (rc = snap_list(s, &v, &n, err, errlen)) != 0 ||
        (rc = prune_sort_out_damaged(v, &n, &st.snapshots_damaged, err, errlen)) != 0)
        goto out;
    if (!(drop = calloc(n + 1, 1))) {
        rc = -ENOMEM;
        goto out;
    }
    if (n > 1)
        qsort(v, n, sizeof *v, by_source_newest);
    prune_choose(v, n, keep, drop);
    if ((rc = prune_collect(s, v, n, drop, &u, err, errlen)) != 0 ||
        (rc = repo_open(s, &r, err, errlen)) != 0)
        goto out;
    for (size_t i = 0; i < n; i++) {
        if (drop[i] && (rc = prune_delete(s, &v[i], err, errlen)) != 0)
            goto out;
        st.snapshots_deleted += drop[i] ? 1 : 0;
    }
    if ((rc = repo_prune(r, u.v, u.n, &rs, err, errlen)) != 0 ||
        (rc = repo_prune_orphans(r, before_ms, &os, err, errlen)) != 0)
        goto out;
    st.packs_deleted = rs.packs_deleted + os.packs_deleted;
    st.packs_rewritten = rs.packs_rewritten;
    st.bytes_freed = rs.bytes_freed + os.bytes_freed + os.temp_bytes;
    st.orphans_deleted = os.packs_deleted;
    st.orphans_kept = os.packs_kept;
    st.orphan_bytes_kept = os.bytes_kept;
    st.temp_deleted = os.temp_deleted;
    if (ret)
        *ret = st;
out:
    repo_close(r);
    snap_lock_release(lk);
    free(u.v);
    free(drop);
    free(v);
    return rc;
}

/* The repository: content-addressed chunks, grouped into pack objects, on a
 * store (store/store.h). The snapshot layer (snapshot.h) cuts files into
 * chunks and keeps trees; this layer only stores and fetches chunks.
 *
 * Layout in the store (docs/snapshot-format.md is the reference):
 *   packs/<2 hex>/<sha256 of the pack object>   many chunks, then a pack header
 *   index/<sha256 of the index object>         which chunk lives in which pack
 *
 * SNAP-RP1: a chunk's id is the SHA-256 of its plain bytes; repo_read_chunk()
 *      re-hashes what it read and fails (DM_E_PROTOCOL, naming the pack) on
 *      any mismatch: corruption is never returned as data.
 * SNAP-RP2: a chunk is stored once: adding a chunk the repository (or the open
 *      pack) already holds writes nothing.
 * SNAP-RP3: each chunk is LZ4-frame compressed, or stored raw when that does not
 *      make it smaller (model weights); the pack header says which.
 * SNAP-RP4: packs are written before the index that names them, and the index
 *      before any snapshot that uses them: an interrupted writer leaves only
 *      unreferenced packs, never a reference to something missing.
 * SNAP-RP5: repo_add_chunk() may be called from several threads at once: hashing
 *      and compression run outside the lock; only appending to the open pack
 *      holds it. Memory is bounded: at most REPO_PACK_TARGET bytes buffered
 *      per open pack.
 * SNAP-RP7: chunks go to one of REPO_STREAMS open packs, chosen by the caller
 *      (repo_add_chunk_to): a writer with several sequential sources (the
 *      snapshot's readers) keeps each source's chunks together, in its
 *      order, so that a restore in tree order reads packs one after the
 *      other instead of coming back to the same pack (costly on s3://,
 *      where a pack is fetched whole).
 * SNAP-RP6: nothing read from the store is trusted: pack headers and index
 *      objects are bounds-checked; lengths are capped (REPO_CHUNK_MAX). */
#ifndef DUMONT_SNAPSHOT_REPO_H
#define DUMONT_SNAPSHOT_REPO_H

#include "store/store.h"

#include <stddef.h>
#include <stdint.h>

#define REPO_CHUNK_MAX (8u << 20)     /* largest chunk accepted, plain bytes */
#define REPO_PACK_TARGET (16u << 20)  /* a pack is closed once this big */

typedef struct {
    uint8_t b[32];
} chunk_id;

/* 64 lowercase hex chars + NUL. */
void chunk_id_hex(const chunk_id *id, char out[65]);
int chunk_id_parse(const char *hex, chunk_id *ret); /* DM_E_INVALID */
void chunk_id_of(const void *data, size_t len, chunk_id *ret); /* SHA-256 */

typedef struct repo repo;

typedef struct {
    uint64_t chunks_added, chunks_deduped;
    uint64_t bytes_added;   /* plain bytes of new chunks */
    uint64_t bytes_stored;  /* bytes written to packs (after compression) */
    uint64_t packs_written;
} repo_stats;

/* Opens the repository on s (borrowed; must outlive the repo) and loads every
 * index object. An empty store is an empty repository. */
int repo_open(dm_store *s, repo **ret, char *err, size_t errlen);
void repo_close(repo *r); /* does not flush: unflushed chunks are dropped */

/* SNAP-RP2, SNAP-RP3, SNAP-RP5. *ret_new (may be NULL) is 1 when the chunk was not there. */
int repo_add_chunk(repo *r, const void *data, size_t len, chunk_id *ret_id, int *ret_new,
                   char *err, size_t errlen);
/* The same into stream `stream` (SNAP-RP7), 0 <= stream < REPO_STREAMS;
 * repo_add_chunk is stream 0. */
#define REPO_STREAMS 2
int repo_add_chunk_to(repo *r, int stream, const void *data, size_t len, chunk_id *ret_id,
                      int *ret_new, char *err, size_t errlen);
/* Writes the open pack(s) and an index object naming them (SNAP-RP4). After it
 * returns 0, every chunk added so far is durable and readable. */
int repo_flush(repo *r, char *err, size_t errlen);
int repo_has_chunk(repo *r, const chunk_id *id);
/* Plain size of a known chunk; DM_E_NOT_FOUND otherwise. */
int repo_chunk_size(repo *r, const chunk_id *id, size_t *ret_len);
/* Reads and verifies (SNAP-RP1) a chunk into buf (cap bytes). */
int repo_read_chunk(repo *r, const chunk_id *id, void *buf, size_t cap, size_t *ret_len,
                    char *err, size_t errlen);
/* Read-ahead: chunk id will be read soon. Hints the store (store_prefetch,
 * STORE-ST5) with its pack, unless that pack is *last (then nothing); *last is
 * the caller's memory of the previous pack (start it at UINT32_MAX).
 * Returns 1 when it hinted a pack (*last changed), else 0. */
int repo_prefetch(repo *r, const chunk_id *id, uint32_t *last);
void repo_get_stats(repo *r, repo_stats *ret);
/* Index objects repo_open ignored because they were damaged (logged as
 * repo.index.bad); their chunks look missing. 0 on a healthy store. */
uint64_t repo_bad_indexes(repo *r);

/* Called for each damaged or missing chunk found by repo_verify(). */
typedef void (*repo_bad_fn)(const chunk_id *id, const char *why, void *ctx);
/* Re-reads and re-hashes each of the n chunks; *ret_bad counts the damaged
 * ones (0: all good). Returns 0 unless the check itself could not run. */
int repo_verify(repo *r, const chunk_id *ids, size_t n, repo_bad_fn bad, void *ctx,
                uint64_t *ret_bad, char *err, size_t errlen);

typedef void (*repo_progress_fn)(uint64_t done, uint64_t total, void *ctx);
/* SNAP-R7: checks every byte of every pack holding one of the n chunks
 * (pack_check, SNAP-PK5), on `threads` threads, and that the index's entries
 * for each pack are the pack header's own. why[i] (n slots, zeroed by the
 * caller; each malloc'd, the caller frees) is set for each damaged ids[i]:
 * its own blob is damaged or missing, or its pack is damaged anywhere (a
 * damaged pack is damaged, even where this chunk's bytes are right).
 * progress (may be NULL) gets pack bytes checked / to check. Returns 0
 * unless the check itself could not run. */
int repo_verify_packs(repo *r, const chunk_id *ids, size_t n, int threads, char **why,
                      repo_progress_fn progress, void *pctx, char *err, size_t errlen);

typedef struct {
    uint64_t packs_deleted, packs_rewritten, bytes_freed;
} repo_prune_stats;
/* Keeps the n chunks in used and removes the rest: packs holding no used
 * chunk are deleted; packs mostly unused are rewritten. Crash-safe: new
 * packs and index are written before old ones are deleted. */
int repo_prune(repo *r, const chunk_id *used, size_t n, repo_prune_stats *ret, char *err,
               size_t errlen);

typedef struct {
    uint64_t packs_deleted, bytes_freed;   /* packs no index names, older than the cut-off */
    uint64_t packs_kept, bytes_kept;       /* the same, newer: a writer may still index them */
    uint64_t temp_deleted, temp_bytes;     /* the store's own temp files (STORE-ST8) */
} repo_orphan_stats;
/* SNAP-R8: deletes pack objects that no index names and that were written
 * before before_ms (wall clock), and the store's temp files older than that.
 * Needs exclusive use of the store (snap_lock, SNAP-L1). */
int repo_prune_orphans(repo *r, int64_t before_ms, repo_orphan_stats *ret, char *err,
                       size_t errlen);

#endif

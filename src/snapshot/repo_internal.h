/* Internals of the chunk repository shared by repo.c (state, writing,
 * reading) and repo_prune.c (verify, prune). Nothing else includes this;
 * the interface is repo.h, the invariants are in repo.c's header comment. */
#ifndef DUMONT_SNAPSHOT_REPO_INTERNAL_H
#define DUMONT_SNAPSHOT_REPO_INTERNAL_H

#include "snapshot/pack.h"
#include "snapshot/repo.h"

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#define ENT_SHIFT    16
#define ENT_BLOCK    (1u << ENT_SHIFT)
#define REPO_WRITERS 3 /* packs queued or being written */
#define REPO_WRITER_THREADS 2
#define REPO_SPARES  3
#define INDEX_TARGET (8u << 20)
#define INDEX_MAX    (64u << 20)
#define PLAIN_LZ4    0x80000000u
#define KEY_LEN      96

typedef struct {
    chunk_id id;
    uint32_t pack, off, stored, plain; /* plain: bit 31 is the LZ4 flag */
} rentry;

enum { PK_OPEN, PK_WRITING, PK_WRITTEN, PK_FAILED };

typedef struct {
    chunk_id id; /* valid once written */
    uint8_t state;
    uint8_t *buf;   /* blobs while open or writing (SNAP-R1) */
    uint64_t blobs; /* bytes of blobs (max end of a known entry) */
} pack_info;

typedef struct {
    pack_builder b;
    uint32_t idx;
} queued_pack;

typedef struct {
    uint32_t *slots; /* entry number + 1; 0 empty */
    size_t cap, n;
} idtab;

/* Packs waiting for an index object, or an index being built by prune. */
typedef struct {
    chunk_id *ids;
    uint8_t **ents;
    uint32_t *counts;
    size_t n, cap, bytes;
} idx_batch;

struct repo {
    dm_store *s;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    rentry **blocks;
    size_t nblocks, n;
    idtab chunks, packtab;
    pack_info *packs;
    size_t npacks, packs_cap;
    pack_builder open[REPO_STREAMS]; /* SNAP-RP7: one open pack per stream */
    int has_open[REPO_STREAMS];
    uint32_t open_pack[REPO_STREAMS];
    pack_builder spare[REPO_SPARES];
    int nspare;
    queued_pack queue[REPO_WRITERS]; /* packs for the writer thread */
    int qhead, qlen, inflight;       /* inflight: queued or being written */
    pthread_t writer[REPO_WRITER_THREADS];
    int writer_started, stop; /* writer_started: threads running */
    idx_batch pend;
    char (*index_keys)[KEY_LEN];
    size_t nindex, index_cap;
    int broken;
    char broken_msg[200];
    uint64_t bad_indexes;
    repo_stats st;
};

rentry *repo_ent(const repo *r, size_t i);
int64_t repo_chunk_find(const repo *r, const chunk_id *id);
int64_t repo_pack_find(const repo *r, const chunk_id *id); /* pack number or -1 */
void repo_pack_key(const chunk_id *id, char key[KEY_LEN]);
/* Index batches: add takes ownership of ents; write clears on success. */
int repo_batch_add(idx_batch *b, const chunk_id *pid, uint8_t *ents, uint32_t count);
int repo_batch_write(repo *r, idx_batch *b, char *err, size_t errlen);
void repo_batch_free(idx_batch *b);
void repo_builder_release(repo *r, pack_builder *b);
/* Drops the table, packs and index names; repo_load fills them again. */
void repo_forget(repo *r);
int repo_load(repo *r, char *err, size_t errlen);

#endif

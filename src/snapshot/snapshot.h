/* Snapshots of a directory tree (a workspace): incremental, content-addressed,
 * LZ4-compressed, on a store. Built on the chunk repository (repo.h).
 *
 * A snapshot is a manifest object snapshots/<id> listing every entry of the
 * tree (path, type, mode, mtime, size, link target, hard-link group, chunk
 * ids), written last: a snapshot is visible only when whole. A per-source
 * pointer latest/<sha256 of the source path> names the newest snapshot of it.
 *
 * SNAP-SN1: create never reads again a file whose size, mtime and inode match the
 *      parent snapshot's entry; it reuses the parent's chunk list.
 * SNAP-SN2: restore writes into a staging directory beside the target and swaps it
 *      in only when every chunk has been verified: on any failure the target
 *      is as it was, and the error names the file.
 * SNAP-SN3: a snapshot interrupted at any point leaves the store consistent and
 *      every earlier snapshot intact (repo.h SNAP-RP4, manifest written last).
 * SNAP-SN4: fidelity: regular files (empty, sparse, > 4 GiB), directories,
 *      symlinks, hard links, permissions, mtimes, names with any bytes.
 * SNAP-SN5: memory is bounded (< 256 MiB) whatever the tree size; hashing,
 *      compression and decompression use every core (opts.threads). */
#ifndef DUMONT_SNAPSHOT_SNAPSHOT_H
#define DUMONT_SNAPSHOT_SNAPSHOT_H

#include "store/store.h"

#include <limits.h>
#include <stddef.h>
#include <stdint.h>

#define SNAP_ID_MAX  72
#define SNAP_TAG_MAX 64

typedef struct {
    char id[SNAP_ID_MAX];
    char parent[SNAP_ID_MAX]; /* "" when none */
    char source[PATH_MAX];    /* absolute path that was snapshotted */
    char tag[SNAP_TAG_MAX];
    int64_t time_ms; /* wall clock at creation */
    uint64_t files, dirs, symlinks;
    uint64_t bytes;      /* plain bytes of all regular files */
    uint64_t bytes_new;  /* plain bytes of chunks this snapshot added */
    uint64_t stored_new; /* bytes it added to the store (compressed) */
    int64_t duration_ms;
    /* snap_list only: "" for a good manifest; otherwise why it cannot be
     * used (damaged, unreadable), with problem_rc the error (DM_E_PROTOCOL:
     * damaged). The fields above are what its header still told, if any. */
    char problem[200];
    int problem_rc;
} snap_info;

/* Progress for long operations: done/total bytes (total 0 if unknown). The
 * CLI draws it on a terminal; the library never prints. */
typedef void (*snap_progress_fn)(uint64_t done, uint64_t total, void *ctx);

/* Where a restore's time went (snap_opts.restore_stats). Workers fetch and
 * decode in parallel, so the fetch share is measured, not summed: fetch_ms =
 * the time the calling thread spent fetching (manifest, index) + the data
 * phase's wall time x (worker time inside store_get*) / (worker busy time).
 * other_ms = total_ms - fetch_ms: decompress, verify, write, metadata, swap. */
typedef struct {
    int64_t total_ms;        /* wall time of the whole snap_restore */
    int64_t fetch_ms;        /* wall-time share spent fetching from the store */
    int64_t other_ms;        /* total_ms - fetch_ms */
    int64_t fetch_thread_ms; /* sum over threads of the time inside store_get* */
    int64_t busy_thread_ms;  /* sum over worker threads of the time on chunk jobs */
    uint64_t bytes;          /* plain bytes written (holes excluded) */
    uint64_t chunks;         /* chunks read */
} snap_restore_stats;

typedef struct {
    int threads;               /* 0: one per core */
    const char *tag;           /* create: optional */
    snap_progress_fn progress; /* may be NULL */
    void *progress_ctx;
    /* create: the source to record (and to key latest/ by) instead of the
     * real path of source_dir; snap_import records its name this way. */
    const char *source_name;
    /* restore: optional; filled (zeroed first) when snap_restore succeeds. */
    snap_restore_stats *restore_stats;
} snap_opts;

void snap_opts_init(snap_opts *o);

int snap_create(dm_store *s, const char *source_dir, const snap_opts *o, snap_info *ret, char *err,
                size_t errlen);
/* Newest first, damaged manifests included and marked (problem). *ret malloc'd. */
int snap_list(dm_store *s, snap_info **ret, size_t *ret_n, char *err, size_t errlen);
int snap_get(dm_store *s, const char *id, snap_info *ret, char *err, size_t errlen);
/* 1 if id has the form of a snapshot id (64 lowercase hex digits). */
int snap_id_valid(const char *id);
/* SNAP-R1 (snap_resolve.c): the whole id of the snapshot that prefix (a whole
 * id, or a unique prefix of one) names, into ret_id. DM_E_INVALID not hex,
 * DM_E_NOT_FOUND none, DM_E_CONFLICT ambiguous (candidates in err). */
int snap_resolve(dm_store *s, const char *prefix, char *ret_id, size_t idlen, char *err,
                 size_t errlen);
/* The newest snapshot of source_dir (via latest/): DM_E_NOT_FOUND if none. */
int snap_latest(dm_store *s, const char *source_dir, char *ret_id, size_t idlen, char *err,
                size_t errlen);
/* SNAP-SN2. target must not exist, or be an empty directory, or force=1 replaces it. */
int snap_restore(dm_store *s, const char *id, const char *target, int force, const snap_opts *o,
                 char *err, size_t errlen);

typedef void (*snap_bad_fn)(const char *path, const char *why, void *ctx);
/* Re-reads and re-hashes every chunk of the snapshot; bad() per damaged file. */
int snap_verify(dm_store *s, const char *id, const snap_opts *o, snap_bad_fn bad, void *ctx,
                uint64_t *ret_bad, char *err, size_t errlen);

typedef enum { SNAP_ADDED, SNAP_REMOVED, SNAP_MODIFIED, SNAP_META } snap_change;
typedef void (*snap_diff_fn)(snap_change what, const char *path, void *ctx);
int snap_diff(dm_store *s, const char *id_a, const char *id_b, snap_diff_fn fn, void *ctx,
              char *err, size_t errlen);

typedef struct {
    uint64_t snapshots_deleted, packs_deleted, packs_rewritten;
    uint64_t bytes_freed; /* all of it: dropped and rewritten packs, orphans, temp files */
    uint64_t snapshots_damaged;         /* left as they are (listed as damaged) */
    uint64_t orphans_deleted;           /* packs no index named (a killed create's) */
    uint64_t orphans_kept, orphan_bytes_kept; /* the same, younger than the grace */
    uint64_t temp_deleted;              /* the store's temp files (file://: .tmp.*) */
} snap_prune_stats;
#define SNAP_PRUNE_GRACE_MS (60 * 60 * 1000) /* default grace: one hour */
/* Keeps the newest keep snapshots of each source; deletes the rest and the
 * data no kept snapshot uses, then packs that no index names and temp files
 * written more than grace_ms ago (SNAP-R8). Holds the store's exclusive lock
 * (SNAP-L1): fails with DM_E_BUSY while a create runs. */
int snap_prune(dm_store *s, int keep, int64_t grace_ms, snap_prune_stats *ret, char *err,
               size_t errlen);

/* Standard tar inside an LZ4 frame, readable by `lz4 -dc | tar -x`. */
int snap_export(dm_store *s, const char *id, int out_fd, const snap_opts *o, char *err,
                size_t errlen);
/* The reverse, safely: refuses absolute paths, "..", symlink escapes, device
 * files; caps total size and entry count. name: the source recorded. */
int snap_import(dm_store *s, int in_fd, const char *name, const snap_opts *o, snap_info *ret,
                char *err, size_t errlen);

#endif

/* Helpers shared by the snapshot engine's files (snapshot.c, snap_create.c,
 * snap_restore.c); not part of the public interface.
 *
 * Store layout used by the engine (docs/snapshot.md):
 *   snapshots/<id>                       id = SHA-256 hex of the manifest bytes
 *   latest/<sha256 hex of source>/<ms>-<id>   one pointer per snapshot; the
 *                                        newest key (16-digit zero-padded ms)
 *                                        whose manifest exists is "latest". */
#ifndef DUMONT_SNAPSHOT_SNAP_INTERNAL_H
#define DUMONT_SNAPSHOT_SNAP_INTERNAL_H

#include "snapshot/manifest.h"
#include "snapshot/snapshot.h"

#include <stddef.h>

#define SNAP_MAX_SNAPSHOTS 100000 /* objects considered by list/prune */

int snap_threads(const snap_opts *o);
/* threads capped so that one bufcap-byte buffer per thread stays within
 * SNAP_BUF_BUDGET (SNAP-SN5). */
#define SNAP_BUF_BUDGET (128u << 20)
int snap_threads_for(int threads, size_t bufcap);
void snap_sha256_hex(const void *data, size_t len, char out[65]);
/* Fetches snapshots/<id>, checks its hash against id, decodes it. */
int snap_load(dm_store *s, const char *id, manifest **ret, char *err, size_t errlen);
/* latest/<sha256 hex of source>/ into buf. */
void snap_latest_prefix(const char *source, char *buf, size_t len);
/* rm -rf that never follows symlinks and makes read-only dirs writable. */
int snap_rm_tree(const char *path);

/* Store locks (snap_lock.c, SNAP-L1 to SNAP-L3): creates share, prune is
 * exclusive. A create waits up to SNAP_LOCK_WAIT_MS for a prune to finish;
 * a prune fails at once (DM_E_BUSY) while anything else holds a lock. */
#define SNAP_LOCK_WAIT_MS    (120 * 1000)
#define SNAP_LOCK_REFRESH_MS (60 * 1000)
#define SNAP_LOCK_STALE_MS   (10 * 60 * 1000)
typedef struct snap_lock snap_lock;
int snap_lock_take(dm_store *s, int exclusive, snap_lock **ret, char *err, size_t errlen);
void snap_lock_release(snap_lock *l); /* NULL: nothing */

#endif

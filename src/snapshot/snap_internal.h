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

#endif

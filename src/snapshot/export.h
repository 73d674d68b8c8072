/* Export and import of snapshots as standard tar archives: the limits of
 * snap_import() (snapshot.h), for callers that need other caps than the
 * defaults. See export.c for the design and its invariants (SNAP-EX1..EX8). */
#ifndef DUMONT_SNAPSHOT_EXPORT_H
#define DUMONT_SNAPSHOT_EXPORT_H

#include "snapshot/snapshot.h"

#include <stdint.h>

#define SNAP_IMPORT_MAX_BYTES   (64ull << 30) /* plain bytes of all files */
#define SNAP_IMPORT_MAX_ENTRIES 1000000ull

typedef struct {
    uint64_t max_bytes;   /* sum of the files' sizes (declared and actual) */
    uint64_t max_entries; /* entries of any kind */
    const char *tmp_dir;  /* where the private extraction directory goes; NULL: /tmp */
} snap_import_limits;

void snap_import_limits_init(snap_import_limits *l);

/* snap_import() with explicit limits (lim NULL: the defaults). */
int snap_import_ex(dm_store *s, int in_fd, const char *name, const snap_opts *o,
                   const snap_import_limits *lim, snap_info *ret, char *err, size_t errlen);

#endif

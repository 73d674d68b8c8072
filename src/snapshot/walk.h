/* The file-system walk that lists a tree into a manifest (manifest.h).
 *
 * WALK-WK1: nothing is followed: entries are lstat()ed; a symlink is recorded as
 *      a symlink (its target as raw bytes), never entered. Only the root
 *      itself is stat()ed, so a source given as a link to a directory works.
 * WALK-WK2: order is stable and is the manifest's tree order (mf_path_cmp): a
 *      directory, then its children sorted bytewise, depth first.
 * WALK-WK3: a regular file with st_nlink > 1 whose (dev, ino) was already seen
 *      becomes an MF_HARDLINK to the first path seen.
 * WALK-WK4: sockets, FIFOs and device nodes are skipped (not snapshot material);
 *      an entry that vanishes during the walk (ENOENT) is skipped; any other
 *      error fails the walk, naming the path.
 * WALK-WK5: bounded: at most MF_MAX_ENTRIES entries, paths of MF_PATH_MAX bytes;
 *      one directory stream open at a time (names are read, then recursed).
 * File entries get size, mtime, ino, dev from lstat but no extents: the
 * snapshot layer fills them. */
#ifndef DUMONT_SNAPSHOT_WALK_H
#define DUMONT_SNAPSHOT_WALK_H

#include "snapshot/manifest.h"

#include <stddef.h>

/* Appends root ("" entry) and everything under it to m (which must be
 * empty). Returns 0 or -errno / DM_E_TOO_BIG with err naming the path. */
int walk_tree(const char *root, manifest *m, char *err, size_t errlen);

#endif

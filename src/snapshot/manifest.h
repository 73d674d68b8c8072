/* The manifest: the listing of one snapshot's tree, stored as the object
 * snapshots/<id> where id is the SHA-256 (hex) of the object's bytes.
 *
 * Format (docs/snapshot.md has the full table), little-endian:
 *   "DMSNAPv1"  u32 header_len  header  body
 *   header: summary (time, counts, bytes, parent, source, tag), the entry
 *           count and the plain body length; readable alone, so that
 *           `snapshot list` fetches only the first few KiB of each manifest.
 *   body:   one LZ4 frame holding the entries in tree order (mf_path_cmp).
 * Names are stored as length + raw bytes, so any byte but NUL and '/' in a
 * name round trips (no UTF-8 needed, unlike JSON).
 *
 * MANIF-MF1: decode trusts nothing: every length is checked against what remains
 *      and against a hard cap (MF_MAX_*); the LZ4 frame may not inflate past
 *      the declared body length, itself capped. Garbage fails DM_E_PROTOCOL.
 * MANIF-MF2: a decoded manifest is safe to restore: entry 0 is the root "" (a
 *      directory); every other path is relative, without "", "." or ".."
 *      components and without NUL; entries are strictly increasing by
 *      mf_path_cmp (so no duplicates), and each entry's parent is an earlier
 *      MF_DIR entry, so no entry can be reached through a symlink.
 * MANIF-MF3: a hard link names an earlier MF_FILE entry; a file's extents add up
 *      exactly to its size; a data extent is 1..REPO_CHUNK_MAX bytes.
 * MANIF-MF4: decode(encode(m)) equals m field for field (nothing is dropped), and
 *      encode is deterministic, so a snapshot's id is stable. */
#ifndef DUMONT_SNAPSHOT_MANIFEST_H
#define DUMONT_SNAPSHOT_MANIFEST_H

#include "snapshot/repo.h"
#include "snapshot/snapshot.h"

#include <stddef.h>
#include <stdint.h>

#define MF_MAX_ENTRIES (4u << 20)   /* entries in one snapshot */
#define MF_MAX_BODY    (512u << 20) /* plain body bytes */
#define MF_MAX_OBJECT  (MF_MAX_BODY + (MF_MAX_BODY >> 7) + (1u << 16))
#define MF_HEADER_MAX  8192 /* magic + header, always below this */
#define MF_PATH_MAX    4095 /* bytes of a path or link target */

typedef enum { MF_FILE = 1, MF_DIR = 2, MF_SYMLINK = 3, MF_HARDLINK = 4 } mf_type;

typedef struct {
    uint64_t len;
    int hole; /* 1: len zero bytes, nothing stored; id unused */
    chunk_id id;
} mf_extent;

typedef struct {
    char *path; /* NUL-terminated; "" is the root */
    size_t path_len;
    mf_type type;
    uint32_t mode; /* permission bits only (07777) */
    uint32_t uid, gid;
    int64_t mtime_ns;
    uint64_t size, ino, dev;
    char *link; /* MF_SYMLINK: target, NUL-terminated */
    size_t link_len;
    uint32_t link_to; /* MF_HARDLINK: index of an earlier MF_FILE */
    mf_extent *ext;   /* MF_FILE */
    uint32_t n_ext, cap_ext;
} mf_entry;

typedef struct {
    snap_info info; /* info.id is not stored: it is the object's key */
    mf_entry *e;
    size_t n, cap;
} manifest;

manifest *manifest_new(void);
void manifest_free(manifest *m);
/* A new zeroed entry at the end; NULL when out of memory or MF_MAX_ENTRIES. */
mf_entry *manifest_push(manifest *m);
/* Copies path (len bytes) into e. 0 or -ENOMEM. */
int mf_entry_set_path(mf_entry *e, const char *path, size_t len);
int mf_entry_set_link(mf_entry *e, const char *target, size_t len);
int mf_entry_add_extent(mf_entry *e, const mf_extent *x);
/* Removes the entries with gone[i] set, and hard links to them (their gone
 * flag is set too); link_to indices are renumbered. 0 or -ENOMEM (m as it
 * was). */
int manifest_remove(manifest *m, char *gone);
/* Tree order: bytewise, with '/' sorting before every other byte. */
int mf_path_cmp(const char *a, size_t alen, const char *b, size_t blen);
/* Index of path in m (entries in tree order), or -1. */
long manifest_find(const manifest *m, const char *path, size_t len);

/* *ret malloc'd. Fails DM_E_TOO_BIG past the caps. */
int manifest_encode(const manifest *m, void **ret, size_t *ret_len, char *err, size_t errlen);
/* MANIF-MF1 to MANIF-MF3. *ret: manifest_free() it. */
int manifest_decode(const void *data, size_t len, manifest **ret, char *err, size_t errlen);
/* Only the header (len may stop anywhere after it). ret->id is left as is. */
int manifest_decode_info(const void *data, size_t len, snap_info *ret, char *err, size_t errlen);

#endif

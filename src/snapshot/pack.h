/* Pack and index object formats (docs/snapshot-format.md) and the per-chunk
 * LZ4 frame codec. Pure functions over memory: no store, no locks. Only
 * repo.c uses them.
 *
 * Pack object:  blob* | header | trailer
 *   header  = "DMPH" u32 version(1) u32 count, then count entries
 *   trailer = u32 header_len "DMPK"
 *   pack id = SHA-256(header | trailer)
 * Index object: "DMIX" u32 version(1) u32 npacks,
 *   then per pack: id[32] u32 count, then count entries
 *   index id = SHA-256(whole object)
 * Entry (48 bytes): id[32] u32 offset u32 stored_len u32 plain_len u8 flags
 *   u8 reserved[3] (zero). Integers little-endian. */
#ifndef DUMONT_SNAPSHOT_PACK_H
#define DUMONT_SNAPSHOT_PACK_H

#include "snapshot/repo.h"

#include <stddef.h>
#include <stdint.h>

#define PACK_ENTRY_SIZE  48
#define PACK_ENTRIES_MAX 16384 /* chunks per pack: bounds the header */
#define PACK_HDR_FIXED   12
#define PACK_TRAILER     8
#define PACK_FLAG_LZ4    1u
#define INDEX_HDR_FIXED  12
#define INDEX_PACK_FIXED 36
/* Largest pack object: blobs up to the target, then the largest header. */
#define PACK_BUF_CAP                                                                               \
    ((size_t)REPO_PACK_TARGET + PACK_HDR_FIXED + (size_t)PACK_ENTRIES_MAX * PACK_ENTRY_SIZE +      \
     PACK_TRAILER)

typedef struct {
    chunk_id id;
    uint32_t off, stored, plain;
    uint8_t flags;
} pack_entry;

void pack_entry_encode(const pack_entry *e, uint8_t out[PACK_ENTRY_SIZE]);
/* Decodes and bounds-checks (SNAP-RP6); DM_E_PROTOCOL when out of bounds. */
int pack_entry_decode(const uint8_t in[PACK_ENTRY_SIZE], pack_entry *ret);

/* An open pack being filled: blobs in buf, encoded entries in ents. */
typedef struct {
    uint8_t *buf;  /* PACK_BUF_CAP bytes */
    uint8_t *ents; /* PACK_ENTRIES_MAX * PACK_ENTRY_SIZE bytes */
    size_t len;    /* blob bytes in buf */
    uint32_t count;
} pack_builder;

int pack_builder_init(pack_builder *b); /* -ENOMEM */
void pack_builder_done(pack_builder *b);
void pack_builder_reset(pack_builder *b);
/* 1 if a blob of stored bytes can be appended (an empty pack takes any). */
int pack_fits(const pack_builder *b, size_t stored);
/* Appends the blob; e->off is set here. The caller checked pack_fits(). */
void pack_append(pack_builder *b, pack_entry *e, const void *stored);
/* Appends header and trailer to buf; returns the object length. */
size_t pack_finish(pack_builder *b, chunk_id *ret_pack_id);

/* Builds an index object from n packs (ids, encoded entries, counts).
 * *ret is malloc'd. */
int index_encode(const chunk_id *pack_ids, uint8_t *const *ents, const uint32_t *counts, size_t n,
                 uint8_t **ret, size_t *ret_len);
typedef int (*index_entry_fn)(const chunk_id *pack_id, const pack_entry *e, void *ctx);
/* Parses an index object, calling fn for every entry after the whole object
 * was checked (SNAP-RP6): a malformed object calls fn never. */
int index_parse(const uint8_t *data, size_t len, index_entry_fn fn, void *ctx, char *err,
                size_t errlen);

/* SNAP-PK5: checks every byte of a whole pack object (obj, len) that should
 * have id pack_id: trailer, header (every entry decoded), SHA-256 of header and
 * trailer == pack_id, blobs back to back from offset 0 to the header, and
 * every blob decoding (plain: REPO_CHUNK_MAX bytes of scratch) to bytes that
 * hash to its chunk id. *ret_ents (malloc'd, n = *ret_n) gets the header's
 * entries and *ret_status (malloc'd) one byte per entry: 0 good, else the
 * index + 1 of a reason in pack_blob_why(). Returns 0 when every byte is
 * right; DM_E_PROTOCOL with why otherwise (the structure's first fault, or
 * the first damaged blob); -ENOMEM. On a structural fault *ret_ents may be
 * NULL (no entry could be trusted). */
int pack_check(const uint8_t *obj, size_t len, const chunk_id *pack_id, uint8_t *plain,
               pack_entry **ret_ents, uint8_t **ret_status, uint32_t *ret_n, char *why,
               size_t whylen);
const char *pack_blob_why(uint8_t status);

/* SNAP-RP3: compresses src into *scratch (grown as needed; free() it) as an LZ4
 * frame, or picks raw when that saves under ~3%. *ret_stored points to
 * *scratch or to src. */
int pack_compress(const void *src, size_t len, uint8_t **scratch, size_t *scratch_cap,
                  const void **ret_stored, size_t *ret_len, uint8_t *ret_flags);
/* Decodes one LZ4 frame of exactly plain bytes into dst (capacity plain). */
int pack_decompress(const void *src, size_t slen, void *dst, size_t plain);

#endif

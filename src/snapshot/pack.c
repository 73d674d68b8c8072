/* Pack and index object formats and the chunk codec (see pack.h for the
 * byte layout; docs/snapshot-format.md for the why).
 *
 * SNAP-PK1: a pack's id is the SHA-256 of its header and trailer only. The header
 *      lists every blob's chunk id (the SHA-256 of its plain bytes), offset,
 *      lengths and flag, so it determines the pack's content; hashing 16 MiB
 *      of blobs a second time would cost ~10% of snapshot CPU for nothing,
 *      since every blob is checked against its chunk id when read (SNAP-RP1).
 * SNAP-PK2: decoders trust nothing: every entry is checked against REPO_CHUNK_MAX,
 *      the pack size cap and the flag rules before anyone uses it (SNAP-RP6);
 *      index_parse() validates the whole object before reporting any entry.
 * SNAP-PK3: LZ4 frames use 4 MiB linked blocks, no checksum (the chunk id is the
 *      checksum) and record the content size; decoding never writes past the
 *      recorded plain length and fails unless it is produced exactly.
 * SNAP-PK4: a chunk is stored raw when LZ4 saves less than 1/32 (~3%) of it:
 *      decoding raw blobs is a copy, and weights do not compress. Chunks of
 *      SAMPLE_MIN bytes or more are first probed: SAMPLES blocks of
 *      SAMPLE_LEN bytes spread over the chunk are compressed alone, and when
 *      they do not shrink the whole chunk is stored raw without compressing
 *      it (~3% of the work). A chunk mostly compressible but random at every
 *      probe is stored raw: a size cost only, never a correctness one.
 * SNAP-PK5: pack_check() covers every byte of a pack object: blobs tile
 *      [0, header) with no gap or overlap, so each byte is in exactly one
 *      blob (checked through its chunk id), the header or the trailer
 *      (checked through the pack id); a flipped byte anywhere fails it. */
#include "snapshot/pack.h"

#include "util/bigbuf.h"
#include "util/error.h"

#include <errno.h>
#include <lz4.h>
#include <lz4frame.h>
#include <openssl/sha.h>
#include <stdlib.h>
#include <string.h>

static void put32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
    p[2] = (uint8_t)(v >> 16);
    p[3] = (uint8_t)(v >> 24);
}

static uint32_t get32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

void pack_entry_encode(const pack_entry *e, uint8_t out[PACK_ENTRY_SIZE])
{
    memcpy(out, e->id.b, 32);
    put32(out + 32, e->off);
    put32(out + 36, e->stored);
    put32(out + 40, e->plain);
    out[44] = e->flags;
    out[45] = out[46] = out[47] = 0;
}

int pack_entry_decode(const uint8_t in[PACK_ENTRY_SIZE], pack_entry *ret)
{
    pack_entry e;
    memcpy(e.id.b, in, 32);
    e.off = get32(in + 32);
    e.stored = get32(in + 36);
    e.plain = get32(in + 40);
    e.flags = in[44];
    if (e.plain > REPO_CHUNK_MAX || e.stored > REPO_PACK_TARGET ||
        e.off > REPO_PACK_TARGET - e.stored || in[45] || in[46] || in[47])
        return DM_E_PROTOCOL;
    if (e.flags == 0 && e.stored != e.plain)
        return DM_E_PROTOCOL;
    if (e.flags > PACK_FLAG_LZ4 || (e.flags == PACK_FLAG_LZ4 && e.stored == 0))
        return DM_E_PROTOCOL;
    *ret = e;
    return 0;
}

int pack_builder_init(pack_builder *b)
{
    memset(b, 0, sizeof *b);
    /* huge pages (few faults), page-aligned for O_DIRECT (store_file.c STORE-F7) */
    b->buf = bigbuf_alloc(PACK_BUF_CAP);
    b->ents = malloc((size_t)PACK_ENTRIES_MAX * PACK_ENTRY_SIZE);
    if (!b->buf || !b->ents) {
        pack_builder_done(b);
        return -ENOMEM;
    }
    return 0;
}

void pack_builder_done(pack_builder *b)
{
    if (!b)
        return;
    bigbuf_free(b->buf, PACK_BUF_CAP);
    free(b->ents);
    memset(b, 0, sizeof *b);
}

void pack_builder_reset(pack_builder *b)
{
    b->len = 0;
    b->count = 0;
}

int pack_fits(const pack_builder *b, size_t stored)
{
    if (b->count >= PACK_ENTRIES_MAX)
        return 0;
    return b->len == 0 || (b->len <= REPO_PACK_TARGET && stored <= REPO_PACK_TARGET - b->len);
}

void pack_append(pack_builder *b, pack_entry *e, const void *stored)
{
    e->off = (uint32_t)b->len;
    if (e->stored && stored != b->buf + b->len) /* prune reads in place */
        memcpy(b->buf + b->len, stored, e->stored);
    b->len += e->stored;
    pack_entry_encode(e, b->ents + (size_t)b->count * PACK_ENTRY_SIZE);
    b->count++;
}

size_t pack_finish(pack_builder *b, chunk_id *ret_pack_id)
{
    uint8_t *h = b->buf + b->len;
    size_t ents = (size_t)b->count * PACK_ENTRY_SIZE;
    uint32_t hlen = (uint32_t)(PACK_HDR_FIXED + ents);
    memcpy(h, "DMPH", 4);
    put32(h + 4, 1);
    put32(h + 8, b->count);
    memcpy(h + PACK_HDR_FIXED, b->ents, ents);
    put32(h + hlen, hlen);
    memcpy(h + hlen + 4, "DMPK", 4);
    SHA256(h, hlen + PACK_TRAILER, ret_pack_id->b); /* SNAP-PK1 */
    return b->len + hlen + PACK_TRAILER;
}

int index_encode(const chunk_id *pack_ids, uint8_t *const *ents, const uint32_t *counts, size_t n,
                 uint8_t **ret, size_t *ret_len)
{
    size_t len = INDEX_HDR_FIXED;
    for (size_t i = 0; i < n; i++)
        len += INDEX_PACK_FIXED + (size_t)counts[i] * PACK_ENTRY_SIZE;
    uint8_t *buf = malloc(len), *p = buf;
    if (!buf)
        return -ENOMEM;
    memcpy(p, "DMIX", 4);
    put32(p + 4, 1);
    put32(p + 8, (uint32_t)n);
    p += INDEX_HDR_FIXED;
    for (size_t i = 0; i < n; i++) {
        memcpy(p, pack_ids[i].b, 32);
        put32(p + 32, counts[i]);
        p += INDEX_PACK_FIXED;
        memcpy(p, ents[i], (size_t)counts[i] * PACK_ENTRY_SIZE);
        p += (size_t)counts[i] * PACK_ENTRY_SIZE;
    }
    *ret = buf;
    *ret_len = len;
    return 0;
}

/* One pass over the index: checks only (fn NULL) or reports entries. */
static int index_walk(const uint8_t *data, size_t len, index_entry_fn fn, void *ctx, char *err,
                      size_t errlen)
{
    if (len < INDEX_HDR_FIXED || memcmp(data, "DMIX", 4) != 0 || get32(data + 4) != 1)
        return dm_fail(err, errlen, DM_E_PROTOCOL, "not an index object (v1)");
    uint32_t npacks = get32(data + 8);
    size_t pos = INDEX_HDR_FIXED;
    for (uint32_t i = 0; i < npacks; i++) {
        if (len - pos < INDEX_PACK_FIXED)
            return dm_fail(err, errlen, DM_E_PROTOCOL, "index truncated at pack %u", i);
        chunk_id pid;
        memcpy(pid.b, data + pos, 32);
        uint32_t count = get32(data + pos + 32);
        pos += INDEX_PACK_FIXED;
        if (count > PACK_ENTRIES_MAX || (len - pos) / PACK_ENTRY_SIZE < count)
            return dm_fail(err, errlen, DM_E_PROTOCOL, "index truncated in pack %u", i);
        for (uint32_t j = 0; j < count; j++, pos += PACK_ENTRY_SIZE) {
            pack_entry e;
            if (pack_entry_decode(data + pos, &e) != 0)
                return dm_fail(err, errlen, DM_E_PROTOCOL, "bad entry %u of pack %u", j, i);
            int rc = fn ? fn(&pid, &e, ctx) : 0;
            if (rc)
                return rc;
        }
    }
    if (pos != len)
        return dm_fail(err, errlen, DM_E_PROTOCOL, "%zu trailing bytes in index", len - pos);
    return 0;
}

int index_parse(const uint8_t *data, size_t len, index_entry_fn fn, void *ctx, char *err,
                size_t errlen)
{
    int rc = index_walk(data, len, NULL, NULL, err, errlen); /* SNAP-PK2: check first */
    return rc ? rc : index_walk(data, len, fn, ctx, err, errlen);
}

static void frame_prefs(LZ4F_preferences_t *p, size_t len)
{
    memset(p, 0, sizeof *p);
    p->frameInfo.blockSizeID = LZ4F_max4MB;
    p->frameInfo.blockMode = LZ4F_blockLinked;
    p->frameInfo.contentChecksumFlag = LZ4F_noContentChecksum;
    p->frameInfo.contentSize = len;
    p->compressionLevel = 1;
}

#define SAMPLE_MIN (128u << 10)
#define SAMPLES    8
#define SAMPLE_LEN 4096

/* SNAP-PK4: 1 if probes of src say it will not compress. */
static int looks_incompressible(const uint8_t *src, size_t len)
{
    char out[LZ4_COMPRESSBOUND(SAMPLE_LEN)];
    size_t in = 0, got = 0, step = (len - SAMPLE_LEN) / (SAMPLES - 1);
    for (int i = 0; i < SAMPLES; i++) {
        int n = LZ4_compress_default((const char *)src + (size_t)i * step, out, SAMPLE_LEN,
                                     (int)sizeof out);
        if (n <= 0)
            return 0;
        in += SAMPLE_LEN;
        got += (size_t)n;
    }
    return got >= in - in / 32;
}

int pack_compress(const void *src, size_t len, uint8_t **scratch, size_t *scratch_cap,
                  const void **ret_stored, size_t *ret_len, uint8_t *ret_flags)
{
    if (len == 0 || (len >= SAMPLE_MIN && looks_incompressible(src, len)))
        goto raw;
    LZ4F_preferences_t prefs;
    frame_prefs(&prefs, len);
    size_t bound = LZ4F_compressFrameBound(len, &prefs);
    if (*scratch_cap < bound) {
        uint8_t *n = realloc(*scratch, bound);
        if (!n)
            return -ENOMEM;
        *scratch = n;
        *scratch_cap = bound;
    }
    size_t clen = LZ4F_compressFrame(*scratch, bound, src, len, &prefs);
    if (LZ4F_isError(clen))
        return DM_E_INTERNAL;
    if (clen >= len - len / 32) /* SNAP-PK4 */
        goto raw;
    *ret_stored = *scratch;
    *ret_len = clen;
    *ret_flags = PACK_FLAG_LZ4;
    return 0;
raw:
    *ret_stored = src;
    *ret_len = len;
    *ret_flags = 0;
    return 0;
}

int pack_decompress(const void *src, size_t slen, void *dst, size_t plain)
{
    LZ4F_dctx *dctx = NULL;
    if (LZ4F_isError(LZ4F_createDecompressionContext(&dctx, LZ4F_VERSION)))
        return -ENOMEM;
    int rc = DM_E_PROTOCOL;
    const uint8_t *in = src;
    size_t in_left = slen, out = 0;
    LZ4F_decompressOptions_t opts = {.stableDst = 1};
    for (;;) {
        size_t dsz = plain - out, ssz = in_left;
        size_t hint = LZ4F_decompress(dctx, (uint8_t *)dst + out, &dsz, in, &ssz, &opts);
        if (LZ4F_isError(hint))
            goto out;
        out += dsz;
        in += ssz;
        in_left -= ssz;
        if (hint == 0) { /* frame complete: exact length, nothing after it (SNAP-PK3) */
            rc = (out == plain && in_left == 0) ? 0 : DM_E_PROTOCOL;
            goto out;
        }
        if (dsz == 0 && ssz == 0) /* no progress: truncated, or larger than plain */
            goto out;
    }
out:
    LZ4F_freeDecompressionContext(dctx);
    return rc;
}

static const char *const blob_why[] = {
    "its LZ4 frame does not decode to the size the header gives",
    "its content does not match its chunk id",
};

const char *pack_blob_why(uint8_t status)
{
    return status >= 1 && status <= 2 ? blob_why[status - 1] : "damaged";
}

/* SNAP-PK5: trailer, header, id, tiling; entries into *ret_ents. */
static int pack_check_frame(const uint8_t *obj, size_t len, const chunk_id *pack_id,
                            pack_entry **ret_ents, uint32_t *ret_n, char *why, size_t whylen)
{
    if (len < PACK_HDR_FIXED + PACK_TRAILER || memcmp(obj + len - 4, "DMPK", 4) != 0)
        return dm_fail(why, whylen, DM_E_PROTOCOL, "trailer damaged (no DMPK mark at the end)");
    uint32_t hlen = get32(obj + len - 8);
    if (hlen < PACK_HDR_FIXED || hlen > len - PACK_TRAILER ||
        (hlen - PACK_HDR_FIXED) % PACK_ENTRY_SIZE != 0)
        return dm_fail(why, whylen, DM_E_PROTOCOL, "trailer damaged (header length %u)", hlen);
    const uint8_t *h = obj + len - PACK_TRAILER - hlen;
    uint32_t n = get32(h + 8);
    if (memcmp(h, "DMPH", 4) != 0 || get32(h + 4) != 1 || n > PACK_ENTRIES_MAX ||
        (size_t)n * PACK_ENTRY_SIZE != hlen - PACK_HDR_FIXED)
        return dm_fail(why, whylen, DM_E_PROTOCOL, "header damaged (not a v1 pack header)");
    chunk_id got;
    SHA256(h, (size_t)hlen + PACK_TRAILER, got.b);
    if (memcmp(got.b, pack_id->b, 32) != 0)
        return dm_fail(why, whylen, DM_E_PROTOCOL,
                       "header or trailer damaged (they do not hash to the pack's id)");
    pack_entry *e = malloc(((size_t)n + 1) * sizeof *e);
    if (!e)
        return -ENOMEM;
    uint64_t end = 0, blobs = (uint64_t)(h - obj);
    for (uint32_t i = 0; i < n; i++) {
        if (pack_entry_decode(h + PACK_HDR_FIXED + (size_t)i * PACK_ENTRY_SIZE, &e[i]) != 0 ||
            e[i].off != end || e[i].stored > blobs - end) {
            free(e);
            return dm_fail(why, whylen, DM_E_PROTOCOL, "header entry %u out of place", i);
        }
        end += e[i].stored;
    }
    if (end != blobs) {
        free(e);
        return dm_fail(why, whylen, DM_E_PROTOCOL, "%llu bytes between the blobs and the header",
                       (unsigned long long)(blobs - end));
    }
    *ret_ents = e;
    *ret_n = n;
    return 0;
}

int pack_check(const uint8_t *obj, size_t len, const chunk_id *pack_id, uint8_t *plain,
               pack_entry **ret_ents, uint8_t **ret_status, uint32_t *ret_n, char *why,
               size_t whylen)
{
    pack_entry *e = NULL;
    uint32_t n = 0;
    *ret_ents = NULL;
    *ret_status = NULL;
    *ret_n = 0;
    int rc = pack_check_frame(obj, len, pack_id, &e, &n, why, whylen);
    if (rc)
        return rc;
    uint8_t *st = calloc((size_t)n + 1, 1);
    if (!st) {
        free(e);
        return -ENOMEM;
    }
    for (uint32_t i = 0; i < n; i++) {
        const uint8_t *blob = obj + e[i].off;
        const uint8_t *bytes = blob;
        if (e[i].flags == PACK_FLAG_LZ4) {
            if (pack_decompress(blob, e[i].stored, plain, e[i].plain) != 0) {
                st[i] = 1;
                goto bad;
            }
            bytes = plain;
        }
        chunk_id got;
        SHA256(bytes, e[i].plain, got.b);
        if (memcmp(got.b, e[i].id.b, 32) == 0)
            continue;
        st[i] = 2;
    bad:
        if (rc == 0) {
            char hex[65];
            chunk_id_hex(&e[i].id, hex);
            rc = dm_fail(why, whylen, DM_E_PROTOCOL, "chunk %s: %s", hex, pack_blob_why(st[i]));
        }
    }
    *ret_ents = e;
    *ret_status = st;
    *ret_n = n;
    return rc;
}

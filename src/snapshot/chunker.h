/* Content-defined chunking (FastCDC, Xia et al., USENIX ATC 2016) with a gear
 * rolling hash and normalized chunking.
 *
 * A cut point depends only on the bytes in a 64-byte window before it and on
 * the previous cut (min size skip), so inserting or deleting bytes moves only
 * the boundaries near the edit: the rest of the file chunks the same and
 * dedups against the previous snapshot (the reason to use CDC at all).
 *
 * Sizes: min 512 KiB, average ~1 MiB, max 4 MiB. 1 MiB keeps the number of
 * chunks (and manifest entries, index entries) of a 10 GB model near 10,000
 * while an edit of a few bytes costs ~1 MiB of new data.
 *
 * SNAP-CK1: chunker_cut() is a pure function of its input bytes: the same bytes
 *      give the same cuts on every machine (the gear table is derived from a
 *      fixed seed, not from rand()).
 * SNAP-CK2: every chunk but the last of a stream is within [CHUNK_MIN, CHUNK_MAX];
 *      the last may be shorter than CHUNK_MIN, never longer than CHUNK_MAX.
 * SNAP-CK3: normalized chunking: before CHUNK_AVG a stricter mask (2 more bits),
 *      after it a looser one (2 fewer bits), which narrows the size spread. */
#ifndef DUMONT_SNAPSHOT_CHUNKER_H
#define DUMONT_SNAPSHOT_CHUNKER_H

#include <stddef.h>
#include <stdint.h>

#define CHUNK_MIN (512u << 10)
#define CHUNK_AVG (1u << 20)
#define CHUNK_MAX (4u << 20)

/* Length of the first chunk of buf[0..len). When len < CHUNK_MAX the caller
 * must pass all the bytes that remain in the stream (at_end), since a cut can
 * only be decided with CHUNK_MAX bytes of lookahead or at the end: the result
 * is then <= len. With len >= CHUNK_MAX the result is <= CHUNK_MAX. */
size_t chunker_cut(const uint8_t *buf, size_t len);

/* SNAP-CK4: the first cut if these bytes decide it, else 0: a cut at position p
 * depends only on the bytes before p, so a cut found in a prefix of the
 * stream is the cut of the whole stream. 0 means "give me more bytes (or,
 * at the end of the stream, the rest is one chunk)". With len >= CHUNK_MAX
 * it never returns 0. chunker_cut(b, n) == (chunker_find(b, n) ?: n). */
size_t chunker_find(const uint8_t *buf, size_t len);

#endif

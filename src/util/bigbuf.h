/* Large work buffers (read buffers, pack buffers) backed by transparent
 * huge pages where the kernel offers them.
 *
 * Why: every first touch of a 4 KiB page is a page fault, and in the VMs
 * this runs on a fault costs ~15-30 us: the 16k faults of an incremental
 * snapshot were half of its CPU time. A 2 MiB-aligned mapping with
 * MADV_HUGEPAGE faults once per 2 MiB instead of 512 times.
 *
 * BB-B1: bigbuf_alloc() returns zero-filled memory aligned to 2 MiB (so also
 *     to 4 KiB, as O_DIRECT wants), or NULL. The hint is best effort: with
 *     THP "never" it is ordinary anonymous memory.
 * BB-B2: bigbuf_free(p, len) takes the len given to bigbuf_alloc(); NULL is
 *     fine. */
#ifndef DUMONT_UTIL_BIGBUF_H
#define DUMONT_UTIL_BIGBUF_H

#include <stddef.h>

void *bigbuf_alloc(size_t len);
void bigbuf_free(void *p, size_t len);

#endif

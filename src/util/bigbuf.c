/* Huge-page work buffers (bigbuf.h BB-B1 to BB-B2). The mapping is over-allocated
 * by 2 MiB and trimmed so that it starts on a 2 MiB boundary: a THP can
 * only back an aligned 2 MiB range. */
#define _GNU_SOURCE /* MADV_HUGEPAGE */
#include "util/bigbuf.h"

#include <stdint.h>
#include <sys/mman.h>

#define HUGE_SZ ((size_t)2 << 20)

static size_t rounded(size_t len)
{
    return (len + HUGE_SZ - 1) & ~(HUGE_SZ - 1);
}

void *bigbuf_alloc(size_t len)
{
    if (len == 0 || len > SIZE_MAX - 2 * HUGE_SZ)
        return NULL;
    size_t n = rounded(len), map = n + HUGE_SZ;
    uint8_t *p = mmap(NULL, map, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED)
        return NULL;
    uint8_t *a = (uint8_t *)(((uintptr_t)p + HUGE_SZ - 1) & ~(uintptr_t)(HUGE_SZ - 1));
    if (a > p)
        munmap(p, (size_t)(a - p));
    if (a + n < p + map)
        munmap(a + n, (size_t)(p + map - (a + n)));
#ifdef MADV_HUGEPAGE
    madvise(a, n, MADV_HUGEPAGE); /* a hint: fine if refused */
#endif
    return a;
}

void bigbuf_free(void *p, size_t len)
{
    if (p)
        munmap(p, rounded(len));
}

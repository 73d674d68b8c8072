/* FastCDC chunker (see chunker.h for the design and SNAP-CK1 to SNAP-CK3).
 *
 * The gear hash is fp = (fp << 1) + gear[byte]: bit k of fp depends on the
 * last k+1 bytes, so the masks test the high bits, which see the whole
 * 64-byte window. The gear table comes from splitmix64 with a fixed seed
 * (SNAP-CK1); it is built once, thread-safely, with pthread_once. */
#include "snapshot/chunker.h"

#include <pthread.h>

#define MASK_S 0xFFFFFC0000000000ull /* 22 high bits: before CHUNK_AVG (SNAP-CK3) */
#define MASK_L 0xFFFFC00000000000ull /* 18 high bits: after CHUNK_AVG */

static uint64_t gear[256];
static pthread_once_t gear_once = PTHREAD_ONCE_INIT;

static uint64_t splitmix64(uint64_t *s)
{
    uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static void gear_init(void)
{
    uint64_t seed = 0x64756d6f6e74ull; /* "dumont": fixed forever (SNAP-CK1) */
    for (int i = 0; i < 256; i++)
        gear[i] = splitmix64(&seed);
}

size_t chunker_find(const uint8_t *buf, size_t len)
{
    pthread_once(&gear_once, gear_init);
    if (len <= CHUNK_MIN)
        return 0;
    size_t end = len > CHUNK_MAX ? CHUNK_MAX : len;
    size_t mid = end < CHUNK_AVG ? end : CHUNK_AVG;
    uint64_t fp = 0;
    size_t i = CHUNK_MIN;
    for (; i < mid; i++) {
        fp = (fp << 1) + gear[buf[i]];
        if (!(fp & MASK_S))
            return i + 1;
    }
    for (; i < end; i++) {
        fp = (fp << 1) + gear[buf[i]];
        if (!(fp & MASK_L))
            return i + 1;
    }
    return len >= CHUNK_MAX ? CHUNK_MAX : 0;
}

size_t chunker_cut(const uint8_t *buf, size_t len)
{
    size_t n = chunker_find(buf, len);
    return n ? n : len;
}

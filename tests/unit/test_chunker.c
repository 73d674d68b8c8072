/* Unit tests for the FastCDC chunker (src/snapshot/chunker.h, SNAP-CK1 to SNAP-CK4). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "snapshot/chunker.h"

#include <stdlib.h>
#include <string.h>

#define BUF_LEN  (20u << 20)
#define MAX_CUTS 256

static uint64_t rng_state;

static uint64_t rng(void)
{
    uint64_t x = rng_state; /* xorshift64*: fixed seed, same data every run */
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    rng_state = x;
    return x * 0x2545F4914F6CDD1Dull;
}

static uint8_t *random_buf(size_t len, uint64_t seed)
{
    uint8_t *b = malloc(len);
    assert_non_null(b);
    rng_state = seed;
    for (size_t i = 0; i < len; i += 8) {
        uint64_t v = rng();
        memcpy(b + i, &v, len - i < 8 ? len - i : 8);
    }
    return b;
}

/* End offsets of every chunk of buf; returns the count. */
static size_t cut_all(const uint8_t *buf, size_t len, size_t *cuts)
{
    size_t n = 0, pos = 0;
    while (pos < len) {
        size_t c = chunker_cut(buf + pos, len - pos);
        assert_true(c > 0 && c <= len - pos);
        pos += c;
        assert_true(n < MAX_CUTS);
        cuts[n++] = pos;
    }
    return n;
}

static void test_deterministic(void **state)
{
    (void)state;
    uint8_t *b = random_buf(BUF_LEN, 42);
    size_t a[MAX_CUTS], c[MAX_CUTS];
    size_t na = cut_all(b, BUF_LEN, a), nc = cut_all(b, BUF_LEN, c);
    assert_int_equal(na, nc);
    assert_memory_equal(a, c, na * sizeof *a); /* SNAP-CK1 */
    /* ~1 MiB average: 20 MiB gives roughly 20 chunks, surely 8..40 */
    assert_in_range(na, 8, 40);
    free(b);
}

static void test_min_max(void **state)
{
    (void)state;
    uint8_t *b = random_buf(BUF_LEN, 7);
    size_t cuts[MAX_CUTS];
    size_t n = cut_all(b, BUF_LEN, cuts), prev = 0;
    for (size_t i = 0; i < n; i++) { /* SNAP-CK2 */
        size_t len = cuts[i] - prev;
        assert_true(len <= CHUNK_MAX);
        if (i + 1 < n)
            assert_true(len >= CHUNK_MIN);
        prev = cuts[i];
    }
    /* no cut point at all in zeros: every chunk is CHUNK_MAX */
    memset(b, 0, BUF_LEN);
    n = cut_all(b, BUF_LEN, cuts);
    assert_int_equal(n, BUF_LEN / CHUNK_MAX);
    for (size_t i = 0; i < n; i++)
        assert_int_equal(cuts[i], (i + 1) * (size_t)CHUNK_MAX);
    /* short input: one chunk */
    assert_int_equal(chunker_cut(b, 100), 100);
    assert_int_equal(chunker_cut(b, CHUNK_MIN), CHUNK_MIN);
    assert_int_equal(chunker_cut(b, 0), 0);
    free(b);
}

/* SNAP-CK4: a cut found in a prefix is the cut of the whole stream; a prefix
 * that decides nothing gets 0, and the stream-based cutting of the snapshot
 * reader (find while decided, else read more) gives the cuts of cut_all. */
static void test_find_on_prefixes(void **state)
{
    (void)state;
    uint8_t *b = random_buf(BUF_LEN, 99);
    size_t cuts[MAX_CUTS], n = cut_all(b, BUF_LEN, cuts), pos = 0, k = 0;
    for (size_t have = 300u << 10; pos < BUF_LEN; have += 333333) { /* odd steps */
        if (have > BUF_LEN)
            have = BUF_LEN;
        size_t c;
        while (pos < have && (c = chunker_find(b + pos, have - pos)) != 0) {
            assert_true(k < n);
            assert_int_equal(pos + c, cuts[k]);
            pos += c;
            k++;
        }
        if (have == BUF_LEN && pos < BUF_LEN) { /* the end: the rest is one chunk */
            assert_int_equal(chunker_cut(b + pos, BUF_LEN - pos), BUF_LEN - pos);
            assert_int_equal(BUF_LEN, cuts[k]);
            pos = BUF_LEN;
            k++;
        }
    }
    assert_int_equal(k, n);
    /* undecided prefixes: too short, or no cut yet and shorter than the max */
    assert_int_equal(chunker_find(b, CHUNK_MIN), 0);
    memset(b, 0, CHUNK_MAX);
    assert_int_equal(chunker_find(b, CHUNK_MAX - 1), 0);
    assert_int_equal(chunker_find(b, CHUNK_MAX), CHUNK_MAX);
    free(b);
}

/* Old cuts shifted by delta must reappear in the new cuts from index
 * at most 2 onward, and then all of them (the tails are equal). */
static void assert_resync(const size_t *o, size_t no, const size_t *n, size_t nn, long delta)
{
    size_t k = 0, j = 0;
    for (; k < nn; k++) {
        for (j = 0; j < no; j++)
            if ((long)o[j] + delta == (long)n[k])
                break;
        if (j < no)
            break;
    }
    assert_true(k <= 2);
    assert_int_equal(nn - k, no - j);
    for (size_t i = 0; k + i < nn; i++)
        assert_int_equal((long)n[k + i], (long)o[j + i] + delta);
}

static void test_insert_shifts_only_nearby(void **state)
{
    (void)state;
    uint8_t *b = random_buf(BUF_LEN, 1234);
    uint8_t *ins = malloc(BUF_LEN + 100);
    assert_non_null(ins);
    memcpy(ins, b, 1000);
    memset(ins + 1000, 0xAB, 100);
    memcpy(ins + 1100, b + 1000, BUF_LEN - 1000);
    size_t o[MAX_CUTS], n[MAX_CUTS];
    size_t no = cut_all(b, BUF_LEN, o), nn = cut_all(ins, BUF_LEN + 100, n);
    assert_resync(o, no, n, nn, 100);
    /* a deletion near the start: the reverse */
    assert_resync(n, nn, o, no, -100);
    /* an insert in the middle changes at most the chunk around it */
    memcpy(ins, b, BUF_LEN / 2);
    memset(ins + BUF_LEN / 2, 0xCD, 100);
    memcpy(ins + BUF_LEN / 2 + 100, b + BUF_LEN / 2, BUF_LEN / 2);
    nn = cut_all(ins, BUF_LEN + 100, n);
    size_t same_before = 0;
    for (size_t i = 0; i < no && o[i] < BUF_LEN / 2; i++)
        same_before += o[i] == n[i];
    size_t before = 0;
    for (size_t i = 0; i < no && o[i] < BUF_LEN / 2; i++)
        before++;
    assert_int_equal(same_before, before);
    assert_int_equal(n[nn - 1], BUF_LEN + 100);
    free(ins);
    free(b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_deterministic),
        cmocka_unit_test(test_min_max),
        cmocka_unit_test(test_find_on_prefixes),
        cmocka_unit_test(test_insert_shifts_only_nearby),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

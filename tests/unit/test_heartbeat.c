/* Unit tests for the heartbeat wire format (src/detect/heartbeat.h, HB-W1 to HB-W4). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "detect/heartbeat.h"

#include <string.h>

static const uint8_t key[HB_KEY_LEN] = {1,  2,  3,  4,  5,  6,  7,  8,  9,  10, 11,
                                        12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22,
                                        23, 24, 25, 26, 27, 28, 29, 30, 31, 32};

static hb_packet sample(void)
{
    hb_packet p = {.type = HB_T_BEAT,
                   .workload = HB_WL_RUNNING,
                   .probe = HB_PR_OK,
                   .instance_id = 12345,
                   .seq = 7,
                   .sent_at_ms = 1764331200000,
                   .flags = HB_F_PREEMPTING,
                   .restarts = 3};
    return p;
}

/* HB-W1, HB-W2: what is encoded parses back identically and verifies. */
static void test_roundtrip(void **state)
{
    (void)state;
    hb_packet p = sample(), q;
    uint8_t buf[HB_PACKET_LEN];
    assert_int_equal(hb_encode(&p, key, buf), 0);
    assert_memory_equal(buf, "DMHB\x01\x01\x02\x02", 8);
    assert_int_equal(hb_parse(buf, sizeof buf, &q), HB_OK);
    assert_int_equal(hb_verify(buf, key), HB_OK);
    assert_int_equal(q.type, p.type);
    assert_int_equal(q.workload, p.workload);
    assert_int_equal(q.probe, p.probe);
    assert_int_equal(q.instance_id, p.instance_id);
    assert_int_equal(q.seq, p.seq);
    assert_int_equal(q.sent_at_ms, p.sent_at_ms);
    assert_int_equal(q.flags, p.flags);
    assert_int_equal(q.restarts, p.restarts);
    p.type = HB_T_LEAVING;
    p.flags = 0;
    assert_int_equal(hb_encode(&p, key, buf), 0);
    assert_int_equal(hb_parse(buf, sizeof buf, &q), HB_OK);
    assert_int_equal(q.type, HB_T_LEAVING);
}

/* HB-W1: every wrong length, magic, version and field is refused. */
static void test_parse_refuses(void **state)
{
    (void)state;
    hb_packet p = sample(), q;
    uint8_t buf[HB_PACKET_LEN + 1], bad[HB_PACKET_LEN];
    assert_int_equal(hb_encode(&p, key, buf), 0);
    for (size_t n = 0; n <= HB_PACKET_LEN + 1; n++)
        if (n != HB_PACKET_LEN)
            assert_int_equal(hb_parse(buf, n, &q), HB_BAD_LENGTH);
    assert_int_equal(hb_parse(NULL, HB_PACKET_LEN, &q), HB_BAD_LENGTH);
    struct {
        size_t off;
        uint8_t v;
        hb_reason want;
    } cases[] = {
        {0, 'X', HB_BAD_MAGIC},   {4, 2, HB_BAD_VERSION},         {5, 0, HB_BAD_FIELD},
        {5, 3, HB_BAD_FIELD},     {6, HB_WL_COUNT, HB_BAD_FIELD}, {7, HB_PR_COUNT, HB_BAD_FIELD},
        {8, 0x80, HB_BAD_FIELD},  /* id > 2^53 */
        {24, 0x80, HB_BAD_FIELD}, /* negative time */
        {32, 0x80, HB_BAD_FIELD}, /* unknown flag */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        memcpy(bad, buf, sizeof bad);
        bad[cases[i].off] = cases[i].v;
        assert_int_equal(hb_parse(bad, sizeof bad, &q), cases[i].want);
    }
    memcpy(bad, buf, sizeof bad);
    memset(bad + 16, 0, 8); /* seq 0 */
    assert_int_equal(hb_parse(bad, sizeof bad, &q), HB_BAD_FIELD);
    memset(bad + 8, 0, 8); /* id 0 */
    assert_int_equal(hb_parse(bad, sizeof bad, &q), HB_BAD_FIELD);
    p.seq = 0;
    assert_int_equal(hb_encode(&p, key, bad), -1);
}

/* HB-W2: any flipped bit, another key, or a forged MAC fails verification. */
static void test_verify_refuses(void **state)
{
    (void)state;
    hb_packet p = sample();
    uint8_t buf[HB_PACKET_LEN], bad[HB_PACKET_LEN], other[HB_KEY_LEN];
    assert_int_equal(hb_encode(&p, key, buf), 0);
    for (size_t i = 0; i < HB_PACKET_LEN * 8; i++) {
        memcpy(bad, buf, sizeof bad);
        bad[i / 8] ^= (uint8_t)(1u << (i % 8));
        assert_int_equal(hb_verify(bad, key), HB_BAD_MAC);
    }
    memcpy(other, key, sizeof other);
    other[31] ^= 1;
    assert_int_equal(hb_verify(buf, other), HB_BAD_MAC);
}

/* HB-W3: each sequence number once; reordering within the window accepted;
 * too old, duplicated or badly timed packets refused. */
static void test_window(void **state)
{
    (void)state;
    hb_window w = {0};
    int64_t now = 1764331200000;
    assert_int_equal(hb_window_check(&w, 10, now, now), HB_OK);
    assert_int_equal(hb_window_check(&w, 10, now, now), HB_REPLAY);
    assert_int_equal(hb_window_check(&w, 8, now, now), HB_OK); /* late, in window */
    assert_int_equal(hb_window_check(&w, 8, now, now), HB_REPLAY);
    assert_int_equal(hb_window_check(&w, 9, now, now), HB_OK);
    assert_int_equal(hb_window_check(&w, 100, now, now), HB_OK);
    assert_int_equal(hb_window_check(&w, 100 - HB_WINDOW + 1, now, now), HB_OK);
    assert_int_equal(hb_window_check(&w, 100 - HB_WINDOW, now, now), HB_REPLAY); /* too old */
    assert_int_equal(hb_window_check(&w, 36, now, now), HB_REPLAY);
    assert_int_equal(hb_window_check(&w, 10, now, now), HB_REPLAY);
    assert_int_equal(hb_window_check(&w, 101, now - HB_MAX_SKEW_MS - 1, now), HB_STALE);
    assert_int_equal(hb_window_check(&w, 101, now + HB_MAX_SKEW_MS + 1, now), HB_STALE);
    assert_int_equal(hb_window_check(&w, 101, now - HB_MAX_SKEW_MS, now), HB_OK);
    /* A stale packet does not advance the window. */
    assert_int_equal(w.top, 101);
    assert_int_equal(hb_window_check(&w, UINT64_MAX, now, now), HB_OK);
    assert_int_equal(hb_window_check(&w, UINT64_MAX, now, now), HB_REPLAY);
}

/* HB-W4: derived keys depend on master, id and key id; hex round-trips. */
static void test_keys(void **state)
{
    (void)state;
    uint8_t a[HB_KEY_LEN], b[HB_KEY_LEN], c[HB_KEY_LEN];
    char hex[HB_KEY_HEX_LEN + 1];
    assert_int_equal(hb_key_derive("master", 1, "kid", a), 0);
    assert_int_equal(hb_key_derive("master", 1, "kid", b), 0);
    assert_memory_equal(a, b, HB_KEY_LEN);
    assert_int_equal(hb_key_derive("master", 2, "kid", b), 0);
    assert_memory_not_equal(a, b, HB_KEY_LEN);
    assert_int_equal(hb_key_derive("master", 1, "kie", b), 0);
    assert_memory_not_equal(a, b, HB_KEY_LEN);
    assert_int_equal(hb_key_derive("masteR", 1, "kid", b), 0);
    assert_memory_not_equal(a, b, HB_KEY_LEN);
    assert_int_equal(hb_key_derive("", 1, "kid", b), -1);
    assert_int_equal(hb_key_derive("m", 0, "kid", b), -1);
    hb_key_to_hex(a, hex);
    assert_int_equal(strlen(hex), HB_KEY_HEX_LEN);
    assert_int_equal(hb_key_from_hex(hex, c), 0);
    assert_memory_equal(a, c, HB_KEY_LEN);
    hex[5] = 'g';
    assert_int_equal(hb_key_from_hex(hex, c), -1);
    assert_int_equal(hb_key_from_hex("abcd", c), -1);
    assert_int_equal(hb_key_from_hex(NULL, c), -1);
}

static void test_names(void **state)
{
    (void)state;
    hb_workload w;
    hb_probe p;
    for (int i = 0; i < HB_WL_COUNT; i++) {
        assert_int_equal(hb_workload_parse(hb_workload_name((hb_workload)i), &w), 0);
        assert_int_equal(w, i);
    }
    for (int i = 0; i < HB_PR_COUNT; i++) {
        assert_int_equal(hb_probe_parse(hb_probe_name((hb_probe)i), &p), 0);
        assert_int_equal(p, i);
    }
    assert_int_equal(hb_workload_parse("bogus", &w), -1);
    assert_string_equal(hb_reason_name(HB_REPLAY), "replay");
    assert_string_equal(hb_reason_name((hb_reason)99), "unknown");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_roundtrip),      cmocka_unit_test(test_parse_refuses),
        cmocka_unit_test(test_verify_refuses), cmocka_unit_test(test_window),
        cmocka_unit_test(test_keys),           cmocka_unit_test(test_names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

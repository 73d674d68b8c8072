/* Unit tests for the checked parsers (src/util/parse.h). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "util/error.h"
#include "util/parse.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#define SENTINEL INT64_C(-777)

static void i64_ok(const char *s, int64_t min, int64_t max, int64_t want)
{
    int64_t v = SENTINEL;
    if (parse_i64(s, min, max, &v) != 0)
        fail_msg("parse_i64(\"%s\") refused", s);
    if (v != want)
        fail_msg("parse_i64(\"%s\") = %lld, want %lld", s, (long long)v, (long long)want);
}

static void i64_bad(const char *s, int64_t min, int64_t max)
{
    int64_t v = SENTINEL;
    int rc = parse_i64(s, min, max, &v);
    if (rc != DM_E_INVALID)
        fail_msg("parse_i64(\"%s\") returned %d, want DM_E_INVALID", s ? s : "(null)", rc);
    if (v != SENTINEL) /* output untouched on failure */
        fail_msg("parse_i64(\"%s\") wrote %lld on failure", s ? s : "(null)", (long long)v);
}

static void test_i64(void **state)
{
    (void)state;
    i64_ok("0", 0, 10, 0);
    i64_ok("10", 0, 10, 10);
    i64_ok("12345", 0, INT64_MAX, 12345);
    i64_ok("-5", -10, 10, -5);
    i64_ok("007", 0, 10, 7); /* decimal, not octal */
    i64_ok("9223372036854775807", INT64_MIN, INT64_MAX, INT64_MAX);
    i64_ok("-9223372036854775808", INT64_MIN, INT64_MAX, INT64_MIN);
}

static void test_i64_bounds(void **state)
{
    (void)state;
    i64_bad("11", 0, 10);
    i64_bad("-1", 0, 10);
    i64_bad("65536", 0, 65535);
    i64_ok("65535", 0, 65535, 65535);
    i64_bad("4", 5, 5);
    i64_ok("5", 5, 5, 5);
    i64_bad("6", 5, 5);
}

static void test_i64_garbage(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "",     " ",    "abc", "12abc", "1.5", "1e3", "0x10",  "10 ", " 10",
        "\t10", "10\n", "--1", "-",     "+",   "1 2", "1,000", "١٢",  "12\x01",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        i64_bad(bad[i], INT64_MIN, INT64_MAX);
    i64_bad(NULL, INT64_MIN, INT64_MAX);
}

static void test_i64_overflow(void **state)
{
    (void)state;
    i64_bad("9223372036854775808", INT64_MIN, INT64_MAX);  /* INT64_MAX + 1 */
    i64_bad("-9223372036854775809", INT64_MIN, INT64_MAX); /* INT64_MIN - 1 */
    i64_bad("99999999999999999999999999", INT64_MIN, INT64_MAX);
    i64_bad("-99999999999999999999999999", INT64_MIN, INT64_MAX);
}

static void dbl_ok(const char *s, double min, double max, double want)
{
    double v = -777.0;
    if (parse_double(s, min, max, &v) != 0)
        fail_msg("parse_double(\"%s\") refused", s);
    if (v != want)
        fail_msg("parse_double(\"%s\") = %.17g, want %.17g", s, v, want);
}

static void dbl_bad(const char *s, double min, double max)
{
    double v = -777.0;
    int rc = parse_double(s, min, max, &v);
    if (rc != DM_E_INVALID)
        fail_msg("parse_double(\"%s\") returned %d, want DM_E_INVALID", s ? s : "(null)", rc);
    if (v != -777.0)
        fail_msg("parse_double(\"%s\") wrote %g on failure", s ? s : "(null)", v);
}

static void test_double(void **state)
{
    (void)state;
    dbl_ok("200", 0.001, 1e9, 200.0);
    dbl_ok("0.5", 0, 1, 0.5);
    dbl_ok(".25", 0, 1, 0.25);
    dbl_ok("-1.5", -2, 0, -1.5);
    dbl_ok("1e3", 0, 1e9, 1000.0);
    dbl_ok("0.001", 0.001, 1e9, 0.001);
    dbl_ok("1e9", 0.001, 1e9, 1e9);
    dbl_bad("0.0009", 0.001, 1e9);
    dbl_bad("1000000001", 0.001, 1e9);
    dbl_bad("0", 0.001, 1e9);
    dbl_bad("-5", 0.001, 1e9);
    static const char *const bad[] = {
        "",     " ",        " 1",    "1 ",     "1.5x", "abc",   "nan", "NaN",  "inf",
        "-inf", "infinity", "1e999", "-1e999", "0x10", "0x1p4", "1,5", "1..5", "e5",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        dbl_bad(bad[i], -INFINITY, INFINITY);
    dbl_bad(NULL, 0, 1);
}

static void test_bool(void **state)
{
    (void)state;
    static const char *const yes[] = {"true", "yes", "1", "on", "TRUE", "Yes", "ON"};
    static const char *const no[] = {"false", "no", "0", "off", "FALSE", "No", "Off"};
    for (size_t i = 0; i < sizeof yes / sizeof yes[0]; i++) {
        int v = -1;
        assert_int_equal(parse_bool(yes[i], &v), 0);
        assert_int_equal(v, 1);
    }
    for (size_t i = 0; i < sizeof no / sizeof no[0]; i++) {
        int v = -1;
        assert_int_equal(parse_bool(no[i], &v), 0);
        assert_int_equal(v, 0);
    }
    static const char *const bad[] = {"",      "2",     "y",       "n",  "tru", "truee",
                                      " true", "true ", "enabled", "-1", "01"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        int v = -1;
        assert_int_equal(parse_bool(bad[i], &v), DM_E_INVALID);
        assert_int_equal(v, -1);
    }
    int v = -1;
    assert_int_equal(parse_bool(NULL, &v), DM_E_INVALID);
    assert_int_equal(v, -1);
}

static void hp_ok(const char *s, const char *want_host, int want_port)
{
    char host[256] = "untouched";
    int port = -1;
    if (parse_host_port(s, host, sizeof host, &port) != 0)
        fail_msg("parse_host_port(\"%s\") refused", s);
    if (strcmp(host, want_host) != 0 || port != want_port)
        fail_msg("parse_host_port(\"%s\") = %s %d, want %s %d", s, host, port, want_host,
                 want_port);
}

static void hp_bad(const char *s)
{
    char host[256] = "untouched";
    int port = -1;
    if (parse_host_port(s, host, sizeof host, &port) != DM_E_INVALID)
        fail_msg("parse_host_port(\"%s\") accepted (%s %d)", s ? s : "(null)", host, port);
    if (port != -1 || strcmp(host, "untouched") != 0)
        fail_msg("parse_host_port(\"%s\") wrote its outputs on failure", s ? s : "(null)");
}

static void test_host_port(void **state)
{
    (void)state;
    hp_ok("127.0.0.1:8700", "127.0.0.1", 8700);
    hp_ok("localhost:80", "localhost", 80);
    hp_ok("0.0.0.0:0", "0.0.0.0", 0); /* port 0: let the kernel pick */
    hp_ok("example.com:65535", "example.com", 65535);
    hp_ok("[::1]:8700", "::1", 8700);
    hp_ok("[::]:1", "::", 1);
    hp_ok("[fe80::1%eth0]:22", "fe80::1%eth0", 22);
    static const char *const bad[] = {
        "",          ":",         "host",     "host:",    ":8700",      "host:65536",
        "host:-1",   "host:80x",  "host: 80", "host:80 ", "host:0x50",  "[::1]",
        "[::1]8700", "[::1:8700", "::1:8700", "::1",      "a:b:80",     "[]:80",
        "[:80",      "]:80",      "a]:80",    "[a]b]:80", "[[::1]]:80", "host:99999999999999999999",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        hp_bad(bad[i]);
    hp_bad(NULL);
}

static void test_host_port_hostlen(void **state)
{
    (void)state;
    char host[4];
    int port = -1;
    assert_int_equal(parse_host_port("abc:1", host, sizeof host, &port), 0); /* 3 + NUL fits */
    assert_string_equal(host, "abc");
    assert_int_equal(port, 1);
    port = -1;
    assert_int_equal(parse_host_port("abcd:1", host, sizeof host, &port), DM_E_INVALID);
    assert_int_equal(port, -1);
    assert_int_equal(parse_host_port("[::12]:1", host, sizeof host, &port), DM_E_INVALID);
    assert_int_equal(parse_host_port("[::1]:1", host, sizeof host, &port), 0);
    assert_string_equal(host, "::1");
}

static void test_kv_parse(void **state)
{
    (void)state;
    char *argv[] = {"gpu_instance_id=12345", "model=qwen2.5:0.5b", "empty=", "eq=a=b"};
    kv_list kv;
    char err[256] = "";
    assert_int_equal(kv_parse(&kv, 4, argv, err, sizeof err), 0);
    assert_int_equal(kv.n, 4);
    assert_string_equal(kv_get(&kv, "gpu_instance_id"), "12345");
    assert_string_equal(kv_get(&kv, "model"), "qwen2.5:0.5b");
    assert_string_equal(kv_get(&kv, "empty"), "");
    assert_string_equal(kv_get(&kv, "eq"), "a=b"); /* split at the first '=' */
    assert_null(kv_get(&kv, "missing"));
    assert_null(kv_get(&kv, "gpu_instance_i"));
    assert_null(kv_get(&kv, "MODEL"));
    /* The list owns copies: changing argv does not change it. */
    argv[0] = "gpu_instance_id=1";
    assert_string_equal(kv_get(&kv, "gpu_instance_id"), "12345");
    kv_done(&kv);
    assert_int_equal(kv.n, 0);
    kv_done(&kv); /* twice is harmless */
    kv_done(NULL);

    assert_int_equal(kv_parse(&kv, 0, NULL, err, sizeof err), 0);
    assert_int_equal(kv.n, 0);
    assert_null(kv_get(&kv, "x"));
    kv_done(&kv);
}

static void kv_bad(const char *arg, const char *want_in_err)
{
    char *argv[] = {"ok=1", (char *)arg};
    kv_list kv;
    char err[256] = "";
    int rc = kv_parse(&kv, 2, argv, err, sizeof err);
    if (rc != DM_E_INVALID)
        fail_msg("kv_parse(\"%s\") returned %d, want DM_E_INVALID", arg, rc);
    if (kv.n != 0)
        fail_msg("kv_parse(\"%s\") left %d entries after failing", arg, kv.n);
    if (!strstr(err, want_in_err))
        fail_msg("kv_parse(\"%s\") error '%s' lacks '%s'", arg, err, want_in_err);
}

static void test_kv_invalid(void **state)
{
    (void)state;
    kv_bad("12345", "expected key=value");
    kv_bad("=5", "expected key=value");
    kv_bad("Model=x", "expected key=value");
    kv_bad("gpu-id=5", "expected key=value");
    kv_bad("a b=5", "expected key=value");
    kv_bad(" a=5", "expected key=value");
    kv_bad("--json", "expected key=value");
    kv_bad("k\xc3\xa9=1", "expected key=value");
    kv_bad("ok=2", "'ok' given twice");
    /* Keys are capped at 64 bytes. */
    char key[80];
    memset(key, 'k', 64);
    memcpy(key + 64, "=v", 3);
    char *argv[] = {key};
    kv_list kv;
    assert_int_equal(kv_parse(&kv, 1, argv, NULL, 0), 0); /* err may be NULL */
    kv_done(&kv);
    memset(key, 'k', 65);
    memcpy(key + 65, "=v", 3);
    assert_int_equal(kv_parse(&kv, 1, argv, NULL, 0), DM_E_INVALID);
}

static void test_kv_too_many(void **state)
{
    (void)state;
    char bufs[KV_MAX + 1][32];
    char *argv[KV_MAX + 1];
    for (int i = 0; i <= KV_MAX; i++) {
        snprintf(bufs[i], sizeof bufs[i], "k%d=%d", i, i);
        argv[i] = bufs[i];
    }
    kv_list kv;
    char err[256] = "";
    assert_int_equal(kv_parse(&kv, KV_MAX, argv, err, sizeof err), 0);
    assert_int_equal(kv.n, KV_MAX);
    assert_string_equal(kv_get(&kv, "k31"), "31");
    kv_done(&kv);
    assert_int_equal(kv_parse(&kv, KV_MAX + 1, argv, err, sizeof err), DM_E_INVALID);
    assert_int_equal(kv.n, 0);
    assert_non_null(strstr(err, "too many"));
}

static void test_kv_check_keys(void **state)
{
    (void)state;
    char *argv[] = {"gpu_instance_id=1", "model=m"};
    kv_list kv;
    char err[256] = "";
    assert_int_equal(kv_parse(&kv, 2, argv, err, sizeof err), 0);
    const char *const both[] = {"model", "gpu_instance_id", NULL};
    const char *const more[] = {"a", "model", "b", "gpu_instance_id", "c", NULL};
    const char *const one[] = {"gpu_instance_id", NULL};
    const char *const none[] = {NULL};
    assert_int_equal(kv_check_keys(&kv, both, err, sizeof err), 0);
    assert_int_equal(kv_check_keys(&kv, more, err, sizeof err), 0);
    assert_int_equal(kv_check_keys(&kv, one, err, sizeof err), DM_E_INVALID);
    assert_string_equal(err, "unknown argument 'model'");
    assert_int_equal(kv_check_keys(&kv, none, err, sizeof err), DM_E_INVALID);
    assert_string_equal(err, "unknown argument 'gpu_instance_id'");
    const char *const prefix[] = {"gpu_instance", "mode", NULL};
    assert_int_equal(kv_check_keys(&kv, prefix, err, sizeof err), DM_E_INVALID);
    kv_done(&kv);
    /* No arguments pass any list. */
    assert_int_equal(kv_parse(&kv, 0, NULL, err, sizeof err), 0);
    assert_int_equal(kv_check_keys(&kv, none, err, sizeof err), 0);
    kv_done(&kv);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_i64),         cmocka_unit_test(test_i64_bounds),
        cmocka_unit_test(test_i64_garbage), cmocka_unit_test(test_i64_overflow),
        cmocka_unit_test(test_double),      cmocka_unit_test(test_bool),
        cmocka_unit_test(test_host_port),   cmocka_unit_test(test_host_port_hostlen),
        cmocka_unit_test(test_kv_parse),    cmocka_unit_test(test_kv_invalid),
        cmocka_unit_test(test_kv_too_many), cmocka_unit_test(test_kv_check_keys),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

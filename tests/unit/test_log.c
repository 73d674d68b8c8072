/* Unit tests for the structured logger (src/util/log.h, LOG-I1). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "util/error.h"
#include "util/log.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void quote_is(const char *in, size_t len, const char *want)
{
    char buf[512];
    assert_true(len <= sizeof buf);
    memset(buf, 'Z', sizeof buf);
    const char *r = log_quote(buf, len, in);
    if (r != buf)
        fail_msg("log_quote did not return its buffer");
    if (strcmp(buf, want) != 0)
        fail_msg("log_quote(len %zu) gave [%s], want [%s]", len, buf, want);
    if (len < sizeof buf && buf[len] != 'Z')
        fail_msg("log_quote(len %zu) wrote past its buffer", len);
}

static void test_quote_plain(void **state)
{
    (void)state;
    quote_is("hello", 64, "\"hello\"");
    quote_is("", 64, "\"\"");
    quote_is(NULL, 64, "\"\"");
    quote_is("a b=c", 64, "\"a b=c\"");             /* spaces and '=' stay inside the quotes */
    quote_is("caf\xc3\xa9", 64, "\"caf\xc3\xa9\""); /* UTF-8 passes through */
}

static void test_quote_escapes(void **state)
{
    (void)state;
    quote_is("say \"hi\"", 64, "\"say \\\"hi\\\"\"");
    quote_is("C:\\dir", 64, "\"C:\\\\dir\"");
    quote_is("a\nb", 64, "\"a\\x0ab\"");
    quote_is("a\r\nlevel=error event=forged", 64, "\"a\\x0d\\x0alevel=error event=forged\"");
    quote_is("\t", 64, "\"\\x09\"");
    quote_is("\x01\x1f\x7f", 64, "\"\\x01\\x1f\\x7f\"");
    quote_is("\x1b[31m", 64, "\"\\x1b[31m\"");
    quote_is(" ~", 64, "\" ~\""); /* 0x20 and 0x7e are printable */
}

/* The quoted value can never end a line or close its own quotes early. */
static void test_quote_no_forgery(void **state)
{
    (void)state;
    char in[256], out[1200];
    for (int i = 1; i < 256; i++)
        in[i - 1] = (char)i;
    in[255] = '\0';
    log_quote(out, sizeof out, in);
    size_t n = strlen(out);
    assert_true(n >= 2);
    assert_int_equal(out[0], '"');
    assert_int_equal(out[n - 1], '"');
    for (size_t i = 1; i + 1 < n; i++) {
        unsigned char c = (unsigned char)out[i];
        assert_true(c >= 0x20 && c != 0x7f);
        if (c == '"' || c == '\\') { /* only ever escaped */
            assert_true(c == '\\');
            i++;
            assert_true(out[i] == '"' || out[i] == '\\' || out[i] == 'x');
        }
    }
}

static void test_quote_truncation(void **state)
{
    (void)state;
    /* Too small for even "": an empty string. */
    quote_is("abc", 1, "");
    quote_is("abc", 2, "");
    quote_is("abc", 3, "\"\"");
    quote_is("abc", 4, "\"a\"");
    quote_is("abc", 5, "\"ab\"");
    quote_is("abc", 6, "\"abc\"");
    /* Escapes are never cut in half. */
    quote_is("\"x", 4, "\"\"");
    quote_is("\"x", 5, "\"\\\"\"");
    quote_is("\\x", 4, "\"\"");
    quote_is("\\x", 5, "\"\\\\\"");
    quote_is("\n", 6, "\"\"");
    quote_is("\n", 7, "\"\\x0a\"");
    quote_is("a\nb", 7, "\"a\"");
    quote_is("a\nb", 8, "\"a\\x0a\"");
    /* len 0: nothing written at all. */
    char one = 'Z';
    log_quote(&one, 0, "abc");
    assert_int_equal(one, 'Z');
    /* A long input fills the buffer exactly and stays terminated. */
    char big[1000];
    memset(big, 'q', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    char out[16];
    log_quote(out, sizeof out, big);
    assert_int_equal(strlen(out), sizeof out - 1);
    assert_string_equal(out, "\"qqqqqqqqqqqqq\"");
}

static void test_level_parse(void **state)
{
    (void)state;
    static const char *const names[] = {"debug", "info", "warn", "error"};
    for (int i = 0; i < 4; i++) {
        log_level l = (log_level)-1;
        assert_int_equal(log_level_parse(names[i], &l), 0);
        assert_int_equal(l, i);
    }
    static const char *const bad[] = {"", "DEBUG", "warning", "err", "info ", "trace"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        log_level l = LOG_WARN;
        assert_int_equal(log_level_parse(bad[i], &l), DM_E_INVALID);
        assert_int_equal(l, LOG_WARN);
    }
}

/* Runs fn with stderr sent to a temporary file; returns what it wrote. */
static void capture_stderr(void (*fn)(void), char *out, size_t cap)
{
    char path[] = "/tmp/dumont-test-log.XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    unlink(path);
    fflush(stderr);
    int saved = dup(STDERR_FILENO);
    assert_true(saved >= 0);
    assert_int_equal(dup2(fd, STDERR_FILENO), STDERR_FILENO);
    fn();
    fflush(stderr);
    assert_int_equal(dup2(saved, STDERR_FILENO), STDERR_FILENO);
    close(saved);
    assert_int_equal(lseek(fd, 0, SEEK_SET), 0);
    ssize_t n = read(fd, out, cap - 1);
    assert_true(n >= 0);
    out[n] = '\0';
    close(fd);
}

static void write_some(void)
{
    char q[128];
    log_set_level(LOG_INFO);
    log_debug("test.hidden", "n=%d", 1);
    log_info("test.shown", "name=%s n=%d", log_quote(q, sizeof q, "evil\nlevel=error"), 2);
    log_warn("test.bare", "%s", "");
    log_set_level(LOG_ERROR);
    log_warn("test.hidden2", "n=%d", 3);
    log_error("test.err", "n=%d", 4);
    log_set_level(LOG_INFO);
}

static void test_write_format(void **state)
{
    (void)state;
    char out[4096];
    capture_stderr(write_some, out, sizeof out);
    assert_null(strstr(out, "hidden"));
    /* Exactly three lines: the injected newline did not make a fourth. */
    int lines = 0;
    for (const char *p = out; *p; p++)
        lines += *p == '\n';
    assert_int_equal(lines, 3);
    char *l1 = out, *l2 = strchr(l1, '\n') + 1, *l3 = strchr(l2, '\n') + 1;
    l2[-1] = l3[-1] = '\0';
    *strchr(l3, '\n') = '\0';
    /* ts=YYYY-MM-DDTHH:MM:SS.mmmZ level=... event=... */
    assert_int_equal(strncmp(l1, "ts=", 3), 0);
    assert_int_equal(strlen("ts=2026-11-28T12:00:00.123Z"), 27);
    assert_int_equal(l1[3 + 4], '-');
    assert_int_equal(l1[3 + 10], 'T');
    assert_int_equal(l1[3 + 23], 'Z');
    assert_string_equal(l1 + 27, " level=info event=test.shown name=\"evil\\x0alevel=error\" n=2");
    assert_string_equal(l2 + 27, " level=warn event=test.bare");
    assert_string_equal(l3 + 27, " level=error event=test.err n=4");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_quote_plain),      cmocka_unit_test(test_quote_escapes),
        cmocka_unit_test(test_quote_no_forgery), cmocka_unit_test(test_quote_truncation),
        cmocka_unit_test(test_level_parse),      cmocka_unit_test(test_write_format),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/* Unit tests for tokens and the token file (src/util/secret.h, SEC-I1 to SEC-I2). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "util/error.h"
#include "util/secret.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

static char tmpdir[PATH_MAX];
static char tokpath[PATH_MAX + 32];

static int setup(void **state)
{
    (void)state;
    const char *t = getenv("TMPDIR");
    snprintf(tmpdir, sizeof tmpdir, "%s/dumont-test-secret.XXXXXX", t && *t ? t : "/tmp");
    if (!mkdtemp(tmpdir))
        return -1;
    snprintf(tokpath, sizeof tokpath, "%s/token", tmpdir);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    unlink(tokpath);
    return rmdir(tmpdir) == 0 ? 0 : -1; /* fails if a temp file was left behind */
}

static void write_file(const char *path, const void *data, size_t n)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, data, n), (ssize_t)n);
    assert_int_equal(close(fd), 0);
}

static size_t read_file(const char *path, char *buf, size_t cap)
{
    int fd = open(path, O_RDONLY);
    assert_true(fd >= 0);
    ssize_t n = read(fd, buf, cap - 1);
    assert_true(n >= 0);
    buf[n] = '\0';
    close(fd);
    return (size_t)n;
}

static int is_lower_hex(const char *s)
{
    for (; *s; s++)
        if (!((*s >= '0' && *s <= '9') || (*s >= 'a' && *s <= 'f')))
            return 0;
    return 1;
}

static void test_random_hex(void **state)
{
    (void)state;
    char a[2 * SECRET_TOKEN_BYTES + 1], b[2 * SECRET_TOKEN_BYTES + 1];
    assert_int_equal(secret_random_hex(a, sizeof a, SECRET_TOKEN_BYTES), 0);
    assert_int_equal(strlen(a), 64);
    assert_true(is_lower_hex(a));
    assert_int_equal(secret_random_hex(b, sizeof b, SECRET_TOKEN_BYTES), 0);
    assert_string_not_equal(a, b); /* 2^-256 chance of a false failure */

    /* Over many draws every hex digit shows up (all 16 with near certainty). */
    int seen[16] = {0};
    for (int i = 0; i < 20; i++) {
        assert_int_equal(secret_random_hex(a, sizeof a, SECRET_TOKEN_BYTES), 0);
        for (const char *p = a; *p; p++)
            seen[*p <= '9' ? *p - '0' : *p - 'a' + 10]++;
    }
    for (int d = 0; d < 16; d++)
        assert_true(seen[d] > 0);

    char one[3];
    assert_int_equal(secret_random_hex(one, sizeof one, 1), 0);
    assert_int_equal(strlen(one), 2);
    assert_true(is_lower_hex(one));
    char zero[1] = {'x'};
    assert_int_equal(secret_random_hex(zero, sizeof zero, 0), 0);
    assert_string_equal(zero, "");
}

static void test_random_hex_bounds(void **state)
{
    (void)state;
    char buf[300];
    memset(buf, 'z', sizeof buf);
    /* outlen must hold 2*nbytes + 1: one byte short is refused, nothing written. */
    assert_int_equal(secret_random_hex(buf, 2 * 8, 8), DM_E_INVALID);
    assert_int_equal(buf[0], 'z');
    assert_int_equal(secret_random_hex(buf, 2 * 8 + 1, 8), 0);
    assert_int_equal(strlen(buf), 16);
    /* More random bytes than the internal cap is refused rather than overflowing. */
    assert_int_equal(secret_random_hex(buf, sizeof buf, 129), DM_E_INVALID);
    assert_int_equal(secret_random_hex(buf, sizeof buf, 128), 0);
    assert_int_equal(strlen(buf), 256);
    assert_true(is_lower_hex(buf));
}

static void test_equal(void **state)
{
    (void)state;
    assert_true(secret_equal("abc", "abc"));
    assert_true(secret_equal("", ""));
    assert_false(secret_equal("abc", "abd"));
    assert_false(secret_equal("abc", "bbc"));
    assert_false(secret_equal("abc", "ab")); /* prefix */
    assert_false(secret_equal("ab", "abc"));
    assert_false(secret_equal("abc", ""));
    assert_false(secret_equal("", "abc"));
    assert_false(secret_equal("abc", "ABC"));
    char t1[65], t2[65];
    assert_int_equal(secret_random_hex(t1, sizeof t1, 32), 0);
    memcpy(t2, t1, sizeof t1);
    assert_true(secret_equal(t1, t2));
    t2[63] ^= 1; /* last byte differs */
    assert_false(secret_equal(t1, t2));
    t2[63] ^= 1;
    t2[0] ^= 1; /* first byte differs */
    assert_false(secret_equal(t1, t2));
}

static void test_load_or_create(void **state)
{
    (void)state;
    char tok[SECRET_TOKEN_MAX + 1] = "", again[SECRET_TOKEN_MAX + 1] = "";
    int created = -1;
    assert_int_equal(secret_load_or_create(tokpath, tok, sizeof tok, &created), 0);
    assert_int_equal(created, 1);
    assert_int_equal(strlen(tok), 2 * SECRET_TOKEN_BYTES);
    assert_true(is_lower_hex(tok));

    struct stat st;
    assert_int_equal(stat(tokpath, &st), 0);
    assert_true(S_ISREG(st.st_mode));
    assert_int_equal(st.st_mode & 07777, 0600); /* SEC-I2 */

    char content[512];
    size_t n = read_file(tokpath, content, sizeof content);
    assert_int_equal(n, strlen(tok) + 1);
    assert_int_equal(content[n - 1], '\n');
    content[n - 1] = '\0';
    assert_string_equal(content, tok);

    /* Read back, not recreated (SEC-I2). */
    assert_int_equal(secret_load_or_create(tokpath, again, sizeof again, &created), 0);
    assert_int_equal(created, 0);
    assert_string_equal(again, tok);
    assert_int_equal(secret_read_token(tokpath, again, sizeof again), 0);
    assert_string_equal(again, tok);

    /* A too-small output buffer is refused, never truncated. */
    char small[16];
    assert_int_equal(secret_read_token(tokpath, small, sizeof small), DM_E_TOO_BIG);
    assert_int_equal(secret_load_or_create(tokpath, small, sizeof small, &created), DM_E_TOO_BIG);
}

/* An existing hand-written token is used as it is. */
static void test_existing_token_kept(void **state)
{
    (void)state;
    write_file(tokpath, "my-own_Token.123 \r\n\n", 20);
    char tok[SECRET_TOKEN_MAX + 1];
    int created = -1;
    assert_int_equal(secret_load_or_create(tokpath, tok, sizeof tok, &created), 0);
    assert_int_equal(created, 0);
    assert_string_equal(tok, "my-own_Token.123");
}

/* Empty or garbage token files are refused and never overwritten (SEC-I2). */
static void test_refuses_bad_file(void **state)
{
    (void)state;
    static const struct {
        const char *data;
        size_t len;
        int want;
    } cases[] = {
        {"", 0, DM_E_INVALID},
        {"\n", 1, DM_E_INVALID},
        {"   \r\n", 5, DM_E_INVALID},
        {"two words\n", 10, DM_E_INVALID},
        {"tab\there", 8, DM_E_INVALID},
        {"nul\0byte", 8, DM_E_INVALID},
        {"\x01\x02\x03", 3, DM_E_INVALID},
        {"caf\xc3\xa9", 5, DM_E_INVALID},
        {"del\x7f", 4, DM_E_INVALID},
        {"\nleading-newline", 16, DM_E_INVALID},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        write_file(tokpath, cases[i].data, cases[i].len);
        char tok[SECRET_TOKEN_MAX + 1] = "untouched";
        int created = -1;
        int rc = secret_load_or_create(tokpath, tok, sizeof tok, &created);
        if (rc != cases[i].want)
            fail_msg("case %zu: got %d, want %d", i, rc, cases[i].want);
        assert_int_equal(created, 0);
        assert_string_equal(tok, "untouched");
        assert_int_equal(secret_read_token(tokpath, tok, sizeof tok), cases[i].want);
        char content[64];
        size_t n = read_file(tokpath, content, sizeof content);
        assert_int_equal(n, cases[i].len);
        assert_memory_equal(content, cases[i].data, n); /* not overwritten */
    }
}

static void test_size_cap(void **state)
{
    (void)state;
    char big[SECRET_TOKEN_MAX + 8];
    memset(big, 'a', sizeof big);
    char tok[SECRET_TOKEN_MAX + 1];
    /* Exactly SECRET_TOKEN_MAX characters plus a newline: accepted. */
    big[SECRET_TOKEN_MAX] = '\n';
    write_file(tokpath, big, SECRET_TOKEN_MAX + 1);
    assert_int_equal(secret_read_token(tokpath, tok, sizeof tok), 0);
    assert_int_equal(strlen(tok), SECRET_TOKEN_MAX);
    /* Longer: refused. */
    memset(big, 'a', sizeof big);
    write_file(tokpath, big, sizeof big);
    assert_int_equal(secret_read_token(tokpath, tok, sizeof tok), DM_E_TOO_BIG);
    int created = -1;
    assert_int_equal(secret_load_or_create(tokpath, tok, sizeof tok, &created), DM_E_TOO_BIG);
    assert_int_equal(created, 0);
}

static void test_missing(void **state)
{
    (void)state;
    char tok[80];
    assert_int_equal(secret_read_token(tokpath, tok, sizeof tok), -ENOENT);
    char nodir[PATH_MAX + 64];
    snprintf(nodir, sizeof nodir, "%s/no/such/dir/token", tmpdir);
    int created = -1;
    assert_int_equal(secret_load_or_create(nodir, tok, sizeof tok, &created), -ENOENT);
    assert_int_equal(created, 0);
}

/* SEC-I2 under a race: many processes create the token at once; all of them end
 * up with the one token that is in the file, and exactly one created it. */
static void test_concurrent_create(void **state)
{
    (void)state;
    enum { PROCS = 8, ROUNDS = 10 };
    for (int round = 0; round < ROUNDS; round++) {
        int go[2], res[2];
        assert_int_equal(pipe(go), 0);
        assert_int_equal(pipe(res), 0);
        pid_t pids[PROCS];
        for (int i = 0; i < PROCS; i++) {
            pids[i] = fork();
            assert_true(pids[i] >= 0);
            if (pids[i] == 0) {
                close(go[1]);
                close(res[0]);
                char c;
                if (read(go[0], &c, 1) != 0) /* wait until the parent closes the pipe */
                    _exit(3);
                char tok[SECRET_TOKEN_MAX + 1], line[SECRET_TOKEN_MAX + 8];
                int created = 0;
                if (secret_load_or_create(tokpath, tok, sizeof tok, &created) != 0)
                    _exit(2);
                int len = snprintf(line, sizeof line, "%d%s\n", created, tok);
                _exit(write(res[1], line, (size_t)len) == len ? 0 : 4);
            }
        }
        close(go[0]);
        close(res[1]);
        close(go[1]); /* start them all */
        char all[PROCS * (SECRET_TOKEN_MAX + 8) + 1];
        size_t got = 0;
        ssize_t r;
        while ((r = read(res[0], all + got, sizeof all - 1 - got)) > 0)
            got += (size_t)r;
        all[got] = '\0';
        close(res[0]);
        for (int i = 0; i < PROCS; i++) {
            int st;
            assert_int_equal(waitpid(pids[i], &st, 0), pids[i]);
            assert_true(WIFEXITED(st));
            assert_int_equal(WEXITSTATUS(st), 0);
        }
        char file_tok[SECRET_TOKEN_MAX + 1];
        assert_int_equal(secret_read_token(tokpath, file_tok, sizeof file_tok), 0);
        int creators = 0, lines = 0;
        for (char *line = all, *nl; (nl = strchr(line, '\n')); line = nl + 1) {
            *nl = '\0';
            lines++;
            creators += line[0] == '1';
            if (strcmp(line + 1, file_tok) != 0)
                fail_msg("round %d: a process got %s but the file holds %s", round, line + 1,
                         file_tok);
        }
        assert_int_equal(lines, PROCS);
        assert_int_equal(creators, 1);
        assert_int_equal(unlink(tokpath), 0);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_random_hex),
        cmocka_unit_test(test_random_hex_bounds),
        cmocka_unit_test(test_equal),
        cmocka_unit_test_setup_teardown(test_load_or_create, setup, teardown),
        cmocka_unit_test_setup_teardown(test_existing_token_kept, setup, teardown),
        cmocka_unit_test_setup_teardown(test_refuses_bad_file, setup, teardown),
        cmocka_unit_test_setup_teardown(test_size_cap, setup, teardown),
        cmocka_unit_test_setup_teardown(test_missing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_concurrent_create, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/* Unit tests for the environment-backed configuration (src/util/config.h). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "util/config.h"
#include "util/error.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char *const vars[] = {
    "DUMONT_HOME",  "DUMONT_URL",    "DUMONT_TOKEN",     "DUMONT_DATABASE_URL",
    "DUMONT_STORE", "DUMONT_LISTEN", "DUMONT_SIM_SPEED", "DUMONT_LOG_LEVEL",
};

static char tmpdir[PATH_MAX];

/* Every test starts from an environment without any DUMONT_* variable and
 * with HOME pointing at a fresh temporary directory. */
static int setup(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof vars / sizeof vars[0]; i++)
        unsetenv(vars[i]);
    const char *t = getenv("TMPDIR");
    snprintf(tmpdir, sizeof tmpdir, "%s/dumont-test-config.XXXXXX", t && *t ? t : "/tmp");
    if (!mkdtemp(tmpdir))
        return -1;
    setenv("HOME", tmpdir, 1);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    char p[PATH_MAX + 32];
    snprintf(p, sizeof p, "%s/token", tmpdir);
    unlink(p);
    return rmdir(tmpdir) == 0 ? 0 : -1;
}

static void write_file(const char *path, const char *content)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    assert_true(fd >= 0);
    size_t n = strlen(content);
    assert_int_equal(write(fd, content, n), (ssize_t)n);
    assert_int_equal(close(fd), 0);
}

static void join(char *out, size_t len, const char *a, const char *b)
{
    assert_true(snprintf(out, len, "%s%s", a, b) < (int)len);
}

static void test_defaults(void **state)
{
    (void)state;
    dm_config cfg;
    char err[256] = "", want[PATH_MAX + 64];
    assert_int_equal(cfg_load(&cfg, err, sizeof err), 0);
    join(want, sizeof want, tmpdir, "/.dumont");
    assert_string_equal(cfg.home, want);
    join(want, sizeof want, tmpdir, "/.dumont/token");
    assert_string_equal(cfg.token_path, want);
    join(want, sizeof want, tmpdir, "/.dumont/dumont.db");
    assert_string_equal(cfg.database_url, want);
    char store[PATH_MAX + 64];
    join(store, sizeof store, "file://", tmpdir);
    join(want, sizeof want, store, "/.dumont/store");
    assert_string_equal(cfg.store, want);
    assert_string_equal(cfg.url, "http://127.0.0.1:8700");
    assert_string_equal(cfg.token, "");
    assert_string_equal(cfg.listen, "127.0.0.1:8700");
    assert_string_equal(cfg.listen, CFG_DEFAULT_LISTEN);
    assert_true(cfg.sim_speed == 200.0);
    assert_string_equal(cfg.log_level, "info");
}

/* Without HOME the state directory is relative to the working directory. */
static void test_defaults_no_home(void **state)
{
    (void)state;
    unsetenv("HOME");
    dm_config cfg;
    assert_int_equal(cfg_load(&cfg, NULL, 0), 0);
    assert_string_equal(cfg.home, "./.dumont");
    assert_string_equal(cfg.token_path, "./.dumont/token");
    setenv("HOME", "", 1); /* empty counts as unset */
    assert_int_equal(cfg_load(&cfg, NULL, 0), 0);
    assert_string_equal(cfg.home, "./.dumont");
    setenv("HOME", tmpdir, 1);
}

static void test_env_overrides(void **state)
{
    (void)state;
    setenv("DUMONT_HOME", "/srv/dumont", 1);
    setenv("DUMONT_URL", "https://dumont.example:9000", 1);
    setenv("DUMONT_TOKEN", "tok-from-env", 1);
    setenv("DUMONT_LISTEN", "[::1]:9999", 1);
    setenv("DUMONT_SIM_SPEED", "1000.5", 1);
    setenv("DUMONT_LOG_LEVEL", "debug", 1);
    dm_config cfg;
    char err[256] = "";
    assert_int_equal(cfg_load(&cfg, err, sizeof err), 0);
    assert_string_equal(cfg.home, "/srv/dumont");
    assert_string_equal(cfg.token_path, "/srv/dumont/token");
    assert_string_equal(cfg.database_url, "/srv/dumont/dumont.db");
    assert_string_equal(cfg.store, "file:///srv/dumont/store");
    assert_string_equal(cfg.url, "https://dumont.example:9000");
    assert_string_equal(cfg.token, "tok-from-env");
    assert_string_equal(cfg.listen, "[::1]:9999");
    assert_true(cfg.sim_speed == 1000.5);
    assert_string_equal(cfg.log_level, "debug");

    /* Explicit database and store survive a change of home; the token path follows it. */
    setenv("DUMONT_DATABASE_URL", "postgresql://u@db.example/dumont", 1);
    setenv("DUMONT_STORE", "s3://bucket/prefix", 1);
    assert_int_equal(cfg_load(&cfg, err, sizeof err), 0);
    assert_string_equal(cfg.database_url, "postgresql://u@db.example/dumont");
    assert_string_equal(cfg.store, "s3://bucket/prefix");
    assert_int_equal(cfg_set_home(&cfg, "/var/lib/dumont"), 0);
    assert_string_equal(cfg.home, "/var/lib/dumont");
    assert_string_equal(cfg.token_path, "/var/lib/dumont/token");
    assert_string_equal(cfg.database_url, "postgresql://u@db.example/dumont");
    assert_string_equal(cfg.store, "s3://bucket/prefix");

    /* Empty variables count as unset. */
    setenv("DUMONT_HOME", "", 1);
    setenv("DUMONT_URL", "", 1);
    setenv("DUMONT_DATABASE_URL", "", 1);
    assert_int_equal(cfg_load(&cfg, err, sizeof err), 0);
    assert_string_equal(cfg.url, "http://127.0.0.1:8700");
    char want[PATH_MAX + 64];
    join(want, sizeof want, tmpdir, "/.dumont/dumont.db");
    assert_string_equal(cfg.database_url, want);
}

static void test_set_home(void **state)
{
    (void)state;
    dm_config cfg;
    assert_int_equal(cfg_load(&cfg, NULL, 0), 0);
    assert_int_equal(cfg_set_home(&cfg, "/x/y"), 0);
    assert_string_equal(cfg.home, "/x/y");
    assert_string_equal(cfg.database_url, "/x/y/dumont.db");
    assert_string_equal(cfg.store, "file:///x/y/store");
    assert_string_equal(cfg.token_path, "/x/y/token");
    /* Setting home to itself (e.g. re-deriving) is fine. */
    assert_int_equal(cfg_set_home(&cfg, cfg.home), 0);
    assert_string_equal(cfg.home, "/x/y");
    assert_string_equal(cfg.token_path, "/x/y/token");
    /* Refused homes leave the configuration as it was. */
    dm_config before;
    memcpy(&before, &cfg, sizeof cfg);
    assert_int_equal(cfg_set_home(&cfg, ""), DM_E_INVALID);
    assert_int_equal(cfg_set_home(&cfg, NULL), DM_E_INVALID);
    assert_memory_equal(&before, &cfg, sizeof cfg);
}

static void test_url_trailing_slash(void **state)
{
    (void)state;
    static const struct {
        const char *in, *want;
    } cases[] = {
        {"http://h:1/", "http://h:1"},
        {"http://h:1///", "http://h:1"},
        {"http://h:1/base/", "http://h:1/base"},
        {"http://h:1/base", "http://h:1/base"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        setenv("DUMONT_URL", cases[i].in, 1);
        dm_config cfg;
        assert_int_equal(cfg_load(&cfg, NULL, 0), 0);
        assert_string_equal(cfg.url, cases[i].want);
    }
}

static void test_bad_sim_speed(void **state)
{
    (void)state;
    static const char *const bad[] = {"fast", "0",  "-1", "0.0009", "1e10", "nan",
                                      "inf",  " 5", "5 ", "5x",     "0x10"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        setenv("DUMONT_SIM_SPEED", bad[i], 1);
        dm_config cfg;
        char err[256] = "";
        if (cfg_load(&cfg, err, sizeof err) != DM_E_INVALID)
            fail_msg("DUMONT_SIM_SPEED=\"%s\" accepted", bad[i]);
        assert_non_null(strstr(err, "DUMONT_SIM_SPEED"));
    }
    static const struct {
        const char *in;
        double want;
    } good[] = {{"0.001", 0.001}, {"1", 1.0}, {"1e9", 1e9}, {"2.5", 2.5}};
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        setenv("DUMONT_SIM_SPEED", good[i].in, 1);
        dm_config cfg;
        assert_int_equal(cfg_load(&cfg, NULL, 0), 0);
        assert_true(cfg.sim_speed == good[i].want);
    }
}

static void test_too_long(void **state)
{
    (void)state;
    char big[CFG_URL_MAX + 16];
    memset(big, 'a', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    memcpy(big, "http://", 7);
    setenv("DUMONT_URL", big, 1);
    dm_config cfg;
    char err[256] = "";
    assert_int_equal(cfg_load(&cfg, err, sizeof err), DM_E_INVALID);
    assert_non_null(strstr(err, "DUMONT_URL"));
    unsetenv("DUMONT_URL");

    /* A home whose derived paths would not fit is refused, never truncated
     * (a truncated database path would name another file). */
    char home[CFG_URL_MAX + 16];
    memset(home, 'h', sizeof home - 1);
    home[0] = '/';
    home[sizeof home - 1] = '\0';
    setenv("DUMONT_HOME", home, 1);
    assert_int_equal(cfg_load(&cfg, err, sizeof err), DM_E_INVALID);
    assert_non_null(strstr(err, "DUMONT_HOME"));
    unsetenv("DUMONT_HOME");

    assert_int_equal(cfg_load(&cfg, NULL, 0), 0);
    dm_config before;
    memcpy(&before, &cfg, sizeof cfg);
    assert_int_equal(cfg_set_home(&cfg, home), DM_E_INVALID);
    assert_memory_equal(&before, &cfg, sizeof cfg);

    /* The longest home that fits: every derived path is complete. */
    size_t fit = CFG_URL_MAX - 1 - strlen("file:///store");
    home[fit] = '\0';
    assert_int_equal(cfg_set_home(&cfg, home), 0);
    assert_int_equal(strlen(cfg.store), CFG_URL_MAX - 1);
    assert_int_equal(strncmp(cfg.store + strlen(cfg.store) - 6, "/store", 6), 0);
    assert_int_equal(strncmp(cfg.database_url + strlen(cfg.database_url) - 10, "/dumont.db", 10),
                     0);
    home[fit] = 'h';
    home[fit + 1] = '\0';
    assert_int_equal(cfg_set_home(&cfg, home), DM_E_INVALID);
}

static void test_client_token_env(void **state)
{
    (void)state;
    setenv("DUMONT_HOME", tmpdir, 1);
    setenv("DUMONT_TOKEN", "env-token", 1);
    char path[PATH_MAX + 32];
    snprintf(path, sizeof path, "%s/token", tmpdir);
    write_file(path, "file-token\n"); /* the environment wins */
    dm_config cfg;
    assert_int_equal(cfg_load(&cfg, NULL, 0), 0);
    char tok[256] = "", err[256] = "";
    assert_int_equal(cfg_client_token(&cfg, tok, sizeof tok, err, sizeof err), 0);
    assert_string_equal(tok, "env-token");
    char small[5];
    assert_int_equal(cfg_client_token(&cfg, small, sizeof small, err, sizeof err), DM_E_INVALID);
    assert_non_null(strstr(err, "DUMONT_TOKEN"));
    assert_null(strstr(err, "env-token")); /* never echo a secret */
}

static void test_client_token_file(void **state)
{
    (void)state;
    setenv("DUMONT_HOME", tmpdir, 1);
    char path[PATH_MAX + 32];
    snprintf(path, sizeof path, "%s/token", tmpdir);
    write_file(path, "0123abcd\r\n");
    dm_config cfg;
    assert_int_equal(cfg_load(&cfg, NULL, 0), 0);
    assert_string_equal(cfg.token_path, path);
    char tok[256] = "", err[256] = "";
    assert_int_equal(cfg_client_token(&cfg, tok, sizeof tok, err, sizeof err), 0);
    assert_string_equal(tok, "0123abcd");

    write_file(path, "not a token\n");
    assert_int_equal(cfg_client_token(&cfg, tok, sizeof tok, err, sizeof err), DM_E_INVALID);
    assert_non_null(strstr(err, path));
    assert_null(strstr(err, "not a token"));

    write_file(path, "");
    assert_int_equal(cfg_client_token(&cfg, tok, sizeof tok, err, sizeof err), DM_E_INVALID);
}

static void test_client_token_missing(void **state)
{
    (void)state;
    setenv("DUMONT_HOME", tmpdir, 1);
    dm_config cfg;
    assert_int_equal(cfg_load(&cfg, NULL, 0), 0);
    char tok[256] = "untouched", err[512] = "";
    assert_int_equal(cfg_client_token(&cfg, tok, sizeof tok, err, sizeof err), DM_E_UNAUTHORIZED);
    assert_non_null(strstr(err, "DUMONT_TOKEN"));
    assert_non_null(strstr(err, cfg.token_path));
    assert_string_equal(tok, "untouched");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_defaults, setup, teardown),
        cmocka_unit_test_setup_teardown(test_defaults_no_home, setup, teardown),
        cmocka_unit_test_setup_teardown(test_env_overrides, setup, teardown),
        cmocka_unit_test_setup_teardown(test_set_home, setup, teardown),
        cmocka_unit_test_setup_teardown(test_url_trailing_slash, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_sim_speed, setup, teardown),
        cmocka_unit_test_setup_teardown(test_too_long, setup, teardown),
        cmocka_unit_test_setup_teardown(test_client_token_env, setup, teardown),
        cmocka_unit_test_setup_teardown(test_client_token_file, setup, teardown),
        cmocka_unit_test_setup_teardown(test_client_token_missing, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

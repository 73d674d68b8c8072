/* Unit tests for the agent's workload supervisor (src/agent/workload.h,
 * AG-S1 to AG-S4) with real processes (sh, sleep). Waits poll with deadlines. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "agent/workload.h"
#include "util/clock.h"
#include "util/error.h"

#include <dirent.h>
#include <sys/stat.h>
#include <unistd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Words: blanks separate, quotes group, no shell. */
static void test_split(void **state)
{
    (void)state;
    wl_sup w;
    assert_int_equal(wl_init(&w, "  sh -c 'exit 3'  \"a b\"c ", 0, 0, NULL, 0), 0);
    assert_string_equal(w.argv[0], "sh");
    assert_string_equal(w.argv[1], "-c");
    assert_string_equal(w.argv[2], "exit 3");
    assert_string_equal(w.argv[3], "a bc");
    assert_null(w.argv[4]);
    assert_int_equal(w.crash_limit, 5); /* defaults */
    assert_int_equal(w.crash_window_ms, 60000);
    assert_int_equal(wl_init(&w, "sh -c 'oops", 0, 0, NULL, 0), DM_E_INVALID);
    assert_int_equal(wl_init(&w, "   ", 0, 0, NULL, 0), DM_E_INVALID);
    char many[WL_ARGV_MAX * 2 + 8];
    memset(many, 0, sizeof many);
    for (int i = 0; i <= WL_ARGV_MAX; i++) /* WL_ARGV_MAX + 1 words */
        memcpy(many + 2 * i, "a ", 2);
    assert_int_equal(wl_init(&w, many, 0, 0, NULL, 0), DM_E_INVALID);
    char big[WL_CMD_MAX + 1];
    memset(big, 'x', sizeof big - 1);
    big[WL_CMD_MAX] = '\0';
    assert_int_equal(wl_init(&w, big, 0, 0, NULL, 0), DM_E_TOO_BIG);
}

static hb_workload run_until(wl_sup *w, hb_workload want, int64_t max_ms)
{
    for (int64_t end = clock_mono_ms() + max_ms; clock_mono_ms() < end;) {
        wl_tick(w, clock_mono_ms());
        if (w->state == want)
            break;
        clock_sleep_ms(10, NULL);
    }
    return w->state;
}

/* AG-S2, AG-S3: crashes are restarted with backoff, then crashlooping. */
static void test_crashloop(void **state)
{
    (void)state;
    wl_sup w;
    assert_int_equal(wl_init(&w, "sh -c 'exit 3'", 3, 60000, NULL, 0), 0);
    assert_int_equal(wl_start(&w, clock_mono_ms(), NULL, 0), 0);
    assert_int_equal(run_until(&w, HB_WL_CRASHLOOPING, 20000), HB_WL_CRASHLOOPING);
    assert_int_equal(w.restarts, 2);
    assert_int_equal(w.backoff_ms, 4 * WL_BACKOFF_MS); /* doubled twice */
    for (int i = 0; i < 20; i++)                       /* no more restarts */
        wl_tick(&w, clock_mono_ms() + 100000);
    assert_int_equal(w.restarts, 2);
    assert_int_equal(w.pid, 0);
}

/* AG-S1: exit 0 is exited, not restarted; a missing program is a crash. */
static void test_clean_exit_and_missing(void **state)
{
    (void)state;
    wl_sup w;
    assert_int_equal(wl_init(&w, "true", 3, 60000, NULL, 0), 0);
    assert_int_equal(wl_start(&w, clock_mono_ms(), NULL, 0), 0);
    assert_int_equal(run_until(&w, HB_WL_EXITED, 10000), HB_WL_EXITED);
    assert_int_equal(w.restarts, 0);
    assert_int_equal(wl_init(&w, "/nonexistent/dumont-test-binary", 2, 60000, NULL, 0), 0);
    int64_t t0 = clock_mono_ms();
    assert_int_not_equal(wl_start(&w, t0, NULL, 0), 0);
    assert_int_equal(w.state, HB_WL_RESTARTING);
    assert_int_equal(w.started_ms, t0); /* a run that never was counts from its try */
    w.next_start_ms = 0;
    assert_int_equal(run_until(&w, HB_WL_CRASHLOOPING, 10000), HB_WL_CRASHLOOPING);
}

/* Live (not zombie) processes in process group pgid, from /proc. */
static int live_in_group(pid_t pgid)
{
    int n = 0;
    DIR *d = opendir("/proc");
    struct dirent *e;
    while (d && (e = readdir(d)) != NULL) {
        char path[300], buf[512];
        snprintf(path, sizeof path, "/proc/%s/stat", e->d_name);
        FILE *f = fopen(path, "r");
        if (!f)
            continue;
        size_t len = fread(buf, 1, sizeof buf - 1, f);
        fclose(f);
        buf[len] = '\0';
        char *p = strrchr(buf, ')'), st = 0;
        long ppid = 0, pgrp = 0;
        if (p && sscanf(p + 1, " %c %ld %ld", &st, &ppid, &pgrp) == 3 && pgrp == pgid && st != 'Z')
            n++;
    }
    if (d)
        closedir(d);
    return n;
}

/* AG-S4: stop ends the whole group, also what ignores SIGTERM. */
static void test_stop(void **state)
{
    (void)state;
    wl_sup w;
    assert_int_equal(wl_init(&w, "sh -c 'trap \"\" TERM; sleep 60 & wait'", 3, 60000, NULL, 0), 0);
    assert_int_equal(wl_start(&w, clock_mono_ms(), NULL, 0), 0);
    pid_t pgid = w.pid;
    clock_sleep_ms(200, NULL);
    int64_t t = clock_mono_ms();
    wl_stop(&w, 300);
    assert_true(clock_mono_ms() - t < 5000);
    assert_int_equal(w.pid, 0);
    assert_int_equal(w.state, HB_WL_EXITED);
    int left = 1;
    for (int64_t end = clock_mono_ms() + 5000; left && clock_mono_ms() < end;)
        if ((left = live_in_group(pgid)) != 0)
            clock_sleep_ms(20, NULL);
    assert_int_equal(left, 0); /* nothing alive left in the group */
}

/* AG-S5: the allowlist, by name and prefix, plus the extra names. */
static void test_env_allowlist(void **state)
{
    (void)state;
    static const char *const yes[] = {"PATH=/bin",
                                      "HOME=/root",
                                      "PORT=8",
                                      "OLLAMA_HOST=x:1",
                                      "OLLAMA_MODELS=/m",
                                      "LC_ALL=C",
                                      "LANG=C.UTF-8",
                                      "DUMONT_WORKSPACE=/w",
                                      "DUMONT_HOME=/h",
                                      "CUDA_VISIBLE_DEVICES=0",
                                      NULL};
    static const char *const no[] = {"DUMONT_TOKEN=t",
                                     "DUMONT_URL=u",
                                     "DUMONT_STORE=s3://b",
                                     "AWS_SECRET_ACCESS_KEY=k",
                                     "AWS_ACCESS_KEY_ID=i",
                                     "B2_APPLICATION_KEY=k",
                                     "B2_KEY_ID=i",
                                     "VAST_API_KEY=k",
                                     "GOOGLE_APPLICATION_CREDENTIALS=/g.json",
                                     "PATHX=1",
                                     "PAT=1",
                                     "=x",
                                     "noequals",
                                     "DUMONT_CA_FILE=/ca",
                                     NULL};
    for (const char *const *p = yes; *p; p++)
        if (!wl_env_allowed(*p, NULL))
            fail_msg("%s refused", *p);
    for (const char *const *p = no; *p; p++)
        if (wl_env_allowed(*p, NULL))
            fail_msg("%s allowed", *p);
    assert_true(wl_env_allowed("HF_TOKEN=x", "FOO,HF_TOKEN"));
    assert_true(wl_env_allowed("FOO=x", "FOO,HF_TOKEN"));
    assert_false(wl_env_allowed("FO=x", "FOO,HF_TOKEN"));
    assert_false(wl_env_allowed("FOOO=x", "FOO,HF_TOKEN"));
    assert_false(wl_env_allowed(NULL, NULL));
    /* STORE-S7: a store key never passes, even named in DUMONT_WORKLOAD_ENV */
    const char *keys = "AWS_SECRET_ACCESS_KEY,B2_APPLICATION_KEY,AWS_SESSION_TOKEN,B2_KEY_ID";
    assert_false(wl_env_allowed("AWS_SECRET_ACCESS_KEY=k", keys));
    assert_false(wl_env_allowed("B2_APPLICATION_KEY=k", keys));
    assert_false(wl_env_allowed("AWS_SESSION_TOKEN=k", keys));
    assert_false(wl_env_allowed("B2_KEY_ID=k", keys));
}

static void wait_file(const char *path)
{
    for (int i = 0; i < 500; i++) {
        FILE *f = fopen(path, "r");
        if (f) {
            int c = fgetc(f);
            fclose(f);
            if (c != EOF)
                return;
        }
        clock_sleep_ms(10, NULL);
    }
    fail_msg("%s never appeared", path);
}

/* AG-S5: what a real workload sees. */
static void test_env_of_workload(void **state)
{
    (void)state;
    char dir[] = "/tmp/dumont-wlenv-XXXXXX", path[64], buf[8192] = "";
    assert_non_null(mkdtemp(dir));
    setenv("AWS_SECRET_ACCESS_KEY", "canary-aws", 1);
    setenv("DUMONT_TOKEN", "canary-token", 1);
    setenv("OLLAMA_HOST", "127.0.0.1:1", 1);
    wl_sup w;
    assert_int_equal(wl_init(&w, "sh -c 'env >env.txt; exec sleep 5'", 0, 0, NULL, 0), 0);
    w.cwd = dir;
    assert_int_equal(wl_start(&w, clock_mono_ms(), NULL, 0), 0);
    snprintf(path, sizeof path, "%s/env.txt", dir);
    wait_file(path);
    clock_sleep_ms(50, NULL);
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    buf[n] = '\0';
    fclose(f);
    wl_stop(&w, 1000);
    assert_null(strstr(buf, "canary"));
    assert_null(strstr(buf, "DUMONT_TOKEN"));
    assert_non_null(strstr(buf, "OLLAMA_HOST=127.0.0.1:1\n"));
    assert_non_null(strstr(buf, "PATH="));
    unlink(path);
    rmdir(dir);
    unsetenv("AWS_SECRET_ACCESS_KEY");
    unsetenv("DUMONT_TOKEN");
}

/* AG-S6: who the workload runs as. */
static void test_user(void **state)
{
    (void)state;
    int drop = 7;
    uid_t uid = 0;
    gid_t gid = 0;
    char err[256];
    assert_int_equal(wl_user_resolve("root", "/tmp", &drop, &uid, &gid, err, sizeof err), 0);
    assert_int_equal(drop, 0);
    if (geteuid() != 0) { /* not root: nothing to drop, whatever is asked */
        assert_int_equal(wl_user_resolve("nobody", "/tmp", &drop, &uid, &gid, err, sizeof err), 0);
        assert_int_equal(drop, 0);
        return;
    }
    assert_int_equal(wl_user_resolve(NULL, "/tmp", &drop, &uid, &gid, err, sizeof err), 0);
    assert_int_equal(drop, 1);
    assert_true(uid != 0);
    assert_int_equal(wl_user_resolve("4242:4343", "/tmp", &drop, &uid, &gid, err, sizeof err), 0);
    assert_int_equal(drop, 1);
    assert_int_equal(uid, 4242);
    assert_int_equal(gid, 4343);
    assert_int_equal(
        wl_user_resolve("no-such-user-here", "/tmp", &drop, &uid, &gid, err, sizeof err),
        DM_E_INVALID);
    /* the default user cannot enter a private directory: the caller is told */
    char priv[] = "/tmp/dumont-wlpriv-XXXXXX", ws[64];
    assert_non_null(mkdtemp(priv)); /* 0700 */
    snprintf(ws, sizeof ws, "%s/ws", priv);
    assert_int_equal(mkdir(ws, 0755), 0);
    assert_int_equal(wl_user_resolve(NULL, ws, &drop, &uid, &gid, err, sizeof err), 1);
    assert_int_equal(drop, 0);
    /* a real run as 4242: the workload's own uid, in a directory it owns */
    char dir[] = "/tmp/dumont-wluid-XXXXXX", path[64], buf[64] = "";
    assert_non_null(mkdtemp(dir));
    chmod(dir, 0755);
    wl_sup w;
    assert_int_equal(wl_init(&w, "sh -c 'id -u >uid.txt; exec sleep 5'", 0, 0, NULL, 0), 0);
    w.cwd = dir;
    w.drop = 1;
    w.uid = 4242;
    w.gid = 4343;
    assert_int_equal(wl_start(&w, clock_mono_ms(), NULL, 0), 0);
    snprintf(path, sizeof path, "%s/uid.txt", dir);
    wait_file(path);
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    assert_non_null(fgets(buf, sizeof buf, f));
    fclose(f);
    wl_stop(&w, 1000);
    assert_string_equal(buf, "4242\n");
    struct stat st;
    assert_int_equal(stat(dir, &st), 0);
    assert_int_equal(st.st_uid, 4242); /* chowned before the start */
    unlink(path);
    rmdir(dir);
    rmdir(ws);
    rmdir(priv);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_split),
        cmocka_unit_test(test_crashloop),
        cmocka_unit_test(test_clean_exit_and_missing),
        cmocka_unit_test(test_stop),
        cmocka_unit_test(test_env_allowlist),
        cmocka_unit_test(test_env_of_workload),
        cmocka_unit_test(test_user),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

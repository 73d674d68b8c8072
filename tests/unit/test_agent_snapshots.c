/* Agent pieces of issue 6: the change check of scheduled snapshots
 * (src/agent/snapshots.h AG-N2), the ollama probe's address from OLLAMA_HOST
 * (probe.h prb_spec_resolve) and the local provider's preemption notice in a
 * file (preempt.h, PRE_LOCAL). The scheduled snapshots themselves, against a
 * real server, are in tests/integration/test_agent_snapshots.sh. */
#define _GNU_SOURCE /* nftw FTW_DEPTH */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "agent/preempt.h"
#include "agent/probe.h"
#include "agent/snapshots.h"
#include "util/clock.h"
#include "util/error.h"

#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

static char g_dir[64], g_err[512];

static void put(const char *rel, const char *text)
{
    char p[256];
    snprintf(p, sizeof p, "%s/%s", g_dir, rel);
    FILE *f = fopen(p, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static void fp(uint8_t out[32])
{
    assert_int_equal(asn_fingerprint(g_dir, out, g_err, sizeof g_err), 0);
}

/* AG-N2: unchanged is equal; content (size or mtime), a new file, a rename and
 * a mode change are all seen. */
static void test_fingerprint(void **state)
{
    (void)state;
    uint8_t a[32], b[32];
    char p[256];
    put("one", "hello");
    snprintf(p, sizeof p, "%s/sub", g_dir);
    assert_int_equal(mkdir(p, 0755), 0);
    put("sub/two", "world");
    fp(a);
    fp(b);
    assert_memory_equal(a, b, 32);
    put("one", "hello!"); /* size */
    fp(b);
    assert_memory_not_equal(a, b, 32);
    fp(a);
    snprintf(p, sizeof p, "%s/one", g_dir); /* same size, older mtime */
    struct timeval tv[2] = {{1000000, 0}, {1000000, 0}};
    assert_int_equal(utimes(p, tv), 0);
    fp(b);
    assert_memory_not_equal(a, b, 32);
    fp(a);
    assert_int_equal(chmod(p, 0600), 0);
    fp(b);
    assert_memory_not_equal(a, b, 32);
    fp(a);
    char q[256];
    snprintf(q, sizeof q, "%s/sub/one", g_dir);
    assert_int_equal(rename(p, q), 0);
    fp(b);
    assert_memory_not_equal(a, b, 32);
    assert_int_not_equal(asn_fingerprint("/nonexistent/dir", a, g_err, sizeof g_err), 0);
}

static void resolve(const char *spec, const char *host, const char *want)
{
    char out[1100];
    assert_int_equal(prb_spec_resolve(spec, host, out, sizeof out), 0);
    assert_string_equal(out, want);
}

static void test_ollama_host(void **state)
{
    (void)state;
    resolve("ollama:tiny", NULL, "ollama:tiny");
    resolve("ollama:tiny", "", "ollama:tiny");
    resolve("ollama:tiny", "127.0.0.1:5000", "ollama:tiny@http://127.0.0.1:5000");
    resolve("ollama:tiny", "http://10.0.0.2:7/", "ollama:tiny@http://10.0.0.2:7");
    resolve("ollama:tiny", "localhost", "ollama:tiny@http://localhost:11434");
    resolve("ollama:tiny", "[::1]", "ollama:tiny@http://[::1]:11434");
    resolve("ollama:tiny", "[::1]:99", "ollama:tiny@http://[::1]:99");
    resolve("ollama:qwen2.5:0.5b", "127.0.0.1:5000", "ollama:qwen2.5:0.5b@http://127.0.0.1:5000");
    resolve("ollama:tiny@http://h:1", "127.0.0.1:5000", "ollama:tiny@http://h:1"); /* @URL wins */
    resolve("http://x/y", "127.0.0.1:5000", "http://x/y");
    char out[64];
    assert_int_equal(prb_spec_resolve("ollama:tiny", "a b", out, sizeof out), DM_E_INVALID);
    assert_int_equal(prb_spec_resolve("ollama:tiny", "u@h", out, sizeof out), DM_E_INVALID);
    assert_int_equal(prb_spec_resolve("bogus", NULL, out, sizeof out), DM_E_INVALID);
    assert_int_equal(prb_spec_resolve("ollama:tiny", "h:1", out, 10), DM_E_TOO_BIG);
}

/* PRE_LOCAL: FALSE is no notice, TRUE is one; a missing file is none. */
static void test_local_notice(void **state)
{
    (void)state;
    char url[128], p[256];
    pre_cloud c;
    assert_int_equal(pre_cloud_parse("local", &c), 0);
    assert_int_equal(c, PRE_LOCAL);
    assert_string_equal(pre_cloud_name(PRE_LOCAL), "local");
    pre_watch *w = NULL;
    assert_int_not_equal(pre_start(PRE_LOCAL, NULL, 20, &w, g_err, sizeof g_err), 0);
    snprintf(p, sizeof p, "%s/md/computeMetadata/v1/instance", g_dir);
    const char *parts[] = {"md", "md/computeMetadata", "md/computeMetadata/v1",
                           "md/computeMetadata/v1/instance"};
    for (int i = 0; i < 4; i++) {
        snprintf(p, sizeof p, "%s/%s", g_dir, parts[i]);
        assert_int_equal(mkdir(p, 0755), 0);
    }
    snprintf(url, sizeof url, "file://%s/md", g_dir);
    assert_int_equal(pre_start(PRE_LOCAL, url, 20, &w, g_err, sizeof g_err), 0);
    put("md/computeMetadata/v1/instance/preempted", "FALSE");
    clock_sleep_ms(100, NULL);
    assert_int_equal(pre_noticed(w), 0);
    put("md/computeMetadata/v1/instance/preempted", "TRUE");
    for (int64_t end = clock_mono_ms() + 10000; !pre_noticed(w) && clock_mono_ms() < end;)
        clock_sleep_ms(10, NULL);
    assert_int_equal(pre_noticed(w), 1);
    put("md/computeMetadata/v1/instance/preempted", "FALSE"); /* AG-E1: sticky */
    clock_sleep_ms(60, NULL);
    assert_int_equal(pre_noticed(w), 1);
    pre_stop(w);
}

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *f)
{
    (void)st, (void)flag, (void)f;
    remove(path);
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fingerprint),
        cmocka_unit_test(test_ollama_host),
        cmocka_unit_test(test_local_notice),
    };
    snprintf(g_dir, sizeof g_dir, "/tmp/test_agent_snap.XXXXXX");
    if (!mkdtemp(g_dir))
        return 1;
    int failed = cmocka_run_group_tests_name("agent_snapshots", tests, NULL, NULL);
    nftw(g_dir, rm_one, 16, FTW_DEPTH | FTW_PHYS); /* leave no files behind */
    return failed;
}

/* Unit tests for the provider interface and the local provider
 * (src/provider/provider.h PROV-PV1 to PROV-PV6, local.h PROV-LP1 to PROV-LP5, market.h PROV-MK1 to PROV-MK3).
 * Instances run a fake agent: a shell script that records its argv and
 * environment, starts a grandchild in its own process group (same session),
 * and notes SIGUSR1. Waits poll with deadlines. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "provider/market.h"
#include "provider/provider.h"
#include "snapshot/snap_internal.h"
#include "snapshot/snapshot.h"
#include "store/store.h"
#include "util/clock.h"
#include "util/error.h"
#include "util/fsutil.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

typedef struct {
    char dir[256];   /* temp root */
    char home[512];  /* DUMONT_HOME */
    char agent[512]; /* the fake agent */
    dm_provider *p;
    pid_t bystander; /* test_destroy's, killed by teardown */
    char err[1024];
} fixture;

static const char fake_agent[] = "#!/bin/sh\n"
                                 "printf '%s\\n' \"$@\" > argv.txt\n"
                                 "env > env.txt\n"
                                 "trap 'echo started > started.txt' USR1\n"
                                 "perl -e 'setpgrp(0, 0); sleep 1000' &\n"
                                 "echo $! > child.pid\n"
                                 "perl -MPOSIX -e 'setsid(); sleep 1000' &\n"
                                 "echo $! > escaped.pid\n"
                                 "env -i perl -e 'sleep 1000' &\n"
                                 "echo $! > scrubbed.pid\n"
                                 "while :; do sleep 0.02; done\n";

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    snprintf(f->dir, sizeof f->dir, "/tmp/dumont-prov-XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    snprintf(f->home, sizeof f->home, "%s/home", f->dir);
    snprintf(f->agent, sizeof f->agent, "%s/fake-agent.sh", f->dir);
    assert_int_equal(fs_write_atomic(f->agent, fake_agent, strlen(fake_agent), 0755), 0);
    prov_config cfg = {.home = f->home, .dumont_bin = f->agent};
    assert_int_equal(provider_open("local", &cfg, &f->p, f->err, sizeof f->err), 0);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    char err[256];
    if (f->bystander > 0) {
        kill(f->bystander, SIGKILL);
        waitpid(f->bystander, NULL, 0);
    }
    for (int64_t id = 1; id <= 20; id++)
        provider_destroy(f->p, id, err, sizeof err);
    provider_close(f->p);
    if (snap_rm_tree(f->dir) != 0)
        fprintf(stderr, "cannot remove %s\n", f->dir);
    free(f);
    return 0;
}

static int wait_file(const char *path, int64_t ms)
{
    struct stat st;
    for (int64_t end = clock_mono_ms() + ms; clock_mono_ms() < end; clock_sleep_ms(10, NULL))
        if (stat(path, &st) == 0 && st.st_size > 0)
            return 1;
    return 0;
}

static long read_text(const char *path, char *buf, size_t cap)
{
    long n = fs_read_small(path, buf, cap);
    if (n < 0)
        buf[0] = '\0';
    return n;
}

/* Alive = exists and not a zombie. */
static int pid_alive(int pid)
{
    char path[64], buf[512];
    snprintf(path, sizeof path, "/proc/%d/stat", pid);
    if (fs_read_small(path, buf, sizeof buf) <= 0)
        return 0;
    char *p = strrchr(buf, ')');
    return p && p[1] == ' ' && p[2] != 'Z' && p[2] != 'X';
}

static prov_state state_of(fixture *f, int64_t id)
{
    prov_state st = PROV_ABSENT;
    assert_int_equal(provider_status(f->p, id, &st, f->err, sizeof f->err), 0);
    return st;
}

static prov_state wait_state(fixture *f, int64_t id, prov_state want, int64_t ms)
{
    prov_state st = state_of(f, id);
    for (int64_t end = clock_mono_ms() + ms; st != want && clock_mono_ms() < end;) {
        clock_sleep_ms(10, NULL);
        st = state_of(f, id);
    }
    return st;
}

static prov_offer offer_a(void)
{
    prov_offer o = {.id = "a-4090-1",
                    .host = "local-a",
                    .gpu_name = "RTX 4090",
                    .vram_gb = 24,
                    .cuda = 12.4,
                    .price_per_h = 0.35,
                    .region = "local-eu",
                    .reliability = 0.98};
    return o;
}

static prov_launch launch_of(int64_t id)
{
    prov_launch l = {.instance_id = id,
                     .epoch = 3,
                     .kind = "gpu",
                     .workload_cmd = "tiny-ollama",
                     .probe_spec = "ollama:tiny",
                     .heartbeat_ms = 100,
                     .snapshot_every_ms = 30000,
                     .server_url = "http://127.0.0.1:8700",
                     .token = "secret-token-123",
                     .store_url = "file:///tmp/store",
                     .hold = 1};
    return l;
}

static void inst_file(fixture *f, int64_t id, const char *name, char *buf, size_t len)
{
    snprintf(buf, len, "%s/instances/%lld/%s", f->home, (long long)id, name);
}

/* A pid written as text; -1 when it is not one. */
static int to_pid(const char *s)
{
    char *end;
    long v = strtol(s, &end, 10);
    return end != s && v > 0 && v <= INT_MAX ? (int)v : -1;
}

static int agent_pid(fixture *f, int64_t id)
{
    char path[PATH_MAX], buf[8192];
    inst_file(f, id, "instance.json", path, sizeof path);
    if (read_text(path, buf, sizeof buf) <= 0)
        return -1;
    const char *p = strstr(buf, "\"pid\":");
    return p ? to_pid(p + 6) : -1;
}

/* ---- market (PROV-MK1 to PROV-MK3, PROV-PV1) ---- */

static void test_market_default(void **state)
{
    fixture *f = *state;
    prov_offer *o = NULL;
    size_t n = 0;
    const char *t = market_default_json();
    assert_int_equal(market_parse(t, strlen(t), "default", &o, &n, f->err, sizeof f->err), 0);
    assert_int_equal(n, 8);
    int hosts = 0;
    for (size_t i = 0; i < n; i++) {
        int seen = 0;
        for (size_t k = 0; k < i; k++)
            seen |= strcmp(o[k].host, o[i].host) == 0;
        hosts += !seen;
    }
    assert_int_equal(hosts, 5);
    free(o);
    /* provider_search writes it when missing (MK: default market) */
    prov_query q;
    prov_offer r[PROV_OFFERS_MAX];
    prov_query_init(&q);
    assert_int_equal(provider_search(f->p, &q, r, PROV_OFFERS_MAX, &n, f->err, sizeof f->err), 0);
    assert_int_equal(n, 8);
    char path[PATH_MAX + 16];
    snprintf(path, sizeof path, "%s/market.json", f->home);
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
}

static void expect_bad(const char *text, const char *needle)
{
    prov_offer *o = NULL;
    size_t n = 0;
    char err[512] = "";
    int rc = market_parse(text, strlen(text), "/x/market.json", &o, &n, err, sizeof err);
    assert_true(rc == DM_E_INVALID || rc == DM_E_TOO_BIG);
    assert_null(o);
    assert_non_null(strstr(err, "/x/market.json"));
    if (!strstr(err, needle))
        fail_msg("error '%s' does not name '%s'", err, needle);
}

/* PROV-MK1: refused whole, with the file, offer and field named. */
static void test_market_malformed(void **state)
{
    (void)state;
    expect_bad("{\"offers\": [", "not JSON");
    expect_bad("[]", "offers");
    expect_bad("{\"offers\": 3}", "offers");
    const char *good = "{\"id\":\"x\",\"host\":\"h\",\"gpu_name\":\"g\",\"vram_gb\":24,\"cuda\":12,"
                       "\"price_per_h\":0.3,\"region\":\"r\",\"reliability\":0.9}";
    char buf[1024];
    snprintf(buf, sizeof buf,
             "{\"offers\": [%s, {\"id\":\"y\",\"host\":\"h\",\"gpu_name\":\"g\",\"cuda\":12,"
             "\"price_per_h\":0.3,\"region\":\"r\",\"reliability\":0.9}]}",
             good);
    expect_bad(buf, "offer 1: field 'vram_gb'");
    snprintf(buf, sizeof buf, "{\"offers\": [%s, %s]}", good, good);
    expect_bad(buf, "duplicate id 'x'");
    expect_bad("{\"offers\": [{\"id\":\"x\",\"host\":\"h\",\"gpu_name\":\"g\",\"vram_gb\":24,"
               "\"cuda\":12,\"price_per_h\":0.3,\"region\":\"r\",\"reliability\":1.5}]}",
               "'reliability'");
    expect_bad("{\"offers\": [{\"id\":\"\",\"host\":\"h\",\"gpu_name\":\"g\",\"vram_gb\":24,"
               "\"cuda\":12,\"price_per_h\":0.3,\"region\":\"r\",\"reliability\":0.5}]}",
               "'id'");
    expect_bad("{\"offers\": [{\"id\":\"x\",\"host\":\"h\",\"gpu_name\":\"g\",\"vram_gb\":24.5,"
               "\"cuda\":12,\"price_per_h\":0.3,\"region\":\"r\",\"reliability\":0.5}]}",
               "'vram_gb'");
    expect_bad("{\"offers\": [7]}", "offer 0");
}

/* A malformed market file through the provider: a clear error, no crash. */
static void test_market_file_error(void **state)
{
    fixture *f = *state;
    char path[PATH_MAX + 16];
    snprintf(path, sizeof path, "%s/market.json", f->home);
    assert_int_equal(fs_write_atomic(path, "{\"offers\": [{\"id\": 1}]}", 23, 0644), 0);
    prov_query q;
    prov_offer r[8];
    size_t n = 99;
    prov_query_init(&q);
    assert_int_equal(provider_search(f->p, &q, r, 8, &n, f->err, sizeof f->err), DM_E_INVALID);
    assert_non_null(strstr(f->err, path));
    assert_non_null(strstr(f->err, "offer 0: field 'id'"));
}

static size_t search(fixture *f, const prov_query *q, prov_offer *r, size_t max)
{
    size_t n = 0;
    assert_int_equal(provider_search(f->p, q, r, max, &n, f->err, sizeof f->err), 0);
    return n;
}

/* PROV-PV1: constraints, exclusions, order (reliable cheapest first, then the rest). */
static void test_search(void **state)
{
    fixture *f = *state;
    prov_query q;
    prov_offer r[PROV_OFFERS_MAX];
    prov_query_init(&q);
    size_t n = search(f, &q, r, PROV_OFFERS_MAX);
    assert_int_equal(n, 8);
    /* reliable (>= 0.9) by price: b-3090-1 .22, b-3090-2 .23, d-l4-1 .28, a-4090-1 .35,
     * a-4090-2 .36, c-a100-1 1.10; then d-4090-1 .31 (.85), e-3090-1 .15 (.70) */
    const char *want[] = {"b-3090-1", "b-3090-2", "d-l4-1",   "a-4090-1",
                          "a-4090-2", "c-a100-1", "e-3090-1", "d-4090-1"};
    for (size_t i = 0; i < 6; i++)
        assert_string_equal(r[i].id, want[i]);
    assert_string_equal(r[6].id, "e-3090-1"); /* unreliable, cheapest first */
    assert_string_equal(r[7].id, "d-4090-1");
    /* max truncates keeping the best */
    assert_int_equal(search(f, &q, r, 2), 2);
    assert_string_equal(r[0].id, "b-3090-1");
    assert_string_equal(r[1].id, "b-3090-2");
    /* VRAM */
    q.min_vram_gb = 40;
    assert_int_equal(search(f, &q, r, 8), 1);
    assert_string_equal(r[0].id, "c-a100-1");
    /* CUDA + region prefix */
    prov_query_init(&q);
    q.min_cuda = 12.4;
    snprintf(q.region, sizeof q.region, "local-us");
    assert_int_equal(search(f, &q, r, 8), 2);
    assert_string_equal(r[0].id, "c-a100-1"); /* reliable first, though dearer */
    assert_string_equal(r[1].id, "d-4090-1");
    snprintf(q.region, sizeof q.region, "local");
    assert_int_equal(search(f, &q, r, 8), 4);
    snprintf(q.region, sizeof q.region, "mars");
    assert_int_equal(search(f, &q, r, 8), 0);
    /* price cap + custom reliability threshold */
    prov_query_init(&q);
    q.max_price_per_h = 0.30;
    q.min_reliability = 0.96;
    assert_int_equal(search(f, &q, r, 8), 4);
    assert_string_equal(r[0].id, "d-l4-1"); /* the only one >= 0.96 under the cap */
    assert_string_equal(r[1].id, "e-3090-1");
    /* exclusions */
    prov_query_init(&q);
    prov_query_exclude(&q, "local-b");
    prov_query_exclude(&q, "local-b"); /* once */
    prov_query_exclude(&q, "local-e");
    assert_int_equal(q.n_exclude, 2);
    n = search(f, &q, r, 8);
    assert_int_equal(n, 5);
    for (size_t i = 0; i < n; i++)
        assert_true(strcmp(r[i].host, "local-b") && strcmp(r[i].host, "local-e"));
    for (int i = 0; i < PROV_EXCLUDE_MAX + 4; i++) {
        char h[16];
        snprintf(h, sizeof h, "h%d", i);
        prov_query_exclude(&q, h);
    }
    assert_int_equal(q.n_exclude, PROV_EXCLUDE_MAX);
    /* bad arguments never reach the back end */
    q.n_exclude = PROV_EXCLUDE_MAX + 1;
    assert_int_equal(provider_search(f->p, &q, r, 8, &n, f->err, sizeof f->err), DM_E_INVALID);
}

/* ---- instances ---- */

static void test_open_and_args(void **state)
{
    fixture *f = *state;
    dm_provider *p = NULL;
    prov_config cfg = {.home = f->home};
    assert_int_equal(provider_open("vast", &cfg, &p, f->err, sizeof f->err), DM_E_INVALID);
    assert_non_null(strstr(f->err, "local"));
    assert_int_equal(provider_open("local", NULL, &p, f->err, sizeof f->err), DM_E_INVALID);
    assert_string_equal(provider_name(f->p), "local");
    prov_instance inst;
    prov_state st;
    assert_int_equal(provider_get(f->p, 0, &inst, f->err, sizeof f->err), DM_E_INVALID);
    assert_int_equal(provider_status(f->p, -1, &st, f->err, sizeof f->err), DM_E_INVALID);
    assert_int_equal(provider_destroy(f->p, 0, f->err, sizeof f->err), DM_E_INVALID);
    assert_int_equal(provider_get(f->p, 5, &inst, f->err, sizeof f->err), DM_E_NOT_FOUND);
    prov_offer o = offer_a();
    prov_launch l = launch_of(0);
    assert_int_equal(provider_provision(f->p, &o, &l, &inst, f->err, sizeof f->err), DM_E_INVALID);
    l = launch_of(1);
    l.kind = "tpu";
    assert_int_equal(provider_provision(f->p, &o, &l, &inst, f->err, sizeof f->err), DM_E_INVALID);
    l = launch_of(1);
    o.id[0] = '\0';
    assert_int_equal(provider_provision(f->p, &o, &l, &inst, f->err, sizeof f->err), DM_E_INVALID);
    assert_int_equal(provider_preempt(f->p, 1, -5, f->err, sizeof f->err), DM_E_INVALID);
    assert_int_equal(provider_preempt(f->p, 9, 0, f->err, sizeof f->err), DM_E_NOT_FOUND);
    /* PROV-PV3, PROV-LP7: an id this provider never made is not confirmed gone */
    assert_int_equal(provider_destroy(f->p, 9, f->err, sizeof f->err), DM_E_NOT_FOUND);
    assert_non_null(strstr(f->err, "never made"));
    provider_close(NULL);
}

/* PROV-PV2, PROV-PV5, PROV-PV6, PROV-LP1: the agent's command line and environment. */
static void test_provision(void **state)
{
    fixture *f = *state;
    prov_offer o = offer_a();
    prov_launch l = launch_of(1);
    prov_instance inst, again;
    char path[PATH_MAX], buf[16384], exp[2 * PATH_MAX];
    assert_int_equal(provider_provision(f->p, &o, &l, &inst, f->err, sizeof f->err), 0);
    assert_int_equal(inst.instance_id, 1);
    assert_string_equal(inst.provider, "local");
    assert_string_equal(inst.offer_id, "a-4090-1");
    assert_string_equal(inst.host, "local-a");
    assert_int_equal(strncmp(inst.address, "127.0.0.1:", 10), 0);
    inst_file(f, 1, "argv.txt", path, sizeof path);
    assert_true(wait_file(path, 5000));
    read_text(path, buf, sizeof buf);
    snprintf(exp, sizeof exp,
             "agent\n--server\nhttp://127.0.0.1:8700\n--instance\n1\n--kind\ngpu\n"
             "--workspace\n%s\n--workload\ntiny-ollama\n--probe\nollama:tiny\n"
             "--heartbeat-ms\n100\n--snapshot-every\n30000ms\n--epoch\n3\n--hold\n"
             "--preempt-cloud\nlocal\n--metadata-url\nfile://",
             inst.workspace);
    if (strncmp(buf, exp, strlen(exp)) != 0)
        fail_msg("argv:\n%s\nexpected:\n%s", buf, exp);
    assert_null(strstr(buf, "secret-token-123")); /* PROV-PV6 */
    char tf[PATH_MAX + 32];
    inst_file(f, 1, "agent.token", tf, sizeof tf);
    snprintf(exp, sizeof exp, "\n--token-file\n%s\n", tf);
    assert_non_null(strstr(buf, exp)); /* PROV-PV6: the credential is in a file ... */
    struct stat tst;
    assert_int_equal(stat(tf, &tst), 0);
    assert_int_equal(tst.st_mode & 0777, 0600); /* ... only its owner reads */
    read_text(tf, buf, sizeof buf);
    assert_string_equal(buf, "secret-token-123");
    inst_file(f, 1, "env.txt", path, sizeof path);
    assert_true(wait_file(path, 5000));
    read_text(path, buf, sizeof buf);
    assert_null(strstr(buf, "DUMONT_TOKEN")); /* PROV-PV6: not in the environment */
    assert_null(strstr(buf, "secret-token-123"));
    assert_non_null(strstr(buf, "DUMONT_STORE=file:///tmp/store\n"));
    snprintf(exp, sizeof exp, "OLLAMA_HOST=%s\n", inst.address);
    assert_non_null(strstr(buf, exp));
    snprintf(exp, sizeof exp, "PORT=%s\n", strchr(inst.address, ':') + 1);
    assert_non_null(strstr(buf, exp));
    snprintf(exp, sizeof exp, "DUMONT_WORKSPACE=%s\n", inst.workspace);
    assert_non_null(strstr(buf, exp));
    /* the token is in no file the provider wrote */
    inst_file(f, 1, "instance.json", path, sizeof path);
    read_text(path, buf, sizeof buf);
    assert_null(strstr(buf, "secret"));
    inst_file(f, 1, "metadata/computeMetadata/v1/instance/preempted", path, sizeof path);
    read_text(path, buf, sizeof buf);
    assert_string_equal(buf, "FALSE");
    assert_int_equal(state_of(f, 1), PROV_RUNNING);
    /* PROV-PV2: again while it runs: same instance, nothing started */
    int pid = agent_pid(f, 1);
    assert_true(pid > 0);
    assert_int_equal(provider_provision(f->p, &o, &l, &again, f->err, sizeof f->err), 0);
    assert_int_equal(agent_pid(f, 1), pid);
    assert_string_equal(again.address, inst.address);
    assert_int_equal(provider_get(f->p, 1, &again, f->err, sizeof f->err), 0);
    assert_string_equal(again.workspace, inst.workspace);
    /* PROV-PV4, PROV-PV5: start_workload is a command of the control channel;
     * a provider opened without one cannot start anything (nor signal it) */
    inst_file(f, 1, "child.pid", path, sizeof path);
    assert_true(wait_file(path, 5000));
    assert_int_equal(provider_start_workload(f->p, &inst, f->err, sizeof f->err), DM_E_UNAVAILABLE);
    assert_non_null(strstr(f->err, "no control channel"));
    inst_file(f, 1, "started.txt", path, sizeof path);
    usleep(300000);
    assert_int_equal(access(path, F_OK), -1);
    /* PROV-PV2: the agent died (STOPPED): provision makes it again */
    kill(pid, SIGKILL);
    assert_int_equal(wait_state(f, 1, PROV_STOPPED, 5000), PROV_STOPPED);
    assert_int_equal(provider_start_workload(f->p, &inst, f->err, sizeof f->err), DM_E_UNAVAILABLE);
    assert_int_equal(provider_provision(f->p, &o, &l, &again, f->err, sizeof f->err), 0);
    assert_true(agent_pid(f, 1) > 0 && agent_pid(f, 1) != pid);
    assert_int_equal(state_of(f, 1), PROV_RUNNING);
}

/* PROV-PV3, PROV-LP2, PROV-LP4: destroy kills the whole session, grandchild in its own
 * process group included, and confirms it. */
static void test_destroy(void **state)
{
    fixture *f = *state;
    prov_offer o = offer_a();
    prov_launch l = launch_of(2);
    prov_instance inst;
    char path[PATH_MAX], buf[64];
    assert_int_equal(provider_provision(f->p, &o, &l, &inst, f->err, sizeof f->err), 0);
    inst_file(f, 2, "child.pid", path, sizeof path);
    assert_true(wait_file(path, 5000));
    read_text(path, buf, sizeof buf);
    int child = to_pid(buf), pid = agent_pid(f, 2);
    assert_true(child > 0 && pid_alive(child));
    for (int64_t end = clock_mono_ms() + 5000; /* perl's setpgrp may not have run yet */
         getpgid(child) == getpgid(pid) && clock_mono_ms() < end;)
        clock_sleep_ms(10, NULL);
    assert_int_not_equal(getpgid(child), getpgid(pid)); /* another process group */
    assert_int_equal(getsid(child), getsid(pid));       /* same session */
    /* one that left the session (PROV-LP2: found by its environment) */
    inst_file(f, 2, "escaped.pid", path, sizeof path);
    assert_true(wait_file(path, 5000));
    read_text(path, buf, sizeof buf);
    int escaped = to_pid(buf);
    for (int64_t end = clock_mono_ms() + 5000;
         getsid(escaped) == getsid(pid) && clock_mono_ms() < end;)
        clock_sleep_ms(10, NULL);
    assert_int_not_equal(getsid(escaped), getsid(pid));
    /* one in the session whose environment was scrubbed (no marker) */
    inst_file(f, 2, "scrubbed.pid", path, sizeof path);
    assert_true(wait_file(path, 5000));
    read_text(path, buf, sizeof buf);
    int scrubbed = to_pid(buf);
    assert_true(scrubbed > 0);
    /* a bystander whose working directory is in the instance is left alone */
    pid_t bystander = fork();
    if (bystander == 0) { /* no descriptors of ours held; gone in 30 s whatever happens */
        int nul = open("/dev/null", O_RDWR);
        dup2(nul, 1);
        dup2(nul, 2);
        alarm(30);
        if (chdir(inst.workspace) == 0)
            pause();
        _exit(1);
    }
    f->bystander = bystander;
    assert_int_equal(provider_destroy(f->p, 2, f->err, sizeof f->err), 0);
    assert_false(pid_alive(pid)); /* confirmed before destroy returned */
    assert_false(pid_alive(child));
    assert_false(pid_alive(escaped));
    assert_false(pid_alive(scrubbed)); /* its session was confirmed by the agent */
    assert_true(pid_alive(bystander));
    assert_int_equal(state_of(f, 2), PROV_ABSENT);
    assert_int_equal(provider_get(f->p, 2, &inst, f->err, sizeof f->err), DM_E_NOT_FOUND);
    assert_int_equal(provider_destroy(f->p, 2, f->err, sizeof f->err), 0);
    /* a new instance with that id can be made */
    assert_int_equal(provider_provision(f->p, &o, &l, &inst, f->err, sizeof f->err), 0);
    assert_int_equal(state_of(f, 2), PROV_RUNNING);
}

/* PROV-LP2: a recorded session id that now names a stranger's session (pid
 * reuse) kills nothing: the stranger carries no marker. */
static void test_destroy_stranger(void **state)
{
    fixture *f = *state;
    char dir[PATH_MAX], rec[512];
    pid_t stranger = fork();
    if (stranger == 0) {
        int nul = open("/dev/null", O_RDWR);
        dup2(nul, 1);
        dup2(nul, 2);
        alarm(30);
        setsid();
        pause();
        _exit(1);
    }
    f->bystander = stranger;
    for (int64_t end = clock_mono_ms() + 5000;
         getsid(stranger) != stranger && clock_mono_ms() < end;)
        clock_sleep_ms(5, NULL);
    assert_int_equal(getsid(stranger), stranger);
    snprintf(dir, sizeof dir, "%s/instances/30", f->home);
    assert_int_equal(fs_mkdir_p(dir, 0700), 0);
    snprintf(rec, sizeof rec,
             "{\"instance_id\": 30, \"pid\": %d, \"sid\": %d, \"start\": 1, \"port\": 1,"
             " \"state\": \"running\", \"offer\": {\"id\": \"x\", \"host\": \"h\"}}",
             (int)stranger, (int)stranger);
    strncat(dir, "/instance.json", sizeof dir - strlen(dir) - 1);
    assert_int_equal(fs_write_atomic(dir, rec, strlen(rec), 0600), 0);
    assert_int_equal(state_of(f, 30), PROV_STOPPED); /* start time differs: not its agent */
    assert_int_equal(provider_destroy(f->p, 30, f->err, sizeof f->err), 0);
    assert_true(pid_alive(stranger));
    assert_int_equal(state_of(f, 30), PROV_ABSENT);
}

/* Preemption without notice: the session dies at once, the directory stays. */
static void test_preempt_now(void **state)
{
    fixture *f = *state;
    prov_offer o = offer_a();
    prov_launch l = launch_of(3);
    prov_instance inst;
    char path[PATH_MAX], buf[64];
    assert_int_equal(provider_provision(f->p, &o, &l, &inst, f->err, sizeof f->err), 0);
    inst_file(f, 3, "child.pid", path, sizeof path);
    assert_true(wait_file(path, 5000));
    read_text(path, buf, sizeof buf);
    int child = to_pid(buf);
    assert_int_equal(provider_preempt(f->p, 3, 0, f->err, sizeof f->err), 0);
    assert_false(pid_alive(child));
    assert_int_equal(state_of(f, 3), PROV_STOPPED);
}

/* Preemption with notice: metadata flips to TRUE, the instance runs on,
 * then dies notice_ms later; the call does not block. */
static void test_preempt_notice(void **state)
{
    fixture *f = *state;
    prov_offer o = offer_a();
    prov_launch l = launch_of(4);
    prov_instance inst;
    char path[PATH_MAX], buf[64];
    assert_int_equal(provider_provision(f->p, &o, &l, &inst, f->err, sizeof f->err), 0);
    int64_t t0 = clock_mono_ms();
    assert_int_equal(provider_preempt(f->p, 4, 400, f->err, sizeof f->err), 0);
    assert_true(clock_mono_ms() - t0 < 300); /* not blocked for the notice */
    inst_file(f, 4, "metadata/computeMetadata/v1/instance/preempted", path, sizeof path);
    read_text(path, buf, sizeof buf);
    assert_string_equal(buf, "TRUE");
    assert_int_equal(state_of(f, 4), PROV_RUNNING);
    assert_int_equal(wait_state(f, 4, PROV_STOPPED, 5000), PROV_STOPPED);
    assert_true(clock_mono_ms() - t0 >= 400);
}

static void write_file(const char *path, const char *text)
{
    assert_int_equal(fs_write_atomic(path, text, strlen(text), 0640), 0);
}

/* workspace_from is copied in (modes, mtimes, symlinks); restore round trip
 * with its timings (PROV-PV4); snapshot through the provider. */
static void test_restore_snapshot(void **state)
{
    fixture *f = *state;
    char src[PATH_MAX + 16], p1[PATH_MAX + 64], p2[PATH_MAX + 64], storep[PATH_MAX + 16];
    char buf[256], big[8192];
    snprintf(src, sizeof src, "%s/src", f->dir);
    snprintf(p1, sizeof p1, "%s/models", src);
    assert_int_equal(fs_mkdir_p(p1, 0755), 0);
    snprintf(p1, sizeof p1, "%s/models/tiny.bin", src);
    write_file(p1, "model bytes v1");
    struct timespec ts[2] = {{.tv_sec = 1000000000}, {.tv_sec = 1000000000}};
    assert_int_equal(utimensat(AT_FDCWD, p1, ts, 0), 0);
    snprintf(p2, sizeof p2, "%s/link", src);
    assert_int_equal(symlink("models/tiny.bin", p2), 0);
    prov_offer o = offer_a();
    prov_launch l = launch_of(5);
    l.workspace_from = src;
    l.snapshot_every_ms = 0; /* never */
    l.heartbeat_ms = 0;      /* the agent's default */
    prov_instance inst;
    assert_int_equal(provider_provision(f->p, &o, &l, &inst, f->err, sizeof f->err), 0);
    inst_file(f, 5, "argv.txt", p2, sizeof p2);
    assert_true(wait_file(p2, 5000));
    read_text(p2, big, sizeof big);
    assert_non_null(strstr(big, "\n--snapshot-every\n0\n"));
    assert_null(strstr(big, "--heartbeat-ms"));
    struct stat st;
    snprintf(p1, sizeof p1, "%s/models/tiny.bin", inst.workspace);
    assert_int_equal(stat(p1, &st), 0);
    assert_int_equal(st.st_mode & 07777, 0640);
    assert_int_equal(st.st_mtime, 1000000000);
    snprintf(p2, sizeof p2, "%s/link", inst.workspace);
    assert_int_equal(readlink(p2, buf, sizeof buf), 15);
    /* PROV-PV4: restore and snapshot are the agent's own work, over the control
     * channel: without one the provider refuses them and touches nothing
     * (the round trip through a real agent: tests/integration/test_channel.sh) */
    dm_store *s = NULL;
    snprintf(storep, sizeof storep, "%s/store", f->dir);
    assert_int_equal(store_open(storep, &s, f->err, sizeof f->err), 0);
    snap_info si;
    assert_int_equal(provider_snapshot(f->p, &inst, s, "epoch=3", &si, f->err, sizeof f->err),
                     DM_E_UNAVAILABLE);
    prov_restore_times t = {.download_ms = -1};
    assert_int_equal(provider_restore(f->p, &inst, s, "00", &t, f->err, sizeof f->err),
                     DM_E_UNAVAILABLE);
    assert_non_null(strstr(f->err, "no control channel"));
    assert_int_equal(t.download_ms, -1);
    assert_int_equal(stat(p1, &st), 0);
    assert_int_equal(st.st_mtime, 1000000000);
    store_close(s);
}

/* snap_restore's stats (snapshot.h): filled only when asked, consistent. */
static void test_restore_stats(void **state)
{
    fixture *f = *state;
    char src[PATH_MAX + 16], out[PATH_MAX + 16], p[PATH_MAX + 32];
    snprintf(src, sizeof src, "%s/big", f->dir);
    snprintf(out, sizeof out, "%s/big-out", f->dir);
    assert_int_equal(fs_mkdir_p(src, 0755), 0);
    size_t len = 4u << 20;
    char *data = malloc(len);
    for (size_t i = 0; i < len; i++)
        data[i] = (char)((i * 2654435761u) >> 13);
    snprintf(p, sizeof p, "%s/blob", src);
    assert_int_equal(fs_write_atomic(p, data, len, 0644), 0);
    free(data);
    dm_store *s = NULL;
    snprintf(p, sizeof p, "%s/store2", f->dir);
    assert_int_equal(store_open(p, &s, f->err, sizeof f->err), 0);
    snap_info si;
    assert_int_equal(snap_create(s, src, NULL, &si, f->err, sizeof f->err), 0);
    snap_opts o;
    snap_restore_stats st;
    memset(&st, 0xff, sizeof st);
    snap_opts_init(&o);
    o.restore_stats = &st;
    assert_int_equal(snap_restore(s, si.id, out, 0, &o, f->err, sizeof f->err), 0);
    assert_int_equal(st.bytes, len);
    assert_true(st.chunks >= 1);
    assert_true(st.fetch_ms >= 0 && st.fetch_ms <= st.total_ms);
    assert_int_equal(st.fetch_ms + st.other_ms, st.total_ms);
    assert_true(st.fetch_thread_ms >= 0 && st.busy_thread_ms >= 0);
    assert_true(store_thread_fetch_ns() > 0); /* the manifest was fetched on this thread */
    store_close(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_market_default, setup, teardown),
        cmocka_unit_test_setup_teardown(test_market_malformed, setup, teardown),
        cmocka_unit_test_setup_teardown(test_market_file_error, setup, teardown),
        cmocka_unit_test_setup_teardown(test_search, setup, teardown),
        cmocka_unit_test_setup_teardown(test_open_and_args, setup, teardown),
        cmocka_unit_test_setup_teardown(test_provision, setup, teardown),
        cmocka_unit_test_setup_teardown(test_destroy, setup, teardown),
        cmocka_unit_test_setup_teardown(test_destroy_stranger, setup, teardown),
        cmocka_unit_test_setup_teardown(test_preempt_now, setup, teardown),
        cmocka_unit_test_setup_teardown(test_preempt_notice, setup, teardown),
        cmocka_unit_test_setup_teardown(test_restore_snapshot, setup, teardown),
        cmocka_unit_test_setup_teardown(test_restore_stats, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

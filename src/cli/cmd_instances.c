/* `dumont instances [list|show|launch|destroy]`: the instances the server
 * watches and, on a provider, makes (GET /api/instances[/{id}], POST
 * /api/instances/launch, DELETE /api/instances/{id}; docs/cli.md).
 *
 * CLI-N1: the same contract as `dumont failover` (CLI-SC1, CLI-SC2 of subcmd.h):
 *     exit 0 / 1 (one line on stderr) / 2 (reason, then usage, on stderr);
 *     --json prints the API's answer as received; --help exits 0.
 * CLI-N2: an age is shown as a duration ("180 ms", "2m 05s"); a value that does
 *     not exist is "-" (CLI-O1 of output.h).
 * CLI-N3: `launch` checks every key=value before sending; workspace_from is
 *     resolved here with realpath() and must be a directory (the server
 *     resolves paths relative to its own working directory, not the user's).
 * CLI-N4: `launch` prints the new instance id alone on stdout (so
 *     `id=$(dumont instances launch ...)` works). Launch is synchronous and
 *     may take long: the request waits up to LAUNCH_TIMEOUT_MS, and a
 *     progress line is drawn on stderr only when stderr is a terminal, and
 *     erased before anything else is printed. */
#include "cli/client.h"
#include "cli/commands.h"
#include "cli/output.h"
#include "cli/subcmd.h"
#include "core/fleet.h"

#include "core/fleet.h"
#include "util/clock.h"
#include "util/error.h"
#include "util/parse.h"

#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define LAUNCH_TIMEOUT_MS (180L * 1000)
#define SPIN_MS           150
#define TEXT_MAX          256 /* db_fleet.h FLEET_TEXT_MAX */

typedef struct {
    subcmd sc;
    int (*run)(subcmd_ctx *c);
} in_cmd;

static const char instances_usage[] =
    "usage: dumont instances [list] [all=true] [--json]\n"
    "       dumont instances show INSTANCE_ID [--json]\n"
    "       dumont instances launch workload=CMD [probe=SPEC] [workspace_from=DIR] [...]\n"
    "       dumont instances destroy INSTANCE_ID [--json]\n"
    "\n"
    "Lists the instances that run `dumont agent` and what the failure detector\n"
    "thinks of them: healthy, suspect, failed, leaving, preempting or pending\n"
    "(registered, no heartbeat yet), with the age of the last heartbeat, the\n"
    "workload and its probe. Destroyed instances are left out unless all=true\n"
    "(they show state destroyed and no live fields). `show` adds the machine (provider, workload, workspace,\n"
    "address, epoch), the newest failover and snapshot, and recent state changes.\n"
    "`launch` makes a protected workload and its first instance on the provider;\n"
    "`destroy` removes an instance (a serving one stops its workload's protection).\n"
    "`dumont instances launch --help` lists launch's settings.\n"
    "\n"
    "The server is found at $DUMONT_URL (default http://127.0.0.1:8700), with the\n"
    "token from $DUMONT_TOKEN or $DUMONT_HOME/token.\n";

/* ---- list and show --------------------------------------------------- */

static void print_list(const json_t *j, FILE *out)
{
    static const char *const hdr[] = {"ID",    "KIND",     "STATE", "LAST HEARTBEAT", "WORKLOAD",
                                      "PROBE", "RESTARTS", "PHI",   "WORKLOAD ID",    "SNAPSHOT"};
    const json_t *arr = json_object_get(j, "instances");
    if (json_array_size(arr) == 0) {
        fprintf(out, "No instances registered. Start `dumont agent --server URL --instance ID` on "
                     "a machine, or `dumont instances launch workload=CMD`.\n");
        return;
    }
    out_table *t = out_table_new(10, hdr);
    if (!t)
        return;
    out_table_align_right(t, 0);
    out_table_align_right(t, 3);
    out_table_align_right(t, 6);
    out_table_align_right(t, 7);
    size_t i;
    const json_t *o;
    json_array_foreach(arr, i, o)
    {
        char id[24], age[32], rs[16], phi[24], snap[16];
        snprintf(id, sizeof id, "%lld", (long long)out_json_int(o, "instance_id"));
        out_duration(out_json_int(o, "last_heartbeat_age_ms"), age, sizeof age);
        int64_t r = out_json_int(o, "restarts");
        snprintf(rs, sizeof rs, r < 0 ? "-" : "%lld", (long long)r);
        double p = out_json_num(o, "phi");
        snprintf(phi, sizeof phi, p != p ? "-" : "%.2f", p); /* NAN: absent */
        snprintf(snap, sizeof snap, "%.12s", out_json_str(o, "newest_snapshot_id", "-"));
        const char *intake = out_json_str(o, "intake", "ok");
        char wl[64]; /* the failover budget: say when the workload flaps */
        snprintf(wl, sizeof wl, json_is_string(json_object_get(o, "workload_flapping"))
                                    ? "%s (flapping)"
                                    : "%s",
                 out_json_str(o, "workload_id", "-"));
        char state[64]; /* listener.h HB-L9: say when the intake is lossy */
        snprintf(state, sizeof state, strcmp(intake, "ok") ? "%s (intake %s)" : "%s",
                 out_json_str(o, "state", "-"), intake);
        const char *row[] = {id,
                             out_json_str(o, "kind", "-"),
                             state,
                             age,
                             out_json_str(o, "workload", "-"),
                             out_json_str(o, "probe", "-"),
                             rs,
                             phi,
                             wl,
                             snap};
        if (out_table_add(t, row) != 0)
            break;
    }
    out_table_print(t, out);
    out_table_free(t);
}

static void print_events(const json_t *arr, FILE *out)
{
    static const char *const hdr[] = {"AT", "WHAT", "FROM", "TO", "REASON", "SILENT"};
    out_table *t = out_table_new(6, hdr);
    if (!t)
        return;
    out_table_align_right(t, 5);
    size_t i;
    const json_t *e;
    json_array_foreach(arr, i, e)
    {
        char silent[32];
        out_duration(out_json_int(e, "silent_ms"), silent, sizeof silent);
        const char *row[] = {out_json_str(e, "at", "-"),     out_json_str(e, "what", "-"),
                             out_json_str(e, "from", "-"),   out_json_str(e, "to", "-"),
                             out_json_str(e, "reason", "-"), silent};
        if (out_table_add(t, row) != 0)
            break;
    }
    out_table_print(t, out);
    out_table_free(t);
}

/* Why the workload failed, line by line, each made safe (CLI-O1). */
static void print_failure(const char *text, FILE *out)
{
    fprintf(out, "\nWorkload failed:\n");
    for (const char *p = text; *p;) {
        size_t n = strcspn(p, "\n");
        char line[512];
        snprintf(line, sizeof line, "%.*s", (int)(n < sizeof line ? n : sizeof line - 1), p);
        for (char *q = line; *q; q++)
            if ((unsigned char)*q < 0x20 || *q == 0x7f)
                *q = '?';
        fprintf(out, "  %s\n", line);
        p += n + (p[n] == '\n');
    }
}

static void print_one(const json_t *orig, FILE *out)
{
    json_t *j = json_deep_copy(orig);
    if (!j)
        return;
    json_t *events = json_incref(json_object_get(j, "events"));
    json_t *snap = json_incref(json_object_get(j, "newest_snapshot"));
    json_t *why = json_incref(json_object_get(j, "workload_failure"));
    json_object_del(j, "events");
    json_object_del(j, "newest_snapshot");
    json_object_del(j, "workload_failure");
    out_object(j, out);
    if (json_is_string(why)) /* FLEET-W1: the reason, then the workload's last lines */
        print_failure(json_string_value(why), out);
    json_decref(why);
    if (json_is_object(snap)) {
        char made[32];
        out_duration(out_json_int(snap, "creation_time_ms"), made, sizeof made);
        fprintf(out, "\nNewest snapshot: %s (%lld bytes, %s, made in %s, trigger %s)\n",
                out_json_str(snap, "snapshot_id", "-"), (long long)out_json_int(snap, "size_bytes"),
                out_json_str(snap, "created_at", "-"), made, out_json_str(snap, "trigger", "-"));
    }
    if (events && json_array_size(events) > 0) {
        fprintf(out, "\nState changes (newest first):\n");
        print_events(events, out);
    }
    json_decref(events);
    json_decref(snap);
    json_decref(j);
}

static int id_arg(subcmd_ctx *c, int64_t *ret)
{
    if (parse_i64(c->a.pos[0], 1, INT64_MAX, ret) != 0)
        return subcmd_usage_error(c, "instance id must be a whole number >= 1, got '%s'",
                                  c->a.pos[0]);
    return 0;
}

static const char *const k_list[] = {"all", NULL};

/* all=true adds the destroyed instances (hidden by default: API-RI1). */
static int run_list(subcmd_ctx *c)
{
    const char *all = kv_get(&c->a.kv, "all");
    int b;
    if (all && parse_bool(all, &b) != 0)
        return subcmd_usage_error(c, "all must be true or false, got '%s'", all);
    char q[32], path[64];
    int rc = subcmd_build_query(c, k_list, q, sizeof q);
    snprintf(path, sizeof path, "/api/instances%s", q);
    return rc ? rc : subcmd_get_show(c, path, print_list);
}

static int run_show(subcmd_ctx *c)
{
    int64_t id;
    char path[64];
    int rc = id_arg(c, &id);
    if (rc)
        return rc;
    snprintf(path, sizeof path, "/api/instances/%lld", (long long)id);
    return subcmd_get_show(c, path, print_one);
}

static int run_destroy(subcmd_ctx *c)
{
    int64_t id;
    char path[64];
    client_resp r;
    int rc = id_arg(c, &id);
    if (rc)
        return rc;
    snprintf(path, sizeof path, "/api/instances/%lld", (long long)id);
    if ((rc = subcmd_call(c, "DELETE", path, NULL, &r)) != 0)
        return rc;
    if (c->a.json)
        subcmd_print_json(&r);
    else
        printf("instance %lld destroyed\n", (long long)id);
    client_resp_done(&r);
    return 0;
}

/* ---- launch ------------------------------------------------------------ */

/* Sets key in b to a string; 1 on failure (not UTF-8 or no memory). */
static int put_str(json_t *b, const char *key, const char *v)
{
    json_t *s = json_string(v);
    return !s || json_object_set_new(b, key, s) != 0;
}

/* workspace_from: realpath, must be a directory (CLI-N3). */
static int put_workspace(subcmd_ctx *c, json_t *b)
{
    const char *w = kv_get(&c->a.kv, "workspace_from");
    char abs[PATH_MAX];
    struct stat st;
    if (!w)
        return 0;
    if (!realpath(w, abs))
        return subcmd_usage_error(c, "workspace_from '%s': %s", w, strerror(errno));
    if (stat(abs, &st) != 0 || !S_ISDIR(st.st_mode))
        return subcmd_usage_error(c, "workspace_from '%s' is not a directory", w);
    return put_str(b, "workspace_from", abs) ? subcmd_fail("out of memory") : 0;
}

/* The text keys: non-empty, printable, under TEXT_MAX; kind and region checked. */
static int put_texts(subcmd_ctx *c, json_t *b)
{
    static const struct {
        const char *key;
        size_t max;
    } keys[] = {{"workload", TEXT_MAX}, {"probe", TEXT_MAX},  {"model", 128},
                {"name", 64},           {"kind", 8},          {"region", 64},
                {"host_check", TEXT_MAX}, {"error_exit_codes", 64}};
    char why[300];
    const char *wl = kv_get(&c->a.kv, "workload");
    if (wl && dm_workload_cmd_check(wl, why, sizeof why) != 0) /* FLEET-W2 */
        return subcmd_usage_error(c, "%s", why);
    const char *codes = kv_get(&c->a.kv, "error_exit_codes");
    if (codes && dm_exit_codes_check(codes, why, sizeof why) != 0)
        return subcmd_usage_error(c, "%s", why);
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
        const char *v = kv_get(&c->a.kv, keys[i].key);
        if (!v)
            continue;
        int ok = *v && strlen(v) < keys[i].max;
        for (const char *p = v; ok && *p; p++)
            ok = (unsigned char)*p >= 0x20 && *p != 0x7f;
        if (!ok)
            return subcmd_usage_error(c, "%s must be 1 to %zu printable characters", keys[i].key,
                                      keys[i].max - 1);
        if (put_str(b, keys[i].key, v))
            return subcmd_usage_error(c, "%s must be UTF-8 text", keys[i].key);
    }
    const char *k = kv_get(&c->a.kv, "kind"), *r = kv_get(&c->a.kv, "region");
    if (k && strcmp(k, "gpu") != 0 && strcmp(k, "cpu") != 0)
        return subcmd_usage_error(c, "kind must be gpu or cpu, got '%s'", k);
    if (r &&
        strspn(r, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-") != strlen(r))
        return subcmd_usage_error(c, "region must be letters, digits, '.', '_' or '-'");
    if (!kv_get(&c->a.kv, "workload"))
        return subcmd_usage_error(c, "missing workload=CMD (the command the instance runs)");
    return 0;
}

static int put_numbers(subcmd_ctx *c, json_t *b)
{
    const char *v;
    int64_t n;
    double d;
    int p, bad = 0;
    if ((v = kv_get(&c->a.kv, "heartbeat_ms")) && parse_i64(v, 10, 60000, &n) != 0)
        return subcmd_usage_error(c, "heartbeat_ms must be a whole number from 10 to 60000");
    if (v)
        bad |= json_object_set_new(b, "heartbeat_ms", json_integer(n));
    if ((v = kv_get(&c->a.kv, "snapshot_every")) &&
        parse_duration_ms(v, 0, 7 * 86400 * 1000LL, &n) != 0)
        return subcmd_usage_error(c, "snapshot_every must be a duration up to 7d, like 30s "
                                     "(0: never)");
    if (v)
        bad |= put_str(b, "snapshot_every", v);
    if ((v = kv_get(&c->a.kv, "protect")) && parse_bool(v, &p) != 0)
        return subcmd_usage_error(c, "protect must be true or false, got '%s'", v);
    if (v)
        bad |= json_object_set_new(b, "protect", json_boolean(p));
    if ((v = kv_get(&c->a.kv, "min_vram_gb")) && parse_i64(v, 0, 4096, &n) != 0)
        return subcmd_usage_error(c, "min_vram_gb must be a whole number from 0 to 4096");
    if (v)
        bad |= json_object_set_new(b, "min_vram_gb", json_integer(n));
    if ((v = kv_get(&c->a.kv, "min_cuda")) && parse_double(v, 0, 100, &d) != 0)
        return subcmd_usage_error(c, "min_cuda must be a number from 0 to 100, like 12.1");
    if (v)
        bad |= json_object_set_new(b, "min_cuda", json_real(d));
    if ((v = kv_get(&c->a.kv, "max_restarts_on_errors")) &&
        parse_i64(v, 0, FLEET_MAX_RESTARTS_MAX, &n) != 0)
        return subcmd_usage_error(c, "max_restarts_on_errors must be a whole number from 0 to %d",
                                  FLEET_MAX_RESTARTS_MAX);
    if (v)
        bad |= json_object_set_new(b, "max_restarts_on_errors", json_integer(n));
    if ((v = kv_get(&c->a.kv, "max_price")) && parse_double(v, 0.001, 1000, &d) != 0)
        return subcmd_usage_error(c, "max_price must be a number of USD/h from 0.001 to 1000");
    if (v)
        bad |= json_object_set_new(b, "max_price", json_real(d));
    if ((v = kv_get(&c->a.kv, "max_failovers")) && parse_i64(v, 1, FLEET_BUDGET_MAX_LIMIT, &n) != 0)
        return subcmd_usage_error(c, "max_failovers must be a whole number from 1 to %d",
                                  FLEET_BUDGET_MAX_LIMIT);
    if (v)
        bad |= json_object_set_new(b, "max_failovers", json_integer(n));
    if ((v = kv_get(&c->a.kv, "failover_window")) &&
        parse_duration_ms(v, 1000, FLEET_BUDGET_WINDOW_LIMIT, &n) != 0)
        return subcmd_usage_error(c, "failover_window must be a duration from 1s to 7d, like 30m");
    if (v)
        bad |= put_str(b, "failover_window", v);
    return bad ? subcmd_fail("out of memory") : 0;
}

/* CLI-N4: the progress line, drawn by a thread while the request runs. */
typedef struct {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    int done, drawn;
} spinner;

static void *spin(void *arg)
{
    static const char frames[] = "|/-\\";
    spinner *s = arg;
    int64_t start = clock_mono_ms();
    pthread_mutex_lock(&s->lock);
    for (int i = 0; !s->done; i++) {
        struct timespec ts;
        char el[32];
        out_duration(clock_mono_ms() - start, el, sizeof el);
        fprintf(stderr,
                "\r%c launching: search, provision, start the agent and the workload... %s"
                "\033[K",
                frames[i % 4], el);
        fflush(stderr);
        s->drawn = 1;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_nsec += SPIN_MS * 1000000L;
        ts.tv_sec += ts.tv_nsec / 1000000000L;
        ts.tv_nsec %= 1000000000L;
        pthread_cond_timedwait(&s->cond, &s->lock, &ts);
    }
    if (s->drawn)
        fputs("\r\033[K", stderr);
    fflush(stderr);
    pthread_mutex_unlock(&s->lock);
    return NULL;
}

/* POST with the progress line on a terminal (CLI-N4). A quick GET /healthz
 * first makes the client and reports an unreachable server at once. */
static int launch_call(subcmd_ctx *c, const json_t *body, client_resp *r)
{
    spinner s = {.lock = PTHREAD_MUTEX_INITIALIZER, .cond = PTHREAD_COND_INITIALIZER};
    pthread_t th;
    char err[1024];
    c->timeout_ms = LAUNCH_TIMEOUT_MS;
    int rc = subcmd_call(c, "GET", "/healthz", NULL, r);
    if (rc)
        return rc; /* it said why */
    client_resp_done(r);
    int spinning = !c->a.quiet && isatty(STDERR_FILENO) && /* CLI-SC4 */
                   pthread_create(&th, NULL, spin, &s) == 0;
    rc = client_call(c->cl, "POST", "/api/instances/launch", body, r, err, sizeof err);
    if (spinning) {
        pthread_mutex_lock(&s.lock);
        s.done = 1;
        pthread_cond_signal(&s.cond);
        pthread_mutex_unlock(&s.lock);
        pthread_join(th, NULL);
    }
    if (rc == 0)
        return 0;
    if (c->a.json && r->json)
        subcmd_print_json(r);
    subcmd_fail("%s", err);
    client_resp_done(r);
    return SUBCMD_EXIT_FAIL;
}

static int run_launch(subcmd_ctx *c)
{
    json_t *b = json_object();
    client_resp r;
    int rc;
    if (!b)
        return subcmd_fail("out of memory");
    if ((rc = put_texts(c, b)) || (rc = put_workspace(c, b)) || (rc = put_numbers(c, b)))
        goto out;
    if ((rc = launch_call(c, b, &r)) != 0)
        goto out;
    int64_t id = out_json_int(r.json, "instance_id");
    if (c->a.json) {
        subcmd_print_json(&r);
    } else if (id < 1) {
        rc = subcmd_fail("the server's answer has no instance_id");
    } else {
        printf("%lld\n", (long long)id);
        fflush(stdout);
        if (isatty(STDERR_FILENO) && !c->a.quiet)
            fprintf(stderr,
                    "workload %s, workspace %s, address %s\nwatch it with: dumont "
                    "instances show %lld\n",
                    out_json_str(r.json, "workload_id", "-"),
                    out_json_str(r.json, "workspace", "-"), out_json_str(r.json, "address", "-"),
                    (long long)id);
    }
    client_resp_done(&r);
out:
    json_decref(b);
    return rc;
}

/* ---- the table ---------------------------------------------------------- */

static const char *const k_none[] = {NULL};
static const char *const k_launch[] = {
    "workload",       "probe",    "workspace_from", "model", "heartbeat_ms",
    "snapshot_every", "protect",  "name",           "kind",  "region",
    "min_vram_gb",    "min_cuda", "max_price",      "max_restarts_on_errors",
    "error_exit_codes", "host_check", "max_failovers",
    "failover_window", NULL};

static const in_cmd commands[] = {
    {{"list", instances_usage, k_list, 0, 0, 0}, run_list},
    {{"show",
      "usage: dumont instances show INSTANCE_ID [--json]\n"
      "\nOne instance: detector state, last heartbeat, workload and probe; for one a\n"
      "provider made, its provider, workload_id, workspace, address, epoch, machine\n"
      "state, newest failover_id and newest snapshot; then its recent state changes.\n",
      k_none, 1, 1, 0},
     run_show},
    {{"launch",
      "usage: dumont instances launch workload=CMD [probe=SPEC] [workspace_from=DIR]\n"
      "           [model=M] [heartbeat_ms=N] [snapshot_every=30s] [protect=true]\n"
      "           [min_vram_gb=N] [min_cuda=X] [region=R] [max_price=X] [name=S]\n"
      "           [kind=gpu|cpu] [--json]\n"
      "           [max_restarts_on_errors=N] [error_exit_codes=C,C] [host_check=CMD]\n"
      "           [max_failovers=3] [failover_window=30m]\n"
      "\nMakes a workload and its first instance on the server's provider: searches the\n"
      "offers, provisions, waits for the agent, starts the workload (and snapshots\n"
      "workspace_from first, so there is always a restorable point). Waits for it (up\n"
      "to 3 minutes) and prints the new instance id.\n"
      "  workload=CMD        the command the instance runs (in its workspace)\n"
      "  probe=SPEC          readiness probe: http:PORT/PATH, exec:CMD, ollama:MODEL\n"
      "  workspace_from=DIR  a directory copied into the first workspace\n"
      "  model=M             the inference model (default: from an ollama: probe)\n"
      "  heartbeat_ms=N      agent heartbeat period, 10..60000 (default 200)\n"
      "  snapshot_every=D    scheduled snapshot period, up to 7d (default 30s; 0: never)\n"
      "  protect=BOOL        fail over automatically (default true)\n"
      "  max_restarts_on_errors=N  restarts in place after a crash before the workload\n"
      "                      gives up (default 3, up to 30); then it is failed with its\n"
      "                      exit and last output, and no other GPU is rented, unless\n"
      "                      it had been healthy and the host fails its checks\n"
      "  error_exit_codes=C,C  exit codes that are the workload's own error: never a\n"
      "                      failover (e.g. 1,2)\n"
      "  host_check=CMD      run on the instance when the workload gives up; non-zero:\n"
      "                      the host is at fault (after the built-in disk and GPU checks)\n"
      "  min_vram_gb, min_cuda, region, max_price (USD/h)   offer constraints\n"
      "  max_failovers=N     the failover budget: at most N automatic failovers in\n"
      "  failover_window=D   D (default 3 in 30m); past it the workload is flapping\n"
      "                      and failovers go on with backoff (1m doubling to 30m)\n"
      "--json prints {\"instance_id\", \"workload_id\", \"workspace\", \"address\"}.\n",
      k_launch, 0, 0, 0},
     run_launch},
    {{"destroy",
      "usage: dumont instances destroy INSTANCE_ID [--json]\n"
      "\nDestroys an instance (every process of it, confirmed gone). If it serves a\n"
      "workload, that workload's protection stops first, so no failover follows.\n",
      k_none, 1, 1, 0},
     run_destroy},
};

static const subcmd_set instances_set = {
    .prog = "instances",
    .usage = instances_usage,
    .default_sub = "list",
    .cmds = commands,
    .ncmds = sizeof commands / sizeof commands[0],
    .stride = sizeof commands[0],
};

int cmd_instances(dm_config *cfg, int argc, char **argv)
{
    subcmd_ctx c;
    int rc = subcmd_start(&c, &instances_set, cfg, argc, argv);
    if (rc == SUBCMD_RUN) {
        rc = ((const in_cmd *)c.cmd)->run(&c);
        if (fflush(stdout) != 0 && rc == 0)
            rc = subcmd_fail("cannot write the output");
    }
    subcmd_done(&c);
    return rc;
}

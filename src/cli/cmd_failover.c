/* `dumont failover ...`: the failover client commands (docs/cli.md), each a
 * thin client of one REST endpoint (docs/api.md).
 *
 * Arguments are split by the shared machinery of subcmd.h (flags anywhere,
 * key=value words, positional words); every value is checked here before
 * anything is sent, so a bad argument never reaches the server.
 *
 * CLI-F1: exit status 0 / 1 / 2 and --help as CLI-SC1 of subcmd.h.
 * CLI-F2: --json prints the API's answer exactly as received (CLI-SC2).
 * CLI-F3: `simulate` and `test-real` print the new failover id alone on the
 *     first line of stdout, so `id=$(dumont failover simulate 12345)` works;
 *     the hint how to follow it goes to stderr, only when it is a terminal.
 * CLI-F4: `--wait` polls the status every FOLLOW_POLL_MS and prints each phase
 *     once, in order, as it finishes (ok, failed or skipped); exit 0 when the
 *     failover completed, 1 when it failed (the reason on stderr).
 *     `test-real --wait` then prints the FailoverTestEvent (--json: its JSON
 *     alone).
 * CLI-F5: `status` of a real failover adds its old and new instance, workload,
 *     trigger, attempts, epoch, snapshot and inference test. */
#include "cli/client.h"
#include "cli/commands.h"
#include "cli/output.h"
#include "cli/subcmd.h"

#include "core/failover.h"
#include "util/error.h"
#include "util/parse.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define FOLLOW_POLL_MS 200
#define API            "/api/standby/failover"
#define EXIT_FAIL      SUBCMD_EXIT_FAIL

typedef subcmd_ctx fo_ctx;

typedef struct {
    subcmd sc; /* first: subcmd_set walks the table by it */
    int (*run)(fo_ctx *c);
} fo_cmd;

#define usage_error subcmd_usage_error
#define call        subcmd_call

static const char failover_usage[] =
    "usage: dumont failover <subcommand> [arguments] [--json] [--help]\n"
    "\n"
    "subcommands:\n"
    "  test-setup gpu_instance_id=N [standby_id=S] [gcp_zone=Z]\n"
    "                        mock GPU <-> CPU-standby association for tests\n"
    "  simulate GPU_ID [fail_phase=P] [speed=X] [seed=N] [--wait]\n"
    "                        start a simulated failover; prints its id\n"
    "  status FAILOVER_ID    one failover, phase by phase, with times\n"
    "  report [kind=simulated|real] [since=T] [until=T] [gpu_instance_id=N]\n"
    "                        MTTR, success rate, totals, per-phase statistics\n"
    "  list [gpu_instance_id=N] [kind=simulated|real] [limit=N] [offset=N]\n"
    "                        failovers, newest first\n"
    "  test-real GPU_ID [model=M] [keep=true] [--wait]\n"
    "                        real failover test; the original keeps running\n"
    "  test-real-report ID   one real failover test (a FailoverTestEvent)\n"
    "  test-real-history [since=T] [until=T] [limit=N]\n"
    "                        all real failover tests, newest first\n"
    "\n"
    "Every subcommand takes --json (print the API's JSON) and --help.\n"
    "The server is found at $DUMONT_URL (default http://127.0.0.1:8700), with the\n"
    "token from $DUMONT_TOKEN or $DUMONT_HOME/token.\n";

/* The GPU id: the positional word or gpu_instance_id=N, not both. */
static int gpu_arg(fo_ctx *c, int64_t *ret)
{
    const char *kv = kv_get(&c->a.kv, "gpu_instance_id");
    const char *s = c->a.npos > 0 ? c->a.pos[0] : kv;
    if (c->a.npos > 0 && kv)
        return usage_error(c, "give the GPU id once, not both as a word and gpu_instance_id=");
    if (!s)
        return usage_error(c, "missing the GPU instance id");
    if (parse_i64(s, 1, INT64_MAX, ret) != 0)
        return usage_error(c, "GPU instance id must be a whole number >= 1, got '%s'", s);
    return 0;
}

/* Failover ids are made by the server ("sim-5f0c2a9e41d7"): a short word of
 * [A-Za-z0-9._-], which keeps the request path free of anything to escape. */
static int valid_id(const char *s)
{
    static const char ok[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-";
    size_t n = strlen(s);
    return n > 0 && n < FO_ID_MAX && strspn(s, ok) == n;
}

static int id_arg(fo_ctx *c, const char **ret)
{
    const char *s = c->a.pos[0];
    if (!valid_id(s))
        return usage_error(c, "'%s' is not a failover id", s);
    *ret = s;
    return 0;
}

/* ---- calling the API --------------------------------------------------- */

static int get_and_show(fo_ctx *c, const char *path, void (*show)(const json_t *, FILE *))
{
    return subcmd_get_show(c, path, show);
}

static int build_query(fo_ctx *c, const char *const *keys, char *q, size_t cap)
{
    return subcmd_build_query(c, keys, q, cap);
}

static int check_kind(fo_ctx *c, int all_ok)
{
    const char *k = kv_get(&c->a.kv, "kind");
    fo_kind kind;
    if (k && fo_kind_parse(k, &kind) != 0 && !(all_ok && strcmp(k, "all") == 0))
        return usage_error(c, "kind must be simulated or real%s, got '%s'",
                           all_ok ? " (or all)" : "", k);
    return 0;
}

static int check_int(fo_ctx *c, const char *key, int64_t min, int64_t max)
{
    return subcmd_check_int(c, key, min, max);
}

/* ---- test-setup ---------------------------------------------------------- */

static int run_test_setup(fo_ctx *c)
{
    int64_t gpu;
    int rc = gpu_arg(c, &gpu);
    if (rc)
        return rc;
    json_t *body = json_pack("{s:I}", "gpu_instance_id", (json_int_t)gpu);
    const char *sid = kv_get(&c->a.kv, "standby_id"), *zone = kv_get(&c->a.kv, "gcp_zone");
    if (!body || (sid && json_object_set_new(body, "standby_id", json_string(sid)) != 0) ||
        (zone && json_object_set_new(body, "gcp_zone", json_string(zone)) != 0)) {
        json_decref(body);
        return usage_error(c, "standby_id and gcp_zone must be UTF-8 text");
    }
    client_resp r;
    rc = call(c, "POST", API "/test-setup", body, &r);
    json_decref(body);
    if (rc)
        return rc;
    if (c->a.json) {
        client_json_pretty(r.body, r.body_len, stdout);
    } else {
        printf("GPU %lld is set up for failover tests:\n", (long long)gpu);
        out_object(r.json, stdout);
    }
    client_resp_done(&r);
    return 0;
}

/* ---- simulate ------------------------------------------------------------ */

/* {"fail_phase", "speed", "seed"} from the arguments, checked; *ret NULL and
 * an exit status on a bad one. */
static int simulate_body(fo_ctx *c, json_t **ret)
{
    const char *fp = kv_get(&c->a.kv, "fail_phase"), *sp = kv_get(&c->a.kv, "speed"),
               *sd = kv_get(&c->a.kv, "seed");
    fo_phase phase;
    double speed;
    int64_t seed;
    *ret = NULL;
    if (fp && fo_phase_parse(fp, &phase) != 0)
        return usage_error(c,
                           "fail_phase must be one of detection, standby_activation, "
                           "gpu_search, provisioning, ssh_ready, restore, inference; got '%s'",
                           fp);
    if (sp && parse_double(sp, 0.001, 1e9, &speed) != 0)
        return usage_error(c, "speed must be a number from 0.001 to 1e9, got '%s'", sp);
    if (sd && parse_i64(sd, 0, INT64_MAX, &seed) != 0)
        return usage_error(c, "seed must be a whole number >= 0, got '%s'", sd);
    json_t *b = json_object();
    int bad = !b;
    if (fp && !bad)
        bad = json_object_set_new(b, "fail_phase", json_string(fp)) != 0;
    if (sp && !bad)
        bad = json_object_set_new(b, "speed",
                                  speed == (double)(int64_t)speed ? json_integer((json_int_t)speed)
                                                                  : json_real(speed)) != 0;
    if (sd && !bad)
        bad = json_object_set_new(b, "seed", json_integer((json_int_t)seed)) != 0;
    if (bad) {
        json_decref(b);
        fputs("dumont: out of memory\n", stderr);
        return EXIT_FAIL;
    }
    *ret = b;
    return 0;
}

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0)
        ;
}

/* Prints the phases from index done on that have finished, in order (CLI-F4). */
static size_t print_finished(const json_t *phases, size_t done)
{
    for (; done < json_array_size(phases); done++) {
        const json_t *p = json_array_get(phases, done);
        const char *st = out_json_str(p, "status", "");
        if (strcmp(st, "ok") != 0 && strcmp(st, "failed") != 0 && strcmp(st, "skipped") != 0)
            break;
        out_phase_line(p, stdout);
    }
    fflush(stdout);
    return done;
}

/* The end of a followed failover: summary, exit status (CLI-F4). With quiet, the
 * caller prints what comes next (test-real's report). */
static int follow_end(fo_ctx *c, const client_resp *r, const char *id, int quiet)
{
    char total[32];
    int ok = strcmp(out_json_str(r->json, "state", ""), "completed") == 0;
    out_duration(out_json_int(r->json, "total_time_ms"), total, sizeof total);
    if (c->a.json && !quiet)
        subcmd_print_json(r);
    else if (!c->a.json)
        printf("%s in %s\n", ok ? "completed" : "failed", total);
    if (!ok)
        fprintf(stderr, "dumont: failover %s failed: %s\n", id,
                out_json_str(r->json, "reason", "no reason given"));
    return ok ? 0 : EXIT_FAIL;
}

static int follow(fo_ctx *c, const char *id, int quiet)
{
    char path[CLIENT_PATH_MAX];
    size_t done = 0;
    snprintf(path, sizeof path, API "/status/%s", id);
    for (;;) {
        client_resp r;
        if (call(c, "GET", path, NULL, &r) != 0)
            return EXIT_FAIL;
        if (!c->a.json && !c->a.quiet) /* CLI-SC4 */
            done = print_finished(json_object_get(r.json, "phases"), done);
        const char *st = out_json_str(r.json, "state", "");
        if (!*st) {
            fprintf(stderr, "dumont: the server's status of %s has no state\n", id);
            client_resp_done(&r);
            return EXIT_FAIL;
        }
        if (strcmp(st, "completed") == 0 || strcmp(st, "failed") == 0) {
            int rc = follow_end(c, &r, id, quiet);
            client_resp_done(&r);
            return rc;
        }
        client_resp_done(&r);
        sleep_ms(FOLLOW_POLL_MS);
    }
}

/* POSTs body to path, prints the new failover's id (CLI-F3) or the answer
 * (--json without --wait), and copies the id into id. */
static int start_failover(fo_ctx *c, const char *path, const json_t *body, char *id, size_t cap)
{
    client_resp r;
    int rc = call(c, "POST", path, body, &r);
    if (rc)
        return rc;
    const char *fid = out_json_str(r.json, "failover_id", "");
    if (!valid_id(fid)) {
        client_resp_done(&r);
        return subcmd_fail("the server's answer has no usable failover_id");
    }
    snprintf(id, cap, "%s", fid);
    if (c->a.json && !c->a.wait)
        subcmd_print_json(&r);
    if (!c->a.json)
        printf("%s\n", id); /* CLI-F3 */
    fflush(stdout);
    if (!c->a.wait && !c->a.json && !c->a.quiet && isatty(STDERR_FILENO))
        fprintf(stderr, "follow it with: dumont failover status %s  (or %s --wait)\n", id,
                c->cmd->name);
    client_resp_done(&r);
    return 0;
}

static int run_simulate(fo_ctx *c)
{
    int64_t gpu;
    json_t *body = NULL;
    char path[128], id[FO_ID_MAX];
    int rc = gpu_arg(c, &gpu);
    if (rc || (rc = simulate_body(c, &body)) != 0)
        goto out;
    snprintf(path, sizeof path, API "/simulate/%lld", (long long)gpu);
    if ((rc = start_failover(c, path, body, id, sizeof id)) != 0)
        goto out;
    if (c->a.wait)
        rc = follow(c, id, 0);
out:
    json_decref(body);
    return rc;
}

/* ---- status, report, list ------------------------------------------------ */

/* GET API<prefix><id> for the id argument, shown by show. */
static int show_by_id(fo_ctx *c, const char *prefix, void (*show)(const json_t *, FILE *))
{
    const char *id = NULL;
    char path[CLIENT_PATH_MAX];
    int rc = id_arg(c, &id);
    if (rc)
        return rc;
    snprintf(path, sizeof path, API "%s%s", prefix, id);
    return get_and_show(c, path, show);
}

static const char *int_text(const json_t *o, const char *key, char *buf, size_t len)
{
    int64_t v = out_json_int(o, key);
    snprintf(buf, len, v < 0 ? "-" : "%lld", (long long)v);
    return buf;
}

static const char *bytes_text(int64_t n, char *buf, size_t len)
{
    if (n < 0)
        snprintf(buf, len, "-");
    else if (n < 1024 * 1024)
        snprintf(buf, len, "%lld B", (long long)n);
    else
        snprintf(buf, len, "%.1f MiB", (double)n / (1024.0 * 1024.0));
    return buf;
}

static const char *yes_no_null(const json_t *v)
{
    return json_is_true(v) ? "yes" : json_is_false(v) ? "no" : "-";
}

/* CLI-F5: what a real failover adds to the status. */
static void show_real(const json_t *fo, FILE *out)
{
    char a[24], b[24], n[24], e[24], sz[32], d[4][32];
    fprintf(out, "\n%-16s %s -> %s\n", "instances", int_text(fo, "old_instance_id", a, sizeof a),
            int_text(fo, "new_instance_id", b, sizeof b));
    fprintf(out, "%-16s %s\n", "workload", out_json_str(fo, "workload_id", "-"));
    fprintf(out, "%-16s %s%s\n", "trigger", out_json_str(fo, "trigger", "-"),
            json_is_true(json_object_get(fo, "test")) ? " (test: the original keeps serving)" : "");
    fprintf(out, "%-16s %s\n", "attempts", int_text(fo, "attempts", n, sizeof n));
    fprintf(out, "%-16s %s\n", "epoch", int_text(fo, "epoch", e, sizeof e));
    out_duration(out_json_int(fo, "snapshot_creation_time_ms"), d[0], sizeof d[0]);
    fprintf(out, "%-16s %s  %s, made in %s, %s in %s\n", "snapshot",
            out_json_str(fo, "snapshot_id", "-"),
            bytes_text(out_json_int(fo, "snapshot_size_bytes"), sz, sizeof sz), d[0],
            out_json_str(fo, "snapshot_compression", "-"),
            out_json_str(fo, "snapshot_storage", "-"));
    out_duration(out_json_int(fo, "restore_download_time_ms"), d[1], sizeof d[1]);
    out_duration(out_json_int(fo, "restore_decompress_time_ms"), d[2], sizeof d[2]);
    fprintf(out, "%-16s download %s, decompress %s, from the %s copy\n", "restore", d[1], d[2],
            out_json_str(fo, "restore_source", "-"));
    out_duration(out_json_int(fo, "inference_ready_time_ms"), d[3], sizeof d[3]);
    fprintf(out, "%-16s model %s, ready in %s, answered: %s\n", "inference test",
            out_json_str(fo, "inference_model", "-"), d[3],
            yes_no_null(json_object_get(fo, "inference_success")));
}

static void show_status(const json_t *fo, FILE *out)
{
    out_status(fo, out);
    if (strcmp(out_json_str(fo, "kind", ""), "real") == 0)
        show_real(fo, out);
}

static int run_status(fo_ctx *c)
{
    return show_by_id(c, "/status/", show_status);
}

static int run_report(fo_ctx *c)
{
    static const char *const q_keys[] = {"kind", "since", "until", "gpu_instance_id", NULL};
    char path[CLIENT_PATH_MAX] = API "/report";
    const char *kind = kv_get(&c->a.kv, "kind");
    int rc;
    if ((rc = check_kind(c, 1)) || (rc = check_int(c, "gpu_instance_id", 1, INT64_MAX)))
        return rc;
    if (kind && strcmp(kind, "all") == 0) {
        kind = NULL;
        static const char *const q_all[] = {"since", "until", "gpu_instance_id", NULL};
        rc = build_query(c, q_all, path + strlen(path), sizeof path - strlen(path));
    } else {
        rc = build_query(c, q_keys, path + strlen(path), sizeof path - strlen(path));
    }
    if (rc)
        return rc;
    client_resp r;
    if (call(c, "GET", path, NULL, &r) != 0)
        return EXIT_FAIL;
    if (c->a.json)
        subcmd_print_json(&r);
    else
        out_report(r.json, kind, stdout);
    client_resp_done(&r);
    return 0;
}

static int run_list(fo_ctx *c)
{
    static const char *const q_keys[] = {"gpu_instance_id", "kind", "limit", "offset", NULL};
    char path[CLIENT_PATH_MAX] = API "/list";
    int rc;
    if ((rc = check_kind(c, 0)) || (rc = check_int(c, "gpu_instance_id", 1, INT64_MAX)) ||
        (rc = check_int(c, "limit", 1, 1000)) || (rc = check_int(c, "offset", 0, INT64_MAX)))
        return rc;
    if ((rc = build_query(c, q_keys, path + strlen(path), sizeof path - strlen(path))))
        return rc;
    return get_and_show(c, path, out_list);
}

/* ---- test-real ----------------------------------------------------------- */

/* {"model", "keep"} from the arguments, checked. */
static int test_real_body(fo_ctx *c, json_t **ret)
{
    const char *model = kv_get(&c->a.kv, "model"), *keep = kv_get(&c->a.kv, "keep");
    int k = 0;
    *ret = NULL;
    if (keep && parse_bool(keep, &k) != 0)
        return usage_error(c, "keep must be true or false, got '%s'", keep);
    if (model && (!*model || strlen(model) >= 128))
        return usage_error(c, "model must be 1 to 127 characters");
    json_t *b = json_object();
    if (!b || (model && json_object_set_new(b, "model", json_string(model)) != 0) ||
        (keep && json_object_set_new(b, "keep", json_boolean(k)) != 0)) {
        json_decref(b);
        return usage_error(c, "model must be UTF-8 text");
    }
    *ret = b;
    return 0;
}

static int run_test_real(fo_ctx *c)
{
    int64_t gpu;
    json_t *body = NULL;
    char path[CLIENT_PATH_MAX], id[FO_ID_MAX];
    int rc = gpu_arg(c, &gpu);
    if (rc || (rc = test_real_body(c, &body)) != 0)
        goto out;
    snprintf(path, sizeof path, API "/test-real/%lld", (long long)gpu);
    if ((rc = start_failover(c, path, body, id, sizeof id)) != 0 || !c->a.wait)
        goto out;
    rc = follow(c, id, 1);
    snprintf(path, sizeof path, API "/test-real/report/%s", id); /* CLI-F4 */
    int rc2 = get_and_show(c, path, out_object);
    if (rc == 0)
        rc = rc2;
out:
    json_decref(body);
    return rc;
}

static int run_test_real_report(fo_ctx *c)
{
    return show_by_id(c, "/test-real/report/", out_object);
}

static void out_history(const json_t *h, FILE *out)
{
    static const char *const hdr[] = {"FAILOVER", "GPU",     "SUCCESS",   "TOTAL",
                                      "SNAPSHOT", "RESTORE", "INFERENCE", "MODEL"};
    const json_t *arr = json_object_get(h, "events");
    if (json_array_size(arr) == 0) {
        fputs("no real failover tests\n", out);
        return;
    }
    out_table *t = out_table_new(8, hdr);
    if (!t)
        return;
    for (int i = 1; i < 7; i++)
        if (i != 2)
            out_table_align_right(t, i);
    size_t i;
    const json_t *e;
    json_array_foreach(arr, i, e)
    {
        char gpu[24], tot[32], sz[32], rs[32], inf[32];
        out_duration(out_json_int(e, "total_time_ms"), tot, sizeof tot);
        out_duration(out_json_int(e, "restore_time_ms"), rs, sizeof rs);
        out_duration(out_json_int(e, "inference_ready_time_ms"), inf, sizeof inf);
        const char *row[] = {out_json_str(e, "failover_id", "-"),
                             int_text(e, "gpu_instance_id", gpu, sizeof gpu),
                             yes_no_null(json_object_get(e, "success")),
                             tot,
                             bytes_text(out_json_int(e, "snapshot_size_bytes"), sz, sizeof sz),
                             rs,
                             inf,
                             out_json_str(e, "inference_model", "-")};
        if (out_table_add(t, row) != 0)
            break;
    }
    out_table_print(t, out);
    out_table_free(t);
    fprintf(out, "(%zu of %lld tests)\n", json_array_size(arr),
            (long long)out_json_int(h, "total"));
}

static int run_test_real_history(fo_ctx *c)
{
    static const char *const q_keys[] = {"since", "until", "limit", "gpu_instance_id", NULL};
    char path[CLIENT_PATH_MAX] = API "/test-real/history";
    int rc = check_int(c, "limit", 1, 1000);
    if (rc || (rc = check_int(c, "gpu_instance_id", 1, INT64_MAX)) ||
        (rc = build_query(c, q_keys, path + strlen(path), sizeof path - strlen(path))))
        return rc;
    return get_and_show(c, path, out_history);
}

/* ---- the table of subcommands -------------------------------------------- */

static const char *const k_setup[] = {"gpu_instance_id", "standby_id", "gcp_zone", NULL};
static const char *const k_sim[] = {"gpu_instance_id", "fail_phase", "speed", "seed", NULL};
static const char *const k_none[] = {NULL};
static const char *const k_report[] = {"kind", "since", "until", "gpu_instance_id", NULL};
static const char *const k_list[] = {"gpu_instance_id", "kind", "limit", "offset", NULL};
static const char *const k_real[] = {"gpu_instance_id", "model", "keep", NULL};
static const char *const k_hist[] = {"since", "until", "limit", "gpu_instance_id", NULL};

static const fo_cmd commands[] = {
    {{"test-setup",
      "usage: dumont failover test-setup gpu_instance_id=N [standby_id=S] [gcp_zone=Z] [--json]\n"
      "\nCreates or replaces the mock association of GPU instance N with a CPU standby,\n"
      "which `dumont failover simulate N` needs.\n",
      k_setup, 0, 1, 0},
     run_test_setup},
    {{"simulate",
      "usage: dumont failover simulate GPU_ID [fail_phase=PHASE] [speed=X] [seed=N] [--wait]\n"
      "                                [--json]\n"
      "\nStarts a simulated failover of GPU_ID (no real resources) and prints its id.\n"
      "  fail_phase=PHASE  make that phase fail (detection, standby_activation, gpu_search,\n"
      "                    provisioning, ssh_ready, restore, inference)\n"
      "  speed=X           simulated seconds per wall second (server default: 200)\n"
      "  seed=N            make the drawn phase durations reproducible\n"
      "  --wait            follow it to the end, printing each phase as it finishes;\n"
      "                    exit 0 if it completed, 1 if it failed\n",
      k_sim, 0, 1, SUBCMD_F_WAIT},
     run_simulate},
    {{"status",
      "usage: dumont failover status FAILOVER_ID [--json]\n"
      "\nShows one failover: state, success, reason, total time, then each phase with\n"
      "its status (ok, failed, skipped, running, pending), start offset, duration and\n"
      "note. A real failover also shows its old and new instance, workload, trigger,\n"
      "attempts, epoch, the snapshot it restored and the inference test.\n",
      k_none, 1, 1, 0},
     run_status},
    {{"report",
      "usage: dumont failover report [kind=simulated|real|all] [since=T] [until=T]\n"
      "                              [gpu_instance_id=N] [--json]\n"
      "\nMTTR (mean, p50, p95, max; successful failovers only), success rate and totals,\n"
      "then per-phase statistics. T is ISO-8601 (2026-11-28T12:00:00Z), epoch ms, or an\n"
      "age like 24h or 7d.\n",
      k_report, 0, 0, 0},
     run_report},
    {{"list",
      "usage: dumont failover list [gpu_instance_id=N] [kind=simulated|real] [limit=N]\n"
      "                            [offset=N] [--json]\n"
      "\nLists failovers, newest first (limit 1..1000, server default 50);\n"
      "gpu_instance_id=N: those of instance N (it was the old instance).\n",
      k_list, 0, 0, 0},
     run_list},
    {{"test-real",
      "usage: dumont failover test-real GPU_ID [model=M] [keep=true|false] [--wait] [--json]\n"
      "\nReal failover test of instance GPU_ID: takes a fresh snapshot, provisions a new\n"
      "instance, restores it, starts the model and runs the inference test. The original\n"
      "keeps running and serving. Prints the test's id (real-...).\n"
      "  model=M     the model the inference test asks (default: the workload's)\n"
      "  keep=true   keep the test instance afterwards (default: destroyed)\n"
      "  --wait      follow it to the end, then print its FailoverTestEvent; exit 0 if\n"
      "              it succeeded, 1 if it failed\n",
      k_real, 0, 1, SUBCMD_F_WAIT},
     run_test_real},
    {{"test-real-report",
      "usage: dumont failover test-real-report ID [--json]\n"
      "\nShows one real failover test (a FailoverTestEvent): snapshot size, creation\n"
      "time, compression and storage, restore (download, decompress), GPU search,\n"
      "provisioning and ready wait, inference model, time and result. A value that\n"
      "did not happen is '-' (null in --json).\n",
      k_none, 1, 1, 0},
     run_test_real_report},
    {{"test-real-history",
      "usage: dumont failover test-real-history [since=T] [until=T] [limit=N]\n"
      "                                         [gpu_instance_id=N] [--json]\n"
      "\nAll real failover tests, newest first (limit 1..1000, default 50). T is\n"
      "ISO-8601, epoch ms, or an age like 24h or 7d.\n",
      k_hist, 0, 0, 0},
     run_test_real_history},
};

static const subcmd_set failover_set = {
    .prog = "failover",
    .usage = failover_usage,
    .flags = SUBCMD_F_WAIT,
    .cmds = commands,
    .ncmds = sizeof commands / sizeof commands[0],
    .stride = sizeof commands[0],
};

int cmd_failover(dm_config *cfg, int argc, char **argv)
{
    fo_ctx c;
    int rc = subcmd_start(&c, &failover_set, cfg, argc, argv);
    if (rc == SUBCMD_RUN) {
        rc = ((const fo_cmd *)c.cmd)->run(&c);
        if (fflush(stdout) != 0 && rc == 0)
            rc = subcmd_fail("cannot write the output");
    }
    subcmd_done(&c);
    return rc;
}

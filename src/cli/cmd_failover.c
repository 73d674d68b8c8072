/* `dumont failover ...`: the failover client commands (DESIGN.md §2), each a
 * thin client of one REST endpoint (docs/api.md).
 *
 * Arguments: flags (--json, --help, --wait) may stand anywhere, before or
 * after the subcommand and its arguments; `key=value` words go through
 * kv_parse(); the other words are positional. A subcommand declares which
 * keys it takes and how many positional words, and every value is checked
 * here before anything is sent, so a bad argument never reaches the server.
 *
 * F1: exit status 0 success, 1 failure (one line "dumont: <reason>" on
 *     stderr), 2 usage error (one line with the reason, then the usage, on
 *     stderr). --help prints the usage on stdout and exits 0, whatever else
 *     the line holds.
 * F2: --json prints the API's answer exactly as received (re-indented only,
 *     client_json_pretty), on stdout, also for an error answer; the readable
 *     output never goes to stdout together with it.
 * F3: `simulate` prints the new failover id alone on the first line of
 *     stdout, so `id=$(dumont failover simulate 12345)` works; the hint how to
 *     follow it goes to stderr, and only when stderr is a terminal.
 * F4: `simulate --wait` polls the status every FOLLOW_POLL_MS and prints each
 *     phase once, in order, as it finishes; exit 0 when the failover
 *     completed, 1 when it failed (the reason on stderr). */
#include "cli/client.h"
#include "cli/commands.h"
#include "cli/output.h"

#include "failover/model.h"
#include "util/error.h"
#include "util/parse.h"
#include "util/secret.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define POS_MAX        4
#define FOLLOW_POLL_MS 200
#define API            "/api/standby/failover"
#define EXIT_FAIL      1
#define EXIT_USAGE     2

typedef struct {
    int json, help, wait;
    const char *sub;
    int npos;
    const char *pos[POS_MAX];
    kv_list kv;
} fo_args;

typedef struct fo_cmd fo_cmd;

typedef struct {
    dm_config *cfg;
    dm_client *cl; /* made on first use: --help and usage errors need none */
    const fo_cmd *cmd;
    fo_args a;
} fo_ctx;

struct fo_cmd {
    const char *name;
    const char *usage;
    const char *const *keys; /* allowed key=value keys, NULL-terminated */
    int min_pos, max_pos;
    int wait_ok;
    int (*run)(fo_ctx *c);
};

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
    "  test-real GPU_ID [model=M]        real failover test (later milestone)\n"
    "  test-real-report ID               one real failover test\n"
    "  test-real-history [since=T] [until=T]   all real failover tests\n"
    "\n"
    "Every subcommand takes --json (print the API's JSON) and --help.\n"
    "The server is found at $DUMONT_URL (default http://127.0.0.1:8700), with the\n"
    "token from $DUMONT_TOKEN or $DUMONT_HOME/token.\n";

/* ---- argument parsing -------------------------------------------------- */

static int parse_flag(fo_args *a, const char *s, char *err, size_t errlen)
{
    if (strcmp(s, "--json") == 0)
        a->json = 1;
    else if (strcmp(s, "--help") == 0 || strcmp(s, "-h") == 0)
        a->help = 1;
    else if (strcmp(s, "--wait") == 0)
        a->wait = 1;
    else
        return dm_fail(err, errlen, DM_E_INVALID, "unknown option '%s'", s);
    return 0;
}

/* Splits argv (after "failover") into flags, subcommand, positional words and
 * key=value words. Records the first problem in err but reads on, so that a
 * --help later on the line still counts (F1). */
static int parse_args(int argc, char **argv, fo_args *a, char *err, size_t errlen)
{
    char *kvw[KV_MAX + 1];
    int nkv = 0, rc = 0, dashdash = 0;
    for (int i = 1; i < argc; i++) {
        const char *s = argv[i];
        int r = 0;
        if (!dashdash && strcmp(s, "--") == 0)
            dashdash = 1;
        else if (!dashdash && s[0] == '-' && s[1])
            r = parse_flag(a, s, err, errlen);
        else if (!a->sub)
            a->sub = s;
        else if (strchr(s, '=') && nkv <= KV_MAX)
            kvw[nkv++] = argv[i];
        else if (!strchr(s, '=') && a->npos < POS_MAX)
            a->pos[a->npos++] = s;
        else
            r = dm_fail(err, errlen, DM_E_INVALID, "too many arguments");
        if (r && !rc) {
            rc = r;
            err = NULL; /* keep the first message */
            errlen = 0;
        }
    }
    if (kv_parse(&a->kv, nkv, kvw, err, errlen) != 0 && !rc)
        rc = DM_E_INVALID;
    return rc;
}

static int usage_error(const fo_ctx *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static int usage_error(const fo_ctx *c, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (c->cmd)
        fprintf(stderr, "dumont failover %s: %s\n\n%s", c->cmd->name, msg, c->cmd->usage);
    else
        fprintf(stderr, "dumont failover: %s\n\n%s", msg, failover_usage);
    return EXIT_USAGE;
}

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

static int client_get(fo_ctx *c)
{
    char token[SECRET_TOKEN_MAX], terr[512] = "";
    if (c->cl)
        return 0;
    int have = cfg_client_token(c->cfg, token, sizeof token, terr, sizeof terr) == 0;
    int rc = client_new(c->cfg->url, have ? token : NULL, terr, &c->cl);
    explicit_bzero(token, sizeof token);
    if (rc) {
        fprintf(stderr, "dumont: %s\n", dm_strerror(rc));
        return EXIT_FAIL;
    }
    return 0;
}

/* One request. Returns 0, or EXIT_FAIL after saying why (F1, F2). On 0 the
 * caller owns *r; on failure *r is already released. */
static int call(fo_ctx *c, const char *method, const char *path, const json_t *body, client_resp *r)
{
    char err[1024];
    if (client_get(c) != 0)
        return EXIT_FAIL;
    int rc = client_call(c->cl, method, path, body, r, err, sizeof err);
    if (rc == 0)
        return 0;
    if (c->a.json && r->json)
        client_json_pretty(r->body, r->body_len, stdout);
    fprintf(stderr, "dumont: %s\n", err);
    client_resp_done(r);
    return EXIT_FAIL;
}

/* GET path, then --json or the renderer (F2). */
static int get_and_show(fo_ctx *c, const char *path, void (*show)(const json_t *, FILE *))
{
    client_resp r;
    if (call(c, "GET", path, NULL, &r) != 0)
        return EXIT_FAIL;
    if (c->a.json)
        client_json_pretty(r.body, r.body_len, stdout);
    else
        show(r.json, stdout);
    client_resp_done(&r);
    return 0;
}

/* Copies each allowed key=value given into a query string (validated first). */
static int build_query(fo_ctx *c, const char *const *keys, char *q, size_t cap)
{
    q[0] = '\0';
    for (const char *const *k = keys; *k; k++) {
        const char *v = kv_get(&c->a.kv, *k);
        if (v && client_query_add(q, cap, *k, v) != 0)
            return usage_error(c, "arguments too long");
    }
    return 0;
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
    const char *v = kv_get(&c->a.kv, key);
    int64_t n;
    if (v && parse_i64(v, min, max, &n) != 0)
        return usage_error(c, "%s must be a whole number from %lld to %lld, got '%s'", key,
                           (long long)min, (long long)max, v);
    return 0;
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

/* Prints the phases from index done on that have finished, in order (F4). */
static size_t print_finished(const json_t *phases, size_t done)
{
    for (; done < json_array_size(phases); done++) {
        const json_t *p = json_array_get(phases, done);
        const char *st = out_json_str(p, "status", "");
        if (strcmp(st, "ok") != 0 && strcmp(st, "failed") != 0)
            break;
        out_phase_line(p, stdout);
    }
    fflush(stdout);
    return done;
}

/* The end of a followed failover: summary, exit status (F4). */
static int follow_end(fo_ctx *c, const client_resp *r, const char *id)
{
    char total[32];
    int ok = strcmp(out_json_str(r->json, "state", ""), "completed") == 0;
    out_duration(out_json_int(r->json, "total_time_ms"), total, sizeof total);
    if (c->a.json)
        client_json_pretty(r->body, r->body_len, stdout);
    else
        printf("%s in %s\n", ok ? "completed" : "failed", total);
    if (!ok)
        fprintf(stderr, "dumont: failover %s failed: %s\n", id,
                out_json_str(r->json, "reason", "no reason given"));
    return ok ? 0 : EXIT_FAIL;
}

static int follow(fo_ctx *c, const char *id)
{
    char path[CLIENT_PATH_MAX];
    size_t done = 0;
    snprintf(path, sizeof path, API "/status/%s", id);
    for (;;) {
        client_resp r;
        if (call(c, "GET", path, NULL, &r) != 0)
            return EXIT_FAIL;
        if (!c->a.json)
            done = print_finished(json_object_get(r.json, "phases"), done);
        const char *st = out_json_str(r.json, "state", "");
        if (!*st) {
            fprintf(stderr, "dumont: the server's status of %s has no state\n", id);
            client_resp_done(&r);
            return EXIT_FAIL;
        }
        if (strcmp(st, "completed") == 0 || strcmp(st, "failed") == 0) {
            int rc = follow_end(c, &r, id);
            client_resp_done(&r);
            return rc;
        }
        client_resp_done(&r);
        sleep_ms(FOLLOW_POLL_MS);
    }
}

static int run_simulate(fo_ctx *c)
{
    int64_t gpu;
    json_t *body = NULL;
    client_resp r = {0};
    char path[128], id[FO_ID_MAX];
    int rc = gpu_arg(c, &gpu);
    if (rc || (rc = simulate_body(c, &body)) != 0)
        goto out;
    snprintf(path, sizeof path, API "/simulate/%lld", (long long)gpu);
    if ((rc = call(c, "POST", path, body, &r)) != 0)
        goto out;
    const char *fid = out_json_str(r.json, "failover_id", "");
    if (!valid_id(fid)) {
        fputs("dumont: the server's answer has no usable failover_id\n", stderr);
        rc = EXIT_FAIL;
        goto out;
    }
    snprintf(id, sizeof id, "%s", fid);
    if (c->a.json && !c->a.wait)
        client_json_pretty(r.body, r.body_len, stdout);
    if (!c->a.json)
        printf("%s\n", id); /* F3 */
    fflush(stdout);
    if (!c->a.wait && !c->a.json && isatty(STDERR_FILENO))
        fprintf(stderr, "follow it with: dumont failover status %s  (or simulate --wait)\n", id);
    if (c->a.wait)
        rc = follow(c, id);
out:
    client_resp_done(&r);
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

static int run_status(fo_ctx *c)
{
    return show_by_id(c, "/status/", out_status);
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
        client_json_pretty(r.body, r.body_len, stdout);
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

/* ---- test-real (later milestone: the server answers 501 for now) -------- */

static int run_test_real(fo_ctx *c)
{
    int64_t gpu;
    char path[128];
    int rc = gpu_arg(c, &gpu);
    if (rc)
        return rc;
    const char *model = kv_get(&c->a.kv, "model");
    json_t *body = model ? json_pack("{s:s}", "model", model) : json_object();
    if (!body)
        return usage_error(c, "model must be UTF-8 text");
    snprintf(path, sizeof path, API "/test-real/%lld", (long long)gpu);
    client_resp r;
    rc = call(c, "POST", path, body, &r);
    json_decref(body);
    if (rc)
        return rc;
    if (c->a.json)
        client_json_pretty(r.body, r.body_len, stdout);
    else
        out_object(r.json, stdout);
    client_resp_done(&r);
    return 0;
}

static int run_test_real_report(fo_ctx *c)
{
    return show_by_id(c, "/test-real/report/", out_object);
}

static int run_test_real_history(fo_ctx *c)
{
    static const char *const q_keys[] = {"since", "until", "limit", NULL};
    char path[CLIENT_PATH_MAX] = API "/test-real/history";
    int rc = check_int(c, "limit", 1, 1000);
    if (rc || (rc = build_query(c, q_keys, path + strlen(path), sizeof path - strlen(path))))
        return rc;
    return get_and_show(c, path, out_object);
}

/* ---- the table of subcommands -------------------------------------------- */

static const char *const k_setup[] = {"gpu_instance_id", "standby_id", "gcp_zone", NULL};
static const char *const k_sim[] = {"gpu_instance_id", "fail_phase", "speed", "seed", NULL};
static const char *const k_none[] = {NULL};
static const char *const k_report[] = {"kind", "since", "until", "gpu_instance_id", NULL};
static const char *const k_list[] = {"gpu_instance_id", "kind", "limit", "offset", NULL};
static const char *const k_real[] = {"gpu_instance_id", "model", NULL};
static const char *const k_hist[] = {"since", "until", "limit", NULL};

static const fo_cmd commands[] = {
    {"test-setup",
     "usage: dumont failover test-setup gpu_instance_id=N [standby_id=S] [gcp_zone=Z] [--json]\n"
     "\nCreates or replaces the mock association of GPU instance N with a CPU standby,\n"
     "which `dumont failover simulate N` needs.\n",
     k_setup, 0, 1, 0, run_test_setup},
    {"simulate",
     "usage: dumont failover simulate GPU_ID [fail_phase=PHASE] [speed=X] [seed=N] [--wait]\n"
     "                                [--json]\n"
     "\nStarts a simulated failover of GPU_ID (no real resources) and prints its id.\n"
     "  fail_phase=PHASE  make that phase fail (detection, standby_activation, gpu_search,\n"
     "                    provisioning, ssh_ready, restore, inference)\n"
     "  speed=X           simulated seconds per wall second (server default: 200)\n"
     "  seed=N            make the drawn phase durations reproducible\n"
     "  --wait            follow it to the end, printing each phase as it finishes;\n"
     "                    exit 0 if it completed, 1 if it failed\n",
     k_sim, 0, 1, 1, run_simulate},
    {"status",
     "usage: dumont failover status FAILOVER_ID [--json]\n"
     "\nShows one failover: state, success, reason, total time, then each phase with\n"
     "its status, start offset, duration and note.\n",
     k_none, 1, 1, 0, run_status},
    {"report",
     "usage: dumont failover report [kind=simulated|real|all] [since=T] [until=T]\n"
     "                              [gpu_instance_id=N] [--json]\n"
     "\nMTTR (mean, p50, p95, max; successful failovers only), success rate and totals,\n"
     "then per-phase statistics. T is ISO-8601 (2026-11-28T12:00:00Z) or epoch ms.\n",
     k_report, 0, 0, 0, run_report},
    {"list",
     "usage: dumont failover list [gpu_instance_id=N] [kind=simulated|real] [limit=N]\n"
     "                            [offset=N] [--json]\n"
     "\nLists failovers, newest first (limit 1..1000, server default 50).\n",
     k_list, 0, 0, 0, run_list},
    {"test-real",
     "usage: dumont failover test-real GPU_ID [model=M] [--json]\n"
     "\nReal failover test: real snapshot, real new instance, original kept.\n",
     k_real, 0, 1, 0, run_test_real},
    {"test-real-report",
     "usage: dumont failover test-real-report ID [--json]\n"
     "\nShows one real failover test (a FailoverTestEvent).\n",
     k_none, 1, 1, 0, run_test_real_report},
    {"test-real-history",
     "usage: dumont failover test-real-history [since=T] [until=T] [limit=N] [--json]\n"
     "\nAll real failover tests, newest first.\n",
     k_hist, 0, 0, 0, run_test_real_history},
};

static const fo_cmd *find_cmd(const char *name)
{
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        if (strcmp(commands[i].name, name) == 0)
            return &commands[i];
    return NULL;
}

/* Checks what parse_args could not: counts, keys, --wait. */
static int check_args(fo_ctx *c, int parse_rc, const char *perr)
{
    char err[256];
    const fo_cmd *cmd = c->cmd;
    if (parse_rc)
        return usage_error(c, "%s", perr);
    if (c->a.npos < cmd->min_pos)
        return usage_error(c, "missing argument");
    if (c->a.npos > cmd->max_pos)
        return usage_error(c, "unexpected argument '%s'", c->a.pos[cmd->max_pos]);
    if (kv_check_keys(&c->a.kv, cmd->keys, err, sizeof err) != 0)
        return usage_error(c, "%s", err);
    if (c->a.wait && !cmd->wait_ok)
        return usage_error(c, "--wait is only for simulate");
    return 0;
}

int cmd_failover(dm_config *cfg, int argc, char **argv)
{
    fo_ctx c = {.cfg = cfg};
    char perr[256] = "";
    int prc = parse_args(argc, argv, &c.a, perr, sizeof perr), rc;
    if (c.a.sub && !(c.cmd = find_cmd(c.a.sub))) {
        rc = usage_error(&c, "unknown subcommand '%s'", c.a.sub);
        goto out;
    }
    if (c.a.help) {
        fputs(c.cmd ? c.cmd->usage : failover_usage, stdout);
        rc = 0;
        goto out;
    }
    if (!c.cmd) {
        rc = prc ? usage_error(&c, "%s", perr) : usage_error(&c, "missing subcommand");
        goto out;
    }
    if ((rc = check_args(&c, prc, perr)) != 0)
        goto out;
    rc = c.cmd->run(&c);
    if (fflush(stdout) != 0 && rc == 0) {
        fputs("dumont: cannot write the output\n", stderr);
        rc = EXIT_FAIL;
    }
out:
    kv_done(&c.a.kv);
    client_free(c.cl);
    return rc;
}

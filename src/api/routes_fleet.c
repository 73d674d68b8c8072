/* Real-failover endpoints (routes_fleet.h; docs/api.md "Real failovers").
 *
 * Each handler validates its whole input first (API-A1 of routes.c): the body is
 * an object of known keys only, every field has its type, range and length
 * checked, and only then the orchestrator (failover/orchestrator.h) is
 * called. Its DM_E_* codes become statuses through api_error_from():
 * NOT_FOUND 404, CONFLICT 409, BUSY 503, UNAVAILABLE 503 (no provider).
 *
 * API-RF1: nothing reaches the orchestrator or the database before the request
 *      was fully validated; a bad request changes nothing.
 * API-RF2: workspace_from is an absolute path to a directory that exists on the
 *      server (the CLI resolves relative paths with realpath first: the
 *      server's working directory is not the user's).
 * API-RF3: test-real report and history show test-real failovers only (kind
 *      real and test); another id is a 404, as if it did not exist.
 * API-RF4: history asks the database for test-real failovers only (filter
 *      `test`), newest first, and answers at most `limit` (<= 1000) events
 *      with the total that match.
 * API-RF5: snapshot_every 0 is "never" (the agent's --snapshot-every 0); an
 *      absent one is the orchestrator's default (30 s). */
#include "api/routes_fleet.h"

#include "api/render.h"
#include "db/db_fleet.h"
#include "util/clock.h"
#include "util/error.h"
#include "util/parse.h"

#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define INSTANCE_ID_MAX ((int64_t)1 << 53) /* exact in JSON numbers everywhere */
#define NOTICE_MAX_MS   (3600 * 1000)      /* a preemption notice of at most an hour */
#define SNAP_EVERY_MAX  (7 * 86400 * 1000LL)
#define HISTORY_DEFAULT 50
#define HISTORY_LIMIT   1000
#define NAME_MAX_LEN    64
#define REGION_MAX_LEN  64
#define MODEL_MAX_LEN   128

/* ---- validation helpers ------------------------------------------------ */

/* An optional integer in [min, max]; *ret keeps its value if absent. */
static int int_field(json_t *o, const char *key, int64_t min, int64_t max, int64_t *ret,
                     api_response *resp)
{
    json_t *v = json_object_get(o, key);
    if (!v || json_is_null(v))
        return 0;
    if (!json_is_integer(v) || json_integer_value(v) < min || json_integer_value(v) > max)
        return api_error(resp, 400, "bad_request", "'%s' must be an integer from %lld to %lld", key,
                         (long long)min, (long long)max),
               -1;
    *ret = json_integer_value(v);
    return 0;
}

static int num_field(json_t *o, const char *key, double min, double max, double *ret,
                     api_response *resp)
{
    json_t *v = json_object_get(o, key);
    if (!v || json_is_null(v))
        return 0;
    double d = json_number_value(v);
    if (!json_is_number(v) || !(d >= min && d <= max))
        return api_error(resp, 400, "bad_request", "'%s' must be a number from %g to %g", key, min,
                         max),
               -1;
    *ret = d;
    return 0;
}

static int bool_field(json_t *o, const char *key, int *ret, api_response *resp)
{
    json_t *v = json_object_get(o, key);
    if (!v || json_is_null(v))
        return 0;
    if (!json_is_boolean(v))
        return api_error(resp, 400, "bad_request", "'%s' must be true or false", key), -1;
    *ret = json_is_true(v);
    return 0;
}

/* A duration: a string "500ms", "30s", "2m" (parse_duration_ms) or an
 * integer number of milliseconds, in [min, max]. */
static int duration_field(json_t *o, const char *key, int64_t min, int64_t max, int64_t *ret,
                          api_response *resp)
{
    json_t *v = json_object_get(o, key);
    if (!v || json_is_null(v))
        return 0;
    int64_t ms = -1;
    if (json_is_integer(v))
        ms = json_integer_value(v);
    else if (json_is_string(v) && parse_duration_ms(json_string_value(v), min, max, &ms) != 0)
        ms = -1;
    if (ms < min || ms > max)
        return api_error(resp, 400, "bad_request",
                         "'%s' must be a duration like \"500ms\", \"30s\" or \"2m\" (or an "
                         "integer of milliseconds) from %lld to %lld ms",
                         key, (long long)min, (long long)max),
               -1;
    *ret = ms;
    return 0;
}

static int path_instance_id(const char *seg, int64_t *ret, api_response *resp)
{
    if (parse_i64(seg, 1, INSTANCE_ID_MAX, ret) != 0)
        return api_error(resp, 400, "bad_request", "instance id must be an integer from 1 to %lld",
                         (long long)INSTANCE_ID_MAX),
               -1;
    return 0;
}

/* [A-Za-z0-9._-]+: regions are names, never paths or markup. */
static int is_word(const char *s)
{
    static const char ok[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-";
    return strspn(s, ok) == strlen(s);
}

static int no_orch(const api_ctx *ctx, api_response *resp)
{
    if (ctx->orch)
        return 0;
    api_error(resp, 503, "unavailable", "this server runs no orchestrator");
    return -1;
}

/* ---- POST /api/instances/launch ------------------------------------------ */

static int launch_strings(json_t *o, fo_launch_req *r, api_response *resp)
{
    if (api_text_field(o, "workload", FLEET_TEXT_MAX, &r->workload_cmd, resp) ||
        api_text_field(o, "probe", FLEET_TEXT_MAX, &r->probe_spec, resp) ||
        api_text_field(o, "model", MODEL_MAX_LEN, &r->model, resp) ||
        api_text_field(o, "workspace_from", PATH_MAX, &r->workspace_from, resp) ||
        api_text_field(o, "name", NAME_MAX_LEN, &r->name, resp) ||
        api_text_field(o, "kind", 8, &r->kind, resp) ||
        api_text_field(o, "region", REGION_MAX_LEN, &r->region, resp) ||
        api_text_field(o, "error_exit_codes", FLEET_CODES_MAX, &r->error_exit_codes, resp) ||
        api_text_field(o, "host_check", FLEET_TEXT_MAX, &r->host_check, resp))
        return -1;
    if (!r->workload_cmd)
        return api_error(resp, 400, "bad_request", "'workload' (the command to run) is required"),
               -1;
    char why[300];
    if (dm_workload_cmd_check(r->workload_cmd, why, sizeof why) != 0 || /* FLEET-W2 */
        dm_exit_codes_check(r->error_exit_codes, why, sizeof why) != 0)
        return api_error(resp, 400, "bad_request", "%s", why), -1;
    if (r->host_check && dm_workload_cmd_check(r->host_check, why, sizeof why) != 0)
        return api_error(resp, 400, "bad_request", "host_check: %s", why), -1;
    if (r->kind && strcmp(r->kind, "gpu") != 0 && strcmp(r->kind, "cpu") != 0)
        return api_error(resp, 400, "bad_request", "'kind' must be gpu or cpu"), -1;
    if (r->region && !is_word(r->region))
        return api_error(resp, 400, "bad_request",
                         "'region' must be letters, digits, '.', '_', '-'"),
               -1;
    struct stat st; /* API-RF2 */
    if (r->workspace_from &&
        (r->workspace_from[0] != '/' || stat(r->workspace_from, &st) != 0 || !S_ISDIR(st.st_mode)))
        return api_error(resp, 400, "bad_request",
                         "'workspace_from' must be the absolute path of a directory that exists on "
                         "the server: '%.200s' is not",
                         r->workspace_from),
               -1;
    return 0;
}

static int launch_numbers(json_t *o, fo_launch_req *r, api_response *resp)
{
    int64_t vram = 0, restarts = -1;
    if (int_field(o, "heartbeat_ms", 10, 60000, &r->heartbeat_ms, resp) ||
        int_field(o, "max_restarts_on_errors", 0, FLEET_MAX_RESTARTS_MAX, &restarts, resp) ||
        duration_field(o, "snapshot_every", 0, SNAP_EVERY_MAX, &r->snapshot_every_ms, resp) ||
        bool_field(o, "protect", &r->protect, resp) ||
        int_field(o, "min_vram_gb", 0, 4096, &vram, resp) ||
        num_field(o, "min_cuda", 0, 100, &r->min_cuda, resp) ||
        num_field(o, "max_price", 0.001, 1000, &r->max_price_per_h, resp) ||
        int_field(o, "max_failovers", 1, FLEET_BUDGET_MAX_LIMIT, &r->max_failovers, resp) ||
        duration_field(o, "failover_window", 1000, FLEET_BUDGET_WINDOW_LIMIT,
                       &r->failover_window_ms, resp))
        return -1;
    r->min_vram_gb = (int)vram;
    r->max_restarts_on_errors = (int)restarts;
    return 0;
}

int api_h_instance_launch(const api_ctx *ctx, const api_request *req, api_response *resp)
{
    static const char *const allowed[] = {
        "workload",       "probe",    "workspace_from", "model", "heartbeat_ms",
        "snapshot_every", "protect",  "name",           "kind",  "region",
        "min_vram_gb",    "min_cuda", "max_price",      "max_restarts_on_errors",
        "error_exit_codes", "host_check", "max_failovers",
        "failover_window", NULL};
    json_t *o;
    if (no_orch(ctx, resp) || api_body_object(req, resp, allowed, &o))
        return 0;
    fo_launch_req r = {.protect = 1,
                       .heartbeat_ms = -1,
                       .snapshot_every_ms = -1,
                       .max_restarts_on_errors = -1};
    if (launch_strings(o, &r, resp) || launch_numbers(o, &r, resp)) { /* API-RF1 */
        json_decref(o);
        return 0;
    }
    fo_launch_result res;
    char err[512] = "";
    memset(&res, 0, sizeof res);
    int rc = fo_orch_launch(ctx->orch, &r, &res, err, sizeof err);
    json_decref(o); /* r's strings point into o */
    if (rc)
        return api_error_from(resp, rc, err);
    return api_json(resp, 201,
                    json_pack("{s:I, s:s, s:s, s:s}", "instance_id", (json_int_t)res.instance_id,
                              "workload_id", res.workload_id, "workspace", res.workspace, "address",
                              res.address));
}

/* ---- POST /api/instances/{id}/workload-exit ------------------------------ */

/* An optional integer field that may be null: *ret -1 when absent or null. */
static int code_field(json_t *o, const char *key, int max, int *ret, api_response *resp)
{
    int64_t v = -1;
    if (int_field(o, key, 0, max, &v, resp))
        return -1;
    *ret = (int)v;
    return 0;
}

#define WL_OUTPUT_MAX 8192

/* The workload's last lines: a string (may be empty) under cap bytes; a
 * control character other than newline and tab becomes '?'. */
static int output_field(json_t *o, char *out, size_t cap, api_response *resp)
{
    json_t *v = json_object_get(o, "output");
    const char *s = json_string_value(v);
    out[0] = '\0';
    if (!v || json_is_null(v))
        return 0;
    if (!s || strlen(s) >= cap)
        return api_error(resp, 400, "bad_request", "'output' must be a string under %zu bytes",
                         cap),
               -1;
    size_t i = 0;
    for (; s[i]; i++)
        out[i] = ((unsigned char)s[i] < 0x20 && s[i] != '\n' && s[i] != '\t') || s[i] == 0x7f
                     ? '?'
                     : s[i];
    out[i] = '\0';
    return 0;
}

/* API-RF6: what an agent reports of its workload's crash (wl_report.h). The
 * agent's word is a report, not configuration: it can fail its own workload
 * or ask for a failover of the instance it runs on, as its heartbeats can. */
int api_h_workload_exit(const api_ctx *ctx, const api_request *req, api_response *resp)
{
    static const char *const allowed[] = {"exit_code", "signal",   "ran_ms",     "restarts",
                                          "gave_up",   "ever_healthy", "host_fault", "host_check",
                                          "output",    NULL};
    int64_t id, ran = 0, restarts = 0;
    char output[WL_OUTPUT_MAX];
    json_t *o;
    if (no_orch(ctx, resp) || path_instance_id(req->segs[2], &id, resp) ||
        api_body_object(req, resp, allowed, &o))
        return 0;
    fo_wl_exit x = {.exit_code = -1, .signal = -1, .output = output};
    if (code_field(o, "exit_code", 255, &x.exit_code, resp) ||
        code_field(o, "signal", 128, &x.signal, resp) ||
        int_field(o, "ran_ms", 0, INT64_MAX / 2, &ran, resp) ||
        int_field(o, "restarts", 0, UINT32_MAX, &restarts, resp) ||
        bool_field(o, "gave_up", &x.gave_up, resp) ||
        bool_field(o, "ever_healthy", &x.ever_healthy, resp) ||
        bool_field(o, "host_fault", &x.host_fault, resp) ||
        api_text_field(o, "host_check", 512, &x.host_check, resp) ||
        output_field(o, output, sizeof output, resp)) {
        json_decref(o);
        return 0;
    }
    x.ran_ms = ran;
    x.restarts = restarts;
    char err[512] = "", verdict[64] = "";
    int rc = fo_orch_workload_exit(ctx->orch, id, &x, verdict, sizeof verdict, err, sizeof err);
    json_decref(o);
    if (rc)
        return api_error_from(resp, rc, err);
    return api_json(resp, 200,
                    json_pack("{s:I, s:s, s:s}", "instance_id", (json_int_t)id, "verdict", verdict,
                              "detail", err));
}

/* ---- DELETE /api/instances/{id} ------------------------------------------ */

int api_h_instance_destroy(const api_ctx *ctx, const api_request *req, api_response *resp)
{
    int64_t id;
    if (no_orch(ctx, resp) || path_instance_id(req->segs[2], &id, resp))
        return 0;
    if (req->body_len)
        return api_error(resp, 400, "bad_request", "DELETE takes no body");
    char err[512] = "";
    int rc = fo_orch_destroy_instance(ctx->orch, id, err, sizeof err);
    if (rc)
        return api_error_from(resp, rc, err);
    return api_json(resp, 200,
                    json_pack("{s:I, s:s}", "instance_id", (json_int_t)id, "state", "destroyed"));
}

/* ---- POST /api/chaos/preempt/{id} ---------------------------------------- */

int api_h_chaos_preempt(const api_ctx *ctx, const api_request *req, api_response *resp)
{
    static const char *const allowed[] = {"notice", NULL};
    int64_t id, notice = 0;
    json_t *o;
    if (no_orch(ctx, resp) || path_instance_id(req->segs[3], &id, resp) ||
        api_body_object(req, resp, allowed, &o))
        return 0;
    int bad = duration_field(o, "notice", 0, NOTICE_MAX_MS, &notice, resp);
    json_decref(o);
    if (bad)
        return 0;
    char err[512] = "";
    int rc = fo_orch_chaos_preempt(ctx->orch, id, notice, err, sizeof err);
    if (rc)
        return api_error_from(resp, rc, err);
    return api_json(resp, 202,
                    json_pack("{s:I, s:I, s:s}", "instance_id", (json_int_t)id, "notice_ms",
                              (json_int_t)notice, "action",
                              notice ? "preemption notice given" : "killed"));
}

/* ---- test-real --------------------------------------------------------- */

int api_h_test_real(const api_ctx *ctx, const api_request *req, api_response *resp)
{
    static const char *const allowed[] = {"model", "keep", NULL};
    int64_t id;
    json_t *o;
    if (no_orch(ctx, resp) || path_instance_id(req->segs[4], &id, resp) ||
        api_body_object(req, resp, allowed, &o))
        return 0;
    const char *model = NULL;
    int keep = 0;
    if (api_text_field(o, "model", MODEL_MAX_LEN, &model, resp) || bool_field(o, "keep", &keep, resp)) {
        json_decref(o);
        return 0;
    }
    fo_failover f;
    char err[512] = "";
    int rc = fo_orch_test_real(ctx->orch, id, model, keep, req->cred ? req->cred->name : "admin", &f,
                               err, sizeof err);
    json_decref(o);
    if (rc)
        return api_error_from(resp, rc, err);
    char status[128], report[128];
    snprintf(status, sizeof status, "/api/standby/failover/status/%s", f.id);
    snprintf(report, sizeof report, "/api/standby/failover/test-real/report/%s", f.id);
    return api_json(resp, 202,
                    json_pack("{s:s, s:I, s:s, s:s, s:b, s:b, s:s, s:s}", "failover_id", f.id,
                              "gpu_instance_id", (json_int_t)id, "kind", fo_kind_name(f.kind),
                              "state", fo_state_name(f.state), "test", 1, "keep", keep,
                              "status_url", status, "report_url", report));
}

static int is_test_real(const fo_failover *f)
{
    return f->kind == FO_KIND_REAL && f->real.test;
}

int api_h_test_real_report(const api_ctx *ctx, const api_request *req, api_response *resp)
{
    const char *id = req->segs[5];
    fo_failover f;
    char err[512] = "";
    int rc =
        strlen(id) < FO_ID_MAX ? db_failover_get(ctx->db, id, &f, err, sizeof err) : DM_E_NOT_FOUND;
    if (rc == 0 && !is_test_real(&f)) /* API-RF3 */
        rc = DM_E_NOT_FOUND;
    if (rc == DM_E_NOT_FOUND)
        return api_error(resp, 404, "not_found", "no test-real '%.64s'", id);
    if (rc)
        return api_error_from(resp, rc, err);
    return api_json(resp, 200, render_test_event(&f));
}

/* Appends the test-real failovers of one page to arr (at most want); counts all. */
int api_h_test_real_history(const api_ctx *ctx, const api_request *req, api_response *resp)
{
    db_failover_filter flt;
    int64_t limit = HISTORY_DEFAULT, total = 0;
    const char *v;
    if (api_query_filter(req, &flt, resp))
        return 0;
    if ((v = req->query(req->conn, "limit")) && parse_i64(v, 1, HISTORY_LIMIT, &limit) != 0)
        return api_error(resp, 400, "bad_request", "limit must be an integer from 1 to %d",
                         HISTORY_LIMIT);
    if (flt.kind != FO_NULL && flt.kind != FO_KIND_REAL)
        return api_error(resp, 400, "bad_request", "failover tests are of kind real only");
    flt.kind = FO_KIND_REAL;
    flt.test = 1; /* API-RF4: the database picks the tests */
    char err[512] = "";
    fo_failover *list = NULL;
    size_t n = 0;
    int rc = db_failover_count(ctx->db, &flt, &total, err, sizeof err);
    flt.limit = limit;
    if (rc == 0)
        rc = db_failover_list(ctx->db, &flt, &list, &n, err, sizeof err);
    if (rc)
        return api_error_from(resp, rc, err);
    json_t *arr = json_array();
    for (size_t i = 0; i < n && arr; i++)
        json_array_append_new(arr, render_test_event(&list[i]));
    free(list);
    return api_json(
        resp, 200, arr ? json_pack("{s:I, s:o}", "total", (json_int_t)total, "events", arr) : NULL);
}

/* ---- GET /api/workloads ------------------------------------------------ */

int api_h_workload_list(const api_ctx *ctx, const api_request *req, api_response *resp)
{
    dm_workload *w = NULL;
    size_t n = 0;
    char err[512] = "";
    int rc = db_workload_list(ctx->db, &w, &n, err, sizeof err);
    if (rc)
        return api_error_from(resp, rc, err);
    json_t *arr = json_array();
    for (size_t i = 0; i < n && arr; i++) {
        dm_snapshot s;
        int have = db_snapshot_latest_workload(ctx->db, w[i].workload_id, &s, err, sizeof err);
        if (have != 0 && have != DM_E_NOT_FOUND) {
            rc = have;
            break;
        }
        json_array_append_new(arr, render_workload(&w[i], have == 0 ? &s : NULL));
    }
    free(w);
    if (rc) {
        json_decref(arr);
        return api_error_from(resp, rc, err);
    }
    return api_json(resp, 200,
                    arr ? json_pack("{s:I, s:o}", "total", (json_int_t)n, "workloads", arr) : NULL);
}

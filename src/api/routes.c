/* Route table and handlers of the REST API (docs/api.md).
 *
 * A route is a method and a path pattern whose "{}" segments match any one
 * segment. A path that matches some pattern but with another method is a 405
 * listing the allowed methods; a path matching none is a 404.
 *
 * API-A1: every input is validated before use: path integers by parse_i64 with
 *     bounds, body fields by type and length, unknown body fields refused.
 * API-A2: a handler never leaves a request without a JSON response (API-H1). */
#include "api/gate.h"
#include "api/http.h"
#include "api/metrics.h"
#include "api/render.h"
#include "api/routes_alerts.h"
#include "api/routes_fleet.h"
#include "api/routes_instances.h"
#include "api/routes_channel.h"
#include "api/routes_snapshots.h"
#include "api/routes_tokens.h"
#include "detect/listener.h"

#include "util/clock.h"
#include "util/error.h"
#include "util/parse.h"

#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define GPU_ID_MAX ((int64_t)1 << 53) /* exact in JSON numbers everywhere */

int api_json(api_response *resp, int status, json_t *body)
{
    if (!body)
        return api_error(resp, 500, "internal", "out of memory");
    api_response_done(resp);
    resp->status = status;
    resp->body = body;
    return 0;
}

int api_text(api_response *resp, int status, char *text, size_t len, const char *content_type)
{
    api_response_done(resp);
    resp->status = status;
    resp->text = text;
    resp->text_len = len;
    resp->content_type = content_type;
    resp->body = json_null(); /* API-A2: a response is there */
    return 0;
}

void api_response_done(api_response *resp)
{
    json_decref(resp->body);
    resp->body = NULL;
    free(resp->text);
    resp->text = NULL;
}

int api_error(api_response *resp, int status, const char *code, const char *fmt, ...)
{
    char detail[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(detail, sizeof detail, fmt, ap);
    va_end(ap);
    utf8_scrub(detail); /* details quote request bytes; JSON needs UTF-8 */
    api_response_done(resp);
    resp->status = status;
    resp->body = json_pack("{s:s, s:s}", "error", code, "detail", detail);
    return 0;
}

int api_error_from(api_response *resp, int rc, const char *detail)
{
    const char *d = detail && *detail ? detail : dm_strerror(rc);
    switch (rc) {
    case DM_E_NOT_FOUND:
        return api_error(resp, 404, "not_found", "%s", d);
    case DM_E_CONFLICT:
        return api_error(resp, 409, "conflict", "%s", d);
    case DM_E_INVALID:
        return api_error(resp, 400, "bad_request", "%s", d);
    case DM_E_TOO_BIG:
        return api_error(resp, 413, "payload_too_large", "%s", d);
    case DM_E_BUSY:
        return api_error(resp, 503, "busy", "%s", d);
    case DM_E_UNAVAILABLE:
        return api_error(resp, 503, "unavailable", "%s", d);
    case DM_E_CANCELLED:
        return api_error(resp, 503, "shutting_down", "%s", d);
    default:
        return api_error(resp, 500, "internal", "%s", d);
    }
}

/* Parses the body as a JSON object whose keys are all in allowed (API-A1).
 * An empty body is an empty object. On failure sets a 400 and returns -1. */
int api_text_field(json_t *o, const char *key, size_t cap, const char **ret, api_response *resp)
{
    json_t *v = json_object_get(o, key);
    *ret = NULL;
    if (!v || json_is_null(v))
        return 0;
    const char *s = json_string_value(v);
    size_t n = s ? strlen(s) : 0;
    int ok = s && n > 0 && n < cap;
    for (size_t i = 0; ok && i < n; i++)
        ok = (unsigned char)s[i] >= 0x20 && s[i] != 0x7f;
    if (!ok) {
        api_error(resp, 400, "bad_request",
                  "'%s' must be a non-empty string of at most %zu printable characters", key,
                  cap - 1);
        return -1;
    }
    *ret = s;
    return 0;
}

int api_body_object(const api_request *req, api_response *resp, const char *const *allowed,
                    json_t **ret)
{
    json_error_t jerr;
    json_t *o = req->body_len ? json_loadb(req->body, req->body_len, JSON_REJECT_DUPLICATES, &jerr)
                              : json_object();
    if (!o) {
        api_error(resp, 400, "bad_request", "malformed JSON body: %s (line %d, column %d)",
                  jerr.text, jerr.line, jerr.column);
        return -1;
    }
    if (!json_is_object(o)) {
        json_decref(o);
        api_error(resp, 400, "bad_request", "the body must be a JSON object");
        return -1;
    }
    const char *key;
    json_t *v;
    json_object_foreach(o, key, v)
    {
        int ok = 0;
        for (const char *const *a = allowed; *a; a++)
            ok |= strcmp(*a, key) == 0;
        if (!ok) {
            api_error(resp, 400, "bad_request", "unknown field '%.64s'", key);
            json_decref(o);
            return -1;
        }
    }
    *ret = o;
    return 0;
}

/* Copies an optional short printable string field. Returns -1 with a 400 set. */
static int opt_string(json_t *o, const char *key, char *dst, size_t cap, api_response *resp)
{
    json_t *v = json_object_get(o, key);
    if (!v || json_is_null(v))
        return 0;
    const char *s = json_string_value(v);
    size_t n = s ? strlen(s) : 0;
    int printable = s != NULL;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
            printable = 0;
    if (!printable || n == 0 || n >= cap) {
        api_error(resp, 400, "bad_request",
                  "'%s' must be a non-empty string of at most %zu "
                  "printable characters",
                  key, cap - 1);
        return -1;
    }
    memcpy(dst, s, n + 1);
    return 0;
}

static int path_gpu_id(const char *seg, int64_t *ret, api_response *resp)
{
    if (parse_i64(seg, 1, GPU_ID_MAX, ret) != 0) {
        api_error(resp, 400, "bad_request", "GPU instance id must be an integer from 1 to %lld",
                  (long long)GPU_ID_MAX);
        return -1;
    }
    return 0;
}

/* 200 while the process serves; "degraded" (with the reason and since
 * when) while the orchestrator cannot save state (orchestrator.h ORCH-O12) or the
 * heartbeat listener retries a state change (listener.h HB-L12), so a monitor
 * alerts on the body, and a load balancer or supervisor that acts on the
 * status does not kill a server that is waiting for its disk. */
static int h_health(const api_ctx *ctx, const api_request *req, api_response *resp)
{
    char reason[256] = "";
    int64_t since = 0;
    if (ctx->ready && !atomic_load(ctx->ready)) /* API-S7 */
        return api_json(resp, 503,
                        json_pack("{s:s, s:s}", "status", "starting", "version", DUMONT_VERSION));
    int degraded = fo_orch_storage_degraded(ctx->orch, reason, sizeof reason, &since) ||
                   hbl_storage_degraded(ctx->detect, reason, sizeof reason, &since);
    json_t *j = json_pack("{s:s, s:s, s:s}", "status", degraded ? "degraded" : "ok", "version",
                          DUMONT_VERSION, "database", db_backend_name(ctx->db));
    if (j && degraded) {
        utf8_scrub(reason);
        json_object_set_new(j, "reason", json_string(reason));
        json_object_set_new(j, "degraded_since", render_time(since));
    }
    return api_json(resp, 200, j);
}

static int h_test_setup(const api_ctx *ctx, const api_request *req, api_response *resp)
{
    static const char *const allowed[] = {"gpu_instance_id", "standby_id", "gcp_zone", NULL};
    json_t *o;
    if (api_body_object(req, resp, allowed, &o))
        return 0;
    fo_assoc a;
    memset(&a, 0, sizeof a);
    json_t *id = json_object_get(o, "gpu_instance_id");
    if (!json_is_integer(id) || json_integer_value(id) < 1 || json_integer_value(id) > GPU_ID_MAX) {
        json_decref(o);
        return api_error(resp, 400, "bad_request",
                         "'gpu_instance_id' %s: an integer from 1 to %lld",
                         id ? "is out of range" : "is required", (long long)GPU_ID_MAX);
    }
    a.gpu_instance_id = json_integer_value(id);
    snprintf(a.standby_id, sizeof a.standby_id, "standby-%lld", (long long)a.gpu_instance_id);
    snprintf(a.provider, sizeof a.provider, "sim");
    a.created_at_ms = clock_wall_ms();
    if (opt_string(o, "standby_id", a.standby_id, sizeof a.standby_id, resp) ||
        opt_string(o, "gcp_zone", a.gcp_zone, sizeof a.gcp_zone, resp)) {
        json_decref(o);
        return 0;
    }
    json_decref(o);
    char err[256] = "";
    int rc = db_assoc_put(ctx->db, &a, err, sizeof err);
    if (rc)
        return api_error_from(resp, rc, err);
    return api_json(resp, 201, render_assoc(&a));
}

/* Reads the optional simulate options from the body into opts. */
static int sim_options(json_t *o, fo_sim_opts *opts, api_response *resp)
{
    json_t *v;
    if ((v = json_object_get(o, "fail_phase")) && !json_is_null(v)) {
        fo_phase p;
        if (fo_phase_parse(json_string_value(v), &p) != 0)
            return api_error(resp, 400, "bad_request",
                             "'fail_phase' must be one of detection, standby_activation, "
                             "gpu_search, provisioning, ssh_ready, restore, inference"),
                   -1;
        opts->fail_phase = (int)p;
    }
    if ((v = json_object_get(o, "speed")) && !json_is_null(v)) {
        double s = json_number_value(v);
        if (!json_is_number(v) || !(s >= 0.001 && s <= 1e9))
            return api_error(resp, 400, "bad_request",
                             "'speed' must be a number from 0.001 to 1e9"),
                   -1;
        opts->speed = s;
    }
    if ((v = json_object_get(o, "seed")) && !json_is_null(v)) {
        if (!json_is_integer(v) || json_integer_value(v) < 0)
            return api_error(resp, 400, "bad_request", "'seed' must be an integer >= 0"), -1;
        opts->seed = json_integer_value(v);
    }
    return 0;
}

static int h_simulate(const api_ctx *ctx, const api_request *req, api_response *resp)
{
    static const char *const allowed[] = {"fail_phase", "speed", "seed", NULL};
    int64_t gpu;
    json_t *o;
    if (path_gpu_id(req->segs[4], &gpu, resp) || api_body_object(req, resp, allowed, &o))
        return 0;
    fo_sim_opts opts;
    fo_sim_opts_init(&opts);
    int bad = sim_options(o, &opts, resp);
    json_decref(o);
    snprintf(opts.user_id, sizeof opts.user_id, "%s", req->cred ? req->cred->name : "admin");
    if (bad)
        return 0;
    fo_failover f;
    char err[256] = "";
    int rc = fo_orch_simulate(ctx->orch, gpu, &opts, &f, err, sizeof err);
    if (rc)
        return api_error_from(resp, rc, err);
    char url[128];
    snprintf(url, sizeof url, "/api/standby/failover/status/%s", f.id);
    return api_json(resp, 202,
                    json_pack("{s:s, s:I, s:s, s:s, s:s}", "failover_id", f.id, "gpu_instance_id",
                              (json_int_t)gpu, "kind", fo_kind_name(f.kind), "state",
                              fo_state_name(f.state), "status_url", url));
}

static int h_status(const api_ctx *ctx, const api_request *req, api_response *resp)
{
    const char *id = req->segs[4];
    fo_failover f;
    char err[256] = "";
    int rc =
        strlen(id) < FO_ID_MAX ? db_failover_get(ctx->db, id, &f, err, sizeof err) : DM_E_NOT_FOUND;
    if (rc == DM_E_NOT_FOUND)
        return api_error(resp, 404, "not_found", "no failover '%.64s'", id);
    if (rc)
        return api_error_from(resp, rc, err);
    return api_json(resp, 200, render_failover(&f, 1));
}

/* Fills a filter from the query string: kind, gpu_instance_id, test, active,
 * since, until (http.h; shared with routes_fleet.c).
 * API-Q1: `test=false` leaves out test-reals (a real failover's figures are not
 * a test's: a test has no detection phase), `test=true` keeps only them;
 * `active=true` keeps only failovers still running (the dashboard's live
 * panel finds every running one, however many finished since). */
int api_query_filter(const api_request *req, db_failover_filter *flt, api_response *resp)
{
    db_failover_filter_init(flt);
    const char *v;
    int64_t now = clock_wall_ms();
    if ((v = req->query(req->conn, "kind"))) {
        fo_kind k;
        if (fo_kind_parse(v, &k) != 0)
            return api_error(resp, 400, "bad_request", "kind must be simulated or real"), -1;
        flt->kind = (int)k;
    }
    if ((v = req->query(req->conn, "gpu_instance_id")) &&
        path_gpu_id(v, &flt->gpu_instance_id, resp))
        return -1;
    int b;
    if ((v = req->query(req->conn, "test"))) { /* API-Q1: tests apart from failovers */
        if (parse_bool(v, &b) != 0)
            return api_error(resp, 400, "bad_request", "test must be true or false"), -1;
        flt->test = b;
    }
    if ((v = req->query(req->conn, "active"))) { /* API-Q1: only the running ones */
        if (parse_bool(v, &b) != 0)
            return api_error(resp, 400, "bad_request", "active must be true or false"), -1;
        flt->active_only = b;
    }
    const char *names[2] = {"since", "until"};
    int64_t *dst[2] = {&flt->since_ms, &flt->until_ms};
    for (int i = 0; i < 2; i++)
        if ((v = req->query(req->conn, names[i])) && clock_parse_time(v, now, dst[i]) != 0)
            return api_error(resp, 400, "bad_request",
                             "%s must be ISO-8601 (2026-11-28T12:00:00Z), epoch "
                             "milliseconds, or an age like 24h or 7d",
                             names[i]),
                   -1;
    return 0;
}

static int h_report(const api_ctx *ctx, const api_request *req, api_response *resp)
{
    db_failover_filter flt;
    if (api_query_filter(req, &flt, resp))
        return 0;
    fo_report r;
    char err[256] = "";
    int rc = db_report(ctx->db, &flt, &r, err, sizeof err);
    if (rc)
        return api_error_from(resp, rc, err);
    return api_json(resp, 200, render_report(&r, clock_wall_ms()));
}

static int h_list(const api_ctx *ctx, const api_request *req, api_response *resp)
{
    db_failover_filter flt;
    if (api_query_filter(req, &flt, resp))
        return 0;
    const char *v;
    flt.limit = 50;
    if ((v = req->query(req->conn, "limit")) && parse_i64(v, 1, 1000, &flt.limit) != 0)
        return api_error(resp, 400, "bad_request", "limit must be an integer from 1 to 1000");
    if ((v = req->query(req->conn, "offset")) && parse_i64(v, 0, INT32_MAX, &flt.offset) != 0)
        return api_error(resp, 400, "bad_request", "offset must be an integer >= 0");
    fo_failover *list = NULL;
    size_t n = 0;
    int64_t total = 0;
    char err[256] = "";
    int rc = db_failover_count(ctx->db, &flt, &total, err, sizeof err);
    if (rc == 0)
        rc = db_failover_list(ctx->db, &flt, &list, &n, err, sizeof err);
    if (rc)
        return api_error_from(resp, rc, err);
    json_t *arr = json_array();
    for (size_t i = 0; i < n && arr; i++)
        json_array_append_new(arr, render_failover(&list[i], 0));
    free(list);
    return api_json(resp, 200,
                    arr ? json_pack("{s:I, s:o}", "total", (json_int_t)total, "failovers", arr)
                        : NULL);
}

static int h_later(const api_ctx *ctx, const api_request *req, api_response *resp)
{
    return api_error(resp, 501, "not_implemented",
                     "%s %s is not available yet: the CPU standby arrives with the GCP "
                     "provider (the local provider has none)",
                     req->method, req->path);
}

/* Every route declares who may call it (gate.h GATE-G4); the gate decides from
 * this table alone, and tests/unit/test_gate.c walks it. */
static const api_route_def routes[] = {
    {"GET", "/healthz", API_ACC_PUBLIC, API_KIND_HANDLER, h_health},
    {"GET", "/", API_ACC_PUBLIC, API_KIND_STATIC, NULL},
    {"GET", "/assets/{}", API_ACC_PUBLIC, API_KIND_STATIC, NULL},
    {"GET", "/api/session", API_ACC_PUBLIC, API_KIND_SESSION, NULL},
    {"POST", "/api/session", API_ACC_PUBLIC, API_KIND_SESSION, NULL},
    {"DELETE", "/api/session", API_ACC_PUBLIC, API_KIND_SESSION, NULL},
    {"GET", "/api/events", API_ACC_VIEWER, API_KIND_EVENTS, NULL},
    {"POST", "/api/standby/failover/test-setup", API_ACC_ADMIN, API_KIND_HANDLER, h_test_setup},
    {"POST", "/api/standby/failover/simulate/{id}", API_ACC_ADMIN, API_KIND_HANDLER, h_simulate},
    {"GET", "/api/standby/failover/status/{}", API_ACC_VIEWER, API_KIND_HANDLER, h_status},
    {"GET", "/api/standby/failover/report", API_ACC_VIEWER, API_KIND_HANDLER, h_report},
    {"GET", "/api/standby/failover/list", API_ACC_VIEWER, API_KIND_HANDLER, h_list},
    {"POST", "/api/standby/failover/test-real/{id}", API_ACC_ADMIN, API_KIND_HANDLER,
     api_h_test_real},
    {"GET", "/api/standby/failover/test-real/report/{}", API_ACC_VIEWER, API_KIND_HANDLER,
     api_h_test_real_report},
    {"GET", "/api/standby/failover/test-real/history", API_ACC_VIEWER, API_KIND_HANDLER,
     api_h_test_real_history},
    {"POST", "/api/standby/configure", API_ACC_ADMIN, API_KIND_HANDLER, h_later},
    {"GET", "/api/standby/status", API_ACC_VIEWER, API_KIND_HANDLER, h_later},
    {"POST", "/api/instances/register", API_ACC_AGENT_BODY, API_KIND_HANDLER,
     api_h_instance_register},
    {"GET", "/api/instances", API_ACC_VIEWER, API_KIND_HANDLER, api_h_instance_list},
    {"GET", "/api/instances/{id}", API_ACC_VIEWER, API_KIND_HANDLER, api_h_instance_get},
    {"POST", "/api/instances/launch", API_ACC_ADMIN, API_KIND_HANDLER, api_h_instance_launch},
    {"DELETE", "/api/instances/{id}", API_ACC_ADMIN, API_KIND_HANDLER, api_h_instance_destroy},
    {"POST", "/api/instances/{id}/snapshots", API_ACC_AGENT, API_KIND_HANDLER,
     api_h_snapshot_report},
    {"GET", "/api/instances/{id}/snapshots", API_ACC_VIEWER, API_KIND_HANDLER, api_h_snapshot_list},
    /* the control channel (routes_channel.h): an agent reaches its own instance's only */
    {"POST", "/api/instances/{id}/commands/poll", API_ACC_AGENT, API_KIND_HANDLER,
     api_h_command_poll},
    {"POST", "/api/instances/{id}/commands/{}/result", API_ACC_AGENT, API_KIND_HANDLER,
     api_h_command_result},
    {"GET", "/api/instances/{id}/commands/{}", API_ACC_VIEWER, API_KIND_HANDLER,
     api_h_command_get},
    {"POST", "/api/instances/{id}/workload-exit", API_ACC_AGENT, API_KIND_HANDLER,
     api_h_workload_exit},
    /* docs/deploy.md: a cloud machine becomes an instance (routes_bootstrap.c) */
    {"GET", "/api/instances/{id}/agent/bootstrap", API_ACC_AGENT, API_KIND_HANDLER,
     api_h_agent_bootstrap},
    {"GET", "/api/instances/{id}/agent/bundle", API_ACC_AGENT, API_KIND_HANDLER,
     api_h_agent_bundle},
    {"POST", "/api/chaos/preempt/{id}", API_ACC_ADMIN, API_KIND_HANDLER, api_h_chaos_preempt},
    {"GET", "/api/workloads", API_ACC_VIEWER, API_KIND_HANDLER, api_h_workload_list},
    {"POST", "/api/tokens", API_ACC_ADMIN, API_KIND_HANDLER, api_h_token_create},
    {"GET", "/api/tokens", API_ACC_ADMIN, API_KIND_HANDLER, api_h_token_list},
    {"DELETE", "/api/tokens/{}", API_ACC_ADMIN, API_KIND_HANDLER, api_h_token_revoke},
    {"GET", "/metrics", API_ACC_VIEWER, API_KIND_HANDLER, api_h_metrics}, /* docs/metrics.md */
    /* docs/alerts.md */
    {"POST", "/api/alerts", API_ACC_ADMIN, API_KIND_HANDLER, api_h_alert_add},
    {"GET", "/api/alerts", API_ACC_ADMIN, API_KIND_HANDLER, api_h_alert_list},
    {"POST", "/api/alerts/{}/test", API_ACC_ADMIN, API_KIND_HANDLER, api_h_alert_test},
    {"GET", "/api/alerts/{}/deliveries", API_ACC_ADMIN, API_KIND_HANDLER, api_h_alert_deliveries},
    {"DELETE", "/api/alerts/{}", API_ACC_ADMIN, API_KIND_HANDLER, api_h_alert_remove},
};

const api_route_def *api_route_table(size_t *ret_n)
{
    *ret_n = sizeof routes / sizeof routes[0];
    return routes;
}

void api_route(const api_ctx *ctx, const api_request *req, api_response *resp)
{
    char allow[sizeof resp->allow];
    const api_route_def *r = gate_match(req->method, req, allow, sizeof allow);
    if (r && r->fn) {
        r->fn(ctx, req, resp);
        if (!resp->body) /* API-A2 */
            api_error(resp, 500, "internal", "out of memory");
        return;
    }
    if (!r && allow[0]) {
        snprintf(resp->allow, sizeof resp->allow, "%s", allow);
        api_error(resp, 405, "method_not_allowed", "%s is not allowed here; use %s", req->method,
                  allow);
        return;
    }
    api_error(resp, 404, "not_found", "no such endpoint: %.200s", req->path);
}

int api_route_exists(const char *method, const char *path)
{
    char buf[API_PATH_MAX];
    api_request req = {.method = method, .path = path};
    if (!gate_path_canonical(path) || gate_split(path, buf, sizeof buf, &req) != 0)
        return 0;
    const api_route_def *r = gate_match(method, &req, NULL, 0);
    return r && strcmp(r->method, method) == 0;
}

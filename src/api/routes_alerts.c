/* Alert endpoints (see routes_alerts.h for API-RA1). */
#include "api/routes_alerts.h"

#include "alerts/alerts.h"
#include "api/render.h"
#include "util/clock.h"
#include "util/error.h"
#include "util/log.h"
#include "util/parse.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static json_t *notify_array(const char *csv)
{
    json_t *a = json_array();
    const char *p = csv;
    while (a && *p) {
        size_t n = strcspn(p, ",");
        json_array_append_new(a, json_stringn(p, n));
        p += n + (p[n] == ',');
    }
    return a;
}

static json_t *render_alert(const db_alert *a)
{
    return json_pack("{s:s, s:s, s:s, s:o, s:o, s:I, s:I, s:I, s:o, s:o}", "name", a->name, "kind",
                     a->kind, "url", a->url_shown, "notify_on", notify_array(a->notify_on),
                     "created_at", render_time(a->created_at_ms), "queued", (json_int_t)a->queued,
                     "delivered", (json_int_t)a->delivered, "given_up", (json_int_t)a->given_up,
                     "last_delivered_at", render_time(a->last_delivered_ms), "last_error",
                     a->last_error[0] ? json_string(a->last_error) : json_null());
}

static int unavailable(api_response *resp)
{
    return api_error(resp, 503, "unavailable", "this server sends no alerts");
}

/* notify_on: "a,b" or ["a", "b"] -> "a,b" in buf. -1 with a 400 set. */
static int notify_field(json_t *o, char *buf, size_t cap, const char **ret, api_response *resp)
{
    json_t *v = json_object_get(o, "notify_on");
    *ret = NULL;
    if (!v || json_is_null(v))
        return 0;
    if (json_is_string(v))
        return api_text_field(o, "notify_on", cap, ret, resp);
    size_t i, len = 0;
    json_t *e;
    if (!json_is_array(v) || json_array_size(v) == 0)
        return api_error(resp, 400, "bad_request",
                         "'notify_on' must be a list of events or a comma-separated string"),
               -1;
    buf[0] = '\0';
    json_array_foreach(v, i, e)
    {
        const char *w = json_string_value(e);
        int n = w ? snprintf(buf + len, cap - len, "%s%s", len ? "," : "", w) : -1;
        if (n < 0 || (size_t)n >= cap - len || !*w)
            return api_error(resp, 400, "bad_request", "'notify_on' must be a list of event names"),
                   -1;
        len += (size_t)n;
    }
    *ret = buf;
    return 0;
}

int api_h_alert_add(const api_ctx *ctx, const api_request *req, api_response *resp)
{
    static const char *const allowed[] = {"kind", "url", "name", "notify_on", NULL};
    if (!ctx->alerts)
        return unavailable(resp);
    if (!ctx->secrets_ok) /* server.h API-S4: the request carries a URL that is a secret */
        return api_error(resp, 403, "tls_required",
                         "alert destinations are added only over TLS, or on a server listening "
                         "on a loopback address; start the server with --tls-cert and --tls-key");
    json_t *o;
    if (api_body_object(req, resp, allowed, &o))
        return 0;
    char nbuf[DB_ALERT_TEXT_MAX];
    al_add_req rq = {0};
    int bad = api_text_field(o, "kind", 16, &rq.kind, resp) ||
              api_text_field(o, "url", AL_URL_MAX, &rq.url, resp) ||
              api_text_field(o, "name", DB_ALERT_NAME_MAX, &rq.name, resp) ||
              notify_field(o, nbuf, sizeof nbuf, &rq.notify_on, resp);
    if (!bad && (!rq.kind || !rq.url)) {
        api_error(resp, 400, "bad_request", "'kind' and 'url' are required");
        bad = 1;
    }
    db_alert a;
    char secret[AL_SECRET_HEX_LEN + 1] = "", err[300] = "";
    int rc = bad ? 0 : al_add(ctx->alerts, &rq, &a, secret, err, sizeof err);
    json_decref(o); /* rq's strings were o's */
    if (bad)
        return 0;
    if (rc)
        return api_error_from(resp, rc, err);
    char q[DB_ALERT_NAME_MAX + 8];
    log_info("alert.added", "alert=%s kind=%s notify_on=%s by=%s", log_quote(q, sizeof q, a.name),
             a.kind, a.notify_on, req->cred ? req->cred->name : "-");
    json_t *b = render_alert(&a);
    if (b && secret[0])
        json_object_set_new(b, "secret", json_string(secret)); /* API-RA1: once */
    explicit_bzero(secret, sizeof secret);
    db_alert_done(&a);
    return api_json(resp, 201, b);
}

int api_h_alert_list(const api_ctx *ctx, const api_request *req, api_response *resp)
{
    (void)req;
    if (!ctx->alerts)
        return unavailable(resp);
    db_alert *v = NULL;
    size_t n = 0;
    char err[256] = "";
    int rc = db_alert_list(al_db(ctx->alerts), &v, &n, err, sizeof err);
    if (rc)
        return api_error_from(resp, rc, err);
    json_t *arr = json_array();
    for (size_t i = 0; i < n; i++) {
        if (arr)
            json_array_append_new(arr, render_alert(&v[i]));
        db_alert_done(&v[i]);
    }
    free(v);
    return api_json(resp, 200,
                    arr ? json_pack("{s:I, s:o}", "total", (json_int_t)n, "alerts", arr) : NULL);
}

int api_h_alert_test(const api_ctx *ctx, const api_request *req, api_response *resp)
{
    if (!ctx->alerts)
        return unavailable(resp);
    const char *name = req->segs[2];
    al_send_result r;
    char err[300] = "";
    int rc = al_test(ctx->alerts, name, &r, err, sizeof err);
    if (rc)
        return api_error_from(resp, rc, err);
    if (r.status >= 200 && r.status < 300)
        return api_json(resp, 200,
                        json_pack("{s:s, s:b, s:i, s:I}", "name", name, "delivered", 1, "status",
                                  (int)r.status, "ms", (json_int_t)r.elapsed_ms));
    api_error(resp, 502, "not_delivered", "the test alert to %s was not delivered: %s", name,
              r.error[0] ? r.error : "no answer");
    if (resp->body) {
        json_object_set_new(resp->body, "status", r.status ? json_integer(r.status) : json_null());
        json_object_set_new(resp->body, "delivered", json_false());
    }
    return 0;
}

int api_h_alert_deliveries(const api_ctx *ctx, const api_request *req, api_response *resp)
{
    if (!ctx->alerts)
        return unavailable(resp);
    const char *name = req->segs[2], *v;
    int64_t limit = 50;
    if ((v = req->query(req->conn, "limit")) && parse_i64(v, 1, DB_ALERT_LIST_MAX, &limit) != 0)
        return api_error(resp, 400, "bad_request", "limit must be an integer from 1 to %d",
                         DB_ALERT_LIST_MAX);
    db_alert a;
    char err[256] = "";
    int rc = db_alert_get(al_db(ctx->alerts), name, &a, err, sizeof err);
    if (rc)
        return api_error_from(resp, rc, err);
    db_alert_done(&a);
    db_delivery *d = NULL;
    size_t n = 0;
    if ((rc = db_delivery_list(al_db(ctx->alerts), name, (int)limit, &d, &n, err, sizeof err)))
        return api_error_from(resp, rc, err);
    json_t *arr = json_array();
    for (size_t i = 0; i < n; i++) {
        if (arr)
            json_array_append_new(
                arr,
                json_pack(
                    "{s:s, s:s, s:s, s:s, s:I, s:o, s:o, s:o, s:o, s:o}", "idempotency_key",
                    d[i].delivery_key, "event", d[i].event_type, "event_id", d[i].event_key,
                    "state", d[i].state, "attempts", (json_int_t)d[i].attempts, "last_status",
                    d[i].last_status == FO_NULL ? json_null() : json_integer(d[i].last_status),
                    "last_error", d[i].last_error[0] ? json_string(d[i].last_error) : json_null(),
                    "queued_at", render_time(d[i].queued_at_ms), "next_at",
                    strcmp(d[i].state, "queued") == 0 ? render_time(d[i].next_at_ms) : json_null(),
                    "done_at", render_time(d[i].done_at_ms)));
        db_delivery_done(&d[i]);
    }
    free(d);
    return api_json(
        resp, 200,
        arr ? json_pack("{s:s, s:I, s:o}", "name", name, "total", (json_int_t)n, "deliveries", arr)
            : NULL);
}

int api_h_alert_remove(const api_ctx *ctx, const api_request *req, api_response *resp)
{
    if (!ctx->alerts)
        return unavailable(resp);
    const char *name = req->segs[2];
    char err[256] = "";
    int rc = al_remove(ctx->alerts, name, err, sizeof err);
    if (rc)
        return api_error_from(resp, rc, err);
    char q[DB_ALERT_NAME_MAX + 8];
    log_info("alert.removed", "alert=%s by=%s", log_quote(q, sizeof q, name),
             req->cred ? req->cred->name : "-");
    return api_json(resp, 200, json_pack("{s:s}", "removed", name));
}

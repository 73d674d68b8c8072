/* Dashboard glue (see dashboard.h for API-D1 to API-D4): sign-in, sign-out, the
 * session probe, static files and the event stream.
 *
 *   GET    /api/session  200 {"authenticated": bool, "features": {...}}: open;
 *                        lets the page ask whether its HttpOnly cookie is live,
 *                        and which views the server fills, without a 401/404
 *   POST   /api/session  {"token": "..."} -> 204 + Set-Cookie, or 401
 *   DELETE /api/session  204 + a Set-Cookie that clears the cookie
 *   GET    /api/events   text/event-stream (events.c)
 *   GET    /, /assets/NAME  embedded files (static.c) */
#include "api/dashboard.h"

#include "alerts/alerts.h"
#include "api/events.h"
#include "api/metrics.h"
#include "api/gate.h"
#include "api/http.h"
#include "api/render.h"
#include "api/session.h"
#include "api/static.h"
#include "util/clock.h"
#include "util/log.h"
#include "util/secret.h"

#include <errno.h>
#include <jansson.h>
#include <microhttpd.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct api_dashboard {
    fo_orch *orch;
    events_bus *bus;
    session_store *sessions;
    dash_resolve_fn resolve;
    void *resolve_cls;
    _Atomic(struct api_metrics *) metrics; /* API-D6: also told of every failover */
    _Atomic(struct al_service *) alerts;   /* API-D6: the same */
    int shut;
};

/* API-D6 */
static void on_failover(void *arg, const fo_failover *f)
{
    api_dashboard *d = arg;
    events_on_failover(d->bus, f);
    api_metrics_on_failover(atomic_load_explicit(&d->metrics, memory_order_acquire), f);
    al_on_failover(atomic_load_explicit(&d->alerts, memory_order_acquire), f);
}

void dash_set_alerts(api_dashboard *d, struct al_service *a)
{
    atomic_store_explicit(&d->alerts, a, memory_order_release);
}

void dash_set_metrics(api_dashboard *d, struct api_metrics *m)
{
    atomic_store_explicit(&d->metrics, m, memory_order_release);
}

int dash_new(fo_orch *orch, dash_resolve_fn resolve, void *cls, api_dashboard **ret)
{
    api_dashboard *d = calloc(1, sizeof *d);
    if (!d)
        return -ENOMEM;
    int rc = session_store_new(SESSION_CAP, SESSION_TTL_MS, &d->sessions);
    if (rc == 0)
        rc = events_bus_new(0, &d->bus);
    if (rc) {
        session_store_free(d->sessions);
        free(d);
        return rc;
    }
    d->resolve = resolve;
    d->resolve_cls = cls;
    d->orch = orch;
    if (orch)
        fo_orch_set_observer(orch, on_failover, d);
    *ret = d;
    return 0;
}

void dash_shutdown(api_dashboard *d)
{
    if (!d || d->shut)
        return;
    d->shut = 1;
    if (d->orch)
        fo_orch_set_observer(d->orch, NULL, NULL); /* API-D4: first unhook */
    events_bus_shutdown(d->bus);
}

void dash_free(api_dashboard *d)
{
    if (!d)
        return;
    dash_shutdown(d);
    events_bus_free(d->bus);
    session_store_free(d->sessions);
    free(d);
}

static int safe_method(const char *method)
{
    return strcmp(method, "GET") == 0 || strcmp(method, "HEAD") == 0;
}

static int cookie_live(api_dashboard *d, struct MHD_Connection *conn, api_cred *ret)
{
    const char *id = MHD_lookup_connection_value(conn, MHD_COOKIE_KIND, SESSION_COOKIE);
    return id && session_cred(d->sessions, id, clock_mono_ms(), ret);
}

int dash_cookie_cred(api_dashboard *d, struct MHD_Connection *conn, const char *method,
                     api_cred *ret)
{
    api_cred c;
    if (!d || !cookie_live(d, conn, &c))
        return 0;
    const char *h = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "X-Dumont-Request");
    if (!safe_method(method) && !(h && strcmp(h, "1") == 0)) /* API-D2 */
        return 0;
    *ret = c;
    return 1;
}

/* Queues a JSON (body != NULL) or empty answer with an optional cookie. */
static int answer(struct MHD_Connection *conn, unsigned status, json_t *body, const char *cookie,
                  const char *allow)
{
    char *text = body ? json_dumps(body, RENDER_JSON_FLAGS) : NULL;
    json_decref(body);
    struct MHD_Response *r =
        text ? MHD_create_response_from_buffer(strlen(text), text, MHD_RESPMEM_MUST_FREE)
             : MHD_create_response_from_buffer(0, (void *)"", MHD_RESPMEM_PERSISTENT);
    if (!r) {
        free(text);
        return MHD_NO;
    }
    if (text)
        MHD_add_response_header(r, "Content-Type", "application/json");
    MHD_add_response_header(r, "Cache-Control", "no-store");
    if (cookie)
        MHD_add_response_header(r, "Set-Cookie", cookie);
    if (allow)
        MHD_add_response_header(r, "Allow", allow);
    int ok = MHD_queue_response(conn, status, r);
    MHD_destroy_response(r);
    return ok;
}

static int answer_error(struct MHD_Connection *conn, unsigned status, const char *code,
                        const char *detail)
{
    return answer(conn, status, json_pack("{s:s, s:s}", "error", code, "detail", detail), NULL,
                  NULL);
}

/* The token of a {"token": "..."} body into out; 0, or -1 (malformed). */
static int body_token(const char *body, size_t len, char *out, size_t cap)
{
    json_t *o = body && len ? json_loadb(body, len, JSON_REJECT_DUPLICATES, NULL) : NULL;
    const char *t = json_string_value(json_object_get(o, "token"));
    int ok = json_is_object(o) && json_object_size(o) == 1 && t && *t && strlen(t) < cap;
    if (ok)
        snprintf(out, cap, "%s", t);
    json_decref(o);
    return ok ? 0 : -1;
}

static int sign_in(api_dashboard *d, struct MHD_Connection *conn, const char *body, size_t len)
{
    char token[SECRET_TOKEN_MAX];
    if (body_token(body, len, token, sizeof token) != 0)
        return answer_error(conn, 400, "bad_request",
                            "the body must be {\"token\": \"<the API token>\"}");
    api_cred cred = {0};
    int good = d->resolve && d->resolve(d->resolve_cls, token, &cred) && cred.role; /* API-D3 */
    explicit_bzero(token, sizeof token);
    if (!good) {
        log_warn("session.refused", "%s", "reason=wrong_token");
        return answer_error(conn, 401, "unauthorized",
                            "wrong API token (the admin token is in $DUMONT_HOME/token on the "
                            "server; `dumont tokens create role=viewer` makes a read-only one)");
    }
    if (cred.role != API_ROLE_ADMIN && cred.role != API_ROLE_VIEWER) { /* API-D5 */
        log_warn("session.refused", "reason=role role=%s", api_role_name(cred.role));
        return answer_error(conn, 403, "forbidden",
                            "only an admin or viewer token can sign in to the dashboard");
    }
    char id[SESSION_ID_LEN + 1], cookie[SESSION_HEADER_MAX];
    int rc = session_create_cred(d->sessions, clock_mono_ms(), &cred, id, sizeof id);
    if (rc == 0)
        rc = session_cookie(id, SESSION_TTL_MS / 1000, cookie, sizeof cookie);
    explicit_bzero(id, sizeof id);
    if (rc)
        return answer_error(conn, 500, "internal", "could not create a session");
    char q[API_CRED_NAME_MAX + 8];
    log_info("session.created", "name=%s role=%s sessions=%zu", log_quote(q, sizeof q, cred.name),
             api_role_name(cred.role), session_count(d->sessions, clock_mono_ms()));
    int ok = answer(conn, 204, NULL, cookie, NULL);
    explicit_bzero(cookie, sizeof cookie);
    return ok;
}

static int session_endpoint(api_dashboard *d, struct MHD_Connection *conn, const char *method,
                            const char *body, size_t len)
{
    if (strcmp(method, "POST") == 0)
        return sign_in(d, conn, body, len);
    if (strcmp(method, "DELETE") == 0) {
        const char *id = MHD_lookup_connection_value(conn, MHD_COOKIE_KIND, SESSION_COOKIE);
        if (id && session_remove(d->sessions, id))
            log_info("session.ended", "%s", "reason=sign_out");
        char cookie[SESSION_HEADER_MAX];
        session_cookie(NULL, 0, cookie, sizeof cookie);
        return answer(conn, 204, NULL, cookie, NULL);
    }
    /* the views this server can fill (no 404 probing), and who is signed in */
    api_cred c = {0};
    int live = cookie_live(d, conn, &c);
    return answer(conn, 200,
                  json_pack("{s:b, s:s?, s:{s:b}}", "authenticated", live, "role",
                            live ? api_role_name(c.role) : NULL, "features", "instances",
                            api_route_exists("GET", "/api/instances")),
                  NULL, NULL);
}

int dash_serve(api_dashboard *d, api_route_kind kind, struct MHD_Connection *conn, const char *url,
               const char *method, const char *body, size_t body_len, int *ret)
{
    if (!d)
        return 0;
    switch (kind) {
    case API_KIND_STATIC:
        return static_serve(conn, url, method, ret);
    case API_KIND_SESSION:
        *ret = session_endpoint(d, conn, method, body, body_len);
        return 1;
    case API_KIND_EVENTS: /* a stream has no HEAD: the gate routes HEAD as GET */
        *ret = strcmp(method, "GET") == 0
                   ? events_serve(d->bus, conn)
                   : answer(conn, 405,
                            json_pack("{s:s, s:s}", "error", "method_not_allowed", "detail",
                                      "GET /api/events only"),
                            NULL, "GET");
        return 1;
    default:
        return 0;
    }
}

/* libmicrohttpd glue (see server.h for API-S1 to API-S3).
 *
 * MHD calls the access handler several times per request: once with the
 * headers (we authenticate and check Content-Length there), then once per
 * body chunk (we append up to the cap), then a last time with no data (we
 * route and answer). Per-request state lives in *req_cls. */
#include "api/server.h"

#include "api/conn_guard.h"
#include "api/dashboard.h"
#include "api/gate.h"
#include "api/http.h"
#include "api/render.h"
#include "provider/channel.h"
#include "db/db_token.h"
#include "util/clock.h"
#include "util/error.h"
#include "util/fsutil.h"
#include "util/log.h"
#include "util/parse.h"
#include "util/secret.h"

#include <arpa/inet.h>
#include <errno.h>
#include <microhttpd.h>
#include <netdb.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

struct api_server {
    struct MHD_Daemon *mhd;
    api_ctx ctx;
    _Atomic int ready; /* API-S7; ctx.ready points here */
    char public_url[1024], agent_bundle[4096], store_url[1024]; /* what ctx points at */
    char token[SECRET_TOKEN_MAX];
    int port;
    api_dashboard *dash;      /* static files, sessions, /api/events (dashboard.h) */
    char *tls_cert, *tls_key; /* API-S4: PEM bytes, kept while MHD runs; the key wiped at stop */
    size_t tls_key_len;
    conn_guard *guard; /* API-S5: the request-head deadline (conn_guard.h) */
};

typedef struct {
    int started;                /* the first call (headers) is done */
    char raw[API_PATH_MAX + 1]; /* the path as received, before MHD decoded it */
    size_t uri_len;             /* strlen of the whole URI MHD saw (query included) */
    int raw_bad;                /* over the cap, or not a path at all */
    const api_route_def *route; /* the gate's match (GATE-G1 to GATE-G3) */
    api_cred cred;              /* who calls (GATE-G4) */
    char *body;
    size_t len;
    int too_big;
    int64_t started_us;
} req_state;

static enum MHD_Result send_json(struct MHD_Connection *conn, int status, json_t *body,
                                 const char *allow)
{
    char *text = body ? json_dumps(body, RENDER_JSON_FLAGS) : NULL;
    static const char fallback[] = "{\"error\":\"internal\",\"detail\":\"out of memory\"}";
    struct MHD_Response *r;
    if (text) {
        r = MHD_create_response_from_buffer(strlen(text), text, MHD_RESPMEM_MUST_FREE);
    } else {
        status = 500;
        r = MHD_create_response_from_buffer(sizeof fallback - 1, (void *)fallback,
                                            MHD_RESPMEM_PERSISTENT);
    }
    if (!r) {
        free(text);
        return MHD_NO;
    }
    MHD_add_response_header(r, "Content-Type", "application/json");
    MHD_add_response_header(r, "Cache-Control", "no-store");
    if (allow && *allow)
        MHD_add_response_header(r, "Allow", allow);
    enum MHD_Result ok = MHD_queue_response(conn, (unsigned)status, r);
    MHD_destroy_response(r);
    return ok;
}

static enum MHD_Result send_error(struct MHD_Connection *conn, int status, const char *code,
                                  const char *detail)
{
    json_t *b = json_pack("{s:s, s:s}", "error", code, "detail", detail);
    enum MHD_Result ok = send_json(conn, status, b, NULL);
    json_decref(b);
    return ok;
}

/* API-H1: the text of a text response, else the JSON body. */
static enum MHD_Result send_resp(struct MHD_Connection *conn, api_response *resp)
{
    enum MHD_Result ok;
    if (resp->text) {
        struct MHD_Response *r =
            MHD_create_response_from_buffer(resp->text_len, resp->text, MHD_RESPMEM_MUST_FREE);
        if (!r)
            return api_response_done(resp), MHD_NO;
        resp->text = NULL; /* MHD owns it now */
        MHD_add_response_header(r, "Content-Type", resp->content_type);
        MHD_add_response_header(r, "Cache-Control", "no-store");
        ok = MHD_queue_response(conn, (unsigned)resp->status, r);
        MHD_destroy_response(r);
    } else {
        ok = send_json(conn, resp->status, resp->body, resp->allow);
    }
    api_response_done(resp);
    return ok;
}

static const char *query_lookup(void *conn, const char *key)
{
    return MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, key);
}

/* The credential a token names (dash_resolve_fn): 1 when known. */
static int resolve_token(void *cls, const char *token, api_cred *ret)
{
    const api_server *s = cls;
    if (!token || strlen(token) >= SECRET_TOKEN_MAX)
        return 0;
    if (s->token[0] && secret_equal(token, s->token)) {
        *ret = (api_cred){.role = API_ROLE_ADMIN, .name = "admin"};
        return 1;
    }
    db_token t;
    char err[128];
    api_role role;
    if (!s->ctx.db ||
        db_token_lookup(s->ctx.db, token, clock_wall_ms(), &t, err, sizeof err) != 0 ||
        api_role_parse(t.role, &role) != 0 || role == API_ROLE_ADMIN)
        return 0; /* unknown, revoked, or a row this program does not understand */
    *ret = (api_cred){.role = role, .instance_id = role == API_ROLE_AGENT ? t.instance_id : 0};
    snprintf(ret->name, sizeof ret->name, "%s", t.name);
    return 1;
}

/* API-S1: who calls: the bearer token's credential, else the session cookie's
 * (API-D2, API-D5), else nobody (role NONE). */
static void request_cred(api_server *s, struct MHD_Connection *conn, const char *method,
                         api_cred *ret)
{
    memset(ret, 0, sizeof *ret);
    const char *h = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Authorization");
    static const char prefix[] = "Bearer ";
    if (h && strncasecmp(h, prefix, sizeof prefix - 1) == 0) { /* scheme: any case */
        resolve_token(s, h + sizeof prefix - 1, ret);
        return; /* a wrong bearer token is not rescued by a cookie */
    }
    if (!dash_cookie_cred(s->dash, conn, method, ret))
        memset(ret, 0, sizeof *ret);
}

/* Called by MHD with the URI as the client sent it, before decoding: keeps
 * its path for the gate (GATE-G1). Its result becomes *req_cls. */
static void *on_uri(void *cls, const char *uri, struct MHD_Connection *conn)
{
    (void)cls;
    (void)conn;
    req_state *st = calloc(1, sizeof *st);
    if (!st)
        return NULL;
    size_t n = uri ? strcspn(uri, "?") : 0;
    st->uri_len = uri ? strlen(uri) : 0;
    if (!uri || n > API_PATH_MAX)
        st->raw_bad = 1;
    else
        memcpy(st->raw, uri, n);
    return st;
}

/* GATE-G1: 1 when the URI held no NUL byte. libmicrohttpd hands the request
 * line's URI on as a C string, so "/api/x/1\0junk" reads as "/api/x/1"; but
 * it cuts the line in place, and the version string starts one byte after
 * the URI's true end: url and version point into that one line. */
static int uri_whole(const req_state *st, const char *url, const char *version)
{
    uintptr_t u = (uintptr_t)url, v = (uintptr_t)version;
    return version && url && v > u && v - u == st->uri_len + 1;
}

/* First call (headers): the gate, then the announced size. Returns 1 if a
 * response was queued (the request ends there). */
static enum MHD_Result count_framing(void *cls, enum MHD_ValueKind kind, const char *key,
                                     const char *value)
{
    int *n = cls; /* n[0]: Content-Length headers, n[1]: Transfer-Encoding headers */
    (void)kind;
    (void)value;
    n[0] += strcasecmp(key, "Content-Length") == 0;
    n[1] += strcasecmp(key, "Transfer-Encoding") == 0;
    return MHD_YES;
}

/* API-S6: a body's length is stated once, one way (RFC 9112 6.3): two
 * Content-Length headers, or Content-Length with Transfer-Encoding, could be
 * read otherwise by a proxy in front (request smuggling). */
static int framing_ambiguous(struct MHD_Connection *conn)
{
    int n[2] = {0, 0};
    MHD_get_connection_values(conn, MHD_HEADER_KIND, count_framing, n);
    return n[0] > 1 || n[1] > 1 || (n[0] && n[1]);
}

static int early_checks(api_server *s, struct MHD_Connection *conn, const char *url,
                        const char *method, const char *version, req_state *st,
                        enum MHD_Result *ret)
{
    if (framing_ambiguous(conn)) { /* API-S6: before anything reads the body or routes */
        *ret = send_error(conn, 400, "bad_request",
                          "the body's length is given twice or two ways (Content-Length and "
                          "Transfer-Encoding)");
        return 1;
    }
    char buf[API_PATH_MAX];
    api_request req = {.method = method, .query = query_lookup, .conn = conn};
    api_response resp = {.status = 500};
    /* GATE-G1: the decoded url must be the raw path itself (nothing was decoded),
     * and the raw URI must be the whole URI (no NUL byte in it) */
    int whole = !st->raw_bad && strcmp(url, st->raw) == 0 && uri_whole(st, url, version);
    const char *path = whole ? st->raw : "";
    st->route = gate_route(method, path, buf, sizeof buf, &req, &resp);
    if (st->route) {
        request_cred(s, conn, method, &st->cred);
        if (gate_allow(st->route, &req, &st->cred, 0, &resp) == 0) /* GATE-G4, before the body */
            resp.status = 0;
    }
    if (resp.status) {
        char q[300];
        log_write(resp.status >= 500 ? LOG_WARN : LOG_DEBUG, "http.refused",
                  "method=%.16s path=%s status=%d", method,
                  log_quote(q, sizeof q, st->raw_bad ? "(too long)" : st->raw), resp.status);
        *ret = send_resp(conn, &resp);
        return 1;
    }
    const char *cl = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Content-Length");
    int64_t len;
    if (cl && (parse_i64(cl, 0, INT64_MAX, &len) != 0 || len > API_BODY_MAX)) {
        *ret = send_error(conn, 413, "payload_too_large", "the request body is over 64 KiB");
        return 1;
    }
    return 0;
}

static enum MHD_Result dispatch(api_server *s, struct MHD_Connection *conn, const char *method,
                                req_state *st)
{
    if (st->too_big)
        return send_error(conn, 413, "payload_too_large", "the request body is over 64 KiB");
    char pathbuf[API_PATH_MAX];
    api_request req = {.method = method, .query = query_lookup, .conn = conn, .cred = &st->cred};
    api_response resp = {.status = 500};
    const api_route_def *r = gate_route(method, st->raw, pathbuf, sizeof pathbuf, &req, &resp);
    req.body = st->body;
    req.body_len = st->len;
    if (r != st->route || gate_allow(r, &req, &st->cred, 1, &resp) != 0) /* GATE-G4 with the body */
        return send_resp(conn, &resp);
    int dash_ret;
    if (r->kind != API_KIND_HANDLER &&
        dash_serve(s->dash, r->kind, conn, st->raw, method, st->body, st->len, &dash_ret))
        return (enum MHD_Result)dash_ret;
    if (r->fn) {
        r->fn(&s->ctx, &req, &resp);
        if (!resp.body) /* API-A2 */
            api_error(&resp, 500, "internal", "out of memory");
    } else {
        api_error(&resp, 404, "not_found", "no such endpoint: %.200s", st->raw);
    }
    int status = resp.status;
    enum MHD_Result ok = send_resp(conn, &resp);
    char q[300], nq[API_CRED_NAME_MAX + 8];
    log_write(status >= 500 ? LOG_WARN : LOG_DEBUG, "http.request",
              "method=%s path=%s status=%d cred=%s duration_us=%lld", method,
              log_quote(q, sizeof q, st->raw), status, log_quote(nq, sizeof nq, st->cred.name),
              (long long)(clock_mono_us() - st->started_us));
    return ok;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version, const char *upload_data,
                                  size_t *upload_data_size, void **req_cls)
{
    api_server *s = cls;
    req_state *st = *req_cls;
    if (!st) /* on_uri could not allocate */
        return MHD_NO;
    if (!st->started) {
        enum MHD_Result ret;
        st->started = 1;
        st->started_us = clock_mono_us();
        if (early_checks(s, conn, url, method, version, st, &ret))
            return ret;
        return MHD_YES;
    }
    if (*upload_data_size > 0) {
        size_t n = *upload_data_size;
        if (!st->too_big && st->len + n <= API_BODY_MAX) {
            char *b = realloc(st->body, st->len + n + 1);
            if (!b)
                return MHD_NO;
            memcpy(b + st->len, upload_data, n);
            st->body = b;
            st->len += n;
            st->body[st->len] = '\0';
        } else {
            st->too_big = 1; /* API-S2: keep draining, never buffer past the cap */
        }
        *upload_data_size = 0;
        return MHD_YES;
    }
    return dispatch(s, conn, method, st);
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **req_cls,
                         enum MHD_RequestTerminationCode toe)
{
    req_state *st = *req_cls;
    if (st) {
        free(st->body);
        explicit_bzero(&st->cred, sizeof st->cred);
        free(st);
        *req_cls = NULL;
    }
}

static int resolve_listen(const char *listen, struct sockaddr_storage *ss, int *ret_v6, char *err,
                          size_t errlen)
{
    char host[256];
    int port;
    if (parse_host_port(listen, host, sizeof host, &port) != 0)
        return dm_fail(err, errlen, DM_E_INVALID,
                       "bad listen address '%.200s' (expected HOST:PORT, e.g. 127.0.0.1:8700)",
                       listen);
    struct addrinfo hints = {
        .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM, .ai_flags = AI_NUMERICSERV};
    struct addrinfo *res = NULL;
    char portstr[8];
    snprintf(portstr, sizeof portstr, "%d", port);
    int gai = getaddrinfo(host, portstr, &hints, &res);
    if (gai != 0 || !res)
        return dm_fail(err, errlen, DM_E_INVALID, "cannot resolve listen host '%.200s': %s", host,
                       gai_strerror(gai));
    memcpy(ss, res->ai_addr, res->ai_addrlen);
    *ret_v6 = res->ai_family == AF_INET6;
    freeaddrinfo(res);
    return 0;
}

/* API-S4: reads a PEM file (at most TLS_PEM_MAX bytes) into *ret (malloc'd). */
#define TLS_PEM_MAX (256 * 1024)
static int load_pem(const char *path, const char *what, char **ret, size_t *ret_len, char *err,
                    size_t errlen)
{
    char *buf = malloc(TLS_PEM_MAX);
    if (!buf)
        return -ENOMEM;
    long n = fs_read_small(path, buf, TLS_PEM_MAX);
    if (n < 0 || !strstr(buf, "-----BEGIN ")) {
        explicit_bzero(buf, TLS_PEM_MAX);
        free(buf);
        return dm_fail(err, errlen, DM_E_INVALID, "cannot use the TLS %s %.300s: %s", what, path,
                       n == DM_E_TOO_BIG ? "larger than 256 KiB"
                       : n < 0           ? dm_strerror((int)n)
                                         : "not a PEM file");
    }
    *ret = buf;
    *ret_len = (size_t)n;
    return 0;
}

/* API-S4: 1 when host (of HOST:PORT) is a loopback address. */
static int loopback_listen(const struct sockaddr_storage *ss)
{
    if (ss->ss_family == AF_INET)
        return (ntohl(((const struct sockaddr_in *)ss)->sin_addr.s_addr) >> 24) == 127;
    if (ss->ss_family == AF_INET6) {
        const struct in6_addr *a = &((const struct sockaddr_in6 *)ss)->sin6_addr;
        return IN6_IS_ADDR_LOOPBACK(a) || (IN6_IS_ADDR_V4MAPPED(a) && a->s6_addr[12] == 127);
    }
    return 0;
}

static void free_tls(api_server *s)
{
    if (s->tls_key)
        explicit_bzero(s->tls_key, s->tls_key_len);
    free(s->tls_key);
    free(s->tls_cert);
    s->tls_key = s->tls_cert = NULL;
}

static int setup_tls(api_server *s, const api_server_opts *opts, char *err, size_t errlen)
{
    size_t clen;
    if (!opts->tls_cert || !*opts->tls_cert) {
        if (opts->tls_key && *opts->tls_key)
            return dm_fail(err, errlen, DM_E_INVALID,
                           "a TLS key needs its certificate (--tls-cert)");
        return 0;
    }
    if (!opts->tls_key || !*opts->tls_key)
        return dm_fail(err, errlen, DM_E_INVALID,
                       "a TLS certificate needs its private key (--tls-key)");
    if (MHD_is_feature_supported(MHD_FEATURE_TLS) != MHD_YES)
        return dm_fail(err, errlen, DM_E_INVALID, "this libmicrohttpd was built without TLS");
    int rc = load_pem(opts->tls_cert, "certificate", &s->tls_cert, &clen, err, errlen);
    if (rc == 0)
        rc = load_pem(opts->tls_key, "key", &s->tls_key, &s->tls_key_len, err, errlen);
    return rc;
}

static int bound_port(struct MHD_Daemon *d)
{
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT);
    return info ? (int)info->port : -1;
}

/* ---- connection-level setup: S3, API-S5 ------------------------------------- */

/* The access handler as MHD sees it: the first call of a request means its
 * head is complete (conn_guard.h GATE-G3), then the request path proper. */
static enum MHD_Result on_request_guarded(void *cls, struct MHD_Connection *conn, const char *url,
                                          const char *method, const char *version,
                                          const char *upload_data, size_t *upload_data_size,
                                          void **req_cls)
{
    const req_state *st = *req_cls; /* made by on_uri, before the first call */
    if (!st || !st->started)
        conn_guard_head_done(conn);
    else if (*upload_data_size == 0) /* the last call: the body is all there (CG-G5) */
        conn_guard_body_done(conn);
    return on_request(cls, conn, url, method, version, upload_data, upload_data_size, req_cls);
}

/* A request ended: the next one on this connection has its own deadline. */
static void on_completed_guarded(void *cls, struct MHD_Connection *conn, void **req_cls,
                                 enum MHD_RequestTerminationCode toe)
{
    conn_guard_request_done(conn);
    on_completed(cls, conn, req_cls, toe);
}

static void server_free(api_server *s)
{
    dash_free(s->dash);
    conn_guard_free(s->guard);
    explicit_bzero(s->token, sizeof s->token);
    free_tls(s);
    free(s);
}

int api_server_start(const api_server_opts *opts, api_server **ret, char *err, size_t errlen)
{
    struct sockaddr_storage ss;
    int v6 = 0, rc = resolve_listen(opts->listen, &ss, &v6, err, errlen);
    if (rc)
        return rc;
    api_server *s = calloc(1, sizeof *s);
    if (!s)
        return -ENOMEM;
    s->ctx.db = opts->db;
    s->ctx.orch = opts->orch;
    s->ctx.detect = opts->detect;
    s->ctx.metrics = opts->metrics;
    s->ctx.alerts = opts->alerts;
    s->ctx.channel = opts->channel;
    s->ctx.ready = &s->ready;
    snprintf(s->public_url, sizeof s->public_url, "%s", opts->public_url ? opts->public_url : "");
    snprintf(s->agent_bundle, sizeof s->agent_bundle, "%s",
             opts->agent_bundle ? opts->agent_bundle : "");
    snprintf(s->store_url, sizeof s->store_url, "%s", opts->store_url ? opts->store_url : "");
    s->ctx.public_url = s->public_url[0] ? s->public_url : NULL;
    s->ctx.agent_bundle = s->agent_bundle[0] ? s->agent_bundle : NULL;
    s->ctx.store_url = s->store_url[0] ? s->store_url : NULL;
    snprintf(s->token, sizeof s->token, "%s", opts->token);
    if ((rc = setup_tls(s, opts, err, errlen)) != 0) {
        free_tls(s);
        free(s);
        return rc;
    }
    s->ctx.secrets_ok = s->tls_cert != NULL || loopback_listen(&ss); /* API-S4 */
    char q[300];
    if (!s->ctx.secrets_ok)
        log_warn("server.plaintext",
                 "listen=%s detail=\"plain HTTP on a non-loopback address: API tokens cross the "
                 "network in clear, and heartbeat keys and new credentials are not handed out; "
                 "serve TLS with --tls-cert and --tls-key\"",
                 log_quote(q, sizeof q, opts->listen));
    if ((rc = dash_new(opts->orch, resolve_token, s, &s->dash)) == 0)
        dash_set_metrics(s->dash, opts->metrics), dash_set_alerts(s->dash, opts->alerts);
    if (rc != 0) {
        free_tls(s);
        free(s);
        return dm_fail(err, errlen, rc, "cannot set up the dashboard: %s", dm_strerror(rc));
    }
    if ((rc = conn_guard_new(opts->head_deadline_ms, &s->guard)) != 0) {
        server_free(s);
        return dm_fail(err, errlen, rc, "cannot start the connection guard: %s", dm_strerror(rc));
    }
    /* Suspend/resume: event streams wait without holding a pool thread. */
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_USE_TURBO |
                     MHD_ALLOW_SUSPEND_RESUME | (v6 ? MHD_USE_IPv6 : 0) |
                     (s->tls_cert ? MHD_USE_TLS : 0);
    /* API-S4: the PEM options are passed only with TLS (MHD_OPTION_END ends the list early). */
    s->mhd = MHD_start_daemon(
        flags, 0, NULL, NULL, on_request_guarded, s, MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&ss,
        MHD_OPTION_THREAD_POOL_SIZE, (unsigned)(opts->threads ? opts->threads : 16),
        MHD_OPTION_CONNECTION_LIMIT,
        (unsigned)(opts->max_connections ? opts->max_connections : API_MAX_CONNECTIONS),
        MHD_OPTION_PER_IP_CONNECTION_LIMIT,
        (unsigned)(opts->per_ip_connections ? opts->per_ip_connections : API_PER_IP_CONNECTIONS),
        MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)30, MHD_OPTION_NOTIFY_COMPLETED,
        on_completed_guarded, s, MHD_OPTION_NOTIFY_CONNECTION, conn_guard_notify, s->guard,
        MHD_OPTION_URI_LOG_CALLBACK, on_uri, s, MHD_OPTION_LISTENING_ADDRESS_REUSE, (unsigned)1,
        s->tls_cert ? MHD_OPTION_HTTPS_MEM_CERT : MHD_OPTION_END, s->tls_cert,
        MHD_OPTION_HTTPS_MEM_KEY, s->tls_key, MHD_OPTION_END);
    if (!s->mhd) {
        int e = errno, tls = s->tls_cert != NULL;
        server_free(s);
        if (tls && e != EADDRINUSE && e != EACCES && e != EADDRNOTAVAIL)
            return dm_fail(err, errlen, DM_E_INVALID,
                           "cannot serve TLS on %.200s: the certificate or key is not usable "
                           "(not PEM, encrypted, or the key does not match the certificate)",
                           opts->listen);
        return dm_fail(err, errlen, DM_E_UNAVAILABLE, "cannot listen on %.200s: %s", opts->listen,
                       e ? strerror(e) : "libmicrohttpd failed to start");
    }
    s->port = bound_port(s->mhd);
    *ret = s;
    return 0;
}

void api_server_set_ready(api_server *s)
{
    atomic_store(&s->ready, 1);
}

int api_server_port(const api_server *s)
{
    return s->port;
}

int api_server_tls(const api_server *s)
{
    return s->tls_cert != NULL;
}

void api_server_stop(api_server *s)
{
    if (!s)
        return;
    dash_shutdown(s->dash); /* ends event streams: MHD must not stop with one suspended */
    chan_shutdown(s->ctx.channel); /* PROV-CH4: polls waiting in pool threads return */
    MHD_stop_daemon(s->mhd);
    server_free(s);
}

/* libmicrohttpd glue (see server.h for S1-S3).
 *
 * MHD calls the access handler several times per request: once with the
 * headers (we authenticate and check Content-Length there), then once per
 * body chunk (we append up to the cap), then a last time with no data (we
 * route and answer). Per-request state lives in *req_cls. */
#include "api/server.h"

#include "api/dashboard.h"
#include "api/http.h"
#include "util/clock.h"
#include "util/error.h"
#include "util/log.h"
#include "util/parse.h"
#include "util/secret.h"

#include <arpa/inet.h>
#include <errno.h>
#include <microhttpd.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

struct api_server {
    struct MHD_Daemon *mhd;
    api_ctx ctx;
    char token[SECRET_TOKEN_MAX];
    int port;
    api_dashboard *dash; /* static files, sessions, /api/events (dashboard.h) */
};

typedef struct {
    char *body;
    size_t len;
    int too_big;
    int64_t started_us;
} req_state;

static enum MHD_Result send_json(struct MHD_Connection *conn, int status, json_t *body,
                                 const char *allow)
{
    char *text = body ? json_dumps(body, JSON_COMPACT) : NULL;
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

static const char *query_lookup(void *conn, const char *key)
{
    return MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, key);
}

/* S1: 1 when the request carries the right bearer token. */
static int authorized(const api_server *s, struct MHD_Connection *conn)
{
    const char *h = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Authorization");
    static const char prefix[] = "Bearer ";
    if (!h || strncasecmp(h, prefix, sizeof prefix - 1) != 0) /* scheme: any case */
        return 0;
    h += sizeof prefix - 1;
    if (strlen(h) >= SECRET_TOKEN_MAX)
        return 0;
    return secret_equal(h, s->token);
}

/* First call: authenticate and check the announced size. Returns 1 if a
 * response was queued (the request ends there). */
static int early_checks(api_server *s, struct MHD_Connection *conn, const char *url,
                        const char *method, enum MHD_Result *ret)
{
    if (strncmp(url, "/api/", 5) == 0 && !dash_is_public(url) && !authorized(s, conn) &&
        !dash_cookie_authorized(s->dash, conn, method)) {
        *ret = send_error(conn, 401, "unauthorized",
                          "missing or wrong API token (Authorization: Bearer <token>; the token "
                          "is in $DUMONT_HOME/token)");
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

static int split_path(const char *url, char *buf, size_t cap, api_request *req)
{
    size_t n = strlen(url);
    if (n >= cap)
        return -1;
    memcpy(buf, url, n + 1);
    req->nsegs = 0;
    for (char *p = buf; *p;) {
        while (*p == '/')
            *p++ = '\0';
        if (!*p)
            break;
        if (req->nsegs == API_MAX_SEGMENTS)
            return -1;
        req->segs[req->nsegs++] = p;
        while (*p && *p != '/')
            p++;
    }
    return 0;
}

static enum MHD_Result dispatch(api_server *s, struct MHD_Connection *conn, const char *url,
                                const char *method, req_state *st)
{
    if (st->too_big)
        return send_error(conn, 413, "payload_too_large", "the request body is over 64 KiB");
    int dash_ret;
    if (dash_handle(s->dash, conn, url, method, st->body, st->len, &dash_ret))
        return (enum MHD_Result)dash_ret;
    char pathbuf[API_PATH_MAX];
    api_request req = {.method = method, .path = url, .query = query_lookup, .conn = conn};
    if (split_path(url, pathbuf, sizeof pathbuf, &req) != 0)
        return send_error(conn, 404, "not_found", "no such endpoint");
    req.body = st->body;
    req.body_len = st->len;
    api_response resp = {.status = 500};
    api_route(&s->ctx, &req, &resp);
    enum MHD_Result ok = send_json(conn, resp.status, resp.body, resp.allow);
    char q[300];
    log_write(resp.status >= 500 ? LOG_WARN : LOG_DEBUG, "http.request",
              "method=%s path=%s status=%d duration_us=%lld", method, log_quote(q, sizeof q, url),
              resp.status, (long long)(clock_mono_us() - st->started_us));
    json_decref(resp.body);
    return ok;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version, const char *upload_data,
                                  size_t *upload_data_size, void **req_cls)
{
    api_server *s = cls;
    req_state *st = *req_cls;
    if (!st) {
        enum MHD_Result ret;
        if (early_checks(s, conn, url, method, &ret))
            return ret;
        if (!(st = calloc(1, sizeof *st)))
            return MHD_NO;
        st->started_us = clock_mono_us();
        *req_cls = st;
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
            st->too_big = 1; /* S2: keep draining, never buffer past the cap */
        }
        *upload_data_size = 0;
        return MHD_YES;
    }
    return dispatch(s, conn, url, method, st);
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **req_cls,
                         enum MHD_RequestTerminationCode toe)
{
    req_state *st = *req_cls;
    if (st) {
        free(st->body);
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

static int bound_port(struct MHD_Daemon *d)
{
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT);
    return info ? (int)info->port : -1;
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
    snprintf(s->token, sizeof s->token, "%s", opts->token);
    if ((rc = dash_new(opts->orch, opts->token, &s->dash)) != 0) {
        free(s);
        return dm_fail(err, errlen, rc, "cannot set up the dashboard: %s", dm_strerror(rc));
    }
    /* Suspend/resume: event streams wait without holding a pool thread. */
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_USE_TURBO |
                     MHD_ALLOW_SUSPEND_RESUME | (v6 ? MHD_USE_IPv6 : 0);
    s->mhd = MHD_start_daemon(
        flags, 0, NULL, NULL, on_request, s, MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&ss,
        MHD_OPTION_THREAD_POOL_SIZE, (unsigned)(opts->threads ? opts->threads : 4),
        MHD_OPTION_CONNECTION_LIMIT,
        (unsigned)(opts->max_connections ? opts->max_connections : 256),
        MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)30, MHD_OPTION_NOTIFY_COMPLETED, on_completed, s,
        MHD_OPTION_LISTENING_ADDRESS_REUSE, (unsigned)1, MHD_OPTION_END);
    if (!s->mhd) {
        int e = errno;
        dash_free(s->dash);
        free(s);
        return dm_fail(err, errlen, DM_E_UNAVAILABLE, "cannot listen on %.200s: %s", opts->listen,
                       e ? strerror(e) : "libmicrohttpd failed to start");
    }
    s->port = bound_port(s->mhd);
    *ret = s;
    return 0;
}

int api_server_port(const api_server *s)
{
    return s->port;
}

void api_server_stop(api_server *s)
{
    if (!s)
        return;
    dash_shutdown(s->dash); /* ends event streams: MHD must not stop with one suspended */
    MHD_stop_daemon(s->mhd);
    dash_free(s->dash);
    explicit_bzero(s->token, sizeof s->token);
    free(s);
}

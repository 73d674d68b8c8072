/* The API's gate (see gate.h for GATE-G1 to GATE-G5).
 *
 * The gate never normalises a path: a spelling that a lenient router would
 * fold into a real route ("//api/x", "/api/./x", "/%2Fapi/x") is refused
 * outright, so the path that is authorised is byte for byte the path that
 * is routed. */
#include "api/gate.h"

#include <jansson.h>
#include <stdio.h>
#include <string.h>

int gate_path_canonical(const char *path)
{
    if (!path || path[0] != '/')
        return 0;
    if (path[1] == '\0')
        return 1; /* the root */
    size_t n = 0;
    int segs = 0;
    for (const char *seg = path + 1;; segs++) {
        const char *end = strchr(seg, '/');
        size_t len = end ? (size_t)(end - seg) : strlen(seg);
        if (len == 0 || (len == 1 && seg[0] == '.') || (len == 2 && seg[0] == '.' && seg[1] == '.'))
            return 0; /* "//", trailing '/', dot segments */
        for (size_t i = 0; i < len; i++) {
            unsigned char c = (unsigned char)seg[i];
            if (c <= 0x20 || c == 0x7f || c == '%')
                return 0;
        }
        n += len + 1;
        if (n >= API_PATH_MAX || segs + 1 > API_MAX_SEGMENTS)
            return 0;
        if (!end)
            return 1;
        seg = end + 1;
    }
}

int64_t gate_parse_id(const char *seg)
{
    if (!seg || seg[0] < '1' || seg[0] > '9')
        return -1;
    int64_t v = 0;
    for (const char *p = seg; *p; p++) {
        if (*p < '0' || *p > '9' || p - seg >= 16)
            return -1;
        v = v * 10 + (*p - '0');
    }
    return v <= GATE_ID_MAX ? v : -1;
}

int gate_split(const char *path, char *buf, size_t cap, api_request *req)
{
    size_t n = strlen(path);
    if (n >= cap)
        return -1;
    memcpy(buf, path, n + 1);
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

/* Does pattern (e.g. "/api/x/{id}") match the request's segments? */
static int pattern_match(const char *pattern, const api_request *req)
{
    int i = 0;
    const char *p = pattern;
    while (*p == '/')
        p++;
    while (*p) {
        const char *end = strchr(p, '/');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        if (i >= req->nsegs)
            return 0;
        int wild = len >= 2 && p[0] == '{' && p[len - 1] == '}';
        if (!wild && (strlen(req->segs[i]) != len || memcmp(req->segs[i], p, len) != 0))
            return 0;
        i++;
        p += len;
        while (*p == '/')
            p++;
    }
    return i == req->nsegs;
}

const api_route_def *gate_match(const char *method, const api_request *req, char *allow, size_t cap)
{
    size_t n = 0;
    const api_route_def *t = api_route_table(&n);
    if (allow && cap)
        allow[0] = '\0';
    for (size_t i = 0; i < n; i++) {
        if (!pattern_match(t[i].pattern, req))
            continue;
        /* HEAD is GET without a body (RFC 9110 9.3.2); libmicrohttpd drops the body. */
        int head_as_get = strcmp(method, "HEAD") == 0 && strcmp(t[i].method, "GET") == 0;
        if (head_as_get || strcmp(t[i].method, method) == 0)
            return &t[i];
        if (!allow)
            continue;
        size_t used = strlen(allow);
        snprintf(allow + used, cap - used, "%s%s%s", used ? ", " : "", t[i].method,
                 strcmp(t[i].method, "GET") == 0 ? ", HEAD" : "");
    }
    return NULL;
}

/* GATE-G3: every "{id}" segment of r's pattern holds a canonical id. */
static int ids_canonical(const api_route_def *r, const api_request *req)
{
    const char *p = r->pattern;
    for (int i = 0; *p; i++) {
        while (*p == '/')
            p++;
        if (!*p)
            break;
        if (strncmp(p, "{id}", 4) == 0 && (p[4] == '/' || p[4] == '\0') &&
            (i >= req->nsegs || gate_parse_id(req->segs[i]) < 0))
            return 0;
        while (*p && *p != '/')
            p++;
    }
    return 1;
}

static void refuse(api_response *resp, int status, const char *code, const char *detail)
{
    api_error(resp, status, code, "%s", detail);
}

const api_route_def *gate_route(const char *method, const char *path, char *buf, size_t cap,
                                api_request *req, api_response *resp)
{
    req->path = path;
    if (!gate_path_canonical(path) || gate_split(path, buf, cap, req) != 0) { /* GATE-G1 */
        refuse(resp, 400, "bad_request",
               "the path is not canonical (no repeated or trailing '/', no '.' or '..' "
               "segment, no %-encoding)");
        return NULL;
    }
    char allow[sizeof resp->allow];
    const api_route_def *r = gate_match(method, req, allow, sizeof allow);
    if (!r && allow[0]) { /* GATE-G2 */
        snprintf(resp->allow, sizeof resp->allow, "%s", allow);
        api_error(resp, 405, "method_not_allowed", "%.16s is not allowed here; use %s", method,
                  allow);
        return NULL;
    }
    if (!r) {
        api_error(resp, 404, "not_found", "no such endpoint: %.200s", path);
        return NULL;
    }
    if (!ids_canonical(r, req)) { /* GATE-G3 */
        api_error(resp, 400, "bad_request",
                  "an instance id is an integer from 1 to %lld, without leading zeros",
                  (long long)GATE_ID_MAX);
        return NULL;
    }
    return r;
}

/* The instance an agent route speaks for: the first {id} of the path, or the
 * body's "instance_id"; -1 when there is none. */
static int64_t route_instance(const api_route_def *r, const api_request *req)
{
    if (r->access == API_ACC_AGENT_BODY) {
        /* as strict as the handler's parse (api_body_object): a body whose
         * instance_id is ambiguous names no instance */
        json_t *o = req->body_len
                        ? json_loadb(req->body, req->body_len, JSON_REJECT_DUPLICATES, NULL)
                        : NULL;
        json_t *v = json_object_get(o, "instance_id");
        int64_t id = json_is_integer(v) ? (int64_t)json_integer_value(v) : -1;
        json_decref(o);
        return id >= 1 ? id : -1;
    }
    const char *p = r->pattern;
    for (int i = 0; *p && i < req->nsegs; i++) {
        while (*p == '/')
            p++;
        if (strncmp(p, "{id}", 4) == 0)
            return gate_parse_id(req->segs[i]);
        while (*p && *p != '/')
            p++;
    }
    return -1;
}

int gate_allow(const api_route_def *r, const api_request *req, const api_cred *cred, int have_body,
               api_response *resp)
{
    api_role role = cred ? cred->role : API_ROLE_NONE;
    if (r->access == API_ACC_PUBLIC)
        return 0;
    if (role == API_ROLE_NONE) {
        refuse(resp, 401, "unauthorized",
               "missing or wrong API token (Authorization: Bearer <token>; the admin token "
               "is in $DUMONT_HOME/token)");
        return -1;
    }
    if (role == API_ROLE_ADMIN)
        return 0; /* admin may call every route */
    int ok = 0;
    switch (r->access) {
    case API_ACC_VIEWER:
        ok = role == API_ROLE_VIEWER;
        break;
    case API_ACC_CLIENT:
        ok = role == API_ROLE_CLIENT;
        break;
    case API_ACC_AGENT:
    case API_ACC_AGENT_BODY:
        ok = role == API_ROLE_AGENT && cred->instance_id > 0 &&
             ((r->access == API_ACC_AGENT_BODY && !have_body) ||
              route_instance(r, req) == cred->instance_id);
        break;
    default:
        ok = 0;
    }
    if (ok)
        return 0;
    char detail[256];
    if (role == API_ROLE_AGENT)
        snprintf(detail, sizeof detail,
                 "the credential '%s' is the agent of instance %lld; this route needs %s",
                 cred->name, (long long)cred->instance_id, api_access_name(r->access));
    else
        snprintf(detail, sizeof detail, "the credential '%s' (%s) may not call this route (%s)",
                 cred->name, api_role_name(role), api_access_name(r->access));
    refuse(resp, 403, "forbidden", detail);
    return -1;
}

const char *api_role_name(api_role r)
{
    switch (r) {
    case API_ROLE_ADMIN:
        return "admin";
    case API_ROLE_VIEWER:
        return "viewer";
    case API_ROLE_CLIENT:
        return "client";
    case API_ROLE_AGENT:
        return "agent";
    default:
        return "none";
    }
}

int api_role_parse(const char *s, api_role *ret)
{
    static const api_role all[] = {API_ROLE_ADMIN, API_ROLE_VIEWER, API_ROLE_CLIENT,
                                   API_ROLE_AGENT};
    for (size_t i = 0; s && i < sizeof all / sizeof all[0]; i++)
        if (strcmp(s, api_role_name(all[i])) == 0) {
            *ret = all[i];
            return 0;
        }
    return -1;
}

const char *api_access_name(api_access a)
{
    switch (a) {
    case API_ACC_PUBLIC:
        return "public";
    case API_ACC_VIEWER:
        return "viewer";
    case API_ACC_ADMIN:
        return "admin";
    case API_ACC_AGENT:
        return "the agent of the instance in the path, or admin";
    case API_ACC_AGENT_BODY:
        return "the agent of the body's instance_id, or admin";
    case API_ACC_CLIENT:
        return "client";
    }
    return "?";
}

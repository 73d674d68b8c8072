/* The route matrix (src/api/gate.h GATE-G1 to GATE-G5, issue 13 part 1): generated from
 * the route table itself (api_route_table()), so a route added later is
 * covered without anyone remembering. Every route x every credential x
 * every non-canonical spelling of its path gets the expected answer. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "api/gate.h"
#include "api/http.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define OWN   20001
#define OTHER 20002

enum { C_NONE, C_WRONG, C_VIEWER, C_ADMIN, C_CLIENT, C_OWN, C_OTHER, N_CREDS };

static const char *const cred_names[N_CREDS] = {"none",   "wrong",     "viewer",     "admin",
                                                "client", "own agent", "other agent"};

static const api_cred creds[N_CREDS] = {
    [C_NONE] = {0},
    [C_WRONG] = {.role = API_ROLE_NONE}, /* a token the server does not know */
    [C_VIEWER] = {.role = API_ROLE_VIEWER, .name = "grafana"},
    [C_ADMIN] = {.role = API_ROLE_ADMIN, .name = "admin"},
    [C_CLIENT] = {.role = API_ROLE_CLIENT, .name = "app"},
    [C_OWN] = {.role = API_ROLE_AGENT, .name = "agent-20001", .instance_id = OWN},
    [C_OTHER] = {.role = API_ROLE_AGENT, .name = "agent-20002", .instance_id = OTHER},
};

/* GATE-G4, written out: access x credential -> 0 (admitted), 401 or 403. */
static const int want[][N_CREDS] = {
    /*                   none wrong viewer admin client own other */
    [API_ACC_PUBLIC] = {0, 0, 0, 0, 0, 0, 0},
    [API_ACC_VIEWER] = {401, 401, 0, 0, 403, 403, 403},
    [API_ACC_ADMIN] = {401, 401, 403, 0, 403, 403, 403},
    [API_ACC_AGENT] = {401, 401, 403, 0, 403, 0, 403},
    [API_ACC_AGENT_BODY] = {401, 401, 403, 0, 403, 0, 403},
    [API_ACC_CLIENT] = {401, 401, 403, 0, 0, 403, 403},
};

/* The routes that need no credential, all of them: default deny means a
 * new public route has to be added here on purpose. */
static const char *const public_routes[] = {
    "GET /healthz",        "GET /", "GET /assets/{}", "GET /api/session", "POST /api/session",
    "DELETE /api/session",
};

/* pattern with {id} -> id, {} -> "x" (the static route: an asset's name). */
static void concrete(const char *pattern, const char *id, char *out, size_t cap)
{
    size_t n = 0;
    for (const char *p = pattern; *p && n + 1 < cap;) {
        if (strncmp(p, "{id}", 4) == 0) {
            n += (size_t)snprintf(out + n, cap - n, "%s", id);
            p += 4;
        } else if (strncmp(p, "{}", 2) == 0) {
            n += (size_t)snprintf(out + n, cap - n, "%s", "app.js");
            p += 2;
        } else {
            out[n++] = *p++;
        }
    }
    out[n < cap ? n : cap - 1] = '\0';
}

static const api_route_def *route(const char *method, const char *path, api_request *req, char *buf,
                                  size_t cap, api_response *resp)
{
    memset(req, 0, sizeof *req);
    memset(resp, 0, sizeof *resp);
    req->method = method;
    return gate_route(method, path, buf, cap, req, resp);
}

/* A spelling that is not canonical is refused (400/404) and never routed. */
static void expect_refused(const char *method, const char *path)
{
    api_request req;
    api_response resp;
    char buf[API_PATH_MAX];
    const api_route_def *r = route(method, path, &req, buf, sizeof buf, &resp);
    if (r || (resp.status != 400 && resp.status != 404))
        fail_msg("%s %s: routed=%d status %d, expected 400/404 and not routed", method, path,
                 r != NULL, resp.status);
    assert_true(json_is_string(json_object_get(resp.body, "error")));
    json_decref(resp.body);
}

/* GATE-G4 for one route and credential, before and with the body. */
static void check_cred(const api_route_def *r, api_request *req, int ci)
{
    api_response resp = {0};
    const api_cred *c = ci == C_NONE ? NULL : &creds[ci];
    int rc = gate_allow(r, req, c, 1, &resp);
    int got = rc == 0 ? 0 : resp.status;
    if (got != want[r->access][ci])
        fail_msg("%s %s as %s: %d, expected %d", r->method, req->path, cred_names[ci], got,
                 want[r->access][ci]);
    if (rc == 0)
        assert_null(resp.body);
    json_decref(resp.body);
    memset(&resp, 0, sizeof resp);
    /* before the body: never admits what the full check refuses, except an
     * agent-body route for any agent (its instance is in the body) */
    rc = gate_allow(r, req, c, 0, &resp);
    int early = rc == 0 ? 0 : resp.status;
    int agent_wait = r->access == API_ACC_AGENT_BODY && (ci == C_OWN || ci == C_OTHER);
    assert_int_equal(early, agent_wait ? 0 : want[r->access][ci]);
    json_decref(resp.body);
}

/* The non-canonical spellings of path (a concrete route path). */
static void check_spellings(const api_route_def *r, const char *path)
{
    char s[API_PATH_MAX + 64];
    const char *m = r->method;
    const char *tail = path + 1; /* after the leading '/' */
    static const char *const prefixes[] = {"/",    "/%2F",   "/%2f",  "/./",
                                           "/../", "/x/../", "/.%2F", "%2F"};
    for (size_t i = 0; i < sizeof prefixes / sizeof prefixes[0]; i++) {
        /* "//api/x", "/%2Fapi/x", "/./api/x", ... (for "/": "//", "/%2F", ...) */
        snprintf(s, sizeof s, "%s%s", prefixes[i], tail);
        if (strcmp(s, path) != 0)
            expect_refused(m, s);
    }
    static const char *const suffixes[] = {"/", "//", "%00", "/%00", "/.", "/..", "%2F", "?"};
    for (size_t i = 0; i < sizeof suffixes / sizeof suffixes[0]; i++) {
        snprintf(s, sizeof s, "%s%s", path, suffixes[i]);
        if (strcmp(suffixes[i], "?") != 0) /* a query string never reaches the gate */
            expect_refused(m, s);
    }
    /* "/api//x", "/api/./x", "/api/%2Fx", "/api/%78" at every inner '/' */
    for (const char *p = strchr(tail, '/'); p; p = strchr(p + 1, '/')) {
        static const char *const inner[] = {"//", "/./", "/../", "/%2F", "/%2f"};
        for (size_t i = 0; i < sizeof inner / sizeof inner[0]; i++) {
            snprintf(s, sizeof s, "%.*s%s%s", (int)(p - path), path, inner[i], p + 1);
            expect_refused(m, s);
        }
        snprintf(s, sizeof s, "%.*s/%%%02x%s", (int)(p - path), path, (unsigned char)p[1],
                 p + 2); /* the next letter percent-encoded */
        expect_refused(m, s);
    }
    /* a byte the path must not hold: space, tab, DEL */
    snprintf(s, sizeof s, "%s x", path);
    expect_refused(m, s);
    snprintf(s, sizeof s, "%s\tx", path);
    expect_refused(m, s);
    snprintf(s, sizeof s, "%s\x7f", path);
    expect_refused(m, s);
}

/* Ids that must not name OWN: leading zeros, trailing bytes, other forms. */
static void check_ids(const api_route_def *r)
{
    static const char *const bad[] = {"020001",
                                      "0020001",
                                      "20001%00",
                                      "20001x",
                                      "20001 ",
                                      " 20001",
                                      "+20001",
                                      "-20001",
                                      "0",
                                      "00",
                                      "2e4",
                                      "20001.0",
                                      "0x4E21",
                                      "%32%30001",
                                      "20001/",
                                      "9007199254740993",
                                      "99999999999999999999",
                                      "",
                                      "20001%20"};
    if (!strstr(r->pattern, "{id}"))
        return;
    char path[API_PATH_MAX];
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        concrete(r->pattern, bad[i], path, sizeof path);
        expect_refused(r->method, path);
    }
}

static int is_public(const api_route_def *r)
{
    char key[160];
    snprintf(key, sizeof key, "%s %s", r->method, r->pattern);
    for (size_t i = 0; i < sizeof public_routes / sizeof public_routes[0]; i++)
        if (strcmp(key, public_routes[i]) == 0)
            return 1;
    return 0;
}

/* GATE-G1 to GATE-G5 for every route of the table. */
static void test_route_matrix(void **state)
{
    (void)state;
    size_t n = 0;
    const api_route_def *t = api_route_table(&n);
    assert_true(n >= 20);
    size_t checked = 0;
    for (size_t i = 0; i < n; i++) {
        const api_route_def *r = &t[i];
        char id[32], path[API_PATH_MAX];
        snprintf(id, sizeof id, "%d", OWN);
        concrete(r->pattern, id, path, sizeof path);
        assert_true(gate_path_canonical(r->pattern) || strstr(r->pattern, "{"));
        assert_true(gate_path_canonical(path));
        /* default deny: only the listed routes are public */
        assert_int_equal(r->access == API_ACC_PUBLIC, is_public(r));
        /* an agent route names its instance in the path, or in the body */
        if (r->access == API_ACC_AGENT)
            assert_non_null(strstr(r->pattern, "{id}"));
        assert_true(r->kind != API_KIND_HANDLER || r->fn != NULL);

        static const char *const methods[2] = {NULL, "HEAD"};
        for (int mi = 0; mi < 2; mi++) {
            const char *m = methods[mi] ? methods[mi] : r->method;
            if (mi == 1 && strcmp(r->method, "GET") != 0)
                continue;
            api_request req;
            api_response resp;
            char buf[API_PATH_MAX];
            const api_route_def *got = route(m, path, &req, buf, sizeof buf, &resp);
            if (got != r)
                fail_msg("%s %s: not routed to its own entry (status %d)", m, path, resp.status);
            char body[64];
            snprintf(body, sizeof body, "{\"instance_id\": %d}", OWN);
            req.body = r->access == API_ACC_AGENT_BODY ? body : NULL;
            req.body_len = req.body ? strlen(body) : 0;
            for (int ci = 0; ci < N_CREDS; ci++)
                check_cred(r, &req, ci);
        }
        check_spellings(r, path);
        check_ids(r);
        checked++;
    }
    assert_int_equal(checked, n);
}

/* GATE-G2: a canonical path that matches no route is 404 (never 200, never 401). */
static void test_unknown_paths(void **state)
{
    (void)state;
    static const char *const paths[] = {"/api",
                                        "/api/nope",
                                        "/API/workloads",
                                        "/api/workloadsx",
                                        "/api/instances/20001/nope",
                                        "/healthz/x",
                                        "/assets",
                                        "/api/tokens/x/y",
                                        "/w",
                                        "/api/standby/failover/status",
                                        "/index.html"};
    for (size_t i = 0; i < sizeof paths / sizeof paths[0]; i++) {
        api_request req;
        api_response resp;
        char buf[API_PATH_MAX];
        assert_null(route("GET", paths[i], &req, buf, sizeof buf, &resp));
        if (resp.status != 404)
            fail_msg("GET %s: %d, expected 404", paths[i], resp.status);
        json_decref(resp.body);
    }
    /* a known path with another method: 405 with Allow, still not routed */
    api_request req;
    api_response resp;
    char buf[API_PATH_MAX];
    assert_null(route("PUT", "/api/workloads", &req, buf, sizeof buf, &resp));
    assert_int_equal(resp.status, 405);
    assert_string_equal(resp.allow, "GET, HEAD");
    json_decref(resp.body);
}

/* GATE-G4 for agent-body routes: the body's instance must be the agent's. */
static void test_agent_body(void **state)
{
    (void)state;
    api_request req;
    api_response resp;
    char buf[API_PATH_MAX];
    const api_route_def *r = route("POST", "/api/instances/register", &req, buf, sizeof buf, &resp);
    assert_non_null(r);
    assert_int_equal(r->access, API_ACC_AGENT_BODY);
    static const char *const bodies[] = {"{\"instance_id\": 20002}",
                                         "{\"instance_id\": \"20001\"}",
                                         "{}",
                                         "",
                                         "[20001]",
                                         "{\"instance_id\": 20001.0}",
                                         "{",
                                         "{\"instance_id\": 20002, \"instance_id\": 20001}",
                                         "{\"instance_id\": 20001, \"instance_id\": 20002}"};
    for (size_t i = 0; i < sizeof bodies / sizeof bodies[0]; i++) {
        req.body = bodies[i];
        req.body_len = strlen(bodies[i]);
        memset(&resp, 0, sizeof resp);
        assert_int_equal(gate_allow(r, &req, &creds[C_OWN], 1, &resp), -1);
        assert_int_equal(resp.status, 403);
        json_decref(resp.body);
    }
    req.body = "{\"instance_id\": 20001, \"kind\": \"gpu\"}";
    req.body_len = strlen(req.body);
    memset(&resp, 0, sizeof resp);
    assert_int_equal(gate_allow(r, &req, &creds[C_OWN], 1, &resp), 0);
    /* an agent whose credential names no instance is nobody's agent */
    api_cred bad = {.role = API_ROLE_AGENT, .name = "x", .instance_id = 0};
    req.body = "{\"instance_id\": 0}";
    req.body_len = strlen(req.body);
    assert_int_equal(gate_allow(r, &req, &bad, 1, &resp), -1);
    assert_int_equal(resp.status, 403);
    json_decref(resp.body);
}

static void test_canonical_and_ids(void **state)
{
    (void)state;
    assert_true(gate_path_canonical("/"));
    assert_true(gate_path_canonical("/api/x"));
    assert_true(gate_path_canonical("/a.b/..c/.d"));
    assert_false(gate_path_canonical(""));
    assert_false(gate_path_canonical("api/x"));
    assert_false(gate_path_canonical("//"));
    assert_false(gate_path_canonical("/api/x/"));
    assert_false(gate_path_canonical("/api/./x"));
    assert_false(gate_path_canonical("/api/../x"));
    assert_false(gate_path_canonical("/api/%78"));
    assert_false(gate_path_canonical("/api/\x01"));
    char longp[API_PATH_MAX + 2];
    memset(longp, 'a', sizeof longp);
    longp[0] = '/';
    longp[sizeof longp - 1] = '\0';
    assert_false(gate_path_canonical(longp));
    char many[4 * (API_MAX_SEGMENTS + 1) + 1] = "";
    for (int i = 0; i <= API_MAX_SEGMENTS; i++)
        memcpy(many + 3 * i, "/ab", 4);
    assert_false(gate_path_canonical(many));
    assert_int_equal(gate_parse_id("20001"), 20001);
    assert_int_equal(gate_parse_id("9007199254740992"), (int64_t)1 << 53);
    assert_int_equal(gate_parse_id("9007199254740993"), -1);
    assert_int_equal(gate_parse_id("020001"), -1);
    assert_int_equal(gate_parse_id("0"), -1);
    assert_int_equal(gate_parse_id("1a"), -1);
    assert_int_equal(gate_parse_id(""), -1);
    assert_int_equal(gate_parse_id(NULL), -1);
}

static void test_role_names(void **state)
{
    (void)state;
    api_role r;
    static const char *const names[] = {"admin", "viewer", "client", "agent"};
    for (size_t i = 0; i < 4; i++) {
        assert_int_equal(api_role_parse(names[i], &r), 0);
        assert_string_equal(api_role_name(r), names[i]);
    }
    assert_int_equal(api_role_parse("none", &r), -1);
    assert_int_equal(api_role_parse("Admin", &r), -1);
    assert_int_equal(api_role_parse(NULL, &r), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_route_matrix), cmocka_unit_test(test_unknown_paths),
        cmocka_unit_test(test_agent_body),   cmocka_unit_test(test_canonical_and_ids),
        cmocka_unit_test(test_role_names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

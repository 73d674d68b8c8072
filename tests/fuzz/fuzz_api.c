/* libFuzzer target: the REST API's request handling, without sockets.
 *
 * The first input byte picks what is fuzzed; the rest is the body, the path,
 * or newline-separated query values:
 *   0 POST test-setup body     1 POST simulate/1 body     2 GET report query
 *   3 GET list query           4 any method/path          5 clock_parse_time
 * Checked: no crash, no sanitizer report, and every response is a JSON object
 * with a status in 200..599 whose errors carry "error" and "detail" (API-H1). */
#include "api/http.h"
#include "db/db.h"
#include "failover/orchestrator.h"
#include "util/clock.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static api_ctx ctx;
static const char *query_vals[6];
static const char *const query_keys[6] = {"kind",  "gpu_instance_id", "since",
                                          "until", "limit",           "offset"};

static const char *fake_query(void *conn, const char *key)
{
    for (int i = 0; i < 6; i++)
        if (strcmp(query_keys[i], key) == 0)
            return query_vals[i];
    return NULL;
}

static void init_once(void)
{
    if (ctx.db)
        return;
    char dir[] = "/tmp/dumont-fuzz-XXXXXX", path[64], err[256];
    if (!mkdtemp(dir))
        abort();
    snprintf(path, sizeof path, "%s/dumont.db", dir);
    if (db_open(path, &ctx.db, err, sizeof err) || fo_orch_new(ctx.db, 1e9, &ctx.orch))
        abort();
    fo_assoc a = {.gpu_instance_id = 1, .created_at_ms = clock_wall_ms()};
    snprintf(a.standby_id, sizeof a.standby_id, "standby-1");
    snprintf(a.provider, sizeof a.provider, "sim");
    if (db_assoc_put(ctx.db, &a, err, sizeof err))
        abort();
}

static void split(char *s, api_request *req)
{
    for (char *p = s; *p && req->nsegs < API_MAX_SEGMENTS;) {
        while (*p == '/')
            *p++ = '\0';
        if (!*p)
            break;
        req->segs[req->nsegs++] = p;
        while (*p && *p != '/')
            p++;
    }
}

static void run(const char *method, char *path, const char *body, size_t body_len)
{
    api_request req = {.method = method, .path = path, .query = fake_query, .conn = NULL};
    char copy[API_PATH_MAX];
    snprintf(copy, sizeof copy, "%s", path);
    split(copy, &req);
    req.body = body_len ? body : NULL;
    req.body_len = body_len;
    api_response resp = {.status = 0};
    api_route(&ctx, &req, &resp);
    if (!json_is_object(resp.body) || resp.status < 200 || resp.status > 599)
        abort();
    if (resp.status >= 400 && (!json_is_string(json_object_get(resp.body, "error")) ||
                               !json_is_string(json_object_get(resp.body, "detail"))))
        abort();
    json_decref(resp.body);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1 || size > 70000)
        return 0;
    init_once();
    char *rest = malloc(size); /* NUL-terminated copy of data[1..] */
    memcpy(rest, data + 1, size - 1);
    rest[size - 1] = '\0';
    size_t n = size - 1;
    char path[API_PATH_MAX];
    memset(query_vals, 0, sizeof query_vals);
    switch (data[0] % 6) {
    case 0:
        snprintf(path, sizeof path, "/api/standby/failover/test-setup");
        run("POST", path, rest, n);
        break;
    case 1:
        snprintf(path, sizeof path, "/api/standby/failover/simulate/1");
        run("POST", path, rest, n);
        break;
    case 2:
    case 3: {
        char *p = rest;
        for (int i = 0; i < 6 && p; i++) {
            query_vals[i] = p;
            p = strchr(p, '\n');
            if (p)
                *p++ = '\0';
        }
        snprintf(path, sizeof path, "/api/standby/failover/%s",
                 data[0] % 6 == 2 ? "report" : "list");
        run("GET", path, NULL, 0);
        break;
    }
    case 4: {
        const char *methods[] = {"GET", "POST", "DELETE", "PUT"};
        snprintf(path, sizeof path, "%s", rest);
        run(methods[(data[0] / 6) % 4], path, NULL, 0);
        break;
    }
    default: {
        int64_t t;
        clock_parse_time(rest, clock_wall_ms(), &t);
        break;
    }
    }
    free(rest);
    return 0;
}

/* Routes without HTTP, for the route unit tests: a request is built in
 * memory and passed to api_route() over a real SQLite database in a scratch
 * directory (and, when asked, an orchestrator with no provider attached).
 * Header-only (static inline: each test uses what it needs). */
#ifndef DUMONT_TESTS_ROUTE_FIXTURE_H
#define DUMONT_TESTS_ROUTE_FIXTURE_H

#include "api/http.h"
#include "db/db.h"
#include "failover/orchestrator.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

typedef struct {
    char dir[64];
    api_ctx ctx;
    const char *qkeys[4], *qvals[4];
    char segbuf[512];
} fixture;

static fixture *fx_now; /* the current test's fixture */

static inline const char *fake_query(void *conn, const char *key)
{
    fixture *fx = conn;
    for (int i = 0; i < 4 && fx->qkeys[i]; i++)
        if (strcmp(fx->qkeys[i], key) == 0)
            return fx->qvals[i];
    return NULL;
}

/* A fixture with a fresh database; with_orch adds an orchestrator. */
static inline fixture *rfx_new(const char *name, int with_orch)
{
    fixture *fx = calloc(1, sizeof *fx);
    assert_non_null(fx);
    snprintf(fx->dir, sizeof fx->dir, "/tmp/dumont-%s-XXXXXX", name);
    assert_non_null(mkdtemp(fx->dir));
    char path[128], err[256];
    snprintf(path, sizeof path, "%s/dumont.db", fx->dir);
    assert_int_equal(db_open(path, &fx->ctx.db, err, sizeof err), 0);
    if (with_orch)
        assert_int_equal(fo_orch_new(fx->ctx.db, 1e6, &fx->ctx.orch), 0);
    fx_now = fx;
    return fx;
}

/* Removes path and, for a directory, everything below it (no symlink is
 * followed: lstat). */
static inline void rfx_rm(const char *path)
{
    struct stat st;
    if (lstat(path, &st) != 0)
        return;
    if (S_ISDIR(st.st_mode)) {
        DIR *d = opendir(path);
        for (struct dirent *e; d && (e = readdir(d));) {
            char sub[512];
            if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0 &&
                snprintf(sub, sizeof sub, "%s/%s", path, e->d_name) < (int)sizeof sub)
                rfx_rm(sub);
        }
        if (d)
            closedir(d);
        rmdir(path);
    } else {
        unlink(path);
    }
}

/* Frees the fixture and removes its scratch directory with all it holds. */
static inline void rfx_free(fixture *fx)
{
    fo_orch_free(fx->ctx.orch);
    db_close(fx->ctx.db);
    rfx_rm(fx->dir);
    if (fx_now == fx)
        fx_now = NULL;
    free(fx);
}

static inline void set_query(fixture *fx, const char *k0, const char *v0, const char *k1,
                             const char *v1)
{
    memset(fx->qkeys, 0, sizeof fx->qkeys);
    fx->qkeys[0] = k0;
    fx->qvals[0] = v0;
    fx->qkeys[1] = k1;
    fx->qvals[1] = v1;
}

/* Runs one request; returns the response (caller json_decref's body). */
static inline api_response call(fixture *fx, const char *method, const char *path, const char *body)
{
    api_request req = {.method = method, .path = path, .query = fake_query, .conn = fx};
    snprintf(fx->segbuf, sizeof fx->segbuf, "%s", path);
    char *save = NULL;
    for (char *t = strtok_r(fx->segbuf, "/", &save); t; t = strtok_r(NULL, "/", &save))
        req.segs[req.nsegs++] = t;
    req.body = body;
    req.body_len = body ? strlen(body) : 0;
    api_response resp = {.status = 0};
    api_route(&fx->ctx, &req, &resp);
    assert_non_null(resp.body); /* API-A2 */
    return resp;
}

/* The request answers status; with code, an error object with that code. */
static inline void expect(fixture *fx, const char *method, const char *path, const char *body,
                          int status, const char *code)
{
    api_response r = call(fx, method, path, body);
    if (r.status != status)
        fail_msg("%s %s %s: status %d (%s), expected %d", method, path, body ? body : "", r.status,
                 json_string_value(json_object_get(r.body, "detail")), status);
    if (code) {
        assert_string_equal(json_string_value(json_object_get(r.body, "error")), code);
        assert_true(json_is_string(json_object_get(r.body, "detail")));
    }
    json_decref(r.body);
}

static inline void expect_error(fixture *fx, const char *method, const char *path, const char *body,
                                int status, const char *code)
{
    expect(fx, method, path, body, status, code);
}

#endif

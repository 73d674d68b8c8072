/* The snapshot report routes (src/api/routes_snapshots.c API-RS1 to API-RS3) without
 * HTTP: requests built in memory, passed to api_route() over a real SQLite
 * database and an orchestrator whose store is a file:// store in the
 * scratch directory, holding real snapshots. The agent is untrusted: every
 * malformed report is a 400 that records nothing, and a report of a
 * snapshot that is not in the server's store is a 422 that records
 * nothing (orchestrator.h ORCH-O10 to ORCH-O11). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "api/http.h"
#include "db/db.h"
#include "db/db_fleet.h"
#include "db/db_instance.h"
#include "db/db_internal.h"
#include "failover/orchestrator.h"
#include "snapshot/snapshot.h"
#include "store/store.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "route_fixture.h"

static char g_store[160];

static int setup(void **state)
{
    fixture *fx = rfx_new("rsnap", 1);
    char err[256];
    snprintf(g_store, sizeof g_store, "file://%s/store", fx->dir);
    assert_int_equal(fo_orch_set_store(fx->ctx.orch, g_store, err, sizeof err), 0);
    *state = fx;
    return 0;
}

/* A real snapshot of a small tree (content differs by n) in the store at
 * url; its id in id (65 bytes). */
static void make_snapshot(const fixture *fx, const char *url, int n, char *id)
{
    char dir[128], file[160], err[256];
    snprintf(dir, sizeof dir, "%s/src%d", fx->dir, n);
    assert_int_equal(mkdir(dir, 0700), 0);
    snprintf(file, sizeof file, "%s/data", dir);
    FILE *f = fopen(file, "w");
    assert_non_null(f);
    for (int i = 0; i < 100 * (n + 1); i++)
        fprintf(f, "line %d of %d\n", i, n);
    fclose(f);
    dm_store *st = NULL;
    snap_info si;
    snap_opts so;
    snap_opts_init(&so);
    so.threads = 1;
    assert_int_equal(store_open(url, &st, err, sizeof err), 0);
    assert_int_equal(snap_create(st, dir, &so, &si, err, sizeof err), 0);
    store_close(st);
    memcpy(id, si.id, 65);
    usleep(3000); /* the next one is newer by its creation time */
}

static int teardown(void **state)
{
    rfx_free(*state);
    return 0;
}

/* A report as the agent sends it (no `store`: API-RS3 makes it optional). */
static const char good[] =
    "{\"snapshot_id\": \"%s\", \"epoch\": 0, \"size_bytes\": 10, \"stored_bytes\": 5,"
    " \"files\": 2, \"created_at_ms\": %s, \"creation_time_ms\": 7,"
    " \"trigger\": \"scheduled\"}";

static void reg(fixture *fx, int64_t id)
{
    dm_instance in;
    char err[256];
    memset(&in, 0, sizeof in);
    in.instance_id = id;
    snprintf(in.kind, sizeof in.kind, "gpu");
    snprintf(in.key_id, sizeof in.key_id, "k");
    snprintf(in.state, sizeof in.state, "pending");
    in.registered_at_ms = 1;
    assert_int_equal(db_instance_register(fx->ctx.db, &in, err, sizeof err), 0);
}

static int count(fixture *fx, int64_t id)
{
    dm_snapshot *l = NULL;
    size_t n = 0;
    char err[256];
    assert_int_equal(db_snapshot_list(fx->ctx.db, id, 100, &l, &n, err, sizeof err), 0);
    free(l);
    return (int)n;
}

/* API-RS1. */
static void test_validation(void **state)
{
    fixture *fx = *state;
    char body[1024];
    const char *p = "/api/instances/7/snapshots";
    reg(fx, 7);
    expect_error(fx, "POST", p, "{not json", 400, "bad_request");
    expect_error(fx, "POST", p, "[]", 400, "bad_request");
    expect_error(fx, "POST", p, "{}", 400, "bad_request");
    expect_error(fx, "POST", p, "{\"snapshot_id\": \"ab\"}", 400, "bad_request"); /* missing */
    snprintf(body, sizeof body, good, "ab", "1e30"); /* a real, not an integer */
    expect_error(fx, "POST", p, body, 400, "bad_request");
    snprintf(body, sizeof body, good, "ab", "99999999999999999999"); /* huge */
    expect_error(fx, "POST", p, body, 400, "bad_request");
    snprintf(body, sizeof body, good, "ab", "-1");
    expect_error(fx, "POST", p, body, 400, "bad_request");
    snprintf(body, sizeof body, good, "ab", "9007199254740993"); /* > 2^53 */
    expect_error(fx, "POST", p, body, 400, "bad_request");
    snprintf(body, sizeof body, good, "../../etc", "1"); /* outside the id alphabet */
    expect_error(fx, "POST", p, body, 400, "bad_request");
    char longid[200];
    memset(longid, 'a', 100);
    longid[100] = '\0';
    snprintf(body, sizeof body, good, longid, "1");
    expect_error(fx, "POST", p, body, 400, "bad_request");
    snprintf(body, sizeof body, good, "ab", "1");
    char *extra = strrchr(body, '}');
    snprintf(extra, sizeof body - (size_t)(extra - body), ", \"evil\": 1}"); /* unknown key */
    expect_error(fx, "POST", p, body, 400, "bad_request");
    snprintf(body, sizeof body, good, "ab", "1");
    char *trig = strstr(body, "scheduled");
    memcpy(trig, "sch\\u0000d", 10); /* an embedded NUL */
    expect_error(fx, "POST", p, body, 400, "bad_request");
    snprintf(body, sizeof body, good, "ab", "1");
    trig = strstr(body, "scheduled");
    memcpy(trig, "whenever ", 9); /* not a trigger */
    expect_error(fx, "POST", p, body, 400, "bad_request");
    snprintf(body, sizeof body, good, "ab", "1");
    expect_error(fx, "POST", "/api/instances/0/snapshots", body, 400, "bad_request");
    expect_error(fx, "POST", "/api/instances/x1/snapshots", body, 400, "bad_request");
    fx->qkeys[0] = "limit";
    fx->qvals[0] = "0";
    expect_error(fx, "GET", "/api/instances/7/snapshots", NULL, 400, "bad_request");
    fx->qvals[0] = "1001";
    expect_error(fx, "GET", "/api/instances/7/snapshots", NULL, 400, "bad_request");
    fx->qkeys[0] = NULL;
    assert_int_equal(count(fx, 7), 0); /* nothing recorded by any of them */
}

/* API-RS2: recorded, listed, unknown, refused. */
static void test_record_and_list(void **state)
{
    fixture *fx = *state;
    char body[1024];
    char id1[65], id2[65], id3[65];
    make_snapshot(fx, g_store, 1, id1);
    make_snapshot(fx, g_store, 2, id2);
    make_snapshot(fx, g_store, 3, id3);
    reg(fx, 7);
    snprintf(body, sizeof body, good, id1, "1000");
    api_response r = call(fx, "POST", "/api/instances/7/snapshots", body);
    assert_int_equal(r.status, 201);
    assert_string_equal(json_string_value(json_object_get(r.body, "snapshot_id")), id1);
    /* API-RS3: the manifest's numbers and the server's store, not the report's */
    assert_true(json_integer_value(json_object_get(r.body, "size_bytes")) > 1000);
    assert_int_equal(json_integer_value(json_object_get(r.body, "files")), 1);
    assert_true(json_integer_value(json_object_get(r.body, "created_at_ms")) > 1000);
    assert_string_equal(json_string_value(json_object_get(r.body, "store")), g_store);
    assert_true(json_is_null(json_object_get(r.body, "workload_id")));
    json_decref(r.body);
    snprintf(body, sizeof body, good, id2, "2000");
    r = call(fx, "POST", "/api/instances/7/snapshots", body);
    assert_int_equal(r.status, 201);
    json_decref(r.body);
    r = call(fx, "POST", "/api/instances/7/snapshots", body); /* again: same answer */
    assert_int_equal(r.status, 201);
    json_decref(r.body);
    fx->qkeys[0] = "limit";
    fx->qvals[0] = "1";
    r = call(fx, "GET", "/api/instances/7/snapshots", NULL);
    assert_int_equal(r.status, 200);
    json_t *a = json_object_get(r.body, "snapshots");
    assert_int_equal(json_array_size(a), 1);
    assert_string_equal(json_string_value(json_object_get(json_array_get(a, 0), "snapshot_id")),
                        id2);
    json_decref(r.body);
    fx->qkeys[0] = NULL;
    r = call(fx, "GET", "/api/instances/7/snapshots", NULL);
    assert_int_equal(json_array_size(json_object_get(r.body, "snapshots")), 2);
    json_decref(r.body);
    snprintf(body, sizeof body, good, id3, "1000");
    expect_error(fx, "POST", "/api/instances/8/snapshots", body, 404, "not_found");
    /* a destroyed (fenced) machine: 409, nothing recorded */
    char err[256];
    pthread_mutex_lock(&fx->ctx.db->lock);
    assert_int_equal(db_x(fx->ctx.db,
                          "INSERT INTO machines (instance_id, provider, epoch, state, test,"
                          " created_at_ms) VALUES (20001, 'local', 0, 'destroyed', 0, 1)",
                          NULL, 0, NULL, NULL, NULL, err, sizeof err),
                     0);
    pthread_mutex_unlock(&fx->ctx.db->lock);
    expect_error(fx, "POST", "/api/instances/20001/snapshots", body, 409, "conflict");
    assert_int_equal(count(fx, 20001), 0);
}

/* API-RS3: only snapshots of the server's own store are recorded. */
static void test_store_is_configuration(void **state)
{
    fixture *fx = *state;
    char body[1400], other[200], mine[65], theirs[65];
    const char *p = "/api/instances/7/snapshots";
    snprintf(other, sizeof other, "file://%s/other-store", fx->dir);
    make_snapshot(fx, g_store, 1, mine);
    make_snapshot(fx, other, 2, theirs);
    reg(fx, 7);
    /* naming another store: refused, even for a snapshot this store has */
    snprintf(body, sizeof body,
             "{\"snapshot_id\": \"%s\", \"epoch\": 0, \"store\": \"%s\","
             " \"trigger\": \"manual\"}",
             mine, other);
    expect_error(fx, "POST", p, body, 422, "foreign_store");
    /* a snapshot of the other store, reported without naming it */
    snprintf(body, sizeof body, good, theirs, "1");
    expect_error(fx, "POST", p, body, 422, "unknown_snapshot");
    /* ... or naming this one */
    snprintf(body, sizeof body,
             "{\"snapshot_id\": \"%s\", \"epoch\": 0, \"store\": \"%s\","
             " \"trigger\": \"manual\"}",
             theirs, g_store);
    expect_error(fx, "POST", p, body, 422, "unknown_snapshot");
    /* an id of the right form that no store holds, and one of the wrong form */
    snprintf(body, sizeof body, good,
             "00000000000000000000000000000000000000000000000000000000000000ff", "1");
    expect_error(fx, "POST", p, body, 422, "unknown_snapshot");
    snprintf(body, sizeof body, good, "ab01", "1");
    expect_error(fx, "POST", p, body, 422, "unknown_snapshot");
    /* a damaged manifest: the object's hash is not its id */
    char path[400];
    snprintf(path, sizeof path, "%s/store/snapshots/%s", fx->dir, mine);
    FILE *f = fopen(path, "r+b");
    assert_non_null(f);
    fseek(f, 40, SEEK_SET);
    fputc('X', f);
    fclose(f);
    snprintf(body, sizeof body, good, mine, "1");
    expect_error(fx, "POST", p, body, 422, "unknown_snapshot");
    assert_int_equal(count(fx, 7), 0); /* none of them recorded */
    /* its own store, by its display name: accepted */
    char ok[65];
    make_snapshot(fx, g_store, 3, ok);
    snprintf(body, sizeof body,
             "{\"snapshot_id\": \"%s\", \"epoch\": 0, \"store\": \"%s\","
             " \"trigger\": \"manual\"}",
             ok, g_store);
    expect(fx, "POST", p, body, 201, NULL);
    assert_int_equal(count(fx, 7), 1);
    /* no store configured: nothing can be checked, nothing is recorded */
    fo_orch_free(fx->ctx.orch);
    assert_int_equal(fo_orch_new(fx->ctx.db, 1e6, &fx->ctx.orch), 0);
    expect_error(fx, "POST", p, body, 503, "unavailable");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_validation, setup, teardown),
        cmocka_unit_test_setup_teardown(test_record_and_list, setup, teardown),
        cmocka_unit_test_setup_teardown(test_store_is_configuration, setup, teardown),
    };
    return cmocka_run_group_tests_name("routes_snapshots", tests, NULL, NULL);
}

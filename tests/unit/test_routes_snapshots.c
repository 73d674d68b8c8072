/* The snapshot report routes (src/api/routes_snapshots.c RS1-RS2) without
 * HTTP: requests built in memory, passed to api_route() over a real SQLite
 * database. The agent is untrusted: every malformed report is a 400 that
 * records nothing. */
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

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "route_fixture.h"

static int setup(void **state)
{
    *state = rfx_new("rsnap", 0);
    return 0;
}

static int teardown(void **state)
{
    rfx_free(*state);
    return 0;
}

static const char good[] =
    "{\"snapshot_id\": \"%s\", \"epoch\": 0, \"size_bytes\": 10, \"stored_bytes\": 5,"
    " \"files\": 2, \"created_at_ms\": %s, \"creation_time_ms\": 7,"
    " \"store\": \"file:///tmp/s\", \"trigger\": \"scheduled\"}";

static void reg(fixture *fx, int64_t id)
{
    db_instance in;
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
    db_snapshot *l = NULL;
    size_t n = 0;
    char err[256];
    assert_int_equal(db_snapshot_list(fx->ctx.db, id, 100, &l, &n, err, sizeof err), 0);
    free(l);
    return (int)n;
}

/* RS1. */
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

/* RS2: recorded, listed, unknown, refused. */
static void test_record_and_list(void **state)
{
    fixture *fx = *state;
    char body[1024];
    reg(fx, 7);
    snprintf(body, sizeof body, good, "ab01", "1000");
    api_response r = call(fx, "POST", "/api/instances/7/snapshots", body);
    assert_int_equal(r.status, 201);
    assert_string_equal(json_string_value(json_object_get(r.body, "snapshot_id")), "ab01");
    assert_int_equal(json_integer_value(json_object_get(r.body, "size_bytes")), 10);
    assert_true(json_is_null(json_object_get(r.body, "workload_id")));
    json_decref(r.body);
    snprintf(body, sizeof body, good, "ab02", "2000");
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
                        "ab02");
    json_decref(r.body);
    fx->qkeys[0] = NULL;
    r = call(fx, "GET", "/api/instances/7/snapshots", NULL);
    assert_int_equal(json_array_size(json_object_get(r.body, "snapshots")), 2);
    json_decref(r.body);
    snprintf(body, sizeof body, good, "ab03", "1000");
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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_validation, setup, teardown),
        cmocka_unit_test_setup_teardown(test_record_and_list, setup, teardown),
    };
    return cmocka_run_group_tests_name("routes_snapshots", tests, NULL, NULL);
}

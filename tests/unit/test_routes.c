/* Route and handler tests (src/api/routes.c API-A1 to API-A2, docs/api.md), without HTTP:
 * requests are built in memory and passed to api_route() over a real SQLite db. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "api/http.h"
#include "db/db.h"
#include "failover/orchestrator.h"
#include "util/clock.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "route_fixture.h"

static int setup(void **state)
{
    *state = rfx_new("routes", 1);
    return 0;
}

static int teardown(void **state)
{
    rfx_free(*state);
    return 0;
}

static void test_unknown_and_wrong_method(void **state)
{
    fixture *fx = *state;
    expect_error(fx, "GET", "/api/nope", NULL, 404, "not_found");
    expect_error(fx, "GET", "/api/standby/failover/status", NULL, 404, "not_found");
    expect_error(fx, "GET", "/api/standby/failover/status/a/b", NULL, 404, "not_found");
    api_response r = call(fx, "DELETE", "/api/standby/failover/report", NULL);
    assert_int_equal(r.status, 405);
    assert_string_equal(r.allow, "GET, HEAD");
    json_decref(r.body);
    r = call(fx, "HEAD", "/api/standby/failover/report", NULL); /* HEAD is GET (RFC 9110) */
    assert_int_equal(r.status, 200);
    json_decref(r.body);
    /* request bytes that are not UTF-8 still give a JSON error (fuzz finding) */
    expect_error(fx, "GET", "/api/x/\363iZ", NULL, 404, "not_found");
    expect_error(fx, "GET", "/api/standby/failover/test-setup", NULL, 405, "method_not_allowed");
}

static void test_test_setup_validation(void **state)
{
    fixture *fx = *state;
    const char *p = "/api/standby/failover/test-setup";
    expect_error(fx, "POST", p, NULL, 400, "bad_request");
    expect_error(fx, "POST", p, "{", 400, "bad_request");
    expect_error(fx, "POST", p, "[1]", 400, "bad_request");
    expect_error(fx, "POST", p, "{\"gpu_instance_id\": \"12\"}", 400, "bad_request");
    expect_error(fx, "POST", p, "{\"gpu_instance_id\": 0}", 400, "bad_request");
    expect_error(fx, "POST", p, "{\"gpu_instance_id\": 1.5}", 400, "bad_request");
    expect_error(fx, "POST", p, "{\"gpu_instance_id\": 9007199254740993}", 400, "bad_request");
    expect_error(fx, "POST", p, "{\"gpu_instance_id\": 5, \"x\": 1}", 400, "bad_request");
    expect_error(fx, "POST", p, "{\"gpu_instance_id\": 5, \"gpu_instance_id\": 6}", 400,
                 "bad_request");
    expect_error(fx, "POST", p, "{\"gpu_instance_id\": 5, \"standby_id\": \"a\\nb\"}", 400,
                 "bad_request");
    api_response r = call(fx, "POST", p, "{\"gpu_instance_id\": 12345, \"gcp_zone\": \"eu-1\"}");
    assert_int_equal(r.status, 201);
    assert_int_equal(json_integer_value(json_object_get(r.body, "gpu_instance_id")), 12345);
    assert_string_equal(json_string_value(json_object_get(r.body, "standby_id")), "standby-12345");
    assert_string_equal(json_string_value(json_object_get(r.body, "gcp_zone")), "eu-1");
    json_decref(r.body);
}

static void test_simulate_and_status(void **state)
{
    fixture *fx = *state;
    expect_error(fx, "POST", "/api/standby/failover/simulate/abc", NULL, 400, "bad_request");
    expect_error(fx, "POST", "/api/standby/failover/simulate/-3", NULL, 400, "bad_request");
    expect_error(fx, "POST", "/api/standby/failover/simulate/777", NULL, 404, "not_found");
    api_response r =
        call(fx, "POST", "/api/standby/failover/test-setup", "{\"gpu_instance_id\": 777}");
    json_decref(r.body);
    expect_error(fx, "POST", "/api/standby/failover/simulate/777", "{\"fail_phase\": \"x\"}", 400,
                 "bad_request");
    expect_error(fx, "POST", "/api/standby/failover/simulate/777", "{\"speed\": 0}", 400,
                 "bad_request");
    r = call(fx, "POST", "/api/standby/failover/simulate/777", "{\"seed\": 3}");
    assert_int_equal(r.status, 202);
    char id[64];
    snprintf(id, sizeof id, "%s", json_string_value(json_object_get(r.body, "failover_id")));
    json_decref(r.body);
    char path[128];
    snprintf(path, sizeof path, "/api/standby/failover/status/%s", id);
    int64_t deadline = clock_mono_ms() + 10000;
    for (;;) {
        r = call(fx, "GET", path, NULL);
        assert_int_equal(r.status, 200);
        const char *st = json_string_value(json_object_get(r.body, "state"));
        if (strcmp(st, "completed") == 0)
            break;
        json_decref(r.body);
        assert_true(clock_mono_ms() < deadline);
        clock_sleep_ms(5, NULL);
    }
    json_t *phases = json_object_get(r.body, "phases");
    assert_int_equal(json_array_size(phases), 7);
    assert_true(json_is_null(json_object_get(r.body, "current_phase")));
    assert_true(json_is_true(json_object_get(r.body, "success")));
    int64_t sum = 0;
    for (size_t i = 0; i < 7; i++) {
        json_t *p = json_array_get(phases, i);
        assert_int_equal(json_integer_value(json_object_get(p, "offset_ms")), sum);
        sum += json_integer_value(json_object_get(p, "duration_ms"));
    }
    assert_int_equal(json_integer_value(json_object_get(r.body, "total_time_ms")), sum);
    json_decref(r.body);
    expect_error(fx, "GET", "/api/standby/failover/status/sim-nothere", NULL, 404, "not_found");
}

static void test_report_and_list(void **state)
{
    fixture *fx = *state;
    api_response r = call(fx, "GET", "/api/standby/failover/report", NULL);
    assert_int_equal(r.status, 200);
    json_t *all = json_object_get(r.body, "all");
    assert_int_equal(json_integer_value(json_object_get(all, "total")), 0);
    assert_true(json_is_null(json_object_get(all, "success_rate")));
    assert_true(json_is_null(json_object_get(json_object_get(all, "mttr_ms"), "p95")));
    json_decref(r.body);
    fx->qkeys[0] = "kind";
    fx->qvals[0] = "bogus";
    expect_error(fx, "GET", "/api/standby/failover/report", NULL, 400, "bad_request");
    fx->qvals[0] = "real";
    fx->qkeys[1] = "since";
    fx->qvals[1] = "yesterday";
    expect_error(fx, "GET", "/api/standby/failover/report", NULL, 400, "bad_request");
    fx->qvals[1] = "24h";
    r = call(fx, "GET", "/api/standby/failover/report", NULL);
    assert_int_equal(r.status, 200);
    json_decref(r.body);
    fx->qkeys[0] = "limit";
    fx->qvals[0] = "0";
    fx->qkeys[1] = NULL;
    expect_error(fx, "GET", "/api/standby/failover/list", NULL, 400, "bad_request");
    fx->qvals[0] = "5";
    r = call(fx, "GET", "/api/standby/failover/list", NULL);
    assert_int_equal(r.status, 200);
    assert_int_equal(json_integer_value(json_object_get(r.body, "total")), 0);
    json_decref(r.body);
}

/* A finished failover of kind, 7 phases of ms each (no detection for a test). */
static void put_ended(fixture *fx, const char *id, fo_kind kind, int test, int64_t ms)
{
    fo_failover f;
    char err[256];
    assert_int_equal(fo_init(&f, id, 7, kind, 1000), 0);
    f.real.test = test;
    int64_t now = 1000;
    for (int p = 0; p < FO_PHASE_COUNT; p++) {
        fo_event ev = {FO_EV_PHASE_OK, now + ms, ms, kind == FO_KIND_SIMULATED, "", 0, 0};
        assert_int_equal(fo_transition(&f, &ev), 0);
        now += ms;
    }
    assert_int_equal(db_failover_insert(fx->ctx.db, &f, err, sizeof err), 0);
}

static int64_t group_total(json_t *report, const char *group)
{
    return json_integer_value(json_object_get(json_object_get(report, group), "total"));
}

/* The list (query as set) holds exactly the failover id. */
static void expect_only(fixture *fx, const char *id)
{
    api_response r = call(fx, "GET", "/api/standby/failover/list", NULL);
    assert_int_equal(r.status, 200);
    assert_int_equal(json_integer_value(json_object_get(r.body, "total")), 1);
    json_t *f0 = json_array_get(json_object_get(r.body, "failovers"), 0);
    assert_string_equal(json_string_value(json_object_get(f0, "failover_id")), id);
    json_decref(r.body);
}

/* API-Q1: test=false / test=true keep tests apart from real failovers in the
 * report and the list; active=true lists only the running ones, however old. */
static void test_report_test_and_active(void **state)
{
    fixture *fx = *state;
    char err[256];
    fo_failover run;
    assert_int_equal(fo_init(&run, "sim-running", 8, FO_KIND_SIMULATED, 500), 0);
    assert_int_equal(db_failover_insert(fx->ctx.db, &run, err, sizeof err), 0);
    put_ended(fx, "real-1", FO_KIND_REAL, 0, 100);
    put_ended(fx, "real-test", FO_KIND_REAL, 1, 10);
    for (int i = 0; i < 12; i++) { /* newer than the running one */
        char id[32];
        snprintf(id, sizeof id, "sim-%d", i);
        put_ended(fx, id, FO_KIND_SIMULATED, 0, 60000);
    }
    set_query(fx, "test", "false", NULL, NULL);
    api_response r = call(fx, "GET", "/api/standby/failover/report", NULL);
    assert_int_equal(r.status, 200);
    assert_int_equal(group_total(r.body, "real"), 1);
    assert_int_equal(group_total(r.body, "simulated"), 13);
    json_t *mttr = json_object_get(json_object_get(r.body, "real"), "mttr_ms");
    assert_int_equal(json_integer_value(json_object_get(mttr, "max")), 700); /* not the test's */
    json_decref(r.body);
    set_query(fx, "test", "true", "kind", "real");
    r = call(fx, "GET", "/api/standby/failover/report", NULL);
    assert_int_equal(group_total(r.body, "real"), 1);
    assert_int_equal(group_total(r.body, "simulated"), 0);
    json_decref(r.body);
    set_query(fx, "test", "true", NULL, NULL);
    expect_only(fx, "real-test");
    set_query(fx, "active", "true", "limit", "10");
    expect_only(fx, "sim-running");
    set_query(fx, "test", "maybe", NULL, NULL);
    expect_error(fx, "GET", "/api/standby/failover/report", NULL, 400, "bad_request");
    set_query(fx, "active", "2", NULL, NULL);
    expect_error(fx, "GET", "/api/standby/failover/list", NULL, 400, "bad_request");
}

/* test-real arrived with issue 6 (test_routes_fleet.c has the rest): without
 * a provider attached it is 503, and the history of no test is empty. */
static void test_later_endpoints_say_so(void **state)
{
    fixture *fx = *state;
    expect_error(fx, "POST", "/api/standby/failover/test-real/12345", NULL, 503, "unavailable");
    api_response r = call(fx, "GET", "/api/standby/failover/test-real/history", NULL);
    assert_int_equal(r.status, 200);
    assert_int_equal(json_integer_value(json_object_get(r.body, "total")), 0);
    json_decref(r.body);
}

/* API-S7: /healthz says "starting" (503) until the server is ready, then ok. */
static void test_healthz_starting(void **state)
{
    fixture *fx = *state;
    _Atomic int ready = 0;
    fx->ctx.ready = &ready;
    api_response r = call(fx, "GET", "/healthz", NULL);
    assert_int_equal(r.status, 503);
    assert_string_equal(json_string_value(json_object_get(r.body, "status")), "starting");
    json_decref(r.body);
    ready = 1;
    r = call(fx, "GET", "/healthz", NULL);
    assert_int_equal(r.status, 200);
    assert_string_equal(json_string_value(json_object_get(r.body, "status")), "ok");
    json_decref(r.body);
    fx->ctx.ready = NULL;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_unknown_and_wrong_method, setup, teardown),
        cmocka_unit_test_setup_teardown(test_test_setup_validation, setup, teardown),
        cmocka_unit_test_setup_teardown(test_simulate_and_status, setup, teardown),
        cmocka_unit_test_setup_teardown(test_report_and_list, setup, teardown),
        cmocka_unit_test_setup_teardown(test_report_test_and_active, setup, teardown),
        cmocka_unit_test_setup_teardown(test_later_endpoints_say_so, setup, teardown),
        cmocka_unit_test_setup_teardown(test_healthz_starting, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

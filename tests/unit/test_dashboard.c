/* Unit tests for the dashboard's server side that need no HTTP: the
 * embedded-asset table (src/api/static.h, API-ST1), the open paths
 * (src/api/dashboard.h, API-D1), the route probe behind GET /api/session's
 * "features", and the event bus without clients (src/api/events.h). */
#define _GNU_SOURCE /* memmem */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "api/dashboard.h"
#include "api/events.h"
#include "api/http.h"
#include "api/static.h"

#include <string.h>

/* API-ST1: the embedded table serves "/" and the assets by exact path only. */
static void test_static_table(void **state)
{
    (void)state;
    const api_asset *index = static_find("/");
    assert_non_null(index);
    assert_string_equal(index->content_type, "text/html; charset=utf-8");
    assert_true(index->len > 0);
    assert_non_null(memmem(index->data, index->len, "/assets/app.js", 14));
    const api_asset *js = static_find("/assets/app.js");
    assert_non_null(js);
    assert_string_equal(js->content_type, "text/javascript; charset=utf-8");
    assert_non_null(static_find("/assets/style.css"));
    assert_null(static_find("/assets/../index.html"));
    assert_null(static_find("/index.html"));
    assert_null(static_find("/assets/"));
    assert_null(static_find("/ASSETS/app.js"));
    assert_null(static_find(""));
}

static void test_route_exists(void **state)
{
    (void)state;
    assert_true(api_route_exists("GET", "/api/standby/failover/report"));
    assert_true(api_route_exists("GET", "/api/standby/failover/status/sim-123"));
    assert_true(api_route_exists("POST", "/api/standby/failover/simulate/5"));
    assert_false(api_route_exists("POST", "/api/standby/failover/report")); /* wrong method */
    assert_false(api_route_exists("GET", "/api/standby/failover/status"));  /* missing segment */
    assert_false(api_route_exists("GET", "/api/nothing-here"));
    assert_false(api_route_exists("GET", ""));
}

/* Publishing with no client, and shutting down twice, are harmless. */
static void test_bus_without_clients(void **state)
{
    (void)state;
    events_bus *b = NULL;
    assert_int_equal(events_bus_new(0, &b), 0);
    events_publish(b, "failover", "{}");
    assert_int_equal(events_client_count(b), 0);
    events_bus_shutdown(b);
    events_bus_shutdown(b);
    events_publish(b, "failover", "{}"); /* after shutdown: nothing */
    events_bus_free(b);
    events_bus_free(NULL);
    events_publish(NULL, "failover", "{}");
}

/* API-D4: a dashboard without an orchestrator still sets up and tears down. */
static void test_dashboard_lifecycle(void **state)
{
    (void)state;
    api_dashboard *d = NULL;
    assert_int_equal(dash_new(NULL, NULL, NULL, &d), 0);
    dash_shutdown(d);
    dash_free(d);
    dash_free(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_static_table),
        cmocka_unit_test(test_route_exists),
        cmocka_unit_test(test_bus_without_clients),
        cmocka_unit_test(test_dashboard_lifecycle),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/* metrics/metrics.h: families, series, histograms and the text exposition
 * format (MX-MX1 to MX-MX4). promtool checks the real server's output in
 * tests/integration/test_metrics.sh; here the exact text is checked. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "metrics/metrics.h"
#include "util/error.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char *render(mx_registry *r)
{
    char *out = NULL;
    size_t len = 0;
    assert_int_equal(mx_render(r, &out, &len), 0);
    assert_int_equal(strlen(out), len);
    return out;
}

static void test_counter_and_labels(void **state)
{
    (void)state;
    mx_registry *r;
    assert_int_equal(mx_new(&r), 0);
    static const char *const labels[] = {"kind", "result", NULL};
    assert_int_equal(mx_declare(r, "x_total", MX_COUNTER, "Things.", labels, NULL, 0), 0);
    assert_int_equal(mx_declare(r, "x_total", MX_COUNTER, "Again.", NULL, NULL, 0), -EEXIST);
    assert_int_equal(mx_add(r, "x_total", (const char *[]){"real", "ok"}, 2), 0);
    assert_int_equal(mx_add(r, "x_total", (const char *[]){"real", "ok"}, 1), 0);
    assert_int_equal(mx_add(r, "x_total", (const char *[]){"sim\"\n\\", "failed"}, 1), 0);
    assert_int_equal(mx_add(r, "x_total", (const char *[]){"real", "ok"}, -1),
                     DM_E_INVALID); /* MX-MX4 */
    assert_int_equal(mx_add(r, "nope", NULL, 1), DM_E_NOT_FOUND);
    char *out = render(r);
    assert_non_null(strstr(out, "# HELP x_total Things.\n# TYPE x_total counter\n"));
    assert_non_null(strstr(out, "x_total{kind=\"real\",result=\"ok\"} 3\n"));
    assert_non_null(
        strstr(out, "x_total{kind=\"sim\\\"\\n\\\\\",result=\"failed\"} 1\n")); /* MX-MX2 */
    free(out);
    mx_free(r);
}

static void test_histogram(void **state)
{
    (void)state;
    mx_registry *r;
    assert_int_equal(mx_new(&r), 0);
    const double b[] = {0.5, 1, 10};
    assert_int_equal(mx_declare(r, "d_seconds", MX_HISTOGRAM, "Durations.", NULL, b, 3), 0);
    const double bad[] = {1, 0.5};
    assert_int_equal(mx_declare(r, "e_seconds", MX_HISTOGRAM, "Bad.", NULL, bad, 2), DM_E_INVALID);
    assert_int_equal(mx_add(r, "d_seconds", NULL, 1), DM_E_INVALID);
    for (double v = 0.25; v < 40; v *= 2) /* 0.25 0.5 1 2 4 8 16 32 */
        assert_int_equal(mx_observe(r, "d_seconds", NULL, v), 0);
    char *out = render(r);
    assert_non_null(strstr(out, "# TYPE d_seconds histogram\n"
                                "d_seconds_bucket{le=\"0.5\"} 2\n"
                                "d_seconds_bucket{le=\"1\"} 3\n"
                                "d_seconds_bucket{le=\"10\"} 6\n"
                                "d_seconds_bucket{le=\"+Inf\"} 8\n"
                                "d_seconds_sum 63.75\n"
                                "d_seconds_count 8\n"));
    free(out);
    mx_free(r);
}

static void collect(mx_registry *r, void *ctx)
{
    int *calls = ctx;
    (*calls)++;
    mx_reset(r, "g");
    mx_set(r, "g", (const char *[]){"healthy"}, *calls * 10);
}

static void test_collector_gauge_and_caps(void **state)
{
    (void)state;
    mx_registry *r;
    assert_int_equal(mx_new(&r), 0);
    static const char *const st[] = {"state", NULL};
    assert_int_equal(mx_declare(r, "g", MX_GAUGE, "Now.", st, NULL, 0), 0);
    assert_int_equal(mx_declare(r, "plain", MX_GAUGE, "Unset.", NULL, NULL, 0), 0);
    int calls = 0;
    assert_int_equal(mx_add_collector(r, collect, &calls), 0);
    char *out = render(r);
    assert_non_null(strstr(out, "g{state=\"healthy\"} 10\n"));
    assert_non_null(strstr(out, "plain 0\n")); /* an unlabelled family always shows */
    free(out);
    out = render(r);
    assert_non_null(strstr(out, "g{state=\"healthy\"} 20\n"));
    assert_int_equal(calls, 2);
    free(out);
    char v[16];
    for (int i = 1; i < MX_SERIES_MAX; i++) { /* "healthy" is the first */
        snprintf(v, sizeof v, "s%d", i);
        assert_int_equal(mx_set(r, "g", (const char *[]){v}, 1), 0);
    }
    assert_int_equal(mx_set(r, "g", (const char *[]){"one-too-many"}, 1), DM_E_TOO_BIG); /* MX-MX1 */
    out = render(r);
    assert_non_null(strstr(out, "dumont_metrics_series_dropped_total 1\n"));
    assert_null(strstr(out, "one-too-many"));
    free(out);
    assert_int_equal(mx_declare(r, "0bad", MX_GAUGE, "x", NULL, NULL, 0), DM_E_INVALID);
    assert_int_equal(mx_declare(r, "h", MX_GAUGE, "x", (const char *[]){"le", NULL}, NULL, 0),
                     DM_E_INVALID);
    mx_free(r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_counter_and_labels),
        cmocka_unit_test(test_histogram),
        cmocka_unit_test(test_collector_gauge_and_caps),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

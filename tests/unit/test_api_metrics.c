/* api/metrics.h: counters rebuilt from the database at start (API-AM1), a
 * failover counted once (API-AM2), also when it ends during the rebuild (API-AM4),
 * snapshot reports and ages. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#define DBFX_NAME "apimetrics"
#include "db_fixture.h"

#include "api/metrics.h"
#include "core/failover.h"
#include "util/clock.h"

static void ended(fo_failover *f, const char *id, fo_kind kind, int fail)
{
    OK(fo_init(f, id, 7, kind, 1000));
    int64_t now = 1000;
    for (int p = 0; p < FO_PHASE_COUNT; p++) {
        fo_event ev = {fail && p == FO_PHASE_PROVISIONING ? FO_EV_PHASE_FAILED : FO_EV_PHASE_OK,
                       now + 500,
                       500,
                       kind == FO_KIND_SIMULATED,
                       "no offer",
                       0, 0};
        OK(fo_transition(f, &ev));
        now += 500;
        if (ev.kind == FO_EV_PHASE_FAILED)
            break;
    }
}

static __attribute__((noinline)) char *render(api_metrics *m)
{
    char *out = NULL;
    size_t len = 0;
    OK(api_metrics_render(m, &out, &len));
    return out;
}

static void test_rebuild_and_count_once(void **state)
{
    (void)state;
    dm_db *db = open_db();
    fo_failover f;
    ended(&f, "sim-1", FO_KIND_SIMULATED, 0);
    OK(db_failover_insert(db, &f, g_err, sizeof g_err));
    ended(&f, "sim-2", FO_KIND_SIMULATED, 1);
    OK(db_failover_insert(db, &f, g_err, sizeof g_err));
    OK(fo_init(&f, "sim-3", 8, FO_KIND_SIMULATED, 1000)); /* running: not counted */
    OK(db_failover_insert(db, &f, g_err, sizeof g_err));

    api_metrics *m;
    OK(api_metrics_new(db, NULL, NULL, &m, g_err, sizeof g_err));
    /* API-AM4: sim-3 was running at start; it ends (saved) while the rebuild may
     * be reading: the rebuild leaves it to the observer. */
    fo_failover end3;
    ended(&end3, "sim-3", FO_KIND_SIMULATED, 0);
    OK(db_failover_save(db, &end3, g_err, sizeof g_err));
    api_metrics_wait_rebuilt(m);
    char *out = render(m);
    assert_non_null(strstr(out, "dumont_failovers_total{kind=\"simulated\",trigger=\"simulate\","
                                "result=\"completed\"} 1\n"));
    assert_non_null(strstr(
        out,
        "dumont_failovers_total{kind=\"simulated\",trigger=\"simulate\",result=\"failed\"} 1\n"));
    assert_non_null(strstr(out, "dumont_failover_duration_seconds_count{kind=\"simulated\"} 2\n"));
    /* one of 7 phases ran 0.5 s in the completed one, 4 in the failed one (provisioning failed) */
    assert_non_null(strstr(out, "dumont_failover_phase_duration_seconds_count{kind=\"simulated\","
                                "phase=\"provisioning\"} 2\n"));
    assert_non_null(strstr(out, "dumont_failover_phase_duration_seconds_count{kind=\"simulated\","
                                "phase=\"inference\"} 1\n"));
    free(out);

    /* The observer hears of sim-3's end: counted once, however often (API-AM2). */
    api_metrics_on_failover(m, &end3);
    api_metrics_on_failover(m, &end3);
    out = render(m);
    assert_non_null(strstr(out, "dumont_failovers_total{kind=\"simulated\",trigger=\"simulate\","
                                "result=\"completed\"} 2\n"));
    free(out);
    api_metrics_free(m);
    db_close(db);
}

static void test_snapshots(void **state)
{
    (void)state;
    dm_db *db = open_db();
    api_metrics *m;
    OK(api_metrics_new(db, NULL, NULL, &m, g_err, sizeof g_err));
    int64_t now = clock_wall_ms();
    api_metrics_on_snapshot(m, 1, "wl-000000000001", 1000, now - 30000);
    api_metrics_on_snapshot(m, 1, "wl-000000000001", 500, now - 90000); /* older: age stays */
    api_metrics_on_snapshot(m, 0, "wl-000000000001", 99, now);          /* refused */
    char *out = render(m);
    assert_non_null(strstr(out, "dumont_snapshots_total{result=\"accepted\"} 2\n"));
    assert_non_null(strstr(out, "dumont_snapshots_total{result=\"refused\"} 1\n"));
    assert_non_null(strstr(out, "dumont_snapshot_bytes_total 1500\n"));
    const char *age = strstr(out, "dumont_snapshot_age_seconds{workload=\"wl-000000000001\"} ");
    assert_non_null(age);
    double a = strtod(strchr(age, '}') + 2, NULL);
    assert_true(a >= 30 && a < 60);
    free(out);
    api_metrics_free(m);
    db_close(db);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_rebuild_and_count_once, setup, teardown),
        cmocka_unit_test_setup_teardown(test_snapshots, setup, teardown),
    };
    return dbfx_run(tests, sizeof tests / sizeof tests[0]);
}

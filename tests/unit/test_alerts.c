/* alerts/alerts.h AL-AL1 to AL-AL5: the service over a real database (SQLite and,
 * with DUMONT_TEST_PG_URL, PostgreSQL), with destinations nobody listens on
 * (deliveries stay queued or are retried; what is asserted is the queue):
 * a failover's events once each, however often the observer sees it; only
 * events after a destination was added; the replay at start; instance
 * events by notify_on; a workload whose snapshots stopped. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#define DBFX_NAME "alerts"
#include "db_fixture.h"

#include "alerts/alerts.h"
#include "db/db_fleet.h"
#include "util/clock.h"
#include "util/error.h"
#include "util/log.h"

#include <time.h>

static char g_key[128];

static al_service *service(dm_db *db)
{
    snprintf(g_key, sizeof g_key, "%s/alerts.key", g_dir);
    al_opts o = {.db = db, .key_path = g_key, .public_url = "http://d", .time_scale = 1000};
    al_service *s = NULL;
    if (al_service_new(&o, &s, g_err, sizeof g_err) != 0)
        fail_msg("al_service_new: %s", g_err);
    return s;
}

static void add(al_service *s, const char *name, const char *kind, const char *notify)
{
    al_add_req rq = {
        .kind = kind, .url = "http://127.0.0.1:1/x", .name = name, .notify_on = notify};
    db_alert a;
    char secret[AL_SECRET_HEX_LEN + 1];
    OK(al_add(s, &rq, &a, secret, g_err, sizeof g_err));
    assert_int_equal(strlen(secret), strcmp(kind, "webhook") == 0 ? AL_SECRET_HEX_LEN : 0);
    db_alert_done(&a);
}

/* The event types queued for name, sorted, joined by ','. */
static void events_of(dm_db *db, const char *name, char *out, size_t cap)
{
    db_delivery *d = NULL;
    size_t n = 0;
    OK(db_delivery_list(db, name, 100, &d, &n, g_err, sizeof g_err));
    out[0] = '\0';
    for (size_t i = n; i-- > 0;) { /* oldest first */
        size_t len = strlen(out);
        snprintf(out + len, cap - len, "%s%s", len ? "," : "", d[i].event_type);
        db_delivery_done(&d[i]);
    }
    free(d);
}

/* Polls events_of(name) until it equals want (5 s). */
static void wait_events(dm_db *db, const char *name, const char *want)
{
    char got[1024] = "";
    for (int i = 0; i < 500; i++) {
        events_of(db, name, got, sizeof got);
        if (strcmp(got, want) == 0)
            return;
        struct timespec ts = {0, 10 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    fail_msg("%s: expected events '%s', got '%s'", name, want, got);
}

static fo_failover running_failover(const char *id, int64_t at)
{
    fo_failover f;
    OK(fo_init(&f, id, 12345, FO_KIND_SIMULATED, at));
    return f;
}

static void step(fo_failover *f, fo_event_kind k)
{
    fo_event ev = {.kind = k, .now_ms = clock_wall_ms(), .duration_ms = 10, .detail = "x"};
    OK(fo_transition(f, &ev));
}

/* AL-AL1, AL-AL2 (one key per event), AL-AL3. */
static void test_failover_events_once(void **state)
{
    (void)state;
    dm_db *db = open_db();
    al_service *s = service(db);
    add(s, "ops", "webhook", "all");
    add(s, "quiet", "slack", "failed");
    OK(al_service_start(s, g_err, sizeof g_err));
    fo_failover f = running_failover("sim-a", clock_wall_ms());
    al_on_failover(s, &f);
    al_on_failover(s, &f);    /* the observer sees every transition */
    step(&f, FO_EV_PHASE_OK); /* detection */
    al_on_failover(s, &f);
    step(&f, FO_EV_PHASE_OK); /* standby_activation */
    al_on_failover(s, &f);
    for (int p = FO_PHASE_GPU_SEARCH; p < FO_PHASE_COUNT; p++) {
        step(&f, FO_EV_PHASE_OK);
        al_on_failover(s, &f);
    }
    assert_int_equal(f.state, FO_STATE_COMPLETED);
    al_on_failover(s, &f);
    wait_events(db, "ops", "failover.started,standby.activated,failover.completed");
    /* a failed one: "quiet" wants failed only */
    fo_failover g = running_failover("sim-b", clock_wall_ms());
    al_on_failover(s, &g);
    step(&g, FO_EV_PHASE_FAILED);
    al_on_failover(s, &g);
    wait_events(db, "quiet", "failover.failed");
    wait_events(db, "ops",
                "failover.started,standby.activated,failover.completed,"
                "failover.started,failover.failed");
    /* AL-AL3: an event from before a destination was added is not its: the
     * old start reaches nobody; the new one (after it in the ring, which
     * keeps order) reaches both */
    fo_failover old = running_failover("sim-c", clock_wall_ms() - 60000);
    add(s, "late", "discord", "all");
    al_on_failover(s, &old);
    fo_failover now = running_failover("sim-d", clock_wall_ms() + 1);
    al_on_failover(s, &now);
    wait_events(db, "late", "failover.started");
    wait_events(db, "ops",
                "failover.started,standby.activated,failover.completed,"
                "failover.started,failover.failed,failover.started");
    db_delivery *d = NULL;
    size_t n = 0;
    OK(db_delivery_list(db, "late", 10, &d, &n, g_err, sizeof g_err));
    assert_int_equal(n, 1);
    assert_string_equal(d[0].event_key, "fo:sim-d:started");
    db_delivery_done(&d[0]);
    free(d);
    al_service_free(s);
    db_close(db);
}

/* AL-AL2: a failover the database holds, whose events never reached the
 * queue (the process died), is queued by the next start; twice is once. */
static void test_replay(void **state)
{
    (void)state;
    dm_db *db = open_db();
    al_service *s = service(db);
    add(s, "ops", "webhook", "all");
    al_service_free(s);
    fo_failover f = running_failover("sim-r", clock_wall_ms() + 5);
    OK(db_failover_insert(db, &f, g_err, sizeof g_err));
    step(&f, FO_EV_PHASE_FAILED);
    OK(db_failover_save(db, &f, g_err, sizeof g_err));
    for (int round = 0; round < 2; round++) {
        s = service(db);
        OK(al_service_start(s, g_err, sizeof g_err));
        wait_events(db, "ops", "failover.started,failover.failed");
        al_service_free(s);
    }
    db_close(db);
}

static void instance_event(al_service *s, int64_t id, const char *to, int64_t at)
{
    hbl_event ev = {.instance_id = id,
                    .what = "state",
                    .from = "healthy",
                    .to = to,
                    .reason = "phi",
                    .at_wall_ms = at,
                    .silent_ms = 700,
                    .phi = 9};
    al_on_instance(&ev, s);
}

static void test_instance_events(void **state)
{
    (void)state;
    dm_db *db = open_db();
    al_service *s = service(db);
    add(s, "ops", "webhook", "all");
    add(s, "chat", "slack", NULL); /* default: not suspect */
    OK(al_service_start(s, g_err, sizeof g_err));
    int64_t now = clock_wall_ms() + 10;
    instance_event(s, 101, "suspect", now);
    instance_event(s, 101, "failed", now + 1);
    instance_event(s, 101, "healthy", now + 2); /* not an event */
    wait_events(db, "ops", "instance.suspect,instance.failed");
    wait_events(db, "chat", "instance.failed");
    al_service_free(s);
    db_close(db);
}

/* AL-AL5: a protected running workload without a snapshot for longer than
 * three periods (and the floor, both scaled) alerts once per stale point. */
static void test_snapshot_failing(void **state)
{
    (void)state;
    dm_db *db = open_db();
    dm_workload w;
    memset(&w, 0, sizeof w);
    snprintf(w.workload_id, sizeof w.workload_id, "wl-00000000000a");
    snprintf(w.name, sizeof w.name, "chat");
    snprintf(w.requirements, sizeof w.requirements, "{}");
    w.state = DM_WL_RUNNING;
    w.heartbeat_ms = 200;
    w.snapshot_every_ms = 20;
    w.protect = 1;
    w.serving_instance_id = FO_NULL;
    w.created_at_ms = clock_wall_ms() - 1000;
    OK(db_workload_insert(db, &w, g_err, sizeof g_err));
    dm_workload idle = w; /* not protected: never alerts */
    snprintf(idle.workload_id, sizeof idle.workload_id, "wl-00000000000b");
    idle.protect = 0;
    OK(db_workload_insert(db, &idle, g_err, sizeof g_err));
    al_service *s = service(db);
    add(s, "ops", "webhook", "snapshot_failing");
    OK(al_service_start(s, g_err, sizeof g_err));
    wait_events(db, "ops", "snapshot.failing");
    db_delivery *d = NULL;
    size_t n = 0;
    OK(db_delivery_list(db, "ops", 10, &d, &n, g_err, sizeof g_err));
    assert_int_equal(n, 1);
    assert_string_equal(d[0].event_key, "snap:wl-00000000000a:none");
    assert_non_null(
        strstr(d[0].body, "\"workload\":{\"id\":\"wl-00000000000a\",\"name\":\"chat\"}"));
    db_delivery_done(&d[0]);
    free(d);
    al_service_free(s);
    db_close(db);
}

/* AL-AL6: a workload past its failover budget is one workload.flapping event per
 * flapping spell, carrying the reason; one that does not flap is not. */
static void test_flapping(void **state)
{
    (void)state;
    dm_db *db = open_db();
    dm_workload w;
    memset(&w, 0, sizeof w);
    snprintf(w.workload_id, sizeof w.workload_id, "wl-00000000000c");
    snprintf(w.name, sizeof w.name, "chat");
    snprintf(w.requirements, sizeof w.requirements, "{}");
    w.state = DM_WL_FAILING_OVER;
    w.protect = 1;
    w.serving_instance_id = 20003;
    w.created_at_ms = clock_wall_ms() - 1000;
    w.flapping_since_ms = w.failover_hold_until_ms = DM_NULL;
    OK(db_workload_insert(db, &w, g_err, sizeof g_err));
    dm_workload calm = w;
    snprintf(calm.workload_id, sizeof calm.workload_id, "wl-00000000000d");
    OK(db_workload_insert(db, &calm, g_err, sizeof g_err));
    OK(db_workload_set_budget(db, w.workload_id,
                              "4 automatic failovers in the last 30m (budget 3): failovers go on, "
                              "each at least 1m after the previous one",
                              1764331200000, clock_wall_ms() + 60000, g_err, sizeof g_err));
    al_service *s = service(db);
    add(s, "ops", "webhook", "flapping");
    OK(al_service_start(s, g_err, sizeof g_err));
    wait_events(db, "ops", "workload.flapping");
    clock_sleep_ms(300, NULL); /* more checks: still one event for the spell */
    db_delivery *d = NULL;
    size_t n = 0;
    OK(db_delivery_list(db, "ops", 10, &d, &n, g_err, sizeof g_err));
    assert_int_equal(n, 1);
    assert_string_equal(d[0].event_key, "flap:wl-00000000000c:1764331200000");
    assert_non_null(strstr(d[0].body, "\"flapping_reason\":\"4 automatic failovers in the last "
                                      "30m (budget 3)"));
    assert_non_null(strstr(d[0].body, "\"event\":\"workload.flapping\""));
    db_delivery_done(&d[0]);
    free(d);
    al_service_free(s);
    db_close(db);
}

int main(void)
{
    log_set_level(LOG_ERROR); /* the retries to nobody are expected */
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_failover_events_once, setup, teardown),
        cmocka_unit_test_setup_teardown(test_replay, setup, teardown),
        cmocka_unit_test_setup_teardown(test_instance_events, setup, teardown),
        cmocka_unit_test_setup_teardown(test_snapshot_failing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_flapping, setup, teardown),
    };
    return dbfx_run(tests, sizeof tests / sizeof tests[0]);
}

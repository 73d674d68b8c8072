/* Tests of workloads and machines (src/db/db_fleet.h FLEET-F1, FLEET-F2) and of the
 * real-failover fields of a failover record (core/failover.h fo_real), on SQLite and,
 * when DUMONT_TEST_PG_URL is set, on PostgreSQL (a database of its own). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "db/db_fleet.h"
#include "db/db_instance.h"
#include "db/db_internal.h"
#include "util/error.h"

#include <libpq-fe.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define DBFX_NAME "fleet"
#include "db_fixture.h"

static dm_workload workload(const char *id)
{
    dm_workload w;
    memset(&w, 0, sizeof w);
    snprintf(w.workload_id, sizeof w.workload_id, "%s", id);
    snprintf(w.name, sizeof w.name, "llm");
    snprintf(w.workload_cmd, sizeof w.workload_cmd, "tiny-ollama");
    snprintf(w.probe_spec, sizeof w.probe_spec, "ollama:tiny");
    snprintf(w.requirements, sizeof w.requirements, "{\"min_vram_gb\":16}");
    w.heartbeat_ms = 200;
    w.snapshot_every_ms = 30000;
    w.protect = 1;
    w.serving_instance_id = FO_NULL;
    w.state = DM_WL_RUNNING;
    w.created_at_ms = 1700000000000LL;
    return w;
}

static void test_workloads(void **state)
{
    (void)state;
    dm_db *db = open_db();
    dm_workload w = workload("wl-a"), got;
    OK(db_workload_insert(db, &w, g_err, sizeof g_err));
    assert_int_equal(db_workload_insert(db, &w, g_err, sizeof g_err), DM_E_CONFLICT);
    OK(db_workload_get(db, "wl-a", &got, g_err, sizeof g_err));
    assert_string_equal(got.probe_spec, "ollama:tiny");
    assert_string_equal(got.requirements, "{\"min_vram_gb\":16}");
    assert_int_equal(got.serving_instance_id, FO_NULL);
    assert_int_equal(got.protect, 1);
    assert_int_equal(db_workload_get(db, "wl-none", &got, g_err, sizeof g_err), DM_E_NOT_FOUND);
    assert_int_equal(db_workload_by_serving(db, 20001, &got, g_err, sizeof g_err), DM_E_NOT_FOUND);
    /* FLEET-F2: from (none, 0) to (20001, 0); a stale expectation changes nothing */
    OK(db_workload_switch(db, "wl-a", FO_NULL, 0, 20001, 0, g_err, sizeof g_err));
    OK(db_workload_by_serving(db, 20001, &got, g_err, sizeof g_err));
    assert_string_equal(got.workload_id, "wl-a");
    assert_int_equal(db_workload_switch(db, "wl-a", FO_NULL, 0, 20002, 1, g_err, sizeof g_err),
                     DM_E_CONFLICT);
    assert_int_equal(db_workload_switch(db, "wl-a", 20001, 5, 20002, 6, g_err, sizeof g_err),
                     DM_E_CONFLICT);
    OK(db_workload_switch(db, "wl-a", 20001, 0, 20001, 1, g_err, sizeof g_err)); /* fence */
    OK(db_workload_switch(db, "wl-a", 20001, 1, 20002, 1, g_err, sizeof g_err)); /* promote */
    OK(db_workload_get(db, "wl-a", &got, g_err, sizeof g_err));
    assert_int_equal(got.serving_instance_id, 20002);
    assert_int_equal(got.epoch, 1);
    OK(db_workload_set_state(db, "wl-a", DM_WL_FAILING_OVER, g_err, sizeof g_err));
    assert_int_equal(db_workload_set_state(db, "wl-x", DM_WL_RUNNING, g_err, sizeof g_err),
                     DM_E_NOT_FOUND);
    dm_workload w2 = workload("wl-b");
    OK(db_workload_insert(db, &w2, g_err, sizeof g_err));
    dm_workload *list = NULL;
    size_t n = 0;
    OK(db_workload_list(db, &list, &n, g_err, sizeof g_err));
    assert_int_equal(n, 2);
    assert_string_equal(dm_wl_state_name(list[0].state), "failing_over");
    free(list);
    /* FLEET-W1: the restart policy round-trips; a failure is recorded, then failed */
    dm_workload w3 = workload("wl-c");
    w3.max_restarts_on_errors = 4;
    snprintf(w3.error_exit_codes, sizeof w3.error_exit_codes, "2,7");
    snprintf(w3.host_check, sizeof w3.host_check, "nvidia-smi -q");
    OK(db_workload_insert(db, &w3, g_err, sizeof g_err));
    OK(db_workload_get(db, "wl-c", &got, g_err, sizeof g_err));
    assert_int_equal(got.max_restarts_on_errors, 4);
    assert_string_equal(got.error_exit_codes, "2,7");
    assert_string_equal(got.host_check, "nvidia-smi -q");
    assert_string_equal(got.failure, "");
    OK(db_workload_set_failure(db, "wl-c", "exit 7\nlast line", 0, g_err, sizeof g_err));
    OK(db_workload_get(db, "wl-c", &got, g_err, sizeof g_err));
    assert_string_equal(got.failure, "exit 7\nlast line");
    assert_string_equal(dm_wl_state_name(got.state), "running");
    OK(db_workload_set_failure(db, "wl-c", "gone", 1, g_err, sizeof g_err));
    OK(db_workload_get(db, "wl-c", &got, g_err, sizeof g_err));
    assert_string_equal(got.failure, "gone");
    assert_string_equal(dm_wl_state_name(got.state), "failed");
    assert_int_equal(db_workload_set_failure(db, "wl-x", "x", 1, g_err, sizeof g_err),
                     DM_E_NOT_FOUND);
    db_close(db);
}

/* FLEET-W2: a placeholder or empty command is refused, a real one is not. */
static void test_workload_cmd_check(void **state)
{
    (void)state;
    char err[300];
    const char *bad[] = {"",        "   ",         "\xe2\x80\xa6", "...",       "<cmd>",
                         "<your command>", "COMMAND", "cmd --port 1", "Your_Command",
                         "ollama serve \xe2\x80\xa6", "run <model>", "''", NULL};
    for (const char **b = bad; *b; b++) {
        err[0] = 0;
        if (dm_workload_cmd_check(*b, err, sizeof err) != DM_E_INVALID)
            fail_msg("'%s' was taken for a command", *b);
        assert_non_null(strstr(err, "workload"));
    }
    assert_int_equal(dm_workload_cmd_check(NULL, err, sizeof err), DM_E_INVALID);
    const char *good[] = {"ollama serve", "sleep 1000", "sh -c 'exit 3'", "/usr/bin/python3 -m x",
                          "./run.sh --dir ..", "commander", NULL};
    for (const char **g = good; *g; g++)
        if (dm_workload_cmd_check(*g, err, sizeof err) != 0)
            fail_msg("'%s' refused: %s", *g, err);
    /* FLEET-W1: exit codes */
    OK(dm_exit_codes_check("", err, sizeof err));
    OK(dm_exit_codes_check("1,2,255", err, sizeof err));
    const char *badc[] = {"0", "256", "1,", ",1", "a", "1 2", "-1", NULL};
    for (const char **b = badc; *b; b++)
        if (dm_exit_codes_check(*b, err, sizeof err) != DM_E_INVALID)
            fail_msg("exit codes '%s' were taken", *b);
    assert_true(dm_exit_codes_has("1,7,30", 7));
    assert_true(dm_exit_codes_has("1,7,30", 30));
    assert_false(dm_exit_codes_has("1,7,30", 3));
    assert_false(dm_exit_codes_has("", 1));
}

static dm_machine machine(const char *wl)
{
    dm_machine m;
    memset(&m, 0, sizeof m);
    snprintf(m.workload_id, sizeof m.workload_id, "%s", wl);
    snprintf(m.provider, sizeof m.provider, "local");
    snprintf(m.offer_id, sizeof m.offer_id, "offer-1");
    snprintf(m.host, sizeof m.host, "local-a");
    snprintf(m.gpu_name, sizeof m.gpu_name, "RTX 4090");
    m.price_milli = 450;
    return m;
}

static void test_machines(void **state)
{
    (void)state;
    dm_db *db = open_db();
    dm_machine m = machine("wl-a"), got;
    /* FLEET-F1: ids start at FLEET_FIRST_ID and go above every known instance */
    OK(db_machine_reserve(db, &m, g_err, sizeof g_err));
    assert_int_equal(m.instance_id, FLEET_FIRST_ID);
    assert_string_equal(dm_mach_state_name(m.state), "provisioning");
    dm_instance in;
    memset(&in, 0, sizeof in);
    in.instance_id = 30000;
    snprintf(in.kind, sizeof in.kind, "gpu");
    snprintf(in.key_id, sizeof in.key_id, "k1");
    snprintf(in.state, sizeof in.state, "pending");
    in.registered_at_ms = 1;
    OK(db_instance_register(db, &in, g_err, sizeof g_err));
    dm_machine m2 = machine("wl-a");
    OK(db_machine_reserve(db, &m2, g_err, sizeof g_err));
    assert_int_equal(m2.instance_id, 30001);
    OK(db_machine_get(db, FLEET_FIRST_ID, &got, g_err, sizeof g_err));
    assert_string_equal(dm_mach_state_name(got.state), "provisioning");
    assert_int_equal(got.destroyed_at_ms, FO_NULL);
    assert_int_equal(got.price_milli, 450);
    snprintf(m.workspace, sizeof m.workspace, "/tmp/ws");
    snprintf(m.address, sizeof m.address, "127.0.0.1:40000");
    m.state = DM_MACH_RUNNING;
    OK(db_machine_put(db, &m, g_err, sizeof g_err));
    OK(db_machine_get(db, FLEET_FIRST_ID, &got, g_err, sizeof g_err));
    assert_string_equal(got.address, "127.0.0.1:40000");
    assert_string_equal(dm_mach_state_name(got.state), "running");
    OK(db_machine_set_state(db, FLEET_FIRST_ID, DM_MACH_DESTROYED, g_err, sizeof g_err));
    OK(db_machine_get(db, FLEET_FIRST_ID, &got, g_err, sizeof g_err));
    assert_true(got.destroyed_at_ms > 0);
    assert_int_equal(db_machine_set_state(db, 99, DM_MACH_RUNNING, g_err, sizeof g_err),
                     DM_E_NOT_FOUND);
    dm_machine *list = NULL;
    size_t n = 0;
    OK(db_machine_list(db, "wl-a", &list, &n, g_err, sizeof g_err));
    assert_int_equal(n, 2);
    free(list);
    OK(db_machine_list(db, "wl-none", &list, &n, g_err, sizeof g_err));
    assert_int_equal(n, 0);
    free(list);
    db_close(db);
}

/* FLEET-F5: two handles (two controllers on one database) race the
 * compare-and-set that starts a failover, round after round: exactly one wins
 * each round, the loser gets DM_E_CONFLICT, and the state is the winner's. */
typedef struct {
    dm_db *db;
    pthread_barrier_t *go;
    int rc[20];
} racer;

static void *race_cas(void *arg)
{
    racer *r = arg;
    char err[256];
    for (int i = 0; i < 20; i++) {
        pthread_barrier_wait(r->go);
        r->rc[i] = db_workload_cas_state(r->db, "wl-r", 20001, DM_WL_RUNNING, DM_WL_FAILING_OVER,
                                         err, sizeof err);
        pthread_barrier_wait(r->go); /* both done: the main thread checks and resets */
        pthread_barrier_wait(r->go);
    }
    return NULL;
}

static void test_cas_race(void **state)
{
    (void)state;
    dm_db *db = open_db(), *db2 = open_db();
    dm_workload w = workload("wl-r"), got;
    w.serving_instance_id = 20001;
    OK(db_workload_insert(db, &w, g_err, sizeof g_err));
    /* the expectation is checked: wrong state or wrong instance writes nothing */
    assert_int_equal(db_workload_cas_state(db, "wl-r", 20001, DM_WL_FAILED, DM_WL_RUNNING, g_err,
                                           sizeof g_err),
                     DM_E_CONFLICT);
    assert_non_null(strstr(g_err, "is running, not failed"));
    assert_int_equal(db_workload_cas_state(db, "wl-r", 20002, DM_WL_RUNNING, DM_WL_FAILING_OVER,
                                           g_err, sizeof g_err),
                     DM_E_CONFLICT);
    assert_int_equal(db_workload_cas_state(db, "wl-x", DM_NULL, DM_WL_RUNNING, DM_WL_FAILING_OVER,
                                           g_err, sizeof g_err),
                     DM_E_NOT_FOUND);
    OK(db_workload_get(db, "wl-r", &got, g_err, sizeof g_err));
    assert_int_equal(got.state, DM_WL_RUNNING);
    pthread_barrier_t go;
    pthread_barrier_init(&go, NULL, 3);
    racer a = {.db = db, .go = &go}, b = {.db = db2, .go = &go};
    pthread_t ta, tb;
    assert_int_equal(pthread_create(&ta, NULL, race_cas, &a), 0);
    assert_int_equal(pthread_create(&tb, NULL, race_cas, &b), 0);
    for (int i = 0; i < 20; i++) {
        pthread_barrier_wait(&go);
        pthread_barrier_wait(&go);
        assert_true((a.rc[i] == 0 && b.rc[i] == DM_E_CONFLICT) ||
                    (b.rc[i] == 0 && a.rc[i] == DM_E_CONFLICT));
        OK(db_workload_get(db, "wl-r", &got, g_err, sizeof g_err));
        assert_int_equal(got.state, DM_WL_FAILING_OVER);
        OK(db_workload_cas_state(db, "wl-r", 20001, DM_WL_FAILING_OVER, DM_WL_RUNNING, g_err,
                                 sizeof g_err));
        pthread_barrier_wait(&go);
    }
    pthread_join(ta, NULL);
    pthread_join(tb, NULL);
    pthread_barrier_destroy(&go);
    db_close(db2);
    db_close(db);
}

/* The fo_real fields survive save and get; the test filter finds test-real. */
/* The states' names are what the database stores and the API shows
 * (core/fleet.h): each parses back to its state, launching included; a name
 * not in the list does not parse, and a row holding one is refused when read. */
static void test_states(void **state)
{
    (void)state;
    static const char *const wl[] = {"launching", "running", "failing_over", "failed", "stopped"};
    static const char *const mach[] = {"provisioning", "running", "destroyed"};
    assert_int_equal(sizeof wl / sizeof wl[0], DM_WL_STATE_COUNT);
    assert_int_equal(sizeof mach / sizeof mach[0], DM_MACH_STATE_COUNT);
    for (int i = 0; i < DM_WL_STATE_COUNT; i++) {
        dm_wl_state s = DM_WL_STATE_COUNT;
        assert_string_equal(dm_wl_state_name((dm_wl_state)i), wl[i]);
        OK(dm_wl_state_parse(wl[i], &s));
        assert_int_equal(s, i);
    }
    for (int i = 0; i < DM_MACH_STATE_COUNT; i++) {
        dm_mach_state s = DM_MACH_STATE_COUNT;
        assert_string_equal(dm_mach_state_name((dm_mach_state)i), mach[i]);
        OK(dm_mach_state_parse(mach[i], &s));
        assert_int_equal(s, i);
    }
    dm_wl_state ws = DM_WL_STOPPED;
    dm_mach_state ms = DM_MACH_DESTROYED;
    assert_int_equal(dm_wl_state_parse("provisioning", &ws), DM_E_INVALID);
    assert_int_equal(dm_wl_state_parse(NULL, &ws), DM_E_INVALID);
    assert_int_equal(dm_mach_state_parse("launching", &ms), DM_E_INVALID);
    assert_int_equal(dm_mach_state_parse("", &ms), DM_E_INVALID);
    assert_int_equal(ws, DM_WL_STOPPED); /* untouched on failure */
    assert_int_equal(ms, DM_MACH_DESTROYED);
    assert_string_equal(dm_wl_state_name(DM_WL_STATE_COUNT), "?");
    assert_string_equal(dm_mach_state_name((dm_mach_state)-1), "?");

    dm_db *db = open_db();
    dm_workload w = workload("wl-s"), got;
    w.state = DM_WL_LAUNCHING;
    OK(db_workload_insert(db, &w, g_err, sizeof g_err));
    OK(db_workload_get(db, "wl-s", &got, g_err, sizeof g_err));
    assert_int_equal(got.state, DM_WL_LAUNCHING);
    w.state = DM_WL_STATE_COUNT; /* out of range: refused, nothing written */
    snprintf(w.workload_id, sizeof w.workload_id, "wl-t");
    assert_int_equal(db_workload_insert(db, &w, g_err, sizeof g_err), DM_E_INVALID);
    assert_int_equal(db_workload_get(db, "wl-t", &got, g_err, sizeof g_err), DM_E_NOT_FOUND);
    assert_int_equal(db_workload_set_state(db, "wl-s", (dm_wl_state)-1, g_err, sizeof g_err),
                     DM_E_INVALID);
    pthread_mutex_lock(&db->lock);
    int rc = db_x(db, "UPDATE workloads SET state = 'paused' WHERE workload_id = 'wl-s'", NULL, 0,
                  NULL, NULL, NULL, g_err, sizeof g_err);
    pthread_mutex_unlock(&db->lock);
    OK(rc);
    assert_int_not_equal(db_workload_get(db, "wl-s", &got, g_err, sizeof g_err), 0);
    db_close(db);
}

static void test_failover_real_fields(void **state)
{
    (void)state;
    dm_db *db = open_db();
    fo_failover f, got;
    OK(fo_init(&f, "real-1", 20001, FO_KIND_REAL, 1700000000000LL));
    snprintf(f.real.workload_id, sizeof f.real.workload_id, "wl-a");
    snprintf(f.real.trigger, sizeof f.real.trigger, "test-real");
    f.real.test = 1;
    f.real.keep = 1;
    OK(db_failover_insert(db, &f, g_err, sizeof g_err));
    fo_event sk = {.kind = FO_EV_PHASE_SKIP, .now_ms = 1700000000001LL};
    OK(fo_transition(&f, &sk));
    f.real.new_instance_id = 20002;
    f.real.attempts = 2;
    f.real.epoch = 3;
    snprintf(f.real.excluded_hosts, sizeof f.real.excluded_hosts, "local-a,local-b");
    snprintf(f.real.snapshot_id, sizeof f.real.snapshot_id, "abc123");
    f.real.snapshot_size_bytes = 1 << 30;
    f.real.snapshot_creation_time_ms = 321;
    snprintf(f.real.snapshot_compression, sizeof f.real.snapshot_compression, "lz4");
    snprintf(f.real.snapshot_storage, sizeof f.real.snapshot_storage, "file:///s");
    f.real.restore_download_time_ms = 40;
    f.real.restore_decompress_time_ms = 60;
    snprintf(f.real.inference_model, sizeof f.real.inference_model, "tiny");
    f.real.inference_ready_time_ms = 77;
    f.real.inference_success = 1;
    OK(db_failover_save(db, &f, g_err, sizeof g_err));
    OK(db_failover_get(db, "real-1", &got, g_err, sizeof g_err));
    assert_memory_equal(&got.real, &f.real, sizeof f.real);
    assert_int_equal(got.phases[0].status, FO_PHASE_SKIPPED);
    db_failover_filter flt;
    db_failover_filter_init(&flt);
    flt.test = 1;
    int64_t count = 0;
    OK(db_failover_count(db, &flt, &count, g_err, sizeof g_err));
    assert_int_equal(count, 1);
    flt.test = 0;
    OK(db_failover_count(db, &flt, &count, g_err, sizeof g_err));
    assert_int_equal(count, 0);
    db_failover_filter_init(&flt);
    snprintf(flt.workload_id, sizeof flt.workload_id, "wl-a");
    OK(db_failover_count(db, &flt, &count, g_err, sizeof g_err));
    assert_int_equal(count, 1);
    /* a simulated failover reads back with the real fields unknown */
    fo_failover s;
    OK(fo_init(&s, "sim-1", 5, FO_KIND_SIMULATED, 1700000000000LL));
    OK(db_failover_insert(db, &s, g_err, sizeof g_err));
    OK(db_failover_get(db, "sim-1", &got, g_err, sizeof g_err));
    assert_int_equal(got.real.new_instance_id, FO_NULL);
    assert_int_equal(got.real.inference_success, FO_NULL);
    assert_int_equal(got.real.test, 0);
    db_close(db);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_workloads, setup, teardown),
        cmocka_unit_test(test_workload_cmd_check),
        cmocka_unit_test_setup_teardown(test_machines, setup, teardown),
        cmocka_unit_test_setup_teardown(test_states, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cas_race, setup, teardown),
        cmocka_unit_test_setup_teardown(test_failover_real_fields, setup, teardown),
    };
    return dbfx_run(tests, sizeof tests / sizeof tests[0]);
}

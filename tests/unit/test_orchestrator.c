/* Orchestrator tests (src/failover/orchestrator.h O1-O4) on a real SQLite database. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "db/db.h"
#include "failover/orchestrator.h"
#include "util/clock.h"
#include "util/error.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef struct {
    char dir[64];
    char path[128];
    dm_db *db;
    fo_orch *orch;
} fixture;

static int setup(void **state)
{
    fixture *fx = calloc(1, sizeof *fx);
    snprintf(fx->dir, sizeof fx->dir, "/tmp/dumont-orch-XXXXXX");
    assert_non_null(mkdtemp(fx->dir));
    snprintf(fx->path, sizeof fx->path, "%s/dumont.db", fx->dir);
    char err[256];
    assert_int_equal(db_open(fx->path, &fx->db, err, sizeof err), 0);
    assert_int_equal(fo_orch_new(fx->db, 5000.0, &fx->orch), 0);
    fo_assoc a = {.gpu_instance_id = 12345, .created_at_ms = clock_wall_ms()};
    snprintf(a.standby_id, sizeof a.standby_id, "standby-12345");
    snprintf(a.provider, sizeof a.provider, "sim");
    assert_int_equal(db_assoc_put(fx->db, &a, err, sizeof err), 0);
    *state = fx;
    return 0;
}

static int teardown(void **state)
{
    fixture *fx = *state;
    fo_orch_free(fx->orch);
    db_close(fx->db);
    char p[160];
    snprintf(p, sizeof p, "%s/dumont.db-wal", fx->dir);
    unlink(p);
    snprintf(p, sizeof p, "%s/dumont.db-shm", fx->dir);
    unlink(p);
    unlink(fx->path);
    rmdir(fx->dir);
    free(fx);
    return 0;
}

/* Polls the database until the failover is terminal (deadline 10 s). */
static void wait_terminal(dm_db *db, const char *id, fo_failover *ret)
{
    char err[256];
    int64_t deadline = clock_mono_ms() + 10000;
    do {
        assert_int_equal(db_failover_get(db, id, ret, err, sizeof err), 0);
        if (fo_state_is_terminal(ret->state))
            return;
        clock_sleep_ms(5, NULL);
    } while (clock_mono_ms() < deadline);
    fail_msg("failover %s still %s after 10 s", id, fo_state_name(ret->state));
}

static void test_simulate_completes(void **state)
{
    fixture *fx = *state;
    fo_sim_opts o;
    fo_sim_opts_init(&o);
    o.seed = 42;
    fo_failover f, done;
    char err[256];
    assert_int_equal(fo_orch_simulate(fx->orch, 12345, &o, &f, err, sizeof err), 0);
    assert_int_equal(strncmp(f.id, "sim-", 4), 0);
    /* O1: the record exists as soon as simulate returns */
    fo_failover now;
    assert_int_equal(db_failover_get(fx->db, f.id, &now, err, sizeof err), 0);
    wait_terminal(fx->db, f.id, &done);
    assert_int_equal(done.state, FO_STATE_COMPLETED);
    assert_int_equal(done.success, 1);
    int64_t sum = 0;
    for (int i = 0; i < FO_PHASE_COUNT; i++) {
        assert_int_equal(done.phases[i].status, FO_PHASE_OK);
        assert_int_equal(done.phases[i].simulated, 1);
        assert_true(done.phases[i].duration_ms > 0);
        sum += done.phases[i].duration_ms;
    }
    assert_int_equal(done.total_time_ms, sum);
    /* seed's ranges: provisioning 30-60 s, ssh_ready 30-120 s */
    assert_in_range(done.phases[FO_PHASE_PROVISIONING].duration_ms, 30000, 60000);
    assert_in_range(done.phases[FO_PHASE_SSH_READY].duration_ms, 30000, 120000);
    assert_in_range(done.phases[FO_PHASE_DETECTION].duration_ms, 1, 999);
}

static void test_same_seed_same_durations(void **state)
{
    fixture *fx = *state;
    fo_sim_opts o;
    fo_sim_opts_init(&o);
    o.seed = 7;
    fo_failover a, b, da, db;
    char err[256];
    assert_int_equal(fo_orch_simulate(fx->orch, 12345, &o, &a, err, sizeof err), 0);
    wait_terminal(fx->db, a.id, &da);
    assert_int_equal(fo_orch_simulate(fx->orch, 12345, &o, &b, err, sizeof err), 0);
    wait_terminal(fx->db, b.id, &db);
    assert_string_not_equal(a.id, b.id);
    for (int i = 0; i < FO_PHASE_COUNT; i++)
        assert_int_equal(da.phases[i].duration_ms, db.phases[i].duration_ms);
}

static void test_fail_phase(void **state)
{
    fixture *fx = *state;
    fo_sim_opts o;
    fo_sim_opts_init(&o);
    o.fail_phase = FO_PHASE_PROVISIONING;
    fo_failover f, done;
    char err[256];
    assert_int_equal(fo_orch_simulate(fx->orch, 12345, &o, &f, err, sizeof err), 0);
    wait_terminal(fx->db, f.id, &done);
    assert_int_equal(done.state, FO_STATE_FAILED);
    assert_int_equal(done.success, 0);
    assert_non_null(strstr(done.reason, "provisioning"));
    assert_int_equal(done.phases[FO_PHASE_PROVISIONING].status, FO_PHASE_FAILED);
    assert_int_equal(done.phases[FO_PHASE_GPU_SEARCH].status, FO_PHASE_OK);
    for (int i = FO_PHASE_SSH_READY; i < FO_PHASE_COUNT; i++) {
        assert_int_equal(done.phases[i].status, FO_PHASE_PENDING);
        assert_int_equal(done.phases[i].duration_ms, FO_NULL);
    }
}

static void test_unknown_gpu_and_conflict(void **state)
{
    fixture *fx = *state;
    fo_sim_opts o;
    fo_sim_opts_init(&o);
    fo_failover f;
    char err[256] = "";
    assert_int_equal(fo_orch_simulate(fx->orch, 999, &o, &f, err, sizeof err), DM_E_NOT_FOUND);
    assert_non_null(strstr(err, "test-setup"));
    o.speed = 1; /* slow: stays running */
    assert_int_equal(fo_orch_simulate(fx->orch, 12345, &o, &f, err, sizeof err), 0);
    fo_failover g;
    assert_int_equal(fo_orch_simulate(fx->orch, 12345, &o, &g, err, sizeof err), DM_E_CONFLICT);
    /* O4: shutdown records the running failover as failed */
    fo_orch_shutdown(fx->orch);
    fo_failover done;
    assert_int_equal(db_failover_get(fx->db, f.id, &done, err, sizeof err), 0);
    assert_int_equal(done.state, FO_STATE_FAILED);
    assert_non_null(strstr(done.reason, "shutting down"));
    assert_int_equal(fo_orch_simulate(fx->orch, 12345, &o, &g, err, sizeof err), DM_E_CANCELLED);
}

static void test_recover_marks_interrupted(void **state)
{
    fixture *fx = *state;
    char err[256];
    /* a failover left active by a "crashed" process: inserted, never run */
    fo_failover f;
    assert_int_equal(fo_init(&f, "sim-crashed01", 12345, FO_KIND_SIMULATED, clock_wall_ms()), 0);
    fo_event ok = {.kind = FO_EV_PHASE_OK, .now_ms = clock_wall_ms(), .duration_ms = 300};
    assert_int_equal(fo_transition(&f, &ok), 0);
    assert_int_equal(db_failover_insert(fx->db, &f, err, sizeof err), 0);
    assert_int_equal(db_failover_save(fx->db, &f, err, sizeof err), 0);
    int n = -1;
    assert_int_equal(fo_orch_recover(fx->orch, &n, err, sizeof err), 0);
    assert_int_equal(n, 1);
    fo_failover done;
    assert_int_equal(db_failover_get(fx->db, "sim-crashed01", &done, err, sizeof err), 0);
    assert_int_equal(done.state, FO_STATE_FAILED);
    assert_non_null(strstr(done.reason, "standby_activation interrupted"));
    assert_int_equal(done.phases[FO_PHASE_DETECTION].duration_ms, 300);
    assert_int_equal(fo_orch_recover(fx->orch, &n, err, sizeof err), 0);
    assert_int_equal(n, 0); /* idempotent */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_simulate_completes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_same_seed_same_durations, setup, teardown),
        cmocka_unit_test_setup_teardown(test_fail_phase, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unknown_gpu_and_conflict, setup, teardown),
        cmocka_unit_test_setup_teardown(test_recover_marks_interrupted, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/* Orchestrator tests (src/failover/orchestrator.h ORCH-O1 to ORCH-O4, ORCH-O12) on a real
 * SQLite database. For ORCH-O12 the database's back end is wrapped so that its
 * writes fail (as on a full disk) while a test says so, or N times. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "db/db.h"
#include "db/db_internal.h"
#include "failover/orchestrator.h"
#include "util/clock.h"
#include "util/error.h"

#include <pthread.h>
#include <stdatomic.h>
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
    /* ORCH-O1: the record exists as soon as simulate returns */
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
    /* ORCH-O4: shutdown records the running failover as failed */
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

/* ---- ORCH-O12: a database whose writes fail -------------------------------- */

static atomic_int g_fail_on;   /* every write fails while set */
static atomic_int g_fail_left; /* the next N writes fail */
static atomic_int g_failed;    /* writes failed so far */
static const db_backend_ops *g_real;
static db_backend_ops g_faulty;

static int faulty_exec(void *st, const char *sql, const db_param *p, int np, db_row_fn fn,
                       void *ctx, int64_t *ret_changes, char *err, size_t errlen)
{
    int write = strncmp(sql, "INSERT", 6) == 0 || strncmp(sql, "UPDATE", 6) == 0 ||
                strncmp(sql, "DELETE", 6) == 0;
    if (write && (atomic_load(&g_fail_on) || atomic_fetch_sub(&g_fail_left, 1) > 0)) {
        atomic_fetch_add(&g_failed, 1);
        return dm_fail(err, errlen, DM_E_DB, "sqlite: step: database or disk is full");
    }
    return g_real->exec(st, sql, p, np, fn, ctx, ret_changes, err, errlen);
}

static void make_faulty(fixture *fx)
{
    g_real = fx->db->ops;
    g_faulty = *g_real;
    g_faulty.exec = faulty_exec;
    fx->db->ops = &g_faulty;
    atomic_store(&g_fail_on, 0);
    atomic_store(&g_fail_left, 0);
    atomic_store(&g_failed, 0);
}

/* What the observer saw last: only saved records are told (ORCH-O12). */
static pthread_mutex_t g_seen_mu = PTHREAD_MUTEX_INITIALIZER;
static fo_state g_seen = -1;
static int g_seen_n;

static void seen(void *arg, const fo_failover *f)
{
    (void)arg;
    pthread_mutex_lock(&g_seen_mu);
    g_seen = f->state;
    g_seen_n++;
    pthread_mutex_unlock(&g_seen_mu);
}

static int degraded(fixture *fx, char *reason, size_t len)
{
    return fo_orch_storage_degraded(fx->orch, reason, len, NULL);
}

static void wait_degraded(fixture *fx, int want)
{
    int64_t deadline = clock_mono_ms() + 10000;
    while (degraded(fx, NULL, 0) != want) {
        if (clock_mono_ms() >= deadline)
            fail_msg("still %s after 10 s", want ? "healthy" : "degraded");
        clock_sleep_ms(5, NULL);
    }
}

/* A simulated failover of ~1 s (speed 100) over the faulty database. */
static void start_faulty(fixture *fx, int64_t seed, fo_failover *ret)
{
    char err[256];
    make_faulty(fx);
    fo_sim_opts o;
    fo_sim_opts_init(&o);
    o.seed = seed;
    o.speed = 100; /* time to fail in the middle */
    assert_int_equal(fo_orch_simulate(fx->orch, 12345, &o, ret, err, sizeof err), 0);
}

/* ORCH-O12: while the disk is "full" the failover waits where it was saved, the
 * orchestrator says degraded, memory (what observers were told) is what the
 * database holds; once writes land it goes on and completes, and the next
 * failover of that GPU is not refused by a ghost. */
static void test_save_fault_pauses_then_resumes(void **state)
{
    fixture *fx = *state;
    char err[256], reason[256];
    fo_orch_set_observer(fx->orch, seen, NULL);
    fo_failover f, now;
    start_faulty(fx, 7, &f);
    atomic_store(&g_fail_on, 1);
    wait_degraded(fx, 1);
    assert_int_equal(degraded(fx, reason, sizeof reason), 1);
    assert_non_null(strstr(reason, f.id));
    assert_non_null(strstr(reason, "disk is full"));
    clock_sleep_ms(300, NULL); /* it retries; nothing moves meanwhile */
    assert_int_equal(db_failover_get(fx->db, f.id, &now, err, sizeof err), 0);
    assert_false(fo_state_is_terminal(now.state));
    pthread_mutex_lock(&g_seen_mu);
    assert_int_equal(g_seen, now.state); /* memory never ahead of the database */
    int told = g_seen_n;
    pthread_mutex_unlock(&g_seen_mu);
    int failed = atomic_load(&g_failed);
    assert_true(failed >= 2); /* retried, not given up */
    atomic_store(&g_fail_on, 0);
    fo_failover done;
    wait_terminal(fx->db, f.id, &done);
    assert_int_equal(done.state, FO_STATE_COMPLETED); /* never ended by the save error */
    assert_int_equal(done.success, 1);
    wait_degraded(fx, 0);
    pthread_mutex_lock(&g_seen_mu);
    assert_true(g_seen_n > told);
    assert_int_equal(g_seen, FO_STATE_COMPLETED);
    pthread_mutex_unlock(&g_seen_mu);
    /* the GPU is free again: no ghost `running` row */
    fo_sim_opts o;
    fo_sim_opts_init(&o);
    assert_int_equal(fo_orch_simulate(fx->orch, 12345, &o, &f, err, sizeof err), 0);
    wait_terminal(fx->db, f.id, &done);
    assert_int_equal(done.state, FO_STATE_COMPLETED);
    fo_orch_set_observer(fx->orch, NULL, NULL);
}

/* ORCH-O12 with a database that fails N times: every failed write is retried. */
static void test_save_fails_n_times(void **state)
{
    fixture *fx = *state;
    fo_failover f, done;
    start_faulty(fx, 3, &f);
    atomic_store(&g_fail_left, 5);
    wait_terminal(fx->db, f.id, &done);
    assert_int_equal(done.state, FO_STATE_COMPLETED);
    for (int p = 0; p < FO_PHASE_COUNT; p++)
        assert_int_equal(done.phases[p].status, FO_PHASE_OK); /* no phase lost or doubled */
    assert_true(atomic_load(&g_failed) >= 1);
    assert_false(degraded(fx, NULL, 0));
}

/* ORCH-O12 + ORCH-O4: a shutdown while a save fails returns; the record stays as last
 * saved (active) for the next start to end (ORCH-O2). */
static void test_shutdown_while_failing(void **state)
{
    fixture *fx = *state;
    char err[256];
    fo_failover f, now;
    start_faulty(fx, 5, &f);
    atomic_store(&g_fail_on, 1);
    wait_degraded(fx, 1);
    int64_t t0 = clock_mono_ms();
    fo_orch_shutdown(fx->orch);
    assert_true(clock_mono_ms() - t0 < 3000);
    assert_false(degraded(fx, NULL, 0));
    atomic_store(&g_fail_on, 0);
    assert_int_equal(db_failover_get(fx->db, f.id, &now, err, sizeof err), 0);
    assert_false(fo_state_is_terminal(now.state));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_simulate_completes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_same_seed_same_durations, setup, teardown),
        cmocka_unit_test_setup_teardown(test_fail_phase, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unknown_gpu_and_conflict, setup, teardown),
        cmocka_unit_test_setup_teardown(test_recover_marks_interrupted, setup, teardown),
        cmocka_unit_test_setup_teardown(test_save_fault_pauses_then_resumes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_save_fails_n_times, setup, teardown),
        cmocka_unit_test_setup_teardown(test_shutdown_while_failing, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/* Unit tests for the failover state machine (src/core/failover.h, FO-I1 to FO-I4). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "core/failover.h"
#include "util/error.h"

#include <stdio.h>
#include <string.h>

#define T0 1700000000000LL

static const char *const phase_names[FO_PHASE_COUNT] = {
    "detection", "standby_activation", "gpu_search", "provisioning", "ssh_ready",
    "restore",   "inference",
};

static fo_event ev_ok(int64_t now, int64_t dur)
{
    fo_event ev = {.kind = FO_EV_PHASE_OK, .now_ms = now, .duration_ms = dur};
    return ev;
}

static fo_event ev_failed(int64_t now, int64_t dur, const char *detail)
{
    fo_event ev = {.kind = FO_EV_PHASE_FAILED, .now_ms = now, .duration_ms = dur, .detail = detail};
    return ev;
}

static fo_event ev_abort(int64_t now, const char *detail)
{
    fo_event ev = {.kind = FO_EV_ABORT, .now_ms = now, .duration_ms = FO_NULL, .detail = detail};
    return ev;
}

static void start(fo_failover *f)
{
    assert_int_equal(fo_init(f, "fo-1", 12345, FO_KIND_SIMULATED, T0), 0);
}

/* Runs PHASE_OK for phases [0, upto) with durations 100, 200, ... */
static int64_t advance(fo_failover *f, int upto)
{
    int64_t sum = 0, now = T0;
    for (int i = 0; i < upto; i++) {
        int64_t d = 100 * (i + 1);
        now += d;
        fo_event ev = ev_ok(now, d);
        assert_int_equal(fo_transition(f, &ev), 0);
        sum += d;
    }
    return sum;
}

static void test_init(void **state)
{
    (void)state;
    fo_failover f;
    memset(&f, 0x5a, sizeof f);
    assert_int_equal(fo_init(&f, "fo-abc", 42, FO_KIND_REAL, T0), 0);
    assert_string_equal(f.id, "fo-abc");
    assert_int_equal(f.gpu_instance_id, 42);
    assert_int_equal(f.kind, FO_KIND_REAL);
    assert_int_equal(f.state, FO_PHASE_DETECTION);
    assert_false(fo_state_is_terminal(f.state));
    assert_int_equal(f.success, FO_NULL);       /* FO-I4 */
    assert_int_equal(f.total_time_ms, FO_NULL); /* FO-I3 */
    assert_int_equal(f.finished_at_ms, FO_NULL);
    assert_int_equal(f.started_at_ms, T0);
    assert_string_equal(f.reason, "");
    assert_int_equal(f.phases[0].status, FO_PHASE_RUNNING);
    assert_int_equal(f.phases[0].started_at_ms, T0);
    assert_int_equal(f.phases[0].duration_ms, FO_NULL); /* FO-I2 */
    for (int i = 1; i < FO_PHASE_COUNT; i++) {
        assert_int_equal(f.phases[i].status, FO_PHASE_PENDING);
        assert_int_equal(f.phases[i].started_at_ms, FO_NULL);
        assert_int_equal(f.phases[i].duration_ms, FO_NULL);
    }
}

static void test_init_rejects_bad_args(void **state)
{
    (void)state;
    fo_failover f;
    char long_id[FO_ID_MAX + 1];
    memset(long_id, 'x', sizeof long_id - 1);
    long_id[sizeof long_id - 1] = '\0';
    assert_int_equal(fo_init(&f, NULL, 1, FO_KIND_SIMULATED, T0), DM_E_INVALID);
    assert_int_equal(fo_init(&f, "", 1, FO_KIND_SIMULATED, T0), DM_E_INVALID);
    assert_int_equal(fo_init(&f, long_id, 1, FO_KIND_SIMULATED, T0), DM_E_INVALID);
    long_id[FO_ID_MAX - 1] = '\0'; /* longest id that fits */
    assert_int_equal(fo_init(&f, long_id, 1, FO_KIND_SIMULATED, T0), 0);
    assert_string_equal(f.id, long_id);
    assert_int_equal(fo_init(&f, "x", 1, (fo_kind)FO_KIND_COUNT, T0), DM_E_INVALID);
    assert_int_equal(fo_init(&f, "x", 1, (fo_kind)-1, T0), DM_E_INVALID);
}

/* PHASE_OK walks every phase, each one started when the previous ended. */
static void test_all_phases_ok(void **state)
{
    (void)state;
    fo_failover f;
    start(&f);
    int64_t now = T0, sum = 0;
    for (int i = 0; i < FO_PHASE_COUNT; i++) {
        assert_int_equal(f.state, i);
        assert_int_equal(f.phases[i].status, FO_PHASE_RUNNING);
        assert_int_equal(f.phases[i].started_at_ms, now);
        assert_int_equal(f.success, FO_NULL);       /* FO-I4: running */
        assert_int_equal(f.total_time_ms, FO_NULL); /* FO-I3: running */
        int64_t d = 1000 + 7 * i;
        now += d;
        fo_event ev = ev_ok(now, d);
        ev.simulated = i % 2;
        assert_int_equal(fo_transition(&f, &ev), 0);
        sum += d;
        assert_int_equal(f.phases[i].status, FO_PHASE_OK);
        assert_int_equal(f.phases[i].duration_ms, d);
        assert_int_equal(f.phases[i].simulated, i % 2);
        if (i + 1 < FO_PHASE_COUNT) {
            assert_int_equal(f.state, i + 1);
            for (int j = i + 2; j < FO_PHASE_COUNT; j++) {
                assert_int_equal(f.phases[j].status, FO_PHASE_PENDING);
                assert_int_equal(f.phases[j].duration_ms, FO_NULL);
            }
        }
    }
    assert_int_equal(f.state, FO_STATE_COMPLETED);
    assert_true(fo_state_is_terminal(f.state));
    assert_string_equal(fo_state_name(f.state), "completed");
    assert_int_equal(f.success, 1);           /* FO-I4 */
    assert_int_equal(f.total_time_ms, sum);   /* FO-I3 */
    assert_int_equal(sum, 7 * 1000 + 7 * 21); /* hand-computed */
    assert_int_equal(f.finished_at_ms, now);
    assert_string_equal(f.reason, "");
}

/* A zero duration is a real duration (not "null"). */
static void test_zero_duration_ok(void **state)
{
    (void)state;
    fo_failover f;
    start(&f);
    for (int i = 0; i < FO_PHASE_COUNT; i++) {
        fo_event ev = ev_ok(T0, 0);
        assert_int_equal(fo_transition(&f, &ev), 0);
        assert_int_equal(f.phases[i].duration_ms, 0);
    }
    assert_int_equal(f.state, FO_STATE_COMPLETED);
    assert_int_equal(f.total_time_ms, 0);
    assert_int_equal(f.success, 1);
}

/* Each phase failing in turn: reason names it, later phases stay pending/null. */
static void test_phase_failed_each_phase(void **state)
{
    (void)state;
    for (int k = 0; k < FO_PHASE_COUNT; k++) {
        fo_failover f;
        start(&f);
        int64_t sum = advance(&f, k);
        fo_event ev = ev_failed(T0 + 999999, 555, "no offer under the price cap");
        assert_int_equal(fo_transition(&f, &ev), 0);
        assert_int_equal(f.state, FO_STATE_FAILED);
        assert_true(fo_state_is_terminal(f.state));
        assert_int_equal(f.success, 0);               /* FO-I4 */
        assert_int_equal(f.total_time_ms, sum + 555); /* FO-I3: the failed phase ran */
        assert_int_equal(f.finished_at_ms, T0 + 999999);
        assert_int_equal(f.phases[k].status, FO_PHASE_FAILED);
        assert_int_equal(f.phases[k].duration_ms, 555);
        assert_string_equal(f.phases[k].detail, "no offer under the price cap");
        char want[FO_REASON_MAX];
        snprintf(want, sizeof want, "%s failed: no offer under the price cap", phase_names[k]);
        assert_string_equal(f.reason, want);
        for (int i = 0; i < k; i++) {
            assert_int_equal(f.phases[i].status, FO_PHASE_OK);
            assert_int_equal(f.phases[i].duration_ms, 100 * (i + 1));
        }
        for (int i = k + 1; i < FO_PHASE_COUNT; i++) { /* FO-I2 */
            assert_int_equal(f.phases[i].status, FO_PHASE_PENDING);
            assert_int_equal(f.phases[i].duration_ms, FO_NULL);
            assert_int_equal(f.phases[i].started_at_ms, FO_NULL);
        }
    }
}

/* A failure with no measured duration: the phase stays null, total excludes it. */
static void test_phase_failed_null_duration(void **state)
{
    (void)state;
    fo_failover f;
    start(&f);
    int64_t sum = advance(&f, FO_PHASE_RESTORE);
    fo_event ev = ev_failed(T0 + 1, FO_NULL, NULL);
    assert_int_equal(fo_transition(&f, &ev), 0);
    assert_int_equal(f.state, FO_STATE_FAILED);
    assert_int_equal(f.phases[FO_PHASE_RESTORE].status, FO_PHASE_FAILED);
    assert_int_equal(f.phases[FO_PHASE_RESTORE].duration_ms, FO_NULL);
    assert_int_equal(f.phases[FO_PHASE_INFERENCE].status, FO_PHASE_PENDING);
    assert_int_equal(f.phases[FO_PHASE_INFERENCE].duration_ms, FO_NULL);
    assert_int_equal(f.total_time_ms, sum);
    assert_int_equal(f.success, 0);
    assert_non_null(strstr(f.reason, "restore"));
    assert_string_equal(f.reason, "restore failed: no detail");
}

static void test_abort(void **state)
{
    (void)state;
    fo_failover f;
    start(&f);
    int64_t sum = advance(&f, FO_PHASE_PROVISIONING);
    fo_event ev = ev_abort(T0 + 77, "controller restarted");
    ev.duration_ms = 1234; /* ignored: an interrupted phase has no duration */
    assert_int_equal(fo_transition(&f, &ev), 0);
    assert_int_equal(f.state, FO_STATE_FAILED);
    assert_int_equal(f.success, 0);
    assert_int_equal(f.finished_at_ms, T0 + 77);
    assert_int_equal(f.phases[FO_PHASE_PROVISIONING].status, FO_PHASE_FAILED);
    assert_int_equal(f.phases[FO_PHASE_PROVISIONING].duration_ms, FO_NULL);
    assert_int_equal(f.total_time_ms, sum);
    assert_string_equal(f.reason, "provisioning interrupted: controller restarted");
    for (int i = FO_PHASE_SSH_READY; i < FO_PHASE_COUNT; i++)
        assert_int_equal(f.phases[i].status, FO_PHASE_PENDING);
}

static void test_abort_first_phase_empty_detail(void **state)
{
    (void)state;
    fo_failover f;
    start(&f);
    fo_event ev = ev_abort(T0, "");
    assert_int_equal(fo_transition(&f, &ev), 0);
    assert_int_equal(f.state, FO_STATE_FAILED);
    assert_string_equal(f.reason, "detection interrupted: no detail");
    assert_int_equal(f.total_time_ms, 0);
    for (int i = 0; i < FO_PHASE_COUNT; i++)
        assert_int_equal(f.phases[i].duration_ms, FO_NULL);
}

/* A very long detail is truncated, never overflows. */
static void test_long_detail_truncated(void **state)
{
    (void)state;
    fo_failover f;
    start(&f);
    char detail[1000];
    memset(detail, 'd', sizeof detail - 1);
    detail[sizeof detail - 1] = '\0';
    fo_event ev = ev_failed(T0, 1, detail);
    assert_int_equal(fo_transition(&f, &ev), 0);
    assert_int_equal(strlen(f.reason), FO_REASON_MAX - 1);
    assert_int_equal(strncmp(f.reason, "detection failed: ddd", 21), 0);
    assert_int_equal(strlen(f.phases[0].detail), sizeof f.phases[0].detail - 1);
}

/* FO-I1: terminal failovers refuse every event and stay byte-for-byte the same. */
static void test_terminal_refuses_events(void **state)
{
    (void)state;
    fo_event evs[3];
    evs[0] = ev_ok(T0 + 5, 10);
    evs[1] = ev_failed(T0 + 5, 10, "late");
    evs[2] = ev_abort(T0 + 5, "late");
    for (int which = 0; which < 2; which++) {
        fo_failover f;
        start(&f);
        if (which == 0) {
            advance(&f, FO_PHASE_COUNT);
            assert_int_equal(f.state, FO_STATE_COMPLETED);
        } else {
            advance(&f, 2);
            fo_event fail = ev_failed(T0 + 3, 3, "boom");
            assert_int_equal(fo_transition(&f, &fail), 0);
            assert_int_equal(f.state, FO_STATE_FAILED);
        }
        fo_failover before;
        memcpy(&before, &f, sizeof f);
        for (int e = 0; e < 3; e++) {
            assert_int_equal(fo_transition(&f, &evs[e]), DM_E_CONFLICT);
            assert_memory_equal(&before, &f, sizeof f);
        }
    }
}

/* FO-I1: events that do not fit leave the record untouched (DM_E_INVALID). */
static void test_invalid_events_leave_record(void **state)
{
    (void)state;
    fo_failover f;
    start(&f);
    advance(&f, 3);
    fo_failover before;
    memcpy(&before, &f, sizeof f);

    fo_event ev = ev_ok(T0, -1); /* FO_NULL is not a duration for PHASE_OK */
    assert_int_equal(fo_transition(&f, &ev), DM_E_INVALID);
    assert_memory_equal(&before, &f, sizeof f);
    ev = ev_ok(T0, -500);
    assert_int_equal(fo_transition(&f, &ev), DM_E_INVALID);
    assert_memory_equal(&before, &f, sizeof f);
    ev = ev_ok(T0, INT64_MIN);
    assert_int_equal(fo_transition(&f, &ev), DM_E_INVALID);
    assert_memory_equal(&before, &f, sizeof f);

    ev = ev_failed(T0, -2, "x"); /* negative, and not FO_NULL */
    assert_int_equal(fo_transition(&f, &ev), DM_E_INVALID);
    assert_memory_equal(&before, &f, sizeof f);

    ev = ev_ok(T0, 1);
    ev.kind = (fo_event_kind)99; /* unknown event */
    assert_int_equal(fo_transition(&f, &ev), DM_E_INVALID);
    assert_memory_equal(&before, &f, sizeof f);

    /* A corrupt state (e.g. a bad row) is refused, not indexed. */
    f.state = -1;
    memcpy(&before, &f, sizeof f);
    ev = ev_ok(T0, 1);
    assert_int_equal(fo_transition(&f, &ev), DM_E_INVALID);
    assert_memory_equal(&before, &f, sizeof f);
    f.state = FO_STATE_FAILED + 1;
    memcpy(&before, &f, sizeof f);
    assert_int_equal(fo_transition(&f, &ev), DM_E_INVALID);
    assert_memory_equal(&before, &f, sizeof f);
}

static void test_names_round_trip(void **state)
{
    (void)state;
    for (int i = 0; i < FO_PHASE_COUNT; i++) {
        fo_phase p = (fo_phase)-1;
        assert_string_equal(fo_phase_name((fo_phase)i), phase_names[i]);
        assert_int_equal(fo_phase_parse(phase_names[i], &p), 0);
        assert_int_equal(p, i);
        fo_state s = -1;
        assert_string_equal(fo_state_name(i), phase_names[i]);
        assert_int_equal(fo_state_parse(phase_names[i], &s), 0);
        assert_int_equal(s, i);
    }
    fo_state s = -1;
    assert_int_equal(fo_state_parse("completed", &s), 0);
    assert_int_equal(s, FO_STATE_COMPLETED);
    assert_string_equal(fo_state_name(FO_STATE_FAILED), "failed");
    assert_int_equal(fo_state_parse("failed", &s), 0);
    assert_int_equal(s, FO_STATE_FAILED);

    static const char *const st[] = {"pending", "running", "ok", "failed"};
    for (int i = 0; i < 4; i++) {
        fo_phase_status ps = (fo_phase_status)-1;
        assert_string_equal(fo_phase_status_name((fo_phase_status)i), st[i]);
        assert_int_equal(fo_phase_status_parse(st[i], &ps), 0);
        assert_int_equal(ps, i);
    }
    fo_kind k = (fo_kind)-1;
    assert_string_equal(fo_kind_name(FO_KIND_SIMULATED), "simulated");
    assert_string_equal(fo_kind_name(FO_KIND_REAL), "real");
    assert_int_equal(fo_kind_parse("simulated", &k), 0);
    assert_int_equal(k, FO_KIND_SIMULATED);
    assert_int_equal(fo_kind_parse("real", &k), 0);
    assert_int_equal(k, FO_KIND_REAL);
}

static void test_bad_names(void **state)
{
    (void)state;
    static const char *const bad[] = {"",           "Detection", "detection ", " detection",
                                      "gpu-search", "inferenc",  "inferences", "completed\n",
                                      "OK",         "?"};
    fo_phase p = FO_PHASE_RESTORE;
    fo_state s = FO_PHASE_RESTORE;
    fo_phase_status ps = FO_PHASE_OK;
    fo_kind k = FO_KIND_REAL;
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        assert_int_equal(fo_phase_parse(bad[i], &p), DM_E_INVALID);
        assert_int_equal(fo_state_parse(bad[i], &s), DM_E_INVALID);
        assert_int_equal(fo_phase_status_parse(bad[i], &ps), DM_E_INVALID);
        assert_int_equal(fo_kind_parse(bad[i], &k), DM_E_INVALID);
    }
    assert_int_equal(fo_phase_parse(NULL, &p), DM_E_INVALID);
    assert_int_equal(fo_state_parse(NULL, &s), DM_E_INVALID);
    assert_int_equal(fo_phase_status_parse(NULL, &ps), DM_E_INVALID);
    assert_int_equal(fo_kind_parse(NULL, &k), DM_E_INVALID);
    /* Outputs untouched on failure. */
    assert_int_equal(p, FO_PHASE_RESTORE);
    assert_int_equal(s, FO_PHASE_RESTORE);
    assert_int_equal(ps, FO_PHASE_OK);
    assert_int_equal(k, FO_KIND_REAL);
    /* "completed"/"failed" are states, not phases; "ok" is a status, not a state. */
    assert_int_equal(fo_phase_parse("completed", &p), DM_E_INVALID);
    assert_int_equal(fo_state_parse("ok", &s), DM_E_INVALID);
    assert_int_equal(fo_kind_parse("failed", &k), DM_E_INVALID);
    /* Out-of-range values have a placeholder name, never a crash. */
    assert_string_equal(fo_phase_name((fo_phase)FO_PHASE_COUNT), "?");
    assert_string_equal(fo_phase_name((fo_phase)-1), "?");
    assert_string_equal(fo_state_name(-1), "?");
    assert_string_equal(fo_state_name(FO_STATE_FAILED + 1), "?");
    assert_string_equal(fo_phase_status_name((fo_phase_status)5), "?");
    assert_string_equal(fo_kind_name((fo_kind)FO_KIND_COUNT), "?");
    assert_false(fo_state_is_terminal(FO_PHASE_INFERENCE));
    assert_false(fo_state_is_terminal(-1));
    assert_true(fo_state_is_terminal(FO_STATE_COMPLETED));
    assert_true(fo_state_is_terminal(FO_STATE_FAILED));
}

/* A skipped phase stays null (FO-I2) and shows as skipped; the next one runs. */
static void test_skip(void **state)
{
    (void)state;
    fo_failover f;
    start(&f);
    fo_event sk = {.kind = FO_EV_PHASE_SKIP, .now_ms = T0 + 5, .detail = "test-real"};
    assert_int_equal(fo_transition(&f, &sk), 0);
    assert_int_equal(f.phases[0].status, FO_PHASE_SKIPPED);
    assert_int_equal(f.phases[0].duration_ms, FO_NULL);
    assert_int_equal(f.phases[0].started_at_ms, FO_NULL);
    assert_string_equal(f.phases[0].detail, "test-real");
    assert_int_equal(f.state, FO_PHASE_STANDBY_ACTIVATION);
    assert_int_equal(f.phases[1].status, FO_PHASE_RUNNING);
    assert_int_equal(fo_transition(&f, &sk), 0);
    for (int p = FO_PHASE_GPU_SEARCH; p < FO_PHASE_COUNT; p++) {
        fo_event ok = ev_ok(T0 + 100 * p, 10);
        assert_int_equal(fo_transition(&f, &ok), 0);
    }
    assert_int_equal(f.state, FO_STATE_COMPLETED);
    assert_int_equal(f.total_time_ms, 50); /* five phases ran, two skipped */
    assert_string_equal(fo_phase_status_name(FO_PHASE_SKIPPED), "skipped");
}

/* A retry goes back, keeps the time spent, and counts it in the total. */
static void test_retry_accumulates(void **state)
{
    (void)state;
    fo_failover f;
    start(&f);
    for (int p = 0; p <= FO_PHASE_PROVISIONING; p++) { /* detection .. provisioning ok */
        fo_event ok = ev_ok(T0 + p, 100);
        assert_int_equal(fo_transition(&f, &ok), 0);
    }
    assert_int_equal(f.state, FO_PHASE_SSH_READY);
    fo_event bad = {.kind = FO_EV_RETRY, .now_ms = T0 + 900, .duration_ms = 300,
                    .detail = "agent never came up", .retry_phase = FO_PHASE_GPU_SEARCH};
    assert_int_equal(fo_transition(&f, &bad), 0);
    assert_int_equal(f.state, FO_PHASE_GPU_SEARCH);
    assert_int_equal(f.phases[FO_PHASE_GPU_SEARCH].status, FO_PHASE_RUNNING);
    assert_int_equal(f.phases[FO_PHASE_PROVISIONING].status, FO_PHASE_PENDING);
    assert_int_equal(f.phases[FO_PHASE_SSH_READY].status, FO_PHASE_PENDING);
    assert_int_equal(f.phases[FO_PHASE_SSH_READY].duration_ms, 300);
    assert_non_null(strstr(f.phases[FO_PHASE_GPU_SEARCH].detail, "agent never came up"));
    /* a retry cannot go forward, nor back before gpu_search */
    fo_event fwd = bad;
    fwd.retry_phase = FO_PHASE_RESTORE;
    assert_int_equal(fo_transition(&f, &fwd), DM_E_INVALID);
    fwd.retry_phase = FO_PHASE_DETECTION;
    assert_int_equal(fo_transition(&f, &fwd), DM_E_INVALID);
    for (int p = FO_PHASE_GPU_SEARCH; p < FO_PHASE_COUNT; p++) {
        fo_event ok = ev_ok(T0 + 1000 + p, 50);
        assert_int_equal(fo_transition(&f, &ok), 0);
    }
    assert_int_equal(f.state, FO_STATE_COMPLETED);
    assert_int_equal(f.phases[FO_PHASE_GPU_SEARCH].duration_ms, 150);  /* 100 + 50 */
    assert_int_equal(f.phases[FO_PHASE_PROVISIONING].duration_ms, 150);
    assert_int_equal(f.phases[FO_PHASE_SSH_READY].duration_ms, 350);   /* 300 + 50 */
    assert_int_equal(f.phases[FO_PHASE_RESTORE].duration_ms, 50);
    /* 2*100 + 150 + 150 + 350 + 50 + 50 */
    assert_int_equal(f.total_time_ms, 950);
    /* a skip after a phase ran is refused */
    fo_failover g;
    start(&g);
    fo_event ok = ev_ok(T0, 10);
    for (int p = 0; p < FO_PHASE_SSH_READY; p++)
        assert_int_equal(fo_transition(&g, &ok), 0);
    bad.retry_phase = FO_PHASE_SSH_READY;
    assert_int_equal(fo_transition(&g, &bad), 0); /* retry the same phase */
    fo_event sk = {.kind = FO_EV_PHASE_SKIP, .now_ms = T0};
    assert_int_equal(fo_transition(&g, &sk), DM_E_INVALID);
}

/* fo_init leaves every real-failover number unknown. */
static void test_real_fields_init(void **state)
{
    (void)state;
    fo_failover f;
    assert_int_equal(fo_init(&f, "fo-1", 7, FO_KIND_REAL, T0), 0);
    assert_int_equal(f.real.new_instance_id, FO_NULL);
    assert_int_equal(f.real.epoch, FO_NULL);
    assert_int_equal(f.real.snapshot_size_bytes, FO_NULL);
    assert_int_equal(f.real.restore_download_time_ms, FO_NULL);
    assert_int_equal(f.real.inference_ready_time_ms, FO_NULL);
    assert_int_equal(f.real.inference_success, FO_NULL);
    assert_string_equal(f.real.snapshot_id, "");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_init),
        cmocka_unit_test(test_init_rejects_bad_args),
        cmocka_unit_test(test_all_phases_ok),
        cmocka_unit_test(test_zero_duration_ok),
        cmocka_unit_test(test_phase_failed_each_phase),
        cmocka_unit_test(test_phase_failed_null_duration),
        cmocka_unit_test(test_abort),
        cmocka_unit_test(test_abort_first_phase_empty_detail),
        cmocka_unit_test(test_long_detail_truncated),
        cmocka_unit_test(test_terminal_refuses_events),
        cmocka_unit_test(test_invalid_events_leave_record),
        cmocka_unit_test(test_names_round_trip),
        cmocka_unit_test(test_bad_names),
        cmocka_unit_test(test_skip),
        cmocka_unit_test(test_retry_accumulates),
        cmocka_unit_test(test_real_fields_init),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/* Unit tests for the report arithmetic (src/core/report.h, FO-R1 to FO-R4).
 * Every expected value below is computed by hand from the nearest-rank rule:
 * pX = sorted[ceil(X/100 * n) - 1]. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include <cmocka.h>

#include "core/report.h"
#include "util/error.h"

#include <math.h>
#include <string.h>

#define N FO_NULL

/* cmocka's assert_float_equal compares in single precision; these are doubles. */
#define assert_dbl(got, want, eps) assert_dbl_at((got), (want), (eps), __LINE__)
static void assert_dbl_at(double got, double want, double eps, int line)
{
    if (!(fabs(got - want) <= eps))
        fail_msg("line %d: got %.17g, want %.17g", line, got, want);
}

static void assert_empty_stat(const fo_stat *s)
{
    assert_int_equal(s->count, 0);
    assert_true(isnan(s->mean));
    assert_int_equal(s->p50, FO_NULL);
    assert_int_equal(s->p95, FO_NULL);
    assert_int_equal(s->max, FO_NULL);
}

#define assert_stat(s, count, mean, p50, p95, max)                                                 \
    assert_stat_at((s), (count), (mean), (p50), (p95), (max), __LINE__)
static void assert_stat_at(const fo_stat *s, int64_t count, double mean, int64_t p50, int64_t p95,
                           int64_t max, int line)
{
    if (s->count != count || !(fabs(s->mean - mean) <= 1e-9) || s->p50 != p50 || s->p95 != p95 ||
        s->max != max)
        fail_msg("line %d: got count=%lld mean=%.17g p50=%lld p95=%lld max=%lld, "
                 "want count=%lld mean=%.17g p50=%lld p95=%lld max=%lld",
                 line, (long long)s->count, s->mean, (long long)s->p50, (long long)s->p95,
                 (long long)s->max, (long long)count, mean, (long long)p50, (long long)p95,
                 (long long)max);
}

/* FO-R3: no data is "no value", never 0. */
static void test_stat_empty(void **state)
{
    (void)state;
    fo_stat s;
    memset(&s, 0x11, sizeof s);
    fo_stat_compute(NULL, 0, &s);
    assert_empty_stat(&s);
    int64_t v[1] = {5};
    memset(&s, 0x11, sizeof s);
    fo_stat_compute(v, -3, &s);
    assert_empty_stat(&s);
}

static void test_stat_n1(void **state)
{
    (void)state;
    int64_t v[] = {42};
    fo_stat s;
    fo_stat_compute(v, 1, &s);
    assert_stat(&s, 1, 42.0, 42, 42, 42);
}

/* n = 2: p50 at rank ceil(1.0) = 1, p95 at rank ceil(1.9) = 2. */
static void test_stat_n2(void **state)
{
    (void)state;
    int64_t v[] = {30, 10};
    fo_stat s;
    fo_stat_compute(v, 2, &s);
    assert_stat(&s, 2, 20.0, 10, 30, 30);
}

/* n = 3: p50 at rank ceil(1.5) = 2, p95 at rank ceil(2.85) = 3. */
static void test_stat_n3(void **state)
{
    (void)state;
    int64_t v[] = {9, 1, 5};
    fo_stat s;
    fo_stat_compute(v, 3, &s);
    assert_stat(&s, 3, 5.0, 5, 9, 9);
}

/* n = 20 of 10, 20, ..., 200 shuffled: p50 rank 10 -> 100, p95 rank 19 -> 190. */
static void test_stat_n20(void **state)
{
    (void)state;
    int64_t v[20];
    for (int i = 0; i < 20; i++)
        v[i] = 10 * (1 + (i * 7) % 20); /* 7 is coprime with 20: a permutation */
    fo_stat s;
    fo_stat_compute(v, 20, &s);
    assert_stat(&s, 20, 105.0, 100, 190, 200);
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

/* Quickselect against a sorted reference, on random samples of every small
 * size and a few large ones, with many duplicates (phase times repeat). */
static void test_stat_matches_sorted_reference(void **state)
{
    (void)state;
    uint64_t x = 88172645463325252ULL;
    static int64_t v[5000], ref[5000];
    for (int trial = 0; trial < 400; trial++) {
        int64_t n = trial < 300 ? 1 + trial : 1000 + 13 * trial % 4000;
        int64_t range = trial % 3 == 0 ? 5 : 100000;
        for (int64_t i = 0; i < n; i++) {
            x ^= x << 13, x ^= x >> 7, x ^= x << 17;
            v[i] = ref[i] = (int64_t)(x % (uint64_t)range);
        }
        qsort(ref, (size_t)n, sizeof *ref, cmp_i64);
        fo_stat s;
        fo_stat_compute(v, n, &s);
        int64_t r50 = (50 * n + 99) / 100, r95 = (95 * n + 99) / 100;
        assert_int_equal(s.p50, ref[r50 - 1]);
        assert_int_equal(s.p95, ref[r95 - 1]);
        assert_int_equal(s.max, ref[n - 1]);
        assert_int_equal(s.count, n);
    }
}

/* n = 21 of 1..21: p50 rank ceil(10.5) = 11, p95 rank ceil(19.95) = 20. */
static void test_stat_n21(void **state)
{
    (void)state;
    int64_t v[21];
    for (int i = 0; i < 21; i++)
        v[i] = 21 - i;
    fo_stat s;
    fo_stat_compute(v, 21, &s);
    assert_stat(&s, 21, 11.0, 11, 20, 21);
}

/* n = 100 of 100..1 (reversed): p50 rank 50 -> 50, p95 rank 95 -> 95. */
static void test_stat_n100(void **state)
{
    (void)state;
    int64_t v[100];
    for (int i = 0; i < 100; i++)
        v[i] = 100 - i;
    fo_stat s;
    fo_stat_compute(v, 100, &s);
    assert_stat(&s, 100, 50.5, 50, 95, 100);
}

/* n = 100 with a long tail: 95 values of 1000 and 5 of 60000. p95 is the
 * 95th value (1000), not an interpolation towards the tail. */
static void test_stat_n100_tail(void **state)
{
    (void)state;
    int64_t v[100];
    for (int i = 0; i < 100; i++)
        v[i] = i % 20 == 0 ? 60000 : 1000;
    fo_stat s;
    fo_stat_compute(v, 100, &s);
    assert_stat(&s, 100, (95 * 1000.0 + 5 * 60000.0) / 100, 1000, 1000, 60000);
    /* 6 slow ones: p95 (rank 95) now lands in the tail. */
    for (int i = 0; i < 100; i++)
        v[i] = i < 94 ? 1000 : 60000;
    fo_stat_compute(v, 100, &s);
    assert_int_equal(s.p95, 60000);
    assert_int_equal(s.p50, 1000);
}

/* Large values do not overflow the mean or the ranks. */
static void test_stat_large_values(void **state)
{
    (void)state;
    int64_t v[] = {INT64_C(4000000000000), INT64_C(2000000000000)};
    fo_stat s;
    fo_stat_compute(v, 2, &s);
    assert_stat(&s, 2, 3e12, INT64_C(2000000000000), INT64_C(4000000000000),
                INT64_C(4000000000000));
}

static void phases(int64_t out[FO_PHASE_COUNT], int64_t a, int64_t b, int64_t c, int64_t d,
                   int64_t e, int64_t f, int64_t g)
{
    int64_t v[FO_PHASE_COUNT] = {a, b, c, d, e, f, g};
    memcpy(out, v, sizeof v);
}

static void test_report_empty(void **state)
{
    (void)state;
    fo_report_acc *acc = fo_report_acc_new();
    assert_non_null(acc);
    fo_report r;
    fo_report_acc_finish(acc, &r);
    fo_report_acc_free(acc);
    const fo_report_group *g[] = {&r.all, &r.simulated, &r.real};
    for (int i = 0; i < 3; i++) {
        assert_int_equal(g[i]->total, 0);
        assert_int_equal(g[i]->succeeded, 0);
        assert_int_equal(g[i]->failed, 0);
        assert_int_equal(g[i]->running, 0);
        assert_true(isnan(g[i]->success_rate));
        assert_empty_stat(&g[i]->mttr);
        for (int p = 0; p < FO_PHASE_COUNT; p++)
            assert_empty_stat(&g[i]->phase[p]);
    }
    fo_report_acc_free(NULL); /* destructors accept NULL */
}

/* Mixed sample. Simulated: ok 100, ok 300, ok 200, failed (total 50), 2 running.
 * Real: ok 1000, failed (total 700). */
static fo_report_acc *mixed(void)
{
    fo_report_acc *acc = fo_report_acc_new();
    assert_non_null(acc);
    int64_t ph[FO_PHASE_COUNT];
    phases(ph, 10, 20, 30, 40, 0, 0, 0);
    assert_int_equal(fo_report_acc_add(acc, FO_KIND_SIMULATED, 1, 100, ph), 0);
    phases(ph, 30, 60, 90, 120, 0, 0, 0);
    assert_int_equal(fo_report_acc_add(acc, FO_KIND_SIMULATED, 1, 300, ph), 0);
    phases(ph, 20, 40, 60, 80, 0, 0, 0);
    assert_int_equal(fo_report_acc_add(acc, FO_KIND_SIMULATED, 1, 200, ph), 0);
    /* Failed in gpu_search: later phases did not happen (null, not 0). */
    phases(ph, 5, 15, 30, N, N, N, N);
    assert_int_equal(fo_report_acc_add(acc, FO_KIND_SIMULATED, 0, 50, ph), 0);
    fo_report_acc_add_running(acc, FO_KIND_SIMULATED, 2);
    phases(ph, 100, 100, 200, 300, 100, 100, 100);
    assert_int_equal(fo_report_acc_add(acc, FO_KIND_REAL, 1, 1000, ph), 0);
    /* Interrupted in detection: no phase has a duration. */
    phases(ph, N, N, N, N, N, N, N);
    assert_int_equal(fo_report_acc_add(acc, FO_KIND_REAL, 0, 700, ph), 0);
    return acc;
}

static void test_report_groups(void **state)
{
    (void)state;
    fo_report_acc *acc = mixed();
    fo_report r;
    fo_report_acc_finish(acc, &r);
    fo_report_acc_free(acc);

    /* Simulated: FO-R4 rate 3/(3+1); running counted in total only. */
    assert_int_equal(r.simulated.succeeded, 3);
    assert_int_equal(r.simulated.failed, 1);
    assert_int_equal(r.simulated.running, 2);
    assert_int_equal(r.simulated.total, 6);
    assert_dbl(r.simulated.success_rate, 0.75, 1e-12);
    /* FO-R1: MTTR over {100, 200, 300}; the failed 50 is left out. */
    assert_stat(&r.simulated.mttr, 3, 200.0, 200, 300, 300);
    /* FO-R2: detection over {10, 30, 20, 5}: sorted 5 10 20 30 -> p50 rank 2, p95 rank 4. */
    assert_stat(&r.simulated.phase[FO_PHASE_DETECTION], 4, 16.25, 10, 30, 30);
    /* gpu_search {30, 90, 60, 30}: sorted 30 30 60 90. */
    assert_stat(&r.simulated.phase[FO_PHASE_GPU_SEARCH], 4, 52.5, 30, 90, 90);
    /* provisioning: the failed one has null -> only 3 samples {40, 120, 80}. */
    assert_stat(&r.simulated.phase[FO_PHASE_PROVISIONING], 3, 80.0, 80, 120, 120);
    /* ssh_ready: zeros are real values {0, 0, 0}; the null is not among them. */
    assert_stat(&r.simulated.phase[FO_PHASE_SSH_READY], 3, 0.0, 0, 0, 0);

    /* Real: rate 1/2; MTTR only the 1000; phases only from the first. */
    assert_int_equal(r.real.succeeded, 1);
    assert_int_equal(r.real.failed, 1);
    assert_int_equal(r.real.running, 0);
    assert_int_equal(r.real.total, 2);
    assert_dbl(r.real.success_rate, 0.5, 1e-12);
    assert_stat(&r.real.mttr, 1, 1000.0, 1000, 1000, 1000);
    assert_stat(&r.real.phase[FO_PHASE_PROVISIONING], 1, 300.0, 300, 300, 300);
    assert_stat(&r.real.phase[FO_PHASE_INFERENCE], 1, 100.0, 100, 100, 100);

    /* All: 4 ok, 2 failed, 2 running; rate 4/6. MTTR {100,200,300,1000}:
     * mean 400, p50 rank 2 -> 200, p95 rank 4 -> 1000. */
    assert_int_equal(r.all.succeeded, 4);
    assert_int_equal(r.all.failed, 2);
    assert_int_equal(r.all.running, 2);
    assert_int_equal(r.all.total, 8);
    assert_dbl(r.all.success_rate, 4.0 / 6.0, 1e-12);
    assert_stat(&r.all.mttr, 4, 400.0, 200, 1000, 1000);
    /* detection {10,30,20,5,100}: sorted 5 10 20 30 100, p50 rank 3, p95 rank 5. */
    assert_stat(&r.all.phase[FO_PHASE_DETECTION], 5, 33.0, 20, 100, 100);
    /* inference {0,0,0,100}: p50 rank 2 -> 0, p95 rank 4 -> 100. */
    assert_stat(&r.all.phase[FO_PHASE_INFERENCE], 4, 25.0, 0, 100, 100);
}

/* Finishing twice gives the same report (the per-kind sort does not disturb "all"). */
static void test_report_finish_twice(void **state)
{
    (void)state;
    fo_report_acc *acc = mixed();
    fo_report a, b;
    fo_report_acc_finish(acc, &a);
    fo_report_acc_finish(acc, &b);
    fo_report_acc_free(acc);
    assert_int_equal(a.all.mttr.p95, b.all.mttr.p95);
    assert_dbl(a.all.mttr.mean, b.all.mttr.mean, 1e-12);
    assert_int_equal(a.simulated.phase[0].p50, b.simulated.phase[0].p50);
    assert_int_equal(b.all.total, 8);
}

/* FO-R4: only running failovers -> nothing finished -> rate NAN, stats empty. */
static void test_report_only_running(void **state)
{
    (void)state;
    fo_report_acc *acc = fo_report_acc_new();
    assert_non_null(acc);
    fo_report_acc_add_running(acc, FO_KIND_REAL, 3);
    fo_report_acc_add_running(acc, (fo_kind)FO_KIND_COUNT, 9); /* ignored */
    fo_report r;
    fo_report_acc_finish(acc, &r);
    fo_report_acc_free(acc);
    assert_int_equal(r.real.running, 3);
    assert_int_equal(r.real.total, 3);
    assert_int_equal(r.all.total, 3);
    assert_int_equal(r.simulated.total, 0);
    assert_true(isnan(r.real.success_rate));
    assert_true(isnan(r.all.success_rate));
    assert_empty_stat(&r.all.mttr);
}

/* All failed: success rate 0 (not NAN), MTTR has no data (FO-R1). */
static void test_report_all_failed(void **state)
{
    (void)state;
    fo_report_acc *acc = fo_report_acc_new();
    assert_non_null(acc);
    int64_t ph[FO_PHASE_COUNT];
    phases(ph, 7, N, N, N, N, N, N);
    for (int i = 0; i < 3; i++)
        assert_int_equal(fo_report_acc_add(acc, FO_KIND_SIMULATED, 0, 7, ph), 0);
    fo_report r;
    fo_report_acc_finish(acc, &r);
    fo_report_acc_free(acc);
    assert_dbl(r.simulated.success_rate, 0.0, 0);
    assert_false(isnan(r.simulated.success_rate));
    assert_empty_stat(&r.simulated.mttr);
    assert_stat(&r.simulated.phase[FO_PHASE_DETECTION], 3, 7.0, 7, 7, 7);
    assert_empty_stat(&r.simulated.phase[FO_PHASE_STANDBY_ACTIVATION]);
    assert_empty_stat(&r.real.phase[FO_PHASE_DETECTION]);
}

/* A successful failover without a total counts as a success but adds no MTTR sample. */
static void test_report_success_without_total(void **state)
{
    (void)state;
    fo_report_acc *acc = fo_report_acc_new();
    assert_non_null(acc);
    int64_t ph[FO_PHASE_COUNT];
    phases(ph, 1, 1, 1, 1, 1, 1, 1);
    assert_int_equal(fo_report_acc_add(acc, FO_KIND_REAL, 1, FO_NULL, ph), 0);
    fo_report r;
    fo_report_acc_finish(acc, &r);
    fo_report_acc_free(acc);
    assert_int_equal(r.real.succeeded, 1);
    assert_dbl(r.real.success_rate, 1.0, 0);
    assert_empty_stat(&r.real.mttr);
    assert_int_equal(r.real.phase[FO_PHASE_RESTORE].count, 1);
}

/* Bad input is refused and adds nothing (a running failover has success FO_NULL). */
static void test_report_add_rejects(void **state)
{
    (void)state;
    fo_report_acc *acc = fo_report_acc_new();
    assert_non_null(acc);
    int64_t ph[FO_PHASE_COUNT];
    phases(ph, 1, 2, 3, 4, 5, 6, 7);
    assert_int_equal(fo_report_acc_add(acc, (fo_kind)FO_KIND_COUNT, 1, 10, ph), DM_E_INVALID);
    assert_int_equal(fo_report_acc_add(acc, (fo_kind)-1, 1, 10, ph), DM_E_INVALID);
    assert_int_equal(fo_report_acc_add(acc, FO_KIND_REAL, FO_NULL, 10, ph), DM_E_INVALID);
    assert_int_equal(fo_report_acc_add(acc, FO_KIND_REAL, 2, 10, ph), DM_E_INVALID);
    fo_report r;
    fo_report_acc_finish(acc, &r);
    fo_report_acc_free(acc);
    assert_int_equal(r.all.total, 0);
    assert_empty_stat(&r.all.mttr);
    assert_empty_stat(&r.all.phase[0]);
}

/* Past the first growth of the sample arrays (1024), still exact. */
static void test_report_many(void **state)
{
    (void)state;
    fo_report_acc *acc = fo_report_acc_new();
    assert_non_null(acc);
    int64_t ph[FO_PHASE_COUNT];
    for (int i = 1; i <= 3000; i++) {
        phases(ph, i, N, N, N, N, N, N);
        assert_int_equal(fo_report_acc_add(acc, i % 2 ? FO_KIND_SIMULATED : FO_KIND_REAL, 1, i, ph),
                         0);
    }
    fo_report r;
    fo_report_acc_finish(acc, &r);
    fo_report_acc_free(acc);
    /* all: 1..3000 -> p50 rank 1500, p95 rank 2850, mean 1500.5. */
    assert_stat(&r.all.mttr, 3000, 1500.5, 1500, 2850, 3000);
    assert_stat(&r.all.phase[FO_PHASE_DETECTION], 3000, 1500.5, 1500, 2850, 3000);
    /* simulated: odd 1..2999 (1500 values) -> rank 750 -> 1499, rank 1425 -> 2849. */
    assert_stat(&r.simulated.mttr, 1500, 1500.0, 1499, 2849, 2999);
    /* real: even 2..3000 -> rank 750 -> 1500, rank 1425 -> 2850. */
    assert_stat(&r.real.mttr, 1500, 1501.0, 1500, 2850, 3000);
    assert_dbl(r.all.success_rate, 1.0, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_stat_empty),
        cmocka_unit_test(test_stat_n1),
        cmocka_unit_test(test_stat_n2),
        cmocka_unit_test(test_stat_n3),
        cmocka_unit_test(test_stat_n20),
        cmocka_unit_test(test_stat_matches_sorted_reference),
        cmocka_unit_test(test_stat_n21),
        cmocka_unit_test(test_stat_n100),
        cmocka_unit_test(test_stat_n100_tail),
        cmocka_unit_test(test_stat_large_values),
        cmocka_unit_test(test_report_empty),
        cmocka_unit_test(test_report_groups),
        cmocka_unit_test(test_report_finish_twice),
        cmocka_unit_test(test_report_only_running),
        cmocka_unit_test(test_report_all_failed),
        cmocka_unit_test(test_report_success_without_total),
        cmocka_unit_test(test_report_add_rejects),
        cmocka_unit_test(test_report_many),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/* Unit tests for the worker pool (src/snapshot/workq.h SNAP-WQ1 to SNAP-WQ3): every job
 * runs exactly once, from one or several producers, whatever the ring size
 * (the half-empty hysteresis of workq.c must never strand a producer), and
 * a producer never has more than qcap + threads jobs alive (SNAP-WQ1). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "snapshot/workq.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>

#define JOBS 20000

typedef struct {
    atomic_int ran[2 * JOBS];
    atomic_int alive, most_alive, bad_worker;
    int threads;
} counts;

static void run_one(void *job, void *ctx, int worker)
{
    counts *c = ctx;
    int *id = job;
    if (worker < 0 || worker >= c->threads) /* asserted by the main thread */
        atomic_store(&c->bad_worker, 1);
    atomic_fetch_add(&c->ran[*id], 1);
    atomic_fetch_sub(&c->alive, 1);
    free(id);
}

typedef struct {
    workq *q;
    counts *c;
    int first;
} producer;

static void push_range(workq *q, counts *c, int first)
{
    for (int i = first; i < first + JOBS; i++) {
        int *id = malloc(sizeof *id);
        assert_non_null(id);
        *id = i;
        int now = atomic_fetch_add(&c->alive, 1) + 1, most = atomic_load(&c->most_alive);
        while (now > most && !atomic_compare_exchange_weak(&c->most_alive, &most, now))
            ;
        wq_push(q, id);
    }
}

static void *producer_main(void *p)
{
    producer *pr = p;
    push_range(pr->q, pr->c, pr->first);
    return NULL;
}

static void check_all_ran(counts *c, int n)
{
    for (int i = 0; i < n; i++)
        assert_int_equal(atomic_load(&c->ran[i]), 1);
    assert_int_equal(atomic_load(&c->alive), 0);
    assert_int_equal(atomic_load(&c->bad_worker), 0);
}

static counts *start(int threads, size_t cap, workq **q)
{
    counts *c = calloc(1, sizeof *c);
    assert_non_null(c);
    c->threads = threads;
    assert_int_equal(wq_new(threads, cap, run_one, c, q), 0);
    return c;
}

static void test_every_job_once(void **state)
{
    (void)state;
    static const size_t caps[] = {1, 2, 3, 64};
    for (size_t k = 0; k < sizeof caps / sizeof caps[0]; k++) {
        workq *q = NULL;
        counts *c = start(3, caps[k], &q);
        push_range(q, c, 0);
        wq_finish(q);
        check_all_ran(c, JOBS);
        /* SNAP-WQ1: queued + running, plus the one being pushed */
        assert_true(atomic_load(&c->most_alive) <= (int)caps[k] + c->threads + 1);
        free(c);
    }
}

static void test_two_producers(void **state)
{
    (void)state;
    static const size_t caps[] = {1, 4, 64};
    for (size_t k = 0; k < sizeof caps / sizeof caps[0]; k++) {
        workq *q = NULL;
        counts *c = start(2, caps[k], &q);
        producer other = {q, c, JOBS};
        pthread_t t;
        assert_int_equal(pthread_create(&t, NULL, producer_main, &other), 0);
        push_range(q, c, 0);
        pthread_join(t, NULL);
        wq_finish(q);
        check_all_ran(c, 2 * JOBS);
        free(c);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_job_once),
        cmocka_unit_test(test_two_producers),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

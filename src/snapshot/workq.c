/* Worker pool with a bounded ring of jobs (SNAP-WQ1 to SNAP-WQ3 in workq.h).
 *
 * One mutex and two condition variables: not_full wakes the producers,
 * not_empty wakes workers. A NULL job is never queued; `closing` tells the
 * workers to exit once the ring is empty.
 *
 * Hysteresis: a producer that finds the ring full sleeps until it is half
 * empty, and workers wake producers only when it gets there. Waking the
 * producer on every job made it ping-pong with the workers, one context
 * switch per job (10,000 small files: 14% of a restore's time went to
 * scheduling in the VMs this runs on). */
#include "snapshot/workq.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>

struct workq {
    pthread_mutex_t lock;
    pthread_cond_t not_full, not_empty;
    void **ring;
    size_t cap, head, count;
    int closing;
    wq_fn fn;
    void *ctx;
    pthread_t *tid;
    int nthreads, started;
};

typedef struct {
    workq *q;
    int index;
} wq_arg;

static void *worker_main(void *p)
{
    wq_arg a = *(wq_arg *)p;
    free(p);
    workq *q = a.q;
    for (;;) {
        pthread_mutex_lock(&q->lock);
        while (q->count == 0 && !q->closing)
            pthread_cond_wait(&q->not_empty, &q->lock);
        if (q->count == 0) {
            pthread_mutex_unlock(&q->lock);
            return NULL;
        }
        void *job = q->ring[q->head];
        q->head = (q->head + 1) % q->cap;
        q->count--;
        if (q->count == q->cap / 2) /* hysteresis: see the top */
            pthread_cond_broadcast(&q->not_full);
        pthread_mutex_unlock(&q->lock);
        q->fn(job, q->ctx, a.index);
    }
}

static int start_threads(workq *q)
{
    for (int i = 0; i < q->nthreads; i++) {
        wq_arg *a = malloc(sizeof *a);
        if (!a)
            return -ENOMEM;
        *a = (wq_arg){.q = q, .index = i};
        int rc = pthread_create(&q->tid[i], NULL, worker_main, a);
        if (rc != 0) {
            free(a);
            return -rc;
        }
        q->started++;
    }
    return 0;
}

int wq_new(int threads, size_t qcap, wq_fn fn, void *ctx, workq **ret)
{
    if (threads < 1 || threads > 64 || qcap < 1)
        return -EINVAL;
    workq *q = calloc(1, sizeof *q);
    if (!q)
        return -ENOMEM;
    pthread_mutex_init(&q->lock, NULL);
    pthread_cond_init(&q->not_full, NULL);
    pthread_cond_init(&q->not_empty, NULL);
    q->ring = calloc(qcap, sizeof *q->ring);
    q->tid = calloc((size_t)threads, sizeof *q->tid);
    q->cap = qcap;
    q->fn = fn;
    q->ctx = ctx;
    q->nthreads = threads;
    int rc = (q->ring && q->tid) ? start_threads(q) : -ENOMEM;
    if (rc != 0) {
        wq_finish(q);
        return rc;
    }
    *ret = q;
    return 0;
}

void wq_push(workq *q, void *job)
{
    pthread_mutex_lock(&q->lock);
    if (q->count == q->cap)
        while (q->count > q->cap / 2)
            pthread_cond_wait(&q->not_full, &q->lock);
    q->ring[(q->head + q->count) % q->cap] = job;
    q->count++;
    pthread_cond_signal(&q->not_empty);
    pthread_mutex_unlock(&q->lock);
}

void wq_finish(workq *q)
{
    if (!q)
        return;
    pthread_mutex_lock(&q->lock);
    q->closing = 1;
    pthread_cond_broadcast(&q->not_empty);
    pthread_mutex_unlock(&q->lock);
    for (int i = 0; i < q->started; i++)
        pthread_join(q->tid[i], NULL);
    pthread_mutex_destroy(&q->lock);
    pthread_cond_destroy(&q->not_full);
    pthread_cond_destroy(&q->not_empty);
    free(q->ring);
    free(q->tid);
    free(q);
}

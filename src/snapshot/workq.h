/* A fixed pool of worker threads fed through a bounded queue: the snapshot
 * engine's way to use every core (SNAP-SN5) with bounded memory.
 *
 * SNAP-WQ1: wq_push() blocks while the queue holds qcap jobs, so a fast producer
 *      can never have more than qcap + threads jobs alive at once.
 * SNAP-WQ2: jobs are handed out in push order; each runs exactly once, on one
 *      worker; fn owns the job (frees it).
 * SNAP-WQ3: wq_finish() returns after every pushed job has run and every thread
 *      has been joined. */
#ifndef DUMONT_SNAPSHOT_WORKQ_H
#define DUMONT_SNAPSHOT_WORKQ_H

#include <stddef.h>

typedef struct workq workq;
/* worker: 0..threads-1, for per-thread buffers. */
typedef void (*wq_fn)(void *job, void *ctx, int worker);

/* threads in [1, 64], qcap >= 1. Returns -ENOMEM / -errno on failure. */
int wq_new(int threads, size_t qcap, wq_fn fn, void *ctx, workq **ret);
void wq_push(workq *q, void *job);
void wq_finish(workq *q); /* SNAP-WQ3, then frees q; NULL is fine */

#endif

/* The runner core of the orchestrator (orchestrator.h ORCH-O1 to ORCH-O4, ORCH-O12;
 * orch_internal.h ORCH-K1).
 *
 * Every failover runs on a detached thread of its own, started by its kind
 * (sim.c, real.c). The core counts those runners under a mutex (ORCH-O3); shutdown
 * raises `stopping` and waits on a condition variable until the count is
 * zero (ORCH-O4). Runners sleep in 10 ms steps so they notice a stop quickly.
 * Every save of a record goes through fo_orch_save / fo_orch_apply, which
 * retry storage faults with backoff and keep the record in memory no newer
 * than the database (ORCH-O12). fo_orch_recover hands each active failover to its
 * kind's resume hook, and ends those that none resumes (ORCH-O2). */
#include "failover/orch_internal.h"

#include "util/clock.h"
#include "util/error.h"
#include "util/log.h"

#include <assert.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int fo_orch_new(dm_db *db, double default_speed, fo_orch **ret)
{
    fo_orch *o = calloc(1, sizeof *o);
    if (!o)
        return -ENOMEM;
    o->db = db;
    pthread_mutex_init(&o->lock, NULL);
    pthread_cond_init(&o->idle, NULL);
    int rc = fo_sim_register(o, default_speed);
    if (rc) {
        fo_orch_free(o);
        return rc;
    }
    *ret = o;
    return 0;
}

int fo_orch_set_kind(fo_orch *o, fo_kind k, const fo_kind_ops *ops, void *st)
{
    if ((unsigned)k >= FO_KIND_COUNT || !ops)
        return DM_E_INVALID;
    int rc = 0;
    pthread_mutex_lock(&o->lock); /* ORCH-K1: published whole */
    if (o->kinds[k].ops) {
        rc = DM_E_CONFLICT;
    } else {
        o->kinds[k].ops = ops;
        o->kinds[k].st = st;
    }
    pthread_mutex_unlock(&o->lock);
    return rc;
}

void *fo_orch_kind(fo_orch *o, fo_kind k)
{
    if (!o || (unsigned)k >= FO_KIND_COUNT)
        return NULL;
    pthread_mutex_lock(&o->lock);
    void *st = o->kinds[k].st;
    pthread_mutex_unlock(&o->lock);
    return st;
}

void fo_orch_set_observer(fo_orch *o, fo_observer_fn fn, void *arg)
{
    pthread_mutex_lock(&o->lock);
    o->observer = fn;
    o->observer_arg = arg;
    pthread_mutex_unlock(&o->lock);
}

/* Tells the observer; under the lock so that clearing it waits for a call
 * in flight. */
void fo_orch_notify(fo_orch *o, const fo_failover *f)
{
    pthread_mutex_lock(&o->lock);
    if (o->observer)
        o->observer(o->observer_arg, f);
    pthread_mutex_unlock(&o->lock);
}

/* ---- ORCH-O12: durable-state faults ---- */

#define BACKOFF_FIRST_MS 100
#define BACKOFF_MAX_MS   2000
#define BACKOFF_LOG_MS   10000 /* a write that keeps failing is said again this often */

static _Thread_local int64_t tl_paused_ms; /* ORCH-O14 */

int64_t fo_orch_paused_ms(void)
{
    return tl_paused_ms;
}

int fo_backoff_wait(fo_orch *o, fo_backoff *b, const char *what, const char *err)
{
    char q[300];
    int64_t now = clock_mono_ms();
    if (!b->failing) {
        b->failing = 1;
        b->since_ms = now;
        b->wait_ms = BACKOFF_FIRST_MS;
        pthread_mutex_lock(&o->lock);
        if (o->storage_failing++ == 0) {
            snprintf(o->storage_reason, sizeof o->storage_reason, "cannot save %.60s: %.180s", what,
                     err && *err ? err : "storage error");
            o->storage_since_ms = clock_wall_ms();
        }
        pthread_mutex_unlock(&o->lock);
    }
    if (now >= b->next_log_ms) {
        log_error("storage.write_failed", "what=%s error=%s retry_in_ms=%lld", what,
                  log_quote(q, sizeof q, err ? err : ""), (long long)b->wait_ms);
        b->next_log_ms = now + BACKOFF_LOG_MS;
    }
    if (clock_sleep_ms(b->wait_ms, &o->stopping)) {
        b->cancelled = 1;
        return -1;
    }
    b->wait_ms = b->wait_ms * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : b->wait_ms * 2;
    return 0;
}

void fo_backoff_done(fo_orch *o, fo_backoff *b, const char *what)
{
    if (!b->failing)
        return;
    b->failing = 0;
    int64_t paused = clock_mono_ms() - b->since_ms;
    tl_paused_ms += paused > 0 ? paused : 0; /* ORCH-O14 */
    pthread_mutex_lock(&o->lock);
    if (--o->storage_failing == 0)
        o->storage_reason[0] = '\0';
    pthread_mutex_unlock(&o->lock);
    if (!b->cancelled)
        log_info("storage.write_landed", "what=%s", what);
}

int fo_orch_storage_degraded(fo_orch *o, char *reason, size_t reasonlen, int64_t *ret_since_ms)
{
    if (!o)
        return 0;
    pthread_mutex_lock(&o->lock);
    int bad = o->storage_failing > 0;
    if (bad && reason && reasonlen)
        snprintf(reason, reasonlen, "%s", o->storage_reason);
    if (bad && ret_since_ms)
        *ret_since_ms = o->storage_since_ms;
    pthread_mutex_unlock(&o->lock);
    return bad;
}

int fo_orch_save(fo_orch *o, const fo_failover *f)
{
    char err[256] = "", what[FO_ID_MAX + 16];
    snprintf(what, sizeof what, "failover %s", f->id);
    return FO_DURABLE(o, what, err, db_failover_save(o->db, f, err, sizeof err));
}

/* Applies ev to a copy and keeps it only once saved (ORCH-O1, ORCH-O12). */
int fo_orch_apply(fo_orch *o, fo_failover *f, const fo_event *ev)
{
    fo_failover next = *f;
    int rc = fo_transition(&next, ev);
    if (rc)
        return rc;
    if ((rc = fo_orch_save(o, &next)) != 0) {
        char q[64];
        log_error("failover.save_failed", "failover_id=%s error=%s", f->id,
                  log_quote(q, sizeof q, dm_strerror(rc)));
        return rc; /* f is what the database holds */
    }
    *f = next;
    fo_orch_notify(o, f);
    return 0;
}

/* ORCH-O6: 0 when f's kind resumed it. */
static int resumed(fo_orch *o, const fo_failover *f)
{
    const fo_kind_ops *ops = (unsigned)f->kind < FO_KIND_COUNT ? o->kinds[f->kind].ops : NULL;
    if (!ops || !ops->resume)
        return 0;
    char why[256] = "", q[300];
    if (ops->resume(o, o->kinds[f->kind].st, f, why, sizeof why) == 0)
        return 1;
    log_error("failover.resume_failed", "failover_id=%s error=%s", f->id,
              log_quote(q, sizeof q, why));
    return 0;
}

/* ORCH-O2: ends a failover no process runs any more. One try: nothing can stop a
 * retry loop before the server serves. A record that cannot be saved now
 * stays active and is ended by the next start. */
static int end_interrupted(fo_orch *o, const fo_failover *f)
{
    fo_event ev = {.kind = FO_EV_ABORT,
                   .now_ms = clock_wall_ms(),
                   .duration_ms = FO_NULL,
                   .detail = "the server stopped while this failover was running"};
    fo_failover next = *f;
    char err[256] = "", q[300];
    if (fo_transition(&next, &ev) == 0 && db_failover_save(o->db, &next, err, sizeof err) == 0) {
        fo_orch_notify(o, &next);
        log_warn("failover.interrupted", "failover_id=%s gpu_instance_id=%lld phase=%s", f->id,
                 (long long)f->gpu_instance_id, fo_state_name(f->state));
        return 1;
    }
    log_error("failover.save_failed", "failover_id=%s error=%s", f->id,
              log_quote(q, sizeof q, err));
    return 0;
}

int fo_orch_recover(fo_orch *o, int *ret_count, char *err, size_t errlen)
{
    db_failover_filter flt;
    db_failover_filter_init(&flt);
    flt.active_only = 1;
    fo_failover *list = NULL;
    size_t n = 0;
    int rc = db_failover_list(o->db, &flt, &list, &n, err, errlen);
    if (rc)
        return rc;
    int count = 0;
    for (size_t i = 0; i < n; i++)
        if (!resumed(o, &list[i]))
            count += end_interrupted(o, &list[i]);
    free(list);
    for (int k = 0; k < FO_KIND_COUNT; k++) /* ORCH-O13 */
        if (o->kinds[k].ops && o->kinds[k].ops->recover)
            o->kinds[k].ops->recover(o, o->kinds[k].st);
    if (ret_count)
        *ret_count = count;
    return 0;
}

int fo_orch_reserve_slot(fo_orch *o, char *err, size_t errlen)
{
    int rc = 0;
    pthread_mutex_lock(&o->lock);
    if (o->stopping)
        rc = DM_E_CANCELLED;
    else if (o->running >= FO_ORCH_MAX_RUNNING)
        rc = DM_E_BUSY;
    else
        o->running++;
    assert(o->running <= FO_ORCH_MAX_RUNNING); /* ORCH-O3 */
    pthread_mutex_unlock(&o->lock);
    if (rc)
        dm_fail(err, errlen, rc, "%s",
                rc == DM_E_BUSY ? "too many failovers are running; try again later"
                                : "the server is shutting down");
    return rc;
}

void fo_orch_run_finished(fo_orch *o)
{
    pthread_mutex_lock(&o->lock);
    assert(o->running > 0); /* ORCH-O3: every finish ends a slot that was reserved */
    o->running--;
    if (o->running == 0)
        pthread_cond_broadcast(&o->idle);
    pthread_mutex_unlock(&o->lock);
}

int fo_orch_spawn(void *(*fn)(void *), void *arg)
{
    pthread_attr_t attr;
    pthread_t tid;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    int rc = pthread_create(&tid, &attr, fn, arg);
    pthread_attr_destroy(&attr);
    return rc ? -rc : 0;
}

void fo_orch_stop_acting(fo_orch *o)
{
    if (!o)
        return;
    pthread_mutex_lock(&o->lock);
    o->stopping = 1;
    pthread_mutex_unlock(&o->lock);
}

void fo_orch_shutdown(fo_orch *o)
{
    if (!o)
        return;
    pthread_mutex_lock(&o->lock);
    o->stopping = 1;
    while (o->running > 0)
        pthread_cond_wait(&o->idle, &o->lock);
    o->shut = 1;
    pthread_mutex_unlock(&o->lock);
}

void fo_orch_free(fo_orch *o)
{
    if (!o)
        return;
    fo_orch_shutdown(o);
    for (int k = 0; k < FO_KIND_COUNT; k++) /* ORCH-K1 */
        if (o->kinds[k].ops && o->kinds[k].ops->free)
            o->kinds[k].ops->free(o->kinds[k].st);
    pthread_mutex_destroy(&o->lock);
    pthread_cond_destroy(&o->idle);
    free(o);
}

int fo_orch_running(fo_orch *o)
{
    pthread_mutex_lock(&o->lock);
    int n = o->running;
    pthread_mutex_unlock(&o->lock);
    return n;
}

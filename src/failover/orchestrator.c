/* Failover orchestrator (see orchestrator.h for O1-O4).
 *
 * One detached thread per running failover. The orchestrator counts them
 * under a mutex; shutdown raises `stopping` and waits on a condition variable
 * until the count is zero. Runners sleep in 10 ms steps so they notice a stop
 * quickly. For the sim provider a phase is "run" by sleeping its simulated
 * duration divided by the speed factor. */
#include "failover/orch_internal.h"

#include "provider/sim.h"
#include "util/clock.h"
#include "util/error.h"
#include "util/log.h"
#include "util/secret.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    fo_orch *orch;
    fo_failover f;
    fo_sim_opts opts;
    sim_rng rng;
} sim_run;

void fo_sim_opts_init(fo_sim_opts *o)
{
    o->speed = 0;
    o->seed = FO_NULL;
    o->fail_phase = FO_NULL;
}

int fo_orch_new(dm_db *db, double default_speed, fo_orch **ret)
{
    fo_orch *o = calloc(1, sizeof *o);
    if (!o)
        return -ENOMEM;
    o->db = db;
    o->default_speed = default_speed > 0 ? default_speed : 200.0;
    o->started_at_ms = clock_wall_ms();
    pthread_mutex_init(&o->lock, NULL);
    pthread_mutex_init(&o->start_lock, NULL);
    pthread_cond_init(&o->idle, NULL);
    *ret = o;
    return 0;
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

/* ---- O12: durable-state faults ---- */

#define BACKOFF_FIRST_MS 100
#define BACKOFF_MAX_MS   2000
#define BACKOFF_LOG_MS   10000 /* a write that keeps failing is said again this often */

int fo_backoff_wait(fo_orch *o, fo_backoff *b, const char *what, const char *err)
{
    char q[300];
    int64_t now = clock_mono_ms();
    if (!b->failing) {
        b->failing = 1;
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

/* Applies ev to a copy and keeps it only once saved (O1, O12). */
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
    for (size_t i = 0; i < n; i++) {
        if (list[i].kind == FO_KIND_REAL) { /* O6: resumed, not failed */
            char why[256] = "";
            if (fo_orch_resume_real(o, &list[i], why, sizeof why) == 0)
                continue;
            char q[300];
            log_error("failover.resume_failed", "failover_id=%s error=%s", list[i].id,
                      log_quote(q, sizeof q, why));
        }
        fo_event ev = {.kind = FO_EV_ABORT,
                       .now_ms = clock_wall_ms(),
                       .duration_ms = FO_NULL,
                       .detail = "the server stopped while this failover was running"};
        const char *phase = fo_state_name(list[i].state);
        /* One try: nothing can stop a retry loop before the server serves.
         * A record that cannot be saved now stays active and is ended by
         * the next start (O2). */
        fo_failover next = list[i];
        char e2[256] = "", q[300];
        if (fo_transition(&next, &ev) == 0 && db_failover_save(o->db, &next, e2, sizeof e2) == 0) {
            count++;
            fo_orch_notify(o, &next);
            log_warn("failover.interrupted", "failover_id=%s gpu_instance_id=%lld phase=%s",
                     list[i].id, (long long)list[i].gpu_instance_id, phase);
        } else {
            log_error("failover.save_failed", "failover_id=%s error=%s", list[i].id,
                      log_quote(q, sizeof q, e2));
        }
    }
    free(list);
    if (o->provider && fo_orch_recover_launches(o, NULL, err, errlen) != 0) {
        char q[600];
        log_error("launch.recover_failed", "error=%s", log_quote(q, sizeof q, err));
    }
    if (ret_count)
        *ret_count = count;
    return 0;
}

void fo_orch_run_finished(fo_orch *o)
{
    pthread_mutex_lock(&o->lock);
    o->running--;
    if (o->running == 0)
        pthread_cond_broadcast(&o->idle);
    pthread_mutex_unlock(&o->lock);
}

/* Plays one phase: sleep its simulated duration / speed; fail if asked.
 * Non-zero: the transition could not be saved (O12: the runner stops). */
static int sim_step(sim_run *r)
{
    fo_failover *f = &r->f;
    fo_phase p = (fo_phase)f->state;
    int64_t sim_ms = sim_phase_duration_ms(&r->rng, p);
    double wall = (double)sim_ms / r->opts.speed;
    fo_event ev = {.now_ms = 0, .duration_ms = sim_ms, .simulated = 1};
    if (clock_sleep_ms((int64_t)wall, &r->orch->stopping)) {
        ev.kind = FO_EV_ABORT;
        ev.detail = "the server is shutting down";
        ev.duration_ms = FO_NULL;
    } else if (r->opts.fail_phase == (int)p) {
        ev.kind = FO_EV_PHASE_FAILED;
        ev.detail = "simulated failure (fail_phase)";
    } else {
        ev.kind = FO_EV_PHASE_OK;
    }
    ev.now_ms = clock_wall_ms();
    return fo_orch_apply(r->orch, f, &ev);
}

static void *sim_thread(void *arg)
{
    sim_run *r = arg;
    fo_orch *o = r->orch;
    while (!fo_state_is_terminal(r->f.state))
        if (sim_step(r) != 0)
            break;
    if (fo_state_is_terminal(r->f.state))
        log_info("failover.finished",
                 "failover_id=%s gpu_instance_id=%lld kind=simulated state=%s total_time_ms=%lld",
                 r->f.id, (long long)r->f.gpu_instance_id, fo_state_name(r->f.state),
                 (long long)r->f.total_time_ms);
    else /* O12: stopped while its save failed; the next start ends it (O2) */
        log_warn("failover.paused", "failover_id=%s phase=%s kind=simulated", r->f.id,
                 fo_state_name(r->f.state));
    free(r);
    fo_orch_run_finished(o);
    return NULL;
}

int fo_orch_reserve_slot(fo_orch *o)
{
    int rc = 0;
    pthread_mutex_lock(&o->lock);
    if (o->stopping)
        rc = DM_E_CANCELLED;
    else if (o->running >= FO_ORCH_MAX_RUNNING)
        rc = DM_E_BUSY;
    else
        o->running++;
    pthread_mutex_unlock(&o->lock);
    return rc;
}

static int start_thread(sim_run *r)
{
    pthread_attr_t attr;
    pthread_t tid;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    int rc = pthread_create(&tid, &attr, sim_thread, r);
    pthread_attr_destroy(&attr);
    return rc ? -rc : 0;
}

static int new_sim_run(fo_orch *o, int64_t gpu, const fo_sim_opts *opts, sim_run **ret)
{
    sim_run *r = calloc(1, sizeof *r);
    if (!r)
        return -ENOMEM;
    char hex[16], id[FO_ID_MAX];
    int rc = secret_random_hex(hex, sizeof hex, 6);
    if (rc) {
        free(r);
        return rc;
    }
    snprintf(id, sizeof id, "sim-%s", hex);
    r->orch = o;
    r->opts = *opts;
    if (r->opts.speed <= 0)
        r->opts.speed = o->default_speed;
    uint64_t seed = opts->seed != FO_NULL ? (uint64_t)opts->seed
                                          : (uint64_t)clock_mono_us() ^ strtoull(hex, NULL, 16);
    sim_rng_seed(&r->rng, seed);
    fo_init(&r->f, id, gpu, FO_KIND_SIMULATED, clock_wall_ms());
    *ret = r;
    return 0;
}

int fo_orch_simulate(fo_orch *o, int64_t gpu_instance_id, const fo_sim_opts *opts, fo_failover *ret,
                     char *err, size_t errlen)
{
    fo_assoc assoc;
    int rc = db_assoc_get(o->db, gpu_instance_id, &assoc, err, errlen);
    if (rc == DM_E_NOT_FOUND)
        return dm_fail(err, errlen, rc,
                       "GPU instance %lld has no standby association: run `dumont failover "
                       "test-setup gpu_instance_id=%lld` first",
                       (long long)gpu_instance_id, (long long)gpu_instance_id);
    if (rc)
        return rc;
    if ((rc = fo_orch_reserve_slot(o)) != 0)
        return dm_fail(err, errlen, rc, "%s",
                       rc == DM_E_BUSY ? "too many failovers are running; try again later"
                                       : "the server is shutting down");
    sim_run *r = NULL;
    if ((rc = new_sim_run(o, gpu_instance_id, opts, &r)) != 0)
        goto fail;
    rc = db_failover_insert(o->db, &r->f, err, errlen); /* O1 */
    if (rc == DM_E_CONFLICT)
        dm_fail(err, errlen, rc, "a failover of GPU instance %lld is already running",
                (long long)gpu_instance_id);
    if (rc)
        goto fail;
    *ret = r->f;
    fo_orch_notify(o, &r->f);
    log_info("failover.started", "failover_id=%s gpu_instance_id=%lld kind=simulated speed=%g",
             r->f.id, (long long)gpu_instance_id, r->opts.speed);
    if ((rc = start_thread(r)) != 0) {
        fo_event ev = {.kind = FO_EV_ABORT,
                       .now_ms = clock_wall_ms(),
                       .duration_ms = FO_NULL,
                       .detail = "could not start a runner thread"};
        fo_orch_apply(o, &r->f, &ev);
        *ret = r->f;
        goto fail;
    }
    return 0;
fail:
    free(r);
    fo_orch_run_finished(o);
    return rc;
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
    pthread_mutex_destroy(&o->lock);
    pthread_mutex_destroy(&o->start_lock);
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

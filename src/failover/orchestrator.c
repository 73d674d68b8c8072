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

/* Applies ev and persists the result (O1). On a save error the in-memory
 * record still moves on, and the error is logged: the next save retries. */
int fo_orch_apply(fo_orch *o, fo_failover *f, const fo_event *ev)
{
    int rc = fo_transition(f, ev);
    if (rc)
        return rc;
    char err[256] = "";
    rc = db_failover_save(o->db, f, err, sizeof err);
    if (rc) {
        char q[300];
        log_error("failover.save_failed", "failover_id=%s error=%s", f->id,
                  log_quote(q, sizeof q, err));
    }
    fo_orch_notify(o, f);
    return rc;
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
        if (fo_orch_apply(o, &list[i], &ev) == 0) {
            count++;
            log_warn("failover.interrupted", "failover_id=%s gpu_instance_id=%lld phase=%s",
                     list[i].id, (long long)list[i].gpu_instance_id, phase);
        }
    }
    free(list);
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

/* Plays one phase: sleep its simulated duration / speed; fail if asked. */
static void sim_step(sim_run *r)
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
    fo_orch_apply(r->orch, f, &ev);
}

static void *sim_thread(void *arg)
{
    sim_run *r = arg;
    fo_orch *o = r->orch;
    while (!fo_state_is_terminal(r->f.state))
        sim_step(r);
    log_info("failover.finished",
             "failover_id=%s gpu_instance_id=%lld kind=simulated state=%s total_time_ms=%lld",
             r->f.id, (long long)r->f.gpu_instance_id, fo_state_name(r->f.state),
             (long long)r->f.total_time_ms);
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

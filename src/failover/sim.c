/* Simulated failovers (orchestrator.h fo_orch_simulate; docs/failover.md):
 * the simulated kind of the runner core (orch_internal.h), its phase
 * durations and its runner.
 *
 * A simulated failover creates no resources. Each phase's duration is drawn
 * from the seed's typical times and played back faster than real time: the
 * runner sleeps the drawn duration divided by the speed factor and records
 * the drawn (simulated) duration.
 *
 *   detection 0.2-0.95 s   standby_activation 0.5-2 s   gpu_search 2-5 s
 *   provisioning 30-60 s   ssh_ready 30-120 s           restore 10-30 s
 *   inference 5-15 s
 *
 * ORCH-S1: draws are uniform in [lo, hi] and reproducible for a given seed
 *     (xorshift64*, no global state): a seed names a whole failover.
 * ORCH-S2: nothing of a simulated failover can be resumed: the kind has no resume
 *     hook, so one left active by a stopped server is ended (ORCH-O2). */
#include "failover/orch_internal.h"

#include "util/clock.h"
#include "util/error.h"
#include "util/log.h"
#include "util/secret.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- the durations (ORCH-S1) ---- */

typedef struct {
    uint64_t state;
} sim_rng;

static const int64_t ranges_ms[FO_PHASE_COUNT][2] = {
    [FO_PHASE_DETECTION] = {200, 950},      [FO_PHASE_STANDBY_ACTIVATION] = {500, 2000},
    [FO_PHASE_GPU_SEARCH] = {2000, 5000},   [FO_PHASE_PROVISIONING] = {30000, 60000},
    [FO_PHASE_SSH_READY] = {30000, 120000}, [FO_PHASE_RESTORE] = {10000, 30000},
    [FO_PHASE_INFERENCE] = {5000, 15000},
};

static void sim_rng_seed(sim_rng *rng, uint64_t seed)
{
    /* splitmix64 of the seed, so that 0 and small seeds give a good state */
    uint64_t z = seed + 0x9e3779b97f4a7c15ULL;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    z ^= z >> 31;
    rng->state = z ? z : 1;
}

static uint64_t sim_rng_next(sim_rng *rng)
{
    uint64_t x = rng->state;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    rng->state = x;
    return x * 0x2545f4914f6cdd1dULL;
}

/* A duration for phase p, uniform in its range (ORCH-S1). */
static int64_t sim_phase_duration_ms(sim_rng *rng, fo_phase p)
{
    if ((unsigned)p >= FO_PHASE_COUNT)
        return 0;
    int64_t lo = ranges_ms[p][0], hi = ranges_ms[p][1];
    uint64_t span = (uint64_t)(hi - lo) + 1;
    return lo + (int64_t)(sim_rng_next(rng) % span);
}

/* ---- the kind ---- */

typedef struct {
    double default_speed; /* simulated seconds per wall second */
} sim_kind;

typedef struct {
    fo_orch *orch;
    fo_failover f;
    fo_sim_opts opts;
    sim_rng rng;
} sim_run;

static const fo_kind_ops sim_ops = {.resume = NULL /* ORCH-S2 */, .recover = NULL, .free = free};

int fo_sim_register(fo_orch *o, double default_speed)
{
    sim_kind *k = calloc(1, sizeof *k);
    if (!k)
        return -ENOMEM;
    k->default_speed = default_speed > 0 ? default_speed : 200.0;
    int rc = fo_orch_set_kind(o, FO_KIND_SIMULATED, &sim_ops, k);
    if (rc)
        free(k);
    return rc;
}

void fo_sim_opts_init(fo_sim_opts *o)
{
    o->speed = 0;
    o->seed = FO_NULL;
    o->fail_phase = FO_NULL;
    o->user_id[0] = '\0';
}

/* Plays one phase: sleep its simulated duration / speed; fail if asked.
 * Non-zero: the transition could not be saved (ORCH-O12: the runner stops). */
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
    else /* ORCH-O12: stopped while its save failed; the next start ends it (ORCH-O2) */
        log_warn("failover.paused", "failover_id=%s phase=%s kind=simulated", r->f.id,
                 fo_state_name(r->f.state));
    free(r);
    fo_orch_run_finished(o);
    return NULL;
}

static int new_sim_run(fo_orch *o, int64_t gpu, const fo_sim_opts *opts, sim_run **ret)
{
    const sim_kind *k = fo_orch_kind(o, FO_KIND_SIMULATED);
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
        r->opts.speed = k->default_speed;
    uint64_t seed = opts->seed != FO_NULL ? (uint64_t)opts->seed
                                          : (uint64_t)clock_mono_us() ^ strtoull(hex, NULL, 16);
    sim_rng_seed(&r->rng, seed);
    fo_init(&r->f, id, gpu, FO_KIND_SIMULATED, clock_wall_ms());
    snprintf(r->f.user_id, sizeof r->f.user_id, "%s", opts->user_id[0] ? opts->user_id : "automatic");
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
    if ((rc = fo_orch_reserve_slot(o, err, errlen)) != 0)
        return rc;
    sim_run *r = NULL;
    if ((rc = new_sim_run(o, gpu_instance_id, opts, &r)) != 0)
        goto fail;
    rc = db_failover_insert(o->db, &r->f, err, errlen); /* ORCH-O1 */
    if (rc == DM_E_CONFLICT)
        dm_fail(err, errlen, rc, "a failover of GPU instance %lld is already running",
                (long long)gpu_instance_id);
    if (rc)
        goto fail;
    *ret = r->f;
    fo_orch_notify(o, &r->f);
    log_info("failover.started", "failover_id=%s gpu_instance_id=%lld kind=simulated speed=%g",
             r->f.id, (long long)gpu_instance_id, r->opts.speed);
    if ((rc = fo_orch_spawn(sim_thread, r)) != 0) {
        fo_event ev = {.kind = FO_EV_ABORT,
                       .now_ms = clock_wall_ms(),
                       .duration_ms = FO_NULL,
                       .detail = "could not start a runner thread"};
        if (fo_orch_apply(o, &r->f, &ev) == 0) /* else it stays active: the next start ends it */
            *ret = r->f;
        goto fail;
    }
    return 0;
fail:
    free(r);
    fo_orch_run_finished(o);
    return rc;
}

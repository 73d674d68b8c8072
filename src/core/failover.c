/* Failover state machine (see core/failover.h for the invariants FO-I1 to FO-I4). */
#include "core/failover.h"

#include "util/error.h"
#include "util/parse.h"

#include <assert.h>
#include <stdio.h>
#include <string.h>

static const char *const phase_names[FO_PHASE_COUNT] = {
    "detection", "standby_activation", "gpu_search", "provisioning", "ssh_ready",
    "restore",   "inference",
};
static const char *const status_names[] = {"pending", "running", "ok", "failed", "skipped"};
#define N_STATUS ((int)(sizeof status_names / sizeof status_names[0]))
static const char *const kind_names[FO_KIND_COUNT] = {"simulated", "real"};

const char *fo_phase_name(fo_phase p)
{
    return name_of(phase_names, FO_PHASE_COUNT, (int)p);
}

int fo_phase_parse(const char *s, fo_phase *ret)
{
    int i, rc = parse_name(s, phase_names, FO_PHASE_COUNT, &i);
    if (rc == 0)
        *ret = (fo_phase)i;
    return rc;
}

const char *fo_state_name(fo_state s)
{
    if (s == FO_STATE_COMPLETED)
        return "completed";
    if (s == FO_STATE_FAILED)
        return "failed";
    return fo_phase_name((fo_phase)s);
}

int fo_state_parse(const char *s, fo_state *ret)
{
    fo_phase p;
    if (s && strcmp(s, "completed") == 0)
        *ret = FO_STATE_COMPLETED;
    else if (s && strcmp(s, "failed") == 0)
        *ret = FO_STATE_FAILED;
    else if (fo_phase_parse(s, &p) == 0)
        *ret = (fo_state)p;
    else
        return DM_E_INVALID;
    return 0;
}

const char *fo_phase_status_name(fo_phase_status s)
{
    return name_of(status_names, N_STATUS, (int)s);
}

int fo_phase_status_parse(const char *s, fo_phase_status *ret)
{
    int i, rc = parse_name(s, status_names, N_STATUS, &i);
    if (rc == 0)
        *ret = (fo_phase_status)i;
    return rc;
}

const char *fo_kind_name(fo_kind k)
{
    return name_of(kind_names, FO_KIND_COUNT, (int)k);
}

int fo_kind_parse(const char *s, fo_kind *ret)
{
    int i, rc = parse_name(s, kind_names, FO_KIND_COUNT, &i);
    if (rc == 0)
        *ret = (fo_kind)i;
    return rc;
}

int fo_state_is_terminal(fo_state s)
{
    return s == FO_STATE_COMPLETED || s == FO_STATE_FAILED;
}

static void finish(fo_failover *f, fo_state st, int64_t now_ms, const char *reason);

int fo_init(fo_failover *f, const char *id, int64_t gpu_instance_id, fo_kind kind, int64_t now_ms)
{
    if (!id || !*id || strlen(id) >= FO_ID_MAX || (unsigned)kind >= FO_KIND_COUNT)
        return DM_E_INVALID;
    memset(f, 0, sizeof *f);
    snprintf(f->id, sizeof f->id, "%s", id);
    f->gpu_instance_id = gpu_instance_id;
    f->kind = kind;
    f->state = FO_PHASE_DETECTION;
    f->success = FO_NULL;
    f->started_at_ms = now_ms;
    f->finished_at_ms = FO_NULL;
    f->total_time_ms = FO_NULL;
    f->controller_down_ms = 0;
    f->attempt = 1;
    f->run_started_at_ms = now_ms;
    for (int i = 0; i < FO_PHASE_COUNT; i++) {
        f->phases[i].status = FO_PHASE_PENDING;
        f->phases[i].started_at_ms = FO_NULL;
        f->phases[i].duration_ms = FO_NULL;
    }
    f->phases[0].status = FO_PHASE_RUNNING;
    f->phases[0].started_at_ms = now_ms;
    fo_real *r = &f->real;
    r->new_instance_id = r->epoch = FO_NULL;
    r->snapshot_size_bytes = r->snapshot_creation_time_ms = FO_NULL;
    r->restore_download_time_ms = r->restore_decompress_time_ms = FO_NULL;
    r->inference_ready_time_ms = FO_NULL;
    r->inference_success = FO_NULL;
    return 0;
}

/* Adds d to a phase's duration (FO_NULL + d = d): a phase run again after a
 * retry counts every run. */
static int64_t add_duration(int64_t have, int64_t d)
{
    return have == FO_NULL ? d : have + d;
}

/* Moves to phase `next` (running since now), or completes after the last. */
static void advance(fo_failover *f, int64_t now_ms)
{
    if (f->state + 1 == FO_PHASE_COUNT) {
        finish(f, FO_STATE_COMPLETED, now_ms, NULL);
        return;
    }
    f->state++;
    f->phases[f->state].status = FO_PHASE_RUNNING;
    if (f->phases[f->state].started_at_ms == FO_NULL) /* a phase's first run */
        f->phases[f->state].started_at_ms = now_ms;
    f->run_started_at_ms = now_ms;
}

/* FO-I3: the phases, the skipped runs' time and the downtime. */
static int64_t sum_durations(const fo_failover *f)
{
    int64_t sum = f->controller_down_ms > 0 ? f->controller_down_ms : 0;
    for (int i = 0; i < FO_PHASE_COUNT; i++)
        if (f->phases[i].duration_ms != FO_NULL)
            sum += f->phases[i].duration_ms;
    for (int i = 0; i < f->n_runs; i++)
        if (f->runs[i].status == FO_PHASE_SKIPPED && f->runs[i].duration_ms != FO_NULL)
            sum += f->runs[i].duration_ms;
    return sum;
}

/* FO-I5: the current run ends with status st after d (FO_NULL: unknown). */
static void add_run(fo_failover *f, fo_phase_status st, int64_t d, const char *detail)
{
    fo_phase_run *r;
    if (f->n_runs < FO_RUNS_MAX) {
        r = &f->runs[f->n_runs++];
        memset(r, 0, sizeof *r);
        r->phase = f->state;
        r->attempt = f->attempt;
        r->started_at_ms = f->run_started_at_ms;
        r->duration_ms = d;
    } else { /* folded into the last one: the sums stay right */
        r = &f->runs[FO_RUNS_MAX - 1];
        if (d != FO_NULL)
            r->duration_ms = r->duration_ms == FO_NULL ? d : r->duration_ms + d;
    }
    r->status = st;
    snprintf(r->detail, sizeof r->detail, "%s", detail ? detail : "");
}

/* FO-I6: when the event happened. A real failover's measured run ends at its
 * start + duration + downtime; anything else at the event's wall clock. */
static int64_t event_time(const fo_failover *f, const fo_event *ev)
{
    if (f->kind == FO_KIND_REAL && ev->duration_ms != FO_NULL && ev->duration_ms >= 0 &&
        f->run_started_at_ms != FO_NULL)
        return f->run_started_at_ms + ev->duration_ms + (ev->down_ms > 0 ? ev->down_ms : 0);
    return ev->now_ms;
}

/* FO-I6: the event's downtime; for a real failover whose run's length is
 * unknown (interrupted, resumed), all of the run so far. */
static void add_down(fo_failover *f, const fo_event *ev, int64_t now)
{
    int64_t d = ev->down_ms > 0 ? ev->down_ms : 0;
    if (f->kind == FO_KIND_REAL && ev->duration_ms == FO_NULL && f->run_started_at_ms != FO_NULL &&
        now > f->run_started_at_ms)
        d += now - f->run_started_at_ms;
    f->controller_down_ms = (f->controller_down_ms > 0 ? f->controller_down_ms : 0) + d;
}

static void finish(fo_failover *f, fo_state st, int64_t now_ms, const char *reason)
{
    f->state = st;
    f->success = st == FO_STATE_COMPLETED;
    f->finished_at_ms = now_ms;
    f->total_time_ms = sum_durations(f);
    if (reason)
        snprintf(f->reason, sizeof f->reason, "%s", reason);
}

/* What a transition that was accepted must have made true, whatever the record
 * held before: checked in debug and sanitizer builds (NDEBUG off), where a
 * broken invariant aborts at the line that broke it instead of reaching the
 * database. */
static void check_after(const fo_failover *f, const fo_event *ev, fo_state was)
{
    if (fo_state_is_terminal(f->state)) { /* FO-I3, FO-I4 */
        assert(f->success == (f->state == FO_STATE_COMPLETED));
        assert(f->total_time_ms == sum_durations(f));
        assert(f->kind == FO_KIND_REAL || f->finished_at_ms == ev->now_ms); /* FO-I6 */
    } else {
        assert(f->state >= 0 && f->state < FO_PHASE_COUNT);
        assert(f->phases[f->state].status == FO_PHASE_RUNNING);
    }
    if (ev->kind == FO_EV_PHASE_OK) /* FO-I2: a phase that ran has a duration */
        assert(f->phases[was].status == FO_PHASE_OK && f->phases[was].duration_ms >= 0);
    if (ev->kind == FO_EV_PHASE_SKIP) /* FO-I2: one that did not happen has none */
        assert(f->phases[was].status == FO_PHASE_SKIPPED &&
               f->phases[was].duration_ms == FO_NULL);
    if (ev->kind == FO_EV_RETRY)
        assert(f->state == (fo_state)ev->retry_phase && f->state <= was);
}

static int transition(fo_failover *f, const fo_event *ev);

int fo_transition(fo_failover *f, const fo_event *ev)
{
    fo_state was = f->state;
    int rc = transition(f, ev);
    if (rc == 0)
        check_after(f, ev, was);
    return rc;
}

static int transition(fo_failover *f, const fo_event *ev)
{
    if (fo_state_is_terminal(f->state))
        return DM_E_CONFLICT;
    if (f->state < 0 || f->state >= FO_PHASE_COUNT || ev->down_ms < 0)
        return DM_E_INVALID;
    fo_phase_rec *cur = &f->phases[f->state];
    int64_t now = event_time(f, ev);
    switch (ev->kind) {
    case FO_EV_PHASE_OK:
        if (ev->duration_ms < 0)
            return DM_E_INVALID;
        cur->status = FO_PHASE_OK;
        cur->duration_ms = add_duration(cur->duration_ms, ev->duration_ms);
        cur->simulated = ev->simulated;
        if (ev->detail && *ev->detail)
            snprintf(cur->detail, sizeof cur->detail, "%s", ev->detail);
        add_run(f, FO_PHASE_OK, ev->duration_ms, ev->detail);
        add_down(f, ev, now);
        advance(f, now);
        return 0;
    case FO_EV_PHASE_SKIP:
        if (cur->duration_ms != FO_NULL) /* it ran in an earlier attempt */
            return DM_E_INVALID;
        if (ev->duration_ms != FO_NULL && ev->duration_ms < 0)
            return DM_E_INVALID;
        cur->status = FO_PHASE_SKIPPED;
        cur->started_at_ms = FO_NULL;
        if (ev->detail && *ev->detail)
            snprintf(cur->detail, sizeof cur->detail, "%s", ev->detail);
        add_run(f, FO_PHASE_SKIPPED, ev->duration_ms, ev->detail);
        f->controller_down_ms += ev->down_ms;
        if (ev->duration_ms == FO_NULL && f->kind == FO_KIND_REAL)
            now = f->run_started_at_ms; /* it took no time */
        advance(f, now);
        return 0;
    case FO_EV_RETRY: {
        fo_phase to = ev->retry_phase;
        if (ev->duration_ms < 0 || to < FO_PHASE_GPU_SEARCH || (int)to > f->state)
            return DM_E_INVALID;
        cur->duration_ms = add_duration(cur->duration_ms, ev->duration_ms);
        add_run(f, FO_PHASE_FAILED, ev->duration_ms, ev->detail);
        add_down(f, ev, now);
        for (int i = (int)to + 1; i <= f->state; i++)
            f->phases[i].status = FO_PHASE_PENDING; /* durations so far are kept */
        f->state = (fo_state)to;
        f->attempt++;
        f->phases[to].status = FO_PHASE_RUNNING;
        f->run_started_at_ms = now;
        if (ev->detail && *ev->detail)
            snprintf(f->phases[to].detail, sizeof f->phases[to].detail, "retry: %s", ev->detail);
        return 0;
    }
    case FO_EV_RESUME:
        add_down(f, &(fo_event){.duration_ms = FO_NULL, .down_ms = ev->down_ms}, ev->now_ms);
        f->run_started_at_ms = ev->now_ms;
        return 0;
    case FO_EV_PHASE_FAILED:
    case FO_EV_ABORT: {
        if (ev->kind == FO_EV_PHASE_FAILED && ev->duration_ms < 0 && ev->duration_ms != FO_NULL)
            return DM_E_INVALID;
        const char *what = ev->kind == FO_EV_ABORT ? "interrupted" : "failed";
        const char *detail = ev->detail && *ev->detail ? ev->detail : "no detail";
        char reason[FO_REASON_MAX];
        snprintf(reason, sizeof reason, "%s %s: %s", fo_phase_name((fo_phase)f->state), what,
                 detail);
        cur->status = FO_PHASE_FAILED;
        int64_t d = ev->kind == FO_EV_ABORT ? FO_NULL : ev->duration_ms;
        if (d != FO_NULL) /* an abort: the running phase's time is unknown (downtime) */
            cur->duration_ms = add_duration(cur->duration_ms, d);
        cur->simulated = ev->simulated;
        snprintf(cur->detail, sizeof cur->detail, "%s", detail);
        add_run(f, FO_PHASE_FAILED, d, detail);
        if (ev->kind == FO_EV_ABORT)
            now = ev->now_ms;
        add_down(f, &(fo_event){.duration_ms = d, .down_ms = ev->down_ms}, now);
        finish(f, FO_STATE_FAILED, now, reason);
        return 0;
    }
    }
    return DM_E_INVALID;
}

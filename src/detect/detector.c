/* Phi-accrual failure detector (see detector.h for HB-D1 to HB-D5).
 *
 * The intervals live in a ring of DET_HISTORY with running sums, so a
 * heartbeat and a check are O(1). phi uses the logistic approximation of
 * the normal CDF that Akka uses (error < 1e-4 over the range that matters),
 * computed in the tail form so that large y does not lose precision. */
#include "detect/detector.h"

#include <assert.h>
#include <math.h>
#include <string.h>

static const char *const state_names[DET_STATE_COUNT] = {
    "pending", "healthy", "suspect", "failed", "leaving", "preempting",
};

const char *det_state_name(det_state s)
{
    return (unsigned)s < DET_STATE_COUNT ? state_names[s] : "unknown";
}

int det_state_parse(const char *s, det_state *ret)
{
    for (int i = 0; s && i < DET_STATE_COUNT; i++)
        if (strcmp(s, state_names[i]) == 0) {
            *ret = (det_state)i;
            return 0;
        }
    return -1;
}

void det_params_default(det_params *p)
{
    det_params_for_interval(p, 200);
}

void det_params_for_interval(det_params *p, int64_t interval_ms)
{
    if (interval_ms < 10)
        interval_ms = 10;
    p->expected_interval_ms = interval_ms;
    p->acceptable_pause_ms = interval_ms / 2;
    p->min_std_ms = interval_ms / 4;
    p->phi_suspect = 2.0;
    p->phi_failed = 8.0;
    p->hard_deadline_ms = interval_ms * 9 / 2; /* 900 ms at 200 ms */
    p->lossy_hold_ms = interval_ms * 10;       /* HB-D6: 2 s at 200 ms */
}

void det_peer_init(det_peer *d, int64_t now_ms)
{
    memset(d, 0, sizeof *d);
    d->state = DET_PENDING;
    d->last_ms = -1;
    d->since_ms = now_ms;
}

int det_transition(det_peer *d, det_state to, int64_t now_ms, double phi, const char *reason,
                   det_change *ret)
{
    assert((unsigned)to < DET_STATE_COUNT); /* HB-D1: a state the detector knows */
    if (d->state == to)
        return 0;
    if (ret) {
        ret->from = d->state;
        ret->to = to;
        ret->at_ms = now_ms;
        ret->silent_ms = d->last_ms < 0 ? -1 : now_ms - d->last_ms;
        ret->phi = phi;
        ret->reason = reason;
    }
    d->state = to;
    d->since_ms = now_ms;
    return 1;
}

static void learn(det_peer *d, const det_params *p, int64_t interval)
{
    if (interval < 0 || interval >= p->hard_deadline_ms) /* HB-D4 */
        return;
    if (d->n == DET_HISTORY) {
        double old = d->ring[d->head];
        d->sum -= old;
        d->sumsq -= old * old;
    } else {
        d->n++;
    }
    d->ring[d->head] = (int32_t)interval;
    d->sum += (double)interval;
    d->sumsq += (double)interval * (double)interval;
    d->head = (d->head + 1) % DET_HISTORY;
    assert(d->n <= DET_HISTORY && d->head < DET_HISTORY);
}

static int judged(det_state s)
{
    return s == DET_HEALTHY || s == DET_SUSPECT || s == DET_PREEMPTING;
}

int det_heartbeat(det_peer *d, const det_params *p, int64_t now_ms, int leaving, int preempting,
                  det_change *ret)
{
    if (judged(d->state) && d->last_ms >= 0) /* HB-D4: not across a failure */
        learn(d, p, now_ms - d->last_ms);
    if (d->last_ms < 0 || now_ms > d->last_ms)
        d->last_ms = now_ms;
    d->held = 0; /* HB-D6 */
    if (leaving)
        return det_transition(d, DET_LEAVING, now_ms, 0, "leaving", ret);
    if (preempting)
        return det_transition(d, DET_PREEMPTING, now_ms, 0, "preemption_notice", ret);
    int changed = det_transition(d, DET_HEALTHY, now_ms, 0, "heartbeat", ret); /* HB-D5 */
    assert(d->state == DET_HEALTHY && d->last_ms >= 0);
    return changed;
}

double det_phi(const det_peer *d, const det_params *p, int64_t now_ms)
{
    if (d->last_ms < 0 || !judged(d->state))
        return 0;
    double mean = (double)p->expected_interval_ms, std = mean / 4;
    if (d->n >= DET_MIN_SAMPLES) {
        mean = d->sum / d->n;
        double var = d->sumsq / d->n - mean * mean;
        std = var > 0 ? sqrt(var) : 0;
    }
    if (std < (double)p->min_std_ms)
        std = (double)p->min_std_ms;
    double t = (double)(now_ms - d->last_ms);
    double y = (t - mean - (double)p->acceptable_pause_ms) / std;
    double e = exp(-y * (1.5976 + 0.070566 * y * y));
    if (y > 0)
        return -log10(e / (1.0 + e)); /* the tail, without 1 - F cancellation */
    return -log10(1.0 - 1.0 / (1.0 + e));
}

int det_check(det_peer *d, const det_params *p, int64_t now_ms, det_change *ret)
{
    return det_check_lossy(d, p, now_ms, 0, ret);
}

int det_check_lossy(det_peer *d, const det_params *p, int64_t now_ms, int lossy, det_change *ret)
{
    if (!judged(d->state) || d->last_ms < 0)
        return 0;
    int64_t silent = now_ms - d->last_ms;
    double phi = det_phi(d, p, now_ms);
    const char *why = silent >= p->hard_deadline_ms ? "deadline" /* HB-D3 */
                      : phi >= p->phi_failed        ? "phi"
                                                    : NULL;
    if (why && d->held && silent >= p->lossy_hold_ms) {
        why = "lossy_hold_bound"; /* HB-D6: held long enough */
    } else if (why && lossy && silent < p->lossy_hold_ms) {
        why = NULL; /* HB-D6: the beats may be lost on our side */
        d->held = 1;
    }
    if (why) {
        d->held = 0;
        return det_transition(d, DET_FAILED, now_ms, phi, why, ret);
    }
    if (phi >= p->phi_suspect && d->state == DET_HEALTHY)
        return det_transition(d, DET_SUSPECT, now_ms, phi, "phi", ret);
    return 0;
}

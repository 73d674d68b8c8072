/* The failure detector of one instance: phi accrual (Hayashibara et al.
 * 2004, as in Akka and Cassandra) over its heartbeat inter-arrival times,
 * plus a hard deadline.
 *
 * phi(t) = -log10(1 - F(t - last)), F the normal CDF fitted to the recent
 * intervals (mean + acceptable pause, stddev floored): how sure we are, in
 * orders of magnitude, that a heartbeat this late means the sender is gone.
 * A jittery sender widens the distribution and is judged later; a steady
 * one is judged quickly.
 *
 * States (det_state):
 *   pending    registered, no heartbeat yet (never judged: nothing to fit)
 *   healthy    heartbeats arrive
 *   suspect    phi >= phi_suspect: late, not yet failed
 *   failed     phi >= phi_failed, or silent for hard_deadline_ms
 *   leaving    the agent said it stops cleanly (never judged afterwards)
 *   preempting the agent relays a cloud preemption notice (still judged: a
 *              preempted machine that goes silent is failed)
 *
 * HB-D1: det_transition() is the only place a state changes; det_heartbeat()
 *     and det_check() call it and say whether it changed.
 * HB-D2: suspect comes before failed when the checks are frequent enough: a
 *     healthy instance is failed without being suspect only when one check
 *     finds it past both thresholds at once.
 * HB-D3: silent for hard_deadline_ms is failed whatever phi says, so detection
 *     is bounded even when a long-jittery history made phi lenient.
 * HB-D4: an interval that ended a failure (or longer than the hard deadline)
 *     is not learnt: a recovery must not make the detector lenient.
 * HB-D5: any valid heartbeat makes a suspect, failed or leaving instance
 *     healthy (or preempting) again: the detector never holds a live
 *     instance dead. What to do about a recovered instance is the
 *     orchestrator's business, which sees the transitions.
 * HB-D6: while the caller's intake is lossy (det_check_lossy: kernel receive
 *     drops, a lagging listener, unverified datagrams for this instance
 *     refused before their MAC was checked), a conviction is held back: the
 *     instance is failed only once it has been silent for lossy_hold_ms
 *     (default 2000 at a 200 ms interval), since its beats may have been lost
 *     on our side. The hold is bounded, so a flood delays a real failover by
 *     that much at most and never suppresses it; d->held says a conviction
 *     is being held (set by the check, cleared by the next heartbeat or the
 *     conviction) so the caller can report it.
 * Times are monotonic milliseconds supplied by the caller: the detector reads
 * no clock, so tests replay synthetic histories exactly. */
#ifndef DUMONT_DETECT_DETECTOR_H
#define DUMONT_DETECT_DETECTOR_H

#include <stdint.h>

#define DET_HISTORY     100 /* intervals kept per instance */
#define DET_MIN_SAMPLES 4   /* below this, the expected interval is used */

typedef enum {
    DET_PENDING = 0,
    DET_HEALTHY,
    DET_SUSPECT,
    DET_FAILED,
    DET_LEAVING,
    DET_PREEMPTING,
    DET_STATE_COUNT
} det_state;

typedef struct {
    int64_t expected_interval_ms; /* before enough samples (default 200) */
    int64_t acceptable_pause_ms;  /* added to the mean (default 100) */
    int64_t min_std_ms;           /* stddev floor (default 50) */
    double phi_suspect;           /* default 2 */
    double phi_failed;            /* default 8 */
    int64_t hard_deadline_ms;     /* HB-D3 (default 900) */
    int64_t lossy_hold_ms;        /* HB-D6 (default 2000) */
} det_params;

typedef struct {
    det_state state;
    int64_t last_ms;  /* last heartbeat (monotonic); -1: none yet */
    int64_t since_ms; /* when the state was entered */
    int32_t ring[DET_HISTORY];
    int n, head;
    double sum, sumsq;
    int held; /* HB-D6: a conviction is held back now */
} det_peer;

/* The event a transition reports. */
typedef struct {
    det_state from, to;
    int64_t at_ms;      /* monotonic */
    int64_t silent_ms;  /* time since the last heartbeat at the change; -1 none */
    double phi;         /* at the change (0 for heartbeats) */
    const char *reason; /* static: "heartbeat", "phi", "deadline", "leaving", ... */
} det_change;

const char *det_state_name(det_state s);
int det_state_parse(const char *s, det_state *ret);

void det_params_default(det_params *p);
/* Scales the defaults to another heartbeat interval (the thresholds keep
 * their ratio to 200 ms; the hard deadline stays under 1 s when possible). */
void det_params_for_interval(det_params *p, int64_t interval_ms);
void det_peer_init(det_peer *d, int64_t now_ms); /* pending */

/* HB-D1: the one transition function. Returns 1 when the state changed and
 * fills *ret (may be NULL). */
int det_transition(det_peer *d, det_state to, int64_t now_ms, double phi, const char *reason,
                   det_change *ret);
/* A valid heartbeat at now_ms; type: leaving (1) or not (0); preempting
 * flag. Returns 1 on a state change (HB-D5). */
int det_heartbeat(det_peer *d, const det_params *p, int64_t now_ms, int leaving, int preempting,
                  det_change *ret);
/* Judges silence at now_ms (call often: the listener does every 10 ms).
 * Returns 1 on a state change. */
int det_check(det_peer *d, const det_params *p, int64_t now_ms, det_change *ret);
/* HB-D6: det_check when the caller's intake is lossy (lossy != 0): failed only
 * past lossy_hold_ms of silence; sets d->held while it holds. */
int det_check_lossy(det_peer *d, const det_params *p, int64_t now_ms, int lossy, det_change *ret);
/* phi at now_ms (0 when never heard from or not judged). */
double det_phi(const det_peer *d, const det_params *p, int64_t now_ms);

#endif

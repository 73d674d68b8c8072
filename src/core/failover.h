/* The failover record and its state machine.
 *
 * A failover walks the phases, in order:
 *   detection, standby_activation, gpu_search, provisioning, ssh_ready, restore, inference
 * and ends `completed` (every phase ok) or `failed` (a phase failed, or the
 * failover was interrupted). While running, the state *is* the current phase.
 *
 * FO-I1: fo_transition() is the only function that changes state; it refuses any
 *     event on a terminal failover (DM_E_CONFLICT) and any event that does not
 *     fit the current state (DM_E_INVALID), leaving the record untouched.
 * FO-I2: a phase that did not happen has duration_ms == FO_NULL, never 0.
 * FO-I3: total_time_ms is the time the failover's phases took plus the time the
 *     controller was down while it ran: the sum of the phases' durations, of the
 *     skipped runs' durations (a test-real's snapshot of the original) and
 *     controller_down_ms. It is FO_NULL while the failover is running.
 * FO-I5: every run of a phase (one per attempt, runs[]) keeps its own start,
 *     duration, outcome and attempt number; a phase's duration is the sum over
 *     its runs. runs[] holds at most FO_RUNS_MAX; a run past that is folded
 *     into the last one (sums stay right).
 * FO-I6: a real failover keeps one clock (fo_transition derives each event's
 *     time): a run ends at its start + duration_ms + down_ms, the next run
 *     starts there, and a resume (FO_EV_RESUME) or an interruption counts the
 *     time since the current run began as controller_down_ms. So its
 *     total_time_ms is finished_at_ms - started_at_ms, and runs + downtime sum
 *     to it exactly.
 * FO-I4: success is FO_NULL while running, 1 for completed, 0 for failed.
 * Callers persist the record after every transition, before acting on it. */
#ifndef DUMONT_CORE_FAILOVER_H
#define DUMONT_CORE_FAILOVER_H

#include "util/null.h"

#include <stddef.h>
#include <stdint.h>

/* The failover record's name for util/null.h's DM_NULL (durations, times, success). */
#define FO_NULL DM_NULL

typedef enum {
    FO_PHASE_DETECTION = 0,
    FO_PHASE_STANDBY_ACTIVATION,
    FO_PHASE_GPU_SEARCH,
    FO_PHASE_PROVISIONING,
    FO_PHASE_SSH_READY,
    FO_PHASE_RESTORE,
    FO_PHASE_INFERENCE,
    FO_PHASE_COUNT
} fo_phase;

/* Running states share the phase numbers; then the two terminal states. */
typedef enum {
    FO_STATE_COMPLETED = FO_PHASE_COUNT,
    FO_STATE_FAILED,
} fo_terminal_state;
typedef int fo_state; /* 0..FO_PHASE_COUNT-1: running in that phase; or a terminal state */

typedef enum {
    FO_PHASE_PENDING = 0, /* not reached (yet) */
    FO_PHASE_RUNNING,
    FO_PHASE_OK,
    FO_PHASE_FAILED,
    FO_PHASE_SKIPPED, /* did not happen (e.g. detection of a test-real) */
} fo_phase_status;

typedef enum { FO_KIND_SIMULATED = 0, FO_KIND_REAL, FO_KIND_COUNT } fo_kind;

typedef struct {
    fo_phase_status status;
    int64_t started_at_ms; /* wall clock; FO_NULL if not started */
    int64_t duration_ms;   /* FO_NULL unless finished (FO-I2) */
    int simulated;         /* duration drawn by the sim provider, not measured */
    char detail[256];      /* why it failed, or a note */
} fo_phase_rec;

/* One run of a phase (FO-I5): an attempt at it. */
#define FO_RUN_DETAIL_MAX 96
typedef struct {
    int phase;             /* fo_phase */
    int attempt;           /* 1, 2, ...: the failover's attempt it belongs to */
    fo_phase_status status; /* ok, failed (also: that attempt failed here) or skipped */
    int64_t started_at_ms;  /* wall clock (FO-I6 for real failovers) */
    int64_t duration_ms;    /* FO_NULL when unknown (an interruption) */
    char detail[FO_RUN_DETAIL_MAX];
} fo_phase_run;
#define FO_RUNS_MAX 24

#define FO_ID_MAX     48
#define FO_REASON_MAX 256

/* What a real failover (and a test-real) records beyond the phases: the
 * instances, the intent a restarted controller resumes from, and the fields
 * of the seed's FailoverTestEvent. Integers are FO_NULL when unknown. */
typedef struct {
    char workload_id[32];     /* "" for simulated failovers */
    int64_t new_instance_id;  /* intent: reserved before provisioning (db_fleet.h FLEET-F1) */
    char trigger[16];         /* "failed" | "preempting" | "crashlooping" | "test-real" | "" */
    int test;                 /* test-real: the original keeps serving */
    int keep;                 /* test-real keep=true: the test instance is kept */
    int attempts;             /* offers tried so far */
    int64_t epoch;            /* the workload epoch after fencing (FO_NULL before) */
    char excluded_hosts[256]; /* comma-separated hosts not to try again */
    char snapshot_id[72];
    int64_t snapshot_size_bytes;
    int64_t snapshot_creation_time_ms;
    char snapshot_compression[16]; /* "lz4" */
    char snapshot_storage[32];      /* the storage's name: backblaze_b2, cloudflare_r2, s3, file */
    char snapshot_storage_url[256]; /* the store's URL as configured (no secret) */
    int64_t restore_download_time_ms;
    int64_t restore_decompress_time_ms;
    char restore_source[8]; /* "primary" | "mirror" (PROV-PV4); "" before the restore */
    char inference_model[128];
    int64_t inference_ready_time_ms;
    int inference_success; /* FO_NULL, 0, 1 */
} fo_real;

typedef struct {
    char id[FO_ID_MAX];
    int64_t gpu_instance_id;
    fo_kind kind;
    char user_id[64];
    fo_state state;
    int success;                /* FO_NULL, 0 or 1 (FO-I4) */
    char reason[FO_REASON_MAX]; /* why it failed; empty otherwise */
    int64_t started_at_ms;      /* wall clock */
    int64_t finished_at_ms;     /* wall clock; FO_NULL while running */
    int64_t total_time_ms;      /* FO-I3 */
    int64_t controller_down_ms; /* FO-I6: time the controller could not act (crash, database) */
    int attempt;                /* the current attempt, from 1 (FO_EV_RETRY starts the next) */
    int64_t run_started_at_ms;  /* wall clock: when the current run began (FO-I6) */
    fo_phase_rec phases[FO_PHASE_COUNT];
    int n_runs;
    fo_phase_run runs[FO_RUNS_MAX]; /* FO-I5, in order */
    fo_real real; /* kind real only; zero/FO_NULL otherwise */
} fo_failover;

/* The mock GPU <-> CPU-standby association made by `failover test-setup`. */
typedef struct {
    int64_t gpu_instance_id;
    char standby_id[64];
    char provider[32]; /* "sim" */
    char gcp_zone[64];
    int64_t created_at_ms;
} fo_assoc;

typedef enum {
    FO_EV_PHASE_OK,     /* current phase finished after duration_ms */
    FO_EV_PHASE_FAILED, /* current phase failed after duration_ms (may be FO_NULL) */
    FO_EV_ABORT,        /* stopped from outside (shutdown, crash recovery) */
    FO_EV_PHASE_SKIP,   /* current phase does not happen (duration stays FO_NULL) */
    FO_EV_RETRY,        /* current attempt failed after duration_ms; go back to phase
                         * retry_phase (<= current, >= gpu_search) for another try.
                         * Durations accumulate: a phase run twice counts both runs. */
    FO_EV_RESUME,       /* a controller resumes the failover (after a crash or a stop):
                         * the time since the current run began was downtime (FO-I6);
                         * the phase runs again from now_ms */
} fo_event_kind;

typedef struct {
    fo_event_kind kind;
    int64_t now_ms;      /* wall clock of the event */
    int64_t duration_ms; /* for PHASE_OK (>= 0) / PHASE_FAILED (>= 0 or FO_NULL); SKIP: the
                          * time the skip took (>= 0, or FO_NULL: none) */
    int simulated;       /* the duration was simulated */
    const char *detail;  /* reason for FAILED/ABORT/RETRY; may be NULL */
    fo_phase retry_phase; /* FO_EV_RETRY only */
    int64_t down_ms; /* of this run, the time the controller could not act (>= 0), beside
                      * duration_ms (FO-I6) */
} fo_event;

const char *fo_phase_name(fo_phase p);
int fo_phase_parse(const char *s, fo_phase *ret);
const char *fo_state_name(fo_state s);
int fo_state_parse(const char *s, fo_state *ret);
const char *fo_phase_status_name(fo_phase_status s);
int fo_phase_status_parse(const char *s, fo_phase_status *ret);
const char *fo_kind_name(fo_kind k); /* "simulated" | "real" */
int fo_kind_parse(const char *s, fo_kind *ret);
int fo_state_is_terminal(fo_state s);

/* Starts a failover: state = detection, running since now_ms. id is copied. */
int fo_init(fo_failover *f, const char *id, int64_t gpu_instance_id, fo_kind kind, int64_t now_ms);
/* The one transition function (FO-I1). */
int fo_transition(fo_failover *f, const fo_event *ev);

#endif

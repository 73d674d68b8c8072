/* The orchestrator runs failovers in the background and persists every step.
 *
 * ORCH-O1: a failover is inserted (state detection) before simulate() returns its
 *     id, and every transition is saved before the next phase begins: a
 *     crash at any point leaves a record that names the phase it was in.
 * ORCH-O2: fo_orch_recover(), called at start, hands every failover left active
 *     by a previous process to its kind's resume hook (real ones resume, ORCH-O6)
 *     and turns the others (every simulated one, a real one that cannot be
 *     resumed) into `failed` ("interrupted"): none is ever shown running
 *     without a process running it.
 * ORCH-O3: at most FO_ORCH_MAX_RUNNING failovers run at once (DM_E_BUSY beyond),
 *     and at most one per GPU (db DB-D3 -> DM_E_CONFLICT).
 * ORCH-O4: fo_orch_shutdown() stops every runner, then returns. A simulated runner
 *     records its failover as failed ("server shutting down"); a real one
 *     stops between steps and leaves its failover active, for the next start
 *     to resume (ORCH-O6).
 * ORCH-O15: a runner whose wait was cancelled after fo_orch_stop_acting() (a
 *     server stopping) halts where it was saved; it never counts the
 *     cancellation as a failed attempt or a failed workload.
 * ORCH-O12: durable-state faults. Every save of a failover's record, and every
 *     write a runner's next action depends on, is retried while it fails
 *     with a storage fault (database down, disk full): the runner pauses,
 *     with backoff, and takes no next action until the write lands. A
 *     failover is never ended because of a save error, and the record in
 *     memory never runs ahead of the database (a transition is applied to a
 *     copy and kept only once saved). While any write is failing,
 *     fo_orch_storage_degraded() says so, with the reason. A runner stopped
 *     while its write fails leaves the record as last saved: the next start
 *     resumes (real) or ends (simulated, ORCH-O2) it from there.
 * ORCH-O14: the time a runner is paused by writes that do not land is its
 *     failover's downtime: recorded as controller_down_ms beside the phases,
 *     never counted in the phase it paused (core/failover.h FO-I6).
 * ORCH-O13: a launch (fo_orch_launch) that a killed server left half done - its
 *     workload still `launching` - is rolled back by fo_orch_recover(): its
 *     machines are destroyed (the provider's fence) and marked so, and the
 *     workload becomes `failed`; no workload stays `launching`, no machine is
 *     left listed without its processes. */
#ifndef DUMONT_FAILOVER_ORCHESTRATOR_H
#define DUMONT_FAILOVER_ORCHESTRATOR_H

#include "db/db.h"
#include "core/failover.h"
#include "snapshot/snapshot.h"

#include <stddef.h>
#include <stdint.h>

#define FO_ORCH_MAX_RUNNING 256

typedef struct fo_orch fo_orch;

typedef struct {
    double speed;   /* simulated seconds per wall second; <= 0: the default */
    int64_t seed;   /* FO_NULL: random */
    int fail_phase; /* FO_NULL: none; else the fo_phase that fails */
    char user_id[64]; /* the credential that asked (its name); "": "automatic" */
} fo_sim_opts;

/* Called after every persisted transition (and once when a failover starts)
 * with the record as saved, from the thread that made it; must be quick and
 * must not call back into the orchestrator. Lets the API stream live events
 * without the core depending on it. */
typedef void (*fo_observer_fn)(void *arg, const fo_failover *f);

void fo_sim_opts_init(fo_sim_opts *o);
/* Sets (fn != NULL) or clears the observer. Once it returns, the previous
 * observer is not running and is never called again. */
void fo_orch_set_observer(fo_orch *o, fo_observer_fn fn, void *arg);
int fo_orch_new(dm_db *db, double default_speed, fo_orch **ret);
/* ORCH-O12: 1 while some write of a runner is failing (reason: the first
 * failing write's error; since: wall clock when it began); else 0. */
int fo_orch_storage_degraded(fo_orch *o, char *reason, size_t reasonlen, int64_t *ret_since_ms);
/* ORCH-O2, ORCH-O13. *ret_count: how many were marked failed. */
int fo_orch_recover(fo_orch *o, int *ret_count, char *err, size_t errlen);
/* Starts a simulated failover of a GPU that has a test-setup association.
 * DM_E_NOT_FOUND (no association), DM_E_CONFLICT, DM_E_BUSY, DM_E_CANCELLED. */
int fo_orch_simulate(fo_orch *o, int64_t gpu_instance_id, const fo_sim_opts *opts, fo_failover *ret,
                     char *err, size_t errlen);
/* ---- Real failovers (issue 6; docs/failover.md) ----
 *
 * ORCH-O5: once fo_orch_attach() gave it a provider, its ports (liveness, probes,
 *     the detector's events: failover/ports.h) and a store, the orchestrator
 *     subscribes to instance state changes: a protected workload's serving
 *     instance that becomes `failed`, `preempting` or `crashlooping` starts
 *     a real failover (at most one per
 *     workload: its state failing_over, and DB-D3 on the old instance).
 * ORCH-O6: every step persists its intent before acting (the new instance id is
 *     reserved before the provider is asked; the epoch is bumped before the
 *     old instance is fenced), and every phase is idempotent, so
 *     fo_orch_recover() resumes real failovers where they stopped: exactly
 *     one new instance, never a lost old one.
 * ORCH-O7: the old instance is fenced (provider destroy, confirmed gone) before
 *     a new one is provisioned; a fenced instance's late snapshot is refused
 *     (db_fleet.h FLEET-F3).
 * ORCH-O8: a phase that fails on one offer destroys that offer's instance, excludes
 *     its host and retries from gpu_search, at most FO_ORCH_MAX_ATTEMPTS
 *     offers; then the failover fails with the last reason.
 * ORCH-O9: test-real never touches the original instance nor which instance
 *     serves; its test instance is destroyed at the end unless keep. */
#define FO_ORCH_MAX_ATTEMPTS 3

struct dm_provider;
struct fo_real_ports;

typedef struct {
    struct dm_provider *provider; /* borrowed */
    /* Liveness, probes and the detector's events (failover/ports.h); copied.
     * NULL: none (no instance is ever seen healthy, no failover is triggered). */
    const struct fo_real_ports *ports;
    const char *store_url;    /* where snapshots are (DUMONT_STORE) */
    const char *server_url;   /* the API URL agents use, e.g. http://127.0.0.1:8700 */
    const char *token;        /* the API token agents use (PROV-PV6) */
    const char *ca_file;      /* CA bundle agents trust for an https:// server_url; may be NULL */
    int64_t ready_timeout_ms; /* ssh_ready: wait for the new agent; <= 0: 60 s */
    int64_t inference_timeout_ms; /* inference: wait for the probe; <= 0: 120 s */
    /* The control channel (provider/channel.h); borrowed. ssh_ready waits for
     * the new agent to answer a ping over it. NULL: heartbeats alone. */
    struct prov_channel *channel;
    double budget_time_scale;     /* ORCH-R8: a test knob (DUMONT_FAILOVER_TIME_SCALE); < 1 is 1 */
} fo_real_env;

/* The failover budget's backoff (budget.c BUD-B2) after `beyond` failovers past
 * the budget in its window: min(1 min * 2^beyond, 30 min), divided by scale (>= 1). */
int64_t fo_budget_backoff_ms(int64_t beyond, double scale);

/* ORCH-O5. The strings are copied. Before this, real operations fail with
 * DM_E_UNAVAILABLE; a second attach fails with DM_E_CONFLICT. */
int fo_orch_attach(fo_orch *o, const fo_real_env *env, char *err, size_t errlen);

typedef struct {
    const char *name;           /* NULL: the workload id */
    const char *kind;           /* "gpu" (default) | "cpu" */
    const char *workload_cmd;   /* the command the instance runs */
    const char *probe_spec;     /* http:/exec:/ollama: (probe.h) */
    const char *model;          /* inference model (default: from an ollama: probe) */
    const char *workspace_from; /* a directory copied into the first workspace */
    int64_t heartbeat_ms;       /* <= 0: the default, 200 */
    int64_t snapshot_every_ms;  /* < 0: the default, 30000; 0: never */
    int protect;                /* default 1 */
    int min_vram_gb;
    double min_cuda, max_price_per_h;
    const char *region;
    int max_restarts_on_errors;   /* FLEET-W1: < 0 the default (FLEET_MAX_RESTARTS_DEFAULT) */
    const char *error_exit_codes; /* FLEET-W1: "1,2": the workload's own errors; NULL none */
    const char *host_check;       /* FLEET-W1: run by the agent when the workload gives up */
    int64_t max_failovers;      /* ORCH-R8 budget; <= 0: FLEET_BUDGET_MAX_DEFAULT (3) */
    int64_t failover_window_ms; /* its window; <= 0: FLEET_BUDGET_WINDOW_DEFAULT (30 min) */
} fo_launch_req;

typedef struct {
    char workload_id[32];
    int64_t instance_id;
    char workspace[4096];
    char address[64];
} fo_launch_result;

/* Creates a workload and its first instance: search, provision, wait until the
 * agent is healthy, start the workload (and, with workspace_from, takes a first
 * snapshot so there is always a restorable point). Synchronous. */
int fo_orch_launch(fo_orch *o, const fo_launch_req *req, fo_launch_result *ret, char *err,
                   size_t errlen);
/* Starts a real failover of the workload served by instance_id, as if it had
 * failed (trigger names why: "failed", "preempting", "crashlooping",
 * "manual"). DM_E_NOT_FOUND: it serves no workload. ret: the record as inserted. */
int fo_orch_failover_instance(fo_orch *o, int64_t instance_id, const char *trigger,
                              fo_failover *ret, char *err, size_t errlen);
/* The same, from the detector: detection_ms is how long the instance was
 * silent when it was declared failed (the detection phase's duration). */
int fo_orch_failover_detected(fo_orch *o, int64_t instance_id, const char *trigger,
                              int64_t detection_ms, fo_failover *ret, char *err, size_t errlen);
/* ORCH-O9. Starts a test-real in the background (id "real-..."). model NULL: the
 * workload's; else the probe asks the model server for that model. user_id: the
 * name of the credential that asked (NULL: "automatic"). */
int fo_orch_test_real(fo_orch *o, int64_t instance_id, const char *model, int keep,
                      const char *user_id, fo_failover *ret, char *err, size_t errlen);
/* A crash of the workload on an instance, as its agent reports it
 * (agent/wl_report.h). Strings borrowed for the call. */
typedef struct {
    int exit_code, signal; /* -1: none */
    int64_t ran_ms;
    int64_t restarts;
    int gave_up;      /* the agent restarts it no more (crashlooping) */
    int ever_healthy; /* it was healthy on this instance once */
    int host_fault;   /* the agent's host checks failed (only with gave_up) */
    const char *host_check, *output; /* the check's reason; the last lines written */
} fo_wl_exit;

/* ORCH-W1 to ORCH-W4 (docs/failover.md "Workload failures"): decides what a
 * crash loop is. verdict: "noted", "workload_failed", "failover",
 * "failover_attempt" or "ignored"; err: the reason. */
int fo_orch_workload_exit(fo_orch *o, int64_t instance_id, const fo_wl_exit *x, char *verdict,
                          size_t vlen, char *err, size_t errlen);
/* Chaos: preempt instance_id through its provider (provider.h preempt). */
int fo_orch_chaos_preempt(fo_orch *o, int64_t instance_id, int64_t notice_ms, char *err,
                          size_t errlen);
/* Destroys an instance the user no longer wants; a serving one stops its
 * workload's protection (state stopped) first, so no failover follows. */
int fo_orch_destroy_instance(fo_orch *o, int64_t instance_id, char *err, size_t errlen);

/* ---- The snapshot store is configuration (docs/security.md) ----
 *
 * ORCH-O10: snapshots live in the store the server was configured with
 *      (fo_orch_set_store: DUMONT_STORE, mirrored when DUMONT_STORE_MIRROR is
 *      set); every restore, launch and test-real snapshot opens that store
 *      and no other, whatever URL a record or a report holds.
 * ORCH-O11: a reported snapshot is accepted only when fo_orch_check_snapshot()
 *      read its manifest back from that store, whole (the object's SHA-256 is
 *      its id) and decodable; what the record says of it (size, files, time)
 *      is the manifest's, not the reporter's. The wait is bounded by the
 *      store's own limits (file://: a local read; s3://: its connect and
 *      stall timeouts and retries, docs/store.md). */
/* ORCH-O10. Copies url; opens the store once to learn its display form (a store
 * that cannot be opened now is still recorded: its failures surface where it
 * is used). Call before serving. */
int fo_orch_set_store(fo_orch *o, const char *url, char *err, size_t errlen);
/* The configured store's URL as set; "" when none. */
const char *fo_orch_store(const fo_orch *o);
/* 1 when name denotes the configured store: its URL as configured, or its
 * display form with or without the mirror's part ("file:///x (mirror ...)"). */
int fo_orch_store_is(const fo_orch *o, const char *name);
/* ORCH-O11. DM_E_UNAVAILABLE (no store configured, or it cannot be read now),
 * DM_E_NOT_FOUND (no such snapshot in it), DM_E_INVALID (not a snapshot id),
 * DM_E_PROTOCOL (its manifest is damaged). ret may be NULL. */
int fo_orch_check_snapshot(fo_orch *o, const char *snapshot_id, snap_info *ret, char *err,
                           size_t errlen);

/* ORCH-O4, first half: from now on runners take no next action (a call that
 * is then cancelled, e.g. by chan_shutdown, halts its runner: ORCH-O15); returns
 * at once. The server calls it before it cancels what runners wait on, so a
 * shutdown never reads as a failed restore or probe. */
void fo_orch_stop_acting(fo_orch *o);
/* ORCH-O4. Safe to call twice. */
void fo_orch_shutdown(fo_orch *o);
void fo_orch_free(fo_orch *o); /* shuts down first if needed */
/* How many failovers this controller is running now (simulated and real). */
int fo_orch_running(fo_orch *o);

#endif

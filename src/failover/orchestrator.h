/* The orchestrator runs failovers in the background and persists every step.
 *
 * O1: a failover is inserted (state detection) before simulate() returns its
 *     id, and every transition is saved before the next phase begins: a
 *     crash at any point leaves a record that names the phase it was in.
 * O2: fo_orch_recover(), called at start before serving, turns every failover
 *     left active by a previous process into `failed` ("interrupted"): none is
 *     ever shown running without a process running it.
 * O3: at most FO_ORCH_MAX_RUNNING failovers run at once (DM_E_BUSY beyond),
 *     and at most one per GPU (db D3 -> DM_E_CONFLICT).
 * O4: fo_orch_shutdown() stops every runner; each records its failover as
 *     failed ("server shutting down") before exiting, then it returns. */
#ifndef DUMONT_FAILOVER_ORCHESTRATOR_H
#define DUMONT_FAILOVER_ORCHESTRATOR_H

#include "db/db.h"
#include "failover/model.h"

#include <stddef.h>
#include <stdint.h>

#define FO_ORCH_MAX_RUNNING 256

typedef struct fo_orch fo_orch;

typedef struct {
    double speed;   /* simulated seconds per wall second; <= 0: the default */
    int64_t seed;   /* FO_NULL: random */
    int fail_phase; /* FO_NULL: none; else the fo_phase that fails */
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
/* O2. *ret_count: how many were marked failed. */
int fo_orch_recover(fo_orch *o, int *ret_count, char *err, size_t errlen);
/* Starts a simulated failover of a GPU that has a test-setup association.
 * DM_E_NOT_FOUND (no association), DM_E_CONFLICT, DM_E_BUSY, DM_E_CANCELLED. */
int fo_orch_simulate(fo_orch *o, int64_t gpu_instance_id, const fo_sim_opts *opts, fo_failover *ret,
                     char *err, size_t errlen);
/* O4. Safe to call twice. */
void fo_orch_shutdown(fo_orch *o);
void fo_orch_free(fo_orch *o); /* shuts down first if needed */

#endif

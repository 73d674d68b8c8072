/* Workloads, the machines providers made for them, and the snapshots agents
 * report, in the database (migration 3; docs/failover.md); their records are
 * core/fleet.h's. Same rules as db.h (DB-D1).
 *
 * FLEET-F1: db_machine_reserve() picks a new instance id (above every id known to
 *     instances and machines, at least FLEET_FIRST_ID) and inserts the
 *     machine row `provisioning` in one transaction: the intent is on disk
 *     before any provider is asked (a restarted controller finds it).
 * FLEET-F2: db_workload_switch() changes serving instance and epoch together, and
 *     only from the expected (instance, epoch) pair: a stale caller gets
 *     DM_E_CONFLICT and changes nothing.
 * FLEET-F3: db_snapshot_record() refuses (DM_E_CONFLICT, nothing written) a
 *     snapshot from a machine that is destroyed (fenced), or whose epoch (or
 *     the report's) is older than its workload's, or a report whose epoch is
 *     newer (only the current epoch is accepted): a fenced zombie's late
 *     snapshot never becomes restorable. A machine of the current epoch that
 *     does not serve yet (a failover's new instance) is accepted.
 *     Snapshots of instances no provider made (a hand-started agent) are
 *     recorded with no workload. Recording the same id twice is a no-op.
 * FLEET-F4: db_snapshot_latest_workload() is the newest restorable point: the
 *     snapshot of the workload's newest epoch that this database accepted
 *     last (its seq, DBSNAP-S4 of db_snapshot.c), never the one an agent's clock
 *     stamped latest; created_at_ms is kept for display. Lists are newest
 *     accepted first.
 * FLEET-F5: db_workload_cas_state() is a compare-and-set in the database: one
 *     UPDATE whose WHERE holds the expected state (and serving instance), its
 *     rows affected checked. A failover of a workload starts only by winning it
 *     (running -> failing_over for the instance that serves it), so two
 *     controllers, or two threads of one, cannot both start one; the loser gets
 *     DM_E_CONFLICT and writes nothing, never the workload's state. */
#ifndef DUMONT_DB_DB_FLEET_H
#define DUMONT_DB_DB_FLEET_H

#include "core/fleet.h"
#include "db/db.h"

#include <stddef.h>
#include <stdint.h>

#define FLEET_FIRST_ID 20001
#define FLEET_LIST_MAX 10000

int db_workload_insert(dm_db *db, const dm_workload *w, char *err, size_t errlen);
int db_workload_get(dm_db *db, const char *workload_id, dm_workload *ret, char *err, size_t errlen);
/* The workload the instance serves now; DM_E_NOT_FOUND when none. */
int db_workload_by_serving(dm_db *db, int64_t instance_id, dm_workload *ret, char *err,
                           size_t errlen);
int db_workload_list(dm_db *db, dm_workload **ret, size_t *ret_n, char *err, size_t errlen);
int db_workload_set_state(dm_db *db, const char *workload_id, dm_wl_state state, char *err,
                          size_t errlen);
/* FLEET-W1: records why the workload failed (its reason and last output);
 * set_failed: and makes it `failed`, in the same write. */
int db_workload_set_failure(dm_db *db, const char *workload_id, const char *failure,
                            int set_failed, char *err, size_t errlen);

/* FLEET-F5: state from -> to, only while the workload is in state from and (when
 * expect_serving is not DM_NULL) served by expect_serving. DM_E_CONFLICT (nothing
 * written) when it is not; DM_E_NOT_FOUND when there is no such workload. */
int db_workload_cas_state(dm_db *db, const char *workload_id, int64_t expect_serving,
                          dm_wl_state from, dm_wl_state to, char *err, size_t errlen);
/* The failover budget's state (failover real.c ORCH-R8): flapping_reason NULL or ""
 * clears flapping (since is then ignored); hold_until_ms DM_NULL: no hold. */
int db_workload_set_budget(dm_db *db, const char *workload_id, const char *flapping_reason,
                           int64_t flapping_since_ms, int64_t hold_until_ms, char *err,
                           size_t errlen);
/* FLEET-F2. new_instance_id may be DM_NULL (nobody serves). */
int db_workload_switch(dm_db *db, const char *workload_id, int64_t expect_instance_id,
                       int64_t expect_epoch, int64_t new_instance_id, int64_t new_epoch, char *err,
                       size_t errlen);

/* FLEET-F1: m->instance_id is set to the id chosen; m->state becomes provisioning. */
int db_machine_reserve(dm_db *db, dm_machine *m, char *err, size_t errlen);
/* Inserts or replaces every column of the row. */
int db_machine_put(dm_db *db, const dm_machine *m, char *err, size_t errlen);
int db_machine_get(dm_db *db, int64_t instance_id, dm_machine *ret, char *err, size_t errlen);
/* Every machine, or those of one workload (workload_id non-NULL), by id. */
int db_machine_list(dm_db *db, const char *workload_id, dm_machine **ret, size_t *ret_n, char *err,
                    size_t errlen);
/* DM_MACH_DESTROYED also sets destroyed_at_ms = now. */
int db_machine_set_state(dm_db *db, int64_t instance_id, dm_mach_state state, char *err,
                         size_t errlen);

int db_snapshot_record(dm_db *db, dm_snapshot *s, char *err, size_t errlen); /* FLEET-F3 */
int db_snapshot_get(dm_db *db, const char *snapshot_id, dm_snapshot *ret, char *err, size_t errlen);
int db_snapshot_latest_workload(dm_db *db, const char *workload_id, dm_snapshot *ret, char *err,
                                size_t errlen); /* FLEET-F4; DM_E_NOT_FOUND */
/* FLEET-F4 within one store: the newest snapshot of the workload recorded in
 * store_url (the server's configured store, orchestrator.h ORCH-O10). */
int db_snapshot_latest_in_store(dm_db *db, const char *workload_id, const char *store_url,
                                dm_snapshot *ret, char *err, size_t errlen); /* DM_E_NOT_FOUND */
int db_snapshot_latest_instance(dm_db *db, int64_t instance_id, dm_snapshot *ret, char *err,
                                size_t errlen); /* DM_E_NOT_FOUND */
/* Newest first, at most limit (<= FLEET_LIST_MAX); instance_id DM_NULL: all. */
int db_snapshot_list(dm_db *db, int64_t instance_id, int limit, dm_snapshot **ret, size_t *ret_n,
                     char *err, size_t errlen);

#endif

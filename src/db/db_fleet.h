/* Workloads, the machines providers made for them, and the snapshots agents
 * report (migration 3; docs/failover.md). Same rules as db.h (D1).
 *
 * A workload is what the user protects: a command, a probe, a workspace. One
 * instance serves it at a time (serving_instance_id); a failover moves it to
 * a new instance and bumps its epoch.
 *
 * F1: db_machine_reserve() picks a new instance id (above every id known to
 *     instances and machines, at least FLEET_FIRST_ID) and inserts the
 *     machine row `provisioning` in one transaction: the intent is on disk
 *     before any provider is asked (a restarted controller finds it).
 * F2: db_workload_switch() changes serving instance and epoch together, and
 *     only from the expected (instance, epoch) pair: a stale caller gets
 *     DM_E_CONFLICT and changes nothing.
 * F3: db_snapshot_record() refuses (DM_E_CONFLICT, nothing written) a
 *     snapshot from a machine that is destroyed (fenced), or whose epoch (or
 *     the report's) is older than its workload's, or a report whose epoch is
 *     newer (only the current epoch is accepted): a fenced zombie's late
 *     snapshot never becomes restorable. A machine of the current epoch that
 *     does not serve yet (a failover's new instance) is accepted.
 *     Snapshots of instances no provider made (a hand-started agent) are
 *     recorded with no workload. Recording the same id twice is a no-op.
 * F4: db_snapshot_latest_workload() is the newest restorable point: the
 *     newest snapshot of the workload (created_at_ms, then reported_at_ms). */
#ifndef DUMONT_DB_DB_FLEET_H
#define DUMONT_DB_DB_FLEET_H

#include "db/db.h"

#include <limits.h>
#include <stddef.h>
#include <stdint.h>

#define FLEET_FIRST_ID    20001
#define FLEET_LIST_MAX    10000
#define FLEET_WL_ID_MAX   32
#define FLEET_TEXT_MAX    256
#define FLEET_SNAP_ID_MAX 72

typedef struct {
    char workload_id[FLEET_WL_ID_MAX]; /* "wl-" + 12 hex */
    char name[64];
    char workload_cmd[FLEET_TEXT_MAX]; /* "" none */
    char probe_spec[FLEET_TEXT_MAX];   /* "" none */
    char model[128];                   /* the inference model ("" none) */
    char workspace_from[PATH_MAX];     /* "" none */
    int64_t heartbeat_ms, snapshot_every_ms;
    char requirements[512];      /* JSON: {"min_vram_gb":N,"min_cuda":X,"region":S,"max_price":X} */
    int protect;                 /* 1: fail over automatically */
    int64_t serving_instance_id; /* FO_NULL: none */
    int64_t epoch;
    char state[16]; /* "running" | "failing_over" | "failed" | "stopped" */
    int64_t created_at_ms;
} db_workload;

typedef struct {
    int64_t instance_id;
    char workload_id[FLEET_WL_ID_MAX]; /* "" none */
    char provider[16];
    char offer_id[64], host[64], gpu_name[64];
    int64_t price_milli; /* USD/h * 1000; FO_NULL unknown */
    char workspace[PATH_MAX];
    char address[64];
    int64_t epoch;
    char state[16];              /* "provisioning" | "running" | "destroyed" */
    int test;                    /* made by test-real */
    char failover_id[FO_ID_MAX]; /* the failover that made it; "" none */
    int64_t created_at_ms;
    int64_t destroyed_at_ms; /* FO_NULL while it exists */
} db_machine;

typedef struct {
    char snapshot_id[FLEET_SNAP_ID_MAX];
    int64_t instance_id;
    char workload_id[FLEET_WL_ID_MAX]; /* filled by db_snapshot_record from the machine */
    int64_t epoch;
    char store_url[FLEET_TEXT_MAX];
    int64_t size_bytes, stored_bytes, files;
    int64_t created_at_ms;    /* wall, when the snapshot began */
    int64_t creation_time_ms; /* how long it took */
    int64_t reported_at_ms;
    char trigger[16]; /* "scheduled" | "preempt" | "test-real" | "launch" | "manual" */
} db_snapshot;

int db_workload_insert(dm_db *db, const db_workload *w, char *err, size_t errlen);
int db_workload_get(dm_db *db, const char *workload_id, db_workload *ret, char *err, size_t errlen);
/* The workload the instance serves now; DM_E_NOT_FOUND when none. */
int db_workload_by_serving(dm_db *db, int64_t instance_id, db_workload *ret, char *err,
                           size_t errlen);
int db_workload_list(dm_db *db, db_workload **ret, size_t *ret_n, char *err, size_t errlen);
int db_workload_set_state(dm_db *db, const char *workload_id, const char *state, char *err,
                          size_t errlen);
/* F2. new_instance_id may be FO_NULL (nobody serves). */
int db_workload_switch(dm_db *db, const char *workload_id, int64_t expect_instance_id,
                       int64_t expect_epoch, int64_t new_instance_id, int64_t new_epoch, char *err,
                       size_t errlen);

/* F1: m->instance_id is set to the id chosen; m->state becomes provisioning. */
int db_machine_reserve(dm_db *db, db_machine *m, char *err, size_t errlen);
/* Inserts or replaces every column of the row. */
int db_machine_put(dm_db *db, const db_machine *m, char *err, size_t errlen);
int db_machine_get(dm_db *db, int64_t instance_id, db_machine *ret, char *err, size_t errlen);
/* Every machine, or those of one workload (workload_id non-NULL), by id. */
int db_machine_list(dm_db *db, const char *workload_id, db_machine **ret, size_t *ret_n, char *err,
                    size_t errlen);
/* state "destroyed" also sets destroyed_at_ms = now. */
int db_machine_set_state(dm_db *db, int64_t instance_id, const char *state, char *err,
                         size_t errlen);

int db_snapshot_record(dm_db *db, db_snapshot *s, char *err, size_t errlen); /* F3 */
int db_snapshot_get(dm_db *db, const char *snapshot_id, db_snapshot *ret, char *err, size_t errlen);
int db_snapshot_latest_workload(dm_db *db, const char *workload_id, db_snapshot *ret, char *err,
                                size_t errlen); /* F4; DM_E_NOT_FOUND */
/* F4 within one store: the newest snapshot of the workload recorded in
 * store_url (the server's configured store, orchestrator.h O10). */
int db_snapshot_latest_in_store(dm_db *db, const char *workload_id, const char *store_url,
                                db_snapshot *ret, char *err, size_t errlen); /* DM_E_NOT_FOUND */
int db_snapshot_latest_instance(dm_db *db, int64_t instance_id, db_snapshot *ret, char *err,
                                size_t errlen); /* DM_E_NOT_FOUND */
/* Newest first, at most limit (<= FLEET_LIST_MAX); instance_id FO_NULL: all. */
int db_snapshot_list(dm_db *db, int64_t instance_id, int limit, db_snapshot **ret, size_t *ret_n,
                     char *err, size_t errlen);

#endif

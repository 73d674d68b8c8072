/* Instances (machines running `dumont agent`) and their state changes, in
 * the database (migration 2); their records are core/instance.h's. Same
 * rules as db.h (DB-D1: one mutex per call).
 *
 * DB-I1: an instance's key is never stored: only its key id, from which the
 *     server derives the key with its master secret (heartbeat.h HB-W4). A
 *     stolen database does not let anyone sign heartbeats.
 * DB-I2: db_instance_record() writes the instance's new state and the event
 *     that explains it in one transaction: the events table is the exact
 *     history of the state column.
 * DB-I3: lists are capped (DB_INSTANCE_LIST_MAX instances, DB_EVENT_LIST_MAX
 *     events); a list of instances that would be longer is DM_E_TOO_BIG.
 * DB-I4: an instance whose machine is destroyed (fenced, db_fleet.h) is fenced for
 *     good: db_instance_register() refuses it (DM_E_CONFLICT, nothing written), in
 *     the same transaction that would register it, and get/list set its
 *     `fenced`, so a listener started later refuses its heartbeats too. */
#ifndef DUMONT_DB_DB_INSTANCE_H
#define DUMONT_DB_DB_INSTANCE_H

#include "core/instance.h"
#include "db/db.h"

#include <stddef.h>
#include <stdint.h>

#define DB_INSTANCE_LIST_MAX 10000
#define DB_EVENT_LIST_MAX    1000

/* Inserts, or re-registers (new key id, kind, texts; state back to
 * "pending" with an event recording it), in one transaction; DB-I4. */
int db_instance_register(dm_db *db, const dm_instance *in, char *err, size_t errlen);
int db_instance_get(dm_db *db, int64_t id, dm_instance *ret, char *err, size_t errlen);
/* All instances by id; *ret malloc'd (free()), NULL when none (DB-I3). */
int db_instance_list(dm_db *db, dm_instance **ret, size_t *ret_n, char *err, size_t errlen);
/* DB-I2. For what == "state" the instance's state, state_since and
 * workload/probe/last_heartbeat columns are set; for "workload" and
 * "intake" only the latter. DM_E_NOT_FOUND for an unknown instance (nothing written). */
int db_instance_record(dm_db *db, const dm_instance_event *ev, const char *workload,
                       const char *probe, int64_t last_heartbeat_ms, char *err, size_t errlen);
/* The newest `limit` (<= DB_EVENT_LIST_MAX) events of one instance, newest
 * first; *ret malloc'd, NULL when none. */
int db_instance_events(dm_db *db, int64_t id, int limit, dm_instance_event **ret, size_t *ret_n,
                       char *err, size_t errlen);

/* The listener's persistence (core/instance.h) over db: load is
 * db_instance_list, register_one db_instance_register, record
 * db_instance_record. db must outlive every use. */
dm_instance_persist db_instance_persist(dm_db *db);

#endif

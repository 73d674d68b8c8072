/* Instances (machines running `dumont agent`) and their state changes, in
 * the database (migration 2). Same rules as db.h (D1: one mutex per call).
 *
 * I1: an instance's key is never stored: only its key id, from which the
 *     server derives the key with its master secret (heartbeat.h W4). A
 *     stolen database does not let anyone sign heartbeats.
 * I2: db_instance_record() writes the instance's new state and the event
 *     that explains it in one transaction: the events table is the exact
 *     history of the state column.
 * I3: lists are capped (DB_INSTANCE_LIST_MAX instances, DB_EVENT_LIST_MAX
 *     events); a list of instances that would be longer is DM_E_TOO_BIG. */
#ifndef DUMONT_DB_DB_INSTANCE_H
#define DUMONT_DB_DB_INSTANCE_H

#include "db/db.h"

#include <stddef.h>
#include <stdint.h>

#define DB_INSTANCE_LIST_MAX 10000
#define DB_EVENT_LIST_MAX    1000
#define DB_INST_TEXT_MAX     256

typedef struct {
    int64_t instance_id;
    char kind[16];                       /* "gpu" | "cpu" */
    char key_id[64];                     /* I1 */
    char state[16];                      /* det_state name */
    int64_t state_since_ms;              /* wall */
    int64_t registered_at_ms;            /* wall */
    int64_t last_heartbeat_ms;           /* wall; FO_NULL: none recorded */
    char workload[16];                   /* hb_workload name at the last change */
    char probe[16];                      /* hb_probe name at the last change */
    char workload_cmd[DB_INST_TEXT_MAX]; /* as registered; "" none */
    char probe_spec[DB_INST_TEXT_MAX];   /* as registered; "" none */
    char hostname[128];
} db_instance;

typedef struct {
    int64_t instance_id;
    int64_t at_ms;         /* wall */
    char what[16];         /* "state" | "workload" | "intake" (listener.h L9) */
    char from[16], to[16]; /* state (or workload state) names */
    char reason[32];
    int64_t silent_ms; /* FO_NULL when not applicable */
    int64_t phi_milli; /* phi * 1000; FO_NULL when not applicable */
} db_instance_event;

/* Inserts, or re-registers (new key id, kind, texts; state back to
 * "pending" with an event recording it), in one transaction. */
int db_instance_register(dm_db *db, const db_instance *in, char *err, size_t errlen);
int db_instance_get(dm_db *db, int64_t id, db_instance *ret, char *err, size_t errlen);
/* All instances by id; *ret malloc'd (free()), NULL when none (I3). */
int db_instance_list(dm_db *db, db_instance **ret, size_t *ret_n, char *err, size_t errlen);
/* I2. For what == "state" the instance's state, state_since and
 * workload/probe/last_heartbeat columns are set; for "workload" and
 * "intake" only the latter. DM_E_NOT_FOUND for an unknown instance (nothing written). */
int db_instance_record(dm_db *db, const db_instance_event *ev, const char *workload,
                       const char *probe, int64_t last_heartbeat_ms, char *err, size_t errlen);
/* The newest `limit` (<= DB_EVENT_LIST_MAX) events of one instance, newest
 * first; *ret malloc'd, NULL when none. */
int db_instance_events(dm_db *db, int64_t id, int limit, db_instance_event **ret, size_t *ret_n,
                       char *err, size_t errlen);

#endif

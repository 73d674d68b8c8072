/* The database: one interface, two back ends (SQLite, PostgreSQL).
 *
 * db_open() picks the back end from the URL: "postgresql://..." or
 * "postgres://..." selects PostgreSQL (libpq); anything else is a SQLite file
 * path (an optional "sqlite://" prefix is stripped). The schema is applied by
 * versioned migrations at open (table schema_migrations).
 *
 * Every query is written once, in the SQL both back ends accept, against a
 * small back-end vtable (db_backend.h); the back ends only execute statements.
 *
 * DB-D1: a dm_db is safe to use from several threads: calls are serialised by
 *     a mutex held for the whole call (and so for its whole transaction).
 * DB-D2: db_failover_save() writes the failover row and all its phase rows in
 *     one transaction: a reader never sees half a transition.
 * DB-D3: at most one failover per GPU instance is active (non-terminal): a unique
 *     partial index enforces it, and db_failover_insert() returns
 *     DM_E_CONFLICT when it would be broken (or when the id exists).
 * DB-D4: failovers.<phase>_ms columns mirror failover_phases.duration_ms
 *     (written together, DB-D2) so that the report is a single scan of one table.
 * DB-D5: one controller per database (docs/security.md "One controller"):
 *     db_ctl_lock_take() takes a lock that a second taker is refused
 *     (DM_E_BUSY, err naming the holder's host, pid and since) until the
 *     first one's process or session ends: PostgreSQL, a session-level
 *     advisory lock held on a connection of its own, its holder named in
 *     the table controller_lock (migration 7); SQLite, an flock on the file
 *     "<database>.lock" beside it (util/lockfile.h). Readers need no lock.
 * DB-D6: db_fence() is for a controller that lost its lock: from then on
 *     every statement of that handle fails as a storage fault (DM_E_DB),
 *     so nothing it still runs writes a decision, and runners pause (ORCH-O12 of
 *     failover/orchestrator.h) instead of taking their next action.
 * DB-D7: a controller whose PostgreSQL lock session ended takes the lock back
 *     (db_ctl_lock_retake) and lifts the fence (db_unfence) only when no other
 *     controller held the database meanwhile: what it knows is still the
 *     state, and its paused decisions go on.
 * All functions return 0 or a negative DM_E_* / -errno; err gets detail. */
#ifndef DUMONT_DB_DB_H
#define DUMONT_DB_DB_H

#include "core/failover.h"
#include "core/report.h"

#include <stddef.h>
#include <stdint.h>

typedef struct dm_db dm_db;

int db_open(const char *url, dm_db **ret, char *err, size_t errlen);
void db_close(dm_db *db);
const char *db_backend_name(const dm_db *db); /* "sqlite" | "postgresql" */
int db_schema_version(dm_db *db, int *ret, char *err, size_t errlen);

/* Associations (failover test-setup). put inserts or replaces. */
int db_assoc_put(dm_db *db, const fo_assoc *a, char *err, size_t errlen);
int db_assoc_get(dm_db *db, int64_t gpu_instance_id, fo_assoc *ret, char *err, size_t errlen);

/* Failovers. */
int db_failover_insert(dm_db *db, const fo_failover *f, char *err, size_t errlen); /* DB-D3 */
/* Many at once, in one transaction (bulk loads, benchmarks). */
int db_failover_insert_many(dm_db *db, const fo_failover *f, size_t n, char *err, size_t errlen);
int db_failover_save(dm_db *db, const fo_failover *f, char *err, size_t errlen); /* DB-D2 */
int db_failover_get(dm_db *db, const char *id, fo_failover *ret, char *err, size_t errlen);

typedef struct {
    int64_t gpu_instance_id; /* FO_NULL: any */
    int kind;                /* FO_NULL: any; else fo_kind */
    int active_only;         /* only non-terminal failovers */
    int test;                /* FO_NULL: any; 1: test-real only; 0: no test-real */
    char workload_id[32];    /* "": any */
    int64_t since_ms;        /* FO_NULL: no bound; started_at_ms >= since_ms */
    int64_t until_ms;        /* FO_NULL: no bound; started_at_ms <  until_ms */
    int64_t limit;           /* <= 0: no limit */
    int64_t offset;
} db_failover_filter;

void db_failover_filter_init(db_failover_filter *flt); /* everything, no limit */
/* The most failovers one db_failover_list() returns: when the filter would
 * return more (no limit, or a larger one), it fails with DM_E_TOO_BIG. */
#define DB_LIST_MAX 10000
/* Newest first (started_at_ms desc, id desc), each with its phases. *ret is
 * malloc'd (free()); with no match, *ret is NULL and *ret_n 0. */
int db_failover_list(dm_db *db, const db_failover_filter *flt, fo_failover **ret, size_t *ret_n,
                     char *err, size_t errlen);
int db_failover_count(dm_db *db, const db_failover_filter *flt, int64_t *ret, char *err,
                      size_t errlen);

/* The report over failovers matching flt (gpu/kind/since/until; limit ignored). */
int db_report(dm_db *db, const db_failover_filter *flt, fo_report *ret, char *err, size_t errlen);

/* DB-D5. */
typedef struct db_ctl_lock db_ctl_lock;
int db_ctl_lock_take(dm_db *db, db_ctl_lock **ret, char *err, size_t errlen);
/* 0 while held; else the lock is lost (DM_E_CONFLICT, err says why). Any
 * thread; it does not wait for the handle's other calls. */
int db_ctl_lock_check(db_ctl_lock *l, char *err, size_t errlen);
void db_ctl_lock_release(db_ctl_lock *l); /* accepts NULL */
void db_fence(dm_db *db);                 /* DB-D6 */
/* DB-D7: takes a lost lock back (PostgreSQL: a restarted server, a terminated
 * session): 0 when this holder has it again and no other controller held it
 * meanwhile; DM_E_BUSY another holds it now (err names it); DM_E_CONFLICT
 * another held it meanwhile, or the back end cannot take a lock back;
 * DM_E_DB the database cannot be reached yet (try again). */
int db_ctl_lock_retake(db_ctl_lock *l, char *err, size_t errlen);
/* DB-D7: lifts db_fence() once the lock is held again. */
void db_unfence(dm_db *db);

/* url with any password removed, for messages: "postgresql://user@host:5432/db"
 * (the query, which may hold one, becomes "?..."). A path is copied as is. */
void db_url_redact(const char *url, char *out, size_t outlen);

#endif

/* Versioned schema migrations, applied by db_open().
 *
 * A migration is a numbered list of statements, each accepted by SQLite and
 * PostgreSQL alike. schema_migrations records the versions applied. To change
 * the schema, append a migration; never edit one that has shipped.
 *
 * M1: each migration runs in its own transaction together with the row that
 *     records it: it is applied completely, once, or not at all.
 * M2: the transaction is DB_TX_MIGRATE (B5 of db_backend.h): two processes
 *     opening the same database at once queue on a lock taken *before* the
 *     version is read, so the second one finds the work done.
 * M3: a database whose version is newer than this program knows is refused,
 *     not written to: an older binary must not misread a newer schema. */
#include "db/db_internal.h"

#include "util/clock.h"
#include "util/error.h"

#include <stdio.h>

typedef struct {
    int version;
    const char *const *sql; /* NULL-terminated */
} migration;

static const char *const m1_sql[] = {
    "CREATE TABLE associations ("
    " gpu_instance_id BIGINT PRIMARY KEY,"
    " standby_id TEXT NOT NULL,"
    " provider TEXT NOT NULL,"
    " gcp_zone TEXT,"
    " created_at_ms BIGINT NOT NULL)",

    "CREATE TABLE failovers ("
    " failover_id TEXT PRIMARY KEY,"
    " gpu_instance_id BIGINT NOT NULL,"
    " kind TEXT NOT NULL,"
    " user_id TEXT,"
    " state TEXT NOT NULL,"
    " success BIGINT,"
    " reason TEXT,"
    " started_at_ms BIGINT NOT NULL,"
    " finished_at_ms BIGINT,"
    " total_time_ms BIGINT,"
    " detection_ms BIGINT,"
    " standby_activation_ms BIGINT,"
    " gpu_search_ms BIGINT,"
    " provisioning_ms BIGINT,"
    " ssh_ready_ms BIGINT,"
    " restore_ms BIGINT,"
    " inference_ms BIGINT)",

    "CREATE TABLE failover_phases ("
    " failover_id TEXT NOT NULL REFERENCES failovers ON DELETE CASCADE,"
    " phase TEXT NOT NULL,"
    " seq BIGINT NOT NULL,"
    " status TEXT NOT NULL,"
    " started_at_ms BIGINT,"
    " duration_ms BIGINT,"
    " simulated BIGINT NOT NULL,"
    " detail TEXT,"
    " PRIMARY KEY (failover_id, phase))",

    "CREATE INDEX failovers_started ON failovers (started_at_ms DESC, failover_id DESC)",
    "CREATE INDEX failovers_gpu ON failovers (gpu_instance_id)",
    /* D3: one active failover per GPU. */
    "CREATE UNIQUE INDEX failovers_one_active ON failovers (gpu_instance_id)"
    " WHERE state NOT IN ('completed', 'failed')",
    NULL,
};

/* Instances and their state changes (src/db/db_instance.h, docs/detect.md).
 * No key column: keys are derived, never stored (I1 of db_instance.h). */
static const char *const m2_sql[] = {
    "CREATE TABLE instances ("
    " instance_id BIGINT PRIMARY KEY,"
    " kind TEXT NOT NULL,"
    " key_id TEXT NOT NULL,"
    " state TEXT NOT NULL,"
    " state_since_ms BIGINT NOT NULL,"
    " registered_at_ms BIGINT NOT NULL,"
    " last_heartbeat_ms BIGINT,"
    " workload TEXT,"
    " probe TEXT,"
    " workload_cmd TEXT,"
    " probe_spec TEXT,"
    " hostname TEXT)",

    "CREATE TABLE instance_events ("
    " instance_id BIGINT NOT NULL REFERENCES instances ON DELETE CASCADE,"
    " event_seq BIGINT NOT NULL,"
    " at_ms BIGINT NOT NULL,"
    " what TEXT NOT NULL,"
    " from_state TEXT NOT NULL,"
    " to_state TEXT NOT NULL,"
    " reason TEXT NOT NULL,"
    " silent_ms BIGINT,"
    " phi_milli BIGINT,"
    " PRIMARY KEY (instance_id, event_seq))",
    NULL,
};

static const migration migrations[] = {
    {1, m1_sql},
    {2, m2_sql},
};

#define N_MIGRATIONS ((int)(sizeof migrations / sizeof migrations[0]))

int db_migrate_latest(void)
{
    return migrations[N_MIGRATIONS - 1].version;
}

static int version_row(const db_row *r, void *ctx)
{
    *(int64_t *)ctx = db_row_i64(r, 0, NULL);
    return 0;
}

static int read_version(dm_db *db, int64_t *ret, char *err, size_t errlen)
{
    *ret = 0;
    return db_x(db, "SELECT COALESCE(MAX(version), 0) FROM schema_migrations", NULL, 0, version_row,
                ret, NULL, err, errlen);
}

/* One migration, inside its DB_TX_MIGRATE transaction (M1, M2). */
static int apply_one(dm_db *db, const migration *m, char *err, size_t errlen)
{
    int64_t have = 0;
    int rc = db_x(db,
                  "CREATE TABLE IF NOT EXISTS schema_migrations ("
                  " version BIGINT PRIMARY KEY, applied_at_ms BIGINT NOT NULL)",
                  NULL, 0, NULL, NULL, NULL, err, errlen);
    if (rc || (rc = read_version(db, &have, err, errlen)) != 0)
        return rc;
    if (have > db_migrate_latest()) /* M3 */
        return dm_fail(err, errlen, DM_E_DB,
                       "database schema version %lld is newer than this program's (%d)",
                       (long long)have, db_migrate_latest());
    if (have >= m->version)
        return 0;
    for (const char *const *s = m->sql; *s; s++)
        if ((rc = db_x(db, *s, NULL, 0, NULL, NULL, NULL, err, errlen)) != 0)
            return rc;
    db_param p[] = {db_p_i64(m->version), db_p_i64(clock_wall_ms())};
    return db_x(db, "INSERT INTO schema_migrations (version, applied_at_ms) VALUES ($1, $2)", p, 2,
                NULL, NULL, NULL, err, errlen);
}

int db_migrate(dm_db *db, char *err, size_t errlen)
{
    char detail[512] = "";
    for (int i = 0; i < N_MIGRATIONS; i++) {
        int rc = db_begin(db, DB_TX_MIGRATE, detail, sizeof detail);
        if (rc == 0)
            rc = db_end(db, apply_one(db, &migrations[i], detail, sizeof detail), detail,
                        sizeof detail);
        if (rc)
            return dm_fail(err, errlen, rc, "migration %d: %s", migrations[i].version, detail);
    }
    return 0;
}

int db_schema_version(dm_db *db, int *ret, char *err, size_t errlen)
{
    if (!db || !ret)
        return dm_fail(err, errlen, DM_E_INVALID, "no database or result");
    int64_t v = 0;
    pthread_mutex_lock(&db->lock);
    int rc = read_version(db, &v, err, errlen);
    pthread_mutex_unlock(&db->lock);
    if (rc == 0)
        *ret = (int)v;
    return rc;
}

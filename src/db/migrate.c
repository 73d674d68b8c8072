/* Versioned schema migrations, applied by db_open().
 *
 * A migration is a numbered list of statements, each accepted by SQLite and
 * PostgreSQL alike. schema_migrations records the versions applied. To change
 * the schema, append a migration; never edit one that has shipped.
 *
 * DB-M1: each migration runs in its own transaction together with the row that
 *     records it: it is applied completely, once, or not at all.
 * DB-M2: the transaction is DB_TX_MIGRATE (DB-B5 of db_backend.h): two processes
 *     opening the same database at once queue on a lock taken *before* the
 *     version is read, so the second one finds the work done.
 * DB-M3: a database whose version is newer than this program knows is refused,
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
    /* DB-D3: one active failover per GPU. */
    "CREATE UNIQUE INDEX failovers_one_active ON failovers (gpu_instance_id)"
    " WHERE state NOT IN ('completed', 'failed')",
    NULL,
};

/* Instances and their state changes (src/db/db_instance.h, docs/detect.md).
 * No key column: keys are derived, never stored (DB-I1 of db_instance.h). */
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

/* Issue 6: protected workloads, the instances providers made for them, the
 * snapshots agents report, and what a real failover records (src/db/db_fleet.h,
 * docs/failover.md). One column per ALTER: SQLite adds one at a time. */
static const char *const m3_sql[] = {
    "CREATE TABLE workloads ("
    " workload_id TEXT PRIMARY KEY,"
    " name TEXT NOT NULL,"
    " workload_cmd TEXT,"
    " probe_spec TEXT,"
    " model TEXT,"
    " workspace_from TEXT,"
    " heartbeat_ms BIGINT NOT NULL,"
    " snapshot_every_ms BIGINT NOT NULL,"
    " requirements TEXT NOT NULL,"
    " protected BIGINT NOT NULL,"
    " serving_instance_id BIGINT,"
    " epoch BIGINT NOT NULL,"
    " state TEXT NOT NULL,"
    " created_at_ms BIGINT NOT NULL)",

    "CREATE TABLE machines ("
    " instance_id BIGINT PRIMARY KEY,"
    " workload_id TEXT,"
    " provider TEXT NOT NULL,"
    " offer_id TEXT,"
    " host TEXT,"
    " gpu_name TEXT,"
    " price_milli BIGINT,"
    " workspace TEXT,"
    " address TEXT,"
    " epoch BIGINT NOT NULL,"
    " state TEXT NOT NULL,"
    " test BIGINT NOT NULL,"
    " failover_id TEXT,"
    " created_at_ms BIGINT NOT NULL,"
    " destroyed_at_ms BIGINT)",
    "CREATE INDEX machines_workload ON machines (workload_id)",

    "CREATE TABLE snapshots ("
    " snapshot_id TEXT PRIMARY KEY,"
    " instance_id BIGINT NOT NULL,"
    " workload_id TEXT,"
    " epoch BIGINT NOT NULL,"
    " store_url TEXT NOT NULL,"
    " size_bytes BIGINT NOT NULL,"
    " stored_bytes BIGINT NOT NULL,"
    " files BIGINT NOT NULL,"
    " created_at_ms BIGINT NOT NULL,"
    " creation_time_ms BIGINT NOT NULL,"
    " reported_at_ms BIGINT NOT NULL,"
    " trigger_kind TEXT NOT NULL)",
    "CREATE INDEX snapshots_instance ON snapshots (instance_id, created_at_ms DESC)",
    "CREATE INDEX snapshots_workload ON snapshots (workload_id, created_at_ms DESC)",

    "ALTER TABLE failovers ADD COLUMN workload_id TEXT",
    "ALTER TABLE failovers ADD COLUMN new_instance_id BIGINT",
    "ALTER TABLE failovers ADD COLUMN trigger_kind TEXT",
    "ALTER TABLE failovers ADD COLUMN test BIGINT",
    "ALTER TABLE failovers ADD COLUMN keep_instance BIGINT",
    "ALTER TABLE failovers ADD COLUMN attempts BIGINT",
    "ALTER TABLE failovers ADD COLUMN epoch BIGINT",
    "ALTER TABLE failovers ADD COLUMN excluded_hosts TEXT",
    "ALTER TABLE failovers ADD COLUMN snapshot_id TEXT",
    "ALTER TABLE failovers ADD COLUMN snapshot_size_bytes BIGINT",
    "ALTER TABLE failovers ADD COLUMN snapshot_creation_time_ms BIGINT",
    "ALTER TABLE failovers ADD COLUMN snapshot_compression TEXT",
    "ALTER TABLE failovers ADD COLUMN snapshot_storage TEXT",
    "ALTER TABLE failovers ADD COLUMN restore_download_time_ms BIGINT",
    "ALTER TABLE failovers ADD COLUMN restore_decompress_time_ms BIGINT",
    "ALTER TABLE failovers ADD COLUMN inference_model TEXT",
    "ALTER TABLE failovers ADD COLUMN inference_ready_time_ms BIGINT",
    "ALTER TABLE failovers ADD COLUMN inference_success BIGINT",
    NULL,
};

/* Issue 13: API credentials (src/db/db_token.h). Only the hash of a token is
 * kept (DB-T1); the admin token stays in $DUMONT_HOME/token. */
static const char *const m4_sql[] = {
    "CREATE TABLE api_tokens ("
    " name TEXT PRIMARY KEY,"
    " role TEXT NOT NULL,"
    " instance_id BIGINT,"
    " token_hash TEXT NOT NULL,"
    " created_at_ms BIGINT NOT NULL,"
    " last_used_ms BIGINT)",
    "CREATE UNIQUE INDEX api_tokens_hash ON api_tokens (token_hash)",
    "CREATE INDEX api_tokens_instance ON api_tokens (instance_id)",
    NULL,
};

/* Alert destinations and their delivery queue (src/db/db_alert.h,
 * docs/alerts.md). The URL and secret columns hold sealed values (DB-DA1). */
static const char *const m5_sql[] = {
    "CREATE TABLE alerts ("
    " name TEXT PRIMARY KEY,"
    " kind TEXT NOT NULL,"
    " url_sealed TEXT NOT NULL,"
    " url_shown TEXT NOT NULL,"
    " secret_sealed TEXT,"
    " notify_on TEXT NOT NULL,"
    " created_at_ms BIGINT NOT NULL)",
    "CREATE TABLE alert_deliveries ("
    " delivery_key TEXT PRIMARY KEY,"
    " alert_name TEXT NOT NULL,"
    " event_key TEXT NOT NULL,"
    " event_type TEXT NOT NULL,"
    " body TEXT NOT NULL,"
    " state TEXT NOT NULL,"
    " attempts BIGINT NOT NULL,"
    " next_at_ms BIGINT NOT NULL,"
    " queued_at_ms BIGINT NOT NULL,"
    " last_status BIGINT,"
    " last_error TEXT,"
    " done_at_ms BIGINT)",
    "CREATE INDEX alert_deliveries_due ON alert_deliveries (state, next_at_ms)",
    "CREATE INDEX alert_deliveries_alert ON alert_deliveries (alert_name, queued_at_ms)",
    NULL,
};

/* Order without clocks (db_fleet.h FLEET-F4): the server numbers every snapshot
 * it accepts from a counter row it updates in the accepting transaction (a
 * row lock on PostgreSQL, the write lock on SQLite: no two reports get one
 * number). The snapshots already there keep the order they had (the agents'
 * created_at_ms, then reported_at_ms, then id); the counter starts above
 * them. */
static const char *const m6_sql[] = {
    "ALTER TABLE snapshots ADD COLUMN seq BIGINT",
    "UPDATE snapshots SET seq = r.n FROM (SELECT snapshot_id, ROW_NUMBER() OVER"
    " (ORDER BY created_at_ms, reported_at_ms, snapshot_id) AS n FROM snapshots) AS r"
    " WHERE r.snapshot_id = snapshots.snapshot_id",
    "CREATE TABLE counters (name TEXT PRIMARY KEY, value BIGINT NOT NULL)",
    "INSERT INTO counters (name, value) SELECT 'snapshots', COALESCE(MAX(seq), 0) FROM snapshots",
    "CREATE INDEX snapshots_workload_seq ON snapshots (workload_id, epoch DESC, seq DESC)",
    "CREATE INDEX snapshots_instance_seq ON snapshots (instance_id, seq DESC)",
    "CREATE INDEX snapshots_seq ON snapshots (seq DESC)",
    NULL,
};

/* One controller per database (db.h DB-D5): who holds the PostgreSQL advisory
 * lock, by its backend pid, so that one refused can name it. One row. */
static const char *const m7_sql[] = {
    "CREATE TABLE controller_lock ("
    " id BIGINT PRIMARY KEY,"
    " holder TEXT NOT NULL,"
    " backend_pid BIGINT NOT NULL,"
    " since_ms BIGINT NOT NULL)",
    NULL,
};

/* Records that say what happened (issue 16; core/failover.h FO-I3, FO-I5,
 * FO-I6): snapshot_storage becomes the storage's name and its URL moves to
 * snapshot_storage_url (a URL already recorded is named by its scheme);
 * the downtime of the controller; each run of a phase, one line per run
 * (db_failover.c DBF-F5); the current run's start and the attempt. */
static const char *const m8_sql[] = {
    "ALTER TABLE failovers ADD COLUMN snapshot_storage_url TEXT",
    "UPDATE failovers SET snapshot_storage_url = snapshot_storage,"
    " snapshot_storage = CASE WHEN snapshot_storage LIKE 'file:%' THEN 'file' ELSE 's3' END"
    " WHERE snapshot_storage IS NOT NULL AND snapshot_storage <> ''",
    "ALTER TABLE failovers ADD COLUMN controller_down_ms BIGINT",
    "ALTER TABLE failovers ADD COLUMN phase_runs TEXT",
    "ALTER TABLE failovers ADD COLUMN run_started_at_ms BIGINT",
    "ALTER TABLE failovers ADD COLUMN attempt BIGINT",
    NULL,
};

/* The control channel (db_command.h DB-C1 to DB-C3): the commands a controller
 * gives an instance's agent and their answers, so a restarted controller
 * resumes waiting for the same ones; and which copy served a failover's
 * restore (`restore_source`: primary or mirror). */
static const char *const m9_sql[] = {
    "CREATE TABLE agent_commands ("
    " id TEXT PRIMARY KEY,"
    " seq BIGINT NOT NULL UNIQUE,"
    " instance_id BIGINT NOT NULL,"
    " epoch BIGINT NOT NULL,"
    " kind TEXT NOT NULL,"
    " args TEXT NOT NULL,"
    " state TEXT NOT NULL,"
    " result TEXT,"
    " created_ms BIGINT NOT NULL,"
    " done_ms BIGINT)",
    "CREATE INDEX agent_commands_instance ON agent_commands (instance_id, state, seq)",
    "ALTER TABLE failovers ADD COLUMN restore_source TEXT",
    NULL,
};

/* Issue 16: a workload's own failures (fleet.h FLEET-W1): how often it is
 * restarted in place, which exit codes are its own error, the agent's host
 * check, and why it failed (the reason and its last output lines). */
static const char *const m10_sql[] = {
    "ALTER TABLE workloads ADD COLUMN max_restarts_on_errors BIGINT NOT NULL DEFAULT 3",
    "ALTER TABLE workloads ADD COLUMN error_exit_codes TEXT",
    "ALTER TABLE workloads ADD COLUMN host_check TEXT",
    "ALTER TABLE workloads ADD COLUMN failure TEXT",
    NULL,
};

/* The failover budget of a workload (failover real.c ORCH-R8): its settings (NULL:
 * the defaults) and, while it flaps, why, since when, and the earliest its next
 * failover may act. */
static const char *const m11_sql[] = {
    "ALTER TABLE workloads ADD COLUMN max_failovers BIGINT",
    "ALTER TABLE workloads ADD COLUMN failover_window_ms BIGINT",
    "ALTER TABLE workloads ADD COLUMN flapping_reason TEXT",
    "ALTER TABLE workloads ADD COLUMN flapping_since_ms BIGINT",
    "ALTER TABLE workloads ADD COLUMN failover_hold_until_ms BIGINT",
    NULL,
};

/* clang-format off */
static const migration migrations[] = {
    {1, m1_sql},
    {2, m2_sql},
    {3, m3_sql},
    {4, m4_sql},
    {5, m5_sql},
    {6, m6_sql},
    {7, m7_sql},
    {8, m8_sql},
    {9, m9_sql},
    {10, m10_sql},
    {11, m11_sql},
};
/* clang-format on */

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

/* One migration, inside its DB_TX_MIGRATE transaction (DB-M1, DB-M2). */
static int apply_one(dm_db *db, const migration *m, char *err, size_t errlen)
{
    int64_t have = 0;
    int rc = db_x(db,
                  "CREATE TABLE IF NOT EXISTS schema_migrations ("
                  " version BIGINT PRIMARY KEY, applied_at_ms BIGINT NOT NULL)",
                  NULL, 0, NULL, NULL, NULL, err, errlen);
    if (rc || (rc = read_version(db, &have, err, errlen)) != 0)
        return rc;
    if (have > db_migrate_latest()) /* DB-M3 */
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

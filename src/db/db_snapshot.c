/* Snapshots agents report (db_fleet.h FLEET-F3, FLEET-F4; migration 3 `snapshots`).
 *
 * Same conventions as db_instance.c: SQL written once for both back ends,
 * values only as parameters, strings checked for their NUL before binding
 * and for their size when read back (DB-O3 of db.c).
 *
 * DBSNAP-S1: db_snapshot_record() reads the machine row, the workload row and the
 *     instance row and inserts in ONE write transaction: a fence or a
 *     failover (FLEET-F2) that commits first is always seen, one that commits
 *     later finds the snapshot recorded under the old epoch (FLEET-F4 ranks it
 *     below the new instance's snapshots by its epoch; the orchestrator
 *     restores what it chose before switching).
 * DBSNAP-S2: an instance that is neither registered (instances) nor made by a
 *     provider (machines) is DM_E_NOT_FOUND: nothing is recorded for ids
 *     nobody knows.
 * DBSNAP-S3: refusals are DM_E_CONFLICT with the reason in err, and write nothing.
 * DBSNAP-S4: the accepting transaction takes the next number of the `snapshots`
 *     counter (migration 6) and stores it as the row's seq: seq is the order
 *     in which this database accepted reports, strictly increasing, never
 *     reused, with gaps (a refused or repeated report may take a number and
 *     store nothing). Every "newest" below orders by (epoch, seq), never by
 *     a clock (FLEET-F4); created_at_ms is the agent's, for display. */
#include "db/db_fleet.h"

#include "db/db_internal.h"
#include "util/clock.h"
#include "util/error.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define SNAP_COLS                                                                                  \
    "snapshot_id, instance_id, workload_id, epoch, store_url, size_bytes, stored_bytes, files,"    \
    " created_at_ms, creation_time_ms, reported_at_ms, trigger_kind, COALESCE(seq, 0)"

/* The columns an INSERT names: SNAP_COLS' with seq as itself. */
#define SNAP_COLS_W                                                                                \
    "snapshot_id, instance_id, workload_id, epoch, store_url, size_bytes, stored_bytes, files,"    \
    " created_at_ms, creation_time_ms, reported_at_ms, trigger_kind, seq"

static const char *const triggers[] = {"scheduled", "preempt", "test-real", "launch", "manual"};

static int snap_check(const dm_snapshot *s, char *err, size_t errlen)
{
    if (!s || !DB_STR_OK(s->snapshot_id) || !DB_STR_OK(s->store_url) || !DB_STR_OK(s->trigger) ||
        !DB_STR_OK(s->workload_id))
        return dm_fail(err, errlen, DM_E_INVALID, "snapshot: unterminated string");
    if (!s->snapshot_id[0] || s->instance_id < 1 || s->epoch < 0 || s->size_bytes < 0 ||
        s->stored_bytes < 0 || s->files < 0 || s->created_at_ms < 0 || s->creation_time_ms < 0)
        return dm_fail(err, errlen, DM_E_INVALID, "snapshot: bad id, instance or counts");
    for (size_t i = 0; i < sizeof triggers / sizeof triggers[0]; i++)
        if (strcmp(s->trigger, triggers[i]) == 0)
            return 0;
    return dm_fail(err, errlen, DM_E_INVALID, "snapshot: unknown trigger");
}

/* ---- the FLEET-F3 transaction --------------------------------------------------- */

typedef struct {
    int found;
    char workload_id[FLEET_WL_ID_MAX];
    dm_mach_state state;
    int64_t test, serving, epoch, machine_epoch;
} owner;

static int machine_row(const db_row *r, void *ctx)
{
    owner *o = ctx;
    o->found = 1;
    o->test = db_row_i64(r, 2, NULL);
    o->machine_epoch = db_row_i64(r, 3, NULL);
    if (db_text_copy(o->workload_id, sizeof o->workload_id, db_row_text(r, 0)) ||
        dm_mach_state_parse(db_row_text(r, 1), &o->state))
        return DM_E_DB;
    return 0;
}

static int workload_row(const db_row *r, void *ctx)
{
    owner *o = ctx;
    o->found = 2;
    o->serving = db_col_i64n(r, 0);
    o->epoch = db_row_i64(r, 1, NULL);
    return 0;
}

static int count_row(const db_row *r, void *ctx)
{
    *(int64_t *)ctx = db_row_i64(r, 0, NULL);
    return 0;
}

/* F3's refusals, given the machine (and its workload) read in the tx. */
static int judge(const dm_snapshot *s, const owner *o, char *err, size_t errlen)
{
    if (o->state == DM_MACH_DESTROYED)
        return dm_fail(err, errlen, DM_E_CONFLICT, "instance %lld is destroyed (fenced)",
                       (long long)s->instance_id);
    if (o->found < 2) /* a machine of no (or a vanished) workload */
        return 0;
    /* Not "serving != instance": a failover's new instance (of the new epoch)
     * snapshots before it serves. An older machine's epoch is a fenced one. */
    if (!o->test && o->machine_epoch < o->epoch)
        return dm_fail(err, errlen, DM_E_CONFLICT,
                       "instance %lld belongs to epoch %lld; workload %s is at %lld (fenced)",
                       (long long)s->instance_id, (long long)o->machine_epoch, o->workload_id,
                       (long long)o->epoch);
    if (s->epoch < o->epoch)
        return dm_fail(err, errlen, DM_E_CONFLICT, "stale epoch %lld (workload %s is at %lld)",
                       (long long)s->epoch, o->workload_id, (long long)o->epoch);
    if (s->epoch > o->epoch) /* FLEET-F3: only the current epoch */
        return dm_fail(err, errlen, DM_E_CONFLICT,
                       "epoch %lld is not current (workload %s is at %lld)", (long long)s->epoch,
                       o->workload_id, (long long)o->epoch);
    return 0;
}

static int record_tx(dm_db *db, dm_snapshot *s, char *err, size_t errlen)
{
    owner o = {0};
    db_param pid[] = {db_p_i64(s->instance_id)};
    int rc = db_x(db, "SELECT workload_id, state, test, epoch FROM machines WHERE instance_id = $1",
                  pid, 1, machine_row, &o, NULL, err, errlen);
    if (rc)
        return rc;
    if (!o.found) { /* DBSNAP-S2: a hand-started agent must at least be registered */
        int64_t n = 0;
        if ((rc = db_x(db, "SELECT COUNT(*) FROM instances WHERE instance_id = $1", pid, 1,
                       count_row, &n, NULL, err, errlen)) != 0)
            return rc;
        if (n == 0)
            return dm_fail(err, errlen, DM_E_NOT_FOUND, "no instance '%lld'",
                           (long long)s->instance_id);
    } else if (o.workload_id[0]) {
        db_param pw[] = {db_p_text(o.workload_id)};
        if ((rc =
                 db_x(db, "SELECT serving_instance_id, epoch FROM workloads WHERE workload_id = $1",
                      pw, 1, workload_row, &o, NULL, err, errlen)) != 0)
            return rc;
    }
    if (o.found && (rc = judge(s, &o, err, errlen)) != 0)
        return rc;
    memcpy(s->workload_id, o.found == 2 ? o.workload_id : "",
           o.found == 2 ? strlen(o.workload_id) + 1 : 1);
    db_param p[] = {db_p_text(s->snapshot_id),
                    db_p_i64(s->instance_id),
                    db_p_textn(s->workload_id),
                    db_p_i64(s->epoch),
                    db_p_text(s->store_url),
                    db_p_i64(s->size_bytes),
                    db_p_i64(s->stored_bytes),
                    db_p_i64(s->files),
                    db_p_i64(s->created_at_ms),
                    db_p_i64(s->creation_time_ms),
                    db_p_i64(s->reported_at_ms),
                    db_p_text(s->trigger),
                    db_p_i64(0)};
    int64_t seq = 0;
    if ((rc = db_x(db,
                   "UPDATE counters SET value = value + 1 WHERE name = 'snapshots'"
                   " RETURNING value",
                   NULL, 0, count_row, &seq, NULL, err, errlen)) != 0)
        return rc;
    if (seq < 1)
        return dm_fail(err, errlen, DM_E_DB, "the snapshots counter is missing (migration 6)");
    p[12] = db_p_i64(seq); /* DBSNAP-S4 */
    /* FLEET-F3: the same id twice is a no-op (an agent retrying a lost answer),
     * which keeps the place (seq) of the first. */
    if ((rc = db_x(db,
                   "INSERT INTO snapshots (" SNAP_COLS_W ") VALUES ($1, $2, $3, $4, $5, $6, $7,"
                   " $8, $9, $10, $11, $12, $13) ON CONFLICT (snapshot_id) DO NOTHING",
                   p, 13, NULL, NULL, NULL, err, errlen)) != 0)
        return rc;
    s->seq = 0;
    return db_x(db, "SELECT seq FROM snapshots WHERE snapshot_id = $1", p, 1, count_row, &s->seq,
                NULL, err, errlen);
}

int db_snapshot_record(dm_db *db, dm_snapshot *s, char *err, size_t errlen)
{
    int rc = snap_check(s, err, errlen);
    if (rc || !db)
        return rc ? rc : dm_fail(err, errlen, DM_E_INVALID, "no database");
    if (s->reported_at_ms <= 0)
        s->reported_at_ms = clock_wall_ms();
    char wl[FLEET_WL_ID_MAX];
    memcpy(wl, s->workload_id, sizeof wl); /* ret_* untouched on failure */
    pthread_mutex_lock(&db->lock);
    if ((rc = db_begin(db, DB_TX_WRITE, err, errlen)) == 0)
        rc = db_end(db, record_tx(db, s, err, errlen), err, errlen);
    pthread_mutex_unlock(&db->lock);
    if (rc)
        memcpy(s->workload_id, wl, sizeof wl);
    return rc;
}

/* ---- reads ---------------------------------------------------------------- */

typedef struct {
    dm_snapshot *v;
    size_t n, cap, max;
    int bad;
} snap_vec;

static int snap_row(const db_row *r, void *ctx)
{
    snap_vec *x = ctx;
    if (x->n == x->max)
        return 0; /* the queries carry a LIMIT; never more than asked */
    if (x->n == x->cap) {
        size_t cap = x->cap ? x->cap * 2 : 8;
        dm_snapshot *v = realloc(x->v, cap * sizeof *v);
        if (!v)
            return -ENOMEM;
        x->v = v;
        x->cap = cap;
    }
    dm_snapshot *s = &x->v[x->n];
    memset(s, 0, sizeof *s);
    s->instance_id = db_row_i64(r, 1, NULL);
    s->epoch = db_row_i64(r, 3, NULL);
    s->size_bytes = db_row_i64(r, 5, NULL);
    s->stored_bytes = db_row_i64(r, 6, NULL);
    s->files = db_row_i64(r, 7, NULL);
    s->created_at_ms = db_row_i64(r, 8, NULL);
    s->creation_time_ms = db_row_i64(r, 9, NULL);
    s->reported_at_ms = db_row_i64(r, 10, NULL);
    s->seq = db_row_i64(r, 12, NULL);
    if (db_text_copy(s->snapshot_id, sizeof s->snapshot_id, db_row_text(r, 0)) ||
        db_text_copy(s->workload_id, sizeof s->workload_id, db_row_text(r, 2)) ||
        db_text_copy(s->store_url, sizeof s->store_url, db_row_text(r, 4)) ||
        db_text_copy(s->trigger, sizeof s->trigger, db_row_text(r, 11))) {
        x->bad = 1;
        return DM_E_DB;
    }
    x->n++;
    return 0;
}

static int snap_query(dm_db *db, const char *sql, const db_param *p, int np, snap_vec *x, char *err,
                      size_t errlen)
{
    if (!db)
        return dm_fail(err, errlen, DM_E_INVALID, "no database");
    pthread_mutex_lock(&db->lock);
    int rc = db_x(db, sql, p, np, snap_row, x, NULL, err, errlen);
    pthread_mutex_unlock(&db->lock);
    if (rc == DM_E_DB && x->bad)
        rc = dm_fail(err, errlen, rc, "a snapshot row does not decode (string too long)");
    if (rc) {
        free(x->v);
        x->v = NULL;
    }
    return rc;
}

/* One row or DM_E_NOT_FOUND. */
static int snap_one(dm_db *db, const char *sql, const db_param *p, int np, dm_snapshot *ret,
                    const char *what, char *err, size_t errlen)
{
    if (!ret)
        return dm_fail(err, errlen, DM_E_INVALID, "no result");
    snap_vec x = {.max = 1};
    int rc = snap_query(db, sql, p, np, &x, err, errlen);
    if (rc)
        return rc;
    if (x.n == 0)
        rc = dm_fail(err, errlen, DM_E_NOT_FOUND, "no snapshot of %s", what);
    else
        *ret = x.v[0];
    free(x.v);
    return rc;
}

/* FLEET-F4, DBSNAP-S4: the newest of one workload is the one of its newest epoch that
 * was accepted last; across workloads (lists), the one accepted last. */
#define NEWEST   " ORDER BY epoch DESC, seq DESC"
#define ACCEPTED " ORDER BY seq DESC"

int db_snapshot_get(dm_db *db, const char *snapshot_id, dm_snapshot *ret, char *err, size_t errlen)
{
    if (!snapshot_id)
        return dm_fail(err, errlen, DM_E_INVALID, "no snapshot id");
    db_param p = db_p_text(snapshot_id);
    return snap_one(db, "SELECT " SNAP_COLS " FROM snapshots WHERE snapshot_id = $1", &p, 1, ret,
                    "that id", err, errlen);
}

int db_snapshot_latest_workload(dm_db *db, const char *workload_id, dm_snapshot *ret, char *err,
                                size_t errlen)
{
    if (!workload_id || !*workload_id)
        return dm_fail(err, errlen, DM_E_INVALID, "no workload id");
    db_param p = db_p_text(workload_id);
    return snap_one(db,
                    "SELECT " SNAP_COLS " FROM snapshots WHERE workload_id = $1" NEWEST " LIMIT 1",
                    &p, 1, ret, "the workload", err, errlen);
}

int db_snapshot_latest_in_store(dm_db *db, const char *workload_id, const char *store_url,
                                dm_snapshot *ret, char *err, size_t errlen)
{
    if (!workload_id || !*workload_id || !store_url || !*store_url)
        return dm_fail(err, errlen, DM_E_INVALID, "no workload id or store");
    db_param p[] = {db_p_text(workload_id), db_p_text(store_url)};
    return snap_one(db,
                    "SELECT " SNAP_COLS
                    " FROM snapshots WHERE workload_id = $1 AND store_url = $2" NEWEST " LIMIT 1",
                    p, 2, ret, "the workload in the configured store", err, errlen);
}

int db_snapshot_latest_instance(dm_db *db, int64_t instance_id, dm_snapshot *ret, char *err,
                                size_t errlen)
{
    db_param p = db_p_i64(instance_id);
    return snap_one(
        db, "SELECT " SNAP_COLS " FROM snapshots WHERE instance_id = $1" ACCEPTED " LIMIT 1", &p, 1,
        ret, "the instance", err, errlen);
}

int db_snapshot_list(dm_db *db, int64_t instance_id, int limit, dm_snapshot **ret, size_t *ret_n,
                     char *err, size_t errlen)
{
    if (!ret || !ret_n || limit < 1 || limit > FLEET_LIST_MAX)
        return dm_fail(err, errlen, DM_E_INVALID, "bad limit (1..%d) or no result", FLEET_LIST_MAX);
    snap_vec x = {.max = (size_t)limit};
    db_param p[] = {db_p_i64(instance_id), db_p_i64(limit)};
    int rc = instance_id == DM_NULL
                 ? snap_query(db, "SELECT " SNAP_COLS " FROM snapshots" ACCEPTED " LIMIT $1", p + 1,
                              1, &x, err, errlen)
                 : snap_query(db,
                              "SELECT " SNAP_COLS " FROM snapshots WHERE instance_id = $1" ACCEPTED
                              " LIMIT $2",
                              p, 2, &x, err, errlen);
    if (rc)
        return rc;
    *ret = x.v;
    *ret_n = x.n;
    return 0;
}

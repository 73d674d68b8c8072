/* Workloads and machines (db_fleet.h FLEET-F1, FLEET-F2). The snapshots of the same
 * header live in db_snapshot.c.
 *
 * Same conventions as db_instance.c: SQL written once for both back ends,
 * values only as parameters, every string checked for its NUL before binding
 * and for its size when read back. Rows are collected by one generic
 * collector (fleet_rows) that caps the count and frees on failure. */
#include "db/db_fleet.h"

#include "db/db_internal.h"
#include "util/clock.h"
#include "util/error.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- a capped vector of decoded rows ---- */

typedef int (*row_decode_fn)(const db_row *r, void *elem);

typedef struct {
    char *v;
    size_t n, cap, max, size;
    row_decode_fn decode;
    int too_many, bad;
} fleet_rows;

static int collect_row(const db_row *r, void *ctx)
{
    fleet_rows *x = ctx;
    if (x->n == x->max) {
        x->too_many = 1;
        return DM_E_TOO_BIG;
    }
    if (x->n == x->cap) {
        size_t cap = x->cap ? x->cap * 2 : 8;
        char *v = realloc(x->v, cap * x->size);
        if (!v)
            return -ENOMEM;
        x->v = v;
        x->cap = cap;
    }
    void *e = x->v + x->n * x->size;
    memset(e, 0, x->size);
    if (x->decode(r, e)) {
        x->bad = 1;
        return DM_E_DB;
    }
    x->n++;
    return 0;
}

/* Runs a SELECT under the lock; on success x->v holds x->n rows (malloc'd). */
static int fleet_query(dm_db *db, const char *what, const char *sql, const db_param *p, int np,
                       fleet_rows *x, char *err, size_t errlen)
{
    pthread_mutex_lock(&db->lock);
    int rc = db_x(db, sql, p, np, collect_row, x, NULL, err, errlen);
    pthread_mutex_unlock(&db->lock);
    if (rc == DM_E_TOO_BIG && x->too_many)
        rc = dm_fail(err, errlen, rc, "more than %zu %s", x->max, what);
    else if (rc == DM_E_DB && x->bad)
        rc = dm_fail(err, errlen, rc, "a %s row does not decode (string too long)", what);
    if (rc) {
        free(x->v);
        x->v = NULL;
    }
    return rc;
}

/* One row into ret, DM_E_NOT_FOUND when none. */
static int fleet_query1(dm_db *db, const char *what, const char *sql, const db_param *p, int np,
                        row_decode_fn decode, void *ret, size_t size, char *err, size_t errlen)
{
    fleet_rows x = {.max = 1, .size = size, .decode = decode};
    int rc = fleet_query(db, what, sql, p, np, &x, err, errlen);
    if (rc)
        return rc;
    if (x.n == 0)
        return DM_E_NOT_FOUND;
    memcpy(ret, x.v, size);
    free(x.v);
    return 0;
}

/* Runs one write statement in its own transaction; *changed rows. */
static int fleet_write(dm_db *db, const char *sql, const db_param *p, int np, int64_t *changed,
                       char *err, size_t errlen)
{
    pthread_mutex_lock(&db->lock);
    int rc = db_begin(db, DB_TX_WRITE, err, errlen);
    if (rc == 0)
        rc = db_end(db, db_x(db, sql, p, np, NULL, NULL, changed, err, errlen), err, errlen);
    pthread_mutex_unlock(&db->lock);
    return rc;
}

/* ---- workloads ---- */

#define WL_COLS                                                                                    \
    "workload_id, name, workload_cmd, probe_spec, model, workspace_from, heartbeat_ms,"            \
    " snapshot_every_ms, requirements, protected, serving_instance_id, epoch, state,"              \
    " created_at_ms, max_restarts_on_errors, error_exit_codes, host_check, failure,"          \
    " max_failovers, failover_window_ms, flapping_reason, flapping_since_ms,"                 \
    " failover_hold_until_ms"

static int wl_decode(const db_row *r, void *elem)
{
    dm_workload *w = elem;
    if (db_text_copy(w->workload_id, sizeof w->workload_id, db_row_text(r, 0)) ||
        db_text_copy(w->name, sizeof w->name, db_row_text(r, 1)) ||
        db_text_copy(w->workload_cmd, sizeof w->workload_cmd, db_row_text(r, 2)) ||
        db_text_copy(w->probe_spec, sizeof w->probe_spec, db_row_text(r, 3)) ||
        db_text_copy(w->model, sizeof w->model, db_row_text(r, 4)) ||
        db_text_copy(w->workspace_from, sizeof w->workspace_from, db_row_text(r, 5)) ||
        db_text_copy(w->requirements, sizeof w->requirements, db_row_text(r, 8)) ||
        dm_wl_state_parse(db_row_text(r, 12), &w->state) ||
        db_text_copy(w->error_exit_codes, sizeof w->error_exit_codes, db_row_text(r, 15)) ||
        db_text_copy(w->host_check, sizeof w->host_check, db_row_text(r, 16)) ||
        db_text_copy(w->failure, sizeof w->failure, db_row_text(r, 17)) ||
        db_text_copy(w->flapping_reason, sizeof w->flapping_reason, db_row_text(r, 20)))
        return DM_E_DB;
    w->max_restarts_on_errors = (int)db_row_i64(r, 14, NULL);
    w->heartbeat_ms = db_row_i64(r, 6, NULL);
    w->snapshot_every_ms = db_row_i64(r, 7, NULL);
    w->protect = db_row_i64(r, 9, NULL) != 0;
    w->serving_instance_id = db_col_i64n(r, 10);
    w->epoch = db_row_i64(r, 11, NULL);
    w->created_at_ms = db_row_i64(r, 13, NULL);
    w->max_failovers = db_row_i64(r, 18, NULL); /* NULL (older rows): 0, the default */
    w->failover_window_ms = db_row_i64(r, 19, NULL);
    w->flapping_since_ms = db_col_i64n(r, 21);
    w->failover_hold_until_ms = db_col_i64n(r, 22);
    return 0;
}

static int wl_check(const dm_workload *w, char *err, size_t errlen)
{
    if (!w || !DB_STR_OK(w->workload_id) || !w->workload_id[0])
        return dm_fail(err, errlen, DM_E_INVALID, "workload: missing id");
    if (!DB_STR_OK(w->name) || !DB_STR_OK(w->workload_cmd) || !DB_STR_OK(w->probe_spec) ||
        !DB_STR_OK(w->model) || !DB_STR_OK(w->workspace_from) || !DB_STR_OK(w->requirements) ||
        !DB_STR_OK(w->error_exit_codes) || !DB_STR_OK(w->host_check) || !DB_STR_OK(w->failure) ||
        !DB_STR_OK(w->flapping_reason))
        return dm_fail(err, errlen, DM_E_INVALID, "workload '%s': bad string", w->workload_id);
    if ((unsigned)w->state >= DM_WL_STATE_COUNT)
        return dm_fail(err, errlen, DM_E_INVALID, "workload '%s': bad state", w->workload_id);
    if (w->epoch < 0 || w->heartbeat_ms < 0 || w->snapshot_every_ms < 0 ||
        w->max_restarts_on_errors < 0 ||
        w->max_failovers < 0 || w->max_failovers > FLEET_BUDGET_MAX_LIMIT ||
        w->failover_window_ms < 0 || w->failover_window_ms > FLEET_BUDGET_WINDOW_LIMIT)
        return dm_fail(err, errlen, DM_E_INVALID, "workload '%s': negative number",
                       w->workload_id);
    return 0;
}

int db_workload_insert(dm_db *db, const dm_workload *w, char *err, size_t errlen)
{
    int rc = db ? wl_check(w, err, errlen) : dm_fail(err, errlen, DM_E_INVALID, "no database");
    if (rc)
        return rc;
    const char *st = dm_wl_state_name(w->state);
    db_param p[] = {db_p_text(w->workload_id),
                    db_p_text(w->name),
                    db_p_textn(w->workload_cmd),
                    db_p_textn(w->probe_spec),
                    db_p_textn(w->model),
                    db_p_textn(w->workspace_from),
                    db_p_i64(w->heartbeat_ms),
                    db_p_i64(w->snapshot_every_ms),
                    db_p_text(w->requirements[0] ? w->requirements : "{}"),
                    db_p_i64(w->protect ? 1 : 0),
                    db_p_i64n(w->serving_instance_id),
                    db_p_i64(w->epoch),
                    db_p_text(st),
                    db_p_i64(w->created_at_ms),
                    db_p_i64(w->max_restarts_on_errors),
                    db_p_textn(w->error_exit_codes),
                    db_p_textn(w->host_check),
                    db_p_textn(w->failure),
                    db_p_i64(w->max_failovers),
                    db_p_i64(w->failover_window_ms),
                    db_p_textn(w->flapping_reason),
                    db_p_i64n(w->flapping_since_ms),
                    db_p_i64n(w->failover_hold_until_ms)};
    rc = fleet_write(db,
                     "INSERT INTO workloads (" WL_COLS ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8,"
                     " $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21, $22, $23)",
                     p, 23, NULL, err, errlen);
    if (rc == DM_E_CONFLICT)
        return dm_fail(err, errlen, rc, "workload '%s' exists", w->workload_id);
    return rc;
}

int db_workload_get(dm_db *db, const char *workload_id, dm_workload *ret, char *err, size_t errlen)
{
    if (!db || !workload_id || !ret)
        return dm_fail(err, errlen, DM_E_INVALID, "no database, id or result");
    db_param p[] = {db_p_text(workload_id)};
    int rc = fleet_query1(db, "workload", "SELECT " WL_COLS " FROM workloads WHERE workload_id = $1",
                          p, 1, wl_decode, ret, sizeof *ret, err, errlen);
    if (rc == DM_E_NOT_FOUND)
        return dm_fail(err, errlen, rc, "no workload '%.64s'", workload_id);
    return rc;
}

int db_workload_by_serving(dm_db *db, int64_t instance_id, dm_workload *ret, char *err,
                           size_t errlen)
{
    if (!db || !ret)
        return dm_fail(err, errlen, DM_E_INVALID, "no database or result");
    db_param p[] = {db_p_i64(instance_id)};
    int rc = fleet_query1(db, "workload",
                          "SELECT " WL_COLS " FROM workloads WHERE serving_instance_id = $1", p, 1,
                          wl_decode, ret, sizeof *ret, err, errlen);
    if (rc == DM_E_NOT_FOUND)
        return dm_fail(err, errlen, rc, "instance %lld serves no workload",
                       (long long)instance_id);
    return rc;
}

int db_workload_list(dm_db *db, dm_workload **ret, size_t *ret_n, char *err, size_t errlen)
{
    if (!db || !ret || !ret_n)
        return dm_fail(err, errlen, DM_E_INVALID, "no database or result");
    fleet_rows x = {.max = FLEET_LIST_MAX, .size = sizeof(dm_workload), .decode = wl_decode};
    int rc = fleet_query(db, "workloads",
                         "SELECT " WL_COLS " FROM workloads ORDER BY created_at_ms, workload_id",
                         NULL, 0, &x, err, errlen);
    if (rc)
        return rc;
    *ret = (dm_workload *)x.v;
    *ret_n = x.n;
    return 0;
}

int db_workload_set_state(dm_db *db, const char *workload_id, dm_wl_state state, char *err,
                          size_t errlen)
{
    if (!db || !workload_id || (unsigned)state >= DM_WL_STATE_COUNT)
        return dm_fail(err, errlen, DM_E_INVALID, "no database, id or state");
    int64_t changed = 0;
    db_param p[] = {db_p_text(workload_id), db_p_text(dm_wl_state_name(state))};
    int rc = fleet_write(db, "UPDATE workloads SET state = $2 WHERE workload_id = $1", p, 2,
                         &changed, err, errlen);
    if (rc == 0 && changed == 0)
        return dm_fail(err, errlen, DM_E_NOT_FOUND, "no workload '%.64s'", workload_id);
    return rc;
}

int db_workload_set_failure(dm_db *db, const char *workload_id, const char *failure,
                            int set_failed, char *err, size_t errlen)
{
    if (!db || !workload_id || !failure ||
        strlen(failure) >= FLEET_FAILURE_MAX)
        return dm_fail(err, errlen, DM_E_INVALID, "workload failure: bad arguments");
    db_param p[] = {db_p_text(workload_id), db_p_textn(failure),
                    db_p_text(dm_wl_state_name(DM_WL_FAILED))};
    int64_t changed = 0;
    int rc = fleet_write(db,
                         set_failed ? "UPDATE workloads SET failure = $2, state = $3"
                                      " WHERE workload_id = $1"
                                    : "UPDATE workloads SET failure = $2 WHERE workload_id = $1",
                         p, set_failed ? 3 : 2, &changed, err, errlen);
    if (rc == 0 && changed == 0)
        return dm_fail(err, errlen, DM_E_NOT_FOUND, "no workload '%.64s'", workload_id);
    return rc;
}

int db_workload_cas_state(dm_db *db, const char *workload_id, int64_t expect_serving,
                          dm_wl_state from, dm_wl_state to, char *err, size_t errlen)
{
    if (!db || !workload_id || (unsigned)from >= DM_WL_STATE_COUNT ||
        (unsigned)to >= DM_WL_STATE_COUNT)
        return dm_fail(err, errlen, DM_E_INVALID, "no database, id or state");
    int64_t changed = 0;
    db_param p[] = {db_p_text(workload_id), db_p_text(dm_wl_state_name(from)),
                    db_p_text(dm_wl_state_name(to)), db_p_i64n(expect_serving)};
    /* FLEET-F5: the expectation is the WHERE; the rows affected say who won */
    int rc = fleet_write(db,
                         "UPDATE workloads SET state = $3 WHERE workload_id = $1 AND state = $2"
                         " AND ($4 IS NULL OR serving_instance_id = $4)",
                         p, 4, &changed, err, errlen);
    if (rc || changed)
        return rc;
    dm_workload w;
    if ((rc = db_workload_get(db, workload_id, &w, err, errlen)) != 0)
        return rc;
    return dm_fail(err, errlen, DM_E_CONFLICT, "workload '%.64s' is %s, not %s%s", workload_id,
                   dm_wl_state_name(w.state), dm_wl_state_name(from),
                   expect_serving != DM_NULL && w.serving_instance_id != expect_serving
                       ? " (or no longer served by that instance)"
                       : "");
}

int db_workload_set_budget(dm_db *db, const char *workload_id, const char *flapping_reason,
                           int64_t flapping_since_ms, int64_t hold_until_ms, char *err,
                           size_t errlen)
{
    if (!db || !workload_id || (flapping_reason && strlen(flapping_reason) >= FLEET_TEXT_MAX))
        return dm_fail(err, errlen, DM_E_INVALID, "no database or id, or a bad reason");
    int64_t changed = 0;
    int flapping = flapping_reason && *flapping_reason;
    db_param p[] = {db_p_text(workload_id), db_p_textn(flapping ? flapping_reason : ""),
                    db_p_i64n(flapping ? flapping_since_ms : DM_NULL), db_p_i64n(hold_until_ms)};
    int rc = fleet_write(db,
                         "UPDATE workloads SET flapping_reason = $2, flapping_since_ms = $3,"
                         " failover_hold_until_ms = $4 WHERE workload_id = $1",
                         p, 4, &changed, err, errlen);
    if (rc == 0 && changed == 0)
        return dm_fail(err, errlen, DM_E_NOT_FOUND, "no workload '%.64s'", workload_id);
    return rc;
}

int db_workload_switch(dm_db *db, const char *workload_id, int64_t expect_instance_id,
                       int64_t expect_epoch, int64_t new_instance_id, int64_t new_epoch,
                       char *err, size_t errlen)
{
    if (!db || !workload_id || new_epoch < 0)
        return dm_fail(err, errlen, DM_E_INVALID, "no database or id, or a negative epoch");
    int64_t changed = 0;
    /* FLEET-F2: the expected pair is part of the WHERE: a stale caller changes nothing.
     * "x IS NOT DISTINCT FROM $n" is not in SQLite 3.40's grammar for every
     * build, so NULL is compared by hand. */
    db_param p[] = {db_p_text(workload_id), db_p_i64n(expect_instance_id),
                    db_p_i64(expect_epoch), db_p_i64n(new_instance_id), db_p_i64(new_epoch)};
    int rc = fleet_write(db,
                         "UPDATE workloads SET serving_instance_id = $4, epoch = $5"
                         " WHERE workload_id = $1 AND epoch = $3 AND"
                         " ((serving_instance_id IS NULL AND $2 IS NULL) OR"
                         " serving_instance_id = $2)",
                         p, 5, &changed, err, errlen);
    if (rc == 0 && changed == 0)
        return dm_fail(err, errlen, DM_E_CONFLICT,
                       "workload '%.64s' is no longer served by %lld at epoch %lld", workload_id,
                       (long long)expect_instance_id, (long long)expect_epoch);
    return rc;
}

/* ---- machines ---- */

#define M_COLS                                                                                     \
    "instance_id, workload_id, provider, offer_id, host, gpu_name, price_milli, workspace,"        \
    " address, epoch, state, test, failover_id, created_at_ms, destroyed_at_ms"

static int m_decode(const db_row *r, void *elem)
{
    dm_machine *m = elem;
    if (db_text_copy(m->workload_id, sizeof m->workload_id, db_row_text(r, 1)) ||
        db_text_copy(m->provider, sizeof m->provider, db_row_text(r, 2)) ||
        db_text_copy(m->offer_id, sizeof m->offer_id, db_row_text(r, 3)) ||
        db_text_copy(m->host, sizeof m->host, db_row_text(r, 4)) ||
        db_text_copy(m->gpu_name, sizeof m->gpu_name, db_row_text(r, 5)) ||
        db_text_copy(m->workspace, sizeof m->workspace, db_row_text(r, 7)) ||
        db_text_copy(m->address, sizeof m->address, db_row_text(r, 8)) ||
        dm_mach_state_parse(db_row_text(r, 10), &m->state) ||
        db_text_copy(m->failover_id, sizeof m->failover_id, db_row_text(r, 12)))
        return DM_E_DB;
    m->instance_id = db_row_i64(r, 0, NULL);
    m->price_milli = db_col_i64n(r, 6);
    m->epoch = db_row_i64(r, 9, NULL);
    m->test = db_row_i64(r, 11, NULL) != 0;
    m->created_at_ms = db_row_i64(r, 13, NULL);
    m->destroyed_at_ms = db_col_i64n(r, 14);
    return 0;
}

static int m_check(const dm_machine *m, char *err, size_t errlen)
{
    if (!m)
        return dm_fail(err, errlen, DM_E_INVALID, "machine: none");
    if (!DB_STR_OK(m->workload_id) || !DB_STR_OK(m->provider) || !m->provider[0] ||
        !DB_STR_OK(m->offer_id) || !DB_STR_OK(m->host) || !DB_STR_OK(m->gpu_name) ||
        !DB_STR_OK(m->workspace) || !DB_STR_OK(m->address) || !DB_STR_OK(m->failover_id))
        return dm_fail(err, errlen, DM_E_INVALID, "machine: bad string");
    if ((unsigned)m->state >= DM_MACH_STATE_COUNT)
        return dm_fail(err, errlen, DM_E_INVALID, "machine: bad state");
    if (m->epoch < 0)
        return dm_fail(err, errlen, DM_E_INVALID, "machine: negative epoch");
    return 0;
}

static void m_params(const dm_machine *m, dm_mach_state state, db_param *p)
{
    *p++ = db_p_i64(m->instance_id);
    *p++ = db_p_textn(m->workload_id);
    *p++ = db_p_text(m->provider);
    *p++ = db_p_textn(m->offer_id);
    *p++ = db_p_textn(m->host);
    *p++ = db_p_textn(m->gpu_name);
    *p++ = db_p_i64n(m->price_milli);
    *p++ = db_p_textn(m->workspace);
    *p++ = db_p_textn(m->address);
    *p++ = db_p_i64(m->epoch);
    *p++ = db_p_text(dm_mach_state_name(state));
    *p++ = db_p_i64(m->test ? 1 : 0);
    *p++ = db_p_textn(m->failover_id);
    *p++ = db_p_i64(m->created_at_ms);
    *p++ = db_p_i64n(m->destroyed_at_ms);
}

static const char m_insert[] = "INSERT INTO machines (" M_COLS ") VALUES ($1, $2, $3, $4, $5, $6,"
                               " $7, $8, $9, $10, $11, $12, $13, $14, $15)";

typedef struct {
    int64_t max;
} max_ctx;

static int max_row(const db_row *r, void *ctx)
{
    int null = 0;
    int64_t v = db_row_i64(r, 0, &null);
    if (!null && v > ((max_ctx *)ctx)->max)
        ((max_ctx *)ctx)->max = v;
    return 0;
}

static int reserve_tx(dm_db *db, dm_machine *m, char *err, size_t errlen)
{
    max_ctx mx = {FLEET_FIRST_ID - 1};
    int rc = db_x(db, "SELECT MAX(instance_id) FROM instances", NULL, 0, max_row, &mx, NULL, err,
                  errlen);
    if (rc == 0)
        rc = db_x(db, "SELECT MAX(instance_id) FROM machines", NULL, 0, max_row, &mx, NULL, err,
                  errlen);
    if (rc)
        return rc;
    m->instance_id = mx.max + 1;
    db_param p[15];
    m_params(m, DM_MACH_PROVISIONING, p);
    return db_x(db, m_insert, p, 15, NULL, NULL, NULL, err, errlen);
}

int db_machine_reserve(dm_db *db, dm_machine *m, char *err, size_t errlen)
{
    int rc = db ? m_check(m, err, errlen) : dm_fail(err, errlen, DM_E_INVALID, "no database");
    if (rc)
        return rc;
    if (m->created_at_ms <= 0)
        m->created_at_ms = clock_wall_ms();
    m->destroyed_at_ms = DM_NULL;
    pthread_mutex_lock(&db->lock);
    rc = db_begin(db, DB_TX_WRITE, err, errlen);
    if (rc == 0)
        rc = db_end(db, reserve_tx(db, m, err, errlen), err, errlen); /* FLEET-F1 */
    pthread_mutex_unlock(&db->lock);
    if (rc == 0)
        m->state = DM_MACH_PROVISIONING;
    return rc;
}

int db_machine_put(dm_db *db, const dm_machine *m, char *err, size_t errlen)
{
    int rc = db ? m_check(m, err, errlen) : dm_fail(err, errlen, DM_E_INVALID, "no database");
    if (rc)
        return rc;
    if (m->instance_id < 1)
        return dm_fail(err, errlen, DM_E_INVALID, "machine: bad id");
    db_param p[15];
    m_params(m, m->state, p);
    char sql[sizeof m_insert + 512];
    snprintf(sql, sizeof sql,
             "%s ON CONFLICT (instance_id) DO UPDATE SET workload_id = excluded.workload_id,"
             " provider = excluded.provider, offer_id = excluded.offer_id, host = excluded.host,"
             " gpu_name = excluded.gpu_name, price_milli = excluded.price_milli,"
             " workspace = excluded.workspace, address = excluded.address,"
             " epoch = excluded.epoch, state = excluded.state, test = excluded.test,"
             " failover_id = excluded.failover_id, created_at_ms = excluded.created_at_ms,"
             " destroyed_at_ms = excluded.destroyed_at_ms",
             m_insert);
    return fleet_write(db, sql, p, 15, NULL, err, errlen);
}

int db_machine_get(dm_db *db, int64_t instance_id, dm_machine *ret, char *err, size_t errlen)
{
    if (!db || !ret)
        return dm_fail(err, errlen, DM_E_INVALID, "no database or result");
    db_param p[] = {db_p_i64(instance_id)};
    int rc = fleet_query1(db, "machine", "SELECT " M_COLS " FROM machines WHERE instance_id = $1",
                          p, 1, m_decode, ret, sizeof *ret, err, errlen);
    if (rc == DM_E_NOT_FOUND)
        return dm_fail(err, errlen, rc, "no instance '%lld'", (long long)instance_id);
    return rc;
}

int db_machine_list(dm_db *db, const char *workload_id, dm_machine **ret, size_t *ret_n, char *err,
                    size_t errlen)
{
    if (!db || !ret || !ret_n)
        return dm_fail(err, errlen, DM_E_INVALID, "no database or result");
    fleet_rows x = {.max = FLEET_LIST_MAX, .size = sizeof(dm_machine), .decode = m_decode};
    db_param p[] = {db_p_text(workload_id ? workload_id : "")};
    int rc = workload_id ? fleet_query(db, "machines",
                                       "SELECT " M_COLS " FROM machines WHERE workload_id = $1"
                                       " ORDER BY instance_id",
                                       p, 1, &x, err, errlen)
                         : fleet_query(db, "machines",
                                       "SELECT " M_COLS " FROM machines ORDER BY instance_id", NULL,
                                       0, &x, err, errlen);
    if (rc)
        return rc;
    *ret = (dm_machine *)x.v;
    *ret_n = x.n;
    return 0;
}

int db_machine_set_state(dm_db *db, int64_t instance_id, dm_mach_state state, char *err,
                         size_t errlen)
{
    if (!db || (unsigned)state >= DM_MACH_STATE_COUNT)
        return dm_fail(err, errlen, DM_E_INVALID, "no database or state");
    int64_t changed = 0;
    db_param p[] = {db_p_i64(instance_id), db_p_text(dm_mach_state_name(state)),
                    db_p_i64n(state == DM_MACH_DESTROYED ? clock_wall_ms() : DM_NULL)};
    int rc = fleet_write(db,
                         "UPDATE machines SET state = $2,"
                         " destroyed_at_ms = COALESCE(destroyed_at_ms, $3)"
                         " WHERE instance_id = $1",
                         p, 3, &changed, err, errlen);
    if (rc == 0 && changed == 0)
        return dm_fail(err, errlen, DM_E_NOT_FOUND, "no instance '%lld'", (long long)instance_id);
    return rc;
}

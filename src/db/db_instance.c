/* Instances and instance events (see db_instance.h for DB-I1 to DB-I3).
 *
 * The same conventions as the failover queries: SQL written once for both
 * back ends, values only as parameters, strings checked for their NUL before
 * binding and for their size when read back (DB-O3 of db.c). */
#include "db/db_instance.h"

#include "db/db_internal.h"
#include "util/error.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define INSTANCE_COLS                                                                              \
    "instance_id, kind, key_id, state, state_since_ms, registered_at_ms, last_heartbeat_ms,"       \
    " workload, probe, workload_cmd, probe_spec, hostname"
/* DB-I4: the columns read back, and whether the instance's machine is destroyed */
#define INSTANCE_SELECT                                                                            \
    "SELECT " INSTANCE_COLS ", (SELECT COUNT(*) FROM machines m WHERE m.instance_id ="            \
    " instances.instance_id AND m.state = 'destroyed') FROM instances"

static int instance_check(const dm_instance *in, char *err, size_t errlen)
{
    if (!in || in->instance_id < 1)
        return dm_fail(err, errlen, DM_E_INVALID, "instance: bad id");
    if (!DB_STR_OK(in->kind) || !DB_STR_OK(in->key_id) || !DB_STR_OK(in->state) ||
        !DB_STR_OK(in->workload) || !DB_STR_OK(in->probe) || !DB_STR_OK(in->workload_cmd) ||
        !DB_STR_OK(in->probe_spec) || !DB_STR_OK(in->hostname))
        return dm_fail(err, errlen, DM_E_INVALID, "instance: unterminated string");
    if (!in->kind[0] || !in->key_id[0] || !in->state[0])
        return dm_fail(err, errlen, DM_E_INVALID, "instance: kind, key id and state required");
    return 0;
}

static int insert_event(dm_db *db, const dm_instance_event *ev, char *err, size_t errlen)
{
    db_param p[] = {db_p_i64(ev->instance_id), db_p_i64(ev->at_ms),     db_p_text(ev->what),
                    db_p_text(ev->from),       db_p_text(ev->to),       db_p_text(ev->reason),
                    db_p_i64n(ev->silent_ms),  db_p_i64n(ev->phi_milli)};
    /* event_seq orders the events of one instance (several may share a
     * millisecond); written inside the caller's write transaction. */
    return db_x(db,
                "INSERT INTO instance_events (instance_id, event_seq, at_ms, what, from_state,"
                " to_state, reason, silent_ms, phi_milli) SELECT $1, COALESCE(MAX(event_seq), 0)"
                " + 1, $2, $3, $4, $5, $6, $7, $8 FROM instance_events WHERE instance_id = $1",
                p, 8, NULL, NULL, NULL, err, errlen);
}

static int count_row(const db_row *r, void *ctx)
{
    *(int64_t *)ctx = db_row_i64(r, 0, NULL);
    return 0;
}

static int register_tx(dm_db *db, const dm_instance *in, char *err, size_t errlen)
{
    int64_t destroyed = 0;
    db_param id[] = {db_p_i64(in->instance_id)};
    int rc = db_x(db, "SELECT COUNT(*) FROM machines WHERE instance_id = $1 AND state = 'destroyed'",
                  id, 1, count_row, &destroyed, NULL, err, errlen);
    if (rc)
        return rc;
    if (destroyed) /* DB-I4 */
        return dm_fail(err, errlen, DM_E_CONFLICT,
                       "instance %lld is destroyed (fenced): a destroyed instance never registers "
                       "again",
                       (long long)in->instance_id);
    db_param p[] = {db_p_i64(in->instance_id),      db_p_text(in->kind),
                    db_p_text(in->key_id),          db_p_text(in->state),
                    db_p_i64(in->registered_at_ms), db_p_textn(in->workload_cmd),
                    db_p_textn(in->probe_spec),     db_p_textn(in->hostname)};
    rc = db_x(db,
                  "INSERT INTO instances (" INSTANCE_COLS ") VALUES ($1, $2, $3, $4, $5, $5, NULL,"
                  " NULL, NULL, $6, $7, $8) ON CONFLICT (instance_id) DO UPDATE SET"
                  " kind = excluded.kind, key_id = excluded.key_id, state = excluded.state,"
                  " state_since_ms = excluded.state_since_ms,"
                  " registered_at_ms = excluded.registered_at_ms,"
                  " workload_cmd = excluded.workload_cmd, probe_spec = excluded.probe_spec,"
                  " hostname = excluded.hostname",
                  p, 8, NULL, NULL, NULL, err, errlen);
    if (rc)
        return rc;
    dm_instance_event ev = {.instance_id = in->instance_id,
                            .at_ms = in->registered_at_ms,
                            .silent_ms = DM_NULL,
                            .phi_milli = DM_NULL};
    memcpy(ev.what, "state", 6);
    memcpy(ev.from, "none", 5);
    memcpy(ev.to, in->state, strlen(in->state) + 1);
    memcpy(ev.reason, "registered", 11);
    return insert_event(db, &ev, err, errlen);
}

int db_instance_register(dm_db *db, const dm_instance *in, char *err, size_t errlen)
{
    int rc = instance_check(in, err, errlen);
    if (rc || !db)
        return rc ? rc : dm_fail(err, errlen, DM_E_INVALID, "no database");
    pthread_mutex_lock(&db->lock);
    if ((rc = db_begin(db, DB_TX_WRITE, err, errlen)) == 0)
        rc = db_end(db, register_tx(db, in, err, errlen), err, errlen);
    pthread_mutex_unlock(&db->lock);
    return rc;
}

typedef struct {
    dm_instance *v;
    size_t n, cap, max;
    int too_many, bad;
} inst_vec;

static int inst_row(const db_row *r, void *ctx)
{
    inst_vec *x = ctx;
    if (x->n == x->max) {
        x->too_many = 1;
        return DM_E_TOO_BIG;
    }
    if (x->n == x->cap) {
        size_t cap = x->cap ? x->cap * 2 : 16;
        dm_instance *v = realloc(x->v, cap * sizeof *v);
        if (!v)
            return -ENOMEM;
        x->v = v;
        x->cap = cap;
    }
    dm_instance *in = &x->v[x->n];
    memset(in, 0, sizeof *in);
    in->instance_id = db_row_i64(r, 0, NULL);
    in->state_since_ms = db_row_i64(r, 4, NULL);
    in->registered_at_ms = db_row_i64(r, 5, NULL);
    in->last_heartbeat_ms = db_col_i64n(r, 6);
    in->fenced = db_row_i64(r, 12, NULL) != 0; /* DB-I4 */
    if (db_text_copy(in->kind, sizeof in->kind, db_row_text(r, 1)) ||
        db_text_copy(in->key_id, sizeof in->key_id, db_row_text(r, 2)) ||
        db_text_copy(in->state, sizeof in->state, db_row_text(r, 3)) ||
        db_text_copy(in->workload, sizeof in->workload, db_row_text(r, 7)) ||
        db_text_copy(in->probe, sizeof in->probe, db_row_text(r, 8)) ||
        db_text_copy(in->workload_cmd, sizeof in->workload_cmd, db_row_text(r, 9)) ||
        db_text_copy(in->probe_spec, sizeof in->probe_spec, db_row_text(r, 10)) ||
        db_text_copy(in->hostname, sizeof in->hostname, db_row_text(r, 11))) {
        x->bad = 1;
        return DM_E_DB;
    }
    x->n++;
    return 0;
}

static int inst_query(dm_db *db, const char *sql, const db_param *p, int np, inst_vec *x, char *err,
                      size_t errlen)
{
    pthread_mutex_lock(&db->lock);
    int rc = db_x(db, sql, p, np, inst_row, x, NULL, err, errlen);
    pthread_mutex_unlock(&db->lock);
    if (rc == DM_E_TOO_BIG && x->too_many)
        rc = dm_fail(err, errlen, rc, "more than %zu instances", x->max);
    else if (rc == DM_E_DB && x->bad)
        rc = dm_fail(err, errlen, rc, "an instance row does not decode (string too long)");
    if (rc) {
        free(x->v);
        x->v = NULL;
    }
    return rc;
}

int db_instance_get(dm_db *db, int64_t id, dm_instance *ret, char *err, size_t errlen)
{
    if (!db || !ret)
        return dm_fail(err, errlen, DM_E_INVALID, "no database or result");
    inst_vec x = {.max = 1};
    db_param p[] = {db_p_i64(id)};
    int rc = inst_query(db, INSTANCE_SELECT " WHERE instance_id = $1", p, 1,
                        &x, err, errlen);
    if (rc)
        return rc;
    if (x.n == 0)
        return dm_fail(err, errlen, DM_E_NOT_FOUND, "no instance '%lld'", (long long)id);
    *ret = x.v[0];
    free(x.v);
    return 0;
}

int db_instance_list(dm_db *db, dm_instance **ret, size_t *ret_n, char *err, size_t errlen)
{
    if (!db || !ret || !ret_n)
        return dm_fail(err, errlen, DM_E_INVALID, "no database or result");
    inst_vec x = {.max = DB_INSTANCE_LIST_MAX};
    int rc = inst_query(db, INSTANCE_SELECT " ORDER BY instance_id", NULL, 0,
                        &x, err, errlen);
    if (rc)
        return rc;
    *ret = x.v;
    *ret_n = x.n;
    return 0;
}

static int event_check(const dm_instance_event *ev, char *err, size_t errlen)
{
    if (!ev || ev->instance_id < 1)
        return dm_fail(err, errlen, DM_E_INVALID, "event: bad instance id");
    if (!DB_STR_OK(ev->what) || !DB_STR_OK(ev->from) || !DB_STR_OK(ev->to) ||
        !DB_STR_OK(ev->reason))
        return dm_fail(err, errlen, DM_E_INVALID, "event: unterminated string");
    if (strcmp(ev->what, "state") != 0 && strcmp(ev->what, "workload") != 0 &&
        strcmp(ev->what, "intake") != 0)
        return dm_fail(err, errlen, DM_E_INVALID, "event: what must be state, workload or intake");
    return 0;
}

static int record_tx(dm_db *db, const dm_instance_event *ev, const char *workload,
                     const char *probe, int64_t last_hb, char *err, size_t errlen)
{
    int is_state = strcmp(ev->what, "state") == 0;
    db_param p[] = {db_p_i64(ev->instance_id), db_p_text(ev->to), db_p_i64(ev->at_ms),
                    db_p_textn(workload),      db_p_textn(probe), db_p_i64n(last_hb)};
    int64_t changed = 0;
    int rc = db_x(db,
                  is_state ? "UPDATE instances SET state = $2, state_since_ms = $3,"
                             " workload = $4, probe = $5,"
                             " last_heartbeat_ms = COALESCE($6, last_heartbeat_ms)"
                             " WHERE instance_id = $1"
                           : "UPDATE instances SET workload = $4, probe = $5,"
                             " last_heartbeat_ms = COALESCE($6, last_heartbeat_ms)"
                             " WHERE instance_id = $1 AND $2 = $2 AND $3 = $3",
                  p, 6, NULL, NULL, &changed, err, errlen);
    if (rc)
        return rc;
    if (changed == 0)
        return dm_fail(err, errlen, DM_E_NOT_FOUND, "no instance '%lld'", (long long)ev->instance_id);
    return insert_event(db, ev, err, errlen);
}

int db_instance_record(dm_db *db, const dm_instance_event *ev, const char *workload,
                       const char *probe, int64_t last_heartbeat_ms, char *err, size_t errlen)
{
    int rc = event_check(ev, err, errlen);
    if (rc || !db)
        return rc ? rc : dm_fail(err, errlen, DM_E_INVALID, "no database");
    pthread_mutex_lock(&db->lock);
    if ((rc = db_begin(db, DB_TX_WRITE, err, errlen)) == 0)
        rc = db_end(db, record_tx(db, ev, workload, probe, last_heartbeat_ms, err, errlen), err,
                    errlen);
    pthread_mutex_unlock(&db->lock);
    return rc;
}

typedef struct {
    dm_instance_event *v;
    size_t n, cap;
    int bad;
} ev_vec;

static int ev_row(const db_row *r, void *ctx)
{
    ev_vec *x = ctx;
    if (x->n == x->cap) {
        size_t cap = x->cap ? x->cap * 2 : 16;
        dm_instance_event *v = realloc(x->v, cap * sizeof *v);
        if (!v)
            return -ENOMEM;
        x->v = v;
        x->cap = cap;
    }
    dm_instance_event *ev = &x->v[x->n];
    memset(ev, 0, sizeof *ev);
    ev->instance_id = db_row_i64(r, 0, NULL);
    ev->at_ms = db_row_i64(r, 1, NULL);
    ev->silent_ms = db_col_i64n(r, 6);
    ev->phi_milli = db_col_i64n(r, 7);
    if (db_text_copy(ev->what, sizeof ev->what, db_row_text(r, 2)) ||
        db_text_copy(ev->from, sizeof ev->from, db_row_text(r, 3)) ||
        db_text_copy(ev->to, sizeof ev->to, db_row_text(r, 4)) ||
        db_text_copy(ev->reason, sizeof ev->reason, db_row_text(r, 5))) {
        x->bad = 1;
        return DM_E_DB;
    }
    x->n++;
    return 0;
}

int db_instance_events(dm_db *db, int64_t id, int limit, dm_instance_event **ret, size_t *ret_n,
                       char *err, size_t errlen)
{
    if (!db || !ret || !ret_n || limit < 1 || limit > DB_EVENT_LIST_MAX)
        return dm_fail(err, errlen, DM_E_INVALID, "events: bad arguments");
    ev_vec x = {0};
    db_param p[] = {db_p_i64(id), db_p_i64(limit)};
    pthread_mutex_lock(&db->lock);
    int rc = db_x(db,
                  "SELECT instance_id, at_ms, what, from_state, to_state, reason, silent_ms,"
                  " phi_milli FROM instance_events WHERE instance_id = $1"
                  " ORDER BY event_seq DESC LIMIT $2",
                  p, 2, ev_row, &x, NULL, err, errlen);
    pthread_mutex_unlock(&db->lock);
    if (rc == DM_E_DB && x.bad)
        rc = dm_fail(err, errlen, rc, "an instance event does not decode");
    if (rc) {
        free(x.v);
        return rc;
    }
    *ret = x.v;
    *ret_n = x.n;
    return 0;
}

/* ---- the listener's persistence (core/instance.h) ---- */

static int persist_load(void *ctx, dm_instance **ret, size_t *ret_n, char *err, size_t errlen)
{
    return db_instance_list(ctx, ret, ret_n, err, errlen);
}

static int persist_register(void *ctx, const dm_instance *in, char *err, size_t errlen)
{
    return db_instance_register(ctx, in, err, errlen);
}

static int persist_record(void *ctx, const dm_instance_event *ev, const char *workload,
                          const char *probe, int64_t last_heartbeat_ms, char *err, size_t errlen)
{
    return db_instance_record(ctx, ev, workload, probe, last_heartbeat_ms, err, errlen);
}

dm_instance_persist db_instance_persist(dm_db *db)
{
    return (dm_instance_persist){.load = persist_load,
                                 .register_one = persist_register,
                                 .record = persist_record,
                                 .ctx = db};
}

/* Reading failovers: get, list, count, and the filter they share.
 *
 * DB-Q1: get and list run one statement, failovers LEFT JOIN failover_phases,
 *     ordered by (started_at_ms DESC, failover_id DESC, seq): the rows of one
 *     failover are adjacent, and one snapshot serves the whole answer (DBF-F3).
 * DB-Q2: a filter becomes SQL text with parameters only: no value from a
 *     caller is ever written into the SQL.
 * DB-Q3: a list is capped at DB_LIST_MAX records (DBF-F4): the query asks for one
 *     more, and finding it fails with DM_E_TOO_BIG instead of truncating.
 * DB-Q4: a row that does not decode (unknown kind/state/phase, a string too
 *     long for its field) is DM_E_DB: a corrupt or newer database is
 *     reported, not guessed at. *ret is untouched on any failure. */
#include "db/db_internal.h"

#include "util/error.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void db_q_init(db_query *q, const char *sql)
{
    memset(q, 0, sizeof *q);
    db_q_add(q, "%s", sql);
}

void db_q_add(db_query *q, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(q->sql + q->len, sizeof q->sql - q->len, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= sizeof q->sql - q->len)
        q->overflow = 1;
    else
        q->len += (size_t)n;
}

int db_q_param(db_query *q, db_param v)
{
    if (q->np >= DB_Q_PARAMS) {
        q->overflow = 1;
        return 1;
    }
    q->p[q->np++] = v;
    return q->np;
}

void db_failover_filter_init(db_failover_filter *flt)
{
    memset(flt, 0, sizeof *flt);
    flt->gpu_instance_id = FO_NULL;
    flt->kind = FO_NULL;
    flt->since_ms = FO_NULL;
    flt->until_ms = FO_NULL;
    flt->test = FO_NULL;
}

int db_q_where(db_query *q, const db_failover_filter *flt, char *err, size_t errlen)
{
    if (!flt)
        return dm_fail(err, errlen, DM_E_INVALID, "no filter");
    if (flt->gpu_instance_id < 0 && flt->gpu_instance_id != FO_NULL)
        return dm_fail(err, errlen, DM_E_INVALID, "filter: bad gpu_instance_id");
    if (flt->kind != FO_NULL && (unsigned)flt->kind >= FO_KIND_COUNT)
        return dm_fail(err, errlen, DM_E_INVALID, "filter: bad kind");
    db_q_add(q, " WHERE 1 = 1");
    if (flt->gpu_instance_id != FO_NULL)
        db_q_add(q, " AND gpu_instance_id = $%d", db_q_param(q, db_p_i64(flt->gpu_instance_id)));
    if (flt->kind != FO_NULL)
        db_q_add(q, " AND kind = $%d", db_q_param(q, db_p_text(fo_kind_name(flt->kind))));
    if (flt->active_only)
        db_q_add(q, " AND state NOT IN ('completed', 'failed')");
    if (flt->test != FO_NULL)
        db_q_add(q, " AND %s", flt->test ? "test = 1" : "(test IS NULL OR test = 0)");
    if (flt->workload_id[0])
        db_q_add(q, " AND workload_id = $%d", db_q_param(q, db_p_text(flt->workload_id)));
    if (flt->since_ms != FO_NULL)
        db_q_add(q, " AND started_at_ms >= $%d", db_q_param(q, db_p_i64(flt->since_ms)));
    if (flt->until_ms != FO_NULL)
        db_q_add(q, " AND started_at_ms < $%d", db_q_param(q, db_p_i64(flt->until_ms)));
    return 0;
}

static int q_run(dm_db *db, db_query *q, db_row_fn fn, void *ctx, char *err, size_t errlen)
{
    if (q->overflow)
        return dm_fail(err, errlen, DM_E_INTERNAL, "query too long");
    return db_x(db, q->sql, q->p, q->np, fn, ctx, NULL, err, errlen);
}

/* ---- decoding rows of the DB-Q1 statement ---- */

typedef struct {
    fo_failover *v;
    size_t n, cap, max;
    int too_many;
} fo_vec;

static const char q1_select[] =
    "SELECT f.failover_id, f.gpu_instance_id, f.kind, f.user_id, f.state, f.success,"
    " f.reason, f.started_at_ms, f.finished_at_ms, f.total_time_ms, p.phase, p.status,"
    " p.started_at_ms, p.duration_ms, p.simulated, p.detail,"
    " f.workload_id, f.new_instance_id, f.trigger_kind, f.test, f.keep_instance, f.attempts,"
    " f.epoch, f.excluded_hosts, f.snapshot_id, f.snapshot_size_bytes,"
    " f.snapshot_creation_time_ms, f.snapshot_compression, f.snapshot_storage,"
    " f.restore_download_time_ms, f.restore_decompress_time_ms, f.inference_model,"
    " f.inference_ready_time_ms, f.inference_success, f.snapshot_storage_url,"
    " f.controller_down_ms, f.phase_runs, f.run_started_at_ms, f.attempt,"
    " f.restore_source"
    " FROM (SELECT * FROM failovers";
static const char q1_order[] = " ORDER BY started_at_ms DESC, failover_id DESC";
static const char q1_join[] = ") f LEFT JOIN failover_phases p ON p.failover_id = f.failover_id"
                              " ORDER BY f.started_at_ms DESC, f.failover_id DESC, p.seq";

/* The fo_real columns, from column c on (NULL text reads as ""). */
static int decode_real(const db_row *r, int c, fo_real *x)
{
    if (db_text_copy(x->workload_id, sizeof x->workload_id, db_row_text(r, c)) ||
        db_text_copy(x->trigger, sizeof x->trigger, db_row_text(r, c + 2)) ||
        db_text_copy(x->excluded_hosts, sizeof x->excluded_hosts, db_row_text(r, c + 7)) ||
        db_text_copy(x->snapshot_id, sizeof x->snapshot_id, db_row_text(r, c + 8)) ||
        db_text_copy(x->snapshot_compression, sizeof x->snapshot_compression,
                     db_row_text(r, c + 11)) ||
        db_text_copy(x->snapshot_storage, sizeof x->snapshot_storage, db_row_text(r, c + 12)) ||
        db_text_copy(x->inference_model, sizeof x->inference_model, db_row_text(r, c + 15)))
        return DM_E_DB;
    x->new_instance_id = db_col_i64n(r, c + 1);
    x->test = db_col_i64n(r, c + 3) == 1;
    x->keep = db_col_i64n(r, c + 4) == 1;
    int64_t attempts = db_col_i64n(r, c + 5);
    x->attempts = attempts > 0 && attempts < 1000 ? (int)attempts : 0;
    x->epoch = db_col_i64n(r, c + 6);
    x->snapshot_size_bytes = db_col_i64n(r, c + 9);
    x->snapshot_creation_time_ms = db_col_i64n(r, c + 10);
    x->restore_download_time_ms = db_col_i64n(r, c + 13);
    x->restore_decompress_time_ms = db_col_i64n(r, c + 14);
    x->inference_ready_time_ms = db_col_i64n(r, c + 16);
    int64_t ok = db_col_i64n(r, c + 17);
    x->inference_success = ok == FO_NULL ? FO_NULL : ok != 0;
    return 0;
}

static int decode_failover(const db_row *r, fo_failover *f)
{
    memset(f, 0, sizeof *f);
    if (db_text_copy(f->id, sizeof f->id, db_row_text(r, 0)) ||
        fo_kind_parse(db_row_text(r, 2), &f->kind) ||
        db_text_copy(f->user_id, sizeof f->user_id, db_row_text(r, 3)) ||
        fo_state_parse(db_row_text(r, 4), &f->state) ||
        db_text_copy(f->reason, sizeof f->reason, db_row_text(r, 6)))
        return DM_E_DB;
    f->gpu_instance_id = db_row_i64(r, 1, NULL);
    f->success = (int)db_col_i64n(r, 5);
    f->started_at_ms = db_row_i64(r, 7, NULL);
    f->finished_at_ms = db_col_i64n(r, 8);
    f->total_time_ms = db_col_i64n(r, 9);
    for (int i = 0; i < FO_PHASE_COUNT; i++) {
        f->phases[i].status = FO_PHASE_PENDING;
        f->phases[i].started_at_ms = FO_NULL;
        f->phases[i].duration_ms = FO_NULL;
    }
    int rc = decode_real(r, 16, &f->real);
    if (rc || (rc = db_text_copy(f->real.snapshot_storage_url, sizeof f->real.snapshot_storage_url,
                                 db_row_text(r, 34))) != 0 ||
        (rc = db_text_copy(f->real.restore_source, sizeof f->real.restore_source,
                           db_row_text(r, 39))) != 0)
        return rc;
    int64_t down = db_col_i64n(r, 35), attempt = db_col_i64n(r, 38);
    f->controller_down_ms = down == FO_NULL ? 0 : down; /* older records: none known */
    f->run_started_at_ms = db_col_i64n(r, 37);
    f->attempt = attempt > 0 && attempt < 1000 ? (int)attempt : 1;
    return db_runs_decode(db_row_text(r, 36), f);
}

static int decode_phase(const db_row *r, fo_failover *f)
{
    fo_phase ph;
    fo_phase_status st;
    if (!db_row_text(r, 10))
        return 0; /* LEFT JOIN: a failover without phase rows */
    if (fo_phase_parse(db_row_text(r, 10), &ph) || fo_phase_status_parse(db_row_text(r, 11), &st))
        return DM_E_DB;
    fo_phase_rec *p = &f->phases[ph];
    p->status = st;
    p->started_at_ms = db_col_i64n(r, 12);
    p->duration_ms = db_col_i64n(r, 13);
    p->simulated = db_row_i64(r, 14, NULL) != 0;
    return db_text_copy(p->detail, sizeof p->detail, db_row_text(r, 15));
}

static int vec_grow(fo_vec *x)
{
    if (x->n < x->cap)
        return 0;
    size_t cap = x->cap ? x->cap * 2 : 16;
    if (cap > x->max)
        cap = x->max;
    fo_failover *v = realloc(x->v, cap * sizeof *v);
    if (!v)
        return -ENOMEM;
    x->v = v;
    x->cap = cap;
    return 0;
}

static int q1_row(const db_row *r, void *ctx)
{
    fo_vec *x = ctx;
    const char *id = db_row_text(r, 0);
    fo_failover *f = x->n ? &x->v[x->n - 1] : NULL;
    if (!id)
        return DM_E_DB;
    if (!f || strcmp(f->id, id) != 0) {
        if (x->n == x->max) {
            x->too_many = 1; /* DB-Q3 */
            return DM_E_TOO_BIG;
        }
        int rc = vec_grow(x);
        if (rc)
            return rc;
        f = &x->v[x->n++];
        if ((rc = decode_failover(r, f)) != 0)
            return rc;
    }
    return decode_phase(r, f);
}

/* Runs q (a DB-Q1 statement) into x under the lock; maps callback errors. */
static int q1_run(dm_db *db, db_query *q, fo_vec *x, char *err, size_t errlen)
{
    pthread_mutex_lock(&db->lock);
    int rc = q_run(db, q, q1_row, x, err, errlen);
    pthread_mutex_unlock(&db->lock);
    if (rc == DM_E_TOO_BIG && x->too_many)
        return dm_fail(err, errlen, rc, "more than %d failovers match; use a limit", DB_LIST_MAX);
    if (rc == -ENOMEM)
        return dm_fail(err, errlen, rc, "out of memory");
    if (rc == DM_E_DB && x->n)
        return dm_fail(err, errlen, rc, "failover '%s': stored record does not decode",
                       x->v[x->n - 1].id);
    return rc;
}

int db_failover_get(dm_db *db, const char *id, fo_failover *ret, char *err, size_t errlen)
{
    if (!db || !ret || !id || !*id)
        return dm_fail(err, errlen, DM_E_INVALID, "no database, id or result");
    if (strlen(id) >= FO_ID_MAX)
        return dm_fail(err, errlen, DM_E_NOT_FOUND, "no failover with an id that long");
    fo_failover one;
    fo_vec x = {&one, 0, 1, 1, 0};
    db_query q;
    db_q_init(&q, q1_select);
    db_q_add(&q, " WHERE failover_id = $%d", db_q_param(&q, db_p_text(id)));
    db_q_add(&q, "%s", q1_join);
    int rc = q1_run(db, &q, &x, err, errlen);
    if (rc)
        return rc;
    if (x.n == 0)
        return dm_fail(err, errlen, DM_E_NOT_FOUND, "no failover '%s'", id);
    *ret = one;
    return 0;
}

static int add_limit(db_query *q, const db_failover_filter *flt, char *err, size_t errlen)
{
    if (flt->offset < 0)
        return dm_fail(err, errlen, DM_E_INVALID, "filter: offset < 0");
    int64_t limit = flt->limit > 0 && flt->limit <= DB_LIST_MAX ? flt->limit : DB_LIST_MAX + 1;
    db_q_add(q, " LIMIT $%d", db_q_param(q, db_p_i64(limit)));
    db_q_add(q, " OFFSET $%d", db_q_param(q, db_p_i64(flt->offset)));
    return 0;
}

int db_failover_list(dm_db *db, const db_failover_filter *flt, fo_failover **ret, size_t *ret_n,
                     char *err, size_t errlen)
{
    if (!db || !ret || !ret_n)
        return dm_fail(err, errlen, DM_E_INVALID, "no database or result");
    fo_vec x = {NULL, 0, 0, DB_LIST_MAX, 0};
    db_query q;
    db_q_init(&q, q1_select);
    int rc = db_q_where(&q, flt, err, errlen);
    if (rc)
        return rc;
    db_q_add(&q, "%s", q1_order);
    if ((rc = add_limit(&q, flt, err, errlen)) != 0)
        return rc;
    db_q_add(&q, "%s", q1_join);
    if ((rc = q1_run(db, &q, &x, err, errlen)) != 0) {
        free(x.v);
        return rc;
    }
    *ret = x.v;
    *ret_n = x.n;
    return 0;
}

static int count_row(const db_row *r, void *ctx)
{
    *(int64_t *)ctx = db_row_i64(r, 0, NULL);
    return 0;
}

int db_failover_count(dm_db *db, const db_failover_filter *flt, int64_t *ret, char *err,
                      size_t errlen)
{
    if (!db || !ret)
        return dm_fail(err, errlen, DM_E_INVALID, "no database or result");
    int64_t n = 0;
    db_query q;
    db_q_init(&q, "SELECT COUNT(*) FROM failovers");
    int rc = db_q_where(&q, flt, err, errlen);
    if (rc)
        return rc;
    pthread_mutex_lock(&db->lock);
    rc = q_run(db, &q, count_row, &n, err, errlen);
    pthread_mutex_unlock(&db->lock);
    if (rc == 0)
        *ret = n;
    return rc;
}

/* Alert destinations and the delivery queue (see db_alert.h for DB-DA1 to DB-DA4). */
#include "db/db_alert.h"

#include "db/db_internal.h"
#include "util/error.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ALERT_COLS                                                                                 \
    "a.name, a.kind, a.url_sealed, a.url_shown, a.secret_sealed, a.notify_on, a.created_at_ms,"    \
    " (SELECT COUNT(*) FROM alert_deliveries d WHERE d.alert_name = a.name"                        \
    "  AND d.state = 'queued'),"                                                                   \
    " (SELECT COUNT(*) FROM alert_deliveries d WHERE d.alert_name = a.name"                        \
    "  AND d.state = 'delivered'),"                                                                \
    " (SELECT COUNT(*) FROM alert_deliveries d WHERE d.alert_name = a.name"                        \
    "  AND d.state IN ('refused', 'expired')),"                                                    \
    " (SELECT MAX(d.done_at_ms) FROM alert_deliveries d WHERE d.alert_name = a.name"               \
    "  AND d.state = 'delivered'),"                                                                \
    " (SELECT d.last_error FROM alert_deliveries d WHERE d.alert_name = a.name"                    \
    "  AND d.last_error IS NOT NULL ORDER BY d.queued_at_ms DESC LIMIT 1)"

#define DELIVERY_COLS                                                                              \
    "delivery_key, alert_name, event_key, event_type, body, state, attempts, next_at_ms,"          \
    " queued_at_ms, last_status, last_error, done_at_ms"

void db_alert_done(db_alert *a)
{
    if (!a)
        return;
    free(a->url_sealed);
    free(a->secret_sealed);
    a->url_sealed = a->secret_sealed = NULL;
}

void db_delivery_done(db_delivery *d)
{
    if (!d)
        return;
    free(d->body);
    d->body = NULL;
}

static char *dup_or_null(const char *s, int *bad)
{
    if (!s)
        return NULL;
    char *d = strdup(s);
    if (!d)
        *bad = 1;
    return d;
}

/* A vector of rows of either type (elem bytes each). */
typedef struct {
    void *v;
    size_t n, cap, max, elem;
    int bad;
} row_vec;

static void *vec_next(row_vec *x)
{
    if (x->n == x->max)
        return NULL;
    if (x->n == x->cap) {
        size_t cap = x->cap ? x->cap * 2 : 8;
        void *v = realloc(x->v, cap * x->elem);
        if (!v)
            return NULL;
        x->v = v;
        x->cap = cap;
    }
    void *e = (char *)x->v + x->n * x->elem;
    memset(e, 0, x->elem);
    return e;
}

static int alert_row(const db_row *r, void *ctx)
{
    row_vec *x = ctx;
    db_alert *a = vec_next(x);
    if (!a)
        return x->n == x->max ? DM_E_TOO_BIG : -ENOMEM;
    int bad = db_text_copy(a->name, sizeof a->name, db_row_text(r, 0)) ||
              db_text_copy(a->kind, sizeof a->kind, db_row_text(r, 1)) ||
              db_text_copy(a->url_shown, sizeof a->url_shown, db_row_text(r, 3)) ||
              db_text_copy(a->notify_on, sizeof a->notify_on, db_row_text(r, 5));
    int oom = 0;
    a->url_sealed = dup_or_null(db_row_text(r, 2), &oom);
    a->secret_sealed = dup_or_null(db_row_text(r, 4), &oom);
    a->created_at_ms = db_row_i64(r, 6, NULL);
    a->queued = db_row_i64(r, 7, NULL);
    a->delivered = db_row_i64(r, 8, NULL);
    a->given_up = db_row_i64(r, 9, NULL);
    a->last_delivered_ms = db_col_i64n(r, 10);
    const char *le = db_row_text(r, 11);
    snprintf(a->last_error, sizeof a->last_error, "%s", le ? le : "");
    x->n++; /* owned by the vector now, freed with it */
    if (bad || !a->url_sealed) {
        x->bad = 1;
        return DM_E_DB;
    }
    return oom ? -ENOMEM : 0;
}

static void free_alerts(db_alert *v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        db_alert_done(&v[i]);
    free(v);
}

static int alert_query(dm_db *db, const char *where, const db_param *p, int np, row_vec *x,
                       char *err, size_t errlen)
{
    char sql[1536];
    snprintf(sql, sizeof sql, "SELECT " ALERT_COLS " FROM alerts a%s ORDER BY a.name", where);
    pthread_mutex_lock(&db->lock);
    int rc = db_x(db, sql, p, np, alert_row, x, NULL, err, errlen);
    pthread_mutex_unlock(&db->lock);
    if (rc == DM_E_DB && x->bad)
        rc = dm_fail(err, errlen, rc, "an alert row does not decode");
    if (rc) {
        free_alerts(x->v, x->n);
        x->v = NULL;
        x->n = 0;
    }
    return rc;
}

int db_alert_add(dm_db *db, const db_alert *a, char *err, size_t errlen)
{
    if (!db || !a || !DB_STR_OK(a->name) || !a->name[0] || !a->url_sealed)
        return dm_fail(err, errlen, DM_E_INVALID, "no database or alert");
    db_param p[] = {db_p_text(a->name),          db_p_text(a->kind),
                    db_p_text(a->url_sealed),    db_p_text(a->url_shown),
                    db_p_text(a->secret_sealed), db_p_text(a->notify_on),
                    db_p_i64(a->created_at_ms)};
    pthread_mutex_lock(&db->lock);
    int rc = db_x(db,
                  "INSERT INTO alerts (name, kind, url_sealed, url_shown, secret_sealed, notify_on,"
                  " created_at_ms) VALUES ($1, $2, $3, $4, $5, $6, $7)",
                  p, 7, NULL, NULL, NULL, err, errlen);
    pthread_mutex_unlock(&db->lock);
    if (rc == DM_E_CONFLICT)
        rc = dm_fail(err, errlen, rc, "an alert named '%s' exists", a->name);
    return rc;
}

int db_alert_get(dm_db *db, const char *name, db_alert *ret, char *err, size_t errlen)
{
    if (!db || !name || !ret)
        return dm_fail(err, errlen, DM_E_INVALID, "no database or name");
    row_vec x = {.max = 1, .elem = sizeof(db_alert)};
    db_param p[] = {db_p_text(name)};
    int rc = alert_query(db, " WHERE a.name = $1", p, 1, &x, err, errlen);
    if (rc)
        return rc;
    if (x.n == 0)
        return dm_fail(err, errlen, DM_E_NOT_FOUND, "no alert '%.64s'", name);
    *ret = *(db_alert *)x.v;
    free(x.v);
    return 0;
}

int db_alert_list(dm_db *db, db_alert **ret, size_t *ret_n, char *err, size_t errlen)
{
    if (!db || !ret || !ret_n)
        return dm_fail(err, errlen, DM_E_INVALID, "no database or result");
    row_vec x = {.max = DB_ALERT_LIST_MAX, .elem = sizeof(db_alert)};
    int rc = alert_query(db, "", NULL, 0, &x, err, errlen);
    if (rc)
        return rc;
    *ret = x.v;
    *ret_n = x.n;
    return 0;
}

int db_alert_remove(dm_db *db, const char *name, char *err, size_t errlen)
{
    if (!db || !name)
        return dm_fail(err, errlen, DM_E_INVALID, "no database or name");
    db_param p[] = {db_p_text(name)};
    int64_t n = 0;
    pthread_mutex_lock(&db->lock);
    int rc = db_begin(db, DB_TX_WRITE, err, errlen);
    if (rc == 0)
        rc = db_x(db, "DELETE FROM alert_deliveries WHERE alert_name = $1", p, 1, NULL, NULL, NULL,
                  err, errlen);
    if (rc == 0)
        rc = db_x(db, "DELETE FROM alerts WHERE name = $1", p, 1, NULL, NULL, &n, err, errlen);
    if (rc == 0 && n == 0)
        rc = dm_fail(err, errlen, DM_E_NOT_FOUND, "no alert '%.64s'", name);
    rc = db_end(db, rc, err, errlen); /* DB-DA4 */
    pthread_mutex_unlock(&db->lock);
    return rc;
}

static int count_row(const db_row *r, void *ctx)
{
    *(int64_t *)ctx = db_row_i64(r, 0, NULL);
    return 0;
}

int db_alert_next_name(dm_db *db, const char *kind, char *out, size_t outlen, char *err,
                       size_t errlen)
{
    for (int k = 1; k <= 1000; k++) {
        snprintf(out, outlen, "%s-%d", kind, k);
        db_param p[] = {db_p_text(out)};
        int64_t n = 0;
        pthread_mutex_lock(&db->lock);
        int rc = db_x(db, "SELECT COUNT(*) FROM alerts WHERE name = $1", p, 1, count_row, &n, NULL,
                      err, errlen);
        pthread_mutex_unlock(&db->lock);
        if (rc)
            return rc;
        if (n == 0)
            return 0;
    }
    return dm_fail(err, errlen, DM_E_TOO_BIG, "too many alerts of kind %s", kind);
}

/* ---- the queue ---- */

int db_delivery_enqueue(dm_db *db, const db_delivery *d, int *ret_inserted, char *err,
                        size_t errlen)
{
    if (!db || !d || !d->body || !DB_STR_OK(d->delivery_key) || !d->delivery_key[0])
        return dm_fail(err, errlen, DM_E_INVALID, "no database or delivery");
    db_param p[] = {db_p_text(d->delivery_key), db_p_text(d->alert_name), db_p_text(d->event_key),
                    db_p_text(d->event_type),   db_p_text(d->body),       db_p_i64(d->next_at_ms),
                    db_p_i64(d->queued_at_ms)};
    int64_t n = 0;
    pthread_mutex_lock(&db->lock);
    int rc = db_x(db,
                  "INSERT INTO alert_deliveries (delivery_key, alert_name, event_key, event_type,"
                  " body, state, attempts, next_at_ms, queued_at_ms)"
                  " VALUES ($1, $2, $3, $4, $5, 'queued', 0, $6, $7)"
                  " ON CONFLICT (delivery_key) DO NOTHING",
                  p, 7, NULL, NULL, &n, err, errlen);
    pthread_mutex_unlock(&db->lock);
    if (rc == 0 && ret_inserted)
        *ret_inserted = n > 0;
    return rc;
}

static int delivery_row(const db_row *r, void *ctx)
{
    row_vec *x = ctx;
    db_delivery *d = vec_next(x);
    if (!d)
        return x->n == x->max ? DM_E_TOO_BIG : -ENOMEM;
    int bad = db_text_copy(d->delivery_key, sizeof d->delivery_key, db_row_text(r, 0)) ||
              db_text_copy(d->alert_name, sizeof d->alert_name, db_row_text(r, 1)) ||
              db_text_copy(d->event_key, sizeof d->event_key, db_row_text(r, 2)) ||
              db_text_copy(d->event_type, sizeof d->event_type, db_row_text(r, 3)) ||
              db_text_copy(d->state, sizeof d->state, db_row_text(r, 5));
    int oom = 0;
    d->body = dup_or_null(db_row_text(r, 4), &oom);
    d->attempts = db_row_i64(r, 6, NULL);
    d->next_at_ms = db_row_i64(r, 7, NULL);
    d->queued_at_ms = db_row_i64(r, 8, NULL);
    d->last_status = db_col_i64n(r, 9);
    const char *le = db_row_text(r, 10);
    snprintf(d->last_error, sizeof d->last_error, "%s", le ? le : "");
    d->done_at_ms = db_col_i64n(r, 11);
    x->n++;
    if (bad || !d->body) {
        x->bad = 1;
        return oom ? -ENOMEM : DM_E_DB;
    }
    return 0;
}

static int delivery_query(dm_db *db, const char *sql, const db_param *p, int np, int limit,
                          db_delivery **ret, size_t *ret_n, char *err, size_t errlen)
{
    row_vec x = {.max = limit > 0 ? (size_t)limit : 1, .elem = sizeof(db_delivery)};
    pthread_mutex_lock(&db->lock);
    int rc = db_x(db, sql, p, np, delivery_row, &x, NULL, err, errlen);
    pthread_mutex_unlock(&db->lock);
    if (rc == DM_E_DB && x.bad)
        rc = dm_fail(err, errlen, rc, "a delivery row does not decode");
    if (rc) {
        for (size_t i = 0; i < x.n; i++)
            db_delivery_done(&((db_delivery *)x.v)[i]);
        free(x.v);
        return rc;
    }
    *ret = x.v;
    *ret_n = x.n;
    return 0;
}

int db_delivery_due(dm_db *db, int64_t now_ms, int limit, db_delivery **ret, size_t *ret_n,
                    char *err, size_t errlen)
{
    if (!db || !ret || !ret_n || limit < 1 || limit > DB_ALERT_LIST_MAX)
        return dm_fail(err, errlen, DM_E_INVALID, "no database, result or limit");
    db_param p[] = {db_p_i64(now_ms), db_p_i64(limit)};
    return delivery_query(db,
                          "SELECT " DELIVERY_COLS " FROM alert_deliveries WHERE state = 'queued'"
                          " AND next_at_ms <= $1 ORDER BY next_at_ms, queued_at_ms, delivery_key"
                          " LIMIT $2",
                          p, 2, limit, ret, ret_n, err, errlen);
}

int db_delivery_list(dm_db *db, const char *alert_name, int limit, db_delivery **ret, size_t *ret_n,
                     char *err, size_t errlen)
{
    if (!db || !alert_name || !ret || !ret_n || limit < 1 || limit > DB_ALERT_LIST_MAX)
        return dm_fail(err, errlen, DM_E_INVALID, "no database, name, result or limit");
    db_param p[] = {db_p_text(alert_name), db_p_i64(limit)};
    return delivery_query(db,
                          "SELECT " DELIVERY_COLS " FROM alert_deliveries WHERE alert_name = $1"
                          " ORDER BY queued_at_ms DESC, delivery_key LIMIT $2",
                          p, 2, limit, ret, ret_n, err, errlen);
}

static int next_row(const db_row *r, void *ctx)
{
    int null = 0;
    int64_t v = db_row_i64(r, 0, &null);
    if (!null)
        *(int64_t *)ctx = v;
    return 0;
}

int db_delivery_next_at(dm_db *db, int64_t *ret_ms, char *err, size_t errlen)
{
    int64_t v = INT64_MIN;
    pthread_mutex_lock(&db->lock);
    int rc = db_x(db, "SELECT MIN(next_at_ms) FROM alert_deliveries WHERE state = 'queued'", NULL,
                  0, next_row, &v, NULL, err, errlen);
    pthread_mutex_unlock(&db->lock);
    if (rc)
        return rc;
    if (v == INT64_MIN)
        return DM_E_NOT_FOUND;
    *ret_ms = v;
    return 0;
}

int db_delivery_retry(dm_db *db, const char *key, int64_t attempts, int64_t next_at_ms,
                      int64_t status, const char *error, char *err, size_t errlen)
{
    db_param p[] = {db_p_i64(attempts), db_p_i64(next_at_ms), db_p_i64n(status), db_p_textn(error),
                    db_p_text(key)};
    pthread_mutex_lock(&db->lock);
    int rc = db_x(db,
                  "UPDATE alert_deliveries SET attempts = $1, next_at_ms = $2, last_status = $3,"
                  " last_error = $4 WHERE delivery_key = $5 AND state = 'queued'",
                  p, 5, NULL, NULL, NULL, err, errlen);
    pthread_mutex_unlock(&db->lock);
    return rc;
}

int db_delivery_finish(dm_db *db, const char *key, const char *state, int64_t attempts,
                       int64_t status, const char *error, int64_t done_at_ms, char *err,
                       size_t errlen)
{
    if (strcmp(state, "delivered") != 0 && strcmp(state, "refused") != 0 &&
        strcmp(state, "expired") != 0)
        return dm_fail(err, errlen, DM_E_INVALID, "a delivery ends delivered, refused or expired");
    db_param p[] = {db_p_text(state),  db_p_i64(attempts),   db_p_i64n(status),
                    db_p_textn(error), db_p_i64(done_at_ms), db_p_text(key)};
    pthread_mutex_lock(&db->lock);
    int rc = db_x(db,
                  "UPDATE alert_deliveries SET state = $1, attempts = $2, last_status = $3,"
                  " last_error = $4, done_at_ms = $5 WHERE delivery_key = $6 AND state = 'queued'",
                  p, 6, NULL, NULL, NULL, err, errlen);
    pthread_mutex_unlock(&db->lock);
    return rc;
}

int db_delivery_prune(dm_db *db, int64_t before_ms, int64_t *ret_n, char *err, size_t errlen)
{
    db_param p[] = {db_p_i64(before_ms)};
    int64_t n = 0;
    pthread_mutex_lock(&db->lock);
    int rc = db_x(db, "DELETE FROM alert_deliveries WHERE state <> 'queued' AND done_at_ms < $1", p,
                  1, NULL, NULL, &n, err, errlen);
    pthread_mutex_unlock(&db->lock);
    if (rc == 0 && ret_n)
        *ret_n = n;
    return rc;
}

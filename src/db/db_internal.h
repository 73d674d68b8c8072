/* Internals shared by the files of src/db/ (not for other modules).
 *
 * A dm_db is a back end (ops + state) behind one mutex (DB-D1 of db.h). Every
 * public function takes the mutex, runs its statements (in a transaction when
 * there are several, or when it writes) and releases it; the helpers below
 * are called with the mutex held. */
#ifndef DUMONT_DB_DB_INTERNAL_H
#define DUMONT_DB_DB_INTERNAL_H

#include "db/db.h"
#include "db/db_backend.h"
#include "util/null.h"

#include <pthread.h>
#include <stdatomic.h>
#include <string.h>

struct dm_db {
    pthread_mutex_t lock; /* DB-D1 */
    const db_backend_ops *ops;
    void *state;
    atomic_int fenced; /* DB-D6 */
};

int db_fenced_fail(char *err, size_t errlen); /* DB-D6's error */

static inline int db_x(dm_db *db, const char *sql, const db_param *p, int np, db_row_fn fn,
                       void *ctx, int64_t *ret_changes, char *err, size_t errlen)
{
    if (atomic_load_explicit(&db->fenced, memory_order_acquire))
        return db_fenced_fail(err, errlen);
    return db->ops->exec(db->state, sql, p, np, fn, ctx, ret_changes, err, errlen);
}

static inline int db_begin(dm_db *db, db_tx_kind kind, char *err, size_t errlen)
{
    if (atomic_load_explicit(&db->fenced, memory_order_acquire))
        return db_fenced_fail(err, errlen);
    return db->ops->begin(db->state, kind, err, errlen);
}

/* Commits when rc == 0, else rolls back; returns rc or the commit's error. */
static inline int db_end(dm_db *db, int rc, char *err, size_t errlen)
{
    if (rc == 0)
        return db->ops->end(db->state, 1, err, errlen);
    db->ops->end(db->state, 0, NULL, 0);
    return rc;
}

/* A nullable integer column: DM_NULL for SQL NULL. */
static inline int64_t db_col_i64n(const db_row *r, int col)
{
    int null = 0;
    int64_t v = db_row_i64(r, col, &null);
    return null ? DM_NULL : v;
}

/* DB-O3 of db.c: the fixed-size string field holds its terminating NUL. */
#define DB_STR_OK(field) (memchr((field), '\0', sizeof(field)) != NULL)

/* Copies a column's text (NULL reads as "", DB-O2) into dst; DM_E_DB when it
 * does not fit (DB-O3). */
int db_text_copy(char *dst, size_t cap, const char *src);

/* DBF-F5 of db_failover.c: a failover's runs (core/failover.h FO-I5) as the
 * text of the column phase_runs, and back. encode: malloc'd (free()), NULL
 * when out of memory; decode: DM_E_DB on a line that does not parse. */
char *db_runs_encode(const fo_failover *f);
int db_runs_decode(const char *text, fo_failover *f);

/* A query under construction: SQL text plus its parameters ($1..$np). */
#define DB_Q_SQL_MAX 2048
#define DB_Q_PARAMS  8
typedef struct {
    char sql[DB_Q_SQL_MAX];
    size_t len;
    int overflow; /* the text or the parameters did not fit: DM_E_INTERNAL */
    db_param p[DB_Q_PARAMS];
    int np;
} db_query;

void db_q_init(db_query *q, const char *sql);
void db_q_add(db_query *q, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Appends param v; returns its number N for "$N". */
int db_q_param(db_query *q, db_param v);
/* Checks flt and appends " WHERE ..." for its gpu/kind/active/since/until
 * (limit and offset are the caller's). Returns 0 or DM_E_INVALID. */
int db_q_where(db_query *q, const db_failover_filter *flt, char *err, size_t errlen);

/* migrate.c: brings the schema to the newest version (called by db_open). */
int db_migrate(dm_db *db, char *err, size_t errlen);
/* The newest migration this program knows. */
int db_migrate_latest(void);

/* db_url.c: replaces, in msg, every occurrence of a password that url holds
 * (userinfo or a password= query parameter, raw and percent-decoded) with
 * "***". */
void db_url_scrub(const char *url, char *msg, size_t msglen);

#endif

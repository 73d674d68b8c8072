/* The database back-end interface: what SQLite and PostgreSQL each implement.
 *
 * Like SQLite's VFS, a back end is a constant table of function pointers
 * (db_backend_ops) plus an opaque state pointer made by its open(). db.c
 * holds every query, written once, and calls only these functions; it never
 * tests which back end it holds.
 *
 * SQL. Statements use PostgreSQL's `$1, $2, ...` placeholders; param k
 * (1-based) binds params[k-1]. A placeholder may repeat and appear in any
 * order: SQLite reads `$N` as a *named* parameter, so its back end binds each
 * of the statement's parameters by its name, not by its position. Use SQL
 * that both engines accept (BIGINT, TEXT, ON CONFLICT ... DO UPDATE, partial
 * indexes, LIMIT/OFFSET) and one statement per call.
 *
 * DB-B1: every parameter carries its type, even when NULL, so that PostgreSQL
 *     never has to guess one (a multi-row VALUES list of untyped NULLs would
 *     otherwise be resolved as text and refused by a BIGINT column).
 * DB-B2: a statement naming a parameter that is not given is an error on both
 *     back ends; one given but not named is an error on SQLite (PostgreSQL
 *     takes it, as its type is stated), so the SQLite tests, which always
 *     run, catch a miscounted parameter list.
 * DB-B3: errors map to DM_E_CONFLICT for a unique/primary-key violation
 *     (SQLite SQLITE_CONSTRAINT_UNIQUE/PRIMARYKEY, PostgreSQL SQLSTATE 23505)
 *     and DM_E_DB for everything else; detail goes into err and never holds
 *     a password.
 * DB-B4: a row is valid only inside the row callback. Columns read with
 *     db_row_i64() must be integer expressions, those read with db_row_text()
 *     text ones.
 * DB-B5: begin(DB_TX_MIGRATE) serialises migrations between processes sharing
 *     the database (SQLite: BEGIN IMMEDIATE; PostgreSQL: a transaction-scoped
 *     advisory lock taken before anything is read).
 * DB-B6: the controller lock (DB-D5 of db.h) is the back end's: ctl_lock() takes
 *     it or fails with DM_E_BUSY naming its holder; ctl_check() tells
 *     whether it is still held, and may be called from any thread, apart
 *     from the state's connection (it never touches it).
 * DB-B7: ctl_relock() (optional) takes a lost controller lock back.
 * Back ends are not thread-safe; db.c serialises calls (DB-D1 of db.h). */
#ifndef DUMONT_DB_DB_BACKEND_H
#define DUMONT_DB_DB_BACKEND_H

#include <stddef.h>
#include <stdint.h>

typedef enum { DB_T_I64, DB_T_TEXT } db_type;

typedef struct {
    db_type type;
    int is_null;   /* DB-B1: a NULL still has a type */
    int64_t i;     /* DB_T_I64 */
    const char *s; /* DB_T_TEXT, borrowed for the call */
} db_param;

typedef enum {
    DB_TX_READ,    /* a consistent snapshot for several statements */
    DB_TX_WRITE,   /* takes the write lock at once (SQLite: IMMEDIATE) */
    DB_TX_MIGRATE, /* DB-B5 */
} db_tx_kind;

typedef struct db_backend_ops db_backend_ops;

typedef struct {
    const db_backend_ops *ops;
    void *impl; /* back-end row handle */
} db_row;

/* Called once per result row; a non-zero return stops the statement and is
 * returned by exec(). */
typedef int (*db_row_fn)(const db_row *row, void *ctx);

struct db_backend_ops {
    const char *name; /* "sqlite" | "postgresql" */
    /* target: a file path (SQLite) or a postgresql:// URL. */
    int (*open)(const char *target, void **ret_state, char *err, size_t errlen);
    void (*close)(void *state); /* accepts NULL */
    /* Runs one statement. fn may be NULL (rows are then discarded);
     * ret_changes (may be NULL) gets the rows inserted/updated/deleted. */
    int (*exec)(void *state, const char *sql, const db_param *params, int nparams, db_row_fn fn,
                void *ctx, int64_t *ret_changes, char *err, size_t errlen);
    int (*begin)(void *state, db_tx_kind kind, char *err, size_t errlen);
    /* commit != 0: COMMIT, else ROLLBACK (best effort; never fails then). */
    int (*end)(void *state, int commit, char *err, size_t errlen);
    int64_t (*col_i64)(void *row, int col, int *ret_is_null);
    const char *(*col_text)(void *row, int col); /* NULL for SQL NULL */
    /* DB-B6. identity: "host=H pid=P since=T", shown to those refused. */
    int (*ctl_lock)(void *state, const char *identity, void **ret_lock, char *err, size_t errlen);
    int (*ctl_check)(void *lock, char *err, size_t errlen);
    void (*ctl_unlock)(void *lock); /* accepts NULL */
    /* DB-B7: takes a lost lock back for the same holder identity (old is
     * released); DM_E_BUSY: another holds it; DM_E_CONFLICT: another held it
     * meanwhile; DM_E_DB: the database cannot be reached now. Called without
     * the handle's mutex: it reads only the state's settings, never its
     * connection. NULL: a lost lock is lost for good. */
    int (*ctl_relock)(void *state, const char *identity, void *old, void **ret_lock, char *err,
                      size_t errlen);
};

extern const db_backend_ops db_sqlite_ops;
extern const db_backend_ops db_pg_ops;

static inline int64_t db_row_i64(const db_row *r, int col, int *ret_is_null)
{
    return r->ops->col_i64(r->impl, col, ret_is_null);
}

static inline const char *db_row_text(const db_row *r, int col)
{
    return r->ops->col_text(r->impl, col);
}

/* Parameter constructors. The *n variants map "no value" to SQL NULL:
 * DM_NULL (-1) for integers, NULL or "" for text. */
static inline db_param db_p_i64(int64_t v)
{
    db_param p = {DB_T_I64, 0, v, NULL};
    return p;
}

static inline db_param db_p_i64n(int64_t v)
{
    db_param p = {DB_T_I64, v == -1, v, NULL};
    return p;
}

static inline db_param db_p_text(const char *s)
{
    db_param p = {DB_T_TEXT, s == NULL, 0, s};
    return p;
}

static inline db_param db_p_textn(const char *s)
{
    db_param p = {DB_T_TEXT, s == NULL || *s == '\0', 0, s};
    return p;
}

#endif

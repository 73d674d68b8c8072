/* The PostgreSQL back end, over libpq (see db_backend.h for DB-B1 to DB-B5).
 *
 * One connection per dm_db. Each statement is one PQexecParams() round trip
 * (Parse/Bind/Execute in one message batch): parameters go as text with
 * their types stated (INT8 / TEXT, DB-B1), and results come back as text too.
 * Binary results were measured *slower* (a report's 100,000 rows: 78 ms
 * against 54 ms): the server's int8send allocates per value, where int8out
 * writes a few digits; parsing them here costs ~1 ms.
 *
 * DB-P1: an error message never holds a password: the URL is shown redacted
 *     (db_url_redact) and libpq's connection message is scrubbed of the
 *     URL's passwords (db_url_scrub).
 * DB-P2: server NOTICEs (e.g. "relation already exists, skipping") are dropped;
 *     the library prints nothing.
 * DB-P3: a connection found broken outside a transaction is reset once before
 *     the next statement, so a long-lived server survives a PostgreSQL
 *     restart; inside a transaction the error goes to the caller, who rolls
 *     back.
 * DB-P4: result columns are checked before the first row reaches the callback:
 *     integers must be int2/int4/int8, text must be text/varchar/name.
 * DB-P5: rows are read in single-row mode: the client holds one row at a time,
 *     whatever the result's size. A whole 100,000-row PGresult is ~22 MB,
 *     which glibc hands back to the kernel at PQclear() and faults in again
 *     on the next report: measured, single-row mode made a report's scan
 *     ~2x faster on a 2-core VM, and its memory is bounded.
 * DB-P6: a statement's results are always read to the end (PQgetResult() until
 *     NULL), also after an error or a callback's stop, so the connection is
 *     ready for the next statement.
 * DB-P7: the controller lock (DB-B6) is pg_try_advisory_lock(PG_CTL_LOCK) on a
 *     connection of its own, never reset (DB-P3 does not apply): a new session
 *     would not hold the lock, and another controller may have it by then.
 *     Advisory locks belong to one database, so the key needs nothing of the
 *     URL. The holder writes its identity into controller_lock with its
 *     backend pid; a refused taker joins pg_locks to that row, so a row a
 *     dead holder left never names the wrong process. The check is a
 *     `SELECT 1` on that connection answered within PG_CTL_CHECK_MS: a
 *     terminated session, a closed socket or a silent server is a lost
 *     lock (fail closed).
 * DB-P8: a lost lock can be taken back (ctl_relock, docs/security.md "One
 *     controller"): on a new session, only when no one holds it now (else
 *     DM_E_BUSY naming the holder) and the controller_lock row still names
 *     this holder (else DM_E_CONFLICT: another controller held the database
 *     meanwhile, and what this one knows is stale). */
#include "db/db_backend.h"
#include "db/db_internal.h"

#include "util/clock.h"
#include "util/error.h"

#include <errno.h>
#include <inttypes.h>
#include <libpq-fe.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Type OIDs (server/catalog/pg_type_d.h, stable across versions). */
#define OID_BOOL    16
#define OID_NAME    19
#define OID_INT8    20
#define OID_INT2    21
#define OID_INT4    23
#define OID_TEXT    25
#define OID_VARCHAR 1043

#define PG_MAX_PARAMS   65535            /* protocol limit */
#define PG_MIGRATE_LOCK 0x64756d6f6e74LL /* "dumont": the advisory lock key (DB-B5) */
#define PG_NUM_MAX      24               /* "-9223372036854775808" + NUL */
#define PG_CTL_HI       0x64756d6fLL     /* "dumo" */
#define PG_CTL_LO       0x6374726cLL     /* "ctrl" */
#define PG_CTL_LOCK     ((PG_CTL_HI << 32) | PG_CTL_LO) /* DB-P7 */
#define PG_CTL_CHECK_MS 5000

typedef struct {
    PGconn *conn;
    int in_tx;
    int checked;  /* the running statement's columns passed DB-P4 */
    char *target; /* the URL, for the lock's own connection (DB-P7) */
} pg_state;

typedef struct {
    const PGresult *res;
    int row;
} pg_row;

static void pg_quiet(void *arg, const char *message)
{
    (void)arg;
    (void)message; /* DB-P2 */
}

/* Copies libpq's message without its trailing newline. */
static int pg_fail(int code, const char *what, const char *msg, char *err, size_t errlen)
{
    int n = (int)strcspn(msg ? msg : "", "\n");
    return dm_fail(err, errlen, code, "postgresql: %s: %.*s", what, n, msg ? msg : "");
}

static int pg_result_error(const PGresult *res, const char *what, PGconn *conn, char *err,
                           size_t errlen)
{
    const char *state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
    int code = state && strcmp(state, "23505") == 0 ? DM_E_CONFLICT : DM_E_DB; /* DB-B3 */
    const char *msg = res ? PQresultErrorMessage(res) : PQerrorMessage(conn);
    return pg_fail(code, what, msg && *msg ? msg : PQerrorMessage(conn), err, errlen);
}

/* DB-B1: every parameter goes with its type; integers as decimal text. */
typedef struct {
    const char **values;
    Oid *types;
    char *nums;
} pg_params;

static int params_build(pg_params *pp, const db_param *p, int np)
{
    memset(pp, 0, sizeof *pp);
    if (np == 0)
        return 0;
    pp->values = calloc((size_t)np, sizeof *pp->values);
    pp->types = calloc((size_t)np, sizeof *pp->types);
    pp->nums = malloc((size_t)np * PG_NUM_MAX);
    if (!pp->values || !pp->types || !pp->nums)
        return -ENOMEM;
    for (int i = 0; i < np; i++) {
        pp->types[i] = p[i].type == DB_T_I64 ? OID_INT8 : OID_TEXT;
        if (p[i].is_null)
            pp->values[i] = NULL;
        else if (p[i].type == DB_T_TEXT)
            pp->values[i] = p[i].s;
        else {
            char *num = pp->nums + (size_t)i * PG_NUM_MAX;
            snprintf(num, PG_NUM_MAX, "%" PRId64, p[i].i);
            pp->values[i] = num;
        }
    }
    return 0;
}

static void params_done(pg_params *pp)
{
    free(pp->values);
    free(pp->types);
    free(pp->nums);
}

/* DB-P4 */
static int check_columns(const PGresult *res, char *err, size_t errlen)
{
    for (int c = 0; c < PQnfields(res); c++) {
        Oid t = PQftype(res, c);
        if (t != OID_INT8 && t != OID_INT4 && t != OID_INT2 && t != OID_TEXT && t != OID_VARCHAR &&
            t != OID_NAME && t != OID_BOOL)
            return dm_fail(err, errlen, DM_E_INTERNAL,
                           "postgresql: result column %d has unsupported type %u", c, (unsigned)t);
    }
    return 0;
}

static int run_rows(const PGresult *res, db_row_fn fn, void *ctx)
{
    pg_row r = {res, 0};
    db_row row = {&db_pg_ops, &r};
    int rc = 0;
    for (int n = PQntuples(res); rc == 0 && r.row < n; r.row++)
        rc = fn(&row, ctx);
    return rc;
}

/* One result of the statement: rows (DB-P5) or the final status. */
static int take_result(pg_state *s, const PGresult *res, db_row_fn fn, void *ctx,
                       int64_t *ret_changes, char *err, size_t errlen)
{
    ExecStatusType st = PQresultStatus(res);
    if (st != PGRES_SINGLE_TUPLE && st != PGRES_TUPLES_OK && st != PGRES_COMMAND_OK)
        return pg_result_error(res, "exec", s->conn, err, errlen);
    if (fn && PQntuples(res) > 0) {
        if (!s->checked) { /* DB-P4, once per statement */
            int rc = check_columns(res, err, errlen);
            if (rc)
                return rc;
            s->checked = 1;
        }
        int rc = run_rows(res, fn, ctx);
        if (rc)
            return rc;
    }
    if (st != PGRES_SINGLE_TUPLE && ret_changes) {
        const char *n = PQcmdTuples((PGresult *)res);
        *ret_changes = n && *n ? strtoll(n, NULL, 10) : 0;
    }
    return 0;
}

static int pg_exec(void *state, const char *sql, const db_param *params, int nparams, db_row_fn fn,
                   void *ctx, int64_t *ret_changes, char *err, size_t errlen)
{
    pg_state *s = state;
    pg_params pp;
    int rc = 0;
    if (nparams < 0 || nparams > PG_MAX_PARAMS)
        return dm_fail(err, errlen, DM_E_INTERNAL, "postgresql: %d parameters", nparams);
    if ((rc = params_build(&pp, params, nparams)) != 0) {
        rc = dm_fail(err, errlen, rc, "postgresql: out of memory");
        goto out;
    }
    if (!s->in_tx && PQstatus(s->conn) == CONNECTION_BAD)
        PQreset(s->conn); /* DB-P3 */
    if (!PQsendQueryParams(s->conn, sql, nparams, pp.types, pp.values, NULL, NULL, 0)) {
        rc = pg_fail(DM_E_DB, "send", PQerrorMessage(s->conn), err, errlen);
        goto out;
    }
    PQsetSingleRowMode(s->conn); /* DB-P5; refused only for a non-query: no matter */
    s->checked = 0;
    PGresult *res;
    while ((res = PQgetResult(s->conn)) != NULL) { /* DB-P6: to the end, even after an error */
        if (rc == 0)
            rc = take_result(s, res, fn, ctx, ret_changes, err, errlen);
        PQclear(res);
    }
out:
    params_done(&pp);
    return rc;
}

static int pg_simple(pg_state *s, const char *sql, char *err, size_t errlen)
{
    return pg_exec(s, sql, NULL, 0, NULL, NULL, NULL, err, errlen);
}

static int pg_begin(void *state, db_tx_kind kind, char *err, size_t errlen)
{
    pg_state *s = state;
    static const char *const sql[] = {
        [DB_TX_READ] = "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY",
        [DB_TX_WRITE] = "BEGIN",
        [DB_TX_MIGRATE] = "BEGIN",
    };
    char lock[96];
    int rc = pg_simple(s, sql[kind], err, errlen);
    if (rc)
        return rc;
    s->in_tx = 1;
    if (kind != DB_TX_MIGRATE)
        return 0;
    snprintf(lock, sizeof lock, "SELECT pg_advisory_xact_lock(%lld)", (long long)PG_MIGRATE_LOCK);
    if ((rc = pg_simple(s, lock, err, errlen)) != 0) {
        pg_simple(s, "ROLLBACK", NULL, 0);
        s->in_tx = 0;
    }
    return rc;
}

static int pg_end(void *state, int commit, char *err, size_t errlen)
{
    pg_state *s = state;
    int rc = pg_simple(s, commit ? "COMMIT" : "ROLLBACK", commit ? err : NULL, commit ? errlen : 0);
    s->in_tx = 0;
    return commit ? rc : 0;
}

/* Text integers as int2out/int4out/int8out write them: [-]digits.
 * Booleans come as "t"/"f". */
static int64_t pg_col_i64(void *row, int col, int *ret_is_null)
{
    pg_row *r = row;
    int null = PQgetisnull(r->res, r->row, col);
    if (ret_is_null)
        *ret_is_null = null;
    if (null)
        return 0;
    const char *v = PQgetvalue(r->res, r->row, col);
    if (*v == 't' || *v == 'f')
        return *v == 't';
    int neg = *v == '-';
    uint64_t x = 0;
    for (v += neg; *v >= '0' && *v <= '9'; v++)
        x = x * 10 + (uint64_t)(*v - '0');
    return neg ? (int64_t)(0 - x) : (int64_t)x;
}

static const char *pg_col_text(void *row, int col)
{
    pg_row *r = row;
    return PQgetisnull(r->res, r->row, col) ? NULL : PQgetvalue(r->res, r->row, col);
}

static void pg_close(void *state)
{
    pg_state *s = state;
    if (!s)
        return;
    PQfinish(s->conn);
    free(s->target);
    free(s);
}

/* A connection named app; NULL with err set on failure (DB-P1, DB-P2). */
static PGconn *pg_connect(const char *target, const char *app, char *err, size_t errlen)
{
    /* dbname last: settings written in the URL win over these defaults. */
    const char *const keys[] = {"connect_timeout", "application_name", "client_encoding", "dbname",
                                NULL};
    const char *const vals[] = {"10", app, "UTF8", target, NULL};
    char shown[512], msg[512];
    PGconn *c = PQconnectdbParams(keys, vals, 1);
    if (!c || PQstatus(c) != CONNECTION_OK) {
        db_url_redact(target, shown, sizeof shown); /* DB-P1 */
        snprintf(msg, sizeof msg, "%s", c ? PQerrorMessage(c) : "out of memory");
        msg[strcspn(msg, "\n")] = '\0';
        db_url_scrub(target, msg, sizeof msg);
        PQfinish(c);
        dm_fail(err, errlen, DM_E_DB, "postgresql: cannot connect to %s: %s", shown, msg);
        return NULL;
    }
    PQsetNoticeProcessor(c, pg_quiet, NULL);
    return c;
}

static int pg_open(const char *target, void **ret_state, char *err, size_t errlen)
{
    pg_state *s = calloc(1, sizeof *s);
    if (!s || !(s->target = strdup(target))) {
        free(s);
        return dm_fail(err, errlen, -ENOMEM, "postgresql: out of memory");
    }
    if (!(s->conn = pg_connect(target, "dumont", err, errlen))) {
        pg_close(s);
        return DM_E_DB;
    }
    *ret_state = s;
    return 0;
}

/* ---- the controller lock (DB-P7) --------------------------------------------- */

/* One text value of a one-row query on c; "" when none. */
static int pg_one(PGconn *c, const char *sql, int np, const char *const *vals, char *out,
                  size_t cap, char *err, size_t errlen)
{
    PGresult *r = PQexecParams(c, sql, np, NULL, vals, NULL, NULL, 0);
    ExecStatusType st = PQresultStatus(r);
    int rc = 0;
    if (st != PGRES_TUPLES_OK && st != PGRES_COMMAND_OK)
        rc = pg_result_error(r, "controller lock", c, err, errlen);
    else if (out)
        snprintf(out, cap, "%s",
                 st == PGRES_TUPLES_OK && PQntuples(r) > 0 && !PQgetisnull(r, 0, 0)
                     ? PQgetvalue(r, 0, 0)
                     : "");
    PQclear(r);
    return rc;
}

/* DB-P7, DB-P8: takes the lock on a new session. again: a retake by the
 * holder identity that lost its session, refused (DM_E_CONFLICT) when the row
 * names another holder: that one controlled the database meanwhile. */
static int ctl_take(pg_state *s, const char *identity, int again, void **ret_lock, char *err,
                    size_t errlen)
{
    char got[8] = "", holder[512] = "", sql[512], since[24];
    PGconn *c = pg_connect(s->target, "dumont-controller-lock", err, errlen);
    if (!c)
        return DM_E_DB;
    snprintf(sql, sizeof sql, "SELECT pg_try_advisory_lock(%lld)", (long long)PG_CTL_LOCK);
    int rc = pg_one(c, sql, 0, NULL, got, sizeof got, err, errlen);
    if (rc == 0 && strcmp(got, "t") != 0) {
        snprintf(sql, sizeof sql,
                 "SELECT h.holder FROM pg_locks l JOIN controller_lock h ON h.backend_pid = l.pid"
                 " WHERE l.locktype = 'advisory' AND l.granted AND l.classid = %lld"
                 " AND l.objid = %lld AND l.objsubid = 1"
                 " AND l.database = (SELECT oid FROM pg_database WHERE datname = "
                 "current_database())",
                 (long long)PG_CTL_HI, (long long)PG_CTL_LO);
        if (pg_one(c, sql, 0, NULL, holder, sizeof holder, NULL, 0) != 0 || !holder[0])
            snprintf(holder, sizeof holder, "(it has not written its name yet: starting)");
        rc = dm_fail(err, errlen, DM_E_BUSY, "the database is held by %s", holder);
    } else if (rc == 0 && again &&
               (rc = pg_one(c, "SELECT holder FROM controller_lock WHERE id = 1", 0, NULL, holder,
                            sizeof holder, err, errlen)) == 0 &&
               strcmp(holder, identity) != 0) {
        rc = dm_fail(err, errlen, DM_E_CONFLICT,
                     "another controller held the database meanwhile (%s): this one's view "
                     "is stale",
                     holder[0] ? holder : "unknown");
    } else if (rc == 0) {
        const char *vals[] = {identity, since};
        snprintf(since, sizeof since, "%lld", (long long)clock_wall_ms());
        rc = pg_one(c,
                    again ? "UPDATE controller_lock SET backend_pid = pg_backend_pid()"
                            " WHERE id = 1 AND holder = $1 AND $2::bigint > 0"
                          : "INSERT INTO controller_lock (id, holder, backend_pid, since_ms)"
                            " VALUES (1, $1, pg_backend_pid(), $2::bigint) ON CONFLICT (id) DO UPDATE"
                            " SET holder = excluded.holder, backend_pid = excluded.backend_pid,"
                            " since_ms = excluded.since_ms",
                    2, vals, NULL, 0, err, errlen);
    }
    if (rc) {
        PQfinish(c); /* the session, and the lock if it was taken, end */
        return rc;
    }
    *ret_lock = c;
    return 0;
}

static int pg_ctl_lock(void *state, const char *identity, void **ret_lock, char *err, size_t errlen)
{
    return ctl_take(state, identity, 0, ret_lock, err, errlen);
}

/* DB-P8: the lost session is closed, a new one takes the lock again. */
static int pg_ctl_relock(void *state, const char *identity, void *old, void **ret_lock, char *err,
                         size_t errlen)
{
    PQfinish(old);
    return ctl_take(state, identity, 1, ret_lock, err, errlen);
}

/* DB-P7: `SELECT 1` answered in time on the lock's own session. */
static int pg_ctl_check(void *lock, char *err, size_t errlen)
{
    PGconn *c = lock;
    int64_t end = clock_mono_ms() + PG_CTL_CHECK_MS;
    if (PQstatus(c) != CONNECTION_OK || !PQsendQuery(c, "SELECT 1"))
        return pg_fail(DM_E_CONFLICT, "the controller lock's session ended", PQerrorMessage(c), err,
                       errlen);
    while (PQisBusy(c)) {
        int64_t left = end - clock_mono_ms();
        struct pollfd pfd = {.fd = PQsocket(c), .events = POLLIN};
        if (left <= 0)
            return dm_fail(err, errlen, DM_E_CONFLICT,
                           "postgresql: the controller lock's session did not answer within "
                           "%d ms",
                           PG_CTL_CHECK_MS);
        if (poll(&pfd, 1, (int)left) < 0 && errno != EINTR)
            return dm_fail(err, errlen, DM_E_CONFLICT, "postgresql: poll: %s", strerror(errno));
        if (!PQconsumeInput(c))
            return pg_fail(DM_E_CONFLICT, "the controller lock's session ended", PQerrorMessage(c),
                           err, errlen);
    }
    int rc = 0;
    PGresult *r;
    while ((r = PQgetResult(c)) != NULL) {
        if (rc == 0 && PQresultStatus(r) != PGRES_TUPLES_OK)
            rc = pg_result_error(r, "the controller lock's session ended", c, err, errlen);
        PQclear(r);
    }
    return rc ? DM_E_CONFLICT : 0;
}

static void pg_ctl_unlock(void *lock)
{
    PQfinish(lock); /* accepts NULL; the session's end releases the lock */
}

const db_backend_ops db_pg_ops = {
    .name = "postgresql",
    .open = pg_open,
    .close = pg_close,
    .exec = pg_exec,
    .begin = pg_begin,
    .end = pg_end,
    .col_i64 = pg_col_i64,
    .col_text = pg_col_text,
    .ctl_lock = pg_ctl_lock,
    .ctl_check = pg_ctl_check,
    .ctl_unlock = pg_ctl_unlock,
    .ctl_relock = pg_ctl_relock,
};

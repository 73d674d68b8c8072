/* The SQLite back end (see db_backend.h for DB-B1 to DB-B5).
 *
 * One connection per dm_db, opened in WAL mode (readers never block the one
 * writer; a commit is one append to the log), synchronous=NORMAL (a commit
 * survives a process crash; only the last commits before a power cut may be
 * lost, never consistency), foreign keys on, a 5 s busy timeout for the lock
 * shared with other processes, and a page cache large enough to hold a
 * report's scan of 100,000 failovers.
 *
 * Prepared statements are kept in a small cache keyed by their SQL text
 * (SQLITE_PREPARE_PERSISTENT), so the queries of db.c are parsed once per
 * connection.
 *
 * SQLITE-S1: a statement is reset and its bindings cleared before exec() returns,
 *     whatever happened, so no cached statement holds a read snapshot or a
 *     borrowed parameter string after the call.
 * SQLITE-S2: parameters are bound by name ("$N" -> params[N-1]), never by position,
 *     so `$2 ... $1` binds correctly (SQLite numbers named parameters in order
 *     of first appearance, which need not be N).
 * SQLITE-S3: the cache holds at most SQ_CACHE_SLOTS statements; the least recently
 *     used one is finalized to make room. */
#include "db/db_backend.h"

#include "util/clock.h"
#include "util/error.h"
#include "util/lockfile.h"

#include <errno.h>
#include <limits.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SQ_CACHE_SLOTS     48
#define SQ_BUSY_TIMEOUT_MS 5000

typedef struct {
    char *sql;
    uint64_t hash;
    uint64_t used; /* LRU clock */
    sqlite3_stmt *st;
    int nparams;
    int *map; /* SQLITE-S2: map[i-1] = N of the statement's i-th parameter "$N" */
} sq_slot;

typedef struct {
    sqlite3 *db;
    uint64_t clock;
    sq_slot slot[SQ_CACHE_SLOTS];
} sq_state;

static int sq_fail(sq_state *s, int code, const char *what, char *err, size_t errlen)
{
    return dm_fail(err, errlen, code, "sqlite: %s: %s", what, sqlite3_errmsg(s->db));
}

/* DB-B3: the extended code tells a unique violation from other constraints. */
static int sq_map(sq_state *s, const char *what, char *err, size_t errlen)
{
    int x = sqlite3_extended_errcode(s->db);
    int code = x == SQLITE_CONSTRAINT_UNIQUE || x == SQLITE_CONSTRAINT_PRIMARYKEY ? DM_E_CONFLICT
                                                                                  : DM_E_DB;
    return sq_fail(s, code, what, err, errlen);
}

static uint64_t fnv1a(const char *s)
{
    uint64_t h = 1469598103934665603ULL;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ULL;
    return h;
}

static void slot_drop(sq_slot *sl)
{
    sqlite3_finalize(sl->st);
    free(sl->sql);
    free(sl->map);
    memset(sl, 0, sizeof *sl);
}

/* "$N" -> N in 1..INT_MAX/10, else 0. */
static int param_number(const char *name)
{
    if (!name || name[0] != '$' || name[1] < '1' || name[1] > '9')
        return 0;
    int n = 0;
    for (const char *p = name + 1; *p; p++) {
        if (*p < '0' || *p > '9' || n > INT_MAX / 10 - 10)
            return 0;
        n = n * 10 + (*p - '0');
    }
    return n;
}

/* SQLITE-S2: reads each parameter's name once, when the statement is prepared
 * (sqlite3_bind_parameter_name() is a linear search: per bind it would make
 * a 3,500-parameter batch insert quadratic). A name that is not "$N" maps
 * to 0 and fails at bind time. */
static int slot_map(sq_slot *sl)
{
    sl->nparams = sqlite3_bind_parameter_count(sl->st);
    if (sl->nparams == 0)
        return 0;
    sl->map = malloc((size_t)sl->nparams * sizeof *sl->map);
    if (!sl->map)
        return -ENOMEM;
    for (int i = 0; i < sl->nparams; i++)
        sl->map[i] = param_number(sqlite3_bind_parameter_name(sl->st, i + 1));
    return 0;
}

/* SQLITE-S3: finds sql in the cache or prepares it into the LRU slot. */
static int stmt_get(sq_state *s, const char *sql, sq_slot **ret, char *err, size_t errlen)
{
    uint64_t h = fnv1a(sql);
    sq_slot *victim = &s->slot[0];
    for (int i = 0; i < SQ_CACHE_SLOTS; i++) {
        sq_slot *sl = &s->slot[i];
        if (sl->st && sl->hash == h && strcmp(sl->sql, sql) == 0) {
            sl->used = ++s->clock;
            *ret = sl;
            return 0;
        }
        if (!sl->st || (victim->st && sl->used < victim->used))
            victim = sl;
    }
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v3(s->db, sql, -1, SQLITE_PREPARE_PERSISTENT, &st, NULL) != SQLITE_OK)
        return sq_fail(s, DM_E_DB, "prepare", err, errlen);
    slot_drop(victim);
    victim->st = st;
    victim->sql = strdup(sql);
    if (!victim->sql || slot_map(victim) != 0) {
        slot_drop(victim);
        return dm_fail(err, errlen, -ENOMEM, "sqlite: out of memory");
    }
    victim->hash = h;
    victim->used = ++s->clock;
    *ret = victim;
    return 0;
}

/* SQLITE-S2, B2. */
static int bind_all(sq_state *s, const sq_slot *sl, const db_param *p, int np, char *err,
                    size_t errlen)
{
    if (sl->nparams != np)
        return dm_fail(err, errlen, DM_E_INTERNAL,
                       "sqlite: statement names %d parameters, %d given", sl->nparams, np);
    for (int i = 1; i <= np; i++) {
        int k = sl->map[i - 1];
        if (k < 1 || k > np)
            return dm_fail(err, errlen, DM_E_INTERNAL, "sqlite: parameter %d is not $1..$%d", i,
                           np);
        const db_param *v = &p[k - 1];
        int rc;
        if (v->is_null)
            rc = sqlite3_bind_null(sl->st, i);
        else if (v->type == DB_T_I64)
            rc = sqlite3_bind_int64(sl->st, i, v->i);
        else
            rc = sqlite3_bind_text(sl->st, i, v->s, -1, SQLITE_STATIC);
        if (rc != SQLITE_OK)
            return sq_fail(s, DM_E_DB, "bind", err, errlen);
    }
    return 0;
}

static int sq_exec(void *state, const char *sql, const db_param *params, int nparams, db_row_fn fn,
                   void *ctx, int64_t *ret_changes, char *err, size_t errlen)
{
    sq_state *s = state;
    sq_slot *sl = NULL;
    int rc = stmt_get(s, sql, &sl, err, errlen);
    if (rc)
        return rc;
    sqlite3_stmt *st = sl->st;
    rc = bind_all(s, sl, params, nparams, err, errlen);
    if (rc)
        goto out;
    db_row row = {&db_sqlite_ops, st};
    for (;;) {
        int r = sqlite3_step(st);
        if (r == SQLITE_DONE)
            break;
        if (r != SQLITE_ROW) {
            rc = sq_map(s, "step", err, errlen);
            goto out;
        }
        if (fn && (rc = fn(&row, ctx)) != 0)
            goto out;
    }
    /* sqlite3_changes64 is 3.37+; Debian 11's 3.34 (the portable build:
     * util/compat.h) has the int one, which one statement's changes fit */
    if (ret_changes)
#if SQLITE_VERSION_NUMBER >= 3037000
        *ret_changes = sqlite3_changes64(s->db);
#else
        *ret_changes = sqlite3_changes(s->db);
#endif
out:
    sqlite3_reset(st); /* SQLITE-S1 */
    sqlite3_clear_bindings(st);
    return rc;
}

static int sq_simple(sq_state *s, const char *sql, char *err, size_t errlen)
{
    return sq_exec(s, sql, NULL, 0, NULL, NULL, NULL, err, errlen);
}

static int sq_begin(void *state, db_tx_kind kind, char *err, size_t errlen)
{
    return sq_simple(state, kind == DB_TX_READ ? "BEGIN" : "BEGIN IMMEDIATE", err, errlen);
}

static int sq_end(void *state, int commit, char *err, size_t errlen)
{
    sq_state *s = state;
    if (commit)
        return sq_simple(s, "COMMIT", err, errlen);
    if (!sqlite3_get_autocommit(s->db)) /* some errors roll back by themselves */
        sq_simple(s, "ROLLBACK", NULL, 0);
    return 0;
}

static int64_t sq_col_i64(void *row, int col, int *ret_is_null)
{
    sqlite3_stmt *st = row;
    int null = sqlite3_column_type(st, col) == SQLITE_NULL;
    if (ret_is_null)
        *ret_is_null = null;
    return null ? 0 : sqlite3_column_int64(st, col);
}

static const char *sq_col_text(void *row, int col)
{
    return (const char *)sqlite3_column_text(row, col);
}

static void sq_close(void *state)
{
    sq_state *s = state;
    if (!s)
        return;
    for (int i = 0; i < SQ_CACHE_SLOTS; i++)
        slot_drop(&s->slot[i]);
    sqlite3_close_v2(s->db);
    free(s);
}

/* WAL is refused only by databases that cannot have it (":memory:"). */
static int sq_configure(sq_state *s, char *err, size_t errlen)
{
    static const char pragmas[] = "PRAGMA synchronous=NORMAL;"
                                  "PRAGMA foreign_keys=ON;"
                                  "PRAGMA cache_size=-65536;" /* KiB: 64 MiB at most */
                                  "PRAGMA temp_store=MEMORY;"
                                  /* scans read pages in place, no copy per page */
                                  "PRAGMA mmap_size=1073741824;";
    sqlite3_extended_result_codes(s->db, 1);
    sqlite3_busy_timeout(s->db, SQ_BUSY_TIMEOUT_MS);
    /* Switching a new file to WAL needs an exclusive lock, and SQLite may
     * answer SQLITE_BUSY at once, without its busy handler, while another
     * process switches or recovers the same file (several servers or tests
     * opening one new database): retried here within the busy timeout. */
    int rc = SQLITE_BUSY;
    for (int64_t end = clock_mono_ms() + SQ_BUSY_TIMEOUT_MS;;) {
        rc = sqlite3_exec(s->db, "PRAGMA journal_mode=WAL", NULL, NULL, NULL);
        int busy = (rc & 0xff) == SQLITE_BUSY || (rc & 0xff) == SQLITE_LOCKED;
        if (!busy || clock_mono_ms() >= end)
            break;
        clock_sleep_ms(5, NULL);
    }
    if (rc != SQLITE_OK || sqlite3_exec(s->db, pragmas, NULL, NULL, NULL) != SQLITE_OK)
        return sq_fail(s, DM_E_DB, "configure", err, errlen);
    return 0;
}

static int sq_open(const char *target, void **ret_state, char *err, size_t errlen)
{
    int rc = 0;
    sq_state *s = calloc(1, sizeof *s);
    if (!s)
        return dm_fail(err, errlen, -ENOMEM, "sqlite: out of memory");
    int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX;
    if (sqlite3_open_v2(target, &s->db, flags, NULL) != SQLITE_OK) {
        rc = dm_fail(err, errlen, DM_E_DB, "sqlite: cannot open %s: %s", target,
                     s->db ? sqlite3_errmsg(s->db) : "out of memory");
        goto out;
    }
    rc = sq_configure(s, err, errlen);
out:
    if (rc) {
        sq_close(s);
        return rc;
    }
    *ret_state = s;
    return 0;
}

/* DB-B6: an flock on "<database>.lock" beside the file, not on the database
 * file itself: SQLite's own POSIX locks on that file are dropped when any
 * descriptor of it is closed in the process, and a second descriptor is
 * what a lock on it would need. An in-memory database has no peer. */
static int sq_ctl_lock(void *state, const char *identity, void **ret_lock, char *err, size_t errlen)
{
    sq_state *s = state;
    (void)identity; /* lockfile_take() writes the same one */
    const char *file = sqlite3_db_filename(s->db, "main");
    char path[PATH_MAX];
    *ret_lock = NULL;
    if (!file || !*file)
        return 0;
    if ((size_t)snprintf(path, sizeof path, "%s.lock", file) >= sizeof path)
        return dm_fail(err, errlen, DM_E_INVALID, "sqlite: database path too long for its lock");
    lockfile *l = NULL;
    int rc = lockfile_take(path, &l, err, errlen);
    if (rc == 0)
        *ret_lock = l;
    return rc;
}

static int sq_ctl_check(void *lock, char *err, size_t errlen)
{
    return lock ? lockfile_check(lock, err, errlen) : 0;
}

static void sq_ctl_unlock(void *lock)
{
    lockfile_release(lock);
}

const db_backend_ops db_sqlite_ops = {
    .name = "sqlite",
    .open = sq_open,
    .close = sq_close,
    .exec = sq_exec,
    .begin = sq_begin,
    .end = sq_end,
    .col_i64 = sq_col_i64,
    .col_text = sq_col_text,
    .ctl_lock = sq_ctl_lock,
    .ctl_check = sq_ctl_check,
    .ctl_unlock = sq_ctl_unlock,
};

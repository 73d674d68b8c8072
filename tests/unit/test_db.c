/* Tests of the database layer (src/db), run against every back end:
 * SQLite (a fresh temp file per test) always, PostgreSQL when
 * DUMONT_TEST_PG_URL is set (its tables are dropped before each test).
 *
 *   DUMONT_TEST_PG_URL=$(scripts/pg-test-cluster.sh start /tmp/pg) build/tests/test_db
 *
 * The invariants cited are those of db.h (DB-D1 to DB-D4), db_backend.h (DB-B1 to DB-B5),
 * migrate.c (DB-M1 to DB-M3), db_failover.c (DBF-F1 to DBF-F4), db_query.c (DB-Q1 to DB-Q4), report.h
 * (FO-R1 to FO-R4) and core/failover.h (FO-I1 to FO-I4). */
#include "db/db.h"
#include "db/db_backend.h"
#include "util/clock.h"
#include "util/error.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <libpq-fe.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static const char *g_pg_url; /* NULL: this run is SQLite */
static char g_dir[64];       /* temp dir of the SQLite files */
static char g_url[1024];     /* the database of the current test */
static int g_seq;
static char g_err[512];

/* ---- per-test database ---- */

static void pg_reset(void)
{
    PGconn *c = PQconnectdb(g_pg_url);
    assert_int_equal(PQstatus(c), CONNECTION_OK);
    PGresult *r = PQexec(c, "SET client_min_messages = warning;"
                            "DROP TABLE IF EXISTS snapshots, machines, workloads,"
                            " instance_events, instances,"
                            " failover_phases, failovers, associations, api_tokens,"
                            " alert_deliveries, alerts, counters, controller_lock, agent_commands,"
                            " schema_migrations CASCADE");
    assert_int_equal(PQresultStatus(r), PGRES_COMMAND_OK);
    PQclear(r);
    PQfinish(c);
}

static int setup(void **state)
{
    (void)state;
    if (g_pg_url) {
        snprintf(g_url, sizeof g_url, "%s", g_pg_url);
        pg_reset();
    } else {
        snprintf(g_url, sizeof g_url, "%s/t%d.db", g_dir, ++g_seq);
    }
    return 0;
}

static void unlink_sqlite(const char *path)
{
    char p[1100];
    const char *sfx[] = {"", "-wal", "-shm", "-journal", ".lock"};
    for (int i = 0; i < 5; i++) {
        snprintf(p, sizeof p, "%s%s", path, sfx[i]);
        unlink(p);
    }
}

static int teardown(void **state)
{
    (void)state;
    if (!g_pg_url)
        unlink_sqlite(g_url);
    return 0;
}

static dm_db *open_db(void)
{
    dm_db *db = NULL;
    int rc = db_open(g_url, &db, g_err, sizeof g_err);
    if (rc)
        fail_msg("db_open: %s", g_err);
    return db;
}

#define OK(call)                                                                                   \
    do {                                                                                           \
        g_err[0] = '\0';                                                                           \
        int rc_ = (call);                                                                          \
        if (rc_ != 0)                                                                              \
            fail_msg("%s -> %d (%s): %s", #call, rc_, dm_strerror(rc_), g_err);                    \
    } while (0)

/* ---- building failovers with the real state machine (core/failover.h) ---- */

enum { END_COMPLETE, END_FAIL, END_ABORT, END_RUNNING };

/* Runs phases 0..stop with durations dur[]; how the last one ends: `how`
 * (END_COMPLETE runs all seven). Phase p starts at t0 + sum of the earlier. */
static void mk(fo_failover *f, const char *id, int64_t gpu, fo_kind kind, int64_t t0,
               const int64_t dur[FO_PHASE_COUNT], int stop, int how)
{
    assert_int_equal(fo_init(f, id, gpu, kind, t0), 0);
    int64_t now = t0;
    int last = how == END_COMPLETE ? FO_PHASE_COUNT - 1 : stop;
    for (int p = 0; p <= last; p++) {
        if (p == last && how == END_RUNNING)
            return;
        fo_event ev = {FO_EV_PHASE_OK, now + (dur[p] > 0 ? dur[p] : 0),
                       dur[p],         kind == FO_KIND_SIMULATED,
                       NULL,           0, 0};
        if (p == last && how == END_FAIL) {
            ev.kind = FO_EV_PHASE_FAILED;
            ev.detail = "no offer under the price cap";
        } else if (p == last && how == END_ABORT) {
            ev.kind = FO_EV_ABORT;
            ev.duration_ms = FO_NULL;
            ev.detail = "controller restarted";
        }
        assert_int_equal(fo_transition(f, &ev), 0);
        now = ev.now_ms;
    }
}

static const int64_t d100[FO_PHASE_COUNT] = {100, 100, 100, 100, 100, 100, 100};

static void assert_fo_equal(const fo_failover *a, const fo_failover *b)
{
    assert_string_equal(a->id, b->id);
    assert_int_equal(a->gpu_instance_id, b->gpu_instance_id);
    assert_int_equal(a->kind, b->kind);
    assert_string_equal(a->user_id, b->user_id);
    assert_int_equal(a->state, b->state);
    assert_int_equal(a->success, b->success);
    assert_string_equal(a->reason, b->reason);
    assert_int_equal(a->started_at_ms, b->started_at_ms);
    assert_int_equal(a->finished_at_ms, b->finished_at_ms);
    assert_int_equal(a->total_time_ms, b->total_time_ms);
    for (int i = 0; i < FO_PHASE_COUNT; i++) {
        const fo_phase_rec *x = &a->phases[i], *y = &b->phases[i];
        assert_int_equal(x->status, y->status);
        assert_int_equal(x->started_at_ms, y->started_at_ms);
        assert_int_equal(x->duration_ms, y->duration_ms);
        assert_int_equal(x->simulated, y->simulated);
        assert_string_equal(x->detail, y->detail);
    }
}

/* ---- back end (DB-B1, DB-B2, SQLITE-S2) ---- */

typedef struct {
    int64_t v[4];
    int null[4];
    char s[64];
    int rows;
} row_sink;

static int sink_row(const db_row *r, void *ctx)
{
    row_sink *k = ctx;
    k->rows++;
    for (int i = 0; i < 3; i++)
        k->v[i] = db_row_i64(r, i, &k->null[i]);
    const char *s = db_row_text(r, 3);
    snprintf(k->s, sizeof k->s, "%s", s ? s : "(null)");
    return 0;
}

static void test_backend_params(void **state)
{
    (void)state;
    const db_backend_ops *ops = g_pg_url ? &db_pg_ops : &db_sqlite_ops;
    void *st = NULL;
    OK(ops->open(g_url, &st, g_err, sizeof g_err));
    row_sink k = {0};
    /* SQLITE-S2: $3 and $1 appear before $2; $1 repeats. DB-B1: a typed NULL. */
    db_param p[] = {db_p_i64(10), db_p_i64n(FO_NULL), db_p_i64(30), db_p_text("x")};
    OK(ops->exec(st, "SELECT $3 + $1, $1, $2, $4 || 'y' WHERE $1 = 10", p, 4, sink_row, &k, NULL,
                 g_err, sizeof g_err));
    assert_int_equal(k.rows, 1);
    assert_int_equal(k.v[0], 40);
    assert_int_equal(k.v[1], 10);
    assert_true(k.null[2]);
    assert_string_equal(k.s, "xy");
    /* DB-B2: a parameter missing is an error on both; one unused on SQLite. */
    int rc = ops->exec(st, "SELECT $1, $3, $1, 'z'", p, 2, sink_row, &k, NULL, g_err, sizeof g_err);
    assert_true(rc == DM_E_INTERNAL || rc == DM_E_DB);
    rc = ops->exec(st, "SELECT $1, $1, $1, 'z'", p, 2, sink_row, &k, NULL, g_err, sizeof g_err);
    assert_int_equal(rc, g_pg_url ? 0 : DM_E_INTERNAL);
    /* fn may be NULL: the rows are discarded */
    rc = ops->exec(st, "SELECT 1, 2, 3, 'a' UNION ALL SELECT 4, 5, 6, 'b'", NULL, 0, NULL, NULL,
                   NULL, g_err, sizeof g_err);
    assert_int_equal(rc, 0);
    ops->close(st);
}

static int stop_row(const db_row *r, void *ctx)
{
    (void)r;
    ++*(int *)ctx;
    return 42;
}

static void test_backend_stop(void **state)
{
    (void)state;
    const db_backend_ops *ops = g_pg_url ? &db_pg_ops : &db_sqlite_ops;
    void *st = NULL;
    int rows = 0;
    OK(ops->open(g_url, &st, g_err, sizeof g_err));
    int rc = ops->exec(st, "SELECT 1 UNION ALL SELECT 2", NULL, 0, stop_row, &rows, NULL, g_err,
                       sizeof g_err);
    assert_int_equal(rc, 42);
    assert_int_equal(rows, 1);
    ops->close(st);
}

/* B5's neighbours: a read transaction sees a snapshot and ends cleanly. */
static void test_backend_tx(void **state)
{
    (void)state;
    const db_backend_ops *ops = g_pg_url ? &db_pg_ops : &db_sqlite_ops;
    void *st = NULL;
    row_sink k = {0};
    OK(ops->open(g_url, &st, g_err, sizeof g_err));
    OK(ops->exec(st, "CREATE TABLE tx_probe (v BIGINT)", NULL, 0, NULL, NULL, NULL, g_err,
                 sizeof g_err));
    OK(ops->begin(st, DB_TX_WRITE, g_err, sizeof g_err));
    OK(ops->exec(st, "INSERT INTO tx_probe VALUES (1)", NULL, 0, NULL, NULL, NULL, g_err,
                 sizeof g_err));
    OK(ops->end(st, 0, g_err, sizeof g_err)); /* rolled back */
    OK(ops->begin(st, DB_TX_READ, g_err, sizeof g_err));
    OK(ops->exec(st, "SELECT COUNT(*), 0, 0, 'n' FROM tx_probe", NULL, 0, sink_row, &k, NULL, g_err,
                 sizeof g_err));
    OK(ops->end(st, 1, g_err, sizeof g_err));
    assert_int_equal(k.v[0], 0);
    int64_t changed = -1;
    OK(ops->exec(st, "INSERT INTO tx_probe VALUES (1), (2)", NULL, 0, NULL, NULL, &changed, g_err,
                 sizeof g_err));
    assert_int_equal(changed, 2);
    OK(ops->exec(st, "DROP TABLE tx_probe", NULL, 0, NULL, NULL, NULL, g_err, sizeof g_err));
    ops->close(st);
}

/* DB-P3: after the server drops the session, the handle recovers on its own. */
static void test_pg_reconnect(void **state)
{
    (void)state;
    if (!g_pg_url)
        skip();
    dm_db *db = open_db();
    int64_t n = -1;
    db_failover_filter flt;
    db_failover_filter_init(&flt);
    OK(db_failover_count(db, &flt, &n, g_err, sizeof g_err));
    PGconn *c = PQconnectdb(g_pg_url);
    assert_int_equal(PQstatus(c), CONNECTION_OK);
    PGresult *r = PQexec(c, "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                            " WHERE application_name = 'dumont' AND datname = current_database()");
    assert_int_equal(PQresultStatus(r), PGRES_TUPLES_OK);
    assert_true(PQntuples(r) >= 1);
    PQclear(r);
    /* pg_terminate_backend() only signals: wait (with a deadline) until it is gone */
    int gone = 0;
    for (int i = 0; i < 500 && !gone; i++) {
        r = PQexec(c, "SELECT COUNT(*) FROM pg_stat_activity"
                      " WHERE application_name = 'dumont' AND datname = current_database()");
        gone = PQresultStatus(r) == PGRES_TUPLES_OK && strcmp(PQgetvalue(r, 0, 0), "0") == 0;
        PQclear(r);
        if (!gone)
            usleep(10000);
    }
    PQfinish(c);
    assert_true(gone);
    int rc = db_failover_count(db, &flt, &n, g_err, sizeof g_err);
    assert_int_equal(rc, DM_E_DB);                            /* the loss is reported once... */
    OK(db_failover_count(db, &flt, &n, g_err, sizeof g_err)); /* ...then reconnected */
    assert_int_equal(n, 0);
    db_close(db);
}

/* ---- migrations (DB-M1 to DB-M3) ---- */

static void test_migrations_idempotent(void **state)
{
    (void)state;
    int v = 0;
    dm_db *db = open_db();
    assert_string_equal(db_backend_name(db), g_pg_url ? "postgresql" : "sqlite");
    OK(db_schema_version(db, &v, g_err, sizeof g_err));
    assert_int_equal(v, 11);
    db_close(db);
    db = open_db();
    OK(db_schema_version(db, &v, g_err, sizeof g_err));
    assert_int_equal(v, 11);
    db_close(db);
}

/* DB-M2: several processes opening one fresh database at once all succeed. */
static void test_migrations_concurrent(void **state)
{
    (void)state;
    enum { N = 6 };
    pid_t pid[N];
    for (int i = 0; i < N; i++) {
        pid[i] = fork();
        assert_true(pid[i] >= 0);
        if (pid[i] == 0) {
            dm_db *db = NULL;
            char err[512];
            int rc = db_open(g_url, &db, err, sizeof err);
            if (rc)
                fprintf(stderr, "child %d: %s\n", i, err);
            db_close(db);
            _exit(rc ? 1 : 0);
        }
    }
    for (int i = 0; i < N; i++) {
        int status = 0;
        assert_int_equal(waitpid(pid[i], &status, 0), pid[i]);
        assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    }
    int v = 0;
    dm_db *db = open_db();
    OK(db_schema_version(db, &v, g_err, sizeof g_err));
    assert_int_equal(v, 11);
    db_close(db);
}

/* ---- associations ---- */

static void test_assoc(void **state)
{
    (void)state;
    dm_db *db = open_db();
    fo_assoc a = {12345, "standby-12345", "sim", "europe-west1-b", 1700000000000}, b;
    OK(db_assoc_put(db, &a, g_err, sizeof g_err));
    OK(db_assoc_get(db, 12345, &b, g_err, sizeof g_err));
    assert_int_equal(b.gpu_instance_id, 12345);
    assert_string_equal(b.standby_id, "standby-12345");
    assert_string_equal(b.provider, "sim");
    assert_string_equal(b.gcp_zone, "europe-west1-b");
    assert_int_equal(b.created_at_ms, 1700000000000);
    /* replace; an empty gcp_zone is stored as NULL and read back as "" (DB-O2) */
    fo_assoc c = {12345, "standby-x", "gcp", "", 1700000000001};
    OK(db_assoc_put(db, &c, g_err, sizeof g_err));
    OK(db_assoc_get(db, 12345, &b, g_err, sizeof g_err));
    assert_string_equal(b.standby_id, "standby-x");
    assert_string_equal(b.provider, "gcp");
    assert_string_equal(b.gcp_zone, "");
    assert_int_equal(b.created_at_ms, 1700000000001);
    /* not found leaves *ret untouched */
    fo_assoc before = b;
    assert_int_equal(db_assoc_get(db, 999, &b, g_err, sizeof g_err), DM_E_NOT_FOUND);
    assert_memory_equal(&b, &before, sizeof b);
    fo_assoc bad = {1, "", "sim", "", 0};
    assert_int_equal(db_assoc_put(db, &bad, g_err, sizeof g_err), DM_E_INVALID);
    bad.gpu_instance_id = -5;
    snprintf(bad.standby_id, sizeof bad.standby_id, "s");
    assert_int_equal(db_assoc_put(db, &bad, g_err, sizeof g_err), DM_E_INVALID);
    db_close(db);
}

/* ---- insert / get ---- */

static void test_roundtrip(void **state)
{
    (void)state;
    dm_db *db = open_db();
    fo_failover f, g;
    int64_t dur[FO_PHASE_COUNT] = {612, 0, 4500, 61000, 20000, 0, 0};
    mk(&f, "sim-0001", 42, FO_KIND_REAL, 1764331200123, dur, FO_PHASE_RESTORE, END_FAIL);
    snprintf(f.user_id, sizeof f.user_id, "user-'quoted' \"x\"");
    snprintf(f.phases[0].detail, sizeof f.phases[0].detail, "preemption notice");
    f.phases[2].simulated = 1; /* mixed simulated flags survive */
    OK(db_failover_insert(db, &f, g_err, sizeof g_err));
    OK(db_failover_get(db, "sim-0001", &g, g_err, sizeof g_err));
    assert_fo_equal(&f, &g);
    assert_int_equal(g.state, FO_STATE_FAILED);
    assert_int_equal(g.success, 0);
    assert_int_equal(g.phases[FO_PHASE_RESTORE].status, FO_PHASE_FAILED);
    assert_int_equal(g.phases[FO_PHASE_INFERENCE].duration_ms, FO_NULL); /* FO-I2 */
    assert_int_equal(g.phases[FO_PHASE_INFERENCE].started_at_ms, FO_NULL);
    assert_int_equal(g.phases[FO_PHASE_STANDBY_ACTIVATION].duration_ms, 0); /* 0 is not NULL */

    /* a running one: success, finished, total are FO_NULL (FO-I3, FO-I4) */
    mk(&f, "sim-0002", 43, FO_KIND_SIMULATED, 1764331200999, d100, FO_PHASE_GPU_SEARCH,
       END_RUNNING);
    OK(db_failover_insert(db, &f, g_err, sizeof g_err));
    OK(db_failover_get(db, "sim-0002", &g, g_err, sizeof g_err));
    assert_fo_equal(&f, &g);
    assert_int_equal(g.success, FO_NULL);
    assert_int_equal(g.finished_at_ms, FO_NULL);
    assert_int_equal(g.total_time_ms, FO_NULL);
    assert_string_equal(g.reason, "");
    assert_int_equal(g.phases[FO_PHASE_GPU_SEARCH].status, FO_PHASE_RUNNING);
    db_close(db);
}

/* ---- DB-D3 ---- */

static void test_d3_conflict(void **state)
{
    (void)state;
    dm_db *db = open_db();
    fo_failover a, b;
    mk(&a, "a", 7, FO_KIND_SIMULATED, 1000, d100, FO_PHASE_DETECTION, END_RUNNING);
    mk(&b, "b", 7, FO_KIND_SIMULATED, 2000, d100, FO_PHASE_DETECTION, END_RUNNING);
    OK(db_failover_insert(db, &a, g_err, sizeof g_err));
    assert_int_equal(db_failover_insert(db, &b, g_err, sizeof g_err), DM_E_CONFLICT);
    assert_non_null(strstr(g_err, "GPU 7"));
    /* the same id again, even on another GPU */
    fo_failover dup = a;
    dup.gpu_instance_id = 8;
    assert_int_equal(db_failover_insert(db, &dup, g_err, sizeof g_err), DM_E_CONFLICT);
    /* DB-D3 holds between two handles (two controllers), not only within one */
    dm_db *db2 = open_db();
    assert_int_equal(db_failover_insert(db2, &b, g_err, sizeof g_err), DM_E_CONFLICT);
    db_close(db2);
    /* another GPU is independent */
    fo_failover c;
    mk(&c, "c", 8, FO_KIND_REAL, 1500, d100, FO_PHASE_DETECTION, END_RUNNING);
    OK(db_failover_insert(db, &c, g_err, sizeof g_err));
    /* once a is terminal, b may start */
    fo_event ev = {FO_EV_ABORT, 1100, FO_NULL, 0, "test", 0, 0};
    assert_int_equal(fo_transition(&a, &ev), 0);
    OK(db_failover_save(db, &a, g_err, sizeof g_err));
    OK(db_failover_insert(db, &b, g_err, sizeof g_err));
    /* a save that would make two active on GPU 8 is refused, and changes nothing */
    fo_failover b8 = b;
    b8.gpu_instance_id = 8;
    assert_int_equal(db_failover_save(db, &b8, g_err, sizeof g_err), DM_E_CONFLICT);
    fo_failover g;
    OK(db_failover_get(db, "b", &g, g_err, sizeof g_err));
    assert_int_equal(g.gpu_instance_id, 7);
    db_close(db);
}

/* ---- save (DB-D2) ---- */

static void test_save_transitions(void **state)
{
    (void)state;
    dm_db *db = open_db();
    fo_failover f, g;
    int64_t now = 1764331200000;
    assert_int_equal(fo_init(&f, "fo-save", 9, FO_KIND_SIMULATED, now), 0);
    OK(db_failover_insert(db, &f, g_err, sizeof g_err));
    for (int p = 0; p < FO_PHASE_COUNT; p++) {
        now += 100 * (p + 1);
        fo_event ev = {FO_EV_PHASE_OK, now, 100 * (p + 1), 1, NULL, 0, 0};
        assert_int_equal(fo_transition(&f, &ev), 0);
        OK(db_failover_save(db, &f, g_err, sizeof g_err));
        OK(db_failover_get(db, "fo-save", &g, g_err, sizeof g_err));
        assert_fo_equal(&f, &g);
    }
    assert_int_equal(g.state, FO_STATE_COMPLETED);
    assert_int_equal(g.total_time_ms, 2800); /* FO-I3 */
    /* DB-D4: the report (which reads the <phase>_ms columns) sees the same durations */
    fo_report r;
    db_failover_filter flt;
    db_failover_filter_init(&flt);
    OK(db_report(db, &flt, &r, g_err, sizeof g_err));
    for (int p = 0; p < FO_PHASE_COUNT; p++)
        assert_int_equal(r.all.phase[p].max, 100 * (p + 1));
    assert_int_equal(r.all.mttr.max, 2800);
    /* unknown id */
    fo_failover u = f;
    snprintf(u.id, sizeof u.id, "nope");
    assert_int_equal(db_failover_save(db, &u, g_err, sizeof g_err), DM_E_NOT_FOUND);
    /* DBF-F1: a record breaking FO-I4 is refused before anything is written */
    u = f;
    u.success = FO_NULL;
    assert_int_equal(db_failover_save(db, &u, g_err, sizeof g_err), DM_E_INVALID);
    db_close(db);
}

/* ---- list / count ---- */

static void seed_list(dm_db *db)
{
    /* id, gpu, kind, started, how */
    static const struct {
        const char *id;
        int gpu;
        fo_kind kind;
        int64_t t;
        int how;
    } rows[] = {
        {"f01", 1, FO_KIND_SIMULATED, 1000, END_COMPLETE},
        {"f02", 1, FO_KIND_REAL, 2000, END_FAIL},
        {"f03", 2, FO_KIND_SIMULATED, 3000, END_COMPLETE},
        {"f04", 2, FO_KIND_SIMULATED, 3000, END_COMPLETE}, /* same time: id desc */
        {"f05", 3, FO_KIND_REAL, 4000, END_RUNNING},
        {"f06", 1, FO_KIND_SIMULATED, 5000, END_RUNNING},
    };
    fo_failover f[6];
    for (int i = 0; i < 6; i++)
        mk(&f[i], rows[i].id, rows[i].gpu, rows[i].kind, rows[i].t, d100, FO_PHASE_PROVISIONING,
           rows[i].how);
    OK(db_failover_insert_many(db, f, 6, g_err, sizeof g_err));
}

static void expect_list(dm_db *db, const db_failover_filter *flt, const char *want)
{
    fo_failover *v = NULL;
    size_t n = 0;
    char got[256] = "";
    OK(db_failover_list(db, flt, &v, &n, g_err, sizeof g_err));
    for (size_t i = 0; i < n; i++) {
        size_t o = strlen(got);
        snprintf(got + o, sizeof got - o, "%s%s", i ? " " : "", v[i].id);
    }
    free(v);
    assert_string_equal(got, want);
    db_failover_filter all = *flt;
    all.limit = 0;
    all.offset = 0;
    int64_t count = -1;
    fo_failover *w = NULL;
    OK(db_failover_count(db, &all, &count, g_err, sizeof g_err));
    OK(db_failover_list(db, &all, &w, &n, g_err, sizeof g_err));
    free(w);
    assert_int_equal(count, (int64_t)n); /* count ignores limit/offset */
}

static void test_list(void **state)
{
    (void)state;
    dm_db *db = open_db();
    seed_list(db);
    db_failover_filter flt;
    db_failover_filter_init(&flt);
    expect_list(db, &flt, "f06 f05 f04 f03 f02 f01");
    flt.limit = 2;
    expect_list(db, &flt, "f06 f05");
    flt.offset = 2;
    expect_list(db, &flt, "f04 f03");
    flt.offset = 5;
    expect_list(db, &flt, "f01");
    flt.offset = 6;
    expect_list(db, &flt, "");
    db_failover_filter_init(&flt);
    flt.offset = 4; /* offset without limit */
    expect_list(db, &flt, "f02 f01");
    db_failover_filter_init(&flt);
    flt.gpu_instance_id = 1;
    expect_list(db, &flt, "f06 f02 f01");
    flt.kind = FO_KIND_SIMULATED;
    expect_list(db, &flt, "f06 f01");
    db_failover_filter_init(&flt);
    flt.active_only = 1;
    expect_list(db, &flt, "f06 f05");
    db_failover_filter_init(&flt);
    flt.since_ms = 2000;
    flt.until_ms = 4000; /* [since, until) */
    expect_list(db, &flt, "f04 f03 f02");
    flt.gpu_instance_id = 77;
    expect_list(db, &flt, "");
    /* list items carry their phases (DB-Q1) */
    fo_failover *v = NULL;
    size_t n = 0;
    db_failover_filter_init(&flt);
    flt.limit = 1;
    flt.offset = 1;
    OK(db_failover_list(db, &flt, &v, &n, g_err, sizeof g_err));
    assert_int_equal(n, 1);
    assert_string_equal(v[0].id, "f05");
    assert_int_equal(v[0].phases[FO_PHASE_GPU_SEARCH].duration_ms, 100);
    assert_int_equal(v[0].phases[FO_PHASE_PROVISIONING].status, FO_PHASE_RUNNING);
    free(v);
    db_close(db);
}

/* ---- report (FO-R1 to FO-R4) on a hand-computed data set ---- */

static void seed_report(dm_db *db)
{
    fo_failover f[6];
    const int64_t s1[] = {100, 200, 300, 400, 500, 600, 700};        /* total 2800 */
    const int64_t s2[] = {200, 200, 200, 200, 200, 200, 200};        /* total 1400 */
    const int64_t s3[] = {300, 100, 100, 50, 0, 0, 0};               /* fails in provisioning */
    const int64_t r1[] = {1000, 1000, 1000, 1000, 1000, 1000, 1000}; /* total 7000 */
    mk(&f[0], "s1", 1, FO_KIND_SIMULATED, 1000, s1, 0, END_COMPLETE);
    mk(&f[1], "s2", 2, FO_KIND_SIMULATED, 2000, s2, 0, END_COMPLETE);
    mk(&f[2], "s3", 3, FO_KIND_SIMULATED, 3000, s3, FO_PHASE_PROVISIONING, END_FAIL);
    mk(&f[3], "r1", 4, FO_KIND_REAL, 4000, r1, 0, END_COMPLETE);
    mk(&f[4], "r2", 5, FO_KIND_REAL, 5000, r1, FO_PHASE_DETECTION, END_ABORT); /* no durations */
    mk(&f[5], "r3", 6, FO_KIND_REAL, 6000, r1, FO_PHASE_GPU_SEARCH, END_RUNNING);
    OK(db_failover_insert_many(db, f, 6, g_err, sizeof g_err));
}

static void expect_stat(const fo_stat *s, int64_t count, double mean, int64_t p50, int64_t p95,
                        int64_t max)
{
    assert_int_equal(s->count, count);
    if (count == 0)
        assert_true(isnan(s->mean));
    else
        assert_true(fabs(s->mean - mean) < 1e-6);
    assert_int_equal(s->p50, p50);
    assert_int_equal(s->p95, p95);
    assert_int_equal(s->max, max);
}

static void expect_counts(const fo_report_group *g, int64_t ok, int64_t bad, int64_t run)
{
    assert_int_equal(g->succeeded, ok);
    assert_int_equal(g->failed, bad);
    assert_int_equal(g->running, run);
    assert_int_equal(g->total, ok + bad + run);
    if (ok + bad)
        assert_true(fabs(g->success_rate - (double)ok / (double)(ok + bad)) < 1e-9);
    else
        assert_true(isnan(g->success_rate));
}

static void test_report(void **state)
{
    (void)state;
    dm_db *db = open_db();
    seed_report(db);
    fo_report r;
    db_failover_filter flt;
    db_failover_filter_init(&flt);
    OK(db_report(db, &flt, &r, g_err, sizeof g_err));
    /* simulated: s1, s2 ok; s3 failed */
    expect_counts(&r.simulated, 2, 1, 0);
    expect_stat(&r.simulated.mttr, 2, 2100, 1400, 2800, 2800); /* FO-R1: s3 not in MTTR */
    expect_stat(&r.simulated.phase[FO_PHASE_DETECTION], 3, 200, 200, 300, 300);
    expect_stat(&r.simulated.phase[FO_PHASE_PROVISIONING], 3, 650.0 / 3, 200, 400, 400);
    expect_stat(&r.simulated.phase[FO_PHASE_SSH_READY], 2, 350, 200, 500, 500); /* R2 */
    /* real: r1 ok, r2 failed (aborted: no durations), r3 running (FO-R4) */
    expect_counts(&r.real, 1, 1, 1);
    expect_stat(&r.real.mttr, 1, 7000, 7000, 7000, 7000);
    expect_stat(&r.real.phase[FO_PHASE_DETECTION], 1, 1000, 1000, 1000, 1000);
    /* all */
    expect_counts(&r.all, 3, 2, 1);
    expect_stat(&r.all.mttr, 3, 11200.0 / 3, 2800, 7000, 7000);
    expect_stat(&r.all.phase[FO_PHASE_DETECTION], 4, 400, 200, 1000, 1000);
    /* filters: kind, gpu, period */
    flt.kind = FO_KIND_REAL;
    OK(db_report(db, &flt, &r, g_err, sizeof g_err));
    expect_counts(&r.all, 1, 1, 1);
    expect_counts(&r.simulated, 0, 0, 0);
    expect_stat(&r.simulated.mttr, 0, 0, FO_NULL, FO_NULL, FO_NULL); /* FO-R3 */
    db_failover_filter_init(&flt);
    flt.gpu_instance_id = 2;
    OK(db_report(db, &flt, &r, g_err, sizeof g_err));
    expect_counts(&r.all, 1, 0, 0);
    expect_stat(&r.all.mttr, 1, 1400, 1400, 1400, 1400);
    db_failover_filter_init(&flt);
    flt.since_ms = 2000;
    flt.until_ms = 5000;
    OK(db_report(db, &flt, &r, g_err, sizeof g_err));
    expect_counts(&r.all, 2, 1, 0); /* s2, s3, r1 */
    expect_stat(&r.all.mttr, 2, 4200, 1400, 7000, 7000);
    db_close(db);
}

/* ---- bad inputs ---- */

static void test_bad_inputs(void **state)
{
    (void)state;
    dm_db *db = open_db();
    fo_failover f;
    fo_report r;
    int64_t n;
    db_failover_filter flt;
    db_failover_filter_init(&flt);
    assert_int_equal(db_failover_get(db, NULL, &f, g_err, sizeof g_err), DM_E_INVALID);
    assert_int_equal(db_failover_get(db, "", &f, g_err, sizeof g_err), DM_E_INVALID);
    assert_int_equal(db_failover_get(db, "unknown", &f, g_err, sizeof g_err), DM_E_NOT_FOUND);
    assert_non_null(strstr(g_err, "unknown"));
    char longid[200];
    memset(longid, 'x', sizeof longid - 1);
    longid[sizeof longid - 1] = '\0';
    assert_int_equal(db_failover_get(db, longid, &f, g_err, sizeof g_err), DM_E_NOT_FOUND);
    assert_int_equal(db_failover_get(NULL, "x", &f, g_err, sizeof g_err), DM_E_INVALID);
    assert_int_equal(db_failover_insert(db, NULL, g_err, sizeof g_err), DM_E_INVALID);
    assert_int_equal(db_failover_save(db, NULL, g_err, sizeof g_err), DM_E_INVALID);
    mk(&f, "ok", 1, FO_KIND_REAL, 1, d100, 0, END_COMPLETE);
    fo_failover bad = f;
    bad.kind = (fo_kind)9;
    assert_int_equal(db_failover_insert(db, &bad, g_err, sizeof g_err), DM_E_INVALID);
    bad = f;
    bad.id[0] = '\0';
    assert_int_equal(db_failover_insert(db, &bad, g_err, sizeof g_err), DM_E_INVALID);
    bad = f;
    memset(bad.user_id, 'u', sizeof bad.user_id); /* no NUL (DB-O3) */
    assert_int_equal(db_failover_insert(db, &bad, g_err, sizeof g_err), DM_E_INVALID);
    bad = f;
    bad.phases[3].status = (fo_phase_status)17;
    assert_int_equal(db_failover_insert(db, &bad, g_err, sizeof g_err), DM_E_INVALID);
    /* a batch with one bad record writes nothing */
    fo_failover two[2] = {f, bad};
    assert_int_equal(db_failover_insert_many(db, two, 2, g_err, sizeof g_err), DM_E_INVALID);
    OK(db_failover_count(db, &flt, &n, g_err, sizeof g_err));
    assert_int_equal(n, 0);
    flt.kind = 5;
    assert_int_equal(db_failover_count(db, &flt, &n, g_err, sizeof g_err), DM_E_INVALID);
    assert_int_equal(db_report(db, &flt, &r, g_err, sizeof g_err), DM_E_INVALID);
    db_failover_filter_init(&flt);
    flt.offset = -1;
    fo_failover *v = NULL;
    size_t vn = 0;
    assert_int_equal(db_failover_list(db, &flt, &v, &vn, g_err, sizeof g_err), DM_E_INVALID);
    assert_int_equal(db_failover_list(db, NULL, &v, &vn, g_err, sizeof g_err), DM_E_INVALID);
    db_close(db);
    db_close(NULL);
    dm_db *x = NULL;
    assert_int_equal(db_open(NULL, &x, g_err, sizeof g_err), DM_E_INVALID);
    assert_int_equal(db_open("", &x, g_err, sizeof g_err), DM_E_INVALID);
    assert_int_equal(db_open("sqlite://", &x, g_err, sizeof g_err), DM_E_INVALID);
    assert_int_equal(db_open("/nonexistent-dir/x/y.db", &x, g_err, sizeof g_err), DM_E_DB);
    assert_null(x);
}

/* DB-P1, DB-U1, DB-U2: a password never reaches a message. */
static void test_no_password_in_errors(void **state)
{
    (void)state;
    dm_db *x = NULL;
    int rc = db_open("postgresql://bob:s3cr%65tpw@127.0.0.1:1/db?connect_timeout=2", &x, g_err,
                     sizeof g_err);
    assert_int_equal(rc, DM_E_DB);
    assert_null(strstr(g_err, "s3cr"));
    assert_non_null(strstr(g_err, "postgresql://bob@127.0.0.1:1/db?..."));
    rc = db_open("postgresql://bob@127.0.0.1:1/db?password=s3cr%zzet&connect_timeout=2", &x, g_err,
                 sizeof g_err);
    assert_int_equal(rc, DM_E_DB);
    assert_null(strstr(g_err, "s3cr"));
    char out[256];
    db_url_redact("postgresql://u:p@h:5/d", out, sizeof out);
    assert_string_equal(out, "postgresql://u@h:5/d");
    db_url_redact("postgres://u:p:q@x@h/d?password=p", out, sizeof out);
    assert_string_equal(out, "postgres://u@h/d?...");
    db_url_redact("postgresql:///d", out, sizeof out);
    assert_string_equal(out, "postgresql:///d");
    db_url_redact("/var/lib/dumont.db", out, sizeof out);
    assert_string_equal(out, "/var/lib/dumont.db");
    db_url_redact("host=h password=p", out, sizeof out);
    assert_string_equal(out, "(connection string)");
}

/* ---- durability ---- */

static void test_durability(void **state)
{
    (void)state;
    dm_db *db = open_db();
    fo_failover f, g;
    mk(&f, "durable", 3, FO_KIND_SIMULATED, 5000, d100, FO_PHASE_SSH_READY, END_RUNNING);
    OK(db_failover_insert(db, &f, g_err, sizeof g_err));
    fo_event ev = {FO_EV_PHASE_FAILED, 9000, 250, 0, "ssh refused", 0, 0};
    assert_int_equal(fo_transition(&f, &ev), 0);
    OK(db_failover_save(db, &f, g_err, sizeof g_err));
    db_close(db);
    db = open_db();
    OK(db_failover_get(db, "durable", &g, g_err, sizeof g_err));
    assert_fo_equal(&f, &g);
    assert_string_equal(g.reason, "ssh_ready failed: ssh refused");
    db_close(db);
}

/* ---- DB-D1: one handle, several threads ---- */

typedef struct {
    dm_db *db;
    int t;
    int rc;
} thread_arg;

static void *writer(void *p)
{
    thread_arg *a = p;
    char err[256];
    for (int i = 0; i < 25 && a->rc == 0; i++) {
        fo_failover f;
        char id[32];
        snprintf(id, sizeof id, "t%d-%d", a->t, i);
        mk(&f, id, 1000 * a->t + i, FO_KIND_SIMULATED, i, d100, FO_PHASE_GPU_SEARCH, END_RUNNING);
        a->rc = db_failover_insert(a->db, &f, err, sizeof err);
        fo_event ev = {FO_EV_PHASE_OK, i + 300, 100, 1, NULL, 0, 0};
        fo_transition(&f, &ev);
        if (a->rc == 0)
            a->rc = db_failover_save(a->db, &f, err, sizeof err);
        db_failover_filter flt;
        db_failover_filter_init(&flt);
        fo_report r;
        if (a->rc == 0)
            a->rc = db_report(a->db, &flt, &r, err, sizeof err);
    }
    return NULL;
}

static void test_threads(void **state)
{
    (void)state;
    enum { T = 4 };
    dm_db *db = open_db();
    pthread_t th[T];
    thread_arg arg[T];
    for (int i = 0; i < T; i++) {
        arg[i] = (thread_arg){db, i, 0};
        assert_int_equal(pthread_create(&th[i], NULL, writer, &arg[i]), 0);
    }
    for (int i = 0; i < T; i++) {
        pthread_join(th[i], NULL);
        assert_int_equal(arg[i].rc, 0);
    }
    int64_t n = 0;
    db_failover_filter flt;
    db_failover_filter_init(&flt);
    OK(db_failover_count(db, &flt, &n, g_err, sizeof g_err));
    assert_int_equal(n, T * 25);
    db_close(db);
}

/* ---- many rows: batches (DBF-F2) and the list cap (DBF-F4, DB-Q3) ---- */

static void test_many(void **state)
{
    (void)state;
    size_t n = DB_LIST_MAX + 1; /* 157 batches of 64, the last one partial */
    fo_failover *f = calloc(n, sizeof *f);
    assert_non_null(f);
    for (size_t i = 0; i < n; i++) {
        char id[32];
        snprintf(id, sizeof id, "m%06zu", i);
        mk(&f[i], id, (int64_t)i, i % 3 ? FO_KIND_SIMULATED : FO_KIND_REAL, (int64_t)i, d100, 0,
           END_COMPLETE);
    }
    dm_db *db = open_db();
    OK(db_failover_insert_many(db, f, n, g_err, sizeof g_err));
    /* a duplicate in a later batch rolls back the whole call */
    fo_failover again[70];
    memcpy(again, f + 100, sizeof again);
    for (int i = 0; i < 69; i++)
        snprintf(again[i].id, sizeof again[i].id, "new%d", i);
    assert_int_equal(db_failover_insert_many(db, again, 70, g_err, sizeof g_err), DM_E_CONFLICT);
    db_failover_filter flt;
    db_failover_filter_init(&flt);
    int64_t count = 0;
    OK(db_failover_count(db, &flt, &count, g_err, sizeof g_err));
    assert_int_equal(count, (int64_t)n);
    fo_failover *v = NULL;
    size_t vn = 0;
    assert_int_equal(db_failover_list(db, &flt, &v, &vn, g_err, sizeof g_err), DM_E_TOO_BIG);
    assert_null(v);
    flt.limit = 10;
    flt.offset = (int64_t)n - 6;
    OK(db_failover_list(db, &flt, &v, &vn, g_err, sizeof g_err));
    assert_int_equal(vn, 6);
    assert_string_equal(v[5].id, "m000000");
    assert_fo_equal(&v[5], &f[0]);
    free(v);
    fo_report r;
    OK(db_report(db, &flt, &r, g_err, sizeof g_err));
    assert_int_equal(r.all.succeeded, (int64_t)n);
    assert_int_equal(r.real.succeeded, (int64_t)(n + 2) / 3);
    assert_int_equal(r.all.mttr.p50, 700);
    db_close(db);
    free(f);
}

/* ---- one controller (DB-D5, DB-D6) ---- */

/* The lock's PostgreSQL session ends: pg_terminate_backend from elsewhere. */
static void pg_kill_lock_session(void)
{
    PGconn *c = PQconnectdb(g_pg_url);
    assert_int_equal(PQstatus(c), CONNECTION_OK);
    PGresult *r =
        PQexec(c, "SELECT count(pg_terminate_backend(backend_pid::int)) FROM controller_lock");
    if (PQresultStatus(r) != PGRES_TUPLES_OK)
        fail_msg("pg_terminate_backend: %s", PQresultErrorMessage(r));
    assert_string_equal(PQgetvalue(r, 0, 0), "1");
    PQclear(r);
    PQfinish(c);
}

static void test_controller_lock(void **state)
{
    (void)state;
    dm_db *a = open_db(), *b = open_db();
    db_ctl_lock *la = NULL, *lb = NULL;
    char pid[32];
    snprintf(pid, sizeof pid, "pid=%ld ", (long)getpid());
    OK(db_ctl_lock_take(a, &la, g_err, sizeof g_err));
    OK(db_ctl_lock_check(la, g_err, sizeof g_err));
    assert_int_equal(db_ctl_lock_take(b, &lb, g_err, sizeof g_err), DM_E_BUSY);
    assert_null(lb);
    assert_non_null(strstr(g_err, pid)); /* the holder is named: host, pid, since */
    assert_non_null(strstr(g_err, "host="));
    assert_non_null(strstr(g_err, "since="));
    int v = 0; /* readers need no lock */
    OK(db_schema_version(b, &v, g_err, sizeof g_err));
    if (g_pg_url) {
        pg_kill_lock_session();
        int64_t end = clock_mono_ms() + 5000, rc = 0;
        while ((rc = db_ctl_lock_check(la, g_err, sizeof g_err)) == 0 && clock_mono_ms() < end)
            clock_sleep_ms(20, NULL);
        assert_int_equal(rc, DM_E_CONFLICT); /* lost */
        assert_non_null(strstr(g_err, "session"));
    }
    db_ctl_lock_release(la); /* the lock goes with it */
    OK(db_ctl_lock_take(b, &lb, g_err, sizeof g_err));
    OK(db_ctl_lock_check(lb, g_err, sizeof g_err));
    /* DB-D6: a fenced handle writes nothing more, and says why */
    db_fence(a);
    fo_assoc as = {.gpu_instance_id = 5, .created_at_ms = 1};
    snprintf(as.standby_id, sizeof as.standby_id, "s");
    snprintf(as.provider, sizeof as.provider, "p");
    assert_int_equal(db_assoc_put(a, &as, g_err, sizeof g_err), DM_E_DB);
    assert_non_null(strstr(g_err, "lost its lock"));
    OK(db_assoc_put(b, &as, g_err, sizeof g_err));
    db_ctl_lock_release(lb);
    db_close(a);
    db_close(b);
}

/* ---- runner ---- */

#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)

static const struct CMUnitTest tests[] = {
    T(test_backend_params),
    T(test_backend_stop),
    T(test_backend_tx),
    T(test_pg_reconnect),
    T(test_migrations_idempotent),
    T(test_migrations_concurrent),
    T(test_assoc),
    T(test_roundtrip),
    T(test_d3_conflict),
    T(test_save_transitions),
    T(test_list),
    T(test_report),
    T(test_bad_inputs),
    T(test_no_password_in_errors),
    T(test_durability),
    T(test_threads),
    T(test_many),
    T(test_controller_lock),
};

int main(void)
{
    snprintf(g_dir, sizeof g_dir, "/tmp/test_db.XXXXXX");
    if (!mkdtemp(g_dir)) {
        perror("mkdtemp");
        return 1;
    }
    int failed = cmocka_run_group_tests_name("db/sqlite", tests, NULL, NULL);
    rmdir(g_dir);
    g_pg_url = getenv("DUMONT_TEST_PG_URL");
    if (g_pg_url && *g_pg_url)
        failed += cmocka_run_group_tests_name("db/postgresql", tests, NULL, NULL);
    else
        printf("[  SKIPPED ] db/postgresql: DUMONT_TEST_PG_URL is not set "
               "(start one: scripts/pg-test-cluster.sh start DIR)\n");
    return failed ? 1 : 0;
}

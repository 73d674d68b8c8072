/* A fresh database per test, for the unit tests that run on SQLite and, when
 * DUMONT_TEST_PG_URL is set, on PostgreSQL: a SQLite file in a scratch
 * directory, or a PostgreSQL database of its own (made in setup, dropped in
 * teardown), so tests never see each other's rows.
 *
 * A test file defines DBFX_NAME (e.g. "fleet": group names and database
 * names) before including this, uses setup/teardown/open_db, and ends main()
 * with `return dbfx_run(tests, n);`. Header-only: each test is one program. */
#ifndef DUMONT_TESTS_DB_FIXTURE_H
#define DUMONT_TESTS_DB_FIXTURE_H

#include "db/db.h"

#include <dirent.h>
#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#ifndef DBFX_NAME
#error "define DBFX_NAME before including db_fixture.h"
#endif

static char g_dir[64], g_url[1200], g_err[512];
static const char *g_pg_admin; /* DUMONT_TEST_PG_URL, or NULL for SQLite */
static int g_seq;

#define OK(x) assert_int_equal((x), 0)

static void pg_exec(const char *sql)
{
    PGconn *c = PQconnectdb(g_pg_admin);
    assert_int_equal(PQstatus(c), CONNECTION_OK);
    PGresult *r = PQexec(c, sql);
    assert_int_equal(PQresultStatus(r), PGRES_COMMAND_OK);
    PQclear(r);
    PQfinish(c);
}

static void dbfx_pg_name(int seq, char *out, size_t len)
{
    snprintf(out, len, "dumont_%s_%d_%d", DBFX_NAME, (int)getpid(), seq);
}

static int setup(void **state)
{
    (void)state;
    g_seq++;
    if (!g_pg_admin) {
        snprintf(g_url, sizeof g_url, "%s/t%d.db", g_dir, g_seq);
        return 0;
    }
    char sql[200], name[96];
    dbfx_pg_name(g_seq, name, sizeof name);
    snprintf(sql, sizeof sql, "CREATE DATABASE %s", name);
    pg_exec(sql);
    /* The admin URL with its database replaced: ".../dumont_test" -> ".../name". */
    const char *q = strchr(g_pg_admin, '?'), *slash = strrchr(g_pg_admin, '/');
    snprintf(g_url, sizeof g_url, "%.*s/%s%s", (int)(slash - g_pg_admin), g_pg_admin, name,
             q ? q : "");
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    if (g_pg_admin) {
        char sql[200], name[96];
        dbfx_pg_name(g_seq, name, sizeof name);
        snprintf(sql, sizeof sql, "DROP DATABASE IF EXISTS %s WITH (FORCE)", name);
        pg_exec(sql);
    }
    return 0;
}

static dm_db *open_db(void)
{
    dm_db *db = NULL;
    if (db_open(g_url, &db, g_err, sizeof g_err) != 0)
        fail_msg("db_open %s: %s", g_url, g_err);
    return db;
}

/* Runs the tests on SQLite, then on PostgreSQL when it is there; leaves no
 * files behind (the scratch directory holds plain files only). Returns the
 * number of failures. */
static int dbfx_run(const struct CMUnitTest *tests, size_t n)
{
    snprintf(g_dir, sizeof g_dir, "/tmp/test_%s.XXXXXX", DBFX_NAME);
    if (!mkdtemp(g_dir))
        return 1;
    int failed = _cmocka_run_group_tests(DBFX_NAME "/sqlite", tests, n, NULL, NULL);
    const char *pg = getenv("DUMONT_TEST_PG_URL");
    if (pg && *pg) {
        g_pg_admin = pg;
        failed += _cmocka_run_group_tests(DBFX_NAME "/postgresql", tests, n, NULL, NULL);
    } else {
        printf("[  SKIPPED ] %s/postgresql: DUMONT_TEST_PG_URL is not set\n", DBFX_NAME);
    }
    DIR *d = opendir(g_dir); /* the private scratch directory: everything in it goes */
    for (struct dirent *e; d && (e = readdir(d));) {
        char f[sizeof g_dir + 256 + 2];
        if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0) {
            snprintf(f, sizeof f, "%s/%s", g_dir, e->d_name);
            unlink(f);
        }
    }
    if (d)
        closedir(d);
    if (rmdir(g_dir) != 0)
        failed++;
    return failed;
}

#endif

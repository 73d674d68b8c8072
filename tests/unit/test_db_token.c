/* API credentials in the database (src/db/db_token.h DB-T1 to DB-T4), on SQLite and,
 * with DUMONT_TEST_PG_URL, on PostgreSQL. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#define DBFX_NAME "token"
#include "db_fixture.h"

#include "db/db_token.h"
#include "util/error.h"
#include "util/secret.h"

/* DB-T1, DB-T2: made once, found by its secret alone; names checked. */
static void test_create_lookup(void **state)
{
    (void)state;
    dm_db *db = open_db();
    db_token t = {.name = "grafana", .role = "viewer", .created_at_ms = 1000};
    char secret[DB_TOKEN_HEX_LEN + 1], again[DB_TOKEN_HEX_LEN + 1];
    OK(db_token_create(db, &t, secret, sizeof secret, g_err, sizeof g_err));
    assert_int_equal(strlen(secret), DB_TOKEN_HEX_LEN);
    assert_int_equal(db_token_create(db, &t, again, sizeof again, g_err, sizeof g_err),
                     DM_E_CONFLICT); /* DB-T2: unique names */
    db_token got;
    OK(db_token_lookup(db, secret, 5000, &got, g_err, sizeof g_err));
    assert_string_equal(got.name, "grafana");
    assert_string_equal(got.role, "viewer");
    assert_int_equal(got.instance_id, 0);
    assert_int_equal(got.created_at_ms, 1000);
    /* a near miss is not a token */
    char wrong[DB_TOKEN_HEX_LEN + 1];
    memcpy(wrong, secret, sizeof wrong);
    wrong[0] = wrong[0] == 'a' ? 'b' : 'a';
    assert_int_equal(db_token_lookup(db, wrong, 5000, &got, g_err, sizeof g_err), DM_E_NOT_FOUND);
    assert_int_equal(db_token_lookup(db, "", 5000, &got, g_err, sizeof g_err), DM_E_NOT_FOUND);
    /* DB-T1: only the hash is stored: the list and every column lack the secret */
    db_token *v = NULL;
    size_t n = 0;
    OK(db_token_list(db, &v, &n, g_err, sizeof g_err));
    assert_int_equal(n, 1);
    free(v);
    /* DB-T2: names and roles */
    static const char *const bad_names[] = {"", "admin", "a b", "a/b", "x\n", "é", NULL};
    for (const char *const *p = bad_names; *p; p++) {
        db_token b = {.role = "viewer"};
        snprintf(b.name, sizeof b.name, "%s", *p);
        assert_int_equal(db_token_create(db, &b, again, sizeof again, g_err, sizeof g_err),
                         DM_E_INVALID);
    }
    db_token r = {.name = "root", .role = "admin"};
    assert_int_equal(db_token_create(db, &r, again, sizeof again, g_err, sizeof g_err),
                     DM_E_INVALID);
    db_token a = {.name = "a", .role = "agent"}; /* an agent names its instance */
    assert_int_equal(db_token_create(db, &a, again, sizeof again, g_err, sizeof g_err),
                     DM_E_INVALID);
    db_token vi = {.name = "vi", .role = "viewer", .instance_id = 3}; /* only an agent does */
    assert_int_equal(db_token_create(db, &vi, again, sizeof again, g_err, sizeof g_err),
                     DM_E_INVALID);
    assert_true(db_token_name_ok("agent-20001.x_Y"));
    db_close(db);
}

/* DB-T3: last used is written at most once per DB_TOKEN_TOUCH_MS. */
static void test_touch(void **state)
{
    (void)state;
    dm_db *db = open_db();
    db_token t = {.name = "v", .role = "viewer", .created_at_ms = 1, .last_used_ms = FO_NULL};
    char secret[DB_TOKEN_HEX_LEN + 1];
    OK(db_token_create(db, &t, secret, sizeof secret, g_err, sizeof g_err));
    db_token got, *v = NULL;
    size_t n = 0;
    OK(db_token_list(db, &v, &n, g_err, sizeof g_err));
    assert_int_equal(v[0].last_used_ms, FO_NULL); /* never used */
    free(v);
    OK(db_token_lookup(db, secret, 100000, &got, g_err, sizeof g_err));
    assert_int_equal(got.last_used_ms, 100000);
    OK(db_token_lookup(db, secret, 100000 + DB_TOKEN_TOUCH_MS - 1, &got, g_err, sizeof g_err));
    assert_int_equal(got.last_used_ms, 100000); /* not written again within the minute */
    OK(db_token_lookup(db, secret, 100000 + DB_TOKEN_TOUCH_MS, &got, g_err, sizeof g_err));
    assert_int_equal(got.last_used_ms, 100000 + DB_TOKEN_TOUCH_MS);
    OK(db_token_list(db, &v, &n, g_err, sizeof g_err));
    assert_int_equal(v[0].last_used_ms, 100000 + DB_TOKEN_TOUCH_MS);
    free(v);
    db_close(db);
}

/* DB-T4: agent credentials per instance; revoke by name and by instance. */
static void test_agents_and_revoke(void **state)
{
    (void)state;
    dm_db *db = open_db();
    char s1[DB_TOKEN_HEX_LEN + 1], s2[DB_TOKEN_HEX_LEN + 1], s3[DB_TOKEN_HEX_LEN + 1];
    char name[DB_TOKEN_NAME_MAX];
    OK(db_token_create_agent(db, 20001, 1, s1, sizeof s1, name, sizeof name, g_err, sizeof g_err));
    assert_string_equal(name, "agent-20001");
    OK(db_token_create_agent(db, 20001, 2, s2, sizeof s2, name, sizeof name, g_err, sizeof g_err));
    assert_string_equal(name, "agent-20001-2"); /* a re-provision adds one */
    OK(db_token_create_agent(db, 20002, 3, s3, sizeof s3, name, sizeof name, g_err, sizeof g_err));
    assert_string_not_equal(s1, s2);
    db_token got;
    OK(db_token_lookup(db, s2, 10, &got, g_err, sizeof g_err));
    assert_string_equal(got.role, "agent");
    assert_int_equal(got.instance_id, 20001);
    int64_t gone = 0;
    OK(db_token_revoke_instance(db, 20001, &gone, g_err, sizeof g_err));
    assert_int_equal(gone, 2);
    assert_int_equal(db_token_lookup(db, s1, 10, &got, g_err, sizeof g_err), DM_E_NOT_FOUND);
    assert_int_equal(db_token_lookup(db, s2, 10, &got, g_err, sizeof g_err), DM_E_NOT_FOUND);
    OK(db_token_lookup(db, s3, 10, &got, g_err, sizeof g_err)); /* another instance's stays */
    OK(db_token_revoke(db, "agent-20002", g_err, sizeof g_err));
    assert_int_equal(db_token_lookup(db, s3, 10, &got, g_err, sizeof g_err), DM_E_NOT_FOUND);
    assert_int_equal(db_token_revoke(db, "agent-20002", g_err, sizeof g_err), DM_E_NOT_FOUND);
    db_close(db);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_create_lookup, setup, teardown),
        cmocka_unit_test_setup_teardown(test_touch, setup, teardown),
        cmocka_unit_test_setup_teardown(test_agents_and_revoke, setup, teardown),
    };
    return dbfx_run(tests, sizeof tests / sizeof tests[0]);
}

/* db/db_alert.h DB-DA1 to DB-DA4 on SQLite and, with DUMONT_TEST_PG_URL, PostgreSQL:
 * destinations, the delivery queue's one row per key, due order, retries,
 * ends, and removal with its queue. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#define DBFX_NAME "db_alert"
#include "db_fixture.h"

#include "db/db_alert.h"
#include "util/error.h"

static void add(dm_db *db, const char *name, int64_t created)
{
    db_alert a;
    memset(&a, 0, sizeof a);
    snprintf(a.name, sizeof a.name, "%s", name);
    snprintf(a.kind, sizeof a.kind, "webhook");
    a.url_sealed = "v1:00";
    snprintf(a.url_shown, sizeof a.url_shown, "https://h/\xe2\x80\xa6");
    a.secret_sealed = "v1:11";
    snprintf(a.notify_on, sizeof a.notify_on, "started,failed");
    a.created_at_ms = created;
    OK(db_alert_add(db, &a, g_err, sizeof g_err));
}

static int enqueue(dm_db *db, const char *key, const char *alert, int64_t at)
{
    db_delivery d;
    memset(&d, 0, sizeof d);
    snprintf(d.delivery_key, sizeof d.delivery_key, "%s", key);
    snprintf(d.alert_name, sizeof d.alert_name, "%s", alert);
    snprintf(d.event_key, sizeof d.event_key, "ev-%s", key);
    snprintf(d.event_type, sizeof d.event_type, "failover.started");
    d.body = "{\"x\":1}";
    d.queued_at_ms = d.next_at_ms = at;
    int inserted = -1;
    OK(db_delivery_enqueue(db, &d, &inserted, g_err, sizeof g_err));
    return inserted;
}

static void test_alerts_rows(void **state)
{
    (void)state;
    dm_db *db = open_db();
    add(db, "ops", 100);
    db_alert a;
    memset(&a, 0, sizeof a);
    snprintf(a.name, sizeof a.name, "ops");
    a.url_sealed = "v1:22";
    assert_int_equal(db_alert_add(db, &a, g_err, sizeof g_err), DM_E_CONFLICT);
    char name[64];
    OK(db_alert_next_name(db, "slack", name, sizeof name, g_err, sizeof g_err));
    assert_string_equal(name, "slack-1");
    add(db, "slack-1", 200);
    OK(db_alert_next_name(db, "slack", name, sizeof name, g_err, sizeof g_err));
    assert_string_equal(name, "slack-2");
    OK(db_alert_get(db, "ops", &a, g_err, sizeof g_err));
    assert_string_equal(a.url_sealed, "v1:00"); /* DB-DA1: as sealed */
    assert_string_equal(a.secret_sealed, "v1:11");
    assert_string_equal(a.notify_on, "started,failed");
    assert_int_equal(a.created_at_ms, 100);
    assert_int_equal(a.queued, 0);
    assert_int_equal(a.last_delivered_ms, FO_NULL);
    db_alert_done(&a);
    db_alert *v = NULL;
    size_t n = 0;
    OK(db_alert_list(db, &v, &n, g_err, sizeof g_err));
    assert_int_equal(n, 2);
    assert_string_equal(v[0].name, "ops");
    assert_string_equal(v[1].name, "slack-1");
    for (size_t i = 0; i < n; i++)
        db_alert_done(&v[i]);
    free(v);
    assert_int_equal(db_alert_get(db, "nope", &a, g_err, sizeof g_err), DM_E_NOT_FOUND);
    db_close(db);
}

/* DB-DA2, DB-DA3. */
static void test_queue(void **state)
{
    (void)state;
    dm_db *db = open_db();
    add(db, "ops", 0);
    assert_int_equal(enqueue(db, "k1", "ops", 1000), 1);
    assert_int_equal(enqueue(db, "k1", "ops", 5000), 0); /* DB-DA2: one row per key */
    assert_int_equal(enqueue(db, "k2", "ops", 2000), 1);
    assert_int_equal(enqueue(db, "k3", "ops", 9000), 1);
    int64_t next = 0;
    OK(db_delivery_next_at(db, &next, g_err, sizeof g_err));
    assert_int_equal(next, 1000);
    db_delivery *due = NULL;
    size_t n = 0;
    OK(db_delivery_due(db, 2500, 10, &due, &n, g_err, sizeof g_err));
    assert_int_equal(n, 2);
    assert_string_equal(due[0].delivery_key, "k1");
    assert_string_equal(due[1].delivery_key, "k2");
    assert_string_equal(due[0].body, "{\"x\":1}");
    assert_int_equal(due[0].attempts, 0);
    assert_int_equal(due[0].last_status, FO_NULL);
    for (size_t i = 0; i < n; i++)
        db_delivery_done(&due[i]);
    free(due);
    OK(db_delivery_retry(db, "k1", 1, 8000, 503, "HTTP 503", g_err, sizeof g_err));
    OK(db_delivery_finish(db, "k2", "delivered", 1, 200, NULL, 2600, g_err, sizeof g_err));
    assert_int_equal(db_delivery_finish(db, "k3", "sent", 1, 200, NULL, 1, g_err, sizeof g_err),
                     DM_E_INVALID);
    OK(db_delivery_due(db, 7999, 10, &due, &n, g_err, sizeof g_err));
    assert_int_equal(n, 0); /* k1 waits, k2 ended, k3 not due */
    free(due);
    OK(db_delivery_due(db, 9000, 10, &due, &n, g_err, sizeof g_err));
    assert_int_equal(n, 2);
    assert_string_equal(due[0].delivery_key, "k1");
    assert_int_equal(due[0].attempts, 1);
    assert_int_equal(due[0].last_status, 503);
    assert_string_equal(due[0].last_error, "HTTP 503");
    for (size_t i = 0; i < n; i++)
        db_delivery_done(&due[i]);
    free(due);
    db_alert a;
    OK(db_alert_get(db, "ops", &a, g_err, sizeof g_err));
    assert_int_equal(a.queued, 2);
    assert_int_equal(a.delivered, 1);
    assert_int_equal(a.last_delivered_ms, 2600);
    assert_string_equal(a.last_error, "HTTP 503");
    db_alert_done(&a);
    /* a finished row cannot be finished again, nor retried */
    OK(db_delivery_finish(db, "k2", "refused", 2, 404, "x", 3000, g_err, sizeof g_err));
    OK(db_delivery_list(db, "ops", 10, &due, &n, g_err, sizeof g_err));
    assert_int_equal(n, 3);
    for (size_t i = 0; i < n; i++) {
        if (strcmp(due[i].delivery_key, "k2") == 0) {
            assert_string_equal(due[i].state, "delivered");
            assert_int_equal(due[i].done_at_ms, 2600);
        }
        db_delivery_done(&due[i]);
    }
    free(due);
    int64_t pruned = 0;
    OK(db_delivery_prune(db, 3000, &pruned, g_err, sizeof g_err));
    assert_int_equal(pruned, 1);
    db_close(db);
}

/* DB-DA4. */
static void test_remove_takes_queue(void **state)
{
    (void)state;
    dm_db *db = open_db();
    add(db, "ops", 0);
    add(db, "other", 0);
    enqueue(db, "a1", "ops", 1);
    enqueue(db, "b1", "other", 1);
    OK(db_alert_remove(db, "ops", g_err, sizeof g_err));
    assert_int_equal(db_alert_remove(db, "ops", g_err, sizeof g_err), DM_E_NOT_FOUND);
    db_delivery *due = NULL;
    size_t n = 0;
    OK(db_delivery_due(db, 10, 10, &due, &n, g_err, sizeof g_err));
    assert_int_equal(n, 1);
    assert_string_equal(due[0].alert_name, "other");
    db_delivery_done(&due[0]);
    free(due);
    db_close(db);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_alerts_rows, setup, teardown),
        cmocka_unit_test_setup_teardown(test_queue, setup, teardown),
        cmocka_unit_test_setup_teardown(test_remove_takes_queue, setup, teardown),
    };
    return dbfx_run(tests, sizeof tests / sizeof tests[0]);
}

/* The control channel, controller side (provider/channel.h PROV-CH1 to
 * PROV-CH5) over its table (db/db_command.h DB-C1 to DB-C3), on SQLite and,
 * with DUMONT_TEST_PG_URL, PostgreSQL. The agent's side runs against a real
 * server in tests/integration/test_channel.sh. */
#define DBFX_NAME "channel"
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "db_fixture.h"
#include "db/db_command.h"
#include "provider/channel.h"
#include "util/clock.h"
#include "util/error.h"

#include <pthread.h>

static db_command cmd_of(const char *id, int64_t inst, int64_t epoch, const char *kind)
{
    db_command c = {.instance_id = inst, .epoch = epoch, .created_ms = 1};
    snprintf(c.id, sizeof c.id, "%s", id);
    snprintf(c.kind, sizeof c.kind, "%s", kind);
    snprintf(c.args, sizeof c.args, "{}");
    return c;
}

/* DB-C1, DB-C2, DB-C3 */
static void test_table(void **state)
{
    (void)state;
    dm_db *db = open_db();
    db_command a = cmd_of("a", 7, 2, "restore"), got, again, next;
    OK(db_command_put(db, &a, &got, g_err, sizeof g_err));
    assert_string_equal(got.state, "queued");
    assert_int_equal(got.seq, 1);
    db_command b = cmd_of("b", 7, 2, "ping");
    OK(db_command_put(db, &b, &got, g_err, sizeof g_err));
    assert_int_equal(got.seq, 2);
    OK(db_command_put(db, &a, &again, g_err, sizeof g_err)); /* DB-C1: the same row */
    assert_int_equal(again.seq, 1);
    db_command other = cmd_of("a", 7, 2, "stop");
    assert_int_equal(db_command_put(db, &other, &got, g_err, sizeof g_err), DM_E_CONFLICT);
    OK(db_command_next(db, 7, 0, &next, g_err, sizeof g_err)); /* DB-C2: in order */
    assert_string_equal(next.id, "a");
    OK(db_command_next(db, 7, 1, &next, g_err, sizeof g_err));
    assert_string_equal(next.id, "b");
    assert_int_equal(db_command_next(db, 7, 2, &next, g_err, sizeof g_err), DM_E_NOT_FOUND);
    assert_int_equal(db_command_next(db, 8, 0, &next, g_err, sizeof g_err), DM_E_NOT_FOUND);
    /* DB-C3: another instance cannot answer; the first answer stays */
    assert_int_equal(db_command_finish(db, 8, "a", "done", "{}", 5, g_err, sizeof g_err),
                     DM_E_NOT_FOUND);
    OK(db_command_finish(db, 7, "a", "done", "{\"bytes\":3}", 5, g_err, sizeof g_err));
    OK(db_command_finish(db, 7, "a", "failed", "{\"error\":\"x\"}", 6, g_err, sizeof g_err));
    OK(db_command_get(db, "a", &got, g_err, sizeof g_err));
    assert_string_equal(got.state, "done");
    assert_string_equal(got.result, "{\"bytes\":3}");
    assert_int_equal(got.done_ms, 5);
    OK(db_command_next(db, 7, 0, &next, g_err, sizeof g_err)); /* answered: not handed out */
    assert_string_equal(next.id, "b");
    assert_int_equal(db_command_finish(db, 7, "b", "maybe", "{}", 5, g_err, sizeof g_err),
                     DM_E_INVALID);
    db_close(db);
}

typedef struct {
    prov_channel *ch;
    int64_t inst, wait_ms, took_ms;
    int rc, have, busy;
    db_command got;
} poller;

static void *poll_main(void *arg)
{
    poller *p = arg;
    char err[256];
    int64_t t0 = clock_mono_ms();
    p->rc = chan_poll(p->ch, p->inst, 0, p->wait_ms, &p->got, &p->have, &p->busy, err, sizeof err);
    p->took_ms = clock_mono_ms() - t0;
    return NULL;
}

typedef struct {
    prov_channel *ch;
    int rc;
    db_command got;
    char err[256];
} caller;

static void *call_main(void *arg)
{
    caller *c = arg;
    c->rc = chan_call(c->ch, 9, 4, "restore-9-s", "restore", "{\"snapshot_id\":\"s\"}", 20000,
                      &c->got, c->err, sizeof c->err);
    return NULL;
}

/* PROV-CH2: a waiting poll wakes when a command is queued, long before its
 * wait ends; PROV-CH1: the caller gets the agent's answer, and asking again
 * returns it at once without a second command. */
static void test_wake_and_idempotence(void **state)
{
    (void)state;
    dm_db *db = open_db();
    prov_channel *ch = NULL;
    OK(chan_open(db, &ch, g_err, sizeof g_err));
    assert_int_equal(chan_last_heard(ch, 9), -1);
    poller p = {.ch = ch, .inst = 9, .wait_ms = CHAN_WAIT_MAX_MS};
    pthread_t pt, ct;
    assert_int_equal(pthread_create(&pt, NULL, poll_main, &p), 0);
    clock_sleep_ms(150, NULL); /* the poll is waiting (it would give up at 1 s) */
    caller c = {.ch = ch};
    assert_int_equal(pthread_create(&ct, NULL, call_main, &c), 0);
    pthread_join(pt, NULL);
    OK(p.rc);
    assert_int_equal(p.have, 1);
    assert_string_equal(p.got.id, "restore-9-s");
    assert_int_equal(p.got.epoch, 4);
    assert_true(p.took_ms < CHAN_WAIT_MAX_MS); /* woken, not timed out */
    assert_true(chan_last_heard(ch, 9) >= 0); /* PROV-CH5 */
    OK(chan_answer(ch, 9, "restore-9-s", "done", "{\"source\":\"mirror\"}", g_err, sizeof g_err));
    pthread_join(ct, NULL);
    OK(c.rc);
    assert_string_equal(c.got.state, "done");
    assert_string_equal(c.got.result, "{\"source\":\"mirror\"}");
    /* asked again (a restarted controller): the same answer, no new command */
    int64_t t0 = clock_mono_ms();
    call_main(&c);
    OK(c.rc);
    assert_string_equal(c.got.result, "{\"source\":\"mirror\"}");
    assert_true(clock_mono_ms() - t0 < 5000);
    db_command none;
    assert_int_equal(db_command_next(db, 9, 0, &none, g_err, sizeof g_err), DM_E_NOT_FOUND);
    chan_shutdown(ch);
    chan_close(ch);
    db_close(db);
}

/* An agent that never answers: the call ends at its timeout, saying the agent
 * never polled; PROV-CH4: shutdown ends a waiting call and a waiting poll. */
static void test_timeout_and_shutdown(void **state)
{
    (void)state;
    dm_db *db = open_db();
    prov_channel *ch = NULL;
    db_command got;
    OK(chan_open(db, &ch, g_err, sizeof g_err));
    assert_int_equal(chan_call(ch, 5, 1, "ping-5", "ping", NULL, 300, &got, g_err, sizeof g_err),
                     DM_E_UNAVAILABLE);
    assert_non_null(strstr(g_err, "never polled"));
    poller p = {.ch = ch, .inst = 6, .wait_ms = 20000};
    caller c = {.ch = ch};
    pthread_t pt, ct;
    assert_int_equal(pthread_create(&pt, NULL, poll_main, &p), 0);
    assert_int_equal(pthread_create(&ct, NULL, call_main, &c), 0);
    clock_sleep_ms(300, NULL);
    chan_shutdown(ch);
    pthread_join(pt, NULL);
    pthread_join(ct, NULL);
    OK(p.rc);
    assert_int_equal(p.have, 0);
    assert_true(p.took_ms < 10000);
    assert_int_equal(c.rc, DM_E_CANCELLED);
    chan_close(ch);
    db_close(db);
}

/* PROV-CH6: the lease as the controller sees it; PROV-CH7: a call whose agent
 * went silent ends then, not at its timeout. */
static void test_lease(void **state)
{
    (void)state;
    dm_db *db = open_db();
    prov_channel *ch = NULL;
    db_command got;
    int have, busy;
    OK(chan_open(db, &ch, g_err, sizeof g_err));
    chan_set_lease(ch, 300);
    assert_int_equal(chan_lease_ms(ch), 300);
    assert_int_equal(chan_lease_expired(NULL, 11, 0), 0); /* fail closed */
    OK(chan_poll(ch, 11, 0, 0, &got, &have, &busy, g_err, sizeof g_err));
    assert_int_equal(chan_lease_expired(ch, 11, 0), 0);
    assert_int_equal(chan_lease_expired(ch, 12, 0), 0); /* never heard: from the start */
    clock_sleep_ms(450, NULL);
    assert_int_equal(chan_lease_expired(ch, 11, 0), 1);
    assert_int_equal(chan_lease_expired(ch, 11, 60000), 0); /* within the margin */
    assert_int_equal(chan_lease_expired(ch, 12, 0), 1);
    int64_t t0 = clock_mono_ms();
    assert_int_equal(chan_call(ch, 11, 1, "restore-11-x", "restore", NULL, 60000, &got, g_err,
                               sizeof g_err),
                     DM_E_UNAVAILABLE);
    assert_non_null(strstr(g_err, "went silent"));
    assert_true(clock_mono_ms() - t0 < 30000); /* not the 60 s timeout */
    chan_shutdown(ch);
    chan_close(ch);
    db_close(db);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_table, setup, teardown),
        cmocka_unit_test_setup_teardown(test_wake_and_idempotence, setup, teardown),
        cmocka_unit_test_setup_teardown(test_timeout_and_shutdown, setup, teardown),
        cmocka_unit_test_setup_teardown(test_lease, setup, teardown),
    };
    return dbfx_run(tests, sizeof tests / sizeof tests[0]);
}

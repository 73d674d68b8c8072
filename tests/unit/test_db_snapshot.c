/* Tests of the snapshots agents report (src/db/db_fleet.h FLEET-F3, FLEET-F4;
 * src/db/db_snapshot.c DBSNAP-S1 to DBSNAP-S3), on SQLite and, when DUMONT_TEST_PG_URL is
 * set, on PostgreSQL (a database of its own, made and dropped here). The
 * machine and workload rows FLEET-F3 reads are written with plain SQL, so these
 * tests depend on nothing but the schema (migration 3). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "db/db_fleet.h"
#include "db/db_instance.h"
#include "db/db_internal.h"
#include "core/failover.h"
#include "util/error.h"

#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define DBFX_NAME "dm_snapshot"
#include "db_fixture.h"

static void sql(dm_db *db, const char *q)
{
    pthread_mutex_lock(&db->lock);
    int rc = db_x(db, q, NULL, 0, NULL, NULL, NULL, g_err, sizeof g_err);
    pthread_mutex_unlock(&db->lock);
    if (rc)
        fail_msg("%s: %s", q, g_err);
}

static void machine(dm_db *db, int64_t id, const char *wl, int64_t epoch, const char *state,
                    int test)
{
    char q[512];
    snprintf(q, sizeof q,
             "INSERT INTO machines (instance_id, workload_id, provider, epoch, state, test,"
             " created_at_ms) VALUES (%lld, '%s', 'local', %lld, '%s', %d, 1)",
             (long long)id, wl, (long long)epoch, state, test);
    sql(db, q);
}

static void workload(dm_db *db, const char *wl, int64_t serving, int64_t epoch)
{
    char q[512];
    snprintf(q, sizeof q,
             "INSERT INTO workloads (workload_id, name, heartbeat_ms, snapshot_every_ms,"
             " requirements, protected, serving_instance_id, epoch, state, created_at_ms)"
             " VALUES ('%s', 'n', 200, 30000, '{}', 1, %lld, %lld, 'running', 1)",
             wl, (long long)serving, (long long)epoch);
    sql(db, q);
}

static dm_snapshot snap(const char *id, int64_t instance, int64_t epoch, int64_t created)
{
    dm_snapshot s;
    memset(&s, 0, sizeof s);
    snprintf(s.snapshot_id, sizeof s.snapshot_id, "%s", id);
    s.instance_id = instance;
    s.epoch = epoch;
    snprintf(s.store_url, sizeof s.store_url, "file:///tmp/store");
    s.size_bytes = 1000;
    s.stored_bytes = 100;
    s.files = 3;
    s.created_at_ms = created;
    s.creation_time_ms = 12;
    snprintf(s.trigger, sizeof s.trigger, "scheduled");
    return s;
}

/* DBSNAP-S2 and the hand-started agent: recorded with no workload; FLEET-F3 duplicate. */
static void test_unmanaged(void **state)
{
    (void)state;
    dm_db *db = open_db();
    dm_instance in;
    memset(&in, 0, sizeof in);
    in.instance_id = 7;
    snprintf(in.kind, sizeof in.kind, "gpu");
    snprintf(in.key_id, sizeof in.key_id, "k");
    snprintf(in.state, sizeof in.state, "pending");
    in.registered_at_ms = 1;
    OK(db_instance_register(db, &in, g_err, sizeof g_err));
    dm_snapshot s = snap("aa01", 7, 0, 1000), got;
    OK(db_snapshot_record(db, &s, g_err, sizeof g_err));
    assert_string_equal(s.workload_id, "");
    assert_true(s.reported_at_ms > 0);
    OK(db_snapshot_record(db, &s, g_err, sizeof g_err)); /* the same id: a no-op */
    s.size_bytes = 5;
    OK(db_snapshot_record(db, &s, g_err, sizeof g_err));
    OK(db_snapshot_get(db, "aa01", &got, g_err, sizeof g_err));
    assert_int_equal(got.size_bytes, 1000); /* the first record stands */
    assert_int_equal(got.files, 3);
    assert_string_equal(got.store_url, "file:///tmp/store");
    assert_string_equal(got.trigger, "scheduled");
    dm_snapshot *list = NULL;
    size_t n = 9;
    OK(db_snapshot_list(db, 7, 10, &list, &n, g_err, sizeof g_err));
    assert_int_equal(n, 1);
    free(list);
    s = snap("aa02", 99, 0, 1000); /* nobody knows 99 */
    assert_int_equal(db_snapshot_record(db, &s, g_err, sizeof g_err), DM_E_NOT_FOUND);
    assert_int_equal(db_snapshot_get(db, "aa02", &got, g_err, sizeof g_err), DM_E_NOT_FOUND);
    s = snap("aa03", 7, 0, 1000);
    snprintf(s.trigger, sizeof s.trigger, "bogus");
    assert_int_equal(db_snapshot_record(db, &s, g_err, sizeof g_err), DM_E_INVALID);
    s = snap("", 7, 0, 1000);
    assert_int_equal(db_snapshot_record(db, &s, g_err, sizeof g_err), DM_E_INVALID);
    s = snap("aa04", 7, -1, 1000);
    assert_int_equal(db_snapshot_record(db, &s, g_err, sizeof g_err), DM_E_INVALID);
    assert_int_equal(db_snapshot_list(db, 7, 0, &list, &n, g_err, sizeof g_err), DM_E_INVALID);
    db_close(db);
}

/* F3's refusals, F4's newest point. */
static void test_fenced_and_stale(void **state)
{
    (void)state;
    dm_db *db = open_db();
    workload(db, "wl-1", 20002, 2);
    machine(db, 20001, "wl-1", 1, "destroyed", 0); /* the old, fenced instance */
    machine(db, 20002, "wl-1", 2, "running", 0);   /* serves wl-1 at epoch 2 */
    machine(db, 20003, "wl-1", 1, "running", 0);   /* alive, of an older epoch */
    machine(db, 20004, "wl-1", 1, "running", 1);   /* a test-real instance */
    machine(db, 20005, "wl-1", 2, "running", 0);   /* a new instance, not serving yet */
    dm_snapshot s = snap("bb01", 20001, 2, 5000), got;
    assert_int_equal(db_snapshot_record(db, &s, g_err, sizeof g_err), DM_E_CONFLICT);
    assert_non_null(strstr(g_err, "destroyed"));
    s = snap("bb02", 20003, 2, 5000); /* its agent claims the new epoch: the machine's counts */
    assert_int_equal(db_snapshot_record(db, &s, g_err, sizeof g_err), DM_E_CONFLICT);
    s = snap("bb03", 20002, 1, 5000); /* a stale epoch in the report */
    assert_int_equal(db_snapshot_record(db, &s, g_err, sizeof g_err), DM_E_CONFLICT);
    assert_non_null(strstr(g_err, "epoch"));
    const char *refused[] = {"bb01", "bb02", "bb03"}; /* DBSNAP-S3: nothing written */
    for (int i = 0; i < 3; i++)
        assert_int_equal(db_snapshot_get(db, refused[i], &got, g_err, sizeof g_err),
                         DM_E_NOT_FOUND);
    assert_int_equal(db_snapshot_latest_workload(db, "wl-1", &got, g_err, sizeof g_err),
                     DM_E_NOT_FOUND);
    s = snap("bb04", 20002, 2, 5000);
    if (db_snapshot_record(db, &s, g_err, sizeof g_err) != 0)
        fail_msg("bb04: %s", g_err);
    assert_string_equal(s.workload_id, "wl-1"); /* filled from the machine */
    s = snap("bb09", 20005, 2, 5200);           /* before it serves: accepted (FLEET-F3) */
    OK(db_snapshot_record(db, &s, g_err, sizeof g_err));
    s = snap("bb06", 20002, 3, 5500); /* a newer epoch than the workload's: not current */
    snprintf(s.trigger, sizeof s.trigger, "preempt");
    assert_int_equal(db_snapshot_record(db, &s, g_err, sizeof g_err), DM_E_CONFLICT);
    assert_non_null(strstr(g_err, "not current"));
    s.epoch = 2; /* the current one */
    OK(db_snapshot_record(db, &s, g_err, sizeof g_err));
    s = snap("bb05", 20004, 2, 6000);
    snprintf(s.trigger, sizeof s.trigger, "test-real");
    OK(db_snapshot_record(db, &s, g_err, sizeof g_err)); /* test machines are accepted */
    assert_string_equal(s.workload_id, "wl-1");
    OK(db_snapshot_latest_workload(db, "wl-1", &got, g_err, sizeof g_err));
    assert_string_equal(got.snapshot_id, "bb05"); /* FLEET-F4: the newest accepted */
    OK(db_snapshot_latest_instance(db, 20002, &got, g_err, sizeof g_err));
    assert_string_equal(got.snapshot_id, "bb06");
    assert_string_equal(got.trigger, "preempt");
    dm_snapshot *list = NULL;
    size_t n = 0;
    OK(db_snapshot_list(db, FO_NULL, 2, &list, &n, g_err, sizeof g_err));
    assert_int_equal(n, 2);
    assert_string_equal(list[0].snapshot_id, "bb05");
    assert_string_equal(list[1].snapshot_id, "bb06");
    free(list);
    OK(db_snapshot_list(db, 20002, 10, &list, &n, g_err, sizeof g_err));
    assert_int_equal(n, 2);
    free(list);
    /* the failover moved on (epoch 3, a new machine): the old server's late
     * snapshot is refused, the new one's recorded */
    sql(db, "UPDATE workloads SET serving_instance_id = 20006, epoch = 3");
    machine(db, 20006, "wl-1", 3, "running", 0);
    s = snap("bb07", 20002, 3, 7000);
    assert_int_equal(db_snapshot_record(db, &s, g_err, sizeof g_err), DM_E_CONFLICT);
    s = snap("bb08", 20006, 3, 7000);
    OK(db_snapshot_record(db, &s, g_err, sizeof g_err));
    OK(db_snapshot_latest_workload(db, "wl-1", &got, g_err, sizeof g_err));
    assert_string_equal(got.snapshot_id, "bb08");
    /* FLEET-F4 within a store: a newer snapshot recorded in another store is not
     * the restorable point of this one (orchestrator.h ORCH-O10) */
    s = snap("bb10", 20006, 3, 8000);
    snprintf(s.store_url, sizeof s.store_url, "file:///tmp/elsewhere");
    OK(db_snapshot_record(db, &s, g_err, sizeof g_err));
    OK(db_snapshot_latest_in_store(db, "wl-1", "file:///tmp/store", &got, g_err, sizeof g_err));
    assert_string_equal(got.snapshot_id, "bb08");
    OK(db_snapshot_latest_in_store(db, "wl-1", "file:///tmp/elsewhere", &got, g_err, sizeof g_err));
    assert_string_equal(got.snapshot_id, "bb10");
    assert_int_equal(
        db_snapshot_latest_in_store(db, "wl-1", "s3://none", &got, g_err, sizeof g_err),
        DM_E_NOT_FOUND);
    db_close(db);
}

/* FLEET-F4 without clocks: an agent whose clock was stepped forward stamps v2 in
 * the future; the later report v3, stamped earlier, is still the newest:
 * the server's acceptance order decides, never the agent's created_at_ms,
 * which is kept as it was sent. */
static void test_skewed_clocks(void **state)
{
    (void)state;
    dm_db *db = open_db();
    workload(db, "wl-2", 20011, 1);
    machine(db, 20011, "wl-2", 1, "running", 0);
    dm_snapshot s = snap("cc01", 20011, 1, 1000), got;
    OK(db_snapshot_record(db, &s, g_err, sizeof g_err));
    s = snap("cc02", 20011, 1, 1000 + 300000); /* v2: the clock stepped +5 min */
    OK(db_snapshot_record(db, &s, g_err, sizeof g_err));
    s = snap("cc03", 20011, 1, 2000); /* v3: stepped back, reported after v2 */
    OK(db_snapshot_record(db, &s, g_err, sizeof g_err));
    int64_t seq3 = s.seq;
    OK(db_snapshot_latest_workload(db, "wl-2", &got, g_err, sizeof g_err));
    assert_string_equal(got.snapshot_id, "cc03");
    assert_int_equal(got.created_at_ms, 2000); /* kept for display */
    assert_int_equal(got.seq, seq3);
    OK(db_snapshot_latest_in_store(db, "wl-2", "file:///tmp/store", &got, g_err, sizeof g_err));
    assert_string_equal(got.snapshot_id, "cc03");
    OK(db_snapshot_latest_instance(db, 20011, &got, g_err, sizeof g_err));
    assert_string_equal(got.snapshot_id, "cc03");
    dm_snapshot *list = NULL;
    size_t n = 0;
    OK(db_snapshot_list(db, 20011, 10, &list, &n, g_err, sizeof g_err));
    assert_int_equal(n, 3);
    assert_string_equal(list[0].snapshot_id, "cc03");
    assert_string_equal(list[1].snapshot_id, "cc02");
    assert_string_equal(list[2].snapshot_id, "cc01");
    assert_true(list[0].seq > list[1].seq && list[1].seq > list[2].seq);
    free(list);
    OK(db_snapshot_get(db, "cc02", &got, g_err, sizeof g_err));
    assert_int_equal(got.created_at_ms, 301000);
    s = snap("cc02", 20011, 1, 5); /* a retried report keeps its place (and its seq) */
    OK(db_snapshot_record(db, &s, g_err, sizeof g_err));
    OK(db_snapshot_latest_workload(db, "wl-2", &got, g_err, sizeof g_err));
    assert_string_equal(got.snapshot_id, "cc03");
    db_close(db);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_unmanaged, setup, teardown),
        cmocka_unit_test_setup_teardown(test_fenced_and_stale, setup, teardown),
        cmocka_unit_test_setup_teardown(test_skewed_clocks, setup, teardown),
    };
    return dbfx_run(tests, sizeof tests / sizeof tests[0]);
}

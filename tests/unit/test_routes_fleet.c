/* Real-failover routes (src/api/routes_fleet.c API-RF1 to API-RF4, routes_instances.c
 * API-RI1, render.c) without HTTP: requests are built in memory and passed to
 * api_route() over a real SQLite db and an orchestrator with no provider
 * attached, so every valid request reaches it and comes back 503 (API-RF1: a
 * bad one is 400 first), and the read routes are checked on rows written
 * straight into the database. Also parse_duration_ms (util/parse.h). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "api/http.h"
#include "db/db.h"
#include "db/db_fleet.h"
#include "db/db_instance.h"
#include "failover/orchestrator.h"
#include "util/clock.h"
#include "util/error.h"
#include "util/parse.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "route_fixture.h"

static int setup(void **state)
{
    *state = rfx_new("rfleet", 1);
    return 0;
}

static int teardown(void **state)
{
    rfx_free(*state);
    return 0;
}

#define BAD(fx, m, p, b) expect(fx, m, p, b, 400, "bad_request")

/* ---- API-RF1: validation before the orchestrator ----------------------------- */

static void test_launch_validation(void **state)
{
    fixture *fx = *state;
    const char *p = "/api/instances/launch";
    char body[512], file[128], ws[128];
    snprintf(file, sizeof file, "%s/afile", fx->dir);
    snprintf(ws, sizeof ws, "%s/ws", fx->dir);
    FILE *f = fopen(file, "w");
    assert_non_null(f);
    fclose(f);
    assert_int_equal(mkdir(ws, 0700), 0);

    BAD(fx, "POST", p, NULL); /* workload is required */
    BAD(fx, "POST", p, "{");
    BAD(fx, "POST", p, "[]");
    BAD(fx, "POST", p, "{\"workload\": \"x\", \"color\": \"red\"}");
    BAD(fx, "POST", p, "{\"workload\": 5}");
    BAD(fx, "POST", p, "{\"workload\": \"\"}");
    BAD(fx, "POST", p, "{\"workload\": \"a\\u0001b\"}");
    BAD(fx, "POST", p, "{\"workload\": \"x\", \"heartbeat_ms\": 5}");
    BAD(fx, "POST", p, "{\"workload\": \"x\", \"heartbeat_ms\": \"200\"}");
    BAD(fx, "POST", p, "{\"workload\": \"x\", \"snapshot_every\": \"fast\"}");
    BAD(fx, "POST", p, "{\"workload\": \"x\", \"snapshot_every\": \"30\"}"); /* no unit */
    BAD(fx, "POST", p, "{\"workload\": \"x\", \"snapshot_every\": -1}");
    BAD(fx, "POST", p, "{\"workload\": \"x\", \"snapshot_every\": \"8d\"}");
    BAD(fx, "POST", p, "{\"workload\": \"x\", \"protect\": \"yes\"}");
    BAD(fx, "POST", p, "{\"workload\": \"x\", \"kind\": \"tpu\"}");
    BAD(fx, "POST", p, "{\"workload\": \"x\", \"region\": \"eu/west\"}");
    BAD(fx, "POST", p, "{\"workload\": \"x\", \"min_vram_gb\": -1}");
    BAD(fx, "POST", p, "{\"workload\": \"x\", \"min_cuda\": \"12\"}");
    BAD(fx, "POST", p, "{\"workload\": \"x\", \"max_price\": 0}");
    BAD(fx, "POST", p, "{\"workload\": \"x\", \"workspace_from\": \"relative/dir\"}"); /* API-RF2 */
    BAD(fx, "POST", p, "{\"workload\": \"x\", \"workspace_from\": \"/nonexistent/dumont\"}");
    snprintf(body, sizeof body, "{\"workload\": \"x\", \"workspace_from\": \"%s\"}", file);
    BAD(fx, "POST", p, body); /* a file, not a directory */
    /* every field valid: the orchestrator is reached, and has no provider */
    snprintf(body, sizeof body,
             "{\"workload\": \"sleep 100\", \"probe\": \"exec:true\", \"workspace_from\": \"%s\", "
             "\"model\": \"tiny\", \"heartbeat_ms\": 100, \"snapshot_every\": \"30s\", "
             "\"protect\": true, \"name\": \"w\", \"kind\": \"gpu\", \"region\": \"eu-west1\", "
             "\"min_vram_gb\": 8, \"min_cuda\": 12.1, \"max_price\": 0.5}",
             ws);
    expect(fx, "POST", p, body, 503, "unavailable");
    expect(fx, "POST", p, "{\"workload\": \"x\", \"snapshot_every\": 60000}", 503, "unavailable");
    expect(fx, "POST", p, "{\"workload\": \"x\", \"snapshot_every\": \"0\"}", 503, "unavailable");
    expect(fx, "GET", p, NULL, 400, "bad_request"); /* GET /api/instances/{id}: "launch" is no id */
}

static void test_destroy_chaos_testreal_validation(void **state)
{
    fixture *fx = *state;
    BAD(fx, "DELETE", "/api/instances/abc", NULL);
    BAD(fx, "DELETE", "/api/instances/0", NULL);
    BAD(fx, "DELETE", "/api/instances/12", "{}");
    expect(fx, "DELETE", "/api/instances/12", NULL, 503, "unavailable");

    const char *c = "/api/chaos/preempt/20001";
    BAD(fx, "POST", "/api/chaos/preempt/x", NULL);
    BAD(fx, "POST", c, "{\"notice\": \"30x\"}");
    BAD(fx, "POST", c, "{\"notice\": \"-1s\"}");
    BAD(fx, "POST", c, "{\"notice\": -5}");
    BAD(fx, "POST", c, "{\"notice\": \"2h\"}"); /* at most 1h */
    BAD(fx, "POST", c, "{\"notice\": true}");
    BAD(fx, "POST", c, "{\"wait\": \"1s\"}");
    expect(fx, "POST", c, NULL, 503, "unavailable");
    expect(fx, "POST", c, "{\"notice\": \"500ms\"}", 503, "unavailable");
    expect(fx, "POST", c, "{\"notice\": 30000}", 503, "unavailable");
    expect(fx, "GET", c, NULL, 405, "method_not_allowed");

    const char *t = "/api/standby/failover/test-real/20001";
    BAD(fx, "POST", "/api/standby/failover/test-real/-1", NULL);
    BAD(fx, "POST", t, "{\"model\": 5}");
    BAD(fx, "POST", t, "{\"model\": \"\"}");
    BAD(fx, "POST", t, "{\"keep\": \"yes\"}");
    BAD(fx, "POST", t, "{\"gpu\": 1}");
    expect(fx, "POST", t, "{\"model\": \"qwen2.5:0.5b\", \"keep\": true}", 503, "unavailable");
}

/* ---- rows written straight into the database ---------------------------- */

/* A failover of instance 20001, finished (done) or running; running ones of
 * other ids get other instances (DB-D3: one running per instance). */
static void put_failover(fixture *fx, const char *id, fo_kind kind, int test, int64_t started_ms,
                         int done)
{
    static int64_t other = 30000;
    fo_failover f;
    char err[256];
    int64_t gpu = done || strcmp(id, "real-dddddddddddd") == 0 ? 20001 : other++;
    assert_int_equal(fo_init(&f, id, gpu, kind, started_ms), 0);
    if (kind == FO_KIND_REAL) {
        f.real.test = test;
        f.real.new_instance_id = 20002;
        snprintf(f.real.workload_id, sizeof f.real.workload_id, "wl-000000000001");
        snprintf(f.real.trigger, sizeof f.real.trigger, "%s", test ? "test-real" : "failed");
        f.real.attempts = 1;
        f.real.epoch = 1;
    }
    if (done) { /* detection skipped, standby ok, search ok, then provisioning fails */
        fo_event ev = {.kind = FO_EV_PHASE_SKIP, .now_ms = started_ms};
        assert_int_equal(fo_transition(&f, &ev), 0);
        ev = (fo_event){.kind = FO_EV_PHASE_OK, .now_ms = started_ms, .duration_ms = 0};
        assert_int_equal(fo_transition(&f, &ev), 0);
        ev.duration_ms = 12;
        assert_int_equal(fo_transition(&f, &ev), 0);
        ev = (fo_event){.kind = FO_EV_PHASE_FAILED,
                        .now_ms = started_ms + 20,
                        .duration_ms = 8,
                        .detail = "no offer"};
        assert_int_equal(fo_transition(&f, &ev), 0);
    }
    if (db_failover_insert(fx->ctx.db, &f, err, sizeof err) != 0)
        fail_msg("db_failover_insert %s: %s", id, err);
}

static void test_test_real_report(void **state)
{
    fixture *fx = *state;
    const char *r = "/api/standby/failover/test-real/report/";
    int64_t now = clock_wall_ms();
    put_failover(fx, "real-aaaaaaaaaaaa", FO_KIND_REAL, 1, now, 1);
    put_failover(fx, "real-bbbbbbbbbbbb", FO_KIND_REAL, 0, now, 0);
    put_failover(fx, "sim-cccccccccccc", FO_KIND_SIMULATED, 0, now, 0);
    expect(fx, "GET", "/api/standby/failover/test-real/report/real-none", NULL, 404, "not_found");
    expect(fx, "GET", "/api/standby/failover/test-real/report/real-bbbbbbbbbbbb", NULL, 404,
           "not_found"); /* API-RF3: a real failover that is no test */
    expect(fx, "GET", "/api/standby/failover/test-real/report/sim-cccccccccccc", NULL, 404,
           "not_found");
    char path[128];
    snprintf(path, sizeof path, "%sreal-aaaaaaaaaaaa", r);
    api_response a = call(fx, "GET", path, NULL);
    assert_int_equal(a.status, 200);
    /* exactly the fields of the FailoverTestEvent in docs/api.md */
    static const char *const fields[] = {"failover_id",
                                         "gpu_instance_id",
                                         "user_id",
                                         "snapshot_id",
                                         "snapshot_size_bytes",
                                         "snapshot_creation_time_ms",
                                         "snapshot_compression",
                                         "snapshot_storage",
                                         "snapshot_storage_url",
                                         "restore_time_ms",
                                         "restore_download_time_ms",
                                         "restore_decompress_time_ms",
                                         "restore_source",
                                         "inference_model",
                                         "inference_ready_time_ms",
                                         "inference_success",
                                         "total_time_ms",
                                         "controller_down_ms",
                                         "success",
                                         "gpu_search_time_ms",
                                         "gpu_provision_time_ms",
                                         "gpu_ready_wait_time_ms",
                                         "inference_test_time_ms"};
    assert_int_equal(json_object_size(a.body), sizeof fields / sizeof fields[0]);
    for (size_t i = 0; i < sizeof fields / sizeof fields[0]; i++)
        if (!json_object_get(a.body, fields[i]))
            fail_msg("FailoverTestEvent lacks %s", fields[i]);
    assert_string_equal(json_string_value(json_object_get(a.body, "failover_id")),
                        "real-aaaaaaaaaaaa");
    assert_int_equal(json_integer_value(json_object_get(a.body, "gpu_search_time_ms")), 12);
    assert_int_equal(json_integer_value(json_object_get(a.body, "gpu_provision_time_ms")), 8);
    /* phases that did not happen are null, not 0 (FO-I2) */
    assert_true(json_is_null(json_object_get(a.body, "gpu_ready_wait_time_ms")));
    assert_true(json_is_null(json_object_get(a.body, "restore_time_ms")));
    assert_true(json_is_null(json_object_get(a.body, "inference_test_time_ms")));
    assert_true(json_is_null(json_object_get(a.body, "snapshot_size_bytes")));
    assert_true(json_is_null(json_object_get(a.body, "inference_success")));
    assert_true(json_is_false(json_object_get(a.body, "success")));
    json_decref(a.body);

    /* the status of a real failover names both instances; skipped is skipped */
    a = call(fx, "GET", "/api/standby/failover/status/real-aaaaaaaaaaaa", NULL);
    assert_int_equal(a.status, 200);
    assert_int_equal(json_integer_value(json_object_get(a.body, "old_instance_id")), 20001);
    assert_int_equal(json_integer_value(json_object_get(a.body, "new_instance_id")), 20002);
    assert_string_equal(json_string_value(json_object_get(a.body, "trigger")), "test-real");
    assert_true(json_is_true(json_object_get(a.body, "test")));
    assert_int_equal(json_integer_value(json_object_get(a.body, "attempts")), 1);
    assert_int_equal(json_integer_value(json_object_get(a.body, "epoch")), 1);
    assert_string_equal(json_string_value(json_object_get(a.body, "workload_id")),
                        "wl-000000000001");
    json_t *ph0 = json_array_get(json_object_get(a.body, "phases"), 0);
    assert_string_equal(json_string_value(json_object_get(ph0, "status")), "skipped");
    assert_true(json_is_null(json_object_get(ph0, "duration_ms")));
    json_decref(a.body);
    /* a simulated failover keeps its old shape */
    a = call(fx, "GET", "/api/standby/failover/status/sim-cccccccccccc", NULL);
    assert_null(json_object_get(a.body, "old_instance_id"));
    json_decref(a.body);
}

static void test_test_real_history(void **state)
{
    fixture *fx = *state;
    const char *h = "/api/standby/failover/test-real/history";
    int64_t now = clock_wall_ms();
    char id[32];
    for (int i = 0; i < 5; i++) { /* tests 1 h apart, the newest first at now */
        snprintf(id, sizeof id, "real-t%011d", i);
        put_failover(fx, id, FO_KIND_REAL, 1, now - (int64_t)i * 3600 * 1000, 1);
    }
    put_failover(fx, "real-notatest0001", FO_KIND_REAL, 0, now, 0);
    put_failover(fx, "sim-notatest00001", FO_KIND_SIMULATED, 0, now, 0);

    set_query(fx, NULL, NULL, NULL, NULL);
    api_response a = call(fx, "GET", h, NULL);
    assert_int_equal(a.status, 200);
    json_t *ev = json_object_get(a.body, "events");
    assert_int_equal(json_integer_value(json_object_get(a.body, "total")), 5);
    assert_int_equal(json_array_size(ev), 5);
    for (int i = 0; i < 5; i++) { /* newest first, tests only */
        snprintf(id, sizeof id, "real-t%011d", i);
        assert_string_equal(
            json_string_value(json_object_get(json_array_get(ev, i), "failover_id")), id);
    }
    json_decref(a.body);

    set_query(fx, "limit", "2", NULL, NULL);
    a = call(fx, "GET", h, NULL);
    assert_int_equal(json_array_size(json_object_get(a.body, "events")), 2);
    assert_int_equal(json_integer_value(json_object_get(a.body, "total")), 5);
    json_decref(a.body);

    set_query(fx, "since", "150m", NULL, NULL); /* the tests of the last 2.5 h: 0, 1, 2 */
    a = call(fx, "GET", h, NULL);
    assert_int_equal(json_integer_value(json_object_get(a.body, "total")), 3);
    json_decref(a.body);

    set_query(fx, "since", "150m", "until", "30m"); /* 1 and 2 */
    a = call(fx, "GET", h, NULL);
    ev = json_object_get(a.body, "events");
    assert_int_equal(json_array_size(ev), 2);
    assert_string_equal(json_string_value(json_object_get(json_array_get(ev, 0), "failover_id")),
                        "real-t00000000001");
    json_decref(a.body);

    set_query(fx, "limit", "0", NULL, NULL);
    BAD(fx, "GET", h, NULL);
    set_query(fx, "limit", "1001", NULL, NULL);
    BAD(fx, "GET", h, NULL);
    set_query(fx, "since", "yesterday", NULL, NULL);
    BAD(fx, "GET", h, NULL);
    set_query(fx, "kind", "simulated", NULL, NULL);
    BAD(fx, "GET", h, NULL);
    set_query(fx, NULL, NULL, NULL, NULL);
}

/* A workload served by machine 20001 (running), with one snapshot. */
static void put_fleet(fixture *fx)
{
    char err[256];
    dm_workload w;
    memset(&w, 0, sizeof w);
    snprintf(w.workload_id, sizeof w.workload_id, "wl-000000000001");
    snprintf(w.name, sizeof w.name, "demo");
    snprintf(w.workload_cmd, sizeof w.workload_cmd, "sleep 100");
    snprintf(w.probe_spec, sizeof w.probe_spec, "exec:true");
    snprintf(w.requirements, sizeof w.requirements, "{\"min_vram_gb\":8}");
    w.state = DM_WL_RUNNING;
    w.heartbeat_ms = 200;
    w.snapshot_every_ms = 30000;
    w.protect = 1;
    w.serving_instance_id = 20001;
    w.epoch = 1;
    w.created_at_ms = clock_wall_ms();
    assert_int_equal(db_workload_insert(fx->ctx.db, &w, err, sizeof err), 0);
    dm_machine m;
    memset(&m, 0, sizeof m);
    m.instance_id = 20001;
    snprintf(m.workload_id, sizeof m.workload_id, "%s", w.workload_id);
    snprintf(m.provider, sizeof m.provider, "local");
    snprintf(m.host, sizeof m.host, "host-a");
    snprintf(m.workspace, sizeof m.workspace, "/tmp/dumont/instances/20001/workspace");
    snprintf(m.address, sizeof m.address, "127.0.0.1:41001");
    m.state = DM_MACH_RUNNING;
    m.price_milli = 250;
    m.epoch = 1;
    m.created_at_ms = clock_wall_ms();
    m.destroyed_at_ms = FO_NULL;
    assert_int_equal(db_machine_put(fx->ctx.db, &m, err, sizeof err), 0);
    m.instance_id = 20002; /* a second one, provisioning: no agent registered yet */
    m.state = DM_MACH_PROVISIONING;
    snprintf(m.failover_id, sizeof m.failover_id, "real-aaaaaaaaaaaa");
    assert_int_equal(db_machine_put(fx->ctx.db, &m, err, sizeof err), 0);
    dm_snapshot s;
    memset(&s, 0, sizeof s);
    snprintf(s.snapshot_id, sizeof s.snapshot_id, "0123456789abcdef");
    s.instance_id = 20001;
    s.epoch = 1;
    snprintf(s.store_url, sizeof s.store_url, "file:///tmp/store");
    s.size_bytes = 1000;
    s.stored_bytes = 500;
    s.files = 3;
    s.created_at_ms = clock_wall_ms();
    s.creation_time_ms = 40;
    s.reported_at_ms = clock_wall_ms();
    snprintf(s.trigger, sizeof s.trigger, "scheduled");
    int rc = db_snapshot_record(fx->ctx.db, &s, err, sizeof err);
    if (rc)
        fail_msg("db_snapshot_record: %s", err);
}

static void test_workloads_and_instances(void **state)
{
    fixture *fx = *state;
    api_response a = call(fx, "GET", "/api/workloads", NULL);
    assert_int_equal(a.status, 200);
    assert_int_equal(json_integer_value(json_object_get(a.body, "total")), 0);
    json_decref(a.body);
    put_fleet(fx);

    a = call(fx, "GET", "/api/workloads", NULL);
    assert_int_equal(json_integer_value(json_object_get(a.body, "total")), 1);
    json_t *w = json_array_get(json_object_get(a.body, "workloads"), 0);
    assert_string_equal(json_string_value(json_object_get(w, "workload_id")), "wl-000000000001");
    assert_true(json_is_true(json_object_get(w, "protect")));
    assert_string_equal(json_string_value(json_object_get(w, "state")), "running");
    assert_int_equal(json_integer_value(json_object_get(w, "serving_instance_id")), 20001);
    assert_int_equal(json_integer_value(json_object_get(w, "epoch")), 1);
    assert_int_equal(
        json_integer_value(json_object_get(json_object_get(w, "requirements"), "min_vram_gb")), 8);
    json_t *ns = json_object_get(w, "newest_snapshot");
    assert_string_equal(json_string_value(json_object_get(ns, "snapshot_id")), "0123456789abcdef");
    json_decref(a.body);

    /* a machine no agent registered: state from the machine row (API-RI1) */
    a = call(fx, "GET", "/api/instances/20002", NULL);
    assert_int_equal(a.status, 200);
    assert_string_equal(json_string_value(json_object_get(a.body, "state")), "provisioning");
    assert_string_equal(json_string_value(json_object_get(a.body, "provider")), "local");
    assert_string_equal(json_string_value(json_object_get(a.body, "failover_id")),
                        "real-aaaaaaaaaaaa");
    assert_true(json_is_null(json_object_get(a.body, "newest_snapshot")));
    json_decref(a.body);
    a = call(fx, "GET", "/api/instances/20001", NULL);
    assert_int_equal(a.status, 200);
    assert_string_equal(json_string_value(json_object_get(a.body, "workspace")),
                        "/tmp/dumont/instances/20001/workspace");
    assert_string_equal(json_string_value(json_object_get(a.body, "address")), "127.0.0.1:41001");
    assert_string_equal(json_string_value(json_object_get(a.body, "workload_id")),
                        "wl-000000000001");
    assert_int_equal(json_integer_value(json_object_get(a.body, "epoch")), 1);
    assert_string_equal(json_string_value(json_object_get(a.body, "newest_snapshot_id")),
                        "0123456789abcdef");
    assert_true(json_is_null(json_object_get(a.body, "failover_id")));
    json_decref(a.body);
    put_failover(fx, "real-dddddddddddd", FO_KIND_REAL, 0, clock_wall_ms(), 0);
    a = call(fx, "GET", "/api/instances/20001", NULL);
    assert_string_equal(json_string_value(json_object_get(a.body, "failover_id")),
                        "real-dddddddddddd");
    json_decref(a.body);
    expect(fx, "GET", "/api/instances/20003", NULL, 404, "not_found");

    a = call(fx, "GET", "/api/instances", NULL);
    assert_int_equal(a.status, 200);
    assert_int_equal(json_integer_value(json_object_get(a.body, "total")), 2);
    json_t *arr = json_object_get(a.body, "instances");
    assert_int_equal(json_array_size(arr), 2);
    assert_int_equal(json_integer_value(json_object_get(json_array_get(arr, 0), "instance_id")),
                     20001);
    json_decref(a.body);
    /* destroyed: the state says so, and the list leaves it out once unregistered */
    char err[256];
    assert_int_equal(db_machine_set_state(fx->ctx.db, 20002, DM_MACH_DESTROYED, err, sizeof err),
                     0);
    a = call(fx, "GET", "/api/instances/20002", NULL);
    assert_string_equal(json_string_value(json_object_get(a.body, "state")), "destroyed");
    assert_true(json_is_string(json_object_get(a.body, "destroyed_at")));
    json_decref(a.body);
    a = call(fx, "GET", "/api/instances", NULL);
    assert_int_equal(json_integer_value(json_object_get(a.body, "total")), 1);
    json_decref(a.body);

    /* API-RI2: a registered instance whose agent last said "running / ok",
     * then destroyed: no live state, and hidden from the list unless all=true */
    dm_instance in;
    memset(&in, 0, sizeof in);
    in.instance_id = 20001;
    snprintf(in.kind, sizeof in.kind, "gpu");
    snprintf(in.key_id, sizeof in.key_id, "k1");
    snprintf(in.state, sizeof in.state, "healthy");
    in.state_since_ms = in.registered_at_ms = in.last_heartbeat_ms = clock_wall_ms();
    snprintf(in.workload, sizeof in.workload, "running");
    snprintf(in.probe, sizeof in.probe, "ok");
    assert_int_equal(db_instance_register(fx->ctx.db, &in, err, sizeof err), 0);
    dm_instance_event ie = {.instance_id = 20001, .at_ms = clock_wall_ms(), .silent_ms = DM_NULL,
                            .phi_milli = DM_NULL};
    snprintf(ie.what, sizeof ie.what, "workload");
    snprintf(ie.from, sizeof ie.from, "starting");
    snprintf(ie.to, sizeof ie.to, "running");
    assert_int_equal(db_instance_record(fx->ctx.db, &ie, "running", "ok", clock_wall_ms(), err,
                                        sizeof err),
                     0);
    a = call(fx, "GET", "/api/instances/20001", NULL);
    assert_string_equal(json_string_value(json_object_get(a.body, "workload")), "running");
    json_decref(a.body);
    assert_int_equal(db_machine_set_state(fx->ctx.db, 20001, DM_MACH_DESTROYED, err, sizeof err),
                     0);
    a = call(fx, "GET", "/api/instances/20001", NULL);
    assert_string_equal(json_string_value(json_object_get(a.body, "state")), "destroyed");
    assert_true(json_is_null(json_object_get(a.body, "workload")));
    assert_true(json_is_null(json_object_get(a.body, "probe")));
    assert_true(json_is_null(json_object_get(a.body, "last_heartbeat_age_ms")));
    json_decref(a.body);
    a = call(fx, "GET", "/api/instances", NULL);
    assert_int_equal(json_integer_value(json_object_get(a.body, "total")), 0);
    json_decref(a.body);
    set_query(fx, "all", "true", NULL, NULL);
    a = call(fx, "GET", "/api/instances", NULL);
    assert_int_equal(json_integer_value(json_object_get(a.body, "total")), 2);
    arr = json_object_get(a.body, "instances");
    for (size_t i = 0; i < json_array_size(arr); i++) {
        json_t *o = json_array_get(arr, i);
        assert_string_equal(json_string_value(json_object_get(o, "state")), "destroyed");
        assert_true(json_is_null(json_object_get(o, "workload")));
    }
    json_decref(a.body);
    set_query(fx, "all", "maybe", NULL, NULL);
    BAD(fx, "GET", "/api/instances", NULL);
    set_query(fx, NULL, NULL, NULL, NULL);
}

static void test_parse_duration(void **state)
{
    (void)state;
    int64_t v = -1;
    const int64_t max = INT64_MAX;
    assert_int_equal(parse_duration_ms("500ms", 0, max, &v), 0);
    assert_int_equal(v, 500);
    assert_int_equal(parse_duration_ms("30s", 0, max, &v), 0);
    assert_int_equal(v, 30000);
    assert_int_equal(parse_duration_ms("2m", 0, max, &v), 0);
    assert_int_equal(v, 120000);
    assert_int_equal(parse_duration_ms("1h", 0, max, &v), 0);
    assert_int_equal(v, 3600000);
    assert_int_equal(parse_duration_ms("7d", 0, max, &v), 0);
    assert_int_equal(v, 7 * 86400000LL);
    assert_int_equal(parse_duration_ms("0", 0, max, &v), 0);
    assert_int_equal(v, 0);
    v = 42;
    const char *bad[] = {"",
                         "30",
                         "s",
                         "-1s",
                         "+1s",
                         " 1s",
                         "1s ",
                         "1.5s",
                         "30 s",
                         "1sec",
                         "1S",
                         "0x10s",
                         "99999999999999999999ms",
                         "9223372036854775807d"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        if (parse_duration_ms(bad[i], 0, max, &v) != DM_E_INVALID)
            fail_msg("parse_duration_ms accepted '%s'", bad[i]);
    assert_int_equal(v, 42); /* untouched on failure */
    assert_int_equal(parse_duration_ms("999ms", 1000, max, &v), DM_E_INVALID);
    assert_int_equal(parse_duration_ms("2h", 0, 3600000, &v), DM_E_INVALID);
    assert_int_equal(parse_duration_ms(NULL, 0, max, &v), DM_E_INVALID);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_launch_validation, setup, teardown),
        cmocka_unit_test_setup_teardown(test_destroy_chaos_testreal_validation, setup, teardown),
        cmocka_unit_test_setup_teardown(test_test_real_report, setup, teardown),
        cmocka_unit_test_setup_teardown(test_test_real_history, setup, teardown),
        cmocka_unit_test_setup_teardown(test_workloads_and_instances, setup, teardown),
        cmocka_unit_test(test_parse_duration),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

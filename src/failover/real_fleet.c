/* The fleet operations of real failovers (orchestrator.h ORCH-O9, ORCH-O13;
 * docs/failover.md): launch (a workload and its first instance), the
 * rollback of launches a killed server left, test-real (started here, run by
 * the real runner of real.c), chaos preemption and destroy. They reach the
 * provider, liveness and the database as the runner does (ports.h).
 *
 * ORCH-FL1: a launch is synchronous and writes its workload `launching` first; a
 *      launch that fails on the way destroys what it provisioned and leaves
 *      the workload `failed` (best effort: a server killed meanwhile leaves
 *      it `launching`, and the next start rolls it back, ORCH-O13).
 * ORCH-FL2: a launch is told apart from one a killed server left by its creation
 *      time: created since the real kind was attached, it is this process's
 *      own and is never rolled back. */
#include "failover/real_internal.h"

#include "agent/probe.h"
#include "util/clock.h"
#include "util/error.h"
#include "util/log.h"

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ORCH-FL1: returns rc. */
static int launch_fail(fo_real_kind *k, const dm_workload *w, int64_t id, int rc)
{
    char e2[256] = "";
    if (id > 0 && fo_real_destroy(k, id, e2, sizeof e2) == 0)
        fo_real_mark_destroyed(k, id, e2, sizeof e2);
    db_workload_set_state(k->orch->db, w->workload_id, DM_WL_FAILED, e2, sizeof e2);
    return rc;
}

/* ORCH-O13: destroys every machine of a launch left half done; 0 when all are
 * gone (then nothing of it runs). */
static int rollback_machines(fo_real_kind *k, const dm_workload *w, char *err, size_t errlen)
{
    fo_orch *o = k->orch;
    dm_machine *m = NULL;
    size_t n = 0;
    int rc = db_machine_list(o->db, w->workload_id, &m, &n, err, errlen);
    for (size_t i = 0; rc == 0 && i < n; i++) {
        if (m[i].state == DM_MACH_DESTROYED)
            continue;
        if ((rc = fo_real_destroy(k, m[i].instance_id, err, errlen)) == 0) /* PROV-PV3, ORCH-R7 */
            rc = fo_real_mark_destroyed(k, m[i].instance_id, err, errlen);
        if (rc == 0)
            log_warn("launch.instance_destroyed", "workload_id=%s instance_id=%lld", w->workload_id,
                     (long long)m[i].instance_id);
    }
    free(m);
    return rc;
}

int fo_real_recover_launches(fo_real_kind *k, int *ret_count, char *err, size_t errlen)
{
    fo_orch *o = k->orch;
    dm_workload *w = NULL;
    size_t n = 0;
    int count = 0, rc = db_workload_list(o->db, &w, &n, err, errlen);
    for (size_t i = 0; rc == 0 && i < n; i++) {
        /* ORCH-FL2: a launch of this process is in flight, not left. */
        if (w[i].state != DM_WL_LAUNCHING || w[i].created_at_ms >= k->attached_at_ms)
            continue;
        if ((rc = rollback_machines(k, &w[i], err, errlen)) != 0)
            break; /* stays launching: the next start tries again */
        if (w[i].serving_instance_id != FO_NULL &&
            (rc = db_workload_switch(o->db, w[i].workload_id, w[i].serving_instance_id, w[i].epoch,
                                     FO_NULL, w[i].epoch + 1, err, errlen)) != 0)
            break;
        if ((rc = db_workload_set_state(o->db, w[i].workload_id, DM_WL_FAILED, err, errlen)) != 0)
            break;
        count++;
        char qn[160];
        log_warn("launch.rolled_back",
                 "workload_id=%s name=%s reason=\"the server stopped during "
                 "the launch\"",
                 w[i].workload_id, log_quote(qn, sizeof qn, w[i].name));
    }
    free(w);
    if (ret_count)
        *ret_count = count;
    return rc;
}

/* The workload row a launch request asks for (ORCH-FL1: `launching`). */
static int workload_from(const fo_launch_req *req, dm_workload *w, char *err, size_t errlen)
{
    int rc;
    if ((rc = dm_workload_cmd_check(req->workload_cmd, err, errlen)) != 0 || /* FLEET-W2 */
        (rc = dm_exit_codes_check(req->error_exit_codes, err, errlen)) != 0)
        return rc;
    if (req->max_restarts_on_errors > FLEET_MAX_RESTARTS_MAX)
        return dm_fail(err, errlen, DM_E_INVALID, "launch: max_restarts_on_errors is 0 to %d",
                       FLEET_MAX_RESTARTS_MAX);
    if (req->probe_spec && *req->probe_spec &&
        (rc = prb_check_spec(req->probe_spec, err, errlen)) != 0)
        return rc;
    memset(w, 0, sizeof *w);
    if ((rc = fo_real_new_id("wl-", w->workload_id, sizeof w->workload_id)) != 0)
        return dm_fail(err, errlen, rc, "no entropy");
#define COPY(dst, src, what)                                                                       \
    do {                                                                                           \
        const char *s_ = (src) ? (src) : "";                                                       \
        if (strlen(s_) >= sizeof(dst))                                                             \
            return dm_fail(err, errlen, DM_E_TOO_BIG, "launch: %s is too long", what);             \
        memcpy(dst, s_, strlen(s_) + 1);                                                           \
    } while (0)
    COPY(w->name, req->name && *req->name ? req->name : w->workload_id, "name");
    COPY(w->workload_cmd, req->workload_cmd, "workload");
    COPY(w->probe_spec, req->probe_spec, "probe");
    COPY(w->model, req->model, "model");
    COPY(w->workspace_from, req->workspace_from, "workspace_from");
    COPY(w->error_exit_codes, req->error_exit_codes, "error_exit_codes");
    COPY(w->host_check, req->host_check, "host_check");
#undef COPY
    w->max_restarts_on_errors = req->max_restarts_on_errors >= 0 ? req->max_restarts_on_errors
                                                                 : FLEET_MAX_RESTARTS_DEFAULT;
    w->heartbeat_ms = req->heartbeat_ms > 0 ? req->heartbeat_ms : 200;
    w->snapshot_every_ms = req->snapshot_every_ms >= 0 ? req->snapshot_every_ms : 30000;
    w->max_failovers = req->max_failovers > 0 ? req->max_failovers : FLEET_BUDGET_MAX_DEFAULT;
    w->failover_window_ms =
        req->failover_window_ms > 0 ? req->failover_window_ms : FLEET_BUDGET_WINDOW_DEFAULT;
    w->flapping_since_ms = w->failover_hold_until_ms = DM_NULL;
    json_t *reqs = json_pack("{s:i, s:f, s:f, s:s}", "min_vram_gb", req->min_vram_gb, "min_cuda",
                             req->min_cuda, "max_price", req->max_price_per_h, "region",
                             req->region ? req->region : "");
    char *js = reqs ? json_dumps(reqs, JSON_COMPACT) : NULL;
    json_decref(reqs);
    if (!js || strlen(js) >= sizeof w->requirements) {
        free(js);
        return dm_fail(err, errlen, DM_E_TOO_BIG, "launch: requirements too long");
    }
    snprintf(w->requirements, sizeof w->requirements, "%s", js);
    free(js);
    w->protect = req->protect;
    w->serving_instance_id = FO_NULL;
    w->epoch = 0;
    w->state = DM_WL_LAUNCHING;
    w->created_at_ms = clock_wall_ms();
    return 0;
}

/* The workload's first machine: the cheapest offer, reserved (FLEET-F1),
 * provisioned, healthy. m->instance_id is set once reserved (0 before). */
static int first_machine(fo_real_kind *k, const dm_workload *w, dm_machine *m, prov_instance *inst,
                         char *err, size_t errlen)
{
    memset(m, 0, sizeof *m); /* instance_id 0: nothing to roll back yet */
    prov_query q;
    fo_real_query(w, &q);
    prov_offer offers[8];
    size_t n = 0;
    int rc = provider_search(k->provider, &q, offers, 8, &n, err, errlen);
    if (rc)
        return rc;
    if (n == 0)
        return dm_fail(err, errlen, DM_E_NOT_FOUND, "no compatible offer in the market");
    fo_real_machine_init(k, w, &offers[0], m);
    if ((rc = db_machine_reserve(k->orch->db, m, err, errlen)) != 0) {
        m->instance_id = 0;
        return rc;
    }
    fo_real_test_pause(k, "DUMONT_TEST_PAUSE_LAUNCH", "reserved");
    prov_launch l;
    fo_real_launch_spec(k, w, m->instance_id, 0, 0, &l);
    l.workspace_from = w->workspace_from[0] ? w->workspace_from : NULL;
    if ((rc = provider_provision(k->provider, &offers[0], &l, inst, err, errlen)) != 0)
        return rc;
    snprintf(m->workspace, sizeof m->workspace, "%s", inst->workspace);
    snprintf(m->address, sizeof m->address, "%s", inst->address);
    m->state = DM_MACH_RUNNING;
    if ((rc = db_machine_put(k->orch->db, m, err, errlen)) != 0)
        return rc;
    fo_real_test_pause(k, "DUMONT_TEST_PAUSE_LAUNCH", "provisioned");
    return fo_real_wait_healthy(k, m->instance_id, k->ready_timeout_ms, err, errlen);
}

/* A first restorable point (so that a failover has something to restore
 * even before the agent's first scheduled snapshot), then the workload is
 * served by the machine and started. */
static int first_serve(fo_real_kind *k, const dm_workload *w, const dm_machine *m,
                       const prov_instance *inst, char *err, size_t errlen)
{
    fo_orch *o = k->orch;
    dm_store *store = NULL;
    snap_info si;
    int rc = store_open(o->store_url, &store, err, errlen);
    if (rc == 0)
        rc = provider_snapshot(k->provider, inst, store, "epoch=0", &si, err, errlen);
    store_close(store);
    if (rc == 0)
        rc = fo_real_record_snapshot(k, m->instance_id, 0, &si, "launch", err, errlen);
    if (rc == 0)
        rc = db_workload_switch(o->db, w->workload_id, FO_NULL, 0, m->instance_id, 0, err, errlen);
    if (rc == 0)
        rc = provider_start_workload(k->provider, inst, err, errlen);
    if (rc == 0)
        fo_real_test_pause(k, "DUMONT_TEST_PAUSE_LAUNCH", "started");
    if (rc == 0)
        rc = db_workload_set_state(o->db, w->workload_id, DM_WL_RUNNING, err, errlen);
    return rc;
}

int fo_orch_launch(fo_orch *o, const fo_launch_req *req, fo_launch_result *ret, char *err,
                   size_t errlen)
{
    fo_real_kind *k = fo_real_of(o, err, errlen);
    if (!k)
        return DM_E_UNAVAILABLE;
    if (!req || !ret)
        return dm_fail(err, errlen, DM_E_INVALID, "launch: no request");
    dm_workload w;
    int rc = workload_from(req, &w, err, errlen);
    if (rc || (rc = db_workload_insert(o->db, &w, err, errlen)) != 0)
        return rc;
    dm_machine m;
    prov_instance inst;
    if ((rc = first_machine(k, &w, &m, &inst, err, errlen)) != 0 ||
        (rc = first_serve(k, &w, &m, &inst, err, errlen)) != 0)
        return launch_fail(k, &w, m.instance_id, rc);
    memset(ret, 0, sizeof *ret);
    snprintf(ret->workload_id, sizeof ret->workload_id, "%s", w.workload_id);
    ret->instance_id = m.instance_id;
    snprintf(ret->workspace, sizeof ret->workspace, "%s", inst.workspace);
    snprintf(ret->address, sizeof ret->address, "%s", inst.address);
    log_info("instance.launched", "instance_id=%lld workload_id=%s host=%s address=%s",
             (long long)m.instance_id, w.workload_id, m.host, inst.address);
    return 0;
}

/* The real kind and the machine row of an instance the user names. */
static int machine_of(fo_orch *o, int64_t instance_id, fo_real_kind **ret_k, dm_machine *m,
                      char *err, size_t errlen)
{
    fo_real_kind *k = fo_real_of(o, err, errlen);
    if (!k)
        return DM_E_UNAVAILABLE;
    int rc = db_machine_get(o->db, instance_id, m, err, errlen);
    if (rc == 0)
        *ret_k = k;
    return rc;
}

int fo_orch_chaos_preempt(fo_orch *o, int64_t instance_id, int64_t notice_ms, char *err,
                          size_t errlen)
{
    fo_real_kind *k = NULL;
    dm_machine m;
    int rc = machine_of(o, instance_id, &k, &m, err, errlen);
    if (rc)
        return rc;
    if (m.state == DM_MACH_DESTROYED)
        return dm_fail(err, errlen, DM_E_CONFLICT, "instance %lld is already destroyed",
                       (long long)instance_id);
    rc = provider_preempt(k->provider, instance_id, notice_ms, err, errlen);
    if (rc == 0)
        log_warn("chaos.preempt", "instance_id=%lld notice_ms=%lld", (long long)instance_id,
                 (long long)notice_ms);
    return rc;
}

int fo_orch_destroy_instance(fo_orch *o, int64_t instance_id, char *err, size_t errlen)
{
    fo_real_kind *k = NULL;
    dm_machine m;
    int rc = machine_of(o, instance_id, &k, &m, err, errlen);
    if (rc)
        return rc;
    dm_workload w;
    char e2[256] = "";
    if (db_workload_by_serving(o->db, instance_id, &w, e2, sizeof e2) == 0) {
        /* protection off first, so that the loss is not taken for a failure */
        if ((rc = db_workload_set_state(o->db, w.workload_id, DM_WL_STOPPED, err, errlen)) != 0 ||
            (rc = db_workload_switch(o->db, w.workload_id, instance_id, w.epoch, FO_NULL,
                                     w.epoch + 1, err, errlen)) != 0)
            return rc;
    }
    if ((rc = fo_real_destroy(k, instance_id, err, errlen)) != 0)
        return rc;
    return fo_real_mark_destroyed(k, instance_id, err, errlen);
}

int fo_orch_test_real(fo_orch *o, int64_t instance_id, const char *model, int keep,
                      const char *user_id,
                      fo_failover *ret, char *err, size_t errlen)
{
    fo_real_kind *k = fo_real_of(o, err, errlen);
    if (!k)
        return DM_E_UNAVAILABLE;
    int rc;
    dm_workload w;
    dm_machine m;
    if ((rc = db_machine_get(o->db, instance_id, &m, err, errlen)) != 0)
        return rc;
    if (m.state != DM_MACH_RUNNING)
        return dm_fail(err, errlen, DM_E_CONFLICT, "instance %lld is %s, not running",
                       (long long)instance_id, dm_mach_state_name(m.state));
    if (!m.workload_id[0] || (rc = db_workload_get(o->db, m.workload_id, &w, err, errlen)) != 0)
        return dm_fail(err, errlen, DM_E_NOT_FOUND, "instance %lld runs no workload",
                       (long long)instance_id);
    fo_failover f;
    char id[FO_ID_MAX];
    if ((rc = fo_real_new_id("real-", id, sizeof id)) != 0)
        return dm_fail(err, errlen, rc, "no entropy");
    fo_init(&f, id, instance_id, FO_KIND_REAL, clock_wall_ms());
    f.real.test = 1;
    f.real.keep = keep != 0;
    f.real.epoch = w.epoch;
    snprintf(f.real.workload_id, sizeof f.real.workload_id, "%s", w.workload_id);
    snprintf(f.real.trigger, sizeof f.real.trigger, "test-real");
    snprintf(f.user_id, sizeof f.user_id, "%s", user_id && *user_id ? user_id : "automatic");
    if (model && *model)
        snprintf(f.real.inference_model, sizeof f.real.inference_model, "%s", model);
    pthread_mutex_lock(&k->start_lock);
    rc = fo_real_begin(k, &f, 0, ret, err, errlen);
    pthread_mutex_unlock(&k->start_lock);
    if (rc == DM_E_CONFLICT)
        return dm_fail(err, errlen, rc, "instance %lld already has a failover or test running",
                       (long long)instance_id);
    if (rc == 0)
        log_info("failover.started", "failover_id=%s gpu_instance_id=%lld kind=real test=1 keep=%d",
                 id, (long long)instance_id, keep != 0);
    return rc;
}

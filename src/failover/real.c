/* The real runner: the real kind of failover (orchestrator.h ORCH-O5 to ORCH-O8;
 * orch_internal.h ORCH-K1; docs/failover.md): its state, the runner loop, the
 * resume hook, the triggers and the attach. The phases are real_phases.c;
 * launch, test-real, chaos and destroy are real_fleet.c.
 *
 * One detached runner thread per failover walks the phases, running the
 * current one (fo_real_phase) until the failover ends, the orchestrator
 * stops or a write does not land. Each phase is safe to run again (ORCH-O6),
 * because a controller killed at any point runs the phase it was in once
 * more after a restart (the kind's resume hook, called by fo_orch_recover).
 * A phase from provisioning on that fails destroys the new instance,
 * excludes its host and goes back to gpu_search (FO_EV_RETRY), at most
 * FO_ORCH_MAX_ATTEMPTS offers (ORCH-O8). test-real skips detection and
 * standby_activation, takes a fresh snapshot of the original first, never
 * switches, and destroys its instance at the end unless keep (ORCH-O9).
 *
 * Liveness, probes and the detector's events come through the ports the
 * attach was given (ports.h), the provider through its vtable, persistence
 * through the database handle: a test runs this file with stand-ins for all.
 *
 * ORCH-R1: the record is saved (save / apply) before every action that depends
 *     on it; the runner holds no state a restart could not rebuild from the
 *     record, the workload, the machines and the provider.
 * ORCH-R2: on shutdown a runner stops between steps and leaves its failover
 *     active: the next start resumes it (ORCH-O6).
 * ORCH-R3: DUMONT_TEST_PAUSE_PHASE=PHASE:MS (tests only) pauses each run of that
 *     phase for MS before it acts, so that a test can kill the controller in
 *     exactly that phase. It never changes what the phase does.
 *     DUMONT_TEST_PAUSE_LAUNCH=STEP:MS does the same for a launch, after the
 *     step reserved (the machine row), provisioned (its agent runs) or
 *     started (the workload runs, not yet `running`).
 * ORCH-R4: ORCH-O12 here. Every save, and every write (or read) a next action depends
 *     on, goes through FO_DURABLE: a storage fault pauses the phase, with
 *     backoff, and it takes no next action until the write lands. Every
 *     phase step returns non-zero exactly when it must halt - a write given
 *     up (shutdown) or refused for a reason that is not a storage fault -
 *     and the runner then stops without acting: the record stays as last
 *     saved and the next start resumes it.
 * ORCH-R5: no workload stays failing_over without a failover running for it:
 *     the writes after a record's end (fo_real_finish: the new instance
 *     dropped, the workload failed) that a stop cut off are done by the next
 *     start's recovery (settle_workloads), after the resumes.
 * ORCH-R6: a failover of a workload starts only by winning the database's
 *     compare-and-set running -> failing_over (db_fleet.h FLEET-F5), never by a
 *     read then a write, so two controllers on one database, or two triggers in
 *     one, start at most one. The loser changes nothing. The winner whose
 *     failover cannot be inserted puts the state back with the reverse
 *     compare-and-set (failing_over -> running, for the same instance).
 * ORCH-R7: fencing fails closed (ORCH-O7). The old instance is fenced when the
 *     provider that made it confirms it gone (PROV-PV3), or - when the provider
 *     made it but cannot confirm (its host vanished) - when its agent's lease
 *     has run out plus FO_LEASE_MARGIN_MS (the control channel's view of it,
 *     chan_lease_expired, PROV-CH6; a test hands ports.h lease_expired). An instance
 *     the provider does not know is a failed fence whatever the lease says: the
 *     failover fails with the reason, nothing is provisioned or promoted, and
 *     the old machine stays recorded `running` (not fenced).
 * ORCH-R8: the failover budget (budget.c BUD-B1 to BUD-B3): past max_failovers in
 *     failover_window a workload is flapping and each further failover waits
 *     for its backoff before it acts; it is never abandoned. */
#include "failover/real_internal.h"

#include "provider/channel.h"
#include "util/clock.h"
#include "util/error.h"
#include "util/log.h"
#include "util/secret.h"

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- the kind's state ---- */

fo_real_kind *fo_real_of(fo_orch *o, char *err, size_t errlen)
{
    fo_real_kind *k = fo_orch_kind(o, FO_KIND_REAL);
    if (!k)
        dm_fail(err, errlen, DM_E_UNAVAILABLE,
                "no provider is attached: real failovers need `dumont server` with a provider");
    return k;
}

int fo_real_new_id(const char *prefix, char *out, size_t outlen)
{
    char hex[16];
    int rc = secret_random_hex(hex, sizeof hex, 6);
    if (rc == 0)
        snprintf(out, outlen, "%s%s", prefix, hex);
    return rc;
}

/* ---- shared helpers ---- */

void fo_real_query(const dm_workload *w, prov_query *q)
{
    prov_query_init(q);
    json_error_t jerr;
    json_t *j = json_loads(w->requirements, 0, &jerr);
    if (!json_is_object(j)) {
        json_decref(j);
        return;
    }
    json_t *v;
    if ((v = json_object_get(j, "min_vram_gb")) && json_is_integer(v))
        q->min_vram_gb = (int)json_integer_value(v);
    if ((v = json_object_get(j, "min_cuda")) && json_is_number(v))
        q->min_cuda = json_number_value(v);
    if ((v = json_object_get(j, "max_price")) && json_is_number(v))
        q->max_price_per_h = json_number_value(v);
    if ((v = json_object_get(j, "region")) && json_is_string(v))
        snprintf(q->region, sizeof q->region, "%s", json_string_value(v));
    json_decref(j);
}

void fo_real_launch_spec(const fo_real_kind *k, const dm_workload *w, int64_t id, int64_t epoch,
                         int test, prov_launch *l)
{
    memset(l, 0, sizeof *l);
    l->instance_id = id;
    l->epoch = epoch;
    l->kind = "gpu";
    l->workload_cmd = w->workload_cmd[0] ? w->workload_cmd : NULL;
    l->probe_spec = w->probe_spec[0] ? w->probe_spec : NULL;
    l->heartbeat_ms = w->heartbeat_ms;
    l->snapshot_every_ms = test ? 0 : w->snapshot_every_ms;
    l->server_url = k->server_url;
    l->token = k->token;
    l->ca_file = k->ca_file[0] ? k->ca_file : NULL;
    l->store_url = k->orch->store_url;
    l->hold = 1;
    l->crash_limit = w->max_restarts_on_errors + 1; /* FLEET-W1: N restarts, then it gives up */
    l->host_check = w->host_check[0] ? w->host_check : NULL;
}

void fo_real_machine_init(const fo_real_kind *k, const dm_workload *w, const prov_offer *offer,
                          dm_machine *m)
{
    memset(m, 0, sizeof *m);
    snprintf(m->workload_id, sizeof m->workload_id, "%s", w->workload_id);
    snprintf(m->provider, sizeof m->provider, "%s", provider_name(k->provider));
    snprintf(m->offer_id, sizeof m->offer_id, "%s", offer->id);
    snprintf(m->host, sizeof m->host, "%s", offer->host);
    snprintf(m->gpu_name, sizeof m->gpu_name, "%s", offer->gpu_name);
    m->price_milli = (int64_t)(offer->price_per_h * 1000 + 0.5);
}

int fo_real_destroy(const fo_real_kind *k, int64_t id, char *err, size_t errlen)
{
    int rc = provider_destroy(k->provider, id, err, errlen);
    dm_machine m;
    char e2[256];
    if (rc == DM_E_NOT_FOUND && db_machine_get(k->orch->db, id, &m, e2, sizeof e2) == 0 &&
        m.state == DM_MACH_PROVISIONING)
        rc = 0; /* only reserved, never made: nothing of it runs */
    return rc;
}

int fo_real_lease_expired(const fo_real_kind *k, int64_t id, int64_t *ret_silent_ms)
{
    *ret_silent_ms = -1;
    if (k->ports.lease_expired) /* a test's stand-in */
        return k->ports.lease_expired(k->ports.cls, id, ret_silent_ms) == 1;
    if (!k->channel || chan_lease_expired(k->channel, id, FO_LEASE_MARGIN_MS) != 1) /* PROV-CH6 */
        return 0;
    int64_t heard = chan_last_heard(k->channel, id);
    *ret_silent_ms = heard >= 0 ? clock_mono_ms() - heard : -1;
    return 1;
}

int fo_real_mark_destroyed(const fo_real_kind *k, int64_t id, char *err, size_t errlen)
{
    int rc = db_machine_set_state(k->orch->db, id, DM_MACH_DESTROYED, err, errlen);
    if (rc == 0 && k->ports.fence) /* ORCH-P1 */
        k->ports.fence(k->ports.cls, id);
    return rc;
}

int fo_real_live(const fo_real_kind *k, int64_t id, hbl_live *ret)
{
    return k->ports.live_get ? k->ports.live_get(k->ports.cls, id, ret) : DM_E_UNAVAILABLE; /* ORCH-P1 */
}

int fo_real_wait_healthy(fo_real_kind *k, int64_t id, int64_t timeout_ms, char *err, size_t errlen)
{
    fo_orch *o = k->orch;
    int64_t deadline = clock_mono_ms() + timeout_ms;
    for (;;) {
        hbl_live live;
        if (fo_real_live(k, id, &live) == 0 && live.state == DET_HEALTHY)
            return 0;
        if (o->stopping)
            return DM_E_CANCELLED;
        if (clock_mono_ms() >= deadline)
            return dm_fail(err, errlen, DM_E_UNAVAILABLE,
                           "instance %lld did not become healthy within %lld ms (see its "
                           "agent.log)",
                           (long long)id, (long long)timeout_ms);
        prov_state st = PROV_RUNNING;
        char perr[256] = "";
        if (provider_status(k->provider, id, &st, perr, sizeof perr) == 0 && st != PROV_RUNNING)
            return dm_fail(err, errlen, DM_E_UNAVAILABLE,
                           "instance %lld stopped before it was ready (see its agent.log)",
                           (long long)id);
        clock_sleep_ms(FO_REAL_POLL_MS, &o->stopping);
    }
}

int fo_real_record_snapshot(fo_real_kind *k, int64_t instance_id, int64_t epoch,
                            const snap_info *si, const char *trigger, char *err, size_t errlen)
{
    dm_snapshot s;
    memset(&s, 0, sizeof s);
    snprintf(s.snapshot_id, sizeof s.snapshot_id, "%s", si->id);
    s.instance_id = instance_id;
    s.epoch = epoch;
    snprintf(s.store_url, sizeof s.store_url, "%s", k->orch->store_url);
    s.size_bytes = (int64_t)si->bytes;
    s.stored_bytes = (int64_t)si->stored_new;
    s.files = (int64_t)si->files;
    s.created_at_ms = si->time_ms;
    s.creation_time_ms = si->duration_ms;
    s.reported_at_ms = clock_wall_ms();
    snprintf(s.trigger, sizeof s.trigger, "%s", trigger);
    return db_snapshot_record(k->orch->db, &s, err, errlen);
}

void fo_real_test_pause(fo_real_kind *k, const char *var, const char *at)
{
    const char *v = getenv(var);
    const char *colon = v ? strchr(v, ':') : NULL;
    if (!colon || strlen(at) != (size_t)(colon - v) || strncmp(v, at, (size_t)(colon - v)) != 0)
        return;
    long ms = strtol(colon + 1, NULL, 10);
    if (ms > 0 && ms <= 600000) {
        log_warn("failover.test_pause", "at=%s ms=%ld", at, ms);
        clock_sleep_ms(ms, &k->orch->stopping);
    }
}

static void *real_thread(void *arg)
{
    fo_real_run *r = arg;
    fo_orch *o = r->orch;
    fo_failover *f = &r->f;
    int rc = fo_real_prepare(r);
    while (rc == 0 && !fo_state_is_terminal(f->state) && !o->stopping) {
        fo_real_test_pause(r->k, "DUMONT_TEST_PAUSE_PHASE", fo_phase_name((fo_phase)f->state));
        if (o->stopping)
            break;
        rc = fo_real_phase(r);
    }
    if (rc == 0 && fo_state_is_terminal(f->state))
        rc = fo_real_finish(r);
    if (fo_state_is_terminal(f->state))
        log_info("failover.finished",
                 "failover_id=%s gpu_instance_id=%lld new_instance_id=%lld kind=real test=%d "
                 "state=%s total_time_ms=%lld",
                 f->id, (long long)f->gpu_instance_id, (long long)f->real.new_instance_id,
                 f->real.test, fo_state_name(f->state), (long long)f->total_time_ms);
    else
        log_info("failover.paused", "failover_id=%s phase=%s (resumed at the next start)", f->id,
                 fo_state_name(f->state));
    free(r);
    fo_orch_run_finished(o);
    return NULL;
}

/* Starts the runner of f (its slot reserved); on failure frees nothing of
 * the caller's and gives the slot back. */
static int start_runner(fo_real_kind *k, const fo_failover *f, int64_t detection_ms, int resumed,
                        char *err, size_t errlen)
{
    fo_real_run *r = calloc(1, sizeof *r);
    int rc = r ? 0 : -ENOMEM;
    if (r) {
        r->orch = k->orch;
        r->k = k;
        r->f = *f;
        r->detection_ms = detection_ms;
        r->resumed = resumed;
        rc = fo_orch_spawn(real_thread, r);
    }
    if (rc) {
        free(r);
        fo_orch_run_finished(k->orch);
        return dm_fail(err, errlen, rc, "cannot start a runner: %s", dm_strerror(rc));
    }
    return 0;
}

int fo_real_begin(fo_real_kind *k, const fo_failover *f, int64_t detection_ms, fo_failover *ret,
                  char *err, size_t errlen)
{
    int rc = fo_orch_reserve_slot(k->orch, err, errlen);
    if (rc)
        return rc;
    if ((rc = db_failover_insert(k->orch->db, f, err, errlen)) != 0) { /* ORCH-O1 */
        fo_orch_run_finished(k->orch);
        return rc;
    }
    if (ret)
        *ret = *f;
    fo_orch_notify(k->orch, f);
    return start_runner(k, f, detection_ms, 0, err, errlen);
}

/* ORCH-O6: the kind's resume hook. */
static int real_resume(fo_orch *o, void *st, const fo_failover *f, char *err, size_t errlen)
{
    fo_real_kind *k = st;
    int rc = fo_orch_reserve_slot(o, err, errlen);
    if (rc)
        return rc;
    log_warn("failover.resumed", "failover_id=%s phase=%s new_instance_id=%lld", f->id,
             fo_state_name(f->state), (long long)f->real.new_instance_id);
    return start_runner(k, f, 0, 1, err, errlen);
}

/* ORCH-R5: the workload of a failover that ended, left failing_over because
 * the server stopped before the last write after the record's end landed
 * (fo_real_finish): failed ones drop their new instance if it is still
 * named and fail the workload; completed ones leave it running. */
static int settle_one(fo_real_kind *k, const dm_workload *w, char *err, size_t errlen)
{
    fo_orch *o = k->orch;
    db_failover_filter flt;
    db_failover_filter_init(&flt);
    snprintf(flt.workload_id, sizeof flt.workload_id, "%s", w->workload_id);
    flt.test = 0;
    flt.limit = 1;
    fo_failover *f = NULL;
    size_t n = 0;
    int rc = db_failover_list(o->db, &flt, &f, &n, err, errlen);
    if (rc || (n == 1 && !fo_state_is_terminal(f[0].state))) {
        free(f);
        return rc; /* resumed: its runner ends it */
    }
    dm_wl_state to = n == 1 && f[0].state == FO_STATE_COMPLETED ? DM_WL_RUNNING : DM_WL_FAILED;
    if (n == 0)
        to = DM_WL_RUNNING; /* it never started: nothing was done */
    int64_t drop = n == 1 && to == DM_WL_FAILED ? f[0].real.new_instance_id : FO_NULL;
    free(f);
    if (drop != FO_NULL && drop != w->serving_instance_id &&
        (rc = fo_real_destroy(k, drop, err, errlen)) == 0) /* ORCH-R7 */
        rc = fo_real_mark_destroyed(k, drop, err, errlen);
    if (rc == 0 && (rc = db_workload_set_state(o->db, w->workload_id, to, err, errlen)) == 0)
        log_warn("failover.workload_settled", "workload_id=%s state=%s", w->workload_id,
                 dm_wl_state_name(to));
    return rc;
}

static void settle_workloads(fo_real_kind *k)
{
    char err[512] = "", q[600];
    dm_workload *w = NULL;
    size_t n = 0;
    int rc = db_workload_list(k->orch->db, &w, &n, err, sizeof err);
    for (size_t i = 0; rc == 0 && i < n; i++)
        if (w[i].state == DM_WL_FAILING_OVER)
            rc = settle_one(k, &w[i], err, sizeof err);
    free(w);
    if (rc)
        log_error("failover.settle_failed", "error=%s", log_quote(q, sizeof q, err));
}

/* ORCH-O13, ORCH-R5: the kind's recover hook. */
static void real_recover(fo_orch *o, void *st)
{
    char err[512] = "", q[600];
    (void)o;
    if (fo_real_recover_launches(st, NULL, err, sizeof err) != 0)
        log_error("launch.recover_failed", "error=%s", log_quote(q, sizeof q, err));
    settle_workloads(st);
}

static void real_free(void *st)
{
    fo_real_kind *k = st;
    pthread_mutex_destroy(&k->start_lock);
    free(k);
}

static const fo_kind_ops real_ops = {
    .resume = real_resume, .recover = real_recover, .free = real_free};

/* ---- triggers ---- */

int fo_orch_failover_instance(fo_orch *o, int64_t instance_id, const char *trigger,
                              fo_failover *ret, char *err, size_t errlen)
{
    return fo_orch_failover_detected(o, instance_id, trigger, 0, ret, err, errlen);
}

/* ORCH-R6: only the winner undoes its own compare-and-set, when its failover
 * cannot start after all. */
static void undo_start(fo_orch *o, const dm_workload *w, int64_t instance_id)
{
    char e2[256], q[300];
    if (db_workload_cas_state(o->db, w->workload_id, instance_id, DM_WL_FAILING_OVER,
                              DM_WL_RUNNING, e2, sizeof e2) != 0)
        log_error("failover.undo_failed", "workload_id=%s error=%s", w->workload_id,
                  log_quote(q, sizeof q, e2));
}

int fo_orch_failover_detected(fo_orch *o, int64_t instance_id, const char *trigger,
                              int64_t detection_ms, fo_failover *ret, char *err, size_t errlen)
{
    fo_real_kind *k = fo_real_of(o, err, errlen);
    if (!k)
        return DM_E_UNAVAILABLE;
    if (!trigger)
        trigger = "manual";
    fo_failover f;
    dm_workload w;
    char id[FO_ID_MAX];
    int rc = db_workload_by_serving(o->db, instance_id, &w, err, errlen);
    if (rc)
        return rc;
    if ((rc = fo_real_new_id("fo-", id, sizeof id)) != 0)
        return dm_fail(err, errlen, rc, "no entropy");
    /* ORCH-R6: the database decides who starts it (FLEET-F5); a loser writes nothing */
    rc = db_workload_cas_state(o->db, w.workload_id, instance_id, DM_WL_RUNNING,
                               DM_WL_FAILING_OVER, err, errlen);
    if (rc == DM_E_CONFLICT)
        return dm_fail(err, errlen, rc, "workload %s is not running on instance %lld (already "
                       "failing over, or failed over): no failover started",
                       w.workload_id, (long long)instance_id);
    if (rc)
        return rc;
    if ((rc = fo_budget_check(k, &w, err, errlen)) != 0) { /* ORCH-R8 */
        undo_start(o, &w, instance_id);
        return rc;
    }
    fo_init(&f, id, instance_id, FO_KIND_REAL,
            clock_wall_ms() - (detection_ms > 0 ? detection_ms : 0));
    snprintf(f.real.workload_id, sizeof f.real.workload_id, "%s", w.workload_id);
    snprintf(f.real.trigger, sizeof f.real.trigger, "%s", trigger);
    snprintf(f.user_id, sizeof f.user_id, "automatic"); /* the detector (or a test) started it */
    pthread_mutex_lock(&k->start_lock);
    rc = fo_real_begin(k, &f, detection_ms, ret, err, errlen);
    pthread_mutex_unlock(&k->start_lock);
    if (rc) {
        undo_start(o, &w, instance_id);
        return rc;
    }
    log_warn("failover.started",
             "failover_id=%s gpu_instance_id=%lld workload_id=%s kind=real trigger=%s", id,
             (long long)instance_id, w.workload_id, trigger);
    return 0;
}

/* ORCH-O5: the detector's published changes (the publisher's thread). */
static void on_instance_event(const hbl_event *ev, void *ctx)
{
    fo_real_kind *k = ctx;
    fo_orch *o = k->orch;
    const char *trigger = NULL;
    if (strcmp(ev->what, "state") == 0 &&
        (strcmp(ev->to, "failed") == 0 || strcmp(ev->to, "preempting") == 0))
        trigger = ev->to;
    else if (strcmp(ev->what, "workload") == 0 && strcmp(ev->to, "crashlooping") == 0) {
        if (!o->stopping) /* the agent's report decides (real_wlfail.c ORCH-W2, ORCH-W4) */
            fo_real_crashloop_unreported(k, ev->instance_id);
        return;
    }
    if (!trigger || o->stopping)
        return;
    char err[256] = "";
    dm_workload w;
    if (db_workload_by_serving(o->db, ev->instance_id, &w, err, sizeof err) != 0 || !w.protect ||
        w.state != DM_WL_RUNNING)
        return; /* not protected, or already failing over */
    int64_t detection_ms = ev->silent_ms > 0 ? ev->silent_ms : 0;
    fo_failover f;
    int rc =
        fo_orch_failover_detected(o, ev->instance_id, trigger, detection_ms, &f, err, sizeof err);
    if (rc && rc != DM_E_CONFLICT) {
        char q[300];
        log_error("failover.not_started", "instance_id=%lld trigger=%s error=%s",
                  (long long)ev->instance_id, trigger, log_quote(q, sizeof q, err));
    }
}

/* ORCH-O10: the attach's store must be the configured one (or becomes it). */
static int attach_store(fo_orch *o, const char *url, char *err, size_t errlen)
{
    if (!o->store_url[0])
        return fo_orch_set_store(o, url, err, errlen);
    if (strcmp(o->store_url, url) != 0)
        return dm_fail(err, errlen, DM_E_INVALID,
                       "attach: the store differs from the one configured (ORCH-O10)");
    return 0;
}

int fo_orch_attach(fo_orch *o, const fo_real_env *env, char *err, size_t errlen)
{
    if (!o || !env || !env->provider || !env->store_url || !env->server_url || !env->token)
        return dm_fail(err, errlen, DM_E_INVALID,
                       "attach: provider, store, server and token are required");
    fo_real_kind *k = calloc(1, sizeof *k);
    if (!k)
        return dm_fail(err, errlen, -ENOMEM, "attach: out of memory");
    if (strlen(env->store_url) >= sizeof o->store_url ||
        strlen(env->server_url) >= sizeof k->server_url || strlen(env->token) >= sizeof k->token ||
        (env->ca_file && strlen(env->ca_file) >= sizeof k->ca_file)) {
        free(k);
        return dm_fail(err, errlen, DM_E_TOO_BIG, "attach: a setting is too long");
    }
    int rc = attach_store(o, env->store_url, err, errlen);
    if (rc) {
        free(k);
        return rc;
    }
    k->orch = o;
    k->provider = env->provider;
    if (env->ports)
        k->ports = *env->ports;
    snprintf(k->server_url, sizeof k->server_url, "%s", env->server_url);
    snprintf(k->token, sizeof k->token, "%s", env->token);
    snprintf(k->ca_file, sizeof k->ca_file, "%s", env->ca_file ? env->ca_file : "");
    k->ready_timeout_ms = env->ready_timeout_ms > 0 ? env->ready_timeout_ms : 60000;
    k->channel = env->channel;
    k->inference_timeout_ms = env->inference_timeout_ms > 0 ? env->inference_timeout_ms : 120000;
    k->attached_at_ms = clock_wall_ms();
    k->budget_scale = env->budget_time_scale >= 1.0 ? env->budget_time_scale : 1.0;
    pthread_mutex_init(&k->start_lock, NULL);
    if ((rc = fo_orch_set_kind(o, FO_KIND_REAL, &real_ops, k)) != 0) { /* ORCH-K1 */
        real_free(k);
        return dm_fail(err, errlen, rc, "attach: a provider is already attached");
    }
    /* registered first, so that the first event finds the kind; it is
     * freed with the orchestrator (ORCH-K1) even if this fails */
    if (k->ports.subscribe && k->ports.subscribe(k->ports.cls, on_instance_event, k) != 0)
        return dm_fail(err, errlen, DM_E_TOO_BIG, "attach: too many heartbeat subscribers");
    return 0;
}

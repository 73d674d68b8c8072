/* The phases of a real failover, each run once per call by the runner loop
 * of real.c (ORCH-R1 to ORCH-R4 there), with what they share: the record's transitions,
 * the offers and excluded hosts, the attempt that failed (ORCH-O8).
 *
 *   detection           measured by the detector (silence before `failed`),
 *                       recorded when the failover starts
 *   standby_activation  bump the workload's epoch (intent saved first), then
 *                       fence the old instance: destroy, confirmed gone (ORCH-O7);
 *                       test-real: a fresh snapshot of the original instead
 *   gpu_search          the provider's compatible offers, failed hosts out
 *   provisioning        reserve the new instance id (FLEET-F1: on disk before the
 *                       provider is asked), provision (PROV-PV2: idempotent)
 *   ssh_ready           the new agent registered and heartbeats (healthy)
 *   restore             the workload's newest accepted snapshot (FLEET-F4) into the
 *                       new workspace; download and decompress timed apart
 *   inference           start the workload, probe until it answers, then
 *                       switch the workload to the new instance (FLEET-F2)
 *
 * ORCH-RP1: a test-real that names a model (model=X) asks the model server of
 *     the test instance for X (an ollama: probe of X at its address), whatever
 *     the workload's own probe names, and fails naming X when it never answers.
 *
 * Every function here that can halt is MUST: its result is never dropped
 * (ORCH-R4). Each phase is safe to run again (ORCH-O6). */
#include "failover/real_internal.h"

#include "provider/channel.h"
#include "util/clock.h"
#include "util/error.h"
#include "util/log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MUST __attribute__((warn_unused_result)) /* ORCH-R4: a halt is never dropped */

/* ---- the record (ORCH-R1, ORCH-R4) ---- */

static int stopping(const fo_real_run *r)
{
    return r->orch->stopping;
}

/* ORCH-R4: rc ends the runner (a durable write given up at shutdown). */
static int halted(const fo_real_run *r, int rc)
{
    return rc == DM_E_CANCELLED && stopping(r);
}

/* ORCH-R4: a write the next action depends on, retried until it lands. */
#define DURABLE(r, err, call) FO_DURABLE((r)->orch, (r)->f.id, err, call)

/* Saves the record as it is (an intent, ORCH-R1); non-zero: halt. */
static MUST int save(fo_real_run *r)
{
    return fo_orch_save(r->orch, &r->f);
}

/* Applies ev (fo_orch_apply); non-zero: halt. The next run begins where
 * this one ended (FO-I6): its start + duration + downtime. */
static MUST int apply(fo_real_run *r, const fo_event *ev)
{
    int rc = fo_orch_apply(r->orch, &r->f, ev);
    if (rc == 0 && ev->kind != FO_EV_RESUME) {
        r->phase_mono_ms += (ev->duration_ms != FO_NULL ? ev->duration_ms : 0) + ev->down_ms;
        r->paused0_ms = r->ev_paused_ms;
    } else if (rc == 0) {
        r->phase_mono_ms = clock_mono_ms();
        r->paused0_ms = fo_orch_paused_ms();
    }
    return rc;
}

/* The current run so far (ORCH-O14): *ret_down is the time its writes paused
 * it; the result the rest, its own duration. */
static int64_t phase_measure(fo_real_run *r, int64_t *ret_down)
{
    int64_t elapsed = clock_mono_ms() - r->phase_mono_ms;
    r->ev_paused_ms = fo_orch_paused_ms();
    int64_t down = r->ev_paused_ms - r->paused0_ms;
    if (elapsed < 0)
        elapsed = 0;
    if (down < 0)
        down = 0;
    if (down > elapsed)
        down = elapsed;
    *ret_down = down;
    return elapsed - down;
}

static MUST int phase_ok(fo_real_run *r, const char *detail)
{
    /* A phase run again after a retry keeps why the last attempt failed. */
    char both[sizeof r->f.phases[0].detail];
    const char *prev = r->f.phases[r->f.state].detail;
    if (detail && strncmp(prev, "retry: ", 7) == 0) {
        snprintf(both, sizeof both, "%.120s; then %.120s", prev, detail);
        detail = both;
    }
    fo_event ev = {.kind = FO_EV_PHASE_OK, .now_ms = clock_wall_ms(), .detail = detail};
    ev.duration_ms = phase_measure(r, &ev.down_ms);
    return apply(r, &ev);
}

/* A skip's time (a test-real's snapshot of the original) stays in its run. */
static MUST int phase_skip(fo_real_run *r, const char *detail)
{
    fo_event ev = {.kind = FO_EV_PHASE_SKIP, .now_ms = clock_wall_ms(), .detail = detail};
    ev.duration_ms = phase_measure(r, &ev.down_ms);
    return apply(r, &ev);
}

static MUST int phase_failed(fo_real_run *r, const char *detail)
{
    fo_event ev = {.kind = FO_EV_PHASE_FAILED, .now_ms = clock_wall_ms(), .detail = detail};
    ev.duration_ms = phase_measure(r, &ev.down_ms);
    return apply(r, &ev);
}

/* ---- offers and hosts ---- */

/* Adds host to the record's comma-separated exclusions. */
static void exclude_host(fo_failover *f, const char *host)
{
    if (!host || !*host)
        return;
    char *ex = f->real.excluded_hosts;
    size_t n = strlen(ex), hl = strlen(host);
    for (const char *p = ex; *p;) {
        const char *c = strchr(p, ',');
        size_t len = c ? (size_t)(c - p) : strlen(p);
        if (len == hl && memcmp(p, host, hl) == 0)
            return;
        p += len + (c ? 1 : 0);
    }
    if (n + hl + 2 < sizeof f->real.excluded_hosts)
        snprintf(ex + n, sizeof f->real.excluded_hosts - n, "%s%s", n ? "," : "", host);
}

/* The compatible offers into r->offers, the old host and the hosts of failed
 * attempts left out (PROV-PV1: pure, so a resumed runner searches again).
 * DM_E_NOT_FOUND (with the constraints in err) when there is none. */
static int search(fo_real_run *r, char *err, size_t errlen)
{
    prov_query q;
    fo_real_query(&r->w, &q);
    exclude_host(&r->f, r->old_host); /* recorded, so the reason can name it */
    char buf[sizeof r->f.real.excluded_hosts], *sp = NULL;
    snprintf(buf, sizeof buf, "%s", r->f.real.excluded_hosts);
    for (char *h = strtok_r(buf, ",", &sp); h; h = strtok_r(NULL, ",", &sp))
        prov_query_exclude(&q, h);
    r->n_offers = 0;
    int rc =
        provider_search(r->k->provider, &q, r->offers, PROV_OFFERS_MAX, &r->n_offers, err, errlen);
    if (rc == 0 && r->n_offers == 0)
        rc = dm_fail(err, errlen, DM_E_NOT_FOUND,
                     "no compatible offer (min_vram_gb=%d min_cuda=%g region=%.31s max_price=%g, "
                     "excluded: %.100s)",
                     q.min_vram_gb, q.min_cuda, q.region[0] ? q.region : "any", q.max_price_per_h,
                     r->f.real.excluded_hosts[0] ? r->f.real.excluded_hosts : "none");
    return rc;
}

/* Destroys the new instance of a failed attempt and marks its machine. */
static MUST int drop_new_instance(fo_real_run *r, const char *why)
{
    int64_t id = r->f.real.new_instance_id;
    if (id == FO_NULL)
        return 0;
    char err[256] = "", q[300];
    dm_machine m;
    if (db_machine_get(r->orch->db, id, &m, err, sizeof err) == 0)
        exclude_host(&r->f, m.host);
    if (fo_real_destroy(r->k, id, err, sizeof err) != 0)
        log_error("failover.destroy_failed", "failover_id=%s instance_id=%lld error=%s", r->f.id,
                  (long long)id, log_quote(q, sizeof q, err));
    else if (halted(r, DURABLE(r, err,
                               fo_real_mark_destroyed(r->k, id, err, sizeof err))))
        return DM_E_CANCELLED; /* the record still names it; the next start drops it again */
    log_warn("failover.attempt_failed", "failover_id=%s instance_id=%lld reason=%s", r->f.id,
             (long long)id, log_quote(q, sizeof q, why));
    r->f.real.new_instance_id = FO_NULL;
    r->have_inst = 0;
    return 0;
}

/* ORCH-O8: another offer, or the end. */
static MUST int attempt_failed(fo_real_run *r, const char *why)
{
    int rc = drop_new_instance(r, why);
    if (rc)
        return rc;
    if (r->f.real.attempts >= FO_ORCH_MAX_ATTEMPTS) {
        char d[256];
        snprintf(d, sizeof d, "%.200s (after %d offers)", why, r->f.real.attempts);
        return phase_failed(r, d);
    }
    fo_event ev = {.kind = FO_EV_RETRY,
                   .now_ms = clock_wall_ms(),
                   .detail = why,
                   .retry_phase = FO_PHASE_GPU_SEARCH};
    ev.duration_ms = phase_measure(r, &ev.down_ms);
    return apply(r, &ev);
}

/* The new instance as the provider knows it (after a restart r->inst is empty). */
static int load_inst(fo_real_run *r, char *err, size_t errlen)
{
    if (r->have_inst)
        return 0;
    int rc = provider_get(r->k->provider, r->f.real.new_instance_id, &r->inst, err, errlen);
    if (rc == 0)
        r->have_inst = 1;
    return rc;
}

/* ---- the phases: each returns non-zero only to halt (ORCH-R4) ---- */

static MUST int do_detection(fo_real_run *r)
{
    if (r->f.real.test)
        return phase_skip(r, "test-real: nothing failed");
    int64_t held = 0;
    if (fo_budget_wait(r, &held) != 0) /* ORCH-R8: the budget's backoff */
        return 0;                      /* stopping: ORCH-R2, resumed at the next start */
    char d[FLEET_TEXT_MAX + 128];
    if (held > 0)
        snprintf(d, sizeof d, "%.16s; held %lld ms by the failover budget: %.200s", r->f.real.trigger,
                 (long long)held, r->w.flapping_reason);
    /* the detector's measure; what follows it (the insert) is the next run's. A
     * hold (ORCH-R8) ends on the wall clock it was set on: the phase lasts until
     * then, so the next one starts no sooner (BUD-B2) */
    int64_t dur = (r->detection_ms >= 0 ? r->detection_ms : 0) + held;
    if (held > 0 && r->f.run_started_at_ms != FO_NULL && clock_wall_ms() - r->f.run_started_at_ms > dur)
        dur = clock_wall_ms() - r->f.run_started_at_ms;
    fo_event ev = {.kind = FO_EV_PHASE_OK,
                   .now_ms = clock_wall_ms(),
                   .duration_ms = dur,
                   .detail = held > 0 ? d : r->f.real.trigger};
    r->ev_paused_ms = r->paused0_ms;
    return apply(r, &ev);
}

static MUST int do_standby_activation(fo_real_run *r)
{
    fo_orch *o = r->orch;
    fo_failover *f = &r->f;
    dm_workload *w = &r->w;
    char err[256] = "";
    int rc;
    if (f->real.epoch == FO_NULL) { /* intent first (ORCH-R1) */
        f->real.epoch = w->epoch + 1;
        if ((rc = save(r)) != 0)
            return rc;
    }
    if (w->epoch < f->real.epoch) { /* not bumped yet: fence the old epoch now */
        rc = DURABLE(r, err,
                     db_workload_switch(o->db, w->workload_id, w->serving_instance_id, w->epoch,
                                        w->serving_instance_id, f->real.epoch, err, sizeof err));
        if (halted(r, rc))
            return rc;
        if (rc)
            return phase_failed(r, err);
        w->epoch = f->real.epoch;
    }
    int64_t old = f->gpu_instance_id, silent = -1;
    char d[320];
    int by_lease = 0;
    if ((rc = provider_destroy(r->k->provider, old, err, sizeof err)) != 0) { /* ORCH-O7, ORCH-R7 */
        by_lease = rc != DM_E_NOT_FOUND && fo_real_lease_expired(r->k, old, &silent);
        if (!by_lease) {
            snprintf(d, sizeof d,
                     "could not fence instance %lld: %.200s; no replacement is promoted", (long long)old,
                     err);
            log_error("failover.fence_failed", "failover_id=%s instance_id=%lld reason=\"%.200s\"",
                      f->id, (long long)old, err);
            return phase_failed(r, d);
        }
    }
    if (by_lease) /* PROV-PD3: no destroy revoked it; a fenced host keeps no API access */
        provider_revoke_creds(r->k->provider, old);
    rc = DURABLE(r, err, fo_real_mark_destroyed(r->k, old, err, sizeof err));
    if (halted(r, rc))
        return rc;
    if (by_lease)
        snprintf(d, sizeof d,
                 "fenced instance %lld by its lease (silent %lld ms, past its lease plus %d ms; the "
                 "provider: %.120s); epoch %lld",
                 (long long)old, (long long)silent, FO_LEASE_MARGIN_MS, err,
                 (long long)f->real.epoch);
    else
        snprintf(d, sizeof d, "fenced instance %lld (destroyed, confirmed gone); epoch %lld",
                 (long long)old, (long long)f->real.epoch);
    return phase_ok(r, d);
}

/* test-real: a fresh snapshot of the original into si. */
static int test_snapshot(fo_real_run *r, snap_info *si, char *err, size_t errlen)
{
    fo_real_kind *k = r->k;
    fo_failover *f = &r->f;
    prov_instance orig;
    int rc = provider_get(k->provider, f->gpu_instance_id, &orig, err, errlen);
    if (rc)
        return rc;
    dm_store *store = NULL;
    char tag[32];
    snprintf(tag, sizeof tag, "epoch=%lld", (long long)r->w.epoch);
    if ((rc = store_open(r->orch->store_url, &store, err, errlen)) == 0)
        rc = provider_snapshot(k->provider, &orig, store, tag, si, err, errlen);
    store_close(store);
    if (rc)
        return rc;
    return DURABLE(
        r, err,
        fo_real_record_snapshot(k, f->gpu_instance_id, r->w.epoch, si, "test-real", err, errlen));
}

/* test-real's standby_activation: the snapshot of the original, first. */
static MUST int do_test_standby(fo_real_run *r)
{
    fo_failover *f = &r->f;
    if (!f->real.snapshot_id[0]) {
        char err[256] = "";
        snap_info si;
        int rc = test_snapshot(r, &si, err, sizeof err);
        if (halted(r, rc))
            return rc;
        if (rc) {
            char d[300];
            snprintf(d, sizeof d, "snapshot of instance %lld failed: %.200s",
                     (long long)f->gpu_instance_id, err);
            return phase_failed(r, d);
        }
        snprintf(f->real.snapshot_id, sizeof f->real.snapshot_id, "%s", si.id);
        f->real.snapshot_size_bytes = (int64_t)si.bytes;
        f->real.snapshot_creation_time_ms = si.duration_ms;
        if ((rc = save(r)) != 0)
            return rc;
    }
    return phase_skip(r, "test-real: the original keeps serving");
}

static MUST int do_gpu_search(fo_real_run *r)
{
    char err[256] = "";
    if (search(r, err, sizeof err) != 0)
        return phase_failed(r, err);
    const prov_offer *of = &r->offers[0];
    char d[320];
    snprintf(d, sizeof d, "%zu compatible offers; first %.63s on %.63s (%.63s, $%.2f/h)",
             r->n_offers, of->id, of->host, of->gpu_name, of->price_per_h);
    return phase_ok(r, d);
}

/* FLEET-F1: the machine row of a new attempt on offer, and the intent saved. */
static MUST int reserve_machine(fo_real_run *r, const prov_offer *offer, dm_machine *m)
{
    fo_failover *f = &r->f;
    char err[256] = "";
    fo_real_machine_init(r->k, &r->w, offer, m);
    m->epoch = f->real.test ? r->w.epoch : f->real.epoch;
    m->test = f->real.test;
    snprintf(m->failover_id, sizeof m->failover_id, "%s", f->id);
    int rc = DURABLE(r, err, db_machine_reserve(r->orch->db, m, err, sizeof err));
    if (halted(r, rc))
        return rc;
    if (rc)
        return phase_failed(r, err);
    f->real.new_instance_id = m->instance_id;
    f->real.attempts++;
    return save(r); /* the intent, before the provider is asked (ORCH-R1) */
}

static MUST int do_provisioning(fo_real_run *r)
{
    fo_failover *f = &r->f;
    char err[256] = "";
    const prov_offer *offer = NULL;
    dm_machine m;
    int rc;
    if (r->n_offers == 0) /* resumed here: search again (pure, PROV-PV1) */
        (void)search(r, err, sizeof err);
    if (f->real.new_instance_id != FO_NULL &&
        db_machine_get(r->orch->db, f->real.new_instance_id, &m, err, sizeof err) == 0) {
        /* resumed: the same offer as before, if it is still in the market */
        for (size_t i = 0; i < r->n_offers && !offer; i++)
            if (strcmp(r->offers[i].id, m.offer_id) == 0)
                offer = &r->offers[i];
    }
    if (!offer) {
        if (f->real.new_instance_id != FO_NULL && /* its offer is gone: a new attempt */
            (rc = drop_new_instance(r, "its offer left the market")) != 0)
            return rc;
        if (r->n_offers == 0)
            return attempt_failed(r, "no offer left");
        offer = &r->offers[0];
        if ((rc = reserve_machine(r, offer, &m)) != 0 || fo_state_is_terminal(f->state))
            return rc;
    }
    prov_launch l;
    fo_real_launch_spec(r->k, &r->w, m.instance_id, m.epoch, f->real.test, &l);
    if (provider_provision(r->k->provider, offer, &l, &r->inst, err, sizeof err) != 0) { /* PROV-PV2 */
        char d[300];
        snprintf(d, sizeof d, "provision on %s failed: %.200s", offer->host, err);
        return attempt_failed(r, d);
    }
    r->have_inst = 1;
    snprintf(m.workspace, sizeof m.workspace, "%s", r->inst.workspace);
    snprintf(m.address, sizeof m.address, "%s", r->inst.address);
    m.state = DM_MACH_RUNNING;
    rc = DURABLE(r, err, db_machine_put(r->orch->db, &m, err, sizeof err));
    if (halted(r, rc))
        return rc;
    char d[320];
    snprintf(d, sizeof d, "instance %lld on %.63s (%.63s, offer %.63s)", (long long)m.instance_id,
             offer->host, offer->gpu_name, offer->id);
    return phase_ok(r, d);
}

/* ssh_ready over the control channel: the new agent polls and answers a ping
 * (provider/channel.h). The id names the failover and the attempt, so a
 * resumed runner asks the same ping again (PROV-CH1). */
static int channel_ready(fo_real_run *r, char *err, size_t errlen)
{
    if (!r->k->channel)
        return 0;
    char id[DB_CMD_ID_MAX];
    db_command c;
    int64_t inst = r->f.real.new_instance_id;
    snprintf(id, sizeof id, "ping-%.60s-%lld-%d", r->f.id, (long long)inst, r->f.real.attempts);
    int64_t epoch = r->f.real.test ? r->w.epoch : r->f.real.epoch;
    int rc = chan_call(r->k->channel, inst, epoch, id, "ping", NULL, r->k->ready_timeout_ms, &c,
                       err, errlen);
    if (rc == 0 && strcmp(c.state, "done") != 0)
        rc = dm_fail(err, errlen, DM_E_UNAVAILABLE, "the agent refused the ping: %.200s",
                     c.result);
    return rc;
}

static MUST int do_ssh_ready(fo_real_run *r)
{
    char err[256] = "";
    int rc = load_inst(r, err, sizeof err);
    if (rc == 0)
        rc = channel_ready(r, err, sizeof err);
    if (rc == 0)
        rc = fo_real_wait_healthy(r->k, r->f.real.new_instance_id, r->k->ready_timeout_ms, err,
                                  sizeof err);
    if (halted(r, rc))
        return rc;
    if (rc)
        return attempt_failed(r, err);
    return phase_ok(r, r->k->channel ? "agent answered over the control channel and heartbeats"
                                     : "agent registered and heartbeating");
}

/* The snapshot to restore: the test's own, else the newest of the workload
 * in the configured store (FLEET-F4, ORCH-O10). */
static int restore_point(fo_real_run *r, dm_snapshot *s, char *err, size_t errlen)
{
    dm_db *db = r->orch->db;
    if (r->f.real.test && r->f.real.snapshot_id[0])
        return DURABLE(r, err, db_snapshot_get(db, r->f.real.snapshot_id, s, err, errlen));
    return DURABLE(
        r, err,
        db_snapshot_latest_in_store(db, r->w.workload_id, r->orch->store_url, s, err, errlen));
}

static MUST int do_restore(fo_real_run *r)
{
    fo_failover *f = &r->f;
    char err[256] = "";
    dm_snapshot s;
    int rc = restore_point(r, &s, err, sizeof err);
    if (halted(r, rc))
        return rc;
    if (rc) {
        char d[300];
        snprintf(d, sizeof d, "no restorable snapshot of workload %s: %.200s", r->w.workload_id,
                 err);
        return phase_failed(r, d);
    }
    snprintf(f->real.snapshot_id, sizeof f->real.snapshot_id, "%s", s.snapshot_id);
    f->real.snapshot_size_bytes = s.size_bytes;
    f->real.snapshot_creation_time_ms = s.creation_time_ms;
    snprintf(f->real.snapshot_compression, sizeof f->real.snapshot_compression, "lz4");
    snprintf(f->real.snapshot_storage, sizeof f->real.snapshot_storage, "%s",
             r->orch->store_name);
    snprintf(f->real.snapshot_storage_url, sizeof f->real.snapshot_storage_url, "%.255s",
             r->orch->store_url);
    if (load_inst(r, err, sizeof err) != 0)
        return attempt_failed(r, err);
    dm_store *store = NULL;
    prov_restore_times t = {0};
    rc = store_open(r->orch->store_url, &store, err, sizeof err); /* ORCH-O10: never a record's URL */
    if (rc == 0)
        rc = provider_restore(r->k->provider, &r->inst, store, s.snapshot_id, &t, err, sizeof err);
    store_close(store);
    if (halted(r, rc)) /* ORCH-O15: a server stopping cancelled the wait */
        return rc;
    if (rc) {
        char d[300];
        snprintf(d, sizeof d, "restore of %.80s failed: %.200s", s.snapshot_id, err);
        return attempt_failed(r, d);
    }
    f->real.restore_download_time_ms = t.download_ms;
    f->real.restore_decompress_time_ms = t.decompress_ms;
    snprintf(f->real.restore_source, sizeof f->real.restore_source, "%s",
             t.source[0] ? t.source : "primary");
    char d[200];
    snprintf(d, sizeof d,
             "snapshot %.80s, %lld bytes (download %lld ms, decompress %lld ms, from the %s)",
             s.snapshot_id, (long long)s.size_bytes, (long long)t.download_ms,
             (long long)t.decompress_ms, f->real.restore_source);
    return phase_ok(r, d);
}

/* The probe the controller runs against an instance: an ollama probe is
 * pointed at the instance's address; 0 when the probe is not ollama (the
 * agent's own probe result, from its heartbeats, is used then). */
static int controller_probe(const char *spec, const char *address, char *out, size_t outlen)
{
    if (strncmp(spec, "ollama:", 7) != 0)
        return 0;
    const char *model = spec + 7;
    if (strchr(model, '@'))
        snprintf(out, outlen, "%s", spec);
    else
        snprintf(out, outlen, "ollama:%.200s@http://%.63s", model, address);
    return 1;
}

/* The model an inference test names: from an ollama: probe, else "". */
static void model_of(const dm_workload *w, char *out, size_t outlen)
{
    if (w->model[0]) {
        snprintf(out, outlen, "%s", w->model);
        return;
    }
    out[0] = 0;
    if (strncmp(w->probe_spec, "ollama:", 7) == 0) {
        snprintf(out, outlen, "%s", w->probe_spec + 7);
        char *at = strchr(out, '@');
        if (at)
            *at = 0;
    }
}

static hb_probe probe_once(const fo_real_kind *k, const char *spec, int first)
{
    return k->ports.probe ? k->ports.probe(k->ports.cls, spec, first) : HB_PR_PENDING; /* ORCH-P1 */
}

/* 1 when the workload on inst answers: the controller's probe, else what
 * the agent reports (its probe, or with none that the workload runs). */
static int answers(const fo_real_run *r, const char *spec, int direct, int first)
{
    if (direct)
        return probe_once(r->k, spec, first) == HB_PR_OK;
    hbl_live live;
    if (fo_real_live(r->k, r->inst.instance_id, &live) != 0)
        return 0;
    return r->w.probe_spec[0] ? live.probe == HB_PR_OK : live.workload == HB_WL_RUNNING;
}

/* ORCH-W3: 1 when the new instance's agent says the workload crash-loops. */
static int crashlooping(const fo_real_run *r)
{
    hbl_live live;
    return fo_real_live(r->k, r->inst.instance_id, &live) == 0 &&
           live.workload == HB_WL_CRASHLOOPING;
}

/* Starts the workload and waits for the probe; *ret_ms: start -> answer.
 * model: a model a test-real named (ORCH-RP1), or NULL: the workload's probe.
 * DM_E_CONFLICT: the workload crash-loops there (ORCH-W3). */
static int wait_inference(fo_real_run *r, const char *model, int64_t *ret_ms, char *err,
                          size_t errlen)
{
    fo_orch *o = r->orch;
    const dm_workload *w = &r->w;
    int rc = provider_start_workload(r->k->provider, &r->inst, err, errlen);
    if (rc)
        return rc;
    int64_t t0 = clock_mono_ms(), deadline = t0 + r->k->inference_timeout_ms;
    char spec[512];
    int direct;
    if (model) {
        snprintf(spec, sizeof spec, "ollama:%.200s@http://%.63s", model, r->inst.address);
        direct = 1;
    } else {
        direct = w->probe_spec[0] &&
                 controller_probe(w->probe_spec, r->inst.address, spec, sizeof spec);
    }
    for (int first = 1; !answers(r, spec, direct, first); first = 0) {
        if (o->stopping)
            return DM_E_CANCELLED;
        if (crashlooping(r))
            return dm_fail(err, errlen, DM_E_CONFLICT,
                           "the workload crash-looped on instance %lld before it answered",
                           (long long)r->inst.instance_id);
        if (clock_mono_ms() >= deadline && model)
            return dm_fail(err, errlen, DM_E_UNAVAILABLE,
                           "the model server on instance %lld did not answer for model '%s' "
                           "within %lld ms: does it serve that model?",
                           (long long)r->inst.instance_id, model,
                           (long long)r->k->inference_timeout_ms);
        if (clock_mono_ms() >= deadline)
            return dm_fail(err, errlen, DM_E_UNAVAILABLE,
                           "the workload on instance %lld did not answer its probe (%s) within "
                           "%lld ms",
                           (long long)r->inst.instance_id, w->probe_spec,
                           (long long)r->k->inference_timeout_ms);
        clock_sleep_ms(FO_REAL_POLL_MS, &o->stopping);
    }
    *ret_ms = clock_mono_ms() - t0;
    return 0;
}

/* FLEET-F2: the new instance serves from now on. */
static MUST int switch_serving(fo_real_run *r)
{
    fo_failover *f = &r->f;
    dm_workload *w = &r->w;
    char err[256] = "";
    int rc =
        DURABLE(r, err,
                db_workload_switch(r->orch->db, w->workload_id, f->gpu_instance_id, f->real.epoch,
                                   f->real.new_instance_id, f->real.epoch, err, sizeof err));
    if (halted(r, rc))
        return rc;
    if (rc && w->serving_instance_id != f->real.new_instance_id)
        return phase_failed(r, err);
    w->serving_instance_id = f->real.new_instance_id;
    rc = DURABLE(
        r, err, db_workload_set_state(r->orch->db, w->workload_id, DM_WL_RUNNING, err, sizeof err));
    return halted(r, rc) ? rc : 0;
}

/* ORCH-W1, ORCH-W3: a workload that never became healthy on the new instance
 * is its own failure: the failover ends, no other offer is tried, unless the
 * instance itself went (no longer healthy) or its host is at fault. */
static MUST int inference_failed(fo_real_run *r, int rc, const char *why)
{
    hbl_live live;
    int healthy = fo_real_live(r->k, r->inst.instance_id, &live) == 0 && live.state == DET_HEALTHY;
    if (rc == DM_E_CONFLICT) { /* crash-looped: the agent's report says whose fault */
        dm_workload now;
        char err[256] = "";
        if (r->f.real.test || db_workload_get(r->orch->db, r->w.workload_id, &now, err,
                                              sizeof err) != 0 || !now.failure[0])
            return attempt_failed(r, why); /* a host fault, or no report: another offer */
        char d[FO_REASON_MAX];
        snprintf(d, sizeof d, "%.*s (a workload failure: no other GPU is tried)",
                 (int)strcspn(now.failure, "\n"), now.failure);
        return phase_failed(r, d);
    }
    if (!healthy)
        return attempt_failed(r, why);
    char d[FO_REASON_MAX];
    snprintf(d, sizeof d, "%.150s; the workload never became healthy (a workload failure: no "
             "other GPU is tried)", why);
    return phase_failed(r, d);
}

static MUST int do_inference(fo_real_run *r)
{
    fo_failover *f = &r->f;
    char err[256] = "";
    int64_t ready_ms = 0;
    char wmodel[sizeof f->real.inference_model];
    model_of(&r->w, wmodel, sizeof wmodel);
    if (!f->real.inference_model[0]) /* test-real model=... named its own */
        snprintf(f->real.inference_model, sizeof f->real.inference_model, "%s", wmodel);
    /* ORCH-RP1: a test-real that named another model probes that model */
    int named = f->real.test && strcmp(f->real.inference_model, wmodel) != 0;
    int rc = load_inst(r, err, sizeof err);
    if (rc == 0 && !f->real.test) { /* ORCH-W3: what is recorded from now on is this attempt's */
        char e2[256];
        if (halted(r, DURABLE(r, e2,
                              db_workload_set_failure(r->orch->db, r->w.workload_id, "", 0, e2,
                                                      sizeof e2))))
            return DM_E_CANCELLED;
    }
    int loaded = rc == 0;
    if (rc == 0)
        rc = wait_inference(r, named ? f->real.inference_model : NULL, &ready_ms, err, sizeof err);
    if (halted(r, rc))
        return rc;
    if (rc) {
        f->real.inference_success = 0;
        return loaded ? inference_failed(r, rc, err) : attempt_failed(r, err);
    }
    f->real.inference_success = 1;
    f->real.inference_ready_time_ms = ready_ms;
    if (!f->real.test && ((rc = switch_serving(r)) != 0 || fo_state_is_terminal(f->state)))
        return rc;
    char d[200];
    snprintf(d, sizeof d, "answering on %s after %lld ms", r->inst.address, (long long)ready_ms);
    return phase_ok(r, d);
}

int fo_real_phase(fo_real_run *r)
{
    switch ((fo_phase)r->f.state) {
    case FO_PHASE_DETECTION:
        return do_detection(r);
    case FO_PHASE_STANDBY_ACTIVATION:
        return r->f.real.test ? do_test_standby(r) : do_standby_activation(r);
    case FO_PHASE_GPU_SEARCH:
        return do_gpu_search(r);
    case FO_PHASE_PROVISIONING:
        return do_provisioning(r);
    case FO_PHASE_SSH_READY:
        return do_ssh_ready(r);
    case FO_PHASE_RESTORE:
        return do_restore(r);
    case FO_PHASE_INFERENCE:
        return do_inference(r);
    default:
        return phase_failed(r, "unknown phase");
    }
}

/* What the runner needs before the phases: the workload, the old host.
 * Non-zero: the runner goes no further. */
int fo_real_prepare(fo_real_run *r)
{
    char err[256] = "";
    dm_machine om;
    if (db_machine_get(r->orch->db, r->f.gpu_instance_id, &om, err, sizeof err) == 0)
        snprintf(r->old_host, sizeof r->old_host, "%s", om.host);
    /* FO-I6: the current run began at the record's run_started_at_ms */
    int64_t since = r->f.run_started_at_ms != FO_NULL ? clock_wall_ms() - r->f.run_started_at_ms : 0;
    r->phase_mono_ms = clock_mono_ms() - (since > 0 && !r->resumed ? since : 0);
    r->paused0_ms = fo_orch_paused_ms();
    int rc = DURABLE(r, err,
                     db_workload_get(r->orch->db, r->f.real.workload_id, &r->w, err, sizeof err));
    if (rc == 0 && r->resumed) { /* the time since the run began was downtime (FO-I6) */
        fo_event ev = {.kind = FO_EV_RESUME, .now_ms = clock_wall_ms()};
        if ((rc = apply(r, &ev)) != 0)
            return rc;
    }
    if (rc == 0)
        return 0;
    if (!halted(r, rc)) { /* it ends here, failed if that can be saved */
        int saved = phase_failed(r, err);
        (void)saved;
    }
    return rc;
}

/* After the last phase: a failed failover drops its new instance and fails
 * its workload; a test instance goes unless keep (ORCH-O9). */
int fo_real_finish(fo_real_run *r)
{
    fo_failover *f = &r->f;
    char err[256] = "";
    int rc = 0;
    if (f->state == FO_STATE_FAILED && !f->real.test) {
        if ((rc = drop_new_instance(r, f->reason)) != 0 || (rc = save(r)) != 0)
            return rc;
        dm_workload now; /* FLEET-W1: why, unless the agent's report said it first */
        int keep = db_workload_get(r->orch->db, r->w.workload_id, &now, err, sizeof err) == 0 &&
                   now.failure[0];
        rc = DURABLE(r, err,
                     db_workload_set_failure(r->orch->db, r->w.workload_id,
                                             keep ? now.failure : f->reason, 1, err, sizeof err));
    } else if (f->real.test && !f->real.keep && f->real.new_instance_id != FO_NULL &&
               fo_real_destroy(r->k, f->real.new_instance_id, err, sizeof err) == 0) {
        rc = DURABLE(r, err, fo_real_mark_destroyed(r->k, f->real.new_instance_id, err, sizeof err));
    }
    return halted(r, rc) ? rc : 0;
}

/* Real failovers, launch and test-real (orchestrator.h O5-O9;
 * docs/failover.md).
 *
 * One detached runner thread per failover walks the phases; each phase is a
 * function that is safe to run again (O6), because a controller killed at
 * any point runs the phase it was in once more after a restart:
 *
 *   detection           measured by the detector (silence before `failed`),
 *                       recorded when the failover starts
 *   standby_activation  bump the workload's epoch (intent saved first), then
 *                       fence the old instance: destroy, confirmed gone (O7)
 *   gpu_search          the provider's compatible offers, failed hosts out
 *   provisioning        reserve the new instance id (F1: on disk before the
 *                       provider is asked), provision (PV2: idempotent)
 *   ssh_ready           the new agent registered and heartbeats (healthy)
 *   restore             the workload's newest accepted snapshot (F4) into the
 *                       new workspace; download and decompress timed apart
 *   inference           start the workload, probe until it answers, then
 *                       switch the workload to the new instance (F2)
 *
 * A phase from provisioning on that fails destroys the new instance,
 * excludes its host and goes back to gpu_search (FO_EV_RETRY), at most
 * FO_ORCH_MAX_ATTEMPTS offers (O8). test-real skips detection and
 * standby_activation, takes a fresh snapshot of the original first, never
 * switches, and destroys its instance at the end unless keep (O9).
 *
 * R1: the record is saved (fo_orch_apply / save) before every action that
 *     depends on it; the runner holds no state a restart could not rebuild
 *     from the record, the workload, the machines and the provider.
 * R2: on shutdown a runner stops between steps and leaves its failover
 *     active: the next start resumes it (O6).
 * R3: DUMONT_TEST_PAUSE_PHASE=PHASE:MS (tests only) pauses each run of that
 *     phase for MS before it acts, so that a test can kill the controller in
 *     exactly that phase. It never changes what the phase does.
 *     DUMONT_TEST_PAUSE_LAUNCH=STEP:MS does the same for a launch, after the
 *     step reserved (the machine row), provisioned (its agent runs) or
 *     started (the workload runs, not yet `running`).
 * R4: O12 here: every save and every write (or read) a next action depends
 *     on goes through FO_DURABLE; a runner whose write was given up
 *     (shutdown) or refused for a reason that is not a storage fault sets
 *     halt and stops without acting: the record stays as last saved and the
 *     next start resumes it. */
#include "failover/orch_internal.h"

#include "agent/probe.h"
#include "db/db_fleet.h"
#include "detect/listener.h"
#include "provider/provider.h"
#include "util/clock.h"
#include "util/error.h"
#include "util/log.h"
#include "util/secret.h"

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define POLL_MS 20

typedef struct {
    fo_orch *orch;
    fo_failover f;
    int64_t phase_mono_ms; /* when the current phase (attempt) began */
    int64_t detection_ms;  /* new failovers: the detection phase's duration */
    prov_offer offers[PROV_OFFERS_MAX];
    size_t n_offers;
    prov_instance inst; /* the new instance, once provisioned */
    int have_inst;
    int halt; /* R4: a write did not land; stop without acting */
} real_run;

/* ---- small helpers ---- */

static int attached(fo_orch *o, char *err, size_t errlen)
{
    if (!o || !o->provider)
        return dm_fail(err, errlen, DM_E_UNAVAILABLE,
                       "no provider is attached: real failovers need `dumont server` with a "
                       "provider");
    return 0;
}

/* Saves the record as it is (an intent, R1), retried until it lands (R4);
 * non-zero: the runner halts. */
static int save(real_run *r)
{
    int rc = fo_orch_save(r->orch, &r->f);
    if (rc)
        r->halt = 1;
    return rc;
}

/* Applies ev (fo_orch_apply); non-zero: the runner halts (R4). */
static int apply(real_run *r, const fo_event *ev)
{
    int rc = fo_orch_apply(r->orch, &r->f, ev);
    if (rc)
        r->halt = 1;
    else
        r->phase_mono_ms = clock_mono_ms();
    return rc;
}

/* R4: rc of a FO_DURABLE write; DM_E_CANCELLED halts the runner. */
static int landed(real_run *r, int rc)
{
    if (rc == DM_E_CANCELLED)
        r->halt = 1;
    return rc;
}

static int64_t phase_elapsed(real_run *r)
{
    int64_t d = clock_mono_ms() - r->phase_mono_ms;
    return d < 0 ? 0 : d;
}

static void phase_ok(real_run *r, const char *detail)
{
    /* A phase run again after a retry keeps why the last attempt failed. */
    char both[sizeof r->f.phases[0].detail];
    const char *prev = r->f.phases[r->f.state].detail;
    if (detail && strncmp(prev, "retry: ", 7) == 0) {
        snprintf(both, sizeof both, "%.120s; then %.120s", prev, detail);
        detail = both;
    }
    fo_event ev = {.kind = FO_EV_PHASE_OK,
                   .now_ms = clock_wall_ms(),
                   .duration_ms = phase_elapsed(r),
                   .detail = detail};
    apply(r, &ev);
}

static void phase_skip(real_run *r, const char *detail)
{
    fo_event ev = {.kind = FO_EV_PHASE_SKIP, .now_ms = clock_wall_ms(), .detail = detail};
    apply(r, &ev);
}

static void phase_failed(real_run *r, const char *detail)
{
    fo_event ev = {.kind = FO_EV_PHASE_FAILED,
                   .now_ms = clock_wall_ms(),
                   .duration_ms = phase_elapsed(r),
                   .detail = detail};
    apply(r, &ev);
}

static int stopping(real_run *r)
{
    return r->orch->stopping;
}

/* Parses the workload's requirements JSON into q (unknown keys ignored). */
static void query_from(const dm_workload *w, prov_query *q)
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

static void excluded_into(const fo_failover *f, prov_query *q)
{
    char buf[sizeof f->real.excluded_hosts];
    snprintf(buf, sizeof buf, "%s", f->real.excluded_hosts);
    char *save = NULL;
    for (char *h = strtok_r(buf, ",", &save); h; h = strtok_r(NULL, ",", &save))
        prov_query_exclude(q, h);
}

/* The probe the controller runs against an instance: an ollama probe is
 * pointed at the instance's address; NULL when the probe is not ollama (the
 * agent's own probe result, from its heartbeats, is used then). */
static int controller_probe(const char *spec, const char *address, char *out, size_t outlen)
{
    if (strncmp(spec, "ollama:", 7) != 0)
        return 0;
    const char *model = spec + 7;
    const char *at = strchr(model, '@');
    if (at)
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

/* Waits until the instance's agent heartbeats as healthy. */
static int wait_healthy(fo_orch *o, int64_t id, int64_t timeout_ms, char *err, size_t errlen)
{
    int64_t deadline = clock_mono_ms() + timeout_ms;
    for (;;) {
        hbl_live live;
        if (o->detect && hbl_live_get(o->detect, id, &live) == 0 && live.state == DET_HEALTHY)
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
        if (provider_status(o->provider, id, &st, perr, sizeof perr) == 0 && st != PROV_RUNNING)
            return dm_fail(err, errlen, DM_E_UNAVAILABLE,
                           "instance %lld stopped before it was ready (see its agent.log)",
                           (long long)id);
        clock_sleep_ms(POLL_MS, &o->stopping);
    }
}

/* Starts the workload and waits for the probe; *ret_ms: start -> answer. */
static int wait_inference(fo_orch *o, const dm_workload *w, const prov_instance *inst,
                          int64_t *ret_ms, char *err, size_t errlen)
{
    int rc = provider_start_workload(o->provider, inst, err, errlen);
    if (rc)
        return rc;
    int64_t t0 = clock_mono_ms(), deadline = t0 + o->inference_timeout_ms;
    char spec[512];
    int direct =
        w->probe_spec[0] && controller_probe(w->probe_spec, inst->address, spec, sizeof spec);
    for (int first = 1;; first = 0) {
        if (!w->probe_spec[0]) { /* nothing to probe: the agent runs it */
            hbl_live live;
            if (hbl_live_get(o->detect, inst->instance_id, &live) == 0 &&
                live.workload == HB_WL_RUNNING)
                break;
        } else if (direct) {
            if (prb_run_once(spec, first) == HB_PR_OK)
                break;
        } else {
            hbl_live live;
            if (hbl_live_get(o->detect, inst->instance_id, &live) == 0 && live.probe == HB_PR_OK)
                break;
        }
        if (o->stopping)
            return DM_E_CANCELLED;
        if (clock_mono_ms() >= deadline)
            return dm_fail(err, errlen, DM_E_UNAVAILABLE,
                           "the workload on instance %lld did not answer its probe (%s) within "
                           "%lld ms",
                           (long long)inst->instance_id, w->probe_spec,
                           (long long)o->inference_timeout_ms);
        clock_sleep_ms(POLL_MS, &o->stopping);
    }
    *ret_ms = clock_mono_ms() - t0;
    return 0;
}

/* Records a snapshot the controller took (test-real, launch). */
static int record_snapshot(fo_orch *o, int64_t instance_id, int64_t epoch, const snap_info *si,
                           const char *trigger, char *err, size_t errlen)
{
    dm_snapshot s;
    memset(&s, 0, sizeof s);
    snprintf(s.snapshot_id, sizeof s.snapshot_id, "%s", si->id);
    s.instance_id = instance_id;
    s.epoch = epoch;
    snprintf(s.store_url, sizeof s.store_url, "%s", o->store_url);
    s.size_bytes = (int64_t)si->bytes;
    s.stored_bytes = (int64_t)si->stored_new;
    s.files = (int64_t)si->files;
    s.created_at_ms = si->time_ms;
    s.creation_time_ms = si->duration_ms;
    s.reported_at_ms = clock_wall_ms();
    snprintf(s.trigger, sizeof s.trigger, "%s", trigger);
    return db_snapshot_record(o->db, &s, err, errlen);
}

/* ---- the phases ---- */

/* Destroys the new instance of a failed attempt and marks its machine. */
static void drop_new_instance(real_run *r, const char *why)
{
    fo_orch *o = r->orch;
    int64_t id = r->f.real.new_instance_id;
    if (id == FO_NULL)
        return;
    char err[256] = "", q[300];
    dm_machine m;
    if (db_machine_get(o->db, id, &m, err, sizeof err) == 0)
        exclude_host(&r->f, m.host);
    if (provider_destroy(o->provider, id, err, sizeof err) != 0)
        log_error("failover.destroy_failed", "failover_id=%s instance_id=%lld error=%s", r->f.id,
                  (long long)id, log_quote(q, sizeof q, err));
    else if (landed(r, FO_DURABLE(o, r->f.id, err,
                                  db_machine_set_state(o->db, id, DM_MACH_DESTROYED, err,
                                                       sizeof err))) == DM_E_CANCELLED)
        return; /* R4: the record still names it; the next start drops it again */
    log_warn("failover.attempt_failed", "failover_id=%s instance_id=%lld reason=%s", r->f.id,
             (long long)id, log_quote(q, sizeof q, why));
    r->f.real.new_instance_id = FO_NULL;
    r->have_inst = 0;
}

/* O8: another offer, or the end. */
static void attempt_failed(real_run *r, const char *why)
{
    drop_new_instance(r, why);
    if (r->halt)
        return;
    if (r->f.real.attempts >= FO_ORCH_MAX_ATTEMPTS) {
        char d[256];
        snprintf(d, sizeof d, "%.200s (after %d offers)", why, r->f.real.attempts);
        phase_failed(r, d);
        return;
    }
    fo_event ev = {.kind = FO_EV_RETRY,
                   .now_ms = clock_wall_ms(),
                   .duration_ms = phase_elapsed(r),
                   .detail = why,
                   .retry_phase = FO_PHASE_GPU_SEARCH};
    apply(r, &ev);
}

static void do_standby_activation(real_run *r, dm_workload *w)
{
    fo_orch *o = r->orch;
    fo_failover *f = &r->f;
    char err[256] = "";
    if (f->real.epoch == FO_NULL) { /* intent first (R1) */
        f->real.epoch = w->epoch + 1;
        if (save(r))
            return;
    }
    if (w->epoch < f->real.epoch) { /* not bumped yet: fence the old epoch now */
        int rc = landed(r, FO_DURABLE(o, f->id, err,
                                      db_workload_switch(
                                          o->db, w->workload_id, w->serving_instance_id, w->epoch,
                                          w->serving_instance_id, f->real.epoch, err, sizeof err)));
        if (rc) {
            if (!r->halt)
                phase_failed(r, err);
            return;
        }
        w->epoch = f->real.epoch;
    }
    int64_t old = f->gpu_instance_id;
    int rc = provider_destroy(o->provider, old, err, sizeof err); /* O7 */
    if (rc) {
        char d[300];
        snprintf(d, sizeof d, "could not fence instance %lld: %.200s", (long long)old, err);
        phase_failed(r, d);
        return;
    }
    if (landed(r, FO_DURABLE(o, f->id, err,
                             db_machine_set_state(o->db, old, DM_MACH_DESTROYED, err,
                                                  sizeof err))) == DM_E_CANCELLED)
        return;
    char d[160];
    snprintf(d, sizeof d, "fenced instance %lld (destroyed, confirmed gone); epoch %lld",
             (long long)old, (long long)f->real.epoch);
    phase_ok(r, d);
}

static void do_gpu_search(real_run *r, const dm_workload *w, const char *old_host)
{
    fo_orch *o = r->orch;
    prov_query q;
    query_from(w, &q);
    exclude_host(&r->f, old_host); /* recorded, so the reason can name it */
    excluded_into(&r->f, &q);
    char err[256] = "";
    int rc =
        provider_search(o->provider, &q, r->offers, PROV_OFFERS_MAX, &r->n_offers, err, sizeof err);
    if (rc == 0 && r->n_offers == 0) {
        snprintf(err, sizeof err,
                 "no compatible offer (min_vram_gb=%d min_cuda=%g region=%.31s max_price=%g, "
                 "excluded: %.100s)",
                 q.min_vram_gb, q.min_cuda, q.region[0] ? q.region : "any", q.max_price_per_h,
                 r->f.real.excluded_hosts[0] ? r->f.real.excluded_hosts : "none");
        rc = DM_E_NOT_FOUND;
    }
    if (rc) {
        phase_failed(r, err);
        return;
    }
    char d[320];
    snprintf(d, sizeof d, "%zu compatible offers; first %.63s on %.63s (%.63s, $%.2f/h)",
             r->n_offers, r->offers[0].id, r->offers[0].host, r->offers[0].gpu_name,
             r->offers[0].price_per_h);
    phase_ok(r, d);
}

static void launch_spec(fo_orch *o, const dm_workload *w, int64_t id, int64_t epoch, int test,
                        prov_launch *l)
{
    memset(l, 0, sizeof *l);
    l->instance_id = id;
    l->epoch = epoch;
    l->kind = "gpu";
    l->workload_cmd = w->workload_cmd[0] ? w->workload_cmd : NULL;
    l->probe_spec = w->probe_spec[0] ? w->probe_spec : NULL;
    l->heartbeat_ms = w->heartbeat_ms;
    l->snapshot_every_ms = test ? 0 : w->snapshot_every_ms;
    l->server_url = o->server_url;
    l->token = o->token;
    l->ca_file = o->ca_file[0] ? o->ca_file : NULL;
    l->store_url = o->store_url;
    l->hold = 1;
}

static void do_provisioning(real_run *r, const dm_workload *w)
{
    fo_orch *o = r->orch;
    fo_failover *f = &r->f;
    char err[256] = "";
    const prov_offer *offer = NULL;
    dm_machine m;
    if (f->real.new_instance_id != FO_NULL &&
        db_machine_get(o->db, f->real.new_instance_id, &m, err, sizeof err) == 0) {
        /* resumed: the same offer as before, if it is still in the market */
        for (size_t i = 0; i < r->n_offers && !offer; i++)
            if (strcmp(r->offers[i].id, m.offer_id) == 0)
                offer = &r->offers[i];
    }
    if (!offer) {
        if (f->real.new_instance_id != FO_NULL) /* its offer is gone: a new attempt */
            drop_new_instance(r, "its offer left the market");
        if (r->n_offers == 0) {
            attempt_failed(r, "no offer left");
            return;
        }
        offer = &r->offers[0];
        memset(&m, 0, sizeof m);
        snprintf(m.workload_id, sizeof m.workload_id, "%s", w->workload_id);
        snprintf(m.provider, sizeof m.provider, "%s", provider_name(o->provider));
        snprintf(m.offer_id, sizeof m.offer_id, "%s", offer->id);
        snprintf(m.host, sizeof m.host, "%s", offer->host);
        snprintf(m.gpu_name, sizeof m.gpu_name, "%s", offer->gpu_name);
        m.price_milli = (int64_t)(offer->price_per_h * 1000 + 0.5);
        m.epoch = f->real.test ? w->epoch : f->real.epoch;
        m.test = f->real.test;
        snprintf(m.failover_id, sizeof m.failover_id, "%s", f->id);
        if (landed(r, FO_DURABLE(o, f->id, err, db_machine_reserve(o->db, &m, err, sizeof err))) !=
            0) { /* F1 */
            if (!r->halt)
                phase_failed(r, err);
            return;
        }
        f->real.new_instance_id = m.instance_id;
        f->real.attempts++;
        if (save(r)) /* the intent, before the provider is asked (R1) */
            return;
    }
    prov_launch l;
    launch_spec(o, w, m.instance_id, m.epoch, f->real.test, &l);
    int rc = provider_provision(o->provider, offer, &l, &r->inst, err, sizeof err); /* PV2 */
    if (rc) {
        char d[300];
        snprintf(d, sizeof d, "provision on %s failed: %.200s", offer->host, err);
        attempt_failed(r, d);
        return;
    }
    r->have_inst = 1;
    snprintf(m.workspace, sizeof m.workspace, "%s", r->inst.workspace);
    snprintf(m.address, sizeof m.address, "%s", r->inst.address);
    m.state = DM_MACH_RUNNING;
    if (landed(r, FO_DURABLE(o, f->id, err, db_machine_put(o->db, &m, err, sizeof err))) ==
        DM_E_CANCELLED)
        return;
    char d[320];
    snprintf(d, sizeof d, "instance %lld on %.63s (%.63s, offer %.63s)", (long long)m.instance_id,
             offer->host, offer->gpu_name, offer->id);
    phase_ok(r, d);
}

/* The new instance as the provider knows it (after a restart r->inst is empty). */
static int load_inst(real_run *r, char *err, size_t errlen)
{
    if (r->have_inst)
        return 0;
    int rc = provider_get(r->orch->provider, r->f.real.new_instance_id, &r->inst, err, errlen);
    if (rc == 0)
        r->have_inst = 1;
    return rc;
}

static void do_ssh_ready(real_run *r)
{
    char err[256] = "";
    int rc = load_inst(r, err, sizeof err);
    if (rc == 0)
        rc = wait_healthy(r->orch, r->f.real.new_instance_id, r->orch->ready_timeout_ms, err,
                          sizeof err);
    if (rc == DM_E_CANCELLED)
        return;
    if (rc) {
        attempt_failed(r, err);
        return;
    }
    phase_ok(r, "agent registered and heartbeating");
}

static void do_restore(real_run *r, const dm_workload *w)
{
    fo_orch *o = r->orch;
    fo_failover *f = &r->f;
    char err[256] = "";
    dm_snapshot s;
    int rc = 0;
    if (f->real.test && f->real.snapshot_id[0])
        rc = FO_DURABLE(o, f->id, err,
                        db_snapshot_get(o->db, f->real.snapshot_id, &s, err, sizeof err));
    else
        rc = FO_DURABLE(o, f->id, err,
                        db_snapshot_latest_in_store(o->db, w->workload_id, o->store_url, &s, err,
                                                    sizeof err)); /* F4, O10 */
    if (landed(r, rc) == DM_E_CANCELLED)
        return;
    if (rc) {
        char d[300];
        snprintf(d, sizeof d, "no restorable snapshot of workload %s: %.200s", w->workload_id, err);
        phase_failed(r, d);
        return;
    }
    snprintf(f->real.snapshot_id, sizeof f->real.snapshot_id, "%s", s.snapshot_id);
    f->real.snapshot_size_bytes = s.size_bytes;
    f->real.snapshot_creation_time_ms = s.creation_time_ms;
    snprintf(f->real.snapshot_compression, sizeof f->real.snapshot_compression, "lz4");
    snprintf(f->real.snapshot_storage, sizeof f->real.snapshot_storage, "%.255s", o->store_url);
    if ((rc = load_inst(r, err, sizeof err)) != 0) {
        attempt_failed(r, err);
        return;
    }
    dm_store *store = NULL;
    prov_restore_times t = {0};
    rc = store_open(o->store_url, &store, err, sizeof err); /* O10: never a record's URL */
    if (rc == 0)
        rc = provider_restore(o->provider, &r->inst, store, s.snapshot_id, &t, err, sizeof err);
    store_close(store);
    if (rc) {
        char d[300];
        snprintf(d, sizeof d, "restore of %.80s failed: %.200s", s.snapshot_id, err);
        attempt_failed(r, d);
        return;
    }
    f->real.restore_download_time_ms = t.download_ms;
    f->real.restore_decompress_time_ms = t.decompress_ms;
    char d[200];
    snprintf(d, sizeof d, "snapshot %.80s, %lld bytes (download %lld ms, decompress %lld ms)",
             s.snapshot_id, (long long)s.size_bytes, (long long)t.download_ms,
             (long long)t.decompress_ms);
    phase_ok(r, d);
}

static void do_inference(real_run *r, dm_workload *w)
{
    fo_orch *o = r->orch;
    fo_failover *f = &r->f;
    char err[256] = "";
    int64_t ready_ms = 0;
    model_of(w, f->real.inference_model, sizeof f->real.inference_model);
    int rc = load_inst(r, err, sizeof err);
    if (rc == 0)
        rc = wait_inference(o, w, &r->inst, &ready_ms, err, sizeof err);
    if (rc == DM_E_CANCELLED)
        return;
    if (rc) {
        f->real.inference_success = 0;
        attempt_failed(r, err);
        return;
    }
    f->real.inference_success = 1;
    f->real.inference_ready_time_ms = ready_ms;
    if (!f->real.test) { /* F2: the new instance serves from now on */
        rc = landed(r, FO_DURABLE(o, f->id, err,
                                  db_workload_switch(o->db, w->workload_id, f->gpu_instance_id,
                                                     f->real.epoch, f->real.new_instance_id,
                                                     f->real.epoch, err, sizeof err)));
        if (r->halt)
            return;
        if (rc && w->serving_instance_id != f->real.new_instance_id) {
            phase_failed(r, err);
            return;
        }
        w->serving_instance_id = f->real.new_instance_id;
        if (landed(r, FO_DURABLE(o, f->id, err,
                                 db_workload_set_state(o->db, w->workload_id, DM_WL_RUNNING, err,
                                                       sizeof err))) == DM_E_CANCELLED)
            return;
    }
    char d[200];
    snprintf(d, sizeof d, "answering on %s after %lld ms", r->inst.address, (long long)ready_ms);
    phase_ok(r, d);
}

/* test-real: a fresh snapshot of the original, before anything else. */
static int test_snapshot(real_run *r, const dm_workload *w, char *err, size_t errlen)
{
    fo_orch *o = r->orch;
    fo_failover *f = &r->f;
    if (f->real.snapshot_id[0])
        return 0;
    prov_instance orig;
    int rc = provider_get(o->provider, f->gpu_instance_id, &orig, err, errlen);
    if (rc)
        return rc;
    dm_store *store = NULL;
    snap_info si;
    char tag[32];
    snprintf(tag, sizeof tag, "epoch=%lld", (long long)w->epoch);
    if ((rc = store_open(o->store_url, &store, err, errlen)) == 0)
        rc = provider_snapshot(o->provider, &orig, store, tag, &si, err, errlen);
    store_close(store);
    if (rc == 0)
        rc = landed(r, FO_DURABLE(o, f->id, err,
                                  record_snapshot(o, f->gpu_instance_id, w->epoch, &si, "test-real",
                                                  err, errlen)));
    if (rc)
        return rc;
    snprintf(f->real.snapshot_id, sizeof f->real.snapshot_id, "%s", si.id);
    f->real.snapshot_size_bytes = (int64_t)si.bytes;
    f->real.snapshot_creation_time_ms = si.duration_ms;
    return save(r);
}

static void finish_log(real_run *r)
{
    fo_failover *f = &r->f;
    log_info("failover.finished",
             "failover_id=%s gpu_instance_id=%lld new_instance_id=%lld kind=real test=%d "
             "state=%s total_time_ms=%lld",
             f->id, (long long)f->gpu_instance_id, (long long)f->real.new_instance_id, f->real.test,
             fo_state_name(f->state), (long long)f->total_time_ms);
}

/* R3: the variable var is "name:MS": pause MS (at most 10 min) there. */
static void test_pause_at(fo_orch *o, const char *var, const char *name)
{
    const char *v = getenv(var);
    const char *colon = v ? strchr(v, ':') : NULL;
    if (!colon || strlen(name) != (size_t)(colon - v) || strncmp(v, name, (size_t)(colon - v)) != 0)
        return;
    long ms = strtol(colon + 1, NULL, 10);
    if (ms > 0 && ms <= 600000) {
        log_warn("failover.test_pause", "at=%s ms=%ld", name, ms);
        clock_sleep_ms(ms, &o->stopping);
    }
}

static void test_pause(fo_orch *o, fo_phase p)
{
    test_pause_at(o, "DUMONT_TEST_PAUSE_PHASE", fo_phase_name(p));
}

static void *real_thread(void *arg)
{
    real_run *r = arg;
    fo_orch *o = r->orch;
    fo_failover *f = &r->f;
    char err[256] = "";
    dm_workload w;
    char old_host[64] = "";
    dm_machine om;
    if (db_machine_get(o->db, f->gpu_instance_id, &om, err, sizeof err) == 0)
        snprintf(old_host, sizeof old_host, "%s", om.host);
    int rc =
        landed(r, FO_DURABLE(o, f->id, err,
                             db_workload_get(o->db, f->real.workload_id, &w, err, sizeof err)));
    if (rc) {
        if (!r->halt)
            phase_failed(r, err);
        goto out;
    }
    r->phase_mono_ms = clock_mono_ms();
    while (!fo_state_is_terminal(f->state) && !stopping(r) && !r->halt) {
        test_pause(o, (fo_phase)f->state);
        if (stopping(r))
            break;
        switch ((fo_phase)f->state) {
        case FO_PHASE_DETECTION:
            if (f->real.test) {
                phase_skip(r, "test-real: nothing failed");
            } else {
                fo_event ev = {.kind = FO_EV_PHASE_OK,
                               .now_ms = clock_wall_ms(),
                               .duration_ms = r->detection_ms >= 0 ? r->detection_ms : 0,
                               .detail = f->real.trigger};
                apply(r, &ev);
            }
            break;
        case FO_PHASE_STANDBY_ACTIVATION:
            if (f->real.test) {
                if (test_snapshot(r, &w, err, sizeof err) != 0) {
                    if (r->halt)
                        break;
                    char d[300];
                    snprintf(d, sizeof d, "snapshot of instance %lld failed: %.200s",
                             (long long)f->gpu_instance_id, err);
                    phase_failed(r, d);
                    break;
                }
                phase_skip(r, "test-real: the original keeps serving");
            } else {
                do_standby_activation(r, &w);
            }
            break;
        case FO_PHASE_GPU_SEARCH:
            do_gpu_search(r, &w, old_host);
            break;
        case FO_PHASE_PROVISIONING:
            if (r->n_offers == 0) { /* resumed here: search again (pure, PV1) */
                prov_query q;
                query_from(&w, &q);
                prov_query_exclude(&q, old_host);
                excluded_into(f, &q);
                provider_search(o->provider, &q, r->offers, PROV_OFFERS_MAX, &r->n_offers, err,
                                sizeof err);
            }
            do_provisioning(r, &w);
            break;
        case FO_PHASE_SSH_READY:
            do_ssh_ready(r);
            break;
        case FO_PHASE_RESTORE:
            do_restore(r, &w);
            break;
        case FO_PHASE_INFERENCE:
            do_inference(r, &w);
            break;
        default:
            phase_failed(r, "unknown phase");
        }
    }
    if (f->state == FO_STATE_FAILED && !f->real.test) {
        drop_new_instance(r, f->reason);
        if (!r->halt && save(r) == 0)
            landed(r, FO_DURABLE(o, f->id, err,
                                 db_workload_set_state(o->db, w.workload_id, DM_WL_FAILED, err,
                                                       sizeof err)));
    }
    if (fo_state_is_terminal(f->state) && f->real.test && !f->real.keep &&
        f->real.new_instance_id != FO_NULL) {
        if (provider_destroy(o->provider, f->real.new_instance_id, err, sizeof err) == 0)
            landed(r, FO_DURABLE(o, f->id, err,
                                 db_machine_set_state(o->db, f->real.new_instance_id,
                                                      DM_MACH_DESTROYED, err, sizeof err)));
    }
out:
    if (fo_state_is_terminal(f->state))
        finish_log(r);
    else
        log_info("failover.paused", "failover_id=%s phase=%s (resumed at the next start)", f->id,
                 fo_state_name(f->state));
    free(r);
    fo_orch_run_finished(o);
    return NULL;
}

static int start_runner(fo_orch *o, real_run *r)
{
    pthread_attr_t attr;
    pthread_t tid;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    int rc = pthread_create(&tid, &attr, real_thread, r);
    pthread_attr_destroy(&attr);
    if (rc) {
        free(r);
        fo_orch_run_finished(o);
        return -rc;
    }
    return 0;
}

/* ---- entry points ---- */

/* O5: the detector's published changes (listener writer thread). */
static void on_instance_event(const hbl_event *ev, void *ctx)
{
    fo_orch *o = ctx;
    const char *trigger = NULL;
    if (strcmp(ev->what, "state") == 0 &&
        (strcmp(ev->to, "failed") == 0 || strcmp(ev->to, "preempting") == 0))
        trigger = ev->to;
    else if (strcmp(ev->what, "workload") == 0 && strcmp(ev->to, "crashlooping") == 0)
        trigger = "crashlooping";
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

int fo_orch_attach(fo_orch *o, const fo_real_env *env, char *err, size_t errlen)
{
    if (!o || !env || !env->provider || !env->store_url || !env->server_url || !env->token)
        return dm_fail(err, errlen, DM_E_INVALID,
                       "attach: provider, store, server and token "
                       "are required");
    if (strlen(env->store_url) >= sizeof o->store_url ||
        strlen(env->server_url) >= sizeof o->server_url || strlen(env->token) >= sizeof o->token ||
        (env->ca_file && strlen(env->ca_file) >= sizeof o->ca_file))
        return dm_fail(err, errlen, DM_E_TOO_BIG, "attach: a setting is too long");
    if (!o->store_url[0]) { /* not configured before: the attach's store is the one (O10) */
        int rc = fo_orch_set_store(o, env->store_url, err, errlen);
        if (rc)
            return rc;
    } else if (strcmp(o->store_url, env->store_url) != 0) {
        return dm_fail(err, errlen, DM_E_INVALID,
                       "attach: the store differs from the one configured (O10)");
    }
    snprintf(o->server_url, sizeof o->server_url, "%s", env->server_url);
    snprintf(o->token, sizeof o->token, "%s", env->token);
    snprintf(o->ca_file, sizeof o->ca_file, "%s", env->ca_file ? env->ca_file : "");
    o->ready_timeout_ms = env->ready_timeout_ms > 0 ? env->ready_timeout_ms : 60000;
    o->inference_timeout_ms = env->inference_timeout_ms > 0 ? env->inference_timeout_ms : 120000;
    o->preempt_grace_ms = env->preempt_grace_ms > 0 ? env->preempt_grace_ms : 20000;
    o->detect = env->detect;
    o->provider = env->provider;
    if (o->detect && hbl_subscribe(o->detect, on_instance_event, o) != 0)
        return dm_fail(err, errlen, DM_E_TOO_BIG, "attach: too many heartbeat subscribers");
    return 0;
}

static int new_id(const char *prefix, char *out, size_t outlen)
{
    char hex[16];
    int rc = secret_random_hex(hex, sizeof hex, 6);
    if (rc == 0)
        snprintf(out, outlen, "%s%s", prefix, hex);
    return rc;
}

/* Inserts the record and starts its runner; under start_lock. */
static int begin_run(fo_orch *o, real_run *r, fo_failover *ret, char *err, size_t errlen)
{
    int rc = fo_orch_reserve_slot(o);
    if (rc) {
        free(r);
        return dm_fail(err, errlen, rc, "%s",
                       rc == DM_E_BUSY ? "too many failovers are running; try again later"
                                       : "the server is shutting down");
    }
    rc = db_failover_insert(o->db, &r->f, err, errlen); /* O1 */
    if (rc) {
        free(r);
        fo_orch_run_finished(o);
        return rc;
    }
    if (ret)
        *ret = r->f;
    fo_orch_notify(o, &r->f);
    return start_runner(o, r);
}

int fo_orch_failover_instance(fo_orch *o, int64_t instance_id, const char *trigger,
                              fo_failover *ret, char *err, size_t errlen)
{
    return fo_orch_failover_detected(o, instance_id, trigger, 0, ret, err, errlen);
}

int fo_orch_failover_detected(fo_orch *o, int64_t instance_id, const char *trigger,
                              int64_t detection_ms, fo_failover *ret, char *err, size_t errlen)
{
    int rc = attached(o, err, errlen);
    if (rc)
        return rc;
    real_run *r = calloc(1, sizeof *r);
    if (!r)
        return dm_fail(err, errlen, -ENOMEM, "out of memory");
    pthread_mutex_lock(&o->start_lock);
    dm_workload w;
    char id[FO_ID_MAX];
    if ((rc = db_workload_by_serving(o->db, instance_id, &w, err, errlen)) != 0)
        goto fail;
    if (w.state == DM_WL_FAILING_OVER) {
        rc = dm_fail(err, errlen, DM_E_CONFLICT, "workload %s is already failing over",
                     w.workload_id);
        goto fail;
    }
    if ((rc = new_id("fo-", id, sizeof id)) != 0)
        goto fail;
    int64_t now = clock_wall_ms();
    fo_init(&r->f, id, instance_id, FO_KIND_REAL, now - (detection_ms > 0 ? detection_ms : 0));
    r->orch = o;
    r->detection_ms = detection_ms;
    snprintf(r->f.real.workload_id, sizeof r->f.real.workload_id, "%s", w.workload_id);
    snprintf(r->f.real.trigger, sizeof r->f.real.trigger, "%s", trigger ? trigger : "manual");
    snprintf(r->f.user_id, sizeof r->f.user_id, "controller");
    if ((rc = db_workload_set_state(o->db, w.workload_id, DM_WL_FAILING_OVER, err, errlen)) != 0)
        goto fail;
    rc = begin_run(o, r, ret, err, errlen);
    r = NULL;
    if (rc)
        db_workload_set_state(o->db, w.workload_id, DM_WL_RUNNING, err, errlen);
    else
        log_warn("failover.started",
                 "failover_id=%s gpu_instance_id=%lld workload_id=%s kind=real trigger=%s", id,
                 (long long)instance_id, w.workload_id, trigger ? trigger : "manual");
fail:
    pthread_mutex_unlock(&o->start_lock);
    free(r);
    return rc;
}

int fo_orch_test_real(fo_orch *o, int64_t instance_id, const char *model, int keep,
                      fo_failover *ret, char *err, size_t errlen)
{
    int rc = attached(o, err, errlen);
    if (rc)
        return rc;
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
    real_run *r = calloc(1, sizeof *r);
    char id[FO_ID_MAX];
    if (!r || (rc = new_id("real-", id, sizeof id)) != 0) {
        free(r);
        return dm_fail(err, errlen, r ? rc : -ENOMEM, "out of memory or entropy");
    }
    fo_init(&r->f, id, instance_id, FO_KIND_REAL, clock_wall_ms());
    r->orch = o;
    r->f.real.test = 1;
    r->f.real.keep = keep != 0;
    r->f.real.epoch = w.epoch;
    snprintf(r->f.real.workload_id, sizeof r->f.real.workload_id, "%s", w.workload_id);
    snprintf(r->f.real.trigger, sizeof r->f.real.trigger, "test-real");
    snprintf(r->f.user_id, sizeof r->f.user_id, "api");
    if (model && *model)
        snprintf(r->f.real.inference_model, sizeof r->f.real.inference_model, "%s", model);
    pthread_mutex_lock(&o->start_lock);
    rc = begin_run(o, r, ret, err, errlen);
    pthread_mutex_unlock(&o->start_lock);
    if (rc == DM_E_CONFLICT)
        return dm_fail(err, errlen, rc, "instance %lld already has a failover or test running",
                       (long long)instance_id);
    if (rc == 0)
        log_info("failover.started", "failover_id=%s gpu_instance_id=%lld kind=real test=1 keep=%d",
                 id, (long long)instance_id, keep != 0);
    return rc;
}

int fo_orch_resume_real(fo_orch *o, const fo_failover *f, char *err, size_t errlen)
{
    int rc = attached(o, err, errlen);
    if (rc)
        return rc;
    if ((rc = fo_orch_reserve_slot(o)) != 0)
        return dm_fail(err, errlen, rc, "no runner slot");
    real_run *r = calloc(1, sizeof *r);
    if (!r) {
        fo_orch_run_finished(o);
        return dm_fail(err, errlen, -ENOMEM, "out of memory");
    }
    r->orch = o;
    r->f = *f;
    r->detection_ms = 0;
    log_warn("failover.resumed", "failover_id=%s phase=%s new_instance_id=%lld", f->id,
             fo_state_name(f->state), (long long)f->real.new_instance_id);
    return start_runner(o, r);
}

/* ---- launch, chaos, destroy ---- */

static int launch_fail(fo_orch *o, dm_workload *w, int64_t id, int rc, char *err, size_t errlen)
{
    char e2[256] = "";
    if (id > 0 && provider_destroy(o->provider, id, e2, sizeof e2) == 0)
        db_machine_set_state(o->db, id, DM_MACH_DESTROYED, e2, sizeof e2);
    db_workload_set_state(o->db, w->workload_id, DM_WL_FAILED, e2, sizeof e2);
    (void)err;
    (void)errlen;
    return rc;
}

/* O13: destroys every machine of a launch left half done; 0 when all are
 * gone (then nothing of it runs). */
static int rollback_machines(fo_orch *o, const dm_workload *w, char *err, size_t errlen)
{
    dm_machine *m = NULL;
    size_t n = 0;
    int rc = db_machine_list(o->db, w->workload_id, &m, &n, err, errlen);
    for (size_t i = 0; rc == 0 && i < n; i++) {
        if (m[i].state == DM_MACH_DESTROYED)
            continue;
        if ((rc = provider_destroy(o->provider, m[i].instance_id, err, errlen)) == 0) /* PV3 */
            rc = db_machine_set_state(o->db, m[i].instance_id, DM_MACH_DESTROYED, err, errlen);
        if (rc == 0)
            log_warn("launch.instance_destroyed", "workload_id=%s instance_id=%lld", w->workload_id,
                     (long long)m[i].instance_id);
    }
    free(m);
    return rc;
}

int fo_orch_recover_launches(fo_orch *o, int *ret_count, char *err, size_t errlen)
{
    dm_workload *w = NULL;
    size_t n = 0;
    int count = 0, rc = db_workload_list(o->db, &w, &n, err, errlen);
    for (size_t i = 0; rc == 0 && i < n; i++) {
        /* A launch of this process is in flight, not left: created since it began. */
        if (w[i].state != DM_WL_LAUNCHING || w[i].created_at_ms >= o->started_at_ms)
            continue;
        if ((rc = rollback_machines(o, &w[i], err, errlen)) != 0)
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

int fo_orch_launch(fo_orch *o, const fo_launch_req *req, fo_launch_result *ret, char *err,
                   size_t errlen)
{
    int rc = attached(o, err, errlen);
    if (rc)
        return rc;
    if (!req || !ret || !req->workload_cmd || !*req->workload_cmd)
        return dm_fail(err, errlen, DM_E_INVALID, "launch: a workload command is required");
    if (req->probe_spec && *req->probe_spec &&
        (rc = prb_check_spec(req->probe_spec, err, errlen)) != 0)
        return rc;
    dm_workload w;
    memset(&w, 0, sizeof w);
    if ((rc = new_id("wl-", w.workload_id, sizeof w.workload_id)) != 0)
        return dm_fail(err, errlen, rc, "no entropy");
#define COPY(dst, src, what)                                                                       \
    do {                                                                                           \
        const char *s_ = (src) ? (src) : "";                                                       \
        if (strlen(s_) >= sizeof(dst))                                                             \
            return dm_fail(err, errlen, DM_E_TOO_BIG, "launch: %s is too long", what);             \
        memcpy(dst, s_, strlen(s_) + 1);                                                           \
    } while (0)
    COPY(w.name, req->name && *req->name ? req->name : w.workload_id, "name");
    COPY(w.workload_cmd, req->workload_cmd, "workload");
    COPY(w.probe_spec, req->probe_spec, "probe");
    COPY(w.model, req->model, "model");
    COPY(w.workspace_from, req->workspace_from, "workspace_from");
#undef COPY
    w.heartbeat_ms = req->heartbeat_ms > 0 ? req->heartbeat_ms : 200;
    w.snapshot_every_ms = req->snapshot_every_ms >= 0 ? req->snapshot_every_ms : 30000;
    json_t *reqs = json_pack("{s:i, s:f, s:f, s:s}", "min_vram_gb", req->min_vram_gb, "min_cuda",
                             req->min_cuda, "max_price", req->max_price_per_h, "region",
                             req->region ? req->region : "");
    char *js = reqs ? json_dumps(reqs, JSON_COMPACT) : NULL;
    json_decref(reqs);
    if (!js || strlen(js) >= sizeof w.requirements) {
        free(js);
        return dm_fail(err, errlen, DM_E_TOO_BIG, "launch: requirements too long");
    }
    snprintf(w.requirements, sizeof w.requirements, "%s", js);
    free(js);
    w.protect = req->protect;
    w.serving_instance_id = FO_NULL;
    w.epoch = 0;
    w.state = DM_WL_LAUNCHING;
    w.created_at_ms = clock_wall_ms();
    if ((rc = db_workload_insert(o->db, &w, err, errlen)) != 0)
        return rc;

    prov_query q;
    query_from(&w, &q);
    prov_offer offers[8];
    size_t n = 0;
    if ((rc = provider_search(o->provider, &q, offers, 8, &n, err, errlen)) != 0)
        return launch_fail(o, &w, 0, rc, err, errlen);
    if (n == 0)
        return launch_fail(
            o, &w, 0, dm_fail(err, errlen, DM_E_NOT_FOUND, "no compatible offer in the market"),
            err, errlen);
    dm_machine m;
    memset(&m, 0, sizeof m);
    snprintf(m.workload_id, sizeof m.workload_id, "%s", w.workload_id);
    snprintf(m.provider, sizeof m.provider, "%s", provider_name(o->provider));
    snprintf(m.offer_id, sizeof m.offer_id, "%s", offers[0].id);
    snprintf(m.host, sizeof m.host, "%s", offers[0].host);
    snprintf(m.gpu_name, sizeof m.gpu_name, "%s", offers[0].gpu_name);
    m.price_milli = (int64_t)(offers[0].price_per_h * 1000 + 0.5);
    if ((rc = db_machine_reserve(o->db, &m, err, errlen)) != 0)
        return launch_fail(o, &w, 0, rc, err, errlen);
    test_pause_at(o, "DUMONT_TEST_PAUSE_LAUNCH", "reserved");
    prov_launch l;
    launch_spec(o, &w, m.instance_id, 0, 0, &l);
    l.workspace_from = w.workspace_from[0] ? w.workspace_from : NULL;
    prov_instance inst;
    if ((rc = provider_provision(o->provider, &offers[0], &l, &inst, err, errlen)) != 0)
        return launch_fail(o, &w, m.instance_id, rc, err, errlen);
    snprintf(m.workspace, sizeof m.workspace, "%s", inst.workspace);
    snprintf(m.address, sizeof m.address, "%s", inst.address);
    m.state = DM_MACH_RUNNING;
    if ((rc = db_machine_put(o->db, &m, err, errlen)) != 0)
        return launch_fail(o, &w, m.instance_id, rc, err, errlen);
    test_pause_at(o, "DUMONT_TEST_PAUSE_LAUNCH", "provisioned");
    if ((rc = wait_healthy(o, m.instance_id, o->ready_timeout_ms, err, errlen)) != 0)
        return launch_fail(o, &w, m.instance_id, rc, err, errlen);
    /* A first restorable point, so that a failover has something to restore
     * even before the agent's first scheduled snapshot. */
    dm_store *store = NULL;
    snap_info si;
    if ((rc = store_open(o->store_url, &store, err, errlen)) == 0)
        rc = provider_snapshot(o->provider, &inst, store, "epoch=0", &si, err, errlen);
    store_close(store);
    if (rc == 0)
        rc = record_snapshot(o, m.instance_id, 0, &si, "launch", err, errlen);
    if (rc == 0)
        rc = db_workload_switch(o->db, w.workload_id, FO_NULL, 0, m.instance_id, 0, err, errlen);
    if (rc == 0)
        rc = provider_start_workload(o->provider, &inst, err, errlen);
    if (rc == 0)
        test_pause_at(o, "DUMONT_TEST_PAUSE_LAUNCH", "started");
    if (rc == 0)
        rc = db_workload_set_state(o->db, w.workload_id, DM_WL_RUNNING, err, errlen);
    if (rc)
        return launch_fail(o, &w, m.instance_id, rc, err, errlen);
    memset(ret, 0, sizeof *ret);
    snprintf(ret->workload_id, sizeof ret->workload_id, "%s", w.workload_id);
    ret->instance_id = m.instance_id;
    snprintf(ret->workspace, sizeof ret->workspace, "%s", inst.workspace);
    snprintf(ret->address, sizeof ret->address, "%s", inst.address);
    log_info("instance.launched", "instance_id=%lld workload_id=%s host=%s address=%s",
             (long long)m.instance_id, w.workload_id, m.host, inst.address);
    return 0;
}

int fo_orch_chaos_preempt(fo_orch *o, int64_t instance_id, int64_t notice_ms, char *err,
                          size_t errlen)
{
    int rc = attached(o, err, errlen);
    if (rc)
        return rc;
    dm_machine m;
    if ((rc = db_machine_get(o->db, instance_id, &m, err, errlen)) != 0)
        return rc;
    if (m.state == DM_MACH_DESTROYED)
        return dm_fail(err, errlen, DM_E_CONFLICT, "instance %lld is already destroyed",
                       (long long)instance_id);
    rc = provider_preempt(o->provider, instance_id, notice_ms, err, errlen);
    if (rc == 0)
        log_warn("chaos.preempt", "instance_id=%lld notice_ms=%lld", (long long)instance_id,
                 (long long)notice_ms);
    return rc;
}

int fo_orch_destroy_instance(fo_orch *o, int64_t instance_id, char *err, size_t errlen)
{
    int rc = attached(o, err, errlen);
    if (rc)
        return rc;
    dm_machine m;
    if ((rc = db_machine_get(o->db, instance_id, &m, err, errlen)) != 0)
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
    if ((rc = provider_destroy(o->provider, instance_id, err, errlen)) != 0)
        return rc;
    return db_machine_set_state(o->db, instance_id, DM_MACH_DESTROYED, err, errlen);
}

/* The real runner (src/failover/real.c ORCH-R1 to ORCH-R4, real_phases.c, orchestrator.h
 * ORCH-O5 to ORCH-O9, ORCH-O12) with stand-ins for its peers: a fake provider built with
 * provider_from_ops, fake liveness, probe and event ports (ports.h), on a
 * temporary SQLite database whose back end can be told to fail writes.
 *
 * The fake provider behaves as provider.h says a provider does: provision is
 * idempotent per id (PROV-PV2), destroy confirms an instance it made gone, again
 * after it was destroyed, and an id it never made is DM_E_NOT_FOUND (PROV-PV3), status
 * and get answer from its table. The fake liveness reports an instance
 * healthy once provisioned, and its workload running (and its probe ok)
 * once started, except on the hosts a test marks. Timeouts are a few hundred
 * milliseconds: no test sleeps for seconds. */
#define _GNU_SOURCE /* nftw FTW_DEPTH */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "db/db.h"
#include "db/db_fleet.h"
#include "db/db_internal.h"
#include "failover/orchestrator.h"
#include "failover/ports.h"
#include "provider/provider.h"
#include "util/clock.h"
#include "util/error.h"

#include <ftw.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define OLD_ID   100
#define SNAP_ID  "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
#define MAX_INST 16

/* ---- the fake provider and ports ---------------------------------------- */

typedef struct {
    int64_t id;
    char host[64];
    int alive;   /* provisioned and not destroyed */
    int started; /* start_workload called */
} fake_inst;

typedef struct {
    pthread_mutex_t mu;
    prov_offer offers[4];
    int n_offers;
    fake_inst inst[MAX_INST];
    int n_inst;
    /* what it was asked */
    int searches, provisions, made, destroys, restores, starts, snapshots, probes, preempts;
    int64_t destroyed[MAX_INST];
    int n_destroyed;
    /* faults */
    char fail_provision_host[64]; /* provision there fails */
    char unhealthy_host[64];      /* instances there never become healthy */
    char silent_host[64];         /* workloads there never answer */
    char crashloop_host[64];      /* workloads there crash-loop once started (ORCH-W3) */
    const char *crash_report;     /* with crashloop_host: the agent's report recorded first */
    dm_db *db;                    /* where that report is recorded */
    char served[64];              /* ","-list of the models the model servers have; "": any */
    char probed[256];             /* the spec of the controller's last probe */
    int fail_restores;            /* the next N restores fail */
    int64_t fail_destroy_id;      /* destroy of this id fails (no fence) */
    int64_t lease_expired_id;     /* the lease port says this one fenced itself (ORCH-R7) */
    atomic_int arm_on_search;     /* g_fail_on takes this value when searched */
    int64_t port_fenced[MAX_INST]; /* ids the fence port was told of (HB-L13) */
    int n_port_fenced;
    int64_t revoked[MAX_INST]; /* ids whose credentials were revoked (PROV-PD3) */
    int n_revoked;
    /* the subscriber (ORCH-O5) */
    hbl_event_fn sub_fn;
    void *sub_ctx;
} fake;

static fake g_fk;

static fake_inst *find(fake *f, int64_t id)
{
    for (int i = 0; i < f->n_inst; i++)
        if (f->inst[i].id == id)
            return &f->inst[i];
    return NULL;
}

static int alive_count(fake *f)
{
    pthread_mutex_lock(&f->mu);
    int n = 0;
    for (int i = 0; i < f->n_inst; i++)
        n += f->inst[i].alive && f->inst[i].id != OLD_ID;
    pthread_mutex_unlock(&f->mu);
    return n;
}

static atomic_int g_fail_on; /* every failover save fails while set: 1 a storage fault,
                              * 2 a refusal (DM_E_CONFLICT) */

static int fk_search(void *p, const prov_query *q, prov_offer *ret, size_t max, size_t *ret_n,
                     char *err, size_t errlen)
{
    fake *f = p;
    pthread_mutex_lock(&f->mu);
    f->searches++;
    size_t n = 0;
    for (int i = 0; i < f->n_offers && n < max; i++) {
        int excluded = 0;
        for (int e = 0; e < q->n_exclude; e++)
            excluded |= strcmp(q->exclude_hosts[e], f->offers[i].host) == 0;
        if (!excluded)
            ret[n++] = f->offers[i];
    }
    *ret_n = n;
    pthread_mutex_unlock(&f->mu);
    if (atomic_load(&f->arm_on_search))
        atomic_store(&g_fail_on, atomic_load(&f->arm_on_search));
    return 0;
}

static void fill(const fake_inst *fi, prov_instance *ret)
{
    memset(ret, 0, sizeof *ret);
    ret->instance_id = fi->id;
    snprintf(ret->provider, sizeof ret->provider, "fake");
    snprintf(ret->host, sizeof ret->host, "%s", fi->host);
    snprintf(ret->workspace, sizeof ret->workspace, "/nonexistent/ws-%lld", (long long)fi->id);
    snprintf(ret->address, sizeof ret->address, "127.0.0.1:%lld", 30000 + (long long)fi->id % 1000);
}

static int fk_provision(void *p, const prov_offer *offer, const prov_launch *l, prov_instance *ret,
                        char *err, size_t errlen)
{
    fake *f = p;
    int rc = 0;
    pthread_mutex_lock(&f->mu);
    f->provisions++;
    fake_inst *fi = find(f, l->instance_id);
    if (strcmp(offer->host, f->fail_provision_host) == 0) {
        rc = dm_fail(err, errlen, DM_E_UNAVAILABLE, "fake: no capacity on %s", offer->host);
    } else if (fi && fi->alive) { /* PROV-PV2 */
        fill(fi, ret);
    } else if (!fi && f->n_inst >= MAX_INST) {
        rc = dm_fail(err, errlen, DM_E_TOO_BIG, "fake: full");
    } else {
        if (!fi)
            fi = &f->inst[f->n_inst++];
        memset(fi, 0, sizeof *fi);
        fi->id = l->instance_id;
        snprintf(fi->host, sizeof fi->host, "%s", offer->host);
        fi->alive = 1;
        f->made++;
        fill(fi, ret);
    }
    pthread_mutex_unlock(&f->mu);
    return rc;
}

static int fk_get(void *p, int64_t id, prov_instance *ret, char *err, size_t errlen)
{
    fake *f = p;
    pthread_mutex_lock(&f->mu);
    fake_inst *fi = find(f, id);
    int rc =
        fi && fi->alive ? 0 : dm_fail(err, errlen, DM_E_NOT_FOUND, "fake: no %lld", (long long)id);
    if (rc == 0)
        fill(fi, ret);
    pthread_mutex_unlock(&f->mu);
    return rc;
}

static int fk_status(void *p, int64_t id, prov_state *ret, char *err, size_t errlen)
{
    fake *f = p;
    pthread_mutex_lock(&f->mu);
    fake_inst *fi = find(f, id);
    *ret = fi && fi->alive ? PROV_RUNNING : PROV_ABSENT;
    pthread_mutex_unlock(&f->mu);
    return 0;
}

static int fk_destroy(void *p, int64_t id, char *err, size_t errlen)
{
    fake *f = p;
    pthread_mutex_lock(&f->mu);
    f->destroys++;
    int rc = 0;
    if (id == f->fail_destroy_id) {
        rc = dm_fail(err, errlen, DM_E_UNAVAILABLE, "fake: instance %lld does not die",
                     (long long)id);
    } else if (!find(f, id)) { /* PROV-PV3: never made here */
        rc = dm_fail(err, errlen, DM_E_NOT_FOUND, "fake: instance %lld was never made here",
                     (long long)id);
    } else {
        fake_inst *fi = find(f, id);
        fi->alive = fi->started = 0;
        if (f->n_destroyed < MAX_INST)
            f->destroyed[f->n_destroyed++] = id;
    }
    pthread_mutex_unlock(&f->mu);
    return rc;
}

static int fk_restore(void *p, const prov_instance *inst, dm_store *store, const char *snapshot_id,
                      prov_restore_times *ret, char *err, size_t errlen)
{
    fake *f = p;
    pthread_mutex_lock(&f->mu);
    f->restores++;
    int fail = f->fail_restores > 0;
    if (fail)
        f->fail_restores--;
    pthread_mutex_unlock(&f->mu);
    if (fail)
        return dm_fail(err, errlen, DM_E_PROTOCOL, "fake: chunk damaged");
    ret->download_ms = 3;
    ret->decompress_ms = 4;
    ret->total_ms = 7;
    ret->bytes = 1000;
    return 0;
}

static int fk_snapshot(void *p, const prov_instance *inst, dm_store *store, const char *tag,
                       snap_info *ret, char *err, size_t errlen)
{
    fake *f = p;
    pthread_mutex_lock(&f->mu);
    f->snapshots++;
    pthread_mutex_unlock(&f->mu);
    memset(ret, 0, sizeof *ret);
    snprintf(ret->id, sizeof ret->id, "%s",
             "fedcba9876543210fedcba9876543210fedcba9876543210fedcba9876543210");
    ret->bytes = 2048;
    ret->files = 2;
    ret->time_ms = clock_wall_ms();
    ret->duration_ms = 5;
    return 0;
}

static int fk_start(void *p, const prov_instance *inst, char *err, size_t errlen)
{
    fake *f = p;
    pthread_mutex_lock(&f->mu);
    f->starts++;
    fake_inst *fi = find(f, inst->instance_id);
    if (fi)
        fi->started = 1;
    pthread_mutex_unlock(&f->mu);
    return fi ? 0 : dm_fail(err, errlen, DM_E_NOT_FOUND, "fake: no such instance");
}

static int fk_preempt(void *p, int64_t id, int64_t notice_ms, char *err, size_t errlen)
{
    fake *f = p;
    pthread_mutex_lock(&f->mu);
    f->preempts++;
    pthread_mutex_unlock(&f->mu);
    return 0;
}

static const provider_ops fk_ops = {
    .name = "fake",
    .search = fk_search,
    .provision = fk_provision,
    .get = fk_get,
    .status = fk_status,
    .destroy = fk_destroy,
    .restore = fk_restore,
    .snapshot = fk_snapshot,
    .start_workload = fk_start,
    .preempt = fk_preempt,
    .close = NULL, /* g_fk is the test's */
};

static int fk_live(void *cls, int64_t id, hbl_live *ret)
{
    fake *f = cls;
    pthread_mutex_lock(&f->mu);
    fake_inst *fi = find(f, id);
    int rc = fi ? 0 : DM_E_NOT_FOUND;
    if (fi) {
        memset(ret, 0, sizeof *ret);
        int silent = strcmp(fi->host, f->silent_host) == 0;
        ret->state =
            fi->alive && strcmp(fi->host, f->unhealthy_host) != 0 ? DET_HEALTHY : DET_PENDING;
        ret->workload = fi->started && !silent ? HB_WL_RUNNING : HB_WL_NONE;
        ret->probe = fi->started && !silent ? HB_PR_OK : HB_PR_PENDING;
        if (fi->started && strcmp(fi->host, f->crashloop_host) == 0) {
            ret->workload = HB_WL_CRASHLOOPING; /* AG-R2: its report was delivered first */
            ret->probe = HB_PR_FAILING;
        }
    }
    int report = rc == 0 && fi->started && strcmp(fi->host, f->crashloop_host) == 0 &&
                 f->crash_report;
    pthread_mutex_unlock(&f->mu);
    if (report) { /* what fo_orch_workload_exit records for a workload failure (ORCH-W3) */
        char e[256];
        db_workload_set_failure(f->db, "wl-test", f->crash_report, 0, e, sizeof e);
    }
    return rc;
}

static void fk_fence(void *cls, int64_t id)
{
    fake *f = cls;
    pthread_mutex_lock(&f->mu);
    if (f->n_port_fenced < MAX_INST)
        f->port_fenced[f->n_port_fenced++] = id;
    pthread_mutex_unlock(&f->mu);
}

static int fk_mint(void *cls, int64_t id, char *buf, size_t cap, char *err, size_t errlen)
{
    (void)cls, (void)err, (void)errlen;
    snprintf(buf, cap, "agent-token-%lld", (long long)id);
    return 0;
}

static void fk_revoke(void *cls, int64_t id)
{
    fake *f = cls;
    pthread_mutex_lock(&f->mu);
    if (f->n_revoked < MAX_INST)
        f->revoked[f->n_revoked++] = id;
    pthread_mutex_unlock(&f->mu);
}

static int was_revoked(int64_t id)
{
    pthread_mutex_lock(&g_fk.mu);
    int n = 0;
    for (int i = 0; i < g_fk.n_revoked; i++)
        n += g_fk.revoked[i] == id;
    pthread_mutex_unlock(&g_fk.mu);
    return n;
}

static int fk_lease_expired(void *cls, int64_t id, int64_t *ret_silent_ms)
{
    fake *f = cls;
    *ret_silent_ms = 16000;
    return id == f->lease_expired_id;
}

static int fk_subscribe(void *cls, hbl_event_fn fn, void *ctx)
{
    fake *f = cls;
    f->sub_fn = fn;
    f->sub_ctx = ctx;
    return 0;
}

/* The controller's probe of an ollama: workload: ok when the instance at
 * the address the spec names was started (and is not silent). */
static hb_probe fk_probe(void *cls, const char *spec, int first)
{
    fake *f = cls;
    pthread_mutex_lock(&f->mu);
    f->probes++;
    snprintf(f->probed, sizeof f->probed, "%s", spec);
    hb_probe r = HB_PR_PENDING;
    char model[64] = "", list[80];
    if (strncmp(spec, "ollama:", 7) == 0)
        snprintf(model, sizeof model, "%.*s", (int)strcspn(spec + 7, "@"), spec + 7);
    snprintf(list, sizeof list, ",%s,", f->served);
    char want[72];
    snprintf(want, sizeof want, ",%s,", model);
    if (f->served[0] && !strstr(list, want)) { /* the model server lacks it */
        pthread_mutex_unlock(&f->mu);
        return HB_PR_FAILING;
    }
    for (int i = 0; i < f->n_inst; i++) {
        prov_instance pi;
        fill(&f->inst[i], &pi);
        if (strstr(spec, pi.address) && f->inst[i].started &&
            strcmp(f->inst[i].host, f->silent_host) != 0)
            r = HB_PR_OK;
    }
    pthread_mutex_unlock(&f->mu);
    return r;
}

/* ---- a database whose failover saves fail while told ------------------- */

static const db_backend_ops *g_real;
static db_backend_ops g_faulty;
static atomic_int g_failed; /* saves failed so far */

/* While g_meet is set, the first two reads of the workload an instance serves wait,
 * once done, for each other (up to 2 s): two controllers that both saw the workload running. */
static atomic_int g_meet;
static pthread_mutex_t g_meet_mu = PTHREAD_MUTEX_INITIALIZER;
static int g_met;

static void meet(const char *sql)
{
    if (!atomic_load(&g_meet) || !strstr(sql, "FROM workloads WHERE serving_instance_id"))
        return;
    pthread_mutex_lock(&g_meet_mu);
    if (g_met < 2) {
        g_met++;
        int64_t deadline = clock_mono_ms() + 2000;
        while (g_met < 2 && clock_mono_ms() < deadline) {
            pthread_mutex_unlock(&g_meet_mu);
            clock_sleep_ms(1, NULL);
            pthread_mutex_lock(&g_meet_mu);
        }
    }
    pthread_mutex_unlock(&g_meet_mu);
}

static int faulty_exec(void *st, const char *sql, const db_param *p, int np, db_row_fn fn,
                       void *ctx, int64_t *ret_changes, char *err, size_t errlen)
{
    int mode = atomic_load(&g_fail_on);
    if (strncmp(sql, "UPDATE failovers", 16) == 0 && mode) {
        atomic_fetch_add(&g_failed, 1);
        if (mode == 2)
            return dm_fail(err, errlen, DM_E_CONFLICT, "refused");
        return dm_fail(err, errlen, DM_E_DB, "sqlite: step: database or disk is full");
    }
    int rc = g_real->exec(st, sql, p, np, fn, ctx, ret_changes, err, errlen);
    meet(sql); /* after the read: each has seen the state before either writes */
    return rc;
}

/* ---- the fixture -------------------------------------------------------- */

typedef struct {
    char dir[64];
    char path[128];
    char store[128];
    dm_db *db;
    fo_orch *orch;
    dm_provider *prov;
    fo_real_ports ports;
} fixture;

static char g_err[512];
static double g_budget_scale; /* fo_real_env.budget_time_scale of start_orch */
#define OK(x) assert_int_equal((x), 0)

static void add_offer(const char *id, const char *host, double price)
{
    prov_offer *o = &g_fk.offers[g_fk.n_offers++];
    memset(o, 0, sizeof *o);
    snprintf(o->id, sizeof o->id, "%s", id);
    snprintf(o->host, sizeof o->host, "%s", host);
    snprintf(o->gpu_name, sizeof o->gpu_name, "RTX 4090");
    o->vram_gb = 24;
    o->cuda = 12.4;
    o->price_per_h = price;
    o->reliability = 0.99;
}

/* A new orchestrator on fx->db, attached to the fake (ports: fx->ports). */
static void start_orch(fixture *fx, int with_ports)
{
    OK(fo_orch_new(fx->db, 1000.0, &fx->orch));
    OK(fo_orch_set_store(fx->orch, fx->store, g_err, sizeof g_err));
    fo_real_env env = {.provider = fx->prov,
                       .ports = with_ports ? &fx->ports : NULL,
                       .store_url = fx->store,
                       .server_url = "http://127.0.0.1:1",
                       .token = "agent-token",
                       .ready_timeout_ms = 300,
                       .inference_timeout_ms = 300,
                       .budget_time_scale = g_budget_scale};
    OK(fo_orch_attach(fx->orch, &env, g_err, sizeof g_err));
}

static void stop_orch(fixture *fx)
{
    fo_orch_free(fx->orch);
    fx->orch = NULL;
}

/* The workload wl-test served by OLD_ID on old-host, epoch 0, with one
 * snapshot in the configured store (unless no_snapshot). */
static void seed_fleet(fixture *fx, const char *probe, int no_snapshot)
{
    dm_workload w;
    memset(&w, 0, sizeof w);
    snprintf(w.workload_id, sizeof w.workload_id, "wl-test");
    snprintf(w.name, sizeof w.name, "test");
    snprintf(w.workload_cmd, sizeof w.workload_cmd, "sleep 1000");
    snprintf(w.probe_spec, sizeof w.probe_spec, "%s", probe);
    snprintf(w.requirements, sizeof w.requirements, "{\"min_vram_gb\":16}");
    w.heartbeat_ms = 200;
    w.snapshot_every_ms = 0;
    w.protect = 1;
    w.serving_instance_id = OLD_ID;
    w.epoch = 0;
    w.state = DM_WL_RUNNING;
    w.created_at_ms = clock_wall_ms() - 60000;
    OK(db_workload_insert(fx->db, &w, g_err, sizeof g_err));
    dm_machine m;
    memset(&m, 0, sizeof m);
    m.instance_id = OLD_ID;
    snprintf(m.workload_id, sizeof m.workload_id, "wl-test");
    snprintf(m.provider, sizeof m.provider, "fake");
    snprintf(m.offer_id, sizeof m.offer_id, "offer-old");
    snprintf(m.host, sizeof m.host, "old-host");
    m.state = DM_MACH_RUNNING;
    m.price_milli = 500;
    m.created_at_ms = clock_wall_ms() - 60000;
    m.destroyed_at_ms = FO_NULL;
    OK(db_machine_put(fx->db, &m, g_err, sizeof g_err));
    fake_inst *fi = &g_fk.inst[g_fk.n_inst++];
    fi->id = OLD_ID;
    snprintf(fi->host, sizeof fi->host, "old-host");
    fi->alive = fi->started = 1;
    if (no_snapshot)
        return;
    dm_snapshot s;
    memset(&s, 0, sizeof s);
    snprintf(s.snapshot_id, sizeof s.snapshot_id, SNAP_ID);
    s.instance_id = OLD_ID;
    s.epoch = 0;
    snprintf(s.store_url, sizeof s.store_url, "%s", fx->store);
    s.size_bytes = 1000;
    s.files = 1;
    s.created_at_ms = clock_wall_ms() - 1000;
    s.creation_time_ms = 12;
    s.reported_at_ms = clock_wall_ms() - 900;
    snprintf(s.trigger, sizeof s.trigger, "scheduled");
    OK(db_snapshot_record(fx->db, &s, g_err, sizeof g_err));
}

static int setup(void **state)
{
    fixture *fx = calloc(1, sizeof *fx);
    snprintf(fx->dir, sizeof fx->dir, "/tmp/dumont-real-XXXXXX");
    assert_non_null(mkdtemp(fx->dir));
    snprintf(fx->path, sizeof fx->path, "%s/dumont.db", fx->dir);
    snprintf(fx->store, sizeof fx->store, "file://%s/store", fx->dir);
    OK(db_open(fx->path, &fx->db, g_err, sizeof g_err));
    g_real = fx->db->ops;
    g_faulty = *g_real;
    g_faulty.exec = faulty_exec;
    fx->db->ops = &g_faulty;
    atomic_store(&g_fail_on, 0);
    atomic_store(&g_failed, 0);
    g_budget_scale = 0;
    memset(&g_fk, 0, sizeof g_fk);
    pthread_mutex_init(&g_fk.mu, NULL);
    g_fk.fail_destroy_id = FO_NULL;
    g_fk.lease_expired_id = FO_NULL;
    add_offer("offer-a", "host-a", 0.5);
    add_offer("offer-b", "host-b", 0.6);
    add_offer("offer-c", "host-c", 0.7);
    add_offer("offer-d", "host-d", 0.8);
    OK(provider_from_ops(&fk_ops, &g_fk, &fx->prov, g_err, sizeof g_err));
    provider_set_creds(fx->prov, &(prov_cred_hooks){.mint = fk_mint, .revoke = fk_revoke, .cls = &g_fk});
    fx->ports = (fo_real_ports){
        .live_get = fk_live,
        .subscribe = fk_subscribe,
        .probe = fk_probe,
        .fence = fk_fence,
        .lease_expired = fk_lease_expired,
        .cls = &g_fk};
    *state = fx;
    return 0;
}

static int rm_one(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static int teardown(void **state)
{
    fixture *fx = *state;
    fo_orch_free(fx->orch);
    provider_close(fx->prov);
    db_close(fx->db);
    nftw(fx->dir, rm_one, 16, FTW_DEPTH | FTW_PHYS); /* our own mkdtemp directory */
    pthread_mutex_destroy(&g_fk.mu);
    free(fx);
    return 0;
}

/* Polls until the failover is in state want, or (want FO_NULL) has ended
 * and its runner is done (it cleans up after the last save). */
static void wait_state(fixture *fx, const char *id, fo_state want, fo_failover *ret)
{
    char err[256];
    int64_t deadline = clock_mono_ms() + 10000;
    do {
        OK(db_failover_get(fx->db, id, ret, err, sizeof err));
        if (want == FO_NULL ? fo_state_is_terminal(ret->state) && fo_orch_running(fx->orch) == 0
                            : ret->state == want)
            return;
        clock_sleep_ms(2, NULL);
    } while (clock_mono_ms() < deadline);
    fail_msg("failover %s still %s after 10 s", id, fo_state_name(ret->state));
}

static void start_failover(fixture *fx, fo_failover *ret)
{
    OK(fo_orch_failover_instance(fx->orch, OLD_ID, "manual", ret, g_err, sizeof g_err));
}

static void get_workload(fixture *fx, dm_workload *w)
{
    OK(db_workload_get(fx->db, "wl-test", w, g_err, sizeof g_err));
}

static void assert_machine_state(fixture *fx, int64_t id, const char *state)
{
    dm_machine m;
    OK(db_machine_get(fx->db, id, &m, g_err, sizeof g_err));
    assert_string_equal(dm_mach_state_name(m.state), state);
}

/* FO-I3, FO-I5, FO-I6: total_time_ms is finished minus started; the runs and
 * the downtime sum to it exactly; each phase's duration is the sum of its
 * runs; a run starts where the one before ended (plus the downtime between);
 * attempts count from 1 without a gap. */
static void assert_time_accounted(const fo_failover *f)
{
    assert_int_equal(f->total_time_ms, f->finished_at_ms - f->started_at_ms);
    int64_t sum = f->controller_down_ms, ph[FO_PHASE_COUNT] = {0};
    int64_t at = f->started_at_ms;
    int attempt = 1;
    assert_true(f->n_runs > 0);
    for (int i = 0; i < f->n_runs; i++) {
        const fo_phase_run *r = &f->runs[i];
        int64_t d = r->duration_ms == FO_NULL ? 0 : r->duration_ms;
        assert_true(r->started_at_ms >= at); /* no overlap; a gap only for downtime */
        assert_true(r->attempt == attempt || r->attempt == attempt + 1);
        attempt = r->attempt;
        at = r->started_at_ms + d;
        sum += d;
        if (r->status != FO_PHASE_SKIPPED)
            ph[r->phase] += d;
    }
    assert_int_equal(sum, f->total_time_ms);
    assert_true(at <= f->finished_at_ms);
    for (int p = 0; p < FO_PHASE_COUNT; p++)
        assert_int_equal(f->phases[p].duration_ms == FO_NULL ? 0 : f->phases[p].duration_ms,
                         ph[p]);
}

/* A completed failover: every phase ok, the workload moved to the one live
 * new instance, the old one fenced. */
static void assert_moved(fixture *fx, const fo_failover *done)
{
    assert_int_equal(done->state, FO_STATE_COMPLETED);
    assert_int_equal(done->success, 1);
    for (int p = 0; p < FO_PHASE_COUNT; p++)
        assert_int_equal(done->phases[p].status, FO_PHASE_OK);
    dm_workload w;
    get_workload(fx, &w);
    assert_string_equal(dm_wl_state_name(w.state), "running");
    assert_int_equal(w.serving_instance_id, done->real.new_instance_id);
    assert_int_equal(w.epoch, 1);
    assert_int_equal(done->real.epoch, 1);
    assert_machine_state(fx, OLD_ID, "destroyed");
    assert_machine_state(fx, done->real.new_instance_id, "running");
    assert_int_equal(alive_count(&g_fk), 1); /* exactly one new instance (ORCH-O6) */
    assert_string_equal(done->real.snapshot_id, SNAP_ID);
    assert_int_equal(done->real.inference_success, 1);
    assert_string_equal(done->user_id, "automatic"); /* no credential started it */
    assert_string_equal(done->real.snapshot_storage, "file");
    assert_int_equal(strncmp(done->real.snapshot_storage_url, "file://", 7), 0);
    assert_time_accounted(done);
}

/* ---- two controllers on one database (ORCH-R6) --------------------------- */

typedef struct {
    fo_orch *orch;
    int rc;
    fo_failover f;
    char err[256];
} trigger;

static void *trigger_main(void *arg)
{
    trigger *t = arg;
    t->rc = fo_orch_failover_instance(t->orch, OLD_ID, "failed", &t->f, t->err, sizeof t->err);
    return NULL;
}

/* Both controllers read the workload running at the same moment, then both try
 * to start its failover: the database's compare-and-set lets one win; the
 * loser is refused and leaves the workload's state alone (no reset to running
 * under the winner's feet), and one failover completes with one new instance. */
static void test_two_controllers_race(void **state)
{
    fixture *fx = *state;
    seed_fleet(fx, "", 0);
    start_orch(fx, 1);
    dm_db *db2 = NULL;
    fo_orch *o2 = NULL;
    OK(db_open(fx->path, &db2, g_err, sizeof g_err));
    db2->ops = &g_faulty;
    OK(fo_orch_new(db2, 1000.0, &o2));
    OK(fo_orch_set_store(o2, fx->store, g_err, sizeof g_err));
    fo_real_env env = {.provider = fx->prov,
                       .ports = &fx->ports,
                       .store_url = fx->store,
                       .server_url = "http://127.0.0.1:1",
                       .token = "agent-token",
                       .ready_timeout_ms = 300,
                       .inference_timeout_ms = 300};
    OK(fo_orch_attach(o2, &env, g_err, sizeof g_err));
    setenv("DUMONT_TEST_PAUSE_PHASE", "detection:400", 1); /* the winner holds still */
    g_met = 0;
    atomic_store(&g_meet, 1);
    trigger a = {.orch = fx->orch}, b = {.orch = o2};
    pthread_t ta, tb;
    assert_int_equal(pthread_create(&ta, NULL, trigger_main, &a), 0);
    assert_int_equal(pthread_create(&tb, NULL, trigger_main, &b), 0);
    pthread_join(ta, NULL);
    pthread_join(tb, NULL);
    atomic_store(&g_meet, 0);
    assert_int_equal(g_met, 2); /* both read it running */
    assert_true((a.rc == 0 && b.rc == DM_E_CONFLICT) || (b.rc == 0 && a.rc == DM_E_CONFLICT));
    const trigger *won = a.rc == 0 ? &a : &b, *lost = a.rc == 0 ? &b : &a;
    dm_workload w;
    get_workload(fx, &w);
    assert_string_equal(dm_wl_state_name(w.state), "failing_over"); /* the winner's */
    assert_non_null(strstr(lost->err, "not running"));
    db_failover_filter flt;
    db_failover_filter_init(&flt);
    int64_t count = 0;
    OK(db_failover_count(fx->db, &flt, &count, g_err, sizeof g_err));
    assert_int_equal(count, 1);
    fo_failover done;
    wait_state(fx, won->f.id, FO_STATE_COMPLETED, &done);
    unsetenv("DUMONT_TEST_PAUSE_PHASE");
    while (fo_orch_running(fx->orch) || fo_orch_running(o2))
        clock_sleep_ms(2, NULL);
    assert_moved(fx, &done);
    fo_orch_free(o2);
    db_close(db2);
}

/* ---- the failover budget (ORCH-R8, budget.c) ------------------------------ */

/* One failover of whatever serves wl-test now, to its end. */
static void fail_over_now(fixture *fx, fo_failover *done)
{
    dm_workload w;
    get_workload(fx, &w);
    fo_failover f;
    OK(fo_orch_failover_instance(fx->orch, w.serving_instance_id, "failed", &f, g_err,
                                 sizeof g_err));
    wait_state(fx, f.id, FO_NULL, done);
    assert_int_equal(done->state, FO_STATE_COMPLETED);
}

/* BUD-B1 to BUD-B3 at a time scale of 120 (the 30-minute window is 15 s, the
 * backoffs 0.5 s then 1 s): three failovers at once; past the budget the workload
 * is flapping with the reason and each failover still runs, but no sooner than
 * its backoff after the previous one began, doubling; once the window holds
 * fewer than the budget, flapping is cleared and the next acts at once. */
static void test_budget_backoff(void **state)
{
    fixture *fx = *state;
    seed_fleet(fx, "", 0);
    g_budget_scale = 120;
    start_orch(fx, 1);
    fo_failover d[6];
    dm_workload w;
    for (int i = 0; i < 3; i++) {
        fail_over_now(fx, &d[i]);
        get_workload(fx, &w);
        assert_string_equal(w.flapping_reason, ""); /* within the budget */
        assert_int_equal(w.failover_hold_until_ms, FO_NULL);
    }
    fail_over_now(fx, &d[3]);
    get_workload(fx, &w);
    assert_non_null(strstr(w.flapping_reason, "3 automatic failovers in the last 30m (budget 3)"));
    assert_non_null(strstr(w.flapping_reason, "at least 500ms after"));
    assert_true(w.flapping_since_ms > 0);
    int64_t since = w.flapping_since_ms;
    /* never faster than the backoff: its fence came 0.5 s after the previous start */
    assert_true(d[3].phases[FO_PHASE_STANDBY_ACTIVATION].started_at_ms - d[2].started_at_ms >=
                500);
    assert_non_null(strstr(d[3].phases[FO_PHASE_DETECTION].detail, "held"));
    assert_true(d[3].phases[FO_PHASE_DETECTION].duration_ms >= 300); /* the hold is counted */
    fail_over_now(fx, &d[4]);
    get_workload(fx, &w);
    assert_non_null(strstr(w.flapping_reason, "4 automatic failovers"));
    assert_non_null(strstr(w.flapping_reason, "at least 1s after")); /* doubled */
    assert_int_equal(w.flapping_since_ms, since);                    /* the same spell */
    assert_true(d[4].phases[FO_PHASE_STANDBY_ACTIVATION].started_at_ms - d[3].started_at_ms >=
                1000);
    /* a window of 6 s (50 ms scaled) holds none of them: no longer flapping */
    pthread_mutex_lock(&fx->db->lock);
    OK(db_x(fx->db, "UPDATE workloads SET failover_window_ms = 6000", NULL, 0, NULL, NULL, NULL,
            g_err, sizeof g_err));
    pthread_mutex_unlock(&fx->db->lock);
    clock_sleep_ms(60, NULL);
    fail_over_now(fx, &d[5]);
    get_workload(fx, &w);
    assert_string_equal(w.flapping_reason, "");
    assert_int_equal(w.flapping_since_ms, FO_NULL);
    assert_null(strstr(d[5].phases[FO_PHASE_DETECTION].detail, "held"));
    assert_int_equal(fo_budget_backoff_ms(0, 1), 60000); /* BUD-B2's schedule */
    assert_int_equal(fo_budget_backoff_ms(4, 1), 16 * 60000);
    assert_int_equal(fo_budget_backoff_ms(5, 1), 30 * 60000);
    assert_int_equal(fo_budget_backoff_ms(40, 1), 30 * 60000);
}

/* ---- each phase's success ---------------------------------------------- */

static void test_completes(void **state)
{
    fixture *fx = *state;
    seed_fleet(fx, "", 0);
    start_orch(fx, 1);
    fo_failover f, done;
    start_failover(fx, &f);
    assert_int_equal(strncmp(f.id, "fo-", 3), 0);
    dm_workload w;
    get_workload(fx, &w);
    assert_true(w.state == DM_WL_FAILING_OVER || w.state == DM_WL_RUNNING);
    wait_state(fx, f.id, FO_NULL, &done);
    assert_moved(fx, &done);
    assert_int_equal(done.real.attempts, 1);
    assert_int_equal(g_fk.made, 1);
    assert_int_equal(g_fk.destroyed[0], OLD_ID); /* ORCH-O7: fenced first */
    assert_int_equal(g_fk.n_port_fenced, 1);      /* and the listener told (HB-L13) */
    assert_int_equal(g_fk.port_fenced[0], OLD_ID);
    assert_int_equal(g_fk.restores, 1);
    assert_int_equal(done.real.restore_download_time_ms, 3);
    assert_int_equal(done.real.restore_decompress_time_ms, 4);
    assert_non_null(strstr(done.phases[FO_PHASE_GPU_SEARCH].detail, "4 compatible offers"));
    assert_non_null(strstr(done.real.excluded_hosts, "old-host"));
    dm_machine m;
    OK(db_machine_get(fx->db, done.real.new_instance_id, &m, g_err, sizeof g_err));
    assert_string_equal(m.host, "host-a");
    assert_string_equal(m.failover_id, f.id);
    assert_int_equal(m.epoch, 1);
    /* the old instance serves nothing any more */
    assert_int_equal(fo_orch_failover_instance(fx->orch, OLD_ID, "manual", &f, g_err, sizeof g_err),
                     DM_E_NOT_FOUND);
}

/* ORCH-O5: the detector's event starts it; detection is how long it was silent. */
static void test_detector_event_starts_it(void **state)
{
    fixture *fx = *state;
    seed_fleet(fx, "ollama:tiny", 0);
    start_orch(fx, 1);
    assert_non_null(g_fk.sub_fn);
    hbl_event ev = {.instance_id = OLD_ID,
                    .what = "state",
                    .from = "suspect",
                    .to = "failed",
                    .reason = "silent",
                    .silent_ms = 1500};
    g_fk.sub_fn(&ev, g_fk.sub_ctx);
    fo_failover *list = NULL;
    size_t n = 0;
    db_failover_filter flt;
    db_failover_filter_init(&flt);
    OK(db_failover_list(fx->db, &flt, &list, &n, g_err, sizeof g_err));
    assert_int_equal(n, 1);
    fo_failover done;
    wait_state(fx, list[0].id, FO_NULL, &done);
    free(list);
    assert_moved(fx, &done);
    assert_int_equal(done.phases[FO_PHASE_DETECTION].duration_ms, 1500);
    assert_string_equal(done.real.trigger, "failed");
    assert_true(g_fk.probes >= 1); /* an ollama: probe is the controller's (the probe port) */
    assert_string_equal(done.real.inference_model, "tiny");
    /* an unprotected or unknown instance starts nothing */
    ev.instance_id = 999;
    g_fk.sub_fn(&ev, g_fk.sub_ctx);
    OK(db_failover_list(fx->db, &flt, &list, &n, g_err, sizeof g_err));
    free(list);
    assert_int_equal(n, 1);
}

/* ---- each phase's failure ---------------------------------------------- */

static void assert_failed_at(fixture *fx, const fo_failover *done, fo_phase p, const char *why)
{
    assert_int_equal(done->state, FO_STATE_FAILED);
    assert_int_equal(done->success, 0);
    assert_int_equal(done->phases[p].status, FO_PHASE_FAILED);
    if (!strstr(done->reason, why))
        fail_msg("reason '%s' lacks '%s'", done->reason, why);
    for (int i = p + 1; i < FO_PHASE_COUNT; i++)
        assert_int_equal(done->phases[i].duration_ms, FO_NULL);
    dm_workload w;
    get_workload(fx, &w);
    assert_string_equal(dm_wl_state_name(w.state), "failed");
    assert_int_equal(alive_count(&g_fk), 0); /* nothing of it left running */
}

static void test_fence_fails(void **state)
{
    fixture *fx = *state;
    seed_fleet(fx, "", 0);
    g_fk.fail_destroy_id = OLD_ID;
    start_orch(fx, 1);
    fo_failover f, done;
    start_failover(fx, &f);
    wait_state(fx, f.id, FO_NULL, &done);
    assert_failed_at(fx, &done, FO_PHASE_STANDBY_ACTIVATION, "could not fence");
    assert_int_equal(g_fk.provisions, 0); /* ORCH-O7: no new instance before the fence */
    assert_int_equal(g_fk.searches, 0);
    assert_machine_state(fx, OLD_ID, "running");
}

/* ORCH-R7: the old instance is not this provider's (another controller made it,
 * or another home): nothing confirms it gone, so the failover fails with the
 * reason, nothing is searched or provisioned, the old machine stays running
 * (not fenced), and its lease does not change that. */
static void test_fence_unknown_instance(void **state)
{
    fixture *fx = *state;
    seed_fleet(fx, "", 0);
    g_fk.n_inst = 0; /* the provider never made OLD_ID */
    g_fk.lease_expired_id = OLD_ID;
    start_orch(fx, 1);
    fo_failover f, done;
    start_failover(fx, &f);
    wait_state(fx, f.id, FO_NULL, &done);
    assert_failed_at(fx, &done, FO_PHASE_STANDBY_ACTIVATION, "could not fence instance 100");
    assert_non_null(strstr(done.reason, "never made"));
    assert_non_null(strstr(done.reason, "no replacement is promoted"));
    assert_int_equal(g_fk.searches, 0);
    assert_int_equal(g_fk.provisions, 0);
    assert_machine_state(fx, OLD_ID, "running");
    assert_int_equal(g_fk.n_port_fenced, 0); /* the listener still takes its beats */
    dm_workload w;
    get_workload(fx, &w);
    assert_int_equal(w.serving_instance_id, OLD_ID); /* nobody else serves it */
}

/* ORCH-R7: a host that vanished (the provider made the instance but cannot
 * confirm it gone) is fenced once the instance's lease has run out plus the
 * margin: the failover goes on and says how it was fenced. */
static void test_fence_by_lease(void **state)
{
    fixture *fx = *state;
    seed_fleet(fx, "", 0);
    g_fk.fail_destroy_id = OLD_ID;
    g_fk.lease_expired_id = OLD_ID;
    start_orch(fx, 1);
    fo_failover f, done;
    start_failover(fx, &f);
    wait_state(fx, f.id, FO_NULL, &done);
    assert_int_equal(done.state, FO_STATE_COMPLETED);
    assert_non_null(strstr(done.phases[FO_PHASE_STANDBY_ACTIVATION].detail, "by its lease"));
    assert_machine_state(fx, OLD_ID, "destroyed");
    assert_int_equal(g_fk.n_port_fenced, 1);
    assert_int_equal(was_revoked(OLD_ID), 1); /* PROV-PD3: no API access left to the fenced host */
}

static void test_no_offer(void **state)
{
    fixture *fx = *state;
    seed_fleet(fx, "", 0);
    g_fk.n_offers = 0;
    start_orch(fx, 1);
    fo_failover f, done;
    start_failover(fx, &f);
    wait_state(fx, f.id, FO_NULL, &done);
    assert_failed_at(fx, &done, FO_PHASE_GPU_SEARCH, "no compatible offer");
    assert_non_null(strstr(done.reason, "old-host"));
    assert_int_equal(g_fk.provisions, 0);
}

/* ORCH-O8: provisioning, ssh_ready, restore and inference each fail on the first
 * offer: its instance goes, its host is excluded, the next offer serves. */
static void run_retry(fixture *fx, const char *probe)
{
    seed_fleet(fx, probe, 0);
    start_orch(fx, 1);
    fo_failover f, done;
    start_failover(fx, &f);
    wait_state(fx, f.id, FO_NULL, &done);
    assert_moved(fx, &done);
    assert_int_equal(done.real.attempts, 2);
    assert_non_null(strstr(done.real.excluded_hosts, "host-a"));
    dm_machine m;
    OK(db_machine_get(fx->db, done.real.new_instance_id, &m, g_err, sizeof g_err));
    assert_string_equal(m.host, "host-b");
    /* the first attempt's machine is destroyed and marked so */
    dm_machine *all = NULL;
    size_t n = 0;
    OK(db_machine_list(fx->db, "wl-test", &all, &n, g_err, sizeof g_err));
    int destroyed_a = 0;
    for (size_t i = 0; i < n; i++)
        destroyed_a += strcmp(all[i].host, "host-a") == 0 && all[i].state == DM_MACH_DESTROYED;
    free(all);
    assert_int_equal(destroyed_a, 1);
    assert_non_null(strstr(done.phases[FO_PHASE_GPU_SEARCH].detail, "retry: "));
    /* FO-I5: each attempt keeps its runs; the first one ended failed */
    int failed1 = 0, ok2 = 0;
    for (int i = 0; i < done.n_runs; i++) {
        failed1 += done.runs[i].attempt == 1 && done.runs[i].status == FO_PHASE_FAILED;
        ok2 += done.runs[i].attempt == 2 && done.runs[i].phase == FO_PHASE_GPU_SEARCH &&
               done.runs[i].status == FO_PHASE_OK;
    }
    assert_int_equal(failed1, 1);
    assert_int_equal(ok2, 1);
    assert_int_equal(done.attempt, 2);
}

static void test_retry_provisioning(void **state)
{
    fixture *fx = *state;
    snprintf(g_fk.fail_provision_host, sizeof g_fk.fail_provision_host, "host-a");
    run_retry(fx, "");
    assert_int_equal(g_fk.made, 1);
    assert_int_equal(g_fk.provisions, 2);
}

static void test_retry_ssh_ready(void **state)
{
    fixture *fx = *state;
    snprintf(g_fk.unhealthy_host, sizeof g_fk.unhealthy_host, "host-a");
    run_retry(fx, "");
    assert_int_equal(g_fk.made, 2);
    assert_int_equal(g_fk.restores, 1);
}

static void test_retry_restore(void **state)
{
    fixture *fx = *state;
    g_fk.fail_restores = 1;
    run_retry(fx, "");
    assert_int_equal(g_fk.made, 2);
    assert_int_equal(g_fk.restores, 2);
}

/* ORCH-W1: a workload that never answers its probe on a healthy new instance
 * is its own failure: the failover ends at inference, no other offer is
 * rented, and the workload is failed with the reason. */
static void test_inference_never_healthy(void **state)
{
    fixture *fx = *state;
    snprintf(g_fk.silent_host, sizeof g_fk.silent_host, "host-a");
    seed_fleet(fx, "exec:true", 0); /* the agent's probe, from its heartbeats */
    start_orch(fx, 1);
    fo_failover f, done;
    start_failover(fx, &f);
    wait_state(fx, f.id, FO_NULL, &done);
    assert_failed_at(fx, &done, FO_PHASE_INFERENCE, "never became healthy");
    assert_non_null(strstr(done.reason, "no other GPU is tried"));
    assert_int_equal(done.real.attempts, 1);
    assert_int_equal(g_fk.made, 1);
    assert_int_equal(g_fk.starts, 1);
    dm_workload w;
    OK(db_workload_get(fx->db, "wl-test", &w, g_err, sizeof g_err));
    assert_string_equal(dm_wl_state_name(w.state), "failed");
    assert_non_null(strstr(w.failure, "never became healthy"));
}

/* Starts the orchestrator and a failover of OLD_ID, and waits for its end. */
static void run_to_end(fixture *fx, fo_failover *done)
{
    fo_failover f;
    start_orch(fx, 1);
    start_failover(fx, &f);
    wait_state(fx, f.id, FO_NULL, done);
}

/* ORCH-R5: a stop that cut off the writes after a failover's end (its workload
 * still failing_over) is made good by the next start: a failed one's workload
 * is failed and its new instance dropped, a completed one's workload runs. */
static void test_settle_after_end(void **state)
{
    fixture *fx = *state;
    seed_fleet(fx, "", 0);
    fo_failover done;
    run_to_end(fx, &done);
    assert_int_equal(done.state, FO_STATE_COMPLETED);
    stop_orch(fx);
    OK(db_workload_set_state(fx->db, "wl-test", DM_WL_FAILING_OVER, g_err, sizeof g_err));
    start_orch(fx, 1);
    OK(fo_orch_recover(fx->orch, NULL, g_err, sizeof g_err));
    dm_workload w;
    get_workload(fx, &w);
    assert_string_equal(dm_wl_state_name(w.state), "running");
    assert_int_equal(w.serving_instance_id, done.real.new_instance_id);
    /* a failed one whose new instance was still named when the server stopped */
    stop_orch(fx);
    done.state = FO_STATE_FAILED;
    done.success = 0;
    snprintf(done.reason, sizeof done.reason, "inference failed: test");
    OK(db_failover_save(fx->db, &done, g_err, sizeof g_err));
    OK(db_workload_switch(fx->db, "wl-test", done.real.new_instance_id, w.epoch, OLD_ID, w.epoch,
                          g_err, sizeof g_err));
    OK(db_workload_set_state(fx->db, "wl-test", DM_WL_FAILING_OVER, g_err, sizeof g_err));
    start_orch(fx, 1);
    OK(fo_orch_recover(fx->orch, NULL, g_err, sizeof g_err));
    get_workload(fx, &w);
    assert_string_equal(dm_wl_state_name(w.state), "failed");
    assert_machine_state(fx, done.real.new_instance_id, "destroyed");
}

/* ORCH-W3: the workload crash-loops on the new instance and the agent's report
 * said it is the workload's own failure: the failover ends at inference with
 * that reason, no other offer is rented. */
static void test_inference_crashloop_workload(void **state)
{
    fixture *fx = *state;
    snprintf(g_fk.crashloop_host, sizeof g_fk.crashloop_host, "host-a");
    g_fk.crash_report = "the workload never became healthy on instance 20001: it crash-looped "
                        "(exit code 127, restarted in place 3 times)\nlast output:\nnot found";
    g_fk.db = fx->db;
    seed_fleet(fx, "exec:true", 0);
    start_orch(fx, 1);
    fo_failover f, done;
    start_failover(fx, &f);
    wait_state(fx, f.id, FO_NULL, &done);
    assert_failed_at(fx, &done, FO_PHASE_INFERENCE, "never became healthy on instance 20001");
    assert_non_null(strstr(done.reason, "no other GPU is tried"));
    assert_int_equal(done.real.attempts, 1);
    assert_int_equal(g_fk.made, 1);
    dm_workload w;
    OK(db_workload_get(fx->db, "wl-test", &w, g_err, sizeof g_err));
    assert_non_null(strstr(w.failure, "last output:\nnot found")); /* the agent's, kept */
}

/* ORCH-W3: a crash loop on the new instance with no workload failure recorded
 * (the agent found its host at fault): the next offer serves. */
static void test_inference_crashloop_host(void **state)
{
    fixture *fx = *state;
    snprintf(g_fk.crashloop_host, sizeof g_fk.crashloop_host, "host-a");
    run_retry(fx, "exec:true");
    assert_int_equal(g_fk.made, 2);
}

/* ORCH-O8: at most FO_ORCH_MAX_ATTEMPTS offers, then the failover fails. */
static void test_all_attempts_fail(void **state)
{
    fixture *fx = *state;
    seed_fleet(fx, "", 0);
    g_fk.fail_restores = 100; /* every attempt fails at restore */
    fo_failover done;
    run_to_end(fx, &done);
    assert_failed_at(fx, &done, FO_PHASE_RESTORE, "after 3 offers");
    assert_int_equal(done.real.attempts, FO_ORCH_MAX_ATTEMPTS);
    assert_int_equal(g_fk.made, FO_ORCH_MAX_ATTEMPTS);
    assert_int_equal(done.real.new_instance_id, FO_NULL);
}

static void test_no_snapshot(void **state)
{
    fixture *fx = *state;
    seed_fleet(fx, "", 1);
    fo_failover done;
    run_to_end(fx, &done);
    assert_failed_at(fx, &done, FO_PHASE_RESTORE, "no restorable snapshot");
    assert_int_equal(g_fk.made, 1); /* provisioned, then dropped */
    assert_int_equal(g_fk.restores, 0);
}

/* ORCH-P1: without ports nothing is ever healthy; the waits end at their
 * timeouts and the failover fails, nothing dereferenced. */
static void test_no_ports(void **state)
{
    fixture *fx = *state;
    seed_fleet(fx, "", 0);
    start_orch(fx, 0);
    fo_failover f, done;
    start_failover(fx, &f);
    wait_state(fx, f.id, FO_NULL, &done);
    assert_failed_at(fx, &done, FO_PHASE_SSH_READY, "did not become healthy");
}

/* ORCH-P1: a port without a probe function: an ollama: workload never answers. */
static void test_no_probe_port(void **state)
{
    fixture *fx = *state;
    seed_fleet(fx, "ollama:tiny", 0);
    fx->ports.probe = NULL;
    start_orch(fx, 1);
    fo_failover f, done;
    start_failover(fx, &f);
    wait_state(fx, f.id, FO_NULL, &done);
    assert_failed_at(fx, &done, FO_PHASE_INFERENCE, "did not answer its probe");
    assert_int_equal(g_fk.probes, 0);
}

/* ---- resume after a crash at each phase (ORCH-O6, ORCH-R2) ------------------------ */

/* Runs a failover until it is in phase p (ORCH-R3 holds it there), stops the
 * orchestrator (ORCH-R2: the record stays active), and returns the record. */
static void stop_in_phase(fixture *fx, fo_phase p, fo_failover *ret)
{
    char pause[64];
    snprintf(pause, sizeof pause, "%s:60000", fo_phase_name(p));
    setenv("DUMONT_TEST_PAUSE_PHASE", pause, 1); /* no runner thread yet */
    start_orch(fx, 1);
    fo_failover f;
    start_failover(fx, &f);
    wait_state(fx, f.id, (fo_state)p, ret);
    int64_t t0 = clock_mono_ms();
    stop_orch(fx);
    assert_true(clock_mono_ms() - t0 < 2000);
    unsetenv("DUMONT_TEST_PAUSE_PHASE"); /* every runner has stopped */
    OK(db_failover_get(fx->db, f.id, ret, g_err, sizeof g_err));
    assert_int_equal(ret->state, (fo_state)p);
}

/* The next start resumes it and it completes with exactly one new instance. */
static void resume_completes(fixture *fx, const fo_failover *stopped)
{
    clock_sleep_ms(300, NULL); /* the controller is down a while */
    start_orch(fx, 1);
    int n = -1;
    OK(fo_orch_recover(fx->orch, &n, g_err, sizeof g_err));
    assert_int_equal(n, 0); /* resumed, none ended */
    fo_failover done;
    wait_state(fx, stopped->id, FO_NULL, &done);
    assert_moved(fx, &done);
    assert_int_equal(g_fk.made, 1);
    /* FO-I6: the downtime is recorded beside the phases, and counted */
    assert_true(done.controller_down_ms >= 300);
}

static void test_resume_each_phase(void **state)
{
    fixture *fx = *state;
    for (int p = 0; p < FO_PHASE_COUNT; p++) {
        /* a fresh fleet for each phase */
        teardown(state);
        setup(state);
        fx = *state;
        seed_fleet(fx, "", 0);
        fo_failover stopped;
        stop_in_phase(fx, (fo_phase)p, &stopped);
        resume_completes(fx, &stopped);
        /* from ssh_ready on, the instance made before the stop is the one */
        assert_int_equal(g_fk.provisions, 1);
    }
}

/* A crash between FLEET-F1 (the id reserved, the intent saved) and the provider's
 * answer: the resumed runner provisions that same id (PROV-PV2), no other. */
static void test_resume_reserved_id(void **state)
{
    fixture *fx = *state;
    seed_fleet(fx, "", 0);
    fo_failover f;
    stop_in_phase(fx, FO_PHASE_PROVISIONING, &f);
    dm_machine m;
    memset(&m, 0, sizeof m);
    snprintf(m.workload_id, sizeof m.workload_id, "wl-test");
    snprintf(m.provider, sizeof m.provider, "fake");
    snprintf(m.offer_id, sizeof m.offer_id, "offer-a");
    snprintf(m.host, sizeof m.host, "host-a");
    m.epoch = f.real.epoch;
    snprintf(m.failover_id, sizeof m.failover_id, "%s", f.id);
    OK(db_machine_reserve(fx->db, &m, g_err, sizeof g_err));
    f.real.new_instance_id = m.instance_id;
    f.real.attempts = 1;
    OK(db_failover_save(fx->db, &f, g_err, sizeof g_err));
    resume_completes(fx, &f);
    fo_failover done;
    OK(db_failover_get(fx->db, f.id, &done, g_err, sizeof g_err));
    assert_int_equal(done.real.new_instance_id, m.instance_id);
    assert_int_equal(done.real.attempts, 1);
}

/* ---- a failing save (ORCH-O12, ORCH-R4) ------------------------------------------- */

static int degraded(fixture *fx)
{
    return fo_orch_storage_degraded(fx->orch, NULL, 0, NULL);
}

static void wait_degraded(fixture *fx, int want)
{
    int64_t deadline = clock_mono_ms() + 10000;
    while (degraded(fx) != want) {
        if (clock_mono_ms() >= deadline)
            fail_msg("still %s after 10 s", want ? "healthy" : "degraded");
        clock_sleep_ms(2, NULL);
    }
}

/* The save of gpu_search's result fails: the phase pauses, nothing is
 * provisioned until the save lands, then it goes on and completes. */
static void test_save_fault_pauses_phase(void **state)
{
    fixture *fx = *state;
    seed_fleet(fx, "", 0);
    atomic_store(&g_fk.arm_on_search, 1);
    start_orch(fx, 1);
    fo_failover f, now;
    start_failover(fx, &f);
    wait_degraded(fx, 1);
    atomic_store(&g_fk.arm_on_search, 0);
    int64_t deadline = clock_mono_ms() + 10000;
    while (atomic_load(&g_failed) < 3) { /* it retries (100, 200 ms ...); nothing moves */
        if (clock_mono_ms() >= deadline)
            fail_msg("the save was not retried");
        clock_sleep_ms(2, NULL);
    }
    OK(db_failover_get(fx->db, f.id, &now, g_err, sizeof g_err));
    assert_int_equal(now.state, FO_PHASE_GPU_SEARCH); /* the record as last saved */
    pthread_mutex_lock(&g_fk.mu);
    assert_int_equal(g_fk.provisions, 0); /* no next action */
    assert_int_equal(g_fk.searches, 1);
    pthread_mutex_unlock(&g_fk.mu);
    atomic_store(&g_fail_on, 0);
    fo_failover done;
    wait_state(fx, f.id, FO_NULL, &done);
    assert_moved(fx, &done);
    assert_int_equal(g_fk.searches, 1); /* the search's result was kept, not redone */
    /* ORCH-O14: the pause (100 + 200 ms at least) is downtime, not a phase's time */
    assert_true(done.controller_down_ms >= 300);
    assert_true(done.phases[FO_PHASE_PROVISIONING].duration_ms < done.controller_down_ms);
    wait_degraded(fx, 0);
}

/* A shutdown while the save fails: the runner stops at once, the record
 * stays as last saved, and the next start resumes it to the end. */
static void test_shutdown_while_save_fails(void **state)
{
    fixture *fx = *state;
    seed_fleet(fx, "", 0);
    atomic_store(&g_fk.arm_on_search, 1);
    start_orch(fx, 1);
    fo_failover f, now;
    start_failover(fx, &f);
    wait_degraded(fx, 1);
    atomic_store(&g_fk.arm_on_search, 0);
    int64_t t0 = clock_mono_ms();
    stop_orch(fx);
    assert_true(clock_mono_ms() - t0 < 2000);
    atomic_store(&g_fail_on, 0);
    OK(db_failover_get(fx->db, f.id, &now, g_err, sizeof g_err));
    assert_int_equal(now.state, FO_PHASE_GPU_SEARCH);
    assert_int_equal(g_fk.provisions, 0);
    resume_completes(fx, &now);
}

/* ORCH-R4: a save refused for a reason that is not a storage fault halts the
 * runner at once: no next action, the record as last saved; the next start
 * resumes it. */
static void test_save_refused_halts(void **state)
{
    fixture *fx = *state;
    seed_fleet(fx, "", 0);
    atomic_store(&g_fk.arm_on_search, 2);
    start_orch(fx, 1);
    fo_failover f, now;
    start_failover(fx, &f);
    int64_t deadline = clock_mono_ms() + 10000;
    while (atomic_load(&g_failed) == 0 || fo_orch_running(fx->orch) != 0) {
        if (clock_mono_ms() >= deadline)
            fail_msg("the runner did not stop");
        clock_sleep_ms(2, NULL);
    }
    assert_false(degraded(fx)); /* a refusal is not a storage fault: no retry */
    assert_int_equal(atomic_load(&g_failed), 1);
    OK(db_failover_get(fx->db, f.id, &now, g_err, sizeof g_err));
    assert_int_equal(now.state, FO_PHASE_GPU_SEARCH);
    assert_int_equal(g_fk.provisions, 0);
    atomic_store(&g_fk.arm_on_search, 0);
    atomic_store(&g_fail_on, 0);
    stop_orch(fx);
    resume_completes(fx, &now);
}

/* ---- test-real (ORCH-O9) and the provider built from a vtable ---------------- */

static void run_test_real(fixture *fx, int keep)
{
    seed_fleet(fx, "", 0);
    start_orch(fx, 1);
    fo_failover f, done;
    OK(fo_orch_test_real(fx->orch, OLD_ID, "m1", keep, "ops-token", &f, g_err, sizeof g_err));
    assert_int_equal(strncmp(f.id, "real-", 5), 0);
    wait_state(fx, f.id, FO_NULL, &done);
    assert_int_equal(done.state, FO_STATE_COMPLETED);
    assert_int_equal(done.phases[FO_PHASE_DETECTION].status, FO_PHASE_SKIPPED);
    assert_int_equal(done.phases[FO_PHASE_DETECTION].duration_ms, FO_NULL);
    assert_int_equal(done.phases[FO_PHASE_STANDBY_ACTIVATION].status, FO_PHASE_SKIPPED);
    assert_int_equal(g_fk.snapshots, 1);
    assert_string_not_equal(done.real.snapshot_id, SNAP_ID); /* its own, fresh */
    assert_string_equal(done.real.inference_model, "m1");    /* the model it was given */
    dm_workload w;
    get_workload(fx, &w);
    assert_int_equal(w.serving_instance_id, OLD_ID); /* never switched */
    assert_int_equal(w.epoch, 0);
    assert_string_equal(dm_wl_state_name(w.state), "running");
    assert_machine_state(fx, OLD_ID, "running");
    assert_machine_state(fx, done.real.new_instance_id, keep ? "running" : "destroyed");
    assert_int_equal(alive_count(&g_fk), keep ? 1 : 0);
}

static void test_test_real(void **state)
{
    run_test_real(*state, 0);
}

static void test_test_real_keep(void **state)
{
    run_test_real(*state, 1);
}

/* ORCH-RP1: test-real model=X asks the model server for X, not for the
 * workload's model; a server that lacks X fails the test, naming X. The
 * record names who asked (its credential, issue 16). */
static void test_test_real_model(void **state)
{
    fixture *fx = *state;
    seed_fleet(fx, "ollama:tiny", 0);
    snprintf(g_fk.served, sizeof g_fk.served, "tiny,m1");
    start_orch(fx, 1);
    fo_failover f, done;
    OK(fo_orch_test_real(fx->orch, OLD_ID, "m1", 0, "ops-token", &f, g_err, sizeof g_err));
    wait_state(fx, f.id, FO_NULL, &done);
    assert_int_equal(done.state, FO_STATE_COMPLETED);
    assert_string_equal(done.user_id, "ops-token");
    assert_string_equal(done.real.inference_model, "m1");
    assert_non_null(strstr(g_fk.probed, "ollama:m1@")); /* the model named was asked */
    OK(fo_orch_test_real(fx->orch, OLD_ID, "absent", 0, NULL, &f, g_err, sizeof g_err));
    wait_state(fx, f.id, FO_NULL, &done);
    assert_int_equal(done.state, FO_STATE_FAILED);
    assert_string_equal(done.user_id, "automatic");
    assert_non_null(strstr(g_fk.probed, "ollama:absent@"));
    assert_non_null(strstr(done.reason, "model 'absent'"));
    assert_int_equal(done.real.inference_success, 0);
}

static void test_provider_from_ops_checks(void **state)
{
    (void)state;
    provider_ops bad = fk_ops;
    bad.restore = NULL;
    dm_provider *p = NULL;
    assert_int_equal(provider_from_ops(&bad, &g_fk, &p, g_err, sizeof g_err), DM_E_INVALID);
    assert_null(p);
    /* PROV-PD1 holds for it: a bad id never reaches the functions */
    OK(provider_from_ops(&fk_ops, &g_fk, &p, g_err, sizeof g_err));
    assert_string_equal(provider_name(p), "fake");
    assert_int_equal(provider_destroy(p, 0, g_err, sizeof g_err), DM_E_INVALID);
    assert_int_equal(g_fk.destroys, 0);
    provider_close(p);
}

/* ---- the fleet operations (real_fleet.c) -------------------------------- */

static void launch_req(fo_launch_req *req)
{
    memset(req, 0, sizeof *req);
    req->name = "web";
    req->workload_cmd = "sleep 1000";
    req->snapshot_every_ms = -1;
    req->protect = 1;
    req->min_vram_gb = 16;
}

/* A launch: the cheapest offer, healthy, a first snapshot, then serving. */
static void test_launch(void **state)
{
    fixture *fx = *state;
    start_orch(fx, 1);
    fo_launch_req req;
    launch_req(&req);
    fo_launch_result res;
    OK(fo_orch_launch(fx->orch, &req, &res, g_err, sizeof g_err));
    dm_workload w;
    OK(db_workload_get(fx->db, res.workload_id, &w, g_err, sizeof g_err));
    assert_string_equal(dm_wl_state_name(w.state), "running");
    assert_int_equal(w.serving_instance_id, res.instance_id);
    assert_int_equal(w.epoch, 0);
    assert_string_equal(w.name, "web");
    assert_machine_state(fx, res.instance_id, "running");
    dm_snapshot s;
    OK(db_snapshot_latest_workload(fx->db, res.workload_id, &s, g_err, sizeof g_err));
    assert_string_equal(s.trigger, "launch");
    assert_int_equal(s.instance_id, res.instance_id);
    assert_int_equal(g_fk.made, 1);
    assert_int_equal(g_fk.starts, 1);
    assert_non_null(strstr(res.address, "127.0.0.1:"));
}

/* ORCH-FL1: a launch whose provision fails leaves its workload failed and
 * nothing running. */
static void test_launch_fails(void **state)
{
    fixture *fx = *state;
    snprintf(g_fk.fail_provision_host, sizeof g_fk.fail_provision_host, "host-a");
    start_orch(fx, 1);
    fo_launch_req req;
    launch_req(&req);
    fo_launch_result res;
    assert_int_equal(fo_orch_launch(fx->orch, &req, &res, g_err, sizeof g_err), DM_E_UNAVAILABLE);
    assert_non_null(strstr(g_err, "no capacity"));
    dm_workload *w = NULL;
    size_t n = 0;
    OK(db_workload_list(fx->db, &w, &n, g_err, sizeof g_err));
    assert_int_equal(n, 1);
    assert_string_equal(dm_wl_state_name(w[0].state), "failed");
    dm_machine *m = NULL;
    size_t nm = 0;
    OK(db_machine_list(fx->db, w[0].workload_id, &m, &nm, g_err, sizeof g_err));
    assert_int_equal(nm, 1);
    assert_string_equal(dm_mach_state_name(m[0].state), "destroyed");
    free(m);
    free(w);
    assert_int_equal(alive_count(&g_fk), 0);
    /* no offer at all: failed, and nothing is destroyed (nothing was made) */
    int destroys = g_fk.destroys;
    g_fk.n_offers = 0;
    assert_int_equal(fo_orch_launch(fx->orch, &req, &res, g_err, sizeof g_err), DM_E_NOT_FOUND);
    assert_int_equal(g_fk.destroys, destroys);
    OK(db_workload_list(fx->db, &w, &n, g_err, sizeof g_err));
    assert_int_equal(n, 2);
    for (size_t i = 0; i < n; i++)
        assert_string_equal(dm_wl_state_name(w[i].state), "failed");
    free(w);
    /* a bad request is refused before anything is written */
    req.workload_cmd = "";
    assert_int_equal(fo_orch_launch(fx->orch, &req, &res, g_err, sizeof g_err), DM_E_INVALID);
}

/* ORCH-O13, ORCH-FL2: a launch a killed server left is rolled back at the next start;
 * one of this process is not. */
static void test_recover_launches(void **state)
{
    fixture *fx = *state;
    seed_fleet(fx, "", 0);
    char err[256];
    OK(db_workload_set_state(fx->db, "wl-test", DM_WL_LAUNCHING, err, sizeof err));
    start_orch(fx, 1);
    dm_workload mine;
    memset(&mine, 0, sizeof mine);
    snprintf(mine.workload_id, sizeof mine.workload_id, "wl-mine");
    snprintf(mine.name, sizeof mine.name, "mine");
    snprintf(mine.requirements, sizeof mine.requirements, "{}");
    mine.serving_instance_id = FO_NULL;
    mine.state = DM_WL_LAUNCHING;
    mine.created_at_ms = clock_wall_ms() + 1000; /* after the attach */
    OK(db_workload_insert(fx->db, &mine, err, sizeof err));
    int n = -1;
    OK(fo_orch_recover(fx->orch, &n, err, sizeof err));
    dm_workload w;
    get_workload(fx, &w);
    assert_string_equal(dm_wl_state_name(w.state), "failed");
    assert_int_equal(w.serving_instance_id, FO_NULL);
    assert_machine_state(fx, OLD_ID, "destroyed");
    assert_int_equal(g_fk.destroyed[0], OLD_ID); /* through the provider's fence */
    OK(db_workload_get(fx->db, "wl-mine", &w, err, sizeof err));
    assert_string_equal(dm_wl_state_name(w.state), "launching");
}

static void test_chaos_and_destroy(void **state)
{
    fixture *fx = *state;
    seed_fleet(fx, "", 0);
    start_orch(fx, 1);
    OK(fo_orch_chaos_preempt(fx->orch, OLD_ID, 0, g_err, sizeof g_err));
    assert_int_equal(g_fk.preempts, 1);
    assert_int_equal(fo_orch_chaos_preempt(fx->orch, 999, 0, g_err, sizeof g_err), DM_E_NOT_FOUND);
    /* destroying the serving instance stops the workload's protection first */
    OK(fo_orch_destroy_instance(fx->orch, OLD_ID, g_err, sizeof g_err));
    dm_workload w;
    get_workload(fx, &w);
    assert_string_equal(dm_wl_state_name(w.state), "stopped");
    assert_int_equal(w.serving_instance_id, FO_NULL);
    assert_int_equal(w.epoch, 1);
    assert_machine_state(fx, OLD_ID, "destroyed");
    assert_int_equal(fo_orch_chaos_preempt(fx->orch, OLD_ID, 0, g_err, sizeof g_err),
                     DM_E_CONFLICT);
    assert_int_equal(g_fk.preempts, 1);
}

/* Before an attach real failovers are unavailable; one attach only. */
static void test_unattached(void **state)
{
    fixture *fx = *state;
    OK(fo_orch_new(fx->db, 1000.0, &fx->orch));
    fo_failover f;
    assert_int_equal(fo_orch_failover_instance(fx->orch, OLD_ID, "manual", &f, g_err, sizeof g_err),
                     DM_E_UNAVAILABLE);
    assert_non_null(strstr(g_err, "no provider"));
    fo_orch_free(fx->orch);
    /* one attach; a second is refused and changes nothing */
    start_orch(fx, 1);
    fo_real_env env = {.provider = fx->prov,
                       .store_url = fx->store,
                       .server_url = "http://127.0.0.1:2",
                       .token = "other"};
    assert_int_equal(fo_orch_attach(fx->orch, &env, g_err, sizeof g_err), DM_E_CONFLICT);
    env.store_url = "file:///elsewhere";
    assert_int_equal(fo_orch_attach(fx->orch, &env, g_err, sizeof g_err), DM_E_INVALID);
}

int main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(test_completes),
        T(test_detector_event_starts_it),
        T(test_two_controllers_race),
        T(test_budget_backoff),
        T(test_fence_fails),
        T(test_fence_unknown_instance),
        T(test_fence_by_lease),
        T(test_no_offer),
        T(test_retry_provisioning),
        T(test_retry_ssh_ready),
        T(test_retry_restore),
        T(test_inference_never_healthy),
        T(test_inference_crashloop_workload),
        T(test_inference_crashloop_host),
        T(test_all_attempts_fail),
        T(test_no_snapshot),
        T(test_no_ports),
        T(test_no_probe_port),
        T(test_test_real_model),
        T(test_settle_after_end),
        T(test_resume_each_phase),
        T(test_resume_reserved_id),
        T(test_save_fault_pauses_phase),
        T(test_shutdown_while_save_fails),
        T(test_save_refused_halts),
        T(test_test_real),
        T(test_test_real_keep),
        T(test_provider_from_ops_checks),
        T(test_unattached),
        T(test_launch),
        T(test_launch_fails),
        T(test_recover_launches),
        T(test_chaos_and_destroy),
    };
#undef T
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/* Dumont's metrics (see metrics.h for API-AM1 to API-AM3; docs/metrics.md).
 *
 * The registry (metrics/metrics.h) holds the counters and histograms; this
 * file declares Dumont's families, feeds them from the failover observer,
 * the listener's events and snapshot reports, and pulls the gauges that
 * other subsystems already keep in memory. */
#include "api/metrics.h"

#include "detect/listener.h"
#include "db/db_fleet.h"
#include "metrics/metrics.h"
#include "metrics/process.h"
#include "store/store.h"
#include "util/clock.h"
#include "util/error.h"
#include "util/log.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define RECENT_MAX    256  /* API-AM2: terminal failovers remembered against a second count */
#define WORKLOADS_MAX 4096 /* snapshot ages kept; MX_SERIES_MAX bounds the rest */
#define REBUILD_PAGE  1000

struct api_metrics {
    mx_registry *r;
    fo_orch *orch;
    struct hbl_server *hb;
    pthread_mutex_t mu; /* recent, ages */
    char recent[RECENT_MAX][FO_ID_MAX];
    int recent_next;
    struct {
        char workload_id[FLEET_WL_ID_MAX];
        int64_t newest_ms;
    } ages[WORKLOADS_MAX];
    int n_ages;
    dm_db *db;                 /* API-AM4: read by the rebuild thread only */
    int64_t started_wall_ms;   /* API-AM4: failovers started from then on are the observer's */
    char (*active)[FO_ID_MAX]; /* API-AM4: running at start: the observer's too */
    size_t n_active;
    pthread_t rebuild;
    int rebuild_started;
    atomic_bool stop; /* ends the rebuild early (server stopping) */
};

static const char *const L_FAILOVER[] = {"kind", "trigger", "result", NULL};
static const char *const L_KIND[] = {"kind", NULL};
static const char *const L_PHASE[] = {"kind", "phase", NULL};
static const char *const L_STATE[] = {"state", NULL};
static const char *const L_REASON[] = {"reason", NULL};
static const char *const L_RESULT[] = {"result", NULL};
static const char *const L_WORKLOAD[] = {"workload", NULL};
static const char *const L_VERSION[] = {"version", NULL};
static const char *const L_STORE[] = {"store", "op", "code", NULL};

static int declare_all(mx_registry *r)
{
    const double *b = mx_duration_buckets;
    int nb = mx_duration_buckets_n;
    const struct {
        const char *name;
        mx_type type;
        const char *help;
        const char *const *labels;
    } fams[] = {
        {"dumont_build_info", MX_GAUGE, "The running build (always 1).", L_VERSION},
        {"dumont_failovers_total", MX_COUNTER, "Failovers that ended, by kind, trigger and result.",
         L_FAILOVER},
        {"dumont_failovers_running", MX_GAUGE, "Failovers this controller is running now.", NULL},
        {"dumont_failover_duration_seconds", MX_HISTOGRAM,
         "Total time of ended failovers (MTTR), simulated or real.", L_KIND},
        {"dumont_failover_phase_duration_seconds", MX_HISTOGRAM,
         "Time spent in each phase of ended failovers.", L_PHASE},
        {"dumont_instances", MX_GAUGE, "Instances the failure detector knows, by state.", L_STATE},
        {"dumont_heartbeats_received_total", MX_COUNTER, "Heartbeat datagrams received.", NULL},
        {"dumont_heartbeats_accepted_total", MX_COUNTER,
         "Heartbeat datagrams that verified and were taken.", NULL},
        {"dumont_heartbeats_dropped_total", MX_COUNTER, "Heartbeat datagrams dropped, by reason.",
         L_REASON},
        {"dumont_heartbeats_kernel_dropped_total", MX_COUNTER,
         "Heartbeat datagrams the kernel dropped before the listener read them.", NULL},
        {"dumont_heartbeat_intake_lossy", MX_GAUGE,
         "1 while the listener's intake is lossy and convictions are held (at most 2 s).", NULL},
        {"dumont_detection_seconds", MX_HISTOGRAM,
         "Silence of an instance before the detector judged it failed.", NULL},
        {"dumont_snapshots_total", MX_COUNTER, "Snapshot reports, accepted or refused.", L_RESULT},
        {"dumont_snapshot_bytes_total", MX_COUNTER,
         "Plain bytes of the workspaces in accepted snapshots.", NULL},
        {"dumont_snapshot_age_seconds", MX_GAUGE,
         "Age of each workload's newest accepted snapshot (its restorable point).", L_WORKLOAD},
        {"dumont_store_requests_total", MX_COUNTER,
         "Requests this server made of its snapshot stores, by store kind, operation and code "
         "(an HTTP status, or ok/not_found/no_space/error).",
         L_STORE},
        {"dumont_store_retries_total", MX_COUNTER,
         "Store requests sent again after a transient failure (s3://).", NULL},
    };
    for (size_t i = 0; i < sizeof fams / sizeof fams[0]; i++) {
        int hist = fams[i].type == MX_HISTOGRAM;
        int rc = mx_declare(r, fams[i].name, fams[i].type, fams[i].help, fams[i].labels,
                            hist ? b : NULL, hist ? nb : 0);
        if (rc)
            return rc;
    }
    return mx_set(r, "dumont_build_info", (const char *[]){DUMONT_VERSION}, 1);
}

static const char *trigger_of(const fo_failover *f)
{
    if (f->kind == FO_KIND_SIMULATED)
        return "simulate";
    return f->real.trigger[0] ? f->real.trigger : "manual";
}

/* Counts one ended failover into the counters and histograms. */
static void count_ended(api_metrics *m, const fo_failover *f)
{
    const char *kind = fo_kind_name(f->kind);
    const char *result = f->state == FO_STATE_COMPLETED ? "completed" : "failed";
    mx_add(m->r, "dumont_failovers_total", (const char *[]){kind, trigger_of(f), result}, 1);
    if (f->total_time_ms >= 0)
        mx_observe(m->r, "dumont_failover_duration_seconds", (const char *[]){kind},
                   (double)f->total_time_ms / 1000.0);
    for (int p = 0; p < FO_PHASE_COUNT; p++) {
        const fo_phase_rec *ph = &f->phases[p];
        if (ph->duration_ms >= 0 && (ph->status == FO_PHASE_OK || ph->status == FO_PHASE_FAILED))
            mx_observe(m->r, "dumont_failover_phase_duration_seconds",
                       (const char *[]){kind, fo_phase_name((fo_phase)p)},
                       (double)ph->duration_ms / 1000.0);
    }
}

static int terminal(const fo_failover *f)
{
    return f->state == FO_STATE_COMPLETED || f->state == FO_STATE_FAILED;
}

void api_metrics_on_failover(api_metrics *m, const fo_failover *f)
{
    if (!m || !terminal(f))
        return;
    pthread_mutex_lock(&m->mu); /* API-AM2 */
    for (int i = 0; i < RECENT_MAX; i++)
        if (strcmp(m->recent[i], f->id) == 0) {
            pthread_mutex_unlock(&m->mu);
            return;
        }
    snprintf(m->recent[m->recent_next], FO_ID_MAX, "%s", f->id);
    m->recent_next = (m->recent_next + 1) % RECENT_MAX;
    pthread_mutex_unlock(&m->mu);
    count_ended(m, f);
}

static void note_snapshot(api_metrics *m, const char *workload_id, int64_t created_at_ms)
{
    if (!workload_id || !*workload_id || strlen(workload_id) >= FLEET_WL_ID_MAX)
        return;
    pthread_mutex_lock(&m->mu);
    int i = 0;
    while (i < m->n_ages && strcmp(m->ages[i].workload_id, workload_id) != 0)
        i++;
    if (i == m->n_ages && m->n_ages < WORKLOADS_MAX)
        snprintf(m->ages[m->n_ages++].workload_id, FLEET_WL_ID_MAX, "%s", workload_id);
    if (i < m->n_ages && created_at_ms > m->ages[i].newest_ms)
        m->ages[i].newest_ms = created_at_ms;
    pthread_mutex_unlock(&m->mu);
}

void api_metrics_on_snapshot(api_metrics *m, int accepted, const char *workload_id, int64_t bytes,
                             int64_t created_at_ms)
{
    if (!m)
        return;
    mx_add(m->r, "dumont_snapshots_total", (const char *[]){accepted ? "accepted" : "refused"}, 1);
    if (!accepted)
        return;
    if (bytes > 0)
        mx_add(m->r, "dumont_snapshot_bytes_total", NULL, (double)bytes);
    note_snapshot(m, workload_id, created_at_ms);
}

static void on_instance_event(const hbl_event *ev, void *ctx)
{
    api_metrics *m = ctx;
    if (strcmp(ev->what, "state") == 0 && strcmp(ev->to, "failed") == 0 && ev->silent_ms >= 0)
        mx_observe(m->r, "dumont_detection_seconds", NULL, (double)ev->silent_ms / 1000.0);
}

static void on_store_stat(const char *store, const char *op, const char *code, uint64_t n,
                          void *ctx)
{
    mx_set(ctx, "dumont_store_requests_total", (const char *[]){store, op, code}, (double)n);
}

/* API-AM1: gauges and mirrored counters, from memory only. */
static void collect(mx_registry *r, void *ctx)
{
    api_metrics *m = ctx;
    store_stats_each(on_store_stat, r); /* the store layer's own counters (MX-MX4) */
    mx_set(r, "dumont_store_retries_total", NULL, (double)store_stats_retries());
    if (m->orch)
        mx_set(r, "dumont_failovers_running", NULL, fo_orch_running(m->orch));
    if (m->hb) {
        hbl_stats st;
        hbl_stats_get(m->hb, &st);
        mx_set(r, "dumont_heartbeats_received_total", NULL, (double)st.received);
        mx_set(r, "dumont_heartbeats_accepted_total", NULL, (double)st.accepted);
        mx_set(r, "dumont_heartbeats_kernel_dropped_total", NULL, (double)st.kernel_drops);
        mx_set(r, "dumont_heartbeat_intake_lossy", NULL, st.intake_lossy ? 1 : 0);
        for (int i = 0; i < HB_REASON_COUNT; i++)
            mx_set(r, "dumont_heartbeats_dropped_total", (const char *[]){hb_reason_name(i)},
                   (double)st.dropped[i]);
        for (int s = 0; s < DET_STATE_COUNT; s++)
            mx_set(r, "dumont_instances", (const char *[]){det_state_name(s)}, st.by_state[s]);
    }
    int64_t now = clock_wall_ms();
    pthread_mutex_lock(&m->mu);
    for (int i = 0; i < m->n_ages; i++)
        if (m->ages[i].newest_ms > 0)
            mx_set(r, "dumont_snapshot_age_seconds", (const char *[]){m->ages[i].workload_id},
                   (double)(now - m->ages[i].newest_ms) / 1000.0);
    pthread_mutex_unlock(&m->mu);
}

static int was_active(const api_metrics *m, const char *id)
{
    for (size_t i = 0; i < m->n_active; i++)
        if (strcmp(m->active[i], id) == 0)
            return 1;
    return 0;
}

/* API-AM4: the failovers running at start; they end under the observer's eyes. */
static int note_active(api_metrics *m, dm_db *db, char *err, size_t errlen)
{
    db_failover_filter flt;
    db_failover_filter_init(&flt);
    flt.active_only = 1;
    flt.limit = DB_LIST_MAX;
    fo_failover *fs = NULL;
    size_t n = 0;
    int rc = db_failover_list(db, &flt, &fs, &n, err, errlen);
    if (rc == 0 && n && !(m->active = calloc(n, sizeof *m->active)))
        rc = -ENOMEM;
    for (size_t i = 0; rc == 0 && i < n; i++)
        snprintf(m->active[m->n_active++], FO_ID_MAX, "%s", fs[i].id);
    free(fs);
    return rc;
}

/* API-AM1, API-AM4: the failovers that ended before this process started, page by
 * page, once. */
static int rebuild_failovers(api_metrics *m, dm_db *db, char *err, size_t errlen)
{
    db_failover_filter flt;
    db_failover_filter_init(&flt);
    flt.limit = REBUILD_PAGE;
    flt.until_ms = m->started_wall_ms; /* started from then on: the observer's */
    while (!atomic_load_explicit(&m->stop, memory_order_relaxed)) {
        fo_failover *fs = NULL;
        size_t n = 0;
        int rc = db_failover_list(db, &flt, &fs, &n, err, errlen);
        if (rc)
            return rc;
        for (size_t i = 0; i < n; i++)
            if (terminal(&fs[i]) && !was_active(m, fs[i].id))
                count_ended(m, &fs[i]);
        free(fs);
        if (n < REBUILD_PAGE)
            return 0;
        flt.offset += REBUILD_PAGE;
    }
    return 0;
}

static int rebuild_snapshots(api_metrics *m, dm_db *db, char *err, size_t errlen)
{
    dm_workload *ws = NULL;
    size_t n = 0;
    int rc = db_workload_list(db, &ws, &n, err, errlen);
    for (size_t i = 0; rc == 0 && i < n; i++) {
        dm_snapshot s;
        int got = db_snapshot_latest_workload(db, ws[i].workload_id, &s, err, errlen);
        if (got == 0)
            note_snapshot(m, ws[i].workload_id, s.created_at_ms);
        else if (got != DM_E_NOT_FOUND)
            rc = got;
    }
    free(ws);
    return rc;
}

static void *rebuild_main(void *arg)
{
    api_metrics *m = arg;
    char err[512] = "";
    int64_t t0 = clock_mono_ms();
    int rc = rebuild_failovers(m, m->db, err, sizeof err);
    if (rc == 0)
        rc = rebuild_snapshots(m, m->db, err, sizeof err);
    if (rc)
        log_warn("metrics.rebuild_failed",
                 "error=\"%s\" detail=\"counters start from what this process "
                 "sees\"",
                 dm_strerror(rc));
    else
        log_info("metrics.rebuilt", "ms=%lld", (long long)(clock_mono_ms() - t0));
    return NULL;
}

int api_metrics_new(dm_db *db, fo_orch *orch, struct hbl_server *hb, api_metrics **ret, char *err,
                    size_t errlen)
{
    api_metrics *m = calloc(1, sizeof *m);
    if (!m)
        return -ENOMEM;
    pthread_mutex_init(&m->mu, NULL);
    m->orch = orch;
    m->hb = hb;
    int rc = mx_new(&m->r);
    if (rc == 0 && (rc = declare_all(m->r)) == 0 && (rc = mx_process_declare(m->r)) == 0)
        rc = mx_add_collector(m->r, collect, m);
    if (rc) {
        dm_fail(err, errlen, rc, "metrics: %s", dm_strerror(rc));
        goto fail;
    }
    if (hb && (rc = hbl_subscribe(hb, on_instance_event, m)) != 0) {
        dm_fail(err, errlen, rc, "metrics: cannot subscribe to the heartbeat listener");
        goto fail;
    }
    m->db = db;
    m->started_wall_ms = clock_wall_ms();
    if (db && (rc = note_active(m, db, err, errlen)) != 0)
        goto fail;
    if (db && pthread_create(&m->rebuild, NULL, rebuild_main, m) == 0) /* API-AM4 */
        m->rebuild_started = 1;
    else if (db) {
        rc = dm_fail(err, errlen, -EAGAIN, "metrics: cannot start the rebuild thread");
        goto fail;
    }
    *ret = m;
    return 0;
fail:
    api_metrics_free(m);
    return rc;
}

void api_metrics_free(api_metrics *m)
{
    if (!m)
        return;
    atomic_store_explicit(&m->stop, true, memory_order_relaxed);
    if (m->rebuild_started)
        pthread_join(m->rebuild, NULL);
    mx_free(m->r);
    free(m->active);
    pthread_mutex_destroy(&m->mu);
    free(m);
}

void api_metrics_wait_rebuilt(api_metrics *m)
{
    if (m && m->rebuild_started) {
        pthread_join(m->rebuild, NULL);
        m->rebuild_started = 0;
    }
}

int api_metrics_render(api_metrics *m, char **ret, size_t *ret_len)
{
    return mx_render(m->r, ret, ret_len);
}

int api_h_metrics(const api_ctx *ctx, const api_request *req, api_response *resp)
{
    (void)req;
    char *text = NULL;
    size_t len = 0;
    if (!ctx->metrics)
        return api_error(resp, 503, "unavailable", "this server keeps no metrics");
    int rc = api_metrics_render(ctx->metrics, &text, &len);
    if (rc)
        return api_error_from(resp, rc, "cannot render the metrics");
    return api_text(resp, 200, text, len, "text/plain; version=0.0.4; charset=utf-8");
}

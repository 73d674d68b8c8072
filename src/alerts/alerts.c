/* The alert service (see alerts.h for AL-AL1 to AL-AL5): the ring, the sender
 * thread, the replay at start and the snapshot check. Administration
 * (add, test, remove) is at the end. */
#include "alerts/alerts.h"

#include "alerts/alert_retry.h"
#include "alerts/alert_seal.h"
#include "db/db_fleet.h"
#include "util/clock.h"
#include "util/error.h"
#include "util/log.h"
#include "util/parse.h"
#include "util/secret.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define SEEN_MAX       512 /* failovers whose events were already handed over */
#define DUE_BATCH      16
#define REPLAY_PAGE    500
#define PRUNE_EVERY_MS (3600 * 1000)

struct al_service {
    dm_db *db;
    al_sealer *sealer;
    char public_url[AL_URL_MAX];
    char ca_file[4096];
    double scale;
    pthread_mutex_t mu;  /* the ring, seen, stop */
    pthread_cond_t wake; /* the writer: the ring has events */
    pthread_cond_t due;  /* the sender: the queue has new rows */
    al_event *ring;
    size_t head, count;
    uint64_t dropped;
    int drop_logged;
    struct {
        char id[FO_ID_MAX];
        unsigned mask;
    } seen[SEEN_MAX];
    int seen_next;
    atomic_bool stop; /* written under mu; read without it too (a sender's cancel) */
    pthread_t writer, sender;
    int started;
    int64_t last_queued_ms; /* queued_at_ms strictly increases: the order of events */
};

/* ---- producers (AL-AL1) ---- */

static void push(al_service *s, const al_event *ev)
{
    if (s->count == AL_RING_MAX) {
        s->dropped++;
        if (!s->drop_logged++)
            log_error("alert.dropped", "event=%s detail=\"the alert queue in memory is full\"",
                      al_event_type(ev->kind));
        return;
    }
    s->ring[(s->head + s->count++) % AL_RING_MAX] = *ev;
    s->drop_logged = 0;
}

static const char *failed_phase(const fo_failover *f)
{
    for (int p = 0; p < FO_PHASE_COUNT; p++)
        if (f->phases[p].status == FO_PHASE_FAILED)
            return fo_phase_name((fo_phase)p);
    return "";
}

/* The facts of a failover record, for any of its events. */
static void from_failover(al_event *ev, const fo_failover *f)
{
    snprintf(ev->failover_id, sizeof ev->failover_id, "%s", f->id);
    snprintf(ev->fo_kind, sizeof ev->fo_kind, "%s", fo_kind_name(f->kind));
    snprintf(ev->trigger, sizeof ev->trigger, "%s",
             f->kind == FO_KIND_SIMULATED ? "simulate" : f->real.trigger);
    ev->test = f->real.test;
    ev->old_instance_id = f->gpu_instance_id;
    if (f->kind == FO_KIND_REAL && f->real.new_instance_id > 0)
        ev->new_instance_id = f->real.new_instance_id;
    snprintf(ev->workload_id, sizeof ev->workload_id, "%s", f->real.workload_id);
    snprintf(ev->reason, sizeof ev->reason, "%s", f->reason);
    if (fo_state_is_terminal(f->state)) {
        ev->duration_ms = f->total_time_ms;
        snprintf(ev->phase, sizeof ev->phase, "%s", failed_phase(f));
    } else {
        snprintf(ev->phase, sizeof ev->phase, "%s", fo_state_name(f->state));
        int64_t now = clock_wall_ms();
        ev->duration_ms = now > f->started_at_ms ? now - f->started_at_ms : 0;
    }
}

/* The events a record implies (AL-AL2: a pure function of the record). n <= 3. */
static int failover_events(const fo_failover *f, al_event out[3])
{
    int n = 0;
    int term = fo_state_is_terminal(f->state);
    al_event_init(&out[n], AL_EV_STARTED, f->started_at_ms);
    from_failover(&out[n], f);
    if (term) /* a replayed start says where it began, not where it ended */
        snprintf(out[n].phase, sizeof out[n].phase, "detection"),
            out[n].duration_ms = FO_NULL, out[n].new_instance_id = FO_NULL, out[n].reason[0] = '\0';
    snprintf(out[n].key, sizeof out[n].key, "fo:%s:started", f->id);
    n++;
    const fo_phase_rec *sb = &f->phases[FO_PHASE_STANDBY_ACTIVATION];
    if (sb->status == FO_PHASE_OK) {
        al_event_init(&out[n], AL_EV_STANDBY_ACTIVATED,
                      sb->started_at_ms > 0 ? sb->started_at_ms : f->started_at_ms);
        from_failover(&out[n], f);
        snprintf(out[n].phase, sizeof out[n].phase, "standby_activation");
        snprintf(out[n].key, sizeof out[n].key, "fo:%s:standby", f->id);
        n++;
    }
    if (term) {
        int ok = f->state == FO_STATE_COMPLETED;
        al_event_init(&out[n], ok ? AL_EV_COMPLETED : AL_EV_FAILED,
                      f->finished_at_ms > 0 ? f->finished_at_ms : clock_wall_ms());
        from_failover(&out[n], f);
        snprintf(out[n].key, sizeof out[n].key, "fo:%s:%s", f->id, ok ? "completed" : "failed");
        n++;
    }
    return n;
}

/* The seen mask of a failover id (pushes a slot for a new one). */
static unsigned *seen_mask(al_service *s, const char *id)
{
    for (int i = 0; i < SEEN_MAX; i++)
        if (strcmp(s->seen[i].id, id) == 0)
            return &s->seen[i].mask;
    int i = s->seen_next;
    s->seen_next = (s->seen_next + 1) % SEEN_MAX;
    snprintf(s->seen[i].id, sizeof s->seen[i].id, "%s", id);
    s->seen[i].mask = 0;
    return &s->seen[i].mask;
}

void al_on_failover(al_service *s, const fo_failover *f)
{
    if (!s || !f)
        return;
    al_event ev[3];
    int n = failover_events(f, ev);
    pthread_mutex_lock(&s->mu);
    unsigned *mask = seen_mask(s, f->id);
    int pushed = 0;
    for (int i = 0; i < n; i++)
        if (!(*mask & (1u << ev[i].kind))) {
            *mask |= 1u << ev[i].kind;
            push(s, &ev[i]);
            pushed = 1;
        }
    if (pushed)
        pthread_cond_signal(&s->wake);
    pthread_mutex_unlock(&s->mu);
}

void al_on_instance(const hbl_event *hev, void *ctx)
{
    al_service *s = ctx;
    if (!s || !hev || strcmp(hev->what, "state") != 0)
        return;
    al_event_kind k;
    if (strcmp(hev->to, "suspect") == 0)
        k = AL_EV_SUSPECT;
    else if (strcmp(hev->to, "failed") == 0)
        k = AL_EV_INSTANCE_FAILED;
    else
        return;
    al_event ev;
    al_event_init(&ev, k, hev->at_wall_ms);
    ev.instance_id = hev->instance_id;
    snprintf(ev.inst_from, sizeof ev.inst_from, "%s", hev->from ? hev->from : "");
    snprintf(ev.inst_to, sizeof ev.inst_to, "%s", hev->to);
    snprintf(ev.inst_reason, sizeof ev.inst_reason, "%s", hev->reason ? hev->reason : "");
    ev.silent_ms = hev->silent_ms >= 0 ? hev->silent_ms : FO_NULL;
    snprintf(ev.key, sizeof ev.key, "inst:%lld:%lld:%s", (long long)hev->instance_id,
             (long long)hev->at_wall_ms, hev->to);
    pthread_mutex_lock(&s->mu);
    push(s, &ev);
    pthread_cond_signal(&s->wake);
    pthread_mutex_unlock(&s->mu);
}

uint64_t al_dropped(al_service *s)
{
    pthread_mutex_lock(&s->mu);
    uint64_t n = s->dropped;
    pthread_mutex_unlock(&s->mu);
    return n;
}

dm_db *al_db(al_service *s)
{
    return s->db;
}

/* ---- the queue: events to deliveries (AL-AL3) ---- */

/* The workload's name (and, for an instance event, which workload). */
static void enrich(al_service *s, al_event *ev)
{
    char err[256];
    dm_workload w;
    int rc = DM_E_NOT_FOUND;
    if (ev->workload_id[0])
        rc = db_workload_get(s->db, ev->workload_id, &w, err, sizeof err);
    else if (ev->instance_id != FO_NULL)
        rc = db_workload_by_serving(s->db, ev->instance_id, &w, err, sizeof err);
    if (rc == 0) {
        snprintf(ev->workload_id, sizeof ev->workload_id, "%s", w.workload_id);
        snprintf(ev->workload_name, sizeof ev->workload_name, "%s", w.name);
    }
}

static int wants(const db_alert *a, const al_event *ev)
{
    unsigned mask = 0;
    char err[128];
    if (al_notify_parse(a->notify_on, &mask, err, sizeof err) != 0)
        return 0;
    return (mask & (1u << ev->kind)) && ev->at_ms >= a->created_at_ms; /* AL-AL3 */
}

/* 0, or the database's error (the event is then tried again later). */
static int enqueue_for(al_service *s, const db_alert *a, const al_event *ev)
{
    al_kind kind;
    if (al_kind_parse(a->kind, &kind) != 0)
        return 0;
    db_delivery d;
    memset(&d, 0, sizeof d);
    al_delivery_key(ev->key, a->name, d.delivery_key);
    snprintf(d.alert_name, sizeof d.alert_name, "%s", a->name);
    snprintf(d.event_key, sizeof d.event_key, "%s", ev->key);
    snprintf(d.event_type, sizeof d.event_type, "%s", al_event_type(ev->kind));
    int64_t now = clock_wall_ms();
    d.queued_at_ms = now > s->last_queued_ms ? now : s->last_queued_ms + 1;
    d.next_at_ms = d.queued_at_ms;
    char err[256] = "", q[DB_ALERT_NAME_MAX + 8];
    int inserted = 0;
    int rc = al_render(kind, ev, s->public_url, d.delivery_key, &d.body), db_rc = 0;
    if (rc == 0)
        rc = db_rc = db_delivery_enqueue(s->db, &d, &inserted, err, sizeof err);
    if (rc)
        log_error("alert.enqueue_failed", "alert=%s event=%s key=%s error=%s",
                  log_quote(q, sizeof q, a->name), d.event_type, d.delivery_key,
                  err[0] ? err : dm_strerror(rc));
    else if (inserted) {
        s->last_queued_ms = d.queued_at_ms;
        log_info("alert.queued", "alert=%s event=%s key=%s", log_quote(q, sizeof q, a->name),
                 d.event_type, d.delivery_key);
    }
    free(d.body);
    return db_rc;
}

/* AL-AL3. 0, or the first database error (DB-DA2: a retry re-queues nothing twice). */
static int enqueue_event(al_service *s, al_event *ev, const db_alert *alerts, size_t n)
{
    int any = 0, rc = 0;
    for (size_t i = 0; i < n; i++)
        any |= wants(&alerts[i], ev);
    if (!any)
        return 0;
    enrich(s, ev);
    for (size_t i = 0; i < n && rc == 0; i++)
        if (wants(&alerts[i], ev))
            rc = enqueue_for(s, &alerts[i], ev);
    return rc;
}

static void free_alerts(db_alert *v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        db_alert_done(&v[i]);
    free(v);
}

/* Moves the ring into the queue: each event leaves the ring only once it is
 * queued for every destination that wants it, so a database that fails
 * (down, disk full) loses none while this process lives. Returns the number
 * of events moved, or -1 when the database failed (try again later). */
static int drain(al_service *s)
{
    pthread_mutex_lock(&s->mu);
    int pending = s->count > 0;
    pthread_mutex_unlock(&s->mu);
    if (!pending)
        return 0;
    db_alert *alerts = NULL;
    size_t na = 0;
    char err[256], q[300];
    if (db_alert_list(s->db, &alerts, &na, err, sizeof err) != 0) {
        log_error("alert.list_failed", "error=%s detail=\"events wait in memory\"",
                  log_quote(q, sizeof q, err));
        return -1;
    }
    int moved = 0, rc = 0;
    al_event ev;
    while (rc == 0 && moved < 64) {
        pthread_mutex_lock(&s->mu);
        int have = s->count > 0;
        if (have)
            ev = s->ring[s->head]; /* only this thread takes from the ring */
        pthread_mutex_unlock(&s->mu);
        if (!have || (rc = enqueue_event(s, &ev, alerts, na)) != 0)
            break;
        pthread_mutex_lock(&s->mu);
        s->head = (s->head + 1) % AL_RING_MAX;
        s->count--;
        pthread_mutex_unlock(&s->mu);
        moved++;
    }
    free_alerts(alerts, na);
    if (moved) {
        pthread_mutex_lock(&s->mu);
        pthread_cond_signal(&s->due);
        pthread_mutex_unlock(&s->mu);
    }
    return rc ? -1 : moved;
}

/* ---- AL-AL2: the replay at start ---- */

static void replay(al_service *s)
{
    db_alert *alerts = NULL;
    size_t na = 0;
    char err[256], q[300];
    if (db_alert_list(s->db, &alerts, &na, err, sizeof err) != 0 || na == 0) {
        free_alerts(alerts, na);
        return;
    }
    int64_t oldest = alerts[0].created_at_ms, now = clock_wall_ms();
    for (size_t i = 1; i < na; i++)
        if (alerts[i].created_at_ms < oldest)
            oldest = alerts[i].created_at_ms;
    db_failover_filter flt;
    db_failover_filter_init(&flt);
    flt.since_ms = oldest > now - AR_GIVE_UP_MS ? oldest : now - AR_GIVE_UP_MS;
    flt.limit = REPLAY_PAGE;
    int64_t events = 0;
    for (;;) {
        fo_failover *fs = NULL;
        size_t n = 0;
        if (db_failover_list(s->db, &flt, &fs, &n, err, sizeof err) != 0) {
            log_error("alert.replay_failed", "error=%s", log_quote(q, sizeof q, err));
            break;
        }
        for (size_t i = 0; i < n; i++) {
            al_event ev[3];
            int k = failover_events(&fs[i], ev);
            for (int j = 0; j < k; j++, events++)
                enqueue_event(s, &ev[j], alerts, na);
        }
        free(fs);
        if (n < REPLAY_PAGE || atomic_load_explicit(&s->stop, memory_order_relaxed))
            break;
        flt.offset += REPLAY_PAGE;
    }
    log_info("alert.replayed", "events=%lld alerts=%zu", (long long)events, na);
    free_alerts(alerts, na);
}

/* ---- AL-AL5: snapshots failing ---- */

static void check_snapshots(al_service *s)
{
    dm_workload *ws = NULL;
    size_t n = 0;
    char err[256];
    if (db_workload_list(s->db, &ws, &n, err, sizeof err) != 0)
        return;
    int64_t now = clock_wall_ms(), floor_ms = (int64_t)(AL_SNAP_MIN_STALE_MS / s->scale);
    for (size_t i = 0; i < n; i++) {
        const dm_workload *w = &ws[i];
        if (!w->protect || w->snapshot_every_ms <= 0 || w->state != DM_WL_RUNNING)
            continue;
        dm_snapshot snap;
        int got = db_snapshot_latest_workload(s->db, w->workload_id, &snap, err, sizeof err) == 0;
        int64_t since =
            got && snap.created_at_ms > w->created_at_ms ? snap.created_at_ms : w->created_at_ms;
        int64_t limit = 3 * w->snapshot_every_ms > floor_ms ? 3 * w->snapshot_every_ms : floor_ms;
        if (now - since <= limit)
            continue;
        al_event ev;
        al_event_init(&ev, AL_EV_SNAPSHOT_FAILING, now);
        snprintf(ev.workload_id, sizeof ev.workload_id, "%s", w->workload_id);
        snprintf(ev.workload_name, sizeof ev.workload_name, "%s", w->name);
        ev.snapshot_age_ms = now - since;
        ev.snapshot_every_ms = w->snapshot_every_ms;
        if (got)
            snprintf(ev.snapshot_id, sizeof ev.snapshot_id, "%s", snap.snapshot_id);
        if (w->serving_instance_id > 0)
            ev.instance_id = w->serving_instance_id;
        snprintf(ev.key, sizeof ev.key, "snap:%s:%s", w->workload_id,
                 got ? snap.snapshot_id : "none");
        pthread_mutex_lock(&s->mu);
        push(s, &ev);
        pthread_mutex_unlock(&s->mu);
    }
    free(ws);
}

/* ---- AL-AL6: workloads past their failover budget ---- */

static void check_flapping(al_service *s)
{
    dm_workload *ws = NULL;
    size_t n = 0;
    char err[256];
    if (db_workload_list(s->db, &ws, &n, err, sizeof err) != 0)
        return;
    int64_t now = clock_wall_ms();
    for (size_t i = 0; i < n; i++) {
        const dm_workload *w = &ws[i];
        if (!w->flapping_reason[0] || w->flapping_since_ms == DM_NULL)
            continue;
        al_event ev;
        al_event_init(&ev, AL_EV_FLAPPING, now); /* AL-AL3: while it lasts */
        snprintf(ev.workload_id, sizeof ev.workload_id, "%s", w->workload_id);
        snprintf(ev.workload_name, sizeof ev.workload_name, "%s", w->name);
        snprintf(ev.reason, sizeof ev.reason, "%s", w->flapping_reason);
        if (w->serving_instance_id > 0)
            ev.instance_id = w->serving_instance_id;
        snprintf(ev.key, sizeof ev.key, "flap:%s:%lld", w->workload_id,
                 (long long)w->flapping_since_ms); /* one per flapping spell (DB-DA2) */
        pthread_mutex_lock(&s->mu);
        push(s, &ev);
        pthread_mutex_unlock(&s->mu);
    }
    free(ws);
}

/* ---- delivery ---- */

static int open_secrets(al_service *s, const db_alert *a, char **ret_url, char **ret_secret)
{
    *ret_url = *ret_secret = NULL;
    int rc = al_open(s->sealer, a->name, a->url_sealed, ret_url);
    if (rc == 0 && a->secret_sealed)
        rc = al_open(s->sealer, a->name, a->secret_sealed, ret_secret);
    return rc;
}

static void wipe(char *p)
{
    if (p)
        explicit_bzero(p, strlen(p));
    free(p);
}

static int stopping(al_service *s)
{
    return atomic_load_explicit(&s->stop, memory_order_relaxed);
}

/* One attempt of one delivery, and what its answer makes of the row. */
static void deliver(al_service *s, db_delivery *d)
{
    char err[256] = "", q[DB_ALERT_NAME_MAX + 8], eq[600];
    db_alert a;
    if (db_alert_get(s->db, d->alert_name, &a, err, sizeof err) != 0)
        return; /* removed meanwhile: its rows went with it (DB-DA4) */
    int64_t now = clock_wall_ms();
    int attempts = (int)d->attempts + 1;
    log_quote(q, sizeof q, a.name);
    if (al_retry_expired(d->queued_at_ms, now, s->scale)) {
        db_delivery_finish(s->db, d->delivery_key, "expired", d->attempts, d->last_status,
                           d->last_error, now, err, sizeof err);
        log_error("alert.expired", "alert=%s event=%s key=%s attempts=%lld", q, d->event_type,
                  d->delivery_key, (long long)d->attempts);
        db_alert_done(&a);
        return;
    }
    char *url = NULL, *secret = NULL;
    if (open_secrets(s, &a, &url, &secret) != 0) {
        db_delivery_finish(s->db, d->delivery_key, "refused", attempts, FO_NULL,
                           "the destination's URL cannot be opened with this server's "
                           "alerts.key",
                           now, err, sizeof err);
        log_error("alert.unsealable",
                  "alert=%s key=%s detail=\"alerts.key is not the one "
                  "that sealed this destination; add it again\"",
                  q, d->delivery_key);
        db_alert_done(&a);
        return;
    }
    al_send_req rq = {.url = url,
                      .body = d->body,
                      .len = strlen(d->body),
                      .delivery_key = d->delivery_key,
                      .event_type = d->event_type,
                      .secret = secret,
                      .ca_file = s->ca_file[0] ? s->ca_file : NULL,
                      .cancel = &s->stop};
    al_send_result r;
    al_send(&rq, &r);
    if (stopping(s)) { /* cut short by the stop: still queued, sent after the restart */
        wipe(url);
        wipe(secret);
        db_alert_done(&a);
        return;
    }
    wipe(url);
    wipe(secret);
    now = clock_wall_ms();
    switch (al_retry_verdict(r.status)) {
    case AR_DELIVERED:
        db_delivery_finish(s->db, d->delivery_key, "delivered", attempts, r.status, NULL, now, err,
                           sizeof err);
        log_info("alert.delivered", "alert=%s event=%s key=%s status=%ld attempts=%d ms=%lld", q,
                 d->event_type, d->delivery_key, r.status, attempts, (long long)r.elapsed_ms);
        break;
    case AR_RETRY: {
        int64_t wait = al_retry_next_ms(d->delivery_key, attempts, r.retry_after_ms, s->scale);
        db_delivery_retry(s->db, d->delivery_key, attempts, now + wait, r.status, r.error, err,
                          sizeof err);
        log_warn("alert.retry",
                 "alert=%s event=%s key=%s status=%ld attempts=%d "
                 "retry_after_ms=%lld next_in_ms=%lld error=%s",
                 q, d->event_type, d->delivery_key, r.status, attempts, (long long)r.retry_after_ms,
                 (long long)wait, log_quote(eq, sizeof eq, r.error));
        break;
    }
    case AR_REFUSED:
        db_delivery_finish(s->db, d->delivery_key, "refused", attempts, r.status, r.error, now, err,
                           sizeof err);
        log_error("alert.refused", "alert=%s event=%s key=%s status=%ld error=%s", q, d->event_type,
                  d->delivery_key, r.status, log_quote(eq, sizeof eq, r.error));
        break;
    }
    db_alert_done(&a);
}

/* Delivers what is due; returns how many were tried. */
static size_t deliver_due(al_service *s)
{
    db_delivery *due = NULL;
    size_t n = 0;
    char err[256];
    if (db_delivery_due(s->db, clock_wall_ms(), DUE_BATCH, &due, &n, err, sizeof err) != 0)
        return 0;
    for (size_t i = 0; i < n; i++) {
        if (!stopping(s))
            deliver(s, &due[i]);
        db_delivery_done(&due[i]);
    }
    free(due);
    return n;
}

/* How long the thread may sleep: until the next due delivery, at most 1 s. */
static int64_t idle_ms(al_service *s)
{
    int64_t next, wait = 1000;
    char err[128];
    if (db_delivery_next_at(s->db, &next, err, sizeof err) == 0) {
        int64_t d = next - clock_wall_ms();
        if (d < wait)
            wait = d < 5 ? 5 : d;
    }
    return wait;
}

/* Waits on cv for at most ms, unless stopping or (ring) events wait. */
static void nap(al_service *s, pthread_cond_t *cv, int64_t ms, int ring)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_sec += ms / 1000;
    ts.tv_nsec += (ms % 1000) * 1000000L;
    if (ts.tv_nsec >= 1000000000L)
        ts.tv_sec++, ts.tv_nsec -= 1000000000L;
    pthread_mutex_lock(&s->mu);
    if (!stopping(s) && !(ring && s->count))
        pthread_cond_timedwait(cv, &s->mu, &ts);
    pthread_mutex_unlock(&s->mu);
}

/* The writer: the replay (AL-AL2), then the ring into the queue, the snapshot
 * check (AL-AL5) and the pruning of old rows. Never waits on the network, so
 * an event reaches the database within milliseconds, whatever a receiver
 * does. */
static void *writer_main(void *arg)
{
    al_service *s = arg;
    replay(s);
    int64_t snap_every = (int64_t)(AL_SNAP_CHECK_MS / s->scale);
    if (snap_every < 100)
        snap_every = 100;
    int64_t next_snap = clock_mono_ms() + snap_every, next_prune = clock_mono_ms();
    while (!stopping(s)) {
        int moved = drain(s);
        if (moved > 0)
            continue;
        if (moved < 0) { /* the database failed: the events wait in the ring */
            nap(s, &s->wake, 1000, 0);
            continue;
        }
        if (clock_mono_ms() >= next_snap) {
            check_snapshots(s);
            check_flapping(s);
            next_snap = clock_mono_ms() + snap_every;
            continue;
        }
        if (clock_mono_ms() >= next_prune) {
            char err[128];
            db_delivery_prune(s->db, clock_wall_ms() - AL_KEEP_DONE_MS, NULL, err, sizeof err);
            next_prune = clock_mono_ms() + PRUNE_EVERY_MS;
        }
        int64_t wait = next_snap - clock_mono_ms();
        nap(s, &s->wake, wait < 1 ? 1 : wait > 1000 ? 1000 : wait, 1);
    }
    while (drain(s) > 0) /* AL-AL2: what the ring holds reaches the queue */
        ;
    return NULL;
}

/* The sender: what is due, one at a time, then a nap until the next. */
static void *sender_main(void *arg)
{
    al_service *s = arg;
    while (!stopping(s))
        if (deliver_due(s) == 0)
            nap(s, &s->due, idle_ms(s), 0);
    return NULL;
}

/* ---- life ---- */

static void al_stop(al_service *s);

int al_service_new(const al_opts *o, al_service **ret, char *err, size_t errlen)
{
    if (!o || !o->db || !o->key_path)
        return dm_fail(err, errlen, DM_E_INVALID, "alerts: no database or key path");
    al_service *s = calloc(1, sizeof *s);
    if (!s || !(s->ring = calloc(AL_RING_MAX, sizeof *s->ring))) {
        free(s);
        return -ENOMEM;
    }
    s->db = o->db;
    s->scale = o->time_scale >= 1.0 ? o->time_scale : 1.0;
    snprintf(s->public_url, sizeof s->public_url, "%s", o->public_url ? o->public_url : "");
    snprintf(s->ca_file, sizeof s->ca_file, "%s", o->ca_file ? o->ca_file : "");
    pthread_mutex_init(&s->mu, NULL);
    pthread_cond_init(&s->wake, NULL);
    pthread_cond_init(&s->due, NULL);
    int rc = al_sealer_open(o->key_path, &s->sealer, err, errlen);
    if (rc) {
        al_service_free(s);
        return rc;
    }
    *ret = s;
    return 0;
}

int al_service_start(al_service *s, char *err, size_t errlen)
{
    if (s->started)
        return 0;
    if (pthread_create(&s->writer, NULL, writer_main, s) != 0)
        return dm_fail(err, errlen, -EAGAIN, "alerts: cannot start the queue writer thread");
    if (pthread_create(&s->sender, NULL, sender_main, s) != 0) {
        al_stop(s);
        pthread_join(s->writer, NULL);
        return dm_fail(err, errlen, -EAGAIN, "alerts: cannot start the sender thread");
    }
    s->started = 1;
    return 0;
}

static void al_stop(al_service *s)
{
    pthread_mutex_lock(&s->mu);
    atomic_store_explicit(&s->stop, true, memory_order_relaxed);
    pthread_cond_broadcast(&s->wake);
    pthread_cond_broadcast(&s->due);
    pthread_mutex_unlock(&s->mu);
}

void al_service_free(al_service *s)
{
    if (!s)
        return;
    al_stop(s);
    if (s->started) {
        pthread_join(s->writer, NULL);
        pthread_join(s->sender, NULL);
    }
    al_sealer_free(s->sealer);
    pthread_cond_destroy(&s->wake);
    pthread_cond_destroy(&s->due);
    pthread_mutex_destroy(&s->mu);
    free(s->ring);
    free(s);
}

/* ---- administration ---- */

static int name_ok(const char *name)
{
    return parse_name_ok(name, DB_ALERT_NAME_MAX);
}

static int add_checks(const al_add_req *rq, al_kind *kind, unsigned *mask, char *err, size_t errlen)
{
    if (!rq->kind || al_kind_parse(rq->kind, kind) != 0)
        return dm_fail(err, errlen, DM_E_INVALID, "kind must be slack, discord or webhook");
    int rc = al_url_check(rq->url, err, errlen);
    if (rc)
        return rc;
    if (rq->name && !name_ok(rq->name))
        return dm_fail(err, errlen, DM_E_INVALID,
                       "an alert name is 1 to %d characters of A-Z a-z 0-9 . _ -",
                       DB_ALERT_NAME_MAX - 1);
    *mask = AL_NOTIFY_DEFAULT;
    return rq->notify_on ? al_notify_parse(rq->notify_on, mask, err, errlen) : 0;
}

int al_add(al_service *s, const al_add_req *rq, db_alert *ret, char *ret_secret, char *err,
           size_t errlen)
{
    al_kind kind;
    unsigned mask;
    int rc = add_checks(rq, &kind, &mask, err, errlen);
    if (rc)
        return rc;
    db_alert a;
    memset(&a, 0, sizeof a);
    snprintf(a.kind, sizeof a.kind, "%s", al_kind_name(kind));
    if (rq->name)
        snprintf(a.name, sizeof a.name, "%s", rq->name);
    else if ((rc = db_alert_next_name(s->db, a.kind, a.name, sizeof a.name, err, errlen)) != 0)
        return rc;
    al_url_redact(rq->url, a.url_shown, sizeof a.url_shown);
    al_notify_format(mask, a.notify_on, sizeof a.notify_on);
    a.created_at_ms = clock_wall_ms();
    char secret[AL_SECRET_HEX_LEN + 1] = "";
    if (kind == AL_KIND_WEBHOOK && (rc = secret_random_hex(secret, sizeof secret, 32)) != 0)
        return dm_fail(err, errlen, rc, "no random bytes for the webhook's secret");
    rc = al_seal(s->sealer, a.name, rq->url, &a.url_sealed);
    if (rc == 0 && secret[0])
        rc = al_seal(s->sealer, a.name, secret, &a.secret_sealed);
    if (rc)
        dm_fail(err, errlen, rc, "cannot seal the destination: %s", dm_strerror(rc));
    else
        rc = db_alert_add(s->db, &a, err, errlen);
    if (rc == 0) {
        a.last_delivered_ms = FO_NULL;
        if (ret_secret)
            memcpy(ret_secret, secret, sizeof secret);
        *ret = a;
    } else {
        db_alert_done(&a);
    }
    explicit_bzero(secret, sizeof secret);
    return rc;
}

int al_test(al_service *s, const char *name, al_send_result *ret, char *err, size_t errlen)
{
    db_alert a;
    int rc = db_alert_get(s->db, name, &a, err, errlen);
    if (rc)
        return rc;
    al_kind kind;
    al_event ev;
    al_event_init(&ev, AL_EV_TEST, clock_wall_ms());
    char rnd[17];
    secret_random_hex(rnd, sizeof rnd, 8);
    snprintf(ev.key, sizeof ev.key, "test:%s:%lld:%s", a.name, (long long)ev.at_ms, rnd);
    char key[AL_DELIVERY_KEY_LEN + 1], *body = NULL, *url = NULL, *secret = NULL;
    al_delivery_key(ev.key, a.name, key);
    if (al_kind_parse(a.kind, &kind) != 0)
        rc = dm_fail(err, errlen, DM_E_DB, "alert %s has an unknown kind", a.name);
    if (rc == 0 && (rc = al_render(kind, &ev, s->public_url, key, &body)) != 0)
        dm_fail(err, errlen, rc, "cannot render the test event");
    if (rc == 0 && open_secrets(s, &a, &url, &secret) != 0)
        rc = dm_fail(err, errlen, DM_E_INVALID,
                     "the destination cannot be opened with this server's alerts.key; remove "
                     "it and add it again");
    if (rc == 0) {
        al_send_req rq = {.url = url,
                          .body = body,
                          .len = strlen(body),
                          .delivery_key = key,
                          .event_type = al_event_type(AL_EV_TEST),
                          .secret = secret,
                          .ca_file = s->ca_file[0] ? s->ca_file : NULL};
        rc = al_send(&rq, ret);
        char q[DB_ALERT_NAME_MAX + 8], eq[600];
        log_info("alert.tested", "alert=%s key=%s status=%ld error=%s",
                 log_quote(q, sizeof q, a.name), key, ret->status,
                 log_quote(eq, sizeof eq, ret->error));
    }
    wipe(url);
    wipe(secret);
    free(body);
    db_alert_done(&a);
    return rc;
}

int al_remove(al_service *s, const char *name, char *err, size_t errlen)
{
    if (!name_ok(name))
        return dm_fail(err, errlen, DM_E_NOT_FOUND, "no alert '%.64s'", name);
    return db_alert_remove(s->db, name, err, errlen);
}

/* The control channel, agent side (see channel.h for AG-C1 to AG-C4).
 *
 * Two threads: the poller (long polls, takes commands, re-answers known ones)
 * and the runner (runs the queued commands one at a time and posts each
 * answer). `done` is the memory of AG-C1: the last AGC_KEEP ids with their
 * state and answer, guarded by `lock` with the queue. */
#define _GNU_SOURCE
#include "agent/channel.h"

#include "agent/agent_http.h"
#include "snapshot/snapshot.h"
#include "store/store.h"
#include "util/clock.h"
#include "util/error.h"
#include "util/fsutil.h"
#include "util/log.h"

#include <errno.h>
#include <jansson.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define QUEUE_MAX  16
#define ID_MAX     128
#define ANSWER_MAX 2048
#define BODY_MAX   8192

typedef enum { K_QUEUED, K_DONE } known_state;

typedef struct {
    char id[ID_MAX];
    known_state st;
    int failed;
    char answer[ANSWER_MAX]; /* the result object (JSON) */
} known;

typedef struct {
    char id[ID_MAX];
    char kind[32];
    int64_t seq, epoch;
    json_t *args;
} cmd;

struct agc_runner {
    agc_opts o;
    char url_poll[600], url_base[512];
    pthread_t poller, runner;
    int have_poller, have_runner;
    atomic_bool stop;
    atomic_llong heard_ms; /* AG-C4: -1 never */
    atomic_bool fenced;
    pthread_mutex_t lock;
    pthread_cond_t more;
    known done[AGC_KEEP]; /* AG-C1, a ring */
    int n_done, next_done;
    int64_t epoch; /* AG-C2: newest seen */
    int64_t after; /* the last seq taken */
    int64_t after_done; /* the last seq answered (persisted) */
    cmd queue[QUEUE_MAX];
    int n_queue;
};

/* ---- AG-C1: what was run ---- */

static known *find(agc_runner *r, const char *id)
{
    for (int i = 0; i < r->n_done; i++)
        if (strcmp(r->done[i].id, id) == 0)
            return &r->done[i];
    return NULL;
}

static known *remember(agc_runner *r, const char *id)
{
    known *k = find(r, id);
    if (k)
        return k;
    k = &r->done[r->next_done];
    r->next_done = (r->next_done + 1) % AGC_KEEP;
    if (r->n_done < AGC_KEEP)
        r->n_done++;
    memset(k, 0, sizeof *k);
    snprintf(k->id, sizeof k->id, "%s", id);
    return k;
}

static void state_path(const agc_runner *r, char *buf, size_t len)
{
    snprintf(buf, len, "%s/commands.json", r->o.state_dir);
}

/* Lock held. Written atomically (FS-I1); a failure is logged, not fatal. */
static void persist(agc_runner *r)
{
    if (!r->o.state_dir)
        return;
    json_t *arr = json_array(), *o = json_pack("{sIsIso}", "epoch", (json_int_t)r->epoch, "after",
                                               (json_int_t)r->after_done, "done", arr);
    for (int i = 0; o && i < r->n_done; i++)
        if (r->done[i].st == K_DONE)
            json_array_append_new(arr, json_pack("{sssbss}", "id", r->done[i].id, "failed",
                                                 r->done[i].failed, "answer", r->done[i].answer));
    char *text = o ? json_dumps(o, JSON_COMPACT) : NULL, path[PATH_MAX];
    json_decref(o);
    state_path(r, path, sizeof path);
    int rc = text ? fs_write_atomic(path, text, strlen(text), 0600) : -ENOMEM;
    if (rc)
        log_warn("agent.channel.state", "error=\"%s\"", strerror(-rc));
    free(text);
}

static void load(agc_runner *r)
{
    char path[PATH_MAX], *buf = malloc(AGC_KEEP * (ANSWER_MAX + ID_MAX + 64));
    size_t cap = AGC_KEEP * (ANSWER_MAX + ID_MAX + 64);
    if (!buf || !r->o.state_dir) {
        free(buf);
        return;
    }
    state_path(r, path, sizeof path);
    long n = fs_read_small(path, buf, cap);
    json_t *o = n > 0 ? json_loadb(buf, (size_t)n, 0, NULL) : NULL;
    free(buf);
    json_int_t e = json_integer_value(json_object_get(o, "epoch"));
    if (e > r->epoch)
        r->epoch = e;
    r->after = r->after_done = json_integer_value(json_object_get(o, "after"));
    size_t i;
    json_t *v;
    json_array_foreach(json_object_get(o, "done"), i, v)
    {
        const char *id = json_string_value(json_object_get(v, "id"));
        const char *ans = json_string_value(json_object_get(v, "answer"));
        if (!id || !ans || strlen(id) >= ID_MAX || strlen(ans) >= ANSWER_MAX)
            continue;
        known *k = remember(r, id);
        k->st = K_DONE;
        k->failed = json_is_true(json_object_get(v, "failed"));
        snprintf(k->answer, sizeof k->answer, "%s", ans);
    }
    json_decref(o);
}

/* ---- HTTP ---- */

static void heard(agc_runner *r)
{
    atomic_store(&r->heard_ms, clock_mono_ms());
}

int64_t agc_silent_ms(agc_runner *r)
{
    if (!r)
        return -1;
    int64_t h = atomic_load(&r->heard_ms);
    return h < 0 ? -1 : clock_mono_ms() - h;
}

void agc_mark_fenced(agc_runner *r)
{
    if (r)
        atomic_store(&r->fenced, 1);
}

/* Posts the answer of command id until it lands (AG-C3) or we stop. */
static void post_answer(agc_runner *r, const char *id, int failed, const char *answer)
{
    char url[768], body[ANSWER_MAX + 64], buf[1024], err[256];
    snprintf(url, sizeof url, "%s/%s/result", r->url_base, id);
    snprintf(body, sizeof body, "{\"state\":\"%s\",\"result\":%s}", failed ? "failed" : "done",
             answer);
    for (int64_t backoff = 100; !atomic_load(&r->stop); backoff = backoff < 2000 ? backoff * 2 : 2000) {
        agent_req q = {.url = url,
                       .token = r->o.token,
                       .ca_file = r->o.ca_file,
                       .json = body,
                       .timeout_ms = 10000,
                       .buf = buf,
                       .cap = sizeof buf,
                       .abort = &r->stop};
        long st = agent_http(&q, err, sizeof err);
        if (st >= 200 && st < 300) {
            heard(r);
            return;
        }
        if (st >= 400 && st < 500 && st != 408 && st != 429) { /* refused: retrying changes nothing */
            heard(r);
            log_warn("agent.channel.answer_refused", "command=%s status=%ld", id, st);
            return;
        }
        clock_sleep_ms(backoff, &r->stop);
    }
}

/* ---- running a command (AG-C3) ---- */

static void fail_answer(char *ans, size_t cap, const char *why)
{
    json_t *o = json_pack("{ss}", "error", why);
    char *t = o ? json_dumps(o, JSON_COMPACT) : NULL;
    snprintf(ans, cap, "%s", t ? t : "{\"error\":\"out of memory\"}");
    free(t);
    json_decref(o);
}

static int open_store(agc_runner *r, json_t *args, dm_store **s, char *err, size_t errlen)
{
    const char *url = json_string_value(json_object_get(args, "store"));
    const char *mirror = json_string_value(json_object_get(args, "mirror"));
    if (!url || !*url)
        url = r->o.store_url;
    if (!url || !*url)
        return dm_fail(err, errlen, DM_E_INVALID, "no store");
    return store_open_mirrored(url, mirror, s, err, errlen);
}

static int do_restore(agc_runner *r, json_t *args, json_t **res, char *err, size_t errlen)
{
    const char *id = json_string_value(json_object_get(args, "snapshot_id"));
    if (!id || !snap_id_valid(id))
        return dm_fail(err, errlen, DM_E_INVALID, "restore: no valid snapshot_id");
    if (!r->o.workspace)
        return dm_fail(err, errlen, DM_E_INVALID, "restore: this agent has no workspace");
    if (r->o.hooks.started && r->o.hooks.started(r->o.hooks.cls))
        return dm_fail(err, errlen, DM_E_CONFLICT,
                       "restore: the workload runs; a workspace is restored only before it starts");
    dm_store *s = NULL;
    snap_opts so;
    snap_restore_stats st;
    int64_t t0 = clock_mono_ms();
    int rc = open_store(r, args, &s, err, errlen);
    uint64_t m0 = store_stats_mirror_reads();
    snap_opts_init(&so);
    so.restore_stats = &st;
    if (rc == 0)
        rc = snap_restore(s, id, r->o.workspace, 1, &so, err, errlen); /* SNAP-SN2 */
    store_close(s);
    if (rc)
        return rc;
    int64_t total = clock_mono_ms() - t0;
    const char *src = store_stats_mirror_reads() > m0 ? "mirror" : "primary";
    *res = json_pack("{sIsIsIsIss}", "download_ms", (json_int_t)st.fetch_ms, "decompress_ms",
                     (json_int_t)(total - st.fetch_ms), "total_ms", (json_int_t)total, "bytes",
                     (json_int_t)st.bytes, "source", src);
    log_info("agent.restored", "snapshot=%.64s bytes=%llu download_ms=%lld decompress_ms=%lld source=%s",
             id, (unsigned long long)st.bytes, (long long)st.fetch_ms,
             (long long)(total - st.fetch_ms), src);
    return 0;
}

static int do_snapshot(agc_runner *r, json_t *args, json_t **res, char *err, size_t errlen)
{
    if (!r->o.workspace)
        return dm_fail(err, errlen, DM_E_INVALID, "snapshot: this agent has no workspace");
    const char *tag = json_string_value(json_object_get(args, "tag"));
    dm_store *s = NULL;
    snap_opts so;
    snap_info si;
    snap_opts_init(&so);
    so.tag = tag && *tag ? tag : NULL;
    int rc = open_store(r, args, &s, err, errlen);
    if (rc == 0)
        rc = snap_create(s, r->o.workspace, &so, &si, err, errlen);
    store_close(s);
    if (rc)
        return rc;
    *res = json_pack("{sssIsIsIsIsI}", "snapshot_id", si.id, "bytes", (json_int_t)si.bytes,
                     "files", (json_int_t)si.files, "stored_new", (json_int_t)si.stored_new,
                     "duration_ms", (json_int_t)si.duration_ms, "time_ms", (json_int_t)si.time_ms);
    return 0;
}

/* Runs c; the answer into ans; 1 when it failed. */
static int run_one(agc_runner *r, const cmd *c, char *ans, size_t cap)
{
    char err[512] = "";
    json_t *res = NULL;
    int rc = 0;
    int64_t t0 = clock_mono_ms();
    log_info("agent.command", "command=%s kind=%s epoch=%lld", c->id, c->kind, (long long)c->epoch);
    if (strcmp(c->kind, "ping") == 0)
        res = json_object();
    else if (strcmp(c->kind, "restore") == 0)
        rc = do_restore(r, c->args, &res, err, sizeof err);
    else if (strcmp(c->kind, "snapshot") == 0)
        rc = do_snapshot(r, c->args, &res, err, sizeof err);
    else if (strcmp(c->kind, "start_workload") == 0) {
        if (atomic_load(&r->fenced))
            rc = dm_fail(err, sizeof err, DM_E_CONFLICT,
                         "this agent fenced itself (its lease ran out); it starts nothing again");
        else if (r->o.hooks.start)
            rc = r->o.hooks.start(r->o.hooks.cls, err, sizeof err);
        res = rc ? NULL : json_object();
    } else if (strcmp(c->kind, "stop") == 0) {
        if (r->o.hooks.stop)
            rc = r->o.hooks.stop(r->o.hooks.cls, err, sizeof err);
        res = rc ? NULL : json_object();
    } else
        rc = dm_fail(err, sizeof err, DM_E_INVALID, "unknown command kind '%.20s'", c->kind);
    if (rc == 0 && !res)
        rc = dm_fail(err, sizeof err, -ENOMEM, "out of memory");
    if (rc) {
        char q[600];
        log_warn("agent.command_failed", "command=%s kind=%s error=%s", c->id, c->kind,
                 log_quote(q, sizeof q, err));
        fail_answer(ans, cap, err);
        return 1;
    }
    json_object_set_new(res, "ms", json_integer(clock_mono_ms() - t0));
    char *t = json_dumps(res, JSON_COMPACT);
    json_decref(res);
    snprintf(ans, cap, "%s", t && strlen(t) < cap ? t : "{}");
    free(t);
    return 0;
}

static void *runner_main(void *arg)
{
    agc_runner *r = arg;
    char *ans = malloc(ANSWER_MAX);
    if (!ans)
        return NULL;
    pthread_mutex_lock(&r->lock);
    while (!atomic_load(&r->stop)) {
        if (r->n_queue == 0) {
            pthread_cond_wait(&r->more, &r->lock);
            continue;
        }
        cmd c = r->queue[0];
        memmove(r->queue, r->queue + 1, (size_t)(r->n_queue - 1) * sizeof r->queue[0]);
        r->n_queue--;
        pthread_mutex_unlock(&r->lock);
        int failed = run_one(r, &c, ans, ANSWER_MAX);
        json_decref(c.args);
        pthread_mutex_lock(&r->lock);
        known *k = remember(r, c.id);
        k->st = K_DONE;
        k->failed = failed;
        snprintf(k->answer, sizeof k->answer, "%s", ans);
        if (c.seq > r->after_done)
            r->after_done = c.seq;
        persist(r); /* AG-C1: before the answer leaves */
        pthread_mutex_unlock(&r->lock);
        post_answer(r, c.id, failed, ans);
        pthread_mutex_lock(&r->lock);
    }
    pthread_mutex_unlock(&r->lock);
    free(ans);
    return NULL;
}

/* ---- the poller ---- */

/* A command the poll handed us: answered again, refused, or queued; 0 when
 * the queue had no room (AG-C6: then `after` stays before it, and the next
 * poll hands it again: a command is never skipped). */
static int take(agc_runner *r, json_t *jc)
{
    const char *id = json_string_value(json_object_get(jc, "id"));
    const char *kind = json_string_value(json_object_get(jc, "kind"));
    json_int_t seq = json_integer_value(json_object_get(jc, "seq"));
    json_int_t epoch = json_integer_value(json_object_get(jc, "epoch"));
    if (!id || !kind || strlen(id) >= ID_MAX || strlen(kind) >= 32 || seq < 1)
        return 1;
    char again[ANSWER_MAX];
    int failed = 0, repost = 0, taken = 1;
    pthread_mutex_lock(&r->lock);
    known *k = find(r, id);
    if (k && k->st == K_DONE) { /* AG-C1: the same answer, not a second run */
        repost = 1;
        failed = k->failed;
        snprintf(again, sizeof again, "%s", k->answer);
        log_info("agent.command_repeated", "command=%s kind=%s ran=0", id, kind);
    } else if (!k && epoch < r->epoch) { /* AG-C2 */
        char why[200];
        snprintf(why, sizeof why, "command of epoch %lld refused: this agent is at epoch %lld",
                 (long long)epoch, (long long)r->epoch);
        log_warn("agent.command_refused", "command=%s kind=%s epoch=%lld agent_epoch=%lld", id,
                 kind, (long long)epoch, (long long)r->epoch);
        k = remember(r, id);
        k->st = K_DONE;
        k->failed = failed = repost = 1;
        fail_answer(k->answer, sizeof k->answer, why);
        snprintf(again, sizeof again, "%s", k->answer);
        persist(r);
    } else if (!k && r->n_queue < QUEUE_MAX) {
        if (epoch > r->epoch)
            r->epoch = epoch;
        cmd *c = &r->queue[r->n_queue++];
        memset(c, 0, sizeof *c);
        snprintf(c->id, sizeof c->id, "%s", id);
        snprintf(c->kind, sizeof c->kind, "%s", kind);
        c->seq = seq;
        c->epoch = epoch;
        c->args = json_incref(json_object_get(jc, "args"));
        remember(r, id)->st = K_QUEUED;
        pthread_cond_signal(&r->more);
    } else if (!k) {
        taken = 0; /* AG-C6: the queue is full */
    }
    if (taken && seq > r->after)
        r->after = seq;
    pthread_mutex_unlock(&r->lock);
    if (repost)
        post_answer(r, id, failed, again);
    return taken;
}

/* lease/3, at most AGC_POLL_WAIT_MS: a waiting poll holds a server thread
 * (provider/channel.h CHAN_WAIT_MAX_MS). */
static int64_t poll_wait_ms(const agc_runner *r)
{
    int64_t w = r->o.lease_ms / 3;
    return w < 50 ? 50 : w > AGC_POLL_WAIT_MS ? AGC_POLL_WAIT_MS : w;
}

static void *poller_main(void *arg)
{
    agc_runner *r = arg;
    char *buf = malloc(BODY_MAX), body[160], err[256];
    int64_t backoff = 100;
    int said_fenced = 0;
    while (buf && !atomic_load(&r->stop)) {
        int fenced = atomic_load(&r->fenced);
        pthread_mutex_lock(&r->lock);
        snprintf(body, sizeof body, "{\"after\":%lld,\"wait_ms\":%lld,\"epoch\":%lld,\"fenced\":%s}",
                 (long long)r->after, (long long)poll_wait_ms(r), (long long)r->epoch,
                 fenced ? "true" : "false");
        pthread_mutex_unlock(&r->lock);
        agent_req q = {.url = r->url_poll,
                       .token = r->o.token,
                       .ca_file = r->o.ca_file,
                       .json = body,
                       .timeout_ms = poll_wait_ms(r) + 5000,
                       .buf = buf,
                       .cap = BODY_MAX,
                       .abort = &r->stop};
        long st = agent_http(&q, err, sizeof err);
        if (st != 200) {
            if (st == 404 && atomic_load(&r->heard_ms) < 0) {
                log_warn("agent.channel.none", "%s",
                         "detail=\"the server has no control channel; no lease either\"");
                break;
            }
            clock_sleep_ms(backoff, &r->stop);
            backoff = backoff < 1000 ? backoff * 2 : 1000;
            continue;
        }
        backoff = 100;
        if (atomic_load(&r->heard_ms) < 0)
            log_info("agent.channel.up", "lease_ms=%lld", (long long)r->o.lease_ms);
        heard(r);
        if (fenced && !said_fenced) {
            said_fenced = 1;
            log_warn("agent.self_fenced_reported", "%s", "told=controller");
        }
        json_t *o = json_loadb(buf, q.len, 0, NULL);
        json_t *c = json_object_get(o, "command");
        if ((json_is_object(c) && !take(r, c)) || /* AG-C6: full; handed again */
            (!json_is_object(c) && json_is_true(json_object_get(o, "busy"))))
            clock_sleep_ms(200, &r->stop);
        json_decref(o);
    }
    free(buf);
    return NULL;
}

int agc_start(const agc_opts *o, agc_runner **ret, char *err, size_t errlen)
{
    if (!o->server_url || !o->token || o->instance_id < 1)
        return dm_fail(err, errlen, DM_E_INVALID, "channel: server, token and instance required");
    agc_runner *r = calloc(1, sizeof *r);
    if (!r)
        return dm_fail(err, errlen, -ENOMEM, "out of memory");
    r->o = *o;
    if (r->o.lease_ms <= 0)
        r->o.lease_ms = AGC_LEASE_DEFAULT_MS;
    r->epoch = o->epoch;
    atomic_store(&r->heard_ms, -1);
    snprintf(r->url_base, sizeof r->url_base, "%s/api/instances/%lld/commands", o->server_url,
             (long long)o->instance_id);
    snprintf(r->url_poll, sizeof r->url_poll, "%s/poll", r->url_base);
    pthread_mutex_init(&r->lock, NULL);
    pthread_cond_init(&r->more, NULL);
    load(r);
    int rc = pthread_create(&r->runner, NULL, runner_main, r);
    r->have_runner = rc == 0;
    if (rc == 0 && (rc = pthread_create(&r->poller, NULL, poller_main, r)) == 0)
        r->have_poller = 1;
    if (rc) {
        agc_stop(r);
        return dm_fail(err, errlen, -rc, "channel: cannot start a thread");
    }
    *ret = r;
    return 0;
}

void agc_stop(agc_runner *r)
{
    if (!r)
        return;
    atomic_store(&r->stop, 1);
    pthread_mutex_lock(&r->lock);
    pthread_cond_broadcast(&r->more);
    pthread_mutex_unlock(&r->lock);
    if (r->have_poller) /* a poll under way ends within its wait */
        pthread_join(r->poller, NULL);
    if (r->have_runner)
        pthread_join(r->runner, NULL);
    for (int i = 0; i < r->n_queue; i++)
        json_decref(r->queue[i].args);
    pthread_cond_destroy(&r->more);
    pthread_mutex_destroy(&r->lock);
    free(r);
}

/* The agent's snapshot thread (see snapshots.h for AG-N1 to AG-N5).
 *
 * One thread, woken by its period or by asn_final(); a mutex + condition
 * variable carry the request and its answer. The change check walks the
 * workspace with lstat only (no file is read), so an idle workspace of any
 * size costs a directory walk per period. */
#define _GNU_SOURCE /* nftw FTW_PHYS */
#include "agent/snapshots.h"

#include "agent/agent_http.h"
#include "snapshot/snapshot.h"
#include "store/store.h"
#include "util/clock.h"
#include "util/error.h"
#include "util/log.h"

#include <errno.h>
#include <ftw.h>
#include <jansson.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#define ANSWER_MAX 4096

struct asn_runner {
    asn_opts o;
    dm_store *store;
    pthread_t th;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int stop, final_req, final_done, final_rc, refused, enabled, warned_refused;
    uint64_t reported;
    uint8_t last_fp[32];
    int have_fp;
};

/* ---- AG-N2: the fingerprint ------------------------------------------------- */

static __thread EVP_MD_CTX *fp_ctx; /* nftw has no context argument */
static __thread size_t fp_skip;     /* length of the root's path */

static int fp_entry(const char *path, const struct stat *st, int flag, struct FTW *f)
{
    (void)f;
    struct {
        uint64_t ino, size;
        int64_t mtime_s, mtime_ns;
        uint32_t mode;
        int32_t flag;
    } rec = {(uint64_t)st->st_ino,         (uint64_t)st->st_size, (int64_t)st->st_mtim.tv_sec,
             (int64_t)st->st_mtim.tv_nsec, (uint32_t)st->st_mode, flag};
    const char *rel = strlen(path) >= fp_skip ? path + fp_skip : path;
    EVP_DigestUpdate(fp_ctx, rel, strlen(rel) + 1);
    EVP_DigestUpdate(fp_ctx, &rec, sizeof rec);
    return 0;
}

int asn_fingerprint(const char *dir, uint8_t ret[32], char *err, size_t errlen)
{
    EVP_MD_CTX *c = EVP_MD_CTX_new();
    unsigned n = 0;
    if (!c || EVP_DigestInit_ex(c, EVP_sha256(), NULL) != 1) {
        EVP_MD_CTX_free(c);
        return dm_fail(err, errlen, -ENOMEM, "out of memory");
    }
    fp_ctx = c;
    fp_skip = strlen(dir);
    /* nftw visits a directory's entries in readdir order, which is stable
     * while the directory is unchanged: a reorder only costs a snapshot. */
    int r = nftw(dir, fp_entry, 16, FTW_PHYS);
    int rc = 0;
    if (r != 0)
        rc = dm_fail(err, errlen, -errno, "cannot walk the workspace: %s", strerror(errno));
    else if (EVP_DigestFinal_ex(c, ret, &n) != 1 || n != 32)
        rc = dm_fail(err, errlen, DM_E_INTERNAL, "sha256 failed");
    fp_ctx = NULL;
    EVP_MD_CTX_free(c);
    return rc;
}

/* ---- the report ---------------------------------------------------------- */

static char *report_body(const asn_runner *r, const snap_info *si, const char *trigger)
{
    json_t *j =
        json_pack("{s:s, s:I, s:I, s:I, s:I, s:I, s:I, s:s, s:s}", "snapshot_id", si->id, "epoch",
                  (json_int_t)r->o.epoch, "size_bytes", (json_int_t)si->bytes, "stored_bytes",
                  (json_int_t)si->stored_new, "files", (json_int_t)si->files, "created_at_ms",
                  (json_int_t)si->time_ms, "creation_time_ms", (json_int_t)si->duration_ms, "store",
                  store_url(r->store), "trigger", trigger);
    char *s = j ? json_dumps(j, JSON_COMPACT) : NULL;
    json_decref(j);
    return s;
}

/* POSTs the report; the HTTP status, or 0 when the server was not reached.
 * The answer lands in buf (cap bytes); *ret_len its length. */
static long report(const asn_runner *r, const snap_info *si, const char *trigger, char *buf,
                   size_t cap, size_t *ret_len)
{
    char url[1200];
    char *post = report_body(r, si, trigger);
    snprintf(url, sizeof url, "%s/api/instances/%lld/snapshots", r->o.server_url,
             (long long)r->o.instance_id);
    agent_req q = {.url = url,
                   .token = r->o.token, /* AG-N5 */
                   .ca_file = r->o.ca_file,
                   .json = post,
                   .timeout_ms = 10000,
                   .buf = buf,
                   .cap = cap};
    long status = post ? agent_http(&q, NULL, 0) : 0;
    *ret_len = q.len;
    free(post);
    return status;
}

/* ---- one snapshot -------------------------------------------------------- */

/* 0 reported (or skipped, AG-N2); else a DM_E_* code, logged here. */
static int take(asn_runner *r, const char *trigger, int force)
{
    uint8_t fp[32];
    char err[1024] = "", q[1200], tag[SNAP_TAG_MAX];
    int rc = asn_fingerprint(r->o.workspace, fp, err, sizeof err);
    if (rc == 0 && !force && r->have_fp && memcmp(fp, r->last_fp, sizeof fp) == 0) {
        log_debug("agent.snapshot_skipped", "%s", "reason=unchanged");
        return 0;
    }
    snap_opts so;
    snap_opts_init(&so);
    so.threads = r->o.threads > 0 ? r->o.threads : ASN_THREADS; /* AG-N1 */
    snprintf(tag, sizeof tag, "epoch=%lld", (long long)r->o.epoch);
    so.tag = tag;
    snap_info si;
    if (rc == 0)
        rc = snap_create(r->store, r->o.workspace, &so, &si, err, sizeof err);
    if (rc) {
        log_warn("agent.snapshot_failed", "trigger=%s error=%s will_retry=%d", trigger,
                 log_quote(q, sizeof q, err), !force);
        return rc;
    }
    char answer[ANSWER_MAX];
    size_t alen = 0;
    long st = report(r, &si, trigger, answer, sizeof answer, &alen);
    if (st == 201) {
        memcpy(r->last_fp, fp, sizeof fp);
        r->have_fp = 1;
        pthread_mutex_lock(&r->mu);
        r->reported++;
        pthread_mutex_unlock(&r->mu);
        log_info("agent.snapshot", "id=%.16s trigger=%s bytes=%llu new=%llu files=%llu ms=%lld",
                 si.id, trigger, (unsigned long long)si.bytes, (unsigned long long)si.bytes_new,
                 (unsigned long long)si.files, (long long)si.duration_ms);
        return 0;
    }
    json_t *j = json_loadb(answer, alen, 0, NULL);
    const char *detail = json_string_value(json_object_get(j, "detail"));
    log_quote(q, sizeof q, detail ? detail : "");
    json_decref(j);
    if (st == 409) { /* AG-N3 */
        pthread_mutex_lock(&r->mu);
        int zombie = r->reported > 0 || force;
        r->refused = zombie;
        pthread_mutex_unlock(&r->mu);
        if (zombie || !r->warned_refused)
            log_warn("agent.snapshot_refused", "id=%.16s trigger=%s detail=%s snapshots=%s", si.id,
                     trigger, q, zombie ? "stopped" : "will_retry");
        r->warned_refused = 1;
        return DM_E_CONFLICT;
    }
    log_warn("agent.snapshot_report_failed", "id=%.16s trigger=%s status=%ld detail=%s", si.id,
             trigger, st, q);
    return st == 0 ? DM_E_UNAVAILABLE : DM_E_PROTOCOL;
}

/* ---- the thread ---------------------------------------------------------- */

static void deadline_in(struct timespec *ts, int64_t ms)
{
    clock_gettime(CLOCK_MONOTONIC, ts);
    ts->tv_sec += ms / 1000;
    ts->tv_nsec += (long)(ms % 1000) * 1000000L;
    if (ts->tv_nsec >= 1000000000L) {
        ts->tv_sec++;
        ts->tv_nsec -= 1000000000L;
    }
}

static void *snap_main(void *arg)
{
    asn_runner *r = arg;
    int scheduled = r->o.every_ms > 0;
    pthread_mutex_lock(&r->mu);
    while (!r->stop) {
        if (!r->final_req) {
            struct timespec ts;
            deadline_in(&ts, scheduled ? r->o.every_ms : 3600000);
            while (!r->stop && !r->final_req &&
                   pthread_cond_timedwait(&r->cv, &r->mu, &ts) != ETIMEDOUT)
                ;
        }
        if (r->stop)
            break;
        int final = r->final_req;
        if (!final && (!scheduled || r->refused || !r->enabled))
            continue;
        int refused = r->refused;
        pthread_mutex_unlock(&r->mu);
        int rc = refused ? DM_E_CONFLICT : take(r, final ? "preempt" : "scheduled", final);
        pthread_mutex_lock(&r->mu);
        if (final) { /* AG-N4 */
            r->final_req = 0;
            r->final_done = 1;
            r->final_rc = rc;
            scheduled = 0;
            pthread_cond_broadcast(&r->cv);
        }
    }
    pthread_mutex_unlock(&r->mu);
    return NULL;
}

int asn_start(const asn_opts *o, asn_runner **ret, char *err, size_t errlen)
{
    if (!o || !o->server_url || !o->token || !o->workspace || !o->store_url || o->every_ms < 0 ||
        o->epoch < 0)
        return dm_fail(err, errlen, DM_E_INVALID, "snapshots: workspace and store are required");
    struct stat st;
    if (stat(o->workspace, &st) != 0 || !S_ISDIR(st.st_mode))
        return dm_fail(err, errlen, DM_E_INVALID, "the workspace is not a directory");
    asn_runner *r = calloc(1, sizeof *r);
    if (!r)
        return dm_fail(err, errlen, -ENOMEM, "out of memory");
    r->o = *o;
    r->enabled = !o->hold;
    int rc = store_open(o->store_url, &r->store, err, errlen);
    if (rc) {
        free(r);
        return rc;
    }
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&r->cv, &ca);
    pthread_condattr_destroy(&ca);
    pthread_mutex_init(&r->mu, NULL);
    if ((rc = pthread_create(&r->th, NULL, snap_main, r)) != 0) {
        store_close(r->store);
        pthread_cond_destroy(&r->cv);
        pthread_mutex_destroy(&r->mu);
        free(r);
        return dm_fail(err, errlen, -rc, "snapshot thread: %s", strerror(rc));
    }
    *ret = r;
    return 0;
}

void asn_final_begin(asn_runner *r)
{
    pthread_mutex_lock(&r->mu);
    r->final_req = 1;
    r->final_done = 0;
    pthread_cond_broadcast(&r->cv);
    pthread_mutex_unlock(&r->mu);
}

int asn_final_poll(asn_runner *r, int *ret_rc)
{
    pthread_mutex_lock(&r->mu);
    int done = r->final_done;
    if (done && ret_rc)
        *ret_rc = r->final_rc;
    pthread_mutex_unlock(&r->mu);
    return done;
}

int asn_final(asn_runner *r, int64_t wait_ms)
{
    if (!r)
        return DM_E_INVALID;
    struct timespec ts;
    deadline_in(&ts, wait_ms > 0 ? wait_ms : ASN_FINAL_WAIT_MS);
    asn_final_begin(r);
    pthread_mutex_lock(&r->mu);
    int timed_out = 0;
    while (!r->final_done && !timed_out)
        timed_out = pthread_cond_timedwait(&r->cv, &r->mu, &ts) == ETIMEDOUT;
    int rc = r->final_done ? r->final_rc : -ETIMEDOUT;
    pthread_mutex_unlock(&r->mu);
    return rc;
}

void asn_enable(asn_runner *r)
{
    if (!r)
        return;
    pthread_mutex_lock(&r->mu);
    r->enabled = 1;
    pthread_mutex_unlock(&r->mu);
}

uint64_t asn_reported(asn_runner *r)
{
    pthread_mutex_lock(&r->mu);
    uint64_t n = r->reported;
    pthread_mutex_unlock(&r->mu);
    return n;
}

int asn_refused(asn_runner *r)
{
    pthread_mutex_lock(&r->mu);
    int v = r->refused;
    pthread_mutex_unlock(&r->mu);
    return v;
}

void asn_stop(asn_runner *r)
{
    if (!r)
        return;
    pthread_mutex_lock(&r->mu);
    r->stop = 1;
    pthread_cond_broadcast(&r->cv);
    pthread_mutex_unlock(&r->mu);
    pthread_join(r->th, NULL);
    store_close(r->store);
    pthread_cond_destroy(&r->cv);
    pthread_mutex_destroy(&r->mu);
    free(r);
}

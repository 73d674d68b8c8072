/* Heartbeat listener, detectors and the change queue (see listener.h, HB-L1 to HB-L10).
 *
 * The instance table is an open-addressing hash of entry pointers (ids are
 * never removed, so no tombstones) plus an array of the same pointers for
 * the periodic scan. Receiving uses recvmmsg() in batches after poll(), so
 * thousands of agents cost a few system calls per tick.
 *
 * A batch is handled in two passes. The first runs without the table lock
 * and does what a datagram costs before its MAC is known to be good (HB-L8):
 * parse the fixed header, find the entry by id (slot pointers are published
 * with release stores and never change once set), check the source's token
 * bucket, verify the MAC with the receive thread's own copy of the key
 * (refreshed under the lock only when a registration changed it). The
 * second takes the lock once for the whole batch and applies the verified
 * beats: replay window, rate, detector (HB-L10). */
#define _GNU_SOURCE /* recvmmsg */
#include "detect/listener.h"

#include "util/clock.h"
#include "util/error.h"
#include "util/log.h"
#include "util/parse.h"
#include "util/secret.h"

#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <netdb.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define SLOTS     16384 /* power of two, > HBL_MAX_INSTANCES / 0.7 */
#define BATCH     64
#define RX_ROUNDS 16 /* batches per wake-up before the detectors run */
#define CTL_LEN   CMSG_SPACE(sizeof(uint32_t))

typedef struct {
    double tokens;
    int64_t at_ms;
} bucket;

/* The receive thread's own view of an entry (HB-L8, HB-L10): no other thread
 * reads or writes it, so it needs no lock. */
typedef struct {
    uint32_t gen;            /* the key_gen key was copied at; 0: none */
    uint8_t key[HB_KEY_LEN]; /* the copy verification uses */
    struct sockaddr_storage src;
    socklen_t srclen;      /* the source of the last beat taken; 0: none yet */
    bucket known, other;   /* unverified datagrams from that source / others */
    int64_t refused_at_ms; /* last datagram refused unverified; -1 never (HB-L9) */
} rx_gate;

typedef struct {
    int64_t id;
    uint8_t key[HB_KEY_LEN];
    _Atomic uint32_t key_gen; /* bumped (release store, lock held) when key changes */
    hb_window win;
    det_peer det;
    bucket rate; /* HBL_RATE_PER_S of verified beats */
    int64_t last_wall_ms;
    uint64_t seq, accepted;
    hb_workload workload;
    hb_probe probe;
    uint32_t restarts;
    int preempting;
    int lossy; /* HB-L9: its intake was lossy at the last check */
    int fenced, fence_said; /* HB-L13; its refusal logged */
    rx_gate gate;
} entry;

typedef struct {
    int64_t id;
    const char *what, *from, *to, *reason;
    int64_t at_wall_ms, silent_ms, last_hb_wall_ms;
    double phi;
    hb_workload workload;
    hb_probe probe;
} qev;

struct hbl_server {
    int fd, port;
    dm_instance_persist persist; /* HB-L2 */
    det_params params;
    char secret[SECRET_TOKEN_MAX];
    pthread_t rx, wr;
    int rx_started, wr_started;
    atomic_bool stop; /* raised by hbl_stop, read by both threads */
    /* The receive thread's own (HB-L9): */
    uint32_t rx_drops;              /* the kernel's drop counter last seen */
    uint64_t rx_tick_recv;          /* datagrams read since the last tick */
    uint64_t rx_tick_drops;         /* datagrams the kernel dropped since then */
    double rx_ew_recv, rx_ew_drops; /* their moving sums (HB-L9) */
    int64_t rx_drained_at;          /* when a read last found the socket empty */
    int64_t rx_lossy_until;         /* intake lossy for every instance until then */
    bucket rx_unverified;           /* HB-L8: unverified datagrams from unknown sources */

    pthread_mutex_t reglock; /* registrations, one at a time: db then table */
    pthread_mutex_t lock;    /* the table, the entries, the stats */
    _Atomic(entry *) slot[SLOTS]; /* HB-L10: release stores, lock held; read without it */
    entry *ents[HBL_MAX_INSTANCES];
    int n;
    hbl_stats st; /* under `lock`, but for the two counters below */
    /* HB-L3 changes lost to a full queue, changes handed to the writer: atomics,
     * because the writer and enqueue() count them under `qlock` or none, while
     * hbl_stats_get() copies `st` under `lock`. */
    atomic_uint_least64_t events_lost, events;

    pthread_mutex_t qlock; /* the queue and the subscribers */
    pthread_cond_t qcond;
    qev *q;
    size_t qhead, qlen;
    struct {
        hbl_event_fn fn;
        void *ctx;
    } subs[HBL_SUBSCRIBERS_MAX];
    int nsubs;
    int rec_failing;      /* HB-L12: a record is being retried */
    char rec_reason[256]; /* why, while rec_failing */
    int64_t rec_since_ms; /* since when (wall clock) */
};

/* ---- the table (lock held) ---------------------------------------------- */

static size_t hash_id(int64_t id)
{
    uint64_t x = (uint64_t)id * 0x9e3779b97f4a7c15ull;
    return (size_t)(x >> 50) & (SLOTS - 1);
}

/* With or without the lock (HB-L10): a slot, once set, never changes. */
static entry *find(hbl_server *s, int64_t id)
{
    for (size_t i = hash_id(id);; i = (i + 1) & (SLOTS - 1)) {
        entry *e = atomic_load_explicit(&s->slot[i], memory_order_acquire);
        if (!e || e->id == id)
            return e;
    }
}

/* The entry for id, made when missing; NULL past the cap (HB-L4) or no memory. */
static entry *find_or_add(hbl_server *s, int64_t id)
{
    size_t i = hash_id(id);
    for (entry *o; (o = atomic_load_explicit(&s->slot[i], memory_order_relaxed)) != NULL;
         i = (i + 1) & (SLOTS - 1)) /* relaxed: the lock is held, slots change under it only */
        if (o->id == id)
            return o;
    if (s->n == HBL_MAX_INSTANCES)
        return NULL;
    entry *e = calloc(1, sizeof *e);
    if (!e)
        return NULL;
    e->id = id;
    atomic_store_explicit(&s->slot[i], e, memory_order_release); /* HB-L10: published whole */
    s->ents[s->n++] = e;
    s->st.instances = s->n;
    return e;
}

/* Sets a (re-)registered or loaded entry's key and resets its history. */
static void entry_reset(entry *e, const uint8_t key[HB_KEY_LEN], int64_t now_ms)
{
    memcpy(e->key, key, HB_KEY_LEN);
    uint32_t gen = atomic_load_explicit(&e->key_gen, memory_order_relaxed) + 1;
    atomic_store_explicit(&e->key_gen, gen ? gen : 1, memory_order_release);
    memset(&e->win, 0, sizeof e->win);
    det_peer_init(&e->det, now_ms);
    e->rate = (bucket){HBL_RATE_PER_S, now_ms};
    e->last_wall_ms = -1;
    e->seq = e->accepted = 0;
    e->workload = HB_WL_NONE;
    e->probe = HB_PR_NONE;
    e->restarts = 0;
    e->preempting = 0;
    e->lossy = 0;
}

/* ---- the queue ----------------------------------------------------------- */

static void enqueue(hbl_server *s, const qev *ev)
{
    pthread_mutex_lock(&s->qlock);
    int lost = s->qlen == HBL_QUEUE_MAX;
    if (!lost) {
        s->q[(s->qhead + s->qlen) % HBL_QUEUE_MAX] = *ev;
        s->qlen++;
        pthread_cond_signal(&s->qcond);
    }
    pthread_mutex_unlock(&s->qlock);
    if (lost) { /* HB-L3 */
        atomic_fetch_add_explicit(&s->events_lost, 1, memory_order_relaxed);
        log_warn("instance.event_lost", "instance=%lld what=%s to=%s", (long long)ev->id, ev->what,
                 ev->to);
    }
}

/* Queues a detector change of e (lock held). */
static void queue_change(hbl_server *s, const entry *e, const det_change *c)
{
    qev ev = {.id = e->id,
              .what = "state",
              .from = det_state_name(c->from),
              .to = det_state_name(c->to),
              .reason = c->reason,
              .at_wall_ms = clock_wall_ms(),
              .silent_ms = c->silent_ms,
              .last_hb_wall_ms = e->last_wall_ms,
              .phi = c->phi,
              .workload = e->workload,
              .probe = e->probe};
    enqueue(s, &ev);
}

static void queue_workload(hbl_server *s, const entry *e, hb_workload from)
{
    qev ev = {.id = e->id,
              .what = "workload",
              .from = hb_workload_name(from),
              .to = hb_workload_name(e->workload),
              .reason = "heartbeat",
              .at_wall_ms = e->last_wall_ms,
              .silent_ms = -1,
              .last_hb_wall_ms = e->last_wall_ms,
              .workload = e->workload,
              .probe = e->probe};
    enqueue(s, &ev);
}

/* ---- receiving ----------------------------------------------------------- */

static void queue_intake(hbl_server *s, const entry *e, int held, int64_t now_ms)
{
    qev ev = {.id = e->id,
              .what = "intake",
              .from = held ? "ok" : "lossy",
              .to = held ? "lossy" : "ok",
              .reason = held ? "conviction_held" : "heartbeat",
              .at_wall_ms = clock_wall_ms(),
              .silent_ms = held && e->det.last_ms >= 0 ? now_ms - e->det.last_ms : -1,
              .last_hb_wall_ms = e->last_wall_ms,
              .phi = held ? det_phi(&e->det, &s->params, now_ms) : 0,
              .workload = e->workload,
              .probe = e->probe};
    enqueue(s, &ev);
}

/* ---- before the MAC is verified (no lock: HB-L8, HB-L10) ----------------------- */

static int bucket_take(bucket *b, double rate, double burst, int64_t now_ms)
{
    b->tokens += (double)(now_ms - b->at_ms) * rate / 1000.0;
    if (b->tokens > burst)
        b->tokens = burst;
    b->at_ms = now_ms;
    if (b->tokens < 1)
        return 0;
    b->tokens -= 1;
    return 1;
}

static int same_source(const rx_gate *g, const struct sockaddr_storage *a, socklen_t alen)
{
    if (g->srclen == 0 || g->srclen != alen || g->src.ss_family != a->ss_family)
        return 0;
    if (a->ss_family == AF_INET) {
        const struct sockaddr_in *x = (const void *)&g->src, *y = (const void *)a;
        return x->sin_port == y->sin_port && x->sin_addr.s_addr == y->sin_addr.s_addr;
    }
    const struct sockaddr_in6 *x = (const void *)&g->src, *y = (const void *)a;
    return x->sin6_port == y->sin6_port && memcmp(&x->sin6_addr, &y->sin6_addr, 16) == 0;
}

/* A registration changed e's key: the receive thread takes a copy, under the
 * lock (rare: once per registration), and forgets e's source (HB-L10). */
static void gate_refresh(hbl_server *s, entry *e, int64_t now_ms)
{
    rx_gate *g = &e->gate;
    pthread_mutex_lock(&s->lock);
    memcpy(g->key, e->key, HB_KEY_LEN);
    g->gen = atomic_load_explicit(&e->key_gen, memory_order_relaxed);
    pthread_mutex_unlock(&s->lock);
    g->srclen = 0;
    g->known = (bucket){HBL_KNOWN_SRC_PER_S, now_ms};
    g->other = (bucket){HBL_OTHER_SRC_PER_S, now_ms};
    g->refused_at_ms = -1;
}

/* HB-L8: what a datagram costs before it is trusted: a parse of the fixed
 * header, a lookup, a token bucket, and (within the bucket only) one MAC. */
static hb_reason gate_one(hbl_server *s, const uint8_t *buf, size_t len,
                          const struct sockaddr_storage *from, socklen_t fromlen, int64_t now_ms,
                          hb_packet *p, entry **ret_e)
{
    hb_reason r = hb_parse(buf, len, p);
    if (r != HB_OK)
        return r;
    entry *e = find(s, p->instance_id);
    uint32_t gen = e ? atomic_load_explicit(&e->key_gen, memory_order_acquire) : 0;
    if (gen == 0) /* unknown, or not yet given its key */
        return HB_UNKNOWN_INSTANCE;
    rx_gate *g = &e->gate;
    if (gen != g->gen)
        gate_refresh(s, e, now_ms);
    int ok = same_source(g, from, fromlen)
                 ? bucket_take(&g->known, HBL_KNOWN_SRC_PER_S, HBL_KNOWN_SRC_PER_S, now_ms)
                 : bucket_take(&g->other, HBL_OTHER_SRC_PER_S, HBL_OTHER_SRC_PER_S, now_ms) &&
                       bucket_take(&s->rx_unverified, HBL_UNVERIFIED_PER_S, HBL_UNVERIFIED_PER_S,
                                   now_ms);
    if (!ok) {
        g->refused_at_ms = now_ms; /* HB-L9: that may have been its beat */
        return HB_UNVERIFIED_RATE;
    }
    if ((r = hb_verify(buf, g->key)) != HB_OK)
        return r;
    *ret_e = e;
    return HB_OK;
}

/* ---- verified beats (lock held) ------------------------------------------ */

/* HB-L7: a signed packet whose sequence number is among the two newest taken,
 * arriving within HBL_COPY_MS of the last one taken, is the agent's second
 * copy (agent.h AG-A7): dropped like a replay, but counted apart, and it is
 * neither a new interval for the detector nor a sign of attack. */
static int is_copy(const entry *e, uint64_t seq, int64_t wall_ms)
{
    return e->accepted > 0 && seq <= e->win.top && seq + 2 > e->win.top &&
           wall_ms - e->last_wall_ms < HBL_COPY_MS;
}

/* A datagram whose MAC is good: window, rate, detector (HB-L1). */
static hb_reason accept_verified(hbl_server *s, entry *e, const hb_packet *p, int64_t now_ms)
{
    hb_reason r;
    if (e->fenced) { /* HB-L13 */
        if (!e->fence_said)
            log_warn("instance.heartbeat_refused",
                     "instance=%lld reason=destroyed detail=\"a destroyed instance's heartbeats "
                     "are refused\"",
                     (long long)e->id);
        e->fence_said = 1;
        return HB_FENCED;
    }
    int64_t wall = clock_wall_ms();
    hb_window w = e->win;
    if ((r = hb_window_check(&w, p->seq, p->sent_at_ms, wall)) != HB_OK)
        return r == HB_REPLAY && is_copy(e, p->seq, wall) ? HB_DUPLICATE : r;
    if (!bucket_take(&e->rate, HBL_RATE_PER_S, HBL_RATE_PER_S, now_ms))
        return HB_RATE;
    e->win = w;
    e->last_wall_ms = wall;
    e->seq = p->seq > e->seq ? p->seq : e->seq;
    e->accepted++;
    e->probe = p->probe;
    e->restarts = p->restarts;
    e->preempting = (p->flags & HB_F_PREEMPTING) != 0;
    hb_workload was = e->workload;
    e->workload = p->workload;
    int held = e->det.held;
    det_change c;
    if (det_heartbeat(&e->det, &s->params, now_ms, p->type == HB_T_LEAVING, e->preempting, &c))
        queue_change(s, e, &c);
    if (held) /* HB-L9: the beat came after all */
        queue_intake(s, e, 0, now_ms);
    if (was != e->workload)
        queue_workload(s, e, was);
    return HB_OK;
}

/* HB-L9: the kernel's count of datagrams it dropped for want of buffer space
 * (SO_RXQ_OVFL), as of msg; 1 when it grew since the last one seen. */
static int kernel_dropped(hbl_server *s, struct msghdr *m, uint64_t *ret_delta)
{
    for (struct cmsghdr *c = CMSG_FIRSTHDR(m); c; c = CMSG_NXTHDR(m, c)) {
        if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SO_RXQ_OVFL)
            continue;
        uint32_t n;
        memcpy(&n, CMSG_DATA(c), sizeof n);
        uint32_t d = n - s->rx_drops; /* a wrapping counter */
        s->rx_drops = n;
        *ret_delta += d;
        return d != 0;
    }
    return 0;
}

/* One recvmmsg() batch; returns how many datagrams it read. */
static int receive_batch(hbl_server *s)
{
    static __thread uint8_t bufs[BATCH][HB_PACKET_LEN + 1];
    static __thread uint8_t ctl[BATCH][CTL_LEN];
    static __thread struct sockaddr_storage from[BATCH];
    struct mmsghdr msgs[BATCH];
    struct iovec iov[BATCH];
    hb_packet pk[BATCH];
    entry *ok[BATCH];
    hb_reason why[BATCH];
    memset(msgs, 0, sizeof msgs);
    for (int i = 0; i < BATCH; i++) {
        iov[i].iov_base = bufs[i];
        iov[i].iov_len = sizeof bufs[i]; /* one more than valid: longer is refused */
        msgs[i].msg_hdr.msg_iov = &iov[i];
        msgs[i].msg_hdr.msg_iovlen = 1;
        msgs[i].msg_hdr.msg_name = &from[i];
        msgs[i].msg_hdr.msg_namelen = sizeof from[i];
        msgs[i].msg_hdr.msg_control = ctl[i];
        msgs[i].msg_hdr.msg_controllen = sizeof ctl[i];
    }
    int got = recvmmsg(s->fd, msgs, BATCH, MSG_DONTWAIT, NULL);
    int64_t now = clock_mono_ms();
    if (got < BATCH)
        s->rx_drained_at = now; /* HB-L9: nothing left waiting */
    if (got <= 0)
        return 0;
    uint64_t drops = 0;
    for (int i = 0; i < got; i++) { /* HB-L8: no lock */
        struct msghdr *m = &msgs[i].msg_hdr;
        kernel_dropped(s, m, &drops);
        size_t len = (m->msg_flags & MSG_TRUNC) ? HB_PACKET_LEN + 1 : msgs[i].msg_len;
        ok[i] = NULL;
        why[i] = gate_one(s, bufs[i], len, &from[i], m->msg_namelen, now, &pk[i], &ok[i]);
    }
    pthread_mutex_lock(&s->lock); /* HB-L10: once per batch, for verified beats only */
    for (int i = 0; i < got; i++) {
        if (ok[i] && (why[i] = accept_verified(s, ok[i], &pk[i], now)) == HB_OK) {
            rx_gate *g = &ok[i]->gate; /* the source a good beat came from */
            memcpy(&g->src, &from[i], sizeof from[i]);
            g->srclen = msgs[i].msg_hdr.msg_namelen;
        }
        s->st.received++;
        if (why[i] == HB_OK)
            s->st.accepted++;
        else
            s->st.dropped[why[i]]++;
    }
    s->st.kernel_drops += drops;
    pthread_mutex_unlock(&s->lock);
    s->rx_tick_recv += (uint64_t)got;
    s->rx_tick_drops += drops;
    return got;
}

static int entry_lossy(const hbl_server *s, const entry *e, int64_t now_ms)
{
    return now_ms < s->rx_lossy_until ||
           (e->gate.refused_at_ms >= 0 && now_ms - e->gate.refused_at_ms < HBL_LOSSY_WINDOW_MS);
}

/* HB-L9, for every instance: the kernel dropped more than HBL_LOSSY_DROP_PCT of
 * the datagrams of about the last HBL_LOSSY_WINDOW_MS (moving sums decayed
 * per tick), or the socket has not been found empty for HBL_LAG_MS. Returns
 * 1 when the tick was lagging. */
static int intake_signs(hbl_server *s, int64_t now_ms)
{
    const double keep = 1.0 - (double)HBL_TICK_MS / HBL_LOSSY_WINDOW_MS;
    s->rx_ew_recv = s->rx_ew_recv * keep + (double)s->rx_tick_recv;
    s->rx_ew_drops = s->rx_ew_drops * keep + (double)s->rx_tick_drops;
    s->rx_tick_recv = s->rx_tick_drops = 0;
    int dropping = s->rx_ew_drops * 100 > (s->rx_ew_recv + s->rx_ew_drops) * HBL_LOSSY_DROP_PCT;
    int lagging = now_ms - s->rx_drained_at > HBL_LAG_MS;
    if (dropping || lagging)
        s->rx_lossy_until = now_ms + HBL_LOSSY_WINDOW_MS;
    return lagging;
}

static void check_all(hbl_server *s, int64_t now_ms)
{
    det_change c;
    int lagging = intake_signs(s, now_ms);
    pthread_mutex_lock(&s->lock);
    s->st.lagging += (uint64_t)lagging;
    s->st.intake_lossy = now_ms < s->rx_lossy_until;
    for (int i = 0; i < s->n; i++) {
        entry *e = s->ents[i];
        int held = e->det.held;
        e->lossy = entry_lossy(s, e, now_ms);
        if (det_check_lossy(&e->det, &s->params, now_ms, e->lossy, &c))
            queue_change(s, e, &c);
        else if (!held && e->det.held) /* HB-L9: said once per hold */
            queue_intake(s, e, 1, now_ms);
    }
    pthread_mutex_unlock(&s->lock);
}

static void *rx_main(void *arg)
{
    hbl_server *s = arg;
    int64_t next_tick = clock_mono_ms() + HBL_TICK_MS;
    s->rx_drained_at = clock_mono_ms();
    while (!atomic_load(&s->stop)) {
        int64_t now = clock_mono_ms();
        int wait = next_tick > now ? (int)(next_tick - now) : 0;
        struct pollfd pfd = {.fd = s->fd, .events = POLLIN};
        if (poll(&pfd, 1, wait) > 0 && (pfd.revents & POLLIN)) {
            /* ticks must not starve */
            for (int round = 0; round < RX_ROUNDS && !atomic_load(&s->stop); round++)
                if (receive_batch(s) < BATCH)
                    break;
        } else {
            s->rx_drained_at = clock_mono_ms(); /* HB-L9: poll found nothing */
        }
        now = clock_mono_ms();
        if (now >= next_tick) {
            check_all(s, now);
            next_tick = now + HBL_TICK_MS;
        }
    }
    return NULL;
}

/* ---- persisting and publishing ------------------------------------------- */

#define RETRY_FIRST_MS 100
#define RETRY_MAX_MS   2000
#define RETRY_LOG_MS   10000 /* a record that keeps failing is said again this often */

/* HB-L12: the writer thread's view of a record that failed, read by
 * hbl_storage_degraded() under qlock. */
static void set_failing(hbl_server *s, const char *err)
{
    pthread_mutex_lock(&s->qlock);
    s->rec_failing = err != NULL;
    if (err) {
        snprintf(s->rec_reason, sizeof s->rec_reason, "cannot record an instance change: %.180s",
                 *err ? err : "storage error");
        s->rec_since_ms = clock_wall_ms();
    }
    pthread_mutex_unlock(&s->qlock);
}

/* HB-L2, HB-L12: q is recorded, retried with backoff while the record fails
 * (nothing behind it in the queue goes first), then published. Only a stop
 * abandons it (one attempt each while stopping): the restarted listener
 * loads the last state stored and judges it again from the start (HB-L5). */
static void persist_and_publish(hbl_server *s, const qev *q)
{
    dm_instance_event ev = {.instance_id = q->id,
                            .at_ms = q->at_wall_ms,
                            .silent_ms = q->silent_ms < 0 ? DM_NULL : q->silent_ms,
                            .phi_milli = q->phi > 0 ? (int64_t)(q->phi * 1000) : DM_NULL};
    snprintf(ev.what, sizeof ev.what, "%s", q->what);
    snprintf(ev.from, sizeof ev.from, "%s", q->from);
    snprintf(ev.to, sizeof ev.to, "%s", q->to);
    snprintf(ev.reason, sizeof ev.reason, "%s", q->reason);
    char err[512] = "", qe[600];
    int64_t wait_ms = RETRY_FIRST_MS, next_log_ms = 0;
    int rc, attempts = 0;
    for (;;) {
        err[0] = '\0';
        attempts++;
        rc = s->persist.record(
            s->persist.ctx, &ev, hb_workload_name(q->workload), hb_probe_name(q->probe),
            q->last_hb_wall_ms < 0 ? DM_NULL : q->last_hb_wall_ms, err, sizeof err);
        if (rc == 0 || s->stop)
            break;
        if (attempts == 1)
            set_failing(s, err);
        int64_t now = clock_mono_ms();
        if (now >= next_log_ms) { /* HB-L12: bounded noise */
            log_error("instance.record_failed",
                      "instance=%lld what=%s from=%s to=%s attempts=%d retry_in_ms=%lld error=%s",
                      (long long)q->id, q->what, q->from, q->to, attempts, (long long)wait_ms,
                      log_quote(qe, sizeof qe, err));
            next_log_ms = now + RETRY_LOG_MS;
        }
        if (clock_sleep_ms(wait_ms, &s->stop))
            break;
        wait_ms = wait_ms * 2 > RETRY_MAX_MS ? RETRY_MAX_MS : wait_ms * 2;
    }
    if (attempts > 1)
        set_failing(s, NULL);
    if (rc) {
        log_error("instance.record_abandoned",
                  "instance=%lld what=%s from=%s to=%s attempts=%d reason=stopping error=%s",
                  (long long)q->id, q->what, q->from, q->to, attempts,
                  log_quote(qe, sizeof qe, err));
        return; /* HB-L2: not published */
    }
    if (attempts > 1)
        log_info("instance.record_landed", "instance=%lld what=%s to=%s attempts=%d",
                 (long long)q->id, q->what, q->to, attempts);
    log_info("instance.changed",
             "instance=%lld what=%s from=%s to=%s reason=%s silent_ms=%lld phi=%.2f",
             (long long)q->id, q->what, q->from, q->to, q->reason, (long long)q->silent_ms, q->phi);
    hbl_event pub = {q->id,     q->what,       q->from,      q->to,
                     q->reason, q->at_wall_ms, q->silent_ms, q->phi};
    pthread_mutex_lock(&s->qlock);
    int n = s->nsubs;
    pthread_mutex_unlock(&s->qlock);
    for (int i = 0; i < n; i++)
        s->subs[i].fn(&pub, s->subs[i].ctx);
}

int hbl_storage_degraded(hbl_server *s, char *reason, size_t reasonlen, int64_t *ret_since_ms)
{
    if (!s)
        return 0;
    pthread_mutex_lock(&s->qlock);
    int bad = s->rec_failing;
    if (bad && reason && reasonlen)
        snprintf(reason, reasonlen, "%s", s->rec_reason);
    if (bad && ret_since_ms)
        *ret_since_ms = s->rec_since_ms;
    pthread_mutex_unlock(&s->qlock);
    return bad;
}

static void *wr_main(void *arg)
{
    hbl_server *s = arg;
    pthread_mutex_lock(&s->qlock);
    for (;;) {
        while (s->qlen == 0 && !atomic_load(&s->stop))
            pthread_cond_wait(&s->qcond, &s->qlock);
        if (s->qlen == 0)
            break; /* stopping, and everything is persisted */
        qev q = s->q[s->qhead];
        s->qhead = (s->qhead + 1) % HBL_QUEUE_MAX;
        s->qlen--;
        atomic_fetch_add_explicit(&s->events, 1, memory_order_relaxed);
        pthread_mutex_unlock(&s->qlock);
        persist_and_publish(s, &q);
        pthread_mutex_lock(&s->qlock);
    }
    pthread_mutex_unlock(&s->qlock);
    return NULL;
}

/* ---- start and stop ------------------------------------------------------ */

static int bind_udp(hbl_server *s, const char *listen, char *err, size_t errlen)
{
    char host[256], portstr[8];
    int port;
    if (parse_host_port(listen, host, sizeof host, &port) != 0)
        return dm_fail(err, errlen, DM_E_INVALID,
                       "bad heartbeat listen address '%.200s' (expected HOST:PORT)", listen);
    snprintf(portstr, sizeof portstr, "%d", port);
    struct addrinfo hints = {.ai_socktype = SOCK_DGRAM, .ai_flags = AI_NUMERICSERV}, *res = NULL;
    int gai = getaddrinfo(host, portstr, &hints, &res);
    if (gai != 0 || !res)
        return dm_fail(err, errlen, DM_E_INVALID, "cannot resolve '%.200s': %s", host,
                       gai_strerror(gai));
    int rc = 0, fd = socket(res->ai_family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    int rcvbuf = HBL_RCVBUF, one = 1; /* bursts of thousands of agents */
    if (fd >= 0 && setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &rcvbuf, sizeof rcvbuf) != 0)
        rcvbuf = 4 << 20; /* without CAP_NET_ADMIN: what net.core.rmem_max allows */
    if (fd < 0 || (setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf),
                   setsockopt(fd, SOL_SOCKET, SO_RXQ_OVFL, &one, sizeof one), /* HB-L9 */
                   bind(fd, res->ai_addr, res->ai_addrlen)) != 0) {
        rc = dm_fail(err, errlen, DM_E_UNAVAILABLE, "cannot listen for heartbeats on %.200s: %s",
                     listen, strerror(errno));
        goto out;
    }
    struct sockaddr_storage ss;
    socklen_t sl = sizeof ss;
    getsockname(fd, (struct sockaddr *)&ss, &sl);
    s->port = ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
                                             : ((struct sockaddr_in *)&ss)->sin_port);
    s->fd = fd;
    fd = -1;
out:
    if (fd >= 0)
        close(fd);
    freeaddrinfo(res);
    return rc;
}

/* HB-L5: the instances of the database, their keys re-derived. */
static int load_instances(hbl_server *s, char *err, size_t errlen)
{
    dm_instance *v = NULL;
    size_t n = 0;
    int rc = s->persist.load(s->persist.ctx, &v, &n, err, errlen);
    int64_t now = clock_mono_ms();
    for (size_t i = 0; rc == 0 && i < n; i++) {
        uint8_t key[HB_KEY_LEN];
        entry *e = find_or_add(s, v[i].instance_id);
        if (!e || hb_key_derive(s->secret, v[i].instance_id, v[i].key_id, key) != 0) {
            rc = dm_fail(err, errlen, e ? DM_E_INTERNAL : DM_E_TOO_BIG, "cannot load instance %lld",
                         (long long)v[i].instance_id);
            break;
        }
        entry_reset(e, key, now);
        explicit_bzero(key, sizeof key);
        det_state st = DET_PENDING;
        det_state_parse(v[i].state, &st);
        if (st == DET_HEALTHY || st == DET_SUSPECT || st == DET_PREEMPTING)
            e->det.last_ms = now;                            /* judged from now on */
        det_transition(&e->det, st, now, 0, "loaded", NULL); /* HB-D1 of detector.h */
        hb_workload_parse(v[i].workload, &e->workload);
        e->fenced = v[i].fenced; /* HB-L13 */
    }
    free(v);
    return rc;
}

static int init_server(hbl_server *s, const hbl_opts *o, char *err, size_t errlen)
{
    int created = 0, rc;
    s->fd = -1;
    s->persist = *o->persist;
    det_params_for_interval(&s->params, o->interval_ms > 0 ? o->interval_ms : 200);
    pthread_mutex_init(&s->reglock, NULL);
    pthread_mutex_init(&s->lock, NULL);
    pthread_mutex_init(&s->qlock, NULL);
    pthread_cond_init(&s->qcond, NULL);
    if (!(s->q = calloc(HBL_QUEUE_MAX, sizeof *s->q)))
        return dm_fail(err, errlen, -ENOMEM, "out of memory");
    if ((rc = secret_load_or_create(o->secret_path, s->secret, sizeof s->secret, &created)) != 0)
        return dm_fail(err, errlen, rc, "cannot read or create the heartbeat secret %.300s: %s",
                       o->secret_path, dm_strerror(rc));
    if ((rc = bind_udp(s, o->listen, err, errlen)) != 0)
        return rc;
    return load_instances(s, err, errlen);
}

int hbl_start(const hbl_opts *o, hbl_server **ret, char *err, size_t errlen)
{
    if (!o || !o->listen || !o->persist || !o->persist->load || !o->persist->register_one ||
        !o->persist->record || !o->secret_path || !ret)
        return dm_fail(err, errlen, DM_E_INVALID, "heartbeat listener: missing options");
    hbl_server *s = calloc(1, sizeof *s);
    if (!s)
        return dm_fail(err, errlen, -ENOMEM, "out of memory");
    int rc = init_server(s, o, err, errlen);
    if (rc == 0 && (rc = -pthread_create(&s->wr, NULL, wr_main, s)) == 0)
        s->wr_started = 1;
    if (rc == 0 && (rc = -pthread_create(&s->rx, NULL, rx_main, s)) == 0)
        s->rx_started = 1;
    if (rc) {
        if (!err || !*err)
            dm_fail(err, errlen, rc, "heartbeat listener: %s", dm_strerror(rc));
        hbl_stop(s);
        return rc;
    }
    *ret = s;
    return 0;
}

int hbl_start_server(const char *hb_listen, const char *api_listen, const char *home,
                     const dm_instance_persist *persist, hbl_server **ret, char *err, size_t errlen)
{
    char listen[300], secret[PATH_MAX], host[256], q[400];
    int port;
    if (hb_listen && *hb_listen)
        snprintf(listen, sizeof listen, "%s", hb_listen);
    else if (parse_host_port(api_listen, host, sizeof host, &port) == 0 && port < 65535)
        snprintf(listen, sizeof listen, strchr(host, ':') ? "[%s]:%d" : "%s:%d", host,
                 port ? port + 1 : 0); /* 8700 -> HB_DEFAULT_PORT */
    else
        return dm_fail(err, errlen, DM_E_INVALID, "bad listen address '%.200s'", api_listen);
    if ((size_t)snprintf(secret, sizeof secret, "%s/heartbeat.secret", home) >= sizeof secret)
        return dm_fail(err, errlen, DM_E_INVALID, "home directory path too long");
    hbl_opts o = {.listen = listen, .persist = persist, .secret_path = secret};
    int rc = hbl_start(&o, ret, err, errlen);
    if (rc == 0)
        log_info("heartbeat.listening", "listen=%s port=%d instances=%d",
                 log_quote(q, sizeof q, listen), (*ret)->port, (*ret)->n);
    return rc;
}

int hbl_port(const hbl_server *s)
{
    return s ? s->port : -1;
}

void hbl_stop(hbl_server *s)
{
    if (!s)
        return;
    atomic_store(&s->stop, true);
    if (s->rx_started)
        pthread_join(s->rx, NULL);
    pthread_mutex_lock(&s->qlock);
    pthread_cond_broadcast(&s->qcond);
    pthread_mutex_unlock(&s->qlock);
    if (s->wr_started)
        pthread_join(s->wr, NULL);
    if (s->fd >= 0)
        close(s->fd);
    for (int i = 0; i < s->n; i++) {
        explicit_bzero(s->ents[i]->key, HB_KEY_LEN);
        free(s->ents[i]);
    }
    explicit_bzero(s->secret, sizeof s->secret);
    free(s->q);
    pthread_cond_destroy(&s->qcond);
    pthread_mutex_destroy(&s->qlock);
    pthread_mutex_destroy(&s->lock);
    pthread_mutex_destroy(&s->reglock);
    free(s);
}

int hbl_subscribe(hbl_server *s, hbl_event_fn fn, void *ctx)
{
    int rc = 0;
    pthread_mutex_lock(&s->qlock);
    if (s->nsubs == HBL_SUBSCRIBERS_MAX) {
        rc = DM_E_TOO_BIG;
    } else {
        s->subs[s->nsubs].fn = fn;
        s->subs[s->nsubs].ctx = ctx;
        s->nsubs++;
    }
    pthread_mutex_unlock(&s->qlock);
    return rc;
}

/* ---- registration and the live view ------------------------------------- */

static void fill_reg(dm_instance *in, const hbl_reg *r)
{
    memset(in, 0, sizeof *in);
    in->instance_id = r->instance_id;
    snprintf(in->kind, sizeof in->kind, "%s", r->kind ? r->kind : "gpu");
    snprintf(in->state, sizeof in->state, "%s", det_state_name(DET_PENDING));
    in->registered_at_ms = clock_wall_ms();
    in->last_heartbeat_ms = DM_NULL;
    snprintf(in->workload_cmd, sizeof in->workload_cmd, "%s",
             r->workload_cmd ? r->workload_cmd : "");
    snprintf(in->probe_spec, sizeof in->probe_spec, "%s", r->probe_spec ? r->probe_spec : "");
    snprintf(in->hostname, sizeof in->hostname, "%s", r->hostname ? r->hostname : "");
}

int hbl_register(hbl_server *s, const hbl_reg *r, char ret_key_hex[HB_KEY_HEX_LEN + 1], char *err,
                 size_t errlen)
{
    if (!s || !r || r->instance_id < 1 || r->instance_id > HB_ID_MAX)
        return dm_fail(err, errlen, DM_E_INVALID, "bad instance id");
    dm_instance in;
    uint8_t key[HB_KEY_LEN];
    fill_reg(&in, r);
    int rc = secret_random_hex(in.key_id, sizeof in.key_id, 16);
    if (rc == 0 && hb_key_derive(s->secret, in.instance_id, in.key_id, key) != 0)
        rc = DM_E_INTERNAL;
    if (rc)
        return dm_fail(err, errlen, rc, "cannot make a key: %s", dm_strerror(rc));
    /* The database write outside the table lock (heartbeats keep flowing
     * while it runs); reglock keeps the database and the table in the same
     * order when two registrations of one id race. */
    pthread_mutex_lock(&s->reglock);
    pthread_mutex_lock(&s->lock);
    int full = !find(s, in.instance_id) && s->n == HBL_MAX_INSTANCES;
    pthread_mutex_unlock(&s->lock);
    if (full)
        rc = dm_fail(err, errlen, DM_E_TOO_BIG, "at most %d instances", HBL_MAX_INSTANCES);
    if (rc == 0 && (rc = s->persist.register_one(s->persist.ctx, &in, err, errlen)) == 0) {
        pthread_mutex_lock(&s->lock);
        entry *e = find_or_add(s, in.instance_id);
        if (e) {
            det_peer was = e->det;
            int live =
                was.state == DET_HEALTHY || was.state == DET_SUSPECT || was.state == DET_PREEMPTING;
            entry_reset(e, key, clock_mono_ms());
            if (live)
                e->det = was; /* HB-L11: still judged on its silence */
        }
        pthread_mutex_unlock(&s->lock);
        if (!e)
            rc = dm_fail(err, errlen, -ENOMEM, "out of memory");
    }
    pthread_mutex_unlock(&s->reglock);
    if (rc == DM_E_CONFLICT) { /* HB-L13: the persistence refused a fenced instance */
        char q[600];
        hbl_fence(s, in.instance_id);
        log_warn("instance.register_refused", "instance=%lld reason=%s", (long long)in.instance_id,
                 log_quote(q, sizeof q, err));
    }
    if (rc == 0)
        hb_key_to_hex(key, ret_key_hex);
    explicit_bzero(key, sizeof key);
    if (rc == 0)
        log_info("instance.registered", "instance=%lld kind=%s", (long long)in.instance_id,
                 in.kind);
    return rc;
}

void hbl_fence(hbl_server *s, int64_t id)
{
    if (!s)
        return;
    pthread_mutex_lock(&s->lock);
    entry *e = find(s, id);
    int was = e ? e->fenced : 1;
    if (e)
        e->fenced = 1;
    pthread_mutex_unlock(&s->lock);
    if (!was)
        log_info("instance.fenced", "instance=%lld (its registrations and heartbeats are refused)",
                 (long long)id);
}

int hbl_live_get(hbl_server *s, int64_t id, hbl_live *ret)
{
    pthread_mutex_lock(&s->lock);
    entry *e = find(s, id);
    if (e) {
        int64_t now = clock_mono_ms();
        ret->state = e->det.state;
        ret->last_heartbeat_wall_ms = e->last_wall_ms;
        ret->silent_ms = e->last_wall_ms < 0 || e->det.last_ms < 0 ? -1 : now - e->det.last_ms;
        ret->phi = det_phi(&e->det, &s->params, now);
        ret->seq = e->seq;
        ret->accepted = e->accepted;
        ret->workload = e->workload;
        ret->probe = e->probe;
        ret->restarts = e->restarts;
        ret->preempting = e->preempting;
        ret->intake_lossy = e->lossy;
        ret->conviction_held = e->det.held;
    }
    pthread_mutex_unlock(&s->lock);
    return e ? 0 : DM_E_NOT_FOUND;
}

void hbl_stats_get(hbl_server *s, hbl_stats *ret)
{
    pthread_mutex_lock(&s->lock);
    *ret = s->st;
    memset(ret->by_state, 0, sizeof ret->by_state);
    for (int i = 0; i < s->n; i++)
        ret->by_state[s->ents[i]->det.state]++;
    pthread_mutex_unlock(&s->lock);
    ret->events = atomic_load_explicit(&s->events, memory_order_relaxed);
    ret->events_lost = atomic_load_explicit(&s->events_lost, memory_order_relaxed);
}

/* Store locks: a snapshot create and a prune never run on one store at once.
 *
 * Prune deletes what no kept snapshot uses; a create running at the same
 * time may have written packs that no index names yet, or may skip storing
 * a chunk because the repository already holds it (SNAP-RP2) in a pack that
 * prune is about to delete. Either would leave the new snapshot naming
 * chunks that are gone. So, as restic does, each create holds a shared lock
 * and prune an exclusive one, as objects in the store itself (the creates
 * of agents on other machines see them too):
 *
 *   locks/<kind>-<ms, 16 digits>-<16 hex random>     kind: create | prune
 *   content: "dumont-lock v1\nkind=…\nhost=…\npid=…\n"
 *
 * SNAP-L1: a taker writes its own lock first, then lists the others: of two
 *     takers that conflict, the later one's listing sees the earlier one's
 *     lock (stores are read-after-write consistent), so they cannot both go
 *     on. A create that meets a live prune lock removes its own and waits
 *     (SNAP_LOCK_WAIT_MS), then fails with DM_E_BUSY; a prune that meets any
 *     other live lock removes its own and fails with DM_E_BUSY at once (the
 *     failover's snapshot goes first; prune is maintenance).
 * SNAP-L2: a lock is refreshed every SNAP_LOCK_REFRESH_MS by a thread of its
 *     holder (a new object with the new time, then the old one deleted), and
 *     is stale once its time is SNAP_LOCK_STALE_MS old, or at once when it
 *     names this machine's host and a process that no longer exists (a
 *     create killed on this machine). A stale lock blocks nobody; prune
 *     deletes the stale locks it finds.
 * SNAP-L3: a lock whose key holds no readable time is treated as live: it is
 *     not ours to judge, and the message names its key (remove it by hand). */
#include "snapshot/snap_internal.h"

#include "util/clock.h"
#include "util/error.h"
#include "util/log.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

struct snap_lock {
    dm_store *s;
    int exclusive;
    char key[STORE_KEY_MAX];
    pthread_t th;
    int started, stop;
    pthread_mutex_t mu;
    pthread_cond_t cv;
};

static const char *kind_name(int exclusive)
{
    return exclusive ? "prune" : "create";
}

static int lock_put(snap_lock *l, char *err, size_t errlen)
{
    char host[256] = "", body[512], key[STORE_KEY_MAX];
    uint64_t rnd = 0;
    if (getrandom(&rnd, sizeof rnd, 0) != (ssize_t)sizeof rnd)
        rnd = (uint64_t)clock_mono_us() ^ ((uint64_t)getpid() << 32);
    gethostname(host, sizeof host - 1);
    snprintf(key, sizeof key, "locks/%s-%016" PRId64 "-%016" PRIx64, kind_name(l->exclusive),
             clock_wall_ms(), rnd);
    int n = snprintf(body, sizeof body, "dumont-lock v1\nkind=%s\nhost=%s\npid=%ld\n",
                     kind_name(l->exclusive), host, (long)getpid());
    int rc = store_put(l->s, key, body, (size_t)n, err, errlen);
    if (rc == 0)
        snprintf(l->key, sizeof l->key, "%s", key);
    return rc;
}

/* SNAP-L2: the holder's refresher. */
static void *refresh_main(void *arg)
{
    snap_lock *l = arg;
    pthread_mutex_lock(&l->mu);
    while (!l->stop) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_sec += SNAP_LOCK_REFRESH_MS / 1000;
        if (pthread_cond_timedwait(&l->cv, &l->mu, &ts) != ETIMEDOUT || l->stop)
            continue;
        char old[STORE_KEY_MAX], err[256];
        snprintf(old, sizeof old, "%s", l->key);
        if (lock_put(l, err, sizeof err) == 0)
            store_delete(l->s, old, err, sizeof err);
        else
            log_warn("snapshot.lock.refresh", "key=%s error=\"%s\"", old, err);
    }
    pthread_mutex_unlock(&l->mu);
    return NULL;
}

typedef struct {
    char kind[16];
    int64_t time_ms; /* -1: unknown */
    char key[STORE_KEY_MAX];
} lock_key;

typedef struct {
    lock_key *v;
    size_t n, cap;
} lock_list;

static int collect(const char *key, uint64_t size, void *ctx)
{
    lock_list *l = ctx;
    (void)size;
    if (l->n == l->cap) {
        size_t nc = l->cap ? l->cap * 2 : 8;
        lock_key *nv = l->n >= 10000 ? NULL : realloc(l->v, nc * sizeof *nv);
        if (!nv)
            return DM_E_TOO_BIG;
        l->v = nv;
        l->cap = nc;
    }
    lock_key *k = &l->v[l->n++];
    memset(k, 0, sizeof *k);
    snprintf(k->key, sizeof k->key, "%s", key);
    const char *name = key + strlen("locks/");
    const char *d1 = strchr(name, '-');
    k->time_ms = -1;
    if (d1 && (size_t)(d1 - name) < sizeof k->kind) {
        memcpy(k->kind, name, (size_t)(d1 - name));
        char *end = NULL;
        long long t = strtoll(d1 + 1, &end, 10);
        if (end && *end == '-' && end - (d1 + 1) == 16 && t >= 0)
            k->time_ms = t;
    }
    return 0;
}

/* Host and pid written in the lock, for messages and SNAP-L2's local check. */
static void lock_owner(dm_store *s, const char *key, char *host, size_t hostlen, long *pid)
{
    char err[256];
    void *data = NULL;
    size_t len = 0;
    host[0] = '\0';
    *pid = 0;
    if (store_get(s, key, 1024, &data, &len, err, sizeof err) != 0)
        return;
    char buf[1025];
    memcpy(buf, data, len);
    buf[len] = '\0';
    free(data);
    const char *h = strstr(buf, "\nhost="), *p = strstr(buf, "\npid=");
    if (h) {
        h += 6;
        size_t n = strcspn(h, "\n");
        n = n < hostlen - 1 ? n : hostlen - 1;
        memcpy(host, h, n);
        host[n] = '\0';
        for (size_t i = 0; i < n; i++)
            if (host[i] < 0x21 || host[i] > 0x7e)
                host[i] = '?'; /* from the store: printable only */
    }
    if (p)
        *pid = strtol(p + 5, NULL, 10);
}

/* SNAP-L2: 1 if the lock blocks nobody any more. */
static int lock_stale(dm_store *s, const lock_key *k, int64_t now, char *who, size_t wholen)
{
    char host[256], me[256] = "";
    long pid;
    lock_owner(s, k->key, host, sizeof host, &pid);
    snprintf(who, wholen, "%s on %s, pid %ld", k->kind[0] ? k->kind : "?",
             host[0] ? host : "an unknown host", pid);
    if (k->time_ms >= 0 && now - k->time_ms > SNAP_LOCK_STALE_MS)
        return 1;
    gethostname(me, sizeof me - 1);
    if (host[0] && strcmp(host, me) == 0 && pid > 0 && kill((pid_t)pid, 0) != 0 && errno == ESRCH)
        return 1;
    return 0;
}

/* One round of SNAP-L1 after our lock is in place: 0 when nothing live
 * conflicts; DM_E_BUSY with the other holder in err otherwise. */
static int check_others(snap_lock *l, char *err, size_t errlen)
{
    lock_list ll = {0};
    int rc = store_list(l->s, "locks/", collect, &ll, err, errlen);
    int64_t now = clock_wall_ms();
    for (size_t i = 0; rc == 0 && i < ll.n; i++) {
        const lock_key *k = &ll.v[i];
        char who[400];
        if (!strcmp(k->key, l->key))
            continue;
        int is_prune = !strcmp(k->kind, "prune");
        if (!l->exclusive && !is_prune && k->kind[0])
            continue; /* creates share */
        if (lock_stale(l->s, k, now, who, sizeof who)) {
            if (l->exclusive) { /* SNAP-L2: prune clears the stale ones */
                char e2[256];
                log_info("snapshot.lock.stale", "key=%s removed=1", k->key);
                store_delete(l->s, k->key, e2, sizeof e2);
            }
            continue;
        }
        char since[32];
        clock_format_iso(k->time_ms > 0 ? k->time_ms : 0, since, sizeof since);
        rc = dm_fail(err, errlen, DM_E_BUSY, "the store is in use by a %s (since %s, lock %s)",
                     who, k->time_ms > 0 ? since : "?", k->key);
    }
    free(ll.v);
    return rc;
}

int snap_lock_take(dm_store *s, int exclusive, snap_lock **ret, char *err, size_t errlen)
{
    snap_lock *l = calloc(1, sizeof *l);
    if (!l)
        return dm_fail(err, errlen, -ENOMEM, "lock: out of memory");
    l->s = s;
    l->exclusive = exclusive;
    pthread_mutex_init(&l->mu, NULL);
    pthread_cond_init(&l->cv, NULL);
    int64_t deadline = clock_mono_ms() + (exclusive ? 0 : SNAP_LOCK_WAIT_MS);
    int rc, logged = 0;
    for (;;) {
        char e2[256];
        if ((rc = lock_put(l, err, errlen)) != 0)
            break;
        if ((rc = check_others(l, err, errlen)) != DM_E_BUSY)
            break;
        store_delete(s, l->key, e2, sizeof e2); /* SNAP-L1: step back */
        l->key[0] = '\0';
        if (clock_mono_ms() >= deadline)
            break;
        if (!logged++)
            log_info("snapshot.lock.wait", "why=\"%s\"", err);
        clock_sleep_ms(500, NULL);
    }
    if (rc == 0 && pthread_create(&l->th, NULL, refresh_main, l) == 0)
        l->started = 1;
    if (rc != 0) {
        char msg[600];
        snprintf(msg, sizeof msg, "%s", err);
        dm_fail(err, errlen, rc, "%s: %s", exclusive ? "prune" : "create", msg);
        snap_lock_release(l);
        return rc;
    }
    *ret = l;
    return 0;
}

void snap_lock_release(snap_lock *l)
{
    if (!l)
        return;
    pthread_mutex_lock(&l->mu);
    l->stop = 1;
    pthread_cond_broadcast(&l->cv);
    pthread_mutex_unlock(&l->mu);
    if (l->started)
        pthread_join(l->th, NULL);
    if (l->key[0]) {
        char err[256];
        store_delete(l->s, l->key, err, sizeof err);
    }
    pthread_mutex_destroy(&l->mu);
    pthread_cond_destroy(&l->cv);
    free(l);
}

/* The control channel, controller side (see channel.h for PROV-CH1 to PROV-CH5).
 *
 * One mutex and one condition variable for every instance: a put or an
 * answer bumps `gen` and broadcasts; each waiter (a call waiting for its
 * answer, a poll waiting for a command) wakes, reads the database again and
 * goes back to sleep until its deadline if nothing it wants is there. The
 * database is the truth (PROV-CH1); the memory holds only who waits and when
 * each instance last polled. A broadcast wakes a few threads needlessly; the
 * waiters are few (PROV-CH2) and a wake-up is one indexed read. */
#define _GNU_SOURCE
#include "provider/channel.h"

#include "util/clock.h"
#include "util/error.h"
#include "util/log.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define HEARD_MAX 256

struct prov_channel {
    dm_db *db;
    pthread_mutex_t lock;
    pthread_cond_t changed; /* CLOCK_MONOTONIC */
    uint64_t gen;
    int stopping;
    int waiters; /* polls waiting (PROV-CH2) */
    int64_t lease_ms;   /* PROV-CH6 */
    int64_t started_ms; /* monotonic, at chan_open (PROV-CH6) */
    struct {
        int64_t id, mono_ms;
    } heard[HEARD_MAX]; /* PROV-CH5 */
};

int chan_open(dm_db *db, prov_channel **ret, char *err, size_t errlen)
{
    if (!db || !ret)
        return dm_fail(err, errlen, DM_E_INVALID, "channel: no database");
    prov_channel *c = calloc(1, sizeof *c);
    if (!c)
        return dm_fail(err, errlen, -ENOMEM, "channel: out of memory");
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&c->changed, &ca);
    pthread_condattr_destroy(&ca);
    pthread_mutex_init(&c->lock, NULL);
    c->db = db;
    c->lease_ms = CHAN_LEASE_DEFAULT_MS;
    c->started_ms = clock_mono_ms();
    *ret = c;
    return 0;
}

void chan_shutdown(prov_channel *c)
{
    if (!c)
        return;
    pthread_mutex_lock(&c->lock);
    c->stopping = 1;
    c->gen++;
    pthread_cond_broadcast(&c->changed);
    pthread_mutex_unlock(&c->lock);
}

void chan_close(prov_channel *c)
{
    if (!c)
        return;
    pthread_cond_destroy(&c->changed);
    pthread_mutex_destroy(&c->lock);
    free(c);
}

static void bump(prov_channel *c)
{
    pthread_mutex_lock(&c->lock);
    c->gen++;
    pthread_cond_broadcast(&c->changed);
    pthread_mutex_unlock(&c->lock);
}

/* Waits (lock held) until gen moves past seen or the monotonic deadline;
 * returns the new gen. */
static uint64_t wait_change(prov_channel *c, uint64_t seen, int64_t deadline_ms)
{
    struct timespec ts = {.tv_sec = deadline_ms / 1000, .tv_nsec = (deadline_ms % 1000) * 1000000L};
    while (c->gen == seen && !c->stopping && clock_mono_ms() < deadline_ms)
        if (pthread_cond_timedwait(&c->changed, &c->lock, &ts) == ETIMEDOUT)
            break;
    return c->gen;
}

static void heard(prov_channel *c, int64_t id)
{
    int slot = 0;
    for (int i = 0; i < HEARD_MAX; i++) {
        if (c->heard[i].id == id) {
            slot = i;
            break;
        }
        if (c->heard[i].mono_ms < c->heard[slot].mono_ms) /* the oldest (or a free one) */
            slot = i;
    }
    c->heard[slot].id = id;
    c->heard[slot].mono_ms = clock_mono_ms();
}

static int64_t heard_locked(const prov_channel *c, int64_t id);

int64_t chan_last_heard(prov_channel *c, int64_t instance_id)
{
    if (!c)
        return -1;
    pthread_mutex_lock(&c->lock);
    int64_t r = heard_locked(c, instance_id);
    pthread_mutex_unlock(&c->lock);
    return r;
}

void chan_set_lease(prov_channel *c, int64_t lease_ms)
{
    if (c)
        c->lease_ms = lease_ms > 0 ? lease_ms : CHAN_LEASE_DEFAULT_MS;
}

int64_t chan_lease_ms(const prov_channel *c)
{
    return c ? c->lease_ms : CHAN_LEASE_DEFAULT_MS;
}

int chan_lease_expired(prov_channel *c, int64_t instance_id, int64_t margin_ms)
{
    if (!c)
        return 0;
    int64_t h = chan_last_heard(c, instance_id);
    int64_t since = h >= 0 ? h : c->started_ms;
    return clock_mono_ms() - since > c->lease_ms + (margin_ms > 0 ? margin_ms : 0);
}

/* Lock held: the instance's last poll, -1 never (PROV-CH5). */
static int64_t heard_locked(const prov_channel *c, int64_t id)
{
    for (int i = 0; i < HEARD_MAX; i++)
        if (c->heard[i].id == id)
            return c->heard[i].mono_ms;
    return -1;
}

int chan_call(prov_channel *c, int64_t instance_id, int64_t epoch, const char *id,
              const char *kind, const char *args, int64_t timeout_ms, db_command *ret, char *err,
              size_t errlen)
{
    if (!c || !id || !kind || !ret || strlen(id) >= DB_CMD_ID_MAX ||
        strlen(kind) >= DB_CMD_KIND_MAX || (args && strlen(args) >= DB_CMD_ARGS_MAX))
        return dm_fail(err, errlen, DM_E_INVALID, "channel: bad command");
    db_command want = {.instance_id = instance_id, .epoch = epoch, .created_ms = clock_wall_ms()};
    snprintf(want.id, sizeof want.id, "%s", id);
    snprintf(want.kind, sizeof want.kind, "%s", kind);
    snprintf(want.args, sizeof want.args, "%s", args ? args : "{}");
    int rc = db_command_put(c->db, &want, ret, err, errlen); /* PROV-CH1 */
    if (rc)
        return rc;
    if (strcmp(ret->state, "queued") != 0) {
        log_info("channel.answered_before", "command=%s kind=%s instance=%lld state=%s", id, kind,
                 (long long)instance_id, ret->state);
        return 0;
    }
    bump(c); /* PROV-CH2: the agent's poll, at once */
    int64_t deadline = clock_mono_ms() + (timeout_ms > 0 ? timeout_ms : 0);
    pthread_mutex_lock(&c->lock);
    uint64_t gen = c->gen;
    for (;;) {
        pthread_mutex_unlock(&c->lock);
        rc = db_command_get(c->db, id, ret, err, errlen);
        pthread_mutex_lock(&c->lock);
        if (rc == 0 && strcmp(ret->state, "queued") != 0)
            break;
        if (rc == 0 && c->stopping)
            rc = dm_fail(err, errlen, DM_E_CANCELLED, "channel: the server is stopping");
        else if (rc == 0 && heard_locked(c, instance_id) >= 0 &&
                 clock_mono_ms() - heard_locked(c, instance_id) > c->lease_ms + CHAN_MARGIN_MS)
            rc = dm_fail(err, errlen, DM_E_UNAVAILABLE, /* PROV-CH7 */
                         "the agent of instance %lld went silent (nothing for %lld ms) before "
                         "answering command %s (%s)",
                         (long long)instance_id, (long long)(clock_mono_ms() -
                                                              heard_locked(c, instance_id)),
                         kind, id);
        else if (rc == 0 && clock_mono_ms() >= deadline) {
            int polled = heard_locked(c, instance_id) >= 0;
            rc = dm_fail(err, errlen, DM_E_UNAVAILABLE,
                         "the agent of instance %lld did not answer command %s (%s) within %lld "
                         "ms%s",
                         (long long)instance_id, kind, id, (long long)timeout_ms,
                         polled ? "" : "; it never polled the control channel");
        }
        if (rc)
            break;
        int64_t tick = clock_mono_ms() + 1000; /* PROV-CH7 is checked every second */
        gen = wait_change(c, gen, tick < deadline ? tick : deadline);
    }
    pthread_mutex_unlock(&c->lock);
    return rc;
}

int chan_poll(prov_channel *c, int64_t instance_id, int64_t after, int64_t wait_ms,
              db_command *ret, int *ret_have, int *ret_busy, char *err, size_t errlen)
{
    if (!c || !ret || !ret_have || !ret_busy)
        return dm_fail(err, errlen, DM_E_INVALID, "channel: bad poll");
    *ret_have = *ret_busy = 0;
    if (wait_ms < 0)
        wait_ms = 0;
    if (wait_ms > CHAN_WAIT_MAX_MS)
        wait_ms = CHAN_WAIT_MAX_MS;
    int64_t deadline = clock_mono_ms() + wait_ms;
    pthread_mutex_lock(&c->lock);
    heard(c, instance_id);
    int waiting = 0, rc = 0;
    uint64_t gen = c->gen;
    for (;;) {
        pthread_mutex_unlock(&c->lock);
        rc = db_command_next(c->db, instance_id, after, ret, err, errlen);
        pthread_mutex_lock(&c->lock);
        if (rc == 0) {
            *ret_have = 1;
            break;
        }
        if (rc != DM_E_NOT_FOUND || c->stopping || clock_mono_ms() >= deadline)
            break;
        if (!waiting && c->waiters >= CHAN_WAITERS_MAX) { /* PROV-CH2 */
            *ret_busy = 1;
            break;
        }
        if (!waiting)
            c->waiters++;
        waiting = 1;
        gen = wait_change(c, gen, deadline);
    }
    if (waiting)
        c->waiters--;
    heard(c, instance_id); /* the answer goes out now */
    pthread_mutex_unlock(&c->lock);
    return rc == DM_E_NOT_FOUND ? 0 : rc;
}

int chan_answer(prov_channel *c, int64_t instance_id, const char *id, const char *state,
                const char *result, char *err, size_t errlen)
{
    if (!c)
        return dm_fail(err, errlen, DM_E_INVALID, "channel: none");
    int rc = db_command_finish(c->db, instance_id, id, state, result, clock_wall_ms(), err, errlen);
    if (rc == 0)
        bump(c);
    pthread_mutex_lock(&c->lock);
    heard(c, instance_id);
    pthread_mutex_unlock(&c->lock);
    return rc;
}

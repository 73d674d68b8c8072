/* Alerts: Slack, Discord and signed webhooks for what a person must know
 * about (docs/alerts.md).
 *
 * Producers (the failover observer, the heartbeat listener's published
 * changes, the service's own snapshot check) hand events to al_on_*(),
 * which only copy them into a bounded ring in memory. One sender thread
 * writes them to the delivery queue in the database (db_alert.h), one row
 * per matching destination, then delivers what is due, with retries.
 *
 * AL-AL1: delivery never delays a failover: al_on_failover() and
 *      al_on_instance() take a short mutex and copy; they never touch the
 *      database or the network. A ring that is full drops the event, counts
 *      it and logs it once per burst (AL_RING_MAX events).
 * AL-AL2: a crash loses none: at start (al_service_start) the failovers of
 *      the last day that began after the oldest destination was added are
 *      replayed as events; their keys are deterministic (fo:<id>:started,
 *      fo:<id>:standby, fo:<id>:completed, fo:<id>:failed), so the queue
 *      (DB-DA2) drops what it already holds. Queued rows survive any stop and
 *      are sent after a restart; a row in flight when the process died is
 *      still queued and sent again (DB-DA3). Delivery is at least once; the
 *      idempotency key lets a receiver drop a repeat. An event leaves the
 *      ring only once it is queued for every destination that wants it: a
 *      database that fails meanwhile (down, disk full) delays it, never
 *      loses it while the process lives.
 * AL-AL3: a destination gets the events that happened after it was added and
 *      that its notify_on names.
 * AL-AL4: the URL and the secret are opened (alert_seal.h) only to send; they
 *      never reach a log line or an error message. Logs name the alert, the
 *      event, the idempotency key, the status and the attempt.
 * AL-AL5: a workload's snapshots are failing when its newest accepted
 *      snapshot (or, before any, the workload's start) is older than three
 *      of its snapshot periods and at least AL_SNAP_MIN_STALE_MS (divided
 *      by the time scale); one event per stale point (key snap:<workload>:
 *      <newest snapshot id>), checked every AL_SNAP_CHECK_MS.
 * AL-AL6: a workload past its failover budget (flapping, failover/budget.c) is one
 *      event per flapping spell (key flap:<workload>:<flapping since>), with
 *      the reason, found by the same periodic check as AL-AL5. */
#ifndef DUMONT_ALERTS_ALERTS_H
#define DUMONT_ALERTS_ALERTS_H

#include "alerts/alert_format.h"
#include "alerts/alert_send.h"
#include "db/db.h"
#include "db/db_alert.h"
#include "detect/listener.h"
#include "core/failover.h"

#include <stddef.h>
#include <stdint.h>

#define AL_RING_MAX          1024
#define AL_SNAP_CHECK_MS     30000
#define AL_SNAP_MIN_STALE_MS 120000
#define AL_KEEP_DONE_MS      (7LL * 24 * 3600 * 1000) /* delivered rows kept for the list */

typedef struct al_service al_service;

typedef struct {
    dm_db *db;
    const char *key_path;   /* the sealing key ($DUMONT_HOME/alerts.key) */
    const char *public_url; /* the dashboard's address, for links */
    const char *ca_file;    /* CAs for https receivers; NULL: the system's */
    double time_scale;      /* alert_retry.h AL-AR4; < 1 is 1 */
} al_opts;

int al_service_new(const al_opts *o, al_service **ret, char *err, size_t errlen);
/* AL-AL2: starts the sender thread (which replays recent failovers first). */
int al_service_start(al_service *s, char *err, size_t errlen);
/* Stops the thread (what the ring holds is written to the queue first);
 * frees. NULL is fine. */
void al_service_free(al_service *s);

/* AL-AL1. Both accept s == NULL. */
void al_on_failover(al_service *s, const fo_failover *f);
/* An hbl_event_fn (detect/listener.h): ctx is the service. */
void al_on_instance(const hbl_event *ev, void *ctx);

typedef struct {
    const char *kind;      /* slack | discord | webhook */
    const char *url;       /* AL-AF4 */
    const char *name;      /* NULL: "<kind>-<n>" */
    const char *notify_on; /* NULL: every event but suspect */
} al_add_req;

/* Adds a destination. For a webhook, ret_secret (AL_SECRET_HEX_LEN + 1
 * bytes) gets the signing secret, the only time it leaves the server;
 * otherwise it is "". ret: the row as stored (db_alert_done it). */
int al_add(al_service *s, const al_add_req *rq, db_alert *ret, char *ret_secret, char *err,
           size_t errlen);
/* Sends a test event to one destination now, synchronously, once (no queue,
 * no retry): ret says what the receiver answered. DM_E_NOT_FOUND. */
int al_test(al_service *s, const char *name, al_send_result *ret, char *err, size_t errlen);
int al_remove(al_service *s, const char *name, char *err, size_t errlen);
dm_db *al_db(al_service *s);
/* Events dropped because the ring was full (AL-AL1). */
uint64_t al_dropped(al_service *s);

#endif

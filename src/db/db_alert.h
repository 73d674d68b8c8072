/* Alert destinations and their delivery queue, in the database (migration 5;
 * docs/alerts.md). Same rules as db.h (DB-D1: one mutex per call).
 *
 * DB-DA1: a destination's URL and signing secret are stored sealed (their
 *      sealing is the caller's: alerts/alert_seal.h); the row also keeps the
 *      URL's redacted form, the only one lists show.
 * DB-DA2: the queue (alert_deliveries) is the outbox: a delivery is one row per
 *      (event, destination), keyed by its idempotency key, written before
 *      anything is sent. db_delivery_enqueue() of a key that exists changes
 *      nothing (*ret_inserted 0): an event enqueued twice (a replay after a
 *      restart) is delivered once per destination, with one key.
 * DB-DA3: a delivery leaves `queued` only by db_delivery_finish() (delivered,
 *      refused, expired) after the attempt's answer; a row being sent when the
 *      process dies is still `queued`, and is sent again (at least once).
 * DB-DA4: removing a destination removes its queued deliveries in the same
 *      transaction. */
#ifndef DUMONT_DB_DB_ALERT_H
#define DUMONT_DB_DB_ALERT_H

#include "db/db.h"

#include <stddef.h>
#include <stdint.h>

#define DB_ALERT_NAME_MAX 64
#define DB_ALERT_LIST_MAX 1000
#define DB_ALERT_TEXT_MAX 256

typedef struct {
    char name[DB_ALERT_NAME_MAX];
    char kind[16];    /* "slack" | "discord" | "webhook" */
    char *url_sealed; /* DB-DA1; malloc'd (db_alert_done) */
    char url_shown[DB_ALERT_TEXT_MAX];
    char *secret_sealed; /* webhook only; NULL otherwise */
    char notify_on[DB_ALERT_TEXT_MAX];
    int64_t created_at_ms;
    /* Read back by db_alert_list/get: the queue's state for this destination. */
    int64_t queued, delivered, given_up;
    int64_t last_delivered_ms;          /* FO_NULL: never */
    char last_error[DB_ALERT_TEXT_MAX]; /* of the newest attempt that failed; "" none */
} db_alert;

typedef struct {
    char delivery_key[40]; /* DB-DA2: the idempotency key */
    char alert_name[DB_ALERT_NAME_MAX];
    char event_key[160];
    char event_type[32];
    char *body;     /* malloc'd (db_delivery_done) */
    char state[16]; /* "queued" | "delivered" | "refused" | "expired" */
    int64_t attempts;
    int64_t next_at_ms, queued_at_ms;
    int64_t last_status; /* FO_NULL: none yet; 0: no answer */
    char last_error[DB_ALERT_TEXT_MAX];
    int64_t done_at_ms; /* FO_NULL while queued */
} db_delivery;

void db_alert_done(db_alert *a);
void db_delivery_done(db_delivery *d);

/* DM_E_CONFLICT when the name is taken. */
int db_alert_add(dm_db *db, const db_alert *a, char *err, size_t errlen);
/* DM_E_NOT_FOUND. */
int db_alert_get(dm_db *db, const char *name, db_alert *ret, char *err, size_t errlen);
/* By name; *ret malloc'd (free each with db_alert_done, then free()). */
int db_alert_list(dm_db *db, db_alert **ret, size_t *ret_n, char *err, size_t errlen);
/* DB-DA4. DM_E_NOT_FOUND. */
int db_alert_remove(dm_db *db, const char *name, char *err, size_t errlen);
/* The next free "<kind>-<n>" name (slack-1, slack-2, ...). */
int db_alert_next_name(dm_db *db, const char *kind, char *out, size_t outlen, char *err,
                       size_t errlen);

/* DB-DA2. */
int db_delivery_enqueue(dm_db *db, const db_delivery *d, int *ret_inserted, char *err,
                        size_t errlen);
/* Queued deliveries due at now_ms (next_at_ms <= now_ms), oldest first, at
 * most limit; *ret malloc'd (db_delivery_done each, then free()). */
int db_delivery_due(dm_db *db, int64_t now_ms, int limit, db_delivery **ret, size_t *ret_n,
                    char *err, size_t errlen);
/* The earliest next_at_ms of a queued delivery; DM_E_NOT_FOUND when none. */
int db_delivery_next_at(dm_db *db, int64_t *ret_ms, char *err, size_t errlen);
/* After an attempt that will be retried: attempts, next_at_ms, status, error. */
int db_delivery_retry(dm_db *db, const char *key, int64_t attempts, int64_t next_at_ms,
                      int64_t status, const char *error, char *err, size_t errlen);
/* DB-DA3: the delivery's end (state "delivered", "refused" or "expired"). */
int db_delivery_finish(dm_db *db, const char *key, const char *state, int64_t attempts,
                       int64_t status, const char *error, int64_t done_at_ms, char *err,
                       size_t errlen);
/* Deletes deliveries that ended before before_ms; *ret_n (may be NULL) how many. */
int db_delivery_prune(dm_db *db, int64_t before_ms, int64_t *ret_n, char *err, size_t errlen);
/* The deliveries of one destination, newest first, at most limit. */
int db_delivery_list(dm_db *db, const char *alert_name, int limit, db_delivery **ret, size_t *ret_n,
                     char *err, size_t errlen);

#endif

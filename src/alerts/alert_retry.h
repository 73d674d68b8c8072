/* When a delivery is tried again (docs/alerts.md "Retries").
 *
 * AL-AR1: the n-th retry waits AR_FIRST_MS * 2^(n-1), capped at AR_MAX_WAIT_MS,
 *      plus up to 25% jitter drawn from the delivery key and n (so retries of
 *      many deliveries spread out, and the same delivery's schedule is the
 *      same after a restart). A delivery is given up AR_GIVE_UP_MS after it
 *      was queued: the schedule reaches past one hour (a receiver down for an
 *      hour still gets what was queued).
 * AL-AR2: an answer 429 or 503 with Retry-After (seconds, or an HTTP date) or,
 *      on 429, a JSON body with "retry_after" (seconds; Discord) waits that
 *      long instead, when it is longer than the backoff, capped at
 *      AR_MAX_RETRY_AFTER_MS.
 * AL-AR3: 2xx is delivered; 408, 425, 429 and 5xx, and no answer at all
 *      (connection refused, timeout), are retried; every other status is
 *      the receiver's refusal (the URL is gone, the body is refused): given
 *      up at once, with the status said.
 * AL-AR4: every wait is divided by the time scale (DUMONT_ALERT_TIME_SCALE, a
 *      test knob: 3600 plays an hour in a second); so is AR_GIVE_UP_MS. */
#ifndef DUMONT_ALERTS_ALERT_RETRY_H
#define DUMONT_ALERTS_ALERT_RETRY_H

#include <stddef.h>
#include <stdint.h>

#define AR_FIRST_MS           2000
#define AR_MAX_WAIT_MS        (15 * 60 * 1000)
#define AR_GIVE_UP_MS         (24LL * 3600 * 1000)
#define AR_MAX_RETRY_AFTER_MS (3600 * 1000)

typedef enum { AR_DELIVERED = 0, AR_RETRY, AR_REFUSED } ar_verdict;

/* AL-AR3. status 0: no answer. */
ar_verdict al_retry_verdict(long status);
/* AL-AR1: the wait before retry number attempt (1 = the first retry), unscaled. */
int64_t al_retry_backoff_ms(const char *delivery_key, int attempt);
/* AL-AR2: the receiver's wait in ms from a Retry-After header value (may be
 * NULL) and, for 429, the body (may be NULL); now_wall_ms for an HTTP date.
 * -1 when it asks for none. */
int64_t al_retry_after_ms(long status, const char *header, const char *body, size_t body_len,
                          int64_t now_wall_ms);
/* AL-AR1, AL-AR2, AL-AR4: the wait before the next try after attempt tries. */
int64_t al_retry_next_ms(const char *delivery_key, int attempt, int64_t retry_after_ms,
                         double time_scale);
/* AL-AR1, AL-AR4: 1 when a delivery queued at queued_ms is given up at now_ms. */
int al_retry_expired(int64_t queued_ms, int64_t now_ms, double time_scale);

#endif

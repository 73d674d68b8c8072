/* The retry schedule (see alert_retry.h for AL-AR1 to AL-AR4). */
#define _GNU_SOURCE /* strptime, timegm */
#include "alerts/alert_retry.h"

#include "util/parse.h"

#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>

ar_verdict al_retry_verdict(long status)
{
    if (status >= 200 && status < 300)
        return AR_DELIVERED;
    if (status == 0 || status == 408 || status == 425 || status == 429 || status >= 500)
        return AR_RETRY;
    return AR_REFUSED;
}

/* FNV-1a of the key and the attempt: the jitter's source (AL-AR1). */
static uint32_t jitter_hash(const char *key, int attempt)
{
    uint32_t h = 2166136261u;
    for (const char *p = key ? key : ""; *p; p++)
        h = (h ^ (unsigned char)*p) * 16777619u;
    for (int i = 0; i < 4; i++)
        h = (h ^ (unsigned char)(attempt >> (8 * i))) * 16777619u;
    return h;
}

int64_t al_retry_backoff_ms(const char *delivery_key, int attempt)
{
    if (attempt < 1)
        attempt = 1;
    int64_t wait = AR_FIRST_MS;
    for (int i = 1; i < attempt && wait < AR_MAX_WAIT_MS; i++)
        wait *= 2;
    if (wait > AR_MAX_WAIT_MS)
        wait = AR_MAX_WAIT_MS;
    return wait + (int64_t)(jitter_hash(delivery_key, attempt) % 1000) * wait / 4000;
}

/* An HTTP date (RFC 9110 IMF-fixdate: "Sun, 06 Nov 1994 08:49:37 GMT"). */
static int64_t http_date_ms(const char *s)
{
    struct tm tm;
    memset(&tm, 0, sizeof tm);
    const char *end = strptime(s, "%a, %d %b %Y %H:%M:%S GMT", &tm);
    if (!end || *end)
        return -1;
    time_t t = timegm(&tm);
    return t < 0 ? -1 : (int64_t)t * 1000;
}

int64_t al_retry_after_ms(long status, const char *header, const char *body, size_t body_len,
                          int64_t now_wall_ms)
{
    int64_t ms = -1;
    if (status != 429 && status != 503)
        return -1;
    if (header && *header) {
        int64_t secs;
        if (parse_i64(header, 0, 86400 * 365, &secs) == 0)
            ms = secs * 1000;
        else {
            int64_t at = http_date_ms(header);
            if (at >= 0)
                ms = at > now_wall_ms ? at - now_wall_ms : 0;
        }
    }
    if (status == 429 && body && body_len) { /* Discord: {"retry_after": 1.5, "global": false} */
        json_error_t e;
        json_t *j = json_loadb(body, body_len, 0, &e);
        json_t *v = j ? json_object_get(j, "retry_after") : NULL;
        double secs = v && json_is_number(v) ? json_number_value(v) : -1;
        if (secs >= 0 && isfinite(secs) && secs < 86400.0 * 365)
            ms = (int64_t)ceil(secs * 1000.0);
        json_decref(j);
    }
    if (ms > AR_MAX_RETRY_AFTER_MS)
        ms = AR_MAX_RETRY_AFTER_MS;
    return ms;
}

int64_t al_retry_next_ms(const char *delivery_key, int attempt, int64_t retry_after_ms,
                         double time_scale)
{
    int64_t wait = al_retry_backoff_ms(delivery_key, attempt);
    if (retry_after_ms > wait)
        wait = retry_after_ms;
    if (time_scale > 1.0)
        wait = (int64_t)((double)wait / time_scale);
    return wait;
}

int al_retry_expired(int64_t queued_ms, int64_t now_ms, double time_scale)
{
    double limit = (double)AR_GIVE_UP_MS / (time_scale > 1.0 ? time_scale : 1.0);
    return (double)(now_ms - queued_ms) > limit;
}

/* One delivery attempt: an HTTP POST of a rendered body (libcurl).
 *
 * AL-SD1: the request carries Content-Type: application/json, the idempotency
 *      key (Idempotency-Key and X-Dumont-Delivery: the same on every retry
 *      and after a restart), X-Dumont-Event, and for a webhook
 *      X-Dumont-Signature: sha256=<hex HMAC-SHA256(secret, body)>.
 * AL-SD2: it follows no redirect, speaks http/https only, verifies TLS peers,
 *      connects within AL_SEND_CONNECT_MS and ends within the timeout; the
 *      answer's body is read up to AL_SEND_BODY_MAX bytes (the rest dropped).
 * AL-SD3: the error text never holds the URL's path nor the secret: curl's
 *      message is cut where it would quote the path. */
#ifndef DUMONT_ALERTS_ALERT_SEND_H
#define DUMONT_ALERTS_ALERT_SEND_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#define AL_SEND_CONNECT_MS 5000L
#define AL_SEND_TIMEOUT_MS 10000L
#define AL_SEND_BODY_MAX   4096

typedef struct {
    long status;            /* 0: no answer */
    int64_t retry_after_ms; /* alert_retry.h AL-AR2; -1 none */
    char error[256];        /* "" on 2xx */
    int64_t elapsed_ms;
} al_send_result;

typedef struct {
    const char *url;
    const char *body;
    size_t len;
    const char *delivery_key;
    const char *event_type;
    const char *secret;  /* webhook signing secret; NULL: unsigned */
    const char *ca_file; /* NULL: the system's CAs */
    long timeout_ms;     /* <= 0: AL_SEND_TIMEOUT_MS */
    const atomic_bool *cancel; /* when it reads true, the attempt ends; may be NULL */
} al_send_req;

/* Returns 0 whenever the attempt was made (see ret->status), or -ENOMEM. */
int al_send(const al_send_req *rq, al_send_result *ret);

#endif

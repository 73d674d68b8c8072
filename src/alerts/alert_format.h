/* Alert events and what each destination receives (docs/alerts.md).
 *
 * An al_event holds the facts a person needs at 3 a.m.: the workload, what
 * happened, the phase it is in or failed in, the old and new instance, how
 * long it took, and a link to the failover on the dashboard. al_render()
 * turns one into the body a destination kind expects:
 *
 *   slack    {"text": one line, "blocks": [header, section with fields,
 *            context with the link]}            (Slack incoming webhooks)
 *   discord  {"content": one line (<= 2000), "embeds": [{title, description,
 *            url, color, fields, timestamp}], "allowed_mentions": {"parse": []}}
 *   webhook  the event as JSON (AL-AF3), signed by the sender (al_sign)
 *
 * AL-AF1: rendering is a pure function of (kind, event, public URL, delivery
 *      key): a retried or re-sent delivery carries the same bytes, so its
 *      signature and its idempotency key are the same too.
 * AL-AF2: every text a destination shows is cut to that service's documented
 *      limits (Slack header 150, section 3000, field 2000; Discord content
 *      2000, title 256, description 4096, field value 1024), on a UTF-8
 *      character boundary; Slack mrkdwn escapes &, <, >; Discord mentions
 *      are disabled (a workload name cannot ping @everyone).
 * AL-AF3: the webhook body is {"event", "event_id", "idempotency_key",
 *      "occurred_at", "summary", "failover"?, "instance"?, "workload"?,
 *      "snapshot"?, "dumont": {"version", "server"}}; absent facts are null.
 * AL-AF4: a destination URL is http or https, has a host, holds no user or
 *      password, no whitespace or control character, and is shorter than
 *      AL_URL_MAX. al_url_redact() shows scheme://host[:port]/… only: the
 *      path of a Slack or Discord webhook URL is its secret. */
#ifndef DUMONT_ALERTS_ALERT_FORMAT_H
#define DUMONT_ALERTS_ALERT_FORMAT_H

#include "core/failover.h"

#include <stddef.h>
#include <stdint.h>

#define AL_URL_MAX          2048
#define AL_NAME_MAX         64
#define AL_KEY_MAX          160 /* event keys */
#define AL_DELIVERY_KEY_LEN 32  /* hex chars of an idempotency key */
#define AL_SECRET_HEX_LEN   64
#define AL_BODY_MAX         (32 * 1024)

typedef enum { AL_KIND_SLACK = 0, AL_KIND_DISCORD, AL_KIND_WEBHOOK, AL_KIND_COUNT } al_kind;

/* What happened; the names are notify_on's words. */
typedef enum {
    AL_EV_STARTED = 0,
    AL_EV_COMPLETED,
    AL_EV_FAILED,
    AL_EV_SUSPECT,
    AL_EV_INSTANCE_FAILED,
    AL_EV_SNAPSHOT_FAILING,
    AL_EV_STANDBY_ACTIVATED,
    AL_EV_FLAPPING, /* past its failover budget (failover/budget.c); reason says why */
    AL_EV_TEST, /* `dumont alerts test`; not a notify_on word */
    AL_EV_COUNT
} al_event_kind;

#define AL_NOTIFY_ALL     ((1u << AL_EV_TEST) - 1)
#define AL_NOTIFY_DEFAULT (AL_NOTIFY_ALL & ~(1u << AL_EV_SUSPECT))

typedef struct {
    al_event_kind kind;
    char key[AL_KEY_MAX]; /* unique per event: "fo:<id>:completed", "inst:<id>:<at>:failed" */
    int64_t at_ms;        /* wall clock of what happened */
    /* A failover (started, completed, failed, standby_activated). */
    char failover_id[FO_ID_MAX]; /* "" none */
    char fo_kind[16];            /* "simulated" | "real" */
    char trigger[16];
    char phase[24];                           /* the phase it is in, or failed in; "" none */
    char reason[256];                         /* why it failed */
    int64_t old_instance_id, new_instance_id; /* FO_NULL unknown */
    int64_t duration_ms;                      /* total so far / at the end; FO_NULL */
    int test;                                 /* a test-real: the original keeps serving */
    /* The workload ("" when none is known). */
    char workload_id[32];
    char workload_name[64];
    /* An instance (suspect, instance_failed). */
    int64_t instance_id; /* FO_NULL none */
    char inst_from[16], inst_to[16], inst_reason[32];
    int64_t silent_ms; /* FO_NULL */
    /* A workload's snapshots (snapshot_failing). */
    int64_t snapshot_age_ms, snapshot_every_ms; /* FO_NULL */
    char snapshot_id[72];                       /* the newest, "" none */
} al_event;

void al_event_init(al_event *ev, al_event_kind kind, int64_t at_ms);

const char *al_kind_name(al_kind k); /* "slack" | "discord" | "webhook" */
int al_kind_parse(const char *s, al_kind *ret);
/* notify_on word ("started", ...), or "test". */
const char *al_event_word(al_event_kind k);
/* The webhook's "event": "failover.started", "instance.suspect", ... */
const char *al_event_type(al_event_kind k);
/* "started,completed" -> bit mask (1 << AL_EV_*); "all" is every event.
 * DM_E_INVALID (err names the bad word) for an unknown or empty word. */
int al_notify_parse(const char *s, unsigned *ret, char *err, size_t errlen);
/* The mask as notify_on words, in order, comma-separated. */
void al_notify_format(unsigned mask, char *out, size_t outlen);

/* AL-AF4. 0, or DM_E_INVALID with a message that never quotes the URL's path
 * or credentials. */
int al_url_check(const char *url, char *err, size_t errlen);
void al_url_redact(const char *url, char *out, size_t outlen);

/* The idempotency key of the delivery of event_key to the destination
 * named name: hex of SHA-256(event_key "\n" name), AL_DELIVERY_KEY_LEN chars. */
void al_delivery_key(const char *event_key, const char *name, char out[AL_DELIVERY_KEY_LEN + 1]);

/* One line a person reads first ("Failover failed: workload chat (wl-…) in
 * provisioning after 41.2 s: no offer"). */
void al_summary(const al_event *ev, char *out, size_t outlen);
/* The dashboard link of the event's failover (public_url + "/#/failover/ID"),
 * or "" when there is none. */
void al_link(const al_event *ev, const char *public_url, char *out, size_t outlen);

/* AL-AF1 to AL-AF3. *ret malloc'd JSON text (free()), at most AL_BODY_MAX bytes. */
int al_render(al_kind kind, const al_event *ev, const char *public_url, const char *delivery_key,
              char **ret);

/* "sha256=" + hex HMAC-SHA256(secret, body): X-Dumont-Signature. */
void al_sign(const char *secret, const char *body, size_t len, char out[7 + 64 + 1]);

#endif

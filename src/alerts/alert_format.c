/* Alert events and their renderings (see alert_format.h for AL-AF1 to AL-AF4). */
#include "alerts/alert_format.h"

#include "util/clock.h"
#include "util/error.h"
#include "util/hex.h"

#include <errno.h>
#include <jansson.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/sha.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static const char *const KIND_NAMES[AL_KIND_COUNT] = {"slack", "discord", "webhook"};
static const char *const EV_WORDS[AL_EV_COUNT] = {
    "started",          "completed",         "failed", "suspect", "instance_failed",
    "snapshot_failing", "standby_activated", "flapping", "test"};
static const char *const EV_TYPES[AL_EV_COUNT] = {
    "failover.started", "failover.completed", "failover.failed",   "instance.suspect",
    "instance.failed",  "snapshot.failing",   "standby.activated", "workload.flapping",
    "alert.test"};

void al_event_init(al_event *ev, al_event_kind kind, int64_t at_ms)
{
    memset(ev, 0, sizeof *ev);
    ev->kind = kind;
    ev->at_ms = at_ms;
    ev->old_instance_id = ev->new_instance_id = ev->instance_id = FO_NULL;
    ev->duration_ms = ev->silent_ms = FO_NULL;
    ev->snapshot_age_ms = ev->snapshot_every_ms = FO_NULL;
}

const char *al_kind_name(al_kind k)
{
    return k >= 0 && k < AL_KIND_COUNT ? KIND_NAMES[k] : "?";
}

int al_kind_parse(const char *s, al_kind *ret)
{
    for (int i = 0; s && i < AL_KIND_COUNT; i++)
        if (strcmp(s, KIND_NAMES[i]) == 0)
            return *ret = (al_kind)i, 0;
    return DM_E_INVALID;
}

const char *al_event_word(al_event_kind k)
{
    return k >= 0 && k < AL_EV_COUNT ? EV_WORDS[k] : "?";
}

const char *al_event_type(al_event_kind k)
{
    return k >= 0 && k < AL_EV_COUNT ? EV_TYPES[k] : "?";
}

int al_notify_parse(const char *s, unsigned *ret, char *err, size_t errlen)
{
    unsigned mask = 0;
    const char *p = s ? s : "";
    static const char words[] = "started, completed, failed, suspect, instance_failed, "
                                "snapshot_failing, standby_activated, flapping (or all)";
    for (;;) {
        size_t n = strcspn(p, ",");
        int found = -1;
        if (n == 3 && strncmp(p, "all", 3) == 0)
            mask |= AL_NOTIFY_ALL, found = AL_EV_TEST;
        for (int i = 0; found < 0 && i < AL_EV_TEST; i++)
            if (strlen(EV_WORDS[i]) == n && strncmp(p, EV_WORDS[i], n) == 0)
                found = i, mask |= 1u << i;
        if (found < 0)
            return dm_fail(err, errlen, DM_E_INVALID, "notify_on: '%.*s' is not an event; use %s",
                           (int)(n > 40 ? 40 : n), p, words);
        if (!p[n])
            break;
        p += n + 1;
    }
    *ret = mask;
    return 0;
}

void al_notify_format(unsigned mask, char *out, size_t outlen)
{
    size_t len = 0;
    out[0] = '\0';
    for (int i = 0; i < AL_EV_TEST; i++)
        if (mask & (1u << i)) {
            int n = snprintf(out + len, outlen - len, "%s%s", len ? "," : "", EV_WORDS[i]);
            if (n < 0 || (size_t)n >= outlen - len)
                return;
            len += (size_t)n;
        }
}

/* ---- URLs (AL-AF4) ---- */

/* Splits "scheme://authority/rest": *ret_auth and *ret_auth_len the
 * authority. 0 for http/https, else DM_E_INVALID. */
static int url_parts(const char *url, const char **ret_auth, size_t *ret_auth_len, int *ret_https)
{
    int https = strncasecmp(url, "https://", 8) == 0;
    if (!https && strncasecmp(url, "http://", 7) != 0)
        return DM_E_INVALID;
    const char *a = url + (https ? 8 : 7);
    *ret_auth = a;
    *ret_auth_len = strcspn(a, "/?#");
    *ret_https = https;
    return 0;
}

int al_url_check(const char *url, char *err, size_t errlen)
{
    if (!url || !*url)
        return dm_fail(err, errlen, DM_E_INVALID, "url= is required");
    size_t n = strlen(url);
    if (n >= AL_URL_MAX)
        return dm_fail(err, errlen, DM_E_INVALID, "the URL is longer than %d characters",
                       AL_URL_MAX - 1);
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)url[i] <= 0x20 || url[i] == 0x7f)
            return dm_fail(err, errlen, DM_E_INVALID,
                           "the URL holds a space or a control character");
    const char *auth;
    size_t alen;
    int https;
    if (url_parts(url, &auth, &alen, &https) != 0)
        return dm_fail(err, errlen, DM_E_INVALID,
                       "the URL must start with https:// (or http://); other schemes are not "
                       "sent to");
    if (memchr(auth, '@', alen))
        return dm_fail(err, errlen, DM_E_INVALID,
                       "the URL holds credentials (user:password@): they would be sent and "
                       "shown; use a URL without them (a webhook's secret is made by alerts add)");
    if (alen == 0 || auth[0] == ':')
        return dm_fail(err, errlen, DM_E_INVALID, "the URL has no host");
    return 0;
}

void al_url_redact(const char *url, char *out, size_t outlen)
{
    const char *auth;
    size_t alen;
    int https;
    if (!url || url_parts(url, &auth, &alen, &https) != 0 || memchr(auth, '@', alen)) {
        snprintf(out, outlen, "(hidden)");
        return;
    }
    snprintf(out, outlen, "%s://%.*s/%s", https ? "https" : "http", (int)alen, auth,
             auth[alen] ? "\xe2\x80\xa6" : "");
}

void al_delivery_key(const char *event_key, const char *name, char out[AL_DELIVERY_KEY_LEN + 1])
{
    unsigned char md[SHA256_DIGEST_LENGTH];
    EVP_MD_CTX *c = EVP_MD_CTX_new();
    unsigned len = 0;
    if (c && EVP_DigestInit_ex(c, EVP_sha256(), NULL) == 1 &&
        EVP_DigestUpdate(c, event_key, strlen(event_key)) == 1 &&
        EVP_DigestUpdate(c, "\n", 1) == 1 && EVP_DigestUpdate(c, name, strlen(name)) == 1 &&
        EVP_DigestFinal_ex(c, md, &len) == 1) {
        char hex[2 * SHA256_DIGEST_LENGTH + 1];
        hex_encode(md, sizeof md, hex);
        memcpy(out, hex, AL_DELIVERY_KEY_LEN);
        out[AL_DELIVERY_KEY_LEN] = '\0';
    } else {
        out[0] = '\0';
    }
    EVP_MD_CTX_free(c);
}

void al_sign(const char *secret, const char *body, size_t len, char out[7 + 64 + 1])
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned mdlen = 0;
    memcpy(out, "sha256=", 7);
    if (!HMAC(EVP_sha256(), secret, (int)strlen(secret), (const unsigned char *)body, len, md,
              &mdlen) ||
        mdlen != 32) {
        out[7] = '\0';
        return;
    }
    hex_encode(md, 32, out + 7);
    out[7 + 64] = '\0';
}

/* ---- words a person reads ---- */

static void duration_text(int64_t ms, char *out, size_t outlen)
{
    if (ms < 0)
        snprintf(out, outlen, "-");
    else if (ms < 1000)
        snprintf(out, outlen, "%lld ms", (long long)ms);
    else if (ms < 60000)
        snprintf(out, outlen, "%.1f s", (double)ms / 1000.0);
    else if (ms < 3600000)
        snprintf(out, outlen, "%lldm %02llds", (long long)(ms / 60000),
                 (long long)(ms / 1000 % 60));
    else
        snprintf(out, outlen, "%lldh %02lldm", (long long)(ms / 3600000),
                 (long long)(ms / 60000 % 60));
}

/* "chat (wl-1a2b)" / "wl-1a2b" / "GPU 12345" (simulated) / "instance 20001". */
static void subject(const al_event *ev, char *out, size_t outlen)
{
    if (ev->workload_name[0] && ev->workload_id[0] && strcmp(ev->workload_name, ev->workload_id))
        snprintf(out, outlen, "workload %s (%s)", ev->workload_name, ev->workload_id);
    else if (ev->workload_id[0])
        snprintf(out, outlen, "workload %s", ev->workload_id);
    else if (ev->failover_id[0] && ev->old_instance_id != FO_NULL)
        snprintf(out, outlen, "GPU %lld", (long long)ev->old_instance_id);
    else if (ev->instance_id != FO_NULL)
        snprintf(out, outlen, "instance %lld", (long long)ev->instance_id);
    else
        snprintf(out, outlen, "Dumont");
}

static const char *headline(const al_event *ev)
{
    static const char *const h[AL_EV_COUNT] = {
        "Failover started", "Failover completed", "Failover FAILED",   "Instance suspect",
        "Instance FAILED",  "Snapshots failing",  "Standby activated", "Workload flapping",
        "Test alert"};
    return ev->kind >= 0 && ev->kind < AL_EV_COUNT ? h[ev->kind] : "Alert";
}

void al_summary(const al_event *ev, char *out, size_t outlen)
{
    char who[160], d[32];
    subject(ev, who, sizeof who);
    duration_text(ev->duration_ms, d, sizeof d);
    const char *sim = strcmp(ev->fo_kind, "simulated") == 0 ? " [simulated]" : "";
    const char *test = ev->test ? " [test-real]" : "";
    switch (ev->kind) {
    case AL_EV_STARTED:
        if (ev->workload_id[0])
            snprintf(out, outlen, "%s%s%s: %s lost instance %lld (%s); now in %s", headline(ev),
                     sim, test, who, (long long)ev->old_instance_id,
                     ev->trigger[0] ? ev->trigger : "manual",
                     ev->phase[0] ? ev->phase : "detection");
        else
            snprintf(out, outlen, "%s%s%s: %s is lost (%s); now in %s", headline(ev), sim, test,
                     who, ev->trigger[0] ? ev->trigger : "manual",
                     ev->phase[0] ? ev->phase : "detection");
        break;
    case AL_EV_COMPLETED:
        if (ev->new_instance_id != FO_NULL)
            snprintf(out, outlen, "%s%s%s: %s moved from instance %lld to %lld in %s", headline(ev),
                     sim, test, who, (long long)ev->old_instance_id, (long long)ev->new_instance_id,
                     d);
        else
            snprintf(out, outlen, "%s%s%s: %s recovered in %s", headline(ev), sim, test, who, d);
        break;
    case AL_EV_FAILED:
        snprintf(out, outlen, "%s%s%s: %s failed in %s after %s: %s", headline(ev), sim, test, who,
                 ev->phase[0] ? ev->phase : "?", d, ev->reason[0] ? ev->reason : "no reason given");
        break;
    case AL_EV_STANDBY_ACTIVATED:
        snprintf(out, outlen, "%s%s: %s is served by its CPU standby while a new GPU is found",
                 headline(ev), sim, who);
        break;
    case AL_EV_SUSPECT:
    case AL_EV_INSTANCE_FAILED:
        duration_text(ev->silent_ms, d, sizeof d);
        snprintf(out, outlen, "%s: instance %lld%s%s is %s (silent %s%s%s)", headline(ev),
                 (long long)ev->instance_id, ev->workload_id[0] ? " of " : "",
                 ev->workload_id[0] ? who : "", ev->inst_to, d, ev->inst_reason[0] ? ", " : "",
                 ev->inst_reason);
        break;
    case AL_EV_SNAPSHOT_FAILING:
        duration_text(ev->snapshot_age_ms, d, sizeof d);
        snprintf(out, outlen,
                 "%s: %s has no new snapshot for %s (expected every %lld s); a failover now "
                 "restores %s",
                 headline(ev), who, d, (long long)(ev->snapshot_every_ms / 1000),
                 ev->snapshot_id[0] ? "that older point" : "nothing");
        break;
    case AL_EV_FLAPPING:
        snprintf(out, outlen, "%s: %s is past its failover budget: %s", headline(ev), who,
                 ev->reason[0] ? ev->reason : "no reason given");
        break;
    default:
        snprintf(out, outlen, "Test alert from Dumont: this destination receives its alerts");
    }
}

void al_link(const al_event *ev, const char *public_url, char *out, size_t outlen)
{
    out[0] = '\0';
    if (!public_url || !*public_url)
        return;
    size_t n = strlen(public_url);
    while (n && public_url[n - 1] == '/')
        n--;
    if (ev->failover_id[0])
        snprintf(out, outlen, "%.*s/#failover=%s", (int)n, public_url, ev->failover_id);
    else
        snprintf(out, outlen, "%.*s/", (int)n, public_url);
}

/* ---- renderings ---- */

/* Copies at most cap-1 bytes of s, cut on a UTF-8 boundary, "…" when cut (AL-AF2). */
static json_t *cut(const char *s, size_t cap)
{
    size_t n = strlen(s);
    if (n < cap)
        return json_string(s);
    size_t keep = cap > 4 ? cap - 4 : 0;
    while (keep > 0 && ((unsigned char)s[keep] & 0xC0) == 0x80)
        keep--;
    char *buf = malloc(keep + 4);
    if (!buf)
        return NULL;
    memcpy(buf, s, keep);
    memcpy(buf + keep, "\xe2\x80\xa6", 4);
    json_t *j = json_string(buf);
    free(buf);
    return j;
}

/* Slack mrkdwn: &, <, > are control characters (AL-AF2). */
static void mrkdwn_escape(const char *s, char *out, size_t outlen)
{
    size_t o = 0;
    for (; *s && o + 6 < outlen; s++) {
        const char *rep = *s == '&' ? "&amp;" : *s == '<' ? "&lt;" : *s == '>' ? "&gt;" : NULL;
        if (rep) {
            memcpy(out + o, rep, strlen(rep));
            o += strlen(rep);
        } else {
            out[o++] = *s;
        }
    }
    out[o] = '\0';
}

typedef struct {
    const char *name;
    char value[300];
} field;

static int int_field(field *f, const char *name, int64_t v)
{
    if (v == FO_NULL)
        return 0;
    f->name = name;
    snprintf(f->value, sizeof f->value, "%lld", (long long)v);
    return 1;
}

static int text_field(field *f, const char *name, const char *v)
{
    if (!v || !*v)
        return 0;
    f->name = name;
    snprintf(f->value, sizeof f->value, "%s", v);
    return 1;
}

/* The facts shown as fields, in the order a person reads them. */
static int fields_of(const al_event *ev, field *f)
{
    int n = 0;
    char who[160], d[32];
    if (ev->workload_id[0]) {
        subject(ev, who, sizeof who);
        n += text_field(&f[n], "Workload", who + 9); /* past "workload " */
    }
    n += text_field(&f[n], "Failover", ev->failover_id);
    n += text_field(&f[n], ev->kind == AL_EV_FAILED ? "Failed in" : "Phase", ev->phase);
    n += int_field(&f[n], "Old instance", ev->old_instance_id);
    n += int_field(&f[n], "New instance", ev->new_instance_id);
    if (ev->duration_ms != FO_NULL) {
        duration_text(ev->duration_ms, d, sizeof d);
        n += text_field(&f[n], ev->kind == AL_EV_STARTED ? "Running for" : "Took", d);
    }
    n += text_field(&f[n], "Reason",
                    ev->kind == AL_EV_FAILED || ev->kind == AL_EV_FLAPPING ? ev->reason : "");
    n += text_field(&f[n], "Trigger", ev->trigger);
    n += int_field(&f[n], "Instance", ev->instance_id);
    if (ev->silent_ms != FO_NULL) {
        duration_text(ev->silent_ms, d, sizeof d);
        n += text_field(&f[n], "Silent for", d);
    }
    if (ev->snapshot_age_ms != FO_NULL) {
        duration_text(ev->snapshot_age_ms, d, sizeof d);
        n += text_field(&f[n], "Newest snapshot age", d);
    }
    n += text_field(&f[n], "Newest snapshot",
                    ev->kind == AL_EV_SNAPSHOT_FAILING ? ev->snapshot_id : "");
    return n; /* at most 10: Slack's cap on section fields */
}

static json_t *render_slack(const al_event *ev, const char *summary, const char *link)
{
    field f[12];
    int n = fields_of(ev, f);
    json_t *fields = json_array();
    char buf[2400], esc[2200];
    for (int i = 0; i < n && i < 10 && fields; i++) {
        mrkdwn_escape(f[i].value, esc, sizeof esc);
        snprintf(buf, sizeof buf, "*%s*\n%s", f[i].name, esc);
        json_array_append_new(fields,
                              json_pack("{s:s, s:o}", "type", "mrkdwn", "text", cut(buf, 2000)));
    }
    char head[200], sum[3100];
    snprintf(head, sizeof head, "%s", headline(ev));
    mrkdwn_escape(summary, sum, sizeof sum);
    json_t *blocks =
        json_pack("[{s:s, s:{s:s, s:o}}, {s:s, s:{s:s, s:o}, s:o}]", "type", "header", "text",
                  "type", "plain_text", "text", cut(head, 150), "type", "section", "text", "type",
                  "mrkdwn", "text", cut(sum, 3000), "fields", fields ? fields : json_array());
    if (blocks && link[0]) {
        snprintf(buf, sizeof buf, "<%s|Open in the Dumont dashboard>", link);
        json_array_append_new(blocks,
                              json_pack("{s:s, s:[{s:s, s:o}]}", "type", "context", "elements",
                                        "type", "mrkdwn", "text", cut(buf, 2000)));
    }
    return blocks ? json_pack("{s:o, s:o}", "text", cut(summary, 3000), "blocks", blocks) : NULL;
}

static int discord_color(al_event_kind k)
{
    switch (k) {
    case AL_EV_COMPLETED:
        return 0x2EB67D; /* green */
    case AL_EV_FAILED:
    case AL_EV_INSTANCE_FAILED:
        return 0xE01E5A; /* red */
    case AL_EV_SUSPECT:
    case AL_EV_SNAPSHOT_FAILING:
    case AL_EV_FLAPPING:
        return 0xECB22E; /* amber */
    default:
        return 0x36C5F0; /* blue */
    }
}

static json_t *render_discord(const al_event *ev, const char *summary, const char *link)
{
    field f[12];
    int n = fields_of(ev, f);
    json_t *fields = json_array();
    for (int i = 0; i < n && fields; i++)
        json_array_append_new(fields, json_pack("{s:s, s:o, s:b}", "name", f[i].name, "value",
                                                cut(f[i].value, 1024), "inline", 1));
    char ts[40];
    clock_format_iso(ev->at_ms, ts, sizeof ts);
    json_t *embed = json_pack("{s:o, s:o, s:i, s:o, s:s}", "title", cut(headline(ev), 256),
                              "description", cut(summary, 4096), "color", discord_color(ev->kind),
                              "fields", fields ? fields : json_array(), "timestamp", ts);
    if (embed && link[0])
        json_object_set_new(embed, "url", json_string(link));
    return embed ? json_pack("{s:o, s:[o], s:{s:[]}}", "content", cut(summary, 2000), "embeds",
                             embed, "allowed_mentions", "parse")
                 : NULL;
}

static json_t *nint(int64_t v)
{
    return v == FO_NULL ? json_null() : json_integer(v);
}

static json_t *nstr(const char *s)
{
    return s && *s ? json_string(s) : json_null();
}

static json_t *render_webhook(const al_event *ev, const char *summary, const char *link,
                              const char *public_url, const char *delivery_key)
{
    char ts[40];
    clock_format_iso(ev->at_ms, ts, sizeof ts);
    json_t *o =
        json_pack("{s:s, s:s, s:s, s:s, s:s}", "event", al_event_type(ev->kind), "event_id",
                  ev->key, "idempotency_key", delivery_key, "occurred_at", ts, "summary", summary);
    if (!o)
        return NULL;
    json_object_set_new(
        o, "failover",
        ev->failover_id[0]
            ? json_pack("{s:s, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:b, s:o}", "id", ev->failover_id,
                        "kind", nstr(ev->fo_kind), "trigger", nstr(ev->trigger), "phase",
                        nstr(ev->phase), "reason", nstr(ev->reason), "old_instance_id",
                        nint(ev->old_instance_id), "new_instance_id", nint(ev->new_instance_id),
                        "duration_ms", nint(ev->duration_ms), "test", ev->test, "url", nstr(link))
            : json_null());
    json_object_set_new(o, "workload",
                        ev->workload_id[0] ? json_pack("{s:s, s:o}", "id", ev->workload_id, "name",
                                                       nstr(ev->workload_name))
                                           : json_null());
    if (ev->kind == AL_EV_FLAPPING && ev->workload_id[0]) /* failover/budget.c: why */
        json_object_set_new(json_object_get(o, "workload"), "flapping_reason", nstr(ev->reason));
    json_object_set_new(o, "instance",
                        ev->instance_id != FO_NULL
                            ? json_pack("{s:I, s:o, s:o, s:o, s:o}", "id",
                                        (json_int_t)ev->instance_id, "from", nstr(ev->inst_from),
                                        "to", nstr(ev->inst_to), "reason", nstr(ev->inst_reason),
                                        "silent_ms", nint(ev->silent_ms))
                            : json_null());
    json_object_set_new(o, "snapshot",
                        ev->kind == AL_EV_SNAPSHOT_FAILING
                            ? json_pack("{s:o, s:o, s:o}", "newest_id", nstr(ev->snapshot_id),
                                        "age_ms", nint(ev->snapshot_age_ms), "every_ms",
                                        nint(ev->snapshot_every_ms))
                            : json_null());
    json_object_set_new(
        o, "dumont",
        json_pack("{s:s, s:o}", "version", DUMONT_VERSION, "server", nstr(public_url)));
    return o;
}

int al_render(al_kind kind, const al_event *ev, const char *public_url, const char *delivery_key,
              char **ret)
{
    char summary[1024], link[AL_URL_MAX + FO_ID_MAX + 16];
    al_summary(ev, summary, sizeof summary);
    al_link(ev, public_url, link, sizeof link);
    json_t *j = kind == AL_KIND_SLACK     ? render_slack(ev, summary, link)
                : kind == AL_KIND_DISCORD ? render_discord(ev, summary, link)
                                          : render_webhook(ev, summary, link, public_url,
                                                           delivery_key ? delivery_key : "");
    if (!j)
        return -ENOMEM;
    char *text = json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS);
    json_decref(j);
    if (!text)
        return -ENOMEM;
    if (strlen(text) > AL_BODY_MAX) {
        free(text);
        return DM_E_TOO_BIG;
    }
    *ret = text;
    return 0;
}

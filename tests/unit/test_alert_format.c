/* alerts/alert_format.h (AL-AF1 to AL-AF4), alert_retry.h (AL-AR1 to AL-AR4), alert_seal.h
 * (AL-SE1): the bodies each service documents, the signature, URLs, the
 * retry schedule and Retry-After, and sealing. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "alerts/alert_format.h"
#include "alerts/alert_retry.h"
#include "alerts/alert_seal.h"
#include "util/error.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

static al_event failed_event(void)
{
    al_event ev;
    al_event_init(&ev, AL_EV_FAILED, 1764640000000LL);
    snprintf(ev.key, sizeof ev.key, "fo:fo-1:failed");
    snprintf(ev.failover_id, sizeof ev.failover_id, "fo-1");
    snprintf(ev.fo_kind, sizeof ev.fo_kind, "real");
    snprintf(ev.trigger, sizeof ev.trigger, "failed");
    snprintf(ev.phase, sizeof ev.phase, "provisioning");
    snprintf(ev.reason, sizeof ev.reason, "no offer matches min_vram_gb=24");
    snprintf(ev.workload_id, sizeof ev.workload_id, "wl-0123456789ab");
    snprintf(ev.workload_name, sizeof ev.workload_name, "chat <prod> & co");
    ev.old_instance_id = 20001;
    ev.new_instance_id = 20002;
    ev.duration_ms = 41200;
    return ev;
}

static json_t *render(al_kind k, const al_event *ev)
{
    char *body = NULL;
    assert_int_equal(al_render(k, ev, "https://dumont.example:8700/", "k123", &body), 0);
    json_error_t e;
    json_t *j = json_loads(body, 0, &e);
    assert_non_null(j);
    free(body);
    return j;
}

/* Slack: text is the fallback; blocks: header (plain_text), section with
 * mrkdwn fields (escaped), context with the dashboard link. */
static void test_slack_shape(void **state)
{
    (void)state;
    al_event ev = failed_event();
    json_t *j = render(AL_KIND_SLACK, &ev);
    const char *text = json_string_value(json_object_get(j, "text"));
    assert_non_null(text);
    assert_non_null(strstr(text, "provisioning"));
    assert_non_null(strstr(text, "41.2 s"));
    assert_non_null(strstr(text, "no offer"));
    json_t *blocks = json_object_get(j, "blocks");
    assert_int_equal(json_array_size(blocks), 3);
    json_t *h = json_array_get(blocks, 0);
    assert_string_equal(json_string_value(json_object_get(h, "type")), "header");
    assert_string_equal(json_string_value(json_object_get(json_object_get(h, "text"), "type")),
                        "plain_text");
    json_t *sec = json_array_get(blocks, 1);
    json_t *fields = json_object_get(sec, "fields");
    assert_true(json_array_size(fields) >= 5 && json_array_size(fields) <= 10);
    char *all = json_dumps(fields, 0);
    assert_non_null(strstr(all, "chat &lt;prod&gt; &amp; co")); /* AL-AF2 */
    assert_null(strstr(all, "<prod>"));
    assert_non_null(strstr(all, "*Failed in*\\nprovisioning"));
    assert_non_null(strstr(all, "*Old instance*\\n20001"));
    assert_non_null(strstr(all, "*New instance*\\n20002"));
    free(all);
    json_t *ctx = json_array_get(blocks, 2);
    const char *link = json_string_value(
        json_object_get(json_array_get(json_object_get(ctx, "elements"), 0), "text"));
    assert_string_equal(link, "<https://dumont.example:8700/#failover=fo-1|Open in the Dumont "
                              "dashboard>");
    json_decref(j);
}

/* Discord: content, one embed with fields, an integer color, an ISO
 * timestamp and the link; no mention can ping anyone. */
static void test_discord_shape(void **state)
{
    (void)state;
    al_event ev = failed_event();
    snprintf(ev.workload_name, sizeof ev.workload_name, "@everyone");
    json_t *j = render(AL_KIND_DISCORD, &ev);
    assert_true(strlen(json_string_value(json_object_get(j, "content"))) <= 2000);
    json_t *parse = json_object_get(json_object_get(j, "allowed_mentions"), "parse");
    assert_true(json_is_array(parse) && json_array_size(parse) == 0);
    json_t *em = json_array_get(json_object_get(j, "embeds"), 0);
    assert_non_null(em);
    assert_true(json_is_integer(json_object_get(em, "color")));
    assert_int_equal(json_integer_value(json_object_get(em, "color")), 0xE01E5A);
    assert_string_equal(json_string_value(json_object_get(em, "timestamp")),
                        "2025-12-02T01:46:40.000Z");
    assert_string_equal(json_string_value(json_object_get(em, "url")),
                        "https://dumont.example:8700/#failover=fo-1");
    json_t *f = json_object_get(em, "fields");
    size_t i;
    json_t *e;
    int phase = 0;
    json_array_foreach(f, i, e)
    {
        assert_true(strlen(json_string_value(json_object_get(e, "value"))) <= 1024);
        if (strcmp(json_string_value(json_object_get(e, "name")), "Failed in") == 0)
            phase = strcmp(json_string_value(json_object_get(e, "value")), "provisioning") == 0;
    }
    assert_true(phase);
    json_decref(j);
}

/* AL-AF3: the webhook's event JSON; absent facts are null. */
static void test_webhook_shape(void **state)
{
    (void)state;
    al_event ev = failed_event();
    json_t *j = render(AL_KIND_WEBHOOK, &ev);
    assert_string_equal(json_string_value(json_object_get(j, "event")), "failover.failed");
    assert_string_equal(json_string_value(json_object_get(j, "event_id")), "fo:fo-1:failed");
    assert_string_equal(json_string_value(json_object_get(j, "idempotency_key")), "k123");
    json_t *fo = json_object_get(j, "failover");
    assert_string_equal(json_string_value(json_object_get(fo, "phase")), "provisioning");
    assert_int_equal(json_integer_value(json_object_get(fo, "old_instance_id")), 20001);
    assert_int_equal(json_integer_value(json_object_get(fo, "duration_ms")), 41200);
    assert_string_equal(json_string_value(json_object_get(json_object_get(j, "workload"), "id")),
                        "wl-0123456789ab");
    assert_true(json_is_null(json_object_get(j, "instance")));
    assert_true(json_is_null(json_object_get(j, "snapshot")));
    json_decref(j);
}

/* AL-AF1: the same event renders to the same bytes. */
static void test_render_is_stable(void **state)
{
    (void)state;
    al_event ev = failed_event();
    for (int k = 0; k < AL_KIND_COUNT; k++) {
        char *a = NULL, *b = NULL;
        assert_int_equal(al_render((al_kind)k, &ev, "http://x", "key", &a), 0);
        assert_int_equal(al_render((al_kind)k, &ev, "http://x", "key", &b), 0);
        assert_string_equal(a, b);
        free(a);
        free(b);
    }
}

/* AL-AF2: a long reason is cut within the limits, on a UTF-8 boundary. */
static void test_limits_cut_on_utf8(void **state)
{
    (void)state;
    al_event ev = failed_event();
    size_t n = 0;
    while (n + 2 < sizeof ev.reason) { /* "é" is two bytes */
        ev.reason[n++] = (char)0xC3;
        ev.reason[n++] = (char)0xA9;
    }
    ev.reason[n] = '\0';
    for (int k = 0; k < AL_KIND_COUNT; k++) {
        char *body = NULL;
        assert_int_equal(al_render((al_kind)k, &ev, "http://x", "key", &body), 0);
        json_error_t e;
        json_t *j = json_loads(body, 0, &e); /* jansson refuses invalid UTF-8 */
        assert_non_null(j);
        json_decref(j);
        free(body);
    }
    al_event_init(&ev, AL_EV_SUSPECT, 0);
    memset(ev.workload_name, 'x', sizeof ev.workload_name - 1);
    snprintf(ev.workload_id, sizeof ev.workload_id, "wl-1");
    ev.instance_id = 7;
    char *body = NULL;
    assert_int_equal(al_render(AL_KIND_DISCORD, &ev, "", "k", &body), 0);
    json_t *j = json_loads(body, 0, NULL);
    assert_true(strlen(json_string_value(json_object_get(j, "content"))) <= 2000);
    json_decref(j);
    free(body);
}

/* RFC 4231 test case 2, as X-Dumont-Signature. */
static void test_signature(void **state)
{
    (void)state;
    char sig[7 + 64 + 1];
    const char *data = "what do ya want for nothing?";
    al_sign("Jefe", data, strlen(data), sig);
    assert_string_equal(sig,
                        "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
}

static void test_url_check(void **state)
{
    (void)state;
    char err[256];
    assert_int_equal(al_url_check("https://hooks.slack.com/services/T/B/X", err, sizeof err), 0);
    assert_int_equal(al_url_check("http://127.0.0.1:9/hook", err, sizeof err), 0);
    assert_int_equal(al_url_check("ftp://h/x", err, sizeof err), DM_E_INVALID);
    assert_non_null(strstr(err, "https://"));
    assert_int_equal(al_url_check("https://user:pw@h/x", err, sizeof err), DM_E_INVALID);
    assert_non_null(strstr(err, "credentials"));
    assert_null(strstr(err, "pw")); /* AL-AF4: never quoted */
    assert_int_equal(al_url_check("https:///x", err, sizeof err), DM_E_INVALID);
    assert_int_equal(al_url_check("https://h/a b", err, sizeof err), DM_E_INVALID);
    assert_int_equal(al_url_check("", err, sizeof err), DM_E_INVALID);
    char shown[128];
    al_url_redact("https://hooks.slack.com/services/T0/B0/SECRET", shown, sizeof shown);
    assert_string_equal(shown, "https://hooks.slack.com/\xe2\x80\xa6");
    assert_null(strstr(shown, "SECRET"));
    al_url_redact("https://user:pw@h/x", shown, sizeof shown);
    assert_string_equal(shown, "(hidden)");
}

static void test_notify_words(void **state)
{
    (void)state;
    unsigned m;
    char err[256], out[256];
    assert_int_equal(al_notify_parse("failed,suspect", &m, err, sizeof err), 0);
    assert_int_equal(m, (1u << AL_EV_FAILED) | (1u << AL_EV_SUSPECT));
    assert_int_equal(al_notify_parse("all", &m, err, sizeof err), 0);
    assert_int_equal(m, AL_NOTIFY_ALL);
    al_notify_format(AL_NOTIFY_DEFAULT, out, sizeof out);
    assert_string_equal(out, "started,completed,failed,instance_failed,snapshot_failing,"
                             "standby_activated,flapping");
    assert_int_equal(al_notify_parse("failed,exploded", &m, err, sizeof err), DM_E_INVALID);
    assert_non_null(strstr(err, "'exploded'"));
    assert_int_equal(al_notify_parse("", &m, err, sizeof err), DM_E_INVALID);
    assert_int_equal(al_notify_parse("test", &m, err, sizeof err), DM_E_INVALID);
}

static void test_delivery_key(void **state)
{
    (void)state;
    char a[AL_DELIVERY_KEY_LEN + 1], b[AL_DELIVERY_KEY_LEN + 1], c[AL_DELIVERY_KEY_LEN + 1];
    al_delivery_key("fo:x:started", "slack-1", a);
    al_delivery_key("fo:x:started", "slack-1", b);
    al_delivery_key("fo:x:started", "slack-2", c);
    assert_int_equal(strlen(a), AL_DELIVERY_KEY_LEN);
    assert_string_equal(a, b);
    assert_string_not_equal(a, c);
}

/* AL-AR1: doubling from AR_FIRST_MS to the cap, jitter within 25%, the same
 * schedule for the same key; tries go on past one hour and stop at the
 * give-up age. */
static void test_backoff_schedule(void **state)
{
    (void)state;
    int64_t base = AR_FIRST_MS;
    for (int n = 1; n <= 40; n++) {
        int64_t w = al_retry_backoff_ms("key", n);
        assert_true(w >= base && w <= base + base / 4);
        assert_int_equal(w, al_retry_backoff_ms("key", n));
        base = base * 2 > AR_MAX_WAIT_MS ? AR_MAX_WAIT_MS : base * 2;
    }
    int64_t t = 0, last_try = 0;
    int tries = 0;
    while (!al_retry_expired(0, t, 1.0)) { /* as the sender does: try, then wait */
        last_try = t;
        tries++;
        t += al_retry_next_ms("key", tries, -1, 1.0);
    }
    assert_true(last_try > 3600 * 1000); /* a receiver down for an hour still gets it */
    assert_true(last_try <= AR_GIVE_UP_MS);
    assert_true(tries > 20 && tries < 200);
    /* AL-AR4: compressed, the same number of tries in 1/3600 of the time. */
    int64_t t2 = 0;
    int tries2 = 0;
    while (!al_retry_expired(0, t2, 3600.0)) {
        tries2++;
        t2 += al_retry_next_ms("key", tries2, -1, 3600.0);
    }
    assert_true(t2 < 60 * 1000);
    assert_true(tries2 >= tries - 2);
}

/* AL-AR2, AL-AR3. */
static void test_retry_after_and_verdicts(void **state)
{
    (void)state;
    assert_int_equal(al_retry_after_ms(429, "7", NULL, 0, 0), 7000);
    assert_int_equal(al_retry_after_ms(503, "2", NULL, 0, 0), 2000);
    assert_int_equal(al_retry_after_ms(500, "7", NULL, 0, 0), -1);
    assert_int_equal(al_retry_after_ms(429, NULL, NULL, 0, 0), -1);
    /* an HTTP date, 30 s ahead */
    assert_int_equal(al_retry_after_ms(429, "Thu, 01 Jan 1970 00:01:00 GMT", NULL, 0, 30000),
                     30000);
    const char *discord = "{\"message\": \"You are being rate limited.\", \"retry_after\": 1.5,"
                          " \"global\": false}";
    assert_int_equal(al_retry_after_ms(429, NULL, discord, strlen(discord), 0), 1500);
    assert_int_equal(al_retry_after_ms(429, "9999999", NULL, 0, 0), AR_MAX_RETRY_AFTER_MS);
    assert_int_equal(al_retry_after_ms(429, "soon", NULL, 0, 0), -1);
    /* a long Retry-After wins over a short backoff; a short one does not */
    assert_int_equal(al_retry_next_ms("k", 1, 60000, 1.0), 60000);
    assert_true(al_retry_next_ms("k", 1, 10, 1.0) >= AR_FIRST_MS);
    assert_int_equal(al_retry_next_ms("k", 1, 3600000, 3600.0), 1000);
    assert_int_equal(al_retry_verdict(200), AR_DELIVERED);
    assert_int_equal(al_retry_verdict(204), AR_DELIVERED);
    assert_int_equal(al_retry_verdict(0), AR_RETRY);
    assert_int_equal(al_retry_verdict(429), AR_RETRY);
    assert_int_equal(al_retry_verdict(500), AR_RETRY);
    assert_int_equal(al_retry_verdict(503), AR_RETRY);
    assert_int_equal(al_retry_verdict(408), AR_RETRY);
    assert_int_equal(al_retry_verdict(404), AR_REFUSED);
    assert_int_equal(al_retry_verdict(400), AR_REFUSED);
    assert_int_equal(al_retry_verdict(301), AR_REFUSED);
}

/* AL-SE1: round trip; another name, another key, or a changed byte opens nothing. */
static void test_seal(void **state)
{
    (void)state;
    al_sealer *s = NULL, *other = NULL;
    assert_int_equal(al_sealer_from_key("0123456789abcdef0123456789abcdef", &s), 0);
    assert_int_equal(al_sealer_from_key("fedcba9876543210fedcba9876543210", &other), 0);
    const char *url = "https://hooks.slack.com/services/T0/B0/SECRET";
    char *sealed = NULL, *open = NULL, *sealed2 = NULL;
    assert_int_equal(al_seal(s, "slack-1", url, &sealed), 0);
    assert_null(strstr(sealed, "SECRET"));
    assert_int_equal(al_seal(s, "slack-1", url, &sealed2), 0);
    assert_string_not_equal(sealed, sealed2); /* a fresh nonce each time */
    assert_int_equal(al_open(s, "slack-1", sealed, &open), 0);
    assert_string_equal(open, url);
    free(open);
    assert_int_equal(al_open(s, "slack-2", sealed, &open), DM_E_INVALID);
    assert_int_equal(al_open(other, "slack-1", sealed, &open), DM_E_INVALID);
    sealed[10] = sealed[10] == 'a' ? 'b' : 'a';
    assert_int_equal(al_open(s, "slack-1", sealed, &open), DM_E_INVALID);
    assert_int_equal(al_open(s, "slack-1", "v1:zz", &open), DM_E_INVALID);
    assert_int_equal(al_open(s, "slack-1", "", &open), DM_E_INVALID);
    free(sealed);
    free(sealed2);
    al_sealer_free(s);
    al_sealer_free(other);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_slack_shape),
        cmocka_unit_test(test_discord_shape),
        cmocka_unit_test(test_webhook_shape),
        cmocka_unit_test(test_render_is_stable),
        cmocka_unit_test(test_limits_cut_on_utf8),
        cmocka_unit_test(test_signature),
        cmocka_unit_test(test_url_check),
        cmocka_unit_test(test_notify_words),
        cmocka_unit_test(test_delivery_key),
        cmocka_unit_test(test_backoff_schedule),
        cmocka_unit_test(test_retry_after_and_verdicts),
        cmocka_unit_test(test_seal),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

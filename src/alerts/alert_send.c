/* One delivery attempt over libcurl (see alert_send.h for AL-SD1 to AL-SD3). */
#include "alerts/alert_send.h"

#include "alerts/alert_format.h"
#include "alerts/alert_retry.h"
#include "util/compat.h"
#include "util/clock.h"

#include <curl/curl.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

typedef struct {
    char body[AL_SEND_BODY_MAX + 1];
    size_t len;
    char retry_after[64];
} answer;

static size_t on_body(char *p, size_t size, size_t n, void *arg)
{
    answer *a = arg;
    size_t len = size * n, room = AL_SEND_BODY_MAX - a->len;
    size_t take = len < room ? len : room;
    memcpy(a->body + a->len, p, take);
    a->len += take;
    a->body[a->len] = '\0';
    return len; /* AL-SD2: the rest is read and dropped */
}

static size_t on_header(char *p, size_t size, size_t n, void *arg)
{
    answer *a = arg;
    size_t len = size * n;
    static const char name[] = "retry-after:";
    if (len > sizeof name - 1 && strncasecmp(p, name, sizeof name - 1) == 0) {
        const char *v = p + sizeof name - 1;
        size_t vl = len - (sizeof name - 1);
        while (vl && (*v == ' ' || *v == '\t'))
            v++, vl--;
        while (vl && (v[vl - 1] == '\r' || v[vl - 1] == '\n' || v[vl - 1] == ' '))
            vl--;
        snprintf(a->retry_after, sizeof a->retry_after, "%.*s", (int)vl, v);
    }
    return len;
}

/* AL-SD3: cuts msg where it quotes the URL past its authority. */
static void scrub(const char *url, char *msg)
{
    const char *a = strstr(url, "://");
    const char *path = a ? a + 3 + strcspn(a + 3, "/?#") : url;
    if (strlen(path) > 1) {
        char *hit = strstr(msg, path);
        if (hit)
            snprintf(hit, 4, "\xe2\x80\xa6");
    }
    char *full = strstr(msg, url);
    if (full)
        snprintf(full, 4, "\xe2\x80\xa6");
}

static int on_progress(void *arg, curl_off_t dt, curl_off_t dn, curl_off_t ut, curl_off_t un)
{
    const atomic_bool *cancel = arg;
    return cancel && atomic_load_explicit(cancel, memory_order_relaxed) ? 1 : 0;
}

static struct curl_slist *headers(const al_send_req *rq)
{
    char h[256], sig[7 + 64 + 1];
    struct curl_slist *l = NULL, *n;
#define ADD(...)                                                                                   \
    do {                                                                                           \
        snprintf(h, sizeof h, __VA_ARGS__);                                                        \
        if (!(n = curl_slist_append(l, h)))                                                        \
            goto fail;                                                                             \
        l = n;                                                                                     \
    } while (0)
    ADD("Content-Type: application/json");
    ADD("User-Agent: Dumont/%s", DUMONT_VERSION);
    ADD("Idempotency-Key: %s", rq->delivery_key);
    ADD("X-Dumont-Delivery: %s", rq->delivery_key);
    ADD("X-Dumont-Event: %s", rq->event_type);
    ADD("Expect:"); /* no 100-continue round trip */
    if (rq->secret) {
        al_sign(rq->secret, rq->body, rq->len, sig);
        ADD("X-Dumont-Signature: %s", sig);
    }
#undef ADD
    return l;
fail:
    curl_slist_free_all(l);
    return NULL;
}

int al_send(const al_send_req *rq, al_send_result *ret)
{
    memset(ret, 0, sizeof *ret);
    ret->retry_after_ms = -1;
    answer *a = calloc(1, sizeof *a);
    CURL *c = curl_easy_init();
    struct curl_slist *hl = headers(rq);
    if (!a || !c || !hl) {
        free(a);
        curl_easy_cleanup(c);
        curl_slist_free_all(hl);
        return -ENOMEM;
    }
    char cerr[CURL_ERROR_SIZE] = "";
    curl_easy_setopt(c, CURLOPT_URL, rq->url);
    compat_http_only(c); /* COMPAT-C1 */
    curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, AL_SEND_CONNECT_MS);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS,
                     rq->timeout_ms > 0 ? rq->timeout_ms : AL_SEND_TIMEOUT_MS);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, hl);
    curl_easy_setopt(c, CURLOPT_POST, 1L);
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, rq->body);
    curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)rq->len);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, a);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, a);
    curl_easy_setopt(c, CURLOPT_ERRORBUFFER, cerr);
    if (rq->cancel) {
        curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, on_progress);
        curl_easy_setopt(c, CURLOPT_XFERINFODATA, (void *)rq->cancel);
        curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
    }
    curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, 1L);
    curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, 2L);
    if (rq->ca_file && *rq->ca_file)
        curl_easy_setopt(c, CURLOPT_CAINFO, rq->ca_file);
    int64_t t0 = clock_mono_ms();
    CURLcode cc = curl_easy_perform(c);
    ret->elapsed_ms = clock_mono_ms() - t0;
    if (cc == CURLE_OK) {
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &ret->status);
        ret->retry_after_ms =
            al_retry_after_ms(ret->status, a->retry_after, a->body, a->len, clock_wall_ms());
        if (ret->status < 200 || ret->status >= 300) {
            /* the receiver's own words help (Slack: "invalid_payload", "no_service") */
            char first[120];
            snprintf(first, sizeof first, "%.*s", (int)strcspn(a->body, "\r\n"), a->body);
            for (char *p = first; *p; p++)
                if ((unsigned char)*p < 0x20 || *p == '"' || *p == '\\')
                    *p = ' ';
            snprintf(ret->error, sizeof ret->error, "HTTP %ld%s%s", ret->status,
                     first[0] ? ": " : "", first);
        }
    } else {
        snprintf(ret->error, sizeof ret->error, "%s", cerr[0] ? cerr : curl_easy_strerror(cc));
        scrub(rq->url, ret->error);
    }
    curl_slist_free_all(hl);
    curl_easy_cleanup(c);
    free(a);
    return 0;
}

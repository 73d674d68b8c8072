/* Readiness probes (see probe.h for AG-P1 to AG-P2). */
#include "agent/probe.h"

#include "agent/workload.h"
#include "util/compat.h"
#include "util/clock.h"
#include "util/error.h"

#include <curl/curl.h>
#include <errno.h>
#include <jansson.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#define OLLAMA_DEFAULT  "http://127.0.0.1:11434"
#define EXEC_TIMEOUT_MS 10000

struct prb_runner {
    char spec[WL_CMD_MAX];
    int64_t every_ms;
    pthread_t th;
    atomic_bool stop;
    atomic_int state; /* hb_probe: written by the probe thread, read by the agent's */
};

typedef struct {
    char *buf;
    size_t len;
} body;

static size_t on_data(char *p, size_t sz, size_t n, void *ctx)
{
    body *b = ctx;
    size_t add = sz * n;
    if (b->len + add > PRB_BODY_MAX) /* AG-P2 */
        return 0;
    char *nb = realloc(b->buf, b->len + add + 1);
    if (!nb)
        return 0;
    memcpy(nb + b->len, p, add);
    b->buf = nb;
    b->len += add;
    b->buf[b->len] = '\0';
    return add;
}

/* One HTTP request; returns the status (0 on a transport failure). */
static long http_call(const char *url, const char *post, long timeout_ms, body *b)
{
    CURL *c = curl_easy_init();
    if (!c)
        return 0;
    struct curl_slist *h = post ? curl_slist_append(NULL, "Content-Type: application/json") : NULL;
    curl_easy_setopt(c, CURLOPT_URL, url);
    compat_http_only(c); /* COMPAT-C1 */
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, timeout_ms);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, 3000L);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_data);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, b);
    if (post) {
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, post);
        curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
    }
    long status = 0;
    if (curl_easy_perform(c) == CURLE_OK)
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    curl_slist_free_all(h);
    curl_easy_cleanup(c);
    return status;
}

static hb_probe probe_http(const char *url)
{
    body b = {0};
    long st = http_call(url, NULL, 5000, &b);
    free(b.buf);
    return st >= 200 && st < 300 ? HB_PR_OK : HB_PR_FAILING;
}

static hb_probe probe_ollama(const char *arg, int first)
{
    char model[256], url[WL_CMD_MAX];
    const char *at = strchr(arg, '@');
    size_t ml = at ? (size_t)(at - arg) : strlen(arg);
    if (ml == 0 || ml >= sizeof model)
        return HB_PR_FAILING;
    memcpy(model, arg, ml);
    model[ml] = '\0';
    snprintf(url, sizeof url, "%s/api/generate", at ? at + 1 : OLLAMA_DEFAULT);
    json_t *req =
        json_pack("{s:s, s:s, s:b}", "model", model, "prompt", "Reply with one word.", "stream", 0);
    char *post = req ? json_dumps(req, JSON_COMPACT) : NULL;
    json_decref(req);
    body b = {0};
    long st = post ? http_call(url, post, first ? 120000 : 30000, &b) : 0;
    free(post);
    json_t *ans = st >= 200 && st < 300 && b.buf ? json_loads(b.buf, 0, NULL) : NULL;
    const char *resp = json_string_value(json_object_get(ans, "response"));
    hb_probe r = resp && *resp ? HB_PR_OK : HB_PR_FAILING;
    json_decref(ans);
    free(b.buf);
    return r;
}

static hb_probe probe_exec(const char *cmd)
{
    wl_sup w;
    if (wl_init(&w, cmd, 1, 1, NULL, 0) != 0)
        return HB_PR_FAILING;
    w.quiet = 1;
    if (wl_start(&w, clock_mono_ms(), NULL, 0) != 0)
        return HB_PR_FAILING;
    int64_t deadline = clock_mono_ms() + EXEC_TIMEOUT_MS;
    int status = 0;
    pid_t r;
    while ((r = waitpid(w.pid, &status, WNOHANG)) == 0 && clock_mono_ms() < deadline)
        clock_sleep_ms(20, NULL);
    if (r == 0) { /* timed out */
        kill(-w.pid, SIGKILL);
        waitpid(w.pid, &status, 0);
        return HB_PR_FAILING;
    }
    return r == w.pid && WIFEXITED(status) && WEXITSTATUS(status) == 0 ? HB_PR_OK : HB_PR_FAILING;
}

hb_probe prb_run_once(const char *spec, int first)
{
    if (strncmp(spec, "http:", 5) == 0)
        return probe_http(spec + 5);
    if (strncmp(spec, "exec:", 5) == 0)
        return probe_exec(spec + 5);
    if (strncmp(spec, "ollama:", 7) == 0)
        return probe_ollama(spec + 7, first);
    return HB_PR_FAILING;
}

int prb_check_spec(const char *spec, char *err, size_t errlen)
{
    int ok = spec && strlen(spec) < WL_CMD_MAX &&
             ((strncmp(spec, "http:", 5) == 0 && spec[5]) ||
              (strncmp(spec, "exec:", 5) == 0 && spec[5]) ||
              (strncmp(spec, "ollama:", 7) == 0 && spec[7] && spec[7] != '@'));
    if (!ok)
        return dm_fail(err, errlen, DM_E_INVALID,
                       "probe must be http:URL, exec:CMD or ollama:MODEL[@URL]");
    return 0;
}

int prb_spec_resolve(const char *spec, const char *ollama_host, char *out, size_t outlen)
{
    int rc = prb_check_spec(spec, NULL, 0);
    if (rc)
        return rc;
    const char *h = ollama_host;
    int bare = strncmp(spec, "ollama:", 7) == 0 && !strchr(spec + 7, '@') && h && *h;
    size_t hl = bare ? strlen(h) : 0;
    for (size_t i = 0; i < hl; i++) /* one printable word, no '@' (the spec's separator) */
        if ((unsigned char)h[i] <= 0x20 || h[i] == 0x7f || h[i] == '@')
            return DM_E_INVALID;
    while (hl > 0 && h[hl - 1] == '/')
        hl--;
    const char *scheme = bare && !strstr(h, "://") ? "http://" : "";
    /* "host" alone: Ollama's port. A ':' after the last ']' is a port. */
    const char *hostpart = bare ? h + (strstr(h, "://") ? strstr(h, "://") - h + 3 : 0) : h;
    const char *br = bare ? strrchr(hostpart, ']') : NULL;
    int has_port = bare && strchr(br ? br : hostpart, ':') != NULL;
    int n = bare ? snprintf(out, outlen, "%s@%s%.*s%s", spec, scheme, (int)hl, h,
                            has_port ? "" : ":11434")
                 : snprintf(out, outlen, "%s", spec);
    if (n < 0 || (size_t)n >= outlen)
        return DM_E_TOO_BIG;
    return 0;
}

static void *probe_main(void *arg)
{
    prb_runner *p = arg;
    int first = 1;
    while (!atomic_load(&p->stop)) {
        hb_probe st = prb_run_once(p->spec, first);
        atomic_store_explicit(&p->state, (int)st, memory_order_relaxed); /* a value, no data */
        first = first && st != HB_PR_OK; /* the long timeout until it answered once */
        clock_sleep_ms(p->every_ms, &p->stop);
    }
    return NULL;
}

int prb_start(const char *spec, int64_t every_ms, prb_runner **ret, char *err, size_t errlen)
{
    int rc = prb_check_spec(spec, err, errlen);
    if (rc)
        return rc;
    prb_runner *p = calloc(1, sizeof *p);
    if (!p)
        return dm_fail(err, errlen, -ENOMEM, "out of memory");
    snprintf(p->spec, sizeof p->spec, "%s", spec);
    p->every_ms = every_ms > 0 ? every_ms : 5000;
    atomic_init(&p->state, HB_PR_PENDING);
    if ((rc = pthread_create(&p->th, NULL, probe_main, p)) != 0) {
        free(p);
        return dm_fail(err, errlen, -rc, "probe thread: %s", strerror(rc));
    }
    *ret = p;
    return 0;
}

hb_probe prb_state(prb_runner *p)
{
    return p ? (hb_probe)atomic_load_explicit(&p->state, memory_order_relaxed) : HB_PR_NONE;
}

void prb_stop(prb_runner *p)
{
    if (!p)
        return;
    atomic_store(&p->stop, true);
    pthread_join(p->th, NULL); /* a running request ends at its timeout */
    free(p);
}

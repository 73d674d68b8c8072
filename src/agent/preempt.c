/* Preemption notice polling (see preempt.h for AG-E1 to AG-E3). */
#include "agent/preempt.h"

#include "agent/agent_http.h"
#include "util/clock.h"
#include "util/error.h"
#include "util/log.h"

#include <errno.h>
#include <jansson.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ANSWER_MAX 4096

struct pre_watch {
    pre_cloud cloud;
    char base[1024];
    int64_t every_ms;
    char token[512]; /* IMDSv2 session token; "" none yet */
    pthread_t th;
    atomic_bool stop;
    atomic_bool noticed; /* AG-E1: set once by the watch thread, read by the agent's */
};

typedef struct {
    char buf[ANSWER_MAX];
    size_t len;
} answer;

/* One request; the HTTP status, or 0 on a transport failure (AG-E2: 2 s, capped). */
static long fetch(const char *method, const char *url, const char *header, answer *a)
{
    agent_req r = {.method = method,
                   .url = url,
                   .header = header,
                   .timeout_ms = 2000,
                   .buf = a->buf,
                   .cap = sizeof a->buf};
    long status = agent_http(&r, NULL, 0);
    a->len = r.len;
    return status;
}

static int aws_token(pre_watch *w)
{
    char url[1200];
    answer a;
    snprintf(url, sizeof url, "%s/latest/api/token", w->base);
    long st = fetch("PUT", url, "X-aws-ec2-metadata-token-ttl-seconds: 21600", &a);
    while (a.len > 0 && (a.buf[a.len - 1] == '\n' || a.buf[a.len - 1] == '\r'))
        a.buf[--a.len] = '\0';
    if (st != 200 || a.len == 0 || a.len >= sizeof w->token || strchr(a.buf, '\n'))
        return -1;
    memcpy(w->token, a.buf, a.len + 1);
    return 0;
}

/* 1: a notice; 0: none; -1: could not tell. */
static int poll_aws(pre_watch *w)
{
    char url[1200], hdr[600];
    answer a;
    if (!w->token[0] && aws_token(w) != 0)
        return -1;
    snprintf(url, sizeof url, "%s/latest/meta-data/spot/instance-action", w->base);
    snprintf(hdr, sizeof hdr, "X-aws-ec2-metadata-token: %s", w->token);
    long st = fetch("GET", url, hdr, &a);
    if (st == 401) { /* AG-E3 */
        w->token[0] = '\0';
        return -1;
    }
    if (st == 404)
        return 0;
    if (st != 200)
        return -1;
    json_t *j = json_loadb(a.buf, a.len, 0, NULL);
    const char *action = json_string_value(json_object_get(j, "action"));
    int notice = action && (strcmp(action, "terminate") == 0 || strcmp(action, "stop") == 0 ||
                            strcmp(action, "hibernate") == 0);
    json_decref(j);
    return notice ? 1 : -1;
}

static int poll_gcp(pre_watch *w)
{
    char url[1200];
    answer a;
    snprintf(url, sizeof url, "%s/computeMetadata/v1/instance/preempted", w->base);
    if (fetch("GET", url, "Metadata-Flavor: Google", &a) != 200)
        return -1;
    if (strncmp(a.buf, "TRUE", 4) == 0)
        return 1;
    return strncmp(a.buf, "FALSE", 5) == 0 ? 0 : -1;
}

/* local: GCP's answer in a file (AG-E2: capped, and unreadable is no notice). */
static int poll_local(pre_watch *w)
{
    char path[1200];
    const char *dir = strncmp(w->base, "file://", 7) == 0 ? w->base + 7 : w->base;
    snprintf(path, sizeof path, "%s/computeMetadata/v1/instance/preempted", dir);
    FILE *f = fopen(path, "re");
    if (!f)
        return -1;
    char buf[16] = "";
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    if (strncmp(buf, "TRUE", 4) == 0)
        return 1;
    return strncmp(buf, "FALSE", 5) == 0 ? 0 : -1;
}

static void *watch_main(void *arg)
{
    pre_watch *w = arg;
    int warned = 0;
    while (!atomic_load(&w->stop) && !atomic_load(&w->noticed)) {
        int r = w->cloud == PRE_AWS   ? poll_aws(w)
                : w->cloud == PRE_GCP ? poll_gcp(w)
                                      : poll_local(w);
        if (r == 1) {
            atomic_store(&w->noticed, true); /* AG-E1 */
            log_warn("agent.preemption_notice", "cloud=%s", pre_cloud_name(w->cloud));
        } else if (r < 0 && !warned) {
            warned = 1;
            log_warn("agent.metadata_unusable", "cloud=%s will_retry=1", pre_cloud_name(w->cloud));
        }
        clock_sleep_ms(w->every_ms, &w->stop);
    }
    return NULL;
}

static const char *const cloud_names[] = {"none", "aws", "gcp", "local"};

const char *pre_cloud_name(pre_cloud c)
{
    return (unsigned)c <= PRE_LOCAL ? cloud_names[c] : "unknown";
}

int pre_cloud_parse(const char *s, pre_cloud *ret)
{
    const char *const *names = cloud_names;
    for (int i = 0; s && i <= PRE_LOCAL; i++)
        if (strcmp(s, names[i]) == 0) {
            *ret = (pre_cloud)i;
            return 0;
        }
    return DM_E_INVALID;
}

int pre_start(pre_cloud cloud, const char *base_url, int64_t every_ms, pre_watch **ret, char *err,
              size_t errlen)
{
    const char *base = base_url && *base_url ? base_url : PRE_DEFAULT_URL;
    if (cloud == PRE_LOCAL && (!base_url || strncmp(base_url, "file://", 7) != 0))
        return dm_fail(err, errlen, DM_E_INVALID,
                       "local preemption needs --metadata-url file://DIR");
    if (cloud == PRE_NONE || strlen(base) >= sizeof((pre_watch *)0)->base)
        return dm_fail(err, errlen, DM_E_INVALID, "bad preemption cloud or metadata URL");
    pre_watch *w = calloc(1, sizeof *w);
    if (!w)
        return dm_fail(err, errlen, -ENOMEM, "out of memory");
    w->cloud = cloud;
    snprintf(w->base, sizeof w->base, "%s", base);
    size_t n = strlen(w->base);
    while (n > 0 && w->base[n - 1] == '/')
        w->base[--n] = '\0';
    w->every_ms = every_ms > 0 ? every_ms : 1000;
    int rc = pthread_create(&w->th, NULL, watch_main, w);
    if (rc) {
        free(w);
        return dm_fail(err, errlen, -rc, "preemption thread: %s", strerror(rc));
    }
    *ret = w;
    return 0;
}

int pre_noticed(pre_watch *w)
{
    return w ? atomic_load(&w->noticed) : 0;
}

void pre_stop(pre_watch *w)
{
    if (!w)
        return;
    atomic_store(&w->stop, true);
    pthread_join(w->th, NULL);
    explicit_bzero(w->token, sizeof w->token);
    free(w);
}

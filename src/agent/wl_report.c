/* Crash reports of the agent's workload (see wl_report.h for AG-R1 to AG-R5). */
#define _GNU_SOURCE
#include "agent/wl_report.h"

#include "agent/agent_http.h"
#include "util/clock.h"
#include "util/error.h"
#include "util/log.h"
#include "util/secret.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

typedef struct {
    int status;  /* raw wait status */
    int64_t ran_ms;
    uint32_t restarts;
    int gave_up, ever_healthy;
    char output[WL_TAIL_MAX];
} wlr_exit;

struct wlr {
    wlr_opts o;
    pthread_t th;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    atomic_bool stop;
    int pending;   /* a report waits in next */
    wlr_exit next; /* AG-R1 */
    uint32_t seen_exits;
    int ever_healthy;
    int64_t gave_up_at_ms;         /* -1: not given up */
    atomic_int gave_up_delivered;  /* AG-R2 */
};

/* ---- the host checks (AG-R3) ---- */

static int workspace_ok(const char *ws, char *why, size_t cap)
{
    /* AG-R5: the workspace belongs to the workload (its user, AG-S6), which may
     * plant a symlink at any name it can guess: a fresh random name, created
     * with O_EXCL | O_NOFOLLOW, so a root agent never writes through a link. */
    char path[4200], rnd[33];
    int fd = -1, e = 0;
    if (secret_random_hex(rnd, sizeof rnd, 16) != 0) {
        e = EIO;
    } else {
        snprintf(path, sizeof path, "%s/.dumont-host-check.%s", ws, rnd);
        fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    }
    char buf[4096] = {0};
    if (!e && (fd < 0 || write(fd, buf, sizeof buf) != (ssize_t)sizeof buf || fsync(fd) != 0))
        e = errno ? errno : EIO;
    if (fd >= 0) {
        close(fd);
        unlink(path);
    }
    if (e && e != EACCES && e != EPERM) { /* a permission is the workload's, not the disk's */
        snprintf(why, cap, "the workspace %.200s does not take a write: %s", ws, strerror(e));
        return 0;
    }
    return 1;
}

static int on_path(const char *prog)
{
    const char *dirs = getenv("PATH");
    char path[4200];
    for (const char *d = dirs ? dirs : "/usr/local/bin:/usr/bin:/bin"; *d;) {
        size_t n = strcspn(d, ":");
        if (n > 0 && snprintf(path, sizeof path, "%.*s/%s", (int)n, d, prog) < (int)sizeof path &&
            access(path, X_OK) == 0)
            return 1;
        d += n + (d[n] == ':');
    }
    return 0;
}

/* Runs cmd as the workload runs; 1 when it exits 0 within WLR_CHECK_MS. */
static int command_ok(const wlr *r, const char *cmd, char *why, size_t cap)
{
    wl_sup c;
    char err[256] = "";
    if (wl_init(&c, cmd, 1, 1, err, sizeof err) != 0) {
        snprintf(why, cap, "host check '%.100s': %.120s", cmd, err);
        return 0;
    }
    c.quiet = 1;
    if (r->o.runas) {
        c.cwd = r->o.runas->cwd;
        c.env_extra = r->o.runas->env_extra;
        c.drop = r->o.runas->drop;
        c.uid = r->o.runas->uid;
        c.gid = r->o.runas->gid;
    }
    if (wl_start(&c, clock_mono_ms(), err, sizeof err) != 0) {
        snprintf(why, cap, "host check '%.100s': %.120s", cmd, err);
        return 0;
    }
    int64_t deadline = clock_mono_ms() + WLR_CHECK_MS;
    int st = 0;
    pid_t got;
    while ((got = waitpid(c.pid, &st, WNOHANG)) == 0 && clock_mono_ms() < deadline)
        clock_sleep_ms(20, NULL);
    if (got != c.pid) {
        kill(-c.pid, SIGKILL);
        waitpid(c.pid, &st, 0);
        snprintf(why, cap, "host check '%.100s' did not finish within %d s", cmd,
                 WLR_CHECK_MS / 1000);
        return 0;
    }
    kill(-c.pid, SIGKILL); /* what it left in its group */
    if (WIFEXITED(st) && WEXITSTATUS(st) == 0)
        return 1;
    snprintf(why, cap, "host check '%.100s' failed (%s %d)", cmd,
             WIFEXITED(st) ? "exit status" : "signal",
             WIFEXITED(st) ? WEXITSTATUS(st) : WTERMSIG(st));
    return 0;
}

/* AG-R3: 1 when the host looks at fault, with the reason in why. */
static int host_fault(const wlr *r, char *why, size_t cap)
{
    why[0] = '\0';
    if (r->o.workspace && !workspace_ok(r->o.workspace, why, cap))
        return 1;
    if (r->o.kind && strcmp(r->o.kind, "gpu") == 0 && on_path("nvidia-smi") &&
        !command_ok(r, "nvidia-smi -L", why, cap))
        return 1;
    if (r->o.host_check && *r->o.host_check && !command_ok(r, r->o.host_check, why, cap))
        return 1;
    snprintf(why, cap, "%s", "the host passed its checks");
    return 0;
}

/* ---- the reports ---- */

static char *report_body(const wlr *r, const wlr_exit *x)
{
    json_t *j = json_pack("{s:I, s:I, s:b, s:b, s:s}", "ran_ms", (json_int_t)x->ran_ms,
                          "restarts", (json_int_t)x->restarts, "gave_up", x->gave_up,
                          "ever_healthy", x->ever_healthy, "output", x->output);
    if (!j)
        return NULL;
    json_object_set_new(j, "exit_code",
                        WIFEXITED(x->status) ? json_integer(WEXITSTATUS(x->status)) : json_null());
    json_object_set_new(j, "signal",
                        WIFSIGNALED(x->status) ? json_integer(WTERMSIG(x->status)) : json_null());
    if (x->gave_up) {
        char why[512];
        int fault = host_fault(r, why, sizeof why);
        json_object_set_new(j, "host_fault", json_boolean(fault));
        json_object_set_new(j, "host_check", json_string(why));
    }
    char *s = json_dumps(j, JSON_COMPACT);
    json_decref(j);
    return s;
}

/* One POST; 1 when the server took it (2xx). */
static int post(const wlr *r, const char *body)
{
    char url[1200], answer[2048], why[256] = "";
    snprintf(url, sizeof url, "%s/api/instances/%lld/workload-exit", r->o.server_url,
             (long long)r->o.instance_id);
    agent_req q = {.url = url,
                   .token = r->o.token,
                   .ca_file = r->o.ca_file,
                   .json = body,
                   .timeout_ms = 10000,
                   .buf = answer,
                   .cap = sizeof answer};
    long status = agent_http(&q, why, sizeof why);
    if (status >= 200 && status < 300)
        return 1;
    char qw[300];
    log_warn("agent.workload_report_failed", "status=%ld error=%s", status,
             log_quote(qw, sizeof qw, why));
    return status == 400 || status == 401 || status == 403 || status == 404 ? -1 : 0;
}

static void *report_thread(void *arg)
{
    wlr *r = arg;
    pthread_mutex_lock(&r->lock);
    while (!atomic_load(&r->stop)) {
        if (!r->pending) {
            pthread_cond_wait(&r->cond, &r->lock);
            continue;
        }
        wlr_exit x = r->next;
        r->pending = 0;
        pthread_mutex_unlock(&r->lock);
        char *body = report_body(r, &x);
        int sent = 0;
        for (int64_t backoff = 200, until = clock_mono_ms() + WLR_HOLD_MS;
             body && !sent && clock_mono_ms() < until; backoff = backoff < 3200 ? backoff * 2 : 3200) {
            sent = post(r, body);
            if (sent < 0 || atomic_load(&r->stop))
                break;
            if (!sent)
                clock_sleep_ms(backoff, &r->stop);
        }
        free(body);
        if (x.gave_up)
            atomic_store(&r->gave_up_delivered, 1); /* AG-R2: delivered, or given up on */
        log_info("agent.workload_reported", "gave_up=%d delivered=%d restarts=%u", x.gave_up,
                 sent == 1, x.restarts);
        pthread_mutex_lock(&r->lock);
    }
    pthread_mutex_unlock(&r->lock);
    return NULL;
}

int wlr_start(const wlr_opts *o, wlr **ret, char *err, size_t errlen)
{
    wlr *r = calloc(1, sizeof *r);
    if (!r)
        return dm_fail(err, errlen, -ENOMEM, "out of memory");
    r->o = *o;
    r->gave_up_at_ms = -1;
    pthread_mutex_init(&r->lock, NULL);
    pthread_cond_init(&r->cond, NULL);
    int rc = pthread_create(&r->th, NULL, report_thread, r);
    if (rc) {
        pthread_mutex_destroy(&r->lock);
        pthread_cond_destroy(&r->cond);
        free(r);
        return dm_fail(err, errlen, -rc, "cannot start the workload reporter");
    }
    *ret = r;
    return 0;
}

hb_workload wlr_tick(wlr *r, const wl_sup *w, hb_probe probe, int64_t now_ms)
{
    if (!r)
        return w->state;
    int64_t ran = w->state == HB_WL_RUNNING ? now_ms - w->started_ms : -1;
    if ((probe == HB_PR_OK && ran >= WLR_PROBE_RUN_MS) ||
        (probe == HB_PR_NONE && ran >= WLR_HEALTHY_RUN_MS))
        r->ever_healthy = 1; /* AG-R4 */
    if (w->exits != r->seen_exits) {
        r->seen_exits = w->exits;
        int gave_up = w->state == HB_WL_CRASHLOOPING;
        pthread_mutex_lock(&r->lock);
        if (!(r->pending && r->next.gave_up)) { /* AG-R1: the one that gave up stays */
            r->next.status = w->last_status;
            r->next.ran_ms = w->last_ran_ms;
            r->next.restarts = w->restarts;
            r->next.gave_up = gave_up;
            r->next.ever_healthy = r->ever_healthy;
            wl_tail(w, WLR_TAIL_LINES, r->next.output, sizeof r->next.output);
            for (char *c = r->next.output; *c; c++) /* text only: JSON needs UTF-8 */
                if ((unsigned char)*c >= 0x80 || ((unsigned char)*c < 0x20 && *c != '\n' &&
                                                  *c != '\t') || *c == 0x7f)
                    *c = '?';
            r->pending = 1;
            pthread_cond_signal(&r->cond);
        }
        pthread_mutex_unlock(&r->lock);
        if (gave_up && r->gave_up_at_ms < 0)
            r->gave_up_at_ms = now_ms;
    }
    if (w->state == HB_WL_CRASHLOOPING && !atomic_load(&r->gave_up_delivered) &&
        r->gave_up_at_ms >= 0 && now_ms - r->gave_up_at_ms < WLR_HOLD_MS + WLR_CHECK_MS)
        return HB_WL_RESTARTING; /* AG-R2 */
    return w->state;
}

void wlr_stop(wlr *r)
{
    if (!r)
        return;
    pthread_mutex_lock(&r->lock);
    atomic_store(&r->stop, 1);
    pthread_cond_signal(&r->cond);
    pthread_mutex_unlock(&r->lock);
    pthread_join(r->th, NULL);
    pthread_mutex_destroy(&r->lock);
    pthread_cond_destroy(&r->cond);
    free(r);
}

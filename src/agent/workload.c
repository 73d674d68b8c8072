/* Workload supervision (see workload.h for S1-S4). */
#define _GNU_SOURCE /* posix_spawn_file_actions_addchdir_np */
#include "agent/workload.h"

#include "util/clock.h"
#include "util/error.h"
#include "util/log.h"

#include <errno.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

/* Splits cmdline into words written to w->buf, pointed to by w->argv. The
 * output is never longer than the input plus one NUL (checked by the caller). */
static int split_words(wl_sup *w, const char *p, char *err, size_t errlen)
{
    int n = 0;
    char *out = w->buf;
    while (*p) {
        while (*p == ' ' || *p == '\t')
            p++;
        if (!*p)
            break;
        if (n == WL_ARGV_MAX)
            return dm_fail(err, errlen, DM_E_INVALID, "workload: more than %d words", WL_ARGV_MAX);
        w->argv[n++] = out;
        while (*p && *p != ' ' && *p != '\t') {
            if (*p != '\'' && *p != '"') {
                *out++ = *p++;
                continue;
            }
            char q = *p++;
            while (*p && *p != q)
                *out++ = *p++;
            if (*p != q)
                return dm_fail(err, errlen, DM_E_INVALID, "workload: unclosed quote");
            p++;
        }
        *out++ = '\0';
    }
    w->argv[n] = NULL;
    if (n == 0)
        return dm_fail(err, errlen, DM_E_INVALID, "workload: empty command");
    return 0;
}

int wl_init(wl_sup *w, const char *cmdline, int crash_limit, int64_t crash_window_ms, char *err,
            size_t errlen)
{
    memset(w, 0, sizeof *w);
    if (!cmdline)
        return dm_fail(err, errlen, DM_E_INVALID, "workload: no command");
    if (strlen(cmdline) >= sizeof w->buf)
        return dm_fail(err, errlen, DM_E_TOO_BIG, "workload: command over %d bytes", WL_CMD_MAX);
    w->crash_limit = crash_limit >= 1 ? crash_limit : 5;
    w->crash_window_ms = crash_window_ms > 0 ? crash_window_ms : 60000;
    w->backoff_ms = WL_BACKOFF_MS;
    w->state = HB_WL_NONE;
    return split_words(w, cmdline, err, errlen);
}

int wl_start(wl_sup *w, int64_t now_ms, char *err, size_t errlen)
{
    posix_spawnattr_t attr;
    posix_spawnattr_init(&attr);
    posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK);
    posix_spawnattr_setpgroup(&attr, 0);
    sigset_t none;
    sigemptyset(&none);
    posix_spawnattr_setsigmask(&attr, &none);
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    if (w->cwd) /* glibc >= 2.29 */
        posix_spawn_file_actions_addchdir_np(&fa, w->cwd);
    pid_t pid;
    /* before the spawn: a failed exec may still leave a child that exits
     * 127 and is reaped like any exit (its ran_ms counts from here) */
    w->started_ms = now_ms;
    int rc = posix_spawnp(&pid, w->argv[0], &fa, &attr, w->argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    posix_spawnattr_destroy(&attr);
    char q[300];
    if (rc != 0) {
        w->state = HB_WL_RESTARTING;
        return dm_fail(err, errlen, -rc, "cannot start %s: %s", w->argv[0], strerror(rc));
    }
    w->pid = pid;
    w->state = HB_WL_RUNNING;
    log_write(w->quiet ? LOG_DEBUG : LOG_INFO, "workload.started", "pid=%d cmd=%s restarts=%u",
              (int)pid, log_quote(q, sizeof q, w->argv[0]), w->restarts);
    return 0;
}

static int crashes_in_window(const wl_sup *w, int64_t now_ms)
{
    int n = 0;
    int kept = w->ncrash < WL_CRASH_MAX ? w->ncrash : WL_CRASH_MAX;
    for (int i = 0; i < kept; i++)
        n += now_ms - w->crashes[i] <= w->crash_window_ms;
    return n;
}

/* A reaped exit: S1-S3. */
static void on_exit_status(wl_sup *w, int status, int64_t now_ms)
{
    w->pid = 0;
    w->last_status = status;
    int clean = WIFEXITED(status) && WEXITSTATUS(status) == 0;
    log_write(clean ? LOG_INFO : LOG_WARN, "workload.exited", "status=%d signal=%d ran_ms=%lld",
              WIFEXITED(status) ? WEXITSTATUS(status) : -1,
              WIFSIGNALED(status) ? WTERMSIG(status) : 0, (long long)(now_ms - w->started_ms));
    if (clean) {
        w->state = HB_WL_EXITED;
        return;
    }
    if (now_ms - w->started_ms >= w->crash_window_ms) /* S2: it had recovered */
        w->backoff_ms = WL_BACKOFF_MS;
    w->crashes[w->ncrash++ % WL_CRASH_MAX] = now_ms;
    if (crashes_in_window(w, now_ms) >= w->crash_limit) {
        w->state = HB_WL_CRASHLOOPING;
        log_error("workload.crashlooping", "crashes=%d window_ms=%lld", w->crash_limit,
                  (long long)w->crash_window_ms);
        return;
    }
    w->state = HB_WL_RESTARTING;
    w->next_start_ms = now_ms + w->backoff_ms;
    w->backoff_ms = w->backoff_ms * 2 > WL_BACKOFF_MAX_MS ? WL_BACKOFF_MAX_MS : w->backoff_ms * 2;
}

int wl_tick(wl_sup *w, int64_t now_ms)
{
    hb_workload was = w->state;
    int status;
    if (w->pid > 0 && waitpid(w->pid, &status, WNOHANG) == w->pid)
        on_exit_status(w, status, now_ms);
    if (w->state == HB_WL_RESTARTING && now_ms >= w->next_start_ms) {
        w->restarts++;
        if (wl_start(w, now_ms, NULL, 0) != 0) { /* counts as a crash: S3 holds */
            on_exit_status(w, 127 << 8, now_ms);
        }
    }
    return w->state != was;
}

void wl_stop(wl_sup *w, int64_t grace_ms)
{
    if (w->pid <= 0)
        return;
    kill(-w->pid, SIGTERM);
    int64_t deadline = clock_mono_ms() + grace_ms;
    int status;
    while (waitpid(w->pid, &status, WNOHANG) == 0) {
        if (clock_mono_ms() >= deadline) {
            kill(-w->pid, SIGKILL);
            waitpid(w->pid, &status, 0);
            break;
        }
        clock_sleep_ms(20, NULL);
    }
    kill(-w->pid, SIGKILL); /* what the workload left in its group */
    w->pid = 0;
    w->state = HB_WL_EXITED;
}

/* Workload supervision (see workload.h for AG-S1 to AG-S4). */
#define _GNU_SOURCE /* posix_spawn_file_actions_addchdir_np */
#include "agent/workload.h"

#include "store/store.h"
#include "util/clock.h"
#include "util/error.h"
#include "util/log.h"
#include "util/parse.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <grp.h>
#include <limits.h>
#include <pwd.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

#define ENV_MAX 256 /* variables handed to a workload (AG-S5) */

const char *const WL_ENV_NAMES[] = {
    "PATH",        "HOME",
    "USER",        "LOGNAME",
    "SHELL",       "LANG",
    "LANGUAGE",    "TZ",
    "TERM",        "TMPDIR",
    "PORT",        "DUMONT_WORKSPACE",
    "DUMONT_HOME", "LD_LIBRARY_PATH",
    "HF_HOME",     "XDG_CACHE_HOME",
    NULL,
};

static const char *const env_prefixes[] = {"LC_", "OLLAMA_", "CUDA_", "NVIDIA_", NULL};

/* 1 when list (comma-separated) holds the name of length n. */
static int in_list(const char *list, const char *name, size_t n)
{
    for (const char *p = list; p && *p;) {
        const char *end = strchr(p, ',');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        if (len == n && memcmp(p, name, n) == 0)
            return 1;
        p = end ? end + 1 : NULL;
    }
    return 0;
}

int wl_env_allowed(const char *entry, const char *extra)
{
    const char *eq = entry ? strchr(entry, '=') : NULL;
    if (!eq || eq == entry)
        return 0;
    size_t n = (size_t)(eq - entry);
    if (store_env_secret(entry, n)) /* store.h STORE-S7: not even when named in extra */
        return 0;
    for (const char *const *a = WL_ENV_NAMES; *a; a++)
        if (strlen(*a) == n && memcmp(*a, entry, n) == 0)
            return 1;
    for (const char *const *p = env_prefixes; *p; p++)
        if (strncmp(entry, *p, strlen(*p)) == 0)
            return 1;
    return in_list(extra, entry, n);
}

/* AG-S5, AG-S6: the workload's environment (pointers into environ, and home). */
static void build_env(const wl_sup *w, char *home, size_t homecap, char **out)
{
    int n = 0;
    for (char **e = environ; *e && n < ENV_MAX - 2; e++) {
        if (w->drop && strncmp(*e, "HOME=", 5) == 0)
            continue;
        if (wl_env_allowed(*e, w->env_extra))
            out[n++] = *e;
    }
    if (w->drop && w->cwd && snprintf(home, homecap, "HOME=%s", w->cwd) < (int)homecap)
        out[n++] = home;
    out[n] = NULL;
}

static uid_t chown_uid;
static gid_t chown_gid;

static int chown_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)flag;
    (void)ftw;
    if (st->st_uid != chown_uid || st->st_gid != chown_gid)
        lchown(path, chown_uid, chown_gid); /* best effort: a file that vanished is fine */
    return 0;
}

/* AG-S6: the working directory and all below it belong to the workload's user.
 * One agent runs one workload: the statics are never used concurrently. */
static int chown_tree(const char *dir, uid_t uid, gid_t gid)
{
    chown_uid = uid;
    chown_gid = gid;
    return nftw(dir, chown_one, 32, FTW_PHYS | FTW_MOUNT) == 0 ? 0 : -errno;
}

/* The program posix_spawnp would run: argv0 itself when it holds a '/',
 * else the first executable on $PATH. Before fork: the child must not
 * search (not async-signal-safe). */
static int find_program(const char *argv0, char *out, size_t cap)
{
    if (strchr(argv0, '/'))
        return snprintf(out, cap, "%s", argv0) < (int)cap ? 0 : -ENAMETOOLONG;
    const char *path = getenv("PATH");
    for (const char *p = path ? path : "/usr/local/bin:/usr/bin:/bin"; p && *p;) {
        const char *end = strchr(p, ':');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        if (snprintf(out, cap, "%.*s/%s", (int)len, p, argv0) < (int)cap && access(out, X_OK) == 0)
            return 0;
        p = end ? end + 1 : NULL;
    }
    return -ENOENT;
}

/* AG-S6: fork, then (async-signal-safe calls only) the process group, the
 * signal mask, the directory, the user, exec. The exec's errno comes back
 * through a CLOEXEC pipe. */
static int spawn_as(wl_sup *w, char **envp, int out, pid_t *ret_pid)
{
    char prog[4096];
    int rc = find_program(w->argv[0], prog, sizeof prog), fds[2];
    if (rc)
        return -rc;
    if (pipe2(fds, O_CLOEXEC) != 0)
        return errno;
    sigset_t none;
    sigemptyset(&none);
    pid_t pid = fork();
    if (pid < 0) {
        rc = errno;
        close(fds[0]);
        close(fds[1]);
        return rc;
    }
    if (pid == 0) {
        int e = 0;
        close(fds[0]);
        if ((out >= 0 && (dup2(out, 1) < 0 || dup2(out, 2) < 0)) || /* AG-S7 */
            setpgid(0, 0) != 0 || sigprocmask(SIG_SETMASK, &none, NULL) != 0 ||
            (w->cwd && chdir(w->cwd) != 0) || setgroups(0, NULL) != 0 || setgid(w->gid) != 0 ||
            setuid(w->uid) != 0 || (w->uid != 0 && setuid(0) == 0)) /* no way back */
            e = errno ? errno : EPERM;
        else
            execve(prog, w->argv, envp);
        e = e ? e : errno;
        ssize_t wr = write(fds[1], &e, sizeof e);
        (void)wr;
        _exit(127);
    }
    close(fds[1]);
    int e = 0;
    ssize_t n;
    while ((n = read(fds[0], &e, sizeof e)) < 0 && errno == EINTR)
        ;
    close(fds[0]);
    if (n == (ssize_t)sizeof e) { /* the exec failed: reap the child */
        while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
            ;
        return e;
    }
    *ret_pid = pid;
    return 0;
}

/* 1 when uid:gid may access(path, X_OK) (a child tries, as that user). */
static int can_as(const char *path, uid_t uid, gid_t gid)
{
    pid_t pid = fork();
    if (pid < 0)
        return 0;
    if (pid == 0)
        _exit(setgroups(0, NULL) == 0 && setgid(gid) == 0 && setuid(uid) == 0 &&
                      access(path, X_OK) == 0
                  ? 0
                  : 1);
    int st = 0;
    while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
        ;
    return WIFEXITED(st) && WEXITSTATUS(st) == 0;
}

/* 1 when uid:gid can reach dir: enter the directory that holds it; dir
 * itself is chowned to it before each start. */
static int reachable_as(const char *dir, uid_t uid, gid_t gid)
{
    char parent[PATH_MAX];
    snprintf(parent, sizeof parent, "%s", dir);
    char *slash = strrchr(parent, '/');
    if (slash && slash != parent)
        *slash = '\0';
    else if (slash)
        slash[1] = '\0';
    return can_as(parent, uid, gid);
}

int wl_user_can_run(const wl_sup *w, uid_t uid, gid_t gid)
{
    const char *prog = w->argv[0];
    char path[PATH_MAX];
    if (!prog)
        return 0;
    if (strchr(prog, '/'))
        return can_as(prog, uid, gid);
    const char *dirs = getenv("PATH");
    for (const char *d = dirs ? dirs : "/usr/local/bin:/usr/bin:/bin"; *d;) {
        size_t n = strcspn(d, ":");
        if (n > 0 &&
            (size_t)snprintf(path, sizeof path, "%.*s/%s", (int)n, d, prog) < sizeof path &&
            access(path, X_OK) == 0) /* the one execvp would take */
            return can_as(path, uid, gid);
        d += n + (d[n] == ':');
    }
    return 0;
}

int wl_user_resolve(const char *spec, const char *workspace, int *ret_drop, uid_t *ret_uid,
                    gid_t *ret_gid, char *err, size_t errlen)
{
    *ret_drop = 0;
    if (geteuid() != 0 || (spec && strcmp(spec, "root") == 0))
        return 0;
    int dflt = !spec || !*spec;
    struct passwd pw, *res = NULL;
    char buf[4096];
    int64_t uid = -1, gid = -1;
    if (dflt) {
        if ((getpwnam_r("dumont-workload", &pw, buf, sizeof buf, &res) != 0 || !res) &&
            (getpwnam_r("nobody", &pw, buf, sizeof buf, &res) != 0 || !res))
            uid = gid = 65534;
    } else if (getpwnam_r(spec, &pw, buf, sizeof buf, &res) != 0 || !res) {
        char u[32] = "", *colon;
        snprintf(u, sizeof u, "%s", spec);
        if ((colon = strchr(u, ':')))
            *colon = '\0';
        if (parse_i64(u, 1, 0x7fffffff, &uid) != 0 ||
            (colon && parse_i64(colon + 1, 0, 0x7fffffff, &gid) != 0))
            return dm_fail(err, errlen, DM_E_INVALID,
                           "workload user '%.64s': no such user (a name, UID or UID:GID)", spec);
        if (!colon)
            gid = uid;
    }
    if (res) {
        uid = res->pw_uid;
        gid = res->pw_gid;
    }
    if (uid == 0)
        return 0;
    if (dflt && workspace && !reachable_as(workspace, (uid_t)uid, (gid_t)gid)) {
        dm_fail(err, errlen, DM_E_INVALID,
                "the workload user (uid %lld) cannot reach the workspace %.200s (a parent "
                "directory is private); the workload runs as root",
                (long long)uid, workspace);
        return 1;
    }
    *ret_drop = 1;
    *ret_uid = (uid_t)uid;
    *ret_gid = (gid_t)gid;
    return 0;
}

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
    w->out_fd = -1;
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

/* AG-S7: n bytes into the ring. */
static void tail_add(wl_sup *w, const char *b, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        w->tail[w->tail_pos] = b[i];
        w->tail_pos = (w->tail_pos + 1) % WL_TAIL_MAX;
    }
    w->tail_len = w->tail_len + n > WL_TAIL_MAX ? WL_TAIL_MAX : w->tail_len + n;
}

/* AG-S7: what the workload wrote since the last tick, passed on to the
 * agent's stderr and kept in the ring (at most 1 MiB a tick). */
static void drain(wl_sup *w)
{
    char b[8192];
    for (int i = 0; w->out_fd >= 0 && i < 128; i++) {
        ssize_t n = read(w->out_fd, b, sizeof b);
        if (n <= 0)
            break;
        tail_add(w, b, (size_t)n);
        ssize_t wr = write(STDERR_FILENO, b, (size_t)n);
        (void)wr;
    }
}

void wl_tail(const wl_sup *w, int max_lines, char *out, size_t cap)
{
    size_t n = w->tail_len < cap - 1 ? w->tail_len : cap - 1;
    size_t start = (w->tail_pos + WL_TAIL_MAX - n) % WL_TAIL_MAX;
    for (size_t i = 0; i < n; i++)
        out[i] = w->tail[(start + i) % WL_TAIL_MAX];
    out[n] = '\0';
    int lines = 0;
    size_t cut = 0;
    for (size_t i = n; i > 0; i--) /* the last max_lines lines (a final newline ends one) */
        if (out[i - 1] == '\n' && i != n && ++lines >= max_lines) {
            cut = i;
            break;
        }
    if (cut)
        memmove(out, out + cut, n - cut + 1);
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
    int pfd[2] = {-1, -1};
    if (w->capture && pipe2(pfd, O_CLOEXEC) == 0) { /* AG-S7: a pipe per run */
        if (w->out_fd >= 0) {
            drain(w);
            close(w->out_fd); /* what the last run's children still hold is theirs */
        }
        fcntl(pfd[0], F_SETFL, O_NONBLOCK);
        w->out_fd = pfd[0];
    }
    if (pfd[1] >= 0) {
        posix_spawn_file_actions_adddup2(&fa, pfd[1], 1);
        posix_spawn_file_actions_adddup2(&fa, pfd[1], 2);
    }
    pid_t pid;
    /* before the spawn: a failed exec may still leave a child that exits
     * 127 and is reaped like any exit (its ran_ms counts from here) */
    w->started_ms = now_ms;
    char *envp[ENV_MAX], home[4200];
    build_env(w, home, sizeof home, envp); /* AG-S5 */
    int rc;
    if (w->drop) { /* AG-S6 */
        if (w->cwd)
            chown_tree(w->cwd, w->uid, w->gid);
        rc = spawn_as(w, envp, pfd[1], &pid);
    } else {
        rc = posix_spawnp(&pid, w->argv[0], &fa, &attr, w->argv, envp);
    }
    if (pfd[1] >= 0)
        close(pfd[1]);
    posix_spawn_file_actions_destroy(&fa);
    posix_spawnattr_destroy(&attr);
    char q[300];
    if (rc != 0) {
        w->state = HB_WL_RESTARTING;
        if (w->capture) { /* AG-S7: the reason is the output of this start */
            char why[600];
            int n = snprintf(why, sizeof why, "dumont agent: cannot start %s: %s\n", w->argv[0],
                             strerror(rc));
            tail_add(w, why, n > 0 && (size_t)n < sizeof why ? (size_t)n : 0);
        }
        return dm_fail(err, errlen, -rc, "cannot start %s: %s", w->argv[0], strerror(rc));
    }
    w->pid = pid;
    w->state = HB_WL_RUNNING;
    log_write(w->quiet ? LOG_DEBUG : LOG_INFO, "workload.started",
              "pid=%d cmd=%s restarts=%u uid=%d", (int)pid, log_quote(q, sizeof q, w->argv[0]),
              w->restarts, w->drop ? (int)w->uid : (int)geteuid());
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

/* A reaped exit: AG-S1 to AG-S3. */
static void on_exit_status(wl_sup *w, int status, int64_t now_ms)
{
    w->pid = 0;
    w->last_status = status;
    w->last_ran_ms = now_ms - w->started_ms;
    int clean = WIFEXITED(status) && WEXITSTATUS(status) == 0;
    log_write(clean ? LOG_INFO : LOG_WARN, "workload.exited", "status=%d signal=%d ran_ms=%lld",
              WIFEXITED(status) ? WEXITSTATUS(status) : -1,
              WIFSIGNALED(status) ? WTERMSIG(status) : 0, (long long)(now_ms - w->started_ms));
    if (clean) {
        w->state = HB_WL_EXITED;
        return;
    }
    w->exits++; /* AG-S7 */
    if (now_ms - w->started_ms >= w->crash_window_ms) /* AG-S2: it had recovered */
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

void wl_start_failed(wl_sup *w, int64_t now_ms)
{
    on_exit_status(w, 127 << 8, now_ms); /* as a shell says "not found" */
}

int wl_tick(wl_sup *w, int64_t now_ms)
{
    hb_workload was = w->state;
    int status;
    drain(w); /* AG-S7 */
    if (w->pid > 0 && waitpid(w->pid, &status, WNOHANG) == w->pid) {
        drain(w); /* what it wrote last */
        on_exit_status(w, status, now_ms);
    }
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
    if (w->out_fd >= 0) {
        drain(w);
        close(w->out_fd);
        w->out_fd = -1;
    }
}

/* The local provider's processes: the /proc scan that finds and kills an
 * instance's processes (local.h PROV-LP2, PROV-LP4), and the detached launch of its
 * agent.
 *
 * Launch: the parent prepares argv/envp/descriptors, then fork()s child A,
 * which calls setsid() (sid = A's pid), fork()s the agent B and exits; B is
 * reparented to init and outlives the server. Only async-signal-safe calls
 * run between fork and execve. A CLOEXEC pipe carries B's pid back, then
 * either EOF (execve worked) or B's errno. */
#define _GNU_SOURCE
#include "provider/local_proc.h"

#include "provider/local.h"
#include "store/store.h"
#include "util/compat.h"
#include "util/clock.h"
#include "util/error.h"
#include "util/fsutil.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

/* ---- processes (PROV-LP2) ---- */

/* State, session and start time of pid from /proc/PID/stat. */
int lproc_stat(int pid, char *ret_state, int *ret_sid, unsigned long long *ret_start)
{
    char path[64], buf[1024];
    snprintf(path, sizeof path, "/proc/%d/stat", pid);
    long n = fs_read_small(path, buf, sizeof buf);
    if (n <= 0)
        return -ESRCH;
    char *p = strrchr(buf, ')'); /* comm may hold spaces and parentheses */
    if (!p)
        return -ESRCH;
    char state = 0;
    int sid = 0;
    unsigned long long start = 0;
    /* after ')': state ppid pgrp session tty tpgid flags minflt cminflt majflt
     * cmajflt utime stime cutime cstime priority nice threads itreal start */
    if (sscanf(p + 1,
               " %c %*d %*d %d %*d %*d %*u %*u %*u %*u %*u %*u %*u %*d %*d %*d %*d %*d %*d %llu",
               &state, &sid, &start) != 3)
        return -ESRCH;
    *ret_state = state;
    *ret_sid = sid;
    *ret_start = start;
    return 0;
}

/* PROV-LP2: the agent and whatever it starts inherit DUMONT_HOME=<dir>/home. */
static int env_marked(int pid, const char *marker, size_t mlen)
{
    char path[64];
    static const size_t cap = 64 * 1024;
    snprintf(path, sizeof path, "/proc/%d/environ", pid);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return 0; /* gone, or another user's */
    char *buf = malloc(cap + 1);
    ssize_t n = 0, r = 0;
    while (buf && (size_t)n < cap &&
           ((r = read(fd, buf + 1 + n, cap - (size_t)n)) > 0 || (r < 0 && errno == EINTR)))
        n += r > 0 ? r : 0;
    close(fd);
    int found = 0;
    if (n > 0) {
        buf[0] = '\0'; /* so the first variable also follows a NUL */
        found = memmem(buf, (size_t)n + 1, marker, mlen) != NULL;
    }
    free(buf);
    return found;
}

#define SCAN_SID_MAX 1024

/* Counts the live processes of an instance (PROV-LP2), SIGKILLing them if kill.
 * A process marked with the instance's DUMONT_HOME is the instance's; one
 * that is only in session sid counts once *confirmed is set, i.e. once a
 * marked process was seen in that session (sticky across a fence's scans):
 * pid numbers are reused (pid_max may be 32768), so a session id read from
 * instance.json after the session died may name a stranger's session. */
static int scan(const char *dir, int sid, int do_kill, int *confirmed)
{
    char marker[PATH_MAX + 32];
    int mlen = snprintf(marker, sizeof marker, "%cDUMONT_HOME=%s/home%c", 0, dir, 0);
    int only_sid[SCAN_SID_MAX], n_sid = 0, found = 0, self = (int)getpid();
    DIR *d = opendir("/proc");
    struct dirent *de;
    if (!d)
        return -errno;
    while ((de = readdir(d)) != NULL) {
        char *end;
        long pid = strtol(de->d_name, &end, 10);
        char st;
        int psid;
        unsigned long long start;
        if (*end || pid <= 1 || pid == self || lproc_stat((int)pid, &st, &psid, &start) != 0 ||
            st == 'Z' || st == 'X')
            continue;
        if (env_marked((int)pid, marker, (size_t)mlen)) {
            *confirmed |= sid > 1 && psid == sid;
            found++;
            if (do_kill)
                kill((pid_t)pid, SIGKILL);
        } else if (sid > 1 && psid == sid && n_sid < SCAN_SID_MAX) {
            only_sid[n_sid++] = (int)pid;
        }
    }
    closedir(d);
    for (int i = 0; *confirmed && i < n_sid; i++) {
        found++;
        if (do_kill)
            kill((pid_t)only_sid[i], SIGKILL);
    }
    return found;
}

/* PROV-PV3/LP4: kills until none is left; 0, or DM_E_BUSY after LOCAL_FENCE_MS. */
int lproc_fence(const char *dir, int sid, int64_t id, char *err, size_t errlen)
{
    int64_t deadline = clock_mono_ms() + LOCAL_FENCE_MS;
    int n = 0, confirmed = 0;
    for (;;) {
        n = scan(dir, sid, 1, &confirmed);
        if (n <= 0)
            break;
        if (clock_mono_ms() > deadline)
            return dm_fail(err, errlen, DM_E_BUSY,
                           "local: %d processes of instance %" PRId64 " still alive after %d ms", n,
                           id, LOCAL_FENCE_MS);
        clock_sleep_ms(5, NULL);
    }
    return n < 0 ? dm_fail(err, errlen, n, "local: cannot scan /proc: %s", strerror(-n)) : 0;
}

/* ---- launch ---- */

int lproc_free_port(void)
{
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof a;
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), port = -1;
    if (fd < 0)
        return -errno;
    if (bind(fd, (struct sockaddr *)&a, sizeof a) == 0 &&
        getsockname(fd, (struct sockaddr *)&a, &len) == 0)
        port = ntohs(a.sin_port);
    else
        port = -errno;
    close(fd);
    return port;
}

#define ARGV_MAX 40
#define ENV_MAX  12

typedef struct {
    char *argv[ARGV_MAX];
    char *envp[ENV_MAX];
    int na, ne;
    char num[6][32];
    char ws[PATH_MAX + 16];
    char meta_url[PATH_MAX + 16];
    char token_file[PATH_MAX + 16];
    char store_file[PATH_MAX + 16]; /* PROV-PV6: the store's settings, when it needs any */
} cmdline;

static void arg(cmdline *c, const char *a, const char *b)
{
    if (c->na + 2 >= ARGV_MAX)
        return;
    c->argv[c->na++] = (char *)a;
    if (b)
        c->argv[c->na++] = (char *)b;
}

static int env(cmdline *c, const char *key, const char *val)
{
    if (c->ne + 1 >= ENV_MAX)
        return -E2BIG;
    char *s = NULL;
    if (asprintf(&s, "%s=%s", key, val) < 0)
        return -ENOMEM;
    c->envp[c->ne++] = s;
    return 0;
}

static void cmdline_free(cmdline *c)
{
    for (int i = 0; i < c->ne; i++) {
        explicit_bzero(c->envp[i], strlen(c->envp[i]));
        free(c->envp[i]);
    }
    c->ne = 0;
}

/* The agent's argv and environment (the briefing's contract, PROV-LP5). */
static int build_cmd(const char *bin, const char *dir, const prov_launch *l, int port,
                     int store_settings, cmdline *c)
{
    char home[PATH_MAX + 16], addr[32], ports[16];
    const char *path = getenv("PATH"); /* the workload finds programs as the server does */
    memset(c, 0, sizeof *c);
    snprintf(c->ws, sizeof c->ws, "%s/workspace", dir);
    char real[PATH_MAX];
    if (realpath(c->ws, real)) /* local.h PROV-LP6: the workspace itself, not the link to it */
        snprintf(c->ws, sizeof c->ws, "%s", real);
    snprintf(home, sizeof home, "%s/home", dir);
    snprintf(addr, sizeof addr, "127.0.0.1:%d", port);
    snprintf(ports, sizeof ports, "%d", port);
    snprintf(c->num[0], sizeof c->num[0], "%" PRId64, l->instance_id);
    snprintf(c->num[1], sizeof c->num[1], "%" PRId64, l->epoch);
    snprintf(c->num[2], sizeof c->num[2], "%" PRId64, l->heartbeat_ms);
    if (l->snapshot_every_ms > 0)
        snprintf(c->num[3], sizeof c->num[3], "%" PRId64 "ms", l->snapshot_every_ms);
    else
        snprintf(c->num[3], sizeof c->num[3], "0"); /* never */
    snprintf(c->meta_url, sizeof c->meta_url, "file://%s/metadata", dir);
    arg(c, bin, "agent");
    if (l->server_url)
        arg(c, "--server", l->server_url);
    arg(c, "--instance", c->num[0]);
    arg(c, "--kind", l->kind ? l->kind : "gpu");
    arg(c, "--workspace", c->ws);
    if (l->workload_cmd)
        arg(c, "--workload", l->workload_cmd);
    if (l->probe_spec)
        arg(c, "--probe", l->probe_spec);
    if (l->heartbeat_ms > 0)
        arg(c, "--heartbeat-ms", c->num[2]);
    if (l->snapshot_every_ms >= 0)
        arg(c, "--snapshot-every", c->num[3]);
    arg(c, "--epoch", c->num[1]);
    if (l->hold)
        arg(c, "--hold", NULL);
    if (l->lease_ms > 0) {
        snprintf(c->num[4], sizeof c->num[4], "%" PRId64 "ms", l->lease_ms);
        arg(c, "--lease", c->num[4]);
    }
    if (l->crash_limit > 0) {
        snprintf(c->num[5], sizeof c->num[5], "%d", l->crash_limit);
        arg(c, "--crash-limit", c->num[5]);
    }
    if (l->host_check)
        arg(c, "--host-check", l->host_check);
    arg(c, "--preempt-cloud", "local");
    arg(c, "--metadata-url", c->meta_url);
    if (l->token && l->token[0]) { /* PROV-PV6: a file, never argv or the environment */
        snprintf(c->token_file, sizeof c->token_file, "%s/agent.token", dir);
        arg(c, "--token-file", c->token_file);
    }
    if (store_settings) { /* PROV-PV6, store.h STORE-S5: keys in a file, never argv or env */
        snprintf(c->store_file, sizeof c->store_file, "%s/store.env", dir);
        arg(c, "--store-env-file", c->store_file);
    }
    int rc = 0;
    if (l->store_url)
        rc = env(c, "DUMONT_STORE", l->store_url);
    if (!rc && l->server_url)
        rc = env(c, "DUMONT_URL", l->server_url);
    if (!rc && l->ca_file)
        rc = env(c, "DUMONT_CA_FILE", l->ca_file);
    if (!rc)
        rc = env(c, "DUMONT_WORKSPACE", c->ws);
    if (!rc)
        rc = env(c, "DUMONT_HOME", home);
    if (!rc)
        rc = env(c, "OLLAMA_HOST", addr);
    if (!rc) { /* Ollama's model directory inside the workspace, so a restore brings it */
        char models[sizeof c->ws + 8];
        snprintf(models, sizeof models, "%s/models", c->ws);
        rc = env(c, "OLLAMA_MODELS", models);
    }
    if (!rc)
        rc = env(c, "PORT", ports);
    if (!rc)
        rc = env(c, "PATH", path ? path : "/usr/local/bin:/usr/bin:/bin");
    return rc;
}

/* Child B: the agent (async-signal-safe calls only). */
static void exec_agent(const char *dir, int in, int log, int pipe_w, cmdline *c)
{
    struct sigaction dfl = {.sa_handler = SIG_DFL};
    sigset_t none;
    int e, out = pipe_w;
    if (dup2(in, 0) < 0 || dup2(log, 1) < 0 || dup2(log, 2) < 0 || dup2(pipe_w, 3) < 0)
        goto fail;
    out = 3;
    if (fcntl(3, F_SETFD, FD_CLOEXEC) < 0 || chdir(dir) != 0)
        goto fail;
    compat_close_from(4); /* COMPAT-C2 */
    for (int s = 1; s < NSIG; s++)
        if (s != SIGKILL && s != SIGSTOP)
            sigaction(s, &dfl, NULL); /* ignored signals would stay ignored */
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    execve(c->argv[0], c->argv, c->envp);
fail:
    e = errno;
    _exit(write(out, &e, sizeof e) < 0 ? 126 : 127);
}

static int read_full(int fd, void *buf, size_t n)
{
    size_t got = 0;
    while (got < n) {
        ssize_t r = read(fd, (char *)buf + got, n - got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        got += (size_t)r;
    }
    return (int)got;
}

/* Double fork (see the top); *ret_pid, *ret_sid: the agent's. */
static int spawn_agent(const char *dir, cmdline *c, int *ret_pid, int *ret_sid, char *err,
                       size_t errlen)
{
    char logp[PATH_MAX + 16];
    int p[2] = {-1, -1}, rc = 0;
    snprintf(logp, sizeof logp, "%s/agent.log", dir);
    int in = open("/dev/null", O_RDONLY | O_CLOEXEC);
    int log = open(logp, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    if (in < 0 || log < 0 || pipe2(p, O_CLOEXEC) != 0) {
        rc = dm_fail(err, errlen, -errno, "local: %s: %s", logp, strerror(errno));
        goto out;
    }
    pid_t a = fork();
    if (a < 0) {
        rc = dm_fail(err, errlen, -errno, "local: fork: %s", strerror(errno));
        goto out;
    }
    if (a == 0) { /* child A: new session, then the agent, then leave */
        int32_t msg[2] = {-1, 0};
        if (setsid() >= 0) {
            pid_t b = fork();
            if (b == 0)
                exec_agent(dir, in, log, p[1], c);
            msg[0] = b;
            msg[1] = b < 0 ? errno : (int32_t)getpid();
        } else {
            msg[1] = errno;
        }
        _exit(write(p[1], msg, sizeof msg) == (ssize_t)sizeof msg ? 0 : 1);
    }
    close(p[1]);
    p[1] = -1;
    int32_t msg[2] = {-1, 0}, e = 0;
    int n = read_full(p[0], msg, sizeof msg);
    if (n == (int)sizeof msg && msg[0] > 0 && read_full(p[0], &e, sizeof e) == (int)sizeof e)
        rc = dm_fail(err, errlen, -e, "local: cannot run %s: %s", c->argv[0], strerror(e));
    else if (n != (int)sizeof msg || msg[0] <= 0)
        rc = dm_fail(err, errlen, -(msg[1] ? msg[1] : EIO), "local: cannot start the agent: %s",
                     strerror(msg[1] ? msg[1] : EIO));
    while (waitpid(a, NULL, 0) < 0 && errno == EINTR)
        ;
    if (rc == 0) {
        *ret_pid = msg[0];
        *ret_sid = msg[1];
    }
out:
    if (in >= 0)
        close(in);
    if (log >= 0)
        close(log);
    if (p[0] >= 0)
        close(p[0]);
    if (p[1] >= 0)
        close(p[1]);
    return rc;
}

int lproc_launch(const char *bin, const char *dir, const prov_launch *l, int port, int *ret_pid,
                 int *ret_sid, char *err, size_t errlen)
{
    cmdline c;
    char *settings = malloc(STORE_ENV_MAX);
    size_t slen = 0;
    if (!settings)
        return dm_fail(err, errlen, -ENOMEM, "local: out of memory");
    int rc = store_env_export(l->store_url, settings, STORE_ENV_MAX, &slen, err, errlen);
    if (rc) {
        free(settings);
        return rc;
    }
    rc = build_cmd(bin, dir, l, port, slen > 0, &c);
    if (rc)
        rc = dm_fail(err, errlen, rc, "local: agent command line: %s", strerror(-rc));
    else if (c.token_file[0] && /* PROV-PV6: only the agent's user reads it */
             (rc = fs_write_atomic(c.token_file, l->token, strlen(l->token), 0600)) != 0)
        rc = dm_fail(err, errlen, rc, "local: cannot write %s: %s", c.token_file, dm_strerror(rc));
    else if (c.store_file[0] && (rc = fs_write_atomic(c.store_file, settings, slen, 0600)) != 0)
        rc = dm_fail(err, errlen, rc, "local: cannot write %s: %s", c.store_file, dm_strerror(rc));
    explicit_bzero(settings, STORE_ENV_MAX);
    free(settings);
    if (rc == 0)
        rc = spawn_agent(dir, &c, ret_pid, ret_sid, err, errlen);
    cmdline_free(&c);
    return rc;
}

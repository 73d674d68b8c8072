/* The workload supervisor of `dumont agent`: starts the workload, restarts
 * it when it crashes, with backoff, and gives up when it crash-loops (like
 * systemd's Restart=on-failure with StartLimitBurst/StartLimitIntervalSec).
 *
 * The command line is split into words here (blanks separate words; '...'
 * and "..." group them, without escapes) and started with posix_spawnp():
 * no shell ever reads it. The workload runs in its own process group, so
 * stopping it stops what it started.
 *
 * AG-S1: exit status 0 is a clean end: exited, not restarted. Any other status
 *     or a signal is a crash.
 * AG-S2: after a crash the restart waits backoff_ms, doubled per crash up to
 *     WL_BACKOFF_MAX_MS, and reset once the workload has run for the crash
 *     window without crashing.
 * AG-S3: crash_limit crashes within crash_window_ms is crashlooping: no more
 *     restarts (the controller may fail over). The crash times are kept in a
 *     ring of at most WL_CRASH_MAX.
 * AG-S4: wl_stop() sends SIGTERM to the group, waits up to grace_ms, then
 *     SIGKILL; it always reaps. wl_tick() never blocks.
 * AG-S5: the workload's environment is an allowlist of the agent's (WL_ENV_NAMES,
 *     the prefixes LC_, OLLAMA_, CUDA_, NVIDIA_, and the names in env_extra,
 *     store credentials excepted even there: store.h STORE-S7):
 *     no Dumont credential, store key or cloud key ever reaches it, whatever
 *     the agent was started with (docs/security.md). DUMONT_HOME (a path,
 *     the local provider's marker: local.h PROV-LP2) and DUMONT_WORKSPACE pass.
 * AG-S6: with drop set (the agent is root), the workload runs as uid/gid with
 *     no supplementary groups, HOME set to its working directory, which is
 *     chowned to it first: it cannot read the agent's token file or
 *     /proc/<agent>/environ.
 * AG-S7: with capture set, the workload's stdout and stderr go through a pipe
 *     the agent drains every tick: each byte is passed on to the agent's own
 *     stderr (its log, as before) and the last WL_TAIL_MAX bytes are kept, so
 *     that a crash can be reported with the last lines the workload wrote
 *     (wl_tail). A start that fails (no such program) leaves its reason there.
 *     Every reaped crash counts in exits. */
#ifndef DUMONT_AGENT_WORKLOAD_H
#define DUMONT_AGENT_WORKLOAD_H

#include "detect/heartbeat.h"

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define WL_CMD_MAX        1024
#define WL_ARGV_MAX       64
#define WL_CRASH_MAX      32
#define WL_BACKOFF_MS     500
#define WL_BACKOFF_MAX_MS 30000
#define WL_TAIL_MAX       4096 /* AG-S7 */

typedef struct {
    char buf[WL_CMD_MAX];
    char *argv[WL_ARGV_MAX + 1];
    pid_t pid; /* 0: not running */
    hb_workload state;
    int64_t started_ms, next_start_ms, backoff_ms;
    int64_t crashes[WL_CRASH_MAX];
    int ncrash, crash_limit;
    int64_t crash_window_ms;
    uint32_t restarts;
    int last_status;       /* raw wait status of the last exit */
    int quiet;             /* no log lines (probes run through here too) */
    const char *cwd;       /* working directory (borrowed; NULL: the agent's); set after wl_init */
    const char *env_extra; /* AG-S5: comma-separated names also passed (borrowed); NULL none */
    int drop;              /* AG-S6: run as uid/gid; set after wl_init */
    uid_t uid;
    gid_t gid;
    int capture;             /* AG-S7: set after wl_init */
    int out_fd;              /* AG-S7: the pipe's read end; -1 none */
    char tail[WL_TAIL_MAX];  /* AG-S7: a ring of the last bytes written */
    size_t tail_pos, tail_len;
    uint32_t exits;          /* AG-S7: crashes reaped so far */
    int64_t last_ran_ms;     /* how long the last run lasted */
} wl_sup;

/* AG-S7: the last lines of the workload's output (at most max_lines, and
 * cap - 1 bytes), NUL-terminated; "" when none was captured. */
void wl_tail(const wl_sup *w, int max_lines, char *out, size_t cap);

/* AG-S5: the names always passed (NULL-terminated). */
extern const char *const WL_ENV_NAMES[];

/* AG-S5: 1 when the variable NAME=... (entry) may reach the workload. */
int wl_env_allowed(const char *entry, const char *extra);

/* AG-S6: who the workload runs as when the agent is root. spec: NULL or ""
 * (the default: user "dumont-workload" if it exists, else "nobody"), "root"
 * (no change), a user name, or UID[:GID]. Sets *ret_drop 0 when the agent is
 * not root or spec is "root". With the default user, a workspace that user
 * cannot reach (a private parent directory) keeps the workload with the
 * agent's user and returns 1 (the caller warns); an explicit user is used
 * regardless. 0 or DM_E_INVALID (unknown user). */
int wl_user_resolve(const char *spec, const char *workspace, int *ret_drop, uid_t *ret_uid,
                    gid_t *ret_gid, char *err, size_t errlen);
/* 1 when uid:gid can execute the workload's program (argv[0], looked up in
 * PATH as execvp does). A default workload user that cannot (the program
 * lies under a private directory, e.g. /root) keeps the workload with the
 * agent's user, as an unreachable workspace does. */
int wl_user_can_run(const wl_sup *w, uid_t uid, gid_t gid);

/* Splits cmdline into argv (S: no shell). DM_E_INVALID on an empty line, an
 * unclosed quote, or more than WL_ARGV_MAX words; DM_E_TOO_BIG when longer
 * than WL_CMD_MAX. crash_limit < 1 or window <= 0 take the defaults (5, 60 s). */
int wl_init(wl_sup *w, const char *cmdline, int crash_limit, int64_t crash_window_ms, char *err,
            size_t errlen);
/* Starts the workload now. */
int wl_start(wl_sup *w, int64_t now_ms, char *err, size_t errlen);
/* A first wl_start that failed counts as a crash (exit 127), as a failed
 * restart does (AG-S3: the restarts stay bounded). */
void wl_start_failed(wl_sup *w, int64_t now_ms);
/* Reaps an exit and restarts when due (AG-S1 to AG-S3). Returns 1 when the state changed. */
int wl_tick(wl_sup *w, int64_t now_ms);
/* AG-S4. */
void wl_stop(wl_sup *w, int64_t grace_ms);

#endif

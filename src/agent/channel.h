/* The control channel, agent side (the controller's side is
 * provider/channel.h): the agent holds one outbound connection to its
 * controller, long-polling POST /api/instances/{id}/commands/poll with its
 * own credential, runs each command on its own instance and answers with
 * POST /api/instances/{id}/commands/{cid}/result. docs/provider.md.
 *
 * Commands: ping; restore {snapshot_id, store, mirror} (before the workload
 * starts: the workspace is replaced only when the whole snapshot verified,
 * SNAP-SN2; the answer has download_ms, decompress_ms, total_ms, bytes and
 * source: "primary" or "mirror"); start_workload; snapshot {tag, store,
 * mirror}; stop (the workload).
 *
 * AG-C1: a command id is run at most once. The ids run and their answers are
 *     kept (the last AGC_KEEP, in state_dir/commands.json, written atomically
 *     after each): a command delivered again is answered with the stored
 *     answer, never run again; one queued or running is not queued twice.
 * AG-C2: a command whose epoch is older than the newest the agent has seen
 *     (its launch epoch, or a later command's) is refused ("failed", the
 *     reason names both epochs) and not run: a stale controller's command is
 *     a fencing token that lost (provider/channel.h PROV-CH3).
 * AG-C3: commands run one at a time, in the order the controller put them,
 *     on a thread of their own: the poll goes on meanwhile (the lease stays
 *     fed during a long restore), and an answer whose post failed is posted
 *     again until it lands or the agent stops.
 * AG-C4: the lease. Once the channel was heard from at all, an agent that has
 *     heard nothing from its controller (no answer to a poll or a post) for
 *     longer than lease_ms (default 10 s, `--lease`) stops its workload, logs
 *     agent.self_fenced, refuses to start it again, and says so (the poll's
 *     "fenced") once the controller hears it again. The controller may
 *     count an instance silent for lease_ms plus a margin as fenced
 *     (docs/security.md "Leases"). A poll waits at most lease_ms / 3 and
 *     AGC_POLL_WAIT_MS, so a healthy channel is heard several times per lease.
 * AG-C6: a command is never skipped: one that finds the agent's queue full
 *     leaves the poll's `after` before it, so the next poll hands it again. */
#ifndef DUMONT_AGENT_CHANNEL_H
#define DUMONT_AGENT_CHANNEL_H

#include <stddef.h>
#include <stdint.h>

#define AGC_KEEP             64
#define AGC_LEASE_DEFAULT_MS 10000
#define AGC_LEASE_MIN_MS     300
#define AGC_LEASE_MAX_MS     600000
#define AGC_POLL_WAIT_MS     200 /* the longest a poll asks to wait (AG-C4) */

/* What the channel asks of the agent that owns the workload (agent.c). Each
 * may be called from the channel's thread; each returns 0 or a DM_E_* code
 * with err set. */
typedef struct {
    int (*start)(void *cls, char *err, size_t errlen); /* start the workload, wait until it ran */
    int (*stop)(void *cls, char *err, size_t errlen);  /* stop it, wait until it stopped */
    int (*started)(void *cls);                         /* 1 once it was started */
    void *cls;
} agc_hooks;

typedef struct {
    const char *server_url;
    const char *token; /* borrowed (AG-AH2) */
    const char *ca_file;
    int64_t instance_id;
    int64_t epoch;          /* the launch epoch (AG-C2) */
    int64_t lease_ms;       /* AG-C4; <= 0: AGC_LEASE_DEFAULT_MS */
    const char *state_dir;  /* AG-C1: NULL keeps the ids in memory only */
    const char *workspace;  /* restore and snapshot; NULL: both refused */
    const char *store_url;  /* the store when a command names none */
    agc_hooks hooks;
} agc_opts;

typedef struct agc_runner agc_runner;

int agc_start(const agc_opts *o, agc_runner **ret, char *err, size_t errlen);
void agc_stop(agc_runner *r); /* NULL is fine */
/* AG-C4: ms since the controller was last heard; -1 before it was heard at all. */
int64_t agc_silent_ms(agc_runner *r);
/* AG-C4: tells the channel the agent fenced itself (the next poll says so). */
void agc_mark_fenced(agc_runner *r);

#endif

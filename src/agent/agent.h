/* `dumont agent`: runs on every GPU/CPU instance. Registers with the server
 * (REST, API token), then sends a signed UDP heartbeat every heartbeat_ms
 * carrying the workload's and the probe's state; supervises the workload
 * (workload.h) and probes its readiness (probe.h). docs/detect.md.
 *
 * AG-A1: the per-instance key is held in memory only: never logged, never put
 *     in argv or a file.
 * AG-A2: heartbeats follow a fixed schedule on the monotonic clock (the next
 *     one is due interval after the previous *due* time, not after the send)
 *     so a slow iteration does not drift the rate; a late one is sent at
 *     once, never in a burst to catch up.
 * AG-A3: when *stop becomes non-zero (SIGTERM/SIGINT) the agent sends
 *     `leaving` AGENT_LEAVING_COPIES times (UDP may lose one), stops the
 *     workload, and returns 0: the server shows it leaving, not failed.
 * AG-A4: registration is retried (backoff up to 5 s) until it succeeds or
 *     *stop is set: an agent may start before its server.
 * AG-A6: once the cloud announced a preemption (preempt.h), every heartbeat
 *     carries HB_F_PREEMPTING: the server shows the instance preempting.
 *     With snapshots configured, the flag is set only once the final
 *     snapshot was reported (snapshots.h AG-N4), or failed, or took longer
 *     than final_wait_ms: the controller may fence as soon as it sees the
 *     flag without losing what was written before the notice.
 * AG-A5: the test knobs (jitter, loss) only delay or skip sends; every packet
 *     that goes out is a valid, signed heartbeat. Each copy (AG-A7) is lost or
 *     delayed independently, as on a network.
 * AG-A7: each heartbeat goes out heartbeat_copies times (default 2), the
 *     copies AGENT_COPY_GAP_MS apart with the same sequence number: the
 *     listener takes the first that arrives and counts the other as a
 *     duplicate, so one lost datagram no longer makes a late beat (issue 5:
 *     false `failed` at 2% loss came from two beats lost in a row).
 * AG-A8: with hold set, the workload and its probe start only once *go
 *     becomes non-zero (SIGUSR1); registration and heartbeats run
 *     meanwhile, scheduled snapshots wait (snapshots.h AG-N6: the provider is
 *     restoring the workspace), and a notice while held flags preempting at
 *     once (there is nothing of the workload's to save yet). The workload
 *     runs in the workspace (when given). The control channel's
 *     start_workload command (channel.h) releases the hold as SIGUSR1 does.
 * AG-A9: the control channel (channel.h AG-C1 to AG-C4) runs beside the
 *     heartbeats; its lease is checked on the heartbeat schedule, and a lease
 *     run out stops the workload (and its probe) at once, for good. */
#ifndef DUMONT_AGENT_AGENT_H
#define DUMONT_AGENT_AGENT_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#define AGENT_LEAVING_COPIES 3
#define AGENT_COPY_GAP_MS    30

typedef struct {
    const char *server_url; /* http://HOST:PORT of the API */
    const char *token;      /* the API token (borrowed) */
    const char *ca_file;    /* CA bundle for an https:// server_url; NULL: the system's */
    int64_t instance_id;
    const char *kind;          /* "gpu" | "cpu" */
    int64_t heartbeat_ms;      /* default 200 */
    const char *workload;      /* command line (no shell) or NULL */
    const char *probe;         /* "http:URL" | "exec:CMD" | "ollama:MODEL[@URL]" or NULL */
    int64_t probe_every_ms;    /* default 5000 */
    int crash_limit;           /* crashlooping after this many crashes ... (5) */
    int64_t crash_window_ms;   /* ... within this window (60 s) */
    int preempt_cloud;         /* pre_cloud (preempt.h): 0 none, aws, gcp */
    const char *metadata_url;  /* NULL: the cloud's default */
    int64_t preempt_every_ms;  /* default 1000 */
    int64_t test_jitter_ms;    /* AG-A5: delay each send by up to this */
    double test_loss;          /* AG-A5: skip a send with this probability */
    const atomic_bool *stop;   /* AG-A3 */
    int heartbeat_copies;      /* AG-A7: 1 or 2 (default 2) */
    int hold;                  /* AG-A8 */
    const atomic_bool *go;     /* AG-A8: required with hold */
    const char *workspace;     /* NULL: no snapshots; the workload's cwd */
    const char *store_url;     /* required with workspace */
    int64_t snapshot_every_ms; /* default 30000; 0: no scheduled snapshot */
    int64_t epoch;             /* tag and report of every snapshot */
    int64_t final_wait_ms;     /* AG-A6: default ASN_FINAL_WAIT_MS */
    const char *workload_user; /* workload.h AG-S6: NULL the default; "root" no change */
    const char *workload_env;  /* workload.h AG-S5: extra names passed, comma-separated */
    int64_t lease_ms;          /* channel.h AG-C4; <= 0: AGC_LEASE_DEFAULT_MS */
    const char *state_dir;     /* channel.h AG-C1: where the ids run are kept; NULL: memory */
    int no_channel;            /* 1: no control channel (and so no lease) */
    const char *host_check;    /* wl_report.h AG-R3: the user's host check command, or NULL */
} agent_opts;

void agent_opts_init(agent_opts *o);
/* Runs until *stop. Returns 0 after a clean stop (AG-A3), or a DM_E_* code
 * with err set when the agent cannot run (bad options, no socket). */
int agent_run(const agent_opts *o, char *err, size_t errlen);

#endif

/* The agent's reports of its workload's crashes (docs/failover.md "Workload
 * failures"): each crash the supervisor reaps (workload.h AG-S7) is posted
 * to POST /api/instances/{id}/workload-exit with its exit code or signal, how
 * long it ran, the restarts so far, whether the workload was ever healthy on
 * this instance and its last output lines. When the supervisor gives up
 * (crashlooping, AG-S3) the report also says whether the host itself looks
 * at fault: the agent's own checks, run then.
 *
 * The controller decides from that report whether the crash loop is the
 * workload's own failure (no new GPU) or the host's (a failover).
 *
 * AG-R1: reports go out from a thread of their own; the heartbeat loop never
 *     waits for the network. A newer crash replaces a report not sent yet,
 *     except the one that gave up, which is kept until delivered.
 * AG-R2: until the report that gave up is delivered (or WLR_HOLD_MS passed),
 *     heartbeats carry `restarting`, not `crashlooping`, so that the
 *     controller reads the report before it sees the crash loop.
 * AG-R3: the host checks, in order: the workspace takes a write and an
 *     fsync (a full, read-only or failing disk is the host's fault); on a
 *     gpu instance with nvidia-smi on PATH, `nvidia-smi -L` succeeds; the
 *     user's host_check command (if any) exits 0 within WLR_CHECK_MS, run as
 *     the workload is (workload.h AG-S5, AG-S6). The first that fails is the
 *     reason. The workload's own exit code is never taken for a host fault.
 * AG-R4: the workload is healthy once its probe answered ok while it had been
 *     running for WLR_PROBE_RUN_MS (a probe that passes without it proves
 *     nothing), or, with no probe, once one run lasted WLR_HEALTHY_RUN_MS.
 * AG-R5: the workspace check writes a file of a fresh random name created with
 *     O_EXCL | O_NOFOLLOW: the workspace is the workload's, and a root agent
 *     never writes through a link the workload planted there. */
#ifndef DUMONT_AGENT_WL_REPORT_H
#define DUMONT_AGENT_WL_REPORT_H

#include "agent/workload.h"
#include "detect/heartbeat.h"

#include <stddef.h>
#include <stdint.h>

#define WLR_HOLD_MS        30000 /* AG-R2 */
#define WLR_CHECK_MS       20000 /* AG-R3 */
#define WLR_HEALTHY_RUN_MS 10000 /* AG-R4 */
#define WLR_PROBE_RUN_MS   1000  /* AG-R4 */
#define WLR_TAIL_LINES     20

typedef struct wlr wlr;

typedef struct {
    const char *server_url, *token, *ca_file; /* borrowed for the reporter's life */
    int64_t instance_id;
    const char *kind;       /* "gpu" | "cpu" */
    const char *workspace;  /* NULL: no disk check */
    const char *host_check; /* NULL: none */
    const wl_sup *runas;    /* the workload's user, directory and environment (AG-R3) */
} wlr_opts;

int wlr_start(const wlr_opts *o, wlr **ret, char *err, size_t errlen);
/* After each wl_tick: notices a new crash and queues its report (AG-R1);
 * returns the workload state heartbeats carry now (AG-R2). */
hb_workload wlr_tick(wlr *r, const wl_sup *w, hb_probe probe, int64_t now_ms);
void wlr_stop(wlr *r);

#endif

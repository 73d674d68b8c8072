/* Scheduled and final snapshots of the agent's workspace (issue 5 part 5,
 * issue 6): every every_ms an incremental snapshot (snapshot.h snap_create,
 * tag "epoch=N") to the store, reported to the server with
 * POST /api/instances/{id}/snapshots (routes_snapshots.h).
 *
 * AG-N1: snapshots run on their own thread with few worker threads
 *     (ASN_THREADS): a heartbeat is never delayed by one, and the workload
 *     keeps its CPU.
 * AG-N2: a period where nothing in the workspace changed (the fingerprint of
 *     every entry's path, type, mode, size, mtime and inode equals the one
 *     taken before the last reported snapshot) takes no snapshot.
 * AG-N3: a 409 answer means the server refuses this instance's snapshots (it is
 *     fenced, or its epoch is stale: db_fleet.h FLEET-F3). After a snapshot of ours
 *     was accepted, or on the final one, that makes us a zombie: logged once,
 *     and no further snapshot is taken. Before any was accepted it is logged
 *     once and retried each period (a refusal records nothing, so retrying
 *     is safe, and a new instance is never silenced for good by a refusal
 *     that a later switch would lift). Any other failure is logged and retried at the next
 *     period (the fingerprint is kept only after a success).
 * AG-N6: scheduled snapshots wait for asn_enable() (the agent's --hold: the
 *     workspace is being restored until the workload starts, and a snapshot
 *     of a half-restored tree must never become a restorable point).
 * AG-N4: asn_final() takes a snapshot now (trigger "preempt", even when nothing
 *     changed, so the server knows the newest point is current), reports it,
 *     and waits at most wait_ms for it; afterwards no scheduled snapshot is
 *     taken (the machine is going away).
 * AG-N5: the token is borrowed from the caller and only ever sent in the
 *     Authorization header; never logged. */
#ifndef DUMONT_AGENT_SNAPSHOTS_H
#define DUMONT_AGENT_SNAPSHOTS_H

#include <stddef.h>
#include <stdint.h>

#define ASN_THREADS       2
#define ASN_FINAL_WAIT_MS 20000

typedef struct {
    const char *server_url; /* http://HOST:PORT */
    const char *token;      /* AG-N5, borrowed */
    const char *ca_file;    /* for an https:// server_url; NULL: the system's CAs */
    int64_t instance_id;
    const char *workspace; /* the directory snapshotted */
    const char *store_url; /* file:///... or a directory */
    int64_t every_ms;      /* 0: no schedule (asn_final still works) */
    int64_t epoch;
    int threads; /* 0: ASN_THREADS */
    int hold;    /* AG-N6: no scheduled snapshot before asn_enable() */
} asn_opts;

typedef struct asn_runner asn_runner;

/* Opens the store and starts the thread. The strings are borrowed for the
 * runner's life. */
int asn_start(const asn_opts *o, asn_runner **ret, char *err, size_t errlen);
/* AG-N4. 0 when the final snapshot was reported, else a DM_E_* code
 * (-ETIMEDOUT after wait_ms; the snapshot may still complete). */
int asn_final(asn_runner *r, int64_t wait_ms);
/* The same without blocking (the heartbeat loop): begin asks for it; poll
 * returns 1 once it ended, with its result in *ret_rc. */
void asn_final_begin(asn_runner *r);
int asn_final_poll(asn_runner *r, int *ret_rc);
void asn_enable(asn_runner *r); /* AG-N6 */
/* Snapshots reported so far, and whether the server refused us (AG-N3). */
uint64_t asn_reported(asn_runner *r);
int asn_refused(asn_runner *r);
/* Waits for a running snapshot to end, then stops. NULL is fine. */
void asn_stop(asn_runner *r);

/* N2's fingerprint of a tree (exposed for tests). 0 or a DM_E_* code. */
int asn_fingerprint(const char *dir, uint8_t ret[32], char *err, size_t errlen);

#endif

/* The server side of failure detection: registration of instances, the UDP
 * heartbeat listener, one failure detector per instance, and the state
 * changes they produce, persisted then published (docs/detect.md).
 *
 * Threads: a receive thread reads datagrams and, every HBL_TICK_MS, runs
 * every detector; a writer thread persists the state changes it queues and
 * then calls the subscribers. API threads register instances and read the
 * live view. One mutex guards the instance table; the queue has its own.
 * What the receive thread does before a MAC is verified needs neither.
 *
 * HB-L1: a datagram changes nothing unless it parses, names a registered
 *     instance, carries that instance's MAC, is inside its replay window and
 *     its rate (heartbeat.h HB-W1 to HB-W3, HBL_RATE_PER_S); every drop is counted by
 *     reason and none is logged per packet, so a flood costs counters only.
 * HB-L2: a state change is queued when the detector makes it, persisted
 *     (the persistence's record: state + event together) and only then
 *     published: a subscriber never sees a change the database does not hold.
 *     The listener keeps instances through the dm_instance_persist handed to
 *     it (core/instance.h; db_instance_persist() in `dumont server`): load at
 *     start (HB-L5), register_one, record. It never opens a database itself.
 * HB-L3: the queue holds HBL_QUEUE_MAX changes; beyond that a change is counted
 *     as lost and logged, never blocking the receive thread.
 * HB-L4: at most HBL_MAX_INSTANCES instances; registering more is DM_E_TOO_BIG.
 * HB-L5: instances loaded at start that were alive are judged from the start
 *     time: one that died while the server was down is failed within the
 *     hard deadline, not shown healthy forever.
 * HB-L6: keys live in memory only, derived from the master secret (file mode
 *     0600) and the stored key id; the registration answer is the one place
 *     a key leaves the server.
 * HB-L7: the second copy of a heartbeat (agent.h AG-A7: same sequence number,
 *     within HBL_COPY_MS of the last one taken) is counted `duplicate`, not
 *     `replay`, and changes nothing: the detector learns one interval per
 *     beat, from the copy that arrived first.
 * HB-L8: the work a datagram costs before its MAC is verified is bounded and
 *     cheap: a parse of the fixed header, a lookup by id, and a token
 *     bucket checked before the MAC. Datagrams from the source address and
 *     port of an instance's last accepted beat have a bucket of their own
 *     (HBL_KNOWN_SRC_PER_S); those from any other source share a small one
 *     per instance (HBL_OTHER_SRC_PER_S) and one for the listener
 *     (HBL_UNVERIFIED_PER_S). So forged datagrams from elsewhere cost at most
 *     that many MACs a second, and cannot use up the bucket the real agent's
 *     beats are verified from. Refused ones are counted
 *     `unverified_rate_limited`.
 * HB-L9: intake is lossy while the kernel drops more than HBL_LOSSY_DROP_PCT of
 *     the datagrams for want of buffer (SO_RXQ_OVFL; fewer cannot plausibly
 *     hide nine datagrams of one agent in a row), while the receive thread
 *     has not found the socket empty for HBL_LAG_MS (it lags), and, for one
 *     instance, while datagrams naming it are refused unverified (HB-L8); each
 *     lasts HBL_LOSSY_WINDOW_MS after its last sign. While an instance's intake is
 *     lossy its detector holds back a conviction, up to lossy_hold_ms of
 *     silence (detector.h HB-D6), so a flood neither fails a healthy instance
 *     nor hides a dead one for longer than that. Holding is recorded as an
 *     event (what "intake", ok -> lossy, reason conviction_held; lossy -> ok
 *     when a beat comes after all) and shown in the live view.
 * HB-L10: verifying a MAC never holds the table lock: the receive thread keeps
 *     its own copy of each key (taken under the lock when a registration
 *     changes it), finds entries through slot pointers that are published
 *     once with a release store, and takes the lock once per batch to apply
 *     the verified beats.
 * HB-L11: registering again an instance the detector holds live (healthy,
 *     suspect, preempting) rotates its key but keeps its detector: it is
 *     still judged on its silence from its last beat, so a re-registration
 *     whose agent then sends nothing verifiable is failed like a silent
 *     instance, never left `pending` (which the detector does not judge).
 * HB-L12: no change the detector made is lost to a failing database: a record
 *     that fails is retried (100 ms doubling to 2 s, said once and then every
 *     10 s as `instance.record_failed`, `instance.record_landed` when it
 *     lands) until it is stored, and only then published (HB-L2), so a failover
 *     starts once the database is back. Changes behind it wait in the queue
 *     (HB-L3), in order. While one is retried hbl_storage_degraded() says so.
 *     Only hbl_stop() gives a failing record up (`instance.record_abandoned`):
 *     the next start loads the last state stored and judges it again (HB-L5).
 * HB-L13: a destroyed instance never comes back. Once fenced (hbl_fence(), called
 *     when its machine is marked destroyed; loaded fenced at start, DB-I4 of
 *     db_instance.h; or refused at a registration) its registrations are refused
 *     by the persistence (`instance.register_refused`) and its heartbeats, even
 *     signed with its old key, are dropped (reason `fenced`, counted;
 *     `instance.heartbeat_refused` logged once per fenced instance): a zombie
 *     that heals from a partition is never `healthy` again. */
#ifndef DUMONT_DETECT_LISTENER_H
#define DUMONT_DETECT_LISTENER_H

#include "core/instance.h"
#include "detect/detector.h"
#include "detect/heartbeat.h"

#include <stddef.h>
#include <stdint.h>

#define HBL_TICK_MS          10
#define HBL_MAX_INSTANCES    10000
#define HBL_QUEUE_MAX        16384
#define HBL_RATE_PER_S       50 /* heartbeats per instance per second, burst the same */
#define HBL_SUBSCRIBERS_MAX  8
#define HBL_COPY_MS          1000       /* HB-L7 */
#define HBL_KNOWN_SRC_PER_S  100        /* HB-L8: per instance, from its last beat's source */
#define HBL_OTHER_SRC_PER_S  10         /* HB-L8: per instance, from any other source */
#define HBL_UNVERIFIED_PER_S 20000      /* HB-L8: all instances, from other sources */
#define HBL_LOSSY_WINDOW_MS  1000       /* HB-L9 */
#define HBL_LOSSY_DROP_PCT   20         /* HB-L9 */
#define HBL_LAG_MS           200        /* HB-L9 */
#define HBL_RCVBUF           (16 << 20) /* with CAP_NET_ADMIN; else net.core.rmem_max */

typedef struct hbl_server hbl_server;

/* A published change. Strings are static or live for the call only. */
typedef struct {
    int64_t instance_id;
    const char *what; /* "state" | "workload" */
    const char *from, *to, *reason;
    int64_t at_wall_ms;
    int64_t silent_ms; /* -1: not applicable */
    double phi;
} hbl_event;

/* Called on the writer thread after the change is persisted (HB-L2). Must not
 * block for long: the next changes wait for it. */
typedef void (*hbl_event_fn)(const hbl_event *ev, void *ctx);

typedef struct {
    const char *listen;                 /* "ADDR:PORT"; port 0 picks a free one */
    const dm_instance_persist *persist; /* HB-L2; copied, its ctx must outlive the listener */
    const char *secret_path; /* master secret; created (0600) if missing */
    int64_t interval_ms;     /* expected heartbeat interval; <= 0: 200 */
} hbl_opts;

int hbl_start(const hbl_opts *o, hbl_server **ret, char *err, size_t errlen);
/* hbl_start() as `dumont server` runs it: listen on hb_listen, or when that
 * is empty on api_listen's host at its port + 1 (HB_DEFAULT_PORT, 8701, for
 * the default 8700; 0 for 0), so several servers on one machine do not
 * collide; the master secret in
 * home/heartbeat.secret. Logs where it listens. */
int hbl_start_server(const char *hb_listen, const char *api_listen, const char *home,
                     const dm_instance_persist *persist, hbl_server **ret, char *err,
                     size_t errlen);
int hbl_port(const hbl_server *s); /* the UDP port bound */
/* Stops both threads after persisting what is queued (one attempt each, HB-L12);
 * frees. NULL is fine. */
void hbl_stop(hbl_server *s);
/* Adds a subscriber (the orchestrator, issue 6). DM_E_TOO_BIG past the cap. */
int hbl_subscribe(hbl_server *s, hbl_event_fn fn, void *ctx);

typedef struct {
    int64_t instance_id;                              /* 1 .. HB_ID_MAX */
    const char *kind;                                 /* "gpu" | "cpu" */
    const char *workload_cmd, *probe_spec, *hostname; /* may be NULL */
} hbl_reg;

/* Registers (or re-registers, rotating the key) an instance and hands back
 * its key as hex (HB-L6). The instance is pending until its first heartbeat. */
int hbl_register(hbl_server *s, const hbl_reg *r, char ret_key_hex[HB_KEY_HEX_LEN + 1], char *err,
                 size_t errlen);

/* HB-L13: id is fenced for good (its machine is destroyed); a no-op for an id
 * this listener does not know (it would refuse its registration anyway). */
void hbl_fence(hbl_server *s, int64_t id);

/* The live view of one instance. */
typedef struct {
    det_state state;
    int64_t last_heartbeat_wall_ms; /* -1: none since the server started */
    int64_t silent_ms;              /* -1: none */
    double phi;
    uint64_t seq, accepted;
    hb_workload workload;
    hb_probe probe;
    uint32_t restarts;
    int preempting;
    int intake_lossy;    /* HB-L9: its intake was lossy at the last check */
    int conviction_held; /* HB-L9: a conviction is held back now (detector.h HB-D6) */
} hbl_live;

/* DM_E_NOT_FOUND when the instance is not known to this server. */
int hbl_live_get(hbl_server *s, int64_t id, hbl_live *ret);

typedef struct {
    uint64_t received, accepted;
    uint64_t dropped[HB_REASON_COUNT];
    uint64_t events, events_lost;
    int instances;
    uint64_t kernel_drops; /* HB-L9: datagrams the kernel dropped (SO_RXQ_OVFL) */
    uint64_t lagging;      /* HB-L9: ticks at which the listener lagged */
    int intake_lossy;      /* HB-L9: lossy for every instance at the last check */
    int by_state[DET_STATE_COUNT]; /* instances in each detector state */
} hbl_stats;

void hbl_stats_get(hbl_server *s, hbl_stats *ret);
/* HB-L12: 1 while a change's record is being retried, with the reason and since
 * when (wall clock); 0 otherwise, and for NULL. */
int hbl_storage_degraded(hbl_server *s, char *reason, size_t reasonlen, int64_t *ret_since_ms);

#endif

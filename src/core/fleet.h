/* The fleet's records: workloads, the machines providers made for them, and
 * the snapshots agents report (docs/failover.md). Plain data with the names
 * of their states; the database keeps them (db/db_fleet.h), the failover
 * runner and the API read and change them.
 *
 * A workload is what the user protects: a command, a probe, a workspace. One
 * instance serves it at a time (serving_instance_id); a failover moves it to
 * a new instance and bumps its epoch.
 *
 * Integers that may be unknown are DM_NULL (util/null.h). A state is stored
 * and shown by its name (dm_wl_state_name, dm_mach_state_name); a name that
 * is not in the list does not parse (DM_E_INVALID). */
#ifndef DUMONT_CORE_FLEET_H
#define DUMONT_CORE_FLEET_H

#include "core/failover.h"
#include "util/null.h"

#include <limits.h>
#include <stdint.h>

#define FLEET_WL_ID_MAX   32
#define FLEET_TEXT_MAX    256
#define FLEET_SNAP_ID_MAX 72
#define FLEET_CODES_MAX   64
#define FLEET_FAILURE_MAX 2048
#define FLEET_MAX_RESTARTS_DEFAULT 3 /* FLEET-W1: restarts in place when not given */
#define FLEET_MAX_RESTARTS_MAX     30

typedef enum {
    DM_WL_LAUNCHING = 0, /* made by `instances launch`, its first machine not up yet */
    DM_WL_RUNNING,       /* served (or serving again after a failover) */
    DM_WL_FAILING_OVER,  /* a real failover moves it */
    DM_WL_FAILED,        /* the failover (or the launch) failed; nobody serves it */
    DM_WL_STOPPED,       /* its serving machine was destroyed on request */
    DM_WL_STATE_COUNT
} dm_wl_state;

typedef enum {
    DM_MACH_PROVISIONING =
        0, /* reserved (db_fleet.h FLEET-F1); the provider may not have made it yet */
    DM_MACH_RUNNING,
    DM_MACH_DESTROYED, /* destroyed or fenced: its snapshots are refused */
    DM_MACH_STATE_COUNT
} dm_mach_state;

typedef struct {
    char workload_id[FLEET_WL_ID_MAX]; /* "wl-" + 12 hex */
    char name[64];
    char workload_cmd[FLEET_TEXT_MAX]; /* "" none */
    char probe_spec[FLEET_TEXT_MAX];   /* "" none */
    char model[128];                   /* the inference model ("" none) */
    char workspace_from[PATH_MAX];     /* "" none */
    int64_t heartbeat_ms, snapshot_every_ms;
    char requirements[512];      /* JSON: {"min_vram_gb":N,"min_cuda":X,"region":S,"max_price":X} */
    int protect;                 /* 1: fail over automatically */
    int64_t serving_instance_id; /* DM_NULL: none */
    int64_t epoch;
    dm_wl_state state;
    int64_t created_at_ms;
    /* FLEET-W1: the workload's own failures (docs/failover.md "Workload failures") */
    int max_restarts_on_errors;        /* restarts in place after a crash before it gives up */
    char error_exit_codes[FLEET_CODES_MAX]; /* "1,2": exits that are the workload's own error */
    char host_check[FLEET_TEXT_MAX];   /* the agent's host check command ("" none) */
    char failure[FLEET_FAILURE_MAX];   /* why it is failed: the reason and its last output */
    /* The failover budget (failover real.c ORCH-R8): at most max_failovers in
     * failover_window_ms (<= 0: the defaults, FLEET_BUDGET_*), then backoff. */
    int64_t max_failovers, failover_window_ms;
    char flapping_reason[FLEET_TEXT_MAX]; /* "" : not flapping */
    int64_t flapping_since_ms;      /* DM_NULL: not flapping */
    int64_t failover_hold_until_ms; /* wall; DM_NULL: the next failover acts at once */
} dm_workload;

#define FLEET_BUDGET_MAX_DEFAULT    3
#define FLEET_BUDGET_WINDOW_DEFAULT (30LL * 60 * 1000)
#define FLEET_BUDGET_MAX_LIMIT      1000
#define FLEET_BUDGET_WINDOW_LIMIT   (7LL * 24 * 3600 * 1000)

typedef struct {
    int64_t instance_id;
    char workload_id[FLEET_WL_ID_MAX]; /* "" none */
    char provider[16];
    char offer_id[64], host[64], gpu_name[64];
    int64_t price_milli; /* USD/h * 1000; DM_NULL unknown */
    char workspace[PATH_MAX];
    char address[64];
    int64_t epoch;
    dm_mach_state state;
    int test;                    /* made by test-real */
    char failover_id[FO_ID_MAX]; /* the failover that made it; "" none */
    int64_t created_at_ms;
    int64_t destroyed_at_ms; /* DM_NULL while it exists */
} dm_machine;

typedef struct {
    char snapshot_id[FLEET_SNAP_ID_MAX];
    int64_t instance_id;
    char workload_id[FLEET_WL_ID_MAX]; /* filled by db_snapshot_record from the machine */
    int64_t epoch;
    char store_url[FLEET_TEXT_MAX];
    int64_t size_bytes, stored_bytes, files;
    int64_t created_at_ms;    /* wall, when the snapshot began */
    int64_t creation_time_ms; /* how long it took */
    int64_t reported_at_ms;
    char trigger[16]; /* "scheduled" | "preempt" | "test-real" | "launch" | "manual" */
    int64_t seq;      /* the server's acceptance order (db_fleet.h FLEET-F4); 0 before recorded */
} dm_snapshot;

/* FLEET-W2: a workload command must be a real command: not empty, not a
 * placeholder copied from a document (a word that is only dots or "…", a word
 * in <angle brackets>, or a program named COMMAND, CMD, YOUR_COMMAND, ...).
 * 0, or DM_E_INVALID with the reason in err. */
int dm_workload_cmd_check(const char *cmd, char *err, size_t errlen);
/* FLEET-W1: "1,2,137": up to 16 codes 1..255, comma-separated, no blanks; "" none.
 * 0 or DM_E_INVALID. */
int dm_exit_codes_check(const char *codes, char *err, size_t errlen);
/* 1 when code is in codes (as checked above). */
int dm_exit_codes_has(const char *codes, int code);

/* "launching" | "running" | "failing_over" | "failed" | "stopped"; "?" out of range. */
const char *dm_wl_state_name(dm_wl_state s);
int dm_wl_state_parse(const char *s, dm_wl_state *ret); /* 0 or DM_E_INVALID (*ret untouched) */
/* "provisioning" | "running" | "destroyed"; "?" out of range. */
const char *dm_mach_state_name(dm_mach_state s);
int dm_mach_state_parse(const char *s, dm_mach_state *ret); /* 0 or DM_E_INVALID */

#endif

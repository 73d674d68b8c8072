/* The records of instances (machines running `dumont agent`) and of their
 * state changes. Plain data: the detector's and the agent's states are kept
 * by name (det_state, hb_workload, hb_probe of detect/), so that this leaf
 * needs nothing above util/. The listener makes them (detect/listener.h),
 * the database keeps them (db/db_instance.h), the API shows them.
 *
 * Integers that may be unknown are DM_NULL (util/null.h). */
#ifndef DUMONT_CORE_INSTANCE_H
#define DUMONT_CORE_INSTANCE_H

#include "util/null.h"

#include <stddef.h>
#include <stdint.h>

#define DM_INST_TEXT_MAX 256

typedef struct {
    int64_t instance_id;
    char kind[16];                       /* "gpu" | "cpu" */
    char key_id[64];                     /* db_instance.h DB-I1 */
    char state[16];                      /* det_state name */
    int64_t state_since_ms;              /* wall */
    int64_t registered_at_ms;            /* wall */
    int64_t last_heartbeat_ms;           /* wall; DM_NULL: none recorded */
    char workload[16];                   /* hb_workload name at the last change */
    char probe[16];                      /* hb_probe name at the last change */
    char workload_cmd[DM_INST_TEXT_MAX]; /* as registered; "" none */
    char probe_spec[DM_INST_TEXT_MAX];   /* as registered; "" none */
    char hostname[128];
    int fenced; /* its machine is destroyed (db_instance.h DB-I4): it never comes back */
} dm_instance;

typedef struct {
    int64_t instance_id;
    int64_t at_ms;         /* wall */
    char what[16];         /* "state" | "workload" | "intake" (listener.h HB-L9) */
    char from[16], to[16]; /* state (or workload state) names */
    char reason[32];
    int64_t silent_ms; /* DM_NULL when not applicable */
    int64_t phi_milli; /* phi * 1000; DM_NULL when not applicable */
} dm_instance_event;

/* Where instances are kept: the small interface the heartbeat listener
 * persists through (detect/listener.h HB-L2, HB-L5), so that it does not depend on
 * the database. db/ implements it (db_instance.h db_instance_persist());
 * `dumont server` hands that one to the listener, a test may hand its own.
 * Each function returns 0 or a negative DM_E_* / -errno, detail in err. */
typedef struct {
    /* Every instance, by id; *ret malloc'd (free()), NULL when none. */
    int (*load)(void *ctx, dm_instance **ret, size_t *ret_n, char *err, size_t errlen);
    /* Inserts, or re-registers (new key id, kind, texts; state back to the
     * one given, with an event recording it). DM_E_CONFLICT, nothing written,
     * for an instance that is fenced (a destroyed machine: it never registers
     * again, listener.h HB-L13). */
    int (*register_one)(void *ctx, const dm_instance *in, char *err, size_t errlen);
    /* One change: the event and the instance's new state (for what ==
     * "state") or its workload, probe and last heartbeat, together (all or
     * nothing). DM_E_NOT_FOUND for an unknown instance. */
    int (*record)(void *ctx, const dm_instance_event *ev, const char *workload, const char *probe,
                  int64_t last_heartbeat_ms, char *err, size_t errlen);
    void *ctx;
} dm_instance_persist;

#endif

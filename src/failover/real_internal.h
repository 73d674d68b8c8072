/* What the real runner (real.c: the kind, the runner loop, resume, the
 * triggers; real_phases.c: the phases) and the fleet operations
 * (real_fleet.c: launch, test-real, chaos, destroy) share: the state of the
 * real kind of failover (orch_internal.h ORCH-K1) and of one running failover.
 * Not a public interface. */
#ifndef DUMONT_FAILOVER_REAL_INTERNAL_H
#define DUMONT_FAILOVER_REAL_INTERNAL_H

#include "db/db_fleet.h"
#include "failover/orch_internal.h"
#include "failover/ports.h"
#include "provider/provider.h"

#include <limits.h>
#include <pthread.h>

#define FO_REAL_POLL_MS 20 /* how often a wait looks again */

/* The real kind's state, made by fo_orch_attach. */
typedef struct {
    fo_orch *orch;
    struct dm_provider *provider;
    fo_real_ports ports; /* ORCH-P1 of ports.h */
    char server_url[256];
    char token[128];
    char ca_file[PATH_MAX]; /* "" : agents trust the system's CAs */
    int64_t ready_timeout_ms, inference_timeout_ms;
    struct prov_channel *channel; /* fo_real_env.channel; may be NULL */
    pthread_mutex_t start_lock; /* one check-then-insert of a failover at a time */
    int64_t attached_at_ms;     /* wall clock: older launches are a crash's (ORCH-O13) */
    double budget_scale;        /* budget.c BUD-B3; >= 1 */
} fo_real_kind;

/* One running real failover: real.c runs it, real_phases.c acts. */
typedef struct {
    fo_orch *orch;
    fo_real_kind *k;
    fo_failover f;
    int64_t phase_mono_ms; /* monotonic: when the current run began (f.run_started_at_ms) */
    int64_t paused0_ms;    /* fo_orch_paused_ms() when it began (ORCH-O14) */
    int64_t ev_paused_ms;  /* fo_orch_paused_ms() when the event being applied was measured */
    int resumed;           /* started by fo_orch_recover: the record's run was interrupted */
    int64_t detection_ms;  /* new failovers: the detection phase's duration */
    dm_workload w;         /* the workload, read when the runner starts */
    char old_host[64];     /* the old instance's host ("" unknown) */
    prov_offer offers[PROV_OFFERS_MAX];
    size_t n_offers;
    prov_instance inst; /* the new instance, once provisioned */
    int have_inst;
} fo_real_run;

/* real_phases.c (ORCH-R4 of real.c: non-zero only to halt). prepare reads what
 * the phases need (an error ends the failover); phase runs the current
 * phase once; finish cleans up after the last one. */
__attribute__((warn_unused_result)) int fo_real_prepare(fo_real_run *r);
__attribute__((warn_unused_result)) int fo_real_phase(fo_real_run *r);
__attribute__((warn_unused_result)) int fo_real_finish(fo_real_run *r);

/* The real kind of o; NULL (DM_E_UNAVAILABLE in err) before fo_orch_attach. */
fo_real_kind *fo_real_of(fo_orch *o, char *err, size_t errlen);
/* Reserves a slot, inserts f (ORCH-O1) and starts its runner; detection_ms: how
 * long the old instance was silent (new failovers). ret (may be NULL): the
 * record as inserted. Call under start_lock. */
int fo_real_begin(fo_real_kind *k, const fo_failover *f, int64_t detection_ms, fo_failover *ret,
                  char *err, size_t errlen);
/* budget.c (ORCH-R8). check: by the trigger that won the workload (BUD-B1):
 * within the budget clears flapping; past it marks w flapping and sets its hold
 * (w is updated as stored). wait: the runner's wait for the hold; *ret_held_ms
 * how long; DM_E_CANCELLED on shutdown. */
int fo_budget_check(fo_real_kind *k, dm_workload *w, char *err, size_t errlen);
int fo_budget_wait(fo_real_run *r, int64_t *ret_held_ms);
/* ORCH-O13 (real_fleet.c): rolls back the launches a killed server left. */
int fo_real_recover_launches(fo_real_kind *k, int *ret_count, char *err, size_t errlen);

/* ORCH-W4 (real_wlfail.c): a heartbeat's crash loop that no report decided. */
void fo_real_crashloop_unreported(fo_real_kind *k, int64_t instance_id);

/* Shared helpers (real.c). */
int fo_real_new_id(const char *prefix, char *out, size_t outlen);
/* The workload's requirements JSON as a provider query (unknown keys ignored). */
void fo_real_query(const dm_workload *w, prov_query *q);
/* What an instance of w runs (epoch, agent on hold; test: no scheduled snapshots). */
void fo_real_launch_spec(const fo_real_kind *k, const dm_workload *w, int64_t id, int64_t epoch,
                         int test, prov_launch *l);
/* A machine row of w on offer (no id, epoch or state yet). */
void fo_real_machine_init(const fo_real_kind *k, const dm_workload *w, const prov_offer *offer,
                          dm_machine *m);
/* ORCH-R7: destroys an instance of this controller's records through the
 * provider (PROV-PV3); an id the provider never made counts as gone only when
 * the machine was merely reserved (provisioning: nothing of it ever ran). */
int fo_real_destroy(const fo_real_kind *k, int64_t id, char *err, size_t errlen);
/* ORCH-R7: 1 when the lease port says the instance fenced itself (ports.h). */
int fo_real_lease_expired(const fo_real_kind *k, int64_t id, int64_t *ret_silent_ms);
/* Marks the instance's machine destroyed (the provider confirmed it gone) and
 * tells the listener (ports.h fence: HB-L13). The database's answer. */
int fo_real_mark_destroyed(const fo_real_kind *k, int64_t id, char *err, size_t errlen);
/* The live view of an instance (ORCH-P1 of ports.h: DM_E_UNAVAILABLE without a port). */
int fo_real_live(const fo_real_kind *k, int64_t id, hbl_live *ret);
/* Waits until the instance's agent heartbeats as healthy; DM_E_CANCELLED on
 * shutdown, DM_E_UNAVAILABLE past timeout_ms or when it stopped. */
int fo_real_wait_healthy(fo_real_kind *k, int64_t id, int64_t timeout_ms, char *err, size_t errlen);
/* Records a snapshot the controller took (test-real, launch). */
int fo_real_record_snapshot(fo_real_kind *k, int64_t instance_id, int64_t epoch,
                            const snap_info *si, const char *trigger, char *err, size_t errlen);
/* ORCH-R3 of real.c: the environment variable var is "at:MS": pause MS there. */
void fo_real_test_pause(fo_real_kind *k, const char *var, const char *at);

#endif

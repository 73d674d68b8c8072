/* What orchestrator.c (simulated failovers, the runner count, shutdown) and
 * real.c (real failovers, launch, test-real) share. Not a public interface. */
#ifndef DUMONT_FAILOVER_ORCH_INTERNAL_H
#define DUMONT_FAILOVER_ORCH_INTERNAL_H

#include "failover/orchestrator.h"

#include <limits.h>
#include <pthread.h>

struct fo_orch {
    dm_db *db;
    double default_speed;
    pthread_mutex_t lock;
    pthread_cond_t idle;
    int running;
    volatile int stopping;
    int shut;
    fo_observer_fn observer; /* under `lock` */
    void *observer_arg;
    /* real failovers (fo_orch_attach); NULL/empty until attached */
    struct dm_provider *provider;
    struct hbl_server *detect;
    char store_url[256]; /* O10: set once before serving (snapstore.c SC1); = FLEET_TEXT_MAX */
    char store_display[PATH_MAX + 64]; /* its display form (store_url()) */
    char server_url[256];
    char token[128];
    char ca_file[PATH_MAX]; /* "" : agents trust the system's CAs */
    int64_t ready_timeout_ms, inference_timeout_ms, preempt_grace_ms;
    pthread_mutex_t start_lock; /* one check-then-insert of a failover at a time */
};

/* Applies ev and persists the result (O1); tells the observer. */
int fo_orch_apply(fo_orch *o, fo_failover *f, const fo_event *ev);
void fo_orch_notify(fo_orch *o, const fo_failover *f);
/* Counts a runner in (DM_E_BUSY / DM_E_CANCELLED) and out. */
int fo_orch_reserve_slot(fo_orch *o);
void fo_orch_run_finished(fo_orch *o);
/* real.c: resumes one active real failover found at start (O6). */
int fo_orch_resume_real(fo_orch *o, const fo_failover *f, char *err, size_t errlen);

#endif

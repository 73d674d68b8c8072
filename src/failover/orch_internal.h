/* What orchestrator.c (simulated failovers, the runner count, shutdown) and
 * real.c (real failovers, launch, test-real) share. Not a public interface. */
#ifndef DUMONT_FAILOVER_ORCH_INTERNAL_H
#define DUMONT_FAILOVER_ORCH_INTERNAL_H

#include "failover/orchestrator.h"
#include "util/error.h"

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
    int64_t started_at_ms;      /* wall clock at fo_orch_new: older launches are a crash's */
    /* O12: writers whose write has not landed yet; under `lock` */
    int storage_failing;
    char storage_reason[256];
    int64_t storage_since_ms;
};

/* O12: one writer's retries of one write. */
typedef struct {
    int64_t wait_ms;     /* the next pause */
    int64_t next_log_ms; /* monotonic: when to say again that it still fails */
    int failing;         /* counted in storage_failing */
    int cancelled;       /* the orchestrator stopped while it failed */
} fo_backoff;

/* A fault of the storage (the database down, the disk full), not a refusal:
 * DM_E_DB or a -errno. */
static inline int fo_storage_fault(int rc)
{
    return rc == DM_E_DB || (rc < 0 && rc > DM_E_BASE);
}
/* After a storage fault of the write `what` (detail err): marks the
 * orchestrator degraded, pauses (100 ms doubling to 2 s). 0: try again;
 * -1: the orchestrator is stopping (b->cancelled). */
int fo_backoff_wait(fo_orch *o, fo_backoff *b, const char *what, const char *err);
/* The write landed (or was given up): no longer counted as failing. */
void fo_backoff_done(fo_orch *o, fo_backoff *b, const char *what);
/* O12: evaluates call (an int expression that writes or reads the database,
 * with its detail in err) again while it fails with a storage fault, until it
 * lands; DM_E_CANCELLED when the orchestrator stopped first. Any other
 * result is call's own. */
#define FO_DURABLE(o, what, err, call)                                                             \
    __extension__({                                                                                \
        fo_backoff b_ = {0};                                                                       \
        int rc_;                                                                                   \
        while (fo_storage_fault(rc_ = (call)) && fo_backoff_wait((o), &b_, (what), (err)) == 0)    \
            ;                                                                                      \
        fo_backoff_done((o), &b_, (what));                                                         \
        b_.cancelled ? DM_E_CANCELLED : rc_;                                                       \
    })

/* O12: saves the record, retrying storage faults until it lands. */
int fo_orch_save(fo_orch *o, const fo_failover *f);

/* Applies ev to a copy, persists it (O1, O12: retried until it lands) and
 * only then copies it into f and tells the observer; on any error (also
 * DM_E_CANCELLED) f is left as the database has it. */
int fo_orch_apply(fo_orch *o, fo_failover *f, const fo_event *ev);
void fo_orch_notify(fo_orch *o, const fo_failover *f);
/* Counts a runner in (DM_E_BUSY / DM_E_CANCELLED) and out. */
int fo_orch_reserve_slot(fo_orch *o);
void fo_orch_run_finished(fo_orch *o);
/* real.c: rolls back the launches a killed server left (O13). */
int fo_orch_recover_launches(fo_orch *o, int *ret_count, char *err, size_t errlen);
/* real.c: resumes one active real failover found at start (O6). */
int fo_orch_resume_real(fo_orch *o, const fo_failover *f, char *err, size_t errlen);

#endif

/* What the runner core (orchestrator.c) and the kinds of failover share:
 * sim.c (simulated) and real.c / real_fleet.c (real). Not a public interface.
 *
 * The core owns what every kind needs: the runner slots (ORCH-O3), the observer,
 * shutdown (ORCH-O4), the configured store (ORCH-O10, snapstore.c) and the
 * durable-state rule (ORCH-O12: fo_orch_save, fo_orch_apply, FO_DURABLE). Each
 * kind registers its own state and hooks (fo_kind_ops); the core never
 * looks inside a kind's state.
 *
 * ORCH-K1: a kind is registered once (fo_orch_new for the simulated one,
 *     fo_orch_attach for the real one) and stays until fo_orch_free, which
 *     frees its state after every runner has stopped. The attach may run
 *     while the API already serves: registration and lookup take the core's
 *     lock, so a request finds a kind whole (its state made before it is
 *     registered) or not at all. fo_orch_recover runs after the attach. */
#ifndef DUMONT_FAILOVER_ORCH_INTERNAL_H
#define DUMONT_FAILOVER_ORCH_INTERNAL_H

#include "failover/orchestrator.h"
#include "util/error.h"

#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>

/* One kind of failover: its state (st) and what the core calls. */
typedef struct {
    /* ORCH-O2/O6: resumes one active failover of this kind found at start, or
     * fails; the core ends a failover that was not resumed as interrupted.
     * NULL: nothing of this kind can be resumed. */
    int (*resume)(fo_orch *o, void *st, const fo_failover *f, char *err, size_t errlen);
    /* Called once by fo_orch_recover after the resumes (ORCH-O13); may be NULL. */
    void (*recover)(fo_orch *o, void *st);
    void (*free)(void *st); /* ORCH-K1; may be NULL */
} fo_kind_ops;

struct fo_orch {
    dm_db *db;
    pthread_mutex_t lock;
    pthread_cond_t idle;
    int running;
    atomic_bool stopping;
    int shut;
    fo_observer_fn observer; /* under `lock` */
    void *observer_arg;
    char store_url[256]; /* ORCH-O10: set once before serving (snapstore.c ORCH-SC1); = FLEET_TEXT_MAX */
    char store_display[PATH_MAX + 64]; /* its display form (store_url()) */
    char store_name[16]; /* its storage's name (store_storage_name(): "file", "backblaze_b2"...) */
    /* ORCH-O12: writers whose write has not landed yet; under `lock` */
    int storage_failing;
    char storage_reason[256];
    int64_t storage_since_ms;
    struct {
        const fo_kind_ops *ops;
        void *st;
    } kinds[FO_KIND_COUNT]; /* ORCH-K1 */
};

/* ORCH-K1: registers kind k (DM_E_CONFLICT when it already is). */
int fo_orch_set_kind(fo_orch *o, fo_kind k, const fo_kind_ops *ops, void *st);
/* The state of kind k; NULL while it is not registered. */
void *fo_orch_kind(fo_orch *o, fo_kind k);
/* sim.c: registers the simulated kind (fo_orch_new). */
int fo_sim_register(fo_orch *o, double default_speed);

/* ORCH-O12: one writer's retries of one write. */
typedef struct {
    int64_t wait_ms;     /* the next pause */
    int64_t next_log_ms; /* monotonic: when to say again that it still fails */
    int failing;         /* counted in storage_failing */
    int cancelled;       /* the orchestrator stopped while it failed */
    int64_t since_ms;    /* monotonic: the first failure (ORCH-O14) */
} fo_backoff;

/* ORCH-O14: how long the calling thread has been paused so far, in all, by
 * writes that did not land (from a write's first failure to its landing):
 * the time a runner could not act, which its failover records as
 * controller_down_ms (core/failover.h FO-I6). Monotonic, per thread. */
int64_t fo_orch_paused_ms(void);

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
/* ORCH-O12: evaluates call (an int expression that writes or reads the database,
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

/* ORCH-O12: saves the record, retrying storage faults until it lands. */
__attribute__((warn_unused_result)) int fo_orch_save(fo_orch *o, const fo_failover *f);

/* Applies ev to a copy, persists it (ORCH-O1, ORCH-O12: retried until it lands) and
 * only then copies it into f and tells the observer; on any error (also
 * DM_E_CANCELLED) f is left as it was. */
__attribute__((warn_unused_result)) int fo_orch_apply(fo_orch *o, fo_failover *f,
                                                      const fo_event *ev);
void fo_orch_notify(fo_orch *o, const fo_failover *f);
/* Counts a runner in (DM_E_BUSY / DM_E_CANCELLED, with a reason in err) and
 * out. */
int fo_orch_reserve_slot(fo_orch *o, char *err, size_t errlen);
void fo_orch_run_finished(fo_orch *o);
/* Runs fn(arg) on a detached runner thread (its slot already reserved; fn
 * calls fo_orch_run_finished last). On failure (-errno) nothing ran: the
 * caller still owns arg and the slot. */
int fo_orch_spawn(void *(*fn)(void *), void *arg);

#endif

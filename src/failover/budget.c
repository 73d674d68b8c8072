/* The failover budget (real.c ORCH-R8; docs/failover.md "The failover budget").
 *
 * A workload that keeps failing (an agent that stalls every few seconds, a
 * host that loses its network again and again) would otherwise get one new
 * paid GPU per cycle. Like Pacemaker's migration-threshold and failure-timeout,
 * a workload has a budget: at most max_failovers automatic failovers within
 * failover_window (default 3 in 30 minutes; every real failover that is not a
 * test-real counts, preemptions and crash loops too). Past it the workload is
 * `flapping`: the reason is recorded on the workload (shown by the API and
 * `dumont instances`, alerted by the alert service), and each further failover
 * still runs, but no sooner than a backoff after the newest one began: 1 minute,
 * doubling with every failover beyond the budget, at most 30 minutes. The budget
 * never abandons a workload: it only spaces its failovers out. Once the window
 * holds fewer than the budget again, the next trigger clears `flapping`.
 *
 * BUD-B1: the decision is made by the trigger that won the workload's
 *     compare-and-set (ORCH-R6), from the failovers the database holds, before
 *     the new one is inserted; the hold is stored on the workload
 *     (failover_hold_until_ms, wall clock, so a restarted controller keeps
 *     it) and the runner waits for it before its detection phase ends.
 * BUD-B2: the backoff is never shorter than the schedule: backoff(k) =
 *     min(1 min * 2^k, 30 min) after the newest failover's start, k the
 *     number of failovers in the window beyond the budget.
 * BUD-B3: DUMONT_FAILOVER_TIME_SCALE (a test knob, fo_real_env.budget_time_scale)
 *     divides the window and the backoffs, never the budget's count. */
#include "failover/real_internal.h"

#include "util/clock.h"
#include "util/error.h"
#include "util/log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define BACKOFF_FIRST_MS (60LL * 1000)
#define BACKOFF_MAX_MS   (30LL * 60 * 1000)
#define BACKOFF_STEPS    6 /* 1 << 5 minutes is past the cap */

static int64_t scaled(double scale, int64_t ms)
{
    int64_t v = (int64_t)((double)ms / (scale >= 1.0 ? scale : 1.0));
    return v < 1 ? 1 : v;
}

int64_t fo_budget_backoff_ms(int64_t beyond, double scale)
{
    int64_t ms = BACKOFF_FIRST_MS;
    for (int64_t i = 0; i < beyond && ms < BACKOFF_MAX_MS; i++)
        ms *= 2;
    return scaled(scale, ms < BACKOFF_MAX_MS ? ms : BACKOFF_MAX_MS); /* BUD-B2 */
}

/* "30m", "90s", "250ms": a duration a person reads. */
static void dur_text(int64_t ms, char *out, size_t outlen)
{
    if (ms >= 60000 && ms % 60000 == 0)
        snprintf(out, outlen, "%lldm", (long long)(ms / 60000));
    else if (ms >= 1000 && ms % 1000 == 0)
        snprintf(out, outlen, "%llds", (long long)(ms / 1000));
    else
        snprintf(out, outlen, "%lldms", (long long)ms);
}

/* The failovers of w in its window, newest first (at most enough to reach the cap). */
static int in_window(fo_real_kind *k, const dm_workload *w, int64_t since, int64_t max,
                     fo_failover **ret, size_t *ret_n, char *err, size_t errlen)
{
    db_failover_filter flt;
    db_failover_filter_init(&flt);
    flt.kind = FO_KIND_REAL;
    flt.test = 0;
    snprintf(flt.workload_id, sizeof flt.workload_id, "%s", w->workload_id);
    flt.since_ms = since;
    flt.limit = max + BACKOFF_STEPS;
    return db_failover_list(k->orch->db, &flt, ret, ret_n, err, errlen);
}

int fo_budget_check(fo_real_kind *k, dm_workload *w, char *err, size_t errlen)
{
    int64_t now = clock_wall_ms();
    int64_t max = w->max_failovers > 0 ? w->max_failovers : FLEET_BUDGET_MAX_DEFAULT;
    int64_t win = w->failover_window_ms > 0 ? w->failover_window_ms : FLEET_BUDGET_WINDOW_DEFAULT;
    int64_t window = scaled(k->budget_scale, win); /* BUD-B3 */
    fo_failover *fs = NULL;
    size_t n = 0;
    int rc = in_window(k, w, now - window, max, &fs, &n, err, errlen);
    if (rc)
        return rc;
    if ((int64_t)n < max) { /* within the budget: at once, and no longer flapping */
        free(fs);
        if (!w->flapping_reason[0] && w->failover_hold_until_ms == DM_NULL)
            return 0;
        if ((rc = db_workload_set_budget(k->orch->db, w->workload_id, NULL, DM_NULL, DM_NULL, err,
                                         errlen)) == 0 &&
            w->flapping_reason[0])
            log_info("workload.flapping_cleared", "workload_id=%s failovers_in_window=%zu",
                     w->workload_id, n);
        w->flapping_reason[0] = '\0';
        w->flapping_since_ms = w->failover_hold_until_ms = DM_NULL;
        return rc;
    }
    int64_t backoff = fo_budget_backoff_ms((int64_t)n - max, k->budget_scale);
    int64_t hold = fs[0].started_at_ms + backoff; /* BUD-B2: after the newest began */
    free(fs);
    char wt[32], bt[32], reason[FLEET_TEXT_MAX];
    dur_text(win, wt, sizeof wt);
    dur_text(backoff, bt, sizeof bt);
    snprintf(reason, sizeof reason,
             "%zu automatic failovers in the last %s (budget %lld): failovers go on, each at "
             "least %s after the previous one",
             n, wt, (long long)max, bt);
    int64_t since = w->flapping_since_ms != DM_NULL ? w->flapping_since_ms : now;
    int64_t until = hold > now ? hold : DM_NULL;
    if ((rc = db_workload_set_budget(k->orch->db, w->workload_id, reason, since, until, err,
                                     errlen)) != 0)
        return rc;
    char q[FLEET_TEXT_MAX + 8];
    log_warn("workload.flapping", "workload_id=%s failovers_in_window=%zu budget=%lld hold_ms=%lld "
             "reason=%s",
             w->workload_id, n, (long long)max, (long long)(until == DM_NULL ? 0 : hold - now),
             log_quote(q, sizeof q, reason));
    snprintf(w->flapping_reason, sizeof w->flapping_reason, "%s", reason);
    w->flapping_since_ms = since;
    w->failover_hold_until_ms = until;
    return 0;
}

int fo_budget_wait(fo_real_run *r, int64_t *ret_held_ms)
{
    int64_t hold = r->w.failover_hold_until_ms, t0 = clock_mono_ms();
    *ret_held_ms = 0;
    if (hold == DM_NULL || r->f.real.test)
        return 0;
    int64_t wait = hold - clock_wall_ms();
    if (wait <= 0)
        return 0;
    log_warn("failover.held", "failover_id=%s workload_id=%s ms=%lld (the failover budget: flapping)",
             r->f.id, r->w.workload_id, (long long)wait);
    do /* BUD-B2 on the wall clock the hold is written in, to the millisecond */
        if (clock_sleep_ms(wait, &r->orch->stopping) != 0)
            return DM_E_CANCELLED; /* ORCH-R2: the next start waits for the rest */
    while ((wait = hold - clock_wall_ms()) > 0);
    *ret_held_ms = clock_mono_ms() - t0;
    return 0;
}

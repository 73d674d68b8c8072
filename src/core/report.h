/* Failover report arithmetic: totals, success rate, MTTR and per-phase
 * statistics, for simulated failovers, real ones, and both together.
 *
 * The database streams finished failovers into an accumulator
 * (fo_report_acc_add); fo_report_acc_finish() computes the statistics.
 *
 * FO-R1: MTTR is taken over *successful* failovers' total_time_ms only; a failed
 *     failover recovered nothing, so it has no time-to-recovery.
 * FO-R2: phase statistics are taken over every finished failover in which that
 *     phase has a duration (FO-I2 of core/failover.h: absent phases are not zeros).
 * FO-R3: percentiles use the nearest-rank method: pX is the value at 1-based rank
 *     ceil(X/100 * n) of the sorted sample; with n == 0 every statistic is
 *     FO_NULL (mean: NAN), never 0.
 * FO-R4: success_rate = succeeded / (succeeded + failed); running failovers are
 *     counted apart and do not enter any statistic. */
#ifndef DUMONT_CORE_REPORT_H
#define DUMONT_CORE_REPORT_H

#include "core/failover.h"

#include <stdint.h>

typedef struct {
    int64_t count;
    double mean;           /* NAN when count == 0 */
    int64_t p50, p95, max; /* FO_NULL when count == 0 */
} fo_stat;

typedef struct {
    int64_t total; /* succeeded + failed + running */
    int64_t succeeded, failed, running;
    double success_rate; /* 0..1; NAN when nothing finished */
    fo_stat mttr;
    fo_stat phase[FO_PHASE_COUNT];
} fo_report_group;

typedef struct {
    fo_report_group all, simulated, real;
} fo_report;

typedef struct fo_report_acc fo_report_acc;

fo_report_acc *fo_report_acc_new(void);
void fo_report_acc_free(fo_report_acc *acc);
/* Adds one finished failover (success 0 or 1). phase_ms[i] is FO_NULL for
 * phases that did not happen. Returns 0, DM_E_INVALID (bad kind or success;
 * nothing added) or -ENOMEM. */
int fo_report_acc_add(fo_report_acc *acc, fo_kind kind, int success, int64_t total_ms,
                      const int64_t phase_ms[FO_PHASE_COUNT]);
/* Counts running failovers of a kind (they enter no statistic, FO-R4). */
void fo_report_acc_add_running(fo_report_acc *acc, fo_kind kind, int64_t n);
/* Computes the report. The accumulator may be freed afterwards. */
void fo_report_acc_finish(fo_report_acc *acc, fo_report *ret);

/* Statistics of a sample (reorders it in place). Exposed for tests. */
void fo_stat_compute(int64_t *v, int64_t n, fo_stat *ret);

#endif

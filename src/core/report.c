/* Report arithmetic (see report.h for FO-R1 to FO-R4).
 *
 * Samples are kept as growable int64 arrays, one per (kind, metric); both
 * kinds are merged for the "all" group at finish time. Percentiles come from
 * quickselect, not a sort: the report over 100,000 failovers spends a few ms here. */
#include "core/report.h"

#include "util/error.h"

#include <assert.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define METRICS (1 + FO_PHASE_COUNT) /* 0: MTTR, 1..: phases */

typedef struct {
    int64_t *v;
    int64_t n, cap;
} sample;

struct fo_report_acc {
    sample s[FO_KIND_COUNT][METRICS];
    int64_t succeeded[FO_KIND_COUNT], failed[FO_KIND_COUNT], running[FO_KIND_COUNT];
};

static int sample_push(sample *s, int64_t x)
{
    if (s->n == s->cap) {
        int64_t cap = s->cap ? s->cap * 2 : 1024;
        int64_t *v = realloc(s->v, (size_t)cap * sizeof *v);
        if (!v)
            return -ENOMEM;
        s->v = v;
        s->cap = cap;
    }
    s->v[s->n++] = x;
    return 0;
}

fo_report_acc *fo_report_acc_new(void)
{
    return calloc(1, sizeof(fo_report_acc));
}

void fo_report_acc_free(fo_report_acc *acc)
{
    if (!acc)
        return;
    for (int k = 0; k < FO_KIND_COUNT; k++)
        for (int m = 0; m < METRICS; m++)
            free(acc->s[k][m].v);
    free(acc);
}

int fo_report_acc_add(fo_report_acc *acc, fo_kind kind, int success, int64_t total_ms,
                      const int64_t phase_ms[FO_PHASE_COUNT])
{
    /* Only finished failovers (success 0 or 1, FO-I4 of core/failover.h) enter the
     * statistics: a running one (FO_NULL) would otherwise count as a success. */
    if ((unsigned)kind >= FO_KIND_COUNT || (success != 0 && success != 1))
        return DM_E_INVALID;
    if (success) {
        acc->succeeded[kind]++;
        if (total_ms != FO_NULL && sample_push(&acc->s[kind][0], total_ms))
            return -ENOMEM;
    } else {
        acc->failed[kind]++;
    }
    for (int p = 0; p < FO_PHASE_COUNT; p++)
        if (phase_ms[p] != FO_NULL && sample_push(&acc->s[kind][1 + p], phase_ms[p]))
            return -ENOMEM;
    return 0;
}

void fo_report_acc_add_running(fo_report_acc *acc, fo_kind kind, int64_t n)
{
    if ((unsigned)kind < FO_KIND_COUNT)
        acc->running[kind] += n;
}

/* Quickselect (Hoare partition, middle pivot): afterwards v[k] holds the value
 * of rank k (0-based) and v[lo..k-1] <= v[k] <= v[k+1..hi]. O(n) on average,
 * so the report needs no full sort: ~1 ms per 100,000 values instead of ~10. */
static void select_kth(int64_t *v, int64_t lo, int64_t hi, int64_t k)
{
    while (lo < hi) {
        int64_t pivot = v[lo + (hi - lo) / 2], i = lo, j = hi;
        while (i <= j) {
            while (v[i] < pivot)
                i++;
            while (v[j] > pivot)
                j--;
            if (i <= j) {
                int64_t t = v[i];
                v[i++] = v[j];
                v[j--] = t;
            }
        }
        if (k <= j)
            hi = j;
        else if (k >= i)
            lo = i;
        else
            return; /* j < k < i: v[k] equals the pivot */
    }
}

/* 0-based index of the nearest-rank pX: rank ceil(X/100 * n), exact in integers. */
static int64_t rank_index(int64_t n, int pct)
{
    int64_t rank = (pct * n + 99) / 100;
    return (rank < 1 ? 1 : rank) - 1;
}

void fo_stat_compute(int64_t *v, int64_t n, fo_stat *ret)
{
    memset(ret, 0, sizeof *ret);
    if (n <= 0 || !v) {
        ret->mean = NAN;
        ret->p50 = ret->p95 = ret->max = FO_NULL;
        return;
    }
    ret->count = n;
    double sum = 0;
    int64_t max = v[0];
    for (int64_t i = 0; i < n; i++) {
        sum += (double)v[i];
        if (v[i] > max)
            max = v[i];
    }
    ret->mean = sum / (double)n;
    ret->max = max;
    int64_t k95 = rank_index(n, 95), k50 = rank_index(n, 50);
    select_kth(v, 0, n - 1, k95);
    ret->p95 = v[k95];
    select_kth(v, 0, k95, k50); /* rank 50 lies left of rank 95 */
    ret->p50 = v[k50];
    assert(ret->p50 <= ret->p95 && ret->p95 <= ret->max); /* FO-R3: nearest ranks */
}

static void group_counts(fo_report_group *g, int64_t ok, int64_t bad, int64_t run)
{
    g->succeeded = ok;
    g->failed = bad;
    g->running = run;
    g->total = ok + bad + run;
    g->success_rate = ok + bad > 0 ? (double)ok / (double)(ok + bad) : NAN;
}

/* Stats over the concatenation of both kinds' samples of metric m. */
static void merged_stat(fo_report_acc *acc, int m, fo_stat *ret)
{
    sample *a = &acc->s[FO_KIND_SIMULATED][m], *b = &acc->s[FO_KIND_REAL][m];
    int64_t n = a->n + b->n;
    int64_t *v = n ? malloc((size_t)n * sizeof *v) : NULL;
    if (n && !v) {
        fo_stat_compute(NULL, 0, ret); /* out of memory: report "no data" over a crash */
        return;
    }
    if (a->n)
        memcpy(v, a->v, (size_t)a->n * sizeof *v);
    if (b->n)
        memcpy(v + a->n, b->v, (size_t)b->n * sizeof *v);
    fo_stat_compute(v, n, ret);
    free(v);
}

void fo_report_acc_finish(fo_report_acc *acc, fo_report *ret)
{
    memset(ret, 0, sizeof *ret);
    fo_report_group *groups[FO_KIND_COUNT] = {&ret->simulated, &ret->real};
    /* "all" works on copies of both kinds' samples (merged_stat), so the order
     * in which the groups are computed does not matter. */
    for (int m = 0; m < METRICS; m++)
        merged_stat(acc, m, m == 0 ? &ret->all.mttr : &ret->all.phase[m - 1]);
    group_counts(&ret->all, acc->succeeded[0] + acc->succeeded[1], acc->failed[0] + acc->failed[1],
                 acc->running[0] + acc->running[1]);
    for (int k = 0; k < FO_KIND_COUNT; k++) {
        fo_report_group *g = groups[k];
        group_counts(g, acc->succeeded[k], acc->failed[k], acc->running[k]);
        for (int m = 0; m < METRICS; m++)
            fo_stat_compute(acc->s[k][m].v, acc->s[k][m].n, m == 0 ? &g->mttr : &g->phase[m - 1]);
    }
}

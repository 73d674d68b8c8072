/* bench_report: how long db_report() takes over many finished failovers.
 *
 *   bench_report URL [N [K]]      N failovers (default 100000), K reports (default 21)
 *
 * Fills the database at URL (a SQLite path or a postgresql:// URL) with N
 * finished failovers made by the real state machine, with realistic random
 * phase durations (a fixed seed: every run draws the same data), ~40% real /
 * 60% simulated, ~5% failed (a fifth of those interrupted, so a phase without
 * a duration). A database that already holds failovers is reported over as
 * it is, not filled again. Then it runs db_report() K times and prints
 * min/median/p95 in milliseconds, and the same for the statistics alone
 * (report.c fed from memory), so the database's share can be read off.
 *
 * The last line is machine-readable (bench/report.sh reads it):
 *   RESULT backend=sqlite n=100000 fill_s=1.23 min_ms=.. median_ms=.. p95_ms=.. stats_median_ms=..
 */
#include "db/db.h"
#include "util/clock.h"
#include "util/error.h"
#include "util/parse.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CHUNK 10000 /* failovers generated and inserted per transaction */
#define K_MAX 1000

static uint64_t rng = 0x9e3779b97f4a7c15ULL;

static uint64_t next_u64(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

static int64_t uniform(int64_t lo, int64_t hi)
{
    return lo + (int64_t)(next_u64() % (uint64_t)(hi - lo + 1));
}

/* Typical phase durations, ms: [min, max]. */
static const int64_t phase_range[FO_PHASE_COUNT][2] = {
    {200, 1000},    /* detection */
    {500, 3000},    /* standby_activation */
    {1000, 15000},  /* gpu_search */
    {20000, 90000}, /* provisioning */
    {5000, 40000},  /* ssh_ready */
    {10000, 60000}, /* restore */
    {2000, 20000},  /* inference */
};

static void make_one(fo_failover *f, int64_t i, int64_t t0)
{
    char id[32];
    fo_kind kind = next_u64() % 10 < 6 ? FO_KIND_SIMULATED : FO_KIND_REAL;
    int fail_at = next_u64() % 100 < 5 ? (int)uniform(FO_PHASE_GPU_SEARCH, FO_PHASE_INFERENCE) : -1;
    snprintf(id, sizeof id, "bench-%09" PRId64, i);
    fo_init(f, id, i + 1, kind, t0);
    int64_t now = t0;
    for (int p = 0; p < FO_PHASE_COUNT; p++) {
        int64_t d = uniform(phase_range[p][0], phase_range[p][1]);
        fo_event ev = {FO_EV_PHASE_OK, now + d, d, kind == FO_KIND_SIMULATED, NULL, 0, 0};
        if (p == fail_at) {
            int abort = next_u64() % 5 == 0;
            ev.kind = abort ? FO_EV_ABORT : FO_EV_PHASE_FAILED;
            ev.duration_ms = abort ? FO_NULL : d / 2;
            ev.detail = abort ? "controller restarted" : "no offer under the price cap";
        }
        fo_transition(f, &ev);
        now += d;
        if (p == fail_at)
            break;
    }
}

static int fill(dm_db *db, int64_t n, char *err, size_t errlen)
{
    fo_failover *buf = calloc(CHUNK, sizeof *buf);
    int rc = buf ? 0 : dm_fail(err, errlen, DM_E_INTERNAL, "out of memory");
    int64_t t0 = 1764331200000 - 30LL * 86400 * 1000; /* spread over 30 days */
    for (int64_t i = 0; rc == 0 && i < n; i += CHUNK) {
        int64_t m = n - i < CHUNK ? n - i : CHUNK;
        for (int64_t j = 0; j < m; j++)
            make_one(&buf[j], i + j, t0 + (i + j) * 25000);
        rc = db_failover_insert_many(db, buf, (size_t)m, err, errlen);
    }
    free(buf);
    return rc;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

typedef struct {
    double min, median, p95;
} summary;

static summary summarize(double *v, int k)
{
    qsort(v, (size_t)k, sizeof *v, cmp_double);
    summary s = {v[0], v[(k - 1) / 2], v[(95 * k + 99) / 100 - 1]};
    return s;
}

/* The statistics alone: report.c fed the same numbers from memory. */
typedef struct {
    fo_kind kind;
    int success;
    int64_t total, ph[FO_PHASE_COUNT];
} mem_row;

static int collect(dm_db *db, mem_row **ret, int64_t *ret_n, char *err, size_t errlen)
{
    db_failover_filter flt;
    db_failover_filter_init(&flt);
    int64_t n = 0;
    *ret = NULL;
    *ret_n = 0;
    mem_row *rows = NULL;
    for (int64_t off = 0;; off += DB_LIST_MAX) {
        fo_failover *v = NULL;
        size_t vn = 0;
        flt.limit = DB_LIST_MAX;
        flt.offset = off;
        int rc = db_failover_list(db, &flt, &v, &vn, err, errlen);
        mem_row *grown = rc ? NULL : realloc(rows, (size_t)(n + (int64_t)vn + 1) * sizeof *rows);
        if (!grown) {
            free(v);
            free(rows);
            return rc ? rc : DM_E_INTERNAL;
        }
        rows = grown;
        for (size_t i = 0; i < vn; i++, n++) {
            rows[n].kind = v[i].kind;
            rows[n].success = v[i].success;
            rows[n].total = v[i].total_time_ms;
            for (int p = 0; p < FO_PHASE_COUNT; p++)
                rows[n].ph[p] = v[i].phases[p].duration_ms;
        }
        free(v);
        if (vn < DB_LIST_MAX)
            break;
    }
    *ret = rows;
    *ret_n = n;
    return 0;
}

static double stats_once(const mem_row *rows, int64_t n)
{
    int64_t t = clock_mono_us();
    fo_report_acc *acc = fo_report_acc_new();
    fo_report r;
    for (int64_t i = 0; acc && i < n; i++)
        if (rows[i].success != FO_NULL)
            fo_report_acc_add(acc, rows[i].kind, rows[i].success, rows[i].total, rows[i].ph);
    if (acc)
        fo_report_acc_finish(acc, &r);
    fo_report_acc_free(acc);
    return (double)(clock_mono_us() - t) / 1000.0;
}

static int time_reports(dm_db *db, int k, double *ms, fo_report *r, char *err, size_t errlen)
{
    db_failover_filter flt;
    db_failover_filter_init(&flt);
    for (int i = 0; i < k; i++) {
        int64_t t = clock_mono_us();
        int rc = db_report(db, &flt, r, err, errlen);
        if (rc)
            return rc;
        ms[i] = (double)(clock_mono_us() - t) / 1000.0;
    }
    return 0;
}

static int run(const char *url, int64_t n, int k)
{
    char err[512] = "", shown[512];
    dm_db *db = NULL;
    double *ms = calloc((size_t)k, sizeof *ms), *st = calloc((size_t)k, sizeof *st);
    mem_row *rows = NULL;
    int64_t have = 0, nrows = 0;
    double fill_s = 0;
    fo_report r;
    db_failover_filter flt;
    db_failover_filter_init(&flt);
    db_url_redact(url, shown, sizeof shown);
    int rc = ms && st ? db_open(url, &db, err, sizeof err) : DM_E_INTERNAL;
    if (rc || (rc = db_failover_count(db, &flt, &have, err, sizeof err)) != 0)
        goto out;
    if (have == 0) {
        int64_t t = clock_mono_us();
        if ((rc = fill(db, n, err, sizeof err)) != 0)
            goto out;
        fill_s = (double)(clock_mono_us() - t) / 1e6;
        have = n;
    } else {
        fprintf(stderr, "bench_report: %s already holds %" PRId64 " failovers; not filling\n",
                shown, have);
    }
    if ((rc = time_reports(db, k, ms, &r, err, sizeof err)) != 0 ||
        (rc = collect(db, &rows, &nrows, err, sizeof err)) != 0)
        goto out;
    for (int i = 0; i < k; i++)
        st[i] = stats_once(rows, nrows);
    summary s = summarize(ms, k), t = summarize(st, k);
    printf("%s: %" PRId64 " failovers (%" PRId64 " ok, %" PRId64 " failed; %" PRId64
           " real), success rate %.4f, MTTR p50 %" PRId64 " ms p95 %" PRId64 " ms\n",
           shown, r.all.total, r.all.succeeded, r.all.failed, r.real.total, r.all.success_rate,
           r.all.mttr.p50, r.all.mttr.p95);
    printf("db_report x%d: min %.1f ms, median %.1f ms, p95 %.1f ms "
           "(statistics alone: median %.1f ms)\n",
           k, s.min, s.median, s.p95, t.median);
    printf("RESULT backend=%s n=%" PRId64 " fill_s=%.2f min_ms=%.1f median_ms=%.1f p95_ms=%.1f"
           " stats_median_ms=%.1f\n",
           db_backend_name(db), have, fill_s, s.min, s.median, s.p95, t.median);
out:
    if (rc)
        fprintf(stderr, "bench_report: %s: %s\n", shown, err[0] ? err : dm_strerror(rc));
    free(rows);
    free(ms);
    free(st);
    db_close(db);
    return rc ? 1 : 0;
}

int main(int argc, char **argv)
{
    int64_t n = 100000, k = 21;
    if (argc < 2 || argc > 4 || (argc > 2 && parse_i64(argv[2], 1, 100000000, &n) != 0) ||
        (argc > 3 && parse_i64(argv[3], 1, K_MAX, &k) != 0)) {
        fprintf(stderr, "usage: bench_report URL [N [K]]   (N >= 1, 1 <= K <= %d)\n", K_MAX);
        return 2;
    }
    return run(argv[1], n, (int)k);
}

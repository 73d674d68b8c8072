/* The failover report: one scan of one table into report.c's accumulator.
 *
 * The statement reads, per failover matching the filter, its kind, success,
 * total time and the seven <phase>_ms columns (DB-D4: no join). Statistics
 * (percentiles need every value) are computed by fo_report_acc_finish(),
 * after the database lock is released.
 *
 * DB-R1: one statement gives finished and running failovers alike, so the
 *      counts and the statistics come from the same snapshot; a row is
 *      running iff success IS NULL (FO-I4 of core/failover.h, checked on every write:
 *      DBF-F1 of db_failover.c).
 * DB-R2: a row of an unknown kind (written by a newer program) is skipped,
 *      not guessed at; the statement's other rows still count.
 * DB-R3: *ret is written only when the whole report succeeded. */
#include "db/db_internal.h"

#include "util/error.h"

#include <errno.h>

typedef struct {
    fo_report_acc *acc;
    int64_t running[FO_KIND_COUNT];
} report_ctx;

static int report_row(const db_row *r, void *ctx)
{
    report_ctx *x = ctx;
    const char *k = db_row_text(r, 0);
    fo_kind kind;
    int null = 0;
    if (!k || fo_kind_parse(k, &kind) != 0)
        return 0; /* DB-R2 */
    int64_t success = db_row_i64(r, 1, &null);
    if (null) {
        x->running[kind]++; /* DB-R1 */
        return 0;
    }
    int64_t ph[FO_PHASE_COUNT];
    for (int i = 0; i < FO_PHASE_COUNT; i++)
        ph[i] = db_col_i64n(r, 3 + i);
    return fo_report_acc_add(x->acc, kind, success != 0, db_col_i64n(r, 2), ph);
}

int db_report(dm_db *db, const db_failover_filter *flt, fo_report *ret, char *err, size_t errlen)
{
    if (!db || !ret)
        return dm_fail(err, errlen, DM_E_INVALID, "no database or result");
    report_ctx x = {fo_report_acc_new(), {0}};
    if (!x.acc)
        return dm_fail(err, errlen, -ENOMEM, "out of memory");
    db_query q;
    db_q_init(&q, "SELECT kind, success, total_time_ms, detection_ms, standby_activation_ms,"
                  " gpu_search_ms, provisioning_ms, ssh_ready_ms, restore_ms, inference_ms"
                  " FROM failovers");
    int rc = db_q_where(&q, flt, err, errlen);
    if (rc)
        goto out;
    if (q.overflow) {
        rc = dm_fail(err, errlen, DM_E_INTERNAL, "query too long");
        goto out;
    }
    pthread_mutex_lock(&db->lock);
    rc = db_x(db, q.sql, q.p, q.np, report_row, &x, NULL, err, errlen);
    pthread_mutex_unlock(&db->lock);
    if (rc == -ENOMEM)
        rc = dm_fail(err, errlen, rc, "report: out of memory");
    if (rc)
        goto out;
    for (int k = 0; k < FO_KIND_COUNT; k++)
        fo_report_acc_add_running(x.acc, (fo_kind)k, x.running[k]);
    fo_report r;
    fo_report_acc_finish(x.acc, &r);
    *ret = r; /* DB-R3 */
out:
    fo_report_acc_free(x.acc);
    return rc;
}

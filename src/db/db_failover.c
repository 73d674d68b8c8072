/* Failover records: insert, save, get, list, count (see db.h for DB-D1 to DB-D4).
 *
 * A failover is one row of `failovers` plus seven rows of `failover_phases`
 * (one per phase, seq = phase number). The row repeats each phase's
 * duration in <phase>_ms (DB-D4) so the report never joins.
 *
 * DBF-F1: a record is checked before anything is written: its enums in range,
 *     its strings terminated (DB-O3), and core/failover.h's FO-I4 (success is FO_NULL while
 *     running, 1 when completed, 0 when failed). The report relies on FO-I4 to
 *     tell running failovers from finished ones without reading `state`.
 * DBF-F2: inserts are batched: up to FO_BATCH failovers per multi-row INSERT,
 *     all batches in one transaction; a batch fails as a whole (a duplicate
 *     id or a second active failover of a GPU is DM_E_CONFLICT, DB-D3).
 * DBF-F3: get and list are one statement (failovers LEFT JOIN failover_phases),
 *     so a record is read from one snapshot even without a transaction.
 * DBF-F4: a list holds at most DB_LIST_MAX records (the cap of db.h).
 * DBF-F5: the runs of the phases (core/failover.h FO-I5) are one text column,
 *     one line per run: "PHASE ATTEMPT STATUS START DURATION DETAIL", "-" for
 *     a null number, the detail's line breaks made spaces; written with
 *     the record (DB-D2), the downtime and the current run beside it
 *     (migration 8). A line that does not parse is a record that does not
 *     decode (DB_E_DB), never a guess. */
#include "db/db_internal.h"

#include "util/error.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FO_BATCH 64
#define FO_NCOLS 17 /* failovers columns written */
#define PH_NCOLS 8  /* failover_phases columns written */

#define FO_COLS                                                                                    \
    "failover_id, gpu_instance_id, kind, user_id, state, success, reason, started_at_ms,"          \
    " finished_at_ms, total_time_ms, detection_ms, standby_activation_ms, gpu_search_ms,"          \
    " provisioning_ms, ssh_ready_ms, restore_ms, inference_ms"
#define PH_COLS "failover_id, phase, seq, status, started_at_ms, duration_ms, simulated, detail"

static int phase_check(const fo_phase_rec *ph)
{
    return (unsigned)ph->status <= FO_PHASE_SKIPPED && DB_STR_OK(ph->detail);
}

/* DBF-F1 */
static int db_fo_check(const fo_failover *f, char *err, size_t errlen)
{
    const char *why = NULL;
    if (!f || !DB_STR_OK(f->id) || !f->id[0])
        return dm_fail(err, errlen, DM_E_INVALID, "failover: missing id");
    if (f->gpu_instance_id < 0)
        why = "gpu_instance_id < 0";
    else if ((unsigned)f->kind >= FO_KIND_COUNT)
        why = "bad kind";
    else if (f->state < 0 || f->state > FO_STATE_FAILED)
        why = "bad state";
    else if (f->success != (f->state == FO_STATE_COMPLETED ? 1
                            : f->state == FO_STATE_FAILED  ? 0
                                                           : FO_NULL))
        why = "success does not match state (FO-I4)";
    else if (!DB_STR_OK(f->user_id) || !DB_STR_OK(f->reason) ||
             !DB_STR_OK(f->real.workload_id) || !DB_STR_OK(f->real.trigger) ||
             !DB_STR_OK(f->real.excluded_hosts) || !DB_STR_OK(f->real.snapshot_id) ||
             !DB_STR_OK(f->real.snapshot_compression) || !DB_STR_OK(f->real.snapshot_storage) ||
             !DB_STR_OK(f->real.inference_model) || !DB_STR_OK(f->real.snapshot_storage_url) ||
             !DB_STR_OK(f->real.restore_source))
        why = "unterminated string";
    else if (f->n_runs < 0 || f->n_runs > FO_RUNS_MAX)
        why = "bad number of runs";
    for (int i = 0; !why && i < f->n_runs; i++)
        if ((unsigned)f->runs[i].phase >= FO_PHASE_COUNT ||
            (unsigned)f->runs[i].status > FO_PHASE_SKIPPED || f->runs[i].attempt < 1 ||
            !DB_STR_OK(f->runs[i].detail))
            why = "bad run record";
    for (int i = 0; !why && i < FO_PHASE_COUNT; i++)
        if (!phase_check(&f->phases[i]))
            why = "bad phase record";
    if (why)
        return dm_fail(err, errlen, DM_E_INVALID, "failover '%s': %s", f->id, why);
    return 0;
}

static void fo_params(const fo_failover *f, db_param *p)
{
    *p++ = db_p_text(f->id);
    *p++ = db_p_i64(f->gpu_instance_id);
    *p++ = db_p_text(fo_kind_name(f->kind));
    *p++ = db_p_textn(f->user_id);
    *p++ = db_p_text(fo_state_name(f->state));
    *p++ = db_p_i64n(f->success);
    *p++ = db_p_textn(f->reason);
    *p++ = db_p_i64(f->started_at_ms);
    *p++ = db_p_i64n(f->finished_at_ms);
    *p++ = db_p_i64n(f->total_time_ms);
    for (int i = 0; i < FO_PHASE_COUNT; i++)
        *p++ = db_p_i64n(f->phases[i].duration_ms); /* DB-D4 */
}

/* The fo_real columns (migration 3), $2.. in REAL_COLS order; $1 = id. */
#define REAL_NCOLS 19
static void real_params(const fo_failover *f, db_param *p)
{
    const fo_real *r = &f->real;
    *p++ = db_p_text(f->id);
    *p++ = db_p_textn(r->workload_id);
    *p++ = db_p_i64n(r->new_instance_id);
    *p++ = db_p_textn(r->trigger);
    *p++ = db_p_i64(r->test ? 1 : 0);
    *p++ = db_p_i64(r->keep ? 1 : 0);
    *p++ = db_p_i64(r->attempts);
    *p++ = db_p_i64n(r->epoch);
    *p++ = db_p_textn(r->excluded_hosts);
    *p++ = db_p_textn(r->snapshot_id);
    *p++ = db_p_i64n(r->snapshot_size_bytes);
    *p++ = db_p_i64n(r->snapshot_creation_time_ms);
    *p++ = db_p_textn(r->snapshot_compression);
    *p++ = db_p_textn(r->snapshot_storage);
    *p++ = db_p_i64n(r->restore_download_time_ms);
    *p++ = db_p_i64n(r->restore_decompress_time_ms);
    *p++ = db_p_textn(r->inference_model);
    *p++ = db_p_i64n(r->inference_ready_time_ms);
    *p++ = db_p_i64n(r->inference_success);
    *p++ = db_p_textn(r->restore_source); /* migration 9 */
}

static int write_real(dm_db *db, const fo_failover *f, char *err, size_t errlen)
{
    if (f->kind != FO_KIND_REAL)
        return 0;
    db_param p[REAL_NCOLS + 1];
    real_params(f, p);
    return db_x(db,
                "UPDATE failovers SET workload_id = $2, new_instance_id = $3, trigger_kind = $4,"
                " test = $5, keep_instance = $6, attempts = $7, epoch = $8, excluded_hosts = $9,"
                " snapshot_id = $10, snapshot_size_bytes = $11, snapshot_creation_time_ms = $12,"
                " snapshot_compression = $13, snapshot_storage = $14,"
                " restore_download_time_ms = $15, restore_decompress_time_ms = $16,"
                " inference_model = $17, inference_ready_time_ms = $18, inference_success = $19,"
                " restore_source = $20 WHERE failover_id = $1",
                p, REAL_NCOLS + 1, NULL, NULL, NULL, err, errlen);
}

static void put_num(char *buf, size_t cap, int64_t v)
{
    if (v == FO_NULL)
        snprintf(buf, cap, "-");
    else
        snprintf(buf, cap, "%lld", (long long)v);
}

char *db_runs_encode(const fo_failover *f) /* DBF-F5 */
{
    size_t cap = (size_t)f->n_runs * (FO_RUN_DETAIL_MAX + 96) + 1, o = 0;
    char *t = malloc(cap);
    if (!t)
        return NULL;
    t[0] = '\0';
    for (int i = 0; i < f->n_runs && i < FO_RUNS_MAX; i++) {
        const fo_phase_run *r = &f->runs[i];
        char st[24], du[24], d[FO_RUN_DETAIL_MAX];
        put_num(st, sizeof st, r->started_at_ms);
        put_num(du, sizeof du, r->duration_ms);
        snprintf(d, sizeof d, "%s", r->detail);
        for (char *c = d; *c; c++)
            if (*c == '\n' || *c == '\r')
                *c = ' ';
        o += (size_t)snprintf(t + o, cap - o, "%s %d %s %s %s %s\n", fo_phase_name((fo_phase)r->phase),
                              r->attempt, fo_phase_status_name(r->status), st, du, d);
    }
    return t;
}

/* One number of a run line: "-" (null) or a decimal; *p moves past it. */
static int take_num(const char **p, int64_t *ret)
{
    const char *s = *p;
    if (*s == '-' && (s[1] == ' ' || s[1] == '\n' || !s[1])) {
        *ret = FO_NULL;
        *p = s + 1;
        return 0;
    }
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (end == s || errno || (*end != ' ' && *end != '\n' && *end))
        return DM_E_DB;
    *ret = v;
    *p = end;
    return 0;
}

/* A word up to the next space into out (cap bytes); *p moves past the space. */
static int take_word(const char **p, char *out, size_t cap)
{
    size_t n = strcspn(*p, " \n");
    if (n == 0 || n >= cap || (*p)[n] != ' ')
        return DM_E_DB;
    memcpy(out, *p, n);
    out[n] = '\0';
    *p += n + 1;
    return 0;
}

int db_runs_decode(const char *text, fo_failover *f) /* DBF-F5 */
{
    f->n_runs = 0;
    for (const char *p = text ? text : ""; *p;) {
        if (f->n_runs == FO_RUNS_MAX)
            return DM_E_DB;
        fo_phase_run *r = &f->runs[f->n_runs];
        char ph[32], st[16], att[16];
        fo_phase phase;
        int64_t a;
        memset(r, 0, sizeof *r);
        if (take_word(&p, ph, sizeof ph) || fo_phase_parse(ph, &phase) ||
            take_word(&p, att, sizeof att) || (a = strtoll(att, NULL, 10)) < 1 || a > 1000 ||
            take_word(&p, st, sizeof st) || fo_phase_status_parse(st, &r->status) ||
            take_num(&p, &r->started_at_ms) || *p++ != ' ' || take_num(&p, &r->duration_ms) ||
            *p++ != ' ')
            return DM_E_DB;
        size_t n = strcspn(p, "\n");
        if (p[n] != '\n' || n >= sizeof r->detail)
            return DM_E_DB;
        memcpy(r->detail, p, n);
        r->phase = (int)phase;
        r->attempt = (int)a;
        p += n + 1;
        f->n_runs++;
    }
    return 0;
}

/* The columns of migration 8, for every kind: $1 = id. */
static int write_runs(dm_db *db, const fo_failover *f, char *err, size_t errlen)
{
    char *runs = db_runs_encode(f);
    if (!runs)
        return dm_fail(err, errlen, -ENOMEM, "out of memory");
    db_param p[] = {db_p_text(f->id), db_p_i64n(f->controller_down_ms), db_p_text(runs),
                    db_p_i64n(f->run_started_at_ms), db_p_i64(f->attempt),
                    db_p_textn(f->real.snapshot_storage_url)};
    int rc = db_x(db,
                  "UPDATE failovers SET controller_down_ms = $2, phase_runs = $3,"
                  " run_started_at_ms = $4, attempt = $5, snapshot_storage_url = $6"
                  " WHERE failover_id = $1",
                  p, 6, NULL, NULL, NULL, err, errlen);
    free(runs);
    return rc;
}

static void phase_params(const fo_failover *f, int i, db_param *p)
{
    const fo_phase_rec *ph = &f->phases[i];
    *p++ = db_p_text(f->id);
    *p++ = db_p_text(fo_phase_name((fo_phase)i));
    *p++ = db_p_i64(i);
    *p++ = db_p_text(fo_phase_status_name(ph->status));
    *p++ = db_p_i64n(ph->started_at_ms);
    *p++ = db_p_i64n(ph->duration_ms);
    *p++ = db_p_i64(ph->simulated ? 1 : 0);
    *p++ = db_p_textn(ph->detail);
}

/* "prefix ($1, .., $cols), (..), ... suffix" for rows tuples; malloc'd. */
static char *values_sql(const char *prefix, int rows, int cols, const char *suffix)
{
    size_t cap = strlen(prefix) + strlen(suffix) + (size_t)rows * ((size_t)cols * 8 + 4) + 1;
    char *sql = malloc(cap);
    if (!sql)
        return NULL;
    size_t o = (size_t)snprintf(sql, cap, "%s", prefix);
    for (int r = 0, k = 1; r < rows; r++)
        for (int c = 0; c < cols; c++, k++)
            o += (size_t)snprintf(sql + o, cap - o, "%s$%d%s", c ? "" : (r ? ", (" : "("), k,
                                  c + 1 < cols ? ", " : ")");
    snprintf(sql + o, cap - o, "%s", suffix);
    return sql;
}

static const char ph_upsert[] =
    " ON CONFLICT (failover_id, phase) DO UPDATE SET seq = excluded.seq,"
    " status = excluded.status, started_at_ms = excluded.started_at_ms,"
    " duration_ms = excluded.duration_ms, simulated = excluded.simulated,"
    " detail = excluded.detail";

/* The phase rows of n failovers, inserted (or upserted) by one statement. */
static int write_phases(dm_db *db, const fo_failover *f, size_t n, int upsert, db_param *p,
                        char *err, size_t errlen)
{
    int rows = (int)n * FO_PHASE_COUNT;
    char *sql = values_sql("INSERT INTO failover_phases (" PH_COLS ") VALUES ", rows, PH_NCOLS,
                           upsert ? ph_upsert : "");
    if (!sql)
        return dm_fail(err, errlen, -ENOMEM, "out of memory");
    for (size_t i = 0; i < n; i++)
        for (int ph = 0; ph < FO_PHASE_COUNT; ph++)
            phase_params(&f[i], ph, p + (i * FO_PHASE_COUNT + (size_t)ph) * PH_NCOLS);
    int rc = db_x(db, sql, p, rows * PH_NCOLS, NULL, NULL, NULL, err, errlen);
    free(sql);
    return rc;
}

static int insert_batch(dm_db *db, const fo_failover *f, size_t n, db_param *p, char *err,
                        size_t errlen)
{
    char *sql = values_sql("INSERT INTO failovers (" FO_COLS ") VALUES ", (int)n, FO_NCOLS, "");
    if (!sql)
        return dm_fail(err, errlen, -ENOMEM, "out of memory");
    for (size_t i = 0; i < n; i++)
        fo_params(&f[i], p + i * FO_NCOLS);
    int rc = db_x(db, sql, p, (int)n * FO_NCOLS, NULL, NULL, NULL, err, errlen);
    free(sql);
    for (size_t i = 0; rc == 0 && i < n; i++)
        if ((rc = write_real(db, &f[i], err, errlen)) == 0)
            rc = write_runs(db, &f[i], err, errlen);
    return rc ? rc : write_phases(db, f, n, 0, p, err, errlen);
}

static int insert_all(dm_db *db, const fo_failover *f, size_t n, char *err, size_t errlen)
{
    db_param *p = malloc(sizeof *p * FO_BATCH * FO_PHASE_COUNT * PH_NCOLS);
    if (!p)
        return dm_fail(err, errlen, -ENOMEM, "out of memory");
    int rc = 0;
    for (size_t i = 0; rc == 0 && i < n; i += FO_BATCH)
        rc = insert_batch(db, f + i, n - i < FO_BATCH ? n - i : FO_BATCH, p, err, errlen);
    free(p);
    return rc;
}

int db_failover_insert_many(dm_db *db, const fo_failover *f, size_t n, char *err, size_t errlen)
{
    if (!db || (!f && n))
        return dm_fail(err, errlen, DM_E_INVALID, "no database or records");
    for (size_t i = 0; i < n; i++) {
        int rc = db_fo_check(&f[i], err, errlen);
        if (rc)
            return rc;
    }
    if (n == 0)
        return 0;
    pthread_mutex_lock(&db->lock);
    int rc = db_begin(db, DB_TX_WRITE, err, errlen);
    if (rc == 0)
        rc = db_end(db, insert_all(db, f, n, err, errlen), err, errlen);
    pthread_mutex_unlock(&db->lock);
    if (rc == DM_E_CONFLICT && n == 1)
        return dm_fail(err, errlen, rc, "failover '%s' exists, or GPU %lld has an active one",
                       f->id, (long long)f->gpu_instance_id);
    if (rc == DM_E_CONFLICT)
        return dm_fail(err, errlen, rc, "a failover id exists, or a GPU would have two active");
    return rc;
}

int db_failover_insert(dm_db *db, const fo_failover *f, char *err, size_t errlen)
{
    return db_failover_insert_many(db, f, 1, err, errlen);
}

static int save_tx(dm_db *db, const fo_failover *f, char *err, size_t errlen)
{
    db_param p[FO_PHASE_COUNT * PH_NCOLS];
    int64_t changed = 0;
    fo_params(f, p); /* $1 = id: the WHERE; the rest in FO_COLS order */
    int rc = db_x(db,
                  "UPDATE failovers SET gpu_instance_id = $2, kind = $3, user_id = $4,"
                  " state = $5, success = $6, reason = $7, started_at_ms = $8,"
                  " finished_at_ms = $9, total_time_ms = $10, detection_ms = $11,"
                  " standby_activation_ms = $12, gpu_search_ms = $13, provisioning_ms = $14,"
                  " ssh_ready_ms = $15, restore_ms = $16, inference_ms = $17"
                  " WHERE failover_id = $1",
                  p, FO_NCOLS, NULL, NULL, &changed, err, errlen);
    if (rc)
        return rc;
    if (changed == 0)
        return dm_fail(err, errlen, DM_E_NOT_FOUND, "no failover '%s'", f->id);
    if ((rc = write_real(db, f, err, errlen)) != 0 || (rc = write_runs(db, f, err, errlen)) != 0)
        return rc;
    return write_phases(db, f, 1, 1, p, err, errlen);
}

int db_failover_save(dm_db *db, const fo_failover *f, char *err, size_t errlen)
{
    int rc = db ? db_fo_check(f, err, errlen) : DM_E_INVALID;
    if (rc)
        return db ? rc : dm_fail(err, errlen, rc, "no database");
    pthread_mutex_lock(&db->lock);
    rc = db_begin(db, DB_TX_WRITE, err, errlen);
    if (rc == 0)
        rc = db_end(db, save_tx(db, f, err, errlen), err, errlen); /* DB-D2 */
    pthread_mutex_unlock(&db->lock);
    if (rc == DM_E_CONFLICT)
        return dm_fail(err, errlen, rc, "GPU %lld already has an active failover",
                       (long long)f->gpu_instance_id);
    return rc;
}

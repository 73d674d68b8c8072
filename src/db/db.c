/* The database: opening, closing, associations (see db.h for DB-D1 to DB-D4).
 *
 * db_open() picks a back end (db_backend.h) from the URL, opens it, and
 * applies the migrations (migrate.c) before anyone else can use the handle.
 * The failover queries live in db_failover.c, the report in db_report.c.
 *
 * DB-O1: a failed db_open() leaves nothing open and *ret untouched.
 * DB-O2: a string field that is empty is stored as NULL and read back as ""
 *     (db_p_textn); required strings (standby_id, provider) must be non-empty.
 * DB-O3: every fixed-size string of a record is checked for its terminating NUL
 *     before it is bound, and a string read back that does not fit its field
 *     is an error (DM_E_DB), never silently cut. */
#include "db/db_internal.h"

#include "util/error.h"
#include "util/lockfile.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int is_pg_url(const char *url)
{
    return strncmp(url, "postgresql://", 13) == 0 || strncmp(url, "postgres://", 11) == 0;
}

int db_open(const char *url, dm_db **ret, char *err, size_t errlen)
{
    if (!url || !*url || !ret)
        return dm_fail(err, errlen, DM_E_INVALID, "no database URL");
    const char *target = url;
    if (strncmp(url, "sqlite://", 9) == 0)
        target = url + 9;
    if (!*target)
        return dm_fail(err, errlen, DM_E_INVALID, "no database path");
    int rc = 0;
    dm_db *db = calloc(1, sizeof *db);
    if (!db)
        return dm_fail(err, errlen, -ENOMEM, "out of memory");
    db->ops = is_pg_url(url) ? &db_pg_ops : &db_sqlite_ops;
    if ((rc = pthread_mutex_init(&db->lock, NULL)) != 0) {
        free(db);
        return dm_fail(err, errlen, -rc, "mutex: %s", strerror(rc));
    }
    if ((rc = db->ops->open(target, &db->state, err, errlen)) != 0)
        goto out;
    rc = db_migrate(db, err, errlen);
out:
    if (rc) {
        db_close(db); /* DB-O1 */
        return rc;
    }
    *ret = db;
    return 0;
}

void db_close(dm_db *db)
{
    if (!db)
        return;
    if (db->state)
        db->ops->close(db->state);
    pthread_mutex_destroy(&db->lock);
    free(db);
}

const char *db_backend_name(const dm_db *db)
{
    return db ? db->ops->name : "none";
}

/* ---- one controller (DB-D5, DB-D6) --------------------------------------------- */

struct db_ctl_lock {
    const db_backend_ops *ops;
    void *impl;
    dm_db *db;
    char id[LOCKFILE_ID_MAX]; /* the holder's identity, as first written */
};

int db_ctl_lock_take(dm_db *db, db_ctl_lock **ret, char *err, size_t errlen)
{
    if (!db || !ret)
        return dm_fail(err, errlen, DM_E_INVALID, "no database or result");
    char id[LOCKFILE_ID_MAX];
    lockfile_identity(id, sizeof id);
    db_ctl_lock *l = calloc(1, sizeof *l);
    if (!l)
        return dm_fail(err, errlen, -ENOMEM, "out of memory");
    l->ops = db->ops;
    l->db = db;
    snprintf(l->id, sizeof l->id, "%s", id);
    pthread_mutex_lock(&db->lock);
    int rc = db->ops->ctl_lock(db->state, id, &l->impl, err, errlen);
    pthread_mutex_unlock(&db->lock);
    if (rc) {
        free(l);
        return rc;
    }
    *ret = l;
    return 0;
}

int db_ctl_lock_check(db_ctl_lock *l, char *err, size_t errlen)
{
    if (!l)
        return dm_fail(err, errlen, DM_E_INVALID, "no lock");
    return l->ops->ctl_check(l->impl, err, errlen);
}

int db_ctl_lock_retake(db_ctl_lock *l, char *err, size_t errlen)
{
    if (!l)
        return dm_fail(err, errlen, DM_E_INVALID, "no lock");
    if (!l->ops->ctl_relock)
        return dm_fail(err, errlen, DM_E_CONFLICT, "a lost %s lock cannot be taken back",
                       l->ops->name);
    void *impl = NULL;
    /* not under the handle's lock: a connect may wait its timeout, and the
     * back end reads only what it was opened with (DB-B7) */
    int rc = l->ops->ctl_relock(l->db->state, l->id, l->impl, &impl, err, errlen);
    l->impl = impl; /* NULL on failure: the old session is released either way */
    return rc;
}

void db_unfence(dm_db *db)
{
    if (db)
        atomic_store_explicit(&db->fenced, 0, memory_order_release);
}

void db_ctl_lock_release(db_ctl_lock *l)
{
    if (!l)
        return;
    l->ops->ctl_unlock(l->impl);
    free(l);
}

void db_fence(dm_db *db)
{
    if (db)
        atomic_store_explicit(&db->fenced, 1, memory_order_release);
}

int db_fenced_fail(char *err, size_t errlen)
{
    return dm_fail(err, errlen, DM_E_DB,
                   "this controller lost its lock on the database: it no longer writes");
}

int db_text_copy(char *dst, size_t cap, const char *src)
{
    size_t n = src ? strlen(src) : 0;
    if (n >= cap)
        return DM_E_DB; /* DB-O3 */
    memcpy(dst, src ? src : "", n);
    dst[n] = '\0';
    return 0;
}

static int assoc_check(const fo_assoc *a, char *err, size_t errlen)
{
    if (!a || a->gpu_instance_id < 0)
        return dm_fail(err, errlen, DM_E_INVALID, "association: bad gpu_instance_id");
    if (!DB_STR_OK(a->standby_id) || !DB_STR_OK(a->provider) || !DB_STR_OK(a->gcp_zone))
        return dm_fail(err, errlen, DM_E_INVALID, "association: unterminated string");
    if (!a->standby_id[0] || !a->provider[0]) /* DB-O2 */
        return dm_fail(err, errlen, DM_E_INVALID, "association: standby_id and provider required");
    return 0;
}

int db_assoc_put(dm_db *db, const fo_assoc *a, char *err, size_t errlen)
{
    int rc = assoc_check(a, err, errlen);
    if (rc || !db)
        return rc ? rc : dm_fail(err, errlen, DM_E_INVALID, "no database");
    db_param p[] = {db_p_i64(a->gpu_instance_id), db_p_text(a->standby_id), db_p_text(a->provider),
                    db_p_textn(a->gcp_zone), db_p_i64(a->created_at_ms)};
    pthread_mutex_lock(&db->lock);
    rc = db_x(db,
              "INSERT INTO associations"
              " (gpu_instance_id, standby_id, provider, gcp_zone, created_at_ms)"
              " VALUES ($1, $2, $3, $4, $5)"
              " ON CONFLICT (gpu_instance_id) DO UPDATE SET standby_id = excluded.standby_id,"
              " provider = excluded.provider, gcp_zone = excluded.gcp_zone,"
              " created_at_ms = excluded.created_at_ms",
              p, 5, NULL, NULL, NULL, err, errlen);
    pthread_mutex_unlock(&db->lock);
    return rc;
}

typedef struct {
    fo_assoc a;
    int found;
} assoc_ctx;

static int assoc_row(const db_row *r, void *ctx)
{
    assoc_ctx *x = ctx;
    x->found = 1;
    x->a.created_at_ms = db_row_i64(r, 3, NULL);
    if (db_text_copy(x->a.standby_id, sizeof x->a.standby_id, db_row_text(r, 0)) ||
        db_text_copy(x->a.provider, sizeof x->a.provider, db_row_text(r, 1)) ||
        db_text_copy(x->a.gcp_zone, sizeof x->a.gcp_zone, db_row_text(r, 2)))
        return DM_E_DB;
    return 0;
}

int db_assoc_get(dm_db *db, int64_t gpu_instance_id, fo_assoc *ret, char *err, size_t errlen)
{
    if (!db || !ret)
        return dm_fail(err, errlen, DM_E_INVALID, "no database or result");
    assoc_ctx x;
    memset(&x, 0, sizeof x);
    x.a.gpu_instance_id = gpu_instance_id;
    db_param p[] = {db_p_i64(gpu_instance_id)};
    pthread_mutex_lock(&db->lock);
    int rc = db_x(db,
                  "SELECT standby_id, provider, gcp_zone, created_at_ms FROM associations"
                  " WHERE gpu_instance_id = $1",
                  p, 1, assoc_row, &x, NULL, err, errlen);
    pthread_mutex_unlock(&db->lock);
    if (rc == DM_E_DB && x.found)
        return dm_fail(err, errlen, rc, "association of GPU %lld: stored string too long",
                       (long long)gpu_instance_id);
    if (rc)
        return rc;
    if (!x.found)
        return dm_fail(err, errlen, DM_E_NOT_FOUND, "no association for GPU %lld",
                       (long long)gpu_instance_id);
    *ret = x.a;
    return 0;
}

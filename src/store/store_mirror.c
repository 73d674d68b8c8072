/* The mirror store: every object written to a primary store is written to
 * a second one (e.g. Backblaze B2 primary, Cloudflare R2 mirror), and reads
 * fall back to the mirror when the primary cannot give a good object.
 *
 * STORE-M1: put (lazy or not), sync and delete go to the primary, then to the
 *     mirror; an operation succeeds only when both did, and a mirror failure
 *     has its own message ("mirror <url>: ..."), so a snapshot is reported
 *     as created only once it exists twice.
 * STORE-M2: get and get_range read the primary; on any failure but DM_E_TOO_BIG
 *     and DM_E_INVALID (the caller's, not the store's) they read the mirror
 *     and log store.mirror.fallback. A damaged object counts as a failure:
 *     the s3:// back end verifies every object it hands out (store_s3.c
 *     S3-5, S3-6). When the mirror fails too, the primary's error is
 *     returned, with the mirror's appended.
 * STORE-M3: exists and list ask the primary, and the mirror only when the
 *     primary fails (unreachable, refused): the primary is the source of
 *     truth for what exists.
 * STORE-M4: close closes both back ends exactly once.
 * STORE-M5: every read the mirror served after the primary failed is
 *     counted (store_stats_mirror_reads), process-wide. */
#include "store/store_backend.h"

#include "util/error.h"
#include "util/log.h"

#include <errno.h>
#include <limits.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    const store_ops *p_ops, *m_ops;
    void *p_st, *m_st;
    char mirror_url[PATH_MAX + 64];
} mstore;

/* Formats the mirror's error as its own message (STORE-M1). */
static int mirror_fail(const mstore *m, int rc, const char *merr, char *err, size_t errlen)
{
    return dm_fail(err, errlen, rc, "store mirror %s: %s", m->mirror_url, merr);
}

static int m_put(void *st, const char *key, const void *data, size_t len, int flags, char *err,
                 size_t errlen)
{
    mstore *m = st;
    char merr[512] = "";
    int rc = m->p_ops->put(m->p_st, key, data, len, flags, err, errlen);
    if (rc)
        return rc;
    rc = m->m_ops->put(m->m_st, key, data, len, flags, merr, sizeof merr);
    return rc ? mirror_fail(m, rc, merr, err, errlen) : 0;
}

static int m_sync(void *st, char *err, size_t errlen)
{
    mstore *m = st;
    char merr[512] = "";
    int rc = m->p_ops->sync(m->p_st, err, errlen);
    if (rc)
        return rc;
    rc = m->m_ops->sync(m->m_st, merr, sizeof merr);
    return rc ? mirror_fail(m, rc, merr, err, errlen) : 0;
}

/* The primary's error into err; an empty message (a list callback's own
 * code) leaves err as the callback left it. */
static int pass(int rc, const char *perr, char *err, size_t errlen)
{
    return perr[0] ? dm_fail(err, errlen, rc, "%s", perr) : rc;
}

static int falls_back(int rc)
{
    return rc != 0 && rc != DM_E_TOO_BIG && rc != DM_E_INVALID;
}

/* After a failed primary read: merges the two messages (STORE-M2). The code is
 * the primary's, unless it merely lacked the object: then the mirror's
 * says more (too big, damaged, unreachable). */
static int both_failed(const mstore *m, int rc, int mrc, const char *perr, const char *merr,
                       char *err, size_t errlen)
{
    return dm_fail(err, errlen, rc == DM_E_NOT_FOUND ? mrc : rc, "%s; mirror %s: %s", perr,
                   m->mirror_url, merr);
}

static atomic_uint_fast64_t mirror_reads; /* STORE-M5 */

uint64_t store_stats_mirror_reads(void)
{
    return atomic_load(&mirror_reads);
}

/* The mirror's answer mrc to a read: counted when it served (STORE-M5). */
static int served(int mrc)
{
    if (mrc == 0)
        atomic_fetch_add(&mirror_reads, 1);
    return mrc;
}

static void log_fallback(const char *op, const char *key, int rc)
{
    char q[STORE_KEY_MAX + 8];
    log_warn("store.mirror.fallback", "op=%s key=%s error=%s", op, log_quote(q, sizeof q, key),
             dm_strerror(rc));
}

static int m_get(void *st, const char *key, size_t max_len, void **ret_data, size_t *ret_len,
                 char *err, size_t errlen)
{
    mstore *m = st;
    char perr[768] = "", merr[512] = "";
    int rc = m->p_ops->get(m->p_st, key, max_len, ret_data, ret_len, perr, sizeof perr);
    if (!falls_back(rc))
        return pass(rc, perr, err, errlen);
    log_fallback("get", key, rc);
    int mrc = served(m->m_ops->get(m->m_st, key, max_len, ret_data, ret_len, merr, sizeof merr));
    return mrc ? both_failed(m, rc, mrc, perr, merr, err, errlen) : 0;
}

static int m_get_range(void *st, const char *key, uint64_t off, size_t len, void *buf, char *err,
                       size_t errlen)
{
    mstore *m = st;
    char perr[768] = "", merr[512] = "";
    int rc = m->p_ops->get_range(m->p_st, key, off, len, buf, perr, sizeof perr);
    if (!falls_back(rc))
        return pass(rc, perr, err, errlen);
    log_fallback("get_range", key, rc);
    int mrc = served(m->m_ops->get_range(m->m_st, key, off, len, buf, merr, sizeof merr));
    return mrc ? both_failed(m, rc, mrc, perr, merr, err, errlen) : 0;
}

/* STORE-ST6: the caller found the primary's bytes damaged: a checked copy from
 * the primary if it can give one, else (or if that fails) the mirror's. */
static int m_get_range_verified(void *st, const char *key, uint64_t off, size_t len, void *buf,
                                char *err, size_t errlen)
{
    mstore *m = st;
    char perr[768] = "the primary has no checked read", merr[512] = "";
    int rc = DM_E_PROTOCOL;
    if (m->p_ops->get_range_verified) {
        rc = m->p_ops->get_range_verified(m->p_st, key, off, len, buf, perr, sizeof perr);
        if (!falls_back(rc))
            return pass(rc, perr, err, errlen);
    }
    log_fallback("get_range", key, rc);
    int mrc = m->m_ops->get_range_verified
                  ? m->m_ops->get_range_verified(m->m_st, key, off, len, buf, merr, sizeof merr)
                  : m->m_ops->get_range(m->m_st, key, off, len, buf, merr, sizeof merr);
    served(mrc);
    return mrc ? both_failed(m, rc, mrc, perr, merr, err, errlen) : 0;
}

static int m_exists(void *st, const char *key, int *ret_exists, char *err, size_t errlen)
{
    mstore *m = st;
    char perr[768] = "", merr[512] = "";
    int rc = m->p_ops->exists(m->p_st, key, ret_exists, perr, sizeof perr);
    if (!falls_back(rc))
        return pass(rc, perr, err, errlen);
    log_fallback("exists", key, rc);
    int mrc = m->m_ops->exists(m->m_st, key, ret_exists, merr, sizeof merr);
    return mrc ? both_failed(m, rc, mrc, perr, merr, err, errlen) : 0;
}

typedef struct {
    store_list_info_fn fn;
    void *ctx;
    int calls;
} list_count;

static int count_key(const char *key, uint64_t size, int64_t mtime_ms, void *ctx)
{
    list_count *c = ctx;
    c->calls++;
    return c->fn(key, size, mtime_ms, c->ctx);
}

static int m_list(void *st, const char *prefix, store_list_info_fn fn, void *ctx, char *err,
                  size_t errlen)
{
    mstore *m = st;
    char perr[768] = "", merr[512] = "";
    list_count c = {fn, ctx, 0};
    int rc = m->p_ops->list(m->p_st, prefix, count_key, &c, perr, sizeof perr);
    /* fn's own stop value (> 0), or a listing that failed half-way (fn was
     * called already, the mirror would repeat keys): no fallback */
    if (rc > 0)
        return rc;
    if (!falls_back(rc) || c.calls)
        return pass(rc, perr, err, errlen);
    log_fallback("list", prefix, rc);
    int mrc = m->m_ops->list(m->m_st, prefix, fn, ctx, merr, sizeof merr);
    if (mrc > 0)
        return mrc;
    return mrc ? both_failed(m, rc, mrc, perr, merr, err, errlen) : 0;
}

static int m_del(void *st, const char *key, char *err, size_t errlen)
{
    mstore *m = st;
    char merr[512] = "";
    int rc = m->p_ops->del(m->p_st, key, err, errlen);
    if (rc)
        return rc;
    rc = m->m_ops->del(m->m_st, key, merr, sizeof merr);
    return rc ? mirror_fail(m, rc, merr, err, errlen) : 0;
}

/* STORE-ST8: each copy has its own leftovers. */
static int m_clean_temp(void *st, int64_t before_ms, uint64_t *ret_files, uint64_t *ret_bytes,
                        char *err, size_t errlen)
{
    mstore *m = st;
    uint64_t f = 0, b = 0, mf = 0, mb = 0;
    char merr[512] = "";
    int rc = m->p_ops->clean_temp
                 ? m->p_ops->clean_temp(m->p_st, before_ms, &f, &b, err, errlen)
                 : 0;
    int mrc = m->m_ops->clean_temp
                  ? m->m_ops->clean_temp(m->m_st, before_ms, &mf, &mb, merr, sizeof merr)
                  : 0;
    *ret_files = f + mf;
    *ret_bytes = b + mb;
    if (rc)
        return rc;
    return mrc ? mirror_fail(m, mrc, merr, err, errlen) : 0;
}

/* STORE-ST5: reads go to the primary first, so the hint goes there. */
static void m_prefetch(void *st, const char *key)
{
    mstore *m = st;
    if (m->p_ops->prefetch)
        m->p_ops->prefetch(m->p_st, key);
}

/* STORE-ST7: a GET may read the primary alone (a failed one falls back to
 * the mirror by the caller asking again); a PUT there would skip the mirror
 * (STORE-M1), so none is handed out. */
static int m_presign(void *st, const char *method, const char *key, long expires_s, char *out,
                     size_t outlen, char *err, size_t errlen)
{
    mstore *m = st;
    if (strcmp(method, "GET") != 0)
        return dm_fail(err, errlen, DM_E_INVALID,
                       "store: a presigned %s would bypass the mirror %s", method, m->mirror_url);
    if (!m->p_ops->presign)
        return dm_fail(err, errlen, DM_E_INVALID, "store: the primary cannot presign");
    return m->p_ops->presign(m->p_st, method, key, expires_s, out, outlen, err, errlen);
}

static void m_close(void *st)
{
    mstore *m = st;
    if (!m)
        return;
    m->p_ops->close(m->p_st);
    m->m_ops->close(m->m_st);
    free(m);
}

/* The storage is the primary's: the mirror is its copy. */
static const char *m_storage(void *st)
{
    const mstore *m = st;
    return m->p_ops->storage ? m->p_ops->storage(m->p_st) : m->p_ops->scheme;
}

static const store_ops mirror_ops = {
    .scheme = "mirror",
    .storage = m_storage,
    .put = m_put,
    .sync = m_sync,
    .get = m_get,
    .get_range = m_get_range,
    .exists = m_exists,
    .list = m_list,
    .del = m_del,
    .close = m_close,
    .prefetch = m_prefetch,
    .get_range_verified = m_get_range_verified,
    .presign = m_presign,
    .clean_temp = m_clean_temp,
};

int store_mirror_wrap(const store_ops *p_ops, void *p_st, const store_ops *m_ops, void *m_st,
                      const char *mirror_url, const store_ops **ret_ops, void **ret_st, char *err,
                      size_t errlen)
{
    mstore *m = calloc(1, sizeof *m);
    if (!m)
        return dm_fail(err, errlen, -ENOMEM, "store: out of memory");
    *m = (mstore){p_ops, m_ops, p_st, m_st, ""};
    snprintf(m->mirror_url, sizeof m->mirror_url, "%s", mirror_url);
    *ret_ops = &mirror_ops;
    *ret_st = m;
    return 0;
}

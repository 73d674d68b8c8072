/* Store dispatch: picks the back end from the URL scheme, validates every
 * key before a back end sees it, and forwards through the vtable (store.h).
 *
 * STORE-S1: no back end function is called with a key (or list prefix) that
 *     store_key_valid() refuses; bad keys fail with DM_E_INVALID. A valid key
 *     is a relative path of components made of [A-Za-z0-9._-], each not
 *     starting with '.', separated by single '/', shorter than STORE_KEY_MAX.
 *     So "..", ".", "", "a//b", "/abs", "a/" and hidden names never reach a
 *     back end, and names starting with '.' stay free for back-end temp files.
 * STORE-S2: store_url() never holds a secret: back ends give a display form.
 * STORE-S3: store_close(NULL) is a no-op; the back end's close runs exactly once.
 * STORE-S8: store_storage_name() names the storage, never its URL: the back
 *     end's own name (s3://: backblaze_b2, cloudflare_r2 or s3, S3-12 of
 *     store_s3.c; a mirror: its primary's), else its scheme ("file").
 * STORE-S4: DUMONT_STORE_MIRROR=URL wraps the store opened and a second one
 *     (store_mirror.c): the only setting read here, because every caller
 *     opens its store by URL alone; the s3:// back end reads its own.
 *     store_open_mirrored() names the mirror itself and reads nothing (an
 *     agent told its stores by its controller over the control channel).
 * STORE-S9: a store keeps the URLs it was opened with (store_open_url,
 *     store_mirror_open_url), so the controller can name the same stores to
 *     an agent; neither holds a secret (s3:// keys come from the
 *     environment). */
#include "store/store.h"

#include "store/store_backend.h"
#include "util/error.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct dm_store {
    const store_ops *ops;
    void *st;
    char url[PATH_MAX + 8]; /* display form (STORE-S2) */
    char open_url[PATH_MAX + 8];   /* STORE-S9: the URL it was opened with */
    char mirror_url[PATH_MAX + 8]; /* STORE-S9: the mirror's, "" without one */
};

static int key_char_ok(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
           c == '_' || c == '-';
}

/* Checks s[0..n) as a '/'-separated list of non-empty components (STORE-S1). */
static int path_valid(const char *s, size_t n)
{
    size_t comp = 0; /* length of the current component */
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '/') {
            if (comp == 0)
                return 0;
            comp = 0;
            continue;
        }
        if (!key_char_ok(s[i]) || (comp == 0 && s[i] == '.'))
            return 0;
        comp++;
    }
    return comp > 0;
}

int store_key_valid(const char *key)
{
    if (!key)
        return 0;
    size_t n = strnlen(key, STORE_KEY_MAX);
    if (n == 0 || n >= STORE_KEY_MAX)
        return 0;
    return path_valid(key, n);
}

/* A list prefix: "" (everything), or a key, optionally ending in '/'. */
static int prefix_valid(const char *prefix)
{
    if (!prefix)
        return 0;
    size_t n = strnlen(prefix, STORE_KEY_MAX);
    if (n >= STORE_KEY_MAX)
        return 0;
    if (n == 0)
        return 1;
    if (prefix[n - 1] == '/')
        n--;
    return n > 0 && path_valid(prefix, n);
}

static int bad_key(const char *key, char *err, size_t errlen)
{
    return dm_fail(err, errlen, DM_E_INVALID, "invalid store key (%zu bytes)",
                   key ? strnlen(key, STORE_KEY_MAX + 1) : (size_t)0);
}

/* Opens one back end by URL scheme; display gets its URL for messages (STORE-S2). */
static int open_backend(const char *url, const store_ops **ret_ops, void **ret_st, char *display,
                        size_t displaylen, char *err, size_t errlen)
{
    const char *sep = strstr(url, "://");
    const char *path = url;
    if (sep && (size_t)(sep - url) == 2 && strncmp(url, "s3", 2) == 0)
        return store_s3_open(sep + 3, ret_ops, ret_st, display, displaylen, err, errlen);
    if (sep) {
        if ((size_t)(sep - url) != 4 || strncmp(url, "file", 4) != 0)
            return dm_fail(err, errlen, DM_E_INVALID,
                           "store: unsupported URL scheme (supported: file://, s3:// or a "
                           "directory)");
        path = sep + 3;
    }
    int rc = store_file_open(path, ret_ops, ret_st, err, errlen);
    if (rc == 0)
        snprintf(display, displaylen, "file://%s", path);
    return rc;
}

/* STORE-S4: wraps the primary with the mirror murl (NULL or "": none). */
static int open_mirror(dm_store *s, const char *murl, int from_env, char *err, size_t errlen)
{
    if (!murl || !*murl)
        return 0;
    const store_ops *m_ops, *w_ops;
    void *m_st, *w_st;
    char mdisp[sizeof s->url], merr[512] = "";
    int rc = open_backend(murl, &m_ops, &m_st, mdisp, sizeof mdisp, merr, sizeof merr);
    if (rc)
        return dm_fail(err, errlen, rc, "store mirror %s%s: %s", from_env ? "(DUMONT_STORE_MIRROR) " : "",
                       murl, merr);
    rc = store_mirror_wrap(s->ops, s->st, m_ops, m_st, mdisp, &w_ops, &w_st, err, errlen);
    if (rc) {
        m_ops->close(m_st);
        return rc;
    }
    s->ops = w_ops;
    s->st = w_st;
    size_t n = strlen(s->url);
    snprintf(s->url + n, sizeof s->url - n, " (mirror %s)", mdisp);
    snprintf(s->mirror_url, sizeof s->mirror_url, "%s", murl);
    return 0;
}

static int open_with(const char *url, const char *mirror_url, int from_env, dm_store **ret,
                     char *err, size_t errlen);

int store_open(const char *url, dm_store **ret, char *err, size_t errlen)
{
    return open_with(url, getenv("DUMONT_STORE_MIRROR"), 1, ret, err, errlen);
}

int store_open_mirrored(const char *url, const char *mirror_url, dm_store **ret, char *err,
                        size_t errlen)
{
    return open_with(url, mirror_url, 0, ret, err, errlen);
}

static int open_with(const char *url, const char *mirror_url, int from_env, dm_store **ret,
                     char *err, size_t errlen)
{
    if (!url || !*url || !ret)
        return dm_fail(err, errlen, DM_E_INVALID, "store: empty URL");
    dm_store *s = calloc(1, sizeof *s);
    if (!s)
        return dm_fail(err, errlen, -ENOMEM, "store: out of memory");
    int rc = open_backend(url, &s->ops, &s->st, s->url, sizeof s->url, err, errlen);
    if (rc) {
        free(s);
        return rc;
    }
    snprintf(s->open_url, sizeof s->open_url, "%s", url);
    if ((rc = open_mirror(s, mirror_url, from_env, err, errlen)) != 0) {
        s->ops->close(s->st);
        free(s);
        return rc;
    }
    *ret = s;
    return 0;
}

void store_close(dm_store *s)
{
    if (!s)
        return;
    s->ops->close(s->st);
    free(s);
}

const char *store_url(const dm_store *s)
{
    return s ? s->url : "";
}

const char *store_storage_name(const dm_store *s) /* STORE-S8 */
{
    if (!s)
        return "";
    return s->ops->storage ? s->ops->storage(s->st) : s->ops->scheme;
}

const char *store_open_url(const dm_store *s)
{
    return s ? s->open_url : "";
}

const char *store_mirror_open_url(const dm_store *s)
{
    return s ? s->mirror_url : "";
}

int store_put(dm_store *s, const char *key, const void *data, size_t len, char *err, size_t errlen)
{
    if (!store_key_valid(key) || (!data && len))
        return bad_key(key, err, errlen);
    return s->ops->put(s->st, key, data, len, 0, err, errlen);
}

int store_put_lazy(dm_store *s, const char *key, const void *data, size_t len, char *err,
                   size_t errlen)
{
    if (!store_key_valid(key) || (!data && len))
        return bad_key(key, err, errlen);
    return s->ops->put(s->st, key, data, len, STORE_PUT_LAZY, err, errlen);
}

int store_sync(dm_store *s, char *err, size_t errlen)
{
    return s->ops->sync(s->st, err, errlen);
}

static _Thread_local uint64_t fetch_ns; /* store_thread_fetch_ns() */

static uint64_t mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

uint64_t store_thread_fetch_ns(void)
{
    return fetch_ns;
}

int store_get(dm_store *s, const char *key, size_t max_len, void **ret_data, size_t *ret_len,
              char *err, size_t errlen)
{
    if (!store_key_valid(key) || !ret_data || !ret_len)
        return bad_key(key, err, errlen);
    uint64_t t0 = mono_ns();
    int rc = s->ops->get(s->st, key, max_len, ret_data, ret_len, err, errlen);
    fetch_ns += mono_ns() - t0;
    return rc;
}

typedef int (*range_op)(void *st, const char *key, uint64_t off, size_t len, void *buf,
                        char *err, size_t errlen);

/* get_range and get_range_verified: key checked, time counted (fetch_ns). */
static int timed_range(dm_store *s, range_op op, const char *key, uint64_t off, size_t len,
                       void *buf, char *err, size_t errlen)
{
    if (!store_key_valid(key) || (!buf && len))
        return bad_key(key, err, errlen);
    uint64_t t0 = mono_ns();
    int rc = op(s->st, key, off, len, buf, err, errlen);
    fetch_ns += mono_ns() - t0;
    return rc;
}

int store_get_range(dm_store *s, const char *key, uint64_t off, size_t len, void *buf, char *err,
                    size_t errlen)
{
    return timed_range(s, s->ops->get_range, key, off, len, buf, err, errlen);
}

int store_get_range_verified(dm_store *s, const char *key, uint64_t off, size_t len, void *buf,
                             char *err, size_t errlen)
{
    range_op op = s->ops->get_range_verified ? s->ops->get_range_verified : s->ops->get_range;
    return timed_range(s, op, key, off, len, buf, err, errlen);
}

int store_exists(dm_store *s, const char *key, int *ret_exists, char *err, size_t errlen)
{
    if (!store_key_valid(key) || !ret_exists)
        return bad_key(key, err, errlen);
    return s->ops->exists(s->st, key, ret_exists, err, errlen);
}

int store_list_info(dm_store *s, const char *prefix, store_list_info_fn fn, void *ctx, char *err,
                    size_t errlen)
{
    if (!prefix_valid(prefix) || !fn)
        return bad_key(prefix, err, errlen);
    return s->ops->list(s->st, prefix, fn, ctx, err, errlen);
}

typedef struct {
    store_list_fn fn;
    void *ctx;
} list_plain;

static int list_plain_fn(const char *key, uint64_t size, int64_t mtime_ms, void *ctx)
{
    const list_plain *p = ctx;
    (void)mtime_ms;
    return p->fn(key, size, p->ctx);
}

int store_list(dm_store *s, const char *prefix, store_list_fn fn, void *ctx, char *err,
               size_t errlen)
{
    list_plain p = {fn, ctx};
    if (!fn)
        return bad_key(prefix, err, errlen);
    return store_list_info(s, prefix, list_plain_fn, &p, err, errlen);
}

int store_clean_temp(dm_store *s, int64_t before_ms, uint64_t *ret_files, uint64_t *ret_bytes,
                     char *err, size_t errlen)
{
    uint64_t f = 0, b = 0;
    int rc = s->ops->clean_temp ? s->ops->clean_temp(s->st, before_ms, &f, &b, err, errlen) : 0;
    if (ret_files)
        *ret_files = f;
    if (ret_bytes)
        *ret_bytes = b;
    return rc;
}

int store_delete(dm_store *s, const char *key, char *err, size_t errlen)
{
    if (!store_key_valid(key))
        return bad_key(key, err, errlen);
    return s->ops->del(s->st, key, err, errlen);
}

void store_prefetch(dm_store *s, const char *key)
{
    if (s->ops->prefetch && store_key_valid(key))
        s->ops->prefetch(s->st, key);
}

int store_presign(dm_store *s, const char *method, const char *key, long expires_s, char *out,
                  size_t outlen, char *err, size_t errlen)
{
    if (!store_key_valid(key))
        return bad_key(key, err, errlen);
    if (!method || (strcmp(method, "GET") != 0 && strcmp(method, "PUT") != 0))
        return dm_fail(err, errlen, DM_E_INVALID, "store: presign GET or PUT only");
    if (!s->ops->presign)
        return dm_fail(err, errlen, DM_E_INVALID, "store: %s cannot presign (s3:// only)",
                       s->ops->scheme);
    return s->ops->presign(s->st, method, key, expires_s, out, outlen, err, errlen);
}

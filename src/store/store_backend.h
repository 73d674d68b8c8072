/* The store back-end interface: what file://, s3:// and the mirror each
 * implement. Only src/store/ includes it; callers use store.h.
 *
 * Like SQLite's VFS, a back end is a constant table of function pointers
 * (store_ops) plus an opaque state pointer made by its open function.
 * store.c validates every key and prefix before a back end sees one (STORE-S1 of
 * store.c) and forwards through the table; it never tests which back end it
 * holds. Each back end keeps the promises of store.h (STORE-ST1 to STORE-ST6); every
 * function returns 0 or a negative DM_E_* / -errno, with detail in err. */
#ifndef DUMONT_STORE_STORE_BACKEND_H
#define DUMONT_STORE_STORE_BACKEND_H

#include "store/store.h"

#include <stddef.h>
#include <stdint.h>

#define STORE_PUT_LAZY 1 /* put flag: STORE-ST4 */

typedef struct store_ops {
    const char *scheme; /* "file", "s3" */
    /* flags: STORE_PUT_LAZY (STORE-ST4) or 0 */
    int (*put)(void *st, const char *key, const void *data, size_t len, int flags, char *err,
               size_t errlen);
    int (*sync)(void *st, char *err, size_t errlen); /* STORE-ST4 barrier */
    int (*get)(void *st, const char *key, size_t max_len, void **ret_data, size_t *ret_len,
               char *err, size_t errlen);
    /* Reads len bytes at off into buf; short objects give DM_E_PROTOCOL. */
    int (*get_range)(void *st, const char *key, uint64_t off, size_t len, void *buf, char *err,
                     size_t errlen);
    int (*exists)(void *st, const char *key, int *ret_exists, char *err, size_t errlen);
    int (*list)(void *st, const char *prefix, store_list_info_fn fn, void *ctx, char *err,
                size_t errlen);
    int (*del)(void *st, const char *key, char *err, size_t errlen); /* missing: 0 */
    void (*close)(void *st);
    void (*prefetch)(void *st, const char *key); /* STORE-ST5; NULL: no-op */
    /* STORE-ST6; NULL: get_range again */
    int (*get_range_verified)(void *st, const char *key, uint64_t off, size_t len, void *buf,
                              char *err, size_t errlen);
    /* store.h STORE-ST7; NULL: the back end cannot presign */
    int (*presign)(void *st, const char *method, const char *key, long expires_s, char *out,
                   size_t outlen, char *err, size_t errlen);
    /* STORE-S8 of store.c: the storage's name (store_storage_name); NULL: the scheme */
    const char *(*storage)(void *st);
    /* STORE-ST8; NULL: nothing to clean */
    int (*clean_temp)(void *st, int64_t before_ms, uint64_t *ret_files, uint64_t *ret_bytes,
                      char *err, size_t errlen);
} store_ops;

/* Request counters (store_stats.c STORE-SS1 to STORE-SS3), for store_stats_each(). */
typedef enum { STORE_KIND_FILE, STORE_KIND_S3, STORE_KIND_COUNT } store_kind;
typedef enum {
    STORE_OP_GET,
    STORE_OP_PUT,
    STORE_OP_HEAD,
    STORE_OP_LIST,
    STORE_OP_DELETE,
    STORE_OP_SYNC,
    STORE_OP_MULTIPART, /* s3://: start, part, complete, abort of an upload */
    STORE_OP_COUNT
} store_op;
/* One file:// operation that returned rc (0, DM_E_NOT_FOUND, -errno...);
 * returns rc, so that a back end can `return store_count_file(op, f(...))`. */
int store_count_file(store_op op, int rc);
/* One HTTP attempt of an s3:// request: its status, 0 if no answer came. */
void store_count_http(store_op op, long status);
/* One attempt after the first of a request (STORE-SS3). */
void store_count_retry(void);

/* The back ends' open functions. On success *ret_ops and *ret_st are the
 * vtable and its state (freed by ops->close). */

/* file:// (store_file.c): opens (creating if missing) the store rooted at
 * dir, an absolute or relative directory path. */
int store_file_open(const char *dir, const store_ops **ret_ops, void **ret_st, char *err,
                    size_t errlen);

/* s3:// (store_s3.c): opens "bucket[/prefix]" (the URL after "s3://") with
 * the settings of the environment (store_s3.c, "Settings"); display gets
 * the URL for messages, without secrets (STORE-S2 of store.c). Nothing is sent to
 * the server. */
int store_s3_open(const char *rest, const store_ops **ret_ops, void **ret_st, char *display,
                  size_t displaylen, char *err, size_t errlen);

/* The mirror (store_mirror.c, DUMONT_STORE_MIRROR): wraps two opened back
 * ends behind one vtable; ownership of both passes to the mirror (its close
 * closes them). mirror_url is the mirror's display URL, for messages. On
 * failure nothing is taken: the caller still owns both. */
int store_mirror_wrap(const store_ops *p_ops, void *p_st, const store_ops *m_ops, void *m_st,
                      const char *mirror_url, const store_ops **ret_ops, void **ret_st, char *err,
                      size_t errlen);

#endif

/* Object stores: where snapshots live. One interface, several back ends
 * (file://, s3://; DUMONT_STORE_MIRROR wraps one with a second; docs/store.md),
 * as a small vtable like SQLite's VFS. This is the callers' header; the
 * back ends implement store_backend.h.
 *
 * Keys are relative paths of [A-Za-z0-9._/-] (no "..", no leading '/'), at
 * most STORE_KEY_MAX bytes, e.g. "packs/3f/3f9a...", "snapshots/<id>".
 *
 * STORE-ST1: put is atomic and durable: a reader sees the whole object or none
 *      (file://: temp file, fsync, rename, fsync of the directory).
 * STORE-ST2: objects are immutable: put of a key that exists leaves it as it is
 *      and succeeds (content-addressed keys make that safe); only
 *      store_delete removes an object.
 * STORE-ST4: store_put_lazy() is put without the wait for durability: the object
 *      is still whole-or-nothing to readers, but a machine crash may lose it
 *      until store_sync() returns. Writers of many objects (packs) put them
 *      lazily and sync once before writing anything that refers to them, so
 *      the disk writes overlap with the work instead of stalling each put.
 * STORE-ST5: store_prefetch() is a hint that key will be read soon (get_range):
 *      a back end with a slow first byte (s3://) may start fetching it in
 *      the background. It never fails, never blocks on the network, and
 *      changes nothing a later read returns (errors surface there).
 * STORE-ST6: store_get_range_verified() is for a caller that found the bytes of
 *      a get_range damaged (the snapshot layer checks every chunk's hash):
 *      it reads them again from a copy checked whole (s3://: the object
 *      against its x-amz-meta-sha256, bypassing the cache) or, with a
 *      mirror, from the mirror when the primary cannot give a checked copy.
 *      So a plain get_range may skip whole-object checks of its own.
 * STORE-ST7: store_presign() hands out a URL that lets any HTTP client do one
 *      GET or PUT of one object for a bounded time, without the store's keys
 *      (s3://: SigV4 query signing, sigv4.h STORE-V4; with a mirror, GET of
 *      the primary only; file:// cannot).
 * STORE-ST3: get never returns more than max_len bytes: a larger object fails with
 *      DM_E_TOO_BIG (callers cap what they accept from a store).
 * All functions return 0 or a negative DM_E_* / -errno; err gets detail. */
#ifndef DUMONT_STORE_STORE_H
#define DUMONT_STORE_STORE_H

#include <stddef.h>
#include <stdint.h>

#define STORE_KEY_MAX 256

typedef struct dm_store dm_store;

/* Called once per key under a prefix (order unspecified); non-zero stops the
 * listing and is returned by store_list. */
typedef int (*store_list_fn)(const char *key, uint64_t size, void *ctx);
/* The same with the time the object was written (wall-clock ms; -1 where the
 * back end cannot tell). */
typedef int (*store_list_info_fn)(const char *key, uint64_t size, int64_t mtime_ms, void *ctx);

/* Opens "file:///abs/dir" (created if missing), a plain directory path, or
 * "s3://bucket/prefix" (settings from the environment, store_s3.c); with
 * DUMONT_STORE_MIRROR set, wrapped with that mirror (store_mirror.c).
 * Other schemes: DM_E_INVALID with a message naming what is supported. */
int store_open(const char *url, dm_store **ret, char *err, size_t errlen);
/* store_open with the mirror named here (NULL or "": none), never from the
 * environment (store.c STORE-S4). */
int store_open_mirrored(const char *url, const char *mirror_url, dm_store **ret, char *err,
                        size_t errlen);
void store_close(dm_store *s);
const char *store_url(const dm_store *s); /* for messages; never holds secrets */
/* The storage's name for records (STORE-S8 of store.c): "backblaze_b2",
 * "cloudflare_r2", "s3" or "file"; "" for NULL. */
const char *store_storage_name(const dm_store *s);
/* STORE-S9: the URL s was opened with, and its mirror's ("" without one). */
const char *store_open_url(const dm_store *s);
const char *store_mirror_open_url(const dm_store *s);

int store_put(dm_store *s, const char *key, const void *data, size_t len, char *err, size_t errlen);
int store_put_lazy(dm_store *s, const char *key, const void *data, size_t len, char *err,
                   size_t errlen); /* STORE-ST4 */
/* Makes every object put so far durable (STORE-ST4). */
int store_sync(dm_store *s, char *err, size_t errlen);
int store_get(dm_store *s, const char *key, size_t max_len, void **ret_data, size_t *ret_len,
              char *err, size_t errlen); /* *ret_data: malloc'd, free() it */
int store_get_range(dm_store *s, const char *key, uint64_t off, size_t len, void *buf, char *err,
                    size_t errlen);
int store_exists(dm_store *s, const char *key, int *ret_exists, char *err, size_t errlen);
int store_list(dm_store *s, const char *prefix, store_list_fn fn, void *ctx, char *err,
               size_t errlen);
int store_list_info(dm_store *s, const char *prefix, store_list_info_fn fn, void *ctx, char *err,
                    size_t errlen);
int store_delete(dm_store *s, const char *key, char *err, size_t errlen);
/* STORE-ST8: removes the back end's own leftovers of interrupted puts (file://:
 * ".tmp.*" files) last written before before_ms (wall clock); a put in
 * progress keeps writing its temp file, so a cut-off well in the past never
 * touches one. *ret_files / *ret_bytes (may be NULL) get what was removed.
 * A back end without such leftovers removes nothing. */
int store_clean_temp(dm_store *s, int64_t before_ms, uint64_t *ret_files, uint64_t *ret_bytes,
                     char *err, size_t errlen);
void store_prefetch(dm_store *s, const char *key); /* STORE-ST5 */
int store_get_range_verified(dm_store *s, const char *key, uint64_t off, size_t len, void *buf,
                             char *err, size_t errlen); /* STORE-ST6 */
/* The requests this process's store back ends made since it started
 * (store_stats.c STORE-SS1 to STORE-SS3): fn is called once per (store kind, operation,
 * code) counted at least once, e.g. ("s3", "get", "200", 12). For /metrics;
 * cheap: a walk of a fixed table of atomic counters. */
typedef void (*store_stat_fn)(const char *store, const char *op, const char *code, uint64_t n,
                              void *ctx);
void store_stats_each(store_stat_fn fn, void *ctx);
/* Attempts after the first of retried s3:// requests, since the start. */
uint64_t store_stats_retries(void);
/* Reads the mirror served (the primary could not) since the start, in this
 * process (store_mirror.c STORE-M5): a restore compares it before and after
 * to say which copy served it. */
uint64_t store_stats_mirror_reads(void);
/* 1 if key is a valid store key (see above). */
int store_key_valid(const char *key);
/* Nanoseconds the calling thread has spent in store_get/store_get_range
 * (cumulative, per thread, any store): callers time the share of their own
 * work spent fetching by taking the difference around it (snap_restore's
 * download time). */
uint64_t store_thread_fetch_ns(void);

/* STORE-ST7: method "GET" or "PUT", expires_s 1 .. 604800; out gets the URL
 * (keep it as secret as a key for its lifetime). */
int store_presign(dm_store *s, const char *method, const char *key, long expires_s, char *out,
                  size_t outlen, char *err, size_t errlen);

/* ---- settings handed to another process (store_env.c STORE-S5 to STORE-S7) ---- */

#define STORE_ENV_MAX 16384 /* the longest settings file read or written */

/* Every variable a store reads from the environment, NULL-terminated. */
extern const char *const STORE_ENV_NAMES[];
/* 1 when the n bytes at name are a credential's variable (STORE-S7). */
int store_env_secret(const char *name, size_t n);
/* The settings set in this process, as NAME=VALUE lines, for a process that
 * opens store_url (the credentials only when it or the mirror is s3://,
 * STORE-S6). *ret_len is 0 when there is nothing to pass. DM_E_TOO_BIG when
 * cap is short (buf is wiped then). */
int store_env_export(const char *store_url, char *buf, size_t cap, size_t *ret_len, char *err,
                     size_t errlen);
/* Sets the NAME=VALUE lines of text in this process's environment; any line
 * that is not a store setting (STORE-S5) fails the whole and sets nothing. */
int store_env_import(char *text, char *err, size_t errlen);

#endif

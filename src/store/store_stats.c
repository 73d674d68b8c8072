/* Request counters of the store back ends (store.h store_stats_each,
 * store_backend.h store_count_*): what this process asked of its stores
 * since it started, for /metrics (docs/metrics.md). The store layer knows
 * nothing of the metrics registry: the API pulls these counts at a scrape.
 *
 * STORE-SS1: counting is one relaxed atomic add on a fixed table: no lock, no
 *      allocation, nothing that can slow or fail a store operation, from
 *      any thread (the s3:// back end uploads parts on several).
 * STORE-SS2: few label values: the kind (file, s3), the operation (get, put,
 *      head, list, delete, sync, multipart) and the code: an HTTP status
 *      100-599 (s3://), "error" when no HTTP answer came (s3://) or the
 *      operation failed another way (file://), "ok", "not_found" and
 *      "no_space" (file://).
 * STORE-SS3: an s3:// request is one HTTP attempt: a request retried counts each
 *      attempt under its own code, and each attempt after the first once
 *      more in the retries counter. */
#include "store/store_backend.h"

#include "util/error.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>

enum {
    CODE_HTTP_MIN = 100,
    CODE_HTTP_N = 500, /* 100..599 */
    CODE_ERROR = CODE_HTTP_N,
    CODE_OK,
    CODE_NOT_FOUND,
    CODE_NO_SPACE,
    CODE_SLOTS
};

static atomic_uint_fast64_t counts[STORE_KIND_COUNT][STORE_OP_COUNT][CODE_SLOTS];
static atomic_uint_fast64_t retries;

static const char *const kind_names[STORE_KIND_COUNT] = {"file", "s3"};
static const char *const op_names[STORE_OP_COUNT] = {"get",    "put",  "head",     "list",
                                                     "delete", "sync", "multipart"};

static void bump(store_kind kind, store_op op, int slot)
{
    if ((unsigned)kind < STORE_KIND_COUNT && (unsigned)op < STORE_OP_COUNT)
        atomic_fetch_add_explicit(&counts[kind][op][slot], 1, memory_order_relaxed); /* STORE-SS1 */
}

int store_count_file(store_op op, int rc)
{
    int slot = rc == 0                          ? CODE_OK
               : rc == DM_E_NOT_FOUND           ? CODE_NOT_FOUND
               : rc == -ENOSPC || rc == -EDQUOT ? CODE_NO_SPACE
                                                : CODE_ERROR;
    bump(STORE_KIND_FILE, op, slot);
    return rc;
}

void store_count_http(store_op op, long status)
{
    int http = status >= CODE_HTTP_MIN && status < CODE_HTTP_MIN + CODE_HTTP_N;
    bump(STORE_KIND_S3, op, http ? (int)(status - CODE_HTTP_MIN) : CODE_ERROR);
}

void store_count_retry(void)
{
    atomic_fetch_add_explicit(&retries, 1, memory_order_relaxed);
}

static const char *code_name(int slot, char *buf, size_t len)
{
    switch (slot) {
    case CODE_ERROR:
        return "error";
    case CODE_OK:
        return "ok";
    case CODE_NOT_FOUND:
        return "not_found";
    case CODE_NO_SPACE:
        return "no_space";
    default:
        snprintf(buf, len, "%d", slot + CODE_HTTP_MIN);
        return buf;
    }
}

void store_stats_each(store_stat_fn fn, void *ctx)
{
    char buf[8];
    for (int k = 0; k < STORE_KIND_COUNT; k++)
        for (int o = 0; o < STORE_OP_COUNT; o++)
            for (int c = 0; c < CODE_SLOTS; c++) {
                uint64_t n = atomic_load_explicit(&counts[k][o][c], memory_order_relaxed);
                if (n)
                    fn(kind_names[k], op_names[o], code_name(c, buf, sizeof buf), n, ctx);
            }
}

uint64_t store_stats_retries(void)
{
    return atomic_load_explicit(&retries, memory_order_relaxed);
}

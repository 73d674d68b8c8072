/* Metrics: an in-memory registry of counters, gauges and histograms, and
 * its rendering in Prometheus's text exposition format (version 0.0.4).
 *
 * A family (name, type, help, label names) is declared once; its series
 * (one per combination of label values) are made on first use. Producers
 * add to counters and observe histograms as things happen; values that
 * another subsystem already counts (the heartbeat listener's counters, the
 * instances by state) are pulled by collectors just before a scrape, so a
 * scrape never walks a database table (docs/metrics.md).
 *
 * MX-MX1: the registry is bounded: at most MX_FAMILIES_MAX families, each with
 *      at most MX_SERIES_MAX series; an observation for a new series past the
 *      cap is counted in dumont_metrics_series_dropped_total, never stored.
 * MX-MX2: label values are escaped on the way in (backslash, double quote and
 *      newline, as the exposition format requires) and capped at
 *      MX_LABEL_VALUE_MAX bytes; names are the caller's constants.
 * MX-MX3: the rendering is one consistent copy per family: each family's
 *      series are read under the registry's lock, after every collector ran.
 * MX-MX4: counters only go up: mx_add refuses a negative amount; mx_set on a
 *      counter is for collectors that mirror another monotonic counter.
 * All functions are thread-safe. */
#ifndef DUMONT_METRICS_METRICS_H
#define DUMONT_METRICS_METRICS_H

#include <stddef.h>

#define MX_FAMILIES_MAX    64
#define MX_SERIES_MAX      4096 /* a power of two: series arrays double up to it */
#define MX_LABELS_MAX      3
#define MX_LABEL_VALUE_MAX 64
#define MX_BUCKETS_MAX     20
#define MX_RENDER_MAX      (4 * 1024 * 1024) /* the exposition text never grows past it */

typedef enum { MX_COUNTER, MX_GAUGE, MX_HISTOGRAM } mx_type;

typedef struct mx_registry mx_registry;

/* Runs before each render; sets gauges/counters from elsewhere. */
typedef void (*mx_collect_fn)(mx_registry *r, void *ctx);

int mx_new(mx_registry **ret);
void mx_free(mx_registry *r); /* NULL is fine */

/* Declares a family. labels: NULL-terminated label names (at most
 * MX_LABELS_MAX), or NULL. buckets: ascending upper bounds (+Inf is
 * implied), n_buckets <= MX_BUCKETS_MAX, for MX_HISTOGRAM only.
 * Returns 0, -EEXIST, DM_E_TOO_BIG or DM_E_INVALID. */
int mx_declare(mx_registry *r, const char *name, mx_type type, const char *help,
               const char *const *labels, const double *buckets, int n_buckets);

/* Label values, in the family's label order; NULL for a family without. */
int mx_add(mx_registry *r, const char *name, const char *const *values, double amount);
int mx_set(mx_registry *r, const char *name, const char *const *values, double value);
int mx_observe(mx_registry *r, const char *name, const char *const *values, double value);
/* Sets every series of a gauge family to 0 (a collector that recounts). */
void mx_reset(mx_registry *r, const char *name);

/* Adds a collector (at most 16). */
int mx_add_collector(mx_registry *r, mx_collect_fn fn, void *ctx);

/* Runs the collectors, then renders every family in declaration order.
 * *ret is malloc'd and NUL-terminated; the caller frees. */
int mx_render(mx_registry *r, char **ret, size_t *ret_len);

/* Durations from sub-second (the local provider) to half an hour (a cloud's
 * slow provisioning), in seconds. */
extern const double mx_duration_buckets[];
extern const int mx_duration_buckets_n;

#endif

/* The metrics registry (see metrics.h for MX-MX1 to MX-MX4).
 *
 * Families and series are fixed-size arrays under one mutex: observations
 * are rare (a failover, a snapshot report, a store request), so one lock is
 * cheaper than anything cleverer, and a scrape copies nothing it does not
 * print. */
#include "metrics/metrics.h"

#include "util/error.h"

#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NAME_MAX_LEN   96
#define HELP_MAX_LEN   256
#define COLLECTORS_MAX 16

const double mx_duration_buckets[] = {0.05, 0.1, 0.25, 0.5, 1,   2.5,  5,   10,
                                      30,   60,  120,  300, 600, 1200, 1800};
const int mx_duration_buckets_n = sizeof mx_duration_buckets / sizeof mx_duration_buckets[0];

typedef struct {
    char values[MX_LABELS_MAX][MX_LABEL_VALUE_MAX * 2 + 1]; /* escaped (MX-MX2) */
    double value;                                           /* counter, gauge; histogram sum */
    unsigned long long count;                               /* histogram */
    unsigned long long buckets[MX_BUCKETS_MAX];             /* histogram, not cumulative */
} series;

typedef struct {
    char name[NAME_MAX_LEN];
    char help[HELP_MAX_LEN];
    mx_type type;
    char labels[MX_LABELS_MAX][32];
    int n_labels;
    double bounds[MX_BUCKETS_MAX];
    int n_bounds;
    series *s; /* grows by doubling up to MX_SERIES_MAX */
    int n, cap;
} family;

struct mx_registry {
    pthread_mutex_t mu;
    family fam[MX_FAMILIES_MAX];
    int n_fam;
    unsigned long long dropped; /* MX-MX1 */
    struct {
        mx_collect_fn fn;
        void *ctx;
    } coll[COLLECTORS_MAX];
    int n_coll;
};

int mx_new(mx_registry **ret)
{
    mx_registry *r = calloc(1, sizeof *r);
    if (!r)
        return -ENOMEM;
    pthread_mutex_init(&r->mu, NULL);
    *ret = r;
    return 0;
}

void mx_free(mx_registry *r)
{
    if (!r)
        return;
    for (int i = 0; i < r->n_fam; i++)
        free(r->fam[i].s);
    pthread_mutex_destroy(&r->mu);
    free(r);
}

static family *find(mx_registry *r, const char *name)
{
    for (int i = 0; i < r->n_fam; i++)
        if (strcmp(r->fam[i].name, name) == 0)
            return &r->fam[i];
    return NULL;
}

/* A metric or label name: [a-zA-Z_:][a-zA-Z0-9_:]*. */
static int name_ok(const char *s, size_t cap)
{
    size_t n = s ? strlen(s) : 0;
    if (n == 0 || n >= cap || (s[0] >= '0' && s[0] <= '9'))
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z') ||
              (s[i] >= '0' && s[i] <= '9') || s[i] == '_' || s[i] == ':'))
            return 0;
    return 1;
}

int mx_declare(mx_registry *r, const char *name, mx_type type, const char *help,
               const char *const *labels, const double *buckets, int n_buckets)
{
    if (!r || !name_ok(name, NAME_MAX_LEN) || !help || strlen(help) >= HELP_MAX_LEN ||
        (type == MX_HISTOGRAM) != (buckets != NULL) || n_buckets < 0 || n_buckets > MX_BUCKETS_MAX)
        return DM_E_INVALID;
    for (int i = 1; i < n_buckets; i++)
        if (!(buckets[i] > buckets[i - 1]))
            return DM_E_INVALID;
    int nl = 0;
    for (; labels && labels[nl]; nl++)
        if (nl == MX_LABELS_MAX || !name_ok(labels[nl], 32) || strcmp(labels[nl], "le") == 0)
            return DM_E_INVALID;
    int rc = 0;
    pthread_mutex_lock(&r->mu);
    if (find(r, name))
        rc = -EEXIST;
    else if (r->n_fam == MX_FAMILIES_MAX)
        rc = DM_E_TOO_BIG;
    else {
        family *f = &r->fam[r->n_fam];
        memset(f, 0, sizeof *f);
        snprintf(f->name, sizeof f->name, "%s", name);
        snprintf(f->help, sizeof f->help, "%s", help);
        f->type = type;
        f->n_labels = nl;
        for (int i = 0; i < nl; i++)
            snprintf(f->labels[i], sizeof f->labels[i], "%s", labels[i]);
        f->n_bounds = n_buckets;
        for (int i = 0; i < n_buckets; i++)
            f->bounds[i] = buckets[i];
        r->n_fam++;
    }
    pthread_mutex_unlock(&r->mu);
    return rc;
}

/* MX-MX2: escapes value into out (2 * MX_LABEL_VALUE_MAX + 1 bytes). */
static void escape(const char *v, char *out)
{
    size_t o = 0;
    for (size_t i = 0; v && v[i] && i < MX_LABEL_VALUE_MAX; i++) {
        char c = v[i];
        if (c == '\\' || c == '"' || c == '\n') {
            out[o++] = '\\';
            c = c == '\n' ? 'n' : c;
        }
        out[o++] = c;
    }
    out[o] = '\0';
}

/* The series of f for values, made if new (MX-MX1). Called locked. */
static series *series_of(mx_registry *r, family *f, const char *const *values)
{
    char esc[MX_LABELS_MAX][MX_LABEL_VALUE_MAX * 2 + 1];
    for (int i = 0; i < f->n_labels; i++)
        escape(values ? values[i] : "", esc[i]);
    for (int j = 0; j < f->n; j++) {
        int same = 1;
        for (int i = 0; same && i < f->n_labels; i++)
            same = strcmp(f->s[j].values[i], esc[i]) == 0;
        if (same)
            return &f->s[j];
    }
    if (f->n == f->cap) {
        int cap = f->cap ? f->cap * 2 : 4;
        series *grown = f->cap < MX_SERIES_MAX ? realloc(f->s, (size_t)cap * sizeof *grown) : NULL;
        if (!grown) {
            r->dropped++;
            return NULL;
        }
        f->s = grown;
        f->cap = cap;
    }
    series *s = &f->s[f->n++];
    memset(s, 0, sizeof *s);
    memcpy(s->values, esc, sizeof esc);
    return s;
}

static int update(mx_registry *r, const char *name, const char *const *values, double v, int op)
{
    if (!r || !name || isnan(v))
        return DM_E_INVALID;
    int rc = 0;
    pthread_mutex_lock(&r->mu);
    family *f = find(r, name);
    series *s = NULL;
    if (!f)
        rc = DM_E_NOT_FOUND;
    else if ((op == 'o') != (f->type == MX_HISTOGRAM) ||
             (op == '+' && v < 0 && f->type == MX_COUNTER))
        rc = DM_E_INVALID; /* MX-MX4 */
    else if (!(s = series_of(r, f, values)))
        rc = DM_E_TOO_BIG;
    else if (op == '+')
        s->value += v;
    else if (op == '=')
        s->value = v;
    else {
        int b = 0;
        while (b < f->n_bounds && v > f->bounds[b])
            b++;
        if (b < f->n_bounds)
            s->buckets[b]++;
        s->count++;
        s->value += v;
    }
    pthread_mutex_unlock(&r->mu);
    return rc;
}

int mx_add(mx_registry *r, const char *name, const char *const *values, double amount)
{
    return update(r, name, values, amount, '+');
}

int mx_set(mx_registry *r, const char *name, const char *const *values, double value)
{
    return update(r, name, values, value, '=');
}

int mx_observe(mx_registry *r, const char *name, const char *const *values, double value)
{
    return update(r, name, values, value, 'o');
}

void mx_reset(mx_registry *r, const char *name)
{
    pthread_mutex_lock(&r->mu);
    family *f = find(r, name);
    for (int j = 0; f && f->type == MX_GAUGE && j < f->n; j++)
        f->s[j].value = 0;
    pthread_mutex_unlock(&r->mu);
}

int mx_add_collector(mx_registry *r, mx_collect_fn fn, void *ctx)
{
    int rc = 0;
    pthread_mutex_lock(&r->mu);
    if (r->n_coll == COLLECTORS_MAX)
        rc = DM_E_TOO_BIG;
    else
        r->coll[r->n_coll++] = (typeof(r->coll[0])){fn, ctx};
    pthread_mutex_unlock(&r->mu);
    return rc;
}

/* ---- rendering ---- */

typedef struct {
    char *p;
    size_t len, cap;
    int failed;
} text;

static void put(text *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void put(text *t, const char *fmt, ...)
{
    for (int tries = 0; !t->failed && tries < 2; tries++) {
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(t->p + t->len, t->cap - t->len, fmt, ap);
        va_end(ap);
        if (n < 0) {
            t->failed = 1;
        } else if ((size_t)n < t->cap - t->len) {
            t->len += (size_t)n;
            return;
        } else {
            size_t want = t->cap * 2 > t->len + (size_t)n + 1 ? t->cap * 2 : t->len + (size_t)n + 1;
            char *q = want <= MX_RENDER_MAX ? realloc(t->p, want) : NULL;
            if (!q)
                t->failed = 1;
            else {
                t->p = q;
                t->cap = want;
            }
        }
    }
}

/* A sample value: integers exactly, others with enough digits to round-trip. */
static void put_value(text *t, double v)
{
    if (isinf(v))
        put(t, "%s", v > 0 ? "+Inf" : "-Inf");
    else if (v == (double)(long long)v && fabs(v) < 9e15)
        put(t, "%lld", (long long)v);
    else
        put(t, "%.17g", v);
}

/* {a="x",b="y"[,le="..."]} or nothing. */
static void put_labels(text *t, const family *f, const series *s, const char *le)
{
    if (f->n_labels == 0 && !le)
        return;
    put(t, "{");
    for (int i = 0; i < f->n_labels; i++)
        put(t, "%s%s=\"%s\"", i ? "," : "", f->labels[i], s->values[i]);
    if (le)
        put(t, "%sle=\"%s\"", f->n_labels ? "," : "", le);
    put(t, "}");
}

static void put_series(text *t, const family *f, const series *s)
{
    if (f->type != MX_HISTOGRAM) {
        put(t, "%s", f->name);
        put_labels(t, f, s, NULL);
        put(t, " ");
        put_value(t, s->value);
        put(t, "\n");
        return;
    }
    unsigned long long cum = 0;
    char le[40];
    for (int b = 0; b <= f->n_bounds; b++) {
        if (b < f->n_bounds) {
            cum += s->buckets[b];
            snprintf(le, sizeof le, "%.15g", f->bounds[b]);
        } else {
            cum = s->count;
            snprintf(le, sizeof le, "+Inf");
        }
        put(t, "%s_bucket", f->name);
        put_labels(t, f, s, le);
        put(t, " %llu\n", cum);
    }
    put(t, "%s_sum", f->name);
    put_labels(t, f, s, NULL);
    put(t, " ");
    put_value(t, s->value);
    put(t, "\n%s_count", f->name);
    put_labels(t, f, s, NULL);
    put(t, " %llu\n", s->count);
}

static void put_family(text *t, const family *f)
{
    static const char *const types[] = {"counter", "gauge", "histogram"};
    put(t, "# HELP %s %s\n# TYPE %s %s\n", f->name, f->help, f->name, types[f->type]);
    series zero = {0};
    if (f->n == 0 && f->n_labels == 0) /* an unlabelled family always has its one series */
        put_series(t, f, &zero);
    for (int j = 0; j < f->n; j++)
        put_series(t, f, &f->s[j]);
}

int mx_render(mx_registry *r, char **ret, size_t *ret_len)
{
    int n_coll;
    pthread_mutex_lock(&r->mu);
    n_coll = r->n_coll;
    pthread_mutex_unlock(&r->mu);
    for (int i = 0; i < n_coll; i++) /* collectors take the lock themselves */
        r->coll[i].fn(r, r->coll[i].ctx);
    text t = {.cap = 16384};
    if (!(t.p = malloc(t.cap)))
        return -ENOMEM;
    t.p[0] = '\0';
    pthread_mutex_lock(&r->mu);
    for (int i = 0; i < r->n_fam; i++) /* MX-MX3 */
        put_family(&t, &r->fam[i]);
    put(&t,
        "# HELP dumont_metrics_series_dropped_total Observations refused because their "
        "family has too many series.\n# TYPE dumont_metrics_series_dropped_total counter\n"
        "dumont_metrics_series_dropped_total %llu\n",
        r->dropped);
    pthread_mutex_unlock(&r->mu);
    if (t.failed) {
        free(t.p);
        return DM_E_TOO_BIG;
    }
    *ret = t.p;
    *ret_len = t.len;
    return 0;
}

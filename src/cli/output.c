/* Human-readable output of the CLI (see output.h for CLI-O1 to CLI-O3).
 *
 * Tables hold their cells in one flat array of fixed-size cells (row 0 is the
 * header row), so a table is one allocation that grows by doubling up to
 * OUT_ROWS_MAX rows. Cells are cleaned on the way in: control bytes from the
 * server (a detail string with an escape sequence) become '?', so nothing the
 * server sends can move the terminal's cursor. Widths count UTF-8 code
 * points, not bytes, and a cut never splits a code point. */
#include "cli/output.h"

#include "core/failover.h"
#include "util/error.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

struct out_table {
    int ncols, nrows, cap; /* nrows counts the header row */
    int has_header;
    unsigned right; /* bit i: column i is right-aligned */
    char (*cells)[OUT_CELL_MAX];
};

void out_duration(int64_t ms, char *buf, size_t len)
{
    if (ms < 0) {
        snprintf(buf, len, "-");
        return;
    }
    if (ms < 1000) {
        snprintf(buf, len, "%lld ms", (long long)ms);
        return;
    }
    int64_t tenths = (ms + 50) / 100;
    if (tenths < 600) {
        snprintf(buf, len, "%lld.%lld s", (long long)(tenths / 10), (long long)(tenths % 10));
        return;
    }
    int64_t secs = (ms + 500) / 1000;
    if (secs < 3600) {
        snprintf(buf, len, "%lldm %02llds", (long long)(secs / 60), (long long)(secs % 60));
        return;
    }
    int64_t mins = (ms + 30000) / 60000;
    snprintf(buf, len, "%lldh %02lldm", (long long)(mins / 60), (long long)(mins % 60));
}

void out_duration_d(double ms, char *buf, size_t len)
{
    if (isnan(ms) || ms < 0 || ms > 9e15)
        snprintf(buf, len, "-");
    else
        out_duration((int64_t)llround(ms), buf, len);
}

/* A count or id; FO_NULL (absent) gives "-" (CLI-O1). */
static void out_count(int64_t n, char *buf, size_t len)
{
    if (n < 0)
        snprintf(buf, len, "-");
    else
        snprintf(buf, len, "%lld", (long long)n);
}

/* Copies src into a cell: control bytes become '?', an over-long value is cut
 * on a code point boundary and ends in "..." (CLI-O3). */
static void cell_set(char *dst, const char *src)
{
    size_t n = strlen(src), cut = n;
    if (n >= OUT_CELL_MAX) {
        cut = OUT_CELL_MAX - 4;
        while (cut > 0 && ((unsigned char)src[cut] & 0xC0) == 0x80)
            cut--;
    }
    for (size_t i = 0; i < cut; i++) {
        unsigned char c = (unsigned char)src[i];
        dst[i] = (c < 0x20 || c == 0x7f) ? '?' : (char)c;
    }
    if (cut < n) {
        memcpy(dst + cut, "...", 3);
        cut += 3;
    }
    dst[cut] = '\0';
}

static size_t width(const char *s)
{
    size_t w = 0;
    for (; *s; s++)
        w += ((unsigned char)*s & 0xC0) != 0x80;
    return w;
}

out_table *out_table_new(int ncols, const char *const *headers)
{
    if (ncols < 1 || ncols > OUT_COLS_MAX)
        return NULL;
    out_table *t = calloc(1, sizeof *t);
    if (!t)
        return NULL;
    t->ncols = ncols;
    t->cap = 16;
    t->cells = calloc((size_t)t->cap * (size_t)ncols, OUT_CELL_MAX);
    if (!t->cells) {
        free(t);
        return NULL;
    }
    t->has_header = headers != NULL;
    if (headers && out_table_add(t, headers) != 0) {
        out_table_free(t);
        return NULL;
    }
    return t;
}

void out_table_free(out_table *t)
{
    if (!t)
        return;
    free(t->cells);
    free(t);
}

void out_table_align_right(out_table *t, int col)
{
    if (t && col >= 0 && col < t->ncols)
        t->right |= 1u << col;
}

int out_table_add(out_table *t, const char *const *cells)
{
    if (t->nrows >= OUT_ROWS_MAX + 1)
        return DM_E_TOO_BIG;
    if (t->nrows == t->cap) {
        size_t cap = (size_t)t->cap * 2;
        void *p = realloc(t->cells, cap * (size_t)t->ncols * OUT_CELL_MAX);
        if (!p)
            return -ENOMEM;
        t->cells = p;
        t->cap = (int)cap;
    }
    for (int c = 0; c < t->ncols; c++)
        cell_set(t->cells[t->nrows * t->ncols + c], cells[c] ? cells[c] : "-");
    t->nrows++;
    return 0;
}

void out_table_print(const out_table *t, FILE *out)
{
    size_t w[OUT_COLS_MAX] = {0};
    for (int r = 0; r < t->nrows; r++)
        for (int c = 0; c < t->ncols; c++) {
            size_t cw = width(t->cells[r * t->ncols + c]);
            w[c] = cw > w[c] ? cw : w[c];
        }
    for (int r = 0; r < t->nrows; r++) {
        for (int c = 0; c < t->ncols; c++) {
            const char *s = t->cells[r * t->ncols + c];
            int pad = (int)(w[c] - width(s));
            int right = t->right >> c & 1;
            int last = c == t->ncols - 1;
            fprintf(out, "%*s%s%*s%s", right ? pad : 0, "", s, (right || last) ? 0 : pad, "",
                    last ? "\n" : "  ");
        }
    }
}

int64_t out_json_int(const json_t *obj, const char *key)
{
    const json_t *v = json_object_get(obj, key);
    if (json_is_integer(v))
        return (int64_t)json_integer_value(v);
    if (json_is_real(v) && json_real_value(v) >= 0 && json_real_value(v) < 9e15)
        return (int64_t)llround(json_real_value(v));
    return FO_NULL;
}

double out_json_num(const json_t *obj, const char *key)
{
    const json_t *v = json_object_get(obj, key);
    return json_is_number(v) ? json_number_value(v) : NAN;
}

const char *out_json_str(const json_t *obj, const char *key, const char *dflt)
{
    const char *s = json_string_value(json_object_get(obj, key));
    return s && *s ? s : dflt;
}

static const char *yes_no(const json_t *v)
{
    return json_is_true(v) ? "yes" : json_is_false(v) ? "no" : "-";
}

void out_phase_line(const json_t *phase, FILE *out)
{
    char dur[32], cell[OUT_CELL_MAX];
    out_duration(out_json_int(phase, "duration_ms"), dur, sizeof dur);
    const char *status = out_json_str(phase, "status", "-");
    fprintf(out, "  %-20s %-8s %s", out_json_str(phase, "phase", "?"), status, dur);
    if (strcmp(status, "failed") == 0) {
        cell_set(cell, out_json_str(phase, "detail", "-"));
        fprintf(out, "  %s", cell);
    }
    fputc('\n', out);
}

/* "label      value" with the value cleaned like a table cell. */
static void field(FILE *out, const char *label, const char *value)
{
    char cell[OUT_CELL_MAX];
    cell_set(cell, value ? value : "-");
    fprintf(out, "%-10s %s\n", label, cell);
}

static void status_summary(const json_t *fo, FILE *out)
{
    char buf[OUT_CELL_MAX];
    field(out, "failover", out_json_str(fo, "failover_id", "-"));
    const char *state = out_json_str(fo, "state", "-");
    if (!json_is_null(json_object_get(fo, "current_phase")) &&
        json_object_get(fo, "current_phase")) {
        snprintf(buf, sizeof buf, "%s (running)", state);
        state = buf;
    }
    field(out, "state", state);
    field(out, "success", yes_no(json_object_get(fo, "success")));
    field(out, "reason", out_json_str(fo, "reason", "-"));
    out_duration(out_json_int(fo, "total_time_ms"), buf, sizeof buf);
    field(out, "total", buf);
    if (out_json_int(fo, "controller_down_ms") > 0) { /* FO-I6: part of the total */
        out_duration(out_json_int(fo, "controller_down_ms"), buf, sizeof buf);
        field(out, "downtime", buf);
    }
    if (out_json_int(fo, "attempt") > 1) {
        out_count(out_json_int(fo, "attempt"), buf, sizeof buf);
        field(out, "attempts", buf);
    }
    field(out, "by", out_json_str(fo, "user_id", "-"));
    out_count(out_json_int(fo, "gpu_instance_id"), buf, sizeof buf);
    field(out, "gpu", buf);
    field(out, "kind", out_json_str(fo, "kind", "-"));
    field(out, "started", out_json_str(fo, "started_at", "-"));
    field(out, "finished", out_json_str(fo, "finished_at", "-"));
}

void out_status(const json_t *fo, FILE *out)
{
    static const char *const hdr[] = {"PHASE", "STATUS", "START", "DURATION", "NOTE"};
    status_summary(fo, out);
    out_table *t = out_table_new(5, hdr);
    if (!t)
        return;
    out_table_align_right(t, 2);
    out_table_align_right(t, 3);
    const json_t *ph = json_object_get(fo, "phases");
    size_t i;
    const json_t *p;
    json_array_foreach(ph, i, p)
    {
        char off[32] = "-", dur[32];
        int64_t o = out_json_int(p, "offset_ms");
        if (o >= 0) {
            off[0] = '+';
            out_duration(o, off + 1, sizeof off - 1);
        }
        out_duration(out_json_int(p, "duration_ms"), dur, sizeof dur);
        const char *row[] = {out_json_str(p, "phase", "?"), out_json_str(p, "status", "-"), off,
                             dur, out_json_str(p, "detail", "-")};
        out_table_add(t, row);
    }
    fputc('\n', out);
    out_table_print(t, out);
    out_table_free(t);
}

static void report_totals(const json_t *rep, const char *const *groups, int ng, FILE *out)
{
    static const char *const hdr[] = {"KIND",    "TOTAL",     "SUCCEEDED", "FAILED",   "RUNNING",
                                      "SUCCESS", "MTTR MEAN", "MTTR P50",  "MTTR P95", "MTTR MAX"};
    out_table *t = out_table_new(10, hdr);
    if (!t)
        return;
    for (int c = 1; c < 10; c++)
        out_table_align_right(t, c);
    for (int g = 0; g < ng; g++) {
        const json_t *gr = json_object_get(rep, groups[g]);
        const json_t *m = json_object_get(gr, "mttr_ms");
        char n[4][24], rate[24] = "-", d[4][32];
        const char *keys[] = {"total", "succeeded", "failed", "running"};
        for (int k = 0; k < 4; k++)
            out_count(out_json_int(gr, keys[k]), n[k], sizeof n[k]);
        double r = out_json_num(gr, "success_rate");
        if (!isnan(r))
            snprintf(rate, sizeof rate, "%.1f%%", r * 100.0);
        out_duration_d(out_json_num(m, "mean"), d[0], sizeof d[0]);
        out_duration(out_json_int(m, "p50"), d[1], sizeof d[1]);
        out_duration(out_json_int(m, "p95"), d[2], sizeof d[2]);
        out_duration(out_json_int(m, "max"), d[3], sizeof d[3]);
        const char *row[] = {groups[g], n[0], n[1], n[2], n[3], rate, d[0], d[1], d[2], d[3]};
        out_table_add(t, row);
    }
    out_table_print(t, out);
    out_table_free(t);
}

/* One group: count, mean, p50, p95, max per phase. */
static void report_phases_one(const json_t *gr, FILE *out)
{
    static const char *const hdr[] = {"PHASE", "COUNT", "MEAN", "P50", "P95", "MAX"};
    out_table *t = out_table_new(6, hdr);
    if (!t)
        return;
    for (int c = 1; c < 6; c++)
        out_table_align_right(t, c);
    for (int i = 0; i < FO_PHASE_COUNT; i++) {
        const json_t *s = json_object_get(json_object_get(gr, "phases"), fo_phase_name(i));
        char cnt[24], d[4][32];
        out_count(out_json_int(s, "count"), cnt, sizeof cnt);
        out_duration_d(out_json_num(s, "mean"), d[0], sizeof d[0]);
        out_duration(out_json_int(s, "p50"), d[1], sizeof d[1]);
        out_duration(out_json_int(s, "p95"), d[2], sizeof d[2]);
        out_duration(out_json_int(s, "max"), d[3], sizeof d[3]);
        const char *row[] = {fo_phase_name(i), cnt, d[0], d[1], d[2], d[3]};
        out_table_add(t, row);
    }
    out_table_print(t, out);
    out_table_free(t);
}

/* Three groups side by side: mean and p95 of each. */
static void report_phases_all(const json_t *rep, const char *const *groups, FILE *out)
{
    static const char *const hdr[] = {"PHASE",         "ALL MEAN",  "ALL P95", "SIMULATED MEAN",
                                      "SIMULATED P95", "REAL MEAN", "REAL P95"};
    out_table *t = out_table_new(7, hdr);
    if (!t)
        return;
    for (int c = 1; c < 7; c++)
        out_table_align_right(t, c);
    for (int i = 0; i < FO_PHASE_COUNT; i++) {
        char d[6][32];
        for (int g = 0; g < 3; g++) {
            const json_t *ph = json_object_get(json_object_get(rep, groups[g]), "phases");
            const json_t *s = json_object_get(ph, fo_phase_name(i));
            out_duration_d(out_json_num(s, "mean"), d[2 * g], sizeof d[0]);
            out_duration(out_json_int(s, "p95"), d[2 * g + 1], sizeof d[0]);
        }
        const char *row[] = {fo_phase_name(i), d[0], d[1], d[2], d[3], d[4], d[5]};
        out_table_add(t, row);
    }
    out_table_print(t, out);
    out_table_free(t);
}

void out_report(const json_t *rep, const char *kind, FILE *out)
{
    static const char *const all[] = {"all", "simulated", "real"};
    const char *one[] = {kind};
    const char *const *groups = kind ? one : all;
    int ng = kind ? 1 : 3;
    char gen[OUT_CELL_MAX];
    cell_set(gen, out_json_str(rep, "generated_at", "-"));
    fprintf(out, "Failover report, generated %s\n", gen);
    fputs("MTTR is over successful failovers only; running ones enter no statistic.\n\n", out);
    report_totals(rep, groups, ng, out);
    if (kind) {
        fprintf(out, "\nPer phase (%s):\n", kind);
        report_phases_one(json_object_get(rep, kind), out);
    } else {
        fputs("\nPer phase:\n", out);
        report_phases_all(rep, all, out);
    }
}

void out_list(const json_t *list, FILE *out)
{
    static const char *const hdr[] = {"ID",      "GPU",     "KIND",  "STATE",
                                      "SUCCESS", "STARTED", "TOTAL", "REASON"};
    const json_t *arr = json_object_get(list, "failovers");
    int64_t total = out_json_int(list, "total");
    if (json_array_size(arr) == 0) {
        fputs("no failovers\n", out);
        return;
    }
    out_table *t = out_table_new(8, hdr);
    if (!t)
        return;
    out_table_align_right(t, 1);
    out_table_align_right(t, 6);
    size_t i;
    const json_t *f;
    json_array_foreach(arr, i, f)
    {
        char gpu[24], dur[32];
        out_count(out_json_int(f, "gpu_instance_id"), gpu, sizeof gpu);
        out_duration(out_json_int(f, "total_time_ms"), dur, sizeof dur);
        const char *row[] = {out_json_str(f, "failover_id", "-"),
                             gpu,
                             out_json_str(f, "kind", "-"),
                             out_json_str(f, "state", "-"),
                             yes_no(json_object_get(f, "success")),
                             out_json_str(f, "started_at", "-"),
                             dur,
                             out_json_str(f, "reason", "-")};
        if (out_table_add(t, row) != 0)
            break;
    }
    out_table_print(t, out);
    out_table_free(t);
    fprintf(out, "(%zu of %lld failovers)\n", json_array_size(arr),
            (long long)(total >= 0 ? total : (int64_t)json_array_size(arr)));
}

static void object_value(const char *key, const json_t *v, char *buf, size_t len)
{
    size_t kl = strlen(key);
    if (json_is_null(v)) {
        snprintf(buf, len, "-");
    } else if (json_is_string(v)) {
        snprintf(buf, len, "%s", json_string_value(v));
    } else if (json_is_boolean(v)) {
        snprintf(buf, len, "%s", yes_no(v));
    } else if (json_is_integer(v) && kl > 3 && strcmp(key + kl - 3, "_ms") == 0) {
        out_duration((int64_t)json_integer_value(v), buf, len);
    } else {
        char *s = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
        snprintf(buf, len, "%s", s ? s : "?");
        free(s);
    }
}

void out_object(const json_t *obj, FILE *out)
{
    out_table *t = out_table_new(2, NULL);
    if (!t)
        return;
    const char *key;
    json_t *v;
    json_object_foreach((json_t *)obj, key, v)
    {
        char val[OUT_CELL_MAX];
        object_value(key, v, val, sizeof val);
        const char *row[] = {key, val};
        if (out_table_add(t, row) != 0)
            break;
    }
    out_table_print(t, out);
    out_table_free(t);
}

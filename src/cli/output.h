/* Human-readable output of the CLI: durations, aligned tables, and the
 * renderings of the API's failover objects (status, report, list).
 *
 * CLI-O1: a value that does not exist (JSON null, a missing field, FO_NULL, NAN)
 *     is printed as "-", never as 0.
 * CLI-O2: durations read as a person says them: "812 ms", "42.3 s", "2m 05s",
 *     "1h 02m"; a unit never shows a value that rounds up to the next unit.
 * CLI-O3: every table and cell is capped (OUT_ROWS_MAX, OUT_CELL_MAX); a longer
 *     cell is cut and ends in "..." so the table stays aligned. */
#ifndef DUMONT_CLI_OUTPUT_H
#define DUMONT_CLI_OUTPUT_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define OUT_COLS_MAX 12
#define OUT_CELL_MAX 96
#define OUT_ROWS_MAX 10000

/* Formats a duration in milliseconds (CLI-O2); ms < 0 gives "-" (CLI-O1). */
void out_duration(int64_t ms, char *buf, size_t len);
/* The same for a mean (double); NAN or < 0 gives "-". */
void out_duration_d(double ms, char *buf, size_t len);

/* An aligned text table. */
typedef struct out_table out_table;
out_table *out_table_new(int ncols, const char *const *headers);
void out_table_free(out_table *t);
/* Right-aligns a column (numbers). */
void out_table_align_right(out_table *t, int col);
/* Adds a row of exactly ncols cells (NULL cell: "-"). Returns 0, -ENOMEM or
 * DM_E_TOO_BIG past OUT_ROWS_MAX rows. */
int out_table_add(out_table *t, const char *const *cells);
void out_table_print(const out_table *t, FILE *out);

/* Readers of API objects with CLI-O1 built in. */
int64_t out_json_int(const json_t *obj, const char *key); /* FO_NULL when null/absent */
double out_json_num(const json_t *obj, const char *key);  /* NAN when null/absent */
const char *out_json_str(const json_t *obj, const char *key, const char *dflt);

/* One phase as a progress line: "  provisioning        ok      41.2 s". */
void out_phase_line(const json_t *phase, FILE *out);
/* GET .../status/{id}: summary on top, then the phase table. */
void out_status(const json_t *fo, FILE *out);
/* GET .../report: totals and MTTR per kind, then the per-phase table.
 * kind: "simulated" or "real" to show that group only; NULL for all three. */
void out_report(const json_t *rep, const char *kind, FILE *out);
/* GET .../list: one line per failover. */
void out_list(const json_t *list, FILE *out);
/* Any other object: "key  value" lines; *_ms integers as durations. */
void out_object(const json_t *obj, FILE *out);

#endif

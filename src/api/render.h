/* JSON renderings of the records, exactly as docs/api.md documents them.
 * Each returns a new reference, or NULL when out of memory. */
#ifndef DUMONT_API_RENDER_H
#define DUMONT_API_RENDER_H

#include "db/db_fleet.h"
#include "core/failover.h"
#include "core/report.h"

#include <jansson.h>

/* API-RD1: every JSON the API writes is dumped with these flags: one line, and
 * a real printed with 15 significant digits, the shortest that gives back a
 * value rounded for display (a rate's 4 decimals) without binary noise
 * ("0.8", never "0.80000000000000004"). Durations are integers of ms. */
#define RENDER_JSON_FLAGS (JSON_COMPACT | JSON_REAL_PRECISION(15))

json_t *render_failover(const fo_failover *f, int with_phases);
json_t *render_report(const fo_report *r, int64_t generated_at_ms);
json_t *render_assoc(const fo_assoc *a);
/* The seed's FailoverTestEvent of a test-real (docs/api.md, test-real/report): exactly its
 * fields, a phase or value that did not happen as null (FO-I2). */
json_t *render_test_event(const fo_failover *f);
/* A snapshot an agent reported (db_fleet.h): the keys of POST
 * /api/instances/{id}/snapshots' answer; NULL s gives JSON null. */
json_t *render_snapshot_rec(const dm_snapshot *s);
/* A workload and who serves it; newest may be NULL (no snapshot yet). */
json_t *render_workload(const dm_workload *w, const dm_snapshot *newest);
/* ISO-8601 string, or JSON null for FO_NULL. */
json_t *render_time(int64_t wall_ms);

#endif

/* JSON renderings of the records, exactly as docs/api.md documents them.
 * Each returns a new reference, or NULL when out of memory. */
#ifndef DUMONT_API_RENDER_H
#define DUMONT_API_RENDER_H

#include "failover/model.h"
#include "failover/report.h"

#include <jansson.h>

json_t *render_failover(const fo_failover *f, int with_phases);
json_t *render_report(const fo_report *r, int64_t generated_at_ms);
json_t *render_assoc(const fo_assoc *a);
/* ISO-8601 string, or JSON null for FO_NULL. */
json_t *render_time(int64_t wall_ms);

#endif

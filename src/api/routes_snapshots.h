/* Handlers of the snapshot reports agents send (issue 5 part 5; docs/api.md):
 *
 *   POST /api/instances/{id}/snapshots   {"snapshot_id": S, "epoch": N, "size_bytes": N,
 *                                         "stored_bytes": N, "files": N, "created_at_ms": N,
 *                                         "creation_time_ms": N, "store": S, "trigger": S}
 *                                        201 recorded; 409 refused (db_fleet.h FLEET-F3)
 *   GET  /api/instances/{id}/snapshots   newest first (?limit=N)
 */
#ifndef DUMONT_API_ROUTES_SNAPSHOTS_H
#define DUMONT_API_ROUTES_SNAPSHOTS_H

#include "api/http.h"

int api_h_snapshot_report(const api_ctx *ctx, const api_request *req, api_response *resp);
int api_h_snapshot_list(const api_ctx *ctx, const api_request *req, api_response *resp);

#endif

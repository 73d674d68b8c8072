/* Handlers of the instance endpoints (docs/detect.md), wired in routes.c:
 *
 *   POST /api/instances/register   {"instance_id": N, "kind": "gpu"|"cpu",
 *                                   "workload": S, "probe": S, "hostname": S}
 *                                  -> 201 with the instance's key (once)
 *   GET  /api/instances            every instance, live state, drop counters,
 *                                  and for a provider's machine its provider,
 *                                  workload_id, workspace, address, epoch,
 *                                  newest failover_id and newest snapshot
 *   GET  /api/instances/{id}       one instance (the same fields) and its
 *                                  newest state changes
 *
 * API-R1: the key is in the registration answer only; nothing else renders it,
 *     and it is never logged (HB-L6 of detect/listener.h).
 * API-R2: without a heartbeat listener (ctx->detect NULL) registration is 503
 *     and the lists show what the database holds, with null live fields. */
#ifndef DUMONT_API_ROUTES_INSTANCES_H
#define DUMONT_API_ROUTES_INSTANCES_H

#include "api/http.h"

/* routes_bootstrap.c (API-B1, API-B2): the bootstrap script and the agent build. */
int api_h_agent_bootstrap(const api_ctx *ctx, const api_request *req, api_response *resp);
int api_h_agent_bundle(const api_ctx *ctx, const api_request *req, api_response *resp);
int api_h_instance_register(const api_ctx *ctx, const api_request *req, api_response *resp);
int api_h_instance_list(const api_ctx *ctx, const api_request *req, api_response *resp);
int api_h_instance_get(const api_ctx *ctx, const api_request *req, api_response *resp);

#endif

/* Handlers of the real-failover endpoints (issue 6; docs/api.md), wired in
 * routes.c:
 *
 *   POST   /api/instances/launch                  a workload and its first instance
 *   DELETE /api/instances/{id}                    destroy an instance
 *   POST   /api/chaos/preempt/{id}                {"notice": "30s"} optional
 *   POST   /api/standby/failover/test-real/{id}   {"model": S, "keep": bool}
 *   GET    /api/standby/failover/test-real/report/{id}   one FailoverTestEvent
 *   GET    /api/standby/failover/test-real/history       newest first; since/until/limit
 *   GET    /api/workloads                         every workload and who serves it
 *
 * Without a provider (ctx->orch not attached) they answer 503. */
#ifndef DUMONT_API_ROUTES_FLEET_H
#define DUMONT_API_ROUTES_FLEET_H

#include "api/http.h"

int api_h_instance_launch(const api_ctx *ctx, const api_request *req, api_response *resp);
int api_h_instance_destroy(const api_ctx *ctx, const api_request *req, api_response *resp);
int api_h_chaos_preempt(const api_ctx *ctx, const api_request *req, api_response *resp);
int api_h_test_real(const api_ctx *ctx, const api_request *req, api_response *resp);
int api_h_test_real_report(const api_ctx *ctx, const api_request *req, api_response *resp);
int api_h_test_real_history(const api_ctx *ctx, const api_request *req, api_response *resp);
int api_h_workload_list(const api_ctx *ctx, const api_request *req, api_response *resp);

/* POST /api/instances/{id}/workload-exit: an agent's crash report (API-RF6). */
int api_h_workload_exit(const api_ctx *ctx, const api_request *req, api_response *resp);

#endif

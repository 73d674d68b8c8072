/* Real-failover endpoints (routes_fleet.h). Placeholder until implemented. */
#include "api/routes_fleet.h"

#define LATER(name)                                                                                \
    int name(const api_ctx *ctx, const api_request *req, api_response *resp)                      \
    {                                                                                              \
        (void)ctx;                                                                                 \
        return api_error(resp, 501, "not_implemented", "%s %s is not available yet",              \
                         req->method, req->path);                                                  \
    }
LATER(api_h_instance_launch)
LATER(api_h_instance_destroy)
LATER(api_h_chaos_preempt)
LATER(api_h_test_real)
LATER(api_h_test_real_report)
LATER(api_h_test_real_history)
LATER(api_h_workload_list)

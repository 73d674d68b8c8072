/* Snapshot reports (routes_snapshots.h). Placeholder until implemented. */
#include "api/routes_snapshots.h"

int api_h_snapshot_report(const api_ctx *ctx, const api_request *req, api_response *resp)
{
    (void)ctx;
    return api_error(resp, 501, "not_implemented", "%s %s is not available yet", req->method,
                     req->path);
}

int api_h_snapshot_list(const api_ctx *ctx, const api_request *req, api_response *resp)
{
    (void)ctx;
    return api_error(resp, 501, "not_implemented", "%s %s is not available yet", req->method,
                     req->path);
}

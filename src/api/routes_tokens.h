/* Handlers of the credential endpoints (admin only; docs/security.md), wired
 * in routes.c:
 *
 *   POST   /api/tokens          {"role": "viewer"|"client"|"agent", "name": S,
 *                               "instance_id": N (agent only)}
 *                               -> 201 {"name", "role", "instance_id", "created_at", "token"}:
 *                               the only time the secret is shown
 *   GET    /api/tokens          every token: name, role, instance_id, created_at,
 *                               last_used_at; never the secret
 *   DELETE /api/tokens/{name}   revoke -> 200 {"revoked": name}
 *
 * API-RT1: the secret is in the create answer only; it is never logged. */
#ifndef DUMONT_API_ROUTES_TOKENS_H
#define DUMONT_API_ROUTES_TOKENS_H

#include "api/http.h"

int api_h_token_create(const api_ctx *ctx, const api_request *req, api_response *resp);
int api_h_token_list(const api_ctx *ctx, const api_request *req, api_response *resp);
int api_h_token_revoke(const api_ctx *ctx, const api_request *req, api_response *resp);

#endif

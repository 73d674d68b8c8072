/* The control channel's routes (provider/channel.h; docs/api.md "Control
 * channel"). An agent credential reaches only its own instance's commands
 * (GATE-G4: API_ACC_AGENT, the path's {id}).
 *
 *   POST /api/instances/{id}/commands/poll        {"after": N, "wait_ms": N,
 *                                                  "epoch": N, "fenced": B}
 *        200 {"command": {"id","seq","kind","epoch","args"} | null,
 *             "busy": B} after at most wait_ms (PROV-CH2)
 *   POST /api/instances/{id}/commands/{cid}/result {"state": "done"|"failed",
 *                                                  "result": {...}}
 *        200 {"id","state"}; 404 no such command of this instance
 *   GET  /api/instances/{id}/commands/{cid}        the command and its answer
 *
 * API-CH1: every field is checked for type and range (400 and nothing
 *      written otherwise); a result is a JSON object of at most
 *      DB_CMD_RESULT_MAX bytes. What the agent answers is recorded as its
 *      answer, never read as configuration. */
#ifndef DUMONT_API_ROUTES_CHANNEL_H
#define DUMONT_API_ROUTES_CHANNEL_H

#include "api/http.h"

int api_h_command_poll(const api_ctx *ctx, const api_request *req, api_response *resp);
int api_h_command_result(const api_ctx *ctx, const api_request *req, api_response *resp);
int api_h_command_get(const api_ctx *ctx, const api_request *req, api_response *resp);

#endif

/* Handlers of the alert endpoints (admin only; docs/alerts.md,
 * docs/security.md), wired in routes.c:
 *
 *   POST   /api/alerts                 {"kind": "slack"|"discord"|"webhook", "url": S,
 *                                      "name": S?, "notify_on": S|[S]?}
 *                                      -> 201 the alert; a webhook's "secret" only here
 *   GET    /api/alerts                 {"total", "alerts": [...]}, URLs redacted
 *   POST   /api/alerts/{name}/test     a test event sent now -> 200 {"delivered": true,
 *                                      "status", "ms"}; 502 when the receiver refused
 *                                      or could not be reached
 *   GET    /api/alerts/{name}/deliveries  the newest deliveries (?limit=, 1-1000)
 *   DELETE /api/alerts/{name}          -> 200 {"removed": name}; its queue goes too
 *
 * API-RA1: no answer and no log line holds a destination's URL past its host,
 *      nor a secret other than the one a webhook's add answer carries once
 *      (and that answer is given only over TLS or on a loopback address,
 *      server.h API-S4). */
#ifndef DUMONT_API_ROUTES_ALERTS_H
#define DUMONT_API_ROUTES_ALERTS_H

#include "api/http.h"

int api_h_alert_add(const api_ctx *ctx, const api_request *req, api_response *resp);
int api_h_alert_list(const api_ctx *ctx, const api_request *req, api_response *resp);
int api_h_alert_test(const api_ctx *ctx, const api_request *req, api_response *resp);
int api_h_alert_deliveries(const api_ctx *ctx, const api_request *req, api_response *resp);
int api_h_alert_remove(const api_ctx *ctx, const api_request *req, api_response *resp);

#endif

/* The dashboard's part of the HTTP server: static files, sign-in sessions and
 * the live event stream, behind three calls that server.c makes.
 *
 * API-D1: which of these paths needs which credential is the route table's
 *     business (routes.c, gate.h GATE-G4): /api/session and the static files are
 *     public (credentials are presented there), /api/events is for viewers.
 * API-D2: a request authenticated by cookie and using a method other than
 *     GET/HEAD must carry `X-Dumont-Request: 1`, a header no cross-site form
 *     can send (defence in depth beside SameSite=Strict).
 * API-D3: the token sent to POST /api/session is compared in constant time and
 *     never logged; the session id is only ever in a Set-Cookie header.
 * API-D4: dash_shutdown() unhooks the orchestrator first, then ends the event
 *     streams; after it no orchestrator thread can reach the bus.
 * API-D5: a session carries the role of the token that signed in (session.h
 *     API-SE5): a viewer's session can look, not act. Only admin and viewer
 *     tokens can sign in; agent and client tokens are refused (403).
 * API-D6: the orchestrator's one observer is the dashboard's: every failover it
 *     hears of goes to the live events, to the metrics (api/metrics.h) and to
 *     the alerts (alerts/alerts.h AL-AL1: a copy into a ring, never a wait). */
#ifndef DUMONT_API_DASHBOARD_H
#define DUMONT_API_DASHBOARD_H

#include "api/http.h"
#include "failover/orchestrator.h"

#include <stddef.h>

typedef struct api_dashboard api_dashboard;
struct MHD_Connection;

/* Resolves a presented token into a credential: 1 when known (ret filled),
 * else 0. The server's (server.c); must be safe from several threads. */
typedef int (*dash_resolve_fn)(void *cls, const char *token, api_cred *ret);

/* resolve checks sign-in tokens (API-D3). orch may be NULL (no live events). */
int dash_new(fo_orch *orch, dash_resolve_fn resolve, void *cls, api_dashboard **ret);
struct api_metrics;
/* API-D6: failovers the dashboard hears of are counted in m too (NULL: none). */
void dash_set_metrics(api_dashboard *d, struct api_metrics *m);
struct al_service;
void dash_set_alerts(api_dashboard *d, struct al_service *a);
void dash_shutdown(api_dashboard *d); /* API-D4; safe twice */
void dash_free(api_dashboard *d);     /* shuts down first; NULL is fine */

/* 1 if the request carries a live session cookie and passes API-D2; ret gets
 * the session's credential (API-D5). */
int dash_cookie_cred(api_dashboard *d, struct MHD_Connection *conn, const char *method,
                     api_cred *ret);
/* Answers a route of kind (static files, /api/session, GET /api/events) the
 * gate admitted. Returns 1 when it queued an answer (*ret: MHD's result), 0
 * when it has none (an asset that is not there: the caller answers 404). */
int dash_serve(api_dashboard *d, api_route_kind kind, struct MHD_Connection *conn, const char *url,
               const char *method, const char *body, size_t body_len, int *ret);

#endif

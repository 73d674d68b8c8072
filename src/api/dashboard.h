/* The dashboard's part of the HTTP server: static files, sign-in sessions and
 * the live event stream, behind three calls that server.c makes.
 *
 * D1: /api/session is the only /api/ path open without credentials (it is
 *     where credentials are presented); every other /api/ path needs the
 *     bearer token or a live session cookie.
 * D2: a request authenticated by cookie and using a method other than
 *     GET/HEAD must carry `X-Dumont-Request: 1`, a header no cross-site form
 *     can send (defence in depth beside SameSite=Strict).
 * D3: the token sent to POST /api/session is compared in constant time and
 *     never logged; the session id is only ever in a Set-Cookie header.
 * D4: dash_shutdown() unhooks the orchestrator first, then ends the event
 *     streams; after it no orchestrator thread can reach the bus. */
#ifndef DUMONT_API_DASHBOARD_H
#define DUMONT_API_DASHBOARD_H

#include "failover/orchestrator.h"

#include <stddef.h>

typedef struct api_dashboard api_dashboard;
struct MHD_Connection;

/* token: the API token (copied). orch may be NULL (no live events). */
int dash_new(fo_orch *orch, const char *token, api_dashboard **ret);
void dash_shutdown(api_dashboard *d); /* D4; safe twice */
void dash_free(api_dashboard *d);     /* shuts down first; NULL is fine */

/* D1: 1 if url needs no authentication under /api/. */
int dash_is_public(const char *url);
/* 1 if the request carries a live session cookie and passes D2. */
int dash_cookie_authorized(api_dashboard *d, struct MHD_Connection *conn, const char *method);
/* Answers the dashboard's own paths: static files, /api/session,
 * GET /api/events. Returns 1 when it queued an answer (*ret: MHD's result),
 * 0 when the request is for the route table. */
int dash_handle(api_dashboard *d, struct MHD_Connection *conn, const char *url, const char *method,
                const char *body, size_t body_len, int *ret);

#endif

/* The one gate of the HTTP API: a request's path is checked in its canonical
 * form, matched against the route table, and admitted or refused from the
 * matched route's declaration alone (docs/security.md "The gate").
 *
 * GATE-G1: only a canonical path is routed: it starts with '/', has no empty
 *     segment (no "//", no trailing '/' except the root "/"), no "." or ".."
 *     segment, no '%' (no percent-encoding at all: libmicrohttpd would decode
 *     %2F to '/' and %00 to a NUL that cuts the string), no byte below 0x21,
 *     no 0x7f, at most API_MAX_SEGMENTS segments and fewer than API_PATH_MAX
 *     bytes. Anything else is 400 and never routed.
 * GATE-G2: a canonical path that matches no route is 404 whatever the credential;
 *     one that matches a route with another method is 405 (Allow lists them).
 * GATE-G3: an "{id}" segment is a canonical decimal id: [1-9][0-9]*, at most
 *     2^53 (so "020001" and "20001x" never name 20001); else 400.
 * GATE-G4: the route's access decides, nothing else: public admits anyone;
 *     viewer a viewer or admin; admin an admin; agent the agent whose
 *     instance is the path's {id} (agent-body: the body's "instance_id"), or
 *     an admin; client a client or admin. No credential, or one the server
 *     does not know, is 401; a known credential of another role or another
 *     instance is 403.
 * GATE-G5: the order is GATE-G1, GATE-G2, GATE-G3, GATE-G4, then the handler: the answers of GATE-G1 to GATE-G3 do
 *     not depend on the credential, and no handler runs before GATE-G4 admitted.
 *     GATE-G4 runs once the headers are in (before any body is read) and again
 *     with the body, where agent-body routes compare the body's instance. */
#ifndef DUMONT_API_GATE_H
#define DUMONT_API_GATE_H

#include "api/http.h"

#include <stddef.h>

#define GATE_ID_MAX ((int64_t)1 << 53)

/* GATE-G1: 1 when path (NUL-terminated, no query string) is canonical. */
int gate_path_canonical(const char *path);

/* GATE-G1 to GATE-G3: checks path, splits it into req->segs (pointing into buf, cap
 * bytes) and finds the route for method. Returns the route, or NULL with
 * the refusal (400, 404 or 405) set in resp. req->path is set to path. */
const api_route_def *gate_route(const char *method, const char *path, char *buf, size_t cap,
                                api_request *req, api_response *resp);

/* GATE-G4: 0 when cred (NULL: none) may call route r for req, else -1 with the
 * 401/403 set in resp. have_body: req->body is complete (agent-body routes
 * check the body's instance only then). */
int gate_allow(const api_route_def *r, const api_request *req, const api_cred *cred, int have_body,
               api_response *resp);

/* The instance id of a canonical "{id}" segment (GATE-G3), or -1. */
int64_t gate_parse_id(const char *seg);

/* The route table's match without the gate's checks (routes.c's api_route,
 * api_route_exists): the route for method, or NULL; allow (cap bytes, may be
 * NULL) gets the methods of the routes the path matches with another one. */
const api_route_def *gate_match(const char *method, const api_request *req, char *allow,
                                size_t cap);

/* Splits path on '/' into req->segs (pointing into buf); -1 when it does not
 * fit. Empty segments are dropped (callers that care check GATE-G1 first). */
int gate_split(const char *path, char *buf, size_t cap, api_request *req);

const char *api_role_name(api_role r);
/* "admin", "viewer", "client", "agent" -> the role; -1 otherwise. */
int api_role_parse(const char *s, api_role *ret);
const char *api_access_name(api_access a);

#endif

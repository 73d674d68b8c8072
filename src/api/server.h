/* The HTTP server: libmicrohttpd glue around the route table.
 *
 * S1: every /api/ request is authenticated (Authorization: Bearer <token>,
 *     compared in constant time, or a dashboard session cookie: dashboard.h
 *     D1-D2) before its body is read; the token, the Authorization header
 *     and the cookie are never logged.
 * S2: a body larger than API_BODY_MAX is refused with 413, from the
 *     Content-Length header when there is one, else once the cap is passed;
 *     the server never buffers more than API_BODY_MAX bytes per request.
 * S3: requests are served by a fixed pool of threads; each connection has an
 *     idle timeout and the number of connections is capped. */
#ifndef DUMONT_API_SERVER_H
#define DUMONT_API_SERVER_H

#include "db/db.h"
#include "failover/orchestrator.h"

#include <stddef.h>

typedef struct api_server api_server;

typedef struct {
    const char *listen; /* "HOST:PORT"; PORT 0 picks a free port */
    const char *token;
    dm_db *db;
    fo_orch *orch;
    /* The heartbeat listener (detect/listener.h); may be NULL. */
    struct hbl_server *detect;
    unsigned threads;         /* 0: default (4) */
    unsigned max_connections; /* 0: default (256) */
} api_server_opts;

int api_server_start(const api_server_opts *opts, api_server **ret, char *err, size_t errlen);
/* The port actually bound. */
int api_server_port(const api_server *s);
void api_server_stop(api_server *s); /* stops and frees; NULL is fine */

#endif

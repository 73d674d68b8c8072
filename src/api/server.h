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
 *     idle timeout and the number of connections is capped.
 * S4: with tls_cert and tls_key the server speaks HTTPS only (no plain-HTTP
 *     fallback on the same port). Secrets the API hands out (heartbeat keys,
 *     new credentials) leave only over TLS or when the server listens on a
 *     loopback address (api_ctx.secrets_ok); otherwise those routes answer
 *     403 and the server warns once at start that tokens cross the network
 *     in clear. The key's bytes are wiped when the server stops. */
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
    const char *tls_cert;     /* S4: PEM certificate chain file; NULL: plain HTTP */
    const char *tls_key;      /* S4: PEM private key file; required with tls_cert */
} api_server_opts;

int api_server_start(const api_server_opts *opts, api_server **ret, char *err, size_t errlen);
/* The port actually bound. */
int api_server_port(const api_server *s);
/* 1 when the server speaks HTTPS (S4). */
int api_server_tls(const api_server *s);
void api_server_stop(api_server *s); /* stops and frees; NULL is fine */

#endif

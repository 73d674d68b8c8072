/* The HTTP server: libmicrohttpd glue around the route table.
 *
 * API-S1: every request goes through the gate (gate.h GATE-G1 to GATE-G5) on the path as the
 *     client sent it (MHD's URI log callback, before any decoding): it is
 *     refused unless canonical, matched once against the route table, and
 *     admitted only with the credential its route declares (Authorization:
 *     Bearer <token>, compared in constant time, or a dashboard session
 *     cookie: dashboard.h API-D2, API-D5), before its body is read. The token, the
 *     Authorization header and the cookie are never logged.
 * API-S2: a body larger than API_BODY_MAX is refused with 413, from the
 *     Content-Length header when there is one, else once the cap is passed;
 *     the server never buffers more than API_BODY_MAX bytes per request.
 * API-S3: requests are served by a fixed pool of threads; each connection has an
 *     idle timeout; the number of connections is capped (API_MAX_CONNECTIONS)
 *     and so is the number from one client address (API_PER_IP_CONNECTIONS),
 *     so one address cannot take the slots of the others.
 * API-S4: with tls_cert and tls_key the server speaks HTTPS only (no plain-HTTP
 *     fallback on the same port). Secrets the API hands out (heartbeat keys,
 *     new credentials) leave only over TLS or when the server listens on a
 *     loopback address (api_ctx.secrets_ok); otherwise those routes answer
 *     403 and the server warns once at start that tokens cross the network
 *     in clear. The key's bytes are wiped when the server stops.
 * API-S5: the whole request head (request line and headers; with TLS, the
 *     handshake too) must arrive within a deadline (CG_HEAD_DEADLINE_MS,
 *     conn_guard.h CG-G1 to CG-G4), however slowly it trickles, and its body within
 *     CG_BODY_DEADLINE_MS of the head (CG-G5): a slow client holds a slot for
 *     that long at most.
 * API-S6: a request whose body length is stated twice or two ways (two
 *     Content-Length headers, or Content-Length and Transfer-Encoding) is
 *     400 before it is routed.
 * API-S7: /healthz answers 503 {"status": "starting"} until the server is
 *     ready (api_server_set_ready: provider attached, failovers recovered), so
 *     what waits for it never acts on a half-started server. */
#ifndef DUMONT_API_SERVER_H
#define DUMONT_API_SERVER_H

#include "db/db.h"
#include "failover/orchestrator.h"

#include <stddef.h>
#include <stdint.h>

typedef struct api_server api_server;

#define API_MAX_CONNECTIONS    1024 /* S3 */
#define API_PER_IP_CONNECTIONS 64   /* S3 */

typedef struct {
    const char *listen; /* "HOST:PORT"; PORT 0 picks a free port */
    const char *token;
    dm_db *db;
    fo_orch *orch;
    /* The heartbeat listener (detect/listener.h); may be NULL. */
    struct hbl_server *detect;
    struct api_metrics *metrics; /* GET /metrics and its feeds (api/metrics.h); may be NULL */
    struct al_service *alerts;   /* /api/alerts and the failover events (alerts/alerts.h) */
    struct prov_channel *channel; /* provider/channel.h; may be NULL */
    unsigned threads;            /* 0: default (16; the channel's polls wait on up to 8) */
    unsigned max_connections;    /* 0: API_MAX_CONNECTIONS */
    unsigned per_ip_connections; /* 0: API_PER_IP_CONNECTIONS */
    int64_t head_deadline_ms;    /* 0: CG_HEAD_DEADLINE_MS (API-S5) */
    const char *tls_cert;        /* API-S4: PEM certificate chain file; NULL: plain HTTP */
    const char *tls_key;         /* API-S4: PEM private key file; required with tls_cert */
    const char *public_url;      /* routes_bootstrap.c API-B1 (copied); NULL: none */
    const char *agent_bundle;    /* routes_bootstrap.c API-B2 (copied); NULL: none */
    const char *store_url;       /* routes_bootstrap.c API-B1 (copied); NULL: none */
} api_server_opts;

int api_server_start(const api_server_opts *opts, api_server **ret, char *err, size_t errlen);
/* The port actually bound. */
int api_server_port(const api_server *s);
/* 1 when the server speaks HTTPS (API-S4). */
int api_server_tls(const api_server *s);
/* API-S7: the server is up (provider attached, failovers recovered). */
void api_server_set_ready(api_server *s);
void api_server_stop(api_server *s); /* stops and frees; NULL is fine */

#endif

/* Request and response as the route handlers see them, free of libmicrohttpd.
 *
 * API-H1: a handler always leaves a response: a JSON body and a status, or (the
 *     Prometheus exposition of GET /metrics) a text body with its content
 *     type (api_text()). Errors are {"error": code, "detail": text}
 *     (api_error()); nothing else is sent.
 * API-H2: handlers never see a body over API_BODY_MAX (the server answers 413)
 *     nor a request the gate refused (gate.h GATE-G1 to GATE-G5): by the time a handler
 *     runs, req->cred holds a credential its route's declaration admits. */
#ifndef DUMONT_API_HTTP_H
#define DUMONT_API_HTTP_H

#include "db/db.h"
#include "failover/orchestrator.h"

#include <jansson.h>
#include <stddef.h>

#define API_BODY_MAX     (64 * 1024)
#define API_PATH_MAX     1024
#define API_MAX_SEGMENTS 16

typedef struct {
    dm_db *db;
    fo_orch *orch;
    struct hbl_server *detect;    /* heartbeat listener (detect/listener.h); may be NULL */
    int secrets_ok;               /* server.h API-S4: 1 over TLS or on a loopback listen address */
    struct api_metrics *metrics;  /* api/metrics.h; may be NULL */
    struct al_service *alerts;    /* alerts/alerts.h; may be NULL */
    struct prov_channel *channel; /* provider/channel.h: the control channel; may be NULL */
    const char *public_url;       /* API-B1: the address agents on a cloud use; may be NULL */
    const char *agent_bundle;     /* API-B2: the portable agent build (a .tar.gz); may be NULL */
    const char *store_url;        /* API-B1: the store the bootstrapped agents snapshot to */
    /* API-S7: 0 until the server has attached its provider and recovered its
     * failovers (api_server_set_ready); /healthz answers 503 "starting" till
     * then. NULL (the handlers' unit tests): ready. */
    const _Atomic int *ready;
} api_ctx;

/* Who presents a credential (docs/security.md). Ordered: admin can do what a
 * viewer can; the other roles are disjoint. */
typedef enum {
    API_ROLE_NONE = 0, /* no credential, or one the server does not know */
    API_ROLE_CLIENT,   /* the workloads' stable endpoints /w/... only */
    API_ROLE_AGENT,    /* one instance's agent: its own instance only */
    API_ROLE_VIEWER,   /* read-only */
    API_ROLE_ADMIN,
} api_role;

#define API_CRED_NAME_MAX 64

typedef struct {
    api_role role;
    char name[API_CRED_NAME_MAX]; /* "admin" for $DUMONT_HOME/token; else the token's name */
    int64_t instance_id;          /* API_ROLE_AGENT: the instance it speaks for; else 0 */
} api_cred;

/* Who may call a route (its declaration in the route table; gate.h GATE-G4). */
typedef enum {
    API_ACC_PUBLIC = 0, /* anyone, no credential */
    API_ACC_VIEWER,     /* viewer or admin */
    API_ACC_ADMIN,      /* admin */
    API_ACC_AGENT,      /* the agent of the instance the path's {id} names, or admin */
    API_ACC_AGENT_BODY, /* the agent of the body's "instance_id", or admin (registration) */
    API_ACC_CLIENT,     /* client or admin */
} api_access;

/* Who answers a route: its handler, or the dashboard's parts (dashboard.h). */
typedef enum {
    API_KIND_HANDLER = 0,
    API_KIND_SESSION, /* /api/session */
    API_KIND_EVENTS,  /* /api/events */
    API_KIND_STATIC,  /* embedded files */
} api_route_kind;

typedef struct {
    const char *method;
    const char *path;
    const char *segs[API_MAX_SEGMENTS]; /* path split on '/', no empties */
    int nsegs;
    const char *body; /* NUL-terminated; NULL when empty */
    size_t body_len;
    /* Query-string lookup; returns NULL when absent. */
    const char *(*query)(void *conn, const char *key);
    void *conn;
    const api_cred *cred; /* who calls (API-H2); NULL only in tests that call api_route() */
} api_request;

typedef struct {
    int status;
    json_t *body;   /* owned; sent as JSON */
    char allow[64]; /* Allow header for 405 */
    char *text;     /* owned; when set, sent instead of body (API-H1) */
    size_t text_len;
    const char *content_type; /* of text; static */
} api_response;

/* Sets an error response (API-H1). Returns 0 so handlers can `return api_error(...)`. */
int api_error(api_response *resp, int status, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* Parses the body as a JSON object whose keys are all in allowed (NULL-
 * terminated); an empty body is {}. Else sets a 400 and returns -1. */
int api_body_object(const api_request *req, api_response *resp, const char *const *allowed,
                    json_t **ret);
/* An optional printable string field of body o, shorter than cap bytes: *ret
 * NULL when absent or null; else a 400 is set and -1 returned. */
int api_text_field(json_t *o, const char *key, size_t cap, const char **ret, api_response *resp);
/* Maps a DM_E_* code to status + error code and sets the response. */
int api_error_from(api_response *resp, int rc, const char *detail);
/* Fills flt from the query string (kind, gpu_instance_id, test, active, since,
 * until: an ISO-8601 time, epoch ms or an age like 24h). Else sets a 400,
 * returns -1. */
int api_query_filter(const api_request *req, db_failover_filter *flt, api_response *resp);
/* Sets a JSON response, taking ownership of body. */
int api_json(api_response *resp, int status, json_t *body);
/* Sets a text response (API-H1), taking ownership of text (malloc'd). */
int api_text(api_response *resp, int status, char *text, size_t len, const char *content_type);
/* Releases what a response owns (its JSON and text). */
void api_response_done(api_response *resp);

typedef int (*api_handler_fn)(const api_ctx *ctx, const api_request *req, api_response *resp);

/* One route: a method and a path pattern whose "{id}" segments are instance
 * ids (canonical decimal, gate.h GATE-G3) and "{}" segments any one segment. */
typedef struct {
    const char *method;
    const char *pattern;
    api_access access;
    api_route_kind kind;
    api_handler_fn fn; /* API_KIND_HANDLER only */
} api_route_def;

/* The route table, read-only (the gate's tests walk it). */
const api_route_def *api_route_table(size_t *ret_n);

/* Dispatches to the route table's handlers (routes.c), without the gate:
 * the tests of handlers call it directly; the server calls the gate first. */
void api_route(const api_ctx *ctx, const api_request *req, api_response *resp);
/* 1 if the route table has METHOD PATH (the dashboard asks which views the
 * server can fill, without a 404 in the browser's console). */
int api_route_exists(const char *method, const char *path);

#endif

/* The CLI's HTTP+JSON client of the Dumont REST API (docs/api.md), over libcurl.
 *
 * A dm_client holds the base URL and the bearer token; client_call() sends one
 * request and hands back the HTTP status, the raw body and its parsed JSON.
 *
 * CLIENT-C1: every request has a connect timeout and a total timeout, follows no
 *     redirect and speaks only http/https; the response body is capped at
 *     CLIENT_BODY_MAX bytes (DM_E_TOO_BIG beyond).
 * CLIENT-C2: the token goes only into the Authorization header; it never reaches an
 *     error message, a log line or argv.
 * CLIENT-C3: a server that cannot be reached is DM_E_UNAVAILABLE with err set to the
 *     one line the user sees ("cannot reach the Dumont server at URL ...").
 * CLIENT-C4: an answer outside 2xx is DM_E_* by status (404 -> DM_E_NOT_FOUND, ...)
 *     with err set to the JSON error's "detail" (or "error", or the status);
 *     the parsed answer is still handed back for --json.
 * CLIENT-C5: when no token could be loaded the request goes out without one, so an
 *     unreachable server is still reported as such; a 401 is then explained by
 *     why the token could not be loaded. */
#ifndef DUMONT_CLI_CLIENT_H
#define DUMONT_CLI_CLIENT_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define CLIENT_BODY_MAX           (16u * 1024 * 1024) /* cap on a response body (CLIENT-C1) */
#define CLIENT_REQ_BODY_MAX       (64u * 1024)        /* cap on a request body (the server's) */
#define CLIENT_CONNECT_TIMEOUT_MS 5000L
#define CLIENT_TIMEOUT_MS         30000L
#define CLIENT_PATH_MAX           2048

typedef struct dm_client dm_client;

/* A response: status, the body as received (NUL-terminated) and its JSON
 * (NULL when the body was not JSON). client_resp_done() frees. */
typedef struct {
    long status;
    char *body;
    size_t body_len;
    json_t *json;
} client_resp;

/* base_url without trailing slash. token may be NULL or empty (CLIENT-C5); token_err,
 * if non-NULL, is the reason no token was loaded. Returns 0 or -ENOMEM. */
int client_new(const char *base_url, const char *token, const char *token_err, dm_client **ret);
void client_free(dm_client *cl);
/* Sets the total timeout of each request (CLIENT-C1); <= 0: CLIENT_TIMEOUT_MS. For
 * the few synchronous calls that take long (instances launch). */
void client_set_timeout(dm_client *cl, long timeout_ms);
/* CLIENT-C6: an https:// server's certificate is always verified (chain and host
 * name); path names the CA bundle to trust instead of the system's (a
 * private CA, DUMONT_CA_FILE). NULL or "": the system's CAs. */
void client_set_ca_file(dm_client *cl, const char *path);

/* Sends method path (path starts with '/', may carry a query) with an optional
 * JSON body. Returns 0 for a 2xx answer, or a DM_E_* code (CLIENT-C3, CLIENT-C4) with err set.
 * *ret is filled whenever the server answered (also on CLIENT-C4 errors), and must be
 * released with client_resp_done(). */
int client_call(dm_client *cl, const char *method, const char *path, const json_t *body,
                client_resp *ret, char *err, size_t errlen);
void client_resp_done(client_resp *r);

/* Appends "key=value" to a query string under construction in buf (cap bytes),
 * percent-encoding the value, with '?' or '&' as needed. Returns 0 or DM_E_TOO_BIG. */
int client_query_add(char *buf, size_t cap, const char *key, const char *value);

/* Writes text (valid JSON) to out, re-indented two spaces a level, with every
 * literal (numbers, strings, key order) exactly as received. */
void client_json_pretty(const char *text, size_t len, FILE *out);

#endif

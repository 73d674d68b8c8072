/* The agent's HTTP requests (registration, snapshot reports, the cloud's
 * metadata service): one function over libcurl, so each caller states only
 * what differs.
 *
 * AG-AH1: the answer is kept in the caller's buffer, NUL-terminated, and never
 *      past cap - 1 bytes: a longer answer fails the transfer (status 0).
 * AG-AH2: the token travels in an Authorization header built here and wiped
 *      after the request; it is never logged.
 * AG-AH3: an https:// peer's certificate is always verified (chain and host
 *      name); ca_file only changes which CAs are trusted. */
#ifndef DUMONT_AGENT_AGENT_HTTP_H
#define DUMONT_AGENT_AGENT_HTTP_H

#include <stdatomic.h>
#include <stddef.h>

typedef struct {
    const char *method; /* NULL: GET, or POST when json is set */
    const char *url;
    const char *token;   /* bearer token; NULL: none (AG-AH2) */
    const char *ca_file; /* AG-AH3: CA bundle for https://; NULL or "": the system's */
    const char *header;  /* one more "Name: value" header; may be NULL */
    const char *json;    /* request body (Content-Type: application/json); may be NULL */
    long timeout_ms;
    char *buf; /* the answer (AG-AH1) */
    size_t cap;
    size_t len; /* out: bytes in buf */
    const atomic_bool *abort; /* may be NULL; once true, the transfer ends (status 0) */
} agent_req;

/* The HTTP status, or 0 when no answer came (err, if given, says why). */
long agent_http(agent_req *r, char *err, size_t errlen);

#endif

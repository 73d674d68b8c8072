/* AWS Signature Version 4 (AWS4-HMAC-SHA256): the signer every s3:// request
 * goes through (store_s3.c). Pure functions over strings: no I/O, no clock,
 * no global state, so the unit test can check it against the examples
 * printed in AWS's documentation.
 *
 * STORE-V1: the canonical request is built exactly as AWS specifies: method, the
 *     URI-encoded path (caller's, '/' kept), the canonical query string
 *     (sigv4_canonical_query: names and values encoded, sorted), the signed
 *     headers (names lowercased, values trimmed with inner runs of spaces
 *     folded, sorted by name), the signed header list, the payload hash.
 * STORE-V2: every output is bounded: a result that does not fit its buffer fails
 *     with DM_E_TOO_BIG instead of being truncated (a truncated signature
 *     would be a wrong one).
 * STORE-V3: the secret key is used only as HMAC input; it never appears in any
 *     output, and the derived key and intermediate buffers are wiped.
 * STORE-V4: a presigned URL (sigv4_presign, query-string signing) grants one
 *     method on one object until it expires (1 s to 7 days, as S3 caps it):
 *     it carries the access key id, scope, date, lifetime and signature, never
 *     the secret; only the host header is signed, the payload is
 *     UNSIGNED-PAYLOAD, so any HTTP client can use it as it is. */
#ifndef DUMONT_STORE_SIGV4_H
#define DUMONT_STORE_SIGV4_H

#include <stddef.h>
#include <time.h>

#define SIGV4_MAX_HEADERS 24
#define SIGV4_AUTH_MAX    512 /* "AWS4-HMAC-SHA256 Credential=..., Signature=..." */

typedef struct {
    const char *name;
    const char *value;
} sigv4_pair;

typedef struct {
    const char *method;        /* "GET", "PUT", ... */
    const char *path;          /* URI-encoded absolute path, e.g. "/bucket/key" */
    const char *query;         /* canonical query string (may be "") */
    const sigv4_pair *headers; /* must include host and x-amz-date */
    size_t nheaders;
    const char *payload_hash; /* lowercase hex SHA-256, or "UNSIGNED-PAYLOAD" */
} sigv4_request;

typedef struct {
    const char *access_key;
    const char *secret_key;
    const char *region;  /* "us-east-1" */
    const char *service; /* "s3" */
} sigv4_creds;

/* Writes the Authorization header value for req at amz_date
 * ("YYYYMMDDTHHMMSSZ", as the x-amz-date header says). Returns 0,
 * DM_E_INVALID (bad argument) or DM_E_TOO_BIG (STORE-V2). */
int sigv4_authorization(const sigv4_request *req, const sigv4_creds *cr, const char *amz_date,
                        char *out, size_t outlen);
/* The same pieces for tests and diagnostics: the canonical request, and the
 * hex signature alone. */
int sigv4_canonical_request(const sigv4_request *req, char *out, size_t outlen);
int sigv4_signature(const sigv4_request *req, const sigv4_creds *cr, const char *amz_date,
                    char out[65]);

/* What a presigned URL is for. */
typedef struct {
    const char *method;        /* "GET" or "PUT" */
    const char *scheme;        /* "https" or "http" */
    const char *host;          /* the host header: "bucket.s3.amazonaws.com", "127.0.0.1:9000" */
    const char *path;          /* URI-encoded absolute path, e.g. "/bucket/key" */
    const char *session_token; /* signed as X-Amz-Security-Token; NULL or "": none */
    long expires_s;            /* 1 .. 604800 */
} sigv4_presign_req;

/* STORE-V4: the URL "scheme://host/path?X-Amz-Algorithm=...&X-Amz-Signature=..."
 * valid from amz_date for expires_s. Returns 0, DM_E_INVALID or DM_E_TOO_BIG. */
int sigv4_presign(const sigv4_presign_req *req, const sigv4_creds *cr, const char *amz_date,
                  char *out, size_t outlen);

/* URI-encodes s (RFC 3986 unreserved kept; '/' kept when keep_slash).
 * Returns 0 or DM_E_TOO_BIG. */
int sigv4_uri_encode(const char *s, int keep_slash, char *out, size_t outlen);
/* Builds "a=1&b=2" from n pairs: each encoded, sorted by name then value;
 * a NULL value counts as "". Returns 0, DM_E_INVALID or DM_E_TOO_BIG. */
int sigv4_canonical_query(const sigv4_pair *params, size_t n, char *out, size_t outlen);
/* Lowercase hex SHA-256 of data. */
void sigv4_sha256_hex(const void *data, size_t len, char out[65]);
/* "YYYYMMDDTHHMMSSZ" of t (UTC). */
void sigv4_amz_date(time_t t, char out[17]);

#endif

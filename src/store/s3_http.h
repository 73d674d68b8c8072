/* S3 requests for the s3:// store (s3_http.c): one signed HTTP request with
 * retries, its answer in bounded buffers, and a small parallel runner.
 * Internal to src/store/: only store_s3.c uses it. Invariants are those of
 * store_s3.c, S3-1 (signing, secrets), S3-7 (retries), S3-8 (untrusted
 * answers). */
#ifndef DUMONT_STORE_S3_HTTP_H
#define DUMONT_STORE_S3_HTTP_H

#include <curl/curl.h>
#include <limits.h>
#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#define S3_POOL_MAX    64
#define S3_XML_MAX     (4u * 1024u * 1024u) /* cap of an XML answer */
#define S3_ERRBODY_MAX 4096                 /* cap of an error body kept */

/* Where and as whom requests go, and the pool of curl handles. */
typedef struct {
    char scheme[8];
    char hostport[256];
    char bucket[64];
    char prefix[128]; /* "" or "a/b", no slash at either end */
    int virtual_host;
    char region[64];
    char access_key[128];
    char secret_key[256];
    char session_token[2048];
    char ca_file[PATH_MAX];
    int tries;
    pthread_mutex_t mu; /* pool */
    CURL *pool[S3_POOL_MAX];
    int npool;
} s3_conn;

/* One request. Fill the "in" fields (zero the rest), run s3_do(), read the
 * "out" ones, then s3_req_done(). */
typedef struct {
    /* in */
    const char *method;
    const char *key;   /* store key (the prefix is added), NULL: the bucket */
    const char *query; /* canonical query string or NULL */
    const void *body;
    size_t body_len;
    const char *payload_hash; /* NULL: computed from body */
    const char *range;        /* "bytes=a-b" or NULL */
    const char *meta_sha;     /* sent as x-amz-meta-sha256 */
    const char *content_type;
    uint8_t *sink; /* fixed sink of sink_cap bytes, or NULL: dyn (capped at XML_MAX) */
    size_t sink_cap;
    int tries; /* 0: the connection's */
    /* out */
    long status;
    size_t got;
    int overflow;
    char *dyn;
    size_t dyn_len;
    uint64_t clen, total;
    int have_clen, have_total;
    char rsha[65];
    char etag[128];
    char errbody[S3_ERRBODY_MAX];
    size_t errbody_len;
    int curl_rc;
    char curl_err[CURL_ERROR_SIZE];
    size_t upos; /* upload position */
} s3_req;

void s3_conn_init(s3_conn *c); /* after the settings are filled in */
void s3_conn_done(s3_conn *c); /* closes the pooled handles */
/* sigv4.h STORE-V4: a URL that lets its holder do method ("GET"/"PUT") on key
 * for expires_s seconds from now, and nothing else. */
int s3_presign(const s3_conn *s, const char *method, const char *key, long expires_s, char *out,
               size_t outlen);
/* Runs r with retries (S3-7), each logged with its reason (s3_note_retry).
 * Returns 0 when a final HTTP answer came (the caller checks r->status),
 * else the error, as one line in err. */
int s3_do(s3_conn *s, s3_req *r, const char *what, char *err, size_t errlen);
/* 1 when r's failure (transport, or its HTTP answer) is worth another try
 * (S3-7); its reason ("Server returned nothing (no headers, no data)",
 * "HTTP 503 SlowDown") into reason either way. */
int s3_retryable(const s3_req *r, char *reason, size_t reasonlen);
/* A retry: its log line (`store.s3.retry op= key= try= reason=`) and its count. */
void s3_note_retry(const char *what, const char *key, int next_try, const char *reason);
/* The pause before retry number attempt + 1 (250 ms doubling to 8 s, jitter). */
void s3_backoff_sleep(int attempt);
/* S3-11: 0 only when etag is S3's multipart form ("<md5>-<n>") and is not
 * the one an upload of these part ETags makes (the MD5 of their binary
 * MD5s, then "-" and their count); 1 when it is, or when either side is not
 * of that form (nothing to compare). */
int s3_multipart_etag_matches(const char *etag, char (*part_etags)[128], size_t nparts);
/* The error of a finished request as one line (S3-7, S3-8). */
int s3_fail(const s3_conn *s, const s3_req *r, int tries, const char *what, const char *key,
            char *err, size_t errlen);
void s3_req_done(s3_req *r);

/* Copies the text of the first <tag>...</tag> in [xml, end) into out,
 * decoding the five predefined entities; 0, DM_E_NOT_FOUND, DM_E_INVALID or
 * DM_E_TOO_BIG. Never reads past end (S3-8). */
int s3_xml_text(const char *xml, const char *end, const char *tag, char *out, size_t outlen,
                const char **ret_after);
/* A decimal u64 in [s, s+n), spaces around allowed; 0 or DM_E_INVALID. */
int s3_parse_u64n(const char *s, size_t n, uint64_t *ret);

typedef int (*s3_job_fn)(void *ctx, size_t i, char *err, size_t errlen);
/* Runs fn(ctx, i) for i in [0, n) on up to workers threads (this one
 * included); the first failure stops the rest and is returned with its
 * message. */
int s3_par_run(s3_job_fn fn, void *ctx, size_t n, int workers, char *err, size_t errlen);

#endif

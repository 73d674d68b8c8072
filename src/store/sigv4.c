/* AWS Signature Version 4 (see sigv4.h, STORE-V1 to STORE-V3).
 *
 *   canonical request = method \n path \n query \n (name:value\n)* \n
 *                       signed-names \n payload-hash
 *   string to sign    = "AWS4-HMAC-SHA256" \n amz_date \n scope \n
 *                       hex(SHA256(canonical request))
 *   scope             = date/region/service/aws4_request
 *   signing key       = HMAC(HMAC(HMAC(HMAC("AWS4"+secret, date), region),
 *                       service), "aws4_request")
 *   signature         = hex(HMAC(signing key, string to sign))
 *
 * Everything is written through a bounded builder (sb): an overflow marks it
 * and the caller returns DM_E_TOO_BIG (STORE-V2). */
#include "store/sigv4.h"

#include "util/error.h"
#include "util/hex.h"

#include <errno.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/sha.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define CANON_MAX 8192

typedef struct {
    char *buf;
    size_t cap, len;
    int over;
} sb;

static void sb_putn(sb *b, const char *s, size_t n)
{
    if (b->over || b->len + n >= b->cap) {
        b->over = 1;
        return;
    }
    memcpy(b->buf + b->len, s, n);
    b->len += n;
    b->buf[b->len] = '\0';
}

static void sb_put(sb *b, const char *s)
{
    sb_putn(b, s, strlen(s));
}

static int unreserved(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '_' || c == '.' || c == '~';
}

static void sb_encode(sb *b, const char *s, int keep_slash)
{
    static const char hexd[] = "0123456789ABCDEF";
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (unreserved(*p) || (keep_slash && *p == '/')) {
            sb_putn(b, (const char *)p, 1);
        } else {
            char e[3] = {'%', hexd[*p >> 4], hexd[*p & 15]};
            sb_putn(b, e, 3);
        }
    }
}

int sigv4_uri_encode(const char *s, int keep_slash, char *out, size_t outlen)
{
    if (!s || !out || !outlen)
        return DM_E_INVALID;
    sb b = {out, outlen, 0, 0};
    out[0] = '\0';
    sb_encode(&b, s, keep_slash);
    return b.over ? DM_E_TOO_BIG : 0;
}

typedef struct {
    char name[256];
    char value[4096];
} enc_pair;

static int enc_pair_cmp(const void *a, const void *b)
{
    const enc_pair *x = a, *y = b;
    int c = strcmp(x->name, y->name);
    return c ? c : strcmp(x->value, y->value);
}

int sigv4_canonical_query(const sigv4_pair *params, size_t n, char *out, size_t outlen)
{
    if ((!params && n) || !out || !outlen || n > SIGV4_MAX_HEADERS)
        return DM_E_INVALID;
    enc_pair *e = calloc(n ? n : 1, sizeof *e);
    if (!e)
        return -ENOMEM;
    int rc = 0;
    for (size_t i = 0; i < n && rc == 0; i++) {
        if (!params[i].name)
            rc = DM_E_INVALID;
        else if (sigv4_uri_encode(params[i].name, 0, e[i].name, sizeof e[i].name) ||
                 sigv4_uri_encode(params[i].value ? params[i].value : "", 0, e[i].value,
                                  sizeof e[i].value))
            rc = DM_E_TOO_BIG;
    }
    if (rc == 0) {
        qsort(e, n, sizeof *e, enc_pair_cmp);
        sb b = {out, outlen, 0, 0};
        out[0] = '\0';
        for (size_t i = 0; i < n; i++) {
            if (i)
                sb_put(&b, "&");
            sb_put(&b, e[i].name);
            sb_put(&b, "=");
            sb_put(&b, e[i].value);
        }
        rc = b.over ? DM_E_TOO_BIG : 0;
    }
    free(e);
    return rc;
}

void sigv4_sha256_hex(const void *data, size_t len, char out[65])
{
    uint8_t md[SHA256_DIGEST_LENGTH];
    SHA256(data, len, md);
    hex_encode(md, sizeof md, out);
}

void sigv4_amz_date(time_t t, char out[17])
{
    struct tm tm;
    gmtime_r(&t, &tm);
    if (strftime(out, 17, "%Y%m%dT%H%M%SZ", &tm) != 16)
        snprintf(out, 17, "19700101T000000Z");
}

/* A header prepared for signing: lowercase name, trimmed value. */
typedef struct {
    char name[64];
    const char *value;
} canon_hdr;

static int canon_hdr_cmp(const void *a, const void *b)
{
    return strcmp(((const canon_hdr *)a)->name, ((const canon_hdr *)b)->name);
}

/* Appends value trimmed, with runs of spaces folded to one (STORE-V1). */
static void sb_trimmed(sb *b, const char *v)
{
    while (*v == ' ' || *v == '\t')
        v++;
    int space = 0;
    for (; *v; v++) {
        if (*v == ' ' || *v == '\t') {
            space = 1;
            continue;
        }
        if (space)
            sb_putn(b, " ", 1);
        space = 0;
        sb_putn(b, v, 1);
    }
}

static int prepare_headers(const sigv4_request *req, canon_hdr *h)
{
    if (req->nheaders == 0 || req->nheaders > SIGV4_MAX_HEADERS || !req->headers)
        return DM_E_INVALID;
    for (size_t i = 0; i < req->nheaders; i++) {
        const char *n = req->headers[i].name;
        size_t len = n ? strlen(n) : 0;
        if (len == 0 || len >= sizeof h[i].name || !req->headers[i].value)
            return DM_E_INVALID;
        for (size_t k = 0; k <= len; k++)
            h[i].name[k] = (n[k] >= 'A' && n[k] <= 'Z') ? (char)(n[k] - 'A' + 'a') : n[k];
        if (strchr(req->headers[i].value, '\n') || strchr(req->headers[i].value, '\r'))
            return DM_E_INVALID; /* would forge another canonical line */
        h[i].value = req->headers[i].value;
    }
    qsort(h, req->nheaders, sizeof *h, canon_hdr_cmp);
    return 0;
}

static void sb_signed_names(sb *b, const canon_hdr *h, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (i)
            sb_put(b, ";");
        sb_put(b, h[i].name);
    }
}

int sigv4_canonical_request(const sigv4_request *req, char *out, size_t outlen)
{
    canon_hdr h[SIGV4_MAX_HEADERS];
    if (!req || !req->method || !req->path || !req->payload_hash || !out || !outlen)
        return DM_E_INVALID;
    int rc = prepare_headers(req, h);
    if (rc)
        return rc;
    sb b = {out, outlen, 0, 0};
    out[0] = '\0';
    sb_put(&b, req->method);
    sb_put(&b, "\n");
    sb_put(&b, req->path);
    sb_put(&b, "\n");
    sb_put(&b, req->query ? req->query : "");
    sb_put(&b, "\n");
    for (size_t i = 0; i < req->nheaders; i++) {
        sb_put(&b, h[i].name);
        sb_put(&b, ":");
        sb_trimmed(&b, h[i].value);
        sb_put(&b, "\n");
    }
    sb_put(&b, "\n");
    sb_signed_names(&b, h, req->nheaders);
    sb_put(&b, "\n");
    sb_put(&b, req->payload_hash);
    return b.over ? DM_E_TOO_BIG : 0;
}

static int hmac(const void *key, size_t klen, const char *msg, uint8_t out[32])
{
    unsigned int n = 32;
    return HMAC(EVP_sha256(), key, (int)klen, (const unsigned char *)msg, strlen(msg), out, &n) &&
                   n == 32
               ? 0
               : DM_E_INTERNAL;
}

static int valid_date(const char *d)
{
    if (!d || strlen(d) != 16 || d[8] != 'T' || d[15] != 'Z')
        return 0;
    for (int i = 0; i < 15; i++)
        if (i != 8 && (d[i] < '0' || d[i] > '9'))
            return 0;
    return 1;
}

int sigv4_signature(const sigv4_request *req, const sigv4_creds *cr, const char *amz_date,
                    char out[65])
{
    if (!cr || !cr->secret_key || !cr->region || !cr->service || !valid_date(amz_date))
        return DM_E_INVALID;
    char *canon = malloc(CANON_MAX);
    if (!canon)
        return -ENOMEM;
    char key[300], sts[512], scope[160], chash[65], day[9];
    uint8_t k[32];
    int rc = sigv4_canonical_request(req, canon, CANON_MAX);
    if (rc)
        goto out;
    memcpy(day, amz_date, 8);
    day[8] = '\0';
    sigv4_sha256_hex(canon, strlen(canon), chash);
    int n1 = snprintf(scope, sizeof scope, "%s/%s/%s/aws4_request", day, cr->region, cr->service);
    int n2 = snprintf(sts, sizeof sts, "AWS4-HMAC-SHA256\n%s\n%s\n%s", amz_date, scope, chash);
    int n3 = snprintf(key, sizeof key, "AWS4%s", cr->secret_key);
    if (n1 < 0 || n2 < 0 || n3 < 0 || (size_t)n1 >= sizeof scope || (size_t)n2 >= sizeof sts ||
        (size_t)n3 >= sizeof key) {
        rc = DM_E_TOO_BIG;
        goto out;
    }
    if ((rc = hmac(key, (size_t)n3, day, k)) != 0 || (rc = hmac(k, 32, cr->region, k)) != 0 ||
        (rc = hmac(k, 32, cr->service, k)) != 0 || (rc = hmac(k, 32, "aws4_request", k)) != 0 ||
        (rc = hmac(k, 32, sts, k)) != 0)
        goto out;
    hex_encode(k, 32, out);
out:
    OPENSSL_cleanse(key, sizeof key); /* STORE-V3 */
    OPENSSL_cleanse(k, sizeof k);
    free(canon);
    return rc;
}

int sigv4_authorization(const sigv4_request *req, const sigv4_creds *cr, const char *amz_date,
                        char *out, size_t outlen)
{
    canon_hdr h[SIGV4_MAX_HEADERS];
    char sig[65];
    if (!cr || !cr->access_key || !out || !outlen)
        return DM_E_INVALID;
    int rc = sigv4_signature(req, cr, amz_date, sig);
    if (rc == 0)
        rc = prepare_headers(req, h);
    if (rc)
        return rc;
    sb b = {out, outlen, 0, 0};
    out[0] = '\0';
    sb_put(&b, "AWS4-HMAC-SHA256 Credential=");
    sb_put(&b, cr->access_key);
    sb_put(&b, "/");
    sb_putn(&b, amz_date, 8);
    sb_put(&b, "/");
    sb_put(&b, cr->region);
    sb_put(&b, "/");
    sb_put(&b, cr->service);
    sb_put(&b, "/aws4_request, SignedHeaders=");
    sb_signed_names(&b, h, req->nheaders);
    sb_put(&b, ", Signature=");
    sb_put(&b, sig);
    return b.over ? DM_E_TOO_BIG : 0;
}

/* STORE-V4: the query-string form (AWS "Authenticating Requests: Using Query
 * Parameters"): the X-Amz-* parameters are part of the canonical query, the
 * host is the one signed header, the payload is UNSIGNED-PAYLOAD, and the
 * signature is appended as the last parameter. */
int sigv4_presign(const sigv4_presign_req *req, const sigv4_creds *cr, const char *amz_date,
                  char *out, size_t outlen)
{
    if (!req || !cr || !cr->access_key || !cr->region || !cr->service || !req->method ||
        !req->scheme || !req->host || !req->path || req->path[0] != '/' || !out || !outlen ||
        req->expires_s < 1 || req->expires_s > 604800 || !valid_date(amz_date) ||
        strpbrk(req->host, "/?#@ \r\n"))
        return DM_E_INVALID;
    char cred[256], expires[24], query[2048], sig[65];
    int n = snprintf(cred, sizeof cred, "%s/%.8s/%s/%s/aws4_request", cr->access_key, amz_date,
                     cr->region, cr->service);
    if (n < 0 || (size_t)n >= sizeof cred)
        return DM_E_TOO_BIG;
    snprintf(expires, sizeof expires, "%ld", req->expires_s);
    int tok = req->session_token && req->session_token[0];
    sigv4_pair q[6] = {
        {"X-Amz-Algorithm", "AWS4-HMAC-SHA256"},
        {"X-Amz-Credential", cred},
        {"X-Amz-Date", amz_date},
        {"X-Amz-Expires", expires},
        {"X-Amz-SignedHeaders", "host"},
        {"X-Amz-Security-Token", tok ? req->session_token : ""},
    };
    int rc = sigv4_canonical_query(q, tok ? 6 : 5, query, sizeof query);
    if (rc)
        return rc;
    sigv4_pair host = {"host", req->host};
    sigv4_request r = {.method = req->method,
                       .path = req->path,
                       .query = query,
                       .headers = &host,
                       .nheaders = 1,
                       .payload_hash = "UNSIGNED-PAYLOAD"};
    if ((rc = sigv4_signature(&r, cr, amz_date, sig)) != 0)
        return rc;
    n = snprintf(out, outlen, "%s://%s%s?%s&X-Amz-Signature=%s", req->scheme, req->host, req->path,
                 query, sig);
    return n < 0 || (size_t)n >= outlen ? DM_E_TOO_BIG : 0;
}

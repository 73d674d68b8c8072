/* S3 requests (s3_http.h): URL and path building (path or virtual-hosted
 * style), SigV4 signing of every try (sigv4.c), one curl easy handle per
 * transfer from a pool (keep-alive across requests), answers routed by
 * status: 2xx bodies into the caller's fixed sink or a capped buffer, error
 * bodies into a 4 KiB buffer for <Code>/<Message>; retries with backoff and
 * jitter (store_s3.c S3-7). No global state: curl_global_init is done by
 * store_s3_open before any handle exists. */
#define _GNU_SOURCE
#include "store/s3_http.h"

#include "store/sigv4.h"
#include "store/store_backend.h"
#include "util/compat.h"
#include "util/error.h"
#include "util/log.h"
#include "util/parse.h"

#include <errno.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <time.h>

#define URL_MAX (STORE_KEY_MAX * 3 + 1024)

static void req_reset_response(s3_req *r)
{
    r->status = 0;
    r->got = 0;
    r->overflow = 0;
    free(r->dyn);
    r->dyn = NULL;
    r->dyn_len = 0;
    r->clen = r->total = 0;
    r->have_clen = r->have_total = 0;
    r->rsha[0] = r->etag[0] = r->errbody[0] = '\0';
    r->errbody_len = 0;
    r->curl_rc = 0;
    r->curl_err[0] = '\0';
    r->upos = 0;
}

void s3_req_done(s3_req *r)
{
    free(r->dyn);
    r->dyn = NULL;
}

/* Parses a decimal u64 of [s, s+n) with nothing else but spaces. */
int s3_parse_u64n(const char *s, size_t n, uint64_t *ret)
{
    char buf[32];
    while (n && (*s == ' ' || *s == '\t'))
        s++, n--;
    while (n && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\r' || s[n - 1] == '\n'))
        n--;
    if (n == 0 || n >= sizeof buf)
        return DM_E_INVALID;
    memcpy(buf, s, n);
    buf[n] = '\0';
    int64_t v;
    if (parse_i64(buf, 0, INT64_MAX, &v) != 0)
        return DM_E_INVALID;
    *ret = (uint64_t)v;
    return 0;
}

/* Copies a header value (trimmed) if it fits; else leaves out empty. */
static void header_value(const char *v, size_t n, char *out, size_t outlen)
{
    while (n && (*v == ' ' || *v == '\t'))
        v++, n--;
    while (n && (v[n - 1] == '\r' || v[n - 1] == '\n' || v[n - 1] == ' '))
        n--;
    out[0] = '\0';
    if (n >= outlen)
        return;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)v[i] < 0x20 || (unsigned char)v[i] > 0x7e)
            return;
    memcpy(out, v, n);
    out[n] = '\0';
}

static int hdr_is(const char *line, size_t n, const char *name, const char **ret_v, size_t *ret_n)
{
    size_t k = strlen(name);
    if (n <= k || strncasecmp(line, name, k) != 0 || line[k] != ':')
        return 0;
    *ret_v = line + k + 1;
    *ret_n = n - k - 1;
    return 1;
}

static size_t on_header(char *line, size_t size, size_t nmemb, void *ud)
{
    s3_req *r = ud;
    size_t n = size * nmemb;
    const char *v;
    size_t vn;
    if (n >= 5 && strncmp(line, "HTTP/", 5) == 0) { /* a new response (after 100) */
        r->have_clen = r->have_total = 0;
        r->rsha[0] = r->etag[0] = '\0';
        return n;
    }
    if (hdr_is(line, n, "content-length", &v, &vn)) {
        r->have_clen = s3_parse_u64n(v, vn, &r->clen) == 0;
    } else if (hdr_is(line, n, "content-range", &v, &vn)) {
        char cr[96];
        header_value(v, vn, cr, sizeof cr);
        const char *slash = strrchr(cr, '/');
        if (strncmp(cr, "bytes ", 6) == 0 && slash && slash[1] != '*')
            r->have_total = s3_parse_u64n(slash + 1, strlen(slash + 1), &r->total) == 0;
    } else if (hdr_is(line, n, "x-amz-meta-sha256", &v, &vn)) {
        header_value(v, vn, r->rsha, sizeof r->rsha);
        if (strlen(r->rsha) != 64 || strspn(r->rsha, "0123456789abcdef") != 64)
            r->rsha[0] = '\0';
    } else if (hdr_is(line, n, "etag", &v, &vn)) {
        header_value(v, vn, r->etag, sizeof r->etag);
        if (strpbrk(r->etag, "<>&"))
            r->etag[0] = '\0';
    }
    return n;
}

static size_t on_body(char *data, size_t size, size_t nmemb, void *ud)
{
    s3_req *r = ud;
    size_t n = size * nmemb;
    if (r->status >= 300) {
        size_t room = S3_ERRBODY_MAX - 1 - r->errbody_len;
        size_t k = n < room ? n : room;
        memcpy(r->errbody + r->errbody_len, data, k);
        r->errbody_len += k;
        r->errbody[r->errbody_len] = '\0';
        return n;
    }
    if (r->sink) {
        if (n > r->sink_cap - r->got) {
            r->overflow = 1;
            return 0; /* aborts the transfer: more than asked for (S3-8) */
        }
        memcpy(r->sink + r->got, data, n);
        r->got += n;
        return n;
    }
    if (n > S3_XML_MAX - r->dyn_len) {
        r->overflow = 1;
        return 0;
    }
    char *p = realloc(r->dyn, r->dyn_len + n + 1);
    if (!p)
        return 0;
    memcpy(p + r->dyn_len, data, n);
    r->dyn = p;
    r->dyn_len += n;
    r->dyn[r->dyn_len] = '\0';
    return n;
}

static size_t on_read(char *buf, size_t size, size_t nitems, void *ud)
{
    s3_req *r = ud;
    size_t n = size * nitems, left = r->body_len - r->upos;
    if (n > left)
        n = left;
    if (n)
        memcpy(buf, (const char *)r->body + r->upos, n);
    r->upos += n;
    return n;
}

static int on_seek(void *ud, curl_off_t off, int origin)
{
    s3_req *r = ud;
    if (origin != SEEK_SET || off < 0 || (uint64_t)off > r->body_len)
        return CURL_SEEKFUNC_CANTSEEK;
    r->upos = (size_t)off;
    return CURL_SEEKFUNC_OK;
}

/* The status line is parsed by curl; we need it before the body to route
 * error bodies apart from data, so a tiny header hook sets it. */
static size_t on_header_status(char *line, size_t size, size_t nmemb, void *ud)
{
    s3_req *r = ud;
    size_t n = size * nmemb;
    if (n >= 12 && strncmp(line, "HTTP/", 5) == 0) {
        const char *sp = memchr(line, ' ', n);
        uint64_t code;
        if (sp && (size_t)(sp - line) + 4 <= n && s3_parse_u64n(sp + 1, 3, &code) == 0)
            r->status = (long)code;
    }
    return on_header(line, size, nmemb, ud);
}

static CURL *pool_get(s3_conn *s)
{
    CURL *c = NULL;
    pthread_mutex_lock(&s->mu);
    if (s->npool > 0)
        c = s->pool[--s->npool];
    pthread_mutex_unlock(&s->mu);
    if (c)
        curl_easy_reset(c); /* keeps its connections alive */
    else
        c = curl_easy_init();
    return c;
}

static void pool_put(s3_conn *s, CURL *c)
{
    pthread_mutex_lock(&s->mu);
    if (s->npool < S3_POOL_MAX) {
        s->pool[s->npool++] = c;
        c = NULL;
    }
    pthread_mutex_unlock(&s->mu);
    if (c)
        curl_easy_cleanup(c);
}

/* "/bucket/prefix/key" (path style) or "/prefix/key", URI-encoded. */
static int build_path(const s3_conn *s, const char *key, char *out, size_t outlen)
{
    char raw[STORE_KEY_MAX + 256];
    int n;
    if (!key)
        n = snprintf(raw, sizeof raw, "%s%s", s->virtual_host ? "/" : "/",
                     s->virtual_host ? "" : s->bucket);
    else
        n = snprintf(raw, sizeof raw, "/%s%s%s%s%s", s->virtual_host ? "" : s->bucket,
                     s->virtual_host ? "" : "/", s->prefix, s->prefix[0] ? "/" : "", key);
    if (n < 0 || (size_t)n >= sizeof raw)
        return DM_E_TOO_BIG;
    return sigv4_uri_encode(raw, 1, out, outlen);
}

int s3_presign(const s3_conn *s, const char *method, const char *key, long expires_s, char *out,
               size_t outlen)
{
    char path[STORE_KEY_MAX * 3 + 256], host[sizeof s->hostport + 80], date[17];
    int rc = key ? build_path(s, key, path, sizeof path) : DM_E_INVALID;
    if (rc)
        return rc;
    snprintf(host, sizeof host, "%s%s%s", s->virtual_host ? s->bucket : "",
             s->virtual_host ? "." : "", s->hostport);
    sigv4_amz_date(time(NULL), date);
    sigv4_creds cr = {s->access_key, s->secret_key, s->region, "s3"};
    sigv4_presign_req r = {.method = method,
                           .scheme = s->scheme,
                           .host = host,
                           .path = path,
                           .session_token = s->session_token,
                           .expires_s = expires_s};
    return sigv4_presign(&r, &cr, date, out, outlen);
}

static struct curl_slist *add_header(struct curl_slist *l, int *ok, const char *name,
                                     const char *value)
{
    char line[2300];
    if (!*ok)
        return l;
    int n = snprintf(line, sizeof line, "%s: %s", name, value);
    struct curl_slist *nl = n > 0 && (size_t)n < sizeof line ? curl_slist_append(l, line) : NULL;
    if (!nl)
        *ok = 0;
    OPENSSL_cleanse(line, sizeof line);
    return nl ? nl : l;
}

/* Signs r and builds its header list (S3-1). */
static int sign_headers(const s3_conn *s, const s3_req *r, const char *host, const char *path,
                        const char *phash, struct curl_slist **ret)
{
    char date[17], auth[SIGV4_AUTH_MAX];
    sigv4_pair h[8];
    size_t n = 0;
    sigv4_amz_date(time(NULL), date);
    h[n++] = (sigv4_pair){"host", host};
    h[n++] = (sigv4_pair){"x-amz-date", date};
    h[n++] = (sigv4_pair){"x-amz-content-sha256", phash};
    if (r->range)
        h[n++] = (sigv4_pair){"range", r->range};
    if (r->meta_sha)
        h[n++] = (sigv4_pair){"x-amz-meta-sha256", r->meta_sha};
    if (s->session_token[0])
        h[n++] = (sigv4_pair){"x-amz-security-token", s->session_token};
    sigv4_request sr = {r->method, path, r->query ? r->query : "", h, n, phash};
    sigv4_creds cr = {s->access_key, s->secret_key, s->region, "s3"};
    int rc = sigv4_authorization(&sr, &cr, date, auth, sizeof auth);
    if (rc)
        return rc;
    int ok = 1;
    struct curl_slist *l = NULL;
    for (size_t i = 0; i < n; i++)
        l = add_header(l, &ok, h[i].name, h[i].value);
    l = add_header(l, &ok, "Authorization", auth);
    if (ok) /* no 100-continue round trip */
        l = curl_slist_append(l, "Expect:");
    if (r->content_type)
        l = add_header(l, &ok, "Content-Type", r->content_type);
    else if (ok)
        l = curl_slist_append(l, "Content-Type:");
    if (!ok || !l) {
        curl_slist_free_all(l);
        return -ENOMEM;
    }
    *ret = l;
    return 0;
}

/* One try: 0 when an HTTP answer came (any status), else the curl code. */
static int perform_once(s3_conn *s, s3_req *r)
{
    char path[STORE_KEY_MAX * 3 + 256], host[sizeof s->hostport + 80], url[URL_MAX], phash[65];
    struct curl_slist *hl = NULL;
    int rc = build_path(s, r->key, path, sizeof path);
    if (rc)
        return rc;
    snprintf(host, sizeof host, "%s%s%s", s->virtual_host ? s->bucket : "",
             s->virtual_host ? "." : "", s->hostport);
    int n = snprintf(url, sizeof url, "%s://%s%s%s%s", s->scheme, host, path,
                     r->query && *r->query ? "?" : "", r->query ? r->query : "");
    if (n < 0 || (size_t)n >= sizeof url)
        return DM_E_TOO_BIG;
    if (r->payload_hash)
        snprintf(phash, sizeof phash, "%s", r->payload_hash);
    else
        sigv4_sha256_hex(r->body ? r->body : "", r->body_len, phash);
    if ((rc = sign_headers(s, r, host, path, phash, &hl)) != 0)
        return rc;
    CURL *c = pool_get(s);
    if (!c) {
        curl_slist_free_all(hl);
        return -ENOMEM;
    }
    curl_easy_setopt(c, CURLOPT_URL, url);
    compat_http_only(c); /* COMPAT-C1 */
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, hl);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, 10L);
    curl_easy_setopt(c, CURLOPT_LOW_SPEED_LIMIT, 1L); /* a stalled transfer is a timeout */
    curl_easy_setopt(c, CURLOPT_LOW_SPEED_TIME, 30L);
    curl_easy_setopt(c, CURLOPT_ERRORBUFFER, r->curl_err);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header_status);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, r);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, r);
    /* big buffers: fewer syscalls and callbacks per MiB moved */
    curl_easy_setopt(c, CURLOPT_BUFFERSIZE, 512L * 1024L);
    curl_easy_setopt(c, CURLOPT_UPLOAD_BUFFERSIZE, 1024L * 1024L);
    curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, 1L);
    curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, 2L);
    if (s->ca_file[0])
        curl_easy_setopt(c, CURLOPT_CAINFO, s->ca_file);
    if (strcmp(r->method, "GET") == 0) {
        curl_easy_setopt(c, CURLOPT_HTTPGET, 1L);
    } else if (strcmp(r->method, "HEAD") == 0) {
        curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
    } else if (strcmp(r->method, "PUT") == 0 || strcmp(r->method, "POST") == 0) {
        int put = r->method[1] == 'U';
        curl_easy_setopt(c, put ? CURLOPT_UPLOAD : CURLOPT_POST, 1L);
        curl_easy_setopt(c, CURLOPT_READFUNCTION, on_read);
        curl_easy_setopt(c, CURLOPT_READDATA, r);
        curl_easy_setopt(c, CURLOPT_SEEKFUNCTION, on_seek);
        curl_easy_setopt(c, CURLOPT_SEEKDATA, r);
        curl_easy_setopt(c, put ? CURLOPT_INFILESIZE_LARGE : CURLOPT_POSTFIELDSIZE_LARGE,
                         (curl_off_t)r->body_len);
    } else {
        curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, r->method);
    }
    CURLcode cc = curl_easy_perform(c);
    long status = 0;
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    pool_put(s, c);
    curl_slist_free_all(hl);
    if (cc == CURLE_WRITE_ERROR && r->overflow)
        cc = CURLE_OK; /* we stopped it: the caller sees overflow */
    r->curl_rc = (int)cc;
    if (cc != CURLE_OK)
        return (int)cc;
    r->status = status;
    return 0;
}

static int retryable_curl(int cc)
{
    switch (cc) {
    case CURLE_COULDNT_CONNECT:
    case CURLE_OPERATION_TIMEDOUT:
    case CURLE_SEND_ERROR:
    case CURLE_RECV_ERROR:
    case CURLE_GOT_NOTHING:
    case CURLE_PARTIAL_FILE:
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_HTTP2:
    case CURLE_HTTP2_STREAM:
        return 1;
    default:
        return 0;
    }
}

/* Copies the text of the first <tag>...</tag> in [xml, end) into out;
 * 0, or DM_E_NOT_FOUND / DM_E_TOO_BIG. Never reads past end (S3-8). */
int s3_xml_text(const char *xml, const char *end, const char *tag, char *out, size_t outlen,
                const char **ret_after)
{
    char open[48], close[48];
    snprintf(open, sizeof open, "<%s>", tag);
    snprintf(close, sizeof close, "</%s>", tag);
    const char *a = memmem(xml, (size_t)(end - xml), open, strlen(open));
    if (!a)
        return DM_E_NOT_FOUND;
    a += strlen(open);
    const char *b = memmem(a, (size_t)(end - a), close, strlen(close));
    if (!b)
        return DM_E_NOT_FOUND;
    size_t o = 0;
    for (const char *p = a; p < b; p++) { /* decode the predefined entities */
        char ch = *p;
        if (ch == '&') {
            static const struct {
                const char *e;
                char c;
            } ents[] = {
                {"&amp;", '&'}, {"&lt;", '<'}, {"&gt;", '>'}, {"&quot;", '"'}, {"&apos;", '\''}};
            size_t i, k = 0;
            for (i = 0; i < 5; i++) {
                k = strlen(ents[i].e);
                if ((size_t)(b - p) >= k && memcmp(p, ents[i].e, k) == 0)
                    break;
            }
            if (i == 5)
                return DM_E_INVALID;
            ch = ents[i].c;
            p += k - 1;
        }
        if (o + 1 >= outlen)
            return DM_E_TOO_BIG;
        out[o++] = ch;
    }
    out[o] = '\0';
    if (ret_after)
        *ret_after = b + strlen(close);
    return 0;
}

/* Printable ASCII only, for messages from the server (S3-8). */
static void scrub(char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s < 0x20 || (unsigned char)*s > 0x7e)
            *s = '?';
}

/* The error of a finished request as one line (S3-7, S3-8). */
int s3_fail(const s3_conn *s, const s3_req *r, int tries, const char *what, const char *key,
            char *err, size_t errlen)
{
    char code[64] = "", msg[160] = "";
    const char *k = key ? key : "";
    if (r->curl_rc)
        return dm_fail(err, errlen,
                       r->curl_rc == CURLE_PEER_FAILED_VERIFICATION ? DM_E_UNAUTHORIZED
                                                                    : DM_E_UNAVAILABLE,
                       "s3: cannot reach %s://%s: %s (%d tries; %s %s)", s->scheme, s->hostport,
                       curl_easy_strerror(r->curl_rc), tries, what, k);
    const char *end = r->errbody + r->errbody_len;
    s3_xml_text(r->errbody, end, "Code", code, sizeof code, NULL);
    s3_xml_text(r->errbody, end, "Message", msg, sizeof msg, NULL);
    scrub(code);
    scrub(msg);
    if (strcmp(code, "NoSuchBucket") == 0)
        return dm_fail(err, errlen, DM_E_NOT_FOUND, "s3: bucket '%s' does not exist at %s://%s",
                       s->bucket, s->scheme, s->hostport);
    if (strcmp(code, "InvalidAccessKeyId") == 0 || strcmp(code, "SignatureDoesNotMatch") == 0 ||
        strcmp(code, "AccessDenied") == 0 || r->status == 401 || r->status == 403)
        return dm_fail(err, errlen, DM_E_UNAUTHORIZED,
                       "s3: %s %s: access refused (%s): check the credentials "
                       "(AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY or B2_KEY_ID/B2_APPLICATION_KEY)",
                       what, k, code[0] ? code : "HTTP 403");
    if (r->status == 404)
        return dm_fail(err, errlen, DM_E_NOT_FOUND, "s3: %s %s: not found", what, k);
    if (r->overflow)
        return dm_fail(err, errlen, DM_E_PROTOCOL, "s3: %s %s: the answer is longer than asked for",
                       what, k);
    return dm_fail(err, errlen,
                   r->status >= 500 || r->status == 429 ? DM_E_UNAVAILABLE : DM_E_PROTOCOL,
                   "s3: %s %s: HTTP %ld%s%s%s%s%s", what, k, r->status, code[0] ? " " : "", code,
                   msg[0] ? " (" : "", msg, msg[0] ? ")" : "");
}

void s3_backoff_sleep(int attempt)
{
    uint32_t rnd = 0;
    if (getrandom(&rnd, sizeof rnd, GRND_NONBLOCK) != (ssize_t)sizeof rnd)
        rnd = (uint32_t)time(NULL) * 2654435761u;
    uint64_t ms = 250ull << (attempt > 5 ? 5 : attempt);
    if (ms > 8000)
        ms = 8000;
    ms = ms / 2 + rnd % (ms / 2 + 1); /* "equal jitter" */
    struct timespec ts = {(time_t)(ms / 1000), (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

int s3_retryable(const s3_req *r, char *reason, size_t reasonlen)
{
    if (r->curl_rc) {
        snprintf(reason, reasonlen, "%s", curl_easy_strerror(r->curl_rc));
        return retryable_curl(r->curl_rc);
    }
    char code[64] = "";
    s3_xml_text(r->errbody, r->errbody + r->errbody_len, "Code", code, sizeof code, NULL);
    scrub(code);
    snprintf(reason, reasonlen, "HTTP %ld%s%s", r->status, code[0] ? " " : "", code);
    return r->status >= 500 || r->status == 429 || strcmp(code, "RequestTimeout") == 0 ||
           strcmp(code, "SlowDown") == 0;
}

void s3_note_retry(const char *what, const char *key, int next_try, const char *reason)
{
    char q[160], o[40];
    store_count_retry(); /* store_stats.c STORE-SS3 */
    log_warn("store.s3.retry", "op=%s key=%s try=%d reason=%s", log_quote(o, sizeof o, what),
             key ? key : "", next_try, log_quote(q, sizeof q, reason));
}

/* The counted operation (store_stats.c STORE-SS2) of a request named `what`. */
static store_op op_of(const char *what)
{
    static const struct {
        const char *what;
        store_op op;
    } ops[] = {{"get", STORE_OP_GET},
               {"put", STORE_OP_PUT},
               {"head", STORE_OP_HEAD},
               {"list", STORE_OP_LIST},
               {"delete", STORE_OP_DELETE}};
    for (size_t i = 0; i < sizeof ops / sizeof ops[0]; i++)
        if (strcmp(what, ops[i].what) == 0)
            return ops[i].op;
    return STORE_OP_MULTIPART; /* start, upload part, complete, abort */
}

/* Runs r with retries (S3-7), each one logged with its reason and counted
 * (s3_note_retry). Returns 0 when a final HTTP answer came (the caller checks
 * r->status), else the error, as one line in err. Every attempt is counted
 * (store_stats.c STORE-SS3). */
int s3_do(s3_conn *s, s3_req *r, const char *what, char *err, size_t errlen)
{
    int t, tries = r->tries > 0 ? r->tries : s->tries;
    char reason[128] = "";
    store_op op = op_of(what);
    for (t = 0; t < tries; t++) {
        if (t) {
            s3_note_retry(what, r->key, t + 1, reason);
            s3_backoff_sleep(t - 1);
        }
        req_reset_response(r);
        int rc = perform_once(s, r);
        if (rc < 0) /* ours, not curl's: nothing was sent */
            return dm_fail(err, errlen, rc, "s3: %s %s: %s", what, r->key ? r->key : "",
                           dm_strerror(rc));
        store_count_http(op, rc > 0 ? 0 : r->status);
        if (!s3_retryable(r, reason, sizeof reason)) {
            if (rc > 0)
                break;
            return 0;
        }
    }
    return s3_fail(s, r, t < tries ? t + 1 : t, what, r->key, err, errlen);
}

/* "abc" or abc: the 32 hex digits of an MD5, lowercased, into out[33]. */
static int etag_md5(const char *etag, char out[33])
{
    size_t n = strlen(etag), i = 0;
    if (n >= 2 && etag[0] == '"' && etag[n - 1] == '"')
        etag++, n -= 2;
    for (; i < n && i < 32; i++) {
        if (!strchr("0123456789abcdefABCDEF", etag[i]) || !etag[i])
            return 0;
        out[i] = (char)(etag[i] | 0x20);
    }
    out[32] = '\0';
    return i == 32 && (n == 32 || etag[32] == '-');
}

int s3_multipart_etag_matches(const char *etag, char (*part_etags)[128], size_t nparts)
{
    char want[33], got[33];
    const char *dash = strchr(etag, '-');
    if (!dash || !etag_md5(etag, got))
        return 1; /* not S3's multipart form: nothing to compare */
    unsigned long long n = strtoull(dash + 1, NULL, 10);
    uint8_t *digests = malloc(nparts * 16 + 1);
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    int ok = digests && md ? 1 : -1; /* -1: nothing to compare */
    for (size_t i = 0; ok && i < nparts; i++) {
        char hex[33];
        if (!etag_md5(part_etags[i], hex) || strchr(part_etags[i], '-')) {
            ok = -1; /* a part ETag that is no MD5 (SSE-KMS, some gateways) */
            break;
        }
        for (int k = 0; k < 16; k++)
            digests[i * 16 + (size_t)k] =
                (uint8_t)strtoul((char[3]){hex[2 * k], hex[2 * k + 1], 0}, NULL, 16);
    }
    unsigned char d[EVP_MAX_MD_SIZE];
    unsigned int dl = 0;
    if (ok == 1 &&
        !(EVP_DigestInit_ex(md, EVP_md5(), NULL) && EVP_DigestUpdate(md, digests, nparts * 16) &&
          EVP_DigestFinal_ex(md, d, &dl) && dl == 16))
        ok = -1; /* no MD5 here (a FIPS build): nothing to compare */
    if (ok == 1)
        for (int k = 0; k < 16; k++)
            snprintf(want + 2 * k, 3, "%02x", d[k]);
    EVP_MD_CTX_free(md);
    free(digests);
    if (ok == -1)
        return 1;
    return ok == 1 && n == nparts && strcmp(want, got) == 0;
}

/* ---- parallel helper ------------------------------------------------------ */

typedef struct {
    s3_job_fn fn;
    void *ctx;
    size_t n;
    atomic_size_t next;
    atomic_int failed;
    pthread_mutex_t mu;
    int rc;
    char *err;
    size_t errlen;
} par;

static void *par_main(void *arg)
{
    par *p = arg;
    char err[512];
    for (;;) {
        size_t i = atomic_fetch_add(&p->next, 1);
        if (i >= p->n || atomic_load(&p->failed))
            break;
        err[0] = '\0';
        int rc = p->fn(p->ctx, i, err, sizeof err);
        if (rc) {
            pthread_mutex_lock(&p->mu);
            if (!p->rc) {
                p->rc = rc;
                if (p->err)
                    snprintf(p->err, p->errlen, "%s", err);
            }
            pthread_mutex_unlock(&p->mu);
            atomic_store(&p->failed, 1);
        }
    }
    return NULL;
}

/* Runs fn(ctx, i) for i in [0, n) on up to workers threads; the first
 * failure stops the rest and is returned with its message. */
int s3_par_run(s3_job_fn fn, void *ctx, size_t n, int workers, char *err, size_t errlen)
{
    par p = {.fn = fn, .ctx = ctx, .n = n, .err = err, .errlen = errlen};
    atomic_init(&p.next, 0);
    atomic_init(&p.failed, 0);
    pthread_mutex_init(&p.mu, NULL);
    pthread_t th[64];
    int started = 0;
    if (workers > 64)
        workers = 64;
    if ((size_t)workers > n)
        workers = (int)n;
    for (int i = 1; i < workers; i++) /* this thread is worker 0 */
        if (pthread_create(&th[started], NULL, par_main, &p) == 0)
            started++;
    par_main(&p);
    for (int i = 0; i < started; i++)
        pthread_join(th[i], NULL);
    pthread_mutex_destroy(&p.mu);
    return p.rc;
}

void s3_conn_init(s3_conn *c)
{
    pthread_mutex_init(&c->mu, NULL);
    c->npool = 0;
}

void s3_conn_done(s3_conn *c)
{
    for (int i = 0; i < c->npool; i++)
        curl_easy_cleanup(c->pool[i]);
    c->npool = 0;
    pthread_mutex_destroy(&c->mu);
}

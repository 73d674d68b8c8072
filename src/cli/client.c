/* HTTP+JSON client of the Dumont REST API (see client.h for CLIENT-C1 to CLIENT-C5).
 *
 * One curl easy handle per client, reset before every request so that no
 * option leaks from one request into the next while the connection cache is
 * kept (the --wait poll reuses one connection). The body is gathered into a
 * buffer that refuses to grow past CLIENT_BODY_MAX (CLIENT-C1). */
#include "cli/client.h"

#include "util/compat.h"
#include "util/error.h"
#include "util/secret.h"

#include <curl/curl.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

struct dm_client {
    CURL *curl;
    char base[1024];
    char auth[SECRET_TOKEN_MAX + 32]; /* "Authorization: Bearer ..."; empty: none (CLIENT-C5) */
    char token_err[512];
    long timeout_ms;    /* total per request (CLIENT-C1) */
    char ca_file[4096]; /* CLIENT-C6: "" trusts the system's CAs */
};

typedef struct {
    char *data;
    size_t len, cap;
    int too_big;
} body_buf;

int client_new(const char *base_url, const char *token, const char *token_err, dm_client **ret)
{
    dm_client *cl = calloc(1, sizeof *cl);
    if (!cl)
        return -ENOMEM;
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
        goto fail;
    cl->curl = curl_easy_init();
    if (!cl->curl)
        goto fail;
    snprintf(cl->base, sizeof cl->base, "%s", base_url);
    cl->timeout_ms = CLIENT_TIMEOUT_MS;
    if (token && *token && strlen(token) < SECRET_TOKEN_MAX)
        snprintf(cl->auth, sizeof cl->auth, "Authorization: Bearer %s", token);
    snprintf(cl->token_err, sizeof cl->token_err, "%s",
             token_err && *token_err ? token_err : "the server refused the API token");
    *ret = cl;
    return 0;
fail:
    client_free(cl);
    return -ENOMEM;
}

void client_set_timeout(dm_client *cl, long timeout_ms)
{
    cl->timeout_ms = timeout_ms > 0 ? timeout_ms : CLIENT_TIMEOUT_MS;
}

void client_set_ca_file(dm_client *cl, const char *path)
{
    snprintf(cl->ca_file, sizeof cl->ca_file, "%s", path ? path : "");
}

void client_free(dm_client *cl)
{
    if (!cl)
        return;
    if (cl->curl) {
        curl_easy_cleanup(cl->curl);
        curl_global_cleanup();
    }
    /* CLIENT-C2: the token does not outlive the client in memory we hand back. */
    explicit_bzero(cl->auth, sizeof cl->auth);
    free(cl);
}

void client_resp_done(client_resp *r)
{
    if (!r)
        return;
    free(r->body);
    json_decref(r->json);
    memset(r, 0, sizeof *r);
}

static size_t on_body(char *ptr, size_t size, size_t nmemb, void *userdata)
{
    body_buf *b = userdata;
    size_t n = size * nmemb;
    if (n > CLIENT_BODY_MAX - b->len) {
        b->too_big = 1;
        return 0; /* makes curl stop with CURLE_WRITE_ERROR */
    }
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 4096;
        while (cap < b->len + n + 1)
            cap *= 2;
        char *p = realloc(b->data, cap);
        if (!p)
            return 0;
        b->data = p;
        b->cap = cap;
    }
    memcpy(b->data + b->len, ptr, n);
    b->len += n;
    b->data[b->len] = '\0';
    return n;
}

/* The one line the user sees when the transfer itself failed (CLIENT-C3). */
static int transport_error(const dm_client *cl, CURLcode cc, const body_buf *b, char *err,
                           size_t errlen)
{
    switch (cc) {
    case CURLE_WRITE_ERROR:
        if (b->too_big)
            return dm_fail(err, errlen, DM_E_TOO_BIG,
                           "the server's answer is larger than %u MiB; refused",
                           CLIENT_BODY_MAX >> 20);
        return dm_fail(err, errlen, -ENOMEM, "out of memory reading the server's answer");
    case CURLE_FILESIZE_EXCEEDED:
        return dm_fail(err, errlen, DM_E_TOO_BIG,
                       "the server's answer is larger than %u MiB; refused", CLIENT_BODY_MAX >> 20);
    case CURLE_UNSUPPORTED_PROTOCOL:
    case CURLE_URL_MALFORMAT:
        return dm_fail(err, errlen, DM_E_INVALID,
                       "DUMONT_URL '%s' is not an http:// or https:// URL", cl->base);
    case CURLE_OPERATION_TIMEDOUT:
        return dm_fail(err, errlen, DM_E_UNAVAILABLE,
                       "the Dumont server at %s did not answer in time (is it running? "
                       "start it with: dumont server)",
                       cl->base);
    case CURLE_PEER_FAILED_VERIFICATION:
        return dm_fail(err, errlen, DM_E_UNAVAILABLE,
                       "the TLS certificate of the Dumont server at %s is not trusted (a private "
                       "CA? set DUMONT_CA_FILE to its certificate)",
                       cl->base);
    case CURLE_SSL_CACERT_BADFILE:
        return dm_fail(err, errlen, DM_E_INVALID,
                       "cannot read the CA certificates in DUMONT_CA_FILE (%s)", cl->ca_file);
    case CURLE_SSL_CONNECT_ERROR:
        return dm_fail(err, errlen, DM_E_UNAVAILABLE,
                       "TLS handshake with the Dumont server at %s failed (does it serve "
                       "https? is DUMONT_URL's scheme right?)",
                       cl->base);
    case CURLE_GOT_NOTHING:
    case CURLE_RECV_ERROR:
    case CURLE_SEND_ERROR:
        return dm_fail(err, errlen, DM_E_UNAVAILABLE,
                       "the Dumont server at %s closed the connection without an answer", cl->base);
    default:
        return dm_fail(err, errlen, DM_E_UNAVAILABLE,
                       "cannot reach the Dumont server at %s (is it running? start it with: "
                       "dumont server)",
                       cl->base);
    }
}

static int status_code(long status)
{
    switch (status) {
    case 400:
        return DM_E_INVALID;
    case 401:
        return DM_E_UNAUTHORIZED;
    case 404:
        return DM_E_NOT_FOUND;
    case 405:
        return DM_E_INVALID;
    case 409:
        return DM_E_CONFLICT;
    case 413:
        return DM_E_TOO_BIG;
    case 503:
        return DM_E_BUSY;
    default:
        return status >= 500 ? DM_E_INTERNAL : DM_E_PROTOCOL;
    }
}

/* CLIENT-C4: the error answer's detail, else its error code, else the bare status. */
static int api_error(const dm_client *cl, const client_resp *r, char *err, size_t errlen)
{
    int code = status_code(r->status);
    if (r->status == 401 && !cl->auth[0])
        return dm_fail(err, errlen, code, "%s", cl->token_err); /* CLIENT-C5 */
    const char *detail = json_string_value(json_object_get(r->json, "detail"));
    const char *error = json_string_value(json_object_get(r->json, "error"));
    if (detail && *detail)
        return dm_fail(err, errlen, code, "%s", detail);
    if (error && *error)
        return dm_fail(err, errlen, code, "%s (HTTP %ld)", error, r->status);
    return dm_fail(err, errlen, code, "the server answered HTTP %ld", r->status);
}

static int set_request(dm_client *cl, const char *method, const char *url, const char *body,
                       struct curl_slist **hdrs, body_buf *b)
{
    CURL *c = cl->curl;
    struct curl_slist *h = NULL, *t;
    const char *lines[] = {"Accept: application/json", "Content-Type: application/json",
                           "Expect:", cl->auth[0] ? cl->auth : NULL};
    for (size_t i = 0; i < sizeof lines / sizeof lines[0] && lines[i]; i++) {
        if (!(t = curl_slist_append(h, lines[i]))) {
            curl_slist_free_all(h);
            return -ENOMEM;
        }
        h = t;
    }
    *hdrs = h;
    curl_easy_reset(c);
    int bad = curl_easy_setopt(c, CURLOPT_URL, url) != CURLE_OK;
    bad |= curl_easy_setopt(c, CURLOPT_HTTPHEADER, h) != CURLE_OK;
    bad |= curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L) != CURLE_OK;
    bad |= curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, CLIENT_CONNECT_TIMEOUT_MS) != CURLE_OK;
    bad |= curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, cl->timeout_ms) != CURLE_OK;
    bad |= curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L) != CURLE_OK;
    bad |= compat_http_only(c) != CURLE_OK; /* COMPAT-C1 */
    if (cl->ca_file[0]) /* CLIENT-C6: verification stays on; only the trust anchors change */
        bad |= curl_easy_setopt(c, CURLOPT_CAINFO, cl->ca_file) != CURLE_OK;
    bad |= curl_easy_setopt(c, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)CLIENT_BODY_MAX) != CURLE_OK;
    bad |= curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body) != CURLE_OK;
    bad |= curl_easy_setopt(c, CURLOPT_WRITEDATA, b) != CURLE_OK;
    bad |= curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method) != CURLE_OK;
    if (strcmp(method, "GET") != 0) {
        bad |= curl_easy_setopt(c, CURLOPT_POSTFIELDS, body ? body : "") != CURLE_OK;
        bad |=
            curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, (long)(body ? strlen(body) : 0)) != CURLE_OK;
    }
    return bad ? DM_E_INTERNAL : 0;
}

/* Moves the answer into ret: status, body, JSON; then CLIENT-C4. */
static int take_response(dm_client *cl, body_buf *b, client_resp *ret, char *err, size_t errlen)
{
    curl_easy_getinfo(cl->curl, CURLINFO_RESPONSE_CODE, &ret->status);
    ret->body = b->data ? b->data : strdup("");
    ret->body_len = b->len;
    b->data = NULL;
    if (!ret->body)
        return dm_fail(err, errlen, -ENOMEM, "out of memory");
    ret->json = json_loadb(ret->body, ret->body_len, JSON_REJECT_DUPLICATES, NULL);
    if (ret->status < 200 || ret->status > 299)
        return api_error(cl, ret, err, errlen);
    if (!ret->json)
        return dm_fail(err, errlen, DM_E_PROTOCOL,
                       "the server at %s answered HTTP %ld with a body that is not JSON", cl->base,
                       ret->status);
    return 0;
}

int client_call(dm_client *cl, const char *method, const char *path, const json_t *body,
                client_resp *ret, char *err, size_t errlen)
{
    struct curl_slist *hdrs = NULL;
    body_buf b = {0};
    char *body_text = NULL;
    char url[sizeof cl->base + CLIENT_PATH_MAX];
    int rc;

    memset(ret, 0, sizeof *ret);
    if (strlen(path) >= CLIENT_PATH_MAX) {
        rc = dm_fail(err, errlen, DM_E_TOO_BIG, "request path too long");
        goto out;
    }
    snprintf(url, sizeof url, "%s%s", cl->base, path);
    if (body && !(body_text = json_dumps(body, JSON_COMPACT))) {
        rc = dm_fail(err, errlen, -ENOMEM, "out of memory");
        goto out;
    }
    if (body_text && strlen(body_text) > CLIENT_REQ_BODY_MAX) {
        rc = dm_fail(err, errlen, DM_E_TOO_BIG, "request body over %u KiB",
                     CLIENT_REQ_BODY_MAX >> 10);
        goto out;
    }
    rc = set_request(cl, method, url, body_text, &hdrs, &b);
    if (rc) {
        rc = dm_fail(err, errlen, rc, "cannot prepare the HTTP request");
        goto out;
    }
    CURLcode cc = curl_easy_perform(cl->curl);
    if (cc != CURLE_OK) {
        rc = transport_error(cl, cc, &b, err, errlen);
        goto out;
    }
    rc = take_response(cl, &b, ret, err, errlen);
out:
    curl_slist_free_all(hdrs);
    free(b.data);
    free(body_text);
    return rc;
}

int client_query_add(char *buf, size_t cap, const char *key, const char *value)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t n = strlen(buf);
    int w = snprintf(buf + n, cap - n, "%c%s=", strchr(buf, '?') ? '&' : '?', key);
    if (w < 0 || (size_t)w >= cap - n)
        return DM_E_TOO_BIG;
    n += (size_t)w;
    for (const unsigned char *p = (const unsigned char *)value; *p; p++) {
        int plain = (*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') ||
                    (*p >= '0' && *p <= '9') || strchr("-._~:", *p);
        if (n + (plain ? 1 : 3) >= cap)
            return DM_E_TOO_BIG;
        if (plain) {
            buf[n++] = (char)*p;
        } else {
            buf[n++] = '%';
            buf[n++] = hex[*p >> 4];
            buf[n++] = hex[*p & 15];
        }
    }
    buf[n] = '\0';
    return 0;
}

static size_t skip_ws(const char *t, size_t i, size_t len)
{
    while (i < len && t[i] && strchr(" \t\r\n", t[i]))
        i++;
    return i;
}

static void newline(FILE *out, int depth)
{
    fputc('\n', out);
    for (int i = 0; i < depth; i++)
        fputs("  ", out);
}

void client_json_pretty(const char *t, size_t len, FILE *out)
{
    int depth = 0;
    for (size_t i = skip_ws(t, 0, len); i < len; i = skip_ws(t, i, len)) {
        char c = t[i++];
        if (c == '"') {
            size_t s = i - 1;
            while (i < len && t[i] != '"')
                i += (t[i] == '\\' && i + 1 < len) ? 2 : 1;
            i = i < len ? i + 1 : len;
            fwrite(t + s, 1, i - s, out);
        } else if (c == '{' || c == '[') {
            size_t j = skip_ws(t, i, len);
            fputc(c, out);
            if (j < len && t[j] == (c == '{' ? '}' : ']')) {
                fputc(t[j], out);
                i = j + 1;
            } else {
                newline(out, ++depth);
            }
        } else if (c == '}' || c == ']') {
            newline(out, depth > 0 ? --depth : 0);
            fputc(c, out);
        } else if (c == ',') {
            fputc(c, out);
            newline(out, depth);
        } else if (c == ':') {
            fputs(": ", out);
        } else {
            fputc(c, out);
        }
    }
    fputc('\n', out);
}

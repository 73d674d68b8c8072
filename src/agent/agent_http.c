/* The agent's HTTP requests (agent_http.h AG-AH1 to AG-AH2). */
#include "agent/agent_http.h"

#include "util/compat.h"

#include <curl/curl.h>
#include <stdio.h>
#include <string.h>

static size_t on_data(char *p, size_t sz, size_t n, void *ctx)
{
    agent_req *r = ctx;
    size_t add = sz * n;
    if (r->len + add >= r->cap) /* AG-AH1 */
        return 0;
    memcpy(r->buf + r->len, p, add);
    r->len += add;
    r->buf[r->len] = '\0';
    return add;
}

static int on_progress(void *ctx, curl_off_t dt, curl_off_t dn, curl_off_t ut, curl_off_t un)
{
    const agent_req *r = ctx;
    return atomic_load(r->abort) ? 1 : 0;
}

long agent_http(agent_req *r, char *err, size_t errlen)
{
    char auth[512];
    CURL *c = curl_easy_init();
    struct curl_slist *h = NULL;
    long status = 0;
    r->len = 0;
    if (r->cap)
        r->buf[0] = '\0';
    if (r->json)
        h = curl_slist_append(h, "Content-Type: application/json");
    if (r->token) {
        snprintf(auth, sizeof auth, "Authorization: Bearer %s", r->token);
        h = curl_slist_append(h, auth);
        explicit_bzero(auth, sizeof auth); /* AG-AH2: curl keeps its own copy */
    }
    if (r->header)
        h = curl_slist_append(h, r->header);
    if (!c || ((r->json || r->token || r->header) && !h)) {
        if (err)
            snprintf(err, errlen, "out of memory");
        goto out;
    }
    curl_easy_setopt(c, CURLOPT_URL, r->url);
    if (r->method)
        curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, r->method);
    compat_http_only(c); /* COMPAT-C1 */
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    if (r->ca_file && r->ca_file[0]) /* AG-AH3 */
        curl_easy_setopt(c, CURLOPT_CAINFO, r->ca_file);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, r->timeout_ms > 0 ? r->timeout_ms : 10000L);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
    if (r->json)
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, r->json);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_data);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, r);
    if (r->abort) {
        curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, on_progress);
        curl_easy_setopt(c, CURLOPT_XFERINFODATA, r);
        curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
    }
    CURLcode cc = curl_easy_perform(c);
    if (cc == CURLE_OK)
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    else if (err)
        snprintf(err, errlen, "%s", curl_easy_strerror(cc));
out:
    curl_slist_free_all(h);
    curl_easy_cleanup(c);
    return status;
}

/* Database URLs in messages: never a password.
 *
 * A postgresql:// URL may hold a password in its userinfo
 * (postgresql://user:secret@host/db) or its query (?password=secret). Any
 * URL or driver message that goes to a human passes through here first.
 *
 * DB-U1: db_url_redact() keeps only scheme, user, host, port and database; the
 *     query is replaced by "?..." whatever it holds.
 * DB-U2: db_url_scrub() removes each password of the URL, as written and as
 *     percent-decoded, from a message (libpq quotes bad URI tokens verbatim). */
#include "db/db_internal.h"

#include "util/hex.h"

#include <stdio.h>
#include <string.h>

#define URL_SECRET_MAX 256

static size_t span_until(const char *s, const char *stop)
{
    return strcspn(s, stop);
}

void db_url_redact(const char *url, char *out, size_t outlen)
{
    if (!out || !outlen)
        return;
    const char *sep = url ? strstr(url, "://") : NULL;
    if (!sep) {
        snprintf(out, outlen, "%s",
                 url && strchr(url, '=') ? "(connection string)"
                 : url                   ? url
                                         : "");
        return;
    }
    const char *auth = sep + 3;
    size_t alen = span_until(auth, "/?");
    const char *at = NULL;
    for (const char *p = auth; p < auth + alen; p++)
        if (*p == '@')
            at = p; /* the last '@' ends the userinfo */
    size_t ulen = at ? span_until(auth, ":@") : 0;
    if (at && auth + ulen > at)
        ulen = (size_t)(at - auth);
    const char *host = at ? at + 1 : auth;
    const char *path = auth + alen;
    size_t plen = span_until(path, "?");
    snprintf(out, outlen, "%.*s://%.*s%s%.*s%.*s%s", (int)(sep - url), url, (int)ulen, auth,
             at ? "@" : "", (int)(auth + alen - host), host, (int)plen, path,
             path[plen] == '?' ? "?..." : "");
}

static void pct_decode(const char *s, size_t n, char *out, size_t outlen)
{
    size_t o = 0;
    for (size_t i = 0; i < n && o + 1 < outlen; i++) {
        int hi = i + 2 < n ? hex_digit(s[i + 1]) : -1;
        int lo = i + 2 < n ? hex_digit(s[i + 2]) : -1;
        if (s[i] == '%' && hi >= 0 && lo >= 0) {
            out[o++] = (char)(hi * 16 + lo);
            i += 2;
        } else {
            out[o++] = s[i];
        }
    }
    out[o] = '\0';
}

/* Replaces each occurrence of secret with "***"; what would not fit in
 * msglen is cut off (a message may lose its end, never leak). */
static void replace_all(char *msg, size_t msglen, const char *secret)
{
    size_t slen = strlen(secret);
    char *p = slen ? strstr(msg, secret) : NULL;
    while (p) {
        size_t at = (size_t)(p - msg);
        if (at + 4 > msglen) {
            *p = '\0';
            return;
        }
        size_t tail = strlen(p + slen);
        if (at + 3 + tail + 1 > msglen)
            tail = msglen - at - 4;
        memmove(p + 3, p + slen, tail);
        memcpy(p, "***", 3);
        p[3 + tail] = '\0';
        p = strstr(p + 3, secret);
    }
}

static void scrub_one(const char *s, size_t n, char *msg, size_t msglen)
{
    char raw[URL_SECRET_MAX], dec[URL_SECRET_MAX];
    if (n == 0)
        return;
    snprintf(raw, sizeof raw, "%.*s", (int)n, s);
    pct_decode(s, n, dec, sizeof dec);
    replace_all(msg, msglen, raw);
    replace_all(msg, msglen, dec);
}

void db_url_scrub(const char *url, char *msg, size_t msglen)
{
    const char *sep = url && msg ? strstr(url, "://") : NULL;
    if (!sep || msglen < 4)
        return;
    const char *auth = sep + 3;
    size_t alen = span_until(auth, "/?");
    const char *at = NULL;
    for (const char *p = auth; p < auth + alen; p++)
        if (*p == '@')
            at = p;
    const char *colon = at ? memchr(auth, ':', (size_t)(at - auth)) : NULL;
    if (colon)
        scrub_one(colon + 1, (size_t)(at - colon - 1), msg, msglen);
    for (const char *q = strchr(url, '?'); q; q = strchr(q + 1, '&')) {
        if (strncmp(q + 1, "password=", 9) == 0)
            scrub_one(q + 10, span_until(q + 10, "&"), msg, msglen);
    }
}

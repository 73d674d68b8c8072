/* Checked number and key=value parsing (see parse.h). */
#include "util/parse.h"

#include "util/error.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

int parse_i64(const char *s, int64_t min, int64_t max, int64_t *ret)
{
    if (!s || !*s || isspace((unsigned char)*s))
        return DM_E_INVALID;
    char *end = NULL;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || *end != '\0' || v < min || v > max)
        return DM_E_INVALID;
    *ret = (int64_t)v;
    return 0;
}

int parse_duration_ms(const char *s, int64_t min, int64_t max, int64_t *ret)
{
    static const struct {
        const char *unit;
        int64_t ms;
    } units[] = {{"ms", 1}, {"s", 1000}, {"m", 60000}, {"h", 3600000}, {"d", 86400000}};
    if (!s || !isdigit((unsigned char)*s))
        return DM_E_INVALID;
    char *end = NULL;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || v < 0)
        return DM_E_INVALID;
    int64_t mult = 0;
    if (*end == '\0' && v == 0)
        mult = 1; /* "0" needs no unit */
    for (size_t i = 0; i < sizeof units / sizeof units[0] && !mult; i++)
        if (strcmp(end, units[i].unit) == 0)
            mult = units[i].ms;
    if (!mult || v > INT64_MAX / mult || v * mult < min || v * mult > max)
        return DM_E_INVALID;
    *ret = (int64_t)v * mult;
    return 0;
}

int parse_double(const char *s, double min, double max, double *ret)
{
    /* strtod() also reads hexadecimal ("0x1p4"); this parser is decimal only. */
    if (!s || !*s || isspace((unsigned char)*s) || strpbrk(s, "xX"))
        return DM_E_INVALID;
    char *end = NULL;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || *end != '\0' || !isfinite(v) || v < min || v > max)
        return DM_E_INVALID;
    *ret = v;
    return 0;
}

int parse_name(const char *s, const char *const *names, int n, int *ret)
{
    for (int i = 0; s && i < n; i++)
        if (strcmp(names[i], s) == 0) {
            *ret = i;
            return 0;
        }
    return DM_E_INVALID;
}

const char *name_of(const char *const *names, int n, int i)
{
    return i >= 0 && i < n ? names[i] : "?";
}

int parse_bool(const char *s, int *ret)
{
    static const char *yes[] = {"true", "yes", "1", "on"}, *no[] = {"false", "no", "0", "off"};
    if (!s)
        return DM_E_INVALID;
    for (int i = 0; i < 4; i++) {
        if (strcasecmp(s, yes[i]) == 0) {
            *ret = 1;
            return 0;
        }
        if (strcasecmp(s, no[i]) == 0) {
            *ret = 0;
            return 0;
        }
    }
    return DM_E_INVALID;
}

int parse_host_port(const char *s, char *host, size_t hostlen, int *ret_port)
{
    if (!s)
        return DM_E_INVALID;
    const char *colon = strrchr(s, ':');
    if (!colon || colon == s)
        return DM_E_INVALID;
    const char *h = s;
    size_t hl = (size_t)(colon - s);
    if (h[0] == '[') {
        if (hl < 3 || h[hl - 1] != ']')
            return DM_E_INVALID;
        h++;
        hl -= 2;
        if (memchr(h, '[', hl) || memchr(h, ']', hl))
            return DM_E_INVALID;
    } else if (memchr(h, ':', hl) || memchr(h, '[', hl) || memchr(h, ']', hl)) {
        return DM_E_INVALID; /* "::1", "a:b:80": an IPv6 host needs brackets */
    }
    int64_t port;
    if (hl == 0 || hl >= hostlen || parse_i64(colon + 1, 0, 65535, &port) != 0)
        return DM_E_INVALID;
    memcpy(host, h, hl);
    host[hl] = '\0';
    *ret_port = (int)port;
    return 0;
}

/* Length of the well-formed UTF-8 sequence at p (RFC 3629), or 0. */
static size_t utf8_seq_len(const unsigned char *p)
{
    if (p[0] < 0x80)
        return 1;
    size_t n = p[0] >= 0xf0 ? 4 : p[0] >= 0xe0 ? 3 : p[0] >= 0xc2 ? 2 : 0;
    if (n == 0 || p[0] > 0xf4)
        return 0;
    for (size_t i = 1; i < n; i++)
        if ((p[i] & 0xc0) != 0x80)
            return 0;
    if ((p[0] == 0xe0 && p[1] < 0xa0) || (p[0] == 0xed && p[1] > 0x9f) || /* overlong, UTF-16 */
        (p[0] == 0xf0 && p[1] < 0x90) || (p[0] == 0xf4 && p[1] > 0x8f))   /* overlong, > U+10FFFF */
        return 0;
    return n;
}

int parse_name_ok(const char *name, size_t cap)
{
    size_t n = name ? strlen(name) : 0;
    if (n == 0 || n >= cap)
        return 0;
    for (size_t i = 0; i < n; i++) {
        char c = name[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == '-'))
            return 0;
    }
    return 1;
}

void utf8_scrub(char *s)
{
    unsigned char *p = (unsigned char *)s;
    while (*p) {
        size_t n = utf8_seq_len(p);
        if (n == 0) {
            *p++ = '?';
            continue;
        }
        p += n;
    }
}

static int key_ok(const char *k, size_t n)
{
    if (n == 0 || n > 64)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!(islower((unsigned char)k[i]) || isdigit((unsigned char)k[i]) || k[i] == '_'))
            return 0;
    return 1;
}

int kv_parse(kv_list *kv, int argc, char *const *argv, char *err, size_t errlen)
{
    memset(kv, 0, sizeof *kv);
    for (int i = 0; i < argc; i++) {
        const char *eq = strchr(argv[i], '=');
        if (!eq || !key_ok(argv[i], (size_t)(eq - argv[i]))) {
            kv_done(kv);
            return dm_fail(err, errlen, DM_E_INVALID, "expected key=value, got '%s'", argv[i]);
        }
        if (kv->n == KV_MAX) {
            kv_done(kv);
            return dm_fail(err, errlen, DM_E_INVALID, "too many key=value arguments");
        }
        char *copy = strdup(argv[i]);
        if (!copy) {
            kv_done(kv);
            return dm_fail(err, errlen, -ENOMEM, "out of memory");
        }
        copy[eq - argv[i]] = '\0';
        if (kv_get(kv, copy)) {
            int rc = dm_fail(err, errlen, DM_E_INVALID, "'%s' given twice", copy);
            free(copy);
            kv_done(kv);
            return rc;
        }
        kv->storage[kv->n] = copy;
        kv->key[kv->n] = copy;
        kv->value[kv->n] = copy + (eq - argv[i]) + 1;
        kv->n++;
    }
    return 0;
}

void kv_done(kv_list *kv)
{
    if (!kv)
        return;
    for (int i = 0; i < kv->n; i++)
        free(kv->storage[i]);
    memset(kv, 0, sizeof *kv);
}

const char *kv_get(const kv_list *kv, const char *key)
{
    for (int i = 0; i < kv->n; i++)
        if (strcmp(kv->key[i], key) == 0)
            return kv->value[i];
    return NULL;
}

int kv_check_keys(const kv_list *kv, const char *const *allowed, char *err, size_t errlen)
{
    for (int i = 0; i < kv->n; i++) {
        int found = 0;
        for (const char *const *a = allowed; *a; a++)
            if (strcmp(*a, kv->key[i]) == 0)
                found = 1;
        if (!found)
            return dm_fail(err, errlen, DM_E_INVALID, "unknown argument '%s'", kv->key[i]);
    }
    return 0;
}

/* The local market: parsing (PROV-MK1, PROV-MK2) and search (PROV-PV1, PROV-MK3); see market.h. */
#include "provider/market.h"

#include "util/error.h"
#include "util/fsutil.h"

#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

static const char default_market[] =
    "{\"offers\": [\n"
    "  {\"id\": \"a-4090-1\", \"host\": \"local-a\", \"gpu_name\": \"RTX 4090\", \"vram_gb\": 24,"
    " \"cuda\": 12.4, \"price_per_h\": 0.35, \"region\": \"local-eu\", \"reliability\": 0.98},\n"
    "  {\"id\": \"a-4090-2\", \"host\": \"local-a\", \"gpu_name\": \"RTX 4090\", \"vram_gb\": 24,"
    " \"cuda\": 12.4, \"price_per_h\": 0.36, \"region\": \"local-eu\", \"reliability\": 0.98},\n"
    "  {\"id\": \"b-3090-1\", \"host\": \"local-b\", \"gpu_name\": \"RTX 3090\", \"vram_gb\": 24,"
    " \"cuda\": 12.2, \"price_per_h\": 0.22, \"region\": \"local-eu\", \"reliability\": 0.95},\n"
    "  {\"id\": \"b-3090-2\", \"host\": \"local-b\", \"gpu_name\": \"RTX 3090\", \"vram_gb\": 24,"
    " \"cuda\": 12.2, \"price_per_h\": 0.23, \"region\": \"local-eu\", \"reliability\": 0.95},\n"
    "  {\"id\": \"c-a100-1\", \"host\": \"local-c\", \"gpu_name\": \"A100 80GB\", \"vram_gb\": 80,"
    " \"cuda\": 12.4, \"price_per_h\": 1.10, \"region\": \"local-us\", \"reliability\": 0.99},\n"
    "  {\"id\": \"d-l4-1\", \"host\": \"local-d\", \"gpu_name\": \"L4\", \"vram_gb\": 24,"
    " \"cuda\": 12.2, \"price_per_h\": 0.28, \"region\": \"local-us\", \"reliability\": 0.97},\n"
    "  {\"id\": \"d-4090-1\", \"host\": \"local-d\", \"gpu_name\": \"RTX 4090\", \"vram_gb\": 24,"
    " \"cuda\": 12.4, \"price_per_h\": 0.31, \"region\": \"local-us\", \"reliability\": 0.85},\n"
    "  {\"id\": \"e-3090-1\", \"host\": \"local-e\", \"gpu_name\": \"RTX 3090\", \"vram_gb\": 24,"
    " \"cuda\": 12.0, \"price_per_h\": 0.15, \"region\": \"local-eu\", \"reliability\": 0.70}\n"
    "]}\n";

const char *market_default_json(void)
{
    return default_market;
}

static int get_str(json_t *o, const char *key, char *dst, size_t cap)
{
    json_t *v = json_object_get(o, key);
    if (!json_is_string(v))
        return -1;
    size_t n = json_string_length(v);
    const char *s = json_string_value(v);
    if (n == 0 || n >= cap || strlen(s) != n)
        return -1;
    memcpy(dst, s, n + 1);
    return 0;
}

static int get_num(json_t *o, const char *key, double lo, double hi, double *ret)
{
    json_t *v = json_object_get(o, key);
    if (!json_is_number(v))
        return -1;
    double d = json_number_value(v);
    if (!isfinite(d) || d < lo || d > hi)
        return -1;
    *ret = d;
    return 0;
}

/* One offer (PROV-MK1); returns the name of the bad field, or NULL. */
static const char *parse_offer(json_t *o, prov_offer *ret)
{
    double vram = 0;
    memset(ret, 0, sizeof *ret);
    if (!json_is_object(o))
        return "(offer is not an object)";
    if (get_str(o, "id", ret->id, sizeof ret->id))
        return "id";
    if (get_str(o, "host", ret->host, sizeof ret->host))
        return "host";
    if (get_str(o, "gpu_name", ret->gpu_name, sizeof ret->gpu_name))
        return "gpu_name";
    if (!json_is_integer(json_object_get(o, "vram_gb")) || get_num(o, "vram_gb", 1, 4096, &vram))
        return "vram_gb";
    ret->vram_gb = (int)vram;
    if (get_num(o, "cuda", 0, 100, &ret->cuda))
        return "cuda";
    if (get_num(o, "price_per_h", 0, 10000, &ret->price_per_h))
        return "price_per_h";
    if (get_str(o, "region", ret->region, sizeof ret->region))
        return "region";
    if (get_num(o, "reliability", 0, 1, &ret->reliability))
        return "reliability";
    return NULL;
}

int market_parse(const char *text, size_t len, const char *name, prov_offer **ret, size_t *ret_n,
                 char *err, size_t errlen)
{
    json_error_t je;
    json_t *root = json_loadb(text, len, JSON_REJECT_DUPLICATES, &je);
    prov_offer *offers = NULL;
    int rc = 0;
    if (!root)
        return dm_fail(err, errlen, DM_E_INVALID, "market %s: not JSON: %s (line %d)", name,
                       je.text, je.line);
    json_t *arr = json_object_get(root, "offers");
    size_t n = json_array_size(arr);
    if (!json_is_array(arr)) {
        rc = dm_fail(err, errlen, DM_E_INVALID, "market %s: no \"offers\" array", name);
        goto out;
    }
    if (n > PROV_OFFERS_MAX) {
        rc = dm_fail(err, errlen, DM_E_TOO_BIG, "market %s: %zu offers, at most %d", name, n,
                     PROV_OFFERS_MAX);
        goto out;
    }
    if (!(offers = calloc(n ? n : 1, sizeof *offers))) {
        rc = dm_fail(err, errlen, -ENOMEM, "market %s: out of memory", name);
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        const char *bad = parse_offer(json_array_get(arr, i), &offers[i]);
        if (bad) {
            rc = dm_fail(err, errlen, DM_E_INVALID,
                         "market %s: offer %zu: field '%s' missing or out of range", name, i, bad);
            goto out;
        }
        for (size_t k = 0; k < i; k++)
            if (strcmp(offers[k].id, offers[i].id) == 0) {
                rc = dm_fail(err, errlen, DM_E_INVALID, "market %s: offer %zu: duplicate id '%s'",
                             name, i, offers[i].id);
                goto out;
            }
    }
    *ret = offers;
    *ret_n = n;
    offers = NULL;
out:
    free(offers);
    json_decref(root);
    return rc;
}

int market_load(const char *path, int create, prov_offer **ret, size_t *ret_n, char *err,
                size_t errlen)
{
    char *buf = malloc(MARKET_FILE_MAX);
    if (!buf)
        return dm_fail(err, errlen, -ENOMEM, "market %s: out of memory", path);
    long n = fs_read_small(path, buf, MARKET_FILE_MAX);
    if (n == -ENOENT && create) {
        int rc = fs_write_new(path, default_market, sizeof default_market - 1, 0600);
        if (rc != 0 && rc != -EEXIST) {
            free(buf);
            return dm_fail(err, errlen, rc, "market %s: cannot write the default: %s", path,
                           strerror(-rc));
        }
        n = fs_read_small(path, buf, MARKET_FILE_MAX);
    }
    int rc = 0;
    if (n == DM_E_TOO_BIG)
        rc = dm_fail(err, errlen, DM_E_TOO_BIG, "market %s: larger than %u bytes", path,
                     MARKET_FILE_MAX);
    else if (n < 0)
        rc = dm_fail(err, errlen, (int)n, "market %s: %s", path, strerror((int)-n));
    else
        rc = market_parse(buf, (size_t)n, path, ret, ret_n, err, errlen);
    free(buf);
    return rc;
}

static int compatible(const prov_offer *o, const prov_query *q)
{
    if (q->min_vram_gb > 0 && o->vram_gb < q->min_vram_gb)
        return 0;
    if (q->min_cuda > 0 && o->cuda + 1e-9 < q->min_cuda)
        return 0;
    if (q->region[0] && strncmp(o->region, q->region, strnlen(q->region, sizeof q->region)) != 0)
        return 0;
    if (q->max_price_per_h > 0 && o->price_per_h > q->max_price_per_h + 1e-9)
        return 0;
    int n_ex = q->n_exclude < 0                  ? 0
               : q->n_exclude > PROV_EXCLUDE_MAX ? PROV_EXCLUDE_MAX
                                                 : q->n_exclude;
    for (int i = 0; i < n_ex; i++)
        if (strncmp(o->host, q->exclude_hosts[i], PROV_NAME_MAX) == 0)
            return 0;
    return 1;
}

/* PROV-PV1, PROV-MK3: reliable first, then by price, reliability (desc), id. */
static int before(const prov_offer *a, const prov_offer *b, double threshold)
{
    int ra = a->reliability >= threshold, rb = b->reliability >= threshold;
    if (ra != rb)
        return ra;
    if (a->price_per_h != b->price_per_h)
        return a->price_per_h < b->price_per_h;
    if (a->reliability != b->reliability)
        return a->reliability > b->reliability;
    return strcmp(a->id, b->id) < 0;
}

void market_search(const prov_offer *offers, size_t n, const prov_query *q, prov_offer *ret,
                   size_t max, size_t *ret_n)
{
    double threshold = q->min_reliability > 0 ? q->min_reliability : 0.9;
    size_t k = 0;
    /* insertion into a sorted array of at most max (n <= PROV_OFFERS_MAX) */
    for (size_t i = 0; i < n; i++) {
        if (!compatible(&offers[i], q))
            continue;
        size_t at = k;
        while (at > 0 && before(&offers[i], &ret[at - 1], threshold))
            at--;
        if (at >= max)
            continue;
        size_t last = k < max ? k : max - 1;
        memmove(&ret[at + 1], &ret[at], (last - at) * sizeof *ret);
        ret[at] = offers[i];
        if (k < max)
            k++;
    }
    *ret_n = k;
}

int market_provision_error(const char *path, const char *offer_id, char *out, size_t outlen)
{
    json_error_t je;
    char *buf = malloc(MARKET_FILE_MAX); /* PROV-MK2 */
    long n = buf ? fs_read_small(path, buf, MARKET_FILE_MAX) : -1;
    json_t *root = n > 0 ? json_loadb(buf, (size_t)n, JSON_REJECT_DUPLICATES, &je) : NULL;
    free(buf);
    json_t *arr = json_object_get(root, "offers");
    int found = 0;
    for (size_t i = 0; i < json_array_size(arr) && !found; i++) {
        json_t *o = json_array_get(arr, i);
        json_t *id = json_object_get(o, "id"), *e = json_object_get(o, "provision_error");
        if (json_is_string(id) && strcmp(json_string_value(id), offer_id) == 0 &&
            json_is_string(e)) {
            snprintf(out, outlen, "%s", json_string_value(e));
            found = 1;
        }
    }
    json_decref(root);
    return found;
}

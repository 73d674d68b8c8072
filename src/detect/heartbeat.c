/* The heartbeat wire format (see heartbeat.h for the layout and HB-W1 to HB-W4).
 *
 * Fixed size and fixed offsets: a parser that reads nothing it has not
 * length-checked, and nothing to allocate. The MAC covers every byte before
 * it, so a changed field, a truncated or padded packet, or a packet signed
 * under another instance's key is refused. */
#include "detect/heartbeat.h"

#include "util/hex.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <string.h>

static const uint8_t magic[4] = {'D', 'M', 'H', 'B'};

static const char *const reason_names[HB_REASON_COUNT] = {
    "ok",        "bad_length",   "bad_magic",        "bad_version",
    "bad_field", "bad_mac",      "unknown_instance", "replay",
    "stale",     "rate_limited", "duplicate",        "unverified_rate_limited",
    "fenced",
};

static const char *const workload_names[HB_WL_COUNT] = {
    "none", "starting", "running", "restarting", "crashlooping", "exited",
};

static const char *const probe_names[HB_PR_COUNT] = {"none", "pending", "ok", "failing"};

const char *hb_reason_name(hb_reason r)
{
    return (unsigned)r < HB_REASON_COUNT ? reason_names[r] : "unknown";
}

const char *hb_workload_name(hb_workload w)
{
    return (unsigned)w < HB_WL_COUNT ? workload_names[w] : "unknown";
}

const char *hb_probe_name(hb_probe p)
{
    return (unsigned)p < HB_PR_COUNT ? probe_names[p] : "unknown";
}

int hb_workload_parse(const char *s, hb_workload *ret)
{
    for (int i = 0; s && i < HB_WL_COUNT; i++)
        if (strcmp(s, workload_names[i]) == 0) {
            *ret = (hb_workload)i;
            return 0;
        }
    return -1;
}

int hb_probe_parse(const char *s, hb_probe *ret)
{
    for (int i = 0; s && i < HB_PR_COUNT; i++)
        if (strcmp(s, probe_names[i]) == 0) {
            *ret = (hb_probe)i;
            return 0;
        }
    return -1;
}

static void put_u32(uint8_t *p, uint32_t v)
{
    for (int i = 3; i >= 0; i--, v >>= 8)
        p[i] = (uint8_t)v;
}

static void put_u64(uint8_t *p, uint64_t v)
{
    for (int i = 7; i >= 0; i--, v >>= 8)
        p[i] = (uint8_t)v;
}

static uint32_t get_u32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static uint64_t get_u64(const uint8_t *p)
{
    return (uint64_t)get_u32(p) << 32 | get_u32(p + 4);
}

/* The field rules of HB-W1, shared by encode and parse. */
static int fields_ok(const hb_packet *p)
{
    return (p->type == HB_T_BEAT || p->type == HB_T_LEAVING) &&
           (unsigned)p->workload < HB_WL_COUNT && (unsigned)p->probe < HB_PR_COUNT &&
           p->instance_id >= 1 && p->instance_id <= HB_ID_MAX && p->seq > 0 && p->sent_at_ms >= 0 &&
           (p->flags & ~HB_F_KNOWN) == 0;
}

static void mac(const uint8_t key[HB_KEY_LEN], const uint8_t *buf, uint8_t out[32])
{
    unsigned int n = 32;
    HMAC(EVP_sha256(), key, HB_KEY_LEN, buf, HB_SIGNED_LEN, out, &n);
}

int hb_encode(const hb_packet *p, const uint8_t key[HB_KEY_LEN], uint8_t out[HB_PACKET_LEN])
{
    if (!fields_ok(p))
        return -1;
    memcpy(out, magic, 4);
    out[4] = HB_VERSION;
    out[5] = (uint8_t)p->type;
    out[6] = (uint8_t)p->workload;
    out[7] = (uint8_t)p->probe;
    put_u64(out + 8, (uint64_t)p->instance_id);
    put_u64(out + 16, p->seq);
    put_u64(out + 24, (uint64_t)p->sent_at_ms);
    put_u32(out + 32, p->flags);
    put_u32(out + 36, p->restarts);
    mac(key, out, out + HB_SIGNED_LEN);
    return 0;
}

hb_reason hb_parse(const uint8_t *buf, size_t len, hb_packet *ret)
{
    if (!buf || len != HB_PACKET_LEN)
        return HB_BAD_LENGTH;
    if (memcmp(buf, magic, 4) != 0)
        return HB_BAD_MAGIC;
    if (buf[4] != HB_VERSION)
        return HB_BAD_VERSION;
    uint64_t id = get_u64(buf + 8), sent = get_u64(buf + 24);
    hb_packet p = {
        .type = (hb_type)buf[5],
        .workload = (hb_workload)buf[6],
        .probe = (hb_probe)buf[7],
        .instance_id = id > (uint64_t)HB_ID_MAX ? -1 : (int64_t)id,
        .seq = get_u64(buf + 16),
        .sent_at_ms = sent > (uint64_t)INT64_MAX ? -1 : (int64_t)sent,
        .flags = get_u32(buf + 32),
        .restarts = get_u32(buf + 36),
    };
    if (!fields_ok(&p))
        return HB_BAD_FIELD;
    *ret = p;
    return HB_OK;
}

hb_reason hb_verify(const uint8_t *buf, const uint8_t key[HB_KEY_LEN])
{
    uint8_t want[32];
    mac(key, buf, want);
    int same = CRYPTO_memcmp(want, buf + HB_SIGNED_LEN, 32) == 0; /* HB-W2 */
    OPENSSL_cleanse(want, sizeof want);
    return same ? HB_OK : HB_BAD_MAC;
}

hb_reason hb_window_check(hb_window *w, uint64_t seq, int64_t sent_at_ms, int64_t now_wall_ms)
{
    int64_t skew = sent_at_ms - now_wall_ms;
    if (skew > HB_MAX_SKEW_MS || skew < -HB_MAX_SKEW_MS)
        return HB_STALE;
    if (seq == 0)
        return HB_BAD_FIELD;
    if (seq > w->top) {
        uint64_t shift = seq - w->top;
        w->bitmap = shift >= HB_WINDOW ? 1 : (w->bitmap << shift) | 1;
        w->top = seq;
        return HB_OK;
    }
    uint64_t back = w->top - seq;
    if (back >= HB_WINDOW || (w->bitmap >> back) & 1)
        return HB_REPLAY;
    w->bitmap |= (uint64_t)1 << back;
    return HB_OK;
}

int hb_key_derive(const char *master, int64_t instance_id, const char *key_id,
                  uint8_t ret[HB_KEY_LEN])
{
    static const char label[] = "dumont-hb-key-v1";
    uint8_t msg[sizeof label + 8 + 128];
    size_t mlen = strlen(master), klen = strlen(key_id);
    if (mlen == 0 || klen == 0 || klen > 128 || instance_id < 1)
        return -1;
    memcpy(msg, label, sizeof label); /* with its NUL: a separator */
    put_u64(msg + sizeof label, (uint64_t)instance_id);
    memcpy(msg + sizeof label + 8, key_id, klen);
    unsigned int n = HB_KEY_LEN;
    int ok = HMAC(EVP_sha256(), master, (int)mlen, msg, sizeof label + 8 + klen, ret, &n) != NULL;
    OPENSSL_cleanse(msg, sizeof msg);
    return ok ? 0 : -1;
}

void hb_key_to_hex(const uint8_t key[HB_KEY_LEN], char out[HB_KEY_HEX_LEN + 1])
{
    hex_encode(key, HB_KEY_LEN, out);
}

int hb_key_from_hex(const char *hex, uint8_t ret[HB_KEY_LEN])
{
    uint8_t k[HB_KEY_LEN];
    if (!hex || strlen(hex) != HB_KEY_HEX_LEN)
        return -1;
    if (hex_decode(hex, HB_KEY_LEN, k) != 0) {
        OPENSSL_cleanse(k, sizeof k);
        return -1;
    }
    memcpy(ret, k, sizeof k);
    OPENSSL_cleanse(k, sizeof k);
    return 0;
}

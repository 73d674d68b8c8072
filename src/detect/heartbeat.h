/* The heartbeat wire format: one fixed-size UDP datagram, signed with
 * HMAC-SHA256 under the instance's key (docs/detect.md).
 *
 *   off len  field (integers big-endian)
 *     0   4  magic "DMHB"
 *     4   1  version (HB_VERSION)
 *     5   1  type: 1 beat, 2 leaving (a clean stop)
 *     6   1  workload state (hb_workload)
 *     7   1  probe state (hb_probe)
 *     8   8  instance id (1 .. 2^53)
 *    16   8  sequence number (> 0, increasing per sender)
 *    24   8  sent_at: the sender's wall clock, ms since the epoch
 *    32   4  flags (HB_F_PREEMPTING: the cloud announced a preemption)
 *    36   4  workload restarts so far
 *    40  32  HMAC-SHA256(key, bytes 0..39)
 *    72      end (HB_PACKET_LEN)
 *
 * HB-W1: hb_parse() accepts exactly HB_PACKET_LEN bytes with the magic, the
 *     version, a known type and states, an id in range and seq > 0; anything
 *     else is refused with the reason, and no byte past len is read.
 * HB-W2: hb_verify() compares the MAC in constant time (CRYPTO_memcmp); a
 *     packet is trusted only after parse + verify + hb_window_check.
 * HB-W3: replay: hb_window_check() accepts a sequence number once: above the
 *     highest seen, or within the HB_WINDOW numbers below it and not seen
 *     yet (the IPsec anti-replay window, RFC 4303 3.4.3). sent_at must also
 *     lie within HB_MAX_SKEW_MS of the receiver's clock, so a packet
 *     recorded before a server restart (which forgets the windows) is still
 *     refused afterwards.
 * HB-W4: a key never leaves this module's callers in clear except as the
 *     registration answer; hb_key_* helpers wipe what they derive. */
#ifndef DUMONT_DETECT_HEARTBEAT_H
#define DUMONT_DETECT_HEARTBEAT_H

#include <stddef.h>
#include <stdint.h>

#define HB_VERSION      1
#define HB_PACKET_LEN   72
#define HB_SIGNED_LEN   40
#define HB_KEY_LEN      32
#define HB_KEY_HEX_LEN  (2 * HB_KEY_LEN)
#define HB_ID_MAX       ((int64_t)1 << 53)
#define HB_WINDOW       64
#define HB_MAX_SKEW_MS  30000
#define HB_DEFAULT_PORT 8701

typedef enum { HB_T_BEAT = 1, HB_T_LEAVING = 2 } hb_type;

typedef enum {
    HB_WL_NONE = 0,     /* no workload supervised */
    HB_WL_STARTING,     /* started, not yet known to run */
    HB_WL_RUNNING,      /* running */
    HB_WL_RESTARTING,   /* exited, waiting to be restarted (backoff) */
    HB_WL_CRASHLOOPING, /* too many crashes in the window: gave up */
    HB_WL_EXITED,       /* exited cleanly (status 0), not restarted */
    HB_WL_COUNT
} hb_workload;

typedef enum {
    HB_PR_NONE = 0, /* no probe configured */
    HB_PR_PENDING,  /* not answered yet */
    HB_PR_OK,
    HB_PR_FAILING,
    HB_PR_COUNT
} hb_probe;

#define HB_F_PREEMPTING 0x1u
#define HB_F_KNOWN      HB_F_PREEMPTING

typedef struct {
    hb_type type;
    hb_workload workload;
    hb_probe probe;
    int64_t instance_id;
    uint64_t seq;
    int64_t sent_at_ms;
    uint32_t flags;
    uint32_t restarts;
} hb_packet;

/* Why a packet was dropped (counted per reason by the listener). */
typedef enum {
    HB_OK = 0,
    HB_BAD_LENGTH,
    HB_BAD_MAGIC,
    HB_BAD_VERSION,
    HB_BAD_FIELD,
    HB_BAD_MAC,
    HB_UNKNOWN_INSTANCE,
    HB_REPLAY,
    HB_STALE,
    HB_RATE,
    HB_DUPLICATE,       /* the second copy of a beat already taken (agent.h AG-A7): not an attack */
    HB_UNVERIFIED_RATE, /* refused before its MAC was checked (listener.h HB-L8) */
    HB_FENCED,          /* signed, but the instance is destroyed (listener.h HB-L13) */
    HB_REASON_COUNT
} hb_reason;

const char *hb_reason_name(hb_reason r);
const char *hb_workload_name(hb_workload w);
const char *hb_probe_name(hb_probe p);
/* Parses a name back; returns 0 or -1. */
int hb_workload_parse(const char *s, hb_workload *ret);
int hb_probe_parse(const char *s, hb_probe *ret);

/* Writes the signed packet into out (HB_PACKET_LEN bytes). Returns 0, or -1
 * when p is out of range (the same rules as HB-W1). */
int hb_encode(const hb_packet *p, const uint8_t key[HB_KEY_LEN], uint8_t out[HB_PACKET_LEN]);
/* HB-W1. Fills *ret (only on HB_OK). The MAC is not checked here. */
hb_reason hb_parse(const uint8_t *buf, size_t len, hb_packet *ret);
/* HB-W2. buf is a packet that hb_parse() accepted. */
hb_reason hb_verify(const uint8_t *buf, const uint8_t key[HB_KEY_LEN]);

/* HB-W3: the anti-replay window of one sender. Zero-initialised is empty. */
typedef struct {
    uint64_t top;    /* highest sequence number accepted */
    uint64_t bitmap; /* bit i: top - i was accepted */
} hb_window;

/* Checks and, when accepted, records seq. sent_at_ms against now_wall_ms. */
hb_reason hb_window_check(hb_window *w, uint64_t seq, int64_t sent_at_ms, int64_t now_wall_ms);

/* Keys. A per-instance key is derived from the server's master secret, the
 * instance id and a random key id (stored in the database; the key itself is
 * never stored): HMAC-SHA256(master, "dumont-hb-key-v1" || id || key_id). */
int hb_key_derive(const char *master, int64_t instance_id, const char *key_id,
                  uint8_t ret[HB_KEY_LEN]);
/* 64 lowercase hex chars <-> 32 bytes. from_hex returns 0 or -1. */
void hb_key_to_hex(const uint8_t key[HB_KEY_LEN], char out[HB_KEY_HEX_LEN + 1]);
int hb_key_from_hex(const char *hex, uint8_t ret[HB_KEY_LEN]);

#endif

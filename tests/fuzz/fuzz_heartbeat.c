/* libFuzzer target: the heartbeat packet parser, MAC check and replay window
 * (src/detect/heartbeat.h, HB-W1 to HB-W3), as the listener runs them on every
 * datagram.
 *
 * Checked: no crash or sanitizer report; a packet that parses re-encodes
 * (under the fixed key) to the same 40 signed bytes; a packet verifies only
 * when its MAC is the one hb_encode() computes; the window never accepts
 * one sequence number twice. */
#include "detect/heartbeat.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static const uint8_t key[HB_KEY_LEN] = "0123456789abcdef0123456789abcde";

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static hb_window w;
    hb_packet p;
    if (hb_parse(data, size, &p) != HB_OK)
        return 0;
    uint8_t again[HB_PACKET_LEN];
    if (hb_encode(&p, key, again) != 0 || memcmp(again, data, HB_SIGNED_LEN) != 0)
        abort(); /* parse and encode disagree */
    int mac_ok = memcmp(again + HB_SIGNED_LEN, data + HB_SIGNED_LEN, 32) == 0;
    if ((hb_verify(data, key) == HB_OK) != mac_ok)
        abort();
    if (hb_window_check(&w, p.seq, p.sent_at_ms, p.sent_at_ms) == HB_OK &&
        hb_window_check(&w, p.seq, p.sent_at_ms, p.sent_at_ms) != HB_REPLAY)
        abort(); /* HB-W3: accepted twice */
    return 0;
}

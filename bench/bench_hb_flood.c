/* A flood of forged heartbeats (issue 13, part 4): well-formed datagrams
 * (magic, version, fields, a current sent_at, fresh sequence numbers) naming
 * registered instances, with a MAC that is not theirs, sent as fast as
 * sendmmsg() allows, round-robin over the given instance ids and over
 * SOCKETS source ports.
 *
 *   bench_hb_flood --port PORT --ids ID[,ID...] [--seconds 10] [--max 100000000]
 *                  [--sockets 4] [--rate 0]
 *
 * Loopback only: the target is 127.0.0.1:PORT. Bounded: it stops after
 * SECONDS (at most 600) or MAX datagrams (at most 10^9), whichever comes
 * first; RATE > 0 caps datagrams per second. Prints one line:
 *
 *   flood sent= seconds= rate_per_s= errors=
 *
 * Run two of them pinned to one core (`taskset -c 1`) to get the attack of
 * the issue: about 1M datagrams/s on this machine's loopback. */
#define _GNU_SOURCE /* sendmmsg */
#include "detect/heartbeat.h"
#include "util/clock.h"
#include "util/parse.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define BATCH       64
#define MAX_IDS     16
#define MAX_SOCKETS 64

static struct {
    int port, sockets;
    int64_t ids[MAX_IDS];
    int nids;
    int64_t seconds, max, rate;
} opt = {.sockets = 4, .seconds = 10, .max = 100000000};

static uint64_t rng = 0x9e3779b97f4a7c15ull;

static uint64_t next_rand(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

static void put_u64(uint8_t *p, uint64_t v)
{
    for (int i = 7; i >= 0; i--, v >>= 8)
        p[i] = (uint8_t)v;
}

/* One forged datagram: a real agent's fields (hb_encode under a random key,
 * once per batch: signing each one would make the sender the bottleneck),
 * then its own sequence number and a random MAC. */
static void forge(uint8_t out[HB_PACKET_LEN], const uint8_t tmpl[HB_PACKET_LEN], int64_t id,
                  uint64_t seq)
{
    memcpy(out, tmpl, HB_PACKET_LEN);
    put_u64(out + 8, (uint64_t)id);
    put_u64(out + 16, seq);
    for (int i = 0; i < 4; i++)
        put_u64(out + HB_SIGNED_LEN + 8 * i, next_rand());
}

static void make_template(uint8_t tmpl[HB_PACKET_LEN])
{
    uint8_t key[HB_KEY_LEN];
    for (int i = 0; i < HB_KEY_LEN; i++)
        key[i] = (uint8_t)next_rand();
    hb_packet p = {.type = HB_T_BEAT,
                   .workload = HB_WL_RUNNING,
                   .probe = HB_PR_OK,
                   .instance_id = opt.ids[0],
                   .seq = 1,
                   .sent_at_ms = clock_wall_ms()};
    hb_encode(&p, key, tmpl);
}

static int parse_ids(const char *v)
{
    opt.nids = 0;
    for (const char *p = v; *p;) {
        char one[24];
        const char *comma = strchr(p, ',');
        size_t n = comma ? (size_t)(comma - p) : strlen(p);
        if (n == 0 || n >= sizeof one || opt.nids == MAX_IDS)
            return -1;
        memcpy(one, p, n);
        one[n] = '\0';
        if (parse_i64(one, 1, HB_ID_MAX, &opt.ids[opt.nids]) != 0)
            return -1;
        opt.nids++;
        p += n + (comma ? 1 : 0);
    }
    return opt.nids > 0 ? 0 : -1;
}

static int parse_args(int argc, char **argv)
{
    if (argc % 2 == 0)
        return -1;
    for (int i = 1; i + 1 < argc; i += 2) {
        const char *k = argv[i], *v = argv[i + 1];
        int64_t x;
        if (strcmp(k, "--ids") == 0) {
            if (parse_ids(v) != 0)
                return -1;
            continue;
        }
        if (parse_i64(v, 0, 1000000000, &x) != 0)
            return -1;
        if (strcmp(k, "--port") == 0 && x >= 1 && x <= 65535)
            opt.port = (int)x;
        else if (strcmp(k, "--seconds") == 0 && x >= 1 && x <= 600)
            opt.seconds = x;
        else if (strcmp(k, "--max") == 0 && x >= 1)
            opt.max = x;
        else if (strcmp(k, "--sockets") == 0 && x >= 1 && x <= MAX_SOCKETS)
            opt.sockets = (int)x;
        else if (strcmp(k, "--rate") == 0)
            opt.rate = x;
        else
            return -1;
    }
    return opt.port > 0 && opt.nids > 0 ? 0 : -1;
}

static int open_sockets(int *fds)
{
    struct sockaddr_in to = {.sin_family = AF_INET, .sin_port = htons((uint16_t)opt.port)};
    to.sin_addr.s_addr = htonl(INADDR_LOOPBACK); /* loopback only */
    for (int i = 0; i < opt.sockets; i++) {
        fds[i] = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        if (fds[i] < 0 || connect(fds[i], (struct sockaddr *)&to, sizeof to) != 0) {
            perror("bench_hb_flood: socket");
            return -1;
        }
    }
    return 0;
}

int main(int argc, char **argv)
{
    if (parse_args(argc, argv) != 0) {
        fprintf(stderr, "usage: bench_hb_flood --port PORT --ids ID[,ID...] [--seconds S] "
                        "[--max N] [--sockets K] [--rate R] (to 127.0.0.1 only)\n");
        return 2;
    }
    int fds[MAX_SOCKETS];
    if (open_sockets(fds) != 0)
        return 1;
    rng ^= (uint64_t)getpid() << 32 ^ (uint64_t)clock_mono_us();
    static uint8_t pkts[BATCH][HB_PACKET_LEN], tmpl[HB_PACKET_LEN];
    struct mmsghdr msgs[BATCH];
    struct iovec iov[BATCH];
    memset(msgs, 0, sizeof msgs);
    for (int i = 0; i < BATCH; i++) {
        iov[i] = (struct iovec){pkts[i], HB_PACKET_LEN};
        msgs[i].msg_hdr.msg_iov = &iov[i];
        msgs[i].msg_hdr.msg_iovlen = 1;
    }
    int64_t t0 = clock_mono_ms(), end = t0 + opt.seconds * 1000, sent = 0, errors = 0;
    uint64_t seq = next_rand() >> 20;
    for (int round = 0; sent < opt.max; round++) {
        int64_t now = clock_mono_ms();
        if (now >= end)
            break;
        if (opt.rate > 0 && sent > (now - t0) * opt.rate / 1000) {
            usleep(1000);
            continue;
        }
        int n = opt.max - sent < BATCH ? (int)(opt.max - sent) : BATCH;
        if (round % 1024 == 0)
            make_template(tmpl); /* a current sent_at (HB-W3) */
        for (int i = 0; i < n; i++)
            forge(pkts[i], tmpl, opt.ids[(sent + i) % opt.nids], ++seq);
        int got = sendmmsg(fds[round % opt.sockets], msgs, (unsigned)n, 0);
        if (got < 0) {
            errors++;
            if (errno != ENOBUFS && errno != EAGAIN && errno != ECONNREFUSED)
                break;
            continue;
        }
        sent += got;
    }
    double secs = (double)(clock_mono_ms() - t0) / 1000.0;
    printf("flood sent=%lld seconds=%.1f rate_per_s=%.0f errors=%lld\n", (long long)sent, secs,
           secs > 0 ? (double)sent / secs : 0, (long long)errors);
    for (int i = 0; i < opt.sockets; i++)
        close(fds[i]);
    return 0;
}

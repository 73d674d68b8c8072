/* Slow clients against the API (issue 13, part 5): CONNS connections from one
 * loopback address, each sending its request head one header line every
 * LINE_MS and never finishing it, reopened when the server closes them; and,
 * from another loopback address, GET /healthz every PROBE_MS, timed.
 *
 *   bench_slowloris --port PORT [--conns 400] [--seconds 20] [--line-ms 5000]
 *                   [--source 127.0.0.1] [--probe-source 127.0.0.2]
 *                   [--probe-ms 250] [--reopen-ms 200]
 *
 * Loopback only: the target is 127.0.0.1 and both sources must be in
 * 127.0.0.0/8. Bounded: it stops after SECONDS (at most 600), holds at most
 * 2000 connections at once and opens at most MAX_OPENS in all. Prints two
 * key=value lines:
 *
 *   slowloris conns= opened= refused= cut= open_end= max_life_ms= min_cut_ms=
 *   healthz n= ok= over_1s= p50_ms= p99_ms= max_ms=
 *
 * refused: closed by the server within 1 s of the connect (the per-address
 * cap); cut: closed later with its head still incomplete (the head deadline);
 * max_life_ms: the longest any trickling connection lived; min_cut_ms: the
 * shortest life of a cut one. A healthz probe that gets no 200 within 5 s
 * counts as not ok. Exit status 0 when it ran, 2 on bad arguments. */
#include "util/clock.h"
#include "util/parse.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define MAX_CONNS  2000
#define MAX_PROBES 100000
#define MAX_OPENS  200000

typedef struct {
    int fd;
    int64_t opened_ms, next_line_ms, reopen_ms;
} slot;

static struct {
    int port, conns, line_ms, probe_ms, reopen_ms;
    int64_t seconds;
    struct in_addr src, probe_src;
} opt = {.conns = 400, .line_ms = 5000, .probe_ms = 250, .reopen_ms = 200, .seconds = 20};

static atomic_bool stopping; /* raised by main, read by the prober thread */
static int64_t lat[MAX_PROBES];
static int nlat, nprobe;

static int loopback(struct in_addr a)
{
    return (ntohl(a.s_addr) >> 24) == 127;
}

/* A TCP socket bound to src, connecting (non-blocking) to 127.0.0.1:port. */
static int open_from(struct in_addr src, int blocking)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | (blocking ? 0 : SOCK_NONBLOCK), 0);
    if (fd < 0)
        return -1;
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr = src};
    int one = 1; /* the port is picked at connect: binds do not exhaust them */
    setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof one);
    struct sockaddr_in to = {.sin_family = AF_INET, .sin_port = htons((uint16_t)opt.port)};
    to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(fd, (struct sockaddr *)&a, sizeof a) != 0 ||
        (connect(fd, (struct sockaddr *)&to, sizeof to) != 0 && errno != EINPROGRESS)) {
        close(fd);
        return -1;
    }
    return fd;
}

/* One GET /healthz from probe_src: ms until the status line, or -1. */
static int64_t probe_once(void)
{
    int64_t t0 = clock_mono_ms(), got = -1;
    int fd = open_from(opt.probe_src, 1);
    if (fd < 0)
        return -1;
    struct timeval tv = {.tv_sec = 5};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    static const char req[] =
        "GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n";
    char buf[64];
    if (send(fd, req, sizeof req - 1, MSG_NOSIGNAL) == (ssize_t)(sizeof req - 1)) {
        ssize_t n = recv(fd, buf, sizeof buf - 1, 0);
        if (n >= 12 && memcmp(buf, "HTTP/1.1 200", 12) == 0)
            got = clock_mono_ms() - t0;
    }
    close(fd);
    return got;
}

static void *prober(void *arg)
{
    (void)arg;
    while (!atomic_load(&stopping) && nprobe < MAX_PROBES) {
        int64_t ms = probe_once();
        nprobe++;
        if (ms >= 0)
            lat[nlat++] = ms;
        clock_sleep_ms(opt.probe_ms, &stopping);
    }
    return NULL;
}

static int cmp64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

static int64_t pct(int p)
{
    int i = (nlat * p + 99) / 100 - 1;
    return nlat ? lat[i < 0 ? 0 : i] : -1;
}

static struct {
    long opened, refused, cut;
    int64_t max_life, min_cut;
} st = {.min_cut = -1};

static void slot_closed(slot *s, int64_t now)
{
    int64_t life = now - s->opened_ms;
    if (life < 1000) {
        st.refused++;
    } else {
        st.cut++;
        if (st.min_cut < 0 || life < st.min_cut)
            st.min_cut = life;
    }
    if (life > st.max_life)
        st.max_life = life;
    close(s->fd);
    s->fd = -1;
    s->reopen_ms = now + opt.reopen_ms;
}

static void slot_tick(slot *s, int64_t now)
{
    static const char first[] = "GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n";
    static const char line[] = "X-Slow: 1\r\n";
    if (s->fd < 0) {
        if (now < s->reopen_ms || st.opened >= MAX_OPENS || (s->fd = open_from(opt.src, 0)) < 0)
            return;
        st.opened++;
        s->opened_ms = now;
        s->next_line_ms = now; /* the request line as soon as it connects */
        return;
    }
    if (now < s->next_line_ms)
        return;
    int first_line = s->next_line_ms == s->opened_ms;
    const char *p = first_line ? first : line;
    size_t n = first_line ? sizeof first - 1 : sizeof line - 1;
    ssize_t w = send(s->fd, p, n, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (w < 0 && errno != EAGAIN && errno != ENOTCONN)
        slot_closed(s, now);
    else if (w >= 0)
        s->next_line_ms = now + opt.line_ms;
}

static void run(slot *slots)
{
    static struct pollfd pf[MAX_CONNS];
    int64_t end = clock_mono_ms() + opt.seconds * 1000;
    for (int64_t now; (now = clock_mono_ms()) < end;) {
        int n = 0;
        for (int i = 0; i < opt.conns; i++) {
            slot_tick(&slots[i], now);
            pf[i] = (struct pollfd){.fd = slots[i].fd, .events = POLLIN};
            n++;
        }
        if (poll(pf, (nfds_t)n, 20) <= 0)
            continue;
        now = clock_mono_ms();
        char buf[512];
        for (int i = 0; i < n; i++)
            if (pf[i].fd >= 0 && (pf[i].revents & (POLLIN | POLLHUP | POLLERR)) &&
                recv(pf[i].fd, buf, sizeof buf, MSG_DONTWAIT) <= 0)
                slot_closed(&slots[i], now);
    }
}

static int parse_args(int argc, char **argv)
{
    inet_pton(AF_INET, "127.0.0.1", &opt.src);
    inet_pton(AF_INET, "127.0.0.2", &opt.probe_src);
    for (int i = 1; i + 1 < argc; i += 2) {
        const char *k = argv[i], *v = argv[i + 1];
        int64_t x = 0;
        int ok = 1;
        if (strcmp(k, "--source") == 0)
            ok = inet_pton(AF_INET, v, &opt.src) == 1;
        else if (strcmp(k, "--probe-source") == 0)
            ok = inet_pton(AF_INET, v, &opt.probe_src) == 1;
        else if ((ok = parse_i64(v, 0, 65535, &x) == 0) && strcmp(k, "--port") == 0)
            opt.port = (int)x;
        else if (ok && strcmp(k, "--conns") == 0 && x <= MAX_CONNS)
            opt.conns = (int)x;
        else if (ok && strcmp(k, "--seconds") == 0 && x <= 600)
            opt.seconds = x;
        else if (ok && strcmp(k, "--line-ms") == 0 && x >= 10)
            opt.line_ms = (int)x;
        else if (ok && strcmp(k, "--probe-ms") == 0 && x >= 10)
            opt.probe_ms = (int)x;
        else if (ok && strcmp(k, "--reopen-ms") == 0 && x >= 1)
            opt.reopen_ms = (int)x;
        else
            ok = 0;
        if (!ok) {
            fprintf(stderr, "bench_slowloris: bad argument %s %s\n", k, v);
            return -1;
        }
    }
    if (opt.port <= 0 || argc % 2 == 0 || !loopback(opt.src) || !loopback(opt.probe_src)) {
        fprintf(stderr, "usage: bench_slowloris --port PORT [--conns N] [--seconds S] "
                        "[--line-ms MS] [--source 127.x] [--probe-source 127.y] [--probe-ms MS] "
                        "[--reopen-ms MS] (loopback only)\n");
        return -1;
    }
    return 0;
}

int main(int argc, char **argv)
{
    if (parse_args(argc, argv) != 0)
        return 2;
    static slot slots[MAX_CONNS];
    for (int i = 0; i < opt.conns; i++)
        slots[i] = (slot){.fd = -1};
    pthread_t t;
    int probing = pthread_create(&t, NULL, prober, NULL) == 0;
    run(slots);
    atomic_store(&stopping, 1);
    if (probing)
        pthread_join(t, NULL);
    int open_end = 0;
    for (int i = 0; i < opt.conns; i++)
        if (slots[i].fd >= 0) {
            open_end++;
            close(slots[i].fd);
        }
    qsort(lat, (size_t)nlat, sizeof lat[0], cmp64);
    int over = 0;
    for (int i = 0; i < nlat; i++)
        over += lat[i] > 1000;
    printf("slowloris conns=%d opened=%ld refused=%ld cut=%ld open_end=%d max_life_ms=%lld "
           "min_cut_ms=%lld\n",
           opt.conns, st.opened, st.refused, st.cut, open_end, (long long)st.max_life,
           (long long)st.min_cut);
    printf("healthz n=%d ok=%d over_1s=%d p50_ms=%lld p99_ms=%lld max_ms=%lld\n", nprobe, nlat,
           over, (long long)pct(50), (long long)pct(99), (long long)(nlat ? lat[nlat - 1] : -1));
    return 0;
}

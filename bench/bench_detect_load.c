/* Load on the heartbeat listener: N simulated agents at 5 heartbeats/s from
 * one sending thread (issue 5: "one server core holds 5,000 agents"), then K
 * of them stop at random moments; prints the listener's CPU use and the
 * detection latency of the stopped ones (stop -> `failed` published).
 *
 *   bench/bench_detect_load [N [SECONDS [K [COPIES]]]]   default 5000 20 50 2
 *
 * COPIES: datagrams per heartbeat (the agent sends 2 by default, agent.h AG-A7;
 * the second, a duplicate, costs the listener a parse + MAC check).
 *
 * Runs the real listener (hbl_start) on 127.0.0.1 with a temporary SQLite
 * database. CPU: the process's CPU time minus the sender thread's own, over
 * the steady phase, so it is the receive thread + writer thread (+ noise).
 * Latency is measured in-process on one monotonic clock: from an agent's last
 * heartbeat to the subscriber call (a kill lands between the last heartbeat
 * and the next, so kill -> detection is this minus 0-200 ms). */
#define _GNU_SOURCE /* RUSAGE_THREAD */
#include "db/db.h"
#include "db/db_instance.h"
#include "detect/listener.h"
#include "util/clock.h"

#include <arpa/inet.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

typedef struct {
    uint8_t key[HB_KEY_LEN];
    uint64_t seq;
    int64_t last_ms;    /* its last heartbeat sent */
    int64_t stopped_ms; /* -1 running */
    int64_t detected_ms;
} sim_agent;

static sim_agent *agents;
static int n_agents, n_copies = 2;
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;

static void on_event(const hbl_event *ev, void *ctx)
{
    (void)ctx;
    if (strcmp(ev->what, "state") != 0 || strcmp(ev->to, "failed") != 0)
        return;
    int64_t now = clock_mono_ms();
    pthread_mutex_lock(&mu);
    int i = (int)(ev->instance_id - 1);
    if (i >= 0 && i < n_agents && agents[i].detected_ms < 0)
        agents[i].detected_ms = now;
    pthread_mutex_unlock(&mu);
}

static double cpu_s(int who)
{
    struct rusage ru;
    getrusage(who, &ru);
    return (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 + (double)ru.ru_stime.tv_sec +
           ru.ru_stime.tv_usec / 1e6;
}

static int cmp64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

/* Sends one round: every running agent once, spread over 200 ms. */
static void send_round(int fd, int64_t start_ms, int stop_from, int k, int64_t kill_at[])
{
    uint8_t buf[HB_PACKET_LEN];
    for (int i = 0; i < n_agents; i++) {
        int64_t due = start_ms + (int64_t)i * 200 / n_agents;
        int64_t now = clock_mono_ms();
        if (due > now)
            clock_sleep_ms(due - now, NULL);
        sim_agent *a = &agents[i];
        int victim = i >= stop_from && i < stop_from + k;
        if (a->stopped_ms >= 0)
            continue;
        if (victim && clock_mono_ms() >= kill_at[i - stop_from]) {
            pthread_mutex_lock(&mu);
            a->stopped_ms = clock_mono_ms();
            pthread_mutex_unlock(&mu);
            continue;
        }
        hb_packet p = {.type = HB_T_BEAT,
                       .workload = HB_WL_RUNNING,
                       .probe = HB_PR_OK,
                       .instance_id = i + 1,
                       .seq = ++a->seq,
                       .sent_at_ms = clock_wall_ms()};
        hb_encode(&p, a->key, buf);
        for (int c = 0; c < n_copies; c++)
            send(fd, buf, sizeof buf, MSG_DONTWAIT);
        a->last_ms = clock_mono_ms();
    }
}

int main(int argc, char **argv)
{
    n_agents = argc > 1 ? (int)strtol(argv[1], NULL, 10) : 5000;
    int seconds = argc > 2 ? (int)strtol(argv[2], NULL, 10) : 20;
    int k = argc > 3 ? (int)strtol(argv[3], NULL, 10) : 50;
    n_copies = argc > 4 ? (int)strtol(argv[4], NULL, 10) : 2;
    if (n_agents < 1 || n_agents > HBL_MAX_INSTANCES || k > n_agents || seconds < 5 ||
        n_copies < 1 || n_copies > 2)
        return fprintf(stderr,
                       "usage: bench_detect_load [N<=10000 [SECONDS>=5 [K<=N [COPIES 1|2]]]]\n"),
               2;
    char dir[] = "/tmp/dumont-bench-load.XXXXXX", url[128], secret[128], err[512];
    if (!mkdtemp(dir))
        return 1;
    snprintf(url, sizeof url, "%s/db", dir);
    snprintf(secret, sizeof secret, "%s/secret", dir);
    dm_db *db = NULL;
    hbl_server *h = NULL;
    if (db_open(url, &db, err, sizeof err) != 0)
        return fprintf(stderr, "%s\n", err), 1;
    dm_instance_persist persist = db_instance_persist(db);
    hbl_opts o = {.listen = "127.0.0.1:0", .persist = &persist, .secret_path = secret};
    if (hbl_start(&o, &h, err, sizeof err) != 0)
        return fprintf(stderr, "%s\n", err), 1;
    hbl_subscribe(h, on_event, NULL);
    agents = calloc((size_t)n_agents, sizeof *agents);
    fprintf(stderr, "registering %d instances ...\n", n_agents);
    for (int i = 0; i < n_agents; i++) {
        char hex[HB_KEY_HEX_LEN + 1];
        hbl_reg r = {.instance_id = i + 1, .kind = "gpu"};
        if (hbl_register(h, &r, hex, err, sizeof err) != 0)
            return fprintf(stderr, "%s\n", err), 1;
        hb_key_from_hex(hex, agents[i].key);
        agents[i].stopped_ms = agents[i].detected_ms = -1;
    }
    int fd = socket(AF_INET, SOCK_DGRAM, 0), sndbuf = 4 << 20;
    setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof sndbuf);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)hbl_port(h))};
    inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
    connect(fd, (struct sockaddr *)&a, sizeof a);

    /* Warm up 3 s, then measure; the victims stop at random moments in the
     * second half of the run. */
    int stop_from = n_agents / 2, rounds = seconds * 5;
    int64_t *kill_at = calloc((size_t)k + 1, sizeof *kill_at), t0 = clock_mono_ms();
    srand((unsigned)time(NULL));
    for (int i = 0; i < k; i++)
        kill_at[i] = t0 + seconds * 500 + rand() % (seconds * 400);
    double cpu0 = 0, snd0 = 0;
    int64_t m0 = 0;
    for (int r = 0; r < rounds; r++) {
        if (r == 15) { /* after 3 s */
            cpu0 = cpu_s(RUSAGE_SELF);
            snd0 = cpu_s(RUSAGE_THREAD);
            m0 = clock_mono_ms();
        }
        send_round(fd, t0 + (int64_t)r * 200, stop_from, k, kill_at);
    }
    int64_t end_ms = clock_mono_ms();
    double wall = (end_ms - m0) / 1000.0;
    double listener = (cpu_s(RUSAGE_SELF) - cpu0) - (cpu_s(RUSAGE_THREAD) - snd0);
    clock_sleep_ms(1500, NULL); /* the last victims' detection */
    hbl_stats st;
    hbl_stats_get(h, &st);
    int64_t lat[10000];
    int nl = 0, false_failed = 0;
    pthread_mutex_lock(&mu);
    for (int i = 0; i < n_agents; i++) {
        if (agents[i].stopped_ms >= 0 && agents[i].detected_ms >= 0)
            lat[nl++] = agents[i].detected_ms - agents[i].last_ms;
        else if (agents[i].detected_ms >= 0 && agents[i].detected_ms < end_ms)
            false_failed++; /* the others stopped when the run ended */
    }
    pthread_mutex_unlock(&mu);
    qsort(lat, (size_t)nl, sizeof lat[0], cmp64);
    printf("(%d datagram%s per heartbeat) ", n_copies, n_copies > 1 ? "s" : "");
    uint64_t dup = st.dropped[HB_DUPLICATE];
    printf("agents %d x 5/s for %d s: listener CPU %.1f%% of one core; received %llu, accepted "
           "%llu, duplicates %llu, dropped %llu; kernel drops %llu, lagging ticks %llu\n",
           n_agents, seconds, 100.0 * listener / wall, (unsigned long long)st.received,
           (unsigned long long)st.accepted, (unsigned long long)dup,
           (unsigned long long)(st.received - st.accepted - dup),
           (unsigned long long)st.kernel_drops, (unsigned long long)st.lagging);
    if (nl > 0)
        printf("stopped agents detected %d/%d, from their last heartbeat: p50 %lld ms, p99 %lld "
               "ms, max %lld ms; false failed: %d\n",
               nl, k, (long long)lat[(nl * 50 + 99) / 100 - 1],
               (long long)lat[(nl * 99 + 99) / 100 - 1], (long long)lat[nl - 1], false_failed);
    hbl_stop(h);
    db_close(db);
    char p[200];
    const char *files[] = {"db", "db-wal", "db-shm", "secret"};
    for (int i = 0; i < 4; i++) {
        snprintf(p, sizeof p, "%s/%s", dir, files[i]);
        unlink(p);
    }
    rmdir(dir);
    free(kill_at);
    free(agents);
    return 0;
}

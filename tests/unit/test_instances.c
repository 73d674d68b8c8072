/* Tests of instances in the database (src/db/db_instance.h, DB-I1 to DB-I3) and of
 * the heartbeat listener in-process over real UDP (src/detect/listener.h,
 * HB-L1 to HB-L11; HB-L2, HB-L5 and HB-L12 also over a persistence of the
 * test's own), on SQLite and, when DUMONT_TEST_PG_URL is set, on PostgreSQL (a database of its own,
 * made and dropped here, so other tests are not disturbed). Waits poll with
 * deadlines; nothing asserts a wall-clock bound. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "db/db_fleet.h"
#include "db/db_instance.h"
#include "detect/listener.h"
#include "util/clock.h"
#include "util/error.h"

#include <arpa/inet.h>
#include <libpq-fe.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define DBFX_NAME "instances"
#include "db_fixture.h"

static dm_instance inst(int64_t id, const char *key_id)
{
    dm_instance in;
    memset(&in, 0, sizeof in);
    in.instance_id = id;
    snprintf(in.kind, sizeof in.kind, "gpu");
    snprintf(in.key_id, sizeof in.key_id, "%s", key_id);
    snprintf(in.state, sizeof in.state, "pending");
    in.registered_at_ms = 1764331200000;
    snprintf(in.workload_cmd, sizeof in.workload_cmd, "ollama serve");
    return in;
}

/* DB-I1 to DB-I3 on the database alone. */
static void test_db_instances(void **state)
{
    (void)state;
    dm_db *db = open_db();
    dm_instance a = inst(7, "k1"), b = inst(3, "k2"), got, *list = NULL;
    OK(db_instance_register(db, &a, g_err, sizeof g_err));
    OK(db_instance_register(db, &b, g_err, sizeof g_err));
    OK(db_instance_get(db, 7, &got, g_err, sizeof g_err));
    assert_string_equal(got.key_id, "k1");
    assert_string_equal(got.workload_cmd, "ollama serve");
    assert_string_equal(got.probe_spec, "");
    assert_int_equal(got.last_heartbeat_ms, FO_NULL);
    size_t n = 0;
    OK(db_instance_list(db, &list, &n, g_err, sizeof g_err));
    assert_int_equal(n, 2);
    assert_int_equal(list[0].instance_id, 3); /* by id */
    free(list);
    dm_instance_event ev = {
        .instance_id = 7, .at_ms = 1764331201000, .silent_ms = FO_NULL, .phi_milli = FO_NULL};
    snprintf(ev.what, sizeof ev.what, "state");
    snprintf(ev.from, sizeof ev.from, "pending");
    snprintf(ev.to, sizeof ev.to, "healthy");
    snprintf(ev.reason, sizeof ev.reason, "heartbeat");
    OK(db_instance_record(db, &ev, "running", "ok", 1764331201000, g_err, sizeof g_err));
    snprintf(ev.what, sizeof ev.what, "workload");
    snprintf(ev.to, sizeof ev.to, "crashlooping"); /* same ms: event_seq orders */
    OK(db_instance_record(db, &ev, "crashlooping", "failing", FO_NULL, g_err, sizeof g_err));
    OK(db_instance_get(db, 7, &got, g_err, sizeof g_err));
    assert_string_equal(got.state, "healthy"); /* a workload event leaves the state */
    assert_string_equal(got.workload, "crashlooping");
    assert_int_equal(got.last_heartbeat_ms, 1764331201000);
    dm_instance_event *evs = NULL;
    OK(db_instance_events(db, 7, 10, &evs, &n, g_err, sizeof g_err));
    assert_int_equal(n, 3); /* registered, healthy, crashlooping: newest first */
    assert_string_equal(evs[0].to, "crashlooping");
    assert_string_equal(evs[1].to, "healthy");
    assert_string_equal(evs[2].reason, "registered");
    free(evs);
    ev.instance_id = 99;
    assert_int_equal(db_instance_record(db, &ev, NULL, NULL, FO_NULL, g_err, sizeof g_err),
                     DM_E_NOT_FOUND);
    /* re-registration: new key id, pending again, an event says so */
    a = inst(7, "k9");
    OK(db_instance_register(db, &a, g_err, sizeof g_err));
    OK(db_instance_get(db, 7, &got, g_err, sizeof g_err));
    assert_string_equal(got.key_id, "k9");
    assert_string_equal(got.state, "pending");
    OK(db_instance_events(db, 7, 1, &evs, &n, g_err, sizeof g_err));
    assert_string_equal(evs[0].reason, "registered");
    free(evs);
    assert_int_equal(db_instance_get(db, 8, &got, g_err, sizeof g_err), DM_E_NOT_FOUND);
    a.key_id[0] = '\0';
    assert_int_equal(db_instance_register(db, &a, g_err, sizeof g_err), DM_E_INVALID);
    db_close(db);
}

/* ---- the listener ------------------------------------------------------- */

typedef struct {
    pthread_mutex_t mu;
    dm_db *db;
    int n, persisted_first; /* HB-L2: the db held each change when published */
    char last_to[16];
    int64_t last_id;
} collector;

static void on_event(const hbl_event *ev, void *ctx)
{
    collector *c = ctx;
    dm_instance in;
    char err[256];
    int ok = strcmp(ev->what, "state") != 0 ||
             (db_instance_get(c->db, ev->instance_id, &in, err, sizeof err) == 0 &&
              strcmp(in.state, ev->to) == 0);
    pthread_mutex_lock(&c->mu);
    c->n++;
    c->persisted_first += ok;
    if (strcmp(ev->what, "state") == 0) {
        snprintf(c->last_to, sizeof c->last_to, "%s", ev->to);
        c->last_id = ev->instance_id;
    }
    pthread_mutex_unlock(&c->mu);
}

static int last_is(collector *c, int64_t id, const char *to)
{
    pthread_mutex_lock(&c->mu);
    int r = c->last_id == id && strcmp(c->last_to, to) == 0;
    pthread_mutex_unlock(&c->mu);
    return r;
}

static int wait_last(collector *c, int64_t id, const char *to)
{
    for (int64_t end = clock_mono_ms() + 15000; clock_mono_ms() < end;) {
        if (last_is(c, id, to))
            return 1;
        clock_sleep_ms(10, NULL);
    }
    return 0;
}

typedef struct {
    int fd;
    uint8_t key[HB_KEY_LEN];
    uint64_t seq;
} sender;

static void sender_open(sender *s, int port, const char *key_hex)
{
    s->fd = socket(AF_INET, SOCK_DGRAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
    assert_int_equal(connect(s->fd, (struct sockaddr *)&a, sizeof a), 0);
    OK(hb_key_from_hex(key_hex, s->key));
    s->seq = 0;
}

static void send_pkt(sender *s, int64_t id, hb_type type, uint64_t seq, int64_t sent_at)
{
    hb_packet p = {.type = type,
                   .workload = HB_WL_RUNNING,
                   .probe = HB_PR_OK,
                   .instance_id = id,
                   .seq = seq,
                   .sent_at_ms = sent_at};
    uint8_t buf[HB_PACKET_LEN];
    OK(hb_encode(&p, s->key, buf));
    assert_int_equal(send(s->fd, buf, sizeof buf, 0), (ssize_t)sizeof buf);
}

static int wait_dropped(hbl_server *h, hb_reason r, uint64_t at_least)
{
    hbl_stats st;
    for (int64_t end = clock_mono_ms() + 15000; clock_mono_ms() < end;) {
        hbl_stats_get(h, &st);
        if (st.dropped[r] >= at_least)
            return 1;
        clock_sleep_ms(10, NULL);
    }
    return 0;
}

static hbl_server *start_listener(dm_db *db)
{
    char secret[128];
    snprintf(secret, sizeof secret, "%s/secret%d", g_dir, g_seq);
    dm_instance_persist persist = db_instance_persist(db);
    hbl_opts o = {.listen = "127.0.0.1:0", .persist = &persist, .secret_path = secret};
    hbl_server *h = NULL;
    if (hbl_start(&o, &h, g_err, sizeof g_err) != 0)
        fail_msg("hbl_start: %s", g_err);
    return h;
}

static hbl_server *start_subscribed(dm_db *db, collector *c)
{
    hbl_server *h = start_listener(db);
    OK(hbl_subscribe(h, on_event, c));
    return h;
}

/* HB-L1, HB-L2, HB-L4 to HB-L6 with real datagrams. */
static void test_listener(void **state)
{
    (void)state;
    dm_db *db = open_db();
    collector c = {.mu = PTHREAD_MUTEX_INITIALIZER, .db = db};
    hbl_server *h = start_subscribed(db, &c);
    char key[HB_KEY_HEX_LEN + 1];
    hbl_reg r = {.instance_id = 42, .kind = "gpu"};
    OK(hbl_register(h, &r, key, g_err, sizeof g_err));
    sender s;
    sender_open(&s, hbl_port(h), key);
    int64_t now = clock_wall_ms();
    send_pkt(&s, 42, HB_T_BEAT, 1, now);
    assert_true(wait_last(&c, 42, "healthy"));
    send_pkt(&s, 42, HB_T_BEAT, 1, now); /* HB-L7: the agent's second copy */
    assert_true(wait_dropped(h, HB_DUPLICATE, 1));
    hbl_stats st0;
    hbl_stats_get(h, &st0);
    assert_int_equal(st0.dropped[HB_REPLAY], 0); /* a copy is not an attack */
    assert_int_equal(st0.accepted, 1);           /* nor a new beat */
    for (uint64_t q = 2; q <= 4; q++)
        send_pkt(&s, 42, HB_T_BEAT, q, now);
    send_pkt(&s, 42, HB_T_BEAT, 1, now); /* HB-W3: an old packet again is a replay */
    assert_true(wait_dropped(h, HB_REPLAY, 1));
    hbl_stats_get(h, &st0);
    assert_int_equal(st0.dropped[HB_DUPLICATE], 1);
    send_pkt(&s, 42, HB_T_BEAT, 5, now - HB_MAX_SKEW_MS - 5000);
    assert_true(wait_dropped(h, HB_STALE, 1));
    send_pkt(&s, 43, HB_T_BEAT, 3, now); /* not registered */
    assert_true(wait_dropped(h, HB_UNKNOWN_INSTANCE, 1));
    sender other = s;
    other.key[0] ^= 1;
    send_pkt(&other, 42, HB_T_BEAT, 4, now); /* HB-L1: forged */
    assert_true(wait_dropped(h, HB_BAD_MAC, 1));
    for (uint64_t i = 0; i < 3 * HBL_RATE_PER_S; i++) /* a flood */
        send_pkt(&s, 42, HB_T_BEAT, 10 + i, now);
    assert_true(wait_dropped(h, HB_RATE, 1));
    hbl_live l;
    OK(hbl_live_get(h, 42, &l));
    assert_int_equal(l.state, DET_HEALTHY);
    assert_int_equal(l.workload, HB_WL_RUNNING);
    send_pkt(&s, 42, HB_T_LEAVING, 100000, clock_wall_ms());
    clock_sleep_ms(1100, NULL); /* refill the rate bucket */
    send_pkt(&s, 42, HB_T_LEAVING, 100001, clock_wall_ms());
    assert_true(wait_last(&c, 42, "leaving"));

    /* Silence: suspect, then failed, without another packet. */
    OK(hbl_register(h, &(hbl_reg){.instance_id = 44}, key, g_err, sizeof g_err));
    sender_open(&s, hbl_port(h), key);
    for (uint64_t i = 1; i <= 5; i++) {
        send_pkt(&s, 44, HB_T_BEAT, i, clock_wall_ms());
        clock_sleep_ms(200, NULL);
    }
    assert_true(wait_last(&c, 44, "failed"));
    dm_instance in;
    OK(db_instance_get(db, 44, &in, g_err, sizeof g_err));
    assert_string_equal(in.state, "failed");
    assert_int_not_equal(in.last_heartbeat_ms, FO_NULL);

    /* HB-L5, HB-L6: a restarted listener re-derives the key; an instance alive
     * before is judged from the restart. */
    send_pkt(&s, 44, HB_T_BEAT, 6, clock_wall_ms());
    assert_true(wait_last(&c, 44, "healthy"));
    hbl_stop(h);
    h = start_subscribed(db, &c);
    sender_open(&s, hbl_port(h), key);
    send_pkt(&s, 44, HB_T_BEAT, 7, clock_wall_ms());
    hbl_stats st;
    for (int64_t end = clock_mono_ms() + 15000; clock_mono_ms() < end; clock_sleep_ms(10, NULL)) {
        hbl_stats_get(h, &st);
        if (st.accepted >= 1)
            break;
    }
    assert_int_equal(st.accepted, 1);
    assert_true(wait_last(&c, 44, "failed")); /* no more beats after the restart */
    hbl_stop(h);
    pthread_mutex_lock(&c.mu);
    assert_int_equal(c.persisted_first, c.n); /* HB-L2 */
    pthread_mutex_unlock(&c.mu);
    db_close(db);
}

/* The events of id recorded so far that match what/reason; the silence of
 * the newest one in *ret_silent. */
static int count_events(dm_db *db, int64_t id, const char *what, const char *reason,
                        int64_t *ret_silent)
{
    dm_instance_event *ev = NULL;
    size_t n = 0;
    OK(db_instance_events(db, id, 100, &ev, &n, g_err, sizeof g_err));
    int k = 0;
    for (size_t i = 0; i < n; i++)
        if (strcmp(ev[i].what, what) == 0 && strcmp(ev[i].reason, reason) == 0) {
            if (k++ == 0 && ret_silent)
                *ret_silent = ev[i].silent_ms;
        }
    free(ev);
    return k;
}

/* HB-L8 to HB-L10 under forged datagrams from another socket: the real beats keep the
 * instance healthy, the forged ones cost at most HBL_OTHER_SRC_PER_S MACs a
 * second (the rest are refused before the MAC), and once the real beats stop
 * the conviction is held (an intake event, the live view) until the bound,
 * then made. */
static void test_listener_forged_flood(void **state)
{
    (void)state;
    dm_db *db = open_db();
    collector c = {.mu = PTHREAD_MUTEX_INITIALIZER, .db = db};
    hbl_server *h = start_subscribed(db, &c);
    char key[HB_KEY_HEX_LEN + 1];
    OK(hbl_register(h, &(hbl_reg){.instance_id = 50}, key, g_err, sizeof g_err));
    sender real, forger;
    sender_open(&real, hbl_port(h), key);
    sender_open(&forger, hbl_port(h), key);
    forger.key[0] ^= 1;
    uint64_t seq = 1, fseq = 1000000;
    int64_t t0 = clock_mono_ms(), next_beat = t0;
    for (int64_t now = t0; now - t0 < 3000; now = clock_mono_ms()) {
        if (now >= next_beat) {
            send_pkt(&real, 50, HB_T_BEAT, seq++, clock_wall_ms());
            next_beat += 200;
        }
        for (int i = 0; i < 20; i++)
            send_pkt(&forger, 50, HB_T_BEAT, fseq++, clock_wall_ms());
        clock_sleep_ms(1, NULL);
    }
    hbl_live l;
    OK(hbl_live_get(h, 50, &l));
    assert_int_equal(l.state, DET_HEALTHY);
    assert_true(l.accepted >= 10);
    assert_int_equal(count_events(db, 50, "state", "deadline", NULL), 0);
    hbl_stats st;
    hbl_stats_get(h, &st);
    assert_true(st.dropped[HB_UNVERIFIED_RATE] > 1000); /* HB-L8: refused before the MAC */
    assert_true(st.dropped[HB_BAD_MAC] <= HBL_OTHER_SRC_PER_S * 4 + HBL_OTHER_SRC_PER_S);

    /* The agent dies; the forger goes on. */
    int64_t died = clock_mono_ms();
    int held_seen = 0;
    while (!last_is(&c, 50, "failed") && clock_mono_ms() - died < 10000) {
        for (int i = 0; i < 20; i++)
            send_pkt(&forger, 50, HB_T_BEAT, fseq++, clock_wall_ms());
        OK(hbl_live_get(h, 50, &l));
        held_seen |= l.conviction_held && l.intake_lossy;
        clock_sleep_ms(1, NULL);
    }
    assert_true(wait_last(&c, 50, "failed"));
    assert_true(held_seen); /* HB-L9: the live view said so */
    int64_t silent = -1;
    assert_int_equal(count_events(db, 50, "state", "lossy_hold_bound", &silent), 1);
    assert_true(silent >= 2000 && silent < 5000); /* HB-D6: held to the bound */
    assert_int_equal(count_events(db, 50, "intake", "conviction_held", NULL), 1);
    hbl_stop(h);
    db_close(db);
}

/* HB-L11: registering a live instance again rotates its key but does not make
 * it `pending` (which the detector never judges): if nothing verifiable
 * follows, it is failed like any silent instance. */
static void test_reregister_live(void **state)
{
    (void)state;
    dm_db *db = open_db();
    collector c = {.mu = PTHREAD_MUTEX_INITIALIZER, .db = db};
    hbl_server *h = start_subscribed(db, &c);
    char key[HB_KEY_HEX_LEN + 1], key2[HB_KEY_HEX_LEN + 1];
    OK(hbl_register(h, &(hbl_reg){.instance_id = 46}, key, g_err, sizeof g_err));
    sender s;
    sender_open(&s, hbl_port(h), key);
    for (uint64_t i = 1; i <= 5; i++) {
        send_pkt(&s, 46, HB_T_BEAT, i, clock_wall_ms());
        clock_sleep_ms(100, NULL);
    }
    assert_true(wait_last(&c, 46, "healthy"));
    OK(hbl_register(h, &(hbl_reg){.instance_id = 46}, key2, g_err, sizeof g_err));
    assert_string_not_equal(key, key2);
    hbl_live l;
    OK(hbl_live_get(h, 46, &l));
    assert_int_equal(l.state, DET_HEALTHY); /* not pending */
    for (uint64_t i = 6; i <= 8; i++)       /* the old agent goes on with the old key: refused */
        send_pkt(&s, 46, HB_T_BEAT, i, clock_wall_ms());
    assert_true(wait_last(&c, 46, "failed"));
    /* The new key's agent is taken at once after that. */
    sender_open(&s, hbl_port(h), key2);
    send_pkt(&s, 46, HB_T_BEAT, 1, clock_wall_ms());
    assert_true(wait_last(&c, 46, "healthy"));
    hbl_stop(h);
    db_close(db);
}

static uint64_t accepted(hbl_server *h)
{
    hbl_stats st;
    hbl_stats_get(h, &st);
    return st.accepted;
}

/* DB-I4, HB-L13: a destroyed instance never comes back. A failed-over instance
 * cut off by a partition heals and goes on beating with its old key: refused,
 * it stays failed; its registration is refused and writes nothing, also after
 * a restart of the listener; a hand-started instance (no machine) is not. */
static void test_destroyed_never_returns(void **state)
{
    (void)state;
    dm_db *db = open_db();
    collector c = {.mu = PTHREAD_MUTEX_INITIALIZER, .db = db};
    hbl_server *h = start_subscribed(db, &c);
    dm_machine m;
    memset(&m, 0, sizeof m);
    m.instance_id = 48;
    snprintf(m.workload_id, sizeof m.workload_id, "wl-z");
    snprintf(m.provider, sizeof m.provider, "local");
    m.state = DM_MACH_RUNNING;
    m.destroyed_at_ms = FO_NULL;
    OK(db_machine_put(db, &m, g_err, sizeof g_err));
    char key[HB_KEY_HEX_LEN + 1], key2[HB_KEY_HEX_LEN + 1];
    OK(hbl_register(h, &(hbl_reg){.instance_id = 48}, key, g_err, sizeof g_err));
    sender s;
    sender_open(&s, hbl_port(h), key);
    for (uint64_t i = 1; i <= 5; i++) {
        send_pkt(&s, 48, HB_T_BEAT, i, clock_wall_ms());
        clock_sleep_ms(100, NULL);
    }
    assert_true(wait_last(&c, 48, "healthy"));
    assert_true(wait_last(&c, 48, "failed")); /* the partition */
    /* the failover fences it: destroyed, and the listener told */
    OK(db_machine_set_state(db, 48, DM_MACH_DESTROYED, g_err, sizeof g_err));
    hbl_fence(h, 48);
    uint64_t before = accepted(h);
    for (uint64_t i = 6; i <= 8; i++) { /* the partition heals */
        send_pkt(&s, 48, HB_T_BEAT, i, clock_wall_ms());
        clock_sleep_ms(60, NULL);
    }
    assert_true(wait_dropped(h, HB_FENCED, 3));
    assert_int_equal(accepted(h), before);
    hbl_live l;
    OK(hbl_live_get(h, 48, &l));
    assert_int_equal(l.state, DET_FAILED);
    dm_instance got;
    OK(db_instance_get(db, 48, &got, g_err, sizeof g_err));
    char key_id[64];
    snprintf(key_id, sizeof key_id, "%s", got.key_id);
    assert_int_equal(got.fenced, 1);
    assert_int_equal(hbl_register(h, &(hbl_reg){.instance_id = 48}, key2, g_err, sizeof g_err),
                     DM_E_CONFLICT);
    assert_non_null(strstr(g_err, "destroyed"));
    OK(db_instance_get(db, 48, &got, g_err, sizeof g_err)); /* nothing written */
    assert_string_equal(got.key_id, key_id);
    assert_string_equal(got.state, "failed");
    /* a restarted listener loads it fenced: its old key's beats are still refused */
    hbl_stop(h);
    h = start_subscribed(db, &c);
    sender_open(&s, hbl_port(h), key);
    send_pkt(&s, 48, HB_T_BEAT, 20, clock_wall_ms());
    assert_true(wait_dropped(h, HB_FENCED, 1));
    assert_int_equal(accepted(h), 0);
    assert_int_equal(hbl_register(h, &(hbl_reg){.instance_id = 48}, key2, g_err, sizeof g_err),
                     DM_E_CONFLICT);
    /* an instance no provider made registers as before */
    OK(hbl_register(h, &(hbl_reg){.instance_id = 49}, key2, g_err, sizeof g_err));
    OK(db_instance_get(db, 49, &got, g_err, sizeof g_err));
    assert_int_equal(got.fenced, 0);
    hbl_stop(h);
    db_close(db);
}

/* ---- the listener over a persistence of the test's own ------------------ */

/* An in-memory dm_instance_persist (core/instance.h): the listener reaches
 * instances through it alone (HB-L2), so one with no database runs it whole. */
typedef struct {
    pthread_mutex_t mu;
    dm_instance v[4];
    int n, fail_register, fail_record, records;
    int fail_next;   /* HB-L12: the next that many records fail, then they land */
    char stored[64]; /* the states recorded, in order, comma after each */
    char last_to[16];
} mem_persist;

static int mem_load(void *ctx, dm_instance **ret, size_t *ret_n, char *err, size_t errlen)
{
    mem_persist *m = ctx;
    pthread_mutex_lock(&m->mu);
    *ret_n = (size_t)m->n;
    *ret = m->n ? malloc(sizeof m->v) : NULL;
    if (*ret)
        memcpy(*ret, m->v, sizeof m->v);
    pthread_mutex_unlock(&m->mu);
    return 0;
}

static int mem_register(void *ctx, const dm_instance *in, char *err, size_t errlen)
{
    mem_persist *m = ctx;
    pthread_mutex_lock(&m->mu);
    int rc = m->fail_register ? dm_fail(err, errlen, DM_E_DB, "the test's disk is full") : 0;
    if (rc == 0) {
        int i = 0;
        while (i < m->n && m->v[i].instance_id != in->instance_id)
            i++;
        assert_true(i < 4);
        m->v[i] = *in;
        m->n += i == m->n;
    }
    pthread_mutex_unlock(&m->mu);
    return rc;
}

static int mem_record(void *ctx, const dm_instance_event *ev, const char *workload,
                      const char *probe, int64_t last_heartbeat_ms, char *err, size_t errlen)
{
    mem_persist *m = ctx;
    pthread_mutex_lock(&m->mu);
    m->records++;
    int rc = m->fail_record || m->fail_next > 0
                 ? dm_fail(err, errlen, DM_E_DB, "the test's disk is full")
                 : 0;
    m->fail_next -= m->fail_next > 0;
    size_t used = strlen(m->stored);
    if (rc == 0 && strcmp(ev->what, "state") == 0 &&
        used + strlen(ev->to) + 2 <= sizeof m->stored)
        snprintf(m->stored + used, sizeof m->stored - used, "%s,", ev->to);
    for (int i = 0; rc == 0 && i < m->n; i++)
        if (m->v[i].instance_id == ev->instance_id && strcmp(ev->what, "state") == 0) {
            snprintf(m->v[i].state, sizeof m->v[i].state, "%s", ev->to);
            snprintf(m->last_to, sizeof m->last_to, "%s", ev->to);
        }
    pthread_mutex_unlock(&m->mu);
    return rc;
}

static int mem_records(mem_persist *m)
{
    pthread_mutex_lock(&m->mu);
    int n = m->records;
    pthread_mutex_unlock(&m->mu);
    return n;
}

static int collected(collector *c)
{
    pthread_mutex_lock(&c->mu);
    int n = c->n;
    pthread_mutex_unlock(&c->mu);
    return n;
}

static hbl_server *start_mem(mem_persist *m, collector *c)
{
    char secret[128];
    snprintf(secret, sizeof secret, "%s/secret%d", g_dir, g_seq);
    dm_instance_persist p = {mem_load, mem_register, mem_record, m};
    hbl_opts o = {.listen = "127.0.0.1:0", .persist = &p, .secret_path = secret};
    hbl_server *h = NULL;
    if (hbl_start(&o, &h, g_err, sizeof g_err) != 0) /* p is copied (listener.h) */
        fail_msg("hbl_start: %s", g_err);
    OK(hbl_subscribe(h, on_event, c));
    return h;
}

/* HB-L2 and HB-L5 through the persistence handed to the listener: a registration
 * it refuses registers nothing; a change it fails to record is not
 * published; a restarted listener loads what it holds. */
static void test_listener_persist(void **state)
{
    (void)state;
    mem_persist m = {.mu = PTHREAD_MUTEX_INITIALIZER, .fail_register = 1};
    collector c = {.mu = PTHREAD_MUTEX_INITIALIZER}; /* no db: m is what holds the changes */
    hbl_server *h = start_mem(&m, &c);
    char key[HB_KEY_HEX_LEN + 1];
    hbl_live l;
    assert_int_equal(hbl_register(h, &(hbl_reg){.instance_id = 61}, key, g_err, sizeof g_err),
                     DM_E_DB);
    assert_int_equal(hbl_live_get(h, 61, &l), DM_E_NOT_FOUND);
    m.fail_register = 0;
    OK(hbl_register(h, &(hbl_reg){.instance_id = 61, .kind = "cpu"}, key, g_err, sizeof g_err));
    assert_int_equal(m.n, 1);
    assert_string_equal(m.v[0].kind, "cpu");
    assert_string_equal(m.v[0].state, "pending");
    assert_true(m.v[0].key_id[0] != '\0');

    pthread_mutex_lock(&m.mu);
    m.fail_record = 1;
    pthread_mutex_unlock(&m.mu);
    sender s;
    sender_open(&s, hbl_port(h), key);
    send_pkt(&s, 61, HB_T_BEAT, 1, clock_wall_ms()); /* pending -> healthy, not recorded */
    for (int64_t end = clock_mono_ms() + 15000; mem_records(&m) < 1 && clock_mono_ms() < end;)
        clock_sleep_ms(10, NULL);
    assert_true(mem_records(&m) >= 1);
    clock_sleep_ms(200, NULL);          /* time to publish, were it to */
    assert_int_equal(collected(&c), 0); /* HB-L2: not published */
    pthread_mutex_lock(&m.mu);
    m.fail_record = 0;
    pthread_mutex_unlock(&m.mu);
    send_pkt(&s, 61, HB_T_LEAVING, 2, clock_wall_ms());
    assert_true(wait_last(&c, 61, "leaving"));
    assert_string_equal(m.v[0].state, "leaving");
    hbl_stop(h);

    /* HB-L5: the restarted listener knows 61 from the persistence alone, and
     * its key (the same secret, the stored key id) verifies the agent's beat. */
    pthread_mutex_lock(&m.mu);
    snprintf(m.v[0].state, sizeof m.v[0].state, "pending");
    pthread_mutex_unlock(&m.mu);
    h = start_mem(&m, &c);
    OK(hbl_live_get(h, 61, &l));
    assert_int_equal(l.state, DET_PENDING);
    sender_open(&s, hbl_port(h), key);
    send_pkt(&s, 61, HB_T_BEAT, 3, clock_wall_ms());
    assert_true(wait_last(&c, 61, "healthy"));
    hbl_stop(h);
}

/* HB-L12: a change whose record fails is retried until it is stored, then
 * published; the change behind it waits, in order; the listener says it is
 * degraded while it retries and not after; a stop gives up a record that
 * keeps failing at once. */
static void test_listener_record_retry(void **state)
{
    (void)state;
    mem_persist m = {.mu = PTHREAD_MUTEX_INITIALIZER};
    collector c = {.mu = PTHREAD_MUTEX_INITIALIZER};
    hbl_server *h = start_mem(&m, &c);
    char key[HB_KEY_HEX_LEN + 1], reason[256] = "";
    OK(hbl_register(h, &(hbl_reg){.instance_id = 62}, key, g_err, sizeof g_err));
    pthread_mutex_lock(&m.mu);
    m.fail_next = 4;
    pthread_mutex_unlock(&m.mu);
    sender s;
    sender_open(&s, hbl_port(h), key);
    send_pkt(&s, 62, HB_T_BEAT, 1, clock_wall_ms());    /* pending -> healthy: fails 4 times */
    send_pkt(&s, 62, HB_T_LEAVING, 2, clock_wall_ms()); /* healthy -> leaving, behind it */
    int seen_degraded = 0;
    for (int64_t end = clock_mono_ms() + 15000;
         !last_is(&c, 62, "leaving") && clock_mono_ms() < end;) {
        if (hbl_storage_degraded(h, reason, sizeof reason, NULL)) {
            seen_degraded = 1;
            assert_int_equal(collected(&c), 0); /* HB-L2: nothing published before it is stored */
        }
        clock_sleep_ms(5, NULL);
    }
    assert_true(last_is(&c, 62, "leaving"));
    assert_true(seen_degraded);
    assert_non_null(strstr(reason, "the test's disk is full"));
    assert_int_equal(collected(&c), 3); /* healthy, workload none -> running, leaving */
    pthread_mutex_lock(&m.mu);
    assert_string_equal(m.stored, "healthy,leaving,");
    assert_int_equal(m.records, 7); /* 4 failed + 3 stored: none twice */
    pthread_mutex_unlock(&m.mu);
    assert_int_equal(hbl_storage_degraded(h, NULL, 0, NULL), 0);

    /* A record that never lands holds up no stop. */
    OK(hbl_register(h, &(hbl_reg){.instance_id = 63}, key, g_err, sizeof g_err));
    pthread_mutex_lock(&m.mu);
    m.fail_next = 1000000;
    pthread_mutex_unlock(&m.mu);
    sender_open(&s, hbl_port(h), key);
    send_pkt(&s, 63, HB_T_BEAT, 1, clock_wall_ms());
    for (int64_t end = clock_mono_ms() + 15000;
         !hbl_storage_degraded(h, NULL, 0, NULL) && clock_mono_ms() < end;)
        clock_sleep_ms(5, NULL);
    assert_true(hbl_storage_degraded(h, NULL, 0, NULL));
    int64_t t0 = clock_mono_ms();
    hbl_stop(h);
    assert_true(clock_mono_ms() - t0 < 3000);
    assert_int_equal(collected(&c), 3); /* HB-L2: 63's changes were not published */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_db_instances, setup, teardown),
        cmocka_unit_test_setup_teardown(test_listener, setup, teardown),
        cmocka_unit_test_setup_teardown(test_listener_forged_flood, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reregister_live, setup, teardown),
        cmocka_unit_test_setup_teardown(test_destroyed_never_returns, setup, teardown),
        cmocka_unit_test_setup_teardown(test_listener_persist, setup, teardown),
        cmocka_unit_test_setup_teardown(test_listener_record_retry, setup, teardown),
    };
    return dbfx_run(tests, sizeof tests / sizeof tests[0]);
}

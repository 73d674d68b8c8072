/* The agent loop (see agent.h for AG-A1 to AG-A5).
 *
 * One thread does the heartbeats and the workload supervision, on a fixed
 * schedule; the probe has its own thread (probe.h AG-P1). Registration is one
 * REST call; its answer carries the key and the UDP port, and the heartbeat
 * goes to the API's host at that port over a connected UDP socket. */
#include "agent/agent.h"

#include "agent/agent_http.h"
#include "agent/channel.h"
#include "agent/preempt.h"
#include "agent/probe.h"
#include "agent/snapshots.h"
#include "agent/wl_report.h"
#include "agent/workload.h"
#include "detect/heartbeat.h"
#include "util/clock.h"
#include "util/error.h"
#include "util/log.h"

#include <curl/curl.h>
#include <errno.h>
#include <jansson.h>
#include <netdb.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <unistd.h>

#define REG_BODY_MAX 16384

typedef struct {
    const agent_opts *o;
    uint8_t key[HB_KEY_LEN];
    int port;
    int fd;
    uint64_t seq;
    wl_sup wl;
    int have_wl;
    prb_runner *probe;
    pre_watch *preempt;
    asn_runner *snaps;
    uint64_t rng;
    int preempting;              /* AG-A6: the flag heartbeats carry */
    int64_t final_started_ms;    /* AG-A6: -1 none yet */
    int started;                 /* AG-A8: the workload and probe were started */
    wlr *rep;                    /* wl_report.h: the workload's crash reports */
    hb_workload wl_shown;        /* wl_report.h AG-R2: the state heartbeats carry */
    uint8_t copy[HB_PACKET_LEN]; /* AG-A7: the copy still to send */
    int64_t copy_at_ms;          /* -1: none pending */
    agc_runner *chan;            /* AG-A9 */
    atomic_bool chan_go;         /* the channel's start_workload (AG-A8) */
    atomic_bool started_flag;    /* `started`, for the channel's thread */
    atomic_int stop_req;         /* the channel's stop: 1 asked, 2 done */
    int fenced;                  /* AG-C4: the lease ran out */
} agent;

void agent_opts_init(agent_opts *o)
{
    memset(o, 0, sizeof *o);
    o->kind = "gpu";
    o->heartbeat_ms = 200;
    o->probe_every_ms = 5000;
    o->crash_limit = 5;
    o->crash_window_ms = 60000;
    o->preempt_every_ms = 1000;
    o->heartbeat_copies = 2;
    o->snapshot_every_ms = 30000;
    o->final_wait_ms = ASN_FINAL_WAIT_MS;
}

/* ---- registration -------------------------------------------------------- */

static char *register_body(const agent_opts *o)
{
    char host[128] = "";
    gethostname(host, sizeof host - 1);
    json_t *j = json_pack("{s:I, s:s}", "instance_id", (json_int_t)o->instance_id, "kind", o->kind);
    if (j && o->workload)
        json_object_set_new(j, "workload", json_string(o->workload));
    if (j && o->probe)
        json_object_set_new(j, "probe", json_string(o->probe));
    if (j && host[0])
        json_object_set_new(j, "hostname", json_string(host));
    char *s = j ? json_dumps(j, JSON_COMPACT) : NULL;
    json_decref(j);
    return s;
}

/* The answer: key (AG-A1) and port. */
static int read_answer(agent *a, const char *body, size_t len, char *err, size_t errlen)
{
    json_t *j = json_loadb(body, len, 0, NULL);
    const char *key = json_string_value(json_object_get(j, "key"));
    json_int_t port = json_integer_value(json_object_get(j, "heartbeat_port"));
    int rc = 0;
    if (!key || hb_key_from_hex(key, a->key) != 0 || port < 1 || port > 65535)
        rc = dm_fail(err, errlen, DM_E_PROTOCOL, "the server's registration answer is unusable");
    else
        a->port = (int)port;
    json_decref(j); /* jansson does not wipe: the key copy dies with the process */
    return rc;
}

static int register_once(agent *a, char *err, size_t errlen)
{
    char url[1200], body[REG_BODY_MAX], why[256] = "";
    char *post = register_body(a->o);
    int rc;
    snprintf(url, sizeof url, "%s/api/instances/register", a->o->server_url);
    agent_req r = {.url = url,
                   .token = a->o->token,
                   .ca_file = a->o->ca_file,
                   .json = post,
                   .timeout_ms = 10000,
                   .buf = body,
                   .cap = sizeof body};
    long status = post ? agent_http(&r, why, sizeof why) : 0;
    if (!post)
        rc = dm_fail(err, errlen, -ENOMEM, "out of memory");
    else if (status == 0)
        rc = dm_fail(err, errlen, DM_E_UNAVAILABLE, "cannot reach %s: %s", a->o->server_url, why);
    else if (status == 401)
        rc = dm_fail(err, errlen, DM_E_UNAUTHORIZED, "the server refused the API token");
    else if (status == 409) /* listener.h HB-L13: fenced for good; retrying cannot change it */
        rc = dm_fail(err, errlen, DM_E_PROTOCOL,
                     "the server refused to register this instance (HTTP 409): it is destroyed "
                     "(fenced), and a destroyed instance never registers again");
    else if (status != 201)
        rc = dm_fail(err, errlen, status >= 500 ? DM_E_UNAVAILABLE : DM_E_PROTOCOL,
                     "registration answered HTTP %ld", status);
    else
        rc = read_answer(a, body, r.len, err, errlen);
    explicit_bzero(body, sizeof body); /* AG-A1: it held the key */
    free(post);
    return rc;
}

/* AG-A4: until it works, *stop, or an answer that retrying cannot change. */
static int register_retry(agent *a, char *err, size_t errlen)
{
    int64_t backoff = 200;
    for (;;) {
        int rc = register_once(a, err, errlen);
        if (rc == 0 || rc == DM_E_UNAUTHORIZED || rc == DM_E_PROTOCOL || rc == -ENOMEM)
            return rc;
        char q[600];
        log_warn("agent.register_retry", "in_ms=%lld error=%s", (long long)backoff,
                 log_quote(q, sizeof q, err));
        if (clock_sleep_ms(backoff, a->o->stop))
            return DM_E_CANCELLED;
        backoff = backoff * 2 > 5000 ? 5000 : backoff * 2;
    }
}

/* ---- heartbeats ---------------------------------------------------------- */

static int open_socket(agent *a, char *err, size_t errlen)
{
    CURLU *u = curl_url();
    char *host = NULL, port[8];
    int rc = 0;
    if (!u || curl_url_set(u, CURLUPART_URL, a->o->server_url, 0) != CURLUE_OK ||
        curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK) {
        rc = dm_fail(err, errlen, DM_E_INVALID, "bad server URL");
        goto out;
    }
    size_t hl = strlen(host); /* "[::1]" -> "::1" for getaddrinfo */
    if (hl > 2 && host[0] == '[' && host[hl - 1] == ']') {
        memmove(host, host + 1, hl - 2);
        host[hl - 2] = '\0';
    }
    snprintf(port, sizeof port, "%d", a->port);
    struct addrinfo hints = {.ai_socktype = SOCK_DGRAM, .ai_flags = AI_NUMERICSERV}, *res = NULL;
    int gai = getaddrinfo(host, port, &hints, &res);
    if (gai != 0 || !res) {
        rc = dm_fail(err, errlen, DM_E_UNAVAILABLE, "cannot resolve %s: %s", host,
                     gai_strerror(gai));
        goto out;
    }
    a->fd = socket(res->ai_family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (a->fd < 0 || connect(a->fd, res->ai_addr, res->ai_addrlen) != 0)
        rc = dm_fail(err, errlen, -errno, "heartbeat socket: %s", strerror(errno));
    freeaddrinfo(res);
out:
    curl_free(host);
    curl_url_cleanup(u);
    return rc;
}

static double rnd(agent *a) /* xorshift64*: test knobs only (AG-A5) */
{
    a->rng ^= a->rng >> 12;
    a->rng ^= a->rng << 25;
    a->rng ^= a->rng >> 27;
    return (double)((a->rng * 2685821657736338717ull) >> 11) / 9007199254740992.0;
}

static hb_packet packet(agent *a, hb_type type, uint32_t flags)
{
    hb_packet p = {.type = type,
                   .workload = a->have_wl ? a->wl_shown : HB_WL_NONE,
                   .probe = prb_state(a->probe),
                   .instance_id = a->o->instance_id,
                   .seq = ++a->seq,
                   .sent_at_ms = clock_wall_ms(),
                   .flags = flags,
                   .restarts = a->have_wl ? a->wl.restarts : 0};
    return p;
}

static void send_buf(agent *a, const uint8_t *buf)
{
    /* A send error (server down, ICMP refused) is not fatal: the next try. */
    if (send(a->fd, buf, HB_PACKET_LEN, MSG_NOSIGNAL) < 0 && errno != ECONNREFUSED)
        log_debug("agent.send_failed", "errno=%d", errno);
}

static void send_one(agent *a, hb_type type, uint32_t flags)
{
    hb_packet p = packet(a, type, flags);
    uint8_t buf[HB_PACKET_LEN];
    if (hb_encode(&p, a->key, buf) == 0)
        send_buf(a, buf);
}

static int lost(agent *a) /* AG-A5 */
{
    return a->o->test_loss > 0 && rnd(a) < a->o->test_loss;
}

static int64_t jitter(agent *a) /* AG-A5 */
{
    return a->o->test_jitter_ms > 0 ? (int64_t)(rnd(a) * (double)a->o->test_jitter_ms) : 0;
}

static void beat(agent *a, int64_t due)
{
    hb_packet p = packet(a, HB_T_BEAT, a->preempting ? HB_F_PREEMPTING : 0); /* AG-A6 */
    uint8_t buf[HB_PACKET_LEN];
    if (hb_encode(&p, a->key, buf) != 0)
        return;
    if (a->o->heartbeat_copies > 1) { /* AG-A7: the copy, with its own fate */
        memcpy(a->copy, buf, sizeof buf);
        a->copy_at_ms = lost(a) ? -1 : due + AGENT_COPY_GAP_MS + jitter(a);
    }
    if (lost(a))
        return;
    int64_t j = jitter(a);
    if (j > 0)
        clock_sleep_ms(j, NULL);
    send_buf(a, buf);
}

/* AG-A6: on a notice, the final snapshot first, then the flag. */
static void preemption(agent *a, int64_t now)
{
    if (a->preempting || !pre_noticed(a->preempt))
        return;
    int rc = 0;
    if (!a->snaps || !a->started) { /* held: the workspace is not the workload's yet */
        a->preempting = 1;
        return;
    }
    if (a->final_started_ms < 0) {
        a->final_started_ms = now;
        asn_final_begin(a->snaps);
        log_info("agent.final_snapshot", "%s", "started=1");
        return;
    }
    if (asn_final_poll(a->snaps, &rc)) {
        a->preempting = 1;
        if (rc)
            log_warn("agent.final_snapshot_failed", "error=\"%s\" preempting=1", dm_strerror(rc));
        else
            log_info("agent.final_snapshot", "reported=1 ms=%lld preempting=1",
                     (long long)(now - a->final_started_ms));
    } else if (now - a->final_started_ms >= a->o->final_wait_ms) {
        a->preempting = 1;
        log_warn("agent.final_snapshot_failed", "error=\"timed out\" waited_ms=%lld preempting=1",
                 (long long)(now - a->final_started_ms));
    }
}

static void start_workload(agent *a);

/* Stops the workload and its probe for good (a stop command, AG-C4). */
static void stop_workload(agent *a)
{
    if (a->have_wl) {
        wl_stop(&a->wl, 1000);
        a->wl.state = HB_WL_EXITED; /* a restart that was due must not come */
        a->have_wl = 0;
    }
    prb_stop(a->probe);
    a->probe = NULL;
    a->started = 1; /* nothing starts it again */
    atomic_store(&a->started_flag, 1);
}

/* AG-A9: the channel's stop, and the lease (AG-C4). */
static void channel_duties(agent *a)
{
    if (atomic_load(&a->stop_req) == 1) {
        stop_workload(a);
        log_info("agent.workload_stopped", "%s", "by=controller");
        atomic_store(&a->stop_req, 2);
    }
    int64_t silent = agc_silent_ms(a->chan), lease = a->o->lease_ms > 0 ? a->o->lease_ms
                                                                        : AGC_LEASE_DEFAULT_MS;
    if (a->fenced || silent < 0 || silent <= lease)
        return;
    a->fenced = 1;
    agc_mark_fenced(a->chan);
    int had = a->have_wl;
    stop_workload(a);
    log_error("agent.self_fenced",
              "silent_ms=%lld lease_ms=%lld workload_stopped=%d detail=\"nothing heard from the "
              "controller within the lease: the workload stops for good\"",
              (long long)silent, (long long)lease, had);
}

static void loop(agent *a)
{
    const agent_opts *o = a->o;
    int64_t due = clock_mono_ms();
    while (!atomic_load(o->stop)) {
        int64_t now = clock_mono_ms();
        if (!a->started &&
            (!o->hold || (o->go && atomic_load(o->go)) || atomic_load(&a->chan_go)))
            start_workload(a); /* AG-A8 */
        channel_duties(a); /* AG-A9 */
        if (a->have_wl && wl_tick(&a->wl, now))
            log_info("agent.workload", "state=%s restarts=%u", hb_workload_name(a->wl.state),
                     a->wl.restarts);
        if (a->have_wl)
            a->wl_shown = wlr_tick(a->rep, &a->wl, prb_state(a->probe), now);
        preemption(a, now);
        if (a->copy_at_ms >= 0 && now >= a->copy_at_ms) {
            send_buf(a, a->copy); /* AG-A7 */
            a->copy_at_ms = -1;
        }
        if (now >= due) {
            if (a->copy_at_ms >= 0) { /* never two beats' copies in flight */
                send_buf(a, a->copy);
                a->copy_at_ms = -1;
            }
            beat(a, now);
            due += o->heartbeat_ms;
            if (due <= now) /* AG-A2: late; no catching up */
                due = now + o->heartbeat_ms;
        }
        int64_t next = a->copy_at_ms >= 0 && a->copy_at_ms < due ? a->copy_at_ms : due;
        int64_t wait = next - clock_mono_ms();
        if ((a->have_wl || a->final_started_ms >= 0 || !a->started || a->preempt || a->chan) &&
            wait > 50)
            wait = 50; /* notice a crash, a notice, SIGUSR1, a command soon */
        if (!a->started && wait > 5)
            wait = 5; /* held: a restore ends and the start follows at once */
        if (wait > 0)
            clock_sleep_ms(wait, o->stop);
    }
}

/* ---- run ----------------------------------------------------------------- */

static int check_opts(const agent_opts *o, char *err, size_t errlen)
{
    if (!o->server_url || !*o->server_url || !o->token || !*o->token || !o->stop)
        return dm_fail(err, errlen, DM_E_INVALID, "server URL and token are required");
    if (o->instance_id < 1 || o->instance_id > HB_ID_MAX)
        return dm_fail(err, errlen, DM_E_INVALID, "instance id must be from 1 to 2^53");
    if (o->heartbeat_ms < 10 || o->heartbeat_ms > 60000)
        return dm_fail(err, errlen, DM_E_INVALID, "heartbeat interval must be 10 ms to 60 s");
    if (o->heartbeat_copies < 1 || o->heartbeat_copies > 2)
        return dm_fail(err, errlen, DM_E_INVALID, "heartbeat copies must be 1 or 2");
    if (o->hold && !o->go)
        return dm_fail(err, errlen, DM_E_INVALID, "hold needs a start signal");
    if (o->workspace && (!o->store_url || !*o->store_url))
        return dm_fail(err, errlen, DM_E_INVALID, "a workspace needs a snapshot store");
    if (o->snapshot_every_ms < 0 || o->epoch < 0 || o->final_wait_ms < 0)
        return dm_fail(err, errlen, DM_E_INVALID, "bad snapshot period, epoch or final wait");
    if (o->lease_ms != 0 && (o->lease_ms < AGC_LEASE_MIN_MS || o->lease_ms > AGC_LEASE_MAX_MS))
        return dm_fail(err, errlen, DM_E_INVALID, "the lease must be %d ms to %d ms",
                       AGC_LEASE_MIN_MS, AGC_LEASE_MAX_MS);
    if (o->probe)
        return prb_check_spec(o->probe, err, errlen);
    return 0;
}

/* AG-A8: the workload and its probe, now (at once, or on the hold's signal). */
static void start_workload(agent *a)
{
    const agent_opts *o = a->o;
    char err[512] = "", q[600];
    a->started = 1;
    atomic_store(&a->started_flag, 1);
    if (o->hold)
        log_info("agent.hold_released", "%s", "workload=start");
    asn_enable(a->snaps); /* AG-N6 */
    if (o->workload) {
        a->have_wl = 1;
        if (wl_start(&a->wl, clock_mono_ms(), err, sizeof err) !=
            0) { /* retried by the supervisor */
            wl_start_failed(&a->wl, clock_mono_ms());
            log_warn("agent.workload_start_failed", "error=%s will_retry=1",
                     log_quote(q, sizeof q, err));
        }
    }
    if (o->probe && prb_start(o->probe, o->probe_every_ms, &a->probe, err, sizeof err) != 0)
        log_warn("agent.probe_start_failed", "error=%s", log_quote(q, sizeof q, err));
}

/* ---- the channel's hooks (AG-A9; called on the channel's thread) ---- */

static int wait_flag(const atomic_bool *flag, const atomic_bool *stop, int64_t ms)
{
    int64_t end = clock_mono_ms() + ms;
    while (!atomic_load(flag) && !atomic_load(stop) && clock_mono_ms() < end)
        clock_sleep_ms(2, stop);
    return atomic_load(flag) ? 0 : DM_E_UNAVAILABLE;
}

static int hook_start(void *cls, char *err, size_t errlen)
{
    agent *a = cls;
    atomic_store(&a->chan_go, 1);
    if (wait_flag(&a->started_flag, a->o->stop, 10000) != 0)
        return dm_fail(err, errlen, DM_E_UNAVAILABLE, "the workload did not start within 10 s");
    return 0;
}

static int hook_stop(void *cls, char *err, size_t errlen)
{
    agent *a = cls;
    atomic_store(&a->stop_req, 1);
    int64_t end = clock_mono_ms() + 15000;
    while (atomic_load(&a->stop_req) != 2 && !atomic_load(a->o->stop) && clock_mono_ms() < end)
        clock_sleep_ms(5, a->o->stop);
    if (atomic_load(&a->stop_req) != 2)
        return dm_fail(err, errlen, DM_E_UNAVAILABLE, "the workload did not stop within 15 s");
    return 0;
}

static int hook_started(void *cls)
{
    agent *a = cls;
    return atomic_load(&a->started_flag);
}

static int start_channel(agent *a, char *err, size_t errlen)
{
    const agent_opts *o = a->o;
    if (o->no_channel)
        return 0;
    agc_opts co = {.server_url = o->server_url,
                   .token = o->token,
                   .ca_file = o->ca_file,
                   .instance_id = o->instance_id,
                   .epoch = o->epoch,
                   .lease_ms = o->lease_ms,
                   .state_dir = o->state_dir,
                   .workspace = o->workspace,
                   .store_url = o->store_url,
                   .hooks = {.start = hook_start,
                             .stop = hook_stop,
                             .started = hook_started,
                             .cls = a}};
    return agc_start(&co, &a->chan, err, errlen);
}

static int start_parts(agent *a, char *err, size_t errlen)
{
    const agent_opts *o = a->o;
    int rc = 0;
    if (o->workload &&
        (rc = wl_init(&a->wl, o->workload, o->crash_limit, o->crash_window_ms, err, errlen)) != 0)
        return rc;
    a->wl.cwd = o->workspace; /* AG-A8 */
    a->wl.env_extra = o->workload_env;
    a->wl.capture = 1; /* workload.h AG-S7: its last lines go into crash reports */
    if (o->workload) {
        char q[600];
        rc = wl_user_resolve(o->workload_user, o->workspace, &a->wl.drop, &a->wl.uid, &a->wl.gid,
                             err, errlen);
        int dflt = !o->workload_user || !*o->workload_user;
        if (rc == 0 && a->wl.drop && dflt && !wl_user_can_run(&a->wl, a->wl.uid, a->wl.gid)) {
            a->wl.drop = 0;
            dm_fail(err, errlen, DM_E_INVALID,
                    "the workload user (uid %d) cannot execute %.200s (a parent directory "
                    "is private); the workload runs as root",
                    (int)a->wl.uid, a->wl.argv[0]);
            rc = 1; /* as wl_user_resolve's unreachable workspace: warn, keep root */
        }
        if (rc == 1)
            log_warn("agent.workload_as_root", "reason=%s", log_quote(q, sizeof q, err));
        else if (rc)
            return rc;
        rc = 0;
    }
    if ((rc = register_retry(a, err, errlen)) != 0 || (rc = open_socket(a, err, errlen)) != 0)
        return rc;
    log_info("agent.registered",
             "instance=%lld heartbeat_port=%d interval_ms=%lld copies=%d hold=%d",
             (long long)o->instance_id, a->port, (long long)o->heartbeat_ms, o->heartbeat_copies,
             o->hold);
    if (o->workspace) {
        asn_opts so = {.server_url = o->server_url,
                       .token = o->token,
                       .ca_file = o->ca_file,
                       .instance_id = o->instance_id,
                       .workspace = o->workspace,
                       .store_url = o->store_url,
                       .every_ms = o->snapshot_every_ms,
                       .epoch = o->epoch,
                       .hold = o->hold};
        if ((rc = asn_start(&so, &a->snaps, err, errlen)) != 0)
            return rc;
    }
    if ((rc = start_channel(a, err, errlen)) != 0)
        return rc;
    wlr_opts ro = {.server_url = o->server_url,
                   .token = o->token,
                   .ca_file = o->ca_file,
                   .instance_id = o->instance_id,
                   .kind = o->kind,
                   .workspace = o->workspace,
                   .host_check = o->host_check,
                   .runas = &a->wl};
    if (o->workload && (rc = wlr_start(&ro, &a->rep, err, errlen)) != 0)
        return rc;
    if (o->preempt_cloud != PRE_NONE)
        rc = pre_start((pre_cloud)o->preempt_cloud, o->metadata_url, o->preempt_every_ms,
                       &a->preempt, err, errlen);
    return rc;
}

int agent_run(const agent_opts *o, char *err, size_t errlen)
{
    int rc = check_opts(o, err, errlen);
    if (rc)
        return rc;
    agent *a = calloc(1, sizeof *a);
    if (!a)
        return dm_fail(err, errlen, -ENOMEM, "out of memory");
    a->o = o;
    a->fd = -1;
    a->final_started_ms = -1;
    a->copy_at_ms = -1;
    if (getrandom(&a->rng, sizeof a->rng, 0) != sizeof a->rng || a->rng == 0)
        a->rng = (uint64_t)clock_mono_us() | 1;
    curl_global_init(CURL_GLOBAL_DEFAULT);
    if ((rc = start_parts(a, err, errlen)) != 0)
        goto out;
    loop(a);
    for (int i = 0; i < AGENT_LEAVING_COPIES; i++) /* AG-A3 */
        send_one(a, HB_T_LEAVING, 0);
    log_info("agent.leaving", "instance=%lld", (long long)o->instance_id);
out:
    agc_stop(a->chan); /* first: its hooks use the workload */
    prb_stop(a->probe);
    pre_stop(a->preempt);
    asn_stop(a->snaps); /* waits for a snapshot under way: it stays consistent (SNAP-SN3) */
    wlr_stop(a->rep);
    if (a->have_wl)
        wl_stop(&a->wl, 10000);
    if (a->fd >= 0)
        close(a->fd);
    explicit_bzero(a->key, sizeof a->key);
    free(a);
    return rc == DM_E_CANCELLED ? 0 : rc;
}

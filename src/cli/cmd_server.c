/* `dumont server`: the control plane. Parses flags, prepares DUMONT_HOME,
 * opens the database, recovers interrupted failovers, serves the API until
 * SIGINT/SIGTERM, then stops cleanly (runners record their failovers first).
 *
 * Signals are blocked before any thread starts, so every thread inherits the
 * mask and only the main thread, in sigwait(), receives them.
 *
 * CLI-SV1: one controller per state (docs/security.md "One controller"): the
 *      server locks $DUMONT_HOME/server.lock and the database (db.h DB-D5)
 *      before it serves or acts; a second one is refused, exit 1, with the
 *      holder named.
 * CLI-SV2: a watch thread checks both locks every SV_LOCK_CHECK_MS; one lost
 *      fences the database handle at once (DB-D6: no decision is written after
 *      that), then the main thread (SIGUSR1) stops the API, the runners and
 *      the detector and the server exits 3 with `server.lock_lost`: a
 *      supervisor restarts it, and it takes the lock again or is refused.
 * CLI-SV3: a lost *database* lock (PostgreSQL restarted or stopped, the lock's
 *      session terminated) is taken back instead: the handle stays fenced
 *      (runners and the detector pause, nothing is decided), the watch tries
 *      again with backoff (250 ms doubling to 5 s) until the database answers,
 *      then takes the lock (db.h DB-D7) and lifts the fence: what was paused
 *      goes on. If another controller holds the lock by then, or held it
 *      meanwhile, the server exits 3 as in CLI-SV2, naming that one. */
#include "cli/commands.h"

#include "alerts/alerts.h"
#include "api/metrics.h"
#include "api/server.h"
#include "db/db.h"
#include "db/db_instance.h"
#include "db/db_token.h"
#include "detect/listener.h"
#include "failover/orchestrator.h"
#include "failover/ports.h"
#include "agent/channel.h"
#include "provider/channel.h"
#include "provider/provider.h"
#include "util/clock.h"
#include "util/error.h"
#include "util/fsutil.h"
#include "util/home.h"
#include "util/lockfile.h"
#include "util/log.h"
#include "util/parse.h"
#include "util/secret.h"

#include <getopt.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static const char usage[] =
    "usage: dumont server [--listen ADDR:PORT] [--home DIR] [--sim-speed N] [--log-level L]\n"
    "                     [--tls-cert FILE --tls-key FILE] [--provider NAME]\n"
    "\n"
    "Runs the Dumont control plane: REST API, failover orchestrator, database.\n"
    "\n"
    "  --listen ADDR:PORT  where to serve the API (default 127.0.0.1:8700; env DUMONT_LISTEN)\n"
    "  --home DIR          state directory (default ~/.dumont; env DUMONT_HOME)\n"
    "  --sim-speed N       simulated seconds per wall second for simulated failovers\n"
    "                      (default 200; env DUMONT_SIM_SPEED)\n"
    "  --log-level L       debug|info|warn|error (default info; env DUMONT_LOG_LEVEL)\n"
    "  --heartbeat-listen ADDR:PORT  UDP heartbeats of `dumont agent` (default: the\n"
    "                      --listen host and port + 1, i.e. 8701; docs/detect.md)\n"
    "  --provider NAME     where new instances come from: local (default; real instances\n"
    "                      on this machine, docs/provider.md) or none (env DUMONT_PROVIDER)\n"
    "  --provision-delay DUR  added to each local provisioning, to play a slower cloud\n"
    "                      (default 0; e.g. 30s)\n"
    "  --agent-lease DUR   the lease of the agents this server launches (default 10s;\n"
    "                      300ms .. 10m): an agent that hears nothing from the server\n"
    "                      for longer stops its workload (docs/security.md \"Leases\")\n"
    "  --tls-cert FILE     serve HTTPS with this PEM certificate chain (env DUMONT_TLS_CERT)\n"
    "  --tls-key FILE      ... and this PEM private key (env DUMONT_TLS_KEY); clients\n"
    "                      verify the certificate (DUMONT_CA_FILE names a private CA)\n"
    "\n"
    "DUMONT_PUBLIC_URL (default $DUMONT_URL when set, else the address served) is\n"
    "the controller's address for agents on a cloud and for alert links;\n"
    "DUMONT_AGENT_BUNDLE the portable agent build it serves to them\n"
    "(scripts/portable-agent.sh; docs/deploy.md).\n"
    "\n"
    "Without TLS on a non-loopback address, heartbeat keys and new credentials are\n"
    "not handed out (403): agents and `dumont tokens create` need TLS there.\n"
    "\n"
    "On first start it writes an API token to $DUMONT_HOME/token (mode 0600); clients\n"
    "send it as `Authorization: Bearer <token>`. The database is SQLite in\n"
    "$DUMONT_HOME/dumont.db unless DUMONT_DATABASE_URL=postgresql://... is set.\n"
    "The dashboard is at http://ADDR:PORT/ (sign in with the same token).\n"
    "\n"
    "One server per DUMONT_HOME and per database: a second one exits 1 naming the\n"
    "one that runs; a server that loses its lock exits 3 (run it under a supervisor).\n";

static char hb_listen[256];    /* --heartbeat-listen; "" for the default */
static char provider_flag[32]; /* --provider; "" for $DUMONT_PROVIDER or local */
static int64_t provision_delay_ms;
static int64_t agent_lease_ms; /* --agent-lease; 0: the agents' default */

static int parse_flags(dm_config *cfg, int argc, char **argv)
{
    static const struct option opts[] = {
        {"listen", required_argument, NULL, 'l'},
        {"home", required_argument, NULL, 'H'},
        {"sim-speed", required_argument, NULL, 's'},
        {"heartbeat-listen", required_argument, NULL, 'b'},
        {"log-level", required_argument, NULL, 'v'},
        {"provider", required_argument, NULL, 'p'},
        {"provision-delay", required_argument, NULL, 'd'},
        {"agent-lease", required_argument, NULL, 'L'},
        {"tls-cert", required_argument, NULL, 'C'},
        {"tls-key", required_argument, NULL, 'K'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case 'l':
            snprintf(cfg->listen, sizeof cfg->listen, "%s", optarg);
            break;
        case 'H':
            if (cfg_set_home(cfg, optarg) != 0) {
                fprintf(stderr, "dumont server: --home must be a directory path that is not "
                                "too long\n");
                return 2;
            }
            break;
        case 's':
            if (parse_double(optarg, 0.001, 1e9, &cfg->sim_speed) != 0) {
                fprintf(stderr, "dumont server: --sim-speed must be a number from 0.001 to 1e9\n");
                return 2;
            }
            break;
        case 'b':
            snprintf(hb_listen, sizeof hb_listen, "%s", optarg);
            break;
        case 'v':
            snprintf(cfg->log_level, sizeof cfg->log_level, "%s", optarg);
            break;
        case 'p':
            if (strcmp(optarg, "local") != 0 && strcmp(optarg, "none") != 0) {
                fprintf(stderr, "dumont server: --provider must be local or none\n");
                return 2;
            }
            snprintf(provider_flag, sizeof provider_flag, "%s", optarg);
            break;
        case 'd':
            if (parse_duration_ms(optarg, 0, 3600000, &provision_delay_ms) != 0) {
                fprintf(stderr, "dumont server: --provision-delay must be a duration such as "
                                "500ms or 30s (at most 1h)\n");
                return 2;
            }
            break;
        case 'L':
            if (parse_duration_ms(optarg, AGC_LEASE_MIN_MS, AGC_LEASE_MAX_MS, &agent_lease_ms) !=
                0) {
                fprintf(stderr, "dumont server: --agent-lease must be a duration from 300ms to "
                                "10m, such as 10s\n");
                return 2;
            }
            break;
        case 'C':
        case 'K': {
            char *dst = c == 'C' ? cfg->tls_cert : cfg->tls_key;
            if (!*optarg || strlen(optarg) >= sizeof cfg->tls_cert) {
                fprintf(stderr, "dumont server: --tls-%s needs a file path\n",
                        c == 'C' ? "cert" : "key");
                return 2;
            }
            snprintf(dst, sizeof cfg->tls_cert, "%s", optarg);
            break;
        }
        case 'h':
            fputs(usage, stdout);
            return 0;
        default:
            fputs(usage, stderr);
            return 2;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "dumont server: unexpected argument '%s'\n%s", argv[optind], usage);
        return 2;
    }
    return -1; /* go on */
}

/* Files: the home's state and secrets are private whatever made them
 * (util/home.h HOME-H1); a home others can enter is said once. */
static int secure_home(const dm_config *cfg)
{
    home_report hr;
    char err[PATH_MAX + 64], q[PATH_MAX + 8];
    int rc = home_secure(cfg->home, &hr, err, sizeof err);
    if (rc) {
        fprintf(stderr, "dumont server: %s\n", err);
        return 1;
    }
    if (hr.home_mode & 077)
        log_warn("home.accessible",
                 "path=%s mode=%04o detail=\"group or others can enter the state directory; its "
                 "files are private (0600/0700), but consider chmod 700\"",
                 log_quote(q, sizeof q, cfg->home), hr.home_mode);
    if (hr.fixed || hr.failed)
        log_warn("home.permissions_fixed", "path=%s fixed=%llu failed=%llu",
                 log_quote(q, sizeof q, cfg->home), (unsigned long long)hr.fixed,
                 (unsigned long long)hr.failed);
    return 0;
}

/* CLI-SV1: the home's lock, before anything in the home is touched. */
static int lock_home(const dm_config *cfg, lockfile **ret)
{
    char path[PATH_MAX + 16], err[PATH_MAX + LOCKFILE_ID_MAX + 64];
    snprintf(path, sizeof path, "%s/server.lock", cfg->home);
    int rc = lockfile_take(path, ret, err, sizeof err);
    if (rc == DM_E_BUSY)
        fprintf(stderr,
                "dumont server: another dumont server runs on %s: %s (one server per "
                "DUMONT_HOME; stop that one first)\n",
                cfg->home, err);
    else if (rc)
        fprintf(stderr, "dumont server: %s\n", err);
    return rc ? 1 : 0;
}

static int prepare_home(const dm_config *cfg, lockfile **home_lock, char *token, size_t toklen)
{
    int rc = fs_mkdir_p(cfg->home, 0700), created = 0;
    if (rc) {
        fprintf(stderr, "dumont server: cannot create %s: %s\n", cfg->home, dm_strerror(rc));
        return 1;
    }
    if (lock_home(cfg, home_lock) || secure_home(cfg))
        return 1;
    rc = secret_load_or_create(cfg->token_path, token, toklen, &created);
    if (rc) {
        fprintf(stderr, "dumont server: cannot read or create the API token %s: %s\n",
                cfg->token_path, dm_strerror(rc));
        return 1;
    }
    char q[PATH_MAX + 8];
    if (created)
        log_info("token.created", "path=%s mode=0600", log_quote(q, sizeof q, cfg->token_path));
    return 0;
}

static void server_sigset(sigset_t *set)
{
    sigemptyset(set);
    sigaddset(set, SIGINT);
    sigaddset(set, SIGTERM);
    sigaddset(set, SIGUSR1); /* CLI-SV2: the watch thread's "lock lost" */
}

static int wait_for_signal(void)
{
    sigset_t set;
    server_sigset(&set);
    int sig = 0;
    sigwait(&set, &sig);
    return sig;
}

/* ---- CLI-SV2: the locks' watch ------------------------------------------------ */

#define SV_LOCK_CHECK_MS 500

typedef struct {
    const lockfile *home;
    db_ctl_lock *db_lock;
    dm_db *db;
    pthread_t main_thread, thread;
    atomic_bool stop;
    atomic_int lost;
    int started;
} lock_watch;

#define SV_RETAKE_FIRST_MS 250  /* CLI-SV3: the first retry of a lost lock */
#define SV_RETAKE_MAX_MS   5000 /* ... doubling to this */
#define SV_RETAKE_LOG_MS   10000

/* CLI-SV3: takes the lost database lock back, with backoff, while the
 * database cannot be reached; 0 when held again (the fence stays until the
 * caller lifts it), else the refusal (another controller holds it, or held
 * it meanwhile) or DM_E_CANCELLED (the server stops). */
static int retake(lock_watch *w, char *err, size_t errlen)
{
    int64_t wait = SV_RETAKE_FIRST_MS, next_log = clock_mono_ms() + SV_RETAKE_LOG_MS;
    char q[1100];
    for (int tries = 1;; tries++) {
        if (clock_sleep_ms(wait, &w->stop))
            return DM_E_CANCELLED;
        int rc = db_ctl_lock_retake(w->db_lock, err, errlen);
        if (rc != DM_E_DB)
            return rc;
        if (clock_mono_ms() >= next_log) {
            log_warn("server.lock_waiting",
                     "lock=database tries=%d error=%s detail=\"the database cannot be reached; "
                     "no decision is taken until the lock is held again\"",
                     tries, log_quote(q, sizeof q, err));
            next_log = clock_mono_ms() + SV_RETAKE_LOG_MS;
        }
        wait = wait * 2 > SV_RETAKE_MAX_MS ? SV_RETAKE_MAX_MS : wait * 2;
    }
}

static void *watch_main(void *arg)
{
    lock_watch *w = arg;
    char err[1024] = "", q[1100];
    while (!atomic_load(&w->stop)) {
        const char *which = "home";
        int rc = lockfile_check(w->home, err, sizeof err);
        if (rc == 0) {
            which = "database";
            rc = db_ctl_lock_check(w->db_lock, err, sizeof err);
        }
        if (rc) {
            db_fence(w->db); /* DB-D6: at once, before anyone is told */
            int64_t t0 = clock_mono_ms();
            int db = strcmp(which, "database") == 0;
            log_error("server.lock_lost",
                      "lock=%s error=%s detail=\"%s\"", which, log_quote(q, sizeof q, err),
                      db ? "this server stops acting and takes the lock back when the database "
                           "answers; it exits if another controller holds it"
                         : "this server no longer controls its state: it stops acting and "
                           "exits; a supervisor restarts it");
            if (db && (rc = retake(w, err, sizeof err)) == 0) { /* CLI-SV3 */
                db_unfence(w->db);
                log_warn("server.lock_retaken", "lock=database outage_ms=%lld",
                         (long long)(clock_mono_ms() - t0));
                continue;
            }
            if (rc == DM_E_CANCELLED)
                return NULL;
            if (db) {
                log_error("server.lock_refused", "lock=database error=%s",
                          log_quote(q, sizeof q, err));
                fprintf(stderr, "dumont server: lost the database lock and cannot take it back: "
                                "%s\n", err);
            }
            atomic_store(&w->lost, 1);
            pthread_kill(w->main_thread, SIGUSR1);
            return NULL;
        }
        clock_sleep_ms(SV_LOCK_CHECK_MS, &w->stop);
    }
    return NULL;
}

static int watch_start(lock_watch *w)
{
    w->main_thread = pthread_self();
    int rc = pthread_create(&w->thread, NULL, watch_main, w);
    w->started = rc == 0;
    return -rc;
}

static void watch_stop(lock_watch *w)
{
    if (!w->started)
        return;
    atomic_store(&w->stop, 1);
    pthread_join(w->thread, NULL);
    w->started = 0;
}

/* CLI-SV1: the database's lock, right after it is opened. */
static int lock_db(dm_db *db, const char *shown, db_ctl_lock **ret)
{
    char err[1024] = "";
    int rc = db_ctl_lock_take(db, ret, err, sizeof err);
    if (rc == DM_E_BUSY)
        fprintf(stderr,
                "dumont server: another dumont server controls the database %s: %s (one "
                "server per database; stop that one first)\n",
                shown, err);
    else if (rc)
        fprintf(stderr, "dumont server: cannot lock the database %s: %s\n", shown, err);
    return rc;
}

/* PROV-PD3 of provider.c: every instance gets an agent credential of its own. */
static int mint_agent(void *cls, int64_t id, char *buf, size_t cap, char *err, size_t errlen)
{
    char name[DB_TOKEN_NAME_MAX], q[DB_TOKEN_NAME_MAX + 8];
    int rc =
        db_token_create_agent(cls, id, clock_wall_ms(), buf, cap, name, sizeof name, err, errlen);
    if (rc == 0)
        log_info("token.created", "name=%s role=agent instance_id=%lld by=provision",
                 log_quote(q, sizeof q, name), (long long)id);
    return rc;
}

static void revoke_agent(void *cls, int64_t id)
{
    char err[256];
    int64_t n = 0;
    if (db_token_revoke_instance(cls, id, &n, err, sizeof err) != 0)
        log_warn("token.revoke_failed", "instance_id=%lld error=%s", (long long)id, err);
    else if (n > 0)
        log_info("token.revoked", "instance_id=%lld tokens=%lld by=destroy", (long long)id,
                 (long long)n);
}

/* The URL this server is reached at on this machine: its listen address
 * (the loopback for a wildcard) and the port served. */
static void served_url(const dm_config *cfg, int port, int tls, char *url, size_t cap)
{
    char host[200] = "";
    int lport = 0;
    if (parse_host_port(cfg->listen, host, sizeof host, &lport) != 0 || !host[0] ||
        strcmp(host, "0.0.0.0") == 0 || strcmp(host, "::") == 0)
        snprintf(host, sizeof host, "127.0.0.1");
    snprintf(url, cap, strchr(host, ':') ? "%s://[%s]:%d" : "%s://%s:%d", tls ? "https" : "http",
             host, port);
}

/* docs/deploy.md: the controller's public address, for agents on a cloud
 * (the bootstrap's --server: routes_bootstrap.c API-B1) and the links of
 * alerts: DUMONT_PUBLIC_URL, else DUMONT_URL when it is set, else the address
 * the server serves. No trailing '/'. */
static void public_address(const dm_config *cfg, char *url, size_t cap)
{
    const char *dumont_url = getenv("DUMONT_URL");
    char host[200];
    int lport = 0;
    if (cfg->public_url[0])
        snprintf(url, cap, "%s", cfg->public_url);
    else if (dumont_url && *dumont_url)
        snprintf(url, cap, "%s", cfg->url);
    else
        served_url(cfg, parse_host_port(cfg->listen, host, sizeof host, &lport) == 0 ? lport : 8700,
                   cfg->tls_cert[0] != '\0', url, cap);
    size_t n = strlen(url);
    while (n && url[n - 1] == '/')
        url[--n] = '\0';
}

/* The portable agent build the server hands out (routes_bootstrap.c API-B2):
 * DUMONT_AGENT_BUNDLE, else build-portable/ beside this program's build/
 * directory when it is there; "" for none. */
static void agent_bundle(char *bundle, size_t cap)
{
    const char *b = getenv("DUMONT_AGENT_BUNDLE");
    char exe[PATH_MAX];
    ssize_t el;
    bundle[0] = '\0';
    if (b && *b) {
        snprintf(bundle, cap, "%s", b);
    } else if ((el = readlink("/proc/self/exe", exe, sizeof exe - 1)) > 0) {
        exe[el] = '\0';
        char *slash = strrchr(exe, '/');
        if (slash)
            *slash = '\0';
        if (snprintf(bundle, cap, "%s/../build-portable/dumont-agent-linux-x86_64.tar.gz", exe) >=
                (int)cap ||
            access(bundle, R_OK) != 0)
            bundle[0] = '\0';
    }
}

/* The alert service (docs/alerts.md): its key in home; its links point at
 * the public address. */
static int open_alerts(const dm_config *cfg, dm_db *db, al_service **ret, char *err, size_t errlen)
{
    char key[PATH_MAX + 16], url[CFG_URL_MAX];
    snprintf(key, sizeof key, "%s/alerts.key", cfg->home);
    public_address(cfg, url, sizeof url);
    al_opts o = {.db = db,
                 .key_path = key,
                 .public_url = url,
                 .ca_file = cfg->ca_file[0] ? cfg->ca_file : NULL,
                 .time_scale = cfg->alert_time_scale};
    int rc = al_service_new(&o, ret, err, errlen);
    if (rc == 0 && cfg->alert_time_scale > 1.0)
        log_warn("alert.time_scale",
                 "scale=%g detail=\"a test knob: alert retries wait that many times less\"",
                 cfg->alert_time_scale);
    return rc;
}

/* Opens the provider (--provider, $DUMONT_PROVIDER, else local) and gives
 * the orchestrator what real failovers need (orchestrator.h ORCH-O5). Agents of
 * local instances reach the API on the loopback at the port served. */
static int attach_provider(const dm_config *cfg, dm_db *db, fo_orch *orch, hbl_server *hb,
                           prov_channel *chan, int port, int tls, dm_provider **ret, char *err,
                           size_t errlen)
{
    const char *name = provider_flag[0] ? provider_flag : getenv("DUMONT_PROVIDER");
    if (!name || !*name)
        name = "local";
    if (strcmp(name, "none") == 0) {
        log_info("provider.none", "%s", "real failovers are off (--provider none)");
        return 0;
    }
    prov_config pc = {.home = cfg->home,
                      .provision_delay_ms = provision_delay_ms,
                      .channel = chan,
                      .lease_ms = agent_lease_ms};
    int rc = provider_open(name, &pc, ret, err, errlen);
    if (rc)
        return rc;
    prov_cred_hooks hooks = {.mint = mint_agent, .revoke = revoke_agent, .cls = db};
    provider_set_creds(*ret, &hooks); /* agents never get the admin token */
    char url[256];
    served_url(cfg, port, tls, url, sizeof url);
    fo_real_ports ports; /* liveness, probes, events: the listener (failover/ports.h) */
    fo_ports_listener(hb, &ports);
    fo_real_env env = {.provider = *ret,
                       .ports = &ports,
                       .store_url = cfg->store,
                       .server_url = url,
                       .token = "(minted per instance: PROV-PD3 of provider.c)",
                       .ca_file = cfg->ca_file[0] ? cfg->ca_file : NULL,
                       .channel = chan,
                       .budget_time_scale = cfg->failover_time_scale};
    if (cfg->failover_time_scale > 1.0)
        log_warn("failover.time_scale",
                 "scale=%g detail=\"a test knob: the failover budget's window and backoff are "
                 "that many times shorter\"",
                 cfg->failover_time_scale);
    rc = fo_orch_attach(orch, &env, err, errlen);
    if (rc == 0)
        log_info("provider.attached", "provider=%s store=%s", name, cfg->store);
    return rc;
}

static int serve(dm_config *cfg, const lockfile *home_lock, const char *token)
{
    dm_db *db = NULL;
    db_ctl_lock *db_lock = NULL;
    lock_watch watch = {.home = home_lock};
    fo_orch *orch = NULL;
    api_server *srv = NULL;
    hbl_server *hb = NULL;
    dm_provider *prov = NULL;
    prov_channel *chan = NULL; /* the control channel (provider/channel.h) */
    api_metrics *metrics = NULL; /* outlives the listener: it is one of its subscribers */
    al_service *alerts = NULL;   /* the same */
    char err[512] = "", q[1200], shown[CFG_URL_MAX];
    int status = 1, rc, recovered = 0;
    db_url_redact(cfg->database_url, shown, sizeof shown);
    if ((rc = db_open(cfg->database_url, &db, err, sizeof err)) != 0) {
        fprintf(stderr, "dumont server: cannot open the database %s: %s\n", shown, err);
        goto out;
    }
    if ((rc = lock_db(db, shown, &db_lock)) != 0) /* CLI-SV1 */
        goto out;
    watch.db = db;
    watch.db_lock = db_lock;
    if ((rc = watch_start(&watch)) != 0) {
        fprintf(stderr, "dumont server: %s\n", dm_strerror(rc));
        goto out;
    }
    if ((rc = chan_open(db, &chan, err, sizeof err)) != 0) {
        fprintf(stderr, "dumont server: %s\n", err);
        goto out;
    }
    chan_set_lease(chan, agent_lease_ms); /* PROV-CH6: what the fence may count on */
    if ((rc = fo_orch_new(db, cfg->sim_speed, &orch)) != 0) {
        fprintf(stderr, "dumont server: %s\n", dm_strerror(rc));
        goto out;
    }
    if ((rc = fo_orch_set_store(orch, cfg->store, err, sizeof err)) != 0) { /* ORCH-O10 */
        fprintf(stderr, "dumont server: DUMONT_STORE: %s\n", err);
        goto out;
    }
    dm_instance_persist instances = db_instance_persist(db); /* listener.h HB-L2 */
    if ((rc = hbl_start_server(hb_listen, cfg->listen, cfg->home, &instances, &hb, err,
                               sizeof err)) != 0) {
        fprintf(stderr, "dumont server: %s\n", err);
        goto out;
    }
    if ((rc = api_metrics_new(db, orch, hb, &metrics, err, sizeof err)) != 0) {
        fprintf(stderr, "dumont server: %s\n", err);
        goto out;
    }
    if ((rc = open_alerts(cfg, db, &alerts, err, sizeof err)) != 0 ||
        (rc = hbl_subscribe(hb, al_on_instance, alerts)) != 0 ||
        (rc = al_service_start(alerts, err, sizeof err)) != 0) {
        fprintf(stderr, "dumont server: %s\n", err[0] ? err : dm_strerror(rc));
        goto out;
    }
    char public_url[CFG_URL_MAX], bundle[PATH_MAX];
    public_address(cfg, public_url, sizeof public_url);
    agent_bundle(bundle, sizeof bundle);
    api_server_opts o = {.listen = cfg->listen,
                         .public_url = public_url,
                         .agent_bundle = bundle[0] ? bundle : NULL,
                         .store_url = cfg->store,
                         .metrics = metrics,
                         .alerts = alerts,
                         .token = token,
                         .db = db,
                         .orch = orch,
                         .detect = hb,
                         .channel = chan,
                         .tls_cert = cfg->tls_cert,
                         .tls_key = cfg->tls_key};
    if ((rc = api_server_start(&o, &srv, err, sizeof err)) != 0) {
        fprintf(stderr, "dumont server: %s\n", err);
        goto out;
    }
    if ((rc = attach_provider(cfg, db, orch, hb, chan, api_server_port(srv), api_server_tls(srv), &prov,
                              err, sizeof err)) != 0 ||
        (rc = fo_orch_recover(orch, &recovered, err, sizeof err)) != 0) {
        fprintf(stderr, "dumont server: %s\n", err[0] ? err : dm_strerror(rc));
        goto out;
    }
    api_server_set_ready(srv); /* API-S7: /healthz says ok from here on */
    log_info("server.listening", "listen=%s port=%d tls=%d database=%s db=%s home=%s recovered=%d",
             log_quote(q, sizeof q, cfg->listen), api_server_port(srv), api_server_tls(srv),
             db_backend_name(db), log_quote(q + 600, sizeof q - 600, shown), cfg->home, recovered);
    int sig = wait_for_signal();
    int lost = atomic_load(&watch.lost);
    if (lost)
        log_error("server.stopping", "%s", "reason=lock_lost");
    else
        log_info("server.stopping", "signal=%s", sig == SIGINT ? "SIGINT" : "SIGTERM");
    fo_orch_stop_acting(orch); /* ORCH-O15: first, so what chan_shutdown cancels halts */
    chan_shutdown(chan);       /* PROV-CH4: runners waiting for an answer stop waiting */
    api_server_stop(srv);
    srv = NULL;
    fo_orch_shutdown(orch); /* runners use the listener: stop them first */
    hbl_stop(hb);
    hb = NULL;
    status = lost ? 3 : 0;
out:
    watch_stop(&watch);
    if (atomic_load(&watch.lost))
        status = 3;
    fo_orch_stop_acting(orch); /* ORCH-O15 */
    chan_shutdown(chan);
    api_server_stop(srv);
    fo_orch_shutdown(orch);
    hbl_stop(hb);
    fo_orch_free(orch);
    api_metrics_free(metrics);
    al_service_free(alerts); /* after the listener and the runners: what they said is queued */
    provider_close(prov);
    chan_close(chan); /* after the API and the runners, its callers */
    db_ctl_lock_release(db_lock); /* after the last write */
    db_close(db);
    if (status == 0)
        log_info("server.stopped", "%s", "");
    return status;
}

int cmd_server(dm_config *cfg, int argc, char **argv)
{
    int rc = parse_flags(cfg, argc, argv);
    if (rc >= 0)
        return rc;
    log_level lvl;
    if (log_level_parse(cfg->log_level, &lvl) != 0) {
        fprintf(stderr, "dumont server: log level must be debug, info, warn or error\n");
        return 2;
    }
    log_set_level(lvl);
    sigset_t set;
    server_sigset(&set);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);
    umask(077); /* before anything is created: every new file 0600, directory 0700 */
    char token[SECRET_TOKEN_MAX];
    lockfile *home_lock = NULL;
    if (prepare_home(cfg, &home_lock, token, sizeof token)) {
        lockfile_release(home_lock);
        return 1;
    }
    rc = serve(cfg, home_lock, token);
    explicit_bzero(token, sizeof token);
    lockfile_release(home_lock); /* last: the state is no longer touched */
    return rc;
}

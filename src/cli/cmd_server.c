/* `dumont server`: the control plane. Parses flags, prepares DUMONT_HOME,
 * opens the database, recovers interrupted failovers, serves the API until
 * SIGINT/SIGTERM, then stops cleanly (runners record their failovers first).
 *
 * Signals are blocked before any thread starts, so every thread inherits the
 * mask and only the main thread, in sigwait(), receives them. */
#include "cli/commands.h"

#include "api/server.h"
#include "db/db.h"
#include "detect/listener.h"
#include "failover/orchestrator.h"
#include "util/error.h"
#include "util/fsutil.h"
#include "util/log.h"
#include "util/parse.h"
#include "util/secret.h"

#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>

static const char usage[] =
    "usage: dumont server [--listen ADDR:PORT] [--home DIR] [--sim-speed N] [--log-level L]\n"
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
    "\n"
    "On first start it writes an API token to $DUMONT_HOME/token (mode 0600); clients\n"
    "send it as `Authorization: Bearer <token>`. The database is SQLite in\n"
    "$DUMONT_HOME/dumont.db unless DUMONT_DATABASE_URL=postgresql://... is set.\n"
    "The dashboard is at http://ADDR:PORT/ (sign in with the same token).\n";

static char hb_listen[256]; /* --heartbeat-listen; "" for the default */

static int parse_flags(dm_config *cfg, int argc, char **argv)
{
    static const struct option opts[] = {
        {"listen", required_argument, NULL, 'l'},
        {"home", required_argument, NULL, 'H'},
        {"sim-speed", required_argument, NULL, 's'},
        {"heartbeat-listen", required_argument, NULL, 'b'},
        {"log-level", required_argument, NULL, 'v'},
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

static int prepare_home(const dm_config *cfg, char *token, size_t toklen)
{
    int rc = fs_mkdir_p(cfg->home, 0700), created = 0;
    if (rc) {
        fprintf(stderr, "dumont server: cannot create %s: %s\n", cfg->home, dm_strerror(rc));
        return 1;
    }
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

static int wait_for_signal(void)
{
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    int sig = 0;
    sigwait(&set, &sig);
    return sig;
}

static int serve(dm_config *cfg, const char *token)
{
    dm_db *db = NULL;
    fo_orch *orch = NULL;
    api_server *srv = NULL;
    hbl_server *hb = NULL;
    char err[512] = "", q[1200], shown[CFG_URL_MAX];
    int status = 1, rc, recovered = 0;
    db_url_redact(cfg->database_url, shown, sizeof shown);
    if ((rc = db_open(cfg->database_url, &db, err, sizeof err)) != 0) {
        fprintf(stderr, "dumont server: cannot open the database %s: %s\n", shown, err);
        goto out;
    }
    if ((rc = fo_orch_new(db, cfg->sim_speed, &orch)) != 0 ||
        (rc = fo_orch_recover(orch, &recovered, err, sizeof err)) != 0) {
        fprintf(stderr, "dumont server: cannot recover failovers: %s\n",
                err[0] ? err : dm_strerror(rc));
        goto out;
    }
    if ((rc = hbl_start_server(hb_listen, cfg->listen, cfg->home, db, &hb, err, sizeof err)) != 0) {
        fprintf(stderr, "dumont server: %s\n", err);
        goto out;
    }
    api_server_opts o = {
        .listen = cfg->listen, .token = token, .db = db, .orch = orch, .detect = hb};
    if ((rc = api_server_start(&o, &srv, err, sizeof err)) != 0) {
        fprintf(stderr, "dumont server: %s\n", err);
        goto out;
    }
    log_info("server.listening", "listen=%s port=%d database=%s db=%s home=%s recovered=%d",
             log_quote(q, sizeof q, cfg->listen), api_server_port(srv), db_backend_name(db),
             log_quote(q + 600, sizeof q - 600, shown), cfg->home, recovered);
    int sig = wait_for_signal();
    log_info("server.stopping", "signal=%s", sig == SIGINT ? "SIGINT" : "SIGTERM");
    api_server_stop(srv);
    srv = NULL;
    hbl_stop(hb);
    hb = NULL;
    fo_orch_shutdown(orch);
    status = 0;
out:
    api_server_stop(srv);
    hbl_stop(hb);
    fo_orch_free(orch);
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
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);
    char token[SECRET_TOKEN_MAX];
    if (prepare_home(cfg, token, sizeof token))
        return 1;
    rc = serve(cfg, token);
    explicit_bzero(token, sizeof token);
    return rc;
}

/* `dumont agent`: parses flags, installs the SIGTERM/SIGINT handler, and
 * runs the library's agent loop (src/agent/agent.h) until a signal.
 *
 * CLI-G1: the API token comes from --token-file, $DUMONT_TOKEN or
 *     $DUMONT_HOME/token; `--token T` works too (the form) but its
 *     copy in argv is overwritten at once, so `ps` shows "x"s, not the token.
 * CLI-G2: exit 0 after a clean stop (leaving sent), 1 when the agent cannot run,
 *     2 on a usage error.
 * CLI-G3: the environment is read here, not in the library: DUMONT_WORKSPACE
 *     (default --workspace; exported to the workload, set to the resolved
 *     path), DUMONT_STORE (through the config), OLLAMA_HOST (the address an
 *     ollama: probe without @URL uses). */
#include "cli/commands.h"

#include "agent/agent.h"
#include "agent/channel.h"
#include "agent/preempt.h"
#include "agent/probe.h"
#include "store/store.h"
#include "util/error.h"
#include "util/fsutil.h"
#include "util/log.h"
#include "util/parse.h"
#include "util/secret.h"

#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static const char usage[] =
    "usage: dumont agent --instance ID [--server URL] [--kind gpu|cpu] [--heartbeat-ms N]\n"
    "                    [--workload CMD] [--probe ollama:MODEL[@URL] | http:URL | exec:CMD]\n"
    "                    [--workspace DIR] [--store URL] [--snapshot-every DUR] [--epoch N]\n"
    "                    [--hold] [--preempt-cloud aws|gcp|local] [--metadata-url URL]\n"
    "                    [--lease DUR] [--no-channel]\n"
    "\n"
    "Runs on a GPU or CPU instance: registers with the Dumont server, sends a signed\n"
    "UDP heartbeat every --heartbeat-ms, supervises the workload and probes it, and\n"
    "snapshots the workspace. SIGTERM stops it cleanly: the server shows the instance\n"
    "`leaving`, not failed. The API token (an agent token of this instance:\n"
    "`dumont tokens create role=agent instance=ID name=N`) comes from --token-file\n"
    "PATH (preferred), $DUMONT_TOKEN, or $DUMONT_HOME/token.\n"
    "\n"
    "The workload gets an allowlist of the environment (PATH, HOME, LANG, TZ, PORT,\n"
    "DUMONT_WORKSPACE, OLLAMA_*, CUDA_*, NVIDIA_*, LC_*, ...; $DUMONT_WORKLOAD_ENV\n"
    "adds names, comma-separated): never a token or store key. When the agent runs\n"
    "as root, the workload runs as $DUMONT_WORKLOAD_USER (default dumont-workload if\n"
    "that user exists, else nobody; `root` keeps root), its workspace chowned to it.\n"
    "\n"
    "  --instance ID        this instance's id (1 .. 2^53), e.g. the provider's\n"
    "  --server URL         the API (default $DUMONT_URL or http://127.0.0.1:8700);\n"
    "                       heartbeats go to its host, at the port it answers;\n"
    "                       an https:// server's certificate is verified against the\n"
    "                       system's CAs, or those in $DUMONT_CA_FILE\n"
    "  --token-file PATH    the API token in a file (or $DUMONT_TOKEN); --token T\n"
    "                       works too but is visible to ps until overwritten\n"
    "  --kind gpu|cpu       default gpu\n"
    "  --heartbeat-ms N     default 200 (10 .. 60000)\n"
    "  --heartbeat-copies N 1 or 2 (default 2): each heartbeat is sent twice, 30 ms\n"
    "                       apart, so one lost datagram does not make it late\n"
    "  --workload CMD       command to run and restart on crash (words; '...' and \"...\"\n"
    "                       group; no shell), in the workspace, with DUMONT_WORKSPACE\n"
    "                       set. Crashlooping after --crash-limit crashes (default 5)\n"
    "                       in --crash-window-ms (default 60000). Each crash is\n"
    "                       reported to the server with the last lines it wrote\n"
    "  --host-check CMD     when the workload gives up, the host is checked (the\n"
    "                       workspace takes a write; nvidia-smi -L on a gpu; then\n"
    "                       CMD, which must exit 0): a failed check asks for a\n"
    "                       failover, else the workload is failed where it is\n"
    "  --probe SPEC         readiness probe, every --probe-every-ms (default 5000);\n"
    "                       ollama:MODEL without @URL asks $OLLAMA_HOST, else\n"
    "                       127.0.0.1:11434\n"
    "  --hold               register and heartbeat, but start the workload (its\n"
    "                       probe, scheduled snapshots) only on SIGUSR1 or the\n"
    "                       controller's start_workload command\n"
    "  --lease DUR          the control channel's lease (default 10s; 300ms .. 10m):\n"
    "                       nothing heard from the controller for longer stops the\n"
    "                       workload for good (the agent fences itself)\n"
    "  --no-channel         no control channel (the controller cannot restore,\n"
    "                       snapshot or start through this agent) and no lease\n"
    "  --workspace DIR      the directory to snapshot (default $DUMONT_WORKSPACE;\n"
    "                       none: no snapshots)\n"
    "  --store URL          snapshot store (default $DUMONT_STORE, else\n"
    "                       file://$DUMONT_HOME/store)\n"
    "  --store-env-file PATH the store's settings and keys (NAME=VALUE lines of\n"
    "                       DUMONT_S3_*, AWS_*, B2_*, DUMONT_STORE_MIRROR), read into\n"
    "                       the agent's memory, never passed to the workload\n"
    "  --snapshot-every DUR incremental snapshot of the workspace, skipped when\n"
    "                       nothing changed, reported to the server (default 30s;\n"
    "                       0 disables)\n"
    "  --epoch N            the workload's epoch, carried by every snapshot (default 0)\n"
    "  --preempt-cloud C    aws|gcp|local (alias --preemption): poll the cloud's\n"
    "                       preemption notice every second; on a notice, take a final\n"
    "                       snapshot (at most 20 s), then report `preempting`.\n"
    "                       local: --metadata-url file://DIR, file\n"
    "                       DIR/computeMetadata/v1/instance/preempted = TRUE\n"
    "  --metadata-url URL   the metadata service (default http://169.254.169.254)\n"
    "  --log-level L        debug|info|warn|error (default info)\n"
    "  --test-jitter-ms N, --test-loss P     delay each heartbeat datagram by up to\n"
    "                       N ms / drop it with probability P (tests of the detector)\n";

/* Lock-free atomics: safe to store from a signal handler (C11 7.14.1.1). */
static atomic_bool stop_flag, go_flag;

static void on_signal(int sig)
{
    if (sig == SIGUSR1)
        atomic_store(&go_flag, true);
    else
        atomic_store(&stop_flag, true);
}

enum {
    O_TOKEN_FILE = 256,
    O_PROBE_EVERY,
    O_CRASH_LIMIT,
    O_CRASH_WINDOW,
    O_JITTER,
    O_LOSS,
    O_WORKSPACE,
    O_SNAP_EVERY,
    O_KIND,
    O_LOG,
    O_PREEMPT,
    O_METADATA,
    O_HOST_CHECK,
    O_STORE,
    O_EPOCH,
    O_HOLD,
    O_COPIES,
    O_STORE_ENV,
    O_LEASE,
    O_NO_CHANNEL
};

static const struct option opts[] = {
    {"instance", required_argument, NULL, 'i'},
    {"server", required_argument, NULL, 's'},
    {"token", required_argument, NULL, 't'},
    {"token-file", required_argument, NULL, O_TOKEN_FILE},
    {"kind", required_argument, NULL, O_KIND},
    {"heartbeat-ms", required_argument, NULL, 'b'},
    {"workload", required_argument, NULL, 'w'},
    {"probe", required_argument, NULL, 'p'},
    {"probe-every-ms", required_argument, NULL, O_PROBE_EVERY},
    {"crash-limit", required_argument, NULL, O_CRASH_LIMIT},
    {"crash-window-ms", required_argument, NULL, O_CRASH_WINDOW},
    {"workspace", required_argument, NULL, O_WORKSPACE},
    {"snapshot-every", required_argument, NULL, O_SNAP_EVERY},
    {"test-jitter-ms", required_argument, NULL, O_JITTER},
    {"test-loss", required_argument, NULL, O_LOSS},
    {"log-level", required_argument, NULL, O_LOG},
    {"preemption", required_argument, NULL, O_PREEMPT},
    {"preempt-cloud", required_argument, NULL, O_PREEMPT},
    {"store", required_argument, NULL, O_STORE},
    {"store-env-file", required_argument, NULL, O_STORE_ENV},
    {"epoch", required_argument, NULL, O_EPOCH},
    {"hold", no_argument, NULL, O_HOLD},
    {"lease", required_argument, NULL, O_LEASE},
    {"no-channel", no_argument, NULL, O_NO_CHANNEL},
    {"heartbeat-copies", required_argument, NULL, O_COPIES},
    {"metadata-url", required_argument, NULL, O_METADATA},
    {"host-check", required_argument, NULL, O_HOST_CHECK},
    {"help", no_argument, NULL, 'h'},
    {NULL, 0, NULL, 0},
};

typedef struct {
    agent_opts o;
    char token[SECRET_TOKEN_MAX];
    const char *token_file;
    const char *store_env_file;
    int64_t crash_limit, copies;
    const char *workspace;
    char workspace_abs[PATH_MAX];
    char probe[1024];
} agent_args;

static int bad(const char *msg, const char *arg)
{
    fprintf(stderr, "dumont agent: %s '%s'\n\n%s", msg, arg, usage);
    return 2;
}

/* One numeric or enumerated flag; 0, or 2 after saying why. */
static int number_flag(agent_args *a, int c, const char *v)
{
    agent_opts *o = &a->o;
    switch (c) {
    case 'i':
        return parse_i64(v, 1, (int64_t)1 << 53, &o->instance_id) ? bad("bad --instance", v) : 0;
    case 'b':
        return parse_i64(v, 10, 60000, &o->heartbeat_ms) ? bad("bad --heartbeat-ms", v) : 0;
    case O_PROBE_EVERY:
        return parse_i64(v, 100, 3600000, &o->probe_every_ms) ? bad("bad --probe-every-ms", v) : 0;
    case O_CRASH_LIMIT:
        if (parse_i64(v, 1, 32, &a->crash_limit))
            return bad("bad --crash-limit (1..32)", v);
        o->crash_limit = (int)a->crash_limit;
        return 0;
    case O_CRASH_WINDOW:
        return parse_i64(v, 1000, 86400000, &o->crash_window_ms) ? bad("bad --crash-window-ms", v)
                                                                 : 0;
    case O_JITTER:
        return parse_i64(v, 0, 10000, &o->test_jitter_ms) ? bad("bad --test-jitter-ms", v) : 0;
    case O_LOSS:
        return parse_double(v, 0, 1, &o->test_loss) ? bad("bad --test-loss (0..1)", v) : 0;
    case O_SNAP_EVERY:
        return parse_duration_ms(v, 0, 7 * 86400000LL, &o->snapshot_every_ms)
                   ? bad("bad --snapshot-every (e.g. 30s, 500ms, 0)", v)
                   : 0;
    case O_EPOCH:
        return parse_i64(v, 0, (int64_t)1 << 53, &o->epoch) ? bad("bad --epoch", v) : 0;
    case O_LEASE:
        return parse_duration_ms(v, AGC_LEASE_MIN_MS, AGC_LEASE_MAX_MS, &o->lease_ms)
                   ? bad("bad --lease (300ms .. 10m, e.g. 10s)", v)
                   : 0;
    case O_COPIES:
        if (parse_i64(v, 1, 2, &a->copies))
            return bad("bad --heartbeat-copies (1 or 2)", v);
        o->heartbeat_copies = (int)a->copies;
        return 0;
    case O_PREEMPT: {
        pre_cloud pc;
        if (pre_cloud_parse(v, &pc) != 0)
            return bad("--preempt-cloud must be aws, gcp, local or none, not", v);
        o->preempt_cloud = (int)pc;
        return 0;
    }
    case O_KIND:
        if (strcmp(v, "gpu") != 0 && strcmp(v, "cpu") != 0)
            return bad("--kind must be gpu or cpu, not", v);
        o->kind = v;
        return 0;
    }
    return 0;
}

static int parse_flags(agent_args *a, int argc, char **argv)
{
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        int rc = 0;
        if (c == 's')
            a->o.server_url = optarg;
        else if (c == 't') {
            snprintf(a->token, sizeof a->token, "%s", optarg);
            memset(optarg, 'x', strlen(optarg)); /* CLI-G1 */
        } else if (c == O_TOKEN_FILE)
            a->token_file = optarg;
        else if (c == 'w')
            a->o.workload = optarg;
        else if (c == 'p')
            a->o.probe = optarg;
        else if (c == O_METADATA)
            a->o.metadata_url = optarg;
        else if (c == O_HOST_CHECK)
            a->o.host_check = optarg;
        else if (c == O_WORKSPACE)
            a->workspace = optarg;
        else if (c == O_STORE)
            a->o.store_url = optarg;
        else if (c == O_STORE_ENV)
            a->store_env_file = optarg;
        else if (c == O_HOLD)
            a->o.hold = 1;
        else if (c == O_NO_CHANNEL)
            a->o.no_channel = 1;
        else if (c == O_LOG) {
            log_level l;
            if (log_level_parse(optarg, &l) != 0)
                return bad("bad --log-level", optarg);
            log_set_level(l);
        } else if (c == 'h') {
            fputs(usage, stdout);
            return 0;
        } else if (c == '?')
            return fputs(usage, stderr), 2;
        else
            rc = number_flag(a, c, optarg);
        if (rc)
            return rc;
    }
    if (optind < argc)
        return bad("unexpected argument", argv[optind]);
    if (a->o.instance_id == 0)
        return fprintf(stderr, "dumont agent: --instance is required\n\n%s", usage), 2;
    return -1;
}

static int load_token(agent_args *a, dm_config *cfg)
{
    char err[512] = "";
    int rc = 0;
    if (a->token[0])
        return 0;
    if (a->token_file)
        rc = secret_read_token(a->token_file, a->token, sizeof a->token);
    else
        rc = cfg_client_token(cfg, a->token, sizeof a->token, err, sizeof err);
    if (rc)
        fprintf(stderr, "dumont agent: no API token (%s)\n", a->token_file ? dm_strerror(rc) : err);
    return rc ? 1 : 0;
}

/* PROV-PV6, store.h STORE-S5: the store's settings from a private file into
 * this process's memory (not its /proc/PID/environ, which shows the block
 * the process started with). 0 or 1. */
static int load_store_env(const agent_args *a)
{
    if (!a->store_env_file)
        return 0;
    char err[256] = "", *buf = malloc(STORE_ENV_MAX + 1);
    if (!buf)
        return fprintf(stderr, "dumont agent: out of memory\n"), 1;
    long n = fs_read_small(a->store_env_file, buf, STORE_ENV_MAX + 1);
    int rc = n < 0 ? (int)n : 0; /* DM_E_TOO_BIG past STORE_ENV_MAX bytes */
    if (rc == 0)
        rc = store_env_import(buf, err, sizeof err);
    else
        snprintf(err, sizeof err, "%s", dm_strerror(rc));
    explicit_bzero(buf, STORE_ENV_MAX + 1);
    free(buf);
    if (rc)
        fprintf(stderr, "dumont agent: --store-env-file %s: %s\n", a->store_env_file, err);
    return rc ? 1 : 0;
}

/* CLI-G3: the workspace (resolved) and the environment's defaults. 0 or 1. */
static int resolve_env(agent_args *a, dm_config *cfg)
{
    const char *ws = a->workspace ? a->workspace : getenv("DUMONT_WORKSPACE");
    if (ws && *ws) {
        if (!realpath(ws, a->workspace_abs))
            return fprintf(stderr, "dumont agent: workspace '%s': %s\n", ws, strerror(errno)), 1;
        a->o.workspace = a->workspace_abs;
        setenv("DUMONT_WORKSPACE", a->workspace_abs, 1); /* the workload's */
        if (!a->o.store_url)
            a->o.store_url = cfg->store;
    }
    if (a->o.probe) {
        int rc = prb_spec_resolve(a->o.probe, getenv("OLLAMA_HOST"), a->probe, sizeof a->probe);
        if (rc)
            return fprintf(stderr, "dumont agent: bad --probe or OLLAMA_HOST (%s)\n",
                           dm_strerror(rc)),
                   1;
        a->o.probe = a->probe;
    }
    return 0;
}

int cmd_agent(dm_config *cfg, int argc, char **argv)
{
    agent_args a;
    memset(&a, 0, sizeof a);
    agent_opts_init(&a.o);
    umask(077); /* what the agent (and its workload) writes is private (docs/security.md) */
    int rc = parse_flags(&a, argc, argv);
    if (rc >= 0)
        return rc;
    if (!a.o.server_url)
        a.o.server_url = cfg->url;
    if (cfg->ca_file[0])
        a.o.ca_file = cfg->ca_file;
    if (load_store_env(&a) || resolve_env(&a, cfg) || load_token(&a, cfg))
        return 1;
    char *envtok = getenv("DUMONT_TOKEN");
    if (envtok) /* out of /proc/<agent>/environ too: that reads this memory */
        explicit_bzero(envtok, strlen(envtok));
    unsetenv("DUMONT_TOKEN");
    a.o.token = a.token;
    a.o.workload_user = getenv("DUMONT_WORKLOAD_USER"); /* CLI-G3 */
    a.o.workload_env = getenv("DUMONT_WORKLOAD_ENV");
    a.o.stop = &stop_flag;
    a.o.go = &go_flag;
    struct stat hs;
    if (stat(cfg->home, &hs) == 0 && S_ISDIR(hs.st_mode))
        a.o.state_dir = cfg->home; /* channel.h AG-C1: the agent's own home */
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGUSR1, &sa, NULL); /* --hold's start signal (AG-A8) */
    signal(SIGPIPE, SIG_IGN);
    char err[1024] = "";
    rc = agent_run(&a.o, err, sizeof err);
    explicit_bzero(a.token, sizeof a.token);
    if (rc) {
        fprintf(stderr, "dumont agent: %s\n", err[0] ? err : dm_strerror(rc));
        return 1;
    }
    return 0;
}

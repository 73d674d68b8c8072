/* dumont: multi-call program. `dumont <command> ...` dispatches to src/cli/. */
#include "cli/commands.h"
#include "util/config.h"

#include <malloc.h>
#include <stdio.h>
#include <string.h>

static const char usage[] =
    "usage: dumont <command> [arguments]\n"
    "\n"
    "Automatic failover for AI workloads on spot GPUs.\n"
    "\n"
    "commands:\n"
    "  server      run the control plane (REST API on 127.0.0.1:8700)\n"
    "  failover    test-setup | simulate | status | report | list | test-real |\n"
    "              test-real-report | test-real-history\n"
    "  instances   list | show ID | launch workload=CMD ... | destroy ID\n"
    "  chaos       preempt ID [notice=30s]: a spot preemption, on purpose\n"
    "  tokens      create role=viewer|client|agent name=N | list | revoke NAME\n"
    "  alerts      add kind=slack|discord|webhook url=URL | list | test NAME | remove NAME\n"
    "  agent       run on each GPU/CPU instance: heartbeats, workload supervision\n"
    "  snapshot    create | list | restore | verify | diff | prune | export | import\n"
    "  version     print the version\n"
    "\n"
    "Run `dumont <command> --help` for a command's arguments.\n"
    "Environment: DUMONT_HOME, DUMONT_URL, DUMONT_TOKEN, DUMONT_DATABASE_URL, DUMONT_STORE.\n";

int main(int argc, char **argv)
{
    if (argc < 2) {
        fputs(usage, stderr);
        return 2;
    }
    const char *cmd = argv[1];
    if (strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0 || strcmp(cmd, "help") == 0) {
        fputs(usage, stdout);
        return 0;
    }
    if (strcmp(cmd, "version") == 0 || strcmp(cmd, "--version") == 0) {
        printf("dumont %s\n", DUMONT_VERSION);
        return 0;
    }
    /* Snapshots churn through megabyte-sized chunk and pack buffers; keep
     * freed memory in the heap for reuse instead of returning it to the
     * kernel and faulting it back in for every buffer (the working set is
     * bounded by design, snapshot.h SNAP-SN5). */
    mallopt(M_MMAP_THRESHOLD, 64 << 20);
    mallopt(M_TRIM_THRESHOLD, 256 << 20);
    dm_config cfg;
    char err[512];
    if (cfg_load(&cfg, err, sizeof err) != 0) {
        fprintf(stderr, "dumont: %s\n", err);
        return 1;
    }
    if (strcmp(cmd, "server") == 0)
        return cmd_server(&cfg, argc - 1, argv + 1);
    if (strcmp(cmd, "failover") == 0)
        return cmd_failover(&cfg, argc - 1, argv + 1);
    if (strcmp(cmd, "instances") == 0)
        return cmd_instances(&cfg, argc - 1, argv + 1);
    if (strcmp(cmd, "chaos") == 0)
        return cmd_chaos(&cfg, argc - 1, argv + 1);
    if (strcmp(cmd, "tokens") == 0)
        return cmd_tokens(&cfg, argc - 1, argv + 1);
    if (strcmp(cmd, "alerts") == 0)
        return cmd_alerts(&cfg, argc - 1, argv + 1);
    if (strcmp(cmd, "agent") == 0)
        return cmd_agent(&cfg, argc - 1, argv + 1);
    if (strcmp(cmd, "snapshot") == 0)
        return cmd_snapshot(&cfg, argc - 1, argv + 1);
    fprintf(stderr, "dumont: unknown command '%s'\n\n%s", cmd, usage);
    return 2;
}

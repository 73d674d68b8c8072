/* `dumont chaos preempt ID [notice=30s]`: make a spot preemption happen
 * (POST /api/chaos/preempt/{id}; docs/cli.md). notice=0 (the default) kills
 * the instance at once, like a kill -9 of its machine; notice=D first gives
 * the cloud's preemption notice, D before the kill.
 *
 * CHAOS-C1: the same contract as `dumont failover` (CLI-SC1, CLI-SC2 of subcmd.h). */
#include "cli/client.h"
#include "cli/commands.h"
#include "cli/output.h"
#include "cli/subcmd.h"

#include "util/parse.h"

#include <stdio.h>
#include <string.h>

#define NOTICE_MAX_MS (3600 * 1000LL) /* routes_fleet.c */

static const char chaos_usage[] =
    "usage: dumont chaos <subcommand> [arguments] [--json] [--help]\n"
    "\n"
    "subcommands:\n"
    "  preempt INSTANCE_ID [notice=30s]   preempt an instance like a spot GPU loss\n"
    "\n"
    "Chaos commands break things on purpose, to watch the failover recover them.\n"
    "The server is found at $DUMONT_URL (default http://127.0.0.1:8700), with the\n"
    "token from $DUMONT_TOKEN or $DUMONT_HOME/token.\n";

static int run_preempt(subcmd_ctx *c)
{
    int64_t id, notice = 0;
    char path[96];
    const char *n = kv_get(&c->a.kv, "notice");
    if (parse_i64(c->a.pos[0], 1, INT64_MAX, &id) != 0)
        return subcmd_usage_error(c, "instance id must be a whole number >= 1, got '%s'",
                                  c->a.pos[0]);
    if (n && parse_duration_ms(n, 0, NOTICE_MAX_MS, &notice) != 0)
        return subcmd_usage_error(c,
                                  "notice must be a duration from 0 to 1h, like 30s, 500ms or "
                                  "2m; got '%s'",
                                  n);
    json_t *body = n ? json_pack("{s:s}", "notice", n) : json_object();
    if (!body)
        return subcmd_fail("out of memory");
    snprintf(path, sizeof path, "/api/chaos/preempt/%lld", (long long)id);
    client_resp r;
    int rc = subcmd_call(c, "POST", path, body, &r);
    json_decref(body);
    if (rc)
        return rc;
    if (c->a.json) {
        subcmd_print_json(&r);
    } else {
        char d[32];
        out_duration(notice, d, sizeof d);
        if (notice > 0)
            printf("instance %lld: preemption notice given; it is killed in %s\n", (long long)id,
                   d);
        else
            printf("instance %lld: killed\n", (long long)id);
        printf("watch the failover with: dumont failover list gpu_instance_id=%lld\n",
               (long long)id);
    }
    client_resp_done(&r);
    return 0;
}

static const char *const k_preempt[] = {"notice", NULL};

static const subcmd_entry commands[] = {
    {{"preempt",
      "usage: dumont chaos preempt INSTANCE_ID [notice=D] [--json]\n"
      "\nPreempts the instance through its provider, as a spot cloud would. With no\n"
      "notice (or notice=0) it is killed at once; with notice=D (500ms, 30s, 2m; at\n"
      "most 1h) the instance first sees the cloud's preemption notice (its agent takes\n"
      "a final snapshot and reports `preempting`), and is killed D later.\n",
      k_preempt, 1, 1, 0},
     run_preempt},
};

static const subcmd_set chaos_set = {
    .prog = "chaos",
    .usage = chaos_usage,
    .cmds = commands,
    .ncmds = sizeof commands / sizeof commands[0],
    .stride = sizeof commands[0],
};

int cmd_chaos(dm_config *cfg, int argc, char **argv)
{
    return subcmd_main(&chaos_set, cfg, argc, argv);
}

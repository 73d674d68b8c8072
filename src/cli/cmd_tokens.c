/* `dumont tokens create|list|revoke`: the server's scoped credentials
 * (/api/tokens, admin only; docs/security.md).
 *
 * CLI-K1: the same contract as `dumont failover` (CLI-SC1, CLI-SC2 of subcmd.h).
 * CLI-K2: `create` prints the secret once, on stdout, alone on its line after
 *     the table (or in the JSON): nothing else ever shows it again. */
#include "cli/client.h"
#include "cli/commands.h"
#include "cli/output.h"
#include "cli/subcmd.h"

#include "util/parse.h"

#include <stdio.h>
#include <string.h>

static const char tokens_usage[] =
    "usage: dumont tokens <subcommand> [arguments] [--json] [--help]\n"
    "\n"
    "subcommands:\n"
    "  create role=viewer|client|agent name=NAME [instance=ID]   a new token (shown once)\n"
    "  list                                                    names, roles, created, last used\n"
    "  revoke NAME                                             the token stops working at once\n"
    "\n"
    "Roles: viewer reads (dashboard, reports, lists); client calls the workloads' stable\n"
    "endpoints only; agent acts for one instance (register, heartbeat key, snapshot\n"
    "reports). The admin token is $DUMONT_HOME/token. These commands need it.\n";

static int run_create(subcmd_ctx *c)
{
    const char *role = kv_get(&c->a.kv, "role"), *name = kv_get(&c->a.kv, "name");
    const char *inst = kv_get(&c->a.kv, "instance");
    int64_t id = 0;
    if (!role || !name)
        return subcmd_usage_error(c, "role= and name= are required");
    if (inst && parse_i64(inst, 1, (int64_t)1 << 53, &id) != 0)
        return subcmd_usage_error(c, "instance must be an instance id, got '%s'", inst);
    json_t *body = json_pack("{s:s, s:s}", "role", role, "name", name);
    if (body && id > 0)
        json_object_set_new(body, "instance_id", json_integer(id));
    if (!body)
        return subcmd_fail("out of memory");
    client_resp r;
    int rc = subcmd_call(c, "POST", "/api/tokens", body, &r);
    json_decref(body);
    if (rc)
        return rc;
    if (c->a.json) {
        subcmd_print_json(&r);
    } else {
        const char *tok = out_json_str(r.json, "token", "");
        printf("token %s (role %s%s%s) created; it is shown only now:\n%s\n",
               out_json_str(r.json, "name", "?"), out_json_str(r.json, "role", "?"),
               id > 0 ? ", instance " : "", id > 0 ? inst : "", tok);
    }
    client_resp_done(&r);
    return 0;
}

static void show_list(const json_t *j, FILE *out)
{
    static const char *const hdr[] = {"NAME", "ROLE", "INSTANCE", "CREATED", "LAST USED"};
    out_table *t = out_table_new(5, hdr);
    const json_t *arr = json_object_get(j, "tokens");
    size_t i;
    const json_t *e;
    json_array_foreach(arr, i, e)
    {
        char inst[24] = "-";
        int64_t id = out_json_int(e, "instance_id");
        if (id > 0)
            snprintf(inst, sizeof inst, "%lld", (long long)id);
        const char *cells[] = {out_json_str(e, "name", "?"), out_json_str(e, "role", "?"), inst,
                               out_json_str(e, "created_at", "-"),
                               out_json_str(e, "last_used_at", "never")};
        if (t)
            out_table_add(t, cells);
    }
    if (t && json_array_size(arr) > 0)
        out_table_print(t, out);
    else
        fprintf(out, "no tokens (the admin token is $DUMONT_HOME/token)\n");
    out_table_free(t);
}

static int run_list(subcmd_ctx *c)
{
    return subcmd_get_show(c, "/api/tokens", show_list);
}

static int run_revoke(subcmd_ctx *c)
{
    char path[160];
    if (snprintf(path, sizeof path, "/api/tokens/%s", c->a.pos[0]) >= (int)sizeof path ||
        strchr(c->a.pos[0], '/'))
        return subcmd_usage_error(c, "'%s' is not a token name", c->a.pos[0]);
    client_resp r;
    int rc = subcmd_call(c, "DELETE", path, NULL, &r);
    if (rc)
        return rc;
    if (c->a.json)
        subcmd_print_json(&r);
    else
        printf("token %s revoked\n", c->a.pos[0]);
    client_resp_done(&r);
    return 0;
}

static const char *const k_create[] = {"role", "name", "instance", NULL};
static const char *const k_none[] = {NULL};

static const subcmd_entry commands[] = {
    {{"create",
      "usage: dumont tokens create role=viewer|client|agent name=NAME [instance=ID] [--json]\n"
      "\nMakes a token and prints it once (the server keeps only its SHA-256). NAME is\n"
      "1-63 characters of A-Z a-z 0-9 . _ -. An agent token needs instance=ID: it acts\n"
      "for that instance only (`dumont agent --token-file F --instance ID`).\n",
      k_create, 0, 0, 0},
     run_create},
    {{"list",
      "usage: dumont tokens list [--json]\n"
      "\nEvery token: name, role, instance, created, last used (to the minute). Never the\n"
      "secret.\n",
      k_none, 0, 0, 0},
     run_list},
    {{"revoke", "usage: dumont tokens revoke NAME [--json]\n\nThe token stops working at once.\n",
      k_none, 1, 1, 0},
     run_revoke},
};

static const subcmd_set tokens_set = {
    .prog = "tokens",
    .usage = tokens_usage,
    .cmds = commands,
    .ncmds = sizeof commands / sizeof commands[0],
    .stride = sizeof commands[0],
};

int cmd_tokens(dm_config *cfg, int argc, char **argv)
{
    return subcmd_main(&tokens_set, cfg, argc, argv);
}

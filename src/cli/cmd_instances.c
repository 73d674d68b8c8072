/* `dumont instances [show ID] [--json]`: the instances the server watches
 * (GET /api/instances, GET /api/instances/{id}; docs/detect.md).
 *
 * N1: the same contract as `dumont failover` (F1, F2 of cmd_failover.c):
 *     exit 0 / 1 (one line on stderr) / 2 (reason, then usage, on stderr);
 *     --json prints the API's answer as received; --help exits 0.
 * N2: an age is shown as a duration ("180 ms", "2m 05s"); a value that does
 *     not exist is "-" (O1 of output.h). */
#include "cli/client.h"
#include "cli/commands.h"
#include "cli/output.h"

#include "util/error.h"
#include "util/parse.h"
#include "util/secret.h"

#include <stdio.h>
#include <string.h>

#define EXIT_FAIL  1
#define EXIT_USAGE 2

static const char instances_usage[] =
    "usage: dumont instances [--json]\n"
    "       dumont instances show INSTANCE_ID [--json]\n"
    "\n"
    "Lists the instances that run `dumont agent` and what the failure detector\n"
    "thinks of them: healthy, suspect, failed, leaving, preempting or pending\n"
    "(registered, no heartbeat yet), with the age of the last heartbeat, the\n"
    "workload and its probe. `show` adds the instance's recent state changes.\n"
    "\n"
    "The server is found at $DUMONT_URL (default http://127.0.0.1:8700), with the\n"
    "token from $DUMONT_TOKEN or $DUMONT_HOME/token.\n";

typedef struct {
    int json, help;
    const char *pos[3];
    int npos;
} in_args;

static int usage_error(const char *msg, const char *arg)
{
    fprintf(stderr, "dumont instances: %s%s%s\n\n%s", msg, arg ? " " : "", arg ? arg : "",
            instances_usage);
    return EXIT_USAGE;
}

static int parse_args(int argc, char **argv, in_args *a)
{
    const char *bad = NULL;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--json") == 0)
            a->json = 1;
        else if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0)
            a->help = 1;
        else if (argv[i][0] == '-' && !bad)
            bad = argv[i];
        else if (a->npos < 3)
            a->pos[a->npos++] = argv[i];
        else if (!bad)
            bad = argv[i];
    }
    if (a->help)
        return 0;
    if (bad)
        return usage_error("unexpected argument", bad);
    return 0;
}

static int fetch(dm_config *cfg, const char *path, int json, client_resp *r)
{
    char token[SECRET_TOKEN_MAX], terr[512] = "", err[1024];
    dm_client *cl = NULL;
    int have = cfg_client_token(cfg, token, sizeof token, terr, sizeof terr) == 0;
    int rc = client_new(cfg->url, have ? token : NULL, terr, &cl);
    explicit_bzero(token, sizeof token);
    if (rc) {
        fprintf(stderr, "dumont: %s\n", dm_strerror(rc));
        return EXIT_FAIL;
    }
    rc = client_call(cl, "GET", path, NULL, r, err, sizeof err);
    client_free(cl);
    if (rc == 0)
        return 0;
    if (json && r->json)
        client_json_pretty(r->body, r->body_len, stdout);
    fprintf(stderr, "dumont: %s\n", err);
    client_resp_done(r);
    return EXIT_FAIL;
}

static void age_cell(const json_t *o, char *buf, size_t len)
{
    out_duration(out_json_int(o, "last_heartbeat_age_ms"), buf, len);
}

static void print_list(const json_t *j)
{
    static const char *const hdr[] = {"ID",       "KIND",  "STATE",    "LAST HEARTBEAT",
                                      "WORKLOAD", "PROBE", "RESTARTS", "PHI"};
    const json_t *arr = json_object_get(j, "instances");
    out_table *t = out_table_new(8, hdr);
    if (!t)
        return;
    out_table_align_right(t, 0);
    out_table_align_right(t, 3);
    out_table_align_right(t, 6);
    out_table_align_right(t, 7);
    size_t i;
    const json_t *o;
    json_array_foreach(arr, i, o)
    {
        char id[24], age[32], rs[16], phi[24];
        snprintf(id, sizeof id, "%lld", (long long)out_json_int(o, "instance_id"));
        age_cell(o, age, sizeof age);
        int64_t r = out_json_int(o, "restarts");
        snprintf(rs, sizeof rs, r < 0 ? "-" : "%lld", (long long)r);
        double p = out_json_num(o, "phi");
        snprintf(phi, sizeof phi, p != p ? "-" : "%.2f", p); /* NAN: absent */
        const char *row[] = {id,
                             out_json_str(o, "kind", "-"),
                             out_json_str(o, "state", "-"),
                             age,
                             out_json_str(o, "workload", "-"),
                             out_json_str(o, "probe", "-"),
                             rs,
                             phi};
        out_table_add(t, row);
    }
    if (json_array_size(arr) == 0)
        printf("No instances registered. Start `dumont agent --server URL --token T --instance "
               "ID` on a machine.\n");
    else
        out_table_print(t, stdout);
    out_table_free(t);
}

static void print_events(const json_t *arr)
{
    static const char *const hdr[] = {"AT", "WHAT", "FROM", "TO", "REASON", "SILENT"};
    out_table *t = out_table_new(6, hdr);
    if (!t)
        return;
    out_table_align_right(t, 5);
    size_t i;
    const json_t *e;
    json_array_foreach(arr, i, e)
    {
        char silent[32];
        out_duration(out_json_int(e, "silent_ms"), silent, sizeof silent);
        const char *row[] = {out_json_str(e, "at", "-"),     out_json_str(e, "what", "-"),
                             out_json_str(e, "from", "-"),   out_json_str(e, "to", "-"),
                             out_json_str(e, "reason", "-"), silent};
        out_table_add(t, row);
    }
    out_table_print(t, stdout);
    out_table_free(t);
}

static void print_one(json_t *j)
{
    json_t *events = json_incref(json_object_get(j, "events"));
    json_object_del(j, "events");
    out_object(j, stdout);
    if (events && json_array_size(events) > 0) {
        printf("\nState changes (newest first):\n");
        print_events(events);
    }
    json_decref(events);
}

int cmd_instances(dm_config *cfg, int argc, char **argv)
{
    in_args a = {0};
    int rc = parse_args(argc, argv, &a);
    if (rc)
        return rc;
    if (a.help) {
        fputs(instances_usage, stdout);
        return 0;
    }
    char path[64] = "/api/instances";
    int64_t id = 0;
    int show = a.npos > 0;
    if (show && (strcmp(a.pos[0], "show") != 0 || a.npos != 2))
        return strcmp(a.pos[0], "show") != 0 ? usage_error("unknown subcommand", a.pos[0])
                                             : usage_error("show takes one instance id", NULL);
    if (show && parse_i64(a.pos[1], 1, INT64_MAX, &id) != 0)
        return usage_error("instance id must be a whole number >= 1, got", a.pos[1]);
    if (show)
        snprintf(path, sizeof path, "/api/instances/%lld", (long long)id);
    client_resp r;
    if ((rc = fetch(cfg, path, a.json, &r)) != 0)
        return rc;
    if (a.json)
        client_json_pretty(r.body, r.body_len, stdout);
    else if (show)
        print_one(r.json);
    else
        print_list(r.json);
    client_resp_done(&r);
    return 0;
}

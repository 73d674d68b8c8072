/* `dumont alerts add|list|test|remove|deliveries`: where the server sends
 * its alerts (/api/alerts, admin only; docs/alerts.md).
 *
 * CLI-AC1: the same contract as `dumont failover` (CLI-SC1, CLI-SC2 of subcmd.h).
 * CLI-AC2: `add` of a webhook prints its signing secret once, alone on its line
 *      after the summary (or in the JSON); nothing shows it again. URLs are
 *      never printed past their host (the server answers them redacted).
 * CLI-AC3: `test` exits 0 only when the receiver answered 2xx. */
#include "cli/client.h"
#include "cli/commands.h"
#include "cli/output.h"
#include "cli/subcmd.h"
#include "db/db_alert.h"
#include "util/parse.h"

#include <stdio.h>
#include <string.h>

static const char alerts_usage[] =
    "usage: dumont alerts <subcommand> [arguments] [--json] [--help]\n"
    "\n"
    "subcommands:\n"
    "  add kind=slack|discord|webhook url=URL [name=N] [notify_on=E,E...]\n"
    "                          a destination (a webhook's signing secret is shown once)\n"
    "  list                    destinations (URLs redacted), what is queued and delivered\n"
    "  test NAME               send a test alert now; exit 0 when the receiver took it\n"
    "  remove NAME             stop sending there (its queued alerts go too)\n"
    "  deliveries NAME         the newest deliveries: event, state, attempts, last answer\n"
    "\n"
    "Events (notify_on): started, completed, failed (failovers), suspect, instance_failed\n"
    "(instances), snapshot_failing (a workload's snapshots stopped), standby_activated,\n"
    "flapping (a workload past its failover budget).\n"
    "Default: all but suspect. These commands need the admin token.\n";

/* The destination's events, comma-separated, into ev (cap bytes). */
static void events_text(const json_t *e, char *ev, size_t cap)
{
    size_t i, len = 0;
    const json_t *w;
    ev[0] = '\0';
    json_array_foreach(json_object_get(e, "notify_on"), i, w)
    {
        int k = snprintf(ev + len, cap - len, "%s%s", len ? "," : "", json_string_value(w));
        if (k < 0 || (size_t)k >= cap - len)
            break;
        len += (size_t)k;
    }
}

static void show_alert(const json_t *e, FILE *out)
{
    char ev[256];
    events_text(e, ev, sizeof ev);
    fprintf(out, "alert %s (%s) -> %s\n  notify_on %s\n", out_json_str(e, "name", "?"),
            out_json_str(e, "kind", "?"), out_json_str(e, "url", "?"), ev);
}

static int run_add(subcmd_ctx *c)
{
    const char *kind = kv_get(&c->a.kv, "kind"), *url = kv_get(&c->a.kv, "url");
    const char *name = kv_get(&c->a.kv, "name"), *notify = kv_get(&c->a.kv, "notify_on");
    if (!kind || !url)
        return subcmd_usage_error(c, "kind= and url= are required");
    json_t *body = json_pack("{s:s, s:s}", "kind", kind, "url", url);
    if (body && name)
        json_object_set_new(body, "name", json_string(name));
    if (body && notify)
        json_object_set_new(body, "notify_on", json_string(notify));
    if (!body)
        return subcmd_fail("out of memory");
    client_resp r;
    int rc = subcmd_call(c, "POST", "/api/alerts", body, &r);
    json_decref(body);
    if (rc)
        return rc;
    if (c->a.json) {
        subcmd_print_json(&r);
    } else {
        show_alert(r.json, stdout);
        const char *secret = out_json_str(r.json, "secret", "");
        if (*secret)
            printf("  signing secret (X-Dumont-Signature: sha256=HMAC-SHA256(secret, body)); it "
                   "is shown only now:\n%s\n",
                   secret);
    }
    client_resp_done(&r);
    return 0;
}

static void show_list(const json_t *j, FILE *out)
{
    static const char *const hdr[] = {"NAME",   "KIND",      "URL",      "NOTIFY_ON",
                                      "QUEUED", "DELIVERED", "GIVEN UP", "LAST ERROR"};
    out_table *t = out_table_new(8, hdr);
    const json_t *arr = json_object_get(j, "alerts");
    size_t i;
    const json_t *e;
    json_array_foreach(arr, i, e)
    {
        char ev[256], q[24], d[24], g[24];
        events_text(e, ev, sizeof ev);
        snprintf(q, sizeof q, "%lld", (long long)out_json_int(e, "queued"));
        snprintf(d, sizeof d, "%lld", (long long)out_json_int(e, "delivered"));
        snprintf(g, sizeof g, "%lld", (long long)out_json_int(e, "given_up"));
        const char *cells[] = {out_json_str(e, "name", "?"),
                               out_json_str(e, "kind", "?"),
                               out_json_str(e, "url", "?"),
                               ev,
                               q,
                               d,
                               g,
                               out_json_str(e, "last_error", "-")};
        if (t)
            out_table_add(t, cells);
    }
    if (t && json_array_size(arr) > 0) {
        for (int col = 4; col <= 6; col++)
            out_table_align_right(t, col);
        out_table_print(t, out);
    } else {
        fprintf(out, "no alert destinations (dumont alerts add kind=slack url=...)\n");
    }
    out_table_free(t);
}

static int run_list(subcmd_ctx *c)
{
    return subcmd_get_show(c, "/api/alerts", show_list);
}

static int name_path(subcmd_ctx *c, const char *suffix, char *path, size_t cap)
{
    const char *n = c->a.pos[0];
    if (!parse_name_ok(n, DB_ALERT_NAME_MAX) ||
        snprintf(path, cap, "/api/alerts/%s%s", n, suffix) >= (int)cap)
        return subcmd_usage_error(c, "'%s' is not an alert name", n);
    return 0;
}

static int run_test(subcmd_ctx *c)
{
    char path[200];
    int rc = name_path(c, "/test", path, sizeof path);
    if (rc)
        return rc;
    client_resp r;
    if ((rc = subcmd_call(c, "POST", path, NULL, &r)) != 0)
        return rc; /* CLI-AC3: a 502 says why on stderr */
    if (c->a.json)
        subcmd_print_json(&r);
    else
        printf("test alert delivered to %s: HTTP %lld in %lld ms\n", c->a.pos[0],
               (long long)out_json_int(r.json, "status"), (long long)out_json_int(r.json, "ms"));
    client_resp_done(&r);
    return 0;
}

static int run_remove(subcmd_ctx *c)
{
    char path[200];
    int rc = name_path(c, "", path, sizeof path);
    if (rc)
        return rc;
    client_resp r;
    if ((rc = subcmd_call(c, "DELETE", path, NULL, &r)) != 0)
        return rc;
    if (c->a.json)
        subcmd_print_json(&r);
    else
        printf("alert %s removed\n", c->a.pos[0]);
    client_resp_done(&r);
    return 0;
}

static void show_deliveries(const json_t *j, FILE *out)
{
    static const char *const hdr[] = {"QUEUED", "EVENT", "STATE", "ATTEMPTS", "LAST", "KEY"};
    out_table *t = out_table_new(6, hdr);
    const json_t *arr = json_object_get(j, "deliveries");
    size_t i;
    const json_t *e;
    json_array_foreach(arr, i, e)
    {
        char att[24], last[160];
        snprintf(att, sizeof att, "%lld", (long long)out_json_int(e, "attempts"));
        int64_t st = out_json_int(e, "last_status");
        const char *le = out_json_str(e, "last_error", "");
        if (*le)
            snprintf(last, sizeof last, "%s", le);
        else if (st > 0)
            snprintf(last, sizeof last, "HTTP %lld", (long long)st);
        else
            snprintf(last, sizeof last, "-");
        const char *cells[] = {out_json_str(e, "queued_at", "-"),
                               out_json_str(e, "event", "?"),
                               out_json_str(e, "state", "?"),
                               att,
                               last,
                               out_json_str(e, "idempotency_key", "?")};
        if (t)
            out_table_add(t, cells);
    }
    if (t && json_array_size(arr) > 0)
        out_table_print(t, out);
    else
        fprintf(out, "no deliveries yet\n");
    out_table_free(t);
}

static int run_deliveries(subcmd_ctx *c)
{
    char path[200];
    int rc = name_path(c, "/deliveries", path, sizeof path);
    return rc ? rc : subcmd_get_show(c, path, show_deliveries);
}

static const char *const k_add[] = {"kind", "url", "name", "notify_on", NULL};
static const char *const k_none[] = {NULL};

static const subcmd_entry commands[] = {
    {{"add",
      "usage: dumont alerts add kind=slack|discord|webhook url=URL [name=N]\n"
      "                         [notify_on=E,E,...] [--json]\n"
      "\nAdds a destination. url is the service's incoming-webhook URL (https://; it is a\n"
      "secret: stored sealed, shown only as scheme://host/...). name defaults to the kind\n"
      "and a number (slack-1). notify_on: started, completed, failed, suspect,\n"
      "instance_failed, snapshot_failing, standby_activated, flapping, or all\n"
      "(default: all but suspect). A webhook receives the event as JSON, signed with a\n"
      "secret made now and printed once:\n"
      "X-Dumont-Signature: sha256=<hex HMAC-SHA256(secret, body)>.\n"
      "Every delivery carries an Idempotency-Key header, the same on each retry.\n",
      k_add, 0, 0, 0},
     run_add},
    {{"list",
      "usage: dumont alerts list [--json]\n"
      "\nEvery destination: name, kind, URL (redacted), events, and its queue: queued,\n"
      "delivered, given up, the last error.\n",
      k_none, 0, 0, 0},
     run_list},
    {{"test",
      "usage: dumont alerts test NAME [--json]\n"
      "\nSends a test alert to NAME now, once, and says what the receiver answered. Exits 0\n"
      "when it answered 2xx, 1 otherwise (with the answer or the network error).\n",
      k_none, 1, 1, 0},
     run_test},
    {{"remove",
      "usage: dumont alerts remove NAME [--json]\n"
      "\nStops sending to NAME; what was queued for it is dropped.\n",
      k_none, 1, 1, 0},
     run_remove},
    {{"deliveries",
      "usage: dumont alerts deliveries NAME [--json]\n"
      "\nThe newest deliveries to NAME: when queued, the event, its state (queued,\n"
      "delivered, refused, expired), attempts, the last answer, the idempotency key.\n",
      k_none, 1, 1, 0},
     run_deliveries},
};

static const subcmd_set alerts_set = {
    .prog = "alerts",
    .usage = alerts_usage,
    .cmds = commands,
    .ncmds = sizeof commands / sizeof commands[0],
    .stride = sizeof commands[0],
};

int cmd_alerts(dm_config *cfg, int argc, char **argv)
{
    return subcmd_main(&alerts_set, cfg, argc, argv);
}

/* The control channel's routes (see routes_channel.h for API-CH1). */
#include "api/routes_channel.h"

#include "provider/channel.h"
#include "util/error.h"
#include "util/log.h"
#include "util/parse.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NUM_MAX ((int64_t)1 << 53)

static int64_t path_id(const api_request *req)
{
    int64_t id = 0;
    return req->nsegs >= 3 && parse_i64(req->segs[2], 1, NUM_MAX, &id) == 0 ? id : -1;
}

static int no_channel(const api_ctx *ctx, api_response *resp)
{
    if (ctx->channel)
        return 0;
    return api_error(resp, 503, "unavailable", "this server has no control channel"), -1;
}

/* An optional integer field in lo..hi (API-CH1); -1 with a 400 set. */
static int opt_int(json_t *o, const char *key, int64_t lo, int64_t hi, int64_t *ret,
                   api_response *resp)
{
    json_t *v = json_object_get(o, key);
    if (!v)
        return 0;
    if (!json_is_integer(v) || json_integer_value(v) < lo || json_integer_value(v) > hi)
        return api_error(resp, 400, "bad_request", "'%s' must be an integer from %lld to %lld",
                         key, (long long)lo, (long long)hi),
               -1;
    *ret = json_integer_value(v);
    return 0;
}

static json_t *command_json(const db_command *c, int with_answer)
{
    json_t *args = json_loads(c->args, 0, NULL);
    json_t *o = json_pack("{sssIsssIso}", "id", c->id, "seq", (json_int_t)c->seq, "kind", c->kind,
                          "epoch", (json_int_t)c->epoch, "args", args ? args : json_object());
    if (o && with_answer) {
        json_t *res = c->result[0] ? json_loads(c->result, 0, NULL) : NULL;
        json_object_set_new(o, "instance_id", json_integer(c->instance_id));
        json_object_set_new(o, "state", json_string(c->state));
        json_object_set_new(o, "result", res ? res : json_null());
        json_object_set_new(o, "created_ms", json_integer(c->created_ms));
    }
    return o;
}

int api_h_command_poll(const api_ctx *ctx, const api_request *req, api_response *resp)
{
    static const char *const allowed[] = {"after", "wait_ms", "epoch", "fenced", NULL};
    json_t *o = NULL;
    int64_t id = path_id(req), after = 0, wait_ms = 0, epoch = 0;
    if (no_channel(ctx, resp) || api_body_object(req, resp, allowed, &o))
        return 0;
    json_t *fv = json_object_get(o, "fenced");
    if (opt_int(o, "after", 0, NUM_MAX, &after, resp) ||
        opt_int(o, "wait_ms", 0, CHAN_WAIT_MAX_MS, &wait_ms, resp) ||
        opt_int(o, "epoch", 0, NUM_MAX, &epoch, resp) || (fv && !json_is_boolean(fv))) {
        if (fv && !json_is_boolean(fv))
            api_error(resp, 400, "bad_request", "'fenced' must be true or false");
        json_decref(o);
        return 0;
    }
    int fenced = json_is_true(fv);
    json_decref(o);
    if (fenced) /* channel.h AG-C4: the agent says it fenced itself */
        log_warn("channel.agent_self_fenced", "instance=%lld epoch=%lld", (long long)id,
                 (long long)epoch);
    db_command c;
    int have = 0, busy = 0;
    char err[256] = "";
    int rc = chan_poll(ctx->channel, id, after, wait_ms, &c, &have, &busy, err, sizeof err);
    if (rc)
        return api_error_from(resp, rc, err);
    json_t *cmd = have ? command_json(&c, 0) : json_null();
    return api_json(resp, 200, json_pack("{sosb}", "command", cmd, "busy", busy));
}

/* The path's command id: [A-Za-z0-9._-], 1 .. DB_CMD_ID_MAX-1 (API-CH1). */
static const char *path_cmd(const api_request *req, api_response *resp)
{
    const char *s = req->nsegs >= 5 ? req->segs[4] : "";
    size_t n = strlen(s);
    int ok = n > 0 && n < DB_CMD_ID_MAX;
    for (size_t i = 0; ok && i < n; i++)
        ok = strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-", s[i]) !=
             NULL;
    if (!ok)
        api_error(resp, 400, "bad_request", "a command id is 1 to %d characters of [A-Za-z0-9._-]",
                  DB_CMD_ID_MAX - 1);
    return ok ? s : NULL;
}

int api_h_command_result(const api_ctx *ctx, const api_request *req, api_response *resp)
{
    static const char *const allowed[] = {"state", "result", NULL};
    json_t *o = NULL;
    int64_t id = path_id(req);
    const char *cid = path_cmd(req, resp), *state = NULL;
    if (!cid || no_channel(ctx, resp) || api_body_object(req, resp, allowed, &o))
        return 0;
    state = json_string_value(json_object_get(o, "state"));
    json_t *res = json_object_get(o, "result");
    char *text = json_is_object(res) ? json_dumps(res, JSON_COMPACT) : NULL;
    int rc = 0;
    char err[256] = "";
    if (!state || (strcmp(state, "done") != 0 && strcmp(state, "failed") != 0))
        api_error(resp, 400, "bad_request", "'state' must be \"done\" or \"failed\"");
    else if (!text || strlen(text) >= DB_CMD_RESULT_MAX)
        api_error(resp, 400, "bad_request", "'result' must be a JSON object of at most %d bytes",
                  DB_CMD_RESULT_MAX - 1);
    else if ((rc = chan_answer(ctx->channel, id, cid, state, text, err, sizeof err)) != 0)
        api_error_from(resp, rc, rc == DM_E_NOT_FOUND ? "no such command of this instance" : err);
    else
        api_json(resp, 200, json_pack("{ssss}", "id", cid, "state", state));
    free(text);
    json_decref(o);
    return 0;
}

int api_h_command_get(const api_ctx *ctx, const api_request *req, api_response *resp)
{
    int64_t id = path_id(req);
    const char *cid = path_cmd(req, resp);
    db_command c;
    char err[256] = "";
    if (!cid)
        return 0;
    int rc = db_command_get(ctx->db, cid, &c, err, sizeof err);
    if (rc == 0 && c.instance_id != id)
        rc = DM_E_NOT_FOUND;
    if (rc)
        return api_error_from(resp, rc, rc == DM_E_NOT_FOUND ? "no such command of this instance" : err);
    return api_json(resp, 200, command_json(&c, 1));
}

/* Credential endpoints (see routes_tokens.h for API-RT1). */
#include "api/routes_tokens.h"

#include "api/render.h"
#include "db/db_token.h"
#include "util/clock.h"
#include "util/error.h"
#include "util/log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static json_t *render_token(const db_token *t)
{
    return json_pack("{s:s, s:s, s:o, s:o, s:o}", "name", t->name, "role", t->role, "instance_id",
                     t->instance_id > 0 ? json_integer(t->instance_id) : json_null(), "created_at",
                     render_time(t->created_at_ms), "last_used_at", render_time(t->last_used_ms));
}

int api_h_token_create(const api_ctx *ctx, const api_request *req, api_response *resp)
{
    static const char *const allowed[] = {"role", "name", "instance_id", NULL};
    json_t *o;
    if (!ctx->secrets_ok) /* server.h API-S4: the answer carries the secret */
        return api_error(resp, 403, "tls_required",
                         "new tokens are handed out only over TLS, or by a server listening on "
                         "a loopback address; start the server with --tls-cert and --tls-key");
    if (api_body_object(req, resp, allowed, &o))
        return 0;
    db_token t = {.created_at_ms = clock_wall_ms(), .last_used_ms = DM_NULL};
    const char *role = NULL, *name = NULL;
    json_t *inst = json_object_get(o, "instance_id");
    int bad = api_text_field(o, "role", sizeof t.role, &role, resp) ||
              api_text_field(o, "name", sizeof t.name, &name, resp);
    if (!bad && (!role || !name)) {
        api_error(resp, 400, "bad_request", "'role' and 'name' are required");
        bad = 1;
    }
    if (!bad && inst && !json_is_null(inst) &&
        (!json_is_integer(inst) || json_integer_value(inst) < 1 ||
         json_integer_value(inst) > ((int64_t)1 << 53))) {
        api_error(resp, 400, "bad_request", "'instance_id' must be an instance id");
        bad = 1;
    }
    if (bad) {
        json_decref(o);
        return 0;
    }
    snprintf(t.role, sizeof t.role, "%s", role);
    snprintf(t.name, sizeof t.name, "%s", name);
    t.instance_id = json_is_integer(inst) ? json_integer_value(inst) : 0;
    json_decref(o);
    char secret[DB_TOKEN_HEX_LEN + 1], err[256] = "";
    int rc = db_token_create(ctx->db, &t, secret, sizeof secret, err, sizeof err);
    if (rc)
        return api_error_from(resp, rc, err);
    char q[DB_TOKEN_NAME_MAX + 8];
    log_info("token.created", "name=%s role=%s instance_id=%lld by=%s",
             log_quote(q, sizeof q, t.name), t.role, (long long)t.instance_id,
             req->cred ? req->cred->name : "-");
    json_t *b = render_token(&t);
    if (b)
        json_object_set_new(b, "token", json_string(secret)); /* API-RT1: once */
    explicit_bzero(secret, sizeof secret);
    return api_json(resp, 201, b);
}

int api_h_token_list(const api_ctx *ctx, const api_request *req, api_response *resp)
{
    (void)req;
    db_token *v = NULL;
    size_t n = 0;
    char err[256] = "";
    int rc = db_token_list(ctx->db, &v, &n, err, sizeof err);
    if (rc)
        return api_error_from(resp, rc, err);
    json_t *arr = json_array();
    for (size_t i = 0; i < n && arr; i++)
        json_array_append_new(arr, render_token(&v[i]));
    free(v);
    return api_json(resp, 200,
                    arr ? json_pack("{s:I, s:o}", "total", (json_int_t)n, "tokens", arr) : NULL);
}

int api_h_token_revoke(const api_ctx *ctx, const api_request *req, api_response *resp)
{
    const char *name = req->segs[2];
    char err[256] = "";
    if (!db_token_name_ok(name))
        return api_error(resp, 404, "not_found", "no token '%.64s'", name);
    int rc = db_token_revoke(ctx->db, name, err, sizeof err);
    if (rc)
        return api_error_from(resp, rc, err);
    char q[DB_TOKEN_NAME_MAX + 8];
    log_info("token.revoked", "name=%s by=%s", log_quote(q, sizeof q, name),
             req->cred ? req->cred->name : "-");
    return api_json(resp, 200, json_pack("{s:s}", "revoked", name));
}

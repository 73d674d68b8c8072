/* API credentials (see db_token.h for DB-T1 to DB-T4). */
#include "db/db_token.h"

#include "db/db_internal.h"
#include "util/error.h"
#include "util/parse.h"
#include "util/secret.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TOKEN_COLS "name, role, instance_id, created_at_ms, last_used_ms"

int db_token_name_ok(const char *name)
{
    return parse_name_ok(name, DB_TOKEN_NAME_MAX) && strcmp(name, "admin") != 0;
}

static int role_ok(const char *role)
{
    return strcmp(role, "viewer") == 0 || strcmp(role, "client") == 0 || strcmp(role, "agent") == 0;
}

int db_token_create(dm_db *db, const db_token *t, char *ret_secret, size_t cap, char *err,
                    size_t errlen)
{
    if (!db || !t || !ret_secret || cap < DB_TOKEN_HEX_LEN + 1)
        return dm_fail(err, errlen, DM_E_INVALID, "no database, token or room for the secret");
    if (!DB_STR_OK(t->name) || !db_token_name_ok(t->name))
        return dm_fail(err, errlen, DM_E_INVALID,
                       "a token name is 1 to %d characters of A-Z a-z 0-9 . _ - (not 'admin')",
                       DB_TOKEN_NAME_MAX - 1);
    if (!DB_STR_OK(t->role) || !role_ok(t->role))
        return dm_fail(err, errlen, DM_E_INVALID,
                       "role must be viewer, client or agent (admin is $DUMONT_HOME/token)");
    int agent = strcmp(t->role, "agent") == 0;
    if (agent != (t->instance_id > 0))
        return dm_fail(err, errlen, DM_E_INVALID,
                       agent ? "an agent token needs its instance (instance=N)"
                             : "only an agent token names an instance");
    char secret[DB_TOKEN_HEX_LEN + 1], hash[65];
    int rc = secret_random_hex(secret, sizeof secret, DB_TOKEN_HEX_LEN / 2);
    if (rc)
        return dm_fail(err, errlen, rc, "no random bytes for a token");
    secret_sha256_hex(secret, hash);
    db_param p[] = {db_p_text(t->name), db_p_text(t->role),
                    agent ? db_p_i64(t->instance_id) : db_p_i64n(DM_NULL), db_p_text(hash),
                    db_p_i64(t->created_at_ms)};
    pthread_mutex_lock(&db->lock);
    rc = db_x(db,
              "INSERT INTO api_tokens (name, role, instance_id, token_hash, created_at_ms)"
              " VALUES ($1, $2, $3, $4, $5)",
              p, 5, NULL, NULL, NULL, err, errlen);
    pthread_mutex_unlock(&db->lock);
    if (rc == DM_E_CONFLICT)
        rc = dm_fail(err, errlen, rc, "a token named '%s' exists", t->name);
    if (rc == 0)
        memcpy(ret_secret, secret, sizeof secret);
    explicit_bzero(secret, sizeof secret);
    return rc;
}

typedef struct {
    db_token *v;
    size_t n, cap, max;
    int bad;
} tok_vec;

static int tok_row(const db_row *r, void *ctx)
{
    tok_vec *x = ctx;
    if (x->n == x->max)
        return DM_E_TOO_BIG;
    if (x->n == x->cap) {
        size_t cap = x->cap ? x->cap * 2 : 8;
        db_token *v = realloc(x->v, cap * sizeof *v);
        if (!v)
            return -ENOMEM;
        x->v = v;
        x->cap = cap;
    }
    db_token *t = &x->v[x->n];
    memset(t, 0, sizeof *t);
    int64_t inst = db_col_i64n(r, 2);
    t->instance_id = inst == DM_NULL ? 0 : inst;
    t->created_at_ms = db_row_i64(r, 3, NULL);
    t->last_used_ms = db_col_i64n(r, 4);
    if (db_text_copy(t->name, sizeof t->name, db_row_text(r, 0)) ||
        db_text_copy(t->role, sizeof t->role, db_row_text(r, 1))) {
        x->bad = 1;
        return DM_E_DB;
    }
    x->n++;
    return 0;
}

static int tok_query(dm_db *db, const char *sql, const db_param *p, int np, tok_vec *x, char *err,
                     size_t errlen)
{
    int rc = db_x(db, sql, p, np, tok_row, x, NULL, err, errlen);
    if (rc == DM_E_DB && x->bad)
        rc = dm_fail(err, errlen, rc, "a token row does not decode");
    if (rc) {
        free(x->v);
        x->v = NULL;
        x->n = 0;
    }
    return rc;
}

int db_token_lookup(dm_db *db, const char *secret, int64_t now_ms, db_token *ret, char *err,
                    size_t errlen)
{
    if (!db || !secret || !ret)
        return dm_fail(err, errlen, DM_E_INVALID, "no database, token or result");
    char hash[65];
    secret_sha256_hex(secret, hash); /* DB-T1 */
    tok_vec x = {.max = 1};
    db_param p[] = {db_p_text(hash)};
    pthread_mutex_lock(&db->lock);
    int rc = tok_query(db, "SELECT " TOKEN_COLS " FROM api_tokens WHERE token_hash = $1", p, 1, &x,
                       err, errlen);
    if (rc == 0 && x.n == 1 &&
        (x.v[0].last_used_ms == DM_NULL || now_ms - x.v[0].last_used_ms >= DB_TOKEN_TOUCH_MS)) {
        db_param q[] = {db_p_i64(now_ms), db_p_text(hash)}; /* DB-T3 */
        char e2[128];
        if (db_x(db, "UPDATE api_tokens SET last_used_ms = $1 WHERE token_hash = $2", q, 2, NULL,
                 NULL, NULL, e2, sizeof e2) == 0)
            x.v[0].last_used_ms = now_ms;
    }
    pthread_mutex_unlock(&db->lock);
    explicit_bzero(hash, sizeof hash);
    if (rc)
        return rc;
    if (x.n == 0)
        return dm_fail(err, errlen, DM_E_NOT_FOUND, "unknown token");
    *ret = x.v[0];
    free(x.v);
    return 0;
}

int db_token_list(dm_db *db, db_token **ret, size_t *ret_n, char *err, size_t errlen)
{
    if (!db || !ret || !ret_n)
        return dm_fail(err, errlen, DM_E_INVALID, "no database or result");
    tok_vec x = {.max = DB_TOKEN_LIST_MAX};
    pthread_mutex_lock(&db->lock);
    int rc = tok_query(db, "SELECT " TOKEN_COLS " FROM api_tokens ORDER BY name", NULL, 0, &x, err,
                       errlen);
    pthread_mutex_unlock(&db->lock);
    if (rc)
        return rc;
    *ret = x.v;
    *ret_n = x.n;
    return 0;
}

int db_token_revoke(dm_db *db, const char *name, char *err, size_t errlen)
{
    if (!db || !name)
        return dm_fail(err, errlen, DM_E_INVALID, "no database or name");
    db_param p[] = {db_p_text(name)};
    int64_t n = 0;
    pthread_mutex_lock(&db->lock);
    int rc = db_x(db, "DELETE FROM api_tokens WHERE name = $1", p, 1, NULL, NULL, &n, err, errlen);
    pthread_mutex_unlock(&db->lock);
    if (rc == 0 && n == 0)
        rc = dm_fail(err, errlen, DM_E_NOT_FOUND, "no token '%.64s'", name);
    return rc;
}

int db_token_revoke_instance(dm_db *db, int64_t instance_id, int64_t *ret_n, char *err,
                             size_t errlen)
{
    if (!db || instance_id < 1)
        return dm_fail(err, errlen, DM_E_INVALID, "no database or instance");
    db_param p[] = {db_p_i64(instance_id)};
    int64_t n = 0;
    pthread_mutex_lock(&db->lock);
    int rc = db_x(db, "DELETE FROM api_tokens WHERE instance_id = $1", p, 1, NULL, NULL, &n, err,
                  errlen);
    pthread_mutex_unlock(&db->lock);
    if (rc == 0 && ret_n)
        *ret_n = n;
    return rc;
}

int db_token_create_agent(dm_db *db, int64_t instance_id, int64_t now_ms, char *ret_secret,
                          size_t cap, char *ret_name, size_t name_cap, char *err, size_t errlen)
{
    db_token t = {.role = "agent", .instance_id = instance_id, .created_at_ms = now_ms};
    int rc = DM_E_CONFLICT;
    for (int k = 1; k <= 100 && rc == DM_E_CONFLICT; k++) { /* DB-T4: re-provisions add one */
        if (k == 1)
            snprintf(t.name, sizeof t.name, "agent-%lld", (long long)instance_id);
        else
            snprintf(t.name, sizeof t.name, "agent-%lld-%d", (long long)instance_id, k);
        rc = db_token_create(db, &t, ret_secret, cap, err, errlen);
    }
    if (rc == 0 && ret_name)
        snprintf(ret_name, name_cap, "%s", t.name);
    return rc;
}

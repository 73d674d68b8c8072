/* API credentials in the database (migration 4; docs/security.md "Roles").
 * Same rules as db.h (DB-D1: one mutex per call).
 *
 * DB-T1: a token is never stored: only the SHA-256 of it (hex). The tokens are
 *     256 random bits, so the hash is as good as the secret for a lookup and
 *     worthless to whoever steals the database. A lookup is by that hash
 *     (an index): its time does not depend on how much of a guess was right.
 * DB-T2: names are unique, [A-Za-z0-9._-], 1 to DB_TOKEN_NAME_MAX-1 chars;
 *     "admin" is the token file's and cannot be created.
 * DB-T3: last_used_ms is written at most once per DB_TOKEN_TOUCH_MS per token
 *     (the lookup compares the stored value), not once per request.
 * DB-T4: an agent token names its instance; db_token_revoke_instance() removes
 *     every token of a destroyed instance. */
#ifndef DUMONT_DB_DB_TOKEN_H
#define DUMONT_DB_DB_TOKEN_H

#include "db/db.h"

#include <stddef.h>
#include <stdint.h>

#define DB_TOKEN_NAME_MAX 64
#define DB_TOKEN_LIST_MAX 10000
#define DB_TOKEN_TOUCH_MS 60000
#define DB_TOKEN_HEX_LEN  64 /* the secret: 32 random bytes in hex */

typedef struct {
    char name[DB_TOKEN_NAME_MAX];
    char role[16];       /* "viewer" | "client" | "agent" (admin is the token file) */
    int64_t instance_id; /* agent: its instance; else 0 */
    int64_t created_at_ms;
    int64_t last_used_ms; /* DM_NULL: never used */
} db_token;

/* DB-T2: 1 when name is a valid new token name. */
int db_token_name_ok(const char *name);
/* Makes a token: writes the secret (DB_TOKEN_HEX_LEN chars + NUL) to
 * ret_secret (cap bytes) and stores its hash (DB-T1) with t's name, role and
 * instance. DM_E_CONFLICT when the name is taken; DM_E_INVALID for a bad
 * name or role, or an agent without an instance. */
int db_token_create(dm_db *db, const db_token *t, char *ret_secret, size_t cap, char *err,
                    size_t errlen);
/* DB-T4: the agent credential of an instance, named "agent-<id>" (or
 * "agent-<id>-<k>" when that one exists: a re-provision adds one). */
int db_token_create_agent(dm_db *db, int64_t instance_id, int64_t now_ms, char *ret_secret,
                          size_t cap, char *ret_name, size_t name_cap, char *err, size_t errlen);
/* The token whose secret is `secret` (DB-T1; touched per DB-T3), or DM_E_NOT_FOUND. */
int db_token_lookup(dm_db *db, const char *secret, int64_t now_ms, db_token *ret, char *err,
                    size_t errlen);
/* Every token by name; *ret malloc'd (free()), NULL when none. */
int db_token_list(dm_db *db, db_token **ret, size_t *ret_n, char *err, size_t errlen);
/* DM_E_NOT_FOUND when no token has that name. */
int db_token_revoke(dm_db *db, const char *name, char *err, size_t errlen);
/* DB-T4: removes every token of the instance; *ret_n (may be NULL) how many. */
int db_token_revoke_instance(dm_db *db, int64_t instance_id, int64_t *ret_n, char *err,
                             size_t errlen);

#endif

/* The control channel's commands (see db_command.h for DB-C1 to DB-C3). */
#include "db/db_command.h"

#include "db/db_internal.h"
#include "util/error.h"

#include <stdio.h>
#include <string.h>

#define COLS                                                                                       \
    "id, seq, instance_id, epoch, kind, args, state, COALESCE(result, ''), created_ms, done_ms"

static int cmd_row(const db_row *r, void *ctx)
{
    db_command *c = ctx;
    memset(c, 0, sizeof *c);
    if (db_text_copy(c->id, sizeof c->id, db_row_text(r, 0)) ||
        db_text_copy(c->kind, sizeof c->kind, db_row_text(r, 4)) ||
        db_text_copy(c->args, sizeof c->args, db_row_text(r, 5)) ||
        db_text_copy(c->state, sizeof c->state, db_row_text(r, 6)) ||
        db_text_copy(c->result, sizeof c->result, db_row_text(r, 7)))
        return DM_E_DB;
    c->seq = db_row_i64(r, 1, NULL);
    c->instance_id = db_row_i64(r, 2, NULL);
    c->epoch = db_row_i64(r, 3, NULL);
    c->created_ms = db_row_i64(r, 8, NULL);
    c->done_ms = db_col_i64n(r, 9);
    return 1; /* one row is enough */
}

/* Runs a one-row query into ret; DM_E_NOT_FOUND when no row. Lock held. */
static int one(dm_db *db, const char *sql, const db_param *p, int np, db_command *ret, char *err,
               size_t errlen)
{
    db_command c;
    c.seq = 0;
    int rc = db_x(db, sql, p, np, cmd_row, &c, NULL, err, errlen);
    if (rc == 1)
        rc = 0;
    if (rc == 0 && c.seq == 0)
        return dm_fail(err, errlen, DM_E_NOT_FOUND, "no such command");
    if (rc == 0)
        *ret = c;
    return rc;
}

static int fields_ok(const db_command *c)
{
    return DB_STR_OK(c->id) && DB_STR_OK(c->kind) && DB_STR_OK(c->args) && c->id[0] &&
           c->kind[0] && c->instance_id > 0 && c->epoch >= 0;
}

static int seq_row(const db_row *r, void *ctx)
{
    *(int64_t *)ctx = db_row_i64(r, 0, NULL);
    return 0;
}

static int put_locked(dm_db *db, const db_command *c, db_command *ret, char *err, size_t errlen)
{
    db_param id = db_p_text(c->id);
    int rc = one(db, "SELECT " COLS " FROM agent_commands WHERE id = $1", &id, 1, ret, err, errlen);
    if (rc == 0) { /* DB-C1 */
        if (ret->instance_id != c->instance_id || ret->epoch != c->epoch ||
            strcmp(ret->kind, c->kind) != 0)
            return dm_fail(err, errlen, DM_E_CONFLICT,
                           "command %s exists for another instance, epoch or kind", c->id);
        return 0;
    }
    if (rc != DM_E_NOT_FOUND)
        return rc;
    int64_t seq = 0;
    if ((rc = db_x(db, "SELECT COALESCE(MAX(seq), 0) + 1 FROM agent_commands", NULL, 0, seq_row,
                   &seq, NULL, err, errlen)) != 0) /* DB-C2: under the lock and the transaction */
        return rc;
    db_param p[] = {db_p_text(c->id),       db_p_i64(seq),     db_p_i64(c->instance_id),
                    db_p_i64(c->epoch),     db_p_text(c->kind), db_p_text(c->args[0] ? c->args : "{}"),
                    db_p_i64(c->created_ms)};
    rc = db_x(db,
              "INSERT INTO agent_commands (id, seq, instance_id, epoch, kind, args, state,"
              " created_ms) VALUES ($1, $2, $3, $4, $5, $6, 'queued', $7)",
              p, 7, NULL, NULL, NULL, err, errlen);
    if (rc == 0)
        rc = one(db, "SELECT " COLS " FROM agent_commands WHERE id = $1", &id, 1, ret, err, errlen);
    return rc;
}

int db_command_put(dm_db *db, const db_command *c, db_command *ret, char *err, size_t errlen)
{
    if (!db || !c || !ret || !fields_ok(c))
        return dm_fail(err, errlen, DM_E_INVALID, "a command needs an id, a kind and an instance");
    pthread_mutex_lock(&db->lock);
    int rc = db_begin(db, DB_TX_WRITE, err, errlen);
    if (rc == 0)
        rc = db_end(db, put_locked(db, c, ret, err, errlen), err, errlen);
    pthread_mutex_unlock(&db->lock);
    return rc;
}

int db_command_get(dm_db *db, const char *id, db_command *ret, char *err, size_t errlen)
{
    if (!db || !id || !ret)
        return dm_fail(err, errlen, DM_E_INVALID, "no command id");
    db_param p = db_p_text(id);
    pthread_mutex_lock(&db->lock);
    int rc = one(db, "SELECT " COLS " FROM agent_commands WHERE id = $1", &p, 1, ret, err, errlen);
    pthread_mutex_unlock(&db->lock);
    return rc;
}

int db_command_next(dm_db *db, int64_t instance_id, int64_t after, db_command *ret, char *err,
                    size_t errlen)
{
    if (!db || !ret)
        return dm_fail(err, errlen, DM_E_INVALID, "no database or result");
    db_param p[] = {db_p_i64(instance_id), db_p_i64(after)};
    pthread_mutex_lock(&db->lock);
    int rc = one(db,
                 "SELECT " COLS " FROM agent_commands WHERE instance_id = $1 AND seq > $2"
                 " AND state = 'queued' ORDER BY seq LIMIT 1",
                 p, 2, ret, err, errlen);
    pthread_mutex_unlock(&db->lock);
    return rc;
}

int db_command_finish(dm_db *db, int64_t instance_id, const char *id, const char *state,
                      const char *result, int64_t done_ms, char *err, size_t errlen)
{
    if (!db || !id || !state || !result ||
        (strcmp(state, "done") != 0 && strcmp(state, "failed") != 0) ||
        strlen(result) >= DB_CMD_RESULT_MAX)
        return dm_fail(err, errlen, DM_E_INVALID, "bad command answer");
    db_param p[] = {db_p_text(state), db_p_text(result), db_p_i64(done_ms), db_p_text(id),
                    db_p_i64(instance_id)};
    db_param q[] = {db_p_text(id), db_p_i64(instance_id)};
    db_command c;
    pthread_mutex_lock(&db->lock);
    int rc = one(db, "SELECT " COLS " FROM agent_commands WHERE id = $1 AND instance_id = $2", q,
                 2, &c, err, errlen);
    if (rc == 0 && strcmp(c.state, "queued") == 0) /* DB-C3: the first answer stays */
        rc = db_x(db,
                  "UPDATE agent_commands SET state = $1, result = $2, done_ms = $3"
                  " WHERE id = $4 AND instance_id = $5 AND state = 'queued'",
                  p, 5, NULL, NULL, NULL, err, errlen);
    pthread_mutex_unlock(&db->lock);
    return rc;
}

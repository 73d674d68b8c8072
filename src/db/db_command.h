/* The control channel's commands in the database (migration 9;
 * docs/provider.md "The control channel"): what the controller asked an
 * instance's agent to do, and the agent's answer. Same rules as db.h (DB-D1).
 *
 * DB-C1: a command is put once per id: db_command_put() of an id that exists
 *     changes nothing and returns the stored row (its answer too, when there
 *     is one), so a controller that crashed and asks again gets the same
 *     command and, once answered, the same answer. Putting an existing id for
 *     another instance, kind or epoch is DM_E_CONFLICT.
 * DB-C2: seq numbers the commands in the order they were put (one counter,
 *     assigned under the database's lock): an agent asks for the first
 *     unanswered command after the last seq it took.
 * DB-C3: an answer is written once: db_command_finish() of an answered
 *     command changes nothing and succeeds (the agent may send its answer
 *     twice); of an id of another instance it is DM_E_NOT_FOUND. */
#ifndef DUMONT_DB_DB_COMMAND_H
#define DUMONT_DB_DB_COMMAND_H

#include "db/db.h"

#include <stddef.h>
#include <stdint.h>

#define DB_CMD_ID_MAX     128
#define DB_CMD_KIND_MAX   24
#define DB_CMD_ARGS_MAX   2048
#define DB_CMD_RESULT_MAX 2048

typedef struct {
    char id[DB_CMD_ID_MAX];
    int64_t seq; /* DB-C2; set by db_command_put */
    int64_t instance_id;
    int64_t epoch;
    char kind[DB_CMD_KIND_MAX];    /* "ping" | "restore" | "start_workload" | "snapshot" | "stop" */
    char args[DB_CMD_ARGS_MAX];    /* a JSON object */
    char state[16];                /* "queued" | "done" | "failed" */
    char result[DB_CMD_RESULT_MAX]; /* the agent's answer (JSON object); "" while queued */
    int64_t created_ms;
    int64_t done_ms; /* DM_NULL while queued */
} db_command;

/* DB-C1: *ret is the stored row (c's, or the one that was there). */
int db_command_put(dm_db *db, const db_command *c, db_command *ret, char *err, size_t errlen);
int db_command_get(dm_db *db, const char *id, db_command *ret, char *err, size_t errlen);
/* DB-C2: the first queued command of the instance with seq > after;
 * DM_E_NOT_FOUND when none. */
int db_command_next(dm_db *db, int64_t instance_id, int64_t after, db_command *ret, char *err,
                    size_t errlen);
/* DB-C3: state "done" or "failed", result a JSON object. */
int db_command_finish(dm_db *db, int64_t instance_id, const char *id, const char *state,
                      const char *result, int64_t done_ms, char *err, size_t errlen);

#endif

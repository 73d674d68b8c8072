/* The subcommand machinery shared by `dumont failover|instances|chaos|snapshot`:
 * argument splitting, the table of subcommands, usage errors, and (for the
 * clients of the REST API) one request with the CLI's error contract.
 *
 * Arguments: flags (--json, --help, and those the command set accepts) may
 * stand anywhere, before or after the subcommand and its arguments;
 * `key=value` words go through kv_parse(); the other words are positional.
 * A subcommand declares which keys it takes and how many positional words.
 *
 * CLI-SC1: exit status 0 success, 1 failure (one line "dumont: <reason>" on
 *      stderr), 2 usage error (one line with the reason, then the usage, on
 *      stderr). --help prints the usage on stdout and exits 0, whatever else
 *      the line holds (a parse problem before it does not count).
 * CLI-SC2: --json prints the API's answer exactly as received (re-indented only),
 *      on stdout, also for an error answer; the readable output never goes
 *      to stdout together with it.
 * CLI-SC3: the client is made on first use: --help and usage errors need no
 *      token, no server.
 * CLI-SC4: --quiet (-q), known to every command, silences progress: progress
 *      lines, hints and the phases `--wait` prints as they finish. Results,
 *      errors and --json output are printed as without it. */
#ifndef DUMONT_CLI_SUBCMD_H
#define DUMONT_CLI_SUBCMD_H

#include "cli/client.h"
#include "util/config.h"
#include "util/parse.h"

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#define SUBCMD_POS_MAX    4
#define SUBCMD_EXIT_FAIL  1
#define SUBCMD_EXIT_USAGE 2
#define SUBCMD_RUN        (-1) /* subcmd_start: go on and run the subcommand */

/* Option flags: which a command set recognises (subcmd_set.flags), and which
 * one subcommand allows (subcmd.flags). --json and --help are always known. */
enum {
    SUBCMD_F_WAIT = 1 << 0,  /* --wait */
    SUBCMD_F_FORCE = 1 << 1, /* --force */
    SUBCMD_F_STORE = 1 << 2, /* --store URL, --store=URL */
    /* a word with '=' that starts with '/' or '.', or comes after "--", is a
     * positional word (a path), not key=value */
    SUBCMD_F_PATHS = 1 << 3,
};

typedef struct {
    const char *name;
    const char *usage;       /* printed by --help and after a usage error */
    const char *const *keys; /* allowed key=value keys, NULL-terminated */
    int min_pos, max_pos;
    unsigned flags; /* SUBCMD_F_WAIT / SUBCMD_F_FORCE allowed here */
} subcmd;

/* A command's subcommands. Each element of cmds (ncmds of them, stride bytes
 * apart) begins with a subcmd, so a command can keep its run function next
 * to it. */
typedef struct {
    const char *prog;        /* "failover": messages say "dumont failover ..." */
    const char *usage;       /* the command's own usage */
    const char *default_sub; /* used when no subcommand is given; NULL: an error */
    unsigned flags;          /* option flags recognised */
    const void *cmds;
    size_t ncmds, stride;
} subcmd_set;

typedef struct {
    int json, help, wait, force, quiet;
    const char *store;
    const char *sub;
    int npos;
    const char *pos[SUBCMD_POS_MAX];
    kv_list kv;
} subcmd_args;

/* Everything a subcommand of an API client needs. */
typedef struct {
    dm_config *cfg;
    const subcmd_set *set;
    const subcmd *cmd;
    subcmd_args a;
    dm_client *cl;   /* CLI-SC3 */
    long timeout_ms; /* 0: the client's default */
} subcmd_ctx;

/* Parses argv (argv[0] is the command name), finds the subcommand, handles
 * --help and checks counts, keys and flags (CLI-SC1). Returns SUBCMD_RUN with
 * c->cmd set when the subcommand should run, else the exit status. */
int subcmd_start(subcmd_ctx *c, const subcmd_set *set, dm_config *cfg, int argc, char **argv);
/* Frees what subcmd_start and the calls below made. */
void subcmd_done(subcmd_ctx *c);

/* A subcommand whose whole work is one function (set->cmds is an array of these). */
typedef struct {
    subcmd sc;
    int (*run)(subcmd_ctx *c);
} subcmd_entry;
/* subcmd_start, the entry's run, a checked flush of stdout, subcmd_done:
 * a whole `dumont PROG ...` for a set of subcmd_entry. */
int subcmd_main(const subcmd_set *set, dm_config *cfg, int argc, char **argv);

/* Prints "dumont PROG [SUB]: message", a blank line and the usage on stderr;
 * returns SUBCMD_EXIT_USAGE. */
int subcmd_usage_error(const subcmd_ctx *c, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* Prints "dumont: message" on stderr; returns SUBCMD_EXIT_FAIL. */
int subcmd_fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Checks an optional key=value integer in [min, max] (usage error if bad). */
int subcmd_check_int(const subcmd_ctx *c, const char *key, int64_t min, int64_t max);
/* Appends each given key of keys to the query string q (cap bytes). */
int subcmd_build_query(const subcmd_ctx *c, const char *const *keys, char *q, size_t cap);

/* One request. Returns 0 with *r owned by the caller, or SUBCMD_EXIT_FAIL
 * after saying why (CLI-SC1, CLI-SC2), *r released. */
int subcmd_call(subcmd_ctx *c, const char *method, const char *path, const json_t *body,
                client_resp *r);
/* GET path, then --json or show(). */
int subcmd_get_show(subcmd_ctx *c, const char *path, void (*show)(const json_t *, FILE *));
/* Prints r's body re-indented (CLI-SC2). */
void subcmd_print_json(const client_resp *r);

#endif

/* Subcommand machinery (see subcmd.h CLI-SC1 to CLI-SC3). */
#include "cli/subcmd.h"

#include "util/error.h"
#include "util/secret.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static const subcmd *cmd_at(const subcmd_set *set, size_t i)
{
    return (const subcmd *)((const char *)set->cmds + i * set->stride);
}

static const subcmd *find_cmd(const subcmd_set *set, const char *name)
{
    for (size_t i = 0; i < set->ncmds; i++)
        if (strcmp(cmd_at(set, i)->name, name) == 0)
            return cmd_at(set, i);
    return NULL;
}

static int parse_flag(const subcmd_set *set, subcmd_args *a, int argc, char **argv, int *i,
                      char *err, size_t errlen)
{
    const char *s = argv[*i];
    unsigned f = set->flags;
    if (strcmp(s, "--json") == 0)
        a->json = 1;
    else if (strcmp(s, "--help") == 0 || strcmp(s, "-h") == 0)
        a->help = 1;
    else if (strcmp(s, "--quiet") == 0 || strcmp(s, "-q") == 0)
        a->quiet = 1; /* CLI-SC4 */
    else if ((f & SUBCMD_F_WAIT) && strcmp(s, "--wait") == 0)
        a->wait = 1;
    else if ((f & SUBCMD_F_FORCE) && strcmp(s, "--force") == 0)
        a->force = 1;
    else if ((f & SUBCMD_F_STORE) && strncmp(s, "--store=", 8) == 0)
        a->store = s + 8;
    else if ((f & SUBCMD_F_STORE) && strcmp(s, "--store") == 0) {
        if (*i + 1 >= argc)
            return dm_fail(err, errlen, DM_E_INVALID, "--store needs a URL");
        a->store = argv[++*i];
    } else
        return dm_fail(err, errlen, DM_E_INVALID, "unknown option '%s'", s);
    return 0;
}

/* Is word s key=value (not a positional word)? */
static int is_kv(const subcmd_set *set, const char *s, int dashdash)
{
    if (!strchr(s, '='))
        return 0;
    if (set->flags & SUBCMD_F_PATHS)
        return !dashdash && s[0] != '/' && s[0] != '.';
    return 1;
}

/* Splits argv into flags, subcommand, positional words and key=value words.
 * Records the first problem in err but reads on, so that a --help later on
 * the line still counts (CLI-SC1). "-" alone is a positional word (stdin). */
static int parse_args(const subcmd_set *set, int argc, char **argv, subcmd_args *a, char *err,
                      size_t errlen)
{
    char *kvw[KV_MAX + 1];
    int nkv = 0, rc = 0, dashdash = 0;
    for (int i = 1; i < argc; i++) {
        const char *s = argv[i];
        int r = 0;
        if (!dashdash && strcmp(s, "--") == 0)
            dashdash = 1;
        else if (!dashdash && s[0] == '-' && s[1])
            r = parse_flag(set, a, argc, argv, &i, err, errlen);
        else if (!a->sub && !(set->default_sub && is_kv(set, s, dashdash)))
            a->sub = s; /* with a default subcommand, key=value first is its argument */
        else if (is_kv(set, s, dashdash) && nkv <= KV_MAX)
            kvw[nkv++] = argv[i]; /* KV_MAX + 1: kv_parse says "too many" */
        else if (!is_kv(set, s, dashdash) && a->npos < SUBCMD_POS_MAX)
            a->pos[a->npos++] = s;
        else
            r = dm_fail(err, errlen, DM_E_INVALID, "too many arguments");
        if (r && !rc) {
            rc = r;
            err = NULL; /* keep the first message */
            errlen = 0;
        }
    }
    if (kv_parse(&a->kv, nkv, kvw, err, errlen) != 0 && !rc)
        rc = DM_E_INVALID;
    return rc;
}

int subcmd_usage_error(const subcmd_ctx *c, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    for (char *p = msg; *p; p++)
        if (*p == '\n' || *p == '\r')
            *p = ' ';
    if (c->cmd)
        fprintf(stderr, "dumont %s %s: %s\n\n%s", c->set->prog, c->cmd->name, msg, c->cmd->usage);
    else
        fprintf(stderr, "dumont %s: %s\n\n%s", c->set->prog, msg, c->set->usage);
    return SUBCMD_EXIT_USAGE;
}

int subcmd_fail(const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    for (char *p = msg; *p; p++)
        if (*p == '\n' || *p == '\r')
            *p = ' ';
    fprintf(stderr, "dumont: %s\n", msg);
    return SUBCMD_EXIT_FAIL;
}

/* Checks what parse_args could not: counts, keys, flags. */
static int check_args(const subcmd_ctx *c, int parse_rc, const char *perr)
{
    char err[256];
    const subcmd *cmd = c->cmd;
    if (parse_rc)
        return subcmd_usage_error(c, "%s", perr);
    if (c->a.npos < cmd->min_pos)
        return subcmd_usage_error(c, "missing argument");
    if (c->a.npos > cmd->max_pos)
        return subcmd_usage_error(c, "unexpected argument '%s'", c->a.pos[cmd->max_pos]);
    if (kv_check_keys(&c->a.kv, cmd->keys, err, sizeof err) != 0)
        return subcmd_usage_error(c, "%s", err);
    if (c->a.wait && !(cmd->flags & SUBCMD_F_WAIT))
        return subcmd_usage_error(c, "--wait is not an option of %s", cmd->name);
    if (c->a.force && !(cmd->flags & SUBCMD_F_FORCE))
        return subcmd_usage_error(c, "--force is not an option of %s", cmd->name);
    return 0;
}

int subcmd_start(subcmd_ctx *c, const subcmd_set *set, dm_config *cfg, int argc, char **argv)
{
    char perr[256] = "";
    memset(c, 0, sizeof *c);
    c->cfg = cfg;
    c->set = set;
    int prc = parse_args(set, argc, argv, &c->a, perr, sizeof perr);
    const char *sub = c->a.sub ? c->a.sub : set->default_sub;
    if (sub && !(c->cmd = find_cmd(set, sub)))
        return subcmd_usage_error(c, "unknown subcommand '%s'", sub);
    if (c->a.help) {
        /* The default subcommand's help is the command's own. */
        fputs(c->cmd && c->a.sub ? c->cmd->usage : set->usage, stdout);
        return 0;
    }
    if (!c->cmd)
        return prc ? subcmd_usage_error(c, "%s", perr)
                   : subcmd_usage_error(c, "missing subcommand");
    int rc = check_args(c, prc, perr);
    return rc ? rc : SUBCMD_RUN;
}

void subcmd_done(subcmd_ctx *c)
{
    kv_done(&c->a.kv);
    client_free(c->cl);
    c->cl = NULL;
}

int subcmd_main(const subcmd_set *set, dm_config *cfg, int argc, char **argv)
{
    subcmd_ctx c;
    int rc = subcmd_start(&c, set, cfg, argc, argv);
    if (rc == SUBCMD_RUN) {
        rc = ((const subcmd_entry *)c.cmd)->run(&c);
        if (fflush(stdout) != 0 && rc == 0)
            rc = subcmd_fail("cannot write the output");
    }
    subcmd_done(&c);
    return rc;
}

int subcmd_check_int(const subcmd_ctx *c, const char *key, int64_t min, int64_t max)
{
    const char *v = kv_get(&c->a.kv, key);
    int64_t n;
    if (v && parse_i64(v, min, max, &n) != 0)
        return subcmd_usage_error(c, "%s must be a whole number from %lld to %lld, got '%s'", key,
                                  (long long)min, (long long)max, v);
    return 0;
}

int subcmd_build_query(const subcmd_ctx *c, const char *const *keys, char *q, size_t cap)
{
    q[0] = '\0';
    for (const char *const *k = keys; *k; k++) {
        const char *v = kv_get(&c->a.kv, *k);
        if (v && client_query_add(q, cap, *k, v) != 0)
            return subcmd_usage_error(c, "arguments too long");
    }
    return 0;
}

static int client_get(subcmd_ctx *c)
{
    char token[SECRET_TOKEN_MAX], terr[512] = "";
    if (c->cl)
        return 0;
    int have = cfg_client_token(c->cfg, token, sizeof token, terr, sizeof terr) == 0;
    int rc = client_new(c->cfg->url, have ? token : NULL, terr, &c->cl);
    explicit_bzero(token, sizeof token);
    if (rc)
        return subcmd_fail("%s", dm_strerror(rc));
    if (c->timeout_ms > 0)
        client_set_timeout(c->cl, c->timeout_ms);
    client_set_ca_file(c->cl, c->cfg->ca_file);
    return 0;
}

void subcmd_print_json(const client_resp *r)
{
    client_json_pretty(r->body, r->body_len, stdout);
}

int subcmd_call(subcmd_ctx *c, const char *method, const char *path, const json_t *body,
                client_resp *r)
{
    char err[1024];
    memset(r, 0, sizeof *r);
    if (client_get(c) != 0)
        return SUBCMD_EXIT_FAIL;
    int rc = client_call(c->cl, method, path, body, r, err, sizeof err);
    if (rc == 0)
        return 0;
    if (c->a.json && r->json)
        subcmd_print_json(r);
    subcmd_fail("%s", err);
    client_resp_done(r);
    return SUBCMD_EXIT_FAIL;
}

int subcmd_get_show(subcmd_ctx *c, const char *path, void (*show)(const json_t *, FILE *))
{
    client_resp r;
    if (subcmd_call(c, "GET", path, NULL, &r) != 0)
        return SUBCMD_EXIT_FAIL;
    if (c->a.json)
        subcmd_print_json(&r);
    else
        show(r.json, stdout);
    client_resp_done(&r);
    return 0;
}

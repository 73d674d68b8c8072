/* Environment-backed configuration (see config.h). */
#include "util/config.h"

#include "util/error.h"
#include "util/parse.h"
#include "util/secret.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *env(const char *name)
{
    const char *v = getenv(name);
    return v && *v ? v : NULL;
}

static int copy_str(char *dst, size_t cap, const char *src)
{
    size_t n = strlen(src);
    if (n >= cap)
        return DM_E_TOO_BIG;
    memcpy(dst, src, n + 1);
    return 0;
}

int cfg_set_home(dm_config *cfg, const char *home)
{
    /* Every path derived from home must fit its field: a truncated path would
     * silently name another file. Nothing changes unless all of them fit. */
    char db[sizeof cfg->database_url], store[sizeof cfg->store], tok[sizeof cfg->token_path];
    if (!home || !*home || strlen(home) >= sizeof cfg->home ||
        snprintf(db, sizeof db, "%s/dumont.db", home) >= (int)sizeof db ||
        (env("B2_BUCKET") /* the seed's B2 variables alone select Backblaze B2 */
             ? snprintf(store, sizeof store, "s3://%s/dumont", env("B2_BUCKET"))
             : snprintf(store, sizeof store, "file://%s/store", home)) >= (int)sizeof store ||
        snprintf(tok, sizeof tok, "%s/token", home) >= (int)sizeof tok)
        return DM_E_INVALID;
    memmove(cfg->home, home, strlen(home) + 1); /* home may be cfg->home itself */
    if (!env("DUMONT_DATABASE_URL"))
        memcpy(cfg->database_url, db, sizeof db);
    if (!env("DUMONT_STORE"))
        memcpy(cfg->store, store, sizeof store);
    memcpy(cfg->token_path, tok, sizeof tok);
    return 0;
}

int cfg_load(dm_config *cfg, char *err, size_t errlen)
{
    memset(cfg, 0, sizeof *cfg);
    const char *home = env("DUMONT_HOME");
    char def_home[PATH_MAX];
    if (!home) {
        const char *h = env("HOME");
        snprintf(def_home, sizeof def_home, "%s/.dumont", h ? h : ".");
        home = def_home;
    }
    struct {
        const char *var;
        char *dst;
        size_t cap;
        const char *def;
    } strs[] = {
        {"DUMONT_URL", cfg->url, sizeof cfg->url, "http://127.0.0.1:8700"},
        {"DUMONT_TOKEN", cfg->token, sizeof cfg->token, ""},
        {"DUMONT_DATABASE_URL", cfg->database_url, sizeof cfg->database_url, ""},
        {"DUMONT_STORE", cfg->store, sizeof cfg->store, ""},
        {"DUMONT_LISTEN", cfg->listen, sizeof cfg->listen, CFG_DEFAULT_LISTEN},
        {"DUMONT_LOG_LEVEL", cfg->log_level, sizeof cfg->log_level, "info"},
        {"DUMONT_CA_FILE", cfg->ca_file, sizeof cfg->ca_file, ""},
        {"DUMONT_TLS_CERT", cfg->tls_cert, sizeof cfg->tls_cert, ""},
        {"DUMONT_TLS_KEY", cfg->tls_key, sizeof cfg->tls_key, ""},
        {"DUMONT_PUBLIC_URL", cfg->public_url, sizeof cfg->public_url, ""},
    };
    for (size_t i = 0; i < sizeof strs / sizeof strs[0]; i++) {
        const char *v = env(strs[i].var);
        if (copy_str(strs[i].dst, strs[i].cap, v ? v : strs[i].def) != 0)
            return dm_fail(err, errlen, DM_E_INVALID, "%s is too long", strs[i].var);
    }
    size_t ul = strlen(cfg->url);
    while (ul > 0 && cfg->url[ul - 1] == '/')
        cfg->url[--ul] = '\0';
    cfg->sim_speed = CFG_DEFAULT_SIM_SPEED;
    const char *speed = env("DUMONT_SIM_SPEED");
    if (speed && parse_double(speed, 0.001, 1e9, &cfg->sim_speed) != 0)
        return dm_fail(err, errlen, DM_E_INVALID,
                       "DUMONT_SIM_SPEED must be a number between 0.001 and 1e9");
    cfg->alert_time_scale = 1.0;
    const char *scale = env("DUMONT_ALERT_TIME_SCALE");
    if (scale && parse_double(scale, 1.0, 1e7, &cfg->alert_time_scale) != 0)
        return dm_fail(err, errlen, DM_E_INVALID,
                       "DUMONT_ALERT_TIME_SCALE must be a number between 1 and 1e7");
    cfg->failover_time_scale = 1.0;
    const char *fscale = env("DUMONT_FAILOVER_TIME_SCALE");
    if (fscale && parse_double(fscale, 1.0, 1e7, &cfg->failover_time_scale) != 0)
        return dm_fail(err, errlen, DM_E_INVALID,
                       "DUMONT_FAILOVER_TIME_SCALE must be a number between 1 and 1e7");
    if (cfg_set_home(cfg, home) != 0)
        return dm_fail(err, errlen, DM_E_INVALID, "DUMONT_HOME is too long");
    return 0;
}

int cfg_client_token(const dm_config *cfg, char *out, size_t outlen, char *err, size_t errlen)
{
    if (cfg->token[0])
        return copy_str(out, outlen, cfg->token) == 0
                   ? 0
                   : dm_fail(err, errlen, DM_E_INVALID, "DUMONT_TOKEN is too long");
    int rc = secret_read_token(cfg->token_path, out, outlen);
    if (rc == -ENOENT)
        return dm_fail(err, errlen, DM_E_UNAUTHORIZED,
                       "no API token: set DUMONT_TOKEN or start the server once to create %s",
                       cfg->token_path);
    if (rc)
        return dm_fail(err, errlen, rc, "cannot read API token from %s: %s", cfg->token_path,
                       dm_strerror(rc));
    return 0;
}

/* Configuration: the one place the library reads the environment.
 *
 * cfg_load() fills a dm_config from the environment with the documented
 * defaults (README.md "Configuration"); programs then override fields from their flags.
 *
 *   DUMONT_HOME          state directory              ~/.dumont
 *   DUMONT_URL           where the CLI finds the API  http://127.0.0.1:8700
 *   DUMONT_TOKEN         API token for the CLI        $DUMONT_HOME/token
 *   DUMONT_DATABASE_URL  postgresql://... or a path   $DUMONT_HOME/dumont.db
 *   DUMONT_STORE         snapshot store URL           file://$DUMONT_HOME/store
 *                        (s3://$B2_BUCKET/dumont when B2_BUCKET is set)
 *   DUMONT_LISTEN        server listen address        127.0.0.1:8700
 *   DUMONT_SIM_SPEED     sim playback factor          200
 *   DUMONT_LOG_LEVEL     debug|info|warn|error        info
 *   DUMONT_CA_FILE       CA bundle that clients (CLI, agent) trust for an
 *                        https:// DUMONT_URL           the system's CAs
 *   DUMONT_TLS_CERT, DUMONT_TLS_KEY  the server's certificate chain and
 *                        private key (PEM): serve HTTPS  plain HTTP
 *   DUMONT_PUBLIC_URL    the server's address as people and agents reach it
 *                        (alert links, the bootstrap's --server: docs/deploy.md)
 *                                                       DUMONT_URL when set, else
 *                                                       the URL it listens on
 *   DUMONT_ALERT_TIME_SCALE  a test knob: alert retry waits are divided by it
 *                        (docs/alerts.md)               1
 *   DUMONT_FAILOVER_TIME_SCALE  a test knob: the failover budget's window and
 *                        backoff are divided by it (docs/failover.md)  1 */
#ifndef DUMONT_UTIL_CONFIG_H
#define DUMONT_UTIL_CONFIG_H

#include <limits.h>
#include <stddef.h>

#define CFG_URL_MAX 1024

typedef struct {
    char home[PATH_MAX];
    char url[CFG_URL_MAX]; /* API base URL, no trailing slash */
    char token[256];       /* from DUMONT_TOKEN; empty: read token_path */
    char token_path[PATH_MAX];
    char database_url[CFG_URL_MAX]; /* sqlite path or postgresql:// URL */
    char store[CFG_URL_MAX];
    char listen[256];
    double sim_speed; /* simulated seconds per wall second */
    char log_level[16];
    char ca_file[PATH_MAX];  /* "" : the system's CAs */
    char tls_cert[PATH_MAX]; /* "" : no TLS */
    char tls_key[PATH_MAX];
    char public_url[CFG_URL_MAX]; /* "" : derived from the listen address */
    double alert_time_scale;      /* >= 1; alert_retry.h AL-AR4 */
    double failover_time_scale;   /* >= 1; failover/budget.c BUD-B3 */
} dm_config;

#define CFG_DEFAULT_LISTEN    "127.0.0.1:8700"
#define CFG_DEFAULT_SIM_SPEED 200.0

/* Fills cfg from the environment. Returns 0 or DM_E_INVALID (message in err). */
int cfg_load(dm_config *cfg, char *err, size_t errlen);
/* Sets home and re-derives the paths that depend on it (token, db, store),
 * unless they were set explicitly through the environment. Returns 0, or
 * DM_E_INVALID (cfg unchanged) if home is empty or a derived path would not fit. */
int cfg_set_home(dm_config *cfg, const char *home);
/* The token for API clients: cfg->token if set, else the token file. */
int cfg_client_token(const dm_config *cfg, char *out, size_t outlen, char *err, size_t errlen);

#endif

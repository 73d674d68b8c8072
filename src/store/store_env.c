/* The store's settings, handed from one process to another (store.h
 * STORE-S5 to STORE-S7).
 *
 * A store is opened from a URL and the environment (store_s3.c reads
 * DUMONT_S3_*, AWS_* and the seed's B2_*; store.c reads DUMONT_STORE_MIRROR).
 * A process that starts another one which must open the same store (the
 * local provider starting an instance's agent) writes those settings to a
 * private file with store_env_export(); the other process reads them back
 * with store_env_import() into its own memory. The settings never travel on
 * a command line or in an environment block, where `ps` and
 * /proc/PID/environ show them to every process of the user.
 *
 * STORE-S5: STORE_ENV_NAMES is every variable a store reads; the import sets
 *      no other name, so a settings file can never change PATH,
 *      LD_PRELOAD or anything else of the importing process.
 * STORE-S6: the export holds the credentials only when the store or its
 *      mirror is s3:// (a file:// store needs none), and nothing at all when
 *      no store setting is set.
 * STORE-S7: store_env_secret() names the variables that are credentials;
 *      the agent never passes them to a workload (workload.c AG-S5). */
#include "store/store.h"

#include "util/error.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *const STORE_ENV_NAMES[] = {
    "DUMONT_STORE_MIRROR",
    "DUMONT_S3_ENDPOINT",
    "DUMONT_S3_REGION",
    "DUMONT_S3_ADDRESSING",
    "DUMONT_S3_CA_FILE",
    "DUMONT_S3_PART_SIZE",
    "DUMONT_S3_MULTIPART_THRESHOLD",
    "DUMONT_S3_CONCURRENCY",
    "DUMONT_S3_TRIES",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "B2_ENDPOINT",
    "B2_BUCKET",
    "B2_KEY_ID",
    "B2_APPLICATION_KEY",
    NULL,
};

static const char *const secret_names[] = {
    "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN",
    "B2_KEY_ID",         "B2_APPLICATION_KEY",    NULL,
};

static int name_in(const char *const *list, const char *name, size_t n)
{
    for (const char *const *a = list; *a; a++)
        if (strlen(*a) == n && memcmp(*a, name, n) == 0)
            return 1;
    return 0;
}

int store_env_secret(const char *name, size_t n)
{
    return name_in(secret_names, name, n);
}

static int is_s3(const char *url)
{
    return url && strncmp(url, "s3://", 5) == 0;
}

int store_env_export(const char *store_url, char *buf, size_t cap, size_t *ret_len, char *err,
                     size_t errlen)
{
    const char *mirror = getenv("DUMONT_STORE_MIRROR");
    int creds = is_s3(store_url) || is_s3(mirror); /* STORE-S6 */
    size_t len = 0;
    if (cap)
        buf[0] = '\0';
    for (const char *const *a = STORE_ENV_NAMES; *a; a++) {
        const char *v = getenv(*a);
        if (!v || !*v || (!creds && store_env_secret(*a, strlen(*a))))
            continue;
        if (strchr(v, '\n'))
            return dm_fail(err, errlen, DM_E_INVALID, "%s holds a line break", *a);
        int n = snprintf(buf + len, cap - len, "%s=%s\n", *a, v);
        if (n < 0 || (size_t)n >= cap - len) {
            explicit_bzero(buf, cap);
            return dm_fail(err, errlen, DM_E_TOO_BIG, "the store settings exceed %zu bytes", cap);
        }
        len += (size_t)n;
    }
    *ret_len = len;
    return 0;
}

int store_env_import(char *text, char *err, size_t errlen)
{
    /* Checked whole first: a bad line sets nothing. */
    for (int pass = 0; pass < 2; pass++) {
        for (char *line = text; line && *line;) {
            char *nl = strchr(line, '\n');
            size_t llen = nl ? (size_t)(nl - line) : strlen(line);
            char *eq = memchr(line, '=', llen);
            if (llen == 0) {
                line = nl ? nl + 1 : NULL;
                continue;
            }
            if (!eq)
                return dm_fail(err, errlen, DM_E_INVALID, "store settings: a line has no '='");
            if (!name_in(STORE_ENV_NAMES, line, (size_t)(eq - line)))
                return dm_fail(err, errlen, DM_E_INVALID,
                               "store settings: %.*s is not a store setting",
                               (int)(eq - line > 64 ? 64 : eq - line), line);
            if (pass == 1) {
                char name[64], *val = eq + 1;
                snprintf(name, sizeof name, "%.*s", (int)(eq - line), line);
                if (nl)
                    *nl = '\0';
                int rc = setenv(name, val, 1);
                if (nl)
                    *nl = '\n';
                if (rc != 0)
                    return dm_fail(err, errlen, DM_E_INTERNAL, "store settings: out of memory");
            }
            line = nl ? nl + 1 : NULL;
        }
    }
    return 0;
}

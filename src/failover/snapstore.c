/* The snapshot store as configuration (orchestrator.h ORCH-O10 to ORCH-O11;
 * docs/security.md "The store is configuration").
 *
 * The server is told its store once, before it serves (fo_orch_set_store,
 * from DUMONT_STORE). Reports from agents name a snapshot id; the store they
 * claim, if they claim one, must be that store, and the id must be a
 * snapshot whose manifest reads back from it. Restores open the configured
 * store, never a URL from a record (real_phases.c do_restore).
 *
 * ORCH-SC1: the configured URL and its display forms are written before any
 *      thread reads them (set_store before serving) and never change after;
 *      readers take no lock.
 * ORCH-SC2: a check opens its own store handle and closes it: no handle is
 *      shared between API threads and runners (a back end need not be
 *      thread-safe).
 * ORCH-SC3: nothing here ever returns or logs a secret: display forms come from
 *      store_url() (store.c STORE-S2). */
#include "failover/orch_internal.h"

#include "db/db_fleet.h"
#include "snapshot/snapshot.h"
#include "store/store.h"
#include "util/error.h"
#include "util/log.h"

#include <stdio.h>
#include <string.h>

int fo_orch_set_store(fo_orch *o, const char *url, char *err, size_t errlen)
{
    if (!o || !url || !*url)
        return dm_fail(err, errlen, DM_E_INVALID, "store: an URL is required");
    if (strlen(url) >= FLEET_TEXT_MAX) /* it is recorded whole with each snapshot */
        return dm_fail(err, errlen, DM_E_TOO_BIG, "store: the URL is longer than %d bytes",
                       FLEET_TEXT_MAX - 1);
    snprintf(o->store_url, sizeof o->store_url, "%s", url);
    snprintf(o->store_display, sizeof o->store_display, "%s", url);
    /* a store that cannot be opened now is named by its scheme */
    snprintf(o->store_name, sizeof o->store_name, "%.*s", (int)strcspn(url, ":"), url);
    dm_store *s = NULL;
    char e2[512] = "", q[600];
    if (store_open(url, &s, e2, sizeof e2) == 0) {
        snprintf(o->store_display, sizeof o->store_display, "%s", store_url(s));
        snprintf(o->store_name, sizeof o->store_name, "%s", store_storage_name(s));
    } else
        log_warn("store.unavailable", "error=%s", log_quote(q, sizeof q, e2));
    store_close(s);
    return 0;
}

const char *fo_orch_store(const fo_orch *o)
{
    return o ? o->store_url : "";
}

/* n bytes of a equal b entirely. */
static int same_prefix(const char *a, size_t n, const char *b)
{
    return strlen(b) == n && memcmp(a, b, n) == 0;
}

int fo_orch_store_is(const fo_orch *o, const char *name)
{
    if (!o || !o->store_url[0] || !name || !*name)
        return 0;
    if (strcmp(name, o->store_url) == 0 || strcmp(name, o->store_display) == 0)
        return 1;
    /* The display form without what follows the back end's own URL: an
     * agent that has no mirror configured names the primary alone, and an
     * s3:// display adds the endpoint in parentheses. */
    const char *cut = strstr(o->store_display, " (");
    if (cut && same_prefix(o->store_display, (size_t)(cut - o->store_display), name))
        return 1;
    const char *ncut = strstr(name, " (");
    return ncut && cut && (size_t)(ncut - name) == (size_t)(cut - o->store_display) &&
           memcmp(name, o->store_display, (size_t)(cut - o->store_display)) == 0;
}

int fo_orch_check_snapshot(fo_orch *o, const char *snapshot_id, snap_info *ret, char *err,
                           size_t errlen)
{
    if (!o || !o->store_url[0])
        return dm_fail(err, errlen, DM_E_UNAVAILABLE,
                       "this server has no snapshot store configured (DUMONT_STORE)");
    if (!snapshot_id || !snap_id_valid(snapshot_id))
        return dm_fail(err, errlen, DM_E_INVALID,
                       "'%.72s' is not a snapshot id (64 lowercase hex digits)",
                       snapshot_id ? snapshot_id : "");
    dm_store *s = NULL;
    snap_info si;
    char e2[512] = "";
    int rc = store_open(o->store_url, &s, e2, sizeof e2); /* ORCH-SC2 */
    if (rc) {
        store_close(s);
        return dm_fail(err, errlen, DM_E_UNAVAILABLE, "the snapshot store cannot be opened: %s",
                       e2);
    }
    rc = snap_get(s, snapshot_id, &si, e2, sizeof e2);
    store_close(s);
    if (rc == DM_E_NOT_FOUND)
        return dm_fail(err, errlen, rc, "snapshot %.64s is not in this server's store %s",
                       snapshot_id, o->store_display);
    if (rc == DM_E_PROTOCOL || rc == DM_E_INVALID || rc == DM_E_TOO_BIG)
        return dm_fail(err, errlen, DM_E_PROTOCOL,
                       "snapshot %.64s in %s has a damaged manifest: %s", snapshot_id,
                       o->store_display, e2);
    if (rc)
        return dm_fail(err, errlen, DM_E_UNAVAILABLE, "the snapshot store cannot be read: %s", e2);
    if (ret)
        *ret = si;
    return 0;
}

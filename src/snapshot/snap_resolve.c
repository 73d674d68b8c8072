/* A snapshot named by a unique prefix of its id (snapshot.h snap_resolve), as
 * restic and git take one.
 *
 * SNAP-R1: a whole id (64 hex digits) names the snapshot if the store holds
 *      it; a shorter run of lowercase hex digits names the one snapshot whose
 *      id begins with it. None: DM_E_NOT_FOUND, "no snapshot 'X'" (the
 *      wording every "no such id" error of the CLI has). More than one:
 *      DM_E_CONFLICT naming the candidates; nothing is guessed. */
#include "snapshot/snapshot.h"

#include "util/error.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CANDIDATES_SHOWN 8

int snap_resolve(dm_store *s, const char *prefix, char *ret_id, size_t idlen, char *err,
                 size_t errlen)
{
    size_t n = prefix ? strlen(prefix) : 0;
    if (n == 0 || n > 64 || strspn(prefix, "0123456789abcdef") != n)
        return dm_fail(err, errlen, DM_E_INVALID,
                       "'%.80s' is not a snapshot id (64 hex digits, or a unique prefix of them)",
                       prefix ? prefix : "");
    snap_info *v = NULL, one;
    size_t nv = 0, hits = 0, first = 0;
    int rc;
    if (n == 64) { /* SNAP-R1: whole, if it is there */
        rc = snap_get(s, prefix, &one, err, errlen);
        if (rc == DM_E_NOT_FOUND)
            return dm_fail(err, errlen, rc, "no snapshot '%s'", prefix);
        if (rc == 0)
            snprintf(ret_id, idlen, "%s", prefix);
        return rc;
    }
    if ((rc = snap_list(s, &v, &nv, err, errlen)) != 0)
        return rc;
    for (size_t i = 0; i < nv; i++)
        if (strncmp(v[i].id, prefix, n) == 0 && hits++ == 0)
            first = i;
    if (hits == 0)
        rc = dm_fail(err, errlen, DM_E_NOT_FOUND, "no snapshot '%s'", prefix);
    else if (hits == 1)
        snprintf(ret_id, idlen, "%s", v[first].id);
    else {
        char list[CANDIDATES_SHOWN * 20 + 8] = "";
        size_t shown = 0, len = 0;
        for (size_t i = 0; i < nv && shown < CANDIDATES_SHOWN; i++)
            if (strncmp(v[i].id, prefix, n) == 0) {
                int w = snprintf(list + len, sizeof list - len, "%s%.16s", shown ? ", " : "",
                                 v[i].id);
                if (w > 0 && (size_t)w < sizeof list - len)
                    len += (size_t)w;
                shown++;
            }
        rc = dm_fail(err, errlen, DM_E_CONFLICT,
                     "snapshot id prefix '%s' is ambiguous: %zu snapshots begin with it (%s%s); "
                     "give more digits",
                     prefix, hits, list, hits > shown ? ", ..." : "");
    }
    free(v);
    return rc;
}

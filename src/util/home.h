/* $DUMONT_HOME's files are private (docs/security.md "Files").
 *
 * The programs set their umask to 077 before they create anything (so every
 * new file is 0600 and every new directory 0700 whatever mode its creator
 * asked); home_secure() then repairs what an earlier run, another umask or
 * another tool left readable.
 *
 * HOME-H1: home_secure() removes the group and other permission bits of every
 *     file and directory Dumont keeps under home - the SQLite database and
 *     its -wal/-shm/-journal, the API token, the heartbeat master secret, the alerts key,
 *     market.json, the default file:// store (store/) and the local
 *     provider's instances/ (records, logs, agent homes) - walking without
 *     following a symbolic link (a link is never changed, nor what it
 *     points to).
 * HOME-H2: it changes nothing else: not home itself (a home may be a directory
 *     the user made and shares on purpose, even their own $HOME; the caller
 *     warns when it is group- or world-accessible), no file under home that
 *     Dumont does not keep, and no workspace's content
 *     (instances/<id>/workspace): a workspace's modes are the workload's
 *     data, kept as they are by snapshots (snapshot.h SNAP-SN4), and the 0700
 *     instance directory above it keeps others out. */
#ifndef DUMONT_UTIL_HOME_H
#define DUMONT_UTIL_HOME_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
    unsigned home_mode; /* home's permission bits (st_mode & 07777) */
    uint64_t fixed;     /* entries whose group/other bits were removed */
    uint64_t failed;    /* entries that could not be changed (not ours) */
} home_report;

/* HOME-H1, H2. Returns 0, or -errno when home cannot be examined (err says why). */
int home_secure(const char *home, home_report *ret, char *err, size_t errlen);

#endif

/* An exclusive lock on a file, held for a process's life, that names its
 * holder: one controller per state directory (docs/security.md "One
 * controller").
 *
 * lockfile_take() opens (creates, 0600; an existing one is made 0600) the file, takes flock(LOCK_EX
 * | LOCK_NB) on it and writes the holder's identity ("host=H pid=P since=T") into it. A second
 * process is refused with DM_E_BUSY, and err names the holder as the file says.
 *
 * LOCK-L1: the lock is the kernel's: it goes with the holder's last descriptor,
 *      so a holder killed -9 leaves no stale lock (the file stays; its text
 *      is overwritten by the next holder).
 * LOCK-L2: the descriptor is close-on-exec: programs the holder starts (agents,
 *      workloads) never inherit the lock and never keep it past the holder.
 * LOCK-L3: the file is never unlinked, not even at release: unlinking would let a
 *      third process lock a new file at the same path while a second one
 *      holds the old. lockfile_check() reports DM_E_CONFLICT when the path no
 *      longer names the locked file (someone removed or replaced it). */
#ifndef DUMONT_UTIL_LOCKFILE_H
#define DUMONT_UTIL_LOCKFILE_H

#include <stddef.h>

typedef struct lockfile lockfile;

#define LOCKFILE_ID_MAX 384

/* "host=H pid=P since=2026-12-02T03:04:05.678Z" for this process (H: the
 * host name, P: getpid()), since = the first call's time. */
void lockfile_identity(char *buf, size_t cap);

int lockfile_take(const char *path, lockfile **ret, char *err, size_t errlen);
/* 0 while the path still names the file locked (LOCK-L3). */
int lockfile_check(const lockfile *l, char *err, size_t errlen);
void lockfile_release(lockfile *l); /* accepts NULL */

#endif

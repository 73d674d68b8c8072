/* Private files under $DUMONT_HOME (see home.h HOME-H1 to HOME-H2).
 *
 * nftw() with FTW_PHYS (no symlink is followed) and FTW_ACTIONRETVAL (a
 * workspace's subtree is skipped). nftw has no context argument, so the
 * walk's counters live in thread-local variables for its duration. */
#define _GNU_SOURCE /* FTW_ACTIONRETVAL, FTW_SKIP_SUBTREE */
#include "util/home.h"

#include "util/error.h"

#include <errno.h>
#include <ftw.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

/* What Dumont keeps under home (HOME-H1). */
static const char *const kept[] = {
    "dumont.db",        "dumont.db-wal", "dumont.db-shm", "dumont.db-journal", "token",
    "heartbeat.secret", "market.json",   "store",         "instances",         "alerts.key",
};

static __thread uint64_t walk_fixed, walk_failed;

/* instances/<id>/workspace: its basename is "workspace" and its
 * grandparent's is "instances" (HOME-H2). */
static int is_workspace(const char *path, int base)
{
    if (strcmp(path + base, "workspace") != 0 || base < 2)
        return 0;
    int end = base - 1; /* the '/' before "workspace" */
    int start = end;
    while (start > 0 && path[start - 1] != '/')
        start--; /* the <id> component is path[start, end) */
    if (start < 2)
        return 0;
    int gend = start - 1, gstart = gend;
    while (gstart > 0 && path[gstart - 1] != '/')
        gstart--;
    return gend - gstart == 9 && strncmp(path + gstart, "instances", 9) == 0;
}

static int visit(const char *path, const struct stat *st, int flag, struct FTW *f)
{
    if (flag == FTW_SL || flag == FTW_SLN || flag == FTW_NS || flag == FTW_DNR)
        return FTW_CONTINUE; /* a link, or nothing we may look at */
    if (flag == FTW_D && is_workspace(path, f->base))
        return FTW_SKIP_SUBTREE; /* HOME-H2: the workload's own, modes and all */
    if ((st->st_mode & 077) && chmod(path, st->st_mode & 07700) == 0)
        walk_fixed++;
    else if (st->st_mode & 077)
        walk_failed++;
    return FTW_CONTINUE;
}

int home_secure(const char *home, home_report *ret, char *err, size_t errlen)
{
    struct stat st;
    if (!home || !ret)
        return dm_fail(err, errlen, -EINVAL, "home_secure: no home");
    if (lstat(home, &st) != 0)
        return dm_fail(err, errlen, -errno, "%s: %s", home, strerror(errno));
    if (!S_ISDIR(st.st_mode))
        return dm_fail(err, errlen, -ENOTDIR, "%s is not a directory", home);
    memset(ret, 0, sizeof *ret);
    ret->home_mode = st.st_mode & 07777;
    walk_fixed = walk_failed = 0;
    for (size_t i = 0; i < sizeof kept / sizeof kept[0]; i++) {
        char path[PATH_MAX];
        if ((size_t)snprintf(path, sizeof path, "%s/%s", home, kept[i]) >= sizeof path)
            return dm_fail(err, errlen, -ENAMETOOLONG, "%s: path too long", home);
        if (lstat(path, &st) != 0 || S_ISLNK(st.st_mode))
            continue; /* not there, or a link: left alone */
        nftw(path, visit, 16, FTW_PHYS | FTW_ACTIONRETVAL);
    }
    ret->fixed = walk_fixed;
    ret->failed = walk_failed;
    return 0;
}

/* Exclusive lock files naming their holder (see lockfile.h for LOCK-L1-LF3). */
#include "util/lockfile.h"

#include "util/clock.h"
#include "util/error.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

struct lockfile {
    int fd;
    dev_t dev;
    ino_t ino;
    char path[PATH_MAX];
};

static pthread_once_t since_once = PTHREAD_ONCE_INIT;
static int64_t since_ms;

static void since_init(void)
{
    since_ms = clock_wall_ms();
}

void lockfile_identity(char *buf, size_t cap)
{
    char host[256] = "", since[40];
    pthread_once(&since_once, since_init);
    if (gethostname(host, sizeof host - 1) != 0 || !host[0])
        snprintf(host, sizeof host, "unknown");
    clock_format_iso(since_ms, since, sizeof since);
    snprintf(buf, cap, "host=%s pid=%ld since=%s", host, (long)getpid(), since);
}

/* The holder's line as its file says, printable characters only. */
static void read_holder(int fd, char *out, size_t cap)
{
    char buf[LOCKFILE_ID_MAX];
    ssize_t n = pread(fd, buf, sizeof buf - 1, 0);
    size_t k = 0;
    for (ssize_t i = 0; i < n && buf[i] != '\n' && k + 1 < cap; i++)
        if (buf[i] >= 0x20 && buf[i] < 0x7f)
            out[k++] = buf[i];
    out[k] = '\0';
    if (!k)
        snprintf(out, cap, "(it has not written its name yet: starting)");
}

static int write_identity(int fd)
{
    char id[LOCKFILE_ID_MAX];
    lockfile_identity(id, sizeof id);
    size_t len = strlen(id);
    id[len++] = '\n';
    if (ftruncate(fd, 0) != 0 || pwrite(fd, id, len, 0) != (ssize_t)len || fsync(fd) != 0)
        return errno ? -errno : -EIO;
    return 0;
}

int lockfile_take(const char *path, lockfile **ret, char *err, size_t errlen)
{
    if (!path || strlen(path) >= PATH_MAX || !ret)
        return dm_fail(err, errlen, DM_E_INVALID, "lock file: no path or path too long");
    lockfile *l = calloc(1, sizeof *l);
    if (!l)
        return dm_fail(err, errlen, -ENOMEM, "out of memory");
    snprintf(l->path, sizeof l->path, "%s", path);
    int rc = 0;
    struct stat st;
    l->fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600); /* LOCK-L2 */
    if (l->fd < 0) {
        rc = dm_fail(err, errlen, -errno, "cannot open %s: %s", path, strerror(errno));
        goto out;
    }
    if (fchmod(l->fd, 0600) != 0) { /* private, whatever an earlier run or a tool left */
        rc = dm_fail(err, errlen, -errno, "cannot chmod %s: %s", path, strerror(errno));
        goto out;
    }
    if (flock(l->fd, LOCK_EX | LOCK_NB) != 0) {
        int e = errno;
        char holder[LOCKFILE_ID_MAX];
        if (e != EWOULDBLOCK) {
            rc = dm_fail(err, errlen, -e, "cannot lock %s: %s", path, strerror(e));
            goto out;
        }
        read_holder(l->fd, holder, sizeof holder);
        rc = dm_fail(err, errlen, DM_E_BUSY, "%s is held by %s", path, holder);
        goto out;
    }
    if (fstat(l->fd, &st) != 0 || (rc = write_identity(l->fd)) != 0) {
        rc = dm_fail(err, errlen, rc ? rc : -errno, "cannot write %s: %s", path,
                     strerror(rc ? -rc : errno));
        goto out;
    }
    l->dev = st.st_dev;
    l->ino = st.st_ino;
out:
    if (rc) {
        lockfile_release(l);
        return rc;
    }
    *ret = l;
    return 0;
}

int lockfile_check(const lockfile *l, char *err, size_t errlen)
{
    struct stat st;
    if (!l)
        return dm_fail(err, errlen, DM_E_INVALID, "no lock");
    if (stat(l->path, &st) != 0 || st.st_dev != l->dev || st.st_ino != l->ino) /* LOCK-L3 */
        return dm_fail(err, errlen, DM_E_CONFLICT,
                       "%s was removed or replaced: another process may take it", l->path);
    return 0;
}

void lockfile_release(lockfile *l)
{
    if (!l)
        return;
    if (l->fd >= 0)
        close(l->fd); /* LOCK-L1, LOCK-L3: the lock goes, the file stays */
    free(l);
}

/* File-system helpers (see fsutil.h). */
#include "util/fsutil.h"

#include "util/error.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int fs_mkdir_p(const char *path, mode_t mode)
{
    char buf[PATH_MAX];
    size_t n = strlen(path);
    if (n == 0 || n >= sizeof buf)
        return -ENAMETOOLONG;
    memcpy(buf, path, n + 1);
    for (char *p = buf + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir(buf, mode) != 0 && errno != EEXIST)
            return -errno;
        *p = '/';
    }
    if (mkdir(buf, mode) != 0 && errno != EEXIST)
        return -errno;
    return 0;
}

static int fsync_dir_of(const char *path)
{
    char dir[PATH_MAX];
    const char *slash = strrchr(path, '/');
    if (!slash)
        snprintf(dir, sizeof dir, ".");
    else if (slash == path)
        snprintf(dir, sizeof dir, "/");
    else
        snprintf(dir, sizeof dir, "%.*s", (int)(slash - path), path);
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    int rc = fsync(fd) == 0 ? 0 : -errno;
    close(fd);
    return rc;
}

int fs_write_atomic(const char *path, const void *data, size_t len, mode_t mode)
{
    char tmp[PATH_MAX];
    if (snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)getpid()) >= (int)sizeof tmp)
        return -ENAMETOOLONG;
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
    if (fd < 0)
        return -errno;
    int rc = 0;
    const char *p = data;
    size_t left = len;
    while (left > 0) {
        ssize_t w = write(fd, p, left);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            rc = -errno;
            goto out;
        }
        p += w;
        left -= (size_t)w;
    }
    if (fchmod(fd, mode) != 0 || fsync(fd) != 0) {
        rc = -errno;
        goto out;
    }
out:
    close(fd);
    if (rc == 0 && rename(tmp, path) != 0)
        rc = -errno;
    if (rc != 0) {
        unlink(tmp);
        return rc;
    }
    return fsync_dir_of(path);
}

int fs_write_new(const char *path, const void *data, size_t len, mode_t mode)
{
    static atomic_uint seq; /* unique temp names across threads of one process */
    char tmp[PATH_MAX];
    if (snprintf(tmp, sizeof tmp, "%s.new.%ld.%u", path, (long)getpid(),
                 atomic_fetch_add(&seq, 1)) >= (int)sizeof tmp)
        return -ENAMETOOLONG;
    int rc = fs_write_atomic(tmp, data, len, mode);
    if (rc)
        return rc;
    rc = link(tmp, path) == 0 ? 0 : -errno;
    if (rc == -EPERM || rc == -EOPNOTSUPP || rc == -ENOSYS) /* no hard links (vfat, some FUSE) */
        rc = access(path, F_OK) == 0 ? -EEXIST : rename(tmp, path) == 0 ? 0 : -errno;
    unlink(tmp);
    if (rc)
        return rc;
    return fsync_dir_of(path);
}

long fs_read_small(const char *path, char *buf, size_t cap)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    size_t n = 0;
    long rc;
    for (;;) {
        if (n + 1 >= cap) {
            char extra;
            rc = read(fd, &extra, 1) > 0 ? DM_E_TOO_BIG : (long)n;
            break;
        }
        ssize_t r = read(fd, buf + n, cap - 1 - n);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            rc = -errno;
            break;
        }
        if (r == 0) {
            rc = (long)n;
            break;
        }
        n += (size_t)r;
    }
    close(fd);
    if (rc >= 0)
        buf[n] = '\0';
    return rc;
}

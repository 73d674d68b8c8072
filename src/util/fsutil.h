/* File-system helpers.
 *
 * FS-I1: fs_write_atomic() never leaves a half-written file under `path`:
 *     it writes a temp file in the same directory, fsyncs it, renames it
 *     over `path` and fsyncs the directory (the Redis/restic way).
 * FS-I2: fs_write_new() is fs_write_atomic() that never replaces an existing
 *     file: the complete temp file is hard-linked into place (link() fails
 *     if `path` exists, where rename() would overwrite), so of two racing
 *     writers the first wins and the second gets -EEXIST. */
#ifndef DUMONT_UTIL_FSUTIL_H
#define DUMONT_UTIL_FSUTIL_H

#include <stddef.h>
#include <sys/types.h>

/* mkdir -p with mode for created directories. Returns 0 or -errno. */
int fs_mkdir_p(const char *path, mode_t mode);
/* Atomic, durable write (FS-I1). Returns 0 or -errno. */
int fs_write_atomic(const char *path, const void *data, size_t len, mode_t mode);
/* Atomic, durable creation of a file that must not exist yet (FS-I2).
 * Returns 0, -EEXIST if path exists, or another -errno. */
int fs_write_new(const char *path, const void *data, size_t len, mode_t mode);
/* Reads a whole small file (at most cap-1 bytes) into buf, NUL-terminated.
 * Returns the length, -errno, or DM_E_TOO_BIG. */
long fs_read_small(const char *path, char *buf, size_t cap);

#endif

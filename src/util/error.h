/* Error codes shared by every module.
 *
 * Functions return 0 on success and a negative value on failure: either
 * -errno (for system calls) or one of the DM_E_* codes below. Human detail
 * goes into an optional caller-supplied buffer (char *err, size_t errlen);
 * dm_strerror() gives the short name of a code. */
#ifndef DUMONT_UTIL_ERROR_H
#define DUMONT_UTIL_ERROR_H

#include <stddef.h>

enum {
    DM_OK = 0,
    DM_E_BASE = -10000,
    DM_E_NOT_FOUND = DM_E_BASE - 1, /* no such record */
    DM_E_CONFLICT = DM_E_BASE - 2,  /* state forbids it: duplicate, already running */
    DM_E_INVALID = DM_E_BASE - 3,   /* bad argument or input */
    DM_E_TOO_BIG = DM_E_BASE - 4,   /* input exceeds a hard cap */
    DM_E_DB = DM_E_BASE - 5,        /* database error */
    DM_E_UNAUTHORIZED = DM_E_BASE - 6,
    DM_E_UNAVAILABLE = DM_E_BASE - 7, /* peer not reachable */
    DM_E_PROTOCOL = DM_E_BASE - 8,    /* peer answered something we cannot use */
    DM_E_BUSY = DM_E_BASE - 9,        /* a capacity limit is reached; try later */
    DM_E_CANCELLED = DM_E_BASE - 10,  /* stopped on request (shutdown) */
    DM_E_INTERNAL = DM_E_BASE - 11,
};

/* Short, static description of an error code (DM_E_* or -errno). */
const char *dm_strerror(int code);

/* Formats into err (if non-NULL) and returns code, so callers can write
 * `return dm_fail(err, errlen, DM_E_INVALID, "bad port %s", s);`. */
int dm_fail(char *err, size_t errlen, int code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

#endif

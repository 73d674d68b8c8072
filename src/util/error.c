/* Error code names and the dm_fail() helper. */
#include "util/error.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

const char *dm_strerror(int code)
{
    switch (code) {
    case DM_OK:
        return "ok";
    case DM_E_NOT_FOUND:
        return "not found";
    case DM_E_CONFLICT:
        return "conflict";
    case DM_E_INVALID:
        return "invalid argument";
    case DM_E_TOO_BIG:
        return "too big";
    case DM_E_DB:
        return "database error";
    case DM_E_UNAUTHORIZED:
        return "unauthorized";
    case DM_E_UNAVAILABLE:
        return "unavailable";
    case DM_E_PROTOCOL:
        return "protocol error";
    case DM_E_BUSY:
        return "busy";
    case DM_E_CANCELLED:
        return "cancelled";
    case DM_E_INTERNAL:
        return "internal error";
    default:
        break;
    }
    if (code < 0 && code > DM_E_BASE)
        return strerror(-code);
    return "unknown error";
}

int dm_fail(char *err, size_t errlen, int code, const char *fmt, ...)
{
    if (err && errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    return code;
}

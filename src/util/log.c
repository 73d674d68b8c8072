/* Structured key=value logger (see log.h for the invariants). */
#include "util/log.h"

#include "util/clock.h"
#include "util/error.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static log_level min_level = LOG_INFO;
static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;
static const char *level_names[] = {"debug", "info", "warn", "error"};

void log_set_level(log_level min)
{
    min_level = min;
}

int log_level_parse(const char *s, log_level *ret)
{
    for (int i = 0; i < 4; i++)
        if (strcmp(s, level_names[i]) == 0) {
            *ret = (log_level)i;
            return 0;
        }
    return DM_E_INVALID;
}

void log_write(log_level level, const char *event, const char *fmt, ...)
{
    if (level < min_level)
        return;
    char ts[32], fields[2048] = "";
    clock_format_iso(clock_wall_ms(), ts, sizeof ts);
    if (fmt && *fmt) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(fields, sizeof fields, fmt, ap);
        va_end(ap);
    }
    pthread_mutex_lock(&log_lock);
    fprintf(stderr, "ts=%s level=%s event=%s%s%s\n", ts, level_names[level], event,
            fields[0] ? " " : "", fields);
    fflush(stderr);
    pthread_mutex_unlock(&log_lock);
}

const char *log_quote(char *buf, size_t len, const char *s)
{
    static const char hex[] = "0123456789abcdef";
    size_t o = 0;
    if (len < 3) {
        if (len)
            buf[0] = '\0';
        return buf;
    }
    buf[o++] = '"';
    for (const unsigned char *p = (const unsigned char *)(s ? s : ""); *p; p++) {
        char tmp[4];
        size_t n = 0;
        if (*p == '"' || *p == '\\') {
            tmp[n++] = '\\';
            tmp[n++] = (char)*p;
        } else if (*p < 0x20 || *p == 0x7f) {
            tmp[n++] = '\\';
            tmp[n++] = 'x';
            tmp[n++] = hex[*p >> 4];
            tmp[n++] = hex[*p & 15];
        } else {
            tmp[n++] = (char)*p;
        }
        if (o + n + 2 > len)
            break;
        memcpy(buf + o, tmp, n);
        o += n;
    }
    buf[o++] = '"';
    buf[o] = '\0';
    return buf;
}

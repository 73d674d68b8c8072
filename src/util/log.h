/* Structured logging: one line per event on stderr, as key=value fields.
 *
 *   ts=2026-11-28T12:00:00.123Z level=info event=server.start listen=127.0.0.1:8700
 *
 * LOG-I1: user-supplied strings are always written through log_quote(), which
 *     wraps them in double quotes and escapes control bytes, quotes and
 *     backslashes, so a value can never forge another field or line.
 * LOG-I2: secrets (tokens, keys) are never passed to the logger. */
#ifndef DUMONT_UTIL_LOG_H
#define DUMONT_UTIL_LOG_H

#include <stddef.h>

typedef enum { LOG_DEBUG = 0, LOG_INFO, LOG_WARN, LOG_ERROR } log_level;

void log_set_level(log_level min);
/* Parses "debug|info|warn|error"; returns 0 or DM_E_INVALID. */
int log_level_parse(const char *s, log_level *ret);
/* event is a dotted name (no spaces); fmt adds further key=value fields. */
void log_write(log_level level, const char *event, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Quotes and escapes s into buf (always NUL-terminated, truncated if needed). */
const char *log_quote(char *buf, size_t len, const char *s);

#define log_debug(ev, ...) log_write(LOG_DEBUG, ev, __VA_ARGS__)
#define log_info(ev, ...)  log_write(LOG_INFO, ev, __VA_ARGS__)
#define log_warn(ev, ...)  log_write(LOG_WARN, ev, __VA_ARGS__)
#define log_error(ev, ...) log_write(LOG_ERROR, ev, __VA_ARGS__)

#endif

/* Clock helpers (see clock.h). */
#define _GNU_SOURCE /* strptime, timegm */
#include "util/clock.h"

#include "util/error.h"
#include "util/parse.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

static int64_t ts_ms(clockid_t id)
{
    struct timespec ts;
    clock_gettime(id, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t clock_mono_ms(void)
{
    return ts_ms(CLOCK_MONOTONIC);
}

int64_t clock_mono_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

int64_t clock_wall_ms(void)
{
    return ts_ms(CLOCK_REALTIME);
}

void clock_format_iso(int64_t wall_ms, char *buf, size_t len)
{
    time_t secs = (time_t)(wall_ms / 1000);
    struct tm tm;
    gmtime_r(&secs, &tm);
    snprintf(buf, len, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1,
             tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (int)(wall_ms % 1000));
}

int clock_sleep_ms(int64_t ms, const atomic_bool *stop)
{
    int64_t deadline = clock_mono_ms() + ms;
    for (;;) {
        if (stop && atomic_load(stop))
            return 1;
        int64_t left = deadline - clock_mono_ms();
        if (left <= 0)
            return 0;
        if (left > 10)
            left = 10;
        struct timespec ts = {.tv_sec = 0, .tv_nsec = (long)left * 1000000L};
        nanosleep(&ts, NULL);
    }
}

static int parse_age(const char *s, int64_t now_ms, int64_t *ret)
{
    size_t n = strlen(s);
    if (n < 2 || n > 12)
        return DM_E_INVALID;
    static const char units[] = "smhd";
    static const int64_t unit_ms[] = {1000, 60000, 3600000, 86400000};
    const char *u = strchr(units, s[n - 1]);
    if (!u || !*u)
        return DM_E_INVALID;
    int64_t v = 0;
    for (size_t i = 0; i + 1 < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return DM_E_INVALID;
        v = v * 10 + (s[i] - '0');
    }
    int64_t span = v * unit_ms[u - units];
    if (span / unit_ms[u - units] != v || span > now_ms)
        return DM_E_INVALID;
    *ret = now_ms - span;
    return 0;
}

static int parse_iso(const char *s, int64_t *ret)
{
    struct tm tm;
    memset(&tm, 0, sizeof tm);
    const char *rest = strptime(s, "%Y-%m-%d", &tm);
    if (!rest)
        return DM_E_INVALID;
    if (*rest == 'T' || *rest == ' ') {
        rest = strptime(rest + 1, "%H:%M:%S", &tm);
        if (!rest)
            return DM_E_INVALID;
    }
    int64_t ms = 0;
    if (*rest == '.') {
        int digits = 0;
        for (rest++; *rest >= '0' && *rest <= '9'; rest++, digits++)
            if (digits < 3)
                ms = ms * 10 + (*rest - '0');
        if (digits == 0)
            return DM_E_INVALID;
        for (; digits < 3; digits++)
            ms *= 10;
    }
    if (*rest == 'Z')
        rest++;
    if (*rest != '\0')
        return DM_E_INVALID;
    time_t t = timegm(&tm);
    if (t == (time_t)-1)
        return DM_E_INVALID;
    *ret = (int64_t)t * 1000 + ms;
    return 0;
}

int clock_parse_time(const char *s, int64_t now_ms, int64_t *ret)
{
    if (!s || !*s)
        return DM_E_INVALID;
    int all_digits = 1;
    for (const char *p = s; *p; p++)
        if (*p < '0' || *p > '9')
            all_digits = 0;
    if (all_digits)
        return parse_i64(s, 0, INT64_MAX / 2, ret);
    if (parse_age(s, now_ms, ret) == 0)
        return 0;
    return parse_iso(s, ret);
}

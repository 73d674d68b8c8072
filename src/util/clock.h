/* Clocks. Durations and timeouts use the monotonic clock; wall-clock time
 * (milliseconds since the Unix epoch) is for records only. */
#ifndef DUMONT_UTIL_CLOCK_H
#define DUMONT_UTIL_CLOCK_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

int64_t clock_mono_ms(void);
int64_t clock_mono_us(void);
int64_t clock_wall_ms(void);
/* "2026-11-28T12:00:00.123Z" (UTC). buf should hold 32 bytes. */
void clock_format_iso(int64_t wall_ms, char *buf, size_t len);
/* Parses a point in time into wall-clock ms: epoch milliseconds ("1764331200000"),
 * ISO-8601 UTC ("2026-11-28", "2026-11-28T12:00:00", "...:00.123Z"), or an age
 * before now_ms ("90s", "15m", "24h", "7d"). Returns 0 or DM_E_INVALID. */
int clock_parse_time(const char *s, int64_t now_ms, int64_t *ret);
/* Sleeps up to ms milliseconds; returns early if *stop becomes true
 * (checked every 10 ms). stop may be NULL. Returns 1 if stopped. Stop flags
 * are atomics: the thread that raises one is never the one that sleeps. */
int clock_sleep_ms(int64_t ms, const atomic_bool *stop);

#endif

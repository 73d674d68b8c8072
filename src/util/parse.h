/* Checked parsers for numbers and `key=value` arguments.
 * Nothing here accepts trailing garbage, empty strings or out-of-range values. */
#ifndef DUMONT_UTIL_PARSE_H
#define DUMONT_UTIL_PARSE_H

#include <stddef.h>
#include <stdint.h>

/* Decimal integer in [min, max]. Returns 0 or DM_E_INVALID. */
int parse_i64(const char *s, int64_t min, int64_t max, int64_t *ret);
/* Finite decimal number in [min, max]. Returns 0 or DM_E_INVALID. */
int parse_double(const char *s, double min, double max, double *ret);
/* A duration "500ms", "30s", "2m", "1h", "7d" (a whole number and a unit; "0"
 * alone is zero) in milliseconds, in [min, max]. Returns 0 or DM_E_INVALID. */
int parse_duration_ms(const char *s, int64_t min, int64_t max, int64_t *ret);
/* "true|false|yes|no|1|0|on|off". Returns 0 or DM_E_INVALID. */
int parse_bool(const char *s, int *ret);
/* The index of s in names[0..n-1] (an enum's names, in its order; exact
 * match). Returns 0 or DM_E_INVALID (s NULL or not a name; *ret untouched). */
int parse_name(const char *s, const char *const *names, int n, int *ret);
/* names[i], or "?" when i is not in [0, n). */
const char *name_of(const char *const *names, int n, int i);
/* "HOST:PORT" (HOST may be [v6]); host copied into host (hostlen bytes). */
int parse_host_port(const char *s, char *host, size_t hostlen, int *ret_port);

/* 1 when name is 1 to cap-1 characters of A-Z a-z 0-9 . _ - (names of
 * tokens and alert destinations: safe in a path segment, a log, a table). */
int parse_name_ok(const char *name, size_t cap);

/* Replaces every byte that is not part of a well-formed UTF-8 sequence with
 * '?', in place, so that the text can go into JSON (which must be UTF-8). */
void utf8_scrub(char *s);

/* A `key=value` argument list, as the CLI takes them (`gpu_instance_id=12345`). */
#define KV_MAX 32
typedef struct {
    int n;
    const char *key[KV_MAX]; /* point into storage owned by the kv_list */
    const char *value[KV_MAX];
    char *storage[KV_MAX];
} kv_list;

/* Parses argv entries of the form key=value (key: [a-z0-9_]+, unique).
 * Returns 0, or DM_E_INVALID with a message in err. kv_done() frees. */
int kv_parse(kv_list *kv, int argc, char *const *argv, char *err, size_t errlen);
void kv_done(kv_list *kv);
/* Returns the value for key or NULL. */
const char *kv_get(const kv_list *kv, const char *key);
/* Fails with a message naming the first key not in allowed (NULL-terminated). */
int kv_check_keys(const kv_list *kv, const char *const *allowed, char *err, size_t errlen);

#endif

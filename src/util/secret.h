/* Secrets: random tokens, constant-time comparison, the API token file.
 *
 * SEC-I1: tokens are compared in constant time (secret_equal), so response
 *     timing does not reveal how much of a guess was right.
 * SEC-I2: the token file is created mode 0600, atomically; an existing token is
 *     never overwritten. */
#ifndef DUMONT_UTIL_SECRET_H
#define DUMONT_UTIL_SECRET_H

#include <stddef.h>

#define SECRET_TOKEN_BYTES 32  /* 256 bits -> 64 hex chars */
#define SECRET_TOKEN_MAX   256 /* longest token accepted from a file or header */

/* Fills out with 2*nbytes lowercase hex chars from the kernel CSPRNG, NUL-terminated.
 * outlen must be at least 2*nbytes+1. Returns 0 or -errno. */
int secret_random_hex(char *out, size_t outlen, size_t nbytes);
/* 1 if a and b are equal strings; time depends only on the lengths. */
int secret_equal(const char *a, const char *b);
/* Reads the token at path (trailing whitespace stripped). Returns 0,
 * -ENOENT, DM_E_INVALID (empty/unprintable) or DM_E_TOO_BIG. */
int secret_read_token(const char *path, char *out, size_t outlen);
/* Reads the token at path, creating a new random one (SEC-I2) if missing.
 * *ret_created is set to 1 when a new token was written. */
int secret_load_or_create(const char *path, char *out, size_t outlen, int *ret_created);

/* The SHA-256 of string s in lowercase hex (64 chars + NUL): what is stored
 * of an API token (db_token.h DB-T1). */
void secret_sha256_hex(const char *s, char out[65]);

#endif

/* Hexadecimal encoding of byte strings (keys, hashes, ids).
 * Encoding is lowercase; decoding accepts either case. */
#ifndef DUMONT_UTIL_HEX_H
#define DUMONT_UTIL_HEX_H

#include <stddef.h>
#include <stdint.h>

/* Writes 2*n lowercase hex chars and a NUL to out (2*n+1 bytes). */
void hex_encode(const void *in, size_t n, char *out);
/* Value of one hex digit, or -1. */
int hex_digit(char c);
/* Decodes exactly 2*n hex chars of hex into out (n bytes). Returns 0, or
 * DM_E_INVALID on a non-hex char (out may then be partly written). */
int hex_decode(const char *hex, size_t n, uint8_t *out);

#endif

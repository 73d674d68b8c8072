/* Tokens and constant-time comparison (see secret.h). */
#include "util/secret.h"

#include "util/error.h"
#include "util/fsutil.h"
#include "util/hex.h"

#include <errno.h>
#include <openssl/sha.h>
#include <fcntl.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

int secret_random_hex(char *out, size_t outlen, size_t nbytes)
{
    unsigned char raw[128];
    if (nbytes > sizeof raw || outlen < 2 * nbytes + 1)
        return DM_E_INVALID;
    size_t got = 0;
    while (got < nbytes) {
        ssize_t r = getrandom(raw + got, nbytes - got, 0);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        got += (size_t)r;
    }
    hex_encode(raw, nbytes, out);
    explicit_bzero(raw, sizeof raw);
    return 0;
}

int secret_equal(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    volatile unsigned char diff = (unsigned char)(la != lb);
    /* Compare over the longer length; out-of-range bytes read as 0. */
    size_t n = la > lb ? la : lb;
    for (size_t i = 0; i < n; i++) {
        unsigned char ca = i < la ? (unsigned char)a[i] : 0;
        unsigned char cb = i < lb ? (unsigned char)b[i] : 0;
        diff |= ca ^ cb;
    }
    return diff == 0;
}

int secret_read_token(const char *path, char *out, size_t outlen)
{
    char buf[SECRET_TOKEN_MAX + 2];
    long n = fs_read_small(path, buf, sizeof buf);
    if (n < 0)
        return (int)n;
    while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r' || buf[n - 1] == ' '))
        buf[--n] = '\0';
    if (n == 0)
        return DM_E_INVALID;
    for (long i = 0; i < n; i++)
        if (buf[i] < 0x21 || buf[i] > 0x7e)
            return DM_E_INVALID;
    if ((size_t)n >= outlen)
        return DM_E_TOO_BIG;
    memcpy(out, buf, (size_t)n + 1);
    return 0;
}

int secret_load_or_create(const char *path, char *out, size_t outlen, int *ret_created)
{
    *ret_created = 0;
    int rc = secret_read_token(path, out, outlen);
    if (rc != -ENOENT)
        return rc;
    char tok[2 * SECRET_TOKEN_BYTES + 2];
    rc = secret_random_hex(tok, sizeof tok, SECRET_TOKEN_BYTES);
    if (rc)
        return rc;
    if (strlen(tok) >= outlen)
        return DM_E_TOO_BIG;
    size_t n = strlen(tok);
    tok[n] = '\n';
    /* SEC-I2: never rename() over a token another process created meanwhile;
     * whoever links first wins and the others read that token. */
    rc = fs_write_new(path, tok, n + 1, 0600);
    tok[n] = '\0';
    if (rc == -EEXIST)
        return secret_read_token(path, out, outlen);
    if (rc)
        return rc;
    memcpy(out, tok, n + 1);
    *ret_created = 1;
    return 0;
}

void secret_sha256_hex(const char *s, char out[65])
{
    unsigned char md[SHA256_DIGEST_LENGTH];
    SHA256((const unsigned char *)s, strlen(s), md);
    hex_encode(md, sizeof md, out);
    explicit_bzero(md, sizeof md);
}

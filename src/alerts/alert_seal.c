/* AES-256-GCM sealing of alert secrets (see alert_seal.h for AL-SE1 to AL-SE2). */
#include "alerts/alert_seal.h"

#include "util/error.h"
#include "util/hex.h"
#include "util/secret.h"

#include <errno.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/sha.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NONCE_LEN 12
#define TAG_LEN   16
#define SEAL_MAX  8192 /* plain texts: URLs and secrets */

struct al_sealer {
    unsigned char key[32];
};

int al_sealer_from_key(const char *key_text, al_sealer **ret)
{
    if (!key_text || strlen(key_text) < 32)
        return DM_E_INVALID;
    al_sealer *s = calloc(1, sizeof *s);
    if (!s)
        return -ENOMEM;
    static const char label[] = "dumont alerts v1\n";
    EVP_MD_CTX *c = EVP_MD_CTX_new();
    unsigned len = 0;
    int ok = c && EVP_DigestInit_ex(c, EVP_sha256(), NULL) == 1 &&
             EVP_DigestUpdate(c, label, sizeof label - 1) == 1 &&
             EVP_DigestUpdate(c, key_text, strlen(key_text)) == 1 &&
             EVP_DigestFinal_ex(c, s->key, &len) == 1 && len == 32;
    EVP_MD_CTX_free(c);
    if (!ok) {
        al_sealer_free(s);
        return DM_E_INTERNAL;
    }
    *ret = s;
    return 0;
}

int al_sealer_open(const char *path, al_sealer **ret, char *err, size_t errlen)
{
    char key[SECRET_TOKEN_MAX];
    int created = 0;
    int rc = secret_load_or_create(path, key, sizeof key, &created);
    if (rc == 0)
        rc = al_sealer_from_key(key, ret);
    explicit_bzero(key, sizeof key);
    if (rc)
        return dm_fail(err, errlen, rc, "cannot read or create the alerts key %.300s: %s", path,
                       dm_strerror(rc));
    return 0;
}

void al_sealer_free(al_sealer *s)
{
    if (!s)
        return;
    explicit_bzero(s->key, sizeof s->key); /* AL-SE2 */
    free(s);
}

/* One GCM pass: enc 1 seals in -> out (+tag), enc 0 opens (tag checked). */
static int gcm(const al_sealer *s, int enc, const unsigned char *nonce, const char *aad,
               const unsigned char *in, int n, unsigned char *out, unsigned char *tag)
{
    EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
    int len = 0, fin = 0;
    int ok = c && EVP_CipherInit_ex(c, EVP_aes_256_gcm(), NULL, NULL, NULL, enc) == 1 &&
             EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_SET_IVLEN, NONCE_LEN, NULL) == 1 &&
             EVP_CipherInit_ex(c, NULL, NULL, s->key, nonce, enc) == 1 &&
             EVP_CipherUpdate(c, NULL, &len, (const unsigned char *)aad, (int)strlen(aad)) == 1 &&
             EVP_CipherUpdate(c, out, &len, in, n) == 1;
    if (ok && !enc)
        ok = EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_SET_TAG, TAG_LEN, tag) == 1;
    if (ok)
        ok = EVP_CipherFinal_ex(c, out + len, &fin) == 1;
    if (ok && enc)
        ok = EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_GET_TAG, TAG_LEN, tag) == 1;
    EVP_CIPHER_CTX_free(c);
    return ok ? 0 : DM_E_INVALID;
}

int al_seal(const al_sealer *s, const char *name, const char *plain, char **ret)
{
    size_t n = strlen(plain);
    if (!s || n > SEAL_MAX)
        return DM_E_INVALID;
    size_t raw_len = NONCE_LEN + n + TAG_LEN;
    unsigned char *raw = malloc(raw_len);
    char *hex = malloc(3 + 2 * raw_len + 1);
    int rc = raw && hex ? 0 : -ENOMEM;
    if (rc == 0 && RAND_bytes(raw, NONCE_LEN) != 1)
        rc = DM_E_INTERNAL;
    if (rc == 0)
        rc = gcm(s, 1, raw, name, (const unsigned char *)plain, (int)n, raw + NONCE_LEN,
                 raw + NONCE_LEN + n);
    if (rc == 0) {
        memcpy(hex, "v1:", 3);
        hex_encode(raw, raw_len, hex + 3);
        *ret = hex;
        hex = NULL;
    }
    free(raw);
    free(hex);
    return rc;
}

int al_open(const al_sealer *s, const char *name, const char *sealed, char **ret)
{
    size_t hl = sealed ? strlen(sealed) : 0;
    if (!s || hl < 3 || strncmp(sealed, "v1:", 3) != 0 || (hl - 3) % 2 ||
        (hl - 3) / 2 < NONCE_LEN + TAG_LEN || (hl - 3) / 2 > SEAL_MAX + NONCE_LEN + TAG_LEN)
        return DM_E_INVALID;
    size_t raw_len = (hl - 3) / 2, n = raw_len - NONCE_LEN - TAG_LEN;
    unsigned char *raw = malloc(raw_len);
    char *plain = malloc(n + 1);
    int rc = raw && plain ? 0 : -ENOMEM;
    if (rc == 0 && hex_decode(sealed + 3, raw_len, raw) != 0)
        rc = DM_E_INVALID;
    if (rc == 0)
        rc = gcm(s, 0, raw, name, raw + NONCE_LEN, (int)n, (unsigned char *)plain,
                 raw + NONCE_LEN + n);
    if (rc == 0 && memchr(plain, '\0', n))
        rc = DM_E_INVALID;
    if (rc == 0) {
        plain[n] = '\0';
        *ret = plain;
        plain = NULL;
    }
    if (plain)
        explicit_bzero(plain, n + 1);
    free(plain);
    free(raw);
    return rc;
}

/* Alert destinations' secrets at rest (docs/alerts.md "Secrets").
 *
 * A Slack or Discord webhook URL is itself a credential (whoever has it can
 * post), and a webhook's signing secret must be read back to sign. Neither
 * is stored in clear: each is sealed with AES-256-GCM under a key kept in
 * $DUMONT_HOME/alerts.key (0600, made at first start), bound to the alert's
 * name (additional data), so a stolen database, or a value copied from one
 * row to another, opens nothing.
 *
 * AL-SE1: al_seal() writes "v1:" + hex(nonce 12 | ciphertext | tag 16) with a
 *      fresh random nonce; al_open() refuses (DM_E_INVALID) anything that
 *      does not authenticate under this key and name: never a wrong value.
 * AL-SE2: the key is wiped when the sealer is freed. */
#ifndef DUMONT_ALERTS_ALERT_SEAL_H
#define DUMONT_ALERTS_ALERT_SEAL_H

#include <stddef.h>

typedef struct al_sealer al_sealer;

/* Reads the key file at path, creating it (0600) when missing. */
int al_sealer_open(const char *path, al_sealer **ret, char *err, size_t errlen);
/* A sealer over a given key text (tests). */
int al_sealer_from_key(const char *key_text, al_sealer **ret);
void al_sealer_free(al_sealer *s);

/* *ret malloc'd. */
int al_seal(const al_sealer *s, const char *name, const char *plain, char **ret);
/* AL-SE1. *ret malloc'd; wipe it (explicit_bzero) before free. */
int al_open(const al_sealer *s, const char *name, const char *sealed, char **ret);

#endif

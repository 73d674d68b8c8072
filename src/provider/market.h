/* The local provider's GPU market: a JSON file of offers, and the pure search
 * over it (provider.h PROV-PV1).
 *
 * File shape ($DUMONT_HOME/market.json unless prov_config.market_path):
 *   {"offers": [{"id": "a-4090-1", "host": "local-a", "gpu_name": "RTX 4090",
 *                "vram_gb": 24, "cuda": 12.4, "price_per_h": 0.35,
 *                "region": "local-eu", "reliability": 0.98}, ...]}
 *
 * PROV-MK1: a market that does not parse, lacks a field, has a value out of range
 *      (vram_gb 1..4096, cuda 0..100, price_per_h 0..10000, reliability 0..1,
 *      strings non-empty and shorter than their field), a duplicate id or
 *      more than PROV_OFFERS_MAX offers is refused whole, with an error naming
 *      the file, the offer index and the field; it is never half-used.
 * PROV-MK2: the file is read with a hard cap (MARKET_FILE_MAX).
 * PROV-MK3: market_search() is pure and deterministic: same offers and query, same
 *      answer (ties on price broken by reliability, then id).
 * PROV-MK4: an offer may carry "provision_error": "text" — the local stand-in for a
 *      cloud that lists an offer and then refuses to create it (taken by
 *      another user, out of capacity): provisioning it fails with that text,
 *      so the failover's retry on the next offer (orchestrator.h ORCH-O8) can be
 *      exercised for real. Search still lists it, as a cloud would. */
#ifndef DUMONT_PROVIDER_MARKET_H
#define DUMONT_PROVIDER_MARKET_H

#include "provider/provider.h"

#include <stddef.h>

#define MARKET_FILE_MAX (1u << 20)

/* The built-in default market (8 offers on 5 hosts) as JSON text. */
const char *market_default_json(void);
/* Parses JSON text (PROV-MK1). name is used in messages. *ret malloc'd. */
int market_parse(const char *text, size_t len, const char *name, prov_offer **ret, size_t *ret_n,
                 char *err, size_t errlen);
/* Reads path (PROV-MK2); when missing and create is set, first writes the default
 * market there (atomically, never over a file that appeared meanwhile). */
int market_load(const char *path, int create, prov_offer **ret, size_t *ret_n, char *err,
                size_t errlen);
/* PROV-MK4: 1 and the text in out when offer_id carries a provision_error in the
 * market at path; 0 otherwise (also when the file cannot be read: provisioning
 * then goes on and the search has already reported a broken market). */
int market_provision_error(const char *path, const char *offer_id, char *out, size_t outlen);
/* PROV-PV1 over offers[0..n): the compatible ones, ordered, at most max. */
void market_search(const prov_offer *offers, size_t n, const prov_query *q, prov_offer *ret,
                   size_t max, size_t *ret_n);

#endif

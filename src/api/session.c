/* Dashboard session store (see session.h for API-SE1 to API-SE4).
 *
 * A fixed array of slots; a slot is free when its id is empty. Lookups scan
 * every slot (the cap is small) so the work done does not depend on where,
 * or whether, the candidate matches. */
#include "api/session.h"

#include "util/error.h"
#include "util/secret.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    char id[SESSION_ID_LEN + 1]; /* "" when free */
    int64_t expires_ms;
    api_cred cred; /* API-SE5 */
} session_slot;

struct session_store {
    pthread_mutex_t lock;
    int64_t ttl_ms;
    size_t cap;
    session_slot slots[];
};

int session_store_new(size_t cap, int64_t ttl_ms, session_store **ret)
{
    if (cap == 0 || cap > 65536 || ttl_ms <= 0)
        return DM_E_INVALID;
    session_store *s = calloc(1, sizeof *s + cap * sizeof s->slots[0]);
    if (!s)
        return -ENOMEM;
    pthread_mutex_init(&s->lock, NULL);
    s->cap = cap;
    s->ttl_ms = ttl_ms;
    *ret = s;
    return 0;
}

void session_store_free(session_store *s)
{
    if (!s)
        return;
    pthread_mutex_destroy(&s->lock);
    explicit_bzero(s->slots, s->cap * sizeof s->slots[0]);
    free(s);
}

/* The slot a new session goes to: a free or expired one, else the one that
 * expires first (API-SE2). Called with the lock held. */
static session_slot *pick_slot(session_store *s, int64_t now_ms)
{
    session_slot *victim = &s->slots[0];
    for (size_t i = 0; i < s->cap; i++) {
        session_slot *x = &s->slots[i];
        if (!x->id[0] || x->expires_ms <= now_ms)
            return x;
        if (x->expires_ms < victim->expires_ms)
            victim = x;
    }
    return victim;
}

int session_create(session_store *s, int64_t now_ms, char *ret_id, size_t idlen)
{
    return session_create_cred(s, now_ms, NULL, ret_id, idlen);
}

int session_create_cred(session_store *s, int64_t now_ms, const api_cred *cred, char *ret_id,
                        size_t idlen)
{
    char id[SESSION_ID_LEN + 1];
    if (idlen < sizeof id)
        return DM_E_TOO_BIG;
    int rc = secret_random_hex(id, sizeof id, SESSION_ID_LEN / 2); /* API-SE1 */
    if (rc)
        return rc;
    pthread_mutex_lock(&s->lock);
    session_slot *slot = pick_slot(s, now_ms);
    memcpy(slot->id, id, sizeof id);
    slot->expires_ms = now_ms + s->ttl_ms;
    memset(&slot->cred, 0, sizeof slot->cred);
    if (cred)
        slot->cred = *cred;
    pthread_mutex_unlock(&s->lock);
    memcpy(ret_id, id, sizeof id);
    explicit_bzero(id, sizeof id);
    return 0;
}

/* Only well-formed ids reach the comparison; the length is not a secret. */
static int well_formed(const char *id)
{
    if (!id || strlen(id) != SESSION_ID_LEN)
        return 0;
    for (const char *p = id; *p; p++)
        if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f')))
            return 0;
    return 1;
}

int session_check(session_store *s, const char *id, int64_t now_ms)
{
    return session_cred(s, id, now_ms, NULL);
}

int session_cred(session_store *s, const char *id, int64_t now_ms, api_cred *ret)
{
    if (!well_formed(id))
        return 0;
    int found = 0;
    api_cred c = {0};
    pthread_mutex_lock(&s->lock);
    for (size_t i = 0; i < s->cap; i++) { /* API-SE3: no early exit */
        const session_slot *x = &s->slots[i];
        int live = x->id[0] != '\0' && x->expires_ms > now_ms;
        int hit = live & secret_equal(id, x->id[0] ? x->id : "");
        if (hit)
            c = x->cred;
        found |= hit;
    }
    pthread_mutex_unlock(&s->lock);
    if (found && ret)
        *ret = c;
    explicit_bzero(&c, sizeof c);
    return found;
}

int session_remove(session_store *s, const char *id)
{
    if (!well_formed(id))
        return 0;
    int removed = 0;
    pthread_mutex_lock(&s->lock);
    for (size_t i = 0; i < s->cap; i++) {
        session_slot *x = &s->slots[i];
        if (x->id[0] && secret_equal(id, x->id)) {
            explicit_bzero(x, sizeof *x);
            removed = 1;
        }
    }
    pthread_mutex_unlock(&s->lock);
    return removed;
}

size_t session_count(session_store *s, int64_t now_ms)
{
    size_t n = 0;
    pthread_mutex_lock(&s->lock);
    for (size_t i = 0; i < s->cap; i++)
        n += s->slots[i].id[0] && s->slots[i].expires_ms > now_ms;
    pthread_mutex_unlock(&s->lock);
    return n;
}

int session_cookie(const char *id, int64_t max_age_s, char *buf, size_t len)
{
    int n = id ? snprintf(buf, len, "%s=%s; Path=/; Max-Age=%lld; HttpOnly; SameSite=Strict",
                          SESSION_COOKIE, id, (long long)max_age_s)
               : snprintf(buf, len, "%s=; Path=/; Max-Age=0; HttpOnly; SameSite=Strict",
                          SESSION_COOKIE);
    return n < 0 || (size_t)n >= len ? DM_E_TOO_BIG : 0;
}

/* Dashboard sessions: the API token traded for a cookie (docs/dashboard.md).
 *
 * A browser signs in once with the API token (POST /api/session) and then
 * carries an opaque session id in an HttpOnly, SameSite=Strict cookie, so the
 * token itself never sits in a URL, in page storage or in script reach.
 *
 * API-SE1: a session id is 256 bits from the kernel CSPRNG (64 hex chars).
 * API-SE2: the store keeps at most `cap` sessions; creating one more evicts the
 *      one that expires first. Expired sessions are never accepted.
 * API-SE3: session_check() compares the candidate against every slot in constant
 *      time per slot and never stops early, so timing tells nothing about
 *      which or how many sessions exist.
 * API-SE4: the store is safe to use from several threads (one mutex).
 * API-SE5: a session carries the credential (role, name) of the token it was
 *      signed in with; a viewer's session is a viewer (gate.h GATE-G4).
 * Times are monotonic milliseconds supplied by the caller (tests drive them). */
#ifndef DUMONT_API_SESSION_H
#define DUMONT_API_SESSION_H

#include "api/http.h"

#include <stddef.h>
#include <stdint.h>

#define SESSION_COOKIE     "dumont_session"
#define SESSION_ID_LEN     64 /* hex chars (API-SE1) */
#define SESSION_TTL_MS     (12LL * 3600 * 1000)
#define SESSION_CAP        256
#define SESSION_HEADER_MAX 192 /* room for a Set-Cookie value */

typedef struct session_store session_store;

int session_store_new(size_t cap, int64_t ttl_ms, session_store **ret);
void session_store_free(session_store *s); /* NULL is fine */

/* Creates a session valid until now_ms + ttl; writes its id (SESSION_ID_LEN
 * chars + NUL) to ret_id, which must hold SESSION_ID_LEN + 1 bytes. */
int session_create(session_store *s, int64_t now_ms, char *ret_id, size_t idlen);
/* The same, for credential cred (API-SE5; NULL: no role). */
int session_create_cred(session_store *s, int64_t now_ms, const api_cred *cred, char *ret_id,
                        size_t idlen);
/* 1 if id names a live session at now_ms, else 0 (API-SE3). id may be NULL. */
int session_check(session_store *s, const char *id, int64_t now_ms);
/* session_check that also copies the session's credential to ret (API-SE5). */
int session_cred(session_store *s, const char *id, int64_t now_ms, api_cred *ret);
/* Ends the session id names, if any. Returns 1 if one was ended. */
int session_remove(session_store *s, const char *id);
/* Live sessions at now_ms. */
size_t session_count(session_store *s, int64_t now_ms);

/* The Set-Cookie value that installs id (max_age_s > 0) or clears the
 * cookie (id NULL). Returns 0, or DM_E_TOO_BIG if buf is too small. */
int session_cookie(const char *id, int64_t max_age_s, char *buf, size_t len);

#endif

/* The dashboard's files, embedded in the program (web/ -> cmake/embed.cmake).
 *
 * API-ST1: only files in the generated table are served, looked up by exact
 *      path: no file system access, so no path traversal is possible.
 * API-ST2: every answer carries Content-Security-Policy (default-src 'self', no
 *      inline script or style, no framing) and X-Content-Type-Options:
 *      nosniff, with the Content-Type of the file's extension.
 * API-ST3: static files need no authentication; they hold no data. */
#ifndef DUMONT_API_STATIC_H
#define DUMONT_API_STATIC_H

#include <stddef.h>

typedef struct {
    const char *path;         /* "/" or "/assets/NAME" */
    const char *content_type; /* from the extension */
    const unsigned char *data;
    size_t len;
} api_asset;

/* Defined in the generated build/generated/web_assets.c. */
extern const api_asset api_assets[];
extern const size_t api_assets_count;

#define STATIC_CSP                                                                                 \
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; "                    \
    "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; "                 \
    "frame-ancestors 'none'"

/* The asset at path (API-ST1), or NULL. A query string is not part of path. */
const api_asset *static_find(const char *path);

struct MHD_Connection;
/* Answers GET/HEAD of an embedded file. Returns 1 when url names one (the
 * answer, 405 for another method, is queued and *ret is MHD's result), 0
 * when url is not an asset and the caller goes on routing. */
int static_serve(struct MHD_Connection *conn, const char *url, const char *method, int *ret);

#endif

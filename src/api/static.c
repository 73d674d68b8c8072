/* Serves the embedded dashboard (see static.h for API-ST1 to API-ST3).
 *
 * The bytes live in read-only memory for the life of the program, so each
 * response points at them (MHD_RESPMEM_PERSISTENT) instead of copying. */
#include "api/static.h"

#include <microhttpd.h>
#include <string.h>

const api_asset *static_find(const char *path)
{
    for (size_t i = 0; i < api_assets_count; i++)
        if (api_assets[i].path && strcmp(api_assets[i].path, path) == 0)
            return &api_assets[i];
    return NULL;
}

static void security_headers(struct MHD_Response *r)
{
    MHD_add_response_header(r, "Content-Security-Policy", STATIC_CSP); /* API-ST2 */
    MHD_add_response_header(r, "X-Content-Type-Options", "nosniff");
    MHD_add_response_header(r, "X-Frame-Options", "DENY");
    MHD_add_response_header(r, "Referrer-Policy", "no-referrer");
    /* Revalidate every time: a new program version ships new files. */
    MHD_add_response_header(r, "Cache-Control", "no-cache");
}

int static_serve(struct MHD_Connection *conn, const char *url, const char *method, int *ret)
{
    const api_asset *a = static_find(url);
    if (!a)
        return 0;
    int get = strcmp(method, "GET") == 0 || strcmp(method, "HEAD") == 0;
    static const char not_allowed[] =
        "{\"error\":\"method_not_allowed\",\"detail\":\"static files answer GET and HEAD only\"}";
    struct MHD_Response *r =
        get ? MHD_create_response_from_buffer(a->len, (void *)a->data, MHD_RESPMEM_PERSISTENT)
            : MHD_create_response_from_buffer(sizeof not_allowed - 1, (void *)not_allowed,
                                              MHD_RESPMEM_PERSISTENT);
    if (!r) {
        *ret = MHD_NO;
        return 1;
    }
    MHD_add_response_header(r, "Content-Type", get ? a->content_type : "application/json");
    if (!get)
        MHD_add_response_header(r, "Allow", "GET, HEAD");
    security_headers(r);
    *ret = MHD_queue_response(conn, get ? MHD_HTTP_OK : MHD_HTTP_METHOD_NOT_ALLOWED, r);
    MHD_destroy_response(r);
    return 1;
}

/* libFuzzer target: manifest_decode() (src/snapshot/manifest.h, MANIF-MF1 to MANIF-MF4).
 *
 * Checked: no crash or sanitizer report on any input; whatever decodes
 * satisfies MANIF-MF2/MF3 and survives encode -> decode with the same entries. */
#include "snapshot/manifest.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static void check_invariants(const manifest *m)
{
    if (m->n == 0 || m->e[0].path_len != 0 || m->e[0].type != MF_DIR)
        abort();
    for (size_t i = 1; i < m->n; i++) {
        const mf_entry *e = &m->e[i];
        if (mf_path_cmp(m->e[i - 1].path, m->e[i - 1].path_len, e->path, e->path_len) >= 0)
            abort();
        if (e->path[0] == '/' || memchr(e->path, 0, e->path_len))
            abort();
        if (e->type == MF_HARDLINK && (e->link_to >= i || m->e[e->link_to].type != MF_FILE))
            abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    manifest *m = NULL, *again = NULL;
    void *buf = NULL;
    size_t len = 0;
    char err[256];
    if (manifest_decode(data, size, &m, err, sizeof err) != 0)
        return 0;
    check_invariants(m);
    if (manifest_encode(m, &buf, &len, err, sizeof err) != 0 ||
        manifest_decode(buf, len, &again, err, sizeof err) != 0 || again->n != m->n)
        abort();
    free(buf);
    manifest_free(again);
    manifest_free(m);
    return 0;
}

/* Manifest encoding and decoding (format and MANIF-MF1 to MANIF-MF4 in manifest.h).
 *
 * Encoding builds the body in a capped growable buffer, compresses it into
 * one LZ4 frame and prefixes the plain header. Decoding walks a cursor that
 * turns every overrun into a sticky failure, so the field readers need no
 * checks of their own; semantic checks (MANIF-MF2, MANIF-MF3) follow each entry.
 *
 * MANIF-I1: the declared plain body length may not exceed 256x the compressed
 *     length (LZ4's best ratio is ~255), so a 100-byte object cannot make
 *     decode allocate 512 MiB.
 * MANIF-I2: a failed decode frees everything it allocated and leaves *ret alone. */
#define _GNU_SOURCE /* memrchr */
#include "snapshot/manifest.h"

#include "util/error.h"

#include <errno.h>
#include <lz4frame.h>
#include <stdlib.h>
#include <string.h>

#define MF_MAGIC     "DMSNAPv1"
#define MF_MAGIC_LEN 8
#define MF_ENTRY_MIN 49 /* fixed part of an entry on the wire */

/* ---- growable output buffer with a hard cap ---- */

typedef struct {
    uint8_t *p;
    size_t len, cap, max;
    int fail; /* sticky: -ENOMEM or DM_E_TOO_BIG */
} mbuf;

static void mb_put(mbuf *b, const void *data, size_t n)
{
    if (b->fail)
        return;
    if (n > b->max - b->len) {
        b->fail = DM_E_TOO_BIG;
        return;
    }
    if (b->len + n > b->cap) {
        size_t nc = b->cap ? b->cap : 4096;
        while (nc < b->len + n)
            nc = nc > b->max / 2 ? b->max : nc * 2;
        uint8_t *np = realloc(b->p, nc);
        if (!np) {
            b->fail = -ENOMEM;
            return;
        }
        b->p = np;
        b->cap = nc;
    }
    memcpy(b->p + b->len, data, n);
    b->len += n;
}

static void mb_u64(mbuf *b, uint64_t v)
{
    uint8_t x[8];
    for (int i = 0; i < 8; i++)
        x[i] = (uint8_t)(v >> (8 * i));
    mb_put(b, x, 8);
}

static void mb_u32(mbuf *b, uint32_t v)
{
    uint8_t x[4] = {(uint8_t)v, (uint8_t)(v >> 8), (uint8_t)(v >> 16), (uint8_t)(v >> 24)};
    mb_put(b, x, 4);
}

static void mb_u16(mbuf *b, uint16_t v)
{
    uint8_t x[2] = {(uint8_t)v, (uint8_t)(v >> 8)};
    mb_put(b, x, 2);
}

static void mb_u8(mbuf *b, uint8_t v)
{
    mb_put(b, &v, 1);
}

/* ---- bounds-checked input cursor ---- */

typedef struct {
    const uint8_t *p;
    size_t len, off;
    int bad; /* sticky */
} cursor;

static const uint8_t *cur_take(cursor *c, size_t n)
{
    if (c->bad || n > c->len - c->off) {
        c->bad = 1;
        return NULL;
    }
    const uint8_t *r = c->p + c->off;
    c->off += n;
    return r;
}

static uint64_t cur_u64(cursor *c)
{
    const uint8_t *x = cur_take(c, 8);
    uint64_t v = 0;
    for (int i = 7; x && i >= 0; i--)
        v = (v << 8) | x[i];
    return v;
}

static uint32_t cur_u32(cursor *c)
{
    const uint8_t *x = cur_take(c, 4);
    return x ? (uint32_t)x[0] | (uint32_t)x[1] << 8 | (uint32_t)x[2] << 16 | (uint32_t)x[3] << 24
             : 0;
}

static uint16_t cur_u16(cursor *c)
{
    const uint8_t *x = cur_take(c, 2);
    return x ? (uint16_t)(x[0] | x[1] << 8) : 0;
}

static uint8_t cur_u8(cursor *c)
{
    const uint8_t *x = cur_take(c, 1);
    return x ? x[0] : 0;
}

/* ---- the in-memory manifest ---- */

manifest *manifest_new(void)
{
    return calloc(1, sizeof(manifest));
}

static void entry_done(mf_entry *e)
{
    free(e->path);
    free(e->link);
    free(e->ext);
}

void manifest_free(manifest *m)
{
    if (!m)
        return;
    for (size_t i = 0; i < m->n; i++)
        entry_done(&m->e[i]);
    free(m->e);
    free(m);
}

mf_entry *manifest_push(manifest *m)
{
    if (m->n >= MF_MAX_ENTRIES)
        return NULL;
    if (m->n == m->cap) {
        size_t nc = m->cap ? m->cap * 2 : 64;
        mf_entry *ne = realloc(m->e, nc * sizeof *ne);
        if (!ne)
            return NULL;
        m->e = ne;
        m->cap = nc;
    }
    mf_entry *e = &m->e[m->n++];
    memset(e, 0, sizeof *e);
    return e;
}

static char *dup_bytes(const char *s, size_t len)
{
    char *p = malloc(len + 1);
    if (p) {
        memcpy(p, s, len);
        p[len] = '\0';
    }
    return p;
}

int mf_entry_set_path(mf_entry *e, const char *path, size_t len)
{
    char *p = dup_bytes(path, len);
    if (!p)
        return -ENOMEM;
    free(e->path);
    e->path = p;
    e->path_len = len;
    return 0;
}

int mf_entry_set_link(mf_entry *e, const char *target, size_t len)
{
    char *p = dup_bytes(target, len);
    if (!p)
        return -ENOMEM;
    free(e->link);
    e->link = p;
    e->link_len = len;
    return 0;
}

int mf_entry_add_extent(mf_entry *e, const mf_extent *x)
{
    if (e->n_ext == e->cap_ext) {
        if (e->cap_ext >= (UINT32_MAX >> 2))
            return DM_E_TOO_BIG;
        uint32_t nc = e->cap_ext ? e->cap_ext * 2 : 4;
        mf_extent *n = realloc(e->ext, nc * sizeof *n);
        if (!n)
            return -ENOMEM;
        e->ext = n;
        e->cap_ext = nc;
    }
    e->ext[e->n_ext++] = *x;
    return 0;
}

int manifest_remove(manifest *m, char *gone)
{
    uint32_t *map = malloc((m->n + 1) * sizeof *map); /* old index -> new */
    size_t w = 0;
    if (!map)
        return -ENOMEM;
    for (size_t i = 0; i < m->n; i++) {
        mf_entry *e = &m->e[i];
        if (e->type == MF_HARDLINK && gone[e->link_to])
            gone[i] = 1;
        if (gone[i]) {
            entry_done(e);
            continue;
        }
        if (e->type == MF_HARDLINK) /* targets come first (MANIF-MF3): already mapped */
            e->link_to = map[e->link_to];
        map[i] = (uint32_t)w;
        m->e[w++] = *e;
    }
    m->n = w;
    free(map);
    return 0;
}

int mf_path_cmp(const char *a, size_t alen, const char *b, size_t blen)
{
    size_t n = alen < blen ? alen : blen;
    for (size_t i = 0; i < n; i++) {
        unsigned ca = (unsigned char)a[i], cb = (unsigned char)b[i];
        if (ca == cb)
            continue;
        ca = ca == '/' ? 0 : ca;
        cb = cb == '/' ? 0 : cb;
        return ca < cb ? -1 : 1;
    }
    return alen < blen ? -1 : alen > blen ? 1 : 0;
}

long manifest_find(const manifest *m, const char *path, size_t len)
{
    size_t lo = 0, hi = m->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = mf_path_cmp(m->e[mid].path, m->e[mid].path_len, path, len);
        if (c == 0)
            return (long)mid;
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return -1;
}

/* ---- encode ---- */

static void put_entry(mbuf *b, const mf_entry *e)
{
    mb_u8(b, (uint8_t)e->type);
    mb_u32(b, e->mode);
    mb_u32(b, e->uid);
    mb_u32(b, e->gid);
    mb_u64(b, (uint64_t)e->mtime_ns);
    mb_u64(b, e->size);
    mb_u64(b, e->ino);
    mb_u64(b, e->dev);
    mb_u32(b, (uint32_t)e->path_len);
    mb_put(b, e->path, e->path_len);
    if (e->type == MF_SYMLINK) {
        mb_u32(b, (uint32_t)e->link_len);
        mb_put(b, e->link, e->link_len);
    } else if (e->type == MF_HARDLINK) {
        mb_u32(b, e->link_to);
    } else if (e->type == MF_FILE) {
        mb_u32(b, e->n_ext);
        for (uint32_t i = 0; i < e->n_ext; i++) {
            mb_u8(b, e->ext[i].hole ? 1 : 0);
            mb_u64(b, e->ext[i].len);
            if (!e->ext[i].hole)
                mb_put(b, e->ext[i].id.b, 32);
        }
    }
}

/* cap: the size of the field s lives in (so the read stays inside it). */
static void put_str16(mbuf *b, const char *s, size_t cap)
{
    size_t n = strnlen(s, cap);
    mb_u16(b, (uint16_t)n);
    mb_put(b, s, n);
}

static void put_header(mbuf *b, const snap_info *in, uint64_t n, uint64_t body_len)
{
    mb_u64(b, (uint64_t)in->time_ms);
    mb_u64(b, (uint64_t)in->duration_ms);
    mb_u64(b, in->files);
    mb_u64(b, in->dirs);
    mb_u64(b, in->symlinks);
    mb_u64(b, in->bytes);
    mb_u64(b, in->bytes_new);
    mb_u64(b, in->stored_new);
    mb_u64(b, n);
    mb_u64(b, body_len);
    put_str16(b, in->parent, sizeof in->parent);
    put_str16(b, in->source, sizeof in->source);
    put_str16(b, in->tag, sizeof in->tag);
}

static int compress_body(const mbuf *body, mbuf *out)
{
    LZ4F_preferences_t prefs;
    memset(&prefs, 0, sizeof prefs);
    prefs.frameInfo.contentSize = body->len;
    size_t bound = LZ4F_compressFrameBound(body->len, &prefs);
    if (bound > out->max - out->len)
        return DM_E_TOO_BIG;
    uint8_t *np = realloc(out->p, out->len + bound);
    if (!np)
        return -ENOMEM;
    out->p = np;
    out->cap = out->len + bound;
    size_t n = LZ4F_compressFrame(out->p + out->len, bound, body->p, body->len, &prefs);
    if (LZ4F_isError(n))
        return DM_E_INTERNAL;
    out->len += n;
    return 0;
}

int manifest_encode(const manifest *m, void **ret, size_t *ret_len, char *err, size_t errlen)
{
    mbuf body = {.max = MF_MAX_BODY}, out = {.max = MF_MAX_OBJECT}, hdr = {.max = MF_HEADER_MAX};
    int rc;
    for (size_t i = 0; i < m->n; i++)
        put_entry(&body, &m->e[i]);
    put_header(&hdr, &m->info, m->n, body.len);
    if ((rc = body.fail ? body.fail : hdr.fail) != 0) {
        rc = dm_fail(err, errlen, rc, "manifest: %zu entries: %s", m->n, dm_strerror(rc));
        goto out;
    }
    mb_put(&out, MF_MAGIC, MF_MAGIC_LEN);
    mb_u32(&out, (uint32_t)hdr.len);
    mb_put(&out, hdr.p, hdr.len);
    rc = out.fail ? out.fail : compress_body(&body, &out);
    if (rc != 0) {
        rc = dm_fail(err, errlen, rc, "manifest: compress: %s", dm_strerror(rc));
        goto out;
    }
    *ret = out.p;
    *ret_len = out.len;
    out.p = NULL;
out:
    free(body.p);
    free(hdr.p);
    free(out.p);
    return rc;
}

/* ---- decode ---- */

static int get_str16(cursor *c, char *dst, size_t cap)
{
    uint16_t n = cur_u16(c);
    const uint8_t *s = cur_take(c, n);
    if (!s || n >= cap || memchr(s, 0, n))
        return -1;
    memcpy(dst, s, n);
    dst[n] = '\0';
    return 0;
}

/* Parses magic + header; leaves c at the body. */
static int read_header(cursor *c, snap_info *in, uint64_t *ret_n, uint64_t *ret_body)
{
    const uint8_t *magic = cur_take(c, MF_MAGIC_LEN);
    if (!magic || memcmp(magic, MF_MAGIC, MF_MAGIC_LEN) != 0)
        return -1;
    uint32_t hlen = cur_u32(c);
    if (c->bad || hlen > MF_HEADER_MAX || hlen > c->len - c->off)
        return -1;
    cursor h = {.p = c->p + c->off, .len = hlen};
    c->off += hlen;
    in->time_ms = (int64_t)cur_u64(&h);
    in->duration_ms = (int64_t)cur_u64(&h);
    in->files = cur_u64(&h);
    in->dirs = cur_u64(&h);
    in->symlinks = cur_u64(&h);
    in->bytes = cur_u64(&h);
    in->bytes_new = cur_u64(&h);
    in->stored_new = cur_u64(&h);
    *ret_n = cur_u64(&h);
    *ret_body = cur_u64(&h);
    if (get_str16(&h, in->parent, sizeof in->parent) ||
        get_str16(&h, in->source, sizeof in->source) || get_str16(&h, in->tag, sizeof in->tag) ||
        h.bad)
        return -1;
    return 0;
}

int manifest_decode_info(const void *data, size_t len, snap_info *ret, char *err, size_t errlen)
{
    cursor c = {.p = data, .len = len};
    snap_info in;
    uint64_t n, body;
    memset(&in, 0, sizeof in);
    if (read_header(&c, &in, &n, &body) != 0)
        return dm_fail(err, errlen, DM_E_PROTOCOL, "manifest: bad header");
    memcpy(in.id, ret->id, sizeof in.id);
    *ret = in;
    return 0;
}

static int inflate_body(const uint8_t *src, size_t srclen, uint64_t plain, uint8_t **ret)
{
    if (plain > MF_MAX_BODY || plain > (uint64_t)srclen * 256 + 64) /* MANIF-I1 */
        return -1;
    LZ4F_dctx *dctx = NULL;
    uint8_t *out = malloc(plain + 1);
    int rc = -1;
    if (!out || LZ4F_isError(LZ4F_createDecompressionContext(&dctx, LZ4F_VERSION)))
        goto out;
    size_t in_off = 0, out_off = 0, hint = 1;
    while (hint != 0 && in_off < srclen) {
        size_t s = srclen - in_off, d = plain + 1 - out_off;
        hint = LZ4F_decompress(dctx, out + out_off, &d, src + in_off, &s, NULL);
        if (LZ4F_isError(hint))
            goto out;
        in_off += s;
        out_off += d;
        if (out_off > plain || (s == 0 && d == 0 && hint != 0))
            goto out;
    }
    if (hint != 0 || in_off != srclen || out_off != plain)
        goto out;
    *ret = out;
    out = NULL;
    rc = 0;
out:
    LZ4F_freeDecompressionContext(dctx);
    free(out);
    return rc;
}

/* MANIF-MF2: a relative path of non-empty components, none "." or "..". */
static int path_ok(const char *p, size_t len)
{
    if (len == 0 || len > MF_PATH_MAX || memchr(p, 0, len))
        return 0;
    size_t start = 0;
    for (size_t i = 0; i <= len; i++) {
        if (i < len && p[i] != '/')
            continue;
        size_t n = i - start;
        if (n == 0 || (n == 1 && p[start] == '.') ||
            (n == 2 && p[start] == '.' && p[start + 1] == '.'))
            return 0;
        start = i + 1;
    }
    return 1;
}

static int get_file_extents(cursor *c, mf_entry *e)
{
    uint32_t n = cur_u32(c);
    if (c->bad || n > (c->len - c->off) / 9)
        return -1;
    uint64_t total = 0;
    for (uint32_t i = 0; i < n; i++) {
        mf_extent x;
        memset(&x, 0, sizeof x);
        uint8_t kind = cur_u8(c);
        x.len = cur_u64(c);
        x.hole = kind == 1;
        if (kind > 1 || x.len == 0 || (!x.hole && x.len > REPO_CHUNK_MAX))
            return -1;
        if (!x.hole) {
            const uint8_t *id = cur_take(c, 32);
            if (!id)
                return -1;
            memcpy(x.id.b, id, 32);
        }
        if (c->bad || x.len > UINT64_MAX - total || mf_entry_add_extent(e, &x) != 0)
            return -1;
        total += x.len;
    }
    return total == e->size ? 0 : -1; /* MANIF-MF3 */
}

static int get_type_part(cursor *c, manifest *m, size_t i)
{
    mf_entry *e = &m->e[i];
    if (e->type == MF_SYMLINK) {
        uint32_t n = cur_u32(c);
        const uint8_t *t = cur_take(c, n);
        if (!t || n == 0 || n > MF_PATH_MAX || memchr(t, 0, n))
            return -1;
        return mf_entry_set_link(e, (const char *)t, n);
    }
    if (e->type == MF_HARDLINK) {
        e->link_to = cur_u32(c);
        return (!c->bad && e->link_to < i && m->e[e->link_to].type == MF_FILE) ? 0 : -1;
    }
    if (e->type == MF_FILE)
        return get_file_extents(c, e);
    return 0;
}

/* MANIF-MF2: order, root, parent is an earlier directory. */
static int place_ok(const manifest *m, size_t i)
{
    const mf_entry *e = &m->e[i];
    if (i == 0)
        return e->path_len == 0 && e->type == MF_DIR;
    if (!path_ok(e->path, e->path_len))
        return 0;
    const mf_entry *prev = &m->e[i - 1];
    if (mf_path_cmp(prev->path, prev->path_len, e->path, e->path_len) >= 0)
        return 0;
    const char *slash = memrchr(e->path, '/', e->path_len);
    size_t plen = slash ? (size_t)(slash - e->path) : 0;
    manifest before = {.e = m->e, .n = i};
    long p = manifest_find(&before, e->path, plen);
    return p >= 0 && m->e[p].type == MF_DIR;
}

static int get_entry(cursor *c, manifest *m, size_t i)
{
    mf_entry *e = &m->e[i];
    uint8_t type = cur_u8(c);
    e->mode = cur_u32(c);
    e->uid = cur_u32(c);
    e->gid = cur_u32(c);
    e->mtime_ns = (int64_t)cur_u64(c);
    e->size = cur_u64(c);
    e->ino = cur_u64(c);
    e->dev = cur_u64(c);
    uint32_t plen = cur_u32(c);
    const uint8_t *p = cur_take(c, plen);
    if (!p || type < MF_FILE || type > MF_HARDLINK || e->mode > 07777 || plen > MF_PATH_MAX)
        return -1;
    e->type = (mf_type)type;
    if (mf_entry_set_path(e, (const char *)p, plen) != 0 || !place_ok(m, i))
        return -1;
    return get_type_part(c, m, i);
}

static int decode_body(const uint8_t *body, size_t len, uint64_t n, manifest *m)
{
    if (n == 0 || n > MF_MAX_ENTRIES || n > len / MF_ENTRY_MIN)
        return -1;
    m->e = calloc(n, sizeof *m->e);
    if (!m->e)
        return -1;
    m->cap = n;
    cursor c = {.p = body, .len = len};
    for (size_t i = 0; i < n; i++) {
        m->n = i + 1;
        if (get_entry(&c, m, i) != 0)
            return -1;
    }
    return c.off == len ? 0 : -1;
}

int manifest_decode(const void *data, size_t len, manifest **ret, char *err, size_t errlen)
{
    cursor c = {.p = data, .len = len};
    uint64_t n = 0, body_len = 0;
    uint8_t *body = NULL;
    int rc = DM_E_PROTOCOL;
    manifest *m = manifest_new();
    if (!m) {
        rc = dm_fail(err, errlen, -ENOMEM, "manifest: out of memory");
        goto out;
    }
    if (read_header(&c, &m->info, &n, &body_len) != 0) {
        rc = dm_fail(err, errlen, DM_E_PROTOCOL, "manifest: bad header");
        goto out;
    }
    if (inflate_body(c.p + c.off, c.len - c.off, body_len, &body) != 0) {
        rc = dm_fail(err, errlen, DM_E_PROTOCOL, "manifest: bad or oversized body");
        goto out;
    }
    if (decode_body(body, body_len, n, m) != 0) {
        rc = dm_fail(err, errlen, DM_E_PROTOCOL, "manifest: bad entry %zu of %llu", m->n,
                     (unsigned long long)n);
        goto out;
    }
    *ret = m;
    m = NULL;
    rc = 0;
out:
    free(body);
    manifest_free(m);
    return rc;
}

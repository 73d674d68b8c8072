/* Export of a snapshot as a standard tar archive, and import of one.
 *
 * Export streams: it loads the snapshot's manifest (snap_load checks its
 * hash, manifest_decode its structure: MANIF-MF1 to MANIF-MF3), and for
 * each entry in tree order writes a pax (restricted) header and the file's
 * bytes, read chunk by chunk with repo_read_chunk() (which re-hashes, SNAP-RP1),
 * through libarchive's LZ4 filter at level 1 into out_fd. Nothing touches
 * the disk; memory is one chunk buffer plus the manifest.
 *
 * Import extracts the archive with libarchive into a private directory
 * (mkdtemp, mode 0700), checking every entry itself before libarchive's
 * own SECURE_* checks see it, then snapshots that directory with
 * snap_create() and removes it.
 *
 * SNAP-EX1: export never turns damage into data: a chunk that fails its hash or
 *      size check stops the export with an error naming the file; the
 *      stream then lacks the tar end marker, so `tar -x` reports it too.
 * SNAP-EX2: export writes hard links as tar hard links to the first path of the
 *      group, holes as zero bytes, and skips the root entry (tar -x into a
 *      directory must not change that directory's own mode or time).
 * SNAP-EX3: import never creates, changes or follows anything outside its
 *      private directory: a path must be relative, without "..", and no
 *      existing component of its parent may be anything but a real
 *      directory (lstat); libarchive's SECURE_SYMLINKS and SECURE_NODOTDOT
 *      check the same again.
 * SNAP-EX4: a symlink target must be relative and of the form (../)^k followed by
 *      names only, with k at most the depth of the link's directory: by
 *      induction over the links already extracted, no chain of links
 *      resolves outside the tree. A hard link must name a regular file
 *      already extracted (lstat, same parent checks).
 * SNAP-EX5: device, FIFO and socket entries are refused; setuid and setgid bits
 *      are dropped; owners are not restored.
 * SNAP-EX6: caps: at most max_entries entries; the declared sizes add up to at
 *      most max_bytes; an entry's data never goes past its declared size;
 *      the decompressed stream never exceeds max_bytes plus a bounded
 *      overhead per entry (a decompression bomb stops at the cap, not at
 *      the end of the disk).
 * SNAP-EX7: every refusal names the entry (control bytes escaped) and the rule.
 * SNAP-EX8: the private directory is removed on every path, success or failure
 *      (snap_rm_tree: never follows a symlink, opens up 0000 directories).
 * SNAP-EX9: names are raw bytes: export runs under a thread-local C.UTF-8
 *      LC_CTYPE so UTF-8 names go out as UTF-8 (GNU tar reads them without a
 *      warning) and only other bytes get hdrcharset=BINARY.
 * SNAP-EX10: each import records its own source, "<name>#<random>" (see
 *      imp_create for why not name alone). */
#include "snapshot/export.h"

#include "snapshot/manifest.h"
#include "snapshot/repo.h"
#include "snapshot/snap_internal.h"
#include "util/error.h"

#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <locale.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define EXP_LZ4_LEVEL   "1"
#define EXP_ZERO_BUF    (64u << 10)
#define IMP_READ_BLOCK  (256u << 10)
#define IMP_ENTRY_SLACK (64u << 10) /* header bytes allowed per entry (SNAP-EX6) */
#define IMP_NAME_MAX    1024        /* bytes of name kept in the source */
#define SHOW_MAX        256

/* SNAP-EX7: an entry name fit for a one-line message. */
static const char *show(const char *s, char *buf, size_t cap)
{
    size_t o = 0;
    if (!s)
        s = "(no name)";
    for (; *s && o + 6 < cap; s++) {
        unsigned char ch = (unsigned char)*s;
        if (ch < 0x20 || ch == 0x7f || ch == '\\' || ch == '\'')
            o += (size_t)snprintf(buf + o, cap - o, "\\x%02x", ch);
        else
            buf[o++] = (char)ch;
    }
    if (*s && o + 4 < cap)
        o += (size_t)snprintf(buf + o, cap - o, "...");
    buf[o] = '\0';
    return buf;
}

/* ---- export ------------------------------------------------------------- */

typedef struct {
    dm_store *s;
    repo *r;
    manifest *m;
    struct archive *w;
    struct archive_entry *ae;
    uint8_t *buf; /* one chunk */
    uint64_t done, total;
    const snap_opts *o;
} exp_ctx;

/* The manifest of snapshot id, its hash checked (snap_load). */
static int exp_load(dm_store *s, const char *id, manifest **ret, char *err, size_t errlen)
{
    int rc = snap_load(s, id, ret, err, errlen);
    if (rc == DM_E_NOT_FOUND || rc == -ENOENT)
        return dm_fail(err, errlen, DM_E_NOT_FOUND, "no snapshot %s in %s", id, store_url(s));
    return rc;
}

static int exp_write(exp_ctx *x, const void *p, size_t n, char *err, size_t errlen)
{
    const char *c = p;
    while (n > 0) {
        la_ssize_t w = archive_write_data(x->w, c, n);
        if (w <= 0)
            return dm_fail(err, errlen, -EIO, "writing the archive: %s",
                           archive_error_string(x->w) ? archive_error_string(x->w) : "failed");
        c += w;
        n -= (size_t)w;
    }
    return 0;
}

static int exp_hole(exp_ctx *x, uint64_t len, char *err, size_t errlen)
{
    static const uint8_t zero[EXP_ZERO_BUF];
    while (len > 0) {
        size_t n = len < sizeof zero ? (size_t)len : sizeof zero;
        int rc = exp_write(x, zero, n, err, errlen);
        if (rc)
            return rc;
        len -= n;
    }
    return 0;
}

/* SNAP-EX1: every chunk read is verified by the repository. */
static int exp_file_data(exp_ctx *x, const mf_entry *e, char *err, size_t errlen)
{
    char nm[SHOW_MAX], why[512];
    for (uint32_t i = 0; i < e->n_ext; i++) {
        const mf_extent *xt = &e->ext[i];
        size_t got = 0;
        int rc;
        if (xt->hole) {
            rc = exp_hole(x, xt->len, err, errlen);
        } else {
            rc = repo_read_chunk(x->r, &xt->id, x->buf, REPO_CHUNK_MAX, &got, why, sizeof why);
            if (rc)
                return dm_fail(err, errlen, rc, "export: '%s': %s", show(e->path, nm, sizeof nm),
                               why);
            if (got != xt->len)
                return dm_fail(err, errlen, DM_E_PROTOCOL,
                               "export: '%s': a chunk has the wrong size",
                               show(e->path, nm, sizeof nm));
            rc = exp_write(x, x->buf, got, err, errlen);
        }
        if (rc)
            return rc;
        x->done += xt->len;
        if (x->o && x->o->progress)
            x->o->progress(x->done, x->total, x->o->progress_ctx);
    }
    return 0;
}

/* Fills x->ae from e (SNAP-EX2). */
static void exp_fill(exp_ctx *x, const mf_entry *e)
{
    struct archive_entry *ae = x->ae;
    archive_entry_clear(ae);
    archive_entry_copy_pathname(ae, e->path);
    archive_entry_set_perm(ae, e->mode & 07777);
    archive_entry_set_uid(ae, e->uid);
    archive_entry_set_gid(ae, e->gid);
    int64_t ns = e->mtime_ns, sec = ns / 1000000000, rem = ns % 1000000000;
    if (rem < 0) {
        rem += 1000000000;
        sec--;
    }
    archive_entry_set_mtime(ae, sec, rem);
    archive_entry_set_size(ae, 0);
    switch (e->type) {
    case MF_DIR:
        archive_entry_set_filetype(ae, AE_IFDIR);
        break;
    case MF_SYMLINK:
        archive_entry_set_filetype(ae, AE_IFLNK);
        archive_entry_copy_symlink(ae, e->link);
        break;
    case MF_HARDLINK:
        archive_entry_set_filetype(ae, AE_IFREG);
        archive_entry_copy_hardlink(ae, x->m->e[e->link_to].path);
        break;
    default:
        archive_entry_set_filetype(ae, AE_IFREG);
        archive_entry_set_size(ae, (la_int64_t)e->size);
        break;
    }
}

static int exp_entries(exp_ctx *x, char *err, size_t errlen)
{
    char nm[SHOW_MAX];
    for (size_t i = 0; i < x->m->n; i++) {
        const mf_entry *e = &x->m->e[i];
        if (e->path_len == 0)
            continue; /* the root (SNAP-EX2) */
        exp_fill(x, e);
        if (archive_write_header(x->w, x->ae) < ARCHIVE_WARN)
            return dm_fail(err, errlen, -EIO, "'%s': %s", show(e->path, nm, sizeof nm),
                           archive_error_string(x->w));
        if (e->type == MF_FILE) {
            int rc = exp_file_data(x, e, err, errlen);
            if (rc)
                return rc;
        }
    }
    return 0;
}

static int exp_open_writer(exp_ctx *x, int out_fd, char *err, size_t errlen)
{
    x->w = archive_write_new();
    x->ae = archive_entry_new();
    if (!x->w || !x->ae)
        return dm_fail(err, errlen, -ENOMEM, "out of memory");
    if (archive_write_add_filter_lz4(x->w) != ARCHIVE_OK ||
        archive_write_set_filter_option(x->w, "lz4", "compression-level", EXP_LZ4_LEVEL) !=
            ARCHIVE_OK ||
        archive_write_set_format_pax_restricted(x->w) != ARCHIVE_OK ||
        archive_write_set_bytes_in_last_block(x->w, 1) != ARCHIVE_OK ||
        archive_write_open_fd(x->w, out_fd) != ARCHIVE_OK)
        return dm_fail(err, errlen, DM_E_INTERNAL, "cannot start the archive: %s",
                       archive_error_string(x->w));
    return 0;
}

int snap_export(dm_store *s, const char *id, int out_fd, const snap_opts *o, char *err,
                size_t errlen)
{
    exp_ctx x = {.s = s, .o = o};
    /* SNAP-EX9: names are bytes; under a UTF-8 LC_CTYPE libarchive writes a UTF-8
     * name as UTF-8 and only another one with hdrcharset=BINARY. This
     * thread's locale only (uselocale), for the length of the export. */
    locale_t utf8 = newlocale(LC_CTYPE_MASK, "C.UTF-8", (locale_t)0);
    locale_t prev = utf8 ? uselocale(utf8) : (locale_t)0;
    int rc = exp_load(s, id, &x.m, err, errlen);
    if (rc)
        goto out;
    x.total = x.m->info.bytes;
    if ((rc = repo_open(s, &x.r, err, errlen)) != 0)
        goto out;
    if (!(x.buf = malloc(REPO_CHUNK_MAX))) {
        rc = dm_fail(err, errlen, -ENOMEM, "out of memory");
        goto out;
    }
    if ((rc = exp_open_writer(&x, out_fd, err, errlen)) != 0 ||
        (rc = exp_entries(&x, err, errlen)) != 0)
        goto out;
    if (archive_write_close(x.w) != ARCHIVE_OK)
        rc = dm_fail(err, errlen, -EIO, "writing the archive: %s", archive_error_string(x.w));
out:
    if (x.w)
        archive_write_free(x.w); /* after a failure: no end marker is written (SNAP-EX1) */
    archive_entry_free(x.ae);
    free(x.buf);
    repo_close(x.r);
    manifest_free(x.m);
    if (utf8) {
        uselocale(prev);
        freelocale(utf8);
    }
    return rc;
}

/* ---- import: checks on each entry (SNAP-EX3 to SNAP-EX6) ---------------------------- */

typedef struct {
    struct archive *a, *w;
    snap_import_limits lim;
    char base[PATH_MAX]; /* the private directory */
    char root[PATH_MAX]; /* base/<name>: what is snapshotted */
    size_t rootlen;
    char full[PATH_MAX], link[PATH_MAX];
    uint64_t entries, declared, written, in_total;
    const snap_opts *o;
} imp_ctx;

/* Normalises a relative path into out (no "", "." components; "" for the
 * root). Fails on absolute paths and "..". *ret_depth: its components. */
static int imp_norm(const char *p, char *out, size_t cap, int *ret_depth, const char **why)
{
    size_t o = 0;
    int depth = 0;
    if (p[0] == '/')
        return *why = "absolute path", -1;
    while (*p) {
        size_t n = strcspn(p, "/");
        if (n == 2 && p[0] == '.' && p[1] == '.')
            return *why = "'..' in the path", -1;
        if (n > 0 && !(n == 1 && p[0] == '.')) {
            if (o + n + 2 > cap)
                return *why = "path too long", -1;
            if (o)
                out[o++] = '/';
            memcpy(out + o, p, n);
            o += n;
            depth++;
        }
        p += n;
        p += *p == '/';
    }
    out[o] = '\0';
    *ret_depth = depth;
    return 0;
}

/* SNAP-EX3: root/rel's existing parent components are real directories. */
static int imp_parents_ok(imp_ctx *x, const char *rel)
{
    char path[PATH_MAX];
    struct stat st;
    int n = snprintf(path, sizeof path, "%s/%s", x->root, rel);
    if (n < 0 || (size_t)n >= sizeof path)
        return -1;
    for (char *s = path + x->rootlen + 1; (s = strchr(s, '/')) != NULL; s++) {
        *s = '\0';
        int r = lstat(path, &st);
        *s = '/';
        if (r != 0)
            return errno == ENOENT ? 0 : -1;
        if (!S_ISDIR(st.st_mode))
            return -1;
    }
    return 0;
}

/* SNAP-EX4: a symlink in a directory of depth d may climb at most d levels, and
 * only at the start of its target. */
static int imp_symlink_ok(const char *t, int dir_depth)
{
    int ups = 0, named = 0;
    if (!t || !t[0] || t[0] == '/')
        return 0;
    while (*t) {
        size_t n = strcspn(t, "/");
        if (n == 2 && t[0] == '.' && t[1] == '.') {
            if (named || ++ups > dir_depth)
                return 0;
        } else if (n > 0 && !(n == 1 && t[0] == '.')) {
            named = 1;
        }
        t += n;
        t += *t == '/';
    }
    return 1;
}

/* SNAP-EX4: the hard link target, rewritten under root into x->link. */
static int imp_hardlink(imp_ctx *x, const char *target, const char **why)
{
    char rel[PATH_MAX];
    struct stat st;
    int depth;
    if (imp_norm(target, rel, sizeof rel, &depth, why) != 0 || !rel[0])
        return *why = *why ? *why : "hard link to the root", -1;
    if (imp_parents_ok(x, rel) != 0)
        return *why = "hard link through a symlink", -1;
    int n = snprintf(x->link, sizeof x->link, "%s/%s", x->root, rel);
    if (n < 0 || (size_t)n >= sizeof x->link)
        return *why = "path too long", -1;
    if (lstat(x->link, &st) != 0 || !S_ISREG(st.st_mode))
        return *why = "hard link to a file not in the archive", -1;
    return 0;
}

static int imp_type_ok(struct archive_entry *e, const char **why)
{
    switch (archive_entry_filetype(e)) {
    case AE_IFREG:
    case AE_IFDIR:
    case AE_IFLNK:
        return 0;
    case AE_IFCHR:
    case AE_IFBLK:
        return *why = "device file", -1;
    case AE_IFIFO:
        return *why = "FIFO", -1;
    case AE_IFSOCK:
        return *why = "socket", -1;
    default:
        return archive_entry_hardlink(e) ? 0 : (*why = "unknown entry type", -1);
    }
}

/* SNAP-EX6: counts and declared sizes. */
static int imp_caps_ok(imp_ctx *x, struct archive_entry *e, const char **why)
{
    int64_t size = archive_entry_size_is_set(e) ? archive_entry_size(e) : 0;
    if (++x->entries > x->lim.max_entries)
        return *why = "too many entries (max_entries)", -1;
    if (size < 0)
        return *why = "negative size", -1;
    if ((uint64_t)size > x->lim.max_bytes - x->declared)
        return *why = "the archive is larger than the cap (max_bytes)", -1;
    x->declared += (uint64_t)size;
    return 0;
}

/* Checks e and rewrites its names under root. 1: skip it (the root itself). */
static int imp_check(imp_ctx *x, struct archive_entry *e, const char **why)
{
    char rel[PATH_MAX];
    int depth;
    const char *p = archive_entry_pathname(e), *h = archive_entry_hardlink(e);
    if (!p || !p[0])
        return *why = "empty name", -1;
    if (imp_caps_ok(x, e, why) || imp_type_ok(e, why) || imp_norm(p, rel, sizeof rel, &depth, why))
        return -1;
    if (!rel[0])
        return archive_entry_filetype(e) == AE_IFDIR ? 1 : (*why = "names the root", -1);
    if (imp_parents_ok(x, rel) != 0)
        return *why = "path through a symlink or a file", -1;
    if (!h && archive_entry_filetype(e) == AE_IFLNK &&
        !imp_symlink_ok(archive_entry_symlink(e), depth - 1))
        return *why = "symlink target leaves the tree", -1;
    if (h && imp_hardlink(x, h, why) != 0)
        return -1;
    int n = snprintf(x->full, sizeof x->full, "%s/%s", x->root, rel);
    if (n < 0 || (size_t)n >= sizeof x->full)
        return *why = "path too long", -1;
    archive_entry_copy_pathname(e, x->full);
    if (h)
        archive_entry_copy_hardlink(e, x->link);
    archive_entry_set_perm(e, archive_entry_perm(e) & 01777); /* SNAP-EX5 */
    return 0;
}

/* ---- import: extraction ------------------------------------------------ */

static int imp_bomb(imp_ctx *x)
{
    uint64_t plain = (uint64_t)archive_filter_bytes(x->a, 0);
    uint64_t allow = x->lim.max_bytes + (x->entries + 16) * (uint64_t)IMP_ENTRY_SLACK;
    return plain > allow;
}

/* Copies the entry's data, never past its declared size (SNAP-EX6). */
static int imp_data(imp_ctx *x, struct archive_entry *e, const char *name, char *err, size_t errlen)
{
    char nm[SHOW_MAX];
    uint64_t size = archive_entry_size_is_set(e) ? (uint64_t)archive_entry_size(e) : 0;
    for (;;) {
        const void *buf;
        size_t n;
        la_int64_t off;
        int r = archive_read_data_block(x->a, &buf, &n, &off);
        if (r == ARCHIVE_EOF)
            return 0;
        if (r < ARCHIVE_WARN)
            return dm_fail(err, errlen, DM_E_INVALID, "'%s': %s", show(name, nm, sizeof nm),
                           archive_error_string(x->a));
        if (off < 0 || (uint64_t)off > size || n > size - (uint64_t)off || imp_bomb(x))
            return dm_fail(err, errlen, DM_E_TOO_BIG, "'%s': more data than its declared size",
                           show(name, nm, sizeof nm));
        x->written += n;
        if (archive_write_data_block(x->w, buf, n, off) < ARCHIVE_WARN)
            return dm_fail(err, errlen, -EIO, "'%s': %s", show(name, nm, sizeof nm),
                           archive_error_string(x->w));
        if (x->o && x->o->progress)
            x->o->progress((uint64_t)archive_filter_bytes(x->a, -1), x->in_total,
                           x->o->progress_ctx);
    }
}

static int imp_one(imp_ctx *x, struct archive_entry *e, char *err, size_t errlen)
{
    char name[SHOW_MAX], nm[SHOW_MAX];
    const char *why = NULL;
    show(archive_entry_pathname(e), name, sizeof name); /* before it is rewritten */
    int c = imp_check(x, e, &why);
    if (c < 0)
        return dm_fail(err, errlen, DM_E_INVALID, "refused entry '%s': %s", name, why);
    if (c > 0)
        return 0;
    if (imp_bomb(x))
        return dm_fail(err, errlen, DM_E_TOO_BIG,
                       "refused entry '%s': the archive is larger "
                       "than the cap (max_bytes)",
                       name);
    if (archive_write_header(x->w, e) < ARCHIVE_WARN)
        return dm_fail(err, errlen, DM_E_INVALID, "refused entry '%s': %s", name,
                       archive_error_string(x->w));
    int rc = imp_data(x, e, name, err, errlen);
    if (rc == 0 && archive_write_finish_entry(x->w) < ARCHIVE_WARN)
        rc = dm_fail(err, errlen, -EIO, "'%s': %s", show(name, nm, sizeof nm),
                     archive_error_string(x->w));
    return rc;
}

static int imp_entries(imp_ctx *x, char *err, size_t errlen)
{
    struct archive_entry *e;
    for (;;) {
        int r = archive_read_next_header(x->a, &e);
        if (r == ARCHIVE_EOF)
            break;
        if (r < ARCHIVE_WARN)
            return dm_fail(err, errlen, DM_E_INVALID, "reading the archive (entry %llu): %s",
                           (unsigned long long)x->entries + 1, archive_error_string(x->a));
        int rc = imp_one(x, e, err, errlen);
        if (rc)
            return rc;
    }
    if (archive_write_close(x->w) != ARCHIVE_OK)
        return dm_fail(err, errlen, -EIO, "finishing the extraction: %s",
                       archive_error_string(x->w));
    return 0;
}

static int imp_open(imp_ctx *x, int in_fd, char *err, size_t errlen)
{
    int flags = ARCHIVE_EXTRACT_TIME | ARCHIVE_EXTRACT_PERM | ARCHIVE_EXTRACT_SECURE_SYMLINKS |
                ARCHIVE_EXTRACT_SECURE_NODOTDOT;
    struct stat st;
    if (fstat(in_fd, &st) == 0 && S_ISREG(st.st_mode))
        x->in_total = (uint64_t)st.st_size;
    x->a = archive_read_new();
    x->w = archive_write_disk_new();
    if (!x->a || !x->w)
        return dm_fail(err, errlen, -ENOMEM, "out of memory");
    if (archive_read_support_filter_all(x->a) != ARCHIVE_OK ||
        archive_read_support_format_tar(x->a) != ARCHIVE_OK ||
        archive_write_disk_set_options(x->w, flags) != ARCHIVE_OK)
        return dm_fail(err, errlen, DM_E_INTERNAL, "libarchive: %s", archive_error_string(x->a));
    if (archive_read_open_fd(x->a, in_fd, IMP_READ_BLOCK) != ARCHIVE_OK)
        return dm_fail(err, errlen, DM_E_INVALID, "not a tar archive: %s",
                       archive_error_string(x->a));
    return 0;
}

/* The private directory base (0700), and root = base/tree inside it. */
static int imp_mkdirs(imp_ctx *x, char *err, size_t errlen)
{
    char tmpl[PATH_MAX];
    const char *dir = x->lim.tmp_dir ? x->lim.tmp_dir : "/tmp";
    if (snprintf(tmpl, sizeof tmpl, "%s/dumont-import.XXXXXX", dir) >= (int)sizeof tmpl)
        return dm_fail(err, errlen, DM_E_INVALID, "temporary directory path too long");
    if (!mkdtemp(tmpl))
        return dm_fail(err, errlen, -errno, "cannot create a directory in %s: %s", dir,
                       strerror(errno));
    if (!realpath(tmpl, x->base)) {
        rmdir(tmpl);
        return dm_fail(err, errlen, -errno, "%s: %s", tmpl, strerror(errno));
    }
    int k = snprintf(x->root, sizeof x->root, "%s/tree", x->base);
    if (k < 0 || (size_t)k >= sizeof x->root || mkdir(x->root, 0700) != 0)
        return dm_fail(err, errlen, DM_E_INVALID, "cannot create %s", x->root);
    x->rootlen = (size_t)k;
    return 0;
}

/* SNAP-EX10: the source recorded is "<name>#<the private directory's random
 * suffix>", unique per import, never name alone: snap_create reuses a
 * parent's chunks for a file of the same path, size, mtime, inode and
 * device (SNAP-SN1), and a fresh extraction can get the inode numbers of the
 * previous one (deleted, then reused by the file system) while archives
 * made with a fixed mtime (SOURCE_DATE_EPOCH) keep size and mtime: with
 * name as the source an import could silently take the previous import's
 * bytes. Recording name alone needs a snap_opts switch that turns SNAP-SN1 off. */
static int imp_create(imp_ctx *x, dm_store *s, const char *name, const snap_opts *o, snap_info *ret,
                      char *err, size_t errlen)
{
    char source[PATH_MAX];
    snap_opts so;
    const char *suffix = strrchr(x->base, '.');
    if (o)
        so = *o;
    else
        snap_opts_init(&so);
    if (snprintf(source, sizeof source, "%.*s#%s", IMP_NAME_MAX, name,
                 suffix ? suffix + 1 : "import") >= (int)sizeof source)
        return dm_fail(err, errlen, DM_E_INVALID, "name too long");
    so.source_name = source;
    return snap_create(s, x->root, &so, ret, err, errlen);
}

void snap_import_limits_init(snap_import_limits *l)
{
    memset(l, 0, sizeof *l);
    l->max_bytes = SNAP_IMPORT_MAX_BYTES;
    l->max_entries = SNAP_IMPORT_MAX_ENTRIES;
}

int snap_import_ex(dm_store *s, int in_fd, const char *name, const snap_opts *o,
                   const snap_import_limits *lim, snap_info *ret, char *err, size_t errlen)
{
    imp_ctx *x = calloc(1, sizeof *x);
    int rc;
    if (!x)
        return dm_fail(err, errlen, -ENOMEM, "out of memory");
    if (lim)
        x->lim = *lim;
    else
        snap_import_limits_init(&x->lim);
    x->o = o;
    if (!name || !name[0])
        name = "import";
    if ((rc = imp_mkdirs(x, err, errlen)) != 0 || (rc = imp_open(x, in_fd, err, errlen)) ||
        (rc = imp_entries(x, err, errlen)) != 0)
        goto out;
    rc = imp_create(x, s, name, o, ret, err, errlen);
out:
    if (x->a)
        archive_read_free(x->a);
    if (x->w)
        archive_write_free(x->w);
    if (x->base[0])
        snap_rm_tree(x->base); /* SNAP-EX8 */
    free(x);
    return rc;
}

int snap_import(dm_store *s, int in_fd, const char *name, const snap_opts *o, snap_info *ret,
                char *err, size_t errlen)
{
    return snap_import_ex(s, in_fd, name, o, NULL, ret, err, errlen);
}

/* Tree walk (see walk.h, WALK-WK1 to WALK-WK5).
 *
 * The walk keeps one absolute path buffer and appends/truncates names as it
 * descends. Each directory is read whole (names only), closed, sorted, then
 * visited, so the number of open descriptors does not grow with depth.
 * Hard links are found with a small open-addressing table keyed by
 * (dev, ino), holding only files with st_nlink > 1.
 *
 * WALK-I1: the relative path of entry i is abs[root_len + 1 ..]; abs is always
 *     NUL-terminated at the current depth. */
#include "snapshot/walk.h"

#include "util/error.h"

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

typedef struct {
    uint64_t dev, ino;
    uint32_t idx; /* entry index + 1; 0: empty slot */
} link_slot;

typedef struct {
    manifest *m;
    char abs[PATH_MAX + MF_PATH_MAX + 2];
    size_t root_len;
    link_slot *links;
    size_t nlinks, caplinks; /* caplinks: power of two */
    char *err;
    size_t errlen;
} walker;

static size_t slot_of(const link_slot *t, size_t cap, uint64_t dev, uint64_t ino)
{
    size_t h = (size_t)((ino * 0x9E3779B97F4A7C15ull) ^ dev) & (cap - 1);
    while (t[h].idx && (t[h].dev != dev || t[h].ino != ino))
        h = (h + 1) & (cap - 1);
    return h;
}

static int links_grow(walker *w)
{
    size_t nc = w->caplinks ? w->caplinks * 2 : 256;
    link_slot *t = calloc(nc, sizeof *t);
    if (!t)
        return -ENOMEM;
    for (size_t i = 0; i < w->caplinks; i++)
        if (w->links[i].idx)
            t[slot_of(t, nc, w->links[i].dev, w->links[i].ino)] = w->links[i];
    free(w->links);
    w->links = t;
    w->caplinks = nc;
    return 0;
}

/* WALK-WK3: index+1 of the first entry with (dev, ino), or 0 after recording idx. */
static int link_lookup(walker *w, uint64_t dev, uint64_t ino, uint32_t idx, uint32_t *ret)
{
    if ((w->nlinks + 1) * 2 > w->caplinks) {
        int rc = links_grow(w);
        if (rc != 0)
            return rc;
    }
    size_t h = slot_of(w->links, w->caplinks, dev, ino);
    *ret = w->links[h].idx;
    if (!*ret) {
        w->links[h] = (link_slot){.dev = dev, .ino = ino, .idx = idx + 1};
        w->nlinks++;
    }
    return 0;
}

static int name_cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static void free_names(char **names, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    free(names);
}

/* Reads the names of directory w->abs (WALK-WK5: read whole, then closed). */
static int read_names(walker *w, char ***ret, size_t *ret_n)
{
    DIR *d = opendir(w->abs);
    if (!d)
        return dm_fail(w->err, w->errlen, -errno, "walk: %s: %s", w->abs, strerror(errno));
    char **names = NULL;
    size_t n = 0, cap = 0;
    int rc = 0;
    struct dirent *de;
    while ((errno = 0, de = readdir(d)) != NULL) {
        if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
            continue;
        if (n == cap) {
            size_t nc = cap ? cap * 2 : 32;
            char **nn = n >= MF_MAX_ENTRIES ? NULL : realloc(names, nc * sizeof *nn);
            if (!nn) {
                rc = dm_fail(w->err, w->errlen, DM_E_TOO_BIG, "walk: %s: too many entries", w->abs);
                goto out;
            }
            names = nn;
            cap = nc;
        }
        if (!(names[n] = strdup(de->d_name))) {
            rc = -ENOMEM;
            goto out;
        }
        n++;
    }
    if (errno != 0)
        rc = dm_fail(w->err, w->errlen, -errno, "walk: %s: %s", w->abs, strerror(errno));
out:
    closedir(d);
    if (rc != 0) {
        free_names(names, n);
        return rc;
    }
    if (n > 1)
        qsort(names, n, sizeof *names, name_cmp);
    *ret = names;
    *ret_n = n;
    return 0;
}

static void fill_stat(mf_entry *e, const struct stat *st)
{
    e->mode = st->st_mode & 07777;
    e->uid = st->st_uid;
    e->gid = st->st_gid;
    e->mtime_ns = (int64_t)st->st_mtim.tv_sec * 1000000000 + st->st_mtim.tv_nsec;
    e->ino = st->st_ino;
    e->dev = st->st_dev;
}

static int add_symlink(walker *w, mf_entry *e, const struct stat *st)
{
    char target[MF_PATH_MAX + 1];
    ssize_t n = readlink(w->abs, target, sizeof target);
    if (n < 0)
        return dm_fail(w->err, w->errlen, -errno, "walk: %s: %s", w->abs, strerror(errno));
    if (n == 0 || (size_t)n > MF_PATH_MAX || memchr(target, 0, (size_t)n))
        return dm_fail(w->err, w->errlen, DM_E_TOO_BIG, "walk: %s: link target too long", w->abs);
    e->type = MF_SYMLINK;
    e->size = (uint64_t)n;
    return mf_entry_set_link(e, target, (size_t)n);
}

static int add_file(walker *w, mf_entry *e, const struct stat *st)
{
    e->type = MF_FILE;
    e->size = (uint64_t)st->st_size;
    if (st->st_nlink < 2)
        return 0;
    uint32_t first = 0;
    int rc = link_lookup(w, st->st_dev, st->st_ino, (uint32_t)(w->m->n - 1), &first);
    if (rc == 0 && first) {
        e->type = MF_HARDLINK;
        e->link_to = first - 1;
        e->size = 0;
    }
    return rc;
}

static int walk_dir(walker *w);

/* Visits w->abs (already lstat()ed into st) as a new entry. */
static int visit(walker *w, const struct stat *st)
{
    if (!S_ISDIR(st->st_mode) && !S_ISREG(st->st_mode) && !S_ISLNK(st->st_mode))
        return 0; /* WALK-WK4 */
    const char *rel = w->abs + w->root_len + 1;
    size_t rlen = strlen(w->abs) > w->root_len ? strlen(rel) : 0;
    mf_entry *e = manifest_push(w->m);
    if (!e)
        return dm_fail(w->err, w->errlen, DM_E_TOO_BIG, "walk: more than %u entries",
                       MF_MAX_ENTRIES);
    fill_stat(e, st);
    int rc = mf_entry_set_path(e, rlen ? rel : "", rlen);
    if (rc != 0)
        return rc;
    if (S_ISLNK(st->st_mode))
        return add_symlink(w, e, st);
    if (S_ISREG(st->st_mode))
        return add_file(w, e, st);
    e->type = MF_DIR;
    return walk_dir(w);
}

static int visit_child(walker *w, const char *name)
{
    size_t len = strlen(w->abs), nlen = strlen(name);
    if (len + 1 + nlen - w->root_len - 1 > MF_PATH_MAX || len + 1 + nlen >= sizeof w->abs)
        return dm_fail(w->err, w->errlen, -ENAMETOOLONG, "walk: %s/%s: path too long", w->abs,
                       name);
    w->abs[len] = '/';
    memcpy(w->abs + len + 1, name, nlen + 1);
    struct stat st;
    int rc = 0;
    if (lstat(w->abs, &st) != 0) {
        if (errno != ENOENT) /* WALK-WK4: vanished entries are skipped */
            rc = dm_fail(w->err, w->errlen, -errno, "walk: %s: %s", w->abs, strerror(errno));
    } else {
        rc = visit(w, &st);
    }
    w->abs[len] = '\0';
    return rc;
}

static int walk_dir(walker *w)
{
    char **names = NULL;
    size_t n = 0;
    int rc = read_names(w, &names, &n);
    for (size_t i = 0; rc == 0 && i < n; i++)
        rc = visit_child(w, names[i]);
    free_names(names, n);
    return rc;
}

int walk_tree(const char *root, manifest *m, char *err, size_t errlen)
{
    walker *w = calloc(1, sizeof *w);
    struct stat st;
    int rc;
    if (!w)
        return -ENOMEM;
    w->m = m;
    w->err = err;
    w->errlen = errlen;
    w->root_len = strlen(root);
    while (w->root_len > 1 && root[w->root_len - 1] == '/')
        w->root_len--;
    if (w->root_len == 0 || w->root_len >= PATH_MAX) {
        rc = dm_fail(err, errlen, DM_E_INVALID, "walk: bad root path");
        goto out;
    }
    memcpy(w->abs, root, w->root_len);
    w->abs[w->root_len] = '\0';
    errno = 0;
    if (stat(w->abs, &st) != 0 || !S_ISDIR(st.st_mode)) {
        rc = dm_fail(err, errlen, errno ? -errno : -ENOTDIR, "walk: %s: not a directory", w->abs);
        goto out;
    }
    rc = visit(w, &st);
out:
    free(w->links);
    free(w);
    return rc;
}

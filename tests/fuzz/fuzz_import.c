/* libFuzzer target: snap_import_ex() (src/snapshot/export.c, SNAP-EX1 to SNAP-EX10) on
 * arbitrary bytes as a (possibly LZ4-framed) tar stream.
 *
 * Checked: no crash or sanitizer report on any input; every import, accepted
 * or refused, leaves its private directory removed (SNAP-EX8): the temporary
 * directory it was given is empty again. Small caps (SNAP-EX6) keep each run
 * short. The store is a file:// store in a directory of its own. */
#include "snapshot/export.h"
#include "snapshot/snap_internal.h"
#include "snapshot/snapshot.h"
#include "store/store.h"

#include <dirent.h>
#include <sys/stat.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static dm_store *g_store;
static char g_tmp[PATH_MAX];

static char base[] = "/tmp/fuzz_import.XXXXXX";

static void cleanup(void)
{
    store_close(g_store);
    if (snap_rm_tree(base) != 0)
        fprintf(stderr, "fuzz_import: could not remove %s\n", base);
}

static void init_once(void)
{
    char url[PATH_MAX + 16], err[256];
    if (!mkdtemp(base))
        abort();
    snprintf(g_tmp, sizeof g_tmp, "%s/tmp", base);
    snprintf(url, sizeof url, "file://%s/store", base);
    if (mkdir(g_tmp, 0700) != 0 || store_open(url, &g_store, err, sizeof err) != 0)
        abort();
    atexit(cleanup);
}

static int dir_empty(const char *path)
{
    DIR *d = opendir(path);
    if (!d)
        return 0;
    struct dirent *e;
    int n = 0;
    while ((e = readdir(d)))
        if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0)
            n++;
    closedir(d);
    return n == 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!g_store)
        init_once();
    int fds[2];
    if (size > 60000 || pipe(fds) != 0) /* the whole input fits in the pipe */
        return 0;
    if (write(fds[1], data, size) != (ssize_t)size)
        abort();
    close(fds[1]);
    snap_import_limits lim;
    snap_import_limits_init(&lim);
    lim.max_bytes = 1 << 20;
    lim.max_entries = 200;
    lim.tmp_dir = g_tmp;
    snap_opts o;
    snap_opts_init(&o);
    o.threads = 1;
    snap_info info;
    char err[512];
    snap_import_ex(g_store, fds[0], "fuzz", &o, &lim, &info, err, sizeof err);
    close(fds[0]);
    if (!dir_empty(g_tmp)) /* SNAP-EX8 */
        abort();
    return 0;
}

/* The local provider: instances as directories plus detached sessions on this
 * machine. Invariants PROV-LP1 to PROV-LP5 in local.h; provider.h PROV-PV1 to PROV-PV6.
 *
 * Concurrency: every operation on an instance id holds that id in `busy`
 * (a small set guarded by one mutex), so two threads never provision or
 * destroy the same id at once, while different ids proceed in parallel.
 *
 * Processes (the /proc scan, the detached launch) are in local_proc.c. */
#define _GNU_SOURCE
#include "provider/local.h"

#include "provider/channel.h"
#include "provider/local_proc.h"
#include "provider/market.h"
#include "util/clock.h"
#include "util/error.h"
#include "util/fsutil.h"
#include "util/log.h"
#include "util/secret.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <inttypes.h>
#include <jansson.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define BUSY_MAX 64
#define REC_MAX  8192

typedef struct {
    char home[PATH_MAX];
    char root[PATH_MAX];   /* home/instances */
    char wsroot[PATH_MAX]; /* PROV-LP6: where workspaces live when root; "" : in the instance */
    char market[PATH_MAX];
    char bin[PATH_MAX];
    int64_t delay_ms;
    int64_t lease_ms;      /* prov_config.lease_ms: passed to every agent */
    prov_channel *channel; /* PROV-PV4: borrowed; NULL: no restore, snapshot or start */
    pthread_mutex_t lock;
    pthread_cond_t freed;
    int64_t busy[BUSY_MAX];
    int n_busy;
} lprov;

/* instance.json (PROV-LP1) */
typedef struct {
    int64_t id, epoch, created_ms;
    int pid, sid, port;
    unsigned long long start; /* agent start time, clock ticks since boot (PROV-LP3) */
    char state[16];           /* "starting" | "running" */
    prov_offer offer;
} irec;

/* ---- per-id exclusion ---- */

static void id_acquire(lprov *lp, int64_t id)
{
    pthread_mutex_lock(&lp->lock);
    for (;;) {
        int held = 0;
        for (int i = 0; i < lp->n_busy; i++)
            held |= lp->busy[i] == id;
        if (!held && lp->n_busy < BUSY_MAX)
            break;
        pthread_cond_wait(&lp->freed, &lp->lock);
    }
    lp->busy[lp->n_busy++] = id;
    pthread_mutex_unlock(&lp->lock);
}

static void id_release(lprov *lp, int64_t id)
{
    pthread_mutex_lock(&lp->lock);
    for (int i = 0; i < lp->n_busy; i++)
        if (lp->busy[i] == id) {
            lp->busy[i] = lp->busy[--lp->n_busy];
            break;
        }
    pthread_cond_broadcast(&lp->freed);
    pthread_mutex_unlock(&lp->lock);
}

/* ---- paths and records ---- */

static void inst_path(const lprov *lp, int64_t id, const char *sub, char *buf, size_t len)
{
    int n = snprintf(buf, len, "%s/%" PRId64 "%s%s", lp->root, id, sub[0] ? "/" : "", sub);
    if (n < 0 || (size_t)n >= len) /* cannot happen: local_open caps the home's length */
        buf[0] = '\0';
}

/* PROV-LP6: an instance's workspace. */
static void ws_path(const lprov *lp, int64_t id, char *buf, size_t len)
{
    if (!lp->wsroot[0]) {
        inst_path(lp, id, "workspace", buf, len);
        return;
    }
    int n = snprintf(buf, len, "%s/%" PRId64, lp->wsroot, id);
    if (n < 0 || (size_t)n >= len)
        buf[0] = '\0';
}

/* PROV-LP6: /var/lib/dumont/workspaces/<12 hex of the home's SHA-256>, each level
 * 0711 (entered, never listed, by the workload users). 0 or -errno. */
static int make_wsroot(lprov *lp)
{
    char h[65], path[PATH_MAX];
    secret_sha256_hex(lp->home, h);
    snprintf(path, sizeof path, "/var/lib/dumont/workspaces/%.12s", h);
    const char *levels[] = {"/var/lib/dumont", "/var/lib/dumont/workspaces", path};
    for (int i = 0; i < 3; i++) /* chmod too: the umask would take the others' x away */
        if ((mkdir(levels[i], 0711) != 0 && errno != EEXIST) || chmod(levels[i], 0711) != 0)
            return -errno;
    snprintf(lp->wsroot, sizeof lp->wsroot, "%s", path);
    return 0;
}

static int dir_exists(const char *path)
{
    struct stat st;
    return lstat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

static int rec_write(const char *dir, const irec *r)
{
    char path[PATH_MAX + 32];
    json_t *o = json_pack(
        "{sIsIsIsisisisIsss{sssssssisfsfsssf}}", "instance_id", (json_int_t)r->id, "epoch",
        (json_int_t)r->epoch, "created_ms", (json_int_t)r->created_ms, "pid", r->pid, "sid", r->sid,
        "port", r->port, "start", (json_int_t)r->start, "state", r->state, "offer", "id",
        r->offer.id, "host", r->offer.host, "gpu_name", r->offer.gpu_name, "vram_gb",
        r->offer.vram_gb, "cuda", r->offer.cuda, "price_per_h", r->offer.price_per_h, "region",
        r->offer.region, "reliability", r->offer.reliability);
    char *text = o ? json_dumps(o, JSON_INDENT(2)) : NULL;
    json_decref(o);
    if (!text)
        return -ENOMEM;
    snprintf(path, sizeof path, "%s/instance.json", dir);
    int rc = fs_write_atomic(path, text, strlen(text), 0600);
    free(text);
    return rc;
}

static void copy_str(json_t *o, const char *key, char *dst, size_t cap)
{
    const char *s = json_string_value(json_object_get(o, key));
    snprintf(dst, cap, "%s", s ? s : "");
}

static int rec_read(const char *dir, irec *r)
{
    char path[PATH_MAX + 32], buf[REC_MAX];
    snprintf(path, sizeof path, "%s/instance.json", dir);
    long n = fs_read_small(path, buf, sizeof buf);
    if (n < 0)
        return (int)n;
    json_t *o = json_loadb(buf, (size_t)n, 0, NULL);
    if (!json_is_object(o)) {
        json_decref(o);
        return DM_E_PROTOCOL;
    }
    memset(r, 0, sizeof *r);
    r->id = json_integer_value(json_object_get(o, "instance_id"));
    r->epoch = json_integer_value(json_object_get(o, "epoch"));
    r->created_ms = json_integer_value(json_object_get(o, "created_ms"));
    r->pid = (int)json_integer_value(json_object_get(o, "pid"));
    r->sid = (int)json_integer_value(json_object_get(o, "sid"));
    r->port = (int)json_integer_value(json_object_get(o, "port"));
    r->start = (unsigned long long)json_integer_value(json_object_get(o, "start"));
    copy_str(o, "state", r->state, sizeof r->state);
    json_t *of = json_object_get(o, "offer");
    copy_str(of, "id", r->offer.id, sizeof r->offer.id);
    copy_str(of, "host", r->offer.host, sizeof r->offer.host);
    copy_str(of, "gpu_name", r->offer.gpu_name, sizeof r->offer.gpu_name);
    copy_str(of, "region", r->offer.region, sizeof r->offer.region);
    r->offer.vram_gb = (int)json_integer_value(json_object_get(of, "vram_gb"));
    r->offer.cuda = json_number_value(json_object_get(of, "cuda"));
    r->offer.price_per_h = json_number_value(json_object_get(of, "price_per_h"));
    r->offer.reliability = json_number_value(json_object_get(of, "reliability"));
    json_decref(o);
    return 0;
}

/* ---- processes (PROV-LP3) ---- */

static int agent_alive(const irec *r)
{
    char st;
    int sid;
    unsigned long long start;
    if (r->pid <= 0 || lproc_stat(r->pid, &st, &sid, &start) != 0)
        return 0;
    return st != 'Z' && st != 'X' && sid == r->sid && start == r->start;
}

/* ---- trees ---- */

static int rm_open_dir(const char *path, const struct stat *st, int flag, struct FTW *f)
{
    if (flag == FTW_D)
        chmod(path, 0700); /* a read-only directory must be emptied too */
    return 0;
}

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *f)
{
    return remove(path) == 0 || errno == ENOENT ? 0 : -errno;
}

static int rm_tree(const char *path)
{
    if (!dir_exists(path))
        return unlink(path) == 0 || errno == ENOENT ? 0 : -errno;
    nftw(path, rm_open_dir, 32, FTW_PHYS);
    int rc = nftw(path, rm_one, 32, FTW_DEPTH | FTW_PHYS);
    return rc == 0 ? 0 : rc < 0 && errno ? -errno : rc;
}

static void *rm_thread(void *arg)
{
    char *path = arg, q[PATH_MAX + 8];
    int e = rm_tree(path);
    if (e != 0)
        log_warn("provider.local.cleanup", "path=%s error=%s", log_quote(q, sizeof q, path),
                 strerror(-e));
    free(path);
    return NULL;
}

/* Deletes a fenced instance's workspace in the background: the fence is
 * done (no process can use it) and a workspace of 10,000 files takes
 * seconds to delete, which a failover must not wait for. Done in place when
 * no thread can be started; a server that exits meanwhile leaves the rest in
 * the *.destroyed-* directory. */
static void rm_later(const char *path)
{
    char *copy = strdup(path);
    pthread_attr_t attr;
    pthread_t tid;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    if (!copy || pthread_create(&tid, &attr, rm_thread, copy) != 0) {
        if (copy)
            rm_thread(copy);
        else
            rm_tree(path);
    }
    pthread_attr_destroy(&attr);
}

/* Copies src's contents into the existing directory dst with `cp -a` (modes,
 * mtimes, symlinks and hard links kept; reflinks where the file system can). */
static int copy_tree(const char *src, const char *dst, char *err, size_t errlen)
{
    char from[PATH_MAX + 4];
    char *const envp[] = {"LC_ALL=C", NULL};
    if (!dir_exists(src))
        return dm_fail(err, errlen, DM_E_INVALID, "local: workspace_from %s: not a directory", src);
    snprintf(from, sizeof from, "%s/.", src);
    char *const argv[] = {"cp", "-a", "--reflink=auto", "--", from, (char *)dst, NULL};
    pid_t pid;
    int rc = posix_spawn(&pid, "/bin/cp", NULL, NULL, argv, envp), status = 0;
    if (rc != 0)
        return dm_fail(err, errlen, -rc, "local: cannot run cp: %s", strerror(rc));
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
        ;
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
        return dm_fail(err, errlen, DM_E_INVALID, "local: copying workspace_from %s failed", src);
    return 0;
}

/* ---- the vtable ---- */

static int lp_search(void *p, const prov_query *q, prov_offer *ret, size_t max, size_t *ret_n,
                     char *err, size_t errlen)
{
    lprov *lp = p;
    prov_offer *offers = NULL;
    size_t n = 0;
    int rc = market_load(lp->market, 1, &offers, &n, err, errlen);
    if (rc == 0)
        market_search(offers, n, q, ret, max, ret_n);
    free(offers);
    return rc;
}

static void fill_instance(const lprov *lp, const irec *r, prov_instance *ret)
{
    memset(ret, 0, sizeof *ret);
    ret->instance_id = r->id;
    snprintf(ret->provider, sizeof ret->provider, "local");
    snprintf(ret->offer_id, sizeof ret->offer_id, "%s", r->offer.id);
    snprintf(ret->host, sizeof ret->host, "%s", r->offer.host);
    ws_path(lp, r->id, ret->workspace, sizeof ret->workspace);
    snprintf(ret->address, sizeof ret->address, "127.0.0.1:%d", r->port);
}

/* The directory skeleton of a new instance; workspace copied in. */
static int make_dirs(const lprov *lp, const char *dir, const prov_launch *l, char *err,
                     size_t errlen)
{
    char path[PATH_MAX + 64], ws[PATH_MAX];
    int rc = fs_mkdir_p(dir, 0700);
    snprintf(path, sizeof path, "%s/home", dir);
    if (rc == 0)
        rc = fs_mkdir_p(path, 0700);
    ws_path(lp, l->instance_id, ws, sizeof ws);
    if (rc == 0)
        rc = fs_mkdir_p(ws, 0700);
    snprintf(path, sizeof path, "%s/workspace", dir);
    if (rc == 0 && lp->wsroot[0]) { /* PROV-LP6: <dir>/workspace points at it */
        unlink(path);
        rc = symlink(ws, path) == 0 ? 0 : -errno;
    }
    snprintf(path, sizeof path, "%s/metadata/computeMetadata/v1/instance", dir);
    if (rc == 0)
        rc = fs_mkdir_p(path, 0700);
    strncat(path, "/preempted", sizeof path - strlen(path) - 1);
    if (rc == 0)
        rc = fs_write_atomic(path, "FALSE", 5, 0600);
    if (rc != 0)
        return dm_fail(err, errlen, rc, "local: %s: %s", dir, strerror(-rc));
    return l->workspace_from ? copy_tree(l->workspace_from, ws, err, errlen) : 0;
}

/* Removes what is left of an instance that is gone (PROV-PV2), fencing first. */
static int clear_gone(const lprov *lp, const char *dir, const irec *r, int64_t id, char *err,
                      size_t errlen)
{
    char ws[PATH_MAX];
    int rc = lproc_fence(dir, r ? r->sid : 0, id, err, errlen);
    if (rc == 0 && (rc = rm_tree(dir)) != 0)
        rc = dm_fail(err, errlen, rc, "local: cannot remove %s: %s", dir, strerror(-rc));
    ws_path(lp, id, ws, sizeof ws);
    if (rc == 0 && lp->wsroot[0] && (rc = rm_tree(ws)) != 0 && rc != -ENOENT) /* PROV-LP6 */
        rc = dm_fail(err, errlen, rc, "local: cannot remove %s: %s", ws, strerror(-rc));
    return rc == -ENOENT ? 0 : rc;
}

static int launch(lprov *lp, const char *dir, const prov_offer *offer, const prov_launch *l,
                  irec *r, char *err, size_t errlen)
{
    int rc = make_dirs(lp, dir, l, err, errlen), port = rc ? 0 : lproc_free_port();
    if (rc == 0 && port < 0)
        rc = dm_fail(err, errlen, port, "local: no free port: %s", strerror(-port));
    if (rc)
        return rc;
    *r = (irec){.id = l->instance_id,
                .epoch = l->epoch,
                .created_ms = clock_wall_ms(),
                .port = port,
                .offer = *offer};
    snprintf(r->state, sizeof r->state, "starting");
    if ((rc = rec_write(dir, r)) != 0) /* PROV-LP1: the intent */
        return dm_fail(err, errlen, rc, "local: %s/instance.json: %s", dir, strerror(-rc));
    if ((rc = lproc_launch(lp->bin, dir, l, port, &r->pid, &r->sid, err, errlen)) != 0)
        return rc;
    char st;
    int sid;
    if (lproc_stat(r->pid, &st, &sid, &r->start) != 0)
        r->start = 0; /* exited already: status says STOPPED */
    snprintf(r->state, sizeof r->state, "running");
    if ((rc = rec_write(dir, r)) != 0)
        return dm_fail(err, errlen, rc, "local: %s/instance.json: %s", dir, strerror(-rc));
    return 0;
}

static int lp_provision(void *p, const prov_offer *offer, const prov_launch *l, prov_instance *ret,
                        char *err, size_t errlen)
{
    lprov *lp = p;
    char dir[PATH_MAX], q[PATH_MAX + 8];
    irec r;
    int rc = 0;
    inst_path(lp, l->instance_id, "", dir, sizeof dir);
    id_acquire(lp, l->instance_id);
    if (dir_exists(dir)) {
        int have = rec_read(dir, &r) == 0;
        if (have && agent_alive(&r)) { /* PROV-PV2: it runs; start nothing */
            fill_instance(lp, &r, ret);
            goto out;
        }
        if ((rc = clear_gone(lp, dir, have ? &r : NULL, l->instance_id, err, errlen)) != 0)
            goto out;
    }
    if (lp->delay_ms > 0)
        clock_sleep_ms(lp->delay_ms, NULL);
    char refused[256];
    if (market_provision_error(lp->market, offer->id, refused, sizeof refused)) { /* PROV-MK4 */
        rc = dm_fail(err, errlen, DM_E_UNAVAILABLE, "local: offer %s refused: %s", offer->id,
                     refused);
        goto out;
    }
    int64_t t0 = clock_mono_ms();
    prov_launch lc = *l;
    if (lc.lease_ms <= 0)
        lc.lease_ms = lp->lease_ms;
    if ((rc = launch(lp, dir, offer, &lc, &r, err, errlen)) != 0) {
        char e2[256];
        if (clear_gone(lp, dir, NULL, l->instance_id, e2, sizeof e2) != 0)
            log_warn("provider.local.cleanup", "instance=%" PRId64 " error=%s", l->instance_id,
                     log_quote(q, sizeof q, e2));
        goto out;
    }
    fill_instance(lp, &r, ret);
    log_info("provider.local.provision",
             "instance=%" PRId64 " offer=%s pid=%d sid=%d port=%d ms=%" PRId64, r.id,
             log_quote(q, sizeof q, r.offer.id), r.pid, r.sid, r.port, clock_mono_ms() - t0);
out:
    id_release(lp, l->instance_id);
    return rc;
}

static int lp_get(void *p, int64_t id, prov_instance *ret, char *err, size_t errlen)
{
    lprov *lp = p;
    char dir[PATH_MAX];
    irec r;
    inst_path(lp, id, "", dir, sizeof dir);
    if (!dir_exists(dir) || rec_read(dir, &r) != 0)
        return dm_fail(err, errlen, DM_E_NOT_FOUND, "local: no instance %" PRId64, id);
    fill_instance(lp, &r, ret);
    return 0;
}

static int lp_status(void *p, int64_t id, prov_state *ret, char *err, size_t errlen)
{
    lprov *lp = p;
    char dir[PATH_MAX];
    irec r;
    inst_path(lp, id, "", dir, sizeof dir);
    if (!dir_exists(dir))
        *ret = PROV_ABSENT;
    else
        *ret = rec_read(dir, &r) == 0 && agent_alive(&r) ? PROV_RUNNING : PROV_STOPPED;
    return 0;
}

/* PROV-LP7: 1 when this provider destroyed instance id before (its
 * instances/<id>.destroyed-<ms> record is there). */
static int destroyed_before(const lprov *lp, int64_t id)
{
    char prefix[32];
    int n = snprintf(prefix, sizeof prefix, "%" PRId64 ".destroyed-", id), found = 0;
    DIR *d = opendir(lp->root);
    for (struct dirent *e; d && !found && (e = readdir(d));)
        found = strncmp(e->d_name, prefix, (size_t)n) == 0;
    if (d)
        closedir(d);
    return found;
}

static int lp_destroy(void *p, int64_t id, char *err, size_t errlen)
{
    lprov *lp = p;
    char dir[PATH_MAX], gone[PATH_MAX + 64], ws[PATH_MAX + 80], q[PATH_MAX + 8];
    irec r;
    int rc = 0;
    inst_path(lp, id, "", dir, sizeof dir);
    id_acquire(lp, id);
    if (!dir_exists(dir)) { /* PROV-PV3, PROV-LP7: gone, or never made here */
        if (!destroyed_before(lp, id))
            rc = dm_fail(err, errlen, DM_E_NOT_FOUND,
                         "local: instance %" PRId64 " was never made by this provider (no "
                         "%s/%" PRId64 "): it cannot be confirmed gone",
                         id, lp->root, id);
        goto out;
    }
    int have = rec_read(dir, &r) == 0;
    if ((rc = lproc_fence(dir, have ? r.sid : 0, id, err, errlen)) != 0)
        goto out;
    snprintf(gone, sizeof gone, "%s.destroyed-%" PRId64, dir, clock_wall_ms());
    if (rename(dir, gone) != 0) {
        rc = dm_fail(err, errlen, -errno, "local: %s: %s", dir, strerror(errno));
        goto out;
    }
    snprintf(ws, sizeof ws, "%s/agent.token", gone);
    unlink(ws); /* PROV-LP5: revoked by the caller (PROV-PD3); no copy is kept */
    ws_path(lp, id, ws, sizeof ws);
    rm_later(ws); /* PROV-LP4: the bulk goes; the record and the log stay */
    log_info("provider.local.destroy", "instance=%" PRId64 " moved_to=%s", id,
             log_quote(q, sizeof q, gone));
out:
    id_release(lp, id);
    return rc;
}

/* ---- the instance's own work, over the control channel (PROV-PV4, PROV-PV5) ---- */

#define CMD_TIMEOUT_MS   (30 * 60 * 1000) /* a restore of a large workspace */
#define START_TIMEOUT_MS 30000

/* The epoch the instance was launched with (our records, never the caller's). */
static int inst_epoch(lprov *lp, int64_t id, int64_t *ret, char *err, size_t errlen)
{
    char dir[PATH_MAX];
    irec r;
    inst_path(lp, id, "", dir, sizeof dir);
    if (!dir_exists(dir) || rec_read(dir, &r) != 0)
        return dm_fail(err, errlen, DM_E_NOT_FOUND, "local: no instance %" PRId64, id);
    *ret = r.epoch;
    return 0;
}

/* Runs command id (kind, args) on the instance's agent; *ret its answer.
 * A command the agent answered "failed" is DM_E_UNAVAILABLE with its error. */
static int agent_do(lprov *lp, int64_t inst_id, const char *id, const char *kind, json_t *args,
                    int64_t timeout_ms, json_t **ret, char *err, size_t errlen)
{
    int64_t epoch = 0;
    db_command c;
    if (!lp->channel)
        return dm_fail(err, errlen, DM_E_UNAVAILABLE,
                       "local: no control channel to instance %" PRId64 " (PROV-PV4)", inst_id);
    int rc = inst_epoch(lp, inst_id, &epoch, err, errlen);
    char *a = rc == 0 && args ? json_dumps(args, JSON_COMPACT) : NULL;
    if (rc == 0 && args && !a)
        rc = dm_fail(err, errlen, -ENOMEM, "local: out of memory");
    if (rc == 0)
        rc = chan_call(lp->channel, inst_id, epoch, id, kind, a, timeout_ms, &c, err, errlen);
    free(a);
    if (rc)
        return rc;
    json_t *res = json_loads(c.result, 0, NULL);
    if (strcmp(c.state, "done") != 0) {
        const char *e = json_string_value(json_object_get(res, "error"));
        rc = dm_fail(err, errlen, DM_E_UNAVAILABLE, "instance %" PRId64 ": %s: %.200s", inst_id,
                     kind, e ? e : "failed");
        json_decref(res);
        return rc;
    }
    if (!json_is_object(res)) {
        json_decref(res);
        return dm_fail(err, errlen, DM_E_PROTOCOL, "instance %" PRId64 ": %s: a bad answer",
                       inst_id, kind);
    }
    if (ret)
        *ret = res;
    else
        json_decref(res);
    return 0;
}

static int64_t num(json_t *o, const char *key)
{
    json_t *v = json_object_get(o, key);
    return json_is_integer(v) && json_integer_value(v) >= 0 ? (int64_t)json_integer_value(v) : 0;
}

static int lp_restore(void *p, const prov_instance *inst, dm_store *store, const char *snap_id,
                      prov_restore_times *ret, char *err, size_t errlen)
{
    char id[DB_CMD_ID_MAX];
    json_t *res = NULL;
    /* PROV-CH1: one restore per (instance, snapshot): asked again, the same answer */
    snprintf(id, sizeof id, "restore-%" PRId64 "-%.64s", inst->instance_id, snap_id);
    json_t *args = json_pack("{ssssss}", "snapshot_id", snap_id, "store", store_open_url(store),
                             "mirror", store_mirror_open_url(store));
    if (!args)
        return dm_fail(err, errlen, -ENOMEM, "local: out of memory");
    int rc = agent_do(p, inst->instance_id, id, "restore", args, CMD_TIMEOUT_MS, &res, err, errlen);
    json_decref(args);
    if (rc)
        return rc;
    ret->download_ms = num(res, "download_ms");
    ret->decompress_ms = num(res, "decompress_ms");
    ret->total_ms = num(res, "total_ms");
    ret->bytes = (uint64_t)num(res, "bytes");
    const char *src = json_string_value(json_object_get(res, "source"));
    snprintf(ret->source, sizeof ret->source, "%s",
             src && strcmp(src, "mirror") == 0 ? "mirror" : "primary");
    json_decref(res);
    return 0;
}

static int lp_snapshot(void *p, const prov_instance *inst, dm_store *store, const char *tag,
                       snap_info *ret, char *err, size_t errlen)
{
    char id[DB_CMD_ID_MAX], nonce[17];
    json_t *res = NULL;
    /* a new snapshot each time: run again after a crash, it only adds one */
    if (secret_random_hex(nonce, sizeof nonce, 8) != 0)
        snprintf(nonce, sizeof nonce, "%016llx", (unsigned long long)clock_wall_ms());
    snprintf(id, sizeof id, "snapshot-%" PRId64 "-%s", inst->instance_id, nonce);
    json_t *args = json_pack("{ssssss}", "tag", tag ? tag : "", "store", store_open_url(store),
                             "mirror", store_mirror_open_url(store));
    if (!args)
        return dm_fail(err, errlen, -ENOMEM, "local: out of memory");
    int rc =
        agent_do(p, inst->instance_id, id, "snapshot", args, CMD_TIMEOUT_MS, &res, err, errlen);
    json_decref(args);
    if (rc)
        return rc;
    memset(ret, 0, sizeof *ret);
    const char *sid = json_string_value(json_object_get(res, "snapshot_id"));
    if (!sid || !snap_id_valid(sid)) {
        json_decref(res);
        return dm_fail(err, errlen, DM_E_PROTOCOL, "instance %" PRId64 ": snapshot: no id",
                       inst->instance_id);
    }
    snprintf(ret->id, sizeof ret->id, "%s", sid);
    snprintf(ret->tag, sizeof ret->tag, "%s", tag ? tag : "");
    ret->bytes = (uint64_t)num(res, "bytes");
    ret->files = (uint64_t)num(res, "files");
    ret->stored_new = (uint64_t)num(res, "stored_new");
    ret->duration_ms = num(res, "duration_ms");
    ret->time_ms = num(res, "time_ms");
    json_decref(res);
    return 0;
}

static int lp_start_workload(void *p, const prov_instance *inst, char *err, size_t errlen)
{
    lprov *lp = p;
    char dir[PATH_MAX], id[DB_CMD_ID_MAX];
    irec r;
    inst_path(lp, inst->instance_id, "", dir, sizeof dir);
    if (!dir_exists(dir) || rec_read(dir, &r) != 0)
        return dm_fail(err, errlen, DM_E_NOT_FOUND, "local: no instance %" PRId64,
                       inst->instance_id);
    if (!agent_alive(&r))
        return dm_fail(err, errlen, DM_E_UNAVAILABLE,
                       "local: the agent of instance %" PRId64 " is not running",
                       inst->instance_id);
    /* PROV-PV5: starting twice is a no-op, so one id per instance and epoch */
    snprintf(id, sizeof id, "start-%" PRId64 "-%" PRId64, inst->instance_id, r.epoch);
    return agent_do(lp, inst->instance_id, id, "start_workload", NULL, START_TIMEOUT_MS, NULL, err,
                    errlen);
}

typedef struct {
    char dir[PATH_MAX];
    int sid;
    int64_t id, notice_ms;
} killer;

/* The end of a preemption with notice: SIGKILL notice_ms later. */
static void *killer_main(void *arg)
{
    killer *k = arg;
    char err[256];
    clock_sleep_ms(k->notice_ms, NULL);
    if (lproc_fence(k->dir, k->sid, k->id, err, sizeof err) != 0)
        log_warn("provider.local.preempt", "instance=%" PRId64 " error=\"%s\"", k->id, err);
    else
        log_info("provider.local.preempted", "instance=%" PRId64 " notice_ms=%" PRId64, k->id,
                 k->notice_ms);
    free(k);
    return NULL;
}

static int lp_preempt(void *p, int64_t id, int64_t notice_ms, char *err, size_t errlen)
{
    lprov *lp = p;
    char dir[PATH_MAX], flag[PATH_MAX + 64];
    irec r;
    int rc = 0;
    inst_path(lp, id, "", dir, sizeof dir);
    id_acquire(lp, id);
    if (!dir_exists(dir)) {
        rc = dm_fail(err, errlen, DM_E_NOT_FOUND, "local: no instance %" PRId64, id);
        goto out;
    }
    int sid = rec_read(dir, &r) == 0 ? r.sid : 0;
    if (notice_ms <= 0) { /* a spot loss without warning */
        rc = lproc_fence(dir, sid, id, err, errlen);
        log_info("provider.local.preempted", "instance=%" PRId64 " notice_ms=0", id);
        goto out;
    }
    snprintf(flag, sizeof flag, "%s/metadata/computeMetadata/v1/instance/preempted", dir);
    if ((rc = fs_write_atomic(flag, "TRUE", 4, 0600)) != 0) {
        rc = dm_fail(err, errlen, rc, "local: %s: %s", flag, strerror(-rc));
        goto out;
    }
    killer *k = calloc(1, sizeof *k);
    pthread_t t;
    pthread_attr_t attr;
    if (!k) {
        rc = dm_fail(err, errlen, -ENOMEM, "local: out of memory");
        goto out;
    }
    *k = (killer){.sid = sid, .id = id, .notice_ms = notice_ms};
    snprintf(k->dir, sizeof k->dir, "%s", dir);
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    if ((rc = pthread_create(&t, &attr, killer_main, k)) != 0) {
        free(k);
        rc = dm_fail(err, errlen, -rc, "local: cannot start the preemption timer");
    }
    pthread_attr_destroy(&attr);
    log_info("provider.local.preempt_notice", "instance=%" PRId64 " notice_ms=%" PRId64, id,
             notice_ms);
out:
    id_release(lp, id);
    return rc;
}

static void lp_close(void *p)
{
    lprov *lp = p;
    if (!lp)
        return;
    if (lp->wsroot[0])
        rmdir(lp->wsroot); /* PROV-LP6: only when no workspace is left in it */
    pthread_mutex_destroy(&lp->lock);
    pthread_cond_destroy(&lp->freed);
    free(lp);
}

static const provider_ops local_ops = {
    .name = "local",
    .search = lp_search,
    .provision = lp_provision,
    .get = lp_get,
    .status = lp_status,
    .destroy = lp_destroy,
    .restore = lp_restore,
    .snapshot = lp_snapshot,
    .start_workload = lp_start_workload,
    .preempt = lp_preempt,
    .close = lp_close,
};

int local_open(const prov_config *cfg, const provider_ops **ret_ops, void **ret_st, char *err,
               size_t errlen)
{
    lprov *lp = calloc(1, sizeof *lp);
    int rc = 0;
    if (!lp)
        return dm_fail(err, errlen, -ENOMEM, "local: out of memory");
    char root[PATH_MAX + 16];
    if (strlen(cfg->home) > PATH_MAX - 256) {
        free(lp);
        return dm_fail(err, errlen, DM_E_INVALID, "local: home path too long");
    }
    snprintf(root, sizeof root, "%s/instances", cfg->home);
    if ((rc = fs_mkdir_p(root, 0700)) != 0 || !realpath(cfg->home, lp->home)) {
        rc = dm_fail(err, errlen, rc ? rc : -errno, "local: %s: %s", root,
                     strerror(rc ? -rc : errno));
        free(lp);
        return rc;
    }
    snprintf(lp->root, sizeof lp->root, "%.*s/instances", PATH_MAX - 16, lp->home);
    if (geteuid() == 0 && (rc = make_wsroot(lp)) != 0) { /* PROV-LP6 */
        char q[PATH_MAX + 8];
        log_warn("provider.local.workspaces_in_home",
                 "error=\"%s\" detail=\"/var/lib/dumont/workspaces cannot be made: workspaces stay "
                 "under %s, where a workload user may not reach them\"",
                 strerror(-rc), log_quote(q, sizeof q, lp->root));
        lp->wsroot[0] = '\0';
        rc = 0;
    }
    if (cfg->market_path)
        snprintf(lp->market, sizeof lp->market, "%s", cfg->market_path);
    else
        snprintf(lp->market, sizeof lp->market, "%.*s/market.json", PATH_MAX - 16, lp->home);
    if (!cfg->dumont_bin && !realpath("/proc/self/exe", lp->bin)) {
        rc = dm_fail(err, errlen, -errno, "local: /proc/self/exe: %s", strerror(errno));
        free(lp);
        return rc;
    }
    if (cfg->dumont_bin && !realpath(cfg->dumont_bin, lp->bin)) { /* execve needs a path */
        rc = dm_fail(err, errlen, -errno, "local: dumont binary %s: %s", cfg->dumont_bin,
                     strerror(errno));
        free(lp);
        return rc;
    }
    lp->delay_ms = cfg->provision_delay_ms > 0 ? cfg->provision_delay_ms : 0;
    lp->lease_ms = cfg->lease_ms > 0 ? cfg->lease_ms : 0;
    lp->channel = cfg->channel;
    pthread_mutex_init(&lp->lock, NULL);
    pthread_cond_init(&lp->freed, NULL);
    *ret_ops = &local_ops;
    *ret_st = lp;
    return 0;
}

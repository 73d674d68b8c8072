/* `dumont snapshot ...`: snapshots of a directory, straight against a store
 * (no server), as restic does. Each subcommand parses and checks its
 * arguments, opens the store, calls one function of snapshot.h, prints.
 *
 * Arguments are split by subcmd.h, as for `dumont failover`: flags (--json,
 * --help, --force, --store URL) may stand anywhere; `key=value` words go
 * through kv_parse() (a word with '=' that starts with '/' or '.', or comes
 * after "--", is a path: SUBCMD_F_PATHS); the other words are positional
 * and counted per subcommand.
 *
 * CLI-S1: exit status 0 success, 1 failure (one line "dumont: <reason>" on
 *     stderr), 2 usage error (the reason, then the usage, on stderr). --help
 *     prints the usage on stdout and exits 0.
 * CLI-S2: the store is --store URL, else cfg->store (DUMONT_STORE, default
 *     file://$DUMONT_HOME/store). It is opened only after the arguments
 *     were checked: a usage error never creates a store.
 * CLI-S3: `create` and `import` print the new snapshot id alone on the first
 *     line of stdout (`id=$(dumont snapshot create ws)` works); --json
 *     prints one JSON object {snapshot_id, ...} instead.
 * CLI-S4: progress is drawn on stderr only when stderr is a terminal, at most
 *     every PROGRESS_MS, and erased before anything else is printed; the
 *     progress callback may come from several threads (trylock).
 * CLI-S5: `export` never writes binary to a terminal: it refuses when stdout
 *     is a tty, before opening the store; `import -` likewise refuses a
 *     terminal on stdin rather than wait for typed bytes.
 * CLI-S7: a snapshot id may be given by a unique prefix (as restic and git take
 *     one), everywhere an id is taken; an ambiguous one is refused naming the
 *     candidates (snapshot.h snap_resolve).
 * CLI-S6: paths from the store are printed with control bytes escaped (\xNN),
 *     so a file name cannot drive the terminal; JSON gets them UTF-8
 *     scrubbed (utf8_scrub).
 * CLI-S8: `list` marks a damaged manifest (STATE DAMAGED, and why on stderr)
 *     instead of showing it as good; `latest` never resolves to one.
 */
#include "cli/commands.h"
#include "cli/output.h"
#include "cli/subcmd.h"

#include "snapshot/export.h"
#include "snapshot/snapshot.h"
#include "store/store.h"
#include "util/clock.h"
#include "util/error.h"
#include "util/parse.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define PROGRESS_MS       100
#define PROGRESS_QUIET_MS 300
#define EXIT_FAIL         1
#define EXIT_USAGE        2
#define PATH_SHOW         (PATH_MAX * 4 + 1)

typedef struct {
    pthread_mutex_t lock;
    int on, drawn;
    int64_t start_ms, last_ms;
} sn_progress;

typedef struct sn_cmd sn_cmd;

typedef struct {
    subcmd_ctx sc; /* arguments, subcommand (subcmd.h) */
    dm_store *st;
    sn_progress pg;
    snap_opts opts;
    uint64_t nbad;
    json_t *jbad; /* verify/diff --json: collected rows */
} sn_ctx;

struct sn_cmd {
    subcmd sc; /* first: subcmd_set walks the table by it */
    int (*run)(sn_ctx *c);
};

static const char snapshot_usage[] =
    "usage: dumont snapshot <subcommand> [arguments] [--store URL] [--json] [--help]\n"
    "\n"
    "subcommands:\n"
    "  create DIR [tag=T] [threads=N]   snapshot DIR; prints the snapshot id\n"
    "  list                             snapshots, newest first\n"
    "  restore ID DIR [--force]         restore a snapshot into DIR\n"
    "  verify ID                        re-read every byte of every pack it uses\n"
    "  diff ID1 ID2                     what changed between two snapshots\n"
    "  prune keep=N [grace=1h]          keep the newest N per source, free the rest\n"
    "  export ID > FILE.tar.lz4         standard tar in an LZ4 frame, on stdout\n"
    "  import FILE|- [name=NAME]        the reverse, safely (tar, .tar.lz4, .tar.gz)\n"
    "\n"
    "ID may be `latest` (the newest snapshot). The store is --store URL, else\n"
    "$DUMONT_STORE, else file://$DUMONT_HOME/store.\n";

/* ---- output helpers ---------------------------------------------------- */

/* CLI-S6: control bytes and backslashes as \xNN; other bytes as they are. */
static const char *show_path(const char *s, char *buf, size_t cap)
{
    size_t o = 0;
    for (; *s && o + 5 < cap; s++) {
        unsigned char ch = (unsigned char)*s;
        if (ch < 0x20 || ch == 0x7f || ch == '\\')
            o += (size_t)snprintf(buf + o, cap - o, "\\x%02x", ch);
        else
            buf[o++] = (char)ch;
    }
    buf[o] = '\0';
    return buf;
}

/* A JSON string of arbitrary bytes (CLI-S6). */
static json_t *json_path(const char *s)
{
    char *dup = strdup(s);
    if (!dup)
        return NULL;
    utf8_scrub(dup);
    json_t *j = json_string(dup);
    free(dup);
    return j;
}

static void fmt_bytes(uint64_t n, char *buf, size_t len)
{
    static const char *const unit[] = {"B", "KiB", "MiB", "GiB", "TiB"};
    double v = (double)n;
    int u = 0;
    while (v >= 1024 && u < 4) {
        v /= 1024;
        u++;
    }
    if (u == 0)
        snprintf(buf, len, "%llu B", (unsigned long long)n);
    else
        snprintf(buf, len, "%.1f %s", v, unit[u]);
}

static void json_print(json_t *j)
{
    if (j)
        json_dumpf(j, stdout, JSON_INDENT(2) | JSON_ENSURE_ASCII);
    fputc('\n', stdout);
    json_decref(j);
}

static int fail(sn_ctx *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void progress_erase(sn_progress *p);

/* CLI-S1: one line on stderr, exit 1. */
static int fail(sn_ctx *c, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    progress_erase(&c->pg);
    for (char *p = msg; *p; p++)
        if (*p == '\n' || *p == '\r')
            *p = ' ';
    fprintf(stderr, "dumont: %s\n", msg);
    return EXIT_FAIL;
}

#define usage_error(c, ...) subcmd_usage_error(&(c)->sc, __VA_ARGS__)

/* ---- progress (CLI-S4) ----------------------------------------------------- */

static void fmt_eta(double secs, char *buf, size_t len)
{
    if (secs < 0 || secs > 99 * 3600)
        snprintf(buf, len, "-");
    else
        out_duration((int64_t)(secs * 1000), buf, len);
}

static void progress_draw(sn_progress *p, uint64_t done, uint64_t total, int64_t now)
{
    char d[32], t[32], eta[32] = "-";
    double secs = (double)(now - p->start_ms) / 1000.0;
    double rate = secs > 0 ? (double)done / secs : 0;
    fmt_bytes(done, d, sizeof d);
    if (total) {
        fmt_bytes(total, t, sizeof t);
        if (rate > 0 && secs >= 1)
            fmt_eta((double)(total > done ? total - done : 0) / rate, eta, sizeof eta);
        fprintf(stderr, "\r%s / %s (%.0f%%)  %.1f MB/s  ETA %s\033[K", d, t,
                100.0 * (double)done / (double)total, rate / 1e6, eta);
    } else {
        fprintf(stderr, "\r%s  %.1f MB/s\033[K", d, rate / 1e6);
    }
    p->drawn = 1;
}

static void progress_cb(uint64_t done, uint64_t total, void *ctx)
{
    sn_progress *p = ctx;
    if (!p->on || pthread_mutex_trylock(&p->lock) != 0)
        return;
    int64_t now = clock_mono_ms();
    if (now - p->last_ms >= PROGRESS_MS) {
        p->last_ms = now;
        progress_draw(p, done, total, now);
    }
    pthread_mutex_unlock(&p->lock);
}

static void progress_erase(sn_progress *p)
{
    pthread_mutex_lock(&p->lock);
    if (p->drawn) {
        fputs("\r\033[K", stderr);
        fflush(stderr);
        p->drawn = 0;
    }
    pthread_mutex_unlock(&p->lock);
}

static int valid_tag(const char *s)
{
    static const char ok[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-";
    size_t n = strlen(s);
    return n > 0 && strspn(s, ok) == n;
}

/* "latest", or 1 to 64 lowercase hex digits (a whole id or a prefix: CLI-S7). */
static int valid_id(const char *s)
{
    size_t n = strlen(s);
    return strcmp(s, "latest") == 0 || (n > 0 && n <= 64 && strspn(s, "0123456789abcdef") == n);
}

/* ID argument i: checked here; "latest" stays as it is until the store is open. */
static int check_id(const sn_ctx *c, int i)
{
    if (!valid_id(c->sc.a.pos[i]))
        return usage_error(c, "'%s' is not a snapshot id (64 hex digits, a unique prefix of them, "
                              "or latest)",
                           c->sc.a.pos[i]);
    return 0;
}

static int open_store(sn_ctx *c)
{
    char err[512];
    const char *url = c->sc.a.store ? c->sc.a.store : c->sc.cfg->store;
    if (!url || !*url)
        return fail(c, "no store: give --store URL or set DUMONT_STORE");
    if (store_open(url, &c->st, err, sizeof err) != 0)
        return fail(c, "cannot open the store: %s", err);
    return 0;
}

/* "latest" -> the newest snapshot's id, into buf. */
/* "latest", a whole id, or a unique prefix of one (CLI-S7, snap_resolve). */
static int resolve_id(sn_ctx *c, const char *id, char *buf, size_t cap)
{
    char err[1024];
    if (strcmp(id, "latest") != 0) {
        if (snap_resolve(c->st, id, buf, cap, err, sizeof err) != 0)
            return fail(c, "%s", err);
        return 0;
    }
    snap_info *v = NULL;
    size_t n = 0;
    if (snap_list(c->st, &v, &n, err, sizeof err) != 0)
        return fail(c, "%s", err);
    size_t k = 0;
    while (k < n && v[k].problem[0]) /* a damaged manifest is nobody's latest */
        k++;
    int rc = k < n ? 0 : fail(c, n ? "the store holds no undamaged snapshot" : "the store holds no snapshot");
    if (k < n)
        snprintf(buf, cap, "%s", v[k].id);
    free(v);
    return rc;
}

static int int_key(sn_ctx *c, const char *key, int64_t min, int64_t max, int64_t dflt, int64_t *ret)
{
    const char *v = kv_get(&c->sc.a.kv, key);
    *ret = dflt;
    if (v && parse_i64(v, min, max, ret) != 0)
        return usage_error(c, "%s must be a whole number in [%lld, %lld], got '%s'", key,
                           (long long)min, (long long)max, v);
    return 0;
}

static int threads_key(sn_ctx *c)
{
    int64_t t;
    if (int_key(c, "threads", 0, 256, 0, &t) != 0)
        return EXIT_USAGE;
    c->opts.threads = (int)t;
    return 0;
}

/* ---- subcommands ------------------------------------------------------- */

static json_t *info_json(const snap_info *i)
{
    char when[32];
    clock_format_iso(i->time_ms, when, sizeof when);
    json_t *j = json_pack("{s:s, s:s, s:s, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I}", "snapshot_id",
                          i->id, "time", when, "tag", i->tag, "files", (json_int_t)i->files, "dirs",
                          (json_int_t)i->dirs, "symlinks", (json_int_t)i->symlinks, "bytes",
                          (json_int_t)i->bytes, "bytes_new", (json_int_t)i->bytes_new, "stored_new",
                          (json_int_t)i->stored_new, "duration_ms", (json_int_t)i->duration_ms,
                          "time_ms", (json_int_t)i->time_ms);
    if (j) {
        json_object_set_new(j, "source", json_path(i->source));
        json_object_set_new(j, "parent", i->parent[0] ? json_string(i->parent) : json_null());
        json_object_set_new(j, "damaged", json_boolean(i->problem[0] != '\0'));
        if (i->problem[0])
            json_object_set_new(j, "problem", json_string(i->problem));
    }
    return j;
}

/* CLI-S3: the id alone on stdout; a summary on stderr when it is a terminal. */
static void print_created(sn_ctx *c, const snap_info *i)
{
    char b[32], n[32], d[32];
    progress_erase(&c->pg);
    if (c->sc.a.json) {
        json_print(info_json(i));
        return;
    }
    printf("%s\n", i->id);
    if (!isatty(STDERR_FILENO) || c->sc.a.quiet)
        return;
    fmt_bytes(i->bytes, b, sizeof b);
    fmt_bytes(i->stored_new, n, sizeof n);
    out_duration(i->duration_ms, d, sizeof d);
    fprintf(stderr, "%llu files, %s; %s new in the store; %s\n", (unsigned long long)i->files, b, n,
            d);
}

static int run_create(sn_ctx *c)
{
    char err[1024];
    snap_info info;
    const char *tag = kv_get(&c->sc.a.kv, "tag");
    if (tag && (strlen(tag) >= SNAP_TAG_MAX || !valid_tag(tag)))
        return usage_error(c, "tag must be 1-%d characters of [A-Za-z0-9._-]", SNAP_TAG_MAX - 1);
    if (threads_key(c) != 0)
        return EXIT_USAGE;
    c->opts.tag = tag;
    if (open_store(c) != 0)
        return EXIT_FAIL;
    if (snap_create(c->st, c->sc.a.pos[0], &c->opts, &info, err, sizeof err) != 0)
        return fail(c, "%s", err);
    print_created(c, &info);
    return 0;
}

static void list_row(out_table *t, const snap_info *i)
{
    char when[32], files[24], bytes[32], stored[32], src[OUT_CELL_MAX];
    clock_format_iso(i->time_ms, when, sizeof when);
    when[19] = '\0'; /* to the second */
    snprintf(files, sizeof files, "%llu", (unsigned long long)i->files);
    fmt_bytes(i->bytes, bytes, sizeof bytes);
    fmt_bytes(i->stored_new, stored, sizeof stored);
    show_path(i->source, src, sizeof src);
    if (i->problem[0] && !i->time_ms) /* the header is unreadable too */
        snprintf(when, sizeof when, "?");
    const char *cells[] = {i->id, when, src, i->tag[0] ? i->tag : NULL, files, bytes, stored,
                           i->problem[0] ? "DAMAGED" : "ok"};
    out_table_add(t, cells);
}

static int run_list(sn_ctx *c)
{
    static const char *const hdr[] = {"ID",    "TIME",  "SOURCE", "TAG",
                                      "FILES", "BYTES", "STORED", "STATE"};
    char err[1024];
    snap_info *v = NULL;
    size_t n = 0;
    if (open_store(c) != 0)
        return EXIT_FAIL;
    if (snap_list(c->st, &v, &n, err, sizeof err) != 0)
        return fail(c, "%s", err);
    if (c->sc.a.json) {
        json_t *arr = json_array();
        for (size_t i = 0; i < n; i++)
            json_array_append_new(arr, info_json(&v[i]));
        json_print(arr);
    } else {
        out_table *t = out_table_new(8, hdr);
        for (int col = 4; t && col < 7; col++)
            out_table_align_right(t, col);
        for (size_t i = 0; t && i < n; i++)
            list_row(t, &v[i]);
        if (t)
            out_table_print(t, stdout);
        out_table_free(t);
        for (size_t i = 0; i < n; i++) /* CLI-S8: the why of each damaged one */
            if (v[i].problem[0])
                fprintf(stderr, "snapshot %s: %s\n", v[i].id, v[i].problem);
    }
    free(v);
    return 0;
}

static int run_restore(sn_ctx *c)
{
    char err[1024], id[SNAP_ID_MAX];
    if (check_id(c, 0) != 0 || threads_key(c) != 0)
        return EXIT_USAGE;
    if (open_store(c) != 0 || resolve_id(c, c->sc.a.pos[0], id, sizeof id) != 0)
        return EXIT_FAIL;
    if (snap_restore(c->st, id, c->sc.a.pos[1], c->sc.a.force, &c->opts, err, sizeof err) != 0)
        return fail(c, "%s", err);
    progress_erase(&c->pg);
    if (c->sc.a.json)
        json_print(json_pack("{s:s, s:s}", "snapshot_id", id, "restored_to", c->sc.a.pos[1]));
    return 0;
}

static void verify_bad(const char *path, const char *why, void *ctx)
{
    sn_ctx *c = ctx;
    char p[PATH_SHOW];
    c->nbad++;
    if (c->jbad) {
        json_array_append_new(
            c->jbad, json_pack("{s:o, s:s}", "path", json_path(path), "why", why ? why : ""));
        return;
    }
    progress_erase(&c->pg);
    printf("damaged %s: %s\n", show_path(path, p, sizeof p), why ? why : "");
}

static int run_verify(sn_ctx *c)
{
    char err[1024], id[SNAP_ID_MAX];
    uint64_t bad = 0;
    if (check_id(c, 0) != 0 || threads_key(c) != 0)
        return EXIT_USAGE;
    if (open_store(c) != 0 || resolve_id(c, c->sc.a.pos[0], id, sizeof id) != 0)
        return EXIT_FAIL;
    if (c->sc.a.json)
        c->jbad = json_array();
    int rc = snap_verify(c->st, id, &c->opts, verify_bad, c, &bad, err, sizeof err);
    progress_erase(&c->pg);
    if (rc != 0)
        return fail(c, "%s", err);
    if (bad < c->nbad)
        bad = c->nbad;
    if (c->sc.a.json) {
        json_t *j = json_pack("{s:s, s:b, s:I}", "snapshot_id", id, "ok", bad == 0, "damaged",
                              (json_int_t)bad);
        json_object_set(j, "files", c->jbad);
        json_print(j);
    }
    if (bad)
        return fail(c, "snapshot %s: %llu damaged file(s)", id, (unsigned long long)bad);
    if (!c->sc.a.json)
        printf("snapshot %s: ok\n", id);
    return 0;
}

static const char *change_name(snap_change w)
{
    switch (w) {
    case SNAP_ADDED:
        return "added";
    case SNAP_REMOVED:
        return "removed";
    case SNAP_MODIFIED:
        return "modified";
    case SNAP_META:
        return "metadata";
    }
    return "?";
}

static void diff_line(snap_change what, const char *path, void *ctx)
{
    static const char mark[] = {
        [SNAP_ADDED] = '+', [SNAP_REMOVED] = '-', [SNAP_MODIFIED] = 'M', [SNAP_META] = 'U'};
    sn_ctx *c = ctx;
    char p[PATH_SHOW];
    if (c->jbad) {
        json_array_append_new(
            c->jbad, json_pack("{s:s, s:o}", "change", change_name(what), "path", json_path(path)));
        return;
    }
    printf("%c  %s\n", (unsigned)what < sizeof mark ? mark[what] : '?',
           show_path(path, p, sizeof p));
}

static int run_diff(sn_ctx *c)
{
    char err[1024], a[SNAP_ID_MAX], b[SNAP_ID_MAX];
    if (check_id(c, 0) != 0 || check_id(c, 1) != 0)
        return EXIT_USAGE;
    if (open_store(c) != 0 || resolve_id(c, c->sc.a.pos[0], a, sizeof a) != 0 ||
        resolve_id(c, c->sc.a.pos[1], b, sizeof b) != 0)
        return EXIT_FAIL;
    if (c->sc.a.json)
        c->jbad = json_array();
    if (snap_diff(c->st, a, b, diff_line, c, err, sizeof err) != 0)
        return fail(c, "%s", err);
    if (c->sc.a.json) {
        json_print(json_incref(c->jbad));
    }
    return 0;
}

static int run_prune(sn_ctx *c)
{
    char err[1024], freed[32], kept[32];
    int64_t keep, grace = SNAP_PRUNE_GRACE_MS;
    snap_prune_stats ps = {0};
    const char *g = kv_get(&c->sc.a.kv, "grace");
    if (!kv_get(&c->sc.a.kv, "keep"))
        return usage_error(c, "missing keep=N");
    if (int_key(c, "keep", 1, 1000000, 0, &keep) != 0)
        return EXIT_USAGE;
    if (g && parse_duration_ms(g, 0, INT64_C(3650) * 86400000, &grace) != 0)
        return usage_error(c, "grace must be a duration such as 0, 30m, 1h or 7d, got '%s'", g);
    if (open_store(c) != 0)
        return EXIT_FAIL;
    if (snap_prune(c->st, (int)keep, grace, &ps, err, sizeof err) != 0)
        return fail(c, "%s", err);
    if (c->sc.a.json) {
        json_print(json_pack(
            "{s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I}", "snapshots_deleted",
            (json_int_t)ps.snapshots_deleted, "packs_deleted", (json_int_t)ps.packs_deleted,
            "packs_rewritten", (json_int_t)ps.packs_rewritten, "bytes_freed",
            (json_int_t)ps.bytes_freed, "unreferenced_packs_deleted",
            (json_int_t)ps.orphans_deleted, "unreferenced_packs_kept", (json_int_t)ps.orphans_kept,
            "unreferenced_bytes_kept", (json_int_t)ps.orphan_bytes_kept, "temp_files_deleted",
            (json_int_t)ps.temp_deleted, "damaged_snapshots", (json_int_t)ps.snapshots_damaged));
        return 0;
    }
    fmt_bytes(ps.bytes_freed, freed, sizeof freed);
    printf("%llu snapshot(s) deleted, %llu pack(s) deleted (%llu unreferenced), %llu rewritten, "
           "%llu temp file(s) deleted, %s freed\n",
           (unsigned long long)ps.snapshots_deleted, (unsigned long long)ps.packs_deleted,
           (unsigned long long)ps.orphans_deleted, (unsigned long long)ps.packs_rewritten,
           (unsigned long long)ps.temp_deleted, freed);
    if (ps.orphans_kept) {
        fmt_bytes(ps.orphan_bytes_kept, kept, sizeof kept);
        printf("kept %llu unreferenced pack(s), %s, written within the grace (%s): a snapshot "
               "being written may still need them; they go on a later prune\n",
               (unsigned long long)ps.orphans_kept, kept, g ? g : "1h");
    }
    if (ps.snapshots_damaged)
        printf("%llu damaged snapshot(s) left as they are (see `dumont snapshot list`)\n",
               (unsigned long long)ps.snapshots_damaged);
    return 0;
}

static int run_export(sn_ctx *c)
{
    char err[1024], id[SNAP_ID_MAX];
    if (check_id(c, 0) != 0 || threads_key(c) != 0)
        return EXIT_USAGE;
    if (isatty(STDOUT_FILENO)) /* CLI-S5 */
        return fail(c, "refusing to write a binary archive to a terminal; redirect stdout "
                       "(dumont snapshot export ID > ws.tar.lz4)");
    if (open_store(c) != 0 || resolve_id(c, c->sc.a.pos[0], id, sizeof id) != 0)
        return EXIT_FAIL;
    fflush(stdout);
    if (snap_export(c->st, id, STDOUT_FILENO, &c->opts, err, sizeof err) != 0)
        return fail(c, "%s", err);
    progress_erase(&c->pg);
    return 0;
}

static int import_limits(sn_ctx *c, snap_import_limits *lim)
{
    int64_t v;
    snap_import_limits_init(lim);
    if (int_key(c, "max_bytes", 1, INT64_MAX, (int64_t)lim->max_bytes, &v) != 0)
        return EXIT_USAGE;
    lim->max_bytes = (uint64_t)v;
    if (int_key(c, "max_entries", 1, 100000000, (int64_t)lim->max_entries, &v) != 0)
        return EXIT_USAGE;
    lim->max_entries = (uint64_t)v;
    lim->tmp_dir = kv_get(&c->sc.a.kv, "tmp");
    return threads_key(c);
}

static int run_import(sn_ctx *c)
{
    char err[1024];
    snap_info info;
    snap_import_limits lim;
    const char *file = c->sc.a.pos[0], *name = kv_get(&c->sc.a.kv, "name");
    int stdin_in = strcmp(file, "-") == 0, fd = STDIN_FILENO, rc = EXIT_FAIL;
    if (import_limits(c, &lim) != 0)
        return EXIT_USAGE;
    if (!name)
        name = stdin_in ? "stdin" : file;
    if (stdin_in && isatty(STDIN_FILENO))
        return fail(c, "refusing to read an archive from a terminal; redirect stdin");
    if (!stdin_in && (fd = open(file, O_RDONLY | O_CLOEXEC)) < 0)
        return fail(c, "cannot open '%s': %s", file, strerror(errno));
    if (open_store(c) != 0)
        goto out;
    if (snap_import_ex(c->st, fd, name, &c->opts, &lim, &info, err, sizeof err) != 0) {
        rc = fail(c, "import of '%s': %s", stdin_in ? "stdin" : file, err);
        goto out;
    }
    print_created(c, &info);
    rc = 0;
out:
    if (!stdin_in)
        close(fd);
    return rc;
}

/* ---- the table and the entry point ------------------------------------ */

static const char *const k_create[] = {"tag", "threads", NULL};
static const char *const k_none[] = {NULL};
static const char *const k_threads[] = {"threads", NULL};
static const char *const k_prune[] = {"keep", "grace", NULL};
static const char *const k_import[] = {"name", "threads", "max_bytes", "max_entries", "tmp", NULL};

static const sn_cmd commands[] = {
    {{"create",
      "usage: dumont snapshot create DIR [tag=T] [threads=N] [--store URL] [--json]\n"
      "\nSnapshots DIR (incremental against its latest snapshot) and prints the new\n"
      "snapshot id on stdout. --json prints {snapshot_id, parent, source, files, ...}.\n",
      k_create, 1, 1, 0},
     run_create},
    {{"list",
      "usage: dumont snapshot list [--store URL] [--json]\n"
      "\nSnapshots, newest first: id, time, source, tag, files, bytes, bytes the\n"
      "snapshot added to the store, and STATE: `ok`, or `DAMAGED` for a manifest\n"
      "that does not match its id or cannot be read (why: on stderr; --json:\n"
      "damaged, problem). Each manifest is read whole and checked.\n",
      k_none, 0, 0, 0},
     run_list},
    {{"restore",
      "usage: dumont snapshot restore ID DIR [--force] [threads=N] [--store URL]\n"
      "\nRestores snapshot ID (or `latest`) into DIR, which must not exist or be empty;\n"
      "--force replaces it. Every chunk is verified first: on failure DIR is left\n"
      "as it was.\n",
      k_threads, 2, 2, SUBCMD_F_FORCE},
     run_restore},
    {{"verify",
      "usage: dumont snapshot verify ID [threads=N] [--store URL] [--json]\n"
      "\nReads every pack that holds a chunk of snapshot ID and checks every byte of\n"
      "it: each chunk against its id, the pack's header and trailer against the\n"
      "pack's id. Prints each damaged file (a file whose pack is damaged anywhere\n"
      "counts); exits 1 when there is one.\n",
      k_threads, 1, 1, 0},
     run_verify},
    {{"diff",
      "usage: dumont snapshot diff ID1 ID2 [--store URL] [--json]\n"
      "\nOne line per changed path: '+' added, '-' removed, 'M' content, 'U' metadata.\n",
      k_none, 2, 2, 0},
     run_diff},
    {{"prune",
      "usage: dumont snapshot prune keep=N [grace=DURATION] [--store URL] [--json]\n"
      "\nKeeps the newest N (>= 1) snapshots of each source, deletes the others and\n"
      "the data no kept snapshot uses. Then deletes packs that no index names (left\n"
      "by a create that was killed or failed) and the store's temp files, when they\n"
      "were written more than grace ago (default 1h; grace=0: all of them). Refuses\n"
      "to run while a snapshot create holds the store (a lock in the store, seen\n"
      "by creates on every machine); a create waits for a running prune. Damaged\n"
      "snapshots are left as they are. Prints what it freed.\n",
      k_prune, 0, 0, 0},
     run_prune},
    {{"export",
      "usage: dumont snapshot export ID [threads=N] [--store URL] > FILE.tar.lz4\n"
      "\nWrites snapshot ID as a standard tar inside an LZ4 frame on stdout, readable\n"
      "by `lz4 -dc FILE.tar.lz4 | tar -x`. Refuses to write to a terminal.\n",
      k_threads, 1, 1, 0},
     run_export},
    {{"import",
      "usage: dumont snapshot import FILE|- [name=NAME] [max_bytes=N] [max_entries=N]\n"
      "                              [tmp=DIR] [threads=N] [--store URL] [--json]\n"
      "\nMakes a snapshot of a tar archive (plain, .lz4, .gz, ...; `-` reads stdin) and\n"
      "prints its id. Refuses absolute paths, '..', symlinks that leave the tree,\n"
      "hard links to unknown files and device files; caps the total size\n"
      "(max_bytes, default 64 GiB) and the entry count (max_entries, default 1000000).\n",
      k_import, 1, 1, 0},
     run_import},
};

static const subcmd_set snapshot_set = {
    .prog = "snapshot",
    .usage = snapshot_usage,
    .flags = SUBCMD_F_FORCE | SUBCMD_F_STORE | SUBCMD_F_PATHS,
    .cmds = commands,
    .ncmds = sizeof commands / sizeof commands[0],
    .stride = sizeof commands[0],
};

static void ctx_init(sn_ctx *c)
{
    pthread_mutex_init(&c->pg.lock, NULL);
    c->pg.on = isatty(STDERR_FILENO);
    c->pg.start_ms = clock_mono_ms();
    c->pg.last_ms = c->pg.start_ms + PROGRESS_QUIET_MS - PROGRESS_MS; /* quick runs draw nothing */
    snap_opts_init(&c->opts);
    c->opts.progress = progress_cb;
    c->opts.progress_ctx = &c->pg;
}

int cmd_snapshot(dm_config *cfg, int argc, char **argv)
{
    sn_ctx c;
    memset(&c, 0, sizeof c);
    ctx_init(&c);
    int rc = subcmd_start(&c.sc, &snapshot_set, cfg, argc, argv);
    if (c.sc.a.quiet) /* CLI-SC4 */
        c.pg.on = 0;
    if (rc == SUBCMD_RUN) {
        rc = ((const sn_cmd *)c.sc.cmd)->run(&c);
        if (fflush(stdout) != 0 && rc == 0)
            rc = fail(&c, "cannot write the output");
    }
    progress_erase(&c.pg);
    json_decref(c.jbad);
    subcmd_done(&c.sc);
    store_close(c.st);
    pthread_mutex_destroy(&c.pg.lock);
    return rc;
}

/* The process metrics every Prometheus client library exports (the names of
 * its "process" collector), read from /proc/self at each scrape (process.h).
 *
 * MX-PM1: a value /proc does not give (another kernel, a read error) is left
 *      at its last value, never made up. */
#include "metrics/process.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

static double boot_time_s(void)
{
    FILE *f = fopen("/proc/stat", "re");
    char line[256];
    double bt = -1;
    while (f && fgets(line, sizeof line, f))
        if (strncmp(line, "btime ", 6) == 0) {
            bt = strtod(line + 6, NULL);
            break;
        }
    if (f)
        fclose(f);
    return bt;
}

/* utime, stime (ticks), starttime (ticks since boot), vsize (bytes), rss (pages). */
static int read_stat(double *cpu_s, double *start_ticks, double *vsize, double *rss_pages)
{
    char buf[1024];
    FILE *f = fopen("/proc/self/stat", "re");
    size_t n = f ? fread(buf, 1, sizeof buf - 1, f) : 0;
    if (f)
        fclose(f);
    buf[n] = '\0';
    char *p = strrchr(buf, ')'); /* the command name may hold spaces */
    if (!p)
        return -1;
    /* Fields from 3 (state) on; utime is 14, stime 15, starttime 22, vsize 23, rss 24. */
    double v[25] = {0};
    int field = 3;
    for (char *tok = p + 2; *tok && field <= 24; field++) {
        v[field] = strtod(tok, NULL);
        tok = strchr(tok, ' ');
        if (!tok)
            break;
        tok++;
    }
    if (field < 24)
        return -1;
    long hz = sysconf(_SC_CLK_TCK);
    *cpu_s = (v[14] + v[15]) / (double)(hz > 0 ? hz : 100);
    *start_ticks = v[22] / (double)(hz > 0 ? hz : 100);
    *vsize = v[23];
    *rss_pages = v[24];
    return 0;
}

static int open_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    int n = 0;
    if (!d)
        return -1;
    while (readdir(d))
        n++;
    closedir(d);
    return n - 3; /* ".", "..", and the directory's own descriptor */
}

static void collect(mx_registry *r, void *ctx)
{
    (void)ctx;
    double cpu, start, vsize, rss;
    if (read_stat(&cpu, &start, &vsize, &rss) == 0) { /* MX-PM1 */
        mx_set(r, "process_cpu_seconds_total", NULL, cpu);
        mx_set(r, "process_virtual_memory_bytes", NULL, vsize);
        mx_set(r, "process_resident_memory_bytes", NULL, rss * (double)sysconf(_SC_PAGESIZE));
        double bt = boot_time_s();
        if (bt > 0)
            mx_set(r, "process_start_time_seconds", NULL, bt + start);
    }
    int fds = open_fds();
    if (fds >= 0)
        mx_set(r, "process_open_fds", NULL, fds);
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY)
        mx_set(r, "process_max_fds", NULL, (double)rl.rlim_cur);
}

int mx_process_declare(mx_registry *r)
{
    static const struct {
        const char *name;
        mx_type type;
        const char *help;
    } fams[] = {
        {"process_cpu_seconds_total", MX_COUNTER,
         "Total user and system CPU time spent in seconds."},
        {"process_resident_memory_bytes", MX_GAUGE, "Resident memory size in bytes."},
        {"process_virtual_memory_bytes", MX_GAUGE, "Virtual memory size in bytes."},
        {"process_start_time_seconds", MX_GAUGE,
         "Start time of the process since unix epoch in seconds."},
        {"process_open_fds", MX_GAUGE, "Number of open file descriptors."},
        {"process_max_fds", MX_GAUGE, "Maximum number of open file descriptors."},
    };
    for (size_t i = 0; i < sizeof fams / sizeof fams[0]; i++) {
        int rc = mx_declare(r, fams[i].name, fams[i].type, fams[i].help, NULL, NULL, 0);
        if (rc)
            return rc;
    }
    return mx_add_collector(r, collect, NULL);
}

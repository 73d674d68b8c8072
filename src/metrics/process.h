/* Process metrics (process_cpu_seconds_total, process_resident_memory_bytes,
 * process_virtual_memory_bytes, process_start_time_seconds,
 * process_open_fds, process_max_fds), as Prometheus's client libraries
 * name them, read from /proc/self when scraped. */
#ifndef DUMONT_METRICS_PROCESS_H
#define DUMONT_METRICS_PROCESS_H

#include "metrics/metrics.h"

/* Declares the families and adds their collector. 0 or a DM_E_* code. */
int mx_process_declare(mx_registry *r);

#endif

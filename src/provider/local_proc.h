/* Processes of local instances (local_proc.c): finding and killing them
 * through /proc (local.h PROV-LP2, PROV-LP4) and launching an instance's agent
 * detached, in its own session (PROV-LP5: the credential only in a 0600 file).
 * Only local.c uses this. */
#ifndef DUMONT_PROVIDER_LOCAL_PROC_H
#define DUMONT_PROVIDER_LOCAL_PROC_H

#include "provider/provider.h"

#include <stddef.h>
#include <stdint.h>

/* State letter, session id and start time (clock ticks) of pid from
 * /proc/PID/stat; -ESRCH when it cannot be read. */
int lproc_stat(int pid, char *ret_state, int *ret_sid, unsigned long long *ret_start);
/* PROV-LP2/LP4: SIGKILLs the processes of session sid and those marked with
 * DUMONT_HOME=<dir>/home until none is left: 0, or DM_E_BUSY after
 * LOCAL_FENCE_MS (id is for the message). */
int lproc_fence(const char *dir, int sid, int64_t id, char *err, size_t errlen);
/* A loopback TCP port free at the time of the call, or -errno. */
int lproc_free_port(void);
/* Starts `bin agent ...` for l (docs/provider.md has the command line and
 * environment) in dir, detached (double fork, setsid), stdout/stderr to
 * dir/agent.log; *ret_pid is the agent's pid, *ret_sid its session. */
int lproc_launch(const char *bin, const char *dir, const prov_launch *l, int port, int *ret_pid,
                 int *ret_sid, char *err, size_t errlen);

#endif

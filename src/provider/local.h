/* The `local` provider: real instances on this machine (docs/provider.md).
 *
 * An instance is $home/instances/<id>/ holding workspace/, instance.json,
 * agent.log, home/ (the agent's own DUMONT_HOME) and
 * metadata/computeMetadata/v1/instance/preempted, plus a session (setsid)
 * running `dumont agent`, detached from the server (double fork).
 *
 * PROV-LP1: instance.json is written atomically, once before the agent is started
 *      (state "starting": the intent) and once after (pid, sid, start time),
 *      so a crash between the two is seen and cleaned up by the next
 *      provision or destroy (the processes are then found by LP2's marker).
 * PROV-LP2: a process belongs to an instance when its environment holds the
 *      instance's marker DUMONT_HOME=<dir>/home (set for the agent, inherited
 *      by its workload: it also finds a process that left the session with
 *      setsid), or when its session id (field 6 of /proc/PID/stat) is the
 *      instance's sid and a marked process was seen in that session (pid
 *      numbers are reused: a recorded sid alone may name a stranger's
 *      session); zombies count as gone. A user's shell that merely has its
 *      working directory in the instance is not touched.
 * PROV-LP3: the agent is "alive" when its pid exists, is not a zombie, and has
 *      the recorded sid and start time (so a reused pid is not mistaken for
 *      it).
 * PROV-LP4: destroy kills (SIGKILL) every process of PROV-LP2 until none is left or
 *      LOCAL_FENCE_MS pass, then renames the directory to
 *      instances/<id>.destroyed-<wall ms> and removes its workspace, keeping
 *      instance.json and agent.log for post-mortems.
 * PROV-LP5: the agent's credential is written to <dir>/agent.token (0600) and
 *      named by --token-file (PROV-PV6); argv, the environment, instance.json
 *      and logs never hold it.
 * PROV-LP6: when the server runs as root, workspaces live outside $home (which
 *      is private, and often under /root): in
 *      /var/lib/dumont/workspaces/<12 hex of the home's SHA-256>/<id>, each
 *      parent 0711 (entered, never listed), so the agent can hand the
 *      workspace to the workload's own user (workload.h AG-S6);
 *      <dir>/workspace is a symlink to it. Otherwise (not root, or that
 *      directory cannot be made) the workspace is <dir>/workspace.
 * PROV-LP7: PROV-PV3 here: an id with no instances/<id> is confirmed gone when an
 *      instances/<id>.destroyed-* record of LP4 is there (this provider
 *      destroyed it), and is DM_E_NOT_FOUND otherwise: never made by this
 *      provider (another controller's, or another home's), so not fenced. A
 *      provision that fails leaves no record (its processes are fenced and its
 *      directory removed), so its id is "never made" too. */
#ifndef DUMONT_PROVIDER_LOCAL_H
#define DUMONT_PROVIDER_LOCAL_H

#include "provider/provider.h"

#include <stddef.h>

#define LOCAL_FENCE_MS 2000

/* Opens the local provider (provider.c calls it): *ret_ops and *ret_st are
 * the vtable and its state (freed by ops->close). */
int local_open(const prov_config *cfg, const provider_ops **ret_ops, void **ret_st, char *err,
               size_t errlen);

#endif

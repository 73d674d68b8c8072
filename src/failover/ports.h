/* The ports of real failovers: how the real runner (real.c, real_fleet.c)
 * reaches what it does not own, so that a test can hand it stand-ins.
 *
 *   liveness, probes, the detector's events   fo_real_ports (here)
 *   the provider                              dm_provider, a vtable
 *                                             (provider.h; provider_from_ops
 *                                             makes one of a test's functions)
 *   persistence                               dm_db, whose back end is a
 *                                             vtable (db/db_backend.h)
 *
 * fo_ports_listener() builds the production ports: the heartbeat listener
 * (detect/listener.h) and the probe runner (agent/probe.h). They are handed
 * to fo_orch_attach (fo_real_env.ports), which copies them.
 *
 * ORCH-P1: a port function that is NULL means "nothing known": live_get answers
 *     DM_E_UNAVAILABLE, probe HB_PR_PENDING, subscribe and fence do nothing. The
 *     runner never calls through a NULL pointer (no listener: no instance is
 *     ever healthy, its waits end at their timeouts). */
#ifndef DUMONT_FAILOVER_PORTS_H
#define DUMONT_FAILOVER_PORTS_H

#include "detect/listener.h"

#include <stdint.h>

#define FO_LEASE_MARGIN_MS 5000 /* ORCH-R7: beyond the agent's lease, for clock rates */

typedef struct fo_real_ports {
    /* The live view of an instance; DM_E_NOT_FOUND when it is not known. */
    int (*live_get)(void *cls, int64_t instance_id, hbl_live *ret);
    /* Calls fn(ev, ctx) for every published instance change (ORCH-O5), from the
     * publisher's thread; DM_E_TOO_BIG past the publisher's cap. */
    int (*subscribe)(void *cls, hbl_event_fn fn, void *ctx);
    /* One probe of spec run by the controller; first: the first call's
     * longer timeout (prb_run_once). */
    hb_probe (*probe)(void *cls, const char *spec, int first);
    /* The instance's machine is marked destroyed: it never registers or
     * heartbeats again (listener.h HB-L13). */
    void (*fence)(void *cls, int64_t instance_id);
    /* ORCH-R7, the fence's second confirmation: 1 when the instance's agent has
     * certainly stopped its workload by itself, because it has heard nothing
     * from this controller for longer than its lease plus FO_LEASE_MARGIN_MS
     * (the agent's self-fencing lease over the control channel); *ret_silent_ms
     * how long. 0 when that is not known. NULL: the control channel's view of
     * the lease (provider/channel.h chan_lease_expired, PROV-CH6) is asked;
     * without a channel only the provider confirms. */
    int (*lease_expired)(void *cls, int64_t instance_id, int64_t *ret_silent_ms);
    void *cls;
} fo_real_ports;

/* The production ports on listener s (NULL: no liveness, no events; the
 * probes still run). */
void fo_ports_listener(hbl_server *s, fo_real_ports *ret);

#endif

/* The production ports of real failovers (ports.h): the heartbeat listener
 * and the controller's probe runner. */
#include "failover/ports.h"

#include "agent/probe.h"

#include <string.h>

static int live_get(void *cls, int64_t instance_id, hbl_live *ret)
{
    return hbl_live_get(cls, instance_id, ret);
}

static int subscribe(void *cls, hbl_event_fn fn, void *ctx)
{
    return hbl_subscribe(cls, fn, ctx);
}

static void fence(void *cls, int64_t instance_id)
{
    hbl_fence(cls, instance_id);
}

static hb_probe probe(void *cls, const char *spec, int first)
{
    (void)cls;
    return prb_run_once(spec, first);
}

void fo_ports_listener(hbl_server *s, fo_real_ports *ret)
{
    memset(ret, 0, sizeof *ret);
    ret->live_get = s ? live_get : NULL; /* ORCH-P1 */
    ret->subscribe = s ? subscribe : NULL;
    ret->fence = s ? fence : NULL;
    ret->probe = probe;
    ret->cls = s;
}

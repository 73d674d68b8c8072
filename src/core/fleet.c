/* Names of the fleet's states (fleet.h). The names are what the database
 * stores and the API shows: never change one, only add. */
#include "core/fleet.h"

#include "util/parse.h"

static const char *const wl_names[DM_WL_STATE_COUNT] = {
    "launching", "running", "failing_over", "failed", "stopped",
};
static const char *const mach_names[DM_MACH_STATE_COUNT] = {"provisioning", "running", "destroyed"};

const char *dm_wl_state_name(dm_wl_state s)
{
    return name_of(wl_names, DM_WL_STATE_COUNT, (int)s);
}

int dm_wl_state_parse(const char *s, dm_wl_state *ret)
{
    int i, rc = parse_name(s, wl_names, DM_WL_STATE_COUNT, &i);
    if (rc == 0)
        *ret = (dm_wl_state)i;
    return rc;
}

const char *dm_mach_state_name(dm_mach_state s)
{
    return name_of(mach_names, DM_MACH_STATE_COUNT, (int)s);
}

int dm_mach_state_parse(const char *s, dm_mach_state *ret)
{
    int i, rc = parse_name(s, mach_names, DM_MACH_STATE_COUNT, &i);
    if (rc == 0)
        *ret = (dm_mach_state)i;
    return rc;
}

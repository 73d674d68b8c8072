/* Names of the fleet's states (fleet.h). The names are what the database
 * stores and the API shows: never change one, only add. */
#include "core/fleet.h"

#include "util/error.h"
#include "util/parse.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

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

/* FLEET-W2: the names a placeholder goes by (the program word, any case). */
static const char *const placeholders[] = {
    "command", "cmd", "your_command", "your-command", "your_cmd", "workload",
    "program", "your_program", "todo", "xxx", "placeholder", NULL,
};

/* 1 when the word (n bytes) is an ellipsis: '.' and U+2026 only, at least
 * "..." or one "…" ("." and ".." are paths). */
static int only_dots(const char *w, size_t n)
{
    int dots = 0;
    for (size_t i = 0; i < n;) {
        if (w[i] == '.')
            i++, dots++;
        else if (n - i >= 3 && memcmp(w + i, "\xe2\x80\xa6", 3) == 0)
            i += 3, dots += 3;
        else
            return 0;
    }
    return dots >= 3;
}

int dm_workload_cmd_check(const char *cmd, char *err, size_t errlen)
{
    const char *p = cmd ? cmd : "";
    while (*p == ' ' || *p == '\t' || *p == '\'' || *p == '"')
        p++;
    if (!*p)
        return dm_fail(err, errlen, DM_E_INVALID,
                       "workload: the command is empty (give the program the instance runs, "
                       "e.g. workload=\"ollama serve\")");
    size_t n = strcspn(p, " \t'\""), all = strlen(p);
    while (all > 0 && strchr(" \t'\"", p[all - 1]))
        all--;
    if (p[0] == '<' && p[all - 1] == '>') /* "<your command>" */
        return dm_fail(err, errlen, DM_E_INVALID,
                       "workload: '%.*s' is a placeholder, not a command (give the program the "
                       "instance runs, e.g. workload=\"ollama serve\")",
                       (int)(all > 64 ? 64 : all), p);
    for (const char *w = p; *w;) { /* every word: dots only, or <...> */
        size_t wn = strcspn(w, " \t");
        if (only_dots(w, wn) || (wn >= 2 && w[0] == '<' && w[wn - 1] == '>'))
            return dm_fail(err, errlen, DM_E_INVALID,
                           "workload: '%.*s' is a placeholder, not a command (give the program "
                           "the instance runs, e.g. workload=\"ollama serve\")",
                           (int)(wn > 64 ? 64 : wn), w);
        w += wn;
        while (*w == ' ' || *w == '\t')
            w++;
    }
    for (const char *const *ph = placeholders; *ph; ph++)
        if (strlen(*ph) == n && strncasecmp(p, *ph, n) == 0)
            return dm_fail(err, errlen, DM_E_INVALID,
                           "workload: '%.*s' is a placeholder, not a command (give the program "
                           "the instance runs, e.g. workload=\"ollama serve\")",
                           (int)n, p);
    return 0;
}

int dm_exit_codes_check(const char *codes, char *err, size_t errlen)
{
    int n = 0;
    for (const char *p = codes ? codes : ""; *p;) {
        char *end = NULL;
        long v = (*p >= '0' && *p <= '9') ? strtol(p, &end, 10) : -1;
        if (v < 1 || v > 255 || (*end && *end != ',') || ++n > 16)
            return dm_fail(err, errlen, DM_E_INVALID,
                           "error_exit_codes: up to 16 exit codes from 1 to 255, comma-separated "
                           "(e.g. 1,2), got '%.64s'",
                           codes);
        p = *end ? end + 1 : end;
        if (*end && !*p)
            return dm_fail(err, errlen, DM_E_INVALID, "error_exit_codes: a trailing comma");
    }
    return 0;
}

int dm_exit_codes_has(const char *codes, int code)
{
    for (const char *p = codes ? codes : ""; *p;) {
        char *end = NULL;
        long v = strtol(p, &end, 10);
        if (end == p)
            return 0;
        if (v == code)
            return 1;
        p = *end ? end + 1 : end;
    }
    return 0;
}

/* Workload failures (docs/failover.md "Workload failures"): what a crash loop
 * the agent reports (agent/wl_report.h) means, and what is done about it.
 * A failover rents a new GPU; it is the answer to a lost or faulty host,
 * never to a workload that fails by itself (a missing program, a typo, an
 * exit the user marked as its own error).
 *
 * ORCH-W1: a crash loop of a workload that was never healthy on its instance,
 *      or whose exit code is one of its error_exit_codes, is the workload's
 *      own failure: it was restarted in place max_restarts_on_errors times by
 *      the agent, and the workload becomes `failed` with the reason and its
 *      last output lines (workloads.failure). No instance is rented; the
 *      instance is kept for inspection.
 * ORCH-W2: a workload that was healthy and then crash-loops was restarted in
 *      place first (the agent's restarts); a failover follows only when the
 *      agent's host checks say the host is at fault, and the workload is
 *      protected. Otherwise it is ORCH-W1's failure.
 * ORCH-W3: during a failover, a crash loop on the failover's new instance is
 *      recorded for the runner (real_phases.c inference): a workload failure
 *      ends the failover without another offer; a host fault lets it try the
 *      next offer (ORCH-O8).
 * ORCH-W4: a crash loop seen in heartbeats with no report decided (the report
 *      was lost) fails the workload as ORCH-W1 does, with that said: no
 *      GPU is ever rented for a crash loop without the agent's host report.
 *      Preemptions and silent (dead) hosts always fail over (real.c). */
#include "failover/real_internal.h"

#include "util/error.h"
#include "util/log.h"

#include <stdio.h>
#include <string.h>

static void say(char *out, size_t cap, const char *s)
{
    if (out && cap)
        snprintf(out, cap, "%s", s);
}

/* What ended the last run: "exit code 3", "signal 9". */
static void cause_of(const fo_wl_exit *x, char *out, size_t cap)
{
    if (x->exit_code >= 0)
        snprintf(out, cap, "exit code %d", x->exit_code);
    else if (x->signal >= 0)
        snprintf(out, cap, "signal %d", x->signal);
    else
        snprintf(out, cap, "an exit");
}

/* ORCH-W1, ORCH-W2: the reason; *ret_own 1 for the workload's own failure. */
static void judge(const dm_workload *w, int64_t id, const fo_wl_exit *x, int *ret_own, char *out,
                  size_t cap)
{
    char cause[48];
    cause_of(x, cause, sizeof cause);
    int code_own = x->exit_code > 0 && dm_exit_codes_has(w->error_exit_codes, x->exit_code);
    *ret_own = 1;
    if (code_own)
        snprintf(out, cap,
                 "the workload exited with code %d on instance %lld, which error_exit_codes "
                 "marks as its own error (restarted in place %lld times)",
                 x->exit_code, (long long)id, (long long)x->restarts);
    else if (!x->ever_healthy)
        snprintf(out, cap,
                 "the workload never became healthy on instance %lld: it crash-looped (%s, "
                 "restarted in place %lld times)",
                 (long long)id, cause, (long long)x->restarts);
    else if (x->host_fault) {
        *ret_own = 0;
        snprintf(out, cap, "the host of instance %lld looks at fault: %.300s", (long long)id,
                 x->host_check ? x->host_check : "its agent says so");
    } else
        snprintf(out, cap,
                 "the workload crash-looped on instance %lld (%s) after %lld restarts in place; "
                 "%.200s",
                 (long long)id, cause, (long long)x->restarts,
                 x->host_check ? x->host_check : "the host passed its checks");
}

/* The failure text: the reason, then the last lines (FLEET_FAILURE_MAX). */
static void failure_text(const char *reason, const char *output, char *out, size_t cap)
{
    if (output && *output)
        snprintf(out, cap, "%s\nlast output:\n%s", reason, output);
    else
        snprintf(out, cap, "%s (it wrote no output)", reason);
}

static int fail_workload(fo_orch *o, const dm_workload *w, const char *failure, int set_failed,
                         char *err, size_t errlen)
{
    char e2[256] = "", q[600];
    int rc = db_workload_set_failure(o->db, w->workload_id, failure, set_failed, e2, sizeof e2);
    if (rc)
        return dm_fail(err, errlen, rc, "%s", e2);
    if (set_failed)
        log_error("workload.failed", "workload_id=%s reason=%s", w->workload_id,
                  log_quote(q, sizeof q, failure));
    return 0;
}

int fo_orch_workload_exit(fo_orch *o, int64_t instance_id, const fo_wl_exit *x, char *verdict,
                          size_t vlen, char *err, size_t errlen)
{
    fo_real_kind *k = fo_real_of(o, err, errlen);
    if (!k)
        return DM_E_UNAVAILABLE;
    dm_machine m;
    dm_workload w;
    int rc = db_machine_get(o->db, instance_id, &m, err, errlen);
    if (rc)
        return rc;
    log_warn("workload.crashed",
             "instance_id=%lld exit_code=%d signal=%d ran_ms=%lld restarts=%lld gave_up=%d "
             "ever_healthy=%d host_fault=%d",
             (long long)instance_id, x->exit_code, x->signal, (long long)x->ran_ms,
             (long long)x->restarts, x->gave_up, x->ever_healthy, x->host_fault);
    say(verdict, vlen, "noted");
    say(err, errlen, "");
    if (m.state == DM_MACH_DESTROYED || !m.workload_id[0] || m.test) {
        say(verdict, vlen, "ignored");
        return 0;
    }
    if (!x->gave_up)
        return 0; /* restarted in place by the agent */
    if ((rc = db_workload_get(o->db, m.workload_id, &w, err, errlen)) != 0)
        return rc;
    int own;
    char reason[600], failure[FLEET_FAILURE_MAX];
    judge(&w, instance_id, x, &own, reason, sizeof reason);
    failure_text(reason, x->output, failure, sizeof failure);
    say(err, errlen, reason);
    if (w.serving_instance_id == instance_id && w.state == DM_WL_RUNNING) {
        if (!own && w.protect) { /* ORCH-W2 */
            say(verdict, vlen, "failover");
            fo_failover f;
            char e2[256] = "";
            rc = fo_orch_failover_detected(o, instance_id, "crashlooping", 0, &f, e2, sizeof e2);
            return rc == DM_E_CONFLICT ? 0 : rc ? dm_fail(err, errlen, rc, "%s", e2) : 0;
        }
        say(verdict, vlen, "workload_failed"); /* ORCH-W1 */
        return fail_workload(o, &w, failure, 1, err, errlen);
    }
    if (w.state == DM_WL_FAILING_OVER && m.failover_id[0]) { /* ORCH-W3 */
        if (!own) {
            say(verdict, vlen, "failover_attempt");
            return 0;
        }
        say(verdict, vlen, "workload_failed");
        return fail_workload(o, &w, failure, 0, err, errlen);
    }
    return 0;
}

/* ORCH-W4 (called by real.c for a heartbeat's `crashlooping`). */
void fo_real_crashloop_unreported(fo_real_kind *k, int64_t instance_id)
{
    fo_orch *o = k->orch;
    dm_workload w;
    char err[256] = "", failure[400];
    if (db_workload_by_serving(o->db, instance_id, &w, err, sizeof err) != 0 ||
        w.state != DM_WL_RUNNING)
        return; /* decided already (a report came), or nothing serves */
    snprintf(failure, sizeof failure,
             "the workload crash-looped on instance %lld and its agent's crash report did not "
             "arrive (see the instance's agent.log); no other GPU is tried without it",
             (long long)instance_id);
    if (fail_workload(o, &w, failure, 1, err, sizeof err) != 0) {
        char q[300];
        log_error("workload.fail_not_saved", "workload_id=%s error=%s", w.workload_id,
                  log_quote(q, sizeof q, err));
    }
}

/* JSON renderings (see render.h). FO_NULL and NAN become JSON null (FO-I2). */
#include "api/render.h"

#include "util/clock.h"

#include <math.h>

static json_t *int_or_null(int64_t v)
{
    return v == FO_NULL ? json_null() : json_integer(v);
}

static json_t *str_or_null(const char *s)
{
    return s && *s ? json_string(s) : json_null();
}

json_t *render_time(int64_t wall_ms)
{
    if (wall_ms == FO_NULL)
        return json_null();
    char buf[32];
    clock_format_iso(wall_ms, buf, sizeof buf);
    return json_string(buf);
}

/* API-RD2: a phase's (or run's) start as its offset from the failover's start:
 * a real failover's from its recorded start (one clock, FO-I6); a simulated
 * one's is the sum of the simulated durations before it (its wall-clock
 * starts are the sped-up play, not the simulated times). null: not started. */
static json_t *offset_of(const fo_failover *f, int64_t at_ms, int64_t sim_sum)
{
    if (at_ms == FO_NULL || f->started_at_ms == FO_NULL)
        return json_null();
    return json_integer(
        (json_int_t)(f->kind == FO_KIND_SIMULATED ? sim_sum : at_ms - f->started_at_ms));
}

/* The seven phases: each one's first start and its duration summed over its
 * runs (FO-I5). */
static json_t *render_phases(const fo_failover *f)
{
    json_t *arr = json_array();
    int64_t sum = 0;
    for (int i = 0; i < FO_PHASE_COUNT && arr; i++) {
        const fo_phase_rec *p = &f->phases[i];
        int runs = 0;
        for (int k = 0; k < f->n_runs; k++)
            runs += f->runs[k].phase == i;
        json_array_append_new(
            arr, json_pack("{s:s, s:s, s:o, s:o, s:o, s:b, s:o, s:i}", "phase",
                           fo_phase_name((fo_phase)i), "status", fo_phase_status_name(p->status),
                           "started_at", render_time(p->started_at_ms), "offset_ms",
                           offset_of(f, p->started_at_ms, sum), "duration_ms",
                           int_or_null(p->duration_ms), "simulated", p->simulated, "detail",
                           str_or_null(p->detail), "runs", runs));
        if (p->duration_ms != FO_NULL)
            sum += p->duration_ms;
    }
    return arr;
}

/* FO-I5: every run of a phase, in order, with the attempt it belongs to. */
static json_t *render_runs(const fo_failover *f)
{
    json_t *arr = json_array();
    int64_t sum = 0;
    for (int i = 0; i < f->n_runs && arr; i++) {
        const fo_phase_run *r = &f->runs[i];
        json_array_append_new(
            arr, json_pack("{s:s, s:i, s:s, s:o, s:o, s:o, s:o}", "phase",
                           fo_phase_name((fo_phase)r->phase), "attempt", r->attempt, "status",
                           fo_phase_status_name(r->status), "started_at",
                           render_time(r->started_at_ms), "offset_ms",
                           offset_of(f, r->started_at_ms, sum), "duration_ms",
                           int_or_null(r->duration_ms), "detail", str_or_null(r->detail)));
        if (r->duration_ms != FO_NULL)
            sum += r->duration_ms;
    }
    return arr;
}

static json_t *bool_or_null(int v)
{
    return v == FO_NULL ? json_null() : json_boolean(v);
}

static int64_t phase_ms(const fo_failover *f, fo_phase p)
{
    return f->phases[p].duration_ms;
}

/* The snapshot and inference fields, shared by a real failover's JSON and the
 * FailoverTestEvent (same names, so the dashboard reads either). */
static void add_snapshot_inference(json_t *o, const fo_failover *f)
{
    const fo_real *r = &f->real;
    json_object_set_new(o, "snapshot_id", str_or_null(r->snapshot_id));
    json_object_set_new(o, "snapshot_size_bytes", int_or_null(r->snapshot_size_bytes));
    json_object_set_new(o, "snapshot_creation_time_ms", int_or_null(r->snapshot_creation_time_ms));
    json_object_set_new(o, "snapshot_compression", str_or_null(r->snapshot_compression));
    json_object_set_new(o, "snapshot_storage", str_or_null(r->snapshot_storage));
    json_object_set_new(o, "snapshot_storage_url", str_or_null(r->snapshot_storage_url));
    json_object_set_new(o, "restore_time_ms", int_or_null(phase_ms(f, FO_PHASE_RESTORE)));
    json_object_set_new(o, "restore_download_time_ms", int_or_null(r->restore_download_time_ms));
    json_object_set_new(o, "restore_decompress_time_ms",
                        int_or_null(r->restore_decompress_time_ms));
    json_object_set_new(o, "restore_source", str_or_null(r->restore_source));
    json_object_set_new(o, "inference_model", str_or_null(r->inference_model));
    json_object_set_new(o, "inference_ready_time_ms", int_or_null(r->inference_ready_time_ms));
    json_object_set_new(o, "inference_success", bool_or_null(r->inference_success));
}

/* A real failover's instances and intent (core/failover.h fo_real). */
static void add_real(json_t *o, const fo_failover *f)
{
    const fo_real *r = &f->real;
    json_object_set_new(o, "old_instance_id", json_integer((json_int_t)f->gpu_instance_id));
    json_object_set_new(o, "new_instance_id",
                        r->new_instance_id > 0 ? json_integer((json_int_t)r->new_instance_id)
                                               : json_null());
    json_object_set_new(o, "workload_id", str_or_null(r->workload_id));
    json_object_set_new(o, "trigger", str_or_null(r->trigger));
    json_object_set_new(o, "test", json_boolean(r->test));
    json_object_set_new(o, "keep", json_boolean(r->keep));
    json_object_set_new(o, "attempts", r->attempts < 0 ? json_null() : json_integer(r->attempts));
    json_object_set_new(o, "epoch", int_or_null(r->epoch));
    add_snapshot_inference(o, f);
}

json_t *render_test_event(const fo_failover *f)
{
    json_t *o = json_pack("{s:s, s:I, s:o}", "failover_id", f->id, "gpu_instance_id",
                          (json_int_t)f->gpu_instance_id, "user_id", str_or_null(f->user_id));
    if (!o)
        return NULL;
    add_snapshot_inference(o, f);
    json_object_set_new(o, "total_time_ms", int_or_null(f->total_time_ms));
    json_object_set_new(o, "controller_down_ms", json_integer((json_int_t)f->controller_down_ms));
    json_object_set_new(o, "success", bool_or_null(f->success));
    json_object_set_new(o, "gpu_search_time_ms", int_or_null(phase_ms(f, FO_PHASE_GPU_SEARCH)));
    json_object_set_new(o, "gpu_provision_time_ms",
                        int_or_null(phase_ms(f, FO_PHASE_PROVISIONING)));
    json_object_set_new(o, "gpu_ready_wait_time_ms", int_or_null(phase_ms(f, FO_PHASE_SSH_READY)));
    json_object_set_new(o, "inference_test_time_ms", int_or_null(phase_ms(f, FO_PHASE_INFERENCE)));
    return o;
}

json_t *render_snapshot_rec(const dm_snapshot *s)
{
    if (!s)
        return json_null();
    json_t *o =
        json_pack("{s:s, s:I, s:o, s:o, s:o, s:o, s:o, s:o}", "snapshot_id", s->snapshot_id,
                  "instance_id", (json_int_t)s->instance_id, "workload_id",
                  str_or_null(s->workload_id), "epoch", int_or_null(s->epoch), "store",
                  str_or_null(s->store_url), "size_bytes", int_or_null(s->size_bytes),
                  "stored_bytes", int_or_null(s->stored_bytes), "files", int_or_null(s->files));
    if (!o)
        return NULL;
    json_object_set_new(o, "created_at_ms", int_or_null(s->created_at_ms));
    json_object_set_new(o, "created_at", render_time(s->created_at_ms));
    json_object_set_new(o, "creation_time_ms", int_or_null(s->creation_time_ms));
    json_object_set_new(o, "reported_at_ms", int_or_null(s->reported_at_ms));
    json_object_set_new(o, "reported_at", render_time(s->reported_at_ms));
    json_object_set_new(o, "trigger", str_or_null(s->trigger));
    json_object_set_new(o, "seq", json_integer((json_int_t)s->seq));
    return o;
}

json_t *render_workload(const dm_workload *w, const dm_snapshot *newest)
{
    json_t *o = json_pack(
        "{s:s, s:s, s:b, s:s, s:o, s:I, s:o, s:o, s:o, s:o, s:o, s:I, s:I}", "workload_id",
        w->workload_id, "name", w->name, "protect", w->protect, "state", dm_wl_state_name(w->state),
        "serving_instance_id",
        w->serving_instance_id > 0 ? json_integer((json_int_t)w->serving_instance_id) : json_null(),
        "epoch", (json_int_t)w->epoch, "workload_cmd", str_or_null(w->workload_cmd), "probe_spec",
        str_or_null(w->probe_spec), "model", str_or_null(w->model), "created_at",
        render_time(w->created_at_ms), "workspace_from", str_or_null(w->workspace_from),
        "heartbeat_ms", (json_int_t)w->heartbeat_ms, "snapshot_every_ms",
        (json_int_t)w->snapshot_every_ms);
    if (!o)
        return NULL;
    json_error_t jerr;
    json_t *req = w->requirements[0] ? json_loads(w->requirements, 0, &jerr) : NULL;
    json_object_set_new(o, "requirements", req ? req : json_object());
    json_object_set_new(o, "newest_snapshot", render_snapshot_rec(newest));
    json_object_set_new(o, "max_restarts_on_errors", json_integer(w->max_restarts_on_errors));
    json_object_set_new(o, "error_exit_codes", str_or_null(w->error_exit_codes));
    json_object_set_new(o, "host_check", str_or_null(w->host_check));
    json_object_set_new(o, "failure", str_or_null(w->failure)); /* FLEET-W1 */
    /* the failover budget (failover/budget.c): its settings, and why it flaps */
    json_object_set_new(o, "max_failovers",
                        json_integer(w->max_failovers > 0 ? w->max_failovers
                                                          : FLEET_BUDGET_MAX_DEFAULT));
    json_object_set_new(o, "failover_window_ms",
                        json_integer(w->failover_window_ms > 0 ? w->failover_window_ms
                                                               : FLEET_BUDGET_WINDOW_DEFAULT));
    json_object_set_new(o, "flapping", json_boolean(w->flapping_reason[0] != '\0'));
    json_object_set_new(o, "flapping_reason", str_or_null(w->flapping_reason));
    json_object_set_new(o, "flapping_since", render_time(w->flapping_since_ms));
    json_object_set_new(o, "next_failover_not_before", render_time(w->failover_hold_until_ms));
    return o;
}

json_t *render_failover(const fo_failover *f, int with_phases)
{
    int running = !fo_state_is_terminal(f->state);
    json_t *o = json_pack("{s:s, s:I, s:s, s:s, s:o, s:o, s:o, s:o, s:o, s:o}", "failover_id",
                          f->id, "gpu_instance_id", (json_int_t)f->gpu_instance_id, "kind",
                          fo_kind_name(f->kind), "state", fo_state_name(f->state), "current_phase",
                          running ? json_string(fo_state_name(f->state)) : json_null(), "success",
                          f->success == FO_NULL ? json_null() : json_boolean(f->success), "reason",
                          str_or_null(f->reason), "started_at", render_time(f->started_at_ms),
                          "finished_at", render_time(f->finished_at_ms), "total_time_ms",
                          int_or_null(f->total_time_ms));
    if (o && f->user_id[0])
        json_object_set_new(o, "user_id", json_string(f->user_id));
    if (o) {
        json_object_set_new(o, "controller_down_ms",
                            json_integer((json_int_t)f->controller_down_ms));
        json_object_set_new(o, "attempt", json_integer(f->attempt));
    }
    if (o && f->kind == FO_KIND_REAL)
        add_real(o, f);
    if (o && with_phases) {
        json_object_set_new(o, "phases", render_phases(f));
        json_object_set_new(o, "phase_runs", render_runs(f));
    }
    return o;
}

static json_t *render_stat(const fo_stat *s)
{
    return json_pack("{s:I, s:o, s:o, s:o, s:o}", "count", (json_int_t)s->count, "mean",
                     isnan(s->mean) ? json_null() : json_integer((json_int_t)llround(s->mean)),
                     "p50",
                     int_or_null(s->p50), "p95", int_or_null(s->p95), "max", int_or_null(s->max));
}

static json_t *render_group(const fo_report_group *g)
{
    json_t *phases = json_object();
    for (int i = 0; i < FO_PHASE_COUNT && phases; i++)
        json_object_set_new(phases, fo_phase_name((fo_phase)i), render_stat(&g->phase[i]));
    return json_pack("{s:I, s:I, s:I, s:I, s:o, s:o, s:o}", "total", (json_int_t)g->total,
                     "succeeded", (json_int_t)g->succeeded, "failed", (json_int_t)g->failed,
                     "running", (json_int_t)g->running, "success_rate",
                     isnan(g->success_rate) ? json_null()
                                            : json_real(round(g->success_rate * 1e4) / 1e4),
                     "mttr_ms", render_stat(&g->mttr), "phases", phases);
}

json_t *render_report(const fo_report *r, int64_t generated_at_ms)
{
    return json_pack("{s:o, s:o, s:o, s:o}", "generated_at", render_time(generated_at_ms), "all",
                     render_group(&r->all), "simulated", render_group(&r->simulated), "real",
                     render_group(&r->real));
}

json_t *render_assoc(const fo_assoc *a)
{
    return json_pack("{s:I, s:s, s:s, s:o, s:o}", "gpu_instance_id", (json_int_t)a->gpu_instance_id,
                     "standby_id", a->standby_id, "provider", a->provider, "gcp_zone",
                     str_or_null(a->gcp_zone), "created_at", render_time(a->created_at_ms));
}

/* JSON renderings (see render.h). FO_NULL and NAN become JSON null (I2). */
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

static json_t *render_phases(const fo_failover *f)
{
    json_t *arr = json_array();
    int64_t offset = 0;
    for (int i = 0; i < FO_PHASE_COUNT && arr; i++) {
        const fo_phase_rec *p = &f->phases[i];
        int started = p->status != FO_PHASE_PENDING;
        json_array_append_new(
            arr, json_pack("{s:s, s:s, s:o, s:o, s:o, s:b, s:o}", "phase",
                           fo_phase_name((fo_phase)i), "status", fo_phase_status_name(p->status),
                           "started_at", render_time(p->started_at_ms), "offset_ms",
                           started ? json_integer(offset) : json_null(), "duration_ms",
                           int_or_null(p->duration_ms), "simulated", p->simulated, "detail",
                           str_or_null(p->detail)));
        if (p->duration_ms != FO_NULL)
            offset += p->duration_ms;
    }
    return arr;
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
    if (o && with_phases)
        json_object_set_new(o, "phases", render_phases(f));
    return o;
}

static json_t *render_stat(const fo_stat *s)
{
    return json_pack("{s:I, s:o, s:o, s:o, s:o}", "count", (json_int_t)s->count, "mean",
                     isnan(s->mean) ? json_null() : json_real(round(s->mean * 10) / 10), "p50",
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

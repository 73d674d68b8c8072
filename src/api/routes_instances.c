/* Instance endpoints (see routes_instances.h for API-R1 to API-R2).
 *
 * The database holds what is durable (registration, the last recorded state
 * and its history); the listener holds what changes every heartbeat (age,
 * phi, sequence). An answer merges both: the live state wins when the
 * listener knows the instance, as it is never older than the database's.
 *
 * An instance a provider made (issue 6) also has a machine row (db_fleet.h):
 * its provider, workload, workspace, address and epoch are added, with the
 * newest failover of it and its newest snapshot. A machine that is destroyed
 * shows state "destroyed" whatever the detector last saw (it was fenced);
 * one still provisioning (no agent registered yet) shows "provisioning".
 *
 * API-RI1: the list answers every instance the detector knows and every machine
 *      not yet registered, each once; the fleet fields are null for an
 *      instance no provider made (a hand-started agent). A destroyed machine is
 *      left out unless the query says all=true.
 * API-RI2: a destroyed machine shows state "destroyed" and no live field (clear_live). */
#include "api/routes_instances.h"

#include "api/render.h"
#include "db/db_fleet.h"
#include "db/db_instance.h"
#include "detect/listener.h"
#include "util/clock.h"
#include "util/error.h"
#include "util/parse.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define EVENTS_SHOWN 50

static int reg_fields(json_t *o, hbl_reg *r, api_response *resp)
{
    json_t *id = json_object_get(o, "instance_id");
    if (!json_is_integer(id) || json_integer_value(id) < 1 || json_integer_value(id) > HB_ID_MAX)
        return api_error(resp, 400, "bad_request", "'instance_id' %s: an integer from 1 to %lld",
                         id ? "is out of range" : "is required", (long long)HB_ID_MAX),
               -1;
    r->instance_id = json_integer_value(id);
    if (api_text_field(o, "kind", 16, &r->kind, resp) ||
        api_text_field(o, "workload", DM_INST_TEXT_MAX, &r->workload_cmd, resp) ||
        api_text_field(o, "probe", DM_INST_TEXT_MAX, &r->probe_spec, resp) ||
        api_text_field(o, "hostname", 128, &r->hostname, resp))
        return -1;
    if (r->kind && strcmp(r->kind, "gpu") != 0 && strcmp(r->kind, "cpu") != 0)
        return api_error(resp, 400, "bad_request", "'kind' must be gpu or cpu"), -1;
    return 0;
}

int api_h_instance_register(const api_ctx *ctx, const api_request *req, api_response *resp)
{
    static const char *const allowed[] = {"instance_id", "kind",     "workload",
                                          "probe",       "hostname", NULL};
    json_t *o;
    if (!ctx->detect) /* R2 */
        return api_error(resp, 503, "unavailable", "the heartbeat listener is not running");
    if (!ctx->secrets_ok) /* server.h API-S4: the answer carries the heartbeat key */
        return api_error(resp, 403, "tls_required",
                         "heartbeat keys are handed out only over TLS, or to a server listening "
                         "on a loopback address; start the server with --tls-cert and --tls-key");
    if (api_body_object(req, resp, allowed, &o))
        return 0;
    hbl_reg r = {0};
    char key[HB_KEY_HEX_LEN + 1], err[512] = "";
    int rc = reg_fields(o, &r, resp) ? 1 : 0;
    if (rc == 0)
        rc = hbl_register(ctx->detect, &r, key, err, sizeof err);
    json_t *b = NULL; /* r's strings point into o: answer before releasing it */
    if (rc == 0)
        b = json_pack("{s:I, s:s, s:s, s:i, s:s}", "instance_id", (json_int_t)r.instance_id, "kind",
                      r.kind ? r.kind : "gpu", "key", key, "heartbeat_port", hbl_port(ctx->detect),
                      "state", "pending");
    json_decref(o);
    explicit_bzero(key, sizeof key);
    if (rc == 1)
        return 0;
    if (rc)
        return api_error_from(resp, rc, err);
    return api_json(resp, 201, b);
}

static json_t *int_or_null(int64_t v)
{
    return v < 0 ? json_null() : json_integer(v);
}

static json_t *str_or_null(const char *s)
{
    return s && *s ? json_string(s) : json_null();
}

/* Live fields over the database's (API-R2: null when the listener does not know it). */
static void add_live(json_t *o, const api_ctx *ctx, const dm_instance *in)
{
    hbl_live l;
    int live = ctx->detect && hbl_live_get(ctx->detect, in->instance_id, &l) == 0;
    int64_t last =
        live && l.last_heartbeat_wall_ms >= 0 ? l.last_heartbeat_wall_ms : in->last_heartbeat_ms;
    json_object_set_new(o, "state", json_string(live ? det_state_name(l.state) : in->state));
    json_object_set_new(o, "last_heartbeat", render_time(last < 0 ? DM_NULL : last));
    json_object_set_new(o, "last_heartbeat_age_ms",
                        last < 0 ? json_null() : json_integer(clock_wall_ms() - last));
    json_object_set_new(o, "phi",
                        live ? json_real(round(fmin(l.phi, 1e6) * 100) / 100) : json_null());
    json_object_set_new(o, "seq", live ? json_integer((json_int_t)l.seq) : json_null());
    json_object_set_new(o, "heartbeats", live ? json_integer((json_int_t)l.accepted) : json_null());
    json_object_set_new(o, "workload",
                        str_or_null(live ? hb_workload_name(l.workload) : in->workload));
    json_object_set_new(o, "probe", str_or_null(live ? hb_probe_name(l.probe) : in->probe));
    json_object_set_new(o, "restarts", live ? json_integer(l.restarts) : json_null());
    json_object_set_new(o, "preempting", json_boolean(live && l.preempting));
    json_object_set_new(o, "intake", /* listener.h HB-L9 */
                        !live               ? json_null()
                        : l.conviction_held ? json_string("lossy: conviction held")
                        : l.intake_lossy    ? json_string("lossy")
                                            : json_string("ok"));
}

/* API-RI2: a destroyed machine runs nothing: what its agent last said (workload
 * running, probe ok, phi) is history, not its state, and is shown as null. */
static void clear_live(json_t *o)
{
    static const char *const live[] = {"last_heartbeat_age_ms", "phi", "seq", "heartbeats",
                                       "workload", "probe", "restarts", "intake", NULL};
    for (const char *const *k = live; *k; k++)
        json_object_set_new(o, *k, json_null());
    json_object_set_new(o, "preempting", json_false());
}

/* The newest failover of an instance (it was the old one), else the one that
 * made it; NULL when none. */
static json_t *latest_failover(const api_ctx *ctx, int64_t id, const dm_machine *m)
{
    db_failover_filter flt;
    fo_failover *f = NULL;
    size_t n = 0;
    char err[256];
    db_failover_filter_init(&flt);
    flt.gpu_instance_id = id;
    flt.limit = 1;
    json_t *r = NULL;
    if (db_failover_list(ctx->db, &flt, &f, &n, err, sizeof err) == 0 && n > 0)
        r = json_string(f[0].id);
    free(f);
    if (!r && m && m->failover_id[0])
        r = json_string(m->failover_id);
    return r ? r : json_null();
}

/* The machine's fields (API-RI1: null without one) and the newest snapshot. */
static void add_fleet(json_t *o, const api_ctx *ctx, int64_t id, const dm_machine *m)
{
    dm_snapshot snap;
    char err[256];
    int have_snap = db_snapshot_latest_instance(ctx->db, id, &snap, err, sizeof err) == 0;
    json_object_set_new(o, "provider", str_or_null(m ? m->provider : NULL));
    json_object_set_new(o, "workload_id", str_or_null(m ? m->workload_id : NULL));
    json_object_set_new(o, "machine_state", str_or_null(m ? dm_mach_state_name(m->state) : NULL));
    json_object_set_new(o, "workspace", str_or_null(m ? m->workspace : NULL));
    json_object_set_new(o, "address", str_or_null(m ? m->address : NULL));
    json_object_set_new(o, "epoch", m && m->epoch >= 0 ? json_integer(m->epoch) : json_null());
    json_object_set_new(o, "host", str_or_null(m ? m->host : NULL));
    json_object_set_new(o, "gpu_name", str_or_null(m ? m->gpu_name : NULL));
    json_object_set_new(o, "price_per_h",
                        m && m->price_milli >= 0 ? json_real((double)m->price_milli / 1000.0)
                                                 : json_null());
    json_object_set_new(o, "test", json_boolean(m && m->test));
    json_object_set_new(o, "created_by_failover_id", str_or_null(m ? m->failover_id : NULL));
    json_object_set_new(o, "destroyed_at", render_time(m ? m->destroyed_at_ms : DM_NULL));
    json_object_set_new(o, "failover_id", latest_failover(ctx, id, m));
    json_object_set_new(o, "newest_snapshot_id",
                        have_snap ? json_string(snap.snapshot_id) : json_null());
    json_object_set_new(o, "newest_snapshot", render_snapshot_rec(have_snap ? &snap : NULL));
    dm_workload w; /* FLEET-W1: the workload's state, and why it failed */
    int have_w = m && m->workload_id[0] &&
                 db_workload_get(ctx->db, m->workload_id, &w, err, sizeof err) == 0;
    json_object_set_new(o, "workload_state",
                        have_w ? json_string(dm_wl_state_name(w.state)) : json_null());
    json_object_set_new(o, "workload_failure", str_or_null(have_w ? w.failure : NULL));
    json_object_set_new(o, "workload_flapping", /* failover/budget.c */
                        str_or_null(have_w && w.flapping_reason[0] ? w.flapping_reason : NULL));
    if (m && (m->state == DM_MACH_DESTROYED || !json_is_string(json_object_get(o, "state"))))
        json_object_set_new(o, "state", json_string(dm_mach_state_name(m->state)));
    if (m && m->state == DM_MACH_DESTROYED)
        clear_live(o);
}

/* in or m may be NULL (not both): a machine not registered yet has no in. */
static json_t *render_instance(const api_ctx *ctx, const dm_instance *in, const dm_machine *m)
{
    json_t *o;
    if (in) {
        o = json_pack(
            "{s:I, s:s, s:o, s:o, s:o, s:o, s:o}", "instance_id", (json_int_t)in->instance_id,
            "kind", in->kind, "state_since", render_time(in->state_since_ms), "registered_at",
            render_time(in->registered_at_ms), "workload_cmd", str_or_null(in->workload_cmd),
            "probe_spec", str_or_null(in->probe_spec), "hostname", str_or_null(in->hostname));
        if (o)
            add_live(o, ctx, in);
    } else {
        o = json_pack("{s:I, s:o, s:n, s:n, s:n, s:n, s:n, s:n, s:n}", "instance_id",
                      (json_int_t)m->instance_id, "created_at", render_time(m->created_at_ms),
                      "kind", "state_since", "registered_at", "last_heartbeat",
                      "last_heartbeat_age_ms", "workload", "probe", "hostname");
    }
    if (o)
        add_fleet(o, ctx, in ? in->instance_id : m->instance_id, m);
    return o;
}

/* The machine with that id in v (sorted by id, db_machine_list), or NULL. */
static const dm_machine *find_machine(const dm_machine *v, size_t n, int64_t id)
{
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (v[mid].instance_id == id)
            return &v[mid];
        if (v[mid].instance_id < id)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

static json_t *render_stats(const api_ctx *ctx)
{
    if (!ctx->detect)
        return json_null();
    hbl_stats st;
    hbl_stats_get(ctx->detect, &st);
    json_t *dropped = json_object();
    for (int i = 1; i < HB_REASON_COUNT && dropped; i++)
        json_object_set_new(dropped, hb_reason_name((hb_reason)i),
                            json_integer((json_int_t)st.dropped[i]));
    return json_pack("{s:i, s:I, s:I, s:o, s:I, s:I, s:I, s:I, s:b}", "port", hbl_port(ctx->detect),
                     "received", (json_int_t)st.received, "accepted", (json_int_t)st.accepted,
                     "dropped", dropped ? dropped : json_null(), "state_changes",
                     (json_int_t)st.events, "state_changes_lost", (json_int_t)st.events_lost,
                     "kernel_drops", (json_int_t)st.kernel_drops, "lagging_ticks",
                     (json_int_t)st.lagging, "intake_lossy", st.intake_lossy);
}

static int cmp_machine(const void *a, const void *b)
{
    int64_t x = ((const dm_machine *)a)->instance_id, y = ((const dm_machine *)b)->instance_id;
    return (x > y) - (x < y);
}

int api_h_instance_list(const api_ctx *ctx, const api_request *req, api_response *resp)
{
    dm_instance *v = NULL;
    dm_machine *m = NULL;
    size_t n = 0, nm = 0, total = 0;
    char err[512] = "";
    const char *qa = req->query ? req->query(req->conn, "all") : NULL;
    int all = 0;
    if (qa && parse_bool(qa, &all) != 0)
        return api_error(resp, 400, "bad_request", "'all' must be true or false");
    int rc = db_instance_list(ctx->db, &v, &n, err, sizeof err);
    if (rc == 0)
        rc = db_machine_list(ctx->db, NULL, &m, &nm, err, sizeof err);
    if (rc) {
        free(v);
        return api_error_from(resp, rc, err);
    }
    if (nm > 1)
        qsort(m, nm, sizeof *m, cmp_machine);
    json_t *arr = json_array();
    for (size_t i = 0; i < n && arr; i++) {
        const dm_machine *mi = find_machine(m, nm, v[i].instance_id);
        if (!all && mi && mi->state == DM_MACH_DESTROYED) /* API-RI1 */
            continue;
        json_array_append_new(arr, render_instance(ctx, &v[i], mi));
        total++;
    }
    for (size_t i = 0; i < nm && arr; i++) { /* API-RI1: machines no agent registered yet */
        int known = 0;
        for (size_t k = 0; k < n && !known; k++)
            known = v[k].instance_id == m[i].instance_id;
        if (!known && (all || m[i].state != DM_MACH_DESTROYED)) {
            json_array_append_new(arr, render_instance(ctx, NULL, &m[i]));
            total++;
        }
    }
    free(v);
    free(m);
    return api_json(resp, 200,
                    arr ? json_pack("{s:I, s:o, s:o}", "total", (json_int_t)total, "instances", arr,
                                    "heartbeats", render_stats(ctx))
                        : NULL);
}

static json_t *render_event(const dm_instance_event *e)
{
    return json_pack("{s:o, s:s, s:s, s:s, s:s, s:o, s:o}", "at", render_time(e->at_ms), "what",
                     e->what, "from", e->from, "to", e->to, "reason", e->reason, "silent_ms",
                     int_or_null(e->silent_ms), "phi",
                     e->phi_milli < 0 ? json_null() : json_real(e->phi_milli / 1000.0));
}

int api_h_instance_get(const api_ctx *ctx, const api_request *req, api_response *resp)
{
    int64_t id;
    if (parse_i64(req->segs[2], 1, HB_ID_MAX, &id) != 0)
        return api_error(resp, 400, "bad_request", "instance id must be an integer from 1 to %lld",
                         (long long)HB_ID_MAX);
    dm_instance in;
    dm_machine m;
    dm_instance_event *ev = NULL;
    size_t n = 0;
    char err[512] = "";
    int rc = db_instance_get(ctx->db, id, &in, err, sizeof err), have_in = rc == 0;
    int mrc = db_machine_get(ctx->db, id, &m, err, sizeof err), have_m = mrc == 0;
    if (mrc && mrc != DM_E_NOT_FOUND)
        rc = mrc;
    else if (rc == DM_E_NOT_FOUND && have_m)
        rc = 0; /* provisioning: no agent registered yet */
    if (rc == 0 && have_in)
        rc = db_instance_events(ctx->db, id, EVENTS_SHOWN, &ev, &n, err, sizeof err);
    if (rc == DM_E_NOT_FOUND)
        return api_error(resp, 404, "not_found", "no instance '%lld'", (long long)id);
    if (rc)
        return api_error_from(resp, rc, err);
    json_t *o = render_instance(ctx, have_in ? &in : NULL, have_m ? &m : NULL), *arr = json_array();
    for (size_t i = 0; i < n && arr; i++)
        json_array_append_new(arr, render_event(&ev[i]));
    free(ev);
    if (o && arr)
        json_object_set_new(o, "events", arr);
    else
        json_decref(arr);
    return api_json(resp, 200, o && arr ? o : (json_decref(o), NULL));
}

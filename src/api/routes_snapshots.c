/* Snapshot reports (see routes_snapshots.h).
 *
 * The body comes from an agent, which is untrusted: every field is checked
 * for its type and range before anything is recorded.
 *
 * API-RS1: a report missing a field, with an unknown one, a string outside its
 *      alphabet or length, or a number outside 0 .. 2^53 is 400 and nothing
 *      is written.
 * API-RS2: the decision to record or refuse, once the snapshot is known to be
 *      in the store (API-RS3), is db_snapshot_record's alone (FLEET-F3, one
 *      transaction): 201 recorded (or already recorded, same id), 409
 *      refused (a fenced instance, an epoch that is not current), 404 an
 *      instance nobody knows.
 * API-RS3: the store is configuration, not input (orchestrator.h ORCH-O10 to ORCH-O11): a
 *      report names a snapshot id; `store`, when present, must name the
 *      server's store (else 422 foreign_store); the id must be a snapshot
 *      whose manifest reads back from that store (else 422
 *      unknown_snapshot, nothing written). The record holds the server's
 *      store URL and the manifest's size, files and times; the reporter's
 *      numbers are checked (API-RS1) and then ignored.
 * API-RS4: every report is counted for the metrics (api/metrics.h), accepted
 *      when it answers 201, refused otherwise. */
#include "api/routes_snapshots.h"

#include "api/metrics.h"
#include "api/metrics.h"
#include "api/render.h"
#include "db/db_fleet.h"
#include "core/failover.h"
#include "failover/orchestrator.h"
#include "util/error.h"
#include "util/parse.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NUM_MAX  ((int64_t)1 << 53) /* JSON numbers beyond it lose precision */
#define LIST_DEF 50
#define LIST_MAX 1000
#define ID_CHARS "0123456789abcdefABCDEFghijklmnopqrstuvwxyzGHIJKLMNOPQRSTUVWXYZ._-"

static int path_instance(const api_request *req, int64_t *ret, api_response *resp)
{
    if (req->nsegs < 3 || parse_i64(req->segs[2], 1, NUM_MAX, ret) != 0)
        return api_error(resp, 400, "bad_request",
                         "the instance id must be an integer from 1 to "
                         "2^53"),
               -1;
    return 0;
}

static int num_field(json_t *o, const char *key, int64_t *ret, api_response *resp)
{
    json_t *v = json_object_get(o, key);
    if (!json_is_integer(v) || json_integer_value(v) < 0 || json_integer_value(v) > NUM_MAX)
        return api_error(resp, 400, "bad_request", "'%s' %s: an integer from 0 to 2^53", key,
                         v ? "is out of range" : "is required"),
               -1;
    *ret = json_integer_value(v);
    return 0;
}

/* A required string of 1 .. cap-1 bytes; chars: allowed set, or NULL for
 * any printable ASCII. */
static int str_field(json_t *o, const char *key, char *dst, size_t cap, const char *chars,
                     api_response *resp)
{
    const char *s = json_string_value(json_object_get(o, key));
    size_t n = s ? strlen(s) : 0;
    int ok = s && n > 0 && n < cap && n == json_string_length(json_object_get(o, key));
    for (size_t i = 0; ok && i < n; i++)
        ok = chars ? strchr(chars, s[i]) != NULL : (s[i] >= 0x20 && s[i] < 0x7f);
    if (!ok)
        return api_error(resp, 400, "bad_request",
                         "'%s' must be a string of 1 to %zu %s characters", key, cap - 1,
                         chars ? "[A-Za-z0-9._-]" : "printable ASCII"),
               -1;
    memcpy(dst, s, n + 1);
    return 0;
}

/* An optional number: checked like a required one when present (API-RS1). */
static int opt_num_field(json_t *o, const char *key, int64_t *ret, api_response *resp)
{
    return json_object_get(o, key) ? num_field(o, key, ret, resp) : 0;
}

static int report_fields(json_t *o, dm_snapshot *s, api_response *resp)
{
    if (str_field(o, "snapshot_id", s->snapshot_id, sizeof s->snapshot_id, ID_CHARS, resp) ||
        (json_object_get(o, "store") &&
         str_field(o, "store", s->store_url, sizeof s->store_url, NULL, resp)) ||
        str_field(o, "trigger", s->trigger, sizeof s->trigger, ID_CHARS, resp) ||
        num_field(o, "epoch", &s->epoch, resp) ||
        opt_num_field(o, "size_bytes", &s->size_bytes, resp) ||
        opt_num_field(o, "stored_bytes", &s->stored_bytes, resp) ||
        opt_num_field(o, "files", &s->files, resp) ||
        opt_num_field(o, "created_at_ms", &s->created_at_ms, resp) ||
        opt_num_field(o, "creation_time_ms", &s->creation_time_ms, resp))
        return -1;
    return 0;
}

/* API-RS3: the snapshot is in the server's store; the record takes the store's
 * word for it. Returns -1 with the refusal set. */
static int in_store(const api_ctx *ctx, dm_snapshot *s, api_response *resp)
{
    fo_orch *o = ctx->orch;
    if (!fo_orch_store(o)[0])
        return api_error(resp, 503, "unavailable",
                         "this server has no snapshot store configured (DUMONT_STORE)"),
               -1;
    if (s->store_url[0] && !fo_orch_store_is(o, s->store_url))
        return api_error(resp, 422, "foreign_store",
                         "the report names the store '%.200s'; snapshots are accepted only in "
                         "this server's store (DUMONT_STORE)",
                         s->store_url),
               -1;
    snap_info si;
    char err[512] = "";
    int rc = fo_orch_check_snapshot(o, s->snapshot_id, &si, err, sizeof err);
    if (rc == DM_E_NOT_FOUND || rc == DM_E_INVALID || rc == DM_E_PROTOCOL)
        return api_error(resp, 422, "unknown_snapshot", "%s", err), -1;
    if (rc)
        return api_error_from(resp, rc, err), -1;
    snprintf(s->store_url, sizeof s->store_url, "%s", fo_orch_store(o));
    s->size_bytes = (int64_t)si.bytes;
    s->stored_bytes = (int64_t)si.stored_new;
    s->files = (int64_t)si.files;
    s->created_at_ms = si.time_ms > 0 ? si.time_ms : 0;
    s->creation_time_ms = si.duration_ms > 0 ? si.duration_ms : 0;
    return 0;
}

static json_t *render_snapshot(const dm_snapshot *s)
{
    json_t *j =
        json_pack("{s:s, s:I, s:I, s:s, s:I, s:I, s:I, s:I, s:o, s:I, s:I, s:o, s:s}",
                  "snapshot_id", s->snapshot_id, "instance_id", (json_int_t)s->instance_id, "epoch",
                  (json_int_t)s->epoch, "store", s->store_url, "size_bytes",
                  (json_int_t)s->size_bytes, "stored_bytes", (json_int_t)s->stored_bytes, "files",
                  (json_int_t)s->files, "created_at_ms", (json_int_t)s->created_at_ms, "created_at",
                  render_time(s->created_at_ms), "creation_time_ms",
                  (json_int_t)s->creation_time_ms, "reported_at_ms", (json_int_t)s->reported_at_ms,
                  "reported_at", render_time(s->reported_at_ms), "trigger", s->trigger);
    if (j) {
        json_object_set_new(j, "workload_id",
                            s->workload_id[0] ? json_string(s->workload_id) : json_null());
        json_object_set_new(j, "seq", json_integer((json_int_t)s->seq));
    }
    return j;
}

static int snapshot_report(const api_ctx *ctx, const api_request *req, api_response *resp,
                           dm_snapshot *ret)
{
    static const char *const allowed[] = {"snapshot_id",
                                          "epoch",
                                          "size_bytes",
                                          "stored_bytes",
                                          "files",
                                          "created_at_ms",
                                          "creation_time_ms",
                                          "store",
                                          "trigger",
                                          NULL};
    dm_snapshot s;
    json_t *o = NULL;
    memset(&s, 0, sizeof s);
    if (path_instance(req, &s.instance_id, resp) || api_body_object(req, resp, allowed, &o))
        return 0;
    int bad = report_fields(o, &s, resp);
    json_decref(o);
    if (bad || in_store(ctx, &s, resp))
        return 0; /* API-RS1, API-RS3 */
    char err[512] = "";
    int rc = db_snapshot_record(ctx->db, &s, err, sizeof err); /* API-RS2 */
    if (rc)
        return api_error_from(resp, rc, err);
    dm_snapshot back; /* the stored row: a repeated id answers what was first recorded */
    if (db_snapshot_get(ctx->db, s.snapshot_id, &back, err, sizeof err) == 0)
        s = back;
    *ret = s;
    return api_json(resp, 201, render_snapshot(&s));
}

/* API-RS4 */
int api_h_snapshot_report(const api_ctx *ctx, const api_request *req, api_response *resp)
{
    dm_snapshot s;
    memset(&s, 0, sizeof s);
    snapshot_report(ctx, req, resp, &s);
    api_metrics_on_snapshot(ctx->metrics, resp->status == 201, s.workload_id, s.size_bytes,
                            s.created_at_ms);
    return 0;
}

int api_h_snapshot_list(const api_ctx *ctx, const api_request *req, api_response *resp)
{
    int64_t id, limit = LIST_DEF;
    const char *v;
    if (path_instance(req, &id, resp))
        return 0;
    if ((v = req->query(req->conn, "limit")) && parse_i64(v, 1, LIST_MAX, &limit) != 0)
        return api_error(resp, 400, "bad_request", "limit must be an integer from 1 to %d",
                         LIST_MAX);
    dm_snapshot *list = NULL;
    size_t n = 0;
    char err[512] = "";
    int rc = db_snapshot_list(ctx->db, id, (int)limit, &list, &n, err, sizeof err);
    if (rc)
        return api_error_from(resp, rc, err);
    json_t *arr = json_array();
    for (size_t i = 0; arr && i < n; i++)
        json_array_append_new(arr, render_snapshot(&list[i]));
    free(list);
    return api_json(resp, 200,
                    json_pack("{s:I, s:o}", "instance_id", (json_int_t)id, "snapshots",
                              arr ? arr : json_array()));
}

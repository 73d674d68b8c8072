/* Provider dispatch: picks the back end by name, validates every argument
 * before a back end sees it, and forwards through the vtable (provider.h).
 *
 * PROV-PD1: no back-end function is called with a NULL pointer, an instance id
 *      < 1, an unterminated or over-long string, or a query whose counts are
 *      out of range; such calls fail with DM_E_INVALID and a reason.
 * PROV-PD2: provider_close(NULL) is a no-op; the back end's close runs once.
 * PROV-PD3: with credential hooks set (provider_set_creds), every provision hands
 *      the back end a credential minted for that instance alone, whatever
 *      token the caller put in the launch; a failed mint fails the
 *      provision. A destroy that succeeded (PROV-PV3: the instance is gone)
 *      revokes the instance's credentials. */
#include "provider/provider.h"

#include "provider/local.h"
#include "util/error.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define PD_STR_MAX 4096 /* commands, URLs, paths handed to an instance */

struct dm_provider {
    const provider_ops *ops;
    void *st;
    prov_cred_hooks creds; /* PROV-PD3; mint NULL: none */
};

void provider_set_creds(dm_provider *p, const prov_cred_hooks *h)
{
    if (p)
        p->creds = h ? *h : (prov_cred_hooks){0};
}

static int bad(char *err, size_t errlen, const char *what)
{
    return dm_fail(err, errlen, DM_E_INVALID, "provider: %s", what);
}

/* A string field: NULL allowed when opt, else non-empty; bounded (PROV-PD1). */
static int str_ok(const char *s, size_t cap, int opt)
{
    if (!s)
        return opt;
    size_t n = strnlen(s, cap);
    return n < cap && (n > 0 || opt);
}

static int fixed_ok(const char *s, size_t cap)
{
    return memchr(s, '\0', cap) != NULL;
}

int provider_open(const char *name, const prov_config *cfg, dm_provider **ret, char *err,
                  size_t errlen)
{
    if (!name || !ret)
        return bad(err, errlen, "no provider name");
    if (strcmp(name, "local") != 0)
        return dm_fail(err, errlen, DM_E_INVALID,
                       "provider: unknown provider '%.32s' (known: local)", name);
    if (!cfg || !str_ok(cfg->home, PATH_MAX, 0) || !str_ok(cfg->market_path, PATH_MAX, 1) ||
        !str_ok(cfg->dumont_bin, PATH_MAX, 1) || cfg->provision_delay_ms < 0 ||
        cfg->provision_delay_ms > 3600000)
        return bad(err, errlen, "bad configuration (home, market_path, dumont_bin, delay)");
    dm_provider *p = calloc(1, sizeof *p);
    if (!p)
        return dm_fail(err, errlen, -ENOMEM, "provider: out of memory");
    int rc = local_open(cfg, &p->ops, &p->st, err, errlen);
    if (rc) {
        free(p);
        return rc;
    }
    *ret = p;
    return 0;
}

int provider_from_ops(const provider_ops *ops, void *st, dm_provider **ret, char *err,
                      size_t errlen)
{
    if (!ops || !ret || !ops->name || !ops->search || !ops->provision || !ops->get ||
        !ops->status || !ops->destroy || !ops->restore || !ops->snapshot || !ops->start_workload ||
        !ops->preempt)
        return bad(err, errlen, "incomplete provider functions");
    dm_provider *p = calloc(1, sizeof *p);
    if (!p)
        return dm_fail(err, errlen, -ENOMEM, "provider: out of memory");
    p->ops = ops;
    p->st = st;
    *ret = p;
    return 0;
}

void provider_close(dm_provider *p)
{
    if (!p)
        return;
    if (p->ops->close)
        p->ops->close(p->st);
    free(p);
}

const char *provider_name(const dm_provider *p)
{
    return p ? p->ops->name : "";
}

static int query_ok(const prov_query *q)
{
    if (q->n_exclude < 0 || q->n_exclude > PROV_EXCLUDE_MAX ||
        !fixed_ok(q->region, sizeof q->region))
        return 0;
    for (int i = 0; i < q->n_exclude; i++)
        if (!fixed_ok(q->exclude_hosts[i], PROV_NAME_MAX))
            return 0;
    return q->min_vram_gb >= 0 && q->min_cuda >= 0 && q->min_cuda == q->min_cuda &&
           q->max_price_per_h == q->max_price_per_h && q->min_reliability == q->min_reliability;
}

int provider_search(dm_provider *p, const prov_query *q, prov_offer *ret, size_t max, size_t *ret_n,
                    char *err, size_t errlen)
{
    if (!p || !q || !ret_n || (!ret && max) || max > PROV_OFFERS_MAX || !query_ok(q))
        return bad(err, errlen, "bad search arguments");
    return p->ops->search(p->st, q, ret, max, ret_n, err, errlen);
}

static int offer_ok(const prov_offer *o)
{
    return fixed_ok(o->id, sizeof o->id) && o->id[0] && fixed_ok(o->host, sizeof o->host) &&
           o->host[0] && fixed_ok(o->gpu_name, sizeof o->gpu_name) &&
           fixed_ok(o->region, sizeof o->region);
}

static int launch_ok(const prov_launch *l)
{
    return l->instance_id >= 1 && l->epoch >= 0 && str_ok(l->kind, 8, 1) &&
           (!l->kind || !strcmp(l->kind, "gpu") || !strcmp(l->kind, "cpu")) &&
           str_ok(l->workload_cmd, PD_STR_MAX, 1) && str_ok(l->probe_spec, PD_STR_MAX, 1) &&
           str_ok(l->server_url, PD_STR_MAX, 1) && str_ok(l->token, PD_STR_MAX, 1) &&
           str_ok(l->store_url, PD_STR_MAX, 1) && str_ok(l->workspace_from, PATH_MAX, 1) &&
           str_ok(l->ca_file, PATH_MAX, 1) && l->heartbeat_ms <= 60000 &&
           l->snapshot_every_ms <= 7 * 86400000LL;
}

int provider_provision(dm_provider *p, const prov_offer *offer, const prov_launch *l,
                       prov_instance *ret, char *err, size_t errlen)
{
    if (!p || !offer || !l || !ret || !offer_ok(offer))
        return bad(err, errlen, "bad provision arguments");
    if (!launch_ok(l))
        return bad(err, errlen, "bad launch settings (instance id, kind, strings, durations)");
    if (!p->creds.mint)
        return p->ops->provision(p->st, offer, l, ret, err, errlen);
    char token[PROV_TOKEN_MAX]; /* PROV-PD3 */
    prov_launch own = *l;
    int rc = p->creds.mint(p->creds.cls, l->instance_id, token, sizeof token, err, errlen);
    if (rc == 0) {
        own.token = token;
        rc = p->ops->provision(p->st, offer, &own, ret, err, errlen);
    }
    explicit_bzero(token, sizeof token);
    return rc;
}

int provider_get(dm_provider *p, int64_t instance_id, prov_instance *ret, char *err, size_t errlen)
{
    if (!p || !ret || instance_id < 1)
        return bad(err, errlen, "bad instance id");
    return p->ops->get(p->st, instance_id, ret, err, errlen);
}

int provider_status(dm_provider *p, int64_t instance_id, prov_state *ret, char *err, size_t errlen)
{
    if (!p || !ret || instance_id < 1)
        return bad(err, errlen, "bad instance id");
    return p->ops->status(p->st, instance_id, ret, err, errlen);
}

int provider_destroy(dm_provider *p, int64_t instance_id, char *err, size_t errlen)
{
    if (!p || instance_id < 1)
        return bad(err, errlen, "bad instance id");
    int rc = p->ops->destroy(p->st, instance_id, err, errlen);
    if (rc == 0 && p->creds.revoke) /* PROV-PD3 */
        p->creds.revoke(p->creds.cls, instance_id);
    return rc;
}

void provider_revoke_creds(dm_provider *p, int64_t instance_id)
{
    if (p && instance_id >= 1 && p->creds.revoke) /* PROV-PD3 */
        p->creds.revoke(p->creds.cls, instance_id);
}

static int inst_ok(const prov_instance *i)
{
    return i && i->instance_id >= 1;
}

int provider_restore(dm_provider *p, const prov_instance *inst, dm_store *store,
                     const char *snapshot_id, prov_restore_times *ret, char *err, size_t errlen)
{
    if (!p || !inst_ok(inst) || !store || !ret || !str_ok(snapshot_id, SNAP_ID_MAX, 0))
        return bad(err, errlen, "bad restore arguments");
    return p->ops->restore(p->st, inst, store, snapshot_id, ret, err, errlen);
}

int provider_snapshot(dm_provider *p, const prov_instance *inst, dm_store *store, const char *tag,
                      snap_info *ret, char *err, size_t errlen)
{
    if (!p || !inst_ok(inst) || !store || !ret || !str_ok(tag, SNAP_TAG_MAX, 1))
        return bad(err, errlen, "bad snapshot arguments");
    return p->ops->snapshot(p->st, inst, store, tag, ret, err, errlen);
}

int provider_start_workload(dm_provider *p, const prov_instance *inst, char *err, size_t errlen)
{
    if (!p || !inst_ok(inst))
        return bad(err, errlen, "bad instance");
    return p->ops->start_workload(p->st, inst, err, errlen);
}

int provider_preempt(dm_provider *p, int64_t instance_id, int64_t notice_ms, char *err,
                     size_t errlen)
{
    if (!p || instance_id < 1 || notice_ms < 0 || notice_ms > 3600000)
        return bad(err, errlen, "bad preempt arguments (instance id, notice 0..1h)");
    return p->ops->preempt(p->st, instance_id, notice_ms, err, errlen);
}

void prov_query_init(prov_query *q)
{
    memset(q, 0, sizeof *q);
}

void prov_query_exclude(prov_query *q, const char *host)
{
    if (!q || !host || !host[0] || strnlen(host, PROV_NAME_MAX) >= PROV_NAME_MAX ||
        q->n_exclude < 0 || q->n_exclude >= PROV_EXCLUDE_MAX)
        return;
    for (int i = 0; i < q->n_exclude; i++)
        if (strcmp(q->exclude_hosts[i], host) == 0)
            return;
    memcpy(q->exclude_hosts[q->n_exclude++], host, strlen(host) + 1);
}

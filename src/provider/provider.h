/* Providers: where instances come from. One interface (a vtable, like the
 * store's), several back ends: `local` (real instances on this machine,
 * provider/local.h), later `vast`, `gcp`, `exec`; a test builds one of its
 * own functions (provider_from_ops). Simulated failovers use none
 * (failover/sim.c plays the seed's phase times).
 *
 * An instance is a machine running `dumont agent` (and, once told, the
 * workload) for one workload, with a workspace directory and an address
 * where the workload answers (Ollama's OLLAMA_HOST / PORT).
 *
 * PROV-PV1: search is pure: it reads the market and returns the compatible offers
 *      (VRAM, CUDA and region constraints met, price under the cap, excluded
 *      hosts left out), cheapest first among the reliable (reliability >=
 *      min_reliability), then the less reliable, cheapest first.
 * PROV-PV2: provision is idempotent per instance_id: called again for an id that
 *      already runs, it returns that instance and starts nothing; called for
 *      an id whose instance is gone, it makes it again. So a controller that
 *      crashed after asking can ask again and never gets two.
 * PROV-PV3: destroy is a fence, and fails closed: it returns 0 only once the
 *      provider that made the instance confirms every process of it gone (an
 *      instance it made and destroyed already is confirmed gone again, so a
 *      controller that crashed after a destroy can ask again). An id it never
 *      made is DM_E_NOT_FOUND: nothing confirms it gone (it may be another
 *      controller's, running). Any other failure is an error too. On any error
 *      the caller must not promote a replacement (failover ORCH-O7).
 * PROV-PV4: restore and snapshot run on the instance, by its own agent, as
 *      commands of the control channel (provider/channel.h; every provider,
 *      the local one too): the controller never reads or writes a workspace
 *      byte. The agent reads the snapshot from the store the controller
 *      names, falling back to its mirror (ret->source says which served), and
 *      replaces the workspace only when the whole snapshot verified (snapshot.h
 *      SNAP-SN2). Without a channel (prov_config.channel NULL) both fail with
 *      DM_E_UNAVAILABLE.
 * PROV-PV5: start_workload tells the agent of an instance launched with hold=1 to
 *      start its workload now (a channel command); a no-op when it already runs.
 * PROV-PV6: the instance's credential (the agent token of that instance alone,
 *      never the admin token: PROV-PD3 of provider.c) reaches its agent through a
 *      file only it can read (local: <dir>/agent.token, 0600, --token-file),
 *      never its command line or environment, and is never logged. So do the
 *      store's settings and keys the agent needs to read and write the store
 *      and its mirror (local: <dir>/store.env, 0600, --store-env-file, what
 *      store_env_export() gives: keys only for an s3:// store or mirror).
 * All functions return 0 or a negative DM_E_*; err gets a one-line reason. */
#ifndef DUMONT_PROVIDER_PROVIDER_H
#define DUMONT_PROVIDER_PROVIDER_H

#include "snapshot/snapshot.h"
#include "store/store.h"

#include <limits.h>
#include <stddef.h>
#include <stdint.h>

#define PROV_OFFERS_MAX  256
#define PROV_EXCLUDE_MAX 16
#define PROV_NAME_MAX    64

typedef struct {
    char id[PROV_NAME_MAX];       /* offer id, unique in the market */
    char host[PROV_NAME_MAX];     /* the machine it runs on (failed hosts are excluded) */
    char gpu_name[PROV_NAME_MAX]; /* "RTX 4090" */
    int vram_gb;
    double cuda;        /* highest CUDA version the host supports, e.g. 12.4 */
    double price_per_h; /* USD */
    char region[32];
    double reliability; /* 0..1 */
} prov_offer;

typedef struct {
    int min_vram_gb;        /* 0: any */
    double min_cuda;        /* 0: any */
    char region[32];        /* "": any; else a prefix match ("europe" matches "europe-west1") */
    double max_price_per_h; /* <= 0: no cap */
    double min_reliability; /* the "reliable" threshold of PROV-PV1; <= 0: 0.9 */
    char exclude_hosts[PROV_EXCLUDE_MAX][PROV_NAME_MAX];
    int n_exclude;
} prov_query;

/* What an instance runs. Strings are borrowed for the call. */
typedef struct {
    int64_t instance_id;
    int64_t epoch;             /* passed to the agent (--epoch): its snapshots carry it */
    const char *kind;          /* "gpu" | "cpu" */
    const char *workload_cmd;  /* may be NULL */
    const char *probe_spec;    /* may be NULL */
    int64_t heartbeat_ms;      /* <= 0: the agent's default */
    int64_t snapshot_every_ms; /* < 0: the agent's default; 0: never (--snapshot-every 0) */
    const char *server_url;    /* the API the agent registers with */
    const char *token;         /* PROV-PV6: the agent's credential; replaced when hooks are set */
    const char *ca_file;   /* CA bundle the agent trusts for an https:// server_url; may be NULL */
    const char *store_url; /* where the agent puts its snapshots */
    const char *workspace_from; /* local: copied into the new workspace; may be NULL */
    int hold;                   /* PROV-PV5: the agent waits for start_workload */
    int64_t lease_ms; /* agent/channel.h AG-C4; <= 0: the provider's (prov_config.lease_ms) */
    int crash_limit;            /* the agent's --crash-limit (crashes before it gives up); 0 default */
    const char *host_check;     /* the agent's --host-check command; may be NULL */
} prov_launch;

typedef struct {
    int64_t instance_id;
    char provider[16];
    char offer_id[PROV_NAME_MAX];
    char host[PROV_NAME_MAX];
    char workspace[PATH_MAX]; /* the instance's workspace directory */
    char address[64];         /* "127.0.0.1:PORT": where the workload answers */
} prov_instance;

typedef enum {
    PROV_ABSENT = 0, /* no such instance (never made, or destroyed) */
    PROV_RUNNING,    /* its agent process is alive */
    PROV_STOPPED,    /* its directory is there, no process runs (crashed, killed) */
} prov_state;

typedef struct {
    int64_t download_ms;   /* share of the restore spent fetching objects from the store */
    int64_t decompress_ms; /* the rest: decompress, verify, write, swap */
    int64_t total_ms;
    uint64_t bytes; /* plain bytes restored */
    char source[8]; /* PROV-PV4: "primary" or "mirror", the copy that served */
} prov_restore_times;

typedef struct provider_ops {
    const char *name;
    int (*search)(void *p, const prov_query *q, prov_offer *ret, size_t max, size_t *ret_n,
                  char *err, size_t errlen); /* PROV-PV1 */
    int (*provision)(void *p, const prov_offer *offer, const prov_launch *l, prov_instance *ret,
                     char *err, size_t errlen); /* PROV-PV2 */
    /* Fills ret (workspace, address) for a known instance; DM_E_NOT_FOUND otherwise. */
    int (*get)(void *p, int64_t instance_id, prov_instance *ret, char *err, size_t errlen);
    int (*status)(void *p, int64_t instance_id, prov_state *ret, char *err, size_t errlen);
    int (*destroy)(void *p, int64_t instance_id, char *err, size_t errlen); /* PROV-PV3 */
    int (*restore)(void *p, const prov_instance *inst, dm_store *store, const char *snapshot_id,
                   prov_restore_times *ret, char *err, size_t errlen); /* PROV-PV4 */
    int (*snapshot)(void *p, const prov_instance *inst, dm_store *store, const char *tag,
                    snap_info *ret, char *err, size_t errlen);                           /* PROV-PV4 */
    int (*start_workload)(void *p, const prov_instance *inst, char *err, size_t errlen); /* PROV-PV5 */
    /* Chaos: take the instance away like a spot preemption. notice_ms > 0
     * first raises the cloud's preemption notice and kills notice_ms later
     * (in the background); 0 kills at once (SIGKILL of every process). */
    int (*preempt)(void *p, int64_t instance_id, int64_t notice_ms, char *err, size_t errlen);
    void (*close)(void *p);
} provider_ops;

typedef struct dm_provider dm_provider;

#define PROV_TOKEN_MAX 128

/* PROV-PD3 of provider.c: where instance credentials come from (the server's
 * token table). mint writes a new credential for instance_id to buf; revoke
 * removes every credential of a destroyed instance. Called from any thread. */
typedef struct {
    int (*mint)(void *cls, int64_t instance_id, char *buf, size_t cap, char *err, size_t errlen);
    void (*revoke)(void *cls, int64_t instance_id);
    void *cls;
} prov_cred_hooks;

typedef struct {
    const char *home; /* $DUMONT_HOME: local instances live in home/instances/<id> */
    const char
        *market_path; /* NULL: home/market.json (written with the default market if missing) */
    const char *dumont_bin;     /* the dumont binary the instances run; NULL: /proc/self/exe */
    int64_t provision_delay_ms; /* added to each provision (a slower "cloud"); default 0 */
    struct prov_channel *channel; /* PROV-PV4: the control channel (channel.h); borrowed */
    int64_t lease_ms; /* the agents' lease (agent/channel.h AG-C4); <= 0: the default */
} prov_config;

/* "local" (the only real one for now). DM_E_INVALID names the known ones. */
int provider_open(const char *name, const prov_config *cfg, dm_provider **ret, char *err,
                  size_t errlen);
/* A provider of the back end ops over state st (a test's stand-in; PROV-PD1 and
 * PROV-PD3 hold for it as for the built-in ones). ops is borrowed and must
 * outlive the provider; every function of it must be set (close may be
 * NULL: st is then not the provider's to free). */
int provider_from_ops(const provider_ops *ops, void *st, dm_provider **ret, char *err,
                      size_t errlen);
void provider_close(dm_provider *p); /* NULL is fine */
/* PROV-PD3: h is copied; NULL removes the hooks. Set before the provider is used. */
void provider_set_creds(dm_provider *p, const prov_cred_hooks *h);
const char *provider_name(const dm_provider *p);

int provider_search(dm_provider *p, const prov_query *q, prov_offer *ret, size_t max, size_t *ret_n,
                    char *err, size_t errlen);
int provider_provision(dm_provider *p, const prov_offer *offer, const prov_launch *l,
                       prov_instance *ret, char *err, size_t errlen);
int provider_get(dm_provider *p, int64_t instance_id, prov_instance *ret, char *err, size_t errlen);
int provider_status(dm_provider *p, int64_t instance_id, prov_state *ret, char *err, size_t errlen);
int provider_destroy(dm_provider *p, int64_t instance_id, char *err, size_t errlen);
/* PROV-PD3: revokes the instance's agent credentials without a destroy: an
 * instance fenced another way (its lease ran out, ORCH-R7) keeps no API access. */
void provider_revoke_creds(dm_provider *p, int64_t instance_id);
int provider_restore(dm_provider *p, const prov_instance *inst, dm_store *store,
                     const char *snapshot_id, prov_restore_times *ret, char *err, size_t errlen);
int provider_snapshot(dm_provider *p, const prov_instance *inst, dm_store *store, const char *tag,
                      snap_info *ret, char *err, size_t errlen);
int provider_start_workload(dm_provider *p, const prov_instance *inst, char *err, size_t errlen);
int provider_preempt(dm_provider *p, int64_t instance_id, int64_t notice_ms, char *err,
                     size_t errlen);

void prov_query_init(prov_query *q); /* no constraint */
/* Adds host to q's exclusions (ignored when full or already there). */
void prov_query_exclude(prov_query *q, const char *host);

#endif

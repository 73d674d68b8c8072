/* Dumont's metrics: the families GET /metrics serves (docs/metrics.md), fed
 * by the failover observer, the heartbeat listener's counters and events,
 * and snapshot reports.
 *
 * API-AM1: a scrape reads memory only: counters and histograms are kept as
 *      things happen and were rebuilt from the database once, at start
 *      (failovers by kind/trigger/result and their durations, each
 *      workload's newest snapshot); gauges are pulled from the listener and
 *      the orchestrator, which hold them in memory, and the store requests
 *      from the store layer's counters (this process's since it started:
 *      they are not in the database, so not rebuilt).
 * API-AM2: a failover is counted once, when the observer sees it terminal for
 *      the first time in this process; failovers already terminal at start
 *      are counted by the rebuild instead.
 * API-AM3: label values come from small closed sets (kind, trigger, result,
 *      phase, state, reason, store kind, store operation, HTTP status) or
 *      from workload ids the server made itself;
 *      nothing a peer sends becomes a label.
 * API-AM4: the rebuild runs on its own thread, so a server with a long history
 *      starts serving at once; it counts the ended failovers that started
 *      before this process and were not running when it started (the
 *      observer counts the rest), so nothing is counted twice. Until it finishes, a scrape shows
 * part of the history. api_metrics_wait_rebuilt() is for tests. */
#ifndef DUMONT_API_METRICS_H
#define DUMONT_API_METRICS_H

#include "api/http.h"
#include "db/db.h"
#include "core/failover.h"
#include "failover/orchestrator.h"

#include <stddef.h>
#include <stdint.h>

struct hbl_server;
typedef struct api_metrics api_metrics;

/* Declares every family, rebuilds the counters from db (API-AM1) and subscribes
 * to the listener (detection times). hb and orch may be NULL. */
int api_metrics_new(dm_db *db, fo_orch *orch, struct hbl_server *hb, api_metrics **ret, char *err,
                    size_t errlen);
void api_metrics_free(api_metrics *m); /* NULL is fine; stops the rebuild first */
/* API-AM4: waits until the rebuild has finished (tests). */
void api_metrics_wait_rebuilt(api_metrics *m);

/* The failover observer's share (API-AM2). */
void api_metrics_on_failover(api_metrics *m, const fo_failover *f);
/* A snapshot report: accepted (with its workload, plain bytes and creation
 * time) or refused. */
void api_metrics_on_snapshot(api_metrics *m, int accepted, const char *workload_id, int64_t bytes,
                             int64_t created_at_ms);

/* The exposition text; *ret malloc'd. 0 or a DM_E_* code. */
int api_metrics_render(api_metrics *m, char **ret, size_t *ret_len);

/* GET /metrics (a viewer's route): the exposition text, or 503 when the
 * server runs without metrics. */
int api_h_metrics(const api_ctx *ctx, const api_request *req, api_response *resp);

#endif

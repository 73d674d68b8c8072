/* Live events for the dashboard: an in-process bus and GET /api/events
 * (server-sent events, text/event-stream).
 *
 * The orchestrator reports every failover transition through its observer
 * hook (fo_orch_set_observer); events_on_failover() renders the failover,
 * with its phases, once, and queues the same message to every client.
 *
 * Wire format, one event per blank-line-terminated block:
 *   event: hello     data: {"heartbeat_s": 15}      first, on every connect
 *   event: failover  data: {status object of docs/api.md, with "phases"}
 *   event: resync    data: {"dropped": N}           the client fell behind:
 *                                                   reload, then go on
 *   : keepalive                                     a comment every 15 s
 *
 * API-EV1: every client has a bounded queue (EVENTS_QUEUE_CAP messages); a
 *      client whose queue is full loses its queue and gets one `resync`
 *      instead: a slow reader never holds memory nor slows the publisher.
 * API-EV2: at most EVENTS_MAX_CLIENTS streams at once (503 beyond).
 * API-EV3: no pool thread ever blocks on a stream: a client with nothing to send
 *      is suspended (MHD_suspend_connection) and resumed by the publisher or
 *      by the keepalive thread, which also lets MHD notice gone clients.
 * API-EV4: events_bus_shutdown() ends every stream and resumes every suspended
 *      connection, so MHD_stop_daemon() (which must not meet a suspended
 *      connection) returns at once even with browsers connected.
 * API-EV5: lock order: orchestrator lock -> bus lock -> MHD's internal locks.
 *      MHD never calls into the bus while holding one of its own locks. */
#ifndef DUMONT_API_EVENTS_H
#define DUMONT_API_EVENTS_H

#include "core/failover.h"

#include <stddef.h>
#include <stdint.h>

#define EVENTS_QUEUE_CAP    64
#define EVENTS_MAX_CLIENTS  64
#define EVENTS_KEEPALIVE_MS 15000
#define EVENTS_MSG_MAX      (64 * 1024)

typedef struct events_bus events_bus;

/* keepalive_ms <= 0: EVENTS_KEEPALIVE_MS. Starts the keepalive thread. */
int events_bus_new(int64_t keepalive_ms, events_bus **ret);
/* API-EV4. Safe to call twice; after it, publishing does nothing. */
void events_bus_shutdown(events_bus *b);
void events_bus_free(events_bus *b); /* shuts down first; NULL is fine */

/* Queues `event: NAME\ndata: JSON\n\n` to every client. json is one line. */
void events_publish(events_bus *b, const char *name, const char *json);
/* The orchestrator's observer (fo_observer_fn): arg is the bus. */
void events_on_failover(void *arg, const fo_failover *f);
size_t events_client_count(events_bus *b);

struct MHD_Connection;
/* Queues the event-stream response for GET /api/events (503 when full or
 * shutting down). Returns MHD's result. */
int events_serve(events_bus *b, struct MHD_Connection *conn);

#endif

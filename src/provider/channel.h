/* The control channel, controller side: how the controller tells an
 * instance's agent what to do (docs/provider.md "The control channel").
 *
 * The agent holds the connection: it long-polls the API
 * (POST /api/instances/{id}/commands/poll, its own credential) and answers
 * each command (POST /api/instances/{id}/commands/{cid}/result). Nothing
 * inbound is needed on the instance, as behind a cloud's NAT. The provider
 * queues a command with chan_call() and waits for its answer; the API's
 * routes hand commands out (chan_poll) and take answers (chan_answer).
 *
 * PROV-CH1: commands are durable (db_command.h, DB-C1 to DB-C3) and idempotent by
 *      id: chan_call() of an id already put waits for (or returns at once)
 *      that command's answer, never queues a second one. A controller that
 *      crashed and asks again with the same id gets the same answer, and the
 *      agent, which keeps the ids it ran, never runs it twice.
 * PROV-CH2: a poll waits on a condition variable, not a timer: queuing a
 *      command for the instance (or an answer, for chan_call) wakes it at
 *      once. At most CHAN_WAITERS_MAX polls wait at a time (each holds one
 *      API thread); one more is answered at once with none and busy set.
 * PROV-CH3: every command carries the epoch the controller gives the
 *      instance; the agent refuses one older than the newest epoch it has
 *      seen (a fencing token: a stale controller's command is never run).
 * PROV-CH4: chan_shutdown() wakes every waiter; they return DM_E_CANCELLED (a
 *      call) or none (a poll), so the API server can stop.
 * PROV-CH5: chan_last_heard() is when the instance's agent last polled (the
 *      monotonic clock): "registered over the channel". It is what the
 *      controller knows of the agent's lease (AG-C4 of agent/channel.h).
 * PROV-CH6: chan_lease_expired(id, margin) is 1 once the instance's agent has been
 *      silent for longer than the lease plus margin, counting from its last
 *      poll or, never heard since this controller started, from the start:
 *      such an agent has stopped its workload (AG-C4), if it ever ran one
 *      with a channel (every provider-launched agent does). A fence may count
 *      that as a second confirmation (issue 15 part 2).
 * PROV-CH7: a call whose agent polled and then went silent for longer than
 *      the lease plus CHAN_MARGIN_MS ends DM_E_UNAVAILABLE, not at its
 *      timeout: a dead agent does not hold a failover for the length of a
 *      restore's timeout. */
#ifndef DUMONT_PROVIDER_CHANNEL_H
#define DUMONT_PROVIDER_CHANNEL_H

#include "db/db_command.h"

#include <stddef.h>
#include <stdint.h>

/* The longest a poll waits. A waiting poll holds its API thread, and
 * libmicrohttpd's pool serves every connection of a thread from that thread:
 * a request that lands on it waits too, so the wait stays short (the fix,
 * a poll suspended as /api/events streams are, is still to do). */
#define CHAN_WAIT_MAX_MS 1000
#define CHAN_WAITERS_MAX   8     /* PROV-CH2: half the API server's default threads */
#define CHAN_LEASE_DEFAULT_MS 10000 /* an agent's lease unless set (AG-C4) */
#define CHAN_MARGIN_MS        5000  /* PROV-CH7: clock rates, a poll's own length */

typedef struct prov_channel prov_channel;

int chan_open(dm_db *db, prov_channel **ret, char *err, size_t errlen);
void chan_close(prov_channel *c); /* NULL is fine; after chan_shutdown and every caller gone */
void chan_shutdown(prov_channel *c); /* PROV-CH4; NULL is fine */

/* Queues (PROV-CH1: or finds) command id of kind for the instance at epoch with
 * args (a JSON object, NULL: {}), and waits up to timeout_ms for its answer,
 * into *ret. 0: answered (ret->state "done" or "failed", ret->result the
 * agent's JSON); DM_E_UNAVAILABLE: no answer in time (err says whether the
 * agent polls at all); DM_E_CANCELLED: shutdown. */
int chan_call(prov_channel *c, int64_t instance_id, int64_t epoch, const char *id,
              const char *kind, const char *args, int64_t timeout_ms, db_command *ret, char *err,
              size_t errlen);

/* The agent's poll: the first unanswered command after seq `after`, waiting
 * up to wait_ms (capped at CHAN_WAIT_MAX_MS) for one. *ret_have 1 with *ret
 * filled, or 0; *ret_busy 1 when refused a wait (PROV-CH2). */
int chan_poll(prov_channel *c, int64_t instance_id, int64_t after, int64_t wait_ms,
              db_command *ret, int *ret_have, int *ret_busy, char *err, size_t errlen);
/* The agent's answer (DB-C3); wakes the caller waiting for it. */
int chan_answer(prov_channel *c, int64_t instance_id, const char *id, const char *state,
                const char *result, char *err, size_t errlen);
/* PROV-CH5: monotonic ms of the instance's last poll; -1 when it never polled
 * (since this controller started). */
int64_t chan_last_heard(prov_channel *c, int64_t instance_id);
/* The lease the agents were given (dumont server --agent-lease); <= 0: the
 * default. Set before use. */
void chan_set_lease(prov_channel *c, int64_t lease_ms);
int64_t chan_lease_ms(const prov_channel *c);
/* PROV-CH6; 0 for a NULL channel (fail closed). */
int chan_lease_expired(prov_channel *c, int64_t instance_id, int64_t margin_ms);

#endif

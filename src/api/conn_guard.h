/* Slow clients: a deadline for the whole request head (issue 13, part 5).
 *
 * libmicrohttpd's MHD_OPTION_CONNECTION_TIMEOUT is an idle timeout: every
 * byte resets it, so a client that sends one header line every few seconds
 * holds its connection for ever, and a few hundred of them held every slot
 * of the connection cap. libmicrohttpd 0.9.75 has no option for a deadline
 * on the request head, so the guard keeps one: MHD tells it when a
 * connection starts and closes (MHD_OPTION_NOTIFY_CONNECTION), the server
 * tells it when a request's head is complete (the access handler's first
 * call) and when a request ends, and a watchdog thread shuts down the
 * socket of every connection still short of a complete head past its
 * deadline. MHD then sees the connection end and closes it.
 *
 * CG-G1: a connection whose request head is not complete within the deadline
 *     (from its accept, or from the end of its previous request when it is
 *     kept alive) is shut down (shutdown(SHUT_RDWR)) within one watchdog
 *     period (CG_PERIOD_MS) after the deadline.
 * CG-G2: a socket is shut down only while its connection is known open: MHD
 *     sends the CLOSED notification before it closes the fd, the record is
 *     unlinked there, and the unlink and the shutdown both hold the guard's
 *     mutex, so a number the kernel gave to a new socket is never touched.
 * CG-G3: a connection whose request is complete (head and body received: a
 *     request being served, an event stream suspended) is never cut by the
 *     guard.
 * CG-G5: a request's body must be complete within CG_BODY_DEADLINE_MS of its
 *     head (a body is at most 64 KiB: at least ~3 KiB/s), else the
 *     connection is cut like a slow head (CG-G1); a body trickled a byte at a
 *     time no longer holds a slot for the 30 s idle timeout per byte.
 * CG-G4: one record per open connection (the connection cap bounds them),
 *     freed at CLOSED; cuts are counted and logged once per CG_LOG_MS, never
 *     once per connection, so an attack costs a counter. */
#ifndef DUMONT_API_CONN_GUARD_H
#define DUMONT_API_CONN_GUARD_H

#include <microhttpd.h>
#include <stdint.h>

#define CG_HEAD_DEADLINE_MS 10000
#define CG_BODY_DEADLINE_MS 20000
#define CG_PERIOD_MS        250
#define CG_LOG_MS           10000

typedef struct conn_guard conn_guard;

/* Starts the watchdog; head_deadline_ms <= 0 is CG_HEAD_DEADLINE_MS. */
int conn_guard_new(int64_t head_deadline_ms, conn_guard **ret);
/* Stops the watchdog and frees. Call after MHD_stop_daemon. NULL is fine. */
void conn_guard_free(conn_guard *g);

/* The MHD_OPTION_NOTIFY_CONNECTION callback; cls is the guard. */
void conn_guard_notify(void *cls, struct MHD_Connection *conn, void **socket_context,
                       enum MHD_ConnectionNotificationCode code);
/* The head of conn's current request is complete: its body's deadline
 * starts (CG-G5). */
void conn_guard_head_done(struct MHD_Connection *conn);
/* The body of conn's current request is complete (CG-G3). */
void conn_guard_body_done(struct MHD_Connection *conn);
/* conn's request ended; a next request on it has its own deadline (CG-G1). */
void conn_guard_request_done(struct MHD_Connection *conn);

/* Connections cut so far (CG-G4). */
uint64_t conn_guard_cuts(conn_guard *g);

#endif

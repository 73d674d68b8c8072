/* The request-head deadline (see conn_guard.h for CG-G1 to CG-G4).
 *
 * Records form one doubly linked list under one mutex; the watchdog walks
 * it every CG_PERIOD_MS. The list is short (at most the connection cap) and
 * the walk does no system call except for the connections it cuts, so the
 * mutex is held for microseconds. MHD threads take it twice per connection
 * and twice per request. */
#include "api/conn_guard.h"

#include "util/clock.h"
#include "util/log.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <time.h>

typedef struct rec {
    struct rec *prev, *next;
    conn_guard *g;
    int fd;
    int head_done; /* CG-G5: 1 while the body is coming, 2 once the request is complete */
    int cut;
    int64_t deadline_ms; /* monotonic */
} rec;

struct conn_guard {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    pthread_t thread;
    int started, stop;
    int64_t deadline_ms;
    rec *head;
    uint64_t cuts, cuts_logged;
    int64_t logged_at_ms;
};

static void cut_overdue(conn_guard *g, int64_t now)
{
    for (rec *r = g->head; r; r = r->next) {
        if (r->head_done == 2 || r->cut || now < r->deadline_ms)
            continue;
        shutdown(r->fd, SHUT_RDWR); /* CG-G2: the fd is still this connection's */
        r->cut = 1;
        g->cuts++;
    }
    if (g->cuts != g->cuts_logged && now - g->logged_at_ms >= CG_LOG_MS) { /* CG-G4 */
        log_warn("http.head_deadline", "connections_cut=%llu since_last=%llu deadline_ms=%lld",
                 (unsigned long long)g->cuts, (unsigned long long)(g->cuts - g->cuts_logged),
                 (long long)g->deadline_ms);
        g->cuts_logged = g->cuts;
        g->logged_at_ms = now;
    }
}

static void *watchdog(void *arg)
{
    conn_guard *g = arg;
    pthread_mutex_lock(&g->mu);
    while (!g->stop) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        ts.tv_nsec += (long)CG_PERIOD_MS * 1000000L;
        ts.tv_sec += ts.tv_nsec / 1000000000L;
        ts.tv_nsec %= 1000000000L;
        pthread_cond_timedwait(&g->cv, &g->mu, &ts);
        if (!g->stop)
            cut_overdue(g, clock_mono_ms());
    }
    pthread_mutex_unlock(&g->mu);
    return NULL;
}

int conn_guard_new(int64_t head_deadline_ms, conn_guard **ret)
{
    conn_guard *g = calloc(1, sizeof *g);
    if (!g)
        return -ENOMEM;
    g->deadline_ms = head_deadline_ms > 0 ? head_deadline_ms : CG_HEAD_DEADLINE_MS;
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&g->cv, &ca);
    pthread_condattr_destroy(&ca);
    pthread_mutex_init(&g->mu, NULL);
    int rc = -pthread_create(&g->thread, NULL, watchdog, g);
    if (rc) {
        conn_guard_free(g);
        return rc;
    }
    g->started = 1;
    *ret = g;
    return 0;
}

void conn_guard_free(conn_guard *g)
{
    if (!g)
        return;
    pthread_mutex_lock(&g->mu);
    g->stop = 1;
    pthread_cond_signal(&g->cv);
    pthread_mutex_unlock(&g->mu);
    if (g->started)
        pthread_join(g->thread, NULL);
    while (g->head) { /* MHD stopped: nothing refers to these any more */
        rec *r = g->head;
        g->head = r->next;
        free(r);
    }
    pthread_cond_destroy(&g->cv);
    pthread_mutex_destroy(&g->mu);
    free(g);
}

static void on_started(conn_guard *g, struct MHD_Connection *conn, void **socket_context)
{
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
    rec *r = ci ? calloc(1, sizeof *r) : NULL;
    if (!r)
        return; /* not guarded: MHD's own idle timeout still applies */
    r->g = g;
    r->fd = ci->connect_fd;
    pthread_mutex_lock(&g->mu);
    r->deadline_ms = clock_mono_ms() + g->deadline_ms;
    r->next = g->head;
    if (g->head)
        g->head->prev = r;
    g->head = r;
    pthread_mutex_unlock(&g->mu);
    *socket_context = r;
}

static void on_closed(void **socket_context)
{
    rec *r = *socket_context;
    if (!r)
        return;
    conn_guard *g = r->g;
    pthread_mutex_lock(&g->mu); /* CG-G2 */
    if (r->prev)
        r->prev->next = r->next;
    else
        g->head = r->next;
    if (r->next)
        r->next->prev = r->prev;
    pthread_mutex_unlock(&g->mu);
    free(r);
    *socket_context = NULL;
}

void conn_guard_notify(void *cls, struct MHD_Connection *conn, void **socket_context,
                       enum MHD_ConnectionNotificationCode code)
{
    if (code == MHD_CONNECTION_NOTIFY_STARTED)
        on_started(cls, conn, socket_context);
    else if (code == MHD_CONNECTION_NOTIFY_CLOSED)
        on_closed(socket_context);
}

static rec *rec_of(struct MHD_Connection *conn)
{
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(conn, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
    return ci ? ci->socket_context : NULL;
}

void conn_guard_head_done(struct MHD_Connection *conn)
{
    rec *r = rec_of(conn);
    if (!r)
        return;
    pthread_mutex_lock(&r->g->mu);
    if (r->head_done == 0) { /* CG-G5 */
        r->head_done = 1;
        r->deadline_ms = clock_mono_ms() + CG_BODY_DEADLINE_MS;
    }
    pthread_mutex_unlock(&r->g->mu);
}

void conn_guard_body_done(struct MHD_Connection *conn)
{
    rec *r = rec_of(conn);
    if (!r)
        return;
    pthread_mutex_lock(&r->g->mu);
    r->head_done = 2; /* CG-G3 */
    pthread_mutex_unlock(&r->g->mu);
}

void conn_guard_request_done(struct MHD_Connection *conn)
{
    rec *r = rec_of(conn);
    if (!r)
        return;
    pthread_mutex_lock(&r->g->mu);
    r->head_done = 0;
    r->deadline_ms = clock_mono_ms() + r->g->deadline_ms;
    pthread_mutex_unlock(&r->g->mu);
}

uint64_t conn_guard_cuts(conn_guard *g)
{
    pthread_mutex_lock(&g->mu);
    uint64_t n = g->cuts;
    pthread_mutex_unlock(&g->mu);
    return n;
}

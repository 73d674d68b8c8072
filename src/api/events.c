/* Event bus and server-sent event streams (see events.h for API-EV1 to API-EV5).
 *
 * A message is rendered once and shared: clients hold references to it in
 * their ring queues, counted under the bus lock. Each stream is an MHD
 * callback response of unknown size; MHD pulls bytes with stream_read(),
 * which hands out the rest of the current message, else takes the next one,
 * else suspends the connection (API-EV3) and returns 0. Whoever queues something
 * for a suspended client (publisher, keepalive thread, shutdown) clears its
 * `suspended` flag and resumes it, under the bus lock. A resume that arrives
 * between our unlock and MHD_suspend_connection() is not lost: MHD then
 * cancels the suspension (it keeps a `resuming` flag).
 *
 * A client is freed only by MHD's response-free callback, which takes the
 * bus lock: a publisher holding the lock can always resume the connections
 * on its list, because MHD frees a connection's response before the
 * connection itself. */
#include "api/events.h"

#include "api/render.h"
#include "util/clock.h"
#include "util/log.h"

#include <errno.h>
#include <jansson.h>
#include <microhttpd.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef struct {
    int refs; /* under the bus lock */
    size_t len;
    char text[];
} ev_msg;

typedef struct ev_client {
    struct events_bus *bus;
    struct MHD_Connection *conn;
    struct ev_client *prev, *next;
    ev_msg *queue[EVENTS_QUEUE_CAP]; /* ring (API-EV1) */
    size_t head, count;
    int64_t dropped;   /* messages lost since the last resync */
    int suspended;     /* we asked MHD to suspend; nobody resumed yet */
    int hello_pending; /* the `hello` event is still to be sent */
    ev_msg *cur;       /* message being written */
    size_t cur_off;
    int64_t last_send_ms; /* monotonic */
} ev_client;

struct events_bus {
    pthread_mutex_t lock;
    pthread_cond_t wake;
    pthread_t keepalive;
    int thread_started;
    int stopping;
    int64_t keepalive_ms;
    ev_client *clients;
    size_t nclients;
};

static ev_msg *msg_new(const char *text, size_t len)
{
    ev_msg *m = malloc(sizeof *m + len + 1);
    if (!m)
        return NULL;
    m->refs = 1;
    m->len = len;
    memcpy(m->text, text, len);
    m->text[len] = '\0';
    return m;
}

static void msg_unref(ev_msg *m) /* bus lock held */
{
    if (m && --m->refs == 0)
        free(m);
}

/* Resumes c if we suspended it. Bus lock held (see the file comment). */
static void wake_client(ev_client *c)
{
    if (c->suspended) {
        c->suspended = 0;
        MHD_resume_connection(c->conn);
    }
}

static void *keepalive_main(void *arg)
{
    events_bus *b = arg;
    pthread_mutex_lock(&b->lock);
    while (!b->stopping) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        ts.tv_sec += 1; /* a keepalive is at most ~1 s late */
        pthread_cond_timedwait(&b->wake, &b->lock, &ts);
        int64_t now = clock_mono_ms();
        for (ev_client *c = b->clients; c; c = c->next)
            if (now - c->last_send_ms >= b->keepalive_ms)
                wake_client(c);
    }
    pthread_mutex_unlock(&b->lock);
    return NULL;
}

int events_bus_new(int64_t keepalive_ms, events_bus **ret)
{
    events_bus *b = calloc(1, sizeof *b);
    if (!b)
        return -ENOMEM;
    b->keepalive_ms = keepalive_ms > 0 ? keepalive_ms : EVENTS_KEEPALIVE_MS;
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_mutex_init(&b->lock, NULL);
    pthread_cond_init(&b->wake, &ca);
    pthread_condattr_destroy(&ca);
    int rc = pthread_create(&b->keepalive, NULL, keepalive_main, b);
    if (rc) {
        pthread_mutex_destroy(&b->lock);
        pthread_cond_destroy(&b->wake);
        free(b);
        return -rc;
    }
    b->thread_started = 1;
    *ret = b;
    return 0;
}

void events_bus_shutdown(events_bus *b)
{
    if (!b)
        return;
    pthread_mutex_lock(&b->lock);
    int join = b->thread_started;
    b->thread_started = 0;
    b->stopping = 1;
    for (ev_client *c = b->clients; c; c = c->next) /* API-EV4 */
        wake_client(c);
    pthread_cond_broadcast(&b->wake);
    pthread_mutex_unlock(&b->lock);
    if (join)
        pthread_join(b->keepalive, NULL);
}

void events_bus_free(events_bus *b)
{
    if (!b)
        return;
    events_bus_shutdown(b);
    /* Clients still listed belong to connections MHD has not freed; the
     * server stops MHD before freeing the bus, so there are none. */
    pthread_mutex_destroy(&b->lock);
    pthread_cond_destroy(&b->wake);
    free(b);
}

/* Adds m to c's queue, or turns the queue into one resync (API-EV1). */
static void enqueue(ev_client *c, ev_msg *m)
{
    if (c->count == EVENTS_QUEUE_CAP) {
        while (c->count) {
            msg_unref(c->queue[c->head]);
            c->head = (c->head + 1) % EVENTS_QUEUE_CAP;
            c->count--;
            c->dropped++;
        }
        c->dropped++; /* m itself */
        return;
    }
    m->refs++;
    c->queue[(c->head + c->count) % EVENTS_QUEUE_CAP] = m;
    c->count++;
}

void events_publish(events_bus *b, const char *name, const char *json)
{
    if (!b)
        return;
    size_t cap = strlen(name) + strlen(json) + 32;
    char *text = cap <= EVENTS_MSG_MAX ? malloc(cap) : NULL;
    if (!text) {
        log_warn("events.dropped", "event=%s reason=%s", name,
                 cap > EVENTS_MSG_MAX ? "too_big" : "out_of_memory");
        return;
    }
    int n = snprintf(text, cap, "event: %s\ndata: %s\n\n", name, json);
    ev_msg *m = msg_new(text, (size_t)n);
    free(text);
    if (!m)
        return;
    pthread_mutex_lock(&b->lock);
    if (!b->stopping)
        for (ev_client *c = b->clients; c; c = c->next) {
            enqueue(c, m);
            wake_client(c);
        }
    msg_unref(m);
    pthread_mutex_unlock(&b->lock);
}

void events_on_failover(void *arg, const fo_failover *f)
{
    json_t *o = render_failover(f, 1);
    char *text = o ? json_dumps(o, RENDER_JSON_FLAGS) : NULL; /* one line: no raw newlines */
    if (text)
        events_publish(arg, "failover", text);
    free(text);
    json_decref(o);
}

size_t events_client_count(events_bus *b)
{
    pthread_mutex_lock(&b->lock);
    size_t n = b->nclients;
    pthread_mutex_unlock(&b->lock);
    return n;
}

/* The next message for c, or NULL. Bus lock held. Returns a reference. */
static ev_msg *next_message(ev_client *c, int64_t now)
{
    char buf[96];
    int n = 0;
    if (c->hello_pending) {
        c->hello_pending = 0;
        n = snprintf(buf, sizeof buf, "retry: 3000\nevent: hello\ndata: {\"heartbeat_s\":%lld}\n\n",
                     (long long)(c->bus->keepalive_ms / 1000));
    } else if (c->dropped) {
        n = snprintf(buf, sizeof buf, "event: resync\ndata: {\"dropped\":%lld}\n\n",
                     (long long)c->dropped);
        c->dropped = 0;
    } else if (c->count) {
        ev_msg *m = c->queue[c->head];
        c->head = (c->head + 1) % EVENTS_QUEUE_CAP;
        c->count--;
        return m;
    } else if (now - c->last_send_ms >= c->bus->keepalive_ms) {
        n = snprintf(buf, sizeof buf, ": keepalive\n\n");
    }
    return n > 0 ? msg_new(buf, (size_t)n) : NULL;
}

static ssize_t stream_read(void *cls, uint64_t pos, char *out, size_t max)
{
    ev_client *c = cls;
    events_bus *b = c->bus;
    pthread_mutex_lock(&b->lock);
    int64_t now = clock_mono_ms();
    if (!c->cur && !b->stopping)
        c->cur = next_message(c, now);
    if (!c->cur) {
        int stop = b->stopping;
        if (!stop)
            c->suspended = 1; /* API-EV3 */
        pthread_mutex_unlock(&b->lock);
        if (stop)
            return MHD_CONTENT_READER_END_OF_STREAM;
        MHD_suspend_connection(c->conn);
        return 0;
    }
    size_t n = c->cur->len - c->cur_off;
    if (n > max)
        n = max;
    memcpy(out, c->cur->text + c->cur_off, n);
    c->cur_off += n;
    if (c->cur_off == c->cur->len) {
        msg_unref(c->cur);
        c->cur = NULL;
        c->cur_off = 0;
    }
    c->last_send_ms = now;
    pthread_mutex_unlock(&b->lock);
    return (ssize_t)n;
}

static void stream_free(void *cls)
{
    ev_client *c = cls;
    events_bus *b = c->bus;
    pthread_mutex_lock(&b->lock);
    if (c->prev)
        c->prev->next = c->next;
    else
        b->clients = c->next;
    if (c->next)
        c->next->prev = c->prev;
    b->nclients--;
    while (c->count) {
        msg_unref(c->queue[c->head]);
        c->head = (c->head + 1) % EVENTS_QUEUE_CAP;
        c->count--;
    }
    msg_unref(c->cur);
    pthread_mutex_unlock(&b->lock);
    free(c);
}

static int refuse(struct MHD_Connection *conn, const char *detail)
{
    char body[256];
    int n = snprintf(body, sizeof body, "{\"error\":\"busy\",\"detail\":\"%s\"}", detail);
    struct MHD_Response *r =
        MHD_create_response_from_buffer((size_t)n, body, MHD_RESPMEM_MUST_COPY);
    if (!r)
        return MHD_NO;
    MHD_add_response_header(r, "Content-Type", "application/json");
    MHD_add_response_header(r, "Retry-After", "5");
    int ok = MHD_queue_response(conn, MHD_HTTP_SERVICE_UNAVAILABLE, r);
    MHD_destroy_response(r);
    return ok;
}

/* Lists a new client; NULL when full or stopping (API-EV2). */
static ev_client *client_add(events_bus *b, struct MHD_Connection *conn, const char **why)
{
    pthread_mutex_lock(&b->lock);
    ev_client *c = NULL;
    if (b->stopping)
        *why = "the server is shutting down";
    else if (b->nclients >= EVENTS_MAX_CLIENTS)
        *why = "too many event streams are open; close a dashboard tab";
    else if (!(c = calloc(1, sizeof *c)))
        *why = "out of memory";
    if (c) {
        c->bus = b;
        c->conn = conn;
        c->hello_pending = 1;
        c->last_send_ms = clock_mono_ms();
        c->next = b->clients;
        if (b->clients)
            b->clients->prev = c;
        b->clients = c;
        b->nclients++;
    }
    pthread_mutex_unlock(&b->lock);
    return c;
}

int events_serve(events_bus *b, struct MHD_Connection *conn)
{
    const char *why = "";
    ev_client *c = client_add(b, conn, &why);
    if (!c)
        return refuse(conn, why);
    /* From here on the client is freed by stream_free only (MHD owns it). */
    struct MHD_Response *r =
        MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 4096, stream_read, c, stream_free);
    if (!r) {
        stream_free(c);
        return MHD_NO;
    }
    MHD_add_response_header(r, "Content-Type", "text/event-stream; charset=utf-8");
    MHD_add_response_header(r, "Cache-Control", "no-store");
    MHD_add_response_header(r, "X-Accel-Buffering", "no"); /* proxies: do not buffer */
    MHD_add_response_header(r, "X-Content-Type-Options", "nosniff");
    int ok = MHD_queue_response(conn, MHD_HTTP_OK, r);
    MHD_destroy_response(r);
    return ok;
}

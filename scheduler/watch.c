/*
 * Watch streams: a task's stored events from the client's cursor, then live ones, ending after
 * the event of a final state. A watcher reads the store itself, one send in flight, so a slow
 * one only falls behind in the store: it never holds more than one batch of memory or the
 * pipeline back. A watcher that has caught up waits on its task's list and is handed the next
 * events from memory right after their commit (sch_watch_kick). Its state is guarded by the
 * scheduler's mu; its buffer belongs to whoever took it off the task's list.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "scheduler/sched.h"

#define WATCH_BATCH 64
#define WATCH_BATCH_BYTES (1u << 20)

struct sch_watch {
    sch *s;
    sch_call *c;
    int64_t id;
    uint64_t cursor;
    bool busy, sending, finished, registered, gone;
    sch_watch *next;
    struct {
        uint64_t seq;
        uint8_t *data;
        size_t len;
    } buf[WATCH_BATCH];
    size_t n, i, bytes;
};

void sch_watch_free(sch_watch *w)
{
    if (!w)
        return;
    for (size_t i = w->i; i < w->n; i++)
        free(w->buf[i].data);
    free(w);
}

static int buffer_event(uint64_t seq, const uint8_t *data, size_t len, void *arg)
{
    sch_watch *w = arg;
    uint8_t *copy = malloc(len ? len : 1);
    if (!copy)
        return 1;
    memcpy(copy, data, len);
    w->buf[w->n].seq = seq;
    w->buf[w->n].data = copy;
    w->buf[w->n].len = len;
    w->n++;
    w->bytes += len;
    return w->n >= WATCH_BATCH || w->bytes >= WATCH_BATCH_BYTES;
}

/* Reads the next events after the cursor into the buffer; returns how many. */
static size_t watch_read(sch_watch *w)
{
    sch *s = w->s;
    w->n = w->i = w->bytes = 0;
    pthread_mutex_lock(&s->reader_mu);
    s->reader->ops->events_read(s->reader, w->id, w->cursor, WATCH_BATCH, buffer_event, w);
    pthread_mutex_unlock(&s->reader_mu);
    return w->n;
}

static void watch_finish(sch_watch *w, grpc_status_code code, const char *why)
{
    sch_call *c = w->c;
    w->finished = true;
    sch_call_ref(c);
    if (rpc_send_status(c->call, c->md_sent, code, why, &c->tag_send) != GRPC_CALL_OK)
        sch_call_unref(c);
    sch_call_unref(c); /* the watcher's own reference */
}

/* Sends what the store has after the cursor, or waits for more; no lock held on entry. */
static void watch_pump(sch_watch *w)
{
    sch *s = w->s;
    pthread_mutex_lock(&s->mu);
    if (w->busy || w->sending || w->finished || w->registered) {
        pthread_mutex_unlock(&s->mu);
        return;
    }
    w->busy = true;
    pthread_mutex_unlock(&s->mu);
    bool checked_gone = false;
    int misses = 0;
    for (;;) {
        if (w->gone) {
            pthread_mutex_lock(&s->mu);
            w->busy = false;
            pthread_mutex_unlock(&s->mu);
            watch_finish(w, GRPC_STATUS_CANCELLED, "the client went away");
            return;
        }
        if (w->i < w->n) {
            sch_call *c = w->c;
            size_t i = w->i++;
            grpc_slice sl = grpc_slice_new(w->buf[i].data, w->buf[i].len, free);
            w->buf[i].data = NULL;
            w->cursor = w->buf[i].seq;
            grpc_byte_buffer *bb = grpc_raw_byte_buffer_create(&sl, 1);
            grpc_slice_unref(sl);
            grpc_op ops[2];
            memset(ops, 0, sizeof ops);
            size_t n = 0;
            if (!c->md_sent)
                ops[n++].op = GRPC_OP_SEND_INITIAL_METADATA;
            ops[n].op = GRPC_OP_SEND_MESSAGE;
            ops[n++].data.send_message.send_message = bb;
            pthread_mutex_lock(&s->mu);
            w->sending = true;
            w->busy = false;
            pthread_mutex_unlock(&s->mu);
            c->md_sent = true;
            sch_call_ref(c);
            c->send_bb = bb;
            if (grpc_call_start_batch(c->call, ops, n, &c->tag_send, NULL) != GRPC_CALL_OK) {
                c->send_bb = NULL;
                grpc_byte_buffer_destroy(bb);
                sch_call_unref(c);
                pthread_mutex_lock(&s->mu);
                w->sending = false;
                pthread_mutex_unlock(&s->mu);
                watch_finish(w, GRPC_STATUS_CANCELLED, "the client went away");
            }
            return;
        }
        /* A watcher already at the task's newest committed event waits without reading the
         * store; its next events come from memory (sch_watch_kick). */
        pthread_mutex_lock(&s->mu);
        sch_task *t = sch_task_find(s, w->id);
        bool caught_up = t && t->committed_seq <= w->cursor;
        pthread_mutex_unlock(&s->mu);
        if (!caught_up && watch_read(w) > 0)
            continue;
        pthread_mutex_lock(&s->mu);
        t = sch_task_find(s, w->id);
        if (t && t->committed_seq > w->cursor) {
            pthread_mutex_unlock(&s->mu);
            /* Committed events the store does not return: the reader is failing. Say so
             * rather than spin. */
            if (++misses > 3) {
                pthread_mutex_lock(&s->mu);
                w->busy = false;
                pthread_mutex_unlock(&s->mu);
                watch_finish(w, GRPC_STATUS_UNAVAILABLE, "the store could not be read");
                return;
            }
            continue;
        }
        if (t) {
            w->registered = true;
            w->next = t->watchers;
            t->watchers = w;
            w->busy = false;
            pthread_mutex_unlock(&s->mu);
            return;
        }
        pthread_mutex_unlock(&s->mu);
        /* Not active: the task is final and every event is stored; one last read closes the
         * gap between our read and its leaving memory. */
        if (!checked_gone) {
            checked_gone = true;
            continue;
        }
        pthread_mutex_lock(&s->mu);
        w->busy = false;
        pthread_mutex_unlock(&s->mu);
        watch_finish(w, GRPC_STATUS_OK, NULL);
        return;
    }
}

void sch_watch_sent(sch_watch *w, bool ok)
{
    sch *s = w->s;
    sch_call *c = w->c;
    if (c->send_bb) {
        grpc_byte_buffer_destroy(c->send_bb);
        c->send_bb = NULL;
    }
    pthread_mutex_lock(&s->mu);
    bool was_sending = w->sending;
    w->sending = false;
    if (!ok)
        w->gone = true;
    bool finished = w->finished;
    pthread_mutex_unlock(&s->mu);
    if (was_sending && !finished)
        watch_pump(w);
}

void sch_watch_cancelled(sch_watch *w)
{
    sch *s = w->s;
    pthread_mutex_lock(&s->mu);
    w->gone = true;
    bool take = false;
    if (w->registered) {
        /* Still on the task's list: take it off and finish it here. Off the list but still
         * registered means a kick owns it right now, and its pump will see `gone`. */
        sch_task *t = sch_task_find(s, w->id);
        for (sch_watch **pp = t ? &t->watchers : NULL; pp && *pp; pp = &(*pp)->next)
            if (*pp == w) {
                *pp = w->next;
                w->registered = false;
                take = true;
                break;
            }
    }
    pthread_mutex_unlock(&s->mu);
    if (take)
        watch_pump(w);
}

void sch_watch_kick(sch *s, sch_watch *list, const sch_blob_event *ev, size_t n)
{
    while (list) {
        sch_watch *w = list;
        list = w->next;
        /* A watcher waiting right at these events takes them from memory: the live tail costs
         * no read of the store. Any other one catches up from the store in its pump. Nobody
         * else touches a registered watcher's buffer, so no lock is needed to fill it. */
        if (n > 0 && n <= WATCH_BATCH && w->i == w->n && !w->gone && w->cursor + 1 == ev[0].seq) {
            size_t k = 0;
            w->n = w->i = w->bytes = 0;
            for (; k < n; k++) {
                uint8_t *copy = malloc(ev[k].len ? ev[k].len : 1);
                if (!copy)
                    break;
                memcpy(copy, ev[k].data, ev[k].len);
                w->buf[k].seq = ev[k].seq;
                w->buf[k].data = copy;
                w->buf[k].len = ev[k].len;
            }
            w->n = k;
        }
        pthread_mutex_lock(&s->mu);
        w->registered = false;
        pthread_mutex_unlock(&s->mu);
        watch_pump(w);
    }
}

void sch_watch_start(sch *s, sch_call *c, const Pm__Scheduler__V1__WatchRequest *req)
{
    int64_t id;
    char msg[300];
    if (!sch_id_or_reply(c, req->id, &id))
        return;
    pthread_mutex_lock(&s->mu);
    bool active = sch_task_find(s, id) != NULL;
    pthread_mutex_unlock(&s->mu);
    if (!active) {
        grpc_status_code code;
        sch_rec *r = sch_read_task(s, id, &code, msg, sizeof msg);
        if (!r) {
            sch_reply(c, NULL, code, msg);
            return;
        }
        protobuf_c_message_free_unpacked(&r->base, NULL);
    }
    sch_watch *w = calloc(1, sizeof *w);
    if (!w) {
        sch_reply(c, NULL, GRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory");
        return;
    }
    w->s = s;
    w->c = c;
    w->id = id;
    w->cursor = req->after_seq;
    c->watch = w;
    if (c->closed && c->cancelled_out)
        w->gone = true;
    watch_pump(w);
}

/*
 * The writer thread: every change the scheduler makes to the store goes through here, in the
 * order it was queued. The thread takes everything queued since its last turn, applies it in one
 * transaction and commits once, so the fsync of a commit is shared by every write that queued
 * meanwhile (group commit): under load, batches grow by themselves, and at rest a lone write is
 * committed at once. Only after the commit returned does the thread run each write's completion,
 * which is what acknowledges a Submit, starts a leased step or wakes watchers. If a commit fails,
 * every write of the batch fails with it (rc < 0) and nothing is acknowledged.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "scheduler/sched.h"

sch_op *sch_op_new(int kind)
{
    sch_op *op = calloc(1, sizeof *op);
    if (op)
        op->kind = kind;
    return op;
}

void sch_op_free(sch_op *op)
{
    if (!op)
        return;
    for (size_t i = 0; i < op->n_events; i++)
        free(op->events[i].data);
    free(op->events);
    free(op->rec_buf);
    free(op->idem_key);
    free(op->pipeline);
    free(op->lease_owner);
    free(op->name);
    free(op);
}

int sch_op_event(sch_op *op, const Pm__Scheduler__V1__WatchEvent *ev)
{
    size_t len = protobuf_c_message_get_packed_size(&ev->base);
    uint8_t *data = malloc(len ? len : 1);
    sch_blob_event *v = realloc(op->events, (op->n_events + 1) * sizeof *v);
    if (!data || !v) {
        free(data);
        if (v)
            op->events = v;
        return -ENOMEM;
    }
    protobuf_c_message_pack(&ev->base, data);
    op->events = v;
    v[op->n_events++] = (sch_blob_event){.seq = ev->seq, .data = data, .len = len};
    if (ev->output)
        op->output_bytes += ev->output->data.len;
    return 0;
}

int sch_op_task(sch_op *op, sch_task *t)
{
    sch_rec *r = t->rec;
    size_t len = protobuf_c_message_get_packed_size(&r->base);
    free(op->rec_buf);
    op->rec_buf = malloc(len ? len : 1);
    free(op->idem_key);
    free(op->pipeline);
    free(op->lease_owner);
    op->idem_key = sch_xstrdup(r->idempotency_key);
    op->pipeline = sch_xstrdup(r->pipeline_name);
    op->lease_owner = sch_xstrdup(t->lease_owner);
    if (!op->rec_buf || !op->idem_key || !op->pipeline || !op->lease_owner)
        return -ENOMEM;
    protobuf_c_message_pack(&r->base, op->rec_buf);
    op->t = t;
    op->task_id = t->id;
    op->row = (sch_task_row){
        .id = t->id,
        .idem_key = op->idem_key,
        .state = r->state,
        .priority = r->priority,
        .pipeline = op->pipeline,
        .created_ms = r->created_ms,
        .attempt = r->attempt,
        .lease_owner = op->lease_owner,
        .lease_expires_ms = t->lease_expires_ms,
        .not_before_ms = r->not_before_ms,
        .last_seq = r->last_seq,
        .record = op->rec_buf,
        .record_len = len,
    };
    return 0;
}

void sch_write(sch *s, sch_op *op)
{
    op->next = NULL;
    pthread_mutex_lock(&s->wq_mu);
    if (s->wq_tail)
        s->wq_tail->next = op;
    else
        s->wq_head = op;
    s->wq_tail = op;
    pthread_cond_signal(&s->wq_cond);
    pthread_mutex_unlock(&s->wq_mu);
}

static int remember_existing(const sch_task_row *row, void *arg)
{
    /* Only the id: the answer is built from the task as it is when the batch has committed. */
    ((sch_op *)arg)->existing_id = row->id;
    return 0;
}

/* Applies one write inside the open transaction; returns the store's answer. */
static int apply(sch *s, sch_op *op)
{
    sch_store *st = s->store;
    int rc = 0;
    switch (op->kind) {
    case OP_SUBMIT: {
        int64_t id = 0;
        rc = st->ops->task_insert(st, &op->row, &id, remember_existing, op);
        if (rc != 0)
            break;
        op->task_id = id;
        /* The first event names the task, whose id only now exists. */
        char idstr[24];
        snprintf(idstr, sizeof idstr, "%lld", (long long)id);
        Pm__Scheduler__V1__WatchEvent ev = PM__SCHEDULER__V1__WATCH_EVENT__INIT;
        ev.seq = 1;
        ev.id = idstr;
        ev.time_ms = op->row.created_ms;
        ev.state = PM__SCHEDULER__V1__TASK_STATE__QUEUED;
        ev.message = (char *)"submitted";
        rc = sch_op_event(op, &ev);
        if (rc == 0)
            rc = st->ops->event_append(st, id, 1, op->events[0].data, op->events[0].len);
        break;
    }
    case OP_TASK:
        rc = st->ops->task_update(st, &op->row, op->expect_attempt);
        /* fall through: a task write carries its events */
        if (rc != 0)
            break;
        /* fallthrough */
    case OP_EVENTS:
        for (size_t i = 0; i < op->n_events && rc == 0; i++)
            rc = st->ops->event_append(st, op->task_id, op->events[i].seq, op->events[i].data,
                                       op->events[i].len);
        break;
    case OP_RENEW:
        rc = st->ops->lease_renew(st, op->lease_owner, op->row.lease_expires_ms);
        if (rc > 0)
            rc = 0;
        break;
    case OP_PIPELINE:
        rc = st->ops->pipeline_put(st, op->name, op->rec_buf, op->row.record_len);
        break;
    }
    if (rc < 0)
        snprintf(op->error, sizeof op->error, "%s", sch_store_error(st));
    return rc;
}

static void *writer_main(void *arg)
{
    sch *s = arg;
    for (;;) {
        pthread_mutex_lock(&s->wq_mu);
        while (!s->wq_head && !s->wq_stop)
            pthread_cond_wait(&s->wq_cond, &s->wq_mu);
        sch_op *batch = s->wq_head;
        s->wq_head = s->wq_tail = NULL;
        bool stop = s->wq_stop;
        pthread_mutex_unlock(&s->wq_mu);
        if (!batch) {
            if (stop)
                break;
            continue;
        }
        sch_store *st = s->store;
        /* With --db :memory: (tests) the readers share this handle: take their lock too. */
        bool shared = s->reader == s->store;
        if (shared)
            pthread_mutex_lock(&s->reader_mu);
        /* Only a batch that acknowledges something (a Submit, a pipeline, a Cancel, a Requeue)
         * pays for an fsync; progress (leases, events, results) rides on the next one, and a
         * crash of the process loses none of it either way: only a power failure could, and
         * then the task just runs again (at-least-once). */
        bool durable = false;
        for (sch_op *op = batch; op && !durable; op = op->next)
            durable = op->durable;
        int brc = st->ops->set_full_sync(st, durable);
        if (brc == 0)
            brc = st->ops->begin(st);
        size_t n = 0;
        if (brc == 0) {
            for (sch_op *op = batch; op; op = op->next, n++) {
                /* A write that fails alone (a fence, a duplicate key) does not spoil the batch:
                 * its statements are undone back to its mark, the op reports its error, and
                 * the scheduler treats a failed op as not done. */
                bool several = op->kind == OP_SUBMIT || (op->kind == OP_TASK && op->n_events);
                int mrc = several ? st->ops->mark(st) : 0;
                op->rc = mrc < 0 ? mrc : apply(s, op);
                if (several && mrc == 0 && st->ops->unmark(st, op->rc >= 0) < 0 && op->rc >= 0)
                    op->rc = -EIO;
            }
            brc = st->ops->commit(st);
            if (brc < 0)
                st->ops->rollback(st);
        }
        if (brc < 0) {
            rpc_log("error", "store_commit", "ops=%zu error=\"%s\"", n, sch_store_error(st));
            for (sch_op *op = batch; op; op = op->next) {
                op->rc = brc;
                snprintf(op->error, sizeof op->error, "%s", sch_store_error(st));
            }
        }
        if (shared)
            pthread_mutex_unlock(&s->reader_mu);
        s->commits++;
        s->committed_ops += n;
        while (batch) {
            sch_op *op = batch;
            batch = op->next;
            if (op->done)
                op->done(s, op);
            else
                sch_op_free(op);
        }
    }
    return NULL;
}

int sch_writer_start(sch *s)
{
    pthread_mutex_init(&s->wq_mu, NULL);
    pthread_cond_init(&s->wq_cond, NULL);
    return -pthread_create(&s->writer_thread, NULL, writer_main, s);
}

void sch_writer_stop(sch *s)
{
    pthread_mutex_lock(&s->wq_mu);
    s->wq_stop = true;
    pthread_cond_signal(&s->wq_cond);
    pthread_mutex_unlock(&s->wq_mu);
    pthread_join(s->writer_thread, NULL);
}

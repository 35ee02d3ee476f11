/*
 * The task lifecycle: the active tasks (queue.c: hash by id, a priority heap per pool, a delayed
 * list for retries in backoff), leasing a worker slot, running each step as one Run call on the
 * worker's executor of the step's name, turning the executor's events into the task's numbered
 * events, and ending an attempt: the next step, a final state, or a retry. Every change is a write
 * queued to the writer thread; what depends on it being durable (starting a leased step, answering
 * Cancel, putting a retried task back in the heap) happens in the write's completion.
 *
 * At-least-once: a task is acknowledged once stored QUEUED; it leaves the active set only in a
 * final state. A lease write bumps the attempt number, and every later write of the attempt is
 * fenced on it, so a stale attempt can never overwrite a newer one. A scheduler that dies loses
 * its calls; on restart its RUNNING tasks (or anyone's with an expired lease) go back to QUEUED,
 * without counting as a failure, and run again from their first step.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "scheduler/sched.h"

/* ---- small helpers ---------------------------------------------------------------------- */

int64_t sch_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

char *sch_xstrdup(const char *s)
{
    return strdup(s ? s : "");
}

void sch_rec_set_str(char **field, const char *v)
{
    char *n = strdup(v ? v : "");
    if (!n)
        return; /* keep the old value rather than lose the field */
    if (*field && *field != protobuf_c_empty_string)
        free(*field);
    *field = n;
}

const char *sch_state_name(int st)
{
    const ProtobufCEnumValue *v =
        protobuf_c_enum_descriptor_get_value(&pm__scheduler__v1__task_state__descriptor, st);
    return v ? v->name : "?";
}

static bool state_final(int st)
{
    return st >= SCH_SUCCEEDED;
}

/* ---- records and events ----------------------------------------------------------------- */

sch_rec *sch_rec_from_row(const sch_task_row *row)
{
    sch_rec *r = pm__scheduler__v1__task__unpack(NULL, row->record_len, row->record);
    if (!r)
        return NULL;
    char id[24];
    snprintf(id, sizeof id, "%" PRId64, row->id);
    sch_rec_set_str(&r->id, id);
    r->state = row->state;
    r->attempt = row->attempt;
    r->last_seq = row->last_seq;
    r->not_before_ms = row->not_before_ms;
    r->created_ms = row->created_ms;
    r->priority = row->priority;
    return r;
}

int sch_rec_take(const sch_task_row *row, void *arg)
{
    *(sch_rec **)arg = sch_rec_from_row(row);
    return 0;
}

grpc_byte_buffer *sch_pack_bb(const ProtobufCMessage *m)
{
    size_t len = protobuf_c_message_get_packed_size(m);
    uint8_t *buf = malloc(len ? len : 1);
    if (!buf)
        return NULL;
    protobuf_c_message_pack(m, buf);
    grpc_slice sl = grpc_slice_new(buf, len, free);
    grpc_byte_buffer *bb = grpc_raw_byte_buffer_create(&sl, 1);
    grpc_slice_unref(sl);
    return bb;
}

/* Starts an event of t: the next seq, the id, the attempt and the time. */
void sch_event_init(sch_task *t, Pm__Scheduler__V1__WatchEvent *ev)
{
    pm__scheduler__v1__watch_event__init(ev);
    ev->seq = t->next_seq++;
    ev->id = t->idstr;
    ev->attempt = t->rec->attempt;
    ev->time_ms = sch_now_ms();
    t->rec->last_seq = ev->seq;
}

static void op_done(sch *s, sch_op *op);
static void finish(sch *s, sch_task *t, int state, const char *why);

/* Queues a write of t's row (fenced on expect_attempt) with one state event. */
static void write_state(sch *s, sch_task *t, uint32_t expect_attempt, const char *message)
{
    sch_rec *r = t->rec;
    r->updated_ms = sch_now_ms();
    sch_op *op = sch_op_new(OP_TASK);
    /* An event that happened just before (the last step's exit) rides in the same write. */
    const Pm__Scheduler__V1__WatchEvent *carry = t->carry;
    t->carry = NULL;
    if (op && carry && sch_op_event(op, carry) < 0) {
        sch_op_free(op);
        op = NULL;
    }
    Pm__Scheduler__V1__WatchEvent ev;
    sch_event_init(t, &ev);
    ev.state = r->state;
    ev.message = (char *)(message ? message : "");
    if (!op || sch_op_event(op, &ev) < 0 || sch_op_task(op, t) < 0) {
        /* Without memory the write cannot even be queued; the task stays as it is in the store
         * and recovery after a restart picks it up. */
        rpc_log("error", "write_lost", "task=%s state=%s", t->idstr, sch_state_name(r->state));
        sch_op_free(op);
        return;
    }
    op->expect_attempt = expect_attempt;
    op->done = op_done;
    op->durable = t->waiters != NULL; /* a Cancel is answered by this write */
    t->writes++;
    sch_write(s, op);
}

/* Queues events only (output, step start and exit). */
void sch_write_event(sch *s, sch_task *t, const Pm__Scheduler__V1__WatchEvent *ev)
{
    sch_op *op = sch_op_new(OP_EVENTS);
    if (!op || sch_op_event(op, ev) < 0) {
        rpc_log("error", "event_lost", "task=%s seq=%" PRIu64, t->idstr, ev->seq);
        sch_op_free(op);
        return;
    }
    op->t = t;
    op->task_id = t->id;
    op->done = op_done;
    t->writes++;
    t->backlog += op->output_bytes;
    sch_write(s, op);
}

static void reply_waiters(sch_task *t)
{
    while (t->waiters) {
        sch_call *c = t->waiters;
        t->waiters = c->next_waiter;
        sch_reply(c, &t->rec->base, GRPC_STATUS_OK, NULL);
    }
}

/* The completion of every task write: runs on the writer thread after the commit. */
static void op_done(sch *s, sch_op *op)
{
    pthread_mutex_lock(&s->mu);
    sch_task *t = op->t;
    t->writes--;
    t->backlog -= op->output_bytes;
    if (op->rc < 0)
        rpc_log("error", "write_failed", "task=%s rc=%d error=\"%s\"", t->idstr, op->rc, op->error);
    else if (op->n_events)
        t->committed_seq = op->events[op->n_events - 1].seq;
    sch_watch *kick = t->watchers;
    t->watchers = NULL;
    if (op->kind == OP_TASK && t->phase == TP_FINISHING && op->row.state == (int)t->rec->state) {
        if (state_final(t->rec->state)) {
            reply_waiters(t);
        } else if ((int)t->rec->state == SCH_QUEUED) {
            if (t->cancel_requested) {
                finish(s, t, SCH_CANCELLED, "cancelled by request");
            } else {
                sch_enqueue(s, t);
                sch_dispatch(s);
            }
        }
    } else if (op->kind == OP_TASK && t->phase == TP_LEASING) {
        sch_lease_committed(s, t, op->rc);
    }
    if (t->run && t->run->recv_paused && t->backlog < SCH_MAX_BACKLOG / 2)
        sch_run_resume(t);
    /* Its worker was released (and dispatch run) when the final write was queued; once that
     * write is in, the task leaves memory. No watcher can register after this: they find
     * tasks under the same lock. */
    bool gone = t->phase == TP_FINISHING && state_final(t->rec->state) && t->writes == 0;
    if (gone)
        sch_task_remove(s, t);
    pthread_mutex_unlock(&s->mu);
    /* Watchers read the store themselves; a task gone from memory tells them it is final. */
    sch_watch_kick(s, kick, op->rc < 0 ? NULL : op->events, op->rc < 0 ? 0 : op->n_events);
    if (gone)
        sch_task_free(t);
    sch_op_free(op);
}

/* ---- ending an attempt ------------------------------------------------------------------ */

static void release_worker(sch *s, sch_task *t)
{
    if (t->worker) {
        sch_worker_release(t->worker);
        t->worker = NULL;
        sch_dispatch(s);
    }
}

/* The task reaches a final state. */
static void finish(sch *s, sch_task *t, int state, const char *why)
{
    sch_rec *r = t->rec;
    release_worker(s, t);
    t->phase = TP_FINISHING;
    r->state = state;
    r->finished_ms = sch_now_ms();
    t->lease_owner[0] = 0;
    t->lease_expires_ms = 0;
    sch_rec_set_str(&r->error, why ? why : "");
    if (state == SCH_SUCCEEDED)
        s->succeeded++;
    else
        s->failed++;
    rpc_log(state == SCH_SUCCEEDED ? "info" : "warn", "task_done",
            "task=%s state=%s attempt=%u error=\"%s\"", t->idstr, sch_state_name(state), r->attempt,
            why ? why : "");
    write_state(s, t, r->attempt, why ? why : "");
}

/* The attempt ends without a final state: back to the queue (a failure counts unless the
 * scheduler itself interrupted it). */
static void requeue(sch *s, sch_task *t, bool failure, const char *why)
{
    sch_rec *r = t->rec;
    if (failure) {
        r->failed_attempts++;
        uint32_t max = r->retry && r->retry->max_attempts ? r->retry->max_attempts
                                                          : (uint32_t)s->cfg.max_attempts;
        if (r->failed_attempts >= max) {
            char msg[600];
            snprintf(msg, sizeof msg, "%.400s (attempt %u of %u)", why, r->failed_attempts, max);
            finish(s, t, SCH_DEAD, msg);
            return;
        }
        uint32_t init = r->retry && r->retry->initial_backoff_ms ? r->retry->initial_backoff_ms
                                                                 : (uint32_t)s->cfg.backoff_ms;
        uint32_t maxb = r->retry && r->retry->max_backoff_ms ? r->retry->max_backoff_ms
                                                             : (uint32_t)s->cfg.max_backoff_ms;
        r->not_before_ms = sch_now_ms() + (int64_t)sch_backoff_ms(r->failed_attempts, init, maxb);
        t->avoid = t->worker;
        s->retried++;
    }
    release_worker(s, t);
    t->phase = TP_FINISHING;
    r->state = PM__SCHEDULER__V1__TASK_STATE__QUEUED;
    t->lease_owner[0] = 0;
    t->lease_expires_ms = 0;
    sch_rec_set_str(&r->error, why);
    rpc_log("warn", "task_retry", "task=%s attempt=%u failure=%d error=\"%s\"", t->idstr,
            r->attempt, failure, why);
    write_state(s, t, r->attempt, why);
}

static void start_step(sch *s, sch_task *t);

/* ---- running a step ----------------------------------------------------------------------- */

/* Decides what a finished Run call means for the task. */
void sch_step_ended(sch *s, sch_task *t, sch_run *run)
{
    sch_rec *r = t->rec;
    Pm__Scheduler__V1__StepResult *res = run->res;
    char why[700];
    const Pm__Scheduler__V1__Step *st = r->pipeline->steps[t->step];

    if (t->cancel_requested) {
        finish(s, t, SCH_CANCELLED, "cancelled by request");
        return;
    }
    if (t->release_requested) {
        requeue(s, t, false, "released: the scheduler shut down during the step");
        return;
    }
    if (run->status != GRPC_STATUS_OK) {
        char *d = grpc_slice_to_c_string(run->details);
        int64_t now = sch_now_ms();
        bool total = r->total_timeout_ms && now >= r->started_ms + r->total_timeout_ms;
        if (run->status == GRPC_STATUS_DEADLINE_EXCEEDED && total) {
            snprintf(why, sizeof why, "total timeout of %u ms exceeded in step %u (%.100s)",
                     r->total_timeout_ms, t->step + 1, st->executor);
            free(d);
            finish(s, t, SCH_FAILED, why);
            return;
        }
        if (run->status == GRPC_STATUS_DEADLINE_EXCEEDED) {
            snprintf(why, sizeof why, "step %u (%.100s) timed out", t->step + 1, st->executor);
            free(d);
            finish(s, t, SCH_FAILED, why);
            return;
        }
        snprintf(why, sizeof why, "step %u: executor %.100s at %.200s: %s: %.200s", t->step + 1,
                 st->executor, run->e->target, rpc_status_name(run->status), d ? d : "");
        free(d);
        if (!sch_status_retryable(run->status)) {
            /* The same request would be refused again. */
            finish(s, t, SCH_FAILED, why);
            return;
        }
        if (run->status == GRPC_STATUS_UNAVAILABLE)
            sch_exec_failed(run->e, why);
        requeue(s, t, true, why);
        return;
    }
    if (!run->exited_seen) {
        snprintf(why, sizeof why, "step %u: executor %.100s ended the call without an exit",
                 t->step + 1, st->executor);
        requeue(s, t, true, why);
        return;
    }

    /* The executor ran the step: record its result. */
    Pm__Scheduler__V1__StepResult **v = realloc(r->steps, (r->n_steps + 1) * sizeof *v);
    if (v) {
        r->steps = v;
        v[r->n_steps++] = res;
        run->res = NULL;
    }
    Pm__Scheduler__V1__WatchEvent ev;
    sch_event_init(t, &ev);
    ev.step_exited = v ? res : run->res;

    bool failed = res->exit_code != 0 || res->signal != 0 || res->timed_out;
    if (!failed && t->step + 1 < r->pipeline->n_steps) {
        sch_write_event(s, t, &ev);
        t->step++;
        start_step(s, t);
        return;
    }
    /* The task's state changes next: the exit event goes in that write (t->carry). */
    t->carry = &ev;
    if (!failed) {
        finish(s, t, SCH_SUCCEEDED, NULL);
        t->carry = NULL; /* it pointed into this frame */
        return;
    }
    if (res->timed_out)
        snprintf(why, sizeof why, "step %u (%.100s) command %u timed out", t->step + 1,
                 st->executor, res->failed_command + 1);
    else if (res->signal)
        snprintf(why, sizeof why, "step %u (%.100s) command %u was killed by signal %d",
                 t->step + 1, st->executor, res->failed_command + 1, res->signal);
    else
        snprintf(why, sizeof why, "step %u (%.100s) command %u exited with %d%s%.200s", t->step + 1,
                 st->executor, res->failed_command + 1, res->exit_code, res->error[0] ? ": " : "",
                 res->error);
    if (sch_exit_retryable(r->retry, res->exit_code, res->signal, res->timed_out))
        requeue(s, t, true, why);
    else
        finish(s, t, SCH_FAILED, why);
    t->carry = NULL;
}

static uint32_t step_timeout(const sch_rec *r, const Pm__Scheduler__V1__Step *st)
{
    return st->timeout_ms ? st->timeout_ms : r->step_timeout_ms;
}

/* Starts step t->step on the leased worker. */
static void start_step(sch *s, sch_task *t)
{
    sch_rec *r = t->rec;
    const Pm__Scheduler__V1__Step *st = r->pipeline->steps[t->step];
    char why[400];
    t->phase = TP_RUNNING;
    sch_exec *e = sch_worker_exec(t->worker, st->executor);
    if (!e) {
        snprintf(why, sizeof why, "worker %.100s has no executor \"%.100s\"", t->worker->name,
                 st->executor);
        requeue(s, t, true, why);
        return;
    }
    int64_t now = sch_now_ms();
    int64_t left = INT64_MAX;
    uint32_t stm = step_timeout(r, st);
    if (stm)
        left = stm;
    if (r->total_timeout_ms) {
        int64_t total_left = r->started_ms + r->total_timeout_ms - now;
        if (total_left <= 0) {
            snprintf(why, sizeof why, "total timeout of %u ms exceeded before step %u",
                     r->total_timeout_ms, t->step + 1);
            finish(s, t, SCH_FAILED, why);
            return;
        }
        if (total_left < left)
            left = total_left;
    }
    sch_run *run = NULL;
    int rc = sch_run_start(s, t, e, st, stm, left, &run);
    if (rc == -ENOMEM) {
        requeue(s, t, false, "out of memory starting a step");
        return;
    }
    if (rc < 0) {
        requeue(s, t, true, "could not start the call to the executor");
        return;
    }
    t->run = run;

    Pm__Scheduler__V1__WatchEvent ev;
    Pm__Scheduler__V1__StepStarted ss = PM__SCHEDULER__V1__STEP_STARTED__INIT;
    sch_event_init(t, &ev);
    ss.step = t->step;
    ss.executor = st->executor;
    ss.worker = t->worker->name;
    ev.step_started = &ss;
    sch_write_event(s, t, &ev);
}

/* ---- leasing ------------------------------------------------------------------------------- */

void sch_lease_committed(sch *s, sch_task *t, int rc)
{
    if (rc == -ESTALE) {
        /* Another scheduler took the task meanwhile: it is theirs now. */
        rpc_log("warn", "lease_lost", "task=%s attempt=%u", t->idstr, t->rec->attempt);
        release_worker(s, t);
        t->phase = TP_FOREIGN;
        s->n_foreign++;
        return;
    }
    if (rc < 0) {
        t->rec->attempt--;
        release_worker(s, t);
        t->rec->state = PM__SCHEDULER__V1__TASK_STATE__QUEUED;
        t->rec->not_before_ms = sch_now_ms() + 1000;
        sch_enqueue(s, t);
        return;
    }
    if (t->cancel_requested) {
        finish(s, t, SCH_CANCELLED, "cancelled by request");
        return;
    }
    if (s->shutting_down) {
        requeue(s, t, false, "released: the scheduler is shutting down");
        return;
    }
    t->step = 0;
    start_step(s, t);
}

static void lease(sch *s, sch_task *t, sch_worker *w)
{
    sch_rec *r = t->rec;
    uint32_t old = r->attempt;
    t->worker = w;
    w->busy++;
    t->phase = TP_LEASING;
    r->attempt++;
    r->state = PM__SCHEDULER__V1__TASK_STATE__RUNNING;
    sch_rec_set_str(&r->worker, w->name);
    sch_rec_set_str(&r->error, "");
    for (size_t i = 0; i < r->n_steps; i++)
        protobuf_c_message_free_unpacked(&r->steps[i]->base, NULL);
    free(r->steps);
    r->steps = NULL;
    r->n_steps = 0;
    r->not_before_ms = 0;
    if (!r->started_ms)
        r->started_ms = sch_now_ms();
    snprintf(t->lease_owner, sizeof t->lease_owner, "%s", s->cfg.id);
    t->lease_expires_ms = sch_now_ms() + (int64_t)s->cfg.lease_ttl_ms;
    s->started++;
    char msg[300];
    snprintf(msg, sizeof msg, "attempt %u on worker %.200s", r->attempt, w->name);
    write_state(s, t, old, msg);
}

void sch_dispatch(sch *s)
{
    if (s->shutting_down || s->cfg.paused)
        return;
    for (size_t i = 0; i < s->n_pools; i++) {
        sch_pool *p = &s->pools[i];
        while (p->n_heap > 0) {
            sch_task *t = p->heap[0];
            sch_worker *w = sch_worker_pick(p, t->avoid);
            if (!w)
                break;
            sch_heap_remove(p, t);
            lease(s, t, w);
        }
    }
}

/* ---- adoption, recovery, cancel, requeue ----------------------------------------------------- */

void sch_task_adopt(sch *s, sch_task *t)
{
    t->next_seq = t->rec->last_seq + 1;
    t->committed_seq = t->rec->last_seq;
    sch_task_insert(s, t);
    sch_enqueue(s, t);
    sch_dispatch(s);
}

/* The pool a stored task runs on (the one it names, or the first with all its executors); NULL
 * with err set when the workers config no longer has one. */
static sch_pool *pool_of(sch *s, const sch_rec *r, char *err, size_t len)
{
    sch_pipeline *pipe = NULL;
    if (sch_pipeline_from_pb(r->pipeline, &pipe, err, len) < 0)
        return NULL;
    sch_pool *p = sch_pool_for(s, r->pool, pipe, err, len);
    sch_pipeline_free(pipe);
    return p;
}

static int count_events(uint64_t seq, const uint8_t *data, size_t len, void *arg)
{
    (void)data;
    (void)len;
    uint64_t *max = arg;
    if (seq > *max)
        *max = seq;
    return 0;
}

typedef struct {
    sch *s;
    int err;
    char msg[256];
} recover_ctx;

static int recover_row(const sch_task_row *row, void *arg)
{
    recover_ctx *rc = arg;
    sch *s = rc->s;
    sch_task *t = calloc(1, sizeof *t);
    sch_rec *r = t ? sch_rec_from_row(row) : NULL;
    if (!r) {
        free(t);
        snprintf(rc->msg, sizeof rc->msg, "task %" PRId64 ": its record does not decode", row->id);
        rc->err = -EINVAL;
        return 1;
    }
    t->id = row->id;
    snprintf(t->idstr, sizeof t->idstr, "%" PRId64, row->id);
    t->rec = r;
    snprintf(t->lease_owner, sizeof t->lease_owner, "%s", row->lease_owner);
    t->lease_expires_ms = row->lease_expires_ms;
    /* Events may be newer than the row's last_seq (they are appended without rewriting it). */
    uint64_t last = row->last_seq;
    s->reader->ops->events_read(s->reader, row->id, row->last_seq, UINT32_MAX, count_events, &last);
    r->last_seq = last;
    char err[256];
    t->pool = pool_of(s, r, err, sizeof err);
    t->next_seq = last + 1;
    t->committed_seq = last;
    sch_task_insert(s, t);
    if (!t->pool) {
        /* The workers config no longer has a pool for it: fail it rather than keep it forever. */
        t->phase = TP_FINISHING;
        char why[400];
        snprintf(why, sizeof why, "no worker pool can run it any more: %.300s", err);
        finish(s, t, SCH_FAILED, why);
        return 0;
    }
    if (row->state == SCH_QUEUED) {
        sch_enqueue(s, t);
    } else if (sch_lease_reclaimable(row->lease_owner, row->lease_expires_ms, s->cfg.id,
                                     sch_now_ms())) {
        char why[300];
        snprintf(why, sizeof why, "attempt %u interrupted: the lease of %.100s was recovered",
                 r->attempt, row->lease_owner[0] ? row->lease_owner : "nobody");
        requeue(s, t, false, why);
    } else {
        t->phase = TP_FOREIGN;
        s->n_foreign++;
    }
    return 0;
}

int sch_tasks_recover(sch *s, char *err, size_t errlen)
{
    recover_ctx rc = {.s = s};
    pthread_mutex_lock(&s->mu);
    int r = s->reader->ops->tasks_active(s->reader, recover_row, &rc);
    pthread_mutex_unlock(&s->mu);
    if (rc.err) {
        snprintf(err, errlen, "%s", rc.msg);
        return rc.err;
    }
    if (r < 0) {
        snprintf(err, errlen, "loading active tasks: %s", sch_store_error(s->store));
        return r;
    }
    rpc_log("info", "recovered", "active=%zu", s->n_active);
    return 0;
}

grpc_status_code sch_task_cancel(sch *s, sch_task *t, sch_call *c, char *msg, size_t len)
{
    if (t->phase == TP_FOREIGN) {
        snprintf(msg, len, "task %s runs under the lease of scheduler %s", t->idstr,
                 t->lease_owner);
        return GRPC_STATUS_FAILED_PRECONDITION;
    }
    /* First, so that the write that ends the task knows it answers a Cancel. */
    c->next_waiter = t->waiters;
    t->waiters = c;
    switch (t->phase) {
    case TP_QUEUED:
        sch_heap_remove(t->pool, t);
        sch_delayed_remove(s, t);
        finish(s, t, SCH_CANCELLED, "cancelled by request");
        break;
    case TP_LEASING:
        t->cancel_requested = true;
        break;
    case TP_RUNNING:
        t->cancel_requested = true;
        if (t->run)
            grpc_call_cancel(t->run->call, NULL);
        break;
    case TP_FINISHING:
        if (!state_final(t->rec->state))
            t->cancel_requested = true;
        break;
    case TP_FOREIGN:
        break;
    }
    return GRPC_STATUS_OK;
}

static void requeue_committed(sch *s, sch_op *op)
{
    sch_call *c = op->arg;
    pthread_mutex_lock(&s->mu);
    sch_task *t = op->t;
    if (op->rc == -EEXIST) {
        /* Two Requeues of one task raced: both read it final before either committed, and the
         * loser's first event collided with the winner's. The task is queued already; this is
         * the answer a later Requeue gets, not a store failure a client should retry. */
        char msg[300];
        snprintf(msg, sizeof msg, "task %s was requeued by another call meanwhile", t->idstr);
        sch_reply(c, NULL, GRPC_STATUS_FAILED_PRECONDITION, msg);
        pthread_mutex_unlock(&s->mu);
        sch_task_free(t);
        sch_op_free(op);
        return;
    }
    if (op->rc < 0) {
        char msg[300];
        snprintf(msg, sizeof msg, "task %s could not be requeued: %.200s", t->idstr, op->error);
        sch_reply(c, NULL, op->rc == -ESTALE ? GRPC_STATUS_ABORTED : GRPC_STATUS_UNAVAILABLE, msg);
        pthread_mutex_unlock(&s->mu);
        sch_task_free(t);
        sch_op_free(op);
        return;
    }
    t->committed_seq = op->events[op->n_events - 1].seq;
    sch_reply(c, &t->rec->base, GRPC_STATUS_OK, NULL);
    sch_task_adopt(s, t);
    pthread_mutex_unlock(&s->mu);
    sch_op_free(op);
}

grpc_status_code sch_task_requeue(sch *s, int64_t id, sch_call *c, char *msg, size_t len)
{
    if (sch_task_find(s, id)) {
        snprintf(msg, len, "task %" PRId64 " is still active", id);
        return GRPC_STATUS_FAILED_PRECONDITION;
    }
    sch_rec *rec = NULL;
    /* The row and its newest event are read in one snapshot: read apart, a Requeue committed in
     * between would show an old row with the new events, and a second Requeue would then take
     * the next seq and pass (two copies of the task running). In one snapshot, racing Requeues
     * compute the same seq and all but one fail on it. */
    uint64_t last = 0;
    pthread_mutex_lock(&s->reader_mu);
    sch_store *rd = s->reader;
    bool snap = rd->ops->begin(rd) == 0;
    int rc = rd->ops->task_get(rd, id, sch_rec_take, &rec);
    if (rc == 0 && rec) {
        last = rec->last_seq;
        rd->ops->events_read(rd, id, last, UINT32_MAX, count_events, &last);
    }
    if (snap)
        rd->ops->commit(rd);
    pthread_mutex_unlock(&s->reader_mu);
    if (rc == -ENOENT) {
        snprintf(msg, len, "no task %" PRId64, id);
        return GRPC_STATUS_NOT_FOUND;
    }
    if (rc < 0 || !rec) {
        snprintf(msg, len, "task %" PRId64 " could not be read", id);
        if (rec)
            protobuf_c_message_free_unpacked(&rec->base, NULL);
        return GRPC_STATUS_UNAVAILABLE;
    }
    if ((int)rec->state == SCH_SUCCEEDED || !state_final((int)rec->state)) {
        snprintf(msg, len,
                 "task %" PRId64 " is %s; only FAILED, CANCELLED or DEAD tasks can be "
                 "requeued",
                 id, sch_state_name((int)rec->state));
        protobuf_c_message_free_unpacked(&rec->base, NULL);
        return GRPC_STATUS_FAILED_PRECONDITION;
    }
    sch_task *t = calloc(1, sizeof *t);
    char err[256];
    if (t)
        t->pool = pool_of(s, rec, err, sizeof err);
    if (!t || !t->pool) {
        snprintf(msg, len, "task %" PRId64 " cannot run here: %.200s", id, t ? err : "no memory");
        free(t);
        protobuf_c_message_free_unpacked(&rec->base, NULL);
        return GRPC_STATUS_FAILED_PRECONDITION;
    }
    /* Every event of the old attempts stays; the new ones follow on. */
    t->id = id;
    snprintf(t->idstr, sizeof t->idstr, "%" PRId64, id);
    t->rec = rec;
    t->next_seq = last + 1;
    t->rec->state = PM__SCHEDULER__V1__TASK_STATE__QUEUED;
    t->rec->failed_attempts = 0;
    t->rec->finished_ms = 0;
    t->rec->started_ms = 0;
    t->rec->not_before_ms = 0;
    sch_rec_set_str(&t->rec->error, "");
    sch_op *op = sch_op_new(OP_TASK);
    Pm__Scheduler__V1__WatchEvent ev;
    sch_event_init(t, &ev);
    ev.state = PM__SCHEDULER__V1__TASK_STATE__QUEUED;
    ev.message = (char *)"requeued";
    t->rec->updated_ms = ev.time_ms;
    if (!op || sch_op_event(op, &ev) < 0 || sch_op_task(op, t) < 0) {
        sch_op_free(op);
        sch_task_free(t);
        snprintf(msg, len, "out of memory");
        return GRPC_STATUS_RESOURCE_EXHAUSTED;
    }
    op->expect_attempt = t->rec->attempt;
    op->done = requeue_committed;
    op->durable = true;
    op->arg = c;
    sch_write(s, op);
    return GRPC_STATUS_OK;
}

/* ---- time --------------------------------------------------------------------------------- */

void sch_tasks_tick(sch *s)
{
    int64_t now = sch_now_ms();
    for (sch_task **pp = &s->delayed; *pp;) {
        sch_task *t = *pp;
        if (t->rec->not_before_ms <= now) {
            *pp = t->next_delayed;
            t->delayed = false;
            if (sch_heap_push(t->pool, t) < 0) {
                t->delayed = true;
                t->next_delayed = *pp;
                *pp = t;
                pp = &t->next_delayed;
            }
        } else {
            pp = &t->next_delayed;
        }
    }
    /* Foreign leases that expired come to us (replicas; or a previous instance's name). The scan
     * walks every active task, so it runs only while there are foreign ones. */
    for (size_t b = 0; s->n_foreign > 0 && b < SCH_TASK_BUCKETS; b++)
        for (sch_task *t = s->buckets[b]; t; t = t->hnext)
            if (t->phase == TP_FOREIGN && t->lease_expires_ms <= now) {
                s->n_foreign--;
                requeue(s, t, false, "the lease of another scheduler expired");
            }
    uint64_t now_us = rpc_now_us();
    if (now_us >= s->renew_at_us) {
        s->renew_at_us = now_us + s->cfg.lease_ttl_ms * 1000 / 3;
        sch_op *op = sch_op_new(OP_RENEW);
        if (op) {
            op->lease_owner = sch_xstrdup(s->cfg.id);
            op->row.lease_expires_ms = now + (int64_t)s->cfg.lease_ttl_ms;
            sch_write(s, op);
        }
    }
    sch_dispatch(s);
}

size_t sch_tasks_running(sch *s)
{
    size_t n = 0;
    for (size_t b = 0; b < SCH_TASK_BUCKETS; b++)
        for (sch_task *t = s->buckets[b]; t; t = t->hnext)
            if (t->phase == TP_LEASING || t->phase == TP_RUNNING ||
                (t->phase == TP_FINISHING && t->writes > 0))
                n++;
    return n;
}

void sch_tasks_release_all(sch *s)
{
    for (size_t b = 0; b < SCH_TASK_BUCKETS; b++)
        for (sch_task *t = s->buckets[b]; t; t = t->hnext)
            if (t->phase == TP_RUNNING || t->phase == TP_LEASING) {
                t->release_requested = true;
                if (t->run)
                    grpc_call_cancel(t->run->call, NULL);
            }
}

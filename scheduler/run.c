/*
 * One step's Run call to an executor: the request (the step's command lines with {{id}} filled,
 * per-command timeout, output cap), the call's batches on the scheduler's completion queue, and
 * the executor's events turned into the task's: output chunks (capped per stream, with
 * backpressure when the writer lags) and the step result from the exit events. When every batch
 * of the call has come back, tasks.c decides what the step's end means (sch_step_ended).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "scheduler/sched.h"

#define EXEC_RUN_METHOD "/pm.executor.v1.Executor/Run"

static grpc_byte_buffer *run_request(const sch_task *t, const Pm__Scheduler__V1__Step *st,
                                     uint32_t timeout_ms)
{
    size_t n = st->n_commands;
    Pm__Executor__V1__Command *cmds = calloc(n, sizeof *cmds);
    Pm__Executor__V1__Command **pc = calloc(n, sizeof *pc);
    grpc_byte_buffer *bb = NULL;
    if (!cmds || !pc)
        goto out;
    for (size_t i = 0; i < n; i++) {
        pm__executor__v1__command__init(&cmds[i]);
        cmds[i].shell = sch_pipeline_fill_builtin(st->commands[i], t->idstr);
        if (!cmds[i].shell)
            goto out;
        pc[i] = &cmds[i];
    }
    Pm__Executor__V1__RunRequest req = PM__EXECUTOR__V1__RUN_REQUEST__INIT;
    req.n_commands = n;
    req.commands = pc;
    req.timeout_ms = timeout_ms;
    req.output_cap = t->rec->output_cap;
    bb = sch_pack_bb(&req.base);
out:
    for (size_t i = 0; cmds && i < n; i++)
        if (cmds[i].shell != protobuf_c_empty_string)
            free(cmds[i].shell);
    free(cmds);
    free(pc);
    return bb;
}

static gpr_timespec deadline_in(int64_t ms)
{
    if (ms <= 0)
        ms = 1;
    return gpr_time_add(gpr_now(GPR_CLOCK_MONOTONIC), gpr_time_from_millis(ms, GPR_TIMESPAN));
}

static void run_free(sch_run *run)
{
    if (run->call)
        grpc_call_unref(run->call);
    if (run->send_bb)
        grpc_byte_buffer_destroy(run->send_bb);
    if (run->recv_bb)
        grpc_byte_buffer_destroy(run->recv_bb);
    grpc_metadata_array_destroy(&run->md_init);
    grpc_metadata_array_destroy(&run->md_trail);
    grpc_slice_unref(run->details);
    if (run->has_auth)
        grpc_slice_unref(run->auth.value);
    if (run->res)
        protobuf_c_message_free_unpacked(&run->res->base, NULL);
    free(run);
}

static void run_maybe_done(sch *s, sch_run *run)
{
    if (run->pending > 0)
        return;
    sch_task *t = run->t;
    t->run = NULL;
    sch_step_ended(s, t, run);
    run_free(run);
}

static void run_recv(sch_run *run)
{
    grpc_op op;
    memset(&op, 0, sizeof op);
    op.op = GRPC_OP_RECV_MESSAGE;
    op.data.recv_message.recv_message = &run->recv_bb;
    /* If it cannot start, the status still ends the call. */
    if (grpc_call_start_batch(run->call, &op, 1, &run->tag_recv, NULL) == GRPC_CALL_OK)
        run->pending++;
}

void sch_run_resume(sch_task *t)
{
    sch_run *run = t->run;
    if (!run || !run->recv_paused)
        return;
    run->recv_paused = false;
    run_recv(run);
}

/* Keeps at most the task's cap of each stream per step, flagging what is cut. */
static void on_output(sch *s, sch_task *t, sch_run *run, int stream, const ProtobufCBinaryData *d)
{
    uint64_t cap = t->rec->output_cap;
    uint64_t *kept = &run->kept[stream - 1];
    size_t n = d->len;
    if (*kept + n > cap) {
        run->res->truncated = true;
        n = *kept < cap ? (size_t)(cap - *kept) : 0;
    }
    if (n == 0)
        return;
    *kept += n;
    Pm__Scheduler__V1__WatchEvent ev;
    Pm__Scheduler__V1__OutputChunk oc = PM__SCHEDULER__V1__OUTPUT_CHUNK__INIT;
    sch_event_init(t, &ev);
    oc.step = t->step;
    oc.stream = (uint32_t)stream;
    oc.data.data = d->data;
    oc.data.len = n;
    ev.output = &oc;
    sch_write_event(s, t, &ev);
}

static void on_exited(sch_run *run, uint32_t command, const Pm__Executor__V1__Exited *x)
{
    Pm__Scheduler__V1__StepResult *r = run->res;
    run->exited_seen = true;
    r->exit_code = x->exit_code;
    r->signal = x->signal;
    r->timed_out = r->timed_out || x->timed_out;
    r->cancelled = r->cancelled || x->cancelled;
    r->wall_us += x->wall_us;
    r->stdout_bytes += x->stdout_bytes;
    r->stderr_bytes += x->stderr_bytes;
    r->truncated = r->truncated || x->truncated;
    if (x->error && x->error[0])
        sch_rec_set_str(&r->error, x->error);
    if (x->exit_code != 0 || x->signal != 0 || x->timed_out)
        r->failed_command = command;
}

static void on_run_recv(rpc_tag *tag, bool ok)
{
    sch_run *run = rpc_container_of(tag, sch_run, tag_recv);
    sch_task *t = run->t;
    sch *s = run->e->w->s;
    pthread_mutex_lock(&s->mu);
    run->pending--;
    if (!ok || !run->recv_bb) {
        run_maybe_done(s, run);
        pthread_mutex_unlock(&s->mu);
        return;
    }
    uint8_t *data = NULL;
    size_t len = 0;
    int rc = rpc_bb_flatten(run->recv_bb, &data, &len);
    grpc_byte_buffer_destroy(run->recv_bb);
    run->recv_bb = NULL;
    Pm__Executor__V1__RunEvent *ev =
        rc == 0 ? pm__executor__v1__run_event__unpack(NULL, len, data) : NULL;
    free(data);
    if (!ev) {
        sch_rec_set_str(&run->res->error, "the executor sent an event that does not decode");
        grpc_call_cancel(run->call, NULL);
    } else {
        if (ev->stdout_data.len)
            on_output(s, t, run, 1, &ev->stdout_data);
        if (ev->stderr_data.len)
            on_output(s, t, run, 2, &ev->stderr_data);
        if (ev->exited)
            on_exited(run, ev->command, ev->exited);
        pm__executor__v1__run_event__free_unpacked(ev, NULL);
        /* Backpressure: past the backlog the executor waits (it reads its pipes only as fast
         * as we take its messages) until the writer catches up. */
        if (t->backlog >= SCH_MAX_BACKLOG)
            run->recv_paused = true;
        else
            run_recv(run);
    }
    run_maybe_done(s, run);
    pthread_mutex_unlock(&s->mu);
}

/* One of the call's batches that carries nothing to look at came back. */
static void run_batch_returned(sch_run *run)
{
    sch *s = run->e->w->s;
    pthread_mutex_lock(&s->mu);
    run->pending--;
    run_maybe_done(s, run);
    pthread_mutex_unlock(&s->mu);
}

static void on_run_start(rpc_tag *tag, bool ok)
{
    (void)ok; /* a failed start shows in the status */
    run_batch_returned(rpc_container_of(tag, sch_run, tag_start));
}

static void on_run_status(rpc_tag *tag, bool ok)
{
    (void)ok; /* the status itself is read when the run is done */
    run_batch_returned(rpc_container_of(tag, sch_run, tag_status));
}

int sch_run_start(sch *s, sch_task *t, sch_exec *e, const Pm__Scheduler__V1__Step *st,
                  uint32_t step_timeout_ms, int64_t left_ms, sch_run **out)
{
    sch_rec *r = t->rec;
    sch_run *run = calloc(1, sizeof *run);
    if (!run)
        return -ENOMEM;
    run->t = t;
    run->e = e;
    run->tag_start.fn = on_run_start;
    run->tag_recv.fn = on_run_recv;
    run->tag_status.fn = on_run_status;
    run->details = grpc_empty_slice();
    grpc_metadata_array_init(&run->md_init);
    grpc_metadata_array_init(&run->md_trail);
    run->res = malloc(sizeof *run->res);
    run->send_bb = run_request(t, st, step_timeout_ms);
    if (!run->res || !run->send_bb) {
        free(run->res);
        run->res = NULL;
        run_free(run);
        return -ENOMEM;
    }
    pm__scheduler__v1__step_result__init(run->res);
    run->res->step = t->step;
    run->res->attempt = r->attempt;
    run->res->executor = sch_xstrdup(st->executor);

    gpr_timespec dl =
        left_ms == INT64_MAX ? gpr_inf_future(GPR_CLOCK_MONOTONIC) : deadline_in(left_ms);
    grpc_slice method = grpc_slice_from_static_string(EXEC_RUN_METHOD);
    run->call = grpc_channel_create_call(e->ch, NULL, GRPC_PROPAGATE_DEFAULTS, s->cq, method, NULL,
                                         dl, NULL);
    if (s->executor_token) {
        char hdr[4200];
        snprintf(hdr, sizeof hdr, "Bearer %.4096s", s->executor_token);
        run->auth.key = grpc_slice_from_static_string("authorization");
        run->auth.value = grpc_slice_from_copied_string(hdr);
        run->has_auth = true;
    }
    grpc_op ops[4];
    size_t n =
        rpc_client_open_ops(ops, &run->auth, run->has_auth, run->send_bb, &run->md_init, NULL);
    if (!run->call || grpc_call_start_batch(run->call, ops, n, &run->tag_start, NULL) != 0) {
        run_free(run);
        return -EIO;
    }
    run->pending++;
    grpc_op sop;
    rpc_client_status_op(&sop, &run->md_trail, &run->status, &run->details);
    if (grpc_call_start_batch(run->call, &sop, 1, &run->tag_status, NULL) == GRPC_CALL_OK)
        run->pending++;
    run_recv(run);
    *out = run;
    return 0;
}

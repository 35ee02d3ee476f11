/*
 * sched_load: drives pm-scheduler with a fixed number of tasks in flight and prints one key=value
 * line. In mode "e2e" each slot submits a task (a one-step pipeline, by default the shell line
 * `true` on the executor named by --executor) and then watches it to its final state; the latency
 * of a task is from the moment its Submit is sent to the end of its Watch stream, so it covers the
 * durable acknowledgement, queueing, the lease, the step on the executor and the final write. In
 * mode "submit" each slot only submits: the rate of durable acknowledgements (run the scheduler
 * with --paused so nothing executes). One channel, one `next` completion queue driven by this
 * thread, like bench/client.c. Exits 1 when a task did not succeed or a call failed; timing never
 * decides the exit code.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <grpc/grpc.h>
#include <grpc/grpc_security.h>
#include <grpc/support/alloc.h>
#include <grpc/support/time.h>

#include "bench/bench.h"
#include "protos/scheduler.pb-c.h"

#define SUBMIT_METHOD "/pm.scheduler.v1.Scheduler/Submit"
#define WATCH_METHOD "/pm.scheduler.v1.Scheduler/Watch"

typedef struct slot slot;
typedef struct {
    grpc_channel *ch;
    grpc_completion_queue *cq;
    bool watch;
    uint8_t *submit_req;
    size_t submit_len;
    uint64_t issued, done, total, warmup;
    uint64_t ok, failed;
    uint64_t t_first_us, t_last_us;
    bench_samples lat;
    char last_error[256];
} load;

/* One task in flight: its Submit call, then its Watch call. */
struct slot {
    load *l;
    rpc_tag tag;
    grpc_call *call;
    bool watching;
    uint64_t index, t0_us;
    grpc_byte_buffer *send_bb, *recv_bb;
    grpc_metadata_array md_init, md_trail;
    grpc_status_code status;
    grpc_slice details;
    int final_state;
    int phase; /* watch: 0 waiting for the message, 1 waiting for the status */
};

static void slot_reset(slot *s)
{
    if (s->call)
        grpc_call_unref(s->call);
    s->call = NULL;
    if (s->send_bb)
        grpc_byte_buffer_destroy(s->send_bb);
    if (s->recv_bb)
        grpc_byte_buffer_destroy(s->recv_bb);
    s->send_bb = s->recv_bb = NULL;
    grpc_metadata_array_destroy(&s->md_init);
    grpc_metadata_array_destroy(&s->md_trail);
    grpc_slice_unref(s->details);
    s->details = grpc_empty_slice();
    grpc_metadata_array_init(&s->md_init);
    grpc_metadata_array_init(&s->md_trail);
}

static void on_event(rpc_tag *tag, bool ok);

static gpr_timespec deadline(void)
{
    return gpr_time_add(gpr_now(GPR_CLOCK_MONOTONIC), gpr_time_from_seconds(120, GPR_TIMESPAN));
}

/* A unary-style batch: everything in one go, the reply and the status come back together. */
static bool start_call(slot *s, const char *method, grpc_byte_buffer *req, bool stream)
{
    load *l = s->l;
    grpc_slice m = grpc_slice_from_static_string(method);
    s->call = grpc_channel_create_call(l->ch, NULL, GRPC_PROPAGATE_DEFAULTS, l->cq, m, NULL,
                                       deadline(), NULL);
    s->send_bb = req;
    grpc_op ops[6];
    size_t n = rpc_client_open_ops(ops, NULL, 0, req, &s->md_init, &s->recv_bb);
    /* A stream's status comes only after every message: read messages one by one first. */
    if (!stream)
        rpc_client_status_op(&ops[n++], &s->md_trail, &s->status, &s->details);
    s->tag.fn = on_event;
    s->phase = 0;
    return s->call && grpc_call_start_batch(s->call, ops, n, &s->tag, NULL) == GRPC_CALL_OK;
}

static bool start_task(slot *s)
{
    load *l = s->l;
    if (l->issued >= l->total)
        return false;
    s->index = l->issued++;
    s->watching = false;
    s->final_state = 0;
    s->t0_us = rpc_now_us();
    if (s->index == l->warmup)
        l->t_first_us = s->t0_us;
    return start_call(s, SUBMIT_METHOD, rpc_bb_from(l->submit_req, l->submit_len), false);
}

static void task_done(slot *s, bool ok, const char *why)
{
    load *l = s->l;
    uint64_t now = rpc_now_us();
    l->done++;
    if (ok)
        l->ok++;
    else {
        l->failed++;
        snprintf(l->last_error, sizeof l->last_error, "%s", why);
    }
    if (s->index >= l->warmup) {
        bench_samples_add(&l->lat, now - s->t0_us);
        l->t_last_us = now;
    }
    slot_reset(s);
    start_task(s);
}

static void status_error(slot *s, const char *what)
{
    char *d = grpc_slice_to_c_string(s->details);
    char why[300];
    snprintf(why, sizeof why, "%s: %s: %.200s", what, rpc_status_name(s->status), d);
    gpr_free(d);
    task_done(s, false, why);
}

static void on_event(rpc_tag *tag, bool ok)
{
    slot *s = rpc_container_of(tag, slot, tag);
    load *l = s->l;
    (void)ok;
    if (!s->watching) {
        /* The Submit call is over. */
        if (s->status != GRPC_STATUS_OK || !s->recv_bb) {
            status_error(s, "Submit");
            return;
        }
        if (!l->watch) {
            task_done(s, true, "");
            return;
        }
        uint8_t *data = NULL;
        size_t len = 0;
        rpc_bb_flatten(s->recv_bb, &data, &len);
        Pm__Scheduler__V1__Task *t = pm__scheduler__v1__task__unpack(NULL, len, data);
        free(data);
        if (!t) {
            task_done(s, false, "Submit reply does not decode");
            return;
        }
        Pm__Scheduler__V1__WatchRequest wr = PM__SCHEDULER__V1__WATCH_REQUEST__INIT;
        wr.id = t->id;
        uint8_t buf[64];
        size_t wl = pm__scheduler__v1__watch_request__pack(&wr, buf);
        pm__scheduler__v1__task__free_unpacked(t, NULL);
        slot_reset(s);
        s->watching = true;
        if (!start_call(s, WATCH_METHOD, rpc_bb_from(buf, wl), true))
            task_done(s, false, "Watch could not start");
        return;
    }
    if (s->phase == 1) {
        if (s->status != GRPC_STATUS_OK) {
            status_error(s, "Watch");
            return;
        }
        task_done(s, s->final_state == PM__SCHEDULER__V1__TASK_STATE__SUCCEEDED,
                  "the task did not succeed");
        return;
    }
    if (s->recv_bb) {
        /* Only state changes matter here; output events are skipped unread. */
        uint8_t *data = NULL;
        size_t len = 0;
        rpc_bb_flatten(s->recv_bb, &data, &len);
        grpc_byte_buffer_destroy(s->recv_bb);
        s->recv_bb = NULL;
        Pm__Scheduler__V1__WatchEvent *ev = pm__scheduler__v1__watch_event__unpack(NULL, len, data);
        free(data);
        if (ev && ev->state)
            s->final_state = ev->state;
        if (ev)
            pm__scheduler__v1__watch_event__free_unpacked(ev, NULL);
        grpc_op op;
        memset(&op, 0, sizeof op);
        op.op = GRPC_OP_RECV_MESSAGE;
        op.data.recv_message.recv_message = &s->recv_bb;
        if (grpc_call_start_batch(s->call, &op, 1, &s->tag, NULL) != GRPC_CALL_OK)
            task_done(s, false, "Watch read failed");
        return;
    }
    /* The stream ended: fetch the status. */
    grpc_op op;
    rpc_client_status_op(&op, &s->md_trail, &s->status, &s->details);
    s->phase = 1;
    if (grpc_call_start_batch(s->call, &op, 1, &s->tag, NULL) != GRPC_CALL_OK)
        task_done(s, false, "Watch status failed");
}

static const char synopsis[] =
    "usage: sched_load --target ADDR [flags]\n"
    "\n"
    "Submits one-step tasks to pm-scheduler with --inflight outstanding. Mode e2e watches each\n"
    "task to its end (latency from Submit to the end of the Watch); mode submit only counts\n"
    "durable acknowledgements (run the scheduler with --paused). Prints one key=value line.";

int main(int argc, char **argv)
{
    const char *target = NULL, *mode = "e2e", *executor = "x", *shell = "true";
    uint64_t inflight = 1, tasks = 1000, warmup = UINT64_MAX;
    const rpc_flag flags[] = {
        {"target", RPC_FLAG_STRING, &target, "scheduler address, host:port"},
        {"mode", RPC_FLAG_STRING, &mode, "e2e or submit"},
        {"inflight", RPC_FLAG_UINT, &inflight, "tasks kept outstanding"},
        {"tasks", RPC_FLAG_UINT, &tasks, "tasks in total, warm-up included"},
        {"warmup", RPC_FLAG_UINT, &warmup, "first tasks left out (default tasks/10)"},
        {"executor", RPC_FLAG_STRING, &executor, "executor name of the step"},
        {"shell", RPC_FLAG_STRING, &shell, "the step's command line"},
    };
    const bench_cmdline cmd = {"sched_load", synopsis, flags, sizeof flags / sizeof flags[0]};
    int usage_rc = bench_flags_parse(&cmd, argc, argv);
    if (usage_rc >= 0)
        return usage_rc;
    if (!target || (strcmp(mode, "e2e") && strcmp(mode, "submit")) ||
        !bench_flag_in_range(&cmd, "inflight", inflight, 1, 10000) ||
        !bench_flag_in_range(&cmd, "tasks", tasks, 1, 100000000)) {
        fprintf(stderr, "sched_load: need --target and --mode e2e|submit\n");
        return 2;
    }
    if (warmup == UINT64_MAX)
        warmup = tasks / 10;
    if (warmup >= tasks)
        warmup = 0;

    load l;
    memset(&l, 0, sizeof l);
    l.watch = !strcmp(mode, "e2e");
    l.total = tasks;
    l.warmup = warmup;
    bench_samples_init(&l.lat, tasks);

    Pm__Scheduler__V1__Step step = PM__SCHEDULER__V1__STEP__INIT;
    char *cmds[] = {(char *)shell};
    step.executor = (char *)executor;
    step.commands = cmds;
    step.n_commands = 1;
    Pm__Scheduler__V1__Step *steps[] = {&step};
    Pm__Scheduler__V1__Pipeline pipe = PM__SCHEDULER__V1__PIPELINE__INIT;
    pipe.steps = steps;
    pipe.n_steps = 1;
    Pm__Scheduler__V1__SubmitRequest req = PM__SCHEDULER__V1__SUBMIT_REQUEST__INIT;
    req.pipeline = &pipe;
    l.submit_len = pm__scheduler__v1__submit_request__get_packed_size(&req);
    l.submit_req = malloc(l.submit_len);
    pm__scheduler__v1__submit_request__pack(&req, l.submit_req);

    grpc_init();
    grpc_channel_credentials *creds = grpc_insecure_credentials_create();
    l.ch = grpc_channel_create(target, creds, NULL);
    grpc_channel_credentials_release(creds);
    l.cq = grpc_completion_queue_create_for_next(NULL);
    slot *slots = calloc(inflight, sizeof *slots);
    for (uint64_t i = 0; i < inflight; i++) {
        slots[i].l = &l;
        slots[i].details = grpc_empty_slice();
        grpc_metadata_array_init(&slots[i].md_init);
        grpc_metadata_array_init(&slots[i].md_trail);
        start_task(&slots[i]);
    }
    double cpu0 = bench_self_cpu_s();
    while (l.done < l.total) {
        grpc_event ev = grpc_completion_queue_next(
            l.cq,
            gpr_time_add(gpr_now(GPR_CLOCK_MONOTONIC), gpr_time_from_seconds(150, GPR_TIMESPAN)),
            NULL);
        if (ev.type != GRPC_OP_COMPLETE) {
            fprintf(stderr, "sched_load: no progress for 150 s (%" PRIu64 " of %" PRIu64 " done)\n",
                    l.done, l.total);
            return 1;
        }
        rpc_tag *t = ev.tag;
        t->fn(t, ev.success);
    }
    double cpu = bench_self_cpu_s() - cpu0;
    uint64_t timed = l.total - l.warmup;
    uint64_t wall = l.t_last_us > l.t_first_us ? l.t_last_us - l.t_first_us : 1;
    printf("mode=%s inflight=%" PRIu64 " tasks=%" PRIu64 " ok=%" PRIu64 " failed=%" PRIu64
           " tasks_per_s=%.1f p50_ms=%.3f p99_ms=%.3f max_ms=%.3f client_cpu_s=%.2f\n",
           mode, inflight, timed, l.ok, l.failed, (double)timed * 1e6 / (double)wall,
           (double)bench_percentile(&l.lat, 0.50) / 1000.0,
           (double)bench_percentile(&l.lat, 0.99) / 1000.0,
           (double)bench_percentile(&l.lat, 1.0) / 1000.0, cpu);
    if (l.failed)
        fprintf(stderr, "sched_load: %" PRIu64 " failed; last: %s\n", l.failed, l.last_error);
    for (uint64_t i = 0; i < inflight; i++)
        slot_reset(&slots[i]);
    grpc_channel_destroy(l.ch);
    grpc_completion_queue_shutdown(l.cq);
    while (grpc_completion_queue_next(l.cq, gpr_inf_future(GPR_CLOCK_MONOTONIC), NULL).type !=
           GRPC_QUEUE_SHUTDOWN)
        ;
    grpc_completion_queue_destroy(l.cq);
    grpc_shutdown();
    free(slots);
    free(l.submit_req);
    bench_samples_free(&l.lat);
    return l.failed ? 1 : 0;
}

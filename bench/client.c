/*
 * The benchmarks' Run client on gRPC C core: one channel (so one TCP connection), one `next`
 * completion queue driven by the calling thread, and a fixed number of call slots that are
 * refilled as calls finish, so exactly `inflight` calls are outstanding until the last ones drain.
 *
 * Each call is two batches started together: (SEND_INITIAL_METADATA, SEND_MESSAGE,
 * SEND_CLOSE_FROM_CLIENT, RECV_INITIAL_METADATA, RECV_MESSAGE), after which RECV_MESSAGE is
 * re-armed until it yields no message, and (RECV_STATUS_ON_CLIENT). The call is over when both
 * chains have come back; only then is it unreferenced.
 *
 * Events are counted without copying the output: a large message is an output chunk, whose few
 * header bytes are parsed by hand and checked against the message length; everything else is
 * unpacked with protobuf-c.
 */
#include "bench/bench.h"

#include <errno.h>
#include <stdio.h>
#include <malloc.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <grpc/byte_buffer_reader.h>
#include <grpc/grpc_security.h>
#include <grpc/slice.h>
#include <grpc/support/alloc.h>
#include <grpc/support/time.h>

#include "protos/executor.pb-c.h"
#include "rpc/rpc.h"

/* Messages at least this long are taken for output chunks and only their header is parsed. */
#define CHUNK_FAST_PATH_MIN 256
/* How long the queue may stay silent past the per-call deadline before the run is abandoned. */
#define STALL_GRACE_US 10000000u

typedef struct call_slot {
    rpc_tag tag_recv, tag_status;
    bench_client *cl;
    grpc_call *call;
    bool active;
    bool stream_done, status_done;
    bool command_failed;
    uint64_t index; /* order of issue; the first cfg.warmup are the warm-up */
    uint64_t t0_us;
    grpc_byte_buffer *send_bb;
    grpc_byte_buffer *recv_bb;
    grpc_metadata_array md_initial, md_trailing;
    grpc_status_code status;
    grpc_slice details;
} call_slot;

struct bench_client {
    bench_client_config cfg;
    grpc_channel *channel;
    grpc_completion_queue *cq;
    void *run_method;
    call_slot *slots;

    /* Per run. */
    bench_client_result *res;
    uint64_t issued, completed;
    uint64_t t_window_start, t_window_end; /* see bench_client_run */
    uint64_t window_lo, window_hi;
};

/* ---- decoding --------------------------------------------------------------------------- */

static bool read_varint(const uint8_t *p, size_t n, size_t *pos, uint64_t *out)
{
    uint64_t v = 0;
    for (unsigned shift = 0; shift < 64 && *pos < n; shift += 7) {
        uint8_t b = p[(*pos)++];
        v |= (uint64_t)(b & 0x7f) << shift;
        if (!(b & 0x80)) {
            *out = v;
            return true;
        }
    }
    return false;
}

/*
 * An output chunk is RunEvent{command (varint, absent for 0), stdout_data or stderr_data}: a few
 * header bytes and then the data to the end of the message. Returns true and counts it when the
 * header says exactly that; false leaves the message to protobuf-c.
 */
static bool count_chunk_fast(grpc_byte_buffer *bb, size_t total, bench_run_totals *t)
{
    uint8_t head[16];
    size_t have = 0;
    grpc_byte_buffer_reader r;
    if (!grpc_byte_buffer_reader_init(&r, bb))
        return false;
    grpc_slice *s;
    while (have < sizeof head && grpc_byte_buffer_reader_peek(&r, &s)) {
        size_t k = GRPC_SLICE_LENGTH(*s);
        if (k > sizeof head - have)
            k = sizeof head - have;
        memcpy(head + have, GRPC_SLICE_START_PTR(*s), k);
        have += k;
    }
    grpc_byte_buffer_reader_destroy(&r);

    size_t pos = 0;
    for (;;) {
        uint64_t key, v;
        if (!read_varint(head, have, &pos, &key))
            return false;
        unsigned field = (unsigned)(key >> 3), wire = (unsigned)(key & 7);
        if (field == 1 && wire == 0) {
            if (!read_varint(head, have, &pos, &v))
                return false;
            continue;
        }
        if ((field == 3 || field == 4) && wire == 2) {
            if (!read_varint(head, have, &pos, &v) || pos + v != total)
                return false;
            t->events++;
            if (field == 3)
                t->stdout_bytes += v;
            else
                t->stderr_bytes += v;
            return true;
        }
        return false;
    }
}

static void count_event(call_slot *sl, grpc_byte_buffer *bb)
{
    bench_run_totals *t = &sl->cl->res->totals;
    size_t total = grpc_byte_buffer_length(bb);
    if (total >= CHUNK_FAST_PATH_MIN && count_chunk_fast(bb, total, t))
        return;
    uint8_t *data = NULL;
    size_t len = 0;
    if (rpc_bb_flatten(bb, &data, &len) < 0) {
        t->bad_messages++;
        return;
    }
    Pm__Executor__V1__RunEvent *ev = pm__executor__v1__run_event__unpack(NULL, len, data);
    free(data);
    if (!ev) {
        t->bad_messages++;
        return;
    }
    t->events++;
    t->stdout_bytes += ev->stdout_data.len;
    t->stderr_bytes += ev->stderr_data.len;
    if (ev->started)
        t->started++;
    if (ev->exited) {
        t->exited++;
        if (ev->exited->exit_code != 0 || ev->exited->signal != 0) {
            sl->command_failed = true;
            t->last_exit_code = ev->exited->exit_code ? ev->exited->exit_code : -1;
            snprintf(t->last_error, sizeof t->last_error, "command exited %d signal %d: %s",
                     ev->exited->exit_code, ev->exited->signal, ev->exited->error);
        }
    }
    pm__executor__v1__run_event__free_unpacked(ev, NULL);
}

/* ---- one call --------------------------------------------------------------------------- */

static void on_recv(rpc_tag *tag, bool ok);
static void on_status(rpc_tag *tag, bool ok);

static gpr_timespec deadline_in_ms(unsigned ms)
{
    return gpr_time_add(gpr_now(GPR_CLOCK_MONOTONIC),
                        gpr_time_from_millis((int64_t)ms, GPR_TIMESPAN));
}

/* Starts the next call in sl. Returns false when gRPC refused it (nothing outstanding then). */
static bool call_start(bench_client *cl, call_slot *sl)
{
    memset(sl, 0, sizeof *sl);
    sl->cl = cl;
    sl->tag_recv.fn = on_recv;
    sl->tag_status.fn = on_status;
    sl->index = cl->issued++;
    sl->t0_us = rpc_now_us();
    if (sl->index == cl->window_lo && cl->window_lo == 0)
        cl->t_window_start = sl->t0_us;
    grpc_metadata_array_init(&sl->md_initial);
    grpc_metadata_array_init(&sl->md_trailing);
    sl->call = grpc_channel_create_registered_call(cl->channel, NULL, GRPC_PROPAGATE_DEFAULTS,
                                                   cl->cq, cl->run_method,
                                                   deadline_in_ms(cl->cfg.deadline_ms), NULL);
    sl->send_bb = rpc_bb_from(cl->cfg.request, cl->cfg.request_len);

    grpc_op ops[5];
    size_t n = rpc_client_open_ops(ops, NULL, 0, sl->send_bb, &sl->md_initial, &sl->recv_bb);
    bool recv_started =
        grpc_call_start_batch(sl->call, ops, n, &sl->tag_recv, NULL) == GRPC_CALL_OK;

    grpc_op st;
    rpc_client_status_op(&st, &sl->md_trailing, &sl->status, &sl->details);
    bool status_started =
        grpc_call_start_batch(sl->call, &st, 1, &sl->tag_status, NULL) == GRPC_CALL_OK;

    sl->active = true;
    sl->stream_done = !recv_started;
    sl->status_done = !status_started;
    if (!status_started) {
        sl->status = GRPC_STATUS_INTERNAL;
        sl->details = grpc_slice_from_static_string("grpc_call_start_batch refused the status op");
    }
    if (!recv_started) {
        grpc_byte_buffer_destroy(sl->send_bb);
        sl->send_bb = NULL;
        if (status_started)
            grpc_call_cancel(sl->call, NULL); /* so the status comes back soon */
    }
    return recv_started || status_started;
}

/* Books the finished call in sl and frees what it held. */
static void call_end(call_slot *sl)
{
    bench_client *cl = sl->cl;
    bench_client_result *res = cl->res;
    uint64_t now = rpc_now_us();
    bench_run_totals *t = &res->totals;
    if (sl->status == GRPC_STATUS_OK && !sl->command_failed) {
        t->calls_ok++;
    } else {
        t->calls_failed++;
        if (sl->status != GRPC_STATUS_OK) {
            t->last_status = (int)sl->status;
            char *d = grpc_slice_to_c_string(sl->details);
            snprintf(t->last_error, sizeof t->last_error, "status %d: %s", (int)sl->status, d);
            gpr_free(d);
        }
    }
    if (sl->index >= cl->cfg.warmup)
        bench_samples_add(&res->latency, now - sl->t0_us);
    cl->completed++;
    /* The window of full concurrency: see bench_client_run. */
    if (cl->completed == cl->window_lo && cl->window_lo > 0)
        cl->t_window_start = now;
    if (cl->completed == cl->window_hi)
        cl->t_window_end = now;

    if (sl->recv_bb)
        grpc_byte_buffer_destroy(sl->recv_bb);
    if (sl->send_bb)
        grpc_byte_buffer_destroy(sl->send_bb);
    grpc_metadata_array_destroy(&sl->md_initial);
    grpc_metadata_array_destroy(&sl->md_trailing);
    grpc_slice_unref(sl->details);
    grpc_call_unref(sl->call);
    sl->call = NULL;
    sl->active = false;
}

static void maybe_end(call_slot *sl)
{
    if (sl->stream_done && sl->status_done)
        call_end(sl);
}

static void on_recv(rpc_tag *tag, bool ok)
{
    call_slot *sl = rpc_container_of(tag, call_slot, tag_recv);
    if (sl->send_bb) {
        /* The first batch is back: the request has been sent. */
        grpc_byte_buffer_destroy(sl->send_bb);
        sl->send_bb = NULL;
    }
    grpc_byte_buffer *bb = sl->recv_bb;
    sl->recv_bb = NULL;
    if (!ok || !bb) {
        if (bb)
            grpc_byte_buffer_destroy(bb);
        sl->stream_done = true;
        maybe_end(sl);
        return;
    }
    count_event(sl, bb);
    grpc_byte_buffer_destroy(bb);

    grpc_op op;
    memset(&op, 0, sizeof op);
    op.op = GRPC_OP_RECV_MESSAGE;
    op.data.recv_message.recv_message = &sl->recv_bb;
    if (grpc_call_start_batch(sl->call, &op, 1, &sl->tag_recv, NULL) != GRPC_CALL_OK) {
        sl->stream_done = true;
        maybe_end(sl);
    }
}

static void on_status(rpc_tag *tag, bool ok)
{
    (void)ok; /* RECV_STATUS_ON_CLIENT always succeeds; the status says how the call went */
    call_slot *sl = rpc_container_of(tag, call_slot, tag_status);
    sl->status_done = true;
    maybe_end(sl);
}

/* ---- the client ------------------------------------------------------------------------- */

bench_client *bench_client_create(const bench_client_config *cfg, char *err, size_t errlen)
{
    /* glibc gives the top of the heap back to the kernel whenever a large enough block at its
     * end is freed (M_TRIM_THRESHOLD, which follows the dynamic mmap threshold), and the next
     * read buffer faults the pages in again. Receiving a gigabyte, that cost this client up to
     * 4 s of CPU in page faults and TLB shootdowns and swung the stream figure threefold from
     * run to run; it measured the client's allocator, not the executor. A client that means to
     * receive a lot keeps its memory. */
    mallopt(M_TRIM_THRESHOLD, 64 << 20);
    mallopt(M_MMAP_THRESHOLD, 4 << 20);
    bench_client *cl = calloc(1, sizeof *cl);
    if (!cl) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    cl->cfg = *cfg;
    if (!cl->cfg.inflight)
        cl->cfg.inflight = 1;
    if (!cl->cfg.tick_ms)
        cl->cfg.tick_ms = 10;
    if (!cl->cfg.deadline_ms)
        cl->cfg.deadline_ms = 120000;
    cl->slots = calloc(cl->cfg.inflight, sizeof *cl->slots);
    if (!cl->slots) {
        free(cl);
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    /* Output chunks are far below 4 MiB, but the client should never be the limit. Retries
     * are off: a failed call is counted, and the retry filter only adds work per call. */
    grpc_arg args[] = {
        {.type = GRPC_ARG_INTEGER,
         .key = GRPC_ARG_MAX_RECEIVE_MESSAGE_LENGTH,
         .value.integer = 64 << 20},
        {.type = GRPC_ARG_INTEGER, .key = GRPC_ARG_ENABLE_RETRIES, .value.integer = 0},
    };
    grpc_channel_args chargs = {.num_args = sizeof args / sizeof args[0], .args = args};
    grpc_channel_credentials *creds = grpc_insecure_credentials_create();
    cl->channel = grpc_channel_create(cfg->target, creds, &chargs);
    grpc_channel_credentials_release(creds);
    cl->cq = grpc_completion_queue_create_for_next(NULL);
    cl->run_method =
        grpc_channel_register_call(cl->channel, "/pm.executor.v1.Executor/Run", NULL, NULL);
    return cl;
}

/* One unary Health/Check; returns the gRPC status, with *serving set from the reply. */
static grpc_status_code health_once(bench_client *cl, bool *serving)
{
    typedef struct {
        rpc_tag tag;
        bool done;
    } waiter;
    waiter w = {.tag = {.fn = NULL}, .done = false};
    grpc_metadata_array md_i, md_t;
    grpc_metadata_array_init(&md_i);
    grpc_metadata_array_init(&md_t);
    grpc_byte_buffer *req = rpc_bb_from("", 0), *reply = NULL;
    grpc_status_code status = GRPC_STATUS_UNKNOWN;
    grpc_slice details = grpc_empty_slice();
    grpc_slice method = grpc_slice_from_static_string("/grpc.health.v1.Health/Check");
    grpc_call *call = grpc_channel_create_call(cl->channel, NULL, GRPC_PROPAGATE_DEFAULTS, cl->cq,
                                               method, NULL, deadline_in_ms(1000), NULL);
    grpc_op ops[6];
    size_t n = rpc_client_open_ops(ops, NULL, 0, req, &md_i, &reply);
    rpc_client_status_op(&ops[n++], &md_t, &status, &details);
    *serving = false;
    if (grpc_call_start_batch(call, ops, n, &w.tag, NULL) == GRPC_CALL_OK) {
        while (!w.done) {
            grpc_event ev = grpc_completion_queue_next(cl->cq, deadline_in_ms(5000), NULL);
            if (ev.type == GRPC_OP_COMPLETE && ev.tag == &w.tag)
                w.done = true;
            else if (ev.type != GRPC_OP_COMPLETE)
                break; /* cannot happen with a 1 s call deadline; do not spin forever */
        }
    } else {
        status = GRPC_STATUS_INTERNAL;
    }
    if (reply) {
        /* HealthCheckResponse{status: SERVING} is the two bytes 08 01. */
        uint8_t *d = NULL;
        size_t n = 0;
        if (rpc_bb_flatten(reply, &d, &n) == 0) {
            *serving = n == 2 && d[0] == 0x08 && d[1] == 0x01;
            free(d);
        }
        grpc_byte_buffer_destroy(reply);
    }
    grpc_byte_buffer_destroy(req);
    grpc_slice_unref(details);
    grpc_metadata_array_destroy(&md_i);
    grpc_metadata_array_destroy(&md_t);
    grpc_call_unref(call);
    return status;
}

int bench_client_health(bench_client *cl, unsigned wait_ms, unsigned n, unsigned gap_us,
                        bench_samples *lat, char *err, size_t errlen)
{
    uint64_t until = rpc_now_us() + (uint64_t)wait_ms * 1000u;
    bool serving = false;
    grpc_status_code st = GRPC_STATUS_UNKNOWN;
    for (;;) {
        st = health_once(cl, &serving);
        if (st == GRPC_STATUS_OK && serving)
            break;
        if (rpc_now_us() >= until) {
            snprintf(err, errlen, "%s not serving after %u ms (last status %d)", cl->cfg.target,
                     wait_ms, (int)st);
            return -ETIMEDOUT;
        }
        usleep(20000);
    }
    for (unsigned i = 0; i < n; i++) {
        if (gap_us)
            usleep(gap_us);
        uint64_t t0 = rpc_now_us();
        st = health_once(cl, &serving);
        if (lat)
            bench_samples_add(lat, rpc_now_us() - t0);
        if (st != GRPC_STATUS_OK || !serving) {
            snprintf(err, errlen, "%s: health check %u failed (status %d)", cl->cfg.target, i,
                     (int)st);
            return -EIO;
        }
    }
    return 0;
}

/*
 * Throughput is taken over the stretch where exactly `inflight` calls are outstanding: from the
 * warmup-th completion (or the first start when there is no warm-up) to the completion after
 * which no new call is issued (calls - inflight). The drain at the end, with fewer and fewer calls
 * outstanding, is left out. When that stretch would be empty, the whole run counts.
 */
int bench_client_run(bench_client *cl, bench_client_result *res, char *err, size_t errlen)
{
    const bench_client_config *cfg = &cl->cfg;
    memset(res, 0, sizeof *res);
    if (bench_samples_init(&res->latency, cfg->calls) < 0) {
        snprintf(err, errlen, "out of memory");
        return -ENOMEM;
    }
    cl->res = res;
    cl->issued = cl->completed = 0;
    cl->t_window_start = cl->t_window_end = 0;
    uint64_t tail = cfg->inflight < cfg->calls ? cfg->inflight : cfg->calls;
    cl->window_lo = cfg->warmup;
    cl->window_hi = cfg->calls - tail;
    if (cl->window_hi <= cl->window_lo) {
        cl->window_lo = 0;
        cl->window_hi = cfg->calls;
    }

    int rc = 0;
    bool aborting = false;
    uint64_t last_event = rpc_now_us(), next_tick = 0;
    uint64_t stall_us = (uint64_t)cfg->deadline_ms * 1000u + STALL_GRACE_US;
    for (;;) {
        /* Refill every free slot; a call gRPC refuses outright is booked as failed at once. */
        for (unsigned i = 0; i < cfg->inflight && !aborting; i++) {
            call_slot *sl = &cl->slots[i];
            while (!sl->active && cl->issued < cfg->calls) {
                if (call_start(cl, sl))
                    break;
                call_end(sl);
            }
        }
        bool any_active = false;
        for (unsigned i = 0; i < cfg->inflight; i++)
            any_active |= cl->slots[i].active;
        if (!any_active)
            break;

        grpc_event ev = grpc_completion_queue_next(cl->cq, deadline_in_ms(cfg->tick_ms), NULL);
        uint64_t now = rpc_now_us();
        if (cfg->tick && now >= next_tick) {
            cfg->tick(cfg->tick_arg, now);
            next_tick = now + (uint64_t)cfg->tick_ms * 1000u;
        }
        if (ev.type == GRPC_OP_COMPLETE) {
            last_event = now;
            rpc_tag *tag = ev.tag;
            tag->fn(tag, ev.success != 0);
        } else if (!aborting && now - last_event > stall_us) {
            snprintf(err, errlen, "no completion for %llu ms; cancelling the calls",
                     (unsigned long long)(stall_us / 1000u));
            rc = -ETIMEDOUT;
            aborting = true;
            for (unsigned i = 0; i < cfg->inflight; i++)
                if (cl->slots[i].active)
                    grpc_call_cancel(cl->slots[i].call, NULL);
        }
    }
    uint64_t end = cl->t_window_end ? cl->t_window_end : rpc_now_us();
    res->wall_us = end > cl->t_window_start ? end - cl->t_window_start : 0;
    res->timed_calls = cl->window_hi - cl->window_lo;
    cl->res = NULL;
    return rc;
}

void bench_client_destroy(bench_client *cl)
{
    if (!cl)
        return;
    grpc_channel_destroy(cl->channel);
    grpc_completion_queue_shutdown(cl->cq);
    for (;;) {
        grpc_event ev =
            grpc_completion_queue_next(cl->cq, gpr_inf_future(GPR_CLOCK_MONOTONIC), NULL);
        if (ev.type == GRPC_QUEUE_SHUTDOWN)
            break;
    }
    grpc_completion_queue_destroy(cl->cq);
    free(cl->slots);
    free(cl);
}

uint8_t *bench_pack_shell_request(const char *shell, size_t *len)
{
    Pm__Executor__V1__Command cmd = PM__EXECUTOR__V1__COMMAND__INIT;
    cmd.shell = (char *)shell;
    Pm__Executor__V1__Command *cmds[] = {&cmd};
    Pm__Executor__V1__RunRequest req = PM__EXECUTOR__V1__RUN_REQUEST__INIT;
    req.n_commands = 1;
    req.commands = cmds;
    size_t n = pm__executor__v1__run_request__get_packed_size(&req);
    uint8_t *buf = malloc(n ? n : 1);
    if (!buf)
        return NULL;
    *len = pm__executor__v1__run_request__pack(&req, buf);
    return buf;
}

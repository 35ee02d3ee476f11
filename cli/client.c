/*
 * The client library behind pmctl: one channel per target, and one engine (call_run) that runs a
 * unary or server-streaming call on a private completion queue. The engine holds everything the
 * call's batches point to in one struct, keeps count of the tags it has started, receives one
 * message at a time, and only after every tag has come back unrefs the call, shuts the queue down
 * and drains it. Typed helpers for the executor's methods sit on top.
 */
#include "cli/client.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include <grpc/grpc.h>
#include <grpc/grpc_security.h>
#include <grpc/slice.h>
#include <grpc/support/time.h>

#include "rpc/rpc.h"

struct cli_conn {
    grpc_channel *channel;
    char *target;
    char *authorization; /* "Bearer TOKEN" or NULL */
    uint64_t deadline_ms;
    const volatile sig_atomic_t *interrupt;
};

/* How often a call in progress looks at the interrupt flag. */
#define INTERRUPT_POLL_MS 100

/* Deadlines past this (about 34 years) are treated as none, so the arithmetic cannot overflow. */
#define MAX_DEADLINE_MS (UINT64_C(1) << 40)

const char *cli_status_name(grpc_status_code code)
{
    return rpc_status_name(code);
}

const char *cli_serving_status_name(Grpc__Health__V1__HealthCheckResponse__ServingStatus s)
{
    switch (s) {
    case GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__UNKNOWN:
        return "UNKNOWN";
    case GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__SERVING:
        return "SERVING";
    case GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__NOT_SERVING:
        return "NOT_SERVING";
    case GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__SERVICE_UNKNOWN:
        return "SERVICE_UNKNOWN";
    default:
        return "INVALID";
    }
}

/* A token goes into a header value, where only visible ASCII and spaces are legal. */
static bool token_ok(const char *t)
{
    if (!*t)
        return false;
    for (; *t; t++)
        if ((unsigned char)*t < 0x20 || (unsigned char)*t > 0x7e)
            return false;
    return true;
}

int cli_connect(const cli_config *cfg, cli_conn **out, char *err, size_t errlen)
{
    cli_conn *c = NULL;
    int rc = 0;
    bool inited = false;

    *out = NULL;
    if (!cfg->target || !*cfg->target) {
        snprintf(err, errlen, "no target given (--target host:port or unix:/path)");
        return -EINVAL;
    }
    if (cfg->token && !token_ok(cfg->token)) {
        snprintf(err, errlen, "the token is empty or holds characters not allowed in a header");
        return -EINVAL;
    }
    c = calloc(1, sizeof *c);
    if (!c)
        goto nomem;
    c->target = strdup(cfg->target);
    if (!c->target)
        goto nomem;
    if (cfg->token) {
        size_t n = strlen(cfg->token) + sizeof "Bearer ";
        c->authorization = malloc(n);
        if (!c->authorization)
            goto nomem;
        snprintf(c->authorization, n, "Bearer %s", cfg->token);
    }
    c->deadline_ms = cfg->deadline_ms >= MAX_DEADLINE_MS ? 0 : cfg->deadline_ms;
    c->interrupt = cfg->interrupt;

    grpc_init();
    inited = true;
    grpc_channel_credentials *creds;
    rc = rpc_client_credentials(cfg->tls_ca_file, &creds, err, errlen);
    if (rc < 0)
        goto fail;
    grpc_arg args[5];
    size_t nargs = 0;
    memset(args, 0, sizeof args);
    args[nargs].type = GRPC_ARG_INTEGER;
    args[nargs].key = (char *)GRPC_ARG_MAX_RECEIVE_MESSAGE_LENGTH;
    args[nargs++].value.integer = (int)CLI_MAX_RECEIVE_BYTES;
    args[nargs].type = GRPC_ARG_STRING;
    args[nargs].key = (char *)GRPC_ARG_PRIMARY_USER_AGENT_STRING;
    args[nargs++].value.string = (char *)"pm-cli/" PM_VERSION;
    if (cfg->tls_ca_file && cfg->tls_server_name) {
        args[nargs].type = GRPC_ARG_STRING;
        args[nargs].key = (char *)GRPC_SSL_TARGET_NAME_OVERRIDE_ARG;
        args[nargs++].value.string = (char *)cfg->tls_server_name;
    }
    if (cfg->max_reconnect_backoff_ms) {
        /* The first wait must not exceed the longest one, or gRPC keeps its own first wait. */
        int ms = cfg->max_reconnect_backoff_ms > INT32_MAX ? INT32_MAX
                                                           : (int)cfg->max_reconnect_backoff_ms;
        args[nargs].type = GRPC_ARG_INTEGER;
        args[nargs].key = (char *)GRPC_ARG_MAX_RECONNECT_BACKOFF_MS;
        args[nargs++].value.integer = ms;
        args[nargs].type = GRPC_ARG_INTEGER;
        args[nargs].key = (char *)GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS;
        args[nargs++].value.integer = ms < 1000 ? ms : 1000;
    }
    grpc_channel_args chargs = {.num_args = nargs, .args = args};
    /* Never NULL: a bad target gives a channel whose calls fail with a status naming it. */
    c->channel = grpc_channel_create(c->target, creds, &chargs);
    grpc_channel_credentials_release(creds);
    *out = c;
    return 0;

nomem:
    snprintf(err, errlen, "out of memory");
    rc = -ENOMEM;
fail:
    if (c) {
        free(c->authorization);
        free(c->target);
        free(c);
    }
    if (inited)
        grpc_shutdown();
    return rc;
}

void cli_close(cli_conn *c)
{
    if (!c)
        return;
    grpc_channel_destroy(c->channel);
    free(c->authorization);
    free(c->target);
    free(c);
    grpc_shutdown();
}

const char *cli_target(const cli_conn *c)
{
    return c->target;
}

/* ---- the call engine -------------------------------------------------------------------- */

/* Tags are small integers: each call has its own queue, so they need not be unique addresses. */
enum { TAG_START = 1, TAG_STATUS, TAG_MESSAGE };

/*
 * Receives each decoded message with ownership; returns 0 to go on, or a negative errno that
 * cancels the call and becomes the helper's result.
 */
typedef int (*take_fn)(ProtobufCMessage *msg, void *arg);

/* Everything the batches of one call point to lives here until the last tag is back. */
typedef struct {
    cli_conn *conn;
    const ProtobufCMessageDescriptor *resp_desc;
    take_fn take;
    void *take_arg;

    grpc_completion_queue *cq;
    grpc_call *call;
    grpc_metadata auth;
    size_t auth_count;
    grpc_metadata_array initial_md;
    grpc_metadata_array trailing_md;
    grpc_status_code status;
    grpc_slice details;
    grpc_byte_buffer *send_bb;
    grpc_byte_buffer *recv_bb;

    int pending;   /* tags started and not yet come back */
    bool finished; /* the status has come back */
    int local_rc;  /* why we cancelled the call, or 0 */
    char local_msg[256];
} call_state;

/* Cancels the call for a local reason; the first reason wins. */
static void call_cancel(call_state *cs, int rc, const char *msg)
{
    if (cs->local_rc)
        return;
    cs->local_rc = rc;
    snprintf(cs->local_msg, sizeof cs->local_msg, "%s", msg);
    grpc_call_cancel(cs->call, NULL);
}

static void start_recv_message(call_state *cs)
{
    grpc_op op;
    memset(&op, 0, sizeof op);
    op.op = GRPC_OP_RECV_MESSAGE;
    op.data.recv_message.recv_message = &cs->recv_bb;
    if (grpc_call_start_batch(cs->call, &op, 1, (void *)(intptr_t)TAG_MESSAGE, NULL) ==
        GRPC_CALL_OK)
        cs->pending++;
    else
        call_cancel(cs, -EIO, "cannot start receiving a message");
}

/* A RECV_MESSAGE came back: hand the message over and ask for the next one. */
static void on_message(call_state *cs, bool ok)
{
    if (!ok || !cs->recv_bb)
        return; /* end of stream, or the call failed: the status says which */
    uint8_t *data = NULL;
    size_t len = 0;
    int rc = rpc_bb_flatten(cs->recv_bb, &data, &len);
    grpc_byte_buffer_destroy(cs->recv_bb);
    cs->recv_bb = NULL;
    if (rc < 0) {
        call_cancel(cs, rc == -ENOMEM ? -ENOMEM : -EBADMSG, "cannot read a received message");
        return;
    }
    ProtobufCMessage *msg = protobuf_c_message_unpack(cs->resp_desc, NULL, len, data);
    free(data);
    if (!msg) {
        char m[160];
        snprintf(m, sizeof m, "cannot decode a %zu-byte %s from the server", len,
                 cs->resp_desc->name);
        call_cancel(cs, -EBADMSG, m);
        return;
    }
    if (cs->local_rc) {
        /* Already cancelled: the caller asked to hear nothing more. */
        protobuf_c_message_free_unpacked(msg, NULL);
        return;
    }
    rc = cs->take(msg, cs->take_arg);
    if (rc < 0) {
        call_cancel(cs, rc, rc == -ECANCELED ? "cancelled by the client" : "response rejected");
        return;
    }
    start_recv_message(cs);
}

static void check_interrupt(call_state *cs)
{
    if (cs->conn->interrupt && *cs->conn->interrupt && !cs->finished)
        call_cancel(cs, -ECANCELED, "interrupted");
}

static gpr_timespec call_deadline(const cli_conn *c)
{
    if (!c->deadline_ms)
        return gpr_inf_future(GPR_CLOCK_REALTIME);
    return gpr_time_add(gpr_now(GPR_CLOCK_MONOTONIC),
                        gpr_time_from_millis((int64_t)c->deadline_ms, GPR_TIMESPAN));
}

/* Packs req straight into the slice that is sent, so a large stdin is copied once. */
static grpc_byte_buffer *pack_message(const ProtobufCMessage *req)
{
    size_t len = protobuf_c_message_get_packed_size(req);
    grpc_slice s = grpc_slice_malloc(len);
    protobuf_c_message_pack(req, GRPC_SLICE_START_PTR(s));
    grpc_byte_buffer *bb = grpc_raw_byte_buffer_create(&s, 1);
    grpc_slice_unref(s);
    return bb;
}

static void copy_slice(char *dst, size_t size, grpc_slice s)
{
    size_t n = GRPC_SLICE_LENGTH(s);
    if (n >= size)
        n = size - 1;
    memcpy(dst, GRPC_SLICE_START_PTR(s), n);
    dst[n] = '\0';
}

static int call_run(cli_conn *c, const char *method, const ProtobufCMessage *req,
                    const ProtobufCMessageDescriptor *resp_desc, take_fn take, void *arg,
                    cli_status *st)
{
    call_state cs;
    memset(&cs, 0, sizeof cs);
    cs.conn = c;
    cs.resp_desc = resp_desc;
    cs.take = take;
    cs.take_arg = arg;
    cs.status = GRPC_STATUS_UNKNOWN;
    cs.details = grpc_empty_slice();
    grpc_metadata_array_init(&cs.initial_md);
    grpc_metadata_array_init(&cs.trailing_md);
    if (c->authorization) {
        cs.auth.key = grpc_slice_from_static_string("authorization");
        cs.auth.value = grpc_slice_from_copied_string(c->authorization);
        cs.auth_count = 1;
    }

    cs.cq = grpc_completion_queue_create_for_next(NULL);
    grpc_slice m = grpc_slice_from_copied_string(method);
    cs.call = grpc_channel_create_call(c->channel, NULL, GRPC_PROPAGATE_DEFAULTS, cs.cq, m, NULL,
                                       call_deadline(c), NULL);
    grpc_slice_unref(m);
    if (!cs.call) {
        cs.local_rc = -EIO;
        snprintf(cs.local_msg, sizeof cs.local_msg, "cannot create a call for %s", method);
        goto done;
    }
    cs.send_bb = pack_message(req);

    grpc_op ops[4];
    size_t n = rpc_client_open_ops(ops, &cs.auth, cs.auth_count, cs.send_bb, &cs.initial_md, NULL);
    grpc_call_error e = grpc_call_start_batch(cs.call, ops, n, (void *)(intptr_t)TAG_START, NULL);
    if (e != GRPC_CALL_OK) {
        /* Nothing was started, so there is no tag to wait for. */
        cs.local_rc = -EIO;
        snprintf(cs.local_msg, sizeof cs.local_msg, "cannot start the call (grpc_call_error %d)",
                 (int)e);
        goto done;
    }
    cs.pending++;

    rpc_client_status_op(&ops[0], &cs.trailing_md, &cs.status, &cs.details);
    if (grpc_call_start_batch(cs.call, ops, 1, (void *)(intptr_t)TAG_STATUS, NULL) == GRPC_CALL_OK)
        cs.pending++;
    else
        call_cancel(&cs, -EIO, "cannot start receiving the status");
    if (!cs.local_rc)
        start_recv_message(&cs);

    while (cs.pending > 0) {
        gpr_timespec wait =
            c->interrupt ? gpr_time_add(gpr_now(GPR_CLOCK_MONOTONIC),
                                        gpr_time_from_millis(INTERRUPT_POLL_MS, GPR_TIMESPAN))
                         : gpr_inf_future(GPR_CLOCK_MONOTONIC);
        grpc_event ev = grpc_completion_queue_next(cs.cq, wait, NULL);
        if (ev.type == GRPC_OP_COMPLETE) {
            cs.pending--;
            switch ((intptr_t)ev.tag) {
            case TAG_START:
                break; /* a failure here shows in the status */
            case TAG_STATUS:
                cs.finished = true;
                break;
            case TAG_MESSAGE:
                on_message(&cs, ev.success != 0);
                break;
            }
        } else if (ev.type == GRPC_QUEUE_SHUTDOWN) {
            break; /* cannot happen before we shut it down; do not spin if it does */
        }
        check_interrupt(&cs);
    }

done:
    if (cs.local_rc) {
        st->code = cs.local_rc == -ECANCELED ? GRPC_STATUS_CANCELLED : GRPC_STATUS_INTERNAL;
        snprintf(st->details, sizeof st->details, "%s", cs.local_msg);
    } else {
        st->code = cs.status;
        copy_slice(st->details, sizeof st->details, cs.details);
    }
    /* Every tag is back: now the call may go, then the queue is shut down and drained. */
    if (cs.call)
        grpc_call_unref(cs.call);
    grpc_completion_queue_shutdown(cs.cq);
    while (grpc_completion_queue_next(cs.cq, gpr_inf_future(GPR_CLOCK_MONOTONIC), NULL).type !=
           GRPC_QUEUE_SHUTDOWN)
        ;
    grpc_completion_queue_destroy(cs.cq);
    if (cs.send_bb)
        grpc_byte_buffer_destroy(cs.send_bb);
    if (cs.recv_bb)
        grpc_byte_buffer_destroy(cs.recv_bb);
    grpc_metadata_array_destroy(&cs.initial_md);
    grpc_metadata_array_destroy(&cs.trailing_md);
    grpc_slice_unref(cs.details);
    if (cs.auth_count) {
        grpc_slice_unref(cs.auth.key);
        grpc_slice_unref(cs.auth.value);
    }
    if (cs.local_rc)
        return cs.local_rc;
    return st->code == GRPC_STATUS_OK ? 0 : -EREMOTEIO;
}

/* ---- generic helpers -------------------------------------------------------------------- */

typedef struct {
    cli_message_fn fn;
    void *arg;
} stream_take;

static int take_stream(ProtobufCMessage *msg, void *arg)
{
    stream_take *t = arg;
    int rc = t->fn(msg, t->arg);
    protobuf_c_message_free_unpacked(msg, NULL);
    return rc ? -ECANCELED : 0;
}

int cli_stream(cli_conn *c, const char *method, const ProtobufCMessage *req,
               const ProtobufCMessageDescriptor *resp_desc, cli_message_fn fn, void *arg,
               cli_status *st)
{
    stream_take t = {.fn = fn, .arg = arg};
    return call_run(c, method, req, resp_desc, take_stream, &t, st);
}

typedef struct {
    ProtobufCMessage *msg;
    bool extra; /* a second response came: a unary method must send exactly one */
} unary_take;

static int take_unary(ProtobufCMessage *msg, void *arg)
{
    unary_take *t = arg;
    if (t->msg) {
        t->extra = true;
        protobuf_c_message_free_unpacked(msg, NULL);
        return -EBADMSG;
    }
    t->msg = msg;
    return 0;
}

int cli_unary(cli_conn *c, const char *method, const ProtobufCMessage *req,
              const ProtobufCMessageDescriptor *resp_desc, ProtobufCMessage **out, cli_status *st)
{
    unary_take t = {.msg = NULL, .extra = false};
    int rc = call_run(c, method, req, resp_desc, take_unary, &t, st);
    if (rc == 0 && !t.msg) {
        rc = -EBADMSG;
        st->code = GRPC_STATUS_INTERNAL;
        snprintf(st->details, sizeof st->details, "the server sent no %s", resp_desc->name);
    } else if (t.extra) {
        snprintf(st->details, sizeof st->details, "the server sent more than one %s",
                 resp_desc->name);
    }
    if (rc < 0 && t.msg) {
        protobuf_c_message_free_unpacked(t.msg, NULL);
        t.msg = NULL;
    }
    *out = t.msg;
    return rc;
}

/* ---- the executor's methods ------------------------------------------------------------- */

typedef struct {
    cli_run_event_fn fn;
    void *arg;
} run_take;

static int take_run_event(const ProtobufCMessage *msg, void *arg)
{
    run_take *t = arg;
    return t->fn((const Pm__Executor__V1__RunEvent *)msg, t->arg);
}

int cli_run(cli_conn *c, const Pm__Executor__V1__RunRequest *req, cli_run_event_fn fn, void *arg,
            cli_status *st)
{
    run_take t = {.fn = fn, .arg = arg};
    return cli_stream(c, "/pm.executor.v1.Executor/Run", &req->base,
                      &pm__executor__v1__run_event__descriptor, take_run_event, &t, st);
}

int cli_info(cli_conn *c, Pm__Executor__V1__InfoResponse **out, cli_status *st)
{
    Pm__Executor__V1__InfoRequest req = PM__EXECUTOR__V1__INFO_REQUEST__INIT;
    ProtobufCMessage *msg = NULL;
    int rc = cli_unary(c, "/pm.executor.v1.Executor/Info", &req.base,
                       &pm__executor__v1__info_response__descriptor, &msg, st);
    *out = (Pm__Executor__V1__InfoResponse *)msg;
    return rc;
}

int cli_health_check(cli_conn *c, const char *service,
                     Grpc__Health__V1__HealthCheckResponse__ServingStatus *out, cli_status *st)
{
    Grpc__Health__V1__HealthCheckRequest req = GRPC__HEALTH__V1__HEALTH_CHECK_REQUEST__INIT;
    req.service = (char *)(service ? service : "");
    ProtobufCMessage *msg = NULL;
    int rc = cli_unary(c, "/grpc.health.v1.Health/Check", &req.base,
                       &grpc__health__v1__health_check_response__descriptor, &msg, st);
    *out = GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__UNKNOWN;
    if (msg) {
        *out = ((Grpc__Health__V1__HealthCheckResponse *)msg)->status;
        protobuf_c_message_free_unpacked(msg, NULL);
    }
    return rc;
}

int cli_execute_commands(cli_conn *c, const char *const *commands, size_t n, Exec__ExecResult **out,
                         cli_status *st)
{
    Exec__ExecCommands req = EXEC__EXEC_COMMANDS__INIT;
    req.n_commands = n;
    req.commands = (char **)commands;
    ProtobufCMessage *msg = NULL;
    int rc = cli_unary(c, "/exec.ExecService/ExecuteCommands", &req.base,
                       &exec__exec_result__descriptor, &msg, st);
    *out = (Exec__ExecResult *)msg;
    return rc;
}

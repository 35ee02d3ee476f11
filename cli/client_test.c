/*
 * Unit test of cli/client.c. A fake server in this process (gRPC C core server API, protobuf-c)
 * answers the executor's methods with scripted behaviour chosen by the request, so the client's
 * streaming, cancelling, deadline, interrupt, token and error paths can be checked without the
 * real executor. The fake server runs one call at a time on its own thread and queue.
 */
#include "cli/client.h"

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <grpc/byte_buffer_reader.h>
#include <grpc/grpc.h>
#include <grpc/grpc_security.h>
#include <grpc/support/time.h>

#include "rpc/rpc.h"

#define CHECK(cond, ...)                                                                           \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "FAIL %s:%d: %s: ", __FILE__, __LINE__, #cond);                        \
            fprintf(stderr, __VA_ARGS__);                                                          \
            fputc('\n', stderr);                                                                   \
            exit(1);                                                                               \
        }                                                                                          \
    } while (0)

/* ---- the fake server -------------------------------------------------------------------- */

enum { TAG_NEW = 1, TAG_OP, TAG_CLOSE, TAG_SHUTDOWN };
#define TAGP(t) ((void *)(intptr_t)(t))

static grpc_server *srv;
static grpc_completion_queue *srv_cq;
static pthread_t srv_thread;
static char srv_target[64];
static bool srv_shutdown_seen;

/* What the server saw in the last call, for the assertions. */
static char seen_auth[128];
static Pm__Executor__V1__RunRequest *seen_run;
static int flood_sent;

/* Waits for tag on the server queue, noting the close and shutdown tags that come meanwhile. */
static bool srv_wait(void *tag, bool *close_seen)
{
    for (;;) {
        grpc_event ev =
            grpc_completion_queue_next(srv_cq, gpr_inf_future(GPR_CLOCK_MONOTONIC), NULL);
        CHECK(ev.type == GRPC_OP_COMPLETE, "server queue event %d", (int)ev.type);
        if (ev.tag == tag)
            return ev.success != 0;
        if (ev.tag == TAGP(TAG_CLOSE) && close_seen)
            *close_seen = true;
        else if (ev.tag == TAGP(TAG_SHUTDOWN))
            srv_shutdown_seen = true;
        else
            CHECK(0, "unexpected server tag %p", ev.tag);
    }
}

static bool srv_send(grpc_call *call, const ProtobufCMessage *msg, bool *close_seen)
{
    size_t len = protobuf_c_message_get_packed_size(msg);
    uint8_t *buf = malloc(len + 1);
    protobuf_c_message_pack(msg, buf);
    grpc_byte_buffer *bb = rpc_bb_from(buf, len);
    free(buf);
    grpc_op op;
    memset(&op, 0, sizeof op);
    op.op = GRPC_OP_SEND_MESSAGE;
    op.data.send_message.send_message = bb;
    CHECK(grpc_call_start_batch(call, &op, 1, TAGP(TAG_OP), NULL) == GRPC_CALL_OK, "send");
    bool ok = srv_wait(TAGP(TAG_OP), close_seen);
    grpc_byte_buffer_destroy(bb);
    return ok;
}

static void srv_send_raw(grpc_call *call, const char *bytes, size_t len, bool *close_seen)
{
    grpc_byte_buffer *bb = rpc_bb_from(bytes, len);
    grpc_op op;
    memset(&op, 0, sizeof op);
    op.op = GRPC_OP_SEND_MESSAGE;
    op.data.send_message.send_message = bb;
    CHECK(grpc_call_start_batch(call, &op, 1, TAGP(TAG_OP), NULL) == GRPC_CALL_OK, "send raw");
    srv_wait(TAGP(TAG_OP), close_seen);
    grpc_byte_buffer_destroy(bb);
}

static void srv_status(grpc_call *call, grpc_status_code code, const char *details,
                       bool *close_seen)
{
    CHECK(rpc_send_status(call, true, code, details, (rpc_tag *)TAGP(TAG_OP)) == GRPC_CALL_OK,
          "send status");
    srv_wait(TAGP(TAG_OP), close_seen);
}

static void send_event(grpc_call *call, Pm__Executor__V1__RunEvent *ev, bool *close_seen)
{
    CHECK(srv_send(call, &ev->base, close_seen), "send event");
}

static void handle_run(grpc_call *call, const uint8_t *data, size_t len, bool *close_seen)
{
    Pm__Executor__V1__RunRequest *req = pm__executor__v1__run_request__unpack(NULL, len, data);
    CHECK(req, "server cannot decode RunRequest");
    if (seen_run)
        pm__executor__v1__run_request__free_unpacked(seen_run, NULL);
    seen_run = req;
    const char *mode = req->n_commands > 0 ? req->commands[0]->shell : "";

    if (!strcmp(mode, "deny")) {
        srv_status(call, GRPC_STATUS_UNAUTHENTICATED, "bad token", close_seen);
        return;
    }
    if (!strcmp(mode, "hang")) {
        /* Answer only once the client gives up (deadline or cancel). */
        if (!*close_seen)
            srv_wait(TAGP(TAG_CLOSE), NULL);
        *close_seen = true;
        srv_status(call, GRPC_STATUS_OK, "", close_seen);
        return;
    }
    if (!strcmp(mode, "flood")) {
        flood_sent = 0;
        for (int i = 0; i < 100000; i++) {
            Pm__Executor__V1__RunEvent ev = PM__EXECUTOR__V1__RUN_EVENT__INIT;
            ev.stdout_data.data = (uint8_t *)"x";
            ev.stdout_data.len = 1;
            if (!srv_send(call, &ev.base, close_seen))
                break;
            flood_sent++;
        }
        srv_status(call, GRPC_STATUS_OK, "", close_seen);
        return;
    }
    /* Default: one command's worth of events, with binary output. */
    Pm__Executor__V1__Started started = PM__EXECUTOR__V1__STARTED__INIT;
    started.pid = 42;
    Pm__Executor__V1__RunEvent ev = PM__EXECUTOR__V1__RUN_EVENT__INIT;
    ev.started = &started;
    send_event(call, &ev, close_seen);

    Pm__Executor__V1__RunEvent out = PM__EXECUTOR__V1__RUN_EVENT__INIT;
    out.stdout_data.data = (uint8_t *)"out\0\xff";
    out.stdout_data.len = 5;
    send_event(call, &out, close_seen);

    Pm__Executor__V1__RunEvent err = PM__EXECUTOR__V1__RUN_EVENT__INIT;
    err.command = 0;
    err.stderr_data.data = (uint8_t *)"err";
    err.stderr_data.len = 3;
    send_event(call, &err, close_seen);

    Pm__Executor__V1__Exited x = PM__EXECUTOR__V1__EXITED__INIT;
    x.exit_code = 3;
    x.wall_us = 1500;
    x.truncated = true;
    x.error = (char *)"e";
    Pm__Executor__V1__RunEvent ex = PM__EXECUTOR__V1__RUN_EVENT__INIT;
    ex.command = 1;
    ex.exited = &x;
    send_event(call, &ex, close_seen);
    srv_status(call, GRPC_STATUS_OK, "", close_seen);
}

static void handle_info(grpc_call *call, bool *close_seen)
{
    Pm__Executor__V1__InfoResponse r = PM__EXECUTOR__V1__INFO_RESPONSE__INIT;
    r.name = (char *)"fake";
    r.version = (char *)"9.9";
    r.sandbox_profile = (char *)"strict";
    r.max_concurrent = 4;
    r.output_cap = 1u << 20;
    r.pid1 = true;
    CHECK(srv_send(call, &r.base, close_seen), "send info");
    srv_status(call, GRPC_STATUS_OK, "", close_seen);
}

static void handle_health(grpc_call *call, const uint8_t *data, size_t len, bool *close_seen)
{
    Grpc__Health__V1__HealthCheckRequest *req =
        grpc__health__v1__health_check_request__unpack(NULL, len, data);
    CHECK(req, "server cannot decode HealthCheckRequest");
    Grpc__Health__V1__HealthCheckResponse r = GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__INIT;
    if (!strcmp(req->service, "")) {
        r.status = GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__SERVING;
    } else if (!strcmp(req->service, "down")) {
        r.status = GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__NOT_SERVING;
    } else {
        srv_status(call, GRPC_STATUS_NOT_FOUND, "unknown service", close_seen);
        goto out;
    }
    CHECK(srv_send(call, &r.base, close_seen), "send health");
    srv_status(call, GRPC_STATUS_OK, "", close_seen);
out:
    grpc__health__v1__health_check_request__free_unpacked(req, NULL);
}

static void handle_exec(grpc_call *call, const uint8_t *data, size_t len, bool *close_seen)
{
    Exec__ExecCommands *req = exec__exec_commands__unpack(NULL, len, data);
    CHECK(req, "server cannot decode ExecCommands");
    Exec__ExecResult r = EXEC__EXEC_RESULT__INIT;
    char *outs[8];
    CHECK(req->n_commands <= 8, "too many commands");
    for (size_t i = 0; i < req->n_commands; i++) {
        outs[i] = malloc(strlen(req->commands[i]) + 8);
        sprintf(outs[i], "out:%s\n", req->commands[i]);
    }
    r.n_output = req->n_commands;
    r.output = outs;
    r.result = req->n_commands != 2;
    r.errormessage = (char *)(r.result ? "" : "two is a bad number");
    CHECK(srv_send(call, &r.base, close_seen), "send exec result");
    srv_status(call, GRPC_STATUS_OK, "", close_seen);
    for (size_t i = 0; i < req->n_commands; i++)
        free(outs[i]);
    exec__exec_commands__free_unpacked(req, NULL);
}

static bool method_is(const grpc_call_details *d, const char *m)
{
    return GRPC_SLICE_LENGTH(d->method) == strlen(m) &&
           !memcmp(GRPC_SLICE_START_PTR(d->method), m, strlen(m));
}

static void handle(grpc_call *call, const grpc_call_details *d, const grpc_metadata_array *md)
{
    bool close_seen = false;
    int cancelled = 0;
    grpc_op ops[2];
    memset(ops, 0, sizeof ops);
    ops[0].op = GRPC_OP_RECV_CLOSE_ON_SERVER;
    ops[0].data.recv_close_on_server.cancelled = &cancelled;
    CHECK(grpc_call_start_batch(call, ops, 1, TAGP(TAG_CLOSE), NULL) == GRPC_CALL_OK, "close");

    const grpc_slice *auth = rpc_md_get(md, "authorization");
    snprintf(seen_auth, sizeof seen_auth, "%.*s", auth ? (int)GRPC_SLICE_LENGTH(*auth) : 0,
             auth ? (const char *)GRPC_SLICE_START_PTR(*auth) : "");

    grpc_byte_buffer *req = NULL;
    memset(ops, 0, sizeof ops);
    ops[0].op = GRPC_OP_SEND_INITIAL_METADATA;
    ops[1].op = GRPC_OP_RECV_MESSAGE;
    ops[1].data.recv_message.recv_message = &req;
    CHECK(grpc_call_start_batch(call, ops, 2, TAGP(TAG_OP), NULL) == GRPC_CALL_OK, "recv");
    srv_wait(TAGP(TAG_OP), &close_seen);
    uint8_t *data = NULL;
    size_t len = 0;
    if (req) {
        CHECK(rpc_bb_flatten(req, &data, &len) == 0, "flatten");
        grpc_byte_buffer_destroy(req);
    }

    if (!req)
        srv_status(call, GRPC_STATUS_INVALID_ARGUMENT, "no request", &close_seen);
    else if (method_is(d, "/pm.executor.v1.Executor/Run"))
        handle_run(call, data, len, &close_seen);
    else if (method_is(d, "/pm.executor.v1.Executor/Info"))
        handle_info(call, &close_seen);
    else if (method_is(d, "/grpc.health.v1.Health/Check"))
        handle_health(call, data, len, &close_seen);
    else if (method_is(d, "/exec.ExecService/ExecuteCommands"))
        handle_exec(call, data, len, &close_seen);
    else if (method_is(d, "/test.Test/Two")) {
        Pm__Executor__V1__InfoResponse r = PM__EXECUTOR__V1__INFO_RESPONSE__INIT;
        srv_send(call, &r.base, &close_seen);
        srv_send(call, &r.base, &close_seen);
        srv_status(call, GRPC_STATUS_OK, "", &close_seen);
    } else if (method_is(d, "/test.Test/Garbage")) {
        /* A length-delimited field whose length runs past the end. */
        srv_send_raw(call, "\x0a\x7f\x01", 3, &close_seen);
        srv_status(call, GRPC_STATUS_OK, "", &close_seen);
    } else if (method_is(d, "/test.Test/None")) {
        srv_status(call, GRPC_STATUS_OK, "", &close_seen);
    } else {
        srv_status(call, GRPC_STATUS_UNIMPLEMENTED, "no such method", &close_seen);
    }
    if (!close_seen)
        srv_wait(TAGP(TAG_CLOSE), NULL);
    free(data);
    grpc_call_unref(call);
}

static void *srv_main(void *arg)
{
    (void)arg;
    for (;;) {
        grpc_call *call = NULL;
        grpc_call_details d;
        grpc_metadata_array md;
        grpc_call_details_init(&d);
        grpc_metadata_array_init(&md);
        CHECK(grpc_server_request_call(srv, &call, &d, &md, srv_cq, srv_cq, TAGP(TAG_NEW)) ==
                  GRPC_CALL_OK,
              "request_call");
        bool ok = srv_wait(TAGP(TAG_NEW), NULL);
        if (ok)
            handle(call, &d, &md);
        grpc_call_details_destroy(&d);
        grpc_metadata_array_destroy(&md);
        if (!ok)
            break;
    }
    if (!srv_shutdown_seen)
        srv_wait(TAGP(TAG_SHUTDOWN), NULL);
    return NULL;
}

static void srv_start(void)
{
    srv_cq = grpc_completion_queue_create_for_next(NULL);
    srv = grpc_server_create(NULL, NULL);
    grpc_server_register_completion_queue(srv, srv_cq, NULL);
    grpc_server_credentials *creds = grpc_insecure_server_credentials_create();
    int port = grpc_server_add_http2_port(srv, "127.0.0.1:0", creds);
    grpc_server_credentials_release(creds);
    CHECK(port > 0, "cannot bind");
    snprintf(srv_target, sizeof srv_target, "127.0.0.1:%d", port);
    grpc_server_start(srv);
    CHECK(pthread_create(&srv_thread, NULL, srv_main, NULL) == 0, "thread");
}

static void srv_stop(void)
{
    grpc_server_shutdown_and_notify(srv, srv_cq, TAGP(TAG_SHUTDOWN));
    grpc_server_cancel_all_calls(srv);
    pthread_join(srv_thread, NULL);
    grpc_server_destroy(srv);
    grpc_completion_queue_shutdown(srv_cq);
    while (grpc_completion_queue_next(srv_cq, gpr_inf_future(GPR_CLOCK_MONOTONIC), NULL).type !=
           GRPC_QUEUE_SHUTDOWN)
        ;
    grpc_completion_queue_destroy(srv_cq);
    if (seen_run)
        pm__executor__v1__run_request__free_unpacked(seen_run, NULL);
}

/* ---- the client side -------------------------------------------------------------------- */

typedef struct {
    int n;
    int cancel_at; /* return nonzero from this event on; 0: never */
    char kinds[16];
    uint8_t out[16];
    size_t out_len;
    Pm__Executor__V1__Exited exited;
    char exited_error[32];
    uint32_t exited_command;
    int32_t pid;
} collected;

static int collect(const Pm__Executor__V1__RunEvent *ev, void *arg)
{
    collected *c = arg;
    char kind = ev->started           ? 'S'
                : ev->stdout_data.len ? 'o'
                : ev->stderr_data.len ? 'e'
                : ev->exited          ? 'X'
                                      : '?';
    if (c->n < (int)sizeof c->kinds - 1)
        c->kinds[c->n] = kind;
    c->n++;
    if (ev->started)
        c->pid = ev->started->pid;
    if (ev->stdout_data.len && c->out_len + ev->stdout_data.len <= sizeof c->out) {
        memcpy(c->out + c->out_len, ev->stdout_data.data, ev->stdout_data.len);
        c->out_len += ev->stdout_data.len;
    }
    if (ev->exited) {
        c->exited = *ev->exited;
        snprintf(c->exited_error, sizeof c->exited_error, "%s", ev->exited->error);
        c->exited.error = NULL; /* it belongs to the message, which is freed after us */
        c->exited_command = ev->command;
    }
    return c->cancel_at && c->n >= c->cancel_at;
}

static cli_conn *connect_to(const char *target, const char *token, uint64_t deadline_ms,
                            const volatile sig_atomic_t *interrupt)
{
    cli_config cfg = {
        .target = target, .token = token, .deadline_ms = deadline_ms, .interrupt = interrupt};
    char err[256];
    cli_conn *c = NULL;
    int rc = cli_connect(&cfg, &c, err, sizeof err);
    CHECK(rc == 0, "connect: %s", err);
    return c;
}

static int run_mode(cli_conn *c, const char *mode, collected *col, cli_status *st)
{
    Pm__Executor__V1__Command cmd = PM__EXECUTOR__V1__COMMAND__INIT;
    cmd.shell = (char *)mode;
    Pm__Executor__V1__Command *cmds[] = {&cmd};
    Pm__Executor__V1__RunRequest req = PM__EXECUTOR__V1__RUN_REQUEST__INIT;
    req.n_commands = 1;
    req.commands = cmds;
    return cli_run(c, &req, collect, col, st);
}

static double now_s(void)
{
    return (double)rpc_now_us() / 1e6;
}

static void test_stream(void)
{
    cli_conn *c = connect_to(srv_target, "secret", 0, NULL);
    Pm__Executor__V1__Command a = PM__EXECUTOR__V1__COMMAND__INIT, b = a;
    char *argv[] = {(char *)"echo", (char *)"b c"};
    a.n_argv = 2;
    a.argv = argv;
    a.stdin_data.data = (uint8_t *)"in\0put";
    a.stdin_data.len = 6;
    b.shell = (char *)"true";
    Pm__Executor__V1__Command *cmds[] = {&a, &b};
    char *env[] = {(char *)"K=V"};
    Pm__Executor__V1__RunRequest req = PM__EXECUTOR__V1__RUN_REQUEST__INIT;
    req.n_commands = 2;
    req.commands = cmds;
    req.n_env = 1;
    req.env = env;
    req.continue_on_error = true;
    collected col = {0};
    cli_status st;
    int rc = cli_run(c, &req, collect, &col, &st);
    CHECK(rc == 0, "rc %d %s: %s", rc, cli_status_name(st.code), st.details);
    CHECK(st.code == GRPC_STATUS_OK, "code %d", st.code);
    CHECK(!strcmp(seen_auth, "Bearer secret"), "auth \"%s\"", seen_auth);
    CHECK(seen_run->n_commands == 2 && seen_run->commands[0]->n_argv == 2 &&
              !strcmp(seen_run->commands[0]->argv[1], "b c") &&
              seen_run->commands[0]->stdin_data.len == 6 &&
              !memcmp(seen_run->commands[0]->stdin_data.data, "in\0put", 6) &&
              !strcmp(seen_run->commands[1]->shell, "true") && seen_run->n_env == 1 &&
              seen_run->continue_on_error,
          "request arrived changed");
    CHECK(col.n == 4 && !strcmp(col.kinds, "SoeX"), "events \"%s\"", col.kinds);
    CHECK(col.pid == 42, "pid %d", col.pid);
    CHECK(col.out_len == 5 && !memcmp(col.out, "out\0\xff", 5), "stdout bytes");
    CHECK(col.exited.exit_code == 3 && col.exited.wall_us == 1500 && col.exited.truncated &&
              !strcmp(col.exited_error, "e") && col.exited_command == 1,
          "exited fields");
    cli_close(c);
}

static void test_no_token(void)
{
    cli_conn *c = connect_to(srv_target, NULL, 0, NULL);
    collected col = {0};
    cli_status st;
    CHECK(run_mode(c, "", &col, &st) == 0, "run");
    CHECK(seen_auth[0] == '\0', "auth sent without a token: \"%s\"", seen_auth);
    cli_close(c);
}

static void test_cancel_from_callback(void)
{
    cli_conn *c = connect_to(srv_target, NULL, 0, NULL);
    collected col = {.cancel_at = 3};
    cli_status st;
    int rc = run_mode(c, "flood", &col, &st);
    CHECK(rc == -ECANCELED, "rc %d", rc);
    CHECK(st.code == GRPC_STATUS_CANCELLED, "code %s", cli_status_name(st.code));
    CHECK(col.n == 3, "callback ran %d times after asking to stop at 3", col.n);
    /* The connection stays usable after a cancelled call. */
    collected col2 = {0};
    CHECK(run_mode(c, "", &col2, &st) == 0, "next call: %s", st.details);
    CHECK(flood_sent < 100000, "server never saw the cancel");
    cli_close(c);
}

static void test_error_status(void)
{
    cli_conn *c = connect_to(srv_target, NULL, 0, NULL);
    collected col = {0};
    cli_status st;
    int rc = run_mode(c, "deny", &col, &st);
    CHECK(rc == -EREMOTEIO, "rc %d", rc);
    CHECK(st.code == GRPC_STATUS_UNAUTHENTICATED && !strcmp(st.details, "bad token"), "%s: %s",
          cli_status_name(st.code), st.details);
    CHECK(col.n == 0, "events on a refused call");

    ProtobufCMessage *out = NULL;
    Pm__Executor__V1__InfoRequest ir = PM__EXECUTOR__V1__INFO_REQUEST__INIT;
    rc = cli_unary(c, "/no.Such/Method", &ir.base, &pm__executor__v1__info_response__descriptor,
                   &out, &st);
    CHECK(rc == -EREMOTEIO && st.code == GRPC_STATUS_UNIMPLEMENTED && !out, "rc %d %s", rc,
          cli_status_name(st.code));
    cli_close(c);
}

static void test_deadline(void)
{
    cli_conn *c = connect_to(srv_target, NULL, 200, NULL);
    collected col = {0};
    cli_status st;
    double t0 = now_s();
    int rc = run_mode(c, "hang", &col, &st);
    double dt = now_s() - t0;
    CHECK(rc == -EREMOTEIO && st.code == GRPC_STATUS_DEADLINE_EXCEEDED, "rc %d %s", rc,
          cli_status_name(st.code));
    CHECK(dt >= 0.15 && dt < 5, "deadline of 200ms took %.3fs", dt);
    cli_close(c);
}

static volatile sig_atomic_t flag;

static void *raise_flag(void *arg)
{
    (void)arg;
    usleep(150 * 1000);
    flag = 1;
    return NULL;
}

static void test_interrupt(void)
{
    flag = 0;
    cli_conn *c = connect_to(srv_target, NULL, 0, &flag);
    pthread_t t;
    CHECK(pthread_create(&t, NULL, raise_flag, NULL) == 0, "thread");
    collected col = {0};
    cli_status st;
    double t0 = now_s();
    int rc = run_mode(c, "hang", &col, &st);
    double dt = now_s() - t0;
    pthread_join(t, NULL);
    CHECK(rc == -ECANCELED && st.code == GRPC_STATUS_CANCELLED, "rc %d %s", rc,
          cli_status_name(st.code));
    CHECK(dt < 3, "interrupt took %.3fs", dt);
    cli_close(c);
}

static void test_unary_helpers(void)
{
    cli_conn *c = connect_to(srv_target, "t", 0, NULL);
    cli_status st;
    Pm__Executor__V1__InfoResponse *info = NULL;
    CHECK(cli_info(c, &info, &st) == 0, "info: %s", st.details);
    CHECK(!strcmp(info->name, "fake") && !strcmp(info->version, "9.9") &&
              !strcmp(info->sandbox_profile, "strict") && info->max_concurrent == 4 &&
              info->output_cap == 1u << 20 && info->pid1,
          "info fields");
    pm__executor__v1__info_response__free_unpacked(info, NULL);

    Grpc__Health__V1__HealthCheckResponse__ServingStatus s;
    CHECK(cli_health_check(c, NULL, &s, &st) == 0, "health: %s", st.details);
    CHECK(s == GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__SERVING, "%s",
          cli_serving_status_name(s));
    CHECK(cli_health_check(c, "down", &s, &st) == 0, "health down: %s", st.details);
    CHECK(s == GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__NOT_SERVING, "%s",
          cli_serving_status_name(s));
    CHECK(cli_health_check(c, "nope", &s, &st) == -EREMOTEIO && st.code == GRPC_STATUS_NOT_FOUND,
          "health unknown: %s", cli_status_name(st.code));

    const char *cmds[] = {"a", "b b", "c"};
    Exec__ExecResult *r = NULL;
    CHECK(cli_execute_commands(c, cmds, 3, &r, &st) == 0, "exec: %s", st.details);
    CHECK(r->result && r->n_output == 3 && !strcmp(r->output[1], "out:b b\n"), "exec result");
    exec__exec_result__free_unpacked(r, NULL);
    CHECK(cli_execute_commands(c, cmds, 2, &r, &st) == 0, "exec: %s", st.details);
    CHECK(!r->result && !strcmp(r->errormessage, "two is a bad number"), "exec failure");
    exec__exec_result__free_unpacked(r, NULL);
    CHECK(!strcmp(seen_auth, "Bearer t"), "auth on unary \"%s\"", seen_auth);
    cli_close(c);
}

static void test_bad_responses(void)
{
    cli_conn *c = connect_to(srv_target, NULL, 0, NULL);
    cli_status st;
    ProtobufCMessage *out = NULL;
    Pm__Executor__V1__InfoRequest ir = PM__EXECUTOR__V1__INFO_REQUEST__INIT;
    const ProtobufCMessageDescriptor *d = &pm__executor__v1__info_response__descriptor;

    int rc = cli_unary(c, "/test.Test/Two", &ir.base, d, &out, &st);
    CHECK(rc == -EBADMSG && !out && strstr(st.details, "more than one"), "two: %d %s", rc,
          st.details);
    rc = cli_unary(c, "/test.Test/Garbage", &ir.base, d, &out, &st);
    CHECK(rc == -EBADMSG && !out && st.code == GRPC_STATUS_INTERNAL, "garbage: %d %s", rc,
          st.details);
    rc = cli_unary(c, "/test.Test/None", &ir.base, d, &out, &st);
    CHECK(rc == -EBADMSG && !out && strstr(st.details, "no "), "none: %d %s", rc, st.details);
    cli_close(c);
}

static void test_unreachable(void)
{
    cli_conn *c = connect_to("unix:/nonexistent-dir/pm.sock", NULL, 0, NULL);
    cli_status st;
    Pm__Executor__V1__InfoResponse *info = NULL;
    double t0 = now_s();
    int rc = cli_info(c, &info, &st);
    CHECK(rc == -EREMOTEIO && st.code == GRPC_STATUS_UNAVAILABLE && !info, "rc %d %s", rc,
          cli_status_name(st.code));
    CHECK(now_s() - t0 < 10, "unreachable took too long");
    cli_close(c);
}

static void test_config_errors(void)
{
    char err[256];
    cli_conn *c = NULL;
    cli_config cfg = {.target = "127.0.0.1:1", .token = "a\nb"};
    CHECK(cli_connect(&cfg, &c, err, sizeof err) == -EINVAL && !c, "token with a newline");
    cfg.token = NULL;
    cfg.target = "";
    CHECK(cli_connect(&cfg, &c, err, sizeof err) == -EINVAL && !c, "empty target");
    cfg.target = "127.0.0.1:1";
    cfg.tls_ca_file = "/nonexistent/ca.pem";
    CHECK(cli_connect(&cfg, &c, err, sizeof err) == -ENOENT && !c && strstr(err, "ca.pem"),
          "missing CA file: %s", err);
    CHECK(!strcmp(cli_status_name(GRPC_STATUS_UNAVAILABLE), "UNAVAILABLE"), "name");
    CHECK(!strcmp(cli_status_name((grpc_status_code)99), "STATUS_99"), "unknown name");
}

int main(void)
{
    grpc_init();
    srv_start();
    test_config_errors();
    test_stream();
    test_no_token();
    test_cancel_from_callback();
    test_error_status();
    test_deadline();
    test_interrupt();
    test_unary_helpers();
    test_bad_responses();
    test_unreachable();
    srv_stop();
    grpc_shutdown();
    printf("client_test: all passed\n");
    return 0;
}

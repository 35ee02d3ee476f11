/*
 * grpc_floor: the least a gRPC C core server can do to serve Run of a shell line, as a yardstick
 * between posix_spawn and pm-executor. One thread drives one completion queue and does all of a
 * call in line: it decodes nothing but the shell line, posix_spawns `/bin/sh -c LINE` with no
 * pipes, sends Started{pid}, blocks in waitpid, then sends Exited{exit code} with status OK in
 * one batch. One call at a time (the benchmark's "1 in flight"); it has no sandbox, no output,
 * no limits, no timers. What run_load measures against it is spawn + gRPC, nothing else.
 */
#include <errno.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <grpc/grpc.h>
#include <grpc/grpc_security.h>

#include "bench/bench.h"
#include "protos/executor.pb-c.h"
#include "rpc/rpc.h"

extern char **environ;

static volatile sig_atomic_t stop;
static void on_term(int sig)
{
    (void)sig;
    stop = 1;
}

/* The tags of one call; a completion that comes while another is awaited is remembered. */
enum { T_NEW, T_CLOSE, T_STARTED, T_FINAL, T_HEALTH, T_HEALTH_DONE, T_COUNT };
static bool seen[T_COUNT];
static int tags[T_COUNT];

/* Waits until tag t (or, when t2 >= 0, tag t2) has completed and returns which; -1 when the
 * server is stopping. */
static int wait_either(grpc_completion_queue *cq, int t, int t2)
{
    while (!seen[t] && (t2 < 0 || !seen[t2])) {
        grpc_event ev = grpc_completion_queue_next(
            cq, gpr_time_add(gpr_now(GPR_CLOCK_MONOTONIC), gpr_time_from_millis(200, GPR_TIMESPAN)),
            NULL);
        if (ev.type == GRPC_QUEUE_SHUTDOWN)
            return -1;
        if (ev.type == GRPC_QUEUE_TIMEOUT) {
            if (stop)
                return -1;
            continue;
        }
        seen[(int *)ev.tag - tags] = true;
    }
    int which = seen[t] ? t : t2;
    seen[which] = false;
    return which;
}

static bool wait_tag(grpc_completion_queue *cq, int t)
{
    return wait_either(cq, t, -1) == t;
}

/* Each call's spawn+wait, for the p50 printed at exit. */
static bench_samples walls;

static grpc_byte_buffer *event_bb(const Pm__Executor__V1__RunEvent *ev)
{
    uint8_t buf[256];
    size_t n = pm__executor__v1__run_event__pack(ev, buf);
    return rpc_bb_from(buf, n);
}

static void serve_one(grpc_completion_queue *cq, grpc_call *call, grpc_byte_buffer *req)
{
    uint8_t *data = NULL;
    size_t len = 0;
    char *line = NULL;
    if (req && rpc_bb_flatten(req, &data, &len) == 0) {
        Pm__Executor__V1__RunRequest *r = pm__executor__v1__run_request__unpack(NULL, len, data);
        if (r && r->n_commands && r->commands[0]->shell)
            line = strdup(r->commands[0]->shell);
        pm__executor__v1__run_request__free_unpacked(r, NULL);
    }
    free(data);
    int cancelled = 0;
    grpc_op close_op = {.op = GRPC_OP_RECV_CLOSE_ON_SERVER};
    close_op.data.recv_close_on_server.cancelled = &cancelled;
    grpc_call_start_batch(call, &close_op, 1, &tags[T_CLOSE], NULL);

    char *argv[] = {"sh", "-c", line ? line : "true", NULL};
    pid_t pid = 0;
    uint64_t t0 = rpc_now_us();
    int rc = posix_spawn(&pid, "/bin/sh", NULL, NULL, argv, environ);

    Pm__Executor__V1__Started st = PM__EXECUTOR__V1__STARTED__INIT;
    st.pid = rc == 0 ? pid : -1;
    Pm__Executor__V1__RunEvent ev = PM__EXECUTOR__V1__RUN_EVENT__INIT;
    ev.started = &st;
    grpc_byte_buffer *bb = event_bb(&ev);
    grpc_op ops[2] = {{.op = GRPC_OP_SEND_INITIAL_METADATA}, {.op = GRPC_OP_SEND_MESSAGE}};
    ops[1].data.send_message.send_message = bb;
    grpc_call_start_batch(call, ops, 2, &tags[T_STARTED], NULL);

    int status = 0;
    if (rc == 0)
        while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
            ;
    bench_samples_add(&walls, rpc_now_us() - t0);
    wait_tag(cq, T_STARTED);
    grpc_byte_buffer_destroy(bb);

    Pm__Executor__V1__Exited ex = PM__EXECUTOR__V1__EXITED__INIT;
    ex.exit_code = rc != 0 ? 127 : WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    Pm__Executor__V1__RunEvent ev2 = PM__EXECUTOR__V1__RUN_EVENT__INIT;
    ev2.exited = &ex;
    bb = event_bb(&ev2);
    rpc_send_final(call, false, bb, GRPC_STATUS_OK, NULL, (rpc_tag *)&tags[T_FINAL]);
    wait_tag(cq, T_FINAL);
    grpc_byte_buffer_destroy(bb);
    wait_tag(cq, T_CLOSE);
    free(line);
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: grpc_floor HOST:PORT\n");
        return 2;
    }
    if (bench_samples_init(&walls, 100000) < 0) {
        fprintf(stderr, "grpc_floor: out of memory\n");
        return 1;
    }
    signal(SIGTERM, on_term);
    signal(SIGINT, on_term);
    grpc_init();
    grpc_completion_queue *cq = grpc_completion_queue_create_for_next(NULL);
    grpc_server *server = grpc_server_create(NULL, NULL);
    void *method = grpc_server_register_method(server, "/pm.executor.v1.Executor/Run", NULL,
                                               GRPC_SRM_PAYLOAD_READ_INITIAL_BYTE_BUFFER, 0);
    void *health = grpc_server_register_method(server, "/grpc.health.v1.Health/Check", NULL,
                                               GRPC_SRM_PAYLOAD_READ_INITIAL_BYTE_BUFFER, 0);
    grpc_server_register_completion_queue(server, cq, NULL);
    grpc_server_credentials *creds = grpc_insecure_server_credentials_create();
    if (!grpc_server_add_http2_port(server, argv[1], creds)) {
        fprintf(stderr, "grpc_floor: cannot listen on %s\n", argv[1]);
        return 1;
    }
    grpc_server_credentials_release(creds);
    grpc_server_start(server);
    /* One Run and one Health/Check (run_load waits for SERVING) are requested at any time. */
    grpc_call *call = NULL, *hcall = NULL;
    gpr_timespec deadline, hdeadline;
    grpc_metadata_array md, hmd;
    grpc_metadata_array_init(&md);
    grpc_metadata_array_init(&hmd);
    grpc_byte_buffer *req = NULL, *hreq = NULL;
    grpc_server_request_registered_call(server, method, &call, &deadline, &md, &req, cq, cq,
                                        &tags[T_NEW]);
    grpc_server_request_registered_call(server, health, &hcall, &hdeadline, &hmd, &hreq, cq, cq,
                                        &tags[T_HEALTH]);
    while (!stop) {
        int t = wait_either(cq, T_NEW, T_HEALTH);
        if (t < 0)
            break;
        if (t == T_NEW) {
            serve_one(cq, call, req);
        } else {
            static const uint8_t serving[] = {0x08, 0x01};
            grpc_byte_buffer *bb = rpc_bb_from(serving, sizeof serving);
            rpc_send_unary(hcall, bb, GRPC_STATUS_OK, NULL, (rpc_tag *)&tags[T_HEALTH_DONE]);
            wait_tag(cq, T_HEALTH_DONE);
            grpc_byte_buffer_destroy(bb);
        }
        grpc_call **c = t == T_NEW ? &call : &hcall;
        grpc_byte_buffer **r = t == T_NEW ? &req : &hreq;
        grpc_metadata_array *m = t == T_NEW ? &md : &hmd;
        grpc_call_unref(*c);
        if (*r)
            grpc_byte_buffer_destroy(*r);
        grpc_metadata_array_destroy(m);
        grpc_metadata_array_init(m);
        *c = NULL;
        *r = NULL;
        grpc_server_request_registered_call(server, t == T_NEW ? method : health, c,
                                            t == T_NEW ? &deadline : &hdeadline, m, r, cq, cq,
                                            &tags[t]);
    }
    if (walls.n)
        fprintf(stderr, "grpc_floor: %zu spawns, spawn+wait p50 %llu us\n", walls.n,
                (unsigned long long)bench_percentile(&walls, 0.5));
    bench_samples_free(&walls);
    grpc_server_shutdown_and_notify(server, cq, NULL);
    grpc_server_cancel_all_calls(server);
    grpc_completion_queue_shutdown(cq);
    while (grpc_completion_queue_next(cq, gpr_inf_future(GPR_CLOCK_MONOTONIC), NULL).type !=
           GRPC_QUEUE_SHUTDOWN)
        ;
    grpc_server_destroy(server);
    grpc_completion_queue_destroy(cq);
    grpc_shutdown();
    return 0;
}

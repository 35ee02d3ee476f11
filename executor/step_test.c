/*
 * Unit tests of a step's state machine (step.c) with real processes but without gRPC: this file
 * supplies the few functions step.c calls on the call and the loop (send, finish, arm, wake), and
 * drives the step with poll/waitpid the way the I/O thread would. Sent events are decoded with
 * protobuf-c. "Completing" a send is under the test's control, which lets it play a client that
 * does not read, to check that output is then not read either (backpressure).
 */
#include "executor/internal.h"

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include "executor/testutil.h"
#include "protos/exec.pb-c.h"

/* ---- what step.c needs from server.c and loop.c ------------------------------------------- */

typedef struct {
    char out[1 << 16], err[1 << 16];
    size_t out_len, err_len;
    int started, exited;
    Pm__Executor__V1__Exited last[8];
    char last_error[8][256];
    grpc_status_code status;
    bool finished;
    uint8_t *unary;
    size_t unary_len;
} record;

static record rec;

/* Keeps the first 64 KiB of a stream (one byte is left for a terminator); counts the rest. */
static void record_bytes(char *dst, size_t *len, const uint8_t *p, size_t n)
{
    size_t room = (1 << 16) - 1 - (*len < (1 << 16) - 1 ? *len : (1 << 16) - 1);
    memcpy(dst + (*len < (1 << 16) - 1 ? *len : (1 << 16) - 1), p, n < room ? n : room);
    *len += n;
}

bool exe_call_send(exe_call *c, grpc_byte_buffer *bb)
{
    uint8_t *data;
    size_t len;
    CHECK(bb != NULL);
    if (!bb)
        return false;
    CHECK(rpc_bb_flatten(bb, &data, &len) == 0);
    grpc_byte_buffer_destroy(bb);
    Pm__Executor__V1__RunEvent *ev = pm__executor__v1__run_event__unpack(NULL, len, data);
    free(data);
    CHECK(ev != NULL);
    if (!ev)
        return false;
    CHECK(ev->command == c->cur);
    if (ev->started) {
        CHECK(ev->started->pid > 0);
        rec.started++;
    } else if (ev->stdout_data.len) {
        record_bytes(rec.out, &rec.out_len, ev->stdout_data.data, ev->stdout_data.len);
    } else if (ev->stderr_data.len) {
        record_bytes(rec.err, &rec.err_len, ev->stderr_data.data, ev->stderr_data.len);
    } else if (ev->exited) {
        int i = rec.exited++;
        rec.last[i] = *ev->exited;
        snprintf(rec.last_error[i], sizeof rec.last_error[i], "%s", ev->exited->error);
    }
    pm__executor__v1__run_event__free_unpacked(ev, NULL);
    c->send_in_flight = true;
    return true;
}

void exe_call_finish(exe_call *c, grpc_status_code code, const char *msg)
{
    (void)msg;
    c->status_sent = true;
    rec.finished = true;
    rec.status = code;
}

void exe_call_finish_with(exe_call *c, grpc_byte_buffer *last)
{
    exe_call_send(c, last);
    c->send_in_flight = false;
    exe_call_finish(c, GRPC_STATUS_OK, NULL);
}

void exe_call_finish_unary(exe_call *c, grpc_byte_buffer *reply)
{
    c->status_sent = true;
    rec.finished = true;
    rec.status = GRPC_STATUS_OK;
    CHECK(rpc_bb_flatten(reply, &rec.unary, &rec.unary_len) == 0);
    grpc_byte_buffer_destroy(reply);
}

int exe_loop_arm(exe_server *srv, exe_call *c, int which)
{
    (void)srv;
    (void)c;
    (void)which;
    return 0;
}

void exe_loop_forget(exe_server *srv, exe_call *c, int which)
{
    (void)srv;
    (void)c;
    (void)which;
}

void exe_loop_wake(exe_server *srv)
{
    (void)srv;
}

void exe_loop_kick(exe_server *srv)
{
    (void)srv;
}

bool exe_loop_try_reap(exe_server *srv, exe_call *c)
{
    (void)srv;
    (void)c;
    return false; /* turn() reaps, as the I/O thread's SIGCHLD handling would */
}

/* ---- driving a step ----------------------------------------------------------------------- */

static exe_server srv;

static void setup_server(void)
{
    srv.cfg.kill_grace_ms = 300;
    srv.cfg.legacy_output_cap = 1 << 20;
    srv.cfg.chunk_bytes = 4096;
    srv.buf = malloc(srv.cfg.chunk_bytes);
    static char *env[] = {"PATH=/usr/bin:/bin", "FROM_BASE=yes", NULL};
    srv.base_env = env;
}

/* One turn of what the I/O thread does: wait for pipes, reap, timers, pump. */
static void turn(exe_call *c, bool complete_sends)
{
    if (complete_sends && c->send_in_flight)
        c->send_in_flight = false;
    struct pollfd p[3];
    int n = 0;
    for (int i = FD_STDOUT; i <= FD_STDERR; i++)
        if (c->fd[i] >= 0)
            p[n++] = (struct pollfd){.fd = c->fd[i], .events = POLLIN};
    poll(p, (nfds_t)n, 10);
    if (c->cstate == CMD_RUNNING && c->pid > 0) {
        int st;
        struct rusage ru;
        pid_t r = wait4(c->pid, &st, WNOHANG, &ru);
        if (r == c->pid) {
            kill(-c->pid, SIGKILL);
            exe_step_reaped(c, st, &ru);
        }
    }
    exe_step_timers(c, rpc_now_us());
    exe_step_pump(c);
}

static exe_call *start(exe_call_kind kind, Pm__Executor__V1__RunRequest *req)
{
    memset(&rec, 0, sizeof rec);
    exe_call *c = calloc(1, sizeof *c);
    c->srv = &srv;
    c->kind = kind;
    size_t len;
    uint8_t *buf = test_pack(req, &len);
    char err[256];
    int rc = exe_step_decode_run(&c->step, buf, len, err, sizeof err);
    free(buf);
    CHECK(rc == 0);
    c->output_cap = c->step.output_cap;
    exe_step_begin(c);
    return c;
}

static void finish(exe_call *c)
{
    for (int i = 0; i < 2000 && !c->status_sent; i++)
        turn(c, true);
    CHECK(c->status_sent);
    exe_step_close_fds(c);
    exe_step_free(&c->step);
    free(c->envp);
    free(c->collect);
    free(c->outs);
    free(c);
}

static Pm__Executor__V1__RunRequest req1(const char *shell, Pm__Executor__V1__Command *cmd,
                                         Pm__Executor__V1__Command **slot)
{
    Pm__Executor__V1__Command init = PM__EXECUTOR__V1__COMMAND__INIT;
    *cmd = init;
    cmd->shell = (char *)shell;
    slot[0] = cmd;
    Pm__Executor__V1__RunRequest r = PM__EXECUTOR__V1__RUN_REQUEST__INIT;
    r.n_commands = 1;
    r.commands = slot;
    return r;
}

static void test_sequence_and_streams(void)
{
    Pm__Executor__V1__Command a = PM__EXECUTOR__V1__COMMAND__INIT, b = a, c3 = a;
    a.shell = "echo one; echo e1 >&2; echo two; echo $FROM_BASE-$STEP_VAR";
    b.shell = "exit 4";
    c3.shell = "echo never";
    Pm__Executor__V1__Command *cmds[] = {&a, &b, &c3};
    Pm__Executor__V1__RunRequest r = PM__EXECUTOR__V1__RUN_REQUEST__INIT;
    r.n_commands = 3;
    r.commands = cmds;
    char *env[] = {"STEP_VAR=s"};
    r.n_env = 1;
    r.env = env;
    finish(start(K_RUN, &r));
    CHECK(rec.status == GRPC_STATUS_OK);
    CHECK(rec.started == 2 && rec.exited == 2); /* stops after the failing command */
    rec.out[rec.out_len] = '\0';
    rec.err[rec.err_len] = '\0';
    CHECK_STR(rec.out, "one\ntwo\nyes-s\n");
    CHECK_STR(rec.err, "e1\n");
    CHECK(rec.last[0].exit_code == 0 && rec.last[0].stdout_bytes == 14);
    CHECK(rec.last[1].exit_code == 4);

    r.continue_on_error = 1;
    finish(start(K_RUN, &r));
    CHECK(rec.exited == 3);
}

static void test_output_cap(void)
{
    bool t = false;
    CHECK(exe_cap_take(0, 100, 50, &t) == 50 && !t);
    CHECK(exe_cap_take(10, 0, 4, &t) == 4 && !t);
    CHECK(exe_cap_take(10, 8, 4, &t) == 2 && t);
    t = false;
    CHECK(exe_cap_take(10, 10, 4, &t) == 0 && t);

    Pm__Executor__V1__Command cmd;
    Pm__Executor__V1__Command *slot[1];
    Pm__Executor__V1__RunRequest r = req1("head -c 100000 /dev/zero; echo tail >&2", &cmd, slot);
    r.output_cap = 10;
    finish(start(K_RUN, &r));
    CHECK(rec.out_len + rec.err_len == 10);
    CHECK(rec.last[0].truncated);
    CHECK(rec.last[0].stdout_bytes == 100000 && rec.last[0].stderr_bytes == 5);
    CHECK(rec.last[0].exit_code == 0);
}

static void test_timeout_and_leftovers(void)
{
    Pm__Executor__V1__Command cmd;
    Pm__Executor__V1__Command *slot[1];
    /* The shell ignores SIGTERM, so SIGKILL after the grace must end it. */
    Pm__Executor__V1__RunRequest r =
        req1("trap '' TERM; sleep 30 & echo $!; while :; do sleep 0.05; done", &cmd, slot);
    cmd.timeout_ms = 100;
    finish(start(K_RUN, &r));
    CHECK(rec.last[0].timed_out);
    CHECK(rec.last[0].exit_code == -1 && rec.last[0].signal == SIGKILL);
    CHECK(strstr(rec.last_error[0], "timed out after 100 ms") != NULL);
    rec.out[rec.out_len] = '\0';
    pid_t bg = (pid_t)atoi(rec.out);
    CHECK(bg > 0);
    usleep(100000);
    CHECK(bg > 0 && kill(bg, 0) < 0 && errno == ESRCH); /* the background sleep is gone */
    while (waitpid(-1, NULL, WNOHANG) > 0)
        ;
}

static void test_start_failures(void)
{
    Pm__Executor__V1__Command cmd = PM__EXECUTOR__V1__COMMAND__INIT;
    char *argv[] = {"no-such-program-here"};
    cmd.n_argv = 1;
    cmd.argv = argv;
    Pm__Executor__V1__Command *slot[] = {&cmd};
    Pm__Executor__V1__RunRequest r = PM__EXECUTOR__V1__RUN_REQUEST__INIT;
    r.n_commands = 1;
    r.commands = slot;
    finish(start(K_RUN, &r));
    CHECK(rec.started == 0 && rec.exited == 1);
    CHECK(rec.last[0].exit_code == 127);
    CHECK(strstr(rec.last_error[0], "no-such-program-here") != NULL);

    argv[0] = "/etc/passwd";
    finish(start(K_RUN, &r));
    CHECK(rec.last[0].exit_code == 126);

    argv[0] = "true";
    cmd.workdir = "/no/such/dir";
    finish(start(K_RUN, &r));
    CHECK(rec.last[0].exit_code == 127);
    CHECK(strstr(rec.last_error[0], "chdir /no/such/dir") != NULL);
}

static void test_stdin(void)
{
    Pm__Executor__V1__Command cmd;
    Pm__Executor__V1__Command *slot[1];
    Pm__Executor__V1__RunRequest r = req1("tr a-z A-Z", &cmd, slot);
    static uint8_t big[200000];
    memset(big, 'q', sizeof big);
    cmd.stdin_data.data = big;
    cmd.stdin_data.len = sizeof big; /* more than a pipe holds: written as the child reads */
    finish(start(K_RUN, &r));
    CHECK(rec.last[0].stdout_bytes == sizeof big);
    CHECK(rec.out_len == sizeof big && rec.out[0] == 'Q');
}

static void test_backpressure(void)
{
    Pm__Executor__V1__Command cmd;
    Pm__Executor__V1__Command *slot[1];
    Pm__Executor__V1__RunRequest r = req1("yes", &cmd, slot);
    exe_call *c = start(K_RUN, &r);
    /* The client never completes a send: after the first events nothing more may be read, so
     * the child fills its pipe and blocks. */
    for (int i = 0; i < 30; i++)
        turn(c, false);
    uint64_t produced = c->produced[FD_STDOUT];
    CHECK(c->send_in_flight);
    CHECK(produced <= srv.cfg.chunk_bytes);
    for (int i = 0; i < 30; i++)
        turn(c, false);
    CHECK(c->produced[FD_STDOUT] == produced);
    /* Now the client goes away: the group is killed and the step ends. */
    c->client_gone = true;
    c->cancelled = true;
    exe_step_kill(c, SIGTERM, "cancelled");
    finish(c);
    CHECK(rec.exited == 0); /* nothing is sent to a gone client */
}

static void test_legacy_collect(void)
{
    memset(&rec, 0, sizeof rec);
    exe_call *c = calloc(1, sizeof *c);
    c->srv = &srv;
    c->kind = K_LEGACY;
    const uint8_t msg[] = {0x0a, 0x06, 'e',  'c',  'h', 'o', ' ', 'a', 0x0a, 0x10, 'e', 'c',
                           'h',  'o',  ' ',  'b',  ';', ' ', 'e', 'x', 'i',  't',  ' ', '3',
                           ' ',  ' ',  0x0a, 0x06, 'e', 'c', 'h', 'o', ' ',  'c'};
    char err[256];
    CHECK(exe_step_decode_legacy(&c->step, msg, sizeof msg, err, sizeof err) == 0);
    exe_step_begin(c);
    finish(c);
    Exec__ExecResult *res = exec__exec_result__unpack(NULL, rec.unary_len, rec.unary);
    CHECK(res != NULL);
    if (res) {
        CHECK(!res->result);
        CHECK(res->n_output == 2);
        CHECK(res->n_output == 2 && !strcmp(res->output[0], "a\n") &&
              !strcmp(res->output[1], "b\n"));
        CHECK(strstr(res->errormessage, "command 1") && strstr(res->errormessage, "code 3"));
        exec__exec_result__free_unpacked(res, NULL);
    }
    free(rec.unary);
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    rpc_log_init("step_test", RPC_LOG_TEXT);
    setup_server();
    test_sequence_and_streams();
    test_output_cap();
    test_timeout_and_leftovers();
    test_start_failures();
    test_stdin();
    test_backpressure();
    test_legacy_collect();
    free(srv.buf);
    return test_done("step_test");
}

/*
 * Internal structures of pm-executor, shared by server.c (gRPC calls), step.c (the command state
 * machine of one call) and loop.c (the I/O thread: pipes, signals, reaping, timers, shutdown).
 *
 * Threads: the completion-queue thread runs rpc_cq_run and handles gRPC completions; the I/O
 * thread (the main thread) waits in epoll for pipe readiness, signals and timers. Both take
 * srv->mu around any change to a call and never hold it while waiting. Only the I/O thread frees
 * calls, after removing their fds from epoll, so an epoll event never points to freed memory.
 */
#ifndef PM_EXECUTOR_INTERNAL_H
#define PM_EXECUTOR_INTERNAL_H

#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/resource.h>
#include <sys/types.h>

#include <grpc/grpc.h>

#include "executor/executor.h"
#include "executor/request.h"
#include "rpc/rpc.h"
#include "sandbox/sandbox.h"

typedef struct exe_server exe_server;
typedef struct exe_call exe_call;

typedef enum { K_RUN, K_LEGACY, K_INFO, K_COUNT } exe_call_kind;

/* Lifecycle of the current command of a call (see step.c for the transitions). */
typedef enum {
    CMD_PENDING, /* not started yet */
    CMD_RUNNING, /* process alive; output flowing */
    CMD_REAPED,  /* process reaped; draining what is left in the pipes */
    CMD_DONE,    /* exit reported; the call moves on */
} exe_cmd_state;

/* Which of a command's pipes an epoll registration stands for. */
enum { FD_STDIN = 0, FD_STDOUT = 1, FD_STDERR = 2 };

typedef struct {
    exe_call *call;
    int which;
} exe_fd_ref;

struct exe_call {
    rpc_tag tag_new, tag_close, tag_send;
    exe_server *srv;
    exe_call_kind kind;
    uint64_t id;
    grpc_call *call;
    gpr_timespec deadline;
    grpc_metadata_array md;
    grpc_byte_buffer *req;
    grpc_byte_buffer *send_bb; /* the message in flight, destroyed when its tag returns */
    int cancelled_out;         /* RECV_CLOSE_ON_SERVER's out-value */

    int pending;         /* tags started and not yet returned */
    bool closed;         /* RECV_CLOSE_ON_SERVER returned */
    bool md_sent;        /* initial metadata went out */
    bool send_in_flight; /* one SEND_MESSAGE at a time */
    bool status_sent;    /* the call is finished from our side */
    bool client_gone;    /* cancelled, deadline passed, or a send failed */
    bool in_running;     /* in srv->running and counted against max_concurrent */
    bool dead;           /* queued for freeing by the I/O thread */

    exe_step step;
    const sbx_prepared *sandbox; /* the profile the step runs under (owned by srv) */
    uint64_t output_cap;
    size_t cur;
    exe_cmd_state cstate;
    bool stop; /* no further commands (failure without continue_on_error) */
    uint64_t t_call_us;

    /* The current command. */
    pid_t pid;
    int fd[3];
    bool fd_registered[3];
    bool armed[3]; /* waiting in epoll for readiness: do not read it until the event comes */
    exe_fd_ref ref[3];
    const uint8_t *in_pos;
    size_t in_left;
    bool started_pending;
    bool read_stderr_first;
    /* Output read for the next event, straight into its slice (see step.c, stream_output). */
    struct exe_out_track *track; /* counts this call's output buffers still held by gRPC */
    grpc_slice pend;
    size_t pend_len;      /* bytes of data in pend, behind EXE_EVENT_HEADER_ROOM */
    int pend_which;       /* FD_STDOUT or FD_STDERR */
    uint64_t flush_at_us; /* waiting for the pipe to fill until then; 0: not waiting */
    uint64_t t0_us, deadline_us, kill_at_us, drain_until_us;
    bool timed_out, cancelled;
    int wstatus;
    struct rusage ru;
    uint64_t t_exit_us;
    uint64_t produced[3];
    uint64_t delivered;
    bool truncated;
    int exit_code_on_fail; /* 126/127 when the command could not start; 0 otherwise */
    char error[256];
    char **envp;
    uint64_t cmd_uid; /* executor-wide number of the current command */
    char marker[48];  /* "PM_COMMAND_ID=<cmd_uid>" in its environment, inherited by descendants */

    /* ExecuteCommands: outputs collected for the unary reply. */
    uint8_t *collect;
    size_t collect_len, collect_cap;
    exe_blob *outs;
    size_t out_start;
    char errtail[1024];
    size_t errtail_len;
    char legacy_error[1600];
    bool any_failed;

    exe_call *next; /* in srv->running or srv->dead */
};

struct exe_server {
    exe_config cfg;
    char *token;
    grpc_server *server;
    grpc_completion_queue *cq;
    void *method[K_COUNT];
    rpc_health *health;
    pthread_t cq_thread;
    rpc_tag tag_shutdown;

    pthread_mutex_t mu;
    exe_call *running;
    exe_call *dead;
    uint64_t nrunning;
    uint64_t naccepted; /* calls accepted and not yet freed */
    uint64_t next_id;
    uint64_t commands_started;
    uint64_t next_cmd_uid;
    uint64_t sweep_due_us; /* when to look for orphans re-parented to us; 0: not scheduled */
    uint8_t *buf;          /* output read buffer, used under mu */

    int epfd, sigfd, wakefd;
    bool fine_timers; /* epoll_pwait2 works: timers to the microsecond, not the millisecond */
    bool shutdown_started, server_down, killing_all, calls_cancelled;
    uint64_t shutdown_deadline_us, hard_deadline_us;

    pid_t app_pid; /* PID-1 mode: the supervised app, or 0 */
    bool app_exited;
    int app_status;
    char *const *base_env;
    int devnull;        /* /dev/null for reading: the stdin of commands without input; only an fd
                         * above 2 is used (a zeroed server opens it per command) */
    sigset_t sig_reset; /* signals the children must reset (see exe_spawn_spec) */

    /* The executor's sandbox and the tighter ones requests asked for, prepared once each. */
    sbx_config sandbox_cfg;
    sbx_prepared *sandbox;
    pthread_mutex_t sandbox_mu; /* guards the cache; never held with mu */
    struct exe_sandbox_cache *sandbox_cache;
};

/* server.c */
void exe_call_arm(exe_server *srv, exe_call_kind kind);
bool exe_call_send(exe_call *c, grpc_byte_buffer *bb);
void exe_call_finish(exe_call *c, grpc_status_code code, const char *msg);
void exe_call_finish_unary(exe_call *c, grpc_byte_buffer *reply);
/* Sends the stream's last message together with status OK. */
void exe_call_finish_with(exe_call *c, grpc_byte_buffer *last);
void exe_call_maybe_dead(exe_call *c);
void exe_free_dead(exe_server *srv);
void exe_begin_shutdown(exe_server *srv);

/* How long after a command ends the executor looks for its escaped descendants. */
#define EXE_SWEEP_DELAY_US 100000u
/* Ended calls are freed by the I/O thread on its next turn, which nothing wakes it for; when no
 * other event comes, it turns for them after this long. */
#define EXE_FREE_DEAD_US 20000u

/* step.c */
/* Output buffers of one call that may exist at once: the one being filled and those gRPC still
 * holds after reporting their sends complete (it keeps such messages queued until the socket
 * takes them). Past it the call reads no more output until one is released: with "one send in
 * flight", that is the backpressure. */
#define EXE_OUT_BUFS_PER_CALL 4
/* A call's output buffers are released when gRPC lets go of them, on any thread. */
void exe_out_track_release(struct exe_out_track *t);
/* Whether a call blocked on its output buffers may go on (I/O thread, mu held). */
bool exe_step_out_ready(exe_call *c);
/* How many of n new output bytes may go out under cap (0 = none) after delivered; sets
 * *truncated when some are dropped. */
size_t exe_cap_take(uint64_t cap, uint64_t delivered, size_t n, bool *truncated);
void exe_step_pump(exe_call *c);
void exe_step_reaped(exe_call *c, int wstatus, const struct rusage *ru);
void exe_step_kill(exe_call *c, int sig, const char *why);
void exe_step_timers(exe_call *c, uint64_t now);
uint64_t exe_step_next_timer(const exe_call *c);
void exe_step_close_fds(exe_call *c);
void exe_step_begin(exe_call *c);

/* loop.c */
int exe_loop_init(exe_server *srv);
void exe_loop_run(exe_server *srv);
void exe_loop_wake(exe_server *srv);
/* Wakes the I/O thread even from itself (for code that runs on any thread, e.g. slice release). */
void exe_loop_kick(exe_server *srv);
int exe_loop_arm(exe_server *srv, exe_call *c, int which);
void exe_loop_forget(exe_server *srv, exe_call *c, int which);
/* Reaps c's command if it has exited (without waiting for SIGCHLD); true when it did. */
bool exe_loop_try_reap(exe_server *srv, exe_call *c);

#endif

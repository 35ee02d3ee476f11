/*
 * The state machine of one step: its commands run one after another, each in its own session so
 * that a timeout, a cancel or its own exit can signal the whole process group. Output is read only
 * when no message is in flight on the call, so a slow client stops the reading and the child
 * blocks on a full pipe instead of the executor buffering (backpressure).
 *
 * Transitions of the current command (cstate), all under srv->mu:
 *   PENDING --start ok--> RUNNING            --start failed--> REAPED (exit 126/127, no pipes)
 *   RUNNING --reaped--> REAPED               (the rest of its process group is killed first)
 *   REAPED  --pipes at EOF or drain timer--> exit event sent --> DONE
 *   DONE    --next--> PENDING of the next command, or the call finishes
 * Timers: the command's timeout sends SIGTERM to the group and arms SIGKILL after the grace; a
 * client cancel or deadline does the same with "cancelled".
 */
#include "executor/internal.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/wait.h>
#include <unistd.h>

#include "executor/spawn.h"

/* How long leftover writers may keep a dead command's pipes open before they are closed. */
#define DRAIN_GRACE_US 200000u
/* Reads per pump before yielding to other calls (most end sooner: a message to send, or EAGAIN). */
#define READS_PER_PUMP 16

static bool out_blocked(const exe_call *c);

static void cmd_reset(exe_call *c)
{
    c->pid = 0;
    for (int i = 0; i < 3; i++)
        c->fd[i] = -1;
    c->in_pos = NULL;
    c->in_left = 0;
    c->started_pending = false;
    c->t0_us = c->deadline_us = c->kill_at_us = c->drain_until_us = 0;
    c->timed_out = c->cancelled = false;
    c->wstatus = 0;
    memset(&c->ru, 0, sizeof c->ru);
    memset(c->produced, 0, sizeof c->produced);
    c->delivered = 0;
    c->truncated = false;
    c->exit_code_on_fail = 0;
    c->error[0] = '\0';
    c->errtail_len = 0;
    free(c->envp);
    c->envp = NULL;
}

void exe_step_close_fds(exe_call *c)
{
    for (int i = 0; i < 3; i++)
        if (c->fd[i] >= 0) {
            exe_loop_forget(c->srv, c, i);
            close(c->fd[i]);
            c->fd[i] = -1;
        }
}

static void fail_start(exe_call *c, const char *what, const char *arg, int err)
{
    c->exit_code_on_fail = err == ENOENT ? 127 : 126;
    snprintf(c->error, sizeof c->error, "%s %.180s: %s", what, arg, strerror(err));
    c->t_exit_us = rpc_now_us();
    c->cstate = CMD_REAPED;
}

/* Makes a pipe whose parent end is non-blocking; both ends close on exec. */
static int make_pipe(int fds[2], bool parent_reads)
{
    if (pipe2(fds, O_CLOEXEC) < 0)
        return -errno;
    int parent = parent_reads ? fds[0] : fds[1];
    fcntl(parent, F_SETFL, O_NONBLOCK);
    if (parent_reads)
        fcntl(parent, F_SETPIPE_SZ, 256 * 1024);
    return 0;
}

/* Spawns command c->cur. On success the command is RUNNING with its pipes registered. */
static void cmd_start(exe_call *c)
{
    exe_server *srv = c->srv;
    const exe_cmd *cmd = &c->step.cmds[c->cur];
    cmd_reset(c);
    c->t0_us = rpc_now_us();
    uint32_t timeout = cmd->timeout_ms ? cmd->timeout_ms : c->step.timeout_ms;
    if (timeout)
        c->deadline_us = c->t0_us + (uint64_t)timeout * 1000u;

    c->cmd_uid = ++srv->next_cmd_uid;
    snprintf(c->marker, sizeof c->marker, "PM_COMMAND_ID=%llu", (unsigned long long)c->cmd_uid);
    c->envp = exe_step_env(&c->step, c->cur, srv->base_env, c->marker);
    if (!c->envp) {
        fail_start(c, "prepare", "environment", ENOMEM);
        return;
    }
    char path[4096];
    static char *const no_argv[] = {NULL};
    char *sh_argv[] = {"sh", "-c", (char *)cmd->shell, NULL};
    char *const *argv = cmd->shell ? sh_argv : (cmd->argv.n ? cmd->argv.v : no_argv);
    if (cmd->shell) {
        snprintf(path, sizeof path, "/bin/sh");
    } else if (strchr(argv[0], '/')) {
        snprintf(path, sizeof path, "%s", argv[0]);
    } else {
        int rc = exe_path_search(argv[0], exe_env_get(c->envp, "PATH"), path, sizeof path);
        if (rc < 0) {
            fail_start(c, "exec", argv[0], -rc);
            if (rc == -ENOENT)
                snprintf(c->error, sizeof c->error, "exec %s: command not found in PATH", argv[0]);
            return;
        }
    }

    int in[2] = {-1, -1}, out[2] = {-1, -1}, err[2] = {-1, -1};
    int rc = make_pipe(out, true);
    if (rc == 0)
        rc = make_pipe(err, true);
    if (rc == 0 && cmd->stdin_len)
        rc = make_pipe(in, false);
    /* Without input, stdin is the server's /dev/null, shared by every command (the child's
     * dup2 makes its own fd 0). */
    bool own_in = cmd->stdin_len || srv->devnull <= STDERR_FILENO;
    if (rc == 0 && !cmd->stdin_len) {
        in[0] = own_in ? open("/dev/null", O_RDONLY | O_CLOEXEC) : srv->devnull;
        if (in[0] < 0)
            rc = -errno;
    }
    if (rc < 0) {
        int fds[] = {own_in ? in[0] : -1, in[1], out[0], out[1], err[0], err[1]};
        for (size_t i = 0; i < 6; i++)
            if (fds[i] >= 0)
                close(fds[i]);
        fail_start(c, "pipe", "for output", -rc);
        return;
    }

    const char *workdir = cmd->workdir && cmd->workdir[0] ? cmd->workdir : c->step.workdir;
    exe_spawn_spec spec = {
        .path = path,
        .argv = argv,
        .envp = c->envp,
        .workdir = workdir,
        .stdio = {in[0], out[1], err[1]},
        .new_session = true,
        .sig_reset = &srv->sig_reset,
        .sandbox = c->sandbox,
    };
    exe_spawn_result res;
    rc = exe_spawn(&spec, &res);
    if (own_in)
        close(in[0]);
    close(out[1]);
    close(err[1]);
    if (rc < 0) {
        if (in[1] >= 0)
            close(in[1]);
        close(out[0]);
        close(err[0]);
        if (res.stage == EXE_SPAWN_FAIL_CHDIR)
            fail_start(c, "chdir", workdir, res.err);
        else if (res.stage == EXE_SPAWN_FAIL_SANDBOX)
            fail_start(c, "sandbox", sbx_stage_name(res.sandbox_stage), res.err);
        else
            fail_start(c, exe_spawn_stage_name(res.stage), path, res.err);
        return;
    }
    srv->commands_started++;
    c->pid = res.pid;
    c->fd[FD_STDIN] = in[1];
    c->fd[FD_STDOUT] = out[0];
    c->fd[FD_STDERR] = err[0];
    c->in_pos = cmd->stdin_data;
    c->in_left = cmd->stdin_len;
    c->started_pending = c->kind == K_RUN;
    c->cstate = CMD_RUNNING;
    if (c->deadline_us)
        exe_loop_wake(srv); /* the I/O thread must recompute its epoll timeout */
    if (c->client_gone)
        exe_step_kill(c, SIGTERM, NULL);
}

void exe_step_kill(exe_call *c, int sig, const char *why)
{
    if (why && !c->error[0])
        snprintf(c->error, sizeof c->error, "%s", why);
    if (c->cstate != CMD_RUNNING || c->pid <= 0)
        return;
    kill(-c->pid, sig);
    if (sig != SIGKILL && !c->kill_at_us) {
        c->kill_at_us = rpc_now_us() + c->srv->cfg.kill_grace_ms * 1000u;
        exe_loop_wake(c->srv);
    }
}

void exe_step_reaped(exe_call *c, int wstatus, const struct rusage *ru)
{
    c->wstatus = wstatus;
    c->ru = *ru;
    c->t_exit_us = rpc_now_us();
    c->cstate = CMD_REAPED;
    c->drain_until_us = c->t_exit_us + DRAIN_GRACE_US;
    /* Descendants that left the process group (setsid) are found later, off the hot path. */
    if (!c->srv->sweep_due_us)
        c->srv->sweep_due_us = c->t_exit_us + EXE_SWEEP_DELAY_US;
    if (c->fd[FD_STDIN] >= 0) {
        exe_loop_forget(c->srv, c, FD_STDIN);
        close(c->fd[FD_STDIN]);
        c->fd[FD_STDIN] = -1;
    }
    exe_loop_wake(c->srv);
}

void exe_step_timers(exe_call *c, uint64_t now)
{
    if (c->cstate == CMD_RUNNING) {
        if (c->deadline_us && now >= c->deadline_us && !c->timed_out) {
            c->timed_out = true;
            char why[64];
            snprintf(why, sizeof why, "timed out after %llu ms",
                     (unsigned long long)((c->deadline_us - c->t0_us) / 1000u));
            exe_step_kill(c, SIGTERM, why);
        }
        if (c->kill_at_us && now >= c->kill_at_us) {
            kill(-c->pid, SIGKILL);
            c->kill_at_us = 0;
        }
    } else if (c->cstate == CMD_REAPED && c->drain_until_us && now >= c->drain_until_us) {
        if (c->send_in_flight || out_blocked(c)) {
            /* The pipes are not being read because the client is slow: what is in them is
             * still coming, and the grace counts again from when reading can go on. */
            c->drain_until_us = now + DRAIN_GRACE_US;
            return;
        }
        /* Something outside the process group (it called setsid) still holds the pipes. */
        exe_step_close_fds(c);
    }
}

uint64_t exe_step_next_timer(const exe_call *c)
{
    uint64_t t = UINT64_MAX;
    if (c->cstate == CMD_RUNNING) {
        if (c->deadline_us && !c->timed_out)
            t = c->deadline_us;
        if (c->kill_at_us && c->kill_at_us < t)
            t = c->kill_at_us;
    } else if (c->cstate == CMD_REAPED && (c->fd[FD_STDOUT] >= 0 || c->fd[FD_STDERR] >= 0)) {
        t = c->drain_until_us;
    }
    if (c->flush_at_us && c->pend_len && !c->status_sent && c->flush_at_us < t)
        t = c->flush_at_us;
    return t;
}

/* Writes pending stdin; closes it when done or when the child stopped reading. */
static void pump_stdin(exe_call *c)
{
    int fd = c->fd[FD_STDIN];
    if (c->armed[FD_STDIN])
        return; /* the pipe was full: wait for epoll to say it has room */
    while (fd >= 0 && c->in_left) {
        ssize_t w = write(fd, c->in_pos, c->in_left);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0 && errno == EAGAIN) {
            exe_loop_arm(c->srv, c, FD_STDIN);
            return;
        }
        if (w < 0)
            break; /* EPIPE: the child closed its stdin */
        c->in_pos += w;
        c->in_left -= (size_t)w;
    }
    if (fd >= 0) {
        exe_loop_forget(c->srv, c, FD_STDIN);
        close(fd);
        c->fd[FD_STDIN] = -1;
    }
}

/* Appends legacy output: stdout into the reply (capped for the whole call), stderr's head for
 * the error message. */
static void collect(exe_call *c, int which, const uint8_t *p, size_t n)
{
    if (which == FD_STDERR) {
        size_t room = sizeof c->errtail - 1 - c->errtail_len;
        size_t k = n < room ? n : room;
        memcpy(c->errtail + c->errtail_len, p, k);
        c->errtail_len += k;
        return;
    }
    size_t cap = c->srv->cfg.legacy_output_cap;
    size_t room = cap > c->collect_len ? cap - c->collect_len : 0;
    if (n > room) {
        n = room;
        c->truncated = true;
    }
    if (c->collect_len + n > c->collect_cap) {
        size_t ncap = c->collect_cap ? c->collect_cap : 4096;
        while (ncap < c->collect_len + n)
            ncap *= 2;
        if (ncap > cap)
            ncap = cap;
        uint8_t *nb = realloc(c->collect, ncap);
        if (!nb) {
            c->truncated = true;
            return;
        }
        c->collect = nb;
        c->collect_cap = ncap;
    }
    memcpy(c->collect + c->collect_len, p, n);
    c->collect_len += n;
}

size_t exe_cap_take(uint64_t cap, uint64_t delivered, size_t n, bool *truncated)
{
    if (!cap)
        return n;
    uint64_t room = cap > delivered ? cap - delivered : 0;
    if (n > room) {
        *truncated = true;
        return (size_t)room;
    }
    return n;
}

/*
 * Output buffers are malloc'd with a pointer to their call's tracker in front and handed to gRPC
 * as slices whose release runs out_buf_free, on whichever thread drops the last reference (which
 * may hold gRPC locks, or srv->mu: so atomics only, and an eventfd kick).
 */
struct exe_out_track {
    exe_server *srv;
    atomic_int refs;     /* the call's, plus one per buffer alive */
    atomic_int alive;    /* buffers not yet released */
    atomic_bool blocked; /* the call waits for a release */
};

#define OUT_HDR 16 /* the tracker pointer, padded so the data stays 16-byte aligned */

/* Whether the call waits for gRPC to release one of its output buffers. */
static bool out_blocked(const exe_call *c)
{
    return c->track && atomic_load(&c->track->blocked);
}

void exe_out_track_release(struct exe_out_track *t)
{
    if (t && atomic_fetch_sub(&t->refs, 1) == 1)
        free(t);
}

static void out_buf_free(void *p)
{
    struct exe_out_track *t = *(struct exe_out_track **)p;
    free(p);
    atomic_fetch_sub(&t->alive, 1);
    if (atomic_load(&t->blocked))
        exe_loop_kick(t->srv);
    exe_out_track_release(t);
}

/* Makes c->pend a new output buffer; false when the call must wait for gRPC to release one
 * (out_blocked) or memory ran out (c->pend stays empty). */
static bool out_buf_new(exe_call *c)
{
    if (!c->track) {
        c->track = calloc(1, sizeof *c->track);
        if (!c->track)
            return false;
        c->track->srv = c->srv;
        atomic_init(&c->track->refs, 1);
    }
    struct exe_out_track *t = c->track;
    if (atomic_load(&t->alive) >= EXE_OUT_BUFS_PER_CALL) {
        /* Announce the wait first, then look again: a release in between either is seen here
         * or sees the flag and kicks the I/O thread. */
        atomic_store(&t->blocked, true);
        if (atomic_load(&t->alive) >= EXE_OUT_BUFS_PER_CALL)
            return false;
        atomic_store(&t->blocked, false);
    }
    size_t size = EXE_EVENT_HEADER_ROOM + c->srv->cfg.chunk_bytes;
    uint8_t *p = malloc(OUT_HDR + size);
    if (!p)
        return false;
    *(struct exe_out_track **)p = t;
    atomic_fetch_add(&t->refs, 1);
    atomic_fetch_add(&t->alive, 1);
    c->pend = grpc_slice_new_with_user_data(p + OUT_HDR, size, out_buf_free, p);
    return true;
}

bool exe_step_out_ready(exe_call *c)
{
    if (!out_blocked(c) || atomic_load(&c->track->alive) >= EXE_OUT_BUFS_PER_CALL)
        return false;
    atomic_store(&c->track->blocked, false);
    return true;
}

/* Drops the output read for the next event. */
static void pend_drop(exe_call *c)
{
    grpc_slice_unref(c->pend);
    c->pend = grpc_empty_slice();
    c->pend_len = 0;
    c->flush_at_us = 0;
}

/* Sends the output read so far as one event. Returns true when it was handed to gRPC. */
static bool pend_send(exe_call *c)
{
    grpc_slice slice = c->pend;
    size_t len = c->pend_len;
    bool is_stderr = c->pend_which == FD_STDERR;
    c->pend = grpc_empty_slice();
    c->pend_len = 0;
    c->flush_at_us = 0;
    c->read_stderr_first = !is_stderr; /* the other stream's turn next */
    return exe_call_send(c, exe_event_output_in((uint32_t)c->cur, is_stderr, slice, len));
}

/* Closes an output pipe at EOF or on a read error. */
static void output_eof(exe_call *c, int which)
{
    exe_loop_forget(c->srv, c, which);
    close(c->fd[which]);
    c->fd[which] = -1;
}

/*
 * Reads output when nobody will send it: into the legacy reply, or dropped (past the cap, or the
 * client is gone). Returns false: nothing was sent.
 */
static bool drain_output(exe_call *c)
{
    exe_server *srv = c->srv;
    int budget = READS_PER_PUMP;
    if (c->pend_len)
        pend_drop(c);
    for (int which = FD_STDOUT; which <= FD_STDERR; which++) {
        /* An fd armed in epoll had nothing to read last time: skip it until its event comes. */
        while (c->fd[which] >= 0 && !c->armed[which]) {
            if (budget-- <= 0) {
                exe_loop_arm(srv, c, which);
                break;
            }
            ssize_t n = read(c->fd[which], srv->buf, srv->cfg.chunk_bytes);
            if (n < 0 && errno == EINTR)
                continue;
            if (n < 0 && errno == EAGAIN) {
                exe_loop_arm(srv, c, which);
                break;
            }
            if (n <= 0) {
                output_eof(c, which);
                break;
            }
            c->produced[which] += (uint64_t)n;
            if (c->kind == K_LEGACY)
                collect(c, which, srv->buf, (size_t)n);
            else
                exe_cap_take(c->output_cap, c->delivered, (size_t)n, &c->truncated);
        }
    }
    return false;
}

/*
 * Streams a Run call's output: reads straight into the next event's slice and sends it when it is
 * full, when the pipe is at EOF, or when the pipe ran dry. A chunk that ran dry after bulk output
 * (at least an eighth of a chunk) waits up to --coalesce-us for the pipe to fill before it goes:
 * a fast producer then gets few full messages instead of many small ones, which is what a
 * gigabyte of output costs on both ends, while a command printing a line now and then sees no
 * delay. Returns true when a message was handed to gRPC (the call must wait for its completion),
 * false when nothing more can be done now (fds armed, at EOF, or waiting for the flush time).
 */
static bool stream_output(exe_call *c)
{
    exe_server *srv = c->srv;
    const size_t chunk = srv->cfg.chunk_bytes;
    int budget = READS_PER_PUMP;
    for (int k = 0; k < 2; k++) {
        int which = c->pend_len                        ? c->pend_which
                    : (k == 0) == c->read_stderr_first ? FD_STDERR
                                                       : FD_STDOUT;
        while (c->fd[which] >= 0 && !c->armed[which]) {
            /* Waiting for the pipe to fill (the I/O thread comes back at flush_at_us), unless
             * the command has ended: then what is in the pipe is all there is. */
            if (c->flush_at_us && c->cstate == CMD_RUNNING && rpc_now_us() < c->flush_at_us)
                return false;
            if (budget-- <= 0) {
                if (c->pend_len)
                    return pend_send(c);
                pend_drop(c);
                exe_loop_arm(srv, c, which);
                break;
            }
            if (!GRPC_SLICE_LENGTH(c->pend) && !out_buf_new(c))
                return out_blocked(c) ? false : drain_output(c); /* out of memory: dropped */
            if (!c->pend_len)
                c->pend_which = which; /* an empty buffer serves whichever pipe reads next */
            size_t room = chunk - c->pend_len;
            uint8_t *at = GRPC_SLICE_START_PTR(c->pend) + EXE_EVENT_HEADER_ROOM + c->pend_len;
            ssize_t n = read(c->fd[which], at, room);
            if (n < 0 && errno == EINTR)
                continue;
            if (n == 0 || (n < 0 && errno != EAGAIN)) {
                output_eof(c, which);
                if (c->pend_len)
                    return pend_send(c);
                pend_drop(c);
                break;
            }
            if (n > 0) {
                c->produced[which] += (uint64_t)n;
                size_t give = exe_cap_take(c->output_cap, c->delivered, (size_t)n, &c->truncated);
                c->delivered += give;
                c->pend_len += give; /* bytes past the cap stay behind pend_len: dropped */
                if (c->pend_len == chunk)
                    return pend_send(c);
                if (!c->pend_len || (size_t)n == room)
                    continue; /* all dropped past the cap, or cut short by it: read on */
            } else if (!c->pend_len) {
                pend_drop(c); /* EAGAIN with nothing to send: no buffer kept while idle */
                exe_loop_arm(srv, c, which);
                break;
            }
            /* The pipe ran dry (a short read or EAGAIN) with output read. */
            if (!c->flush_at_us && srv->cfg.coalesce_us && c->pend_len >= chunk / 8 &&
                c->cstate == CMD_RUNNING && srv->fine_timers) {
                c->flush_at_us = rpc_now_us() + srv->cfg.coalesce_us;
                exe_loop_wake(srv); /* its epoll timeout must now include flush_at_us */
                return false;
            }
            return pend_send(c);
        }
    }
    return false;
}

/*
 * Reads what the pipes have. Returns true when a message was handed to gRPC (the call must now
 * wait for its completion), false when nothing more can be read now.
 */
static bool pump_output(exe_call *c)
{
    if (c->kind == K_LEGACY || c->client_gone)
        return drain_output(c);
    /* Output read before both pipes closed (EOF, or the drain timer) still goes out. */
    if (c->pend_len && c->fd[c->pend_which] < 0)
        return pend_send(c);
    return stream_output(c);
}

static void fill_exited(exe_call *c, pm_executor_v1_Exited *ex)
{
    memset(ex, 0, sizeof *ex);
    if (c->exit_code_on_fail) {
        ex->exit_code = c->exit_code_on_fail;
    } else if (WIFSIGNALED(c->wstatus)) {
        ex->exit_code = -1;
        ex->signal = WTERMSIG(c->wstatus);
    } else {
        ex->exit_code = WEXITSTATUS(c->wstatus);
    }
    ex->timed_out = c->timed_out;
    ex->cancelled = c->cancelled;
    ex->wall_us = c->t_exit_us - c->t0_us;
    ex->user_us = (uint64_t)c->ru.ru_utime.tv_sec * 1000000u + (uint64_t)c->ru.ru_utime.tv_usec;
    ex->sys_us = (uint64_t)c->ru.ru_stime.tv_sec * 1000000u + (uint64_t)c->ru.ru_stime.tv_usec;
    ex->max_rss_kb = (uint64_t)c->ru.ru_maxrss;
    ex->stdout_bytes = c->produced[FD_STDOUT];
    ex->stderr_bytes = c->produced[FD_STDERR];
    ex->truncated = c->truncated;
    snprintf(ex->error, sizeof ex->error, "%s", c->error);
    if (ex->signal == SIGSYS && !ex->error[0])
        snprintf(ex->error, sizeof ex->error,
                 "killed by the seccomp filter (SIGSYS): a system call the profile kills on");
}

/* Records the legacy outcome of the command that just ended. */
static void legacy_done(exe_call *c, const pm_executor_v1_Exited *ex)
{
    c->outs[c->cur].len = c->collect_len - c->out_start;
    c->outs[c->cur].data = NULL; /* pointed into collect at the end; it may still move */
    c->out_start = c->collect_len;
    if (ex->exit_code == 0)
        return;
    c->any_failed = true;
    char how[320];
    if (ex->signal)
        snprintf(how, sizeof how, "was killed by signal %d%s", ex->signal,
                 ex->timed_out ? " (timed out)" : "");
    else if (ex->error[0])
        snprintf(how, sizeof how, "could not run (%.250s), exit code %d", ex->error, ex->exit_code);
    else
        snprintf(how, sizeof how, "exited with code %d", ex->exit_code);
    c->errtail[c->errtail_len] = '\0';
    snprintf(c->legacy_error, sizeof c->legacy_error, "command %zu (`%.200s`) %.300s%s%.900s",
             c->cur, c->step.cmds[c->cur].shell, how, c->errtail_len ? ": " : "", c->errtail);
}

static void log_command(exe_call *c, const pm_executor_v1_Exited *ex)
{
    char err[300], name[100], head[81];
    /* The command's name: its shell line or argv[0], cut to a readable length. */
    const exe_cmd *cmd = &c->step.cmds[c->cur];
    snprintf(head, sizeof head, "%s", cmd->shell ? cmd->shell : cmd->argv.v[0]);
    rpc_log("info", "command",
            "call=%llu index=%zu cmd=%s pid=%d exit=%d signal=%d wall_ms=%.3f stdout_bytes=%llu "
            "stderr_bytes=%llu timed_out=%d cancelled=%d truncated=%d error=%s",
            (unsigned long long)c->id, c->cur, rpc_log_quote(name, sizeof name, head), (int)c->pid,
            ex->exit_code, ex->signal, (double)ex->wall_us / 1000.0,
            (unsigned long long)ex->stdout_bytes, (unsigned long long)ex->stderr_bytes,
            ex->timed_out, ex->cancelled, ex->truncated, rpc_log_quote(err, sizeof err, ex->error));
}

/* Ends the call: the final status, or the legacy reply. */
static void step_finish(exe_call *c)
{
    if (c->kind == K_LEGACY && !c->client_gone) {
        size_t off = 0;
        for (size_t i = 0; i < c->cur && i < c->step.ncmds; i++) {
            c->outs[i].data = c->collect + off;
            off += c->outs[i].len;
        }
        grpc_byte_buffer *bb = exe_legacy_result(!c->any_failed, c->legacy_error, c->outs, c->cur);
        exe_call_finish_unary(c, bb);
        return;
    }
    if (c->srv->killing_all)
        exe_call_finish(c, GRPC_STATUS_UNAVAILABLE, "executor shutting down");
    else
        exe_call_finish(c, GRPC_STATUS_OK, NULL);
}

void exe_step_begin(exe_call *c)
{
    c->cur = 0;
    c->cstate = CMD_PENDING;
    for (int i = 0; i < 3; i++)
        c->fd[i] = -1;
    if (c->kind == K_LEGACY) {
        c->outs = calloc(c->step.ncmds, sizeof *c->outs);
        if (!c->outs) {
            exe_call_finish(c, GRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory");
            return;
        }
    }
    exe_step_pump(c);
}

void exe_step_pump(exe_call *c)
{
    for (;;) {
        if (c->send_in_flight || c->status_sent)
            return;
        switch (c->cstate) {
        case CMD_PENDING:
            if (c->cur >= c->step.ncmds || c->stop || c->client_gone || c->srv->killing_all) {
                step_finish(c);
                return;
            }
            cmd_start(c);
            break;
        case CMD_RUNNING:
        case CMD_REAPED:
            if (c->started_pending) {
                c->started_pending = false;
                if (!c->client_gone &&
                    exe_call_send(c, exe_event_started((uint32_t)c->cur, (int32_t)c->pid)))
                    return;
            }
            if (c->fd[FD_STDIN] >= 0 && c->in_left)
                pump_stdin(c);
            if (pump_output(c))
                return;
            /* Both pipes at EOF almost always means the command has exited: reap it now rather
             * than after another wake-up for SIGCHLD (this is on every call's latency). */
            if (c->cstate == CMD_RUNNING && c->fd[FD_STDOUT] < 0 && c->fd[FD_STDERR] < 0)
                exe_loop_try_reap(c->srv, c);
            if (c->cstate != CMD_REAPED || c->fd[FD_STDOUT] >= 0 || c->fd[FD_STDERR] >= 0)
                return; /* wait for the pipes or the reaper */
            {
                pm_executor_v1_Exited ex;
                fill_exited(c, &ex);
                if (ex.exit_code != 0 && !c->step.continue_on_error)
                    c->stop = true;
                c->cstate = CMD_DONE;
                bool last = c->cur + 1 >= c->step.ncmds || c->stop;
                /* The event goes out before the log line is written: the line is not on the
                 * client's path. */
                bool sent = false;
                if (c->kind == K_LEGACY) {
                    legacy_done(c, &ex);
                } else if (c->client_gone) {
                    /* nothing more to send */
                } else if (last && !c->srv->killing_all) {
                    /* The last event and the status share one batch: one write, no wake-up. */
                    exe_call_finish_with(c, exe_event_exited((uint32_t)c->cur, &ex));
                    sent = true;
                } else {
                    sent = exe_call_send(c, exe_event_exited((uint32_t)c->cur, &ex));
                }
                log_command(c, &ex);
                if (sent)
                    return;
            }
            break;
        case CMD_DONE:
            c->cur++;
            c->cstate = CMD_PENDING;
            break;
        }
    }
}

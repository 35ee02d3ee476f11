/*
 * The I/O thread of pm-executor: one epoll set holding the command pipes (one-shot, re-armed by
 * the step when a read would block), a signalfd (SIGCHLD for reaping, SIGTERM and friends for
 * shutdown or for forwarding to the app in PID-1 mode) and an eventfd that other threads write to
 * when timers or the shutdown state changed. Reaping follows libuv: peek with WNOWAIT, kill the
 * rest of the command's process group while the zombie still pins the group id, then reap.
 */
#include "executor/internal.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/signalfd.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* Sentinels for the two fds that are not pipes. */
static int tag_signal, tag_wake;

/* The I/O thread looks at every timer and list at the top of each turn: it never needs waking. */
static __thread bool on_io_thread;

int exe_loop_init(exe_server *srv)
{
    srv->epfd = epoll_create1(EPOLL_CLOEXEC);
    sigset_t set;
    pthread_sigmask(SIG_BLOCK, NULL, &set);
    srv->sigfd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
    srv->wakefd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (srv->epfd < 0 || srv->sigfd < 0 || srv->wakefd < 0)
        return -errno;
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = &tag_signal};
    if (epoll_ctl(srv->epfd, EPOLL_CTL_ADD, srv->sigfd, &ev) < 0)
        return -errno;
    ev.data.ptr = &tag_wake;
    if (epoll_ctl(srv->epfd, EPOLL_CTL_ADD, srv->wakefd, &ev) < 0)
        return -errno;
    /* Output coalescing waits a fraction of a millisecond; older kernels only have millisecond
     * timeouts, and there it stays off. */
    struct epoll_event none;
    struct timespec zero = {0, 0};
    srv->fine_timers = epoll_pwait2(srv->epfd, &none, 1, &zero, NULL) >= 0;
    return 0;
}

void exe_loop_kick(exe_server *srv)
{
    uint64_t one = 1;
    ssize_t w = write(srv->wakefd, &one, sizeof one);
    (void)w; /* EAGAIN means a wake-up is already pending */
}

void exe_loop_wake(exe_server *srv)
{
    if (!on_io_thread)
        exe_loop_kick(srv);
}

int exe_loop_arm(exe_server *srv, exe_call *c, int which)
{
    c->ref[which] = (exe_fd_ref){c, which};
    struct epoll_event ev = {
        .events = (which == FD_STDIN ? EPOLLOUT : EPOLLIN) | EPOLLONESHOT,
        .data.ptr = &c->ref[which],
    };
    int op = c->fd_registered[which] ? EPOLL_CTL_MOD : EPOLL_CTL_ADD;
    if (epoll_ctl(srv->epfd, op, c->fd[which], &ev) < 0)
        return -errno;
    c->fd_registered[which] = true;
    c->armed[which] = true;
    return 0;
}

void exe_loop_forget(exe_server *srv, exe_call *c, int which)
{
    if (!c->fd_registered[which])
        return;
    epoll_ctl(srv->epfd, EPOLL_CTL_DEL, c->fd[which], NULL);
    c->fd_registered[which] = false;
    c->armed[which] = false;
}

static exe_call *find_by_pid(exe_server *srv, pid_t pid)
{
    for (exe_call *c = srv->running; c; c = c->next)
        if (c->pid == pid && c->cstate == CMD_RUNNING)
            return c;
    return NULL;
}

/* Reaps pid, known to have exited; for a command (c), first kills what it left in its group
 * while the zombie still pins the group id. Returns the status, or -1 when it was not reaped. */
static int reap_exited(pid_t pid, exe_call *c, struct rusage *ru)
{
    if (c)
        kill(-pid, SIGKILL);
    int status = 0;
    memset(ru, 0, sizeof *ru);
    pid_t r;
    do
        r = wait4(pid, &status, WNOHANG, ru);
    while (r < 0 && errno == EINTR);
    return r == pid ? status : -1;
}

bool exe_loop_try_reap(exe_server *srv, exe_call *c)
{
    (void)srv;
    siginfo_t si;
    memset(&si, 0, sizeof si);
    if (waitid(P_PID, (id_t)c->pid, &si, WEXITED | WNOHANG | WNOWAIT) < 0 || si.si_pid != c->pid)
        return false;
    struct rusage ru;
    int status = reap_exited(c->pid, c, &ru);
    if (status < 0)
        return false;
    exe_step_reaped(c, status, &ru);
    return true;
}

static void reap(exe_server *srv)
{
    for (;;) {
        siginfo_t si;
        memset(&si, 0, sizeof si);
        if (waitid(P_ALL, 0, &si, WEXITED | WNOHANG | WNOWAIT) < 0 || si.si_pid == 0)
            return;
        pid_t pid = si.si_pid;
        exe_call *c = find_by_pid(srv, pid);
        struct rusage ru;
        int status = reap_exited(pid, c, &ru);
        if (status < 0)
            continue;
        if (c) {
            exe_step_reaped(c, status, &ru);
            exe_step_pump(c);
            exe_call_maybe_dead(c);
        } else if (pid == srv->app_pid) {
            srv->app_exited = true;
            srv->app_status = status;
            rpc_log("info", "app_exited", "pid=%d status=%d signal=%d", (int)pid,
                    WIFEXITED(status) ? WEXITSTATUS(status) : -1,
                    WIFSIGNALED(status) ? WTERMSIG(status) : 0);
            exe_begin_shutdown(srv);
        }
        /* Anything else was an orphan re-parented to us: reaped, nothing to report. */
    }
}

/* Reads the PM_COMMAND_ID marker from a process's initial environment; 0 when it has none. */
static uint64_t command_marker(pid_t pid)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/environ", (int)pid);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return 0;
    size_t cap = 256 * 1024, len = 0;
    char *buf = malloc(cap + 1);
    ssize_t n;
    while (buf && len < cap && (n = read(fd, buf + len, cap - len)) > 0)
        len += (size_t)n;
    close(fd);
    uint64_t uid = 0;
    static const char key[] = "PM_COMMAND_ID=";
    for (size_t i = 0; buf && i < len; i += strlen(buf + i) + 1) {
        buf[len] = '\0';
        if (!strncmp(buf + i, key, sizeof key - 1)) {
            uid = strtoull(buf + i + sizeof key - 1, NULL, 10);
            break;
        }
    }
    free(buf);
    return uid;
}

static bool command_running(exe_server *srv, uint64_t uid)
{
    for (exe_call *c = srv->running; c; c = c->next)
        if (c->cmd_uid == uid && c->cstate == CMD_RUNNING)
            return true;
    return false;
}

/* Decides about one child of the executor; returns true when it was killed. */
static bool sweep_one(exe_server *srv, pid_t pid)
{
    if (pid == srv->app_pid || find_by_pid(srv, pid))
        return false;
    uint64_t uid = command_marker(pid);
    if (uid && command_running(srv, uid))
        return false; /* its command is still running: it goes when that command does */
    if (!uid && srv->app_pid > 0)
        return false; /* PID-1 mode: an unmarked orphan is the app's business */
    kill(pid, SIGKILL);
    rpc_log("info", "orphan_killed", "pid=%d command_id=%llu", (int)pid, (unsigned long long)uid);
    return true;
}

/*
 * "No orphan survives a step": a descendant of a command that called setsid() escapes the group
 * kill, and is re-parented to the executor (a child subreaper) when its parent dies. Every child
 * of the executor that is not a running command or the app is such an orphan; it is killed once
 * the command it came from (its PM_COMMAND_ID marker) has ended. Without a marker it is killed
 * too, except in PID-1 mode, where it may be one of the app's daemons. Runs on a timer after
 * commands end, never on the per-command path.
 */
static void sweep_orphans(exe_server *srv)
{
    srv->sweep_due_us = 0;
    DIR *d = opendir("/proc/self/task");
    if (!d)
        return;
    int killed = 0;
    struct dirent *de;
    while ((de = readdir(d))) {
        if (de->d_name[0] == '.')
            continue;
        char path[96], list[4096];
        snprintf(path, sizeof path, "/proc/self/task/%.20s/children", de->d_name);
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
            continue;
        ssize_t n = read(fd, list, sizeof list - 1);
        close(fd);
        if (n <= 0)
            continue;
        list[n] = '\0';
        for (char *p = list, *end; *p; p = end) {
            long pid = strtol(p, &end, 10);
            if (end == p)
                break;
            if (pid > 0 && sweep_one(srv, (pid_t)pid))
                killed++;
        }
    }
    closedir(d);
    /* Their own children are re-parented to us next: look again soon. */
    if (killed)
        srv->sweep_due_us = rpc_now_us() + EXE_SWEEP_DELAY_US;
}

static void on_signals(exe_server *srv)
{
    struct signalfd_siginfo si;
    while (read(srv->sigfd, &si, sizeof si) == (ssize_t)sizeof si) {
        int sig = (int)si.ssi_signo;
        if (sig == SIGCHLD)
            continue; /* reap() below collects every exited child */
        if (srv->app_pid > 0 && !srv->app_exited) {
            /* PID-1 mode: the app decides; we shut down when it exits. */
            kill(srv->app_pid, sig);
            rpc_log("info", "signal_forwarded", "signal=%d pid=%d", sig, (int)srv->app_pid);
        } else if (sig == SIGTERM || sig == SIGINT) {
            rpc_log("info", "signal", "signal=%d", sig);
            if (srv->shutdown_started && sig == SIGINT)
                srv->shutdown_deadline_us = rpc_now_us(); /* a second ^C: stop waiting */
            exe_begin_shutdown(srv);
        }
    }
    reap(srv);
}

/* Past the shutdown grace, running steps are stopped like a cancel. */
static void shutdown_timers(exe_server *srv, uint64_t now)
{
    if (!srv->shutdown_started || srv->killing_all || now < srv->shutdown_deadline_us)
        return;
    srv->killing_all = true;
    for (exe_call *c = srv->running; c; c = c->next) {
        c->cancelled = true;
        exe_step_kill(c, SIGTERM, "executor shutting down");
        exe_step_pump(c);
    }
}

/* Microseconds until the earliest timer (0: due now), or -1 when there is none. */
static int64_t next_timeout_us(exe_server *srv, uint64_t now)
{
    uint64_t t = UINT64_MAX;
    for (exe_call *c = srv->running; c; c = c->next) {
        uint64_t ct = exe_step_next_timer(c);
        if (ct < t)
            t = ct;
    }
    if (srv->shutdown_started && !srv->killing_all && srv->shutdown_deadline_us < t)
        t = srv->shutdown_deadline_us;
    if (srv->shutdown_started && srv->hard_deadline_us < t)
        t = srv->hard_deadline_us;
    if (srv->sweep_due_us && srv->sweep_due_us < t)
        t = srv->sweep_due_us;
    /* Calls that ended or are ending wake nobody: the next event frees them, or this timer.
     * (srv->dead is empty here: the loop frees it just before asking.) */
    if (srv->naccepted > srv->nrunning && now + EXE_FREE_DEAD_US < t)
        t = now + EXE_FREE_DEAD_US;
    if (t == UINT64_MAX)
        return -1;
    if (t <= now)
        return 0;
    return t - now > 60000000u ? 60000000 : (int64_t)(t - now);
}

/* epoll_wait with a timeout in microseconds: exact with epoll_pwait2 (Linux 5.11), otherwise
 * rounded up to the millisecond. */
static int wait_events(exe_server *srv, struct epoll_event *evs, int max, int64_t timeout_us)
{
    if (srv->fine_timers) {
        struct timespec ts = {.tv_sec = timeout_us / 1000000,
                              .tv_nsec = (long)(timeout_us % 1000000) * 1000};
        return epoll_pwait2(srv->epfd, evs, max, timeout_us < 0 ? NULL : &ts, NULL);
    }
    return epoll_wait(srv->epfd, evs, max, timeout_us < 0 ? -1 : (int)((timeout_us + 999) / 1000));
}

void exe_loop_run(exe_server *srv)
{
    struct epoll_event evs[64];
    on_io_thread = true;
    for (;;) {
        pthread_mutex_lock(&srv->mu);
        exe_free_dead(srv);
        uint64_t now = rpc_now_us();
        bool done = srv->shutdown_started &&
                    ((srv->server_down && !srv->running) || now >= srv->hard_deadline_us);
        /* Once no step runs, nothing is worth waiting for: idle connections and health
         * watchers would otherwise hold the server's shutdown for seconds. */
        bool cancel_rest = srv->shutdown_started && !srv->running && !srv->calls_cancelled;
        srv->calls_cancelled |= cancel_rest;
        int64_t timeout = next_timeout_us(srv, now);
        pthread_mutex_unlock(&srv->mu);
        if (done)
            return;
        if (cancel_rest)
            grpc_server_cancel_all_calls(srv->server);

        int n = wait_events(srv, evs, 64, timeout);
        if (n < 0 && errno != EINTR)
            return;

        pthread_mutex_lock(&srv->mu);
        for (int i = 0; i < n; i++) {
            void *p = evs[i].data.ptr;
            if (p == &tag_signal) {
                on_signals(srv);
            } else if (p == &tag_wake) {
                uint64_t v;
                ssize_t r = read(srv->wakefd, &v, sizeof v);
                (void)r;
            } else {
                exe_fd_ref *ref = p;
                exe_call *c = ref->call;
                c->armed[ref->which] = false; /* one-shot: it fired */
                exe_step_pump(c);
                exe_call_maybe_dead(c);
            }
        }
        now = rpc_now_us();
        shutdown_timers(srv, now);
        if (srv->sweep_due_us && now >= srv->sweep_due_us)
            sweep_orphans(srv);
        for (exe_call *c = srv->running, *next; c; c = next) {
            next = c->next;
            /* A call whose output buffers gRPC released (out_buf_free kicked us) reads on. */
            bool ready = exe_step_out_ready(c);
            if (!ready && exe_step_next_timer(c) > now)
                continue;
            exe_step_timers(c, now);
            exe_step_pump(c);
            exe_call_maybe_dead(c);
        }
        pthread_mutex_unlock(&srv->mu);
    }
}

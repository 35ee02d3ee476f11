/*
 * Process creation with clone(CLONE_VM | CLONE_VFORK). The child shares the parent's memory until
 * it calls execve, and the parent thread is suspended until then, so the child may only make
 * async-signal-safe system calls on data that was prepared before the clone; it reports a failed
 * setup step by writing into the shared context and exits with 127. Signals are blocked across the
 * clone so no parent handler ever runs on the child's stack, and the child restores default
 * dispositions and an empty mask before exec (ignored signals would otherwise be inherited).
 */
#include "executor/spawn.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define CHILD_STACK_SIZE (64 * 1024)

typedef struct {
    const exe_spawn_spec *spec;
    volatile exe_spawn_stage stage;
    volatile int err;
    volatile sbx_stage sandbox_stage;
} child_ctx;

/* Records the failed stage and ends the child; the parent reads both after the vfork returns. */
static void child_fail_or_die(child_ctx *ctx, exe_spawn_stage stage)
{
    ctx->err = errno;
    ctx->stage = stage;
    _exit(127);
}

static int child_main(void *arg)
{
    child_ctx *ctx = arg;
    const exe_spawn_spec *spec = ctx->spec;

    struct sigaction dfl;
    memset(&dfl, 0, sizeof dfl);
    dfl.sa_handler = SIG_DFL;
    for (int s = 1; s < NSIG; s++)
        if (s != SIGKILL && s != SIGSTOP && (!spec->sig_reset || sigismember(spec->sig_reset, s)))
            sigaction(s, &dfl, NULL);

    if (spec->new_session && setsid() < 0)
        child_fail_or_die(ctx, EXE_SPAWN_FAIL_SETSID);
    for (int i = 0; i < 3; i++) {
        int fd = spec->stdio[i];
        if (fd < 0)
            continue;
        if (fd == i) {
            /* dup2 onto itself would leave close-on-exec set. */
            if (fcntl(fd, F_SETFD, 0) < 0)
                child_fail_or_die(ctx, EXE_SPAWN_FAIL_DUP);
        } else if (dup2(fd, i) < 0) {
            child_fail_or_die(ctx, EXE_SPAWN_FAIL_DUP);
        }
    }
    if (spec->workdir && spec->workdir[0] && chdir(spec->workdir) < 0)
        child_fail_or_die(ctx, EXE_SPAWN_FAIL_CHDIR);

    /* Handlers are back to their defaults, so a signal from here on acts on the child alone. The
     * mask is emptied before the sandbox so that its filter only has to allow execve. */
    sigset_t none;
    sigemptyset(&none);
    pthread_sigmask(SIG_SETMASK, &none, NULL);
    if (spec->sandbox) {
        sbx_stage st = SBX_STAGE_NONE;
        int rc = sbx_apply_in_child(spec->sandbox, &st);
        if (rc < 0) {
            ctx->sandbox_stage = st;
            errno = -rc;
            child_fail_or_die(ctx, EXE_SPAWN_FAIL_SANDBOX);
        }
    }
    execve(spec->path, spec->argv, spec->envp);
    child_fail_or_die(ctx, EXE_SPAWN_FAIL_EXEC);
    return 127;
}

/* One child stack per spawning thread: the parent thread is suspended while the child uses it. */
static __thread void *child_stack;

int exe_spawn(const exe_spawn_spec *spec, exe_spawn_result *res)
{
    res->pid = -1;
    res->stage = EXE_SPAWN_FAIL_CLONE;
    res->err = 0;
    if (!child_stack) {
        void *s = mmap(NULL, CHILD_STACK_SIZE, PROT_READ | PROT_WRITE,
                       MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0);
        if (s == MAP_FAILED) {
            res->err = errno;
            return -res->err;
        }
        child_stack = s;
    }
    child_ctx ctx = {
        .spec = spec, .stage = EXE_SPAWN_OK, .err = 0, .sandbox_stage = SBX_STAGE_NONE};

    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    pid_t pid = clone(child_main, (char *)child_stack + CHILD_STACK_SIZE,
                      CLONE_VM | CLONE_VFORK | SIGCHLD, &ctx);
    int clone_errno = errno;
    pthread_sigmask(SIG_SETMASK, &old, NULL);

    if (pid < 0) {
        res->err = clone_errno;
        return -clone_errno;
    }
    res->pid = pid;
    res->stage = ctx.stage;
    res->err = ctx.err;
    res->sandbox_stage = ctx.sandbox_stage;
    if (ctx.stage != EXE_SPAWN_OK) {
        /* The child has already exited; reap it here so nobody mistakes it for a command. A
         * central reaper may win the race, which is fine. */
        while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
            ;
        return -(ctx.err ? ctx.err : EINVAL);
    }
    return 0;
}

void exe_spawn_handled_signals(sigset_t *set)
{
    sigemptyset(set);
    for (int s = 1; s < NSIG; s++) {
        struct sigaction sa;
        if (s == SIGKILL || s == SIGSTOP || sigaction(s, NULL, &sa) < 0)
            continue;
        if (sa.sa_handler != SIG_DFL)
            sigaddset(set, s);
    }
}

const char *exe_spawn_stage_name(exe_spawn_stage stage)
{
    switch (stage) {
    case EXE_SPAWN_OK:
        return "ok";
    case EXE_SPAWN_FAIL_CLONE:
        return "clone";
    case EXE_SPAWN_FAIL_SETSID:
        return "setsid";
    case EXE_SPAWN_FAIL_DUP:
        return "dup2";
    case EXE_SPAWN_FAIL_CHDIR:
        return "chdir";
    case EXE_SPAWN_FAIL_SANDBOX:
        return "sandbox";
    case EXE_SPAWN_FAIL_EXEC:
        return "exec";
    }
    return "?";
}

int exe_path_search(const char *file, const char *path_list, char *out, size_t outlen)
{
    int rc = -ENOENT;
    if (!path_list || !*path_list)
        path_list = "/usr/local/bin:/usr/bin:/bin";
    const char *p = path_list;
    for (;;) {
        const char *colon = strchr(p, ':');
        size_t dlen = colon ? (size_t)(colon - p) : strlen(p);
        int n = dlen ? snprintf(out, outlen, "%.*s/%s", (int)dlen, p, file)
                     : snprintf(out, outlen, "./%s", file);
        if (n > 0 && (size_t)n < outlen) {
            struct stat st;
            if (stat(out, &st) == 0 && S_ISREG(st.st_mode)) {
                if (access(out, X_OK) == 0)
                    return 0;
                rc = -EACCES;
            }
        }
        if (!colon)
            break;
        p = colon + 1;
    }
    return rc;
}

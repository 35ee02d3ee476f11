/*
 * Cheap process creation for a threaded daemon: clone(CLONE_VM | CLONE_VFORK) with a child that
 * only makes raw system calls on data the parent prepared, so no page tables are copied and no
 * allocator or lock is touched in the child.
 */
#ifndef PM_EXECUTOR_SPAWN_H
#define PM_EXECUTOR_SPAWN_H

#include <stdbool.h>
#include <signal.h>
#include <stddef.h>
#include <sys/types.h>

#include "sandbox/sandbox.h"

/* The step of the child's setup that failed, reported with its errno. */
typedef enum {
    EXE_SPAWN_OK = 0,
    EXE_SPAWN_FAIL_CLONE,
    EXE_SPAWN_FAIL_SETSID,
    EXE_SPAWN_FAIL_DUP,
    EXE_SPAWN_FAIL_CHDIR,
    EXE_SPAWN_FAIL_SANDBOX,
    EXE_SPAWN_FAIL_EXEC,
} exe_spawn_stage;

typedef struct {
    const char *path;    /* executable to run, already resolved */
    char *const *argv;   /* NULL-terminated */
    char *const *envp;   /* NULL-terminated */
    const char *workdir; /* NULL: inherit */
    int stdio[3];        /* fds to become 0, 1, 2 in the child; -1 keeps the parent's */
    bool new_session;    /* setsid(): own session and process group */
    /* Signals whose disposition the child must reset to SIG_DFL (those the parent handles or
     * ignores); NULL resets every signal, at the cost of a system call each. */
    const sigset_t *sig_reset;
    const sbx_prepared *sandbox; /* applied last before execve; NULL: none */
} exe_spawn_spec;

typedef struct {
    pid_t pid; /* > 0 when the child was created (even if exec then failed) */
    exe_spawn_stage stage;
    int err;                 /* errno of the failed stage */
    sbx_stage sandbox_stage; /* with EXE_SPAWN_FAIL_SANDBOX: which part of the sandbox */
} exe_spawn_result;

/*
 * Starts the child. Returns 0 when the program is running; otherwise a negative errno with
 * res->stage saying what failed. A child whose setup failed has exited with 127 and must still be
 * reaped by the caller (res->pid > 0).
 */
int exe_spawn(const exe_spawn_spec *spec, exe_spawn_result *res);

/* Fills set with the signals whose disposition is not SIG_DFL now (for exe_spawn_spec.sig_reset);
 * call it once the process has installed its handlers. */
void exe_spawn_handled_signals(sigset_t *set);

/* Names the stage for messages ("exec", "chdir", ...). */
const char *exe_spawn_stage_name(exe_spawn_stage stage);

/*
 * Finds file in the colon-separated path list like execvp does, into out. Returns 0, -ENOENT when
 * not found, or -EACCES when only non-executable candidates exist.
 */
int exe_path_search(const char *file, const char *path_list, char *out, size_t outlen);

#endif

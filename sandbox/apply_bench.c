/*
 * apply_bench [N]: what the sandbox costs per command. For each profile it times sbx_prepare
 * (once per configuration in the executor), then N vfork-style spawns whose child applies the
 * prepared sandbox and _exits (the cost of sbx_apply_in_child itself), then N/5 spawns that also
 * execute /bin/true (which adds the filter's per-syscall cost in the new program and the
 * kernel's work of inheriting a filter), each against the same spawn with no sandbox. Run as
 * root for the numbers the executor sees as root. Prints one line per measurement.
 */
#include <errno.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "sandbox/sandbox.h"

#define STACK_SIZE (64 * 1024)

typedef struct {
    const sbx_prepared *p; /* NULL: no sandbox */
    bool exec_true;
} spawn_ctx;

static char *true_argv[] = {"true", NULL};
static char *empty_env[] = {NULL};

static int child(void *arg)
{
    const spawn_ctx *c = arg;
    if (sbx_apply_in_child(c->p, NULL) < 0)
        _exit(125);
    if (c->exec_true)
        execve("/bin/true", true_argv, empty_env);
    _exit(0);
}

static double now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3;
}

/* Mean microseconds per spawn-and-reap of n children. */
static double spawn_loop(void *stack, const sbx_prepared *p, bool exec_true, int n)
{
    spawn_ctx c = {.p = p, .exec_true = exec_true};
    double t0 = now_us();
    for (int i = 0; i < n; i++) {
        pid_t pid = clone(child, (char *)stack + STACK_SIZE, CLONE_VM | CLONE_VFORK | SIGCHLD, &c);
        if (pid < 0) {
            perror("clone");
            exit(1);
        }
        int st;
        while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
            ;
        if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
            fprintf(stderr, "child failed: status %d\n", st);
            exit(1);
        }
    }
    return (now_us() - t0) / n;
}

int main(int argc, char **argv)
{
    int n = argc > 1 ? atoi(argv[1]) : 10000;
    if (n < 5)
        n = 5;
    void *stack = mmap(NULL, STACK_SIZE, PROT_READ | PROT_WRITE,
                       MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0);
    if (stack == MAP_FAILED) {
        perror("mmap");
        return 1;
    }
    printf("uid %d, %d spawns per row (%d with exec)\n", (int)geteuid(), n, n / 5);
    /* Warm up, then the baselines. */
    spawn_loop(stack, NULL, false, n / 10);
    double base = spawn_loop(stack, NULL, false, n);
    double base_exec = spawn_loop(stack, NULL, true, n / 5);
    printf("%-11s prepare %8s   spawn+_exit %7.1f us   spawn+exec(true) %7.1f us\n", "none", "-",
           base, base_exec);

    const sbx_profile profiles[] = {SBX_UNCONFINED, SBX_DEFAULT, SBX_STRICT};
    for (size_t i = 0; i < sizeof profiles / sizeof profiles[0]; i++) {
        sbx_config cfg;
        sbx_config_init(&cfg);
        cfg.profile = profiles[i];
        char err[512];
        sbx_prepared *p = NULL;
        const int reps = 20;
        double t0 = now_us();
        for (int r = 0; r < reps; r++) {
            sbx_prepared_free(p);
            if (sbx_prepare(&cfg, &p, err, sizeof err) < 0) {
                fprintf(stderr, "sbx_prepare: %s\n", err);
                return 1;
            }
        }
        double prep = (now_us() - t0) / reps;
        double t = spawn_loop(stack, p, false, n);
        double te = spawn_loop(stack, p, true, n / 5);
        printf("%-11s prepare %6.0f us   spawn+_exit %7.1f us (+%5.1f)   spawn+exec(true) %7.1f us "
               "(+%5.1f)\n",
               sbx_profile_name(profiles[i]), prep, t, t - base, te, te - base_exec);
        sbx_prepared_free(p);
    }
    return 0;
}

/*
 * apply_bench [N]: what the sandbox costs per command, measured so that a busy machine does not
 * drown it. For each profile: sbx_prepare (done once per configuration in the executor); the
 * time sbx_apply_in_child itself takes, clocked inside N vfork-style children (the vDSO clock is
 * safe there) and reported as median and 90th percentile; the cost of one system call after the
 * filter is on (getppid, which every filter must walk to its end or its allow rule); and, in
 * interleaved rounds so that load drifts hit every profile alike, the median of spawning and
 * reaping /bin/true. Run as root for the numbers the executor sees as root.
 */
#include <errno.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "sandbox/sandbox.h"

#define STACK_SIZE (64 * 1024)
#define NPROFILES 4 /* none, unconfined, default, strict */
#define SYSCALLS_PER_CHILD 20000

typedef struct {
    const sbx_prepared *p; /* NULL: no sandbox */
    enum { JUST_APPLY, TIME_SYSCALLS, EXEC_TRUE } what;
    double apply_us;   /* written by the child */
    double syscall_ns; /* written by the child */
} spawn_ctx;

static char *true_argv[] = {"true", NULL};
static char *empty_env[] = {NULL};

static double now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

static int child(void *arg)
{
    spawn_ctx *c = arg;
    double t0 = now_ns();
    if (sbx_apply_in_child(c->p, NULL) < 0)
        _exit(125);
    c->apply_us = (now_ns() - t0) / 1e3;
    if (c->what == TIME_SYSCALLS) {
        t0 = now_ns();
        for (int i = 0; i < SYSCALLS_PER_CHILD; i++)
            syscall(SYS_getppid);
        c->syscall_ns = (now_ns() - t0) / SYSCALLS_PER_CHILD;
    } else if (c->what == EXEC_TRUE) {
        execve("/bin/true", true_argv, empty_env);
    }
    _exit(0);
}

static void spawn(void *stack, spawn_ctx *c)
{
    pid_t pid = clone(child, (char *)stack + STACK_SIZE, CLONE_VM | CLONE_VFORK | SIGCHLD, c);
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

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double quantile(double *v, int n, double q)
{
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    return v[(int)(q * (n - 1))];
}

int main(int argc, char **argv)
{
    int n = argc > 1 ? atoi(argv[1]) : 10000;
    if (n < 20)
        n = 20;
    void *stack = mmap(NULL, STACK_SIZE, PROT_READ | PROT_WRITE,
                       MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0);
    double *v = malloc(sizeof(double) * (size_t)n);
    if (stack == MAP_FAILED || !v) {
        perror("setup");
        return 1;
    }
    const char *names[NPROFILES] = {"none", "unconfined", "default", "strict"};
    sbx_prepared *prepared[NPROFILES] = {NULL};
    printf("uid %d; medians (p90) over %d children; prepare over 20 runs\n", (int)geteuid(), n);
    printf("%-11s %10s %18s %14s %22s\n", "profile", "prepare", "apply in child", "getppid",
           "spawn+exec /bin/true");

    double prep[NPROFILES] = {0};
    for (int i = 1; i < NPROFILES; i++) {
        sbx_config cfg;
        sbx_config_init(&cfg);
        cfg.profile = i == 1 ? SBX_UNCONFINED : i == 2 ? SBX_DEFAULT : SBX_STRICT;
        char err[512];
        double t[20];
        for (int r = 0; r < 20; r++) {
            sbx_prepared_free(prepared[i]);
            double t0 = now_ns();
            if (sbx_prepare(&cfg, &prepared[i], err, sizeof err) < 0) {
                fprintf(stderr, "sbx_prepare: %s\n", err);
                return 1;
            }
            t[r] = (now_ns() - t0) / 1e3;
        }
        prep[i] = quantile(t, 20, 0.5);
    }

    double apply_med[NPROFILES], apply_p90[NPROFILES], sc[NPROFILES];
    for (int i = 0; i < NPROFILES; i++) {
        for (int k = 0; k < n; k++) {
            spawn_ctx c = {.p = prepared[i], .what = JUST_APPLY};
            spawn(stack, &c);
            v[k] = c.apply_us;
        }
        apply_med[i] = quantile(v, n, 0.5);
        apply_p90[i] = quantile(v, n, 0.9);
        int m = 50;
        for (int k = 0; k < m; k++) {
            spawn_ctx c = {.p = prepared[i], .what = TIME_SYSCALLS};
            spawn(stack, &c);
            v[k] = c.syscall_ns;
        }
        sc[i] = quantile(v, m, 0.5);
    }

    /* Interleaved: round r spawns each profile in turn, so slow spells hit all of them. */
    int rounds = n / 10;
    double *ex[NPROFILES];
    for (int i = 0; i < NPROFILES; i++)
        ex[i] = malloc(sizeof(double) * (size_t)rounds);
    for (int r = 0; r < rounds; r++) {
        for (int i = 0; i < NPROFILES; i++) {
            spawn_ctx c = {.p = prepared[i], .what = EXEC_TRUE};
            double t0 = now_ns();
            spawn(stack, &c);
            ex[i][r] = (now_ns() - t0) / 1e3;
        }
    }
    for (int i = 0; i < NPROFILES; i++) {
        char pbuf[16] = "-";
        if (i)
            snprintf(pbuf, sizeof pbuf, "%.0f us", prep[i]);
        double e = quantile(ex[i], rounds, 0.5);
        double e0 = quantile(ex[0], rounds, 0.5);
        printf("%-11s %10s %8.1f (%5.1f) us %11.0f ns %11.0f us (%+5.0f)\n", names[i], pbuf,
               apply_med[i], apply_p90[i], sc[i], e, e - e0);
        sbx_prepared_free(prepared[i]);
    }
    for (int i = 0; i < NPROFILES; i++)
        free(ex[i]);
    free(v);
    return 0;
}

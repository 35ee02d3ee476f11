/*
 * spawn_floor: the raw cost the executor cannot go below. N threads each posix_spawn
 * `/bin/sh -c LINE` and waitpid it in a loop, with nothing else around it (no pipes, no session,
 * no gRPC). Prints one key=value line: spawns per second of all threads together and the
 * percentiles of one spawn+wait. posix_spawn in glibc is clone(CLONE_VM|CLONE_VFORK) + execve, the
 * same way the executor starts its commands.
 *
 * With --pipe-bytes N it measures the streaming floor instead: one `/bin/sh -c "head -c N
 * /dev/zero"` with stdout on a pipe, read in 64 KiB reads until EOF, and prints MB/s.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bench/bench.h"
#include "rpc/rpc.h"

extern char **environ;

static const char synopsis[] =
    "usage: spawn_floor [flags]\n"
    "\n"
    "--threads threads each posix_spawn `/bin/sh -c LINE` and waitpid it in a loop, --spawns\n"
    "times in all; prints one key=value line with spawns per second and the percentiles of one\n"
    "spawn+wait. With --pipe-bytes N it measures the streaming floor instead: it reads\n"
    "`head -c N /dev/zero` from a pipe and prints MB/s.";

/* The streaming floor: the same command the stream benchmark runs, read straight from its pipe
 * with the executor's default chunk size. Returns 0, or 1 with a message. */
static int pipe_floor(uint64_t bytes)
{
    char shell[64];
    snprintf(shell, sizeof shell, "head -c %llu /dev/zero", (unsigned long long)bytes);
    char *argv[] = {"sh", "-c", shell, NULL};
    int p[2];
    if (pipe2(p, O_CLOEXEC) < 0) {
        perror("spawn_floor: pipe2");
        return 1;
    }
    fcntl(p[0], F_SETPIPE_SZ, 256 * 1024); /* as the executor does */
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, p[1], 1);
    static char buf[64 * 1024];
    uint64_t t0 = rpc_now_us(), got = 0, reads = 0;
    pid_t pid;
    int rc = posix_spawn(&pid, "/bin/sh", &fa, NULL, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    close(p[1]);
    if (rc != 0) {
        fprintf(stderr, "spawn_floor: posix_spawn: %s\n", strerror(rc));
        close(p[0]);
        return 1;
    }
    for (;;) {
        ssize_t n = read(p[0], buf, sizeof buf);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        got += (uint64_t)n;
        reads++;
    }
    close(p[0]);
    int status = 0;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
        ;
    double wall_s = (double)(rpc_now_us() - t0) / 1e6;
    printf("pipe_floor bytes=%llu received=%llu reads=%llu wall_s=%.3f mb_per_s=%.1f\n",
           (unsigned long long)bytes, (unsigned long long)got, (unsigned long long)reads, wall_s,
           wall_s > 0 ? (double)got / wall_s / 1e6 : 0.0);
    if (got != bytes || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        fprintf(stderr, "spawn_floor: expected %llu bytes and exit 0, got %llu bytes\n",
                (unsigned long long)bytes, (unsigned long long)got);
        return 1;
    }
    return 0;
}

typedef struct {
    pthread_barrier_t *start;
    const char *shell;
    uint64_t warmup, count;
    bench_samples lat;
    uint64_t failed;
    int last_err;
    uint64_t t_end;
} spawner;

/* One spawn+wait; returns its duration in microseconds, or 0 on failure with *err set. */
static uint64_t spawn_wait(const char *shell, int *err)
{
    char *argv[] = {"sh", "-c", (char *)shell, NULL};
    uint64_t t0 = rpc_now_us();
    pid_t pid;
    int rc = posix_spawn(&pid, "/bin/sh", NULL, NULL, argv, environ);
    if (rc != 0) {
        *err = rc;
        return 0;
    }
    int status;
    pid_t r;
    do
        r = waitpid(pid, &status, 0);
    while (r < 0 && errno == EINTR);
    uint64_t dt = rpc_now_us() - t0;
    if (r != pid || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        *err = r != pid ? errno : ECHILD;
        return 0;
    }
    return dt ? dt : 1;
}

static void *spawner_main(void *arg)
{
    spawner *s = arg;
    int err = 0;
    for (uint64_t i = 0; i < s->warmup; i++)
        if (!spawn_wait(s->shell, &err))
            s->failed++;
    pthread_barrier_wait(s->start);
    for (uint64_t i = 0; i < s->count; i++) {
        uint64_t dt = spawn_wait(s->shell, &err);
        if (dt) {
            bench_samples_add(&s->lat, dt);
        } else {
            s->failed++;
            s->last_err = err;
        }
    }
    s->t_end = rpc_now_us();
    return NULL;
}

int main(int argc, char **argv)
{
    uint64_t threads = 1, spawns = 2000, warmup = 20, pipe_bytes = 0;
    const char *shell = "true";
    const rpc_flag flags[] = {
        {"threads", RPC_FLAG_UINT, &threads, "spawners running in parallel"},
        {"spawns", RPC_FLAG_UINT, &spawns, "timed spawns in total, split over the threads"},
        {"warmup", RPC_FLAG_UINT, &warmup, "untimed spawns per thread before the timed ones"},
        {"shell", RPC_FLAG_STRING, &shell, "the command line, run as /bin/sh -c LINE"},
        {"pipe-bytes", RPC_FLAG_UINT, &pipe_bytes,
         "bytes to read from a pipe instead of spawning; 0 = spawn"},
    };
    const bench_cmdline cmd = {"spawn_floor", synopsis, flags, sizeof flags / sizeof flags[0]};
    int usage_rc = bench_flags_parse(&cmd, argc, argv);
    if (usage_rc >= 0)
        return usage_rc;
    if (!bench_flag_in_range(&cmd, "threads", threads, 1, 256) ||
        !bench_flag_in_range(&cmd, "spawns", spawns, threads, 100000000) ||
        !bench_flag_in_range(&cmd, "warmup", warmup, 0, 1000000))
        return 2;

    if (pipe_bytes)
        return pipe_floor(pipe_bytes);

    spawner *sp = calloc(threads, sizeof *sp);
    pthread_t *tids = calloc(threads, sizeof *tids);
    if (!sp || !tids) {
        fprintf(stderr, "spawn_floor: out of memory\n");
        return 1;
    }
    /* The main thread joins the barrier too, so the clock starts when every spawner is ready. */
    pthread_barrier_t start;
    pthread_barrier_init(&start, NULL, (unsigned)threads + 1);
    for (uint64_t t = 0; t < threads; t++) {
        sp[t].start = &start;
        sp[t].shell = shell;
        sp[t].warmup = warmup;
        sp[t].count = spawns / threads + (t < spawns % threads);
        if (bench_samples_init(&sp[t].lat, sp[t].count) < 0) {
            fprintf(stderr, "spawn_floor: out of memory\n");
            return 1;
        }
        int rc = pthread_create(&tids[t], NULL, spawner_main, &sp[t]);
        if (rc != 0) {
            fprintf(stderr, "spawn_floor: pthread_create: %s\n", strerror(rc));
            return 1;
        }
    }
    pthread_barrier_wait(&start);
    uint64_t t0 = rpc_now_us(), t_end = t0;
    bench_samples all;
    if (bench_samples_init(&all, spawns) < 0) {
        fprintf(stderr, "spawn_floor: out of memory\n");
        return 1;
    }
    uint64_t failed = 0;
    int last_err = 0;
    for (uint64_t t = 0; t < threads; t++) {
        pthread_join(tids[t], NULL);
        if (sp[t].t_end > t_end)
            t_end = sp[t].t_end;
        for (size_t k = 0; k < sp[t].lat.n; k++)
            bench_samples_add(&all, sp[t].lat.v[k]);
        failed += sp[t].failed;
        if (sp[t].last_err)
            last_err = sp[t].last_err;
        bench_samples_free(&sp[t].lat);
    }
    double wall_s = (double)(t_end - t0) / 1e6;
    printf("spawn_floor threads=%llu spawns=%llu wall_s=%.3f spawns_per_s=%.1f p50_us=%llu "
           "p90_us=%llu p99_us=%llu max_us=%llu failed=%llu\n",
           (unsigned long long)threads, (unsigned long long)all.n, wall_s,
           wall_s > 0 ? (double)all.n / wall_s : 0.0,
           (unsigned long long)bench_percentile(&all, 0.50),
           (unsigned long long)bench_percentile(&all, 0.90),
           (unsigned long long)bench_percentile(&all, 0.99),
           (unsigned long long)bench_percentile(&all, 1.0), (unsigned long long)failed);
    bench_samples_free(&all);
    pthread_barrier_destroy(&start);
    free(sp);
    free(tids);
    if (failed) {
        fprintf(stderr, "spawn_floor: %llu spawns failed (last: %s)\n", (unsigned long long)failed,
                strerror(last_err));
        return 1;
    }
    return 0;
}

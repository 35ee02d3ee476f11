/*
 * spawn_ladder: where between posix_spawn and a Run call the time of one command goes. Runs
 * `/bin/sh -c true` one at a time in rounds, each round trying every rung once in turn (so a noisy
 * moment hits all rungs alike), and prints the median spawn+wait of each rung:
 *   posix     posix_spawn + waitpid (the floor)
 *   clone     the executor's exe_spawn (clone(CLONE_VM|CLONE_VFORK), signal resets) + waitpid
 *   session   + own session, stdout/stderr on 256 KiB pipes, stdin /dev/null, read to EOF
 *   sandbox   + the executor's default sandbox (filter inherited from the spawning thread,
 *             rlimits and capability drops in the child)
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bench/bench.h"
#include "executor/spawn.h"
#include "rpc/rpc.h"
#include "sandbox/sandbox.h"

extern char **environ;

enum { R_POSIX, R_CLONE, R_SESSION, R_SANDBOX, R_COUNT };
static const char *const rung_name[R_COUNT] = {"posix", "clone", "session", "sandbox"};

typedef struct {
    int rung;
    uint64_t n;
    bench_samples *lat;
    sbx_prepared *sbx;
    sigset_t *reset;
    int devnull;
    int failed;
} job;

static int pipe_pair(int p[2])
{
    if (pipe2(p, O_CLOEXEC) < 0)
        return -1;
    fcntl(p[0], F_SETFL, O_NONBLOCK);
    fcntl(p[0], F_SETPIPE_SZ, 256 * 1024);
    return 0;
}

static uint64_t one(job *j)
{
    char *argv[] = {"sh", "-c", "true", NULL};
    uint64_t t0 = rpc_now_us();
    pid_t pid;
    if (j->rung == R_POSIX) {
        if (posix_spawn(&pid, "/bin/sh", NULL, NULL, argv, environ) != 0)
            return 0;
    } else {
        int out[2] = {-1, -1}, err[2] = {-1, -1};
        bool piped = j->rung >= R_SESSION;
        if (piped && (pipe_pair(out) < 0 || pipe_pair(err) < 0))
            return 0;
        exe_spawn_spec spec = {.path = "/bin/sh",
                               .argv = argv,
                               .envp = environ,
                               .stdio = {piped ? j->devnull : -1, out[1], err[1]},
                               .new_session = piped,
                               .sig_reset = j->reset,
                               .sandbox = j->rung == R_SANDBOX ? j->sbx : NULL};
        exe_spawn_result res;
        int rc = exe_spawn(&spec, &res);
        if (piped) {
            close(out[1]);
            close(err[1]);
        }
        if (rc < 0)
            return 0;
        pid = res.pid;
        if (piped) {
            struct pollfd pf[2] = {{out[0], POLLIN, 0}, {err[0], POLLIN, 0}};
            int open_fds = 2;
            char buf[256];
            while (open_fds) {
                poll(pf, 2, -1);
                for (int i = 0; i < 2; i++)
                    if (pf[i].fd >= 0 && pf[i].revents && read(pf[i].fd, buf, sizeof buf) <= 0) {
                        close(pf[i].fd);
                        pf[i].fd = -1;
                        open_fds--;
                    }
            }
        }
    }
    int status;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
        ;
    uint64_t dt = rpc_now_us() - t0;
    return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? (dt ? dt : 1) : 0;
}

static void *run_job(void *arg)
{
    job *j = arg;
    if (j->rung == R_SANDBOX) {
        char e[256];
        if (sbx_apply_in_spawner(j->sbx, e, sizeof e) < 0)
            fprintf(stderr, "spawn_ladder: %s\n", e);
    }
    for (uint64_t i = 0; i < j->n; i++) {
        uint64_t dt = one(j);
        if (dt)
            bench_samples_add(j->lat, dt);
        else
            j->failed++;
    }
    return NULL;
}

int main(int argc, char **argv)
{
    uint64_t rounds = 10, per_round = 100;
    const rpc_flag flags[] = {
        {"rounds", RPC_FLAG_UINT, &rounds, "rounds; each runs every rung once"},
        {"spawns", RPC_FLAG_UINT, &per_round, "spawns per rung and round"},
    };
    const bench_cmdline cmd = {"spawn_ladder",
                               "usage: spawn_ladder [--rounds N] [--spawns N]\n\nMedian "
                               "spawn+wait of /bin/sh -c true from posix_spawn up to the "
                               "executor's full spawn path.",
                               flags, sizeof flags / sizeof flags[0]};
    int usage_rc = bench_flags_parse(&cmd, argc, argv);
    if (usage_rc >= 0)
        return usage_rc;

    sbx_config cfg;
    sbx_config_init(&cfg);
    sbx_prepared *sbx = NULL;
    char e[256];
    if (sbx_prepare(&cfg, &sbx, e, sizeof e) < 0) {
        fprintf(stderr, "spawn_ladder: sandbox: %s\n", e);
        return 1;
    }
    sigset_t reset;
    exe_spawn_handled_signals(&reset);
    int devnull = open("/dev/null", O_RDONLY | O_CLOEXEC);
    bench_samples lat[R_COUNT], round_p50[R_COUNT];
    for (int r = 0; r < R_COUNT; r++) {
        bench_samples_init(&lat[r], rounds * per_round);
        bench_samples_init(&round_p50[r], rounds);
    }
    int failed = 0;
    for (uint64_t k = 0; k < rounds; k++) {
        for (int r = 0; r < R_COUNT; r++) {
            bench_samples one_round;
            bench_samples_init(&one_round, per_round);
            job j = {r, per_round, &one_round, sbx, &reset, devnull, 0};
            pthread_t t;
            pthread_create(&t, NULL, run_job, &j);
            pthread_join(t, NULL);
            failed += j.failed;
            for (size_t i = 0; i < one_round.n; i++)
                bench_samples_add(&lat[r], one_round.v[i]);
            bench_samples_add(&round_p50[r], bench_percentile(&one_round, 0.5));
            bench_samples_free(&one_round);
        }
    }
    uint64_t base = bench_percentile(&lat[R_POSIX], 0.5);
    for (int r = 0; r < R_COUNT; r++) {
        uint64_t p50 = bench_percentile(&lat[r], 0.5);
        printf("spawn_ladder rung=%s p50_us=%llu delta_us=%lld round_p50_min=%llu "
               "round_p50_max=%llu\n",
               rung_name[r], (unsigned long long)p50, (long long)p50 - (long long)base,
               (unsigned long long)bench_percentile(&round_p50[r], 0.0),
               (unsigned long long)bench_percentile(&round_p50[r], 1.0));
    }
    return failed ? 1 : 0;
}

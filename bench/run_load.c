/*
 * run_load: drives pm.executor.v1.Executor/Run with a fixed number of calls in flight on one
 * channel and one completion queue, each call running one shell line (default "true"), and prints
 * one key=value line: calls per second over the stretch of full concurrency, and the latency
 * percentiles of the calls after the warm-up. Exits 1 when a call failed or an event is missing,
 * so a smoke test notices a broken executor; timing never decides the exit code.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <grpc/grpc.h>

#include "bench/bench.h"

static const char synopsis[] =
    "usage: run_load --target ADDR [flags]\n"
    "\n"
    "Calls pm.executor.v1.Executor/Run, each call running one shell line, with --inflight calls\n"
    "outstanding on one connection, and prints one key=value line: calls per second and latency\n"
    "percentiles of the calls after the warm-up. With --calls 0 it makes only the --health\n"
    "Health/Check calls and prints their round-trip p50/p99. Exits 1 when a call failed.";

int main(int argc, char **argv)
{
    bench_executor_flags ex = BENCH_EXECUTOR_FLAGS_DEFAULT;
    const char *shell = "true";
    /* UINT64_MAX: --warmup not given, so calls/10 (see rpc_flags_usage). */
    uint64_t inflight = 1, calls = 1000, warmup = UINT64_MAX, health = 0, health_gap_us = 0,
             deadline_ms = 120000;
    const rpc_flag flags[] = {
        BENCH_EXECUTOR_FLAG_ROWS(&ex),
        {"inflight", RPC_FLAG_UINT, &inflight, "calls kept outstanding"},
        {"calls", RPC_FLAG_UINT, &calls, "calls in total, warm-up included; 0 = health only"},
        {"warmup", RPC_FLAG_UINT, &warmup,
         "first calls left out of the figures (default calls/10)"},
        {"shell", RPC_FLAG_STRING, &shell, "the command line each call runs"},
        {"health", RPC_FLAG_UINT, &health, "Health/Check calls once the executor is serving"},
        {"health-gap-us", RPC_FLAG_UINT, &health_gap_us,
         "pause before each Health/Check call: a round trip between a client and an executor "
         "that were idle, as around a Run of a command"},
        {"deadline-ms", RPC_FLAG_UINT, &deadline_ms, "per-call deadline"},
    };
    const bench_cmdline cmd = {"run_load", synopsis, flags, sizeof flags / sizeof flags[0]};
    int usage_rc = bench_flags_parse(&cmd, argc, argv);
    if (usage_rc >= 0)
        return usage_rc;
    if (!bench_executor_flags_ok(&cmd, &ex) ||
        !bench_flag_in_range(&cmd, "inflight", inflight, 1, 100000) ||
        !bench_flag_in_range(&cmd, "health", health, 0, 1000000) ||
        !bench_flag_in_range(&cmd, "health-gap-us", health_gap_us, 0, 10000000) ||
        !bench_flag_in_range(&cmd, "deadline-ms", deadline_ms, 0, 3600000))
        return 2;
    if (warmup == UINT64_MAX)
        warmup = calls / 10;
    if (warmup > calls)
        warmup = calls;

    size_t req_len = 0;
    uint8_t *req = bench_pack_shell_request(shell, &req_len);
    if (!req) {
        fprintf(stderr, "run_load: out of memory\n");
        return 1;
    }
    grpc_init();
    bench_client_config cfg = {
        .target = ex.target,
        .request = req,
        .request_len = req_len,
        .inflight = (unsigned)inflight,
        .calls = calls,
        .warmup = warmup,
        .deadline_ms = (unsigned)deadline_ms,
    };
    char err[512];
    int code = 1, rc;
    bench_client_result res;
    memset(&res, 0, sizeof res);
    bench_client *cl = bench_client_create(&cfg, err, sizeof err);
    if (!cl) {
        fprintf(stderr, "run_load: %s\n", err);
        goto out;
    }
    bench_samples hlat;
    if (bench_samples_init(&hlat, health) < 0) {
        fprintf(stderr, "run_load: out of memory\n");
        goto out;
    }
    rc = bench_client_health(cl, (unsigned)ex.wait_ms, (unsigned)health, (unsigned)health_gap_us,
                             &hlat, err, sizeof err);
    if (rc == 0 && calls == 0) {
        /* Health only: the bare unary round trip, the gRPC floor under a Run call. */
        printf("run_load health_ok=1 health_calls=%zu health_p50_us=%llu health_p99_us=%llu\n",
               hlat.n, (unsigned long long)bench_percentile(&hlat, 0.50),
               (unsigned long long)bench_percentile(&hlat, 0.99));
        code = 0;
    }
    bench_samples_free(&hlat);
    if (rc < 0)
        fprintf(stderr, "run_load: %s\n", err);
    if (rc < 0 || calls == 0)
        goto out;
    double cpu0 = bench_self_cpu_s();
    if (bench_client_run(cl, &res, err, sizeof err) < 0) {
        fprintf(stderr, "run_load: %s\n", err);
        goto out;
    }
    double cpu_s = bench_self_cpu_s() - cpu0;
    const bench_run_totals *t = &res.totals;
    double wall_s = (double)res.wall_us / 1e6;
    printf("run_load inflight=%llu calls=%llu timed_calls=%llu wall_s=%.3f calls_per_s=%.1f "
           "p50_us=%llu p90_us=%llu p99_us=%llu max_us=%llu ok=%llu failed=%llu events=%llu "
           "started=%llu exited=%llu stdout_bytes=%llu cpu_s=%.3f\n",
           (unsigned long long)inflight, (unsigned long long)calls,
           (unsigned long long)res.timed_calls, wall_s,
           wall_s > 0 ? (double)res.timed_calls / wall_s : 0.0,
           (unsigned long long)bench_percentile(&res.latency, 0.50),
           (unsigned long long)bench_percentile(&res.latency, 0.90),
           (unsigned long long)bench_percentile(&res.latency, 0.99),
           (unsigned long long)bench_percentile(&res.latency, 1.0), (unsigned long long)t->calls_ok,
           (unsigned long long)t->calls_failed, (unsigned long long)t->events,
           (unsigned long long)t->started, (unsigned long long)t->exited,
           (unsigned long long)t->stdout_bytes, cpu_s);
    if (t->calls_failed || t->bad_messages || t->started != calls || t->exited != calls) {
        fprintf(stderr,
                "run_load: %llu of %llu calls failed, %llu bad messages, %llu started and %llu "
                "exited events; last error: %s\n",
                (unsigned long long)t->calls_failed, (unsigned long long)calls,
                (unsigned long long)t->bad_messages, (unsigned long long)t->started,
                (unsigned long long)t->exited, t->last_error[0] ? t->last_error : "none");
        goto out;
    }
    code = 0;
out:
    bench_samples_free(&res.latency);
    bench_client_destroy(cl);
    grpc_shutdown();
    free(req);
    return code;
}

/*
 * run_load: drives pm.executor.v1.Executor/Run with a fixed number of calls in flight on one
 * channel and one completion queue, each call running one shell line (default "true"), and prints
 * one key=value line: calls per second over the stretch of full concurrency, and the latency
 * percentiles of the calls after the warm-up. Exits 1 when a call failed or an event is missing,
 * so a smoke test notices a broken executor; timing never decides the exit code.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <grpc/grpc.h>

#include "bench/bench.h"

static const char usage[] =
    "usage: run_load --target ADDR [--inflight N] [--calls N] [--warmup N] [--shell LINE]\n"
    "                [--health N] [--wait-ready-ms MS] [--deadline-ms MS]\n"
    "  --target         executor address, host:port or unix:/path\n"
    "  --inflight       calls kept outstanding (default 1)\n"
    "  --calls          calls in total, warm-up included (default 1000; 0 = health only)\n"
    "  --warmup         first calls left out of the figures (default calls/10)\n"
    "  --shell          the command line each call runs (default \"true\")\n"
    "  --health         Health/Check calls once the executor is serving (default 0); with\n"
    "                   --calls 0 their round-trip p50/p99 is printed\n"
    "  --wait-ready-ms  how long to wait for the executor to serve (default 10000)\n"
    "  --deadline-ms    per-call deadline (default 120000)\n";

int main(int argc, char **argv)
{
    const char *target = NULL, *shell = "true";
    uint64_t inflight = 1, calls = 1000, warmup = UINT64_MAX, health = 0, wait_ms = 10000,
             deadline_ms = 120000;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            fputs(usage, stdout);
            return 0;
        }
        if (i + 1 >= argc)
            return bench_usage_error("run_load", usage, "%s needs a value", a);
        const char *v = argv[++i];
        uint64_t *num = NULL;
        if (!strcmp(a, "--target"))
            target = v;
        else if (!strcmp(a, "--shell"))
            shell = v;
        else if (!strcmp(a, "--inflight"))
            num = &inflight;
        else if (!strcmp(a, "--calls"))
            num = &calls;
        else if (!strcmp(a, "--warmup"))
            num = &warmup;
        else if (!strcmp(a, "--health"))
            num = &health;
        else if (!strcmp(a, "--wait-ready-ms"))
            num = &wait_ms;
        else if (!strcmp(a, "--deadline-ms"))
            num = &deadline_ms;
        else
            return bench_usage_error("run_load", usage, "unknown flag %s", a);
        if (num && bench_parse_u64(v, num) < 0)
            return bench_usage_error("run_load", usage, "%s: not a number: \"%s\"", a, v);
    }
    if (!target)
        return bench_usage_error("run_load", usage, "--target is required");
    if (inflight < 1 || inflight > 100000)
        return bench_usage_error("run_load", usage, "--inflight must be between 1 and 100000");
    if (wait_ms > 3600000 || deadline_ms > 3600000 || health > 1000000)
        return bench_usage_error("run_load", usage, "a value is out of range");
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
        .target = target,
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
    rc = bench_client_health(cl, (unsigned)wait_ms, (unsigned)health, &hlat, err, sizeof err);
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

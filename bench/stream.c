/*
 * stream: one Run call of `head -c BYTES /dev/zero`, counting the stdout bytes that reach the
 * client, and prints one key=value line with the throughput and the executor's memory: VmRSS
 * sampled from /proc/PID/status every few milliseconds during the call, and VmHWM at the end
 * (the process's lifetime peak, so start a fresh executor to measure one stream alone). Exits 1
 * when fewer or more bytes than asked for arrived, or the call failed.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <grpc/grpc.h>

#include "bench/bench.h"

static const char usage[] =
    "usage: stream --target ADDR [--bytes N] [--pid PID] [--sample-ms MS] [--wait-ready-ms MS]\n"
    "  --target         executor address, host:port or unix:/path\n"
    "  --bytes          bytes to stream, k/M/G suffixes allowed (default 1G)\n"
    "  --pid            the executor's pid, for its memory figures (default: not sampled)\n"
    "  --sample-ms      sampling period (default 10)\n"
    "  --wait-ready-ms  how long to wait for the executor to serve (default 10000)\n";

typedef struct {
    pid_t pid;
    long rss_peak_kb, hwm_peak_kb;
    unsigned samples;
} sampler;

static void sample(void *arg, uint64_t now_us)
{
    (void)now_us;
    sampler *s = arg;
    long rss = bench_proc_status_kb(s->pid, "VmRSS"), hwm = bench_proc_status_kb(s->pid, "VmHWM");
    if (rss > s->rss_peak_kb)
        s->rss_peak_kb = rss;
    if (hwm > s->hwm_peak_kb)
        s->hwm_peak_kb = hwm;
    s->samples++;
}

int main(int argc, char **argv)
{
    const char *target = NULL;
    uint64_t bytes = 1ull << 30, pid = 0, sample_ms = 10, wait_ms = 10000;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            fputs(usage, stdout);
            return 0;
        }
        if (i + 1 >= argc)
            return bench_usage_error("stream", usage, "%s needs a value", a);
        const char *v = argv[++i];
        uint64_t *num = NULL;
        if (!strcmp(a, "--target"))
            target = v;
        else if (!strcmp(a, "--bytes"))
            num = &bytes;
        else if (!strcmp(a, "--pid"))
            num = &pid;
        else if (!strcmp(a, "--sample-ms"))
            num = &sample_ms;
        else if (!strcmp(a, "--wait-ready-ms"))
            num = &wait_ms;
        else
            return bench_usage_error("stream", usage, "unknown flag %s", a);
        if (num && bench_parse_u64(v, num) < 0)
            return bench_usage_error("stream", usage, "%s: not a number: \"%s\"", a, v);
    }
    if (!target)
        return bench_usage_error("stream", usage, "--target is required");
    if (sample_ms < 1 || sample_ms > 10000 || wait_ms > 3600000 || pid > 0x7fffffff)
        return bench_usage_error("stream", usage, "a value is out of range");

    char shell[64];
    snprintf(shell, sizeof shell, "head -c %llu /dev/zero", (unsigned long long)bytes);
    size_t req_len = 0;
    uint8_t *req = bench_pack_shell_request(shell, &req_len);
    if (!req) {
        fprintf(stderr, "stream: out of memory\n");
        return 1;
    }
    sampler smp = {.pid = (pid_t)pid, .rss_peak_kb = -1, .hwm_peak_kb = -1};
    grpc_init();
    bench_client_config cfg = {
        .target = target,
        .request = req,
        .request_len = req_len,
        .inflight = 1,
        .calls = 1,
        .warmup = 0,
        .deadline_ms = 600000,
        .tick = pid ? sample : NULL,
        .tick_arg = &smp,
        .tick_ms = (unsigned)sample_ms,
    };
    char err[512];
    int code = 1;
    bench_client_result res;
    memset(&res, 0, sizeof res);
    bench_client *cl = bench_client_create(&cfg, err, sizeof err);
    if (!cl) {
        fprintf(stderr, "stream: %s\n", err);
        goto out;
    }
    if (bench_client_health(cl, (unsigned)wait_ms, 0, NULL, err, sizeof err) < 0) {
        fprintf(stderr, "stream: %s\n", err);
        goto out;
    }
    if (pid)
        sample(&smp, 0);
    double cpu0 = bench_self_cpu_s();
    if (bench_client_run(cl, &res, err, sizeof err) < 0) {
        fprintf(stderr, "stream: %s\n", err);
        goto out;
    }
    double cpu_s = bench_self_cpu_s() - cpu0;
    long hwm_final = pid ? bench_proc_status_kb((pid_t)pid, "VmHWM") : -1;
    if (pid)
        sample(&smp, 0);
    const bench_run_totals *t = &res.totals;
    double wall_s = (double)res.wall_us / 1e6;
    printf("stream bytes=%llu received=%llu wall_s=%.3f mb_per_s=%.1f mib_per_s=%.1f events=%llu "
           "rss_peak_kb=%ld hwm_peak_kb=%ld hwm_final_kb=%ld samples=%u cpu_s=%.3f\n",
           (unsigned long long)bytes, (unsigned long long)t->stdout_bytes, wall_s,
           wall_s > 0 ? (double)t->stdout_bytes / wall_s / 1e6 : 0.0,
           wall_s > 0 ? (double)t->stdout_bytes / wall_s / 1048576.0 : 0.0,
           (unsigned long long)t->events, smp.rss_peak_kb, smp.hwm_peak_kb, hwm_final, smp.samples,
           cpu_s);
    if (t->calls_failed || t->stdout_bytes != bytes || t->exited != 1) {
        fprintf(stderr, "stream: expected %llu bytes and one exit, got %llu bytes; %s\n",
                (unsigned long long)bytes, (unsigned long long)t->stdout_bytes,
                t->last_error[0] ? t->last_error : "no error reported");
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

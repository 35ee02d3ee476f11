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

static const char synopsis[] =
    "usage: stream --target ADDR [flags]\n"
    "\n"
    "One Run call of `head -c BYTES /dev/zero`; prints one key=value line with the MB/s that\n"
    "reached the client and, given --pid, the executor's VmRSS sampled every --sample-ms during\n"
    "the call and its VmHWM at the end. Exits 1 when the byte count is wrong or the call failed.";

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
    bench_executor_flags ex = BENCH_EXECUTOR_FLAGS_DEFAULT;
    uint64_t bytes = 1ull << 30, pid = 0, sample_ms = 10;
    const rpc_flag flags[] = {
        BENCH_EXECUTOR_FLAG_ROWS(&ex),
        {"bytes", RPC_FLAG_UINT, &bytes, "bytes to stream"},
        {"pid", RPC_FLAG_UINT, &pid, "the executor's pid, for its memory figures; 0 = not sampled"},
        {"sample-ms", RPC_FLAG_UINT, &sample_ms, "memory sampling period"},
    };
    const bench_cmdline cmd = {"stream", synopsis, flags, sizeof flags / sizeof flags[0]};
    int usage_rc = bench_flags_parse(&cmd, argc, argv);
    if (usage_rc >= 0)
        return usage_rc;
    if (!bench_executor_flags_ok(&cmd, &ex) ||
        !bench_flag_in_range(&cmd, "sample-ms", sample_ms, 1, 10000) ||
        !bench_flag_in_range(&cmd, "pid", pid, 0, INT32_MAX))
        return 2;

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
        .target = ex.target,
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
    if (bench_client_health(cl, (unsigned)ex.wait_ms, 0, 0, NULL, err, sizeof err) < 0) {
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

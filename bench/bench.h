/*
 * bench: shared pieces of the benchmark programs. Latency samples and their percentiles, reading
 * /proc/PID/status, the programs' command lines on rpc flags, and the asynchronous Run client that
 * run_load and stream drive from one completion queue. Everything here is for measuring pm-executor
 * from outside, the way a client sees it; nothing links into the executor.
 */
#ifndef PM_BENCH_H
#define PM_BENCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <grpc/grpc.h>

#include "rpc/rpc.h"

/* ---- samples ---------------------------------------------------------------------------- */

/* A growable array of latencies in microseconds, capped at cap samples (later ones dropped). */
typedef struct {
    uint64_t *v;
    size_t n, cap;
    size_t dropped;
} bench_samples;

/* Allocates room for cap samples; returns 0 or -ENOMEM. */
int bench_samples_init(bench_samples *s, size_t cap);
void bench_samples_add(bench_samples *s, uint64_t us);
void bench_samples_free(bench_samples *s);

/* Sorts the samples (once) and returns the nearest-rank percentile p in [0,1]; 0 when empty. */
uint64_t bench_percentile(bench_samples *s, double p);

/* ---- /proc ------------------------------------------------------------------------------ */

/* Reads one "Key:   N kB" line of /proc/PID/status (key without the colon, e.g. "VmHWM");
 * returns the value in KiB or -1 when the process or the line is missing. */
long bench_proc_status_kb(pid_t pid, const char *key);

/* CPU time (user + system) this process has used so far, in seconds. */
double bench_self_cpu_s(void);

/* ---- flags ------------------------------------------------------------------------------ */

/* A benchmark program's command line: rpc flags (so each is also a PM_ variable, and numbers take
 * K/M/G suffixes) and no positional arguments. */
typedef struct {
    const char *prog;     /* the name that starts every message */
    const char *synopsis; /* what --help prints above the flags */
    const rpc_flag *flags;
    size_t nflags;
} bench_cmdline;

/*
 * Parses argv with rpc_flags_parse. Returns -1 when the program should go on, otherwise the exit
 * code to leave with at once: 0 after --help (usage on stdout), 2 after a usage error (message on
 * stderr).
 */
int bench_flags_parse(const bench_cmdline *cl, int argc, char **argv);

/* True when lo <= v <= hi; otherwise says which flag is out of its range, as a usage error. */
bool bench_flag_in_range(const bench_cmdline *cl, const char *flag, uint64_t v, uint64_t lo,
                         uint64_t hi);

/*
 * The two flags of every program that calls an executor, declared once so that their meaning,
 * default and range stay the same in each: where it listens, and how long to wait for it to serve.
 */
typedef struct {
    const char *target; /* required */
    uint64_t wait_ms;
} bench_executor_flags;

/* The defaults, and the rows of an rpc_flag table for ef. */
/* clang-format off */
#define BENCH_EXECUTOR_FLAGS_DEFAULT {.target = NULL, .wait_ms = 10000}
#define BENCH_EXECUTOR_FLAG_ROWS(ef)                                                               \
    {"target", RPC_FLAG_STRING, &(ef)->target, "executor address, host:port or unix:/path"},     \
    {"wait-ready-ms", RPC_FLAG_UINT, &(ef)->wait_ms, "how long to wait for the executor to serve"}
/* clang-format on */

/* True when --target is given and --wait-ready-ms is at most an hour; otherwise a usage error. */
bool bench_executor_flags_ok(const bench_cmdline *cl, const bench_executor_flags *ef);

/* ---- the Run client --------------------------------------------------------------------- */

/* What came back on the Run calls of one client, summed. */
typedef struct {
    uint64_t calls_ok;     /* status OK and every command exited 0 */
    uint64_t calls_failed; /* a gRPC error, or a command exited nonzero or was killed */
    uint64_t events;       /* RunEvent messages received */
    uint64_t started;      /* started events */
    uint64_t exited;       /* exited events */
    uint64_t stdout_bytes; /* bytes of stdout_data */
    uint64_t stderr_bytes; /* bytes of stderr_data */
    uint64_t bad_messages; /* messages that did not parse as RunEvent */
    int last_status;       /* the last non-OK gRPC status seen, or 0 */
    int last_exit_code;    /* the last nonzero exit code seen, or 0 */
    char last_error[256];  /* details of the last failure */
} bench_run_totals;

typedef struct bench_client bench_client;

/* Called on every completion-queue wake-up (at least every tick_ms), for sampling. */
typedef void (*bench_tick_fn)(void *arg, uint64_t now_us);

typedef struct {
    const char *target;     /* "127.0.0.1:PORT" or "unix:/path" */
    const uint8_t *request; /* a packed RunRequest, sent on every call */
    size_t request_len;
    unsigned inflight;    /* calls kept outstanding */
    uint64_t calls;       /* calls to complete in total (warm-up included) */
    uint64_t warmup;      /* the first calls, not counted in latency or throughput */
    unsigned deadline_ms; /* per-call deadline */
    bench_tick_fn tick;   /* may be NULL */
    void *tick_arg;
    unsigned tick_ms; /* how often tick runs at most; 0 = 10 ms */
} bench_client_config;

/* What one run measured: the timed part starts when the first call after the warm-up starts. */
typedef struct {
    bench_run_totals totals;
    bench_samples latency; /* per call, from create to the status and the end of the stream */
    uint64_t timed_calls;
    uint64_t wall_us; /* first timed call started to the last call finished */
} bench_client_result;

/*
 * Creates the channel (insecure; the executor listens on loopback) and the completion queue.
 * grpc_init must have been called. Returns NULL with err set on failure.
 */
bench_client *bench_client_create(const bench_client_config *cfg, char *err, size_t errlen);

/*
 * Calls grpc.health.v1.Health/Check for service "" until it answers SERVING or wait_ms passes;
 * then n more times, one after another (each after a pause of gap_us when it is not 0), adding
 * each round trip to lat when it is not NULL. Returns 0 or -ETIMEDOUT / -EIO with err set.
 */
int bench_client_health(bench_client *c, unsigned wait_ms, unsigned n, unsigned gap_us,
                        bench_samples *lat, char *err, size_t errlen);

/*
 * Runs the configured calls with cfg->inflight outstanding on one completion queue and fills res
 * (res->latency is allocated here; free with bench_samples_free). Returns 0, or -ETIMEDOUT when
 * the queue stalled past the deadline, with err set. Failed calls are counted, not fatal.
 */
int bench_client_run(bench_client *c, bench_client_result *res, char *err, size_t errlen);

/* Shuts the queue down, drains it and frees everything. */
void bench_client_destroy(bench_client *c);

/* Packs a RunRequest holding one shell command; returns a malloc'd buffer or NULL. */
uint8_t *bench_pack_shell_request(const char *shell, size_t *len);

#endif

/*
 * Small helpers of the benchmark programs that need no gRPC: latency samples and percentiles,
 * /proc/PID/status fields, the command line (rpc flags, no positionals) and its usage errors.
 */
#include "bench/bench.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

int bench_samples_init(bench_samples *s, size_t cap)
{
    memset(s, 0, sizeof *s);
    s->v = malloc((cap ? cap : 1) * sizeof *s->v);
    if (!s->v)
        return -ENOMEM;
    s->cap = cap;
    return 0;
}

void bench_samples_add(bench_samples *s, uint64_t us)
{
    if (s->n < s->cap)
        s->v[s->n++] = us;
    else
        s->dropped++;
}

void bench_samples_free(bench_samples *s)
{
    free(s->v);
    memset(s, 0, sizeof *s);
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

uint64_t bench_percentile(bench_samples *s, double p)
{
    if (s->n == 0)
        return 0;
    /* Sorting an already sorted array is cheap enough for the few calls made per run. */
    qsort(s->v, s->n, sizeof *s->v, cmp_u64);
    /* Nearest rank: the smallest sample with at least p of all samples at or below it. */
    double rank = p * (double)s->n;
    size_t k = (size_t)rank;
    if ((double)k < rank)
        k++;
    if (k == 0)
        k = 1;
    if (k > s->n)
        k = s->n;
    return s->v[k - 1];
}

long bench_proc_status_kb(pid_t pid, const char *key)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
    FILE *f = fopen(path, "re");
    if (!f)
        return -1;
    char line[256];
    size_t klen = strlen(key);
    long val = -1;
    while (fgets(line, sizeof line, f)) {
        if (strncmp(line, key, klen) == 0 && line[klen] == ':') {
            val = strtol(line + klen + 1, NULL, 10);
            break;
        }
    }
    fclose(f);
    return val;
}

double bench_self_cpu_s(void)
{
    struct rusage ru;
    if (getrusage(RUSAGE_SELF, &ru) < 0)
        return 0.0;
    return (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
           (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

/* Prints "prog: msg (see --help)" to stderr; returns 2, the usage exit code. */
static int usage_error(const bench_cmdline *cl, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static int usage_error(const bench_cmdline *cl, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "%s: ", cl->prog);
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, " (see --help)\n");
    va_end(ap);
    return 2;
}

int bench_flags_parse(const bench_cmdline *cl, int argc, char **argv)
{
    char err[256];
    int rest = argc;
    int rc = rpc_flags_parse(cl->flags, cl->nflags, argc, argv, &rest, err, sizeof err);
    if (rc == 1) {
        rpc_flags_usage(stdout, cl->synopsis, cl->flags, cl->nflags);
        return 0;
    }
    if (rc < 0) {
        fprintf(stderr, "%s: %s\n", cl->prog, err);
        return 2;
    }
    if (rest < argc)
        return usage_error(cl, "unexpected argument \"%s\"", argv[rest]);
    return -1;
}

bool bench_flag_in_range(const bench_cmdline *cl, const char *flag, uint64_t v, uint64_t lo,
                         uint64_t hi)
{
    if (v >= lo && v <= hi)
        return true;
    usage_error(cl, "--%s must be between %" PRIu64 " and %" PRIu64 ", got %" PRIu64, flag, lo, hi,
                v);
    return false;
}

bool bench_executor_flags_ok(const bench_cmdline *cl, const bench_executor_flags *ef)
{
    if (!ef->target) {
        usage_error(cl, "--target is required");
        return false;
    }
    return bench_flag_in_range(cl, "wait-ready-ms", ef->wait_ms, 0, 3600000);
}

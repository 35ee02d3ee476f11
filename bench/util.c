/*
 * Small helpers of the benchmark programs that need no gRPC: latency samples and percentiles,
 * /proc/PID/status fields, integer flags with size suffixes, usage errors.
 */
#include "bench/bench.h"

#include <errno.h>
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

int bench_parse_u64(const char *s, uint64_t *out)
{
    if (!s || !*s || *s == '-')
        return -EINVAL;
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || end == s)
        return -EINVAL;
    unsigned shift = 0;
    switch (*end) {
    case '\0':
        break;
    case 'k':
    case 'K':
        shift = 10;
        end++;
        break;
    case 'M':
        shift = 20;
        end++;
        break;
    case 'G':
        shift = 30;
        end++;
        break;
    default:
        return -EINVAL;
    }
    if (*end || (shift && v > (UINT64_MAX >> shift)))
        return -EINVAL;
    *out = (uint64_t)v << shift;
    return 0;
}

int bench_usage_error(const char *prog, const char *usage, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "%s: ", prog);
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n%s", usage);
    va_end(ap);
    return 2;
}

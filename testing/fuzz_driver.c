/*
 * The standalone mutation loop behind every fuzz target's cc_test (see fuzz_driver.h): flags,
 * the seed pool, a splitmix64 generator that gives the same inputs on every machine for a given
 * seed, the iteration and time budget, replaying files and writing the seeds out for libFuzzer.
 * Every input reaches the target as an exact-size heap copy, so ASan sees a read past its end.
 */
#include "testing/fuzz_driver.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define POOL_MAX 512

struct fuzz_pool {
    fuzz_blob v[POOL_MAX];
    size_t n, nseeds;
};

static const char *prog = "fuzz";
static uint64_t rng_state;

static uint64_t rng(void)
{
    uint64_t z = (rng_state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

size_t fuzz_below(size_t n)
{
    return n ? (size_t)(rng() % n) : 0;
}

void *fuzz_xmalloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    if (!p) {
        fprintf(stderr, "%s: out of memory\n", prog);
        exit(1);
    }
    return p;
}

void fuzz_pool_add(fuzz_pool *p, const uint8_t *data, size_t len)
{
    size_t slot = p->n;
    if (p->n == POOL_MAX) {
        if (p->nseeds == POOL_MAX)
            return;
        slot = p->nseeds + fuzz_below(POOL_MAX - p->nseeds);
        free(p->v[slot].data);
    } else {
        p->n++;
    }
    p->v[slot].data = fuzz_xmalloc(len);
    memcpy(p->v[slot].data, data, len);
    p->v[slot].len = len;
}

/* Runs data[0..len) through the target from an exact-size heap copy. */
static void run_exact(const uint8_t *data, size_t len)
{
    uint8_t *exact = fuzz_xmalloc(len);
    memcpy(exact, data, len);
    LLVMFuzzerTestOneInput(exact, len);
    free(exact);
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static uint8_t *read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "%s: %s: %s\n", prog, path, strerror(errno));
        return NULL;
    }
    size_t cap = 1 << 16, n = 0, r;
    uint8_t *buf = fuzz_xmalloc(cap);
    while ((r = fread(buf + n, 1, cap - n, f)) > 0) {
        n += r;
        if (n == cap) {
            uint8_t *nb = realloc(buf, cap *= 2);
            if (!nb) {
                fprintf(stderr, "%s: %s: out of memory\n", prog, path);
                free(buf);
                fclose(f);
                return NULL;
            }
            buf = nb;
        }
    }
    fclose(f);
    *len = n;
    return buf;
}

static int run_file(const fuzz_target *t, const char *path)
{
    size_t len;
    uint8_t *buf = read_file(path, &len);
    if (!buf)
        return 1;
    run_exact(buf, len);
    t->describe(path, len);
    free(buf);
    return 0;
}

static int write_corpus(const fuzz_target *t, const fuzz_pool *p, const char *dir)
{
    for (size_t i = 0; i < p->n; i++) {
        char path[4096];
        snprintf(path, sizeof path, "%s/seed-%02zu%s", dir, i, t->seed_ext);
        FILE *f = fopen(path, "wb");
        if (!f || fwrite(p->v[i].data, 1, p->v[i].len, f) != p->v[i].len || fclose(f) != 0) {
            fprintf(stderr, "%s: writing %s: %s\n", prog, path, strerror(errno));
            return 1;
        }
    }
    printf("%s: wrote %zu seeds to %s\n", prog, p->n, dir);
    return 0;
}

static int parse_number(const char *flag, const char *s, uint64_t *out)
{
    char *end;
    errno = 0;
    *out = strtoull(s ? s : "", &end, 0);
    if (!s || errno || end == s || *end) {
        fprintf(stderr, "%s: %s wants a number, got \"%s\"\n", prog, flag, s ? s : "");
        return -1;
    }
    return 0;
}

static void free_pool(fuzz_pool *p)
{
    for (size_t i = 0; i < p->n; i++)
        free(p->v[i].data);
    p->n = p->nseeds = 0;
}

/* The mutation loop proper, over a pool holding its seeds; returns main's exit status. */
static int run_loop(const fuzz_target *t, fuzz_pool *p, uint64_t iterations, uint64_t seconds,
                    uint64_t seed)
{
    /* Every seed once as it is: seeds from files are also known-good and known-bad inputs. */
    for (size_t i = 0; i < p->n; i++)
        run_exact(p->v[i].data, p->v[i].len);
    if (t->run_edge_cases)
        t->run_edge_cases();

    rng_state = seed;
    uint8_t *buf = fuzz_xmalloc(t->max_input);
    uint64_t done = 0;
    double start = now_s(), elapsed = 0;
    for (; done < iterations; done++) {
        /* The clock is cheap, but not free under ASan; look at it now and then. */
        if ((done & 63) == 0 && (elapsed = now_s() - start) >= (double)seconds)
            break;
        const fuzz_blob *from = &p->v[fuzz_below(p->n)];
        size_t len = from->len;
        memcpy(buf, from->data, len);
        /* Mostly one mutation: most of them break the input, and a broken input stops the
         * parser before the deeper checks. Sometimes a few, to reach further. */
        size_t rounds = fuzz_below(4) ? 1 : 2 + fuzz_below(4);
        for (size_t m = 0; m < rounds; m++)
            t->mutate(buf, &len, &p->v[fuzz_below(p->n)]);
        uint8_t *exact = fuzz_xmalloc(len);
        memcpy(exact, buf, len);
        LLVMFuzzerTestOneInput(exact, len);
        if (t->keep())
            fuzz_pool_add(p, exact, len);
        free(exact);
    }
    elapsed = now_s() - start;
    printf("%s: %llu inputs in %.1f s (seed %#llx): ", prog, (unsigned long long)done, elapsed,
           (unsigned long long)seed);
    t->summary(stdout);
    printf("; no promise broken\n");
    free(buf);
    return 0;
}

int fuzz_standalone_main(int argc, char **argv, const fuzz_target *t)
{
    uint64_t iterations = t->iterations, seconds = t->seconds, seed = t->seed;
    const char *corpus_dir = NULL;
    static fuzz_pool p;
    prog = t->name;
    t->build_seeds(&p);
    int nfiles = 0, rc = 0;
    bool seeding = false;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *value = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--iterations")) {
            if (parse_number(a, value, &iterations) < 0)
                return 2;
            i++;
        } else if (!strcmp(a, "--seconds")) {
            if (parse_number(a, value, &seconds) < 0)
                return 2;
            i++;
        } else if (!strcmp(a, "--seed")) {
            if (parse_number(a, value, &seed) < 0)
                return 2;
            i++;
        } else if (!strcmp(a, "--write-corpus") && value) {
            corpus_dir = argv[++i];
        } else if (!strcmp(a, "--seeds")) {
            seeding = true;
        } else if (a[0] == '-' && a[1] == '-') {
            fprintf(stderr,
                    "usage: %s [--iterations N] [--seconds S] [--seed N] [--write-corpus DIR] "
                    "[--seeds FILE...] [FILE...]\n",
                    prog);
            return 2;
        } else if (seeding) {
            size_t len;
            uint8_t *buf = read_file(a, &len);
            if (!buf)
                return 1;
            if (len <= t->max_input)
                fuzz_pool_add(&p, buf, len);
            free(buf);
        } else {
            rc |= run_file(t, a);
            nfiles++;
        }
    }
    p.nseeds = p.n;
    if (!nfiles)
        rc = corpus_dir ? write_corpus(t, &p, corpus_dir)
                        : run_loop(t, &p, iterations, seconds, seed);
    free_pool(&p);
    if (t->cleanup)
        t->cleanup();
    return rc;
}

void fuzz_report_input_and_abort(const char *name, const uint8_t *data, size_t size)
{
    fprintf(stderr, "%s: input (%zu bytes):", name, size);
    for (size_t i = 0; i < size && i < 512; i++)
        fprintf(stderr, " %02x", data[i]);
    fprintf(stderr, "%s\n", size > 512 ? " ..." : "");
    const char *dir = getenv("TEST_UNDECLARED_OUTPUTS_DIR");
    if (dir) {
        char path[4096];
        snprintf(path, sizeof path, "%s/%s-failure.bin", dir, name);
        FILE *f = fopen(path, "wb");
        if (f) {
            if (size)
                fwrite(data, 1, size, f);
            fclose(f);
            fprintf(stderr, "%s: input written to %s\n", name, path);
        }
    }
    abort();
}

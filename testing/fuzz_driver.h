/*
 * The standalone driver of the fuzz targets: when a target is built with PM_FUZZ_STANDALONE
 * (its cc_test) instead of under libFuzzer, its main hands over to fuzz_standalone_main, which
 * runs a deterministic mutation loop with a fixed seed over a pool of inputs, a cheap stand-in
 * for coverage feedback. The target keeps what is its own: LLVMFuzzerTestOneInput with its
 * invariants, its seeds, its mutation operators and which inputs are worth keeping.
 *
 * Flags, the same for every target: --iterations N, --seconds S, --seed N, --write-corpus DIR
 * (write the seeds as files for libFuzzer and exit), --seeds FILE... (more seeds from files);
 * any other argument is a file run once as an input (to replay a libFuzzer crash without it).
 */
#ifndef PM_TESTING_FUZZ_DRIVER_H
#define PM_TESTING_FUZZ_DRIVER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* The target under test, defined by each fuzz file. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

typedef struct {
    uint8_t *data;
    size_t len;
} fuzz_blob;

/* The inputs mutations start from; the seeds stay, the rest is replaced at random once full. */
typedef struct fuzz_pool fuzz_pool;

typedef struct {
    const char *name;    /* for messages: "request_fuzz" */
    size_t max_input;    /* mutate may grow an input up to this many bytes, never past it */
    uint64_t iterations; /* defaults of the flags */
    uint64_t seconds;
    uint64_t seed;
    const char *seed_ext; /* appended to the names --write-corpus gives: "" or ".json" */

    /* Adds the built-in seeds with fuzz_pool_add. */
    void (*build_seeds)(fuzz_pool *p);
    /* Optional: inputs run once before the loop. */
    void (*run_edge_cases)(void);
    /* One mutation of b[0..*len), b having room for max_input bytes; other is there to splice. */
    void (*mutate)(uint8_t *b, size_t *len, const fuzz_blob *other);
    /* After each input of the loop: counts what the target made of it; true to keep it. */
    bool (*keep)(void);
    /* After a replayed file: prints what the target made of it. */
    void (*describe)(const char *path, size_t len);
    /* Prints the counts kept by keep, for the summary line (no newline). */
    void (*summary)(FILE *out);
    /* Optional: releases what the target holds, at the end of the loop. */
    void (*cleanup)(void);
} fuzz_target;

/* Runs the driver; returns main's exit status (2 for a bad flag). */
int fuzz_standalone_main(int argc, char **argv, const fuzz_target *t);

/* Copies data[0..len) into the pool. */
void fuzz_pool_add(fuzz_pool *p, const uint8_t *data, size_t len);

/* A number in [0, n) from the driver's seeded generator (0 for n == 0). */
size_t fuzz_below(size_t n);

/*
 * Ends a failed fuzz run: prints the input in hex (a test log is often all there is), writes it
 * to the test's undeclared outputs as <name>-failure.bin for replay under bazel test, aborts.
 */
void fuzz_report_input_and_abort(const char *name, const uint8_t *data, size_t size)
    __attribute__((noreturn));

/* malloc that exits on failure and accepts 0. */
void *fuzz_xmalloc(size_t n);

#endif

/*
 * Tiny helpers for the unit tests of //sandbox/oci: CHECK macros that report the failing
 * expression with its location and count failures, so that one run shows every broken case
 * instead of stopping at the first.
 */
#ifndef SANDBOX_OCI_TESTUTIL_H
#define SANDBOX_OCI_TESTUTIL_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int test_failures;

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond);               \
            test_failures++;                                                                       \
        }                                                                                          \
    } while (0)

#define CHECK_STR(a, b)                                                                            \
    do {                                                                                           \
        const char *a_ = (a), *b_ = (b);                                                           \
        if (!a_ || !b_ || strcmp(a_, b_) != 0) {                                                   \
            fprintf(stderr, "%s:%d: \"%s\" != \"%s\"\n", __FILE__, __LINE__, a_ ? a_ : "(null)",   \
                    b_ ? b_ : "(null)");                                                           \
            test_failures++;                                                                       \
        }                                                                                          \
    } while (0)

/* a starts with the prefix b. */
#define CHECK_PREFIX(a, b)                                                                         \
    do {                                                                                           \
        const char *a_ = (a), *b_ = (b);                                                           \
        if (!a_ || !b_ || strncmp(a_, b_, strlen(b_)) != 0) {                                      \
            fprintf(stderr, "%s:%d: \"%s\"\n    does not start with \"%s\"\n", __FILE__, __LINE__, \
                    a_ ? a_ : "(null)", b_ ? b_ : "(null)");                                       \
            test_failures++;                                                                       \
        }                                                                                          \
    } while (0)

static inline int test_done(const char *name)
{
    if (test_failures) {
        fprintf(stderr, "%s: %d check(s) failed\n", name, test_failures);
        return 1;
    }
    printf("%s: all checks passed\n", name);
    return 0;
}

#endif

/*
 * The assertions shared by the unit tests: CHECK macros that report the failing expression with
 * its location and count failures instead of stopping, so that one run shows every broken case,
 * and test_done, which turns the count into the test's exit status. Header-only, since each test
 * is its own binary with its own count.
 */
#ifndef PM_TESTING_CHECK_H
#define PM_TESTING_CHECK_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Failed checks so far; a test that forks may reset it in the child. */
static int test_failures;

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond);               \
            test_failures++;                                                                       \
        }                                                                                          \
    } while (0)

/* Both strings are set and equal; NULL on either side fails. */
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

/* Reports the outcome under the test's name; the value is main's exit status. */
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

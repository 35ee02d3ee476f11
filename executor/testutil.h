/*
 * Tiny helpers for the executor's unit tests: a CHECK macro that reports the failing expression
 * and counts failures, and a builder that encodes RunRequests with protobuf-c (the other codec,
 * so these tests also exercise cross-codec bytes).
 */
#ifndef PM_EXECUTOR_TESTUTIL_H
#define PM_EXECUTOR_TESTUTIL_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "protos/executor.pb-c.h"

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

static inline int test_done(const char *name)
{
    if (test_failures) {
        fprintf(stderr, "%s: %d check(s) failed\n", name, test_failures);
        return 1;
    }
    printf("%s: all checks passed\n", name);
    return 0;
}

/* Encodes req into a malloc'd buffer. */
static inline uint8_t *test_pack(const Pm__Executor__V1__RunRequest *req, size_t *len)
{
    *len = pm__executor__v1__run_request__get_packed_size(req);
    uint8_t *buf = malloc(*len ? *len : 1);
    pm__executor__v1__run_request__pack(req, buf);
    return buf;
}

#endif

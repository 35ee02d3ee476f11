/*
 * What the executor's unit tests share beyond //testing:check: a builder that encodes
 * RunRequests with protobuf-c (the other codec, so these tests also exercise cross-codec bytes).
 */
#ifndef PM_EXECUTOR_TESTUTIL_H
#define PM_EXECUTOR_TESTUTIL_H

#include <stdint.h>
#include <stdlib.h>

#include "testing/check.h"

#include "protos/executor.pb-c.h"

/* Encodes req into a malloc'd buffer. */
static inline uint8_t *test_pack(const Pm__Executor__V1__RunRequest *req, size_t *len)
{
    *len = pm__executor__v1__run_request__get_packed_size(req);
    uint8_t *buf = malloc(*len ? *len : 1);
    pm__executor__v1__run_request__pack(req, buf);
    return buf;
}

#endif

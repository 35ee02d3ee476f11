/*
 * The retry and lease rules of the scheduler (see policy.h): pure functions of their arguments.
 */
#include "scheduler/policy.h"

#include <string.h>

#include <grpc/status.h>

uint64_t sch_backoff_ms(uint32_t failures, uint32_t initial_ms, uint32_t max_ms)
{
    if (failures == 0)
        return 0;
    uint64_t d = initial_ms;
    for (uint32_t i = 1; i < failures && d < max_ms; i++)
        d *= 2;
    return d < max_ms ? d : max_ms;
}

bool sch_lease_reclaimable(const char *owner, int64_t expires_ms, const char *me, int64_t now_ms)
{
    /* Our own name on a lease at start-up means a previous life of this instance held it: its
     * calls died with it, so there is nothing to wait for. */
    return !owner[0] || !strcmp(owner, me) || expires_ms <= now_ms;
}

bool sch_exit_retryable(const Pm__Scheduler__V1__RetryPolicy *p, int exit_code, int signal,
                        bool timed_out)
{
    if (!p || signal || timed_out)
        return false;
    for (size_t i = 0; i < p->n_retryable_exit_codes; i++)
        if (p->retryable_exit_codes[i] == exit_code)
            return true;
    return false;
}

bool sch_status_retryable(int grpc_status)
{
    switch (grpc_status) {
    case GRPC_STATUS_INVALID_ARGUMENT:
    case GRPC_STATUS_PERMISSION_DENIED:
    case GRPC_STATUS_UNAUTHENTICATED:
    case GRPC_STATUS_UNIMPLEMENTED:
        return false;
    default:
        return true;
    }
}

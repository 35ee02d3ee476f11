/*
 * Units of the scheduler's retry and lease rules (policy.h): backoff growth and cap, which leases
 * a restarted or second scheduler may take back, and which failures are retried.
 */
#include "scheduler/policy.h"

#include <grpc/status.h>

#include "testing/check.h"

static void test_backoff(void)
{
    CHECK(sch_backoff_ms(0, 500, 30000) == 0);
    CHECK(sch_backoff_ms(1, 500, 30000) == 500);
    CHECK(sch_backoff_ms(2, 500, 30000) == 1000);
    CHECK(sch_backoff_ms(3, 500, 30000) == 2000);
    CHECK(sch_backoff_ms(6, 500, 30000) == 16000);
    CHECK(sch_backoff_ms(7, 500, 30000) == 30000);    /* 32000 capped */
    CHECK(sch_backoff_ms(1000, 500, 30000) == 30000); /* no overflow however many */
    CHECK(sch_backoff_ms(UINT32_MAX, UINT32_MAX, UINT32_MAX) == UINT32_MAX);
    CHECK(sch_backoff_ms(3, 40000, 30000) == 30000); /* the cap wins over the start */
}

static void test_lease_reclaim(void)
{
    int64_t now = 1000000;
    /* Another scheduler's lease still running: hands off. */
    CHECK(!sch_lease_reclaimable("other", now + 1, "me", now));
    /* Expired: anybody takes it back, at the very millisecond of expiry too. */
    CHECK(sch_lease_reclaimable("other", now, "me", now));
    CHECK(sch_lease_reclaimable("other", now - 5000, "me", now));
    /* Our own name: a previous life of this instance, whose calls died with it. */
    CHECK(sch_lease_reclaimable("me", now + 60000, "me", now));
    /* Nobody's. */
    CHECK(sch_lease_reclaimable("", now + 60000, "me", now));
    /* A prefix is not the same name. */
    CHECK(!sch_lease_reclaimable("me2", now + 1, "me", now));
}

static void test_exit_retryable(void)
{
    int32_t codes[] = {75, 3};
    Pm__Scheduler__V1__RetryPolicy p = PM__SCHEDULER__V1__RETRY_POLICY__INIT;
    p.retryable_exit_codes = codes;
    p.n_retryable_exit_codes = 2;
    CHECK(sch_exit_retryable(&p, 75, 0, false));
    CHECK(sch_exit_retryable(&p, 3, 0, false));
    CHECK(!sch_exit_retryable(&p, 1, 0, false));
    CHECK(!sch_exit_retryable(&p, 75, 9, false)); /* killed: never */
    CHECK(!sch_exit_retryable(&p, 3, 0, true));   /* timed out: never */
    CHECK(!sch_exit_retryable(NULL, 75, 0, false));
    Pm__Scheduler__V1__RetryPolicy none = PM__SCHEDULER__V1__RETRY_POLICY__INIT;
    CHECK(!sch_exit_retryable(&none, 1, 0, false));
}

static void test_status_retryable(void)
{
    CHECK(sch_status_retryable(GRPC_STATUS_UNAVAILABLE));
    CHECK(sch_status_retryable(GRPC_STATUS_RESOURCE_EXHAUSTED));
    CHECK(sch_status_retryable(GRPC_STATUS_INTERNAL));
    CHECK(sch_status_retryable(GRPC_STATUS_CANCELLED));
    CHECK(!sch_status_retryable(GRPC_STATUS_INVALID_ARGUMENT));
    CHECK(!sch_status_retryable(GRPC_STATUS_PERMISSION_DENIED));
    CHECK(!sch_status_retryable(GRPC_STATUS_UNAUTHENTICATED));
    CHECK(!sch_status_retryable(GRPC_STATUS_UNIMPLEMENTED));
}

int main(void)
{
    test_backoff();
    test_lease_reclaim();
    test_exit_retryable();
    test_status_retryable();
    return test_done("policy_test");
}

/*
 * The scheduler's retry and lease rules as pure functions, so that they are tested on their own
 * (policy_test.c) and read in one place: how long a failed task waits, which failures are retried,
 * and which leases a scheduler may take back.
 */
#ifndef PM_SCHEDULER_POLICY_H
#define PM_SCHEDULER_POLICY_H

#include <stdbool.h>
#include <stdint.h>

#include "protos/scheduler.pb-c.h"

/* The wait before the next attempt after `failures` failed ones: initial_ms doubled per failure
 * after the first, capped at max_ms; 0 for no failure. */
uint64_t sch_backoff_ms(uint32_t failures, uint32_t initial_ms, uint32_t max_ms);

/* Whether a RUNNING task's lease may be taken back: nobody holds it, we held it in a previous
 * life (our own --id at start-up), or it has expired. */
bool sch_lease_reclaimable(const char *owner, int64_t expires_ms, const char *me, int64_t now_ms);

/* Whether a step that ended this way is retried under policy p (NULL: none): only a plain exit
 * with a code the policy lists; a signal or a timeout never is. */
bool sch_exit_retryable(const Pm__Scheduler__V1__RetryPolicy *p, int exit_code, int signal,
                        bool timed_out);

/* Whether a Run call that ended with this gRPC status fails only the attempt (retried) rather
 * than the task: everything but the statuses the same request would meet again. */
bool sch_status_retryable(int grpc_status);

#endif

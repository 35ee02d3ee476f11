/*
 * What pmctl's scheduler commands share (pmctl_sched.c: submit, watch, get, cancel, requeue;
 * pmctl_catalog.c: list, pipelines, workers): the flags, connecting and calling, name=value pairs
 * and a few printers.
 */
#ifndef PM_CLI_PMCTL_SCHED_H
#define PM_CLI_PMCTL_SCHED_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cli/client.h"
#include "cli/pmctl.h"
#include "protos/scheduler.pb-c.h"

#define DEFAULT_SCHEDULER "127.0.0.1:7070"
#define METHOD_PREFIX "/pm.scheduler.v1.Scheduler/"

/* Largest pipeline file read; the scheduler refuses larger ones anyway (SCH_PIPELINE_MAX_JSON). */
#define MAX_PIPELINE_FILE (4u << 20)

typedef struct {
    conn_flags conn;
    const char *output;
} sched_flags;

#define SCHED_FLAGS_INIT                                                                           \
    {                                                                                              \
        .conn = {.target = DEFAULT_SCHEDULER, .target_flag = "scheduler"}, .output = "text"        \
    }

/* clang-format off */
#define SCHED_FLAGS(sf)                                                                           \
    {"scheduler", RPC_FLAG_STRING, &(sf)->conn.target, "scheduler address: host:port or unix:/path"}, \
    CONN_AUTH_FLAGS(&(sf)->conn),                                                                 \
    {"output", RPC_FLAG_STRING, &(sf)->output, "text, or json: one object per line"}
/* clang-format on */

#define SCHED_EPILOG                                                                               \
    "Exit codes: 0 ok; 1 when the call failed (printed as pmctl: METHOD: STATUS: details, e.g.\n"  \
    "NOT_FOUND or UNAVAILABLE); 2 on a usage error."

/* Params or labels for a request; each pair owns a copy of its "name=value" argument. */
typedef struct {
    size_t n;
    Pm__Scheduler__V1__Param *items;
    Pm__Scheduler__V1__Param **ptrs;
    char **bufs;
} param_list;

/* True with --output json. */
bool json_mode(const sched_flags *sf);

/*
 * Checks the flags every scheduler command shares and the count of positionals, then connects.
 * Returns 0 or the exit code to leave with, having said why.
 */
int sched_open(const char *cmd, const sched_flags *sf, const parsed_args *pa, int min_pos,
               int max_pos, const char *what, cli_conn **c);

/* Makes one unary call; returns 0 with *out set, or the exit code having said why. */
int sched_call(cli_conn *c, const char *method, const ProtobufCMessage *req,
               const ProtobufCMessageDescriptor *resp, ProtobufCMessage **out);

void params_free(param_list *p);
/* Splits each "name=value" of l; returns 0 or the exit code having said why. */
int params_from(const char *cmd, const char *flag, const str_list *l, param_list *p);

const char *state_name(Pm__Scheduler__V1__TaskState s);
/* Unix milliseconds as UTC "2024-05-01T12:00:00Z"; "-" for 0. */
const char *format_ms(char *buf, size_t size, int64_t ms);
/* "LABEL name=value ..." on one line; nothing when n is 0. */
void print_params(const char *label, Pm__Scheduler__V1__Param **p, size_t n);

#endif

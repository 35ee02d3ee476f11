/*
 * pmctl scheduler mode, the task commands: submit, watch, get, cancel and requeue, each a call
 * (or, for watch, a stream) to pm.scheduler.v1.Scheduler at --scheduler; list, pipelines and
 * workers are in pmctl_catalog.c. All share one flag set and one way to print (pmctl_sched.h):
 * a readable summary in text mode, the message as one JSON line with --output json. watch is
 * the part with logic of its own: it relays a task's output as raw bytes,
 * and when the stream breaks it calls Watch again from the last sequence number it saw, so a
 * scheduler restart or a dropped connection neither loses nor repeats output; its exit code
 * follows the task's final state.
 */
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli/client.h"
#include "cli/pmctl.h"
#include "cli/pmctl_sched.h"
#include "protos/scheduler.pb-c.h"
#include "rpc/rpc.h"

/* Exit code of watch when the task was cancelled, as for a job stopped by Ctrl-C. */
#define EXIT_CANCELLED 130

/* The first pause before Watch is called again, and the longest; it doubles in between. */
#define RECONNECT_FIRST_MS 100
#define RECONNECT_MAX_MS 2000

bool json_mode(const sched_flags *sf)
{
    return !strcmp(sf->output, "json");
}

/*
 * Checks the flags every scheduler command shares and the count of positionals, then connects.
 * Returns 0 or the exit code to leave with, having said why.
 */
int sched_open(const char *cmd, const sched_flags *sf, const parsed_args *pa, int min_pos,
               int max_pos, const char *what, cli_conn **c)
{
    *c = NULL;
    if (strcmp(sf->output, "text") != 0 && strcmp(sf->output, "json") != 0) {
        fprintf(stderr, "pmctl %s: --output wants text or json, got \"%s\"\n", cmd, sf->output);
        return EXIT_USAGE;
    }
    if (pa->npos < min_pos) {
        fprintf(stderr, "pmctl %s: %s is missing (see --help)\n", cmd, what);
        return EXIT_USAGE;
    }
    if (pa->npos > max_pos) {
        fprintf(stderr, "pmctl %s: unexpected argument \"%s\" (see --help)\n", cmd,
                pa->pos[max_pos]);
        return EXIT_USAGE;
    }
    return open_conn(cmd, &sf->conn, c);
}

/* Makes one unary call; returns 0 with *out set, or the exit code having said why. */
int sched_call(cli_conn *c, const char *method, const ProtobufCMessage *req,
               const ProtobufCMessageDescriptor *resp, ProtobufCMessage **out)
{
    char path[96];
    cli_status st;
    snprintf(path, sizeof path, METHOD_PREFIX "%s", method);
    catch_signals();
    int rc = cli_unary(c, path, req, resp, out, &st);
    if (rc < 0)
        return call_failed_as(method, cli_target(c), rc, &st);
    return 0;
}

/* ---- name=value pairs ------------------------------------------------------------------- */

void params_free(param_list *p)
{
    for (size_t i = 0; i < p->n; i++)
        free(p->bufs[i]);
    free(p->bufs);
    free(p->ptrs);
    free(p->items);
    memset(p, 0, sizeof *p);
}

/* Splits each "name=value" of l; returns 0 or the exit code having said why. */
int params_from(const char *cmd, const char *flag, const str_list *l, param_list *p)
{
    memset(p, 0, sizeof *p);
    if (l->n == 0)
        return 0;
    p->items = calloc(l->n, sizeof *p->items);
    p->ptrs = calloc(l->n, sizeof *p->ptrs);
    p->bufs = calloc(l->n, sizeof *p->bufs);
    if (!p->items || !p->ptrs || !p->bufs)
        goto nomem;
    for (size_t i = 0; i < l->n; i++) {
        const char *eq = strchr(l->v[i], '=');
        if (!eq || eq == l->v[i]) {
            fprintf(stderr, "pmctl %s: %s wants NAME=VALUE, got \"%s\"\n", cmd, flag, l->v[i]);
            params_free(p);
            return EXIT_USAGE;
        }
        char *b = strdup(l->v[i]);
        if (!b)
            goto nomem;
        p->bufs[p->n++] = b;
        b[eq - l->v[i]] = '\0';
        pm__scheduler__v1__param__init(&p->items[i]);
        p->items[i].name = b;
        p->items[i].value = b + (eq - l->v[i]) + 1;
        p->ptrs[i] = &p->items[i];
    }
    return 0;
nomem:
    fprintf(stderr, "pmctl: out of memory\n");
    params_free(p);
    return EXIT_FAIL;
}

/* Parses a whole number in [lo, hi] given to flag; returns 0 or EXIT_USAGE having said why. */
static int parse_int(const char *cmd, const char *flag, const char *s, long long lo, long long hi,
                     long long *out)
{
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (!*s || *end || errno || v < lo || v > hi) {
        fprintf(stderr, "pmctl %s: %s wants a whole number in %lld..%lld, got \"%s\"\n", cmd, flag,
                lo, hi, s);
        return EXIT_USAGE;
    }
    *out = v;
    return 0;
}

/* ---- printing --------------------------------------------------------------------------- */

const char *state_name(Pm__Scheduler__V1__TaskState s)
{
    const ProtobufCEnumValue *v =
        protobuf_c_enum_descriptor_get_value(&pm__scheduler__v1__task_state__descriptor, (int)s);
    return v ? v->name : "?";
}

static bool state_final(Pm__Scheduler__V1__TaskState s)
{
    return s == PM__SCHEDULER__V1__TASK_STATE__SUCCEEDED ||
           s == PM__SCHEDULER__V1__TASK_STATE__FAILED ||
           s == PM__SCHEDULER__V1__TASK_STATE__CANCELLED ||
           s == PM__SCHEDULER__V1__TASK_STATE__DEAD;
}

/* Unix milliseconds as UTC "2024-05-01T12:00:00Z"; "-" for 0. */
const char *format_ms(char *buf, size_t size, int64_t ms)
{
    if (ms <= 0) {
        snprintf(buf, size, "-");
        return buf;
    }
    time_t t = (time_t)(ms / 1000);
    struct tm tm;
    if (!gmtime_r(&t, &tm) || !strftime(buf, size, "%Y-%m-%dT%H:%M:%SZ", &tm))
        snprintf(buf, size, "%" PRId64, ms);
    return buf;
}

/* The code a shell would see for a step that ended so; 0 when it succeeded. */
static int step_code(const Pm__Scheduler__V1__StepResult *r)
{
    if (r->timed_out)
        return EXIT_TIMEOUT;
    if (r->signal > 0)
        return 128 + (r->signal & 0x7f);
    if (r->exit_code > 0 && r->exit_code <= 255)
        return r->exit_code;
    if (r->exit_code != 0 || (r->error && r->error[0]))
        return EXIT_FAIL;
    return 0;
}

/* "exit=3 wall=1.2ms command 2 failed error=..." for a step result. */
static void print_step_result(FILE *f, const Pm__Scheduler__V1__StepResult *r)
{
    char wall[32];
    format_us(wall, sizeof wall, r->wall_us);
    if (r->signal > 0)
        fprintf(f, "signal=%d", r->signal);
    else
        fprintf(f, "exit=%d", r->exit_code);
    fprintf(f, " wall=%s", wall);
    if (r->timed_out)
        fputs(" timed-out", f);
    if (r->cancelled)
        fputs(" cancelled", f);
    if (r->truncated)
        fputs(" truncated", f);
    if (step_code(r) != 0 && !r->error[0])
        fprintf(f, " (command %" PRIu32 ")", r->failed_command + 1);
    if (r->error && r->error[0])
        fprintf(f, " error=\"%s\"", r->error);
}

void print_params(const char *label, Pm__Scheduler__V1__Param **p, size_t n)
{
    if (n == 0)
        return;
    printf("%-10s", label);
    for (size_t i = 0; i < n; i++)
        printf(" %s=%s", p[i]->name, p[i]->value);
    putchar('\n');
}

static void print_task(const Pm__Scheduler__V1__Task *t)
{
    char c[40], u[40], fin[40];
    printf("id:       %s\n"
           "state:    %s\n"
           "pipeline: %s\n"
           "attempt:  %" PRIu32 " (%" PRIu32 " failed)\n"
           "worker:   %s\n"
           "created:  %s\n"
           "updated:  %s\n"
           "finished: %s\n",
           t->id, state_name(t->state), t->pipeline_name[0] ? t->pipeline_name : "(inline)",
           t->attempt, t->failed_attempts, t->worker[0] ? t->worker : "-",
           format_ms(c, sizeof c, t->created_ms), format_ms(u, sizeof u, t->updated_ms),
           format_ms(fin, sizeof fin, t->finished_ms));
    if (t->priority)
        printf("priority: %" PRId32 "\n", t->priority);
    if (t->pool[0])
        printf("pool:     %s\n", t->pool);
    if (t->idempotency_key[0])
        printf("key:      %s\n", t->idempotency_key);
    print_params("params:", t->params, t->n_params);
    print_params("labels:", t->labels, t->n_labels);
    if (t->error[0])
        printf("error:    %s\n", t->error);
    size_t nsteps = t->pipeline ? t->pipeline->n_steps : 0;
    if (nsteps == 0 && t->n_steps == 0)
        return;
    printf("steps:\n");
    for (size_t i = 0; i < nsteps || i < t->n_steps; i++) {
        const char *exe = i < nsteps ? t->pipeline->steps[i]->executor : "";
        const Pm__Scheduler__V1__StepResult *r = NULL;
        for (size_t k = 0; k < t->n_steps; k++)
            if (t->steps[k]->step == i)
                r = t->steps[k];
        if (r && !exe[0])
            exe = r->executor;
        printf("  %zu %-12s ", i + 1, exe);
        if (r)
            print_step_result(stdout, r);
        else
            fputs("not run", stdout);
        putchar('\n');
    }
}

/* Prints a Task as the user asked; returns 0 or EXIT_FAIL when stdout failed. */
static int show_task(const sched_flags *sf, const Pm__Scheduler__V1__Task *t)
{
    if (json_mode(sf)) {
        json_message(stdout, &t->base);
        putchar('\n');
    } else {
        print_task(t);
    }
    return fflush(stdout) == 0 && !ferror(stdout) ? 0 : EXIT_FAIL;
}

/* ---- watch ------------------------------------------------------------------------------ */

/* What the Watch callback needs and what it learns, across reconnections. */
typedef struct {
    bool json;
    bool progress;
    uint64_t last_seq;                  /* newest event shown; a resumed Watch starts after it */
    bool got_event;                     /* an event arrived during the current call */
    uint32_t attempt;                   /* attempt of the newest event */
    int fail_code;                      /* code of the attempt's failed step, 0 while none */
    Pm__Scheduler__V1__TaskState final; /* 0 until a final state arrives */
    int write_err;                      /* errno of a failed write of our own output, 0 if none */
} watch_view;

static const char *event_kind(const Pm__Scheduler__V1__WatchEvent *ev)
{
    if (ev->output)
        return ev->output->stream == 2 ? "stderr" : "stdout";
    if (ev->step_started)
        return "step_started";
    if (ev->step_exited)
        return "step_exited";
    return "state";
}

static int on_watch_event(const ProtobufCMessage *msg, void *arg)
{
    const Pm__Scheduler__V1__WatchEvent *ev = (const Pm__Scheduler__V1__WatchEvent *)msg;
    watch_view *v = arg;
    /* A resumed stream may repeat what we already showed, if the server replays generously. */
    if (ev->seq <= v->last_seq)
        return 0;
    v->last_seq = ev->seq;
    v->got_event = true;
    if (ev->attempt != v->attempt) {
        v->attempt = ev->attempt;
        v->fail_code = 0;
    }
    if (ev->step_exited && v->fail_code == 0)
        v->fail_code = step_code(ev->step_exited);
    bool is_state = !ev->output && !ev->step_started && !ev->step_exited;
    if (is_state && state_final(ev->state))
        v->final = ev->state;

    int rc = 0;
    if (v->json) {
        fputs("{\"event\":", stdout);
        json_string(stdout, event_kind(ev));
        json_message_members(stdout, msg, true);
        rc = json_end_line();
    } else if (ev->output) {
        int fd = ev->output->stream == 2 ? STDERR_FILENO : STDOUT_FILENO;
        rc = write_all(fd, ev->output->data.data, ev->output->data.len);
    } else if (ev->step_started) {
        if (v->progress)
            fprintf(stderr, "[step %" PRIu32 " %s] started on %s (attempt %" PRIu32 ")\n",
                    ev->step_started->step + 1, ev->step_started->executor,
                    ev->step_started->worker, ev->attempt);
    } else if (ev->step_exited) {
        const Pm__Scheduler__V1__StepResult *r = ev->step_exited;
        /* A failure is worth a line even without --progress: the exit code alone hides which
         * step it was. */
        if (v->progress || step_code(r) != 0) {
            fprintf(stderr, "[step %" PRIu32 " %s] ", r->step + 1, r->executor);
            print_step_result(stderr, r);
            fputc('\n', stderr);
        }
    } else if (ev->state != PM__SCHEDULER__V1__TASK_STATE__TASK_STATE_UNSPECIFIED) {
        fprintf(stderr, "pmctl: task %s %s (attempt %" PRIu32 ")%s%s\n", ev->id,
                state_name(ev->state), ev->attempt, ev->message[0] ? ": " : "", ev->message);
    }
    if (rc < 0) {
        /* Nobody reads our output any more; stop watching (the task itself goes on). */
        v->write_err = -rc;
        return 1;
    }
    return 0;
}

/* The exit code for a task in a final state; fail_code is its failed step's, or 0. */
static int final_code(Pm__Scheduler__V1__TaskState s, int fail_code)
{
    switch (s) {
    case PM__SCHEDULER__V1__TASK_STATE__SUCCEEDED:
        return EXIT_OK;
    case PM__SCHEDULER__V1__TASK_STATE__CANCELLED:
        return EXIT_CANCELLED;
    default:
        return fail_code ? fail_code : EXIT_FAIL;
    }
}

/*
 * The stream ended cleanly without a final state: the watch started after the last event of a
 * finished task, or the server closed it early. Get tells which; returns 1 when the task is
 * final (with *code set), 0 when it is not, or -1 when Get failed (with st set).
 */
static int task_final(cli_conn *c, const char *id, int *code, cli_status *st)
{
    Pm__Scheduler__V1__GetRequest req = PM__SCHEDULER__V1__GET_REQUEST__INIT;
    req.id = (char *)id;
    ProtobufCMessage *msg = NULL;
    if (cli_unary(c, METHOD_PREFIX "Get", &req.base, &pm__scheduler__v1__task__descriptor, &msg,
                  st) < 0)
        return -1;
    const Pm__Scheduler__V1__Task *t = (const Pm__Scheduler__V1__Task *)msg;
    int final = state_final(t->state);
    if (final) {
        int fail = 0;
        for (size_t i = 0; i < t->n_steps && !fail; i++)
            fail = step_code(t->steps[i]);
        *code = final_code(t->state, fail);
    }
    protobuf_c_message_free_unpacked(msg, NULL);
    return final;
}

/* Waits ms milliseconds unless a signal comes first; returns false when one did. */
static bool pause_ms(uint64_t ms)
{
    while (ms > 0 && !interrupted) {
        uint64_t step = ms < 50 ? ms : 50;
        struct timespec ts = {.tv_sec = 0, .tv_nsec = (long)step * 1000000L};
        nanosleep(&ts, NULL);
        ms -= step;
    }
    return !interrupted;
}

/*
 * Watches task id from after_seq on, calling Watch again after UNAVAILABLE (or a stream that ends
 * before the task does) for up to reconnect_ms from the break. A call that delivered events
 * restarts that window. Returns the exit code.
 */
static int watch_task(cli_conn *c, const char *id, watch_view *v, uint64_t reconnect_ms)
{
    uint64_t broke_at = 0, backoff = RECONNECT_FIRST_MS;
    int code;
    cli_status st;
    catch_signals();
    for (;;) {
        Pm__Scheduler__V1__WatchRequest req = PM__SCHEDULER__V1__WATCH_REQUEST__INIT;
        req.id = (char *)id;
        req.after_seq = v->last_seq;
        v->got_event = false;
        int rc = cli_stream(c, METHOD_PREFIX "Watch", &req.base,
                            &pm__scheduler__v1__watch_event__descriptor, on_watch_event, v, &st);
        if (rc == -ECANCELED && v->write_err) {
            if (v->write_err != EPIPE)
                fprintf(stderr, "pmctl: writing output: %s\n", strerror(v->write_err));
            return v->write_err == EPIPE ? 128 + SIGPIPE : EXIT_FAIL;
        }
        if (rc == 0 && v->final) {
            code = final_code(v->final, v->fail_code);
            break;
        }
        if (rc == 0) {
            int f = task_final(c, id, &code, &st);
            if (f == 1)
                break;
            if (f == 0) {
                st.code = GRPC_STATUS_UNAVAILABLE;
                snprintf(st.details, sizeof st.details,
                         "the stream ended before task %.200s did (after seq %" PRIu64 ")", id,
                         v->last_seq);
            }
            rc = -EREMOTEIO;
        }
        if (rc != -EREMOTEIO || st.code != GRPC_STATUS_UNAVAILABLE)
            return call_failed_as("Watch", cli_target(c), rc, &st);

        uint64_t now = rpc_now_us() / 1000;
        if (v->got_event || broke_at == 0) {
            broke_at = now;
            backoff = RECONNECT_FIRST_MS;
        }
        if (now - broke_at >= reconnect_ms)
            return call_failed_as("Watch", cli_target(c), rc, &st);
        if (!v->json && backoff == RECONNECT_FIRST_MS)
            fprintf(stderr, "pmctl: Watch: %s: %s; resuming after seq %" PRIu64 "\n",
                    cli_status_name(st.code), st.details, v->last_seq);
        uint64_t left = reconnect_ms - (now - broke_at);
        if (!pause_ms(backoff < left ? backoff : left)) {
            fprintf(stderr, "pmctl: interrupted (%s); stopped watching task %s\n",
                    strsignal(interrupted), id);
            return 128 + interrupted;
        }
        backoff = backoff * 2 < RECONNECT_MAX_MS ? backoff * 2 : RECONNECT_MAX_MS;
    }
    if (v->json) {
        fputs("{\"event\":\"end\",\"state\":", stdout);
        json_string(stdout, state_name(v->final ? v->final : PM__SCHEDULER__V1__TASK_STATE__DEAD));
        printf(",\"last_seq\":%" PRIu64 ",\"exit_code\":%d", v->last_seq, code);
        if (json_end_line() < 0)
            return EXIT_FAIL;
    }
    return code;
}

/* Flags of watch, also taken by submit --watch. */
typedef struct {
    bool progress;
    uint64_t reconnect_for;
} watch_flags;

#define WATCH_FLAGS(wf)                                                                            \
    {"progress", RPC_FLAG_BOOL, &(wf)->progress,                                                   \
     "a line per step on stderr (default: when stderr is a terminal)"},                            \
    {                                                                                              \
        "reconnect-for", RPC_FLAG_UINT, &(wf)->reconnect_for,                                      \
            "seconds to keep trying to resume a broken stream"                                     \
    }

#define WATCH_EPILOG                                                                               \
    "Output: the task's stdout and stderr chunks go to pmctl's stdout and stderr as raw bytes;\n"  \
    "state changes and failed steps are lines on stderr. With --output json every event is one\n"  \
    "line on stdout, {\"event\":\"state\"|\"step_started\"|\"stdout\"|\"stderr\"|\"step_exited\"," \
    "\"seq\":N,...}\n"                                                                             \
    "(output bytes base64 in output.data), then "                                                  \
    "{\"event\":\"end\",\"state\":...,\"exit_code\":N}.\n"                                         \
    "A broken stream (UNAVAILABLE) is resumed after the last event seen, so nothing is lost or\n"  \
    "repeated, for up to --reconnect-for seconds after the break. Ctrl-C stops watching only;\n"   \
    "the task goes on (pmctl cancel stops it).\n"                                                  \
    "Exit codes: 0 SUCCEEDED; FAILED or DEAD: the failed step's code (its exit code, 128+N for\n"  \
    "signal N, 124 for a timeout), else 1; 130 CANCELLED; 1 when a call failed or the stream\n"    \
    "could not be resumed (pmctl: Watch: STATUS: details); 2 on a usage error."

static int start_watch(cli_conn *c, const sched_flags *sf, const watch_flags *wf, const char *id,
                       uint64_t after)
{
    watch_view v = {
        .json = json_mode(sf),
        .progress = wf->progress || isatty(STDERR_FILENO),
        .last_seq = after,
    };
    uint64_t ms = wf->reconnect_for > UINT64_MAX / 1000 ? UINT64_MAX : wf->reconnect_for * 1000;
    return watch_task(c, id, &v, ms);
}

/* A Watch is long-lived, so its channel retries a lost server often (see cli_config). */
static void for_watching(sched_flags *sf)
{
    sf->conn.max_reconnect_backoff_ms = RECONNECT_MAX_MS;
}

int cmd_watch(int argc, char **argv)
{
    sched_flags sf = SCHED_FLAGS_INIT;
    watch_flags wf = {.reconnect_for = 30};
    uint64_t after = 0;
    const rpc_flag flags[] = {
        SCHED_FLAGS(&sf),
        WATCH_FLAGS(&wf),
        {"after", RPC_FLAG_UINT, &after, "show only events after this seq"},
    };
    const cmd_spec spec = {
        .synopsis = "usage: pmctl watch ID [flags]\n\n"
                    "Follows a task: its output as it is produced, its state changes, and ends\n"
                    "when the task does, with an exit code that follows its final state.",
        .epilog = WATCH_EPILOG,
        .flags = flags,
        .nflags = sizeof flags / sizeof flags[0],
        .interspersed = true,
    };
    parsed_args pa;
    cli_conn *c = NULL;
    int code = parse_args("watch", &spec, argc, argv, &pa);
    if (code != 0)
        goto out;
    for_watching(&sf);
    code = sched_open("watch", &sf, &pa, 1, 1, "the task ID", &c);
    if (code != 0)
        goto out;
    code = start_watch(c, &sf, &wf, pa.pos[0], after);
out:
    cli_close(c);
    parsed_free(&pa);
    return code < 0 ? EXIT_OK : code;
}

/* ---- submit ----------------------------------------------------------------------------- */

int cmd_submit(int argc, char **argv)
{
    sched_flags sf = SCHED_FLAGS_INIT;
    watch_flags wf = {.reconnect_for = 30};
    const char *pipeline = NULL, *key = NULL, *priority = NULL, *pool = NULL;
    uint64_t max_attempts = 0, step_timeout = 0, total_timeout = 0, output_cap = 0;
    bool watch = false;
    str_list params = {0}, labels = {0}, retry_codes = {0};
    const rpc_flag flags[] = {
        SCHED_FLAGS(&sf),
        {"pipeline", RPC_FLAG_STRING, &pipeline, "submit the stored pipeline NAME, not a FILE"},
        {"key", RPC_FLAG_STRING, &key, "idempotency key: a known key returns its task"},
        {"priority", RPC_FLAG_STRING, &priority, "higher runs first (may be negative)"},
        {"max-attempts", RPC_FLAG_UINT, &max_attempts, "attempts before DEAD; 0: the scheduler's"},
        {"step-timeout-ms", RPC_FLAG_UINT, &step_timeout, "limit per step; 0: none"},
        {"total-timeout-ms", RPC_FLAG_UINT, &total_timeout, "limit for the task; 0: none"},
        {"output-cap", RPC_FLAG_UINT, &output_cap, "output kept per step; 0: the scheduler's"},
        {"pool", RPC_FLAG_STRING, &pool, "worker pool; default: the first with every executor"},
        {"watch", RPC_FLAG_BOOL, &watch, "then follow the task as pmctl watch does"},
        WATCH_FLAGS(&wf),
    };
    const list_flag lists[] = {
        {"param", "-p", "NAME=VALUE", "fills {{NAME}} in the command lines", &params},
        {"label", NULL, "KEY=VALUE", "label to find the task by", &labels},
        {"retry-exit-code", NULL, "N", "a step exiting with N is retried", &retry_codes},
    };
    const cmd_spec spec = {
        .synopsis = "usage: pmctl submit FILE.json [flags]\n"
                    "       pmctl submit --pipeline NAME [flags]\n\n"
                    "Submits a pipeline (FILE, or '-' for stdin, is sent as it is) and prints the\n"
                    "task's id, or the Task as one JSON line with --output json. With --watch the\n"
                    "id goes to stderr and pmctl then follows the task (see pmctl watch --help).",
        .epilog = "Exit codes: 0 submitted; with --watch those of pmctl watch; 1 when the call "
                  "failed\n(pmctl: Submit: STATUS: details); 2 on a usage error.",
        .flags = flags,
        .nflags = sizeof flags / sizeof flags[0],
        .interspersed = true,
        .lists = lists,
        .nlists = sizeof lists / sizeof lists[0],
    };
    parsed_args pa;
    cli_conn *c = NULL;
    char *text = NULL;
    int32_t *codes = NULL;
    param_list pp = {0}, lp = {0};
    ProtobufCMessage *msg = NULL;
    int code = parse_args("submit", &spec, argc, argv, &pa);
    if (code != 0)
        goto out;
    if ((pipeline != NULL) == (pa.npos > 0)) {
        fprintf(stderr, "pmctl submit: give either FILE.json or --pipeline NAME (see --help)\n");
        code = EXIT_USAGE;
        goto out;
    }
    if (step_timeout > UINT32_MAX || total_timeout > UINT32_MAX || max_attempts > UINT32_MAX) {
        fprintf(stderr, "pmctl submit: timeouts and --max-attempts are at most %" PRIu32 "\n",
                UINT32_MAX);
        code = EXIT_USAGE;
        goto out;
    }
    long long prio = 0;
    if (priority &&
        (code = parse_int("submit", "--priority", priority, INT32_MIN, INT32_MAX, &prio)) != 0)
        goto out;
    codes = calloc(retry_codes.n ? retry_codes.n : 1, sizeof *codes);
    if (!codes) {
        fprintf(stderr, "pmctl: out of memory\n");
        code = EXIT_FAIL;
        goto out;
    }
    for (size_t i = 0; i < retry_codes.n; i++) {
        long long v;
        code = parse_int("submit", "--retry-exit-code", retry_codes.v[i], INT32_MIN, INT32_MAX, &v);
        if (code != 0)
            goto out;
        codes[i] = (int32_t)v;
    }
    if ((code = params_from("submit", "--param", &params, &pp)) != 0 ||
        (code = params_from("submit", "--label", &labels, &lp)) != 0)
        goto out;
    if (pa.npos > 1) {
        fprintf(stderr, "pmctl submit: unexpected argument \"%s\" (see --help)\n", pa.pos[1]);
        code = EXIT_USAGE;
        goto out;
    }
    if (pa.npos == 1) {
        char err[512];
        const char *path = strcmp(pa.pos[0], "-") ? pa.pos[0] : "/dev/stdin";
        if (rpc_read_file(path, MAX_PIPELINE_FILE, false, &text, NULL, err, sizeof err) < 0) {
            fprintf(stderr, "pmctl submit: pipeline file %s\n", err);
            code = EXIT_FAIL;
            goto out;
        }
    }
    if (watch)
        for_watching(&sf);
    code = sched_open("submit", &sf, &pa, 0, 1, "FILE.json", &c);
    if (code != 0)
        goto out;

    Pm__Scheduler__V1__RetryPolicy retry = PM__SCHEDULER__V1__RETRY_POLICY__INIT;
    retry.max_attempts = (uint32_t)max_attempts;
    retry.n_retryable_exit_codes = retry_codes.n;
    retry.retryable_exit_codes = codes;
    Pm__Scheduler__V1__SubmitRequest req = PM__SCHEDULER__V1__SUBMIT_REQUEST__INIT;
    req.pipeline_json = text ? text : (char *)"";
    req.pipeline_name = (char *)(pipeline ? pipeline : "");
    req.n_params = pp.n;
    req.params = pp.ptrs;
    req.idempotency_key = (char *)(key ? key : "");
    req.retry = &retry;
    req.step_timeout_ms = (uint32_t)step_timeout;
    req.total_timeout_ms = (uint32_t)total_timeout;
    req.priority = (int32_t)prio;
    req.n_labels = lp.n;
    req.labels = lp.ptrs;
    req.output_cap = output_cap;
    req.pool = (char *)(pool ? pool : "");
    code = sched_call(c, "Submit", &req.base, &pm__scheduler__v1__task__descriptor, &msg);
    if (code != 0)
        goto out;
    const Pm__Scheduler__V1__Task *t = (const Pm__Scheduler__V1__Task *)msg;
    if (json_mode(&sf)) {
        code = show_task(&sf, t);
    } else if (watch) {
        fprintf(stderr, "pmctl: task %s%s\n", t->id, t->created ? "" : " (already submitted)");
    } else {
        printf("%s\n", t->id);
        code = fflush(stdout) == 0 ? 0 : EXIT_FAIL;
    }
    if (code == 0 && watch)
        code = start_watch(c, &sf, &wf, t->id, 0);
out:
    if (msg)
        protobuf_c_message_free_unpacked(msg, NULL);
    params_free(&pp);
    params_free(&lp);
    free(codes);
    free(text);
    cli_close(c);
    parsed_free(&pa);
    list_free(&params);
    list_free(&labels);
    list_free(&retry_codes);
    return code < 0 ? EXIT_OK : code;
}

/* ---- get, cancel, requeue --------------------------------------------------------------- */

/* The three calls that take a task id and answer with the Task. */
static int task_call(int argc, char **argv, const char *cmd, const char *method,
                     const char *summary)
{
    sched_flags sf = SCHED_FLAGS_INIT;
    const rpc_flag flags[] = {SCHED_FLAGS(&sf)};
    char synopsis[256];
    snprintf(synopsis, sizeof synopsis, "usage: pmctl %s ID [flags]\n\n%s", cmd, summary);
    const cmd_spec spec = {
        .synopsis = synopsis,
        .epilog = SCHED_EPILOG,
        .flags = flags,
        .nflags = sizeof flags / sizeof flags[0],
        .interspersed = true,
    };
    parsed_args pa;
    cli_conn *c = NULL;
    ProtobufCMessage *msg = NULL;
    int code = parse_args(cmd, &spec, argc, argv, &pa);
    if (code != 0)
        goto out;
    code = sched_open(cmd, &sf, &pa, 1, 1, "the task ID", &c);
    if (code != 0)
        goto out;
    /* Three request types with the same one field; the method picks which. */
    Pm__Scheduler__V1__GetRequest get = PM__SCHEDULER__V1__GET_REQUEST__INIT;
    Pm__Scheduler__V1__CancelRequest cancel = PM__SCHEDULER__V1__CANCEL_REQUEST__INIT;
    Pm__Scheduler__V1__RequeueRequest requeue = PM__SCHEDULER__V1__REQUEUE_REQUEST__INIT;
    get.id = cancel.id = requeue.id = pa.pos[0];
    const ProtobufCMessage *req = !strcmp(method, "Cancel")    ? &cancel.base
                                  : !strcmp(method, "Requeue") ? &requeue.base
                                                               : &get.base;
    code = sched_call(c, method, req, &pm__scheduler__v1__task__descriptor, &msg);
    if (code == 0)
        code = show_task(&sf, (const Pm__Scheduler__V1__Task *)msg);
out:
    if (msg)
        protobuf_c_message_free_unpacked(msg, NULL);
    cli_close(c);
    parsed_free(&pa);
    return code < 0 ? EXIT_OK : code;
}

int cmd_get(int argc, char **argv)
{
    return task_call(argc, argv, "get", "Get",
                     "Prints a task: state, attempt, worker, and each step's result.");
}

int cmd_cancel(int argc, char **argv)
{
    return task_call(argc, argv, "cancel", "Cancel",
                     "Cancels a queued or running task (running steps are stopped on their\n"
                     "executor) and prints it.");
}

int cmd_requeue(int argc, char **argv)
{
    return task_call(argc, argv, "requeue", "Requeue",
                     "Puts a task in a final state (FAILED, DEAD, CANCELLED...) back in the queue\n"
                     "with a fresh attempt budget, and prints it.");
}

/*
 * Internals shared by the pmctl sources: exit codes, the interrupt flag set by the signal handler,
 * the command-line and connection helpers of pmctl_args.c, the step-running code that exec, step
 * and run share (pmctl_cmds.c), the output helpers (raw writes, JSON lines, exit-code mapping) in
 * pmctl_output.c and pmctl_json.c, and the subcommand entry points that the table in pmctl.c
 * dispatches to. Not a public interface; only pmctl's own files include it.
 */
#ifndef PM_CLI_PMCTL_H
#define PM_CLI_PMCTL_H

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "cli/client.h"
#include "rpc/rpc.h"

/* Exit codes; a remote command's own code is passed on as it is. */
#define EXIT_OK 0
#define EXIT_FAIL 1
#define EXIT_USAGE 2
#define EXIT_TIMEOUT 124 /* as timeout(1) */

/* The signal that interrupted us, polled by the client library; 0 while none has. */
extern volatile sig_atomic_t interrupted;

/* Installs the handlers that set interrupted (pmctl.c). */
void catch_signals(void);

/* ---- pmctl_args.c: command lines and connections ---- */

typedef struct {
    size_t n, cap;
    const char **v;
} str_list;

/*
 * A flag that may be given many times (--env K=V, -c LINE). rpc_flags_parse keeps one value per
 * flag, so these are taken out of argv before it runs; they are command-line only.
 */
typedef struct {
    const char *name;  /* long form without "--" */
    const char *alias; /* a short form such as "-c", or NULL */
    const char *value; /* what the value looks like, for --help */
    const char *help;
    str_list *dst;
} list_flag;

/* Everything a subcommand declares about its command line. */
typedef struct {
    const char *synopsis;
    const char *epilog;
    const rpc_flag *flags;
    size_t nflags;
    const list_flag *lists;
    size_t nlists;
    /*
     * Flags may come after positionals, up to "--" (submit FILE -p x=1). Off for exec, whose
     * command's own arguments start at the first positional.
     */
    bool interspersed;
} cmd_spec;

/* Positional arguments left after the flags; pos points into the caller's argv strings. */
typedef struct {
    char **argv; /* the flags rpc_flags_parse saw, then the positionals (owned array) */
    int npos;
    char **pos;
} parsed_args;

/* How to reach one server; the flag rows below fill it in. */
typedef struct {
    const char *target;
    const char *target_flag; /* the flag naming the server, for messages; NULL: "target" */
    const char *token_file;
    const char *tls_ca;
    const char *tls_server_name;
    uint64_t deadline_ms;
    uint32_t max_reconnect_backoff_ms; /* not a flag; see cli_config */
} conn_flags;

/* Flag table rows shared by every subcommand that connects; kept one row per flag. */
/* clang-format off */
#define CONN_FLAGS(cf)                                                                            \
    {"target", RPC_FLAG_STRING, &(cf)->target, "server address: host:port or unix:/path"},        \
    CONN_AUTH_FLAGS(cf)

/* Everything about a connection but the address, for commands that find addresses otherwise. */
#define CONN_AUTH_FLAGS(cf)                                                                       \
    {"token-file", RPC_FLAG_STRING, &(cf)->token_file, "file holding the bearer token to send"},  \
    {"tls-ca", RPC_FLAG_STRING, &(cf)->tls_ca,                                                    \
     "PEM root certificates; connect with TLS (default plaintext)"},                              \
    {"tls-server-name", RPC_FLAG_STRING, &(cf)->tls_server_name,                                  \
     "name the server certificate carries, if not the target's host"},                            \
    {"deadline-ms", RPC_FLAG_UINT, &(cf)->deadline_ms, "deadline of the whole call; 0: none"}
/* clang-format on */

/* Appends to a list flag's values; returns 0 or -ENOMEM. */
int list_add(str_list *l, const char *s);
void list_free(str_list *l);

/*
 * Parses argv (argv[0] is the subcommand) against s. Returns 0, or the exit code to leave with:
 * after --help it has printed the usage and returns -1 for "exit 0"; on a usage error it has
 * printed why and returns EXIT_USAGE. pa must be released with parsed_free in every case.
 */
int parse_args(const char *cmd, const cmd_spec *s, int argc, char **argv, parsed_args *pa);
void parsed_free(parsed_args *pa);

/* Opens the connection; returns 0 or the exit code to leave with, having said why. */
int open_conn(const char *cmd, const conn_flags *cf, cli_conn **out);

/* Flags shared by exec, step and run. */
typedef struct {
    conn_flags conn;
    uint64_t timeout_ms;
    uint64_t output_cap;
    const char *workdir;
    const char *stdin_file;
    const char *output;
    const char *sandbox_profile;
    bool clear_env;
    str_list env;
} run_flags;

/* clang-format off */
#define RUN_FLAGS(rf) CONN_FLAGS(&(rf)->conn), STEP_FLAGS(rf)

/* What a step's Run request carries besides its commands; run finds addresses itself. */
#define STEP_FLAGS(rf)                                                                            \
    {"timeout-ms", RPC_FLAG_UINT, &(rf)->timeout_ms,                                              \
     "wall-clock limit per command, enforced by the executor; 0: none"},                          \
    {"workdir", RPC_FLAG_STRING, &(rf)->workdir, "working directory of the commands"},            \
    {"stdin-file", RPC_FLAG_STRING, &(rf)->stdin_file,                                            \
     "file whose bytes become each command's stdin ('-': ours)"},                                 \
    {"output-cap", RPC_FLAG_UINT, &(rf)->output_cap,                                              \
     "bytes of output kept per command; 0: the executor's"},                                      \
    {"sandbox-profile", RPC_FLAG_STRING, &(rf)->sandbox_profile,                                  \
     "sandbox profile, only tighter than the executor's"},                                        \
    {"clear-env", RPC_FLAG_BOOL, &(rf)->clear_env,                                                \
     "start from an empty environment, not the executor's"},                                      \
    {"output", RPC_FLAG_STRING, &(rf)->output, "text, or json: one object per event"}

#define ENV_LIST(rf) {"env", NULL, "K=V", "environment entry for the commands", &(rf)->env}
/* clang-format on */

#define RUN_EPILOG                                                                                 \
    "Output: stdout and stderr chunks are written to pmctl's stdout and stderr as raw bytes the\n" \
    "moment they arrive. With --output json every event is one line on stdout instead:\n"          \
    "{\"command\":0,\"event\":\"started\"|\"stdout\"|\"stderr\"|\"exited\",...}, chunks in\n"      \
    "\"data_base64\", then a last line {\"event\":\"end\",\"status\":\"OK\",...}.\n"               \
    "Ctrl-C cancels the call; the executor then stops the command's process group.\n"              \
    "Exit codes: the command's own; 128+N when signal N ended it; 124 when it timed out or the\n"  \
    "deadline passed; 1 when the executor could not be reached or refused the request (printed\n"  \
    "as pmctl: TARGET: STATUS: details); 2 on a usage error."

/* Checks the flags exec, step and run share; returns 0 or EXIT_USAGE having said why. */
int check_run_flags(const char *cmd, const run_flags *rf);

/* Reads --stdin-file (none: *buf NULL); returns 0 or EXIT_FAIL having said why. */
int load_stdin(const char *cmd, const run_flags *rf, char **buf, size_t *len);

/* How one step is run, beyond what run_flags says. */
typedef struct {
    bool continue_on_error;
    bool progress;          /* a line per command on stderr */
    bool shell_hint;        /* see run_view */
    int step;               /* pipeline step for JSON lines, or -1 */
    uint32_t timeout_ms;    /* per-command limit; 0: --timeout-ms */
    const char *stdin_data; /* fed to every command */
    size_t stdin_len;
} step_opts;

/*
 * Sends one step to c, streams its events and works out the exit code: a gRPC failure first, then
 * the first failing command's code, else 0. cmds must already be filled in; this adds the flags.
 * In JSON mode it ends with an "end" line.
 */
int run_step_on(cli_conn *c, const run_flags *rf, const step_opts *o,
                Pm__Executor__V1__Command **cmds, size_t n);

/* What the event callback needs and what it learns while the step runs. */
typedef struct {
    bool json;
    bool progress;
    bool shell_hint; /* one argv word with a space in it: the user may have meant --shell */
    int step;        /* pipeline step, named in JSON lines; -1 outside a pipeline */
    size_t n;        /* commands in the step */
    bool *exited;    /* per command: its exit event has come */
    int first_fail;  /* exit code of the first failing command, 0 while none has failed */
    int write_err;   /* errno of a failed write of our own output, 0 if none */
} run_view;

/* ---- pmctl_output.c ---- */

/* Writes all of data to fd, retrying on EINTR; returns 0 or -errno. */
int write_all(int fd, const void *data, size_t len);
/* Writes s as a JSON string literal. */
void json_string(FILE *f, const char *s);
/* Writes n bytes as a JSON string of their base64. */
void json_base64(FILE *f, const uint8_t *p, size_t n);
/* Formats a duration in microseconds for people: 850us, 12.3ms, 4.56s. */
void format_us(char *buf, size_t size, uint64_t us);
/* Ends a JSON line and pushes it out at once; returns 0 or -errno. */
int json_end_line(void);
/* The exit code for a call that did not end with OK, having said why ("pmctl: TARGET: ..."). */
int call_failed(const cli_conn *c, int rc, const cli_status *st);
/*
 * The same, naming the call as what ("pmctl: Watch: UNAVAILABLE: ..."); target is for the note
 * on an interrupted call.
 */
int call_failed_as(const char *what, const char *target, int rc, const cli_status *st);
/* The cli_run callback: prints one event (arg is a run_view) and records exits. */
int on_run_event(const Pm__Executor__V1__RunEvent *ev, void *arg);

/* ---- pmctl_json.c ---- */

/*
 * Writes the fields of m as JSON members, without braces, a comma first when comma is set;
 * returns how many were written. Names are the .proto names, enums their value names, bytes
 * base64; an absent message field is left out.
 */
int json_message_members(FILE *f, const ProtobufCMessage *m, bool comma);
/* Writes m as one JSON object. */
void json_message(FILE *f, const ProtobufCMessage *m);

/* ---- pmctl_cmds.c: the subcommands, each taking argv with argv[0] its own name ---- */

int cmd_exec(int argc, char **argv);
int cmd_step(int argc, char **argv);
int cmd_info(int argc, char **argv);
int cmd_health(int argc, char **argv);
int cmd_legacy(int argc, char **argv);

/* ---- pmctl_run.c: a whole pipeline straight on one worker's executors ---- */

int cmd_run(int argc, char **argv);

/* ---- pmctl_sched.c: scheduler mode ---- */

int cmd_submit(int argc, char **argv);
int cmd_watch(int argc, char **argv);
int cmd_get(int argc, char **argv);
int cmd_cancel(int argc, char **argv);
int cmd_requeue(int argc, char **argv);
int cmd_list(int argc, char **argv);
int cmd_pipelines(int argc, char **argv);
int cmd_workers(int argc, char **argv);

#endif

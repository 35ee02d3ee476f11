/*
 * Internals shared by the pmctl sources: exit codes, the interrupt flag set by the signal handler,
 * the view the run-event callback works on, the output helpers (raw writes, JSON lines, exit-code
 * mapping) in pmctl_output.c, and the subcommand entry points in pmctl_cmds.c that the table in
 * pmctl.c dispatches to. Not a public interface; only pmctl's own files include it.
 */
#ifndef PM_CLI_PMCTL_H
#define PM_CLI_PMCTL_H

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "cli/client.h"

/* Exit codes; a remote command's own code is passed on as it is. */
#define EXIT_OK 0
#define EXIT_FAIL 1
#define EXIT_USAGE 2
#define EXIT_TIMEOUT 124 /* as timeout(1) */

/* The signal that interrupted us, polled by the client library; 0 while none has. */
extern volatile sig_atomic_t interrupted;

/* Installs the handlers that set interrupted (pmctl.c). */
void catch_signals(void);

/* What the event callback needs and what it learns while the step runs. */
typedef struct {
    bool json;
    bool progress;
    bool shell_hint; /* one argv word with a space in it: the user may have meant --shell */
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
/* Ends a JSON line and pushes it out at once; returns 0 or -errno. */
int json_end_line(void);
/* The exit code for a call that did not end with OK, having said why. */
int call_failed(const cli_conn *c, int rc, const cli_status *st);
/* The cli_run callback: prints one event (arg is a run_view) and records exits. */
int on_run_event(const Pm__Executor__V1__RunEvent *ev, void *arg);

/* ---- pmctl_cmds.c: the subcommands, each taking argv with argv[0] its own name ---- */

int cmd_exec(int argc, char **argv);
int cmd_step(int argc, char **argv);
int cmd_info(int argc, char **argv);
int cmd_health(int argc, char **argv);
int cmd_legacy(int argc, char **argv);

#endif

/*
 * pmctl: the command-line client. The first argument names a subcommand, looked up in one table;
 * each subcommand parses its own flags (every flag also settable as PM_<NAME>) and talks to its
 * server through cli/client.h. Direct-mode subcommands (exec, step, info, health, legacy, run) call
 * executors themselves; scheduler-mode subcommands (pmctl_sched.c) call pm-scheduler. Output
 * of a remote command is written as raw bytes the moment it arrives, or as one JSON object per
 * event for scripts, and pmctl exits with the command's own exit code. This file holds main, the
 * subcommand table and dispatch, and the signal handling that lets Ctrl-C cancel a call; the
 * subcommands are in pmctl_cmds.c and the output code in pmctl_output.c.
 */
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "cli/pmctl.h"
#include "rpc/rpc.h"

volatile sig_atomic_t interrupted;

static void on_signal(int sig)
{
    interrupted = sig;
}

/*
 * The first SIGINT/SIGTERM/SIGHUP cancels the call, so the executor stops the remote process
 * group; SA_RESETHAND lets a second one kill pmctl at once if the executor does not answer.
 */
void catch_signals(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sa.sa_flags = SA_RESETHAND;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGHUP, &sa, NULL);
}

/* ---- dispatch --------------------------------------------------------------------------- */

typedef struct {
    const char *name;
    const char *group; /* heading in the overview; scheduler commands get their own */
    const char *summary;
    int (*fn)(int argc, char **argv);
} subcommand;

static const subcommand subcommands[] = {
    {"exec", "Direct mode (calls executors itself, no scheduler)",
     "run one command on an executor, streaming its output", cmd_exec},
    {"step", "Direct mode (calls executors itself, no scheduler)",
     "run several shell lines as one step", cmd_step},
    {"info", "Direct mode (calls executors itself, no scheduler)", "describe an executor",
     cmd_info},
    {"health", "Direct mode (calls executors itself, no scheduler)",
     "ask a server's grpc.health.v1 service", cmd_health},
    {"legacy", "Direct mode (calls executors itself, no scheduler)",
     "call the original exec.ExecService/ExecuteCommands", cmd_legacy},
    {"run", "Direct mode (calls executors itself, no scheduler)",
     "run a pipeline JSON step by step on one worker's executors", cmd_run},
    {"submit", "Scheduler mode (talks to pm-scheduler at --scheduler)",
     "submit a pipeline (file or stored), optionally --watch it", cmd_submit},
    {"watch", "Scheduler mode (talks to pm-scheduler at --scheduler)",
     "follow a task's output and state to its end", cmd_watch},
    {"get", "Scheduler mode (talks to pm-scheduler at --scheduler)",
     "show a task: state, attempt, worker, steps", cmd_get},
    {"cancel", "Scheduler mode (talks to pm-scheduler at --scheduler)",
     "cancel a queued or running task", cmd_cancel},
    {"requeue", "Scheduler mode (talks to pm-scheduler at --scheduler)",
     "put a finished task back in the queue", cmd_requeue},
    {"list", "Scheduler mode (talks to pm-scheduler at --scheduler)",
     "list tasks, filtered by state, pipeline, label", cmd_list},
    {"pipelines", "Scheduler mode (talks to pm-scheduler at --scheduler)",
     "put, get or list stored pipelines", cmd_pipelines},
    {"workers", "Scheduler mode (talks to pm-scheduler at --scheduler)",
     "list worker pods and their executors' health", cmd_workers},
};
#define NSUBCOMMANDS (sizeof subcommands / sizeof subcommands[0])

static void overview(FILE *out)
{
    fprintf(out, "usage: pmctl COMMAND [flags] [-- ARGS]\n");
    const char *group = NULL;
    for (size_t i = 0; i < NSUBCOMMANDS; i++) {
        if (!group || strcmp(group, subcommands[i].group) != 0) {
            group = subcommands[i].group;
            fprintf(out, "\n%s:\n", group);
        }
        fprintf(out, "  %-10s %s\n", subcommands[i].name, subcommands[i].summary);
    }
    fprintf(out, "\n'pmctl COMMAND --help' lists a command's flags. Each flag can also be set by "
                 "the\nenvironment variable PM_<FLAG> (upper case, '-' as '_'), e.g. PM_TARGET.\n"
                 "Exit codes: 0 ok, 1 runtime failure, 2 usage error; exec, step and run pass on\n"
                 "the command's exit code, watch the task's (see pmctl watch --help).\n");
}

static const subcommand *find_subcommand(const char *name)
{
    for (size_t i = 0; i < NSUBCOMMANDS; i++)
        if (!strcmp(subcommands[i].name, name))
            return &subcommands[i];
    return NULL;
}

int main(int argc, char **argv)
{
    /* A closed output pipe shows up as EPIPE, so the remote command can be cancelled first. */
    signal(SIGPIPE, SIG_IGN);
    if (argc < 2) {
        overview(stderr);
        return EXIT_USAGE;
    }
    const char *name = argv[1];
    if (!strcmp(name, "--help") || !strcmp(name, "-h")) {
        overview(stdout);
        return EXIT_OK;
    }
    if (!strcmp(name, "--version") || !strcmp(name, "version")) {
        printf("pmctl %s\n", PM_VERSION);
        return EXIT_OK;
    }
    if (!strcmp(name, "help")) {
        if (argc < 3) {
            overview(stdout);
            return EXIT_OK;
        }
        const subcommand *s = find_subcommand(argv[2]);
        if (!s) {
            fprintf(stderr, "pmctl: unknown command \"%s\" (see pmctl --help)\n", argv[2]);
            return EXIT_USAGE;
        }
        char *help_argv[] = {argv[2], (char *)"--help", NULL};
        return s->fn(2, help_argv);
    }
    const subcommand *s = find_subcommand(name);
    if (!s) {
        fprintf(stderr, "pmctl: unknown command \"%s\" (see pmctl --help)\n", name);
        return EXIT_USAGE;
    }
    return s->fn(argc - 1, argv + 1);
}

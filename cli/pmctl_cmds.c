/*
 * pmctl subcommands: exec, step, info, health and legacy. Each declares its flags (every one also
 * settable as PM_<NAME>) plus repeatable list flags, parses its own command line, opens the
 * connection to its server through cli/client.h, makes its call and returns the exit code. exec,
 * step and run (pmctl_run.c) share the step-running code here that builds the Run request and
 * streams its events.
 */
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/client.h"
#include "cli/pmctl.h"
#include "rpc/rpc.h"

/* Largest --stdin-file sent; the executor has its own, usually smaller, request limit. */
#define MAX_STDIN_BYTES (16u << 20)

/* ---- running a step (exec, step and run) ----------------------------------------------- */

int check_run_flags(const char *cmd, const run_flags *rf)
{
    if (strcmp(rf->output, "text") != 0 && strcmp(rf->output, "json") != 0) {
        fprintf(stderr, "pmctl %s: --output wants text or json, got \"%s\"\n", cmd, rf->output);
        return EXIT_USAGE;
    }
    for (size_t i = 0; i < rf->env.n; i++) {
        const char *eq = strchr(rf->env.v[i], '=');
        if (!eq || eq == rf->env.v[i]) {
            fprintf(stderr, "pmctl %s: --env wants KEY=VALUE, got \"%s\"\n", cmd, rf->env.v[i]);
            return EXIT_USAGE;
        }
    }
    if (rf->timeout_ms > UINT32_MAX) {
        fprintf(stderr, "pmctl %s: --timeout-ms is at most %" PRIu32 "\n", cmd, UINT32_MAX);
        return EXIT_USAGE;
    }
    return 0;
}

int load_stdin(const char *cmd, const run_flags *rf, char **buf, size_t *len)
{
    char err[512];
    *buf = NULL;
    *len = 0;
    if (!rf->stdin_file)
        return 0;
    const char *path = strcmp(rf->stdin_file, "-") ? rf->stdin_file : "/dev/stdin";
    if (rpc_read_file(path, MAX_STDIN_BYTES, false, buf, len, err, sizeof err) < 0) {
        fprintf(stderr, "pmctl %s: --stdin-file %s\n", cmd, err);
        return EXIT_FAIL;
    }
    return 0;
}

int run_step_on(cli_conn *c, const run_flags *rf, const step_opts *o,
                Pm__Executor__V1__Command **cmds, size_t n)
{
    int code;
    bool *exited = calloc(n, sizeof *exited);
    if (!exited) {
        fprintf(stderr, "pmctl: out of memory\n");
        return EXIT_FAIL;
    }
    for (size_t i = 0; i < n; i++) {
        cmds[i]->stdin_data.data = (uint8_t *)o->stdin_data;
        cmds[i]->stdin_data.len = o->stdin_len;
    }

    Pm__Executor__V1__RunRequest req = PM__EXECUTOR__V1__RUN_REQUEST__INIT;
    req.n_commands = n;
    req.commands = cmds;
    req.n_env = rf->env.n;
    req.env = (char **)rf->env.v;
    req.clear_env = rf->clear_env;
    req.workdir = (char *)(rf->workdir ? rf->workdir : "");
    req.timeout_ms = o->timeout_ms ? o->timeout_ms : (uint32_t)rf->timeout_ms;
    req.output_cap = rf->output_cap;
    req.sandbox_profile = (char *)(rf->sandbox_profile ? rf->sandbox_profile : "");
    req.continue_on_error = o->continue_on_error;

    run_view v = {
        .json = !strcmp(rf->output, "json"),
        .progress = o->progress,
        .shell_hint = o->shell_hint,
        .step = o->step,
        .n = n,
        .exited = exited,
    };
    cli_status st;
    catch_signals();
    int rc = cli_run(c, &req, on_run_event, &v, &st);

    if (rc == -ECANCELED && v.write_err) {
        /* Our reader went away; a closed pipe ends quietly, as it would for any filter. */
        if (v.write_err != EPIPE)
            fprintf(stderr, "pmctl: writing output: %s\n", strerror(v.write_err));
        code = v.write_err == EPIPE ? 128 + SIGPIPE : EXIT_FAIL;
        goto out;
    }
    if (rc < 0) {
        code = call_failed(c, rc, &st);
    } else {
        code = v.first_fail;
        size_t missing = 0;
        for (size_t i = 0; i < n; i++) {
            if (exited[i])
                continue;
            missing++;
            if (o->progress)
                fprintf(stderr, "[%zu/%zu] not run\n", i + 1, n);
        }
        /* Commands after a failure are skipped by design; otherwise each must report. */
        if (code == 0 && missing) {
            fprintf(stderr, "pmctl: %s: the step ended with %zu of %zu commands unreported\n",
                    cli_target(c), missing, n);
            code = EXIT_FAIL;
        }
    }
    if (v.json) {
        putchar('{');
        if (o->step >= 0)
            printf("\"step\":%d,", o->step);
        fputs("\"event\":\"end\",\"status\":", stdout);
        json_string(stdout, cli_status_name(st.code));
        fputs(",\"details\":", stdout);
        json_string(stdout, st.details);
        fprintf(stdout, ",\"exit_code\":%d", code);
        json_end_line();
    }
out:
    free(exited);
    return code;
}

/* Runs one step on the --target executor: exec's and step's whole call. */
static int run_step(const char *cmd, const run_flags *rf, const step_opts *opts,
                    Pm__Executor__V1__Command **cmds, size_t n)
{
    step_opts o = *opts;
    char *stdin_buf = NULL;
    cli_conn *c = NULL;
    int code = open_conn(cmd, &rf->conn, &c);
    if (code != 0)
        goto out;
    code = load_stdin(cmd, rf, &stdin_buf, &o.stdin_len);
    if (code != 0)
        goto out;
    o.stdin_data = stdin_buf;
    code = run_step_on(c, rf, &o, cmds, n);
out:
    free(stdin_buf);
    cli_close(c);
    return code;
}

/* ---- exec ------------------------------------------------------------------------------- */

int cmd_exec(int argc, char **argv)
{
    run_flags rf = {.output = "text"};
    const char *shell = NULL;
    const rpc_flag flags[] = {
        RUN_FLAGS(&rf),
        {"shell", RPC_FLAG_STRING, &shell, "run LINE with /bin/sh -c instead of an argv"},
    };
    const list_flag lists[] = {ENV_LIST(&rf)};
    const cmd_spec spec = {
        .synopsis = "usage: pmctl exec --target ADDR [flags] -- CMD [ARG...]\n"
                    "       pmctl exec --target ADDR [flags] --shell 'LINE'\n\n"
                    "Runs one command on an executor and streams its output here.\n"
                    "CMD is run as an argv (no shell); use --shell for pipes, globs and the like.",
        .epilog = RUN_EPILOG,
        .flags = flags,
        .nflags = sizeof flags / sizeof flags[0],
        .lists = lists,
        .nlists = sizeof lists / sizeof lists[0],
    };
    parsed_args pa;
    int code = parse_args("exec", &spec, argc, argv, &pa);
    if (code != 0)
        goto out;
    code = check_run_flags("exec", &rf);
    if (code != 0)
        goto out;
    if ((shell != NULL) == (pa.npos > 0)) {
        fprintf(stderr, "pmctl exec: give either a command after -- or --shell 'LINE' (see "
                        "--help)\n");
        code = EXIT_USAGE;
        goto out;
    }
    Pm__Executor__V1__Command command = PM__EXECUTOR__V1__COMMAND__INIT;
    Pm__Executor__V1__Command *cmds[1] = {&command};
    if (shell) {
        command.shell = (char *)shell;
    } else {
        command.n_argv = (size_t)pa.npos;
        command.argv = pa.pos;
    }
    bool hint = !shell && pa.npos == 1 && strpbrk(pa.pos[0], " \t|&;<>()$`*?") != NULL;
    const step_opts o = {.shell_hint = hint, .step = -1};
    code = run_step("exec", &rf, &o, cmds, 1);
out:
    parsed_free(&pa);
    list_free(&rf.env);
    return code < 0 ? EXIT_OK : code;
}

/* ---- step ------------------------------------------------------------------------------- */

int cmd_step(int argc, char **argv)
{
    run_flags rf = {.output = "text"};
    bool continue_on_error = false, progress = false;
    str_list lines = {0};
    Pm__Executor__V1__Command *commands = NULL, **cmds = NULL;
    const rpc_flag flags[] = {
        RUN_FLAGS(&rf),
        {"continue-on-error", RPC_FLAG_BOOL, &continue_on_error,
         "run every command even after one fails"},
        {"progress", RPC_FLAG_BOOL, &progress,
         "a line per command on stderr (default: when stderr is a terminal)"},
    };
    const list_flag lists[] = {
        ENV_LIST(&rf),
        {"command", "-c", "'LINE'", "shell line to run, in order", &lines},
    };
    const cmd_spec spec = {
        .synopsis =
            "usage: pmctl step --target ADDR -c 'LINE' [-c 'LINE']... [flags]\n\n"
            "Runs shell lines in order as one step (one Run call) on an executor. The step\n"
            "stops at the first failing command unless --continue-on-error is given.\n"
            "Progress lines look like \"[1/3] exit=0 wall=1.2ms\". --stdin-file feeds "
            "every command.",
        .epilog = RUN_EPILOG "\nFor a step, the exit code is the first failing command's, else 0.",
        .flags = flags,
        .nflags = sizeof flags / sizeof flags[0],
        .lists = lists,
        .nlists = sizeof lists / sizeof lists[0],
    };
    parsed_args pa;
    int code = parse_args("step", &spec, argc, argv, &pa);
    if (code != 0)
        goto out;
    code = check_run_flags("step", &rf);
    if (code != 0)
        goto out;
    if (pa.npos > 0) {
        fprintf(stderr, "pmctl step: unexpected argument \"%s\"; give each line with -c\n",
                pa.pos[0]);
        code = EXIT_USAGE;
        goto out;
    }
    if (lines.n == 0) {
        fprintf(stderr, "pmctl step: no commands; give at least one -c 'LINE'\n");
        code = EXIT_USAGE;
        goto out;
    }
    commands = calloc(lines.n, sizeof *commands);
    cmds = calloc(lines.n, sizeof *cmds);
    if (!commands || !cmds) {
        fprintf(stderr, "pmctl: out of memory\n");
        code = EXIT_FAIL;
        goto out;
    }
    for (size_t i = 0; i < lines.n; i++) {
        pm__executor__v1__command__init(&commands[i]);
        commands[i].shell = (char *)lines.v[i];
        cmds[i] = &commands[i];
    }
    const step_opts o = {
        .continue_on_error = continue_on_error,
        .progress = progress || isatty(STDERR_FILENO),
        .step = -1,
    };
    code = run_step("step", &rf, &o, cmds, lines.n);
out:
    free(cmds);
    free(commands);
    parsed_free(&pa);
    list_free(&lines);
    list_free(&rf.env);
    return code < 0 ? EXIT_OK : code;
}

/* ---- info ------------------------------------------------------------------------------- */

int cmd_info(int argc, char **argv)
{
    conn_flags cf = {0};
    const char *output = "text";
    const rpc_flag flags[] = {
        CONN_FLAGS(&cf),
        {"output", RPC_FLAG_STRING, &output, "text or json"},
    };
    const cmd_spec spec = {
        .synopsis = "usage: pmctl info --target ADDR [flags]\n\n"
                    "Describes an executor: name, version, sandbox profile, limits, load.",
        .epilog = "Exit codes: 0 ok, 1 the call failed, 2 usage error.",
        .flags = flags,
        .nflags = sizeof flags / sizeof flags[0],
    };
    parsed_args pa;
    cli_conn *c = NULL;
    Pm__Executor__V1__InfoResponse *r = NULL;
    int code = parse_args("info", &spec, argc, argv, &pa);
    if (code != 0)
        goto out;
    if (pa.npos > 0 || (strcmp(output, "text") && strcmp(output, "json"))) {
        fprintf(stderr, "pmctl info: %s (see --help)\n",
                pa.npos > 0 ? "takes no arguments" : "--output wants text or json");
        code = EXIT_USAGE;
        goto out;
    }
    code = open_conn("info", &cf, &c);
    if (code != 0)
        goto out;
    cli_status st;
    catch_signals();
    int rc = cli_info(c, &r, &st);
    if (rc < 0) {
        code = call_failed(c, rc, &st);
        goto out;
    }
    if (!strcmp(output, "json")) {
        fputs("{\"name\":", stdout);
        json_string(stdout, r->name);
        fputs(",\"version\":", stdout);
        json_string(stdout, r->version);
        fputs(",\"sandbox_profile\":", stdout);
        json_string(stdout, r->sandbox_profile);
        printf(",\"max_concurrent\":%" PRIu32 ",\"running\":%" PRIu32
               ",\"max_request_bytes\":%" PRIu64 ",\"output_cap\":%" PRIu64
               ",\"kill_grace_ms\":%" PRIu32 ",\"commands_started\":%" PRIu64 ",\"pid1\":%s",
               r->max_concurrent, r->running, r->max_request_bytes, r->output_cap, r->kill_grace_ms,
               r->commands_started, r->pid1 ? "true" : "false");
        json_end_line();
    } else {
        printf("name:              %s\n"
               "version:           %s\n"
               "sandbox_profile:   %s\n"
               "max_concurrent:    %" PRIu32 "\n"
               "running:           %" PRIu32 "\n"
               "max_request_bytes: %" PRIu64 "\n"
               "output_cap:        %" PRIu64 "\n"
               "kill_grace_ms:     %" PRIu32 "\n"
               "commands_started:  %" PRIu64 "\n"
               "pid1:              %s\n",
               r->name, r->version, r->sandbox_profile, r->max_concurrent, r->running,
               r->max_request_bytes, r->output_cap, r->kill_grace_ms, r->commands_started,
               r->pid1 ? "true" : "false");
    }
    if (fflush(stdout) != 0)
        code = EXIT_FAIL;
out:
    if (r)
        pm__executor__v1__info_response__free_unpacked(r, NULL);
    cli_close(c);
    parsed_free(&pa);
    return code < 0 ? EXIT_OK : code;
}

/* ---- health ----------------------------------------------------------------------------- */

int cmd_health(int argc, char **argv)
{
    conn_flags cf = {0};
    const char *service = "";
    const rpc_flag flags[] = {
        CONN_FLAGS(&cf),
        {"service", RPC_FLAG_STRING, &service, "service to ask about; empty: the whole server"},
    };
    const cmd_spec spec = {
        .synopsis = "usage: pmctl health --target ADDR [--service NAME] [flags]\n\n"
                    "Asks grpc.health.v1.Health/Check and prints the serving status\n"
                    "(SERVING, NOT_SERVING, SERVICE_UNKNOWN, UNKNOWN).",
        .epilog = "Exit codes: 0 only when SERVING; 1 otherwise or when the call failed; 2 usage "
                  "error.",
        .flags = flags,
        .nflags = sizeof flags / sizeof flags[0],
    };
    parsed_args pa;
    cli_conn *c = NULL;
    int code = parse_args("health", &spec, argc, argv, &pa);
    if (code != 0)
        goto out;
    if (pa.npos > 0) {
        fprintf(stderr, "pmctl health: takes no arguments (see --help)\n");
        code = EXIT_USAGE;
        goto out;
    }
    code = open_conn("health", &cf, &c);
    if (code != 0)
        goto out;
    cli_status st;
    Grpc__Health__V1__HealthCheckResponse__ServingStatus s;
    catch_signals();
    int rc = cli_health_check(c, service, &s, &st);
    if (rc < 0) {
        code = call_failed(c, rc, &st);
        goto out;
    }
    printf("%s\n", cli_serving_status_name(s));
    code =
        s == GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__SERVING ? EXIT_OK : EXIT_FAIL;
out:
    cli_close(c);
    parsed_free(&pa);
    return code < 0 ? EXIT_OK : code;
}

/* ---- legacy ----------------------------------------------------------------------------- */

int cmd_legacy(int argc, char **argv)
{
    conn_flags cf = {0};
    str_list lines = {0};
    const rpc_flag flags[] = {CONN_FLAGS(&cf)};
    const list_flag lists[] = {
        {"command", "-c", "'LINE'", "command for sh -c, in order", &lines},
    };
    const cmd_spec spec = {
        .synopsis =
            "usage: pmctl legacy --target ADDR -c 'LINE' [-c 'LINE']... [flags]\n\n"
            "Calls the original project's exec.ExecService/ExecuteCommands and prints each\n"
            "command's captured stdout, in order, once the whole call is done.",
        .epilog = "Exit codes: 0 ok; 1 when the server reports result=false (its errorMessage is\n"
                  "printed) or the call failed; 2 usage error.",
        .flags = flags,
        .nflags = sizeof flags / sizeof flags[0],
        .lists = lists,
        .nlists = sizeof lists / sizeof lists[0],
    };
    parsed_args pa;
    cli_conn *c = NULL;
    Exec__ExecResult *r = NULL;
    int code = parse_args("legacy", &spec, argc, argv, &pa);
    if (code != 0)
        goto out;
    if (pa.npos > 0 || lines.n == 0) {
        fprintf(stderr, "pmctl legacy: %s (see --help)\n",
                pa.npos > 0 ? "give each command with -c" : "no commands; give -c 'LINE'");
        code = EXIT_USAGE;
        goto out;
    }
    code = open_conn("legacy", &cf, &c);
    if (code != 0)
        goto out;
    cli_status st;
    catch_signals();
    int rc = cli_execute_commands(c, lines.v, lines.n, &r, &st);
    if (rc < 0) {
        code = call_failed(c, rc, &st);
        goto out;
    }
    for (size_t i = 0; i < r->n_output; i++) {
        int w = write_all(STDOUT_FILENO, r->output[i], strlen(r->output[i]));
        if (w < 0) {
            if (w != -EPIPE)
                fprintf(stderr, "pmctl: writing output: %s\n", strerror(-w));
            code = w == -EPIPE ? 128 + SIGPIPE : EXIT_FAIL;
            goto out;
        }
    }
    if (!r->result) {
        fprintf(stderr, "pmctl: %s: ExecuteCommands failed: %s\n", cli_target(c),
                r->errormessage && r->errormessage[0] ? r->errormessage : "(no message)");
        code = EXIT_FAIL;
    }
out:
    if (r)
        exec__exec_result__free_unpacked(r, NULL);
    cli_close(c);
    parsed_free(&pa);
    list_free(&lines);
    return code < 0 ? EXIT_OK : code;
}

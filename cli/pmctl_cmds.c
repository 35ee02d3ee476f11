/*
 * pmctl subcommands: exec, step, info, health and legacy. Each declares its flags (every one also
 * settable as PM_<NAME>) plus repeatable list flags, parses its own command line, opens the
 * connection to its server through cli/client.h, makes its call and returns the exit code; exec
 * and step share the step-running code that builds the Run request and streams its events.
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
#define MAX_TOKEN_BYTES 4096

/* ---- repeated flags --------------------------------------------------------------------- */

typedef struct {
    size_t n, cap;
    const char **v;
} str_list;

static int list_add(str_list *l, const char *s)
{
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 8;
        const char **v = realloc(l->v, cap * sizeof *v);
        if (!v)
            return -ENOMEM;
        l->v = v;
        l->cap = cap;
    }
    l->v[l->n++] = s;
    return 0;
}

static void list_free(str_list *l)
{
    free(l->v);
    memset(l, 0, sizeof *l);
}

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
} cmd_spec;

static void usage(FILE *out, const cmd_spec *s)
{
    rpc_flags_usage(out, s->synopsis, s->flags, s->nflags);
    for (size_t i = 0; i < s->nlists; i++) {
        const list_flag *l = &s->lists[i];
        char name[64];
        snprintf(name, sizeof name, "%s%s%s %s", l->alias ? l->alias : "", l->alias ? ", --" : "--",
                 l->name, l->value);
        fprintf(out, "  %-49s %s (repeatable; not from the environment)\n", name, l->help);
    }
    if (s->epilog)
        fprintf(out, "\n%s\n", s->epilog);
}

static const list_flag *match_list(const cmd_spec *s, const char *arg, const char **inline_value)
{
    *inline_value = NULL;
    for (size_t i = 0; i < s->nlists; i++) {
        const list_flag *l = &s->lists[i];
        if (l->alias && !strcmp(arg, l->alias))
            return l;
        if (strncmp(arg, "--", 2) != 0)
            continue;
        size_t n = strlen(l->name);
        if (!strncmp(arg + 2, l->name, n) && (arg[2 + n] == '\0' || arg[2 + n] == '=')) {
            if (arg[2 + n] == '=')
                *inline_value = arg + 3 + n;
            return l;
        }
    }
    return NULL;
}

static const rpc_flag *match_flag(const cmd_spec *s, const char *name)
{
    size_t len = strcspn(name, "=");
    for (size_t i = 0; i < s->nflags; i++)
        if (strlen(s->flags[i].name) == len && !strncmp(s->flags[i].name, name, len))
            return &s->flags[i];
    return NULL;
}

/* Positional arguments left after the flags; pos points into the caller's argv strings. */
typedef struct {
    char **argv; /* the flags rpc_flags_parse saw, then the positionals (owned array) */
    int npos;
    char **pos;
} parsed_args;

/*
 * Parses argv (argv[0] is the subcommand) against s. Returns 0, or the exit code to leave with:
 * after --help it has printed the usage and returns -1 for "exit 0"; on a usage error it has
 * printed why and returns EXIT_USAGE.
 */
static int parse_args(const char *cmd, const cmd_spec *s, int argc, char **argv, parsed_args *pa)
{
    char err[256];
    memset(pa, 0, sizeof *pa);
    pa->argv = calloc((size_t)argc + 1, sizeof *pa->argv);
    if (!pa->argv) {
        fprintf(stderr, "pmctl: out of memory\n");
        return EXIT_FAIL;
    }
    int o = 0;
    pa->argv[o++] = argv[0];
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *value;
        const list_flag *l = match_list(s, a, &value);
        if (l) {
            if (!value) {
                if (i + 1 >= argc) {
                    fprintf(stderr, "pmctl %s: flag %s needs a value (see --help)\n", cmd, a);
                    return EXIT_USAGE;
                }
                value = argv[++i];
            }
            if (list_add(l->dst, value) < 0) {
                fprintf(stderr, "pmctl: out of memory\n");
                return EXIT_FAIL;
            }
            continue;
        }
        if (!strcmp(a, "--") || a[0] != '-' || !strcmp(a, "-")) {
            /* The positionals start here; rpc_flags_parse stops at the same place. */
            while (i < argc)
                pa->argv[o++] = argv[i++];
            break;
        }
        if (a[1] != '-' && strcmp(a, "-h") != 0) {
            fprintf(stderr, "pmctl %s: unknown flag %s (see --help)\n", cmd, a);
            return EXIT_USAGE;
        }
        /* rpc_flags_parse only looks at "--" flags, so the short help flag is spelled out. */
        pa->argv[o++] = strcmp(a, "-h") ? argv[i] : (char *)"--help";
        /* Carry a flag's separate value along, so a value that looks like -c stays a value. */
        const rpc_flag *f = a[1] == '-' ? match_flag(s, a + 2) : NULL;
        if (f && f->type != RPC_FLAG_BOOL && !strchr(a, '=') && i + 1 < argc)
            pa->argv[o++] = argv[++i];
    }
    int rest = o;
    int rc = rpc_flags_parse(s->flags, s->nflags, o, pa->argv, &rest, err, sizeof err);
    if (rc == 1) {
        usage(stdout, s);
        return -1;
    }
    if (rc < 0) {
        fprintf(stderr, "pmctl %s: %s\n", cmd, err);
        return EXIT_USAGE;
    }
    pa->pos = pa->argv + rest;
    pa->npos = o - rest;
    return 0;
}

static void parsed_free(parsed_args *pa)
{
    free(pa->argv);
}

/* ---- connecting ------------------------------------------------------------------------- */

typedef struct {
    const char *target;
    const char *token_file;
    const char *tls_ca;
    const char *tls_server_name;
    uint64_t deadline_ms;
} conn_flags;

/* Flag table rows shared by every subcommand that connects; kept one row per flag. */
/* clang-format off */
#define CONN_FLAGS(cf)                                                                            \
    {"target", RPC_FLAG_STRING, &(cf)->target, "server address: host:port or unix:/path"},        \
    {"token-file", RPC_FLAG_STRING, &(cf)->token_file, "file holding the bearer token to send"},  \
    {"tls-ca", RPC_FLAG_STRING, &(cf)->tls_ca,                                                    \
     "PEM root certificates; connect with TLS (default plaintext)"},                              \
    {"tls-server-name", RPC_FLAG_STRING, &(cf)->tls_server_name,                                  \
     "name the server certificate carries, if not the target's host"},                            \
    {"deadline-ms", RPC_FLAG_UINT, &(cf)->deadline_ms, "deadline of the whole call; 0: none"}
/* clang-format on */

/* Opens the connection; returns 0 or the exit code to leave with, having said why. */
static int open_conn(const char *cmd, const conn_flags *cf, cli_conn **out)
{
    char err[512];
    char *token = NULL;
    *out = NULL;
    if (!cf->target || !*cf->target) {
        fprintf(stderr, "pmctl %s: --target is required (or PM_TARGET); see --help\n", cmd);
        return EXIT_USAGE;
    }
    if (cf->token_file &&
        rpc_read_file(cf->token_file, MAX_TOKEN_BYTES, true, &token, NULL, err, sizeof err) < 0) {
        fprintf(stderr, "pmctl: token file %s\n", err);
        return EXIT_FAIL;
    }
    cli_config cfg = {
        .target = cf->target,
        .token = token,
        .tls_ca_file = cf->tls_ca,
        .tls_server_name = cf->tls_server_name,
        .deadline_ms = cf->deadline_ms,
        .interrupt = &interrupted,
    };
    int rc = cli_connect(&cfg, out, err, sizeof err);
    free(token);
    if (rc < 0) {
        fprintf(stderr, "pmctl: %s: %s\n", cf->target, err);
        return rc == -EINVAL ? EXIT_USAGE : EXIT_FAIL;
    }
    return 0;
}

/* ---- running a step (exec and step) ----------------------------------------------------- */

/* Flags shared by exec and step. */
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
#define RUN_FLAGS(rf)                                                                             \
    CONN_FLAGS(&(rf)->conn),                                                                      \
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

/* Checks the flags exec and step share; returns 0 or EXIT_USAGE having said why. */
static int check_run_flags(const char *cmd, const run_flags *rf)
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

/*
 * Sends the step, streams its events, and works out the exit code: a gRPC failure first, then the
 * first failing command's code, else 0. cmds must already be filled in; this adds the flags.
 */
static int run_step(const char *cmd, const run_flags *rf, bool continue_on_error, bool progress,
                    bool shell_hint, Pm__Executor__V1__Command **cmds, size_t n)
{
    char err[512];
    char *stdin_buf = NULL;
    size_t stdin_len = 0;
    bool *exited = NULL;
    cli_conn *c = NULL;
    int code = open_conn(cmd, &rf->conn, &c);
    if (code != 0)
        goto out;
    if (rf->stdin_file) {
        const char *path = strcmp(rf->stdin_file, "-") ? rf->stdin_file : "/dev/stdin";
        if (rpc_read_file(path, MAX_STDIN_BYTES, false, &stdin_buf, &stdin_len, err, sizeof err) <
            0) {
            fprintf(stderr, "pmctl %s: --stdin-file %s\n", cmd, err);
            code = EXIT_FAIL;
            goto out;
        }
        for (size_t i = 0; i < n; i++) {
            cmds[i]->stdin_data.data = (uint8_t *)stdin_buf;
            cmds[i]->stdin_data.len = stdin_len;
        }
    }
    exited = calloc(n, sizeof *exited);
    if (!exited) {
        fprintf(stderr, "pmctl: out of memory\n");
        code = EXIT_FAIL;
        goto out;
    }

    Pm__Executor__V1__RunRequest req = PM__EXECUTOR__V1__RUN_REQUEST__INIT;
    req.n_commands = n;
    req.commands = cmds;
    req.n_env = rf->env.n;
    req.env = (char **)rf->env.v;
    req.clear_env = rf->clear_env;
    req.workdir = (char *)(rf->workdir ? rf->workdir : "");
    req.timeout_ms = (uint32_t)rf->timeout_ms;
    req.output_cap = rf->output_cap;
    req.sandbox_profile = (char *)(rf->sandbox_profile ? rf->sandbox_profile : "");
    req.continue_on_error = continue_on_error;

    run_view v = {
        .json = !strcmp(rf->output, "json"),
        .progress = progress,
        .shell_hint = shell_hint,
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
            if (progress)
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
        fputs("{\"event\":\"end\",\"status\":", stdout);
        json_string(stdout, cli_status_name(st.code));
        fputs(",\"details\":", stdout);
        json_string(stdout, st.details);
        fprintf(stdout, ",\"exit_code\":%d", code);
        json_end_line();
    }
out:
    free(exited);
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
    code = run_step("exec", &rf, false, false, hint, cmds, 1);
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
    code = run_step("step", &rf, continue_on_error, progress || isatty(STDERR_FILENO), false, cmds,
                    lines.n);
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

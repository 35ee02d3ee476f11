/*
 * pmctl run: a whole pipeline in direct mode, without a scheduler. It parses the pipeline JSON the
 * scheduler accepts (scheduler/pipeline.h), fills the {{name}} placeholders from -p and {{id}} with
 * a run id, works out which executor of the worker serves each step (from --executor, --ports or
 * the scheduler's workers config), and only when every step has one does it run them, in order,
 * each as one Run call through the step-running code exec and step use. Output streams as it does
 * for exec; the first failing step stops the run and its exit code becomes pmctl's. There are no
 * retries and nothing is stored: this is the lowest-latency way to run a pipeline on one pod.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli/client.h"
#include "cli/pmctl.h"
#include "rpc/rpc.h"
#include "scheduler/pipeline.h"
#include "scheduler/workers_config.h"

/* A gRPC target is an address plus a port or a socket path; longer ones are refused. */
#define MAX_TARGET 512

/* Executor name -> gRPC target, as given on the command line or found in the workers config. */
typedef struct {
    char *name;
    char *target;
} exec_entry;

typedef struct {
    exec_entry *v;
    size_t n, cap;
} exec_map;

static void map_free(exec_map *m)
{
    for (size_t i = 0; i < m->n; i++) {
        free(m->v[i].name);
        free(m->v[i].target);
    }
    free(m->v);
    memset(m, 0, sizeof *m);
}

static const char *map_get(const exec_map *m, const char *name)
{
    for (size_t i = 0; i < m->n; i++)
        if (!strcmp(m->v[i].name, name))
            return m->v[i].target;
    return NULL;
}

/* Adds name -> target unless name is already there: the first source given wins. */
static int map_add(exec_map *m, const char *name, size_t name_len, const char *target)
{
    for (size_t i = 0; i < m->n; i++)
        if (strlen(m->v[i].name) == name_len && !strncmp(m->v[i].name, name, name_len))
            return 0;
    if (m->n == m->cap) {
        size_t cap = m->cap ? m->cap * 2 : 8;
        exec_entry *v = realloc(m->v, cap * sizeof *v);
        if (!v)
            return -ENOMEM;
        m->v = v;
        m->cap = cap;
    }
    char *n = strndup(name, name_len), *t = strdup(target);
    if (!n || !t) {
        free(n);
        free(t);
        return -ENOMEM;
    }
    m->v[m->n++] = (exec_entry){.name = n, .target = t};
    return 0;
}

static bool all_digits(const char *s)
{
    if (!*s)
        return false;
    for (; *s; s++)
        if (*s < '0' || *s > '9')
            return false;
    return true;
}

/*
 * Adds one "NAME=SPEC" (SPEC of length spec_len): a port on the worker, "unix:PATH", or any other
 * gRPC target ("host:port"). Returns 0, or EXIT_USAGE / EXIT_FAIL having said why.
 */
static int add_mapping(exec_map *m, const char *flag, const char *arg, size_t len,
                       const char *worker)
{
    const char *eq = memchr(arg, '=', len);
    if (!eq || eq == arg || eq + 1 == arg + len) {
        fprintf(stderr, "pmctl run: %s wants NAME=PORT or NAME=unix:PATH, got \"%.*s\"\n", flag,
                (int)len, arg);
        return EXIT_USAGE;
    }
    char spec[MAX_TARGET], target[MAX_TARGET + 8];
    size_t slen = (size_t)(arg + len - eq - 1);
    if (slen >= sizeof spec) {
        fprintf(stderr, "pmctl run: %s: the target of \"%.*s\" is too long\n", flag,
                (int)(eq - arg), arg);
        return EXIT_USAGE;
    }
    memcpy(spec, eq + 1, slen);
    spec[slen] = '\0';
    if (all_digits(spec)) {
        long port = strtol(spec, NULL, 10);
        if (slen > 5 || port < 1 || port > 65535) {
            fprintf(stderr, "pmctl run: %s: port %s is not in 1..65535\n", flag, spec);
            return EXIT_USAGE;
        }
        if (!worker) {
            fprintf(stderr, "pmctl run: %s %.*s: a port needs --worker HOST\n", flag, (int)len,
                    arg);
            return EXIT_USAGE;
        }
        sch_exec_ref ref = {.name = (char *)"", .port = (uint16_t)port};
        sch_exec_target(&ref, worker, target, sizeof target);
    } else {
        snprintf(target, sizeof target, "%s", spec);
    }
    if (map_add(m, arg, (size_t)(eq - arg), target) < 0) {
        fprintf(stderr, "pmctl: out of memory\n");
        return EXIT_FAIL;
    }
    return 0;
}

/* True when pool has an executor for every step of p. */
static bool pool_serves(const sch_pool_config *pool, const sch_pipeline *p)
{
    for (size_t i = 0; i < p->n_steps; i++)
        if (!sch_pool_executor(pool, p->steps[i].executor))
            return false;
    return true;
}

/*
 * Adds the executors of the --pool (or of the first pool that serves every step) from the workers
 * config; *worker becomes the pool's first static worker when none was given. Returns 0 or the
 * exit code having said why.
 */
static int add_from_config(exec_map *m, const char *path, const char *pool_name,
                           const sch_pipeline *p, const char **worker, sch_workers_config **cfg)
{
    char err[512];
    int rc = sch_workers_config_load(path, cfg, err, sizeof err);
    if (rc < 0) {
        fprintf(stderr, "pmctl run: --workers-config %s\n", err);
        return rc == -EINVAL || rc == -EFBIG ? EXIT_USAGE : EXIT_FAIL;
    }
    const sch_pool_config *pool = NULL;
    for (size_t i = 0; i < (*cfg)->n_pools && !pool; i++) {
        const sch_pool_config *c = &(*cfg)->pools[i];
        if (pool_name ? !strcmp(c->name, pool_name) : pool_serves(c, p))
            pool = c;
    }
    if (!pool) {
        if (pool_name)
            fprintf(stderr, "pmctl run: %s has no pool \"%s\"\n", path, pool_name);
        else
            fprintf(stderr, "pmctl run: no pool in %s has an executor for every step\n", path);
        return EXIT_USAGE;
    }
    if (!*worker && pool->n_workers > 0)
        *worker = pool->workers[0];
    for (size_t i = 0; i < pool->n_executors; i++) {
        const sch_exec_ref *e = &pool->executors[i];
        if (e->port && !*worker) {
            fprintf(stderr,
                    "pmctl run: pool \"%s\" finds its workers through DNS; give --worker HOST\n",
                    pool->name);
            return EXIT_USAGE;
        }
        char target[MAX_TARGET + 8];
        sch_exec_target(e, *worker ? *worker : "", target, sizeof target);
        if (map_add(m, e->name, strlen(e->name), target) < 0) {
            fprintf(stderr, "pmctl: out of memory\n");
            return EXIT_FAIL;
        }
    }
    return 0;
}

/* Splits each -p NAME=VALUE; the names and values point into bufs (one copy per argument). */
static int split_params(const str_list *l, sch_param **out, char ***bufs)
{
    *out = calloc(l->n ? l->n : 1, sizeof **out);
    *bufs = calloc(l->n ? l->n : 1, sizeof **bufs);
    if (!*out || !*bufs) {
        fprintf(stderr, "pmctl: out of memory\n");
        return EXIT_FAIL;
    }
    for (size_t i = 0; i < l->n; i++) {
        const char *eq = strchr(l->v[i], '=');
        if (!eq || eq == l->v[i]) {
            fprintf(stderr, "pmctl run: --param wants NAME=VALUE, got \"%s\"\n", l->v[i]);
            return EXIT_USAGE;
        }
        char *b = strdup(l->v[i]);
        if (!b) {
            fprintf(stderr, "pmctl: out of memory\n");
            return EXIT_FAIL;
        }
        (*bufs)[i] = b;
        b[eq - l->v[i]] = '\0';
        (*out)[i] = (sch_param){.name = b, .value = b + (eq - l->v[i]) + 1};
    }
    return 0;
}

/* Runs step i of p on target; returns its exit code. */
static int run_pipeline_step(const run_flags *rf, const sch_pipeline *p, size_t i,
                             const char *target, const char *run_id, bool progress,
                             const char *stdin_data, size_t stdin_len)
{
    const sch_step *s = &p->steps[i];
    Pm__Executor__V1__Command *commands = calloc(s->n_commands, sizeof *commands);
    Pm__Executor__V1__Command **cmds = calloc(s->n_commands, sizeof *cmds);
    cli_conn *c = NULL;
    size_t filled = 0;
    int code = EXIT_FAIL;
    if (!commands || !cmds) {
        fprintf(stderr, "pmctl: out of memory\n");
        goto out;
    }
    for (; filled < s->n_commands; filled++) {
        pm__executor__v1__command__init(&commands[filled]);
        commands[filled].shell = sch_pipeline_fill_builtin(s->commands[filled], run_id);
        if (!commands[filled].shell) {
            fprintf(stderr, "pmctl: out of memory\n");
            goto out;
        }
        cmds[filled] = &commands[filled];
    }
    bool json = !strcmp(rf->output, "json");
    if (json) {
        printf("{\"step\":%zu,\"event\":\"step\",\"executor\":", i);
        json_string(stdout, s->executor);
        fputs(",\"target\":", stdout);
        json_string(stdout, target);
        if (json_end_line() < 0)
            goto out;
    } else if (progress) {
        fprintf(stderr, "[step %zu/%zu %s] %s\n", i + 1, p->n_steps, s->executor, target);
    }
    conn_flags cf = rf->conn;
    cf.target = target;
    code = open_conn("run", &cf, &c);
    if (code != 0)
        goto out;
    const step_opts o = {
        .progress = progress,
        .step = (int)i,
        .timeout_ms = s->timeout_ms,
        .stdin_data = stdin_data,
        .stdin_len = stdin_len,
    };
    code = run_step_on(c, rf, &o, cmds, s->n_commands);
out:
    cli_close(c);
    for (size_t k = 0; k < filled; k++)
        free(commands[k].shell);
    free(cmds);
    free(commands);
    return code;
}

int cmd_run(int argc, char **argv)
{
    run_flags rf = {.output = "text"};
    const char *worker = NULL, *config_path = NULL, *pool = NULL, *ports = NULL, *run_id = NULL;
    bool progress = false;
    str_list executors = {0}, params = {0};
    const rpc_flag flags[] = {
        {"worker", RPC_FLAG_STRING, &worker,
         "host of the worker pod whose executors run the steps"},
        {"ports", RPC_FLAG_STRING, &ports, "NAME=PORT,... executors as ports on --worker"},
        {"workers-config", RPC_FLAG_STRING, &config_path,
         "scheduler's workers config (JSON) for the executors"},
        {"pool", RPC_FLAG_STRING, &pool, "pool of --workers-config; default: the first that fits"},
        {"id", RPC_FLAG_STRING, &run_id, "value of {{id}}; default run-<pid>-<unix time>"},
        {"progress", RPC_FLAG_BOOL, &progress,
         "a line per step and command on stderr (default: when stderr is a terminal)"},
        CONN_AUTH_FLAGS(&rf.conn),
        STEP_FLAGS(&rf),
    };
    const list_flag lists[] = {
        {"executor", NULL, "NAME=PORT|unix:PATH|HOST:PORT", "where executor NAME listens",
         &executors},
        {"param", "-p", "NAME=VALUE", "fills {{NAME}} in the command lines", &params},
        ENV_LIST(&rf),
    };
    const cmd_spec spec = {
        .synopsis =
            "usage: pmctl run FILE.json --worker HOST --executor NAME=PORT... [-p NAME=VALUE]...\n"
            "       pmctl run FILE.json --executor NAME=unix:PATH... [flags]\n"
            "       pmctl run FILE.json --workers-config FILE [--pool P] [--worker HOST] [flags]\n"
            "\n"
            "Runs a pipeline (the JSON pm-scheduler accepts; FILE '-' reads stdin) straight on\n"
            "one worker's executors, without a scheduler: each step, in order, as one Run call\n"
            "on the executor its \"executorName\" names. {{NAME}} placeholders are filled from\n"
            "-p (values are shell-quoted when needed), {{id}} from --id. Every step must have\n"
            "an executor before anything runs. The first failing step stops the run. A step's\n"
            "\"timeoutMs\" overrides --timeout-ms for its commands.",
        .epilog = "Output: as for exec (see pmctl exec --help); with --output json each line also\n"
                  "carries \"step\", each step starts with {\"step\":N,\"event\":\"step\",...} "
                  "and\nends with its \"end\" line.\n"
                  "Exit codes: the failing step's (its command's exit code, 128+N for signal N, "
                  "124\nfor a timeout); 1 when an executor could not be reached or refused the "
                  "step;\n2 on a usage error, a bad pipeline, a missing parameter or an executor "
                  "name\nwith no target.",
        .flags = flags,
        .nflags = sizeof flags / sizeof flags[0],
        .interspersed = true,
        .lists = lists,
        .nlists = sizeof lists / sizeof lists[0],
    };
    parsed_args pa;
    char err[512], *text = NULL, *stdin_buf = NULL, **param_bufs = NULL;
    size_t text_len = 0, stdin_len = 0;
    sch_pipeline *parsed = NULL, *p = NULL;
    sch_param *pv = NULL;
    sch_workers_config *cfg = NULL;
    exec_map map = {0};
    char gen_id[64];
    int code = parse_args("run", &spec, argc, argv, &pa);
    if (code != 0)
        goto out;
    if ((code = check_run_flags("run", &rf)) != 0)
        goto out;
    if (pa.npos != 1) {
        fprintf(stderr, "pmctl run: %s (see --help)\n",
                pa.npos ? "give one pipeline FILE.json" : "the pipeline FILE.json is missing");
        code = EXIT_USAGE;
        goto out;
    }
    if (worker && !*worker)
        worker = NULL;

    const char *path = strcmp(pa.pos[0], "-") ? pa.pos[0] : "/dev/stdin";
    if (rpc_read_file(path, SCH_PIPELINE_MAX_JSON, false, &text, &text_len, err, sizeof err) < 0) {
        fprintf(stderr, "pmctl run: pipeline file %s\n", err);
        code = EXIT_FAIL;
        goto out;
    }
    if (sch_pipeline_parse_json(text, text_len, &parsed, err, sizeof err) < 0) {
        fprintf(stderr, "pmctl run: %s: %s\n", pa.pos[0], err);
        code = EXIT_USAGE;
        goto out;
    }
    if ((code = split_params(&params, &pv, &param_bufs)) != 0)
        goto out;
    if (sch_pipeline_substitute(parsed, pv, params.n, &p, err, sizeof err) < 0) {
        fprintf(stderr, "pmctl run: %s: %s\n", pa.pos[0], err);
        code = EXIT_USAGE;
        goto out;
    }

    /* Where each executor is: --executor first, then --ports, then the workers config. */
    for (size_t i = 0; i < executors.n; i++)
        if ((code = add_mapping(&map, "--executor", executors.v[i], strlen(executors.v[i]),
                                worker)) != 0)
            goto out;
    for (const char *s = ports; s && *s;) {
        size_t len = strcspn(s, ",");
        if (len && (code = add_mapping(&map, "--ports", s, len, worker)) != 0)
            goto out;
        s += len + (s[len] == ',');
    }
    if (config_path) {
        code = add_from_config(&map, config_path, pool, p, &worker, &cfg);
        if (code != 0)
            goto out;
    } else if (pool) {
        fprintf(stderr, "pmctl run: --pool needs --workers-config\n");
        code = EXIT_USAGE;
        goto out;
    }
    for (size_t i = 0; i < p->n_steps; i++) {
        if (map_get(&map, p->steps[i].executor))
            continue;
        fprintf(stderr,
                "pmctl run: step %zu: no target for executor \"%s\"; give --executor %s=PORT "
                "(on --worker) or %s=unix:PATH",
                i + 1, p->steps[i].executor, p->steps[i].executor, p->steps[i].executor);
        if (map.n) {
            fputs(" (known:", stderr);
            for (size_t k = 0; k < map.n; k++)
                fprintf(stderr, " %s", map.v[k].name);
            fputc(')', stderr);
        }
        fputc('\n', stderr);
        code = EXIT_USAGE;
        goto out;
    }

    if (!run_id || !*run_id) {
        snprintf(gen_id, sizeof gen_id, "run-%ld-%lld", (long)getpid(), (long long)time(NULL));
        run_id = gen_id;
    }
    if ((code = load_stdin("run", &rf, &stdin_buf, &stdin_len)) != 0)
        goto out;
    bool show = progress || isatty(STDERR_FILENO);
    for (size_t i = 0; i < p->n_steps; i++) {
        code = run_pipeline_step(&rf, p, i, map_get(&map, p->steps[i].executor), run_id, show,
                                 stdin_buf, stdin_len);
        if (code == 0)
            continue;
        if (strcmp(rf.output, "json") != 0 && i + 1 < p->n_steps)
            fprintf(stderr, "pmctl run: step %zu (%s) failed; %zu later step%s not run\n", i + 1,
                    p->steps[i].executor, p->n_steps - i - 1, p->n_steps - i - 1 > 1 ? "s" : "");
        break;
    }
out:
    for (size_t i = 0; param_bufs && i < params.n; i++)
        free(param_bufs[i]);
    free(param_bufs);
    free(pv);
    map_free(&map);
    if (cfg)
        sch_workers_config_free(cfg);
    if (p)
        sch_pipeline_free(p);
    if (parsed)
        sch_pipeline_free(parsed);
    free(stdin_buf);
    free(text);
    parsed_free(&pa);
    list_free(&executors);
    list_free(&params);
    list_free(&rf.env);
    return code < 0 ? EXIT_OK : code;
}

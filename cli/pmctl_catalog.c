/*
 * pmctl scheduler mode, the catalog commands: list (tasks, as a table or JSON lines, a page at a
 * time), pipelines put/get/list (the scheduler's stored pipelines) and workers (its worker pods
 * and their executors' health). The task commands are in pmctl_sched.c.
 */
#include <ctype.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/pmctl_sched.h"
#include "rpc/rpc.h"

/* ---- list ------------------------------------------------------------------------------- */

/* Parses a state name, in any case and with or without the TASK_STATE_ prefix; 0 if unknown. */
static Pm__Scheduler__V1__TaskState parse_state(const char *s)
{
    char up[48];
    size_t n = 0;
    for (; s[n] && n + 1 < sizeof up; n++)
        up[n] = (char)toupper((unsigned char)s[n]);
    up[n] = '\0';
    const ProtobufCEnumValue *v = protobuf_c_enum_descriptor_get_value_by_name(
        &pm__scheduler__v1__task_state__descriptor, up);
    return v && v->value > 0 && !s[n] ? (Pm__Scheduler__V1__TaskState)v->value : 0;
}

static int width_of(size_t n, const char *(*get)(const void *, size_t), const void *arg, int min)
{
    int w = min;
    for (size_t i = 0; i < n; i++) {
        int l = (int)strlen(get(arg, i));
        if (l > w)
            w = l;
    }
    return w > 64 ? 64 : w;
}

static const char *task_id_at(const void *arg, size_t i)
{
    return ((const Pm__Scheduler__V1__ListResponse *)arg)->tasks[i]->id;
}

static const char *task_pipeline_at(const void *arg, size_t i)
{
    const char *s = ((const Pm__Scheduler__V1__ListResponse *)arg)->tasks[i]->pipeline_name;
    return s[0] ? s : "(inline)";
}

static const char *task_worker_at(const void *arg, size_t i)
{
    const char *s = ((const Pm__Scheduler__V1__ListResponse *)arg)->tasks[i]->worker;
    return s[0] ? s : "-";
}

int cmd_list(int argc, char **argv)
{
    sched_flags sf = SCHED_FLAGS_INIT;
    const char *pipeline = NULL, *page_token = NULL;
    uint64_t limit = 0;
    str_list states = {0}, labels = {0};
    const rpc_flag flags[] = {
        SCHED_FLAGS(&sf),
        {"pipeline", RPC_FLAG_STRING, &pipeline, "only tasks of this stored pipeline"},
        {"limit", RPC_FLAG_UINT, &limit, "tasks per page, at most 1000; 0: the scheduler's (100)"},
        {"page-token", RPC_FLAG_STRING, &page_token, "the token printed after the previous page"},
    };
    const list_flag lists[] = {
        {"state", NULL, "STATE", "QUEUED, RUNNING, SUCCEEDED, FAILED, CANCELLED or DEAD", &states},
        {"label", NULL, "KEY=VALUE", "only tasks with this label", &labels},
    };
    const cmd_spec spec = {
        .synopsis = "usage: pmctl list [flags]\n\n"
                    "Lists tasks, newest first: a table of id, state, pipeline, attempt, worker\n"
                    "and creation time; when more remain, the next page's token follows on\n"
                    "stderr. With --output json: one Task per line, then\n"
                    "{\"next_page_token\":\"...\"} when more remain.",
        .epilog = SCHED_EPILOG,
        .flags = flags,
        .nflags = sizeof flags / sizeof flags[0],
        .interspersed = true,
        .lists = lists,
        .nlists = sizeof lists / sizeof lists[0],
    };
    parsed_args pa;
    cli_conn *c = NULL;
    ProtobufCMessage *msg = NULL;
    param_list lp = {0};
    Pm__Scheduler__V1__TaskState *sv = NULL;
    int code = parse_args("list", &spec, argc, argv, &pa);
    if (code != 0)
        goto out;
    if (limit > 1000) {
        fprintf(stderr, "pmctl list: --limit is at most 1000\n");
        code = EXIT_USAGE;
        goto out;
    }
    sv = calloc(states.n ? states.n : 1, sizeof *sv);
    if (!sv) {
        fprintf(stderr, "pmctl: out of memory\n");
        code = EXIT_FAIL;
        goto out;
    }
    for (size_t i = 0; i < states.n; i++) {
        sv[i] = parse_state(states.v[i]);
        if (!sv[i]) {
            fprintf(stderr, "pmctl list: unknown --state \"%s\" (see --help)\n", states.v[i]);
            code = EXIT_USAGE;
            goto out;
        }
    }
    if ((code = params_from("list", "--label", &labels, &lp)) != 0)
        goto out;
    code = sched_open("list", &sf, &pa, 0, 0, "", &c);
    if (code != 0)
        goto out;
    Pm__Scheduler__V1__ListRequest req = PM__SCHEDULER__V1__LIST_REQUEST__INIT;
    req.n_states = states.n;
    req.states = sv;
    req.pipeline_name = (char *)(pipeline ? pipeline : "");
    req.n_labels = lp.n;
    req.labels = lp.ptrs;
    req.page_size = (uint32_t)limit;
    req.page_token = (char *)(page_token ? page_token : "");
    code = sched_call(c, "List", &req.base, &pm__scheduler__v1__list_response__descriptor, &msg);
    if (code != 0)
        goto out;
    const Pm__Scheduler__V1__ListResponse *r = (const Pm__Scheduler__V1__ListResponse *)msg;
    if (json_mode(&sf)) {
        for (size_t i = 0; i < r->n_tasks; i++) {
            json_message(stdout, &r->tasks[i]->base);
            putchar('\n');
        }
        if (r->next_page_token[0]) {
            fputs("{\"next_page_token\":", stdout);
            json_string(stdout, r->next_page_token);
            fputs("}\n", stdout);
        }
    } else {
        int wid = width_of(r->n_tasks, task_id_at, r, 2);
        int wpl = width_of(r->n_tasks, task_pipeline_at, r, 8);
        int wwk = width_of(r->n_tasks, task_worker_at, r, 6);
        printf("%-*s  %-9s  %-*s  %7s  %-*s  %s\n", wid, "ID", "STATE", wpl, "PIPELINE", "ATTEMPT",
               wwk, "WORKER", "CREATED");
        for (size_t i = 0; i < r->n_tasks; i++) {
            const Pm__Scheduler__V1__Task *t = r->tasks[i];
            char created[40];
            printf("%-*s  %-9s  %-*s  %7" PRIu32 "  %-*s  %s\n", wid, t->id, state_name(t->state),
                   wpl, task_pipeline_at(r, i), t->attempt, wwk, task_worker_at(r, i),
                   format_ms(created, sizeof created, t->created_ms));
        }
        if (r->next_page_token[0])
            fprintf(stderr, "more: --page-token %s\n", r->next_page_token);
    }
    if (fflush(stdout) != 0 || ferror(stdout))
        code = EXIT_FAIL;
out:
    if (msg)
        protobuf_c_message_free_unpacked(msg, NULL);
    params_free(&lp);
    free(sv);
    cli_close(c);
    parsed_free(&pa);
    list_free(&states);
    list_free(&labels);
    return code < 0 ? EXIT_OK : code;
}

/* ---- pipelines -------------------------------------------------------------------------- */

static void print_pipeline_info(const Pm__Scheduler__V1__PipelineInfo *p)
{
    char upd[40];
    printf("name:        %s\n"
           "version:     %" PRIu64 "\n"
           "updated:     %s\n",
           p->name, p->version, format_ms(upd, sizeof upd, p->updated_ms));
    if (p->description[0])
        printf("description: %s\n", p->description);
    if (p->n_params) {
        printf("params:     ");
        for (size_t i = 0; i < p->n_params; i++)
            printf(" %s", p->params[i]);
        putchar('\n');
    }
    print_params("defaults:   ", p->defaults, p->n_defaults);
    if (!p->pipeline)
        return;
    printf("steps:\n");
    for (size_t i = 0; i < p->pipeline->n_steps; i++) {
        const Pm__Scheduler__V1__Step *s = p->pipeline->steps[i];
        printf("  %zu %s", i + 1, s->executor);
        if (s->timeout_ms)
            printf(" (timeout %" PRIu32 " ms)", s->timeout_ms);
        putchar('\n');
        for (size_t k = 0; k < s->n_commands; k++)
            printf("      %s\n", s->commands[k]);
    }
}

static int show_pipeline_info(const sched_flags *sf, const Pm__Scheduler__V1__PipelineInfo *p)
{
    if (json_mode(sf)) {
        json_message(stdout, &p->base);
        putchar('\n');
    } else {
        print_pipeline_info(p);
    }
    return fflush(stdout) == 0 && !ferror(stdout) ? 0 : EXIT_FAIL;
}

#define PIPELINES_USAGE                                                                            \
    "usage: pmctl pipelines put NAME FILE.json [--default NAME=VALUE]... [--description D]\n"      \
    "       pmctl pipelines get NAME\n"                                                            \
    "       pmctl pipelines list\n\n"                                                              \
    "Stores, shows and lists named pipelines on the scheduler; pmctl submit --pipeline NAME\n"     \
    "runs one. 'pmctl pipelines put --help' lists the flags."

static int pipelines_put(int argc, char **argv)
{
    sched_flags sf = SCHED_FLAGS_INIT;
    const char *description = NULL;
    str_list defaults = {0};
    const rpc_flag flags[] = {
        SCHED_FLAGS(&sf),
        {"description", RPC_FLAG_STRING, &description, "what the pipeline is for"},
    };
    const list_flag lists[] = {
        {"default", NULL, "NAME=VALUE", "value of {{NAME}} when a submission leaves it out",
         &defaults},
    };
    const cmd_spec spec = {
        .synopsis = "usage: pmctl pipelines put NAME FILE.json [flags]\n\n"
                    "Stores FILE ('-': stdin) as pipeline NAME, replacing an older version.",
        .epilog = SCHED_EPILOG,
        .flags = flags,
        .nflags = sizeof flags / sizeof flags[0],
        .interspersed = true,
        .lists = lists,
        .nlists = sizeof lists / sizeof lists[0],
    };
    parsed_args pa;
    cli_conn *c = NULL;
    ProtobufCMessage *msg = NULL;
    char *text = NULL;
    param_list dp = {0};
    int code = parse_args("pipelines put", &spec, argc, argv, &pa);
    if (code != 0)
        goto out;
    if (pa.npos != 2) {
        fprintf(stderr, "pmctl pipelines put: give NAME and FILE.json (see --help)\n");
        code = EXIT_USAGE;
        goto out;
    }
    if ((code = params_from("pipelines put", "--default", &defaults, &dp)) != 0)
        goto out;
    char err[512];
    const char *path = strcmp(pa.pos[1], "-") ? pa.pos[1] : "/dev/stdin";
    if (rpc_read_file(path, MAX_PIPELINE_FILE, false, &text, NULL, err, sizeof err) < 0) {
        fprintf(stderr, "pmctl pipelines put: pipeline file %s\n", err);
        code = EXIT_FAIL;
        goto out;
    }
    code = sched_open("pipelines put", &sf, &pa, 2, 2, "", &c);
    if (code != 0)
        goto out;
    Pm__Scheduler__V1__PutPipelineRequest req = PM__SCHEDULER__V1__PUT_PIPELINE_REQUEST__INIT;
    req.name = pa.pos[0];
    req.pipeline_json = text;
    req.n_defaults = dp.n;
    req.defaults = dp.ptrs;
    req.description = (char *)(description ? description : "");
    code = sched_call(c, "PutPipeline", &req.base, &pm__scheduler__v1__pipeline_info__descriptor,
                      &msg);
    if (code == 0)
        code = show_pipeline_info(&sf, (const Pm__Scheduler__V1__PipelineInfo *)msg);
out:
    if (msg)
        protobuf_c_message_free_unpacked(msg, NULL);
    params_free(&dp);
    free(text);
    cli_close(c);
    parsed_free(&pa);
    list_free(&defaults);
    return code < 0 ? EXIT_OK : code;
}

/* pipelines get NAME and pipelines list: no flags of their own. */
static int pipelines_read(int argc, char **argv, bool get)
{
    sched_flags sf = SCHED_FLAGS_INIT;
    const rpc_flag flags[] = {SCHED_FLAGS(&sf)};
    const cmd_spec spec = {
        .synopsis = get ? "usage: pmctl pipelines get NAME [flags]\n\n"
                          "Shows a stored pipeline: steps, placeholders, defaults, version."
                        : "usage: pmctl pipelines list [flags]\n\n"
                          "Lists the stored pipelines (with --output json: one per line).",
        .epilog = SCHED_EPILOG,
        .flags = flags,
        .nflags = sizeof flags / sizeof flags[0],
        .interspersed = true,
    };
    const char *cmd = get ? "pipelines get" : "pipelines list";
    parsed_args pa;
    cli_conn *c = NULL;
    ProtobufCMessage *msg = NULL;
    int code = parse_args(cmd, &spec, argc, argv, &pa);
    if (code != 0)
        goto out;
    code = sched_open(cmd, &sf, &pa, get ? 1 : 0, get ? 1 : 0, "the pipeline NAME", &c);
    if (code != 0)
        goto out;
    if (get) {
        Pm__Scheduler__V1__GetPipelineRequest req = PM__SCHEDULER__V1__GET_PIPELINE_REQUEST__INIT;
        req.name = pa.pos[0];
        code = sched_call(c, "GetPipeline", &req.base,
                          &pm__scheduler__v1__pipeline_info__descriptor, &msg);
        if (code == 0)
            code = show_pipeline_info(&sf, (const Pm__Scheduler__V1__PipelineInfo *)msg);
        goto out;
    }
    Pm__Scheduler__V1__ListPipelinesRequest req = PM__SCHEDULER__V1__LIST_PIPELINES_REQUEST__INIT;
    code = sched_call(c, "ListPipelines", &req.base,
                      &pm__scheduler__v1__list_pipelines_response__descriptor, &msg);
    if (code != 0)
        goto out;
    const Pm__Scheduler__V1__ListPipelinesResponse *r =
        (const Pm__Scheduler__V1__ListPipelinesResponse *)msg;
    if (!json_mode(&sf))
        printf("%-24s  %7s  %5s  %s\n", "NAME", "VERSION", "STEPS", "DESCRIPTION");
    for (size_t i = 0; i < r->n_pipelines; i++) {
        const Pm__Scheduler__V1__PipelineInfo *p = r->pipelines[i];
        if (json_mode(&sf)) {
            json_message(stdout, &p->base);
            putchar('\n');
            continue;
        }
        printf("%-24s  %7" PRIu64 "  %5zu  %s\n", p->name, p->version,
               p->pipeline ? p->pipeline->n_steps : 0, p->description);
    }
    if (fflush(stdout) != 0 || ferror(stdout))
        code = EXIT_FAIL;
out:
    if (msg)
        protobuf_c_message_free_unpacked(msg, NULL);
    cli_close(c);
    parsed_free(&pa);
    return code < 0 ? EXIT_OK : code;
}

int cmd_pipelines(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "%s\n", PIPELINES_USAGE);
        return EXIT_USAGE;
    }
    const char *sub = argv[1];
    if (!strcmp(sub, "--help") || !strcmp(sub, "-h")) {
        printf("%s\n", PIPELINES_USAGE);
        return EXIT_OK;
    }
    if (!strcmp(sub, "put"))
        return pipelines_put(argc - 1, argv + 1);
    if (!strcmp(sub, "get"))
        return pipelines_read(argc - 1, argv + 1, true);
    if (!strcmp(sub, "list"))
        return pipelines_read(argc - 1, argv + 1, false);
    fprintf(stderr, "pmctl pipelines: unknown action \"%s\"; want put, get or list\n", sub);
    return EXIT_USAGE;
}

/* ---- workers ---------------------------------------------------------------------------- */

int cmd_workers(int argc, char **argv)
{
    sched_flags sf = SCHED_FLAGS_INIT;
    const rpc_flag flags[] = {SCHED_FLAGS(&sf)};
    const cmd_spec spec = {
        .synopsis = "usage: pmctl workers [flags]\n\n"
                    "Lists the scheduler's worker pods: pool, health, slots in use, and each\n"
                    "executor's target and health (with --output json: one Worker per line).",
        .epilog = SCHED_EPILOG,
        .flags = flags,
        .nflags = sizeof flags / sizeof flags[0],
        .interspersed = true,
    };
    parsed_args pa;
    cli_conn *c = NULL;
    ProtobufCMessage *msg = NULL;
    int code = parse_args("workers", &spec, argc, argv, &pa);
    if (code != 0)
        goto out;
    code = sched_open("workers", &sf, &pa, 0, 0, "", &c);
    if (code != 0)
        goto out;
    Pm__Scheduler__V1__ListWorkersRequest req = PM__SCHEDULER__V1__LIST_WORKERS_REQUEST__INIT;
    code = sched_call(c, "ListWorkers", &req.base,
                      &pm__scheduler__v1__list_workers_response__descriptor, &msg);
    if (code != 0)
        goto out;
    const Pm__Scheduler__V1__ListWorkersResponse *r =
        (const Pm__Scheduler__V1__ListWorkersResponse *)msg;
    if (!json_mode(&sf))
        printf("%-24s  %-12s  %-8s  %5s  %s\n", "WORKER", "POOL", "HEALTH", "BUSY", "EXECUTORS");
    for (size_t i = 0; i < r->n_workers; i++) {
        const Pm__Scheduler__V1__Worker *w = r->workers[i];
        if (json_mode(&sf)) {
            json_message(stdout, &w->base);
            putchar('\n');
            continue;
        }
        char busy[24];
        snprintf(busy, sizeof busy, "%" PRIu32 "/%" PRIu32, w->busy, w->slots);
        printf("%-24s  %-12s  %-8s  %5s ", w->name, w->pool,
               w->draining  ? "draining"
               : w->healthy ? "ok"
                            : "down",
               busy);
        for (size_t k = 0; k < w->n_executors; k++) {
            const Pm__Scheduler__V1__Executor *e = w->executors[k];
            printf(" %s=%s%s", e->name, e->target, e->healthy ? "" : "(down)");
        }
        putchar('\n');
    }
    if (fflush(stdout) != 0 || ferror(stdout))
        code = EXIT_FAIL;
out:
    if (msg)
        protobuf_c_message_free_unpacked(msg, NULL);
    cli_close(c);
    parsed_free(&pa);
    return code < 0 ? EXIT_OK : code;
}

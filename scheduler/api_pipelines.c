/*
 * The scheduler's stored pipelines: the in-memory catalog loaded from the store at start
 * (sch_pipelines_load) and the PutPipeline, GetPipeline and ListPipelines handlers. PutPipeline
 * answers once its write is committed (put_done runs on the writer thread); Submit finds a stored
 * pipeline with sch_pipe_find.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "scheduler/sched.h"

bool sch_name_ok(const char *n)
{
    size_t len = strlen(n);
    if (len == 0 || len > 128)
        return false;
    for (const char *p = n; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
              *p == '_' || *p == '-' || *p == '.'))
            return false;
    return true;
}

sch_pipe_entry *sch_pipe_find(sch *s, const char *name)
{
    for (sch_pipe_entry *e = s->pipelines; e; e = e->next)
        if (!strcmp(e->name, name))
            return e;
    return NULL;
}

static void pipe_entry_free(sch_pipe_entry *e)
{
    if (!e)
        return;
    free(e->name);
    if (e->info)
        pm__scheduler__v1__pipeline_info__free_unpacked(e->info, NULL);
    sch_pipeline_free(e->pipe);
    free(e);
}

/* Makes an entry from a packed PipelineInfo. */
static sch_pipe_entry *pipe_entry(const uint8_t *data, size_t len)
{
    sch_pipe_entry *e = calloc(1, sizeof *e);
    char err[256];
    if (!e)
        return NULL;
    e->info = pm__scheduler__v1__pipeline_info__unpack(NULL, len, data);
    if (!e->info || !(e->name = strdup(e->info->name)) ||
        sch_pipeline_from_pb(e->info->pipeline, &e->pipe, err, sizeof err) < 0) {
        pipe_entry_free(e);
        return NULL;
    }
    return e;
}

static int load_pipe(const char *name, const uint8_t *data, size_t len, void *arg)
{
    sch *s = arg;
    sch_pipe_entry *e = pipe_entry(data, len);
    if (!e) {
        rpc_log("error", "pipeline_unreadable", "name=\"%s\"", name);
        return 0;
    }
    e->next = s->pipelines;
    s->pipelines = e;
    return 0;
}

int sch_pipelines_load(sch *s, char *err, size_t errlen)
{
    int rc = s->reader->ops->pipelines_list(s->reader, load_pipe, s);
    if (rc < 0)
        snprintf(err, errlen, "loading pipelines: %s", sch_store_error(s->reader));
    return rc < 0 ? rc : 0;
}

void sch_pipelines_free(sch *s)
{
    while (s->pipelines) {
        sch_pipe_entry *e = s->pipelines;
        s->pipelines = e->next;
        pipe_entry_free(e);
    }
}

/* ---- pipelines ------------------------------------------------------------------------------- */

static void put_done(sch *s, sch_op *op)
{
    sch_call *c = op->arg;
    if (op->rc < 0) {
        char msg[400];
        snprintf(msg, sizeof msg, "the pipeline could not be stored: %.300s", op->error);
        sch_reply(c, NULL, GRPC_STATUS_UNAVAILABLE, msg);
        sch_op_free(op);
        return;
    }
    sch_pipe_entry *e = pipe_entry(op->rec_buf, op->row.record_len);
    pthread_mutex_lock(&s->mu);
    if (e) {
        for (sch_pipe_entry **pp = &s->pipelines; *pp; pp = &(*pp)->next)
            if (!strcmp((*pp)->name, e->name)) {
                sch_pipe_entry *old = *pp;
                *pp = old->next;
                pipe_entry_free(old);
                break;
            }
        e->next = s->pipelines;
        s->pipelines = e;
        sch_reply(c, &e->info->base, GRPC_STATUS_OK, NULL);
    } else {
        sch_reply(c, NULL, GRPC_STATUS_INTERNAL, "the stored pipeline does not decode");
    }
    pthread_mutex_unlock(&s->mu);
    sch_op_free(op);
}

void sch_handle_put_pipeline(sch *s, sch_call *c, Pm__Scheduler__V1__PutPipelineRequest *req)
{
    char err[512];
    sch_pipeline *pipe = NULL;
    Pm__Scheduler__V1__Pipeline *pb = NULL;
    const char **names = NULL;
    grpc_status_code code = GRPC_STATUS_INVALID_ARGUMENT;
    if (!sch_name_ok(req->name)) {
        snprintf(err, sizeof err,
                 "pipeline name \"%.100s\" is not valid (1-128 of letters, digits, _ . -)",
                 req->name);
        goto fail;
    }
    int sources = (req->pipeline_json[0] != 0) + (req->pipeline != NULL);
    if (sources != 1) {
        snprintf(err, sizeof err,
                 sources ? "give only one of pipeline_json and pipeline"
                         : "empty request: give pipeline_json or pipeline");
        goto fail;
    }
    if (req->pipeline_json[0]
            ? sch_pipeline_parse_json(req->pipeline_json, strlen(req->pipeline_json), &pipe, err,
                                      sizeof err) < 0
            : sch_pipeline_from_pb(req->pipeline, &pipe, err, sizeof err) < 0)
        goto fail;
    for (size_t i = 0; i < req->n_defaults; i++)
        if (!sch_param_name_ok(req->defaults[i]->name)) {
            snprintf(err, sizeof err, "default parameter name \"%.100s\" is not valid",
                     req->defaults[i]->name);
            goto fail;
        }
    pthread_mutex_lock(&s->mu);
    sch_pool *pool = sch_pool_for(s, "", pipe, err, sizeof err);
    sch_pipe_entry *old = sch_pipe_find(s, req->name);
    uint64_t version = old ? old->info->version + 1 : 1;
    pthread_mutex_unlock(&s->mu);
    if (!pool)
        goto fail;
    int np = sch_pipeline_placeholders(pipe, &names);
    pb = sch_pipeline_to_pb(pipe);
    code = GRPC_STATUS_RESOURCE_EXHAUSTED;
    snprintf(err, sizeof err, "out of memory");
    if (np < 0 || !pb)
        goto fail;
    Pm__Scheduler__V1__PipelineInfo info = PM__SCHEDULER__V1__PIPELINE_INFO__INIT;
    info.name = req->name;
    info.pipeline = pb;
    info.n_params = (size_t)np;
    info.params = (char **)names;
    info.n_defaults = req->n_defaults;
    info.defaults = req->defaults;
    info.description = req->description;
    info.version = version;
    info.updated_ms = sch_now_ms();
    sch_op *op = sch_op_new(OP_PIPELINE);
    size_t len = protobuf_c_message_get_packed_size(&info.base);
    if (!op || !(op->rec_buf = malloc(len ? len : 1)) || !(op->name = strdup(req->name))) {
        sch_op_free(op);
        goto fail;
    }
    protobuf_c_message_pack(&info.base, op->rec_buf);
    op->row.record_len = len;
    op->arg = c;
    op->durable = true;
    op->done = put_done;
    sch_write(s, op);
    code = GRPC_STATUS_OK;
fail:
    if (code != GRPC_STATUS_OK)
        sch_reply(c, NULL, code, err);
    free(names);
    free(pb);
    sch_pipeline_free(pipe);
}

static int cmp_entry(const void *a, const void *b)
{
    return strcmp((*(sch_pipe_entry *const *)a)->name, (*(sch_pipe_entry *const *)b)->name);
}

void sch_handle_pipelines(sch *s, sch_call *c, const char *get_name)
{
    pthread_mutex_lock(&s->mu);
    if (get_name) {
        sch_pipe_entry *e = sch_pipe_find(s, get_name);
        if (e) {
            sch_reply(c, &e->info->base, GRPC_STATUS_OK, NULL);
        } else {
            char msg[300];
            snprintf(msg, sizeof msg, "no pipeline \"%.200s\"", get_name);
            sch_reply(c, NULL, GRPC_STATUS_NOT_FOUND, msg);
        }
        pthread_mutex_unlock(&s->mu);
        return;
    }
    size_t n = 0;
    for (sch_pipe_entry *e = s->pipelines; e; e = e->next)
        n++;
    sch_pipe_entry **v = calloc(n + 1, sizeof *v);
    Pm__Scheduler__V1__PipelineInfo **infos = calloc(n + 1, sizeof *infos);
    if (!v || !infos) {
        sch_reply(c, NULL, GRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory");
    } else {
        n = 0;
        for (sch_pipe_entry *e = s->pipelines; e; e = e->next)
            v[n++] = e;
        qsort(v, n, sizeof *v, cmp_entry);
        for (size_t i = 0; i < n; i++)
            infos[i] = v[i]->info;
        Pm__Scheduler__V1__ListPipelinesResponse resp =
            PM__SCHEDULER__V1__LIST_PIPELINES_RESPONSE__INIT;
        resp.n_pipelines = n;
        resp.pipelines = infos;
        sch_reply(c, &resp.base, GRPC_STATUS_OK, NULL);
    }
    pthread_mutex_unlock(&s->mu);
    free(v);
    free(infos);
}

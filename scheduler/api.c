/*
 * pm.scheduler.v1.Scheduler on the gRPC C core server API: accepting calls, decoding requests with
 * protobuf-c outside the lock, validating them with messages that name what is wrong, and the
 * handlers. Submit, Cancel, Requeue and PutPipeline answer only once their write is committed
 * (their completion runs on the writer thread); the others answer at once. Watch streams live in
 * watch.c, the stored pipelines (PutPipeline, GetPipeline, ListPipelines) in api_pipelines.c.
 *
 * A call's lifetime is a reference count (atomic, since completions come from two threads): one
 * reference for its handler until it has answered, one per operation in flight.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "scheduler/sched.h"

enum {
    M_SUBMIT,
    M_GET,
    M_WATCH,
    M_CANCEL,
    M_REQUEUE,
    M_LIST,
    M_PUT_PIPELINE,
    M_GET_PIPELINE,
    M_LIST_PIPELINES,
    M_LIST_WORKERS,
    M_COUNT
};

static const char *const method_names[M_COUNT] = {
    "/pm.scheduler.v1.Scheduler/Submit",        "/pm.scheduler.v1.Scheduler/Get",
    "/pm.scheduler.v1.Scheduler/Watch",         "/pm.scheduler.v1.Scheduler/Cancel",
    "/pm.scheduler.v1.Scheduler/Requeue",       "/pm.scheduler.v1.Scheduler/List",
    "/pm.scheduler.v1.Scheduler/PutPipeline",   "/pm.scheduler.v1.Scheduler/GetPipeline",
    "/pm.scheduler.v1.Scheduler/ListPipelines", "/pm.scheduler.v1.Scheduler/ListWorkers",
};

static const ProtobufCMessageDescriptor *const request_desc[M_COUNT] = {
    &pm__scheduler__v1__submit_request__descriptor,
    &pm__scheduler__v1__get_request__descriptor,
    &pm__scheduler__v1__watch_request__descriptor,
    &pm__scheduler__v1__cancel_request__descriptor,
    &pm__scheduler__v1__requeue_request__descriptor,
    &pm__scheduler__v1__list_request__descriptor,
    &pm__scheduler__v1__put_pipeline_request__descriptor,
    &pm__scheduler__v1__get_pipeline_request__descriptor,
    &pm__scheduler__v1__list_pipelines_request__descriptor,
    &pm__scheduler__v1__list_workers_request__descriptor,
};

/* Requests waiting for each method; Submit and Watch get more for concurrency. */
static const int armed[M_COUNT] = {64, 8, 32, 4, 4, 4, 4, 4, 4, 4};

#define LIST_MAX 1000
#define LIST_SCAN 10000

static void arm(sch *s, int method);

/* ---- call lifetime ------------------------------------------------------------------------ */

void sch_call_unref(sch_call *c)
{
    if (__atomic_sub_fetch(&c->pending, 1, __ATOMIC_ACQ_REL) != 0)
        return;
    sch_watch_free(c->watch);
    grpc_metadata_array_destroy(&c->md);
    if (c->req)
        grpc_byte_buffer_destroy(c->req);
    if (c->send_bb)
        grpc_byte_buffer_destroy(c->send_bb);
    if (c->call)
        grpc_call_unref(c->call);
    free(c);
}

void sch_call_ref(sch_call *c)
{
    __atomic_add_fetch(&c->pending, 1, __ATOMIC_ACQ_REL);
}

static void on_send(rpc_tag *t, bool ok);

void sch_reply_bb(sch_call *c, grpc_byte_buffer *bb, grpc_status_code code, const char *why)
{
    if (code != GRPC_STATUS_OK || !bb)
        rpc_log(code == GRPC_STATUS_OK ? "info" : "warn", "call",
                "method=%s status=%s message=\"%s\"", method_names[c->method] + 26,
                rpc_status_name(code), why ? why : "");
    if (code == GRPC_STATUS_OK && !bb) {
        code = GRPC_STATUS_INTERNAL;
        why = "encoding the reply failed";
    }
    c->send_bb = code == GRPC_STATUS_OK ? bb : NULL;
    if (code != GRPC_STATUS_OK && bb)
        grpc_byte_buffer_destroy(bb);
    sch_call_ref(c);
    if (rpc_send_unary(c->call, c->send_bb, code, why, &c->tag_send) != GRPC_CALL_OK)
        sch_call_unref(c);
    sch_call_unref(c); /* the handler is done with it */
}

void sch_reply(sch_call *c, const ProtobufCMessage *msg, grpc_status_code code, const char *why)
{
    sch_reply_bb(c, code == GRPC_STATUS_OK && msg ? sch_pack_bb(msg) : NULL, code, why);
}

static void on_send(rpc_tag *t, bool ok)
{
    sch_call *c = rpc_container_of(t, sch_call, tag_send);
    if (c->watch)
        sch_watch_sent(c->watch, ok);
    sch_call_unref(c);
}

static void on_close(rpc_tag *t, bool ok)
{
    (void)ok;
    sch_call *c = rpc_container_of(t, sch_call, tag_close);
    c->closed = true;
    if (c->watch && c->cancelled_out)
        sch_watch_cancelled(c->watch);
    sch_call_unref(c);
}

/* ---- helpers ------------------------------------------------------------------------------- */

static int parse_id(const char *s, int64_t *out)
{
    if (!s || !*s || strlen(s) > 18)
        return -EINVAL;
    int64_t v = 0;
    for (const char *p = s; *p; p++) {
        if (*p < '0' || *p > '9')
            return -EINVAL;
        v = v * 10 + (*p - '0');
    }
    if (v <= 0)
        return -EINVAL;
    *out = v;
    return 0;
}

/* The task id of a request, or false after answering INVALID_ARGUMENT. */
bool sch_id_or_reply(sch_call *c, const char *idstr, int64_t *id)
{
    if (parse_id(idstr, id) == 0)
        return true;
    char msg[200];
    snprintf(msg, sizeof msg, "task id \"%.100s\" is not a task id (a positive number)", idstr);
    sch_reply(c, NULL, GRPC_STATUS_INVALID_ARGUMENT, msg);
    return false;
}

/* The stored record of a task not in memory; NULL with *code and msg set. */
sch_rec *sch_read_task(sch *s, int64_t id, grpc_status_code *code, char *msg, size_t len)
{
    sch_rec *rec = NULL;
    pthread_mutex_lock(&s->reader_mu);
    int rc = s->reader->ops->task_get(s->reader, id, sch_rec_take, &rec);
    pthread_mutex_unlock(&s->reader_mu);
    if (rc == -ENOENT) {
        *code = GRPC_STATUS_NOT_FOUND;
        snprintf(msg, len, "no task %" PRId64, id);
    } else if (rc < 0 || !rec) {
        *code = GRPC_STATUS_UNAVAILABLE;
        snprintf(msg, len, "task %" PRId64 " could not be read: %s", id,
                 rc < 0 ? sch_store_error(s->reader) : "its record does not decode");
        if (rec)
            protobuf_c_message_free_unpacked(&rec->base, NULL);
        return NULL;
    }
    return rec;
}

/* ---- Submit --------------------------------------------------------------------------------- */

static void submit_done(sch *s, sch_op *op)
{
    sch_call *c = op->arg;
    if (op->rc < 0) {
        char msg[400];
        snprintf(msg, sizeof msg, "the task could not be stored: %.300s", op->error);
        sch_reply(c, NULL, GRPC_STATUS_UNAVAILABLE, msg);
    } else if (op->rc == 1) {
        /* The idempotency key is known: answer with that task, newest copy first. */
        pthread_mutex_lock(&s->mu);
        sch_task *t = sch_task_find(s, op->existing_id);
        if (t) {
            t->rec->created = false;
            sch_reply(c, &t->rec->base, GRPC_STATUS_OK, NULL);
            pthread_mutex_unlock(&s->mu);
        } else {
            pthread_mutex_unlock(&s->mu);
            grpc_status_code code;
            char msg[300];
            sch_rec *r = sch_read_task(s, op->existing_id, &code, msg, sizeof msg);
            if (r) {
                r->created = false;
                sch_reply(c, &r->base, GRPC_STATUS_OK, NULL);
                protobuf_c_message_free_unpacked(&r->base, NULL);
            } else {
                sch_reply(c, NULL, code, msg);
            }
        }
    } else {
        sch_task *t = calloc(1, sizeof *t);
        sch_rec *r = op->rec;
        op->rec = NULL;
        if (!t) {
            /* Stored but not adopted: recovery at the next start runs it. Say so. */
            sch_reply(c, NULL, GRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory");
            protobuf_c_message_free_unpacked(&r->base, NULL);
        } else {
            t->id = op->task_id;
            snprintf(t->idstr, sizeof t->idstr, "%" PRId64, t->id);
            t->rec = r;
            t->pool = op->arg2;
            sch_rec_set_str(&r->id, t->idstr);
            r->created = true;
            pthread_mutex_lock(&s->mu);
            sch_reply(c, &r->base, GRPC_STATUS_OK, NULL);
            r->created = false;
            sch_task_adopt(s, t);
            pthread_mutex_unlock(&s->mu);
        }
    }
    if (op->rec)
        protobuf_c_message_free_unpacked(&op->rec->base, NULL);
    sch_op_free(op);
}

static void handle_submit(sch *s, sch_call *c, Pm__Scheduler__V1__SubmitRequest *req)
{
    char err[512];
    grpc_status_code code = GRPC_STATUS_INVALID_ARGUMENT;
    sch_pipeline *base = NULL, *pipe = NULL;
    sch_param *params = NULL;
    Pm__Scheduler__V1__Pipeline *pb = NULL;
    sch_op *op = NULL;
    uint8_t *buf = NULL;
    const char *pipeline_name = "";

    int sources =
        (req->pipeline_json[0] != 0) + (req->pipeline != NULL) + (req->pipeline_name[0] != 0);
    if (sources != 1) {
        snprintf(err, sizeof err,
                 sources ? "give only one of pipeline_json, pipeline and pipeline_name"
                         : "empty request: give pipeline_json, pipeline or pipeline_name");
        goto fail;
    }
    size_t n_defaults = 0;
    Pm__Scheduler__V1__Param **defaults = NULL;
    if (req->pipeline_json[0]) {
        if (sch_pipeline_parse_json(req->pipeline_json, strlen(req->pipeline_json), &base, err,
                                    sizeof err) < 0)
            goto fail;
    } else if (req->pipeline) {
        if (sch_pipeline_from_pb(req->pipeline, &base, err, sizeof err) < 0)
            goto fail;
    } else {
        pthread_mutex_lock(&s->mu);
        sch_pipe_entry *e = sch_pipe_find(s, req->pipeline_name);
        if (e) {
            base = sch_pipeline_dup(e->pipe);
            /* The defaults are copied as params below, before the request's own. */
            n_defaults = e->info->n_defaults;
            defaults = e->info->defaults;
            params = calloc(n_defaults + req->n_params + 1, sizeof *params);
            for (size_t i = 0; params && i < n_defaults; i++) {
                params[i].name = strdup(defaults[i]->name);
                params[i].value = strdup(defaults[i]->value);
            }
        }
        pthread_mutex_unlock(&s->mu);
        if (!e) {
            snprintf(err, sizeof err, "unknown pipeline \"%.200s\"", req->pipeline_name);
            goto fail;
        }
        if (!base || !params) {
            code = GRPC_STATUS_RESOURCE_EXHAUSTED;
            snprintf(err, sizeof err, "out of memory");
            goto fail;
        }
        pipeline_name = req->pipeline_name;
    }
    if (!params)
        params = calloc(req->n_params + 1, sizeof *params);
    if (!params) {
        code = GRPC_STATUS_RESOURCE_EXHAUSTED;
        snprintf(err, sizeof err, "out of memory");
        goto fail;
    }
    for (size_t i = 0; i < req->n_params; i++) {
        if (!sch_param_name_ok(req->params[i]->name)) {
            snprintf(err, sizeof err,
                     "parameter name \"%.100s\" is not valid (letters, digits, _ . -, not "
                     "starting with a digit)",
                     req->params[i]->name);
            goto fail;
        }
        params[n_defaults + i].name = req->params[i]->name;
        params[n_defaults + i].value = req->params[i]->value;
    }
    for (size_t i = 0; i < req->n_labels; i++)
        if (!sch_name_ok(req->labels[i]->name)) {
            snprintf(err, sizeof err, "label name \"%.100s\" is not valid", req->labels[i]->name);
            goto fail;
        }
    if (req->idempotency_key[0] && strlen(req->idempotency_key) > 256) {
        snprintf(err, sizeof err, "idempotency_key is longer than 256 bytes");
        goto fail;
    }
    if (sch_pipeline_substitute(base, params, n_defaults + req->n_params, &pipe, err, sizeof err) <
        0)
        goto fail;
    uint64_t cap = req->output_cap ? req->output_cap : s->cfg.output_cap;
    if (cap > s->cfg.max_output_cap) {
        snprintf(err, sizeof err, "output_cap %" PRIu64 " is over this scheduler's limit %" PRIu64,
                 cap, s->cfg.max_output_cap);
        goto fail;
    }
    if (req->retry && req->retry->max_attempts > 1000) {
        snprintf(err, sizeof err, "retry.max_attempts %u is over 1000", req->retry->max_attempts);
        goto fail;
    }

    pthread_mutex_lock(&s->mu);
    sch_pool *pool = sch_pool_for(s, req->pool, pipe, err, sizeof err);
    bool full = s->n_active >= s->cfg.max_active;
    bool down = s->shutting_down;
    pthread_mutex_unlock(&s->mu);
    if (!pool)
        goto fail;
    if (down) {
        code = GRPC_STATUS_UNAVAILABLE;
        snprintf(err, sizeof err, "the scheduler is shutting down");
        goto fail;
    }
    if (full) {
        code = GRPC_STATUS_RESOURCE_EXHAUSTED;
        snprintf(err, sizeof err, "%" PRIu64 " tasks are queued or running (--max-active)",
                 s->cfg.max_active);
        goto fail;
    }

    /* The record: built from borrowed pointers, packed, then unpacked into a tree we own. */
    pb = sch_pipeline_to_pb(pipe);
    code = GRPC_STATUS_RESOURCE_EXHAUSTED;
    snprintf(err, sizeof err, "out of memory");
    if (!pb)
        goto fail;
    int64_t now = sch_now_ms();
    sch_rec r = PM__SCHEDULER__V1__TASK__INIT;
    r.state = PM__SCHEDULER__V1__TASK_STATE__QUEUED;
    r.pipeline_name = (char *)pipeline_name;
    r.pipeline = pb;
    r.n_params = req->n_params;
    r.params = req->params;
    r.n_labels = req->n_labels;
    r.labels = req->labels;
    r.idempotency_key = req->idempotency_key;
    r.priority = req->priority;
    r.retry = req->retry;
    r.step_timeout_ms = req->step_timeout_ms;
    r.total_timeout_ms = req->total_timeout_ms;
    r.output_cap = cap;
    r.pool = (char *)pool->cfg->name;
    r.created_ms = now;
    r.updated_ms = now;
    r.last_seq = 1;
    size_t len = protobuf_c_message_get_packed_size(&r.base);
    buf = malloc(len ? len : 1);
    op = sch_op_new(OP_SUBMIT);
    if (!buf || !op)
        goto fail;
    protobuf_c_message_pack(&r.base, buf);
    op->rec = pm__scheduler__v1__task__unpack(NULL, len, buf);
    op->idem_key = strdup(req->idempotency_key);
    op->pipeline = strdup(pipeline_name);
    op->lease_owner = strdup("");
    if (!op->rec || !op->idem_key || !op->pipeline || !op->lease_owner)
        goto fail;
    op->rec_buf = buf;
    buf = NULL;
    op->row = (sch_task_row){.idem_key = op->idem_key,
                             .state = SCH_QUEUED,
                             .priority = req->priority,
                             .pipeline = op->pipeline,
                             .created_ms = now,
                             .lease_owner = op->lease_owner,
                             .last_seq = 1,
                             .record = op->rec_buf,
                             .record_len = len};
    op->arg = c;
    op->arg2 = pool;
    op->durable = true;
    op->done = submit_done;
    sch_write(s, op);
    op = NULL;
    code = GRPC_STATUS_OK;
fail:
    if (code != GRPC_STATUS_OK) {
        if (op && op->rec)
            protobuf_c_message_free_unpacked(&op->rec->base, NULL);
        sch_reply(c, NULL, code, err);
    }
    if (params && req->pipeline_name[0])
        for (size_t i = 0; i < n_defaults; i++) {
            free((char *)params[i].name);
            free((char *)params[i].value);
        }
    free(params);
    free(pb);
    free(buf);
    sch_op_free(op);
    sch_pipeline_free(base);
    sch_pipeline_free(pipe);
}

/* ---- Get, Cancel, Requeue, List -------------------------------------------------------------- */

static void handle_get(sch *s, sch_call *c, const char *idstr)
{
    int64_t id;
    char msg[300];
    if (!sch_id_or_reply(c, idstr, &id))
        return;
    pthread_mutex_lock(&s->mu);
    sch_task *t = sch_task_find(s, id);
    if (t) {
        sch_reply(c, &t->rec->base, GRPC_STATUS_OK, NULL);
        pthread_mutex_unlock(&s->mu);
        return;
    }
    pthread_mutex_unlock(&s->mu);
    grpc_status_code code;
    sch_rec *r = sch_read_task(s, id, &code, msg, sizeof msg);
    if (!r) {
        sch_reply(c, NULL, code, msg);
        return;
    }
    sch_reply(c, &r->base, GRPC_STATUS_OK, NULL);
    protobuf_c_message_free_unpacked(&r->base, NULL);
}

static void handle_cancel(sch *s, sch_call *c, const char *idstr, bool requeue)
{
    int64_t id;
    char msg[300];
    if (!sch_id_or_reply(c, idstr, &id))
        return;
    pthread_mutex_lock(&s->mu);
    grpc_status_code code;
    if (requeue) {
        code = sch_task_requeue(s, id, c, msg, sizeof msg);
    } else {
        sch_task *t = sch_task_find(s, id);
        if (t) {
            code = sch_task_cancel(s, t, c, msg, sizeof msg);
        } else {
            pthread_mutex_unlock(&s->mu);
            sch_rec *r = sch_read_task(s, id, &code, msg, sizeof msg);
            if (r) {
                code = GRPC_STATUS_FAILED_PRECONDITION;
                snprintf(msg, sizeof msg, "task %" PRId64 " is already %s", id,
                         sch_state_name(r->state));
                protobuf_c_message_free_unpacked(&r->base, NULL);
            }
            sch_reply(c, NULL, code, msg);
            return;
        }
    }
    pthread_mutex_unlock(&s->mu);
    if (code != GRPC_STATUS_OK)
        sch_reply(c, NULL, code, msg);
}

typedef struct {
    const Pm__Scheduler__V1__ListRequest *req;
    Pm__Scheduler__V1__Task **tasks;
    size_t n, limit;
    int64_t last_id;
    size_t scanned;
} list_ctx;

static bool labels_match(const sch_rec *r, const Pm__Scheduler__V1__ListRequest *req)
{
    for (size_t i = 0; i < req->n_labels; i++) {
        bool found = false;
        for (size_t k = 0; k < r->n_labels && !found; k++)
            found = !strcmp(r->labels[k]->name, req->labels[i]->name) &&
                    !strcmp(r->labels[k]->value, req->labels[i]->value);
        if (!found)
            return false;
    }
    return true;
}

static int list_row(const sch_task_row *row, void *arg)
{
    list_ctx *l = arg;
    l->last_id = row->id;
    l->scanned++;
    sch_rec *r = sch_rec_from_row(row);
    if (!r)
        return 0;
    if (!labels_match(r, l->req) || l->n >= l->limit) {
        protobuf_c_message_free_unpacked(&r->base, NULL);
        return l->n >= l->limit;
    }
    for (size_t i = 0; i < r->n_steps; i++)
        protobuf_c_message_free_unpacked(&r->steps[i]->base, NULL);
    free(r->steps);
    r->steps = NULL;
    r->n_steps = 0;
    l->tasks[l->n++] = r;
    return l->n >= l->limit;
}

static void handle_list(sch *s, sch_call *c, const Pm__Scheduler__V1__ListRequest *req)
{
    char msg[300];
    uint32_t states = 0;
    for (size_t i = 0; i < req->n_states; i++) {
        if ((int)req->states[i] < SCH_QUEUED || (int)req->states[i] > SCH_DEAD) {
            snprintf(msg, sizeof msg, "state %d is not a task state", req->states[i]);
            sch_reply(c, NULL, GRPC_STATUS_INVALID_ARGUMENT, msg);
            return;
        }
        states |= 1u << req->states[i];
    }
    int64_t before = 0;
    if (req->page_token[0] && parse_id(req->page_token, &before) < 0) {
        snprintf(msg, sizeof msg, "page_token \"%.100s\" is not one this server gave",
                 req->page_token);
        sch_reply(c, NULL, GRPC_STATUS_INVALID_ARGUMENT, msg);
        return;
    }
    if (req->page_size > LIST_MAX) {
        snprintf(msg, sizeof msg, "page_size %u is over %d", req->page_size, LIST_MAX);
        sch_reply(c, NULL, GRPC_STATUS_INVALID_ARGUMENT, msg);
        return;
    }
    list_ctx l = {.req = req, .limit = req->page_size ? req->page_size : 100};
    l.tasks = calloc(l.limit, sizeof *l.tasks);
    if (!l.tasks) {
        sch_reply(c, NULL, GRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory");
        return;
    }
    bool more = true;
    pthread_mutex_lock(&s->reader_mu);
    /* Label filters are applied here, so scan in pages until the page is full; a bounded scan
     * keeps one call cheap, and the token lets the client continue where it stopped. */
    while (l.n < l.limit && l.scanned < LIST_SCAN) {
        sch_list_filter f = {
            .states = states, .pipeline = req->pipeline_name, .before_id = before, .limit = 256};
        size_t got_before = l.scanned;
        int rc = s->reader->ops->tasks_list(s->reader, &f, list_row, &l);
        if (rc < 0) {
            pthread_mutex_unlock(&s->reader_mu);
            snprintf(msg, sizeof msg, "listing failed: %s", sch_store_error(s->reader));
            sch_reply(c, NULL, GRPC_STATUS_UNAVAILABLE, msg);
            goto out;
        }
        if (l.scanned - got_before < 256 && l.n < l.limit) {
            more = false;
            break;
        }
        before = l.last_id;
    }
    pthread_mutex_unlock(&s->reader_mu);
    Pm__Scheduler__V1__ListResponse resp = PM__SCHEDULER__V1__LIST_RESPONSE__INIT;
    resp.tasks = l.tasks;
    resp.n_tasks = l.n;
    char tok[24] = "";
    if (more && l.last_id > 1)
        snprintf(tok, sizeof tok, "%" PRId64, l.last_id);
    resp.next_page_token = tok;
    sch_reply(c, &resp.base, GRPC_STATUS_OK, NULL);
out:
    for (size_t i = 0; i < l.n; i++)
        protobuf_c_message_free_unpacked(&l.tasks[i]->base, NULL);
    free(l.tasks);
}

/* ---- ListWorkers ------------------------------------------------------------------------------
 */

static void handle_workers(sch *s, sch_call *c)
{
    pthread_mutex_lock(&s->mu);
    size_t n = 0, ne = 0;
    for (size_t i = 0; i < s->n_pools; i++)
        for (sch_worker *w = s->pools[i].workers; w; w = w->next) {
            n++;
            ne += w->n_execs;
        }
    Pm__Scheduler__V1__Worker *ws = calloc(n + 1, sizeof *ws);
    Pm__Scheduler__V1__Worker **wp = calloc(n + 1, sizeof *wp);
    Pm__Scheduler__V1__Executor *es = calloc(ne + 1, sizeof *es);
    Pm__Scheduler__V1__Executor **ep = calloc(ne + 1, sizeof *ep);
    if (!ws || !wp || !es || !ep) {
        sch_reply(c, NULL, GRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory");
    } else {
        size_t k = 0, ke = 0;
        for (size_t i = 0; i < s->n_pools; i++)
            for (sch_worker *w = s->pools[i].workers; w; w = w->next, k++) {
                Pm__Scheduler__V1__Worker *x = &ws[k];
                pm__scheduler__v1__worker__init(x);
                x->name = w->name;
                x->pool = (char *)s->pools[i].cfg->name;
                x->healthy = w->healthy;
                x->slots = s->pools[i].cfg->slots;
                x->busy = w->busy;
                x->last_check_ms = w->last_check_ms;
                x->draining = w->draining;
                x->executors = &ep[ke];
                x->n_executors = w->n_execs;
                for (size_t j = 0; j < w->n_execs; j++, ke++) {
                    pm__scheduler__v1__executor__init(&es[ke]);
                    es[ke].name = w->execs[j].name;
                    es[ke].target = w->execs[j].target;
                    es[ke].healthy = w->execs[j].healthy;
                    es[ke].error = w->execs[j].error;
                    ep[ke] = &es[ke];
                }
                wp[k] = x;
            }
        Pm__Scheduler__V1__ListWorkersResponse resp =
            PM__SCHEDULER__V1__LIST_WORKERS_RESPONSE__INIT;
        resp.n_workers = n;
        resp.workers = wp;
        sch_reply(c, &resp.base, GRPC_STATUS_OK, NULL);
    }
    pthread_mutex_unlock(&s->mu);
    free(ws);
    free(wp);
    free(es);
    free(ep);
}

/* ---- accepting calls ---------------------------------------------------------------------------
 */

static void on_new(rpc_tag *tag, bool ok)
{
    sch_call *c = rpc_container_of(tag, sch_call, tag_new);
    sch *s = c->s;
    if (!ok) {
        grpc_metadata_array_destroy(&c->md);
        free(c);
        return;
    }
    arm(s, c->method);
    sch_call_ref(c);
    if (rpc_recv_close(c->call, &c->cancelled_out, &c->tag_close) != GRPC_CALL_OK) {
        c->closed = true;
        sch_call_unref(c);
    }
    if (s->token && !rpc_token_ok(&c->md, s->token)) {
        sch_reply(c, NULL, GRPC_STATUS_UNAUTHENTICATED,
                  "missing or wrong bearer token (metadata authorization: Bearer ...)");
        return;
    }
    uint8_t *data = NULL;
    size_t len = 0;
    ProtobufCMessage *m = NULL;
    if (c->req && rpc_bb_flatten(c->req, &data, &len) == 0)
        m = protobuf_c_message_unpack(request_desc[c->method], NULL, len, data);
    else if (!c->req)
        m = protobuf_c_message_unpack(request_desc[c->method], NULL, 0, (const uint8_t *)"");
    free(data);
    if (!m) {
        char msg[200];
        snprintf(msg, sizeof msg, "the request does not decode as %s",
                 request_desc[c->method]->name);
        sch_reply(c, NULL, GRPC_STATUS_INVALID_ARGUMENT, msg);
        return;
    }
    switch (c->method) {
    case M_SUBMIT:
        handle_submit(s, c, (Pm__Scheduler__V1__SubmitRequest *)m);
        break;
    case M_GET:
        handle_get(s, c, ((Pm__Scheduler__V1__GetRequest *)m)->id);
        break;
    case M_WATCH:
        sch_watch_start(s, c, (Pm__Scheduler__V1__WatchRequest *)m);
        break;
    case M_CANCEL:
        handle_cancel(s, c, ((Pm__Scheduler__V1__CancelRequest *)m)->id, false);
        break;
    case M_REQUEUE:
        handle_cancel(s, c, ((Pm__Scheduler__V1__RequeueRequest *)m)->id, true);
        break;
    case M_LIST:
        handle_list(s, c, (Pm__Scheduler__V1__ListRequest *)m);
        break;
    case M_PUT_PIPELINE:
        sch_handle_put_pipeline(s, c, (Pm__Scheduler__V1__PutPipelineRequest *)m);
        break;
    case M_GET_PIPELINE:
        sch_handle_pipelines(s, c, ((Pm__Scheduler__V1__GetPipelineRequest *)m)->name);
        break;
    case M_LIST_PIPELINES:
        sch_handle_pipelines(s, c, NULL);
        break;
    case M_LIST_WORKERS:
        handle_workers(s, c);
        break;
    }
    protobuf_c_message_free_unpacked(m, NULL);
}

static void arm(sch *s, int method)
{
    if (s->shutting_down)
        return;
    sch_call *c = calloc(1, sizeof *c);
    if (!c)
        return;
    c->s = s;
    c->method = method;
    c->pending = 1; /* the handler's */
    c->tag_new.fn = on_new;
    c->tag_close.fn = on_close;
    c->tag_send.fn = on_send;
    grpc_metadata_array_init(&c->md);
    if (grpc_server_request_registered_call(s->server, s->methods[method], &c->call, &c->deadline,
                                            &c->md, &c->req, s->cq, s->cq,
                                            &c->tag_new) != GRPC_CALL_OK) {
        grpc_metadata_array_destroy(&c->md);
        free(c);
    }
}

int sch_api_register(sch *s)
{
    for (int m = 0; m < M_COUNT; m++) {
        s->methods[m] = grpc_server_register_method(s->server, method_names[m], NULL,
                                                    GRPC_SRM_PAYLOAD_READ_INITIAL_BYTE_BUFFER, 0);
        if (!s->methods[m])
            return -EINVAL;
    }
    return 0;
}

void sch_api_start(sch *s)
{
    for (int m = 0; m < M_COUNT; m++)
        for (int i = 0; i < armed[m]; i++)
            arm(s, m);
}

/*
 * grpc.health.v1.Health (Check and Watch) and the catch-all that answers methods nobody
 * registered with UNIMPLEMENTED instead of leaving them to hang until their deadline.
 * All of it runs on the completion-queue thread; rpc_health_shutdown may come from any thread and
 * takes the mutex.
 */
#include "rpc/rpc.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <pb_decode.h>
#include <pb_encode.h>

#include "protos/health.pb.h"

enum { H_CHECK, H_WATCH };

typedef struct hcall {
    rpc_tag tag_new, tag_close, tag_send;
    struct rpc_health *h;
    int kind;
    grpc_call *call;
    gpr_timespec deadline;
    grpc_metadata_array md;
    grpc_byte_buffer *req;
    int cancelled;
    int pending;        /* tags given to gRPC and not yet back */
    bool closed;        /* RECV_CLOSE_ON_SERVER came back */
    bool sending;       /* a SEND_MESSAGE is in flight */
    bool finished;      /* status sent */
    struct hcall *next; /* in the watcher list */
} hcall;

struct rpc_health {
    grpc_server *server;
    grpc_completion_queue *cq;
    void *method[2];
    const char *const *services;
    pthread_mutex_t mu;
    bool serving;
    hcall *watchers;
};

static void hcall_arm(rpc_health *h, int kind);

static void hcall_maybe_free(hcall *c)
{
    if (c->pending > 0 || !c->closed)
        return;
    rpc_health *h = c->h;
    pthread_mutex_lock(&h->mu);
    for (hcall **p = &h->watchers; *p; p = &(*p)->next)
        if (*p == c) {
            *p = c->next;
            break;
        }
    pthread_mutex_unlock(&h->mu);
    grpc_metadata_array_destroy(&c->md);
    if (c->req)
        grpc_byte_buffer_destroy(c->req);
    grpc_call_unref(c->call);
    free(c);
}

/* Status of one service name: "" and the listed ones are known. */
static int service_status(rpc_health *h, const char *name, bool *known)
{
    *known = name[0] == '\0';
    for (const char *const *s = h->services; s && *s && !*known; s++)
        *known = strcmp(*s, name) == 0;
    if (!*known)
        return grpc_health_v1_HealthCheckResponse_ServingStatus_SERVICE_UNKNOWN;
    return h->serving ? grpc_health_v1_HealthCheckResponse_ServingStatus_SERVING
                      : grpc_health_v1_HealthCheckResponse_ServingStatus_NOT_SERVING;
}

static grpc_byte_buffer *encode_status(int status)
{
    grpc_health_v1_HealthCheckResponse resp = grpc_health_v1_HealthCheckResponse_init_zero;
    resp.status = (grpc_health_v1_HealthCheckResponse_ServingStatus)status;
    uint8_t buf[16];
    pb_ostream_t os = pb_ostream_from_buffer(buf, sizeof buf);
    pb_encode(&os, grpc_health_v1_HealthCheckResponse_fields, &resp);
    return rpc_bb_from(buf, os.bytes_written);
}

/* Sends a watcher's last message and its status. Called with h->mu held. */
static void watch_finish_locked(hcall *c)
{
    if (c->finished || c->sending || c->closed)
        return;
    grpc_byte_buffer *bb =
        encode_status(grpc_health_v1_HealthCheckResponse_ServingStatus_NOT_SERVING);
    grpc_op ops[2];
    memset(ops, 0, sizeof ops);
    ops[0].op = GRPC_OP_SEND_MESSAGE;
    ops[0].data.send_message.send_message = bb;
    grpc_slice d = grpc_slice_from_static_string("server shutting down");
    ops[1].op = GRPC_OP_SEND_STATUS_FROM_SERVER;
    ops[1].data.send_status_from_server.status = GRPC_STATUS_UNAVAILABLE;
    ops[1].data.send_status_from_server.status_details = &d;
    c->finished = true;
    if (grpc_call_start_batch(c->call, ops, 2, &c->tag_send, NULL) == GRPC_CALL_OK) {
        c->pending++;
        c->sending = true;
    }
    grpc_byte_buffer_destroy(bb);
}

static void on_send(rpc_tag *t, bool ok)
{
    (void)ok;
    hcall *c = rpc_container_of(t, hcall, tag_send);
    c->pending--;
    pthread_mutex_lock(&c->h->mu);
    c->sending = false;
    if (c->kind == H_WATCH && !c->h->serving)
        watch_finish_locked(c);
    pthread_mutex_unlock(&c->h->mu);
    hcall_maybe_free(c);
}

static void on_close(rpc_tag *t, bool ok)
{
    (void)ok;
    hcall *c = rpc_container_of(t, hcall, tag_close);
    c->pending--;
    c->closed = true;
    hcall_maybe_free(c);
}

static void on_new(rpc_tag *t, bool ok)
{
    hcall *c = rpc_container_of(t, hcall, tag_new);
    rpc_health *h = c->h;
    if (!ok) {
        /* The server is shutting down: this slot was never filled. */
        grpc_metadata_array_destroy(&c->md);
        free(c);
        return;
    }
    hcall_arm(h, c->kind);

    if (rpc_recv_close(c->call, &c->cancelled, &c->tag_close) == GRPC_CALL_OK)
        c->pending++;
    else
        c->closed = true;

    grpc_health_v1_HealthCheckRequest req = grpc_health_v1_HealthCheckRequest_init_zero;
    uint8_t *data = NULL;
    size_t len = 0;
    bool parsed = c->req && rpc_bb_flatten(c->req, &data, &len) == 0;
    if (parsed) {
        pb_istream_t is = pb_istream_from_buffer(data, len);
        parsed = pb_decode(&is, grpc_health_v1_HealthCheckRequest_fields, &req);
    }
    free(data);
    if (!parsed) {
        c->finished = true;
        if (rpc_send_status(c->call, false, GRPC_STATUS_INVALID_ARGUMENT,
                            "HealthCheckRequest does not parse (service name over 255 bytes?)",
                            &c->tag_send) == GRPC_CALL_OK)
            c->pending++;
        hcall_maybe_free(c);
        return;
    }
    pthread_mutex_lock(&h->mu);
    bool known;
    int status = service_status(h, req.service, &known);
    grpc_byte_buffer *bb = encode_status(status);
    if (c->kind == H_CHECK) {
        c->finished = true;
        grpc_call_error e = known ? rpc_send_unary(c->call, bb, GRPC_STATUS_OK, NULL, &c->tag_send)
                                  : rpc_send_status(c->call, false, GRPC_STATUS_NOT_FOUND,
                                                    "unknown service", &c->tag_send);
        if (e == GRPC_CALL_OK)
            c->pending++;
    } else {
        grpc_op ops[2];
        memset(ops, 0, sizeof ops);
        ops[0].op = GRPC_OP_SEND_INITIAL_METADATA;
        ops[1].op = GRPC_OP_SEND_MESSAGE;
        ops[1].data.send_message.send_message = bb;
        if (grpc_call_start_batch(c->call, ops, 2, &c->tag_send, NULL) == GRPC_CALL_OK) {
            c->pending++;
            c->sending = true;
        }
        c->next = h->watchers;
        h->watchers = c;
    }
    pthread_mutex_unlock(&h->mu);
    grpc_byte_buffer_destroy(bb);
    hcall_maybe_free(c);
}

static void hcall_arm(rpc_health *h, int kind)
{
    hcall *c = calloc(1, sizeof *c);
    if (!c)
        return;
    c->h = h;
    c->kind = kind;
    c->tag_new.fn = on_new;
    c->tag_close.fn = on_close;
    c->tag_send.fn = on_send;
    grpc_metadata_array_init(&c->md);
    if (grpc_server_request_registered_call(h->server, h->method[kind], &c->call, &c->deadline,
                                            &c->md, &c->req, h->cq, h->cq,
                                            &c->tag_new) != GRPC_CALL_OK) {
        grpc_metadata_array_destroy(&c->md);
        free(c);
    }
}

rpc_health *rpc_health_register(grpc_server *server, const char *const *services)
{
    rpc_health *h = calloc(1, sizeof *h);
    if (!h)
        return NULL;
    h->server = server;
    h->services = services;
    h->serving = true;
    pthread_mutex_init(&h->mu, NULL);
    h->method[H_CHECK] = grpc_server_register_method(server, "/grpc.health.v1.Health/Check", NULL,
                                                     GRPC_SRM_PAYLOAD_READ_INITIAL_BYTE_BUFFER, 0);
    h->method[H_WATCH] = grpc_server_register_method(server, "/grpc.health.v1.Health/Watch", NULL,
                                                     GRPC_SRM_PAYLOAD_READ_INITIAL_BYTE_BUFFER, 0);
    return h;
}

void rpc_health_start(rpc_health *h, grpc_completion_queue *cq)
{
    h->cq = cq;
    for (int i = 0; i < 2; i++) {
        hcall_arm(h, H_CHECK);
        hcall_arm(h, H_WATCH);
    }
}

void rpc_health_shutdown(rpc_health *h)
{
    pthread_mutex_lock(&h->mu);
    h->serving = false;
    for (hcall *c = h->watchers; c; c = c->next)
        watch_finish_locked(c);
    pthread_mutex_unlock(&h->mu);
}

void rpc_health_destroy(rpc_health *h)
{
    if (!h)
        return;
    pthread_mutex_destroy(&h->mu);
    free(h);
}

/* ---- UNIMPLEMENTED for everything else --------------------------------------------------- */

typedef struct {
    rpc_tag tag_new, tag_done;
    grpc_server *server;
    grpc_completion_queue *cq;
    grpc_call *call;
    grpc_call_details details;
    grpc_metadata_array md;
    int cancelled;
} unimpl;

static void unimpl_arm(grpc_server *server, grpc_completion_queue *cq);

static void unimpl_free(unimpl *u)
{
    grpc_call_details_destroy(&u->details);
    grpc_metadata_array_destroy(&u->md);
    if (u->call)
        grpc_call_unref(u->call);
    free(u);
}

static void unimpl_done(rpc_tag *t, bool ok)
{
    (void)ok;
    unimpl_free(rpc_container_of(t, unimpl, tag_done));
}

static void unimpl_new(rpc_tag *t, bool ok)
{
    unimpl *u = rpc_container_of(t, unimpl, tag_new);
    if (!ok) {
        unimpl_free(u);
        return;
    }
    unimpl_arm(u->server, u->cq);
    char msg[300];
    snprintf(msg, sizeof msg, "unknown method %.*s", (int)GRPC_SLICE_LENGTH(u->details.method),
             (const char *)GRPC_SLICE_START_PTR(u->details.method));
    grpc_slice d = grpc_slice_from_copied_string(msg);
    grpc_op ops[3];
    memset(ops, 0, sizeof ops);
    ops[0].op = GRPC_OP_SEND_INITIAL_METADATA;
    ops[1].op = GRPC_OP_SEND_STATUS_FROM_SERVER;
    ops[1].data.send_status_from_server.status = GRPC_STATUS_UNIMPLEMENTED;
    ops[1].data.send_status_from_server.status_details = &d;
    ops[2].op = GRPC_OP_RECV_CLOSE_ON_SERVER;
    ops[2].data.recv_close_on_server.cancelled = &u->cancelled;
    grpc_call_error e = grpc_call_start_batch(u->call, ops, 3, &u->tag_done, NULL);
    grpc_slice_unref(d);
    if (e != GRPC_CALL_OK)
        unimpl_free(u);
}

static void unimpl_arm(grpc_server *server, grpc_completion_queue *cq)
{
    unimpl *u = calloc(1, sizeof *u);
    if (!u)
        return;
    u->tag_new.fn = unimpl_new;
    u->tag_done.fn = unimpl_done;
    u->server = server;
    u->cq = cq;
    grpc_call_details_init(&u->details);
    grpc_metadata_array_init(&u->md);
    if (grpc_server_request_call(server, &u->call, &u->details, &u->md, cq, cq, &u->tag_new) !=
        GRPC_CALL_OK) {
        u->call = NULL;
        unimpl_free(u);
    }
}

void rpc_unimplemented_start(grpc_server *server, grpc_completion_queue *cq, int n)
{
    for (int i = 0; i < n; i++)
        unimpl_arm(server, cq);
}

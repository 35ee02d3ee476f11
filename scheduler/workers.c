/*
 * Worker pods at run time: one sch_worker per pod address of each pool, with one channel per
 * executor of the pool (kept for the worker's life, so steps reuse connections), a slot count,
 * and health from grpc.health.v1/Check calls to every executor at each --health-interval. A
 * worker takes leases only while every one of its executors answered SERVING on its last check.
 * DNS pools are re-resolved by the resolver thread: new addresses become workers, vanished ones
 * drain (no new leases) and are freed once idle. A Run call that fails UNAVAILABLE marks its
 * executor unhealthy at once, so the next dispatch skips the worker until a check passes.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <grpc/grpc_security.h>
#include <grpc/support/alloc.h>

#include "protos/health.pb-c.h"
#include "scheduler/sched.h"

#define HEALTH_METHOD "/grpc.health.v1.Health/Check"
#define MAX_RESOLVED 1024

/* A channel to one executor: TLS when the scheduler has --executor-tls-ca and the executor
 * listens on TCP; a Unix socket is on this machine and stays plaintext. */
static grpc_channel *make_channel(const sch *s, const char *target)
{
    grpc_arg args[5];
    memset(args, 0, sizeof args);
    /* Executors restart (a pod's container is replaced): reconnect within seconds, not the
     * default two minutes of backoff. */
    args[0].type = GRPC_ARG_INTEGER;
    args[0].key = (char *)GRPC_ARG_MAX_RECONNECT_BACKOFF_MS;
    args[0].value.integer = 2000;
    args[1].type = GRPC_ARG_INTEGER;
    args[1].key = (char *)GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS;
    args[1].value.integer = 100;
    args[2].type = GRPC_ARG_INTEGER;
    args[2].key = (char *)GRPC_ARG_MIN_RECONNECT_BACKOFF_MS;
    args[2].value.integer = 100;
    args[3].type = GRPC_ARG_STRING;
    args[3].key = (char *)GRPC_ARG_PRIMARY_USER_AGENT_STRING;
    args[3].value.string = (char *)"pm-scheduler/" PM_VERSION;
    grpc_channel_args ca = {.num_args = 4, .args = args};
    bool tls = s->cfg.executor_tls_ca && strncmp(target, "unix:", 5) != 0;
    if (tls && s->cfg.executor_tls_name) {
        args[4].type = GRPC_ARG_STRING;
        args[4].key = (char *)GRPC_SSL_TARGET_NAME_OVERRIDE_ARG;
        args[4].value.string = (char *)s->cfg.executor_tls_name;
        ca.num_args = 5;
    }
    if (tls)
        return grpc_channel_create(target, s->exec_creds, &ca);
    grpc_channel_credentials *creds = grpc_insecure_credentials_create();
    grpc_channel *ch = grpc_channel_create(target, creds, &ca);
    grpc_channel_credentials_release(creds);
    return ch;
}

static sch_worker *worker_new(sch *s, sch_pool *p, const char *name)
{
    const sch_pool_config *pc = p->cfg;
    sch_worker *w = calloc(1, sizeof *w);
    if (!w)
        return NULL;
    w->s = s;
    w->pool = p;
    w->name = strdup(name);
    w->execs = calloc(pc->n_executors, sizeof *w->execs);
    if (!w->name || !w->execs) {
        free(w->name);
        free(w->execs);
        free(w);
        return NULL;
    }
    w->n_execs = pc->n_executors;
    for (size_t i = 0; i < pc->n_executors; i++) {
        sch_exec *e = &w->execs[i];
        e->w = w;
        e->name = pc->executors[i].name;
        sch_exec_target(&pc->executors[i], name, e->target, sizeof e->target);
        e->ch = make_channel(s, e->target);
        snprintf(e->error, sizeof e->error, "not checked yet");
    }
    w->next = p->workers;
    p->workers = w;
    rpc_log("info", "worker_added", "pool=%s worker=%s executors=%zu", pc->name, name,
            pc->n_executors);
    return w;
}

static void worker_free(sch_worker *w)
{
    for (size_t i = 0; i < w->n_execs; i++)
        if (w->execs[i].ch)
            grpc_channel_destroy(w->execs[i].ch);
    free(w->execs);
    free(w->name);
    free(w);
}

int sch_workers_init(sch *s, char *err, size_t errlen)
{
    const sch_workers_config *c = s->wcfg;
    s->pools = calloc(c->n_pools ? c->n_pools : 1, sizeof *s->pools);
    if (!s->pools) {
        snprintf(err, errlen, "out of memory");
        return -ENOMEM;
    }
    s->n_pools = c->n_pools;
    for (size_t i = 0; i < c->n_pools; i++) {
        sch_pool *p = &s->pools[i];
        p->cfg = &c->pools[i];
        for (size_t j = 0; j < p->cfg->n_workers; j++)
            if (!worker_new(s, p, p->cfg->workers[j])) {
                snprintf(err, errlen, "out of memory");
                return -ENOMEM;
            }
    }
    return 0;
}

sch_exec *sch_worker_exec(sch_worker *w, const char *name)
{
    for (size_t i = 0; i < w->n_execs; i++)
        if (!strcmp(w->execs[i].name, name))
            return &w->execs[i];
    return NULL;
}

sch_worker *sch_worker_pick(sch_pool *p, const sch_worker *avoid)
{
    sch_worker *best = NULL, *fallback = NULL;
    for (sch_worker *w = p->workers; w; w = w->next) {
        if (!w->healthy || w->draining || w->busy >= p->cfg->slots)
            continue;
        if (w == avoid) {
            fallback = w;
            continue;
        }
        /* The least busy worker spreads tasks over the pool. */
        if (!best || w->busy < best->busy)
            best = w;
    }
    return best ? best : fallback;
}

void sch_worker_release(sch_worker *w)
{
    if (w->busy > 0)
        w->busy--;
}

sch_pool *sch_pool_for(sch *s, const char *name, const sch_pipeline *pipe, char *err, size_t errlen)
{
    const char *missing = NULL;
    for (size_t i = 0; i < s->n_pools; i++) {
        sch_pool *p = &s->pools[i];
        if (name && name[0] && strcmp(name, p->cfg->name) != 0)
            continue;
        const char *m = NULL;
        for (size_t k = 0; k < pipe->n_steps && !m; k++)
            if (!sch_pool_executor(p->cfg, pipe->steps[k].executor))
                m = pipe->steps[k].executor;
        if (!m)
            return p;
        if (!missing)
            missing = m;
        if (name && name[0]) {
            snprintf(err, errlen, "unknown executor name \"%.100s\": pool \"%.100s\" has none", m,
                     name);
            return NULL;
        }
    }
    if (name && name[0])
        snprintf(err, errlen, "unknown pool \"%.100s\"", name);
    else if (missing)
        snprintf(err, errlen, "unknown executor name \"%.100s\": no worker pool has it", missing);
    else
        snprintf(err, errlen, "no worker pools are configured");
    return NULL;
}

/* ---- health ------------------------------------------------------------------------------ */

static void worker_update_health(sch *s, sch_worker *w)
{
    bool healthy = w->n_execs > 0;
    for (size_t i = 0; i < w->n_execs; i++)
        healthy = healthy && w->execs[i].healthy;
    if (healthy != w->healthy)
        rpc_log(healthy ? "info" : "warn", "worker_health", "pool=%s worker=%s healthy=%d",
                w->pool->cfg->name, w->name, healthy);
    w->healthy = healthy;
    if (healthy)
        sch_dispatch(s);
}

void sch_exec_failed(sch_exec *e, const char *why)
{
    e->healthy = false;
    snprintf(e->error, sizeof e->error, "%.190s", why);
    /* Look again soon: a restarted container should not wait a whole health interval. */
    uint64_t soon = rpc_now_us() + 250 * 1000;
    if (e->w->next_check_us > soon)
        e->w->next_check_us = soon;
    worker_update_health(e->w->s, e->w);
}

static void on_check(rpc_tag *tag, bool ok)
{
    sch_exec *e = rpc_container_of(tag, sch_exec, tag);
    sch_worker *w = e->w;
    sch *s = w->s;
    pthread_mutex_lock(&s->mu);
    bool healthy = false;
    if (!ok) {
        snprintf(e->error, sizeof e->error, "health check not delivered");
    } else if (e->status != GRPC_STATUS_OK) {
        char *d = grpc_slice_to_c_string(e->details);
        snprintf(e->error, sizeof e->error, "%s: %.150s", rpc_status_name(e->status), d);
        gpr_free(d);
    } else {
        uint8_t *data = NULL;
        size_t len = 0;
        Grpc__Health__V1__HealthCheckResponse *r = NULL;
        if (e->recv_bb && rpc_bb_flatten(e->recv_bb, &data, &len) == 0)
            r = grpc__health__v1__health_check_response__unpack(NULL, len, data);
        free(data);
        healthy =
            r && r->status == GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__SERVING;
        if (!healthy)
            snprintf(e->error, sizeof e->error, "not SERVING");
        else
            e->error[0] = 0;
        if (r)
            grpc__health__v1__health_check_response__free_unpacked(r, NULL);
    }
    e->healthy = healthy;
    if (e->recv_bb)
        grpc_byte_buffer_destroy(e->recv_bb);
    e->recv_bb = NULL;
    grpc_metadata_array_destroy(&e->md_init);
    grpc_metadata_array_destroy(&e->md_trail);
    grpc_slice_unref(e->details);
    grpc_call_unref(e->call);
    e->call = NULL;
    e->checking = false;
    w->last_check_ms = sch_now_ms();
    bool all_done = true;
    for (size_t i = 0; i < w->n_execs; i++)
        all_done = all_done && !w->execs[i].checking;
    if (all_done)
        worker_update_health(s, w);
    pthread_mutex_unlock(&s->mu);
}

static void check_exec(sch *s, sch_exec *e, uint64_t timeout_ms)
{
    e->tag.fn = on_check;
    grpc_metadata_array_init(&e->md_init);
    grpc_metadata_array_init(&e->md_trail);
    e->details = grpc_empty_slice();
    e->recv_bb = NULL;
    gpr_timespec dl = gpr_time_add(gpr_now(GPR_CLOCK_MONOTONIC),
                                   gpr_time_from_millis((int64_t)timeout_ms, GPR_TIMESPAN));
    grpc_slice method = grpc_slice_from_static_string(HEALTH_METHOD);
    e->call = grpc_channel_create_call(e->ch, NULL, GRPC_PROPAGATE_DEFAULTS, s->cq, method, NULL,
                                       dl, NULL);
    /* HealthCheckRequest{service: ""} encodes as zero bytes. */
    grpc_slice empty = grpc_empty_slice();
    grpc_byte_buffer *req = grpc_raw_byte_buffer_create(&empty, 1);
    grpc_op ops[6];
    size_t n = rpc_client_open_ops(ops, NULL, 0, req, &e->md_init, &e->recv_bb);
    rpc_client_status_op(&ops[n++], &e->md_trail, &e->status, &e->details);
    if (e->call && grpc_call_start_batch(e->call, ops, n, &e->tag, NULL) == GRPC_CALL_OK) {
        e->checking = true;
    } else {
        if (e->call)
            grpc_call_unref(e->call);
        e->call = NULL;
        grpc_metadata_array_destroy(&e->md_init);
        grpc_metadata_array_destroy(&e->md_trail);
    }
    /* The batch keeps its own reference to what it sends. */
    grpc_byte_buffer_destroy(req);
}

void sch_workers_tick(sch *s, uint64_t now_us)
{
    if (s->shutting_down)
        return;
    uint64_t iv = s->cfg.health_interval_ms;
    for (size_t i = 0; i < s->n_pools; i++) {
        sch_pool *p = &s->pools[i];
        for (sch_worker **pw = &p->workers; *pw;) {
            sch_worker *w = *pw;
            if (w->draining && w->busy == 0) {
                bool checking = false;
                for (size_t k = 0; k < w->n_execs; k++)
                    checking = checking || w->execs[k].checking;
                if (!checking) {
                    *pw = w->next;
                    rpc_log("info", "worker_removed", "pool=%s worker=%s", p->cfg->name, w->name);
                    worker_free(w);
                    continue;
                }
            }
            if (!w->draining && now_us >= w->next_check_us) {
                w->next_check_us = now_us + iv * 1000;
                for (size_t k = 0; k < w->n_execs; k++)
                    if (!w->execs[k].checking)
                        check_exec(s, &w->execs[k], iv < 1000 ? 1000 : iv);
            }
            pw = &w->next;
        }
    }
}

/* ---- DNS pools ---------------------------------------------------------------------------- */

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Resolves name into a sorted list of distinct addresses; returns the count or -errno. */
static int resolve(const char *name, char ***out)
{
    struct addrinfo hints, *res = NULL;
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    int rc = getaddrinfo(name, NULL, &hints, &res);
    if (rc != 0)
        return -EHOSTUNREACH;
    char **v = calloc(MAX_RESOLVED, sizeof *v);
    int n = 0;
    for (struct addrinfo *a = res; a && v && n < MAX_RESOLVED; a = a->ai_next) {
        char buf[INET6_ADDRSTRLEN];
        const void *src = a->ai_family == AF_INET
                              ? (const void *)&((struct sockaddr_in *)a->ai_addr)->sin_addr
                              : (const void *)&((struct sockaddr_in6 *)a->ai_addr)->sin6_addr;
        if (!inet_ntop(a->ai_family, src, buf, sizeof buf))
            continue;
        bool dup = false;
        for (int i = 0; i < n && !dup; i++)
            dup = !strcmp(v[i], buf);
        if (!dup && (v[n] = strdup(buf)))
            n++;
    }
    freeaddrinfo(res);
    if (!v)
        return -ENOMEM;
    qsort(v, (size_t)n, sizeof *v, cmp_str);
    *out = v;
    return n;
}

/* Applies a resolution to pool p (mu held). */
static void pool_sync(sch *s, sch_pool *p, char **addrs, int n)
{
    for (sch_worker *w = p->workers; w; w = w->next) {
        bool found = false;
        for (int i = 0; i < n && !found; i++)
            found = !strcmp(addrs[i], w->name);
        if (!found && !w->draining) {
            w->draining = true;
            rpc_log("info", "worker_draining", "pool=%s worker=%s busy=%u", p->cfg->name, w->name,
                    w->busy);
        } else if (found && w->draining) {
            w->draining = false;
        }
    }
    for (int i = 0; i < n; i++) {
        bool found = false;
        for (sch_worker *w = p->workers; w && !found; w = w->next)
            found = !strcmp(addrs[i], w->name);
        if (!found)
            worker_new(s, p, addrs[i]);
    }
}

int sch_workers_reload(sch *s, sch_workers_config *next, char *err, size_t errlen)
{
    if (sch_workers_config_compatible(s->wcfg, next, err, errlen) < 0)
        return -EINVAL;
    sch_workers_config **r = realloc(s->retired, (s->n_retired + 1) * sizeof *r);
    if (!r) {
        snprintf(err, errlen, "out of memory");
        return -ENOMEM;
    }
    s->retired = r;
    s->retired[s->n_retired++] = s->wcfg;
    s->wcfg = next;
    for (size_t i = 0; i < s->n_pools; i++) {
        sch_pool *p = &s->pools[i];
        p->cfg = &next->pools[i];
        if (p->cfg->dns)
            p->resolve_now = true;
        else
            pool_sync(s, p, p->cfg->workers, (int)p->cfg->n_workers);
    }
    return 0;
}

void *sch_resolver_thread(void *arg)
{
    sch *s = arg;
    uint64_t *next = calloc(s->n_pools ? s->n_pools : 1, sizeof *next);
    for (;;) {
        uint64_t now = rpc_now_us();
        for (size_t i = 0; next && i < s->n_pools; i++) {
            sch_pool *p = &s->pools[i];
            /* The pool's config changes under mu on SIGHUP: copy what the lookup needs. */
            char dns[256] = "";
            pthread_mutex_lock(&s->mu);
            if (p->cfg->dns && (now >= next[i] || p->resolve_now)) {
                p->resolve_now = false;
                snprintf(dns, sizeof dns, "%s", p->cfg->dns);
                next[i] = now + (uint64_t)p->cfg->resolve_interval_ms * 1000;
            }
            pthread_mutex_unlock(&s->mu);
            if (!dns[0])
                continue;
            char **addrs = NULL;
            int n = resolve(dns, &addrs);
            pthread_mutex_lock(&s->mu);
            if (!p->cfg->dns || strcmp(p->cfg->dns, dns) != 0)
                ; /* reloaded meanwhile: the next round resolves the new name */
            else if (n >= 0)
                pool_sync(s, p, addrs, n);
            else
                /* A failed lookup keeps the last known workers: DNS hiccups must not drain a
                 * pool that is still there. */
                rpc_log("warn", "dns_failed", "pool=%s name=%s", p->cfg->name, dns);
            pthread_mutex_unlock(&s->mu);
            for (int k = 0; k < n; k++)
                free(addrs[k]);
            free(addrs);
        }
        pthread_mutex_lock(&s->mu);
        bool stop = s->stop_timer;
        pthread_mutex_unlock(&s->mu);
        if (stop)
            break;
        usleep(100 * 1000);
    }
    free(next);
    return NULL;
}

void sch_workers_shutdown(sch *s)
{
    for (size_t i = 0; i < s->n_pools; i++)
        for (sch_worker *w = s->pools[i].workers; w; w = w->next)
            for (size_t k = 0; k < w->n_execs; k++)
                if (w->execs[k].call)
                    grpc_call_cancel(w->execs[k].call, NULL);
}

void sch_workers_free(sch *s)
{
    for (size_t i = 0; i < s->n_pools; i++) {
        sch_pool *p = &s->pools[i];
        while (p->workers) {
            sch_worker *w = p->workers;
            p->workers = w->next;
            worker_free(w);
        }
        free(p->heap);
    }
    free(s->pools);
    s->pools = NULL;
}

/*
 * The gRPC side of pm-executor: registered methods (Run, Info, the legacy ExecuteCommands), one
 * exe_call per accepted call, the checks every call passes (token, shutdown, concurrency limit,
 * request shape), sending with at most one message in flight, finishing, and the process-level
 * setup in exe_serve. A call's life: armed -> accepted (RECV_CLOSE_ON_SERVER started at once)
 * -> checked -> running its step (step.c) -> status sent -> every tag back -> freed by the I/O
 * thread.
 */
#include "executor/internal.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "executor/spawn.h"

extern char **environ;

static const char *const method_names[K_COUNT] = {
    [K_RUN] = "/pm.executor.v1.Executor/Run",
    [K_LEGACY] = "/exec.ExecService/ExecuteCommands",
    [K_INFO] = "/pm.executor.v1.Executor/Info",
};

static const char *const health_services[] = {"pm.executor.v1.Executor", "exec.ExecService", NULL};

void exe_config_defaults(exe_config *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    cfg->listen = "127.0.0.1:50051";
    cfg->name = "executor";
    cfg->max_concurrent = 256;
    cfg->max_request_bytes = 4u << 20;
    cfg->output_cap = 0;
    cfg->legacy_output_cap = 3u << 20;
    cfg->kill_grace_ms = 2000;
    cfg->shutdown_grace_ms = 10000;
    cfg->chunk_bytes = 128 * 1024;
    cfg->coalesce_us = 100;
    cfg->log_format = "text";
    cfg->sandbox_profile = "default";
    cfg->rlimits = "";
    cfg->keep_caps = "";
    cfg->run_as_uid = UINT64_MAX;
    cfg->run_as_gid = UINT64_MAX;
}

typedef struct exe_sandbox_cache {
    struct exe_sandbox_cache *next;
    sbx_config cfg;
    sbx_prepared *prepared;
} exe_sandbox_cache;

/* Calls fn on each comma-separated item of list; stops at the first error. */
static int each_item(const char *list,
                     int (*fn)(const char *item, sbx_config *cfg, char *err, size_t errlen),
                     sbx_config *cfg, char *err, size_t errlen)
{
    char item[256];
    for (const char *p = list; p && *p;) {
        const char *comma = strchr(p, ',');
        size_t n = comma ? (size_t)(comma - p) : strlen(p);
        if (n >= sizeof item) {
            snprintf(err, errlen, "\"%.40s...\" is too long", p);
            return -EINVAL;
        }
        memcpy(item, p, n);
        item[n] = '\0';
        if (n && fn(item, cfg, err, errlen) < 0)
            return -EINVAL;
        p = comma ? comma + 1 : p + n;
    }
    return 0;
}

static int keep_cap_item(const char *item, sbx_config *cfg, char *err, size_t errlen)
{
    return sbx_config_keep_cap(cfg, item, err, errlen);
}

static int rlimit_item(const char *item, sbx_config *cfg, char *err, size_t errlen)
{
    return sbx_rlimit_parse(item, cfg, err, errlen);
}

/* Builds and prepares the executor's own sandbox from its flags. */
static int sandbox_setup(exe_server *srv, char *err, size_t errlen)
{
    const exe_config *cfg = &srv->cfg;
    sbx_config *s = &srv->sandbox_cfg;
    sbx_config_init(s);
    if (sbx_profile_parse(cfg->sandbox_profile, s) < 0) {
        snprintf(err, errlen,
                 "--sandbox-profile \"%s\": want unconfined, default, strict or file:PATH",
                 cfg->sandbox_profile);
        return -EINVAL;
    }
    char e[256] = "";
    if (each_item(cfg->rlimits, rlimit_item, s, e, sizeof e) < 0) {
        snprintf(err, errlen, "--rlimits: %s", e);
        return -EINVAL;
    }
    if (each_item(cfg->keep_caps, keep_cap_item, s, e, sizeof e) < 0) {
        snprintf(err, errlen, "--keep-caps: %s", e);
        return -EINVAL;
    }
    if ((cfg->run_as_uid == UINT64_MAX) != (cfg->run_as_gid == UINT64_MAX) ||
        (cfg->run_as_uid != UINT64_MAX &&
         (cfg->run_as_uid >= SBX_ID_KEEP || cfg->run_as_gid >= SBX_ID_KEEP))) {
        snprintf(err, errlen, "--run-as-uid and --run-as-gid go together, each below 2^32-1");
        return -EINVAL;
    }
    if (cfg->run_as_uid != UINT64_MAX) {
        s->uid = (uint32_t)cfg->run_as_uid;
        s->gid = (uint32_t)cfg->run_as_gid;
    }
    int rc = sbx_prepare(s, &srv->sandbox, e, sizeof e);
    if (rc < 0)
        snprintf(err, errlen, "sandbox: %s", e);
    return rc;
}

/*
 * The prepared sandbox for a request's profile name: the executor's own, or a tighter one,
 * prepared once and cached. Runs outside mu (preparing a filter can take a millisecond). Returns
 * the status to refuse the call with, or GRPC_STATUS_OK.
 */
static grpc_status_code sandbox_for_request(exe_server *srv, const char *name,
                                            const sbx_prepared **out, char *err, size_t errlen)
{
    *out = srv->sandbox;
    if (!name || !name[0])
        return GRPC_STATUS_OK;
    sbx_config req = srv->sandbox_cfg;
    if (sbx_profile_parse(name, &req) < 0) {
        snprintf(err, errlen,
                 "unknown sandbox profile \"%.64s\" (want unconfined, default, strict or "
                 "file:PATH)",
                 name);
        return GRPC_STATUS_INVALID_ARGUMENT;
    }
    char why[256] = "";
    if (!sbx_tighter_or_equal(&srv->sandbox_cfg, &req, why, sizeof why)) {
        snprintf(err, errlen, "sandbox profile \"%.64s\" would loosen the executor's (%s): %s",
                 name, sbx_profile_name(srv->sandbox_cfg.profile), why);
        return GRPC_STATUS_PERMISSION_DENIED;
    }
    if (!memcmp(&req, &srv->sandbox_cfg, sizeof req))
        return GRPC_STATUS_OK;
    grpc_status_code code = GRPC_STATUS_OK;
    pthread_mutex_lock(&srv->sandbox_mu);
    exe_sandbox_cache *e = srv->sandbox_cache;
    while (e && memcmp(&e->cfg, &req, sizeof req))
        e = e->next;
    if (!e) {
        e = calloc(1, sizeof *e);
        if (!e || sbx_prepare(&req, &e->prepared, why, sizeof why) < 0) {
            snprintf(err, errlen, "sandbox profile \"%.64s\": %s", name, e ? why : "out of memory");
            free(e);
            e = NULL;
            code = GRPC_STATUS_FAILED_PRECONDITION;
        } else {
            e->cfg = req;
            e->next = srv->sandbox_cache;
            srv->sandbox_cache = e;
        }
    }
    if (e)
        *out = e->prepared;
    pthread_mutex_unlock(&srv->sandbox_mu);
    return code;
}

static void sandbox_cleanup(exe_server *srv)
{
    while (srv->sandbox_cache) {
        exe_sandbox_cache *e = srv->sandbox_cache;
        srv->sandbox_cache = e->next;
        sbx_prepared_free(e->prepared);
        free(e);
    }
    sbx_prepared_free(srv->sandbox);
    srv->sandbox = NULL;
}

static void call_free(exe_call *c)
{
    exe_step_close_fds(c);
    exe_step_free(&c->step);
    grpc_metadata_array_destroy(&c->md);
    if (c->req)
        grpc_byte_buffer_destroy(c->req);
    if (c->send_bb)
        grpc_byte_buffer_destroy(c->send_bb);
    grpc_slice_unref(c->pend);
    exe_out_track_release(c->track);
    if (c->call)
        grpc_call_unref(c->call);
    free(c->envp);
    free(c->collect);
    free(c->outs);
    free(c);
}

void exe_call_maybe_dead(exe_call *c)
{
    if (c->dead || c->pending > 0 || !c->closed || !c->status_sent)
        return;
    c->dead = true;
    c->next = c->srv->dead;
    c->srv->dead = c;
    /* The I/O thread frees it on its next turn (see EXE_FREE_DEAD_US): a wake-up for that alone
     * costs a context switch per call, on the CPU where the client's next command starts. */
    if (c->srv->shutdown_started)
        exe_loop_wake(c->srv);
}

static void running_remove(exe_call *c)
{
    if (!c->in_running)
        return;
    exe_server *srv = c->srv;
    for (exe_call **p = &srv->running; *p; p = &(*p)->next)
        if (*p == c) {
            *p = c->next;
            break;
        }
    c->next = NULL;
    c->in_running = false;
    srv->nrunning--;
    if (srv->shutdown_started)
        exe_loop_wake(srv); /* it waits for the last running step to end */
}

static void log_call(exe_call *c, grpc_status_code code, const char *msg)
{
    char q[300];
    rpc_log(code == GRPC_STATUS_OK ? "info" : "warn", "call",
            "call=%llu method=%s commands=%zu status=%d dur_ms=%.3f message=%s",
            (unsigned long long)c->id, method_names[c->kind] + 1, c->step.ncmds, (int)code,
            (double)(rpc_now_us() - c->t_call_us) / 1000.0, rpc_log_quote(q, sizeof q, msg));
}

bool exe_call_send(exe_call *c, grpc_byte_buffer *bb)
{
    if (!bb) {
        c->client_gone = true;
        return false;
    }
    grpc_op ops[2];
    size_t n = 0;
    memset(ops, 0, sizeof ops);
    if (!c->md_sent)
        ops[n++].op = GRPC_OP_SEND_INITIAL_METADATA;
    ops[n].op = GRPC_OP_SEND_MESSAGE;
    ops[n++].data.send_message.send_message = bb;
    if (grpc_call_start_batch(c->call, ops, n, &c->tag_send, NULL) != GRPC_CALL_OK) {
        grpc_byte_buffer_destroy(bb);
        c->client_gone = true;
        return false;
    }
    c->pending++;
    c->md_sent = true;
    c->send_in_flight = true;
    c->send_bb = bb;
    return true;
}

void exe_call_finish(exe_call *c, grpc_status_code code, const char *msg)
{
    c->status_sent = true;
    running_remove(c);
    log_call(c, code, msg ? msg : "");
    if (rpc_send_status(c->call, c->md_sent, code, msg, &c->tag_send) == GRPC_CALL_OK)
        c->pending++;
}

void exe_call_finish_unary(exe_call *c, grpc_byte_buffer *reply)
{
    c->status_sent = true;
    running_remove(c);
    log_call(c, reply ? GRPC_STATUS_OK : GRPC_STATUS_INTERNAL, reply ? "" : "encoding failed");
    grpc_status_code code = reply ? GRPC_STATUS_OK : GRPC_STATUS_INTERNAL;
    if (rpc_send_unary(c->call, reply, code, reply ? NULL : "encoding failed", &c->tag_send) ==
        GRPC_CALL_OK) {
        c->pending++;
        c->send_bb = reply;
    } else if (reply) {
        grpc_byte_buffer_destroy(reply);
    }
}

void exe_call_finish_with(exe_call *c, grpc_byte_buffer *last)
{
    if (!last) {
        exe_call_finish(c, GRPC_STATUS_INTERNAL, "encoding failed");
        return;
    }
    c->status_sent = true;
    running_remove(c);
    if (rpc_send_final(c->call, !c->md_sent, last, GRPC_STATUS_OK, NULL, &c->tag_send) ==
        GRPC_CALL_OK) {
        c->pending++;
        c->md_sent = true;
        c->send_bb = last;
    } else {
        grpc_byte_buffer_destroy(last);
    }
    log_call(c, GRPC_STATUS_OK, ""); /* after the send: the line is not on the client's path */
}

static void on_send(rpc_tag *t, bool ok)
{
    exe_call *c = rpc_container_of(t, exe_call, tag_send);
    pthread_mutex_lock(&c->srv->mu);
    c->pending--;
    c->send_in_flight = false;
    if (c->send_bb) {
        grpc_byte_buffer_destroy(c->send_bb);
        c->send_bb = NULL;
    }
    if (!ok && !c->client_gone) {
        c->client_gone = true;
        c->cancelled = true;
        exe_step_kill(c, SIGTERM, "the client went away");
    }
    exe_step_pump(c);
    exe_call_maybe_dead(c);
    pthread_mutex_unlock(&c->srv->mu);
}

static void on_close(rpc_tag *t, bool ok)
{
    (void)ok;
    exe_call *c = rpc_container_of(t, exe_call, tag_close);
    pthread_mutex_lock(&c->srv->mu);
    c->pending--;
    c->closed = true;
    if (c->cancelled_out && !c->status_sent) {
        /* Client cancel and a passed deadline both land here. */
        c->client_gone = true;
        c->cancelled = true;
        exe_step_kill(c, SIGTERM, "cancelled: the client cancelled or its deadline passed");
        exe_step_pump(c);
    }
    exe_call_maybe_dead(c);
    pthread_mutex_unlock(&c->srv->mu);
}

static void reply_info(exe_call *c)
{
    exe_server *srv = c->srv;
    pm_executor_v1_InfoResponse info = pm_executor_v1_InfoResponse_init_zero;
    snprintf(info.name, sizeof info.name, "%s", srv->cfg.name);
    snprintf(info.version, sizeof info.version, "%s", PM_VERSION);
    snprintf(info.sandbox_profile, sizeof info.sandbox_profile, "%s%s%.40s",
             sbx_profile_name(srv->sandbox_cfg.profile),
             srv->sandbox_cfg.profile == SBX_FILE ? ":" : "", srv->sandbox_cfg.file);
    info.max_concurrent = (uint32_t)srv->cfg.max_concurrent;
    info.running = (uint32_t)srv->nrunning;
    info.max_request_bytes = srv->cfg.max_request_bytes;
    info.output_cap = srv->cfg.output_cap;
    info.kill_grace_ms = (uint32_t)srv->cfg.kill_grace_ms;
    info.commands_started = srv->commands_started;
    info.pid1 = srv->app_pid > 0;
    sbx_describe(srv->sandbox, info.sandbox, sizeof info.sandbox);
    exe_call_finish_unary(c, exe_info_encode(&info));
}

/*
 * Decodes a Run or ExecuteCommands request into c->step. It runs before the executor lock is
 * taken: its cost grows with the request (up to --max-request-bytes) and must not stall the
 * output of other calls. Returns the status to refuse the call with, or GRPC_STATUS_OK.
 */
static grpc_status_code decode_step(exe_call *c, char *err, size_t errlen)
{
    if (!c->req) {
        snprintf(err, errlen, "the call carried no request message");
        return GRPC_STATUS_INVALID_ARGUMENT;
    }
    uint8_t *data;
    size_t len;
    if (rpc_bb_flatten(c->req, &data, &len) < 0) {
        snprintf(err, errlen, "out of memory reading the request");
        return GRPC_STATUS_RESOURCE_EXHAUSTED;
    }
    int rc = c->kind == K_RUN ? exe_step_decode_run(&c->step, data, len, err, errlen)
                              : exe_step_decode_legacy(&c->step, data, len, err, errlen);
    free(data);
    if (rc < 0)
        return rc == -ENOMEM ? GRPC_STATUS_RESOURCE_EXHAUSTED : GRPC_STATUS_INVALID_ARGUMENT;
    return sandbox_for_request(c->srv, c->step.sandbox_profile, &c->sandbox, err, errlen);
}

/* Admits a decoded step (with mu held): shutdown and the concurrency limit, then it starts. */
static void accept_step(exe_call *c, grpc_status_code decoded, const char *decode_err)
{
    exe_server *srv = c->srv;
    char err[160];
    if (srv->shutdown_started) {
        exe_call_finish(c, GRPC_STATUS_UNAVAILABLE, "executor shutting down");
        return;
    }
    if (srv->nrunning >= srv->cfg.max_concurrent) {
        snprintf(err, sizeof err, "executor busy: %llu steps running, the limit (--max-concurrent)",
                 (unsigned long long)srv->nrunning);
        exe_call_finish(c, GRPC_STATUS_RESOURCE_EXHAUSTED, err);
        return;
    }
    if (decoded != GRPC_STATUS_OK) {
        exe_call_finish(c, decoded, decode_err);
        return;
    }
    uint64_t cap = srv->cfg.output_cap, asked = c->step.output_cap;
    c->output_cap = (asked && (!cap || asked < cap)) ? asked : cap;
    c->in_running = true;
    c->next = srv->running;
    srv->running = c;
    srv->nrunning++;
    exe_step_begin(c);
}

static void on_new(rpc_tag *t, bool ok)
{
    exe_call *c = rpc_container_of(t, exe_call, tag_new);
    exe_server *srv = c->srv;
    if (!ok) {
        /* The server is shutting down and this slot was never filled. */
        grpc_metadata_array_destroy(&c->md);
        free(c);
        return;
    }
    exe_call_arm(srv, c->kind);

    /* Until the call is in srv->running only this (the completion-queue) thread can reach it, so
     * the token check and the decoding need no lock. */
    if (rpc_recv_close(c->call, &c->cancelled_out, &c->tag_close) == GRPC_CALL_OK)
        c->pending++;
    else
        c->closed = true;
    c->t_call_us = rpc_now_us();
    bool authorized = !srv->token || rpc_token_ok(&c->md, srv->token);
    grpc_status_code decoded = GRPC_STATUS_OK;
    char err[512] = "";
    if (authorized && c->kind != K_INFO)
        decoded = decode_step(c, err, sizeof err);

    pthread_mutex_lock(&srv->mu);
    c->id = ++srv->next_id;
    srv->naccepted++;
    if (!authorized)
        exe_call_finish(c, GRPC_STATUS_UNAUTHENTICATED,
                        "missing or wrong bearer token (metadata authorization: Bearer ...)");
    else if (c->kind == K_INFO)
        reply_info(c);
    else
        accept_step(c, decoded, err);
    exe_call_maybe_dead(c);
    pthread_mutex_unlock(&srv->mu);
}

void exe_call_arm(exe_server *srv, exe_call_kind kind)
{
    exe_call *c = calloc(1, sizeof *c);
    if (!c)
        return;
    c->srv = srv;
    c->kind = kind;
    c->tag_new.fn = on_new;
    c->tag_close.fn = on_close;
    c->tag_send.fn = on_send;
    for (int i = 0; i < 3; i++)
        c->fd[i] = -1;
    grpc_metadata_array_init(&c->md);
    if (grpc_server_request_registered_call(srv->server, srv->method[kind], &c->call, &c->deadline,
                                            &c->md, &c->req, srv->cq, srv->cq,
                                            &c->tag_new) != GRPC_CALL_OK) {
        grpc_metadata_array_destroy(&c->md);
        free(c);
    }
}

/* Frees what the I/O thread queued; called by it with mu held. */
void exe_free_dead(exe_server *srv)
{
    while (srv->dead) {
        exe_call *c = srv->dead;
        srv->dead = c->next;
        srv->naccepted--;
        call_free(c);
    }
}

static void *cq_thread(void *arg)
{
    rpc_cq_run(arg);
    return NULL;
}

static void on_server_shutdown(rpc_tag *t, bool ok)
{
    (void)ok;
    exe_server *srv = rpc_container_of(t, exe_server, tag_shutdown);
    pthread_mutex_lock(&srv->mu);
    srv->server_down = true;
    exe_loop_wake(srv);
    pthread_mutex_unlock(&srv->mu);
}

void exe_begin_shutdown(exe_server *srv)
{
    if (srv->shutdown_started)
        return;
    srv->shutdown_started = true;
    uint64_t now = rpc_now_us();
    srv->shutdown_deadline_us = now + srv->cfg.shutdown_grace_ms * 1000u;
    srv->hard_deadline_us = srv->shutdown_deadline_us + srv->cfg.kill_grace_ms * 1000u + 3000000u;
    rpc_log("info", "shutdown", "running=%llu grace_ms=%llu", (unsigned long long)srv->nrunning,
            (unsigned long long)srv->cfg.shutdown_grace_ms);
    rpc_health_shutdown(srv->health);
    grpc_server_shutdown_and_notify(srv->server, srv->cq, &srv->tag_shutdown);
}

/* Makes sure 0, 1 and 2 are open so that pipes never land there. */
static void ensure_std_fds(void)
{
    for (int fd = 0; fd < 3; fd++)
        if (fcntl(fd, F_GETFD) < 0 && errno == EBADF) {
            int n = open("/dev/null", O_RDWR);
            if (n >= 0 && n != fd) {
                dup2(n, fd);
                close(n);
            }
        }
}

static int start_app(exe_server *srv, char *const *app_argv)
{
    char path[4096];
    if (strchr(app_argv[0], '/')) {
        snprintf(path, sizeof path, "%s", app_argv[0]);
    } else {
        int rc = exe_path_search(app_argv[0], getenv("PATH"), path, sizeof path);
        if (rc < 0) {
            fprintf(stderr, "pm-executor: app %s: %s\n", app_argv[0], strerror(-rc));
            return rc;
        }
    }
    exe_spawn_spec spec = {.path = path,
                           .argv = app_argv,
                           .envp = environ,
                           .stdio = {-1, -1, -1},
                           .new_session = false};
    exe_spawn_result res;
    int rc = exe_spawn(&spec, &res);
    if (rc < 0) {
        fprintf(stderr, "pm-executor: app %s: %s failed: %s\n", path,
                exe_spawn_stage_name(res.stage), strerror(res.err));
        return rc;
    }
    srv->app_pid = res.pid;
    rpc_log("info", "app_started", "pid=%d path=%s", (int)res.pid, path);
    return 0;
}

int exe_serve(const exe_config *cfg, char *const *app_argv)
{
    static exe_server server_storage;
    exe_server *srv = &server_storage;
    char err[512];
    int code = 1;
    srv->cfg = *cfg;
    srv->base_env = environ;
    pthread_mutex_init(&srv->mu, NULL);
    srv->tag_shutdown.fn = on_server_shutdown;

    if (rpc_log_setup("pm-executor", "executor", cfg->log_format) < 0)
        return 2;
    if (cfg->chunk_bytes < 1024 || cfg->chunk_bytes > (1u << 20)) {
        fprintf(stderr, "pm-executor: --chunk-bytes must be between 1024 and 1048576\n");
        return 2;
    }
    if (cfg->coalesce_us > 1000000) {
        fprintf(stderr, "pm-executor: --coalesce-us must be at most 1000000 (one second)\n");
        return 2;
    }
    if (cfg->max_concurrent == 0) {
        fprintf(stderr, "pm-executor: --max-concurrent must be at least 1\n");
        return 2;
    }
    if (rpc_read_token("pm-executor", "token-file", cfg->token_file, &srv->token) < 0)
        return 2;

    /* Signals arrive through signalfd in the I/O thread; block them before any thread exists. */
    sigset_t set;
    sigemptyset(&set);
    int sigs[] = {SIGCHLD, SIGTERM, SIGINT, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2, SIGWINCH};
    for (size_t i = 0; i < sizeof sigs / sizeof sigs[0]; i++)
        sigaddset(&set, sigs[i]);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);
    ensure_std_fds();
    /* Orphans of commands (and of the app) are re-parented to us and reaped. */
    prctl(PR_SET_CHILD_SUBREAPER, 1);

    pthread_mutex_init(&srv->sandbox_mu, NULL);
    if (sandbox_setup(srv, err, sizeof err) < 0) {
        fprintf(stderr, "pm-executor: %s\n", err);
        return 2;
    }
    {
        char desc[512];
        sbx_describe(srv->sandbox, desc, sizeof desc);
        rpc_log("info", "sandbox", "%s", desc);
    }

    srv->devnull = open("/dev/null", O_RDONLY | O_CLOEXEC);
    srv->buf = malloc(cfg->chunk_bytes);
    if (!srv->buf || exe_loop_init(srv) < 0) {
        fprintf(stderr, "pm-executor: cannot set up the event loop: %s\n", strerror(errno));
        return 1;
    }

    grpc_init();
    /* gRPC sets SO_REUSEPORT by default, which would let a second executor bind a port that is
     * already in use and silently share its connections. */
    grpc_arg args[] = {
        {.type = GRPC_ARG_INTEGER,
         .key = GRPC_ARG_MAX_RECEIVE_MESSAGE_LENGTH,
         .value.integer = (int)cfg->max_request_bytes},
        {.type = GRPC_ARG_INTEGER, .key = GRPC_ARG_ALLOW_REUSEPORT, .value.integer = 0},
    };
    grpc_channel_args chargs = {.num_args = 2, .args = args};
    srv->cq = grpc_completion_queue_create_for_next(NULL);
    srv->server = grpc_server_create(&chargs, NULL);
    for (int k = 0; k < K_COUNT; k++)
        srv->method[k] = grpc_server_register_method(srv->server, method_names[k], NULL,
                                                     GRPC_SRM_PAYLOAD_READ_INITIAL_BYTE_BUFFER, 0);
    srv->health = rpc_health_register(srv->server, health_services);
    grpc_server_register_completion_queue(srv->server, srv->cq, NULL);
    rpc_listen_config lc = {.listen = cfg->listen,
                            .tls_cert = cfg->tls_cert,
                            .tls_key = cfg->tls_key,
                            .token = srv->token,
                            .insecure = cfg->insecure};
    int lrc = rpc_listen(srv->server, &lc, err, sizeof err);
    if (lrc < 0) {
        fprintf(stderr, "pm-executor: %s\n", err);
        code = lrc == -EADDRINUSE ? 1 : 2; /* a taken port is a runtime failure, not usage */
        grpc_server_destroy(srv->server);
        grpc_completion_queue_shutdown(srv->cq);
        rpc_cq_run(srv->cq);
        goto out;
    }
    grpc_server_start(srv->server);
    /* gRPC is initialised and SIGPIPE ignored: what the children must undo is now known. */
    exe_spawn_handled_signals(&srv->sig_reset);
    for (int i = 0; i < 16; i++)
        exe_call_arm(srv, K_RUN);
    for (int i = 0; i < 4; i++) {
        exe_call_arm(srv, K_LEGACY);
        exe_call_arm(srv, K_INFO);
    }
    rpc_health_start(srv->health, srv->cq);
    rpc_unimplemented_start(srv->server, srv->cq, 4);

    if (app_argv && app_argv[0] && start_app(srv, app_argv) < 0) {
        code = 127;
        pthread_mutex_lock(&srv->mu);
        exe_begin_shutdown(srv);
        pthread_mutex_unlock(&srv->mu);
    }
    rpc_log("info", "listening", "address=%s name=%s max_concurrent=%llu pid1=%d", cfg->listen,
            cfg->name, (unsigned long long)cfg->max_concurrent, srv->app_pid > 0);
    /* Commands are spawned by this thread (the I/O loop) and the completion-queue thread created
     * below: apply once here what every command would apply to itself (its bounding set, the
     * default profile's filter), after the app (which is not sandboxed) has been started. */
    if (sbx_apply_in_spawner(srv->sandbox, err, sizeof err) < 0)
        rpc_log("warn", "sandbox", "each command applies its whole sandbox itself: %s", err);
    pthread_create(&srv->cq_thread, NULL, cq_thread, srv->cq);

    exe_loop_run(srv);

    grpc_server_cancel_all_calls(srv->server);
    grpc_server_destroy(srv->server);
    grpc_completion_queue_shutdown(srv->cq);
    pthread_join(srv->cq_thread, NULL);
    pthread_mutex_lock(&srv->mu);
    exe_free_dead(srv);
    pthread_mutex_unlock(&srv->mu);
    if (code != 127)
        code = 0;
    if (srv->app_exited)
        code = WIFSIGNALED(srv->app_status) ? 128 + WTERMSIG(srv->app_status)
                                            : WEXITSTATUS(srv->app_status);
out:
    grpc_completion_queue_destroy(srv->cq);
    rpc_health_destroy(srv->health);
    grpc_shutdown();
    free(srv->buf);
    if (srv->devnull > STDERR_FILENO)
        close(srv->devnull);
    free(srv->token);
    sandbox_cleanup(srv);
    rpc_log("info", "exit", "code=%d", code);
    return code;
}

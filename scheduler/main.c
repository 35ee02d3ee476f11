/*
 * pm-scheduler: flags (each also a PM_ environment variable), start-up in dependency order (workers
 * config, store, recovery of active tasks, gRPC server, threads), and the shutdown sequence on
 * SIGTERM/SIGINT: stop taking calls and leases, let running steps finish for --shutdown-grace-ms,
 * release the rest back to the queue (durably), then tear down in the order gRPC wants.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "scheduler/sched.h"

static const char *const health_services[] = {"pm.scheduler.v1.Scheduler", NULL};

void sch_config_defaults(sch_config *c)
{
    static char host[128];
    memset(c, 0, sizeof *c);
    if (gethostname(host, sizeof host - 1) != 0 || !host[0])
        snprintf(host, sizeof host, "pm-scheduler");
    c->listen = "127.0.0.1:7070";
    c->db = "pm-scheduler.db";
    c->workers = NULL;
    c->id = host;
    c->log_format = "text";
    c->lease_ttl_ms = 15000;
    c->health_interval_ms = 2000;
    c->max_attempts = 3;
    c->backoff_ms = 500;
    c->max_backoff_ms = 30000;
    c->output_cap = 1u << 20;
    c->max_output_cap = 64u << 20;
    c->max_request_bytes = 4u << 20;
    c->max_active = 1000000;
    c->shutdown_grace_ms = 10000;
}

static void *cq_main(void *arg)
{
    rpc_cq_run(arg);
    return NULL;
}

/* Ticks retries, leases and health checks; 20 ms is well inside every timing it serves. */
static void *timer_main(void *arg)
{
    sch *s = arg;
    for (;;) {
        pthread_mutex_lock(&s->mu);
        if (s->stop_timer) {
            pthread_mutex_unlock(&s->mu);
            break;
        }
        if (!s->shutting_down)
            sch_tasks_tick(s);
        sch_workers_tick(s, rpc_now_us());
        pthread_mutex_unlock(&s->mu);
        usleep(20 * 1000);
    }
    return NULL;
}

static void on_server_down(rpc_tag *t, bool ok)
{
    (void)ok;
    sch *s = rpc_container_of(t, sch, tag_shutdown);
    pthread_mutex_lock(&s->mu);
    s->server_down = true;
    pthread_mutex_unlock(&s->mu);
}

/* Waits (polling, the lock released between looks) until running tasks are gone or ms pass. */
static void wait_running(sch *s, uint64_t ms)
{
    uint64_t end = rpc_now_us() + ms * 1000;
    for (;;) {
        pthread_mutex_lock(&s->mu);
        size_t n = sch_tasks_running(s);
        pthread_mutex_unlock(&s->mu);
        if (n == 0 || rpc_now_us() >= end)
            return;
        usleep(20 * 1000);
    }
}

/* SIGHUP: reads --workers again. A config that cannot be read or parsed, or that changes what a
 * running scheduler cannot (see sch_workers_config_compatible), is refused with a log line and
 * the workers stay as they were. */
static void reload_workers(sch *s)
{
    char err[512], q[600];
    sch_workers_config *next = NULL;
    if (sch_workers_config_load(s->cfg.workers, &next, err, sizeof err) < 0) {
        rpc_log("warn", "workers_reload_refused", "error=%s", rpc_log_quote(q, sizeof q, err));
        return;
    }
    pthread_mutex_lock(&s->mu);
    int rc = sch_workers_reload(s, next, err, sizeof err);
    if (rc == 0)
        sch_dispatch(s); /* new workers or slots may take queued tasks now */
    pthread_mutex_unlock(&s->mu);
    if (rc < 0) {
        sch_workers_config_free(next);
        char msg[600];
        snprintf(msg, sizeof msg, "%s: %s; restart pm-scheduler to apply it", s->cfg.workers, err);
        rpc_log("warn", "workers_reload_refused", "error=%s", rpc_log_quote(q, sizeof q, msg));
        return;
    }
    rpc_log("info", "workers_reloaded", "file=%s pools=%zu", s->cfg.workers, s->n_pools);
}

int sch_main(const sch_config *cfg)
{
    static sch storage;
    sch *s = &storage;
    char err[512];
    int code = 2;
    s->cfg = *cfg;
    pthread_mutex_init(&s->mu, NULL);
    pthread_mutex_init(&s->reader_mu, NULL);
    s->tag_shutdown.fn = on_server_down;

    if (rpc_log_setup("pm-scheduler", "scheduler", cfg->log_format) < 0)
        return 2;
    if (!cfg->workers) {
        fprintf(stderr, "pm-scheduler: --workers FILE is required (the workers config JSON)\n");
        return 2;
    }
    if (cfg->lease_ttl_ms < 300 || cfg->health_interval_ms < 50 || cfg->max_attempts < 1 ||
        cfg->output_cap < 1 || cfg->max_output_cap < cfg->output_cap) {
        fprintf(stderr, "pm-scheduler: need --lease-ttl-ms >= 300, --health-interval-ms >= 50, "
                        "--max-attempts >= 1 and 1 <= --output-cap <= --max-output-cap\n");
        return 2;
    }
    if (cfg->executor_tls_name && !cfg->executor_tls_ca) {
        fprintf(stderr, "pm-scheduler: --executor-tls-name needs --executor-tls-ca\n");
        return 2;
    }
    if (rpc_read_token("pm-scheduler", "token-file", cfg->token_file, &s->token) < 0 ||
        rpc_read_token("pm-scheduler", "executor-token-file", cfg->executor_token_file,
                       &s->executor_token) < 0)
        return 2;
    if (sch_workers_config_load(cfg->workers, &s->wcfg, err, sizeof err) < 0) {
        fprintf(stderr, "pm-scheduler: %s\n", err);
        return 2;
    }
    sch_sqlite_options so = {.allow_memory = cfg->allow_memory_db};
    if (sch_store_open_sqlite(cfg->db, &so, &s->store, err, sizeof err) < 0) {
        fprintf(stderr, "pm-scheduler: %s\n", err);
        goto out_cfg;
    }
    so.read_only = true;
    if (!strcmp(cfg->db, ":memory:"))
        s->reader = s->store; /* tests only: one handle serves both */
    else if (sch_store_open_sqlite(cfg->db, &so, &s->reader, err, sizeof err) < 0) {
        fprintf(stderr, "pm-scheduler: %s\n", err);
        goto out_store;
    }
    code = 1;
    if (sch_pipelines_load(s, err, sizeof err) < 0) {
        fprintf(stderr, "pm-scheduler: %s\n", err);
        goto out_store;
    }

    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);

    grpc_init();
    s->cq = grpc_completion_queue_create_for_next(NULL);
    if (rpc_client_credentials(cfg->executor_tls_ca, &s->exec_creds, err, sizeof err) < 0) {
        fprintf(stderr, "pm-scheduler: --executor-tls-ca %s\n", err);
        code = 2;
        goto out_grpc;
    }
    if (sch_workers_init(s, err, sizeof err) < 0) {
        fprintf(stderr, "pm-scheduler: %s\n", err);
        goto out_grpc;
    }
    if (sch_writer_start(s) < 0) {
        fprintf(stderr, "pm-scheduler: cannot start the writer thread\n");
        goto out_grpc;
    }
    if (sch_tasks_recover(s, err, sizeof err) < 0) {
        fprintf(stderr, "pm-scheduler: %s\n", err);
        sch_writer_stop(s);
        goto out_grpc;
    }

    grpc_arg args[] = {
        {.type = GRPC_ARG_INTEGER,
         .key = GRPC_ARG_MAX_RECEIVE_MESSAGE_LENGTH,
         .value.integer = (int)cfg->max_request_bytes},
        {.type = GRPC_ARG_INTEGER, .key = GRPC_ARG_ALLOW_REUSEPORT, .value.integer = 0},
    };
    grpc_channel_args chargs = {.num_args = 2, .args = args};
    s->server = grpc_server_create(&chargs, NULL);
    sch_api_register(s);
    s->health = rpc_health_register(s->server, health_services);
    grpc_server_register_completion_queue(s->server, s->cq, NULL);
    rpc_listen_config lc = {.listen = cfg->listen,
                            .tls_cert = cfg->tls_cert,
                            .tls_key = cfg->tls_key,
                            .token = s->token,
                            .insecure = cfg->insecure};
    int lrc = rpc_listen(s->server, &lc, err, sizeof err);
    if (lrc < 0) {
        fprintf(stderr, "pm-scheduler: %s\n", err);
        code = lrc == -EADDRINUSE ? 1 : 2;
        grpc_server_destroy(s->server);
        s->server = NULL;
        sch_writer_stop(s);
        goto out_grpc;
    }
    grpc_server_start(s->server);
    sch_api_start(s);
    rpc_health_start(s->health, s->cq);
    rpc_unimplemented_start(s->server, s->cq, 4);
    pthread_create(&s->cq_thread, NULL, cq_main, s->cq);
    pthread_create(&s->timer_thread, NULL, timer_main, s);
    pthread_create(&s->resolver_thread, NULL, sch_resolver_thread, s);
    rpc_log("info", "listening",
            "address=%s db=%s id=%s pools=%zu active=%zu paused=%d lease_ttl_ms=%llu", cfg->listen,
            cfg->db, cfg->id, s->n_pools, s->n_active, cfg->paused,
            (unsigned long long)cfg->lease_ttl_ms);

    int sig = 0;
    while (sigwait(&set, &sig) == 0 && sig == SIGHUP)
        reload_workers(s);
    rpc_log("info", "shutdown", "signal=%d grace_ms=%llu", sig,
            (unsigned long long)cfg->shutdown_grace_ms);

    /* 1. No new calls, no new leases; running steps may finish. */
    pthread_mutex_lock(&s->mu);
    s->shutting_down = true;
    pthread_mutex_unlock(&s->mu);
    rpc_health_shutdown(s->health);
    grpc_server_shutdown_and_notify(s->server, s->cq, &s->tag_shutdown);
    wait_running(s, cfg->shutdown_grace_ms);
    /* 2. Release what still runs: cancelled on the executor, back to QUEUED in the store. */
    pthread_mutex_lock(&s->mu);
    size_t left = sch_tasks_running(s);
    sch_tasks_release_all(s);
    pthread_mutex_unlock(&s->mu);
    if (left)
        rpc_log("info", "releasing", "tasks=%zu", left);
    wait_running(s, 5000);
    /* 3. End the remaining calls (watchers), stop the threads, drain the writer. */
    grpc_server_cancel_all_calls(s->server);
    for (int i = 0; i < 250; i++) {
        pthread_mutex_lock(&s->mu);
        bool down = s->server_down;
        pthread_mutex_unlock(&s->mu);
        if (down)
            break;
        usleep(20 * 1000);
    }
    pthread_mutex_lock(&s->mu);
    s->stop_timer = true;
    sch_workers_shutdown(s);
    pthread_mutex_unlock(&s->mu);
    pthread_join(s->timer_thread, NULL);
    pthread_join(s->resolver_thread, NULL);
    sch_writer_stop(s);
    grpc_server_destroy(s->server);
    pthread_mutex_lock(&s->mu);
    sch_workers_free(s);
    pthread_mutex_unlock(&s->mu);
    grpc_completion_queue_shutdown(s->cq);
    pthread_join(s->cq_thread, NULL);
    code = 0;
    rpc_log("info", "stopped", "started=%llu succeeded=%llu failed=%llu retried=%llu commits=%llu",
            (unsigned long long)s->started, (unsigned long long)s->succeeded,
            (unsigned long long)s->failed, (unsigned long long)s->retried,
            (unsigned long long)s->commits);
out_grpc:
    for (size_t b = 0; b < SCH_TASK_BUCKETS; b++)
        while (s->buckets[b]) {
            sch_task *t = s->buckets[b];
            s->buckets[b] = t->hnext;
            sch_task_free(t);
        }
    if (s->pools)
        sch_workers_free(s);
    grpc_completion_queue_destroy(s->cq);
    if (s->health)
        rpc_health_destroy(s->health);
    if (s->exec_creds)
        grpc_channel_credentials_release(s->exec_creds);
    grpc_shutdown();
out_store:
    sch_pipelines_free(s);
    if (s->reader != s->store)
        sch_store_close(s->reader);
    sch_store_close(s->store);
out_cfg:
    sch_workers_config_free(s->wcfg);
    for (size_t i = 0; i < s->n_retired; i++)
        sch_workers_config_free(s->retired[i]);
    free(s->retired);
    free(s->token);
    free(s->executor_token);
    return code;
}

int main(int argc, char **argv)
{
    sch_config cfg;
    sch_config_defaults(&cfg);
    const rpc_flag flags[] = {
        {"listen", RPC_FLAG_STRING, &cfg.listen, "address: host:port or unix:/path"},
        {"db", RPC_FLAG_STRING, &cfg.db, "SQLite database file (created when missing)"},
        {"workers", RPC_FLAG_STRING, &cfg.workers, "workers config JSON file (required)"},
        {"id", RPC_FLAG_STRING, &cfg.id, "name on this instance's leases (default: host name)"},
        {"lease-ttl-ms", RPC_FLAG_UINT, &cfg.lease_ttl_ms,
         "lease lifetime; renewed every third of it while running"},
        {"health-interval-ms", RPC_FLAG_UINT, &cfg.health_interval_ms,
         "how often every executor is health-checked"},
        {"max-attempts", RPC_FLAG_UINT, &cfg.max_attempts,
         "attempts before a task is DEAD, unless its retry policy says"},
        {"backoff-ms", RPC_FLAG_UINT, &cfg.backoff_ms, "first retry delay; doubles per failure"},
        {"max-backoff-ms", RPC_FLAG_UINT, &cfg.max_backoff_ms, "longest retry delay"},
        {"output-cap", RPC_FLAG_UINT, &cfg.output_cap,
         "output kept per step and stream, unless the task asks"},
        {"max-output-cap", RPC_FLAG_UINT, &cfg.max_output_cap,
         "largest output_cap a task may ask for"},
        {"max-request-bytes", RPC_FLAG_UINT, &cfg.max_request_bytes, "largest request accepted"},
        {"max-active", RPC_FLAG_UINT, &cfg.max_active,
         "queued + running tasks held; past it Submit is RESOURCE_EXHAUSTED"},
        {"shutdown-grace-ms", RPC_FLAG_UINT, &cfg.shutdown_grace_ms,
         "how long running steps may finish after SIGTERM before they are released"},
        {"paused", RPC_FLAG_BOOL, &cfg.paused, "store submissions but dispatch nothing"},
        {"executor-token-file", RPC_FLAG_STRING, &cfg.executor_token_file,
         "bearer token sent to the executors"},
        {"executor-tls-ca", RPC_FLAG_STRING, &cfg.executor_tls_ca,
         "PEM certificates to verify executors by: calls to executors on TCP use TLS "
         "(Unix sockets stay plaintext)"},
        {"executor-tls-name", RPC_FLAG_STRING, &cfg.executor_tls_name,
         "name the executors' certificates must carry, when it is not the worker's host"},
        RPC_SERVER_FLAG_ROWS(&cfg),
        {"allow-memory-db", RPC_FLAG_BOOL, &cfg.allow_memory_db,
         "accept --db :memory: (tests only: nothing survives a restart)"},
    };
    size_t nflags = sizeof flags / sizeof flags[0];
    char err[256];
    int rest = argc;
    int rc = rpc_flags_parse(flags, nflags, argc, argv, &rest, err, sizeof err);
    if (rc == 1) {
        rpc_flags_usage(stdout,
                        "usage: pm-scheduler --workers FILE [flags]\n\n"
                        "Serves pm.scheduler.v1.Scheduler and grpc.health.v1: stores submitted\n"
                        "pipelines durably and runs them on the configured workers' executors.",
                        flags, nflags);
        return 0;
    }
    if (rc < 0) {
        fprintf(stderr, "pm-scheduler: %s\n", err);
        return 2;
    }
    if (rest < argc) {
        fprintf(stderr, "pm-scheduler: unexpected argument \"%s\"\n", argv[rest]);
        return 2;
    }
    return sch_main(&cfg);
}

/*
 * pm-scheduler's internals, shared by its source files. One struct sch holds the daemon: the
 * configuration, the store handles, the worker pools, the active tasks (QUEUED and RUNNING; final
 * ones live only in the store) and the queue of writes for the writer thread.
 *
 * Threads: one completion-queue thread runs every gRPC event (server calls, calls to executors,
 * health checks); the writer thread owns the store's writer handle and commits queued writes in
 * groups, then runs their completions; the timer thread ticks every few tens of milliseconds
 * (retry backoff, lease renewal, health checks, foreign leases); the resolver thread re-resolves
 * DNS pools. Everything in sch below `mu` is guarded by it. Lock order: mu, then the writer's
 * queue lock or the reader lock; completions of writes are called with no lock held.
 *
 * A task's lifecycle is the switch in tasks.c; its phases:
 *   QUEUED    in its pool's heap (or the delayed list until not_before)
 *   LEASING   the lease write (RUNNING, attempt+1) is being committed
 *   RUNNING   a step's Run call is in flight on the leased worker
 *   FINISHING the write that ends the attempt (final state, or back to QUEUED) is being committed
 *   FOREIGN   RUNNING under another scheduler's lease; reclaimed when that lease expires
 */
#ifndef PM_SCHEDULER_SCHED_H
#define PM_SCHEDULER_SCHED_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include <grpc/grpc.h>

#include "protos/executor.pb-c.h"
#include "protos/scheduler.pb-c.h"
#include "rpc/rpc.h"
#include "scheduler/pipeline.h"
#include "scheduler/policy.h"
#include "scheduler/store.h"
#include "scheduler/workers_config.h"

typedef struct sch sch;
typedef struct sch_task sch_task;
typedef struct sch_worker sch_worker;
typedef struct sch_pool sch_pool;
typedef struct sch_call sch_call;
typedef struct sch_op sch_op;

typedef Pm__Scheduler__V1__Task sch_rec;

typedef struct {
    const char *listen;
    const char *db;
    const char *workers; /* config file path */
    const char *id;      /* lease owner name of this instance */
    const char *token_file;
    const char *tls_cert, *tls_key;
    bool insecure;
    const char *executor_token_file; /* bearer token for the executors, or NULL */
    const char *executor_tls_ca;     /* PEM roots: TLS to executors on TCP; NULL: plaintext */
    const char *executor_tls_name;   /* name their certificates must carry; NULL: the host */
    const char *log_format;
    uint64_t lease_ttl_ms;
    uint64_t health_interval_ms;
    uint64_t max_attempts;
    uint64_t backoff_ms;
    uint64_t max_backoff_ms;
    uint64_t output_cap;     /* default kept bytes per step and stream */
    uint64_t max_output_cap; /* largest a Submit may ask for */
    uint64_t max_request_bytes;
    uint64_t max_active; /* QUEUED + RUNNING tasks held; past it Submit is RESOURCE_EXHAUSTED */
    uint64_t shutdown_grace_ms;
    bool paused; /* accept and store, dispatch nothing (benchmarks, maintenance) */
    bool allow_memory_db;
} sch_config;

void sch_config_defaults(sch_config *c);

/* Runs the daemon until SIGTERM/SIGINT; returns the process exit code. */
int sch_main(const sch_config *cfg);

/* ---- workers (workers.c) --------------------------------------------------------------- */

typedef struct {
    sch_worker *w;
    char *name;
    char target[320];
    grpc_channel *ch;
    bool healthy;
    bool checking;
    char error[200];
    /* the health check in flight */
    grpc_call *call;
    grpc_byte_buffer *recv_bb;
    grpc_metadata_array md_init, md_trail;
    grpc_status_code status;
    grpc_slice details;
    rpc_tag tag;
} sch_exec;

struct sch_worker {
    sch *s;
    sch_pool *pool;
    char *name;
    sch_exec *execs;
    size_t n_execs;
    uint32_t busy;
    bool draining; /* gone from DNS: no new leases, freed when idle */
    bool healthy;  /* every executor answered SERVING on its last check */
    int64_t last_check_ms;
    uint64_t next_check_us;
    sch_worker *next;
};

struct sch_pool {
    const sch_pool_config *cfg;
    bool resolve_now; /* its DNS settings were reloaded: look it up at once */
    sch_worker *workers;
    sch_task **heap; /* QUEUED tasks whose not_before has passed: priority, then id */
    size_t n_heap, cap_heap;
};

int sch_workers_init(sch *s, char *err, size_t errlen);
void sch_workers_tick(sch *s, uint64_t now_us);
/* A healthy worker of pool p with a free slot, preferring one that is not avoid; or NULL. */
sch_worker *sch_worker_pick(sch_pool *p, const sch_worker *avoid);
void sch_worker_release(sch_worker *w);
sch_exec *sch_worker_exec(sch_worker *w, const char *name);
/* The pool named (or, for "", the first with every executor of pipe); NULL with err set. */
sch_pool *sch_pool_for(sch *s, const char *name, const sch_pipeline *pipe, char *err,
                       size_t errlen);
/*
 * SIGHUP: switches the running workers to next (mu held) when sch_workers_config_compatible
 * allows it: static pools gain their new workers and drain the ones no longer listed, slots and
 * DNS settings take effect at once. next then belongs to s (the replaced config is kept until
 * exit: workers still point into it); otherwise returns -EINVAL with err set and next is the
 * caller's.
 */
int sch_workers_reload(sch *s, sch_workers_config *next, char *err, size_t errlen);
void *sch_resolver_thread(void *arg);
void sch_workers_shutdown(sch *s);
void sch_workers_free(sch *s);
void sch_exec_failed(sch_exec *e, const char *why);

/* ---- tasks (tasks.c) ------------------------------------------------------------------- */

enum { TP_QUEUED, TP_LEASING, TP_RUNNING, TP_FINISHING, TP_FOREIGN };

typedef struct sch_run sch_run;
typedef struct sch_watch sch_watch;

struct sch_task {
    int64_t id;
    char idstr[24];
    sch_rec *rec; /* the record, owned (a protobuf-c tree freed with free_unpacked) */
    int phase;
    sch_pool *pool;
    size_t heap_idx;
    bool in_heap, delayed;
    sch_task *next_delayed;
    sch_worker *worker; /* leased worker */
    sch_worker *avoid;  /* the worker the last attempt failed on */
    char lease_owner[128];
    int64_t lease_expires_ms;
    uint64_t next_seq;      /* seq of the next event */
    uint64_t committed_seq; /* newest event known committed */
    uint32_t step;          /* step running */
    sch_run *run;
    /* An event to put in the next state write, before its state event (step_ended sets it). */
    const Pm__Scheduler__V1__WatchEvent *carry;
    bool cancel_requested, release_requested;
    sch_call *waiters;   /* Cancel calls answered when the task reaches a final state */
    sch_watch *watchers; /* Watch calls waiting for events */
    int writes;          /* writes queued, not yet committed */
    size_t backlog;      /* output bytes queued, not yet committed */
    sch_task *hnext;     /* hash chain */
};

int64_t sch_now_ms(void); /* wall clock, for persisted times */

/* queue.c: the active set (by id), the pools' heaps and the delayed list. */
void sch_task_insert(sch *s, sch_task *t);
void sch_task_remove(sch *s, sch_task *t);
int sch_heap_push(sch_pool *p, sch_task *t);
void sch_heap_remove(sch_pool *p, sch_task *t);
void sch_delayed_remove(sch *s, sch_task *t);
/* Puts a QUEUED task where dispatch finds it: the heap, or the delayed list during backoff. */
void sch_enqueue(sch *s, sch_task *t);
sch_task *sch_task_find(sch *s, int64_t id);
void sch_task_free(sch_task *t);

int sch_tasks_recover(sch *s, char *err, size_t errlen);
void sch_dispatch(sch *s);
void sch_tasks_tick(sch *s);
/* Takes over a new task (called when its Submit committed). */
void sch_task_adopt(sch *s, sch_task *t);
/* Returns a gRPC status and message for a Cancel of t (answered later through t->waiters). */
grpc_status_code sch_task_cancel(sch *s, sch_task *t, sch_call *c, char *msg, size_t len);
/* Requeues a final task; reply to c when committed. */
grpc_status_code sch_task_requeue(sch *s, int64_t id, sch_call *c, char *msg, size_t len);
/* Releases every running task (shutdown after the grace period). */
void sch_tasks_release_all(sch *s);
size_t sch_tasks_running(sch *s);
/* The lease write of t came back with rc (writer completion, mu held). */
void sch_lease_committed(sch *s, sch_task *t, int rc);

/* "QUEUED", "RUNNING", ... for messages. */
const char *sch_state_name(int state);
/* Packs a message into a new byte buffer (no copy of the packed bytes); NULL without memory. */
grpc_byte_buffer *sch_pack_bb(const ProtobufCMessage *m);
/* Unpacks a row's record and overwrites its copies of the columns; NULL on failure. */
sch_rec *sch_rec_from_row(const sch_task_row *row);
/* A row callback of the store: *(sch_rec **)arg = sch_rec_from_row(row). */
int sch_rec_take(const sch_task_row *row, void *arg);
void sch_rec_set_str(char **field, const char *v);
char *sch_xstrdup(const char *s);

/* Starts an event of t: the next seq, the id, the attempt and the time. */
void sch_event_init(sch_task *t, Pm__Scheduler__V1__WatchEvent *ev);
/* Queues events only (output, step start and exit). */
void sch_write_event(sch *s, sch_task *t, const Pm__Scheduler__V1__WatchEvent *ev);
/* Decides what a finished Run call means for its task (mu held). */
void sch_step_ended(sch *s, sch_task *t, sch_run *run);

/* ---- a step's Run call (run.c) ------------------------------------------------------------- */

/* Output bytes of one task waiting for the writer before its Run call stops reading. */
#define SCH_MAX_BACKLOG (4u << 20)

/* One Run call; what sch_step_ended reads is its outcome: status, details, res, exited_seen. */
struct sch_run {
    sch_task *t;
    sch_exec *e;
    grpc_call *call;
    rpc_tag tag_start, tag_recv, tag_status;
    grpc_byte_buffer *send_bb, *recv_bb;
    grpc_metadata_array md_init, md_trail;
    grpc_metadata auth;
    bool has_auth;
    grpc_status_code status;
    grpc_slice details;
    int pending; /* batches in flight */
    bool recv_paused;
    Pm__Scheduler__V1__StepResult *res; /* the step's result, built from the exit events */
    bool exited_seen;
    uint64_t kept[2]; /* output bytes kept per stream */
};

/* Starts step st of t on executor e (mu held): 0 with *out set, -ENOMEM, or -EIO when the call
 * could not start. The deadline is left_ms from now (INT64_MAX: none). */
int sch_run_start(sch *s, sch_task *t, sch_exec *e, const Pm__Scheduler__V1__Step *st,
                  uint32_t step_timeout_ms, int64_t left_ms, sch_run **out);
/* Reads the executor's stream again once the writer has caught up (mu held). */
void sch_run_resume(sch_task *t);

/* ---- the writer (writer.c) ------------------------------------------------------------- */

enum { OP_SUBMIT, OP_TASK, OP_EVENTS, OP_RENEW, OP_PIPELINE };

typedef struct {
    uint64_t seq;
    uint8_t *data;
    size_t len;
} sch_blob_event;

struct sch_op {
    sch_op *next;
    int kind;
    sch_task *t;
    int64_t task_id;
    sch_task_row row; /* OP_SUBMIT, OP_TASK: the columns; record points to rec_buf */
    uint8_t *rec_buf;
    char *idem_key, *pipeline, *lease_owner;
    uint32_t expect_attempt;
    sch_blob_event *events;
    size_t n_events;
    size_t output_bytes; /* of the events, for the task's backlog */
    char *name;          /* OP_PIPELINE */
    bool durable;        /* acknowledges something: its commit must be fsynced */
    int rc;              /* the store's answer */
    char error[256];
    int64_t existing_id;              /* OP_SUBMIT: the task that already has the key (rc 1) */
    void (*done)(sch *s, sch_op *op); /* with no lock held, after commit */
    void *arg;
    void *arg2;
    sch_rec *rec; /* OP_SUBMIT: the new task's record */
};

int sch_writer_start(sch *s);
void sch_writer_stop(sch *s);
void sch_write(sch *s, sch_op *op);
sch_op *sch_op_new(int kind);
void sch_op_free(sch_op *op);
/* Appends an event (packed WatchEvent) to op. */
int sch_op_event(sch_op *op, const Pm__Scheduler__V1__WatchEvent *ev);
/* Fills op->row and the record from t (for OP_TASK). */
int sch_op_task(sch_op *op, sch_task *t);

/* ---- the API (api.c) ------------------------------------------------------------------- */

struct sch_call {
    sch *s;
    int method;
    grpc_call *call;
    gpr_timespec deadline;
    grpc_metadata_array md;
    grpc_byte_buffer *req;
    rpc_tag tag_new, tag_close, tag_send;
    int cancelled_out;
    int pending;
    bool closed, finished, md_sent;
    grpc_byte_buffer *send_bb;
    sch_call *next_waiter;
    sch_watch *watch;
    uint64_t t_us;
};

/* Answers a unary call with msg (or just the status when msg is NULL); takes no lock. */
void sch_reply(sch_call *c, const ProtobufCMessage *msg, grpc_status_code code, const char *why);
void sch_reply_bb(sch_call *c, grpc_byte_buffer *bb, grpc_status_code code, const char *why);
/* Registers the methods (before grpc_server_start), then posts the first requests. */
int sch_api_register(sch *s);
void sch_api_start(sch *s);
/* A Watch call's send came back. */
void sch_watch_sent(sch_watch *w, bool ok);
/* Call references (api.c): one for the handler until it answered, one per op in flight. */
void sch_call_ref(sch_call *c);
void sch_call_unref(sch_call *c);
/* The task id of a request, or false after answering INVALID_ARGUMENT. */
bool sch_id_or_reply(sch_call *c, const char *idstr, int64_t *id);
/* The stored record of a task not in memory; NULL with *code and msg set. */
sch_rec *sch_read_task(sch *s, int64_t id, grpc_status_code *code, char *msg, size_t len);

/* ---- Watch (watch.c) ----------------------------------------------------------------------- */

/* Answers a Watch call: NOT_FOUND for an unknown task, else starts its stream. */
void sch_watch_start(sch *s, sch_call *c, const Pm__Scheduler__V1__WatchRequest *req);
/* The client cancelled or went away. */
void sch_watch_cancelled(sch_watch *w);
/* Frees a watcher's memory (with its call). NULL is fine. */
void sch_watch_free(sch_watch *w);
/* Wakes the watchers in list after a commit; ev[0..n) are the events it stored (n may be 0). */
void sch_watch_kick(sch *s, sch_watch *list, const sch_blob_event *ev, size_t n);
void sch_pipelines_free(sch *s);
int sch_pipelines_load(sch *s, char *err, size_t errlen);
/* api_pipelines.c: the stored pipeline NAME, or NULL. */
struct sch_pipe_entry *sch_pipe_find(sch *s, const char *name);
/* A pipeline or label name: 1-128 of [A-Za-z0-9_.-]. */
bool sch_name_ok(const char *n);
void sch_handle_put_pipeline(sch *s, sch_call *c, Pm__Scheduler__V1__PutPipelineRequest *req);
/* GetPipeline of get_name, or ListPipelines when get_name is NULL. */
void sch_handle_pipelines(sch *s, sch_call *c, const char *get_name);

/* ---- the daemon -------------------------------------------------------------------------- */

#define SCH_TASK_BUCKETS 4096

typedef struct sch_pipe_entry sch_pipe_entry;
/* A stored pipeline, decoded once (api_pipelines.c). */
struct sch_pipe_entry {
    char *name;
    Pm__Scheduler__V1__PipelineInfo *info; /* owned (unpacked) */
    sch_pipeline *pipe;
    sch_pipe_entry *next;
};

struct sch {
    sch_config cfg;
    char *token, *executor_token;
    grpc_channel_credentials *exec_creds; /* for executors on TCP (plaintext or TLS) */
    sch_store *store;                     /* writer handle: the writer thread only (and startup) */
    sch_store *reader;                    /* reads from any thread, under reader_mu */
    pthread_mutex_t reader_mu;
    sch_workers_config *wcfg;
    sch_workers_config **retired; /* configs replaced by SIGHUP, freed at exit */
    size_t n_retired;
    grpc_completion_queue *cq;
    grpc_server *server;
    rpc_health *health;
    void *methods[16];
    pthread_t cq_thread, writer_thread, timer_thread, resolver_thread;

    /* writer queue */
    pthread_mutex_t wq_mu;
    pthread_cond_t wq_cond;
    sch_op *wq_head, *wq_tail;
    bool wq_stop;
    uint64_t commits, committed_ops;

    pthread_mutex_t mu;
    sch_pool *pools;
    size_t n_pools;
    sch_task *buckets[SCH_TASK_BUCKETS];
    size_t n_active;
    size_t n_foreign; /* tasks in TP_FOREIGN */
    sch_task *delayed;
    sch_pipe_entry *pipelines;
    bool shutting_down, stop_timer, server_down;
    uint64_t renew_at_us;
    uint64_t started, succeeded, failed, retried;
    rpc_tag tag_shutdown;
};

#endif

/*
 * The scheduler's durable store, behind a small table of operations so that the SQLite backend
 * (store_sqlite.c, the default) can be joined by a PostgreSQL one for replicas. The store knows
 * rows and opaque records, not protobuf: a task is a row of columns the scheduler queries on
 * (state, priority, lease, attempt, ...) plus a record blob, the packed pm.scheduler.v1.Task,
 * whose copies of those columns the scheduler overwrites from the row when it loads one. Events
 * are (task, seq, blob) with blob a packed WatchEvent. Named pipelines are (name, blob).
 *
 * A handle is used by one thread at a time. Writes happen inside begin/commit; the scheduler's
 * writer thread groups many writes into one transaction so that their fsync is shared, and it
 * acknowledges nothing before commit returned 0. Reads may also run outside a transaction (on a
 * second handle opened on the same file: SQLite in WAL mode lets readers run beside the writer).
 *
 * Every operation returns 0 (or a count, where said) or a negative errno, and leaves a message for
 * sch_store_error(). Pointers handed to a callback are valid only during that call.
 */
#ifndef PM_SCHEDULER_STORE_H
#define PM_SCHEDULER_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct sch_store sch_store;

/* Task states, equal to pm.scheduler.v1.TaskState. */
enum {
    SCH_QUEUED = 1,
    SCH_RUNNING = 2,
    SCH_SUCCEEDED = 3,
    SCH_FAILED = 4,
    SCH_CANCELLED = 5,
    SCH_DEAD = 6,
};

/* One task row. Strings are never NULL ("" for none). */
typedef struct {
    int64_t id;           /* assigned by the store on insert */
    const char *idem_key; /* idempotency key, unique when not empty */
    int state;            /* SCH_* */
    int32_t priority;     /* higher first */
    const char *pipeline; /* name of a stored pipeline, or "" for an inline one */
    int64_t created_ms;
    uint32_t attempt;        /* attempts started; the fencing token */
    const char *lease_owner; /* scheduler instance holding the lease, "" when none */
    int64_t lease_expires_ms;
    int64_t not_before_ms; /* a queued task waits until then (retry backoff) */
    uint64_t last_seq;     /* seq of the newest event */
    const uint8_t *record;
    size_t record_len;
} sch_task_row;

/* Filter of tasks_list; rows come newest (highest id) first. */
typedef struct {
    uint32_t states;      /* bit (1 << state) for each wanted state; 0: all */
    const char *pipeline; /* "" or NULL: any */
    int64_t before_id;    /* only ids below this; 0: from the newest */
    uint32_t limit;       /* rows at most */
} sch_list_filter;

typedef int (*sch_row_fn)(const sch_task_row *row, void *arg); /* nonzero stops */
typedef int (*sch_event_fn)(uint64_t seq, const uint8_t *data, size_t len, void *arg);
typedef int (*sch_blob_fn)(const char *name, const uint8_t *data, size_t len, void *arg);

typedef struct sch_store_ops {
    const char *backend; /* "sqlite" */
    void (*close)(sch_store *s);
    int (*begin)(sch_store *s);
    int (*commit)(sch_store *s);
    void (*rollback)(sch_store *s);
    /*
     * How the following commits are made durable (called outside a transaction): full, each
     * commit is on disk before it returns (what an acknowledgement needs); otherwise a commit
     * survives a crash of the process but may be lost, with every later one, to a power failure
     * or a kernel crash (SQLite WAL with synchronous=NORMAL). Returns 0 or a negative errno.
     */
    int (*set_full_sync)(sch_store *s, bool full);
    /*
     * Inside a transaction, groups the statements of one logical write: after mark, unmark with
     * keep = false undoes everything since the mark (and keep = true keeps it), so a write made
     * of several statements is applied whole or not at all while its batch still commits.
     */
    int (*mark)(sch_store *s);
    int (*unmark)(sch_store *s, bool keep);

    /*
     * Inserts row (its id is ignored) and sets *id. When row->idem_key is not empty and a task
     * with that key exists, stores nothing, calls existing(row of that task, arg) and returns 1.
     */
    int (*task_insert)(sch_store *s, const sch_task_row *row, int64_t *id, sch_row_fn existing,
                       void *arg);
    /*
     * Writes every column of row to the task row->id, but only if its attempt column still equals
     * expect_attempt (the fence). -ESTALE when it does not (a newer attempt owns the task),
     * -ENOENT when there is no such task.
     */
    int (*task_update)(sch_store *s, const sch_task_row *row, uint32_t expect_attempt);
    /* Calls fn with the task's row; -ENOENT when none. */
    int (*task_get)(sch_store *s, int64_t id, sch_row_fn fn, void *arg);
    /* Calls fn for every QUEUED or RUNNING task, in id order. */
    int (*tasks_active)(sch_store *s, sch_row_fn fn, void *arg);
    /* Calls fn for the tasks matching f; returns how many it called fn for. */
    int (*tasks_list)(sch_store *s, const sch_list_filter *f, sch_row_fn fn, void *arg);
    /* Sets lease_expires_ms of every RUNNING task leased by owner; returns how many. */
    int (*lease_renew)(sch_store *s, const char *owner, int64_t expires_ms);

    /* Appends event seq of task; -EEXIST when that (task, seq) exists. */
    int (*event_append)(sch_store *s, int64_t task, uint64_t seq, const uint8_t *data, size_t len);
    /* Calls fn for events of task with seq > after_seq in seq order, at most max of them;
     * returns how many. */
    int (*events_read)(sch_store *s, int64_t task, uint64_t after_seq, uint32_t max,
                       sch_event_fn fn, void *arg);

    /* Stores (replaces) a named pipeline; returns 0. */
    int (*pipeline_put)(sch_store *s, const char *name, const uint8_t *data, size_t len);
    /* -ENOENT when there is none of that name. */
    int (*pipeline_get)(sch_store *s, const char *name, sch_blob_fn fn, void *arg);
    /* Every stored pipeline, by name. */
    int (*pipelines_list)(sch_store *s, sch_blob_fn fn, void *arg);
} sch_store_ops;

/* Every backend's handle starts with this. */
struct sch_store {
    const sch_store_ops *ops;
    char error[256];
};

static inline const char *sch_store_error(const sch_store *s)
{
    return s->error;
}

typedef struct {
    bool read_only;           /* a reader handle beside the writer */
    bool allow_memory;        /* accept ":memory:" (tests only; the daemon refuses it) */
    uint32_t busy_timeout_ms; /* 0: 5000 */
} sch_sqlite_options;

/*
 * Opens (creating when needed, unless read_only) the SQLite database at path in WAL mode with
 * synchronous=FULL and creates the schema. Returns 0 with *out set, or a negative errno with a
 * message in err ("store /x/y.db: unable to open database file").
 */
int sch_store_open_sqlite(const char *path, const sch_sqlite_options *o, sch_store **out, char *err,
                          size_t errlen);

static inline void sch_store_close(sch_store *s)
{
    if (s)
        s->ops->close(s);
}

#endif

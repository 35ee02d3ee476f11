/*
 * The SQLite backend of the scheduler's store (see store.h for the contract). One handle is one
 * sqlite3 connection with every statement prepared once at open, since the writer thread runs
 * thousands of them a second and parsing SQL each time would cost more than the work itself.
 * The file is in WAL mode with synchronous=FULL (set_full_sync may lower it to NORMAL for commits
 * that acknowledge nothing), so a commit is one fsync of the log and readers on a second handle see
 * the last committed state while the writer holds a transaction open. The schema carries its
 * version in PRAGMA user_version and is brought up to date at open by the migrations below, in one
 * transaction, so that a later version can add to it safely.
 *
 * Choices beyond the header: task_update never changes idem_key (the key names the submission
 * for as long as the task exists, and a row rebuilt from a record must not lose it); a limit or
 * max of 0 means no limit; when an idempotency key finds a task, *id is set to that task's id;
 * a callback returning nonzero stops the walk, and the count includes that call; callbacks must
 * not use the same handle for writes (collect, then write). A failed commit rolls back, so that
 * nothing of it is stored and the handle is ready for the next begin.
 */
#include "scheduler/store.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sqlite3.h>

#define DEFAULT_BUSY_TIMEOUT_MS 5000

/*
 * Migrations, in order: migrations[v] takes a database from user_version v to v + 1. A released
 * entry is never edited; a change to the schema is a new entry. IF NOT EXISTS keeps the first
 * one harmless on a file whose tables were created by hand.
 */
static const char *const migrations[] = {
    /* 0 -> 1: the first schema. AUTOINCREMENT so that a task id is never handed out twice,
     * even after the newest task is deleted: ids appear in clients' logs and URLs. */
    "CREATE TABLE IF NOT EXISTS tasks ("
    " id INTEGER PRIMARY KEY AUTOINCREMENT,"
    " idem_key TEXT NOT NULL DEFAULT '',"
    " state INTEGER NOT NULL,"
    " priority INTEGER NOT NULL DEFAULT 0,"
    " pipeline TEXT NOT NULL DEFAULT '',"
    " created_ms INTEGER NOT NULL DEFAULT 0,"
    " attempt INTEGER NOT NULL DEFAULT 0,"
    " lease_owner TEXT NOT NULL DEFAULT '',"
    " lease_expires_ms INTEGER NOT NULL DEFAULT 0,"
    " not_before_ms INTEGER NOT NULL DEFAULT 0,"
    " last_seq INTEGER NOT NULL DEFAULT 0,"
    " record BLOB NOT NULL);"
    /* Partial, so that the many tasks submitted without a key never collide. */
    "CREATE UNIQUE INDEX IF NOT EXISTS tasks_idem ON tasks(idem_key) WHERE idem_key <> '';"
    "CREATE INDEX IF NOT EXISTS tasks_active ON tasks(state);"
    "CREATE INDEX IF NOT EXISTS tasks_list ON tasks(pipeline, id);"
    "CREATE TABLE IF NOT EXISTS events ("
    " task_id INTEGER NOT NULL REFERENCES tasks(id) ON DELETE CASCADE,"
    " seq INTEGER NOT NULL,"
    " data BLOB NOT NULL,"
    " PRIMARY KEY (task_id, seq)) WITHOUT ROWID;"
    "CREATE TABLE IF NOT EXISTS pipelines ("
    " name TEXT PRIMARY KEY NOT NULL,"
    " data BLOB NOT NULL);",
};
#define SCHEMA_VERSION ((int)(sizeof migrations / sizeof migrations[0]))

/* The columns of a task, in the order read_row expects them. */
#define TASK_COLS                                                                                  \
    "id, idem_key, state, priority, pipeline, created_ms, attempt, lease_owner, "                  \
    "lease_expires_ms, not_before_ms, last_seq, record"

enum {
    ST_BEGIN,
    ST_COMMIT,
    ST_ROLLBACK,
    ST_SAVEPOINT,
    ST_RELEASE,
    ST_ROLLBACK_TO,
    ST_TASK_INSERT,
    ST_TASK_BY_KEY,
    ST_TASK_UPDATE,
    ST_TASK_EXISTS,
    ST_TASK_GET,
    ST_TASKS_ACTIVE,
    ST_TASKS_LIST,
    ST_TASKS_LIST_PIPELINE,
    ST_LEASE_RENEW,
    ST_EVENT_APPEND,
    ST_EVENTS_READ,
    ST_PIPELINE_PUT,
    ST_PIPELINE_GET,
    ST_PIPELINES_LIST,
    ST_COUNT,
};

/*
 * The two list variants differ only in the pipeline term: with it the tasks_list index serves
 * the filter, the bound and the order at once; an "(?2 = '' OR pipeline = ?2)" term would hide
 * the index from the planner. The id bound is always a real range (INT64_MAX for "from the
 * newest") for the same reason.
 */
#define LIST_STATES "(?1 = 0 OR ((1 << state) & ?1) <> 0)"

static const char *const sql[ST_COUNT] = {
    /* IMMEDIATE takes the write lock at begin, so a busy database shows up there and not as a
     * deadlock when a read transaction tries to become a write one. Readers get a plain BEGIN
     * (a snapshot) instead, set at open. */
    [ST_BEGIN] = "BEGIN IMMEDIATE",
    [ST_COMMIT] = "COMMIT",
    [ST_ROLLBACK] = "ROLLBACK",
    [ST_SAVEPOINT] = "SAVEPOINT op",
    [ST_RELEASE] = "RELEASE op",
    [ST_ROLLBACK_TO] = "ROLLBACK TO op",
    /* The conflict target names the partial index, so that only a duplicate key is absorbed and
     * any other constraint still fails. */
    [ST_TASK_INSERT] = "INSERT INTO tasks (idem_key, state, priority, pipeline, created_ms, "
                       "attempt, lease_owner, lease_expires_ms, not_before_ms, last_seq, record) "
                       "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11) "
                       "ON CONFLICT (idem_key) WHERE idem_key <> '' DO NOTHING",
    /* The repeated "idem_key <> ''" lets the planner use the partial index. */
    [ST_TASK_BY_KEY] = "SELECT " TASK_COLS " FROM tasks WHERE idem_key = ?1 AND idem_key <> ''",
    [ST_TASK_UPDATE] = "UPDATE tasks SET state = ?2, priority = ?3, pipeline = ?4, "
                       "created_ms = ?5, attempt = ?6, lease_owner = ?7, lease_expires_ms = ?8, "
                       "not_before_ms = ?9, last_seq = ?10, record = ?11 "
                       "WHERE id = ?12 AND attempt = ?13",
    [ST_TASK_EXISTS] = "SELECT 1 FROM tasks WHERE id = ?1",
    [ST_TASK_GET] = "SELECT " TASK_COLS " FROM tasks WHERE id = ?1",
    [ST_TASKS_ACTIVE] = "SELECT " TASK_COLS " FROM tasks WHERE state IN (1, 2) ORDER BY id",
    [ST_TASKS_LIST] = "SELECT " TASK_COLS " FROM tasks WHERE id < ?3 AND " LIST_STATES
                      " ORDER BY id DESC LIMIT ?4",
    [ST_TASKS_LIST_PIPELINE] = "SELECT " TASK_COLS " FROM tasks WHERE pipeline = ?2 AND id < ?3 "
                               "AND " LIST_STATES " ORDER BY id DESC LIMIT ?4",
    [ST_LEASE_RENEW] = "UPDATE tasks SET lease_expires_ms = ?2 WHERE state = 2 AND "
                       "lease_owner = ?1",
    [ST_EVENT_APPEND] = "INSERT INTO events (task_id, seq, data) VALUES (?1, ?2, ?3)",
    [ST_EVENTS_READ] = "SELECT seq, data FROM events WHERE task_id = ?1 AND seq > ?2 "
                       "ORDER BY seq LIMIT ?3",
    /* An upsert rather than INSERT OR REPLACE: REPLACE deletes the old row first, which would
     * fire ON DELETE actions once anything references a pipeline. */
    [ST_PIPELINE_PUT] = "INSERT INTO pipelines (name, data) VALUES (?1, ?2) "
                        "ON CONFLICT (name) DO UPDATE SET data = excluded.data",
    [ST_PIPELINE_GET] = "SELECT name, data FROM pipelines WHERE name = ?1",
    [ST_PIPELINES_LIST] = "SELECT name, data FROM pipelines ORDER BY name",
};

typedef struct {
    struct sch_store base; /* first, so that a sch_store * is a sqlite_store * */
    sqlite3 *db;
    char *path;
    bool read_only;
    bool full_sync; /* what PRAGMA synchronous is now: FULL or NORMAL */
    sqlite3_stmt *st[ST_COUNT];
} sqlite_store;

static const sch_store_ops sqlite_ops;

static sqlite_store *from(sch_store *s)
{
    return (sqlite_store *)s;
}

/* Sets the handle's message, "store PATH: " and the formatted rest, and returns err. */
static int fail(sqlite_store *s, int err, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int fail(sqlite_store *s, int err, const char *fmt, ...)
{
    int n = snprintf(s->base.error, sizeof s->base.error, "store %s: ", s->path);
    if (n < 0 || (size_t)n >= sizeof s->base.error)
        return err;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(s->base.error + n, sizeof s->base.error - (size_t)n, fmt, ap);
    va_end(ap);
    return err;
}

/*
 * The errno for a SQLite result code. BUSY and LOCKED arrive only after the busy timeout, so the
 * caller may retry later; the scheduler tells a full disk apart because it can recover from one.
 */
static int errno_of(int rc)
{
    switch (rc & 0xff) {
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
        return -EBUSY;
    case SQLITE_FULL:
        return -ENOSPC;
    case SQLITE_NOMEM:
        return -ENOMEM;
    case SQLITE_READONLY:
        return -EROFS;
    case SQLITE_TOOBIG:
        return -EMSGSIZE;
    default:
        return -EIO;
    }
}

/* Reports a failed SQLite call of operation op with SQLite's own message. */
static int db_fail(sqlite_store *s, int rc, const char *op)
{
    return fail(s, errno_of(rc), "%s: %s", op, sqlite3_errmsg(s->db));
}

/* Readies a statement for its next use; bound pointers are dropped with the bindings. */
static void finish(sqlite3_stmt *st)
{
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
}

/* Bindings borrow the caller's memory (SQLITE_STATIC): every use ends in finish(). */
static int bind_text(sqlite3_stmt *st, int i, const char *v)
{
    return sqlite3_bind_text(st, i, v ? v : "", -1, SQLITE_STATIC);
}

static int bind_blob(sqlite3_stmt *st, int i, const uint8_t *v, size_t len)
{
    /* A NULL pointer would bind SQL NULL, which the NOT NULL columns refuse; empty is "". */
    if (!v || len == 0)
        return sqlite3_bind_zeroblob(st, i, 0);
    return sqlite3_bind_blob64(st, i, v, len, SQLITE_STATIC);
}

/* Binds ?1..?11 of ST_TASK_INSERT and ST_TASK_UPDATE, which share their numbering. */
static int bind_row(sqlite3_stmt *st, const sch_task_row *r)
{
    int rc = bind_text(st, 1, r->idem_key);
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_int(st, 2, r->state);
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_int(st, 3, r->priority);
    if (rc == SQLITE_OK)
        rc = bind_text(st, 4, r->pipeline);
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_int64(st, 5, r->created_ms);
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_int64(st, 6, r->attempt);
    if (rc == SQLITE_OK)
        rc = bind_text(st, 7, r->lease_owner);
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_int64(st, 8, r->lease_expires_ms);
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_int64(st, 9, r->not_before_ms);
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_int64(st, 10, (sqlite3_int64)r->last_seq);
    if (rc == SQLITE_OK)
        rc = bind_blob(st, 11, r->record, r->record_len);
    return rc;
}

static const char *column_text(sqlite3_stmt *st, int i)
{
    const unsigned char *t = sqlite3_column_text(st, i);
    return t ? (const char *)t : "";
}

/* Fills r from the current row of a TASK_COLS statement; pointers live until the next step. */
static void read_row(sqlite3_stmt *st, sch_task_row *r)
{
    r->id = sqlite3_column_int64(st, 0);
    r->idem_key = column_text(st, 1);
    r->state = sqlite3_column_int(st, 2);
    r->priority = sqlite3_column_int(st, 3);
    r->pipeline = column_text(st, 4);
    r->created_ms = sqlite3_column_int64(st, 5);
    r->attempt = (uint32_t)sqlite3_column_int64(st, 6);
    r->lease_owner = column_text(st, 7);
    r->lease_expires_ms = sqlite3_column_int64(st, 8);
    r->not_before_ms = sqlite3_column_int64(st, 9);
    r->last_seq = (uint64_t)sqlite3_column_int64(st, 10);
    /* column_blob before column_bytes, as SQLite asks; an empty blob comes back as NULL. */
    const void *rec = sqlite3_column_blob(st, 11);
    r->record_len = (size_t)sqlite3_column_bytes(st, 11);
    r->record = rec ? rec : (const uint8_t *)"";
}

/*
 * Steps a bound task query to its end, calling fn (when set) for each row until it returns
 * nonzero, and finishes the statement. Returns the number of rows fn was called for.
 */
static int each_task(sqlite_store *s, sqlite3_stmt *st, const char *op, sch_row_fn fn, void *arg)
{
    int n = 0, rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        sch_task_row r;
        read_row(st, &r);
        n++;
        if (fn && fn(&r, arg)) {
            rc = SQLITE_DONE;
            break;
        }
    }
    int ret = rc == SQLITE_DONE ? n : db_fail(s, rc, op);
    finish(st);
    return ret;
}

/* The same for (name, blob) rows of the pipelines table. */
static int each_blob(sqlite_store *s, sqlite3_stmt *st, const char *op, sch_blob_fn fn, void *arg)
{
    int n = 0, rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        const char *name = column_text(st, 0);
        const void *data = sqlite3_column_blob(st, 1);
        size_t len = (size_t)sqlite3_column_bytes(st, 1);
        n++;
        if (fn && fn(name, data ? data : "", len, arg)) {
            rc = SQLITE_DONE;
            break;
        }
    }
    int ret = rc == SQLITE_DONE ? n : db_fail(s, rc, op);
    finish(st);
    return ret;
}

/* Runs a statement that returns no rows; on failure *rcp (when set) gets SQLite's code. */
static int run(sqlite_store *s, sqlite3_stmt *st, const char *op, int *rcp)
{
    int rc = sqlite3_step(st);
    int ret = 0;
    if (rc != SQLITE_DONE && rc != SQLITE_ROW)
        ret = db_fail(s, rc, op);
    if (rcp)
        *rcp = rc;
    finish(st);
    return ret;
}

/* ---- transactions ---- */

static int sq_begin(sch_store *base)
{
    sqlite_store *s = from(base);
    if (!sqlite3_get_autocommit(s->db))
        return fail(s, -EINVAL, "begin: a transaction is already open");
    return run(s, s->st[ST_BEGIN], "begin", NULL);
}

static void sq_rollback(sch_store *base)
{
    sqlite_store *s = from(base);
    /* SQLite has already rolled back after some errors (a full disk, I/O); ROLLBACK would then
     * fail with "no transaction is active" and overwrite the message that explains why. */
    if (!sqlite3_get_autocommit(s->db))
        run(s, s->st[ST_ROLLBACK], "rollback", NULL);
}

static int sq_commit(sch_store *base)
{
    sqlite_store *s = from(base);
    if (sqlite3_get_autocommit(s->db))
        return fail(s, -EINVAL, "commit: no transaction is open");
    int ret = run(s, s->st[ST_COMMIT], "commit", NULL);
    if (ret < 0 && !sqlite3_get_autocommit(s->db)) {
        /* Leave no half-state: the caller acknowledges nothing of a failed commit, and must
         * be able to begin again. ROLLBACK would replace the message, so keep it. */
        char msg[sizeof s->base.error];
        memcpy(msg, s->base.error, sizeof msg);
        run(s, s->st[ST_ROLLBACK], "rollback", NULL);
        memcpy(s->base.error, msg, sizeof msg);
    }
    return ret;
}

static int sq_set_full_sync(sch_store *base, bool full)
{
    sqlite_store *s = from(base);
    if (full == s->full_sync)
        return 0;
    if (!sqlite3_get_autocommit(s->db))
        return fail(s, -EINVAL, "set_full_sync: a transaction is open");
    int rc = sqlite3_exec(s->db, full ? "PRAGMA synchronous = FULL" : "PRAGMA synchronous = NORMAL",
                          NULL, NULL, NULL);
    if (rc != SQLITE_OK)
        return db_fail(s, rc, "set_full_sync");
    s->full_sync = full;
    return 0;
}

static int sq_mark(sch_store *base)
{
    sqlite_store *s = from(base);
    return run(s, s->st[ST_SAVEPOINT], "savepoint", NULL);
}

static int sq_unmark(sch_store *base, bool keep)
{
    sqlite_store *s = from(base);
    /* ROLLBACK TO undoes the group's statements but leaves the savepoint open; RELEASE closes
     * it either way. The caller's message for the failure is kept. */
    char msg[sizeof s->base.error];
    memcpy(msg, s->base.error, sizeof msg);
    int ret = keep ? 0 : run(s, s->st[ST_ROLLBACK_TO], "rollback to savepoint", NULL);
    if (ret == 0)
        ret = run(s, s->st[ST_RELEASE], "release savepoint", NULL);
    if (!keep && ret == 0)
        memcpy(s->base.error, msg, sizeof msg);
    return ret;
}

/* ---- tasks ---- */

static int sq_task_insert(sch_store *base, const sch_task_row *row, int64_t *id,
                          sch_row_fn existing, void *arg)
{
    sqlite_store *s = from(base);
    sqlite3_stmt *st = s->st[ST_TASK_INSERT];
    int rc = bind_row(st, row);
    if (rc != SQLITE_OK) {
        finish(st);
        return db_fail(s, rc, "task_insert");
    }
    int ret = run(s, st, "task_insert", NULL);
    if (ret < 0)
        return ret;
    if (sqlite3_changes(s->db) > 0) {
        if (id)
            *id = sqlite3_last_insert_rowid(s->db);
        return 0;
    }

    /* Only the idempotency key can have been absorbed by the conflict clause. */
    st = s->st[ST_TASK_BY_KEY];
    bind_text(st, 1, row->idem_key);
    int64_t found = 0;
    int rows = 0;
    if ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        sch_task_row r;
        read_row(st, &r);
        found = r.id;
        rows = 1;
        if (existing)
            existing(&r, arg);
        rc = SQLITE_DONE;
    }
    ret = rc == SQLITE_DONE ? 0 : db_fail(s, rc, "task_insert");
    finish(st);
    if (ret < 0)
        return ret;
    if (!rows)
        return fail(s, -EIO, "task_insert: nothing inserted, yet no task has the key \"%.64s\"",
                    row->idem_key ? row->idem_key : "");
    if (id)
        *id = found;
    return 1;
}

static int sq_task_update(sch_store *base, const sch_task_row *row, uint32_t expect_attempt)
{
    sqlite_store *s = from(base);
    sqlite3_stmt *st = s->st[ST_TASK_UPDATE];
    /* ?1 (idem_key) is bound too but unused by the statement: see the file comment. */
    int rc = bind_row(st, row);
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_int64(st, 12, row->id);
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_int64(st, 13, expect_attempt);
    if (rc != SQLITE_OK) {
        finish(st);
        return db_fail(s, rc, "task_update");
    }
    int ret = run(s, st, "task_update", NULL);
    if (ret < 0 || sqlite3_changes(s->db) > 0)
        return ret;

    /* Nothing matched: either the task is gone or the fence held. */
    st = s->st[ST_TASK_EXISTS];
    sqlite3_bind_int64(st, 1, row->id);
    rc = sqlite3_step(st);
    finish(st);
    if (rc == SQLITE_ROW)
        return fail(s, -ESTALE, "task %lld: attempt %u is no longer current", (long long)row->id,
                    expect_attempt);
    if (rc == SQLITE_DONE)
        return fail(s, -ENOENT, "task %lld: no such task", (long long)row->id);
    return db_fail(s, rc, "task_update");
}

static int sq_task_get(sch_store *base, int64_t id, sch_row_fn fn, void *arg)
{
    sqlite_store *s = from(base);
    sqlite3_stmt *st = s->st[ST_TASK_GET];
    sqlite3_bind_int64(st, 1, id);
    int n = each_task(s, st, "task_get", fn, arg);
    if (n == 0)
        return fail(s, -ENOENT, "task %lld: no such task", (long long)id);
    return n < 0 ? n : 0;
}

static int sq_tasks_active(sch_store *base, sch_row_fn fn, void *arg)
{
    sqlite_store *s = from(base);
    int n = each_task(s, s->st[ST_TASKS_ACTIVE], "tasks_active", fn, arg);
    return n < 0 ? n : 0;
}

static int sq_tasks_list(sch_store *base, const sch_list_filter *f, sch_row_fn fn, void *arg)
{
    sqlite_store *s = from(base);
    bool by_pipeline = f->pipeline && f->pipeline[0];
    sqlite3_stmt *st = s->st[by_pipeline ? ST_TASKS_LIST_PIPELINE : ST_TASKS_LIST];
    int rc = sqlite3_bind_int64(st, 1, f->states);
    if (rc == SQLITE_OK && by_pipeline)
        rc = bind_text(st, 2, f->pipeline);
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_int64(st, 3, f->before_id > 0 ? f->before_id : INT64_MAX);
    /* A negative LIMIT is no limit in SQLite. */
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_int64(st, 4, f->limit ? (sqlite3_int64)f->limit : -1);
    if (rc != SQLITE_OK) {
        finish(st);
        return db_fail(s, rc, "tasks_list");
    }
    return each_task(s, st, "tasks_list", fn, arg);
}

static int sq_lease_renew(sch_store *base, const char *owner, int64_t expires_ms)
{
    sqlite_store *s = from(base);
    sqlite3_stmt *st = s->st[ST_LEASE_RENEW];
    int rc = bind_text(st, 1, owner);
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_int64(st, 2, expires_ms);
    if (rc != SQLITE_OK) {
        finish(st);
        return db_fail(s, rc, "lease_renew");
    }
    int ret = run(s, st, "lease_renew", NULL);
    return ret < 0 ? ret : sqlite3_changes(s->db);
}

/* ---- events ---- */

static int sq_event_append(sch_store *base, int64_t task, uint64_t seq, const uint8_t *data,
                           size_t len)
{
    sqlite_store *s = from(base);
    /* SQLite integers are signed; a larger seq would wrap and sort before every other. */
    if (seq > INT64_MAX)
        return fail(s, -ERANGE, "task %lld: event seq %llu is out of range", (long long)task,
                    (unsigned long long)seq);
    sqlite3_stmt *st = s->st[ST_EVENT_APPEND];
    int rc = sqlite3_bind_int64(st, 1, task);
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_int64(st, 2, (sqlite3_int64)seq);
    if (rc == SQLITE_OK)
        rc = bind_blob(st, 3, data, len);
    if (rc != SQLITE_OK) {
        finish(st);
        return db_fail(s, rc, "event_append");
    }
    int ret = run(s, st, "event_append", &rc);
    if (rc == SQLITE_CONSTRAINT_PRIMARYKEY)
        return fail(s, -EEXIST, "task %lld: event %llu exists", (long long)task,
                    (unsigned long long)seq);
    if (rc == SQLITE_CONSTRAINT_FOREIGNKEY)
        return fail(s, -ENOENT, "task %lld: no such task (event %llu)", (long long)task,
                    (unsigned long long)seq);
    return ret;
}

static int sq_events_read(sch_store *base, int64_t task, uint64_t after_seq, uint32_t max,
                          sch_event_fn fn, void *arg)
{
    sqlite_store *s = from(base);
    if (after_seq >= INT64_MAX)
        return 0; /* event_append stores nothing above INT64_MAX */
    sqlite3_stmt *st = s->st[ST_EVENTS_READ];
    int rc = sqlite3_bind_int64(st, 1, task);
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_int64(st, 2, (sqlite3_int64)after_seq);
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_int64(st, 3, max ? (sqlite3_int64)max : -1);
    if (rc != SQLITE_OK) {
        finish(st);
        return db_fail(s, rc, "events_read");
    }
    int n = 0;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        uint64_t seq = (uint64_t)sqlite3_column_int64(st, 0);
        const void *data = sqlite3_column_blob(st, 1);
        size_t len = (size_t)sqlite3_column_bytes(st, 1);
        n++;
        if (fn && fn(seq, data ? data : "", len, arg)) {
            rc = SQLITE_DONE;
            break;
        }
    }
    int ret = rc == SQLITE_DONE ? n : db_fail(s, rc, "events_read");
    finish(st);
    return ret;
}

/* ---- pipelines ---- */

static int sq_pipeline_put(sch_store *base, const char *name, const uint8_t *data, size_t len)
{
    sqlite_store *s = from(base);
    sqlite3_stmt *st = s->st[ST_PIPELINE_PUT];
    int rc = bind_text(st, 1, name);
    if (rc == SQLITE_OK)
        rc = bind_blob(st, 2, data, len);
    if (rc != SQLITE_OK) {
        finish(st);
        return db_fail(s, rc, "pipeline_put");
    }
    return run(s, st, "pipeline_put", NULL);
}

static int sq_pipeline_get(sch_store *base, const char *name, sch_blob_fn fn, void *arg)
{
    sqlite_store *s = from(base);
    sqlite3_stmt *st = s->st[ST_PIPELINE_GET];
    bind_text(st, 1, name);
    int n = each_blob(s, st, "pipeline_get", fn, arg);
    if (n == 0)
        return fail(s, -ENOENT, "pipeline \"%.64s\": no such pipeline", name ? name : "");
    return n < 0 ? n : 0;
}

static int sq_pipelines_list(sch_store *base, sch_blob_fn fn, void *arg)
{
    sqlite_store *s = from(base);
    int n = each_blob(s, s->st[ST_PIPELINES_LIST], "pipelines_list", fn, arg);
    return n < 0 ? n : 0;
}

/* ---- open and close ---- */

static void sq_close(sch_store *base)
{
    sqlite_store *s = from(base);
    if (s->db) {
        /* Uncommitted writes are discarded, as a crash would discard them. */
        if (!sqlite3_get_autocommit(s->db))
            sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
        for (int i = 0; i < ST_COUNT; i++)
            sqlite3_finalize(s->st[i]);
        /* Every statement is finalized, so close cannot be refused as busy. */
        sqlite3_close(s->db);
    }
    free(s->path);
    free(s);
}

/* Reads a single integer or text result of a pragma into *num or txt. */
static int pragma(sqlite_store *s, const char *q, int64_t *num, char *txt, size_t txtlen)
{
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(s->db, q, -1, &st, NULL);
    if (rc != SQLITE_OK)
        return db_fail(s, rc, q);
    rc = sqlite3_step(st);
    int ret = 0;
    if (rc == SQLITE_ROW) {
        if (num)
            *num = sqlite3_column_int64(st, 0);
        if (txt)
            snprintf(txt, txtlen, "%s", column_text(st, 0));
    } else if (rc != SQLITE_DONE) {
        ret = db_fail(s, rc, q);
    }
    sqlite3_finalize(st);
    return ret;
}

/* Brings the schema to SCHEMA_VERSION in one transaction, so a crash leaves the old one. */
static int migrate(sqlite_store *s)
{
    int rc = sqlite3_exec(s->db, "BEGIN IMMEDIATE", NULL, NULL, NULL);
    if (rc != SQLITE_OK)
        return db_fail(s, rc, "schema");
    int64_t version = 0;
    int ret = pragma(s, "PRAGMA user_version", &version, NULL, 0);
    if (ret < 0)
        goto fail;
    if (version > SCHEMA_VERSION) {
        ret = fail(s, -EPROTO,
                   "schema version %lld is newer than this scheduler's %d (downgrade refused)",
                   (long long)version, SCHEMA_VERSION);
        goto fail;
    }
    for (; version < SCHEMA_VERSION; version++) {
        char set[64];
        snprintf(set, sizeof set, "PRAGMA user_version = %lld", (long long)version + 1);
        if ((rc = sqlite3_exec(s->db, migrations[version], NULL, NULL, NULL)) != SQLITE_OK ||
            (rc = sqlite3_exec(s->db, set, NULL, NULL, NULL)) != SQLITE_OK) {
            ret = db_fail(s, rc, "schema");
            goto fail;
        }
    }
    if ((rc = sqlite3_exec(s->db, "COMMIT", NULL, NULL, NULL)) != SQLITE_OK) {
        ret = db_fail(s, rc, "schema");
        goto fail;
    }
    return 0;
fail:
    if (!sqlite3_get_autocommit(s->db))
        sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
    return ret;
}

/* A reader creates nothing: it needs the schema the writer made, in a version it knows. */
static int check_schema(sqlite_store *s)
{
    int64_t version = 0;
    int ret = pragma(s, "PRAGMA user_version", &version, NULL, 0);
    if (ret < 0)
        return ret;
    if (version == 0)
        return fail(s, -ENOENT, "no schema yet (the writer creates it; open it first)");
    if (version != SCHEMA_VERSION)
        return fail(s, -EPROTO, "schema version %lld, this scheduler reads version %d",
                    (long long)version, SCHEMA_VERSION);
    return 0;
}

int sch_store_open_sqlite(const char *path, const sch_sqlite_options *o, sch_store **out, char *err,
                          size_t errlen)
{
    static const sch_sqlite_options defaults = {0};
    sqlite_store *s = NULL;
    int ret;

    *out = NULL;
    if (!o)
        o = &defaults;
    if (!path)
        path = "";
    s = calloc(1, sizeof *s);
    if (!s || !(s->path = strdup(path))) {
        snprintf(err, errlen, "store %s: out of memory", path);
        ret = -ENOMEM;
        goto fail;
    }
    s->base.ops = &sqlite_ops;
    s->read_only = o->read_only;

    /* SQLite takes "" for a temporary file deleted at close: no more durable than memory. */
    bool memory = strcmp(path, ":memory:") == 0;
    if (path[0] == '\0') {
        ret = fail(s, -EINVAL, "a path is required (an empty name is a temporary database)");
        goto fail;
    }
    if (memory && !o->allow_memory) {
        ret = fail(s, -EINVAL,
                   "an in-memory database is refused: the store must be durable, "
                   "or acknowledged tasks would be lost with the process");
        goto fail;
    }

    /* NOMUTEX: a handle is used by one thread at a time, so SQLite's own lock is pure cost. */
    int flags = (o->read_only ? SQLITE_OPEN_READONLY : SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE) |
                SQLITE_OPEN_NOMUTEX;
    int rc = sqlite3_open_v2(path, &s->db, flags, NULL);
    if (rc != SQLITE_OK) {
        if (!s->db) {
            ret = fail(s, -ENOMEM, "out of memory");
            goto fail;
        }
        /* "unable to open database file" alone does not say whether the directory is missing
         * or not writable; the errno of the failing call does. */
        int sys = sqlite3_system_errno(s->db);
        ret = fail(s, sys ? -sys : errno_of(rc), "%s%s%s%s", sqlite3_errmsg(s->db), sys ? " (" : "",
                   sys ? strerror(sys) : "", sys ? ")" : "");
        goto fail;
    }
    /* Extended codes tell a duplicate event (PRIMARYKEY) from an unknown task (FOREIGNKEY). */
    sqlite3_extended_result_codes(s->db, 1);
    sqlite3_busy_timeout(s->db,
                         o->busy_timeout_ms ? (int)o->busy_timeout_ms : DEFAULT_BUSY_TIMEOUT_MS);

    /* journal_mode is a property of the file; a reader cannot set it and need not. */
    if (!o->read_only) {
        char mode[16] = "";
        if ((ret = pragma(s, "PRAGMA journal_mode = WAL", NULL, mode, sizeof mode)) < 0)
            goto fail;
        /* SQLite answers with the mode it ended up in rather than failing; without WAL a
         * reader would block the writer. A memory database has no journal to speak of. */
        if (strcmp(mode, "wal") != 0 && !(memory && strcmp(mode, "memory") == 0)) {
            ret = fail(s, -EIO, "cannot use WAL mode (journal_mode is \"%s\")", mode);
            goto fail;
        }
    }
    /* FULL syncs the log at every commit: an acknowledged task survives a power cut, not
     * only a crash of the process. The setting is per connection, as are foreign keys. */
    rc = sqlite3_exec(s->db, "PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON", NULL, NULL,
                      NULL);
    if (rc != SQLITE_OK) {
        ret = db_fail(s, rc, "pragmas");
        goto fail;
    }
    s->full_sync = true;
    if ((ret = o->read_only ? check_schema(s) : migrate(s)) < 0)
        goto fail;

    for (int i = 0; i < ST_COUNT; i++) {
        /* A reader's BEGIN is deferred: it takes a snapshot, never the write lock. */
        const char *q = i == ST_BEGIN && o->read_only ? "BEGIN" : sql[i];
        rc = sqlite3_prepare_v3(s->db, q, -1, SQLITE_PREPARE_PERSISTENT, &s->st[i], NULL);
        if (rc != SQLITE_OK) {
            ret = db_fail(s, rc, "prepare");
            goto fail;
        }
    }
    *out = &s->base;
    return 0;

fail:
    if (s) {
        if (s->path)
            snprintf(err, errlen, "%s", s->base.error);
        sq_close(&s->base);
    }
    return ret;
}

static const sch_store_ops sqlite_ops = {
    .backend = "sqlite",
    .close = sq_close,
    .begin = sq_begin,
    .commit = sq_commit,
    .rollback = sq_rollback,
    .set_full_sync = sq_set_full_sync,
    .mark = sq_mark,
    .unmark = sq_unmark,
    .task_insert = sq_task_insert,
    .task_update = sq_task_update,
    .task_get = sq_task_get,
    .tasks_active = sq_tasks_active,
    .tasks_list = sq_tasks_list,
    .lease_renew = sq_lease_renew,
    .event_append = sq_event_append,
    .events_read = sq_events_read,
    .pipeline_put = sq_pipeline_put,
    .pipeline_get = sq_pipeline_get,
    .pipelines_list = sq_pipelines_list,
};

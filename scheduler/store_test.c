/*
 * Unit tests of the SQLite store against real database files in a temporary directory: every
 * column and the record survive a round trip, an idempotency key finds its task and stores
 * nothing, the attempt fence refuses stale updates, leases, the active set, listing with its
 * filters and paging, events, pipelines, rollback, durability across a reopen, a reader handle
 * beside an open write transaction, busy and refused opens, and a bulk insert whose rate is
 * printed for information.
 */
#include "scheduler/store.h"

#include <dirent.h>
#include <errno.h>
#include <stdint.h>
#include <time.h>
#include <unistd.h>

#include "testing/check.h"

static char tmpdir[4096];

/* A fresh database path in the test's directory. */
static const char *db_path(const char *name)
{
    static char path[sizeof tmpdir + 260]; /* room for any d_name */
    snprintf(path, sizeof path, "%s/%s", tmpdir, name);
    return path;
}

static sch_store *open_store(const char *name, bool read_only)
{
    sch_sqlite_options o = {.read_only = read_only};
    sch_store *s = NULL;
    char err[256];
    int rc = sch_store_open_sqlite(db_path(name), &o, &s, err, sizeof err);
    if (rc != 0)
        fprintf(stderr, "open %s: %d %s\n", name, rc, err);
    CHECK(rc == 0 && s != NULL);
    return s;
}

static void remove_tmpdir(void)
{
    DIR *d = opendir(tmpdir);
    if (!d)
        return;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0)
            unlink(db_path(e->d_name));
    }
    closedir(d);
    rmdir(tmpdir);
}

/* A copy of a row, owning its strings and record, for checks after the callback returned. */
typedef struct {
    int64_t id;
    char idem_key[64], pipeline[64], lease_owner[64];
    int state;
    int32_t priority;
    int64_t created_ms, lease_expires_ms, not_before_ms;
    uint32_t attempt;
    uint64_t last_seq;
    uint8_t record[64];
    size_t record_len;
} saved_row;

typedef struct {
    saved_row rows[64];
    int n;
    int stop_after; /* 0: never stop */
} row_list;

static int save_row(const sch_task_row *r, void *arg)
{
    row_list *l = arg;
    CHECK(r->idem_key && r->pipeline && r->lease_owner && r->record);
    if (l->n < (int)(sizeof l->rows / sizeof l->rows[0])) {
        saved_row *c = &l->rows[l->n];
        c->id = r->id;
        snprintf(c->idem_key, sizeof c->idem_key, "%s", r->idem_key);
        snprintf(c->pipeline, sizeof c->pipeline, "%s", r->pipeline);
        snprintf(c->lease_owner, sizeof c->lease_owner, "%s", r->lease_owner);
        c->state = r->state;
        c->priority = r->priority;
        c->created_ms = r->created_ms;
        c->attempt = r->attempt;
        c->lease_expires_ms = r->lease_expires_ms;
        c->not_before_ms = r->not_before_ms;
        c->last_seq = r->last_seq;
        c->record_len = r->record_len < sizeof c->record ? r->record_len : sizeof c->record;
        memcpy(c->record, r->record, c->record_len);
    }
    l->n++;
    return l->stop_after && l->n >= l->stop_after;
}

static bool same_row(const saved_row *c, const sch_task_row *r)
{
    return c->id == r->id && strcmp(c->idem_key, r->idem_key) == 0 && c->state == r->state &&
           c->priority == r->priority && strcmp(c->pipeline, r->pipeline) == 0 &&
           c->created_ms == r->created_ms && c->attempt == r->attempt &&
           strcmp(c->lease_owner, r->lease_owner) == 0 &&
           c->lease_expires_ms == r->lease_expires_ms && c->not_before_ms == r->not_before_ms &&
           c->last_seq == r->last_seq && c->record_len == r->record_len &&
           memcmp(c->record, r->record, r->record_len) == 0;
}

/* Reads task id into *c; returns the store's result. */
static int get(sch_store *s, int64_t id, saved_row *c)
{
    row_list l = {.n = 0};
    int rc = s->ops->task_get(s, id, save_row, &l);
    if (rc == 0) {
        CHECK(l.n == 1);
        *c = l.rows[0];
    }
    return rc;
}

static sch_task_row plain_row(int state, const char *pipeline)
{
    sch_task_row r = {.idem_key = "",
                      .state = state,
                      .pipeline = pipeline,
                      .lease_owner = "",
                      .record = (const uint8_t *)"r",
                      .record_len = 1};
    return r;
}

static int64_t insert(sch_store *s, const sch_task_row *r)
{
    int64_t id = 0;
    int rc = s->ops->task_insert(s, r, &id, NULL, NULL);
    CHECK(rc == 0 && id > 0);
    return id;
}

static void test_round_trip(void)
{
    sch_store *s = open_store("round.db", false);
    if (!s)
        return;
    CHECK_STR(s->ops->backend, "sqlite");
    static const uint8_t rec[] = {'a', 0, 'b', 0, 0, 0xff, 'c'};
    sch_task_row r = {.id = 999, /* ignored */
                      .idem_key = "key-1",
                      .state = SCH_RUNNING,
                      .priority = -7,
                      .pipeline = "build",
                      .created_ms = 1700000000123,
                      .attempt = 4000000000u,
                      .lease_owner = "sched-a",
                      .lease_expires_ms = 1700000060000,
                      .not_before_ms = -5,
                      .last_seq = (uint64_t)INT64_MAX,
                      .record = rec,
                      .record_len = sizeof rec};
    CHECK(s->ops->begin(s) == 0);
    int64_t id = 0, id2 = 0;
    CHECK(s->ops->task_insert(s, &r, &id, NULL, NULL) == 0);
    sch_task_row e = plain_row(SCH_QUEUED, "");
    e.record = NULL; /* an empty record */
    e.record_len = 0;
    CHECK(s->ops->task_insert(s, &e, &id2, NULL, NULL) == 0);
    CHECK(s->ops->commit(s) == 0);
    CHECK(id > 0 && id != 999 && id2 == id + 1);

    saved_row c;
    CHECK(get(s, id, &c) == 0);
    r.id = id;
    CHECK(same_row(&c, &r));
    CHECK(c.record_len == 7 && c.record[1] == 0 && c.record[5] == 0xff && c.record[6] == 'c');
    CHECK(get(s, id2, &c) == 0);
    CHECK(c.record_len == 0 && c.state == SCH_QUEUED && c.idem_key[0] == '\0');

    CHECK(s->ops->task_get(s, id2 + 100, NULL, NULL) == -ENOENT);
    CHECK_PREFIX(sch_store_error(s), "store ");
    CHECK(strstr(sch_store_error(s), "round.db: ") != NULL);
    sch_store_close(s);
}

static void test_idempotency(void)
{
    sch_store *s = open_store("idem.db", false);
    if (!s)
        return;
    sch_task_row r = plain_row(SCH_QUEUED, "p");
    r.idem_key = "submit-42";
    r.record = (const uint8_t *)"first";
    r.record_len = 5;
    CHECK(s->ops->begin(s) == 0);
    int64_t id = insert(s, &r);

    sch_task_row again = plain_row(SCH_RUNNING, "other");
    again.idem_key = "submit-42";
    again.record = (const uint8_t *)"second";
    again.record_len = 6;
    row_list l = {.n = 0};
    int64_t id_again = 0;
    CHECK(s->ops->task_insert(s, &again, &id_again, save_row, &l) == 1);
    CHECK(id_again == id);
    CHECK(l.n == 1);
    CHECK(l.rows[0].id == id && l.rows[0].state == SCH_QUEUED);
    CHECK_STR(l.rows[0].pipeline, "p");
    CHECK(l.rows[0].record_len == 5 && memcmp(l.rows[0].record, "first", 5) == 0);
    /* Without a callback it still reports the duplicate. */
    CHECK(s->ops->task_insert(s, &again, NULL, NULL, NULL) == 1);
    CHECK(s->ops->commit(s) == 0);

    sch_list_filter all = {0};
    CHECK(s->ops->tasks_list(s, &all, NULL, NULL) == 1);

    /* Empty keys never conflict, with each other or with keyed tasks. */
    sch_task_row nokey = plain_row(SCH_QUEUED, "");
    CHECK(s->ops->begin(s) == 0);
    int64_t a = insert(s, &nokey), b = insert(s, &nokey);
    CHECK(a != b && a > id && b > id);
    CHECK(s->ops->commit(s) == 0);
    CHECK(s->ops->tasks_list(s, &all, NULL, NULL) == 3);

    /* The key is fixed at insert: an update does not change or clear it. */
    saved_row c;
    CHECK(get(s, id, &c) == 0);
    sch_task_row u = r;
    u.id = id;
    u.idem_key = "";
    CHECK(s->ops->task_update(s, &u, 0) == 0);
    CHECK(get(s, id, &c) == 0);
    CHECK_STR(c.idem_key, "submit-42");
    CHECK(s->ops->task_insert(s, &again, &id_again, NULL, NULL) == 1 && id_again == id);
    sch_store_close(s);
}

static void test_fencing(void)
{
    sch_store *s = open_store("fence.db", false);
    if (!s)
        return;
    sch_task_row r = plain_row(SCH_QUEUED, "p");
    r.idem_key = "k";
    CHECK(s->ops->begin(s) == 0);
    int64_t id = insert(s, &r);

    /* Lease it: attempt 0 -> 1, every column changes. */
    sch_task_row u = {.id = id,
                      .idem_key = "k",
                      .state = SCH_RUNNING,
                      .priority = 9,
                      .pipeline = "q",
                      .created_ms = 11,
                      .attempt = 1,
                      .lease_owner = "me",
                      .lease_expires_ms = 12,
                      .not_before_ms = 13,
                      .last_seq = 14,
                      .record = (const uint8_t *)"x\0y",
                      .record_len = 3};
    CHECK(s->ops->task_update(s, &u, 0) == 0);
    saved_row c;
    CHECK(get(s, id, &c) == 0);
    CHECK(same_row(&c, &u));

    /* A worker of attempt 0 reports late: refused, and nothing changes. */
    sch_task_row stale = u;
    stale.state = SCH_SUCCEEDED;
    stale.attempt = 0;
    stale.record = (const uint8_t *)"late";
    stale.record_len = 4;
    CHECK(s->ops->task_update(s, &stale, 0) == -ESTALE);
    CHECK_PREFIX(sch_store_error(s), "store ");
    CHECK(strstr(sch_store_error(s), "no longer current") != NULL);
    CHECK(get(s, id, &c) == 0);
    CHECK(same_row(&c, &u));

    sch_task_row ghost = u;
    ghost.id = id + 1000;
    CHECK(s->ops->task_update(s, &ghost, 1) == -ENOENT);
    CHECK(strstr(sch_store_error(s), "no such task") != NULL);

    /* The current attempt may write, even without a change of values. */
    CHECK(s->ops->task_update(s, &u, 1) == 0);
    CHECK(s->ops->commit(s) == 0);
    CHECK(get(s, id, &c) == 0);
    CHECK(same_row(&c, &u));
    sch_store_close(s);
}

static void test_leases_and_active(void)
{
    sch_store *s = open_store("lease.db", false);
    if (!s)
        return;
    struct {
        int state;
        const char *owner;
    } spec[] = {
        {SCH_RUNNING, "a"},   {SCH_RUNNING, "b"}, {SCH_QUEUED, "a"},
        {SCH_SUCCEEDED, "a"}, {SCH_DEAD, ""},     {SCH_RUNNING, "a"},
        {SCH_FAILED, "a"},    {SCH_QUEUED, ""},   {SCH_CANCELLED, "b"},
    };
    enum { N = sizeof spec / sizeof spec[0] };
    int64_t ids[N];
    CHECK(s->ops->begin(s) == 0);
    for (int i = 0; i < N; i++) {
        sch_task_row r = plain_row(spec[i].state, "");
        r.lease_owner = spec[i].owner;
        r.lease_expires_ms = 100;
        ids[i] = insert(s, &r);
    }
    CHECK(s->ops->lease_renew(s, "a", 500) == 2);
    CHECK(s->ops->lease_renew(s, "nobody", 500) == 0);
    CHECK(s->ops->commit(s) == 0);
    for (int i = 0; i < N; i++) {
        saved_row c;
        CHECK(get(s, ids[i], &c) == 0);
        bool renewed = spec[i].state == SCH_RUNNING && strcmp(spec[i].owner, "a") == 0;
        CHECK(c.lease_expires_ms == (renewed ? 500 : 100));
    }

    row_list l = {.n = 0};
    CHECK(s->ops->tasks_active(s, save_row, &l) == 0);
    int64_t want[] = {ids[0], ids[1], ids[2], ids[5], ids[7]};
    CHECK(l.n == 5);
    for (int i = 0; i < 5 && i < l.n; i++)
        CHECK(l.rows[i].id == want[i]);

    /* A callback's nonzero return stops the walk. */
    l = (row_list){.stop_after = 2};
    CHECK(s->ops->tasks_active(s, save_row, &l) == 0);
    CHECK(l.n == 2);
    sch_store_close(s);
}

static void test_list(void)
{
    sch_store *s = open_store("list.db", false);
    if (!s)
        return;
    /* ids 1..12: pipeline "a" for odd, "b" for even; states cycle QUEUED..DEAD. */
    enum { N = 12 };
    int64_t ids[N + 1];
    CHECK(s->ops->begin(s) == 0);
    for (int i = 1; i <= N; i++) {
        sch_task_row r = plain_row(1 + (i - 1) % 6, i % 2 ? "a" : "b");
        ids[i] = insert(s, &r);
    }
    CHECK(s->ops->commit(s) == 0);
    CHECK(ids[1] == 1 && ids[N] == N);

    row_list l = {.n = 0};
    sch_list_filter f = {0};
    CHECK(s->ops->tasks_list(s, &f, save_row, &l) == N);
    CHECK(l.n == N);
    for (int i = 0; i < l.n; i++)
        CHECK(l.rows[i].id == N - i); /* newest first */

    /* State mask: RUNNING (2, 8) and DEAD (6, 12). */
    l = (row_list){.n = 0};
    f = (sch_list_filter){.states = 1u << SCH_RUNNING | 1u << SCH_DEAD};
    CHECK(s->ops->tasks_list(s, &f, save_row, &l) == 4);
    CHECK(l.n == 4 && l.rows[0].id == 12 && l.rows[1].id == 8 && l.rows[2].id == 6 &&
          l.rows[3].id == 2);

    /* Pipeline "a" (odd ids), with a mask that keeps QUEUED (1, 7) and SUCCEEDED (3, 9). */
    l = (row_list){.n = 0};
    f = (sch_list_filter){.states = 1u << SCH_QUEUED | 1u << SCH_SUCCEEDED, .pipeline = "a"};
    CHECK(s->ops->tasks_list(s, &f, save_row, &l) == 4);
    CHECK(l.n == 4 && l.rows[0].id == 9 && l.rows[1].id == 7 && l.rows[2].id == 3 &&
          l.rows[3].id == 1);
    f = (sch_list_filter){.pipeline = "none"};
    CHECK(s->ops->tasks_list(s, &f, NULL, NULL) == 0);
    f = (sch_list_filter){.pipeline = "b"};
    CHECK(s->ops->tasks_list(s, &f, NULL, NULL) == 6);

    /* before_id and limit. */
    l = (row_list){.n = 0};
    f = (sch_list_filter){.before_id = 5, .limit = 3};
    CHECK(s->ops->tasks_list(s, &f, save_row, &l) == 3);
    CHECK(l.n == 3 && l.rows[0].id == 4 && l.rows[1].id == 3 && l.rows[2].id == 2);
    f = (sch_list_filter){.before_id = 1};
    CHECK(s->ops->tasks_list(s, &f, NULL, NULL) == 0);

    /* Paging through pipeline "b" three at a time visits every row once, newest first. */
    int64_t seen[N], last = 0;
    int nseen = 0, pages = 0;
    for (;;) {
        l = (row_list){.n = 0};
        f = (sch_list_filter){.pipeline = "b", .before_id = last, .limit = 4};
        int n = s->ops->tasks_list(s, &f, save_row, &l);
        CHECK(n >= 0 && n <= 4);
        if (n <= 0 || ++pages > 10)
            break;
        for (int i = 0; i < n; i++)
            seen[nseen++] = l.rows[i].id;
        last = l.rows[n - 1].id;
    }
    CHECK(nseen == 6 && pages == 2);
    for (int i = 0; i < nseen; i++)
        CHECK(seen[i] == 12 - 2 * i);

    /* A stopping callback: the count includes the call that stopped. */
    l = (row_list){.stop_after = 2};
    f = (sch_list_filter){0};
    CHECK(s->ops->tasks_list(s, &f, save_row, &l) == 2);
    sch_store_close(s);
}

typedef struct {
    uint64_t seq[16];
    char data[16][16];
    size_t len[16];
    int n;
} event_list;

static int save_event(uint64_t seq, const uint8_t *data, size_t len, void *arg)
{
    event_list *l = arg;
    CHECK(data != NULL);
    if (l->n < 16) {
        l->seq[l->n] = seq;
        l->len[l->n] = len;
        memcpy(l->data[l->n], data, len < 16 ? len : 16);
    }
    l->n++;
    return 0;
}

static void test_events(void)
{
    sch_store *s = open_store("events.db", false);
    if (!s)
        return;
    sch_task_row r = plain_row(SCH_RUNNING, "");
    CHECK(s->ops->begin(s) == 0);
    int64_t t1 = insert(s, &r), t2 = insert(s, &r);
    for (uint64_t seq = 1; seq <= 5; seq++) {
        uint8_t d[3] = {'e', 0, (uint8_t)('0' + seq)};
        CHECK(s->ops->event_append(s, t1, seq, d, sizeof d) == 0);
    }
    CHECK(s->ops->event_append(s, t2, 1, (const uint8_t *)"other", 5) == 0);
    CHECK(s->ops->event_append(s, t2, 2, NULL, 0) == 0);
    CHECK(s->ops->event_append(s, t1, 3, (const uint8_t *)"dup", 3) == -EEXIST);
    CHECK_PREFIX(sch_store_error(s), "store ");
    CHECK(s->ops->event_append(s, t2 + 50, 1, (const uint8_t *)"x", 1) == -ENOENT);
    /* A failed append leaves the transaction usable. */
    CHECK(s->ops->commit(s) == 0);

    event_list l = {.n = 0};
    CHECK(s->ops->events_read(s, t1, 0, 0, save_event, &l) == 5);
    for (int i = 0; i < 5 && i < l.n; i++) {
        CHECK(l.seq[i] == (uint64_t)i + 1);
        CHECK(l.len[i] == 3 && l.data[i][1] == 0 && l.data[i][2] == '1' + i);
    }
    l = (event_list){.n = 0};
    CHECK(s->ops->events_read(s, t1, 2, 2, save_event, &l) == 2);
    CHECK(l.n == 2 && l.seq[0] == 3 && l.seq[1] == 4);
    CHECK(memcmp(l.data[0],
                 "e\0"
                 "3",
                 3) == 0); /* the duplicate did not replace it */
    CHECK(s->ops->events_read(s, t1, 5, 0, NULL, NULL) == 0);
    l = (event_list){.n = 0};
    CHECK(s->ops->events_read(s, t2, 0, 10, save_event, &l) == 2);
    CHECK(l.n == 2 && l.len[0] == 5 && memcmp(l.data[0], "other", 5) == 0 && l.len[1] == 0);
    CHECK(s->ops->events_read(s, t2 + 50, 0, 0, NULL, NULL) == 0);
    CHECK(s->ops->event_append(s, t1, UINT64_MAX, NULL, 0) == -ERANGE);
    sch_store_close(s);
}

typedef struct {
    char names[8][16];
    char data[8][16];
    size_t len[8];
    int n;
} blob_list;

static int save_blob(const char *name, const uint8_t *data, size_t len, void *arg)
{
    blob_list *l = arg;
    if (l->n < 8) {
        snprintf(l->names[l->n], sizeof l->names[0], "%s", name);
        l->len[l->n] = len;
        memcpy(l->data[l->n], data, len < 16 ? len : 16);
    }
    l->n++;
    return 0;
}

static void test_pipelines(void)
{
    sch_store *s = open_store("pipelines.db", false);
    if (!s)
        return;
    CHECK(s->ops->begin(s) == 0);
    CHECK(s->ops->pipeline_put(s, "zeta", (const uint8_t *)"z1", 2) == 0);
    CHECK(s->ops->pipeline_put(s, "alpha",
                               (const uint8_t *)"a\0"
                                                "1",
                               3) == 0);
    CHECK(s->ops->pipeline_put(s, "zeta", (const uint8_t *)"z2-new", 6) == 0);
    CHECK(s->ops->commit(s) == 0);

    blob_list l = {.n = 0};
    CHECK(s->ops->pipeline_get(s, "zeta", save_blob, &l) == 0);
    CHECK(l.n == 1 && l.len[0] == 6 && memcmp(l.data[0], "z2-new", 6) == 0);
    CHECK_STR(l.names[0], "zeta");
    l = (blob_list){.n = 0};
    CHECK(s->ops->pipelines_list(s, save_blob, &l) == 0);
    CHECK(l.n == 2);
    CHECK_STR(l.names[0], "alpha");
    CHECK_STR(l.names[1], "zeta");
    CHECK(l.len[0] == 3 && memcmp(l.data[0],
                                  "a\0"
                                  "1",
                                  3) == 0);
    CHECK(s->ops->pipeline_get(s, "missing", save_blob, &l) == -ENOENT);
    CHECK(strstr(sch_store_error(s), "\"missing\"") != NULL);
    sch_store_close(s);
}

static void test_rollback(void)
{
    sch_store *s = open_store("rollback.db", false);
    if (!s)
        return;
    sch_task_row r = plain_row(SCH_QUEUED, "");
    CHECK(s->ops->begin(s) == 0);
    int64_t kept = insert(s, &r);
    CHECK(s->ops->commit(s) == 0);

    CHECK(s->ops->begin(s) == 0);
    CHECK(s->ops->begin(s) == -EINVAL); /* no nesting */
    int64_t gone = insert(s, &r);
    sch_task_row u = r;
    u.id = kept;
    u.state = SCH_RUNNING;
    u.attempt = 1;
    CHECK(s->ops->task_update(s, &u, 0) == 0);
    CHECK(s->ops->event_append(s, kept, 1, (const uint8_t *)"e", 1) == 0);
    CHECK(s->ops->pipeline_put(s, "p", (const uint8_t *)"d", 1) == 0);
    s->ops->rollback(s);
    s->ops->rollback(s); /* harmless without a transaction */

    saved_row c;
    CHECK(s->ops->task_get(s, gone, NULL, NULL) == -ENOENT);
    CHECK(get(s, kept, &c) == 0);
    CHECK(c.state == SCH_QUEUED && c.attempt == 0);
    CHECK(s->ops->events_read(s, kept, 0, 0, NULL, NULL) == 0);
    CHECK(s->ops->pipeline_get(s, "p", NULL, NULL) == -ENOENT);
    CHECK(s->ops->commit(s) == -EINVAL);
    /* The handle is usable after a rollback. */
    CHECK(s->ops->begin(s) == 0);
    CHECK(s->ops->commit(s) == 0);
    sch_store_close(s);
}

/* A mark groups one write's statements: undone alone, the rest of the transaction commits. */
static void test_marks(void)
{
    sch_store *s = open_store("marks.db", false);
    if (!s)
        return;
    sch_task_row r = plain_row(SCH_QUEUED, "");
    CHECK(s->ops->begin(s) == 0);
    int64_t a = insert(s, &r);
    CHECK(s->ops->mark(s) == 0);
    sch_task_row u = r;
    u.id = a;
    u.state = SCH_RUNNING;
    u.attempt = 1;
    CHECK(s->ops->task_update(s, &u, 0) == 0);
    CHECK(s->ops->event_append(s, a, 1, (const uint8_t *)"x", 1) == 0);
    /* The second append fails (same seq): the whole write is undone. */
    CHECK(s->ops->event_append(s, a, 1, (const uint8_t *)"y", 1) == -EEXIST);
    CHECK(s->ops->unmark(s, false) == 0);
    CHECK(s->ops->mark(s) == 0);
    CHECK(s->ops->event_append(s, a, 1, (const uint8_t *)"z", 1) == 0);
    CHECK(s->ops->unmark(s, true) == 0);
    CHECK(s->ops->commit(s) == 0);

    saved_row c;
    CHECK(get(s, a, &c) == 0);
    CHECK(c.state == SCH_QUEUED && c.attempt == 0);
    CHECK(s->ops->events_read(s, a, 0, 0, NULL, NULL) == 1);
    sch_store_close(s);
}

static void test_durability(void)
{
    sch_store *s = open_store("durable.db", false);
    if (!s)
        return;
    sch_task_row r = plain_row(SCH_QUEUED, "p");
    r.idem_key = "dur";
    CHECK(s->ops->begin(s) == 0);
    int64_t id = insert(s, &r);
    CHECK(s->ops->event_append(s, id, 1, (const uint8_t *)"ev", 2) == 0);
    CHECK(s->ops->pipeline_put(s, "p", (const uint8_t *)"pipe", 4) == 0);
    CHECK(s->ops->commit(s) == 0);
    /* Left open at close: discarded, like a crash before commit. */
    CHECK(s->ops->begin(s) == 0);
    sch_task_row other = plain_row(SCH_QUEUED, "");
    int64_t lost = insert(s, &other);
    sch_store_close(s);

    /* Twice: the second open finds the schema at its version and must leave it alone. */
    for (int round = 0; round < 2; round++) {
        s = open_store("durable.db", false);
        if (!s)
            return;
        saved_row c;
        CHECK(get(s, id, &c) == 0);
        CHECK_STR(c.idem_key, "dur");
        CHECK_STR(c.pipeline, "p");
        CHECK(s->ops->task_get(s, lost, NULL, NULL) == -ENOENT);
        CHECK(s->ops->events_read(s, id, 0, 0, NULL, NULL) == 1);
        CHECK(s->ops->pipeline_get(s, "p", NULL, NULL) == 0);
        CHECK(s->ops->task_insert(s, &r, NULL, NULL, NULL) == 1);
        sch_store_close(s);
    }

    /* A reader alone, with no writer open (SQLite removed the -wal and -shm files at close). */
    s = open_store("durable.db", true);
    if (!s)
        return;
    saved_row c;
    CHECK(get(s, id, &c) == 0);
    CHECK_STR(c.idem_key, "dur");
    sch_store_close(s);
}

static void test_reader(void)
{
    sch_store *w = open_store("reader.db", false);
    if (!w)
        return;
    sch_task_row r = plain_row(SCH_QUEUED, "p");
    CHECK(w->ops->begin(w) == 0);
    int64_t id = insert(w, &r);
    CHECK(w->ops->commit(w) == 0);

    sch_store *rd = open_store("reader.db", true);
    if (!rd) {
        sch_store_close(w);
        return;
    }
    /* The writer holds a transaction with uncommitted writes while the reader reads. */
    CHECK(w->ops->begin(w) == 0);
    int64_t id2 = insert(w, &r);
    sch_task_row u = r;
    u.id = id;
    u.state = SCH_RUNNING;
    u.attempt = 1;
    CHECK(w->ops->task_update(w, &u, 0) == 0);
    CHECK(w->ops->pipeline_put(w, "new", (const uint8_t *)"x", 1) == 0);

    saved_row c;
    CHECK(get(rd, id, &c) == 0);
    CHECK(c.state == SCH_QUEUED && c.attempt == 0);
    CHECK(rd->ops->task_get(rd, id2, NULL, NULL) == -ENOENT);
    sch_list_filter all = {0};
    CHECK(rd->ops->tasks_list(rd, &all, NULL, NULL) == 1);
    CHECK(rd->ops->pipeline_get(rd, "new", NULL, NULL) == -ENOENT);
    /* A reader's transaction is a snapshot and does not block the writer. */
    CHECK(rd->ops->begin(rd) == 0);
    CHECK(rd->ops->tasks_list(rd, &all, NULL, NULL) == 1);

    CHECK(w->ops->commit(w) == 0);
    CHECK(rd->ops->tasks_list(rd, &all, NULL, NULL) == 1); /* still its snapshot */
    CHECK(rd->ops->commit(rd) == 0);
    CHECK(rd->ops->tasks_list(rd, &all, NULL, NULL) == 2);
    CHECK(get(rd, id, &c) == 0);
    CHECK(c.state == SCH_RUNNING && c.attempt == 1);

    /* The reader cannot write. */
    CHECK(rd->ops->pipeline_put(rd, "nope", (const uint8_t *)"x", 1) == -EROFS);
    CHECK_PREFIX(sch_store_error(rd), "store ");
    sch_store_close(rd);
    sch_store_close(w);
}

static void test_busy(void)
{
    sch_store *a = open_store("busy.db", false);
    if (!a)
        return;
    sch_sqlite_options o = {.busy_timeout_ms = 50};
    sch_store *b = NULL;
    char err[256];
    CHECK(sch_store_open_sqlite(db_path("busy.db"), &o, &b, err, sizeof err) == 0);
    if (b) {
        CHECK(a->ops->begin(a) == 0);
        CHECK(b->ops->begin(b) == -EBUSY);
        CHECK_PREFIX(sch_store_error(b), "store ");
        CHECK(strstr(sch_store_error(b), "locked") != NULL);
        a->ops->rollback(a);
        CHECK(b->ops->begin(b) == 0);
        CHECK(b->ops->commit(b) == 0);
        sch_store_close(b);
    }
    sch_store_close(a);
}

static void test_refused_opens(void)
{
    sch_store *s = (sch_store *)&s;
    char err[256] = "";
    int rc = sch_store_open_sqlite(":memory:", NULL, &s, err, sizeof err);
    CHECK(rc == -EINVAL && s == NULL);
    CHECK_PREFIX(err, "store :memory:: ");
    CHECK(strstr(err, "durable") != NULL);

    sch_sqlite_options mem = {.allow_memory = true};
    CHECK(sch_store_open_sqlite(":memory:", &mem, &s, err, sizeof err) == 0 && s);
    if (s) {
        CHECK(s->ops->begin(s) == 0);
        insert(s, &(sch_task_row){.idem_key = "", .state = 1, .pipeline = "", .lease_owner = ""});
        CHECK(s->ops->commit(s) == 0);
        sch_store_close(s);
    }

    CHECK(sch_store_open_sqlite("", NULL, &s, err, sizeof err) == -EINVAL && !s);
    CHECK_PREFIX(err, "store : ");

    char path[4200], want[4300];
    snprintf(path, sizeof path, "%s/no-such-dir/x.db", tmpdir);
    snprintf(want, sizeof want, "store %s: ", path);
    err[0] = '\0';
    rc = sch_store_open_sqlite(path, NULL, &s, err, sizeof err);
    CHECK(rc == -ENOENT && s == NULL);
    CHECK_PREFIX(err, want);
    CHECK(strstr(err, "unable to open database file") != NULL);
    CHECK(strstr(err, "No such file or directory") != NULL);

    /* A reader does not create the file. */
    sch_sqlite_options ro = {.read_only = true};
    rc = sch_store_open_sqlite(db_path("absent.db"), &ro, &s, err, sizeof err);
    CHECK(rc < 0 && s == NULL);
    CHECK(access(db_path("absent.db"), F_OK) != 0);
    fprintf(stderr, "(for information) %s\n", err);
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void test_bulk(void)
{
    sch_store *s = open_store("bulk.db", false);
    if (!s)
        return;
    enum { N = 10000 };
    uint8_t rec[200];
    memset(rec, 'r', sizeof rec);
    char key[32];
    sch_task_row r = plain_row(SCH_QUEUED, "bulk");
    r.record = rec;
    r.record_len = sizeof rec;
    r.idem_key = key;

    double t0 = now_s();
    CHECK(s->ops->begin(s) == 0);
    int failed = 0;
    for (int i = 0; i < N; i++) {
        snprintf(key, sizeof key, "bulk-%d", i);
        int64_t id;
        failed += s->ops->task_insert(s, &r, &id, NULL, NULL) != 0;
    }
    CHECK(failed == 0);
    CHECK(s->ops->commit(s) == 0);
    double t1 = now_s();
    fprintf(stderr, "bulk: %d keyed inserts in one transaction: %.1f ms (%.0f/s)\n", N,
            (t1 - t0) * 1e3, N / (t1 - t0));

    /* The scheduler's shape: batches of 100, each with its own durable commit. */
    r.idem_key = "";
    t0 = now_s();
    for (int b = 0; b < N / 100; b++) {
        CHECK(s->ops->begin(s) == 0);
        for (int i = 0; i < 100; i++)
            failed += s->ops->task_insert(s, &r, NULL, NULL, NULL) != 0;
        CHECK(s->ops->commit(s) == 0);
    }
    t1 = now_s();
    CHECK(failed == 0);
    fprintf(stderr, "bulk: %d inserts in %d commits of 100: %.1f ms (%.0f/s)\n", N, N / 100,
            (t1 - t0) * 1e3, N / (t1 - t0));

    sch_list_filter f = {.pipeline = "bulk"};
    CHECK(s->ops->tasks_list(s, &f, NULL, NULL) == 2 * N);
    saved_row c;
    CHECK(get(s, N, &c) == 0);
    CHECK_STR(c.idem_key, "bulk-9999");
    sch_store_close(s);
}

int main(void)
{
    const char *base = getenv("TEST_TMPDIR");
    snprintf(tmpdir, sizeof tmpdir, "%s/store_test.XXXXXX", base && base[0] ? base : "/tmp");
    if (!mkdtemp(tmpdir)) {
        perror("mkdtemp");
        return 1;
    }
    test_round_trip();
    test_idempotency();
    test_fencing();
    test_leases_and_active();
    test_list();
    test_events();
    test_pipelines();
    test_rollback();
    test_marks();
    test_durability();
    test_reader();
    test_busy();
    test_refused_opens();
    test_bulk();
    remove_tmpdir();
    return test_done("store_test");
}

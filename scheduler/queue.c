/*
 * Where the scheduler keeps its active tasks: a hash by id (every task not yet in a final state),
 * a priority heap per pool (QUEUED tasks ready to run: higher priority first, then older), and
 * one delayed list (QUEUED tasks waiting out a retry's backoff, moved to the heap by
 * sch_tasks_tick). All of it is touched only on the scheduler's completion-queue thread.
 */
#include <errno.h>
#include <stdlib.h>

#include "scheduler/sched.h"

static size_t bucket(int64_t id)
{
    return (size_t)((uint64_t)id % SCH_TASK_BUCKETS);
}

sch_task *sch_task_find(sch *s, int64_t id)
{
    for (sch_task *t = s->buckets[bucket(id)]; t; t = t->hnext)
        if (t->id == id)
            return t;
    return NULL;
}

void sch_task_insert(sch *s, sch_task *t)
{
    t->hnext = s->buckets[bucket(t->id)];
    s->buckets[bucket(t->id)] = t;
    s->n_active++;
}

void sch_task_remove(sch *s, sch_task *t)
{
    for (sch_task **p = &s->buckets[bucket(t->id)]; *p; p = &(*p)->hnext)
        if (*p == t) {
            *p = t->hnext;
            s->n_active--;
            return;
        }
}

void sch_task_free(sch_task *t)
{
    if (!t)
        return;
    if (t->rec)
        protobuf_c_message_free_unpacked(&t->rec->base, NULL);
    free(t);
}

static bool before(const sch_task *a, const sch_task *b)
{
    if (a->rec->priority != b->rec->priority)
        return a->rec->priority > b->rec->priority;
    return a->id < b->id;
}

static void heap_swap(sch_pool *p, size_t i, size_t j)
{
    sch_task *t = p->heap[i];
    p->heap[i] = p->heap[j];
    p->heap[j] = t;
    p->heap[i]->heap_idx = i;
    p->heap[j]->heap_idx = j;
}

static void heap_up(sch_pool *p, size_t i)
{
    while (i > 0 && before(p->heap[i], p->heap[(i - 1) / 2])) {
        heap_swap(p, i, (i - 1) / 2);
        i = (i - 1) / 2;
    }
}

static void heap_down(sch_pool *p, size_t i)
{
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, m = i;
        if (l < p->n_heap && before(p->heap[l], p->heap[m]))
            m = l;
        if (r < p->n_heap && before(p->heap[r], p->heap[m]))
            m = r;
        if (m == i)
            return;
        heap_swap(p, i, m);
        i = m;
    }
}

int sch_heap_push(sch_pool *p, sch_task *t)
{
    if (p->n_heap == p->cap_heap) {
        size_t cap = p->cap_heap ? p->cap_heap * 2 : 256;
        sch_task **h = realloc(p->heap, cap * sizeof *h);
        if (!h)
            return -ENOMEM;
        p->heap = h;
        p->cap_heap = cap;
    }
    t->heap_idx = p->n_heap;
    p->heap[p->n_heap++] = t;
    t->in_heap = true;
    heap_up(p, t->heap_idx);
    return 0;
}

void sch_heap_remove(sch_pool *p, sch_task *t)
{
    if (!t->in_heap)
        return;
    size_t i = t->heap_idx;
    t->in_heap = false;
    p->n_heap--;
    if (i == p->n_heap)
        return;
    p->heap[i] = p->heap[p->n_heap];
    p->heap[i]->heap_idx = i;
    heap_down(p, i);
    heap_up(p, i);
}

void sch_delayed_remove(sch *s, sch_task *t)
{
    if (!t->delayed)
        return;
    for (sch_task **pp = &s->delayed; *pp; pp = &(*pp)->next_delayed)
        if (*pp == t) {
            *pp = t->next_delayed;
            break;
        }
    t->delayed = false;
}

/* Puts a QUEUED task where dispatch finds it: the heap, or the delayed list during backoff. */
void sch_enqueue(sch *s, sch_task *t)
{
    t->phase = TP_QUEUED;
    if (t->rec->not_before_ms > sch_now_ms()) {
        t->delayed = true;
        t->next_delayed = s->delayed;
        s->delayed = t;
        return;
    }
    if (sch_heap_push(t->pool, t) < 0) {
        /* Out of memory: keep it in the delayed list, which needs none, and try again later. */
        t->delayed = true;
        t->next_delayed = s->delayed;
        s->delayed = t;
    }
}

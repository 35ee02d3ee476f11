/*
 * Pipelines as the scheduler and pmctl hold them: reading both JSON shapes of DESIGN.md with the
 * strict parser of //sandbox/oci:json, checking a wire pipeline by the same rules, filling {{name}}
 * placeholders with shell-quoted values, and converting to and from pm.scheduler.v1.Pipeline.
 * Every string a pipeline holds is its own heap copy, so a pipeline outlives the document or the
 * message it came from; only sch_pipeline_to_pb lends pointers, and says so.
 */
#include "scheduler/pipeline.h"

#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sandbox/oci/json.h"

/*
 * The JSON parser's default node limit (128 Ki values) is below what the caps allow (256 steps of
 * 1024 commands), so a document at the caps would be refused as too big rather than accepted; the
 * byte limit still bounds the parser's memory.
 */
#define PIPELINE_MAX_NODES (1u << 19)

/* How much of an executor or parameter name goes into a message; the rest is noise. */
#define SHOWN "64"

static void set_err(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void set_err(char *err, size_t errlen, const char *fmt, ...)
{
    if (!err || !errlen)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

/*
 * A problem at a place in the document: "pipeline JSON line L column C: ...". at_key points at
 * the member's name rather than its value, for members that should not be there at all.
 */
static int json_fail(char *err, size_t errlen, int rc, const sbx_json *v, bool at_key,
                     const char *fmt, ...) __attribute__((format(printf, 6, 7)));

static int json_fail(char *err, size_t errlen, int rc, const sbx_json *v, bool at_key,
                     const char *fmt, ...)
{
    if (!err || !errlen)
        return rc;
    int n =
        snprintf(err, errlen, "pipeline JSON line %u column %u: ", at_key ? v->key_line : v->line,
                 at_key ? v->key_col : v->col);
    if (n >= 0 && (size_t)n < errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err + n, errlen - (size_t)n, fmt, ap);
        va_end(ap);
    }
    return rc;
}

static bool key_is(const sbx_json *m, const char *name)
{
    return m->key_len == strlen(name) && memcmp(m->key, name, m->key_len) == 0;
}

/* ---- the pipeline itself ---------------------------------------------------------------- */

static void step_clear(sch_step *s)
{
    free(s->executor);
    for (size_t i = 0; i < s->n_commands; i++)
        free(s->commands ? s->commands[i] : NULL);
    free(s->commands);
    memset(s, 0, sizeof *s);
}

void sch_pipeline_free(sch_pipeline *p)
{
    if (!p)
        return;
    for (size_t i = 0; i < p->n_steps; i++)
        step_clear(&p->steps[i]);
    free(p->steps);
    free(p);
}

/*
 * A pipeline with n zeroed steps, so that sch_pipeline_free can release one that is only partly
 * filled when a later step fails.
 */
static sch_pipeline *pipeline_new(size_t n)
{
    sch_pipeline *p = calloc(1, sizeof *p);
    if (!p)
        return NULL;
    p->steps = calloc(n ? n : 1, sizeof *p->steps);
    if (!p->steps) {
        free(p);
        return NULL;
    }
    p->n_steps = n;
    return p;
}

/* The count rules, shared by the JSON and the wire so that both give the same messages. */
static int check_n_steps(size_t n, char *err, size_t errlen)
{
    if (n == 0) {
        set_err(err, errlen, "pipeline has no steps");
        return -EINVAL;
    }
    if (n > SCH_PIPELINE_MAX_STEPS) {
        set_err(err, errlen, "pipeline has %zu steps, more than %d", n, SCH_PIPELINE_MAX_STEPS);
        return -E2BIG;
    }
    return 0;
}

/*
 * The rules for a step's executor and the number of its commands (i counts from 0). The wire has
 * no absent string, so an empty executor from it arrives here as NULL and reads "missing".
 */
static int check_step_head(const sch_step *s, size_t i, char *err, size_t errlen)
{
    if (!s->executor) {
        set_err(err, errlen, "pipeline step %zu: \"executorName\" is missing", i + 1);
        return -EINVAL;
    }
    if (!*s->executor) {
        set_err(err, errlen, "pipeline step %zu: \"executorName\" is empty", i + 1);
        return -EINVAL;
    }
    if (s->n_commands == 0) {
        set_err(err, errlen, "pipeline step %zu '%." SHOWN "s': no commands", i + 1, s->executor);
        return -EINVAL;
    }
    if (s->n_commands > SCH_PIPELINE_MAX_COMMANDS) {
        set_err(err, errlen, "pipeline step %zu '%." SHOWN "s': %zu commands, more than %d", i + 1,
                s->executor, s->n_commands, SCH_PIPELINE_MAX_COMMANDS);
        return -E2BIG;
    }
    return 0;
}

/* The rules for each command line of a step. */
static int check_step_lines(const sch_step *s, size_t i, char *err, size_t errlen)
{
    for (size_t j = 0; j < s->n_commands; j++) {
        const char *c = s->commands ? s->commands[j] : NULL;
        if (!c || !*c) {
            set_err(err, errlen, "pipeline step %zu '%." SHOWN "s': command %zu is empty", i + 1,
                    s->executor, j + 1);
            return -EINVAL;
        }
        size_t len = strlen(c);
        if (len > SCH_PIPELINE_MAX_LINE) {
            set_err(err, errlen,
                    "pipeline step %zu '%." SHOWN "s': command %zu is %zu bytes, more than %u",
                    i + 1, s->executor, j + 1, len, SCH_PIPELINE_MAX_LINE);
            return -E2BIG;
        }
    }
    return 0;
}

/* Copies a step whose rules have been checked into an empty one. */
static int step_copy(sch_step *dst, const char *executor, char *const *commands, size_t n,
                     uint32_t timeout_ms)
{
    dst->executor = strdup(executor);
    dst->commands = calloc(n, sizeof *dst->commands);
    if (!dst->executor || !dst->commands)
        return -ENOMEM;
    dst->n_commands = n;
    dst->timeout_ms = timeout_ms;
    for (size_t j = 0; j < n; j++)
        if (!(dst->commands[j] = strdup(commands[j])))
            return -ENOMEM;
    return 0;
}

/* ---- JSON ------------------------------------------------------------------------------- */

/* A JSON string as a C string: refused when it holds a NUL (from \u0000), which C would cut. */
static int json_text(const sbx_json *v, size_t i, const char *what, char *err, size_t errlen)
{
    if (strlen(v->u.str.s) != v->u.str.len)
        return json_fail(err, errlen, -EINVAL, v, false, "step %zu: %s contains a NUL character",
                         i + 1, what);
    return 0;
}

/*
 * One step of either shape into s (zeroed). Wrong types and unknown members are reported with
 * their position; the rules the wire shares (check_step_*) without one, as the header shows.
 */
static int parse_step(const sbx_json *v, size_t i, bool legacy, sch_step *s, char *err,
                      size_t errlen)
{
    const char *cmds_key = legacy ? "commandLines" : "commands";
    const sbx_json *exec = NULL, *cmds = NULL, *tmo = NULL;
    int rc;

    if (v->type != SBX_JSON_OBJECT)
        return json_fail(err, errlen, -EINVAL, v, false, "step %zu: expected an object, found %s",
                         i + 1, sbx_json_type_name(v->type));
    for (const sbx_json *m = v->u.kids.first; m; m = m->next) {
        if (key_is(m, "executorName"))
            exec = m;
        else if (key_is(m, cmds_key))
            cmds = m;
        else if (key_is(m, "timeoutMs"))
            tmo = m;
        else
            return json_fail(err, errlen, -EINVAL, m, true,
                             "step %zu: unknown member \"%.40s\" (a step has \"executorName\", "
                             "\"%s\" and \"timeoutMs\")",
                             i + 1, m->key, cmds_key);
    }
    if (exec && exec->type != SBX_JSON_STRING)
        return json_fail(err, errlen, -EINVAL, exec, false,
                         "step %zu: \"executorName\" must be a string, not %s", i + 1,
                         sbx_json_type_name(exec->type));
    if (cmds && cmds->type != SBX_JSON_ARRAY)
        return json_fail(err, errlen, -EINVAL, cmds, false,
                         "step %zu: \"%s\" must be an array of strings, not %s", i + 1, cmds_key,
                         sbx_json_type_name(cmds->type));
    if (tmo) {
        uint64_t ms;
        if (sbx_json_get_u64(tmo, &ms) < 0 || ms > UINT32_MAX)
            return json_fail(err, errlen, -EINVAL, tmo, false,
                             "step %zu: \"timeoutMs\" must be an integer from 0 to %u", i + 1,
                             UINT32_MAX);
        s->timeout_ms = (uint32_t)ms;
    }
    if (exec) {
        if ((rc = json_text(exec, i, "\"executorName\"", err, errlen)) < 0)
            return rc;
        if (!(s->executor = strdup(exec->u.str.s)))
            goto nomem;
    }
    /* The head is checked before the commands are copied, so a huge step costs nothing. */
    sch_step head = {.executor = s->executor, .n_commands = cmds ? cmds->u.kids.n : 0};
    if ((rc = check_step_head(&head, i, err, errlen)) < 0)
        return rc;
    if (!(s->commands = calloc(head.n_commands, sizeof *s->commands)))
        goto nomem;
    s->n_commands = head.n_commands;
    size_t j = 0;
    for (const sbx_json *c = cmds->u.kids.first; c; c = c->next, j++) {
        if (c->type != SBX_JSON_STRING)
            return json_fail(err, errlen, -EINVAL, c, false,
                             "step %zu: command %zu must be a string, not %s", i + 1, j + 1,
                             sbx_json_type_name(c->type));
        if ((rc = json_text(c, i, "a command", err, errlen)) < 0)
            return rc;
        if (!(s->commands[j] = strdup(c->u.str.s)))
            goto nomem;
    }
    return check_step_lines(s, i, err, errlen);

nomem:
    set_err(err, errlen, "out of memory");
    return -ENOMEM;
}

int sch_pipeline_parse_json(const char *text, size_t len, sch_pipeline **out, char *err,
                            size_t errlen)
{
    sbx_json_doc *doc = NULL;
    sch_pipeline *p = NULL;
    int rc;

    *out = NULL;
    set_err(err, errlen, "%s", "");
    if (len > SCH_PIPELINE_MAX_JSON) {
        set_err(err, errlen, "pipeline JSON is %zu bytes, more than %u", len,
                SCH_PIPELINE_MAX_JSON);
        rc = -EFBIG;
        goto fail;
    }
    sbx_json_limits lim = {.max_bytes = SCH_PIPELINE_MAX_JSON, .max_nodes = PIPELINE_MAX_NODES};
    sbx_json_error jerr;
    if ((rc = sbx_json_parse(text ? text : "", text ? len : 0, &lim, &doc, &jerr)) < 0) {
        set_err(err, errlen, "pipeline JSON line %u column %u: %s", jerr.line, jerr.col, jerr.msg);
        goto fail;
    }

    const sbx_json *root = sbx_json_root(doc), *list = NULL;
    bool legacy = false;
    if (root->type != SBX_JSON_OBJECT) {
        rc = json_fail(err, errlen, -EINVAL, root, false,
                       "expected an object with \"pipeline\" or \"commands\", found %s",
                       sbx_json_type_name(root->type));
        goto fail;
    }
    for (const sbx_json *m = root->u.kids.first; m; m = m->next) {
        bool is_legacy = key_is(m, "commands");
        if (!is_legacy && !key_is(m, "pipeline")) {
            rc = json_fail(err, errlen, -EINVAL, m, true,
                           "unknown member \"%.40s\" (expected \"pipeline\" or \"commands\")",
                           m->key);
            goto fail;
        }
        if (list) {
            rc = json_fail(err, errlen, -EINVAL, m, true,
                           "\"pipeline\" and \"commands\" are two shapes of the same thing; give "
                           "one");
            goto fail;
        }
        list = m;
        legacy = is_legacy;
    }
    if (!list) {
        rc = json_fail(err, errlen, -EINVAL, root, false,
                       "expected a \"pipeline\" or \"commands\" member");
        goto fail;
    }
    if (list->type != SBX_JSON_ARRAY) {
        rc =
            json_fail(err, errlen, -EINVAL, list, false, "\"%s\" must be an array of steps, not %s",
                      legacy ? "commands" : "pipeline", sbx_json_type_name(list->type));
        goto fail;
    }
    if ((rc = check_n_steps(list->u.kids.n, err, errlen)) < 0)
        goto fail;
    if (!(p = pipeline_new(list->u.kids.n))) {
        rc = -ENOMEM;
        set_err(err, errlen, "out of memory");
        goto fail;
    }
    size_t i = 0;
    for (const sbx_json *v = list->u.kids.first; v; v = v->next, i++)
        if ((rc = parse_step(v, i, legacy, &p->steps[i], err, errlen)) < 0)
            goto fail;
    sbx_json_free(doc);
    *out = p;
    return 0;

fail:
    sbx_json_free(doc);
    sch_pipeline_free(p);
    return rc;
}

/* ---- the wire --------------------------------------------------------------------------- */

int sch_pipeline_from_pb(const Pm__Scheduler__V1__Pipeline *pb, sch_pipeline **out, char *err,
                         size_t errlen)
{
    sch_pipeline *p = NULL;
    int rc;

    *out = NULL;
    set_err(err, errlen, "%s", "");
    if ((rc = check_n_steps(pb ? pb->n_steps : 0, err, errlen)) < 0)
        goto fail;
    /* Everything is checked before anything is copied. */
    for (size_t i = 0; i < pb->n_steps; i++) {
        const Pm__Scheduler__V1__Step *st = pb->steps ? pb->steps[i] : NULL;
        sch_step view = {0};
        if (st) {
            view.executor = st->executor && *st->executor ? st->executor : NULL;
            view.commands = st->commands;
            view.n_commands = st->n_commands;
        }
        if ((rc = check_step_head(&view, i, err, errlen)) < 0 ||
            (rc = check_step_lines(&view, i, err, errlen)) < 0)
            goto fail;
    }
    if (!(p = pipeline_new(pb->n_steps)))
        goto nomem;
    for (size_t i = 0; i < pb->n_steps; i++) {
        const Pm__Scheduler__V1__Step *st = pb->steps[i];
        if (step_copy(&p->steps[i], st->executor, st->commands, st->n_commands, st->timeout_ms) < 0)
            goto nomem;
    }
    *out = p;
    return 0;

nomem:
    rc = -ENOMEM;
    set_err(err, errlen, "out of memory");
fail:
    sch_pipeline_free(p);
    return rc;
}

/* Steps come right after the pipeline in to_pb's block; this keeps them aligned there. */
_Static_assert(_Alignof(Pm__Scheduler__V1__Step) <= _Alignof(Pm__Scheduler__V1__Pipeline),
               "step alignment");
_Static_assert(_Alignof(char *) <= _Alignof(Pm__Scheduler__V1__Step), "pointer alignment");

Pm__Scheduler__V1__Pipeline *sch_pipeline_to_pb(const sch_pipeline *p)
{
    if (!p)
        return NULL;
    size_t ncmds = 0;
    for (size_t i = 0; i < p->n_steps; i++)
        ncmds += p->steps[i].n_commands;
    /* One block: the pipeline, its steps, the step pointers, then every step's command pointers. */
    size_t size = sizeof(Pm__Scheduler__V1__Pipeline) +
                  p->n_steps * (sizeof(Pm__Scheduler__V1__Step) + sizeof(void *)) +
                  ncmds * sizeof(char *);
    Pm__Scheduler__V1__Pipeline *pb = malloc(size);
    if (!pb)
        return NULL;
    pm__scheduler__v1__pipeline__init(pb);
    Pm__Scheduler__V1__Step *steps = (Pm__Scheduler__V1__Step *)(pb + 1);
    Pm__Scheduler__V1__Step **ptrs = (Pm__Scheduler__V1__Step **)(steps + p->n_steps);
    char **cmds = (char **)(ptrs + p->n_steps);
    pb->n_steps = p->n_steps;
    pb->steps = p->n_steps ? ptrs : NULL;
    for (size_t i = 0; i < p->n_steps; i++) {
        const sch_step *s = &p->steps[i];
        pm__scheduler__v1__step__init(&steps[i]);
        steps[i].executor = s->executor;
        steps[i].n_commands = s->n_commands;
        steps[i].commands = s->n_commands ? cmds : NULL;
        steps[i].timeout_ms = s->timeout_ms;
        for (size_t j = 0; j < s->n_commands; j++)
            *cmds++ = s->commands[j];
        ptrs[i] = &steps[i];
    }
    return pb;
}

sch_pipeline *sch_pipeline_dup(const sch_pipeline *p)
{
    if (!p)
        return NULL;
    sch_pipeline *d = pipeline_new(p->n_steps);
    if (!d)
        return NULL;
    for (size_t i = 0; i < p->n_steps; i++) {
        const sch_step *s = &p->steps[i];
        if (step_copy(&d->steps[i], s->executor, s->commands, s->n_commands, s->timeout_ms) < 0) {
            sch_pipeline_free(d);
            return NULL;
        }
    }
    return d;
}

/* ---- placeholders ----------------------------------------------------------------------- */

static bool name_first(char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || c == '_';
}

static bool name_rest(char c)
{
    return name_first(c) || (c >= '0' && c <= '9') || c == '.' || c == '-';
}

int sch_param_name_ok(const char *name)
{
    if (!name || !name_first(*name))
        return 0;
    for (const char *c = name + 1; *c; c++)
        if (!name_rest(*c))
            return 0;
    return 1;
}

/*
 * When s starts a placeholder ("{{", optional blanks, a name, optional blanks, "}}"), returns its
 * length and where its name is; otherwise 0, and the caller moves on by one character, so that
 * "{{{x}}}" is a "{", the placeholder x, and a "}".
 */
static size_t match_placeholder(const char *s, const char **name, size_t *name_len)
{
    if (s[0] != '{' || s[1] != '{')
        return 0;
    size_t i = 2;
    while (s[i] == ' ' || s[i] == '\t')
        i++;
    if (!name_first(s[i]))
        return 0;
    size_t start = i++;
    while (name_rest(s[i]))
        i++;
    size_t end = i;
    while (s[i] == ' ' || s[i] == '\t')
        i++;
    if (s[i] != '}' || s[i + 1] != '}')
        return 0;
    *name = s + start;
    *name_len = end - start;
    return i + 2;
}

typedef struct {
    const char *s;
    size_t len;
} span;

static int span_cmp(const void *a, const void *b)
{
    const span *x = a, *y = b;
    int c = memcmp(x->s, y->s, x->len < y->len ? x->len : y->len);
    if (c)
        return c;
    return x->len < y->len ? -1 : x->len > y->len;
}

/* Finds every placeholder of p into spans; only counts them when spans is NULL. */
static size_t collect(const sch_pipeline *p, span *spans)
{
    size_t n = 0;
    for (size_t i = 0; i < p->n_steps; i++) {
        for (size_t j = 0; j < p->steps[i].n_commands; j++) {
            const char *c = p->steps[i].commands[j];
            while (c && *c) {
                span sp;
                size_t k = match_placeholder(c, &sp.s, &sp.len);
                if (!k) {
                    c++;
                    continue;
                }
                if (spans)
                    spans[n] = sp;
                n++;
                c += k;
            }
        }
    }
    return n;
}

/*
 * The names live in the same block as the array, after it, since a name inside a command line is
 * not NUL-terminated: one free() releases both, and the names do not depend on p.
 */
int sch_pipeline_placeholders(const sch_pipeline *p, const char ***names)
{
    *names = NULL;
    if (!p)
        return 0;
    size_t n = collect(p, NULL);
    if (n == 0)
        return 0;
    span *spans = malloc(n * sizeof *spans);
    if (!spans)
        return -ENOMEM;
    collect(p, spans);
    qsort(spans, n, sizeof *spans, span_cmp);
    size_t distinct = 0, bytes = 0;
    for (size_t i = 0; i < n; i++) {
        if (distinct && span_cmp(&spans[distinct - 1], &spans[i]) == 0)
            continue;
        spans[distinct++] = spans[i];
        bytes += spans[i].len + 1;
    }
    /* distinct fits an int: every distinct name is distinct text of at most a few GiB of lines. */
    const char **v = malloc(distinct * sizeof *v + bytes);
    if (!v) {
        free(spans);
        return -ENOMEM;
    }
    char *text = (char *)(v + distinct);
    for (size_t i = 0; i < distinct; i++) {
        memcpy(text, spans[i].s, spans[i].len);
        text[spans[i].len] = '\0';
        v[i] = text;
        text += spans[i].len + 1;
    }
    free(spans);
    *names = v;
    return (int)distinct;
}

/* A command line being built, never longer than cap bytes (rule 7: hitting it is reported). */
typedef struct {
    char *buf;
    size_t len, size, cap;
} line_buf;

static int lb_put(line_buf *b, const char *s, size_t n)
{
    if (n > b->cap - b->len)
        return -E2BIG;
    if (b->len + n + 1 > b->size) {
        size_t size = b->size ? b->size : 64;
        while (size < b->len + n + 1)
            size *= 2;
        char *buf = realloc(b->buf, size);
        if (!buf)
            return -ENOMEM;
        b->buf = buf;
        b->size = size;
    }
    memcpy(b->buf + b->len, s, n);
    b->len += n;
    b->buf[b->len] = '\0';
    return 0;
}

static bool shell_safe(const char *v)
{
    if (!*v)
        return false;
    for (; *v; v++)
        if (!((*v >= 'A' && *v <= 'Z') || (*v >= 'a' && *v <= 'z') || (*v >= '0' && *v <= '9') ||
              strchr("_./:@%+=,-", *v)))
            return false;
    return true;
}

/* True when the text so far ends like the start of a placeholder: "{{", blanks, name characters. */
static bool lb_opens_placeholder(const line_buf *b)
{
    size_t i = b->len;
    while (i > 0 && name_rest(b->buf[i - 1]))
        i--;
    while (i > 0 && (b->buf[i - 1] == ' ' || b->buf[i - 1] == '\t'))
        i--;
    return i >= 2 && b->buf[i - 1] == '{' && b->buf[i - 2] == '{';
}

/*
 * Appends a value as one shell word. Unsafe values go in single quotes, where only the quote
 * itself needs care ('\''). Two more things keep a value from ever reading as a placeholder
 * later (sch_pipeline_fill_builtin runs over the substituted line): a "{{" inside the value is
 * written '{''{' (the same word to the shell), and a value that would continue an opened "{{ x"
 * of the template is quoted even when safe, so that "{{ " + "a" + "x }}" cannot join into a
 * placeholder. A quoted value starts and ends with a quote, which no placeholder holds.
 */
static int lb_put_value(line_buf *b, const char *v)
{
    int rc;
    if (shell_safe(v) && !lb_opens_placeholder(b))
        return lb_put(b, v, strlen(v));
    if ((rc = lb_put(b, "'", 1)) < 0)
        return rc;
    for (const char *c = v; *c; c++) {
        if (*c == '\'')
            rc = lb_put(b, "'\\''", 4);
        else if (*c == '{' && c > v && c[-1] == '{')
            rc = lb_put(b, "''{", 3);
        else
            rc = lb_put(b, c, 1);
        if (rc < 0)
            return rc;
    }
    return lb_put(b, "'", 1);
}

/* The value of name in params, the last one winning, or NULL. */
static const char *param_value(const sch_param *params, size_t n, const char *name, size_t len)
{
    for (size_t i = n; i-- > 0;)
        if (strlen(params[i].name) == len && memcmp(params[i].name, name, len) == 0)
            return params[i].value ? params[i].value : "";
    return NULL;
}

/*
 * Fills the placeholders of one line into b. A placeholder without a value is kept as written
 * when keep_unknown (fill_builtin), or when it is "id" (kept for dispatch); otherwise *missing
 * points at its name and the result is -EINVAL.
 */
static int fill_line(line_buf *b, const char *line, const sch_param *params, size_t n,
                     bool keep_unknown, const char **missing, size_t *missing_len)
{
    int rc = 0;
    const char *c = line;
    while (*c) {
        const char *name;
        size_t len, k = match_placeholder(c, &name, &len);
        if (!k) {
            /* Plain text up to the next '{', at once. */
            size_t run = 1 + strcspn(c + 1, "{");
            if ((rc = lb_put(b, c, run)) < 0)
                return rc;
            c += run;
            continue;
        }
        const char *v = param_value(params, n, name, len);
        if (v)
            rc = lb_put_value(b, v);
        else if (keep_unknown || (len == 2 && memcmp(name, "id", 2) == 0))
            rc = lb_put(b, c, k);
        else {
            *missing = name;
            *missing_len = len;
            return -EINVAL;
        }
        if (rc < 0)
            return rc;
        c += k;
    }
    return lb_put(b, "", 0);
}

int sch_pipeline_substitute(const sch_pipeline *in, const sch_param *params, size_t n,
                            sch_pipeline **out, char *err, size_t errlen)
{
    sch_pipeline *p = NULL;
    line_buf b = {.cap = SCH_PIPELINE_MAX_LINE};
    int rc;

    *out = NULL;
    set_err(err, errlen, "%s", "");
    if (!in || (n && !params)) {
        set_err(err, errlen, "no pipeline or no parameters");
        rc = -EINVAL;
        goto fail;
    }
    for (size_t i = 0; i < n; i++) {
        /* A parameter whose name no placeholder can have is a mistake worth showing. */
        if (!sch_param_name_ok(params[i].name)) {
            set_err(err, errlen, "parameter %zu: '%." SHOWN "s' is not a valid name", i + 1,
                    params[i].name ? params[i].name : "(null)");
            rc = -EINVAL;
            goto fail;
        }
    }
    if (!(p = pipeline_new(in->n_steps)))
        goto nomem;
    for (size_t i = 0; i < in->n_steps; i++) {
        const sch_step *s = &in->steps[i];
        sch_step *d = &p->steps[i];
        d->timeout_ms = s->timeout_ms;
        if (!(d->executor = strdup(s->executor)) ||
            !(d->commands = calloc(s->n_commands ? s->n_commands : 1, sizeof *d->commands)))
            goto nomem;
        d->n_commands = s->n_commands;
        for (size_t j = 0; j < s->n_commands; j++) {
            const char *name = NULL;
            size_t len = 0;
            b.len = 0;
            rc = fill_line(&b, s->commands[j], params, n, false, &name, &len);
            if (rc == -EINVAL) {
                set_err(err, errlen,
                        "missing parameter '%.*s' (step %zu '%." SHOWN "s', command %zu)",
                        (int)(len < 64 ? len : 64), name, i + 1, s->executor, j + 1);
                goto fail;
            }
            if (rc == -E2BIG) {
                set_err(err, errlen,
                        "step %zu '%." SHOWN
                        "s', command %zu: longer than %u bytes after substitution",
                        i + 1, s->executor, j + 1, SCH_PIPELINE_MAX_LINE);
                goto fail;
            }
            if (rc < 0)
                goto nomem;
            /* The buffer moves into the pipeline; the next line starts a new one. */
            d->commands[j] = b.buf;
            b = (line_buf){.cap = SCH_PIPELINE_MAX_LINE};
        }
    }
    *out = p;
    return 0;

nomem:
    rc = -ENOMEM;
    set_err(err, errlen, "out of memory");
fail:
    free(b.buf);
    sch_pipeline_free(p);
    return rc;
}

char *sch_pipeline_fill_builtin(const char *line, const char *task_id)
{
    if (!line || !task_id)
        return NULL;
    /* No cap of our own here: the line was capped at substitution and the id is ours. */
    line_buf b = {.cap = (size_t)-1 / 2};
    const sch_param id = {.name = "id", .value = task_id};
    const char *name;
    size_t len;
    if (fill_line(&b, line, &id, 1, true, &name, &len) < 0) {
        free(b.buf);
        return NULL;
    }
    return b.buf;
}

/*
 * Proves that nanopb (the executor's codec) and protobuf-c (the scheduler's and pmctl's) read each
 * other's bytes for every message the two sides exchange. Each case is written once as a plain C
 * "model"; it is encoded with protobuf-c and decoded with nanopb, then encoded with nanopb and
 * decoded with protobuf-c, and both results are compared with the model field by field. Strings,
 * bytes and repeated fields are nanopb callbacks (see executor.options, exec.options), so the test
 * carries small encode/decode callbacks of its own. Any mismatch is printed with the message,
 * direction and field, and the test exits nonzero.
 */
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <pb_decode.h>
#include <pb_encode.h>

#include "protos/exec.pb-c.h"
#include "protos/exec.pb.h"
#include "protos/executor.pb-c.h"
#include "protos/executor.pb.h"
#include "protos/health.pb-c.h"
#include "protos/health.pb.h"

/* ---- failures --------------------------------------------------------------------------- */

static int failures;
static char where[128]; /* "<case>, <direction>" */

static void fail(const char *field, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void fail(const char *field, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "FAIL %s: field %s: ", where, field);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    failures++;
}

/* ---- an arena for decoded bytes, freed after each case ---------------------------------- */

static void **arena;
static size_t arena_n, arena_cap;

static void *arena_alloc(size_t n)
{
    if (arena_n == arena_cap) {
        arena_cap = arena_cap ? arena_cap * 2 : 64;
        arena = realloc(arena, arena_cap * sizeof *arena);
        if (!arena) {
            fprintf(stderr, "out of memory\n");
            exit(2);
        }
    }
    void *p = calloc(1, n + 1);
    if (!p) {
        fprintf(stderr, "out of memory\n");
        exit(2);
    }
    return arena[arena_n++] = p;
}

static void arena_reset(void)
{
    for (size_t i = 0; i < arena_n; i++)
        free(arena[i]);
    arena_n = 0;
}

/* ---- the model -------------------------------------------------------------------------- */

#define MAXL 8 /* items in a repeated string field */
#define MAXC 4 /* commands in a request */

/* A string or bytes value; proto3 does not tell an empty value from an absent one. */
typedef struct {
    const uint8_t *p;
    size_t len;
} tbytes;

typedef struct {
    size_t n;
    tbytes v[MAXL];
} tlist;

typedef struct {
    tbytes shell;
    tlist argv;
    tlist env;
    tbytes workdir;
    uint32_t timeout_ms;
    tbytes stdin_data;
} m_command;

typedef struct {
    size_t n_commands;
    m_command commands[MAXC];
    tlist env;
    bool clear_env;
    tbytes workdir;
    uint32_t timeout_ms;
    uint64_t output_cap;
    bool continue_on_error;
    tbytes sandbox_profile;
} m_request;

typedef struct {
    int32_t exit_code, signal;
    bool timed_out, cancelled;
    uint64_t wall_us, user_us, sys_us, max_rss_kb, stdout_bytes, stderr_bytes;
    bool truncated;
    tbytes error;
} m_exited;

typedef struct {
    uint32_t command;
    bool has_started;
    int32_t pid;
    tbytes stdout_data, stderr_data;
    bool has_exited;
    m_exited exited;
} m_event;

typedef struct {
    tbytes name, version, sandbox_profile, sandbox;
    uint32_t max_concurrent, running;
    uint64_t max_request_bytes, output_cap;
    uint32_t kill_grace_ms;
    uint64_t commands_started;
    bool pid1;
} m_info;

typedef struct {
    tlist commands;
} m_exec_commands;

typedef struct {
    bool result;
    tbytes error_message;
    tlist output;
} m_exec_result;

static tbytes S(const char *s)
{
    return (tbytes){(const uint8_t *)s, strlen(s)};
}

static tbytes B(const void *p, size_t n)
{
    return (tbytes){p, n};
}

/* ---- comparing -------------------------------------------------------------------------- */

static void cmp_u64(const char *field, uint64_t want, uint64_t got)
{
    if (want != got)
        fail(field, "want %llu, got %llu", (unsigned long long)want, (unsigned long long)got);
}

static void cmp_i64(const char *field, int64_t want, int64_t got)
{
    if (want != got)
        fail(field, "want %lld, got %lld", (long long)want, (long long)got);
}

static void cmp_bytes(const char *field, const tbytes *want, const tbytes *got)
{
    if (want->len != got->len) {
        fail(field, "want %zu bytes, got %zu", want->len, got->len);
        return;
    }
    for (size_t i = 0; i < want->len; i++) {
        if (want->p[i] != got->p[i]) {
            fail(field, "byte %zu: want 0x%02x, got 0x%02x", i, want->p[i], got->p[i]);
            return;
        }
    }
}

static void cmp_list(const char *field, const tlist *want, const tlist *got)
{
    char name[128];
    if (want->n != got->n) {
        fail(field, "want %zu items, got %zu", want->n, got->n);
        return;
    }
    for (size_t i = 0; i < want->n; i++) {
        snprintf(name, sizeof name, "%s[%zu]", field, i);
        cmp_bytes(name, &want->v[i], &got->v[i]);
    }
}

static void cmp_command(const char *prefix, const m_command *w, const m_command *g)
{
    char f[128];
#define FIELD(n) (snprintf(f, sizeof f, "%s.%s", prefix, n), f)
    cmp_bytes(FIELD("shell"), &w->shell, &g->shell);
    cmp_list(FIELD("argv"), &w->argv, &g->argv);
    cmp_list(FIELD("env"), &w->env, &g->env);
    cmp_bytes(FIELD("workdir"), &w->workdir, &g->workdir);
    cmp_u64(FIELD("timeout_ms"), w->timeout_ms, g->timeout_ms);
    cmp_bytes(FIELD("stdin_data"), &w->stdin_data, &g->stdin_data);
#undef FIELD
}

static void cmp_request(const m_request *w, const m_request *g)
{
    cmp_u64("RunRequest.commands (count)", w->n_commands, g->n_commands);
    for (size_t i = 0; i < w->n_commands && i < g->n_commands; i++) {
        char prefix[64];
        snprintf(prefix, sizeof prefix, "RunRequest.commands[%zu]", i);
        cmp_command(prefix, &w->commands[i], &g->commands[i]);
    }
    cmp_list("RunRequest.env", &w->env, &g->env);
    cmp_u64("RunRequest.clear_env", w->clear_env, g->clear_env);
    cmp_bytes("RunRequest.workdir", &w->workdir, &g->workdir);
    cmp_u64("RunRequest.timeout_ms", w->timeout_ms, g->timeout_ms);
    cmp_u64("RunRequest.output_cap", w->output_cap, g->output_cap);
    cmp_u64("RunRequest.continue_on_error", w->continue_on_error, g->continue_on_error);
    cmp_bytes("RunRequest.sandbox_profile", &w->sandbox_profile, &g->sandbox_profile);
}

static void cmp_event(const m_event *w, const m_event *g)
{
    cmp_u64("RunEvent.command", w->command, g->command);
    cmp_u64("RunEvent.started (present)", w->has_started, g->has_started);
    if (w->has_started && g->has_started)
        cmp_i64("RunEvent.started.pid", w->pid, g->pid);
    cmp_bytes("RunEvent.stdout_data", &w->stdout_data, &g->stdout_data);
    cmp_bytes("RunEvent.stderr_data", &w->stderr_data, &g->stderr_data);
    cmp_u64("RunEvent.exited (present)", w->has_exited, g->has_exited);
    if (!w->has_exited || !g->has_exited)
        return;
    const m_exited *a = &w->exited, *b = &g->exited;
    cmp_i64("RunEvent.exited.exit_code", a->exit_code, b->exit_code);
    cmp_i64("RunEvent.exited.signal", a->signal, b->signal);
    cmp_u64("RunEvent.exited.timed_out", a->timed_out, b->timed_out);
    cmp_u64("RunEvent.exited.cancelled", a->cancelled, b->cancelled);
    cmp_u64("RunEvent.exited.wall_us", a->wall_us, b->wall_us);
    cmp_u64("RunEvent.exited.user_us", a->user_us, b->user_us);
    cmp_u64("RunEvent.exited.sys_us", a->sys_us, b->sys_us);
    cmp_u64("RunEvent.exited.max_rss_kb", a->max_rss_kb, b->max_rss_kb);
    cmp_u64("RunEvent.exited.stdout_bytes", a->stdout_bytes, b->stdout_bytes);
    cmp_u64("RunEvent.exited.stderr_bytes", a->stderr_bytes, b->stderr_bytes);
    cmp_u64("RunEvent.exited.truncated", a->truncated, b->truncated);
    cmp_bytes("RunEvent.exited.error", &a->error, &b->error);
}

static void cmp_info(const m_info *w, const m_info *g)
{
    cmp_bytes("InfoResponse.name", &w->name, &g->name);
    cmp_bytes("InfoResponse.version", &w->version, &g->version);
    cmp_bytes("InfoResponse.sandbox_profile", &w->sandbox_profile, &g->sandbox_profile);
    cmp_bytes("InfoResponse.sandbox", &w->sandbox, &g->sandbox);
    cmp_u64("InfoResponse.max_concurrent", w->max_concurrent, g->max_concurrent);
    cmp_u64("InfoResponse.running", w->running, g->running);
    cmp_u64("InfoResponse.max_request_bytes", w->max_request_bytes, g->max_request_bytes);
    cmp_u64("InfoResponse.output_cap", w->output_cap, g->output_cap);
    cmp_u64("InfoResponse.kill_grace_ms", w->kill_grace_ms, g->kill_grace_ms);
    cmp_u64("InfoResponse.commands_started", w->commands_started, g->commands_started);
    cmp_u64("InfoResponse.pid1", w->pid1, g->pid1);
}

/* ---- nanopb callbacks ------------------------------------------------------------------- */

static bool dec_bytes(pb_istream_t *s, const pb_field_t *f, void **arg)
{
    (void)f;
    tbytes *b = *arg;
    uint8_t *p = arena_alloc(s->bytes_left);
    b->len = s->bytes_left;
    b->p = p;
    return pb_read(s, p, s->bytes_left);
}

static bool dec_list(pb_istream_t *s, const pb_field_t *f, void **arg)
{
    tlist *l = *arg;
    if (l->n == MAXL)
        return false;
    tbytes *b = &l->v[l->n++];
    void *slot = b;
    return dec_bytes(s, f, &slot);
}

static bool enc_bytes(pb_ostream_t *s, const pb_field_t *f, void *const *arg)
{
    const tbytes *b = *arg;
    if (b->len == 0)
        return true; /* proto3 leaves default values out */
    return pb_encode_tag_for_field(s, f) && pb_encode_string(s, b->p, b->len);
}

static bool enc_list(pb_ostream_t *s, const pb_field_t *f, void *const *arg)
{
    const tlist *l = *arg;
    for (size_t i = 0; i < l->n; i++)
        if (!pb_encode_tag_for_field(s, f) || !pb_encode_string(s, l->v[i].p, l->v[i].len))
            return false;
    return true;
}

#define SET_DEC(cb, fn, p) ((cb).funcs.decode = (fn), (cb).arg = (void *)(p))
#define SET_ENC(cb, fn, p) ((cb).funcs.encode = (fn), (cb).arg = (void *)(p))

static void command_callbacks_dec(pm_executor_v1_Command *c, m_command *m)
{
    SET_DEC(c->shell, dec_bytes, &m->shell);
    SET_DEC(c->argv, dec_list, &m->argv);
    SET_DEC(c->env, dec_list, &m->env);
    SET_DEC(c->workdir, dec_bytes, &m->workdir);
    SET_DEC(c->stdin_data, dec_bytes, &m->stdin_data);
}

static void command_callbacks_enc(pm_executor_v1_Command *c, const m_command *m)
{
    SET_ENC(c->shell, enc_bytes, &m->shell);
    SET_ENC(c->argv, enc_list, &m->argv);
    SET_ENC(c->env, enc_list, &m->env);
    SET_ENC(c->workdir, enc_bytes, &m->workdir);
    SET_ENC(c->stdin_data, enc_bytes, &m->stdin_data);
}

/* RunRequest.commands: each call decodes one Command from its own substream. */
static bool dec_commands(pb_istream_t *s, const pb_field_t *f, void **arg)
{
    (void)f;
    m_request *r = *arg;
    if (r->n_commands == MAXC)
        return false;
    m_command *m = &r->commands[r->n_commands++];
    pm_executor_v1_Command c = pm_executor_v1_Command_init_zero;
    command_callbacks_dec(&c, m);
    if (!pb_decode(s, pm_executor_v1_Command_fields, &c))
        return false;
    m->timeout_ms = c.timeout_ms;
    return true;
}

static bool enc_commands(pb_ostream_t *s, const pb_field_t *f, void *const *arg)
{
    const m_request *r = *arg;
    for (size_t i = 0; i < r->n_commands; i++) {
        pm_executor_v1_Command c = pm_executor_v1_Command_init_zero;
        command_callbacks_enc(&c, &r->commands[i]);
        c.timeout_ms = r->commands[i].timeout_ms;
        if (!pb_encode_tag_for_field(s, f) ||
            !pb_encode_submessage(s, pm_executor_v1_Command_fields, &c))
            return false;
    }
    return true;
}

/* Runs a nanopb encode into a buffer of the right size; returns NULL (and fails) on error. */
static uint8_t *nanopb_encode(const char *msg, const pb_msgdesc_t *fields, const void *src,
                              size_t *len)
{
    size_t size = 0;
    if (!pb_get_encoded_size(&size, fields, src)) {
        fail(msg, "nanopb cannot size the message");
        return NULL;
    }
    uint8_t *buf = arena_alloc(size);
    pb_ostream_t os = pb_ostream_from_buffer(buf, size);
    if (!pb_encode(&os, fields, src)) {
        fail(msg, "nanopb cannot encode: %s", PB_GET_ERROR(&os));
        return NULL;
    }
    *len = os.bytes_written;
    return buf;
}

static bool nanopb_decode(const char *msg, const pb_msgdesc_t *fields, void *dst,
                          const uint8_t *buf, size_t len)
{
    pb_istream_t is = pb_istream_from_buffer(buf, len);
    if (!pb_decode(&is, fields, dst)) {
        fail(msg, "nanopb cannot decode %zu bytes: %s", len, PB_GET_ERROR(&is));
        return false;
    }
    return true;
}

static uint8_t *pbc_pack(const ProtobufCMessage *m, size_t *len)
{
    *len = protobuf_c_message_get_packed_size(m);
    uint8_t *buf = arena_alloc(*len);
    protobuf_c_message_pack(m, buf);
    return buf;
}

/* ---- protobuf-c <-> model --------------------------------------------------------------- */

static char *pbc_str(const tbytes *b)
{
    char *s = arena_alloc(b->len);
    if (b->len)
        memcpy(s, b->p, b->len);
    return s;
}

static char **pbc_strv(const tlist *l)
{
    char **v = arena_alloc((l->n + 1) * sizeof *v);
    for (size_t i = 0; i < l->n; i++)
        v[i] = pbc_str(&l->v[i]);
    return v;
}

static ProtobufCBinaryData pbc_bin(const tbytes *b)
{
    return (ProtobufCBinaryData){.len = b->len, .data = (uint8_t *)b->p};
}

static tbytes from_str(const char *s)
{
    return s ? S(s) : S("");
}

static void from_strv(tlist *l, size_t n, char **v)
{
    l->n = n > MAXL ? MAXL : n;
    for (size_t i = 0; i < l->n; i++)
        l->v[i] = from_str(v[i]);
}

static Pm__Executor__V1__RunRequest *pbc_request(const m_request *m)
{
    Pm__Executor__V1__RunRequest *r = arena_alloc(sizeof *r);
    pm__executor__v1__run_request__init(r);
    r->n_commands = m->n_commands;
    r->commands = arena_alloc(m->n_commands * sizeof *r->commands);
    for (size_t i = 0; i < m->n_commands; i++) {
        const m_command *mc = &m->commands[i];
        Pm__Executor__V1__Command *c = arena_alloc(sizeof *c);
        pm__executor__v1__command__init(c);
        c->shell = pbc_str(&mc->shell);
        c->n_argv = mc->argv.n;
        c->argv = pbc_strv(&mc->argv);
        c->n_env = mc->env.n;
        c->env = pbc_strv(&mc->env);
        c->workdir = pbc_str(&mc->workdir);
        c->timeout_ms = mc->timeout_ms;
        c->stdin_data = pbc_bin(&mc->stdin_data);
        r->commands[i] = c;
    }
    r->n_env = m->env.n;
    r->env = pbc_strv(&m->env);
    r->clear_env = m->clear_env;
    r->workdir = pbc_str(&m->workdir);
    r->timeout_ms = m->timeout_ms;
    r->output_cap = m->output_cap;
    r->continue_on_error = m->continue_on_error;
    r->sandbox_profile = pbc_str(&m->sandbox_profile);
    return r;
}

static void model_from_pbc_request(m_request *m, const Pm__Executor__V1__RunRequest *r)
{
    memset(m, 0, sizeof *m);
    m->n_commands = r->n_commands > MAXC ? MAXC : r->n_commands;
    for (size_t i = 0; i < m->n_commands; i++) {
        const Pm__Executor__V1__Command *c = r->commands[i];
        m_command *mc = &m->commands[i];
        mc->shell = from_str(c->shell);
        from_strv(&mc->argv, c->n_argv, c->argv);
        from_strv(&mc->env, c->n_env, c->env);
        mc->workdir = from_str(c->workdir);
        mc->timeout_ms = c->timeout_ms;
        mc->stdin_data = B(c->stdin_data.data, c->stdin_data.len);
    }
    from_strv(&m->env, r->n_env, r->env);
    m->clear_env = r->clear_env;
    m->workdir = from_str(r->workdir);
    m->timeout_ms = r->timeout_ms;
    m->output_cap = r->output_cap;
    m->continue_on_error = r->continue_on_error;
    m->sandbox_profile = from_str(r->sandbox_profile);
}

/* Copies a model string into a nanopb fixed array, which must hold it and its NUL. */
static void fixed_str(char *dst, size_t size, const tbytes *b)
{
    if (b->len >= size) {
        fprintf(stderr, "test bug: %zu bytes do not fit a %zu-byte array\n", b->len, size);
        exit(2);
    }
    if (b->len)
        memcpy(dst, b->p, b->len);
    dst[b->len] = '\0';
}

/* ---- RunRequest ------------------------------------------------------------------------- */

static void check_request(const char *name, const m_request *want)
{
    size_t len;
    uint8_t *buf;
    m_request got;

    snprintf(where, sizeof where, "RunRequest %s, protobuf-c -> nanopb", name);
    buf = pbc_pack(&pbc_request(want)->base, &len);
    memset(&got, 0, sizeof got);
    pm_executor_v1_RunRequest n = pm_executor_v1_RunRequest_init_zero;
    SET_DEC(n.commands, dec_commands, &got);
    SET_DEC(n.env, dec_list, &got.env);
    SET_DEC(n.workdir, dec_bytes, &got.workdir);
    SET_DEC(n.sandbox_profile, dec_bytes, &got.sandbox_profile);
    if (nanopb_decode("RunRequest", pm_executor_v1_RunRequest_fields, &n, buf, len)) {
        got.clear_env = n.clear_env;
        got.timeout_ms = n.timeout_ms;
        got.output_cap = n.output_cap;
        got.continue_on_error = n.continue_on_error;
        cmp_request(want, &got);
    }

    snprintf(where, sizeof where, "RunRequest %s, nanopb -> protobuf-c", name);
    pm_executor_v1_RunRequest e = pm_executor_v1_RunRequest_init_zero;
    SET_ENC(e.commands, enc_commands, want);
    SET_ENC(e.env, enc_list, &want->env);
    SET_ENC(e.workdir, enc_bytes, &want->workdir);
    e.clear_env = want->clear_env;
    e.timeout_ms = want->timeout_ms;
    e.output_cap = want->output_cap;
    e.continue_on_error = want->continue_on_error;
    SET_ENC(e.sandbox_profile, enc_bytes, &want->sandbox_profile);
    buf = nanopb_encode("RunRequest", pm_executor_v1_RunRequest_fields, &e, &len);
    if (buf) {
        Pm__Executor__V1__RunRequest *r = pm__executor__v1__run_request__unpack(NULL, len, buf);
        if (!r) {
            fail("RunRequest", "protobuf-c cannot decode %zu bytes", len);
        } else {
            model_from_pbc_request(&got, r);
            cmp_request(want, &got);
            pm__executor__v1__run_request__free_unpacked(r, NULL);
        }
    }
    arena_reset();
}

/* ---- RunEvent --------------------------------------------------------------------------- */

static void check_event(const char *name, const m_event *want)
{
    size_t len;
    uint8_t *buf;
    m_event got;

    snprintf(where, sizeof where, "RunEvent %s, protobuf-c -> nanopb", name);
    Pm__Executor__V1__RunEvent p = PM__EXECUTOR__V1__RUN_EVENT__INIT;
    Pm__Executor__V1__Started ps = PM__EXECUTOR__V1__STARTED__INIT;
    Pm__Executor__V1__Exited px = PM__EXECUTOR__V1__EXITED__INIT;
    p.command = want->command;
    if (want->has_started) {
        ps.pid = want->pid;
        p.started = &ps;
    }
    p.stdout_data = pbc_bin(&want->stdout_data);
    p.stderr_data = pbc_bin(&want->stderr_data);
    if (want->has_exited) {
        const m_exited *x = &want->exited;
        px.exit_code = x->exit_code;
        px.signal = x->signal;
        px.timed_out = x->timed_out;
        px.cancelled = x->cancelled;
        px.wall_us = x->wall_us;
        px.user_us = x->user_us;
        px.sys_us = x->sys_us;
        px.max_rss_kb = x->max_rss_kb;
        px.stdout_bytes = x->stdout_bytes;
        px.stderr_bytes = x->stderr_bytes;
        px.truncated = x->truncated;
        px.error = pbc_str(&x->error);
        p.exited = &px;
    }
    buf = pbc_pack(&p.base, &len);
    memset(&got, 0, sizeof got);
    pm_executor_v1_RunEvent n = pm_executor_v1_RunEvent_init_zero;
    SET_DEC(n.stdout_data, dec_bytes, &got.stdout_data);
    SET_DEC(n.stderr_data, dec_bytes, &got.stderr_data);
    if (nanopb_decode("RunEvent", pm_executor_v1_RunEvent_fields, &n, buf, len)) {
        got.command = n.command;
        got.has_started = n.has_started;
        got.pid = n.started.pid;
        got.has_exited = n.has_exited;
        m_exited *x = &got.exited;
        x->exit_code = n.exited.exit_code;
        x->signal = n.exited.signal;
        x->timed_out = n.exited.timed_out;
        x->cancelled = n.exited.cancelled;
        x->wall_us = n.exited.wall_us;
        x->user_us = n.exited.user_us;
        x->sys_us = n.exited.sys_us;
        x->max_rss_kb = n.exited.max_rss_kb;
        x->stdout_bytes = n.exited.stdout_bytes;
        x->stderr_bytes = n.exited.stderr_bytes;
        x->truncated = n.exited.truncated;
        x->error = S(n.exited.error);
        cmp_event(want, &got);
    }

    snprintf(where, sizeof where, "RunEvent %s, nanopb -> protobuf-c", name);
    pm_executor_v1_RunEvent e = pm_executor_v1_RunEvent_init_zero;
    e.command = want->command;
    e.has_started = want->has_started;
    e.started.pid = want->pid;
    SET_ENC(e.stdout_data, enc_bytes, &want->stdout_data);
    SET_ENC(e.stderr_data, enc_bytes, &want->stderr_data);
    e.has_exited = want->has_exited;
    const m_exited *x = &want->exited;
    e.exited.exit_code = x->exit_code;
    e.exited.signal = x->signal;
    e.exited.timed_out = x->timed_out;
    e.exited.cancelled = x->cancelled;
    e.exited.wall_us = x->wall_us;
    e.exited.user_us = x->user_us;
    e.exited.sys_us = x->sys_us;
    e.exited.max_rss_kb = x->max_rss_kb;
    e.exited.stdout_bytes = x->stdout_bytes;
    e.exited.stderr_bytes = x->stderr_bytes;
    e.exited.truncated = x->truncated;
    fixed_str(e.exited.error, sizeof e.exited.error, &x->error);
    buf = nanopb_encode("RunEvent", pm_executor_v1_RunEvent_fields, &e, &len);
    if (buf) {
        Pm__Executor__V1__RunEvent *r = pm__executor__v1__run_event__unpack(NULL, len, buf);
        if (!r) {
            fail("RunEvent", "protobuf-c cannot decode %zu bytes", len);
        } else {
            memset(&got, 0, sizeof got);
            got.command = r->command;
            got.has_started = r->started != NULL;
            got.pid = r->started ? r->started->pid : 0;
            got.stdout_data = B(r->stdout_data.data, r->stdout_data.len);
            got.stderr_data = B(r->stderr_data.data, r->stderr_data.len);
            got.has_exited = r->exited != NULL;
            if (r->exited) {
                const Pm__Executor__V1__Exited *rx = r->exited;
                got.exited = (m_exited){
                    .exit_code = rx->exit_code,
                    .signal = rx->signal,
                    .timed_out = rx->timed_out,
                    .cancelled = rx->cancelled,
                    .wall_us = rx->wall_us,
                    .user_us = rx->user_us,
                    .sys_us = rx->sys_us,
                    .max_rss_kb = rx->max_rss_kb,
                    .stdout_bytes = rx->stdout_bytes,
                    .stderr_bytes = rx->stderr_bytes,
                    .truncated = rx->truncated,
                    .error = from_str(rx->error),
                };
            }
            cmp_event(want, &got);
            pm__executor__v1__run_event__free_unpacked(r, NULL);
        }
    }
    arena_reset();
}

/* ---- InfoRequest / InfoResponse --------------------------------------------------------- */

static void check_info_request(void)
{
    size_t len;
    snprintf(where, sizeof where, "InfoRequest, protobuf-c -> nanopb");
    Pm__Executor__V1__InfoRequest p = PM__EXECUTOR__V1__INFO_REQUEST__INIT;
    uint8_t *buf = pbc_pack(&p.base, &len);
    pm_executor_v1_InfoRequest n = pm_executor_v1_InfoRequest_init_zero;
    nanopb_decode("InfoRequest", pm_executor_v1_InfoRequest_fields, &n, buf, len);

    snprintf(where, sizeof where, "InfoRequest, nanopb -> protobuf-c");
    buf = nanopb_encode("InfoRequest", pm_executor_v1_InfoRequest_fields, &n, &len);
    if (buf) {
        Pm__Executor__V1__InfoRequest *r = pm__executor__v1__info_request__unpack(NULL, len, buf);
        if (!r)
            fail("InfoRequest", "protobuf-c cannot decode %zu bytes", len);
        else
            pm__executor__v1__info_request__free_unpacked(r, NULL);
    }
    arena_reset();
}

static void check_info(const char *name, const m_info *want)
{
    size_t len;
    m_info got;
    snprintf(where, sizeof where, "InfoResponse %s, protobuf-c -> nanopb", name);
    Pm__Executor__V1__InfoResponse p = PM__EXECUTOR__V1__INFO_RESPONSE__INIT;
    p.name = pbc_str(&want->name);
    p.version = pbc_str(&want->version);
    p.sandbox_profile = pbc_str(&want->sandbox_profile);
    p.sandbox = pbc_str(&want->sandbox);
    p.max_concurrent = want->max_concurrent;
    p.running = want->running;
    p.max_request_bytes = want->max_request_bytes;
    p.output_cap = want->output_cap;
    p.kill_grace_ms = want->kill_grace_ms;
    p.commands_started = want->commands_started;
    p.pid1 = want->pid1;
    uint8_t *buf = pbc_pack(&p.base, &len);
    pm_executor_v1_InfoResponse n = pm_executor_v1_InfoResponse_init_zero;
    if (nanopb_decode("InfoResponse", pm_executor_v1_InfoResponse_fields, &n, buf, len)) {
        got = (m_info){
            .name = S(n.name),
            .version = S(n.version),
            .sandbox_profile = S(n.sandbox_profile),
            .sandbox = S(n.sandbox),
            .max_concurrent = n.max_concurrent,
            .running = n.running,
            .max_request_bytes = n.max_request_bytes,
            .output_cap = n.output_cap,
            .kill_grace_ms = n.kill_grace_ms,
            .commands_started = n.commands_started,
            .pid1 = n.pid1,
        };
        cmp_info(want, &got);
    }

    snprintf(where, sizeof where, "InfoResponse %s, nanopb -> protobuf-c", name);
    pm_executor_v1_InfoResponse e = pm_executor_v1_InfoResponse_init_zero;
    fixed_str(e.name, sizeof e.name, &want->name);
    fixed_str(e.version, sizeof e.version, &want->version);
    fixed_str(e.sandbox_profile, sizeof e.sandbox_profile, &want->sandbox_profile);
    fixed_str(e.sandbox, sizeof e.sandbox, &want->sandbox);
    e.max_concurrent = want->max_concurrent;
    e.running = want->running;
    e.max_request_bytes = want->max_request_bytes;
    e.output_cap = want->output_cap;
    e.kill_grace_ms = want->kill_grace_ms;
    e.commands_started = want->commands_started;
    e.pid1 = want->pid1;
    buf = nanopb_encode("InfoResponse", pm_executor_v1_InfoResponse_fields, &e, &len);
    if (buf) {
        Pm__Executor__V1__InfoResponse *r = pm__executor__v1__info_response__unpack(NULL, len, buf);
        if (!r) {
            fail("InfoResponse", "protobuf-c cannot decode %zu bytes", len);
        } else {
            got = (m_info){
                .name = from_str(r->name),
                .version = from_str(r->version),
                .sandbox_profile = from_str(r->sandbox_profile),
                .sandbox = from_str(r->sandbox),
                .max_concurrent = r->max_concurrent,
                .running = r->running,
                .max_request_bytes = r->max_request_bytes,
                .output_cap = r->output_cap,
                .kill_grace_ms = r->kill_grace_ms,
                .commands_started = r->commands_started,
                .pid1 = r->pid1,
            };
            cmp_info(want, &got);
            pm__executor__v1__info_response__free_unpacked(r, NULL);
        }
    }
    arena_reset();
}

/* ---- exec.ExecCommands / exec.ExecResult ------------------------------------------------ */

static void check_exec_commands(const char *name, const m_exec_commands *want)
{
    size_t len;
    m_exec_commands got;
    snprintf(where, sizeof where, "ExecCommands %s, protobuf-c -> nanopb", name);
    Exec__ExecCommands p = EXEC__EXEC_COMMANDS__INIT;
    p.n_commands = want->commands.n;
    p.commands = pbc_strv(&want->commands);
    uint8_t *buf = pbc_pack(&p.base, &len);
    memset(&got, 0, sizeof got);
    exec_ExecCommands n = exec_ExecCommands_init_zero;
    SET_DEC(n.commands, dec_list, &got.commands);
    if (nanopb_decode("ExecCommands", exec_ExecCommands_fields, &n, buf, len))
        cmp_list("ExecCommands.commands", &want->commands, &got.commands);

    snprintf(where, sizeof where, "ExecCommands %s, nanopb -> protobuf-c", name);
    exec_ExecCommands e = exec_ExecCommands_init_zero;
    SET_ENC(e.commands, enc_list, &want->commands);
    buf = nanopb_encode("ExecCommands", exec_ExecCommands_fields, &e, &len);
    if (buf) {
        Exec__ExecCommands *r = exec__exec_commands__unpack(NULL, len, buf);
        if (!r) {
            fail("ExecCommands", "protobuf-c cannot decode %zu bytes", len);
        } else {
            memset(&got, 0, sizeof got);
            from_strv(&got.commands, r->n_commands, r->commands);
            cmp_list("ExecCommands.commands", &want->commands, &got.commands);
            exec__exec_commands__free_unpacked(r, NULL);
        }
    }
    arena_reset();
}

static void check_exec_result(const char *name, const m_exec_result *want)
{
    size_t len;
    m_exec_result got;
    snprintf(where, sizeof where, "ExecResult %s, protobuf-c -> nanopb", name);
    Exec__ExecResult p = EXEC__EXEC_RESULT__INIT;
    p.result = want->result;
    p.errormessage = pbc_str(&want->error_message);
    p.n_output = want->output.n;
    p.output = pbc_strv(&want->output);
    uint8_t *buf = pbc_pack(&p.base, &len);
    memset(&got, 0, sizeof got);
    exec_ExecResult n = exec_ExecResult_init_zero;
    SET_DEC(n.errorMessage, dec_bytes, &got.error_message);
    SET_DEC(n.output, dec_list, &got.output);
    if (nanopb_decode("ExecResult", exec_ExecResult_fields, &n, buf, len)) {
        got.result = n.result;
        cmp_u64("ExecResult.result", want->result, got.result);
        cmp_bytes("ExecResult.errorMessage", &want->error_message, &got.error_message);
        cmp_list("ExecResult.output", &want->output, &got.output);
    }

    snprintf(where, sizeof where, "ExecResult %s, nanopb -> protobuf-c", name);
    exec_ExecResult e = exec_ExecResult_init_zero;
    e.result = want->result;
    SET_ENC(e.errorMessage, enc_bytes, &want->error_message);
    SET_ENC(e.output, enc_list, &want->output);
    buf = nanopb_encode("ExecResult", exec_ExecResult_fields, &e, &len);
    if (buf) {
        Exec__ExecResult *r = exec__exec_result__unpack(NULL, len, buf);
        if (!r) {
            fail("ExecResult", "protobuf-c cannot decode %zu bytes", len);
        } else {
            memset(&got, 0, sizeof got);
            got.result = r->result;
            got.error_message = from_str(r->errormessage);
            from_strv(&got.output, r->n_output, r->output);
            cmp_u64("ExecResult.result", want->result, got.result);
            cmp_bytes("ExecResult.errorMessage", &want->error_message, &got.error_message);
            cmp_list("ExecResult.output", &want->output, &got.output);
            exec__exec_result__free_unpacked(r, NULL);
        }
    }
    arena_reset();
}

/* ---- grpc.health.v1 --------------------------------------------------------------------- */

static void check_health_request(const char *name, const char *service)
{
    size_t len;
    tbytes want = S(service);
    snprintf(where, sizeof where, "HealthCheckRequest %s, protobuf-c -> nanopb", name);
    Grpc__Health__V1__HealthCheckRequest p = GRPC__HEALTH__V1__HEALTH_CHECK_REQUEST__INIT;
    p.service = (char *)service;
    uint8_t *buf = pbc_pack(&p.base, &len);
    grpc_health_v1_HealthCheckRequest n = grpc_health_v1_HealthCheckRequest_init_zero;
    if (nanopb_decode("HealthCheckRequest", grpc_health_v1_HealthCheckRequest_fields, &n, buf,
                      len)) {
        tbytes got = S(n.service);
        cmp_bytes("HealthCheckRequest.service", &want, &got);
    }

    snprintf(where, sizeof where, "HealthCheckRequest %s, nanopb -> protobuf-c", name);
    grpc_health_v1_HealthCheckRequest e = grpc_health_v1_HealthCheckRequest_init_zero;
    fixed_str(e.service, sizeof e.service, &want);
    buf = nanopb_encode("HealthCheckRequest", grpc_health_v1_HealthCheckRequest_fields, &e, &len);
    if (buf) {
        Grpc__Health__V1__HealthCheckRequest *r =
            grpc__health__v1__health_check_request__unpack(NULL, len, buf);
        if (!r) {
            fail("HealthCheckRequest", "protobuf-c cannot decode %zu bytes", len);
        } else {
            tbytes got = from_str(r->service);
            cmp_bytes("HealthCheckRequest.service", &want, &got);
            grpc__health__v1__health_check_request__free_unpacked(r, NULL);
        }
    }
    arena_reset();
}

static void check_health_response(int status)
{
    size_t len;
    snprintf(where, sizeof where, "HealthCheckResponse status=%d, protobuf-c -> nanopb", status);
    Grpc__Health__V1__HealthCheckResponse p = GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__INIT;
    p.status = (Grpc__Health__V1__HealthCheckResponse__ServingStatus)status;
    uint8_t *buf = pbc_pack(&p.base, &len);
    grpc_health_v1_HealthCheckResponse n = grpc_health_v1_HealthCheckResponse_init_zero;
    if (nanopb_decode("HealthCheckResponse", grpc_health_v1_HealthCheckResponse_fields, &n, buf,
                      len))
        cmp_i64("HealthCheckResponse.status", status, (int64_t)n.status);

    snprintf(where, sizeof where, "HealthCheckResponse status=%d, nanopb -> protobuf-c", status);
    grpc_health_v1_HealthCheckResponse e = grpc_health_v1_HealthCheckResponse_init_zero;
    e.status = (grpc_health_v1_HealthCheckResponse_ServingStatus)status;
    buf = nanopb_encode("HealthCheckResponse", grpc_health_v1_HealthCheckResponse_fields, &e, &len);
    if (buf) {
        Grpc__Health__V1__HealthCheckResponse *r =
            grpc__health__v1__health_check_response__unpack(NULL, len, buf);
        if (!r) {
            fail("HealthCheckResponse", "protobuf-c cannot decode %zu bytes", len);
        } else {
            cmp_i64("HealthCheckResponse.status", status, (int64_t)r->status);
            grpc__health__v1__health_check_response__free_unpacked(r, NULL);
        }
    }
    arena_reset();
}

/*
 * A string longer than nanopb's fixed array must make the decode fail, not be cut short: the
 * health service then answers INVALID_ARGUMENT instead of acting on a truncated name.
 */
static void check_overlong_rejected(void)
{
    size_t len;
    char service[300];
    memset(service, 's', sizeof service - 1);
    service[sizeof service - 1] = '\0';
    snprintf(where, sizeof where,
             "HealthCheckRequest with a 299-byte service, protobuf-c -> nanopb");
    Grpc__Health__V1__HealthCheckRequest p = GRPC__HEALTH__V1__HEALTH_CHECK_REQUEST__INIT;
    p.service = service;
    uint8_t *buf = pbc_pack(&p.base, &len);
    grpc_health_v1_HealthCheckRequest n = grpc_health_v1_HealthCheckRequest_init_zero;
    pb_istream_t is = pb_istream_from_buffer(buf, len);
    if (pb_decode(&is, grpc_health_v1_HealthCheckRequest_fields, &n))
        fail("HealthCheckRequest.service", "nanopb accepted %zu bytes into char[%zu] as \"%s\"",
             strlen(service), sizeof n.service, n.service);
    arena_reset();
}

/* ---- the cases -------------------------------------------------------------------------- */

/* Bytes no text codec would pass through: NUL, 0xff, every other value. */
static uint8_t all_bytes[256];
static uint8_t big_chunk[100 * 1024]; /* past nanopb's 16-bit sizes and 64 KiB */

static void fill(char *s, size_t n, char c)
{
    memset(s, c, n);
    s[n] = '\0';
}

static void requests(void)
{
    static const uint8_t stdin1[] = {'a', 0, 'b', 0xff, 0, 0xfe, '\n'};
    static char profile63[64];
    fill(profile63, 63, 's');

    m_request r;
    memset(&r, 0, sizeof r);
    r.n_commands = 4;
    /* A shell line with UTF-8, quotes and a newline. */
    r.commands[0].shell = S("echo 'héllo wörld' | tr a-z A-Z\nexit 3");
    r.commands[0].timeout_ms = 1500;
    /* An argv with an empty word, and stdin with NUL and 0xff bytes. */
    r.commands[1].argv = (tlist){4, {S("/usr/bin/printf"), S("%s|%s\\n"), S(""), S("日本語")}};
    r.commands[1].stdin_data = B(stdin1, sizeof stdin1);
    /* Per-command env and workdir. */
    r.commands[2].argv = (tlist){1, {S("env")}};
    r.commands[2].env = (tlist){3, {S("A=1"), S("EMPTY="), S("PATH=/bin:/usr/bin")}};
    r.commands[2].workdir = S("/mnt/pipe/job 7");
    r.commands[2].timeout_ms = UINT32_MAX;
    /* Everything at once, including every byte value as stdin. */
    r.commands[3].shell = S("cat");
    r.commands[3].env = (tlist){1, {S("X=y")}};
    r.commands[3].workdir = S("/tmp");
    r.commands[3].timeout_ms = 1;
    r.commands[3].stdin_data = B(all_bytes, sizeof all_bytes);
    r.env = (tlist){2, {S("PM_STEP=1"), S("LANG=C.UTF-8")}};
    r.clear_env = true;
    r.workdir = S("/mnt/pipe");
    r.timeout_ms = 60000;
    r.output_cap = UINT64_MAX;
    r.continue_on_error = true;
    r.sandbox_profile = B(profile63, 63);
    check_request("full", &r);

    memset(&r, 0, sizeof r);
    check_request("empty", &r);

    memset(&r, 0, sizeof r);
    r.n_commands = 1;
    r.commands[0].shell = S("true");
    r.output_cap = 1;
    r.sandbox_profile = S("strict");
    check_request("one shell line", &r);

    /* Large stdin: nanopb must take it through the callback, not a fixed buffer. */
    memset(&r, 0, sizeof r);
    r.n_commands = 1;
    r.commands[0].argv = (tlist){1, {S("wc")}};
    r.commands[0].stdin_data = B(big_chunk, sizeof big_chunk);
    check_request("100 KiB stdin", &r);
}

static void events(void)
{
    static char error511[512];
    fill(error511, 511, 'e');
    memcpy(error511, "exec: ", 6);

    m_event e;
    memset(&e, 0, sizeof e);
    e.has_started = true;
    e.pid = 12345;
    check_event("started", &e);
    e.command = 3;
    e.pid = INT32_MAX;
    check_event("started, command 3", &e);

    memset(&e, 0, sizeof e);
    e.command = 1;
    e.stdout_data = B(all_bytes, sizeof all_bytes);
    check_event("stdout_data with every byte value", &e);
    e.stdout_data = B(big_chunk, sizeof big_chunk);
    check_event("stdout_data of 100 KiB", &e);

    memset(&e, 0, sizeof e);
    e.command = 2;
    e.stderr_data = B("\0\xff\x80warning\r\n", 12);
    check_event("stderr_data with binary bytes", &e);

    memset(&e, 0, sizeof e);
    e.command = 0;
    e.has_exited = true;
    e.exited = (m_exited){
        .exit_code = -1,
        .signal = 9,
        .timed_out = true,
        .cancelled = true,
        .wall_us = UINT64_MAX,
        .user_us = 123456789012ull,
        .sys_us = 1,
        .max_rss_kb = 1u << 31,
        .stdout_bytes = 1ull << 40,
        .stderr_bytes = 7,
        .truncated = true,
        .error = B(error511, 511),
    };
    check_event("exited, every field", &e);
    e.exited = (m_exited){.exit_code = 255, .wall_us = 1500, .error = S("no such file: «x»")};
    check_event("exited 255 with UTF-8 error", &e);
    e.exited = (m_exited){0};
    check_event("exited 0, all defaults", &e);

    memset(&e, 0, sizeof e);
    check_event("empty", &e);
}

static void infos(void)
{
    static char name127[128];
    fill(name127, 127, 'n');
    check_info_request();
    m_info i = {
        .name = B(name127, 127),
        .version = S("0.1.0+g1234abcd"),
        .sandbox_profile = S("default"),
        .sandbox = S("profile=default filter=316 rlimits=nofile:65536,nproc:4096,core:0 caps=none"),
        .max_concurrent = 64,
        .running = 3,
        .max_request_bytes = 4u << 20,
        .output_cap = 1ull << 33,
        .kill_grace_ms = 5000,
        .commands_started = UINT64_MAX,
        .pid1 = true,
    };
    check_info("full", &i);
    memset(&i, 0, sizeof i);
    check_info("empty", &i);
}

static void execs(void)
{
    m_exec_commands c = {{3, {S("wget -O /mnt/pipe/1.png http://x/"), S(""), S("echo ünï")}}};
    check_exec_commands("three with an empty one", &c);
    memset(&c, 0, sizeof c);
    check_exec_commands("none", &c);

    m_exec_result r = {
        .result = true,
        .output = {4, {S("line 1\nline 2\n"), S(""), S("tab\there"), S("ünïcode\n")}},
    };
    check_exec_result("ok with outputs", &r);
    r = (m_exec_result){
        .result = false,
        .error_message = S("command 2 exited with 1"),
        .output = {2, {S("partial\n"), S("")}},
    };
    check_exec_result("failed", &r);
    r = (m_exec_result){0};
    check_exec_result("empty", &r);
}

static void healths(void)
{
    static char service255[256];
    fill(service255, 255, 'v');
    check_health_request("empty service", "");
    check_health_request("named service", "pm.executor.v1.Executor");
    check_health_request("255-byte service", service255);
    for (int s = 0; s <= 3; s++)
        check_health_response(s);
}

int main(void)
{
    for (size_t i = 0; i < sizeof all_bytes; i++)
        all_bytes[i] = (uint8_t)i;
    for (size_t i = 0; i < sizeof big_chunk; i++)
        big_chunk[i] = (uint8_t)(i * 7 + (i >> 8));

    requests();
    events();
    infos();
    execs();
    healths();
    check_overlong_rejected();

    free(arena);
    if (failures) {
        fprintf(stderr, "codec_test: %d mismatches\n", failures);
        return 1;
    }
    printf("codec_test: nanopb and protobuf-c agree on every message, both ways\n");
    return 0;
}

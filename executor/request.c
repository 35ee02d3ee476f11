/*
 * nanopb decoding and encoding for the executor. Every string, bytes and repeated field of a
 * request is a nanopb callback that copies into one arena allocated once per request (a request of
 * L bytes cannot hold more than L bytes of strings plus L/2 terminators), so decoding allocates a
 * bounded amount whatever the input, and nanopb's 16-bit field sizes never apply.
 */
#include "executor/request.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <pb_decode.h>
#include <pb_encode.h>

#include "protos/exec.pb.h"

typedef struct {
    exe_step *s;
    char *err;
    size_t errlen;
    const char *what; /* field being decoded, for messages */
    size_t index;     /* command index */
    void *target;     /* exe_strv*, const char**, or exe_cmd* */
} dctx;

static int strv_push(exe_strv *v, char *str)
{
    if (v->n + 1 >= v->cap) {
        size_t cap = v->cap ? v->cap * 2 : 8;
        char **nv = realloc(v->v, cap * sizeof *nv);
        if (!nv)
            return -ENOMEM;
        v->v = nv;
        v->cap = cap;
    }
    v->v[v->n++] = str;
    v->v[v->n] = NULL;
    return 0;
}

/* Reads the rest of the (sub)stream into the arena; text fields must hold no NUL and fit in the
 * kernel's per-string limit. */
static bool read_field(pb_istream_t *stream, dctx *c, bool text, char **out, size_t *outlen)
{
    size_t n = stream->bytes_left;
    exe_step *s = c->s;
    if (text && n > EXE_MAX_ARG_STRLEN) {
        snprintf(c->err, c->errlen, "command %zu: %s is %zu bytes, over the kernel's %d-byte limit",
                 c->index, c->what, n, EXE_MAX_ARG_STRLEN);
        return false;
    }
    if (s->arena_used + n + 1 > s->arena_cap) {
        snprintf(c->err, c->errlen, "request arena exhausted (malformed lengths?)");
        return false;
    }
    char *p = s->arena + s->arena_used;
    if (!pb_read(stream, (pb_byte_t *)p, n))
        return false;
    p[n] = '\0';
    if (text && memchr(p, '\0', n)) {
        snprintf(c->err, c->errlen, "command %zu: %s contains a NUL byte", c->index, c->what);
        return false;
    }
    s->arena_used += n + 1;
    *out = p;
    if (outlen)
        *outlen = n;
    return true;
}

static bool cb_string(pb_istream_t *stream, const pb_field_t *field, void **arg)
{
    (void)field;
    dctx *c = *arg;
    char *p;
    if (!read_field(stream, c, true, &p, NULL))
        return false;
    *(const char **)c->target = p;
    return true;
}

static bool cb_strv(pb_istream_t *stream, const pb_field_t *field, void **arg)
{
    (void)field;
    dctx *c = *arg;
    char *p;
    if (((exe_strv *)c->target)->n >= EXE_MAX_ENTRIES) {
        snprintf(c->err, c->errlen, "command %zu: more than %d %s entries", c->index,
                 EXE_MAX_ENTRIES, c->what);
        return false;
    }
    if (!read_field(stream, c, true, &p, NULL))
        return false;
    if (strv_push(c->target, p) < 0) {
        snprintf(c->err, c->errlen, "out of memory");
        return false;
    }
    return true;
}

static bool cb_bytes(pb_istream_t *stream, const pb_field_t *field, void **arg)
{
    (void)field;
    dctx *c = *arg;
    exe_cmd *cmd = c->target;
    char *p;
    size_t n;
    if (!read_field(stream, c, false, &p, &n))
        return false;
    cmd->stdin_data = (const uint8_t *)p;
    cmd->stdin_len = n;
    return true;
}

/* Appends a command; NULL (with err set) past EXE_MAX_COMMANDS or out of memory. */
static exe_cmd *step_add_cmd(exe_step *s, dctx *c)
{
    if (s->ncmds >= EXE_MAX_COMMANDS) {
        snprintf(c->err, c->errlen, "more than %d commands in one step", EXE_MAX_COMMANDS);
        return NULL;
    }
    if (s->ncmds == s->cmds_cap) {
        size_t cap = s->cmds_cap ? s->cmds_cap * 2 : 4;
        exe_cmd *n = realloc(s->cmds, cap * sizeof *n);
        if (!n) {
            snprintf(c->err, c->errlen, "out of memory");
            return NULL;
        }
        s->cmds = n;
        s->cmds_cap = cap;
    }
    exe_cmd *cmd = &s->cmds[s->ncmds++];
    memset(cmd, 0, sizeof *cmd);
    return cmd;
}

static bool cb_command(pb_istream_t *stream, const pb_field_t *field, void **arg)
{
    (void)field;
    dctx *c = *arg;
    exe_step *s = c->s;
    exe_cmd *cmd = step_add_cmd(s, c);
    if (!cmd)
        return false;
    size_t idx = s->ncmds - 1;
    dctx shell = {s, c->err, c->errlen, "shell", idx, &cmd->shell};
    dctx argv = {s, c->err, c->errlen, "argv", idx, &cmd->argv};
    dctx env = {s, c->err, c->errlen, "env", idx, &cmd->env};
    dctx wd = {s, c->err, c->errlen, "workdir", idx, &cmd->workdir};
    dctx in = {s, c->err, c->errlen, "stdin_data", idx, cmd};
    pm_executor_v1_Command m = pm_executor_v1_Command_init_zero;
    m.shell = (pb_callback_t){.funcs.decode = cb_string, .arg = &shell};
    m.argv = (pb_callback_t){.funcs.decode = cb_strv, .arg = &argv};
    m.env = (pb_callback_t){.funcs.decode = cb_strv, .arg = &env};
    m.workdir = (pb_callback_t){.funcs.decode = cb_string, .arg = &wd};
    m.stdin_data = (pb_callback_t){.funcs.decode = cb_bytes, .arg = &in};
    if (!pb_decode(stream, pm_executor_v1_Command_fields, &m))
        return false;
    /* cmd may have moved if a nested decode grew the array; it cannot here (no nesting). */
    cmd->timeout_ms = m.timeout_ms;
    return true;
}

static int step_init(exe_step *s, size_t len)
{
    memset(s, 0, sizeof *s);
    s->arena_cap = len + len / 2 + 16;
    s->arena = malloc(s->arena_cap);
    return s->arena ? 0 : -ENOMEM;
}

static int decode_failed(exe_step *s, pb_istream_t *is, const char *what, char *err, size_t errlen)
{
    if (!err[0])
        snprintf(err, errlen, "malformed %s: %s", what, PB_GET_ERROR(is));
    exe_step_free(s);
    return -EINVAL;
}

static int env_entry_check(const char *e, const char *where, size_t idx, char *err, size_t errlen)
{
    const char *eq = strchr(e, '=');
    if (!eq || eq == e) {
        snprintf(err, errlen, "%s %zu: env entry \"%.60s\" is not KEY=VALUE", where, idx, e);
        return -EINVAL;
    }
    return 0;
}

static int step_validate(exe_step *s, char *err, size_t errlen)
{
    if (s->ncmds == 0) {
        snprintf(err, errlen, "the request has no commands");
        return -EINVAL;
    }
    for (size_t i = 0; i < s->env.n; i++)
        if (env_entry_check(s->env.v[i], "step env entry", i, err, errlen) < 0)
            return -EINVAL;
    for (size_t i = 0; i < s->ncmds; i++) {
        exe_cmd *c = &s->cmds[i];
        /* proto3 cannot tell an empty string from an absent one: treat both as absent, so an
         * explicit empty shell beside an argv can never turn into `sh -c ""`. */
        if (c->shell && !c->shell[0])
            c->shell = NULL;
        bool has_shell = c->shell != NULL;
        if (has_shell == (c->argv.n > 0)) {
            snprintf(err, errlen, "command %zu: give exactly one of shell or argv", i);
            return -EINVAL;
        }
        if (!has_shell && !c->argv.v[0][0]) {
            snprintf(err, errlen, "command %zu: argv[0] is empty", i);
            return -EINVAL;
        }
        for (size_t j = 0; j < c->env.n; j++)
            if (env_entry_check(c->env.v[j], "command", i, err, errlen) < 0)
                return -EINVAL;
    }
    return 0;
}

int exe_step_decode_run(exe_step *s, const uint8_t *buf, size_t len, char *err, size_t errlen)
{
    err[0] = '\0';
    if (step_init(s, len) < 0) {
        snprintf(err, errlen, "out of memory");
        return -ENOMEM;
    }
    dctx cmds = {s, err, errlen, "commands", 0, NULL};
    dctx env = {s, err, errlen, "env", 0, &s->env};
    dctx wd = {s, err, errlen, "workdir", 0, &s->workdir};
    pm_executor_v1_RunRequest m = pm_executor_v1_RunRequest_init_zero;
    m.commands = (pb_callback_t){.funcs.decode = cb_command, .arg = &cmds};
    m.env = (pb_callback_t){.funcs.decode = cb_strv, .arg = &env};
    m.workdir = (pb_callback_t){.funcs.decode = cb_string, .arg = &wd};
    dctx prof = {s, err, errlen, "sandbox_profile", 0, &s->sandbox_profile};
    m.sandbox_profile = (pb_callback_t){.funcs.decode = cb_string, .arg = &prof};
    pb_istream_t is = pb_istream_from_buffer(buf, len);
    if (!pb_decode(&is, pm_executor_v1_RunRequest_fields, &m))
        return decode_failed(s, &is, "RunRequest", err, errlen);
    s->clear_env = m.clear_env;
    s->timeout_ms = m.timeout_ms;
    s->output_cap = m.output_cap;
    s->continue_on_error = m.continue_on_error;
    if (step_validate(s, err, errlen) < 0) {
        exe_step_free(s);
        return -EINVAL;
    }
    return 0;
}

static bool cb_legacy_command(pb_istream_t *stream, const pb_field_t *field, void **arg)
{
    (void)field;
    dctx *c = *arg;
    exe_cmd *cmd = step_add_cmd(c->s, c);
    if (!cmd)
        return false;
    c->index = c->s->ncmds - 1;
    char *p;
    if (!read_field(stream, c, true, &p, NULL))
        return false;
    cmd->shell = p;
    return true;
}

int exe_step_decode_legacy(exe_step *s, const uint8_t *buf, size_t len, char *err, size_t errlen)
{
    err[0] = '\0';
    if (step_init(s, len) < 0) {
        snprintf(err, errlen, "out of memory");
        return -ENOMEM;
    }
    dctx cmds = {s, err, errlen, "command", 0, NULL};
    exec_ExecCommands m = exec_ExecCommands_init_zero;
    m.commands = (pb_callback_t){.funcs.decode = cb_legacy_command, .arg = &cmds};
    pb_istream_t is = pb_istream_from_buffer(buf, len);
    if (!pb_decode(&is, exec_ExecCommands_fields, &m))
        return decode_failed(s, &is, "ExecCommands", err, errlen);
    for (size_t i = 0; i < s->ncmds; i++)
        if (!s->cmds[i].shell[0]) {
            snprintf(err, errlen, "commands[%zu] is empty", i);
            exe_step_free(s);
            return -EINVAL;
        }
    if (step_validate(s, err, errlen) < 0) {
        exe_step_free(s);
        return -EINVAL;
    }
    return 0;
}

void exe_step_free(exe_step *s)
{
    for (size_t i = 0; i < s->ncmds; i++) {
        free(s->cmds[i].argv.v);
        free(s->cmds[i].env.v);
    }
    free(s->cmds);
    free(s->env.v);
    free(s->arena);
    memset(s, 0, sizeof *s);
}

const char *exe_env_get(char *const *env, const char *key)
{
    size_t klen = strlen(key);
    for (; env && *env; env++)
        if (!strncmp(*env, key, klen) && (*env)[klen] == '=')
            return *env + klen + 1;
    return NULL;
}

/* Puts entry into env[0..*n), replacing an entry with the same key. */
static void env_put(char **env, size_t *n, char *entry)
{
    size_t klen = (size_t)(strchr(entry, '=') - entry);
    for (size_t i = 0; i < *n; i++)
        if (!strncmp(env[i], entry, klen + 1)) {
            env[i] = entry;
            return;
        }
    env[(*n)++] = entry;
}

char **exe_step_env(const exe_step *s, size_t i, char *const *base, char *extra)
{
    size_t nbase = 0;
    if (!s->clear_env)
        while (base && base[nbase])
            nbase++;
    const exe_cmd *c = &s->cmds[i];
    char **env = malloc((nbase + s->env.n + c->env.n + 2) * sizeof *env);
    if (!env)
        return NULL;
    size_t n = 0;
    for (size_t j = 0; j < nbase; j++)
        if (strchr(base[j], '='))
            env_put(env, &n, base[j]);
    for (size_t j = 0; j < s->env.n; j++)
        env_put(env, &n, s->env.v[j]);
    for (size_t j = 0; j < c->env.n; j++)
        env_put(env, &n, c->env.v[j]);
    if (extra)
        env_put(env, &n, extra);
    env[n] = NULL;
    return env;
}

/* ---- encoding ---------------------------------------------------------------------------- */

typedef struct {
    const uint8_t *data;
    size_t len;
} blob_arg;

static bool cb_encode_blob(pb_ostream_t *stream, const pb_field_t *field, void *const *arg)
{
    const blob_arg *b = *arg;
    return pb_encode_tag_for_field(stream, field) && pb_encode_string(stream, b->data, b->len);
}

/* Encodes msg into a byte buffer of exactly the encoded size. */
static grpc_byte_buffer *encode_bb(const pb_msgdesc_t *fields, const void *msg)
{
    size_t size;
    if (!pb_get_encoded_size(&size, fields, msg))
        return NULL;
    grpc_slice slice = grpc_slice_malloc(size);
    pb_ostream_t os = pb_ostream_from_buffer(GRPC_SLICE_START_PTR(slice), size);
    if (!pb_encode(&os, fields, msg)) {
        grpc_slice_unref(slice);
        return NULL;
    }
    grpc_byte_buffer *bb = grpc_raw_byte_buffer_create(&slice, 1);
    grpc_slice_unref(slice);
    return bb;
}

grpc_byte_buffer *exe_event_started(uint32_t cmd, int32_t pid)
{
    pm_executor_v1_RunEvent ev = pm_executor_v1_RunEvent_init_zero;
    ev.command = cmd;
    ev.has_started = true;
    ev.started.pid = pid;
    return encode_bb(pm_executor_v1_RunEvent_fields, &ev);
}

grpc_byte_buffer *exe_event_output_in(uint32_t cmd, bool is_stderr, grpc_slice slice, size_t len)
{
    /* The fields before the data, as nanopb would write them: command (when not 0), then the
     * tag and length of stdout_data or stderr_data. */
    uint8_t head[EXE_EVENT_HEADER_ROOM];
    pb_ostream_t os = pb_ostream_from_buffer(head, sizeof head);
    bool ok = true;
    if (cmd)
        ok = pb_encode_tag(&os, PB_WT_VARINT, pm_executor_v1_RunEvent_command_tag) &&
             pb_encode_varint(&os, cmd);
    ok = ok &&
         pb_encode_tag(&os, PB_WT_STRING,
                       is_stderr ? pm_executor_v1_RunEvent_stderr_data_tag
                                 : pm_executor_v1_RunEvent_stdout_data_tag) &&
         pb_encode_varint(&os, len);
    if (!ok || GRPC_SLICE_LENGTH(slice) < EXE_EVENT_HEADER_ROOM + len) {
        grpc_slice_unref(slice);
        return NULL;
    }
    size_t start = EXE_EVENT_HEADER_ROOM - os.bytes_written;
    memcpy(GRPC_SLICE_START_PTR(slice) + start, head, os.bytes_written);
    grpc_slice msg = grpc_slice_sub(slice, start, EXE_EVENT_HEADER_ROOM + len);
    grpc_slice_unref(slice);
    grpc_byte_buffer *bb = grpc_raw_byte_buffer_create(&msg, 1);
    grpc_slice_unref(msg);
    return bb;
}

grpc_byte_buffer *exe_event_exited(uint32_t cmd, const pm_executor_v1_Exited *ex)
{
    pm_executor_v1_RunEvent ev = pm_executor_v1_RunEvent_init_zero;
    ev.command = cmd;
    ev.has_exited = true;
    ev.exited = *ex;
    return encode_bb(pm_executor_v1_RunEvent_fields, &ev);
}

typedef struct {
    const exe_blob *v;
    size_t n;
} blobs_arg;

static bool cb_encode_blobs(pb_ostream_t *stream, const pb_field_t *field, void *const *arg)
{
    const blobs_arg *b = *arg;
    for (size_t i = 0; i < b->n; i++)
        if (!pb_encode_tag_for_field(stream, field) ||
            !pb_encode_string(stream, b->v[i].data, b->v[i].len))
            return false;
    return true;
}

/* Length of the well-formed UTF-8 sequence at p (1 to 4 bytes), or 0 when it is not one. */
static size_t utf8_seq(const uint8_t *p, size_t n)
{
    uint8_t c = p[0];
    size_t len;
    uint32_t cp;
    if (c < 0x80)
        return 1;
    if (c >= 0xc2 && c <= 0xdf) {
        len = 2;
        cp = c & 0x1f;
    } else if (c >= 0xe0 && c <= 0xef) {
        len = 3;
        cp = c & 0x0f;
    } else if (c >= 0xf0 && c <= 0xf4) {
        len = 4;
        cp = c & 0x07;
    } else {
        return 0;
    }
    if (n < len)
        return 0;
    for (size_t i = 1; i < len; i++) {
        if ((p[i] & 0xc0) != 0x80)
            return 0;
        cp = (cp << 6) | (p[i] & 0x3f);
    }
    /* Overlong forms, surrogates and values past U+10FFFF are not UTF-8. */
    if ((len == 3 && cp < 0x800) || (len == 4 && (cp < 0x10000 || cp > 0x10ffff)) ||
        (cp >= 0xd800 && cp <= 0xdfff))
        return 0;
    return len;
}

size_t exe_utf8_sanitize(const uint8_t *in, size_t n, uint8_t *out)
{
    size_t o = 0;
    for (size_t i = 0; i < n;) {
        size_t k = utf8_seq(in + i, n - i);
        if (k == 0) {
            memcpy(out + o, "\xef\xbf\xbd", 3); /* U+FFFD REPLACEMENT CHARACTER */
            o += 3;
            i++;
        } else {
            memcpy(out + o, in + i, k);
            o += k;
            i += k;
        }
    }
    return o;
}

/* Points b at a valid UTF-8 form of data: data itself, or a sanitized copy put in *owned. */
static int utf8_view(const uint8_t *data, size_t len, exe_blob *b, uint8_t **owned)
{
    *owned = NULL;
    b->data = data;
    b->len = len;
    for (size_t i = 0; i < len;) {
        size_t k = utf8_seq(data + i, len - i);
        if (k == 0) {
            *owned = malloc(3 * len);
            if (!*owned)
                return -ENOMEM;
            b->data = *owned;
            b->len = exe_utf8_sanitize(data, len, *owned);
            return 0;
        }
        i += k;
    }
    return 0;
}

grpc_byte_buffer *exe_legacy_result(bool result, const char *error, const exe_blob *outputs,
                                    size_t n)
{
    /* ExecResult's fields are proto3 strings, which every conforming client refuses to decode
     * unless they are valid UTF-8; invalid bytes become U+FFFD. */
    grpc_byte_buffer *bb = NULL;
    exe_blob *views = calloc(n + 1, sizeof *views);
    uint8_t **owned = calloc(n + 1, sizeof *owned);
    if (!views || !owned)
        goto out;
    for (size_t i = 0; i < n; i++)
        if (utf8_view(outputs[i].data, outputs[i].len, &views[i], &owned[i]) < 0)
            goto out;
    exe_blob err_view;
    if (utf8_view((const uint8_t *)error, error ? strlen(error) : 0, &err_view, &owned[n]) < 0)
        goto out;
    exec_ExecResult r = exec_ExecResult_init_zero;
    blob_arg e = {err_view.data, err_view.len};
    blobs_arg o = {views, n};
    r.result = result;
    if (e.len)
        r.errorMessage = (pb_callback_t){.funcs.encode = cb_encode_blob, .arg = &e};
    r.output = (pb_callback_t){.funcs.encode = cb_encode_blobs, .arg = &o};
    bb = encode_bb(exec_ExecResult_fields, &r);
out:
    for (size_t i = 0; owned && i <= n; i++)
        free(owned[i]);
    free(owned);
    free(views);
    return bb;
}

grpc_byte_buffer *exe_info_encode(const pm_executor_v1_InfoResponse *info)
{
    return encode_bb(pm_executor_v1_InfoResponse_fields, info);
}

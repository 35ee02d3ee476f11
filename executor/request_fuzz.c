/*
 * Fuzz target for the executor's request parser, the first code that touches a client's bytes:
 * every input is decoded both as a pm.executor.v1.RunRequest and as the legacy exec.ExecCommands,
 * and a decoded step is checked against the promises request.h makes to step.c (every string
 * NUL-terminated inside the arena, exactly one of shell or argv, argv NULL-terminated, env entries
 * KEY=VALUE, a refused request leaving a zeroed step) and then has the environment of each command
 * built and checked (later KEY wins, keys unique), so ASan/UBSan see every path a request can take
 * before a process is spawned. A broken promise aborts with a message, which is how a fuzzer
 * learns of it; this is test code, never linked into the daemon.
 *
 * Two ways to run it:
 *
 * - Standalone (PM_FUZZ_STANDALONE, the cc_test //executor:request_fuzz; CI also runs it under
 *   --config=asan): a deterministic mutation loop, fixed seed, over a seed corpus built here with
 *   protobuf-c (the other codec): bit flips, byte edits, insertions and deletions, corrupted
 *   length varints and wire types found by walking the protobuf structure, protobuf tokens put
 *   at field boundaries, repeated fields, truncation and splicing. Inputs that decode join the
 *   pool, a cheap stand-in for coverage feedback. The loop, its flags and file replay are
 *   //testing:fuzz_driver's (see fuzz_driver.h); the defaults here are --iterations 200000 and
 *   --seconds 20.
 *
 * - libFuzzer (clang, by hand; not part of the Bazel build), from the workspace root:
 *
 *     bazel build //protos:executor_nanopb //protos:exec_nanopb //executor:request_fuzz
 *     gen=$(bazel info bazel-bin)
 *     clang-14 -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
 *         -D_GNU_SOURCE -I. -I"$gen" executor/request_fuzz.c executor/request.c \
 *         testing/fuzz_driver.c "$gen"/protos/executor.pb.c "$gen"/protos/exec.pb.c \
 *         -lprotobuf-nanopb -lgrpc -lgpr -o /tmp/request_fuzz
 *     mkdir -p /tmp/request_corpus
 *     "$gen"/executor/request_fuzz --write-corpus /tmp/request_corpus
 *     /tmp/request_fuzz -max_total_time=300 -max_len=8192 /tmp/request_corpus
 *
 *   Debian's libclang-rt-14-dev provides libFuzzer. nanopb comes as a prebuilt library, so only
 *   request.c (the callbacks and validation) is instrumented for coverage; that is the code under
 *   test. A crash leaves crash-<sha1> in the current directory; replay it with either binary.
 */
#include "executor/request.h"
#include "testing/fuzz_driver.h"

#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The input being decoded, so that a failure can show it. */
static const uint8_t *cur_data;
static size_t cur_size;

/*
 * The fuzzer's only way to report a broken promise is to stop; libFuzzer then saves the input.
 * The input is also printed in hex (a test log is often all there is) and, under bazel test,
 * written to the test's undeclared outputs as request_fuzz-failure.bin for replay.
 */
static void fuzz_die(const char *kind, const char *fmt, ...)
    __attribute__((noreturn, format(printf, 2, 3)));

static void fuzz_die(const char *kind, const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "request_fuzz: %s decode: ", kind);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    fuzz_report_input_and_abort("request_fuzz", cur_data, cur_size);
}

/*
 * A base environment as environ might hold it: a duplicate key (the later one wins), an entry
 * without '=' (skipped) and one with an empty key, which the kernel allows.
 */
static char *const base_env[] = {
    "PATH=/usr/bin:/bin", "HOME=/root", "X=base", "NOEQUALS", "=empty-key", "X=base2", NULL,
};

/* True when p points at a NUL-terminated string that lies wholly in the step's used arena. */
static bool in_arena(const exe_step *s, const char *p)
{
    uintptr_t a = (uintptr_t)s->arena, x = (uintptr_t)p;
    if (x < a || x >= a + s->arena_used)
        return false;
    return memchr(p, '\0', a + s->arena_used - x) != NULL;
}

/* True when [p, p+n) lies wholly in the step's used arena. */
static bool range_in_arena(const exe_step *s, const void *p, size_t n)
{
    uintptr_t a = (uintptr_t)s->arena, x = (uintptr_t)p;
    return x >= a && x <= a + s->arena_used && n <= a + s->arena_used - x;
}

static void check_text(const char *kind, const exe_step *s, const char *p, const char *what,
                       size_t i)
{
    if (!in_arena(s, p))
        fuzz_die(kind, "command %zu: %s does not point into the arena", i, what);
    if (strlen(p) > EXE_MAX_ARG_STRLEN)
        fuzz_die(kind, "command %zu: %s longer than the kernel's limit was accepted", i, what);
}

static void check_strv(const char *kind, const exe_step *s, const exe_strv *v, bool is_env,
                       const char *what, size_t i)
{
    if (v->n == 0)
        return;
    if (!v->v || v->n >= v->cap || v->v[v->n] != NULL)
        fuzz_die(kind, "command %zu: %s is not NULL-terminated within its capacity", i, what);
    for (size_t j = 0; j < v->n; j++) {
        check_text(kind, s, v->v[j], what, i);
        if (is_env && (v->v[j][0] == '=' || !strchr(v->v[j], '=')))
            fuzz_die(kind, "command %zu: %s entry \"%.40s\" is not KEY=VALUE", i, what, v->v[j]);
    }
}

static size_t key_len(const char *entry)
{
    return (size_t)(strchr(entry, '=') - entry);
}

static bool same_key(const char *a, const char *b, size_t klen)
{
    return !strncmp(a, b, klen) && a[klen] == '=' && b[klen] == '=';
}

/* The last entry of env[0..n) with entry's key, or NULL. */
static const char *last_with_key(char *const *env, size_t n, const char *entry)
{
    size_t klen = key_len(entry);
    const char *found = NULL;
    for (size_t j = 0; j < n; j++)
        if (strchr(env[j], '=') && same_key(env[j], entry, klen))
            found = env[j];
    return found;
}

static size_t count(char *const *v)
{
    size_t n = 0;
    while (v && v[n])
        n++;
    return n;
}

/* Past this many entries the quadratic checks below would dominate the run; skip them. */
#define MAX_ENV_ORACLE 512

/*
 * Builds command i's environment and checks it against the documented merge: base (unless
 * clear_env) < step < command, a later KEY replacing an earlier one.
 */
static void check_env(const char *kind, const exe_step *s, size_t i)
{
    const exe_cmd *c = &s->cmds[i];
    char **env = exe_step_env(s, i, base_env, NULL);
    if (!env)
        fuzz_die(kind, "command %zu: exe_step_env returned NULL", i);
    size_t n = count(env);
    size_t nbase = s->clear_env ? 0 : count(base_env);
    if (n > nbase + s->env.n + c->env.n)
        fuzz_die(kind, "command %zu: %zu env entries from %zu inputs", i, n,
                 nbase + s->env.n + c->env.n);
    (void)exe_env_get(env, "PATH");
    (void)exe_env_get(env, "X");
    if (n > MAX_ENV_ORACLE || s->env.n + c->env.n > MAX_ENV_ORACLE) {
        free(env);
        return;
    }
    for (size_t j = 0; j < n; j++) {
        if (!strchr(env[j], '='))
            fuzz_die(kind, "command %zu: env entry \"%.40s\" has no '='", i, env[j]);
        for (size_t k = 0; k < j; k++)
            if (same_key(env[k], env[j], key_len(env[j])))
                fuzz_die(kind, "command %zu: key of \"%.40s\" appears twice", i, env[j]);
    }
    /* Each input entry must be visible, or be overridden by a later layer. */
    char *const *layers[] = {s->clear_env ? NULL : base_env, s->env.v, c->env.v};
    size_t sizes[] = {nbase, s->env.n, c->env.n};
    for (int l = 0; l < 3; l++) {
        for (size_t j = 0; j < sizes[l]; j++) {
            const char *e = layers[l][j];
            if (!strchr(e, '='))
                continue;
            const char *want = NULL;
            for (int m = 2; m >= l && !want; m--)
                want = last_with_key(layers[m], sizes[m], e);
            const char *got = last_with_key(env, n, e);
            if (got != want)
                fuzz_die(kind, "command %zu: for \"%.40s\" the env holds \"%.40s\", want \"%.40s\"",
                         i, e, got ? got : "(none)", want ? want : "(none)");
        }
    }
    free(env);
}

/* The promises of a successful decode, as step.c relies on them. */
static void check_step(const char *kind, const exe_step *s, bool legacy)
{
    if (s->ncmds == 0 || !s->cmds || s->ncmds > s->cmds_cap)
        fuzz_die(kind, "%zu commands accepted (capacity %zu)", s->ncmds, s->cmds_cap);
    if (!s->arena || s->arena_used > s->arena_cap)
        fuzz_die(kind, "arena used %zu of %zu", s->arena_used, s->arena_cap);
    if (s->sandbox_profile && strlen(s->sandbox_profile) > EXE_MAX_ARG_STRLEN)
        fuzz_die(kind, "sandbox_profile is longer than a text field may be");
    if (s->workdir)
        check_text(kind, s, s->workdir, "step workdir", 0);
    check_strv(kind, s, &s->env, true, "step env", 0);
    for (size_t i = 0; i < s->ncmds; i++) {
        const exe_cmd *c = &s->cmds[i];
        /* request.h: "shell set: run by /bin/sh -c; NULL: argv", and step.c picks by exactly
         * that test, so a command carrying both would silently run the shell and drop argv (an
         * explicitly empty shell beside an argv once did). */
        bool shell_set = c->shell != NULL;
        if (shell_set == (c->argv.n > 0))
            fuzz_die(kind, "command %zu: shell %s%.40s%s and %zu argv words; step.c would run %s",
                     i, c->shell ? "\"" : "", c->shell ? c->shell : "NULL", c->shell ? "\"" : "",
                     c->argv.n, c->shell ? "the shell line and drop argv" : "nothing");
        if (c->shell)
            check_text(kind, s, c->shell, "shell", i);
        check_strv(kind, s, &c->argv, false, "argv", i);
        if (c->argv.n > 0 && c->argv.v[0][0] == '\0')
            fuzz_die(kind, "command %zu: empty argv[0] accepted", i);
        check_strv(kind, s, &c->env, true, "env", i);
        if (c->workdir)
            check_text(kind, s, c->workdir, "workdir", i);
        if (c->stdin_len > 0 && !range_in_arena(s, c->stdin_data, c->stdin_len))
            fuzz_die(kind, "command %zu: stdin_data outside the arena", i);
        if (legacy && (!c->shell || c->env.n || c->workdir || c->stdin_len || c->timeout_ms))
            fuzz_die(kind, "command %zu: a legacy command is more than a shell line", i);
    }
    for (size_t i = 0; i < s->ncmds; i++) {
        check_env(kind, s, i);
        /* Both sides of clear_env, whatever the request said. */
        exe_step flipped = *s;
        flipped.clear_env = !s->clear_env;
        check_env(kind, &flipped, i);
    }
}

/* A refused request: an error message, and a zeroed step (server.c frees the step again later). */
static void check_refusal(const char *kind, exe_step *s, int rc, const char *err, size_t errlen)
{
    static const exe_step zero;
    if (rc != -EINVAL && rc != -ENOMEM)
        fuzz_die(kind, "returned %d", rc);
    if (!memchr(err, '\0', errlen))
        fuzz_die(kind, "error message is not NUL-terminated");
    if (errlen > 1 && err[0] == '\0')
        fuzz_die(kind, "refused without an error message");
    if (memcmp(s, &zero, sizeof *s) != 0)
        fuzz_die(kind, "a refused request left the step non-zero");
    exe_step_free(s);
}

/* Runs one input through both decoders; tells which accepted it. */
static void fuzz_one(const uint8_t *data, size_t size, bool *run_ok, bool *legacy_ok)
{
    exe_step s;
    char err[512];
    cur_data = data;
    cur_size = size;
    int rc = exe_step_decode_run(&s, data, size, err, sizeof err);
    *run_ok = rc == 0;
    if (rc == 0) {
        check_step("RunRequest", &s, false);
        exe_step_free(&s);
    } else {
        check_refusal("RunRequest", &s, rc, err, sizeof err);
    }
    /* A short buffer for the legacy message exercises the truncation of every message. */
    char small[24];
    rc = exe_step_decode_legacy(&s, data, size, small, sizeof small);
    *legacy_ok = rc == 0;
    if (rc == 0) {
        check_step("ExecCommands", &s, true);
        exe_step_free(&s);
    } else {
        check_refusal("ExecCommands", &s, rc, small, sizeof small);
    }
}

/* Which decoders accepted the last input, for the standalone driver. */
static bool last_run_ok, last_legacy_ok;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_one(data, size, &last_run_ok, &last_legacy_ok);
    return 0;
}

#ifdef PM_FUZZ_STANDALONE

#include "protos/executor.pb-c.h"

/* Inputs stay small: the parser's paths are all reachable within a few KiB. */
#define FUZZ_MAX_INPUT 8192
#define POOL_MAX 512
#define MAX_FIELDS 128

static void pool_add_request(fuzz_pool *p, const Pm__Executor__V1__RunRequest *req)
{
    size_t len = pm__executor__v1__run_request__get_packed_size(req);
    uint8_t *buf = fuzz_xmalloc(len);
    pm__executor__v1__run_request__pack(req, buf);
    fuzz_pool_add(p, buf, len);
    free(buf);
}

/* ---- protobuf by hand: the legacy message and the structure-aware mutations ---------------- */

static size_t put_varint(uint8_t *out, uint64_t v)
{
    size_t n = 0;
    do {
        out[n] = (uint8_t)(v & 0x7f);
        v >>= 7;
        if (v)
            out[n] |= 0x80;
        n++;
    } while (v);
    return n;
}

/* Reads a varint of at most 10 bytes from b[pos..end); returns its length, 0 if malformed. */
static size_t get_varint(const uint8_t *b, size_t pos, size_t end, uint64_t *v)
{
    *v = 0;
    for (size_t i = 0; i < 10 && pos + i < end; i++) {
        *v |= (uint64_t)(b[pos + i] & 0x7f) << (7 * i);
        if (!(b[pos + i] & 0x80))
            return i + 1;
    }
    return 0;
}

/* Appends a length-delimited field (tag, length, bytes) to out; returns the new length. */
static size_t put_bytes_field(uint8_t *out, size_t len, unsigned field, const void *p, size_t n)
{
    len += put_varint(out + len, (uint64_t)field << 3 | 2);
    len += put_varint(out + len, n);
    memcpy(out + len, p, n);
    return len + n;
}

static void pool_add_legacy(fuzz_pool *p, const char *const *cmds, size_t n)
{
    uint8_t buf[FUZZ_MAX_INPUT];
    size_t len = 0;
    for (size_t i = 0; i < n; i++)
        len = put_bytes_field(buf, len, 1, cmds[i], strlen(cmds[i]));
    fuzz_pool_add(p, buf, len);
}

/* Where a field sits: its tag, and for length-delimited ones the length varint. */
typedef struct {
    size_t start, tag_len, len_pos, len_len, end;
} field_loc;

/* Records the fields of b[start..end), descending into length-delimited ones that parse. */
static void walk(const uint8_t *b, size_t start, size_t end, int depth, field_loc *out, size_t *n)
{
    size_t pos = start;
    while (pos < end && *n < MAX_FIELDS) {
        uint64_t tag, v;
        size_t tl = get_varint(b, pos, end, &tag);
        if (!tl || tag >> 3 == 0)
            return;
        field_loc f = {pos, tl, 0, 0, 0};
        size_t p = pos + tl;
        switch (tag & 7) {
        case 0: {
            size_t vl = get_varint(b, p, end, &v);
            if (!vl)
                return;
            p += vl;
            break;
        }
        case 1:
            p += 8;
            break;
        case 5:
            p += 4;
            break;
        case 2: {
            size_t ll = get_varint(b, p, end, &v);
            if (!ll || v > end - p - ll)
                return;
            f.len_pos = p;
            f.len_len = ll;
            p += ll + (size_t)v;
            break;
        }
        default:
            return;
        }
        if (p > end)
            return;
        f.end = p;
        out[(*n)++] = f;
        if (f.len_len && depth < 3)
            walk(b, f.len_pos + f.len_len, f.end, depth + 1, out, n);
        pos = p;
    }
}

/* Replaces b[pos..pos+old) with rep[0..n), keeping the input under FUZZ_MAX_INPUT. */
static void replace(uint8_t *b, size_t *len, size_t pos, size_t old, const uint8_t *rep, size_t n)
{
    if (*len - old + n > FUZZ_MAX_INPUT)
        return;
    memmove(b + pos + n, b + pos + old, *len - pos - old);
    if (n)
        memcpy(b + pos, rep, n);
    *len = *len - old + n;
}

/* Tokens worth inserting at a field boundary: empty and tiny fields of each tag the messages
 * use, wire types the schema does not, oversized and overlong lengths, a NUL in a string. */
static const struct {
    uint8_t b[12];
    size_t n;
} tokens[] = {
    {{0x0a, 0x00}, 2},
    {{0x12, 0x00}, 2},
    {{0x1a, 0x00}, 2},
    {{0x22, 0x00}, 2},
    {{0x32, 0x00}, 2},
    {{0x42, 0x00}, 2},
    {{0x12, 0x01, 'x'}, 3},
    {{0x1a, 0x03, 'K', '=', 'V'}, 5},
    {{0x1a, 0x02, '=', 'V'}, 4},
    {{0x0a, 0x02, 0x12, 0x00}, 4},
    {{0x0a, 0x03, 0x12, 0x01, 's'}, 5},
    {{0x0a, 0x02, 0x0a, 0x00}, 4},
    {{0x12, 0x02, 'a', 0x00}, 4},
    {{0x08, 0x01}, 2},
    {{0x08, 0xff, 0xff, 0xff, 0xff, 0x0f}, 6},
    {{0x28, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01}, 11},
    {{0x18, 0x02}, 2},
    {{0x0d, 'a', 'b', 'c', 'd'}, 5},
    {{0x09, 0, 0, 0, 0, 0, 0, 0, 0}, 9},
    {{0x0b}, 1},
    {{0x0c}, 1},
    {{0x0a, 0xff, 0xff, 0xff, 0xff, 0x0f}, 6},
    {{0x0a, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80}, 11},
    {{0x42, 0x40}, 2},
    {{0xfa, 0xff, 0xff, 0xff, 0x0f, 0x00}, 6},
};
#define NTOKENS (sizeof tokens / sizeof tokens[0])

static uint64_t new_length(uint64_t old, size_t len)
{
    switch (fuzz_below(10)) {
    case 0:
        return 0;
    case 1:
        return old + 1;
    case 2:
        return old ? old - 1 : 0;
    case 3:
        return old * 2 + 1;
    case 4:
        return len;
    case 5:
        return 0x7fffffffu;
    case 6:
        return 0xffffffffu;
    case 7:
        return UINT64_MAX;
    case 8:
        return (uint64_t)1 << 63;
    default:
        return fuzz_below(len + 16);
    }
}

/* One mutation of b[0..*len) (room for FUZZ_MAX_INPUT bytes); other is a second input to splice. */
static void mutate(uint8_t *b, size_t *len, const fuzz_blob *other)
{
    static const uint8_t interesting[] = {0x00, 0x01, 0x7f, 0x80, 0xff, '=', 0x0a, 0x12, 0x08};
    field_loc f[MAX_FIELDS];
    size_t nf = 0;
    walk(b, 0, *len, 0, f, &nf);
    uint8_t tmp[16];
    switch (fuzz_below(12)) {
    case 0: /* flip one bit */
        if (*len)
            b[fuzz_below(*len)] ^= (uint8_t)(1u << fuzz_below(8));
        break;
    case 1: /* set a byte to something protobuf cares about */
        if (*len)
            b[fuzz_below(*len)] = fuzz_below(2) ? interesting[fuzz_below(sizeof interesting)]
                                                : (uint8_t)fuzz_below(256);
        break;
    case 2: { /* insert random bytes */
        size_t n = 1 + fuzz_below(8);
        for (size_t i = 0; i < n; i++)
            tmp[i] = (uint8_t)fuzz_below(256);
        replace(b, len, fuzz_below(*len + 1), 0, tmp, n);
        break;
    }
    case 3: { /* delete a range */
        if (!*len)
            break;
        size_t pos = fuzz_below(*len);
        size_t n = 1 + fuzz_below(*len - pos < 16 ? *len - pos : 16);
        replace(b, len, pos, n, NULL, 0);
        break;
    }
    case 4: { /* rewrite a length, sometimes with a non-minimal varint */
        size_t cand[MAX_FIELDS], nc = 0;
        for (size_t i = 0; i < nf; i++)
            if (f[i].len_len)
                cand[nc++] = i;
        if (!nc)
            break;
        const field_loc *x = &f[cand[fuzz_below(nc)]];
        uint64_t old;
        get_varint(b, x->len_pos, *len, &old);
        size_t n = put_varint(tmp, new_length(old, *len));
        if (fuzz_below(4) == 0 && n < 10) {
            tmp[n - 1] |= 0x80;
            tmp[n++] = 0x00;
        }
        replace(b, len, x->len_pos, x->len_len, tmp, n);
        break;
    }
    case 5: /* change a tag's wire type (the schema has only varints and strings) */
        if (nf)
            b[f[fuzz_below(nf)].start] ^= (uint8_t)(1 + fuzz_below(7));
        break;
    case 6: { /* a token at a field boundary */
        size_t t = fuzz_below(NTOKENS);
        const field_loc *x = nf ? &f[fuzz_below(nf)] : NULL;
        if (x && x->len_len && fuzz_below(2)) {
            /* Into a submessage (a Command), at its start or end, its length grown to match,
             * so the token lands as a field of the Command rather than as noise. */
            uint64_t old;
            get_varint(b, x->len_pos, *len, &old);
            size_t payload = x->len_pos + x->len_len;
            if (*len + tokens[t].n + 10 > FUZZ_MAX_INPUT)
                break;
            replace(b, len, fuzz_below(2) ? payload : x->end, 0, tokens[t].b, tokens[t].n);
            size_t n = put_varint(tmp, old + tokens[t].n);
            replace(b, len, x->len_pos, x->len_len, tmp, n);
        } else {
            replace(b, len, x ? (fuzz_below(2) ? x->start : x->end) : 0, 0, tokens[t].b,
                    tokens[t].n);
        }
        break;
    }
    case 7: { /* repeat a whole field, growing a repeated list */
        if (!nf)
            break;
        const field_loc *x = &f[fuzz_below(nf)];
        size_t n = x->end - x->start, copies = 1 + fuzz_below(12);
        uint8_t *copy = fuzz_xmalloc(n);
        memcpy(copy, b + x->start, n);
        for (size_t i = 0; i < copies; i++)
            replace(b, len, x->end, 0, copy, n);
        free(copy);
        break;
    }
    case 8: /* truncate */
        if (*len)
            *len = fuzz_below(*len);
        break;
    case 9: { /* splice: our head, the other's tail */
        size_t head = fuzz_below(*len + 1), from = fuzz_below(other->len + 1);
        size_t n = other->len - from;
        if (head + n > FUZZ_MAX_INPUT)
            n = FUZZ_MAX_INPUT - head;
        memcpy(b + head, other->data + from, n);
        *len = head + n;
        break;
    }
    case 10: { /* insert a field of the other input */
        field_loc g[MAX_FIELDS];
        size_t ng = 0;
        walk(other->data, 0, other->len, 0, g, &ng);
        if (!ng)
            break;
        const field_loc *x = &g[fuzz_below(ng)];
        size_t pos = nf ? f[fuzz_below(nf)].start : 0;
        replace(b, len, pos, 0, other->data + x->start, x->end - x->start);
        break;
    }
    default: { /* remove a whole field */
        if (!nf)
            break;
        const field_loc *x = &f[fuzz_below(nf)];
        replace(b, len, x->start, x->end - x->start, NULL, 0);
        break;
    }
    }
}

/* ---- the seed corpus ------------------------------------------------------------------------ */

static void build_seeds(fuzz_pool *p)
{
    typedef Pm__Executor__V1__Command Cmd;
    typedef Pm__Executor__V1__RunRequest Req;

    /* 1: every field, several commands; argv and env long enough to grow their arrays. */
    Cmd c0 = PM__EXECUTOR__V1__COMMAND__INIT, c1 = c0, c2 = c0, c3 = c0, c4 = c0;
    char *env0[] = {"X=1", "Y=2", "X=3"};
    c0.shell = "echo $X; cat";
    c0.n_env = 3;
    c0.env = env0;
    c0.timeout_ms = 50;
    c0.workdir = "/tmp";
    c0.stdin_data.data = (uint8_t *)"a\0b\xff";
    c0.stdin_data.len = 4;
    char *argv1[] = {"printf", "%s\\n", "two words", "", "--flag=\xc3\xa9"};
    char *env1[] = {"PATH=/usr/bin", "EMPTY="};
    c1.n_argv = 5;
    c1.argv = argv1;
    c1.n_env = 2;
    c1.env = env1;
    char *argv2[12];
    char words[12][32];
    for (int i = 0; i < 12; i++) {
        snprintf(words[i], sizeof words[i], "a%d", i);
        argv2[i] = words[i];
    }
    c2.n_argv = 12;
    c2.argv = argv2;
    c3.shell = "exit 3";
    char *env4[10];
    char kv[10][32];
    for (int i = 0; i < 10; i++) {
        snprintf(kv[i], sizeof kv[i], "K%d=%d", i, i);
        env4[i] = kv[i];
    }
    c4.shell = "true";
    c4.n_env = 10;
    c4.env = env4;
    Cmd *cmds[] = {&c0, &c1, &c2, &c3, &c4};
    char *senv[] = {"Z=3", "X=step", "PATH=/bin:/usr/bin", "A=B=C"};
    Req r = PM__EXECUTOR__V1__RUN_REQUEST__INIT;
    r.n_commands = 5;
    r.commands = cmds;
    r.n_env = 4;
    r.env = senv;
    r.workdir = "/";
    r.timeout_ms = 7;
    r.output_cap = 1234;
    r.continue_on_error = 1;
    r.sandbox_profile = "unconfined";
    pool_add_request(p, &r);

    /* 2: the smallest useful request. */
    Cmd ls = PM__EXECUTOR__V1__COMMAND__INIT;
    char *ls_argv[] = {"ls"};
    ls.n_argv = 1;
    ls.argv = ls_argv;
    Cmd *one[] = {&ls};
    Req r2 = PM__EXECUTOR__V1__RUN_REQUEST__INIT;
    r2.n_commands = 1;
    r2.commands = one;
    pool_add_request(p, &r2);

    /* 3: clear_env, and the same key at every layer. */
    Cmd e = PM__EXECUTOR__V1__COMMAND__INIT;
    char *eenv[] = {"X=cmd", "PATH=/cmd", "X=cmd2"};
    e.shell = "env";
    e.n_env = 3;
    e.env = eenv;
    Cmd *ecmds[] = {&e};
    char *estep[] = {"X=step", "HOME=/step", "X=step2"};
    Req r3 = PM__EXECUTOR__V1__RUN_REQUEST__INIT;
    r3.n_commands = 1;
    r3.commands = ecmds;
    r3.n_env = 3;
    r3.env = estep;
    r3.clear_env = 1;
    pool_add_request(p, &r3);

    /* 4: nine commands, past the command array's first two capacities. */
    Cmd many[9];
    Cmd *manyp[9];
    char lines[9][32];
    for (int i = 0; i < 9; i++) {
        pm__executor__v1__command__init(&many[i]);
        snprintf(lines[i], sizeof lines[i], "echo %d", i);
        many[i].shell = lines[i];
        many[i].timeout_ms = (uint32_t)i * 1000;
        manyp[i] = &many[i];
    }
    Req r4 = PM__EXECUTOR__V1__RUN_REQUEST__INIT;
    r4.n_commands = 9;
    r4.commands = manyp;
    r4.timeout_ms = UINT32_MAX;
    r4.output_cap = UINT64_MAX;
    pool_add_request(p, &r4);

    /* 5: multi-byte lengths: 300 bytes of binary stdin and a 200-byte shell line. */
    uint8_t bin[300];
    for (size_t i = 0; i < sizeof bin; i++)
        bin[i] = (uint8_t)(i * 7);
    char longline[201];
    memset(longline, 'x', 200);
    longline[200] = '\0';
    Cmd b = PM__EXECUTOR__V1__COMMAND__INIT;
    b.shell = longline;
    b.stdin_data.data = bin;
    b.stdin_data.len = sizeof bin;
    Cmd *bcmds[] = {&b};
    Req r5 = PM__EXECUTOR__V1__RUN_REQUEST__INIT;
    r5.n_commands = 1;
    r5.commands = bcmds;
    r5.workdir = "/var/tmp";
    pool_add_request(p, &r5);

    /* 6, 7: the legacy message, which has one repeated string. */
    static const char *const legacy1[] = {"echo hello", "uname -a", "false"};
    pool_add_legacy(p, legacy1, 3);
    static const char *const legacy2[] = {"printf '%s' \"$HOME\" | tr a-z A-Z",
                                          "true",
                                          "x",
                                          "y",
                                          "z",
                                          "sleep 0",
                                          "echo 7",
                                          "echo 8",
                                          "echo 9"};
    pool_add_legacy(p, legacy2, 9);
}

/* Inputs that have tripped parsers like this one; each runs once before the loop. */
static void run_edge_cases(void)
{
    static const struct {
        uint8_t b[24];
        size_t n;
    } cases[] = {
        {{0}, 0},
        {{0x0a}, 1},
        {{0x0a, 0x00}, 2},
        {{0x0a, 0x02, 0x12, 0x00}, 4},
        {{0x0a, 0x04, 0x12, 0x02, 0x00, 0x00}, 6},
        {{0x0a, 0xff, 0xff, 0xff, 0xff, 0x0f}, 6},
        {{0x0a, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01}, 11},
        {{0x0a, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x00}, 12},
        {{0x0b, 0x0c}, 2},
        {{0x0a, 0x03, 0x0a, 0x01, 's', 0x42, 0x40}, 7},
        {{0x0a, 0x05, 0x0d, 'e', 'c', 'h', 'o'}, 7},
        {{0x0a, 0x02, 0x08, 0x41}, 4},
        {{0x0a, 0x03, 0x0a, 0x01, 's', 0x12, 0x02, '=', 'x'}, 9},
        {{0x0a, 0x03, 0x12, 0x01, 's', 0x1a, 0x01, '='}, 8},
        {{0x0a, 0x03, 0x12, 0x01, 's', 0x12, 0x01, 'K'}, 8},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        /* An exact-size heap copy, so ASan sees a read past the end. */
        uint8_t *copy = fuzz_xmalloc(cases[i].n);
        memcpy(copy, cases[i].b, cases[i].n);
        LLVMFuzzerTestOneInput(copy, cases[i].n);
        free(copy);
    }
}

static uint64_t run_ok_n, legacy_ok_n;

static bool keep(void)
{
    run_ok_n += last_run_ok;
    legacy_ok_n += last_legacy_ok;
    /* Almost any run of strings is a valid ExecCommands; were those all kept, they would crowd
     * the RunRequests out of the pool. */
    return last_run_ok || (last_legacy_ok && fuzz_below(64) == 0);
}

static void describe(const char *path, size_t len)
{
    printf("%s: %zu bytes, RunRequest %s, ExecCommands %s\n", path, len,
           last_run_ok ? "accepted" : "refused", last_legacy_ok ? "accepted" : "refused");
}

static void summary(FILE *out)
{
    fprintf(out, "RunRequest accepted %llu, ExecCommands accepted %llu",
            (unsigned long long)run_ok_n, (unsigned long long)legacy_ok_n);
}

int main(int argc, char **argv)
{
    static const fuzz_target t = {
        .name = "request_fuzz",
        .max_input = FUZZ_MAX_INPUT,
        .iterations = 200000,
        .seconds = 20,
        .seed = 0x706d2d66757a7aull,
        .seed_ext = "",
        .build_seeds = build_seeds,
        .run_edge_cases = run_edge_cases,
        .mutate = mutate,
        .keep = keep,
        .describe = describe,
        .summary = summary,
    };
    return fuzz_standalone_main(argc, argv, &t);
}

#endif /* PM_FUZZ_STANDALONE */

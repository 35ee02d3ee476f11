/*
 * Fuzz target for the profile loader's two layers, which read a user's file: the strict JSON
 * parser and the OCI/Docker profile builder on top of it. Every input is parsed twice (default
 * limits and tight ones) and the result checked against promises json.h makes: a refusal leaves
 * no document and an error whose line:column matches its byte offset (recounted here
 * independently); an accepted document has only valid UTF-8 strings, consistent child counts,
 * numbers whose flags and magnitude match their text, no duplicate keys, and no more depth or
 * values than allowed; and printed back as JSON it parses to the same tree, printing the same
 * bytes again. Then the input is loaded as a seccomp profile with three sets of kept
 * capabilities, in strict and lenient mode: a refusal must leave no context and a message naming
 * the source, a success an empty message and a context whose BPF exports. A broken promise
 * aborts with a message, which is how a fuzzer learns of it; this is test code only.
 *
 * Two ways to run it:
 *
 * - Standalone (PM_FUZZ_STANDALONE, the cc_test //sandbox/oci:json_fuzz; also under
 *   --config=asan): a deterministic mutation loop, fixed seed, over built-in seeds plus the files
 *   given after --seeds (the BUILD passes testdata/): bit flips, byte edits, JSON and profile
 *   tokens inserted or put in place of strings and numbers, deep nesting, range deletion and
 *   duplication, truncation and splicing. Inputs that parse join the pool, a cheap stand-in for
 *   coverage feedback. The loop, its flags and file replay are //testing:fuzz_driver's (see
 *   fuzz_driver.h); the defaults here are --iterations 1000000 and --seconds 20.
 *
 * - libFuzzer (clang, by hand; not part of the Bazel build), from the workspace root:
 *
 *     clang-14 -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
 *         -D_GNU_SOURCE -I. sandbox/oci/json_fuzz.c sandbox/oci/json.c sandbox/oci/oci.c \
 *         sandbox/oci/oci_fields.c testing/fuzz_driver.c testing/fuzz_json.c -lseccomp \
 *         -o /tmp/json_fuzz
 *     clang-14 -O1 -DPM_FUZZ_STANDALONE -D_GNU_SOURCE -I. sandbox/oci/json_fuzz.c \
 *         sandbox/oci/json.c sandbox/oci/oci.c sandbox/oci/oci_fields.c testing/fuzz_driver.c \
 *         testing/fuzz_json.c -lseccomp -o /tmp/json_fuzz_seeds
 *     mkdir -p /tmp/json_corpus
 *     /tmp/json_fuzz_seeds --write-corpus /tmp/json_corpus \
 *         --seeds sandbox/oci/testdata/[a-z]*.json
 *     /tmp/json_fuzz -max_total_time=300 -max_len=16384 -dict=sandbox/oci/json_fuzz.dict \
 *         /tmp/json_corpus
 *
 *   Debian's libclang-rt-14-dev provides libFuzzer. libseccomp is a prebuilt library, so only
 *   the parser and the builder are instrumented for coverage; they are the code under test. A
 *   crash leaves crash-<sha1> in the current directory; replay it with either binary.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "sandbox/oci/json.h"
#include "testing/fuzz_driver.h"
#include "testing/fuzz_json.h"
#include "sandbox/oci/oci.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const uint8_t *cur_data;
static size_t cur_size;

static void fuzz_die(const char *fmt, ...) __attribute__((noreturn, format(printf, 1, 2)));

/* Reports a broken promise with the input (in hex, and as a file under bazel test) and aborts. */
static void fuzz_die(const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "json_fuzz: ");
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    fuzz_report_input_and_abort("json_fuzz", cur_data, cur_size);
}

/* ---- the parser's promises ---- */

/*
 * Line and column of byte offset off, counted the way json.h defines them. A cursor makes a walk
 * over a tree linear: values come in document order, so each count continues the last one.
 */
typedef struct {
    size_t off;
    unsigned line, col;
} cursor;

static void cursor_init(cursor *cu)
{
    cu->off = cur_size >= 3 && !memcmp(cur_data, "\xEF\xBB\xBF", 3) ? 3 : 0;
    cu->line = cu->col = 1;
}

static void cursor_to(cursor *cu, size_t off, unsigned *line, unsigned *col)
{
    if (off < cu->off)
        cursor_init(cu);
    for (size_t i = cu->off; i < off; i++) {
        if (cur_data[i] == '\n') {
            cu->line++;
            cu->col = 1;
        } else if ((cur_data[i] & 0xC0) != 0x80) {
            cu->col++;
        }
    }
    if (off > cu->off)
        cu->off = off;
    *line = cu->line;
    *col = cu->col;
}

static void recount(size_t off, unsigned *line, unsigned *col)
{
    cursor cu;
    cursor_init(&cu);
    cursor_to(&cu, off, line, col);
}

/* Valid UTF-8 by RFC 3629, checked by decoding (a second opinion on json.c's table). */
static bool utf8_valid(const unsigned char *s, size_t n)
{
    for (size_t i = 0; i < n;) {
        unsigned c = s[i];
        size_t k;
        uint32_t cp;
        if (c < 0x80) {
            i++;
            continue;
        } else if ((c & 0xE0) == 0xC0) {
            k = 1;
            cp = c & 0x1F;
        } else if ((c & 0xF0) == 0xE0) {
            k = 2;
            cp = c & 0x0F;
        } else if ((c & 0xF8) == 0xF0) {
            k = 3;
            cp = c & 0x07;
        } else {
            return false;
        }
        for (size_t j = 1; j <= k; j++) {
            if (i + j >= n || (s[i + j] & 0xC0) != 0x80)
                return false;
            cp = cp << 6 | (s[i + j] & 0x3F);
        }
        static const uint32_t min[] = {0, 0x80, 0x800, 0x10000};
        if (cp < min[k] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
            return false;
        i += k + 1;
    }
    return true;
}

static void check_number(const sbx_json *v)
{
    const char *t = v->u.num.text;
    if (!t || strlen(t) != v->u.num.len || !v->u.num.len)
        fuzz_die("number text missing or of the wrong length");
    bool neg = t[0] == '-';
    bool not_int = strpbrk(t, ".eE") != NULL;
    unsigned want = (neg ? SBX_JSON_NUM_NEGATIVE : 0) | (not_int ? SBX_JSON_NUM_NOT_INT : 0);
    uint64_t mag = 0;
    bool big = false;
    if (!not_int)
        for (const char *p = t + neg; *p; p++) {
            if (*p < '0' || *p > '9')
                fuzz_die("integer text \"%s\" has a non-digit", t);
            if (mag > (UINT64_MAX - (uint64_t)(*p - '0')) / 10)
                big = true;
            else if (!big)
                mag = mag * 10 + (uint64_t)(*p - '0');
        }
    if (big)
        want |= SBX_JSON_NUM_TOO_BIG;
    if (v->u.num.flags != want)
        fuzz_die("number \"%s\": flags %u, expected %u", t, v->u.num.flags, want);
    if (!not_int && !big && v->u.num.magnitude != mag)
        fuzz_die("number \"%s\": magnitude %llu", t, (unsigned long long)v->u.num.magnitude);
    if (t[neg] == '0' && t[neg + 1] >= '0' && t[neg + 1] <= '9')
        fuzz_die("number \"%s\" with a leading zero was accepted", t);
}

/* Walks an accepted tree; returns the number of values, checks depth against max_depth. */
static size_t check_tree(cursor *cu, const sbx_json *v, bool in_object, unsigned depth,
                         unsigned max_depth)
{
    if (v->line < 1 || v->col < 1 || v->offset >= cur_size)
        fuzz_die("value with position %u:%u offset %zu", v->line, v->col, v->offset);
    unsigned l, c;
    cursor_to(cu, v->offset, &l, &c);
    if (l != v->line || c != v->col)
        fuzz_die("value at offset %zu says %u:%u, recount says %u:%u", v->offset, v->line, v->col,
                 l, c);
    if (in_object != (v->key != NULL))
        fuzz_die("member name %s where it %s", v->key ? "present" : "missing",
                 in_object ? "belongs" : "does not belong");
    if (v->key && (v->key[v->key_len] != '\0' || !utf8_valid((const void *)v->key, v->key_len)))
        fuzz_die("member name not terminated or not UTF-8");
    size_t count = 1;
    switch (v->type) {
    case SBX_JSON_NULL:
    case SBX_JSON_FALSE:
    case SBX_JSON_TRUE:
        break;
    case SBX_JSON_NUMBER:
        check_number(v);
        break;
    case SBX_JSON_STRING:
        if (!v->u.str.s || v->u.str.s[v->u.str.len] != '\0' ||
            !utf8_valid((const void *)v->u.str.s, v->u.str.len))
            fuzz_die("string not terminated or not UTF-8");
        break;
    case SBX_JSON_ARRAY:
    case SBX_JSON_OBJECT: {
        if (depth + 1 > max_depth)
            fuzz_die("depth %u over the limit %u was accepted", depth + 1, max_depth);
        size_t n = 0;
        bool obj = v->type == SBX_JSON_OBJECT;
        for (const sbx_json *k = v->u.kids.first; k; k = k->next, n++) {
            count += check_tree(cu, k, obj, depth + 1, max_depth);
            /* Quadratic, so only for small objects; json_test covers large ones. */
            if (!obj || v->u.kids.n > 64)
                continue;
            for (const sbx_json *e = v->u.kids.first; e != k; e = e->next)
                if (e->key_len == k->key_len && !memcmp(e->key, k->key, k->key_len))
                    fuzz_die("duplicate key \"%.40s\" was accepted", k->key);
            if (strlen(k->key) == k->key_len && sbx_json_get(v, k->key) != k)
                fuzz_die("sbx_json_get does not find member \"%.40s\"", k->key);
        }
        if (n != v->u.kids.n)
            fuzz_die("container says %zu children, list has %zu", v->u.kids.n, n);
        break;
    }
    default:
        fuzz_die("value of unknown type %d", (int)v->type);
    }
    return count;
}

typedef struct {
    char *p;
    size_t len, cap;
} out_buf;

static void put(out_buf *o, const void *s, size_t n)
{
    if (o->cap - o->len < n) {
        size_t cap = o->cap ? o->cap : 256;
        while (cap - o->len < n)
            cap *= 2;
        char *np = realloc(o->p, cap);
        if (!np)
            fuzz_die("out of memory while printing");
        o->p = np;
        o->cap = cap;
    }
    memcpy(o->p + o->len, s, n);
    o->len += n;
}

static void put_string(out_buf *o, const char *s, size_t n)
{
    put(o, "\"", 1);
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '"' || c == '\\') {
            char e[2] = {'\\', (char)c};
            put(o, e, 2);
        } else if (c < 0x20) {
            char e[8];
            snprintf(e, sizeof e, "\\u%04x", c);
            put(o, e, 6);
        } else {
            put(o, &s[i], 1);
        }
    }
    put(o, "\"", 1);
}

/* Prints a tree as compact JSON. */
static void print_json(out_buf *o, const sbx_json *v)
{
    switch (v->type) {
    case SBX_JSON_NULL:
        put(o, "null", 4);
        break;
    case SBX_JSON_FALSE:
        put(o, "false", 5);
        break;
    case SBX_JSON_TRUE:
        put(o, "true", 4);
        break;
    case SBX_JSON_NUMBER:
        put(o, v->u.num.text, v->u.num.len);
        break;
    case SBX_JSON_STRING:
        put_string(o, v->u.str.s, v->u.str.len);
        break;
    case SBX_JSON_ARRAY:
    case SBX_JSON_OBJECT:
        put(o, v->type == SBX_JSON_ARRAY ? "[" : "{", 1);
        for (const sbx_json *k = v->u.kids.first; k; k = k->next) {
            if (k != v->u.kids.first)
                put(o, ",", 1);
            if (v->type == SBX_JSON_OBJECT) {
                put_string(o, k->key, k->key_len);
                put(o, ":", 1);
            }
            print_json(o, k);
        }
        put(o, v->type == SBX_JSON_ARRAY ? "]" : "}", 1);
        break;
    }
}

static bool same_tree(const sbx_json *a, const sbx_json *b)
{
    if (a->type != b->type || a->key_len != b->key_len ||
        (a->key && memcmp(a->key, b->key, a->key_len)))
        return false;
    switch (a->type) {
    case SBX_JSON_NUMBER:
        return a->u.num.len == b->u.num.len && !strcmp(a->u.num.text, b->u.num.text) &&
               a->u.num.flags == b->u.num.flags && a->u.num.magnitude == b->u.num.magnitude;
    case SBX_JSON_STRING:
        return a->u.str.len == b->u.str.len && !memcmp(a->u.str.s, b->u.str.s, a->u.str.len);
    case SBX_JSON_ARRAY:
    case SBX_JSON_OBJECT: {
        if (a->u.kids.n != b->u.kids.n)
            return false;
        const sbx_json *x = a->u.kids.first, *y = b->u.kids.first;
        for (; x && y; x = x->next, y = y->next)
            if (!same_tree(x, y))
                return false;
        return !x && !y;
    }
    default:
        return true;
    }
}

static void check_refusal(int rc, const sbx_json_doc *doc, const sbx_json_error *err)
{
    if (rc != -EINVAL && rc != -EFBIG && rc != -ENOMEM)
        fuzz_die("parse returned %d", rc);
    if (doc)
        fuzz_die("a refused parse left a document");
    if (!memchr(err->msg, '\0', sizeof err->msg) || !err->msg[0])
        fuzz_die("a refusal without a message");
    if (err->offset > cur_size)
        fuzz_die("error offset %zu past the input", err->offset);
    unsigned l, c;
    recount(err->offset, &l, &c);
    if (l != err->line || c != err->col)
        fuzz_die("error \"%s\" at offset %zu says %u:%u, recount says %u:%u", err->msg, err->offset,
                 err->line, err->col, l, c);
}

static bool fuzz_json(const uint8_t *data, size_t size, const sbx_json_limits *lim)
{
    sbx_json_doc *doc = (sbx_json_doc *)1;
    sbx_json_error err;
    int rc = sbx_json_parse((const char *)data, size, lim, &doc, &err);
    if (rc < 0) {
        check_refusal(rc, doc, &err);
        return false;
    }
    if (rc != 0 || !doc)
        fuzz_die("parse returned %d with document %p", rc, (void *)doc);
    size_t max_nodes = lim && lim->max_nodes ? lim->max_nodes : SBX_JSON_DEFAULT_MAX_NODES;
    unsigned max_depth = lim && lim->max_depth ? lim->max_depth : SBX_JSON_DEFAULT_MAX_DEPTH;
    const sbx_json *root = sbx_json_root(doc);
    cursor cu;
    cursor_init(&cu);
    size_t nodes = check_tree(&cu, root, false, 0, max_depth);
    if (nodes > max_nodes)
        fuzz_die("%zu values over the limit %zu were accepted", nodes, max_nodes);

    /* Round trip: print, parse (no size or node limit can trip: both only shrink), compare. */
    out_buf o1 = {0}, o2 = {0};
    print_json(&o1, root);
    sbx_json_limits big = {.max_bytes = o1.len + 1, .max_depth = max_depth, .max_nodes = nodes};
    sbx_json_doc *doc2;
    if (sbx_json_parse(o1.p, o1.len, &big, &doc2, &err) != 0)
        fuzz_die("the printed document does not parse: %u:%u %s", err.line, err.col, err.msg);
    if (!same_tree(root, sbx_json_root(doc2)))
        fuzz_die("the printed document parses to a different tree");
    print_json(&o2, sbx_json_root(doc2));
    if (o1.len != o2.len || memcmp(o1.p, o2.p, o1.len))
        fuzz_die("printing is not stable");
    free(o1.p);
    free(o2.p);
    sbx_json_free(doc2);
    sbx_json_free(doc);
    return true;
}

/* ---- the profile builder's promises ---- */

static void check_warning(void *arg, const char *msg)
{
    (void)arg;
    if (strncmp(msg, "fuzz:", 5) || !strstr(msg, "skipped"))
        fuzz_die("odd warning \"%s\"", msg);
}

static int null_fd = -1;

static bool fuzz_profile(const uint8_t *data, size_t size, const char *const *caps, size_t ncaps,
                         unsigned flags, bool export, char err[512])
{
    memset(err, 'X', 512);
    scmp_filter_ctx ctx = (scmp_filter_ctx)1;
    sbx_oci_options opt = {
        .kept_caps = caps, .nkept = ncaps, .flags = flags, .warn = check_warning};
    int rc = sbx_oci_load_buffer_ex((const char *)data, size, "fuzz", &opt, &ctx, err, 512);
    if (!memchr(err, '\0', 512))
        fuzz_die("loader left the error message unterminated");
    if (rc < 0) {
        if (rc != -EINVAL && rc != -EFBIG && rc != -ENOMEM)
            fuzz_die("loader returned %d (%s)", rc, err);
        if (ctx)
            fuzz_die("a refused profile left a context");
        if (strncmp(err, "fuzz:", 5))
            fuzz_die("refusal \"%s\" does not name the source", err);
        return false;
    }
    if (rc != 0 || !ctx || err[0])
        fuzz_die("loader returned %d, context %p, message \"%s\"", rc, ctx, err);
    if (export) {
        if (null_fd < 0)
            null_fd = open("/dev/null", O_WRONLY | O_CLOEXEC);
        int erc = seccomp_export_bpf(ctx, null_fd);
        if (erc < 0)
            fuzz_die("an accepted profile does not export: %s", strerror(-erc));
    }
    seccomp_release(ctx);
    return true;
}

static bool last_parsed, last_loaded;

/* Refusals that keeping more capabilities may cause or cure: more entries apply. */
static bool cap_dependent(const char *err)
{
    return strstr(err, "libseccomp would silently keep") || strstr(err, "libseccomp refused") ||
           strstr(err, "BPF instructions") || strstr(err, "cannot compile");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    cur_data = data;
    cur_size = size;
    last_parsed = fuzz_json(data, size, NULL);
    sbx_json_limits tight = {.max_bytes = 4096, .max_depth = 6, .max_nodes = 200};
    bool tight_ok = fuzz_json(data, size, &tight);
    if (tight_ok && !last_parsed)
        fuzz_die("accepted under tight limits but refused under the defaults");

    static const char *const admin[] = {"CAP_SYS_ADMIN"};
    static const char *const many[] = {"CAP_SYS_ADMIN", "CAP_SYS_PTRACE", "CAP_NET_ADMIN",
                                       "CAP_BPF",       "CAP_SYS_TIME",   "cap_sys_chroot"};
    last_loaded = false;
    if (!last_parsed)
        return 0; /* the builder never sees a document the parser refused */
    char ea[512], eb[512], ec[512];
    bool a = fuzz_profile(data, size, NULL, 0, 0, true, ea);
    bool b = fuzz_profile(data, size, admin, 1, 0, false, eb);
    bool c = fuzz_profile(data, size, many, 6, SBX_OCI_SKIP_UNKNOWN_ALLOWED, size < 4096, ec);
    /*
     * Every entry is checked whatever the capabilities, so keeping more of them can only make
     * more entries apply, and those may then conflict; nothing else may change the verdict.
     * Lenient mode accepts a superset of strict mode.
     */
    if (a && !b && !cap_dependent(eb))
        fuzz_die("keeping CAP_SYS_ADMIN made a valid profile invalid: %s", eb);
    if (a && !c && !cap_dependent(ec))
        fuzz_die("keeping more capabilities made a valid profile invalid: %s", ec);
    if (!a && b && !cap_dependent(ea))
        fuzz_die("keeping CAP_SYS_ADMIN made an invalid profile valid: %s", ea);
    last_loaded = a;
    return 0;
}

#ifdef PM_FUZZ_STANDALONE

#define FUZZ_MAX_INPUT 32768

static void pool_add_str(fuzz_pool *p, const char *s)
{
    fuzz_pool_add(p, (const uint8_t *)s, strlen(s));
}

static const char *const seeds[] = {
    "{\"defaultAction\":\"SCMP_ACT_ERRNO\",\"defaultErrnoRet\":1,\"archMap\":[{\"architecture\":"
    "\"SCMP_ARCH_X86_64\",\"subArchitectures\":[\"SCMP_ARCH_X86\",\"SCMP_ARCH_X32\"]}],"
    "\"syscalls\":[{\"names\":[\"read\",\"write\",\"exit_group\",\"getpid\"],\"action\":"
    "\"SCMP_ACT_ALLOW\"},{\"names\":[\"clone\"],\"action\":\"SCMP_ACT_ALLOW\",\"args\":[{\"index\":"
    "0,\"value\":2114060288,\"valueTwo\":0,\"op\":\"SCMP_CMP_MASKED_EQ\"}],\"excludes\":{\"caps\":"
    "[\"CAP_SYS_ADMIN\"]}},{\"names\":[\"clone\",\"unshare\",\"mount\"],\"action\":"
    "\"SCMP_ACT_ALLOW\",\"includes\":{\"caps\":[\"CAP_SYS_ADMIN\"]}},{\"names\":[\"clone3\"],"
    "\"action\":\"SCMP_ACT_ERRNO\",\"errnoRet\":38,\"excludes\":{\"caps\":[\"CAP_SYS_ADMIN\"]}}]}",
    "{\"defaultAction\":\"SCMP_ACT_ALLOW\",\"architectures\":[\"SCMP_ARCH_X86_64\","
    "\"SCMP_ARCH_AARCH64\"],\"flags\":[\"SECCOMP_FILTER_FLAG_LOG\"],\"syscalls\":[{\"name\":"
    "\"ptrace\",\"action\":\"SCMP_ACT_KILL_PROCESS\"},{\"names\":[\"personality\"],\"action\":"
    "\"SCMP_ACT_TRAP\",\"args\":[{\"index\":0,\"value\":8,\"op\":\"SCMP_CMP_NE\"},{\"index\":0,"
    "\"value\":0,\"op\":\"SCMP_CMP_NE\"}]},{\"names\":[\"lseek\"],\"action\":\"SCMP_ACT_TRACE\","
    "\"errnoRet\":5,\"args\":[{\"index\":2,\"value\":3,\"op\":\"SCMP_CMP_GE\"},{\"index\":0,"
    "\"value\":10,\"op\":\"SCMP_CMP_LT\"}],\"includes\":{\"arches\":[\"amd64\",\"arm64\"],"
    "\"minKernel\":\"4.8\"},\"excludes\":{\"minKernel\":\"99.1.2\"}},{\"names\":[\"getppid\"],"
    "\"action\":\"SCMP_ACT_LOG\",\"comment\":null}]}",
    "{\"defaultAction\":\"SCMP_ACT_KILL\",\"syscalls\":[{\"names\":[\"not_a_syscall\",\"read\"],"
    "\"action\":\"SCMP_ACT_ALLOW\"},{\"names\":[\"getpid\"],\"action\":\"SCMP_ACT_ERRNO\"},"
    "{\"names\":[\"getpid\"],\"action\":\"SCMP_ACT_ERRNO\",\"errnoRet\":2}]}",
    "{\"a\":[1,-2,3.5e-7,0,-0,18446744073709551615,18446744073709551616,1E+2,true,false,null],"
    "\"s\":\"\\u00e9\\ud83d\\ude00\\n\\t\\\"\\\\\\/\\b\\f\\r\\u0000\",\"\xC3\xA9\":{\"\":[]}}",
    "\xEF\xBB\xBF[[[[[[[[{\"x\":[\"\xF0\x9F\x98\x80\"]}]]]]]]]]",
    "  \r\n\t{ \"defaultAction\" : \"SCMP_ACT_ALLOW\" ,\n \"syscalls\" : [ ] }\n",
};

static void build_seeds(fuzz_pool *p)
{
    for (size_t i = 0; i < sizeof seeds / sizeof seeds[0]; i++)
        pool_add_str(p, seeds[i]);
}

/*
 * Tokens that steer mutations toward the grammar and the profile's vocabulary (json_fuzz.dict
 * holds the same for libFuzzer). Kept dense by hand: one per line would bury the code.
 */
/* clang-format off */
static const char *const tokens[] = {
    "{", "}", "[", "]", "\"", ",", ":", " ", "\n", "\\", "\\u", "\\ud800", "\\udc00", "\\u0000",
    "\\uD83D\\uDE00", "\xC3\xA9", "\xED\xA0\x80", "\xF4\x90\x80\x80", "\xC0\xAF", "\xEF\xBB\xBF",
    "true", "false", "null", "-", "-0", "0", "01", "1.", "1e", "1e999", "0.5", "4095", "4096",
    "65535", "18446744073709551615", "18446744073709551616", "99999999999999999999999999",
    "\"names\"", "\"name\"", "\"action\"", "\"args\"", "\"index\"", "\"value\"", "\"valueTwo\"",
    "\"op\"", "\"errnoRet\"", "\"defaultAction\"", "\"defaultErrnoRet\"", "\"architectures\"",
    "\"archMap\"", "\"architecture\"", "\"subArchitectures\"", "\"includes\"", "\"excludes\"",
    "\"caps\"", "\"arches\"", "\"minKernel\"", "\"flags\"", "\"syscalls\"", "\"comment\"",
    "\"SCMP_ACT_ALLOW\"", "\"SCMP_ACT_ERRNO\"", "\"SCMP_ACT_KILL\"", "\"SCMP_ACT_KILL_PROCESS\"",
    "\"SCMP_ACT_KILL_THREAD\"", "\"SCMP_ACT_TRAP\"", "\"SCMP_ACT_TRACE\"", "\"SCMP_ACT_LOG\"",
    "\"SCMP_ACT_NOTIFY\"", "\"SCMP_CMP_NE\"", "\"SCMP_CMP_LT\"", "\"SCMP_CMP_LE\"",
    "\"SCMP_CMP_EQ\"", "\"SCMP_CMP_GE\"", "\"SCMP_CMP_GT\"", "\"SCMP_CMP_MASKED_EQ\"",
    "\"SCMP_ARCH_X86\"", "\"SCMP_ARCH_X86_64\"", "\"SCMP_ARCH_X32\"", "\"SCMP_ARCH_AARCH64\"",
    "\"SCMP_ARCH_ARM\"", "\"SCMP_ARCH_S390X\"", "\"amd64\"", "\"arm64\"", "\"CAP_SYS_ADMIN\"",
    "\"CAP_SYS_PTRACE\"", "\"CAP_BPF\"", "\"CAP_NOPE\"", "\"4.8\"", "\"999.0\"", "\"4.x\"",
    "\"getpid\"", "\"clone\"", "\"clone3\"", "\"socketcall\"", "\"umount\"", "\"not_a_syscall\"",
    "\"SECCOMP_FILTER_FLAG_TSYNC\"", "\"SECCOMP_FILTER_FLAG_LOG\"",
    "\"SECCOMP_FILTER_FLAG_SPEC_ALLOW\"", "{\"index\":0,\"value\":1,\"op\":\"SCMP_CMP_EQ\"}",
    "{\"names\":[\"getpid\"],\"action\":\"SCMP_ACT_KILL\"}", "{\"caps\":[\"CAP_SYS_ADMIN\"]}",
};
/* clang-format on */

static void mutate(uint8_t *b, size_t *len, const fuzz_blob *other)
{
    static const uint8_t bytes[] = "{}[]\",:\\-0123456789eE.tfn \n\t\r\x00\x7f\x80\xbf\xc3\xed\xff";
    const fuzz_json_mutator m = {
        .tokens = tokens,
        .ntokens = sizeof tokens / sizeof tokens[0],
        .bytes = bytes,
        .nbytes = sizeof bytes - 1,
        .max_input = FUZZ_MAX_INPUT,
        .nesting = true,
    };
    fuzz_json_mutate(&m, b, len, other);
}

/* Inputs that trip parsers like this one; each runs once, as an exact-size heap copy. */
static void run_edge_cases(void)
{
    static const char *const cases[] = {
        "",         " ",
        "\xEF\xBB", "\xEF\xBB\xBF",
        "\"",       "\"\\",
        "\"\\u",    "\"\\uD800\\u",
        "[",        "{",
        "{\"",      "{\"a\"",
        "{\"a\":",  "-",
        "0",        "1e",
        "[1,",      "\"\xF0\x9F\x98",
        "\n\n\n",   "\x00",
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        size_t n = strlen(cases[i]) + (i == sizeof cases / sizeof cases[0] - 1);
        uint8_t *copy = fuzz_xmalloc(n);
        memcpy(copy, cases[i], n);
        LLVMFuzzerTestOneInput(copy, n);
        free(copy);
    }
}

static uint64_t parsed, loaded;

static bool keep(void)
{
    parsed += last_parsed;
    loaded += last_loaded;
    /* Documents that parse are the ones that reach the builder; keep them for more. */
    return last_parsed && (last_loaded || fuzz_below(4) == 0);
}

static void describe(const char *path, size_t len)
{
    printf("%s: %zu bytes, JSON %s, profile %s\n", path, len, last_parsed ? "accepted" : "refused",
           last_loaded ? "loaded" : "refused");
}

static void summary(FILE *out)
{
    fprintf(out, "%llu parsed, %llu loaded as profiles", (unsigned long long)parsed,
            (unsigned long long)loaded);
}

static void cleanup(void)
{
    if (null_fd >= 0)
        close(null_fd);
    null_fd = -1;
}

int main(int argc, char **argv)
{
    static const fuzz_target t = {
        .name = "json_fuzz",
        .max_input = FUZZ_MAX_INPUT,
        .iterations = 1000000,
        .seconds = 20,
        .seed = 0x6f63692d6a736f6eull,
        .seed_ext = ".json",
        .build_seeds = build_seeds,
        .run_edge_cases = run_edge_cases,
        .mutate = mutate,
        .keep = keep,
        .describe = describe,
        .summary = summary,
        .cleanup = cleanup,
    };
    return fuzz_standalone_main(argc, argv, &t);
}

#endif /* PM_FUZZ_STANDALONE */

/*
 * Fuzz target for the pipeline parser, which reads JSON a user submits: every input is parsed as a
 * pipeline document, and a refusal is checked against pipeline.h (a known error code, no
 * pipeline, a message) while an accepted pipeline is checked against the promises the scheduler
 * relies on (1..256 steps, a non-empty executor, 1..1024 non-empty commands of at most 64 KiB)
 * and then taken through the rest of the API: its placeholders are listed (sorted, distinct,
 * valid names), filled with hostile values (a value never becomes a placeholder; only {{id}} may
 * remain, and sch_pipeline_fill_builtin leaves none), one left out on purpose must be named in the
 * error, and the pipeline goes to the wire and back through protobuf-c bytes and is duplicated,
 * arriving unchanged. A broken promise aborts with a message, which is how a fuzzer learns of it;
 * this is test code, never linked into the daemon.
 *
 * Two ways to run it:
 *
 * - Standalone (PM_FUZZ_STANDALONE, the cc_test //scheduler:pipeline_fuzz; CI also runs it under
 *   --config=asan): a deterministic mutation loop, fixed seed, over seeds built here (both
 *   shapes, the DESIGN.md example, placeholders of every form): bit flips, byte edits, JSON and
 *   pipeline tokens inserted or put in place of strings and numbers, range deletion and
 *   duplication, truncation and splicing. Inputs that parse join the pool, a cheap stand-in for
 *   coverage feedback. The loop, its flags and file replay are //testing:fuzz_driver's (see
 *   fuzz_driver.h); the defaults here are --iterations 200000 and --seconds 5.
 *
 * - libFuzzer (clang, by hand; not part of the Bazel build), from the workspace root:
 *
 *     bazel build //protos:scheduler_pbc //scheduler:pipeline_fuzz
 *     gen=$(bazel info bazel-bin)
 *     clang-14 -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
 *         -D_GNU_SOURCE -I. -I"$gen" scheduler/pipeline_fuzz.c scheduler/pipeline.c \
 *         sandbox/oci/json.c testing/fuzz_driver.c testing/fuzz_json.c \
 *         "$gen"/protos/scheduler.pb-c.c -lprotobuf-c -o /tmp/pipeline_fuzz
 *     mkdir -p /tmp/pipeline_corpus
 *     "$gen"/scheduler/pipeline_fuzz --write-corpus /tmp/pipeline_corpus
 *     /tmp/pipeline_fuzz -max_total_time=300 -max_len=8192 /tmp/pipeline_corpus
 *
 *   Debian's libclang-rt-14-dev provides libFuzzer. protobuf-c comes as a prebuilt library, so
 *   only the parser and pipeline.c are instrumented for coverage; they are the code under test. A
 *   crash leaves crash-<sha1> in the current directory; replay it with either binary.
 */
#include "scheduler/pipeline.h"
#include "testing/fuzz_driver.h"
#include "testing/fuzz_json.h"

#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The input being parsed, so that a failure can show it. */
static const uint8_t *cur_data;
static size_t cur_size;

/*
 * The fuzzer's only way to report a broken promise is to stop; libFuzzer then saves the input.
 * The input is also printed in hex (a test log is often all there is) and, under bazel test,
 * written to the test's undeclared outputs as pipeline_fuzz-failure.bin for replay.
 */
static void fuzz_die(const char *fmt, ...) __attribute__((noreturn, format(printf, 1, 2)));

static void fuzz_die(const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "pipeline_fuzz: ");
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    fuzz_report_input_and_abort("pipeline_fuzz", cur_data, cur_size);
}

/*
 * Values a user might pass: shell syntax, quotes, braces that could form a placeholder, the
 * empty string, and one long enough that a line with two of it passes the line cap.
 */
static char long_value[40000];
static const char *const values[] = {
    "a",         "http://x/y.png?a=1&b=2", "it's", "''",  "{{id}}", "{{", "{",  "}}",       "id",
    "{{ url }}", "$(touch /tmp/pwned)",    "`id`", "a b", "",       "\\", "\n", long_value,
};
#define NVALUES (sizeof values / sizeof values[0])

static uint64_t hash_input(const uint8_t *data, size_t size)
{
    uint64_t h = 0xcbf29ce484222325ull;
    for (size_t i = 0; i < size; i++)
        h = (h ^ data[i]) * 0x100000001b3ull;
    return h;
}

/* The promises of an accepted pipeline; what names it. */
static void check_pipeline(const sch_pipeline *p, const char *what)
{
    if (!p || p->n_steps == 0 || p->n_steps > SCH_PIPELINE_MAX_STEPS || !p->steps)
        fuzz_die("%s: %zu steps", what, p ? p->n_steps : 0);
    for (size_t i = 0; i < p->n_steps; i++) {
        const sch_step *s = &p->steps[i];
        if (!s->executor || !*s->executor)
            fuzz_die("%s: step %zu without an executor", what, i + 1);
        if (s->n_commands == 0 || s->n_commands > SCH_PIPELINE_MAX_COMMANDS || !s->commands)
            fuzz_die("%s: step %zu has %zu commands", what, i + 1, s->n_commands);
        for (size_t j = 0; j < s->n_commands; j++) {
            const char *c = s->commands[j];
            if (!c || !*c || strlen(c) > SCH_PIPELINE_MAX_LINE)
                fuzz_die("%s: step %zu command %zu is empty or over the cap", what, i + 1, j + 1);
        }
    }
}

static bool same(const sch_pipeline *a, const sch_pipeline *b)
{
    if (a->n_steps != b->n_steps)
        return false;
    for (size_t i = 0; i < a->n_steps; i++) {
        const sch_step *x = &a->steps[i], *y = &b->steps[i];
        if (strcmp(x->executor, y->executor) || x->n_commands != y->n_commands ||
            x->timeout_ms != y->timeout_ms)
            return false;
        for (size_t j = 0; j < x->n_commands; j++)
            if (strcmp(x->commands[j], y->commands[j]))
                return false;
    }
    return true;
}

/* The placeholders of p, checked for order and validity; returns the count. */
static int names_checked(const sch_pipeline *p, const char ***names, const char *what)
{
    int n = sch_pipeline_placeholders(p, names);
    if (n < 0)
        fuzz_die("%s: sch_pipeline_placeholders returned %d", what, n);
    for (int i = 0; i < n; i++) {
        if (!sch_param_name_ok((*names)[i]))
            fuzz_die("%s: placeholder \"%.40s\" is not a valid name", what, (*names)[i]);
        if (i && strcmp((*names)[i - 1], (*names)[i]) >= 0)
            fuzz_die("%s: placeholders not sorted and distinct at \"%.40s\"", what, (*names)[i]);
    }
    return n;
}

/* After substitution only "id" may be left, and only when no value was given for it. */
static void check_substituted(const sch_pipeline *in, const sch_pipeline *s, bool id_given)
{
    check_pipeline(s, "substituted");
    if (s->n_steps != in->n_steps)
        fuzz_die("substitution changed the number of steps");
    for (size_t i = 0; i < s->n_steps; i++)
        if (strcmp(s->steps[i].executor, in->steps[i].executor) ||
            s->steps[i].n_commands != in->steps[i].n_commands ||
            s->steps[i].timeout_ms != in->steps[i].timeout_ms)
            fuzz_die("substitution changed step %zu beyond its lines", i + 1);
    const char **names;
    int n = names_checked(s, &names, "substituted");
    if (n > 1 || (n == 1 && (id_given || strcmp(names[0], "id"))))
        fuzz_die("placeholder \"%.40s\" left after substitution", names[0]);
    free(names);

    /* Dispatch fills {{id}}; then nothing is left, and a line without it is unchanged. */
    for (size_t i = 0; i < s->n_steps; i++) {
        for (size_t j = 0; j < s->steps[i].n_commands; j++) {
            char *line = s->steps[i].commands[j];
            char *filled = sch_pipeline_fill_builtin(line, "task-1 x");
            if (!filled)
                fuzz_die("sch_pipeline_fill_builtin returned NULL");
            sch_step st = {.executor = "x", .commands = &filled, .n_commands = 1};
            sch_pipeline one = {.steps = &st, .n_steps = 1};
            if (names_checked(&one, &names, "filled") != 0)
                fuzz_die("placeholder \"%.40s\" left after the built-in fill", names[0]);
            free(names);
            if (n == 0 && strcmp(filled, line))
                fuzz_die("the built-in fill changed a line without {{id}}");
            free(filled);
        }
    }
}

/* Substitutes values for every placeholder of p, or for all but one (omit), and checks. */
static void fuzz_substitute(const sch_pipeline *p, uint64_t h)
{
    const char **names;
    int n = names_checked(p, &names, "parsed");
    sch_param *params = fuzz_xmalloc((size_t)n * 2 * sizeof *params);
    size_t np = 0;
    bool id_given = false;
    /* Left out on purpose: a name other than id, when the input's hash says so. */
    int omit = -1;
    if (n && (h & 3) == 0) {
        omit = (int)((h >> 2) % (uint64_t)n);
        if (!strcmp(names[omit], "id"))
            omit = -1;
    }
    for (int i = 0; i < n; i++) {
        if (i == omit)
            continue;
        /* Sometimes a default first, which the later value must override. */
        if ((h >> (i % 32)) & 1)
            params[np++] = (sch_param){names[i], "default-never-used"};
        params[np++] = (sch_param){names[i], values[(h + (uint64_t)i * 7) % NVALUES]};
        if (!strcmp(names[i], "id"))
            id_given = true;
    }
    sch_pipeline *s = NULL;
    char err[256];
    int rc = sch_pipeline_substitute(p, params, np, &s, err, sizeof err);
    if (rc == -E2BIG) {
        /* A long value can pass the line cap before the left-out name is reached. */
        if (s || strncmp(err, "step ", 5))
            fuzz_die("substitution over the cap: \"%s\"", err);
    } else if (omit >= 0) {
        char want[128];
        snprintf(want, sizeof want, "missing parameter '%.64s'", names[omit]);
        if (rc != -EINVAL || s || strncmp(err, want, strlen(want)))
            fuzz_die("left out '%.40s': rc %d, \"%s\"", names[omit], rc, err);
    } else if (rc != 0) {
        fuzz_die("substitution failed: %d \"%s\"", rc, err);
    } else {
        check_substituted(p, s, id_given);
        for (size_t i = 0; i < s->n_steps; i++)
            for (size_t j = 0; j < s->steps[i].n_commands; j++)
                if (strstr(s->steps[i].commands[j], "default-never-used") &&
                    !strstr(p->steps[i].commands[j], "default-never-used"))
                    fuzz_die("an earlier parameter won over a later one");
    }
    sch_pipeline_free(s);
    free(params);
    free(names);
}

/* To the wire, through bytes, back, and duplicated: the same pipeline every time. */
static void fuzz_wire(const sch_pipeline *p)
{
    Pm__Scheduler__V1__Pipeline *pb = sch_pipeline_to_pb(p);
    if (!pb)
        fuzz_die("sch_pipeline_to_pb returned NULL");
    char err[256];
    sch_pipeline *q = NULL;
    if (sch_pipeline_from_pb(pb, &q, err, sizeof err) != 0)
        fuzz_die("from_pb refused to_pb's message: %s", err);
    if (!same(p, q))
        fuzz_die("to_pb/from_pb changed the pipeline");
    sch_pipeline_free(q);

    size_t len = pm__scheduler__v1__pipeline__get_packed_size(pb);
    uint8_t *buf = fuzz_xmalloc(len);
    if (pm__scheduler__v1__pipeline__pack(pb, buf) != len)
        fuzz_die("packed size mismatch");
    Pm__Scheduler__V1__Pipeline *un = pm__scheduler__v1__pipeline__unpack(NULL, len, buf);
    if (!un)
        fuzz_die("protobuf-c could not read its own bytes");
    q = NULL;
    if (sch_pipeline_from_pb(un, &q, err, sizeof err) != 0)
        fuzz_die("from_pb refused the unpacked message: %s", err);
    if (!same(p, q))
        fuzz_die("the pipeline changed through protobuf bytes");
    sch_pipeline_free(q);
    pm__scheduler__v1__pipeline__free_unpacked(un, NULL);
    free(buf);
    free(pb);

    sch_pipeline *d = sch_pipeline_dup(p);
    if (!d || !same(p, d))
        fuzz_die("sch_pipeline_dup changed the pipeline");
    sch_pipeline_free(d);
}

/* Whether the last input parsed, for the standalone driver. */
static bool last_parsed;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!long_value[0])
        memset(long_value, 'v', sizeof long_value - 1);
    cur_data = data;
    cur_size = size;
    sch_pipeline *p = (sch_pipeline *)&p;
    /* A short buffer exercises the truncation of every message. */
    char err[512], small[24];
    bool use_small = size & 1;
    int rc = sch_pipeline_parse_json((const char *)data, size, &p, use_small ? small : err,
                                     use_small ? sizeof small : sizeof err);
    const char *msg = use_small ? small : err;
    size_t msglen = use_small ? sizeof small : sizeof err;
    last_parsed = rc == 0;
    if (rc != 0) {
        if (rc != -EINVAL && rc != -EFBIG && rc != -E2BIG && rc != -ENOMEM)
            fuzz_die("parse returned %d", rc);
        if (p)
            fuzz_die("a refused document left a pipeline");
        if (!memchr(msg, '\0', msglen) || !msg[0])
            fuzz_die("refused without a NUL-terminated message");
        if (rc != -ENOMEM && strncmp(msg, "pipeline", strlen(msg) < 8 ? strlen(msg) : 8))
            fuzz_die("message does not start with \"pipeline\": %s", msg);
        return 0;
    }
    check_pipeline(p, "parsed");
    uint64_t h = hash_input(data, size);
    fuzz_substitute(p, h);
    fuzz_wire(p);
    sch_pipeline_free(p);
    return 0;
}

#ifdef PM_FUZZ_STANDALONE

/* Inputs stay small: the parser's paths are all reachable within a few KiB. */
#define FUZZ_MAX_INPUT 8192

static void pool_add_str(fuzz_pool *p, const char *s)
{
    fuzz_pool_add(p, (const uint8_t *)s, strlen(s));
}

static const char *const seeds[] = {
    /* DESIGN.md's example. */
    "{ \"pipeline\": [\n"
    "  { \"executorName\": \"wget\",      \"commands\": [\"wget -O /mnt/pipe/{{id}}.png "
    "{{url}}\"] },\n"
    "  { \"executorName\": \"tesseract\", \"commands\": [\"tesseract /mnt/pipe/{{id}}.png "
    "/mnt/pipe/{{id}}\",\n"
    "                                               \"cat /mnt/pipe/{{id}}.txt\"] },\n"
    "  { \"executorName\": \"mc\",        \"commands\": [\"mc cp /mnt/pipe/{{id}}.txt "
    "store/results/\",\n"
    "                                               \"rm -f /mnt/pipe/{{id}}*\"] } ] }\n",
    "{\"commands\":[{\"executorName\":\"wget\",\"commandLines\":[\"wget {{ url }}\",\"ls\"]},"
    "{\"executorName\":\"x\",\"commandLines\":[\"echo {{a.b-c}} {{_z}}\"],\"timeoutMs\":0}]}",
    "{\"pipeline\":[{\"executorName\":\"sh\",\"commands\":[\"{{{x}}} {{{{y}}}} {{ 1x }} {{a b}} "
    "{{x} {{\",\"printf '%s' {{v}}\"],\"timeoutMs\":4294967295}]}",
    "{\"pipeline\":[{\"executorName\":\"a\",\"commands\":[\"{{id}}{{id}}{{ id }}\"]},"
    "{\"executorName\":\"\\u00e9\",\"commands\":[\"\\u0041{{b}}\\n\"]}]}",
    "{\"pipeline\":[{\"executorName\":\"a\",\"commands\":[\"x\"]}],\"x\":1}",
};

static void build_seeds(fuzz_pool *p)
{
    for (size_t i = 0; i < sizeof seeds / sizeof seeds[0]; i++)
        pool_add_str(p, seeds[i]);
}

/* Tokens that steer mutations toward the grammar and the pipeline's vocabulary. */
/* clang-format off */
static const char *const tokens[] = {
    "{", "}", "[", "]", "\"", ",", ":", " ", "\n", "\\", "\\u0000", "\\u007b", "\xC3\xA9",
    "true", "false", "null", "-1", "0", "1.5", "1e3", "4294967295", "4294967296",
    "\"pipeline\"", "\"commands\"", "\"commandLines\"", "\"executorName\"", "\"timeoutMs\"",
    "\"\"", "\"x\"", "{{", "}}", "{{id}}", "{{ id }}", "{{url}}", "{{ url }}", "{{a.b-c}}",
    "{{1}}", "{{{", "}}}", "'", "\\\"",
    "{\"executorName\":\"w\",\"commands\":[\"{{v}}\"]}",
    "{\"executorName\":\"w\",\"commandLines\":[\"a\"]}",
};
/* clang-format on */

static void mutate(uint8_t *b, size_t *len, const fuzz_blob *other)
{
    /* Shell metacharacters too: values and command lines end up in /bin/sh. */
    static const uint8_t bytes[] = "{}[]\",:\\-0123456789 \n'$`\x00\x7f\x80\xc3\xff";
    const fuzz_json_mutator m = {
        .tokens = tokens,
        .ntokens = sizeof tokens / sizeof tokens[0],
        .bytes = bytes,
        .nbytes = sizeof bytes - 1,
        .max_input = FUZZ_MAX_INPUT,
        .nesting = false,
    };
    fuzz_json_mutate(&m, b, len, other);
}

/* Inputs that trip parsers like this one; each runs once, as an exact-size heap copy. */
static void run_edge_cases(void)
{
    static const char *const cases[] = {
        "",
        "{",
        "[]",
        "{}",
        "{\"pipeline\":[]}",
        "{\"pipeline\":[{}]}",
        "{\"pipeline\":[{\"executorName\":\"a\",\"commands\":[\"{{\"]}]}",
        "{\"pipeline\":[{\"executorName\":\"a\",\"commands\":[\"{{x}}\"]}]}",
        "{\"pipeline\":[{\"executorName\":\"a\",\"commands\":[\"{{id\"]}]}",
        "{\"pipeline\":[{\"executorName\":\"a\",\"commands\":[\"x{{ id }}}\"]}]}",
        "{\"commands\":[{\"executorName\":\"a\",\"commandLines\":[\"\\u0000\"]}]}",
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        size_t n = strlen(cases[i]);
        uint8_t *copy = fuzz_xmalloc(n);
        memcpy(copy, cases[i], n);
        LLVMFuzzerTestOneInput(copy, n);
        free(copy);
    }
}

static uint64_t parsed_n;

static bool keep(void)
{
    parsed_n += last_parsed;
    /* Accepted pipelines are the ones that reach substitution and the wire; keep them. */
    return last_parsed;
}

static void describe(const char *path, size_t len)
{
    printf("%s: %zu bytes, pipeline %s\n", path, len, last_parsed ? "accepted" : "refused");
}

static void summary(FILE *out)
{
    fprintf(out, "%llu pipelines accepted", (unsigned long long)parsed_n);
}

int main(int argc, char **argv)
{
    static const fuzz_target t = {
        .name = "pipeline_fuzz",
        .max_input = FUZZ_MAX_INPUT,
        .iterations = 200000,
        .seconds = 5,
        .seed = 0x706970656c696e65ull,
        .seed_ext = ".json",
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

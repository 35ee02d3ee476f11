/*
 * Unit tests of pipelines: both JSON shapes (the DESIGN.md example as written), every refusal with
 * its message, the placeholder syntax, substitution with shell quoting (checked by running the
 * result through /bin/sh with hostile values), the built-in {{id}}, and the wire conversions.
 */
#include "scheduler/pipeline.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "testing/check.h"

static char err[512];

static sch_pipeline *parse(const char *json)
{
    sch_pipeline *p = NULL;
    int rc = sch_pipeline_parse_json(json, strlen(json), &p, err, sizeof err);
    if (rc != 0)
        fprintf(stderr, "parse failed (%d): %s\n", rc, err);
    return p;
}

/* Parses a document that must be refused with rc; the message is left in err. */
static int refuse(const char *json, size_t len)
{
    sch_pipeline *p = (sch_pipeline *)&p;
    int rc = sch_pipeline_parse_json(json, len, &p, err, sizeof err);
    CHECK(p == NULL);
    CHECK(err[0] != '\0');
    return rc;
}

#define REFUSE(json) refuse(json, strlen(json))

static void test_design_example(void)
{
    /* DESIGN.md, "The job", byte for byte. */
    static const char doc[] =
        "{ \"pipeline\": [\n"
        "  { \"executorName\": \"wget\",      \"commands\": [\"wget -O /mnt/pipe/{{id}}.png "
        "{{url}}\"] },\n"
        "  { \"executorName\": \"tesseract\", \"commands\": [\"tesseract /mnt/pipe/{{id}}.png "
        "/mnt/pipe/{{id}}\",\n"
        "                                               \"cat /mnt/pipe/{{id}}.txt\"] },\n"
        "  { \"executorName\": \"mc\",        \"commands\": [\"mc cp /mnt/pipe/{{id}}.txt "
        "store/results/\",\n"
        "                                               \"rm -f /mnt/pipe/{{id}}*\"] } ] }\n";
    sch_pipeline *p = parse(doc);
    CHECK(p != NULL);
    if (!p)
        return;
    CHECK(p->n_steps == 3);
    CHECK_STR(p->steps[0].executor, "wget");
    CHECK(p->steps[0].n_commands == 1);
    CHECK_STR(p->steps[0].commands[0], "wget -O /mnt/pipe/{{id}}.png {{url}}");
    CHECK(p->steps[0].timeout_ms == 0);
    CHECK_STR(p->steps[1].executor, "tesseract");
    CHECK(p->steps[1].n_commands == 2);
    CHECK_STR(p->steps[1].commands[1], "cat /mnt/pipe/{{id}}.txt");
    CHECK_STR(p->steps[2].executor, "mc");
    CHECK(p->steps[2].n_commands == 2);
    CHECK_STR(p->steps[2].commands[1], "rm -f /mnt/pipe/{{id}}*");

    const char **names;
    int n = sch_pipeline_placeholders(p, &names);
    CHECK(n == 2);
    if (n == 2) {
        CHECK_STR(names[0], "id");
        CHECK_STR(names[1], "url");
    }
    free(names);

    /* url given, id kept for dispatch, then filled with the task's id. */
    sch_param params[] = {{"url", "http://example.com/a.png?x=1&y=2"}};
    sch_pipeline *s = NULL;
    CHECK(sch_pipeline_substitute(p, params, 1, &s, err, sizeof err) == 0);
    if (s) {
        CHECK_STR(s->steps[0].commands[0],
                  "wget -O /mnt/pipe/{{id}}.png 'http://example.com/a.png?x=1&y=2'");
        CHECK_STR(s->steps[2].commands[1], "rm -f /mnt/pipe/{{id}}*");
        n = sch_pipeline_placeholders(s, &names);
        CHECK(n == 1);
        if (n == 1)
            CHECK_STR(names[0], "id");
        free(names);
        char *line = sch_pipeline_fill_builtin(s->steps[0].commands[0], "t-42");
        CHECK_STR(line, "wget -O /mnt/pipe/t-42.png 'http://example.com/a.png?x=1&y=2'");
        free(line);
    }
    sch_pipeline_free(s);
    sch_pipeline_free(p);
}

static void test_legacy_shape(void)
{
    sch_pipeline *p = parse("{\"commands\":[{\"executorName\":\"wget\",\"commandLines\":[\"a\","
                            "\"b\"]},{\"commandLines\":[\"c\"],\"executorName\":\"x\","
                            "\"timeoutMs\":5}]}");
    CHECK(p != NULL);
    if (!p)
        return;
    CHECK(p->n_steps == 2);
    CHECK_STR(p->steps[0].executor, "wget");
    CHECK(p->steps[0].n_commands == 2);
    CHECK_STR(p->steps[0].commands[0], "a");
    CHECK_STR(p->steps[0].commands[1], "b");
    CHECK_STR(p->steps[1].executor, "x");
    CHECK(p->steps[1].timeout_ms == 5);
    sch_pipeline_free(p);

    /* Each shape has its own member name for the command lines. */
    CHECK(REFUSE("{\"commands\":[{\"executorName\":\"w\",\"commands\":[\"a\"]}]}") == -EINVAL);
    CHECK_STR(err, "pipeline JSON line 1 column 34: step 1: unknown member \"commands\" (a step "
                   "has \"executorName\", \"commandLines\" and \"timeoutMs\")");
    CHECK(REFUSE("{\"pipeline\":[{\"executorName\":\"w\",\"commandLines\":[\"a\"]}]}") == -EINVAL);
    CHECK_PREFIX(err, "pipeline JSON line 1 column 34: step 1: unknown member \"commandLines\"");
}

static void test_timeout(void)
{
    sch_pipeline *p = parse("{\"pipeline\":[{\"executorName\":\"w\",\"commands\":[\"a\"],"
                            "\"timeoutMs\":4294967295}]}");
    CHECK(p && p->steps[0].timeout_ms == UINT32_MAX);
    sch_pipeline_free(p);
    static const char *const bad[] = {
        "-1", "1.5", "1e3", "4294967296", "\"5\"", "null", "99999999999999999999999"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char doc[256];
        snprintf(doc, sizeof doc,
                 "{\"pipeline\":[{\"executorName\":\"w\",\"commands\":[\"a\"],\"timeoutMs\":%s}]}",
                 bad[i]);
        CHECK(REFUSE(doc) == -EINVAL);
        CHECK_STR(err, "pipeline JSON line 1 column 63: step 1: \"timeoutMs\" must be an integer "
                       "from 0 to 4294967295");
    }
}

static void test_refusals(void)
{
    /* Malformed JSON: the parser's reason with its position. */
    CHECK(REFUSE("{\"pipeline\": [\n  {\"executorName\": \"w\",, }]}") == -EINVAL);
    CHECK_PREFIX(err, "pipeline JSON line 2 column 24: expected");
    CHECK(REFUSE("") == -EINVAL);
    CHECK_PREFIX(err, "pipeline JSON line 1 column 1: ");
    CHECK(REFUSE("{\"pipeline\":[]} x") == -EINVAL);
    CHECK_PREFIX(err, "pipeline JSON line 1 column 17: ");
    CHECK(refuse(NULL, 0) == -EINVAL);

    /* The document's shape. */
    CHECK(REFUSE("[]") == -EINVAL);
    CHECK_STR(err, "pipeline JSON line 1 column 1: expected an object with \"pipeline\" or "
                   "\"commands\", found array");
    CHECK(REFUSE("{}") == -EINVAL);
    CHECK_STR(err, "pipeline JSON line 1 column 1: expected a \"pipeline\" or \"commands\" member");
    CHECK(REFUSE("{\"pipeline\":[{\"executorName\":\"w\",\"commands\":[\"a\"]}],\n \"x\":1}") ==
          -EINVAL);
    CHECK_STR(err, "pipeline JSON line 2 column 2: unknown member \"x\" (expected \"pipeline\" or "
                   "\"commands\")");
    CHECK(REFUSE("{\"pipeline\":[],\"commands\":[]}") == -EINVAL);
    CHECK_PREFIX(err, "pipeline JSON line 1 column 16: \"pipeline\" and \"commands\"");
    CHECK(REFUSE("{\"pipeline\":{}}") == -EINVAL);
    CHECK_STR(err, "pipeline JSON line 1 column 13: \"pipeline\" must be an array of steps, not "
                   "object");
    CHECK(REFUSE("{\"pipeline\":[]}") == -EINVAL);
    CHECK_STR(err, "pipeline has no steps");
    CHECK(REFUSE("{\"commands\":[]}") == -EINVAL);
    CHECK_STR(err, "pipeline has no steps");
    CHECK(REFUSE("{\"pipeline\":[\"echo\"]}") == -EINVAL);
    CHECK_STR(err, "pipeline JSON line 1 column 14: step 1: expected an object, found string");

    /* Steps. */
    CHECK(REFUSE("{\"pipeline\":[{\"executorName\":\"w\",\"commands\":[\"a\"]},\n"
                 "{\"commands\":[\"b\"]}]}") == -EINVAL);
    CHECK_STR(err, "pipeline step 2: \"executorName\" is missing");
    CHECK(REFUSE("{\"pipeline\":[{\"executorName\":\"\",\"commands\":[\"a\"]}]}") == -EINVAL);
    CHECK_STR(err, "pipeline step 1: \"executorName\" is empty");
    CHECK(REFUSE("{\"pipeline\":[{\"executorName\":\"wget\",\"commands\":[]}]}") == -EINVAL);
    CHECK_STR(err, "pipeline step 1 'wget': no commands");
    CHECK(REFUSE("{\"pipeline\":[{\"executorName\":\"wget\"}]}") == -EINVAL);
    CHECK_STR(err, "pipeline step 1 'wget': no commands");
    CHECK(REFUSE("{\"pipeline\":[{\"executorName\":\"wget\",\"commands\":[\"a\",\"\"]}]}") ==
          -EINVAL);
    CHECK_STR(err, "pipeline step 1 'wget': command 2 is empty");
    CHECK(REFUSE("{\"pipeline\":[\n  {\"executorName\":\"w\",\n   \"comands\":[\"a\"]}]}") ==
          -EINVAL);
    CHECK_STR(err, "pipeline JSON line 3 column 4: step 1: unknown member \"comands\" (a step has "
                   "\"executorName\", \"commands\" and \"timeoutMs\")");

    /* Wrong types. */
    CHECK(REFUSE("{\"pipeline\":[{\"executorName\":7,\"commands\":[\"a\"]}]}") == -EINVAL);
    CHECK_STR(err, "pipeline JSON line 1 column 30: step 1: \"executorName\" must be a string, not "
                   "number");
    CHECK(REFUSE("{\"pipeline\":[{\"executorName\":\"w\",\"commands\":\"a\"}]}") == -EINVAL);
    CHECK_STR(err, "pipeline JSON line 1 column 45: step 1: \"commands\" must be an array of "
                   "strings, not string");
    CHECK(REFUSE("{\"pipeline\":[{\"executorName\":\"w\",\"commands\":[\"a\",[\"b\"]]}]}") ==
          -EINVAL);
    CHECK_STR(err, "pipeline JSON line 1 column 50: step 1: command 2 must be a string, not array");
    CHECK(REFUSE("{\"pipeline\":[{\"executorName\":\"w\",\"commands\":[null]}]}") == -EINVAL);
    CHECK_PREFIX(err,
                 "pipeline JSON line 1 column 46: step 1: command 1 must be a string, not null");

    /* A NUL would silently cut a C string short. */
    CHECK(
        REFUSE(
            "{\"pipeline\":[{\"executorName\":\"w\",\"commands\":[\"rm -rf /tmp/x\\u0000y\"]}]}") ==
        -EINVAL);
    CHECK_STR(err, "pipeline JSON line 1 column 46: step 1: a command contains a NUL character");
    CHECK(REFUSE("{\"pipeline\":[{\"executorName\":\"w\\u0000\",\"commands\":[\"a\"]}]}") ==
          -EINVAL);
    CHECK_PREFIX(err, "pipeline JSON line 1 column 30: step 1: \"executorName\" contains a NUL");
}

/* A growable string for building large documents. */
typedef struct {
    char *s;
    size_t len, cap;
} sbuf;

static void sb_add(sbuf *b, const char *s)
{
    size_t n = strlen(s);
    if (b->len + n + 1 > b->cap) {
        b->cap = (b->len + n + 1) * 2;
        b->s = realloc(b->s, b->cap);
        if (!b->s)
            abort();
    }
    memcpy(b->s + b->len, s, n + 1);
    b->len += n;
}

static void test_caps(void)
{
    sbuf b = {0};
    sch_pipeline *p;

    /* 256 steps are fine, 257 are not. */
    for (int steps = 256; steps <= 257; steps++) {
        b.len = 0;
        sb_add(&b, "{\"pipeline\":[");
        for (int i = 0; i < steps; i++)
            sb_add(&b, i ? ",{\"executorName\":\"w\",\"commands\":[\"a\"]}"
                         : "{\"executorName\":\"w\",\"commands\":[\"a\"]}");
        sb_add(&b, "]}");
        p = NULL;
        int rc = sch_pipeline_parse_json(b.s, b.len, &p, err, sizeof err);
        if (steps == 256) {
            CHECK(rc == 0 && p && p->n_steps == 256);
        } else {
            CHECK(rc == -E2BIG);
            CHECK_STR(err, "pipeline has 257 steps, more than 256");
        }
        sch_pipeline_free(p);
    }

    /* 1024 commands are fine, 1025 are not. */
    for (int n = 1024; n <= 1025; n++) {
        b.len = 0;
        sb_add(&b, "{\"pipeline\":[{\"executorName\":\"w\",\"commands\":[");
        for (int i = 0; i < n; i++)
            sb_add(&b, i ? ",\"x\"" : "\"x\"");
        sb_add(&b, "]}]}");
        p = NULL;
        int rc = sch_pipeline_parse_json(b.s, b.len, &p, err, sizeof err);
        if (n == 1024) {
            CHECK(rc == 0 && p && p->steps[0].n_commands == 1024);
        } else {
            CHECK(rc == -E2BIG);
            CHECK_STR(err, "pipeline step 1 'w': 1025 commands, more than 1024");
        }
        sch_pipeline_free(p);
    }

    /* A command line of 64 KiB is fine, one byte more is not. */
    char *line = malloc(SCH_PIPELINE_MAX_LINE + 2);
    for (size_t extra = 0; extra <= 1; extra++) {
        memset(line, 'a', SCH_PIPELINE_MAX_LINE + 1);
        line[SCH_PIPELINE_MAX_LINE + extra] = '\0';
        b.len = 0;
        sb_add(&b, "{\"pipeline\":[{\"executorName\":\"w\",\"commands\":[\"");
        sb_add(&b, line);
        sb_add(&b, "\"]}]}");
        p = NULL;
        int rc = sch_pipeline_parse_json(b.s, b.len, &p, err, sizeof err);
        if (!extra) {
            CHECK(rc == 0);
        } else {
            CHECK(rc == -E2BIG);
            CHECK_STR(err, "pipeline step 1 'w': command 1 is 65537 bytes, more than 65536");
        }
        sch_pipeline_free(p);
    }
    free(line);

    /* The document itself: refused before it is parsed. */
    size_t big = SCH_PIPELINE_MAX_JSON + 1;
    char *doc = malloc(big);
    memset(doc, ' ', big);
    p = NULL;
    CHECK(sch_pipeline_parse_json(doc, big, &p, err, sizeof err) == -EFBIG);
    CHECK_STR(err, "pipeline JSON is 4194305 bytes, more than 4194304");
    CHECK(p == NULL);
    free(doc);
    free(b.s);
}

/* A one-step, one-command pipeline holding line. */
static sch_pipeline *one_line(const char *line)
{
    sbuf b = {0};
    sb_add(&b, "{\"pipeline\":[{\"executorName\":\"sh\",\"commands\":[\"");
    for (const char *c = line; *c; c++) {
        char e[8] = {*c, 0};
        if (*c == '"' || *c == '\\')
            snprintf(e, sizeof e, "\\%c", *c);
        else if ((unsigned char)*c < 0x20)
            snprintf(e, sizeof e, "\\u%04x", *c);
        sb_add(&b, e);
    }
    sb_add(&b, "\"]}]}");
    sch_pipeline *p = parse(b.s);
    free(b.s);
    return p;
}

/* The placeholders of line, joined with ','. */
static void names_of(const char *line, char *out, size_t size)
{
    sch_pipeline *p = one_line(line);
    const char **names = NULL;
    int n = p ? sch_pipeline_placeholders(p, &names) : -1;
    out[0] = '\0';
    for (int i = 0; i < n; i++) {
        strncat(out, i ? "," : "", size - strlen(out) - 1);
        strncat(out, names[i], size - strlen(out) - 1);
    }
    free(names);
    sch_pipeline_free(p);
}

static void test_placeholders(void)
{
    char got[256];
    names_of("a {{url}} {{ url }} {{\turl\t}} {{b.c-d_9}} {{_x}}", got, sizeof got);
    CHECK_STR(got, "_x,b.c-d_9,url");
    /* Not names: left as written, not reported. */
    names_of("{{1x}} {{a b}} {{x} {x}} {{}} {{ }} {{-a}} {{a!}} ${HOME} {{x", got, sizeof got);
    CHECK_STR(got, "");
    names_of("{{{x}}} {{{{y}}}}", got, sizeof got);
    CHECK_STR(got, "x,y");
    names_of("{{b}}{{a}}{{b}}{{id}}", got, sizeof got);
    CHECK_STR(got, "a,b,id");

    /* Across steps, sorted and distinct. */
    sch_pipeline *p =
        parse("{\"pipeline\":[{\"executorName\":\"a\",\"commands\":[\"{{z}}\","
              "\"{{ab}}\"]},{\"executorName\":\"b\",\"commands\":[\"{{a}} {{z}}\"]}]}");
    const char **names;
    int n = p ? sch_pipeline_placeholders(p, &names) : -1;
    CHECK(n == 3);
    if (n == 3) {
        CHECK_STR(names[0], "a");
        CHECK_STR(names[1], "ab");
        CHECK_STR(names[2], "z");
    }
    free(names);
    sch_pipeline_free(p);

    CHECK(sch_param_name_ok("url"));
    CHECK(sch_param_name_ok("_a.b-c9"));
    CHECK(!sch_param_name_ok(""));
    CHECK(!sch_param_name_ok(NULL));
    CHECK(!sch_param_name_ok("9a"));
    CHECK(!sch_param_name_ok("a b"));
    CHECK(!sch_param_name_ok(".a"));
}

/* Substitutes params into a one-line pipeline; returns the line (malloc'd) or NULL with err. */
static char *subst(const char *line, const sch_param *params, size_t n, int *rc_out)
{
    sch_pipeline *p = one_line(line), *s = NULL;
    char *res = NULL;
    int rc = p ? sch_pipeline_substitute(p, params, n, &s, err, sizeof err) : -1;
    if (rc == 0) {
        CHECK(s && s->n_steps == 1 && s->steps[0].n_commands == 1);
        CHECK_STR(s->steps[0].executor, "sh");
        res = strdup(s->steps[0].commands[0]);
    } else {
        CHECK(s == NULL);
    }
    if (rc_out)
        *rc_out = rc;
    sch_pipeline_free(s);
    sch_pipeline_free(p);
    return res;
}

static void check_subst(const char *line, const sch_param *params, size_t n, const char *want)
{
    char *got = subst(line, params, n, NULL);
    CHECK_STR(got, want);
    free(got);
}

static void test_substitute(void)
{
    const sch_param a[] = {{"url", "http://x/y.png"}, {"n", "3"}};
    check_subst("wget {{url}} -t {{ n }}", a, 2, "wget http://x/y.png -t 3");
    /* Later entries win, so defaults go first. */
    const sch_param b[] = {{"n", "1"}, {"url", "u"}, {"n", "2"}};
    check_subst("{{n}}{{url}}{{n}}", b, 3, "2u2");
    /* Unused parameters are fine; id is kept as written when not given, filled when given. */
    const sch_param c[] = {{"unused", "x"}};
    check_subst("echo {{id}} {{ id }}", c, 1, "echo {{id}} {{ id }}");
    const sch_param d[] = {{"id", "fixed"}};
    check_subst("echo {{id}}", d, 1, "echo fixed");
    check_subst("echo {{1x}} {{a b}}", NULL, 0, "echo {{1x}} {{a b}}");

    /* Quoting. */
    const sch_param q[] = {{"v", "it's"}};
    check_subst("echo {{v}}", q, 1, "echo 'it'\\''s'");
    const sch_param e[] = {{"v", ""}};
    check_subst("echo {{v}}", e, 1, "echo ''");
    const sch_param sp[] = {{"v", "a b"}};
    check_subst("echo {{v}}", sp, 1, "echo 'a b'");
    const sch_param safe[] = {{"v", "A-z_0.9/:@%+=,"}};
    check_subst("echo {{v}}", safe, 1, "echo A-z_0.9/:@%+=,");
    const sch_param nul[] = {{"v", NULL}};
    check_subst("echo {{v}}", nul, 1, "echo ''");
    /* A value never turns into a placeholder: not by itself, nor joined to the template. */
    const sch_param br[] = {{"v", "{{id}}"}, {"w", "id"}};
    check_subst("{{v}}", br, 2, "'{''{id}}'");
    check_subst("{{{{w}}}}", br, 2, "{{'id'}}");
    const sch_param join[] = {{"a", "a"}, {"id", "i"}};
    check_subst("{{ {{a}}x }} {{{{id}}.}} {{a}}", join, 2, "{{ 'a'x }} {{'i'.}} a");

    /* The missing parameter, named with where it is used. */
    sch_pipeline *p = parse("{\"pipeline\":[{\"executorName\":\"wget\",\"commands\":[\"{{a}}\"]},"
                            "{\"executorName\":\"tess\",\"commands\":[\"x\",\"{{a}} {{url}}\"]}]}");
    sch_pipeline *s = (sch_pipeline *)&s;
    const sch_param only_a[] = {{"a", "1"}};
    CHECK(p && sch_pipeline_substitute(p, only_a, 1, &s, err, sizeof err) == -EINVAL);
    CHECK(s == NULL);
    CHECK_STR(err, "missing parameter 'url' (step 2 'tess', command 2)");
    CHECK(sch_pipeline_substitute(p, NULL, 0, &s, err, sizeof err) == -EINVAL);
    CHECK_STR(err, "missing parameter 'a' (step 1 'wget', command 1)");
    const sch_param bad[] = {{"a", "1"}, {"not valid", "x"}};
    CHECK(sch_pipeline_substitute(p, bad, 2, &s, err, sizeof err) == -EINVAL);
    CHECK_STR(err, "parameter 2: 'not valid' is not a valid name");
    sch_pipeline_free(p);

    /* The line cap applies after substitution. */
    char *big = malloc(SCH_PIPELINE_MAX_LINE);
    memset(big, 'a', SCH_PIPELINE_MAX_LINE - 1);
    big[SCH_PIPELINE_MAX_LINE - 1] = '\0';
    const sch_param bp[] = {{"v", big}};
    int rc;
    char *got = subst("{{v}}", bp, 1, &rc);
    CHECK(rc == 0 && got && strlen(got) == SCH_PIPELINE_MAX_LINE - 1);
    free(got);
    got = subst("ab{{v}}", bp, 1, &rc);
    CHECK(rc == -E2BIG && got == NULL);
    CHECK_STR(err, "step 1 'sh', command 1: longer than 65536 bytes after substitution");
    free(big);
}

/* Runs line with /bin/sh -c (what popen does) and returns its standard output. */
static char *run_sh(const char *line)
{
    FILE *f = popen(line, "r");
    if (!f)
        return NULL;
    size_t cap = 4096, len = 0, n;
    char *out = malloc(cap);
    while (len < cap - 1 && (n = fread(out + len, 1, cap - 1 - len, f)) > 0)
        len += n;
    out[len] = '\0';
    int status = pclose(f);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    return out;
}

static void test_shell_quoting(void)
{
    const char *tmp = getenv("TEST_TMPDIR");
    char marker[512], hostile[1100];
    snprintf(marker, sizeof marker, "%s/pipeline_test_marker.%d", tmp ? tmp : "/tmp",
             (int)getpid());
    unlink(marker);
    snprintf(hostile, sizeof hostile, "$(touch %s); 'q\"", marker);
    char backtick[1100];
    snprintf(backtick, sizeof backtick, "`touch %s`x", marker);
    const char *values[] = {
        hostile,      backtick,   "a b\tc\nd",   "*",
        "~",          "'",        "''\\'",       "\\",
        "-n",         "; exit 3", "{{id}}",      "$HOME",
        "a&&b|c>d<e", "!x",       "#no comment", "\xc3\xa9t\xc3\xa9",
        " ",
    };
    for (size_t i = 0; i < sizeof values / sizeof values[0]; i++) {
        const sch_param p[] = {{"v", values[i]}};
        char *line = subst("printf '[%s]' {{v}}", p, 1, NULL);
        CHECK(line != NULL);
        if (!line)
            continue;
        /* The built-in fill must leave a substituted value alone. */
        char *filled = sch_pipeline_fill_builtin(line, "t1");
        CHECK_STR(filled, line);
        char *out = run_sh(filled ? filled : line);
        char want[1200];
        snprintf(want, sizeof want, "[%s]", values[i]);
        CHECK_STR(out, want);
        free(out);
        free(filled);
        free(line);
    }
    CHECK(access(marker, F_OK) != 0);
    unlink(marker);
}

static void test_fill_builtin(void)
{
    char *s = sch_pipeline_fill_builtin("cp /p/{{id}}.txt /q/{{ id }} {{url}} {{x", "abc-1");
    CHECK_STR(s, "cp /p/abc-1.txt /q/abc-1 {{url}} {{x");
    free(s);
    s = sch_pipeline_fill_builtin("echo {{id}}", "a b");
    CHECK_STR(s, "echo 'a b'");
    free(s);
    s = sch_pipeline_fill_builtin("{{{{id}}}}", "x");
    CHECK_STR(s, "{{'x'}}");
    free(s);
    s = sch_pipeline_fill_builtin("", "x");
    CHECK_STR(s, "");
    free(s);
    CHECK(sch_pipeline_fill_builtin(NULL, "x") == NULL);
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

static void test_wire(void)
{
    sch_pipeline *p =
        parse("{\"pipeline\":[{\"executorName\":\"wget\",\"commands\":[\"a {{u}}\","
              "\"b\"],\"timeoutMs\":99},{\"executorName\":\"mc\",\"commands\":[\"c\"]}]}");
    CHECK(p != NULL);
    if (!p)
        return;
    Pm__Scheduler__V1__Pipeline *pb = sch_pipeline_to_pb(p);
    CHECK(pb != NULL);
    CHECK(pb->n_steps == 2);
    CHECK(pb->steps[0]->executor == p->steps[0].executor); /* lent, not copied */
    CHECK(pb->steps[0]->timeout_ms == 99);
    CHECK(pb->steps[0]->n_commands == 2);
    CHECK_STR(pb->steps[0]->commands[1], "b");
    CHECK_STR(pb->steps[1]->commands[0], "c");

    /* Through bytes and back. */
    size_t len = pm__scheduler__v1__pipeline__get_packed_size(pb);
    uint8_t *buf = malloc(len);
    pm__scheduler__v1__pipeline__pack(pb, buf);
    Pm__Scheduler__V1__Pipeline *un = pm__scheduler__v1__pipeline__unpack(NULL, len, buf);
    CHECK(un != NULL);
    sch_pipeline *q = NULL;
    CHECK(un && sch_pipeline_from_pb(un, &q, err, sizeof err) == 0);
    CHECK(q && same(p, q));
    sch_pipeline *d = sch_pipeline_dup(p);
    CHECK(d && same(p, d));
    CHECK(d && d->steps[0].commands[0] != p->steps[0].commands[0]);
    sch_pipeline_free(d);
    sch_pipeline_free(q);
    if (un)
        pm__scheduler__v1__pipeline__free_unpacked(un, NULL);
    free(buf);
    free(pb);
    sch_pipeline_free(p);

    /* The wire is checked by the same rules, with the same messages. */
    Pm__Scheduler__V1__Step s0 = PM__SCHEDULER__V1__STEP__INIT, s1 = s0;
    char *c0[] = {"echo a"}, *c1[] = {"x", ""};
    s0.executor = "w";
    s0.n_commands = 1;
    s0.commands = c0;
    s1.n_commands = 2;
    s1.commands = c1;
    Pm__Scheduler__V1__Step *steps[] = {&s0, &s1};
    Pm__Scheduler__V1__Pipeline w = PM__SCHEDULER__V1__PIPELINE__INIT;
    q = (sch_pipeline *)&q;
    CHECK(sch_pipeline_from_pb(&w, &q, err, sizeof err) == -EINVAL);
    CHECK(q == NULL);
    CHECK_STR(err, "pipeline has no steps");
    CHECK(sch_pipeline_from_pb(NULL, &q, err, sizeof err) == -EINVAL);
    w.n_steps = 2;
    w.steps = steps;
    CHECK(sch_pipeline_from_pb(&w, &q, err, sizeof err) == -EINVAL);
    CHECK_STR(err, "pipeline step 2: \"executorName\" is missing");
    s1.executor = "tess";
    CHECK(sch_pipeline_from_pb(&w, &q, err, sizeof err) == -EINVAL);
    CHECK_STR(err, "pipeline step 2 'tess': command 2 is empty");
    s1.n_commands = 0;
    CHECK(sch_pipeline_from_pb(&w, &q, err, sizeof err) == -EINVAL);
    CHECK_STR(err, "pipeline step 2 'tess': no commands");
    s1.n_commands = 1;
    s1.timeout_ms = 7;
    CHECK(sch_pipeline_from_pb(&w, &q, err, sizeof err) == 0);
    CHECK(q && q->n_steps == 2 && q->steps[1].timeout_ms == 7);
    CHECK(q && q->steps[1].commands[0] != c1[0]);
    sch_pipeline_free(q);
    steps[1] = NULL;
    CHECK(sch_pipeline_from_pb(&w, &q, err, sizeof err) == -EINVAL);
    CHECK_STR(err, "pipeline step 2: \"executorName\" is missing");
}

int main(void)
{
    test_design_example();
    test_legacy_shape();
    test_timeout();
    test_refusals();
    test_caps();
    test_placeholders();
    test_substitute();
    test_shell_quoting();
    test_fill_builtin();
    test_wire();
    return test_done("pipeline_test");
}

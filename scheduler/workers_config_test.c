/*
 * Unit tests of the workers configuration: static and DNS pools with their defaults, executors as
 * ports (numbers and strings) and unix sockets, every refusal with its position and message,
 * loading from a file (present, missing, too big), the gRPC targets built from an executor
 * and a worker, IPv6 literals included, and which changes a SIGHUP may apply.
 */
#include "scheduler/workers_config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "testing/check.h"

static char err[512];

static sch_workers_config *parse(const char *json)
{
    sch_workers_config *c = NULL;
    int rc = sch_workers_config_parse(json, strlen(json), &c, err, sizeof err);
    if (rc != 0)
        fprintf(stderr, "parse failed (%d): %s\n", rc, err);
    return c;
}

/* Parses a document that must be refused with rc; the message is left in err. */
static int refuse(const char *json)
{
    sch_workers_config *c = (sch_workers_config *)&c;
    int rc = sch_workers_config_parse(json, strlen(json), &c, err, sizeof err);
    CHECK(c == NULL);
    CHECK(err[0] != '\0');
    return rc;
}

/* A one-pool document around the given pool members. */
static int refuse_pool(const char *members)
{
    char doc[1024];
    snprintf(doc, sizeof doc, "{\"pools\":[{%s}]}", members);
    return refuse(doc);
}

static void test_header_example(void)
{
    /* The header's example without its comments, as two pools (workers and dns are exclusive). */
    sch_workers_config *c =
        parse("{\n"
              "  \"pools\": [\n"
              "    {\n"
              "      \"name\": \"ocr\",\n"
              "      \"workers\": [\"10.0.0.5\", \"worker-1.local\"],\n"
              "      \"slots\": 2,\n"
              "      \"executors\": {\"wget\": 50051, \"tesseract\": \"50052\", \"mc\": "
              "\"unix:/pm/mc.sock\"}\n"
              "    },\n"
              "    {\n"
              "      \"name\": \"ocr-dns_2\",\n"
              "      \"dns\": \"ocr-workers.default.svc.cluster.local\",\n"
              "      \"resolveIntervalMs\": 500,\n"
              "      \"executors\": {\"wget\": \"65535\"}\n"
              "    }\n"
              "  ]\n"
              "}\n");
    CHECK(c != NULL);
    if (!c)
        return;
    CHECK(c->n_pools == 2);
    const sch_pool_config *p = &c->pools[0];
    CHECK_STR(p->name, "ocr");
    CHECK(p->n_workers == 2);
    CHECK_STR(p->workers[0], "10.0.0.5");
    CHECK_STR(p->workers[1], "worker-1.local");
    CHECK(p->dns == NULL);
    CHECK(p->slots == 2);
    CHECK(p->n_executors == 3);
    const sch_exec_ref *e = sch_pool_executor(p, "wget");
    CHECK(e && e->port == 50051 && e->unix_path == NULL);
    CHECK_STR(e ? e->name : NULL, "wget");
    e = sch_pool_executor(p, "tesseract");
    CHECK(e && e->port == 50052 && e->unix_path == NULL);
    e = sch_pool_executor(p, "mc");
    CHECK(e && e->port == 0);
    CHECK_STR(e ? e->unix_path : NULL, "/pm/mc.sock");
    CHECK(sch_pool_executor(p, "ffmpeg") == NULL);
    CHECK(sch_pool_executor(p, "wge") == NULL);
    CHECK(sch_pool_executor(NULL, "wget") == NULL);

    p = &c->pools[1];
    CHECK_STR(p->name, "ocr-dns_2");
    CHECK(p->workers == NULL && p->n_workers == 0);
    CHECK_STR(p->dns, "ocr-workers.default.svc.cluster.local");
    CHECK(p->resolve_interval_ms == 500);
    CHECK(p->slots == 1);
    CHECK(p->n_executors == 1 && p->executors[0].port == 65535);
    sch_workers_config_free(c);
}

static void test_defaults_and_forms(void)
{
    sch_workers_config *c = parse("{\"pools\":[{\"name\":\"a\",\"dns\":\"w\",\"executors\":"
                                  "{\"x\":1}},{\"name\":\"b\",\"workers\":[\"::1\",\"[fd00::5]\","
                                  "\"host_1\"],\"slots\":4096,\"executors\":{\"x\":\"00080\"}}]}");
    CHECK(c != NULL);
    if (c) {
        CHECK(c->pools[0].resolve_interval_ms == SCH_CONFIG_DEFAULT_RESOLVE_MS);
        CHECK(c->pools[0].slots == 1);
        CHECK(c->pools[0].executors[0].port == 1);
        CHECK(c->pools[1].n_workers == 3);
        CHECK_STR(c->pools[1].workers[0], "::1");
        CHECK_STR(c->pools[1].workers[1], "fd00::5"); /* brackets dropped, added back by target */
        CHECK(c->pools[1].slots == 4096);
        CHECK(c->pools[1].executors[0].port == 80);
    }
    sch_workers_config_free(c);

    /* No pools, and a pool with no workers for now, are configurations, if idle ones. */
    c = parse("{\"pools\":[]}");
    CHECK(c && c->n_pools == 0);
    sch_workers_config_free(c);
    c = parse("{\"pools\":[{\"name\":\"a\",\"workers\":[],\"executors\":{\"x\":1}}]}");
    CHECK(c && c->pools[0].n_workers == 0);
    sch_workers_config_free(c);
}

static void test_refusals(void)
{
    /* Malformed JSON, with the parser's position; comments are not JSON. */
    CHECK(refuse("{\"pools\": [\n  // ocr\n]}") == -EINVAL);
    CHECK_PREFIX(err, "workers config line 2 column 3: ");
    CHECK(refuse("") == -EINVAL);
    CHECK_PREFIX(err, "workers config line 1 column 1: ");
    CHECK(refuse("[]") == -EINVAL);
    CHECK_STR(err, "workers config line 1 column 1: expected an object, found array");
    CHECK(refuse("{}") == -EINVAL);
    CHECK_STR(err, "workers config line 1 column 1: \"pools\" is missing");
    CHECK(refuse("{\"pools\":[],\"pool\":1}") == -EINVAL);
    CHECK_STR(err, "workers config line 1 column 13: unknown member \"pool\" (expected \"pools\")");
    CHECK(refuse("{\"pools\":{}}") == -EINVAL);
    CHECK_STR(err, "workers config line 1 column 10: \"pools\" must be an array, not object");
    CHECK(refuse("{\"pools\":[1]}") == -EINVAL);
    CHECK_STR(err, "workers config line 1 column 11: pool 1: expected an object, found number");

    /* Names. */
    CHECK(refuse_pool("\"workers\":[\"a\"],\"executors\":{\"x\":1}") == -EINVAL);
    CHECK_STR(err, "workers config line 1 column 11: pool 1: \"name\" is missing");
    CHECK(refuse_pool("\"name\":\"\",\"workers\":[\"a\"],\"executors\":{\"x\":1}") == -EINVAL);
    CHECK_STR(err, "workers config line 1 column 19: pool 1: \"name\" must be a non-empty string");
    CHECK(refuse_pool("\"name\":\"a b\",\"workers\":[\"a\"],\"executors\":{\"x\":1}") == -EINVAL);
    CHECK_STR(err, "workers config line 1 column 19: pool 1: name \"a b\" may hold only A-Z a-z "
                   "0-9 _ . -");
    CHECK(refuse("{\"pools\":[{\"name\":\"ocr\",\"dns\":\"a\",\"executors\":{\"x\":1}},\n"
                 "{\"name\":\"ocr\",\"dns\":\"b\",\"executors\":{\"x\":1}}]}") == -EINVAL);
    CHECK_STR(err,
              "workers config line 2 column 9: pool 2: name \"ocr\" is already used by pool 1");

    /* workers and dns. */
    CHECK(
        refuse_pool("\"name\":\"ocr\",\"workers\":[\"a\"],\"dns\":\"b\",\"executors\":{\"x\":1}") ==
        -EINVAL);
    CHECK_STR(err, "workers config line 1 column 41: pool \"ocr\": \"workers\" and \"dns\" are "
                   "exclusive; give one");
    CHECK(refuse_pool("\"name\":\"ocr\",\"executors\":{\"x\":1}") == -EINVAL);
    CHECK_STR(err, "workers config line 1 column 11: pool \"ocr\": needs \"workers\" (addresses) "
                   "or \"dns\" (a name)");
    CHECK(refuse_pool("\"name\":\"ocr\",\"workers\":\"a\",\"executors\":{\"x\":1}") == -EINVAL);
    CHECK_STR(err, "workers config line 1 column 35: pool \"ocr\": \"workers\" must be an array of "
                   "addresses, not string");
    CHECK(refuse_pool("\"name\":\"ocr\",\"workers\":[\"a\",\"b\",\"a\"],\"executors\":{\"x\":1}") ==
          -EINVAL);
    CHECK_STR(err, "workers config line 1 column 44: pool \"ocr\": worker \"a\" is listed twice");
    CHECK(refuse_pool("\"name\":\"ocr\",\"workers\":[\"::1\",\"[::1]\"],\"executors\":{\"x\":1}") ==
          -EINVAL);
    CHECK_PREFIX(err,
                 "workers config line 1 column 42: pool \"ocr\": worker \"::1\" is listed twice");
    static const char *const bad_workers[] = {"\"a:80\"",    "\"\"",    "\"a b\"",     "\"[a]\"",
                                              "\"1::2::3\"", "\"a/b\"", "\"a\\u0000\""};
    for (size_t i = 0; i < sizeof bad_workers / sizeof bad_workers[0]; i++) {
        char m[256];
        snprintf(m, sizeof m, "\"name\":\"ocr\",\"workers\":[%s],\"executors\":{\"x\":1}",
                 bad_workers[i]);
        CHECK(refuse_pool(m) == -EINVAL);
        CHECK_PREFIX(err, "workers config line 1 column 36: pool \"ocr\": worker ");
        CHECK(strstr(err, "is not a host name or an IP address") != NULL);
    }
    CHECK(refuse_pool("\"name\":\"ocr\",\"workers\":[7],\"executors\":{\"x\":1}") == -EINVAL);
    CHECK_STR(err, "workers config line 1 column 36: pool \"ocr\": worker 1 must be a string, not "
                   "number");
    CHECK(refuse_pool("\"name\":\"ocr\",\"dns\":\"a:53\",\"executors\":{\"x\":1}") == -EINVAL);
    CHECK_STR(err, "workers config line 1 column 31: pool \"ocr\": \"dns\" must be a host name");
    CHECK(refuse_pool("\"name\":\"ocr\",\"dns\":[\"a\"],\"executors\":{\"x\":1}") == -EINVAL);
    CHECK_PREFIX(err, "workers config line 1 column 31: pool \"ocr\": \"dns\" must be");
    CHECK(refuse_pool("\"name\":\"ocr\",\"workers\":[\"a\"],\"resolveIntervalMs\":5,\"executors\":"
                      "{\"x\":1}") == -EINVAL);
    CHECK_STR(err, "workers config line 1 column 41: pool \"ocr\": \"resolveIntervalMs\" applies "
                   "only with \"dns\"");
    CHECK(refuse_pool("\"name\":\"ocr\",\"dns\":\"a\",\"resolveIntervalMs\":0,\"executors\":"
                      "{\"x\":1}") == -EINVAL);
    CHECK_STR(err,
              "workers config line 1 column 55: pool \"ocr\": \"resolveIntervalMs\" must be an "
              "integer from 1 to 4294967295");

    /* slots. */
    static const char *const bad_slots[] = {"0", "4097", "-1", "1.5", "\"2\""};
    for (size_t i = 0; i < sizeof bad_slots / sizeof bad_slots[0]; i++) {
        char m[256];
        snprintf(m, sizeof m, "\"name\":\"ocr\",\"dns\":\"a\",\"slots\":%s,\"executors\":{\"x\":1}",
                 bad_slots[i]);
        CHECK(refuse_pool(m) == -EINVAL);
        CHECK_STR(err,
                  "workers config line 1 column 43: pool \"ocr\": \"slots\" must be an integer "
                  "from 1 to 4096");
    }

    /* Executors. */
    CHECK(refuse_pool("\"name\":\"ocr\",\"dns\":\"a\"") == -EINVAL);
    CHECK_STR(err, "workers config line 1 column 11: pool \"ocr\": \"executors\" is missing");
    CHECK(refuse_pool("\"name\":\"ocr\",\"dns\":\"a\",\"executors\":{}") == -EINVAL);
    CHECK_STR(err, "workers config line 1 column 47: pool \"ocr\": \"executors\" is empty");
    CHECK(refuse_pool("\"name\":\"ocr\",\"dns\":\"a\",\"executors\":[1]") == -EINVAL);
    CHECK_STR(err,
              "workers config line 1 column 47: pool \"ocr\": \"executors\" must be an object, "
              "not array");
    static const char *const bad_ports[] = {"0",     "65536",     "-1",         "1.0",
                                            "\"0\"", "\"65536\"", "\"80a\"",    "\" 80\"",
                                            "\"\"",  "\"+80\"",   "\"123456\"", "1e2"};
    for (size_t i = 0; i < sizeof bad_ports / sizeof bad_ports[0]; i++) {
        char m[256];
        snprintf(m, sizeof m, "\"name\":\"ocr\",\"dns\":\"a\",\"executors\":{\"wget\":%s}",
                 bad_ports[i]);
        CHECK(refuse_pool(m) == -EINVAL);
        CHECK_STR(err,
                  "workers config line 1 column 55: pool \"ocr\": executor \"wget\": port must "
                  "be 1..65535");
    }
    CHECK(refuse_pool("\"name\":\"ocr\",\"dns\":\"a\",\"executors\":{\"wget\":true}") == -EINVAL);
    CHECK_STR(err,
              "workers config line 1 column 55: pool \"ocr\": executor \"wget\" must be a port "
              "(1..65535) or \"unix:PATH\", not boolean");
    CHECK(refuse_pool("\"name\":\"ocr\",\"dns\":\"a\",\"executors\":{\"mc\":\"unix:\"}") ==
          -EINVAL);
    CHECK_STR(err,
              "workers config line 1 column 53: pool \"ocr\": executor \"mc\": \"unix:\" needs "
              "a socket path");
    char m[512], path[200];
    memset(path, 'p', 108);
    path[108] = '\0';
    snprintf(m, sizeof m, "\"name\":\"ocr\",\"dns\":\"a\",\"executors\":{\"mc\":\"unix:/%.107s\"}",
             path);
    CHECK(refuse_pool(m) == -EINVAL);
    CHECK_STR(err, "workers config line 1 column 53: pool \"ocr\": executor \"mc\": socket path is "
                   "108 bytes, more than 107");
    CHECK(refuse_pool("\"name\":\"ocr\",\"dns\":\"a\",\"executors\":{\"\":1}") == -EINVAL);
    CHECK_STR(err, "workers config line 1 column 48: pool \"ocr\": an executor name must be "
                   "non-empty text");
    /* Duplicate executors are refused by the JSON parser itself. */
    CHECK(refuse_pool("\"name\":\"ocr\",\"dns\":\"a\",\"executors\":{\"x\":1,\"x\":2}") == -EINVAL);
    CHECK_PREFIX(err, "workers config line 1 column 54: duplicate member name \"x\"");
    CHECK(refuse_pool("\"name\":\"ocr\",\"dns\":\"a\",\"executor\":{\"x\":1}") == -EINVAL);
    CHECK_PREFIX(err, "workers config line 1 column 35: pool \"ocr\": unknown member \"executor\"");
}

static void test_caps(void)
{
    /* 65 pools, 65 executors, 4097 workers. */
    size_t cap = 1 << 20, len = 0;
    char *doc = malloc(cap);
    len += (size_t)snprintf(doc + len, cap - len, "{\"pools\":[");
    for (int i = 0; i < 65; i++)
        len += (size_t)snprintf(doc + len, cap - len,
                                "%s{\"name\":\"p%d\",\"dns\":\"a\",\"executors\":{\"x\":1}}",
                                i ? "," : "", i);
    snprintf(doc + len, cap - len, "]}");
    CHECK(refuse(doc) == -EINVAL);
    CHECK_STR(err, "workers config line 1 column 10: 65 pools, more than 64");

    len = (size_t)snprintf(doc, cap, "{\"pools\":[{\"name\":\"a\",\"dns\":\"a\",\"executors\":{");
    for (int i = 0; i < 65; i++)
        len += (size_t)snprintf(doc + len, cap - len, "%s\"e%d\":1", i ? "," : "", i);
    snprintf(doc + len, cap - len, "}}]}");
    CHECK(refuse(doc) == -EINVAL);
    CHECK_STR(err, "workers config line 1 column 45: pool \"a\": 65 executors, more than 64");

    for (int n = 4096; n <= 4097; n++) {
        len = (size_t)snprintf(doc, cap, "{\"pools\":[{\"name\":\"a\",\"workers\":[");
        for (int i = 0; i < n; i++)
            len += (size_t)snprintf(doc + len, cap - len, "%s\"w%d\"", i ? "," : "", i);
        snprintf(doc + len, cap - len, "],\"executors\":{\"x\":1}}]}");
        sch_workers_config *c = NULL;
        int rc = sch_workers_config_parse(doc, strlen(doc), &c, err, sizeof err);
        if (n == 4096) {
            CHECK(rc == 0 && c && c->pools[0].n_workers == 4096);
        } else {
            CHECK(rc == -EINVAL);
            CHECK_STR(err, "workers config line 1 column 33: pool \"a\": 4097 workers, more than "
                           "4096");
        }
        sch_workers_config_free(c);
    }

    /* Over 1 MiB. */
    char *big = malloc((1 << 20) + 1);
    memset(big, ' ', (1 << 20) + 1);
    sch_workers_config *c = NULL;
    CHECK(sch_workers_config_parse(big, (1 << 20) + 1, &c, err, sizeof err) == -EFBIG);
    CHECK_STR(err, "workers config is 1048577 bytes, more than 1048576");
    CHECK(c == NULL);
    free(big);
    free(doc);
}

static void write_file(const char *path, const char *text, size_t len)
{
    FILE *f = fopen(path, "w");
    CHECK(f != NULL);
    if (!f)
        return;
    CHECK(fwrite(text, 1, len, f) == len);
    fclose(f);
}

static void test_load(void)
{
    const char *tmp = getenv("TEST_TMPDIR");
    char path[512];
    snprintf(path, sizeof path, "%s/workers_config_test.%d.json", tmp ? tmp : "/tmp",
             (int)getpid());
    const char *good = "{\"pools\":[{\"name\":\"ocr\",\"workers\":[\"10.0.0.5\"],\"executors\":"
                       "{\"wget\":50051}}]}\n";
    write_file(path, good, strlen(good));
    sch_workers_config *c = NULL;
    CHECK(sch_workers_config_load(path, &c, err, sizeof err) == 0);
    CHECK(c && c->n_pools == 1);
    CHECK_STR(c ? c->pools[0].name : NULL, "ocr");
    sch_workers_config_free(c);

    /* Errors start with the path. */
    const char *bad = "{\"pools\":[\n{\"name\":\"ocr\",\"dns\":\"a\",\"executors\":{\"wget\":0}}]}";
    write_file(path, bad, strlen(bad));
    c = (sch_workers_config *)&c;
    CHECK(sch_workers_config_load(path, &c, err, sizeof err) == -EINVAL);
    CHECK(c == NULL);
    char want[1024];
    snprintf(want, sizeof want,
             "%s: workers config line 2 column 45: pool \"ocr\": executor \"wget\": port must be "
             "1..65535",
             path);
    CHECK_STR(err, want);

    /* Exactly 1 MiB is read (and refused as JSON); one byte more is too big. */
    char *big = malloc((1 << 20) + 1);
    memset(big, ' ', (1 << 20) + 1);
    write_file(path, big, 1 << 20);
    CHECK(sch_workers_config_load(path, &c, err, sizeof err) == -EINVAL);
    write_file(path, big, (1 << 20) + 1);
    CHECK(sch_workers_config_load(path, &c, err, sizeof err) == -EFBIG);
    snprintf(want, sizeof want, "%s: more than 1048576 bytes", path);
    CHECK_STR(err, want);
    free(big);

    unlink(path);
    CHECK(sch_workers_config_load(path, &c, err, sizeof err) == -ENOENT);
    CHECK(c == NULL);
    snprintf(want, sizeof want, "%s: No such file or directory", path);
    CHECK_STR(err, want);
    CHECK(sch_workers_config_load(tmp ? tmp : "/tmp", &c, err, sizeof err) == -EISDIR);
}

static void test_targets(void)
{
    char buf[300];
    sch_exec_ref tcp = {.name = "wget", .port = 50051};
    sch_exec_ref unix_ = {.name = "mc", .unix_path = "/pm/mc.sock"};
    CHECK_STR(sch_exec_target(&tcp, "10.0.0.5", buf, sizeof buf), "10.0.0.5:50051");
    CHECK_STR(sch_exec_target(&tcp, "worker-1.local", buf, sizeof buf), "worker-1.local:50051");
    CHECK_STR(sch_exec_target(&tcp, "fd00::5", buf, sizeof buf), "[fd00::5]:50051");
    CHECK_STR(sch_exec_target(&tcp, "::1", buf, sizeof buf), "[::1]:50051");
    CHECK_STR(sch_exec_target(&tcp, "[::1]", buf, sizeof buf), "[::1]:50051");
    CHECK_STR(sch_exec_target(&unix_, "10.0.0.5", buf, sizeof buf), "unix:/pm/mc.sock");
    CHECK(sch_exec_target(&tcp, "h", buf, sizeof buf) == buf);
    /* A short buffer truncates, still terminated. */
    char small[6];
    CHECK_STR(sch_exec_target(&tcp, "10.0.0.5", small, sizeof small), "10.0.");

    /* From a parsed config, the worker as stored. */
    sch_workers_config *c = parse("{\"pools\":[{\"name\":\"a\",\"workers\":[\"[fd00::1]\"],"
                                  "\"executors\":{\"x\":\"8080\"}}]}");
    if (c) {
        const sch_pool_config *p = &c->pools[0];
        CHECK_STR(sch_exec_target(sch_pool_executor(p, "x"), p->workers[0], buf, sizeof buf),
                  "[fd00::1]:8080");
    }
    sch_workers_config_free(c);
}

/* next against base: 0 when compatible, otherwise the message must hold needle. */
static void check_compatible(const sch_workers_config *base, const char *next_json,
                             const char *needle)
{
    sch_workers_config *next = parse(next_json);
    CHECK(next != NULL);
    err[0] = '\0';
    int rc = sch_workers_config_compatible(base, next, err, sizeof err);
    if (!needle) {
        CHECK(rc == 0);
    } else {
        CHECK(rc == -EINVAL);
        if (!strstr(err, needle))
            fprintf(stderr, "compatible: \"%s\" does not say \"%s\"\n", err, needle);
        CHECK(strstr(err, needle) != NULL);
    }
    sch_workers_config_free(next);
}

static void test_compatible(void)
{
    sch_workers_config *base =
        parse("{\"pools\":[{\"name\":\"a\",\"workers\":[\"w1\"],\"slots\":1,"
              "\"executors\":{\"x\":7001,\"y\":\"unix:/s/y.sock\"}},"
              "{\"name\":\"d\",\"dns\":\"svc\",\"executors\":{\"x\":7001}}]}");
    CHECK(base != NULL);
    /* Worker lists, slots, DNS names and intervals may change. */
    check_compatible(base,
                     "{\"pools\":[{\"name\":\"a\",\"workers\":[\"w2\",\"w3\"],\"slots\":4,"
                     "\"executors\":{\"x\":7001,\"y\":\"unix:/s/y.sock\"}},{\"name\":\"d\","
                     "\"dns\":\"other\",\"resolveIntervalMs\":500,\"executors\":{\"x\":7001}}]}",
                     NULL);
    /* The executors in another order are the same executors. */
    check_compatible(base,
                     "{\"pools\":[{\"name\":\"a\",\"workers\":[\"w1\"],\"executors\":"
                     "{\"y\":\"unix:/s/y.sock\",\"x\":7001}},{\"name\":\"d\",\"dns\":\"svc\","
                     "\"executors\":{\"x\":7001}}]}",
                     NULL);
    /* What running tasks and workers depend on may not. */
    check_compatible(base,
                     "{\"pools\":[{\"name\":\"a\",\"workers\":[\"w1\"],\"executors\":"
                     "{\"x\":7001,\"y\":\"unix:/s/y.sock\"}}]}",
                     "number of pools changed (2 to 1)");
    check_compatible(base,
                     "{\"pools\":[{\"name\":\"d\",\"dns\":\"svc\",\"executors\":{\"x\":7001}},"
                     "{\"name\":\"a\",\"workers\":[\"w1\"],\"executors\":"
                     "{\"x\":7001,\"y\":\"unix:/s/y.sock\"}}]}",
                     "pool \"a\" is renamed or moved");
    check_compatible(base,
                     "{\"pools\":[{\"name\":\"a\",\"workers\":[\"w1\"],\"executors\":"
                     "{\"x\":7002,\"y\":\"unix:/s/y.sock\"}},{\"name\":\"d\",\"dns\":\"svc\","
                     "\"executors\":{\"x\":7001}}]}",
                     "pool \"a\" changed its executors");
    check_compatible(base,
                     "{\"pools\":[{\"name\":\"a\",\"workers\":[\"w1\"],\"executors\":"
                     "{\"x\":7001,\"y\":\"unix:/s/z.sock\"}},{\"name\":\"d\",\"dns\":\"svc\","
                     "\"executors\":{\"x\":7001}}]}",
                     "pool \"a\" changed its executors");
    check_compatible(base,
                     "{\"pools\":[{\"name\":\"a\",\"workers\":[\"w1\"],\"executors\":"
                     "{\"x\":7001,\"y\":\"unix:/s/y.sock\"}},{\"name\":\"d\",\"workers\":"
                     "[\"svc\"],\"executors\":{\"x\":7001}}]}",
                     "pool \"d\" changed between a static worker list and DNS");
    check_compatible(base,
                     "{\"pools\":[{\"name\":\"a\",\"workers\":[\"w1\"],\"executors\":"
                     "{\"x\":7001}},{\"name\":\"d\",\"dns\":\"svc\","
                     "\"executors\":{\"x\":7001}}]}",
                     "pool \"a\" changed its executors");
    sch_workers_config_free(base);
}

int main(void)
{
    test_compatible();
    test_header_example();
    test_defaults_and_forms();
    test_refusals();
    test_caps();
    test_load();
    test_targets();
    return test_done("workers_config_test");
}

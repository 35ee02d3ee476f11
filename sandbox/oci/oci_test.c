/*
 * Tests of the OCI / Docker profile loader, in two halves. The first half loads profiles and
 * checks what comes back: each malformed profile in testdata/ is refused with a message naming the
 * file, line:column, entry and reason; options, architectures and file errors behave as
 * documented. The second half checks behaviour: a forked child installs the filter with
 * seccomp_load and makes real system calls, so the test sees what the kernel does under the
 * filter, not what libseccomp's tables say. Dangerous calls are made with arguments the kernel
 * rejects anyway (bad flags, NULL pointers), so a filter that failed to refuse them does no harm,
 * and the filter's errno is made unusual (123) where EPERM from the kernel would be ambiguous.
 */
#include "sandbox/oci/oci.h"

#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <spawn.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "testing/check.h"

#define TESTDATA "sandbox/oci/testdata/"

/* Filter errno used where the kernel could also say EPERM. */
#define MARK 123

extern char **environ;

static char *read_all(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    size_t cap = 1 << 16, n = 0;
    char *buf = malloc(cap);
    size_t r;
    while (buf && (r = fread(buf + n, 1, cap - n, f)) > 0) {
        n += r;
        if (n == cap)
            buf = realloc(buf, cap *= 2);
    }
    fclose(f);
    *len = n;
    return buf;
}

/* ---- loading and refusing ---- */

typedef struct {
    const char *file;
    int rc;
    const char *msg; /* expected message prefix */
} refusal;

static const refusal refusals[] = {
    {"bad-json.json", -EINVAL,
     TESTDATA "bad-json.json:5:5: expected ',' or ']' after an array element, found '{'"},
    {"trailing-comma.json", -EINVAL,
     TESTDATA "trailing-comma.json:4:33: expected a value after ',', found ']' (trailing commas "
              "are not allowed)"},
    {"empty.json", -EINVAL,
     TESTDATA "empty.json:1:1: expected a JSON value, found end of input (the document is empty)"},
    {"too-deep.json", -EINVAL, TESTDATA "too-deep.json:3:77: nesting deeper than 64 levels"},
    {"duplicate-key.json", -EINVAL,
     TESTDATA "duplicate-key.json:4:54: duplicate member name \"action\" (first at 4:26)"},
    {"not-object.json", -EINVAL,
     TESTDATA "not-object.json:1:1: top level: expected an object, found an array"},
    {"missing-default.json", -EINVAL,
     TESTDATA "missing-default.json:1:1: top level: missing \"defaultAction\""},
    {"unknown-syscall.json", -EINVAL,
     TESTDATA "unknown-syscall.json:5:41: syscalls[1].names[2]: unknown syscall \"not_a_syscall\" "
              "(libseccomp "},
    {"unknown-syscall-refused.json", -EINVAL,
     TESTDATA "unknown-syscall-refused.json:5:26: syscalls[0].names[1]: unknown syscall "
              "\"frobnicate_kernel\""},
    {"unknown-action.json", -EINVAL,
     TESTDATA "unknown-action.json:6:38: syscalls[2].action: unknown action \"SCMP_ACT_MAYBE\" "
              "(expected SCMP_ACT_ALLOW, "},
    {"notify.json", -EINVAL,
     TESTDATA "notify.json:5:37: syscalls[0].action: SCMP_ACT_NOTIFY is not supported"},
    {"wrong-type.json", -EINVAL,
     TESTDATA "wrong-type.json:4:16: syscalls[0].names: expected an array, found a string"},
    {"wrong-type-errno.json", -EINVAL,
     TESTDATA "wrong-type-errno.json:3:22: defaultErrnoRet: expected a number, found a string"},
    {"bad-op.json", -EINVAL,
     TESTDATA "bad-op.json:10:48: syscalls[3].args[0].op: unknown operator \"SCMP_CMP_FOO\" "
              "(expected SCMP_CMP_NE, "},
    {"bad-arg-index.json", -EINVAL,
     TESTDATA "bad-arg-index.json:9:20: syscalls[0].args[1].index: 6 is out of range (0 to 5)"},
    {"fraction.json", -EINVAL,
     TESTDATA "fraction.json:4:68: syscalls[0].errnoRet: expected a non-negative integer, found "
              "1.0"},
    {"huge-number.json", -EINVAL,
     TESTDATA "huge-number.json:7:39: syscalls[0].args[0].value: 18446744073709551616 is out of "
              "range (0 to 18446744073709551615)"},
    {"huge-errno.json", -EINVAL,
     TESTDATA "huge-errno.json:3:22: defaultErrnoRet: 70000 is out of range (0 to 4095)"},
    {"errno-on-allow.json", -EINVAL,
     TESTDATA "errno-on-allow.json:4:66: syscalls[0].errnoRet: only meaningful with "
              "SCMP_ACT_ERRNO or SCMP_ACT_TRACE, not SCMP_ACT_ALLOW"},
    {"missing-action.json", -EINVAL,
     TESTDATA "missing-action.json:5:5: syscalls[1]: missing \"action\""},
    {"bad-arch.json", -EINVAL,
     TESTDATA "bad-arch.json:3:41: architectures[1]: unknown architecture \"SCMP_ARCH_Z80\""},
    {"bad-cap.json", -EINVAL,
     TESTDATA "bad-cap.json:5:78: syscalls[1].includes.caps[0]: unknown capability "
              "\"CAP_SYS_GOD\""},
    {"conflict.json", -EINVAL,
     TESTDATA "conflict.json:6:17: syscalls[2].names[0]: \"getpid\" gets SCMP_ACT_KILL_PROCESS "
              "here but SCMP_ACT_ALLOW in syscalls[0]; libseccomp would silently keep only the "
              "rule without conditions"},
};

static void test_refusals(void)
{
    for (size_t i = 0; i < sizeof refusals / sizeof refusals[0]; i++) {
        char path[256], err[512];
        snprintf(path, sizeof path, TESTDATA "%s", refusals[i].file);
        scmp_filter_ctx ctx = (scmp_filter_ctx)1;
        int rc = sbx_oci_load(path, NULL, 0, &ctx, err, sizeof err);
        if (rc != refusals[i].rc || ctx != NULL ||
            strncmp(err, refusals[i].msg, strlen(refusals[i].msg)) != 0) {
            fprintf(stderr, "%s: rc=%d \"%s\"\n    expected rc=%d \"%s\"\n", refusals[i].file, rc,
                    err, refusals[i].rc, refusals[i].msg);
            test_failures++;
        }
    }
}

static void test_file_errors(void)
{
    char err[512];
    scmp_filter_ctx ctx;
    CHECK(sbx_oci_load(TESTDATA "no-such-file.json", NULL, 0, &ctx, err, sizeof err) == -ENOENT);
    CHECK_STR(err, TESTDATA "no-such-file.json: cannot open: No such file or directory");
    CHECK(sbx_oci_load(TESTDATA, NULL, 0, &ctx, err, sizeof err) == -EISDIR);
    CHECK_STR(err, TESTDATA ": is a directory");

    /* A file just over the limit, of valid JSON (spaces), is refused for its size. */
    const char *tmp = getenv("TEST_TMPDIR");
    char path[512];
    snprintf(path, sizeof path, "%s/big.json", tmp ? tmp : "/tmp");
    FILE *f = fopen(path, "wb");
    CHECK(f != NULL);
    if (!f)
        return;
    fputs("{\"defaultAction\":\"SCMP_ACT_ALLOW\"}", f);
    for (size_t i = 0; i < SBX_OCI_MAX_BYTES; i++)
        fputc(' ', f);
    fclose(f);
    CHECK(sbx_oci_load(path, NULL, 0, &ctx, err, sizeof err) == -EFBIG && ctx == NULL);
    CHECK(strstr(err, ": larger than the limit of 1048576 bytes") != NULL);
    /* Exactly at the limit is fine. */
    CHECK(truncate(path, SBX_OCI_MAX_BYTES) == 0);
    CHECK(sbx_oci_load(path, NULL, 0, &ctx, err, sizeof err) == 0);
    seccomp_release(ctx);
    unlink(path);

    /* The buffer form has the same limit. */
    size_t n = SBX_OCI_MAX_BYTES + 1;
    char *big = malloc(n);
    memset(big, ' ', n);
    memcpy(big, "{}", 2);
    CHECK(sbx_oci_load_buffer(big, n, "big", NULL, 0, &ctx, err, sizeof err) == -EFBIG);
    CHECK_STR(err, "big:1:1: document is 1048577 bytes, over the limit of 1048576");
    free(big);

    /* A short error buffer gets a truncated, terminated message; none at all is fine too. */
    char small[8];
    CHECK(sbx_oci_load_buffer("[", 1, "x.json", NULL, 0, &ctx, small, sizeof small) == -EINVAL);
    CHECK_STR(small, "x.json:");
    CHECK(sbx_oci_load_buffer("[", 1, "x.json", NULL, 0, &ctx, NULL, 0) == -EINVAL);
    CHECK(sbx_oci_load_buffer("[", 1, NULL, NULL, 0, &ctx, err, sizeof err) == -EINVAL);
    CHECK_PREFIX(err, "<profile>:1:2: ");
}

static int load_str(const char *json, const char *const *caps, size_t ncaps, scmp_filter_ctx *ctx,
                    char *err, size_t errlen)
{
    return sbx_oci_load_buffer(json, strlen(json), "t.json", caps, ncaps, ctx, err, errlen);
}

static void test_docker_default_loads(void)
{
    char err[512];
    scmp_filter_ctx ctx;
    const char *all[] = {"CAP_SYS_ADMIN", "CAP_SYS_PTRACE", "cap_bpf", "SYS_CHROOT"};
    CHECK(sbx_oci_load(TESTDATA "docker-default.json", NULL, 0, &ctx, err, sizeof err) == 0);
    CHECK_STR(err, "");
    if (ctx) {
        /* archMap: the native architecture's entry adds its sub-architectures. */
        if (seccomp_arch_native() == SCMP_ARCH_X86_64) {
            CHECK(seccomp_arch_exist(ctx, SCMP_ARCH_X86) == 0);
            CHECK(seccomp_arch_exist(ctx, SCMP_ARCH_X32) == 0);
            CHECK(seccomp_arch_exist(ctx, SCMP_ARCH_ARM) == -EEXIST);
        }
        uint32_t v = 0;
        CHECK(seccomp_attr_get(ctx, SCMP_FLTATR_ACT_DEFAULT, &v) == 0 && v == SCMP_ACT_ERRNO(1));
        int fd = open("/dev/null", O_WRONLY | O_CLOEXEC);
        CHECK(seccomp_export_bpf(ctx, fd) == 0);
        close(fd);
        seccomp_release(ctx);
    }
    CHECK(sbx_oci_load(TESTDATA "docker-default.json", all, 4, &ctx, err, sizeof err) == 0);
    seccomp_release(ctx);

    const char *bad[] = {"CAP_SYS_ADMIN", "CAP_FLY"};
    CHECK(sbx_oci_load(TESTDATA "docker-default.json", bad, 2, &ctx, err, sizeof err) == -EINVAL);
    CHECK_STR(err, TESTDATA "docker-default.json: kept capabilities: unknown capability "
                            "\"CAP_FLY\"");
}

static void collect_warning(void *arg, const char *msg)
{
    char *buf = arg;
    if (!buf[0])
        snprintf(buf, 512, "%s", msg);
}

static void test_options(void)
{
    char err[512], warn[512] = "";
    scmp_filter_ctx ctx;
    sbx_oci_options opt = {
        .flags = SBX_OCI_SKIP_UNKNOWN_ALLOWED, .warn = collect_warning, .warn_arg = warn};
    CHECK(sbx_oci_load_ex(TESTDATA "unknown-syscall.json", &opt, &ctx, err, sizeof err) == 0);
    seccomp_release(ctx);
    CHECK_PREFIX(warn, TESTDATA "unknown-syscall.json:5:41: syscalls[1].names[2]: unknown syscall "
                                "\"not_a_syscall\" skipped");
    /* Skipping a name from a refusing rule would let the call through: still an error. */
    CHECK(sbx_oci_load_ex(TESTDATA "unknown-syscall-refused.json", &opt, &ctx, err, sizeof err) ==
          -EINVAL);
    CHECK_PREFIX(err, TESTDATA "unknown-syscall-refused.json:5:26: syscalls[0].names[1]: unknown");
    CHECK(sbx_oci_load_buffer_ex("{\"defaultAction\":\"SCMP_ACT_LOG\"}", 32, NULL, NULL, &ctx, err,
                                 sizeof err) == 0);
    seccomp_release(ctx);
}

/* Profiles that load, with the effect checked on the context, not in a child. */
static void test_accepted_forms(void)
{
    char err[512];
    scmp_filter_ctx ctx;
    /* Unknown fields anywhere are ignored; null counts as absent; the legacy "name" works. */
    const char *p = "{\"defaultAction\":\"SCMP_ACT_ALLOW\",\"x-future\":{\"a\":[1,2]},"
                    "\"architectures\":null,\"syscalls\":[{\"name\":\"getpid\","
                    "\"action\":\"SCMP_ACT_ERRNO\",\"args\":null,\"includes\":null,"
                    "\"excludes\":{},\"newField\":true,\"comment\":\"c\"}]}";
    CHECK(load_str(p, NULL, 0, &ctx, err, sizeof err) == 0);
    CHECK_STR(err, "");
    seccomp_release(ctx);

    /* architectures add ABIs; the native one is always there. */
    p = "{\"defaultAction\":\"SCMP_ACT_ALLOW\",\"architectures\":[\"SCMP_ARCH_X86\","
        "\"SCMP_ARCH_AARCH64\",\"SCMP_ARCH_AARCH64\"]}";
    CHECK(load_str(p, NULL, 0, &ctx, err, sizeof err) == 0);
    CHECK(seccomp_arch_exist(ctx, SCMP_ARCH_X86) == 0);
    CHECK(seccomp_arch_exist(ctx, SCMP_ARCH_AARCH64) == 0);
    CHECK(seccomp_arch_exist(ctx, seccomp_arch_native()) == 0);
    seccomp_release(ctx);

    /* Rules that repeat the default action are dropped quietly, as libseccomp requires. */
    p = "{\"defaultAction\":\"SCMP_ACT_ERRNO\",\"syscalls\":[{\"names\":[\"getpid\"],"
        "\"action\":\"SCMP_ACT_ERRNO\",\"errnoRet\":1}]}";
    CHECK(load_str(p, NULL, 0, &ctx, err, sizeof err) == 0);
    seccomp_release(ctx);

    /* Conditional rules may differ in action; duplicate rules with one action are fine. */
    p = "{\"defaultAction\":\"SCMP_ACT_ALLOW\",\"syscalls\":["
        "{\"names\":[\"getpgid\",\"getpgid\"],\"action\":\"SCMP_ACT_ERRNO\","
        "\"args\":[{\"index\":0,\"value\":5,\"op\":\"SCMP_CMP_EQ\"}]},"
        "{\"names\":[\"getpgid\"],\"action\":\"SCMP_ACT_TRAP\","
        "\"args\":[{\"index\":0,\"value\":6,\"op\":\"SCMP_CMP_EQ\"}]},"
        "{\"names\":[\"getsid\"],\"action\":\"SCMP_ACT_TRACE\",\"errnoRet\":65535},"
        "{\"names\":[\"getsid\"],\"action\":\"SCMP_ACT_TRACE\",\"errnoRet\":65535}]}";
    CHECK(load_str(p, NULL, 0, &ctx, err, sizeof err) == 0);
    CHECK_STR(err, "");
    seccomp_release(ctx);

    /* ...but a rule without conditions next to a conditional one with another action is not. */
    p = "{\"defaultAction\":\"SCMP_ACT_ALLOW\",\"syscalls\":["
        "{\"names\":[\"getpgid\"],\"action\":\"SCMP_ACT_ERRNO\","
        "\"args\":[{\"index\":0,\"value\":5,\"op\":\"SCMP_CMP_EQ\"}]},"
        "{\"names\":[\"getpgid\"],\"action\":\"SCMP_ACT_KILL\"}]}";
    CHECK(load_str(p, NULL, 0, &ctx, err, sizeof err) == -EINVAL);
    CHECK(strstr(err, "syscalls[1].names[0]: \"getpgid\" gets SCMP_ACT_KILL_THREAD here but "
                      "SCMP_ACT_ERRNO(1) (with conditions) in syscalls[0]") != NULL);

    /* The same conflict is found when the entry would only be skipped as the default action. */
    p = "{\"defaultAction\":\"SCMP_ACT_ERRNO\",\"syscalls\":["
        "{\"names\":[\"getpid\"],\"action\":\"SCMP_ACT_ALLOW\"},"
        "{\"names\":[\"getpid\"],\"action\":\"SCMP_ACT_ERRNO\"}]}";
    CHECK(load_str(p, NULL, 0, &ctx, err, sizeof err) == -EINVAL);

    /* Entries that do not apply are still checked. */
    p = "{\"defaultAction\":\"SCMP_ACT_ALLOW\",\"syscalls\":[{\"names\":[\"mount\"],"
        "\"action\":\"SCMP_ACT_ERRNO\",\"includes\":{\"caps\":[\"CAP_SYS_ADMIN\"]},"
        "\"args\":[{\"index\":0,\"value\":-1,\"op\":\"SCMP_CMP_EQ\"}]}]}";
    CHECK(load_str(p, NULL, 0, &ctx, err, sizeof err) == -EINVAL);
    CHECK_STR(err, "t.json:1:157: syscalls[0].args[0].value: expected a non-negative integer, "
                   "found -1");

    static const struct {
        const char *json, *msg;
    } bad[] = {
        {"{\"defaultAction\":\"SCMP_ACT_ALLOW\",\"architectures\":[\"SCMP_ARCH_X86\"],"
         "\"archMap\":[{\"architecture\":\"SCMP_ARCH_X86_64\"}]}",
         "t.json:1:79: archMap: give either \"architectures\" or \"archMap\", not both"},
        {"{\"defaultAction\":\"SCMP_ACT_ALLOW\",\"architectures\":[\"amd64\"]}",
         "t.json:1:52: architectures[0]: unknown architecture \"amd64\""},
        {"{\"defaultAction\":\"SCMP_ACT_ALLOW\",\"archMap\":[{\"subArchitectures\":[]}]}",
         "t.json:1:46: archMap[0]: missing \"architecture\""},
        {"{\"defaultAction\":\"SCMP_ACT_ALLOW\",\"flags\":[\"SECCOMP_FILTER_FLAG_FAST\"]}",
         "t.json:1:44: flags[0]: unknown flag \"SECCOMP_FILTER_FLAG_FAST\""},
        {"{\"defaultAction\":\"SCMP_ACT_ALLOW\",\"syscalls\":{}}",
         "t.json:1:46: syscalls: expected an array, found an object"},
        {"{\"defaultAction\":\"SCMP_ACT_ALLOW\",\"syscalls\":[{\"action\":\"SCMP_ACT_KILL\"}]}",
         "t.json:1:47: syscalls[0]: missing \"names\""},
        {"{\"defaultAction\":\"SCMP_ACT_ALLOW\",\"syscalls\":[{\"names\":[],"
         "\"action\":\"SCMP_ACT_KILL\"}]}",
         "t.json:1:56: syscalls[0].names: empty; the entry would do nothing"},
        {"{\"defaultAction\":\"SCMP_ACT_ALLOW\",\"syscalls\":[{\"names\":[\"getpid\"],"
         "\"name\":\"getpid\",\"action\":\"SCMP_ACT_KILL\"}]}",
         "t.json:1:74: syscalls[0]: has both \"names\" and \"name\"; use \"names\""},
        {"{\"defaultAction\":\"SCMP_ACT_ALLOW\",\"syscalls\":[{\"names\":[\"get\\u0000pid\"],"
         "\"action\":\"SCMP_ACT_KILL\"}]}",
         "t.json:1:57: syscalls[0].names[0]: contains a NUL character"},
        {"{\"defaultAction\":\"SCMP_ACT_ALLOW\",\"syscalls\":[{\"names\":[7],"
         "\"action\":\"SCMP_ACT_KILL\"}]}",
         "t.json:1:57: syscalls[0].names[0]: expected a string, found a number"},
        {"{\"defaultAction\":\"SCMP_ACT_ALLOW\",\"syscalls\":[{\"names\":[\"getpid\"],"
         "\"action\":\"SCMP_ACT_KILL\",\"args\":[{\"index\":0,\"value\":1}]}]}",
         "t.json:1:100: syscalls[0].args[0]: missing \"op\""},
        {"{\"defaultAction\":\"SCMP_ACT_ALLOW\",\"syscalls\":[{\"names\":[\"getpid\"],"
         "\"action\":\"SCMP_ACT_KILL\",\"excludes\":{\"minKernel\":\"4.x\"}}]}",
         "t.json:1:116: syscalls[0].excludes.minKernel: expected a kernel version such as "
         "\"4.8\", found \"4.x\""},
        {"{\"defaultAction\":\"SCMP_ACT_ALLOW\",\"syscalls\":[{\"names\":[\"getpid\"],"
         "\"action\":\"SCMP_ACT_KILL\",\"includes\":{\"arches\":[\"vax\"]}}]}",
         "t.json:1:114: syscalls[0].includes.arches[0]: unknown architecture \"vax\""},
        {"{\"defaultAction\":\"SCMP_ACT_ALLOW\",\"syscalls\":[{\"names\":[\"getpid\"],"
         "\"action\":\"SCMP_ACT_KILL\",\"includes\":[]}]}",
         "t.json:1:103: syscalls[0].includes: expected an object, found an array"},
        {"{\"defaultAction\":\"SCMP_ACT_ERRNO\",\"defaultErrnoRet\":4096}",
         "t.json:1:53: defaultErrnoRet: 4096 is out of range (0 to 4095)"},
        {"{\"defaultAction\":\"SCMP_ACT_KILL\",\"defaultErrnoRet\":1}",
         "t.json:1:52: defaultErrnoRet: only meaningful with SCMP_ACT_ERRNO or SCMP_ACT_TRACE, "
         "not SCMP_ACT_KILL"},
        {"{\"defaultAction\":\"\"}", "t.json:1:18: defaultAction: empty string"},
        {"{\"defaultAction\":null}", "t.json:1:1: top level: missing \"defaultAction\""},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        ctx = (scmp_filter_ctx)1;
        int rc = load_str(bad[i].json, NULL, 0, &ctx, err, sizeof err);
        if (rc != -EINVAL || ctx != NULL || strcmp(err, bad[i].msg) != 0) {
            fprintf(stderr, "bad[%zu]: rc=%d \"%s\"\n    expected \"%s\"\n", i, rc, err,
                    bad[i].msg);
            test_failures++;
        }
    }
}

/* ---- behaviour in a child ---- */

typedef struct {
    long nr;
    unsigned long a[6];
} call;

typedef struct {
    long ret;
    int err;
} result;

/*
 * Forks a child that installs ctx and makes each call, sending back the results. Returns the
 * number of results received; *status is the child's wait status. A successful clone's new
 * process leaves at once, so that only the child reports.
 */
static size_t run_calls(scmp_filter_ctx ctx, const call *calls, size_t n, result *res, int *status)
{
    int fds[2];
    if (pipe2(fds, O_CLOEXEC) < 0)
        return 0;
    pid_t pid = fork();
    if (pid == 0) {
        close(fds[0]);
        /* SIGSYS dumps core by default; a test that expects it must not litter core files. */
        prctl(PR_SET_DUMPABLE, 0);
        if (seccomp_load(ctx) < 0)
            _exit(100);
        for (size_t i = 0; i < n; i++) {
            errno = 0;
            result r;
            r.ret = syscall(calls[i].nr, calls[i].a[0], calls[i].a[1], calls[i].a[2], calls[i].a[3],
                            calls[i].a[4], calls[i].a[5]);
            r.err = r.ret < 0 ? errno : 0;
            if (r.ret == 0 && (calls[i].nr == SYS_clone
#ifdef SYS_clone3
                               || calls[i].nr == SYS_clone3
#endif
                               ))
                _exit(0);
            if (write(fds[1], &r, sizeof r) != (ssize_t)sizeof r)
                _exit(101);
        }
        _exit(0);
    }
    close(fds[1]);
    size_t got = 0;
    while (got < n) {
        ssize_t r = read(fds[0], &res[got], sizeof res[got]);
        if (r < 0 && errno == EINTR)
            continue;
        if (r != (ssize_t)sizeof res[got])
            break;
        got++;
    }
    close(fds[0]);
    while (waitpid(pid, status, 0) < 0 && errno == EINTR)
        ;
    return got;
}

/* Expected outcome of a call: a given errno, or success (0). */
typedef struct {
    const char *what;
    call c;
    int want_err;
} probe;

static void run_probes(const char *label, scmp_filter_ctx ctx, const probe *p, size_t n)
{
    call calls[64];
    result res[64];
    for (size_t i = 0; i < n; i++)
        calls[i] = p[i].c;
    int status = 0;
    size_t got = run_calls(ctx, calls, n, res, &status);
    if (got != n || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        fprintf(stderr, "%s: child stopped after %zu of %zu calls, status 0x%x\n", label, got, n,
                status);
        test_failures++;
    }
    for (size_t i = 0; i < got; i++) {
        if (res[i].err != p[i].want_err) {
            fprintf(stderr, "%s: %s returned %ld errno %d (%s), expected errno %d (%s)\n", label,
                    p[i].what, res[i].ret, res[i].err, strerror(res[i].err), p[i].want_err,
                    strerror(p[i].want_err));
            test_failures++;
        }
    }
}

#define BAD_PTRACE_REQUEST 0x7fff

/* The profile file with its default errno changed to MARK, so refusals are unambiguous. */
static char *marked_default_profile(size_t *len)
{
    size_t n;
    char *text = read_all(TESTDATA "docker-default.json", &n);
    const char *from = "\"defaultErrnoRet\": 1,", *to = "\"defaultErrnoRet\": 123,";
    char *at = text ? strstr(text, from) : NULL;
    CHECK(at != NULL);
    char *out = at ? malloc(n + strlen(to)) : NULL;
    if (out) {
        size_t head = (size_t)(at - text), tail = n - head - strlen(from);
        memcpy(out, text, head);
        memcpy(out + head, to, strlen(to));
        memcpy(out + head + strlen(to), at + strlen(from), tail);
        *len = head + strlen(to) + tail;
    }
    free(text);
    return out;
}

static void test_docker_default_behaviour(void)
{
    char err[512];
    scmp_filter_ctx ctx;
    size_t len;
    char *text = marked_default_profile(&len);
    if (!text)
        return;
    unsigned long self = (unsigned long)getpid(); /* the child's own pid differs; harmless */

    /* Without capabilities: the dangerous list is refused by the filter, not by the kernel. */
    CHECK(sbx_oci_load_buffer(text, len, "marked", NULL, 0, &ctx, err, sizeof err) == 0);
    const probe refused[] = {
        {"getpid", {SYS_getpid, {0}}, 0},
        {"unshare(CLONE_NEWUSER|bad)", {SYS_unshare, {CLONE_NEWUSER | 1}}, MARK},
        {"unshare(CLONE_NEWNS)", {SYS_unshare, {CLONE_NEWNS}}, MARK},
        {"setns", {SYS_setns, {(unsigned long)-1, 0}}, MARK},
        {"mount", {SYS_mount, {0, 0, 0, 0, 0}}, MARK},
        {"umount2", {SYS_umount2, {0, 0}}, MARK},
        {"pivot_root", {SYS_pivot_root, {0, 0}}, MARK},
        {"chroot", {SYS_chroot, {0}}, MARK},
        {"ptrace", {SYS_ptrace, {BAD_PTRACE_REQUEST, self}}, MARK},
        {"process_vm_readv", {SYS_process_vm_readv, {self, 0, 0, 0, 0, 0}}, MARK},
        {"keyctl", {SYS_keyctl, {(unsigned long)-1}}, MARK},
        {"add_key", {SYS_add_key, {0, 0, 0, 0, 0}}, MARK},
        {"request_key", {SYS_request_key, {0, 0, 0, 0}}, MARK},
        {"userfaultfd", {SYS_userfaultfd, {0xdead}}, MARK},
        {"io_uring_setup", {SYS_io_uring_setup, {0, 0}}, MARK},
        {"bpf", {SYS_bpf, {(unsigned long)-1, 0, 0}}, MARK},
        {"perf_event_open",
         {SYS_perf_event_open, {0, 0, (unsigned long)-1, (unsigned long)-1, 0}},
         MARK},
        {"kexec_load", {SYS_kexec_load, {0, 0, 0, 0xdead0000}}, MARK},
        {"init_module", {SYS_init_module, {0, 0, 0}}, MARK},
        {"finit_module", {SYS_finit_module, {(unsigned long)-1, 0, 0}}, MARK},
        {"delete_module", {SYS_delete_module, {0, 0}}, MARK},
        {"swapon", {SYS_swapon, {0, 0}}, MARK},
        {"swapoff", {SYS_swapoff, {0}}, MARK},
        {"reboot", {SYS_reboot, {0, 0, 0, 0}}, MARK},
        {"settimeofday", {SYS_settimeofday, {0, 0}}, MARK},
        {"clock_settime", {SYS_clock_settime, {0, 0}}, MARK},
        {"acct", {SYS_acct, {(unsigned long)"/nonexistent/acct"}}, MARK},
        {"personality(PER_BSD)", {SYS_personality, {0x0006}}, MARK},
        {"personality(query)", {SYS_personality, {0xffffffff}}, 0},
        {"clone(CLONE_NEWNS|SIGCHLD)", {SYS_clone, {CLONE_NEWNS | SIGCHLD}}, MARK},
        {"clone(CLONE_NEWUSER|SIGCHLD)", {SYS_clone, {CLONE_NEWUSER | SIGCHLD}}, MARK},
#ifdef SYS_clone3
        /* ENOSYS, not EPERM, so that the C library falls back to clone. */
        {"clone3", {SYS_clone3, {0, 0}}, ENOSYS},
#endif
        {"clone(SIGCHLD)", {SYS_clone, {SIGCHLD}}, 0},
        {"getppid", {SYS_getppid, {0}}, 0},
    };
    run_probes("docker-default, no caps", ctx, refused, sizeof refused / sizeof refused[0]);
    seccomp_release(ctx);

    /* Keeping CAP_SYS_ADMIN lifts the gated rules: the kernel now answers with its own errno. */
    const char *admin[] = {"CAP_SYS_ADMIN"};
    CHECK(sbx_oci_load_buffer(text, len, "marked", admin, 1, &ctx, err, sizeof err) == 0);
    const probe lifted[] = {
        {"unshare(CLONE_NEWUSER|bad)", {SYS_unshare, {CLONE_NEWUSER | 1}}, EINVAL},
        {"mount(missing target)",
         {SYS_mount,
          {(unsigned long)"none", (unsigned long)"/nonexistent-pm-oci-test", (unsigned long)"tmpfs",
           0, 0}},
         ENOENT},
        {"setns(-1)", {SYS_setns, {(unsigned long)-1, 0}}, EBADF},
        {"clone(CLONE_NEWNS|CLONE_FS)", {SYS_clone, {CLONE_NEWNS | CLONE_FS | SIGCHLD}}, EINVAL},
#ifdef SYS_clone3
        {"clone3(NULL, 0)", {SYS_clone3, {0, 0}}, EINVAL},
#endif
        /* Gated on other capabilities, still refused. */
        {"ptrace", {SYS_ptrace, {BAD_PTRACE_REQUEST, self}}, MARK},
        {"chroot", {SYS_chroot, {0}}, MARK},
        /* Never allowed, whatever the capabilities. */
        {"keyctl", {SYS_keyctl, {(unsigned long)-1}}, MARK},
        {"io_uring_setup", {SYS_io_uring_setup, {0, 0}}, MARK},
        {"getpid", {SYS_getpid, {0}}, 0},
    };
    run_probes("docker-default, CAP_SYS_ADMIN", ctx, lifted, sizeof lifted / sizeof lifted[0]);
    seccomp_release(ctx);

    const char *tracer[] = {"CAP_SYS_PTRACE"};
    CHECK(sbx_oci_load_buffer(text, len, "marked", tracer, 1, &ctx, err, sizeof err) == 0);
    const probe traced[] = {
        /* Not a tracee of ours: the kernel says ESRCH once the filter lets the call through. */
        {"ptrace", {SYS_ptrace, {BAD_PTRACE_REQUEST, self}}, ESRCH},
        {"unshare", {SYS_unshare, {CLONE_NEWUSER | 1}}, MARK},
    };
    run_probes("docker-default, CAP_SYS_PTRACE", ctx, traced, sizeof traced / sizeof traced[0]);
    seccomp_release(ctx);
    free(text);

    /* The file as written refuses with EPERM. */
    CHECK(sbx_oci_load(TESTDATA "docker-default.json", NULL, 0, &ctx, err, sizeof err) == 0);
    const probe eperm[] = {
        {"unshare(CLONE_NEWUSER)", {SYS_unshare, {CLONE_NEWUSER}}, EPERM},
        {"mount", {SYS_mount, {0, 0, 0, 0, 0}}, EPERM},
        {"getpid", {SYS_getpid, {0}}, 0},
        {"write", {SYS_write, {1, (unsigned long)"", 0}}, 0},
    };
    run_probes("docker-default.json", ctx, eperm, sizeof eperm / sizeof eperm[0]);
    seccomp_release(ctx);
}

/* Ordinary programs still work under the profile: a shell pipeline of common tools. */
static void test_docker_default_programs(void)
{
    char err[512];
    scmp_filter_ctx ctx;
    CHECK(sbx_oci_load(TESTDATA "docker-default.json", NULL, 0, &ctx, err, sizeof err) == 0);
    if (!ctx)
        return;
    pid_t pid = fork();
    if (pid == 0) {
        if (seccomp_load(ctx) < 0)
            _exit(100);
        /* posix_spawn tries clone3 first; the profile's ENOSYS sends it to clone. */
        char *argv[] = {"/bin/sh", "-c",
                        "ls / >/dev/null && printf 'b\\na\\n' | sort | head -n1 | grep -q a && "
                        "tar -cf - /bin/sh 2>/dev/null | gzip -c | gzip -dc | tar -tf - "
                        ">/dev/null && (true & wait)",
                        NULL};
        pid_t sh;
        if (posix_spawn(&sh, argv[0], NULL, NULL, argv, environ) != 0)
            _exit(102);
        int st;
        while (waitpid(sh, &st, 0) < 0)
            if (errno != EINTR)
                _exit(103);
        _exit(WIFEXITED(st) ? WEXITSTATUS(st) : 104);
    }
    int status = 0;
    waitpid(pid, &status, 0);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        fprintf(stderr, "shell pipeline under docker-default: status 0x%x\n", status);
        test_failures++;
    }
    seccomp_release(ctx);
}

/* Each operator, through getpgid with arguments far above any pid (the kernel says ESRCH). */
static void test_operators(void)
{
    static const struct {
        const char *op;
        unsigned long value, value2;
        unsigned long in[3];
        bool hit[3];
    } cases[] = {
        {"SCMP_CMP_NE", 1000000000ul, 0, {1000000000ul, 1000000001ul, 999999999ul}, {0, 1, 1}},
        {"SCMP_CMP_LT", 1000000000ul, 0, {999999999ul, 1000000000ul, 1000000001ul}, {1, 0, 0}},
        {"SCMP_CMP_LE", 1000000000ul, 0, {999999999ul, 1000000000ul, 1000000001ul}, {1, 1, 0}},
        {"SCMP_CMP_EQ", 1000000000ul, 0, {999999999ul, 1000000000ul, 1000000001ul}, {0, 1, 0}},
        {"SCMP_CMP_GE", 1000000000ul, 0, {999999999ul, 1000000000ul, 1000000001ul}, {0, 1, 1}},
        {"SCMP_CMP_GT", 1000000000ul, 0, {999999999ul, 1000000000ul, 1000000001ul}, {0, 0, 1}},
        /* value is the mask, valueTwo the datum */
        {"SCMP_CMP_MASKED_EQ", 0xF0, 0x30, {0x40000030ul, 0x4000003Ful, 0x40000040ul}, {1, 1, 0}},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char json[512], err[512];
        snprintf(json, sizeof json,
                 "{\"defaultAction\":\"SCMP_ACT_ALLOW\",\"syscalls\":[{\"names\":[\"getpgid\"],"
                 "\"action\":\"SCMP_ACT_ERRNO\",\"errnoRet\":77,\"args\":[{\"index\":0,"
                 "\"value\":%lu,\"valueTwo\":%lu,\"op\":\"%s\"}]}]}",
                 cases[i].value, cases[i].value2, cases[i].op);
        scmp_filter_ctx ctx;
        CHECK(load_str(json, NULL, 0, &ctx, err, sizeof err) == 0);
        if (!ctx)
            continue;
        probe p[3];
        for (int k = 0; k < 3; k++)
            p[k] =
                (probe){cases[i].op, {SYS_getpgid, {cases[i].in[k]}}, cases[i].hit[k] ? 77 : ESRCH};
        run_probes(cases[i].op, ctx, p, 3);
        seccomp_release(ctx);
    }
}

static scmp_filter_ctx must_load(const char *json, const char *const *caps, size_t ncaps)
{
    char err[512];
    scmp_filter_ctx ctx;
    if (load_str(json, caps, ncaps, &ctx, err, sizeof err) != 0) {
        fprintf(stderr, "profile refused: %s\n", err);
        test_failures++;
        return NULL;
    }
    return ctx;
}

/* Conditions on different arguments are ANDed; on the same argument, ORed (runc's reading). */
static void test_condition_combining(void)
{
    scmp_filter_ctx ctx =
        must_load("{\"defaultAction\":\"SCMP_ACT_ALLOW\",\"syscalls\":[{\"names\":[\"lseek\"],"
                  "\"action\":\"SCMP_ACT_ERRNO\",\"errnoRet\":77,\"args\":["
                  "{\"index\":0,\"value\":1000,\"op\":\"SCMP_CMP_EQ\"},"
                  "{\"index\":2,\"value\":2,\"op\":\"SCMP_CMP_EQ\"}]}]}",
                  NULL, 0);
    if (ctx) {
        const probe p[] = {
            {"lseek(1000, 0, SEEK_END)", {SYS_lseek, {1000, 0, 2}}, 77},
            {"lseek(1000, 0, SEEK_SET)", {SYS_lseek, {1000, 0, 0}}, EBADF},
            {"lseek(1001, 0, SEEK_END)", {SYS_lseek, {1001, 0, 2}}, EBADF},
        };
        run_probes("AND", ctx, p, 3);
        seccomp_release(ctx);
    }
    ctx = must_load("{\"defaultAction\":\"SCMP_ACT_ALLOW\",\"syscalls\":[{\"names\":[\"getpgid\"],"
                    "\"action\":\"SCMP_ACT_ERRNO\",\"errnoRet\":77,\"args\":["
                    "{\"index\":0,\"value\":1111111111,\"op\":\"SCMP_CMP_EQ\"},"
                    "{\"index\":0,\"value\":2222222222,\"op\":\"SCMP_CMP_EQ\"}]}]}",
                    NULL, 0);
    if (ctx) {
        const probe p[] = {
            {"getpgid(1111111111)", {SYS_getpgid, {1111111111ul}}, 77},
            {"getpgid(2222222222)", {SYS_getpgid, {2222222222ul}}, 77},
            {"getpgid(3333333333)", {SYS_getpgid, {3333333333ul}}, ESRCH},
        };
        run_probes("OR", ctx, p, 3);
        seccomp_release(ctx);
    }
}

static const char *native_go_arch(void)
{
    switch (seccomp_arch_native()) {
    case SCMP_ARCH_X86_64:
        return "amd64";
    case SCMP_ARCH_AARCH64:
        return "arm64";
    default:
        return NULL;
    }
}

/* includes/excludes: caps (all of includes, any of excludes), arches, minKernel. */
static void test_includes_excludes(void)
{
    const char *native = native_go_arch();
    const char *foreign = native && !strcmp(native, "arm64") ? "amd64" : "arm64";
    char json[2048];
    snprintf(json, sizeof json,
             "{\"defaultAction\":\"SCMP_ACT_ALLOW\",\"syscalls\":["
             /* 0: needs both caps */
             "{\"names\":[\"getpgid\"],\"action\":\"SCMP_ACT_ERRNO\",\"errnoRet\":70,"
             "\"includes\":{\"caps\":[\"CAP_NET_ADMIN\",\"CAP_NET_RAW\"]}},"
             /* 1: off when either cap is kept */
             "{\"names\":[\"getsid\"],\"action\":\"SCMP_ACT_ERRNO\",\"errnoRet\":71,"
             "\"excludes\":{\"caps\":[\"CAP_NET_ADMIN\",\"CAP_CHOWN\"]}},"
             /* 2, 3: native and foreign arches */
             "{\"names\":[\"getpriority\"],\"action\":\"SCMP_ACT_ERRNO\",\"errnoRet\":72,"
             "\"includes\":{\"arches\":[\"%s\"]}},"
             "{\"names\":[\"setpriority\"],\"action\":\"SCMP_ACT_ERRNO\",\"errnoRet\":73,"
             "\"includes\":{\"arches\":[\"%s\"]}},"
             /* 4-7: minKernel, old and from the future */
             "{\"names\":[\"getitimer\"],\"action\":\"SCMP_ACT_ERRNO\",\"errnoRet\":74,"
             "\"includes\":{\"minKernel\":\"2.6\"}},"
             "{\"names\":[\"setitimer\"],\"action\":\"SCMP_ACT_ERRNO\",\"errnoRet\":75,"
             "\"includes\":{\"minKernel\":\"999.0\"}},"
             "{\"names\":[\"getrusage\"],\"action\":\"SCMP_ACT_ERRNO\",\"errnoRet\":76,"
             "\"excludes\":{\"minKernel\":\"999.0.1\"}},"
             "{\"names\":[\"sysinfo\"],\"action\":\"SCMP_ACT_ERRNO\",\"errnoRet\":78,"
             "\"excludes\":{\"minKernel\":\"2.6.0\"}},"
             /* 8: excluded arch */
             "{\"names\":[\"getcpu\"],\"action\":\"SCMP_ACT_ERRNO\",\"errnoRet\":79,"
             "\"excludes\":{\"arches\":[\"%s\"]}}"
             "]}",
             native ? native : "x86", foreign, foreign);
    const probe none_kept[] = {
        {"getpgid (needs both caps)", {SYS_getpgid, {1999999999}}, ESRCH},
        {"getsid (excluded by caps)", {SYS_getsid, {1999999999}}, 71},
        {"getitimer (minKernel 2.6)", {SYS_getitimer, {99, 0}}, 74},
        {"setitimer (minKernel 999.0)", {SYS_setitimer, {99, 0, 0}}, EINVAL},
        {"getrusage (excludes minKernel 999.0.1)", {SYS_getrusage, {99, 0}}, 76},
        {"sysinfo (excludes minKernel 2.6.0)", {SYS_sysinfo, {0}}, EFAULT},
        {"getcpu (excludes a foreign arch)", {SYS_getcpu, {0, 0, 0}}, 79},
        {"setpriority (foreign arch)", {SYS_setpriority, {99, 0, 0}}, EINVAL},
    };
    scmp_filter_ctx ctx = must_load(json, NULL, 0);
    if (ctx) {
        run_probes("includes/excludes, no caps", ctx, none_kept,
                   sizeof none_kept / sizeof none_kept[0]);
        seccomp_release(ctx);
    }
    const char *one[] = {"CAP_NET_ADMIN"};
    const probe one_kept[] = {
        {"getpgid (one of two caps)", {SYS_getpgid, {1999999999}}, ESRCH},
        {"getsid (an excluded cap kept)", {SYS_getsid, {1999999999}}, ESRCH},
    };
    if ((ctx = must_load(json, one, 1))) {
        run_probes("includes/excludes, CAP_NET_ADMIN", ctx, one_kept, 2);
        seccomp_release(ctx);
    }
    const char *both[] = {"net_raw", "CAP_NET_ADMIN"};
    const probe both_kept[] = {
        {"getpgid (both caps)", {SYS_getpgid, {1999999999}}, 70},
    };
    if ((ctx = must_load(json, both, 2))) {
        run_probes("includes/excludes, both caps", ctx, both_kept, 1);
        seccomp_release(ctx);
    }
    if (native && (ctx = must_load(json, NULL, 0))) {
        const probe arch[] = {{"getpriority (native arch)", {SYS_getpriority, {99, 0}}, 72}};
        run_probes("includes arches", ctx, arch, 1);
        seccomp_release(ctx);
    }
}

/* What each action does to the calling process. */
static void test_actions(void)
{
    static const struct {
        const char *action;
        int sig;       /* the child dies of this signal, or 0 */
        int want_err;  /* otherwise the call fails with this errno (0: succeeds) */
        long want_ret; /* and returns this when it succeeds */
    } cases[] = {
        {"SCMP_ACT_KILL", SIGSYS, 0, 0},         {"SCMP_ACT_KILL_THREAD", SIGSYS, 0, 0},
        {"SCMP_ACT_KILL_PROCESS", SIGSYS, 0, 0}, {"SCMP_ACT_TRAP", SIGSYS, 0, 0},
        {"SCMP_ACT_TRACE", 0, ENOSYS, -1}, /* no tracer attached: the call fails */
        {"SCMP_ACT_ERRNO", 0, EPERM, -1},        {"SCMP_ACT_LOG", 0, 0, 1},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char json[256];
        snprintf(json, sizeof json,
                 "{\"defaultAction\":\"SCMP_ACT_ALLOW\",\"syscalls\":[{\"names\":[\"getppid\"],"
                 "\"action\":\"%s\"}]}",
                 cases[i].action);
        scmp_filter_ctx ctx = must_load(json, NULL, 0);
        if (!ctx)
            continue;
        call c = {SYS_getppid, {0}};
        result r;
        int status = 0;
        size_t got = run_calls(ctx, &c, 1, &r, &status);
        if (cases[i].sig) {
            if (got != 0 || !WIFSIGNALED(status) || WTERMSIG(status) != cases[i].sig) {
                fprintf(stderr, "%s: got %zu results, status 0x%x; expected signal %d\n",
                        cases[i].action, got, status, cases[i].sig);
                test_failures++;
            }
        } else if (got != 1 || r.err != cases[i].want_err ||
                   (cases[i].want_ret < 0 ? r.ret != -1 : r.ret < cases[i].want_ret)) {
            fprintf(stderr, "%s: got %zu results, ret %ld errno %d\n", cases[i].action, got,
                    got ? r.ret : 0, got ? r.err : 0);
            test_failures++;
        }
        seccomp_release(ctx);
    }

    /* errnoRet 0 makes the call "succeed" without running; defaultErrnoRet sets the default. */
    scmp_filter_ctx ctx = must_load(
        "{\"defaultAction\":\"SCMP_ACT_ERRNO\",\"defaultErrnoRet\":13,\"syscalls\":["
        "{\"names\":[\"write\",\"exit_group\",\"exit\",\"getpid\"],\"action\":\"SCMP_ACT_ALLOW\"},"
        /* what the sanitizers' runtime calls on its way out */
        "{\"names\":[\"sigaltstack\",\"mmap\",\"munmap\",\"madvise\",\"mprotect\",\"futex\","
        "\"rt_sigaction\",\"rt_sigprocmask\",\"prctl\",\"sched_yield\"],\"action\":\"SCMP_ACT_"
        "ALLOW\"},"
        "{\"names\":[\"getppid\"],\"action\":\"SCMP_ACT_ERRNO\",\"errnoRet\":0}]}",
        NULL, 0);
    if (ctx) {
        call calls[] = {{SYS_getppid, {0}}, {SYS_getuid, {0}}, {SYS_getpid, {0}}};
        result r[3];
        int status = 0;
        size_t got = run_calls(ctx, calls, 3, r, &status);
        CHECK(got == 3 && WIFEXITED(status) && WEXITSTATUS(status) == 0);
        CHECK(got == 3 && r[0].ret == 0 && r[0].err == 0);
        CHECK(got == 3 && r[1].ret == -1 && r[1].err == EACCES);
        CHECK(got == 3 && r[2].ret > 0);
        seccomp_release(ctx);
    }
}

/* A profile whose filter would not fit the kernel's 4096 instructions is refused at load. */
static void test_filter_size(void)
{
    size_t cap = 1 << 20, n = 0;
    char *json = malloc(cap);
    n +=
        (size_t)snprintf(json + n, cap - n, "{\"defaultAction\":\"SCMP_ACT_ALLOW\",\"syscalls\":[");
    for (int i = 0; i < 4200; i++)
        n += (size_t)snprintf(json + n, cap - n,
                              "%s{\"names\":[\"getpgid\"],\"action\":\"SCMP_ACT_ERRNO\","
                              "\"args\":[{\"index\":0,\"value\":%d,\"op\":\"SCMP_CMP_EQ\"}]}",
                              i ? "," : "", i);
    n += (size_t)snprintf(json + n, cap - n, "]}");
    char err[512];
    scmp_filter_ctx ctx;
    CHECK(sbx_oci_load_buffer(json, n, "big.json", NULL, 0, &ctx, err, sizeof err) == -EINVAL);
    CHECK_PREFIX(err, "big.json: the filter compiles to ");
    CHECK(strstr(err, "BPF instructions, over the kernel's limit of 4096") != NULL);
    free(json);
}

static void test_flags(void)
{
    char err[512];
    scmp_filter_ctx ctx;
    const char *p = "{\"defaultAction\":\"SCMP_ACT_ALLOW\",\"flags\":[\"SECCOMP_FILTER_FLAG_LOG\","
                    "\"SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV\"]}";
    int rc = load_str(p, NULL, 0, &ctx, err, sizeof err);
    if (rc == 0) {
        uint32_t v = 0;
        CHECK(seccomp_attr_get(ctx, SCMP_FLTATR_CTL_LOG, &v) == 0 && v == 1);
        seccomp_release(ctx);
    } else {
        /* A kernel without the flag is reported as such, not silently ignored. */
        CHECK(rc == -EINVAL && strstr(err, "cannot honour SECCOMP_FILTER_FLAG_LOG"));
    }
}

int main(void)
{
    test_refusals();
    test_file_errors();
    test_docker_default_loads();
    test_options();
    test_accepted_forms();
    test_flags();
    test_filter_size();
    test_docker_default_behaviour();
    test_docker_default_programs();
    test_operators();
    test_condition_combining();
    test_includes_excludes();
    test_actions();
    return test_done("oci_test");
}

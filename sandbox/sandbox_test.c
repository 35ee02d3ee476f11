/*
 * Unit tests of the sandbox library: parsing of profiles, limits and capability names; the
 * "tighten, never loosen" rule; preparation and its refusals; and the child side, applied in a
 * forked child that reports what it sees from inside (/proc/self/status, getrlimit, a few refused
 * calls). Also the two paths that are easy to get wrong: an executor that is not root (no
 * bounding-set drops, no uid switch), and a vfork-style child sharing memory with a threaded
 * parent, whose uid switch, limits and capability drops must not reach the parent. Needs root.
 */
#include "sandbox/sandbox.h"

#include <errno.h>
#include <grp.h>
#include <linux/capability.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/capability.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <seccomp.h>

#include "sandbox/profiles.h"
#include "testing/check.h"

/* Runs fn in a forked child; the child's failed CHECKs make its exit status nonzero. */
static int in_child(void (*fn)(void *), void *arg)
{
    fflush(stderr);
    pid_t pid = fork();
    if (pid == 0) {
        test_failures = 0;
        fn(arg);
        _exit(test_failures ? 1 : 0);
    }
    int st = -1;
    while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
        ;
    return st;
}

/* The value of a "Name:\t..." line of /proc/self/status (or of another status file). */
static const char *status_field(const char *path, const char *name)
{
    static char buf[8192], out[256];
    FILE *f = fopen(path, "r");
    if (!f)
        return "";
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    size_t nlen = strlen(name);
    for (char *line = buf; line && *line;
         line = strchr(line, '\n'), line = line ? line + 1 : NULL) {
        if (strncmp(line, name, nlen) == 0 && line[nlen] == ':') {
            const char *v = line + nlen + 1;
            while (*v == '\t' || *v == ' ')
                v++;
            size_t l = strcspn(v, "\n");
            snprintf(out, sizeof out, "%.*s", (int)l, v);
            return out;
        }
    }
    return "";
}

static void test_profile_parse(void)
{
    sbx_config c;
    sbx_config_init(&c);
    CHECK(c.profile == SBX_DEFAULT);
    CHECK(sbx_profile_parse("strict", &c) == 0 && c.profile == SBX_STRICT);
    CHECK(sbx_profile_parse("unconfined", &c) == 0 && c.profile == SBX_UNCONFINED);
    CHECK(sbx_profile_parse("file:/etc/p.json", &c) == 0 && c.profile == SBX_FILE);
    CHECK_STR(c.file, "/etc/p.json");
    CHECK(sbx_profile_parse("default", &c) == 0 && c.profile == SBX_DEFAULT && c.file[0] == '\0');
    CHECK(sbx_profile_parse("file:", &c) == -EINVAL);
    CHECK(sbx_profile_parse("Default", &c) == -EINVAL);
    CHECK(sbx_profile_parse("", &c) == -EINVAL);
    static char longname[SBX_PATH_MAX + 8];
    memcpy(longname, "file:", 5);
    memset(longname + 5, 'a', SBX_PATH_MAX);
    CHECK(sbx_profile_parse(longname, &c) == -ENAMETOOLONG);
    CHECK(c.profile == SBX_DEFAULT); /* unchanged on error */
    CHECK_STR(sbx_profile_name(SBX_STRICT), "strict");
    CHECK_STR(sbx_profile_name(SBX_FILE), "file");
}

static void test_rlimit_parse(void)
{
    sbx_config c;
    sbx_config_init(&c);
    char err[256];
    CHECK(c.rlimits[SBX_RLIMIT_CORE] == 0);
    CHECK(c.rlimits[SBX_RLIMIT_NOFILE] == 65536);
    CHECK(c.rlimits[SBX_RLIMIT_NPROC] == 4096);
    CHECK(c.rlimits[SBX_RLIMIT_CPU] == SBX_RLIM_NONE && c.rlimits[SBX_RLIMIT_AS] == SBX_RLIM_NONE);
    CHECK(sbx_rlimit_parse("nproc=100", &c, err, sizeof err) == 0);
    CHECK(c.rlimits[SBX_RLIMIT_NPROC] == 100);
    CHECK(sbx_rlimit_parse("as=1G", &c, err, sizeof err) == 0);
    CHECK(c.rlimits[SBX_RLIMIT_AS] == 1ULL << 30);
    CHECK(sbx_rlimit_parse("fsize=64k", &c, err, sizeof err) == 0);
    CHECK(c.rlimits[SBX_RLIMIT_FSIZE] == 65536);
    CHECK(sbx_rlimit_parse("cpu=unlimited", &c, err, sizeof err) == 0);
    CHECK(c.rlimits[SBX_RLIMIT_CPU] == SBX_RLIM_NONE);
    CHECK(sbx_rlimit_parse("core=0", &c, err, sizeof err) == 0);
    const char *bad[] = {"nproc",        "nproc=",  "nproc=-1", "nproc=1X",
                         "nproc=1KB",    "bogus=1", "=1",       "as=99999999999999999999",
                         "as=16777216T", "nproc= 1"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        err[0] = '\0';
        CHECK(sbx_rlimit_parse(bad[i], &c, err, sizeof err) == -EINVAL);
        CHECK(err[0] != '\0');
    }
    sbx_rlimit_parse("bogus=1", &c, err, sizeof err);
    CHECK(strstr(err, "bogus") && strstr(err, "nofile"));
    CHECK_STR(sbx_rlimit_name(SBX_RLIMIT_NOFILE), "nofile");
}

static void test_keep_cap(void)
{
    sbx_config c;
    sbx_config_init(&c);
    char err[256];
    CHECK(sbx_config_keep_cap(&c, "net_bind_service", err, sizeof err) == 0);
    CHECK(sbx_config_keep_cap(&c, "CAP_CHOWN", err, sizeof err) == 0);
    CHECK(sbx_config_keep_cap(&c, "cap_Kill", err, sizeof err) == 0);
    CHECK(c.keep_caps ==
          ((1ULL << CAP_NET_BIND_SERVICE) | (1ULL << CAP_CHOWN) | (1ULL << CAP_KILL)));
    CHECK(sbx_config_keep_cap(&c, "nonsense", err, sizeof err) == -EINVAL);
    CHECK(strstr(err, "nonsense") != NULL);
    CHECK(sbx_config_keep_cap(&c, "7", err, sizeof err) == -EINVAL);
    CHECK(sbx_config_keep_cap(&c, "", err, sizeof err) == -EINVAL);
    CHECK(sbx_config_keep_cap(&c, "cap_", err, sizeof err) == -EINVAL);
}

static void test_tighter(void)
{
    sbx_config ex, rq;
    char err[256];
    sbx_config_init(&ex);
    rq = ex;
    CHECK(sbx_tighter_or_equal(&ex, &rq, err, sizeof err));

    static const struct {
        sbx_profile ex, rq;
        bool ok;
    } order[] = {
        {SBX_UNCONFINED, SBX_UNCONFINED, true},
        {SBX_UNCONFINED, SBX_DEFAULT, true},
        {SBX_UNCONFINED, SBX_STRICT, true},
        {SBX_DEFAULT, SBX_STRICT, true},
        {SBX_DEFAULT, SBX_UNCONFINED, false},
        {SBX_STRICT, SBX_DEFAULT, false},
        {SBX_STRICT, SBX_UNCONFINED, false},
        {SBX_UNCONFINED, SBX_FILE, true},
        {SBX_DEFAULT, SBX_FILE, false},
        {SBX_STRICT, SBX_FILE, false},
        {SBX_FILE, SBX_STRICT, false},
        {SBX_FILE, SBX_UNCONFINED, false},
        {SBX_FILE, SBX_FILE, true},
    };
    for (size_t i = 0; i < sizeof order / sizeof order[0]; i++) {
        sbx_config_init(&ex);
        sbx_config_init(&rq);
        ex.profile = order[i].ex;
        rq.profile = order[i].rq;
        if (ex.profile == SBX_FILE)
            strcpy(ex.file, "/p.json");
        if (rq.profile == SBX_FILE)
            strcpy(rq.file, "/p.json");
        err[0] = '\0';
        bool ok = sbx_tighter_or_equal(&ex, &rq, err, sizeof err);
        if (ok != order[i].ok)
            fprintf(stderr, "order case %zu: %s -> %s gave %d\n", i, sbx_profile_name(order[i].ex),
                    sbx_profile_name(order[i].rq), ok);
        CHECK(ok == order[i].ok);
        CHECK(ok || strstr(err, "not as strict"));
    }
    /* Two different files cannot be compared. */
    sbx_profile_parse("file:/a.json", &ex);
    sbx_profile_parse("file:/b.json", &rq);
    CHECK(!sbx_tighter_or_equal(&ex, &rq, err, sizeof err));
    CHECK(strstr(err, "/b.json") && strstr(err, "/a.json"));

    sbx_config_init(&ex);
    rq = ex;
    rq.rlimits[SBX_RLIMIT_NPROC] = 10; /* lower: fine */
    CHECK(sbx_tighter_or_equal(&ex, &rq, err, sizeof err));
    rq.rlimits[SBX_RLIMIT_NOFILE] = 70000; /* higher: refused */
    CHECK(!sbx_tighter_or_equal(&ex, &rq, err, sizeof err));
    CHECK(strstr(err, "nofile") && strstr(err, "65536"));
    rq = ex;
    rq.rlimits[SBX_RLIMIT_CPU] = 5; /* executor has none: any limit tightens */
    CHECK(sbx_tighter_or_equal(&ex, &rq, err, sizeof err));
    rq = ex;
    rq.rlimits[SBX_RLIMIT_CORE] = SBX_RLIM_NONE; /* lifting core=0 loosens */
    CHECK(!sbx_tighter_or_equal(&ex, &rq, err, sizeof err));
    CHECK(strstr(err, "core") != NULL);

    ex.keep_caps = (1ULL << CAP_NET_BIND_SERVICE) | (1ULL << CAP_CHOWN);
    rq = ex;
    rq.keep_caps = 1ULL << CAP_CHOWN; /* fewer: fine */
    CHECK(sbx_tighter_or_equal(&ex, &rq, err, sizeof err));
    rq.keep_caps |= 1ULL << CAP_SYS_ADMIN;
    CHECK(!sbx_tighter_or_equal(&ex, &rq, err, sizeof err));
    CHECK(strstr(err, "cap_sys_admin") != NULL);

    sbx_config_init(&ex);
    rq = ex;
    rq.uid = rq.gid = 65534; /* another uid is not a tightening the executor can judge */
    CHECK(!sbx_tighter_or_equal(&ex, &rq, err, sizeof err));
    CHECK(sbx_tighter_or_equal(&ex, &ex, NULL, 0));
}

/* Every listed name is known to this libseccomp, and no name is both refused and allowed. */
static void test_tables(void)
{
    for (size_t i = 0; i < sbx_default_denied_count; i++) {
        int nr = seccomp_syscall_resolve_name(sbx_default_denied[i]);
        if (nr == __NR_SCMP_ERROR)
            fprintf(stderr, "default: unknown syscall %s\n", sbx_default_denied[i]);
        CHECK(nr != __NR_SCMP_ERROR);
        for (size_t j = 0; j < sbx_strict_allowed_count; j++)
            CHECK(strcmp(sbx_default_denied[i], sbx_strict_allowed[j]) != 0);
    }
    for (size_t i = 0; i < sbx_strict_allowed_count; i++) {
        int nr = seccomp_syscall_resolve_name(sbx_strict_allowed[i]);
        if (nr == __NR_SCMP_ERROR)
            fprintf(stderr, "strict: unknown syscall %s\n", sbx_strict_allowed[i]);
        CHECK(nr != __NR_SCMP_ERROR);
        for (size_t j = 0; j < i; j++)
            CHECK(strcmp(sbx_strict_allowed[i], sbx_strict_allowed[j]) != 0);
    }
}

static double now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3;
}

static void test_prepare_and_describe(void)
{
    char err[512], line[512];
    sbx_config c;
    sbx_prepared *p;
    for (int prof = SBX_UNCONFINED; prof <= SBX_STRICT; prof++) {
        sbx_config_init(&c);
        c.profile = (sbx_profile)prof;
        double t0 = now_us();
        CHECK(sbx_prepare(&c, &p, err, sizeof err) == 0);
        double t1 = now_us();
        if (!p)
            continue;
        printf("sbx_prepare(%s): %.0f us\n", sbx_profile_name(c.profile), t1 - t0);
        CHECK(sbx_describe(p, line, sizeof line) == 0);
        printf("  %s\n", line);
        char want[64];
        snprintf(want, sizeof want, "profile=%s filter=", sbx_profile_name(c.profile));
        CHECK(strncmp(line, want, strlen(want)) == 0);
        CHECK(strstr(line, "nproc:4096") && strstr(line, "core:0") && strstr(line, "caps=none"));
        CHECK(strstr(line, "ids=keep no_new_privs=1") != NULL);
        CHECK(prof != SBX_UNCONFINED || strstr(line, "filter=0 "));
        CHECK(prof == SBX_UNCONFINED || !strstr(line, "filter=0 "));
        CHECK(sbx_prepared_config(p)->profile == c.profile);
        CHECK(sbx_describe(p, line, 20) == -ENOSPC && strlen(line) == 19);
        sbx_prepared_free(p);
    }
    sbx_prepared_free(NULL);

    sbx_config_init(&c);
    sbx_config_keep_cap(&c, "net_bind_service", err, sizeof err);
    sbx_config_keep_cap(&c, "chown", err, sizeof err);
    c.uid = c.gid = 65534;
    CHECK(sbx_prepare(&c, &p, err, sizeof err) == 0);
    if (p) {
        sbx_describe(p, line, sizeof line);
        CHECK(strstr(line, "caps=cap_chown,cap_net_bind_service ids=65534:65534") != NULL);
        sbx_prepared_free(p);
    }

    /* Refusals, each with a message. */
    sbx_config_init(&c);
    c.uid = 65534;
    CHECK(sbx_prepare(&c, &p, err, sizeof err) == -EINVAL && p == NULL);
    CHECK(strstr(err, "gid") != NULL);
    sbx_config_init(&c);
    sbx_profile_parse("file:/nonexistent/p.json", &c);
    int rc = sbx_prepare(&c, &p, err, sizeof err);
    CHECK(rc < 0 && p == NULL);
    CHECK(strstr(err, "/nonexistent/p.json") != NULL);
    sbx_config_init(&c);
    c.profile = (sbx_profile)42;
    CHECK(sbx_prepare(&c, &p, err, sizeof err) == -EINVAL);

    /* A capability the executor lacks cannot be kept: find one (this VM lacks CAP_SYS_RESOURCE;
     * elsewhere drop one in a child). */
    cap_t cur = cap_get_proc();
    int missing = -1;
    for (int cap = 0; cur && cap <= CAP_LAST_CAP && missing < 0; cap++) {
        cap_flag_value_t v;
        if (cap_get_flag(cur, cap, CAP_PERMITTED, &v) == 0 && v == CAP_CLEAR)
            missing = cap;
    }
    cap_free(cur);
    if (missing >= 0) {
        sbx_config_init(&c);
        c.keep_caps = 1ULL << missing;
        CHECK(sbx_prepare(&c, &p, err, sizeof err) == -EPERM);
        CHECK(strstr(err, "cannot keep") != NULL);
    }
}

/* Limits: hard = min(value, executor's hard); soft lowered to it if higher. */
static void child_limits(void *arg)
{
    (void)arg;
    struct rlimit lim = {.rlim_cur = 512, .rlim_max = 1024};
    CHECK(setrlimit(RLIMIT_NOFILE, &lim) == 0);
    sbx_config c;
    sbx_config_init(&c);
    c.profile = SBX_UNCONFINED;
    c.rlimits[SBX_RLIMIT_NOFILE] = 100000; /* above the hard 1024: clamped */
    c.rlimits[SBX_RLIMIT_FSIZE] = 1 << 20;
    c.rlimits[SBX_RLIMIT_CPU] = 30;
    char err[256];
    sbx_prepared *p;
    CHECK(sbx_prepare(&c, &p, err, sizeof err) == 0);
    sbx_stage st = SBX_STAGE_NONE;
    CHECK(sbx_apply_in_child(p, &st) == 0 && st == SBX_STAGE_NONE);
    CHECK(getrlimit(RLIMIT_NOFILE, &lim) == 0 && lim.rlim_cur == 512 && lim.rlim_max == 1024);
    CHECK(getrlimit(RLIMIT_FSIZE, &lim) == 0 && lim.rlim_cur == 1 << 20 && lim.rlim_max == 1 << 20);
    CHECK(getrlimit(RLIMIT_CPU, &lim) == 0 && lim.rlim_cur == 30 && lim.rlim_max == 30);
    CHECK(getrlimit(RLIMIT_CORE, &lim) == 0 && lim.rlim_cur == 0 && lim.rlim_max == 0);
    /* The hard limit is final: no capability is left to raise it. */
    lim.rlim_cur = lim.rlim_max = 1 << 21;
    CHECK(setrlimit(RLIMIT_FSIZE, &lim) == -1 && errno == EPERM);
}

typedef struct {
    sbx_profile profile;
    bool switch_ids;
    bool keep_net_bind;
} apply_case;

/* Applies a configuration and checks, from inside, what is left. */
static void child_apply(void *arg)
{
    const apply_case *ac = arg;
    sbx_config c;
    sbx_config_init(&c);
    c.profile = ac->profile;
    char err[256];
    if (ac->switch_ids)
        c.uid = c.gid = 65534;
    if (ac->keep_net_bind)
        sbx_config_keep_cap(&c, "net_bind_service", err, sizeof err);
    sbx_prepared *p;
    CHECK(sbx_prepare(&c, &p, err, sizeof err) == 0);
    sbx_stage st = SBX_STAGE_NONE;
    int rc = sbx_apply_in_child(p, &st);
    if (rc != 0)
        fprintf(stderr, "apply: %s: %s\n", sbx_stage_name(st), strerror(-rc));
    CHECK(rc == 0);

    const char *want = ac->keep_net_bind ? "0000000000000400" : "0000000000000000";
    CHECK_STR(status_field("/proc/self/status", "CapPrm"), want);
    CHECK_STR(status_field("/proc/self/status", "CapEff"), want);
    CHECK_STR(status_field("/proc/self/status", "CapBnd"), want);
    CHECK_STR(status_field("/proc/self/status", "CapInh"), want);
    CHECK_STR(status_field("/proc/self/status", "CapAmb"),
              ac->keep_net_bind && ac->switch_ids ? want : "0000000000000000");
    CHECK_STR(status_field("/proc/self/status", "NoNewPrivs"), "1");
    CHECK_STR(status_field("/proc/self/status", "Seccomp"),
              ac->profile == SBX_UNCONFINED ? "0" : "2");
    if (ac->switch_ids) {
        CHECK_STR(status_field("/proc/self/status", "Uid"), "65534\t65534\t65534\t65534");
        CHECK_STR(status_field("/proc/self/status", "Gid"), "65534\t65534\t65534\t65534");
        CHECK_STR(status_field("/proc/self/status", "Groups"), "");
    }
    errno = 0;
    long r = syscall(SYS_unshare, -1L); /* invalid flags: EINVAL unless refused first */
    CHECK(r == -1 && errno == (ac->profile == SBX_UNCONFINED ? EINVAL : EPERM));
    errno = 0;
    r = syscall(SYS_clone3, NULL, 0);
    CHECK(r == -1 && errno == (ac->profile == SBX_UNCONFINED ? EINVAL : ENOSYS));
    CHECK(getpid() > 0);
    if (ac->profile == SBX_STRICT) {
        /* Refused calls libseccomp knows get EPERM; numbers past the newest it knows, ENOSYS. */
        errno = 0;
        CHECK(syscall(SYS_ptrace, -1L, 0L, 0L, 0L) == -1 && errno == EPERM);
        int newest = 0;
        for (int nr = 0; nr < 1024; nr++) {
            char *name = seccomp_syscall_resolve_num_arch(SCMP_ARCH_NATIVE, nr);
            if (name)
                newest = nr;
            free(name);
        }
        errno = 0;
        CHECK(syscall(newest + 1, 0L, 0L, 0L, 0L, 0L, 0L) == -1 && errno == ENOSYS);
    }
    sbx_prepared_free(p);
}

/*
 * The executor not being root: prepare may not plan a uid switch or bounding-set drops it
 * cannot make, and the rest still applies.
 */
static void child_non_root_executor(void *arg)
{
    (void)arg;
    CHECK(setgroups(0, NULL) == 0 && setresgid(1234, 1234, 1234) == 0 &&
          setresuid(1234, 1234, 1234) == 0);
    char bnd_before[64];
    snprintf(bnd_before, sizeof bnd_before, "%s", status_field("/proc/self/status", "CapBnd"));
    sbx_config c;
    sbx_config_init(&c);
    char err[256];
    sbx_prepared *p;
    c.uid = c.gid = 65534;
    CHECK(sbx_prepare(&c, &p, err, sizeof err) == -EPERM);
    CHECK(strstr(err, "CAP_SETUID") != NULL);
    c.uid = c.gid = 1234; /* the ids it already has: nothing to switch, so allowed */
    CHECK(sbx_prepare(&c, &p, err, sizeof err) == 0);
    sbx_prepared_free(p);
    sbx_config_keep_cap(&c, "net_bind_service", err, sizeof err);
    CHECK(sbx_prepare(&c, &p, err, sizeof err) == -EPERM);
    sbx_config_init(&c);
    c.profile = SBX_STRICT;
    CHECK(sbx_prepare(&c, &p, err, sizeof err) == 0);
    sbx_stage st = SBX_STAGE_NONE;
    CHECK(sbx_apply_in_child(p, &st) == 0);
    CHECK_STR(status_field("/proc/self/status", "NoNewPrivs"), "1");
    CHECK_STR(status_field("/proc/self/status", "Seccomp"), "2");
    CHECK_STR(status_field("/proc/self/status", "CapEff"), "0000000000000000");
    /* Unchanged: without CAP_SETPCAP it cannot shrink, and no_new_privs makes it moot. */
    CHECK_STR(status_field("/proc/self/status", "CapBnd"), bnd_before);
    sbx_prepared_free(p);
}

/* A failure in the child comes back with its stage: here the child lost CAP_SETGID/SETUID (or a
 * kept capability) after the parent prepared. */
static void child_stage_reported(void *arg)
{
    int which = *(int *)arg;
    sbx_config c;
    sbx_config_init(&c);
    char err[256];
    if (which == 0)
        c.uid = c.gid = 65534;
    else
        sbx_config_keep_cap(&c, "net_bind_service", err, sizeof err);
    sbx_prepared *p;
    CHECK(sbx_prepare(&c, &p, err, sizeof err) == 0);
    cap_t caps = cap_get_proc();
    cap_value_t drop[] = {CAP_SETGID, CAP_SETUID, CAP_NET_BIND_SERVICE};
    CHECK(cap_set_flag(caps, CAP_EFFECTIVE, 3, drop, CAP_CLEAR) == 0);
    CHECK(cap_set_flag(caps, CAP_PERMITTED, 3, drop, CAP_CLEAR) == 0);
    CHECK(cap_set_proc(caps) == 0);
    cap_free(caps);
    sbx_stage st = SBX_STAGE_NONE;
    int rc = sbx_apply_in_child(p, &st);
    CHECK(rc == -EPERM);
    CHECK(st == (which == 0 ? SBX_STAGE_SETGROUPS : SBX_STAGE_CAPSET));
    CHECK_STR(sbx_stage_name(st), which == 0 ? "setgroups" : "capset");
    sbx_prepared_free(p);
}

/* vfork-style: the child shares memory with a parent that has another thread. */
typedef struct {
    const sbx_prepared *p;
    volatile int rc;
    volatile sbx_stage stage;
    volatile int seen_uid;
} vfork_ctx;

static int vfork_child(void *arg)
{
    vfork_ctx *v = arg;
    sbx_stage st = SBX_STAGE_NONE;
    v->rc = sbx_apply_in_child(v->p, &st);
    v->stage = st;
    v->seen_uid = (int)syscall(SYS_getuid);
    _exit(0);
}

static void *idle_thread(void *arg)
{
    volatile int *stop = arg;
    while (!*stop)
        usleep(1000);
    return NULL;
}

static void test_vfork_with_threads(void)
{
    volatile int stop = 0;
    pthread_t t;
    CHECK(pthread_create(&t, NULL, idle_thread, (void *)&stop) == 0);
    sbx_config c;
    sbx_config_init(&c);
    c.profile = SBX_STRICT;
    c.uid = c.gid = 65534;
    char err[256];
    sbx_prepared *p;
    CHECK(sbx_prepare(&c, &p, err, sizeof err) == 0);
    struct rlimit core_before, nproc_before, core_after, nproc_after;
    getrlimit(RLIMIT_CORE, &core_before);
    getrlimit(RLIMIT_NPROC, &nproc_before);
    char capbnd_before[64], capeff_before[64];
    snprintf(capbnd_before, sizeof capbnd_before, "%s",
             status_field("/proc/self/status", "CapBnd"));
    snprintf(capeff_before, sizeof capeff_before, "%s",
             status_field("/proc/self/status", "CapEff"));
    void *stack = mmap(NULL, 64 * 1024, PROT_READ | PROT_WRITE,
                       MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0);
    CHECK(stack != MAP_FAILED);
    for (int i = 0; i < 20; i++) {
        vfork_ctx v = {.p = p, .rc = 1, .stage = SBX_STAGE_NONE, .seen_uid = -1};
        pid_t pid =
            clone(vfork_child, (char *)stack + 64 * 1024, CLONE_VM | CLONE_VFORK | SIGCHLD, &v);
        CHECK(pid > 0);
        int st;
        CHECK(waitpid(pid, &st, 0) == pid && WIFEXITED(st) && WEXITSTATUS(st) == 0);
        CHECK(v.rc == 0 && v.seen_uid == 65534);
    }
    /* The uid switch, made with the raw call from a child sharing the parent's memory, reached
     * only the child. */
    CHECK(getuid() == 0 && geteuid() == 0);
    /* Limits live in the process's signal struct and capabilities in each task's credentials:
     * a child sharing only memory changes neither for the parent. */
    getrlimit(RLIMIT_CORE, &core_after);
    getrlimit(RLIMIT_NPROC, &nproc_after);
    CHECK(core_after.rlim_cur == core_before.rlim_cur &&
          core_after.rlim_max == core_before.rlim_max);
    CHECK(nproc_after.rlim_max == nproc_before.rlim_max);
    CHECK_STR(status_field("/proc/self/status", "CapBnd"), capbnd_before);
    CHECK_STR(status_field("/proc/self/status", "CapEff"), capeff_before);
    CHECK_STR(status_field("/proc/self/status", "NoNewPrivs"), "0");
    CHECK_STR(status_field("/proc/self/status", "Seccomp"), "0");
    stop = 1;
    pthread_join(t, NULL);
    CHECK(getuid() == 0);
    munmap(stack, 64 * 1024);
    sbx_prepared_free(p);
}

/*
 * sbx_apply_in_spawner in a spawning thread: the thread's bounding set shrinks and it runs under
 * the default filter, its effective set and the other threads' state do not change, and a child
 * of that thread ends up with nothing and exactly one filter (inherited, not attached again).
 */
typedef struct {
    sbx_prepared *p;
    char eff_before[64];
} spawner_ctx;

static void *spawner_thread(void *arg)
{
    spawner_ctx *b = arg;
    char err[256] = "";
    CHECK(sbx_apply_in_spawner(b->p, err, sizeof err) == 0);
    CHECK_STR(status_field("/proc/thread-self/status", "CapBnd"), "0000000000000000");
    CHECK_STR(status_field("/proc/thread-self/status", "CapEff"), b->eff_before);
    CHECK_STR(status_field("/proc/thread-self/status", "Seccomp"), "2");
    CHECK_STR(status_field("/proc/thread-self/status", "NoNewPrivs"), "1");
    /* Applied once: a second call has nothing left to do (no second filter). */
    CHECK(sbx_apply_in_spawner(b->p, err, sizeof err) == 0);
    CHECK_STR(status_field("/proc/thread-self/status", "Seccomp_filters"), "1");
    fflush(stderr);
    pid_t pid = fork(); /* the child inherits this thread's state, as a spawned command does */
    if (pid == 0) {
        test_failures = 0;
        sbx_stage st = SBX_STAGE_NONE;
        CHECK(sbx_apply_in_child(b->p, &st) == 0);
        CHECK_STR(status_field("/proc/self/status", "CapBnd"), "0000000000000000");
        CHECK_STR(status_field("/proc/self/status", "CapEff"), "0000000000000000");
        CHECK_STR(status_field("/proc/self/status", "Seccomp"), "2");
        CHECK_STR(status_field("/proc/self/status", "Seccomp_filters"), "1");
        errno = 0;
        CHECK(syscall(SYS_unshare, -1L) == -1 && errno == EPERM);
        errno = 0;
        CHECK(syscall(SYS_clone3, NULL, 0) == -1 && errno == ENOSYS);
        _exit(test_failures ? 1 : 0);
    }
    int st = -1;
    CHECK(pid > 0 && waitpid(pid, &st, 0) == pid && WIFEXITED(st) && WEXITSTATUS(st) == 0);
    return NULL;
}

static void child_apply_in_spawner(void *arg)
{
    (void)arg;
    sbx_config c;
    sbx_config_init(&c);
    c.profile = SBX_DEFAULT;
    char err[256];
    spawner_ctx b;
    CHECK(sbx_prepare(&c, &b.p, err, sizeof err) == 0);
    char bnd_before[64];
    snprintf(bnd_before, sizeof bnd_before, "%s", status_field("/proc/self/status", "CapBnd"));
    CHECK(strcmp(bnd_before, "0000000000000000") != 0);
    snprintf(b.eff_before, sizeof b.eff_before, "%s", status_field("/proc/self/status", "CapEff"));
    pthread_t t;
    CHECK(pthread_create(&t, NULL, spawner_thread, &b) == 0);
    pthread_join(t, NULL);
    /* The other threads (here the main one) are untouched. */
    CHECK_STR(status_field("/proc/self/status", "CapBnd"), bnd_before);
    CHECK_STR(status_field("/proc/self/status", "Seccomp"), "0");
    sbx_prepared_free(b.p);

    /* A strict profile is an allow list: it stays per child, the thread is not filtered. */
    c.profile = SBX_STRICT;
    CHECK(sbx_prepare(&c, &b.p, err, sizeof err) == 0);
    CHECK(sbx_apply_in_spawner(b.p, err, sizeof err) == 0);
    CHECK_STR(status_field("/proc/thread-self/status", "Seccomp"), "0");
    sbx_prepared_free(b.p);
}

int main(void)
{
    if (geteuid() != 0) {
        fprintf(stderr, "sandbox_test needs root (uid switches, capabilities)\n");
        return 1;
    }
    test_profile_parse();
    test_rlimit_parse();
    test_keep_cap();
    test_tighter();
    test_tables();
    test_prepare_and_describe();
    CHECK(sbx_apply_in_child(NULL, NULL) == 0);

    CHECK(in_child(child_limits, NULL) == 0);
    static const apply_case cases[] = {
        {SBX_UNCONFINED, false, false}, {SBX_DEFAULT, false, false}, {SBX_STRICT, false, false},
        {SBX_UNCONFINED, true, false},  {SBX_DEFAULT, true, false},  {SBX_STRICT, true, false},
        {SBX_DEFAULT, false, true},     {SBX_DEFAULT, true, true},   {SBX_STRICT, true, true},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int st = in_child(child_apply, (void *)&cases[i]);
        if (st != 0)
            fprintf(stderr, "apply case %zu (%s, switch_ids=%d, keep=%d) failed\n", i,
                    sbx_profile_name(cases[i].profile), cases[i].switch_ids,
                    cases[i].keep_net_bind);
        CHECK(st == 0);
    }
    CHECK(in_child(child_non_root_executor, NULL) == 0);
    int which0 = 0, which1 = 1;
    CHECK(in_child(child_stage_reported, &which0) == 0);
    CHECK(in_child(child_stage_reported, &which1) == 0);
    test_vfork_with_threads();
    CHECK(in_child(child_apply_in_spawner, NULL) == 0);

    return test_done("sandbox_test");
}

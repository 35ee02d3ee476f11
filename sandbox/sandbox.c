/*
 * The sandbox library: configuration helpers, the parent-side preparation (limits, capability
 * sets, ids, the seccomp program exported from libseccomp into memory) and the child-side
 * application with raw system calls. See sandbox.h for the contract and docs/sandbox.md for what
 * each profile refuses.
 */
#include "sandbox/sandbox.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/capability.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <seccomp.h>

#include "sandbox/oci/oci.h"
#include "sandbox/profiles.h"

/* 32-bit x86 and ARM name the calls with 32-bit ids "...32"; the plain ones take 16-bit ids. */
#ifdef SYS_setresuid32
#define SBX_SYS_SETRESUID SYS_setresuid32
#define SBX_SYS_SETRESGID SYS_setresgid32
#define SBX_SYS_SETGROUPS SYS_setgroups32
#else
#define SBX_SYS_SETRESUID SYS_setresuid
#define SBX_SYS_SETRESGID SYS_setresgid
#define SBX_SYS_SETGROUPS SYS_setgroups
#endif

/* The kernel's struct for prlimit64, the same on every architecture. */
typedef struct {
    uint64_t cur;
    uint64_t max;
} kernel_rlimit64;

/* Capabilities fit in 64 bits for as long as the kernel's capset ABI (version 3) does. */
#define MAX_CAPS 64

struct sbx_prepared {
    sbx_config cfg;
    struct {
        int resource;
        kernel_rlimit64 lim;
    } limits[SBX_RLIMIT_COUNT];
    unsigned nlimits;
    int capbset_drop[MAX_CAPS]; /* capabilities to remove from the bounding set */
    unsigned ncapbset_drop;
    bool switch_ids;
    bool keepcaps; /* PR_SET_KEEPCAPS before setresuid so the kept permitted set survives it */
    struct __user_cap_data_struct caps[_LINUX_CAPABILITY_U32S_3];
    int ambient[MAX_CAPS]; /* kept capabilities to raise in the ambient set */
    unsigned nambient;
    struct sock_fprog prog; /* len 0: no filter */
    bool filter_inherited;  /* the spawning thread has it already (sbx_apply_in_spawner) */
    struct sock_filter *filter;
};

static const struct {
    const char *name;
    int resource;
} rlimit_info[SBX_RLIMIT_COUNT] = {
    [SBX_RLIMIT_CPU] = {"cpu", RLIMIT_CPU},          [SBX_RLIMIT_AS] = {"as", RLIMIT_AS},
    [SBX_RLIMIT_NOFILE] = {"nofile", RLIMIT_NOFILE}, [SBX_RLIMIT_NPROC] = {"nproc", RLIMIT_NPROC},
    [SBX_RLIMIT_FSIZE] = {"fsize", RLIMIT_FSIZE},    [SBX_RLIMIT_CORE] = {"core", RLIMIT_CORE},
};

__attribute__((format(printf, 3, 4))) static void seterr(char *err, size_t errlen, const char *fmt,
                                                         ...)
{
    if (!err || !errlen)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

void sbx_config_init(sbx_config *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    cfg->profile = SBX_DEFAULT;
    for (int i = 0; i < SBX_RLIMIT_COUNT; i++)
        cfg->rlimits[i] = SBX_RLIM_NONE;
    /* A hard limit, not the soft one: programs keep their usual soft 1024 unless they raise it. */
    cfg->rlimits[SBX_RLIMIT_NOFILE] = 65536;
    /* High enough for parallel builds and thread-heavy runtimes, low enough to stop a fork bomb
     * long before the pid space; it only acts for a non-root uid (see sandbox.h). */
    cfg->rlimits[SBX_RLIMIT_NPROC] = 4096;
    cfg->rlimits[SBX_RLIMIT_CORE] = 0;
    cfg->keep_caps = 0;
    cfg->uid = SBX_ID_KEEP;
    cfg->gid = SBX_ID_KEEP;
}

const char *sbx_profile_name(sbx_profile profile)
{
    switch (profile) {
    case SBX_UNCONFINED:
        return "unconfined";
    case SBX_DEFAULT:
        return "default";
    case SBX_STRICT:
        return "strict";
    case SBX_FILE:
        return "file";
    }
    return "?";
}

int sbx_profile_parse(const char *name, sbx_config *cfg)
{
    static const sbx_profile builtin[] = {SBX_UNCONFINED, SBX_DEFAULT, SBX_STRICT};
    for (size_t i = 0; i < sizeof builtin / sizeof builtin[0]; i++) {
        if (strcmp(name, sbx_profile_name(builtin[i])) == 0) {
            cfg->profile = builtin[i];
            cfg->file[0] = '\0';
            return 0;
        }
    }
    if (strncmp(name, "file:", 5) != 0 || name[5] == '\0')
        return -EINVAL;
    size_t len = strlen(name + 5);
    if (len >= SBX_PATH_MAX)
        return -ENAMETOOLONG;
    memcpy(cfg->file, name + 5, len + 1);
    cfg->profile = SBX_FILE;
    return 0;
}

const char *sbx_rlimit_name(sbx_rlimit which)
{
    return (unsigned)which < SBX_RLIMIT_COUNT ? rlimit_info[which].name : "?";
}

/* Reads a count or size: digits and an optional K/M/G/T suffix (powers of 1024), or "unlimited". */
static int parse_limit_value(const char *s, uint64_t *out)
{
    if (strcmp(s, "unlimited") == 0 || strcmp(s, "infinity") == 0) {
        *out = SBX_RLIM_NONE;
        return 0;
    }
    if (!isdigit((unsigned char)s[0]))
        return -EINVAL;
    uint64_t v = 0;
    const char *p = s;
    for (; isdigit((unsigned char)*p); p++) {
        unsigned d = (unsigned)(*p - '0');
        if (v > (UINT64_MAX - d) / 10)
            return -ERANGE;
        v = v * 10 + d;
    }
    unsigned shift = 0;
    if (*p) {
        const char *suffixes = "KMGT";
        const char *at = strchr(suffixes, toupper((unsigned char)*p));
        if (!at || p[1] != '\0')
            return -EINVAL;
        shift = 10 * (unsigned)(at - suffixes + 1);
    }
    if (shift && v > (UINT64_MAX >> shift))
        return -ERANGE;
    *out = v << shift;
    return 0;
}

int sbx_rlimit_parse(const char *spec, sbx_config *cfg, char *err, size_t errlen)
{
    const char *eq = strchr(spec, '=');
    if (!eq) {
        seterr(err, errlen, "rlimit \"%s\": expected NAME=VALUE", spec);
        return -EINVAL;
    }
    size_t nlen = (size_t)(eq - spec);
    for (int i = 0; i < SBX_RLIMIT_COUNT; i++) {
        if (strlen(rlimit_info[i].name) != nlen || strncmp(spec, rlimit_info[i].name, nlen) != 0)
            continue;
        uint64_t v;
        int rc = parse_limit_value(eq + 1, &v);
        if (rc < 0) {
            seterr(err, errlen,
                   "rlimit %s: \"%s\" is not a number (digits, optional K/M/G/T) or \"unlimited\"",
                   rlimit_info[i].name, eq + 1);
            return -EINVAL;
        }
        cfg->rlimits[i] = v;
        return 0;
    }
    seterr(err, errlen, "rlimit \"%.*s\": unknown (cpu, as, nofile, nproc, fsize, core)", (int)nlen,
           spec);
    return -EINVAL;
}

int sbx_config_keep_cap(sbx_config *cfg, const char *name, char *err, size_t errlen)
{
    char norm[64] = "cap_";
    size_t skip = strncasecmp(name, "cap_", 4) == 0 ? 4 : 0;
    size_t len = strlen(name + skip);
    if (len == 0 || len >= sizeof norm - 4) {
        seterr(err, errlen, "capability \"%s\": unknown", name);
        return -EINVAL;
    }
    for (size_t i = 0; i <= len; i++)
        norm[4 + i] = (char)tolower((unsigned char)name[skip + i]);
    cap_value_t cap;
    /* cap_from_name also reads bare numbers; only names are accepted here. */
    if (isdigit((unsigned char)norm[4]) || cap_from_name(norm, &cap) != 0 || cap < 0 ||
        cap >= MAX_CAPS) {
        seterr(err, errlen, "capability \"%s\": unknown", name);
        return -EINVAL;
    }
    cfg->keep_caps |= 1ULL << cap;
    return 0;
}

bool sbx_tighter_or_equal(const sbx_config *executor, const sbx_config *requested, char *err,
                          size_t errlen)
{
    sbx_profile ep = executor->profile, rp = requested->profile;
    bool profile_ok;
    if (rp == SBX_FILE)
        profile_ok = ep == SBX_UNCONFINED ||
                     (ep == SBX_FILE && strcmp(executor->file, requested->file) == 0);
    else
        profile_ok = ep != SBX_FILE && rp >= ep;
    if (!profile_ok) {
        seterr(err, errlen, "profile %s%s%s is not as strict as the executor's %s%s%s",
               sbx_profile_name(rp), rp == SBX_FILE ? ":" : "",
               rp == SBX_FILE ? requested->file : "", sbx_profile_name(ep),
               ep == SBX_FILE ? ":" : "", ep == SBX_FILE ? executor->file : "");
        return false;
    }
    for (int i = 0; i < SBX_RLIMIT_COUNT; i++) {
        if (requested->rlimits[i] > executor->rlimits[i]) {
            char have[24] = "unlimited";
            if (executor->rlimits[i] != SBX_RLIM_NONE)
                snprintf(have, sizeof have, "%" PRIu64, executor->rlimits[i]);
            seterr(err, errlen, "rlimit %s above the executor's %s", rlimit_info[i].name, have);
            return false;
        }
    }
    uint64_t extra = requested->keep_caps & ~executor->keep_caps;
    if (extra) {
        int cap = __builtin_ctzll(extra);
        char *name = cap_to_name(cap);
        seterr(err, errlen, "capability %s is not kept by the executor", name ? name : "?");
        cap_free(name);
        return false;
    }
    if (requested->uid != executor->uid || requested->gid != executor->gid) {
        seterr(err, errlen, "uid/gid differ from the executor's");
        return false;
    }
    return true;
}

/* Reads the exported program back from fd into p->filter. */
static int read_program(int fd, sbx_prepared *p, char *err, size_t errlen)
{
    off_t size = lseek(fd, 0, SEEK_END);
    if (size < 0) {
        int rc = -errno;
        seterr(err, errlen, "seccomp program: lseek: %s", strerror(errno));
        return rc;
    }
    size_t n = (size_t)size / sizeof(struct sock_filter);
    if (size == 0 || (size_t)size % sizeof(struct sock_filter) != 0) {
        seterr(err, errlen, "seccomp program: exported %lld bytes, not whole instructions",
               (long long)size);
        return -EINVAL;
    }
    if (n > BPF_MAXINSNS) {
        seterr(err, errlen, "seccomp program: %zu instructions, the kernel takes at most %d", n,
               BPF_MAXINSNS);
        return -E2BIG;
    }
    p->filter = malloc((size_t)size);
    if (!p->filter) {
        seterr(err, errlen, "seccomp program: out of memory");
        return -ENOMEM;
    }
    size_t done = 0;
    while (done < (size_t)size) {
        ssize_t r = pread(fd, (char *)p->filter + done, (size_t)size - done, (off_t)done);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0) {
            int rc = r < 0 ? -errno : -EIO;
            seterr(err, errlen, "seccomp program: read back: %s", strerror(-rc));
            return rc;
        }
        done += (size_t)r;
    }
    p->prog.len = (unsigned short)n;
    p->prog.filter = p->filter;
    return 0;
}

/*
 * Exports ctx as a BPF program into p. libseccomp 2.5 exports only to a file descriptor; a memfd
 * has no size limit (a pipe would block past 64 KiB) and touches no file system.
 */
static int export_program(scmp_filter_ctx ctx, sbx_prepared *p, char *err, size_t errlen)
{
    int fd = memfd_create("sbx-bpf", MFD_CLOEXEC);
    if (fd < 0) {
        int rc = -errno;
        seterr(err, errlen, "seccomp program: memfd_create: %s", strerror(errno));
        return rc;
    }
    int rc = seccomp_export_bpf(ctx, fd);
    if (rc < 0)
        seterr(err, errlen, "seccomp_export_bpf: %s", strerror(-rc));
    else
        rc = read_program(fd, p, err, errlen);
    close(fd);
    return rc;
}

/* Builds the filter of cfg's profile, or leaves *ctx NULL for unconfined. */
static int build_filter(const sbx_config *cfg, scmp_filter_ctx *ctx, char *err, size_t errlen)
{
    *ctx = NULL;
    if (cfg->profile == SBX_UNCONFINED)
        return 0;
    if (cfg->profile != SBX_FILE)
        return sbx_profile_build(cfg->profile, ctx, err, errlen);

    /* The loader evaluates Docker's includes/excludes.caps against "CAP_..." names. */
    char names[MAX_CAPS][40];
    const char *ptrs[MAX_CAPS];
    size_t n = 0;
    for (int c = 0; c < MAX_CAPS; c++) {
        if (!(cfg->keep_caps >> c & 1))
            continue;
        char *name = cap_to_name(c);
        if (!name)
            return -ENOMEM;
        snprintf(names[n], sizeof names[n], "%s", name);
        cap_free(name);
        for (char *s = names[n]; *s; s++)
            *s = (char)toupper((unsigned char)*s);
        ptrs[n] = names[n];
        n++;
    }
    return sbx_oci_load(cfg->file, ptrs, n, ctx, err, errlen);
}

/* Fills the limits, from the calling thread's own: a limit is lowered, never raised. */
static int prepare_limits(const sbx_config *cfg, sbx_prepared *p, char *err, size_t errlen)
{
    for (int i = 0; i < SBX_RLIMIT_COUNT; i++) {
        uint64_t v = cfg->rlimits[i];
        if (v == SBX_RLIM_NONE)
            continue;
        struct rlimit64 cur;
        if (getrlimit64(rlimit_info[i].resource, &cur) < 0) {
            int rc = -errno;
            seterr(err, errlen, "rlimit %s: %s", rlimit_info[i].name, strerror(errno));
            return rc;
        }
        uint64_t hard = v < cur.rlim_max ? v : cur.rlim_max;
        uint64_t soft = cur.rlim_cur < hard ? cur.rlim_cur : hard;
        p->limits[p->nlimits].resource = rlimit_info[i].resource;
        p->limits[p->nlimits].lim = (kernel_rlimit64){.cur = soft, .max = hard};
        p->nlimits++;
    }
    return 0;
}

static bool has_cap(cap_t caps, cap_value_t cap, cap_flag_t which)
{
    cap_flag_value_t v = CAP_CLEAR;
    return cap_get_flag(caps, cap, which, &v) == 0 && v == CAP_SET;
}

/*
 * Decides the id switch and the capability sets, and checks that the executor holds what they
 * need, so a configuration that cannot work fails here with a message rather than in every child.
 */
static int prepare_ids_and_caps(const sbx_config *cfg, sbx_prepared *p, char *err, size_t errlen)
{
    int rc = 0;
    cap_t cur = NULL, want = NULL;
    char *name = NULL;
    int ncaps = cap_max_bits();
    if (ncaps <= 0 || ncaps > MAX_CAPS)
        ncaps = MAX_CAPS;
    if (ncaps < MAX_CAPS && cfg->keep_caps >> ncaps) {
        rc = -EINVAL;
        seterr(err, errlen, "capability %d is not known to this kernel",
               63 - __builtin_clzll(cfg->keep_caps));
        goto fail;
    }
    if ((cfg->uid == SBX_ID_KEEP) != (cfg->gid == SBX_ID_KEEP)) {
        rc = -EINVAL;
        seterr(err, errlen, "a uid needs a gid and a gid needs a uid");
        goto fail;
    }
    cur = cap_get_proc();
    if (!cur) {
        rc = -errno;
        seterr(err, errlen, "reading the executor's capabilities: %s", strerror(errno));
        goto fail;
    }
    for (int c = 0; c < ncaps; c++) {
        if ((cfg->keep_caps >> c & 1) && !has_cap(cur, c, CAP_PERMITTED)) {
            rc = -EPERM;
            name = cap_to_name(c);
            seterr(err, errlen, "cannot keep %s: the executor does not have it", name ? name : "?");
            goto fail;
        }
    }

    if (cfg->uid != SBX_ID_KEEP) {
        uid_t r, e, s;
        gid_t rg, eg, sg;
        getresuid(&r, &e, &s);
        getresgid(&rg, &eg, &sg);
        bool same = r == cfg->uid && e == cfg->uid && s == cfg->uid && rg == cfg->gid &&
                    eg == cfg->gid && sg == cfg->gid && getgroups(0, NULL) == 0;
        p->switch_ids = !same;
        if (p->switch_ids && (!has_cap(cur, CAP_SETUID, CAP_EFFECTIVE) ||
                              !has_cap(cur, CAP_SETGID, CAP_EFFECTIVE))) {
            rc = -EPERM;
            seterr(err, errlen,
                   "cannot run as uid %" PRIu32 " gid %" PRIu32
                   ": the executor (uid %u) lacks CAP_SETUID/CAP_SETGID",
                   cfg->uid, cfg->gid, (unsigned)e);
            goto fail;
        }
    }
    p->keepcaps = p->switch_ids && cfg->keep_caps != 0;

    /* Without CAP_SETPCAP the bounding set cannot shrink. It then only matters for executing a
     * setuid-root or file-capability binary, which no_new_privs already stops from gaining. */
    if (has_cap(cur, CAP_SETPCAP, CAP_EFFECTIVE)) {
        for (int c = 0; c < ncaps; c++)
            if (!(cfg->keep_caps >> c & 1) && prctl(PR_CAPBSET_READ, c, 0, 0, 0) == 1)
                p->capbset_drop[p->ncapbset_drop++] = c;
    }

    /* The sets to capset, computed with libcap and handed to the child as the raw kernel ABI. */
    want = cap_init();
    if (!want) {
        rc = -ENOMEM;
        seterr(err, errlen, "out of memory");
        goto fail;
    }
    for (int c = 0; c < ncaps; c++) {
        if (!(cfg->keep_caps >> c & 1))
            continue;
        cap_value_t v = c;
        if (cap_set_flag(want, CAP_EFFECTIVE, 1, &v, CAP_SET) < 0 ||
            cap_set_flag(want, CAP_PERMITTED, 1, &v, CAP_SET) < 0 ||
            cap_set_flag(want, CAP_INHERITABLE, 1, &v, CAP_SET) < 0) {
            rc = -EINVAL;
            seterr(err, errlen, "capability %d: cap_set_flag failed", c);
            goto fail;
        }
    }
    for (int c = 0; c < ncaps; c++) {
        uint32_t bit = 1u << (c % 32);
        if (has_cap(want, c, CAP_EFFECTIVE))
            p->caps[c / 32].effective |= bit;
        if (has_cap(want, c, CAP_PERMITTED))
            p->caps[c / 32].permitted |= bit;
        if (has_cap(want, c, CAP_INHERITABLE))
            p->caps[c / 32].inheritable |= bit;
    }

    /* A non-root uid loses every capability at execve unless it is ambient; root gets back the
     * bounding set (now only the kept ones), so it needs none. */
    uint32_t target = cfg->uid != SBX_ID_KEEP ? cfg->uid : (uint32_t)geteuid();
    if (target != 0)
        for (int c = 0; c < ncaps; c++)
            if (cfg->keep_caps >> c & 1)
                p->ambient[p->nambient++] = c;
fail:
    cap_free(name);
    if (want)
        cap_free(want);
    if (cur)
        cap_free(cur);
    return rc;
}

int sbx_prepare(const sbx_config *cfg, sbx_prepared **out, char *err, size_t errlen)
{
    int rc;
    scmp_filter_ctx ctx = NULL;
    *out = NULL;
    seterr(err, errlen, "%s", "");
    if ((unsigned)cfg->profile > SBX_FILE) {
        seterr(err, errlen, "unknown profile %d", (int)cfg->profile);
        return -EINVAL;
    }
    if (cfg->profile == SBX_FILE &&
        (cfg->file[0] == '\0' || !memchr(cfg->file, '\0', sizeof cfg->file))) {
        seterr(err, errlen, "profile file: no path");
        return -EINVAL;
    }
    sbx_prepared *p = calloc(1, sizeof *p);
    if (!p) {
        seterr(err, errlen, "out of memory");
        return -ENOMEM;
    }
    p->cfg = *cfg;
    if (cfg->profile != SBX_FILE)
        p->cfg.file[0] = '\0';
    rc = prepare_limits(cfg, p, err, errlen);
    if (rc == 0)
        rc = prepare_ids_and_caps(cfg, p, err, errlen);
    if (rc == 0)
        rc = build_filter(cfg, &ctx, err, errlen);
    if (rc == 0 && ctx)
        rc = export_program(ctx, p, err, errlen);
    if (rc < 0)
        goto fail;
    seccomp_release(ctx);
    *out = p;
    return 0;
fail:
    if (ctx)
        seccomp_release(ctx);
    sbx_prepared_free(p);
    return rc;
}

/* Installs the filter on the calling thread, like the child's last step does. */
static long install_filter(const struct sock_fprog *prog)
{
    long rc = syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, SECCOMP_FILTER_FLAG_SPEC_ALLOW, prog);
    if (rc < 0 && (errno == EINVAL || errno == ENOSYS))
        rc = syscall(SYS_prctl, PR_SET_SECCOMP, SECCOMP_MODE_FILTER, prog, 0, 0);
    return rc;
}

int sbx_apply_in_spawner(sbx_prepared *p, char *err, size_t errlen)
{
    if (!p)
        return 0;
    for (unsigned i = 0; i < p->ncapbset_drop; i++)
        if (prctl(PR_CAPBSET_DROP, p->capbset_drop[i], 0, 0, 0) < 0) {
            int e = errno;
            seterr(err, errlen, "dropping capability %d from the bounding set: %s",
                   p->capbset_drop[i], strerror(e));
            return -e;
        }
    p->ncapbset_drop = 0;
    /* Only a filter that merely refuses what no daemon here needs may confine the spawning
     * threads themselves: the default profile's. Strict and file profiles stay per child. */
    if (p->cfg.profile != SBX_DEFAULT || !p->prog.len || p->filter_inherited)
        return 0;
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0 || install_filter(&p->prog) < 0) {
        int e = errno;
        seterr(err, errlen, "installing the default filter on the spawning thread: %s",
               strerror(e));
        return -e;
    }
    p->filter_inherited = true;
    return 0;
}

/*
 * Everything below runs in the child, possibly sharing memory with a suspended parent thread: raw
 * syscall(2) only, on data p holds, with locals on the child's stack. Not glibc's setresuid and
 * friends: with threads in the process they run glibc's all-threads setxid protocol (an internal
 * lock, writes to every thread's descriptor) in the parent's memory. errno is written by
 * syscall(2) in the shared thread-local block; it is read at once and the parent does not look at
 * its own errno across the clone.
 */
int sbx_apply_in_child(const sbx_prepared *p, sbx_stage *failed)
{
    if (!p)
        return 0;
    sbx_stage stage = SBX_STAGE_RLIMIT;
    for (unsigned i = 0; i < p->nlimits; i++)
        if (syscall(SYS_prlimit64, 0, p->limits[i].resource, &p->limits[i].lim, NULL) < 0)
            goto fail;

    /* Before the uid switch: dropping from the bounding set needs CAP_SETPCAP, which a switch
     * away from root takes away. */
    stage = SBX_STAGE_CAPBSET;
    for (unsigned i = 0; i < p->ncapbset_drop; i++)
        if (syscall(SYS_prctl, PR_CAPBSET_DROP, p->capbset_drop[i], 0, 0, 0) < 0)
            goto fail;

    if (p->switch_ids) {
        /* Leaving uid 0 clears the permitted set unless KEEPCAPS is on; execve turns it off. */
        stage = SBX_STAGE_KEEPCAPS;
        if (p->keepcaps && syscall(SYS_prctl, PR_SET_KEEPCAPS, 1, 0, 0, 0) < 0)
            goto fail;
        /* Groups and gid first: after setresuid the right to change them is gone. */
        stage = SBX_STAGE_SETGROUPS;
        if (syscall(SBX_SYS_SETGROUPS, 0, NULL) < 0)
            goto fail;
        stage = SBX_STAGE_SETGID;
        if (syscall(SBX_SYS_SETRESGID, p->cfg.gid, p->cfg.gid, p->cfg.gid) < 0)
            goto fail;
        stage = SBX_STAGE_SETUID;
        if (syscall(SBX_SYS_SETRESUID, p->cfg.uid, p->cfg.uid, p->cfg.uid) < 0)
            goto fail;
    }

    /* Kernels before 4.3 have no ambient set (EINVAL); with nothing to raise that is fine. */
    stage = SBX_STAGE_AMBIENT;
    if (syscall(SYS_prctl, PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) < 0 &&
        (errno != EINVAL || p->nambient))
        goto fail;

    stage = SBX_STAGE_CAPSET;
    struct __user_cap_header_struct hdr = {.version = _LINUX_CAPABILITY_VERSION_3, .pid = 0};
    struct __user_cap_data_struct data[_LINUX_CAPABILITY_U32S_3];
    for (int i = 0; i < _LINUX_CAPABILITY_U32S_3; i++)
        data[i] = p->caps[i];
    if (syscall(SYS_capset, &hdr, data) < 0)
        goto fail;

    stage = SBX_STAGE_AMBIENT;
    for (unsigned i = 0; i < p->nambient; i++)
        if (syscall(SYS_prctl, PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, p->ambient[i], 0, 0) < 0)
            goto fail;

    stage = SBX_STAGE_NO_NEW_PRIVS;
    if (syscall(SYS_prctl, PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
        goto fail;

    /*
     * Last, so that the filter never has to allow the setup calls above. SPEC_ALLOW: kernels
     * before 5.16 otherwise force the speculative-store-bypass mitigation (and on some, STIBP) on
     * every seccomp'd task, slowing the whole command to protect it from code in its own address
     * space, which is not this sandbox's threat; upstream made the same call for its default.
     * Kernels before 4.17 lack the flag (EINVAL), before 3.17 the call (ENOSYS): use prctl.
     */
    stage = SBX_STAGE_SECCOMP;
    if (p->prog.len && !p->filter_inherited && install_filter(&p->prog) < 0)
        goto fail;
    return 0;
fail:;
    int e = errno;
    if (failed)
        *failed = stage;
    return -(e ? e : EINVAL);
}

void sbx_prepared_free(sbx_prepared *p)
{
    if (!p)
        return;
    free(p->filter);
    free(p);
}

const sbx_config *sbx_prepared_config(const sbx_prepared *p)
{
    return &p->cfg;
}

const char *sbx_stage_name(sbx_stage stage)
{
    switch (stage) {
    case SBX_STAGE_NONE:
        return "none";
    case SBX_STAGE_RLIMIT:
        return "rlimit";
    case SBX_STAGE_CAPBSET:
        return "capbset";
    case SBX_STAGE_KEEPCAPS:
        return "keepcaps";
    case SBX_STAGE_SETGROUPS:
        return "setgroups";
    case SBX_STAGE_SETGID:
        return "setgid";
    case SBX_STAGE_SETUID:
        return "setuid";
    case SBX_STAGE_AMBIENT:
        return "ambient";
    case SBX_STAGE_CAPSET:
        return "capset";
    case SBX_STAGE_NO_NEW_PRIVS:
        return "no_new_privs";
    case SBX_STAGE_SECCOMP:
        return "seccomp";
    }
    return "?";
}

/* Appends to buf at *off like snprintf; remembers overflow in *full. */
__attribute__((format(printf, 5, 6))) static void append(char *buf, size_t len, size_t *off,
                                                         bool *full, const char *fmt, ...)
{
    if (*off >= len) {
        *full = true;
        return;
    }
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf + *off, len - *off, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= len - *off) {
        *full = true;
        *off = len;
    } else {
        *off += (size_t)n;
    }
}

int sbx_describe(const sbx_prepared *p, char *buf, size_t len)
{
    if (!len)
        return -ENOSPC;
    size_t off = 0;
    bool full = false;
    const sbx_config *c = &p->cfg;
    buf[0] = '\0';
    append(buf, len, &off, &full, "profile=%s%s%s filter=%u", sbx_profile_name(c->profile),
           c->profile == SBX_FILE ? ":" : "", c->file, p->prog.len);
    append(buf, len, &off, &full, " rlimits=");
    for (unsigned i = 0; i < p->nlimits; i++) {
        const char *name = "?";
        for (int j = 0; j < SBX_RLIMIT_COUNT; j++)
            if (rlimit_info[j].resource == p->limits[i].resource)
                name = rlimit_info[j].name;
        if (p->limits[i].lim.max == RLIM64_INFINITY)
            append(buf, len, &off, &full, "%s%s:unlimited", i ? "," : "", name);
        else
            append(buf, len, &off, &full, "%s%s:%" PRIu64, i ? "," : "", name,
                   p->limits[i].lim.max);
    }
    if (!p->nlimits)
        append(buf, len, &off, &full, "inherited");
    append(buf, len, &off, &full, " caps=");
    if (!c->keep_caps)
        append(buf, len, &off, &full, "none");
    for (int cap = 0, first = 1; cap < MAX_CAPS; cap++) {
        if (!(c->keep_caps >> cap & 1))
            continue;
        char *name = cap_to_name(cap);
        append(buf, len, &off, &full, "%s%s", first ? "" : ",", name ? name : "?");
        cap_free(name);
        first = 0;
    }
    if (c->uid == SBX_ID_KEEP)
        append(buf, len, &off, &full, " ids=keep");
    else
        append(buf, len, &off, &full, " ids=%" PRIu32 ":%" PRIu32, c->uid, c->gid);
    append(buf, len, &off, &full, " no_new_privs=1");
    return full ? -ENOSPC : 0;
}

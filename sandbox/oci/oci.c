/*
 * The OCI / Docker seccomp profile loader behind sbx_oci_load (see oci.h for the contract and
 * docs/sandbox-profiles.md for the format). It parses the file with the strict JSON parser, then
 * walks the tree once: every field of every syscall entry is checked (names resolved, actions,
 * operators, capability and architecture names) before the entry's includes/excludes decide
 * whether it applies, so a typo in an entry gated on a capability is found on the first load, not
 * the day somebody keeps that capability. Applicable entries become libseccomp rules. A small
 * table of the rules added so far catches two rules that give one syscall different actions
 * where one has no conditions: libseccomp resolves that case silently (the unconditional rule
 * wins, whichever came first), so the profile would not mean what it says.
 */
#include "sandbox/oci/oci.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <linux/filter.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <unistd.h>

#include "sandbox/oci/json.h"

/* The largest errno the kernel passes back from a filter (include/linux/err.h MAX_ERRNO). */
#define MAX_ERRNO_RET 4095
/* SCMP_ACT_TRACE carries 16 bits of data for the tracer. */
#define MAX_TRACE_RET 0xFFFF
/* Conditions per entry; real profiles use one or two, and each one can become a rule. */
#define MAX_CONDS 32
#define PATH_LEN 96

/* Capability names by number (include/uapi/linux/capability.h), without the CAP_ prefix. */
static const char *const cap_names[] = {
    "CHOWN",
    "DAC_OVERRIDE",
    "DAC_READ_SEARCH",
    "FOWNER",
    "FSETID",
    "KILL",
    "SETGID",
    "SETUID",
    "SETPCAP",
    "LINUX_IMMUTABLE",
    "NET_BIND_SERVICE",
    "NET_BROADCAST",
    "NET_ADMIN",
    "NET_RAW",
    "IPC_LOCK",
    "IPC_OWNER",
    "SYS_MODULE",
    "SYS_RAWIO",
    "SYS_CHROOT",
    "SYS_PTRACE",
    "SYS_PACCT",
    "SYS_ADMIN",
    "SYS_BOOT",
    "SYS_NICE",
    "SYS_RESOURCE",
    "SYS_TIME",
    "SYS_TTY_CONFIG",
    "MKNOD",
    "LEASE",
    "AUDIT_WRITE",
    "AUDIT_CONTROL",
    "SETFCAP",
    "MAC_OVERRIDE",
    "MAC_ADMIN",
    "SYSLOG",
    "WAKE_ALARM",
    "BLOCK_SUSPEND",
    "AUDIT_READ",
    "PERFMON",
    "BPF",
    "CHECKPOINT_RESTORE",
};
#define NCAPS (sizeof cap_names / sizeof cap_names[0])

/*
 * Architecture names. The SCMP_ARCH_* spellings are the OCI ones (architectures, archMap); the
 * others are the Go and kernel spellings that Docker's includes/excludes "arches" use ("amd64",
 * "arm64"), accepted there only.
 */
static const struct {
    const char *name;
    uint32_t token;
    bool oci;
} arch_names[] = {
    {"SCMP_ARCH_X86", SCMP_ARCH_X86, true},
    {"SCMP_ARCH_X86_64", SCMP_ARCH_X86_64, true},
    {"SCMP_ARCH_X32", SCMP_ARCH_X32, true},
    {"SCMP_ARCH_ARM", SCMP_ARCH_ARM, true},
    {"SCMP_ARCH_AARCH64", SCMP_ARCH_AARCH64, true},
    {"SCMP_ARCH_MIPS", SCMP_ARCH_MIPS, true},
    {"SCMP_ARCH_MIPS64", SCMP_ARCH_MIPS64, true},
    {"SCMP_ARCH_MIPS64N32", SCMP_ARCH_MIPS64N32, true},
    {"SCMP_ARCH_MIPSEL", SCMP_ARCH_MIPSEL, true},
    {"SCMP_ARCH_MIPSEL64", SCMP_ARCH_MIPSEL64, true},
    {"SCMP_ARCH_MIPSEL64N32", SCMP_ARCH_MIPSEL64N32, true},
    {"SCMP_ARCH_PPC", SCMP_ARCH_PPC, true},
    {"SCMP_ARCH_PPC64", SCMP_ARCH_PPC64, true},
    {"SCMP_ARCH_PPC64LE", SCMP_ARCH_PPC64LE, true},
    {"SCMP_ARCH_S390", SCMP_ARCH_S390, true},
    {"SCMP_ARCH_S390X", SCMP_ARCH_S390X, true},
    {"SCMP_ARCH_PARISC", SCMP_ARCH_PARISC, true},
    {"SCMP_ARCH_PARISC64", SCMP_ARCH_PARISC64, true},
    {"SCMP_ARCH_RISCV64", SCMP_ARCH_RISCV64, true},
#ifdef SCMP_ARCH_LOONGARCH64
    {"SCMP_ARCH_LOONGARCH64", SCMP_ARCH_LOONGARCH64, true},
#endif
#ifdef SCMP_ARCH_M68K
    {"SCMP_ARCH_M68K", SCMP_ARCH_M68K, true},
#endif
#ifdef SCMP_ARCH_SH
    {"SCMP_ARCH_SH", SCMP_ARCH_SH, true},
    {"SCMP_ARCH_SHEB", SCMP_ARCH_SHEB, true},
#endif
    {"386", SCMP_ARCH_X86, false},
    {"x86", SCMP_ARCH_X86, false},
    {"amd64", SCMP_ARCH_X86_64, false},
    {"x86_64", SCMP_ARCH_X86_64, false},
    {"x32", SCMP_ARCH_X32, false},
    {"arm", SCMP_ARCH_ARM, false},
    {"arm64", SCMP_ARCH_AARCH64, false},
    {"aarch64", SCMP_ARCH_AARCH64, false},
    {"mips", SCMP_ARCH_MIPS, false},
    {"mipsle", SCMP_ARCH_MIPSEL, false},
    {"mips64", SCMP_ARCH_MIPS64, false},
    {"mips64le", SCMP_ARCH_MIPSEL64, false},
    {"ppc", SCMP_ARCH_PPC, false},
    {"ppc64", SCMP_ARCH_PPC64, false},
    {"ppc64le", SCMP_ARCH_PPC64LE, false},
    {"s390", SCMP_ARCH_S390, false},
    {"s390x", SCMP_ARCH_S390X, false},
    {"riscv64", SCMP_ARCH_RISCV64, false},
};

static const struct {
    const char *name;
    enum scmp_compare op;
} op_names[] = {
    {"SCMP_CMP_NE", SCMP_CMP_NE},
    {"SCMP_CMP_LT", SCMP_CMP_LT},
    {"SCMP_CMP_LE", SCMP_CMP_LE},
    {"SCMP_CMP_EQ", SCMP_CMP_EQ},
    {"SCMP_CMP_GE", SCMP_CMP_GE},
    {"SCMP_CMP_GT", SCMP_CMP_GT},
    {"SCMP_CMP_MASKED_EQ", SCMP_CMP_MASKED_EQ},
};

typedef enum {
    ACT_KILL_THREAD,
    ACT_KILL_PROCESS,
    ACT_TRAP,
    ACT_ERRNO,
    ACT_TRACE,
    ACT_LOG,
    ACT_ALLOW,
    ACT_NOTIFY,
} act_kind;

static const struct {
    const char *name;
    act_kind kind;
} action_names[] = {
    {"SCMP_ACT_KILL", ACT_KILL_THREAD}, /* libseccomp's KILL is KILL_THREAD */
    {"SCMP_ACT_KILL_THREAD", ACT_KILL_THREAD},
    {"SCMP_ACT_KILL_PROCESS", ACT_KILL_PROCESS},
    {"SCMP_ACT_TRAP", ACT_TRAP},
    {"SCMP_ACT_ERRNO", ACT_ERRNO},
    {"SCMP_ACT_TRACE", ACT_TRACE},
    {"SCMP_ACT_LOG", ACT_LOG},
    {"SCMP_ACT_ALLOW", ACT_ALLOW},
    {"SCMP_ACT_NOTIFY", ACT_NOTIFY},
};

/* What is known about the rules for one syscall, to find conflicting ones. */
typedef struct {
    int nr;
    bool used, has_uncond, has_cond, cond_mixed;
    uint32_t uncond_act, cond_act;
    size_t uncond_entry, cond_entry;
} rule_rec;

typedef struct {
    const char *src;
    char *err;
    size_t errlen;
    const sbx_oci_options *opt;
    uint64_t kept; /* bit n: capability n is kept */
    uint32_t native;
    unsigned kver[3]; /* running kernel: major, minor, patch */
    scmp_filter_ctx ctx;
    uint32_t def_action;
    rule_rec *rules; /* open addressing on nr */
    size_t rules_cap, rules_n;
} builder;

static int fail_at(builder *b, int rc, const sbx_json *at, const char *path, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

/* Formats "src:line:col: path: message" into the caller's buffer and returns rc. */
static int fail_at(builder *b, int rc, const sbx_json *at, const char *path, const char *fmt, ...)
{
    if (!b->errlen)
        return rc;
    int n;
    if (at)
        n = snprintf(b->err, b->errlen, "%s:%u:%u: %s%s", b->src, at->line, at->col,
                     path ? path : "", path && *path ? ": " : "");
    else
        n = snprintf(b->err, b->errlen, "%s: %s%s", b->src, path ? path : "",
                     path && *path ? ": " : "");
    if (n >= 0 && (size_t)n < b->errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(b->err + n, b->errlen - (size_t)n, fmt, ap);
        va_end(ap);
    }
    return rc;
}

static void warn_at(builder *b, const sbx_json *at, const char *path, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static void warn_at(builder *b, const sbx_json *at, const char *path, const char *fmt, ...)
{
    if (!b->opt || !b->opt->warn)
        return;
    char msg[512];
    int n = snprintf(msg, sizeof msg, "%s:%u:%u: %s: ", b->src, at->line, at->col, path);
    if (n >= 0 && (size_t)n < sizeof msg) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(msg + n, sizeof msg - (size_t)n, fmt, ap);
        va_end(ap);
    }
    b->opt->warn(b->opt->warn_arg, msg);
}

static const char *kind_name(sbx_json_type t)
{
    switch (t) {
    case SBX_JSON_ARRAY:
        return "an array";
    case SBX_JSON_OBJECT:
        return "an object";
    case SBX_JSON_STRING:
        return "a string";
    case SBX_JSON_NUMBER:
        return "a number";
    default:
        return sbx_json_type_name(t);
    }
}

/*
 * A member of obj, or NULL when it is absent or null: Go's encoding/json, which Docker and
 * containerd read profiles with, treats null as absent, and generated profiles contain it.
 */
static const sbx_json *field(const sbx_json *obj, const char *key)
{
    const sbx_json *v = sbx_json_get(obj, key);
    return v && v->type != SBX_JSON_NULL ? v : NULL;
}

static int want(builder *b, const sbx_json *v, sbx_json_type t, const char *path)
{
    if (v->type == t)
        return 0;
    return fail_at(b, -EINVAL, v, path, "expected %s, found %s", kind_name(t), kind_name(v->type));
}

/* A string value usable as a C string: of type string, without NUL bytes, not empty. */
static int want_cstr(builder *b, const sbx_json *v, const char *path, const char **out)
{
    int rc = want(b, v, SBX_JSON_STRING, path);
    if (rc < 0)
        return rc;
    if (strlen(v->u.str.s) != v->u.str.len)
        return fail_at(b, -EINVAL, v, path, "contains a NUL character");
    if (!v->u.str.len)
        return fail_at(b, -EINVAL, v, path, "empty string");
    *out = v->u.str.s;
    return 0;
}

static int want_uint(builder *b, const sbx_json *v, const char *path, uint64_t max, uint64_t *out)
{
    int rc = want(b, v, SBX_JSON_NUMBER, path);
    if (rc < 0)
        return rc;
    rc = sbx_json_get_u64(v, out);
    if (rc == -ERANGE || (rc == 0 && *out > max))
        return fail_at(b, -EINVAL, v, path, "%.40s%s is out of range (0 to %llu)", v->u.num.text,
                       v->u.num.len > 40 ? "..." : "", (unsigned long long)max);
    if (rc < 0)
        return fail_at(b, -EINVAL, v, path, "expected a non-negative integer, found %.40s%s",
                       v->u.num.text, v->u.num.len > 40 ? "..." : "");
    return 0;
}

static void path_fmt(char *out, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void path_fmt(char *out, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(out, PATH_LEN, fmt, ap);
    va_end(ap);
}

/* The capability number of name ("CAP_SYS_ADMIN", "sys_admin"), or -1. */
static int cap_number(const char *name)
{
    if (!strncasecmp(name, "CAP_", 4))
        name += 4;
    for (size_t i = 0; i < NCAPS; i++)
        if (!strcasecmp(name, cap_names[i]))
            return (int)i;
    return -1;
}

static bool arch_token(const char *name, bool oci_only, uint32_t *token)
{
    for (size_t i = 0; i < sizeof arch_names / sizeof arch_names[0]; i++)
        if ((arch_names[i].oci || !oci_only) && !strcmp(name, arch_names[i].name)) {
            *token = arch_names[i].token;
            return true;
        }
    return false;
}

static const char *arch_name(uint32_t token)
{
    for (size_t i = 0; i < sizeof arch_names / sizeof arch_names[0]; i++)
        if (arch_names[i].token == token)
            return arch_names[i].name;
    return "an unknown architecture";
}

/* Parses "major.minor" or "major.minor.patch" at the start of s; the rest may be anything. */
static bool parse_version(const char *s, bool whole, unsigned v[3])
{
    v[0] = v[1] = v[2] = 0;
    for (int i = 0; i < 3; i++) {
        if (!isdigit((unsigned char)*s))
            return false;
        unsigned long n = 0;
        while (isdigit((unsigned char)*s)) {
            n = n * 10 + (unsigned long)(*s++ - '0');
            if (n > 1000000)
                return false;
        }
        v[i] = (unsigned)n;
        if (*s != '.' || i == 2)
            break;
        s++;
    }
    if (whole && *s)
        return false;
    return v[0] || v[1] || v[2];
}

static int version_cmp(const unsigned a[3], const unsigned b[3])
{
    for (int i = 0; i < 3; i++)
        if (a[i] != b[i])
            return a[i] < b[i] ? -1 : 1;
    return 0;
}

static void action_str(uint32_t act, char *buf, size_t n)
{
    if (act == SCMP_ACT_ALLOW)
        snprintf(buf, n, "SCMP_ACT_ALLOW");
    else if (act == SCMP_ACT_LOG)
        snprintf(buf, n, "SCMP_ACT_LOG");
    else if (act == SCMP_ACT_KILL_PROCESS)
        snprintf(buf, n, "SCMP_ACT_KILL_PROCESS");
    else if (act == SCMP_ACT_KILL_THREAD)
        snprintf(buf, n, "SCMP_ACT_KILL_THREAD");
    else if (act == SCMP_ACT_TRAP)
        snprintf(buf, n, "SCMP_ACT_TRAP");
    else if ((act & 0xFFFF0000u) == SCMP_ACT_ERRNO(0))
        snprintf(buf, n, "SCMP_ACT_ERRNO(%u)", act & 0xFFFFu);
    else if ((act & 0xFFFF0000u) == SCMP_ACT_TRACE(0))
        snprintf(buf, n, "SCMP_ACT_TRACE(%u)", act & 0xFFFFu);
    else
        snprintf(buf, n, "action 0x%08x", act);
}

/*
 * An action (string at v) with its optional errnoRet (ret, may be NULL). Without errnoRet, ERRNO
 * and TRACE use EPERM, as Docker and runc do.
 */
static int parse_action(builder *b, const sbx_json *v, const char *path, const sbx_json *ret,
                        const char *ret_path, uint32_t *out)
{
    const char *name;
    int rc = want_cstr(b, v, path, &name);
    if (rc < 0)
        return rc;
    act_kind kind = ACT_NOTIFY;
    bool found = false;
    for (size_t i = 0; i < sizeof action_names / sizeof action_names[0]; i++)
        if (!strcmp(name, action_names[i].name)) {
            kind = action_names[i].kind;
            found = true;
        }
    if (!found)
        return fail_at(b, -EINVAL, v, path,
                       "unknown action \"%.64s\" (expected SCMP_ACT_ALLOW, SCMP_ACT_ERRNO, "
                       "SCMP_ACT_KILL, SCMP_ACT_KILL_PROCESS, SCMP_ACT_KILL_THREAD, SCMP_ACT_TRAP, "
                       "SCMP_ACT_TRACE or SCMP_ACT_LOG)",
                       name);
    if (kind == ACT_NOTIFY)
        return fail_at(b, -EINVAL, v, path,
                       "SCMP_ACT_NOTIFY is not supported (it needs a seccomp agent listening on "
                       "listenerPath, which the sandbox does not run)");
    uint64_t r = 1; /* EPERM */
    if (ret) {
        if (kind != ACT_ERRNO && kind != ACT_TRACE)
            return fail_at(b, -EINVAL, ret, ret_path,
                           "only meaningful with SCMP_ACT_ERRNO or SCMP_ACT_TRACE, not %s", name);
        rc = want_uint(b, ret, ret_path, kind == ACT_ERRNO ? MAX_ERRNO_RET : MAX_TRACE_RET, &r);
        if (rc < 0)
            return rc;
    }
    switch (kind) {
    case ACT_KILL_THREAD:
        *out = SCMP_ACT_KILL_THREAD;
        break;
    case ACT_KILL_PROCESS:
        *out = SCMP_ACT_KILL_PROCESS;
        break;
    case ACT_TRAP:
        *out = SCMP_ACT_TRAP;
        break;
    case ACT_ERRNO:
        *out = SCMP_ACT_ERRNO((uint32_t)r);
        break;
    case ACT_TRACE:
        *out = SCMP_ACT_TRACE((uint32_t)r);
        break;
    case ACT_LOG:
        *out = SCMP_ACT_LOG;
        break;
    case ACT_ALLOW:
    case ACT_NOTIFY:
        *out = SCMP_ACT_ALLOW;
        break;
    }
    return 0;
}

static int add_arch(builder *b, uint32_t token, const sbx_json *at, const char *path)
{
    int rc = seccomp_arch_add(b->ctx, token);
    if (rc == -EEXIST)
        return 0;
    if (rc < 0)
        return fail_at(b, rc == -ENOMEM ? -ENOMEM : -EINVAL, at, path,
                       "libseccomp cannot add %s: %s", arch_name(token), strerror(-rc));
    return 0;
}

/*
 * "architectures": the filter also handles system calls made with these ABIs (a 32-bit binary on
 * a 64-bit kernel); calls from any other ABI meet the filter's bad-architecture action (kill).
 * The native architecture is always included, as runc does, so a profile cannot leave it out.
 */
static int parse_architectures(builder *b, const sbx_json *v)
{
    int rc = want(b, v, SBX_JSON_ARRAY, "architectures");
    if (rc < 0)
        return rc;
    size_t i = 0;
    for (const sbx_json *a = v->u.kids.first; a; a = a->next, i++) {
        char path[PATH_LEN];
        const char *name;
        uint32_t token;
        path_fmt(path, "architectures[%zu]", i);
        if ((rc = want_cstr(b, a, path, &name)) < 0)
            return rc;
        if (!arch_token(name, true, &token))
            return fail_at(b, -EINVAL, a, path, "unknown architecture \"%.64s\"", name);
        if ((rc = add_arch(b, token, a, path)) < 0)
            return rc;
    }
    return 0;
}

/*
 * Docker's "archMap": a list of {architecture, subArchitectures}; the entry whose architecture is
 * the native one names the ABIs to add. Every entry is checked, matching or not.
 */
static int parse_arch_map(builder *b, const sbx_json *v)
{
    int rc = want(b, v, SBX_JSON_ARRAY, "archMap");
    if (rc < 0)
        return rc;
    size_t i = 0;
    for (const sbx_json *e = v->u.kids.first; e; e = e->next, i++) {
        char path[PATH_LEN];
        path_fmt(path, "archMap[%zu]", i);
        if ((rc = want(b, e, SBX_JSON_OBJECT, path)) < 0)
            return rc;
        const sbx_json *arch = field(e, "architecture"), *subs = field(e, "subArchitectures");
        if (!arch)
            return fail_at(b, -EINVAL, e, path, "missing \"architecture\"");
        const char *name;
        uint32_t token;
        path_fmt(path, "archMap[%zu].architecture", i);
        if ((rc = want_cstr(b, arch, path, &name)) < 0)
            return rc;
        if (!arch_token(name, true, &token))
            return fail_at(b, -EINVAL, arch, path, "unknown architecture \"%.64s\"", name);
        bool native = token == b->native;
        if (native && (rc = add_arch(b, token, arch, path)) < 0)
            return rc;
        if (!subs)
            continue;
        path_fmt(path, "archMap[%zu].subArchitectures", i);
        if ((rc = want(b, subs, SBX_JSON_ARRAY, path)) < 0)
            return rc;
        size_t j = 0;
        for (const sbx_json *s = subs->u.kids.first; s; s = s->next, j++) {
            path_fmt(path, "archMap[%zu].subArchitectures[%zu]", i, j);
            if ((rc = want_cstr(b, s, path, &name)) < 0)
                return rc;
            if (!arch_token(name, true, &token))
                return fail_at(b, -EINVAL, s, path, "unknown architecture \"%.64s\"", name);
            if (native && (rc = add_arch(b, token, s, path)) < 0)
                return rc;
        }
    }
    return 0;
}

/*
 * The OCI "flags". They become filter attributes, which seccomp_load honours; a caller that
 * exports the BPF and installs it itself reads them back with seccomp_attr_get.
 */
static int parse_flags(builder *b, const sbx_json *v)
{
    static const struct {
        const char *name;
        int attr; /* enum scmp_filter_attr, or -1 for none */
    } flags[] = {
        {"SECCOMP_FILTER_FLAG_TSYNC", SCMP_FLTATR_CTL_TSYNC},
        {"SECCOMP_FILTER_FLAG_LOG", SCMP_FLTATR_CTL_LOG},
        {"SECCOMP_FILTER_FLAG_SPEC_ALLOW", SCMP_FLTATR_CTL_SSB},
        /* Only changes how a notifying filter waits; SCMP_ACT_NOTIFY is refused anyway. */
        {"SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV", -1},
    };
    int rc = want(b, v, SBX_JSON_ARRAY, "flags");
    if (rc < 0)
        return rc;
    size_t i = 0;
    for (const sbx_json *f = v->u.kids.first; f; f = f->next, i++) {
        char path[PATH_LEN];
        const char *name;
        path_fmt(path, "flags[%zu]", i);
        if ((rc = want_cstr(b, f, path, &name)) < 0)
            return rc;
        size_t k = 0;
        while (k < sizeof flags / sizeof flags[0] && strcmp(flags[k].name, name))
            k++;
        if (k == sizeof flags / sizeof flags[0])
            return fail_at(b, -EINVAL, f, path, "unknown flag \"%.64s\"", name);
        if (flags[k].attr >= 0 &&
            (rc = seccomp_attr_set(b->ctx, (enum scmp_filter_attr)flags[k].attr, 1)) < 0)
            return fail_at(b, -EINVAL, f, path, "this kernel or libseccomp cannot honour %s: %s",
                           name, strerror(-rc));
    }
    return 0;
}

/* The parts of includes/excludes, checked, and whether each matches this command. */
typedef struct {
    bool has_caps, all_caps_kept, any_cap_kept;
    bool has_arches, native_listed;
    bool has_kernel, kernel_at_least;
} cond_set;

static int parse_cond_set(builder *b, const sbx_json *v, const char *base, cond_set *cs)
{
    char path[PATH_LEN];
    memset(cs, 0, sizeof *cs);
    if (!v)
        return 0;
    int rc = want(b, v, SBX_JSON_OBJECT, base);
    if (rc < 0)
        return rc;
    const sbx_json *caps = field(v, "caps"), *arches = field(v, "arches"),
                   *mink = field(v, "minKernel");
    if (caps) {
        path_fmt(path, "%s.caps", base);
        if ((rc = want(b, caps, SBX_JSON_ARRAY, path)) < 0)
            return rc;
        cs->has_caps = caps->u.kids.n > 0;
        cs->all_caps_kept = true;
        size_t i = 0;
        for (const sbx_json *c = caps->u.kids.first; c; c = c->next, i++) {
            const char *name;
            path_fmt(path, "%s.caps[%zu]", base, i);
            if ((rc = want_cstr(b, c, path, &name)) < 0)
                return rc;
            int n = cap_number(name);
            if (n < 0)
                return fail_at(b, -EINVAL, c, path, "unknown capability \"%.64s\"", name);
            if (b->kept >> n & 1)
                cs->any_cap_kept = true;
            else
                cs->all_caps_kept = false;
        }
    }
    if (arches) {
        path_fmt(path, "%s.arches", base);
        if ((rc = want(b, arches, SBX_JSON_ARRAY, path)) < 0)
            return rc;
        cs->has_arches = arches->u.kids.n > 0;
        size_t i = 0;
        for (const sbx_json *a = arches->u.kids.first; a; a = a->next, i++) {
            const char *name;
            uint32_t token;
            path_fmt(path, "%s.arches[%zu]", base, i);
            if ((rc = want_cstr(b, a, path, &name)) < 0)
                return rc;
            if (!arch_token(name, false, &token))
                return fail_at(b, -EINVAL, a, path, "unknown architecture \"%.64s\"", name);
            if (token == b->native)
                cs->native_listed = true;
        }
    }
    if (mink) {
        const char *s;
        unsigned want_v[3];
        path_fmt(path, "%s.minKernel", base);
        if ((rc = want_cstr(b, mink, path, &s)) < 0)
            return rc;
        if (!parse_version(s, true, want_v))
            return fail_at(b, -EINVAL, mink, path,
                           "expected a kernel version such as \"4.8\", found \"%.40s\"", s);
        cs->has_kernel = true;
        cs->kernel_at_least = version_cmp(b->kver, want_v) >= 0;
    }
    return 0;
}

/*
 * Docker's rule: an entry applies when every part of "includes" matches (all its caps are kept,
 * the native architecture is listed, the kernel is at least minKernel) and no part of "excludes"
 * matches (none of its caps is kept, the native architecture is not listed, the kernel is older
 * than minKernel). Empty lists and absent parts do not constrain.
 */
static bool entry_applies(const cond_set *inc, const cond_set *exc)
{
    if (inc->has_caps && !inc->all_caps_kept)
        return false;
    if (inc->has_arches && !inc->native_listed)
        return false;
    if (inc->has_kernel && !inc->kernel_at_least)
        return false;
    if (exc->has_caps && exc->any_cap_kept)
        return false;
    if (exc->has_arches && exc->native_listed)
        return false;
    if (exc->has_kernel && exc->kernel_at_least)
        return false;
    return true;
}

static int parse_args(builder *b, const sbx_json *v, size_t entry, struct scmp_arg_cmp *conds,
                      size_t *ncond, bool *same_index)
{
    char path[PATH_LEN];
    path_fmt(path, "syscalls[%zu].args", entry);
    int rc = want(b, v, SBX_JSON_ARRAY, path);
    if (rc < 0)
        return rc;
    if (v->u.kids.n > MAX_CONDS)
        return fail_at(b, -EINVAL, v, path, "more than %d conditions", MAX_CONDS);
    unsigned seen = 0;
    size_t i = 0;
    *same_index = false;
    for (const sbx_json *a = v->u.kids.first; a; a = a->next, i++) {
        path_fmt(path, "syscalls[%zu].args[%zu]", entry, i);
        if ((rc = want(b, a, SBX_JSON_OBJECT, path)) < 0)
            return rc;
        const sbx_json *index = field(a, "index"), *value = field(a, "value"),
                       *value2 = field(a, "valueTwo"), *op = field(a, "op");
        if (!index)
            return fail_at(b, -EINVAL, a, path, "missing \"index\"");
        if (!op)
            return fail_at(b, -EINVAL, a, path, "missing \"op\"");
        uint64_t idx, val = 0, val2 = 0;
        path_fmt(path, "syscalls[%zu].args[%zu].index", entry, i);
        if ((rc = want_uint(b, index, path, 5, &idx)) < 0)
            return rc;
        path_fmt(path, "syscalls[%zu].args[%zu].value", entry, i);
        if (value && (rc = want_uint(b, value, path, UINT64_MAX, &val)) < 0)
            return rc;
        path_fmt(path, "syscalls[%zu].args[%zu].valueTwo", entry, i);
        if (value2 && (rc = want_uint(b, value2, path, UINT64_MAX, &val2)) < 0)
            return rc;
        const char *opname;
        path_fmt(path, "syscalls[%zu].args[%zu].op", entry, i);
        if ((rc = want_cstr(b, op, path, &opname)) < 0)
            return rc;
        size_t k = 0;
        while (k < sizeof op_names / sizeof op_names[0] && strcmp(op_names[k].name, opname))
            k++;
        if (k == sizeof op_names / sizeof op_names[0])
            return fail_at(b, -EINVAL, op, path,
                           "unknown operator \"%.64s\" (expected SCMP_CMP_NE, SCMP_CMP_LT, "
                           "SCMP_CMP_LE, SCMP_CMP_EQ, SCMP_CMP_GE, SCMP_CMP_GT or "
                           "SCMP_CMP_MASKED_EQ)",
                           opname);
        if (seen >> idx & 1)
            *same_index = true;
        seen |= 1u << idx;
        /* For MASKED_EQ "value" is the mask and "valueTwo" the datum, as libseccomp orders them. */
        conds[i] = (struct scmp_arg_cmp){
            .arg = (unsigned)idx, .op = op_names[k].op, .datum_a = val, .datum_b = val2};
        if (op_names[k].op != SCMP_CMP_MASKED_EQ)
            conds[i].datum_b = 0;
    }
    *ncond = i;
    return 0;
}

/* The conflict table's slot for nr, growing the table as needed; NULL when out of memory. */
static rule_rec *rule_slot(builder *b, int nr)
{
    if ((b->rules_n + 1) * 2 > b->rules_cap) {
        size_t cap = b->rules_cap ? b->rules_cap * 2 : 256;
        rule_rec *nt = calloc(cap, sizeof *nt);
        if (!nt)
            return NULL;
        for (size_t i = 0; i < b->rules_cap; i++) {
            if (!b->rules[i].used)
                continue;
            size_t j = (size_t)(uint32_t)b->rules[i].nr * 0x9E3779B1u & (cap - 1);
            while (nt[j].used)
                j = (j + 1) & (cap - 1);
            nt[j] = b->rules[i];
        }
        free(b->rules);
        b->rules = nt;
        b->rules_cap = cap;
    }
    size_t j = (size_t)(uint32_t)nr * 0x9E3779B1u & (b->rules_cap - 1);
    while (b->rules[j].used && b->rules[j].nr != nr)
        j = (j + 1) & (b->rules_cap - 1);
    if (!b->rules[j].used) {
        b->rules[j].used = true;
        b->rules[j].nr = nr;
        b->rules_n++;
    }
    return &b->rules[j];
}

/*
 * Records a rule for nr and refuses it when it conflicts with an earlier one: different actions
 * where either rule has no conditions. Rules whose conditions differ may have different actions
 * (that is how "clone without namespace flags" is written).
 */
static int check_conflict(builder *b, int nr, uint32_t act, bool cond, size_t entry,
                          const sbx_json *at, const char *path, const char *name)
{
    rule_rec *r = rule_slot(b, nr);
    if (!r)
        return fail_at(b, -ENOMEM, at, path, "out of memory");
    size_t other = 0;
    uint32_t other_act = 0;
    bool clash = false, other_cond = false;
    if (r->has_uncond && r->uncond_act != act) {
        clash = true;
        other = r->uncond_entry;
        other_act = r->uncond_act;
    } else if (!cond && r->has_cond && (r->cond_mixed || r->cond_act != act)) {
        clash = true;
        other_cond = true;
        other = r->cond_entry;
        other_act = r->cond_act;
    }
    if (clash) {
        char a1[40], a2[40];
        action_str(act, a1, sizeof a1);
        action_str(other_act, a2, sizeof a2);
        return fail_at(b, -EINVAL, at, path,
                       "\"%s\" gets %s%s here but %s%s in syscalls[%zu]; libseccomp would "
                       "silently keep only the rule without conditions",
                       name, a1, cond ? " (with conditions)" : "", a2,
                       other_cond ? " (with conditions)" : "", other);
    }
    if (cond) {
        if (r->has_cond && r->cond_act != act)
            r->cond_mixed = true;
        if (!r->has_cond) {
            r->has_cond = true;
            r->cond_act = act;
            r->cond_entry = entry;
        }
    } else if (!r->has_uncond) {
        r->has_uncond = true;
        r->uncond_act = act;
        r->uncond_entry = entry;
    }
    return 0;
}

static int add_rule(builder *b, int nr, uint32_t act, const struct scmp_arg_cmp *conds,
                    size_t ncond, bool split, const sbx_json *at, const char *path,
                    const char *name)
{
    /* libseccomp refuses a rule that repeats the default action; it would change nothing. */
    if (act == b->def_action)
        return 0;
    int rc = 0;
    if (split) {
        /*
         * Two conditions on the same argument: libseccomp cannot AND them in one rule, and
         * runc, whose reading of such profiles users expect, adds one rule per condition, so
         * the conditions are ORed. Documented in docs/sandbox-profiles.md.
         */
        for (size_t i = 0; i < ncond && rc == 0; i++)
            rc = seccomp_rule_add_array(b->ctx, act, nr, 1, &conds[i]);
    } else {
        rc = seccomp_rule_add_array(b->ctx, act, nr, (unsigned)ncond, ncond ? conds : NULL);
    }
    if (rc < 0)
        return fail_at(b, rc == -ENOMEM ? -ENOMEM : -EINVAL, at, path,
                       "libseccomp refused the rule for \"%s\": %s", name, strerror(-rc));
    return 0;
}

static bool lenient_action(uint32_t act)
{
    return act == SCMP_ACT_ALLOW || act == SCMP_ACT_LOG;
}

static int parse_entry(builder *b, const sbx_json *e, size_t idx)
{
    char path[PATH_LEN];
    path_fmt(path, "syscalls[%zu]", idx);
    int rc = want(b, e, SBX_JSON_OBJECT, path);
    if (rc < 0)
        return rc;
    const sbx_json *names = field(e, "names"), *name = field(e, "name"),
                   *action = field(e, "action"), *ret = field(e, "errnoRet"),
                   *args = field(e, "args");
    if (names && name)
        return fail_at(b, -EINVAL, name, path, "has both \"names\" and \"name\"; use \"names\"");
    if (!names && !name)
        return fail_at(b, -EINVAL, e, path, "missing \"names\"");
    if (!action)
        return fail_at(b, -EINVAL, e, path, "missing \"action\"");
    if (names) {
        path_fmt(path, "syscalls[%zu].names", idx);
        if ((rc = want(b, names, SBX_JSON_ARRAY, path)) < 0)
            return rc;
        if (!names->u.kids.n)
            return fail_at(b, -EINVAL, names, path, "empty; the entry would do nothing");
    }

    uint32_t act;
    char ret_path[PATH_LEN];
    path_fmt(path, "syscalls[%zu].action", idx);
    path_fmt(ret_path, "syscalls[%zu].errnoRet", idx);
    if ((rc = parse_action(b, action, path, ret, ret_path, &act)) < 0)
        return rc;

    struct scmp_arg_cmp conds[MAX_CONDS];
    size_t ncond = 0;
    bool split = false;
    if (args && (rc = parse_args(b, args, idx, conds, &ncond, &split)) < 0)
        return rc;

    cond_set inc, exc;
    path_fmt(path, "syscalls[%zu].includes", idx);
    if ((rc = parse_cond_set(b, field(e, "includes"), path, &inc)) < 0)
        return rc;
    path_fmt(path, "syscalls[%zu].excludes", idx);
    if ((rc = parse_cond_set(b, field(e, "excludes"), path, &exc)) < 0)
        return rc;
    bool applies = entry_applies(&inc, &exc);

    /* Names last, so that the rule for each one is added as it is checked. */
    const sbx_json *n = names ? names->u.kids.first : name;
    for (size_t i = 0; n; n = names ? n->next : NULL, i++) {
        const char *s;
        if (names)
            path_fmt(path, "syscalls[%zu].names[%zu]", idx, i);
        else
            path_fmt(path, "syscalls[%zu].name", idx);
        if ((rc = want_cstr(b, n, path, &s)) < 0)
            return rc;
        int nr = seccomp_syscall_resolve_name(s);
        if (nr == __NR_SCMP_ERROR) {
            const struct scmp_version *v = seccomp_version();
            if (b->opt && (b->opt->flags & SBX_OCI_SKIP_UNKNOWN_ALLOWED) && lenient_action(act)) {
                warn_at(b, n, path,
                        "unknown syscall \"%.64s\" skipped (libseccomp %u.%u.%u does not know "
                        "it; the call gets the default action)",
                        s, v->major, v->minor, v->micro);
                continue;
            }
            return fail_at(b, -EINVAL, n, path,
                           "unknown syscall \"%.64s\" (libseccomp %u.%u.%u does not know it)", s,
                           v->major, v->minor, v->micro);
        }
        if (!applies)
            continue;
        if ((rc = check_conflict(b, nr, act, ncond > 0, idx, n, path, s)) < 0)
            return rc;
        if ((rc = add_rule(b, nr, act, conds, ncond, split, n, path, s)) < 0)
            return rc;
    }
    return 0;
}

static int set_kept_caps(builder *b, const sbx_oci_options *opt)
{
    if (!opt)
        return 0;
    for (size_t i = 0; i < opt->nkept; i++) {
        const char *name = opt->kept_caps ? opt->kept_caps[i] : NULL;
        int n = name ? cap_number(name) : -1;
        if (n < 0)
            return fail_at(b, -EINVAL, NULL, "kept capabilities", "unknown capability \"%.64s\"",
                           name ? name : "(null)");
        b->kept |= 1ull << n;
    }
    return 0;
}

static int build(builder *b, const sbx_json *root)
{
    int rc = want(b, root, SBX_JSON_OBJECT, "top level");
    if (rc < 0)
        return rc;
    const sbx_json *def = field(root, "defaultAction"), *def_ret = field(root, "defaultErrnoRet");
    if (!def)
        return fail_at(b, -EINVAL, root, "top level", "missing \"defaultAction\"");
    if ((rc = parse_action(b, def, "defaultAction", def_ret, "defaultErrnoRet", &b->def_action)) <
        0)
        return rc;
    b->ctx = seccomp_init(b->def_action);
    if (!b->ctx)
        return fail_at(b, -EINVAL, def, "defaultAction",
                       "libseccomp refused %s (not supported by this kernel?)", def->u.str.s);
    /*
     * An allow-list profile has hundreds of rules, and the kernel runs the filter on every system
     * call; a binary tree makes that a few comparisons instead of a linear scan. Older libseccomp
     * versions lack the attribute, which only costs speed.
     */
    (void)seccomp_attr_set(b->ctx, SCMP_FLTATR_CTL_OPTIMIZE, 2);

    const sbx_json *arches = field(root, "architectures"), *amap = field(root, "archMap");
    if (arches && amap && arches->type == SBX_JSON_ARRAY && arches->u.kids.n &&
        amap->type == SBX_JSON_ARRAY && amap->u.kids.n)
        return fail_at(b, -EINVAL, amap, "archMap",
                       "give either \"architectures\" or \"archMap\", not both");
    if (arches && (rc = parse_architectures(b, arches)) < 0)
        return rc;
    if (amap && (rc = parse_arch_map(b, amap)) < 0)
        return rc;
    const sbx_json *flags = field(root, "flags");
    if (flags && (rc = parse_flags(b, flags)) < 0)
        return rc;

    const sbx_json *calls = field(root, "syscalls");
    if (!calls)
        return 0;
    if ((rc = want(b, calls, SBX_JSON_ARRAY, "syscalls")) < 0)
        return rc;
    size_t i = 0;
    for (const sbx_json *e = calls->u.kids.first; e; e = e->next, i++)
        if ((rc = parse_entry(b, e, i)) < 0)
            return rc;
    return 0;
}

/*
 * The kernel refuses a filter longer than BPF_MAXINSNS instructions, and the refusal would only
 * show in the child as EINVAL from prctl. Measuring the program here turns that into a clear
 * error at load time. libseccomp 2.5 exports only to a file descriptor, so a memfd takes it;
 * without memfd the check is skipped and the kernel remains the judge.
 */
static int check_size(builder *b)
{
    int fd = memfd_create("pm-seccomp-bpf", MFD_CLOEXEC);
    if (fd < 0)
        return 0;
    int rc = seccomp_export_bpf(b->ctx, fd);
    struct stat st;
    if (rc == 0 && fstat(fd, &st) == 0 &&
        (size_t)st.st_size / sizeof(struct sock_filter) > BPF_MAXINSNS)
        rc = fail_at(b, -EINVAL, NULL, NULL,
                     "the filter compiles to %zu BPF instructions, over the kernel's limit of %d; "
                     "use fewer rules or conditions",
                     (size_t)st.st_size / sizeof(struct sock_filter), BPF_MAXINSNS);
    else if (rc < 0)
        rc = fail_at(b, rc == -ENOMEM ? -ENOMEM : -EINVAL, NULL, NULL,
                     "libseccomp cannot compile the filter: %s", strerror(-rc));
    close(fd);
    return rc;
}

int sbx_oci_load_buffer_ex(const char *json, size_t len, const char *source_name,
                           const sbx_oci_options *opt, scmp_filter_ctx *out, char *err,
                           size_t errlen)
{
    builder b = {0};
    b.src = source_name ? source_name : "<profile>";
    b.err = err;
    b.errlen = errlen;
    b.opt = opt;
    b.native = seccomp_arch_native();
    *out = NULL;
    if (errlen)
        err[0] = '\0';

    int rc = set_kept_caps(&b, opt);
    if (rc < 0)
        return rc;
    struct utsname u;
    if (uname(&u) == 0)
        (void)parse_version(u.release, false, b.kver);

    sbx_json_doc *doc = NULL;
    sbx_json_error jerr;
    sbx_json_limits lim = {.max_bytes = SBX_OCI_MAX_BYTES};
    rc = sbx_json_parse(json, len, &lim, &doc, &jerr);
    if (rc < 0) {
        if (errlen)
            snprintf(err, errlen, "%s:%u:%u: %s", b.src, jerr.line, jerr.col, jerr.msg);
        return rc;
    }
    rc = build(&b, sbx_json_root(doc));
    if (rc == 0)
        rc = check_size(&b);
    sbx_json_free(doc);
    free(b.rules);
    if (rc < 0) {
        if (b.ctx)
            seccomp_release(b.ctx);
        return rc;
    }
    *out = b.ctx;
    return 0;
}

int sbx_oci_load_buffer(const char *json, size_t len, const char *source_name,
                        const char *const *kept_caps, size_t nkept, scmp_filter_ctx *out, char *err,
                        size_t errlen)
{
    sbx_oci_options opt = {.kept_caps = kept_caps, .nkept = nkept};
    return sbx_oci_load_buffer_ex(json, len, source_name, &opt, out, err, errlen);
}

/* Reads at most SBX_OCI_MAX_BYTES of path into a new buffer. */
static int read_file(const char *path, char **data, size_t *len, char *err, size_t errlen)
{
    *data = NULL;
    *len = 0;
    int fd;
    do
        fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
    while (fd < 0 && errno == EINTR);
    if (fd < 0) {
        int e = errno;
        if (errlen)
            snprintf(err, errlen, "%s: cannot open: %s", path, strerror(e));
        return -e;
    }
    int rc = 0;
    struct stat st;
    if (fstat(fd, &st) == 0 && S_ISDIR(st.st_mode)) {
        rc = -EISDIR;
        if (errlen)
            snprintf(err, errlen, "%s: is a directory", path);
        goto out;
    }
    /* Read one byte past the limit, to tell a file at the limit from a larger one. */
    size_t cap = 0, n = 0;
    char *buf = NULL;
    for (;;) {
        if (n == cap) {
            size_t ncap = cap ? cap * 2 : 16384;
            if (ncap > (size_t)SBX_OCI_MAX_BYTES + 1)
                ncap = (size_t)SBX_OCI_MAX_BYTES + 1;
            if (ncap == cap) {
                rc = -EFBIG;
                if (errlen)
                    snprintf(err, errlen, "%s: larger than the limit of %u bytes", path,
                             SBX_OCI_MAX_BYTES);
                break;
            }
            char *nb = realloc(buf, ncap);
            if (!nb) {
                rc = -ENOMEM;
                if (errlen)
                    snprintf(err, errlen, "%s: out of memory", path);
                break;
            }
            buf = nb;
            cap = ncap;
        }
        ssize_t r = read(fd, buf + n, cap - n);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            rc = -errno;
            if (errlen)
                snprintf(err, errlen, "%s: cannot read: %s", path, strerror(-rc));
            break;
        }
        if (r == 0)
            break;
        n += (size_t)r;
    }
    if (rc < 0) {
        free(buf);
        goto out;
    }
    *data = buf;
    *len = n;
out:
    close(fd);
    return rc;
}

int sbx_oci_load_ex(const char *path, const sbx_oci_options *opt, scmp_filter_ctx *out, char *err,
                    size_t errlen)
{
    *out = NULL;
    if (errlen)
        err[0] = '\0';
    char *data;
    size_t len;
    int rc = read_file(path, &data, &len, err, errlen);
    if (rc < 0)
        return rc;
    rc = sbx_oci_load_buffer_ex(data ? data : "", len, path, opt, out, err, errlen);
    free(data);
    return rc;
}

int sbx_oci_load(const char *path, const char *const *kept_caps, size_t nkept, scmp_filter_ctx *out,
                 char *err, size_t errlen)
{
    sbx_oci_options opt = {.kept_caps = kept_caps, .nkept = nkept};
    return sbx_oci_load_ex(path, &opt, out, err, errlen);
}

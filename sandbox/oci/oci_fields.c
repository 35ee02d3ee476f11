/*
 * The field checkers of the OCI / Docker seccomp profile loader (oci.c drives them; the contract
 * is in oci.h, the format in docs/sandbox-profiles.md). They read one part of the JSON tree each,
 * check its type and spelling, and turn it into libseccomp terms: actions with their errnoRet,
 * argument operators, architecture names (architectures, archMap), filter flags, capability names
 * and the includes/excludes that decide whether an entry applies to this command. Every failure
 * is reported through oci_fail_at with the source position and the JSON path of the bad value.
 */
#include "sandbox/oci/oci_internal.h"

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "sandbox/oci/json.h"

/* The largest errno the kernel passes back from a filter (include/linux/err.h MAX_ERRNO). */
#define MAX_ERRNO_RET 4095
/* SCMP_ACT_TRACE carries 16 bits of data for the tracer. */
#define MAX_TRACE_RET 0xFFFF

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

/* Formats "src:line:col: path: message" into the caller's buffer and returns rc. */
int oci_fail_at(builder *b, int rc, const sbx_json *at, const char *path, const char *fmt, ...)
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
const sbx_json *oci_field(const sbx_json *obj, const char *key)
{
    const sbx_json *v = sbx_json_get(obj, key);
    return v && v->type != SBX_JSON_NULL ? v : NULL;
}

int oci_want(builder *b, const sbx_json *v, sbx_json_type t, const char *path)
{
    if (v->type == t)
        return 0;
    return oci_fail_at(b, -EINVAL, v, path, "expected %s, found %s", kind_name(t),
                       kind_name(v->type));
}

/* A string value usable as a C string: of type string, without NUL bytes, not empty. */
int oci_want_cstr(builder *b, const sbx_json *v, const char *path, const char **out)
{
    int rc = oci_want(b, v, SBX_JSON_STRING, path);
    if (rc < 0)
        return rc;
    if (strlen(v->u.str.s) != v->u.str.len)
        return oci_fail_at(b, -EINVAL, v, path, "contains a NUL character");
    if (!v->u.str.len)
        return oci_fail_at(b, -EINVAL, v, path, "empty string");
    *out = v->u.str.s;
    return 0;
}

static int want_uint(builder *b, const sbx_json *v, const char *path, uint64_t max, uint64_t *out)
{
    int rc = oci_want(b, v, SBX_JSON_NUMBER, path);
    if (rc < 0)
        return rc;
    rc = sbx_json_get_u64(v, out);
    if (rc == -ERANGE || (rc == 0 && *out > max))
        return oci_fail_at(b, -EINVAL, v, path, "%.40s%s is out of range (0 to %llu)",
                           v->u.num.text, v->u.num.len > 40 ? "..." : "", (unsigned long long)max);
    if (rc < 0)
        return oci_fail_at(b, -EINVAL, v, path, "expected a non-negative integer, found %.40s%s",
                           v->u.num.text, v->u.num.len > 40 ? "..." : "");
    return 0;
}

void oci_path_fmt(char *out, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(out, PATH_LEN, fmt, ap);
    va_end(ap);
}

/* The capability number of name ("CAP_SYS_ADMIN", "sys_admin"), or -1. */
int oci_cap_number(const char *name)
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
bool oci_parse_version(const char *s, bool whole, unsigned v[3])
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

void oci_action_str(uint32_t act, char *buf, size_t n)
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
int oci_parse_action(builder *b, const sbx_json *v, const char *path, const sbx_json *ret,
                     const char *ret_path, uint32_t *out)
{
    const char *name;
    int rc = oci_want_cstr(b, v, path, &name);
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
        return oci_fail_at(
            b, -EINVAL, v, path,
            "unknown action \"%.64s\" (expected SCMP_ACT_ALLOW, SCMP_ACT_ERRNO, "
            "SCMP_ACT_KILL, SCMP_ACT_KILL_PROCESS, SCMP_ACT_KILL_THREAD, SCMP_ACT_TRAP, "
            "SCMP_ACT_TRACE or SCMP_ACT_LOG)",
            name);
    if (kind == ACT_NOTIFY)
        return oci_fail_at(
            b, -EINVAL, v, path,
            "SCMP_ACT_NOTIFY is not supported (it needs a seccomp agent listening on "
            "listenerPath, which the sandbox does not run)");
    uint64_t r = 1; /* EPERM */
    if (ret) {
        if (kind != ACT_ERRNO && kind != ACT_TRACE)
            return oci_fail_at(b, -EINVAL, ret, ret_path,
                               "only meaningful with SCMP_ACT_ERRNO or SCMP_ACT_TRACE, not %s",
                               name);
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
        return oci_fail_at(b, rc == -ENOMEM ? -ENOMEM : -EINVAL, at, path,
                           "libseccomp cannot add %s: %s", arch_name(token), strerror(-rc));
    return 0;
}

/*
 * "architectures": the filter also handles system calls made with these ABIs (a 32-bit binary on
 * a 64-bit kernel); calls from any other ABI meet the filter's bad-architecture action (kill).
 * The native architecture is always included, as runc does, so a profile cannot leave it out.
 */
int oci_parse_architectures(builder *b, const sbx_json *v)
{
    int rc = oci_want(b, v, SBX_JSON_ARRAY, "architectures");
    if (rc < 0)
        return rc;
    size_t i = 0;
    for (const sbx_json *a = v->u.kids.first; a; a = a->next, i++) {
        char path[PATH_LEN];
        const char *name;
        uint32_t token;
        oci_path_fmt(path, "architectures[%zu]", i);
        if ((rc = oci_want_cstr(b, a, path, &name)) < 0)
            return rc;
        if (!arch_token(name, true, &token))
            return oci_fail_at(b, -EINVAL, a, path, "unknown architecture \"%.64s\"", name);
        if ((rc = add_arch(b, token, a, path)) < 0)
            return rc;
    }
    return 0;
}

/*
 * Docker's "archMap": a list of {architecture, subArchitectures}; the entry whose architecture is
 * the native one names the ABIs to add. Every entry is checked, matching or not.
 */
int oci_parse_arch_map(builder *b, const sbx_json *v)
{
    int rc = oci_want(b, v, SBX_JSON_ARRAY, "archMap");
    if (rc < 0)
        return rc;
    size_t i = 0;
    for (const sbx_json *e = v->u.kids.first; e; e = e->next, i++) {
        char path[PATH_LEN];
        oci_path_fmt(path, "archMap[%zu]", i);
        if ((rc = oci_want(b, e, SBX_JSON_OBJECT, path)) < 0)
            return rc;
        const sbx_json *arch = oci_field(e, "architecture"),
                       *subs = oci_field(e, "subArchitectures");
        if (!arch)
            return oci_fail_at(b, -EINVAL, e, path, "missing \"architecture\"");
        const char *name;
        uint32_t token;
        oci_path_fmt(path, "archMap[%zu].architecture", i);
        if ((rc = oci_want_cstr(b, arch, path, &name)) < 0)
            return rc;
        if (!arch_token(name, true, &token))
            return oci_fail_at(b, -EINVAL, arch, path, "unknown architecture \"%.64s\"", name);
        bool native = token == b->native;
        if (native && (rc = add_arch(b, token, arch, path)) < 0)
            return rc;
        if (!subs)
            continue;
        oci_path_fmt(path, "archMap[%zu].subArchitectures", i);
        if ((rc = oci_want(b, subs, SBX_JSON_ARRAY, path)) < 0)
            return rc;
        size_t j = 0;
        for (const sbx_json *s = subs->u.kids.first; s; s = s->next, j++) {
            oci_path_fmt(path, "archMap[%zu].subArchitectures[%zu]", i, j);
            if ((rc = oci_want_cstr(b, s, path, &name)) < 0)
                return rc;
            if (!arch_token(name, true, &token))
                return oci_fail_at(b, -EINVAL, s, path, "unknown architecture \"%.64s\"", name);
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
int oci_parse_flags(builder *b, const sbx_json *v)
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
    int rc = oci_want(b, v, SBX_JSON_ARRAY, "flags");
    if (rc < 0)
        return rc;
    size_t i = 0;
    for (const sbx_json *f = v->u.kids.first; f; f = f->next, i++) {
        char path[PATH_LEN];
        const char *name;
        oci_path_fmt(path, "flags[%zu]", i);
        if ((rc = oci_want_cstr(b, f, path, &name)) < 0)
            return rc;
        size_t k = 0;
        while (k < sizeof flags / sizeof flags[0] && strcmp(flags[k].name, name))
            k++;
        if (k == sizeof flags / sizeof flags[0])
            return oci_fail_at(b, -EINVAL, f, path, "unknown flag \"%.64s\"", name);
        if (flags[k].attr >= 0 &&
            (rc = seccomp_attr_set(b->ctx, (enum scmp_filter_attr)flags[k].attr, 1)) < 0)
            return oci_fail_at(b, -EINVAL, f, path,
                               "this kernel or libseccomp cannot honour %s: %s", name,
                               strerror(-rc));
    }
    return 0;
}
int oci_parse_cond_set(builder *b, const sbx_json *v, const char *base, cond_set *cs)
{
    char path[PATH_LEN];
    memset(cs, 0, sizeof *cs);
    if (!v)
        return 0;
    int rc = oci_want(b, v, SBX_JSON_OBJECT, base);
    if (rc < 0)
        return rc;
    const sbx_json *caps = oci_field(v, "caps"), *arches = oci_field(v, "arches"),
                   *mink = oci_field(v, "minKernel");
    if (caps) {
        oci_path_fmt(path, "%s.caps", base);
        if ((rc = oci_want(b, caps, SBX_JSON_ARRAY, path)) < 0)
            return rc;
        cs->has_caps = caps->u.kids.n > 0;
        cs->all_caps_kept = true;
        size_t i = 0;
        for (const sbx_json *c = caps->u.kids.first; c; c = c->next, i++) {
            const char *name;
            oci_path_fmt(path, "%s.caps[%zu]", base, i);
            if ((rc = oci_want_cstr(b, c, path, &name)) < 0)
                return rc;
            int n = oci_cap_number(name);
            if (n < 0)
                return oci_fail_at(b, -EINVAL, c, path, "unknown capability \"%.64s\"", name);
            if (b->kept >> n & 1)
                cs->any_cap_kept = true;
            else
                cs->all_caps_kept = false;
        }
    }
    if (arches) {
        oci_path_fmt(path, "%s.arches", base);
        if ((rc = oci_want(b, arches, SBX_JSON_ARRAY, path)) < 0)
            return rc;
        cs->has_arches = arches->u.kids.n > 0;
        size_t i = 0;
        for (const sbx_json *a = arches->u.kids.first; a; a = a->next, i++) {
            const char *name;
            uint32_t token;
            oci_path_fmt(path, "%s.arches[%zu]", base, i);
            if ((rc = oci_want_cstr(b, a, path, &name)) < 0)
                return rc;
            if (!arch_token(name, false, &token))
                return oci_fail_at(b, -EINVAL, a, path, "unknown architecture \"%.64s\"", name);
            if (token == b->native)
                cs->native_listed = true;
        }
    }
    if (mink) {
        const char *s;
        unsigned want_v[3];
        oci_path_fmt(path, "%s.minKernel", base);
        if ((rc = oci_want_cstr(b, mink, path, &s)) < 0)
            return rc;
        if (!oci_parse_version(s, true, want_v))
            return oci_fail_at(b, -EINVAL, mink, path,
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
bool oci_entry_applies(const cond_set *inc, const cond_set *exc)
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

int oci_parse_args(builder *b, const sbx_json *v, size_t entry, struct scmp_arg_cmp *conds,
                   size_t *ncond, bool *same_index)
{
    char path[PATH_LEN];
    oci_path_fmt(path, "syscalls[%zu].args", entry);
    int rc = oci_want(b, v, SBX_JSON_ARRAY, path);
    if (rc < 0)
        return rc;
    if (v->u.kids.n > MAX_CONDS)
        return oci_fail_at(b, -EINVAL, v, path, "more than %d conditions", MAX_CONDS);
    unsigned seen = 0;
    size_t i = 0;
    *same_index = false;
    for (const sbx_json *a = v->u.kids.first; a; a = a->next, i++) {
        oci_path_fmt(path, "syscalls[%zu].args[%zu]", entry, i);
        if ((rc = oci_want(b, a, SBX_JSON_OBJECT, path)) < 0)
            return rc;
        const sbx_json *index = oci_field(a, "index"), *value = oci_field(a, "value"),
                       *value2 = oci_field(a, "valueTwo"), *op = oci_field(a, "op");
        if (!index)
            return oci_fail_at(b, -EINVAL, a, path, "missing \"index\"");
        if (!op)
            return oci_fail_at(b, -EINVAL, a, path, "missing \"op\"");
        uint64_t idx, val = 0, val2 = 0;
        oci_path_fmt(path, "syscalls[%zu].args[%zu].index", entry, i);
        if ((rc = want_uint(b, index, path, 5, &idx)) < 0)
            return rc;
        oci_path_fmt(path, "syscalls[%zu].args[%zu].value", entry, i);
        if (value && (rc = want_uint(b, value, path, UINT64_MAX, &val)) < 0)
            return rc;
        oci_path_fmt(path, "syscalls[%zu].args[%zu].valueTwo", entry, i);
        if (value2 && (rc = want_uint(b, value2, path, UINT64_MAX, &val2)) < 0)
            return rc;
        const char *opname;
        oci_path_fmt(path, "syscalls[%zu].args[%zu].op", entry, i);
        if ((rc = oci_want_cstr(b, op, path, &opname)) < 0)
            return rc;
        size_t k = 0;
        while (k < sizeof op_names / sizeof op_names[0] && strcmp(op_names[k].name, opname))
            k++;
        if (k == sizeof op_names / sizeof op_names[0])
            return oci_fail_at(b, -EINVAL, op, path,
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

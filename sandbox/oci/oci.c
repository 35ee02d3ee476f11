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

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/filter.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <unistd.h>

#include "sandbox/oci/json.h"

#include "sandbox/oci/oci_internal.h"

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
        return oci_fail_at(b, -ENOMEM, at, path, "out of memory");
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
        oci_action_str(act, a1, sizeof a1);
        oci_action_str(other_act, a2, sizeof a2);
        return oci_fail_at(b, -EINVAL, at, path,
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
        return oci_fail_at(b, rc == -ENOMEM ? -ENOMEM : -EINVAL, at, path,
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
    oci_path_fmt(path, "syscalls[%zu]", idx);
    int rc = oci_want(b, e, SBX_JSON_OBJECT, path);
    if (rc < 0)
        return rc;
    const sbx_json *names = oci_field(e, "names"), *name = oci_field(e, "name"),
                   *action = oci_field(e, "action"), *ret = oci_field(e, "errnoRet"),
                   *args = oci_field(e, "args");
    if (names && name)
        return oci_fail_at(b, -EINVAL, name, path,
                           "has both \"names\" and \"name\"; use \"names\"");
    if (!names && !name)
        return oci_fail_at(b, -EINVAL, e, path, "missing \"names\"");
    if (!action)
        return oci_fail_at(b, -EINVAL, e, path, "missing \"action\"");
    if (names) {
        oci_path_fmt(path, "syscalls[%zu].names", idx);
        if ((rc = oci_want(b, names, SBX_JSON_ARRAY, path)) < 0)
            return rc;
        if (!names->u.kids.n)
            return oci_fail_at(b, -EINVAL, names, path, "empty; the entry would do nothing");
    }

    uint32_t act;
    char ret_path[PATH_LEN];
    oci_path_fmt(path, "syscalls[%zu].action", idx);
    oci_path_fmt(ret_path, "syscalls[%zu].errnoRet", idx);
    if ((rc = oci_parse_action(b, action, path, ret, ret_path, &act)) < 0)
        return rc;

    struct scmp_arg_cmp conds[MAX_CONDS];
    size_t ncond = 0;
    bool split = false;
    if (args && (rc = oci_parse_args(b, args, idx, conds, &ncond, &split)) < 0)
        return rc;

    cond_set inc, exc;
    oci_path_fmt(path, "syscalls[%zu].includes", idx);
    if ((rc = oci_parse_cond_set(b, oci_field(e, "includes"), path, &inc)) < 0)
        return rc;
    oci_path_fmt(path, "syscalls[%zu].excludes", idx);
    if ((rc = oci_parse_cond_set(b, oci_field(e, "excludes"), path, &exc)) < 0)
        return rc;
    bool applies = oci_entry_applies(&inc, &exc);

    /* Names last, so that the rule for each one is added as it is checked. */
    const sbx_json *n = names ? names->u.kids.first : name;
    for (size_t i = 0; n; n = names ? n->next : NULL, i++) {
        const char *s;
        if (names)
            oci_path_fmt(path, "syscalls[%zu].names[%zu]", idx, i);
        else
            oci_path_fmt(path, "syscalls[%zu].name", idx);
        if ((rc = oci_want_cstr(b, n, path, &s)) < 0)
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
            return oci_fail_at(b, -EINVAL, n, path,
                               "unknown syscall \"%.64s\" (libseccomp %u.%u.%u does not know it)",
                               s, v->major, v->minor, v->micro);
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
        int n = name ? oci_cap_number(name) : -1;
        if (n < 0)
            return oci_fail_at(b, -EINVAL, NULL, "kept capabilities",
                               "unknown capability \"%.64s\"", name ? name : "(null)");
        b->kept |= 1ull << n;
    }
    return 0;
}

static int build(builder *b, const sbx_json *root)
{
    int rc = oci_want(b, root, SBX_JSON_OBJECT, "top level");
    if (rc < 0)
        return rc;
    const sbx_json *def = oci_field(root, "defaultAction"),
                   *def_ret = oci_field(root, "defaultErrnoRet");
    if (!def)
        return oci_fail_at(b, -EINVAL, root, "top level", "missing \"defaultAction\"");
    if ((rc = oci_parse_action(b, def, "defaultAction", def_ret, "defaultErrnoRet",
                               &b->def_action)) < 0)
        return rc;
    b->ctx = seccomp_init(b->def_action);
    if (!b->ctx)
        return oci_fail_at(b, -EINVAL, def, "defaultAction",
                           "libseccomp refused %s (not supported by this kernel?)", def->u.str.s);
    /*
     * An allow-list profile has hundreds of rules, and the kernel runs the filter on every system
     * call; a binary tree makes that a few comparisons instead of a linear scan. Older libseccomp
     * versions lack the attribute, which only costs speed.
     */
    (void)seccomp_attr_set(b->ctx, SCMP_FLTATR_CTL_OPTIMIZE, 2);

    const sbx_json *arches = oci_field(root, "architectures"), *amap = oci_field(root, "archMap");
    if (arches && amap && arches->type == SBX_JSON_ARRAY && arches->u.kids.n &&
        amap->type == SBX_JSON_ARRAY && amap->u.kids.n)
        return oci_fail_at(b, -EINVAL, amap, "archMap",
                           "give either \"architectures\" or \"archMap\", not both");
    if (arches && (rc = oci_parse_architectures(b, arches)) < 0)
        return rc;
    if (amap && (rc = oci_parse_arch_map(b, amap)) < 0)
        return rc;
    const sbx_json *flags = oci_field(root, "flags");
    if (flags && (rc = oci_parse_flags(b, flags)) < 0)
        return rc;

    const sbx_json *calls = oci_field(root, "syscalls");
    if (!calls)
        return 0;
    if ((rc = oci_want(b, calls, SBX_JSON_ARRAY, "syscalls")) < 0)
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
        rc = oci_fail_at(
            b, -EINVAL, NULL, NULL,
            "the filter compiles to %zu BPF instructions, over the kernel's limit of %d; "
            "use fewer rules or conditions",
            (size_t)st.st_size / sizeof(struct sock_filter), BPF_MAXINSNS);
    else if (rc < 0)
        rc = oci_fail_at(b, rc == -ENOMEM ? -ENOMEM : -EINVAL, NULL, NULL,
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
        (void)oci_parse_version(u.release, false, b.kver);

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

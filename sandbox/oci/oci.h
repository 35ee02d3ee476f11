/*
 * Seccomp profiles in the OCI runtime-spec / Docker JSON format, turned into a libseccomp filter
 * context, so that users can bring the profiles they already run containers with. The loader is
 * strict where Docker is lenient, because a profile that silently means less than it says is a
 * hole: an unknown syscall name, action, operator, architecture or capability, a value of the
 * wrong type, and two rules that give one syscall different actions unconditionally are errors
 * naming the file, the line:column, the entry and the reason. Fields it does not know are ignored,
 * so newer profiles still load. docs/sandbox-profiles.md describes the format in full.
 *
 * The result is an ordinary scmp_filter_ctx: the caller may add rules, export it as BPF
 * (seccomp_export_bpf) to apply with raw system calls in a child, or seccomp_load it, and frees it
 * with seccomp_release. Loading runs in the parent and allocates; nothing here is for the child.
 */
#ifndef SANDBOX_OCI_OCI_H
#define SANDBOX_OCI_OCI_H

#include <stddef.h>

#include <seccomp.h>

/* Profile files larger than this are refused; Docker's own profile is about 20 KiB. */
#define SBX_OCI_MAX_BYTES (1u << 20)

/* Flags for sbx_oci_options.flags. */
enum {
    /*
     * Skip, with a warning, a syscall name that libseccomp does not know when it appears in an
     * entry whose action is SCMP_ACT_ALLOW or SCMP_ACT_LOG. Dropping such a name can only make the
     * filter stricter (the call gets the default action), so this lets a profile written for a
     * newer kernel load here. A name unknown in any other entry stays an error: dropping it from a
     * refusing rule would let the call through if the kernel has it.
     */
    SBX_OCI_SKIP_UNKNOWN_ALLOWED = 1u << 0,
};

typedef struct sbx_oci_options {
    /*
     * The capabilities the command keeps, as names ("CAP_SYS_ADMIN"; case does not matter and
     * the "CAP_" prefix may be left out). Docker's includes.caps / excludes.caps are evaluated
     * against them. An unknown name is an error.
     */
    const char *const *kept_caps;
    size_t nkept;
    unsigned flags; /* SBX_OCI_* */
    /* Receives each warning (one line, no newline), when not NULL. */
    void (*warn)(void *arg, const char *msg);
    void *warn_arg;
} sbx_oci_options;

/*
 * Reads the profile at path and builds a filter from it for a command that keeps kept_caps[0..
 * nkept). On success stores a new context in *out (free it with seccomp_release), clears err and
 * returns 0. Otherwise leaves *out NULL, writes a message into err[0..errlen) (always
 * NUL-terminated when errlen > 0) and returns a negative errno: the open or read error of the
 * file, -EISDIR, -EFBIG for a file over SBX_OCI_MAX_BYTES, -EINVAL for a malformed or refused
 * profile (including one whose filter would exceed the kernel's 4096 BPF instructions), or
 * -ENOMEM. Messages start with the path, then the line:col where the problem has a place in
 * the file, then for a profile error the JSON path of the offending field, e.g.
 * "p.json:14:19: syscalls[3].args[0].op: unknown operator \"SCMP_CMP_FOO\"".
 */
int sbx_oci_load(const char *path, const char *const *kept_caps, size_t nkept, scmp_filter_ctx *out,
                 char *err, size_t errlen);

/*
 * The same for a profile held in memory: json[0..len), which need not be NUL-terminated.
 * source_name stands for the file name in messages (NULL gives "<profile>").
 */
int sbx_oci_load_buffer(const char *json, size_t len, const char *source_name,
                        const char *const *kept_caps, size_t nkept, scmp_filter_ctx *out, char *err,
                        size_t errlen);

/* sbx_oci_load_buffer with options (NULL for none: no capabilities, no flags). */
int sbx_oci_load_buffer_ex(const char *json, size_t len, const char *source_name,
                           const sbx_oci_options *opt, scmp_filter_ctx *out, char *err,
                           size_t errlen);

/* sbx_oci_load with options. */
int sbx_oci_load_ex(const char *path, const sbx_oci_options *opt, scmp_filter_ctx *out, char *err,
                    size_t errlen);

#endif /* SANDBOX_OCI_OCI_H */

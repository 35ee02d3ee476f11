/*
 * Internal to the sandbox library: the built-in seccomp profiles (default and strict) as tables
 * of syscall names, and the function that turns one into a libseccomp filter context. Kept apart
 * from sandbox.c so the lists can be read, reviewed and tested on their own.
 */
#ifndef PM_SANDBOX_PROFILES_H
#define PM_SANDBOX_PROFILES_H

#include <stddef.h>

#include <seccomp.h>

#include "sandbox/sandbox.h"

/*
 * Syscalls the default profile refuses outright, every one with EPERM. clone (namespace flags),
 * clone3 (ENOSYS) and personality (all but the harmless values) have argument rules of their own
 * and are not in this list.
 */
extern const char *const sbx_default_denied[];
extern const size_t sbx_default_denied_count;

/*
 * Syscalls the strict profile allows without looking at arguments. clone, personality, socket and
 * ioctl are allowed only with the arguments their rules name; everything else gets EPERM.
 */
extern const char *const sbx_strict_allowed[];
extern const size_t sbx_strict_allowed_count;

/*
 * Builds the filter of a built-in profile (SBX_DEFAULT or SBX_STRICT) for the native architecture;
 * any other architecture kills the process. Stores a new context in *out (seccomp_release frees
 * it) and returns 0, or returns a negative errno with a message in err.
 */
int sbx_profile_build(sbx_profile which, scmp_filter_ctx *out, char *err, size_t errlen);

#endif

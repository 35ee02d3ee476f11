/*
 * STUB, to be deleted when the OCI/Docker JSON loader (sandbox/oci/oci.h, written separately) is
 * wired in: then sandbox.c includes "sandbox/oci/oci.h" instead of this file, and BUILD.bazel
 * links that loader instead of oci_stub.c. The prototype below is the loader's, unchanged, so
 * nothing else moves.
 */
#ifndef PM_SANDBOX_OCI_STUB_H
#define PM_SANDBOX_OCI_STUB_H

#include <stddef.h>

#include <seccomp.h>

/* See sandbox/oci/oci.h. The stub answers -ENOSYS with a message naming the file. */
int sbx_oci_load(const char *path, const char *const *kept_caps, size_t nkept, scmp_filter_ctx *out,
                 char *err, size_t errlen);

#endif

/*
 * STUB, to be deleted when the OCI/Docker JSON loader (sandbox/oci/) is wired in (see
 * oci_stub.h). Until then a file profile fails to prepare with a clear message, so the rest of the
 * sandbox builds, links and is tested without it.
 */
#include "sandbox/oci_stub.h"

#include <errno.h>
#include <stdio.h>

int sbx_oci_load(const char *path, const char *const *kept_caps, size_t nkept, scmp_filter_ctx *out,
                 char *err, size_t errlen)
{
    (void)kept_caps;
    (void)nkept;
    *out = NULL;
    if (err && errlen)
        snprintf(err, errlen, "%s: profiles from a file are not built into this binary yet", path);
    return -ENOSYS;
}

/*
 * What oci.c and oci_fields.c share, and nothing else includes: the limits on an entry, the
 * builder that carries one load's state (error buffer, options, kept capabilities, the running
 * kernel, the filter under construction and the conflict table), the checked form of an entry's
 * includes/excludes, and the field checkers that oci_fields.c exports to the loader.
 */
#ifndef SANDBOX_OCI_OCI_INTERNAL_H
#define SANDBOX_OCI_OCI_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sandbox/oci/json.h"
#include "sandbox/oci/oci.h"

/* Conditions per entry; real profiles use one or two, and each one can become a rule. */
#define MAX_CONDS 32
#define PATH_LEN 96

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

/* The parts of includes/excludes, checked, and whether each matches this command. */
typedef struct {
    bool has_caps, all_caps_kept, any_cap_kept;
    bool has_arches, native_listed;
    bool has_kernel, kernel_at_least;
} cond_set;

/* Formats "src:line:col: path: message" into the caller's buffer and returns rc. */
int oci_fail_at(builder *b, int rc, const sbx_json *at, const char *path, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
/* Formats a JSON path into out, which holds PATH_LEN bytes. */
void oci_path_fmt(char *out, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

const sbx_json *oci_field(const sbx_json *obj, const char *key);
int oci_want(builder *b, const sbx_json *v, sbx_json_type t, const char *path);
int oci_want_cstr(builder *b, const sbx_json *v, const char *path, const char **out);
int oci_cap_number(const char *name);
bool oci_parse_version(const char *s, bool whole, unsigned v[3]);
void oci_action_str(uint32_t act, char *buf, size_t n);
int oci_parse_action(builder *b, const sbx_json *v, const char *path, const sbx_json *ret,
                     const char *ret_path, uint32_t *out);
int oci_parse_architectures(builder *b, const sbx_json *v);
int oci_parse_arch_map(builder *b, const sbx_json *v);
int oci_parse_flags(builder *b, const sbx_json *v);
int oci_parse_cond_set(builder *b, const sbx_json *v, const char *base, cond_set *cs);
bool oci_entry_applies(const cond_set *inc, const cond_set *exc);
int oci_parse_args(builder *b, const sbx_json *v, size_t entry, struct scmp_arg_cmp *conds,
                   size_t *ncond, bool *same_index);

#endif

/*
 * Command-line flags, each also settable from the environment as PM_<NAME>. The environment is
 * applied first so that an explicit flag always wins.
 */
#include "rpc/rpc.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

static void env_name(const char *flag, char *buf, size_t size)
{
    size_t o = (size_t)snprintf(buf, size, "PM_");
    for (; *flag && o + 1 < size; flag++)
        buf[o++] = *flag == '-' ? '_' : (char)toupper((unsigned char)*flag);
    buf[o] = '\0';
}

static int set_value(const rpc_flag *f, const char *value, const char *origin, char *err,
                     size_t errlen)
{
    switch (f->type) {
    case RPC_FLAG_STRING:
        *(const char **)f->dst = value;
        return 0;
    case RPC_FLAG_UINT: {
        char *end;
        errno = 0;
        unsigned long long v = strtoull(value, &end, 10);
        if (errno || end == value || *end || value[0] == '-') {
            snprintf(err, errlen, "%s: %s wants a whole number, got \"%s\"", origin, f->name,
                     value);
            return -EINVAL;
        }
        *(uint64_t *)f->dst = (uint64_t)v;
        return 0;
    }
    case RPC_FLAG_BOOL:
        if (!strcmp(value, "1") || !strcmp(value, "true") || !strcmp(value, "yes")) {
            *(bool *)f->dst = true;
        } else if (!strcmp(value, "0") || !strcmp(value, "false") || !strcmp(value, "no")) {
            *(bool *)f->dst = false;
        } else {
            snprintf(err, errlen, "%s: %s wants true or false, got \"%s\"", origin, f->name, value);
            return -EINVAL;
        }
        return 0;
    }
    return -EINVAL;
}

static const rpc_flag *find_flag(const rpc_flag *flags, size_t n, const char *name, size_t len)
{
    for (size_t i = 0; i < n; i++)
        if (strlen(flags[i].name) == len && !strncmp(flags[i].name, name, len))
            return &flags[i];
    return NULL;
}

int rpc_flags_parse(const rpc_flag *flags, size_t n, int argc, char **argv, int *rest, char *err,
                    size_t errlen)
{
    char var[96];
    for (size_t i = 0; i < n; i++) {
        env_name(flags[i].name, var, sizeof var);
        const char *v = getenv(var);
        if (v && set_value(&flags[i], v, var, err, errlen) < 0)
            return -EINVAL;
    }
    int i = 1;
    for (; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--")) {
            i++;
            break;
        }
        if (!strcmp(a, "--help") || !strcmp(a, "-h"))
            return 1;
        if (strncmp(a, "--", 2) != 0)
            break;
        const char *name = a + 2, *eq = strchr(name, '=');
        size_t len = eq ? (size_t)(eq - name) : strlen(name);
        const rpc_flag *f = find_flag(flags, n, name, len);
        if (!f) {
            snprintf(err, errlen, "unknown flag --%.*s (see --help)", (int)len, name);
            return -EINVAL;
        }
        const char *value = eq ? eq + 1 : NULL;
        if (!value && f->type == RPC_FLAG_BOOL)
            value = "true";
        if (!value) {
            if (i + 1 >= argc) {
                snprintf(err, errlen, "flag --%s needs a value", f->name);
                return -EINVAL;
            }
            value = argv[++i];
        }
        char origin[96];
        snprintf(origin, sizeof origin, "--%s", f->name);
        if (set_value(f, value, origin, err, errlen) < 0)
            return -EINVAL;
    }
    *rest = i;
    return 0;
}

void rpc_flags_usage(FILE *out, const char *synopsis, const rpc_flag *flags, size_t n)
{
    fprintf(out, "%s\n\nFlags (each also settable by the environment variable shown):\n", synopsis);
    char var[96];
    for (size_t i = 0; i < n; i++) {
        const rpc_flag *f = &flags[i];
        env_name(f->name, var, sizeof var);
        char def[128] = "";
        switch (f->type) {
        case RPC_FLAG_STRING:
            if (*(const char **)f->dst)
                snprintf(def, sizeof def, " (default %s)", *(const char **)f->dst);
            break;
        case RPC_FLAG_UINT:
            snprintf(def, sizeof def, " (default %" PRIu64 ")", *(uint64_t *)f->dst);
            break;
        case RPC_FLAG_BOOL:
            break;
        }
        fprintf(out, "  --%-22s %-24s %s%s\n", f->name, var, f->help, def);
    }
}

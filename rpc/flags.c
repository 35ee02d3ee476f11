/*
 * Command-line flags, each also settable from the environment as PM_<NAME>. The environment is
 * applied first so that an explicit flag always wins. Whole numbers take a binary size suffix
 * (K, M, G), since most of them are byte counts and caps.
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

/*
 * The binary size suffixes and their shifts. Lower-case k is taken because "64k" is the common
 * spelling; lower-case m and g are not, so that "5m" given to a millisecond flag (meant as five
 * minutes) is refused instead of silently becoming 5 x 1024^2 ms, about 87 minutes.
 */
static const struct {
    char suffix;
    unsigned shift;
} size_suffixes[] = {{'k', 10}, {'K', 10}, {'M', 20}, {'G', 30}};

/* Parses digits with an optional size suffix. Returns 0, -EINVAL when s is not such a number, or
 * -ERANGE when it does not fit in 64 bits. */
static int parse_uint(const char *s, uint64_t *out)
{
    /* strtoull alone would also take leading blanks, a sign and "-1" (as its two's complement). */
    if (!isdigit((unsigned char)s[0]))
        return -EINVAL;
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    bool too_big = errno == ERANGE;
    unsigned shift = 0;
    if (*end) {
        size_t i = 0, n = sizeof size_suffixes / sizeof size_suffixes[0];
        while (i < n && size_suffixes[i].suffix != *end)
            i++;
        if (i == n || end[1])
            return -EINVAL;
        shift = size_suffixes[i].shift;
    }
    if (too_big || v > (UINT64_MAX >> shift))
        return -ERANGE;
    *out = (uint64_t)v << shift;
    return 0;
}

/* Stores value into f's destination; origin ("--name" or "PM_NAME") starts any message. */
static int set_value(const rpc_flag *f, const char *value, const char *origin, char *err,
                     size_t errlen)
{
    switch (f->type) {
    case RPC_FLAG_STRING:
        *(const char **)f->dst = value;
        return 0;
    case RPC_FLAG_UINT: {
        int rc = parse_uint(value, (uint64_t *)f->dst);
        if (rc == -ERANGE)
            snprintf(err, errlen, "%s: \"%s\" is too large for 64 bits (at most %" PRIu64 ")",
                     origin, value, UINT64_MAX);
        else if (rc < 0)
            snprintf(err, errlen,
                     "%s wants a whole number, optionally with a K, M or G suffix; got \"%s\"",
                     origin, value);
        return rc < 0 ? -EINVAL : 0;
    }
    case RPC_FLAG_BOOL:
        if (!strcmp(value, "1") || !strcmp(value, "true") || !strcmp(value, "yes")) {
            *(bool *)f->dst = true;
        } else if (!strcmp(value, "0") || !strcmp(value, "false") || !strcmp(value, "no")) {
            *(bool *)f->dst = false;
        } else {
            snprintf(err, errlen, "%s wants true or false, got \"%s\"", origin, value);
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

/* Writes " (default N)", with N in the largest suffix that states it exactly, so that byte
 * sizes read as 4M and 128K rather than 4194304 and 131072. */
static void format_uint(char *buf, size_t size, uint64_t v)
{
    static const char units[] = "KMG";
    int u = -1;
    while (u < 2 && v >= 1024 && v % 1024 == 0) {
        v /= 1024;
        u++;
    }
    if (u < 0)
        snprintf(buf, size, " (default %" PRIu64 ")", v);
    else
        snprintf(buf, size, " (default %" PRIu64 "%c)", v, units[u]);
}

void rpc_flags_usage(FILE *out, const char *synopsis, const rpc_flag *flags, size_t n)
{
    fprintf(out, "%s\n\nFlags (each also settable by the environment variable shown):\n", synopsis);
    char var[96];
    bool has_uint = false;
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
            has_uint = true;
            if (*(uint64_t *)f->dst != UINT64_MAX)
                format_uint(def, sizeof def, *(uint64_t *)f->dst);
            break;
        case RPC_FLAG_BOOL:
            break;
        }
        fprintf(out, "  --%-22s %-24s %s%s\n", f->name, var, f->help, def);
    }
    if (has_uint)
        fprintf(out, "\nNumbers take an optional binary suffix: K (or k) = 1024, M = 1024^2, "
                     "G = 1024^3.\n");
}

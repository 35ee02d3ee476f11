/*
 * pmctl command lines and connections, shared by every subcommand. A subcommand declares its flags
 * (rpc_flag rows, each also settable as PM_<NAME>) and its repeatable list flags in a cmd_spec;
 * parse_args takes the list flags out of argv, hands the rest to rpc_flags_parse and leaves the
 * positional arguments. open_conn turns the connection flags into a cli_conn, reading the token
 * file on the way, so every subcommand reports a bad address or token the same way.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/client.h"
#include "cli/pmctl.h"
#include "rpc/rpc.h"

#define MAX_TOKEN_BYTES 4096

/* ---- repeated flags --------------------------------------------------------------------- */

int list_add(str_list *l, const char *s)
{
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 8;
        const char **v = realloc(l->v, cap * sizeof *v);
        if (!v)
            return -ENOMEM;
        l->v = v;
        l->cap = cap;
    }
    l->v[l->n++] = s;
    return 0;
}

void list_free(str_list *l)
{
    free(l->v);
    memset(l, 0, sizeof *l);
}

static void usage(FILE *out, const cmd_spec *s)
{
    rpc_flags_usage(out, s->synopsis, s->flags, s->nflags);
    for (size_t i = 0; i < s->nlists; i++) {
        const list_flag *l = &s->lists[i];
        char name[64];
        snprintf(name, sizeof name, "%s%s%s %s", l->alias ? l->alias : "", l->alias ? ", --" : "--",
                 l->name, l->value);
        fprintf(out, "  %-49s %s (repeatable; not from the environment)\n", name, l->help);
    }
    if (s->epilog)
        fprintf(out, "\n%s\n", s->epilog);
}

static const list_flag *match_list(const cmd_spec *s, const char *arg, const char **inline_value)
{
    *inline_value = NULL;
    for (size_t i = 0; i < s->nlists; i++) {
        const list_flag *l = &s->lists[i];
        if (l->alias && !strcmp(arg, l->alias))
            return l;
        if (strncmp(arg, "--", 2) != 0)
            continue;
        size_t n = strlen(l->name);
        if (!strncmp(arg + 2, l->name, n) && (arg[2 + n] == '\0' || arg[2 + n] == '=')) {
            if (arg[2 + n] == '=')
                *inline_value = arg + 3 + n;
            return l;
        }
    }
    return NULL;
}

static const rpc_flag *match_flag(const cmd_spec *s, const char *name)
{
    size_t len = strcspn(name, "=");
    for (size_t i = 0; i < s->nflags; i++)
        if (strlen(s->flags[i].name) == len && !strncmp(s->flags[i].name, name, len))
            return &s->flags[i];
    return NULL;
}

int parse_args(const char *cmd, const cmd_spec *s, int argc, char **argv, parsed_args *pa)
{
    char err[256];
    int rc = EXIT_FAIL, nlater = 0;
    memset(pa, 0, sizeof *pa);
    /* Room for every argument plus the "--" put before interspersed positionals. */
    pa->argv = calloc((size_t)argc + 2, sizeof *pa->argv);
    char **later = calloc((size_t)argc + 1, sizeof *later);
    if (!pa->argv || !later) {
        fprintf(stderr, "pmctl: out of memory\n");
        goto out;
    }
    int o = 0;
    pa->argv[o++] = argv[0];
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *value;
        const list_flag *l = match_list(s, a, &value);
        if (l) {
            if (!value) {
                if (i + 1 >= argc) {
                    fprintf(stderr, "pmctl %s: flag %s needs a value (see --help)\n", cmd, a);
                    rc = EXIT_USAGE;
                    goto out;
                }
                value = argv[++i];
            }
            if (list_add(l->dst, value) < 0) {
                fprintf(stderr, "pmctl: out of memory\n");
                goto out;
            }
            continue;
        }
        if (s->interspersed && (a[0] != '-' || !strcmp(a, "-"))) {
            /* Flags may follow positionals ("pmctl get ID --output json"). */
            later[nlater++] = argv[i];
            continue;
        }
        if (s->interspersed && !strcmp(a, "--")) {
            while (++i < argc)
                later[nlater++] = argv[i];
            break;
        }
        if (!strcmp(a, "--") || a[0] != '-' || !strcmp(a, "-")) {
            /* The positionals start here; rpc_flags_parse stops at the same place. */
            while (i < argc)
                pa->argv[o++] = argv[i++];
            break;
        }
        if (a[1] != '-' && strcmp(a, "-h") != 0) {
            fprintf(stderr, "pmctl %s: unknown flag %s (see --help)\n", cmd, a);
            rc = EXIT_USAGE;
            goto out;
        }
        /* rpc_flags_parse only looks at "--" flags, so the short help flag is spelled out. */
        pa->argv[o++] = strcmp(a, "-h") ? argv[i] : (char *)"--help";
        /* Carry a flag's separate value along, so a value that looks like -c stays a value. */
        const rpc_flag *f = a[1] == '-' ? match_flag(s, a + 2) : NULL;
        if (f && f->type != RPC_FLAG_BOOL && !strchr(a, '=') && i + 1 < argc)
            pa->argv[o++] = argv[++i];
    }
    if (s->interspersed) {
        /* After "--", rpc_flags_parse takes even "-" or "-x" for positionals. */
        pa->argv[o++] = (char *)"--";
        for (int k = 0; k < nlater; k++)
            pa->argv[o++] = later[k];
    }
    int rest = o;
    rc = rpc_flags_parse(s->flags, s->nflags, o, pa->argv, &rest, err, sizeof err);
    if (rc == 1) {
        usage(stdout, s);
        rc = -1;
        goto out;
    }
    if (rc < 0) {
        fprintf(stderr, "pmctl %s: %s\n", cmd, err);
        rc = EXIT_USAGE;
        goto out;
    }
    pa->pos = pa->argv + rest;
    pa->npos = o - rest;
out:
    free(later);
    return rc;
}

void parsed_free(parsed_args *pa)
{
    free(pa->argv);
}

/* ---- connecting ------------------------------------------------------------------------- */

int open_conn(const char *cmd, const conn_flags *cf, cli_conn **out)
{
    char err[512];
    char *token = NULL;
    *out = NULL;
    if (!cf->target || !*cf->target) {
        const char *flag = cf->target_flag ? cf->target_flag : "target";
        char env[64];
        size_t o = (size_t)snprintf(env, sizeof env, "PM_");
        for (const char *f = flag; *f && o + 1 < sizeof env; f++)
            env[o++] = *f == '-' ? '_' : (char)(*f >= 'a' && *f <= 'z' ? *f - 'a' + 'A' : *f);
        env[o] = '\0';
        fprintf(stderr, "pmctl %s: --%s is required (or %s); see --help\n", cmd, flag, env);
        return EXIT_USAGE;
    }
    if (cf->token_file &&
        rpc_read_file(cf->token_file, MAX_TOKEN_BYTES, true, &token, NULL, err, sizeof err) < 0) {
        fprintf(stderr, "pmctl: token file %s\n", err);
        return EXIT_FAIL;
    }
    cli_config cfg = {
        .target = cf->target,
        .token = token,
        .tls_ca_file = cf->tls_ca,
        .tls_server_name = cf->tls_server_name,
        .deadline_ms = cf->deadline_ms,
        .max_reconnect_backoff_ms = cf->max_reconnect_backoff_ms,
        .interrupt = &interrupted,
    };
    int rc = cli_connect(&cfg, out, err, sizeof err);
    free(token);
    if (rc < 0) {
        fprintf(stderr, "pmctl: %s: %s\n", cf->target, err);
        return rc == -EINVAL ? EXIT_USAGE : EXIT_FAIL;
    }
    return 0;
}

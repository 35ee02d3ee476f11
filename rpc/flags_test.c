/*
 * Unit test of rpc/flags.c: the order of environment and command line, the spellings of a flag and
 * its value, the errors a user sees, size suffixes and their overflow, where the positionals start,
 * and the usage text. Every flag here is named "ft-..." so that only this test's PM_FT_*
 * variables can reach it.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rpc/rpc.h"

static int failures;

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "%s:%d: CHECK failed: %s (last error: \"%s\")\n", __FILE__, __LINE__,  \
                    #cond, err);                                                                   \
            failures++;                                                                            \
        }                                                                                          \
    } while (0)

/* The flags under test, their values after the last parse, and what that parse reported. */
static const char *name;
static uint64_t size;
static bool on;
static int rest;
static char err[256];

static const rpc_flag flags[] = {
    {"ft-name", RPC_FLAG_STRING, &name, "a string"},
    {"ft-size", RPC_FLAG_UINT, &size, "a number"},
    {"ft-on", RPC_FLAG_BOOL, &on, "a switch"},
};
#define NFLAGS (sizeof flags / sizeof flags[0])

/*
 * Resets the flags to their defaults and parses "prog" followed by the NULL-terminated args.
 * Returns what rpc_flags_parse returned; rest and err say the rest.
 */
static int parse(const char *const *args)
{
    name = "default";
    size = 7;
    on = false;
    rest = -1;
    err[0] = '\0';
    char *argv[16] = {"prog"};
    int argc = 1;
    while (args[argc - 1] && argc < 15) {
        argv[argc] = (char *)args[argc - 1];
        argc++;
    }
    argv[argc] = NULL;
    return rpc_flags_parse(flags, NFLAGS, argc, argv, &rest, err, sizeof err);
}

#define ARGS(...) ((const char *const[]){__VA_ARGS__, NULL})
#define NO_ARGS ((const char *const[]){NULL})

static void test_env_then_flags(void)
{
    setenv("PM_FT_NAME", "from-env", 1);
    setenv("PM_FT_SIZE", "5", 1);
    setenv("PM_FT_ON", "yes", 1);
    CHECK(parse(NO_ARGS) == 0);
    CHECK(!strcmp(name, "from-env") && size == 5 && on);
    /* An explicit flag wins over its variable; the others keep the environment's value. */
    CHECK(parse(ARGS("--ft-size", "9", "--ft-on=false")) == 0);
    CHECK(!strcmp(name, "from-env") && size == 9 && !on);
    setenv("PM_FT_SIZE", "lots", 1);
    CHECK(parse(NO_ARGS) == -EINVAL);
    CHECK(strstr(err, "PM_FT_SIZE") && strstr(err, "\"lots\""));
    /* The environment is checked even when the flag would override it. */
    CHECK(parse(ARGS("--ft-size", "1")) == -EINVAL);
    setenv("PM_FT_SIZE", "2K", 1);
    CHECK(parse(NO_ARGS) == 0 && size == 2048);
    unsetenv("PM_FT_NAME");
    unsetenv("PM_FT_SIZE");
    unsetenv("PM_FT_ON");
    CHECK(parse(NO_ARGS) == 0 && !strcmp(name, "default") && size == 7 && !on && rest == 1);
}

static void test_value_spellings(void)
{
    CHECK(parse(ARGS("--ft-size=42", "--ft-name=x")) == 0 && size == 42 && !strcmp(name, "x"));
    CHECK(parse(ARGS("--ft-size", "43", "--ft-name", "y")) == 0 && size == 43 &&
          !strcmp(name, "y"));
    /* A separate value is taken as it is, even when it looks like a flag. */
    CHECK(parse(ARGS("--ft-name", "--ft-on")) == 0 && !strcmp(name, "--ft-on") && !on);
    /* "=" with nothing after it is an empty string, not a missing value. */
    CHECK(parse(ARGS("--ft-name=")) == 0 && !strcmp(name, ""));
    CHECK(parse(ARGS("--ft-name=a=b")) == 0 && !strcmp(name, "a=b"));
    /* The last of a repeated flag wins. */
    CHECK(parse(ARGS("--ft-size", "1", "--ft-size=2")) == 0 && size == 2);
}

static void test_bools(void)
{
    CHECK(parse(ARGS("--ft-on")) == 0 && on);
    const char *yes[] = {"true", "yes", "1"}, *no[] = {"false", "no", "0"};
    char arg[32];
    for (size_t i = 0; i < 3; i++) {
        snprintf(arg, sizeof arg, "--ft-on=%s", yes[i]);
        CHECK(parse(ARGS(arg)) == 0 && on);
        snprintf(arg, sizeof arg, "--ft-on=%s", no[i]);
        CHECK(parse(ARGS("--ft-on", arg)) == 0 && !on);
    }
    CHECK(parse(ARGS("--ft-on=maybe")) == -EINVAL && strstr(err, "true or false"));
    /* A bool never takes the next argument: "false" here is the first positional. */
    CHECK(parse(ARGS("--ft-on", "false")) == 0 && on && rest == 2);
}

static void test_errors(void)
{
    CHECK(parse(ARGS("--nope")) == -EINVAL && strstr(err, "unknown flag --nope"));
    CHECK(parse(ARGS("--nope=3")) == -EINVAL && strstr(err, "unknown flag --nope "));
    /* A prefix of a flag's name is not that flag. */
    CHECK(parse(ARGS("--ft-siz", "1")) == -EINVAL && strstr(err, "unknown flag --ft-siz "));
    CHECK(parse(ARGS("--ft-size")) == -EINVAL && strstr(err, "--ft-size needs a value"));
    CHECK(parse(ARGS("--ft-on", "--ft-name")) == -EINVAL && strstr(err, "--ft-name needs a value"));

    const char *bad[] = {"",   "abc", "-1",   "+5",   " 5", "5 ", "5x", "5KB",
                         "5m", "5g",  "1.5K", "0x10", "K",  "5T", "5KK"};
    char arg[64];
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        snprintf(arg, sizeof arg, "--ft-size=%s", bad[i]);
        int rc = parse(ARGS(arg));
        CHECK(rc == -EINVAL);
        CHECK(strstr(err, "--ft-size") && strstr(err, "whole number") && strstr(err, bad[i]));
        if (rc != -EINVAL)
            fprintf(stderr, "  accepted \"%s\"\n", bad[i]);
    }
}

static void test_suffixes(void)
{
    static const struct {
        const char *in;
        uint64_t want;
    } good[] = {
        {"0", 0},
        {"0K", 0},
        {"64K", 65536},
        {"128k", 131072},
        {"3M", 3ull << 20},
        {"1G", 1ull << 30},
        {"007", 7},
        {"18446744073709551615", UINT64_MAX},
        /* The largest number of G that fits: 2^34 - 1. */
        {"17179869183G", UINT64_MAX - ((1ull << 30) - 1)},
        {"17592186044415M", UINT64_MAX - ((1ull << 20) - 1)},
    };
    char arg[64];
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        snprintf(arg, sizeof arg, "--ft-size=%s", good[i].in);
        int rc = parse(ARGS(arg));
        CHECK(rc == 0 && size == good[i].want);
        if (rc != 0 || size != good[i].want)
            fprintf(stderr, "  \"%s\" gave %llu\n", good[i].in, (unsigned long long)size);
    }
    const char *big[] = {"18446744073709551616", "99999999999999999999999", "17179869184G",
                         "17592186044416M", "18014398509481984K"};
    for (size_t i = 0; i < sizeof big / sizeof big[0]; i++) {
        int rc = parse(ARGS("--ft-size", big[i]));
        CHECK(rc == -EINVAL && strstr(err, "too large") && strstr(err, big[i]));
        /* The flag keeps its value: nothing wrapped around was stored. */
        CHECK(size == 7);
    }
}

static void test_rest_and_help(void)
{
    CHECK(parse(ARGS("--ft-size", "1", "--", "--ft-on", "x")) == 0 && rest == 4 && !on);
    CHECK(parse(ARGS("--")) == 0 && rest == 2);
    CHECK(parse(ARGS("--ft-size", "1", "pos", "--ft-on")) == 0 && rest == 3 && !on);
    /* A single-dash argument is not a flag: it is where the positionals start. */
    CHECK(parse(ARGS("-x", "--ft-on")) == 0 && rest == 1 && !on);
    CHECK(parse(ARGS("-h")) == 1);
    CHECK(parse(ARGS("--help")) == 1);
    CHECK(parse(ARGS("--ft-size", "1", "-h")) == 1);
    /* After "--" or a positional, --help belongs to the command being run. */
    CHECK(parse(ARGS("--", "--help")) == 0 && rest == 2);
    CHECK(parse(ARGS("cmd", "-h")) == 0 && rest == 1);
}

static void test_usage(void)
{
    char *text = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&text, &len);
    if (!out) {
        CHECK(out != NULL);
        return;
    }
    uint64_t big = 4ull << 20, odd = 1000, unset = UINT64_MAX;
    const char *s = NULL;
    const rpc_flag uflags[] = {
        {"ft-big", RPC_FLAG_UINT, &big, "bytes"},
        {"ft-odd", RPC_FLAG_UINT, &odd, "ms"},
        {"ft-unset", RPC_FLAG_UINT, &unset, "derived from the others"},
        {"ft-str", RPC_FLAG_STRING, &s, "no default"},
    };
    rpc_flags_usage(out, "usage: prog [flags]", uflags, sizeof uflags / sizeof uflags[0]);
    fclose(out);
    CHECK(!strncmp(text, "usage: prog [flags]\n", 20));
    CHECK(strstr(text, "PM_FT_BIG") && strstr(text, "bytes (default 4M)\n"));
    CHECK(strstr(text, "ms (default 1000)\n"));
    CHECK(strstr(text, "derived from the others\n"));
    CHECK(strstr(text, "no default\n"));
    CHECK(strstr(text, "K (or k) = 1024"));
    free(text);
}

int main(void)
{
    unsetenv("PM_FT_NAME");
    unsetenv("PM_FT_SIZE");
    unsetenv("PM_FT_ON");
    test_env_then_flags();
    test_value_spellings();
    test_bools();
    test_errors();
    test_suffixes();
    test_rest_and_help();
    test_usage();
    if (failures) {
        fprintf(stderr, "flags_test: %d check(s) failed\n", failures);
        return 1;
    }
    printf("flags_test: all checks passed\n");
    return 0;
}

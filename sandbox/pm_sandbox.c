/*
 * pm-sandbox: runs one command under the sandbox, for trying a profile by hand and for the
 * end-to-end tests. It prepares in the parent and starts the child with clone(CLONE_VM |
 * CLONE_VFORK) exactly as the executor does, so what works here works there: the child applies
 * the prepared sandbox with raw system calls and executes the command, and the parent waits and
 * exits with the command's status. It says which sandbox stage failed, and says so when seccomp
 * killed the command (SIGSYS).
 *
 * Exit status: the command's; 128+N when signal N ended it; 2 for a usage error; 125 when the
 * sandbox could not be prepared or applied; 126 when the command could not be executed; 127 when
 * it was not found.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/capability.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "sandbox/sandbox.h"

#define EXIT_USAGE 2
#define EXIT_SANDBOX 125
#define EXIT_CANNOT_EXEC 126
#define EXIT_NOT_FOUND 127
#define CHILD_STACK_SIZE (64 * 1024)

extern char **environ;

/* What the child shares with the parent: the prepared sandbox, the program and its outcome. */
typedef struct {
    const sbx_prepared *sandbox;
    const char *path;
    char *const *argv;
    volatile sbx_stage stage; /* the sandbox stage that failed, or SBX_STAGE_NONE */
    volatile int err;         /* its errno, or execve's */
} child_ctx;

static volatile pid_t child_pid;

static void usage(FILE *f)
{
    fprintf(f, "usage: pm-sandbox [OPTION]... [--] COMMAND [ARG]...\n"
               "Runs COMMAND under the sandbox pm-executor applies to every command.\n"
               "\n"
               "  --profile P       unconfined, default (the default), strict or file:PATH\n"
               "  --rlimit N=V      cpu, as, nofile, nproc, fsize or core; V a number with an\n"
               "                    optional K/M/G/T suffix, or unlimited (repeatable)\n"
               "  --keep-cap NAME   keep this capability (e.g. net_bind_service); \"all\" keeps\n"
               "                    every one pm-sandbox has (repeatable; default none)\n"
               "  --uid N --gid N   run as this uid and gid with no supplementary groups\n"
               "  --describe        print what is enforced to stderr before running\n"
               "  -h, --help        this text\n"
               "\n"
               "Exit status: COMMAND's; 128+N if signal N ended it (159: seccomp's SIGSYS);\n"
               "125 the sandbox failed; 126 COMMAND could not run; 127 not found; 2 usage.\n");
}

static void forward(int sig)
{
    if (child_pid > 0)
        kill(child_pid, sig);
}

/* In the child: no allocation, no locks; failures go back through ctx and _exit. */
static int child_main(void *arg)
{
    child_ctx *ctx = arg;
    struct sigaction dfl;
    memset(&dfl, 0, sizeof dfl);
    dfl.sa_handler = SIG_DFL;
    for (int s = 1; s < NSIG; s++)
        if (s != SIGKILL && s != SIGSTOP)
            sigaction(s, &dfl, NULL);
    sbx_stage stage = SBX_STAGE_NONE;
    int rc = sbx_apply_in_child(ctx->sandbox, &stage);
    if (rc < 0) {
        ctx->err = -rc;
        ctx->stage = stage;
        _exit(EXIT_SANDBOX);
    }
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    execve(ctx->path, ctx->argv, environ);
    ctx->err = errno;
    _exit(ctx->err == ENOENT ? EXIT_NOT_FOUND : EXIT_CANNOT_EXEC);
}

/* Finds cmd like execvp, in the parent so that the child need not. */
static int find_program(const char *cmd, char *out, size_t outlen)
{
    if (strchr(cmd, '/')) {
        snprintf(out, outlen, "%s", cmd);
        return 0;
    }
    const char *path = getenv("PATH");
    if (!path || !*path)
        path = "/usr/local/bin:/usr/bin:/bin";
    int rc = -ENOENT;
    for (const char *p = path;;) {
        const char *colon = strchr(p, ':');
        int dlen = colon ? (int)(colon - p) : (int)strlen(p);
        int n = snprintf(out, outlen, "%.*s%s%s", dlen, p, dlen ? "/" : "", cmd);
        struct stat st;
        if (n > 0 && (size_t)n < outlen && stat(out, &st) == 0 && S_ISREG(st.st_mode)) {
            if (access(out, X_OK) == 0)
                return 0;
            rc = -EACCES;
        }
        if (!colon)
            break;
        p = colon + 1;
    }
    return rc;
}

static int parse_id(const char *s, uint32_t *out)
{
    char *end;
    errno = 0;
    unsigned long v = strtoul(s, &end, 10);
    if (errno || *end || end == s || s[0] == '-' || v >= UINT32_MAX)
        return -EINVAL;
    *out = (uint32_t)v;
    return 0;
}

/* "all" for --keep-cap: every capability in pm-sandbox's own permitted set. */
static uint64_t permitted_caps(void)
{
    uint64_t mask = 0;
    cap_t cur = cap_get_proc();
    if (!cur)
        return 0;
    for (int c = 0; c < 64 && c < cap_max_bits(); c++) {
        cap_flag_value_t v;
        if (cap_get_flag(cur, c, CAP_PERMITTED, &v) == 0 && v == CAP_SET)
            mask |= 1ULL << c;
    }
    cap_free(cur);
    return mask;
}

int main(int argc, char **argv)
{
    enum { OPT_PROFILE = 256, OPT_RLIMIT, OPT_KEEP_CAP, OPT_UID, OPT_GID, OPT_DESCRIBE };
    static const struct option opts[] = {
        {"profile", required_argument, NULL, OPT_PROFILE},
        {"rlimit", required_argument, NULL, OPT_RLIMIT},
        {"keep-cap", required_argument, NULL, OPT_KEEP_CAP},
        {"uid", required_argument, NULL, OPT_UID},
        {"gid", required_argument, NULL, OPT_GID},
        {"describe", no_argument, NULL, OPT_DESCRIBE},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    sbx_config cfg;
    sbx_config_init(&cfg);
    bool describe = false;
    char err[512];
    int opt;
    while ((opt = getopt_long(argc, argv, "+h", opts, NULL)) != -1) {
        switch (opt) {
        case OPT_PROFILE:
            if (sbx_profile_parse(optarg, &cfg) < 0) {
                fprintf(stderr,
                        "pm-sandbox: --profile \"%s\": expected unconfined, default, "
                        "strict or file:PATH\n",
                        optarg);
                return EXIT_USAGE;
            }
            break;
        case OPT_RLIMIT:
            if (sbx_rlimit_parse(optarg, &cfg, err, sizeof err) < 0) {
                fprintf(stderr, "pm-sandbox: --rlimit: %s\n", err);
                return EXIT_USAGE;
            }
            break;
        case OPT_KEEP_CAP:
            if (strcmp(optarg, "all") == 0) {
                cfg.keep_caps |= permitted_caps();
            } else if (sbx_config_keep_cap(&cfg, optarg, err, sizeof err) < 0) {
                fprintf(stderr, "pm-sandbox: --keep-cap: %s\n", err);
                return EXIT_USAGE;
            }
            break;
        case OPT_UID:
        case OPT_GID:
            if (parse_id(optarg, opt == OPT_UID ? &cfg.uid : &cfg.gid) < 0) {
                fprintf(stderr, "pm-sandbox: --%s \"%s\": expected a number\n",
                        opt == OPT_UID ? "uid" : "gid", optarg);
                return EXIT_USAGE;
            }
            break;
        case OPT_DESCRIBE:
            describe = true;
            break;
        case 'h':
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return EXIT_USAGE;
        }
    }
    if (optind >= argc) {
        usage(stderr);
        return EXIT_USAGE;
    }

    char path[PATH_MAX];
    int rc = find_program(argv[optind], path, sizeof path);
    if (rc < 0) {
        fprintf(stderr, "pm-sandbox: %s: %s\n", argv[optind], strerror(-rc));
        return rc == -ENOENT ? EXIT_NOT_FOUND : EXIT_CANNOT_EXEC;
    }
    sbx_prepared *sandbox;
    rc = sbx_prepare(&cfg, &sandbox, err, sizeof err);
    if (rc < 0) {
        fprintf(stderr, "pm-sandbox: preparing the sandbox: %s\n", err);
        return EXIT_SANDBOX;
    }
    if (describe) {
        char line[1024];
        sbx_describe(sandbox, line, sizeof line);
        fprintf(stderr, "pm-sandbox: %s\n", line);
    }

    void *stack = mmap(NULL, CHILD_STACK_SIZE, PROT_READ | PROT_WRITE,
                       MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0);
    if (stack == MAP_FAILED) {
        fprintf(stderr, "pm-sandbox: mmap: %s\n", strerror(errno));
        return EXIT_SANDBOX;
    }
    child_ctx ctx = {.sandbox = sandbox, .path = path, .argv = argv + optind};
    /* Handlers are in place before the clone, and every signal is blocked across it, so none
     * runs on the child's stack before the child has reset them. */
    struct sigaction fwd;
    memset(&fwd, 0, sizeof fwd);
    fwd.sa_handler = forward;
    sigfillset(&fwd.sa_mask);
    const int forwarded[] = {SIGHUP, SIGINT, SIGQUIT, SIGTERM, SIGUSR1, SIGUSR2};
    for (size_t i = 0; i < sizeof forwarded / sizeof forwarded[0]; i++)
        sigaction(forwarded[i], &fwd, NULL);
    sigset_t all, old;
    sigfillset(&all);
    sigprocmask(SIG_SETMASK, &all, &old);
    pid_t pid =
        clone(child_main, (char *)stack + CHILD_STACK_SIZE, CLONE_VM | CLONE_VFORK | SIGCHLD, &ctx);
    int clone_errno = errno;
    child_pid = pid;
    sigprocmask(SIG_SETMASK, &old, NULL);
    if (pid < 0) {
        fprintf(stderr, "pm-sandbox: clone: %s\n", strerror(clone_errno));
        return EXIT_SANDBOX;
    }

    int status;
    while (waitpid(pid, &status, 0) < 0)
        if (errno != EINTR) {
            fprintf(stderr, "pm-sandbox: waitpid: %s\n", strerror(errno));
            return EXIT_SANDBOX;
        }
    sbx_prepared_free(sandbox);
    if (ctx.stage != SBX_STAGE_NONE) {
        fprintf(stderr, "pm-sandbox: sandbox stage %s failed: %s\n", sbx_stage_name(ctx.stage),
                strerror(ctx.err));
        return EXIT_SANDBOX;
    }
    if (ctx.err) {
        fprintf(stderr, "pm-sandbox: %s: %s\n", path, strerror(ctx.err));
        return WIFEXITED(status) ? WEXITSTATUS(status) : EXIT_CANNOT_EXEC;
    }
    if (WIFEXITED(status))
        return WEXITSTATUS(status);
    int sig = WTERMSIG(status);
    if (sig == SIGSYS)
        fprintf(stderr,
                "pm-sandbox: %s was killed by SIGSYS: the seccomp filter refused a system call "
                "(or one made through another architecture's entry point)\n",
                argv[optind]);
    return 128 + sig;
}

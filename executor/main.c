/*
 * pm-executor's command line: flags (each also a PM_ environment variable), then exe_serve.
 * Everything after "--" is the app command it supervises as PID 1. With --install PATH it only
 * copies its own binary to PATH and exits: the job of the init container that puts the executor
 * into a pod's shared emptyDir, from an image that holds nothing but this static binary (so there
 * is no cp to call).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "executor/executor.h"
#include "rpc/rpc.h"

/* Copies /proc/self/exe to path (through path.tmp and a rename, so a reader never sees half a
 * binary), mode 0755. Returns 0 or a negative errno with err set. */
static int install_self(const char *path, char *err, size_t errlen)
{
    char tmp[4096];
    int in = -1, out = -1, rc = 0;
    if (snprintf(tmp, sizeof tmp, "%s.tmp", path) >= (int)sizeof tmp) {
        snprintf(err, errlen, "path too long");
        return -ENAMETOOLONG;
    }
    in = open("/proc/self/exe", O_RDONLY | O_CLOEXEC);
    if (in < 0) {
        rc = -errno;
        snprintf(err, errlen, "/proc/self/exe: %s", strerror(errno));
        goto out;
    }
    out = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0755);
    if (out < 0) {
        rc = -errno;
        snprintf(err, errlen, "%s: %s", tmp, strerror(errno));
        goto out;
    }
    char buf[65536];
    for (;;) {
        ssize_t n = read(in, buf, sizeof buf);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            rc = -errno;
            snprintf(err, errlen, "reading /proc/self/exe: %s", strerror(errno));
            goto out;
        }
        if (n == 0)
            break;
        for (ssize_t off = 0; off < n;) {
            ssize_t w = write(out, buf + off, (size_t)(n - off));
            if (w < 0 && errno == EINTR)
                continue;
            if (w < 0) {
                rc = -errno;
                snprintf(err, errlen, "writing %s: %s", tmp, strerror(errno));
                goto out;
            }
            off += w;
        }
    }
    if (fchmod(out, 0755) < 0 || fsync(out) < 0 || close(out) < 0) {
        out = -1;
        rc = -errno;
        snprintf(err, errlen, "%s: %s", tmp, strerror(errno));
        goto out;
    }
    out = -1;
    if (rename(tmp, path) < 0) {
        rc = -errno;
        snprintf(err, errlen, "rename to %s: %s", path, strerror(errno));
    }
out:
    if (in >= 0)
        close(in);
    if (out >= 0)
        close(out);
    if (rc < 0)
        unlink(tmp);
    return rc;
}

int main(int argc, char **argv)
{
    const char *install = NULL;
    exe_config cfg;
    exe_config_defaults(&cfg);
    const rpc_flag flags[] = {
        {"listen", RPC_FLAG_STRING, &cfg.listen, "address: host:port or unix:/path"},
        {"install", RPC_FLAG_STRING, &install,
         "copy this binary to PATH and exit (the init container of an injected pod)"},
        {"name", RPC_FLAG_STRING, &cfg.name, "executor name reported by Info"},
        {"max-concurrent", RPC_FLAG_UINT, &cfg.max_concurrent,
         "steps running at once; past it RESOURCE_EXHAUSTED"},
        {"max-request-bytes", RPC_FLAG_UINT, &cfg.max_request_bytes, "largest request accepted"},
        {"output-cap", RPC_FLAG_UINT, &cfg.output_cap,
         "bytes of stdout+stderr streamed per command, 0 = no cap"},
        {"legacy-output-cap", RPC_FLAG_UINT, &cfg.legacy_output_cap,
         "bytes of output kept per ExecuteCommands reply"},
        {"kill-grace-ms", RPC_FLAG_UINT, &cfg.kill_grace_ms, "SIGTERM to SIGKILL delay"},
        {"shutdown-grace-ms", RPC_FLAG_UINT, &cfg.shutdown_grace_ms,
         "how long running steps may finish after SIGTERM"},
        {"chunk-bytes", RPC_FLAG_UINT, &cfg.chunk_bytes, "largest output chunk per event"},
        {"coalesce-us", RPC_FLAG_UINT, &cfg.coalesce_us,
         "how long a chunk of bulk output may wait for more before it is sent, 0 = never"},
        RPC_SERVER_FLAG_ROWS(&cfg),
        {"sandbox-profile", RPC_FLAG_STRING, &cfg.sandbox_profile,
         "seccomp profile of every command: unconfined, default, strict or file:PATH"},
        {"rlimits", RPC_FLAG_STRING, &cfg.rlimits,
         "limits of every command, e.g. cpu=60,as=2G,nofile=1024,nproc=512,fsize=1G,core=0"},
        {"keep-caps", RPC_FLAG_STRING, &cfg.keep_caps,
         "capabilities commands keep, e.g. net_bind_service (default: none)"},
        {"run-as-uid", RPC_FLAG_UINT, &cfg.run_as_uid,
         "run commands as this uid (with --run-as-gid)"},
        {"run-as-gid", RPC_FLAG_UINT, &cfg.run_as_gid, "run commands as this gid"},
    };
    size_t nflags = sizeof flags / sizeof flags[0];
    /* Room for a full path (install_self names its PATH.tmp) and the reason; -O2's
     * -Wformat-truncation checks this size. */
    char err[4096 + 256];
    int rest = argc;
    int rc = rpc_flags_parse(flags, nflags, argc, argv, &rest, err, sizeof err);
    if (rc == 1) {
        rpc_flags_usage(stdout,
                        "usage: pm-executor [flags] [-- APP ARGS...]\n\n"
                        "Serves pm.executor.v1.Executor, exec.ExecService and grpc.health.v1.\n"
                        "With -- APP, supervises APP as PID 1 and exits with its status.",
                        flags, nflags);
        return 0;
    }
    if (rc < 0) {
        fprintf(stderr, "pm-executor: %s\n", err);
        return 2;
    }
    if (rest < argc && strcmp(argv[rest - 1], "--") != 0) {
        fprintf(stderr, "pm-executor: unexpected argument \"%s\" (put the app after --)\n",
                argv[rest]);
        return 2;
    }
    if (install) {
        if (install_self(install, err, sizeof err) < 0) {
            fprintf(stderr, "pm-executor: --install %s: %s\n", install, err);
            return 1;
        }
        return 0;
    }
    return exe_serve(&cfg, rest < argc ? argv + rest : NULL);
}

/*
 * pm-executor's command line: flags (each also a PM_ environment variable), then exe_serve.
 * Everything after "--" is the app command it supervises as PID 1.
 */
#include <stdio.h>
#include <string.h>

#include "executor/executor.h"
#include "rpc/rpc.h"

int main(int argc, char **argv)
{
    exe_config cfg;
    exe_config_defaults(&cfg);
    const rpc_flag flags[] = {
        {"listen", RPC_FLAG_STRING, &cfg.listen, "address: host:port or unix:/path"},
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
    char err[256];
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
    return exe_serve(&cfg, rest < argc ? argv + rest : NULL);
}

/*
 * pm-executor: a gRPC server that runs a pipeline step's commands as child processes inside the
 * container it was injected into and streams their output back. This header is the component's
 * public face: its configuration and the one call that runs it.
 */
#ifndef PM_EXECUTOR_H
#define PM_EXECUTOR_H

#include <stdbool.h>
#include <stdint.h>

typedef struct {
    const char *listen;
    const char *name;
    uint64_t max_concurrent;    /* running Run/ExecuteCommands calls; past it RESOURCE_EXHAUSTED */
    uint64_t max_request_bytes; /* gRPC receive limit */
    uint64_t output_cap;        /* per command, bytes of stdout+stderr; 0 = no cap */
    uint64_t legacy_output_cap; /* per ExecuteCommands call, bytes kept for the unary reply */
    uint64_t kill_grace_ms;     /* SIGTERM to SIGKILL */
    uint64_t shutdown_grace_ms; /* running steps may finish this long after SIGTERM */
    uint64_t chunk_bytes;       /* largest output chunk per event */
    uint64_t coalesce_us;       /* how long a bulk chunk may wait for the pipe to fill; 0 = never */
    const char *token_file;
    const char *tls_cert;
    const char *tls_key;
    bool insecure;
    const char *log_format;
    const char *sandbox_profile; /* unconfined, default, strict or file:PATH */
    const char *rlimits;         /* comma-separated NAME=VALUE (sbx_rlimit_parse) */
    const char *keep_caps;       /* comma-separated capability names */
    uint64_t run_as_uid;         /* UINT64_MAX: keep */
    uint64_t run_as_gid;
} exe_config;

/* Fills the defaults. */
void exe_config_defaults(exe_config *cfg);

/*
 * Serves until SIGTERM/SIGINT (or, with app_argv, until the supervised app exits) and returns the
 * process exit code: 0, the app's status in PID-1 mode, 1 on a runtime failure, 2 on a bad
 * configuration (with a message on stderr).
 */
int exe_serve(const exe_config *cfg, char *const *app_argv);

#endif

/*
 * cli: the client side of the executor's wire API, on the gRPC C core client API and protobuf-c.
 * A cli_conn is one channel to one target plus what every call on it shares (bearer token,
 * per-call deadline, an interrupt flag). Each call helper makes its own completion queue, runs the
 * call to its final status and tears everything down before it returns, so a caller never holds
 * gRPC objects and may use one connection for many calls in a row (not from several threads at
 * once). Messages are protobuf-c structs; the generic cli_unary and cli_stream serve any method,
 * which is how the scheduler's calls are meant to be added.
 */
#ifndef PM_CLI_CLIENT_H
#define PM_CLI_CLIENT_H

#include <signal.h>
#include <stddef.h>
#include <stdint.h>

#include <grpc/status.h>
#include <protobuf-c/protobuf-c.h>

#include "protos/exec.pb-c.h"
#include "protos/executor.pb-c.h"
#include "protos/health.pb-c.h"

typedef struct cli_conn cli_conn;

typedef struct {
    /* "host:port", "unix:/path", or any other gRPC target URI. */
    const char *target;
    /* Bearer token sent as "authorization: Bearer TOKEN" on every call, or NULL. */
    const char *token;
    /* PEM file of root certificates; when set the channel uses TLS, otherwise plaintext. */
    const char *tls_ca_file;
    /* Name the server certificate must carry when it differs from the target's host, or NULL. */
    const char *tls_server_name;
    /* Deadline of each call in milliseconds from its start; 0 means none. */
    uint64_t deadline_ms;
    /*
     * Longest wait between the channel's attempts to reconnect after it lost its server, in
     * milliseconds; 0 keeps gRPC's default (two minutes). A client that means to call again soon
     * after a failure (pmctl watch resuming its stream) lowers it, since a call made while the
     * channel waits fails at once with UNAVAILABLE.
     */
    uint32_t max_reconnect_backoff_ms;
    /*
     * When not NULL, polled about ten times a second while a call runs; once it is nonzero the
     * call is cancelled (the executor then stops the step's commands) and the helper returns
     * -ECANCELED. A signal handler may set it.
     */
    const volatile sig_atomic_t *interrupt;
} cli_config;

/* Largest message accepted from a server (legacy ExecResult carries whole outputs). */
#define CLI_MAX_RECEIVE_BYTES (64u << 20)

/* How a call ended, as the server (or the local gRPC stack) put it. */
typedef struct {
    grpc_status_code code;
    char details[1024];
} cli_status;

/*
 * Creates a channel to cfg->target; nothing is connected until the first call. Returns 0, or
 * -EINVAL / -ENOMEM / a negative errno from reading tls_ca_file, with a message in err.
 */
int cli_connect(const cli_config *cfg, cli_conn **out, char *err, size_t errlen);

/* Destroys the channel. NULL is allowed. */
void cli_close(cli_conn *c);

/* The target the connection was made for, for messages. */
const char *cli_target(const cli_conn *c);

/* "OK", "UNAVAILABLE", ...; "STATUS_<n>" for codes outside the published set. */
const char *cli_status_name(grpc_status_code code);

/*
 * Every call helper below returns:
 *   0            the call ended with status OK (and, for unary calls, *out holds the response);
 *   -EREMOTEIO   the call ended with another status, given in st;
 *   -ECANCELED   the callback asked to stop, or the interrupt flag was raised; the call was
 *                cancelled and st says CANCELLED;
 *   -EBADMSG     a response could not be decoded (or a unary call got none); the call was
 *                cancelled and st says INTERNAL with the reason;
 *   -ENOMEM, -EINVAL, -EIO  local failures, with st set to INTERNAL and the reason.
 * st is always filled in.
 */

/*
 * Calls a server-streaming method ("/package.Service/Method"), sending req and decoding each
 * response as resp_desc. fn sees each message as it arrives (it must not keep it) and returns 0
 * to go on or nonzero to cancel the call. Messages are received one at a time, so a slow callback
 * slows the server rather than piling messages up here.
 */
typedef int (*cli_message_fn)(const ProtobufCMessage *msg, void *arg);
int cli_stream(cli_conn *c, const char *method, const ProtobufCMessage *req,
               const ProtobufCMessageDescriptor *resp_desc, cli_message_fn fn, void *arg,
               cli_status *st);

/*
 * Calls a unary method. On success *out is the decoded response, to be released with
 * protobuf_c_message_free_unpacked(*out, NULL); otherwise *out is NULL.
 */
int cli_unary(cli_conn *c, const char *method, const ProtobufCMessage *req,
              const ProtobufCMessageDescriptor *resp_desc, ProtobufCMessage **out, cli_status *st);

/* /pm.executor.v1.Executor/Run: fn sees each RunEvent in order; nonzero from fn cancels. */
typedef int (*cli_run_event_fn)(const Pm__Executor__V1__RunEvent *ev, void *arg);
int cli_run(cli_conn *c, const Pm__Executor__V1__RunRequest *req, cli_run_event_fn fn, void *arg,
            cli_status *st);

/* /pm.executor.v1.Executor/Info. Free *out with pm__executor__v1__info_response__free_unpacked. */
int cli_info(cli_conn *c, Pm__Executor__V1__InfoResponse **out, cli_status *st);

/* /grpc.health.v1.Health/Check for service ("" for the server as a whole). */
int cli_health_check(cli_conn *c, const char *service,
                     Grpc__Health__V1__HealthCheckResponse__ServingStatus *out, cli_status *st);

/* The name of a serving status: "SERVING", "NOT_SERVING", ... */
const char *cli_serving_status_name(Grpc__Health__V1__HealthCheckResponse__ServingStatus s);

/*
 * /exec.ExecService/ExecuteCommands, the original project's unary call. Free *out with
 * exec__exec_result__free_unpacked.
 */
int cli_execute_commands(cli_conn *c, const char *const *commands, size_t n, Exec__ExecResult **out,
                         cli_status *st);

#endif

/*
 * rpc: the plumbing both daemons share. Logging in key=value or JSON lines, flags that can also be
 * set from PM_ environment variables, completion-queue dispatch through embedded tags, byte-buffer
 * and metadata helpers, listening-address policy (loopback, TLS, token), the catch-all handler that
 * answers unknown methods UNIMPLEMENTED, and the grpc.health.v1 service.
 */
#ifndef PM_RPC_H
#define PM_RPC_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <grpc/grpc.h>

#define PM_VERSION "0.1.0"

/* ---- logging ---------------------------------------------------------------------------- */

typedef enum { RPC_LOG_TEXT = 0, RPC_LOG_JSON = 1 } rpc_log_format;

/* Sets the component name written on every line and the line format. */
void rpc_log_init(const char *component, rpc_log_format format);

/* Parses "text"/"kv" or "json"; returns 0 or -EINVAL. */
int rpc_log_format_parse(const char *s, rpc_log_format *out);

/* A daemon's start: parses format and calls rpc_log_init; on a bad format prints
 * "PROG: --log-format must be text or json" and returns -EINVAL. */
int rpc_log_setup(const char *prog, const char *component, const char *format);

/*
 * Writes one line to stderr: level, event, then the fields formatted from fmt, which must be a
 * list of key=value pairs separated by single spaces; a value with spaces must be quoted with
 * double quotes (rpc_log_quote helps). In JSON format the pairs become members of one object.
 */
void rpc_log(const char *level, const char *event, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Copies s into buf as a double-quoted value safe for rpc_log; returns buf. */
const char *rpc_log_quote(char *buf, size_t size, const char *s);

/* ---- flags ------------------------------------------------------------------------------ */

typedef enum { RPC_FLAG_STRING, RPC_FLAG_UINT, RPC_FLAG_BOOL } rpc_flag_type;

/*
 * One command-line flag "--name VALUE" (or "--name=VALUE"; a bool flag takes no value), also
 * settable by the environment variable PM_NAME (upper case, '-' as '_'). dst points to a
 * const char *, a uint64_t or a bool according to type, and holds the default beforehand.
 *
 * A uint value is decimal digits with an optional binary suffix: K or k (x 1024), M (x 1024^2)
 * or G (x 1024^3), so "64K" is 65536 and "1G" is 1073741824. Lower-case m and g are refused, lest
 * "5m" on a millisecond flag be taken for minutes. A value that does not fit in 64 bits is an
 * error, never wrapped. A bool value is true/yes/1 or false/no/0.
 */
typedef struct {
    const char *name;
    rpc_flag_type type;
    void *dst;
    const char *help;
} rpc_flag;

/*
 * Applies environment variables, then argv. Stops at "--" or at the first argument that is not a
 * flag; *rest is set to the index of the first argument after the flags (after "--" when given).
 * Returns 0, 1 when --help or -h was given, or -EINVAL with a message in err.
 */
int rpc_flags_parse(const rpc_flag *flags, size_t n, int argc, char **argv, int *rest, char *err,
                    size_t errlen);

/* The flags every daemon's server takes, for a config struct with these members. */
#define RPC_SERVER_FLAG_ROWS(c)                                                                    \
    {"token-file", RPC_FLAG_STRING, &(c)->token_file,                                              \
     "file holding the bearer token every call must carry (health excepted)"},                     \
        {"tls-cert", RPC_FLAG_STRING, &(c)->tls_cert, "PEM server certificate chain"},             \
        {"tls-key", RPC_FLAG_STRING, &(c)->tls_key, "PEM server private key"},                     \
        {"insecure", RPC_FLAG_BOOL, &(c)->insecure,                                                \
         "allow a non-loopback address without TLS or token"},                                     \
    {                                                                                              \
        "log-format", RPC_FLAG_STRING, &(c)->log_format, "text (key=value) or json"                \
    }

/*
 * Prints the usage text: synopsis, then each flag with its variable, default and help, and a note
 * on the size suffixes when there is a uint flag. A uint default that is an exact multiple of 1024
 * is shown with its suffix (4M). A uint flag holding UINT64_MAX is shown without a default: a
 * caller uses that as "not given" for a default derived from other flags, which its help states.
 */
void rpc_flags_usage(FILE *out, const char *synopsis, const rpc_flag *flags, size_t n);

/* ---- completion-queue dispatch ---------------------------------------------------------- */

/*
 * Every tag passed to gRPC points to one of these, embedded in the object the operation belongs
 * to; the loop calls fn with the event's success flag.
 */
typedef struct rpc_tag {
    void (*fn)(struct rpc_tag *tag, bool ok);
} rpc_tag;

#define rpc_container_of(ptr, type, member) ((type *)((char *)(ptr)-offsetof(type, member)))

/* Runs the loop until the queue is shut down and drained. */
void rpc_cq_run(grpc_completion_queue *cq);

/* ---- buffers, metadata, files ----------------------------------------------------------- */

/* Copies a received byte buffer into one malloc'd block; returns 0 or -ENOMEM. */
int rpc_bb_flatten(grpc_byte_buffer *bb, uint8_t **data, size_t *len);

/* Wraps bytes into a new byte buffer (copied). */
grpc_byte_buffer *rpc_bb_from(const void *data, size_t len);

/* Returns the first value of key in md, or NULL. */
const grpc_slice *rpc_md_get(const grpc_metadata_array *md, const char *key);

/* True when md carries "authorization: Bearer <token>"; compared in constant time. */
bool rpc_token_ok(const grpc_metadata_array *md, const char *token);

/* Reads a whole file of at most max bytes, NUL-terminated; trailing newlines are stripped when
 * trim is set. Returns 0 or a negative errno with err set. */
int rpc_read_file(const char *path, size_t max, bool trim, char **out, size_t *len, char *err,
                  size_t errlen);

/*
 * Credentials of a client channel: TLS verified against the PEM certificates in ca_file, or
 * plaintext when ca_file is NULL. A file that cannot be read or holds no PEM certificate is
 * refused here, with err naming it, rather than at the first handshake. grpc_init must have been
 * called. Returns 0 with *out set (release with grpc_channel_credentials_release), or a negative
 * errno.
 */
int rpc_client_credentials(const char *ca_file, grpc_channel_credentials **out, char *err,
                           size_t errlen);

/* "OK", "UNAVAILABLE", ...; "STATUS_<n>" for codes outside the published set. */
const char *rpc_status_name(grpc_status_code code);

/* Reads a bearer token from path (NULL: none, *out stays NULL) for flag --FLAG; an unreadable or
 * empty file prints "PROG: --FLAG ..." and returns -EINVAL. */
int rpc_read_token(const char *prog, const char *flag, const char *path, char **out);

/* Monotonic clock in microseconds. */
uint64_t rpc_now_us(void);

/* ---- listening -------------------------------------------------------------------------- */

typedef struct {
    const char *listen;   /* "unix:/path", "host:port" */
    const char *tls_cert; /* PEM files; both or neither */
    const char *tls_key;
    const char *token; /* bearer token, already read from its file, or NULL */
    bool insecure;     /* explicit consent to plaintext without a token off loopback */
} rpc_listen_config;

/* True for unix: addresses and for 127.0.0.0/8, ::1 and localhost. */
bool rpc_addr_is_local(const char *addr);

/*
 * Applies the listening policy (a non-loopback address needs TLS, a token or insecure) and binds
 * the port with the right credentials. Returns 0 or -EINVAL/-EADDRINUSE with err set.
 */
int rpc_listen(grpc_server *server, const rpc_listen_config *cfg, char *err, size_t errlen);

/* ---- shared services -------------------------------------------------------------------- */

/* Posts n catch-all request_call slots answering UNIMPLEMENTED; call after grpc_server_start. */
void rpc_unimplemented_start(grpc_server *server, grpc_completion_queue *cq, int n);

typedef struct rpc_health rpc_health;

/* Registers grpc.health.v1.Health on server (before grpc_server_start). services is a
 * NULL-terminated list of the service names reported SERVING besides "". */
rpc_health *rpc_health_register(grpc_server *server, const char *const *services);

/* Starts answering (after grpc_server_start). */
void rpc_health_start(rpc_health *h, grpc_completion_queue *cq);

/* Switches every service to NOT_SERVING and finishes the Watch streams (on shutdown). */
void rpc_health_shutdown(rpc_health *h);

/* Frees it; only after the completion queue has been drained. */
void rpc_health_destroy(rpc_health *h);

/* ---- client calls ----------------------------------------------------------------------- */

/*
 * Writes the opening ops of a client call into ops (room for 6): SEND_INITIAL_METADATA with the
 * n_md entries of md (none when 0), SEND_MESSAGE req, SEND_CLOSE_FROM_CLIENT, RECV_INITIAL_METADATA
 * into md_init, then RECV_MESSAGE into *recv unless recv is NULL. Returns how many it wrote.
 */
size_t rpc_client_open_ops(grpc_op *ops, grpc_metadata *md, size_t n_md, grpc_byte_buffer *req,
                           grpc_metadata_array *md_init, grpc_byte_buffer **recv);

/* Writes one RECV_STATUS_ON_CLIENT op into *op. */
void rpc_client_status_op(grpc_op *op, grpc_metadata_array *md_trail, grpc_status_code *status,
                          grpc_slice *details);

/* Sends the usual unary reply: initial metadata, message (may be NULL) and status, with tag. */
grpc_call_error rpc_send_unary(grpc_call *call, grpc_byte_buffer *msg, grpc_status_code code,
                               const char *details, rpc_tag *tag);

/* The last batch of a server call: initial metadata when send_md, an optional message (still the
 * caller's to destroy after the tag returns), and the status. */
grpc_call_error rpc_send_final(grpc_call *call, bool send_md, grpc_byte_buffer *msg,
                               grpc_status_code code, const char *details, rpc_tag *tag);

/* Sends just a status (and initial metadata unless already sent), with tag. */
grpc_call_error rpc_send_status(grpc_call *call, bool initial_md_sent, grpc_status_code code,
                                const char *details, rpc_tag *tag);

/* Starts RECV_CLOSE_ON_SERVER, which every accepted call needs at once; *cancelled is set when
 * the client cancelled or the deadline passed (the event's success flag does not say). */
grpc_call_error rpc_recv_close(grpc_call *call, int *cancelled, rpc_tag *tag);

#endif

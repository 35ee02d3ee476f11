/*
 * Small pieces of gRPC C core usage that every server here repeats: the completion-queue loop,
 * byte buffers, metadata, the bearer token, reading key material, and the listening policy.
 */
#include "rpc/rpc.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <grpc/byte_buffer_reader.h>
#include <grpc/grpc_security.h>
#include <grpc/slice.h>

void rpc_cq_run(grpc_completion_queue *cq)
{
    for (;;) {
        grpc_event ev = grpc_completion_queue_next(cq, gpr_inf_future(GPR_CLOCK_MONOTONIC), NULL);
        if (ev.type == GRPC_QUEUE_SHUTDOWN)
            return;
        if (ev.type != GRPC_OP_COMPLETE)
            continue;
        rpc_tag *tag = ev.tag;
        tag->fn(tag, ev.success != 0);
    }
}

int rpc_bb_flatten(grpc_byte_buffer *bb, uint8_t **data, size_t *len)
{
    grpc_byte_buffer_reader r;
    if (!grpc_byte_buffer_reader_init(&r, bb))
        return -EINVAL;
    size_t total = grpc_byte_buffer_length(bb);
    uint8_t *buf = malloc(total ? total : 1);
    if (!buf) {
        grpc_byte_buffer_reader_destroy(&r);
        return -ENOMEM;
    }
    size_t o = 0;
    grpc_slice s;
    while (grpc_byte_buffer_reader_next(&r, &s)) {
        size_t n = GRPC_SLICE_LENGTH(s);
        memcpy(buf + o, GRPC_SLICE_START_PTR(s), n);
        o += n;
        grpc_slice_unref(s);
    }
    grpc_byte_buffer_reader_destroy(&r);
    *data = buf;
    *len = o;
    return 0;
}

grpc_byte_buffer *rpc_bb_from(const void *data, size_t len)
{
    grpc_slice s = grpc_slice_from_copied_buffer(data, len);
    grpc_byte_buffer *bb = grpc_raw_byte_buffer_create(&s, 1);
    grpc_slice_unref(s);
    return bb;
}

const grpc_slice *rpc_md_get(const grpc_metadata_array *md, const char *key)
{
    size_t klen = strlen(key);
    for (size_t i = 0; i < md->count; i++) {
        const grpc_slice *k = &md->metadata[i].key;
        if (GRPC_SLICE_LENGTH(*k) == klen && !memcmp(GRPC_SLICE_START_PTR(*k), key, klen))
            return &md->metadata[i].value;
    }
    return NULL;
}

bool rpc_token_ok(const grpc_metadata_array *md, const char *token)
{
    const grpc_slice *v = rpc_md_get(md, "authorization");
    if (!v)
        return false;
    static const char prefix[] = "Bearer ";
    size_t plen = sizeof prefix - 1, tlen = strlen(token), vlen = GRPC_SLICE_LENGTH(*v);
    const unsigned char *p = GRPC_SLICE_START_PTR(*v);
    if (vlen != plen + tlen || memcmp(p, prefix, plen) != 0)
        return false;
    /* Constant time over the token, so its bytes cannot be guessed one by one from timings. */
    unsigned char diff = 0;
    for (size_t i = 0; i < tlen; i++)
        diff |= (unsigned char)(p[plen + i] ^ (unsigned char)token[i]);
    return diff == 0;
}

int rpc_read_file(const char *path, size_t max, bool trim, char **out, size_t *len, char *err,
                  size_t errlen)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        int e = errno;
        snprintf(err, errlen, "%s: %s", path, strerror(e));
        return -e;
    }
    char *buf = malloc(max + 1);
    size_t o = 0;
    int rc = 0;
    if (!buf) {
        rc = -ENOMEM;
        snprintf(err, errlen, "%s: out of memory", path);
        goto fail;
    }
    for (;;) {
        ssize_t r = read(fd, buf + o, max + 1 - o);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            rc = -errno;
            snprintf(err, errlen, "%s: %s", path, strerror(errno));
            goto fail;
        }
        if (r == 0)
            break;
        o += (size_t)r;
        if (o > max) {
            rc = -EFBIG;
            snprintf(err, errlen, "%s: larger than %zu bytes", path, max);
            goto fail;
        }
    }
    while (trim && o > 0 && (buf[o - 1] == '\n' || buf[o - 1] == '\r'))
        o--;
    buf[o] = '\0';
    close(fd);
    *out = buf;
    if (len)
        *len = o;
    return 0;
fail:
    free(buf);
    close(fd);
    return rc;
}

int rpc_client_credentials(const char *ca_file, grpc_channel_credentials **out, char *err,
                           size_t errlen)
{
    *out = NULL;
    if (!ca_file) {
        *out = grpc_insecure_credentials_create();
        return 0;
    }
    char *pem = NULL;
    int rc = rpc_read_file(ca_file, 1 << 20, false, &pem, NULL, err, errlen);
    if (rc < 0)
        return rc;
    if (!strstr(pem, "-----BEGIN CERTIFICATE-----")) {
        snprintf(err, errlen, "%s: no PEM certificate (-----BEGIN CERTIFICATE-----) in it",
                 ca_file);
        free(pem);
        return -EINVAL;
    }
    *out = grpc_ssl_credentials_create(pem, NULL, NULL, NULL);
    free(pem);
    if (!*out) {
        snprintf(err, errlen, "%s: gRPC refused these certificates", ca_file);
        return -EINVAL;
    }
    return 0;
}

uint64_t rpc_now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

bool rpc_addr_is_local(const char *addr)
{
    if (!strncmp(addr, "unix:", 5) || !strncmp(addr, "unix-abstract:", 14))
        return true;
    if (!strncmp(addr, "ipv4:", 5) || !strncmp(addr, "ipv6:", 5))
        addr += 5;
    if (!strncmp(addr, "127.", 4) || !strncmp(addr, "localhost:", 10) ||
        !strncmp(addr, "[::1]:", 6))
        return true;
    return false;
}

int rpc_listen(grpc_server *server, const rpc_listen_config *cfg, char *err, size_t errlen)
{
    bool tls = cfg->tls_cert || cfg->tls_key;
    if (tls && !(cfg->tls_cert && cfg->tls_key)) {
        snprintf(err, errlen, "--tls-cert and --tls-key go together");
        return -EINVAL;
    }
    if (!rpc_addr_is_local(cfg->listen) && !tls && !cfg->token && !cfg->insecure) {
        snprintf(err, errlen,
                 "refusing to listen on %s without protection: it is not loopback or a Unix "
                 "socket; give --tls-cert/--tls-key, --token-file, or --insecure",
                 cfg->listen);
        return -EINVAL;
    }
    grpc_server_credentials *creds;
    if (tls) {
        char *cert = NULL, *key = NULL;
        int rc = rpc_read_file(cfg->tls_cert, 1 << 20, false, &cert, NULL, err, errlen);
        if (rc == 0)
            rc = rpc_read_file(cfg->tls_key, 1 << 20, false, &key, NULL, err, errlen);
        if (rc < 0) {
            free(cert);
            return rc;
        }
        grpc_ssl_pem_key_cert_pair pair = {.private_key = key, .cert_chain = cert};
        creds = grpc_ssl_server_credentials_create_ex(
            NULL, &pair, 1, GRPC_SSL_DONT_REQUEST_CLIENT_CERTIFICATE, NULL);
        free(cert);
        free(key);
    } else {
        creds = grpc_insecure_server_credentials_create();
    }
    int port = grpc_server_add_http2_port(server, cfg->listen, creds);
    grpc_server_credentials_release(creds);
    if (port == 0) {
        snprintf(err, errlen, "cannot listen on %s (address in use, bad address, or bad TLS files)",
                 cfg->listen);
        return -EADDRINUSE;
    }
    return 0;
}

grpc_call_error rpc_send_final(grpc_call *call, bool send_md, grpc_byte_buffer *msg,
                               grpc_status_code code, const char *details, rpc_tag *tag)
{
    grpc_op ops[3];
    size_t n = 0;
    grpc_slice d = grpc_slice_from_copied_string(details ? details : "");
    memset(ops, 0, sizeof ops);
    if (send_md)
        ops[n++].op = GRPC_OP_SEND_INITIAL_METADATA;
    if (msg) {
        ops[n].op = GRPC_OP_SEND_MESSAGE;
        ops[n++].data.send_message.send_message = msg;
    }
    ops[n].op = GRPC_OP_SEND_STATUS_FROM_SERVER;
    ops[n].data.send_status_from_server.status = code;
    ops[n++].data.send_status_from_server.status_details = &d;
    grpc_call_error e = grpc_call_start_batch(call, ops, n, tag, NULL);
    grpc_slice_unref(d);
    return e;
}

grpc_call_error rpc_send_unary(grpc_call *call, grpc_byte_buffer *msg, grpc_status_code code,
                               const char *details, rpc_tag *tag)
{
    return rpc_send_final(call, true, msg, code, details, tag);
}

grpc_call_error rpc_send_status(grpc_call *call, bool initial_md_sent, grpc_status_code code,
                                const char *details, rpc_tag *tag)
{
    return rpc_send_final(call, !initial_md_sent, NULL, code, details, tag);
}

grpc_call_error rpc_recv_close(grpc_call *call, int *cancelled, rpc_tag *tag)
{
    grpc_op op;
    memset(&op, 0, sizeof op);
    op.op = GRPC_OP_RECV_CLOSE_ON_SERVER;
    op.data.recv_close_on_server.cancelled = cancelled;
    return grpc_call_start_batch(call, &op, 1, tag, NULL);
}

const char *rpc_status_name(grpc_status_code code)
{
    static const char *const names[] = {
        [GRPC_STATUS_OK] = "OK",
        [GRPC_STATUS_CANCELLED] = "CANCELLED",
        [GRPC_STATUS_UNKNOWN] = "UNKNOWN",
        [GRPC_STATUS_INVALID_ARGUMENT] = "INVALID_ARGUMENT",
        [GRPC_STATUS_DEADLINE_EXCEEDED] = "DEADLINE_EXCEEDED",
        [GRPC_STATUS_NOT_FOUND] = "NOT_FOUND",
        [GRPC_STATUS_ALREADY_EXISTS] = "ALREADY_EXISTS",
        [GRPC_STATUS_PERMISSION_DENIED] = "PERMISSION_DENIED",
        [GRPC_STATUS_RESOURCE_EXHAUSTED] = "RESOURCE_EXHAUSTED",
        [GRPC_STATUS_FAILED_PRECONDITION] = "FAILED_PRECONDITION",
        [GRPC_STATUS_ABORTED] = "ABORTED",
        [GRPC_STATUS_OUT_OF_RANGE] = "OUT_OF_RANGE",
        [GRPC_STATUS_UNIMPLEMENTED] = "UNIMPLEMENTED",
        [GRPC_STATUS_INTERNAL] = "INTERNAL",
        [GRPC_STATUS_UNAVAILABLE] = "UNAVAILABLE",
        [GRPC_STATUS_DATA_LOSS] = "DATA_LOSS",
        [GRPC_STATUS_UNAUTHENTICATED] = "UNAUTHENTICATED",
    };
    /* A server may send any number; name the unknown ones rather than index past the table. */
    static _Thread_local char other[32];
    if ((int)code >= 0 && (size_t)code < sizeof names / sizeof names[0] && names[code])
        return names[code];
    snprintf(other, sizeof other, "STATUS_%d", (int)code);
    return other;
}

int rpc_read_token(const char *prog, const char *flag, const char *path, char **out)
{
    char err[300];
    *out = NULL;
    if (!path)
        return 0;
    if (rpc_read_file(path, 4096, true, out, NULL, err, sizeof err) < 0) {
        fprintf(stderr, "%s: --%s %s\n", prog, flag, err);
        return -EINVAL;
    }
    if (!(*out)[0]) {
        fprintf(stderr, "%s: --%s %s is empty\n", prog, flag, path);
        free(*out);
        *out = NULL;
        return -EINVAL;
    }
    return 0;
}

size_t rpc_client_open_ops(grpc_op *ops, grpc_metadata *md, size_t n_md, grpc_byte_buffer *req,
                           grpc_metadata_array *md_init, grpc_byte_buffer **recv)
{
    size_t n = recv ? 5 : 4;
    memset(ops, 0, n * sizeof *ops);
    ops[0].op = GRPC_OP_SEND_INITIAL_METADATA;
    ops[0].data.send_initial_metadata.count = n_md;
    ops[0].data.send_initial_metadata.metadata = n_md ? md : NULL;
    ops[1].op = GRPC_OP_SEND_MESSAGE;
    ops[1].data.send_message.send_message = req;
    ops[2].op = GRPC_OP_SEND_CLOSE_FROM_CLIENT;
    ops[3].op = GRPC_OP_RECV_INITIAL_METADATA;
    ops[3].data.recv_initial_metadata.recv_initial_metadata = md_init;
    if (recv) {
        ops[4].op = GRPC_OP_RECV_MESSAGE;
        ops[4].data.recv_message.recv_message = recv;
    }
    return n;
}

void rpc_client_status_op(grpc_op *op, grpc_metadata_array *md_trail, grpc_status_code *status,
                          grpc_slice *details)
{
    memset(op, 0, sizeof *op);
    op->op = GRPC_OP_RECV_STATUS_ON_CLIENT;
    op->data.recv_status_on_client.trailing_metadata = md_trail;
    op->data.recv_status_on_client.status = status;
    op->data.recv_status_on_client.status_details = details;
}

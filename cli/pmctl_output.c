/*
 * pmctl output: how events and results reach the user. Raw stdout/stderr chunks are written the
 * moment they arrive, or each run event becomes one JSON line for scripts; in text mode a command's
 * exit is summarised on stderr (progress lines, or notes on timeouts, signals and errors). Also
 * maps results to pmctl's exit code: a command's own code, 128+N for a signal, 124 for a timeout
 * or deadline, and the code for a failed or interrupted call.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "cli/pmctl.h"

/* The exit code for a call that did not end with OK, having said why. */
int call_failed(const cli_conn *c, int rc, const cli_status *st)
{
    return call_failed_as(cli_target(c), cli_target(c), rc, st);
}

int call_failed_as(const char *what, const char *target, int rc, const cli_status *st)
{
    if (rc == -ECANCELED && interrupted) {
        fprintf(stderr, "pmctl: interrupted (%s); the call to %s was cancelled\n",
                strsignal(interrupted), target);
        return 128 + interrupted;
    }
    /* The one format every subcommand uses. */
    fprintf(stderr, "pmctl: %s: %s: %s\n", what, cli_status_name(st->code),
            st->details[0] ? st->details : "(no details)");
    /* A deadline is a time limit on the command, so it ends as timeout(1) would. */
    if (st->code == GRPC_STATUS_DEADLINE_EXCEEDED)
        return EXIT_TIMEOUT;
    return EXIT_FAIL;
}

/* ---- writing output --------------------------------------------------------------------- */

int write_all(int fd, const void *data, size_t len)
{
    const char *p = data;
    while (len > 0) {
        ssize_t n = write(fd, p, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return -errno;
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

void json_string(FILE *f, const char *s)
{
    fputc('"', f);
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\')
            fprintf(f, "\\%c", c);
        else if (c == '\n')
            fputs("\\n", f);
        else if (c == '\t')
            fputs("\\t", f);
        else if (c < 0x20 || c == 0x7f)
            fprintf(f, "\\u%04x", c);
        else
            fputc(c, f);
    }
    fputc('"', f);
}

void json_base64(FILE *f, const uint8_t *p, size_t n)
{
    static const char tab[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    fputc('"', f);
    for (size_t i = 0; i < n; i += 3) {
        uint32_t v = (uint32_t)p[i] << 16;
        if (i + 1 < n)
            v |= (uint32_t)p[i + 1] << 8;
        if (i + 2 < n)
            v |= p[i + 2];
        fputc(tab[(v >> 18) & 63], f);
        fputc(tab[(v >> 12) & 63], f);
        fputc(i + 1 < n ? tab[(v >> 6) & 63] : '=', f);
        fputc(i + 2 < n ? tab[v & 63] : '=', f);
    }
    fputc('"', f);
}

/* Ends a JSON line and pushes it out at once, so a script sees each event as it happens. */
int json_end_line(void)
{
    errno = 0;
    fputs("}\n", stdout);
    if (fflush(stdout) != 0 || ferror(stdout))
        return errno ? -errno : -EIO;
    return 0;
}

void format_us(char *buf, size_t size, uint64_t us)
{
    if (us < 1000)
        snprintf(buf, size, "%" PRIu64 "us", us);
    else if (us < 1000000)
        snprintf(buf, size, "%.1fms", (double)us / 1e3);
    else
        snprintf(buf, size, "%.2fs", (double)us / 1e6);
}

/* The code pmctl exits with for a command, as a shell would report it. */
static int exit_code_of(const Pm__Executor__V1__Exited *x)
{
    if (x->timed_out)
        return EXIT_TIMEOUT;
    if (x->signal > 0)
        return 128 + (x->signal & 0x7f);
    if (x->exit_code < 0 || x->exit_code > 255)
        return EXIT_FAIL;
    /* A command that could not start may still carry code 0; it did not succeed. */
    if (x->exit_code == 0 && x->error && x->error[0])
        return EXIT_FAIL;
    return x->exit_code;
}

static void print_progress(const run_view *v, uint32_t i, const Pm__Executor__V1__Exited *x)
{
    char wall[32];
    format_us(wall, sizeof wall, x->wall_us);
    if (x->signal > 0)
        fprintf(stderr, "[%" PRIu32 "/%zu] signal=%d wall=%s", i + 1, v->n, x->signal, wall);
    else
        fprintf(stderr, "[%" PRIu32 "/%zu] exit=%d wall=%s", i + 1, v->n, x->exit_code, wall);
    if (x->timed_out)
        fputs(" timed-out", stderr);
    if (x->cancelled)
        fputs(" cancelled", stderr);
    if (x->truncated)
        fputs(" truncated", stderr);
    if (x->error && x->error[0])
        fprintf(stderr, " error=\"%s\"", x->error);
    fputc('\n', stderr);
}

/* In text mode without progress lines, says what the exit code alone would not. */
static void print_exit_notes(const run_view *v, uint32_t i, const Pm__Executor__V1__Exited *x)
{
    char who[64] = "";
    size_t o = 0;
    if (v->step >= 0)
        o = (size_t)snprintf(who, sizeof who, "step %d: ", v->step + 1);
    if (v->n > 1)
        snprintf(who + o, sizeof who - o, "command %" PRIu32 ": ", i + 1);
    char wall[32];
    format_us(wall, sizeof wall, x->wall_us);
    /* The executor's error text says why it could not start or stopped the command; without
     * one, the flags tell. */
    if (x->error && x->error[0]) {
        fprintf(stderr, "pmctl: %s%s\n", who, x->error);
        if (v->shell_hint)
            fprintf(stderr, "pmctl: hint: the command is one word with spaces in it; to run it "
                            "as a shell line, use --shell 'LINE'\n");
    } else if (x->timed_out) {
        fprintf(stderr, "pmctl: %stimed out after %s\n", who, wall);
    } else if (x->signal > 0) {
        fprintf(stderr, "pmctl: %skilled by signal %d (%s)\n", who, x->signal,
                strsignal(x->signal));
    }
    if (x->truncated)
        fprintf(stderr, "pmctl: %soutput past the executor's cap was dropped\n", who);
}

static int json_run_event(const run_view *v, const Pm__Executor__V1__RunEvent *ev)
{
    FILE *f = stdout;
    fputc('{', f);
    if (v->step >= 0)
        fprintf(f, "\"step\":%d,", v->step);
    fprintf(f, "\"command\":%" PRIu32, ev->command);
    if (ev->started) {
        fprintf(f, ",\"event\":\"started\",\"pid\":%" PRId32, ev->started->pid);
    } else if (ev->stdout_data.len || ev->stderr_data.len) {
        const ProtobufCBinaryData *d = ev->stdout_data.len ? &ev->stdout_data : &ev->stderr_data;
        fprintf(f, ",\"event\":\"%s\",\"data_base64\":", ev->stdout_data.len ? "stdout" : "stderr");
        json_base64(f, d->data, d->len);
    } else if (ev->exited) {
        const Pm__Executor__V1__Exited *x = ev->exited;
        fprintf(f,
                ",\"event\":\"exited\",\"exit_code\":%" PRId32 ",\"signal\":%" PRId32
                ",\"timed_out\":%s,\"cancelled\":%s,\"wall_us\":%" PRIu64 ",\"user_us\":%" PRIu64
                ",\"sys_us\":%" PRIu64 ",\"max_rss_kb\":%" PRIu64 ",\"stdout_bytes\":%" PRIu64
                ",\"stderr_bytes\":%" PRIu64 ",\"truncated\":%s,\"error\":",
                x->exit_code, x->signal, x->timed_out ? "true" : "false",
                x->cancelled ? "true" : "false", x->wall_us, x->user_us, x->sys_us, x->max_rss_kb,
                x->stdout_bytes, x->stderr_bytes, x->truncated ? "true" : "false");
        json_string(f, x->error ? x->error : "");
    } else {
        fputs(",\"event\":\"empty\"", f);
    }
    return json_end_line();
}

int on_run_event(const Pm__Executor__V1__RunEvent *ev, void *arg)
{
    run_view *v = arg;
    int rc = 0;
    if (v->json)
        rc = json_run_event(v, ev);
    else if (ev->stdout_data.len)
        rc = write_all(STDOUT_FILENO, ev->stdout_data.data, ev->stdout_data.len);
    else if (ev->stderr_data.len)
        rc = write_all(STDERR_FILENO, ev->stderr_data.data, ev->stderr_data.len);
    if (rc < 0) {
        /* Nobody reads our output any more: stop the remote command rather than run it blind. */
        v->write_err = -rc;
        return 1;
    }
    if (ev->exited && ev->command < v->n) {
        const Pm__Executor__V1__Exited *x = ev->exited;
        v->exited[ev->command] = true;
        int code = exit_code_of(x);
        if (code != 0 && v->first_fail == 0)
            v->first_fail = code;
        if (v->progress)
            print_progress(v, ev->command, x);
        else if (!v->json)
            print_exit_notes(v, ev->command, x);
    }
    return 0;
}

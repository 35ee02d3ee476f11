/*
 * One line per event on stderr, as key=value pairs or as a JSON object. Lines are written with a
 * single write(2) so lines from different threads never interleave.
 */
#include "rpc/rpc.h"

#include <errno.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static const char *log_component = "pm";
static rpc_log_format log_format = RPC_LOG_TEXT;

void rpc_log_init(const char *component, rpc_log_format format)
{
    log_component = component;
    log_format = format;
}

int rpc_log_format_parse(const char *s, rpc_log_format *out)
{
    if (strcmp(s, "text") == 0 || strcmp(s, "kv") == 0) {
        *out = RPC_LOG_TEXT;
        return 0;
    }
    if (strcmp(s, "json") == 0) {
        *out = RPC_LOG_JSON;
        return 0;
    }
    return -EINVAL;
}

const char *rpc_log_quote(char *buf, size_t size, const char *s)
{
    size_t o = 0;
    if (size < 3)
        return "\"\"";
    buf[o++] = '"';
    for (; *s && o + 2 < size; s++) {
        unsigned char c = (unsigned char)*s;
        /* Quotes, backslashes and control characters would break both line formats. */
        buf[o++] = (c == '"' || c == '\\' || c < 0x20) ? '\'' : (char)c;
    }
    buf[o++] = '"';
    buf[o] = '\0';
    return buf;
}

/* Appends s to the line at *o, JSON-escaped. */
static void json_append(char *line, size_t size, size_t *o, const char *s, size_t n)
{
    for (size_t i = 0; i < n && *o + 7 < size; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '"' || c == '\\') {
            line[(*o)++] = '\\';
            line[(*o)++] = (char)c;
        } else if (c < 0x20) {
            *o += (size_t)snprintf(line + *o, size - *o, "\\u%04x", c);
        } else {
            line[(*o)++] = (char)c;
        }
    }
}

/* Rewrites "k=v k2=\"v 2\"" as JSON members ,"k":"v","k2":"v 2". */
static void json_fields(char *line, size_t size, size_t *o, const char *p)
{
    while (*p) {
        while (*p == ' ')
            p++;
        const char *eq = strchr(p, '=');
        if (!eq)
            break;
        const char *key = p, *v = eq + 1, *end;
        if (*v == '"') {
            v++;
            end = strchr(v, '"');
            if (!end)
                end = v + strlen(v);
            p = *end ? end + 1 : end;
        } else {
            end = strchr(v, ' ');
            if (!end)
                end = v + strlen(v);
            p = end;
        }
        if (*o + 8 >= size)
            break;
        line[(*o)++] = ',';
        line[(*o)++] = '"';
        json_append(line, size, o, key, (size_t)(eq - key));
        line[(*o)++] = '"';
        line[(*o)++] = ':';
        line[(*o)++] = '"';
        json_append(line, size, o, v, (size_t)(end - v));
        line[(*o)++] = '"';
    }
}

void rpc_log(const char *level, const char *event, const char *fmt, ...)
{
    char kv[2048], line[4096];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(kv, sizeof kv, fmt, ap);
    va_end(ap);

    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    struct tm tm;
    gmtime_r(&ts.tv_sec, &tm);
    char when[96];
    snprintf(when, sizeof when, "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ", tm.tm_year + 1900,
             tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, ts.tv_nsec / 1000000);

    size_t o;
    if (log_format == RPC_LOG_JSON) {
        o = (size_t)snprintf(
            line, sizeof line,
            "{\"ts\":\"%s\",\"level\":\"%s\",\"component\":\"%s\",\"event\":\"%s\"", when, level,
            log_component, event);
        if (o >= sizeof line)
            o = sizeof line - 1;
        json_fields(line, sizeof line, &o, kv);
        if (o + 2 >= sizeof line)
            o = sizeof line - 3;
        line[o++] = '}';
    } else {
        o = (size_t)snprintf(line, sizeof line, "ts=%s level=%s component=%s event=%s%s%s", when,
                             level, log_component, event, kv[0] ? " " : "", kv);
        if (o >= sizeof line - 1)
            o = sizeof line - 2;
    }
    line[o++] = '\n';
    ssize_t w;
    do
        w = write(STDERR_FILENO, line, o);
    while (w < 0 && errno == EINTR);
}

int rpc_log_setup(const char *prog, const char *component, const char *format)
{
    rpc_log_format fmt;
    if (rpc_log_format_parse(format, &fmt) < 0) {
        fprintf(stderr, "%s: --log-format must be text or json, got \"%s\"\n", prog, format);
        return -EINVAL;
    }
    rpc_log_init(component, fmt);
    return 0;
}

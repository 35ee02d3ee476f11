/*
 * The workers configuration file: which pools of worker pods exist, how to find their members (a
 * static list or a DNS name), how many tasks each member takes at once, and where each executor
 * of a member listens. It is read at start (a change takes a restart), so a mistake in it is
 * refused with the place and the reason rather than half applied; the caller keeps the
 * configuration it had. The JSON is read by the strict parser of //sandbox/oci:json, which already
 * refuses duplicate member names, so two executors of the same name in a pool cannot get here.
 */
#include "scheduler/workers_config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "sandbox/oci/json.h"

/* The file is small and hand-written; anything bigger is not a workers config. */
#define CONFIG_MAX_BYTES (1u << 20)

/* A host name is at most 253 characters (RFC 1035), an IPv6 literal far fewer. */
#define HOST_MAX 253

/* sun_path holds the socket path and its NUL. */
#define UNIX_PATH_MAX (sizeof(((struct sockaddr_un *)0)->sun_path) - 1)

static void set_err(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void set_err(char *err, size_t errlen, const char *fmt, ...)
{
    if (!err || !errlen)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

/* What a message says about the pool it is in: its name once known, else its position. */
typedef struct {
    char *err;
    size_t errlen;
    size_t index;     /* from 0 */
    const char *name; /* NULL until the pool's name has been read */
} ctx;

/*
 * A problem at a place in the document: "workers config line L column C: pool "ocr": ...".
 * at_key points at the member's name rather than its value. Returns -EINVAL.
 */
static int fail_at(const ctx *c, const sbx_json *v, bool at_key, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int fail_at(const ctx *c, const sbx_json *v, bool at_key, const char *fmt, ...)
{
    if (!c->err || !c->errlen)
        return -EINVAL;
    int n = snprintf(c->err, c->errlen,
                     "workers config line %u column %u: ", at_key ? v->key_line : v->line,
                     at_key ? v->key_col : v->col);
    if (n >= 0 && (size_t)n < c->errlen) {
        int m = c->name ? snprintf(c->err + n, c->errlen - (size_t)n, "pool \"%s\": ", c->name)
                        : snprintf(c->err + n, c->errlen - (size_t)n, "pool %zu: ", c->index + 1);
        if (m >= 0 && (size_t)(n += m) < c->errlen) {
            va_list ap;
            va_start(ap, fmt);
            vsnprintf(c->err + n, c->errlen - (size_t)n, fmt, ap);
            va_end(ap);
        }
    }
    return -EINVAL;
}

static bool key_is(const sbx_json *m, const char *name)
{
    return m->key_len == strlen(name) && memcmp(m->key, name, m->key_len) == 0;
}

/* A string member without NUL bytes (from \u0000), which a C string would silently cut. */
static bool plain_string(const sbx_json *v)
{
    return v->type == SBX_JSON_STRING && strlen(v->u.str.s) == v->u.str.len;
}

static bool name_char(char ch)
{
    return (ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') ||
           ch == '_' || ch == '.' || ch == '-';
}

/* A host name or IPv4 address as written: letters, digits, '.', '-', '_'. */
static bool host_name_ok(const char *s, size_t len)
{
    if (len == 0 || len > HOST_MAX)
        return false;
    for (size_t i = 0; i < len; i++)
        if (!name_char(s[i]))
            return false;
    return true;
}

static bool ipv6_ok(const char *s, size_t len)
{
    char buf[64];
    struct in6_addr a;
    if (len == 0 || len >= sizeof buf)
        return false;
    memcpy(buf, s, len);
    buf[len] = '\0';
    return inet_pton(AF_INET6, buf, &a) == 1;
}

void sch_workers_config_free(sch_workers_config *c)
{
    if (!c)
        return;
    for (size_t i = 0; i < c->n_pools; i++) {
        sch_pool_config *p = &c->pools[i];
        free(p->name);
        for (size_t j = 0; j < p->n_workers; j++)
            free(p->workers[j]);
        free(p->workers);
        free(p->dns);
        for (size_t j = 0; j < p->n_executors; j++) {
            free(p->executors[j].name);
            free(p->executors[j].unix_path);
        }
        free(p->executors);
    }
    free(c->pools);
    free(c);
}

/*
 * One static worker: a host name, an IPv4 address or an IPv6 literal, bare or in brackets (kept
 * bare; sch_exec_target adds them back). "host:port" is refused, since ports come from the
 * executors and a worker written with one is a misunderstanding, not a shorthand.
 */
static int parse_worker(const ctx *c, const sbx_json *v, size_t j, char **out)
{
    if (v->type != SBX_JSON_STRING)
        return fail_at(c, v, false, "worker %zu must be a string, not %s", j + 1,
                       sbx_json_type_name(v->type));
    const char *s = v->u.str.s;
    size_t len = v->u.str.len;
    if (!plain_string(v)) {
        /* The NUL check comes first: inet_pton would stop at it and accept the head. */
        return fail_at(c, v, false, "worker %zu is not a host name or an IP address", j + 1);
    } else if (len >= 2 && s[0] == '[' && s[len - 1] == ']' && ipv6_ok(s + 1, len - 2)) {
        s++;
        len -= 2;
    } else if (!(memchr(s, ':', len) ? ipv6_ok(s, len) : host_name_ok(s, len))) {
        return fail_at(c, v, false,
                       "worker \"%.64s\" is not a host name or an IP address (give the address "
                       "only: ports come from \"executors\")",
                       s);
    }
    if (!(*out = strndup(s, len))) {
        set_err(c->err, c->errlen, "out of memory");
        return -ENOMEM;
    }
    return 0;
}

static int parse_workers(const ctx *c, const sbx_json *v, sch_pool_config *p)
{
    int rc;
    if (v->type != SBX_JSON_ARRAY)
        return fail_at(c, v, false, "\"workers\" must be an array of addresses, not %s",
                       sbx_json_type_name(v->type));
    if (v->u.kids.n > SCH_CONFIG_MAX_WORKERS)
        return fail_at(c, v, false, "%zu workers, more than %d", v->u.kids.n,
                       SCH_CONFIG_MAX_WORKERS);
    if (!(p->workers = calloc(v->u.kids.n ? v->u.kids.n : 1, sizeof *p->workers))) {
        set_err(c->err, c->errlen, "out of memory");
        return -ENOMEM;
    }
    size_t j = 0;
    for (const sbx_json *w = v->u.kids.first; w; w = w->next, j++) {
        if ((rc = parse_worker(c, w, j, &p->workers[j])) < 0)
            return rc;
        p->n_workers = j + 1;
        /* Quadratic, but at most 4096 short strings once per reload; a worker listed twice
         * would get twice the slots. */
        for (size_t k = 0; k < j; k++)
            if (!strcmp(p->workers[k], p->workers[j]))
                return fail_at(c, w, false, "worker \"%.64s\" is listed twice", p->workers[j]);
    }
    return 0;
}

/* A port from a number or a string of digits; 0 when it is neither or out of range. */
static uint16_t port_of(const sbx_json *v)
{
    uint64_t n = 0;
    if (v->type == SBX_JSON_NUMBER) {
        if (sbx_json_get_u64(v, &n) < 0)
            return 0;
    } else {
        const char *s = v->u.str.s;
        size_t len = v->u.str.len;
        if (len == 0 || len > 5)
            return 0;
        for (size_t i = 0; i < len; i++) {
            if (s[i] < '0' || s[i] > '9')
                return 0;
            n = n * 10 + (uint64_t)(s[i] - '0');
        }
    }
    return n >= 1 && n <= 65535 ? (uint16_t)n : 0;
}

static int parse_executor(const ctx *c, const sbx_json *v, sch_exec_ref *e)
{
    if (v->key_len == 0 || strlen(v->key) != v->key_len)
        return fail_at(c, v, true, "an executor name must be non-empty text");
    if (!(e->name = strdup(v->key)))
        goto nomem;
    if (v->type == SBX_JSON_STRING && v->u.str.len >= 5 && !memcmp(v->u.str.s, "unix:", 5)) {
        const char *path = v->u.str.s + 5;
        size_t len = v->u.str.len - 5;
        if (len == 0 || strlen(path) != len)
            return fail_at(c, v, false, "executor \"%.64s\": \"unix:\" needs a socket path",
                           e->name);
        if (len > UNIX_PATH_MAX)
            return fail_at(c, v, false,
                           "executor \"%.64s\": socket path is %zu bytes, more than %zu", e->name,
                           len, UNIX_PATH_MAX);
        if (!(e->unix_path = strdup(path)))
            goto nomem;
        return 0;
    }
    if (v->type == SBX_JSON_NUMBER || v->type == SBX_JSON_STRING) {
        if (!(e->port = port_of(v)))
            return fail_at(c, v, false, "executor \"%.64s\": port must be 1..65535", e->name);
        return 0;
    }
    return fail_at(c, v, false,
                   "executor \"%.64s\" must be a port (1..65535) or \"unix:PATH\", not %s", e->name,
                   sbx_json_type_name(v->type));

nomem:
    set_err(c->err, c->errlen, "out of memory");
    return -ENOMEM;
}

static int parse_executors(const ctx *c, const sbx_json *v, sch_pool_config *p)
{
    int rc;
    if (v->type != SBX_JSON_OBJECT)
        return fail_at(c, v, false, "\"executors\" must be an object, not %s",
                       sbx_json_type_name(v->type));
    /* A pool without executors could run no step at all. */
    if (v->u.kids.n == 0)
        return fail_at(c, v, false, "\"executors\" is empty");
    if (v->u.kids.n > SCH_CONFIG_MAX_EXECUTORS)
        return fail_at(c, v, false, "%zu executors, more than %d", v->u.kids.n,
                       SCH_CONFIG_MAX_EXECUTORS);
    if (!(p->executors = calloc(v->u.kids.n, sizeof *p->executors))) {
        set_err(c->err, c->errlen, "out of memory");
        return -ENOMEM;
    }
    for (const sbx_json *e = v->u.kids.first; e; e = e->next) {
        p->n_executors++;
        if ((rc = parse_executor(c, e, &p->executors[p->n_executors - 1])) < 0)
            return rc;
    }
    return 0;
}

/* An integer member in [min, max]. */
static int get_u32(const ctx *c, const sbx_json *v, const char *what, uint32_t min, uint32_t max,
                   uint32_t *out)
{
    uint64_t n;
    if (sbx_json_get_u64(v, &n) < 0 || n < min || n > max)
        return fail_at(c, v, false, "\"%s\" must be an integer from %u to %u", what, min, max);
    *out = (uint32_t)n;
    return 0;
}

/* One pool into p (zeroed); its name first, so that every later message can carry it. */
static int parse_pool(ctx *c, const sbx_json *v, const sch_workers_config *cfg, sch_pool_config *p)
{
    const sbx_json *workers = NULL, *dns = NULL, *interval = NULL, *execs = NULL;
    int rc;

    if (v->type != SBX_JSON_OBJECT)
        return fail_at(c, v, false, "expected an object, found %s", sbx_json_type_name(v->type));
    const sbx_json *name = sbx_json_get(v, "name");
    if (!name)
        return fail_at(c, v, false, "\"name\" is missing");
    if (!plain_string(name) || name->u.str.len == 0)
        return fail_at(c, name, false, "\"name\" must be a non-empty string");
    for (size_t i = 0; i < name->u.str.len; i++)
        if (!name_char(name->u.str.s[i]))
            return fail_at(c, name, false, "name \"%.64s\" may hold only A-Z a-z 0-9 _ . -",
                           name->u.str.s);
    for (size_t i = 0; i < c->index; i++)
        if (!strcmp(cfg->pools[i].name, name->u.str.s))
            return fail_at(c, name, false, "name \"%.64s\" is already used by pool %zu",
                           name->u.str.s, i + 1);
    if (!(p->name = strdup(name->u.str.s))) {
        set_err(c->err, c->errlen, "out of memory");
        return -ENOMEM;
    }
    c->name = p->name;
    p->resolve_interval_ms = SCH_CONFIG_DEFAULT_RESOLVE_MS;
    p->slots = 1;

    for (const sbx_json *m = v->u.kids.first; m; m = m->next) {
        if (key_is(m, "name"))
            continue;
        if (key_is(m, "workers") || key_is(m, "dns")) {
            if (workers || dns)
                return fail_at(c, m, true, "\"workers\" and \"dns\" are exclusive; give one");
            if (key_is(m, "workers"))
                workers = m;
            else
                dns = m;
        } else if (key_is(m, "resolveIntervalMs")) {
            interval = m;
        } else if (key_is(m, "slots")) {
            if ((rc = get_u32(c, m, "slots", 1, SCH_CONFIG_MAX_SLOTS, &p->slots)) < 0)
                return rc;
        } else if (key_is(m, "executors")) {
            execs = m;
        } else {
            return fail_at(c, m, true,
                           "unknown member \"%.40s\" (a pool has \"name\", \"workers\" or "
                           "\"dns\", \"resolveIntervalMs\", \"slots\" and \"executors\")",
                           m->key);
        }
    }
    if (!workers && !dns)
        return fail_at(c, v, false, "needs \"workers\" (addresses) or \"dns\" (a name)");
    if (workers && (rc = parse_workers(c, workers, p)) < 0)
        return rc;
    if (dns) {
        if (!plain_string(dns) || !host_name_ok(dns->u.str.s, dns->u.str.len))
            return fail_at(c, dns, false, "\"dns\" must be a host name");
        if (!(p->dns = strdup(dns->u.str.s))) {
            set_err(c->err, c->errlen, "out of memory");
            return -ENOMEM;
        }
    }
    if (interval) {
        /* Only a name is re-resolved; an interval beside a static list would be ignored. */
        if (!dns)
            return fail_at(c, interval, true, "\"resolveIntervalMs\" applies only with \"dns\"");
        if ((rc = get_u32(c, interval, "resolveIntervalMs", 1, UINT32_MAX,
                          &p->resolve_interval_ms)) < 0)
            return rc;
    }
    if (!execs)
        return fail_at(c, v, false, "\"executors\" is missing");
    return parse_executors(c, execs, p);
}

int sch_workers_config_parse(const char *text, size_t len, sch_workers_config **out, char *err,
                             size_t errlen)
{
    sbx_json_doc *doc = NULL;
    sch_workers_config *cfg = NULL;
    int rc;

    *out = NULL;
    set_err(err, errlen, "%s", "");
    if (len > CONFIG_MAX_BYTES) {
        set_err(err, errlen, "workers config is %zu bytes, more than %u", len, CONFIG_MAX_BYTES);
        rc = -EFBIG;
        goto fail;
    }
    sbx_json_limits lim = {.max_bytes = CONFIG_MAX_BYTES};
    sbx_json_error jerr;
    if ((rc = sbx_json_parse(text ? text : "", text ? len : 0, &lim, &doc, &jerr)) < 0) {
        set_err(err, errlen, "workers config line %u column %u: %s", jerr.line, jerr.col, jerr.msg);
        goto fail;
    }
    const sbx_json *root = sbx_json_root(doc), *pools = NULL;
    rc = -EINVAL;
    if (root->type != SBX_JSON_OBJECT) {
        set_err(err, errlen, "workers config line %u column %u: expected an object, found %s",
                root->line, root->col, sbx_json_type_name(root->type));
        goto fail;
    }
    for (const sbx_json *m = root->u.kids.first; m; m = m->next) {
        if (!key_is(m, "pools")) {
            set_err(err, errlen,
                    "workers config line %u column %u: unknown member \"%.40s\" (expected "
                    "\"pools\")",
                    m->key_line, m->key_col, m->key);
            goto fail;
        }
        pools = m;
    }
    if (!pools) {
        set_err(err, errlen, "workers config line %u column %u: \"pools\" is missing", root->line,
                root->col);
        goto fail;
    }
    if (pools->type != SBX_JSON_ARRAY) {
        set_err(err, errlen, "workers config line %u column %u: \"pools\" must be an array, not %s",
                pools->line, pools->col, sbx_json_type_name(pools->type));
        goto fail;
    }
    if (pools->u.kids.n > SCH_CONFIG_MAX_POOLS) {
        set_err(err, errlen, "workers config line %u column %u: %zu pools, more than %d",
                pools->line, pools->col, pools->u.kids.n, SCH_CONFIG_MAX_POOLS);
        goto fail;
    }
    if (!(cfg = calloc(1, sizeof *cfg)) ||
        !(cfg->pools = calloc(pools->u.kids.n ? pools->u.kids.n : 1, sizeof *cfg->pools))) {
        rc = -ENOMEM;
        set_err(err, errlen, "out of memory");
        goto fail;
    }
    ctx c = {.err = err, .errlen = errlen};
    for (const sbx_json *v = pools->u.kids.first; v; v = v->next, c.index++) {
        c.name = NULL;
        cfg->n_pools++;
        if ((rc = parse_pool(&c, v, cfg, &cfg->pools[c.index])) < 0)
            goto fail;
    }
    sbx_json_free(doc);
    *out = cfg;
    return 0;

fail:
    sbx_json_free(doc);
    sch_workers_config_free(cfg);
    return rc;
}

int sch_workers_config_load(const char *path, sch_workers_config **out, char *err, size_t errlen)
{
    char *buf = NULL;
    size_t len = 0;
    int fd = -1, rc;

    *out = NULL;
    do
        fd = open(path, O_RDONLY | O_CLOEXEC);
    while (fd < 0 && errno == EINTR);
    if (fd < 0) {
        rc = -errno;
        set_err(err, errlen, "%s: %s", path, strerror(-rc));
        goto fail;
    }
    /* One byte over the limit tells a file at the limit from a bigger one. */
    if (!(buf = malloc(CONFIG_MAX_BYTES + 1))) {
        rc = -ENOMEM;
        set_err(err, errlen, "%s: out of memory", path);
        goto fail;
    }
    while (len <= CONFIG_MAX_BYTES) {
        ssize_t n = read(fd, buf + len, CONFIG_MAX_BYTES + 1 - len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            rc = -errno;
            set_err(err, errlen, "%s: %s", path, strerror(-rc));
            goto fail;
        }
        if (n == 0)
            break;
        len += (size_t)n;
    }
    if (len > CONFIG_MAX_BYTES) {
        rc = -EFBIG;
        set_err(err, errlen, "%s: more than %u bytes", path, CONFIG_MAX_BYTES);
        goto fail;
    }
    char msg[512];
    if ((rc = sch_workers_config_parse(buf, len, out, msg, sizeof msg)) < 0) {
        set_err(err, errlen, "%s: %s", path, msg);
        goto fail;
    }
    rc = 0;

fail:
    free(buf);
    if (fd >= 0)
        close(fd);
    return rc;
}

static bool str_eq(const char *a, const char *b)
{
    return a == b || (a && b && !strcmp(a, b));
}

int sch_workers_config_compatible(const sch_workers_config *cur, const sch_workers_config *next,
                                  char *err, size_t errlen)
{
    if (cur->n_pools != next->n_pools) {
        snprintf(err, errlen, "the number of pools changed (%zu to %zu)", cur->n_pools,
                 next->n_pools);
        return -EINVAL;
    }
    for (size_t i = 0; i < cur->n_pools; i++) {
        const sch_pool_config *a = &cur->pools[i], *b = &next->pools[i];
        const char *why = NULL;
        if (strcmp(a->name, b->name) != 0)
            why = "is renamed or moved (pools keep their names and order)";
        else if ((a->dns == NULL) != (b->dns == NULL))
            why = "changed between a static worker list and DNS";
        else if (a->n_executors != b->n_executors)
            why = "changed its executors";
        for (size_t k = 0; !why && k < a->n_executors; k++) {
            const sch_exec_ref *x = &a->executors[k];
            const sch_exec_ref *y = sch_pool_executor(b, x->name); /* in any order */
            if (!y || x->port != y->port || !str_eq(x->unix_path, y->unix_path))
                why = "changed its executors";
        }
        if (why) {
            snprintf(err, errlen, "pool \"%.100s\" %s", a->name, why);
            return -EINVAL;
        }
    }
    return 0;
}

const sch_exec_ref *sch_pool_executor(const sch_pool_config *p, const char *name)
{
    if (!p || !name)
        return NULL;
    for (size_t i = 0; i < p->n_executors; i++)
        if (!strcmp(p->executors[i].name, name))
            return &p->executors[i];
    return NULL;
}

const char *sch_exec_target(const sch_exec_ref *e, const char *worker, char *buf, size_t size)
{
    if (!size)
        return buf;
    if (!e)
        buf[0] = '\0';
    else if (e->unix_path)
        snprintf(buf, size, "unix:%s", e->unix_path);
    else if (!worker)
        buf[0] = '\0';
    else if (strchr(worker, ':') && worker[0] != '[')
        snprintf(buf, size, "[%s]:%u", worker, (unsigned)e->port);
    else
        snprintf(buf, size, "%s:%u", worker, (unsigned)e->port);
    return buf;
}

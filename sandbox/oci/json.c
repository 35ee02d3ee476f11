/*
 * The strict JSON parser behind sbx_json_parse (see json.h for what it accepts and why). It is a
 * recursive-descent parser over a byte range: one function per grammar rule, each consuming input
 * through a small cursor that also tracks the line, so every error can be placed at the character
 * that broke the rule. Values live in an arena of large blocks freed all at once; the only other
 * allocations are a scratch buffer for decoding strings and, for objects with many members, a hash
 * set to find duplicate keys in linear time (a fuzzer's object with 100,000 members must not turn
 * into 10^10 comparisons).
 */
#include "sandbox/oci/json.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Values are allocated from blocks of this size; a larger string gets a block of its own. */
#define ARENA_BLOCK_SIZE (64 * 1024)
#define ARENA_ALIGN 16

/* Below this many members, duplicate keys are found by a scan of the members so far. */
#define KEYSET_MIN_MEMBERS 16

typedef struct arena_block {
    struct arena_block *next;
    size_t used, cap;
    _Alignas(ARENA_ALIGN) unsigned char data[];
} arena_block;

struct sbx_json_doc {
    arena_block *blocks;
    sbx_json *root;
};

typedef struct {
    const unsigned char *base, *p, *end;
    size_t max_depth, max_nodes, nodes;

    /* Line tracking: the current line's number and first byte, and a cached column. */
    unsigned line;
    const unsigned char *line_start;
    const unsigned char *col_pos;
    unsigned col_val;

    sbx_json_doc *doc;
    sbx_json_error *err;

    /* Scratch buffer for decoding one string at a time. */
    char *buf;
    size_t buf_len, buf_cap;
} parser;

static void *arena_alloc(sbx_json_doc *doc, size_t n)
{
    n = (n + ARENA_ALIGN - 1) & ~(size_t)(ARENA_ALIGN - 1);
    arena_block *b = doc->blocks;
    if (!b || b->cap - b->used < n) {
        size_t cap = n > ARENA_BLOCK_SIZE / 4 ? n : ARENA_BLOCK_SIZE;
        arena_block *nb = malloc(sizeof *nb + cap);
        if (!nb)
            return NULL;
        nb->used = 0;
        nb->cap = cap;
        if (b && cap != ARENA_BLOCK_SIZE) {
            /* A dedicated block goes behind the current one, which keeps its free space. */
            nb->next = b->next;
            b->next = nb;
        } else {
            nb->next = b;
            doc->blocks = nb;
        }
        b = nb;
    }
    void *r = b->data + b->used;
    b->used += n;
    return r;
}

/* The column of q, which lies on the current line; cached so that a scan stays linear. */
static unsigned column_of(parser *ps, const unsigned char *q)
{
    if (q < ps->col_pos) {
        ps->col_pos = ps->line_start;
        ps->col_val = 1;
    }
    for (const unsigned char *c = ps->col_pos; c < q; c++)
        if ((*c & 0xC0) != 0x80) /* continuation bytes are not characters */
            ps->col_val++;
    ps->col_pos = q;
    return ps->col_val;
}

static void pos_of(parser *ps, const unsigned char *q, unsigned *line, unsigned *col)
{
    if (q >= ps->line_start) {
        *line = ps->line;
        *col = column_of(ps, q);
        return;
    }
    /* Not reached by the parser (it reports on the current line), but cheap to get right. */
    unsigned l = 1;
    const unsigned char *ls = ps->base;
    if (ps->end - ps->base >= 3 && !memcmp(ps->base, "\xEF\xBB\xBF", 3))
        ls += 3;
    for (const unsigned char *c = ls; c < q; c++)
        if (*c == '\n') {
            l++;
            ls = c + 1;
        }
    unsigned cc = 1;
    for (const unsigned char *c = ls; c < q; c++)
        if ((*c & 0xC0) != 0x80)
            cc++;
    *line = l;
    *col = cc;
}

static int fail_code(parser *ps, int rc, const unsigned char *q, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int fail_code(parser *ps, int rc, const unsigned char *q, const char *fmt, ...)
{
    if (ps->err) {
        pos_of(ps, q, &ps->err->line, &ps->err->col);
        ps->err->offset = (size_t)(q - ps->base);
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(ps->err->msg, sizeof ps->err->msg, fmt, ap);
        va_end(ap);
    }
    return rc;
}

#define fail(ps, q, ...) fail_code((ps), -EINVAL, (q), __VA_ARGS__)

static bool is_word_char(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
}

/* What stands at q, for "found ..." in messages: a quoted character, or a byte value. */
static const char *describe_char(parser *ps, const unsigned char *q, char *buf, size_t n)
{
    if (q >= ps->end)
        snprintf(buf, n, "end of input");
    else if (*q == '\'')
        snprintf(buf, n, "a single quote");
    else if (*q > 0x20 && *q < 0x7F)
        snprintf(buf, n, "'%c'", *q);
    else
        snprintf(buf, n, "byte 0x%02X", *q);
    return buf;
}

/* The same, but a whole word for letters, so that "True" or "None" is shown as written. */
static const char *describe(parser *ps, const unsigned char *q, char *buf, size_t n)
{
    if (q < ps->end && is_word_char(*q)) {
        size_t len = 0;
        while (q + len < ps->end && is_word_char(q[len]) && len < 24)
            len++;
        snprintf(buf, n, "'%.*s%s'", (int)len, (const char *)q,
                 q + len < ps->end && is_word_char(q[len]) ? "..." : "");
        return buf;
    }
    return describe_char(ps, q, buf, n);
}

/* A hint for mistakes that people bring from other languages, or "". */
static const char *hint(const unsigned char *q, const unsigned char *end)
{
    if (q >= end)
        return "";
    if (*q == '\'')
        return " (JSON strings take double quotes)";
    if (*q == '/')
        return " (JSON has no comments)";
    return "";
}

static void skip_ws(parser *ps)
{
    while (ps->p < ps->end) {
        unsigned char c = *ps->p;
        if (c == '\n') {
            ps->line++;
            ps->line_start = ps->col_pos = ps->p + 1;
            ps->col_val = 1;
        } else if (c != ' ' && c != '\t' && c != '\r') {
            return;
        }
        ps->p++;
    }
}

static int new_node(parser *ps, sbx_json_type type, sbx_json **out)
{
    if (ps->nodes >= ps->max_nodes)
        return fail_code(ps, -EFBIG, ps->p, "more than %zu values in the document", ps->max_nodes);
    sbx_json *v = arena_alloc(ps->doc, sizeof *v);
    if (!v)
        return fail_code(ps, -ENOMEM, ps->p, "out of memory");
    memset(v, 0, sizeof *v);
    ps->nodes++;
    v->type = type;
    pos_of(ps, ps->p, &v->line, &v->col);
    v->offset = (size_t)(ps->p - ps->base);
    *out = v;
    return 0;
}

static int buf_put(parser *ps, const void *data, size_t n)
{
    if (ps->buf_cap - ps->buf_len < n) {
        size_t cap = ps->buf_cap ? ps->buf_cap : 256;
        while (cap - ps->buf_len < n)
            cap *= 2;
        char *nb = realloc(ps->buf, cap);
        if (!nb)
            return fail_code(ps, -ENOMEM, ps->p, "out of memory");
        ps->buf = nb;
        ps->buf_cap = cap;
    }
    memcpy(ps->buf + ps->buf_len, data, n);
    ps->buf_len += n;
    return 0;
}

static int hex4(const unsigned char *q, const unsigned char *end, unsigned *out,
                const unsigned char **bad)
{
    unsigned v = 0;
    for (int i = 0; i < 4; i++) {
        if (q + i >= end) {
            *bad = end;
            return -1;
        }
        unsigned char c = q[i];
        unsigned d;
        if (c >= '0' && c <= '9')
            d = c - '0';
        else if (c >= 'a' && c <= 'f')
            d = c - 'a' + 10;
        else if (c >= 'A' && c <= 'F')
            d = c - 'A' + 10;
        else {
            *bad = q + i;
            return -1;
        }
        v = v << 4 | d;
    }
    *out = v;
    return 0;
}

static int put_utf8(parser *ps, unsigned cp)
{
    unsigned char b[4];
    size_t n;
    if (cp < 0x80) {
        b[0] = (unsigned char)cp;
        n = 1;
    } else if (cp < 0x800) {
        b[0] = (unsigned char)(0xC0 | cp >> 6);
        b[1] = (unsigned char)(0x80 | (cp & 0x3F));
        n = 2;
    } else if (cp < 0x10000) {
        b[0] = (unsigned char)(0xE0 | cp >> 12);
        b[1] = (unsigned char)(0x80 | (cp >> 6 & 0x3F));
        b[2] = (unsigned char)(0x80 | (cp & 0x3F));
        n = 3;
    } else {
        b[0] = (unsigned char)(0xF0 | cp >> 18);
        b[1] = (unsigned char)(0x80 | (cp >> 12 & 0x3F));
        b[2] = (unsigned char)(0x80 | (cp >> 6 & 0x3F));
        b[3] = (unsigned char)(0x80 | (cp & 0x3F));
        n = 4;
    }
    return buf_put(ps, b, n);
}

/* Length of the valid UTF-8 sequence at q (RFC 3629: no overlongs, no surrogates), or 0. */
static size_t utf8_len(const unsigned char *q, const unsigned char *end)
{
    unsigned char c = q[0];
    size_t n;
    unsigned char lo = 0x80, hi = 0xBF; /* allowed range of the second byte */
    if (c >= 0xC2 && c <= 0xDF)
        n = 2;
    else if (c >= 0xE0 && c <= 0xEF) {
        n = 3;
        if (c == 0xE0)
            lo = 0xA0;
        else if (c == 0xED)
            hi = 0x9F;
    } else if (c >= 0xF0 && c <= 0xF4) {
        n = 4;
        if (c == 0xF0)
            lo = 0x90;
        else if (c == 0xF4)
            hi = 0x8F;
    } else
        return 0;
    if ((size_t)(end - q) < n || q[1] < lo || q[1] > hi)
        return 0;
    for (size_t i = 2; i < n; i++)
        if ((q[i] & 0xC0) != 0x80)
            return 0;
    return n;
}

/* An escape sequence at ps->p (which points at the backslash), appended decoded to the buffer. */
static int parse_escape(parser *ps)
{
    const unsigned char *q = ps->p;
    if (q + 1 >= ps->end)
        return fail(ps, ps->end, "end of input inside an escape sequence");
    static const char from[] = "\"\\/bfnrt", to[] = "\"\\/\b\f\n\r\t";
    const char *hit = q[1] ? strchr(from, q[1]) : NULL;
    if (hit) {
        ps->p += 2;
        return buf_put(ps, &to[hit - from], 1);
    }
    if (q[1] != 'u') {
        if (q[1] > 0x20 && q[1] < 0x7F)
            return fail(ps, q,
                        "invalid escape '\\%c' (valid: \\\" \\\\ \\/ \\b \\f \\n \\r \\t \\uXXXX)",
                        q[1]);
        return fail(ps, q, "invalid escape: backslash followed by byte 0x%02X", q[1]);
    }
    unsigned cp, lo;
    const unsigned char *bad;
    if (hex4(q + 2, ps->end, &cp, &bad) < 0) {
        char d[32];
        return fail(ps, bad, "expected 4 hex digits after '\\u', found %s",
                    describe_char(ps, bad, d, sizeof d));
    }
    if (cp >= 0xDC00 && cp <= 0xDFFF)
        return fail(ps, q, "lone low surrogate \\u%04X (it must follow a high surrogate)", cp);
    if (cp >= 0xD800 && cp <= 0xDBFF) {
        /* UTF-16 pairs: characters beyond U+FFFF are written as two escapes. */
        const unsigned char *q2 = q + 6;
        if (q2 + 1 >= ps->end || q2[0] != '\\' || q2[1] != 'u' ||
            hex4(q2 + 2, ps->end, &lo, &bad) || lo < 0xDC00 || lo > 0xDFFF)
            return fail(ps, q,
                        "high surrogate \\u%04X not followed by a low surrogate \\uDC00-\\uDFFF",
                        cp);
        cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
        ps->p += 12;
    } else {
        ps->p += 6;
    }
    return put_utf8(ps, cp);
}

/*
 * A string at ps->p (which points at the opening quote), decoded into the arena; on success
 * *s is NUL-terminated and *len excludes the NUL.
 */
static int parse_string(parser *ps, const char **s, size_t *len)
{
    unsigned sl, sc;
    pos_of(ps, ps->p, &sl, &sc);
    ps->p++;
    ps->buf_len = 0;
    int rc;
    for (;;) {
        if (ps->p >= ps->end)
            return fail(ps, ps->end, "end of input inside a string (it starts at %u:%u)", sl, sc);
        const unsigned char *q = ps->p;
        unsigned char c = *q;
        if (c == '"') {
            ps->p++;
            break;
        }
        if (c == '\\') {
            if ((rc = parse_escape(ps)) < 0)
                return rc;
            continue;
        }
        if (c == '\n')
            return fail(ps, q,
                        "line break inside a string (missing closing '\"'? the string "
                        "starts at %u:%u)",
                        sl, sc);
        if (c < 0x20)
            return fail(ps, q, "control character U+%04X inside a string (write it as an escape)",
                        c);
        /* Copy a run of plain ASCII at once; strings are mostly that. */
        if (c < 0x80) {
            const unsigned char *r = q;
            while (r < ps->end && *r >= 0x20 && *r < 0x80 && *r != '"' && *r != '\\')
                r++;
            if ((rc = buf_put(ps, q, (size_t)(r - q))) < 0)
                return rc;
            ps->p = r;
            continue;
        }
        size_t n = utf8_len(q, ps->end);
        if (!n)
            return fail(ps, q, "invalid UTF-8 (byte 0x%02X) inside a string", c);
        if ((rc = buf_put(ps, q, n)) < 0)
            return rc;
        ps->p += n;
    }
    char *out = arena_alloc(ps->doc, ps->buf_len + 1);
    if (!out)
        return fail_code(ps, -ENOMEM, ps->p, "out of memory");
    if (ps->buf_len)
        memcpy(out, ps->buf, ps->buf_len);
    out[ps->buf_len] = '\0';
    *s = out;
    *len = ps->buf_len;
    return 0;
}

static bool is_digit(const unsigned char *q, const unsigned char *end)
{
    return q < end && *q >= '0' && *q <= '9';
}

static int parse_number(parser *ps, sbx_json **out)
{
    sbx_json *v;
    int rc = new_node(ps, SBX_JSON_NUMBER, &v);
    if (rc < 0)
        return rc;
    const unsigned char *start = ps->p, *q = ps->p, *end = ps->end;
    unsigned flags = 0;
    uint64_t mag = 0;
    char d[32];
    if (*q == '-') {
        flags |= SBX_JSON_NUM_NEGATIVE;
        q++;
        if (!is_digit(q, end))
            return fail(ps, q, "expected a digit after '-', found %s",
                        describe_char(ps, q, d, sizeof d));
    }
    if (*q == '0') {
        if (is_digit(q + 1, end))
            return fail(ps, q, "numbers cannot start with a 0 followed by more digits");
        q++;
    } else {
        for (; is_digit(q, end); q++) {
            unsigned dg = (unsigned)(*q - '0');
            if (mag > (UINT64_MAX - dg) / 10)
                flags |= SBX_JSON_NUM_TOO_BIG;
            else
                mag = mag * 10 + dg;
        }
    }
    if (q < end && *q == '.') {
        flags |= SBX_JSON_NUM_NOT_INT;
        q++;
        if (!is_digit(q, end))
            return fail(ps, q, "expected a digit after '.', found %s",
                        describe_char(ps, q, d, sizeof d));
        while (is_digit(q, end))
            q++;
    }
    if (q < end && (*q == 'e' || *q == 'E')) {
        flags |= SBX_JSON_NUM_NOT_INT;
        q++;
        if (q < end && (*q == '+' || *q == '-'))
            q++;
        if (!is_digit(q, end))
            return fail(ps, q, "expected a digit in the exponent, found %s",
                        describe_char(ps, q, d, sizeof d));
        while (is_digit(q, end))
            q++;
    }
    if (flags & SBX_JSON_NUM_NOT_INT) {
        flags &= ~(unsigned)SBX_JSON_NUM_TOO_BIG;
        mag = 0;
    } else if (flags & SBX_JSON_NUM_TOO_BIG) {
        mag = 0;
    }
    size_t len = (size_t)(q - start);
    char *text = arena_alloc(ps->doc, len + 1);
    if (!text)
        return fail_code(ps, -ENOMEM, ps->p, "out of memory");
    memcpy(text, start, len);
    text[len] = '\0';
    v->u.num.text = text;
    v->u.num.len = len;
    v->u.num.magnitude = mag;
    v->u.num.flags = flags;
    ps->p = q;
    *out = v;
    return 0;
}

static int parse_value(parser *ps, size_t depth, sbx_json **out);

/* A set of an object's member names, for finding duplicates in linear time. */
typedef struct {
    const sbx_json **slot;
    size_t cap, n;
} keyset;

static uint64_t key_hash(const char *s, size_t n)
{
    uint64_t h = 0xcbf29ce484222325ull; /* FNV-1a */
    for (size_t i = 0; i < n; i++)
        h = (h ^ (unsigned char)s[i]) * 0x100000001b3ull;
    return h;
}

static bool same_key(const sbx_json *a, const sbx_json *b)
{
    return a->key_len == b->key_len && !memcmp(a->key, b->key, a->key_len);
}

/* Inserts m; returns the member that already has its name (not inserting m), or NULL. */
static const sbx_json *keyset_insert(keyset *ks, const sbx_json *m)
{
    size_t i = (size_t)key_hash(m->key, m->key_len) & (ks->cap - 1);
    for (; ks->slot[i]; i = (i + 1) & (ks->cap - 1))
        if (same_key(ks->slot[i], m))
            return ks->slot[i];
    ks->slot[i] = m;
    ks->n++;
    return NULL;
}

static int keyset_grow(keyset *ks, size_t cap)
{
    const sbx_json **old = ks->slot;
    size_t oldcap = ks->cap;
    ks->slot = calloc(cap, sizeof *ks->slot);
    if (!ks->slot) {
        ks->slot = old;
        return -ENOMEM;
    }
    ks->cap = cap;
    ks->n = 0;
    for (size_t i = 0; i < oldcap; i++)
        if (old[i])
            keyset_insert(ks, old[i]);
    free(old);
    return 0;
}

/*
 * Adds m, a new member of obj, to the duplicate check. Returns the earlier member with the same
 * name in *dup (NULL if none), or -ENOMEM.
 */
static int check_duplicate(keyset *ks, const sbx_json *obj, const sbx_json *m, const sbx_json **dup)
{
    *dup = NULL;
    if (!ks->slot && obj->u.kids.n < KEYSET_MIN_MEMBERS) {
        for (const sbx_json *k = obj->u.kids.first; k; k = k->next)
            if (same_key(k, m)) {
                *dup = k;
                return 0;
            }
        return 0;
    }
    if (!ks->slot) {
        if (keyset_grow(ks, 4 * KEYSET_MIN_MEMBERS) < 0)
            return -ENOMEM;
        for (const sbx_json *k = obj->u.kids.first; k; k = k->next)
            keyset_insert(ks, k);
    }
    if ((ks->n + 1) * 2 > ks->cap && keyset_grow(ks, ks->cap * 2) < 0)
        return -ENOMEM;
    *dup = keyset_insert(ks, m);
    return 0;
}

static int parse_object(parser *ps, size_t depth, sbx_json **out)
{
    sbx_json *obj, *last = NULL;
    keyset ks = {0};
    char d[32];
    int rc = new_node(ps, SBX_JSON_OBJECT, &obj);
    if (rc < 0)
        return rc;
    ps->p++;
    skip_ws(ps);
    if (ps->p < ps->end && *ps->p == '}') {
        ps->p++;
        *out = obj;
        return 0;
    }
    for (;;) {
        if (ps->p >= ps->end || *ps->p != '"') {
            const char *trail = last && ps->p < ps->end && *ps->p == '}'
                                    ? " (trailing commas are not allowed)"
                                    : hint(ps->p, ps->end);
            rc = fail(ps, ps->p, "expected a string (a member name), found %s%s",
                      describe(ps, ps->p, d, sizeof d), trail);
            goto fail;
        }
        const char *key;
        size_t key_len;
        unsigned kl, kc;
        pos_of(ps, ps->p, &kl, &kc);
        const unsigned char *key_at = ps->p;
        if ((rc = parse_string(ps, &key, &key_len)) < 0)
            goto fail;
        skip_ws(ps);
        if (ps->p >= ps->end || *ps->p != ':') {
            rc = fail(ps, ps->p, "expected ':' after the member name \"%.40s\", found %s", key,
                      describe(ps, ps->p, d, sizeof d));
            goto fail;
        }
        ps->p++;
        sbx_json *v;
        if ((rc = parse_value(ps, depth, &v)) < 0)
            goto fail;
        v->key = key;
        v->key_len = key_len;
        v->key_line = kl;
        v->key_col = kc;
        const sbx_json *dup;
        if (check_duplicate(&ks, obj, v, &dup) < 0) {
            rc = fail_code(ps, -ENOMEM, ps->p, "out of memory");
            goto fail;
        }
        if (dup) {
            /* A reader would have to guess which one counts; a profile must not be a guess. */
            rc = fail(ps, key_at, "duplicate member name \"%.40s\" (first at %u:%u)", key,
                      dup->key_line, dup->key_col);
            goto fail;
        }
        if (last)
            last->next = v;
        else
            obj->u.kids.first = v;
        last = v;
        obj->u.kids.n++;
        skip_ws(ps);
        if (ps->p < ps->end && *ps->p == ',') {
            ps->p++;
            skip_ws(ps);
            continue;
        }
        if (ps->p < ps->end && *ps->p == '}') {
            ps->p++;
            break;
        }
        rc = fail(ps, ps->p, "expected ',' or '}' after an object member, found %s%s",
                  describe(ps, ps->p, d, sizeof d), hint(ps->p, ps->end));
        goto fail;
    }
    free(ks.slot);
    *out = obj;
    return 0;
fail:
    free(ks.slot);
    return rc;
}

static int parse_array(parser *ps, size_t depth, sbx_json **out)
{
    sbx_json *arr, *last = NULL;
    char d[32];
    int rc = new_node(ps, SBX_JSON_ARRAY, &arr);
    if (rc < 0)
        return rc;
    ps->p++;
    skip_ws(ps);
    if (ps->p < ps->end && *ps->p == ']') {
        ps->p++;
        *out = arr;
        return 0;
    }
    for (;;) {
        if (last && ps->p < ps->end && *ps->p == ']')
            return fail(ps, ps->p,
                        "expected a value after ',', found ']' (trailing commas are "
                        "not allowed)");
        sbx_json *v;
        if ((rc = parse_value(ps, depth, &v)) < 0)
            return rc;
        if (last)
            last->next = v;
        else
            arr->u.kids.first = v;
        last = v;
        arr->u.kids.n++;
        skip_ws(ps);
        if (ps->p < ps->end && *ps->p == ',') {
            ps->p++;
            skip_ws(ps);
            continue;
        }
        if (ps->p < ps->end && *ps->p == ']') {
            ps->p++;
            break;
        }
        return fail(ps, ps->p, "expected ',' or ']' after an array element, found %s%s",
                    describe(ps, ps->p, d, sizeof d), hint(ps->p, ps->end));
    }
    *out = arr;
    return 0;
}

static int parse_literal(parser *ps, sbx_json **out)
{
    static const struct {
        const char *word;
        sbx_json_type type;
    } lits[] = {{"true", SBX_JSON_TRUE}, {"false", SBX_JSON_FALSE}, {"null", SBX_JSON_NULL}};
    size_t len = 0;
    while (ps->p + len < ps->end && is_word_char(ps->p[len]))
        len++;
    for (size_t i = 0; i < sizeof lits / sizeof lits[0]; i++) {
        if (strlen(lits[i].word) == len && !memcmp(ps->p, lits[i].word, len)) {
            int rc = new_node(ps, lits[i].type, out);
            if (rc == 0)
                ps->p += len;
            return rc;
        }
    }
    char d[40];
    return fail(ps, ps->p,
                "expected a value, found %s (the JSON literals are true, false and null)",
                describe(ps, ps->p, d, sizeof d));
}

/* A value of any type at ps->p (after whitespace), within `depth` enclosing containers. */
static int parse_value(parser *ps, size_t depth, sbx_json **out)
{
    skip_ws(ps);
    char d[32];
    if (ps->p >= ps->end)
        return fail(ps, ps->p, "expected a value, found end of input");
    unsigned char c = *ps->p;
    if (c == '{' || c == '[') {
        if (depth >= ps->max_depth)
            return fail(ps, ps->p, "nesting deeper than %zu levels", ps->max_depth);
        return c == '{' ? parse_object(ps, depth + 1, out) : parse_array(ps, depth + 1, out);
    }
    if (c == '"') {
        sbx_json *v;
        int rc = new_node(ps, SBX_JSON_STRING, &v);
        if (rc < 0)
            return rc;
        if ((rc = parse_string(ps, &v->u.str.s, &v->u.str.len)) < 0)
            return rc;
        *out = v;
        return 0;
    }
    if (c == '-' || (c >= '0' && c <= '9'))
        return parse_number(ps, out);
    if (is_word_char(c))
        return parse_literal(ps, out);
    return fail(ps, ps->p,
                "expected a value (object, array, string, number, true, false or null), "
                "found %s%s",
                describe(ps, ps->p, d, sizeof d), hint(ps->p, ps->end));
}

int sbx_json_parse(const char *text, size_t len, const sbx_json_limits *limits, sbx_json_doc **out,
                   sbx_json_error *err)
{
    *out = NULL;
    if (err)
        memset(err, 0, sizeof *err);
    parser ps = {0};
    ps.base = ps.p = (const unsigned char *)(text ? text : "");
    ps.end = ps.base + (text ? len : 0);
    ps.line = 1;
    ps.line_start = ps.col_pos = ps.base;
    ps.col_val = 1;
    ps.err = err;
    size_t max_bytes = limits && limits->max_bytes ? limits->max_bytes : SBX_JSON_DEFAULT_MAX_BYTES;
    ps.max_depth = limits && limits->max_depth ? limits->max_depth : SBX_JSON_DEFAULT_MAX_DEPTH;
    ps.max_nodes = limits && limits->max_nodes ? limits->max_nodes : SBX_JSON_DEFAULT_MAX_NODES;
    if (len > max_bytes)
        return fail_code(&ps, -EFBIG, ps.base, "document is %zu bytes, over the limit of %zu", len,
                         max_bytes);
    if (len >= 3 && !memcmp(ps.base, "\xEF\xBB\xBF", 3))
        ps.p = ps.line_start = ps.col_pos = ps.base + 3;

    ps.doc = calloc(1, sizeof *ps.doc);
    if (!ps.doc)
        return fail_code(&ps, -ENOMEM, ps.base, "out of memory");
    int rc;
    skip_ws(&ps);
    if (ps.p >= ps.end) {
        rc = fail(&ps, ps.p, "expected a JSON value, found end of input (the document is empty)");
        goto fail;
    }
    if ((rc = parse_value(&ps, 0, &ps.doc->root)) < 0)
        goto fail;
    skip_ws(&ps);
    if (ps.p < ps.end) {
        char d[32];
        rc = fail(&ps, ps.p, "expected end of input after the top-level value, found %s",
                  describe(&ps, ps.p, d, sizeof d));
        goto fail;
    }
    free(ps.buf);
    *out = ps.doc;
    return 0;
fail:
    free(ps.buf);
    sbx_json_free(ps.doc);
    return rc;
}

const sbx_json *sbx_json_root(const sbx_json_doc *doc)
{
    return doc ? doc->root : NULL;
}

void sbx_json_free(sbx_json_doc *doc)
{
    if (!doc)
        return;
    arena_block *b = doc->blocks;
    while (b) {
        arena_block *next = b->next;
        free(b);
        b = next;
    }
    free(doc);
}

const sbx_json *sbx_json_get(const sbx_json *obj, const char *key)
{
    if (!obj || obj->type != SBX_JSON_OBJECT)
        return NULL;
    size_t n = strlen(key);
    for (const sbx_json *k = obj->u.kids.first; k; k = k->next)
        if (k->key_len == n && !memcmp(k->key, key, n))
            return k;
    return NULL;
}

int sbx_json_get_u64(const sbx_json *v, uint64_t *out)
{
    if (!v || v->type != SBX_JSON_NUMBER ||
        (v->u.num.flags & (SBX_JSON_NUM_NEGATIVE | SBX_JSON_NUM_NOT_INT)))
        return -EINVAL;
    if (v->u.num.flags & SBX_JSON_NUM_TOO_BIG)
        return -ERANGE;
    *out = v->u.num.magnitude;
    return 0;
}

const char *sbx_json_type_name(sbx_json_type t)
{
    switch (t) {
    case SBX_JSON_NULL:
        return "null";
    case SBX_JSON_FALSE:
    case SBX_JSON_TRUE:
        return "boolean";
    case SBX_JSON_NUMBER:
        return "number";
    case SBX_JSON_STRING:
        return "string";
    case SBX_JSON_ARRAY:
        return "array";
    case SBX_JSON_OBJECT:
        return "object";
    }
    return "value";
}

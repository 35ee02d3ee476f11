/*
 * Unit tests of the strict JSON parser: valid documents decode to the expected tree (escapes,
 * surrogate pairs, numbers and their flags, positions), and each kind of malformed document is
 * refused at the exact line and column with the expected message, including the limits (size,
 * depth, values) and duplicate keys in both small and large objects.
 */
#include "sandbox/oci/json.h"

#include <errno.h>

#include "testing/check.h"

typedef struct {
    const char *text;
    size_t len; /* 0: strlen(text) */
    unsigned line, col;
    const char *msg; /* expected message prefix */
} bad_case;

static const bad_case bad_cases[] = {
    {"", 0, 1, 1, "expected a JSON value, found end of input (the document is empty)"},
    {"   \n  ", 0, 2, 3, "expected a JSON value, found end of input (the document is empty)"},
    {"{", 0, 1, 2, "expected a string (a member name), found end of input"},
    {"{\"a\":1,}", 0, 1, 8,
     "expected a string (a member name), found '}' (trailing commas are not allowed)"},
    {"[1,2,]", 0, 1, 6, "expected a value after ',', found ']' (trailing commas are not allowed)"},
    {"[1 2]", 0, 1, 4, "expected ',' or ']' after an array element, found '2'"},
    {"{\"a\":1 \"b\":2}", 0, 1, 8, "expected ',' or '}' after an object member, found '\"'"},
    {"{\"a\" 1}", 0, 1, 6, "expected ':' after the member name \"a\", found '1'"},
    {"{\"a\":}", 0, 1, 6,
     "expected a value (object, array, string, number, true, false or null), "
     "found '}'"},
    {"{'a':1}", 0, 1, 2,
     "expected a string (a member name), found a single quote (JSON strings take double quotes)"},
    {"[tru]", 0, 1, 2,
     "expected a value, found 'tru' (the JSON literals are true, false and null)"},
    {"[True]", 0, 1, 2,
     "expected a value, found 'True' (the JSON literals are true, false and "
     "null)"},
    {"nul", 0, 1, 1, "expected a value, found 'nul'"},
    {"[truex]", 0, 1, 2, "expected a value, found 'truex'"},
    {"[01]", 0, 1, 2, "numbers cannot start with a 0 followed by more digits"},
    {"[-01]", 0, 1, 3, "numbers cannot start with a 0 followed by more digits"},
    {"[1.]", 0, 1, 4, "expected a digit after '.', found ']'"},
    {"[-]", 0, 1, 3, "expected a digit after '-', found ']'"},
    {"-", 0, 1, 2, "expected a digit after '-', found end of input"},
    {"[1e+]", 0, 1, 5, "expected a digit in the exponent, found ']'"},
    {"[1E]", 0, 1, 4, "expected a digit in the exponent, found ']'"},
    {"[.5]", 0, 1, 2,
     "expected a value (object, array, string, number, true, false or null), "
     "found '.'"},
    {"[+1]", 0, 1, 2,
     "expected a value (object, array, string, number, true, false or null), "
     "found '+'"},
    {"[\"a\\x\"]", 0, 1, 4, "invalid escape '\\x' (valid:"},
    {"[\"a\\'\"]", 0, 1, 4, "invalid escape '\\''"},
    {"[\"\\u12G4\"]", 0, 1, 7, "expected 4 hex digits after '\\u', found 'G'"},
    {"[\"\\u12", 0, 1, 7, "expected 4 hex digits after '\\u', found end of input"},
    {"[\"\\", 0, 1, 4, "end of input inside an escape sequence"},
    {"[\"\\uD800\"]", 0, 1, 3,
     "high surrogate \\uD800 not followed by a low surrogate \\uDC00-\\uDFFF"},
    {"[\"\\uD83D\\u0041\"]", 0, 1, 3, "high surrogate \\uD83D not followed by a low surrogate"},
    {"[\"\\uD83D\\uD83D\"]", 0, 1, 3, "high surrogate \\uD83D not followed by a low surrogate"},
    {"[\"\\uDC00\"]", 0, 1, 3, "lone low surrogate \\uDC00 (it must follow a high surrogate)"},
    {"[\"x\\uDE00\\uD83D\"]", 0, 1, 4, "lone low surrogate \\uDE00"},
    {"[\"ab\ncd\"]", 0, 1, 5,
     "line break inside a string (missing closing '\"'? the string starts at 1:2)"},
    {"[\"a\tb\"]", 0, 1, 4, "control character U+0009 inside a string (write it as an escape)"},
    {"[\"a\0b\"]", 7, 1, 4, "control character U+0000 inside a string"},
    {"[\"\xC3\x28\"]", 0, 1, 3, "invalid UTF-8 (byte 0xC3) inside a string"},
    {"[\"\xED\xA0\x80\"]", 0, 1, 3, "invalid UTF-8 (byte 0xED) inside a string"},
    {"[\"\xC0\xAF\"]", 0, 1, 3, "invalid UTF-8 (byte 0xC0) inside a string"},
    {"[\"\xE0\x80\xAF\"]", 0, 1, 3, "invalid UTF-8 (byte 0xE0) inside a string"},
    {"[\"\xF4\x90\x80\x80\"]", 0, 1, 3, "invalid UTF-8 (byte 0xF4) inside a string"},
    {"[\"\xF0\x9F\x98\"]", 0, 1, 3, "invalid UTF-8 (byte 0xF0) inside a string"},
    {"[\"\x80\"]", 0, 1, 3, "invalid UTF-8 (byte 0x80) inside a string"},
    {"[\"abc", 0, 1, 6, "end of input inside a string (it starts at 1:2)"},
    {"{\"a\":1,\"a\":2}", 0, 1, 8, "duplicate member name \"a\" (first at 1:2)"},
    {"{\"a\":{\"b\":1},\n \"a\":[]}", 0, 2, 2, "duplicate member name \"a\" (first at 1:2)"},
    {"[1] x", 0, 1, 5, "expected end of input after the top-level value, found 'x'"},
    {"{} {}", 0, 1, 4, "expected end of input after the top-level value, found '{'"},
    {"// c\n{}", 0, 1, 1,
     "expected a value (object, array, string, number, true, false or null), "
     "found '/' (JSON has no comments)"},
    {"[1, /* c */ 2]", 0, 1, 5,
     "expected a value (object, array, string, number, true, false or "
     "null), found '/' (JSON has no comments)"},
    {"[1,\n  2,\n  @]", 0, 3, 3,
     "expected a value (object, array, string, number, true, false or "
     "null), found '@'"},
    /* Columns count characters: "é" is two bytes and one column. */
    {"[\"\xC3\xA9\xC3\xA9\", x]", 0, 1, 8, "expected a value, found 'x'"},
    {"\xEF\xBB\xBF[x]", 0, 1, 2, "expected a value, found 'x'"},
    {"\xEF\xBB\xBF", 0, 1, 1, "expected a JSON value, found end of input"},
    {"\x00", 1, 1, 1,
     "expected a value (object, array, string, number, true, false or null), "
     "found byte 0x00"},
    {"[\xC3\xA9]", 0, 1, 2,
     "expected a value (object, array, string, number, true, false or "
     "null), found byte 0xC3"},
    {"\r\n\r\n  ]", 0, 3, 3,
     "expected a value (object, array, string, number, true, false or "
     "null), found ']'"},
};

static void test_bad_documents(void)
{
    for (size_t i = 0; i < sizeof bad_cases / sizeof bad_cases[0]; i++) {
        const bad_case *c = &bad_cases[i];
        size_t len = c->len ? c->len : strlen(c->text);
        sbx_json_doc *doc = (sbx_json_doc *)1;
        sbx_json_error err;
        int rc = sbx_json_parse(c->text, len, NULL, &doc, &err);
        if (rc != -EINVAL || doc != NULL || err.line != c->line || err.col != c->col ||
            strncmp(err.msg, c->msg, strlen(c->msg)) != 0) {
            fprintf(stderr, "case %zu (%.*s): rc=%d at %u:%u \"%s\"\n    expected %u:%u \"%s\"\n",
                    i, (int)len, c->text, rc, err.line, err.col, err.msg, c->line, c->col, c->msg);
            test_failures++;
        }
    }
}

static const sbx_json *at(const sbx_json *arr, size_t i)
{
    const sbx_json *v = arr && (arr->type == SBX_JSON_ARRAY || arr->type == SBX_JSON_OBJECT)
                            ? arr->u.kids.first
                            : NULL;
    while (v && i--)
        v = v->next;
    return v;
}

static void test_valid_document(void)
{
    const char *text = "{\"a\": [1, -2, 3.5, 1e3, true, false, null,\n"
                       "  \"x\\u00e9\\ud83d\\ude00\\n\\\"\\\\\\/\\b\\f\\r\\t\"],\n"
                       " \"b\": {}, \"\": [], \"c\xC3\xA9\": \"\xE2\x82\xAC\"}";
    sbx_json_doc *doc;
    sbx_json_error err;
    CHECK(sbx_json_parse(text, strlen(text), NULL, &doc, &err) == 0);
    if (!doc) {
        fprintf(stderr, "parse failed at %u:%u: %s\n", err.line, err.col, err.msg);
        test_failures++;
        return;
    }
    const sbx_json *root = sbx_json_root(doc);
    CHECK(root->type == SBX_JSON_OBJECT && root->u.kids.n == 4);
    CHECK(root->line == 1 && root->col == 1);
    const sbx_json *a = sbx_json_get(root, "a");
    CHECK(a && a->type == SBX_JSON_ARRAY && a->u.kids.n == 8);
    CHECK(a && a->line == 1 && a->col == 7 && a->key_line == 1 && a->key_col == 2);
    uint64_t u;
    CHECK(sbx_json_get_u64(at(a, 0), &u) == 0 && u == 1);
    CHECK(at(a, 1)->u.num.flags == SBX_JSON_NUM_NEGATIVE && at(a, 1)->u.num.magnitude == 2);
    CHECK(sbx_json_get_u64(at(a, 1), &u) == -EINVAL);
    CHECK(at(a, 2)->u.num.flags == SBX_JSON_NUM_NOT_INT);
    CHECK_STR(at(a, 2)->u.num.text, "3.5");
    CHECK(sbx_json_get_u64(at(a, 2), &u) == -EINVAL);
    CHECK(sbx_json_get_u64(at(a, 3), &u) == -EINVAL); /* 1e3 is an integer, but not as written */
    CHECK(at(a, 4)->type == SBX_JSON_TRUE && at(a, 5)->type == SBX_JSON_FALSE);
    CHECK(at(a, 6)->type == SBX_JSON_NULL);
    const sbx_json *s = at(a, 7);
    CHECK(s->type == SBX_JSON_STRING && s->line == 2 && s->col == 3);
    CHECK(s->u.str.len == strlen("x\xC3\xA9\xF0\x9F\x98\x80\n\"\\/\b\f\r\t"));
    CHECK_STR(s->u.str.s, "x\xC3\xA9\xF0\x9F\x98\x80\n\"\\/\b\f\r\t");
    const sbx_json *b = sbx_json_get(root, "b");
    CHECK(b && b->type == SBX_JSON_OBJECT && b->u.kids.n == 0 && b->line == 3 && b->col == 7);
    const sbx_json *empty = sbx_json_get(root, "");
    CHECK(empty && empty->type == SBX_JSON_ARRAY && empty->u.kids.n == 0);
    const sbx_json *c = sbx_json_get(root, "c\xC3\xA9");
    CHECK(c && c->type == SBX_JSON_STRING && !strcmp(c->u.str.s, "\xE2\x82\xAC"));
    CHECK(c && c->key_col == 19 && c->col == 25); /* é counts as one column */
    CHECK(sbx_json_get(root, "zz") == NULL);
    CHECK(sbx_json_get(a, "a") == NULL); /* not an object */
    sbx_json_free(doc);
}

static void test_numbers(void)
{
    static const struct {
        const char *text;
        int rc;
        uint64_t value;
        unsigned flags;
    } cases[] = {
        {"0", 0, 0, 0},
        {"-0", -EINVAL, 0, SBX_JSON_NUM_NEGATIVE},
        {"18446744073709551615", 0, UINT64_MAX, 0},
        {"18446744073709551616", -ERANGE, 0, SBX_JSON_NUM_TOO_BIG},
        {"99999999999999999999999999999", -ERANGE, 0, SBX_JSON_NUM_TOO_BIG},
        {"-18446744073709551616", -EINVAL, 0, SBX_JSON_NUM_NEGATIVE | SBX_JSON_NUM_TOO_BIG},
        {"1.0", -EINVAL, 0, SBX_JSON_NUM_NOT_INT},
        {"99999999999999999999999.5", -EINVAL, 0, SBX_JSON_NUM_NOT_INT},
        {"1E-7", -EINVAL, 0, SBX_JSON_NUM_NOT_INT},
        {"123456789", 0, 123456789, 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        sbx_json_doc *doc;
        sbx_json_error err;
        CHECK(sbx_json_parse(cases[i].text, strlen(cases[i].text), NULL, &doc, &err) == 0);
        if (!doc)
            continue;
        const sbx_json *v = sbx_json_root(doc);
        uint64_t u = 12345;
        int rc = sbx_json_get_u64(v, &u);
        if (rc != cases[i].rc || (rc == 0 && u != cases[i].value) ||
            v->u.num.flags != cases[i].flags || strcmp(v->u.num.text, cases[i].text)) {
            fprintf(stderr, "number %s: rc=%d value=%llu flags=%u\n", cases[i].text, rc,
                    (unsigned long long)u, v->u.num.flags);
            test_failures++;
        }
        sbx_json_free(doc);
    }
}

static void test_strings(void)
{
    sbx_json_doc *doc;
    sbx_json_error err;
    /* \u0000 is a valid character: the string keeps its length and a NUL inside. */
    const char *t = "\"a\\u0000b\"";
    CHECK(sbx_json_parse(t, strlen(t), NULL, &doc, &err) == 0);
    if (doc) {
        const sbx_json *v = sbx_json_root(doc);
        CHECK(v->u.str.len == 3 && !memcmp(v->u.str.s, "a\0b", 4));
        sbx_json_free(doc);
    }
    /* The largest code point, as a pair and as raw UTF-8, and a long string past the scratch. */
    t = "[\"\\uDBFF\\uDFFF\", \"\xF4\x8F\xBF\xBF\", \"\\u0041\\u00FF\\u0800\\uFFFF\"]";
    CHECK(sbx_json_parse(t, strlen(t), NULL, &doc, &err) == 0);
    if (doc) {
        const sbx_json *r = sbx_json_root(doc);
        CHECK_STR(at(r, 0)->u.str.s, "\xF4\x8F\xBF\xBF");
        CHECK_STR(at(r, 1)->u.str.s, "\xF4\x8F\xBF\xBF");
        CHECK_STR(at(r, 2)->u.str.s, "A\xC3\xBF\xE0\xA0\x80\xEF\xBF\xBF");
        sbx_json_free(doc);
    }
    size_t n = 200000;
    char *big = malloc(n + 3);
    big[0] = '"';
    memset(big + 1, 'z', n);
    big[n + 1] = '"';
    CHECK(sbx_json_parse(big, n + 2, NULL, &doc, &err) == 0);
    if (doc) {
        CHECK(sbx_json_root(doc)->u.str.len == n);
        sbx_json_free(doc);
    }
    free(big);
}

static void test_limits(void)
{
    sbx_json_doc *doc;
    sbx_json_error err;
    char buf[200];

    /* 64 levels are fine, 65 are not; the error is at the 65th bracket. */
    memset(buf, '[', 64);
    memset(buf + 64, ']', 64);
    CHECK(sbx_json_parse(buf, 128, NULL, &doc, &err) == 0);
    sbx_json_free(doc);
    memset(buf, '[', 65);
    memset(buf + 65, ']', 65);
    CHECK(sbx_json_parse(buf, 130, NULL, &doc, &err) == -EINVAL);
    CHECK(err.line == 1 && err.col == 65);
    CHECK_STR(err.msg, "nesting deeper than 64 levels");
    /* Objects count too; a lower limit is honoured. */
    sbx_json_limits lim = {.max_depth = 2};
    const char *t = "{\"a\":[{}]}";
    CHECK(sbx_json_parse(t, strlen(t), &lim, &doc, &err) == -EINVAL);
    CHECK(err.col == 7);
    CHECK_STR(err.msg, "nesting deeper than 2 levels");

    lim = (sbx_json_limits){.max_bytes = 10};
    t = "[1,2,3,4,5]";
    CHECK(sbx_json_parse(t, strlen(t), &lim, &doc, &err) == -EFBIG && doc == NULL);
    CHECK(err.line == 1 && err.col == 1);
    CHECK_STR(err.msg, "document is 11 bytes, over the limit of 10");
    lim.max_bytes = 11;
    CHECK(sbx_json_parse(t, strlen(t), &lim, &doc, &err) == 0);
    sbx_json_free(doc);

    lim = (sbx_json_limits){.max_nodes = 3};
    t = "[1,2,3]";
    CHECK(sbx_json_parse(t, strlen(t), &lim, &doc, &err) == -EFBIG);
    CHECK(err.col == 6);
    CHECK_STR(err.msg, "more than 3 values in the document");
    lim.max_nodes = 4;
    CHECK(sbx_json_parse(t, strlen(t), &lim, &doc, &err) == 0);
    sbx_json_free(doc);
}

/* Objects with many members take the hash-set path for duplicate keys. */
static void test_large_objects(void)
{
    size_t cap = 1 << 20, n = 0;
    char *buf = malloc(cap);
    n += (size_t)snprintf(buf + n, cap - n, "{");
    for (int i = 0; i < 5000; i++)
        n += (size_t)snprintf(buf + n, cap - n, "%s\"k%d\":%d", i ? "," : "", i, i);
    size_t ok_len = n;
    memcpy(buf + ok_len, "}", 2);
    sbx_json_doc *doc;
    sbx_json_error err;
    CHECK(sbx_json_parse(buf, ok_len + 1, NULL, &doc, &err) == 0);
    if (doc) {
        const sbx_json *v = sbx_json_get(sbx_json_root(doc), "k4321");
        uint64_t u;
        CHECK(v && sbx_json_get_u64(v, &u) == 0 && u == 4321);
        CHECK(sbx_json_root(doc)->u.kids.n == 5000);
        sbx_json_free(doc);
    }
    n = ok_len + (size_t)snprintf(buf + ok_len, cap - ok_len, ",\"k4242\":0}");
    CHECK(sbx_json_parse(buf, n, NULL, &doc, &err) == -EINVAL);
    CHECK(err.line == 1 && err.col == ok_len + 2);
    CHECK_PREFIX(err.msg, "duplicate member name \"k4242\" (first at 1:");
    free(buf);
}

int main(void)
{
    test_bad_documents();
    test_valid_document();
    test_numbers();
    test_strings();
    test_limits();
    test_large_objects();
    return test_done("json_test");
}

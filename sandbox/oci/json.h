/*
 * A small, strict JSON parser (RFC 8259) for the sandbox's profile files. It reads a whole
 * document into a read-only tree held in one arena, so a caller walks the tree with plain pointers
 * and frees it with one call. It is strict because its input comes from users and a lenient reading
 * of a security profile is a silent change of policy: no comments, no trailing commas, no single
 * quotes, no duplicate keys in an object, no lone UTF-16 surrogates in \u escapes, only valid
 * UTF-8. It is bounded because the input is untrusted: a size limit, a nesting limit (the parser
 * recurses once per level) and a node limit cap both time and memory. Errors carry the line and
 * column of the offending character and say what was expected there.
 *
 * Positions: lines and columns count from 1; a line ends at '\n'; a column counts characters
 * (UTF-8 code points), so a tab or a multi-byte character is one column.
 */
#ifndef SANDBOX_OCI_JSON_H
#define SANDBOX_OCI_JSON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Defaults used when a field of sbx_json_limits is 0. */
#define SBX_JSON_DEFAULT_MAX_BYTES (4u << 20)
#define SBX_JSON_DEFAULT_MAX_DEPTH 64u
#define SBX_JSON_DEFAULT_MAX_NODES (1u << 17)

typedef enum {
    SBX_JSON_NULL,
    SBX_JSON_FALSE,
    SBX_JSON_TRUE,
    SBX_JSON_NUMBER,
    SBX_JSON_STRING,
    SBX_JSON_ARRAY,
    SBX_JSON_OBJECT,
} sbx_json_type;

/* Flags of a number (sbx_json.u.num.flags). */
enum {
    SBX_JSON_NUM_NEGATIVE = 1u << 0, /* written with a leading '-' (also "-0") */
    SBX_JSON_NUM_NOT_INT = 1u << 1,  /* has a fraction or an exponent, even "1.0" or "1e2" */
    SBX_JSON_NUM_TOO_BIG = 1u << 2,  /* an integer whose magnitude exceeds UINT64_MAX */
};

typedef struct sbx_json sbx_json;

/*
 * One value. Arrays and objects hold their children as a list through `next`, in document order;
 * a child of an object also has its member name in `key`. Every string is NUL-terminated, but may
 * also contain NUL bytes (from \u0000), so compare with its length.
 */
struct sbx_json {
    sbx_json_type type;
    unsigned line, col;         /* where the value starts */
    unsigned key_line, key_col; /* where the member name starts, for a child of an object */
    size_t offset;              /* byte offset of the value's first character */
    sbx_json *next;             /* the next child of the same parent, or NULL */
    const char *key;            /* member name for a child of an object, else NULL */
    size_t key_len;
    union {
        struct {
            const char *s; /* decoded UTF-8 */
            size_t len;
        } str;
        struct {
            const char *text; /* the number as written, NUL-terminated */
            size_t len;
            uint64_t magnitude; /* |value| when neither NOT_INT nor TOO_BIG is set */
            unsigned flags;     /* SBX_JSON_NUM_* */
        } num;
        struct {
            sbx_json *first;
            size_t n;
        } kids; /* array elements or object members */
    } u;
};

typedef struct sbx_json_limits {
    size_t max_bytes;   /* input size; 0 means SBX_JSON_DEFAULT_MAX_BYTES */
    unsigned max_depth; /* nested arrays and objects; 0 means SBX_JSON_DEFAULT_MAX_DEPTH */
    size_t max_nodes;   /* values in the document; 0 means SBX_JSON_DEFAULT_MAX_NODES */
} sbx_json_limits;

/* Where and why a document was refused. */
typedef struct sbx_json_error {
    unsigned line, col; /* 1-based, see above */
    size_t offset;      /* byte offset of the same position */
    char msg[192];      /* e.g. "expected ',' or '}' after an object member, found ']'" */
} sbx_json_error;

typedef struct sbx_json_doc sbx_json_doc;

/*
 * Parses text[0..len) (it need not be NUL-terminated) with the given limits (NULL for the
 * defaults). On success stores the document in *out and returns 0. Otherwise returns -EINVAL for
 * a malformed document or one nested too deeply, -EFBIG for one over the size or node limit, or
 * -ENOMEM, leaves *out NULL and fills *err (if not NULL) with the position and the reason. A UTF-8
 * byte order mark at the very start is skipped (some editors write one); it counts as no column.
 */
int sbx_json_parse(const char *text, size_t len, const sbx_json_limits *limits, sbx_json_doc **out,
                   sbx_json_error *err);

/* The top-level value of a parsed document. */
const sbx_json *sbx_json_root(const sbx_json_doc *doc);

/* Frees a document and every value in it; NULL is fine. */
void sbx_json_free(sbx_json_doc *doc);

/* The member of an object named key (a NUL-terminated name), or NULL; NULL for a non-object. */
const sbx_json *sbx_json_get(const sbx_json *obj, const char *key);

/*
 * The value of a number that is a non-negative integer written without fraction or exponent.
 * Returns 0, -EINVAL when v is not such a number (a non-number, a negative one, 1.5, 1e3) or
 * -ERANGE when it exceeds UINT64_MAX.
 */
int sbx_json_get_u64(const sbx_json *v, uint64_t *out);

/* "null", "boolean", "number", "string", "array" or "object", for messages. */
const char *sbx_json_type_name(sbx_json_type t);

#endif /* SANDBOX_OCI_JSON_H */

/*
 * A JSON-aware mutator for the standalone fuzz driver, shared by the targets whose input is a
 * JSON document (the seccomp profile parser, the pipeline parser): besides blind byte edits it
 * inserts grammar and vocabulary tokens, swaps a string's contents or a number for a token,
 * duplicates and deletes ranges, splices two inputs and (optionally) nests deeply. Each target
 * brings its own tokens and interesting bytes.
 */
#include "testing/fuzz_json.h"

#include <string.h>

static void replace(size_t max, uint8_t *b, size_t *len, size_t pos, size_t old, const uint8_t *rep,
                    size_t n)
{
    if (pos > *len)
        pos = *len;
    if (old > *len - pos)
        old = *len - pos;
    if (*len - old + n > max)
        return;
    memmove(b + pos + n, b + pos + old, *len - pos - old);
    if (n)
        memcpy(b + pos, rep, n);
    *len = *len - old + n;
}

/* Finds a token of the given kind near a random place: a string's contents or a number. */
static bool find_token(const uint8_t *b, size_t len, bool string, size_t *pos, size_t *n)
{
    if (!len)
        return false;
    size_t start = fuzz_below(len);
    for (size_t i = start; i < len; i++) {
        if (string && b[i] == '"') {
            size_t j = i + 1;
            while (j < len && b[j] != '"' && b[j] != '\\')
                j++;
            if (j < len && b[j] == '"') {
                *pos = i + 1;
                *n = j - i - 1;
                return true;
            }
        } else if (!string && ((b[i] >= '0' && b[i] <= '9') || b[i] == '-')) {
            size_t j = i;
            while (j < len && strchr("0123456789-+.eE", b[j]))
                j++;
            *pos = i;
            *n = j - i;
            return true;
        }
    }
    return false;
}

void fuzz_json_mutate(const fuzz_json_mutator *m, uint8_t *b, size_t *len, const fuzz_blob *other)
{
    const char *tok = m->tokens[fuzz_below(m->ntokens)];
    size_t tlen = strlen(tok), pos, n;
    switch (fuzz_below(m->nesting ? 11 : 10)) {
    case 0: /* flip a bit */
        if (*len)
            b[fuzz_below(*len)] ^= (uint8_t)(1u << fuzz_below(8));
        break;
    case 1: { /* one interesting byte in place of another */
        if (*len)
            b[fuzz_below(*len)] = m->bytes[fuzz_below(m->nbytes)];
        break;
    }
    case 2: /* insert a token */
    case 3:
        replace(m->max_input, b, len, fuzz_below(*len + 1), 0, (const uint8_t *)tok, tlen);
        break;
    case 4: /* a token in place of a string's contents, quotes and all if it has them */
        if (find_token(b, *len, true, &pos, &n)) {
            if (tok[0] == '"' && tlen >= 2)
                replace(m->max_input, b, len, pos - 1, n + 2, (const uint8_t *)tok, tlen);
            else
                replace(m->max_input, b, len, pos, n, (const uint8_t *)tok, tlen);
        }
        break;
    case 5: /* a token in place of a number */
        if (find_token(b, *len, false, &pos, &n))
            replace(m->max_input, b, len, pos, n, (const uint8_t *)tok, tlen);
        break;
    case 6: /* delete a range */
        if (*len) {
            pos = fuzz_below(*len);
            replace(m->max_input, b, len, pos, 1 + fuzz_below(fuzz_below(2) ? 8 : *len - pos), NULL,
                    0);
        }
        break;
    case 7: /* duplicate a range elsewhere */
        if (*len) {
            pos = fuzz_below(*len);
            n = 1 + fuzz_below(*len - pos < 256 ? *len - pos : 256);
            uint8_t tmp[256];
            memcpy(tmp, b + pos, n);
            replace(m->max_input, b, len, fuzz_below(*len + 1), 0, tmp, n);
        }
        break;
    case 8: /* truncate */
        *len = fuzz_below(*len + 1);
        break;
    case 9: { /* splice: our head, the other input's tail */
        size_t cut = fuzz_below(*len + 1), ocut = fuzz_below(other->len + 1);
        if (cut + other->len - ocut <= m->max_input) {
            memcpy(b + cut, other->data + ocut, other->len - ocut);
            *len = cut + other->len - ocut;
        }
        break;
    }
    case 10: { /* deep nesting around a random place */
        uint8_t open[80], close[80];
        size_t d = 1 + fuzz_below(80);
        uint8_t o = fuzz_below(2) ? '[' : '{';
        memset(open, o, d);
        memset(close, o == '[' ? ']' : '}', d);
        if (*len + 2 * d > m->max_input)
            break;
        pos = fuzz_below(*len + 1);
        size_t end = pos + fuzz_below(*len - pos + 1);
        replace(m->max_input, b, len, end, 0, close, d);
        replace(m->max_input, b, len, pos, 0, open, d);
        break;
    }
    }
}

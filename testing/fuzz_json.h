/*
 * The JSON-aware mutation operators shared by the JSON fuzz targets (see fuzz_json.c).
 */
#ifndef PM_TESTING_FUZZ_JSON_H
#define PM_TESTING_FUZZ_JSON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "testing/fuzz_driver.h"

typedef struct {
    const char *const *tokens; /* grammar and vocabulary to insert */
    size_t ntokens;
    const uint8_t *bytes; /* interesting single bytes */
    size_t nbytes;
    size_t max_input; /* b has room for this many bytes; never grown past it */
    bool nesting;     /* also wrap a range in deep [ or { nesting */
} fuzz_json_mutator;

/* One mutation of b[0..*len); other is another input of the pool, for splicing. */
void fuzz_json_mutate(const fuzz_json_mutator *m, uint8_t *b, size_t *len, const fuzz_blob *other);

#endif

/*
 * Pipelines: the JSON a user writes (both shapes of DESIGN.md), the {{name}} placeholders in its
 * command lines, and the conversions to and from the wire's pm.scheduler.v1.Pipeline. Shared by
 * pm-scheduler (Submit, PutPipeline) and pmctl (run, direct mode). A pipeline is an ordered list of
 * steps; a step names an executor and holds one or more shell command lines.
 *
 * Accepted JSON (strict JSON, parsed with //sandbox/oci:json):
 *   {"pipeline": [{"executorName": "wget", "commands": ["..."], "timeoutMs": 1000}, ...]}
 *   {"commands": [{"executorName": "wget", "commandLines": ["..."]}, ...]}  (older agent shape)
 * "timeoutMs" (optional, non-negative integer) is our addition, in both shapes. Unknown members are
 * refused with their position, so a misspelt "comands" is not silently an empty step.
 *
 * Placeholders: "{{name}}" with name matching [A-Za-z_][A-Za-z0-9_.-]* (spaces inside the braces
 * are allowed: "{{ url }}"). Anything else between "{{" and "}}" is left as written. The name "id"
 * is built in: when no parameter of that name is given, it is kept at submission and filled with
 * the task's id when a step is dispatched (sch_pipeline_fill_builtin).
 *
 * Values are inserted into shell lines. A value made only of [A-Za-z0-9_./:@%+=,-] (and not
 * empty) goes in as it is; any other value goes in single-quoted for /bin/sh ('it'\''s'), so a
 * parameter can never add shell syntax to a command line. (That holds for a placeholder written
 * as a word of its own, as above; one the template itself puts inside quotes is the template's
 * business.) A value never turns into a placeholder later: a "{{" inside it is written '{''{'
 * (the same word to the shell), and a safe value that would continue an open "{{ x" of the
 * template is quoted too ("{{ {{a}}x }}" with a=a gives "{{ 'a'x }}").
 */
#ifndef PM_SCHEDULER_PIPELINE_H
#define PM_SCHEDULER_PIPELINE_H

#include <stddef.h>
#include <stdint.h>

#include "protos/scheduler.pb-c.h"

/* Caps on what one pipeline may hold; beyond them -E2BIG with a message. */
#define SCH_PIPELINE_MAX_STEPS 256
#define SCH_PIPELINE_MAX_COMMANDS 1024    /* per step */
#define SCH_PIPELINE_MAX_LINE (64u << 10) /* bytes of one command line after substitution */
#define SCH_PIPELINE_MAX_JSON (4u << 20)

typedef struct {
    char *executor;  /* non-empty */
    char **commands; /* n_commands >= 1, each non-empty */
    size_t n_commands;
    uint32_t timeout_ms; /* 0: none */
} sch_step;

typedef struct {
    sch_step *steps; /* n_steps >= 1 */
    size_t n_steps;
} sch_pipeline;

typedef struct {
    const char *name;
    const char *value;
} sch_param;

/*
 * Parses a pipeline document. Returns 0 with *out set, or -EINVAL (malformed JSON, wrong shape,
 * empty pipeline, a step without executor or commands, an unknown member), -EFBIG (over
 * SCH_PIPELINE_MAX_JSON), -E2BIG (over a cap) or -ENOMEM, with a message in err that names the
 * problem and, for JSON, its line and column: "pipeline JSON line 3 column 7: expected ...",
 * "pipeline step 2: \"executorName\" is missing".
 */
int sch_pipeline_parse_json(const char *text, size_t len, sch_pipeline **out, char *err,
                            size_t errlen);

/* Validates and copies a wire pipeline (same rules and messages as the JSON). */
int sch_pipeline_from_pb(const Pm__Scheduler__V1__Pipeline *pb, sch_pipeline **out, char *err,
                         size_t errlen);

/*
 * A wire message for p, allocated as one block that points into p's strings: valid while p lives,
 * released with free(). Returns NULL on allocation failure.
 */
Pm__Scheduler__V1__Pipeline *sch_pipeline_to_pb(const sch_pipeline *p);

/* A deep copy, or NULL. */
sch_pipeline *sch_pipeline_dup(const sch_pipeline *p);

void sch_pipeline_free(sch_pipeline *p);

/*
 * The distinct placeholder names in p, sorted, as one malloc'd array of pointers (free only the
 * array). The names themselves are copied into the same block, after the pointers, since a name
 * inside a command line is not NUL-terminated; so they stay valid after p is freed. Returns the
 * count (0 with *names NULL), or -ENOMEM.
 */
int sch_pipeline_placeholders(const sch_pipeline *p, const char ***names);

/*
 * Fills placeholders from params (later entries win over earlier ones, so defaults go first) into
 * a new pipeline. A placeholder without a value is an error -EINVAL, "missing parameter 'url'
 * (step 1 'wget', command 1)", except "id", which is kept for sch_pipeline_fill_builtin. A
 * parameter that no placeholder uses is allowed; one whose name fails sch_param_name_ok is refused
 * (-EINVAL, "parameter 2: 'a b' is not a valid name"). A NULL value counts as "". Returns 0,
 * -EINVAL, -E2BIG ("step 1 'wget', command 1: longer than 65536 bytes after substitution") or
 * -ENOMEM.
 */
int sch_pipeline_substitute(const sch_pipeline *in, const sch_param *params, size_t n,
                            sch_pipeline **out, char *err, size_t errlen);

/* One command line with the built-in placeholders ({{id}}) filled; malloc'd, or NULL. */
char *sch_pipeline_fill_builtin(const char *line, const char *task_id);

/* True when name is a valid placeholder/parameter name. */
int sch_param_name_ok(const char *name);

#endif

/*
 * The executor's side of the wire: nanopb decoding of a RunRequest (or of the legacy ExecCommands)
 * into an exe_step whose strings live in one arena sized by the request, validation with messages
 * that name the offending field, and encoding of the events and replies the executor sends.
 */
#ifndef PM_EXECUTOR_REQUEST_H
#define PM_EXECUTOR_REQUEST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <grpc/grpc.h>

#include "protos/executor.pb.h"

/* The kernel refuses any single argument or environment string longer than this (MAX_ARG_STRLEN).
 */
#define EXE_MAX_ARG_STRLEN (32 * 4096)
/* Commands in one step, and argv or env entries of one command (or of the step's env): beyond
 * what any real step uses, low enough that a hostile request cannot make decoding expensive. The
 * kernel's own limit on argv+env (ARG_MAX, 2 MiB with 8-byte pointers) allows fewer anyway. */
#define EXE_MAX_COMMANDS 1024
#define EXE_MAX_ENTRIES 65536

/* A growable NULL-terminated string vector; the strings live in the step's arena. */
typedef struct {
    char **v;
    size_t n, cap;
} exe_strv;

typedef struct {
    const char *shell; /* set: run by /bin/sh -c; NULL: argv */
    exe_strv argv;
    exe_strv env; /* "K=V" */
    const char *workdir;
    uint32_t timeout_ms;
    const uint8_t *stdin_data;
    size_t stdin_len;
} exe_cmd;

typedef struct {
    exe_cmd *cmds;
    size_t ncmds, cmds_cap;
    exe_strv env;
    bool clear_env;
    const char *workdir;
    uint32_t timeout_ms;
    uint64_t output_cap;
    bool continue_on_error;
    const char *sandbox_profile; /* NULL or "": the executor's */
    char *arena;
    size_t arena_used, arena_cap;
} exe_step;

/* Decodes and validates a pm.executor.v1.RunRequest. Returns 0 or -EINVAL with err set. */
int exe_step_decode_run(exe_step *s, const uint8_t *buf, size_t len, char *err, size_t errlen);

/* Decodes exec.ExecCommands: each command becomes a shell line. Returns 0 or -EINVAL. */
int exe_step_decode_legacy(exe_step *s, const uint8_t *buf, size_t len, char *err, size_t errlen);

/* Frees everything a decode allocated; the step may be decoded into again afterwards. */
void exe_step_free(exe_step *s);

/*
 * Builds the environment of command i: base (NULL-terminated, e.g. environ; ignored with
 * clear_env), then the step's entries, then the command's, then extra (a "K=V" or NULL); a later
 * KEY replaces an earlier one.
 * Returns a malloc'd NULL-terminated array (free the array only; strings are borrowed), or NULL.
 */
char **exe_step_env(const exe_step *s, size_t i, char *const *base, char *extra);

/* Looks KEY up in a NULL-terminated "K=V" array. */
const char *exe_env_get(char *const *env, const char *key);

/* Events of the Run stream. */
grpc_byte_buffer *exe_event_started(uint32_t cmd, int32_t pid);
/*
 * Output is read straight into a slice, behind EXE_EVENT_HEADER_ROOM bytes left free for the
 * fields that precede it. exe_event_output_in writes those fields just in front of the len bytes
 * of data at EXE_EVENT_HEADER_ROOM and returns the event without copying the data; it takes over
 * the caller's reference to slice (also on failure, which returns NULL).
 */
#define EXE_EVENT_HEADER_ROOM 16
grpc_byte_buffer *exe_event_output_in(uint32_t cmd, bool is_stderr, grpc_slice slice, size_t len);
grpc_byte_buffer *exe_event_exited(uint32_t cmd, const pm_executor_v1_Exited *ex);

/* One captured output of the legacy reply. */
typedef struct {
    const uint8_t *data;
    size_t len;
} exe_blob;

/* exec.ExecResult with outputs[0..n). */
grpc_byte_buffer *exe_legacy_result(bool result, const char *error, const exe_blob *outputs,
                                    size_t n);

/* Copies in to out (room for 3n bytes) with every byte that is not part of well-formed UTF-8
 * replaced by U+FFFD; returns the length written. */
size_t exe_utf8_sanitize(const uint8_t *in, size_t n, uint8_t *out);

grpc_byte_buffer *exe_info_encode(const pm_executor_v1_InfoResponse *info);

#endif

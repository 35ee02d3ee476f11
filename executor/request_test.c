/*
 * Unit tests of request decoding and argument/environment handling: valid requests decode to the
 * expected step, every kind of bad request is refused with a message naming the problem, and the
 * environment of a command is merged base < step < command.
 */
#include "executor/request.h"

#include <errno.h>

#include "executor/testutil.h"
#include "rpc/rpc.h"

static int decode(Pm__Executor__V1__RunRequest *req, exe_step *s, char *err, size_t errlen)
{
    size_t len;
    uint8_t *buf = test_pack(req, &len);
    int rc = exe_step_decode_run(s, buf, len, err, errlen);
    free(buf);
    return rc;
}

static void test_valid(void)
{
    Pm__Executor__V1__Command c0 = PM__EXECUTOR__V1__COMMAND__INIT, c1 = c0;
    c0.shell = "echo $X";
    char *env0[] = {"X=1", "Y=2"};
    c0.n_env = 2;
    c0.env = env0;
    c0.timeout_ms = 50;
    c0.stdin_data.data = (uint8_t *)"a\0b";
    c0.stdin_data.len = 3;
    char *argv1[] = {"printf", "%s\\n", "two words"};
    c1.n_argv = 3;
    c1.argv = argv1;
    c1.workdir = "/tmp";
    Pm__Executor__V1__Command *cmds[] = {&c0, &c1};
    Pm__Executor__V1__RunRequest req = PM__EXECUTOR__V1__RUN_REQUEST__INIT;
    req.n_commands = 2;
    req.commands = cmds;
    char *senv[] = {"Z=3"};
    req.n_env = 1;
    req.env = senv;
    req.clear_env = 1;
    req.workdir = "/";
    req.timeout_ms = 7;
    req.output_cap = 1234;
    req.continue_on_error = 1;
    req.sandbox_profile = "strict";

    exe_step s;
    char err[256];
    CHECK(decode(&req, &s, err, sizeof err) == 0);
    CHECK(s.ncmds == 2);
    CHECK_STR(s.cmds[0].shell, "echo $X");
    CHECK(s.cmds[0].env.n == 2);
    CHECK_STR(s.cmds[0].env.v[1], "Y=2");
    CHECK(s.cmds[0].env.v[2] == NULL);
    CHECK(s.cmds[0].timeout_ms == 50);
    CHECK(s.cmds[0].stdin_len == 3 && memcmp(s.cmds[0].stdin_data, "a\0b", 3) == 0);
    CHECK(s.cmds[1].shell == NULL);
    CHECK(s.cmds[1].argv.n == 3);
    CHECK_STR(s.cmds[1].argv.v[2], "two words");
    CHECK(s.cmds[1].argv.v[3] == NULL);
    CHECK_STR(s.cmds[1].workdir, "/tmp");
    CHECK(s.env.n == 1);
    CHECK(s.clear_env && s.continue_on_error);
    CHECK_STR(s.workdir, "/");
    CHECK(s.timeout_ms == 7 && s.output_cap == 1234);
    CHECK_STR(s.sandbox_profile, "strict");

    /* clear_env: only step and command entries; the command's X replaces nothing here. */
    char *base[] = {"PATH=/bin", "X=base", NULL};
    char **env = exe_step_env(&s, 0, base, NULL);
    CHECK(env && env[0] && env[1] && env[2] && !env[3]);
    CHECK_STR(exe_env_get(env, "X"), "1");
    CHECK(exe_env_get(env, "PATH") == NULL);
    free(env);

    s.clear_env = false;
    env = exe_step_env(&s, 0, base, NULL);
    CHECK_STR(exe_env_get(env, "PATH"), "/bin");
    CHECK_STR(exe_env_get(env, "X"), "1"); /* command beats base */
    CHECK_STR(exe_env_get(env, "Z"), "3");
    free(env);
    char extra[] = "X=marker";
    env = exe_step_env(&s, 0, base, extra);
    CHECK_STR(exe_env_get(env, "X"), "marker"); /* extra beats everything */
    free(env);
    exe_step_free(&s);
}

static void expect_invalid(Pm__Executor__V1__RunRequest *req, const char *needle)
{
    exe_step s;
    char err[512];
    int rc = decode(req, &s, err, sizeof err);
    CHECK(rc == -EINVAL);
    if (rc == -EINVAL && !strstr(err, needle)) {
        fprintf(stderr, "error \"%s\" does not mention \"%s\"\n", err, needle);
        test_failures++;
    }
    if (rc == 0)
        exe_step_free(&s);
}

static void test_invalid(void)
{
    Pm__Executor__V1__RunRequest req = PM__EXECUTOR__V1__RUN_REQUEST__INIT;
    expect_invalid(&req, "no commands");

    Pm__Executor__V1__Command c = PM__EXECUTOR__V1__COMMAND__INIT;
    Pm__Executor__V1__Command *cmds[] = {&c};
    req.n_commands = 1;
    req.commands = cmds;
    expect_invalid(&req, "exactly one of shell or argv");

    char *argv[] = {"ls"};
    c.shell = "ls";
    c.n_argv = 1;
    c.argv = argv;
    expect_invalid(&req, "exactly one of shell or argv");

    c.shell = NULL;
    char *empty[] = {""};
    c.argv = empty;
    expect_invalid(&req, "argv[0] is empty");

    c.argv = argv;
    char *bad_env[] = {"NOEQUALS"};
    c.n_env = 1;
    c.env = bad_env;
    expect_invalid(&req, "not KEY=VALUE");
    char *bad_env2[] = {"=v"};
    c.env = bad_env2;
    expect_invalid(&req, "not KEY=VALUE");
    c.n_env = 0;

    char *step_env[] = {"oops"};
    req.n_env = 1;
    req.env = step_env;
    expect_invalid(&req, "step env entry 0");
    req.n_env = 0;

    char *huge = malloc(EXE_MAX_ARG_STRLEN + 2);
    memset(huge, 'a', EXE_MAX_ARG_STRLEN + 1);
    huge[EXE_MAX_ARG_STRLEN + 1] = '\0';
    char *hargv[] = {"echo", huge};
    c.n_argv = 2;
    c.argv = hargv;
    expect_invalid(&req, "over the kernel's");
    free(huge);

    /* A NUL inside a text field cannot reach exec; it must not be silently cut. */
    Pm__Executor__V1__RunRequest ok = PM__EXECUTOR__V1__RUN_REQUEST__INIT;
    Pm__Executor__V1__Command okc = PM__EXECUTOR__V1__COMMAND__INIT;
    okc.shell = "xx";
    Pm__Executor__V1__Command *okcmds[] = {&okc};
    ok.n_commands = 1;
    ok.commands = okcmds;
    size_t len;
    uint8_t *buf = test_pack(&ok, &len);
    /* The shell field is the last two bytes: patch one to NUL. */
    buf[len - 1] = '\0';
    exe_step s;
    char err[256];
    CHECK(exe_step_decode_run(&s, buf, len, err, sizeof err) == -EINVAL);
    CHECK(strstr(err, "NUL") != NULL);
    free(buf);

    /* An explicitly empty shell beside an argv is just an argv (proto3 cannot tell "" from unset),
     * never `sh -c ""`. */
    const uint8_t empty_shell[] = {0x0a, 0x05, 0x0a, 0x00, 0x12, 0x01, 's'};
    CHECK(exe_step_decode_run(&s, empty_shell, sizeof empty_shell, err, sizeof err) == 0);
    CHECK(s.ncmds == 1 && s.cmds[0].shell == NULL && s.cmds[0].argv.n == 1);
    exe_step_free(&s);

    /* Too many commands: refused early with a clear message. */
    size_t n = EXE_MAX_COMMANDS + 1, mlen = 5 * n;
    uint8_t *many = malloc(mlen);
    for (size_t i = 0; i < n; i++)
        memcpy(many + 5 * i, "\x0a\x03\x12\x01\x61", 5);
    CHECK(exe_step_decode_run(&s, many, mlen, err, sizeof err) == -EINVAL);
    CHECK(strstr(err, "more than 1024 commands") != NULL);
    free(many);

    /* A NUL in the sandbox profile is refused, not cut. */
    const uint8_t prof[] = {0x0a, 0x03, 0x12, 0x01, 'a', 0x42, 0x03, 'x', 0x00, 'y'};
    CHECK(exe_step_decode_run(&s, prof, sizeof prof, err, sizeof err) == -EINVAL);
    CHECK(strstr(err, "NUL") != NULL);

    /* Garbage and truncated messages. */
    const uint8_t garbage[] = {0xff, 0xff, 0xff, 0xff};
    CHECK(exe_step_decode_run(&s, garbage, sizeof garbage, err, sizeof err) == -EINVAL);
    CHECK(strstr(err, "malformed RunRequest") != NULL);
    const uint8_t truncated[] = {0x0a, 0x10, 0x0a, 0x02};
    CHECK(exe_step_decode_run(&s, truncated, sizeof truncated, err, sizeof err) == -EINVAL);
    CHECK(exe_step_decode_run(&s, NULL, 0, err, sizeof err) == -EINVAL); /* empty: no commands */
}

static void test_legacy(void)
{
    /* exec.ExecCommands { repeated string commands = 1; } by hand: two commands. */
    const uint8_t msg[] = {0x0a, 0x04, 't', 'r', 'u', 'e', 0x0a, 0x05, 'f', 'a', 'l', 's', 'e'};
    exe_step s;
    char err[256];
    CHECK(exe_step_decode_legacy(&s, msg, sizeof msg, err, sizeof err) == 0);
    CHECK(s.ncmds == 2);
    CHECK_STR(s.cmds[1].shell, "false");
    exe_step_free(&s);
    CHECK(exe_step_decode_legacy(&s, msg, 0, err, sizeof err) == -EINVAL);
    const uint8_t empty[] = {0x0a, 0x04, 't', 'r', 'u', 'e', 0x0a, 0x00};
    CHECK(exe_step_decode_legacy(&s, empty, sizeof empty, err, sizeof err) == -EINVAL);
    CHECK_STR(err, "commands[1] is empty");
}

static void test_utf8(void)
{
    uint8_t out[64];
    const char *ok = "h\xc3\xa9llo \xe2\x82\xac \xf0\x9f\x99\x82";
    size_t n = exe_utf8_sanitize((const uint8_t *)ok, strlen(ok), out);
    CHECK(n == strlen(ok) && memcmp(out, ok, n) == 0);
    const uint8_t bad[] = {'o', 'k', 0xff, 0xfe, '\n', 0xc3, 0xed, 0xa0, 0x80, 0xc0, 0xaf};
    n = exe_utf8_sanitize(bad, sizeof bad, out);
    out[n] = '\0';
    /* ff, fe, a lone c3, a surrogate (3 bytes), an overlong c0 af (2 bytes): 8 replacements */
    CHECK_STR((char *)out, "ok\xef\xbf\xbd\xef\xbf\xbd\n\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd"
                           "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd");
}

/*
 * Output events are built around data already in place (exe_event_output_in writes only the
 * fields in front of it): protobuf-c, the other codec, must read back exactly the command index,
 * the right stream and every byte, for indexes that encode in one, two or more bytes, lengths
 * around the varint boundaries, and both streams.
 */
static void test_output_event_in_place(void)
{
    const uint32_t cmds[] = {0, 1, 127, 128, 300, 70000};
    const size_t lens[] = {0, 1, 127, 128, 16383, 16384, 131072};
    for (size_t i = 0; i < sizeof cmds / sizeof cmds[0]; i++)
        for (size_t j = 0; j < sizeof lens / sizeof lens[0]; j++)
            for (int is_stderr = 0; is_stderr < 2; is_stderr++) {
                size_t len = lens[j];
                grpc_slice s = grpc_slice_malloc(EXE_EVENT_HEADER_ROOM + len + 3);
                uint8_t *data = GRPC_SLICE_START_PTR(s) + EXE_EVENT_HEADER_ROOM;
                for (size_t k = 0; k < len + 3; k++)
                    data[k] = (uint8_t)(k * 7 + i + j);
                uint8_t first = len ? data[0] : 0, last = len ? data[len - 1] : 0;
                grpc_byte_buffer *bb = exe_event_output_in(cmds[i], is_stderr, s, len);
                CHECK(bb != NULL);
                uint8_t *flat;
                size_t flen;
                CHECK(rpc_bb_flatten(bb, &flat, &flen) == 0);
                grpc_byte_buffer_destroy(bb);
                Pm__Executor__V1__RunEvent *ev =
                    pm__executor__v1__run_event__unpack(NULL, flen, flat);
                CHECK(ev != NULL);
                CHECK(ev->command == cmds[i]);
                const ProtobufCBinaryData *got = is_stderr ? &ev->stderr_data : &ev->stdout_data;
                const ProtobufCBinaryData *other = is_stderr ? &ev->stdout_data : &ev->stderr_data;
                CHECK(got->len == len);
                CHECK(other->len == 0);
                CHECK(ev->started == NULL && ev->exited == NULL);
                if (len) {
                    CHECK(got->data[0] == first && got->data[len - 1] == last);
                    for (size_t k = 0; k < len; k++)
                        if (got->data[k] != (uint8_t)(k * 7 + i + j)) {
                            CHECK(!"output byte differs");
                            break;
                        }
                }
                pm__executor__v1__run_event__free_unpacked(ev, NULL);
                free(flat);
            }
    /* A slice too short for the length it claims is refused (and released). */
    grpc_slice s = grpc_slice_malloc(EXE_EVENT_HEADER_ROOM + 10);
    CHECK(exe_event_output_in(0, false, s, 11) == NULL);
}

int main(void)
{
    grpc_init();
    test_output_event_in_place();
    grpc_shutdown();
    test_utf8();
    test_valid();
    test_invalid();
    test_legacy();
    return test_done("request_test");
}

#!/usr/bin/python3
"""End-to-end tests of pm-executor's edges: request validation (malformed, empty, oversized,
huge argv, bad env), output caps, the concurrency limit, bearer tokens, the health service, the
legacy exec.ExecService, unknown methods, Info, flags and their PM_ variables, listening policy
and Unix sockets, and a hostile-input run after which the executor must still be healthy."""

import json
import os
import subprocess
import sys

sys.dont_write_bytecode = True  # Never leave __pycache__ in the source or runfiles tree.
sys.path.insert(0, os.path.join(os.environ.get("TEST_SRCDIR", "."),
                                os.environ.get("TEST_WORKSPACE", "pm"), "tests"))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import grpc  # noqa: E402

import pmtest  # noqa: E402
from pmtest import argv, pb, request, sh, wait_until  # noqa: E402

INVALID = grpc.StatusCode.INVALID_ARGUMENT
EXHAUSTED = grpc.StatusCode.RESOURCE_EXHAUSTED
ARG_LIMIT = 131072


def decode_fields(data):
    """Decodes protobuf wire bytes into (field, wire type, value) for varint and length-delimited
    fields, by hand, so that field numbers are checked independently of any generated code."""
    out = []
    i = 0

    def varint():
        nonlocal i
        shift = v = 0
        while True:
            b = data[i]
            i += 1
            v |= (b & 0x7f) << shift
            shift += 7
            if not b & 0x80:
                return v
    while i < len(data):
        key = varint()
        field, wt = key >> 3, key & 7
        if wt == 0:
            out.append((field, wt, varint()))
        elif wt == 2:
            n = varint()
            out.append((field, wt, data[i:i + n]))
            i += n
        else:
            raise AssertionError("unexpected wire type %d in %r" % (wt, data))
    return sorted(out, key=lambda t: t[0])


class ValidationTest(pmtest.ExecutorTestCase):
    # A request limit above the 200000-byte argument, so that the per-string check is what fires.
    EXECUTOR_ARGS = ("--output-cap", "0", "--max-request-bytes", str(8 << 20))

    def run_call(self, req):
        return self.client().run_stream(req)

    def test_empty_request(self):
        self.assertRpcCode(INVALID, self.run_call, pb.RunRequest())
        self.assertRpcCode(INVALID, self.run_call, pb.RunRequest(env=["A=1"], workdir="/"))

    def test_command_with_neither_or_both(self):
        self.assertRpcCode(INVALID, self.run_call, request(pb.Command()))
        self.assertRpcCode(INVALID, self.run_call, request(pb.Command(env=["A=1"])))
        self.assertRpcCode(INVALID, self.run_call,
                           request(pb.Command(shell="echo a", argv=["echo", "b"])))
        # A bad command anywhere in the list refuses the whole step: nothing runs.
        marker_file = pmtest.fresh_path("must-not-exist")
        self.assertRpcCode(INVALID, self.run_call,
                           request(sh("touch '%s'" % marker_file), pb.Command()))
        self.assertFalse(os.path.exists(marker_file), "part of a refused step ran")

    def test_malformed_protobuf(self):
        c = self.client()
        for data in (b"\xff\xff\xff", b"\x0a\x05ab", b"\x0a\xff\xff\xff\xff\x0f"):
            self.assertRpcCode(INVALID, c.run_raw_stream, data)
        self.assertRpcCode(INVALID, self.exe.legacy().execute_raw, b"\xff\xff\xff")

    def test_huge_argv_string(self):
        big = "x" * 200000
        self.assertRpcCode(INVALID, self.run_call, request(argv("echo", big)))
        self.assertRpcCode(INVALID, self.run_call, request(sh("echo " + big)))
        self.assertRpcCode(INVALID, self.run_call, request(sh("true", env=["A=" + big])))
        self.assertRpcCode(INVALID, self.run_call, request(sh("true"), env=["A=" + big]))
        e = self.assertRpcCode(INVALID, self.run_call, request(argv("echo", big)))
        self.assertTrue(e.details(), "INVALID_ARGUMENT should say what was wrong")

    def test_string_at_the_limit_runs(self):
        # 131072 bytes exactly is allowed; the shell gets it as one argument.
        arg = "y" * (ARG_LIMIT - 1)
        step = self.client().run(request(argv("/bin/sh", "-c", 'printf %s "$1" | wc -c', "sh",
                                              arg)))
        self.assertEqual(step[0].out.strip(), str(len(arg)))

    def test_request_over_grpc_default_limit_accepted(self):
        # --max-request-bytes is 8 MiB here: a 5 MiB request (over gRPC's 4 MiB default receive
        # limit) must be served.
        data = b"\1" * (5 << 20)
        step = self.client().run(request(argv("wc", "-c", stdin_data=data)))
        self.assertEqual(step[0].out.strip(), str(len(data)))

    def test_many_small_args(self):
        args = ["x"] * 50000
        step = self.client().run(request(argv("/bin/sh", "-c", 'echo $#', "sh", *args)))
        self.assertEqual(step[0].exited.exit_code, 0, step)
        self.assertEqual(step[0].out, "50000\n")

    def test_bad_env_entry(self):
        self.assertRpcCode(INVALID, self.run_call, request(sh("true", env=["NOEQUALS"])))
        self.assertRpcCode(INVALID, self.run_call, request(sh("true"), env=["NOEQUALS"]))
        e = self.assertRpcCode(INVALID, self.run_call, request(sh("true"), env=["GOOD=1", "BAD"]))
        self.assertIn("BAD", e.details(), "the error should name the bad entry")

    def test_unknown_method(self):
        ch = self.exe.channel()
        for method in ("/pm.executor.v1.Executor/Nope", "/no.such.Service/Foo",
                       "/exec.ExecService/Other", "/grpc.health.v1.Health/List"):
            call = ch.unary_unary(method, request_serializer=pmtest.identity,
                                  response_deserializer=pmtest.identity)
            self.assertRpcCode(grpc.StatusCode.UNIMPLEMENTED, call, b"", timeout=30)
            stream = ch.unary_stream(method, request_serializer=pmtest.identity,
                                     response_deserializer=pmtest.identity)
            self.assertRpcCode(grpc.StatusCode.UNIMPLEMENTED, stream, b"\x0a\x00", timeout=30)


class OversizeTest(pmtest.ExecutorTestCase):
    EXECUTOR_ARGS = ("--output-cap", "0", "--max-request-bytes", "65536")

    def test_request_over_limit(self):
        c = self.client()
        self.assertRpcCode(EXHAUSTED, c.run_stream, request(sh("echo " + "z" * 70000)))
        self.assertRpcCode(EXHAUSTED, c.run_stream,
                           request(*[sh("echo %d" % i) for i in range(20000)]))
        self.assertRpcCode(EXHAUSTED, c.run_stream, request(sh("cat", stdin_data=b"\0" * 100000)))
        self.assertRpcCode(EXHAUSTED, self.exe.legacy().execute, ["echo " + "z" * 70000])

    def test_request_under_limit(self):
        step = self.client().run(request(argv("wc", "-c", stdin_data=b"\0" * 60000)))
        self.assertEqual(step[0].out.strip(), "60000")
        self.assertEqual(self.client().info().max_request_bytes, 65536)


class OutputCapTest(pmtest.ExecutorTestCase):
    EXECUTOR_ARGS = ("--output-cap", "5000")

    def assertCapped(self, c, cap):
        delivered = len(c.stdout) + len(c.stderr)
        self.assertEqual(delivered, cap, "delivered %d bytes with a cap of %d" % (delivered, cap))
        self.assertTrue(c.exited.truncated)
        # Past the cap the output is read and dropped: the command runs to its normal end.
        self.assertEqual(c.exited.exit_code, 0, c.exited)
        self.assertFalse(c.exited.timed_out)

    def test_request_cap(self):
        step = self.client().run(request(sh("head -c 100000 /dev/zero"), output_cap=1000))
        self.assertCapped(step[0], 1000)
        self.assertEqual(bytes(step[0].stdout), b"\0" * 1000)

    def test_cap_counts_both_streams(self):
        step = self.client().run(request(
            sh("i=0; while [ $i -lt 300 ]; do echo 0123456789; echo abcdefghi >&2; i=$((i+1)); "
               "done"), output_cap=1000))
        self.assertCapped(step[0], 1000)
        self.assertTrue(set(bytes(step[0].stdout)) <= set(b"0123456789\n"))
        self.assertTrue(set(bytes(step[0].stderr)) <= set(b"abcdefghi\n"))

    def test_cap_is_per_command(self):
        step = self.client().run(request(sh("head -c 3000 /dev/zero"),
                                         sh("head -c 3000 /dev/zero"), output_cap=2000))
        self.assertCapped(step[0], 2000)
        self.assertCapped(step[1], 2000)

    def test_under_cap_not_truncated(self):
        step = self.client().run(request(sh("printf 12345"), output_cap=5))
        self.assertEqual(step[0].out, "12345")
        self.assertFalse(step[0].exited.truncated)

    def test_executor_default_cap(self):
        step = self.client().run(request(sh("head -c 100000 /dev/zero")))
        self.assertCapped(step[0], 5000)

    def test_request_cannot_raise_the_executor_cap(self):
        step = self.client().run(request(sh("head -c 100000 /dev/zero"), output_cap=1 << 40))
        self.assertCapped(step[0], 5000)

    def test_info_reports_cap(self):
        self.assertEqual(self.client().info().output_cap, 5000)


class ConcurrencyTest(pmtest.ExecutorTestCase):
    EXECUTOR_ARGS = ("--max-concurrent", "2", "--kill-grace-ms", "200")

    def test_third_call_refused(self):
        c = self.client()
        held = []
        try:
            for _ in range(2):
                call = c.run_stream(request(sh("exec sleep 100")))
                ev = next(call)
                self.assertTrue(ev.HasField("started"), ev)
                held.append(call)
            info = c.info()
            self.assertEqual(info.running, 2)
            self.assertEqual(info.max_concurrent, 2)
            e = self.assertRpcCode(EXHAUSTED, c.run_stream, request(sh("echo third")))
            self.assertTrue(e.details())
            self.assertRpcCode(EXHAUSTED, self.exe.legacy().execute, ["echo legacy"])
            # Info and health are not limited.
            self.assertEqual(self.exe.health().check("").status, pmtest.SERVING)
        finally:
            for call in held:
                call.cancel()
        wait_until(lambda: c.info().running == 0, what="slots released after cancel")
        step = c.run(request(sh("echo again")))
        self.assertEqual(step[0].out, "again\n")

    def test_limit_counts_legacy_calls(self):
        c = self.client()
        legacy = self.exe.legacy()
        futures = []
        try:
            for _ in range(2):
                futures.append(legacy._call.future(
                    pmtest.exec_pb2.ExecCommands(commands=["sleep 100"]), timeout=60))
            wait_until(lambda: c.info().running == 2, what="two legacy calls running")
            self.assertRpcCode(EXHAUSTED, c.run_stream, request(sh("echo third")))
        finally:
            for f in futures:
                f.cancel()
        wait_until(lambda: c.info().running == 0, what="slots released")


class TokenTest(pmtest.ExecutorTestCase):
    TOKEN = "s3cret-token-for-tests"

    @classmethod
    def setUpClass(cls):
        path = pmtest.fresh_path("token")
        with open(path, "w") as f:
            f.write(cls.TOKEN + "\n")
        cls.EXECUTOR_ARGS = ("--token-file", path)
        super().setUpClass()

    def test_refused_without_token(self):
        ch = self.exe.channel()
        for token in ("", "wrong", self.TOKEN + "x", self.TOKEN[:-1]):
            c = pmtest.ExecutorClient(ch, token)
            self.assertRpcCode(grpc.StatusCode.UNAUTHENTICATED, c.run_stream,
                               request(sh("echo no")))
            self.assertRpcCode(grpc.StatusCode.UNAUTHENTICATED, c.info)
            self.assertRpcCode(grpc.StatusCode.UNAUTHENTICATED,
                               pmtest.ExecClient(ch, token).execute, ["echo no"])
        c = pmtest.ExecutorClient(ch, None)
        self.assertRpcCode(grpc.StatusCode.UNAUTHENTICATED, c.run_stream, request(sh("echo no")))
        self.assertRpcCode(grpc.StatusCode.UNAUTHENTICATED, c.info)
        # Not "Bearer".
        self.assertRpcCode(grpc.StatusCode.UNAUTHENTICATED, c.info,
                           metadata=[("authorization", "Basic " + self.TOKEN)])
        self.assertRpcCode(grpc.StatusCode.UNAUTHENTICATED, c.info,
                           metadata=[("authorization", self.TOKEN)])

    def test_nothing_runs_without_token(self):
        path = pmtest.fresh_path("token-bypass")
        c = pmtest.ExecutorClient(self.exe.channel(), "wrong")
        self.assertRpcCode(grpc.StatusCode.UNAUTHENTICATED, c.run_stream,
                           request(sh("touch '%s'" % path)))
        self.assertRpcCode(grpc.StatusCode.UNAUTHENTICATED,
                           pmtest.ExecClient(self.exe.channel(), "wrong").execute,
                           ["touch '%s'" % path])
        self.assertFalse(os.path.exists(path))

    def test_accepted_with_token(self):
        step = self.client().run(request(sh("echo yes")))
        self.assertEqual(step[0].out, "yes\n")
        self.assertTrue(self.client().info().name is not None)
        r = self.exe.legacy().execute(["echo legacy"])
        self.assertTrue(r.result)

    def test_health_exempt(self):
        h = self.exe.health()
        self.assertEqual(h.check("").status, pmtest.SERVING)
        self.assertEqual(h.check("pm.executor.v1.Executor").status, pmtest.SERVING)


class HealthTest(pmtest.ExecutorTestCase):

    def test_check(self):
        h = self.exe.health()
        for service in ("", "pm.executor.v1.Executor", "exec.ExecService"):
            self.assertEqual(h.check(service).status, pmtest.SERVING, service)
        self.assertRpcCode(grpc.StatusCode.NOT_FOUND, h.check, "no.such.Service")

    def test_watch(self):
        h = self.exe.health()
        for service in ("", "pm.executor.v1.Executor"):
            call = h.watch(service)
            first = next(call)
            self.assertEqual(first.status, pmtest.SERVING)
            call.cancel()

    def test_watch_unknown_service(self):
        # The published health protocol answers Watch of an unknown service with SERVICE_UNKNOWN
        # (and keeps the stream open) rather than an error.
        call = self.exe.health().watch("no.such.Service")
        first = next(call)
        self.assertEqual(first.status, pmtest.health_pb2.HealthCheckResponse.SERVICE_UNKNOWN)
        call.cancel()


class LegacyTest(pmtest.ExecutorTestCase):

    def test_success(self):
        r = self.exe.legacy().execute(["echo a", "printf 'b c'", "true", "echo err >&2; echo d"])
        self.assertTrue(r.result, r)
        self.assertEqual(list(r.output), ["a\n", "b c", "", "d\n"])
        self.assertEqual(r.errorMessage, "")

    def test_failure(self):
        marker = pmtest.fresh_path("legacy-after-failure")
        r = self.exe.legacy().execute(["echo a", "echo oops-on-stderr >&2; exit 3",
                                       "touch '%s'" % marker])
        self.assertFalse(r.result)
        self.assertEqual(r.output[0], "a\n")
        msg = r.errorMessage
        self.assertIn("1", msg)
        self.assertIn("echo oops-on-stderr >&2; exit 3", msg)
        self.assertIn("3", msg.replace("exit 3", ""))
        self.assertIn("oops-on-stderr", msg)
        self.assertFalse(os.path.exists(marker), "commands after the failure ran")

    def test_non_utf8_output_stays_valid(self):
        # output and errorMessage are proto3 strings: the original clients (and this Python
        # client) reject a reply whose strings are not UTF-8, so raw bytes must not go out as is.
        r = self.exe.legacy().execute(["printf 'ok\\377\\376\\n'"])
        self.assertTrue(r.result)
        self.assertTrue(r.output[0].startswith("ok"))
        r = self.exe.legacy().execute(["printf 'bad\\377' >&2; exit 1"])
        self.assertFalse(r.result)
        self.assertIn("bad", r.errorMessage)

    def test_large_output_fits_a_default_client(self):
        # The original clients keep gRPC's 4 MiB receive limit; 10 MB of output must not make
        # the reply unreadable for them.
        ch = grpc.insecure_channel(self.exe.target,
                                   options=[("grpc.use_local_subchannel_pool", 1)])
        try:
            r = pmtest.ExecClient(ch).execute(["head -c 10000000 /dev/zero | tr '\\0' a"])
        finally:
            ch.close()
        self.assertGreater(len(r.output[0]), 0)
        self.assertEqual(set(r.output[0]), {"a"})

    def test_deadline_kills_process_tree(self):
        marker = pmtest.new_marker()
        pidfile = pmtest.fresh_path("legacy-deadline.pid")
        fut = self.exe.legacy()._call.future(
            pmtest.exec_pb2.ExecCommands(commands=[
                "export %s; sleep 100 & echo $! > '%s'; wait" % (marker, pidfile)]), timeout=8)
        bg = wait_until(lambda: pmtest.read_int(pidfile, None), what="pidfile")
        with self.assertRaises(grpc.RpcError) as cm:
            fut.result()
        self.assertEqual(cm.exception.code(), grpc.StatusCode.DEADLINE_EXCEEDED)
        wait_until(lambda: not pmtest.alive(bg), what="background sleep killed")
        wait_until(lambda: not pmtest.pids_with_env_marker(marker), what="no process left")

    def test_not_found(self):
        r = self.exe.legacy().execute(["pm-no-such-command-xyz"])
        self.assertFalse(r.result)
        self.assertIn("127", r.errorMessage)

    def test_wire_compatibility(self):
        # The original service's field numbers: commands=1 in the request, result=2,
        # errorMessage=3, output=4 in the reply. Encode the request by hand.
        cmd = b"echo wire"
        raw = b"\x0a" + bytes([len(cmd)]) + cmd
        call = self.exe.channel().unary_unary(
            "/exec.ExecService/ExecuteCommands", request_serializer=pmtest.identity,
            response_deserializer=pmtest.identity)
        reply = call(raw, timeout=30)
        self.assertEqual(decode_fields(reply), [(2, 0, 1), (4, 2, b"wire\n")])

    def test_empty_list(self):
        # No commands: nothing failed. Either an empty success or INVALID_ARGUMENT is defensible;
        # the executor must answer and not crash.
        try:
            r = self.exe.legacy().execute([])
            self.assertTrue(r.result)
            self.assertEqual(list(r.output), [])
        except grpc.RpcError as e:
            self.assertEqual(e.code(), INVALID)
        self.exe.assert_running(self)


class InfoTest(pmtest.ExecutorTestCase):
    EXECUTOR_ARGS = ("--name", "info-test", "--max-concurrent", "7", "--kill-grace-ms", "1234",
                     "--max-request-bytes", "100000", "--output-cap", "4096")

    def test_info(self):
        c = self.client()
        info = c.info()
        self.assertEqual(info.name, "info-test")
        self.assertTrue(info.version)
        self.assertEqual(info.max_concurrent, 7)
        self.assertEqual(info.running, 0)
        self.assertEqual(info.max_request_bytes, 100000)
        self.assertEqual(info.output_cap, 4096)
        self.assertEqual(info.kill_grace_ms, 1234)
        self.assertFalse(info.pid1)
        before = info.commands_started
        c.run(request(sh("true"), sh("true"), argv("/nonexistent")))
        after = c.info().commands_started
        self.assertGreaterEqual(after, before + 2)
        self.assertLessEqual(after, before + 3)

    def test_info_running_counts_live_steps(self):
        c = self.client()
        call = c.run_stream(request(sh("exec sleep 100")))
        next(call)
        self.assertEqual(c.info().running, 1)
        call.cancel()
        wait_until(lambda: c.info().running == 0, what="running back to 0")


class CommandLineTest(pmtest.ExecutorTestCase):
    """Flags and process-level behaviour; these start their own executors."""

    @classmethod
    def setUpClass(cls):
        cls.exe = pmtest.Executor(log_name="CommandLineTest")

    def run_exe(self, args, env=None, timeout=pmtest.STARTUP_TIMEOUT):
        full_env = dict(os.environ)
        full_env.update(env or {})
        try:
            p = subprocess.run([pmtest.EXECUTOR] + args, stdin=subprocess.DEVNULL,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=full_env,
                               timeout=timeout)
        except subprocess.TimeoutExpired as e:
            self.fail("pm-executor %r did not exit within %.0f s (it should have refused to "
                      "start); stderr: %s" % (args, timeout, (e.stderr or b"").decode("utf-8",
                                                                                     "replace")))
        return p.returncode, p.stdout.decode("utf-8", "replace"), p.stderr.decode("utf-8",
                                                                                  "replace")

    def test_help(self):
        rc, out, err = self.run_exe(["--help"])
        self.assertEqual(rc, 0, err)
        text = out + err
        for flag in ("--listen", "--name", "--max-concurrent", "--max-request-bytes",
                     "--output-cap", "--kill-grace-ms", "--shutdown-grace-ms", "--token-file",
                     "--tls-cert", "--tls-key", "--insecure", "--log-format"):
            self.assertIn(flag, text)
        self.assertIn("PM_LISTEN", text)

    def test_usage_errors_exit_2(self):
        for args in (["--no-such-flag"], ["--max-concurrent", "many"],
                     ["--log-format", "xml"], ["--kill-grace-ms", "-5"]):
            rc, out, err = self.run_exe(args + ["--listen", "127.0.0.1:%d" % pmtest.free_port()])
            self.assertEqual(rc, 2, "%r: rc %d, stderr %s" % (args, rc, err))
            self.assertTrue(err.strip(), "%r: no message on stderr" % args)
        for args in (["--listen"], ["--bogus"]):
            rc, out, err = self.run_exe(args)
            self.assertEqual(rc, 2, "%r: rc %d, stderr %s" % (args, rc, err))
            self.assertTrue(err.strip(), "%r: no message on stderr" % args)

    def test_missing_token_file_fails(self):
        rc, out, err = self.run_exe(["--listen", "127.0.0.1:%d" % pmtest.free_port(),
                                     "--token-file", "/nonexistent/token"])
        self.assertIn(rc, (1, 2))
        self.assertIn("/nonexistent/token", err)

    def test_port_in_use_fails(self):
        rc, out, err = self.run_exe(["--listen", self.exe.listen])
        self.assertEqual(rc, 1, err)
        self.assertTrue(err.strip())

    def test_env_variables(self):
        exe = pmtest.Executor(env={"PM_NAME": "from-env", "PM_MAX_CONCURRENT": "3"},
                              log_name="env-vars")
        try:
            info = exe.client().info()
            self.assertEqual(info.name, "from-env")
            self.assertEqual(info.max_concurrent, 3)
        finally:
            exe.kill()
        # The flag wins over the variable.
        exe = pmtest.Executor(args=["--name", "from-flag"], env={"PM_NAME": "from-env"},
                              log_name="env-vars2")
        try:
            self.assertEqual(exe.client().info().name, "from-flag")
        finally:
            exe.kill()

    def test_listen_from_env(self):
        port = pmtest.free_port()
        exe = pmtest.Executor(listen="127.0.0.1:%d" % port, listen_flag=False,
                              env={"PM_LISTEN": "127.0.0.1:%d" % port}, log_name="listen-env")
        try:
            self.assertEqual(exe.client().run(request(sh("echo env")))[0].out, "env\n")
        finally:
            exe.kill()

    def test_non_loopback_refused(self):
        port = pmtest.free_port()
        rc, out, err = self.run_exe(["--listen", "0.0.0.0:%d" % port])
        self.assertEqual(rc, 2, "listening on 0.0.0.0 without TLS/token/--insecure: rc %d, %s"
                         % (rc, err))
        self.assertTrue(err.strip(), "no message")
        self.assertIn("0.0.0.0", err)

    def test_non_loopback_with_insecure(self):
        port = pmtest.free_port()
        exe = pmtest.Executor(listen="0.0.0.0:%d" % port, args=["--insecure"],
                              target="127.0.0.1:%d" % port, log_name="insecure")
        try:
            self.assertEqual(exe.client().run(request(sh("echo open")))[0].out, "open\n")
        finally:
            exe.kill()

    def test_non_loopback_with_token(self):
        path = pmtest.fresh_path("token2")
        with open(path, "w") as f:
            f.write("tok\n")
        port = pmtest.free_port()
        exe = pmtest.Executor(listen="0.0.0.0:%d" % port, args=["--token-file", path],
                              target="127.0.0.1:%d" % port, log_name="nonloopback-token",
                              token="tok")
        try:
            self.assertEqual(exe.client().run(request(sh("echo tok")))[0].out, "tok\n")
        finally:
            exe.kill()

    def test_unix_socket(self):
        path = pmtest.short_socket_path("exe.sock")
        exe = pmtest.Executor(listen="unix:" + path, log_name="unix")
        try:
            step = exe.client().run(request(sh("echo over-unix")))
            self.assertEqual(step[0].out, "over-unix\n")
            self.assertEqual(exe.stop(), 0)
        finally:
            exe.kill()

    def test_unix_socket_restart_over_stale_file(self):
        # A container restart finds the socket file of the killed executor in its emptyDir.
        path = pmtest.short_socket_path("restart.sock")
        exe = pmtest.Executor(listen="unix:" + path, log_name="unix-stale1")
        exe.proc.kill()
        exe.kill()
        self.assertTrue(os.path.exists(path), "expected a stale socket file after SIGKILL")
        exe = pmtest.Executor(listen="unix:" + path, log_name="unix-stale2")
        try:
            self.assertEqual(exe.client().run(request(sh("echo again")))[0].out, "again\n")
        finally:
            exe.kill()

    def test_tls(self):
        d = pmtest.fresh_path("tls")
        os.makedirs(d)
        cert, key = os.path.join(d, "cert.pem"), os.path.join(d, "key.pem")
        subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                        "ec_paramgen_curve:prime256v1", "-nodes", "-days", "2", "-subj",
                        "/CN=localhost", "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost",
                        "-keyout", key, "-out", cert], check=True, stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL)
        port = pmtest.free_port()
        with open(cert, "rb") as f:
            creds = grpc.ssl_channel_credentials(root_certificates=f.read())
        # TLS makes a non-loopback address acceptable without --insecure.
        exe = pmtest.Executor(listen="0.0.0.0:%d" % port, args=["--tls-cert", cert,
                                                                "--tls-key", key],
                              target="127.0.0.1:%d" % port, credentials=creds, log_name="tls")
        try:
            step = exe.client().run(request(sh("echo over-tls")))
            self.assertEqual(step[0].out, "over-tls\n")
            # A plaintext client cannot talk to it.
            plain = pmtest.new_channel("127.0.0.1:%d" % port)
            self.assertRpcCode(grpc.StatusCode.UNAVAILABLE, pmtest.HealthClient(plain).check, "",
                               timeout=10)
            plain.close()
        finally:
            exe.kill()

    def test_json_logs(self):
        exe = pmtest.Executor(args=["--log-format", "json"], log_name="json")
        try:
            exe.client().run(request(sh("echo hi"), sh("exit 3")))
            self.assertEqual(exe.stop(), 0)
        finally:
            exe.kill()
        lines = [l for l in exe.log().splitlines() if l.strip()]
        self.assertTrue(lines, "no log lines")
        for line in lines:
            try:
                obj = json.loads(line)
            except ValueError:
                self.fail("log line is not JSON: %r" % line)
            self.assertIsInstance(obj, dict, line)
        # One line per command at least: the exit of the failing one should be visible.
        self.assertTrue(any("3" in json.dumps(o) for o in map(json.loads, lines)))

    def test_text_logs_one_line_per_call_and_command(self):
        exe = pmtest.Executor(log_name="text-log")
        try:
            before = len(exe.log().splitlines())
            exe.client().run(request(sh("echo a"), sh("echo b")))
            wait_until(lambda: len(exe.log().splitlines()) >= before + 3,
                       what="log lines for one call and two commands")
        finally:
            exe.kill()


class ResourceLeakTest(pmtest.ExecutorTestCase):
    EXECUTOR_ARGS = ("--kill-grace-ms", "200", "--max-concurrent", "16")

    def fd_count(self):
        return len(os.listdir("/proc/%d/fd" % self.exe.pid))

    def test_no_descriptor_leak(self):
        c = self.client()
        # Warm up (gRPC opens its own descriptors lazily), then take the baseline.
        c.run(request(sh("echo warm"), argv("cat", stdin_data=b"x")))
        baseline = self.fd_count()
        for i in range(40):
            c.run(request(sh("echo out; echo err >&2"), argv("cat", stdin_data=b"in" * 1000),
                          argv("/nonexistent"), continue_on_error=True))
            c.run(request(sh("exec sleep 10", timeout_ms=50)))
            c.run(request(sh("sleep 10 &")))
            call = c.run_stream(request(sh("exec sleep 100")))
            next(call)
            call.cancel()
            self.exe.legacy().execute(["echo a", "exit 2"])
        wait_until(lambda: c.info().running == 0, what="all steps ended")
        wait_until(lambda: self.fd_count() <= baseline + 2,
                   what="executor descriptors back near %d (now %d: %r)"
                   % (baseline, self.fd_count(),
                      sorted(os.readlink("/proc/%d/fd/%s" % (self.exe.pid, f))
                             for f in os.listdir("/proc/%d/fd" % self.exe.pid))))


class HostileInputTest(pmtest.ExecutorTestCase):
    EXECUTOR_ARGS = ("--max-request-bytes", str(1 << 20), "--max-concurrent", "8",
                     "--kill-grace-ms", "200")

    def test_still_healthy_after_bad_requests(self):
        c = self.client()
        ch = self.exe.channel()
        bad_raw = [b"\xff\xff\xff", b"", b"\x0a", b"\x0a\x80\x80\x80\x80\x80\x80\x80\x80\x80\x01",
                   b"\x0a\x02\x12\x00", b"\x12\x03a=b", b"\x0a\x03\x0a\x01",
                   b"\x0a\x06\x22\x04\xff\xfe\xfd\xfc", os.urandom(4096), b"\x00" * 100]
        for data in bad_raw:
            try:
                list(c.run_raw_stream(data, timeout=30))
            except grpc.RpcError as e:
                self.assertNotIn(e.code(), (grpc.StatusCode.UNAVAILABLE,
                                            grpc.StatusCode.DEADLINE_EXCEEDED,
                                            grpc.StatusCode.UNKNOWN, grpc.StatusCode.INTERNAL),
                                 "%r: %s %s" % (data[:20], e.code(), e.details()))
            for method in ("/exec.ExecService/ExecuteCommands", "/pm.executor.v1.Executor/Info",
                           "/grpc.health.v1.Health/Check"):
                try:
                    ch.unary_unary(method, request_serializer=pmtest.identity,
                                   response_deserializer=pmtest.identity)(data, timeout=30)
                except grpc.RpcError as e:
                    self.assertNotIn(e.code(), (grpc.StatusCode.UNAVAILABLE,
                                                grpc.StatusCode.DEADLINE_EXCEEDED,
                                                grpc.StatusCode.UNKNOWN, grpc.StatusCode.INTERNAL),
                                     "%s %r: %s %s" % (method, data[:20], e.code(), e.details()))
        big = "x" * 200000
        bad_requests = [
            pb.RunRequest(),
            request(pb.Command()),
            request(pb.Command(shell="a", argv=["b"])),
            request(argv("echo", big)),
            request(sh("true"), env=["NOEQ"]),
            request(sh("true", env=["=", "NOEQ"])),
            request(sh("echo " + "y" * (2 << 20))),
            request(argv("")),
            request(argv("", "x")),
            request(sh("")),
            request(sh("true", workdir="\n")),
            request(sh("echo a\0b")),
            request(argv("echo", "a\0b")),
            request(sh("true", env=["A=b\0c"])),
            request(sh("true"), output_cap=(1 << 64) - 1, timeout_ms=(1 << 32) - 1),
            request(sh("exit 0"), sandbox_profile="no-such-profile"),
        ]
        for req in bad_requests:
            try:
                step = c.run(req, timeout=30)
                # Some of these may legitimately run (e.g. an empty shell line); they must still
                # come back as a well-formed step.
                for i in step.indices():
                    self.assertIsNotNone(step[i].exited)
            except grpc.RpcError as e:
                self.assertNotIn(e.code(), (grpc.StatusCode.UNAVAILABLE,
                                            grpc.StatusCode.DEADLINE_EXCEEDED,
                                            grpc.StatusCode.UNKNOWN, grpc.StatusCode.INTERNAL),
                                 "%s: %s %s" % (str(req)[:100], e.code(), e.details()))
        # Streams abandoned mid-way, many at once.
        calls = [c.run_stream(request(sh("yes | head -c 10000000"))) for _ in range(4)]
        for call in calls:
            next(call)
        for call in calls:
            call.cancel()
        # Connections dropped with calls in flight.
        for _ in range(3):
            ch2 = pmtest.new_channel(self.exe.target)
            call = pmtest.ExecutorClient(ch2).run_stream(request(sh("exec sleep 100")))
            next(call)
            ch2.close()
        wait_until(lambda: c.info().running == 0, what="all abandoned steps ended")
        self.exe.assert_running(self)
        self.assertEqual(self.exe.health().check("").status, pmtest.SERVING)
        step = c.run(request(sh("echo still-alive")))
        self.assertEqual(step[0].out, "still-alive\n")
        self.assertEqual(step[0].exited.exit_code, 0)
        self.exe.assert_running(self)


if __name__ == "__main__":
    pmtest.main()

#!/usr/bin/python3
"""End-to-end tests of pm.executor.v1.Executor/Run: output, exit status, failure policy,
environment, working directory, stdin, binary data, spawn errors, timeouts, cancellation and the
process tree left behind. One pm-executor serves the whole module; a Python gRPC client drives it."""

import os
import signal
import subprocess
import sys
import unittest

sys.dont_write_bytecode = True  # Never leave __pycache__ in the source or runfiles tree.
sys.path.insert(0, os.path.join(os.environ.get("TEST_SRCDIR", "."),
                                os.environ.get("TEST_WORKSPACE", "pm"), "tests"))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import grpc  # noqa: E402

import pmtest  # noqa: E402
from pmtest import argv, request, sh, wait_until  # noqa: E402


# Signals 1..31. Signals 32 and 33 belong to glibc (thread cancellation, setxid), which refuses
# to change them, so an inherited state there is not the executor's to fix.
STANDARD_SIGNALS = (1 << 31) - 1


def assert_default_signals(test, run_step):
    step = run_step(argv("grep", "-E", "^Sig(Blk|Ign):", "/proc/self/status"))
    fields = dict(line.split(":") for line in step[0].out.splitlines())
    test.assertEqual(int(fields["SigBlk"].strip(), 16) & STANDARD_SIGNALS, 0,
                     "a command starts with signals blocked: " + step[0].out)
    test.assertEqual(int(fields["SigIgn"].strip(), 16) & STANDARD_SIGNALS, 0,
                     "a command starts with signals ignored: " + step[0].out)


class OutputTest(pmtest.ExecutorTestCase):

    def test_stdout_and_stderr_kept_apart_and_in_order(self):
        n = 3000
        step = self.run_step(sh("i=1; while [ $i -le %d ]; do echo out$i; echo err$i >&2; "
                                "i=$((i+1)); done" % n))
        c = step[0]
        self.assertEqual(c.out, "".join("out%d\n" % i for i in range(1, n + 1)))
        self.assertEqual(c.err, "".join("err%d\n" % i for i in range(1, n + 1)))
        self.assertEqual(c.exited.exit_code, 0)
        self.assertEqual(c.exited.signal, 0)
        self.assertFalse(c.exited.timed_out)
        self.assertFalse(c.exited.cancelled)
        self.assertFalse(c.exited.truncated)
        self.assertEqual(c.exited.error, "")
        self.assertEqual(c.exited.stdout_bytes, len(c.stdout))
        self.assertEqual(c.exited.stderr_bytes, len(c.stderr))

    def test_started_pid_leads_its_own_process_group_and_session(self):
        step = self.run_step(sh("echo $$; cut -d' ' -f5,6 /proc/$$/stat"))
        c = step[0]
        self.assertIsNotNone(c.started, step)
        pid = c.started.pid
        self.assertGreater(pid, 0)
        lines = c.out.split("\n")
        self.assertEqual(int(lines[0]), pid, "Started.pid is not the shell's pid: %r" % step)
        pgrp, sid = (int(x) for x in lines[1].split())
        self.assertEqual(pgrp, pid, "command is not its own process group leader")
        self.assertEqual(sid, pid, "command does not run in its own session")

    def test_child_gets_only_standard_fds(self):
        # No descriptor of the executor (listening socket, epoll, signalfd, other steps' pipes)
        # may leak into a command.
        step = self.run_step(sh("ls /proc/$$/fd"))
        self.assertEqual(sorted(step[0].out.split()), ["0", "1", "2"], step)

    def test_child_signal_state_reset(self):
        # The executor blocks signals for its signalfd and may ignore SIGPIPE; a command must
        # start with an empty mask and default dispositions (else `yes | head` never ends and
        # TERM cannot stop it).
        assert_default_signals(self, self.run_step)
        step = self.run_step(sh("yes | head -c 10"))
        self.assertEqual(step[0].out, "y\ny\ny\ny\ny\n")

    def test_exited_accounting(self):
        step = self.run_step(sh("i=0; while [ $i -lt 100000 ]; do i=$((i+1)); done; "
                                "printf abc; printf defgh >&2"))
        e = step[0].exited
        self.assertEqual(e.exit_code, 0)
        self.assertEqual(e.stdout_bytes, 3)
        self.assertEqual(e.stderr_bytes, 5)
        self.assertGreater(e.wall_us, 0)
        self.assertGreater(e.user_us + e.sys_us, 0, "a busy loop used no CPU time: %r" % e)
        self.assertGreater(e.max_rss_kb, 0)

    def test_max_rss_of_the_command(self):
        # The figure is the command's (and its waited-for children's), not the executor's.
        step = self.run_step(argv("/usr/bin/python3", "-c",
                                  "b = bytearray(100 << 20); b[::4096] = b'x' * len(b[::4096])"))
        e = step[0].exited
        self.assertEqual(e.exit_code, 0, step)
        self.assertGreaterEqual(e.max_rss_kb, 100 * 1024, e)
        self.assertLess(e.max_rss_kb, 1024 * 1024, e)

    def test_output_closed_while_running(self):
        # EOF on both pipes long before the exit: the executor must still wait for the status.
        step = self.run_step(sh("echo early; exec >&- 2>&-; sleep 1; exit 3"), sh("echo next"))
        self.assertEqual(step[0].out, "early\n")
        self.assertEqual(step[0].exited.exit_code, 3)
        self.assertEqual(step.indices(), [0])

    def test_unknown_fields_ignored(self):
        # A newer client may send fields this executor does not know; protobuf says ignore them.
        req = request(sh("echo forward-compatible")).SerializeToString()
        req += b"\xf8\x06\x01"            # field 111, varint 1
        req += b"\x82\x07\x03abc"         # field 112, bytes "abc"
        step = pmtest.Step(list(self.client().run_raw_stream(req)))
        self.assertEqual(step[0].out, "forward-compatible\n")

    def test_max_limits_do_not_overflow(self):
        # The largest timeout_ms and output_cap are "practically none", not a wrap-around.
        step = self.run_step(sh("sleep 0.2; head -c 100000 /dev/zero"), timeout_ms=(1 << 32) - 1,
                             output_cap=(1 << 64) - 1)
        e = step[0].exited
        self.assertFalse(e.timed_out, step)
        self.assertFalse(e.truncated, step)
        self.assertEqual(len(step[0].stdout), 100000)
        step = self.run_step(sh("sleep 0.2; echo ok", timeout_ms=(1 << 32) - 1))
        self.assertFalse(step[0].exited.timed_out)
        self.assertEqual(step[0].out, "ok\n")

    def test_argv_found_in_path(self):
        step = self.run_step(argv("echo", "a b", "$HOME", "'q'"))
        self.assertEqual(step[0].out, "a b $HOME 'q'\n")
        self.assertEqual(step[0].exited.exit_code, 0)

    def test_binary_output_intact(self):
        blob = os.urandom(1 << 20) + b"\0\0\xff\xfe\0" + bytes(range(256))
        path = pmtest.fresh_path("blob.bin")
        with open(path, "wb") as f:
            f.write(blob)
        step = self.run_step(argv("cat", path), sh("cat '%s' >&2" % path),
                             sh(r"printf '\0\377\0'"))
        self.assertEqual(pmtest.sha256(bytes(step[0].stdout)), pmtest.sha256(blob))
        self.assertEqual(len(step[0].stdout), len(blob))
        self.assertEqual(step[0].exited.stdout_bytes, len(blob))
        self.assertEqual(pmtest.sha256(bytes(step[1].stderr)), pmtest.sha256(blob))
        self.assertEqual(step[1].stdout, b"")
        self.assertEqual(bytes(step[2].stdout), b"\0\xff\0")

    def test_ten_megabytes_with_a_default_channel(self):
        # A default Python channel accepts messages up to 4 MiB; the executor must chunk below it.
        ch = grpc.insecure_channel(self.exe.target)
        try:
            c = pmtest.ExecutorClient(ch)
            step = c.run(request(sh("head -c 10000000 /dev/zero")))
        finally:
            ch.close()
        self.assertEqual(len(step[0].stdout), 10000000)
        self.assertEqual(step[0].stdout.count(0), 10000000)
        self.assertLess(step[0].max_chunk, 4 << 20)


class InheritedSignalStateTest(pmtest.ExecutorTestCase):
    """The executor started the way `nohup` or `pm-executor &` in a script starts it: with INT,
    QUIT, HUP (and here TERM, USR1) ignored. Dispositions survive exec, so unless the child resets
    them (libuv's habit, STYLE.md) every command inherits them, and `kill -TERM`, Ctrl-C
    semantics and the TERM stage of a timeout silently stop working."""

    @classmethod
    def setUpClass(cls):
        cls.exe = pmtest.Executor(
            wrapper=["/bin/sh", "-c", 'trap "" INT QUIT HUP TERM USR1; exec "$0" "$@"'],
            args=("--kill-grace-ms", "500"), log_name=cls.__name__)

    def test_commands_get_default_dispositions(self):
        assert_default_signals(self, self.run_step)

    def test_sigterm_kills_a_command(self):
        step = self.run_step(sh("kill -TERM $$; exit 3"))
        self.assertEqual(step[0].exited.signal, signal.SIGTERM, step)

    def test_timeout_stops_with_sigterm(self):
        step = self.run_step(sh("exec sleep 100", timeout_ms=300))
        self.assertTrue(step[0].exited.timed_out)
        self.assertEqual(step[0].exited.signal, signal.SIGTERM, step)


class ExitStatusTest(pmtest.ExecutorTestCase):

    def test_exit_codes(self):
        for code in (0, 1, 3, 42, 255):
            step = self.run_step(sh("exit %d" % code))
            e = step[0].exited
            self.assertEqual(e.exit_code, code)
            self.assertEqual(e.signal, 0)
        step = self.run_step(argv("false"))
        self.assertEqual(step[0].exited.exit_code, 1)

    def test_exit_code_above_128_is_not_a_signal(self):
        step = self.run_step(sh("exit 137"))
        self.assertEqual(step[0].exited.exit_code, 137)
        self.assertEqual(step[0].exited.signal, 0)

    def test_nonzero_exit_is_data_not_an_rpc_error(self):
        call = self.client().run_stream(request(sh("echo x; exit 9")))
        step = pmtest.Step(list(call))
        self.assertEqual(call.code(), grpc.StatusCode.OK)
        self.assertEqual(step[0].exited.exit_code, 9)

    def test_killed_by_signal(self):
        step = self.run_step(sh("echo before; kill -KILL $$; echo after"))
        e = step[0].exited
        self.assertEqual(e.exit_code, -1)
        self.assertEqual(e.signal, signal.SIGKILL)
        self.assertEqual(step[0].out, "before\n")
        step = self.run_step(sh("kill -TERM $$"))
        self.assertEqual(step[0].exited.exit_code, -1)
        self.assertEqual(step[0].exited.signal, signal.SIGTERM)

    def test_stop_at_first_failure(self):
        step = self.run_step(sh("echo a"), sh("echo b; exit 4"), sh("echo c"))
        self.assertEqual(step.indices(), [0, 1], step)
        self.assertEqual(step[0].out, "a\n")
        self.assertEqual(step[1].out, "b\n")
        self.assertEqual(step[1].exited.exit_code, 4)

    def test_signal_counts_as_failure(self):
        step = self.run_step(sh("kill -KILL $$"), sh("echo never"))
        self.assertEqual(step.indices(), [0], step)

    def test_continue_on_error(self):
        step = self.run_step(sh("echo a; exit 1"), sh("kill -KILL $$"), argv("/nonexistent/x"),
                             sh("echo d"), continue_on_error=True)
        self.assertEqual(step.indices(), [0, 1, 2, 3], step)
        self.assertEqual(step[0].exited.exit_code, 1)
        self.assertEqual(step[1].exited.signal, signal.SIGKILL)
        self.assertEqual(step[2].exited.exit_code, 127)
        self.assertEqual(step[3].out, "d\n")
        self.assertEqual(step[3].exited.exit_code, 0)


class EnvironmentTest(pmtest.ExecutorTestCase):

    EXECUTOR_ENV = {"PM_TEST_INHERITED": "from-executor"}

    def test_env_layers(self):
        step = self.run_step(
            sh('echo "$FOO|$BAZ|$PM_TEST_INHERITED|$EMPTY|$EQ"',
               env=["BAZ=qux", "FOO=override", "EMPTY=", "EQ=a=b"]),
            sh('echo "$FOO|$BAZ"'),
            env=["FOO=bar", "BAZ=step"])
        self.assertEqual(step[0].out, "override|qux|from-executor||a=b\n")
        self.assertEqual(step[1].out, "bar|step\n", "command env leaked into the next command")

    def test_clear_env(self):
        step = self.run_step(argv("/usr/bin/env"), argv("/usr/bin/env", env=["B=2"]),
                             env=["A=1"], clear_env=True)
        # The executor always adds PM_COMMAND_ID (its number for the command, inherited by
        # descendants so escaped orphans can be found); nothing else comes from its environment.
        lines0 = step[0].out.splitlines()
        lines1 = step[1].out.splitlines()
        ids = [l for l in lines0 + lines1 if l.startswith("PM_COMMAND_ID=")]
        self.assertEqual(len(ids), 2, step[0].out + step[1].out)
        self.assertTrue(all(l.split("=", 1)[1].isdigit() for l in ids), ids)
        self.assertNotEqual(ids[0], ids[1])
        self.assertEqual([l for l in lines0 if not l.startswith("PM_COMMAND_ID=")], ["A=1"])
        self.assertEqual(sorted(l for l in lines1 if not l.startswith("PM_COMMAND_ID=")),
                         ["A=1", "B=2"])

    def test_duplicate_env_last_wins(self):
        step = self.run_step(sh('echo "$D"', env=["D=3", "D=4"]), env=["D=1", "D=2"])
        self.assertEqual(step[0].out, "4\n")
        step = self.run_step(sh('echo "$D"'), env=["D=1", "D=2"])
        self.assertEqual(step[0].out, "2\n")

    def test_workdir(self):
        base = os.path.realpath(pmtest.tmpdir())
        sub = os.path.join(base, "sub dir")
        os.makedirs(sub, exist_ok=True)
        step = self.run_step(sh("pwd -P"), sh("pwd -P", workdir=sub), argv("/bin/pwd"),
                             workdir=base)
        self.assertEqual(step[0].out, base + "\n")
        self.assertEqual(step[1].out, sub + "\n")
        self.assertEqual(os.path.realpath(step[2].out.strip()), base)

    def test_bad_workdir(self):
        missing = pmtest.fresh_path("no-such-dir")
        step = self.run_step(sh("echo never", workdir=missing))
        e = step[0].exited
        self.assertIn(e.exit_code, (126, 127), step)
        self.assertIn("no-such-dir", e.error, "Exited.error should name the directory: %r" % e)
        self.assertEqual(step[0].stdout, b"")
        # A step-level workdir that is not a directory.
        f = pmtest.fresh_path("plain-file")
        open(f, "w").close()
        step = self.run_step(sh("echo never"), workdir=f)
        self.assertIn(step[0].exited.exit_code, (126, 127), step)
        self.assertIn("plain-file", step[0].exited.error)

    def test_stdin(self):
        data = b"hello\0world\xff\n"
        step = self.run_step(argv("cat", stdin_data=data), argv("cat"),
                             sh("wc -c", stdin_data=b"12345"))
        self.assertEqual(bytes(step[0].stdout), data)
        self.assertEqual(step[1].stdout, b"", "empty stdin should read /dev/null")
        self.assertEqual(step[2].out.strip(), "5")

    def test_large_stdin_echoed_back(self):
        # More than a pipe holds in both directions: the executor must write stdin while it reads
        # stdout, or the step deadlocks (the call deadline then fails the test).
        data = os.urandom(2 << 20)
        step = self.run_step(argv("cat", stdin_data=data))
        self.assertEqual(pmtest.sha256(bytes(step[0].stdout)), pmtest.sha256(data))

    def test_stdin_not_read(self):
        # The command exits without reading its stdin: that is not an error of the step.
        step = self.run_step(sh("echo done", stdin_data=os.urandom(1 << 20)), sh("echo next"))
        self.assertEqual(step[0].out, "done\n")
        self.assertEqual(step[0].exited.exit_code, 0)
        self.assertEqual(step[1].out, "next\n")


class SpawnErrorTest(pmtest.ExecutorTestCase):

    def test_not_found_absolute(self):
        step = self.run_step(argv("/nonexistent"))
        c = step[0]
        self.assertIsNone(c.started, "no Started event for a command that could not be spawned")
        self.assertEqual(c.exited.exit_code, 127)
        self.assertIn("/nonexistent", c.exited.error)
        self.assertIn("No such file or directory", c.exited.error)

    def test_not_found_in_path(self):
        step = self.run_step(argv("pm-no-such-command-xyz", "arg"))
        self.assertEqual(step[0].exited.exit_code, 127)
        self.assertIn("pm-no-such-command-xyz", step[0].exited.error)

    def test_not_found_by_shell(self):
        step = self.run_step(sh("pm-no-such-command-xyz"))
        self.assertEqual(step[0].exited.exit_code, 127)
        self.assertIn("pm-no-such-command-xyz", step[0].err)

    def test_not_executable(self):
        path = pmtest.fresh_path("not-executable.sh")
        with open(path, "w") as f:
            f.write("#!/bin/sh\necho hi\n")
        os.chmod(path, 0o644)
        step = self.run_step(argv(path))
        self.assertIsNone(step[0].started)
        self.assertEqual(step[0].exited.exit_code, 126)
        self.assertIn(path, step[0].exited.error)
        self.assertIn("Permission denied", step[0].exited.error)

    def test_directory_is_not_executable(self):
        d = pmtest.tmpdir()
        step = self.run_step(argv(d))
        self.assertEqual(step[0].exited.exit_code, 126)
        self.assertIn(d, step[0].exited.error)

    def test_bad_interpreter(self):
        path = pmtest.fresh_path("bad-interp")
        with open(path, "w") as f:
            f.write("#!/nonexistent/interpreter\n")
        os.chmod(path, 0o755)
        step = self.run_step(argv(path))
        self.assertIn(step[0].exited.exit_code, (126, 127))
        self.assertIn(path, step[0].exited.error)

    def test_executor_survives_and_continues(self):
        step = self.run_step(argv("/nonexistent"), sh("echo after"), continue_on_error=True)
        self.assertEqual(step[1].out, "after\n")


class TimeoutTest(pmtest.ExecutorTestCase):
    EXECUTOR_ARGS = ("--output-cap", "0", "--kill-grace-ms", "500")

    def test_command_timeout(self):
        step = self.run_step(sh("echo start; exec sleep 100", timeout_ms=1000), sh("echo never"))
        c = step[0]
        self.assertTrue(c.exited.timed_out, step)
        self.assertEqual(c.exited.exit_code, -1)
        self.assertEqual(c.exited.signal, signal.SIGTERM)
        self.assertEqual(c.out, "start\n")
        self.assertEqual(step.indices(), [0], "a timed-out command is a failure")

    def test_step_timeout_applies_to_each_command(self):
        step = self.run_step(sh("echo fast"), sh("sleep 100"), timeout_ms=2000)
        self.assertFalse(step[0].exited.timed_out)
        self.assertTrue(step[1].exited.timed_out)

    def test_command_timeout_overrides_step(self):
        step = self.run_step(sh("sleep 0.2; echo ok", timeout_ms=30000), timeout_ms=1)
        self.assertFalse(step[0].exited.timed_out, step)
        self.assertEqual(step[0].out, "ok\n")

    def test_timeout_of_a_stopped_command(self):
        # A stopped process does not act on SIGTERM; the step must still end (SIGKILL, or
        # SIGTERM followed by SIGCONT).
        marker = pmtest.new_marker()
        step = self.run_step(sh("kill -STOP $$; echo never", timeout_ms=300, env=[marker]))
        e = step[0].exited
        self.assertTrue(e.timed_out, step)
        self.assertIn(e.signal, (signal.SIGTERM, signal.SIGKILL), step)
        wait_until(lambda: not pmtest.pids_with_env_marker(marker), what="stopped command gone")

    def test_timeout_escalates_to_sigkill(self):
        marker = pmtest.new_marker()
        step = self.run_step(sh("trap '' TERM; echo armed; sleep 100; sleep 100",
                                timeout_ms=2000, env=[marker]))
        c = step[0]
        self.assertTrue(c.exited.timed_out)
        self.assertEqual(c.exited.signal, signal.SIGKILL, step)
        wait_until(lambda: not pmtest.pids_with_env_marker(marker), what="TERM-proof step gone")

    def test_timeout_kills_background_grandchildren(self):
        marker = pmtest.new_marker()
        pidfile = pmtest.fresh_path("bg-timeout.pid")
        step = self.run_step(sh("sleep 100 & echo $! > '%s'; wait" % pidfile,
                                timeout_ms=2000, env=[marker]))
        self.assertTrue(step[0].exited.timed_out)
        bg = pmtest.read_int(pidfile)
        wait_until(lambda: not pmtest.alive(bg), what="background sleep %d killed" % bg)
        wait_until(lambda: not pmtest.pids_with_env_marker(marker),
                   what="no process of the step left")


class ProcessTreeTest(pmtest.ExecutorTestCase):
    EXECUTOR_ARGS = ("--output-cap", "0", "--kill-grace-ms", "500")

    def _start_and_wait(self, line, marker, pidfile, timeout=pmtest.CALL_TIMEOUT):
        call = self.client().run_stream(request(sh(line, env=[marker])), timeout=timeout)
        first = next(call)
        self.assertTrue(first.HasField("started"), first)
        wait_until(lambda: pmtest.read_int(pidfile, None),
                   what="pidfile %s" % pidfile)
        return call, first.started.pid, pmtest.read_int(pidfile)

    def _assert_tree_gone(self, leader, bg, marker):
        wait_until(lambda: not pmtest.alive(bg), what="background sleep %d killed" % bg)
        wait_until(lambda: not pmtest.alive(leader), what="command %d killed" % leader)
        wait_until(lambda: not pmtest.pids_in_group(leader),
                   what="process group %d empty" % leader)
        wait_until(lambda: not pmtest.pids_with_env_marker(marker),
                   what="no process of the step left")

    def test_cancel_kills_process_tree(self):
        marker = pmtest.new_marker()
        pidfile = pmtest.fresh_path("cancel.pid")
        call, leader, bg = self._start_and_wait(
            "sleep 100 & echo $! > '%s'; wait" % pidfile, marker, pidfile)
        self.assertTrue(pmtest.alive(bg))
        self.assertEqual(pmtest.proc_stat(bg)[2], leader, "background job not in the group")
        call.cancel()
        self._assert_tree_gone(leader, bg, marker)
        self.assertEqual(call.code(), grpc.StatusCode.CANCELLED)
        wait_until(lambda: self.client().info().running == 0, what="Info.running back to 0")

    def test_cancel_with_stdin_pending(self):
        # The command never reads its stdin: the executor is blocked writing it when cancelled.
        marker = pmtest.new_marker()
        call = self.client().run_stream(request(sh("exec sleep 100", env=[marker],
                                                   stdin_data=os.urandom(1 << 20))))
        self.assertTrue(next(call).HasField("started"))
        call.cancel()
        wait_until(lambda: not pmtest.pids_with_env_marker(marker), what="step gone")
        wait_until(lambda: self.client().info().running == 0, what="Info.running back to 0")

    def test_cancel_stopped_command(self):
        marker = pmtest.new_marker()
        call = self.client().run_stream(request(sh("echo x; kill -STOP $$", env=[marker])))
        self.assertTrue(next(call).HasField("started"))
        wait_until(lambda: any(pmtest.proc_stat(p) and pmtest.proc_stat(p)[0] == "T"
                               for p in pmtest.pids_with_env_marker(marker)),
                   what="command stopped")
        call.cancel()
        wait_until(lambda: not pmtest.pids_with_env_marker(marker), what="stopped step gone")

    def test_setsid_escapee_killed(self):
        # DESIGN.md: "No orphan survives a step." A daemon that leaves the process group with
        # setsid is still a process of the step.
        marker = pmtest.new_marker()
        pidfile = pmtest.fresh_path("setsid.pid")
        # The step waits for the pidfile, so the escapee is in its own session before the
        # step's process group is cleaned up.
        step = self.run_step(sh("setsid sh -c 'echo $$ > \"$0\"; exec sleep 100' '%s' "
                                "</dev/null >/dev/null 2>&1 & "
                                "while [ ! -s '%s' ]; do sleep 0.05; done" % (pidfile, pidfile),
                                env=[marker]))
        self.assertEqual(step[0].exited.exit_code, 0)
        escapee = wait_until(lambda: pmtest.read_int(pidfile, None), what="pidfile")
        wait_until(lambda: not pmtest.alive(escapee),
                   what="setsid'd sleep %d killed (state %r, ppid %r)"
                   % (escapee, pmtest.proc_stat(escapee), (pmtest.proc_stat(escapee) or
                                                           [None, None])[1]))
        wait_until(lambda: not pmtest.pids_with_env_marker(marker), what="no process left")

    def test_cancel_escalates_to_sigkill(self):
        marker = pmtest.new_marker()
        pidfile = pmtest.fresh_path("cancel-term.pid")
        call, leader, bg = self._start_and_wait(
            "trap '' TERM; sleep 100 & echo $! > '%s'; wait; wait" % pidfile, marker, pidfile)
        call.cancel()
        self._assert_tree_gone(leader, bg, marker)

    def test_deadline_kills_process_tree(self):
        marker = pmtest.new_marker()
        pidfile = pmtest.fresh_path("deadline.pid")
        call, leader, bg = self._start_and_wait(
            "sleep 100 & echo $! > '%s'; wait" % pidfile, marker, pidfile, timeout=8)
        with self.assertRaises(grpc.RpcError) as cm:
            list(call)
        self.assertEqual(cm.exception.code(), grpc.StatusCode.DEADLINE_EXCEEDED)
        self._assert_tree_gone(leader, bg, marker)

    def test_leftover_background_killed_after_normal_exit(self):
        # The background sleep keeps the output pipe open: the executor must not wait for its EOF.
        marker = pmtest.new_marker()
        pidfile = pmtest.fresh_path("leftover.pid")
        step = self.run_step(sh("sleep 100 & echo $! > '%s'" % pidfile, env=[marker]),
                             sh("echo second"))
        self.assertEqual(step[0].exited.exit_code, 0)
        self.assertEqual(step[1].out, "second\n")
        bg = pmtest.read_int(pidfile)
        wait_until(lambda: not pmtest.alive(bg), what="leftover sleep %d killed" % bg)
        wait_until(lambda: not pmtest.pids_with_env_marker(marker),
                   what="no process of the step left")

    def test_leftover_with_closed_output(self):
        marker = pmtest.new_marker()
        step = self.run_step(sh("sleep 100 >/dev/null 2>&1 </dev/null &", env=[marker]))
        self.assertEqual(step[0].exited.exit_code, 0)
        wait_until(lambda: not pmtest.pids_with_env_marker(marker),
                   what="no process of the step left")

    def test_no_zombies_after_steps(self):
        for _ in range(5):
            self.run_step(sh("true"), sh("(sleep 0.01 &); exit 0"), sh("sleep 0 & wait"))
        wait_until(lambda: not pmtest.zombie_children(self.exe.pid),
                   what="no zombie children of the executor")

    def test_cancel_before_output(self):
        # Cancelling a stream many times in a row must not leak slots or processes.
        markers = []
        for _ in range(10):
            marker = pmtest.new_marker()
            markers.append(marker)
            call = self.client().run_stream(request(sh("sleep 100", env=[marker])))
            next(call)
            call.cancel()
        for marker in markers:
            wait_until(lambda: not pmtest.pids_with_env_marker(marker),
                       what="cancelled step gone")
        wait_until(lambda: self.client().info().running == 0, what="Info.running back to 0")
        self.assertEqual(self.run_step(sh("echo alive"))[0].out, "alive\n")


class InstallTest(unittest.TestCase):
    """--install PATH: what the init container of an injected pod runs."""

    def test_copies_itself_executable(self):
        d = pmtest.tmpdir()
        dest = os.path.join(d, "pm-executor")
        r = subprocess.run([pmtest.EXECUTOR, "--install", dest], capture_output=True, timeout=60)
        self.assertEqual(r.returncode, 0, r.stderr)
        with open(dest, "rb") as a, open(pmtest.EXECUTOR, "rb") as b:
            self.assertEqual(a.read(), b.read())
        self.assertTrue(os.access(dest, os.X_OK))
        self.assertFalse(os.path.exists(dest + ".tmp"))
        r = subprocess.run([dest, "--help"], capture_output=True, timeout=60)
        self.assertEqual(r.returncode, 0)
        self.assertIn(b"pm-executor", r.stdout)

    def test_missing_directory_is_an_error(self):
        dest = os.path.join(pmtest.tmpdir(), "no-such-dir", "pm-executor")
        r = subprocess.run([pmtest.EXECUTOR, "--install", dest], capture_output=True, timeout=60)
        self.assertEqual(r.returncode, 1)
        self.assertIn(b"--install", r.stderr)
        self.assertIn(b"No such file or directory", r.stderr)


if __name__ == "__main__":
    pmtest.main()

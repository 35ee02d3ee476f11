#!/usr/bin/python3
"""End-to-end tests of pm-executor's process lifecycle: PID-1 mode (`pm-executor [flags] -- APP`)
forwarding signals to the app, exiting with its status, serving gRPC meanwhile and reaping every
orphan, both as a subreaper in this PID namespace and as real PID 1 of a new one; and graceful
shutdown on SIGTERM in plain serving mode."""

import os
import signal
import sys
import threading
import time

sys.dont_write_bytecode = True  # Never leave __pycache__ in the source or runfiles tree.
sys.path.insert(0, os.path.join(os.environ.get("TEST_SRCDIR", "."),
                                os.environ.get("TEST_WORKSPACE", "pm"), "tests"))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import grpc  # noqa: E402

import pmtest  # noqa: E402
from pmtest import request, sh, wait_until  # noqa: E402

def trap_app():
    """An app that exits 7 on SIGTERM and 8 on SIGINT, and a file it creates once its traps are
    set (a signal sent before that would kill the shell instead of running the trap)."""
    ready = pmtest.fresh_path("app-ready")
    return (["sh", "-c", 'trap "exit 7" TERM; trap "exit 8" INT; : > "$0"; '
             'while :; do sleep 0.1; done', ready], ready)


def wait_ready(path):
    wait_until(lambda: os.path.exists(path), what="the app to set its traps")


def find_child(ppid, comm):
    for pid, _ in pmtest.children(ppid):
        try:
            with open("/proc/%d/comm" % pid) as f:
                if f.read().strip() == comm:
                    return pid
        except OSError:
            pass
    return None


class Pid1Test(pmtest.unittest.TestCase):

    def setUp(self):
        self.exes = []

    def tearDown(self):
        for exe in self.exes:
            exe.kill()

    def start(self, app, args=(), wrapper=(), **kw):
        exe = pmtest.Executor(args=list(args), app=app, wrapper=wrapper,
                              log_name=self.id().split(".")[-1], **kw)
        self.exes.append(exe)
        return exe

    def test_sigterm_forwarded_and_exit_status(self):
        app_argv, ready = trap_app()
        exe = self.start(app_argv)
        wait_ready(ready)
        info = exe.client().info()
        self.assertTrue(info.pid1, "Info.pid1 should be true with an app after --")
        step = exe.client().run(request(sh("echo serving-beside-the-app")))
        self.assertEqual(step[0].out, "serving-beside-the-app\n")
        app = wait_until(lambda: find_child(exe.pid, "sh"), what="the app as a child")
        self.assertTrue(pmtest.alive(app))
        exe.signal(signal.SIGTERM)
        rc = exe.wait()
        self.assertEqual(rc, 7, "executor should exit with the app's status; log:\n" + exe.log())
        self.assertFalse(pmtest.alive(app))

    def test_sigint_forwarded(self):
        app_argv, ready = trap_app()
        exe = self.start(app_argv)
        wait_ready(ready)
        exe.signal(signal.SIGINT)
        self.assertEqual(exe.wait(), 8, exe.log())

    def test_app_exit_status(self):
        path = pmtest.fresh_path("app-go")
        exe = self.start(["sh", "-c", 'while [ ! -e "$0" ]; do sleep 0.05; done; exit 5', path])
        open(path, "w").close()
        self.assertEqual(exe.wait(), 5, exe.log())

    def test_app_killed_by_signal(self):
        path = pmtest.fresh_path("app-go-kill")
        exe = self.start(["sh", "-c", 'while [ ! -e "$0" ]; do sleep 0.05; done; kill -KILL $$',
                          path])
        open(path, "w").close()
        self.assertEqual(exe.wait(), 128 + signal.SIGKILL, exe.log())

    def test_app_exit_ends_running_steps(self):
        # The app exits while a step runs: the executor exits with the app's status, and no
        # process of the step outlives it.
        go = pmtest.fresh_path("app-exit-go")
        exe = self.start(["sh", "-c", 'while [ ! -e "$0" ]; do sleep 0.05; done; exit 4', go],
                         args=["--shutdown-grace-ms", "1000", "--kill-grace-ms", "200"])
        marker = pmtest.new_marker()
        call = exe.client().run_stream(request(sh("sleep 1000", env=[marker])), timeout=120)
        self.assertTrue(next(call).HasField("started"))
        open(go, "w").close()
        self.assertEqual(exe.wait(), 4, exe.log())
        wait_until(lambda: not pmtest.pids_with_env_marker(marker),
                   what="the step's sleep gone after the executor exited")

    def test_app_not_found(self):
        exe = pmtest.Executor(app=["/nonexistent/app"], wait=False, log_name="app-not-found")
        self.exes.append(exe)
        rc = exe.wait()
        self.assertEqual(rc, 127, exe.log())
        self.assertIn("/nonexistent/app", exe.log())

    def test_orphans_reaped(self):
        # The orphan waits for a file, so there is no race: it reparents to the executor (the
        # subreaper) while we look, then exits when told, and must be reaped, not left a zombie.
        go = pmtest.fresh_path("orphan-go")
        orphan_script = 'while [ ! -e "%s" ]; do sleep 0.05; done' % go
        exe = self.start(["sh", "-c", '(sh -c \'%s\' &); exec sleep 1000' % orphan_script])

        def orphan():
            for pid, state in pmtest.children(exe.pid):
                try:
                    with open("/proc/%d/cmdline" % pid, "rb") as f:
                        cmd = f.read()
                except OSError:
                    continue
                parts = cmd.split(b"\0")
                # The orphan's argv is sh -c 'while ...'; the app's own (before its exec) is not.
                if len(parts) > 2 and parts[2].startswith(b"while") and go.encode() in parts[2]:
                    return pid
            return None
        orphan_pid = wait_until(orphan, what="the orphan reparented to the executor "
                                "(is it a subreaper?); children %r" % pmtest.children(exe.pid))
        open(go, "w").close()
        wait_until(lambda: pmtest.proc_stat(orphan_pid) is None,
                   what="orphan %d reaped (state now %r)"
                   % (orphan_pid, pmtest.proc_stat(orphan_pid)))
        wait_until(lambda: not pmtest.zombie_children(exe.pid), what="no zombie children")
        # The quick example from the contract too.
        exe2 = self.start(["sh", "-c", '(sleep 0.2 &); exec sleep 1000'])
        time.sleep(1)  # Let the short sleep end; reaping is then checked with a bounded wait.
        wait_until(lambda: not pmtest.zombie_children(exe2.pid),
                   what="no zombie children: %r" % pmtest.children(exe2.pid))
        exe2.assert_running(self)
        exe.assert_running(self)

    def test_steps_leave_no_zombies_in_pid1_mode(self):
        exe = self.start(["sleep", "1000"])
        c = exe.client()
        for _ in range(3):
            c.run(request(sh("(sleep 0.05 &); true"), sh("sleep 0.01 & exit 0")))
        wait_until(lambda: not pmtest.zombie_children(exe.pid),
                   what="no zombie children: %r" % pmtest.children(exe.pid))

    def test_reaper_does_not_steal_step_exit_status(self):
        # In PID-1 mode the executor reaps every orphan; reaping must not take the exit status of
        # a step's command (a waitpid(-1) reaper racing the step). The app keeps making orphans
        # while steps with known exit codes run from several threads.
        exe = self.start(["sh", "-c", "while :; do (sleep 0.01 &); sleep 0.02; done"])
        errors = []

        def worker(base):
            try:
                c = exe.client()
                for k in range(base, base + 15):
                    step = c.run(request(sh("(true &); exit %d" % k)))
                    if step[0].exited.exit_code != k or step[0].exited.signal != 0:
                        errors.append("exit %d reported as %r" % (k, step[0].exited))
            except Exception as e:  # Reported in the main thread.
                errors.append(repr(e))
        threads = [threading.Thread(target=worker, args=(b,)) for b in (1, 20, 40, 60)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(240)
        self.assertEqual(errors, [])
        exe.assert_running(self)

    def test_real_pid1_in_new_pid_namespace(self):
        # As in a container: the executor is PID 1 of its own PID namespace.
        if os.geteuid() != 0:
            self.fail("this test needs root (unshare --pid); run `bazel test` as root")
        app_argv, ready = trap_app()
        exe = self.start(app_argv, wrapper=["unshare", "--pid", "--fork", "--mount-proc",
                                            "--kill-child"])
        inner = wait_until(lambda: find_child(exe.pid, "pm-executor"), what="executor in ns")
        with open("/proc/%d/status" % inner) as f:
            nspid = [l.split()[1:] for l in f if l.startswith("NSpid:")][0]
        self.assertEqual(nspid[-1], "1", "not PID 1 in its namespace: NSpid %r" % nspid)
        info = exe.client().info()
        self.assertTrue(info.pid1)
        go = pmtest.fresh_path("ns-orphan-go")
        step = exe.client().run(request(sh(
            "(sh -c 'while [ ! -e \"%s\" ]; do sleep 0.05; done' &); echo spawned" % go)))
        self.assertEqual(step[0].out, "spawned\n")
        open(go, "w").close()
        wait_until(lambda: not pmtest.zombie_children(inner),
                   what="no zombie children of PID 1: %r" % pmtest.children(inner))
        # Signals from the parent namespace reach PID 1 only when it handles or blocks them.
        wait_ready(ready)
        os.kill(inner, signal.SIGTERM)
        rc = exe.wait()
        self.assertEqual(rc, 7, "exit status through unshare; log:\n" + exe.log())


class GracefulShutdownTest(pmtest.unittest.TestCase):

    def setUp(self):
        self.exe = None

    def tearDown(self):
        if self.exe:
            self.exe.kill()

    def test_running_step_finishes(self):
        self.exe = pmtest.Executor(args=["--shutdown-grace-ms", "30000"], log_name="graceful")
        go = pmtest.fresh_path("graceful-go")
        call = self.exe.client().run_stream(request(
            sh('echo begun; while [ ! -e "%s" ]; do sleep 0.05; done; echo finished' % go),
            sh("echo second")), timeout=120)
        events = [next(call)]
        self.assertTrue(events[0].HasField("started"))
        self.exe.signal(signal.SIGTERM)
        # Give the executor time to act on the signal (so the step really runs across it).
        time.sleep(1)
        self.assertIsNone(self.exe.proc.poll(), "exited with a step running:\n" + self.exe.log())
        # New work is refused while draining.
        ch = pmtest.new_channel(self.exe.target)
        try:
            with self.assertRaises(grpc.RpcError) as cm:
                list(pmtest.ExecutorClient(ch).run_stream(request(sh("echo late")), timeout=20))
            self.assertEqual(cm.exception.code(), grpc.StatusCode.UNAVAILABLE,
                             cm.exception.details())
        finally:
            ch.close()
        open(go, "w").close()
        events += list(call)
        self.assertEqual(call.code(), grpc.StatusCode.OK)
        step = pmtest.Step(events)
        self.assertEqual(step[0].out, "begun\nfinished\n")
        self.assertEqual(step[0].exited.exit_code, 0)
        self.assertFalse(step[0].exited.cancelled)
        self.assertEqual(step[1].out, "second\n")
        self.assertEqual(self.exe.wait(), 0, self.exe.log())

    def test_idle_sigterm_exits_0(self):
        self.exe = pmtest.Executor(log_name="idle-term")
        self.exe.signal(signal.SIGTERM)
        self.assertEqual(self.exe.wait(), 0, self.exe.log())

    def test_grace_expired_kills_step(self):
        self.exe = pmtest.Executor(args=["--shutdown-grace-ms", "500", "--kill-grace-ms", "200"],
                                   log_name="grace-expired")
        marker = pmtest.new_marker()
        call = self.exe.client().run_stream(request(sh("sleep 1000", env=[marker])),
                                            timeout=120)
        self.assertTrue(next(call).HasField("started"))
        self.exe.signal(signal.SIGTERM)
        rc = self.exe.wait()
        self.assertIn(rc, (0, 1), self.exe.log())
        wait_until(lambda: not pmtest.pids_with_env_marker(marker),
                   what="the step's sleep killed at shutdown")
        try:
            rest = list(call)
            step = pmtest.Step([pmtest.pb.RunEvent(command=0, started=pmtest.pb.Started(pid=1))]
                               + rest)
            self.assertTrue(step[0].exited.cancelled or step[0].exited.signal, step)
        except grpc.RpcError as e:
            self.assertIn(e.code(), (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.CANCELLED,
                                     grpc.StatusCode.ABORTED), e.details())


if __name__ == "__main__":
    pmtest.main()

#!/usr/bin/python3
"""End-to-end tests of the sandbox as the executor applies it (issue 3): under the default
profile a step cannot unshare or ptrace and holds no capabilities; a request may tighten the
profile (strict) but never loosen it (PERMISSION_DENIED); Info names the profile; a fork bomb
under a uid of its own is contained by RLIMIT_NPROC and the executor stays healthy; a setup
failure in the child is reported in the exit event."""

import os
import random
import sys

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.join(os.environ.get("TEST_SRCDIR", "."),
                                os.environ.get("TEST_WORKSPACE", "pm"), "tests"))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import unittest  # noqa: E402

import grpc  # noqa: E402

import pmtest  # noqa: E402
from pmtest import request, sh  # noqa: E402

PTRACE = ("/usr/bin/python3 -c 'import ctypes, os; l = ctypes.CDLL(None, use_errno=True); "
          "r = l.ptrace(0, 0, 0, 0); print(r, os.strerror(ctypes.get_errno()))'")


class DefaultProfileTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.exe = pmtest.Executor(log_name="sandbox-default")

    @classmethod
    def tearDownClass(cls):
        cls.exe.stop()

    def run_step(self, *commands, **kw):
        return pmtest.Step(list(self.exe.client().run_stream(request(*commands, **kw))))

    def test_unshare_refused(self):
        step = self.run_step(sh("unshare -U true; echo rc=$?"))
        self.assertIn("Operation not permitted", step[0].err)
        self.assertIn("rc=1", step[0].out)

    def test_ptrace_refused(self):
        step = self.run_step(sh(PTRACE))
        self.assertEqual(step[0].out.strip(), "-1 Operation not permitted")

    def test_no_capabilities_no_new_privs(self):
        step = self.run_step(sh("grep -E '^(Cap(Inh|Prm|Eff|Bnd|Amb)|NoNewPrivs|Seccomp):' "
                                "/proc/self/status"))
        fields = dict(l.split(":\t") for l in step[0].out.splitlines())
        for cap in ("CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"):
            self.assertEqual(int(fields[cap], 16), 0, step[0].out)
        self.assertEqual(fields["NoNewPrivs"], "1")
        self.assertEqual(fields["Seccomp"], "2")  # a filter is installed

    def test_ordinary_tools_work(self):
        step = self.run_step(sh("ls / >/dev/null && seq 1000 | sort -rn | head -1 && "
                                "echo hi | gzip | gunzip && tar cf - /etc/hostname 2>/dev/null "
                                "| tar tf - | head -1"))
        self.assertEqual(step[0].exited.exit_code, 0, step[0].err)
        self.assertEqual(step[0].out.splitlines()[:2], ["1000", "hi"])

    def test_tighter_profile_allowed(self):
        step = self.run_step(sh("ls / >/dev/null; seq 3 | sort -r | head -1; "
                                "grep Seccomp: /proc/self/status"), sandbox_profile="strict")
        self.assertEqual(step[0].exited.exit_code, 0, step[0].err)
        self.assertIn("3", step[0].out)

    def test_looser_profile_refused(self):
        with self.assertRaises(grpc.RpcError) as cm:
            self.run_step(sh("true"), sandbox_profile="unconfined")
        self.assertEqual(cm.exception.code(), grpc.StatusCode.PERMISSION_DENIED)
        self.assertIn("loosen", cm.exception.details())

    def test_unknown_profile_refused(self):
        with self.assertRaises(grpc.RpcError) as cm:
            self.run_step(sh("true"), sandbox_profile="lenient")
        self.assertEqual(cm.exception.code(), grpc.StatusCode.INVALID_ARGUMENT)
        self.assertIn("lenient", cm.exception.details())

    def test_info_reports_profile(self):
        info = self.exe.client().info()
        self.assertEqual(info.sandbox_profile, "default")
        for part in ("profile=default", "core:0", "caps=none", "no_new_privs=1"):
            self.assertIn(part, info.sandbox)


class StrictExecutorTest(unittest.TestCase):
    def test_default_is_looser_than_strict(self):
        exe = pmtest.Executor(args=["--sandbox-profile", "strict"], log_name="sandbox-strict")
        try:
            with self.assertRaises(grpc.RpcError) as cm:
                list(exe.client().run_stream(request(sh("true"), sandbox_profile="default")))
            self.assertEqual(cm.exception.code(), grpc.StatusCode.PERMISSION_DENIED)
            self.assertEqual(exe.client().info().sandbox_profile, "strict")
        finally:
            exe.stop()

    def test_bad_flags_refused_at_start(self):
        for args, needle in ((["--sandbox-profile", "nope"], "--sandbox-profile"),
                             (["--rlimits", "bogus=1"], "--rlimits"),
                             (["--keep-caps", "cap_flying"], "--keep-caps"),
                             (["--run-as-uid", "65534"], "--run-as-gid")):
            exe = pmtest.Executor(args=args, wait=False, log_name="sandbox-badflag")
            rc = exe.wait()
            self.assertEqual(rc, 2, (args, exe.log()))
            self.assertIn(needle, exe.log(), args)


def _profile(name):
    return os.path.join(pmtest.runfiles_root(), "sandbox", "oci", "testdata", name)


class FileProfileTest(unittest.TestCase):
    def test_docker_format_profile(self):
        exe = pmtest.Executor(args=["--sandbox-profile", "file:" + _profile("docker-default.json")],
                              log_name="sandbox-file")
        try:
            step = pmtest.Step(list(exe.client().run_stream(request(
                sh("unshare -U true; echo rc=$?"), sh("seq 5 | sort -rn | head -1")))))
            self.assertIn("rc=1", step[0].out)
            self.assertIn("Operation not permitted", step[0].err)
            self.assertEqual(step[1].out, "5\n")
            self.assertTrue(exe.client().info().sandbox_profile.startswith("file:"))
            # The executor's own file is as tight as it gets: default would loosen it.
            with self.assertRaises(grpc.RpcError) as cm:
                list(exe.client().run_stream(request(sh("true"), sandbox_profile="default")))
            self.assertEqual(cm.exception.code(), grpc.StatusCode.PERMISSION_DENIED)
        finally:
            exe.stop()

    def test_malformed_profiles_refused_at_start(self):
        for name, needle in (("bad-json.json", "bad-json.json:"),
                             ("unknown-syscall.json", "not_a_syscall"),
                             ("bad-op.json", "SCMP_CMP_FOO")):
            exe = pmtest.Executor(args=["--sandbox-profile", "file:" + _profile(name)],
                                  wait=False, log_name="sandbox-badfile")
            self.assertEqual(exe.wait(), 2, exe.log())
            self.assertIn(needle, exe.log(), name)


@unittest.skipUnless(os.geteuid() == 0, "needs root to switch uid")
class ForkBombTest(unittest.TestCase):
    def test_fork_bomb_contained(self):
        # RLIMIT_NPROC counts the tasks of the real uid and is not enforced for root, so the
        # commands run as a uid no other process has (not even a concurrent run of this test).
        uid = _unused_uid()
        exe = pmtest.Executor(args=["--run-as-uid", str(uid), "--run-as-gid", str(uid),
                                    "--rlimits", "nproc=64"], log_name="sandbox-forkbomb")
        try:
            step = pmtest.Step(list(exe.client().run_stream(
                request(sh("bomb() { bomb | bomb & }; bomb; sleep 1; echo survived",
                           timeout_ms=8000)), timeout=60)))
            # The shell reports the refused forks (EAGAIN from RLIMIT_NPROC).
            self.assertRegex(step[0].err, "(?i)fork|resource temporarily unavailable")
            exe.assert_running(self)
            # The executor still serves at once (the bomb's processes no longer count against
            # the uid's limit), and nothing of the bomb is left of the uid.
            step = pmtest.Step(list(exe.client().run_stream(request(sh("id -u")))))
            self.assertEqual(step[0].out.strip(), str(uid), step[0].err)
            _wait_no_process_of(uid)
        finally:
            exe.stop()


class DefaultLimitsForkBombTest(unittest.TestCase):
    @unittest.skipUnless(os.geteuid() == 0, "needs root to switch uid")
    def test_fork_bomb_under_default_limits(self):
        # The executor's default limits (nproc 4096 per uid), commands as an unprivileged uid as
        # in a non-root container. Among thousands of runnable bomb processes on two CPUs the
        # leader may not be scheduled again for many seconds (seen in CI: its `wait` for a 2 s
        # sleep outlived a 20 s timeout), so it may end either way: by finishing ("survived") or
        # by its timeout. What must hold is the rest: the step ends with its exit event, the
        # process-group kill and the orphan sweep take every process of the bomb, and the
        # executor keeps serving.
        uid = _unused_uid()
        exe = pmtest.Executor(args=["--run-as-uid", str(uid), "--run-as-gid", str(uid)],
                              log_name="sandbox-forkbomb-default")
        try:
            step = pmtest.Step(list(exe.client().run_stream(
                request(sh("bomb() { bomb | bomb & }; bomb; sleep 1; echo survived",
                           timeout_ms=5000)), timeout=120)))
            ex = step[0].exited
            self.assertIsNotNone(ex, "no exit event")
            if step[0].out != "survived\n":
                self.assertTrue(ex.timed_out, (step[0].out, ex, step[0].err[:300]))
            _wait_no_process_of(uid)
            exe.assert_running(self)
            self.assertEqual(exe.health().check().status, 1)  # SERVING
            step = pmtest.Step(list(exe.client().run_stream(request(sh("echo alive")))))
            self.assertEqual(step[0].out, "alive\n")
        finally:
            exe.stop()


def _unused_uid():
    """A uid in a range /etc/passwd does not use that no process has now: RLIMIT_NPROC counts
    per uid, so a bomb under a shared uid would starve another test's commands."""
    busy = {_uid(p) for p in pmtest.all_pids()}
    while True:
        uid = random.randrange(200000, 1000000)
        if uid not in busy:
            return uid


def _wait_no_process_of(uid):
    pmtest.wait_until(lambda: not [p for p in pmtest.all_pids() if _uid(p) == uid],
                      what="no process of uid %d left" % uid)


def _uid(pid):
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith("Uid:"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


if __name__ == "__main__":
    unittest.main(verbosity=2)

#!/usr/bin/python3
"""Shared helpers for the end-to-end tests of pm-executor.

The tests talk to the real binary with an independent gRPC implementation (Debian's
python3-grpcio) and the message classes protoc generated for Python (no gRPC stubs: each method
is called through channel.unary_unary / unary_stream with the serializers spelled out). This
module finds the runfiles, starts an executor on a free loopback port (or a Unix socket), waits
until its health service answers SERVING, wraps the four services in small client classes, and
offers /proc helpers to check that no process of a step survives and that no zombie is left.

Run as a script it is also a tiny client for shell tests:
    pmtest.py wait-healthy ADDR [TIMEOUT_S]
    pmtest.py run ADDR SHELL_LINE      (prints the step's stdout, exits with the command's code)
"""

import hashlib
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import unittest
import uuid

import grpc


def runfiles_root():
    """Returns the runfiles directory of workspace "pm" (the test's cwd under `bazel test`)."""
    candidates = []
    srcdir = os.environ.get("TEST_SRCDIR")
    if srcdir:
        candidates.append(os.path.join(srcdir, os.environ.get("TEST_WORKSPACE", "pm")))
    candidates.append(os.getcwd())
    here = os.path.dirname(os.path.abspath(__file__))
    candidates.append(os.path.dirname(here))
    for c in candidates:
        if os.path.exists(os.path.join(c, "protos", "executor_pb2.py")):
            return c
    raise RuntimeError("cannot find the runfiles (looked in %s); run through `bazel test`"
                       % ", ".join(candidates))


ROOT = runfiles_root()
sys.path.insert(0, os.path.join(ROOT, "protos"))

import exec_pb2  # noqa: E402
import executor_pb2  # noqa: E402
import health_pb2  # noqa: E402

pb = executor_pb2
EXECUTOR = os.path.join(ROOT, "executor", "pm-executor")

# Upper bounds for things that would otherwise hang. They are generous on purpose: the machine is
# shared and noisy, and no test passes or fails on how fast something is.
STARTUP_TIMEOUT = 30.0
CALL_TIMEOUT = 60.0
SETTLE_TIMEOUT = 30.0

SERVING = health_pb2.HealthCheckResponse.SERVING


def tmpdir():
    """The per-test scratch directory (TEST_TMPDIR under bazel)."""
    d = os.environ.get("TEST_TMPDIR") or tempfile.gettempdir()
    os.makedirs(d, exist_ok=True)
    return d


def fresh_path(name):
    """A path in tmpdir() that does not exist yet (unique per call)."""
    return os.path.join(tmpdir(), "%s-%s" % (uuid.uuid4().hex[:8], name))


def outputs_dir():
    """Where executor logs go: kept by bazel in test.outputs when TEST_UNDECLARED_OUTPUTS_DIR is set."""
    d = os.environ.get("TEST_UNDECLARED_OUTPUTS_DIR") or tmpdir()
    os.makedirs(d, exist_ok=True)
    return d


def free_port():
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def short_socket_path(name):
    """A Unix socket path short enough for sun_path (108 bytes)."""
    d = tmpdir()
    path = os.path.join(d, name)
    if len(path) > 100:
        d = tempfile.mkdtemp(prefix="pm", dir="/tmp")
        path = os.path.join(d, name)
    return path


def wait_until(pred, timeout=SETTLE_TIMEOUT, interval=0.05, what="condition"):
    """Polls pred() until it returns a true value, which is returned; raises AssertionError after
    timeout seconds. This bounds waits for asynchronous effects; it is not a speed assertion."""
    deadline = time.monotonic() + timeout
    while True:
        v = pred()
        if v:
            return v
        if time.monotonic() > deadline:
            raise AssertionError("timed out after %.0f s waiting for %s" % (timeout, what))
        time.sleep(interval)


# ---- /proc ------------------------------------------------------------------------------------

def proc_stat(pid):
    """Returns (state, ppid, pgrp, session) of pid, or None when it is gone."""
    try:
        with open("/proc/%d/stat" % pid, "rb") as f:
            data = f.read().decode("latin-1")
    except (FileNotFoundError, ProcessLookupError):
        return None
    # comm is in parentheses and may contain anything; split after the last ')'.
    rest = data[data.rindex(")") + 2:].split()
    return rest[0], int(rest[1]), int(rest[2]), int(rest[3])


def all_pids():
    out = []
    for name in os.listdir("/proc"):
        if name.isdigit():
            out.append(int(name))
    return out


def alive(pid):
    """True when pid exists and is not a zombie."""
    st = proc_stat(pid)
    return st is not None and st[0] != "Z"


def status_field_kb(pid, field):
    """A kB figure from /proc/PID/status (e.g. VmHWM, VmRSS)."""
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise KeyError(field)


def pids_with_env_marker(marker):
    """Live (non-zombie) processes whose environment holds marker (a "K=V" string)."""
    needle = marker.encode()
    found = []
    for pid in all_pids():
        try:
            with open("/proc/%d/environ" % pid, "rb") as f:
                env = f.read().split(b"\0")
        except OSError:
            continue
        if needle in env and alive(pid):
            found.append(pid)
    return found


def pids_in_group(pgid):
    """Live processes whose process group or session is pgid."""
    found = []
    for pid in all_pids():
        st = proc_stat(pid)
        if st and st[0] != "Z" and (st[2] == pgid or st[3] == pgid):
            found.append(pid)
    return found


def children(ppid):
    """(pid, state) of the children of ppid."""
    out = []
    for pid in all_pids():
        st = proc_stat(pid)
        if st and st[1] == ppid:
            out.append((pid, st[0]))
    return out


def zombie_children(ppid):
    return [pid for pid, state in children(ppid) if state == "Z"]


def new_marker():
    return "PM_TEST_MARKER=%s" % uuid.uuid4().hex


def read_int(path, default=AssertionError):
    """The integer in a small file (a pidfile); default when it is missing or not yet complete."""
    try:
        with open(path) as f:
            text = f.read()
        if text.endswith("\n"):
            return int(text)
    except FileNotFoundError:
        pass
    if default is AssertionError:
        raise AssertionError("no complete integer in %s" % path)
    return default


def sha256(data):
    return hashlib.sha256(data).hexdigest()


# ---- the executor process ---------------------------------------------------------------------

class Executor:
    """One pm-executor process started for a test; use stop() (or kill()) to end it."""

    def __init__(self, args=(), app=None, listen=None, env=None, wrapper=(), log_name=None,
                 wait=True, token=None, target=None, credentials=None, listen_flag=True,
                 channel_options=()):
        """args: flags; app: argv after "--" (PID-1 mode); listen: the address (a free loopback
        port by default); target: where clients connect (default: listen); credentials: gRPC
        channel credentials for TLS (channel_options: more options for its channels, e.g. the
        name to verify); listen_flag=False leaves --listen out (to test PM_LISTEN)."""
        self.listen = listen or "127.0.0.1:%d" % free_port()
        self.target = target or self.listen
        self.credentials = credentials
        self.channel_options = list(channel_options)
        self.token = token
        self.log_path = os.path.join(outputs_dir(), "%s-%s.log" % (
            log_name or "executor", uuid.uuid4().hex[:8]))
        listen_args = ["--listen", self.listen] if listen_flag else []
        self.argv = list(wrapper) + [EXECUTOR] + listen_args + list(args)
        if app is not None:
            self.argv += ["--"] + list(app)
        full_env = dict(os.environ)
        if env:
            full_env.update(env)
        self._log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(self.argv, stdin=subprocess.DEVNULL, stdout=self._log,
                                     stderr=subprocess.STDOUT, env=full_env)
        self.pid = self.proc.pid
        self._channel = None
        if wait:
            self.wait_healthy()

    def log(self):
        try:
            with open(self.log_path, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except OSError:
            return ""

    def wait_healthy(self, timeout=STARTUP_TIMEOUT):
        wait_serving("pm-executor", self.proc, self.new_channel, "", self.argv, self.log, timeout)

    def new_channel(self):
        if self.credentials is not None:
            return grpc.secure_channel(self.target, self.credentials,
                                       options=[("grpc.use_local_subchannel_pool", 1)] +
                                       self.channel_options)
        return new_channel(self.target)

    def channel(self):
        if self._channel is None:
            self._channel = self.new_channel()
        return self._channel

    def client(self, token=None):
        return ExecutorClient(self.channel(), token if token is not None else self.token)

    def legacy(self, token=None):
        return ExecClient(self.channel(), token if token is not None else self.token)

    def health(self):
        return HealthClient(self.channel())

    def vm_kb(self, field):
        return status_field_kb(self.pid, field)

    def signal(self, sig):
        self.proc.send_signal(sig)

    def wait(self, timeout=SETTLE_TIMEOUT):
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError("pm-executor (pid %d) did not exit within %.0f s; log:\n%s"
                                 % (self.pid, timeout, self.log()))

    def assert_running(self, testcase):
        rc = self.proc.poll()
        testcase.assertIsNone(rc, "pm-executor died with status %r; log:\n%s" % (rc, self.log()))

    def close_channel(self):
        if self._channel is not None:
            self._channel.close()
            self._channel = None

    def kill(self):
        """Ends the process without ceremony (tearDown)."""
        self.close_channel()
        if self.proc.poll() is None:
            self.proc.kill()
            try:
                self.proc.wait(SETTLE_TIMEOUT)
            except subprocess.TimeoutExpired:
                pass
        self._log.close()

    def stop(self):
        """SIGTERM, then returns the exit status."""
        self.close_channel()
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        rc = self.wait()
        self._log.close()
        return rc


def new_channel(target, options=()):
    # A local subchannel pool gives every channel its own connection (gRPC otherwise shares one
    # between channels with equal arguments, and some tests need separate connections).
    opts = [("grpc.use_local_subchannel_pool", 1)] + list(options)
    return grpc.insecure_channel(target, options=opts)


def _meta(token, extra=None):
    md = []
    if token is not None:
        md.append(("authorization", "Bearer " + token))
    if extra:
        md.extend(extra)
    return md or None


def identity(b):
    return b


class ExecutorClient:
    """pm.executor.v1.Executor over a channel."""

    def __init__(self, channel, token=None):
        self.channel = channel
        self.token = token
        self._run = channel.unary_stream(
            "/pm.executor.v1.Executor/Run",
            request_serializer=pb.RunRequest.SerializeToString,
            response_deserializer=pb.RunEvent.FromString)
        self._run_raw = channel.unary_stream(
            "/pm.executor.v1.Executor/Run",
            request_serializer=identity,
            response_deserializer=pb.RunEvent.FromString)
        self._info = channel.unary_unary(
            "/pm.executor.v1.Executor/Info",
            request_serializer=pb.InfoRequest.SerializeToString,
            response_deserializer=pb.InfoResponse.FromString)

    def run_stream(self, req, timeout=CALL_TIMEOUT, metadata=None):
        """Starts a Run; returns the call (iterate it for RunEvents, cancel() it)."""
        return self._run(req, timeout=timeout, metadata=_meta(self.token, metadata))

    def run_raw_stream(self, data, timeout=CALL_TIMEOUT, metadata=None):
        return self._run_raw(data, timeout=timeout, metadata=_meta(self.token, metadata))

    def run(self, req, timeout=CALL_TIMEOUT, metadata=None):
        """Runs a step to the end; returns a Step (raises grpc.RpcError on a non-OK status)."""
        return Step(list(self.run_stream(req, timeout, metadata)))

    def info(self, timeout=CALL_TIMEOUT, metadata=None):
        return self._info(pb.InfoRequest(), timeout=timeout, metadata=_meta(self.token, metadata))


class ExecClient:
    """The legacy exec.ExecService."""

    def __init__(self, channel, token=None):
        self.token = token
        self._call = channel.unary_unary(
            "/exec.ExecService/ExecuteCommands",
            request_serializer=exec_pb2.ExecCommands.SerializeToString,
            response_deserializer=exec_pb2.ExecResult.FromString)
        self._raw = channel.unary_unary(
            "/exec.ExecService/ExecuteCommands",
            request_serializer=identity,
            response_deserializer=exec_pb2.ExecResult.FromString)

    def execute(self, commands, timeout=CALL_TIMEOUT, metadata=None):
        return self._call(exec_pb2.ExecCommands(commands=commands), timeout=timeout,
                          metadata=_meta(self.token, metadata))

    def execute_raw(self, data, timeout=CALL_TIMEOUT):
        return self._raw(data, timeout=timeout, metadata=_meta(self.token))


class HealthClient:
    def __init__(self, channel):
        self._check = channel.unary_unary(
            "/grpc.health.v1.Health/Check",
            request_serializer=health_pb2.HealthCheckRequest.SerializeToString,
            response_deserializer=health_pb2.HealthCheckResponse.FromString)
        self._watch = channel.unary_stream(
            "/grpc.health.v1.Health/Watch",
            request_serializer=health_pb2.HealthCheckRequest.SerializeToString,
            response_deserializer=health_pb2.HealthCheckResponse.FromString)

    def check(self, service="", timeout=CALL_TIMEOUT):
        return self._check(health_pb2.HealthCheckRequest(service=service), timeout=timeout)

    def watch(self, service="", timeout=CALL_TIMEOUT):
        return self._watch(health_pb2.HealthCheckRequest(service=service), timeout=timeout)


# ---- requests and results ---------------------------------------------------------------------

def sh(line, **kw):
    return pb.Command(shell=line, **kw)


def argv(*args, **kw):
    return pb.Command(argv=list(args), **kw)


def request(*commands, **kw):
    return pb.RunRequest(commands=list(commands), **kw)


def event_kind(ev):
    """The one field set in a RunEvent; raises AssertionError unless exactly one is set."""
    kinds = []
    if ev.HasField("started"):
        kinds.append("started")
    if ev.stdout_data:
        kinds.append("stdout")
    if ev.stderr_data:
        kinds.append("stderr")
    if ev.HasField("exited"):
        kinds.append("exited")
    if len(kinds) != 1:
        raise AssertionError("RunEvent must have exactly one of started/stdout_data/stderr_data/"
                             "exited set, got %r in %r" % (kinds, ev))
    return kinds[0]


class CommandResult:
    def __init__(self, index):
        self.index = index
        self.started = None      # Started message or None
        self.stdout = bytearray()
        self.stderr = bytearray()
        self.stdout_chunks = 0
        self.stderr_chunks = 0
        self.max_chunk = 0
        self.exited = None       # Exited message or None

    @property
    def out(self):
        return bytes(self.stdout).decode("utf-8", "replace")

    @property
    def err(self):
        return bytes(self.stderr).decode("utf-8", "replace")


class Step:
    """The events of one Run, checked for shape and grouped per command."""

    def __init__(self, events):
        self.events = events
        self.commands = {}
        last_index = -1
        for ev in events:
            kind = event_kind(ev)
            i = ev.command
            if i < last_index:
                raise AssertionError("event for command %d after command %d" % (i, last_index))
            if i > last_index and last_index >= 0 and self.commands[last_index].exited is None:
                raise AssertionError("command %d started before command %d exited"
                                     % (i, last_index))
            last_index = i
            c = self.commands.setdefault(i, CommandResult(i))
            if c.exited is not None:
                raise AssertionError("event %s for command %d after its Exited" % (kind, i))
            if kind == "started":
                if c.started is not None or c.stdout or c.stderr:
                    raise AssertionError("Started for command %d not first or repeated" % i)
                c.started = ev.started
            elif kind == "stdout":
                c.stdout += ev.stdout_data
                c.stdout_chunks += 1
                c.max_chunk = max(c.max_chunk, len(ev.stdout_data))
            elif kind == "stderr":
                c.stderr += ev.stderr_data
                c.stderr_chunks += 1
                c.max_chunk = max(c.max_chunk, len(ev.stderr_data))
            else:
                c.exited = ev.exited
        for i, c in self.commands.items():
            if c.exited is None:
                raise AssertionError("command %d has no Exited event" % i)

    def __getitem__(self, i):
        return self.commands[i]

    def indices(self):
        return sorted(self.commands)

    def __repr__(self):
        parts = []
        for i in self.indices():
            c = self.commands[i]
            parts.append("#%d started=%s out=%r err=%r exited={%s}" % (
                i, c.started.pid if c.started else None, bytes(c.stdout[:200]),
                bytes(c.stderr[:200]), str(c.exited).replace("\n", " ")))
        return "Step(%s)" % "; ".join(parts)


def assert_rpc_code(testcase, code, fn, *args, **kw):
    """Calls fn (a unary call, or a stream that is drained) and checks the gRPC status; returns
    the error."""
    try:
        r = fn(*args, **kw)
        if hasattr(r, "__iter__") and not isinstance(r, (bytes, str)):
            r = list(r)
    except grpc.RpcError as e:
        testcase.assertEqual(e.code(), code, "expected %s, got %s: %s"
                             % (code, e.code(), e.details()))
        return e
    testcase.fail("expected %s, got OK: %r" % (code, r))


def wait_serving(what, proc, new_channel, service, argv, log, timeout=STARTUP_TIMEOUT):
    """Waits until a server process answers grpc.health.v1 Check(service) with SERVING; fails
    with its log when it exits first or never does."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        rc = proc.poll()
        if rc is not None:
            raise AssertionError("%s exited with %d before serving; argv %r; log:\n%s"
                                 % (what, rc, argv, log()))
        # A fresh channel per attempt: a channel whose first connection was refused waits out
        # gRPC's reconnect backoff (seconds) before it tries again.
        ch = new_channel()
        try:
            r = HealthClient(ch).check(service, timeout=2)
            if r.status == SERVING:
                return
            last = "status %d" % r.status
        except grpc.RpcError as e:
            last = "%s %s" % (e.code(), e.details())
        finally:
            ch.close()
        time.sleep(0.05)
    raise AssertionError("%s not SERVING after %.0f s (last: %s); argv %r; log:\n%s"
                         % (what, timeout, last, argv, log()))


class ExecutorTestCase(unittest.TestCase):
    """Base class: one executor per test class (started in setUpClass with EXECUTOR_ARGS), checked
    to be still alive and to have no zombie children when the class ends."""

    EXECUTOR_ARGS = ("--output-cap", "0", "--kill-grace-ms", "500")
    EXECUTOR_ENV = None
    TOKEN = None

    @classmethod
    def setUpClass(cls):
        cls.exe = Executor(args=cls.EXECUTOR_ARGS, env=cls.EXECUTOR_ENV, log_name=cls.__name__,
                           token=cls.TOKEN)

    @classmethod
    def tearDownClass(cls):
        exe = cls.exe
        try:
            rc = exe.proc.poll()
            if rc is not None:
                raise AssertionError("pm-executor died during %s with status %r; log:\n%s"
                                     % (cls.__name__, rc, exe.log()))
            wait_until(lambda: not zombie_children(exe.pid),
                       what="no zombie children of the executor (pid %d): %r"
                       % (exe.pid, zombie_children(exe.pid)))
        finally:
            exe.kill()

    def client(self, token=None):
        return self.exe.client(token)

    def run_step(self, *commands, **kw):
        timeout = kw.pop("timeout", CALL_TIMEOUT)
        return self.client().run(request(*commands, **kw), timeout=timeout)

    def assertRpcCode(self, code, fn, *args, **kw):
        return assert_rpc_code(self, code, fn, *args, **kw)


def main():
    """unittest.main with verbose output; the process exits nonzero on any failure."""
    unittest.main(verbosity=2)


# ---- command-line use (shell tests) ------------------------------------------------------------

def _cli(args):
    if len(args) >= 2 and args[0] == "wait-healthy":
        timeout = float(args[2]) if len(args) > 2 else STARTUP_TIMEOUT
        deadline = time.monotonic() + timeout
        last = None
        while time.monotonic() < deadline:
            ch = new_channel(args[1])
            try:
                if HealthClient(ch).check("", timeout=2).status == SERVING:
                    return 0
            except grpc.RpcError as e:
                last = "%s %s" % (e.code(), e.details())
            finally:
                ch.close()
            time.sleep(0.1)
        print("pmtest: %s not SERVING after %.0f s (last: %s)" % (args[1], timeout, last),
              file=sys.stderr)
        return 1
    if len(args) == 3 and args[0] == "run":
        c = ExecutorClient(new_channel(args[1]))
        step = c.run(request(sh(args[2])))
        c0 = step[0]
        sys.stdout.buffer.write(bytes(c0.stdout))
        sys.stderr.buffer.write(bytes(c0.stderr))
        if c0.exited.error:
            print("pmtest: error: %s" % c0.exited.error, file=sys.stderr)
        return c0.exited.exit_code & 0xff if c0.exited.exit_code >= 0 else 1
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(_cli(sys.argv[1:]))

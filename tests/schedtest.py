#!/usr/bin/python3
"""Shared helpers for the end-to-end and crash tests of pm-scheduler.

Like pmtest.py (whose runfiles lookup, /proc helpers and Executor class this module reuses), it
drives the real binaries with an independent gRPC implementation: Debian's python3-grpcio and the
message classes protoc generated for Python, each method called through channel.unary_unary /
unary_stream with its serializers spelled out.

The pieces:
  Pod            N pm-executor processes on Unix sockets, playing the containers of one worker
                 pod; they share one scratch directory standing for the pod's /mnt/pipe volume.
  workers_config a workers config JSON file naming the pods' executors.
  Scheduler      one pm-scheduler process on a free loopback port with a SQLite file of its own;
                 kill9(), stop() (SIGTERM, returns the exit status) and restart() on the same db.
  SchedulerClient every RPC of pm.scheduler.v1.Scheduler, watch() as a generator, wait_final().
"""

import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
import uuid

import grpc

import pmtest
from pmtest import (CALL_TIMEOUT, SETTLE_TIMEOUT, STARTUP_TIMEOUT,  # noqa
                    free_port, identity, outputs_dir, tmpdir, wait_until)

import scheduler_pb2  # noqa: E402  (pmtest put the generated modules on sys.path)

spb = scheduler_pb2
SCHEDULER = os.path.join(pmtest.ROOT, "scheduler", "pm-scheduler")
EXECUTOR = pmtest.EXECUTOR

QUEUED = spb.QUEUED
RUNNING = spb.RUNNING
SUCCEEDED = spb.SUCCEEDED
FAILED = spb.FAILED
CANCELLED = spb.CANCELLED
DEAD = spb.DEAD
FINAL_STATES = (SUCCEEDED, FAILED, CANCELLED, DEAD)

# How long a task may take to reach a final state before a test gives up. Only a bound against
# hangs: no test passes or fails on speed.
TASK_TIMEOUT = 120.0


def state_name(st):
    return spb.TaskState.Name(st)


def under_asan():
    """True when the binaries are built with AddressSanitizer (bazel test --config=asan sets
    ASAN_OPTIONS for tests; the binary's symbols are checked as well, for runs by hand)."""
    if os.environ.get("ASAN_OPTIONS"):
        return True
    try:
        with open(SCHEDULER, "rb") as f:
            return b"__asan_init" in f.read()
    except OSError:
        return False


def short_dir(prefix="pm"):
    """A fresh directory for Unix sockets: short enough for sun_path (108 bytes)."""
    d = tmpdir()
    if len(d) > 60:
        d = "/tmp"
    return tempfile.mkdtemp(prefix=prefix, dir=d)


def rss_kb(pid):
    return pmtest.status_field_kb(pid, "VmRSS")


def procs_with_cmdline(*argv):
    """Live (non-zombie) processes whose argv is exactly argv (e.g. "sleep", "1234")."""
    want = b"\0".join(a.encode() for a in argv) + b"\0"
    found = []
    for pid in pmtest.all_pids():
        try:
            with open("/proc/%d/cmdline" % pid, "rb") as f:
                cmd = f.read()
        except OSError:
            continue
        if cmd == want and pmtest.alive(pid):
            found.append(pid)
    return found


# ---- executors: the containers of one worker pod ----------------------------------------------

class Pod:
    """N pm-executor processes on Unix sockets sharing one directory (the pod's /mnt/pipe)."""

    def __init__(self, names=("a", "b", "c"), args=("--kill-grace-ms", "500"), log_name="pod"):
        self.names = list(names)
        self.args = list(args)
        self.log_name = log_name
        self.dir = tempfile.mkdtemp(prefix="pipe-", dir=tmpdir())
        self.sockdir = short_dir("pmsock")
        self.sockets = {n: os.path.join(self.sockdir, "%s.sock" % n) for n in self.names}
        self.execs = {}
        try:
            for n in self.names:
                self.start(n)
        except BaseException:
            self.kill()
            raise

    def start(self, name):
        """Starts (or starts again, on the same socket) the executor of that name."""
        self.execs[name] = pmtest.Executor(
            args=["--name", name] + self.args, listen="unix:" + self.sockets[name],
            log_name="%s-%s" % (self.log_name, name))
        return self.execs[name]

    def executors_json(self):
        return {n: "unix:" + self.sockets[n] for n in self.names}

    def path(self, name):
        return os.path.join(self.dir, name)

    def kill9(self, name):
        """SIGKILL to one executor (start(name) brings it back on the same socket)."""
        e = self.execs[name]
        e.close_channel()
        os.kill(e.pid, signal.SIGKILL)
        e.proc.wait(SETTLE_TIMEOUT)
        e.kill()  # closes its log

    def assert_running(self, testcase):
        for e in self.execs.values():
            e.assert_running(testcase)

    def kill(self):
        for e in self.execs.values():
            e.kill()


def workers_config(pods, slots=1, pool="pod", path=None):
    """Writes a workers config with one pool whose workers are the pods (all with the same
    executor names); returns its path. Unix-socket executors ignore the worker's address, so
    each pod is named "podN" in it."""
    if isinstance(pods, Pod):
        pods = [pods]
    # One pool per pod when their sockets differ: a pool maps an executor name to one socket.
    pools = []
    for i, p in enumerate(pods):
        pools.append({"name": pool if len(pods) == 1 else "%s%d" % (pool, i),
                      "workers": ["pod%d" % i], "slots": slots,
                      "executors": p.executors_json()})
    path = path or pmtest.fresh_path("workers.json")
    with open(path, "w") as f:
        json.dump({"pools": pools}, f, indent=1)
    return path


# ---- the scheduler process --------------------------------------------------------------------

class Scheduler:
    """One pm-scheduler process; restart() starts it again on the same db, port and --id."""

    def __init__(self, workers, args=(), db=None, sched_id="sched-test", log_name="scheduler",
                 paused=False, wait=True, health_interval_ms=200, token=None):
        self.workers = workers
        self.token = token
        self.db = db or os.path.join(tempfile.mkdtemp(prefix="db-", dir=tmpdir()), "sched.db")
        self.port = free_port()
        self.target = "127.0.0.1:%d" % self.port
        self.sched_id = sched_id
        self.args = list(args)
        self.health_interval_ms = health_interval_ms
        self.log_name = log_name
        self.log_path = os.path.join(outputs_dir(), "%s-%s.log" % (log_name, uuid.uuid4().hex[:8]))
        self.proc = None
        self._log = None
        self._channel = None
        self.starts = 0
        self.start(paused=paused, wait=wait)

    def argv(self, paused=False, extra=()):
        a = [SCHEDULER, "--workers", self.workers, "--db", self.db, "--listen", self.target,
             "--id", self.sched_id, "--health-interval-ms", str(self.health_interval_ms)]
        a += self.args + list(extra)
        if paused:
            a.append("--paused")
        return a

    def start(self, paused=False, wait=True, extra=()):
        assert self.proc is None or self.proc.poll() is not None, "already running"
        self.close_channel()
        self._argv = self.argv(paused, extra)
        self._log = open(self.log_path, "ab")
        self._log.write(("---- start %d: %s\n" % (self.starts + 1, " ".join(self._argv))).encode())
        self._log.flush()
        self.proc = subprocess.Popen(self._argv, stdin=subprocess.DEVNULL, stdout=self._log,
                                     stderr=subprocess.STDOUT)
        self.pid = self.proc.pid
        self.starts += 1
        if wait:
            self.wait_healthy()

    def restart(self, paused=False, wait=True, extra=()):
        if self.proc is not None and self.proc.poll() is None:
            raise AssertionError("restart() of a running scheduler; kill9() or stop() first")
        self.start(paused=paused, wait=wait, extra=extra)

    def log(self):
        try:
            with open(self.log_path, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except OSError:
            return ""

    def log_tail(self, n=60):
        return "\n".join(self.log().splitlines()[-n:])

    def wait_healthy(self, timeout=STARTUP_TIMEOUT):
        pmtest.wait_serving("pm-scheduler", self.proc, lambda: pmtest.new_channel(self.target),
                            "pm.scheduler.v1.Scheduler", self._argv, self.log_tail, timeout)

    def new_channel(self):
        # Quick reconnects: the tests restart the scheduler on the same port and expect the
        # channel to find it again within a second, not after gRPC's default backoff.
        return pmtest.new_channel(self.target, options=[
            ("grpc.initial_reconnect_backoff_ms", 100),
            ("grpc.min_reconnect_backoff_ms", 100),
            ("grpc.max_reconnect_backoff_ms", 500),
            ("grpc.max_receive_message_length", 64 << 20)])

    def channel(self):
        if self._channel is None:
            self._channel = self.new_channel()
        return self._channel

    def client(self):
        return SchedulerClient(self.channel(), self.token)

    def close_channel(self):
        if self._channel is not None:
            self._channel.close()
            self._channel = None

    def rss_kb(self):
        return rss_kb(self.pid)

    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def assert_running(self, testcase):
        rc = self.proc.poll()
        testcase.assertIsNone(rc, "pm-scheduler died with status %r; log:\n%s"
                              % (rc, self.log_tail()))

    def kill9(self):
        """SIGKILL, no ceremony: the crash of the tests."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(SETTLE_TIMEOUT)
        self._log.write(b"---- killed with SIGKILL\n")
        self._log.close()

    def stop(self, timeout=SETTLE_TIMEOUT + 30):
        """SIGTERM; returns the exit status."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            rc = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError("pm-scheduler (pid %d) did not exit %.0f s after SIGTERM; log:\n%s"
                                 % (self.pid, timeout, self.log_tail()))
        self._log.close()
        return rc

    def kill(self):
        """tearDown: ends the process whatever its state."""
        self.close_channel()
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            try:
                self.proc.wait(SETTLE_TIMEOUT)
            except subprocess.TimeoutExpired:
                pass
        if self._log and not self._log.closed:
            self._log.close()


# ---- the client -------------------------------------------------------------------------------

_METHODS = {
    # name: (request class, response class, streaming)
    "Submit": (spb.SubmitRequest, spb.Task, False),
    "Get": (spb.GetRequest, spb.Task, False),
    "Watch": (spb.WatchRequest, spb.WatchEvent, True),
    "Cancel": (spb.CancelRequest, spb.Task, False),
    "Requeue": (spb.RequeueRequest, spb.Task, False),
    "List": (spb.ListRequest, spb.ListResponse, False),
    "PutPipeline": (spb.PutPipelineRequest, spb.PipelineInfo, False),
    "GetPipeline": (spb.GetPipelineRequest, spb.PipelineInfo, False),
    "ListPipelines": (spb.ListPipelinesRequest, spb.ListPipelinesResponse, False),
    "ListWorkers": (spb.ListWorkersRequest, spb.ListWorkersResponse, False),
}


def params(d):
    """[Param] from a dict (order kept)."""
    return [spb.Param(name=k, value=v) for k, v in d.items()]


def pipeline_json(*steps):
    """The DESIGN.md shape from (executor, [commands]) pairs."""
    return json.dumps({"pipeline": [{"executorName": e, "commands": list(c)} for e, c in steps]})


class SchedulerClient:
    """pm.scheduler.v1.Scheduler over a channel: one method per RPC."""

    def __init__(self, channel, token=None):
        self.channel = channel
        self.token = token
        self._calls = {}
        for name, (req, resp, streaming) in _METHODS.items():
            make = channel.unary_stream if streaming else channel.unary_unary
            self._calls[name] = make("/pm.scheduler.v1.Scheduler/" + name,
                                     request_serializer=req.SerializeToString,
                                     response_deserializer=resp.FromString)

    def call(self, name, req, timeout=CALL_TIMEOUT, **kw):
        return self._calls[name](req, timeout=timeout, metadata=pmtest._meta(self.token), **kw)

    def raw(self, method, data, timeout=CALL_TIMEOUT):
        """A unary call with raw request bytes; returns the raw reply bytes."""
        fn = self.channel.unary_unary(method, request_serializer=identity,
                                      response_deserializer=identity)
        return fn(data, timeout=timeout, metadata=pmtest._meta(self.token))

    def submit_req(self, req, timeout=CALL_TIMEOUT, **kw):
        return self.call("Submit", req, timeout, **kw)

    def submit(self, json_text=None, steps=None, name=None, params_=None, timeout=CALL_TIMEOUT,
               wait_for_ready=None, **fields):
        """Submit with one source: json_text, steps [(executor, [commands])...] or name; params_
        a dict; other SubmitRequest fields as keywords (labels may be a dict)."""
        req = spb.SubmitRequest(**{k: v for k, v in fields.items() if k != "labels"})
        if "labels" in fields:
            req.labels.extend(params(fields["labels"]))
        if json_text is not None:
            req.pipeline_json = json_text
        if steps is not None:
            for e, cmds in steps:
                req.pipeline.steps.add(executor=e, commands=list(cmds))
        if name is not None:
            req.pipeline_name = name
        if params_:
            req.params.extend(params(params_))
        return self.submit_req(req, timeout, wait_for_ready=wait_for_ready)

    def get(self, task_id, timeout=CALL_TIMEOUT):
        return self.call("Get", spb.GetRequest(id=task_id), timeout)

    def watch_call(self, task_id, after_seq=0, timeout=TASK_TIMEOUT):
        """The Watch call itself (iterate it; cancel() it)."""
        return self.call("Watch", spb.WatchRequest(id=task_id, after_seq=after_seq), timeout)

    def watch(self, task_id, after_seq=0, timeout=TASK_TIMEOUT):
        """Yields WatchEvents until the stream ends."""
        call = self.watch_call(task_id, after_seq, timeout)
        try:
            for ev in call:
                yield ev
        finally:
            call.cancel()

    def cancel(self, task_id, timeout=CALL_TIMEOUT):
        return self.call("Cancel", spb.CancelRequest(id=task_id), timeout)

    def requeue(self, task_id, timeout=CALL_TIMEOUT):
        return self.call("Requeue", spb.RequeueRequest(id=task_id), timeout)

    def list(self, states=(), labels=None, pipeline_name="", page_size=0, page_token="",
             timeout=CALL_TIMEOUT):
        req = spb.ListRequest(states=list(states), pipeline_name=pipeline_name,
                              page_size=page_size, page_token=page_token)
        if labels:
            req.labels.extend(params(labels))
        return self.call("List", req, timeout)

    def list_all(self, page_size=1000, **kw):
        """Every task the filters match, following the page tokens; also returns the page count."""
        tasks, pages, token = [], 0, ""
        while True:
            r = self.list(page_size=page_size, page_token=token, **kw)
            pages += 1
            tasks.extend(r.tasks)
            token = r.next_page_token
            if not token:
                return tasks, pages
            if pages > 100000:
                raise AssertionError("List paging does not end")

    def put_pipeline(self, name, json_text=None, defaults=None, description="",
                     timeout=CALL_TIMEOUT):
        req = spb.PutPipelineRequest(name=name, pipeline_json=json_text or "",
                                     description=description)
        if defaults:
            req.defaults.extend(params(defaults))
        return self.call("PutPipeline", req, timeout)

    def get_pipeline(self, name, timeout=CALL_TIMEOUT):
        return self.call("GetPipeline", spb.GetPipelineRequest(name=name), timeout)

    def list_pipelines(self, timeout=CALL_TIMEOUT):
        return self.call("ListPipelines", spb.ListPipelinesRequest(), timeout)

    def list_workers(self, timeout=CALL_TIMEOUT):
        return self.call("ListWorkers", spb.ListWorkersRequest(), timeout)

    def wait_final(self, task_id, timeout=TASK_TIMEOUT, retry_unavailable=False):
        """Polls Get until the task is in a final state; returns the Task."""
        deadline = time.monotonic() + timeout
        last = None
        while True:
            try:
                last = self.get(task_id, timeout=10)
                if last.state in FINAL_STATES:
                    return last
            except grpc.RpcError as e:
                if not retry_unavailable or e.code() not in (grpc.StatusCode.UNAVAILABLE,
                                                             grpc.StatusCode.DEADLINE_EXCEEDED):
                    raise
            if time.monotonic() > deadline:
                raise AssertionError("task %s not final after %.0f s; last: %s"
                                     % (task_id, timeout, last))
            time.sleep(0.05)

    def wait_state(self, task_id, states, timeout=TASK_TIMEOUT):
        return wait_until(lambda: (lambda t: t if t.state in states else None)(self.get(task_id)),
                          timeout=timeout, what="task %s in %s" % (
                              task_id, [state_name(s) for s in states]))


# ---- events -----------------------------------------------------------------------------------

def event_kind(ev):
    """The one thing a WatchEvent carries: "state", "step_started", "output" or "step_exited"."""
    kinds = [k for k in ("step_started", "output", "step_exited") if ev.HasField(k)]
    if ev.state != 0:
        kinds.append("state")
    if len(kinds) != 1:
        raise AssertionError("WatchEvent must carry exactly one thing, got %r: %s" % (kinds, ev))
    return kinds[0]


def output_of(events, step=None, stream=1):
    """The bytes of the output events (of one step, when given) on one stream, in order."""
    out = bytearray()
    for ev in events:
        if ev.HasField("output") and ev.output.stream == stream and (
                step is None or ev.output.step == step):
            out += ev.output.data
    return bytes(out)


def check_seqs(testcase, events, first=1):
    seqs = [ev.seq for ev in events]
    testcase.assertEqual(seqs, list(range(first, first + len(seqs))),
                         "seqs must be consecutive from %d without gaps or repeats" % first)


def random_seed(env="PM_TEST_SEED"):
    v = os.environ.get(env)
    return int(v) if v else random.SystemRandom().randrange(1 << 31)


def log(msg):
    print(msg, file=sys.stderr, flush=True)

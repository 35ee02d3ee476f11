#!/usr/bin/python3
"""A scripted stand-in for pm-scheduler, for pmctl's scheduler-mode test (pmctl_sched_e2e_test).

It serves pm.scheduler.v1.Scheduler on a Unix socket with Debian's python3-grpcio and the message
classes protoc generated (//protos:scheduler_py), independent of pmctl's C client. Task "t1" has
eight events; the first Watch call sends four of them and then fails with UNAVAILABLE, as a
restarting scheduler would, and later calls replay from one event before the cursor they ask
for, so the client must resume from its last seq and drop the duplicate. Every request is
appended to a log file, one line per call ("Watch after_seq=4"), for the test to check.

usage: fake_scheduler.py SOCKET_PATH LOG_FILE READY_FILE
"""

import os
import signal
import sys
import threading
from concurrent import futures

import grpc

ROOT = os.environ.get("PM_FAKE_ROOT") or os.getcwd()
sys.path.insert(0, os.path.join(ROOT, "protos"))
import scheduler_pb2 as pb  # noqa: E402

sock, log_path, ready_path = sys.argv[1:4]
log_lock = threading.Lock()
watch_calls = [0]


def log(line):
    with log_lock:
        with open(log_path, "a") as f:
            f.write(line + "\n")


def task(state=pb.SUCCEEDED):
    t = pb.Task(id="t1", state=state, attempt=1, worker="127.0.0.1", created_ms=1700000000000,
                pipeline_name="", failed_attempts=0, created=True)
    t.pipeline.steps.add(executor="sh", commands=["echo hello"])
    t.steps.add(step=0, executor="sh", attempt=1, exit_code=3, wall_us=1500, failed_command=0)
    return t


EVENTS = [
    pb.WatchEvent(seq=1, id="t1", attempt=1, state=pb.QUEUED, message="submitted"),
    pb.WatchEvent(seq=2, id="t1", attempt=1, state=pb.RUNNING, message="leased"),
    pb.WatchEvent(seq=3, id="t1", attempt=1,
                  step_started=pb.StepStarted(step=0, executor="sh", worker="127.0.0.1")),
    pb.WatchEvent(seq=4, id="t1", attempt=1,
                  output=pb.OutputChunk(step=0, stream=1, data=b"hello\n")),
    pb.WatchEvent(seq=5, id="t1", attempt=1,
                  output=pb.OutputChunk(step=0, stream=2, data=b"warn\n")),
    pb.WatchEvent(seq=6, id="t1", attempt=1,
                  output=pb.OutputChunk(step=0, stream=1, data=b"after\n")),
    pb.WatchEvent(seq=7, id="t1", attempt=1,
                  step_exited=pb.StepResult(step=0, executor="sh", attempt=1, exit_code=3)),
    pb.WatchEvent(seq=8, id="t1", attempt=1, state=pb.FAILED, message="step 1 exited 3"),
]


def submit(req, ctx):
    params = ",".join("%s=%s" % (p.name, p.value) for p in req.params)
    log("Submit json=%d name=%s params=%s key=%s priority=%d retry=%s" % (
        len(req.pipeline_json), req.pipeline_name, params, req.idempotency_key, req.priority,
        ",".join(str(c) for c in req.retry.retryable_exit_codes)))
    with open(log_path + ".json", "w") as f:
        f.write(req.pipeline_json)
    return task(pb.QUEUED)


def get(req, ctx):
    log("Get id=%s" % req.id)
    if req.id != "t1":
        ctx.abort(grpc.StatusCode.NOT_FOUND, "no task %s" % req.id)
    return task(pb.FAILED)


def watch(req, ctx):
    watch_calls[0] += 1
    log("Watch id=%s after_seq=%d" % (req.id, req.after_seq))
    if req.id != "t1":
        ctx.abort(grpc.StatusCode.NOT_FOUND, "no task %s" % req.id)
    start = max(0, req.after_seq - 1)  # one event again: the client must drop it
    for ev in EVENTS[start:]:
        if watch_calls[0] == 1 and ev.seq > 4:
            ctx.abort(grpc.StatusCode.UNAVAILABLE, "scheduler restarting")
        yield ev


def list_tasks(req, ctx):
    log("List states=%s page_size=%d" % (",".join(str(s) for s in req.states), req.page_size))
    r = pb.ListResponse(next_page_token="page2")
    r.tasks.append(task(pb.FAILED))
    return r


def unary(fn, req_cls):
    return grpc.unary_unary_rpc_method_handler(
        fn, request_deserializer=req_cls.FromString,
        response_serializer=lambda m: m.SerializeToString())


handlers = {
    "Submit": unary(submit, pb.SubmitRequest),
    "Get": unary(get, pb.GetRequest),
    "List": unary(list_tasks, pb.ListRequest),
    "Watch": grpc.unary_stream_rpc_method_handler(
        watch, request_deserializer=pb.WatchRequest.FromString,
        response_serializer=lambda m: m.SerializeToString()),
}
# The test stops its background processes with SIGINT; gRPC's threads would hold a normal exit up.
signal.signal(signal.SIGINT, lambda *_: os._exit(0))
signal.signal(signal.SIGTERM, lambda *_: os._exit(0))
server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
server.add_generic_rpc_handlers(
    (grpc.method_handlers_generic_handler("pm.scheduler.v1.Scheduler", handlers),))
server.add_insecure_port("unix:" + sock)
server.start()
with open(ready_path, "w") as f:
    f.write("ready\n")
server.wait_for_termination()

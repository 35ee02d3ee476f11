#!/usr/bin/python3
"""End-to-end tests of pm-scheduler with real pm-executor processes and a real SQLite file,
driven through python3-grpcio: pipelines across three executors sharing a directory, both JSON
shapes, parameters, every bad-input error, idempotency, cancel, timeouts, retries and DEAD
tasks, Watch (live, resumed, replayed, never read), output caps, List paging, named pipelines,
workers, malformed and oversized requests, graceful shutdown, an executor killed mid-step, and
executors reached over TLS (scheduler and pmctl), and the workers config reloaded on SIGHUP."""

import json
import os
import signal
import subprocess
import sys
import threading
import time

sys.dont_write_bytecode = True  # Never leave __pycache__ in the source or runfiles tree.
sys.path.insert(0, os.path.join(os.environ.get("TEST_SRCDIR", "."),
                                os.environ.get("TEST_WORKSPACE", "pm"), "tests"))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import unittest  # noqa: E402

import grpc  # noqa: E402

import pmtest  # noqa: E402
import schedtest  # noqa: E402
from pmtest import wait_until  # noqa: E402
from schedtest import (CANCELLED, DEAD, FAILED, QUEUED, RUNNING, SUCCEEDED, check_seqs,  # noqa
                       event_kind, output_of, pipeline_json, spb, state_name)

StatusCode = grpc.StatusCode


class SchedulerTestCase(unittest.TestCase):
    """One pod of three executors (a, b, c) and one scheduler per class."""

    EXECUTORS = ("a", "b", "c")
    SCHEDULER_ARGS = ("--backoff-ms", "50", "--lease-ttl-ms", "3000")
    SLOTS = 4

    @classmethod
    def setUpClass(cls):
        cls.pod = schedtest.Pod(cls.EXECUTORS, log_name=cls.__name__)
        try:
            cls.workers = schedtest.workers_config(cls.pod, slots=cls.SLOTS)
            cls.sched = schedtest.Scheduler(cls.workers, args=cls.SCHEDULER_ARGS,
                                            log_name=cls.__name__)
            cls.wait_workers_healthy()
        except BaseException:
            cls.pod.kill()
            raise

    @classmethod
    def wait_workers_healthy(cls):
        c = cls.sched.client()
        wait_until(lambda: all(w.healthy for w in c.list_workers().workers),
                   what="every worker healthy in ListWorkers")

    @classmethod
    def tearDownClass(cls):
        try:
            if cls.sched.running():
                rc = cls.sched.stop()
                if rc != 0:
                    raise AssertionError("pm-scheduler exited with %d after SIGTERM; log:\n%s"
                                         % (rc, cls.sched.log_tail()))
        finally:
            cls.sched.kill()
            cls.pod.kill()

    def setUp(self):
        self.sched.assert_running(self)
        self.c = self.sched.client()

    def tearDown(self):
        self.sched.assert_running(self)

    # -- helpers --

    def run_task(self, **kw):
        t = self.c.submit(**kw)
        self.assertTrue(t.id)
        return self.c.wait_final(t.id)

    def assertCode(self, code, fn, *args, **kw):
        return pmtest.assert_rpc_code(self, code, fn, *args, **kw)

    def assertInvalid(self, substrings, **submit):
        e = self.assertCode(StatusCode.INVALID_ARGUMENT, self.c.submit, **submit)
        for s in substrings:
            self.assertIn(s, e.details())
        return e

    def assertIdle(self):
        """Every slot of every worker is free again (no lease leaked)."""
        wait_until(lambda: all(w.busy == 0 for w in self.c.list_workers().workers),
                   what="every worker slot released")

    def assertState(self, task, state):
        self.assertEqual(task.state, state, "task %s is %s, want %s (error %r)"
                         % (task.id, state_name(task.state), state_name(state), task.error))

    def d(self, name):
        return self.pod.path(name)


class PipelineTest(SchedulerTestCase):

    def test_three_steps_share_files_and_stream_output(self):
        tok = "three%d" % time.monotonic_ns()
        js = pipeline_json(
            ("a", ["printf '%s\\n' pear apple {{fruit}} > {{dir}}/{{id}}.txt"]),
            ("b", ["tr a-z A-Z < {{dir}}/{{id}}.txt | sort > {{dir}}/{{id}}.out",
                   "echo transformed >&2"]),
            ("c", ["cat {{dir}}/{{id}}.out", "echo id={{id}} tok=" + tok]))
        t = self.c.submit(json_text=js, params_={"fruit": "fig", "dir": self.pod.dir})
        self.assertTrue(t.created)
        self.assertState(t, QUEUED)
        events = list(self.c.watch(t.id))
        check_seqs(self, events)
        kinds = [event_kind(ev) for ev in events]
        self.assertEqual(kinds[0], "state")
        self.assertEqual(events[0].state, QUEUED)
        self.assertEqual(kinds[-1], "state")
        self.assertEqual(events[-1].state, SUCCEEDED, events[-1])
        started = [ev.step_started for ev in events if ev.HasField("step_started")]
        self.assertEqual([(s.step, s.executor) for s in started], [(0, "a"), (1, "b"), (2, "c")])
        exited = [ev.step_exited for ev in events if ev.HasField("step_exited")]
        self.assertEqual([x.step for x in exited], [0, 1, 2])
        self.assertTrue(all(x.exit_code == 0 for x in exited))
        # Each step's output sits between its start and its exit.
        pos = {}
        for k, ev in enumerate(events):
            if ev.HasField("step_started"):
                pos.setdefault(ev.step_started.step, [k, None])
            if ev.HasField("step_exited"):
                pos[ev.step_exited.step][1] = k
            if ev.HasField("output"):
                st = ev.output.step
                self.assertIn(st, pos)
                self.assertIsNone(pos[st][1], "output of step %d after its exit" % st)
        self.assertEqual(output_of(events, step=2),
                         ("APPLE\nFIG\nPEAR\nid=%s tok=%s\n" % (t.id, tok)).encode())
        self.assertEqual(output_of(events, step=0), b"")
        self.assertEqual(output_of(events, step=1, stream=2), b"transformed\n")
        self.assertEqual(output_of(events, step=1, stream=1), b"")
        self.assertTrue(os.path.exists(self.d("%s.out" % t.id)))
        final = self.c.get(t.id)
        self.assertState(final, SUCCEEDED)
        self.assertEqual(final.attempt, 1)
        self.assertEqual(len(final.steps), 3)
        self.assertEqual(final.last_seq, events[-1].seq)
        self.assertEqual(final.pipeline.steps[0].commands[0],
                         "printf '%%s\\n' pear apple fig > %s/{{id}}.txt" % self.pod.dir)

    def test_older_agent_shape(self):
        js = json.dumps({"commands": [
            {"executorName": "a", "commandLines": ["echo one > {{dir}}/{{id}}.agent"]},
            {"executorName": "b", "commandLines": ["cat {{dir}}/{{id}}.agent", "echo two"]}]})
        t = self.c.submit(json_text=js, params_={"dir": self.pod.dir})
        events = list(self.c.watch(t.id))
        self.assertEqual(events[-1].state, SUCCEEDED, events[-1])
        self.assertEqual(output_of(events, step=1), b"one\ntwo\n")

    def test_wire_pipeline(self):
        t = self.run_task(steps=[("a", ["echo wire"]), ("c", ["echo {{x}}"])],
                          params_={"x": "y"})
        self.assertState(t, SUCCEEDED)
        self.assertEqual([s.executor for s in t.pipeline.steps], ["a", "c"])
        self.assertEqual(t.pipeline.steps[1].commands[0], "echo y")

    def test_hostile_parameter_stays_literal(self):
        marker = self.d("pwned-%d" % time.monotonic_ns())
        hostile = "x'; touch %s; echo \"$HOME\" `id` $(id) | cat & \\ {{id}} *" % marker
        t = self.c.submit(json_text=pipeline_json(("a", ["printf '%s\\n' {{v}}", "echo {{id}}"])),
                          params_={"v": hostile})
        events = list(self.c.watch(t.id))
        self.assertEqual(events[-1].state, SUCCEEDED, events[-1])
        self.assertEqual(output_of(events), (hostile + "\n" + t.id + "\n").encode())
        self.assertFalse(os.path.exists(marker), "a parameter value ran as shell")

    def test_unused_parameter_is_allowed_and_id_can_be_given(self):
        t = self.run_task(json_text=pipeline_json(("a", ["echo {{id}}"])),
                          params_={"id": "mine", "unused": "1"})
        self.assertState(t, SUCCEEDED)
        events = list(self.c.watch(t.id))
        self.assertEqual(output_of(events), b"mine\n")


class BadInputTest(SchedulerTestCase):

    def test_missing_parameter(self):
        self.assertInvalid(["missing parameter", "url"],
                           json_text=pipeline_json(("a", ["wget {{url}}"])))

    def test_unknown_executor(self):
        self.assertInvalid(["unknown executor", "tesseract"],
                           json_text=pipeline_json(("a", ["true"]), ("tesseract", ["true"])))

    def test_unknown_pipeline(self):
        self.assertInvalid(["unknown pipeline", "no-such-pipeline"], name="no-such-pipeline")

    def test_bad_json_names_line_and_column(self):
        e = self.assertInvalid(["line 2", "column"],
                               json_text='{"pipeline": [\n  {"executorName": "a", "commands": [}]}')
        self.assertRegex(e.details(), r"line 2 column \d+")

    def test_unknown_member(self):
        self.assertInvalid(["comands"],
                           json_text='{"pipeline": [{"executorName": "a", "comands": ["x"]}]}')

    def test_empty_pipeline(self):
        self.assertInvalid(["no steps"], json_text='{"pipeline": []}')
        e = self.assertCode(StatusCode.INVALID_ARGUMENT, self.c.submit_req,
                            spb.SubmitRequest(pipeline=spb.Pipeline()))
        self.assertTrue(e.details())

    def test_no_source_and_two_sources(self):
        self.assertInvalid(["empty request"])
        self.assertInvalid(["only one"], json_text=pipeline_json(("a", ["true"])),
                           steps=[("a", ["true"])])
        self.assertInvalid(["only one"], json_text=pipeline_json(("a", ["true"])), name="x")

    def test_bad_parameter_name(self):
        self.assertInvalid(["parameter name", "1bad"],
                           json_text=pipeline_json(("a", ["true"])), params_={"1bad": "v"})

    def test_bad_task_ids(self):
        for bad in ("", "abc", "-1", "0", "12x", "9" * 40):
            e = self.assertCode(StatusCode.INVALID_ARGUMENT, self.c.get, bad)
            self.assertIn("task id", e.details())
            self.assertCode(StatusCode.INVALID_ARGUMENT, self.c.cancel, bad)
            self.assertCode(StatusCode.INVALID_ARGUMENT, self.c.requeue, bad)
            self.assertCode(StatusCode.INVALID_ARGUMENT, lambda: list(self.c.watch(bad)))

    def test_unknown_task_not_found(self):
        for fn in (self.c.get, self.c.cancel, self.c.requeue,
                   lambda i: list(self.c.watch(i))):
            e = self.assertCode(StatusCode.NOT_FOUND, fn, "987654321")
            self.assertIn("987654321", e.details())

    def test_bad_list_requests(self):
        self.assertCode(StatusCode.INVALID_ARGUMENT, self.c.list, page_token="garbage")
        self.assertCode(StatusCode.INVALID_ARGUMENT, self.c.list, page_size=100000)
        self.assertCode(StatusCode.INVALID_ARGUMENT, self.c.call, "List",
                        spb.ListRequest(states=[42]))

    def test_output_cap_over_limit(self):
        self.assertInvalid(["output_cap"], json_text=pipeline_json(("a", ["true"])),
                           output_cap=1 << 40)

    def test_malformed_protobuf_then_still_serving(self):
        for data in (b"\xff\xff\xff\xff", b"\x0a\xff\xff\xff\xff\x0f", b"\x12\x05ab"):
            e = self.assertCode(StatusCode.INVALID_ARGUMENT, self.c.raw,
                                "/pm.scheduler.v1.Scheduler/Submit", data)
            self.assertIn("does not decode", e.details())
        t = self.run_task(json_text=pipeline_json(("a", ["echo after"])))
        self.assertState(t, SUCCEEDED)

    def test_unknown_method_unimplemented(self):
        self.assertCode(StatusCode.UNIMPLEMENTED, self.c.raw,
                        "/pm.scheduler.v1.Scheduler/NoSuchMethod", b"")
        self.assertCode(StatusCode.UNIMPLEMENTED, self.c.raw, "/other.Service/Call", b"\x01")
        self.assertTrue(self.c.list_workers().workers)


class OversizedRequestTest(SchedulerTestCase):
    EXECUTORS = ("a",)
    SCHEDULER_ARGS = ("--max-request-bytes", "65536")

    def test_oversized_request_then_still_serving(self):
        big = pipeline_json(("a", ["echo " + "x" * 200000]))
        self.assertCode(StatusCode.RESOURCE_EXHAUSTED, self.c.submit, json_text=big)
        t = self.run_task(json_text=pipeline_json(("a", ["echo small"])))
        self.assertState(t, SUCCEEDED)


class LifecycleTest(SchedulerTestCase):

    def test_idempotency_key(self):
        log = self.d("idem-%d.log" % time.monotonic_ns())
        key = "key-%d" % time.monotonic_ns()
        js = pipeline_json(("a", ["echo run >> %s" % log]))
        t1 = self.c.submit(json_text=js, idempotency_key=key)
        self.assertTrue(t1.created)
        t2 = self.c.submit(json_text=js, idempotency_key=key)
        self.assertEqual(t2.id, t1.id)
        self.assertFalse(t2.created)
        self.assertEqual(t2.idempotency_key, key)
        final = self.c.wait_final(t1.id)
        self.assertState(final, SUCCEEDED)
        # After the end, the key still finds the task and nothing runs again.
        t3 = self.c.submit(json_text=js, idempotency_key=key)
        self.assertEqual(t3.id, t1.id)
        self.assertFalse(t3.created)
        self.assertState(t3, SUCCEEDED)
        # Concurrent submissions with one key: one task.
        key2 = key + "-concurrent"
        ids, errors = [], []

        def sub():
            try:
                ids.append(self.sched.client().submit(json_text=js, idempotency_key=key2).id)
            except grpc.RpcError as e:
                errors.append(e)

        threads = [threading.Thread(target=sub) for _ in range(8)]
        for th in threads:
            th.start()
        for th in threads:
            th.join()
        self.assertEqual(errors, [])
        self.assertEqual(len(set(ids)), 1, ids)
        self.assertNotEqual(ids[0], t1.id)
        self.assertState(self.c.wait_final(ids[0]), SUCCEEDED)
        # Let any stray duplicate run finish before counting.
        time.sleep(0.3)
        with open(log) as f:
            self.assertEqual(f.read(), "run\nrun\n")

    def test_cancel_running_step_kills_it(self):
        t = self.c.submit(json_text=pipeline_json(("b", ["sleep 1234"])))
        wait_until(lambda: schedtest.procs_with_cmdline("sleep", "1234"),
                   what="sleep 1234 running")
        self.assertState(self.c.get(t.id), RUNNING)
        r = self.c.cancel(t.id)
        self.assertState(r, CANCELLED)
        self.assertIn("cancel", r.error)
        wait_until(lambda: not schedtest.procs_with_cmdline("sleep", "1234"),
                   what="no sleep 1234 left after the cancel")
        final = self.c.get(t.id)
        self.assertState(final, CANCELLED)
        e = self.assertCode(StatusCode.FAILED_PRECONDITION, self.c.cancel, t.id)
        self.assertIn("CANCELLED", e.details())
        events = list(self.c.watch(t.id))
        self.assertEqual(events[-1].state, CANCELLED)
        self.assertIdle()

    def test_cancel_right_after_submit(self):
        # Cancels that meet the task in every phase: queued, leasing, starting, running.
        ids = []
        for i in range(24):
            t = self.c.submit(json_text=pipeline_json(("b", ["sleep 1236"])))
            if i % 3:
                time.sleep(0.002 * i)
            r = self.c.cancel(t.id)
            self.assertState(r, CANCELLED)
            ids.append(t.id)
        for i in ids:
            t = self.c.get(i)
            self.assertState(t, CANCELLED)
            events = list(self.c.watch(i))
            check_seqs(self, events)
            self.assertEqual([ev.state for ev in events if ev.state == CANCELLED], [CANCELLED])
        wait_until(lambda: not schedtest.procs_with_cmdline("sleep", "1236"),
                   what="no sleep 1236 left after the cancels")
        self.assertIdle()

    def test_cancel_final_task(self):
        t = self.run_task(json_text=pipeline_json(("a", ["true"])))
        self.assertState(t, SUCCEEDED)
        e = self.assertCode(StatusCode.FAILED_PRECONDITION, self.c.cancel, t.id)
        self.assertIn("SUCCEEDED", e.details())

    def test_step_timeout(self):
        t = self.run_task(json_text=pipeline_json(("a", ["sleep 30"])), step_timeout_ms=500)
        self.assertState(t, FAILED)
        self.assertIn("timed out", t.error)
        self.assertEqual(t.attempt, 1)

    def test_step_timeout_from_json(self):
        js = json.dumps({"pipeline": [{"executorName": "a", "commands": ["sleep 30"],
                                       "timeoutMs": 400}]})
        t = self.run_task(json_text=js)
        self.assertState(t, FAILED)
        self.assertIn("timed out", t.error)

    def test_total_timeout(self):
        t = self.run_task(json_text=pipeline_json(("a", ["sleep 0.2"]), ("b", ["sleep 30"])),
                          total_timeout_ms=1500)
        self.assertState(t, FAILED)
        self.assertIn("total timeout", t.error)
        self.assertEqual(t.attempt, 1)
        self.assertIdle()

    def test_nonzero_exit_fails_without_retry(self):
        t = self.run_task(json_text=pipeline_json(("a", ["echo one", "exit 3", "echo never"])),
                          retry=spb.RetryPolicy(max_attempts=5, retryable_exit_codes=[4]))
        self.assertState(t, FAILED)
        self.assertEqual(t.attempt, 1)
        self.assertIn("exited with 3", t.error)
        self.assertEqual(t.steps[-1].exit_code, 3)
        self.assertEqual(t.steps[-1].failed_command, 1)

    def test_retryable_exit_then_dead_then_requeue(self):
        marker = self.d("ok-%d" % time.monotonic_ns())
        runs = marker + ".runs"
        cmd = "echo x >> %s; if [ -f %s ]; then echo fine; else exit 7; fi" % (runs, marker)
        t = self.run_task(json_text=pipeline_json(("a", [cmd])),
                          retry=spb.RetryPolicy(max_attempts=3, initial_backoff_ms=20,
                                                retryable_exit_codes=[7]))
        self.assertState(t, DEAD)
        self.assertEqual(t.attempt, 3)
        self.assertEqual(t.failed_attempts, 3)
        self.assertIn("exited with 7", t.error)
        with open(runs) as f:
            self.assertEqual(len(f.readlines()), 3)
        # A DEAD task stays visible and can be requeued.
        dead, _ = self.c.list_all(states=[DEAD])
        self.assertIn(t.id, [x.id for x in dead])
        e = self.assertCode(StatusCode.FAILED_PRECONDITION, self.c.requeue,
                            self.run_task(json_text=pipeline_json(("a", ["true"]))).id)
        self.assertIn("SUCCEEDED", e.details())
        open(marker, "w").close()
        r = self.c.requeue(t.id)
        self.assertIn(r.state, (QUEUED, RUNNING, SUCCEEDED))
        final = self.c.wait_final(t.id)
        self.assertState(final, SUCCEEDED)
        self.assertEqual(final.attempt, 4)
        with open(runs) as f:
            self.assertEqual(len(f.readlines()), 4)
        events = list(self.c.watch(t.id))
        check_seqs(self, events)
        self.assertIn(b"fine\n", output_of(events))

    def test_cancel_task_waiting_in_backoff_then_requeue_it(self):
        marker = self.d("ok-%d" % time.monotonic_ns())
        cmd = "if [ -f %s ]; then echo fine; else exit 9; fi" % marker
        t = self.c.submit(json_text=pipeline_json(("a", [cmd])),
                          retry=spb.RetryPolicy(max_attempts=5, initial_backoff_ms=600000,
                                                retryable_exit_codes=[9]))
        # After the first failure the task waits ten minutes for its retry.
        wait_until(lambda: self.c.get(t.id).failed_attempts == 1, what="the first failure")
        q = self.c.get(t.id)
        self.assertState(q, QUEUED)
        self.assertGreater(q.not_before_ms, q.updated_ms)
        self.assertIn("exited with 9", q.error)
        r = self.c.cancel(t.id)
        self.assertState(r, CANCELLED)
        self.assertEqual(r.attempt, 1)
        open(marker, "w").close()
        r = self.c.requeue(t.id)
        final = self.c.wait_final(t.id)
        self.assertState(final, SUCCEEDED)
        self.assertEqual(final.attempt, 2)
        events = list(self.c.watch(t.id))
        check_seqs(self, events)
        states = [state_name(ev.state) for ev in events if ev.state]
        self.assertEqual(states, ["QUEUED", "RUNNING", "QUEUED", "CANCELLED", "QUEUED", "RUNNING",
                                  "SUCCEEDED"])

    def test_concurrent_requeues_run_the_task_once(self):
        runs = self.d("requeue-runs-%d" % time.monotonic_ns())
        # The second run lingers, so every other Requeue meets the task still active: a run that
        # failed at once could end before a slow thread's Requeue and be requeued again, rightly.
        t = self.run_task(json_text=pipeline_json(
            ("a", ["if [ -s %s ]; then echo x >> %s; sleep 3; exit 5; fi; echo x >> %s; exit 5"
                   % (runs, runs, runs)])))
        self.assertState(t, FAILED)
        results, barrier = [], threading.Barrier(8)

        def rq():
            c = self.sched.client()
            barrier.wait()
            try:
                results.append(c.requeue(t.id).state)
            except grpc.RpcError as e:
                results.append(e.code())
                details.append(e.details())

        details = []
        threads = [threading.Thread(target=rq) for _ in range(8)]
        for th in threads:
            th.start()
        for th in threads:
            th.join()
        ok = [r for r in results if not isinstance(r, StatusCode)]
        self.assertEqual(len(ok), 1, "one Requeue wins, the others are refused: %r %r"
                         % (results, details))
        self.assertTrue(all(r in (StatusCode.FAILED_PRECONDITION, StatusCode.ABORTED)
                            for r in results if isinstance(r, StatusCode)), (results, details))
        final = self.c.wait_final(t.id)
        self.assertState(final, FAILED)
        self.assertEqual(final.attempt, 2)
        self.assertIdle()
        time.sleep(0.3)
        with open(runs) as f:
            self.assertEqual(len(f.readlines()), 2)
        events = list(self.c.watch(t.id))
        check_seqs(self, events)

    def test_output_cap_truncates(self):
        t = self.run_task(json_text=pipeline_json(("a", ["head -c 5000 /dev/zero | tr '\\0' x",
                                                         "echo err >&2"])),
                          output_cap=1000)
        self.assertState(t, SUCCEEDED)
        self.assertTrue(t.steps[0].truncated)
        events = list(self.c.watch(t.id))
        self.assertEqual(output_of(events), b"x" * 1000)
        self.assertEqual(output_of(events, stream=2), b"err\n")

    def test_binary_output_byte_exact(self):
        data = bytes(range(256)) * 64 + os.urandom(100000) + b"\xff\xfe\x00\x80"
        path = self.d("bin-%d" % time.monotonic_ns())
        with open(path, "wb") as f:
            f.write(data)
        t = self.run_task(json_text=pipeline_json(("c", ["cat " + path])))
        self.assertState(t, SUCCEEDED)
        events = list(self.c.watch(t.id))
        self.assertEqual(output_of(events), data)

    def test_priority_field_kept(self):
        t = self.run_task(json_text=pipeline_json(("a", ["true"])), priority=7,
                          labels={"team": "x"})
        self.assertEqual(t.priority, 7)
        self.assertEqual([(p.name, p.value) for p in t.labels], [("team", "x")])


class WatchTest(SchedulerTestCase):

    def test_resume_without_loss_or_duplicates(self):
        n = 300
        t = self.c.submit(json_text=pipeline_json(
            ("a", ["for i in $(seq 1 %d); do echo line$i; sleep 0.005; done" % n])))
        first = []
        call = self.c.watch_call(t.id)
        for ev in call:
            first.append(ev)
            if len(first) >= 5 and output_of(first):
                break
        call.cancel()
        self.assertGreater(len(first), 0)
        # A new connection, resuming from the last seq seen.
        ch = self.sched.new_channel()
        try:
            rest = list(schedtest.SchedulerClient(ch).watch(t.id, after_seq=first[-1].seq))
        finally:
            ch.close()
        events = first + rest
        check_seqs(self, events)
        self.assertEqual(events[-1].state, SUCCEEDED, events[-1])
        self.assertEqual(output_of(events),
                         "".join("line%d\n" % i for i in range(1, n + 1)).encode())
        # Resuming several times, one event each time, gives the same sequence.
        replay, cursor = [], 0
        while True:
            call = self.c.watch_call(t.id, after_seq=cursor)
            got = None
            for ev in call:
                got = ev
                break
            call.cancel()
            if got is None:
                break
            replay.append(got)
            cursor = got.seq
            if len(replay) > 20:
                break
        self.assertEqual([e.seq for e in replay], list(range(1, len(replay) + 1)))
        self.assertEqual(replay, events[:len(replay)])

    def test_watch_after_finish_replays_everything(self):
        t = self.run_task(json_text=pipeline_json(("a", ["echo 1"]), ("b", ["echo 2"])))
        self.assertState(t, SUCCEEDED)
        events = list(self.c.watch(t.id))
        check_seqs(self, events)
        self.assertEqual(events[0].state, QUEUED)
        self.assertEqual(events[-1].state, SUCCEEDED)
        self.assertEqual(events[-1].seq, t.last_seq)
        self.assertEqual(output_of(events), b"1\n2\n")
        self.assertTrue(all(ev.id == t.id for ev in events))
        # From the middle, and from the end (nothing left: the stream just ends).
        mid = events[3].seq
        self.assertEqual(list(self.c.watch(t.id, after_seq=mid)), events[mid:])
        self.assertEqual(list(self.c.watch(t.id, after_seq=t.last_seq)), [])

    def test_many_watchers_see_the_same_events(self):
        t = self.c.submit(json_text=pipeline_json(
            ("a", ["for i in $(seq 1 50); do echo w$i; sleep 0.01; done"])))
        results = [None] * 6

        def w(k):
            ch = self.sched.new_channel()
            try:
                results[k] = list(schedtest.SchedulerClient(ch).watch(t.id))
            finally:
                ch.close()

        threads = [threading.Thread(target=w, args=(k,)) for k in range(6)]
        for th in threads:
            th.start()
        for th in threads:
            th.join(schedtest.TASK_TIMEOUT)
        for r in results:
            self.assertIsNotNone(r)
            check_seqs(self, r)
            self.assertEqual(r, results[0])
        self.assertEqual(results[0][-1].state, SUCCEEDED)

    def test_watcher_that_never_reads(self):
        size = 20 * 1000 * 1000
        js = pipeline_json(("a", ["head -c %d /dev/urandom | od -An -tx1 -v | head -c %d"
                                  % (size, size)]))
        t = self.c.submit(json_text=js, output_cap=32 << 20)
        # A watcher on its own connection that reads one event and then nothing.
        ch = self.sched.new_channel()
        stuck = schedtest.SchedulerClient(ch).watch_call(t.id, timeout=600)
        next(stuck)
        try:
            final = self.c.wait_final(t.id, timeout=300)
            self.assertState(final, SUCCEEDED)
            self.assertEqual(final.steps[0].stdout_bytes, size)
            self.assertFalse(final.steps[0].truncated)
            rss = self.sched.rss_kb()
            schedtest.log("\nscheduler VmRSS with a stuck watcher after 20 MB of output: %d kB"
                          % rss)
            if not schedtest.under_asan():
                self.assertLess(rss, 200 * 1024, "scheduler RSS %d kB" % rss)
            # The scheduler still answers on other connections.
            self.assertTrue(self.c.list_workers().workers)
        finally:
            stuck.cancel()
            ch.close()
        # The whole output is kept and a reader gets all of it.
        total = 0
        for ev in self.c.watch(t.id):
            if ev.HasField("output"):
                total += len(ev.output.data)
        self.assertEqual(total, size)


class ListAndPipelinesTest(SchedulerTestCase):

    def test_list_filters_and_paging(self):
        grp = "g%d" % time.monotonic_ns()
        ok, bad = [], []
        for i in range(7):
            ok.append(self.c.submit(json_text=pipeline_json(("a", ["true"])),
                                    labels={"grp": grp, "kind": "ok"}).id)
        for i in range(4):
            bad.append(self.c.submit(json_text=pipeline_json(("a", ["exit 1"])),
                                     labels={"grp": grp, "kind": "bad"}).id)
        other = self.c.submit(json_text=pipeline_json(("a", ["true"])),
                              labels={"grp": grp + "x"}).id
        for i in ok + bad + [other]:
            self.c.wait_final(i)
        got, _ = self.c.list_all(labels={"grp": grp})
        self.assertEqual(sorted(x.id for x in got), sorted(ok + bad))
        # Newest first.
        self.assertEqual([x.id for x in got], sorted((x.id for x in got), key=int, reverse=True))
        got, _ = self.c.list_all(labels={"grp": grp}, states=[FAILED])
        self.assertEqual(sorted(x.id for x in got), sorted(bad))
        got, _ = self.c.list_all(labels={"grp": grp, "kind": "ok"}, states=[SUCCEEDED, FAILED])
        self.assertEqual(sorted(x.id for x in got), sorted(ok))
        got, _ = self.c.list_all(labels={"grp": grp}, states=[QUEUED, RUNNING])
        self.assertEqual(got, [])
        # Pages of 2: every task once.
        got, pages = self.c.list_all(page_size=2, labels={"grp": grp})
        ids = [x.id for x in got]
        self.assertEqual(len(ids), len(set(ids)), "a task on two pages")
        self.assertEqual(sorted(ids), sorted(ok + bad))
        self.assertGreaterEqual(pages, 6)
        # Pages of 3 over all SUCCEEDED tasks match one big page.
        small, _ = self.c.list_all(page_size=3, states=[SUCCEEDED])
        big, _ = self.c.list_all(page_size=1000, states=[SUCCEEDED])
        self.assertEqual([x.id for x in small], [x.id for x in big])
        self.assertTrue(all(len(x.steps) == 0 for x in big))

    def test_named_pipelines(self):
        name = "greet-%d" % time.monotonic_ns()
        js = pipeline_json(("a", ["echo {{greeting}} {{who}}"]), ("b", ["echo {{id}}"]))
        p1 = self.c.put_pipeline(name, js, defaults={"greeting": "hello"}, description="d1")
        self.assertEqual(p1.name, name)
        self.assertEqual(p1.version, 1)
        self.assertEqual(list(p1.params), ["greeting", "id", "who"])
        self.assertEqual(self.c.get_pipeline(name), p1)
        t = self.run_task(name=name, params_={"who": "world"})
        self.assertState(t, SUCCEEDED)
        self.assertEqual(t.pipeline_name, name)
        ev = list(self.c.watch(t.id))
        self.assertEqual(output_of(ev, step=0), b"hello world\n")
        self.assertEqual(output_of(ev, step=1), (t.id + "\n").encode())
        t = self.run_task(name=name, params_={"who": "you", "greeting": "hi"})
        self.assertEqual(output_of(list(self.c.watch(t.id)), step=0), b"hi you\n")
        self.assertInvalid(["missing parameter", "who"], name=name)
        by_name, _ = self.c.list_all(pipeline_name=name)
        self.assertEqual(len(by_name), 2)
        p2 = self.c.put_pipeline(name, pipeline_json(("c", ["echo v2 {{who}}"])),
                                 defaults={"who": "all"})
        self.assertEqual(p2.version, 2)
        self.assertGreaterEqual(p2.updated_ms, p1.updated_ms)
        self.assertEqual(self.c.get_pipeline(name).version, 2)
        t = self.run_task(name=name)
        self.assertEqual(output_of(list(self.c.watch(t.id))), b"v2 all\n")
        names = [p.name for p in self.c.list_pipelines().pipelines]
        self.assertIn(name, names)
        self.assertEqual(names, sorted(names))
        e = self.assertCode(StatusCode.NOT_FOUND, self.c.get_pipeline, name + "-nope")
        self.assertIn(name + "-nope", e.details())
        self.assertCode(StatusCode.INVALID_ARGUMENT, self.c.put_pipeline, "bad name!",
                        pipeline_json(("a", ["true"])))
        e = self.assertCode(StatusCode.INVALID_ARGUMENT, self.c.put_pipeline, name + "-x",
                            pipeline_json(("nosuch", ["true"])))
        self.assertIn("nosuch", e.details())
        self.assertCode(StatusCode.INVALID_ARGUMENT, self.c.put_pipeline, name + "-y", "{")

    def test_list_workers(self):
        r = self.c.list_workers()
        self.assertEqual(len(r.workers), 1)
        w = r.workers[0]
        self.assertTrue(w.healthy)
        self.assertEqual(w.pool, "pod")
        self.assertEqual(w.slots, self.SLOTS)
        self.assertFalse(w.draining)
        self.assertGreater(w.last_check_ms, 0)
        self.assertEqual(sorted(e.name for e in w.executors), sorted(self.EXECUTORS))
        for e in w.executors:
            self.assertTrue(e.healthy, e)
            self.assertEqual(e.target, "unix:" + self.pod.sockets[e.name])


class ShutdownTest(SchedulerTestCase):
    EXECUTORS = ("a",)

    def test_sigterm_lets_the_running_step_finish(self):
        started = self.d("started-%d" % time.monotonic_ns())
        t = self.c.submit(json_text=pipeline_json(("a", ["touch %s; sleep 2; echo done" % started])))
        wait_until(lambda: os.path.exists(started), what="the step started")
        rc = self.sched.stop()
        self.assertEqual(rc, 0, self.sched.log_tail())
        self.sched.restart()
        final = self.sched.client().wait_final(t.id)
        self.assertState(final, SUCCEEDED)
        self.assertEqual(final.attempt, 1, "the step was not allowed to finish")
        self.assertEqual(output_of(list(self.sched.client().watch(t.id))), b"done\n")

    def test_sigterm_past_the_grace_releases_the_step(self):
        marker = self.d("second-%d" % time.monotonic_ns())
        cmd = "if [ -f %s ]; then echo second; else touch %s; sleep 1235; fi" % (marker, marker)
        self.sched.stop()
        self.sched.restart(extra=["--shutdown-grace-ms", "300"])
        c = self.sched.client()
        t = c.submit(json_text=pipeline_json(("a", [cmd])))
        wait_until(lambda: schedtest.procs_with_cmdline("sleep", "1235"),
                   what="sleep 1235 running")
        self.assertEqual(self.sched.stop(), 0, self.sched.log_tail())
        wait_until(lambda: not schedtest.procs_with_cmdline("sleep", "1235"),
                   what="the released step killed on the executor")
        self.sched.restart()
        c = self.sched.client()
        final = c.wait_final(t.id)
        self.assertState(final, SUCCEEDED)
        self.assertEqual(final.attempt, 2)
        self.assertEqual(final.failed_attempts, 0, "a release is not a failure")
        events = list(c.watch(t.id))
        check_seqs(self, events)
        self.assertEqual(output_of(events), b"second\n")

    def test_queued_tasks_survive_a_restart(self):
        self.sched.stop()
        self.sched.restart(paused=True, extra=["--max-active", "6"])
        c = self.sched.client()
        ids = [c.submit(json_text=pipeline_json(("a", ["echo q%d" % i]))).id for i in range(5)]
        self.assertTrue(all(c.get(i).state == QUEUED for i in ids))
        gone = c.submit(json_text=pipeline_json(("a", ["echo never"]))).id
        e = self.assertCode(StatusCode.RESOURCE_EXHAUSTED, c.submit,
                            json_text=pipeline_json(("a", ["true"])))
        self.assertIn("max-active", e.details())
        self.assertState(c.cancel(gone), CANCELLED)
        c.submit(json_text=pipeline_json(("a", ["true"])))  # room again
        self.assertEqual(self.sched.stop(), 0)
        self.sched.restart()
        c = self.sched.client()
        for k, i in enumerate(ids):
            self.assertState(c.wait_final(i), SUCCEEDED)
            self.assertEqual(output_of(list(c.watch(i))), ("q%d\n" % k).encode())
        self.assertState(c.get(gone), CANCELLED)
        self.assertEqual(c.get(gone).attempt, 0)

    def setUp(self):
        if not self.sched.running():
            self.sched.restart()
        super().setUp()


class TokenTest(SchedulerTestCase):
    """The scheduler's own bearer token, and the one it sends to executors that require one."""
    EXECUTORS = ("a",)

    @classmethod
    def setUpClass(cls):
        cls.token_file = pmtest.fresh_path("token")
        with open(cls.token_file, "w") as f:
            f.write("s3cret-scheduler\n")
        cls.exec_token_file = pmtest.fresh_path("exec-token")
        with open(cls.exec_token_file, "w") as f:
            f.write("s3cret-executor\n")
        cls.SCHEDULER_ARGS = ("--token-file", cls.token_file,
                              "--executor-token-file", cls.exec_token_file)
        cls.pod = schedtest.Pod(cls.EXECUTORS, log_name=cls.__name__,
                                args=("--token-file", cls.exec_token_file))
        try:
            cls.workers = schedtest.workers_config(cls.pod, slots=1)
            cls.sched = schedtest.Scheduler(cls.workers, args=cls.SCHEDULER_ARGS,
                                            log_name=cls.__name__, token="s3cret-scheduler")
        except BaseException:
            cls.pod.kill()
            raise

    def test_token_required_and_passed_on(self):
        bare = schedtest.SchedulerClient(self.sched.channel())
        e = self.assertCode(StatusCode.UNAUTHENTICATED, bare.list_workers)
        self.assertIn("token", e.details())
        wrong = schedtest.SchedulerClient(self.sched.channel(), token="nope")
        self.assertCode(StatusCode.UNAUTHENTICATED, wrong.submit,
                        json_text=pipeline_json(("a", ["true"])))
        self.assertCode(StatusCode.UNAUTHENTICATED, lambda: list(wrong.watch("1")))
        wait_until(lambda: all(w.healthy for w in self.c.list_workers().workers),
                   what="the worker healthy")
        t = self.c.submit(json_text=pipeline_json(("a", ["echo authorized"])))
        final = self.c.wait_final(t.id)
        self.assertState(final, SUCCEEDED)
        self.assertEqual(output_of(list(self.c.watch(t.id))), b"authorized\n")


class WorkersReloadTest(unittest.TestCase):
    """SIGHUP reads the workers config again: workers added and drained, slots changed; a config
    that changes a pool's executors, or does not parse, is refused and the workers stay."""

    def setUp(self):
        self.pod = schedtest.Pod(("a",), log_name="WorkersReloadTest")
        self.path = pmtest.fresh_path("workers-reload.json")
        self.write(["w1"], 1)
        self.sched = schedtest.Scheduler(self.path, log_name="WorkersReloadTest")
        self.c = self.sched.client()

    def tearDown(self):
        try:
            self.assertEqual(self.sched.stop(), 0, self.sched.log_tail())
        finally:
            self.sched.kill()
            self.pod.kill()

    def write(self, workers, slots, executors=None, text=None):
        if text is None:
            text = json.dumps({"pools": [{"name": "pod", "workers": workers, "slots": slots,
                                          "executors": executors or self.pod.executors_json()}]})
        with open(self.path, "w") as f:
            f.write(text)

    def hup(self):
        os.kill(self.sched.pid, signal.SIGHUP)

    def workers(self):
        return {w.name: w.slots for w in self.c.list_workers().workers}

    def run_one(self, text):
        t = self.c.submit(json_text=pipeline_json(("a", ["echo %s" % text])))
        final = self.c.wait_final(t.id)
        self.assertEqual(state_name(final.state), state_name(SUCCEEDED), final.error)
        self.assertEqual(output_of(list(self.c.watch(t.id))), (text + "\n").encode())
        return final

    def test_reload(self):
        self.assertEqual(self.workers(), {"w1": 1})
        self.run_one("before")
        # Added, and slots changed.
        self.write(["w1", "w2"], 2)
        self.hup()
        wait_until(lambda: self.workers() == {"w1": 2, "w2": 2}, what="w2 added, 2 slots each")
        self.assertIn("event=workers_reloaded", self.sched.log())
        # Dropped: drained, then gone once idle; tasks go to w2.
        self.write(["w2"], 2)
        self.hup()
        wait_until(lambda: self.workers() == {"w2": 2}, what="w1 drained and gone")
        self.assertEqual(self.run_one("after").worker, "w2")
        # A pool's executors cannot change under running tasks: refused, nothing changes.
        self.write(["w3"], 1, executors={"a": "unix:/nonexistent/a.sock"})
        self.hup()
        wait_until(lambda: "pool 'pod' changed its executors" in self.sched.log(),
                   what="the refusal in the log")
        self.assertIn("restart pm-scheduler to apply it", self.sched.log())
        self.assertEqual(self.workers(), {"w2": 2})
        # Malformed JSON: refused with its position, the scheduler keeps serving.
        self.write(None, None, text='{"pools": [\n  {"name": "pod",, }]}')
        self.hup()
        wait_until(lambda: self.sched.log().count("event=workers_reload_refused") >= 2,
                   what="the second refusal in the log")
        self.assertIn("line 2", self.sched.log())
        self.sched.assert_running(self)
        self.assertEqual(self.workers(), {"w2": 2})
        self.run_one("still serving")


class ExecutorTlsTest(unittest.TestCase):
    """Calls to executors over TLS (--executor-tls-ca): one executor serving TLS on loopback TCP
    with a self-signed certificate; schedulers that trust it, that do not, that expect another
    name, and bad flags."""

    @classmethod
    def setUpClass(cls):
        d = pmtest.fresh_path("exec-tls")
        os.makedirs(d)
        cls.cert, key = os.path.join(d, "cert.pem"), os.path.join(d, "key.pem")
        # Valid for the name "pm-executor.test" only, not for 127.0.0.1.
        subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                        "ec_paramgen_curve:prime256v1", "-nodes", "-days", "2", "-subj",
                        "/CN=pm-executor.test", "-addext", "subjectAltName=DNS:pm-executor.test",
                        "-keyout", key, "-out", cls.cert], check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        cls.not_pem = os.path.join(d, "not.pem")
        with open(cls.not_pem, "w") as f:
            f.write("just text\n")
        cls.exe = pmtest.Executor(args=["--tls-cert", cls.cert, "--tls-key", key],
                                  credentials=grpc.ssl_channel_credentials(open(cls.cert, "rb").read()),
                                  channel_options=(("grpc.ssl_target_name_override",
                                                    "pm-executor.test"),),
                                  log_name="exec-tls")
        port = int(cls.exe.listen.rsplit(":", 1)[1])
        cls.workers = pmtest.fresh_path("workers-tls.json")
        with open(cls.workers, "w") as f:
            json.dump({"pools": [{"name": "tls", "workers": ["127.0.0.1"], "slots": 1,
                                  "executors": {"a": port}}]}, f)

    @classmethod
    def tearDownClass(cls):
        cls.exe.kill()

    def run_sched(self, args, expect_healthy, expect_error=None):
        sched = schedtest.Scheduler(self.workers, args=args, log_name="ExecutorTlsTest")
        try:
            c = sched.client()

            def checked():
                ws = c.list_workers().workers
                return ws and ws[0].last_check_ms > 0 and ws[0].executors[0].error != \
                    "not checked yet" and ws
            ws = wait_until(checked, what="the worker checked")
            if expect_healthy:
                wait_until(lambda: c.list_workers().workers[0].healthy, what="worker healthy")
                t = c.submit(json_text=pipeline_json(("a", ["echo over tls"])))
                final = c.wait_final(t.id)
                self.assertState(final, SUCCEEDED)
                self.assertEqual(output_of(list(c.watch(t.id))), b"over tls\n")
            else:
                # Checked again and again, never healthy.
                time.sleep(1.0)
                w = c.list_workers().workers[0]
                self.assertFalse(w.healthy, ws)
                self.assertIn(expect_error, w.executors[0].error)
            self.assertEqual(sched.stop(), 0, sched.log_tail())
        finally:
            sched.kill()

    def assertState(self, task, want):
        self.assertEqual(state_name(task.state), state_name(want), task.error)

    def test_trusted_with_the_name_in_the_certificate(self):
        self.run_sched(("--executor-tls-ca", self.cert,
                        "--executor-tls-name", "pm-executor.test"), expect_healthy=True)

    def test_plaintext_scheduler_cannot_reach_it(self):
        self.run_sched((), expect_healthy=False, expect_error="UNAVAILABLE")

    def test_certificate_without_the_workers_address_refused(self):
        # The certificate names pm-executor.test; the worker is 127.0.0.1.
        self.run_sched(("--executor-tls-ca", self.cert), expect_healthy=False,
                       expect_error="not in peer certificate")

    def test_pmctl_over_tls(self):
        pmctl = os.path.join(pmtest.ROOT, "cli", "pmctl")
        base = [pmctl, "exec", "--target", self.exe.target, "--tls-ca"]
        r = subprocess.run(base + [self.cert, "--tls-server-name", "pm-executor.test", "--",
                                   "echo", "pmctl over tls"], capture_output=True, text=True,
                           timeout=60)
        self.assertEqual((r.returncode, r.stdout), (0, "pmctl over tls\n"), r.stderr)
        r = subprocess.run(base + [self.not_pem, "--", "true"], capture_output=True, text=True,
                           timeout=60)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("not.pem: no PEM certificate", r.stderr)

    def test_bad_flags_refused_at_start(self):
        for args, needles in (
                (("--executor-tls-ca", self.not_pem), ("--executor-tls-ca", "not.pem", "PEM")),
                (("--executor-tls-ca", self.not_pem + ".missing"),
                 ("--executor-tls-ca", "No such file")),
                (("--executor-tls-name", "x"), ("--executor-tls-name", "--executor-tls-ca"))):
            r = subprocess.run([schedtest.SCHEDULER, "--workers", self.workers, "--db",
                                pmtest.fresh_path("tls.db"), "--listen", "127.0.0.1:0"] +
                               list(args), capture_output=True, text=True, timeout=30)
            self.assertEqual(r.returncode, 2, (args, r.stderr))
            for n in needles:
                self.assertIn(n, r.stderr, args)


class DnsPoolTest(unittest.TestCase):
    """A pool found through DNS (the headless-Service case): the name "localhost" resolves to
    loopback addresses, each becoming a worker with the pool's executor port; the one whose
    executor answers takes the task, one that does not is skipped."""

    def setUp(self):
        self.exe = pmtest.Executor(log_name="dns-executor")
        port = int(self.exe.listen.rsplit(":", 1)[1])
        self.workers = pmtest.fresh_path("workers-dns.json")
        with open(self.workers, "w") as f:
            json.dump({"pools": [{"name": "dns", "dns": "localhost", "resolveIntervalMs": 200,
                                  "slots": 2, "executors": {"a": port}}]}, f)
        self.sched = schedtest.Scheduler(self.workers, log_name="DnsPoolTest")

    def tearDown(self):
        try:
            self.assertEqual(self.sched.stop(), 0, self.sched.log_tail())
        finally:
            self.sched.kill()
            self.exe.kill()

    def test_workers_come_from_dns(self):
        c = self.sched.client()

        def v4_healthy():
            return [w for w in c.list_workers().workers if w.name == "127.0.0.1" and w.healthy]
        wait_until(v4_healthy, what="worker 127.0.0.1 found through DNS and healthy")
        for w in c.list_workers().workers:
            self.assertEqual(w.pool, "dns")
            self.assertIn(w.name, ("127.0.0.1", "::1"))
            if w.name == "::1":
                # Nothing listens on [::1]:port: resolved, checked, and skipped.
                self.assertFalse(w.healthy)
        for _ in range(3):
            t = c.submit(json_text=pipeline_json(("a", ["echo via dns"])))
            final = c.wait_final(t.id)
            self.assertEqual(final.state, SUCCEEDED, final.error)
            self.assertEqual(final.worker, "127.0.0.1")
            self.assertEqual(output_of(list(c.watch(t.id))), b"via dns\n")


class PriorityTest(SchedulerTestCase):
    EXECUTORS = ("a",)
    SLOTS = 1

    def test_higher_priority_first_fifo_within(self):
        gate = self.d("gate-%d" % time.monotonic_ns())
        order = gate + ".order"
        blocker = self.c.submit(json_text=pipeline_json(
            ("a", ["while [ ! -f %s ]; do sleep 0.02; done" % gate])))
        self.c.wait_state(blocker.id, (RUNNING,))
        plan = [("low1", 0), ("high1", 5), ("low2", 0), ("mid", 2), ("high2", 5), ("neg", -1)]
        ids = [self.c.submit(json_text=pipeline_json(("a", ["echo %s >> %s" % (n, order)])),
                             priority=p).id for n, p in plan]
        for i in ids:
            self.assertState(self.c.get(i), QUEUED)
        open(gate, "w").close()
        for i in ids:
            self.assertState(self.c.wait_final(i), SUCCEEDED)
        with open(order) as f:
            self.assertEqual(f.read().split(), ["high1", "high2", "mid", "low1", "low2", "neg"])


class ExecutorCrashTest(SchedulerTestCase):
    EXECUTORS = ("a", "b")
    SCHEDULER_ARGS = ("--backoff-ms", "100", "--lease-ttl-ms", "3000")

    def test_executor_killed_mid_step(self):
        runs = self.d("runs-%d" % time.monotonic_ns())
        t = self.c.submit(json_text=pipeline_json(
            ("a", ["echo first"]),
            ("b", ["echo x >> %s; n=$(wc -l < %s); if [ $n -eq 1 ]; then sleep 29.125; fi; echo ok"
                   % (runs, runs)])))
        wait_until(lambda: os.path.exists(runs), what="step 2 started")
        wait_until(lambda: schedtest.procs_with_cmdline("sleep", "29.125"),
                   what="sleep 29.125 running")
        self.pod.kill9("b")
        self.assertIn(self.c.get(t.id).state, (RUNNING, QUEUED))

        def b_down():
            w = self.c.list_workers().workers[0]
            b = [e for e in w.executors if e.name == "b"][0]
            return not w.healthy and not b.healthy and b.error

        wait_until(b_down, what="ListWorkers shows executor b unhealthy")
        # Nowhere to run: the task waits in the queue, it does not burn its attempts.
        time.sleep(0.5)
        self.assertIn(self.c.get(t.id).state, (QUEUED,))
        self.pod.start("b")
        final = self.c.wait_final(t.id)
        self.assertState(final, SUCCEEDED)
        self.assertEqual(final.attempt, 2)
        self.assertEqual(final.failed_attempts, 1)
        with open(runs) as f:
            self.assertEqual(len(f.readlines()), 2)
        self.assertIdle()
        events = list(self.c.watch(t.id))
        check_seqs(self, events)
        attempts = sorted({ev.attempt for ev in events if ev.HasField("step_started")})
        self.assertEqual(attempts, [1, 2])
        self.assertEqual(output_of([ev for ev in events if ev.attempt == 2]), b"first\nok\n")
        # The orphaned sleep of the killed executor is not the scheduler's; end it here.
        for pid in schedtest.procs_with_cmdline("sleep", "29.125"):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass


if __name__ == "__main__":
    argv = list(sys.argv)
    only = os.environ.get("TESTBRIDGE_TEST_ONLY")
    if only:
        argv += ["-k", only]
    unittest.main(verbosity=2, argv=argv)

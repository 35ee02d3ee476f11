#!/usr/bin/python3
"""Crash tests of pm-scheduler with real executors and a real SQLite file.

1. 200 tasks are submitted (with idempotency keys, retried on UNAVAILABLE) while the scheduler is
   killed with SIGKILL at random moments and restarted on the same db. At the end every
   acknowledged task has exactly one record, SUCCEEDED, reached once in its event history; every
   task's token is in the executors' log at least once (at-least-once), and nothing else is.
   The moments come from a seeded random generator; the seed is printed (PM_TEST_SEED=N repeats
   a run).
2. 10,000 tasks queued with --paused: all listed QUEUED (paged), the scheduler's RSS printed;
   then a restart without --paused runs them all to SUCCEEDED.
"""

import concurrent.futures
import os
import random
import sys
import threading
import time

sys.dont_write_bytecode = True  # Never leave __pycache__ in the source or runfiles tree.
sys.path.insert(0, os.path.join(os.environ.get("TEST_SRCDIR", "."),
                                os.environ.get("TEST_WORKSPACE", "pm"), "tests"))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import unittest  # noqa: E402

import grpc  # noqa: E402

import schedtest  # noqa: E402
from pmtest import wait_until  # noqa: E402
from schedtest import QUEUED, RUNNING, SUCCEEDED, check_seqs, log, pipeline_json  # noqa: E402

RETRYABLE = (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED)


class CrashTest(unittest.TestCase):

    def setUp(self):
        self.pod = None
        self.sched = None

    def tearDown(self):
        if self.sched:
            self.sched.kill()
        if self.pod:
            self.pod.kill()

    def test_kill9_scheduler_under_load(self):
        n_tasks = 200
        kills = 5
        seed = schedtest.random_seed()
        log("\ncrash test seed %d (PM_TEST_SEED=%d repeats it)" % (seed, seed))
        rng = random.Random(seed)
        sub_rng = random.Random(rng.randrange(1 << 30))

        self.pod = schedtest.Pod(("w",), log_name="crash")
        workers = schedtest.workers_config(self.pod, slots=8)
        # The same --id across restarts: the leases of a previous life are reclaimed at once.
        sched = self.sched = schedtest.Scheduler(
            workers, args=["--lease-ttl-ms", "1000", "--backoff-ms", "50"], sched_id="crash-1",
            log_name="crash-scheduler")
        logfile = self.pod.path("log")
        js = pipeline_json(("w", ["echo {{tok}} >> %s; sleep 0.0{{d}}" % logfile]))
        run = "%x" % seed
        tokens = ["t%03d-%s" % (i, run) for i in range(n_tasks)]

        acks = {}           # token -> id of its acknowledged task
        problems = []
        lost_acks = [0]     # a retry found the task its lost ack had created
        retries = [0]
        done = threading.Event()
        watched = {}        # id -> events a watcher saw across the crashes
        watchers = []

        def watcher(tid):
            """Follows one task through the crashes, resuming from the last seq after each."""
            ch = sched.new_channel()
            c = schedtest.SchedulerClient(ch)
            events = watched[tid] = []
            try:
                for _ in range(1000):
                    after = events[-1].seq if events else 0
                    call = c.call("Watch", schedtest.spb.WatchRequest(id=tid, after_seq=after),
                                  timeout=300, wait_for_ready=True)
                    try:
                        for ev in call:
                            events.append(ev)
                        return
                    except grpc.RpcError as e:
                        if e.code() not in RETRYABLE:
                            problems.append("watch %s: %s %s" % (tid, e.code(), e.details()))
                            return
                        time.sleep(0.05)
                problems.append("watch %s: too many reconnects" % tid)
            except Exception as e:  # noqa: BLE001
                problems.append("watcher %s: %r" % (tid, e))
            finally:
                ch.close()

        def submitter():
            ch = sched.new_channel()
            c = schedtest.SchedulerClient(ch)
            try:
                for tok in tokens:
                    tried = False
                    while True:
                        try:
                            t = c.submit(json_text=js, idempotency_key=tok,
                                         params_={"tok": tok, "d": str(sub_rng.randrange(1, 10))},
                                         labels={"run": run}, timeout=20, wait_for_ready=True)
                        except grpc.RpcError as e:
                            if e.code() in RETRYABLE:
                                tried = True
                                retries[0] += 1
                                time.sleep(0.05)
                                continue
                            problems.append("submit %s: %s %s" % (tok, e.code(), e.details()))
                            return
                        if tok in acks and acks[tok] != t.id:
                            problems.append("token %s acknowledged as %s and %s"
                                            % (tok, acks[tok], t.id))
                        if not t.created:
                            if not tried:
                                problems.append("first submit of %s found task %s" % (tok, t.id))
                            lost_acks[0] += 1
                        acks[tok] = t.id
                        if len(acks) % 20 == 1 and t.id not in watched:
                            w = threading.Thread(target=watcher, args=(t.id,))
                            watchers.append(w)
                            w.start()
                        break
                    time.sleep(sub_rng.uniform(0, 0.03))
            except Exception as e:  # noqa: BLE001  (reported by the main thread)
                problems.append("submitter: %r" % e)
            finally:
                ch.close()
                done.set()

        th = threading.Thread(target=submitter)
        th.start()
        try:
            for k in range(kills):
                time.sleep(rng.uniform(0.1, 1.5))
                sched.kill9()
                try:
                    with open(logfile) as f:
                        ran = len(f.readlines())
                except FileNotFoundError:
                    ran = 0
                log("kill %d: SIGKILL after %d acknowledged submissions, %d runs logged"
                    % (k + 1, len(acks), ran))
                time.sleep(rng.uniform(0, 0.3))
                sched.restart()
        finally:
            th.join(300)
            for w in watchers:
                w.join(300)
        self.assertFalse(th.is_alive(), "the submitter hangs")
        self.assertFalse(any(w.is_alive() for w in watchers), "a watcher hangs")
        self.assertEqual(problems, [])
        self.assertEqual(len(acks), n_tasks)
        log("submissions retried: %d; acknowledgements lost in a crash and found by key: %d"
            % (retries[0], lost_acks[0]))

        # Every acknowledged task completes.
        c = sched.client()
        for tok, tid in acks.items():
            t = c.wait_final(tid, timeout=300, retry_unavailable=True)
            self.assertEqual(t.state, SUCCEEDED, "task %s (%s): %s" % (tid, tok, t))

        # One record per task, SUCCEEDED; no key twice; nothing that was not acknowledged.
        tasks, _ = c.list_all(labels={"run": run})
        self.assertEqual(len(tasks), n_tasks)
        self.assertEqual(len({t.id for t in tasks}), n_tasks)
        keys = [t.idempotency_key for t in tasks]
        self.assertEqual(sorted(keys), sorted(tokens), "a key twice, or one missing")
        self.assertEqual({t.id for t in tasks}, set(acks.values()))
        self.assertTrue(all(t.state == SUCCEEDED for t in tasks))
        all_tasks, _ = c.list_all()
        self.assertEqual(len(all_tasks), n_tasks)

        # Each task's history: consecutive events, SUCCEEDED reached exactly once, at the end.
        attempts = 0
        for tid in acks.values():
            events = list(c.watch(tid))
            check_seqs(self, events)
            finals = [ev for ev in events if ev.state in schedtest.FINAL_STATES]
            self.assertEqual(len(finals), 1, "task %s: final events %s" % (tid, finals))
            self.assertIs(events[-1], finals[0])
            self.assertEqual(events[-1].state, SUCCEEDED)
            attempts += max(ev.attempt for ev in events)

        # The watchers that followed tasks through the crashes saw each event once, in order.
        self.assertEqual(len(watched), 10)
        for tid, events in watched.items():
            check_seqs(self, events)
            self.assertEqual(events, list(c.watch(tid)), "task %s: live and stored differ" % tid)

        # At least once in the executors' log, and nothing foreign.
        with open(logfile) as f:
            lines = f.read().split()
        counts = {}
        for ln in lines:
            counts[ln] = counts.get(ln, 0) + 1
        missing = [t for t in tokens if t not in counts]
        self.assertEqual(missing, [], "tokens never run")
        self.assertEqual(set(counts) - set(tokens), set(), "unknown lines in the log")
        reruns = sum(v - 1 for v in counts.values())
        log("%d tasks, %d attempts, %d runs in the log (%d re-runs after crashes), %d restarts"
            % (n_tasks, attempts, len(lines), reruns, kills))
        sched.assert_running(self)
        self.assertEqual(sched.stop(), 0)

    def test_ten_thousand_queued(self):
        # The full count under ASan too: there it takes about twice as long, well inside "large".
        n = 10000
        self.pod = schedtest.Pod(("t",), args=("--kill-grace-ms", "500", "--max-concurrent",
                                                "64"), log_name="tenk")
        workers = schedtest.workers_config(self.pod, slots=16)
        sched = self.sched = schedtest.Scheduler(workers, paused=True, sched_id="tenk",
                                                 log_name="tenk-scheduler")
        idle = sched.rss_kb()
        js = pipeline_json(("t", ["true"]))
        c = sched.client()
        t0 = time.monotonic()
        with concurrent.futures.ThreadPoolExecutor(32) as pool:
            futs = [pool.submit(c.submit, json_text=js, idempotency_key="k%d" % i)
                    for i in range(n)]
            ids = [f.result().id for f in futs]
        t_submit = time.monotonic() - t0
        self.assertEqual(len(set(ids)), n)
        queued, pages = c.list_all(states=[QUEUED], page_size=1000)
        self.assertEqual(len(queued), n)
        self.assertEqual(len({t.id for t in queued}), n, "a task on two pages")
        self.assertEqual({t.id for t in queued}, set(ids))
        self.assertGreaterEqual(pages, n // 1000)
        rss = sched.rss_kb()
        log("\n%d tasks submitted in %.1f s (%.0f/s from 32 threads); List: %d pages; "
            "scheduler VmRSS idle %d kB, with %d queued %d kB%s"
            % (n, t_submit, n / t_submit, pages, idle, n, rss,
               " (ASan build)" if schedtest.under_asan() else ""))
        self.assertEqual(sched.stop(), 0)

        t0 = time.monotonic()
        sched.restart()
        c = sched.client()
        wait_until(lambda: not c.list(states=[QUEUED, RUNNING], page_size=1).tasks,
                   timeout=1800, interval=0.5, what="every task out of QUEUED/RUNNING")
        t_run = time.monotonic() - t0
        done, _ = c.list_all(states=[SUCCEEDED], page_size=1000)
        self.assertEqual(len(done), n)
        everything, _ = c.list_all(page_size=1000)
        self.assertEqual(len(everything), n)
        self.assertTrue(all(t.attempt == 1 for t in done))
        log("%d tasks ran to SUCCEEDED in %.1f s after the restart (%.0f tasks/s); "
            "scheduler VmRSS after %d kB" % (n, t_run, n / t_run, sched.rss_kb()))
        self.assertEqual(sched.stop(), 0)


if __name__ == "__main__":
    argv = list(sys.argv)
    only = os.environ.get("TESTBRIDGE_TEST_ONLY")
    if only:
        argv += ["-k", only]
    unittest.main(verbosity=2, argv=argv)

#!/usr/bin/python3
"""End-to-end tests of what output arrives and when: concurrent steps whose bytes must not mix,
output a finished command left in its pipe while the client was slow, and the coalescing of bulk
output (--coalesce-us). Also run under ASan/UBSan (the output buffers are released by gRPC on its
own threads)."""

import os
import sys
import threading
import time

sys.dont_write_bytecode = True  # Never leave __pycache__ in the source or runfiles tree.
sys.path.insert(0, os.path.join(os.environ.get("TEST_SRCDIR", "."),
                                os.environ.get("TEST_WORKSPACE", "pm"), "tests"))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import grpc  # noqa: E402

import pmtest  # noqa: E402
from pmtest import request, sh  # noqa: E402


class OutputTest(pmtest.ExecutorTestCase):
    EXECUTOR_ARGS = ("--output-cap", "0", "--kill-grace-ms", "500")

    def test_concurrent_steps_do_not_mix(self):
        # Eight steps at once, each with its own binary payload on stdout and a text on stderr:
        # every byte must reach its own stream of its own call.
        n = 8
        blobs = []
        for k in range(n):
            blob = os.urandom((1 << 20) + k * 4099)
            path = pmtest.fresh_path("blob%d" % k)
            with open(path, "wb") as f:
                f.write(blob)
            blobs.append((path, blob))
        results = [None] * n
        errors = []

        def worker(k):
            try:
                path, _ = blobs[k]
                results[k] = self.client().run(request(
                    sh("cat '%s'; i=0; while [ $i -lt 200 ]; do echo step%d-$i >&2; i=$((i+1)); "
                       "done; exit %d" % (path, k, k))), timeout=120)
            except Exception as e:  # Reported below, in the main thread.
                errors.append((k, e))
        threads = [threading.Thread(target=worker, args=(k,)) for k in range(n)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(180)
        self.assertEqual(errors, [])
        for k in range(n):
            c = results[k][0]
            self.assertEqual(pmtest.sha256(bytes(c.stdout)), pmtest.sha256(blobs[k][1]),
                             "stdout of step %d" % k)
            self.assertEqual(c.err, "".join("step%d-%d\n" % (k, i) for i in range(200)))
            self.assertEqual(c.exited.exit_code, k)

    def test_output_in_the_pipe_outlives_the_command_for_a_slow_reader(self):
        # The client reads nothing for a second. The first 128 KiB chunk cannot leave: it is
        # larger than the client's 64 KiB flow-control window (BDP probing is off below, so the
        # window does not grow). The executor stops reading behind it; the command writes the
        # remaining 160 KiB into its 256 KiB pipe and exits with them unread. The second is far
        # past the 200 ms the executor grants escaped descendants that hold a dead command's
        # pipes, but none of the output may be lost (it was, before the drain grace learned to
        # wait for the client).
        size = 128 * 1024 + 160 * 1024
        blob = os.urandom(size)
        path = pmtest.fresh_path("slowreader")
        with open(path, "wb") as f:
            f.write(blob)
        # Without BDP probing the client's window stays at 64 KiB, so what the executor can
        # hand over is bounded by gRPC's flow control and its own buffers, not by socket sizes.
        ch = grpc.insecure_channel(self.exe.target, options=[("grpc.http2.bdp_probe", 0)])
        self.addCleanup(ch.close)
        call = pmtest.ExecutorClient(ch).run_stream(request(sh("cat '%s'" % path)), timeout=60)
        time.sleep(1.0)
        out = bytearray()
        exited = None
        for ev in call:
            if ev.stdout_data:
                out += ev.stdout_data
            elif ev.HasField("exited"):
                exited = ev.exited
        self.assertIsNotNone(exited)
        self.assertEqual(exited.exit_code, 0)
        self.assertEqual(exited.stdout_bytes, size)
        self.assertEqual(len(out), size)
        self.assertEqual(pmtest.sha256(bytes(out)), pmtest.sha256(blob))


class CoalesceTest(pmtest.ExecutorTestCase):
    """Bulk output waits up to --coalesce-us for the pipe to fill; a little output never waits.
    A one-second wait makes both visible without depending on the machine's speed."""

    EXECUTOR_ARGS = ("--coalesce-us", "1000000", "--kill-grace-ms", "500")

    def stdout_events(self, line):
        events = []
        exited = None
        for ev in self.client().run_stream(request(sh(line)), timeout=60):
            if ev.stdout_data:
                events.append(bytes(ev.stdout_data))
            elif ev.HasField("exited"):
                exited = ev.exited
        self.assertIsNotNone(exited)
        self.assertEqual(exited.exit_code, 0)
        return events

    def test_bulk_pieces_are_sent_together(self):
        # Two bulk writes of 100,000 bytes 0.2 s apart. The first drains the pipe, and being
        # bulk (past an eighth of a 128 KiB chunk) it waits for more; the second lands meanwhile
        # and fills the chunk. Without the wait the first event would hold zeros only.
        events = self.stdout_events(
            "dd if=/dev/zero bs=100000 count=1 status=none; sleep 0.2; "
            "dd if=/dev/zero bs=100000 count=1 status=none | tr '\\0' x")
        self.assertEqual(sum(len(e) for e in events), 200000)
        self.assertEqual(events[0], b"\0" * 100000 + b"x" * (131072 - 100000))
        self.assertEqual(b"".join(events[1:]), b"x" * (200000 - 131072))

    def test_little_output_is_not_held_back(self):
        # "hello" is far below the bulk threshold: it must reach the client while the command is
        # still sleeping, i.e. before the file the command creates afterwards exists.
        flag = pmtest.fresh_path("coalesce-flag")
        call = self.client().run_stream(
            request(sh("printf hello; sleep 1; touch '%s'; printf world" % flag)), timeout=60)
        seen = []
        for ev in call:
            if ev.stdout_data:
                seen.append((bytes(ev.stdout_data), os.path.exists(flag)))
        self.assertEqual(seen, [(b"hello", False), (b"world", True)])

    def test_bulk_output_is_not_held_until_the_end(self):
        # 256 KiB at once, then the command sleeps 1.5 s. Each message waits at most the
        # coalescing window (1 s) once, and by then the pipe holds a whole chunk: so at least one
        # full chunk reaches the client before the file the command creates afterwards exists.
        # (Later messages may each wait their own window; how head splits its writes decides.)
        flag = pmtest.fresh_path("coalesce-full")
        call = self.client().run_stream(
            request(sh("head -c 262144 /dev/zero; sleep 1.5; touch '%s'" % flag)), timeout=60)
        got = 0
        before_flag = 0
        for ev in call:
            if ev.stdout_data:
                got += len(ev.stdout_data)
                if not os.path.exists(flag):
                    before_flag += len(ev.stdout_data)
        self.assertEqual(got, 262144)
        self.assertGreaterEqual(before_flag, 128 * 1024)

if __name__ == "__main__":
    pmtest.main()

#!/usr/bin/python3
"""End-to-end tests of output streaming under volume: 1 GiB streamed completely while the
executor's peak memory stays small, and a slow reader that must slow the child down instead of
growing the executor's memory (backpressure). Memory figures mean nothing under ASan, so these
two live apart from executor_output_test, which checks what output arrives and when."""

import os
import sys
import time

sys.dont_write_bytecode = True  # Never leave __pycache__ in the source or runfiles tree.
sys.path.insert(0, os.path.join(os.environ.get("TEST_SRCDIR", "."),
                                os.environ.get("TEST_WORKSPACE", "pm"), "tests"))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import grpc  # noqa: E402

import pmtest  # noqa: E402
from pmtest import request, sh, wait_until  # noqa: E402

MEMORY_LIMIT_KB = 24 * 1024  # the bound for the executor while streaming
GIB = 1 << 30


class StreamTest(pmtest.ExecutorTestCase):
    EXECUTOR_ARGS = ("--output-cap", "0", "--kill-grace-ms", "500")

    def test_one_gib_streamed_with_small_memory(self):
        # A channel with gRPC's default 4 MiB receive limit: chunks must stay below it.
        ch = grpc.insecure_channel(self.exe.target,
                                   options=[("grpc.use_local_subchannel_pool", 1)])
        c = pmtest.ExecutorClient(ch)
        total = 0
        nonzero = 0
        chunks = 0
        largest = 0
        exited = None
        started = None
        t0 = time.monotonic()
        try:
            for ev in c.run_stream(request(sh("head -c %d /dev/zero" % GIB)), timeout=800):
                kind = pmtest.event_kind(ev)
                if kind == "stdout":
                    n = len(ev.stdout_data)
                    total += n
                    chunks += 1
                    largest = max(largest, n)
                    # Checking every byte of 1 GiB in Python is slow; count() is C-speed.
                    nonzero += n - ev.stdout_data.count(0)
                elif kind == "started":
                    started = ev.started
                elif kind == "exited":
                    exited = ev.exited
                else:
                    self.fail("unexpected %s event" % kind)
        finally:
            ch.close()
        elapsed = time.monotonic() - t0
        hwm = self.exe.vm_kb("VmHWM")
        rss = self.exe.vm_kb("VmRSS")
        print("\n1 GiB: %d chunks (largest %d B) in %.1f s (%.0f MB/s); executor VmHWM %d kB, "
              "VmRSS %d kB" % (chunks, largest, elapsed, GIB / 1e6 / max(elapsed, 1e-9), hwm, rss),
              file=sys.stderr)
        self.assertIsNotNone(started)
        self.assertIsNotNone(exited)
        self.assertEqual(total, GIB)
        self.assertEqual(nonzero, 0)
        self.assertEqual(exited.exit_code, 0)
        self.assertEqual(exited.stdout_bytes, GIB)
        self.assertFalse(exited.truncated)
        self.assertLess(hwm, MEMORY_LIMIT_KB, "executor peak RSS %d kB" % hwm)

    def test_slow_reader_backpressure(self):
        marker = pmtest.new_marker()
        c = self.client()
        call = c.run_stream(request(sh("exec yes 'backpressure backpressure backpressure'",
                                       env=[marker])), timeout=120)
        got = 0
        for ev in call:
            if ev.stdout_data:
                got += 1
                if got >= 5:
                    break
        rss_before = self.exe.vm_kb("VmRSS")
        time.sleep(2)  # Not reading: `yes` runs on; the executor must stop reading its pipe.
        rss_after = self.exe.vm_kb("VmRSS")
        hwm = self.exe.vm_kb("VmHWM")
        print("\nslow reader: executor VmRSS %d kB -> %d kB after 2 s unread, VmHWM %d kB"
              % (rss_before, rss_after, hwm), file=sys.stderr)
        # Read a little more: the stream is still intact after the pause.
        more = 0
        for ev in call:
            if ev.stdout_data:
                self.assertTrue(ev.stdout_data.startswith(b"backpressure") or
                                b"\nbackpressure" in ev.stdout_data or
                                len(ev.stdout_data) < 40)
                more += 1
                if more >= 5:
                    break
        call.cancel()
        self.assertLess(rss_after, MEMORY_LIMIT_KB, "executor RSS grew to %d kB" % rss_after)
        self.assertLess(hwm, MEMORY_LIMIT_KB)
        wait_until(lambda: not pmtest.pids_with_env_marker(marker), what="`yes` killed")


if __name__ == "__main__":
    pmtest.main()

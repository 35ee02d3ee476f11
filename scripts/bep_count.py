#!/usr/bin/python3
"""Counts test results from Bazel build-event JSON files.

Usage: bep_count.py EXPECTED_LIST BEP.json [BEP.json ...]
EXPECTED_LIST holds one line "<run> <label>" per test that should have run, where <run> names the
BEP file (its index, from 0). A test with no PASSED summary (failed, timed out, or not built) counts
as failed, so a target that does not build can never hide.
"""
import json
import sys


def summaries(path):
    status = {}
    try:
        with open(path) as f:
            for line in f:
                try:
                    ev = json.loads(line)
                except ValueError:
                    continue
                sid = ev.get("id", {})
                if "testSummary" in sid:
                    label = sid["testSummary"]["label"]
                    status[label] = ev.get("testSummary", {}).get("overallStatus", "NO_STATUS")
    except OSError:
        pass
    return status


def main():
    expected = [l.split() for l in open(sys.argv[1]) if l.strip()]
    runs = [summaries(p) for p in sys.argv[2:]]
    passed = failed = 0
    for run, label in expected:
        st = runs[int(run)].get(label, "NOT_BUILT_OR_NOT_RUN")
        if st == "PASSED":
            passed += 1
        else:
            failed += 1
            print("FAILED %s (%s, run %s)" % (label, st, run))
    print("%d passed, %d failed" % (passed, failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

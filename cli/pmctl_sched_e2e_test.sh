#!/bin/sh
# End-to-end test of pmctl's scheduler mode against a scripted scheduler (fake_scheduler.py, on
# python3-grpcio), until the real pm-scheduler can stand in: submit sends the file unchanged with
# its flags, watch resumes a stream that breaks with UNAVAILABLE from the last seq it saw (no
# output lost or repeated) and exits with the failed step's code, get/list print text and JSON,
# and a NOT_FOUND is reported as "pmctl: METHOD: STATUS: details" with exit 1.
set -u

# Runfiles: the test's cwd under `bazel test`; TEST_SRCDIR/TEST_WORKSPACE when run otherwise.
root="${TEST_SRCDIR:-$PWD/..}/${TEST_WORKSPACE:-pm}"
[ -d "$root/cli" ] || root="$PWD"
. "$root/cli/pmctl_e2e_lib.sh"


case_name="fake scheduler"
sock_dir 12
log="$tmp/calls.log"
log_files="$log_files $log $logs/fake-scheduler.log"
rm -f "$log" "$tmp/ready"
PM_FAKE_ROOT="$root" "$python" "$root/cli/fake_scheduler.py" "$sockdir/sched.sock" "$log" \
    "$tmp/ready" >"$logs/fake-scheduler.log" 2>&1 &
bg_pids="$bg_pids $!"
i=0
until [ -s "$tmp/ready" ]; do
    i=$((i + 1))
    [ "$i" -gt 300 ] && fail "the fake scheduler did not start in 30 s"
    sleep 0.1
done
export PM_SCHEDULER="unix:$sockdir/sched.sock"

case_name="submit"
printf '{"pipeline":[{"executorName":"sh","commands":["echo {{x}}"]}]}\n' >"$tmp/p.json"
pm submit "$tmp/p.json" -p x=1 -p y=two --key k1 --priority -5 --retry-exit-code 75 \
    >"$tmp/out" 2>"$tmp/err"
expect_rc 0 $? "submit"
expect_file "$tmp/out" "t1${nl}" "the task id"
expect_grep "$log" "^Submit json=$(wc -c <"$tmp/p.json") name= params=x=1,y=two key=k1 priority=-5 retry=75$" \
    "what the scheduler got"
cmp -s "$log.json" "$tmp/p.json" || fail "pipeline_json differs from the file"

case_name="watch resumes after UNAVAILABLE"
: >"$log"
pm watch t1 --reconnect-for 30 >"$tmp/out" 2>"$tmp/err"
expect_rc 3 $? "watch of a task whose step exited 3"
expect_file "$tmp/out" "hello${nl}after${nl}" "stdout, each chunk once"
expect_grep "$tmp/err" "^warn$" "stderr chunk"
expect_grep "$tmp/err" "FAILED" "the final state"
grep -c '^Watch' "$log" | grep -qx 2 || fail "want two Watch calls: $(show "$log")"
expect_grep "$log" "^Watch id=t1 after_seq=4$" "the resumed call starts after seq 4"

case_name="watch --output json"
: >"$log"
pm watch t1 --output json >"$tmp/out" 2>"$tmp/err"
expect_rc 3 $? "watch --output json"
"$python" -c '
import base64, json, sys
events = [json.loads(line) for line in open(sys.argv[1])]
seqs = [e["seq"] for e in events if e["event"] != "end"]
assert seqs == list(range(1, 9)), seqs
out = b"".join(base64.b64decode(e["output"]["data"]) for e in events if e["event"] == "stdout")
assert out == b"hello\nafter\n", out
assert events[-1] == {"event": "end", "state": "FAILED", "last_seq": 8, "exit_code": 3}, events[-1]
assert events[1]["state"] == "RUNNING", events[1]
' "$tmp/out" 2>"$tmp/pyerr" || fail "JSON lines: $(show "$tmp/pyerr") in $(show "$tmp/out")"

case_name="watch --after past the end asks Get"
pm watch t1 --after 8 >"$tmp/out" 2>"$tmp/err"
expect_rc 3 $? "watch of a finished task after its last event"

case_name="get"
pm get t1 >"$tmp/out" 2>"$tmp/err"
expect_rc 0 $? "get"
expect_grep "$tmp/out" "^state: *FAILED$" "state line"
expect_grep "$tmp/out" "^  1 sh  *exit=3" "step line"
pm get t1 --output json >"$tmp/out" 2>"$tmp/err"
expect_rc 0 $? "get --output json"
"$python" -c '
import json, sys
t = json.loads(open(sys.argv[1]).read())
assert t["id"] == "t1" and t["state"] == "FAILED" and t["steps"][0]["exit_code"] == 3, t
assert t["pipeline"]["steps"][0]["commands"] == ["echo hello"], t
' "$tmp/out" 2>"$tmp/pyerr" || fail "Task JSON: $(show "$tmp/pyerr") in $(show "$tmp/out")"
pm get nosuch >"$tmp/out" 2>"$tmp/err"
expect_rc 1 $? "get of an unknown task"
expect_file "$tmp/err" "pmctl: Get: NOT_FOUND: no task nosuch${nl}" "the error line"
pm watch nosuch >"$tmp/out" 2>"$tmp/err"
expect_rc 1 $? "watch of an unknown task"
expect_grep "$tmp/err" "^pmctl: Watch: NOT_FOUND: no task nosuch$" "the error line"

case_name="list"
: >"$log"
pm list --state failed --state QUEUED --limit 5 >"$tmp/out" 2>"$tmp/err"
expect_rc 0 $? "list"
expect_grep "$log" "^List states=4,1 page_size=5$" "the filters sent"
expect_grep "$tmp/out" "^ID  *STATE  *PIPELINE" "table header"
expect_grep "$tmp/out" "^t1  *FAILED  *(inline)  *1  *127.0.0.1" "table row"
expect_grep "$tmp/err" "page2" "the next page token"

stop_all
case_name="done"
echo "PASS: pmctl_sched_e2e_test"

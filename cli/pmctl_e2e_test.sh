#!/bin/sh
# End-to-end test of pmctl against the real pm-executor, both written in C: it starts executors on
# free loopback ports (and once on a Unix socket in TEST_TMPDIR) and checks, through pmctl alone,
# what a user relies on: stdout and stderr kept apart, the remote exit status passed on (code,
# 128+signal, 124 on timeout), binary output byte for byte, a step's stop-at-first-failure and
# --continue-on-error, the legacy ExecuteCommands call, info, health, bearer-token refusal, the
# concurrency limit, Ctrl-C cancelling the remote process group, and --output json being JSON.
# Every failure names its case. Times appear only as generous upper bounds on waits, so a slow or
# sanitized build makes the test slower, never red.
set -u

# Runfiles: the test's cwd under `bazel test`; TEST_SRCDIR/TEST_WORKSPACE when run otherwise.
root="${TEST_SRCDIR:-$PWD/..}/${TEST_WORKSPACE:-pm}"
[ -d "$root/cli" ] || root="$PWD"
. "$root/cli/pmctl_e2e_lib.sh"
[ -x "$executor" ] || fail "missing $executor (//executor:pm-executor)"

# ---- one executor on loopback for the plain cases ------------------------------------------

start_executor e2e-tcp tcp
main_pid=$exe_pid
target="$addr"

case_name="exec stdout and stderr apart"
pm exec --target "$target" -- sh -c 'for i in 1 2 3; do echo out$i; echo err$i >&2; done' \
    >"$tmp/out" 2>"$tmp/err"
expect_rc 0 $? "exec"
expect_file "$tmp/out" "out1${nl}out2${nl}out3${nl}" "stdout"
expect_file "$tmp/err" "err1${nl}err2${nl}err3${nl}" "stderr"

case_name="exec --shell, --env and --workdir"
pm exec --target "$target" --env E2E_X=forty-two --workdir / --shell 'echo "$E2E_X $(pwd)"' \
    >"$tmp/out" 2>"$tmp/err"
expect_rc 0 $? "exec --shell"
expect_file "$tmp/out" "forty-two /${nl}" "stdout"

case_name="exit status 3"
pm exec --target "$target" -- sh -c 'exit 3' >"$tmp/out" 2>"$tmp/err"
expect_rc 3 $? "exit 3"

case_name="killed by SIGKILL"
pm exec --target "$target" --shell 'kill -KILL $$' >"$tmp/out" 2>"$tmp/err"
expect_rc 137 $? "kill -KILL"
expect_grep "$tmp/err" "signal 9" "pmctl's note on the signal"

case_name="timeout"
pm exec --target "$target" --timeout-ms 300 -- sleep 60 >"$tmp/out" 2>"$tmp/err"
expect_rc 124 $? "sleep past --timeout-ms"
expect_grep "$tmp/err" "timed out" "pmctl's note on the timeout"

case_name="command not found"
pm exec --target "$target" -- /nonexistent/e2e-program >"$tmp/out" 2>"$tmp/err"
expect_rc 127 $? "missing program"
expect_grep "$tmp/err" "/nonexistent/e2e-program" "the error names the program"

case_name="binary output intact"
head -c 1000000 /dev/urandom >"$tmp/random"
pm exec --target "$target" -- cat "$tmp/random" 2>"$tmp/err" >"$tmp/out"
expect_rc 0 $? "cat of 1 MB of random bytes"
cmp "$tmp/out" "$tmp/random" >&2 || fail "stdout differs from the file"
pm exec --target "$target" -- cat "$tmp/random" 2>"$tmp/err" | cmp - "$tmp/random" >&2 ||
    fail "stdout through a pipe differs from the file"
pm exec --target "$target" --shell "cat '$tmp/random' >&2" 2>"$tmp/err" >"$tmp/out"
expect_rc 0 $? "cat to stderr"
cmp "$tmp/err" "$tmp/random" >&2 || fail "stderr differs from the file"
[ -s "$tmp/out" ] && fail "stdout not empty when only stderr was written: $(show "$tmp/out")"

case_name="binary stdin intact"
pm exec --target "$target" --stdin-file "$tmp/random" -- cat 2>"$tmp/err" >"$tmp/out"
expect_rc 0 $? "cat of --stdin-file"
cmp "$tmp/out" "$tmp/random" >&2 || fail "stdin echoed back differs from the file"

case_name="step stops at the first failure"
pm step --target "$target" -c 'echo one' -c 'echo two >&2; exit 4' -c 'echo three' \
    >"$tmp/out" 2>"$tmp/err"
expect_rc 4 $? "step"
expect_file "$tmp/out" "one${nl}" "stdout (the third command must not run)"
expect_grep "$tmp/err" "two" "stderr of the failing command"

case_name="step --continue-on-error"
pm step --target "$target" --continue-on-error -c 'echo one' -c 'exit 4' -c 'echo three' \
    -c 'exit 5' >"$tmp/out" 2>"$tmp/err"
expect_rc 4 $? "step --continue-on-error (first failing code)"
expect_file "$tmp/out" "one${nl}three${nl}" "stdout (every command runs)"

case_name="step success"
pm step --target "$target" -c 'echo a' -c 'echo b' >"$tmp/out" 2>"$tmp/err"
expect_rc 0 $? "step of two good commands"
expect_file "$tmp/out" "a${nl}b${nl}" "stdout"

case_name="legacy success"
pm legacy --target "$target" -c 'echo x' -c 'printf y' >"$tmp/out" 2>"$tmp/err"
expect_rc 0 $? "legacy"
expect_file "$tmp/out" "x${nl}y" "outputs in order"

case_name="legacy failure"
pm legacy --target "$target" -c 'echo x' -c 'echo bad-news >&2; exit 5' -c 'echo never' \
    >"$tmp/out" 2>"$tmp/err"
expect_rc 1 $? "legacy with a failing command"
expect_grep "$tmp/err" "exited with code 5" "errorMessage names the code"
expect_grep "$tmp/err" "bad-news" "errorMessage carries the command's stderr"
grep -q never "$tmp/out" && fail "the command after the failure ran: $(show "$tmp/out")"

case_name="info"
pm info --target "$target" >"$tmp/out" 2>"$tmp/err"
expect_rc 0 $? "info"
expect_grep "$tmp/out" "^name: *e2e-tcp$" "name"
expect_grep "$tmp/out" "^max_concurrent: *256$" "max_concurrent"
expect_grep "$tmp/out" "^commands_started: *[1-9]" "commands_started"
pm info --target "$target" --output json >"$tmp/out" 2>"$tmp/err"
expect_rc 0 $? "info --output json"
"$python" -c '
import json, sys
d = json.loads(open(sys.argv[1]).read())
assert d["name"] == "e2e-tcp", d
assert d["running"] == 0, d
' "$tmp/out" 2>"$tmp/pyerr" || fail "info JSON: $(show "$tmp/pyerr") in $(show "$tmp/out")"

case_name="health"
pm health --target "$target" >"$tmp/out" 2>"$tmp/err"
expect_rc 0 $? "health"
expect_file "$tmp/out" "SERVING${nl}" "health output"

case_name="--output json"
pm step --target "$target" --output json -c 'printf "q\"\\\\x"; echo e >&2' -c 'exit 2' \
    >"$tmp/out" 2>"$tmp/err"
expect_rc 2 $? "step --output json"
"$python" -c '
import base64, json, sys
events = [json.loads(line) for line in open(sys.argv[1])]
kinds = [e["event"] for e in events]
assert kinds[0] == "started" and kinds[-1] == "end", kinds
out = b"".join(base64.b64decode(e["data_base64"]) for e in events if e["event"] == "stdout")
err = b"".join(base64.b64decode(e["data_base64"]) for e in events if e["event"] == "stderr")
assert out == b"q\"\\x", out
assert err == b"e\n", err
exits = [e for e in events if e["event"] == "exited"]
assert [e["exit_code"] for e in exits] == [0, 2], exits
assert events[-1]["status"] == "OK" and events[-1]["exit_code"] == 2, events[-1]
' "$tmp/out" 2>"$tmp/pyerr" || fail "JSON lines: $(show "$tmp/pyerr") in $(show "$tmp/out")"

case_name="Ctrl-C cancels the remote command"
rm -f "$tmp/sleep.pid"
"$pmctl" exec --deadline-ms "$deadline" --target "$target" \
    --shell "sleep 100 & echo \$! > '$tmp/sleep.pid'; wait" \
    >"$tmp/out" 2>"$tmp/err" &
pmctl_pid=$!
bg_pids="$bg_pids $pmctl_pid"
wait_pidfile 30 "$tmp/sleep.pid" || fail "the remote command did not write its pid file in 30 s"
sleep_pid="$(cat "$tmp/sleep.pid")"
kill -0 "$sleep_pid" 2>/dev/null || fail "remote sleep $sleep_pid is not running before the cancel"
kill -INT "$pmctl_pid"
wait_gone 30 "$pmctl_pid" || fail "pmctl still running 30 s after SIGINT"
status=0
wait "$pmctl_pid" || status=$?
forget_pid "$pmctl_pid"
expect_rc 130 "$status" "pmctl after SIGINT"
expect_grep "$tmp/err" "interrupted" "pmctl says it was interrupted"
wait_gone 15 "$sleep_pid" || fail "remote sleep $sleep_pid survived the cancel by 15 s"

stop_executor "$main_pid"

# ---- Unix socket ---------------------------------------------------------------------------

case_name="unix socket"
sockname=pm.sock
sock_dir ${#sockname}
start_executor e2e-unix "unix:$sockdir/$sockname"
pm exec --target "$addr" -- sh -c 'echo via-unix; echo err >&2; exit 6' >"$tmp/out" 2>"$tmp/err"
expect_rc 6 $? "exec over the socket"
expect_file "$tmp/out" "via-unix${nl}" "stdout"
expect_file "$tmp/err" "err${nl}" "stderr"
pm info --target "$addr" >"$tmp/out" 2>"$tmp/err"
expect_rc 0 $? "info over the socket"
expect_grep "$tmp/out" "^name: *e2e-unix$" "name"
stop_executor "$exe_pid"

# ---- token ---------------------------------------------------------------------------------

case_name="token refusal"
printf 'e2e-secret-%s\n' "$$" >"$tmp/token"
printf 'wrong-token\n' >"$tmp/badtoken"
start_executor e2e-token tcp --token-file "$tmp/token"
pm exec --target "$addr" -- echo hi >"$tmp/out" 2>"$tmp/err"
expect_rc 1 $? "exec without a token"
expect_grep "$tmp/err" "UNAUTHENTICATED" "refusal without a token"
[ -s "$tmp/out" ] && fail "the command ran without a token: $(show "$tmp/out")"
pm exec --target "$addr" --token-file "$tmp/badtoken" -- echo hi >"$tmp/out" 2>"$tmp/err"
expect_rc 1 $? "exec with a wrong token"
expect_grep "$tmp/err" "UNAUTHENTICATED" "refusal with a wrong token"
pm info --target "$addr" >"$tmp/out" 2>"$tmp/err"
expect_rc 1 $? "info without a token"
expect_grep "$tmp/err" "UNAUTHENTICATED" "info refusal"
pm legacy --target "$addr" -c 'echo hi' >"$tmp/out" 2>"$tmp/err"
expect_rc 1 $? "legacy without a token"
expect_grep "$tmp/err" "UNAUTHENTICATED" "legacy refusal"
pm exec --target "$addr" --token-file "$tmp/token" -- echo hi >"$tmp/out" 2>"$tmp/err"
expect_rc 0 $? "exec with the token"
expect_file "$tmp/out" "hi${nl}" "stdout with the token"
# Kubernetes probes carry no credentials.
pm health --target "$addr" >"$tmp/out" 2>"$tmp/err"
expect_rc 0 $? "health without a token"
stop_executor "$exe_pid"

# ---- concurrency limit ---------------------------------------------------------------------

case_name="concurrency limit"
start_executor e2e-limit tcp --max-concurrent 1
rm -f "$tmp/release"
# The first step holds the only slot until this script releases it, so the second call meets a
# full executor without any guess about how long a sleep lasts.
# The loop also ends by itself after about a minute, in case nothing is left to stop it.
hold="i=0; while [ ! -e '$tmp/release' ] && [ \$i -lt 1200 ]; do sleep 0.05; i=\$((i + 1)); done"
"$pmctl" exec --deadline-ms "$deadline" --target "$addr" --timeout-ms 60000 \
    --shell "$hold; echo released" \
    >"$tmp/out1" 2>"$tmp/err1" &
first_pid=$!
bg_pids="$bg_pids $first_pid"
i=0
until pm info --target "$addr" 2>/dev/null | grep -q '^running: *1$'; do
    i=$((i + 1))
    [ "$i" -gt 300 ] && fail "the first step was not running 30 s after it was sent"
    sleep 0.1
done
pm exec --target "$addr" -- echo second >"$tmp/out" 2>"$tmp/err"
expect_rc 1 $? "second step while the first holds the only slot"
expect_grep "$tmp/err" "RESOURCE_EXHAUSTED" "refusal over the limit"
[ -s "$tmp/out" ] && fail "the second step ran: $(show "$tmp/out")"
touch "$tmp/release"
wait_gone 60 "$first_pid" || fail "the first step did not end 60 s after its release"
status=0
wait "$first_pid" || status=$?
forget_pid "$first_pid"
[ "$status" = 0 ] || fail "first step exited $status; stderr $(show "$tmp/err1")"
expect_file "$tmp/out1" "released${nl}" "first step's stdout"
# The slot is free again.
pm exec --target "$addr" -- echo third >"$tmp/out" 2>"$tmp/err"
expect_rc 0 $? "a step after the slot was freed"
expect_file "$tmp/out" "third${nl}" "third step's stdout"
stop_executor "$exe_pid"

case_name="done"
echo "PASS: pmctl_e2e_test"

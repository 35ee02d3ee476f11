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

case_name="setup"
tmp="${TEST_TMPDIR:-$(mktemp -d /tmp/pmctl_e2e.XXXXXX)}"
# Directories made here (not bazel's), removed on exit.
made_dirs=""
[ -n "${TEST_TMPDIR:-}" ] || made_dirs="$tmp"
logs="${TEST_UNDECLARED_OUTPUTS_DIR:-$tmp}"
python=/usr/bin/python3

# Runfiles: the test's cwd under `bazel test`; TEST_SRCDIR/TEST_WORKSPACE when run otherwise.
root="${TEST_SRCDIR:-$PWD/..}/${TEST_WORKSPACE:-pm}"
[ -d "$root/cli" ] || root="$PWD"
pmctl="$root/cli/pmctl"
executor="$root/executor/pm-executor"

# Every process this script starts in the background, so the trap can stop them all.
bg_pids=""
log_files=""

# On exit: releases a held step, stops every background process, removes our directories.
cleanup() {
    touch "$tmp/release" 2>/dev/null
    stop_all
    for d in $made_dirs; do
        rm -rf "$d"
    done
    made_dirs=""
}

# Executors get SIGINT twice (the second skips the shutdown grace), so they still stop their
# steps' process groups; a SIGKILL first would orphan those. Only what ignores that for 15 s is
# killed outright.
stop_all() {
    [ -n "$bg_pids" ] || return
    for p in $bg_pids; do
        kill -INT "$p" 2>/dev/null
    done
    sleep 0.2
    for p in $bg_pids; do
        kill -INT "$p" 2>/dev/null
    done
    for p in $bg_pids; do
        wait_gone 15 "$p" || kill -KILL "$p" 2>/dev/null
        wait "$p" 2>/dev/null
    done
    bg_pids=""
}
trap cleanup EXIT
trap 'cleanup; exit 1' INT TERM HUP

fail() {
    echo "FAIL [$case_name]: $*" >&2
    for f in $log_files; do
        echo "---- $f (last 20 lines)" >&2
        tail -n 20 "$f" >&2
    done
    exit 1
}

# A file's contents for a failure message, made visible even when it is empty.
show() {
    printf '<%s>' "$(cat "$1" 2>/dev/null)"
}

[ -x "$pmctl" ] || fail "missing $pmctl (//cli:pmctl)"
[ -x "$executor" ] || fail "missing $executor (//executor:pm-executor)"
[ -x "$python" ] || fail "missing $python (used for a free port and to parse JSON)"

# pmctl and pm-executor read PM_<FLAG> from the environment; a stray one (a token file, a
# target) would change what is tested.
for v in $(env | sed -n 's/^\(PM_[A-Za-z0-9_]*\)=.*/\1/p'); do
    unset "$v"
done

# No call may hang the test: every pmctl call carries a deadline far above anything it needs.
# Background calls spell "$pmctl" out instead, so that $! is pmctl itself and not a subshell.
deadline=120000
pm() {
    sub="$1"
    shift
    "$pmctl" "$sub" --deadline-ms "$deadline" "$@"
}

# Waits up to $1 seconds for process $2 to end; returns 1 if it is still running then.
wait_gone() {
    limit=$(($1 * 10))
    i=0
    while kill -0 "$2" 2>/dev/null; do
        # A zombie left for us to reap counts as ended.
        state="$(sed -n 's/^[0-9]* (.*) \(.\) .*/\1/p' "/proc/$2/stat" 2>/dev/null)"
        [ "$state" = Z ] && return 0
        i=$((i + 1))
        [ "$i" -gt "$limit" ] && return 1
        sleep 0.1
    done
    return 0
}

# Waits up to $1 seconds for file $2 to hold a pid (echo writes it with one write(2)).
wait_pidfile() {
    limit=$(($1 * 10))
    i=0
    until grep -qx '[0-9][0-9]*' "$2" 2>/dev/null; do
        i=$((i + 1))
        [ "$i" -gt "$limit" ] && return 1
        sleep 0.1
    done
    return 0
}

# Takes a reaped pid off the cleanup list, so the trap never signals a recycled pid.
forget_pid() {
    kept=""
    for p in $bg_pids; do
        [ "$p" = "$1" ] || kept="$kept $p"
    done
    bg_pids="$kept"
}

free_port() {
    "$python" -c '
import socket
s = socket.socket()
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])'
}

# start_executor NAME LISTEN [FLAGS...]: starts pm-executor and waits until it answers SERVING.
# LISTEN "tcp" picks a free loopback port (again, if another process took it first). Sets
# $addr and $exe_pid.
start_executor() {
    name="$1"
    listen="$2"
    shift 2
    log="$logs/executor-$name.log"
    log_files="$log_files $log"
    for attempt in 1 2 3; do
        if [ "$listen" = tcp ]; then
            addr="127.0.0.1:$(free_port)"
        else
            addr="$listen"
        fi
        "$executor" --listen "$addr" --name "$name" "$@" >>"$log" 2>&1 &
        exe_pid=$!
        bg_pids="$bg_pids $exe_pid"
        i=0
        while [ "$i" -lt 300 ]; do
            if ! kill -0 "$exe_pid" 2>/dev/null; then
                break
            fi
            health="$("$pmctl" health --target "$addr" --deadline-ms 1000 2>/dev/null)"
            if [ "$health" = SERVING ]; then
                return 0
            fi
            i=$((i + 1))
            sleep 0.1
        done
        kill -KILL "$exe_pid" 2>/dev/null
        wait "$exe_pid" 2>/dev/null
        forget_pid "$exe_pid"
        echo "executor $name did not become healthy on $addr (attempt $attempt)" >&2
    done
    fail "executor $name never served on $listen"
}

# Stops an executor the way Kubernetes would and expects a clean exit within a bound.
stop_executor() {
    kill -TERM "$1" 2>/dev/null
    wait_gone 60 "$1" || fail "executor $1 still running 60 s after SIGTERM"
    status=0
    wait "$1" || status=$?
    forget_pid "$1"
    [ "$status" = 0 ] || fail "executor $1 exited with $status after SIGTERM"
}

# expect_rc WANT GOT WHAT
expect_rc() {
    [ "$2" = "$1" ] ||
        fail "$3: exit status $2, want $1; stdout $(show "$tmp/out") stderr $(show "$tmp/err")"
}

# expect_file FILE WANT WHAT: FILE holds exactly WANT (printf %s, so give newlines literally).
expect_file() {
    printf '%s' "$2" >"$tmp/want"
    cmp -s "$1" "$tmp/want" || fail "$3: got $(show "$1"), want $(show "$tmp/want")"
}

expect_grep() {
    grep -q -- "$2" "$1" || fail "$3: $(show "$1") does not contain \"$2\""
}

nl='
'

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
sockdir="$tmp"
# sun_path holds 107 bytes and a NUL; bazel's TEST_TMPDIR is close to that, so the socket's
# name is short, and a TEST_TMPDIR that is deeper still falls back to a directory in /tmp.
if [ $((${#sockdir} + ${#sockname} + 1)) -gt 107 ]; then
    sockdir="$(mktemp -d /tmp/pmctl_e2e.XXXXXX)"
    made_dirs="$made_dirs $sockdir"
fi
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

# Shared by pmctl's end-to-end tests (sourced, not run): a scratch directory, the paths of pmctl
# and pm-executor in the runfiles, starting executors and waiting until they serve, stopping every
# background process on exit, and the expect_* checks that name the failing case. The sourcing
# script sets $root (the runfiles root) first and `set -u`; `case_name` names the running case.

case_name="setup"
tmp="${TEST_TMPDIR:-$(mktemp -d /tmp/pmctl_e2e.XXXXXX)}"
# Directories made here (not bazel's), removed on exit.
made_dirs=""
[ -n "${TEST_TMPDIR:-}" ] || made_dirs="$tmp"
logs="${TEST_UNDECLARED_OUTPUTS_DIR:-$tmp}"
python=/usr/bin/python3

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

# sock_dir LEN: sets $sockdir to a directory for Unix sockets whose names are up to LEN bytes.
# sun_path holds 107 bytes and a NUL, and bazel's TEST_TMPDIR is close to that, so a deeper one
# falls back to a new directory in /tmp (removed on exit). Not run in $(...): the list of
# directories to remove must be updated in this shell.
sock_dir() {
    sockdir="$tmp"
    if [ $((${#tmp} + $1 + 1)) -gt 107 ]; then
        sockdir="$(mktemp -d /tmp/pmctl_e2e.XXXXXX)"
        made_dirs="$made_dirs $sockdir"
    fi
}

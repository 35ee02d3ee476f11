#!/usr/bin/env bash
# Splits the latency of Run `true` at 1 in flight into stages and compares each with the same
# stage of posix_spawn + waitpid, from kernel tracepoints (perf record -a, a few events per call,
# so the timing is barely disturbed). Needs root and perf. Not part of run.sh: it is the tool for
# the question "where do the extra microseconds of a call go".
#
# Stages (medians, µs):
#   floor:    clone3 entered -> execve done -> child exited -> wait4 returned
#   executor: pipe2 (command setup) -> clone entered -> clone returned (parent suspended by vfork)
#             -> execve done -> child exited -> wait4 returned in the I/O thread (reaped)
#             -> `exited` sendmsg (the status goes in the same write: one batch)
set -euo pipefail

usage() {
    echo "usage: bench/decompose.sh [--calls N] [--bin-root DIR]"
    echo "  --calls N       calls and floor spawns to trace (default 300)"
    echo "  --bin-root DIR  binaries from DIR/bench and DIR/executor (default: build with bazel -c opt)"
}

calls=300
bin_root=""
while [ $# -gt 0 ]; do
    case "$1" in
    --calls)
        calls="${2:?--calls needs a value}"
        shift 2
        ;;
    --bin-root)
        bin_root="${2:?--bin-root needs a value}"
        shift 2
        ;;
    -h | --help)
        usage
        exit 0
        ;;
    *)
        usage >&2
        exit 2
        ;;
    esac
done
command -v perf >/dev/null || {
    echo "bench/decompose.sh: needs perf (Debian: linux-perf)" >&2
    exit 1
}

cd "$(dirname "$0")/.."
if [ -z "$bin_root" ]; then
    flags=(-c opt --experimental_convenience_symlinks=ignore)
    ob="${BENCH_OUTPUT_BASE:-$HOME/.cache/bazel-bench}"
    bazel --output_base="$ob" build "${flags[@]}" //bench:spawn_floor //bench:run_load \
        //bench:free_port //executor:pm-executor-static >&2
    bin_root="$(bazel --output_base="$ob" info "${flags[@]}" bazel-bin 2>/dev/null)"
fi

scratch="$(mktemp -d "${TMPDIR:-/tmp}/pmdecompose.XXXXXX")"
exe_pid=""
perf_pid=""
cleanup() {
    if [ -n "$perf_pid" ]; then
        kill -INT "$perf_pid" 2>/dev/null || true
        wait "$perf_pid" 2>/dev/null || true
    fi
    if [ -n "$exe_pid" ]; then
        kill "$exe_pid" 2>/dev/null || true
        wait "$exe_pid" 2>/dev/null || true
    fi
    rm -rf "$scratch"
}
trap cleanup EXIT

port="$("$bin_root/bench/free_port")"
"$bin_root/executor/pm-executor-static" --listen "127.0.0.1:$port" 2>"$scratch/executor.log" &
exe_pid=$!
"$bin_root/bench/run_load" --target "127.0.0.1:$port" --calls 20 >/dev/null

ev_args=()
for e in sched:sched_process_exit sched:sched_process_exec syscalls:sys_enter_clone syscalls:sys_exit_clone \
    syscalls:sys_enter_clone3 syscalls:sys_exit_wait4 syscalls:sys_enter_sendmsg \
    syscalls:sys_enter_pipe2; do
    ev_args+=(-e "$e")
done
perf record -a -o "$scratch/perf.data" "${ev_args[@]}" >/dev/null 2>"$scratch/perf.log" &
perf_pid=$!
sleep 1
"$bin_root/bench/run_load" --target "127.0.0.1:$port" --calls "$calls" --warmup 0
"$bin_root/bench/spawn_floor" --spawns "$calls" --warmup 0
sleep 0.2
kill -INT "$perf_pid"
wait "$perf_pid" || true
perf_pid=""
perf script -i "$scratch/perf.data" -F comm,tid,time,event,trace >"$scratch/events.txt" 2>/dev/null

/usr/bin/python3 - "$scratch/events.txt" "$exe_pid" <<'EOF'
"""Pairs the traced events of each spawn and prints the median of every stage."""
import re
import statistics
import sys

path, exe_pid = sys.argv[1], int(sys.argv[2])
events = []
for line in open(path):
    m = re.match(r"\s*(.+?)\s+(\d+)\s+([\d.]+):\s+(\S+):\s*(.*)", line)
    if m:
        comm, tid, t, name, rest = m.groups()
        events.append((float(t) * 1e6, comm, int(tid), name, rest))


def ret(rest):
    return int(rest.split()[-1], 16)


exits, execs = {}, {}
for t, comm, tid, name, rest in events:
    if name == "sched:sched_process_exit":
        exits[int(re.search(r"pid=(\d+)", rest).group(1))] = t
    elif name == "sched:sched_process_exec":
        execs.setdefault(int(re.search(r" pid=(\d+)", rest).group(1)), t)


def med(xs):
    return f"{statistics.median(xs):7.0f}" if xs else "      -"


# The floor: clone3 -> child exit -> wait4 in spawn_floor.
f_life, f_reap, f_exec, f_run, start = [], [], [], [], None
for t, comm, tid, name, rest in events:
    if comm != "spawn_floor":
        continue
    if name == "syscalls:sys_enter_clone3":
        start = t
    elif name == "syscalls:sys_exit_wait4" and start is not None:
        pid = ret(rest)
        if pid in exits:
            f_life.append(exits[pid] - start)
            f_reap.append(t - exits[pid])
            if pid in execs:
                f_exec.append(execs[pid] - start)
                f_run.append(exits[pid] - execs[pid])
        start = None

# The executor: its threads are the ones named pm-executor-sta; the completion-queue thread is
# the one that clones, the I/O thread the one that reaps.
ex = [e for e in events if e[1].startswith("pm-executor")]
cloner = next((e[2] for e in ex if e[3] == "syscalls:sys_enter_clone"), None)
calls, cur = [], None
for t, comm, tid, name, rest in ex:
    if tid == cloner and name == "syscalls:sys_enter_pipe2":
        if cur is None or "clone" in cur:
            if cur and "exited" in cur:
                calls.append(cur)
            cur = {"pipe": t}
    if cur is None:
        continue
    if tid == cloner and name == "syscalls:sys_enter_clone":
        cur["clone"] = t
    elif tid == cloner and name == "syscalls:sys_exit_clone" and "pid" not in cur:
        cur["clone_ret"], cur["pid"] = t, ret(rest)
    elif name == "syscalls:sys_exit_wait4" and "pid" in cur and ret(rest) == cur["pid"]:
        cur["reap"] = t
    elif name == "syscalls:sys_enter_sendmsg" and "reap" in cur and "exited" not in cur:
        cur["exited"] = t
if cur and "exited" in cur:
    calls.append(cur)

stages = {k: [] for k in ("setup", "suspended", "life", "exec", "run", "reap", "exited")}
for c in calls:
    if c.get("pid") not in exits or "clone" not in c:
        continue
    x = exits[c["pid"]]
    stages["setup"].append(c["clone"] - c["pipe"])
    stages["suspended"].append(c["clone_ret"] - c["clone"])
    stages["life"].append(x - c["clone"])
    if c["pid"] in execs:
        stages["exec"].append(execs[c["pid"]] - c["clone"])
        stages["run"].append(x - execs[c["pid"]])
    stages["reap"].append(c["reap"] - x)
    stages["exited"].append(c["exited"] - c["reap"])

print(f"traced: {len(f_life)} floor spawns, {len(stages['life'])} executor calls; medians in µs")
print("| stage | floor | executor |")
print("|---|---|---|")
print(f"| pipes and setup before clone | | {med(stages['setup'])} |")
print(f"| parent suspended in clone (vfork) | | {med(stages['suspended'])} |")
print(f"| clone entered -> child exited | {med(f_life)} | {med(stages['life'])} |")
print(f"| of which: clone entered -> execve done | {med(f_exec)} | {med(stages['exec'])} |")
print(f"| of which: execve done -> child exited | {med(f_run)} | {med(stages['run'])} |")
print(f"| child exited -> reaped (wait4 returns) | {med(f_reap)} | {med(stages['reap'])} |")
print(f"| reaped -> `exited` event and status written | | {med(stages['exited'])} |")
EOF

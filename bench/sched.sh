#!/usr/bin/env bash
# Benchmarks pm-scheduler against direct mode, all in one run, and prints a markdown table of
# medians with the issue's targets (see docs/benchmarks.md, "Scheduler").
#
# Setup: one pm-executor (named "x") on a Unix socket, and one pm-scheduler (also on a Unix socket,
# so both paths use the same transport) on SQLite in a file
# (WAL, synchronous=FULL) whose only worker has that executor with 64 slots. Each repetition runs,
# back to back: direct mode (Run calls of `true` straight to the executor, as `pmctl run` does) and
# the same one-step pipeline through the scheduler (Submit, then Watch to the final state), at 1
# and at 64 in flight; then Submit alone against a second scheduler started with --paused, which
# stores but runs nothing: the durable queue's acknowledgement rate. Ratios are taken within a
# repetition. Once per run: the scheduler's RSS idle, and with 10,000 queued tasks.
#
# The exit status says whether the benchmarks ran correctly (every task succeeded), never whether
# a timing target was met.
set -euo pipefail

usage() {
    cat <<'EOF'
usage: bench/sched.sh [--reps N] [--quick] [--bin-root DIR] [--out FILE] [--keep]
  --reps N        repetitions (default 5)
  --quick         tiny parameters and one repetition: a smoke test, figures mean nothing
  --bin-root DIR  take the binaries from DIR/{bench,executor,scheduler} instead of building them
                  with bazel -c opt (a test passes its runfiles root)
  --out FILE      also write the markdown report to FILE
  --keep          keep the scratch directory (logs, databases, raw results)
Environment: BENCH_OUTPUT_BASE (bazel --output_base, default ~/.cache/bazel-bench),
  BENCH_TASKS1, BENCH_TASKS64, BENCH_SUBMITS, BENCH_QUEUED (defaults 300, 2000, 20000, 10000).
EOF
}

repo="$(cd "$(dirname "$0")/.." && pwd)"
# shellcheck source=bench/lib.sh
. "$repo/bench/lib.sh"
bench_args "bench/sched.sh" "$@"
tasks1="${BENCH_TASKS1:-300}"
tasks64="${BENCH_TASKS64:-2000}"
submits="${BENCH_SUBMITS:-20000}"
queued="${BENCH_QUEUED:-10000}"
if [ "$quick" = 1 ]; then
    reps=1
    tasks1=20
    tasks64=130
    submits=400
    queued=300
fi

cd "$repo"

bench_build //bench:run_load //bench:sched_load //executor:pm-executor \
    //scheduler:pm-scheduler
run_load="$bin_root/bench/run_load"
sched_load="$bin_root/bench/sched_load"
executor="$bin_root/executor/pm-executor"
scheduler="$bin_root/scheduler/pm-scheduler"
for f in "$run_load" "$sched_load" "$executor" "$scheduler"; do
    [ -x "$f" ] || die "missing $f"
done

bench_scratch pmsched

rss_kb() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status"; }

# A socket path must fit in 108 bytes; a test's scratch directory can be deeper than that.
sockdir="$(mktemp -d /tmp/pmsock.XXXXXX)"
cleanup_dirs+=("$sockdir")
sock="$sockdir/x.sock"
"$executor" --listen "unix:$sock" --name x --max-concurrent 1024 2>>"$scratch/executor.log" &
pids+=($!)
"$run_load" --target "unix:$sock" --calls 0 --wait-ready-ms 10000 >/dev/null 2>>"$scratch/client.log" ||
    die "the executor did not come up (see $scratch/executor.log)"
cat >"$scratch/workers.json" <<EOF
{"pools": [{"name": "bench", "workers": ["local"], "slots": 64,
            "executors": {"x": "unix:$sock"}}]}
EOF

# start_scheduler NAME [FLAGS...]: sets sched_pid and sched_addr once it answers.
start_scheduler() {
    local name="$1" try
    shift
    for try in 1 2 3; do
        # A Unix socket, like the executor's: both paths use the same transport.
        sched_addr="unix:$sockdir/$name-$try.sock"
        "$scheduler" --listen "$sched_addr" --workers "$scratch/workers.json" \
            --db "$scratch/$name.db" --health-interval-ms 500 "$@" 2>>"$scratch/$name.log" &
        sched_pid=$!
        pids+=("$sched_pid")
        for _ in $(seq 1 100); do
            if "$run_load" --target "$sched_addr" --calls 0 --health 1 --wait-ready-ms 200 \
                >/dev/null 2>&1; then
                # The worker must have passed its first health check before tasks are timed.
                sleep 0.6
                return 0
            fi
            kill -0 "$sched_pid" 2>/dev/null || break
        done
        kill "$sched_pid" 2>/dev/null || true
        log "scheduler $name did not come up on $sched_addr (try $try)"
    done
    die "could not start $scheduler (see $scratch/$name.log)"
}

started_at="$(date -u '+%Y-%m-%d %H:%M UTC')"
cpu_model="$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1)"
load_before="$(cut -d' ' -f1-3 /proc/loadavg)"
log "scratch $scratch; $reps repetition(s)$([ "$quick" = 1 ] && echo ' (quick)')"

start_scheduler run
run_pid="$sched_pid"
run_addr="$sched_addr"
rss_idle_kb="$(rss_kb "$run_pid")"
run_step warmup "$sched_load" --target "$run_addr" --tasks 20 --warmup 0 >/dev/null
run_step warmup "$run_load" --target "unix:$sock" --calls 20 --warmup 0 >/dev/null

for rep in $(seq 1 "$reps"); do
    log "repetition $rep/$reps"
    l="$(run_step direct1 "$run_load" --target "unix:$sock" --inflight 1 --calls "$tasks1")"
    d1="$(kv "$l" calls_per_s)"
    record d1_rate "$d1"
    record d1_p50 "$(awk -v v="$(kv "$l" p50_us)" 'BEGIN { printf "%.2f", v / 1000 }')"
    record d1_p99 "$(awk -v v="$(kv "$l" p99_us)" 'BEGIN { printf "%.2f", v / 1000 }')"
    l="$(run_step sched1 "$sched_load" --target "$run_addr" --inflight 1 --tasks "$tasks1")"
    s1="$(kv "$l" tasks_per_s)"
    record s1_rate "$s1"
    record s1_p50 "$(kv "$l" p50_ms)"
    record s1_p99 "$(kv "$l" p99_ms)"

    l="$(run_step direct64 "$run_load" --target "unix:$sock" --inflight 64 --calls "$tasks64")"
    d64="$(kv "$l" calls_per_s)"
    record d64_rate "$d64"
    record d64_p50 "$(awk -v v="$(kv "$l" p50_us)" 'BEGIN { printf "%.2f", v / 1000 }')"
    record d64_p99 "$(awk -v v="$(kv "$l" p99_us)" 'BEGIN { printf "%.2f", v / 1000 }')"
    l="$(run_step sched64 "$sched_load" --target "$run_addr" --inflight 64 --tasks "$tasks64")"
    s64="$(kv "$l" tasks_per_s)"
    record s64_rate "$s64"
    record s64_p50 "$(kv "$l" p50_ms)"
    record s64_p99 "$(kv "$l" p99_ms)"
    record ratio64 "$(awk -v a="$s64" -v b="$d64" 'BEGIN { printf "%.4f", (b > 0 ? a / b : 0) }')"
    record ratio1 "$(awk -v a="$s1" -v b="$d1" 'BEGIN { printf "%.4f", (b > 0 ? a / b : 0) }')"

    # The durable queue alone: a fresh paused scheduler per repetition.
    start_scheduler "paused$rep" --paused
    l="$(run_step submit "$sched_load" --target "$sched_addr" --mode submit --inflight 64 \
        --tasks "$submits")"
    record submit_rate "$(kv "$l" tasks_per_s)"
    record submit_p50 "$(kv "$l" p50_ms)"
    record submit_p99 "$(kv "$l" p99_ms)"
    kill -TERM "$sched_pid"
    wait "$sched_pid" || die "the paused scheduler exited with an error on SIGTERM"
done

# RSS with many queued tasks: a fresh paused scheduler holding exactly $queued of them.
start_scheduler queued --paused
rss_q0="$(rss_kb "$sched_pid")"
run_step queue "$sched_load" --target "$sched_addr" --mode submit --inflight 64 \
    --tasks "$queued" --warmup 0 >/dev/null
sleep 0.5
rss_queued_kb="$(rss_kb "$sched_pid")"
kill -TERM "$sched_pid"
wait "$sched_pid" || die "the queued scheduler exited with an error on SIGTERM"
rss_run_kb="$(rss_kb "$run_pid")"

yes64="$(yesno "$(med ratio64) >= 0.80")"
yes99="$(yesno "$(med s1_p99) < 50")"
yessub="$(yesno "$(med submit_rate) >= 10000")"
report="$scratch/report.md"
{
    echo "### Scheduler against direct mode ($started_at)"
    echo
    echo "Machine: $(nproc) CPUs ($cpu_model), load before the run $load_before. Build: $build_mode."
    echo "$reps repetition(s); medians, with the range over repetitions in brackets."
    echo "Tasks: a one-step pipeline running \`true\` (\`/bin/sh -c true\` on the executor)."
    echo
    echo "| measure | direct (Run to the executor) | through pm-scheduler (SQLite, durable) | target | met |"
    echo "|---|---|---|---|---|"
    echo "| tasks/s at 64 in flight | $(med d64_rate) [$(rng d64_rate)] | $(med s64_rate) [$(rng s64_rate)] | scheduler ≥ 80% of direct: $(awk -v r="$(med ratio64)" 'BEGIN { printf "%.0f%%", r * 100 }') [$(rng ratio64)] | $yes64 |"
    echo "| p50 / p99 latency at 64 in flight, ms | $(med d64_p50) / $(med d64_p99) | $(med s64_p50) / $(med s64_p99) | | |"
    echo "| tasks/s at 1 in flight | $(med d1_rate) [$(rng d1_rate)] | $(med s1_rate) [$(rng s1_rate)] | | |"
    echo "| p50 latency at 1 in flight, ms | $(med d1_p50) [$(rng d1_p50)] | $(med s1_p50) [$(rng s1_p50)] | | |"
    echo "| p99 latency at 1 in flight, ms | $(med d1_p99) [$(rng d1_p99)] | $(med s1_p99) [$(rng s1_p99)] | scheduler < 50 ms | $yes99 |"
    echo "| durable Submit acks/s (paused, 64 in flight) | | $(med submit_rate) [$(rng submit_rate)] | ≥ 10,000 | $yessub |"
    echo "| Submit ack p50 / p99, ms | | $(med submit_p50) / $(med submit_p99) | | |"
    echo "| scheduler RSS idle | | $(kb_to_mib "$rss_idle_kb") MiB | | |"
    echo "| scheduler RSS with $queued queued tasks | | $(kb_to_mib "$rss_queued_kb") MiB (from $(kb_to_mib "$rss_q0") MiB at start) | | |"
    echo "| scheduler RSS after the run ($(( (tasks1 + tasks64) * reps )) tasks) | | $(kb_to_mib "$rss_run_kb") MiB | | |"
    echo
    echo "Reproduce: \`bench/sched.sh --reps $reps\`."
} >"$report"
cat "$report"
if [ -n "$out_file" ]; then
    cp "$report" "$out_file"
fi

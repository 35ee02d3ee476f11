#!/usr/bin/env bash
# Benchmarks pm-executor against the raw cost of spawning a process, all in one run, and prints a
# markdown table of medians with the issue's targets (see docs/benchmarks.md).
#
# Each repetition runs, back to back: the two-spawner floor, Run at 64 in flight, the one-spawner
# floor, Run at 1 in flight (then the same calls against //bench:grpc_floor, the least a gRPC C
# core server can do for them), and a 1 GiB stream against a freshly started executor. Ratios and
# differences are taken within a repetition and their median is reported, so slow drift of a
# shared machine hits both sides of a comparison alike. Nothing is pinned to a CPU.
#
# The exit status says whether the benchmarks ran correctly (every call succeeded, every byte
# arrived), never whether a timing target was met.
set -euo pipefail

usage() {
    cat <<'EOF'
usage: bench/run.sh [--reps N] [--quick] [--bin-root DIR] [--out FILE] [--keep]
  --reps N        repetitions (default 5)
  --quick         tiny parameters and one repetition: a smoke test, figures mean nothing
  --bin-root DIR  take the binaries from DIR/bench and DIR/executor instead of building them
                  with bazel -c opt (a test passes its runfiles root)
  --out FILE      also write the markdown report to FILE
  --keep          keep the scratch directory (executor logs, raw results)
Environment: BENCH_OUTPUT_BASE (bazel --output_base, default ~/.cache/bazel-bench),
  BENCH_SPAWNS2, BENCH_SPAWNS1, BENCH_CALLS64, BENCH_CALLS1, BENCH_STREAM_BYTES,
  BENCH_HEALTH_CALLS (per-repetition sizes; defaults 1500, 600, 2000, 600, 1G, 300).
EOF
}

repo="$(cd "$(dirname "$0")/.." && pwd)"
# shellcheck source=bench/lib.sh
. "$repo/bench/lib.sh"
bench_args "bench/run.sh" "$@"

spawns2="${BENCH_SPAWNS2:-1500}"
spawns1="${BENCH_SPAWNS1:-600}"
calls64="${BENCH_CALLS64:-2000}"
calls1="${BENCH_CALLS1:-600}"
stream_bytes="${BENCH_STREAM_BYTES:-1G}"
health_calls="${BENCH_HEALTH_CALLS:-300}"
if [ "$quick" = 1 ]; then
    reps=1
    spawns2=40
    spawns1=20
    calls64=160
    calls1=20
    stream_bytes=8M
    health_calls=20
fi

cd "$repo"

bench_build //bench:spawn_floor //bench:run_load //bench:stream //bench:free_port \
    //bench:grpc_floor //executor:pm-executor //executor:pm-executor-static
spawn_floor="$bin_root/bench/spawn_floor"
run_load="$bin_root/bench/run_load"
stream="$bin_root/bench/stream"
free_port="$bin_root/bench/free_port"
grpc_floor="$bin_root/bench/grpc_floor"
exe_static="$bin_root/executor/pm-executor-static"
exe_dyn="$bin_root/executor/pm-executor"
for f in "$spawn_floor" "$run_load" "$stream" "$free_port" "$grpc_floor" "$exe_static"; do
    [ -x "$f" ] || die "missing $f"
done

bench_scratch pmbench

# ---- helpers ---------------------------------------------------------------------------------

# start_executor NAME [FLAGS...]: starts the static executor on a free loopback port and waits
# until it serves; sets exe_pid and exe_addr. Retries when another process took the port in
# between. With NAME grpc-floor it starts //bench:grpc_floor instead (no flags).
start_executor() {
    local name="$1" try port
    shift
    for try in 1 2 3; do
        port="$("$free_port")"
        if [ "$name" = grpc-floor ]; then
            "$grpc_floor" "127.0.0.1:$port" 2>>"$scratch/executor-$name.log" &
        else
            "$exe_static" --listen "127.0.0.1:$port" --name "bench-$name" "$@" \
                2>>"$scratch/executor-$name.log" &
        fi
        exe_pid=$!
        pids+=("$exe_pid")
        exe_addr="127.0.0.1:$port"
        if "$run_load" --target "$exe_addr" --calls 0 --wait-ready-ms 10000 >/dev/null 2>>"$scratch/client.log"; then
            return 0
        fi
        kill "$exe_pid" 2>/dev/null || true
        wait "$exe_pid" 2>/dev/null || true
        log "executor $name did not come up on port $port (try $try)"
    done
    die "could not start $exe_static (see $scratch/executor-$name.log)"
}

stop_executor() {
    local pid="$1" rc=0
    kill -TERM "$pid" 2>/dev/null || true
    wait "$pid" || rc=$?
    local p rest=()
    for p in "${pids[@]}"; do
        [ "$p" = "$pid" ] || rest+=("$p")
    done
    pids=("${rest[@]}")
    [ "$rc" = 0 ] || die "executor $pid exited with status $rc on SIGTERM"
}

# executor_split KEY EVENT: median of KEY (a number in ms) over the executor's log lines of
# EVENT for the calls at 1 in flight, in µs; "n/a" when the log does not carry it.
executor_split() {
    local v
    v="$(grep -E "event=$2( |$)" "$scratch/run1-executor.log" 2>/dev/null |
        sed -n "s/.* $1=\([0-9.]*\).*/\1/p" | median)"
    case "$v" in
    '' | nan) echo "n/a" ;;
    *) awk -v m="$v" 'BEGIN { printf "%.0f", m * 1000 }' ;;
    esac
}

# cpu_ticks PID: "SELF CHILDREN", the user+system clock ticks of PID and of its reaped children.
cpu_ticks() { sed 's/.*) //' "/proc/$1/stat" | awk '{print $12 + $13, $14 + $15}'; }
# ctx_switches PID: voluntary and involuntary context switches of all its threads so far.
ctx_switches() {
    cat "/proc/$1"/task/*/status 2>/dev/null |
        awk '/^voluntary_ctxt_switches/ { v += $2 } /^nonvoluntary_ctxt_switches/ { n += $2 } END { print v + 0, n + 0 }'
}
clk_tck="$(getconf CLK_TCK)"
# per_unit TICKS DIVISOR SCALE: TICKS converted to seconds, times SCALE, divided by DIVISOR.
per_unit() { awk -v t="$1" -v d="$2" -v k="$3" -v c="$clk_tck" 'BEGIN { printf "%.3f", (d > 0 ? t / c * k / d : 0) }'; }

# ---- machine ---------------------------------------------------------------------------------
started_at="$(date -u '+%Y-%m-%d %H:%M UTC')"
cpu_model="$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1)"
grpc_version="$(dpkg-query -W -f '${Version}' libgrpc-dev 2>/dev/null || echo unknown)"
load_before="$(cut -d' ' -f1-3 /proc/loadavg)"
log "scratch $scratch; $reps repetition(s)$([ "$quick" = 1 ] && echo ' (quick)')"

# ---- idle RSS of the static executor ---------------------------------------------------------
start_executor load
load_pid="$exe_pid"
load_addr="$exe_addr"
rss_start_kb="$(awk '/^VmRSS:/ {print $2}' "/proc/$load_pid/status")"
run_step warmup "$run_load" --target "$load_addr" --health 5 --calls 5 --warmup 0 >/dev/null
sleep 0.2
rss_idle_kb="$(awk '/^VmRSS:/ {print $2}' "/proc/$load_pid/status")"
# Two more executors, identical but for the sandbox profile, for the sandbox's cost.
declare -A sbx_addr
for prof in unconfined strict; do
    start_executor "sbx-$prof" --sandbox-profile "$prof"
    sbx_addr[$prof]="$exe_addr"
    run_step warmup "$run_load" --target "$exe_addr" --calls 5 --warmup 0 >/dev/null
done
# The yardstick for latency at 1 in flight: one thread serving Run with posix_spawn and waitpid.
start_executor grpc-floor
gfloor_pid="$exe_pid"
gfloor_addr="$exe_addr"
run_step warmup "$run_load" --target "$gfloor_addr" --calls 5 --warmup 0 >/dev/null
log "idle static executor: VmRSS ${rss_start_kb} kB after start, ${rss_idle_kb} kB after 5 health + 5 Run calls"

# ---- repetitions -----------------------------------------------------------------------------
for rep in $(seq 1 "$reps"); do
    log "repetition $rep/$reps"
    l="$(run_step floor2 "$spawn_floor" --threads 2 --spawns "$spawns2")"
    f2="$(kv "$l" spawns_per_s)"
    record floor2_rate "$f2"

    read -r cpu_self0 cpu_child0 < <(cpu_ticks "$load_pid")
    l="$(run_step run64 "$run_load" --target "$load_addr" --inflight 64 --calls "$calls64" \
        --warmup $((calls64 / 10)))"
    read -r cpu_self1 cpu_child1 < <(cpu_ticks "$load_pid")
    # CPU per call in ms: the executor's own, its children's (reaped by the end), the client's.
    record cpu_exe_call "$(per_unit $((cpu_self1 - cpu_self0)) "$calls64" 1000)"
    record cpu_child_call "$(per_unit $((cpu_child1 - cpu_child0)) "$calls64" 1000)"
    record cpu_client_call "$(awk -v s="$(kv "$l" cpu_s)" -v n="$calls64" 'BEGIN { printf "%.3f", s * 1000 / n }')"
    r64="$(kv "$l" calls_per_s)"
    record run64_rate "$r64"
    record run64_p50 "$(kv "$l" p50_us)"
    record run64_p99 "$(kv "$l" p99_us)"
    record ratio "$(awk -v a="$r64" -v b="$f2" 'BEGIN { printf "%.4f", (b > 0 ? a / b : 0) }')"

    l="$(run_step floor1 "$spawn_floor" --threads 1 --spawns "$spawns1")"
    f1p50="$(kv "$l" p50_us)"
    record floor1_p50 "$f1p50"
    record floor1_p99 "$(kv "$l" p99_us)"
    record floor1_rate "$(kv "$l" spawns_per_s)"

    # The bare gRPC round trip on the same connection kind: what any unary call costs here.
    l="$(run_step health "$run_load" --target "$load_addr" --calls 0 --health "$health_calls")"
    record health_p50 "$(kv "$l" health_p50_us)"
    record health_p99 "$(kv "$l" health_p99_us)"
    # The same after 3 ms of quiet before each call, as a Run of `true` leaves the client and the
    # executor's gRPC thread: the round trip between two sleeping processes, which a Run pays on
    # top of the floor and the floor never pays.
    l="$(run_step health_cold "$run_load" --target "$load_addr" --calls 0 --health "$health_calls" \
        --health-gap-us 3000)"
    record health_cold_p50 "$(kv "$l" health_p50_us)"
    record health_cold_p99 "$(kv "$l" health_p99_us)"

    log_from=$(($(wc -l <"$scratch/executor-load.log") + 1))
    read -r cpu_self0 cpu_child0 < <(cpu_ticks "$load_pid")
    read -r vcs0 ncs0 < <(ctx_switches "$load_pid")
    l="$(run_step run1 "$run_load" --target "$load_addr" --inflight 1 --calls "$calls1" \
        --warmup $((calls1 / 10)))"
    read -r cpu_self1 cpu_child1 < <(cpu_ticks "$load_pid")
    read -r vcs1 ncs1 < <(ctx_switches "$load_pid")
    # The executor's own work per call at 1 in flight: steadier than latency on a noisy machine.
    record cpu_exe_call1 "$(per_unit $((cpu_self1 - cpu_self0)) "$calls1" 1000)"
    record vcs_call1 "$(awk -v d=$((vcs1 - vcs0)) -v n="$calls1" 'BEGIN { printf "%.2f", d / n }')"
    record ncs_call1 "$(awk -v d=$((ncs1 - ncs0)) -v n="$calls1" 'BEGIN { printf "%.2f", d / n }')"
    # The executor's own view of the same calls, from its log lines (see executor_split).
    sed -n "${log_from},\$p" "$scratch/executor-load.log" >>"$scratch/run1-executor.log"
    r1p50="$(kv "$l" p50_us)"
    record run1_p50 "$r1p50"
    record run1_p99 "$(kv "$l" p99_us)"
    record run1_rate "$(kv "$l" calls_per_s)"
    record delta_p50 $((r1p50 - f1p50))

    # The same calls served by the least a gRPC C core server does (bench/grpc_floor.c).
    l="$(run_step grpc_floor1 "$run_load" --target "$gfloor_addr" --inflight 1 --calls "$calls1" \
        --warmup $((calls1 / 10)))"
    g1p50="$(kv "$l" p50_us)"
    record gfloor1_p50 "$g1p50"
    record gfloor_delta $((g1p50 - f1p50))
    record exe_vs_gfloor $((r1p50 - g1p50))

    # The sandbox's cost (issue 3): the same calls under each profile, against the default one
    # above ("load" runs the executor's default profile).
    for prof in unconfined strict; do
        l="$(run_step "sbx_$prof" "$run_load" --target "${sbx_addr[$prof]}" --inflight 1 \
            --calls "$calls1" --warmup $((calls1 / 10)))"
        record "sbx_${prof}_p50" "$(kv "$l" p50_us)"
    done
    record sbx_default_added $((r1p50 - $(tail -n 1 "$scratch/m.sbx_unconfined_p50")))

    l="$(run_step pipe_floor "$spawn_floor" --pipe-bytes "$stream_bytes")"
    record pipe_mbps "$(kv "$l" mb_per_s)"

    # A fresh executor per stream, so its VmHWM is the stream's alone.
    start_executor "stream$rep"
    l="$(run_step stream "$stream" --target "$exe_addr" --bytes "$stream_bytes" --pid "$exe_pid")"
    read -r cpu_self1 cpu_child1 < <(cpu_ticks "$exe_pid")
    stop_executor "$exe_pid"
    # CPU seconds per GiB streamed: the executor's, head's (its reaped child), the client's.
    gib="$(awk -v b="$(kv "$l" bytes)" 'BEGIN { printf "%.6f", b / 1073741824 }')"
    record cpu_exe_gib "$(per_unit "$cpu_self1" "$gib" 1)"
    record cpu_head_gib "$(per_unit "$cpu_child1" "$gib" 1)"
    record cpu_client_gib "$(awk -v s="$(kv "$l" cpu_s)" -v g="$gib" 'BEGIN { printf "%.3f", s / g }')"
    record stream_mbps "$(kv "$l" mb_per_s)"
    record stream_rss_peak "$(kv "$l" rss_peak_kb)"
    record stream_hwm "$(kv "$l" hwm_final_kb)"

    printf '| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n' "$rep" "$f2" "$r64" \
        "$(tail -n 1 "$scratch/m.ratio")" "$f1p50" "$r1p50" "$((r1p50 - f1p50))" "$g1p50" \
        "$(tail -n 1 "$scratch/m.pipe_mbps")" "$(tail -n 1 "$scratch/m.stream_mbps")" \
        "$(tail -n 1 "$scratch/m.stream_hwm")" \
        >>"$scratch/reps.md"
done

hwm_load_kb="$(awk '/^VmHWM:/ {print $2}' "/proc/$load_pid/status")"
rss_after_kb="$(awk '/^VmRSS:/ {print $2}' "/proc/$load_pid/status")"
stop_executor "$load_pid"
stop_executor "$gfloor_pid"
load_after="$(cut -d' ' -f1-3 /proc/loadavg)"

# ---- sizes -----------------------------------------------------------------------------------
static_size="$(stat -L -c %s "$exe_static")"
if command -v strip >/dev/null; then
    strip -o "$scratch/pm-executor-static.stripped" "$exe_static"
    static_stripped="$(stat -L -c %s "$scratch/pm-executor-static.stripped")"
else
    static_stripped=0
fi
dyn_size="$([ -f "$exe_dyn" ] && stat -L -c %s "$exe_dyn" || echo 0)"
if [ "$dyn_size" != 0 ] && command -v strip >/dev/null; then
    strip -o "$scratch/pm-executor.stripped" "$exe_dyn"
    dyn_stripped="$(stat -L -c %s "$scratch/pm-executor.stripped")"
else
    dyn_stripped=0
fi
mib() { awk -v b="$1" 'BEGIN { printf "%.2f MiB", b / 1048576 }'; }

# ---- report ----------------------------------------------------------------------------------
ratio_med="$(med ratio)"
delta_med="$(med delta_p50)"
mbps_med="$(med stream_mbps)"
stream_hwm_max="$(maxof <"$scratch/m.stream_hwm")"
ms() { awk -v u="$1" 'BEGIN { printf "%.2f ms", u / 1000 }'; }
ms_or_na() { if [ "$1" = n/a ]; then echo n/a; else ms "$1"; fi; }

{
    echo "## pm-executor benchmark, $started_at"
    echo
    echo "- machine: $(nproc) CPUs ($cpu_model), kernel $(uname -r), load average $load_before before, $load_after after"
    echo "- gRPC $grpc_version (Debian), binaries: $build_mode; executor under test: pm-executor-static, not pinned (neither is the client nor the floor)"
    echo "- $reps repetition(s); each figure is the median over them (min–max in brackets); ratios and differences are taken within a repetition"
    echo "- per repetition: floor $spawns2 spawns with 2 threads and $spawns1 with 1; Run \`true\` $calls64 calls at 64 in flight and $calls1 at 1 (first 10% warm-up); $health_calls Health/Check calls; stream $stream_bytes"
    [ "$quick" = 1 ] && echo "- **quick mode: smoke-test sizes, the figures mean nothing**"
    echo
    echo "| figure | measured | target | met |"
    echo "|---|---|---|---|"
    echo "| floor: posix_spawn+waitpid \`/bin/sh -c true\`, 2 spawners | $(med floor2_rate) spawns/s ($(rng floor2_rate)) | — | |"
    echo "| floor: one spawn+wait, 1 spawner, p50 / p99 | $(ms "$(med floor1_p50)") / $(ms "$(med floor1_p99)") | — | |"
    echo "| Run \`true\`, 64 in flight | $(med run64_rate) calls/s ($(rng run64_rate)) = $(awk -v r="$ratio_med" 'BEGIN { printf "%.0f%%", r * 100 }') of the 2-spawner floor | ≥ 85% of floor | $(yesno "$ratio_med >= 0.85") |"
    echo "| Run \`true\`, 1 in flight, p50 / p99 | $(ms "$(med run1_p50)") / $(ms "$(med run1_p99)"); p50 − floor p50 = $(ms "$delta_med") ($(rng delta_p50) µs) | p50 ≤ floor p50 + 0.3 ms | $(yesno "$delta_med <= 300") |"
    gf_delta="$(med gfloor_delta)"
    echo "| the least a gRPC C core server does (\`//bench:grpc_floor\`: posix_spawn, Started, waitpid, Exited + status, one thread), same calls, p50; − floor p50; pm-executor − it | $(ms "$(med gfloor1_p50)"); $(ms "$gf_delta") ($(rng gfloor_delta) µs); $(ms "$(med exe_vs_gfloor)") ($(rng exe_vs_gfloor) µs), pm-executor faster in $(awk '$1 < 0' "$scratch/m.exe_vs_gfloor" | wc -l) of $reps | — | |"
    echo "| executor's own work per call at 1 in flight: CPU / context switches of its threads, voluntary + involuntary | $(med cpu_exe_call1) ms / $(med vcs_call1) + $(med ncs_call1) | — | |"
    echo "| Run \`true\`, 64 in flight, p50 / p99 | $(ms "$(med run64_p50)") / $(ms "$(med run64_p99)") | — | |"
    echo "| CPU per call at 64 in flight: executor / its children (\`sh -c true\`) / load generator | $(med cpu_exe_call) / $(med cpu_child_call) / $(med cpu_client_call) ms | — | |"
    echo "| bare unary gRPC round trip (Health/Check, same client and executor), p50 / p99 | $(ms "$(med health_p50)") / $(ms "$(med health_p99)") | — | |"
    echo "| the same after 3 ms of quiet before each call (as around a Run of \`true\`), p50 / p99 | $(ms "$(med health_cold_p50)") / $(ms "$(med health_cold_p99)") | — | |"
    echo "| executor's own view at 1 in flight, p50: command wall (pipes + spawn + run + reap) / whole call (accepted → status sent) | $(ms_or_na "$(executor_split wall_ms command)") / $(ms_or_na "$(executor_split dur_ms call)") | — | |"
    sbx_u="$(med sbx_unconfined_p50)"
    sbx_added="$(med sbx_default_added)"
    echo "| sandbox (issue 3): Run \`true\` at 1 in flight, p50 under unconfined / default / strict | $(ms "$sbx_u") / $(ms "$(med run1_p50)") / $(ms "$(med sbx_strict_p50)"); default adds $sbx_added µs ($(awk -v a="$sbx_added" -v b="$sbx_u" 'BEGIN { printf "%.1f", 100 * a / b }')%) | default ≤ +10% | $(yesno "100 * $sbx_added <= 10 * $sbx_u") |"
    echo "| floor: \`head -c $stream_bytes /dev/zero\` read from a pipe in 64 KiB reads | $(med pipe_mbps) MB/s ($(rng pipe_mbps)) | — | |"
    echo "| stream \`head -c $stream_bytes /dev/zero\` | $(med stream_mbps) MB/s ($(rng stream_mbps)) | ≥ 500 MB/s | $(yesno "$mbps_med >= 500") |"
    echo "| CPU per GiB streamed: executor / \`head\` (with its \`sh\`) / client | $(med cpu_exe_gib) / $(med cpu_head_gib) / $(med cpu_client_gib) s | — | |"
    echo "| executor peak RSS while streaming (final VmHWM, worst repetition; sampled VmRSS peak median $(kb_to_mib "$(med stream_rss_peak)") MiB) | $(kb_to_mib "$stream_hwm_max") MiB ($stream_hwm_max kB) | ≤ 24 MiB | $(yesno "$stream_hwm_max <= 24576") |"
    echo "| static executor idle RSS (VmRSS after 5 Health + 5 Run calls; $(kb_to_mib "$rss_start_kb") MiB right after start) | $(kb_to_mib "$rss_idle_kb") MiB ($rss_idle_kb kB) | ≤ 8 MiB | $(yesno "$rss_idle_kb <= 8192") |"
    echo "| static executor RSS under load (VmHWM after all runs at 64 and 1 in flight; VmRSS after: $(kb_to_mib "$rss_after_kb") MiB) | $(kb_to_mib "$hwm_load_kb") MiB ($hwm_load_kb kB) | — | |"
    echo "| static binary, stripped (\`strip -o\`); unstripped | $(mib "$static_stripped"); $(mib "$static_size") | — | |"
    echo "| dynamic binary (for reference), stripped; unstripped | $(mib "$dyn_stripped"); $(mib "$dyn_size") | — | |"
    echo
    echo "Per repetition:"
    echo
    echo "| rep | floor 2 spawners (spawns/s) | Run 64 in flight (calls/s) | ratio | floor p50 (µs) | Run p50 at 1 (µs) | Δ p50 (µs) | grpc_floor p50 (µs) | pipe floor (MB/s) | stream (MB/s) | stream VmHWM (kB) |"
    echo "|---|---|---|---|---|---|---|---|---|---|---|"
    cat "$scratch/reps.md"
    echo
    echo "MB = 10^6 bytes, MiB = 2^20 bytes."
} | tee "$scratch/report.md"

if [ -n "$out_file" ]; then
    cp "$scratch/report.md" "$out_file"
fi

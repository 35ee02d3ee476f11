# Shell helpers shared by the benchmark scripts (run.sh, sched.sh); sourced, never run. They
# expect $scratch to name the run's scratch directory, and the script to define usage().

log() { echo "bench: $*" >&2; }
die() {
    echo "bench: FAIL: $*" >&2
    exit 1
}

# kv LINE KEY: the value of KEY=... in a result line.
kv() { tr ' ' '\n' <<<"$1" | sed -n "s/^$2=//p" | head -n 1; }

# median: of the numbers on stdin.
median() {
    sort -g | awk '{a[NR] = $1} END {
        if (NR == 0) { print "nan"; exit }
        if (NR % 2) print a[(NR + 1) / 2]; else print (a[NR / 2] + a[NR / 2 + 1]) / 2 }'
}
minmax() { sort -g | awk 'NR == 1 {lo = $1} {hi = $1} END {printf "%s–%s", lo, hi}'; }
maxof() { sort -g | tail -n 1; }

# Per-metric value files: record METRIC VALUE appends one repetition's value.
record() { echo "$2" >>"$scratch/m.$1"; }
med() { median <"$scratch/m.$1"; }
rng() { minmax <"$scratch/m.$1"; }

# run_step LABEL CMD...: runs one benchmark program, echoes its result line, fails loudly.
run_step() {
    local label="$1" line
    shift
    if ! line="$("$@" 2>>"$scratch/client.log")"; then
        tail -n 5 "$scratch/client.log" >&2
        die "$label failed: $*"
    fi
    echo "$line" >>"$scratch/raw.txt"
    echo "$line"
}

kb_to_mib() { awk -v k="$1" 'BEGIN { printf "%.1f", k / 1024 }'; }
# yesno EXPR: "yes" when the awk expression EXPR (numbers only) holds.
yesno() { if awk "BEGIN { exit !($1) }"; then echo "yes"; else echo "**no**"; fi; }


# bench_args PROG ARGS...: the flags every benchmark script takes. Sets reps, quick, bin_root,
# out_file and keep; prints usage and exits on --help or a bad flag.
bench_args() {
    local prog="$1"
    shift
    reps=5
    quick=0
    bin_root=""
    out_file=""
    keep=0
    while [ $# -gt 0 ]; do
        case "$1" in
        --reps)
            reps="${2:?--reps needs a value}"
            shift 2
            ;;
        --quick)
            quick=1
            shift
            ;;
        --bin-root)
            bin_root="${2:?--bin-root needs a value}"
            shift 2
            ;;
        --out)
            out_file="${2:?--out needs a value}"
            shift 2
            ;;
        --keep)
            keep=1
            shift
            ;;
        -h | --help)
            usage
            exit 0
            ;;
        *)
            echo "$prog: unknown argument $1" >&2
            usage >&2
            exit 2
            ;;
        esac
    done
    case "$reps" in
    '' | *[!0-9]* | 0)
        echo "$prog: --reps must be a positive integer" >&2
        exit 2
        ;;
    esac
}

# bench_build TARGETS...: unless --bin-root was given, builds the targets in opt mode with the
# repository's own flags (.bazelrc: -Wall -Wextra -Werror) and sets bin_root to their bazel-bin.
# At -O2 Debian's FORTIFY headers enable warnings fastbuild does not see (format-truncation);
# they are errors here too, on purpose: the benchmark measures what ships. The benchmarks have
# their own output base, and the convenience symlinks of the work tree are left alone. Sets
# build_mode for the report.
bench_build() {
    if [ -n "$bin_root" ]; then
        build_mode="prebuilt ($bin_root)"
        return
    fi
    local flags=(-c opt --experimental_convenience_symlinks=ignore)
    local ob="${BENCH_OUTPUT_BASE:-$HOME/.cache/bazel-bench}"
    log "building (bazel --output_base=$ob build ${flags[*]})"
    bazel --output_base="$ob" build "${flags[@]}" "$@" >&2
    bin_root="$(bazel --output_base="$ob" info "${flags[@]}" bazel-bin 2>/dev/null)"
    build_mode="bazel -c opt"
}

# bench_scratch PREFIX: makes the run's scratch directory and a trap that, on exit, stops every
# process in pids, removes the directories in cleanup_dirs and the scratch directory (unless
# --keep).
bench_scratch() {
    scratch="$(mktemp -d "${TEST_TMPDIR:-${TMPDIR:-/tmp}}/$1.XXXXXX")"
    pids=()
    cleanup_dirs=()
    trap bench_cleanup EXIT
}

bench_cleanup() {
    local p
    for p in "${pids[@]}"; do
        kill "$p" 2>/dev/null || true
    done
    for p in "${pids[@]}"; do
        wait "$p" 2>/dev/null || true
    done
    for p in "${cleanup_dirs[@]}"; do
        rm -rf "$p"
    done
    if [ "$keep" = 1 ]; then
        log "kept $scratch"
    else
        rm -rf "$scratch"
    fi
}

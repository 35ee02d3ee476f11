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

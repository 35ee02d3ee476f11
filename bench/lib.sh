# Shell helpers shared by the benchmark scripts (run.sh, sched.sh); sourced, never run. They
# expect $scratch to name the run's scratch directory.

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


#!/bin/sh
# End-to-end test of `pmctl run` (a pipeline in direct mode) against real pm-executor processes:
# three executors on Unix sockets, playing the containers of one worker pod, share a directory as
# the pod's shared volume; a three-step pipeline writes a file, transforms it (tr, sort) and cats
# it. Checked: the output, {{name}} parameters and the {{id}} fill (given and generated), the
# three ways to name executors (--executor, --ports with --worker, --workers-config), a failing
# step's exit code passed on with the later steps not run, and the errors that must stop a run
# before anything runs (unknown executor name, missing parameter, bad JSON). Scheduler-mode
# commands cannot meet a real scheduler here yet; their usage errors and the UNAVAILABLE report
# of watch, after its resume window, are checked against an address where nothing listens.
set -u

# Runfiles: the test's cwd under `bazel test`; TEST_SRCDIR/TEST_WORKSPACE when run otherwise.
root="${TEST_SRCDIR:-$PWD/..}/${TEST_WORKSPACE:-pm}"
[ -d "$root/cli" ] || root="$PWD"
. "$root/cli/pmctl_e2e_lib.sh"

[ -x "$executor" ] || fail "missing $executor (//executor:pm-executor)"

# ---- three executors of one "pod" ------------------------------------------------------------

sock_dir 16
shared="$tmp/volume"
mkdir -p "$shared"
start_executor fetch "unix:$sockdir/fetch.sock"
start_executor transform "unix:$sockdir/transform.sock"
start_executor show "unix:$sockdir/show.sock"
start_executor show-tcp tcp
tcp_port="${addr##*:}"
maps="--executor fetch=unix:$sockdir/fetch.sock --executor transform=unix:$sockdir/transform.sock"
maps="$maps --executor show=unix:$sockdir/show.sock"

cat >"$tmp/pipeline.json" <<'EOF'
{ "pipeline": [
  { "executorName": "fetch", "commands": ["printf '%s\\n' pear apple {{fruit}} > {{dir}}/{{id}}.txt"] },
  { "executorName": "transform",
    "commands": ["tr a-z A-Z < {{dir}}/{{id}}.txt | sort > {{dir}}/{{id}}.out"] },
  { "executorName": "show", "commands": ["cat {{dir}}/{{id}}.out", "echo id={{id}}"] } ] }
EOF

case_name="three steps through the shared directory"
# shellcheck disable=SC2086 # $maps is a list of flags
pm run "$tmp/pipeline.json" $maps -p fruit=fig -p "dir=$shared" --id e2e-42 \
    >"$tmp/out" 2>"$tmp/err"
expect_rc 0 $? "run"
expect_file "$tmp/out" "APPLE${nl}FIG${nl}PEAR${nl}id=e2e-42${nl}" "stdout of step 3"
[ -f "$shared/e2e-42.out" ] || fail "step 2 did not leave $shared/e2e-42.out"

case_name="a parameter value with shell syntax stays one word"
# shellcheck disable=SC2086
pm run "$tmp/pipeline.json" $maps -p 'fruit=kiwi; echo injected' -p "dir=$shared" --id e2e-43 \
    >"$tmp/out" 2>"$tmp/err"
expect_rc 0 $? "run with a quoted value"
expect_file "$tmp/out" "APPLE${nl}KIWI; ECHO INJECTED${nl}PEAR${nl}id=e2e-43${nl}" "stdout"

case_name="generated {{id}}"
# shellcheck disable=SC2086
pm run "$tmp/pipeline.json" $maps -p fruit=fig -p "dir=$shared" >"$tmp/out" 2>"$tmp/err"
expect_rc 0 $? "run without --id"
expect_grep "$tmp/out" "^id=run-[0-9][0-9]*-[0-9][0-9]*$" "a generated run id"
gen_id="$(sed -n 's/^id=//p' "$tmp/out")"
[ -f "$shared/$gen_id.out" ] || fail "no $shared/$gen_id.out for the generated id $gen_id"

case_name="--ports on --worker, flags after FILE"
pm run "$tmp/pipeline.json" --worker 127.0.0.1 --ports "show=$tcp_port" \
    --executor "fetch=unix:$sockdir/fetch.sock" --executor "transform=unix:$sockdir/transform.sock" \
    -p fruit=fig -p "dir=$shared" --id e2e-44 >"$tmp/out" 2>"$tmp/err"
expect_rc 0 $? "run with a TCP executor"
expect_file "$tmp/out" "APPLE${nl}FIG${nl}PEAR${nl}id=e2e-44${nl}" "stdout"

case_name="--workers-config"
cat >"$tmp/workers.json" <<EOF
{ "pools": [
  { "name": "other", "workers": ["10.255.255.1"], "executors": {"fetch": 1} },
  { "name": "pod", "workers": ["127.0.0.1"],
    "executors": {"fetch": "unix:$sockdir/fetch.sock", "transform": "unix:$sockdir/transform.sock",
                  "show": $tcp_port} } ] }
EOF
pm run "$tmp/pipeline.json" --workers-config "$tmp/workers.json" -p fruit=fig -p "dir=$shared" \
    --id e2e-45 >"$tmp/out" 2>"$tmp/err"
expect_rc 0 $? "run with the pool that has every executor"
expect_file "$tmp/out" "APPLE${nl}FIG${nl}PEAR${nl}id=e2e-45${nl}" "stdout"
pm run "$tmp/pipeline.json" --workers-config "$tmp/workers.json" --pool nosuch -p fruit=fig \
    -p "dir=$shared" >"$tmp/out" 2>"$tmp/err"
expect_rc 2 $? "run with an unknown --pool"
expect_grep "$tmp/err" "nosuch" "the error names the pool"

case_name="a failing step stops the run and passes its code on"
cat >"$tmp/failing.json" <<EOF
{ "pipeline": [
  { "executorName": "fetch", "commands": ["echo one"] },
  { "executorName": "transform", "commands": ["echo two", "echo bad >&2; exit 7", "echo never"] },
  { "executorName": "show", "commands": ["echo three; touch $shared/step3-ran"] } ] }
EOF
# shellcheck disable=SC2086
pm run "$tmp/failing.json" $maps >"$tmp/out" 2>"$tmp/err"
expect_rc 7 $? "run with step 2 exiting 7"
expect_file "$tmp/out" "one${nl}two${nl}" "stdout up to the failure"
expect_grep "$tmp/err" "bad" "stderr of the failing command"
expect_grep "$tmp/err" "step 2" "the note names the step"
[ -e "$shared/step3-ran" ] && fail "step 3 ran after step 2 failed"

case_name="--output json"
# shellcheck disable=SC2086
pm run "$tmp/failing.json" $maps --output json >"$tmp/out" 2>"$tmp/err"
expect_rc 7 $? "run --output json"
"$python" -c '
import base64, json, sys
events = [json.loads(line) for line in open(sys.argv[1])]
assert [e["step"] for e in events if e["event"] == "step"] == [0, 1], events
out = b"".join(base64.b64decode(e["data_base64"]) for e in events if e["event"] == "stdout")
assert out == b"one\ntwo\n", out
ends = [e for e in events if e["event"] == "end"]
assert [(e["step"], e["exit_code"]) for e in ends] == [(0, 0), (1, 7)], ends
assert events[-1]["event"] == "end", events[-1]
' "$tmp/out" 2>"$tmp/pyerr" || fail "JSON lines: $(show "$tmp/pyerr") in $(show "$tmp/out")"

case_name="unknown executor name"
cat >"$tmp/unknown.json" <<EOF
{ "pipeline": [
  { "executorName": "fetch", "commands": ["touch $shared/step1-ran"] },
  { "executorName": "nosuch", "commands": ["true"] } ] }
EOF
# shellcheck disable=SC2086
pm run "$tmp/unknown.json" $maps >"$tmp/out" 2>"$tmp/err"
expect_rc 2 $? "run with an executor nobody serves"
expect_grep "$tmp/err" 'step 2: no target for executor "nosuch"' "the error names step and executor"
[ -e "$shared/step1-ran" ] && fail "step 1 ran although step 2 had no executor"

case_name="missing parameter"
# shellcheck disable=SC2086
pm run "$tmp/pipeline.json" $maps -p "dir=$shared" >"$tmp/out" 2>"$tmp/err"
expect_rc 2 $? "run without -p fruit"
expect_grep "$tmp/err" "fruit" "the error names the parameter"
[ -s "$tmp/out" ] && fail "something ran: $(show "$tmp/out")"

case_name="bad pipelines and usage"
printf '{"pipeline": [{"executorName": "fetch", "comands": ["true"]}]}' >"$tmp/typo.json"
# shellcheck disable=SC2086
pm run "$tmp/typo.json" $maps >"$tmp/out" 2>"$tmp/err"
expect_rc 2 $? "run of a pipeline with a misspelt member"
expect_grep "$tmp/err" "typo.json" "the error names the file"
pm run >"$tmp/out" 2>"$tmp/err"
expect_rc 2 $? "run without a file"
pm run "$tmp/pipeline.json" --executor fetch=99999 --worker 127.0.0.1 >"$tmp/out" 2>"$tmp/err"
expect_rc 2 $? "run with a port out of range"
pm run "$tmp/pipeline.json" --executor fetch=50051 >"$tmp/out" 2>"$tmp/err"
expect_rc 2 $? "run with a port and no --worker"
pm run "$tmp/nonexistent.json" $maps >"$tmp/out" 2>"$tmp/err"
expect_rc 1 $? "run of a missing file"

case_name="stdin as the pipeline"
# shellcheck disable=SC2086
pm run - $maps -p fruit=fig -p "dir=$shared" --id e2e-46 <"$tmp/pipeline.json" \
    >"$tmp/out" 2>"$tmp/err"
expect_rc 0 $? "run -"
expect_file "$tmp/out" "APPLE${nl}FIG${nl}PEAR${nl}id=e2e-46${nl}" "stdout"

stop_all

# ---- scheduler mode without a scheduler ----------------------------------------------------

case_name="scheduler usage errors"
nowhere="unix:$sockdir/nobody.sock"
"$pmctl" submit --scheduler "$nowhere" >"$tmp/out" 2>"$tmp/err"
expect_rc 2 $? "submit without FILE or --pipeline"
"$pmctl" submit "$tmp/pipeline.json" --pipeline x --scheduler "$nowhere" >"$tmp/out" 2>"$tmp/err"
expect_rc 2 $? "submit with both FILE and --pipeline"
"$pmctl" submit "$tmp/pipeline.json" -p novalue --scheduler "$nowhere" >"$tmp/out" 2>"$tmp/err"
expect_rc 2 $? "submit with -p lacking ="
"$pmctl" submit "$tmp/pipeline.json" --priority high --scheduler "$nowhere" >"$tmp/out" 2>"$tmp/err"
expect_rc 2 $? "submit with a word for --priority"
"$pmctl" watch --scheduler "$nowhere" >"$tmp/out" 2>"$tmp/err"
expect_rc 2 $? "watch without ID"
"$pmctl" get >"$tmp/out" 2>"$tmp/err"
expect_rc 2 $? "get without ID"
"$pmctl" cancel a b >"$tmp/out" 2>"$tmp/err"
expect_rc 2 $? "cancel with two IDs"
"$pmctl" list --state bogus >"$tmp/out" 2>"$tmp/err"
expect_rc 2 $? "list with an unknown state"
"$pmctl" list --output yaml >"$tmp/out" 2>"$tmp/err"
expect_rc 2 $? "list with an unknown output"
"$pmctl" pipelines frob >"$tmp/out" 2>"$tmp/err"
expect_rc 2 $? "pipelines with an unknown action"
"$pmctl" pipelines put onlyname >"$tmp/out" 2>"$tmp/err"
expect_rc 2 $? "pipelines put without FILE"
for c in submit watch get cancel requeue list workers; do
    "$pmctl" "$c" --help >"$tmp/out" 2>"$tmp/err"
    expect_rc 0 $? "$c --help"
    expect_grep "$tmp/out" "PM_SCHEDULER" "$c --help lists --scheduler"
done

case_name="scheduler unreachable"
"$pmctl" submit "$tmp/pipeline.json" --scheduler "$nowhere" >"$tmp/out" 2>"$tmp/err"
expect_rc 1 $? "submit with no scheduler"
expect_grep "$tmp/err" "^pmctl: Submit: UNAVAILABLE: " "submit's error"
"$pmctl" get some-id --scheduler "$nowhere" --output json >"$tmp/out" 2>"$tmp/err"
expect_rc 1 $? "get with no scheduler"
expect_grep "$tmp/err" "^pmctl: Get: UNAVAILABLE: " "get's error"
start_s=$(date +%s)
"$pmctl" watch some-id --scheduler "$nowhere" --reconnect-for 1 >"$tmp/out" 2>"$tmp/err"
expect_rc 1 $? "watch with no scheduler"
took=$(($(date +%s) - start_s))
expect_grep "$tmp/err" "^pmctl: Watch: UNAVAILABLE: " "watch's error"
[ "$took" -le 20 ] || fail "watch --reconnect-for 1 took ${took}s to give up"

case_name="done"
echo "PASS: pmctl_run_e2e_test"

#!/bin/sh
# End-to-end test of pmctl's scheduler mode against the real pm-scheduler and real executors:
# three executors on Unix sockets (one worker pod sharing a directory), the scheduler on SQLite in
# a file. Checked: submit --watch streams a three-step pipeline's output and exits 0; a failing
# command's exit code comes back through watch; cancel of a running task (exit 130 from watch, the
# process gone); named pipelines with defaults; list, get and workers; and watch resuming by
# itself across a `kill -9` of the scheduler and its restart, with the output neither lost nor
# repeated.
set -u

root="${TEST_SRCDIR:-$PWD/..}/${TEST_WORKSPACE:-pm}"
[ -d "$root/cli" ] || root="$PWD"
. "$root/cli/pmctl_e2e_lib.sh"

scheduler="$root/scheduler/pm-scheduler"
[ -x "$executor" ] || fail "missing $executor (//executor:pm-executor)"
[ -x "$scheduler" ] || fail "missing $scheduler (//scheduler:pm-scheduler)"

sock_dir 16
shared="$tmp/volume"
mkdir -p "$shared"
for e in fetch transform show; do
    start_executor "$e" "unix:$sockdir/$e.sock"
done
cat >"$tmp/workers.json" <<EOF
{"pools": [{"name": "pod", "workers": ["local"], "slots": 4,
            "executors": {"fetch": "unix:$sockdir/fetch.sock",
                          "transform": "unix:$sockdir/transform.sock",
                          "show": "unix:$sockdir/show.sock"}}]}
EOF

# start_scheduler: on $sched_port (picked once, reused by restarts) with the same database.
sched_port="$(free_port)"
export PM_SCHEDULER="127.0.0.1:$sched_port"
start_scheduler() {
    log="$logs/scheduler.log"
    log_files="$log_files $log"
    "$scheduler" --listen "$PM_SCHEDULER" --workers "$tmp/workers.json" --db "$tmp/pm.db" \
        --id test --health-interval-ms 200 >>"$log" 2>&1 &
    sched_pid=$!
    bg_pids="$bg_pids $sched_pid"
    i=0
    until "$pmctl" workers --deadline-ms 1000 2>/dev/null | grep -q ' ok '; do
        kill -0 "$sched_pid" 2>/dev/null || fail "pm-scheduler exited at start"
        i=$((i + 1))
        [ "$i" -gt 300 ] && fail "the scheduler's worker never became healthy"
        sleep 0.1
    done
}
start_scheduler

cat >"$tmp/pipeline.json" <<'EOF'
{ "pipeline": [
  { "executorName": "fetch", "commands": ["printf '%s\\n' pear apple {{fruit}} > {{dir}}/{{id}}.txt"] },
  { "executorName": "transform",
    "commands": ["tr a-z A-Z < {{dir}}/{{id}}.txt | sort > {{dir}}/{{id}}.out"] },
  { "executorName": "show", "commands": ["cat {{dir}}/{{id}}.out", "echo done >&2"] } ] }
EOF

case_name="submit --watch streams the pipeline's output"
pm submit "$tmp/pipeline.json" -p fruit=fig -p "dir=$shared" --watch >"$tmp/out" 2>"$tmp/err"
expect_rc 0 $? "submit --watch"
expect_file "$tmp/out" "APPLE${nl}FIG${nl}PEAR${nl}" "stdout of the task"
expect_grep "$tmp/err" "^done$" "the step's stderr on stderr"
expect_grep "$tmp/err" "SUCCEEDED" "the final state on stderr"

case_name="a failing command's exit code comes back"
printf '%s' '{"pipeline":[{"executorName":"show","commands":["echo before","exit 7","echo never"]}]}' \
    >"$tmp/fail.json"
pm submit "$tmp/fail.json" --watch >"$tmp/out" 2>"$tmp/err"
expect_rc 7 $? "submit --watch of a failing step"
expect_file "$tmp/out" "before${nl}" "output up to the failure"
expect_grep "$tmp/err" "FAILED" "the final state"

case_name="cancel of a running task"
# A duration no other process uses, to find this one by its command line.
marker="1000.$$"
printf '{"pipeline":[{"executorName":"show","commands":["echo started; exec sleep %s"]}]}' \
    "$marker" >"$tmp/sleep.json"
pm submit "$tmp/sleep.json" >"$tmp/id" 2>"$tmp/err"
expect_rc 0 $? "submit"
id="$(cat "$tmp/id")"
"$pmctl" watch "$id" --deadline-ms "$deadline" >"$tmp/wout" 2>"$tmp/werr" &
watch_pid=$!
i=0
until grep -q started "$tmp/wout" 2>/dev/null; do
    i=$((i + 1))
    [ "$i" -gt 300 ] && fail "the step never started: $(show "$tmp/werr")"
    sleep 0.1
done
pm cancel "$id" >"$tmp/out" 2>"$tmp/err"
expect_rc 0 $? "cancel"
expect_grep "$tmp/out" "CANCELLED" "cancel prints the final state"
wait "$watch_pid"
expect_rc 130 $? "watch of a cancelled task"
i=0
while pgrep -f "sleep $marker" >/dev/null; do
    i=$((i + 1))
    [ "$i" -gt 100 ] && fail "the cancelled step's process is still running"
    sleep 0.1
done
pm cancel "$id" >"$tmp/out" 2>"$tmp/err"
expect_rc 1 $? "cancel of a final task"
expect_grep "$tmp/err" "FAILED_PRECONDITION" "the reason"

case_name="named pipelines with defaults"
"$pmctl" pipelines put --deadline-ms "$deadline" fruits "$tmp/pipeline.json" --default fruit=plum --default "dir=$shared" \
    >"$tmp/out" 2>"$tmp/err"
expect_rc 0 $? "pipelines put"
"$pmctl" pipelines list --deadline-ms "$deadline" >"$tmp/out" 2>"$tmp/err"
expect_grep "$tmp/out" "fruits" "pipelines list"
pm submit --pipeline fruits --watch >"$tmp/out" 2>"$tmp/err"
expect_rc 0 $? "submit by name with the defaults"
expect_file "$tmp/out" "APPLE${nl}PEAR${nl}PLUM${nl}" "output with the default"
pm submit --pipeline fruits -p fruit=kiwi --watch >"$tmp/out" 2>"$tmp/err"
expect_rc 0 $? "submit by name, a default overridden"
expect_file "$tmp/out" "APPLE${nl}KIWI${nl}PEAR${nl}" "output with the override"
pm submit --pipeline nosuch >"$tmp/out" 2>"$tmp/err"
expect_rc 1 $? "submit of an unknown pipeline"
expect_grep "$tmp/err" 'INVALID_ARGUMENT: unknown pipeline "nosuch"' "the message"

case_name="list, get, workers"
pm list --state SUCCEEDED >"$tmp/out" 2>"$tmp/err"
expect_rc 0 $? "list"
[ "$(grep -c SUCCEEDED "$tmp/out")" = 3 ] || fail "list --state SUCCEEDED: $(show "$tmp/out")"
pm get "$id" --output json >"$tmp/out" 2>"$tmp/err"
expect_rc 0 $? "get"
expect_grep "$tmp/out" '"state":"CANCELLED"' "get --output json"
pm workers >"$tmp/out" 2>"$tmp/err"
expect_grep "$tmp/out" "local" "workers"

case_name="watch resumes across a kill -9 of the scheduler"
printf '%s' '{"pipeline":[{"executorName":"show","commands":["for i in 1 2 3 4 5 6 7 8; do echo line $i; sleep 0.3; done"]}]}' \
    >"$tmp/slow.json"
pm submit "$tmp/slow.json" >"$tmp/id" 2>"$tmp/err"
expect_rc 0 $? "submit"
id="$(cat "$tmp/id")"
"$pmctl" watch "$id" --reconnect-for 60 --deadline-ms "$deadline" >"$tmp/wout" 2>"$tmp/werr" &
watch_pid=$!
i=0
until grep -q "line 2" "$tmp/wout" 2>/dev/null; do
    i=$((i + 1))
    [ "$i" -gt 300 ] && fail "no output before the crash: $(show "$tmp/werr")"
    sleep 0.1
done
kill -KILL "$sched_pid"
wait "$sched_pid" 2>/dev/null
forget_pid "$sched_pid"
sleep 0.5
start_scheduler
wait "$watch_pid"
expect_rc 0 $? "watch across the crash (the task is re-run from its first step)"
# Events are kept per attempt: the interrupted attempt's lines, then the whole second attempt's,
# each exactly once. What the watcher printed must be what the store holds.
pm watch "$id" >"$tmp/replay" 2>/dev/null
expect_rc 0 $? "a replay of the whole task"
cmp -s "$tmp/wout" "$tmp/replay" ||
    fail "live output $(show "$tmp/wout") differs from the stored $(show "$tmp/replay")"
tail -n 8 "$tmp/wout" >"$tmp/last"
expect_file "$tmp/last" "line 1${nl}line 2${nl}line 3${nl}line 4${nl}line 5${nl}line 6${nl}line 7${nl}line 8${nl}" \
    "the second attempt's full output at the end"
pm get "$id" --output json >"$tmp/out" 2>"$tmp/err"
expect_grep "$tmp/out" '"state":"SUCCEEDED"' "final state after the crash"

echo "PASS"

#!/usr/bin/env bash
# The main job on one machine: the whole product. Builds pm-executor, pm-scheduler and pmctl, then
# starts one worker made of three executors ("wget", "transform", "upload": three containers of a
# pod, each on its own Unix socket, sharing one directory that stands for the pod's /mnt/pipe
# volume), a scheduler on SQLite in a file, and a local HTTP server with a text to fetch. It stores
# the pipeline scripts/demo/pipeline.json under a name, submits it with parameters and shows the
# output streaming back, then lists tasks and workers and stops everything with SIGTERM.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
bazel build -c opt //executor:pm-executor //scheduler:pm-scheduler //cli:pmctl >&2

bin=$(bazel info -c opt bazel-bin 2>/dev/null)
pmctl="$bin/cli/pmctl"
work=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT
mkdir -p "$work/mnt/pipe" "$work/results" "$work/www"
free_port() { /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# Something to fetch: a few paragraphs served over HTTP on loopback.
for i in $(seq 40); do
  echo "The pipeline runs each step in the container that holds its tool; steps pass files"
  echo "through the shared volume, and the scheduler keeps every task durable until it is done."
done >"$work/www/words.txt"
http_port=$(free_port)
(cd "$work/www" && exec /usr/bin/python3 -m http.server "$http_port" --bind 127.0.0.1) \
  >"$work/http.log" 2>&1 &
pids+=($!)

for name in wget transform upload; do
  mkdir -p "$work/containers/$name"
  (cd "$work/containers/$name" &&
    exec "$bin/executor/pm-executor" --listen "unix:$work/$name.sock" --name "$name") \
    2>"$work/$name.log" &
  pids+=($!)
done
cat >"$work/workers.json" <<JSON
{"pools": [{"name": "local", "workers": ["pod-0"], "slots": 2,
            "executors": {"wget": "unix:$work/wget.sock",
                          "transform": "unix:$work/transform.sock",
                          "upload": "unix:$work/upload.sock"}}]}
JSON
sched_port=$(free_port)
export PM_SCHEDULER="127.0.0.1:$sched_port"
"$bin/scheduler/pm-scheduler" --listen "$PM_SCHEDULER" --workers "$work/workers.json" \
  --db "$work/pm.db" --health-interval-ms 500 2>"$work/scheduler.log" &
pids+=($!)
for _ in $(seq 100); do
  "$pmctl" workers 2>/dev/null | grep -q ' ok ' && break
  sleep 0.1
done

echo "== workers (one pod, three executors, health-checked):"
"$pmctl" workers
echo
echo "== store the pipeline under a name (parameters found: {{url}}, {{pipe}}, {{results}}):"
"$pmctl" pipelines put wordcount scripts/demo/pipeline.json \
  --default "pipe=$work/mnt/pipe" --default "results=$work/results" \
  --description "fetch a text, count its words, upload the result"
echo
echo "== submit it and watch: stdout and stderr of every step stream back as they happen"
"$pmctl" submit --pipeline wordcount -p "url=http://127.0.0.1:$http_port/words.txt" \
  --key demo-1 --label demo=yes --watch --progress
echo
echo "== the same idempotency key again: the same task, nothing runs twice"
"$pmctl" submit --pipeline wordcount -p "url=http://127.0.0.1:$http_port/words.txt" --key demo-1
echo
echo "== a bad URL: the step fails and so does the task (exit status passed through)"
set +e
"$pmctl" submit --pipeline wordcount -p "url=http://127.0.0.1:$http_port/missing.txt" --watch
echo "pmctl exit status: $?"
set -e
echo
echo "== tasks:"
"$pmctl" list
echo
echo "== results folder (what the upload step copied):"
ls -l "$work/results"
echo
echo "== scheduler log:"
cat "$work/scheduler.log"

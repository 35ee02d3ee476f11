#!/usr/bin/env bash
# The main job on one machine: builds pm-executor and pmctl, starts an executor on a Unix socket
# with its embedded defaults, runs a multi-command step against it and shows the output as it
# streams, then stops the executor with SIGTERM (graceful shutdown).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
bazel build -c opt //executor:pm-executor //cli:pmctl >&2

bin=$(bazel info -c opt bazel-bin 2>/dev/null)
work=$(mktemp -d)
sock="unix:$work/executor.sock"
trap 'kill -TERM "$pid" 2>/dev/null; wait "$pid" 2>/dev/null; rm -rf "$work"' EXIT

"$bin/executor/pm-executor" --listen "$sock" --name demo 2>"$work/executor.log" &
pid=$!
for _ in $(seq 50); do
  "$bin/cli/pmctl" health --target "$sock" >/dev/null 2>&1 && break
  sleep 0.1
done

echo "== executor: $("$bin/cli/pmctl" info --target "$sock" | tr '\n' ' ')"
echo "== one step, four commands, output streamed as it is produced:"
"$bin/cli/pmctl" step --target "$sock" --progress \
  -c 'echo "step running in $(pwd) as pid $$"' \
  -c 'for i in 1 2 3; do echo "tick $i"; sleep 0.4; done' \
  -c 'seq 1 200000 | sort -rn | head -n 3' \
  -c 'echo "a line on stderr" >&2; uname -sr'
echo "== a failing command stops the step (exit status passed through):"
set +e
"$bin/cli/pmctl" step --target "$sock" -c 'echo before' -c 'exit 3' -c 'echo never printed'
echo "pmctl exit status: $?"
set -e
echo "== executor log (one line per call and per command):"
kill -TERM "$pid"
wait "$pid" || true
cat "$work/executor.log"

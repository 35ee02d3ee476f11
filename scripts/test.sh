#!/usr/bin/env bash
# The whole test suite: installs what it needs, runs `bazel test //...` and then the same tests
# under AddressSanitizer/UndefinedBehaviorSanitizer, and ends with one line "N passed, N failed".
# Exit status is nonzero when anything failed or did not build.
set -uo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
out=$(mktemp -d)
jobs=()
[ -n "${CI:-}" ] && jobs=(--show_progress_rate_limit=30)

# The tests that must pass; a query that fails (a broken BUILD file) fails the run.
if ! bazel query 'tests(//...)' >"$out/plain.list" ||
  ! bazel query 'tests(//...) except attr(tags, "no-asan", tests(//...))' >"$out/asan.list" ||
  ! [ -s "$out/plain.list" ]; then
  echo "bazel query failed: the BUILD files do not load"
  echo "0 passed, 1 failed"
  exit 1
fi
{ sed 's/^/0 /' "$out/plain.list"; sed 's/^/1 /' "$out/asan.list"; } >"$out/expected"

bazel test "${jobs[@]}" --build_event_json_file="$out/plain.json" --keep_going //...
bazel test "${jobs[@]}" --config=asan --build_event_json_file="$out/asan.json" --keep_going //...

/usr/bin/python3 scripts/bep_count.py "$out/expected" "$out/plain.json" "$out/asan.json"

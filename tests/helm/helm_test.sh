#!/bin/bash
# Render tests of charts/executor-sidecar, run by Bazel (tests/helm/BUILD.bazel) with one case
# per target:
#   default  the default values render and pass the Kubernetes schema and chart checks
#   ci       every charts/executor-sidecar/ci/*.yaml renders and passes them
#   bad      every tests/helm/bad/*.yaml is refused, with the message its "# expect:" line names
#   library  testdata/consumer, an app chart using the library templates, renders and passes
# The renderer is built from source into $TEST_TMPDIR (via render.sh), so nothing outside the
# test's own directory is touched.
set -uo pipefail

case_=${1:?usage: helm_test.sh default|ci|bad|library}
root=${TEST_SRCDIR:?run under bazel test}/${TEST_WORKSPACE:-pm}
here=$root/tests/helm
chart=$root/charts/executor-sidecar
export HOME=${HOME:-$TEST_TMPDIR}
export PM_HELM_RENDER_CACHE=$TEST_TMPDIR/render-cache
out=$TEST_TMPDIR/out.yaml
failures=0

fail() {
    echo "FAIL: $*"
    failures=$((failures + 1))
}

# render_and_check NAME [CHECK_FLAGS] -- RENDER_ARGS...: renders, then checks the manifests.
render_and_check() {
    local name=$1 flags=()
    shift
    while [ "$1" != "--" ]; do flags+=("$1"); shift; done
    shift
    if ! "$here/render.sh" "$@" >"$out" 2>"$TEST_TMPDIR/err"; then
        fail "$name: render failed: $(cat "$TEST_TMPDIR/err")"
        return 1
    fi
    if ! /usr/bin/python3 "$here/helmcheck.py" manifests "${flags[@]}" "$out" >"$TEST_TMPDIR/check"; then
        fail "$name: $(cat "$TEST_TMPDIR/check")"
        return 1
    fi
    echo "ok $name: $(cat "$TEST_TMPDIR/check")"
}

# has_doc KIND NAME: the last render holds that object.
has_doc() {
    /usr/bin/python3 - "$out" "$1" "$2" <<'PY'
import sys, yaml
docs = [d for d in yaml.safe_load_all(open(sys.argv[1])) if d]
sys.exit(0 if any(d["kind"] == sys.argv[2] and d["metadata"]["name"] == sys.argv[3] for d in docs) else 1)
PY
}

case $case_ in
default)
    render_and_check "default values" --require-secrets -- "$chart" || true
    for kind_name in "Deployment release-name-executor-sidecar" "Service release-name-executor-sidecar-workers" \
        "NetworkPolicy release-name-executor-sidecar" "Secret release-name-executor-sidecar-auth" \
        "ServiceAccount release-name-executor-sidecar"; do
        has_doc $kind_name || fail "default values: no $kind_name"
    done
    # Off by default: the scheduler, HPA, quota, Ingress.
    grep -qE '^kind: (HorizontalPodAutoscaler|ResourceQuota|Ingress|ConfigMap)$' "$out" && fail "default values render an optional object"
    # The injected command, exactly (the runc pod test runs what is rendered).
    grep -qF -- '- /pm/pm-executor' "$out" || fail "default values: no wrapped command"
    # Release name and namespace reach the names and the discovery DNS name.
    render_and_check "release ocr in namespace jobs" --require-secrets --namespace jobs -- "$chart" --name ocr -n jobs --set scheduler.enabled=true || true
    grep -qF '"dns": "ocr-executor-sidecar-workers.jobs.svc.cluster.local"' "$out" || fail "scheduler dns name is not the headless Service in namespace jobs"
    # Executors on TLS: the scheduler verifies them with the Secret's CA, by the headless
    # Service's name unless serverName says otherwise.
    render_and_check "executor tls with scheduler" -- "$chart" --set scheduler.enabled=true \
        --set executor.auth.mode=tls --set executor.auth.existingSecret=pm-tls || true
    grep -qF -- '- --executor-tls-ca' "$out" || fail "executor tls: the scheduler has no --executor-tls-ca"
    grep -qF -- '- "release-name-executor-sidecar-workers.default.svc.cluster.local"' "$out" ||
        fail "executor tls: the scheduler does not verify the headless Service's name"
    grep -qF 'path: executor-ca.crt' "$out" || fail "executor tls: the CA is not mounted"
    # The notes render.
    "$here/render.sh" "$chart" --notes >"$TEST_TMPDIR/notes" 2>&1 || fail "NOTES.txt: $(cat "$TEST_TMPDIR/notes")"
    grep -q "wget on port 50051" "$TEST_TMPDIR/notes" || fail "NOTES.txt does not list the executors: $(cat "$TEST_TMPDIR/notes")"
    ;;
ci)
    n=0
    for f in "$chart"/ci/*.yaml; do
        render_and_check "ci/$(basename "$f")" -- "$chart" -f "$f" || true
        n=$((n + 1))
    done
    [ $n -ge 3 ] || fail "only $n ci examples"
    ;;
bad)
    n=0
    for f in "$here"/bad/*.yaml; do
        n=$((n + 1))
        want=$(sed -n 's/^# expect: //p' "$f")
        [ -n "$want" ] || { fail "$f has no '# expect:' line"; continue; }
        if "$here/render.sh" "$chart" -f "$f" >/dev/null 2>"$TEST_TMPDIR/err"; then
            fail "bad/$(basename "$f") was accepted"
        elif ! grep -qF -- "$want" "$TEST_TMPDIR/err"; then
            fail "bad/$(basename "$f"): the error does not say \"$want\": $(cat "$TEST_TMPDIR/err")"
        else
            echo "ok bad/$(basename "$f"): $(grep -F -- "$want" "$TEST_TMPDIR/err" | head -1)"
        fi
    done
    [ $n -ge 5 ] || fail "only $n bad values files"
    # --set goes through the same schema.
    if "$here/render.sh" "$chart" --set replicaCount=-3 >/dev/null 2>"$TEST_TMPDIR/err"; then
        fail "--set replicaCount=-3 was accepted"
    else
        grep -qF "replicaCount: -3 is less than the minimum of 0" "$TEST_TMPDIR/err" || fail "--set replicaCount=-3: $(cat "$TEST_TMPDIR/err")"
    fi
    ;;
library)
    render_and_check "library consumer" --require-secrets -- "$here/testdata/consumer" || true
    has_doc Deployment release-name-textapp || fail "the consumer's Deployment is missing"
    has_doc Deployment release-name-executor-sidecar && fail "deployWorker=false still renders the chart's worker Deployment"
    has_doc Service release-name-executor-sidecar-workers || fail "the headless Service is missing in library mode"
    grep -qF '/usr/local/bin/ocr-server' "$out" || fail "the consumer's own command is not wrapped"
    grep -qF 'image: "registry.example.com/pm/pm-executor:0.1.0"' "$out" || fail "the init container does not use the consumer's executor image"
    ;;
*)
    echo "unknown case $case_"
    exit 2
    ;;
esac

if [ $failures -ne 0 ]; then
    echo "$failures failure(s)"
    exit 1
fi
echo "PASS $case_"

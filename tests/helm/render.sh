#!/bin/bash
# Renders a Helm chart like `helm template`, without helm: builds the Go renderer in render/
# (Helm's engine: text/template + sprig) once into a cache directory, validates the values
# against the chart's values.schema.json (python3-jsonschema, as Helm does before rendering),
# then prints the manifests on stdout. Errors go to stderr; exit 1 on bad values or a template
# error, 2 on a usage error.
#
#   tests/helm/render.sh CHART_DIR [-f VALUES]... [--set K=V]... [--set-string K=V]...
#                        [--name RELEASE] [-n NAMESPACE] [-s templates/FILE]... [--notes]
#                        [--skip-schema-validation]
#
# Works from any shell (needs golang-go, golang-github-masterminds-sprig-dev,
# golang-gopkg-yaml.v2-dev, python3-yaml, python3-jsonschema). The binary is cached in
# $PM_HELM_RENDER_CACHE, default ${XDG_CACHE_HOME:-$HOME/.cache}/pm-helm-render, keyed by the
# hash of the renderer's source, so an edited renderer is rebuilt.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
if [ $# -eq 0 ] || [ "$1" = "-h" ] || [ "$1" = "--help" ]; then
    sed -n '2,17p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'
    [ $# -eq 0 ] && exit 2 || exit 0
fi

cache=${PM_HELM_RENDER_CACHE:-${XDG_CACHE_HOME:-${HOME:-/tmp}/.cache}/pm-helm-render}
hash=$(cat "$here/render/main.go" | sha256sum | cut -c1-16)
bin=$cache/helmrender-$hash
if [ ! -x "$bin" ]; then
    mkdir -p "$cache"
    tmp=$(mktemp -d "$cache/build.XXXXXX")
    trap 'rm -rf "$tmp"' EXIT
    cp "$here/render/main.go" "$tmp/"
    (cd "$tmp" && GO111MODULE=off GOPATH=/usr/share/gocode GOCACHE="$cache/gocache" GOFLAGS= \
        go build -o helmrender .) >&2
    mv -f "$tmp/helmrender" "$bin" # atomic: concurrent builds just replace each other
fi

args=()
validate=1
for a in "$@"; do
    if [ "$a" = "--skip-schema-validation" ]; then validate=0; else args+=("$a"); fi
done

if [ $validate = 1 ]; then
    dump=$(mktemp)
    trap 'rm -f "$dump"; rm -rf "${tmp:-}"' EXIT
    "$bin" --dump-values "${args[@]}" >"$dump"
    if ! /usr/bin/python3 "$here/helmcheck.py" values "$dump" >&2; then
        exit 1
    fi
fi
exec "$bin" "${args[@]}"

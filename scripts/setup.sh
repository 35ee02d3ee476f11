#!/usr/bin/env bash
# Installs the Debian packages the build, the demo and the tests need (idempotent; needs root).
set -euo pipefail
pkgs=(
  bazel-bootstrap build-essential pkg-config
  libgrpc-dev protobuf-compiler protobuf-c-compiler libprotobuf-c-dev nanopb libnanopb-dev
  libseccomp-dev libcap-dev libsqlite3-dev sqlite3
  python3-grpcio python3-protobuf busybox-static procps wget
  golang-go golang-github-masterminds-sprig-dev golang-gopkg-yaml.v3-dev python3-jsonschema python3-yaml
  umoci skopeo runc iproute2
)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "setup: installing ${missing[*]}" >&2
  sudo_cmd=()
  [ "$(id -u)" -eq 0 ] || sudo_cmd=(sudo)
  "${sudo_cmd[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

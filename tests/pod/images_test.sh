#!/usr/bin/env bash
# The container images as scripts/build-images.sh builds them from the prebuilt static binaries:
# both OCI layouts exist and skopeo reads them; the executor image holds /pm-executor and nothing
# else (no shell, no libc), runs as 65532:65532 with /pm-executor as its entrypoint; the scheduler
# image holds /pm-scheduler and its data directory owned by 65532, declared a volume; the same
# binaries give the same digests twice; and the executor image's binary is the static
# pm-executor, byte for byte. Checked here independently of the script's own checks.
set -euo pipefail

fail() {
    echo "FAIL: $*" >&2
    exit 1
}

root="${TEST_SRCDIR:-}/${TEST_WORKSPACE:-pm}"
[ -n "${TEST_SRCDIR:-}" ] || fail "run me with bazel test //tests/pod:images_test"
script="$root/scripts/build-images.sh"
[ -x "$script" ] || fail "missing $script"
for b in executor/pm-executor-static scheduler/pm-scheduler-static; do
    [ -f "$root/$b" ] || fail "missing $root/$b"
done
for tool in umoci skopeo python3; do
    command -v "$tool" >/dev/null || fail "$tool not found (Debian: umoci, skopeo; scripts/setup.sh installs them)"
done

tmp="$(mktemp -d "${TEST_TMPDIR:-/tmp}/images.XXXXXX")"
trap 'rm -rf "$tmp"' EXIT

# Twice, to compare digests; a usage error first, which must be refused.
if "$script" --bin-dir "$root" >/dev/null 2>&1; then
    fail "build-images.sh without an output directory should fail"
fi
if "$script" --bin-dir "$tmp/nowhere" "$tmp/x" >/dev/null 2>&1; then
    fail "build-images.sh with a --bin-dir lacking the binaries should fail"
fi
SOURCE_DATE_EPOCH=1700000000 "$script" --bin-dir "$root" --tag t1 --version 1.2.3 "$tmp/a" ||
    fail "build-images.sh failed"
SOURCE_DATE_EPOCH=1700000000 "$script" --bin-dir "$root" --tag t1 --version 1.2.3 "$tmp/b" \
    >/dev/null || fail "build-images.sh failed the second time"

for name in pm-executor pm-scheduler; do
    skopeo inspect "oci:$tmp/a/$name:t1" >"$tmp/$name.json" || fail "skopeo inspect $name"
    skopeo inspect --config "oci:$tmp/a/$name:t1" >"$tmp/$name.config.json" ||
        fail "skopeo inspect --config $name"
    a="$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["Digest"])' "$tmp/$name.json")"
    b="$(skopeo inspect "oci:$tmp/b/$name:t1" | python3 -c 'import json,sys; print(json.load(sys.stdin)["Digest"])')"
    [ "$a" = "$b" ] || fail "$name: two builds of the same binaries differ ($a, $b)"
done

/usr/bin/python3 - "$tmp" "$root" <<'EOF' || fail "image contents"
import hashlib, io, json, os, sys, tarfile
tmp, root = sys.argv[1:3]
errors = []

def layer_members(name):
    ins = json.load(open(f"{tmp}/{name}.json"))
    if len(ins["Layers"]) != 1:
        errors.append(f"{name}: {len(ins['Layers'])} layers, want 1")
    digest = ins["Layers"][0].split(":")[1]
    tf = tarfile.open(f"{tmp}/a/{name}/blobs/sha256/{digest}")
    return tf, {m.name.lstrip("./").rstrip("/"): m for m in tf.getmembers()} 

def check_config(name, entry, extra):
    ins = json.load(open(f"{tmp}/{name}.json"))
    cfg = json.load(open(f"{tmp}/{name}.config.json"))["config"]
    want = {"Entrypoint": [entry], "User": "65532:65532"}
    want.update(extra)
    for k, v in want.items():
        if cfg.get(k) != v:
            errors.append(f"{name}: config {k} is {cfg.get(k)!r}, want {v!r}")
    if ins.get("Os") != "linux" or not ins.get("Architecture"):
        errors.append(f"{name}: os/architecture {ins.get('Os')}/{ins.get('Architecture')}")
    labels = cfg.get("Labels") or {}
    if labels.get("org.opencontainers.image.version") != "1.2.3":
        errors.append(f"{name}: version label {labels.get('org.opencontainers.image.version')!r}")
    if labels.get("org.opencontainers.image.title") != name:
        errors.append(f"{name}: title label {labels.get('org.opencontainers.image.title')!r}")

# The executor image: the binary alone, byte for byte, executable, root-owned (so the non-root
# user cannot replace it); nothing a shell could be.
tf, members = layer_members("pm-executor")
names = set(members) - {""}
if names != {"pm-executor"}:
    errors.append(f"pm-executor image holds {sorted(names)}, want only pm-executor")
m = members.get("pm-executor")
if m:
    data = tf.extractfile(m).read()
    want = open(f"{root}/executor/pm-executor-static", "rb").read()
    if hashlib.sha256(data).digest() != hashlib.sha256(want).digest():
        errors.append("pm-executor image: /pm-executor is not the static pm-executor")
    if m.mode & 0o777 != 0o755 or m.uid != 0:
        errors.append(f"pm-executor image: /pm-executor mode {oct(m.mode)} uid {m.uid}")
    if b"ld-linux" in data[:4096]:
        errors.append("pm-executor image: the binary names a dynamic loader")
for shell in ("bin/sh", "bin/busybox", "bin/bash"):
    if shell in members:
        errors.append(f"pm-executor image has {shell}")
check_config("pm-executor", "/pm-executor", {})

# The scheduler image: the binary and its data directory, writable by 65532 only.
tf, members = layer_members("pm-scheduler")
names = set(members) - {""}
if names != {"pm-scheduler", "var", "var/lib", "var/lib/pm"}:
    errors.append(f"pm-scheduler image holds {sorted(names)}")
d = members.get("var/lib/pm")
if d is not None and os.geteuid() == 0 and (d.uid, d.gid, d.mode & 0o7777) != (65532, 65532, 0o700):
    errors.append(f"pm-scheduler image: /var/lib/pm is {d.uid}:{d.gid} {oct(d.mode)}, "
                  "want 65532:65532 0700")
check_config("pm-scheduler", "/pm-scheduler",
             {"Volumes": {"/var/lib/pm": {}}, "WorkingDir": "/var/lib/pm"})
env = json.load(open(f"{tmp}/pm-scheduler.config.json"))["config"].get("Env") or []
if "PM_DB=/var/lib/pm/pm-scheduler.db" not in env:
    errors.append(f"pm-scheduler image: Env {env} lacks PM_DB=/var/lib/pm/pm-scheduler.db")

for e in errors:
    print("FAIL:", e, file=sys.stderr)
sys.exit(1 if errors else 0)
EOF
echo PASS

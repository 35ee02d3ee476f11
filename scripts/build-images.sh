#!/usr/bin/env bash
# Builds the two container images as OCI image layouts without Docker: OUT/pm-executor (the fully
# static pm-executor alone, at /pm-executor) and OUT/pm-scheduler (the static pm-scheduler and its
# data directory /var/lib/pm), with umoci, then checks each with skopeo inspect (entrypoint, user,
# architecture, layer count, labels) and lists its layer to prove nothing else got in. The same
# images as images/*/Dockerfile, for machines without Docker; tests/pod uses them.
#
#   scripts/build-images.sh [--bin-dir DIR] [--tag TAG] [--version V] OUT
#
# Without --bin-dir it runs `bazel build -c opt //executor:pm-executor-static
# //scheduler:pm-scheduler-static` ($BAZEL, default "bazel"; $BAZEL_FLAGS are added to build and
# info). With --bin-dir it takes prebuilt binaries from DIR: DIR/pm-executor-static or
# DIR/executor/pm-executor-static, and the same for pm-scheduler-static (a Bazel runfiles tree
# works as it is). Push a layout with e.g. `skopeo copy oci:OUT/executor:TAG docker://REGISTRY/..`.
# As root the files get their real owners (/var/lib/pm is 65532's); otherwise umoci runs
# --rootless and /var/lib/pm is made world-writable (sticky) instead, with a warning.
set -euo pipefail

usage() {
    sed -n '8p' "$0" | sed 's/^# *//' >&2
    exit 2
}
die() {
    echo "build-images: $*" >&2
    exit 1
}

bin_dir=""
tag="latest"
version=""
out=""
while [ $# -gt 0 ]; do
    case "$1" in
    --bin-dir) bin_dir="${2:?--bin-dir needs a directory}"; shift 2 ;;
    --tag) tag="${2:?--tag needs a value}"; shift 2 ;;
    --version) version="${2:?--version needs a value}"; shift 2 ;;
    -h | --help) usage ;;
    -*) echo "build-images: unknown flag $1" >&2; usage ;;
    *) [ -z "$out" ] || usage; out="$1"; shift ;;
    esac
done
[ -n "$out" ] || usage
[[ "$tag" =~ ^[A-Za-z0-9_][A-Za-z0-9._-]{0,127}$ ]] || die "bad --tag '$tag' (an OCI tag: letters, digits, . _ -)"

for tool in umoci skopeo python3 tar; do
    command -v "$tool" >/dev/null || die "$tool not found (Debian: apt-get install umoci skopeo python3)"
done

here="$(cd "$(dirname "$0")/.." && pwd)"
if [ -z "$version" ]; then
    version="$(git -C "$here" describe --always --dirty 2>/dev/null || echo dev)"
fi
# One timestamp for every file, layer and history entry, so the same binaries give the same
# digests: SOURCE_DATE_EPOCH if set, else the last commit's time.
epoch="${SOURCE_DATE_EPOCH:-$(git -C "$here" log -1 --format=%ct 2>/dev/null || echo 0)}"
created="$(date -u -d "@$epoch" +%Y-%m-%dT%H:%M:%SZ)"

# ---- the binaries ----
find_bin() { # NAME SUBDIR: prints the path of NAME under bin_dir
    local f
    for f in "$bin_dir/$1" "$bin_dir/$2/$1"; do
        if [ -f "$f" ]; then
            echo "$f"
            return 0
        fi
    done
    die "no $1 in $bin_dir (looked for $bin_dir/$1 and $bin_dir/$2/$1)"
}
if [ -z "$bin_dir" ]; then
    # Both are word lists on purpose, e.g. BAZEL="bazel --output_base=/tmp/ob".
    read -r -a bazel_cmd <<<"${BAZEL:-bazel}"
    read -r -a bazel_flags <<<"${BAZEL_FLAGS:-}"
    (cd "$here" && "${bazel_cmd[@]}" build -c opt "${bazel_flags[@]}" \
        //executor:pm-executor-static //scheduler:pm-scheduler-static) ||
        die "bazel build of the static binaries failed"
    bin_dir="$(cd "$here" && "${bazel_cmd[@]}" info -c opt "${bazel_flags[@]}" bazel-bin 2>/dev/null)" ||
        die "bazel info bazel-bin failed"
fi
executor_bin="$(find_bin pm-executor-static executor)"
scheduler_bin="$(find_bin pm-scheduler-static scheduler)"
for b in "$executor_bin" "$scheduler_bin"; do
    # A dynamic binary would start on the build machine and die in the image ("no such file").
    if head -c 4096 "$b" | grep -q "ld-linux"; then
        die "$b names a dynamic loader: it is not fully static"
    fi
done

case "$(uname -m)" in
x86_64) arch=amd64 ;;
aarch64) arch=arm64 ;;
armv7l | armv6l) arch=arm ;;
*) arch="$(uname -m)" ;;
esac

rootless=()
if [ "$(id -u)" != 0 ]; then
    rootless=(--rootless)
    echo "build-images: not root: umoci runs --rootless; /var/lib/pm will be mode 1777, not owned by 65532" >&2
fi

mkdir -p "$out"
out="$(cd "$out" && pwd)"
work="$(mktemp -d "${TMPDIR:-/tmp}/build-images.XXXXXX")"
trap 'rm -rf "$work"' EXIT

# build_image NAME ENTRYPOINT DESCRIPTION STAGE_FN [config flags...]: a one-layer image at OUT/NAME.
# STAGE_FN fills the bundle's rootfs; the layer is made by umoci repack, the config set after it
# (repack leaves out paths under Config.Volumes, so the volume must be declared afterwards).
build_image() {
    local name="$1" entry="$2" desc="$3" stage="$4"
    shift 4
    local layout="$out/$name" image="$out/$name:$tag" bundle="$work/$name.bundle"
    rm -rf "$layout"
    umoci init --layout "$layout"
    umoci new --image "$image"
    umoci unpack "${rootless[@]}" --image "$image" "$bundle"
    "$stage" "$bundle/rootfs"
    # Every file gets the same mtime: the layer's bytes depend on the binaries only.
    find "$bundle/rootfs" -exec touch -h -d "@$epoch" {} +
    umoci repack --image "$image" --history.created "$created" \
        --history.created_by "scripts/build-images.sh ($name)" "$bundle"
    umoci config --image "$image" --created "$created" --history.created "$created" \
        --history.created_by "scripts/build-images.sh (config)" \
        --os linux --architecture "$arch" \
        --config.user 65532:65532 --config.entrypoint "$entry" \
        --config.label "org.opencontainers.image.title=$name" \
        --config.label "org.opencontainers.image.description=$desc" \
        --config.label "org.opencontainers.image.version=$version" \
        --config.label "org.opencontainers.image.created=$created" \
        "$@"
    umoci gc --layout "$layout"
}

stage_executor() {
    install -m 0755 "$executor_bin" "$1/pm-executor"
}
stage_scheduler() {
    install -m 0755 "$scheduler_bin" "$1/pm-scheduler"
    mkdir -p "$1/var/lib/pm"
    if [ "$(id -u)" = 0 ]; then
        chown 65532:65532 "$1/var/lib/pm"
        chmod 0700 "$1/var/lib/pm"
    else
        chmod 1777 "$1/var/lib/pm"
    fi
}

build_image pm-executor /pm-executor "pm gRPC command executor, injected into app containers" \
    stage_executor
build_image pm-scheduler /pm-scheduler "pm pipeline scheduler (gRPC, SQLite store)" \
    stage_scheduler \
    --config.env PM_DB=/var/lib/pm/pm-scheduler.db --config.env SQLITE_TMPDIR=/var/lib/pm \
    --config.workingdir /var/lib/pm --config.volume /var/lib/pm --config.exposedports 7070/tcp

# ---- checks: what a registry and a runtime will see ----
# check_image NAME ENTRYPOINT FILES...: FILES is the exact list of the layer's entries.
check_image() {
    local name="$1" entry="$2"
    shift 2
    local layout="$out/$name"
    skopeo inspect "oci:$layout:$tag" >"$work/$name.inspect.json" ||
        die "skopeo inspect oci:$layout:$tag failed"
    skopeo inspect --config "oci:$layout:$tag" >"$work/$name.config.json" ||
        die "skopeo inspect --config oci:$layout:$tag failed"
    # The layer's file list, from the blob the manifest names.
    local layer
    layer="$(python3 -c 'import json,sys; l=json.load(open(sys.argv[1]))["Layers"]; print(l[0].split(":")[1] if len(l)==1 else "")' \
        "$work/$name.inspect.json")"
    [ -n "$layer" ] || die "$name: expected exactly one layer"
    tar -tzf "$layout/blobs/sha256/$layer" >"$work/$name.files" || die "$name: layer $layer is not a gzip tar"
    python3 - "$name" "$arch" "$entry" "$version" "$work/$name.inspect.json" "$work/$name.config.json" \
        "$work/$name.files" "$@" <<'EOF' || die "$name: image check failed"
import json, sys
name, arch, entry, version, inspect, config, files = sys.argv[1:8]
want_files = set(sys.argv[8:])
ins = json.load(open(inspect))
cfg = json.load(open(config))
c = cfg.get("config", {})
errors = []
def expect(what, got, want):
    if got != want:
        errors.append(f"{what} is {got!r}, want {want!r}")
expect("architecture", ins.get("Architecture"), arch)
expect("os", ins.get("Os"), "linux")
expect("layer count", len(ins.get("Layers") or []), 1)
expect("entrypoint", c.get("Entrypoint"), [entry])
expect("user", c.get("User"), "65532:65532")
labels = c.get("Labels") or {}
expect("title label", labels.get("org.opencontainers.image.title"), name)
expect("version label", labels.get("org.opencontainers.image.version"), version)
got_files = {f.lstrip("./").rstrip("/") for f in open(files).read().split("\n")} - {""}
if got_files != want_files:
    errors.append(f"layer holds {sorted(got_files)}, want {sorted(want_files)}")
if errors:
    for e in errors:
        print(f"build-images: {name}: {e}", file=sys.stderr)
    sys.exit(1)
print(f"{name}: ok: {arch}, entrypoint {c['Entrypoint']}, user {c['User']}, 1 layer: {sorted(got_files)}")
EOF
}

check_image pm-executor /pm-executor pm-executor
check_image pm-scheduler /pm-scheduler pm-scheduler var var/lib var/lib/pm
python3 -c 'import json,sys; c=json.load(open(sys.argv[1]))["config"]; sys.exit(0 if "/var/lib/pm" in (c.get("Volumes") or {}) else 1)' \
    "$work/pm-scheduler.config.json" || die "pm-scheduler: /var/lib/pm is not declared a volume"

echo "images in $out: oci:$out/pm-executor:$tag oci:$out/pm-scheduler:$tag (version $version)"

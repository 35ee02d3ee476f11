#!/bin/sh
# The fully static pm-executor must run in a container that holds nothing else: this test builds a
# directory with only /pm-executor, /bin/sh and /bin/busybox (Debian's busybox-static) and
# /dev/null, chroots into it, serves on loopback, and runs a step there through the Python test
# client from outside. It needs root (chroot, mknod); without root it fails rather than skips.
set -eu

fail() {
    echo "FAIL: $*" >&2
    exit 1
}

if [ "$(id -u)" != 0 ]; then
    fail "static_chroot_test needs root (chroot and mknod); run bazel test as root"
fi

root="${TEST_SRCDIR:-$PWD/..}/${TEST_WORKSPACE:-pm}"
[ -d "$root/executor" ] || root="$PWD"
exe="$root/executor/pm-executor-static"
client="$root/tests/pmtest.py"
busybox=/bin/busybox

[ -x "$exe" ] || fail "missing $exe (//executor:pm-executor-static)"
[ -x "$busybox" ] || fail "missing $busybox (install Debian's busybox-static)"
[ -r "$client" ] || fail "missing $client"
chroot_bin="$(PATH="$PATH:/usr/sbin:/sbin" command -v chroot)" || fail "no chroot command"

# The binary must need no dynamic loader at all.
if head -c 4096 "$exe" | grep -q "ld-linux"; then
    fail "$exe names a dynamic loader: it is not fully static"
fi

tmp="${TEST_TMPDIR:-/tmp}"
jail="$(mktemp -d "$tmp/chroot.XXXXXX")"
log="${TEST_UNDECLARED_OUTPUTS_DIR:-$tmp}/chroot-executor.log"
pid=""

cleanup() {
    if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
        kill -KILL "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    fi
    rm -rf "$jail"
}
trap cleanup EXIT INT TERM

mkdir -p "$jail/bin" "$jail/dev"
cp "$exe" "$jail/pm-executor"
cp "$busybox" "$jail/bin/busybox"
ln -s busybox "$jail/bin/sh"
mknod -m 666 "$jail/dev/null" c 1 3 || fail "mknod /dev/null failed (is /tmp mounted nodev?)"

port="$(/usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
addr="127.0.0.1:$port"

# env -i: the jail has no /etc, no /usr; only what the executor brings and PATH for busybox.
env -i PATH=/bin "$chroot_bin" "$jail" /pm-executor --listen "$addr" --name chroot >"$log" 2>&1 &
pid=$!

if ! /usr/bin/python3 -B "$client" wait-healthy "$addr" 30; then
    cat "$log" >&2
    fail "the chrooted executor did not become healthy"
fi

out="$(/usr/bin/python3 -B "$client" run "$addr" 'echo hello-from-chroot; ls /')" || {
    cat "$log" >&2
    fail "Run in the chroot failed (status $?): $out"
}
echo "$out"

echo "$out" | grep -qx "hello-from-chroot" || fail "no greeting in: $out"
for entry in bin dev pm-executor; do
    echo "$out" | grep -qx "$entry" || fail "ls / did not list $entry: $out"
done
# Nothing of the host leaks in.
for entry in usr etc proc; do
    if echo "$out" | grep -qx "$entry"; then
        fail "ls / listed $entry: the step did not run inside the chroot"
    fi
done

kill -TERM "$pid"
status=0
wait "$pid" || status=$?
pid=""
[ "$status" = 0 ] || {
    cat "$log" >&2
    fail "executor exited with $status after SIGTERM"
}
echo "PASS"

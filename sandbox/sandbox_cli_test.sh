#!/bin/bash
# End-to-end tests of the sandbox through pm-sandbox (which spawns exactly as the executor does)
# and try_syscall. Tables: every refused syscall gives EPERM under default and strict, and not
# EPERM unconfined with every capability kept, so the filter is what refuses it; ordinary tools
# give the same output under default and strict as without a sandbox, as root and as uid 65534.
# Then: capability sets and no_new_privs seen from inside, a setuid-root binary that cannot gain
# root, a fork bomb contained by nproc, rlimits in /proc/self/limits and enforced, SIGSYS reported.
# Needs root (uid switches, chown of a setuid binary); fails rather than skips without it.
set -u

fail_count=0
pass_count=0
fail() {
    echo "FAIL: $*" >&2
    fail_count=$((fail_count + 1))
}
pass() {
    pass_count=$((pass_count + 1))
}
check_eq() { # description expected actual
    if [ "$2" == "$3" ]; then pass; else fail "$1: expected [$2], got [$3]"; fi
}

if [ "$(id -u)" != 0 ]; then
    echo "FAIL: sandbox_cli_test needs root (uid switches, setuid binary); run bazel test as root" >&2
    exit 1
fi

root="${TEST_SRCDIR:-$PWD/..}/${TEST_WORKSPACE:-pm}"
[ -d "$root/sandbox" ] || root="$PWD"
# Copies in a world-readable directory: uid 65534 cannot reach Bazel's output tree under /root.
work="$(mktemp -d /tmp/sbx-test.XXXXXX)"
bomb_pgid=""
cleanup() {
    if [ -n "$bomb_pgid" ]; then kill -KILL -- "-$bomb_pgid" 2>/dev/null; fi
    rm -rf "$work"
}
trap cleanup EXIT
chmod 755 "$work"
cp "$root/sandbox/pm-sandbox" "$root/sandbox/try_syscall" "$work/"
SBX="$work/pm-sandbox"
TRY="$work/try_syscall"
export PATH=/usr/local/bin:/usr/bin:/bin

# ---------------------------------------------------------------------------------------------
# 1. Refused system calls. Each line: NAME [ARGS]. Arguments are harmless (see try_syscall.c).
denied=(
    "acct" "add_key" "adjtimex" "bpf" "chroot" "clock_adjtime" "clock_settime"
    "clone $((0x00020000 | 0x00010000))" "clone $((0x04000000 | 0x00010000))"
    "clone $((0x08000000 | 0x00010000))" "clone $((0x10000000 | 0x00010000))"
    "clone $((0x20000000 | 0x00010000))" "clone $((0x40000000 | 0x00010000))"
    "clone $((0x02000000 | 0x00010000))"
    "create_module" "delete_module" "fanotify_init" "finit_module" "fsconfig" "fsmount" "fsopen"
    "fspick" "get_kernel_syms" "get_mempolicy" "init_module" "io_uring_enter"
    "io_uring_register" "io_uring_setup" "ioperm" "iopl" "kcmp" "kexec_file_load" "kexec_load"
    "keyctl" "lookup_dcookie" "mbind" "migrate_pages" "mount" "mount_setattr" "move_mount"
    "move_pages" "name_to_handle_at" "nfsservctl" "open_by_handle_at" "open_tree"
    "perf_event_open" "personality 4" "personality $((0x0040000))" "personality $((0x0400000))"
    "personality 0x100000000" "pidfd_getfd" "pivot_root" "process_madvise" "process_vm_readv"
    "process_vm_writev" "ptrace" "query_module" "quotactl" "quotactl_fd" "reboot" "request_key"
    "set_mempolicy" "setdomainname" "sethostname" "setns" "settimeofday" "swapoff" "swapon"
    "_sysctl" "sysfs" "syslog" "umount2" "unshare" "uselib" "userfaultfd" "ustat" "vhangup"
)
# Refused by strict only: sockets of other families, ioctls off its list.
strict_only=("socket" "ioctl 0 $((0x5412))" "ioctl 0 $((0x541C))")
# Allowed by both.
allowed=("getpid" "personality 0" "personality 8" "personality $((0x20008))"
    "personality $((0xffffffff))" "clone $((0x00010000))")

try() { # profile name [args]: prints what the call returned ("ok", "EPERM"...) or "unknown"
    local profile="$1"
    shift
    # setsid: vhangup unfiltered hangs up the controlling terminal, so give it none.
    setsid "$SBX" --profile "$profile" --keep-cap all -- "$TRY" "$@" 2>&1
}

for entry in "${denied[@]}" "${strict_only[@]}" "${allowed[@]}"; do
    # shellcheck disable=SC2086
    set -- $entry
    base=$(try unconfined "$@")
    if [ "$base" == "unknown" ]; then
        continue # not on this architecture
    fi
    if [ "$base" == "EPERM" ]; then
        fail "unconfined with every capability: $entry gives EPERM; the test cannot tell the filter's EPERM apart"
        continue
    fi
    is_denied=0
    for d in "${denied[@]}"; do [ "$d" == "$entry" ] && is_denied=1; done
    is_strict_only=0
    for d in "${strict_only[@]}"; do [ "$d" == "$entry" ] && is_strict_only=1; done
    for profile in default strict; do
        got=$(try "$profile" "$@")
        if [ $is_denied == 1 ] || { [ $is_strict_only == 1 ] && [ $profile == strict ]; }; then
            check_eq "$profile: $entry" EPERM "$got"
        elif [ "$got" != "EPERM" ]; then
            pass
        else
            fail "$profile: $entry refused (EPERM), unconfined gives $base"
        fi
    done
done
# clone3 answers ENOSYS so that glibc falls back to clone, whose flags the filter can see.
check_eq "default: clone3" ENOSYS "$(try default clone3)"
check_eq "strict: clone3" ENOSYS "$(try strict clone3)"
check_eq "unconfined: clone3" EINVAL "$(try unconfined clone3)"

# The same refusals hold for a non-root uid (the kernel would refuse many anyway; the filter
# must still be there).
for name in unshare mount ptrace keyctl; do
    check_eq "default as 65534: $name" EPERM "$("$SBX" --uid 65534 --gid 65534 -- "$TRY" $name)"
done

# ---------------------------------------------------------------------------------------------
# 2. SIGSYS: a system call through another ABI kills the process, and pm-sandbox says so.
for profile in default strict; do
    out=$("$SBX" --profile "$profile" -- "$TRY" x32_getpid 2>&1)
    rc=$?
    check_eq "$profile: x32 syscall exit status" 159 "$rc"
    case "$out" in *"killed by SIGSYS"*) pass ;; *) fail "$profile: x32 kill not reported: $out" ;; esac
done
check_eq "unconfined: x32 syscall" ENOSYS "$("$SBX" --profile unconfined -- "$TRY" x32_getpid)"

# ---------------------------------------------------------------------------------------------
# 3. Ordinary programs: same output and status under default and strict as with no sandbox.
printf 'line three\nline one\nline two\nline one\n' >"$work/in.txt"
cat >"$work/Makefile" <<'EOF'
all: out.txt
	@cat out.txt
out.txt: in.txt
	@sort in.txt > out.txt
EOF
cat >"$work/net.py" <<'EOF'
# Loopback TCP (IPv4, IPv6) and Unix-socket echo servers and clients, threads, a subprocess,
# name resolution and a process pool.
import multiprocessing, socket, subprocess, threading
socket.setdefaulttimeout(20)
def serve(srv):
    c, _ = srv.accept()
    c.sendall(c.recv(100).upper())
    c.close()
for fam, addr in ((socket.AF_INET, ("127.0.0.1", 0)), (socket.AF_INET6, ("::1", 0)),
                  (socket.AF_UNIX, "s.sock")):
    srv = socket.socket(fam, socket.SOCK_STREAM)
    try:
        srv.bind(addr)
    except OSError:
        if fam != socket.AF_INET6:
            raise
        print("no ipv6 here")  # not the sandbox's doing: the plain run prints it too
        continue
    srv.listen(1)
    t = threading.Thread(target=serve, args=(srv,), daemon=True)
    t.start()
    cli = socket.socket(fam, socket.SOCK_STREAM)
    cli.connect(srv.getsockname())
    cli.sendall(b"echo %d" % fam)
    print(cli.recv(100).decode())
    t.join()
    srv.close()
print(socket.getaddrinfo("localhost", 80, socket.AF_INET)[0][4][0])
print(subprocess.run(["echo", "child"], capture_output=True, text=True).stdout.strip())
with multiprocessing.Pool(2) as p:
    print(sum(p.map(abs, range(-5, 5))))
EOF
cat >"$work/http.sh" <<'EOF'
# A loopback HTTP server (python3) and two clients (curl, bash's /dev/tcp).
python3 -c '
import http.server, os
s = http.server.HTTPServer(("127.0.0.1", 0), http.server.SimpleHTTPRequestHandler)
open("port.tmp", "w").write(str(s.server_port)); os.rename("port.tmp", "port")
s.handle_request(); s.handle_request()' 2>/dev/null &
while [ ! -s port ]; do sleep 0.05; done
curl -sS "http://127.0.0.1:$(cat port)/in.txt" | head -1
exec 3<>"/dev/tcp/127.0.0.1/$(cat port)"
printf 'GET /in.txt HTTP/1.0\r\n\r\n' >&3
grep -c line <&3
wait
EOF
# shellcheck disable=SC2016 # expanded by the sh -c that runs each line
progs=(
    'echo hello; printf "%s\n" "$((6 * 7))"'
    'bash -c "shopt -s nullglob; a=(*); echo \${#a[@]} files"'
    'ls -la / >/dev/null && ls'
    'cat in.txt /etc/hostname >/dev/null; cat in.txt'
    'sort in.txt | uniq -c | sort -rn | head -2'
    'wc -l <in.txt; cut -c1-4 in.txt | tr a-z A-Z | head -2; tac in.txt | head -1'
    'grep -rn one . | sort | head -2; sed -n 2p in.txt; awk "{n++} END {print n}" in.txt'
    'gzip -c in.txt >in.gz && gunzip -c in.gz | cmp - in.txt && echo gz-ok'
    'bzip2 -c in.txt | bunzip2 | cmp - in.txt && xz -c in.txt | unxz | cmp - in.txt && echo bz-xz-ok'
    'mkdir -p t/a/b && cp -a in.txt t/a/b/ && tar -czf t.tgz t && rm -rf t && tar -xzf t.tgz && cmp t/a/b/in.txt in.txt && echo tar-ok'
    'ln -s in.txt l && readlink l && mv l l2 && rm l2 && touch -d @0 f && stat -c %Y f && chmod 600 f && find . -name f -perm 600'
    'md5sum in.txt | cut -c1-8; sha256sum in.txt | cut -c1-8; cp in.txt c && cmp c in.txt && echo cp-ok'
    'seq 1 5 | xargs -n2 echo | tail -1; seq 100 | split -l 10 - part && ls part* | wc -l'
    'date -u -d @0 +%Y; env | grep -c "^PATH="; sleep 0.1; timeout 0.2 sleep 5; echo timeout=$?'
    'timeout 0.3 tail -f in.txt | head -1'
    'id -u >/dev/null && uname -s && nproc >/dev/null && df . >/dev/null && du -s . >/dev/null && ps -o pid= -p $$ >/dev/null && echo sys-ok'
    'echo "{\"a\":[1,2]}" | jq -c ".a | add"'
    'perl -e "print 6*7, qq(\n)"; perl -MPOSIX -e "print floor(2.5), qq(\n)"'
    'python3 net.py'
    'bash http.sh'
    'busybox sh -c "echo \$((1 + 2))"; busybox ls in.txt; busybox sort in.txt | busybox head -1'
    'make -s -f Makefile'
    'printf "int main(void){return 42;}" >m.c && cc -o m m.c && ./m; echo cc=$?'
)
run_prog() { # where user prog: runs prog in a fresh copy of the fixtures; prints output and status
    local d
    d="$(mktemp -d "$work/run.XXXXXX")"
    cp "$work/in.txt" "$work/Makefile" "$work/net.py" "$work/http.sh" "$d/"
    local uid=()
    if [ "$2" == nobody ]; then
        chown -R 65534:65534 "$d"
        uid=(--uid 65534 --gid 65534)
    fi
    (
        cd "$d" || exit 99
        if [ "$1" == none ]; then
            if [ "$2" == nobody ]; then
                HOME="$d" timeout -s KILL 60 setpriv --reuid 65534 --regid 65534 --clear-groups \
                    sh -c "$3" 2>&1
            else
                HOME="$d" timeout -s KILL 60 sh -c "$3" 2>&1
            fi
        else
            HOME="$d" timeout -s KILL 60 "$SBX" --profile "$1" "${uid[@]}" -- sh -c "$3" 2>&1
        fi
        echo "status=$?"
    )
    rm -rf "$d"
}
for prog in "${progs[@]}"; do
    for user in root nobody; do
        want=$(run_prog none $user "$prog")
        case "$want" in *status=0) ;; *) fail "$user without sandbox: [$prog] fails: $want"; continue ;; esac
        for profile in default strict; do
            got=$(run_prog $profile $user "$prog")
            check_eq "$profile as $user: [$prog]" "$want" "$got"
        done
    done
done

# ---------------------------------------------------------------------------------------------
# 4. Capabilities and no_new_privs as the command sees them.
status_of() { "$SBX" "$@" -- cat /proc/self/status | grep -E '^(Cap|NoNewPrivs|Seccomp:|Uid|Gid|Groups)' | tr -s '\t ' ' ' | sed 's/ $//'; }
zero="0000000000000000"
for profile in unconfined default strict; do
    seccomp=2
    [ $profile == unconfined ] && seccomp=0
    for ids in "" "--uid 65534 --gid 65534"; do
        # shellcheck disable=SC2086
        got=$(status_of --profile $profile $ids)
        for set in CapInh CapPrm CapEff CapBnd CapAmb; do
            check_eq "$profile $ids: $set" "$set: $zero" "$(echo "$got" | grep "^$set:")"
        done
        check_eq "$profile $ids: NoNewPrivs" "NoNewPrivs: 1" "$(echo "$got" | grep NoNewPrivs)"
        check_eq "$profile $ids: Seccomp" "Seccomp: $seccomp" "$(echo "$got" | grep Seccomp:)"
        if [ -n "$ids" ]; then
            check_eq "$profile: Uid" "Uid: 65534 65534 65534 65534" "$(echo "$got" | grep Uid)"
            check_eq "$profile: Gid" "Gid: 65534 65534 65534 65534" "$(echo "$got" | grep Gid)"
            check_eq "$profile: Groups" "Groups:" "$(echo "$got" | grep Groups)"
        fi
    done
done
# A kept capability is the only one left, for root and (through the ambient set) for a non-root
# uid, and it works: binding a port below 1024 as uid 65534.
got=$(status_of --keep-cap net_bind_service)
for set in CapPrm CapEff CapBnd; do
    check_eq "root keeps net_bind_service: $set" "$set: 0000000000000400" "$(echo "$got" | grep "^$set:")"
done
got=$(status_of --keep-cap NET_BIND_SERVICE --uid 65534 --gid 65534)
for set in CapPrm CapEff CapBnd CapAmb; do
    check_eq "65534 keeps net_bind_service: $set" "$set: 0000000000000400" "$(echo "$got" | grep "^$set:")"
done
bind_low='import socket; s = socket.socket(); s.bind(("127.0.0.1", 1023)); print("bound")'
check_eq "65534 with net_bind_service binds port 1023" bound \
    "$("$SBX" --keep-cap net_bind_service --uid 65534 --gid 65534 -- python3 -c "$bind_low" 2>&1)"
case "$("$SBX" --uid 65534 --gid 65534 -- python3 -c "$bind_low" 2>&1)" in
*PermissionError*) pass ;;
*) fail "65534 without net_bind_service could bind port 1023" ;;
esac

# ---------------------------------------------------------------------------------------------
# 5. A setuid-root binary gains nothing (no_new_privs), checked against a control run without it.
cp /usr/bin/id "$work/suid-id"
chown root:root "$work/suid-id"
chmod 4755 "$work/suid-id"
control=$(setpriv --reuid 65534 --regid 65534 --clear-groups "$work/suid-id" -u)
if [ "$control" != 0 ]; then
    fail "setuid control: $work is mounted nosuid or setpriv failed (euid $control); cannot test"
fi
for profile in unconfined default strict; do
    check_eq "$profile: setuid id as 65534" 65534 \
        "$("$SBX" --profile $profile --uid 65534 --gid 65534 -- "$work/suid-id" -u)"
done
# Nor does a binary with file capabilities: permitted-only ones are not granted, and one that
# would need them effective at once is refused at execve (EPERM: the kernel will not start a
# capability-dumb program without the capabilities it was marked with).
setcap_bin=$(PATH=$PATH:/usr/sbin:/sbin command -v setcap)
if [ -z "$setcap_bin" ]; then
    fail "setcap not found (Debian's libcap2-bin)"
else
    cp /usr/bin/cat "$work/fcap-cat"
    "$setcap_bin" cap_dac_read_search+p "$work/fcap-cat"
    check_eq "file capability (permitted) not granted" "CapPrm: $zero" \
        "$("$SBX" --uid 65534 --gid 65534 -- "$work/fcap-cat" /proc/self/status | grep CapPrm | tr -s '\t' ' ')"
    "$setcap_bin" cap_dac_read_search+ep "$work/fcap-cat"
    out=$("$SBX" --uid 65534 --gid 65534 -- "$work/fcap-cat" /proc/self/status 2>&1)
    check_eq "file capability (effective) refused at exec: status" 126 "$?"
    case "$out" in *"Operation not permitted"*) pass ;; *) fail "fcap exec: $out" ;; esac
fi

# ---------------------------------------------------------------------------------------------
# 6. A fork bomb is contained by nproc. RLIMIT_NPROC counts tasks per real uid and is not
# enforced for root, so the bomb runs as a uid nothing else uses; the test (root) stays healthy.
bomb_uid=61234
has_procs() { pgrep -u "$1" >/dev/null; }
if has_procs $bomb_uid; then
    fail "uid $bomb_uid already has processes; pick another for the fork bomb"
else
    setsid "$SBX" --uid $bomb_uid --gid $bomb_uid --rlimit nproc=20 -- \
        sh -c 'b() { b | b & }; b' >/dev/null 2>&1 &
    bomb_pgid=$!
    max=0
    for _ in $(seq 20); do
        sleep 0.1
        n=$(ps -o pid= -u $bomb_uid | wc -l)
        [ "$n" -gt "$max" ] && max=$n
        # The test itself can still start processes.
        /bin/true || fail "the test could not fork during the bomb"
    done
    if [ "$max" -ge 1 ] && [ "$max" -le 20 ]; then pass; else fail "fork bomb reached $max tasks (nproc=20)"; fi
    # Stop it: everything is in one process group (setsid above).
    for _ in $(seq 50); do
        kill -KILL -- "-$bomb_pgid" 2>/dev/null
        has_procs $bomb_uid || break
        sleep 0.1
    done
    has_procs $bomb_uid && fail "fork bomb processes survived the group kill"
    bomb_pgid=""
    # And a loop of background jobs sees EAGAIN past the limit.
    out=$("$SBX" --uid $bomb_uid --gid $bomb_uid --rlimit nproc=5 -- \
        sh -c 'for i in 1 2 3 4 5 6 7 8 9 10; do sleep 1 & done; wait' 2>&1)
    case "$out" in *"fork"* | *"Resource temporarily unavailable"*) pass ;;
    *) fail "nproc=5 did not stop 10 background jobs: $out" ;; esac
fi

# ---------------------------------------------------------------------------------------------
# 7. rlimits: visible in /proc/self/limits, and enforced.
limits=$("$SBX" --rlimit cpu=7 --rlimit as=1G --rlimit nofile=100 --rlimit nproc=50 \
    --rlimit fsize=1M -- cat /proc/self/limits | tr -s ' ')
check_eq "limits: cpu" "Max cpu time 7 7 seconds" "$(echo "$limits" | grep 'Max cpu time' | sed 's/ $//')"
check_eq "limits: as" "Max address space 1073741824 1073741824 bytes" "$(echo "$limits" | grep 'Max address space' | sed 's/ $//')"
check_eq "limits: nofile" "Max open files 100 100 files" "$(echo "$limits" | grep 'Max open files' | sed 's/ $//')"
check_eq "limits: nproc" "Max processes 50 50 processes" "$(echo "$limits" | grep 'Max processes' | sed 's/ $//')"
check_eq "limits: fsize" "Max file size 1048576 1048576 bytes" "$(echo "$limits" | grep 'Max file size' | sed 's/ $//')"
check_eq "limits: core off by default" "Max core file size 0 0 bytes" "$(echo "$limits" | grep 'Max core' | sed 's/ $//')"
"$SBX" --rlimit fsize=64K -- sh -c "head -c 100000 /dev/zero > '$work/big'" 2>/dev/null
check_eq "fsize enforced (SIGXFSZ)" 153 "$?"
# Soft and hard limits are equal, so the kernel's SIGKILL at the hard limit is what ends it.
"$SBX" --rlimit cpu=1 -- sh -c 'while :; do :; done'
check_eq "cpu enforced (SIGKILL at the hard limit)" 137 "$?"
"$SBX" --rlimit nofile=10 -- python3 -c 'import os; [os.open("/dev/null", 0) for _ in range(20)]' 2>/dev/null
check_eq "nofile enforced" 1 "$?"

# ---------------------------------------------------------------------------------------------
# 8. pm-sandbox's own errors.
"$SBX" --profile nosuch -- true 2>/dev/null
check_eq "unknown profile is a usage error" 2 "$?"
"$SBX" --rlimit nofile=lots -- true 2>/dev/null
check_eq "bad rlimit is a usage error" 2 "$?"
out=$("$SBX" --profile file:/nonexistent.json -- true 2>&1)
check_eq "file profile that cannot load: status" 125 "$?"
case "$out" in *"/nonexistent.json"*) pass ;; *) fail "file profile error does not name the file: $out" ;; esac
"$SBX" -- /nonexistent/cmd 2>/dev/null
check_eq "missing command" 127 "$?"
"$SBX" --uid 65534 -- true 2>/dev/null
check_eq "uid without gid" 125 "$?"

echo "$pass_count passed, $fail_count failed"
[ "$fail_count" == 0 ]

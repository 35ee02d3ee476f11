/*
 * The built-in seccomp profiles. `default` starts from "allow" and refuses, with EPERM, what
 * Docker's default profile refuses a container without extra capabilities: calls that reach
 * kernel-wide state (time, modules, swap, reboot, keyrings, accounting), other processes' memory
 * (ptrace and friends), mounts and namespaces, and large attack surfaces an ordinary tool does not
 * need (bpf, perf, io_uring, userfaultfd). `strict` starts from "refuse" and allows what ordinary
 * command-line tools use: files, processes, pipes, memory, signals, time, polling and
 * AF_UNIX/INET/INET6 sockets. Both kill a process that makes a system call of a foreign
 * architecture (a 32-bit int 0x80 call on x86-64), which a filter for one ABI cannot judge.
 */
#include "sandbox/profiles.h"

#include <errno.h>
#include <linux/netlink.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <termios.h>
#include <linux/fs.h>

const char *const sbx_default_denied[] = {
    /* Kernel keyrings: shared kernel state, and a long record of exploitable bugs. */
    "add_key",
    "keyctl",
    "request_key",
    /* Reading or changing other processes: a command must not reach the executor's memory. */
    "kcmp",
    "pidfd_getfd",
    "process_madvise",
    "process_vm_readv",
    "process_vm_writev",
    "ptrace",
    /* Large attack surfaces no ordinary tool needs. */
    "bpf",
    "io_uring_enter",
    "io_uring_register",
    "io_uring_setup",
    "perf_event_open",
    "userfaultfd",
    /* Mounts, root and namespaces: the container's view of the system is not the command's. */
    "chroot",
    "fsconfig",
    "fsmount",
    "fsopen",
    "fspick",
    "mount",
    "mount_setattr",
    "move_mount",
    "open_tree",
    "pivot_root",
    "setns",
    "umount",
    "umount2",
    "unshare",
    /* Machine-wide state: clocks, modules, swap, reboot, accounting, quotas, names, logs. */
    "acct",
    "adjtimex",
    "clock_adjtime",
    "clock_settime",
    "create_module",
    "delete_module",
    "finit_module",
    "get_kernel_syms",
    "init_module",
    "kexec_file_load",
    "kexec_load",
    "query_module",
    "quotactl",
    "quotactl_fd",
    "reboot",
    "setdomainname",
    "sethostname",
    "settimeofday",
    "stime",
    "swapoff",
    "swapon",
    "syslog",
    "vhangup",
    /* Raw I/O ports. */
    "ioperm",
    "iopl",
    /* File handles open files by inode, around every directory permission on the way. */
    "name_to_handle_at",
    "open_by_handle_at",
    /* Watching the whole file system. */
    "fanotify_init",
    /* NUMA policy: Docker keeps these behind CAP_SYS_NICE; tools that probe them cope. */
    "get_mempolicy",
    "mbind",
    "migrate_pages",
    "move_pages",
    "set_mempolicy",
    /* Obsolete or never implemented: nothing current calls them. */
    "_sysctl",
    "afs_syscall",
    "getpmsg",
    "lookup_dcookie",
    "nfsservctl",
    "putpmsg",
    "security",
    "sysfs",
    "tuxcall",
    "uselib",
    "ustat",
    "vserver",
};
const size_t sbx_default_denied_count = sizeof sbx_default_denied / sizeof sbx_default_denied[0];

const char *const sbx_strict_allowed[] = {
    /* Files and directories. */
    "access",
    "chdir",
    "chmod",
    "chown",
    "close",
    "close_range",
    "copy_file_range",
    "creat",
    "dup",
    "dup2",
    "dup3",
    "faccessat",
    "faccessat2",
    "fadvise64",
    "fallocate",
    "fchdir",
    "fchmod",
    "fchmodat",
    "fchown",
    "fchownat",
    "fcntl",
    "fdatasync",
    "fgetxattr",
    "flistxattr",
    "flock",
    "fremovexattr",
    "fsetxattr",
    "fstat",
    "fstatfs",
    "fsync",
    "ftruncate",
    "futimesat",
    "getcwd",
    "getdents",
    "getdents64",
    "getxattr",
    "inotify_add_watch",
    "inotify_init",
    "inotify_init1",
    "inotify_rm_watch",
    "lchown",
    "lgetxattr",
    "link",
    "linkat",
    "listxattr",
    "llistxattr",
    "lremovexattr",
    "lseek",
    "lsetxattr",
    "lstat",
    "mkdir",
    "mkdirat",
    "mknod",
    "mknodat",
    "newfstatat",
    "open",
    "openat",
    "openat2",
    "pread64",
    "preadv",
    "preadv2",
    "pwrite64",
    "pwritev",
    "pwritev2",
    "read",
    "readahead",
    "readlink",
    "readlinkat",
    "readv",
    "removexattr",
    "rename",
    "renameat",
    "renameat2",
    "rmdir",
    "sendfile",
    "setxattr",
    "splice",
    "stat",
    "statfs",
    "statx",
    "symlink",
    "symlinkat",
    "sync",
    "sync_file_range",
    "syncfs",
    "tee",
    "truncate",
    "umask",
    "unlink",
    "unlinkat",
    "utime",
    "utimensat",
    "utimes",
    "write",
    "writev",
    /* Processes. clone is allowed by an argument rule below; clone3 answers ENOSYS. */
    "arch_prctl",
    "capget",
    "capset",
    "execve",
    "execveat",
    "exit",
    "exit_group",
    "fork",
    "get_robust_list",
    "getcpu",
    "getegid",
    "geteuid",
    "getgid",
    "getgroups",
    "getpgid",
    "getpgrp",
    "getpid",
    "getppid",
    "getpriority",
    "getresgid",
    "getresuid",
    "getrlimit",
    "getrusage",
    "getsid",
    "gettid",
    "getuid",
    "kill",
    "pidfd_open",
    "pidfd_send_signal",
    "prctl",
    "prlimit64",
    "rseq",
    "sched_get_priority_max",
    "sched_get_priority_min",
    "sched_getaffinity",
    "sched_getattr",
    "sched_getparam",
    "sched_getscheduler",
    "sched_rr_get_interval",
    "sched_setaffinity",
    "sched_setattr",
    "sched_setparam",
    "sched_setscheduler",
    "sched_yield",
    "set_robust_list",
    "set_tid_address",
    "setpgid",
    "setpriority",
    "setrlimit",
    "setsid",
    "sysinfo",
    "tgkill",
    "times",
    "tkill",
    "uname",
    "vfork",
    "wait4",
    "waitid",
    /* Credentials. The kernel lets a process without CAP_SETUID/CAP_SETGID only move between
     * the ids it already has (posix_spawn's POSIX_SPAWN_RESETIDS does, for make), and capset
     * only drop capabilities. */
    "setfsgid",
    "setfsuid",
    "setgid",
    "setgroups",
    "setregid",
    "setresgid",
    "setresuid",
    "setreuid",
    "setuid",
    /* Memory. */
    "brk",
    "madvise",
    "membarrier",
    "memfd_create",
    "mincore",
    "mlock",
    "mlock2",
    "mlockall",
    "mmap",
    "mprotect",
    "mremap",
    "msync",
    "munlock",
    "munlockall",
    "munmap",
    /* Pipes, events and futexes. */
    "eventfd",
    "eventfd2",
    "futex",
    "futex_waitv",
    "pipe",
    "pipe2",
    "vmsplice",
    /* Signals and timers. */
    "alarm",
    "getitimer",
    "pause",
    "restart_syscall",
    "rt_sigaction",
    "rt_sigpending",
    "rt_sigprocmask",
    "rt_sigqueueinfo",
    "rt_sigreturn",
    "rt_sigsuspend",
    "rt_sigtimedwait",
    "rt_tgsigqueueinfo",
    "setitimer",
    "sigaltstack",
    "signalfd",
    "signalfd4",
    "timer_create",
    "timer_delete",
    "timer_getoverrun",
    "timer_gettime",
    "timer_settime",
    "timerfd_create",
    "timerfd_gettime",
    "timerfd_settime",
    /* Time. */
    "clock_getres",
    "clock_gettime",
    "clock_nanosleep",
    "gettimeofday",
    "nanosleep",
    "time",
    /* Polling. */
    "epoll_create",
    "epoll_create1",
    "epoll_ctl",
    "epoll_pwait",
    "epoll_pwait2",
    "epoll_wait",
    "poll",
    "ppoll",
    "pselect6",
    "select",
    /* Sockets; socket itself is allowed by an argument rule below. */
    "accept",
    "accept4",
    "bind",
    "connect",
    "getpeername",
    "getsockname",
    "getsockopt",
    "listen",
    "recvfrom",
    "recvmmsg",
    "recvmsg",
    "sendmmsg",
    "sendmsg",
    "sendto",
    "setsockopt",
    "shutdown",
    "socketpair",
    /* Randomness. */
    "getrandom",
};
const size_t sbx_strict_allowed_count = sizeof sbx_strict_allowed / sizeof sbx_strict_allowed[0];

/*
 * Namespace flags of clone(2). CLONE_NEWTIME is left out: clone's low byte is the exit signal,
 * so that bit is only a namespace flag for clone3 and unshare, which are refused whole.
 */
#define NS_FLAGS                                                                                   \
    (CLONE_NEWNS | CLONE_NEWUTS | CLONE_NEWIPC | CLONE_NEWUSER | CLONE_NEWPID | CLONE_NEWNET |     \
     CLONE_NEWCGROUP)

/* clone's flags are its first argument everywhere but on s390, where the stack comes first. */
#if defined(__s390__) || defined(__s390x__)
#define CLONE_FLAGS_ARG 1
#else
#define CLONE_FLAGS_ARG 0
#endif

/*
 * personality(2) values a program may set: PER_LINUX, PER_LINUX32, UNAME26 with either, and
 * 0xffffffff, which only reads the current value. Others change the address-space layout
 * (ADDR_NO_RANDOMIZE turns ASLR off for what the process executes next) or emulate other systems.
 */
static const uint64_t harmless_personalities[] = {0x0, 0x8, 0x20000, 0x20008, 0xffffffff};

/*
 * ioctl requests strict allows: terminal state, non-blocking and close-on-exec flags, bytes
 * readable, reflink copies and file flags. Only the low 32 bits of the request are compared: the
 * kernel's argument is an unsigned int, and callers passing an int sign-extend it.
 */
static const uint32_t strict_ioctls[] = {
    TCGETS,    TCSETS,    TCSETSW,  TCSETSF,  TIOCGWINSZ,   TIOCSWINSZ,
    TIOCGPGRP, TIOCSPGRP, TIOCGSID, FIONREAD, FIONBIO,      FIOCLEX,
    FIONCLEX,  FIOASYNC,  TIOCOUTQ, FICLONE,  FICLONERANGE, FS_IOC_GETFLAGS,
};

/* Socket families strict allows: local and IP. Raw and packet sockets need capabilities anyway. */
static const int strict_families[] = {AF_UNIX, AF_INET, AF_INET6};

/*
 * Adds one rule for a syscall by name. A name libseccomp does not know on this build is skipped
 * (the unit test checks every listed name resolves); a name it knows for other architectures only
 * resolves to a negative pseudo number, which libseccomp itself leaves out of the filter.
 */
static int add_named(scmp_filter_ctx ctx, uint32_t action, const char *name, unsigned nargs,
                     const struct scmp_arg_cmp *args, char *err, size_t errlen)
{
    int nr = seccomp_syscall_resolve_name(name);
    if (nr == __NR_SCMP_ERROR)
        return 0;
    int rc = seccomp_rule_add_array(ctx, action, nr, nargs, args);
    if (rc < 0)
        snprintf(err, errlen, "seccomp rule for %s: %s", name, strerror(-rc));
    return rc;
}

/*
 * personality outside the harmless set, as rules of the default profile. libseccomp allows one
 * comparison per argument in a rule and refuses rules whose action is the filter's default, so
 * "not one of these values" is written as a union of single masked comparisons: anything above 32
 * bits; or, with bit 0 clear, any bit other than 3 and 17 set; or, with bit 0 set, any other bit
 * clear (the only harmless value with bit 0 set is 0xffffffff, all ones).
 */
static int deny_personality(scmp_filter_ctx ctx, char *err, size_t errlen)
{
    const uint32_t eperm = SCMP_ACT_ERRNO(EPERM);
    struct scmp_arg_cmp high = SCMP_A0(SCMP_CMP_GT, 0xffffffffULL);
    int rc = add_named(ctx, eperm, "personality", 1, &high, err, errlen);
    for (unsigned b = 1; rc == 0 && b < 32; b++) {
        uint64_t bit = 1ULL << b;
        struct scmp_arg_cmp c;
        if (b != 3 && b != 17) {
            c = SCMP_A0(SCMP_CMP_MASKED_EQ, bit | 1, bit);
            rc = add_named(ctx, eperm, "personality", 1, &c, err, errlen);
        }
        if (rc == 0) {
            c = SCMP_A0(SCMP_CMP_MASKED_EQ, bit | 1, 1);
            rc = add_named(ctx, eperm, "personality", 1, &c, err, errlen);
        }
    }
    return rc;
}

static int build_default(scmp_filter_ctx ctx, char *err, size_t errlen)
{
    const uint32_t eperm = SCMP_ACT_ERRNO(EPERM);
    int rc = 0;
    for (size_t i = 0; rc == 0 && i < sbx_default_denied_count; i++)
        rc = add_named(ctx, eperm, sbx_default_denied[i], 0, NULL, err, errlen);
    /* One rule per flag: the rules of a syscall are alternatives, so any one flag refuses. */
    const uint64_t ns[] = {CLONE_NEWNS,  CLONE_NEWUTS, CLONE_NEWIPC,   CLONE_NEWUSER,
                           CLONE_NEWPID, CLONE_NEWNET, CLONE_NEWCGROUP};
    for (size_t i = 0; rc == 0 && i < sizeof ns / sizeof ns[0]; i++) {
        struct scmp_arg_cmp c = {CLONE_FLAGS_ARG, SCMP_CMP_MASKED_EQ, ns[i], ns[i]};
        rc = add_named(ctx, eperm, "clone", 1, &c, err, errlen);
    }
    /* clone3 passes its flags in memory a filter cannot read. ENOSYS, not EPERM, makes glibc fall
     * back to clone, whose flags the rules above can see. */
    if (rc == 0)
        rc = add_named(ctx, SCMP_ACT_ERRNO(ENOSYS), "clone3", 0, NULL, err, errlen);
    if (rc == 0)
        rc = deny_personality(ctx, err, errlen);
    return rc;
}

/*
 * Numbers above the newest syscall this libseccomp knows answer ENOSYS rather than EPERM, as runc
 * does: glibc falls back to an older call only on ENOSYS (fchmodat2 to fchmodat, for one), and a
 * container's libc may be newer than this build.
 */
static int newer_syscalls_enosys(scmp_filter_ctx ctx, char *err, size_t errlen)
{
    int newest = -1;
    for (int nr = 0; nr < 1024; nr++) {
        char *name = seccomp_syscall_resolve_num_arch(SCMP_ARCH_NATIVE, nr);
        if (name) {
            newest = nr;
            free(name);
        }
    }
    for (int nr = newest + 1; nr > 0 && nr <= newest + 64; nr++) {
        int rc = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(ENOSYS), nr, 0);
        if (rc < 0) {
            snprintf(err, errlen, "seccomp rule for syscall %d: %s", nr, strerror(-rc));
            return rc;
        }
    }
    return 0;
}

static int build_strict(scmp_filter_ctx ctx, char *err, size_t errlen)
{
    int rc = 0;
    for (size_t i = 0; rc == 0 && i < sbx_strict_allowed_count; i++)
        rc = add_named(ctx, SCMP_ACT_ALLOW, sbx_strict_allowed[i], 0, NULL, err, errlen);
    if (rc == 0) {
        struct scmp_arg_cmp c = {CLONE_FLAGS_ARG, SCMP_CMP_MASKED_EQ, NS_FLAGS, 0};
        rc = add_named(ctx, SCMP_ACT_ALLOW, "clone", 1, &c, err, errlen);
    }
    if (rc == 0)
        rc = add_named(ctx, SCMP_ACT_ERRNO(ENOSYS), "clone3", 0, NULL, err, errlen);
    for (size_t i = 0; rc == 0 && i < sizeof harmless_personalities / sizeof(uint64_t); i++) {
        struct scmp_arg_cmp c = SCMP_A0(SCMP_CMP_EQ, harmless_personalities[i]);
        rc = add_named(ctx, SCMP_ACT_ALLOW, "personality", 1, &c, err, errlen);
    }
    for (size_t i = 0; rc == 0 && i < sizeof strict_ioctls / sizeof strict_ioctls[0]; i++) {
        struct scmp_arg_cmp c = SCMP_A1(SCMP_CMP_MASKED_EQ, 0xffffffffULL, strict_ioctls[i]);
        rc = add_named(ctx, SCMP_ACT_ALLOW, "ioctl", 1, &c, err, errlen);
    }
    for (size_t i = 0; rc == 0 && i < sizeof strict_families / sizeof strict_families[0]; i++) {
        struct scmp_arg_cmp c = SCMP_A0(SCMP_CMP_EQ, (uint64_t)strict_families[i]);
        rc = add_named(ctx, SCMP_ACT_ALLOW, "socket", 1, &c, err, errlen);
    }
    /* getaddrinfo asks the kernel for the host's addresses over a NETLINK_ROUTE socket; reading
     * routes needs no privilege, changing them needs CAP_NET_ADMIN. */
    if (rc == 0) {
        struct scmp_arg_cmp c[2] = {SCMP_A0(SCMP_CMP_EQ, AF_NETLINK),
                                    SCMP_A2(SCMP_CMP_EQ, NETLINK_ROUTE)};
        rc = add_named(ctx, SCMP_ACT_ALLOW, "socket", 2, c, err, errlen);
    }
    if (rc == 0)
        rc = newer_syscalls_enosys(ctx, err, errlen);
    return rc;
}

int sbx_profile_build(sbx_profile which, scmp_filter_ctx *out, char *err, size_t errlen)
{
    *out = NULL;
    if (which != SBX_DEFAULT && which != SBX_STRICT) {
        snprintf(err, errlen, "profile %s has no built-in filter", sbx_profile_name(which));
        return -EINVAL;
    }
    int rc = -ENOMEM;
    scmp_filter_ctx ctx =
        seccomp_init(which == SBX_DEFAULT ? SCMP_ACT_ALLOW : SCMP_ACT_ERRNO(EPERM));
    if (!ctx) {
        snprintf(err, errlen, "seccomp_init failed");
        goto fail;
    }
    /* A call of another ABI (int 0x80 on x86-64) kills: the rules name native numbers only. */
    rc = seccomp_attr_set(ctx, SCMP_FLTATR_ACT_BADARCH, SCMP_ACT_KILL_PROCESS);
    /* A binary tree over syscall numbers instead of a linear chain: strict has ~270 rules. */
    if (rc == 0)
        rc = seccomp_attr_set(ctx, SCMP_FLTATR_CTL_OPTIMIZE, 2);
    if (rc < 0) {
        snprintf(err, errlen, "seccomp_attr_set: %s", strerror(-rc));
        goto fail;
    }
    rc = which == SBX_DEFAULT ? build_default(ctx, err, errlen) : build_strict(ctx, err, errlen);
    if (rc < 0)
        goto fail;
    *out = ctx;
    return 0;
fail:
    if (ctx)
        seccomp_release(ctx);
    return rc;
}

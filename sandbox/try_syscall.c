/*
 * try_syscall NAME [ARG...]: makes one raw system call and prints what came back, "ok" or the
 * errno's name ("EPERM"), then exits 0, so a test can run it under a sandbox and compare. Each
 * call has default arguments that are harmless: invalid (a bad fd, a NULL pointer, an unknown
 * flag, a path that does not exist), so that even a root process with every capability gets an
 * error other than EPERM without a filter, and the filter is the only source of EPERM. ARGs
 * replace the defaults from the first: numbers (decimal, 0x hex, negative) or, when they start
 * with '/', a pointer to that path. clone is only safe with flags the kernel rejects (the default
 * adds CLONE_THREAD without CLONE_SIGHAND). Two names test the foreign-architecture rule on
 * x86-64: "x32_getpid" makes getpid with the x32 ABI bit set, "int80_getpid" a 32-bit getpid
 * through int 0x80 (some hypervisors disable that gate: the process then gets SIGSEGV). Exit
 * status: 0 after the call, 2 for usage, 3 for a NAME this architecture does not have.
 */
#include <errno.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#define NOPATH ((long)"/nonexistent/sbx-try-syscall")

typedef struct {
    const char *name;
    long nr;
    long args[6];
} call;

/* One table row: the name, its number on this architecture, the default arguments. */
// clang-format off
#define E(n, ...) {#n, SYS_##n, {__VA_ARGS__}}
// clang-format on

static const call calls[] = {
#ifdef SYS_acct
    E(acct, NOPATH),
#endif
#ifdef SYS_add_key
    E(add_key, 0, 0, 0, 0, 0),
#endif
#ifdef SYS_adjtimex
    E(adjtimex, 0),
#endif
#ifdef SYS_afs_syscall
    E(afs_syscall, 0),
#endif
#ifdef SYS_bpf
    E(bpf, -1, 0, 0),
#endif
#ifdef SYS_chroot
    E(chroot, NOPATH),
#endif
#ifdef SYS_clock_adjtime
    E(clock_adjtime, -1, 0),
#endif
#ifdef SYS_clock_settime
    E(clock_settime, -1, 0),
#endif
#ifdef SYS_clone
    E(clone, CLONE_NEWUSER | CLONE_THREAD, 0, 0, 0, 0),
#endif
#ifdef SYS_clone3
    E(clone3, 0, 0),
#endif
#ifdef SYS_create_module
    E(create_module, 0, 0),
#endif
#ifdef SYS_delete_module
    E(delete_module, (long)"sbx_no_such_module", 0),
#endif
#ifdef SYS_fanotify_init
    E(fanotify_init, -1, 0),
#endif
#ifdef SYS_finit_module
    E(finit_module, -1, (long)"", 0),
#endif
#ifdef SYS_fsconfig
    E(fsconfig, -1, 0, 0, 0, 0),
#endif
#ifdef SYS_fsmount
    E(fsmount, -1, 0, 0),
#endif
#ifdef SYS_fsopen
    E(fsopen, 0, 0),
#endif
#ifdef SYS_fspick
    E(fspick, -1, 0, 0),
#endif
#ifdef SYS_get_kernel_syms
    E(get_kernel_syms, 0),
#endif
#ifdef SYS_get_mempolicy
    E(get_mempolicy, 0, 0, 0, 0, -1),
#endif
#ifdef SYS_getpid
    E(getpid, 0),
#endif
#ifdef SYS_getpmsg
    E(getpmsg, 0),
#endif
#ifdef SYS_init_module
    E(init_module, 0, 0, 0),
#endif
#ifdef SYS_io_uring_enter
    E(io_uring_enter, -1, 0, 0, 0, 0, 0),
#endif
#ifdef SYS_io_uring_register
    E(io_uring_register, -1, 0, 0, 0),
#endif
#ifdef SYS_io_uring_setup
    E(io_uring_setup, 0, 0),
#endif
#ifdef SYS_ioctl
    E(ioctl, -1, 0, 0),
#endif
#ifdef SYS_ioperm
    E(ioperm, 0x10000, 1, 1),
#endif
#ifdef SYS_iopl
    E(iopl, 4),
#endif
#ifdef SYS_kcmp
    E(kcmp, -1, -1, -1, 0, 0),
#endif
#ifdef SYS_kexec_file_load
    E(kexec_file_load, -1, -1, 0, 0, -1),
#endif
#ifdef SYS_kexec_load
    E(kexec_load, 0, 0, 0, -1),
#endif
#ifdef SYS_keyctl
    E(keyctl, -1, 0, 0, 0, 0),
#endif
#ifdef SYS_lookup_dcookie
    E(lookup_dcookie, 0, 0, 0),
#endif
#ifdef SYS_mbind
    E(mbind, 0, 0, -1, 0, 0, 0),
#endif
#ifdef SYS_migrate_pages
    E(migrate_pages, -1, 0, 0, 0),
#endif
#ifdef SYS_mount
    E(mount, 0, NOPATH, 0, 0, 0),
#endif
#ifdef SYS_mount_setattr
    E(mount_setattr, -1, 0, -1, 0, 0),
#endif
#ifdef SYS_move_mount
    E(move_mount, -1, 0, -1, 0, -1),
#endif
#ifdef SYS_move_pages
    E(move_pages, -1, 0, 0, 0, 0, 0),
#endif
#ifdef SYS_name_to_handle_at
    E(name_to_handle_at, -1, 0, 0, 0, 0),
#endif
#ifdef SYS_nfsservctl
    E(nfsservctl, 0),
#endif
#ifdef SYS_open_by_handle_at
    E(open_by_handle_at, -1, 0, 0),
#endif
#ifdef SYS_open_tree
    E(open_tree, -1, 0, -1),
#endif
#ifdef SYS_perf_event_open
    E(perf_event_open, 0, 0, -1, -1, 0),
#endif
#ifdef SYS_personality
    E(personality, 0xffffffff),
#endif
#ifdef SYS_pidfd_getfd
    E(pidfd_getfd, -1, -1, 0),
#endif
#ifdef SYS_pivot_root
    E(pivot_root, NOPATH, NOPATH),
#endif
#ifdef SYS_process_madvise
    E(process_madvise, -1, 0, 0, 0, 0),
#endif
#ifdef SYS_process_vm_readv
    E(process_vm_readv, 0, 0, 0, 0, 0, 1),
#endif
#ifdef SYS_process_vm_writev
    E(process_vm_writev, 0, 0, 0, 0, 0, 1),
#endif
#ifdef SYS_ptrace
    E(ptrace, -1, 0, 0, 0),
#endif
#ifdef SYS_putpmsg
    E(putpmsg, 0),
#endif
#ifdef SYS_query_module
    E(query_module, 0),
#endif
#ifdef SYS_quotactl
    E(quotactl, 0, 0, 0, 0),
#endif
#ifdef SYS_quotactl_fd
    E(quotactl_fd, -1, 0, 0, 0),
#endif
#ifdef SYS_reboot
    E(reboot, 0, 0, 0, 0),
#endif
#ifdef SYS_request_key
    E(request_key, 0, 0, 0, 0),
#endif
#ifdef SYS_security
    E(security, 0),
#endif
#ifdef SYS_set_mempolicy
    E(set_mempolicy, -1, 0, 0),
#endif
#ifdef SYS_setdomainname
    E(setdomainname, 0, 100000),
#endif
#ifdef SYS_sethostname
    E(sethostname, 0, 100000),
#endif
#ifdef SYS_setns
    E(setns, -1, 0),
#endif
#ifdef SYS_settimeofday
    E(settimeofday, 0, 0),
#endif
#ifdef SYS_socket
    E(socket, 17 /* AF_PACKET */, 9999 /* no such type */, 0),
#endif
#ifdef SYS_stime
    E(stime, 0),
#endif
#ifdef SYS_swapoff
    E(swapoff, NOPATH),
#endif
#ifdef SYS_swapon
    E(swapon, NOPATH, 0),
#endif
#ifdef SYS__sysctl
    E(_sysctl, 0),
#endif
#ifdef SYS_sysfs
    E(sysfs, -1, 0, 0),
#endif
#ifdef SYS_syslog
    E(syslog, -1, 0, 0),
#endif
#ifdef SYS_tuxcall
    E(tuxcall, 0),
#endif
#ifdef SYS_umount
    E(umount, NOPATH),
#endif
#ifdef SYS_umount2
    E(umount2, NOPATH, 0),
#endif
#ifdef SYS_unshare
    E(unshare, -1),
#endif
#ifdef SYS_uselib
    E(uselib, NOPATH),
#endif
#ifdef SYS_userfaultfd
    E(userfaultfd, -1),
#endif
#ifdef SYS_ustat
    E(ustat, 0, 0),
#endif
#ifdef SYS_vhangup
    E(vhangup, 0),
#endif
#ifdef SYS_vserver
    E(vserver, 0),
#endif
};

static void report(long rc, int err)
{
    if (rc >= 0) {
        puts("ok");
        return;
    }
    const char *name = strerrorname_np(err);
    if (name)
        puts(name);
    else
        printf("errno %d\n", err);
}

/* getpid through the 32-bit entry point, which a filter for the native ABI does not cover. */
static int int80_getpid(void)
{
#if defined(__x86_64__)
    long rc;
    /* The compat entry zeroes r8-r11 on the way back. */
    __asm__ volatile("int $0x80"
                     : "=a"(rc)
                     : "a"(20L /* i386 __NR_getpid */)
                     : "r8", "r9", "r10", "r11", "memory");
    report(rc < 0 ? -1 : rc, rc < 0 ? (int)-rc : 0);
    return 0;
#else
    puts("unknown");
    return 3;
#endif
}

/* getpid with the x32 ABI bit: same architecture as x86-64 for seccomp, another syscall table. */
static int x32_getpid(void)
{
#if defined(__x86_64__)
    errno = 0;
    long rc = syscall(0x40000000L | SYS_getpid);
    report(rc, errno);
    return 0;
#else
    puts("unknown");
    return 3;
#endif
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: try_syscall NAME [ARG...]\n");
        return 2;
    }
    if (strcmp(argv[1], "int80_getpid") == 0)
        return int80_getpid();
    if (strcmp(argv[1], "x32_getpid") == 0)
        return x32_getpid();
    const call *c = NULL;
    for (size_t i = 0; i < sizeof calls / sizeof calls[0]; i++)
        if (strcmp(calls[i].name, argv[1]) == 0)
            c = &calls[i];
    if (!c) {
        puts("unknown");
        return 3;
    }
    if (argc - 2 > 6) {
        fprintf(stderr, "try_syscall: at most 6 arguments\n");
        return 2;
    }
    long a[6];
    memcpy(a, c->args, sizeof a);
    for (int i = 2; i < argc; i++) {
        if (argv[i][0] == '/') {
            a[i - 2] = (long)argv[i];
            continue;
        }
        char *end;
        errno = 0;
        a[i - 2] = argv[i][0] == '-' ? strtol(argv[i], &end, 0) : (long)strtoul(argv[i], &end, 0);
        if (errno || *end || end == argv[i]) {
            fprintf(stderr, "try_syscall: argument \"%s\" is not a number or a /path\n", argv[i]);
            return 2;
        }
    }
    errno = 0;
    long rc = syscall(c->nr, a[0], a[1], a[2], a[3], a[4], a[5]);
    report(rc, errno);
    return 0;
}

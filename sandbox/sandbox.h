/*
 * The sandbox every command runs under: rlimits, uid/gid, capabilities, no_new_privs and a seccomp
 * filter. It is split in two halves so that a threaded daemon can keep a vfork-style spawn: the
 * parent does all the work that allocates or calls libseccomp/libcap once per configuration
 * (sbx_prepare: the BPF program, the capability sets, the limits), and the child, between
 * clone(CLONE_VM | CLONE_VFORK) and execve, only makes raw system calls on that read-only data
 * (sbx_apply_in_child). One sbx_config describes every variant, from the executor's flags, from a
 * request or from the pm-sandbox command line.
 */
#ifndef PM_SANDBOX_SANDBOX_H
#define PM_SANDBOX_SANDBOX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Which seccomp filter to install. The order of the first three is their strictness. */
typedef enum {
    SBX_UNCONFINED = 0, /* no filter; no_new_privs, capabilities and rlimits still apply */
    SBX_DEFAULT,        /* deny-list modelled on Docker's default profile (docs/sandbox.md) */
    SBX_STRICT,         /* allow-list for ordinary command-line tools */
    SBX_FILE,           /* OCI runtime-spec / Docker seccomp JSON from sbx_config.file */
} sbx_profile;

/* The resource limits a configuration sets, as indexes into sbx_config.rlimits. */
typedef enum {
    SBX_RLIMIT_CPU,    /* RLIMIT_CPU, seconds of CPU time */
    SBX_RLIMIT_AS,     /* RLIMIT_AS, bytes of address space */
    SBX_RLIMIT_NOFILE, /* RLIMIT_NOFILE, open file descriptors */
    SBX_RLIMIT_NPROC,  /* RLIMIT_NPROC, tasks of the real uid; ignored for root (see below) */
    SBX_RLIMIT_FSIZE,  /* RLIMIT_FSIZE, bytes a file may grow to */
    SBX_RLIMIT_CORE,   /* RLIMIT_CORE, bytes of core dump; 0 turns dumps off */
    SBX_RLIMIT_COUNT,
} sbx_rlimit;

/*
 * A limit of UINT64_MAX sets nothing: the command keeps the executor's own soft and hard limits.
 * Any other value v becomes the hard limit, clamped to the executor's hard limit (a limit is
 * never raised), and the soft limit is lowered to v if it was higher (so the usual soft 1024 for
 * open files survives a hard limit of 65536). 0 is a real limit: core 0 means no core dumps.
 *
 * RLIMIT_NPROC counts every task (threads too) of the command's real uid across the whole machine
 * (or user namespace), and the kernel does not enforce it for uid 0. It contains a fork bomb only
 * when commands run as a uid of their own (sbx_config.uid); as root, the executor's timeout and
 * process-group kill, or the pod's pids limit, are what stop one.
 */
#define SBX_RLIM_NONE UINT64_MAX

/* sbx_config.uid / gid value for "do not change". */
#define SBX_ID_KEEP UINT32_MAX

/* Longest profile file path, with its NUL. */
#define SBX_PATH_MAX 4096

/*
 * Everything the sandbox enforces. no_new_privs is always set and has no field. Initialise with
 * sbx_config_init; the struct holds no pointers, so copying it is enough to derive another.
 */
typedef struct {
    sbx_profile profile;
    char file[SBX_PATH_MAX];            /* SBX_FILE: path of the JSON profile; otherwise "" */
    uint64_t rlimits[SBX_RLIMIT_COUNT]; /* see SBX_RLIM_NONE */
    /*
     * Capabilities kept in the bounding, permitted, effective and inheritable sets (and ambient
     * when the command does not run as root): bit N keeps capability N. 0 drops them all.
     */
    uint64_t keep_caps;
    /*
     * Run as this uid and gid with no supplementary groups; both SBX_ID_KEEP leaves the ids as
     * they are. Setting one needs the other (a uid switch that kept gid 0 would be a trap).
     */
    uint32_t uid;
    uint32_t gid;
} sbx_config;

/* The step of sbx_apply_in_child that failed, in the order they run. */
typedef enum {
    SBX_STAGE_NONE = 0,     /* nothing failed */
    SBX_STAGE_RLIMIT,       /* prlimit64 */
    SBX_STAGE_CAPBSET,      /* prctl(PR_CAPBSET_DROP) */
    SBX_STAGE_KEEPCAPS,     /* prctl(PR_SET_KEEPCAPS) before a uid switch that keeps capabilities */
    SBX_STAGE_SETGROUPS,    /* setgroups(0, NULL) */
    SBX_STAGE_SETGID,       /* setresgid */
    SBX_STAGE_SETUID,       /* setresuid */
    SBX_STAGE_AMBIENT,      /* prctl(PR_CAP_AMBIENT_CLEAR_ALL / RAISE) */
    SBX_STAGE_CAPSET,       /* capset */
    SBX_STAGE_NO_NEW_PRIVS, /* prctl(PR_SET_NO_NEW_PRIVS) */
    SBX_STAGE_SECCOMP,      /* seccomp(SECCOMP_SET_MODE_FILTER), or prctl on old kernels */
} sbx_stage;

/* The prepared form of a configuration; opaque, read-only once made, shareable across threads. */
typedef struct sbx_prepared sbx_prepared;

/*
 * Fills cfg with the defaults: profile default; no core dumps, at most 65536 open files (hard
 * limit) and 4096 tasks per uid, CPU time, address space and file size left to the executor; no
 * capabilities; ids unchanged.
 */
void sbx_config_init(sbx_config *cfg);

/*
 * Reads a profile name into cfg->profile (and cfg->file): "unconfined", "default", "strict" or
 * "file:PATH". Returns 0, -EINVAL for an unknown name or an empty path, -ENAMETOOLONG for a path
 * of SBX_PATH_MAX bytes or more. cfg is unchanged on error.
 */
int sbx_profile_parse(const char *name, sbx_config *cfg);

/* The name of a profile as sbx_profile_parse reads it ("file" for SBX_FILE, without the path). */
const char *sbx_profile_name(sbx_profile profile);

/*
 * Reads "NAME=VALUE" into cfg->rlimits. NAME is cpu, as, nofile, nproc, fsize or core; VALUE is a
 * decimal number, optionally followed by K, M, G or T (powers of 1024), or "unlimited" for
 * SBX_RLIM_NONE. Returns 0, or -EINVAL with a message in err.
 */
int sbx_rlimit_parse(const char *spec, sbx_config *cfg, char *err, size_t errlen);

/* The name sbx_rlimit_parse reads for a limit ("nofile"), or "?" */
const char *sbx_rlimit_name(sbx_rlimit which);

/*
 * Adds a capability to cfg->keep_caps by name: "net_bind_service", "CAP_NET_BIND_SERVICE" and
 * "cap_net_bind_service" are the same. Returns 0, or -EINVAL with a message in err.
 */
int sbx_config_keep_cap(sbx_config *cfg, const char *name, char *err, size_t errlen);

/*
 * Whether a request's configuration may be used by an executor configured with executor: a
 * request may tighten the executor's sandbox, never loosen it. Profiles are ordered unconfined <
 * default < strict; a file profile is tighter than or equal to unconfined and to the same file
 * only (two different filters cannot be compared, and a request naming a file makes the executor
 * read it, which only an unconfined executor may be asked to do). Each limit must be at most the
 * executor's (SBX_RLIM_NONE counts as infinite), the kept capabilities a subset of the
 * executor's, and the uid and gid the executor's. Returns true when allowed; otherwise false,
 * with the first loosening named in err (when err is not NULL).
 */
bool sbx_tighter_or_equal(const sbx_config *executor, const sbx_config *requested, char *err,
                          size_t errlen);

/*
 * In the parent: builds everything sbx_apply_in_child needs from cfg, and checks now what the
 * child could only find out too late: that the executor holds every capability to keep, and the
 * right to switch ids. For a seccomp profile it builds the filter with libseccomp (for SBX_FILE
 * through the OCI loader, with includes/excludes evaluated against the kept capabilities) and
 * exports the BPF program. Reads the calling thread's limits and capabilities: call it from the
 * thread that spawns, or before any thread changes them. Allocates; costs tens of microseconds
 * (unconfined) to a millisecond or two (strict) on a small VM, so do it once per configuration
 * and keep the result for as long as children may apply it. On success stores a new object in
 * *out and returns 0; otherwise returns a negative errno with a message in err and leaves *out
 * NULL.
 */
int sbx_prepare(const sbx_config *cfg, sbx_prepared **out, char *err, size_t errlen);

/*
 * In the parent, once, from the thread that spawns (before it creates any other thread that
 * spawns): applies to the calling thread what every child would otherwise apply to itself, so
 * that children inherit it instead of paying for it at each spawn.
 * - The bounding set: every capability sbx_apply_in_child would drop (about forty prctl calls
 *   as root). The thread keeps its permitted and effective capabilities, so it can still switch
 *   a child's ids; only what it could gain by executing something is limited, and it executes
 *   nothing.
 * - For the default profile only, the seccomp filter (with no_new_privs on the thread): a deny
 *   list of calls no daemon here makes (mounts, namespaces, ptrace, bpf, keyrings, ...), so the
 *   threads lose nothing, and each child saves attaching its own copy. Strict and file profiles
 *   are allow lists and stay per child.
 * Afterwards p must only be applied by children of this thread or of threads it creates later.
 * Configurations prepared later in such a thread list only the capabilities still in its bounding
 * set; a filter they carry is attached by each child on top of the inherited one. Returns 0, or a
 * negative errno with a message in err; what was not done is then still done in every child.
 */
int sbx_apply_in_spawner(sbx_prepared *p, char *err, size_t errlen);

/*
 * CHILD ONLY: applies p to the calling process, between fork or clone(CLONE_VM | CLONE_VFORK)
 * and execve. Makes only raw system calls through syscall(2): no allocation, no locks, no libc
 * wrapper that does more than the call. (In a process with threads, glibc's setresuid, setresgid
 * and setgroups run an all-threads protocol: they take a libc-internal lock and mark every
 * thread's descriptor, in the memory a CLONE_VM child shares with its parent; a lock the parent
 * held at the clone would deadlock the child.) The order is: rlimits; bounding set drops
 * (while CAP_SETPCAP is still held); PR_SET_KEEPCAPS when capabilities must survive a uid switch;
 * setgroups, setresgid, setresuid; ambient set cleared; capset; ambient raise for kept
 * capabilities of a non-root uid; no_new_privs; the seccomp filter last, so the setup itself is
 * never filtered (skipped when the spawning thread already carries it: see sbx_apply_in_spawner;
 * the default profile refuses none of the setup calls) (installed with
 * SECCOMP_FILTER_FLAG_SPEC_ALLOW: see sandbox.c). The filter must allow what the child does after
 * this call (the built-in profiles allow rt_sigprocmask, execve and exit_group), so call it last
 * before execve. Returns 0, or a negative errno with the failed stage in *failed (when failed is
 * not NULL); the process is then partly sandboxed and must _exit. A NULL p applies nothing and
 * returns 0.
 */
int sbx_apply_in_child(const sbx_prepared *p, sbx_stage *failed);

/* Frees what sbx_prepare made; NULL is ignored. No child may still be applying it. */
void sbx_prepared_free(sbx_prepared *p);

/* The configuration p was prepared from. */
const sbx_config *sbx_prepared_config(const sbx_prepared *p);

/* Names a stage for messages ("setuid", "seccomp", ...). */
const char *sbx_stage_name(sbx_stage stage);

/*
 * Writes a one-line description of what p enforces into buf, for Info and logs, e.g.
 * "profile=default filter=316 rlimits=nofile:65536,nproc:4096,core:0 caps=none ids=keep
 * no_new_privs=1". Returns 0, or -ENOSPC when it did not fit (buf then holds a truncated,
 * NUL-terminated line).
 */
int sbx_describe(const sbx_prepared *p, char *buf, size_t len);

#endif

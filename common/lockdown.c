/* SPDX-License-Identifier: MIT */
/*
 * The lockdown steps shared by every sandboxed process: credentials,
 * capabilities, no_new_privs, and loading a seccomp table. The contract is
 * in lockdown.h. The base rows below are what any locked-down process of
 * ours needs from glibc, libsystemd's journal and OpenSSL; each process's
 * own rows, for its own work, live with it (proxy/sandbox.c,
 * sigstore/sigsandbox.c).
 */

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <linux/securebits.h>
#include <seccomp.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/capability.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "lockdown.h"
#include "macro.h"

/*
 * The base rows, loaded before every process's own table (lockdown_load_seccomp()) and listed
 * first by lockdown_rule_get(). Only what every sandboxed process needs for the same reason
 * belongs here: memory, time and locks, signals to itself, exit, the journal's socket, and the
 * probes of stdio and libsystemd. A call a process makes for its own work (read, connect,
 * epoll, ...) stays in its table with its own reason, even where both tables allow it.
 */
static const SandboxRule lockdown_base_rules[] = {
        /* Memory. Never executable (W^X): nothing loads code after lockdown. */
        ALLOW(brk, "malloc: the main arena grows and shrinks with brk"),
        ALLOW_IF(mmap, "malloc of large blocks (connection buffers, OpenSSL, json-c); W^X: nothing maps code after lockdown",
                 ARG_MASKED_EQ(2, PROT_EXEC, 0)),
        ALLOW_IF(mprotect, "malloc grows non-main arena heaps with mprotect; W^X as for mmap",
                 ARG_MASKED_EQ(2, PROT_EXEC, 0)),
        ALLOW(munmap, "free of large blocks"),
        ALLOW(mremap, "realloc of large blocks"),
        ALLOW(madvise, "free() returns memory with MADV_DONTNEED"),

        /* Time and locks. */
        ALLOW(clock_gettime, "deadlines and timeouts, OpenSSL; mostly served by the vDSO"),
        ALLOW(gettimeofday, "time() fallbacks, OpenSSL; mostly the vDSO"),
        ALLOW(futex, "pthread mutexes: glibc's (stdio, malloc) and OpenSSL's locks, the proxy's "
                     "process-shared robust mutex of the limits table"),
        ALLOW(restart_syscall, "the kernel restarts an interrupted call with it"),

        /* Descriptors the process holds. */
        ALLOW(close, "finished connections, files, directories"),
        ALLOW_IF(fcntl, "F_GETFL: O_NONBLOCK checks; fdopendir checks the fd's mode", ARG_EQ(1, F_GETFL)),
        ALLOW_IF(fcntl, "F_GETFD: close-on-exec checks", ARG_EQ(1, F_GETFD)),
        ALLOW_IF(fcntl, "F_SETFD: close-on-exec (fdopendir sets it)", ARG_EQ(1, F_SETFD)),
        ALLOW_IF(socket, "journal: libsystemd opens its socket lazily on the first sd_journal_send()",
                 ARG_EQ(0, AF_UNIX), ARG_MASKED_EQ(1, SOCK_TYPE_MASK_, SOCK_DGRAM), ARG_EQ(2, 0)),

        /* Signals and the process itself. Signals only to ourselves. */
        ALLOW(rt_sigreturn, "return from a signal handler"),
        ALLOW(rt_sigprocmask, "abort(); blocking signals for the proxy worker's signalfd"),
        ALLOW(rt_sigaction, "(re)installing handlers; abort() resets SIGABRT"),
        ALLOW(getpid, "abort(), libsystemd, OpenSSL nonce data"),
        ALLOW(gettid, "abort(), raise(): signals go to the process's own thread"),
        ALLOW_SELF(tgkill, "raise(), abort(): only to the process itself"),
        ALLOW(getrandom, "OpenSSL's DRBG seeding and reseeding, temp file names"),
        ALLOW(sysinfo, "glibc qsort() sizes its buffer from the physical memory size"),
        ALLOW(exit, "thread exit"),
        ALLOW(exit_group, "process exit"),

        /* Probes: answered with an error instead of a kill. */
        PROBE_IF(ioctl, ENOTTY, "isatty() from stdio and sanitizer reports: not a terminal",
                 ARG_EQ(1, TCGETS)),
        PROBE(memfd_create, EPERM,
              "sd_journal_send() for oversized messages: EPERM drops the message; ENOSYS would make "
              "it open a file in /dev/shm"),

        /* Sanitizer builds only. */
        ALLOW_SANITIZER(sigaltstack, "ASan's _exit() interceptor queries the alternate signal stack"),
};

static inline void seccomp_releasep(scmp_filter_ctx *ctx) {
        if (*ctx)
                seccomp_release(*ctx);
}

static inline void cap_freep(cap_t *c) {
        if (*c)
                (void) cap_free(*c);
}

/* Row i of the base rows followed by rules[0..n). */
static const SandboxRule *lockdown_rule_at(const SandboxRule *rules, size_t n, size_t i) {
        if (i < ELEMENTSOF(lockdown_base_rules))
                return lockdown_base_rules + i;
        i -= ELEMENTSOF(lockdown_base_rules);
        return i < n ? rules + i : NULL;
}

size_t lockdown_rule_count(size_t n) {
        return ELEMENTSOF(lockdown_base_rules) + n;
}

int lockdown_rule_get(const SandboxRule *rules, size_t n, size_t i, const char **ret_syscall,
                      const char **ret_action, const char **ret_why) {
        const SandboxRule *rule = lockdown_rule_at(rules, n, i);

        if (!rule)
                return -ENOENT;
        if (ret_syscall)
                *ret_syscall = rule->syscall;
        if (ret_action)
                *ret_action = rule->action_name;
        if (ret_why)
                *ret_why = rule->why;
        return 0;
}

int lockdown_load_seccomp(const SandboxRule *rules, size_t n_rules) {
        _cleanup_(seccomp_releasep) scmp_filter_ctx ctx = NULL;
        const char *e = secure_getenv("REGVISOR_SECCOMP_LOG");
        bool log_mode = e && streq(e, "1");
        pid_t self = getpid();
        int r;

        ctx = seccomp_init(log_mode ? SCMP_ACT_LOG : SCMP_ACT_KILL_PROCESS);
        if (!ctx)
                return -ENOMEM;

        /* A syscall through another ABI (int 0x80, x32) would bypass the x86_64 rules. */
        r = seccomp_attr_set(ctx, SCMP_FLTATR_ACT_BADARCH, SCMP_ACT_KILL_PROCESS);
        if (r < 0)
                return r;
        /* The process should be single-threaded; if a library started a thread anyway, it gets the
         * filter too (or the load fails), never stays unfiltered. */
        r = seccomp_attr_set(ctx, SCMP_FLTATR_CTL_TSYNC, 1);
        if (r < 0)
                return r;

        for (size_t i = 0; i < ELEMENTSOF(lockdown_base_rules) + n_rules; i++) {
                const SandboxRule *rule = lockdown_rule_at(rules, n_rules, i);
                struct scmp_arg_cmp args[4];
                unsigned n = rule->n_args;
                int nr;

                if (rule->sanitizer_only && !SANDBOX_SANITIZER)
                        continue;

                assert(n <= ELEMENTSOF(rule->args));
                nr = seccomp_syscall_resolve_name(rule->syscall);
                if (nr == __NR_SCMP_ERROR)
                        return -EINVAL;

                memcpy(args, rule->args, n * sizeof(args[0]));
                if (rule->a0_is_self)
                        args[n++] = (struct scmp_arg_cmp) ARG_EQ(0, self);

                r = seccomp_rule_add_exact_array(ctx, rule->action, nr, n, args);
                if (r < 0)
                        return r;
        }

        return seccomp_load(ctx);
}

/* Step 2: everything that needs CAP_SETPCAP, done while we still have it. */
static int lockdown_drop_bounding_set(void) {
        cap_value_t max = cap_max_bits();

        for (cap_value_t c = 0; c < max; c++) {
                int r = cap_get_bound(c);

                if (r < 0)
                        return negative_errno();
                if (r > 0 && cap_drop_bound(c) < 0)
                        return negative_errno();
        }

        if (cap_reset_ambient() < 0)
                return negative_errno();

        /* Lock the securebits so that nothing can later make the kernel keep capabilities across a
         * uid change (KEEP_CAPS, NO_SETUID_FIXUP stay off, locked), raise ambient capabilities, or
         * grant them to uid 0 on exec (NOROOT). Belt and braces: after step 7 prctl() kills. */
        if (cap_set_secbits(SECBIT_NOROOT | SECBIT_NOROOT_LOCKED | SECBIT_NO_SETUID_FIXUP_LOCKED |
                            SECBIT_KEEP_CAPS_LOCKED | SECBIT_NO_CAP_AMBIENT_RAISE |
                            SECBIT_NO_CAP_AMBIENT_RAISE_LOCKED) < 0)
                return negative_errno();

        return 0;
}

/* Step 3: the identity change, verified. */
static int lockdown_change_ids(uid_t uid, gid_t gid) {
        uid_t ru, eu, su;
        gid_t rg, eg, sg;

        if (setgroups(0, NULL) < 0)
                return negative_errno();
        if (setresgid(gid, gid, gid) < 0)
                return negative_errno();
        if (setresuid(uid, uid, uid) < 0)
                return negative_errno();

        if (getresuid(&ru, &eu, &su) < 0 || getresgid(&rg, &eg, &sg) < 0)
                return negative_errno();
        if (ru != uid || eu != uid || su != uid || rg != gid || eg != gid || sg != gid)
                return -EPERM;
        if (getgroups(0, NULL) != 0)
                return -EPERM;

        /* The drop must be irreversible. */
        if (setuid(0) == 0 || seteuid(0) == 0 || setgid(0) == 0)
                return -EPERM;

        return 0;
}

/* Step 5: clear what setresuid() left (the inheritable set) and check that every set is empty,
 * the bounding set included. */
static int lockdown_clear_caps(void) {
        _cleanup_(cap_freep) cap_t none = NULL, now = NULL;

        none = cap_init();
        if (!none)
                return negative_errno();
        if (cap_set_proc(none) < 0)
                return negative_errno();

        now = cap_get_proc();
        if (!now)
                return negative_errno();
        if (cap_compare(now, none) != 0)
                return -EPERM;

        for (cap_value_t c = 0; c < cap_max_bits(); c++)
                if (cap_get_bound(c) != 0 || cap_get_ambient(c) > 0)
                        return -EPERM;

        return 0;
}

/* Sets a process attribute with prctl(set, value) and reads it back with prctl(get): -EPERM
 * unless it now is value. */
static int lockdown_prctl_verified(int set, int get, int value) {
        if (prctl(set, (unsigned long) value, 0, 0, 0) < 0)
                return negative_errno();
        if (prctl(get, 0, 0, 0, 0) != value)
                return -EPERM;
        return 0;
}

/*
 * The order, and why:
 *
 *  1. Non-dumpable first: a proxy worker holds private keys, and from step 3 on it runs as
 *     proxy_user, the same uid as every other worker (the signature store: as the service
 *     user, like podman); a dumpable process could be ptrace-attached or read via
 *     /proc/PID/mem by them. RLIMIT_CORE 0 too: with fs.suid_dumpable=2 a non-dumpable process
 *     still dumps core (for root), with the keys in it.
 *  2. The bounding set before the uid change: dropping from it (PR_CAPBSET_DROP) and setting
 *     securebits need CAP_SETPCAP in the effective set, and setresuid() to a non-zero uid
 *     clears the permitted and effective sets. The alternative (PR_SET_KEEPCAPS across the uid
 *     change, then drop) would carry a full permitted set across the change for no gain.
 *     Dropping the bounding set does not touch the effective set, so CAP_SETUID and CAP_SETGID
 *     are still there for step 3.
 *  3. setgroups, setresgid, setresuid: groups and gid while we still have CAP_SETGID, which the
 *     uid change takes away. Then check that it stuck and cannot be undone.
 *  4. The credential change in step 3 reset "dumpable" to fs.suid_dumpable; set it again.
 *  5. setresuid() cleared permitted, effective and ambient, but not inheritable: clear all with
 *     libcap and verify every set, bounding included.
 *  6. no_new_privs: with it, no execve could ever gain privileges (setuid binaries, file
 *     capabilities), and it lets an unprivileged process load a seccomp filter.
 *  7. seccomp last (lockdown_load_seccomp()), because steps 1 to 6 make calls (prctl, setresuid,
 *     capset) that the filter forbids.
 */
int lockdown_drop_privileges(uid_t uid, gid_t gid) {
        int r;

        if (uid == 0 || gid == 0 || uid == (uid_t) -1 || gid == (gid_t) -1)
                return -EINVAL;

        /* 1 */
        if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) < 0)
                return negative_errno();
        if (setrlimit(RLIMIT_CORE, &(struct rlimit){0, 0}) < 0)
                return negative_errno();

        /* 2 */
        r = lockdown_drop_bounding_set();
        if (r < 0)
                return r;

        /* 3 */
        r = lockdown_change_ids(uid, gid);
        if (r < 0)
                return r;

        /* 4 */
        r = lockdown_prctl_verified(PR_SET_DUMPABLE, PR_GET_DUMPABLE, 0);
        if (r < 0)
                return r;

        /* 5 */
        r = lockdown_clear_caps();
        if (r < 0)
                return r;

        /* 6 */
        return lockdown_prctl_verified(PR_SET_NO_NEW_PRIVS, PR_GET_NO_NEW_PRIVS, 1);
}


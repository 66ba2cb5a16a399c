/* SPDX-License-Identifier: MIT */
/*
 * The proxy worker's sandbox: credentials, capabilities, no_new_privs and
 * the seccomp allowlist. The contract is in sandbox.h; the policy, for
 * people, is policy/proxy-syscalls.md (kept in sync with the table below by
 * tests/unit/test-sandbox.c).
 */

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <linux/securebits.h>
#include <netinet/in.h>
#include <seccomp.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/capability.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "macro.h"
#include "sandbox.h"

/*
 * The syscall policy: one row per rule. Everything not matched by a row hits
 * the default action, SCMP_ACT_KILL_PROCESS: the whole worker dies with
 * SIGSYS and the supervisor starts a fresh one. That covers, on purpose and
 * without a row: open/openat/openat2/creat and every other path-based call,
 * execve/execveat, fork/vfork/clone/clone3, ptrace, process_vm_*, bpf,
 * io_uring_*, keyctl, mount and namespace calls, prctl, setuid and friends,
 * seccomp itself.
 *
 * The worker at this point holds: listening sockets, SSL_CTXs, an epoll fd,
 * the shared limits table (a MAP_SHARED mapping with a process-shared,
 * robust pthread mutex), the upstream address, its signalfd and the
 * parent pipe, stderr and libsystemd's journal socket. What it still does: accept, read and write sockets, TLS
 * (OpenSSL 3.0: memory, getrandom, time), connect to the upstream (unix
 * socket or loopback TCP), wait in epoll, log.
 *
 * Arguments: a row may compare up to three syscall arguments (ANDed);
 * several rows for one call are ORed. Rows marked "self" also require
 * argument 0 to be our own pid, filled in at lockdown.
 *
 * Probes (rows with errno): calls that a library makes only to find
 * something out and that it survives failing. They get an error instead of
 * a kill, so that a harmless probe cannot take a worker down.
 */

#define NARGS(...) (sizeof((struct scmp_arg_cmp[]){__VA_ARGS__}) / sizeof(struct scmp_arg_cmp))
#define ARG_EQ(n, v) {.arg = (n), .op = SCMP_CMP_EQ, .datum_a = (scmp_datum_t) (v)}
#define ARG_MASKED_EQ(n, mask, v)                                                                 \
        {.arg = (n), .op = SCMP_CMP_MASKED_EQ, .datum_a = (scmp_datum_t) (mask),                 \
         .datum_b = (scmp_datum_t) (v)}
/* The type argument of socket()/accept4() without the SOCK_NONBLOCK and SOCK_CLOEXEC flags;
 * 32 bits, like the kernel reads it. */
#define SOCK_TYPE_MASK_ ((scmp_datum_t) (0xffffffffu & ~(unsigned) (SOCK_NONBLOCK | SOCK_CLOEXEC)))

#define ALLOW(call, why_)                                                                         \
        {.syscall = #call, .action = SCMP_ACT_ALLOW, .action_name = "allow", .why = (why_)}
#define ALLOW_IF(call, why_, ...)                                                                 \
        {.syscall = #call,                                                                        \
         .action = SCMP_ACT_ALLOW,                                                                \
         .action_name = "allow",                                                                  \
         .n_args = NARGS(__VA_ARGS__),                                                            \
         .args = {__VA_ARGS__},                                                                   \
         .why = (why_)}
#define ALLOW_SELF(call, why_)                                                                    \
        {.syscall = #call, .action = SCMP_ACT_ALLOW, .action_name = "allow", .a0_is_self = true, \
         .why = (why_)}
#define PROBE(call, err, why_)                                                                    \
        {.syscall = #call, .action = SCMP_ACT_ERRNO(err), .action_name = "errno(" #err ")",     \
         .why = (why_)}
#define PROBE_IF(call, err, why_, ...)                                                            \
        {.syscall = #call,                                                                        \
         .action = SCMP_ACT_ERRNO(err),                                                           \
         .action_name = "errno(" #err ")",                                                        \
         .n_args = NARGS(__VA_ARGS__),                                                            \
         .args = {__VA_ARGS__},                                                                   \
         .why = (why_)}

/* Rows that only sanitizer builds (make unit: ASan and UBSan) apply: what the sanitizer runtimes
 * call on their own. The production build never loads them; policy/proxy-syscalls.md lists them
 * apart. */
#define ALLOW_SANITIZER(call, why_)                                                               \
        {.syscall = #call, .action = SCMP_ACT_ALLOW, .action_name = "allow(sanitizer)",           \
         .sanitizer_only = true, .why = (why_)}

#if defined(__SANITIZE_ADDRESS__)
#define SANDBOX_SANITIZER 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define SANDBOX_SANITIZER 1
#endif
#endif
#ifndef SANDBOX_SANITIZER
#define SANDBOX_SANITIZER 0
#endif

typedef struct SandboxRule {
        const char *syscall;     /* as libseccomp names it (x86_64 names) */
        uint32_t action;         /* SCMP_ACT_ALLOW or SCMP_ACT_ERRNO(e) */
        const char *action_name; /* "allow" or "errno(ENAME)", for the documentation test */
        unsigned n_args;
        struct scmp_arg_cmp args[3];
        bool a0_is_self;     /* argument 0 must equal getpid() at lockdown */
        bool sanitizer_only; /* applied only in ASan builds */
        const char *why; /* policy/proxy-syscalls.md says the same (tests/unit/test-sandbox.c) */
} SandboxRule;

static const SandboxRule sandbox_rules[] = {
        /* Memory: glibc malloc, OpenSSL, the 64 KiB connection buffers. Never executable (W^X):
         * nothing in the worker loads code after lockdown. */
        ALLOW(brk, "malloc: the main arena grows and shrinks with brk"),
        ALLOW_IF(mmap, "malloc of large blocks, OpenSSL buffers; W^X: nothing maps code after lockdown",
                 ARG_MASKED_EQ(2, PROT_EXEC, 0)),
        ALLOW_IF(mprotect, "malloc grows non-main arena heaps with mprotect; W^X as for mmap",
                 ARG_MASKED_EQ(2, PROT_EXEC, 0)),
        ALLOW(munmap, "free of large blocks"),
        ALLOW(mremap, "realloc of large blocks"),
        ALLOW(madvise, "free() returns memory with MADV_DONTNEED"),

        /* Waiting: the event loop (the epoll fd exists before lockdown; no sd-event, so no
         * epoll_pwait2 or timerfd) and time. */
        ALLOW(epoll_wait, "the event loop (epoll_wait() in glibc 2.36 is this call, also under ASan)"),
        ALLOW(epoll_ctl, "registering accepted and upstream sockets"),
        ALLOW(clock_gettime, "timeouts, rate-limit buckets, OpenSSL; mostly served by the vDSO"),
        ALLOW(gettimeofday, "OpenSSL, time() fallbacks; mostly the vDSO"),
        ALLOW(clock_nanosleep, "short back-off sleeps (nanosleep() in glibc 2.36)"),
        ALLOW(nanosleep, "short back-off sleeps (older callers, sanitizer runtimes)"),
        ALLOW(sched_yield, "spin-then-yield locks (sanitizer runtimes)"),
        ALLOW(futex,
              "pthread mutexes: OpenSSL's locks, the process-shared robust mutex of the limits table"),
        ALLOW(restart_syscall, "the kernel restarts an interrupted sleep with it"),

        /* I/O on descriptors the worker already holds. */
        ALLOW(read, "sockets, the signalfd, the parent pipe"),
        ALLOW(write, "sockets, stderr logging"),
        ALLOW(readv, "sockets"),
        ALLOW(writev, "sockets, stdio"),
        ALLOW(close, "finished connections"),
        ALLOW_IF(fcntl, "O_NONBLOCK checks", ARG_EQ(1, F_GETFL)),
        ALLOW_IF(fcntl, "making a socket non-blocking", ARG_EQ(1, F_SETFL)),
        ALLOW_IF(fcntl, "close-on-exec checks", ARG_EQ(1, F_GETFD)),
        ALLOW_IF(fcntl, "close-on-exec", ARG_EQ(1, F_SETFD)),
        ALLOW_IF(ioctl, "OpenSSL's BIO_socket_nbio() sets non-blocking mode with it",
                 ARG_EQ(1, FIONBIO)),
        ALLOW_IF(ioctl, "bytes waiting on a socket", ARG_EQ(1, FIONREAD)),

        /* Sockets. socket() only for what the worker legitimately creates: the upstream
         * connection (unix or TCP over IPv4/IPv6, protocol 0 or IPPROTO_TCP) and libsystemd's
         * journal datagram socket. Everything else (AF_NETLINK, AF_PACKET, raw, UDP, SCTP,
         * vsock, ...) kills. */
        ALLOW_IF(socket,
                 "upstream over the registry's unix socket; the reserve descriptor given up when accept4 "
                 "fails with EMFILE",
                 ARG_EQ(0, AF_UNIX), ARG_MASKED_EQ(1, SOCK_TYPE_MASK_, SOCK_STREAM), ARG_EQ(2, 0)),
        ALLOW_IF(socket, "journal: libsystemd opens its socket lazily on the first sd_journal_send()",
                 ARG_EQ(0, AF_UNIX), ARG_MASKED_EQ(1, SOCK_TYPE_MASK_, SOCK_DGRAM), ARG_EQ(2, 0)),
        ALLOW_IF(socket, "upstream over loopback TCP (IPv4)",
                 ARG_EQ(0, AF_INET), ARG_MASKED_EQ(1, SOCK_TYPE_MASK_, SOCK_STREAM), ARG_EQ(2, 0)),
        ALLOW_IF(socket, "the same, protocol spelled out (getaddrinfo results)",
                 ARG_EQ(0, AF_INET), ARG_MASKED_EQ(1, SOCK_TYPE_MASK_, SOCK_STREAM),
                 ARG_EQ(2, IPPROTO_TCP)),
        ALLOW_IF(socket, "upstream over loopback TCP (IPv6)",
                 ARG_EQ(0, AF_INET6), ARG_MASKED_EQ(1, SOCK_TYPE_MASK_, SOCK_STREAM), ARG_EQ(2, 0)),
        ALLOW_IF(socket, "the same, protocol spelled out",
                 ARG_EQ(0, AF_INET6), ARG_MASKED_EQ(1, SOCK_TYPE_MASK_, SOCK_STREAM),
                 ARG_EQ(2, IPPROTO_TCP)),
        ALLOW(accept4, "accepting clients on the inherited listening sockets"),
        ALLOW(accept, "callers of plain accept()"),
        ALLOW(connect, "upstream connection, journal socket"),
        ALLOW(shutdown, "half-close towards client or upstream"),
        ALLOW(recvfrom, "recv(); MSG_PEEK at an idle registry connection"),
        ALLOW(sendto, "send() with MSG_NOSIGNAL"),
        ALLOW(recvmsg, "socket reads"),
        ALLOW(sendmsg, "socket writes; sd_journal_send() to /run/systemd/journal/socket"),
        ALLOW(getsockopt, "SO_ERROR after a non-blocking connect"),
        ALLOW(setsockopt, "TCP_NODELAY, SO_KEEPALIVE, buffer sizes, SO_LINGER 0 to reset a too slow reader; "
                          "the journal's SO_SNDBUF"),
        ALLOW(getsockname, "local address of a connection"),
        ALLOW(getpeername, "client address (X-Forwarded-For, per-IP limits)"),

        /* Signals and the process itself. Signals only to ourselves. */
        ALLOW(rt_sigreturn, "return from a signal handler"),
        ALLOW(rt_sigprocmask, "blocking signals for signalfd; abort()"),
        ALLOW(rt_sigaction, "(re)installing handlers; abort() resets SIGABRT"),
        ALLOW(getpid, "OpenSSL nonce data, abort()"),
        ALLOW(gettid, "abort(), raise(): signals go to the worker's own thread"),
        ALLOW_SELF(tgkill, "raise(), abort(): only to the worker itself"),
        ALLOW_SELF(kill, "re-raising a fatal signal: only to the worker itself"),
        ALLOW(getrandom, "OpenSSL's DRBG seeding and reseeding"),
        ALLOW(sysinfo, "glibc qsort() sizes its buffer from the physical memory size"),
        ALLOW(exit, "thread exit"),
        ALLOW(exit_group, "process exit"),

        /* Probes: answered with an error instead of a kill. */
        PROBE_IF(ioctl, ENOTTY, "isatty() from stdio and sanitizer reports: not a terminal",
                 ARG_EQ(1, TCGETS)),
        PROBE(fstat, EPERM, "stdio sizes its buffer with fstat and falls back to BUFSIZ"),
        PROBE(newfstatat, EPERM, "fstat() in glibc 2.36; allowing it would allow a stat by path"),
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

int proxy_sandbox_rule_get(size_t i, const char **ret_syscall, const char **ret_action, const char **ret_why) {
        if (i >= ELEMENTSOF(sandbox_rules))
                return -ENOENT;
        if (ret_syscall)
                *ret_syscall = sandbox_rules[i].syscall;
        if (ret_action)
                *ret_action = sandbox_rules[i].action_name;
        if (ret_why)
                *ret_why = sandbox_rules[i].why;
        return 0;
}

/* Builds the filter from sandbox_rules and loads it. The default action is kill, or log when
 * log_mode (REGVISOR_SECCOMP_LOG=1). */
static int sandbox_load_seccomp(bool log_mode) {
        _cleanup_(seccomp_releasep) scmp_filter_ctx ctx = NULL;
        pid_t self = getpid();
        int r;

        ctx = seccomp_init(log_mode ? SCMP_ACT_LOG : SCMP_ACT_KILL_PROCESS);
        if (!ctx)
                return -ENOMEM;

        /* A syscall through another ABI (int 0x80, x32) would bypass the x86_64 rules. */
        r = seccomp_attr_set(ctx, SCMP_FLTATR_ACT_BADARCH, SCMP_ACT_KILL_PROCESS);
        if (r < 0)
                return r;
        /* The worker should be single-threaded; if a library started a thread anyway, it gets the
         * filter too (or the load fails), never stays unfiltered. */
        r = seccomp_attr_set(ctx, SCMP_FLTATR_CTL_TSYNC, 1);
        if (r < 0)
                return r;

        for (size_t i = 0; i < ELEMENTSOF(sandbox_rules); i++) {
                const SandboxRule *rule = sandbox_rules + i;
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
static int sandbox_drop_bounding_set(void) {
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
static int sandbox_change_ids(uid_t uid, gid_t gid) {
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
static int sandbox_clear_caps(void) {
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

/*
 * The order, and why:
 *
 *  1. Non-dumpable first: we hold private keys, and from step 3 on we run as proxy_user, the
 *     same uid as every other worker; a dumpable process could be ptrace-attached or read via
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
 *  7. seccomp last, because steps 1 to 6 make calls (prctl, setresuid, capset) that the filter
 *     forbids.
 */
int proxy_sandbox_lockdown(uid_t uid, gid_t gid) {
        const char *e;
        bool log_mode;
        int r;

        if (uid == 0 || gid == 0 || uid == (uid_t) -1 || gid == (gid_t) -1)
                return -EINVAL;

        e = secure_getenv("REGVISOR_SECCOMP_LOG");
        log_mode = e && streq(e, "1");

        /* 1 */
        if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) < 0)
                return negative_errno();
        if (setrlimit(RLIMIT_CORE, &(struct rlimit){0, 0}) < 0)
                return negative_errno();

        /* 2 */
        r = sandbox_drop_bounding_set();
        if (r < 0)
                return r;

        /* 3 */
        r = sandbox_change_ids(uid, gid);
        if (r < 0)
                return r;

        /* 4 */
        if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) < 0)
                return negative_errno();
        if (prctl(PR_GET_DUMPABLE, 0, 0, 0, 0) != 0)
                return -EPERM;

        /* 5 */
        r = sandbox_clear_caps();
        if (r < 0)
                return r;

        /* 6 */
        if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
                return negative_errno();
        if (prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0) != 1)
                return -EPERM;

        /* 7 */
        return sandbox_load_seccomp(log_mode);
}

void proxy_sandbox_test_hook(void) {
        const char *what = secure_getenv("REGVISOR_TEST_FORBIDDEN_SYSCALL");
        int fd;

        if (!what || !*what)
                return;

        /* Each call is harmless should it be allowed: the filter decides at syscall entry,
         * before the kernel looks at the arguments. */
        if (streq(what, "execve")) {
                char *const argv[] = {(char *) "/", NULL};
                (void) execve("/", argv, argv + 1); /* a directory: EACCES without a filter */
        } else if (streq(what, "ptrace"))
                (void) ptrace(PTRACE_PEEKDATA, getpid(), NULL, NULL); /* ESRCH: not our tracee */
        else if (streq(what, "netlink")) {
                fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, 0 /* NETLINK_ROUTE */);
                if (fd >= 0)
                        (void) close(fd);
        } else if (streq(what, "open")) {
                fd = openat(AT_FDCWD, "/dev/null", O_RDONLY | O_CLOEXEC | O_NOCTTY);
                if (fd >= 0)
                        (void) close(fd);
        } else if (streq(what, "fork")) {
                pid_t pid = (pid_t) syscall(SYS_clone, SIGCHLD, NULL, NULL, NULL, NULL);
                if (pid == 0)
                        _exit(0);
        }

        /* Still alive: no filter, log mode, or an unknown value. Never pass silently. */
        abort();
}

/* SPDX-License-Identifier: MIT */
/*
 * The proxy worker's sandbox: credentials, capabilities, no_new_privs and
 * the seccomp allowlist. The contract is in sandbox.h; the policy, for
 * people, is policy/proxy-syscalls.md (kept in sync with the table below by
 * tests/unit/test-sandbox.c).
 */

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <seccomp.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/ptrace.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "lockdown.h"
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
 * parent pipe, stderr and libsystemd's journal socket. What it still does:
 * accept, read and write sockets, TLS
 * (OpenSSL 3.0: memory, getrandom, time), connect to the upstream (unix
 * socket or loopback TCP), wait in epoll, log.
 *
 * The row macros (ALLOW, ALLOW_IF, PROBE, ...), arguments, "self" rows and
 * probes are explained in common/lockdown.h, which loads the table after
 * its base rows (common/lockdown.c: memory, time, locks, signals to itself,
 * exit, the journal's socket, the stdio and journal probes).
 */

static const SandboxRule sandbox_rules[] = {
        /* Waiting: the event loop (the epoll fd exists before lockdown; no sd-event, so no
         * epoll_pwait2 or timerfd). */
        ALLOW(epoll_wait, "the event loop (epoll_wait() in glibc 2.36 is this call, also under ASan)"),
        ALLOW(epoll_ctl, "registering accepted and upstream sockets; a pooled registry connection leaves the set"),
        ALLOW(clock_nanosleep, "short back-off sleeps (nanosleep() in glibc 2.36)"),
        ALLOW(nanosleep, "short back-off sleeps (older callers, sanitizer runtimes)"),
        ALLOW(sched_yield, "spin-then-yield locks (sanitizer runtimes)"),

        /* I/O on descriptors the worker already holds. */
        ALLOW(read, "sockets, the signalfd, the parent pipe"),
        ALLOW(write, "sockets, stderr logging"),
        ALLOW(readv, "sockets"),
        ALLOW(writev, "sockets, stdio"),
        ALLOW_IF(fcntl, "making a socket non-blocking", ARG_EQ(1, F_SETFL)),
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
        ALLOW(recvfrom, "recv(); MSG_PEEK at an idle registry connection; a balancer's PROXY header read "
                        "bounded by its length, MSG_PEEK for one from an untrusted address (balancer.c)"),
        ALLOW(sendto, "send() with MSG_NOSIGNAL"),
        ALLOW(recvmsg, "socket reads"),
        ALLOW(sendmsg, "socket writes; sd_journal_send() to /run/systemd/journal/socket"),
        ALLOW(getsockopt, "SO_ERROR after a non-blocking connect"),
        ALLOW(setsockopt, "TCP_NODELAY, SO_KEEPALIVE, buffer sizes, SO_LINGER 0 to reset a too slow reader; "
                          "TCP_QUICKACK to ACK a client's last handshake flight at once; the journal's SO_SNDBUF"),
        ALLOW(getsockname, "local address of a connection"),
        ALLOW(getpeername, "client address (X-Forwarded-For, per-IP limits)"),

        /* Signals only to ourselves. */
        ALLOW_SELF(kill, "re-raising a fatal signal: only to the worker itself"),

        /* Probes: answered with an error instead of a kill. */
        PROBE(fstat, EPERM, "stdio sizes its buffer with fstat and falls back to BUFSIZ"),
        PROBE(newfstatat, EPERM, "fstat() in glibc 2.36; allowing it would allow a stat by path"),
};

int proxy_sandbox_rule_get(size_t i, const char **ret_syscall, const char **ret_action, const char **ret_why) {
        return lockdown_rule_get(sandbox_rules, ELEMENTSOF(sandbox_rules), i, ret_syscall, ret_action, ret_why);
}

/* Steps 1 to 6 (common/lockdown.c explains the order), then this table, last. */
int proxy_sandbox_lockdown(uid_t uid, gid_t gid) {
        int r;

        r = lockdown_drop_privileges(uid, gid);
        if (r < 0)
                return r;
        return lockdown_load_seccomp(sandbox_rules, ELEMENTSOF(sandbox_rules));
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

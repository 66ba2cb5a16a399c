/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <fcntl.h>
#include <linux/landlock.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <termios.h>
#include <unistd.h>

#include "lockdown.h"
#include "macro.h"
#include "sigsandbox.h"

/*
 * What the store does after lockdown: accept and serve its unix socket in
 * an epoll loop, read and write files below DIR (openat, mkdirat, linkat,
 * unlinkat, getdents64, fsync), log to stderr or the journal. It holds: the
 * listening socket, the epoll fd, DIR's fd, stderr.
 *
 * Path-based calls are allowed here because the store's job is files;
 * seccomp cannot look at paths. Landlock confines them to DIR (where the
 * kernel has it), and the user's permissions do in any case. What kills:
 * execve, fork/clone, ptrace, socket() but the journal's and a stream to the
 * registry ([signing] store = registry), mount and
 * namespace calls, prctl, setuid and friends, chmod/chown, rename,
 * symlink, and everything else without a row. The base rows every
 * sandboxed process has (memory, time, locks, signals to itself, exit, the
 * journal's socket, the stdio and journal probes) come first, from
 * common/lockdown.c.
 */
static const SandboxRule sigstore_rules[] = {
        /* The loop. */
        ALLOW(epoll_wait, "the event loop"),
        ALLOW(epoll_pwait, "the event loop (glibc)"),
        ALLOW(epoll_ctl, "registering connections"),

        /* Sockets: the connections from the proxy, and the journal. */
        ALLOW(accept4, "accepting on the listening socket"),
        ALLOW(recvfrom, "reading requests (recv())"),
        ALLOW(sendto, "writing answers (send() with MSG_NOSIGNAL)"),
        ALLOW(shutdown, "half-close after an error answer, then read the rest away"),
        ALLOW(sendmsg, "sd_journal_send() to /run/systemd/journal/socket"),
        ALLOW(connect, "the journal socket; the registry ([signing] store = registry; TCP: Landlock ABI 4 "
                       "allows its port only)"),
        ALLOW(setsockopt, "the journal socket's SO_SNDBUF; SO_RCVTIMEO/SO_SNDTIMEO on the registry's"),
        ALLOW(getsockopt, "libsystemd checks the journal socket"),

        /* Descriptors and files: below DIR only (Landlock, the user's permissions). */
        ALLOW(read, "request bytes, signature files"),
        ALLOW(write, "signature files, stderr logging"),
        ALLOW(writev, "stdio logging"),
        ALLOW(openat, "signature files and directories relative to DIR's fd (openat, O_NOFOLLOW); a file first "
                      "O_PATH, then /proc/self/fd/N once it is known regular (open_regular)"),
        ALLOW(mkdirat, "a repository's and a digest's directory, on the first signature"),
        ALLOW(linkat, "publishing a written temp file under its name; never replaces (EEXIST)"),
        ALLOW(unlinkat, "removing the temp name after the link, and temp files left by a crash"),
        ALLOW(fsync, "a signature file before it is linked, its directory after"),
        ALLOW(getdents64, "listing a digest's signatures (readdir)"),
        ALLOW(lseek, "readdir rewinds"),
        ALLOW(fstat, "a signature file is regular and small (fstat); fdopendir"),
        ALLOW(newfstatat, "fstat() in glibc 2.36 (AT_EMPTY_PATH on an open fd)"),
        ALLOW_IF(fcntl, "F_DUPFD_CLOEXEC: readdir on a copy of a directory fd", ARG_EQ(1, F_DUPFD_CLOEXEC)),
        ALLOW_IF(fcntl, "F_SETFL: a signature file is opened O_NONBLOCK (a FIFO is refused, never waited on), "
                        "then that is cleared (open_regular)", ARG_EQ(1, F_SETFL)),

        /* Sanitizer builds only. */
        ALLOW_SANITIZER(sched_yield, "sanitizer spin locks"),
        ALLOW_SANITIZER(nanosleep, "sanitizer back-off"),
        ALLOW_SANITIZER(clock_nanosleep, "sanitizer back-off"),
};

/* Added to the table only with [signing] store = registry (sigreg.c): a stream socket to the
 * registry, one per call. connect and setsockopt are the table's already (the journal's). */
static const SandboxRule sigstore_registry_rules[] = {
        ALLOW_IF(socket, "[signing] store = registry: a connection to the registry's unix socket per call",
                 ARG_EQ(0, AF_UNIX), ARG_MASKED_EQ(1, SOCK_TYPE_MASK_, SOCK_STREAM), ARG_EQ(2, 0)),
        ALLOW_IF(socket, "[signing] store = registry: the registry on loopback TCP ([registry] listen = tcp:)",
                 ARG_EQ(0, AF_INET), ARG_MASKED_EQ(1, SOCK_TYPE_MASK_, SOCK_STREAM), ARG_EQ(2, 0)),
        ALLOW_IF(socket, "[signing] store = registry: the registry on loopback TCP over IPv6",
                 ARG_EQ(0, AF_INET6), ARG_MASKED_EQ(1, SOCK_TYPE_MASK_, SOCK_STREAM), ARG_EQ(2, 0)),
};

int sigsandbox_rule_get(size_t i, const char **ret_syscall, const char **ret_action, const char **ret_why) {
        size_t own = lockdown_rule_count(ELEMENTSOF(sigstore_rules));

        if (i < own)
                return lockdown_rule_get(sigstore_rules, ELEMENTSOF(sigstore_rules), i, ret_syscall, ret_action,
                                         ret_why);
        /* Then the registry mode's rows, past the base rows lockdown_rule_get() would list again. */
        return lockdown_rule_get(sigstore_registry_rules, ELEMENTSOF(sigstore_registry_rules),
                                 lockdown_rule_count(0) + i - own, ret_syscall, ret_action, ret_why);
}

int sigsandbox_drop(uid_t uid, gid_t gid) {
        return lockdown_drop_privileges(uid, gid);
}

/* Landlock, from <linux/landlock.h> of newer kernels than Debian 12's headers (6.1: ABI 2). The
 * values are ABI and never change. */
#define LL_ACCESS_FS_TRUNCATE (1ULL << 14)   /* ABI 3 */
#define LL_ACCESS_FS_IOCTL_DEV (1ULL << 15)  /* ABI 5 */
#define LL_ACCESS_NET_BIND_TCP (1ULL << 0)   /* ABI 4 */
#define LL_ACCESS_NET_CONNECT_TCP (1ULL << 1)
#define LL_SCOPE_ABSTRACT_UNIX_SOCKET (1ULL << 0) /* ABI 6 */
#define LL_SCOPE_SIGNAL (1ULL << 1)
#define LL_RULE_PATH_BENEATH 1
#define LL_RULE_NET_PORT 2

struct ll_net_port_attr {
        uint64_t allowed_access;
        uint64_t port;
} __attribute__((packed));

/* struct landlock_ruleset_attr as of ABI 6; the size passed tells the kernel how much of it an
 * older ABI reads. */
struct ll_ruleset_attr {
        uint64_t handled_access_fs;
        uint64_t handled_access_net;
        uint64_t scoped;
};

struct ll_path_beneath_attr {
        uint64_t allowed_access;
        int32_t parent_fd;
} __attribute__((packed));

/* The rights the store keeps below DIR. Not: execute, refer (cross-directory links and renames;
 * temp files live in their final directory), removing directories (it never does), truncate,
 * device ioctls, special files, symlinks. */
#define LL_DIR_RIGHTS                                                                            \
        (LANDLOCK_ACCESS_FS_READ_FILE | LANDLOCK_ACCESS_FS_WRITE_FILE | LANDLOCK_ACCESS_FS_READ_DIR | \
         LANDLOCK_ACCESS_FS_REMOVE_FILE | LANDLOCK_ACCESS_FS_MAKE_REG | LANDLOCK_ACCESS_FS_MAKE_DIR)

/* The running kernel's Landlock ABI (>= 1), 0 when Landlock cannot be used (*ret_why: the
 * errno), or a negative errno. Unusable: ENOSYS (not built), EOPNOTSUPP (built, not enabled at
 * boot), and EPERM: the version query itself never fails with EPERM, so that is a seccomp filter
 * around this process (systemd-nspawn's allowlist in systemd 252 has no landlock_* calls, nor
 * has a unit's SystemCallFilter=@system-service). */
static int landlock_abi(int *ret_why) {
        long abi = syscall(SYS_landlock_create_ruleset, NULL, 0, LANDLOCK_CREATE_RULESET_VERSION);

        if (abi >= 1)
                return (int) abi;
        if (errno == ENOSYS || errno == EOPNOTSUPP || errno == EPERM) {
                *ret_why = errno;
                return 0;
        }
        return negative_errno();
}

static int landlock_confine(int dir_fd, uint16_t tcp_port, int abi) {
        struct ll_ruleset_attr attr = {
                .handled_access_fs = (LANDLOCK_ACCESS_FS_MAKE_SYM << 1) - 1, /* ABI 1: bits 0-12 */
        };
        size_t attr_size = sizeof(attr.handled_access_fs);
        struct ll_path_beneath_attr beneath = {.allowed_access = LL_DIR_RIGHTS, .parent_fd = dir_fd};
        _cleanup_close_ int ruleset = -EBADF;

        if (abi >= 2)
                attr.handled_access_fs |= LANDLOCK_ACCESS_FS_REFER;
        if (abi >= 3)
                attr.handled_access_fs |= LL_ACCESS_FS_TRUNCATE;
        if (abi >= 4) {
                attr.handled_access_net = LL_ACCESS_NET_BIND_TCP | LL_ACCESS_NET_CONNECT_TCP;
                attr_size = offsetof(struct ll_ruleset_attr, scoped);
        }
        if (abi >= 5)
                attr.handled_access_fs |= LL_ACCESS_FS_IOCTL_DEV;
        if (abi >= 6) {
                attr.scoped = LL_SCOPE_ABSTRACT_UNIX_SOCKET | LL_SCOPE_SIGNAL;
                attr_size = sizeof(attr);
        }

        ruleset = (int) syscall(SYS_landlock_create_ruleset, &attr, attr_size, 0);
        if (ruleset < 0)
                return negative_errno();
        if (syscall(SYS_landlock_add_rule, ruleset, LL_RULE_PATH_BENEATH, &beneath, 0) < 0)
                return negative_errno();
        /* The registry on loopback TCP: connect to its port only (ABI 4 handles TCP). */
        if (abi >= 4 && tcp_port != 0) {
                struct ll_net_port_attr port = {.allowed_access = LL_ACCESS_NET_CONNECT_TCP, .port = tcp_port};

                if (syscall(SYS_landlock_add_rule, ruleset, LL_RULE_NET_PORT, &port, 0) < 0)
                        return negative_errno();
        }
        /* Needs no_new_privs, which sigsandbox_drop() has set. */
        if (syscall(SYS_landlock_restrict_self, ruleset, 0) < 0)
                return negative_errno();
        return 0;
}

int sigsandbox_confine(int dir_fd, bool registry, uint16_t tcp_port, int *ret_landlock_abi,
                       int *ret_landlock_why) {
        SandboxRule rules[ELEMENTSOF(sigstore_rules) + ELEMENTSOF(sigstore_registry_rules)];
        size_t n = ELEMENTSOF(sigstore_rules);
        int abi, why = 0, r;

        abi = landlock_abi(&why);
        if (abi < 0)
                return abi;
        if (abi > 0) {
                r = landlock_confine(dir_fd, registry ? tcp_port : 0, abi);
                if (r < 0)
                        return r;
        }

        memcpy(rules, sigstore_rules, sizeof(sigstore_rules));
        if (registry) {
                memcpy(rules + n, sigstore_registry_rules, sizeof(sigstore_registry_rules));
                n += ELEMENTSOF(sigstore_registry_rules);
        }
        r = lockdown_load_seccomp(rules, n);
        if (r < 0)
                return r;
        *ret_landlock_abi = abi;
        if (ret_landlock_why)
                *ret_landlock_why = why;
        return 0;
}

int sigsandbox_test_escape(const char **ret_path) {
        const char *path = secure_getenv("REGVISOR_TEST_SIGSTORE_ESCAPE");
        int fd;

        if (!path || !*path)
                return 1;
        *ret_path = path;
        fd = openat(AT_FDCWD, path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
        if (fd < 0)
                return negative_errno();
        (void) close(fd);
        return 0;
}

/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * The proxy worker's sandbox: drop to proxy_user, clear every capability,
 * set no_new_privs and load the seccomp allowlist (libseccomp, default
 * action: kill the process). The allowlist is the table in sandbox.c; its
 * explanation for operators is policy/proxy-syscalls.md, and
 * tests/unit/test-sandbox.c checks that the two have the same rows: call,
 * action and reason.
 *
 * Library-like: nothing here logs; the worker logs the failure and exits.
 */

#include <stddef.h>
#include <sys/types.h>

/*
 * Locks the calling proxy worker down, for good. Call it once, in the
 * worker, after it holds everything it will ever need: the listening
 * sockets, the SSL_CTXs with their keys loaded, the resolved upstream
 * address, the shared-memory limits table, its epoll fd and signalfd,
 * and after it has logged at least once (see below). After it
 * returns 0 the worker opens no files and spawns nothing: doing so kills it
 * with SIGSYS, and the supervisor restarts it.
 *
 * Steps, in this order, each one fatal on failure:
 *   1. prctl(PR_SET_DUMPABLE, 0) and RLIMIT_CORE 0 (we hold private keys;
 *      also keeps other proxy_user processes from ptrace-attaching);
 *   2. drop the capability bounding set and the ambient set, lock the
 *      securebits (needs CAP_SETPCAP, so it happens while still root);
 *   3. setgroups(0, NULL), setresgid(gid), setresuid(uid), then verify that
 *      every real/effective/saved id changed and that setuid(0)/setgid(0)
 *      now fail;
 *   4. PR_SET_DUMPABLE 0 again (a credential change resets it to
 *      fs.suid_dumpable), verified;
 *   5. clear the permitted, effective and inheritable sets (libcap) and
 *      verify that all capability sets, bounding included, are empty;
 *   6. PR_SET_NO_NEW_PRIVS, verified;
 *   7. seccomp: build the filter from the table and load it, last.
 * sandbox.c explains why step 2 comes before step 3.
 *
 * uid and gid must not be 0. The caller must be root (precisely: hold
 * CAP_SETUID, CAP_SETGID and CAP_SETPCAP); there is no unprivileged mode.
 *
 * Environment: REGVISOR_SECCOMP_LOG=1 makes the filter's default action
 * SCMP_ACT_LOG instead of SCMP_ACT_KILL_PROCESS: calls outside the table
 * succeed and the kernel logs them (audit type=1326 SECCOMP, readable with
 * journalctl -k or ausearch -m SECCOMP). For finding missing rows during
 * development only; never set it in production.
 *
 * Sanitizer builds (ASan, as make unit builds the tests) apply the table's
 * sanitizer-only rows as well; the production build never does.
 *
 * What the caller must have done before: log one line (that fixes
 * log.c's journal-or-stderr choice, which needs fstat, and opens
 * libsystemd's journal socket) and call tzset() (glibc reads
 * /etc/localtime on the first time conversion, OpenSSL's certificate time
 * checks included). gid is the worker's only group after lockdown: it must
 * be the group that may connect to the registry's unix socket. The credential and capability steps apply
 * to the calling thread only: call it while the worker is single-threaded
 * (seccomp itself is synchronized to all threads).
 *
 * Returns 0, or a negative errno: -EINVAL for uid/gid 0 or a bad table
 * row, -EPERM when the drop did not take (e.g. setuid(0) still works), or
 * the errno of the failed call. On failure the process is half locked
 * down and must exit; the caller treats any error as fatal.
 */
int proxy_sandbox_lockdown(uid_t uid, gid_t gid);

/*
 * Test hook, compiled into every build and inert unless the environment
 * variable REGVISOR_TEST_FORBIDDEN_SYSCALL is set. The worker calls it once
 * from its loop after proxy_sandbox_lockdown(); when the variable names one
 * of "execve", "ptrace", "netlink" (socket(AF_NETLINK)), "open" (openat of
 * a file not yet open) or "fork", it makes that call, which the filter
 * answers by killing the worker with SIGSYS. The calls use arguments that
 * do no harm even without a filter. If the worker survives (no filter,
 * REGVISOR_SECCOMP_LOG=1, or an unknown value) the hook calls abort(), so
 * that a test sees SIGABRT, never a silently passing worker.
 */
void proxy_sandbox_test_hook(void);

/*
 * For tests and documentation: the i-th row of the policy table. On
 * success returns 0 and sets *ret_syscall to the call's name, *ret_action
 * to "allow" or "errno(ENAME)" and *ret_why to the row's justification
 * (static strings; each may be NULL). Returns -ENOENT when i is past the
 * last row; outputs untouched then.
 */
int proxy_sandbox_rule_get(size_t i, const char **ret_syscall, const char **ret_action, const char **ret_why);

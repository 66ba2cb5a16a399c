/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * The signature store's sandbox: the shared lockdown steps
 * (common/lockdown.h: the user, no capabilities, no_new_privs), then
 * Landlock confining the filesystem to the store's directory where the
 * kernel has it, then this process's own seccomp table, last. The table and
 * why each row is there: sigsandbox.c and policy/sigstore-syscalls.md.
 * Library-like: no logging; the caller logs what it got and exits on
 * error.
 */

#include <stddef.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

/*
 * Order of use: sigsandbox_drop() (still holding the listening socket and
 * the epoll fd), then open DIR as the user, then sigsandbox_confine() with
 * that fd. Each step is fatal on failure.
 */

/* Step 1 of 3: lockdown_drop_privileges(uid, gid). */
int sigsandbox_drop(uid_t uid, gid_t gid);

/*
 * Steps 2 and 3: Landlock, then seccomp.
 *
 * Landlock: a ruleset that handles every filesystem right the running
 * kernel knows (its ABI version, read at run time), TCP bind/connect from
 * ABI 4 and the abstract-socket and signal scopes from ABI 6, with one
 * rule: below dir_fd, read, write and list; create regular files and
 * directories; remove regular files; and, with registry ([signing] store =
 * registry) and a tcp_port (the registry on loopback TCP) where the ABI
 * handles TCP, connecting to that port. With registry the seccomp table
 * also allows a stream socket() to the registry (sigstore_registry_rules). Everything else on every filesystem is denied, to this
 * process, from now on. *ret_landlock_abi is the ABI applied (>= 1), or 0
 * when Landlock cannot be used, with the reason in *ret_landlock_why
 * (optional): ENOSYS (not built), EOPNOTSUPP (not enabled at boot), EPERM
 * (a seccomp filter around this process refuses it: systemd-nspawn's, or a
 * unit's SystemCallFilter allowlist). That is not an error: the user's
 * permissions and seccomp remain (the caller says so in the log once).
 *
 * Returns 0, or a negative errno (any Landlock failure other than
 * "unavailable", or a seccomp failure).
 */
int sigsandbox_confine(int dir_fd, bool registry, uint16_t tcp_port, int *ret_landlock_abi,
                       int *ret_landlock_why);

/* For tests and documentation: row i of the seccomp table (as
 * lockdown_rule_get()). */
int sigsandbox_rule_get(size_t i, const char **ret_syscall, const char **ret_action, const char **ret_why);

/*
 * Test hook, inert unless REGVISOR_TEST_SIGSTORE_ESCAPE names a path: the
 * store tries to create that file (O_WRONLY|O_CREAT|O_EXCL, 0600) right
 * after the lockdown and returns 0 when it could (the sandbox let it) or
 * the negative errno; 1 (and *ret_path untouched) when the variable is not
 * set. The caller logs the result; the test checks that it
 * failed with EACCES (Landlock) and that no file appeared.
 */
int sigsandbox_test_escape(const char **ret_path);

/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * The sandbox machinery every locked-down process shares (the proxy workers,
 * proxy/sandbox.c; the signature store, sigstore/sigsandbox.c): dropping to
 * an unprivileged user for good, and a seccomp allowlist declared as a
 * table of SandboxRule rows built with the macros below. The base rows
 * every such process needs (memory, time, locks, signals to itself, exit,
 * the journal's socket, the stdio and journal probes) are here, in
 * lockdown.c; each process keeps a table of its own rows for its own work,
 * with a reason per row.
 *
 * Library-like: nothing here logs; the caller logs the failure and exits.
 */

#include <seccomp.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>

/*
 * One row of a syscall policy. Everything not matched by a row hits the
 * default action, SCMP_ACT_KILL_PROCESS. A row may compare up to three
 * syscall arguments (ANDed); several rows for one call are ORed. Rows with
 * a0_is_self also require argument 0 to be our own pid, filled in at load.
 * Probes (rows with an errno action): calls a library makes only to find
 * something out and that it survives failing; they get an error instead of
 * a kill, so that a harmless probe cannot take the process down.
 */
typedef struct SandboxRule {
        const char *syscall;     /* as libseccomp names it (x86_64 names) */
        uint32_t action;         /* SCMP_ACT_ALLOW or SCMP_ACT_ERRNO(e) */
        const char *action_name; /* "allow" or "errno(ENAME)", for the documentation test */
        unsigned n_args;
        struct scmp_arg_cmp args[3];
        bool a0_is_self;     /* argument 0 must equal getpid() at lockdown */
        bool sanitizer_only; /* applied only in ASan builds */
        const char *why;
} SandboxRule;

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


/*
 * Steps 1 to 6 of a lockdown, each one fatal on failure, in this order:
 *   1. prctl(PR_SET_DUMPABLE, 0) and RLIMIT_CORE 0;
 *   2. drop the capability bounding set and the ambient set, lock the
 *      securebits (needs CAP_SETPCAP, so while still root);
 *   3. setgroups(0, NULL), setresgid(gid), setresuid(uid), verified, and
 *      setuid(0)/setgid(0) must now fail;
 *   4. PR_SET_DUMPABLE 0 again (the credential change reset it), verified;
 *   5. clear the permitted, effective and inheritable sets and verify that
 *      every set, bounding included, is empty;
 *   6. PR_SET_NO_NEW_PRIVS, verified.
 * lockdown.c explains the order. What may come between this and
 * lockdown_load_seccomp(): anything that needs no_new_privs and calls the
 * filter would forbid (a Landlock ruleset).
 *
 * uid and gid must not be 0 or -1 (-EINVAL). The caller must be root
 * (CAP_SETUID, CAP_SETGID, CAP_SETPCAP) and single-threaded: credentials
 * and capabilities change for the calling thread only. Returns 0 or a
 * negative errno (-EPERM when a drop did not take); on failure the process
 * is half locked down and must exit.
 */
int lockdown_drop_privileges(uid_t uid, gid_t gid);

/*
 * Step 7: builds the filter from the base rows and rules[0..n) and loads it (TSYNC: every
 * thread gets it, or the load fails). Default action SCMP_ACT_KILL_PROCESS;
 * another ABI (x32, int 0x80) kills too. Rows with sanitizer_only are
 * applied only in ASan builds.
 *
 * REGVISOR_SECCOMP_LOG=1 in the environment makes the default action
 * SCMP_ACT_LOG (calls outside the table succeed and the kernel logs them,
 * audit type=1326): for finding missing rows during development only.
 *
 * Returns 0, -EINVAL for a row naming an unknown call, or the negative
 * errno of libseccomp.
 */
int lockdown_load_seccomp(const SandboxRule *rules, size_t n);

/*
 * For tests and documentation: row i of the base rows followed by
 * rules[0..n), the order lockdown_load_seccomp() loads them in. On success returns 0 and
 * sets *ret_syscall and *ret_action ("allow", "errno(ENAME)",
 * "allow(sanitizer)"; static strings). -ENOENT when i >= n; outputs
 * untouched then.
 */
int lockdown_rule_get(const SandboxRule *rules, size_t n, size_t i, const char **ret_syscall,
                      const char **ret_action, const char **ret_why);

/* How many rows lockdown_rule_get() lists for a table of n rows: the base rows and the n. */
size_t lockdown_rule_count(size_t n);

/* SPDX-License-Identifier: MIT */
/*
 * The lockdown steps shared by every sandboxed process: credentials,
 * capabilities, no_new_privs, and loading a seccomp table. The contract is
 * in lockdown.h; the tables themselves live with their processes
 * (proxy/sandbox.c, sigstore/sigsandbox.c).
 */

#include <assert.h>
#include <errno.h>
#include <grp.h>
#include <linux/securebits.h>
#include <seccomp.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/capability.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "lockdown.h"
#include "macro.h"

static inline void seccomp_releasep(scmp_filter_ctx *ctx) {
        if (*ctx)
                seccomp_release(*ctx);
}

static inline void cap_freep(cap_t *c) {
        if (*c)
                (void) cap_free(*c);
}

int lockdown_rule_get(const SandboxRule *rules, size_t n, size_t i, const char **ret_syscall,
                      const char **ret_action, const char **ret_why) {
        if (i >= n)
                return -ENOENT;
        if (ret_syscall)
                *ret_syscall = rules[i].syscall;
        if (ret_action)
                *ret_action = rules[i].action_name;
        if (ret_why)
                *ret_why = rules[i].why;
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

        for (size_t i = 0; i < n_rules; i++) {
                const SandboxRule *rule = rules + i;
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
        if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) < 0)
                return negative_errno();
        if (prctl(PR_GET_DUMPABLE, 0, 0, 0, 0) != 0)
                return -EPERM;

        /* 5 */
        r = lockdown_clear_caps();
        if (r < 0)
                return r;

        /* 6 */
        if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
                return negative_errno();
        if (prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0) != 1)
                return -EPERM;

        return 0;
}


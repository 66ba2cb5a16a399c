/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * Running the distribution's tools (useradd, usermod, podman) as a child
 * process, never through a shell: argv is passed as is.
 */

#include <stdint.h>
#include <sys/types.h>

typedef struct {
        /* Run as this user (setgroups to its groups, setgid, setuid) when
         * uid != 0; HOME, USER, LOGNAME are set from it. */
        uid_t uid;
        gid_t gid;
        const char *user;
        const char *home;
        /* Extra NAME=VALUE entries on top of a minimal environment
         * (PATH, LANG=C.UTF-8). NULL-terminated, may be NULL. */
        char *const *env;
        /* Kill the child (SIGKILL) after this long; 0 = 120 s. */
        uint64_t timeout_usec;
} ProcessOptions;

/* Runs argv[0] (looked up in PATH) with stdin from /dev/null. Captures
 * stdout and stderr (each at most 1 MiB) into NUL-terminated buffers when
 * ret_stdout / ret_stderr are given. Returns the exit status (0..255), 128+N
 * for death by signal N, or a negative errno when it could not run it
 * (-ETIMEDOUT when it had to be killed, -ENOENT when the tool is missing). */
int process_run(char *const *argv, const ProcessOptions *opts, char **ret_stdout, char **ret_stderr);

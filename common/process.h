/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * Running the distribution's tools (useradd, usermod, podman) as a child
 * process, never through a shell: argv is passed as is.
 */

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#define PROCESS_CAPTURE_MAX (1024 * 1024)

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
        /* Past the cap, keep the last bytes rather than the first: for
         * tools whose result is their final line (registry garbage-collect
         * prints a line per blob, then its summary). The capture then
         * starts at the first whole line that was kept. */
        bool keep_tail;
} ProcessOptions;

/* Runs argv[0] (looked up in PATH) with stdin from /dev/null. Captures
 * stdout and stderr (each at most PROCESS_CAPTURE_MAX bytes: the first
 * ones, or the last with keep_tail) into NUL-terminated buffers when
 * ret_stdout / ret_stderr are given. Returns the exit status (0..255), 128+N
 * for death by signal N, or a negative errno when it could not run it
 * (-ETIMEDOUT when it had to be killed, -ENOENT when the tool is missing). */
int process_run(char *const *argv, const ProcessOptions *opts, char **ret_stdout, char **ret_stderr);

/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * Podman as the registry's service user, with all of its state outside
 * $HOME (the same global options and environment as the generated unit).
 */

#include <stdbool.h>
#include <sys/types.h>

typedef struct {
        const char *user;
        uid_t uid;
        gid_t gid;
        const char *home;
} PodmanUser;

/* Runs argv (any tool: podman, or find and du on the registry's storage)
 * as u, with env's NAME=VALUE entries on top of process_run()'s minimal
 * environment (may be NULL), killed after timeout_sec (0: 120 s). The one
 * place a PodmanUser becomes a process's identity. Returns as process_run(). */
int podman_user_run(const PodmanUser *u, char *const *argv, char *const *env, unsigned timeout_sec, bool keep_tail,
                    char **ret_stdout, char **ret_stderr);

/* Runs `podman GLOBAL-OPTIONS args...` as u. Same return convention as
 * process_run(): exit status, or negative errno if it could not run. */
int podman_run(const PodmanUser *u, char *const *args, unsigned timeout_sec, char **ret_stdout, char **ret_stderr);
/* The same, keeping the last PROCESS_CAPTURE_MAX bytes of each stream
 * rather than the first: for a tool whose result is its final line. */
int podman_run_tail(const PodmanUser *u, char *const *args, unsigned timeout_sec, char **ret_stdout,
                    char **ret_stderr);

/* 1 when the service user's storage holds an image with exactly this
 * reference (NAME@sha256:...), 0 when not, negative errno on error. */
int podman_image_present(const PodmanUser *u, const char *reference);

/* Loads an OCI archive (or oci: layout, or docker-archive) into the service
 * user's storage. Returns 0, or negative errno with *ret_error set. */
int podman_load(const PodmanUser *u, const char *archive, char **ret_error);

/* Pulls reference (never by tag: callers pass NAME@sha256:...). */
int podman_pull(const PodmanUser *u, const char *reference, char **ret_error);

/* The digests of images in the storage whose name is `name` (space
 * separated list in *ret_digests), for error messages on a mismatch. */
int podman_image_digests(const PodmanUser *u, const char *name, char **ret_digests);

/* Whether podman as u keeps its state outside u->home: `podman info` shows
 * GraphRoot and RunRoot not below the home directory, and none of podman's
 * per-user directories (~/.local/share/containers, ~/.config/containers,
 * ~/.cache/containers) exist. Shared by provisioning and `regvisor health`.
 * Returns 1 when so (*ret_detail: "GraphRoot X, RunRoot Y"), 0 when not
 * (*ret_detail says what is under $HOME), or a negative errno when podman
 * could not tell (*ret_detail says why). ret_detail may be NULL. */
int podman_state_outside_home(const PodmanUser *u, unsigned timeout_sec, char **ret_detail);

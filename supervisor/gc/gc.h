/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * `regvisor gc`: Distribution's garbage collection inside a safe window.
 *
 *   gc.c       the procedure: the window's steps in order, one cleanup path
 *              that always reopens pushes and restores read-write
 *   collect.c  what runs as the service user: `registry garbage-collect`
 *              in the container (podman exec), the stale upload sessions,
 *              the storage's size
 *   verify.c   every blob every tagged manifest references answers HEAD
 *   parse.c    pure: the registry's JSON, garbage-collect's summary
 */

#include <stdbool.h>
#include <stdint.h>

#include "config.h"
#include "health.h"
#include "parse.h"
#include "podman.h"

typedef struct GcOptions {
        bool dry_run; /* the window, the dry run and the share check; nothing deleted */
} GcOptions;

/* Runs the whole window with c (the loaded configuration). Logs each step
 * and the result (journal: REGVISOR_EVENT=gc-*), writes GC_STATUS_PATH.
 * 0 when it collected and every referenced blob answered; a negative errno
 * otherwise (logged). Pushes are open and the registry read-write again
 * on return, whatever happened. */
int gc_run(const Config *c, const GcOptions *o);

/* collect.c */
/* `registry garbage-collect [--dry-run]` in the running container. Never
 * --delete-untagged: on Distribution 2.8 it deletes the children of
 * multi-arch images. 0 with *ret, or a negative errno with *ret_error. */
int gc_collect(const PodmanUser *u, bool dry_run, GcSummary *ret, char **ret_error);
/* Removes the upload sessions (<repository>/_uploads/<id>) whose data has
 * not changed for max_age seconds, as the service user (a symlink planted
 * in the storage can only lead it to its own files). The count removed, or
 * a negative errno with *ret_error. */
int gc_purge_uploads(const PodmanUser *u, const char *storage, unsigned max_age, char **ret_error);
/* The bytes below storage (du, as the service user), or a negative errno. */
int64_t gc_storage_bytes(const PodmanUser *u, const char *storage);

/* verify.c */
typedef struct GcVerify {
        unsigned repositories, manifests, blobs;
        unsigned missing; /* referenced, but not 200 (each logged) */
} GcVerify;

/* Walks /v2/_catalog, every tag, every manifest (and the children of an
 * index) and HEADs every blob they reference, on the registry at ep,
 * within deadline (CLOCK_MONOTONIC usec). 0 with *ret (missing may be > 0),
 * or a negative errno (logged) when the walk itself failed. */
int gc_verify(const HealthEndpoint *ep, uint64_t deadline, GcVerify *ret);

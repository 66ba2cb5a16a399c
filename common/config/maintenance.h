/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * The maintenance state `regvisor gc` holds while it collects, read by the
 * supervisor (registry read-only) and the proxy's reload (pushes refused).
 *
 * One small file, MAINTENANCE_PATH, holding one word, and an OFD write lock
 * on it held by the gc process for as long as it runs. The state counts only
 * while that lock is held: a gc that crashed, was killed or lost its host
 * leaves at worst a file nobody holds, which reads as MAINTENANCE_NONE. So
 * no crash can leave pushes refused or the registry read-only: the
 * supervisor notices on its next probe tick (and at its start) and restores
 * both (supervisor/run/maintenance.c).
 */

#include <stdbool.h>

#define MAINTENANCE_PATH "/run/regvisor/maintenance"
/* The last gc's outcome, for /metrics (pages.c) and the operator. */
#define GC_STATUS_PATH "/var/lib/regvisor/gc-status"
/* What a refused push is told to wait (seconds). */
#define MAINTENANCE_RETRY_AFTER 60

typedef enum MaintenanceMode {
        MAINTENANCE_NONE,
        MAINTENANCE_PUSH_CLOSED, /* new pushes refused; the registry still read-write */
        MAINTENANCE_READONLY,    /* pushes refused and the registry restarted read-only */
        _MAINTENANCE_MAX,
} MaintenanceMode;

/* The state at path: MAINTENANCE_NONE when the file is missing, nobody
 * holds its lock, or it is not a regular file of root's (or of the
 * caller's). Never fails. */
MaintenanceMode maintenance_read(const char *path);

/* Takes the state for this process: creates path (0644, root's), takes its
 * OFD write lock without waiting and writes MAINTENANCE_PUSH_CLOSED.
 * Returns the descriptor (keep it open: closing it ends the state), -EBUSY
 * when another process holds it, or another negative errno. */
int maintenance_take(const char *path);

/* Writes mode through fd from maintenance_take(). 0 or a negative errno. */
int maintenance_set(int fd, MaintenanceMode mode);

/* Ends the state: removes path and closes fd (-1 ignored). */
void maintenance_release(const char *path, int fd);

const char *maintenance_mode_to_string(MaintenanceMode m);

/* The last gc's outcome at GC_STATUS_PATH: written by `regvisor gc` at its
 * end, rendered by the supervisor's /metrics. One "name value" line per
 * field, in this order. */
typedef struct GcStatus {
        unsigned long long finished; /* Unix time of the last run's end */
        unsigned long long success;  /* 1 when it collected and every referenced blob answered */
        unsigned long long bytes_freed;
        unsigned long long blobs_deleted;
        unsigned long long uploads_purged;
        unsigned long long seconds; /* how long the window lasted */
} GcStatus;

/* Writes *st atomically (0644 root). 0 or a negative errno. */
int gc_status_write(const char *path, const GcStatus *st);
/* Reads it; unknown lines are skipped. 0, -ENOENT, or a negative errno. */
int gc_status_read(const char *path, GcStatus *ret);

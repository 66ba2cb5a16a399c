/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * What `systemctl reload regvisor` may change, and how its outcome travels
 * back to the command systemd runs for it (docs/ARCHITECTURE.md,
 * "Supervision").
 *
 * Policy. A reload applies every key, except the ones a running process set
 * up once at its start and cannot redo without dropping what it serves:
 * those are the table in reload.c, and a reload that changes any of them is
 * refused as a whole, naming them. Everything else is applied: the proxy
 * parent hands the whole new Config to a new generation of workers (the
 * old one drains), so a key the workers read needs no row. A key a parent
 * (the supervisor or the proxy parent) only reads at its start MUST get a
 * row here.
 *
 * Outcome. The supervisor writes one line per reload to RELOAD_STATUS_PATH:
 *   "SEQ ok MESSAGE" or "SEQ failed MESSAGE"
 * SEQ counts the reloads the supervisor processed since it started (it is
 * never 0). `regvisor reload` (ExecReload=) reads SEQ, sends SIGHUP, and
 * waits for a larger one.
 */

#include <stdbool.h>

#include "config.h"

#define RELOAD_STATUS_PATH "/run/regvisor/reload-status"
/* The supervisor's own bound on the proxy's answer; `regvisor reload`
 * waits a little longer than that. */
#define RELOAD_PROXY_TIMEOUT_SEC 10

/* Who set up a restart-only key once: the check a process runs names only
 * its own rows (the proxy alone, `regvisor proxy`, is not the supervisor). */
typedef enum ReloadOwner {
        RELOAD_SUPERVISOR = 1 << 0,
        RELOAD_PROXY = 1 << 1,
} ReloadOwner;

/* The restart-only keys of owners (a mask of ReloadOwner) whose values
 * differ between running and fresh. Returns 0 when none differ (*ret_list
 * NULL), else their number with *ret_list = "[push] listen, [proxy]
 * workers" (caller frees); -ENOMEM. */
int reload_restart_only_changes(const Config *running, const Config *fresh, unsigned owners, char **ret_list);

/* Loads and validates the configuration at path into *ret (defaults first),
 * like verb_load_config() but without logging: on failure *ret_error is
 * "FILE:LINE: what was expected" (caller frees; may stay NULL on OOM). */
int reload_load_config(const char *path, Config *ret, char **ret_error);

/* A reload's configuration: the file at path loaded (reload_load_config())
 * and refused when it changes a restart-only key of owners against
 * running. 0 with *ret_fresh (caller frees with config_done()); or a
 * negative errno with *ret_refusal (caller frees; NULL on OOM) saying why,
 * e.g. "FILE: [push] listen changes only with RESTART" where restart says
 * how to restart. */
int reload_check_file(const char *path, const Config *running, unsigned owners, const char *restart,
                      Config *ret_fresh, char **ret_refusal);

/* Writes "SEQ ok|failed MESSAGE" to path, atomically, mode 0644. */
int reload_status_write(const char *path, unsigned long seq, bool ok, const char *message);

/* Reads the last outcome: *ret_seq (0 when the file is missing), *ret_ok and
 * *ret_message (may be NULL). */
int reload_status_read(const char *path, unsigned long *ret_seq, bool *ret_ok, char **ret_message);

/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * `regvisor pki sign --scope PATTERNS`: the push scope the registry host
 * gives a client it signs for, recorded as a [scopes] line of the
 * configuration itself (not a second file the proxy would also have to
 * read), so that `regvisor run`, its reload check and the operator all see
 * one truth. The line is appended at the end of the file in a [scopes]
 * section of its own (repeated sections add lines: common/config), which
 * changes the meaning of no line above it; the operator's own lines are
 * never rewritten.
 */

/* The configuration text (read from name) with "client = patterns" added
 * to [scopes]. Returns 1 with the new text in *ret_text, checked by
 * loading it as the configuration; 0 when client already has exactly these
 * patterns (nothing to write: idempotent); -EEXIST when it has other ones
 * (the operator changes them in the file); -ENOENT when the configuration
 * has no [scopes] yet: a first line would stop every other client's pushes
 * (a certificate without a line may not push once scopes exist), so that
 * is the operator's decision, in the file; -EINVAL for patterns that are
 * no scope (common/scope.h). Message in *ret_error. */
int scope_grant(const char *text, const char *name, const char *client, const char *patterns, char **ret_text,
                char **ret_error);

/* scope_grant() on the file at path, written back (write_file_atomic(),
 * its mode and owner kept) when it adds the line; 1, 0 and errors as
 * there. The read, the check and the write hold lock_file_for_update() of
 * path: two grants at once would both append to the same text, and the
 * second rename would drop the first's line (that client then refused:
 * closed, but lost). */
int scope_grant_file(const char *path, const char *client, const char *patterns, char **ret_error);

/* For tests: called between the read and the write of scope_grant_file(),
 * under its lock, to force two grants to overlap. */
extern void (*scope_grant_file_hook)(void);

/* SPDX-License-Identifier: MIT */
#pragma once

#include <stdbool.h>

/*
 * Logging at the boundary. Library-like code returns negative errno and does
 * not log; the caller that knows the context logs once, with these.
 *
 * Under systemd (JOURNAL_STREAM names our stderr) messages go to the journal
 * with structured fields; otherwise to stderr as "regvisor: message".
 */

#include <stdarg.h>
#include <stddef.h>
#include <syslog.h>

#include "macro.h"

/* Messages above this priority are dropped (LOG_INFO by default). */
void log_set_max_level(int level);
/* Messages written to stderr go to the journal as well (with their
 * REGVISOR_EVENT): for commands whose outcome the journal must record
 * however they are run. */
void log_set_tee_journal(bool on);

/* Logs at LOG_ERR/... and returns -abs(error) (or -EIO when error is 0), so
 * that "return log_error_errno(r, ...)" both reports and propagates; with a
 * UNIT= field naming the systemd unit the event is about (none: NULL). */
int log_unit_internal(int level, int error, const char *event, const char *unit, const char *fmt, ...)
        _printf_(5, 6);
#define log_internal(level, error, event, ...) log_unit_internal((level), (error), (event), NULL, __VA_ARGS__)

#define log_debug(...) (void) log_internal(LOG_DEBUG, 0, NULL, __VA_ARGS__)
#define log_info(...) (void) log_internal(LOG_INFO, 0, NULL, __VA_ARGS__)
#define log_notice(...) (void) log_internal(LOG_NOTICE, 0, NULL, __VA_ARGS__)
#define log_warning(...) (void) log_internal(LOG_WARNING, 0, NULL, __VA_ARGS__)
#define log_error(...) (void) log_internal(LOG_ERR, 0, NULL, __VA_ARGS__)
#define log_error_errno(error, ...) log_internal(LOG_ERR, (error), NULL, __VA_ARGS__)
#define log_warning_errno(error, ...) log_internal(LOG_WARNING, (error), NULL, __VA_ARGS__)
#define log_debug_errno(error, ...) log_internal(LOG_DEBUG, (error), NULL, __VA_ARGS__)
/* An event with a machine-readable REGVISOR_EVENT= field in the journal. */
#define log_event(level, event, ...) (void) log_internal((level), 0, (event), __VA_ARGS__)
#define log_unit_event(level, event, unit, ...) (void) log_unit_internal((level), 0, (event), (unit), __VA_ARGS__)

/* A value of a key=value log line from bytes somebody else chose (a path,
 * a method, a certificate subject): written to buf (size > 0) so that it is
 * exactly one field. Visible ASCII other than '"' and '\\' stays as is
 * ('=' too: a field starts only after a space and its key ends at its first
 * '=', so "subject=CN=ci,O=x" is one field); anything else makes the value
 * double-quoted, with '"' and '\\' backslash-escaped, space and '=' kept,
 * and every other byte (control, DEL,
 * non-ASCII) written as \xHH. An empty value is "-". A value too long for
 * buf is cut (a quoted one at an escape boundary, ending in "..." inside
 * its quotes), never into a second field.
 * Returns buf. */
const char *log_escape_value(const char *s, size_t n, char *buf, size_t size);
/* The same for a NUL-terminated string; NULL is "-". */
const char *log_escape(const char *s, char *buf, size_t size);

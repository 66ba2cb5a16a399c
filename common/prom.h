/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * The Prometheus text exposition format (0.0.4), written the one way: a
 * family's HELP and TYPE lines, then its samples "name{key="value",...}
 * value". The proxy's counters (proxy/metrics.c), the health checks
 * (supervisor/health) and the supervisor's own gauges all go through here,
 * so that escaping and layout are the same in every /metrics line. Writes
 * to a FILE (a memstream, mostly); the caller checks ferror() once.
 */

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

typedef struct {
        const char *key;   /* a label name: [a-zA-Z_][a-zA-Z0-9_]* */
        const char *value; /* any text; escaped on output */
} PromLabel;

/* "# HELP name help" and "# TYPE name type" (counter, gauge, histogram). */
void prom_family(FILE *out, const char *name, const char *type, const char *help);

/* A label value with backslash, double quote and newline escaped. */
void prom_label_value(FILE *out, const char *value);

/* One sample: name, the labels (none when n_labels is 0: no braces) and the
 * value as text ("1", "0.027", "+Inf"). */
void prom_sample(FILE *out, const char *name, const PromLabel *labels, size_t n_labels, const char *value);

/* The same with an integer value. */
void prom_sample_u64(FILE *out, const char *name, const PromLabel *labels, size_t n_labels, uint64_t value);
void prom_sample_i64(FILE *out, const char *name, const PromLabel *labels, size_t n_labels, int64_t value);

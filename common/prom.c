/* SPDX-License-Identifier: MIT */
#include <inttypes.h>

#include "prom.h"

void prom_family(FILE *out, const char *name, const char *type, const char *help) {
        fprintf(out, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

void prom_label_value(FILE *out, const char *value) {
        for (const char *p = value; *p; p++)
                switch (*p) {
                case '\\':
                        fputs("\\\\", out);
                        break;
                case '"':
                        fputs("\\\"", out);
                        break;
                case '\n':
                        fputs("\\n", out);
                        break;
                default:
                        fputc(*p, out);
                }
}

void prom_sample(FILE *out, const char *name, const PromLabel *labels, size_t n_labels, const char *value) {
        fputs(name, out);
        for (size_t i = 0; i < n_labels; i++) {
                fprintf(out, "%s%s=\"", i == 0 ? "{" : ",", labels[i].key);
                prom_label_value(out, labels[i].value);
                fputc('"', out);
        }
        if (n_labels > 0)
                fputc('}', out);
        fprintf(out, " %s\n", value);
}

void prom_sample_u64(FILE *out, const char *name, const PromLabel *labels, size_t n_labels, uint64_t value) {
        char v[24];

        (void)snprintf(v, sizeof v, "%" PRIu64, value);
        prom_sample(out, name, labels, n_labels, v);
}

void prom_sample_i64(FILE *out, const char *name, const PromLabel *labels, size_t n_labels, int64_t value) {
        char v[24];

        (void)snprintf(v, sizeof v, "%" PRId64, value);
        prom_sample(out, name, labels, n_labels, v);
}

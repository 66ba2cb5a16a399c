/* SPDX-License-Identifier: MIT */
/*
 * What the status listener (status.c) answers: /livez from the loop itself,
 * /readyz from the table's state and the proxy port checks, /metrics in
 * Prometheus text (common/prom.c) with the supervisor's state and the
 * proxy's counters.
 */
#include <stdio.h>

#include "macro.h"
#include "maintenance.h"
#include "metrics.h"
#include "prom.h"
#include "supervisor.h"

/* 200 "ok" only in SUP_RUNNING with both proxy ports accepting; otherwise
 * 503 and one line per failing part. */
static int readyz(Supervisor *s, FILE *out) {
        if (s->state == SUP_RUNNING && s->proxy_listening) {
                fputs("ok\n", out);
                return 200;
        }
        if (s->state != SUP_RUNNING)
                fprintf(out, "registry: %s%s%s\n", supervisor_state_to_string(s->state), s->last_failure ? ": " : "",
                        s->last_failure ? s->last_failure : "");
        for (int i = 0; i < 2; i++)
                if (!s->port_ok[i])
                        fprintf(out, "proxy-%s: port %u does not accept connections at %s\n",
                                i == 0 ? "pull" : "push",
                                i == 0 ? s->config.pull.listen.port : s->config.push.listen.port,
                                s->probe_host[i]);
        return 503;
}

/* The supervisor's own one-sample families, as data: name, type, help and
 * how to read the value from the Supervisor. */
typedef struct {
        const char *name;
        const char *type;
        const char *help;
        double (*value)(const Supervisor *s);
} Gauge;

static double registry_ready(const Supervisor *s) {
        return s->state == SUP_RUNNING;
}
static double registry_restarts(const Supervisor *s) {
        return s->restarts;
}
static double failures_in_window(const Supervisor *s) {
        return s->n_failures;
}
static double backoff_seconds(const Supervisor *s) {
        return s->state == SUP_BACKOFF ? s->backoff_delay_ms / 1000.0 : 0.0;
}
static double last_ready(const Supervisor *s) {
        return (double) s->last_probe_ok_wall;
}
static double proxy_listening(const Supervisor *s) {
        return s->proxy_listening;
}
static double proxy_restarts(const Supervisor *s) {
        return s->proxy_restarts;
}

static double image_tags(const Supervisor *s) {
        return (double) s->census_tags;
}
static double image_tags_signed(const Supervisor *s) {
        return (double) s->census_signed;
}
static double image_tags_unsigned(const Supervisor *s) {
        return (double) s->census_unsigned;
}
static double census_time(const Supervisor *s) {
        return (double) s->census_wall;
}

static const Gauge gauges[] = {
        {"regvisor_registry_ready", "gauge", "1 when GET /v2/ on the registry's socket answers 200.",
         registry_ready},
        {"regvisor_registry_restarts_total", "counter", "Restarts of the registry by the supervisor.",
         registry_restarts},
        {"regvisor_registry_failures_in_window", "gauge", "Failures counted towards restart_limit.",
         failures_in_window},
        {"regvisor_registry_backoff_seconds", "gauge", "Current restart delay (0 unless waiting).",
         backoff_seconds},
        {"regvisor_registry_last_ready_timestamp_seconds", "gauge", "Last successful probe.", last_ready},
        {"regvisor_proxy_listening", "gauge", "1 when both proxy ports accept connections.", proxy_listening},
        {"regvisor_proxy_restarts_total", "counter", "Restarts of the proxy by the supervisor.", proxy_restarts},
        {"regvisor_image_tags", "gauge", "Tags in the registry's storage at the last signature census.",
         image_tags},
        {"regvisor_image_tags_signed", "gauge",
         "Tags with a signature podman accepts (trusted key, digest, name) at the last census.",
         image_tags_signed},
        {"regvisor_image_tags_unsigned", "gauge", "Tags a verified pull refuses, at the last census.",
         image_tags_unsigned},
        {"regvisor_image_census_timestamp_seconds", "gauge", "When the last signature census ended (0: none yet).",
         census_time},
};

/* regvisor gc: its window now, and what its last run did (GC_STATUS_PATH,
 * written by the gc process; absent until the first run). */
static void gc_metrics(const Supervisor *s, FILE *out) {
        GcStatus st = {};
        const struct {
                const char *name, *help;
                const unsigned long long *value;
        } rows[] = {
                {"regvisor_gc_last_run_timestamp_seconds", "End of the last regvisor gc.", &st.finished},
                {"regvisor_gc_last_success", "1 when the last regvisor gc collected and verified.", &st.success},
                {"regvisor_gc_last_freed_bytes", "Storage bytes the last regvisor gc freed.", &st.bytes_freed},
                {"regvisor_gc_last_deleted_blobs", "Blobs the last regvisor gc deleted.", &st.blobs_deleted},
                {"regvisor_gc_last_purged_uploads", "Stale upload sessions the last regvisor gc removed.",
                 &st.uploads_purged},
                {"regvisor_gc_last_duration_seconds", "How long the last regvisor gc's window lasted.", &st.seconds},
        };

        prom_family(out, "regvisor_registry_readonly", "gauge",
                    "1 while the registry runs read-only for regvisor gc.");
        prom_sample_u64(out, "regvisor_registry_readonly", NULL, 0, s->registry_readonly);
        if (gc_status_read(GC_STATUS_PATH, &st) < 0)
                return;
        for (size_t i = 0; i < ELEMENTSOF(rows); i++) {
                prom_family(out, rows[i].name, "gauge", rows[i].help);
                prom_sample_u64(out, rows[i].name, NULL, 0, *rows[i].value);
        }
}

static int metrics(Supervisor *s, FILE *out) {
        prom_family(out, "regvisor_supervisor_state", "gauge", "The supervisor's state (1 for the current one).");
        for (int i = 0; i < _SUP_STATE_MAX; i++)
                prom_sample_i64(out, "regvisor_supervisor_state",
                                &(PromLabel) {"state", supervisor_state_to_string(i)}, 1, i == (int) s->state);
        for (size_t i = 0; i < ELEMENTSOF(gauges); i++) {
                char v[32];

                /* %.15g: whole numbers (counts, timestamps) print as digits,
                 * the backoff delay keeps its milliseconds. */
                (void) snprintf(v, sizeof v, "%.15g", gauges[i].value(s));
                prom_family(out, gauges[i].name, gauges[i].type, gauges[i].help);
                prom_sample(out, gauges[i].name, NULL, 0, v);
        }
        prom_family(out, "regvisor_certificate_expiry_timestamp_seconds", "gauge", "notAfter of each certificate.");
        for (size_t i = 0; i < s->n_certs; i++)
                prom_sample_i64(out, "regvisor_certificate_expiry_timestamp_seconds",
                                &(PromLabel) {"certificate", s->certs[i].name}, 1, s->certs[i].not_after);
        gc_metrics(s, out);
        prom_family(out, "regvisor_info", "gauge", "The running version and the pinned image.");
        prom_sample(out, "regvisor_info",
                    (const PromLabel[]) {{"version", REGVISOR_VERSION}, {"image_digest", s->config.image_digest ? s->config.image_digest : ""}},
                    2,
                    "1");
        if (s->metrics)
                (void) proxy_metrics_render(s->metrics, out);
        return 200;
}

int pages_render(StatusEndpoint which, FILE *out, void *userdata) {
        Supervisor *s = userdata;

        switch (which) {
        case STATUS_LIVEZ:
                /* Answered by the loop itself: if this arrives, it runs. */
                fputs("ok\n", out);
                return 200;
        case STATUS_READYZ:
                return readyz(s, out);
        case STATUS_METRICS:
                return metrics(s, out);
        }
        return 500;
}

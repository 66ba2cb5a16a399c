/* SPDX-License-Identifier: MIT */
/*
 * What the status listener (status.c) answers: /livez from the loop itself,
 * /readyz from the table's state and the proxy port checks, /metrics in
 * Prometheus text with the supervisor's state and the proxy's counters.
 */
#include <stdio.h>

#include "macro.h"
#include "metrics.h"
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

static int metrics(Supervisor *s, FILE *out) {
        fputs("# HELP regvisor_supervisor_state The supervisor's state (1 for the current one).\n"
              "# TYPE regvisor_supervisor_state gauge\n",
              out);
        for (int i = 0; i < _SUP_STATE_MAX; i++)
                fprintf(out, "regvisor_supervisor_state{state=\"%s\"} %d\n", supervisor_state_to_string(i),
                        i == (int) s->state);
        fprintf(out,
                "# HELP regvisor_registry_ready 1 when GET /v2/ on the registry's socket answers 200.\n"
                "# TYPE regvisor_registry_ready gauge\n"
                "regvisor_registry_ready %d\n"
                "# HELP regvisor_registry_restarts_total Restarts of the registry by the supervisor.\n"
                "# TYPE regvisor_registry_restarts_total counter\n"
                "regvisor_registry_restarts_total %u\n"
                "# HELP regvisor_registry_failures_in_window Failures counted towards restart_limit.\n"
                "# TYPE regvisor_registry_failures_in_window gauge\n"
                "regvisor_registry_failures_in_window %u\n"
                "# HELP regvisor_registry_backoff_seconds Current restart delay (0 unless waiting).\n"
                "# TYPE regvisor_registry_backoff_seconds gauge\n"
                "regvisor_registry_backoff_seconds %.3f\n"
                "# HELP regvisor_registry_last_ready_timestamp_seconds Last successful probe.\n"
                "# TYPE regvisor_registry_last_ready_timestamp_seconds gauge\n"
                "regvisor_registry_last_ready_timestamp_seconds %lld\n"
                "# HELP regvisor_proxy_listening 1 when both proxy ports accept connections.\n"
                "# TYPE regvisor_proxy_listening gauge\n"
                "regvisor_proxy_listening %d\n"
                "# HELP regvisor_proxy_restarts_total Restarts of the proxy by the supervisor.\n"
                "# TYPE regvisor_proxy_restarts_total counter\n"
                "regvisor_proxy_restarts_total %u\n",
                s->state == SUP_RUNNING, s->restarts, s->n_failures,
                s->state == SUP_BACKOFF ? s->backoff_delay_ms / 1000.0 : 0.0,
                (long long) s->last_probe_ok_wall, s->proxy_listening, s->proxy_restarts);
        fputs("# HELP regvisor_certificate_expiry_timestamp_seconds notAfter of each certificate.\n"
              "# TYPE regvisor_certificate_expiry_timestamp_seconds gauge\n",
              out);
        for (size_t i = 0; i < s->n_certs; i++)
                fprintf(out, "regvisor_certificate_expiry_timestamp_seconds{certificate=\"%s\"} %lld\n",
                        s->certs[i].name, (long long) s->certs[i].not_after);
        fprintf(out,
                "# HELP regvisor_info The running version and the pinned image.\n"
                "# TYPE regvisor_info gauge\n"
                "regvisor_info{version=\"%s\",image_digest=\"%s\"} 1\n",
                REGVISOR_VERSION, s->config.image_digest);
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

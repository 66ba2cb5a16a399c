/* SPDX-License-Identifier: MIT */
/*
 * Whether the registry and the proxy are up, as events of the table: the
 * registry probe every probe_interval (GET /v2/ until ready, then OPTIONS *)
 * gives SUP_EV_PROBE_OK or, failing for unhealthy_after, SUP_EV_UNHEALTHY;
 * each tick also checks that both proxy ports accept a connection, which
 * READY=1 and /readyz wait for.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "macro.h"
#include "probe.h"
#include "supervisor.h"

/* Which request the probe sends in the current state (see on_probe_timer). */
static const char *probe_name(const Supervisor *s) {
        return s->state == SUP_RUNNING ? "OPTIONS *" : "GET /v2/";
}

static void on_probe_done(int result, unsigned code, void *userdata) {
        Supervisor *s = userdata;
        uint64_t now = now_usec(), since;

        s->probe = NULL;
        if (result == 0 && code == 200) {
                s->last_probe_ok = now;
                s->last_probe_ok_wall = time(NULL);
                table_dispatch(s, SUP_EV_PROBE_OK, NULL);
        } else {
                since = s->last_probe_ok > s->probing_since ? s->last_probe_ok : s->probing_since;
                if (now - since >= (uint64_t) s->config.unhealthy_after_ms * USEC_PER_MSEC) {
                        _cleanup_free_ char *why = NULL;
                        if ((result < 0 ? asprintf(&why, "%s failing for %llu ms: %s", probe_name(s),
                                                   (unsigned long long) ((now - since) / 1000), strerror(-result))
                                        : asprintf(&why, "%s failing for %llu ms: HTTP %u", probe_name(s),
                                                   (unsigned long long) ((now - since) / 1000), code)) < 0)
                                why = NULL;
                        table_dispatch(s, SUP_EV_UNHEALTHY, why ? why : "probe failing");
                }
        }
        if (s->state == SUP_STARTING || s->state == SUP_WAITING_READY || s->state == SUP_RUNNING)
                readiness_schedule(s, (uint64_t) s->config.probe_interval_ms * USEC_PER_MSEC);
}

static void on_port_probe_done(Supervisor *s, int which, int result) {
        bool was = s->proxy_listening;

        s->port_probe[which] = NULL;
        s->port_ok[which] = result == 0;
        s->proxy_listening = s->port_ok[0] && s->port_ok[1];
        if (s->proxy_listening != was)
                log_event(s->proxy_listening ? LOG_INFO : LOG_WARNING, "proxy-listening",
                          "proxy ports %u and %u %s", s->config.pull.listen.port, s->config.push.listen.port,
                          s->proxy_listening ? "accept connections" : "stopped accepting connections");
        notify_maybe_ready(s);
}

static void on_pull_probe_done(int result, unsigned code, void *userdata) {
        on_port_probe_done(userdata, 0, result);
}

static void on_push_probe_done(int result, unsigned code, void *userdata) {
        on_port_probe_done(userdata, 1, result);
}

/* Where to check that each proxy port accepts: the address `regvisor
 * health` checks too (probe_proxy_host()), so /readyz and health speak of
 * the same connection. Follows [pull]/[push] allow_cidrs across reloads. */
void readiness_update_hosts(Supervisor *s) {
        const PortConfig *port[2] = {&s->config.pull, &s->config.push};

        for (int i = 0; i < 2; i++)
                if (probe_proxy_host(port[i], s->probe_host[i]) < 0)
                        (void) snprintf(s->probe_host[i], sizeof s->probe_host[i], "127.0.0.1");
}

static void port_probes_start(Supervisor *s) {
        static const ProbeDone done[2] = {on_pull_probe_done, on_push_probe_done};
        const ListenAddress *a[2] = {&s->config.pull.listen, &s->config.push.listen};
        uint64_t timeout = (uint64_t) s->config.probe_timeout_ms * USEC_PER_MSEC;

        for (int i = 0; i < 2; i++)
                if (!s->port_probe[i] &&
                    probe_connect_start(s->event, s->probe_host[i], a[i]->port, timeout, done[i], s,
                                        &s->port_probe[i]) < 0)
                        on_port_probe_done(s, i, -EIO);
}

static int on_probe_timer(sd_event_source *src, uint64_t usec, void *userdata) {
        Supervisor *s = userdata;
        int r;

        port_probes_start(s);
        if (s->probe)
                return 0;
        /* GET /v2/ until ready; then a probe the registry does not log (one
         * journal line per state change, not two per probe). */
        r = (s->state == SUP_RUNNING ? probe_alive_start : probe_start)(
                s->event, &s->config.listen, (uint64_t) s->config.probe_timeout_ms * USEC_PER_MSEC, on_probe_done, s,
                &s->probe);
        if (r < 0) {
                s->probe = NULL;
                on_probe_done(r, 0, s);
        }
        return 0;
}

void readiness_schedule(Supervisor *s, uint64_t delay_usec) {
        s->probe_timer = sd_event_source_disable_unref(s->probe_timer);
        if (sd_event_add_time_relative(s->event, &s->probe_timer, CLOCK_MONOTONIC, delay_usec, 0, on_probe_timer,
                                       s) < 0)
                log_error("cannot arm the probe timer");
}

void readiness_stop(Supervisor *s) {
        s->probe_timer = sd_event_source_disable_unref(s->probe_timer);
        if (s->probe) {
                probe_cancel(s->probe);
                s->probe = NULL;
        }
        for (int i = 0; i < 2; i++)
                if (s->port_probe[i]) {
                        probe_cancel(s->port_probe[i]);
                        s->port_probe[i] = NULL;
                }
}

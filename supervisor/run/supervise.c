/* SPDX-License-Identifier: MIT */
/*
 * supervisor_run(): the start-up of `regvisor run` in the order
 * ARCHITECTURE.md gives, the event loop, and the teardown. What happens
 * once the loop runs is the table's (table.c); supervisor.h says which file
 * does what.
 */
#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <systemd/sd-bus.h>
#include <systemd/sd-daemon.h>
#include <systemd/sd-event.h>
#include <unistd.h>

#include "bus.h"
#include "log.h"
#include "macro.h"
#include "metrics.h"
#include "paths.h"
#include "reload.h"
#include "supervisor.h"

static int on_signal(sd_event_source *src, const struct signalfd_siginfo *si, void *userdata) {
        Supervisor *s = userdata;

        table_dispatch(s, si->ssi_signo == SIGHUP ? SUP_EV_HUP : SUP_EV_TERM, NULL);
        return 0;
}

/* The service user's uid, and the proxy user's group joined: the
 * registry's socket directory is 2750 service:proxy-group and our unit
 * keeps no CAP_DAC_*, so the probe needs that group. */
static int identities_take(Supervisor *s) {
        struct passwd *pw;
        struct group *gr;

        pw = getpwnam(s->config.service_user);
        if (!pw)
                return log_error_errno(-ESRCH, "service user %s does not exist: run `regvisor provision`",
                                       s->config.service_user);
        s->uid = pw->pw_uid;
        s->gid = pw->pw_gid;

        gr = getgrnam(s->config.proxy_user);
        if (gr && setgroups(1, &gr->gr_gid) < 0)
                log_warning("cannot join group %s: %m; probing the registry's socket may fail",
                            s->config.proxy_user);
        return 0;
}

/* The loop, with SIGTERM/SIGINT/SIGHUP as events and SIGCHLD blocked for
 * sd_event_add_child(); WATCHDOG=1 from the loop itself at half of
 * WatchdogSec. */
static int loop_new(Supervisor *s) {
        sigset_t mask;
        int r;

        sigemptyset(&mask);
        sigaddset(&mask, SIGTERM);
        sigaddset(&mask, SIGINT);
        sigaddset(&mask, SIGHUP);
        sigaddset(&mask, SIGCHLD);
        (void) sigprocmask(SIG_BLOCK, &mask, NULL);

        r = sd_event_default(&s->event);
        if (r < 0)
                return log_error_errno(r, "cannot create the event loop: %s", strerror(-r));
        if ((r = sd_event_add_signal(s->event, NULL, SIGTERM, on_signal, s)) < 0 ||
            (r = sd_event_add_signal(s->event, NULL, SIGINT, on_signal, s)) < 0 ||
            (r = sd_event_add_signal(s->event, NULL, SIGHUP, on_signal, s)) < 0)
                return log_error_errno(r, "cannot watch signals: %s", strerror(-r));
        (void) sd_event_set_watchdog(s->event, true);
        return 0;
}

/* Steps 1-4 of the start-up: the user manager, the image, the unit's
 * signals. */
static int registry_prepare(Supervisor *s) {
        int r;

        notify_status(s, "checking the user manager and the image");
        r = bus_open_system(&s->system_bus);
        if (r < 0)
                return log_error_errno(r, "cannot connect to the system bus: %s", strerror(-r));
        r = preflight_user_manager(s);
        if (r < 0)
                return r;
        r = preflight_image(s);
        if (r < 0) {
                notify_status(s, "refusing to start: pinned image %s not present", s->config.image_digest);
                return r;
        }
        r = unit_watch(s);
        if (r < 0)
                return r;
        r = maintenance_start(s);
        if (r < 0)
                return r;
        s->registry_restart = r > 0;
        return 0;
}

/* The status listener, and the proxy's counters: a memfd shared with it,
 * read here for /metrics. */
static int status_serve(Supervisor *s) {
        int r;

        certs_load(s);
        r = status_server_new(s->event, &s->config.status_listen, &s->config.status_allow_cidrs, pages_render, s,
                              &s->status_server);
        if (r < 0)
                return log_error_errno(r, "cannot listen on [status] listen port %u: %s",
                                       s->config.status_listen.port, strerror(-r));

        r = proxy_metrics_memfd_new(&s->metrics_fd);
        if (r >= 0)
                r = proxy_metrics_map_fd(s->metrics_fd, false, (ProxyMetrics **)&s->metrics);
        if (r < 0)
                log_warning("cannot share the proxy's counters: %s; /metrics shows no proxy metrics",
                            strerror(-r));
        return 0;
}

void supervisor_done(Supervisor *s) {
        readiness_stop(s);
        /* Leaving on an error path: do not orphan the proxy. */
        proxy_child_end(s);
        sigstore_child_end(s);
        census_end(s);
        proxy_metrics_unmap(s->metrics);
        if (s->metrics_fd >= 0)
                (void) close(s->metrics_fd);
        status_server_free(s->status_server);
        certs_clear(s);
        reconf_done(s);
        renew_done(s);
        sd_event_source_disable_unref(s->backoff_timer);
        sd_event_source_disable_unref(s->stop_timer);
        sd_bus_slot_unref(s->job_call);
        if (s->user_bus)
                sd_bus_flush_close_unref(s->user_bus);
        if (s->system_bus)
                sd_bus_flush_close_unref(s->system_bus);
        sd_event_unref(s->event);
        free_many(s->unit_path, s->job, s->early_job, s->early_result, s->last_failure);
        config_done(&s->config);
}

int supervisor_run(const char *config_path, Config *config) {
        Supervisor s = {
                .config_path = config_path,
                .reload_status_path = RELOAD_STATUS_PATH,
                .config = *config,
                .state = SUP_STARTING,
                .metrics_fd = -1,
                .census_fd = -1,
                .report_pipe = {-1, -1},
        };
        int r;

        *config = (Config) {};
        /* regvisor.socket's listening sockets (socket activation): kept
         * here, close-on-exec, for every proxy this supervisor starts, so
         * the kernel queues connections across a restart of either. */
        s.n_listen_fds = sd_listen_fds(1);
        if (s.n_listen_fds < 0) {
                log_warning("socket activation: %s; the proxy binds its ports itself", strerror(-s.n_listen_fds));
                s.n_listen_fds = 0;
        }
        r = identities_take(&s);
        if (r >= 0)
                r = loop_new(&s);
        if (r >= 0)
                r = registry_prepare(&s);
        if (r >= 0)
                r = status_serve(&s);
        if (r < 0)
                goto out;
        reconf_setup(&s);
        census_start(&s);
        renew_setup(&s);
        readiness_update_hosts(&s);
        r = sigstore_child_spawn(&s);
        if (r >= 0)
                r = proxy_child_spawn(&s);
        if (r < 0)
                goto out;

        log_unit_event(LOG_INFO, "start", REGISTRY_UNIT_NAME, "supervising %s (%s)", REGISTRY_UNIT_NAME,
                       s.config.image);
        if (s.registry_restart)
                table_restart(&s);
        else
                table_start(&s);
        r = sd_event_loop(s.event);
        if (r < 0)
                log_error_errno(r, "event loop failed: %s", strerror(-r));
        else
                r = s.exit_status;
out:
        supervisor_done(&s);
        return r;
}

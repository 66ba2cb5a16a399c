/* SPDX-License-Identifier: MIT */
/*
 * What `regvisor run` tells systemd over its notify socket: READY=1 once
 * the registry answers and both proxy ports accept (Type=notify), STOPPING=1,
 * RELOADING=1 and READY=1 around a reload, and STATUS= lines that say how
 * things are (systemctl status). Without NOTIFY_SOCKET all of it is a no-op.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <systemd/sd-daemon.h>

#include "macro.h"
#include "supervisor.h"

void notify_status(Supervisor *s, const char *fmt, ...) {
        _cleanup_free_ char *line = NULL;
        va_list ap;

        va_start(ap, fmt);
        if (vasprintf(&line, fmt, ap) < 0)
                line = NULL;
        va_end(ap);
        if (line)
                (void) sd_notifyf(false, "STATUS=%s", line);
}

void notify_maybe_ready(Supervisor *s) {
        if (s->state != SUP_RUNNING)
                return;
        if (s->proxy_listening && !s->ready_sent) {
                (void) sd_notify(false, "READY=1");
                s->ready_sent = true;
        }
        notify_status(s, "registry ready, proxy %s on %u/%u; %u registry restart%s, %u proxy restart%s%s%s",
               s->proxy_listening ? "listening" : "NOT listening", s->config.pull.listen.port,
               s->config.push.listen.port, s->restarts, s->restarts == 1 ? "" : "s", s->proxy_restarts,
               s->proxy_restarts == 1 ? "" : "s", s->reload_refused ? "; last reload refused: " : "",
               s->reload_refused ? s->reload_refused : "");
}

void notify_stopping(Supervisor *s) {
        (void) sd_notify(false, "STOPPING=1");
        notify_status(s, "stopping");
}

void notify_reloading(Supervisor *s) {
        (void) sd_notify(false, "RELOADING=1");
}

void notify_reloaded(Supervisor *s, bool ok, const char *message) {
        (void) sd_notify(false, "READY=1");
        if (s->state == SUP_RUNNING)
                notify_maybe_ready(s);
        else if (!ok)
                notify_status(s, "%s; last reload refused: %s", supervisor_state_to_string(s->state), message);
}

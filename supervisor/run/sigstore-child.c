/* SPDX-License-Identifier: MIT */
/*
 * The signature store as a child of `regvisor run`: `regvisor sigstore`
 * fork+exec'd before the proxy (so that the proxy's first /v2/ answer,
 * which announces the extension, finds it serving), restarted with its own
 * backoff when it exits, and stopped after the proxy has drained (the
 * proxy's last requests may still read signatures). SIGTERM's default
 * action is its stop: every write of the store is atomic.
 *
 * Why here and not in the proxy parent: `regvisor proxy` alone (tests,
 * benchmarks, operators supervising it elsewhere) then stays one process
 * that serves the extension only when told where the store is (--sigstore),
 * and proxy/ never learns the command line of another verb.
 */
#include <errno.h>
#include <signal.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "log.h"
#include "paths.h"
#include "supervisor.h"


static int on_sigstore_restart_timer(sd_event_source *src, uint64_t usec, void *userdata) {
        Supervisor *s = userdata;

        s->sigstore_restart_timer = sd_event_source_disable_unref(s->sigstore_restart_timer);
        (void) sigstore_child_spawn(s);
        return 0;
}

static int on_sigstore_exit(sd_event_source *src, const siginfo_t *si, void *userdata) {
        Supervisor *s = userdata;
        unsigned delay;

        s->sigstore_child = sd_event_source_disable_unref(s->sigstore_child);
        s->sigstore_pid = 0;
        if (s->state == SUP_STOPPING) {
                log_event(LOG_INFO, "sigstore-stopped", "signature store stopped");
                return 0;
        }
        delay = child_exited("sigstore-exited", "signature store", si, s->sigstore_started, &s->sigstore_attempt);
        (void) sd_event_add_time_relative(s->event, &s->sigstore_restart_timer, CLOCK_MONOTONIC,
                                          (uint64_t) delay * USEC_PER_MSEC, 0, on_sigstore_restart_timer, s);
        return 0;
}

int sigstore_child_spawn(Supervisor *s) {
        pid_t pid;
        int r;

        pid = child_fork();
        if (pid < 0)
                return log_error_errno(pid, "cannot fork the signature store: %m");
        if (pid == 0) {
                char *argv[] = {(char *) "regvisor",       (char *) "sigstore",
                                (char *) "--socket",       (char *) SIGSTORE_SOCKET_PATH,
                                (char *) "--dir",          (char *) SIGSTORE_DIR,
                                (char *) "--user",         s->config.service_user,
                                (char *) "--socket-group", s->config.proxy_user,
                                NULL};
                execv("/proc/self/exe", argv);
                _exit(127);
        }
        s->sigstore_pid = pid;
        s->sigstore_started = now_usec();
        r = sd_event_add_child(s->event, &s->sigstore_child, pid, WEXITED, on_sigstore_exit, s);
        if (r < 0)
                return log_error_errno(r, "cannot watch the signature store: %s", strerror(-r));
        log_event(LOG_INFO, "sigstore-start", "signature store started (pid %d)", (int) pid);
        return 0;
}

void sigstore_child_stop(Supervisor *s) {
        s->sigstore_restart_timer = sd_event_source_disable_unref(s->sigstore_restart_timer);
        if (s->sigstore_pid > 0)
                (void) kill(s->sigstore_pid, SIGTERM);
}

void sigstore_child_end(Supervisor *s) {
        sigstore_child_stop(s);
        if (s->sigstore_pid > 0) {
                (void) waitpid(s->sigstore_pid, NULL, 0);
                s->sigstore_pid = 0;
        }
        s->sigstore_child = sd_event_source_disable_unref(s->sigstore_child);
}

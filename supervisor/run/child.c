/* SPDX-License-Identifier: MIT */
/*
 * What the supervisor's children (proxy-child.c, sigstore-child.c) share:
 * a fork that will exec this binary again with the loop's state left
 * behind, and the restart schedule after one exits.
 */
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "log.h"
#include "supervisor.h"

#define CHILD_RESTART_MAX_MS 30000u
#define CHILD_HEALTHY_RESET_USEC (60ULL * USEC_PER_SEC)

pid_t child_fork(const char *what) {
        sigset_t all;
        pid_t pid = fork();

        if (pid < 0)
                return log_error_errno(-errno, "cannot fork the %s: %m", what);
        if (pid != 0)
                return pid;
        sigemptyset(&all);
        (void) sigprocmask(SIG_SETMASK, &all, NULL);
        /* Readiness and the watchdog are ours to report. */
        (void) unsetenv("NOTIFY_SOCKET");
        (void) unsetenv("WATCHDOG_USEC");
        (void) unsetenv("WATCHDOG_PID");
        (void) prctl(PR_SET_PDEATHSIG, SIGTERM);
        return 0;
}

int child_watch(Supervisor *s, ChildProc *c, pid_t pid, const char *what, const char *event,
                sd_event_child_handler_t on_exit) {
        int r;

        c->pid = pid;
        c->started = now_usec();
        r = sd_event_add_child(s->event, &c->source, pid, WEXITED, on_exit, s);
        if (r < 0)
                return log_error_errno(r, "cannot watch the %s: %s", what, strerror(-r));
        log_event(LOG_INFO, event, "%s started (pid %d)", what, (int) pid);
        return 0;
}

void child_reaped(ChildProc *c) {
        c->source = sd_event_source_disable_unref(c->source);
        c->pid = 0;
}

void child_exited(Supervisor *s, ChildProc *c, const char *event, const char *what, const siginfo_t *si,
                  sd_event_time_handler_t on_timer) {
        unsigned delay;

        if (now_usec() - c->started >= CHILD_HEALTHY_RESET_USEC)
                c->attempt = 0;
        delay = supervisor_backoff_ms(++c->attempt, 1000, CHILD_RESTART_MAX_MS);
        log_event(LOG_ERR, event, "%s %s %d: restarting it in %u ms", what,
                  si->si_code == CLD_EXITED ? "exited with status" : "killed by signal", si->si_status, delay);
        (void) sd_event_add_time_relative(s->event, &c->restart_timer, CLOCK_MONOTONIC, (uint64_t) delay * USEC_PER_MSEC, 0,
                                          on_timer, s);
}

void child_stop(ChildProc *c) {
        c->restart_timer = sd_event_source_disable_unref(c->restart_timer);
        if (c->pid > 0)
                (void) kill(c->pid, SIGTERM);
}

void child_end(ChildProc *c) {
        child_stop(c);
        if (c->pid > 0) {
                (void) waitpid(c->pid, NULL, 0);
                c->pid = 0;
        }
        c->source = sd_event_source_disable_unref(c->source);
}

/* SPDX-License-Identifier: MIT */
/*
 * What the supervisor's children (proxy-child.c, sigstore-child.c) share:
 * a fork that will exec this binary again with the loop's state left
 * behind, and the restart schedule after one exits.
 */
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "log.h"
#include "supervisor.h"

#define CHILD_RESTART_MAX_MS 30000u
#define CHILD_HEALTHY_RESET_USEC (60ULL * USEC_PER_SEC)

pid_t child_fork(void) {
        sigset_t all;
        pid_t pid = fork();

        if (pid != 0)
                return pid < 0 ? -errno : pid;
        sigemptyset(&all);
        (void) sigprocmask(SIG_SETMASK, &all, NULL);
        /* Readiness and the watchdog are ours to report. */
        (void) unsetenv("NOTIFY_SOCKET");
        (void) unsetenv("WATCHDOG_USEC");
        (void) unsetenv("WATCHDOG_PID");
        (void) prctl(PR_SET_PDEATHSIG, SIGTERM);
        return 0;
}

unsigned child_exited(const char *event, const char *what, const siginfo_t *si, uint64_t started,
                      unsigned *attempt) {
        unsigned delay;

        if (now_usec() - started >= CHILD_HEALTHY_RESET_USEC)
                *attempt = 0;
        delay = supervisor_backoff_ms(++*attempt, 1000, CHILD_RESTART_MAX_MS);
        log_event(LOG_ERR, event, "%s %s %d: restarting it in %u ms", what,
                  si->si_code == CLD_EXITED ? "exited with status" : "killed by signal", si->si_status, delay);
        return delay;
}

/* SPDX-License-Identifier: MIT */
/*
 * regvisor reload: regvisor.service's ExecReload=. systemd 252 has no
 * Type=notify-reload, and `kill -HUP $MAINPID` returns before anything was
 * checked, so a broken configuration "reloaded" with status 0. This command
 * makes the reload's outcome systemctl's exit status:
 *
 *   1. load the configuration with the same parser as `run` (a bad file is
 *      FILE:LINE on stderr, and the exit status will be 1 whatever the
 *      supervisor says; it is still signalled, because a reload also loads
 *      the certificates and the CRL: a revocation must not wait until an
 *      unrelated mistake in the file is fixed);
 *   2. read the supervisor's last outcome (reload.h, RELOAD_STATUS_PATH);
 *   3. SIGHUP the main PID and wait, bounded, for a newer outcome: the
 *      supervisor's own checks (restart-only keys) and the proxy's answer;
 *   4. print it; exit 0 when applied, 1 when refused or no answer came.
 *
 * systemd serialises reload jobs of a unit, so one reload runs at a time; a
 * SIGHUP sent by hand meanwhile is counted too, and then its outcome is
 * the one reported (it read the same file).
 */

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "macro.h"
#include "reload.h"
#include "verbs.h"

static const char *arg_config = CONFIG_DEFAULT_PATH;
static pid_t arg_pid = 0;
static unsigned arg_timeout = RELOAD_PROXY_TIMEOUT_SEC + 5;

static void help(void) {
        printf("Usage: regvisor reload [OPTIONS]\n\n"
               "Check the configuration, tell the running `regvisor run` to reload it and\n"
               "wait for the outcome: exit 0 when it was applied, 1 when it was refused\n"
               "(the reason on stderr). regvisor.service's ExecReload=.\n\n"
               "  -c --config FILE  configuration (default " CONFIG_DEFAULT_PATH ")\n"
               "     --pid PID      the supervisor (default: $MAINPID, as systemd sets it)\n"
               "     --timeout SEC  wait at most this long (default %u)\n"
               "  -h --help         this help\n",
               RELOAD_PROXY_TIMEOUT_SEC + 5);
}

static int parse_pid(const char *s, pid_t *ret) {
        char *end;
        long v;

        errno = 0;
        v = s ? strtol(s, &end, 10) : 0;
        if (!s || errno != 0 || end == s || *end || v <= 1 || v > INT32_MAX)
                return -EINVAL;
        *ret = (pid_t) v;
        return 0;
}

static int set_pid(const char *arg) {
        if (parse_pid(arg, &arg_pid) < 0) {
                log_error("reload: --pid %s: expected a process ID", arg);
                return -EINVAL;
        }
        return 1;
}

static int set_timeout(const char *arg) {
        char *end;

        arg_timeout = (unsigned) strtoul(arg, &end, 10);
        if (*end || arg_timeout == 0 || arg_timeout > 3600) {
                log_error("reload: --timeout %s: expected 1..3600 seconds", arg);
                return -EINVAL;
        }
        return 1;
}

static const VerbOption options[] = {
        OPTION_CONFIG(&arg_config),
        {"pid", 0, OPTION_CALL, NULL, set_pid, true},
        {"timeout", 0, OPTION_CALL, NULL, set_timeout, true},
};
static const VerbSyntax syntax = {"reload", help, options, ELEMENTSOF(options), 0, false};

static int parse_argv(int argc, char **argv) {
        int r = verb_parse_argv(&syntax, argc, argv, NULL);

        if (r <= 0)
                return r;
        if (arg_pid == 0 && parse_pid(getenv("MAINPID"), &arg_pid) < 0) {
                log_error("reload: no --pid and no $MAINPID: which supervisor?");
                return -EINVAL;
        }
        return 1;
}

static uint64_t now_ms(void) {
        struct timespec ts;
        (void) clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t) ts.tv_sec * 1000 + (uint64_t) ts.tv_nsec / 1000000;
}

int verb_reload(int argc, char **argv) {
        _cleanup_free_ char *message = NULL;
        unsigned long before, seq;
        uint64_t deadline;
        Config config;
        bool ok, valid;
        int r;

        r = parse_argv(argc, argv);
        if (r <= 0)
                return r < 0 ? 2 : 0;
        /* Same parser, same messages as `run`: the error is on stderr (and
         * so in `systemctl status`). */
        valid = verb_load_config(arg_config, &config) >= 0;
        if (valid)
                config_done(&config);

        r = reload_status_read(RELOAD_STATUS_PATH, &before, &ok, NULL);
        if (r < 0) {
                log_error("reload: cannot read %s: %s", RELOAD_STATUS_PATH, strerror(-r));
                return 1;
        }
        if (kill(arg_pid, SIGHUP) < 0) {
                r = -errno;
                log_error("reload: cannot signal the supervisor (pid %d): %s", (int) arg_pid, strerror(-r));
                return 1;
        }
        deadline = now_ms() + (uint64_t) arg_timeout * 1000;
        for (;;) {
                free(TAKE_PTR(message));
                r = reload_status_read(RELOAD_STATUS_PATH, &seq, &ok, &message);
                if (r >= 0 && seq != before)
                        break;
                if (now_ms() >= deadline) {
                        log_error("reload: no outcome from the supervisor within %u s (see `journalctl -u "
                                  "regvisor`); assuming it was not applied", arg_timeout);
                        return 1;
                }
                (void) usleep(50 * 1000);
        }
        if (!ok || !valid) {
                log_error("reload refused: %s", message ? message : "?");
                return 1;
        }
        log_info("reloaded: %s", message ? message : "");
        return 0;
}

/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <stdio.h>
#include <unistd.h>

#include "log.h"
#include "macro.h"
#include "supervise.h"
#include "verbs.h"

static const char *arg_config = CONFIG_DEFAULT_PATH;

static void help(void) {
        printf("Usage: regvisor run [OPTIONS]\n\n"
               "Supervise the registry: start its user unit through systemd's D-Bus API,\n"
               "follow its state, probe GET /v2/, restart it with backoff. Meant to run\n"
               "as the system unit regvisor.service (Type=notify); SIGHUP reloads the\n"
               "configuration, all of it or nothing (`regvisor reload` waits for the\n"
               "outcome), SIGTERM stops the registry and exits.\n\n"
               "  -c --config FILE  configuration (default " CONFIG_DEFAULT_PATH ")\n"
               "  -v --verbose      log state transitions\n"
               "  -h --help         this help\n");
}

static int set_verbose(const char *arg) {
        log_set_max_level(LOG_DEBUG);
        return 1;
}

static const VerbOption options[] = {
        OPTION_CONFIG(&arg_config),
        {"verbose", 'v', OPTION_CALL, NULL, set_verbose, false},
};
static const VerbSyntax syntax = {"run", help, options, ELEMENTSOF(options), 0, false};

int verb_run(int argc, char **argv) {
        Config config;
        int r = verb_parse_argv(&syntax, argc, argv, NULL);

        if (r <= 0)
                return r < 0 ? 2 : 0;
        if (geteuid() != 0) {
                log_error("run must run as root (it talks to the system manager and runs podman as the service user)");
                return 1;
        }
        if (verb_load_config(arg_config, &config) < 0)
                return 1;
        return supervisor_run(arg_config, &config) < 0 ? 1 : 0;
}

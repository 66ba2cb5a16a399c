/* SPDX-License-Identifier: MIT */
/*
 * regvisor proxy: the TLS proxy alone, in the foreground, against the
 * upstream of [registry] listen. For operators who supervise it elsewhere,
 * for tests and for benchmarks; `regvisor run` starts the same code.
 */

#include <errno.h>
#include <stdio.h>

#include "log.h"
#include "macro.h"
#include "proxy.h"
#include "verbs.h"

static const char *arg_config = CONFIG_DEFAULT_PATH;
static const char *arg_root = NULL;

static void help(void) {
        printf("Usage: regvisor proxy [OPTIONS]\n\n"
               "Run the TLS proxy in the foreground: port [pull] listen (anonymous pulls)\n"
               "and [push] listen (mTLS), forwarding to [registry] listen.\n"
               "SIGHUP reloads the configuration, certificates and the CRL (restart-only\n"
               "keys refuse it); SIGTERM drains and stops.\n\n"
               "  -c --config FILE  configuration (default " CONFIG_DEFAULT_PATH ")\n"
               "     --root DIR     the certificate tree below DIR\n"
               "  -h --help         this help\n");
}

static const VerbOption options[] = {
        {"config", 'c', OPTION_STRING, &arg_config},
        {"root", 0, OPTION_STRING, &arg_root},
};
/* Options first ("+"), as before: nothing after them is an option. */
static const VerbSyntax syntax = {"proxy", help, options, ELEMENTSOF(options), 0, true};

int verb_proxy(int argc, char **argv) {
        Config config;
        int r;

        r = verb_parse_argv(&syntax, argc, argv, NULL);
        if (r <= 0)
                return r < 0 ? 2 : 0;
        r = verb_load_config(arg_config, &config);
        if (r < 0)
                return 1;
        r = proxy_run(&config, arg_config, arg_root);
        config_done(&config);
        return r < 0 ? 1 : 0;
}

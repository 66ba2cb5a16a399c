/* SPDX-License-Identifier: MIT */
/*
 * regvisor sigstore: the signature store process alone, in the foreground
 * (docs/signature-extension.md). The proxy forwards the extension's routes
 * to its socket.
 */

#include <errno.h>
#include <stdio.h>

#include "log.h"
#include "macro.h"
#include "sigstore.h"
#include "verbs.h"

static const char *arg_config = CONFIG_DEFAULT_PATH;
static SigstoreOptions arg_options = {};

static void help(void) {
        printf("Usage: regvisor sigstore --socket PATH --dir DIR [OPTIONS]\n\n"
               "Serve the registry signature extension (GET and PUT of\n"
               "/extensions/v2/NAME/signatures/DIGEST) over HTTP/1.1 on a unix socket,\n"
               "storing signatures below DIR, sandboxed as USER.\n\n"
               "     --socket PATH  the unix socket to create (mode 0660)\n"
               "     --dir DIR      the store's directory, owned by USER\n"
               "     --user USER    run as USER (default: [host] service_user of the configuration)\n"
               "     --socket-group GROUP  the socket's group (the proxy's; default: as created)\n"
               "     --registry ADDR  keep the signatures in the registry at ADDR (unix:PATH,\n"
               "                    IP:PORT), as OCI artifacts; DIR then stays empty\n"
               "  -c --config FILE  configuration, read only without --user (default " CONFIG_DEFAULT_PATH ")\n"
               "  -h --help         this help\n");
}

static const VerbOption options[] = {
        {"socket", 0, OPTION_STRING, &arg_options.socket_path},
        {"dir", 0, OPTION_STRING, &arg_options.dir},
        {"user", 0, OPTION_STRING, &arg_options.user},
        {"socket-group", 0, OPTION_STRING, &arg_options.socket_group},
        {"registry", 0, OPTION_STRING, &arg_options.registry},
        OPTION_CONFIG(&arg_config),
};
static const VerbSyntax syntax = {"sigstore", help, options, ELEMENTSOF(options), 0, true};

static int parse_argv(int argc, char **argv) {
        int r = verb_parse_argv(&syntax, argc, argv, NULL);
        if (r <= 0)
                return r;
        if (!arg_options.socket_path || !arg_options.dir) {
                log_error("sigstore: --socket and --dir are required; see 'regvisor sigstore --help'");
                return -EINVAL;
        }
        return 1;
}

int verb_sigstore(int argc, char **argv) {
        Config config = {};
        bool loaded = false;
        int r;

        r = parse_argv(argc, argv);
        if (r <= 0)
                return r < 0 ? 2 : 0;
        if (!arg_options.user) {
                r = verb_load_config(arg_config, &config);
                if (r < 0)
                        return 1;
                loaded = true;
                arg_options.user = config.service_user;
        }
        r = sigstore_run(&arg_options);
        if (loaded)
                config_done(&config);
        return r < 0 ? 1 : 0;
}

/* SPDX-License-Identifier: MIT */
/*
 * regvisor sigstore: the signature store process alone, in the foreground
 * (docs/signature-extension.md). The proxy forwards the extension's routes
 * to its socket.
 */

#include <errno.h>
#include <getopt.h>
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
               "  -c --config FILE  configuration, read only without --user (default " CONFIG_DEFAULT_PATH ")\n"
               "  -h --help         this help\n");
}

static int parse_argv(int argc, char **argv) {
        enum { ARG_SOCKET = 0x100, ARG_DIR, ARG_USER, ARG_SOCKET_GROUP };
        static const struct option options[] = {
                {"socket", required_argument, NULL, ARG_SOCKET},
                {"dir", required_argument, NULL, ARG_DIR},
                {"user", required_argument, NULL, ARG_USER},
                {"socket-group", required_argument, NULL, ARG_SOCKET_GROUP},
                {"config", required_argument, NULL, 'c'},
                {"help", no_argument, NULL, 'h'},
                {}};
        int c;

        optind = 0;
        while ((c = getopt_long(argc, argv, "+c:h", options, NULL)) >= 0)
                switch (c) {
                case ARG_SOCKET:
                        arg_options.socket_path = optarg;
                        break;
                case ARG_DIR:
                        arg_options.dir = optarg;
                        break;
                case ARG_USER:
                        arg_options.user = optarg;
                        break;
                case ARG_SOCKET_GROUP:
                        arg_options.socket_group = optarg;
                        break;
                case 'c':
                        arg_config = optarg;
                        break;
                case 'h':
                        help();
                        return 0;
                default:
                        return -EINVAL;
                }
        if (verb_no_arguments("sigstore", argc, argv) < 0)
                return -EINVAL;
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

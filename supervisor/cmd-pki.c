/* SPDX-License-Identifier: MIT */
#include <dirent.h>
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "log.h"
#include "macro.h"
#include "provision.h"
#include "verbs.h"

static const char *arg_config = CONFIG_DEFAULT_PATH;
static const char *arg_root = NULL;

static void help(void) {
        printf("Usage: regvisor pki [OPTIONS] COMMAND [NAME]\n\n"
               "Client certificates for machines that push (port 4443, mTLS).\n\n"
               "Commands:\n"
               "  issue-client NAME  new key and certificate for client machine NAME\n"
               "  revoke NAME        revoke NAME's certificate (CRL updated; the proxy\n"
               "                     refuses it after 'systemctl reload regvisor')\n\n"
               "  -c --config FILE  configuration (default " CONFIG_DEFAULT_PATH ")\n"
               "     --root DIR     the certificate tree below DIR\n"
               "  -h --help         this help\n");
}

static int parse_argv(int argc, char **argv) {
        enum { ARG_ROOT = 0x100 };
        static const struct option options[] = {
                {"config", required_argument, NULL, 'c'},
                {"root", required_argument, NULL, ARG_ROOT},
                {"help", no_argument, NULL, 'h'},
                {}};
        int c;

        optind = 0;
        while ((c = getopt_long(argc, argv, "+c:h", options, NULL)) >= 0)
                switch (c) {
                case 'c':
                        arg_config = optarg;
                        break;
                case ARG_ROOT:
                        arg_root = optarg;
                        break;
                case 'h':
                        help();
                        return 0;
                default:
                        return -EINVAL;
                }
        return 1;
}

/* Client names become file names and certificate CNs: keep them simple. */
static bool client_name_valid(const char *n) {
        size_t len = strlen(n);
        return len > 0 && len <= 64 && strspn(n, "abcdefghijklmnopqrstuvwxyz0123456789-_.") == len && n[0] != '.' &&
               !streq(n, "ca");
}

int verb_pki(int argc, char **argv) {
        _cleanup_free_ char *detail = NULL;
        Config config;
        const char *cmd, *name;
        int r;

        r = parse_argv(argc, argv);
        if (r <= 0)
                return r < 0 ? 2 : 0;
        if (optind + 2 != argc) {
                log_error("pki: expected COMMAND NAME; see 'regvisor pki --help'");
                return 2;
        }
        cmd = argv[optind];
        name = argv[optind + 1];
        if (!client_name_valid(name)) {
                log_error("pki: client name '%s' must be 1-64 of [a-z0-9._-], not starting with '.'", name);
                return 2;
        }
        if (!streq(cmd, "issue-client") && !streq(cmd, "revoke")) {
                log_error("pki: unknown command '%s'; see 'regvisor pki --help'", cmd);
                return 2;
        }
        r = verb_load_config(arg_config, &config);
        if (r < 0)
                return 1;
        (void) umask(0077);

        Provision p = {.config = &config, .root = arg_root};
        r = provision_lookup_users(&p);
        if (r >= 0)
                r = streq(cmd, "issue-client") ? pki_files_issue_client(&p, name, &detail)
                                               : pki_files_revoke_client(&p, name, &detail);
        if (r < 0)
                log_error("pki %s %s: %s", cmd, name, detail ? detail : strerror(-r));
        else
                printf("%s\n", detail ? detail : "done");
        provision_done(&p);
        config_done(&config);
        return r < 0 ? 1 : 0;
}

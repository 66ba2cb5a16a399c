/* SPDX-License-Identifier: MIT */
#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log.h"
#include "macro.h"
#include "provision.h"
#include "verbs.h"

static const char *arg_config = CONFIG_DEFAULT_PATH;
static const char *arg_root = NULL;
static bool arg_dry_run = false;

static void help(void) {
        printf("Usage: regvisor provision [OPTIONS]\n\n"
               "Make this host a registry host: users, linger, podman state outside\n"
               "$HOME, the certificate tree and PKI, the registry's configuration and\n"
               "user unit, containers policy, and the pinned image. Idempotent: a\n"
               "second run changes nothing.\n\n"
               "  -c --config FILE  configuration (default " CONFIG_DEFAULT_PATH ")\n"
               "     --root DIR     write every file below DIR (a staging tree); user,\n"
               "                    D-Bus and image steps are skipped\n"
               "  -n --dry-run      show the plan, change nothing\n"
               "  -h --help         this help\n");
}

/* <0 error, 0 exit successfully (help), 1 continue */
static int parse_argv(int argc, char **argv) {
        enum { ARG_ROOT = 0x100 };
        static const struct option options[] = {
                {"config", required_argument, NULL, 'c'},
                {"root", required_argument, NULL, ARG_ROOT},
                {"dry-run", no_argument, NULL, 'n'},
                {"help", no_argument, NULL, 'h'},
                {}};
        int c;

        optind = 0;
        while ((c = getopt_long(argc, argv, "c:nh", options, NULL)) >= 0)
                switch (c) {
                case 'c':
                        arg_config = optarg;
                        break;
                case ARG_ROOT:
                        arg_root = optarg;
                        break;
                case 'n':
                        arg_dry_run = true;
                        break;
                case 'h':
                        help();
                        return 0;
                default:
                        return -EINVAL;
                }
        if (verb_no_arguments("provision", argc, argv) < 0)
                return -EINVAL;
        return 1;
}

int verb_provision(int argc, char **argv) {
        Config config;
        ProvisionCounts counts;
        struct stat st;
        int r;

        r = parse_argv(argc, argv);
        if (r <= 0)
                return r < 0 ? 2 : 0;

        if (arg_root && (stat(arg_root, &st) < 0 || !S_ISDIR(st.st_mode))) {
                log_error("--root %s: not a directory", arg_root);
                return 1;
        }
        if (!arg_root && !arg_dry_run && geteuid() != 0) {
                log_error("provision must run as root (or use --root DIR / --dry-run)");
                return 1;
        }
        r = verb_load_config(arg_config, &config);
        if (r < 0)
                return 1;

        /* Nothing we create is for others unless we say so with an explicit
         * mode; files get exact modes anyway. */
        (void) umask(0077);

        Provision p = {.config = &config, .root = arg_root, .dry_run = arg_dry_run};
        r = provision_run(&p, &counts);
        provision_done(&p);
        config_done(&config);
        return r < 0 ? 1 : 0;
}

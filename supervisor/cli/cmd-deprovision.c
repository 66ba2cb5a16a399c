/* SPDX-License-Identifier: MIT */
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
static bool arg_dry_run = false;
static bool arg_purge = false;
static bool arg_remove_users = false;

static void help(void) {
        printf("Usage: regvisor deprovision [OPTIONS]\n\n"
               "Remove what 'regvisor provision' made, in the reverse order: regvisor's\n"
               "system units stopped and disabled, the registry's user unit stopped, the\n"
               "files it wrote (registries.d, registries.conf.d, tmpfiles.d, the registry's\n"
               "configuration and unit, the signers' keys), its rules in policy.json (the\n"
               "other rules stay), linger. A file that is not what provision writes from\n"
               "this configuration was changed by someone: it is left as it is and the\n"
               "run stops there. Idempotent: a second run changes nothing.\n\n"
               "  -c --config FILE    the configuration provision used (default " CONFIG_DEFAULT_PATH ")\n"
               "     --purge          also the data: registry storage, signatures, podman's\n"
               "                      state and images, and the certificate tree with its CAs\n"
               "                      and keys (clients' certificates stop working)\n"
               "     --remove-users   also the service and proxy users (with the service\n"
               "                      user's home and subordinate ids)\n"
               "  -n --dry-run        check everything, change nothing: what would be removed\n"
               "  -h --help           this help\n");
}

static const VerbOption options[] = {
        {"purge", 0, OPTION_FLAG, &arg_purge},
        {"remove-users", 0, OPTION_FLAG, &arg_remove_users},
        {"dry-run", 'n', OPTION_FLAG, &arg_dry_run},
        {"config", 'c', OPTION_STRING, &arg_config},
};
static const VerbSyntax syntax = {"deprovision", help, options, ELEMENTSOF(options), 0, false};

int verb_deprovision(int argc, char **argv) {
        _cleanup_(provision_report_done) ProvisionReport report = {};
        int r = verb_parse_argv(&syntax, argc, argv, NULL);
        Config config;

        if (r <= 0) /* 0: --help */
                return r < 0 ? 2 : 0;
        if (geteuid() != 0) {
                log_error("deprovision must run as root (also --dry-run: it asks systemd and logind)");
                return 1;
        }
        r = verb_load_config(arg_config, &config);
        if (r < 0)
                return 1;
        (void) umask(0077);

        Provision p = {.config = &config, .dry_run = arg_dry_run, .purge = arg_purge,
                       .remove_users = arg_remove_users};
        r = deprovision_run(&p, provision_print_result, NULL, &report);
        if (report.n_results > 0) {
                const ProvisionCounts *n = &report.counts;
                printf("%s: %u ok, %u %s, %u failed, %u skipped\n", p.dry_run ? "plan" : "deprovision", n->ok,
                       n->changed, p.dry_run ? "to remove" : "removed", n->failed, n->skipped);
        } else
                log_error("deprovision: %s", strerror(-r));
        provision_done(&p);
        config_done(&config);
        return r < 0 ? 1 : 0;
}

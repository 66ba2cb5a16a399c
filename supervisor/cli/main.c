/* SPDX-License-Identifier: MIT */
/*
 * regvisor: turns one Linux host into a hardened private container registry
 * and keeps it that way. This file only dispatches to the verbs.
 */
#include <stdio.h>
#include <string.h>

#include "log.h"
#include "macro.h"
#include "verbs.h"

typedef struct {
        const char *name;
        int (*run)(int argc, char **argv);
        const char *summary;
} Verb;

static const Verb verbs[] = {
        {"provision", verb_provision,
         "make this host a registry host (idempotent; --dry-run shows the plan; --adopt takes over a host set up by "
         "the install guide)"},
        {"deprovision", verb_deprovision, "remove what provision made, in reverse (--dry-run; --purge, --remove-users)"},
        {"run", verb_run, "supervise the registry (the regvisor.service daemon)"},
        {"reload", verb_reload, "apply a changed configuration to `run` and report the outcome (ExecReload=)"},
        {"proxy", verb_proxy, "run the TLS proxy alone in the foreground (tests, benchmarks)"},
        {"sigstore", verb_sigstore, "run the signature store alone in the foreground (the registry signature extension)"},
        {"pki", verb_pki, "client certificates for machines that push (issue-client, revoke, list, renew, export); server certificate and CRL renewal"},
        {"client", verb_client, "on a client machine: install or uninstall a bundle from 'pki export'"},
        {"health", verb_health, "check the registry host; Nagios plugin output and exit codes (--json)"},
        {"gc", verb_gc, "reclaim space: garbage-collect in a safe window (pushes paused, pulls go on)"},
        {"version", verb_version, "print the version"},
};

static void help(void) {
        printf("Usage: regvisor COMMAND [OPTIONS]\n\n"
               "A hardened private container registry on one host: provisioning,\n"
               "supervision of the rootless registry, and its TLS proxy.\n\n"
               "Commands:\n");
        for (size_t i = 0; i < ELEMENTSOF(verbs); i++)
                printf("  %-12s %s\n", verbs[i].name, verbs[i].summary);
        printf("\nRun 'regvisor COMMAND --help' for a command's options.\n");
}

int main(int argc, char **argv) {
        if (argc < 2) {
                help();
                return 2;
        }
        if (streq(argv[1], "--help") || streq(argv[1], "-h") || streq(argv[1], "help")) {
                help();
                return 0;
        }
        if (streq(argv[1], "--version"))
                return verb_version(argc - 1, argv + 1);
        for (size_t i = 0; i < ELEMENTSOF(verbs); i++)
                if (streq(argv[1], verbs[i].name)) {
                        /* `--help` anywhere after the verb (before a `--`) is a
                         * question, never a value: `pki issue-client --help`
                         * must not issue a certificate named "--help". */
                        if (argv_wants_help(argc - 2, argv + 2)) {
                                char *help_argv[] = {argv[1], (char *) "--help", NULL};
                                return verbs[i].run(2, help_argv);
                        }
                        return verbs[i].run(argc - 1, argv + 1);
                }
        log_error("unknown command '%s'; see 'regvisor --help'", argv[1]);
        return 2;
}

/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "bundle.h"
#include "install.h"
#include "log.h"
#include "request.h"
#include "macro.h"
#include "verbs.h"

static const char *arg_root = NULL;
static bool arg_dry_run = false;
static const char *arg_output = NULL;
static const char *arg_registry = NULL;

static void help(void) {
        printf("Usage: regvisor client [OPTIONS] COMMAND [BUNDLE]\n\n"
               "On a client machine: install the bundle that 'regvisor pki export NAME' wrote\n"
               "on the registry host.\n\n"
               "Commands:\n"
               "  install --registry NAME BUNDLE\n"
               "                  the server CA and client certificate in the certs.d trees of\n"
               "                  podman/skopeo/buildah and containerd, the signers' public key\n"
               "                  under /etc/containers/keys/, the registry's rules merged into\n"
               "                  /etc/containers/policy.json (other entries stay); idempotent;\n"
               "                  what it added is recorded in " CLIENT_RECORD_PATH "\n"
               "  uninstall       remove exactly what install added\n"
               "  request NAME    make NAME's key here (" CLIENT_OWN_KEYS_DIR "/NAME.key, 0600;\n"
               "                  it never leaves this machine) and a certificate request,\n"
               "                  NAME.csr, for 'regvisor pki sign' on the registry host;\n"
               "                  install then takes the key from here\n\n"
               "  -n --dry-run    show the plan, change nothing; first the registry the bundle\n"
               "                  is for: install writes for its names only\n"
               "     --registry NAME  install: the registry the bundle must be for, as this\n"
               "                  machine pulls from it (HOST, or HOST:PORT when its pull port\n"
               "                  is not 443); required but with --dry-run, which shows it\n"
               "     --root DIR   below DIR instead of / (review, tests)\n"
               "  -o --output F   request: the request file (default NAME.csr)\n"
               "  -h --help       this help\n");
}

static const VerbOption options[] = {
        OPTION_DRY_RUN(&arg_dry_run),
        OPTION_ROOT(&arg_root),
        {"output", 'o', OPTION_STRING, &arg_output},
        {"registry", 0, OPTION_STRING, &arg_registry},
};
static const VerbSyntax syntax = {"client", help, options, ELEMENTSOF(options), -1, false};

static int client_install(const char *bundle) {
        _cleanup_(install_plan_done) InstallPlan plan = {};
        _cleanup_free_ char *error = NULL;
        int r;

        r = client_install_plan(arg_root, bundle, &plan, &error);
        if (r < 0)
                return log_error_errno(r, "client install: %s", error ?: strerror(-r));
        /* A bundle installs for the names it declares: the operator says
         * which registry it must be for, and gets no other; a bundle
         * tampered with on the way does not choose. */
        if (!arg_registry && !arg_dry_run) {
                log_error("client install: --registry NAME is required: the registry %s must be for, as this "
                          "machine pulls from it (this bundle says it is for %s: check with --dry-run); nothing "
                          "changed",
                          bundle, plan.registries[0]);
                return -EINVAL;
        }
        if (arg_registry && !install_plan_for(&plan, arg_registry)) {
                log_error("client install: %s is a bundle for %s, not for --registry %s; nothing changed", bundle,
                          plan.registries[0], arg_registry);
                return -EPERM;
        }
        if (arg_dry_run) {
                printf("Plan (--dry-run: nothing changed):\n");
                install_plan_print(&plan, stdout);
                return 0;
        }
        r = client_install_apply(arg_root, &plan, &error);
        if (r < 0)
                return log_error_errno(r, "client install: %s", error ?: strerror(-r));
        install_plan_print(&plan, stdout);
        return 0;
}

static int client_remove(const char *unused) {
        _cleanup_free_ char *error = NULL;
        int r;

        if (arg_dry_run)
                printf("Plan (--dry-run: nothing changed):\n");
        r = client_uninstall(arg_root, arg_dry_run, stdout, &error);
        if (r < 0)
                return log_error_errno(r, "client uninstall: %s", error ?: strerror(-r));
        return 0;
}

static int client_make_request(const char *name) {
        _cleanup_free_ char *error = NULL, *dflt = NULL;
        int r;

        if (!config_client_name_valid(name)) {
                log_error("client request: '%s' is not a client name (1-64 of [a-z0-9._-])", name);
                return -EINVAL;
        }
        if (!arg_output && asprintf(&dflt, "%s.csr", name) < 0)
                return log_error_errno(-ENOMEM, "client request: out of memory");
        r = client_request(arg_root, name, arg_output ?: dflt, &error);
        if (r < 0)
                return log_error_errno(r, "client request %s: %s", name, error ?: strerror(-r));
        printf("Wrote the request %s; the key stays in " CLIENT_OWN_KEYS_DIR "/%s.key.\n"
               "On the registry host: regvisor pki sign %s && regvisor pki export %s\n",
               arg_output ?: dflt, name, arg_output ?: dflt, name);
        return 0;
}

static const struct {
        VerbCommand command;
        int (*run)(const char *arg);
} client_commands[] = {
        {{"install", "a BUNDLE directory"}, client_install},
        {{"uninstall", NULL}, client_remove},
        {{"request", "a client NAME"}, client_make_request},
};

int verb_client(int argc, char **argv) {
        int first, r;
        size_t i;

        r = verb_parse_argv(&syntax, argc, argv, &first);
        if (r <= 0)
                return r < 0 ? 2 : 0;
        r = verb_find_command("client", client_commands, ELEMENTSOF(client_commands), sizeof client_commands[0], argc,
                              argv, first);
        if (r < 0)
                return 2;
        i = (size_t) r;
        /* Files are written with their own modes; directories 0755. */
        (void) umask(0022);
        r = client_commands[i].run(client_commands[i].command.arg ? argv[first + 1] : NULL);
        return r < 0 ? 1 : 0;
}

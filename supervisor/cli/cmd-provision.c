/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log.h"
#include "fileio.h"
#include "macro.h"
#include "provision.h"
#include "verbs.h"

static const char *arg_config = CONFIG_DEFAULT_PATH;
static const char *arg_root = NULL;
static bool arg_dry_run = false;
static bool arg_adopt = false;

static void help(void) {
        printf("Usage: regvisor provision [OPTIONS]\n\n"
               "Make this host a registry host: users, linger, podman state outside\n"
               "$HOME, the certificate tree and PKI, the registry's configuration and\n"
               "user unit, containers policy, and the pinned image. Idempotent: a\n"
               "second run changes nothing.\n\n"
               "  -c --config FILE  configuration (default " CONFIG_DEFAULT_PATH ")\n"
               "     --root DIR     write every file below DIR (a staging tree, created\n"
               "                    if missing) instead of the host; steps that change the\n"
               "                    host itself (users, linger, the user manager, the\n"
               "                    image) are skipped, and so are the files of a user\n"
               "                    that does not exist on this machine (they need its id)\n"
               "  -n --dry-run      check everything, change nothing: what would change\n"
               "     --adopt        take over a host set up by the install guide: keep its\n"
               "                    CAs, keys, client certificates and storage, replace its\n"
               "                    registry.service, stop and disable registry-proxy.service\n"
               "                    and the nginx sites on 443/4443 (other sites stay);\n"
               "                    without it provision refuses such a host. Needs\n"
               "                    [tls] key_type = rsa-4096 (the guide's keys)\n"
               "  -h --help         this help\n");
}

static const VerbOption options[] = {
        OPTION_CONFIG(&arg_config),
        OPTION_ROOT(&arg_root),
        OPTION_DRY_RUN(&arg_dry_run),
        {"adopt", 0, OPTION_FLAG, &arg_adopt},
};
static const VerbSyntax syntax = {"provision", help, options, ELEMENTSOF(options), 0, false};

/* One line per row, as it is done (deprovision prints the same). */
void provision_print_result(const ProvisionResult *r, void *userdata) {
        const char *state = step_result_to_string(r->result);

        if (r->skip == SKIP_HOST_ONLY)
                printf("%-8s %-24s (--root: a step on the host itself)\n", state, r->name);
        else
                printf("%-8s %-24s%s%s\n", state, r->name, r->detail ? " " : "", r->detail ?: "");
        fflush(stdout);
}

/* The counts, and under --root what was skipped and why. */
static void print_summary(const Provision *p, const ProvisionReport *rep) {
        const ProvisionCounts *n = &rep->counts;
        unsigned host = 0, user = 0;

        printf("%s: %u ok, %u %s, %u failed, %u skipped\n", p->dry_run ? "plan" : "provision", n->ok, n->changed,
               p->dry_run ? "to change" : "changed", n->failed, n->skipped);
        for (size_t i = 0; i < rep->n_results; i++) {
                host += rep->results[i].skip == SKIP_HOST_ONLY;
                user += rep->results[i].skip == SKIP_NEEDS_USER && rep->results[i].result == STEP_RESULT_SKIPPED;
        }
        if (host > 0)
                printf("--root: %u steps skipped that act on the host itself (users, subordinate ids,\n"
                       "  linger, the user manager, the image, podman info); provision on the host does them\n",
                       host);
        if (user > 0)
                printf("--root: %u steps skipped because %s or %s does not exist on this machine:\n"
                       "  their files carry the user's id (podman state, tmpfiles.d, the registry's\n"
                       "  storage and unit); create the users first (useradd) to see them too\n",
                       user, p->config->service_user, p->config->proxy_user);
}

/* --root DIR: an existing directory, or created (not its parents' modes). */
static int prepare_root(const char *dir) {
        struct stat st;
        int r;

        if (stat(dir, &st) == 0) {
                if (S_ISDIR(st.st_mode))
                        return 0;
                log_error("--root %s: not a directory", dir);
                return -ENOTDIR;
        }
        if (errno != ENOENT)
                return log_error_errno(negative_errno(), "--root %s: %m", dir);
        r = ensure_directory(dir, 0755, geteuid(), getegid());
        if (r < 0)
                return log_error_errno(r, "--root %s: cannot create it: %s", dir, strerror(-r));
        printf("--root: created %s\n", dir);
        return 0;
}

int verb_provision(int argc, char **argv) {
        _cleanup_(provision_report_done) ProvisionReport report = {};
        Config config;
        int r;

        r = verb_parse_argv(&syntax, argc, argv, NULL);
        if (r <= 0)
                return r < 0 ? 2 : 0;
        if (!arg_root && !arg_dry_run && geteuid() != 0) {
                log_error("provision must run as root (or use --root DIR / --dry-run)");
                return 1;
        }
        r = verb_load_config(arg_config, &config);
        if (r < 0)
                return 1;
        if (arg_root && !arg_dry_run && prepare_root(arg_root) < 0) {
                config_done(&config);
                return 1;
        }

        /* Nothing we create is for others unless we say so with an explicit
         * mode; files get exact modes anyway. */
        (void) umask(0077);

        Provision p = {.config = &config, .root = arg_root, .dry_run = arg_dry_run, .adopt = arg_adopt};
        r = provision_run(&p, provision_print_result, NULL, &report);
        if (report.n_results > 0)
                print_summary(&p, &report);
        else
                log_error("provision: %s", strerror(-r));
        provision_done(&p);
        config_done(&config);
        return r < 0 ? 1 : 0;
}

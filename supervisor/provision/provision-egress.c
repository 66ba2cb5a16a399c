/* SPDX-License-Identifier: MIT */
/*
 * The registry's egress with a shared store: the nftables table that
 * render_registry_egress() writes to EGRESS_RULES_PATH (an earlier row),
 * loaded now; at boot EGRESS_UNIT_NAME loads it, required by the service
 * user's manager (the drop-in row). The loaded table carries the rules' hash
 * in its comment: the check compares it with the rules this configuration
 * renders. With the filesystem store (--network=none) no table may be left.
 *
 * nft runs as a child of provision (root already), not through D-Bus: its
 * output is what the check reads.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bus.h"
#include "detail.h"
#include "macro.h"
#include "paths.h"
#include "provision.h"
#include "render.h"

#define NFT_OUTPUT_MAX (256 * 1024)

/* Runs nft with args; its stdout and stderr (up to NFT_OUTPUT_MAX) in
 * *ret_out when not NULL. Returns its exit status (0 to 255), or a negative
 * errno when it could not run (-ENOENT: no nft). */
static int nft_run(char *const *args, char **ret_out) {
        _cleanup_free_ char *out = NULL;
        size_t size = 0;
        int fds[2], status;
        pid_t pid;

        if (access(NFT_PATH, X_OK) < 0)
                return -ENOENT;
        if (!(out = malloc(NFT_OUTPUT_MAX + 1)))
                return -ENOMEM;
        if (pipe2(fds, O_CLOEXEC) < 0)
                return negative_errno();
        pid = fork();
        if (pid < 0) {
                int r = negative_errno();
                close(fds[0]);
                close(fds[1]);
                return r;
        }
        if (pid == 0) {
                char *argv[8] = {(char *) NFT_PATH};
                size_t n = 1;

                for (; args[n - 1] && n < ELEMENTSOF(argv) - 1; n++)
                        argv[n] = args[n - 1];
                argv[n] = NULL;
                if (dup2(fds[1], 1) < 0 || dup2(fds[1], 2) < 0)
                        _exit(127);
                execv(NFT_PATH, argv);
                _exit(127);
        }
        close(fds[1]);
        for (;;) {
                ssize_t k = read(fds[0], out + size, NFT_OUTPUT_MAX - size);
                if (k < 0 && errno == EINTR)
                        continue;
                if (k <= 0)
                        break;
                size += (size_t) k;
                if (size == NFT_OUTPUT_MAX)
                        break;
        }
        close(fds[0]);
        out[size] = 0;
        while (waitpid(pid, &status, 0) < 0)
                if (errno != EINTR)
                        return negative_errno();
        if (ret_out)
                *ret_out = TAKE_PTR(out);
        return WIFEXITED(status) ? WEXITSTATUS(status) : 255;
}

/* 1 when the table is loaded, 0 when not; *ret_listing its text. */
static int egress_table_loaded(char **ret_listing, char **ret_detail) {
        char *args[] = {(char *) "list", (char *) "table", (char *) "inet", (char *) EGRESS_TABLE, NULL};
        _cleanup_free_ char *out = NULL;
        int r = nft_run(args, &out);

        if (r == -ENOENT)
                return detail_set(ret_detail, r, NFT_PATH ": missing (apt-get install nftables)");
        if (r < 0)
                return detail_set(ret_detail, r, "nft: %s", strerror(-r));
        if (r == 0 && ret_listing)
                *ret_listing = TAKE_PTR(out);
        return r == 0;
}

int step_egress_check(Provision *p, const ProvisionStep *s, char **ret_detail) {
        _cleanup_free_ char *listing = NULL, *rules = NULL, *needle = NULL;
        char *tag;
        int r;

        (void) s;
        /* Without nft there is no table: the filesystem store needs none. */
        if (!config_storage_is_shared(p->config) && access(NFT_PATH, X_OK) < 0)
                return detail_set(ret_detail, 1, "none needed (--network=none)");
        r = egress_table_loaded(&listing, ret_detail);
        if (r < 0)
                return r;
        if (!config_storage_is_shared(p->config)) {
                if (r > 0)
                        return detail_set(ret_detail, 0, "table inet " EGRESS_TABLE " (not needed: to remove)");
                return detail_set(ret_detail, 1, "none needed (--network=none)");
        }
        if (!p->have_service_user)
                return -ESRCH;
        r = render_registry_egress(p->config, p->service_uid, &rules);
        if (r < 0)
                return r;
        /* The rendered table's own comment line: what a current table shows. */
        tag = strstr(rules, "\tcomment \"");
        if (!tag || !(needle = strndup(tag + 1, strcspn(tag + 1, "\n"))))
                return -ENOMEM;
        tag = NULL;
        if (listing && strstr(listing, needle))
                return detail_set(ret_detail, 1, "table inet " EGRESS_TABLE " (%s)", needle);
        return detail_set(ret_detail, 0, "table inet " EGRESS_TABLE " %s", listing ? "(other rules)" : "(missing)");
}

int step_egress_apply(Provision *p, const ProvisionStep *s, char **ret_detail) {
        char *load[] = {(char *) "-f", (char *) EGRESS_RULES_PATH, NULL};
        char *del[] = {(char *) "delete", (char *) "table", (char *) "inet", (char *) EGRESS_TABLE, NULL};
        _cleanup_free_ char *out = NULL, *error = NULL;
        sd_bus *bus;
        int r;

        (void) s;
        r = nft_run(config_storage_is_shared(p->config) ? load : del, &out);
        if (r != 0)
                return detail_set(ret_detail, r < 0 ? r : -EIO, "nft %s: %s", config_storage_is_shared(p->config) ? "-f " EGRESS_RULES_PATH : "delete table", r < 0 ? strerror(-r) : out);
        if (!config_storage_is_shared(p->config))
                return detail_set(ret_detail, 0, "removed table inet " EGRESS_TABLE);
        /* The drop-in that requires the boot-time unit: read now. */
        r = provision_system_bus(p, &bus);
        if (r >= 0)
                r = bus_reload_manager(bus, &error);
        if (r < 0)
                return detail_set(ret_detail, r, "loaded the rules; reloading systemd: %s", error ?: strerror(-r));
        return detail_set(ret_detail, 0, "loaded table inet " EGRESS_TABLE " from " EGRESS_RULES_PATH);
}

int step_egress_undo_check(Provision *p, const ProvisionStep *s, char **ret_detail) {
        int r;

        (void) p;
        (void) s;
        if (access(NFT_PATH, X_OK) < 0)
                return 1; /* no nft, no table */
        r = egress_table_loaded(NULL, ret_detail);
        if (r < 0)
                return r;
        return r > 0 ? detail_set(ret_detail, 0, "remove table inet " EGRESS_TABLE) : 1;
}

int step_egress_undo(Provision *p, const ProvisionStep *s, char **ret_detail) {
        char *del[] = {(char *) "delete", (char *) "table", (char *) "inet", (char *) EGRESS_TABLE, NULL};
        _cleanup_free_ char *out = NULL;
        int r;

        (void) p;
        (void) s;
        r = nft_run(del, &out);
        if (r != 0)
                return detail_set(ret_detail, r < 0 ? r : -EIO, "nft delete table: %s", r < 0 ? strerror(-r) : out);
        return detail_set(ret_detail, 0, "removed table inet " EGRESS_TABLE);
}

/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * `regvisor client install BUNDLE` / `client uninstall`, on the client
 * machine: the bundle's files at the paths its MANIFEST names (only below
 * the certs.d trees and /etc/containers/keys/), its policy rules merged into
 * /etc/containers/policy.json, and a record of exactly what was added
 * (CLIENT_RECORD_PATH, root's, 0600) so that uninstall removes that and
 * nothing else. What install replaces (a file that was there with another
 * content or mode, a policy.json rule for the same scope) it keeps first,
 * below CLIENT_RECORD_DIR/saved/ (0700, files 0600), and uninstall puts it
 * back.
 *
 * Install is a plan, then its application: the plan lists only what
 * differs, so a second install plans nothing and changes nothing. A file or
 * a policy rule that was already there, identical, is not recorded: it was
 * not added. All paths are below root (NULL or "/": the machine itself).
 */

#include <stdbool.h>
#include <stdio.h>
#include <sys/types.h>

#define CLIENT_RECORD_DIR "/var/lib/regvisor-client"
#define CLIENT_RECORD_PATH CLIENT_RECORD_DIR "/installed.list"

typedef enum {
        INSTALL_MKDIR,  /* create directory path, 0755 */
        INSTALL_WRITE,  /* write data to path with mode */
        INSTALL_POLICY, /* write the merged policy.json (data); scopes added */
} InstallKind;

typedef struct {
        InstallKind kind;
        char *path; /* as on the client, without root */
        mode_t mode;
        char *data;
        size_t size;
        char **scopes; /* INSTALL_POLICY: the transports.docker entries added */
        char **replaced; /* INSTALL_POLICY: "SCOPE (OLD -> NEW)" per rule it replaces */
        bool created;  /* INSTALL_POLICY: policy.json did not exist */
        bool replaces; /* INSTALL_WRITE: a file is there (another content or mode) */
} InstallAction;

typedef struct {
        InstallAction *actions;
        size_t n;
        char **registries; /* the bundle's registry names (MANIFEST "registry") */
} InstallPlan;

/* What installing bundle (a directory written by pki export) changes below
 * root. Refuses a MANIFEST line that is malformed, names a path outside the
 * allowed trees or with "." / ".." components, or a mode other than 0644
 * and 0600 (-EINVAL); a bundle without its two "registry" lines (an older
 * export), with names of two registries or a third name, a public
 * registry's or a loopback one, a file that is not TREE/NAME/FILE for one
 * of its names (-EINVAL); policy rules other than those export writes for
 * its names, with the key file it writes, or reject (-EPERM,
 * policy_merge_bundle()); a missing bundle file (-ENOENT); a policy.json
 * that is no policy (-EBADMSG). Message in *ret_error. Does not log. */
int client_install_plan(const char *root, const char *bundle, InstallPlan *ret, char **ret_error);

/* 1 when the plan's bundle is for the registry name: its pull name, the
 * first "registry" line, exactly ("registry.example", or
 * "registry.example:8443" when the pull port is not 443); neither another
 * port of its host nor the host of a HOST:PORT. */
bool install_plan_for(const InstallPlan *plan, const char *name);

/* Applies plan below root, in order, and adds what it did to the record.
 * An empty plan changes nothing (not even the record). */
int client_install_apply(const char *root, const InstallPlan *plan, char **ret_error);

void install_plan_done(InstallPlan *plan);

/* The registry the bundle is for, then one line per action: "create dir
 * ...", "write ... (0600)", "merge ...", each policy rule it replaces. */
void install_plan_print(const InstallPlan *plan, FILE *f);

/* Removes below root what the record says install added: its files, its
 * policy rules (policy.json itself when install created it and only the
 * default is left), the directories it created when empty, then the record;
 * puts back what install replaced: the files' previous content and mode,
 * the previous rules of the scopes it replaced.
 * dry_run: only prints what it would do. 0 when there was no record. */
int client_uninstall(const char *root, bool dry_run, FILE *out, char **ret_error);

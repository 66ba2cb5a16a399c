/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * The text of every file provisioning writes, rendered from the
 * configuration. Pure functions: no I/O, so they are unit-tested directly.
 * Each returns 0 and an allocated string, or -ENOMEM.
 */

#include <sys/types.h>

#include "config.h"
#include "store.h"

/* containers.conf and storage.conf for the service user (in its
 * XDG_CONFIG_HOME below /var/tmp/podman-UID). */
int render_containers_conf(const Config *c, uid_t uid, char **ret);
int render_storage_conf(const Config *c, uid_t uid, char **ret);

/* tmpfiles.d: the registry's socket directory in /run at every boot, and
 * /var/tmp/podman-UID excluded from systemd-tmpfiles' age-based cleanup. */
int render_tmpfiles(const Config *c, uid_t uid, const char *service_user, const char *proxy_user, char **ret);

/* The registry's own config.yml: no debug server, delete disabled, fixed
 * http.secret, relative URLs, listen address from [registry] listen. A
 * shared store (cred: its credentials, else NULL) with redirects disabled,
 * so that every blob goes through the proxy. -EINVAL: cred missing for a
 * shared store. */
int render_registry_config(const Config *c, const char *secret, const StoreCredentials *cred, char **ret);

/* A shared store: the nftables table that lets the service user (uid: the
 * slirp4netns of its rootless container makes the registry's connections)
 * reach the store's and the cache's address and port and nothing else. Its
 * comment carries a hash of the rules, which is how provision tells a
 * loaded table from an outdated one. */
int render_registry_egress(const Config *c, uid_t uid, char **ret);

/* The hash comment render_registry_egress() puts in the table. */
int render_registry_egress_tag(const char *rules, char **ret);

/* The system unit that loads those rules at boot, and the drop-in for the
 * service user's manager (user@UID.service) that requires it: no rules, no
 * registry (fail closed). */
int render_egress_unit(uid_t uid, char **ret);
int render_egress_dropin(char **ret);

/* The user unit that runs the registry with rootless podman. */
int render_registry_unit(const Config *c, uid_t uid, char **ret);

/* regvisor.socket: a ListenStream= for [pull] and [push] listen each, for
 * socket activation of regvisor.service. */
int render_proxy_socket_unit(const Config *c, char **ret);

/* The names clients use for this registry: every server name with the pull
 * port (bare when 443) and with the push port, "[v6]" bracketed, in pairs:
 * the pull name at an even index, the same server's push name after it. */
int render_registry_names(const Config *c, char ***ret);

/* registries.d: sigstore attachments for this registry's names ([signing]
 * mode = sigstore); with mode = gpg a comment only. */
int render_registries_d(const Config *c, char **ret);

/* registries.conf.d drop-in: as the guide sets it. */
int render_registries_conf(const Config *c, char **ret);

/* A podman command line of the service user: its global options
 * (NULL-terminated argv fragment, allocated strings: --root, --runroot,
 * --tmpdir, ...) and its environment (NAME=VALUE list). On failure neither
 * is set. */
int render_podman_invocation(uid_t uid, char ***ret_global, char ***ret_env);

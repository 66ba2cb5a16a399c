/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * Where regvisor puts things on the host. One place, so that provision, run
 * and health agree, and ARCHITECTURE.md can list them.
 */

#define REGVISOR_ETC_DIR "/etc/regvisor"
#define REGISTRY_CONFIG_PATH "/etc/regvisor/registry.yml"
#define REGISTRY_SECRET_PATH "/etc/regvisor/registry-http-secret"
#define REGISTRY_UNIT_NAME "regvisor-registry.service"
/* A shared store: the registry's egress rules (nftables), the system unit
 * that loads them at boot and the service user's manager's drop-in that
 * requires it (supervisor/provision/provision-egress.c). */
#define EGRESS_TABLE "regvisor_egress"
#define EGRESS_RULES_PATH "/etc/regvisor/registry-egress.nft"
#define EGRESS_UNIT_NAME "regvisor-egress.service"
#define EGRESS_UNIT_PATH "/etc/systemd/system/regvisor-egress.service"
#define EGRESS_DROPIN_FMT "/etc/systemd/system/user@%u.service.d/regvisor-egress.conf"
#define NFT_PATH "/usr/sbin/nft"
/* The system unit of `regvisor run` (units/regvisor.service). */
#define REGVISOR_UNIT_NAME "regvisor.service"
/* Socket activation of regvisor.service: written by provision from [pull]
 * and [push] listen (units/regvisor.socket is the default's). */
#define PROXY_SOCKET_UNIT_NAME "regvisor.socket"
#define PROXY_SOCKET_UNIT_PATH "/etc/systemd/system/regvisor.socket"
#define REGISTRY_UNIT_PATH "/etc/systemd/user/regvisor-registry.service"
#define REGISTRY_CONTAINER_NAME "regvisor-registry"
#define TMPFILES_PATH "/etc/tmpfiles.d/regvisor.conf"
#define CONTAINERS_POLICY_PATH "/etc/containers/policy.json"
/* [signing] keys as installed, named by policy.json's signedBy rules. */
#define SIGNING_KEYS_PATH "/etc/containers/keys/regvisor-signers.gpg"
#define REGISTRIES_D_PATH "/etc/containers/registries.d/regvisor.yaml"
#define REGISTRIES_CONF_D_PATH "/etc/containers/registries.conf.d/50-regvisor.conf"
#define LINGER_DIR "/var/lib/systemd/linger"

/* The signature store (regvisor sigstore, started by regvisor run): its
 * socket, in a directory of root and the proxy's group (2750: root binds
 * there without CAP_DAC_OVERRIDE, the workers connect), and its directory,
 * the service user's (0750). units/regvisor.service has both writable. */
#define SIGSTORE_SOCKET_DIR "/run/regvisor/sigstore"
#define SIGSTORE_SOCKET_PATH "/run/regvisor/sigstore/sigstore.sock"
#define SIGSTORE_STATE_DIR "/var/lib/regvisor"
#define SIGSTORE_DIR "/var/lib/regvisor/signatures"

/* Inside the registry container. */
#define CONTAINER_SOCKET_DIR "/run/registry"
#define CONTAINER_CONFIG_PATH "/etc/docker/registry/config.yml"
#define CONTAINER_STORAGE_DIR "/var/lib/registry"

/* Run as the service user, in its own manager (never by the supervisor). */
#define PODMAN_PATH "/usr/bin/podman"

/* Podman state of the service user, outside $HOME: /var/tmp/podman-UID. */
#define PODMAN_STATE_FMT "/var/tmp/podman-%u"
#define PODMAN_RUNROOT_FMT "/run/user/%u/podman-run"

/* The certificate tree below [tls] dir (the guide's layout). */
#define TLS_SERVER_CA_KEY "private/ca.key"
#define TLS_SERVER_CA_CERT "ca/ca.crt"
#define TLS_SERVER_KEY "private/registry.key"
#define TLS_SERVER_CERT "registry.crt"
#define TLS_CLIENT_CA_KEY "private/client-ca.key"
#define TLS_CLIENT_CA_CERT "clients/ca.crt"
#define TLS_CLIENT_CRL "clients/crl.pem"
/* The server CA's CRL: it revokes nothing so far, but a certificate's CRL
 * distribution point must name a CRL of its own issuer (RFC 5280 6.3.3). */
#define TLS_SERVER_CRL "ca/crl.pem"
#define TLS_CLIENT_KEY_FMT "private/clients/%s.key"
#define TLS_CLIENT_CERT_FMT "clients/%s.crt"

/* The CRLs' URL paths: crl-url.h (the proxy, which does not see this
 * folder, serves them). */
#include "crl-url.h"

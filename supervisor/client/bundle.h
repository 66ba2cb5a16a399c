/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * The client bundle: everything a client machine needs to pull from and
 * push to this registry, written by `regvisor pki export` on the registry
 * host and read by `regvisor client install` on the client.
 *
 * A directory, not a tar: its protection is plain file modes (the root 0700,
 * the key 0600, both set at creation), which `tar -p`, `scp -rp` or `cp -a`
 * carry as they are, and `client install`, run as root, parses no archive
 * format from another machine; it reads files by the names its MANIFEST
 * lists, below files/, and installs each at that same absolute path.
 *
 *   BUNDLE/README               what it is, how to install it (127/8 note)
 *   BUNDLE/MANIFEST             "registry NAME" per name of the registry (HOST,
 *                               HOST:PUSH), first; "MODE PATH" per installed
 *                               file; "policy FILE"; without a key: "client
 *                               NAME" and "client-key PATH" (install copies
 *                               the key `client request` made)
 *   BUNDLE/policy-fragment.json transports.docker rules for this registry
 *   BUNDLE/files/etc/containers/certs.d/HOST/ca.crt
 *   BUNDLE/files/etc/containers/certs.d/HOST:PUSH/{ca.crt,client.cert,client.key}
 *   BUNDLE/files/etc/containerd/certs.d/HOST/{hosts.toml,ca.crt}
 *   BUNDLE/files/etc/containerd/certs.d/HOST:PUSH/{hosts.toml,ca.crt,client.cert,client.key}
 *   BUNDLE/files/etc/docker/certs.d/HOST/ca.crt
 *   BUNDLE/files/etc/docker/certs.d/HOST:PUSH/{ca.crt,client.cert,client.key}
 *   BUNDLE/files/etc/containers/keys/HOST/regvisor-signers.gpg   ([signing] mode = gpg)
 *   BUNDLE/files/etc/containers/keys/HOST/regvisor-sigstore.pub  ([signing] mode = sigstore)
 *
 * HOST is a name, an IPv4 address or "[IPV6]" (bundle_authority()).
 *
 * A bundle is for its registry alone, the one the operator names (client
 * install --registry PULL): its two "registry" lines are PULL (HOST, or
 * HOST:PORT when the pull port is not 443) and PUSH (HOST:PORT), no other
 * port of HOST; every file it installs is TREE/NAME/FILE, NAME one of
 * those (so a bundle cannot write another registry's CA, client
 * certificate, hosts.toml or trusted keys); its policy rules are exactly
 * those export writes for those two names, with the key file the bundle
 * itself writes, or reject, rebuilt by install, none taken as they are
 * (install.c, policy_merge_bundle()).
 */

#include <stddef.h>
#include <stdint.h>

#define BUNDLE_MANIFEST "MANIFEST"
#define BUNDLE_README "README"
#define BUNDLE_POLICY "policy-fragment.json"
#define BUNDLE_FILES "files"

/* Where install may write: a MANIFEST path outside these is refused. */
#define CLIENT_CERTS_D "/etc/containers/certs.d"
#define CLIENT_CONTAINERD_CERTS_D "/etc/containerd/certs.d"
#define CLIENT_DOCKER_CERTS_D "/etc/docker/certs.d"
#define CLIENT_KEYS_DIR "/etc/containers/keys"
/* Where a client installs the signers' keys, %s the registry's pull name
 * (its first "registry" line): below the registry's own name, as every
 * file of a bundle, so that two registries' bundles never share, nor
 * replace, each other's trusted keys. The policy rules a bundle may bring
 * name these files, and only when the bundle itself writes them. */
#define CLIENT_SIGNERS_KEY_FMT CLIENT_KEYS_DIR "/%s/regvisor-signers.gpg"
#define CLIENT_SIGSTORE_KEY_FMT CLIENT_KEYS_DIR "/%s/regvisor-sigstore.pub"
/* Where `client request NAME` keeps NAME's private key (0600, directory
 * 0700) until install copies it next to the certificate. */
#define CLIENT_OWN_KEYS_DIR "/var/lib/regvisor-client/keys"

typedef struct {
        const char *client;   /* the client's name, its certificate's CN */
        const char *host;     /* the registry name the client uses: not in 127/8 */
        uint16_t pull_port;   /* 443: no ":PORT" in names */
        uint16_t push_port;
        const char *ca_pem;   /* the server CA */
        const char *cert_pem; /* the client's certificate */
        const char *key_pem;  /* its private key; NULL: made on the client (client request) */
        const char *signers;  /* the signers' public keys (installed as key_path); NULL: none */
        size_t signers_size;
        const char *key_path; /* where the policy names them */
        const char *signers_kind; /* what they are, for the README; NULL: "the trusted signers' public keys" */
        const char *policy_fragment; /* policy.json text with transports.docker only */
} BundleSpec;

/* 1 when host is a name docker honours certs.d for: not "localhost" and not
 * an IPv4 literal in 127.0.0.0/8 (nor ::1), which docker always treats as
 * an insecure registry, ignoring its CA and client certificate. */
int bundle_host_usable(const char *host);

/* When auth is a registry name a bundle may carry ("HOST" or "HOST:PORT",
 * HOST a DNS name, an IPv4 address or "[IPV6]", PORT 1-65535 without a
 * leading zero): 0 and the length of HOST in *ret_host_len; else -EINVAL. */
int bundle_authority_split(const char *auth, size_t *ret_host_len);

/* 1 when host (n bytes) is a public registry's name (docker.io, quay.io,
 * ghcr.io, ...): never a regvisor registry's, so a bundle naming one is
 * refused (it would take over what the machine trusts for it). */
int bundle_host_public(const char *host, size_t n);

/* "HOST" for port 443, else "HOST:PORT", into a new string; an IPv6
 * literal in brackets ("[2001:db8::1]:4443"), with or without them in host. */
int bundle_authority(const char *host, uint16_t port, char **ret);

/* The containerd hosts.toml for authority (host, port): one
 * [host."https://AUTHORITY"] table with ca (and client when with_client),
 * paths below CLIENT_CONTAINERD_CERTS_D/AUTHORITY, and no top-level server
 * line (containerd 1.6 rejects that tree, containerd issue 10027). */
int bundle_hosts_toml(const char *host, uint16_t port, int with_client, char **ret);

/* Writes the bundle into dir, which must not exist (-EEXIST): created 0700,
 * every file created with its final mode (0600 for key material, else
 * 0644) before a byte is written. On failure a message in *ret_error;
 * whatever was written stays in dir for inspection (never world-readable).
 * Does not log. */
int bundle_write(const BundleSpec *spec, const char *dir, char **ret_error);

/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bundle.h"
#include "export.h"
#include "fileio.h"
#include "macro.h"
#include "paths.h"
#include "policy.h"
#include "signkeys.h"

#define PEM_MAX (256 * 1024)

/* Reads [tls] dir/rel (the staging root applied) into *ret. */
static int read_tls(Provision *p, const char *rel, char **ret, char **ret_error) {
        _cleanup_free_ char *path = NULL, *full = NULL;
        int r;

        if (asprintf(&path, "%s/%s", p->config->tls_dir, rel) < 0)
                return -ENOMEM;
        full = provision_path(p, path);
        if (!full)
                return -ENOMEM;
        r = read_file(full, PEM_MAX, ret, NULL);
        if (r < 0 && r != -ENOENT && asprintf(ret_error, "%s: %s", full, strerror(-r)) < 0)
                *ret_error = NULL;
        return r;
}

/* The server name to put in the bundle, as clients spell it ("[ADDR]" for
 * an IPv6 literal): host when it is one of [tls] server_names (either
 * spelling) and usable (bundle.h), else the first usable one. */
static int pick_host(const Config *c, const char *host, char **ret, char **ret_error) {
        for (unsigned i = 0; i < c->n_server_names; i++) {
                _cleanup_free_ char *auth = NULL;
                const char *n = c->servers[i].name;
                if (config_server_authority(&c->servers[i], 443, &auth) < 0)
                        return -ENOMEM;
                if (host ? streq(host, n) || streq(host, auth) : bundle_host_usable(auth) > 0) {
                        if (!bundle_host_usable(auth))
                                break;
                        *ret = TAKE_PTR(auth);
                        return 0;
                }
        }
        if (asprintf(ret_error, "%s: [tls] server_names has %s; docker ignores certs.d for 127.0.0.0/8, ::1 and "
                                "localhost, so a client names the registry by a name or an address outside those",
                     host ?: "no usable name", host ? "no such name, or it is a loopback one" : "only loopback names") < 0)
                *ret_error = NULL;
        return -EINVAL;
}

/* The policy rules for host: signedBy the [signing] keys (or sigstore,
 * or reject when no signer is configured, as provision does), with the
 * signers' key file to install (*ret_key_path, NULL: none). */
static int policy_for(const Config *c, const char *pull, const char *push, char **ret_fragment, SignKeys *keys,
                      char **ret_key_path, char **ret_error) {
        const PolicyScope scopes[] = {{pull, push}, {push, push}};
        PolicyKind kind = POLICY_REJECT;
        _cleanup_free_ char *key_path = NULL;
        int r;

        if (c->signing_mode == SIGNING_GPG && c->signing_keys) {
                r = signkeys_read(c->signing_keys, keys, ret_error);
                if (r < 0)
                        return r;
                kind = POLICY_GPG;
                if (asprintf(&key_path, CLIENT_SIGNERS_KEY_FMT, pull) < 0)
                        return -ENOMEM;
        } else if (c->signing_mode == SIGNING_SIGSTORE) {
                r = read_file(c->sigstore_key, PEM_MAX, &keys->data, &keys->size);
                if (r < 0) {
                        if (asprintf(ret_error, "%s: %s", c->sigstore_key, strerror(-r)) < 0)
                                *ret_error = NULL;
                        return r;
                }
                kind = POLICY_SIGSTORE;
                if (asprintf(&key_path, CLIENT_SIGSTORE_KEY_FMT, pull) < 0)
                        return -ENOMEM;
        }
        r = policy_merge("{}", kind, key_path, scopes, ELEMENTSOF(scopes), ret_fragment, ret_error);
        if (r < 0)
                return r;
        *ret_key_path = TAKE_PTR(key_path);
        return 0;
}

int client_export(Provision *p, const char *name, const char *host, const char *dir, char **ret_registry,
                  char **ret_error) {
        const Config *c = p->config;
        _cleanup_free_ char *picked = NULL;
        _cleanup_free_ char *ca = NULL, *cert = NULL, *key = NULL, *cert_rel = NULL, *key_rel = NULL,
                            *pull = NULL, *push = NULL, *fragment = NULL, *key_path = NULL;
        _cleanup_(signkeys_done) SignKeys keys = {};
        int r;

        r = pick_host(c, host, &picked, ret_error);
        if (r < 0)
                return r;
        host = picked;
        if (asprintf(&cert_rel, TLS_CLIENT_CERT_FMT, name) < 0 || asprintf(&key_rel, TLS_CLIENT_KEY_FMT, name) < 0)
                return -ENOMEM;
        r = read_tls(p, TLS_SERVER_CA_CERT, &ca, ret_error);
        if (r >= 0)
                r = read_tls(p, cert_rel, &cert, ret_error);
        if (r == -ENOENT && asprintf(ret_error, "no certificate %s/%s: run 'regvisor pki issue-client %s' (or "
                                                "'pki sign') first",
                                     c->tls_dir, cert_rel, name) < 0)
                *ret_error = NULL;
        if (r < 0)
                return r;
        /* No key here: it was made on the client; the bundle has none. */
        r = read_tls(p, key_rel, &key, ret_error);
        if (r < 0 && r != -ENOENT)
                return r;
        if (bundle_authority(host, c->pull.listen.port, &pull) < 0 ||
            bundle_authority(host, c->push.listen.port, &push) < 0)
                return -ENOMEM;
        r = policy_for(c, pull, push, &fragment, &keys, &key_path, ret_error);
        if (r < 0)
                return r;

        BundleSpec spec = {
                .client = name,
                .host = host,
                .pull_port = c->pull.listen.port,
                .push_port = c->push.listen.port,
                .ca_pem = ca,
                .cert_pem = cert,
                .key_pem = key,
                .signers = keys.data,
                .signers_size = keys.size,
                .key_path = key_path,
                .signers_kind = c->signing_mode == SIGNING_SIGSTORE ? "the cosign public key sigstore signatures are "
                                                                      "verified with"
                                                                    : "the trusted signers' GPG public keys",
                .policy_fragment = fragment,
        };
        r = bundle_write(&spec, dir, ret_error);
        if (r < 0)
                return r;
        *ret_registry = TAKE_PTR(pull);
        return 0;
}

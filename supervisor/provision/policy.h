/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * containers-policy.json(5): the rule that images from this registry must
 * carry a signature by a trusted key. Merged into the host's policy: other
 * registries' rules stay as they were.
 */

#include <stdbool.h>
#include <stddef.h>

typedef enum {
        /* [{"type": "signedBy", "keyType": "GPGKeys", "keyPath": key_path,
         *   "signedIdentity": identity}]: GPG simple signing, what Debian
         * 12's podman verifies (through gpgme). */
        POLICY_GPG,
        /* [{"type": "sigstoreSigned", "keyPath": key_path, "signedIdentity":
         *   {"type": "matchRepository"}}]: for clients with sigstore. */
        POLICY_SIGSTORE,
        /* [{"type": "reject"}]: no trusted signer is configured yet. */
        POLICY_REJECT,
} PolicyKind;

/* One transports.docker key and the name its signatures carry. */
typedef struct {
        const char *scope; /* NAME (the pull port, 443) or NAME:PORT */
        /* POLICY_GPG: the host[:port] that signatures of images pulled
         * through scope name, i.e. the push name NAME:4443 the image was
         * signed through: identity {"type": "remapIdentity", "prefix":
         * scope, "signedPrefix": signed_prefix}. NULL, equal to scope, or
         * scope an IPv6 literal (containers/image 5.23 refuses it as a
         * prefix): {"type": "matchRepoDigestOrExact"}. */
        const char *signed_prefix;
} PolicyScope;

/* Merges, for each of the n_scopes scopes, transports.docker[scope] = the
 * requirement of kind (key_path unused for POLICY_REJECT) into existing (the
 * current policy.json text, or NULL when there is none: then the
 * distribution's default, accept anything elsewhere, is kept as the
 * default). Returns 1 and the new text in *ret_json when something changes,
 * 0 when existing already holds exactly these rules, -EBADMSG when existing
 * is not a JSON object (with a message in *ret_error), -ENOMEM. */
int policy_merge(const char *existing, PolicyKind kind, const char *key_path, const PolicyScope *scopes,
                 size_t n_scopes, char **ret_json, char **ret_error);

/* A transports.docker scope a fragment may carry: a registry or repository
 * name ("host", "host:port/ns/repo", "*.example.com", "[::1]:5000"): 1 to
 * POLICY_SCOPE_MAX bytes of letters, digits and .-_:/@*[], not starting
 * with '/'. No space nor control character: install records it as a line. */
#define POLICY_SCOPE_MAX 1024
bool policy_scope_valid(const char *scope);

/* For a client machine (regvisor client install): merges every
 * transports.docker entry of fragment (a policy.json text holding only
 * those) into existing (NULL: none, the distribution's default is kept as
 * in policy_merge()). Returns 1 with the new text in *ret_json and, in
 * *ret_changed (NULL-terminated, may be empty), the scopes it added or
 * replaced; 0 when existing already holds them all; -EBADMSG with
 * *ret_error for text that is not a policy object; -ENOMEM. */
int policy_merge_fragment(const char *existing, const char *fragment, char **ret_json, char ***ret_changed,
                          char **ret_error);

/* A requirement a bundle's rule may be: kind with the key file at
 * key_path (NULL for POLICY_REJECT). */
typedef struct {
        PolicyKind kind;
        const char *key_path;
} PolicyRequirement;

/* For client install: the rules of a bundle's fragment merged into
 * existing, as policy_merge_fragment(), but none taken from it. The
 * fragment must hold transports.docker alone, with a rule for each of the
 * n_scopes scopes (the bundle's names, as export passes them to
 * policy_merge()) and no other, each exactly what policy_merge() writes
 * for one requirement of allowed, the same for all (install allows a key
 * file the bundle itself writes, and reject); else -EPERM with *ret_error,
 * nothing merged. What is merged is rebuilt here (requirement_new()): a
 * bundle never makes anything accepted unsigned, never names a key it
 * does not carry, and never writes a rule containers/image would refuse
 * (refusing with it the whole policy.json, every pull of the machine).
 * *ret_replaced (with 1; NULL-terminated, may be empty): "SCOPE (OLD ->
 * NEW)", the requirement types, per rule of existing it replaces, for the
 * plan to show. ret_replaced NULL: none. */
int policy_merge_bundle(const char *existing, const char *fragment, const PolicyScope *scopes, size_t n_scopes,
                        const PolicyRequirement *allowed, size_t n_allowed, char **ret_json, char ***ret_changed,
                        char ***ret_replaced, char **ret_error);

/* The reverse, for client uninstall: removes the transports.docker entries
 * named in scopes (NULL-terminated) from existing, and nothing else.
 * Returns 1 with *ret_json when one was there, 0 when none was, -EBADMSG
 * (with *ret_error), -ENOMEM. */
int policy_remove_scopes(const char *existing, char *const *scopes, char **ret_json, char **ret_error);

/* For client install, before it replaces rules: a fragment (as
 * policy_merge_fragment() takes) holding the transports.docker entries of
 * existing named in scopes (NULL-terminated), as they are. Returns 1 with
 * *ret_fragment when one was there, 0 when none was (existing NULL too),
 * -EBADMSG (with *ret_error), -ENOMEM. */
int policy_scopes_fragment(const char *existing, char *const *scopes, char **ret_fragment, char **ret_error);

/* For deprovision: which of the scopes' rules, as policy_merge() writes
 * them for kind and key_path, existing holds exactly so. 0 with them in
 * *ret_scopes (NULL-terminated, may be empty; for policy_remove_scopes());
 * -EEXIST with *ret_error when a scope's rule is another one (someone
 * changed it: not ours to remove); -EBADMSG, -ENOMEM. */
int policy_own_scopes(const char *existing, PolicyKind kind, const char *key_path, const PolicyScope *scopes,
                      size_t n_scopes, char ***ret_scopes, char **ret_error);


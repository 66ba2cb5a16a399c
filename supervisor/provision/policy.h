/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * containers-policy.json(5): the rule that images from this registry must
 * carry a sigstore signature made with the configured key. Merged into the
 * host's policy: other registries' rules stay as they were.
 */

/* Merges, for each name, transports.docker[name] = [{"type":
 * "sigstoreSigned", "keyPath": key_path, "signedIdentity": {"type":
 * "matchRepository"}}] into existing (the current policy.json text, or NULL
 * when there is none: then the distribution's default, accept anything
 * elsewhere, is kept as the default). Returns 1 and the new text in *ret_json
 * when something changes, 0 when existing already holds exactly these rules,
 * -EBADMSG when existing is not a JSON object (with a message in
 * *ret_error), -ENOMEM. */
int policy_merge(const char *existing, char *const *names, const char *key_path, char **ret_json, char **ret_error);

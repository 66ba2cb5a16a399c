/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * `regvisor client request NAME`, on the client machine: NAME's private key
 * made here and kept here (CLIENT_OWN_KEYS_DIR/NAME.key, 0600 in a 0700
 * directory), and a certificate request for it that the registry host signs
 * with `pki sign`. The key never leaves this machine; `client install`
 * copies it next to the certificate the bundle brings.
 */

/* Makes NAME's key below root (or keeps the one there: a second request
 * asks again for the same key) and writes the request, PEM, to csr_path.
 * Message in *ret_error. Does not log. */
int client_request(const char *root, const char *name, const char *csr_path, char **ret_error);

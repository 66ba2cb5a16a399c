/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * `regvisor pki export NAME`: the client bundle (bundle.h) for client NAME
 * from this registry host's certificate tree and configuration.
 */

#include "provision.h"

/* Writes NAME's bundle into dir (must not exist). host: the registry name
 * the client uses, one of [tls] server_names; NULL: the first of them not
 * in 127/8. The certificate must exist; the key is included when it exists on this host. On success
 * the registry's pull name (what `client install --registry` takes) in
 * *ret_registry; on failure a message in *ret_error. Does not log. */
int client_export(Provision *p, const char *name, const char *host, const char *dir, char **ret_registry,
                  char **ret_error);

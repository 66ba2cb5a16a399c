/* SPDX-License-Identifier: MIT */
/*
 * The proxy's configuration: see proxy-config.h.
 */

#include <stdlib.h>

#include "macro.h"
#include "proxy-config.h"

const char *proxy_port_name(ProxyPort p) {
        return p == PROXY_PULL ? "pull" : "push";
}

void proxy_config_done(ProxyConfig *c) {
        if (!c)
                return;
        free_many(c->source, c->proxy_user, c->upstream_path, c->upstream_host, c->sigstore_path, c->tls_cert,
                  c->tls_key, c->tls_client_ca, c->tls_crl, c->tls_server_ca, c->tls_server_crl);
        for (unsigned i = 0; i < c->n_server_names; i++)
                free(c->server_names[i]);
        for (int i = 0; i < _PROXY_PORT_MAX; i++)
                free(c->port[i].listen_host);
        scope_table_done(&c->scopes);
        free(c->htpasswd_path);
        htpasswd_done(&c->htpasswd);
        *c = (ProxyConfig){};
}

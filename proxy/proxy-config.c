/* SPDX-License-Identifier: MIT */
/*
 * The proxy's configuration: see proxy-config.h.
 */

#include <stdlib.h>

#include "proxy-config.h"

const char *proxy_port_name(ProxyPort p) {
        return p == PROXY_PULL ? "pull" : "push";
}

void proxy_config_done(ProxyConfig *c) {
        if (!c)
                return;
        free(c->source);
        free(c->proxy_user);
        free(c->upstream_path);
        free(c->upstream_host);
        free(c->sigstore_path);
        free(c->tls_cert);
        free(c->tls_key);
        free(c->tls_client_ca);
        free(c->tls_crl);
        free(c->tls_server_ca);
        free(c->tls_server_crl);
        for (unsigned i = 0; i < c->n_server_names; i++)
                free(c->server_names[i]);
        for (int i = 0; i < _PROXY_PORT_MAX; i++)
                free(c->port[i].listen_host);
        scope_table_done(&c->scopes);
        free(c->htpasswd_path);
        htpasswd_done(&c->htpasswd);
        *c = (ProxyConfig){};
}

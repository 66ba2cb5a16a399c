/* SPDX-License-Identifier: MIT */
/*
 * regvisor proxy: the TLS proxy alone, in the foreground, against the
 * upstream of [registry] listen. For operators who supervise it elsewhere,
 * for tests and for benchmarks; `regvisor run` starts the same code.
 */

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fileio.h"
#include "log.h"
#include "macro.h"
#include "maintenance.h"
#include "paths.h"
#include "proxy.h"
#include "reload.h"
#include "verbs.h"

static const char *arg_config = CONFIG_DEFAULT_PATH;
static const char *arg_root = NULL;
static const char *arg_sigstore = NULL;

static void help(void) {
        printf("Usage: regvisor proxy [OPTIONS]\n\n"
               "Run the TLS proxy in the foreground: port [pull] listen (anonymous pulls)\n"
               "and [push] listen (mTLS), forwarding to [registry] listen.\n"
               "SIGHUP reloads the configuration, certificates and the CRL (restart-only\n"
               "keys refuse it); SIGTERM drains and stops.\n\n"
               "  -c --config FILE  configuration (default " CONFIG_DEFAULT_PATH ")\n"
               "     --root DIR     the certificate tree below DIR\n"
               "     --sigstore SOCKET  serve the registry signature extension through the\n"
               "                    signature store listening on SOCKET (regvisor sigstore;\n"
               "                    regvisor run passes " SIGSTORE_SOCKET_PATH ")\n"
               "  -h --help         this help\n");
}

static const VerbOption options[] = {
        OPTION_CONFIG(&arg_config),
        OPTION_ROOT(&arg_root),
        {"sigstore", 0, OPTION_STRING, &arg_sigstore},
};
/* Options first ("+"), as before: nothing after them is an option. */
static const VerbSyntax syntax = {"proxy", help, options, ELEMENTSOF(options), 0, true};

_Static_assert(CONFIG_MAX_SERVER_NAMES <= PROXY_MAX_SERVER_NAMES, "server_names fit the proxy's");
_Static_assert(CONFIG_MAX_CIDRS <= PROXY_MAX_CIDRS, "allow_cidrs fit the proxy's");

static int strdup_or_null(const char *s, char **ret) {
        *ret = s ? strdup(s) : NULL;
        return s && !*ret ? -ENOMEM : 0;
}

/* A file of the certificate tree, below [tls] dir, below --root. */
static char *tls_file(const Config *c, const char *root, const char *rel) {
        _cleanup_free_ char *dir = path_join_root(root, c->tls_dir);
        char *p;

        if (!dir || asprintf(&p, "%s/%s", dir, rel) < 0)
                return NULL;
        return p;
}

static int port_config(const PortConfig *pc, ProxyPortConfig *ret) {
        *ret = (ProxyPortConfig){
                .listen_port = pc->listen.port,
                .rate = pc->rate,
                .burst = pc->burst,
                .delay = pc->delay,
                .conn_per_ip = pc->conn_per_ip,
                .n_allow_cidrs = pc->n_allow_cidrs,
        };
        memcpy(ret->allow_cidrs, pc->allow_cidrs, pc->n_allow_cidrs * sizeof(Cidr));
        return strdup_or_null(pc->listen.host, &ret->listen_host);
}

/* The proxy's part of the configuration (proxy-config.h): what it serves,
 * the certificate files it loads (root prefixes the tree, as for
 * provision), source names the file in its messages, sigstore the store's
 * socket (NULL: none), the htpasswd file's entries. -ENOMEM, or the
 * htpasswd file's error with *ret_error saying which line (caller frees). */
static int proxy_config_from(const Config *c, const char *source, const char *root, const char *sigstore,
                             ProxyConfig *ret, char **ret_error) {
        ProxyConfig p = {
                .upstream_port = c->listen.port,
                .tuning = c->proxy,
                /* Read at every start and reload: gc reloads to open or
                 * close the window, and a gc that died holds no lock. */
                .push_closed = maintenance_read(MAINTENANCE_PATH) != MAINTENANCE_NONE,
                .push_retry_after = MAINTENANCE_RETRY_AFTER,
        };
        int r = 0;

        p.tls_cert = tls_file(c, root, TLS_SERVER_CERT);
        p.tls_key = tls_file(c, root, TLS_SERVER_KEY);
        p.tls_client_ca = tls_file(c, root, TLS_CLIENT_CA_CERT);
        p.tls_crl = tls_file(c, root, TLS_CLIENT_CRL);
        p.tls_server_ca = tls_file(c, root, TLS_SERVER_CA_CERT);
        p.tls_server_crl = tls_file(c, root, TLS_SERVER_CRL);
        if (!p.tls_cert || !p.tls_key || !p.tls_client_ca || !p.tls_crl || !p.tls_server_ca || !p.tls_server_crl)
                r = -ENOMEM;
        for (unsigned i = 0; r >= 0 && i < c->n_server_names; i++) {
                r = strdup_or_null(c->server_names[i], &p.server_names[i]);
                p.n_server_names += r >= 0;
        }
        if (r >= 0)
                r = strdup_or_null(source, &p.source);
        if (r >= 0)
                r = strdup_or_null(c->proxy_user, &p.proxy_user);
        if (r >= 0)
                r = strdup_or_null(sigstore, &p.sigstore_path);
        if (r >= 0)
                r = strdup_or_null(c->listen.kind == LISTEN_UNIX ? c->listen.path : NULL, &p.upstream_path);
        if (r >= 0)
                r = strdup_or_null(c->listen.kind == LISTEN_TCP ? c->listen.host : NULL, &p.upstream_host);
        if (r >= 0)
                r = port_config(&c->pull, &p.port[PROXY_PULL]);
        if (r >= 0)
                r = port_config(&c->push, &p.port[PROXY_PUSH]);
        if (r >= 0)
                /* Checked line by line when the file was read: only -ENOMEM. */
                r = scope_table_parse(c->push_scopes, &p.scopes);
        if (r >= 0 && c->push_htpasswd) {
                r = strdup_or_null(c->push_htpasswd, &p.htpasswd_path);
                if (r >= 0)
                        r = htpasswd_load(p.htpasswd_path, &p.htpasswd, ret_error);
        }
        if (r < 0) {
                proxy_config_done(&p);
                return r;
        }
        *ret = p;
        return 0;
}

/* What a SIGHUP of the proxy reads: the file it was started with. */
typedef struct ProxyReloadData {
        const char *path;
        const char *root;
        const char *sigstore;
        const Config *started; /* restart-only keys keep these values */
} ProxyReloadData;

/* The proxy's ProxyReload: the file again, with the same parser, refused
 * when it changes a key only a restart applies (reload.h). Comparing with
 * the configuration the proxy started with is comparing with the running
 * one: every reload it applied had the same restart-only values. */
static int proxy_reload(void *userdata, ProxyConfig *ret, char **ret_refusal) {
        const ProxyReloadData *d = userdata;
        Config fresh;
        int r;

        r = reload_check_file(d->path, d->started, RELOAD_PROXY, "a restart", &fresh, ret_refusal);
        if (r < 0)
                return r;
        r = proxy_config_from(&fresh, d->path, d->root, d->sigstore, ret, ret_refusal);
        config_done(&fresh);
        return r;
}

int verb_proxy(int argc, char **argv) {
        _cleanup_(proxy_config_done) ProxyConfig proxy = {};
        _cleanup_free_ char *error = NULL;
        ProxyReloadData reload;
        Config config;
        int r;

        r = verb_parse_argv(&syntax, argc, argv, NULL);
        if (r <= 0)
                return r < 0 ? 2 : 0;
        r = verb_load_config(arg_config, &config);
        if (r < 0)
                return 1;
        r = proxy_config_from(&config, arg_config, arg_root, arg_sigstore, &proxy, &error);
        if (r < 0) {
                config_done(&config);
                return log_error_errno(r, "%s", error ?: "out of memory"), 1;
        }
        reload = (ProxyReloadData){.path = arg_config, .root = arg_root, .sigstore = arg_sigstore, .started = &config};
        r = proxy_run(&proxy, proxy_reload, &reload);
        config_done(&config);
        return r < 0 ? 1 : 0;
}

/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * What the proxy is told: everything it needs from the configuration, and
 * nothing else. The proxy never reads the configuration file and never
 * sees the Config (common/config/): the command line (supervisor/cli/
 * cmd-proxy.c) loads the file, builds a ProxyConfig and hands it over, as
 * relayd's parent hands its relays their part. A worker gets it from its
 * parent by fork(), as before.
 *
 * A reload (SIGHUP) asks the command line again, through the ProxyReload
 * callback it passed: it loads the file, refuses restart-only changes, and
 * translates. So "which keys does a reload refuse" keeps its one home
 * (common/config/reload.c) and the proxy still includes no config header.
 *
 * A ProxyConfig owns its strings: proxy_config_done() frees them.
 */

#include <stdbool.h>
#include <stdint.h>

#include "cidr.h"
#include "htpasswd.h"
#include "scope.h"
#include "proxy-tuning.h"

typedef enum ProxyPort {
        PROXY_PULL,
        PROXY_PUSH,
        _PROXY_PORT_MAX,
} ProxyPort;

#define PROXY_MAX_SERVER_NAMES 32
#define PROXY_MAX_CIDRS 32

/* One listening port: [pull] or [push]. */
typedef struct ProxyPortConfig {
        char *listen_host;    /* NULL: all addresses (dual-stack) */
        uint16_t listen_port; /* also what the port is called in Host and logs */
        double rate;          /* requests per second per client; 0 = off */
        unsigned burst;       /* extra requests allowed at once */
        bool delay;           /* within the burst: wait for the token instead of serving at once */
        unsigned conn_per_ip; /* 0 = off */
        Cidr allow_cidrs[PROXY_MAX_CIDRS];
        unsigned n_allow_cidrs; /* 0 = everyone */
} ProxyPortConfig;

typedef struct ProxyConfig {
        /* Where it came from, for messages ("the configuration of FILE"). */
        char *source;

        char *proxy_user; /* the workers' user; its group may connect to the registry */

        /* The registry: a unix socket (upstream_path), or loopback TCP. */
        char *upstream_path; /* NULL: upstream_host:upstream_port */
        char *upstream_host; /* "127.0.0.1" or "::1" */
        uint16_t upstream_port;

        /* The signature store's unix socket (regvisor sigstore), or NULL:
         * the extension is then not served (no route, no /v2/ header). */
        char *sigstore_path;

        /* The certificate tree, as files ([tls] dir and --root resolved). */
        char *tls_cert;      /* the server certificate, both ports */
        char *tls_key;       /* its private key */
        char *tls_client_ca; /* push port: the client CA ... */
        char *tls_crl;       /* ... and its CRL */
        char *tls_server_ca;  /* the server CA and its CRL: published on */
        char *tls_server_crl; /* both ports at their distribution points */
        char *server_names[PROXY_MAX_SERVER_NAMES]; /* the Host sent upstream */
        unsigned n_server_names;

        ProxyPortConfig port[_PROXY_PORT_MAX];

        /* Push scopes by certificate CN ([scopes], common/scope.h): parsed
         * by the command line; n_clients == 0: every certificate pushes
         * anywhere. */
        ScopeTable scopes;

        /* [push] htpasswd: the file (NULL: no second factor) and its
         * entries, loaded by the command line (htpasswd_load()); the parent
         * reloads when the file's stamp changes. */
        char *htpasswd_path;
        Htpasswd htpasswd;

        ProxyTuning tuning; /* [proxy] */

        /* `regvisor gc` holds its maintenance window (common/config/
         * maintenance.h): every write on the push port is answered 503 with
         * Retry-After: push_retry_after, and never reaches the registry. */
        bool push_closed;
        unsigned push_retry_after; /* seconds */
} ProxyConfig;

/*
 * The reload callback: fills *ret with the configuration to run from now on
 * and returns 0; or returns a negative errno with *ret_refusal saying why
 * the running one stays (a file that does not load, restart-only keys
 * changed; caller frees; may stay NULL on OOM), *ret untouched. userdata is
 * what proxy_run() was given with it.
 */
typedef int (*ProxyReload)(void *userdata, ProxyConfig *ret, char **ret_refusal);

/* "pull" or "push". */
const char *proxy_port_name(ProxyPort p);

/* Frees everything *c owns; leaves it zeroed. NULL-safe. */
void proxy_config_done(ProxyConfig *c);

/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * regvisor's configuration: one INI file parsed with libinih. Every key has a
 * default so a minimal file names only [tls] server_names. Unknown sections
 * and keys are errors. See regvisor.conf in the repository for every key.
 */

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/types.h>

#include "cidr.h"
#include "proxy-tuning.h"

#define CONFIG_DEFAULT_PATH "/etc/regvisor/regvisor.conf"
#define CONFIG_MAX_SERVER_NAMES 32
#define CONFIG_MAX_CIDRS 32
/* [proxy] trusted_proxies: no entry wider than this (a balancer's network,
 * not the Internet); [status] allow_cidrs has no such floor. */
#define TRUSTED_PROXIES_MIN_PREFIX4 8
#define TRUSTED_PROXIES_MIN_PREFIX6 32

/* The [health] thresholds' defaults, here once: the key table's defaults and
 * health_options_default() are both made of these. */
#define CONFIG_HEALTH_STORAGE_WARN_PCT 20 /* free space below 20 %: WARNING */
#define CONFIG_HEALTH_STORAGE_CRIT_PCT 10 /* below 10 %: CRITICAL */
#define CONFIG_HEALTH_CERT_WARN_DAYS 30
#define CONFIG_HEALTH_CERT_CRIT_DAYS 7

typedef enum {
        LISTEN_UNIX, /* unix:PATH, container on --network=none */
        LISTEN_TCP,  /* tcp:127.0.0.1:PORT (or [::1]), loopback only */
} ListenKind;

typedef struct {
        ListenKind kind;
        char *path;    /* LISTEN_UNIX: absolute socket path */
        char *host;    /* LISTEN_TCP: "127.0.0.1" or "::1" */
        uint16_t port; /* LISTEN_TCP */
} UpstreamAddress;

/* [registry] storage: where the registry keeps blobs and manifests. */
typedef enum {
        STORAGE_FILESYSTEM, /* a local path, mounted into the container */
        STORAGE_SWIFT,      /* OpenStack Swift, [store] auth_url and container */
        STORAGE_S3,         /* S3 (Ceph RGW or any), [store] endpoint, region and bucket */
} StorageKind;

typedef enum {
        KEY_EC_P256,
        KEY_RSA_4096,
} KeyType;

/* [signing] mode: which signatures policy.json requires for this registry. */
typedef enum {
        SIGNING_GPG,      /* signedBy GPGKeys: simple signing, verified through gpgme */
        SIGNING_SIGSTORE, /* sigstoreSigned with sigstore_key */
} SigningMode;

/* [signing] store: where the signature extension keeps what clients push. */
typedef enum {
        SIGNATURES_LOCAL,    /* below /var/lib/regvisor/signatures, this host only */
        SIGNATURES_REGISTRY, /* in the registry, as OCI artifacts: follows its storage */
} SignatureStore;

/* A listening endpoint for the proxy: "443", "0.0.0.0:443", "[::]:443". */
typedef struct {
        char *host; /* NULL: all addresses (dual-stack) */
        uint16_t port;
} ListenAddress;

typedef struct {
        ListenAddress listen;
        double rate;          /* requests per second per IP; 0 = off */
        unsigned burst;       /* extra requests allowed at once */
        bool delay;           /* within the burst: delay to the rate (nginx limit_req
                               * without nodelay) instead of serving at once */
        unsigned conn_per_ip; /* 0 = off */
        Cidr allow_cidrs[CONFIG_MAX_CIDRS];
        unsigned n_allow_cidrs; /* 0 = everyone */
} PortConfig;

/* One [tls] server_names entry, decided once when the file is read: a DNS
 * name, or an IP literal with its bytes. Checks, SANs and authorities read
 * is_ip instead of looking at the text again. */
typedef struct {
        const char *name;    /* Config.server_names[i]: lower case, an IP literal canonical */
        bool is_ip;
        int family;          /* AF_INET or AF_INET6 when is_ip, else 0 */
        uint8_t address[16]; /* when is_ip; IPv4 in the first 4 bytes */
} ServerName;

typedef struct {
        /* [host] */
        char *service_user;
        char *proxy_user;
        uint32_t subid_start;
        uint32_t subid_count;

        /* [registry] */
        char *image;       /* NAME@sha256:HEX, always with a digest */
        char *image_digest; /* "sha256:HEX", a copy of the digest part */
        char *image_archive; /* NULL if unset */
        StorageKind storage_kind;
        char *storage;       /* STORAGE_FILESYSTEM: the path; NULL for a shared store */
        char *cache;         /* redis://ADDR:PORT: blob-descriptor cache; NULL: in memory */
        char *http_secret_file; /* the same file on every host; NULL: made by provision */
        UpstreamAddress listen;
        uint64_t memory_max; /* bytes */
        unsigned cpu_quota;  /* percent */

        /* [store]: a shared object store ([registry] storage = swift or s3) */
        char *store_auth_url;       /* swift: http(s)://IP[:PORT]/auth/v1.0 */
        unsigned store_auth_version; /* swift: 1, 2 or 3 */
        char *store_container;      /* swift */
        char *store_endpoint;       /* s3: http(s)://IP[:PORT] */
        char *store_region;         /* s3 */
        char *store_bucket;         /* s3 */
        char *store_credentials_file; /* root-only: username/password or access_key/secret_key */

        /* [tls] */
        char *tls_dir;
        char *server_names[CONFIG_MAX_SERVER_NAMES];
        ServerName servers[CONFIG_MAX_SERVER_NAMES]; /* the same names, parsed */
        unsigned n_server_names;
        KeyType key_type;
        unsigned ca_days;
        unsigned cert_days;
        char *organization;
        char *initial_client; /* NULL: provision issues no client certificate */

        /* [signing] */
        SigningMode signing_mode;
        char *signing_keys; /* gpg: the trusted signers' public keys; NULL: none yet */
        char *sigstore_key; /* sigstore: public key that signs images of this registry */
        SignatureStore signature_store;

        /* [pull], [push] */
        PortConfig pull;
        PortConfig push;
        /* [scopes]: "CN=PATTERN,...\n" per client (common/scope.h); NULL:
         * none, every valid push certificate pushes anywhere. */
        char *push_scopes;
        char *push_htpasswd; /* [push] htpasswd: a second factor; NULL: none */

        /* [proxy] */
        ProxyTuning proxy;

        /* [supervise], all in milliseconds */
        unsigned restart_delay_ms;     /* first restart delay, doubling */
        unsigned restart_delay_max_ms; /* ceiling of the doubling */
        unsigned restart_limit;        /* give up after this many failures ... */
        unsigned restart_window_ms;    /* ... within this window */
        unsigned healthy_reset_ms;     /* healthy this long: backoff starts over */
        unsigned probe_interval_ms;    /* GET /v2/ this often */
        unsigned probe_timeout_ms;     /* a probe that takes longer failed */
        unsigned unhealthy_after_ms;   /* probes failing this long: restart */
        unsigned stop_timeout_ms;      /* StopUnit job bound on shutdown */

        /* [health] */
        unsigned health_storage_warn_pct; /* free space below: WARNING */
        unsigned health_storage_crit_pct; /* below: CRITICAL */
        unsigned health_cert_warn_days;
        unsigned health_cert_crit_days;

        /* [gc] */
        unsigned gc_max_delete_share_pct; /* a dry run deleting more blobs than this share stops gc */
        unsigned gc_upload_max_age;       /* seconds: upload sessions untouched this long are purged */
        unsigned gc_drain_timeout;        /* seconds pushes in flight get to finish */

        /* [status] */
        ListenAddress status_listen;
        bool status_allow_remote;
        CidrList status_allow_cidrs; /* besides loopback; empty: allow_remote decides */

        /* [pki], all in seconds */
        unsigned pki_renew_before;    /* renew the server certificate and the CRLs this early */
        unsigned pki_check_interval;  /* `regvisor run` looks this often */
        unsigned pki_server_validity; /* 0: [tls] cert_days */
        unsigned pki_crl_validity;    /* 0: [tls] cert_days */
} Config;

/* The server certificate's and the CRLs' validity in seconds: [pki]
 * server_validity / crl_validity, or [tls] cert_days when those are 0. */
static inline unsigned config_server_validity(const Config *c) {
        return c->pki_server_validity ? c->pki_server_validity : c->cert_days * 86400U;
}
static inline unsigned config_crl_validity(const Config *c) {
        return c->pki_crl_validity ? c->pki_crl_validity : c->cert_days * 86400U;
}
/* How long before its end something of this validity is renewed:
 * renew_before, but at most half the validity, so that a short one (cert_days
 * = 1, a test's seconds) is not due again right after each renewal. */
static inline unsigned config_renew_margin(const Config *c, unsigned validity) {
        return c->pki_renew_before < validity / 2 ? c->pki_renew_before : validity / 2;
}

/* Whether the registry's storage is shared by several hosts (swift, s3):
 * then the registry needs the network (to the store and redis only), a
 * shared http secret, and gc cannot run on one host alone. */
static inline bool config_storage_is_shared(const Config *c) {
        return c->storage_kind != STORAGE_FILESYSTEM;
}

/* [registry] listen as the registry's API clients take it (sigreg_init(),
 * `regvisor sigstore --registry`): "unix:PATH", "IP:PORT", "[V6]:PORT".
 * Returns 0 or -ENAMETOOLONG. */
static inline int config_registry_address(const UpstreamAddress *a, char *buf, size_t size) {
        int n;

        if (a->kind == LISTEN_UNIX)
                n = snprintf(buf, size, "unix:%s", a->path);
        else
                n = snprintf(buf, size, strchr(a->host, ':') ? "[%s]:%u" : "%s:%u", a->host, (unsigned) a->port);
        return n < 0 || (size_t) n >= size ? -ENAMETOOLONG : 0;
}

/* The address of a URL that [store] auth_url, [store] endpoint or [registry]
 * cache accepted: "SCHEME://IP[:PORT][/...]", its canonical IP written to
 * ret_host (INET6_ADDRSTRLEN bytes) and its port (the scheme's default:
 * 80, 443, 6379 for redis). -EINVAL for anything else. */
int config_url_address(const char *url, char *ret_host, uint16_t *ret_port);

/* Fills *c with every default. Never fails except on OOM (-ENOMEM). */
int config_init_defaults(Config *c);

/* Parses the INI file at path into *c (which must hold defaults). On a bad
 * file returns a negative errno and, when ret_error is given, an allocated
 * message of the form "FILE:LINE: what was expected". -ENOENT if missing. */
int config_load(Config *c, const char *path, char **ret_error);

/* Same as config_load() for text already in memory; name is used in errors. */
int config_load_string(Config *c, const char *text, const char *name, char **ret_error);

/* Checks cross-key constraints after loading (server_names present, ...). */
int config_validate(const Config *c, const char *name, char **ret_error);

/* A client certificate's name ([tls] initial_client, regvisor pki): it
 * becomes a file name and the certificate's CN, so 1 to 64 of [a-z0-9._-],
 * starting with a letter or digit (no name reads as an option such as "-v"), and
 * not "ca" (clients/ca.crt is the client CA). */
bool config_client_name_valid(const char *name);

/* How a client names the registry on port: "NAME" or "[IPV6]" for 443,
 * else "NAME:PORT" or "[IPV6]:PORT" (a Host header, a certs.d directory, a
 * registries.d entry). Returns 0 and an allocated string, or -ENOMEM. */
int config_server_authority(const ServerName *s, uint16_t port, char **ret);

/* Frees everything owned by *c; leaves it zeroed. */
void config_done(Config *c);

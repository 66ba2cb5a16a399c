/* SPDX-License-Identifier: MIT */
/*
 * regvisor's configuration file.
 *
 * libinih reads the INI syntax; config_keys[] below maps every (section, key)
 * to a parser, the field of Config it fills and its default. The defaults go
 * through the same parsers as the file, so a default cannot be something the
 * file would refuse, and regvisor.conf is checked against them by a test.
 *
 * Why there is a reader of our own: libinih as Debian 12 ships it (r55) is
 * built without INI_HANDLER_LINENO, so the handler is never told the line,
 * and its 200-byte line buffer silently cuts a longer line in two (the tail
 * becomes a "line" of its own and every later line number is off by one).
 * So we hand it the text through ini_parse_stream() and a reader that counts
 * lines, refuses over-long ones and classifies each line the way inih is
 * about to read it (blank or comment, [section], key = value, or an indented
 * continuation of the previous key). The handler then knows the line it is
 * called for; unknown sections are refused at their header even when empty;
 * syntax errors stop the parse at once with the offending text quoted.
 *
 * Parsing is transactional: config_load*() parse into a copy of the caller's
 * Config and swap it in only when the whole file and the cross-key checks
 * passed, so a bad file leaves the previous configuration untouched.
 */

#include <arpa/inet.h>
#include <assert.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <ini.h>
#include <inttypes.h>
#include <limits.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "config.h"
#include "macro.h"
#include "scope.h"
#include "stop.h"
#include "sockaddr.h"

#define DEFAULT_DIGEST "sha256:8be26f81ffea54106bae012c6f349df70f4d5e7e2ec01b143c46e2c03b9e551d"
#define DEFAULT_IMAGE "docker.io/library/registry@" DEFAULT_DIGEST

/* A configuration file is a page of text; refuse anything that is not. */
#define CONFIG_MAX_SIZE (1024 * 1024)

/* Room for what a parser says it expected. */
#define WHY_MAX 256

#define KiB UINT64_C(1024)
#define MiB (KiB * 1024)
#define GiB (MiB * 1024)
#define TiB (GiB * 1024)

/* sizeof(sockaddr_un.sun_path): the path and its NUL must fit. */
#define UNIX_PATH_MAX sizeof(((struct sockaddr_un *)NULL)->sun_path)

typedef struct ConfigKey ConfigKey;

/* One call of a value parser. On -EINVAL the parser has written what it
 * expected into why (WHY_MAX bytes), phrased to follow "[section] key: ". */
typedef struct {
        const ConfigKey *key;
        const char *value;
        void *field;    /* (uint8_t *) config + key->offset */
        Config *config; /* for parsers that fill more than one field */
        bool append;    /* a continuation line of a list key */
        char *why;
} ParseCall;

typedef int (*ConfigParser)(const ParseCall *p);

enum {
        KEY_LIST = 1 << 0,      /* may continue on indented lines, each appending */
        PATH_OPTIONAL = 1 << 1, /* an empty value unsets the path (NULL) */
};

struct ConfigKey {
        const char *section;
        const char *key;
        ConfigParser parse;
        size_t offset;
        const char *default_value; /* parsed by config_init_defaults() */
        uint64_t min, max;         /* bounds of numbers, in the key's unit */
        unsigned flags;
};

/* offsetof() that fails to compile when the field is not of the type the
 * row's parser writes: the table is checked, not trusted. */
#define FIELD(member, type)                                                                                 \
        (offsetof(Config, member) +                                                                         \
         0 * sizeof(char[__builtin_types_compatible_p(__typeof__(((Config *)NULL)->member), type) ? 1       \
                                                                                                  : -1]))

static int parse_user(const ParseCall *p);
static int parse_subid_range(const ParseCall *p);
static int parse_image(const ParseCall *p);
static int parse_path(const ParseCall *p);
static int parse_upstream(const ParseCall *p);
static int parse_size(const ParseCall *p);
static int parse_percent(const ParseCall *p);
static int parse_server_names(const ParseCall *p);
static int parse_key_type(const ParseCall *p);
static int parse_signing_mode(const ParseCall *p);
static int parse_signature_store(const ParseCall *p);
static int parse_unsigned(const ParseCall *p);
static int parse_organization(const ParseCall *p);
static int parse_client_name(const ParseCall *p);
static int parse_listen(const ParseCall *p);
static int parse_rate(const ParseCall *p);
static int parse_cidrs(const ParseCall *p);
static int parse_cidr_list(const ParseCall *p);
static int parse_duration(const ParseCall *p);
static int parse_workers(const ParseCall *p);
static int parse_bool(const ParseCall *p);
static int parse_duration_ms(const ParseCall *p);
static int parse_power_of_two(const ParseCall *p);
static int parse_storage(const ParseCall *p);
static int parse_url(const ParseCall *p);
static int parse_store_name(const ParseCall *p);

/* Every key regvisor knows: section, key, parser, field, default, the
 * bounds of numbers (min, max) and flags. regvisor.conf documents each row,
 * in this order, with this default; the unit tests load it uncommented and
 * compare. */
/* The keys of one public port, [pull] or [push]: the same six, with the
 * port's own defaults for listen, rate and burst. */
#define PORT_KEYS(port, listen_default, rate_default, burst_default)                                        \
        {#port, "listen", parse_listen, FIELD(port.listen, ListenAddress), listen_default, 0, 0, 0},       \
        {#port, "rate", parse_rate, FIELD(port.rate, double), rate_default, 0, 1000000, 0},                 \
        {#port, "burst", parse_unsigned, FIELD(port.burst, unsigned), burst_default, 0, 1000000, 0},        \
        {#port, "delay", parse_bool, FIELD(port.delay, bool), "no", 0, 0, 0},                               \
        {#port, "conn_per_ip", parse_unsigned, FIELD(port.conn_per_ip, unsigned), "128", 0, 1000000, 0},    \
        {#port, "allow_cidrs", parse_cidrs, FIELD(port, PortConfig), "", 0, 0, KEY_LIST}

static const ConfigKey config_keys[] = {
        /* [host]: who runs what */
        {"host", "service_user", parse_user, FIELD(service_user, char *), "ci-svc", 0, 0, 0},
        {"host", "proxy_user", parse_user, FIELD(proxy_user, char *), "registry-proxy", 0, 0, 0},
        {"host", "subid_range", parse_subid_range, FIELD(subid_start, uint32_t), "100000-165535", 0, 0, 0},

        /* [registry]: the rootless Distribution container */
        {"registry", "image", parse_image, FIELD(image, char *), DEFAULT_IMAGE, 0, 0, 0},
        {"registry", "image_archive", parse_path, FIELD(image_archive, char *), "", 0, 0, PATH_OPTIONAL},
        {"registry", "storage", parse_storage, FIELD(storage, char *), "/var/lib/registry", 0, 0, 0},
        {"registry", "listen", parse_upstream, FIELD(listen, UpstreamAddress),
         "unix:/run/regvisor/registry/registry.sock", 0, 0, 0},
        /* At least 16M: a bare "1" meant 1G, not one byte. */
        {"registry", "memory_max", parse_size, FIELD(memory_max, uint64_t), "1G", 16 * MiB, UINT64_MAX, 0},
        /* Up to 100 CPUs' worth. */
        {"registry", "cpu_quota", parse_percent, FIELD(cpu_quota, unsigned), "100%", 1, 10000, 0},
        /* Several hosts on one store (INSTALL.md, "Several hosts"). */
        {"registry", "cache", parse_url, FIELD(cache, char *), "", 0, 0, PATH_OPTIONAL},
        {"registry", "http_secret_file", parse_path, FIELD(http_secret_file, char *), "", 0, 0, PATH_OPTIONAL},

        /* [store]: the shared object store of [registry] storage = swift or s3.
         * Addresses are IP literals: the registry's egress is allowed by
         * address (docs/ARCHITECTURE.md, "The registry's network"). */
        {"store", "auth_url", parse_url, FIELD(store_auth_url, char *), "", 0, 0, PATH_OPTIONAL},
        {"store", "auth_version", parse_unsigned, FIELD(store_auth_version, unsigned), "1", 1, 3, 0},
        {"store", "container", parse_store_name, FIELD(store_container, char *), "registry", 0, 0, 0},
        {"store", "endpoint", parse_url, FIELD(store_endpoint, char *), "", 0, 0, PATH_OPTIONAL},
        {"store", "region", parse_store_name, FIELD(store_region, char *), "us-east-1", 0, 0, 0},
        {"store", "bucket", parse_store_name, FIELD(store_bucket, char *), "registry", 0, 0, 0},
        {"store", "credentials_file", parse_path, FIELD(store_credentials_file, char *), "", 0, 0,
         PATH_OPTIONAL},

        /* [tls]: the registry's PKI */
        {"tls", "dir", parse_path, FIELD(tls_dir, char *), "/etc/registry/certs", 0, 0, 0},
        {"tls", "server_names", parse_server_names, FIELD(server_names, char *[CONFIG_MAX_SERVER_NAMES]), "",
         0, 0, KEY_LIST},
        {"tls", "key_type", parse_key_type, FIELD(key_type, KeyType), "ec-p256", 0, 0, 0},
        /* Up to 100 years: a bound that catches an extra digit, not a policy. */
        {"tls", "ca_days", parse_unsigned, FIELD(ca_days, unsigned), "3650", 1, 36500, 0},
        {"tls", "cert_days", parse_unsigned, FIELD(cert_days, unsigned), "365", 1, 36500, 0},
        {"tls", "organization", parse_organization, FIELD(organization, char *), "regvisor", 0, 0, 0},
        /* Empty: provision makes no push credential nobody asked for. */
        {"tls", "initial_client", parse_client_name, FIELD(initial_client, char *), "", 0, 0, 0},

        /* [signing]: what policy.json trusts for images of this registry.
         * gpg: what Debian 12's podman verifies (its sigstore is disabled). */
        {"signing", "mode", parse_signing_mode, FIELD(signing_mode, SigningMode), "gpg", 0, 0, 0},
        {"signing", "keys", parse_path, FIELD(signing_keys, char *), "", 0, 0, PATH_OPTIONAL},
        {"signing", "sigstore_key", parse_path, FIELD(sigstore_key, char *),
         "/etc/containers/keys/registry-cosign.pub", 0, 0, 0},
        /* Where pushed signatures live: registry makes them follow the
         * registry's storage to every host that serves it (issue 13). */
        {"signing", "store", parse_signature_store, FIELD(signature_store, SignatureStore), "local", 0, 0, 0},

        /* [pull], [push]: the two public ports. Not the guide's nginx.conf
         * values (burst 20 and 10, conn_per_ip 20, push delayed): those
         * refuse containerd's pull of a 30-layer image and slow a push to
         * 5 requests a second (issue 11; INSTALL.md, "Per-client limits"). */
        PORT_KEYS(pull, "443", "10r/s", "200"),
        PORT_KEYS(push, "4443", "20r/s", "500"),
        /* A second factor besides the certificate: Basic credentials,
         * bcrypt in an htpasswd file (proxy/htpasswd.h). */
        {"push", "htpasswd", parse_path, FIELD(push_htpasswd, char *), "", 0, 0, PATH_OPTIONAL},

        /* [proxy]: limits of the TLS proxy. 1M at least: "max_body = 2" meant 2G. */
        {"proxy", "max_body", parse_size, FIELD(proxy.max_body, uint64_t), "2G", 1 * MiB, UINT64_MAX, 0},
        {"proxy", "read_timeout", parse_duration, FIELD(proxy.read_timeout, unsigned), "300s", 1, 86400, 0},
        {"proxy", "header_timeout", parse_duration, FIELD(proxy.header_timeout, unsigned), "10s", 1, 3600, 0},
        {"proxy", "idle_timeout", parse_duration, FIELD(proxy.idle_timeout, unsigned), "60s", 1, 86400, 0},
        {"proxy", "workers", parse_workers, FIELD(proxy.workers, unsigned), "auto", 0, 1024, 0},
        /* Per-client limits: an IPv6 client is its prefix (/32 at the
         * widest: an ISP's whole allocation is no one client); the table's
         * size bounds its memory (proxy/ratelimit.h). */
        {"proxy", "ipv6_prefix", parse_unsigned, FIELD(proxy.ipv6_prefix, unsigned), "64", 32, 128, 0},
        {"proxy", "limits_slots", parse_power_of_two, FIELD(proxy.limits_slots, unsigned), "16384", 64, 1048576, 0},
        /* Per worker; auto: from RLIMIT_NOFILE (see proxy/worker-loop.c). */
        {"proxy", "max_connections", parse_workers, FIELD(proxy.max_connections, unsigned), "auto", 0, 1000000, 0},
        /* Slow bodies and slow readers: 0 turns the check off. */
        {"proxy", "min_rate", parse_size, FIELD(proxy.min_rate, uint64_t), "1K", 0, 1 * GiB, 0},
        {"proxy", "min_rate_window", parse_duration, FIELD(proxy.min_rate_window, unsigned), "30s", 1, 3600, 0},
        /* 1s at least, for tests; a ticket lives two lifetimes at most. */
        {"proxy", "ticket_key_lifetime", parse_duration, FIELD(proxy.ticket_key_lifetime, unsigned), "1h", 1, 86400, 0},
        /* While the registry restarts (an upgrade, a crash): how long a
         * GET/HEAD waits for it instead of a 503; 0: not at all. At most
         * a minute: a held connection is pinned that long. */
        {"proxy", "upstream_hold", parse_duration, FIELD(proxy.upstream_hold, unsigned), "10s", 0, 60, 0},
        /* Load balancers that send a PROXY v2 header (proxy/balancer.c):
         * empty, no one may. */
        {"proxy", "trusted_proxies", parse_cidr_list, FIELD(proxy.trusted_proxies, CidrList), "", 0, 0, KEY_LIST},

        /* [supervise]: how `regvisor run` keeps the registry up (milliseconds) */
        {"supervise", "restart_delay", parse_duration_ms, FIELD(restart_delay_ms, unsigned), "1s", 10,
         3600000, 0},
        {"supervise", "restart_delay_max", parse_duration_ms, FIELD(restart_delay_max_ms, unsigned), "30s", 10,
         3600000, 0},
        {"supervise", "restart_limit", parse_unsigned, FIELD(restart_limit, unsigned), "5", 1, 1000, 0},
        {"supervise", "restart_window", parse_duration_ms, FIELD(restart_window_ms, unsigned), "60s", 1000,
         86400000, 0},
        {"supervise", "healthy_reset", parse_duration_ms, FIELD(healthy_reset_ms, unsigned), "60s", 1000,
         86400000, 0},
        {"supervise", "probe_interval", parse_duration_ms, FIELD(probe_interval_ms, unsigned), "2s", 100,
         3600000, 0},
        {"supervise", "probe_timeout", parse_duration_ms, FIELD(probe_timeout_ms, unsigned), "2s", 100, 600000,
         0},
        {"supervise", "unhealthy_after", parse_duration_ms, FIELD(unhealthy_after_ms, unsigned), "10s", 100,
         3600000, 0},
        /* At most what units/regvisor.service's TimeoutStopSec leaves (stop.h). */
        {"supervise", "stop_timeout", parse_duration_ms, FIELD(stop_timeout_ms, unsigned), "30s", 1000,
         REGVISOR_STOP_TIMEOUT_MAX_SEC * 1000, 0},

        /* [health]: thresholds of `regvisor health` (and so of monitoring) */
        {"health", "storage_warn", parse_percent, FIELD(health_storage_warn_pct, unsigned),
         STRINGIFY(CONFIG_HEALTH_STORAGE_WARN_PCT) "%", 1, 99, 0},
        {"health", "storage_crit", parse_percent, FIELD(health_storage_crit_pct, unsigned),
         STRINGIFY(CONFIG_HEALTH_STORAGE_CRIT_PCT) "%", 1, 99, 0},
        {"health", "cert_warn_days", parse_unsigned, FIELD(health_cert_warn_days, unsigned),
         STRINGIFY(CONFIG_HEALTH_CERT_WARN_DAYS), 1, 3650, 0},
        {"health", "cert_crit_days", parse_unsigned, FIELD(health_cert_crit_days, unsigned),
         STRINGIFY(CONFIG_HEALTH_CERT_CRIT_DAYS), 1, 3650, 0},

        /* [gc]: `regvisor gc`, the safe garbage collection window */
        {"gc", "max_delete_share", parse_percent, FIELD(gc_max_delete_share_pct, unsigned), "50%", 0, 100, 0},
        {"gc", "upload_max_age", parse_duration, FIELD(gc_upload_max_age, unsigned), "24h", 60, 365 * 86400, 0},
        {"gc", "drain_timeout", parse_duration, FIELD(gc_drain_timeout, unsigned), "60s", 1, 3600, 0},

        /* [status]: the health endpoint */
        {"status", "listen", parse_listen, FIELD(status_listen, ListenAddress), "127.0.0.1:9443", 0, 0, 0},
        {"status", "allow_remote", parse_bool, FIELD(status_allow_remote, bool), "no", 0, 0, 0},
        /* Who besides loopback may connect (a balancer's /readyz check). */
        {"status", "allow_cidrs", parse_cidr_list, FIELD(status_allow_cidrs, CidrList), "", 0, 0, KEY_LIST},

        /* [pki]: what `regvisor run` renews by itself (the server
         * certificate and both CRLs), and when. A validity of 0 is [tls]
         * cert_days; seconds exist for tests, which cannot wait for days. */
        {"pki", "renew_before", parse_duration, FIELD(pki_renew_before, unsigned), "720h", 60, 3650U * 86400, 0},
        {"pki", "check_interval", parse_duration, FIELD(pki_check_interval, unsigned), "1h", 1, 86400, 0},
        {"pki", "server_validity", parse_duration, FIELD(pki_server_validity, unsigned), "0", 0,
         36500U * 86400, 0},
        {"pki", "crl_validity", parse_duration, FIELD(pki_crl_validity, unsigned), "0", 0, 36500U * 86400, 0},
};

#define N_KEYS ELEMENTSOF(config_keys)

/* Every string Config owns, besides server_names[]: config_done() frees
 * them and config_copy() duplicates them. A new char * field goes here. */
static const size_t config_strings[] = {
        offsetof(Config, service_user),
        offsetof(Config, proxy_user),
        offsetof(Config, image),
        offsetof(Config, image_digest),
        offsetof(Config, image_archive),
        offsetof(Config, storage),
        offsetof(Config, cache),
        offsetof(Config, http_secret_file),
        offsetof(Config, store_auth_url),
        offsetof(Config, store_container),
        offsetof(Config, store_endpoint),
        offsetof(Config, store_region),
        offsetof(Config, store_bucket),
        offsetof(Config, store_credentials_file),
        offsetof(Config, listen.path),
        offsetof(Config, listen.host),
        offsetof(Config, tls_dir),
        offsetof(Config, organization),
        offsetof(Config, initial_client),
        offsetof(Config, signing_keys),
        offsetof(Config, sigstore_key),
        offsetof(Config, pull.listen.host),
        offsetof(Config, push.listen.host),
        offsetof(Config, status_listen.host),
        offsetof(Config, push_scopes),
        offsetof(Config, push_htpasswd),
};

static inline bool isempty(const char *s) {
        return !s || !*s;
}

static inline bool strcaseeq(const char *a, const char *b) {
        return strcasecmp(a, b) == 0;
}

/* A copy of an error message with control characters written as \xNN: the
 * message quotes the file, and a log line must stay one line of text. */
static char *escape_controls(const char *s) {
        char *out = malloc(strlen(s) * 4 + 1), *q = out;

        if (!out)
                return NULL;
        for (; *s; s++) {
                unsigned char ch = (unsigned char)*s;
                if (ch < 0x20 || ch == 0x7f)
                        q += sprintf(q, "\\x%02x", ch);
                else
                        *q++ = (char)ch;
        }
        *q = 0;
        return out;
}

static char **config_string(Config *c, size_t offset) {
        return (char **)((uint8_t *)c + offset);
}

static void free_and_replace(char **p, char *v) {
        free(*p);
        *p = v;
}

/* ------------------------------------------------------------------------
 * Lifetime
 */

void config_done(Config *c) {
        if (!c)
                return;
        for (size_t i = 0; i < ELEMENTSOF(config_strings); i++)
                free(*config_string(c, config_strings[i]));
        for (unsigned i = 0; i < c->n_server_names; i++)
                free(c->server_names[i]);
        *c = (Config){};
}

/* Deep copy of *c into *ret (which is overwritten, not freed). */
static int config_copy(const Config *c, Config *ret) {
        _cleanup_(config_done) Config t = *c;

        /* t aliases c's strings: forget them, then duplicate one by one so
         * that config_done() on a half-made copy frees only its own. */
        for (size_t i = 0; i < ELEMENTSOF(config_strings); i++)
                *config_string(&t, config_strings[i]) = NULL;
        t.n_server_names = 0;
        memset(t.server_names, 0, sizeof(t.server_names));

        for (size_t i = 0; i < ELEMENTSOF(config_strings); i++) {
                const char *s = *config_string((Config *)c, config_strings[i]);
                if (!s)
                        continue;
                if (!(*config_string(&t, config_strings[i]) = strdup(s)))
                        return -ENOMEM;
        }
        for (unsigned i = 0; i < c->n_server_names; i++) {
                if (!(t.server_names[i] = strdup(c->server_names[i])))
                        return -ENOMEM;
                t.servers[i].name = t.server_names[i];
                t.n_server_names++;
        }

        *ret = t;
        t = (Config){};
        return 0;
}

static const ConfigKey *config_key_find(const char *section, const char *key) {
        for (size_t i = 0; i < N_KEYS; i++)
                if (streq(config_keys[i].section, section) && streq(config_keys[i].key, key))
                        return &config_keys[i];
        return NULL;
}

/* [scopes] has no fixed keys: each key is a client's name (parser_scope()). */
#define SCOPES_SECTION "scopes"

static bool config_section_known(const char *section, size_t len) {
        if (len == strlen(SCOPES_SECTION) && strneq(section, SCOPES_SECTION, len))
                return true;
        for (size_t i = 0; i < N_KEYS; i++)
                if (strlen(config_keys[i].section) == len && strneq(config_keys[i].section, section, len))
                        return true;
        return false;
}

static int config_parse_value(Config *c, const ConfigKey *k, const char *value, bool append, char *why) {
        ParseCall p = {
                .key = k,
                .value = value,
                .field = (uint8_t *)c + k->offset,
                .config = c,
                .append = append,
                .why = why,
        };
        why[0] = 0;
        return k->parse(&p);
}

int config_init_defaults(Config *c) {
        _cleanup_(config_done) Config t = {};
        char why[WHY_MAX];
        int r;

        assert(c);

        for (size_t i = 0; i < N_KEYS; i++) {
                r = config_parse_value(&t, &config_keys[i], config_keys[i].default_value, false, why);
                /* -EINVAL here is a bad row in config_keys[], not a user error. */
                assert(r != -EINVAL);
                if (r < 0)
                        return r;
        }

        *c = t;
        t = (Config){};
        return 0;
}

/* ------------------------------------------------------------------------
 * Small lexical helpers
 */

_printf_(2, 3) static int expected(const ParseCall *p, const char *fmt, ...) {
        va_list ap;

        va_start(ap, fmt);
        (void)vsnprintf(p->why, WHY_MAX, fmt, ap);
        va_end(ap);
        return -EINVAL;
}

/* Decimal digits only: no sign, no spaces, no base prefixes (strtoul()
 * would take " -1" and wrap it). *ret_end points after the last digit. */
static int parse_digits(const char *s, uint64_t *ret, const char **ret_end) {
        uint64_t v = 0;
        const char *q = s;

        if (!isdigit((unsigned char)*q))
                return -EINVAL;
        for (; isdigit((unsigned char)*q); q++) {
                unsigned d = (unsigned)(*q - '0');
                if (v > (UINT64_MAX - d) / 10)
                        return -ERANGE;
                v = v * 10 + d;
        }
        *ret = v;
        *ret_end = q;
        return 0;
}

/* The whole string as a decimal number. */
static int parse_number(const char *s, uint64_t *ret) {
        const char *end;
        uint64_t v;
        int r;

        r = parse_digits(s, &v, &end);
        if (r < 0)
                return r;
        if (*end)
                return -EINVAL;
        *ret = v;
        return 0;
}

static int parse_port(const char *s, uint16_t *ret) {
        uint64_t v;

        if (parse_number(s, &v) < 0 || v < 1 || v > 65535)
                return -EINVAL;
        *ret = (uint16_t)v;
        return 0;
}

/* A size as the parsers print it back: the largest unit that divides it. */
static void format_size(uint64_t v, char buf[static 32]) {
        static const struct {
                char suffix;
                uint64_t factor;
        } units[] = {{'T', TiB}, {'G', GiB}, {'M', MiB}, {'K', KiB}};

        for (size_t i = 0; i < ELEMENTSOF(units); i++)
                if (v >= units[i].factor && v % units[i].factor == 0) {
                        (void)snprintf(buf, 32, "%" PRIu64 "%c", v / units[i].factor, units[i].suffix);
                        return;
                }
        (void)snprintf(buf, 32, "%" PRIu64, v);
}

static void format_duration(uint64_t v, char buf[static 32]) {
        if (v >= 3600 && v % 3600 == 0)
                (void)snprintf(buf, 32, "%" PRIu64 "h", v / 3600);
        else if (v >= 60 && v % 60 == 0)
                (void)snprintf(buf, 32, "%" PRIu64 "m", v / 60);
        else
                (void)snprintf(buf, 32, "%" PRIu64 "s", v);
}

static void format_listen(const ListenAddress *a, char buf[static 64]) {
        if (!a->host)
                (void)snprintf(buf, 64, "%u", a->port);
        else if (strchr(a->host, ':'))
                (void)snprintf(buf, 64, "[%s]:%u", a->host, a->port);
        else
                (void)snprintf(buf, 64, "%s:%u", a->host, a->port);
}

/* Parses an IP literal (no brackets, no zone) into addr (16 bytes, IPv4 in
 * the first 4) and, when canonical is not NULL, writes its canonical text
 * there (INET6_ADDRSTRLEN bytes): "::1", "10.0.0.1". Returns the family, or
 * 0 when s is not an address. */
static int parse_ip(const char *s, uint8_t addr[static 16], char *canonical) {
        uint8_t a[16] = {};

        if (inet_pton(AF_INET, s, a) == 1) {
                memcpy(addr, a, 16);
                if (canonical)
                        (void)inet_ntop(AF_INET, a, canonical, INET6_ADDRSTRLEN);
                return AF_INET;
        }
        if (inet_pton(AF_INET6, s, a) == 1) {
                memcpy(addr, a, 16);
                if (canonical)
                        (void)inet_ntop(AF_INET6, a, canonical, INET6_ADDRSTRLEN);
                return AF_INET6;
        }
        return 0;
}

static bool ip_is_loopback(int family, const uint8_t addr[static 16]) {
        static const uint8_t v6_loopback[16] = {[15] = 1};

        if (family == AF_INET)
                return addr[0] == 127;
        return family == AF_INET6 && memcmp(addr, v6_loopback, 16) == 0;
}

/* Skips the separators at *s and returns the length of the token that
 * follows (0: none left). */
static size_t token_next(const char **s, const char *seps) {
        *s += strspn(*s, seps);
        return strcspn(*s, seps);
}

/* Splits a list value on commas and whitespace; empty items are skipped.
 * Returns the number of items, -E2BIG beyond max, -ENOMEM. */
static int split_list(const char *value, char **items, size_t max) {
        size_t n = 0;

        for (const char *s = value; *s;) {
                size_t len = token_next(&s, ", \t");

                if (len == 0)
                        break;
                if (n >= max) {
                        while (n > 0)
                                free(items[--n]);
                        return -E2BIG;
                }
                if (!(items[n] = strndup(s, len))) {
                        while (n > 0)
                                free(items[--n]);
                        return -ENOMEM;
                }
                n++;
                s += len;
        }
        return (int)n;
}

/* The items of a list key (p), of which max - have fit, what saying what
 * they are for the error ("names"). */
static int split_items(const ParseCall *p, char **items, unsigned max, unsigned have, const char *what) {
        int n = split_list(p->value, items, max - have);

        if (n == -E2BIG)
                return expected(p, "expected at most %u %s", max, what);
        return n;
}

/* ------------------------------------------------------------------------
 * Value parsers, in the order of config_keys[]
 */

/* The value, checked by the caller, copied into the field; an empty value
 * (where the key allows one) clears it. */
static int store_value(const ParseCall *p) {
        char *copy = NULL;

        if (!isempty(p->value) && !(copy = strdup(p->value)))
                return -ENOMEM;
        free_and_replace(p->field, copy);
        return 0;
}

/* Login names as useradd(8) takes them by default, minus root: the whole
 * point of both users is that neither is root. */
static int parse_user(const ParseCall *p) {
        const char *v = p->value;
        size_t len = strlen(v);

        if (len == 0 || len > 32 || !(islower((unsigned char)v[0]) || v[0] == '_') ||
            strspn(v, "abcdefghijklmnopqrstuvwxyz0123456789_-") != len)
                return expected(p, "expected a user name ([a-z_][a-z0-9_-]*, at most 32 characters)");
        if (streq(v, "root"))
                return expected(p, "expected an unprivileged user, not root");
        return store_value(p);
}

/* START-END, both inclusive, as usermod --add-subuids takes it. Never 0
 * (root) and never 4294967295 ((uid_t) -1, "no id" to chown()). */
static int parse_subid_range(const ParseCall *p) {
        const char *end;
        uint64_t start, last;

        if (parse_digits(p->value, &start, &end) < 0 || *end != '-' || parse_number(end + 1, &last) < 0 ||
            start < 100 || last > UINT32_MAX - 1 || last <= start)
                return expected(p, "expected START-END with 100 <= START < END <= 4294967294 "
                                   "(such as 100000-165535)");

        p->config->subid_start = (uint32_t)start;
        p->config->subid_count = (uint32_t)(last - start + 1);
        return 0;
}

/* [a-z0-9]+ joined by ".", "_", "__" or one or more "-": a path component of
 * the distribution reference grammar. Returns the length consumed (up to a
 * '/' or the end), or 0 when invalid. */
static size_t image_path_component(const char *s) {
        const char *q = s;

        for (;;) {
                size_t run = strspn(q, "abcdefghijklmnopqrstuvwxyz0123456789");
                if (run == 0)
                        return 0;
                q += run;
                if (*q == '.')
                        q++;
                else if (*q == '_')
                        q += q[1] == '_' ? 2 : 1;
                else if (*q == '-')
                        q += strspn(q, "-");
                else
                        return (size_t)(q - s);
        }
}

/* host[:port] where host is a DNS name ([a-zA-Z0-9] components, inner '-')
 * or [IPv6]. */
static bool image_domain_valid(const char *d, size_t len) {
        char buf[256], port[8];
        const char *colon;
        size_t host_len;

        if (len == 0 || len >= sizeof(buf))
                return false;
        memcpy(buf, d, len);
        buf[len] = 0;

        if (buf[0] == '[') {
                char *close = strchr(buf, ']');
                uint8_t a[16];

                if (!close)
                        return false;
                *close = 0;
                if (inet_pton(AF_INET6, buf + 1, a) != 1)
                        return false;
                colon = close[1] ? close + 1 : NULL;
                if (colon && *colon != ':')
                        return false;
        } else {
                colon = strchr(buf, ':');
                host_len = colon ? (size_t)(colon - buf) : len;
                if (host_len == 0)
                        return false;
                for (size_t i = 0; i < host_len;) {
                        size_t run = strspn(buf + i, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                                                     "0123456789-");
                        if (run == 0 || buf[i] == '-' || buf[i + run - 1] == '-')
                                return false;
                        i += run;
                        if (i < host_len && buf[i] != '.')
                                return false;
                        if (i < host_len && ++i == host_len)
                                return false; /* trailing dot */
                }
        }

        if (colon) {
                uint16_t pn;

                if (strlen(colon + 1) >= sizeof(port))
                        return false;
                strcpy(port, colon + 1);
                if (parse_port(port, &pn) < 0)
                        return false;
        }
        return true;
}

/* NAME[:TAG]@sha256:HEX per github.com/distribution/reference. The stored
 * image is NAME@sha256:HEX with NAME fully qualified as docker would read it
 * ("registry" is docker.io/library/registry), so podman never resolves a
 * short name through registries.conf; the tag is dropped because the digest
 * alone names the content (and containers/image, under podman, has long
 * refused references that carry both). */
/* Where the name of v (up to at) ends: before an optional :TAG after its
 * last '/'; NULL when that tag is not [A-Za-z0-9_][A-Za-z0-9_.-]{0,127}. */
static const char *image_name_end(const char *v, const char *at) {
        const char *slash = memrchr(v, '/', (size_t)(at - v));
        const char *from = slash ? slash : v;
        const char *colon = memchr(from, ':', (size_t)(at - from));
        size_t tag_len;

        if (!colon)
                return at;
        tag_len = (size_t)(at - colon - 1);
        if (tag_len == 0 || tag_len > 128 || !(isalnum((unsigned char)colon[1]) || colon[1] == '_'))
                return NULL;
        for (const char *t = colon + 1; t < at; t++)
                if (!(isalnum((unsigned char)*t) || strchr("_.-", *t)))
                        return NULL;
        return colon;
}

/* The domain of the name v..name_end: its first component when that looks
 * like one (a '.', a ':' (port) or "localhost", or uppercase, which paths
 * never have); *ret_domain NULL and *ret_len 0 when there is none. -EINVAL:
 * a domain that is not valid. */
static int image_domain(const char *v, const char *name_end, const char **ret_domain, size_t *ret_len) {
        const char *slash = memchr(v, '/', (size_t)(name_end - v));
        size_t len = slash ? (size_t)(slash - v) : 0;
        bool is_domain = slash && (memchr(v, '.', len) || memchr(v, ':', len) ||
                                   (len == 9 && strneq(v, "localhost", 9)));

        for (size_t i = 0; slash && i < len && !is_domain; i++)
                is_domain = isupper((unsigned char)v[i]);
        if (is_domain && !image_domain_valid(v, len))
                return -EINVAL;
        *ret_domain = is_domain ? v : NULL;
        *ret_len = is_domain ? len : 0;
        return 0;
}

/* remote..name_end is PATH: components joined by '/'. */
static bool image_path_valid(const char *remote, const char *name_end) {
        for (const char *q = remote;;) {
                size_t n = image_path_component(q);
                if (n == 0)
                        return false;
                q += n;
                if (q == name_end)
                        return true;
                if (*q != '/')
                        return false;
                q++;
        }
}

static int parse_image(const ParseCall *p) {
        const char *v = p->value, *at, *digest, *name_end, *remote;
        _cleanup_free_ char *image = NULL, *image_digest = NULL;
        const char *domain = NULL;
        size_t domain_len = 0, remote_len;
        const char *prefix;

        at = strchr(v, '@');
        if (!at)
                return expected(p, "image must be pinned by digest (NAME@sha256:...)");

        digest = at + 1;
        if (!strneq(digest, "sha256:", 7) || strlen(digest + 7) != 64 ||
            strspn(digest + 7, "0123456789abcdef") != 64)
                return expected(p, "expected NAME@sha256: and 64 lowercase hex digits");

        name_end = image_name_end(v, at);
        if (!name_end || image_domain(v, name_end, &domain, &domain_len) < 0)
                goto bad_name;
        remote = domain ? domain + domain_len + 1 : v;
        remote_len = (size_t)(name_end - remote);
        if (!image_path_valid(remote, name_end))
                goto bad_name;

        if (!domain || (domain_len == 15 && strneq(domain, "index.docker.io", 15))) {
                domain = "docker.io";
                domain_len = 9;
        }
        prefix = domain_len == 9 && strneq(domain, "docker.io", 9) && !memchr(remote, '/', remote_len)
                         ? "library/"
                         : "";

        if (domain_len + 1 + strlen(prefix) + remote_len > 255)
                return expected(p, "expected an image name of at most 255 characters");

        if (asprintf(&image, "%.*s/%s%.*s@%s", (int)domain_len, domain, prefix, (int)remote_len, remote,
                     digest) < 0) {
                image = NULL;
                return -ENOMEM;
        }
        if (!(image_digest = strdup(digest)))
                return -ENOMEM;

        free_and_replace(&p->config->image, TAKE_PTR(image));
        free_and_replace(&p->config->image_digest, TAKE_PTR(image_digest));
        return 0;

bad_name:
        return expected(p, "expected an image reference [DOMAIN[:PORT]/]PATH[:TAG]@sha256:HEX, "
                           "PATH of lowercase [a-z0-9] components joined by '.', '_', '__', '-' and '/'");
}

/* An absolute path, normalized ("//" and a trailing "/" dropped), made of
 * letters, digits and "/._-+@" only. No "." or ".." components: what we chown
 * or bind-mount is the path written, not one that climbs out of it. No ':',
 * ',' or spaces: paths end up in podman's -v SRC:DST:OPTS, oci-archive:PATH
 * and unit files, where those characters are separators. Not "/" itself. */
static int path_normalize(const char *v, size_t max, char **ret, const char **ret_why) {
        _cleanup_free_ char *out = NULL;
        size_t n = 0, len = strlen(v);

        if (v[0] != '/') {
                *ret_why = "an absolute path";
                return -EINVAL;
        }
        if (strspn(v, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789/._-+@") != len) {
                *ret_why = "a path of letters, digits and / . _ - + @ only";
                return -EINVAL;
        }
        if (!(out = malloc(len + 1)))
                return -ENOMEM;

        for (const char *s = v; *s;) {
                size_t c = token_next(&s, "/");

                if (c == 0)
                        break;
                if ((c == 1 && s[0] == '.') || (c == 2 && strneq(s, "..", 2))) {
                        *ret_why = "a path without '.' or '..' components";
                        return -EINVAL;
                }
                out[n++] = '/';
                memcpy(out + n, s, c);
                n += c;
                s += c;
        }
        if (n == 0) {
                *ret_why = "a path below /, not / itself";
                return -EINVAL;
        }
        out[n] = 0;
        if (n + 1 > max) {
                *ret_why = NULL; /* the caller words the limit */
                return -ENAMETOOLONG;
        }

        *ret = TAKE_PTR(out);
        return 0;
}

static int parse_path(const ParseCall *p) {
        const char *why = NULL;
        char *path;
        int r;

        if (isempty(p->value) && (p->key->flags & PATH_OPTIONAL)) {
                free_and_replace(p->field, NULL);
                return 0;
        }
        r = path_normalize(p->value, PATH_MAX, &path, &why);
        if (r == -ENAMETOOLONG)
                return expected(p, "expected a path shorter than %d bytes", PATH_MAX);
        if (r == -EINVAL)
                return expected(p, "expected %s%s", why,
                                (p->key->flags & PATH_OPTIONAL) ? " (or nothing, to leave it unset)" : "");
        if (r < 0)
                return r;

        free_and_replace(p->field, path);
        return 0;
}

/* Where the proxy reaches the registry. unix:PATH is the default: the
 * container then runs with --network=none and only processes that can open
 * the socket file reach it. tcp: is the guide's -p 127.0.0.1:5000:5000 and
 * is loopback only, because the registry itself has neither TLS nor
 * authentication: every byte of access control lives in the proxy. */
static int parse_upstream(const ParseCall *p) {
        UpstreamAddress *u = p->field;
        const char *v = p->value;

        if (strneq(v, "unix:", 5)) {
                const char *why = NULL;
                char *path;
                int r;

                r = path_normalize(v + 5, UNIX_PATH_MAX, &path, &why);
                if (r == -ENAMETOOLONG)
                        return expected(p, "expected a unix socket path shorter than %zu bytes",
                                        UNIX_PATH_MAX);
                if (r == -EINVAL)
                        return expected(p, "expected unix:PATH with %s", why);
                if (r < 0)
                        return r;

                free(u->path);
                free(u->host);
                *u = (UpstreamAddress){.kind = LISTEN_UNIX, .path = path};
                return 0;
        }

        if (strneq(v, "tcp:", 4)) {
                char host[INET6_ADDRSTRLEN + 2], canonical[INET6_ADDRSTRLEN];
                const char *h = v + 4, *colon;
                uint8_t addr[16];
                uint16_t port;
                size_t hl;
                char *copy;
                int family;

                colon = strrchr(h, ':');
                if (!colon || parse_port(colon + 1, &port) < 0)
                        return expected(
                                p, "expected tcp:127.0.0.1:PORT or tcp:[::1]:PORT, PORT from 1 to 65535");
                hl = (size_t)(colon - h);
                if (hl >= 2 && h[0] == '[' && h[hl - 1] == ']') {
                        h++;
                        hl -= 2;
                } else if (memchr(h, ':', hl))
                        return expected(p, "expected an IPv6 address in brackets: tcp:[::1]:PORT");
                if (hl >= sizeof(host))
                        goto not_loopback;
                memcpy(host, h, hl);
                host[hl] = 0;
                family = parse_ip(host, addr, canonical);
                if (family == 0 || !ip_is_loopback(family, addr) || (family == AF_INET6) != (h != v + 4))
                        goto not_loopback;

                if (!(copy = strdup(canonical)))
                        return -ENOMEM;
                free(u->path);
                free(u->host);
                *u = (UpstreamAddress){.kind = LISTEN_TCP, .host = copy, .port = port};
                return 0;

        not_loopback:
                return expected(p, "expected a loopback address (tcp:127.0.0.0/8:PORT or tcp:[::1]:PORT): "
                                   "the registry has no TLS or authentication of its own");
        }

        return expected(p, "expected unix:/ABSOLUTE/PATH or tcp:127.0.0.1:PORT");
}

/* [registry] storage: an absolute path (the filesystem driver), or the
 * name of a shared store whose details are in [store]. */
static int parse_storage(const ParseCall *p) {
        static const char *const kinds[] = {[STORAGE_SWIFT] = "swift", [STORAGE_S3] = "s3"};

        for (size_t i = STORAGE_SWIFT; i < ELEMENTSOF(kinds); i++)
                if (streq(p->value, kinds[i])) {
                        free_and_replace(p->field, NULL);
                        p->config->storage_kind = (StorageKind)i;
                        return 0;
                }
        if (p->value[0] != '/')
                return expected(p, "expected an absolute path, swift or s3");
        p->config->storage_kind = STORAGE_FILESYSTEM;
        return parse_path(p);
}

int config_url_address(const char *url, char *ret_host, uint16_t *ret_port) {
        static const struct {
                const char *scheme;
                uint16_t port;
        } schemes[] = {{"http://", 80}, {"https://", 443}, {"redis://", 6379}};
        char host[INET6_ADDRSTRLEN + 2];
        const char *h = NULL, *end, *colon = NULL;
        uint16_t port = 0;
        uint8_t addr[16];
        size_t hl;
        int family;

        for (size_t i = 0; i < ELEMENTSOF(schemes) && !h; i++)
                if (strneq(url, schemes[i].scheme, strlen(schemes[i].scheme))) {
                        h = url + strlen(schemes[i].scheme);
                        port = schemes[i].port;
                }
        if (!h)
                return -EINVAL;
        end = h + strcspn(h, "/");
        if (*h == '[') {
                const char *close = memchr(h, ']', (size_t)(end - h));
                if (!close)
                        return -EINVAL;
                if (close + 1 < end && close[1] != ':')
                        return -EINVAL;
                colon = close + 1 < end ? close + 1 : NULL;
                hl = (size_t)(close - h - 1);
                h++;
        } else {
                colon = memchr(h, ':', (size_t)(end - h));
                hl = (size_t)((colon ?: end) - h);
        }
        if (colon) {
                char portbuf[8];
                size_t pl = (size_t)(end - colon - 1);
                if (pl == 0 || pl >= sizeof portbuf)
                        return -EINVAL;
                memcpy(portbuf, colon + 1, pl);
                portbuf[pl] = 0;
                if (parse_port(portbuf, &port) < 0)
                        return -EINVAL;
        }
        if (hl == 0 || hl >= sizeof host)
                return -EINVAL;
        memcpy(host, h, hl);
        host[hl] = 0;
        family = parse_ip(host, addr, ret_host);
        if (family == 0 || (family == AF_INET6) != (h > url && h[-1] == '['))
                return -EINVAL;
        *ret_port = port;
        return 0;
}

/* [store] auth_url, endpoint: http(s)://IP[:PORT][/PATH]; [registry] cache:
 * redis://IP[:PORT]. An IP literal, not a name: the registry reaches these
 * addresses and no other (a name would need DNS, and could change under the
 * egress rules), and IPv4. Only characters that need no quoting in YAML. */
static int parse_url(const ParseCall *p) {
        bool redis = streq(p->key->key, "cache");
        char host[INET6_ADDRSTRLEN];
        uint16_t port;

        if (isempty(p->value))
                return store_value(p);
        if (strlen(p->value) > 1024 ||
            strspn(p->value, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789:/._-[]%~") !=
                    strlen(p->value) ||
            strneq(p->value, "redis://", 8) != redis || config_url_address(p->value, host, &port) < 0 ||
            (redis && strchr(p->value + 8, '/')))
                return expected(p, redis ? "expected redis://IP:PORT (an IP address, not a name), or nothing"
                                         : "expected http://IP[:PORT]/PATH or https://... (an IP address, not a "
                                           "name), or nothing");
        /* The registry's network (slirp4netns) runs without IPv6. */
        if (strchr(host, ':'))
                return expected(p, "expected an IPv4 address: the registry's network with a shared store has no "
                                   "IPv6 (yet)");
        return store_value(p);
}

/* [store] container, region, bucket: 1 to 63 of [A-Za-z0-9._-]. */
static int parse_store_name(const ParseCall *p) {
        size_t n = strlen(p->value);

        if (n == 0 || n > 63 ||
            strspn(p->value, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-") != n ||
            p->value[0] == '-' || p->value[0] == '.')
                return expected(p, "expected 1 to 63 of [A-Za-z0-9._-], not starting with '-' or '.'");
        return store_value(p);
}

/* Bytes, or K, M, G, T in powers of 1024 as systemd's MemoryMax= and
 * nginx's client_max_body_size read them. */
static int parse_size(const ParseCall *p) {
        uint64_t v, factor = 1, *field = p->field;
        char lo[32];
        const char *end;

        if (parse_digits(p->value, &v, &end) < 0)
                goto bad;
        switch (*end) {
        case 0:
                break;
        case 'K':
        case 'k':
                factor = KiB;
                break;
        case 'M':
        case 'm':
                factor = MiB;
                break;
        case 'G':
        case 'g':
                factor = GiB;
                break;
        case 'T':
        case 't':
                factor = TiB;
                break;
        default:
                goto bad;
        }
        if (*end && end[1])
                goto bad;
        if (v > UINT64_MAX / factor || v * factor < p->key->min || v * factor > p->key->max)
                goto bad;

        *field = v * factor;
        return 0;

bad:
        format_size(p->key->min, lo);
        return expected(
                p, "expected a size of at least %s in bytes or with a K, M, G or T suffix (1024-based)", lo);
}

/* "N%" of one CPU, as systemd's CPUQuota=; a bare N is read the same. */
static int parse_percent(const ParseCall *p) {
        unsigned *field = p->field;
        const char *end;
        uint64_t v;

        if (parse_digits(p->value, &v, &end) < 0 || !(*end == 0 || streq(end, "%")) || v < p->key->min ||
            v > p->key->max)
                return expected(p,
                                "expected N%% of one CPU, from %" PRIu64 "%% to %" PRIu64
                                "%% (200%% is two CPUs)",
                                p->key->min, p->key->max);
        *field = (unsigned)v;
        return 0;
}

/* A DNS name as a certificate's dNSName holds it: LDH labels of 1 to 63
 * characters, no '-' at either end, 253 characters at most, no trailing dot
 * and a last label that is not all digits (so "192.0.2.300" is a typo, not a
 * host name). Lowercase already. */
static bool dns_name_valid(const char *s) {
        size_t len = strlen(s);
        const char *label = s;

        if (len == 0 || len > 253)
                return false;
        for (;;) {
                size_t l = strspn(label, "abcdefghijklmnopqrstuvwxyz0123456789-");
                if (l == 0 || l > 63 || label[0] == '-' || label[l - 1] == '-')
                        return false;
                if (label[l] == 0)
                        return strspn(label, "0123456789") != l;
                if (label[l] != '.')
                        return false;
                label += l + 1;
        }
}

/* The names clients use to reach the registry, for the server certificate's
 * subjectAltName: DNS names and IP literals, stored lowercase and canonical
 * (IPv6 compressed) so that duplicates are found whatever their spelling. */
/* One name of server_names, *item (lowercased; replaced by its canonical
 * form: "[V6]" and IP addresses): a DNS name or an IP address, never a
 * wildcard. 0, or what expected() returns, or -ENOMEM. */
static int server_name_parse(const ParseCall *p, char **item, ServerName *ret) {
        char canonical[INET6_ADDRSTRLEN], *name = *item;
        size_t len = strlen(name);
        uint8_t addr[16];

        for (char *q = name; *q; q++)
                *q = (char)tolower((unsigned char)*q);
        if (len > 2 && name[0] == '[' && name[len - 1] == ']') {
                char *inner = strndup(name + 1, len - 2);
                if (!inner)
                        return -ENOMEM;
                free_and_replace(item, inner);
                name = inner;
                if (parse_ip(name, addr, canonical) != AF_INET6)
                        return expected(p, "expected an IPv6 address inside [ ], not '%s'", name);
        }
        if (strchr(name, '*'))
                return expected(p, "expected no wildcard names: '%s' (list every name)", name);
        ret->family = parse_ip(name, addr, canonical);
        if (!ret->family) {
                if (!dns_name_valid(name))
                        return expected(p,
                                        "expected DNS names (letters, digits, '-' and '.') or IP addresses, "
                                        "'%s' is neither",
                                        name);
                return 0;
        }
        ret->is_ip = true;
        memcpy(ret->address, addr, sizeof(ret->address));
        if (!streq(name, canonical)) {
                char *copy = strdup(canonical);
                if (!copy)
                        return -ENOMEM;
                free_and_replace(item, copy);
        }
        return 0;
}

static int parse_server_names(const ParseCall *p) {
        Config *c = p->config;
        char *items[CONFIG_MAX_SERVER_NAMES] = {};
        ServerName parsed[CONFIG_MAX_SERVER_NAMES] = {};
        unsigned have = p->append ? c->n_server_names : 0;
        int n, r = 0;

        n = split_items(p, items, CONFIG_MAX_SERVER_NAMES, have, "names");
        if (n < 0)
                return n;

        for (int i = 0; i < n && r == 0; i++) {
                const char *name;

                r = server_name_parse(p, &items[i], &parsed[i]);
                if (r < 0)
                        break;
                name = items[i];
                for (unsigned j = 0; j < have; j++)
                        if (streq(c->server_names[j], name))
                                r = expected(p, "expected every name once, '%s' is listed twice", name);
                for (int j = 0; j < i && r == 0; j++)
                        if (streq(items[j], name))
                                r = expected(p, "expected every name once, '%s' is listed twice", name);
        }
        if (r < 0) {
                for (int i = 0; i < n; i++)
                        free(items[i]);
                return r;
        }

        if (!p->append) {
                for (unsigned i = 0; i < c->n_server_names; i++)
                        free(c->server_names[i]);
                memset(c->server_names, 0, sizeof(c->server_names));
                memset(c->servers, 0, sizeof(c->servers));
                c->n_server_names = 0;
        }
        for (int i = 0; i < n; i++) {
                parsed[i].name = items[i];
                c->servers[c->n_server_names] = parsed[i];
                c->server_names[c->n_server_names++] = items[i];
        }
        return 0;
}

/* One of two words, any case: *(int *)p->field = its index in names (the
 * enum's two values in order); else "expected A or B". */
static int parse_choice(const ParseCall *p, const char *const *names, size_t n) {
        int *field = p->field;

        assert(n == 2);
        for (size_t i = 0; i < n; i++)
                if (strcaseeq(p->value, names[i])) {
                        *field = (int)i;
                        return 0;
                }
        return expected(p, "expected %s or %s", names[0], names[1]);
}

static int parse_key_type(const ParseCall *p) {
        static const char *const names[] = {[KEY_EC_P256] = "ec-p256", [KEY_RSA_4096] = "rsa-4096"};

        return parse_choice(p, names, ELEMENTSOF(names));
}

static int parse_signing_mode(const ParseCall *p) {
        static const char *const names[] = {[SIGNING_GPG] = "gpg", [SIGNING_SIGSTORE] = "sigstore"};

        return parse_choice(p, names, ELEMENTSOF(names));
}

static int parse_signature_store(const ParseCall *p) {
        static const char *const names[] = {[SIGNATURES_LOCAL] = "local", [SIGNATURES_REGISTRY] = "registry"};

        return parse_choice(p, names, ELEMENTSOF(names));
}

static int parse_unsigned(const ParseCall *p) {
        unsigned *field = p->field;
        uint64_t v;

        if (parse_number(p->value, &v) < 0 || v < p->key->min || v > p->key->max)
                return expected(p, "expected a whole number from %" PRIu64 " to %" PRIu64, p->key->min,
                                p->key->max);
        *field = (unsigned)v;
        return 0;
}

/* A whole number in bounds that is a power of two (a hash table's size). */
static int parse_power_of_two(const ParseCall *p) {
        unsigned *field = p->field;
        uint64_t v;

        if (parse_number(p->value, &v) < 0 || v < p->key->min || v > p->key->max || (v & (v - 1)) != 0)
                return expected(p, "expected a power of two from %" PRIu64 " to %" PRIu64, p->key->min,
                                p->key->max);
        *field = (unsigned)v;
        return 0;
}

/* The O= of every certificate regvisor issues. Printable ASCII keeps the
 * subject readable by every tool; 64 is X.520's ub-organization-name. */
static int parse_organization(const ParseCall *p) {
        size_t len = strlen(p->value);

        if (len == 0 || len > 64)
                goto bad;
        for (const char *q = p->value; *q; q++)
                if (*q < 0x20 || *q > 0x7e)
                        goto bad;

        return store_value(p);

bad:
        return expected(p, "expected 1 to 64 printable ASCII characters");
}

bool config_client_name_valid(const char *n) {
        size_t len = n ? strlen(n) : 0;

        return len > 0 && len <= 64 && strspn(n, "abcdefghijklmnopqrstuvwxyz0123456789-_.") == len &&
               strchr("abcdefghijklmnopqrstuvwxyz0123456789", n[0]) && !streq(n, "ca");
}

/* [tls] initial_client: a client name, or nothing for none. */
static int parse_client_name(const ParseCall *p) {
        if (isempty(p->value))
                return store_value(p);
        if (!config_client_name_valid(p->value))
                return expected(p, "expected a client name: 1 to 64 of [a-z0-9._-], starting with a letter or digit, "
                                   "not 'ca' (or nothing, for no initial client certificate)");
        return store_value(p);
}

/* "PORT" (every address, dual-stack), "IPV4:PORT" or "[IPV6]:PORT". IP
 * literals only: a listening socket binds an address, never a name. */
static int parse_listen_address(const char *v, ListenAddress *ret) {
        char canonical[INET6_ADDRSTRLEN];
        SocketAddress sa;
        uint16_t port;
        char *copy;

        if (strneq(v, "unix:", 5) || sockaddr_parse(v, &sa) < 0)
                return -EINVAL;
        port = ntohs(sa.sa.sa_family == AF_INET ? sa.in.sin_port : sa.in6.sin6_port);
        if (!strchr(v, ':')) { /* "PORT" */
                *ret = (ListenAddress){.port = port};
                return 0;
        }
        if (sockaddr_ip_text(&sa, canonical) < 0)
                return -EINVAL;
        if (!(copy = strdup(canonical)))
                return -ENOMEM;
        *ret = (ListenAddress){.host = copy, .port = port};
        return 0;
}

static int parse_listen(const ParseCall *p) {
        ListenAddress *field = p->field, a;
        int r;

        r = parse_listen_address(p->value, &a);
        if (r == -EINVAL)
                return expected(p, "expected PORT, IPV4:PORT or [IPV6]:PORT, PORT from 1 to 65535");
        if (r < 0)
                return r;
        free(field->host);
        *field = a;
        return 0;
}

/* Requests per second and client address, nginx style: "10r/s", "600r/m"
 * (the 'r' may be left out); "off" or 0 turns the limit off. */
static int parse_rate(const ParseCall *p) {
        double *field = p->field;
        const char *end;
        uint64_t v;

        if (strcaseeq(p->value, "off") || streq(p->value, "0")) {
                *field = 0;
                return 0;
        }
        if (parse_digits(p->value, &v, &end) < 0 || v < 1 || v > p->key->max)
                goto bad;
        if (*end == 'r')
                end++;
        if (streq(end, "/s"))
                *field = (double)v;
        else if (streq(end, "/m"))
                *field = (double)v / 60.0;
        else
                goto bad;
        return 0;

bad:
        return expected(p, "expected N/s or N/m (such as 10r/s or 600r/m, N from 1 to %" PRIu64 ") or off",
                        p->key->max);
}

/* Networks allowed to connect: "10.0.0.0/8, 2001:db8::/32 192.0.2.7". A bare
 * address is a /32 or /128; host bits are masked off (10.1.2.3/8 is
 * 10.0.0.0/8), as the firewall would read it; an IPv4-mapped network is
 * its IPv4 one (cidr_unmap()). */
static int cidrs_parse(const ParseCall *p, Cidr *list, unsigned *n_list) {
        char *items[CONFIG_MAX_CIDRS] = {};
        Cidr parsed[CONFIG_MAX_CIDRS];
        unsigned have = p->append ? *n_list : 0;
        int n, r = 0;

        n = split_items(p, items, CONFIG_MAX_CIDRS, have, "networks");
        if (n < 0)
                return n;

        for (int i = 0; i < n; i++) {
                Cidr *cidr = &parsed[i];
                char *slash = strchr(items[i], '/');
                uint64_t prefix = 0;
                unsigned bits;

                if (slash)
                        *slash = 0;
                *cidr = (Cidr){};
                cidr->family = parse_ip(items[i], cidr->addr, NULL);
                bits = cidr->family == AF_INET ? 32 : 128;
                if (cidr->family == 0 ||
                    (slash && (parse_number(slash + 1, &prefix) < 0 || prefix > bits))) {
                        if (slash)
                                *slash = '/';
                        r = expected(p,
                                     "expected ADDRESS[/PREFIX] (such as 10.0.0.0/8 or 2001:db8::/32), "
                                     "not '%s'",
                                     items[i]);
                        break;
                }
                cidr->prefix = slash ? (unsigned)prefix : bits;
                for (unsigned b = cidr->prefix; b < bits; b++)
                        cidr->addr[b / 8] &= (uint8_t) ~(0x80u >> (b % 8));
                cidr_unmap(cidr); /* ::ffff:10.0.0.1 is how 10.0.0.1 may arrive, and is it */
        }
        for (int i = 0; i < n; i++)
                free(items[i]);
        if (r < 0)
                return r;

        if (!p->append) {
                memset(list, 0, CONFIG_MAX_CIDRS * sizeof(Cidr));
                *n_list = 0;
        }
        memcpy(list + *n_list, parsed, (size_t)n * sizeof(Cidr));
        *n_list += (unsigned)n;
        return 0;
}

static int parse_cidrs(const ParseCall *p) {
        PortConfig *pc = p->field;

        return cidrs_parse(p, pc->allow_cidrs, &pc->n_allow_cidrs);
}

_Static_assert(CIDR_LIST_MAX == CONFIG_MAX_CIDRS, "a CidrList holds what cidrs_parse() parses");

static int parse_cidr_list(const ParseCall *p) {
        CidrList *l = p->field;

        return cidrs_parse(p, l->cidr, &l->n);
}

/* Seconds, or with an s, m or h suffix: "300s", "5m", "1h". */
/* A duration in milliseconds from "N" (seconds), "Nms", "Ns", "Nm" or "Nh";
 * "ms" only when allow_ms. -EINVAL when malformed or beyond uint64. */
static int duration_to_ms(const char *value, bool allow_ms, uint64_t *ret_ms) {
        static const struct {
                const char *suffix;
                uint64_t ms;
        } units[] = {{"", 1000}, {"s", 1000}, {"m", 60000}, {"h", 3600000}, {"ms", 1}};
        const char *end;
        uint64_t v;

        if (parse_digits(value, &v, &end) < 0)
                return -EINVAL;
        for (size_t i = 0; i < ELEMENTSOF(units); i++) {
                if (!streq(end, units[i].suffix) || (units[i].ms == 1 && !allow_ms))
                        continue;
                if (v > UINT64_MAX / units[i].ms)
                        return -EINVAL;
                *ret_ms = v * units[i].ms;
                return 0;
        }
        return -EINVAL;
}

/* Durations of the proxy, kept in seconds. */
static int parse_duration(const ParseCall *p) {
        unsigned *field = p->field;
        char lo[32], hi[32];
        uint64_t ms;

        if (duration_to_ms(p->value, false, &ms) == 0 && ms % 1000 == 0 && ms / 1000 >= p->key->min &&
            ms / 1000 <= p->key->max) {
                *field = (unsigned)(ms / 1000);
                return 0;
        }
        format_duration(p->key->min, lo);
        format_duration(p->key->max, hi);
        return expected(p,
                        "expected a duration from %s to %s in seconds or with an s, m or h suffix "
                        "(such as 300s or 5m)",
                        lo, hi);
}

/* Durations for the supervisor, kept in milliseconds: "200ms", "1s",
 * "5m", "1h", or a plain number of seconds. */
static int parse_duration_ms(const ParseCall *p) {
        unsigned *field = p->field;
        uint64_t ms;

        if (duration_to_ms(p->value, true, &ms) == 0 && ms >= p->key->min && ms <= p->key->max) {
                *field = (unsigned)ms;
                return 0;
        }
        return expected(p,
                        "expected a duration from %" PRIu64 "ms to %" PRIu64
                        "s, in seconds or with an ms, s, m or h suffix (such as 500ms or 2s)",
                        p->key->min, p->key->max / 1000);
}

static int parse_workers(const ParseCall *p) {
        unsigned *field = p->field;
        uint64_t v;

        if (strcaseeq(p->value, "auto")) {
                *field = 0;
                return 0;
        }
        if (parse_number(p->value, &v) < 0 || v > p->key->max)
                return expected(p, "expected auto (%s) or a number from 1 to %" PRIu64,
                                streq(p->key->key, "workers") ? "one per CPU" : "from the open-files limit",
                                p->key->max);
        *field = (unsigned)v;
        return 0;
}

static int parse_bool(const ParseCall *p) {
        static const char *const yes[] = {"yes", "true", "on", "1"}, *const no[] = {"no", "false", "off",
                                                                                    "0"};
        bool *field = p->field;

        for (size_t i = 0; i < ELEMENTSOF(yes); i++) {
                if (strcaseeq(p->value, yes[i])) {
                        *field = true;
                        return 0;
                }
                if (strcaseeq(p->value, no[i])) {
                        *field = false;
                        return 0;
                }
        }
        return expected(p, "expected yes, no, true, false, on, off, 1 or 0");
}

/* ------------------------------------------------------------------------
 * Cross-key checks, shared by config_load*() (with line numbers, on the
 * merged result, so a file cannot leave an inconsistent configuration
 * behind) and config_validate() (without).
 */

typedef struct {
        const char *name;      /* file name for messages */
        const unsigned *lines; /* where each key was set in this file, or NULL */
        char **ret_error;
} CheckContext;

static size_t key_index(const char *section, const char *key) {
        const ConfigKey *k = config_key_find(section, key);
        assert(k);
        return (size_t)(k - config_keys);
}

/* Reports a constraint between two keys at the later of the lines that set
 * them in this file, or at the file alone when this file set neither. */
_printf_(4, 5) static int check_fail(const CheckContext *x, size_t a, size_t b, const char *fmt, ...) {
        _cleanup_free_ char *msg = NULL;
        unsigned line = 0;
        va_list ap;
        int r;

        if (x->lines)
                line = x->lines[a] > x->lines[b] ? x->lines[a] : x->lines[b];

        va_start(ap, fmt);
        r = vasprintf(&msg, fmt, ap);
        va_end(ap);
        if (r < 0) {
                msg = NULL; /* undefined after a failed vasprintf() */
                return -ENOMEM;
        }

        if (x->ret_error) {
                _cleanup_free_ char *full = NULL;

                if (line > 0)
                        r = asprintf(&full, "%s:%u: %s", x->name, line, msg);
                else
                        r = asprintf(&full, "%s: %s", x->name, msg);
                if (r < 0) {
                        full = NULL; /* undefined after a failed asprintf() */
                        return -ENOMEM;
                }
                if (!(*x->ret_error = escape_controls(full)))
                        return -ENOMEM;
        }
        return -EINVAL;
}

typedef struct {
        const char *what;
        size_t key;
        ListenAddress addr;
} Endpoint;

static bool host_is_any(const char *h, bool v6) {
        return !h || streq(h, v6 ? "::" : "0.0.0.0");
}

/* Whether two sockets could not both bind: the same port on the same
 * address, or on a wildcard that covers the other (:: and a bare port are
 * dual-stack, 0.0.0.0 covers IPv4 only). */
static bool endpoints_clash(const ListenAddress *a, const ListenAddress *b) {
        bool a6, b6;

        if (a->port != b->port)
                return false;
        if (!a->host || !b->host || streq(a->host, b->host))
                return true;
        a6 = strchr(a->host, ':');
        b6 = strchr(b->host, ':');
        if (host_is_any(a->host, true) || host_is_any(b->host, true))
                return true;
        if (a6 == b6 && (host_is_any(a->host, a6) || host_is_any(b->host, b6)))
                return true;
        return false;
}

static int config_check(const Config *c, const CheckContext *x) {
        size_t service_user = key_index("host", "service_user"),
               proxy_user = key_index("host", "proxy_user");
        size_t ca_days = key_index("tls", "ca_days"), cert_days = key_index("tls", "cert_days");
        size_t status_listen = key_index("status", "listen"),
               allow_remote = key_index("status", "allow_remote");
        char buf[64];

        if (c->service_user && c->proxy_user && streq(c->service_user, c->proxy_user))
                return check_fail(
                        x, service_user, proxy_user,
                        "[host] service_user and proxy_user: expected two different users, got '%s' "
                        "for both (the proxy must not be able to touch the registry's storage)",
                        c->proxy_user);

        if (c->health_storage_crit_pct > c->health_storage_warn_pct)
                return check_fail(x, key_index("health", "storage_warn"), key_index("health", "storage_crit"),
                                  "[health] storage_crit: expected at most storage_warn (%u%%): critical is "
                                  "the lower free-space mark, got '%u%%'",
                                  c->health_storage_warn_pct, c->health_storage_crit_pct);
        if (c->health_cert_crit_days > c->health_cert_warn_days)
                return check_fail(x, key_index("health", "cert_warn_days"), key_index("health", "cert_crit_days"),
                                  "[health] cert_crit_days: expected at most cert_warn_days (%u), got '%u'",
                                  c->health_cert_warn_days, c->health_cert_crit_days);

        if (c->cert_days > c->ca_days)
                return check_fail(x, ca_days, cert_days,
                                  "[tls] cert_days: expected at most ca_days (%u): a certificate must not "
                                  "outlive its CA, got '%u'",
                                  c->ca_days, c->cert_days);

        /* Anything at a trusted address names any client it likes: a wide
         * network is a mistake, never a balancer. Each entry on its own,
         * so that 0.0.0.0/1 and 128.0.0.0/1 do not add up to /0. */
        for (unsigned i = 0; i < c->proxy.trusted_proxies.n; i++) {
                const Cidr *t = &c->proxy.trusted_proxies.cidr[i];
                unsigned shortest = t->family == AF_INET ? TRUSTED_PROXIES_MIN_PREFIX4 : TRUSTED_PROXIES_MIN_PREFIX6;

                if (t->prefix < shortest) {
                        size_t k = key_index("proxy", "trusted_proxies");
                        char net[CIDR_STRLEN];

                        cidr_format(t, net);
                        return check_fail(x, k, k,
                                          "[proxy] trusted_proxies: expected the load balancers' addresses "
                                          "(networks of /%u or longer for IPv4, /%u or longer for IPv6), got "
                                          "'%s' (every address in it could claim any client address)",
                                          TRUSTED_PROXIES_MIN_PREFIX4, TRUSTED_PROXIES_MIN_PREFIX6, net);
                }
        }

        if (!c->status_allow_remote && c->status_allow_cidrs.n == 0) {
                uint8_t addr[16];
                int family = c->status_listen.host ? parse_ip(c->status_listen.host, addr, NULL) : 0;

                if (family == 0 || !ip_is_loopback(family, addr)) {
                        format_listen(&c->status_listen, buf);
                        return check_fail(x, status_listen, allow_remote,
                                          "[status] listen: expected a loopback address (127.0.0.1:PORT or "
                                          "[::1]:PORT) unless [status] allow_remote = yes or allow_cidrs "
                                          "is set, got '%s'",
                                          buf);
                }
        }

        if (config_storage_is_shared(c)) {
                size_t storage = key_index("registry", "storage");
                const char *kind = c->storage_kind == STORAGE_SWIFT ? "swift" : "s3";

                if (!c->http_secret_file)
                        return check_fail(x, storage, key_index("registry", "http_secret_file"),
                                          "[registry] storage = %s: expected [registry] http_secret_file, the "
                                          "same secret file on every host (an upload started on one host is "
                                          "finished on another)",
                                          kind);
                if (!c->store_credentials_file)
                        return check_fail(x, storage, key_index("store", "credentials_file"),
                                          "[registry] storage = %s: expected [store] credentials_file (a "
                                          "root-only file with the store's credentials)",
                                          kind);
                if (c->storage_kind == STORAGE_SWIFT && !c->store_auth_url)
                        return check_fail(x, storage, key_index("store", "auth_url"),
                                          "[registry] storage = swift: expected [store] auth_url");
                if (c->storage_kind == STORAGE_S3 && !c->store_endpoint)
                        return check_fail(x, storage, key_index("store", "endpoint"),
                                          "[registry] storage = s3: expected [store] endpoint");
                /* Signatures kept on one host would not be served by the
                 * others: pulls through them would fail verification. */
                if (c->signing_mode == SIGNING_GPG && c->signature_store != SIGNATURES_REGISTRY)
                        return check_fail(x, storage, key_index("signing", "store"),
                                          "[registry] storage = %s: expected [signing] store = registry (a "
                                          "signature pushed through one host must be served by every host)",
                                          kind);
        }

        Endpoint e[] = {
                {"[pull] listen", key_index("pull", "listen"), c->pull.listen},
                {"[push] listen", key_index("push", "listen"), c->push.listen},
                {"[status] listen", status_listen, c->status_listen},
                {"[registry] listen",
                 key_index("registry", "listen"),
                 {.host = c->listen.host, .port = c->listen.port}},
        };
        size_t n_e = c->listen.kind == LISTEN_TCP ? ELEMENTSOF(e) : ELEMENTSOF(e) - 1;
        for (size_t i = 0; i < n_e; i++)
                for (size_t j = i + 1; j < n_e; j++)
                        if (endpoints_clash(&e[i].addr, &e[j].addr)) {
                                char other[64];
                                format_listen(&e[i].addr, buf);
                                format_listen(&e[j].addr, other);
                                return check_fail(x, e[i].key, e[j].key,
                                                  "%s '%s' and %s '%s': expected different ports or "
                                                  "addresses, both cannot be bound",
                                                  e[i].what, buf, e[j].what, other);
                        }

        return 0;
}

int config_validate(const Config *c, const char *name, char **ret_error) {
        CheckContext x = {.name = name ?: "(configuration)", .ret_error = ret_error};

        assert(c);

        if (c->n_server_names == 0) {
                if (ret_error &&
                    asprintf(ret_error,
                             "%s: [tls] server_names is required: the DNS names and IP addresses "
                             "clients use to reach the registry",
                             x.name) < 0) {
                        *ret_error = NULL;
                        return -ENOMEM;
                }
                return -EINVAL;
        }
        return config_check(c, &x);
}

/* ------------------------------------------------------------------------
 * Feeding libinih
 */

typedef struct {
        const char *name; /* for messages */
        const char *text;
        size_t size, pos;
        unsigned line;     /* of the line last handed to inih */
        bool key_seen;     /* since the last [section]: inih then reads an indented line as a continuation */
        bool continuation; /* the line last handed to inih is one */
        Config *config;
        unsigned key_lines[N_KEYS]; /* where each key was set in this file, 0 if not */
        int r;                      /* the first error; parsing stops there */
        char *error;
} Parser;

static void parser_done(Parser *s) {
        free(s->error);
}

/* Records the first error as "NAME:LINE: message"; later ones are ignored. */
_printf_(3, 4) static void parser_fail(Parser *s, int r, const char *fmt, ...) {
        _cleanup_free_ char *msg = NULL, *full = NULL;
        va_list ap;
        int k;

        if (s->r < 0)
                return;
        va_start(ap, fmt);
        k = vasprintf(&msg, fmt, ap);
        va_end(ap);
        if (k < 0) {
                msg = NULL; /* undefined after a failed vasprintf() */
                s->r = -ENOMEM;
                return;
        }
        if (asprintf(&full, "%s:%u: %s", s->name, s->line, msg) < 0) {
                full = NULL;
                s->r = -ENOMEM;
                return;
        }
        if (!(s->error = escape_controls(full))) {
                s->r = -ENOMEM;
                return;
        }
        s->r = r;
}

/* inih's find_chars_or_comment() on [s, end): the first of chars, or an
 * inline ';' comment (one that follows whitespace). */
static const char *find_chars_or_comment(const char *s, const char *end, const char *chars) {
        bool was_space = false;

        for (; s < end; s++) {
                if ((chars && strchr(chars, *s)) || (was_space && *s == ';'))
                        return s;
                was_space = isspace((unsigned char)*s);
        }
        return end;
}

/* Classifies the line inih is about to read exactly as its ini_parse_stream()
 * will (r55 with the default options: multi-line values, ';' inline
 * comments, ';' and '#' comment lines, a UTF-8 BOM skipped), refusing what
 * it would only report at the end or not at all. */
static void parser_classify(Parser *s, const char *line) {
        const char *start = line, *bol, *end, *sep;
        int len;

        if (s->line == 1 && strneq(start, "\xEF\xBB\xBF", 3))
                start += 3;
        bol = start;
        while (*start && isspace((unsigned char)*start))
                start++;
        end = start + strlen(start);
        while (end > start && isspace((unsigned char)end[-1]))
                end--;
        len = (int)(end - start);

        s->continuation = false;
        if (start == end || *start == ';' || *start == '#')
                return;

        if (start > bol && s->key_seen) {
                s->continuation = true;
                return;
        }

        if (*start == '[') {
                const char *close = find_chars_or_comment(start + 1, end, "]"), *rest;

                if (close == end || *close != ']') {
                        parser_fail(s, -EINVAL, "expected '[section]', got '%.*s'", len, start);
                        return;
                }
                /* inih ignores whatever follows ']'; we allow a comment only. */
                rest = close + 1;
                while (rest < end && isspace((unsigned char)*rest))
                        rest++;
                if (rest < end && !((*rest == ';' || *rest == '#') && rest > close + 1)) {
                        parser_fail(s, -EINVAL, "expected '[section]' alone on its line, got '%.*s'", len,
                                    start);
                        return;
                }
                if (!config_section_known(start + 1, (size_t)(close - start - 1))) {
                        parser_fail(s, -EINVAL, "unknown section [%.*s]", (int)(close - start - 1),
                                    start + 1);
                        return;
                }
                s->key_seen = false;
                return;
        }

        /* inih looks for '=' or ':' before any inline comment. */
        sep = find_chars_or_comment(start, end, "=:");
        if (sep == end || (*sep != '=' && *sep != ':'))
                parser_fail(s, -EINVAL, "expected 'key = value', '[section]' or a comment, got '%.*s'", len,
                            start);
}

/* ini_reader: fgets() over the text, counting and classifying lines. A NULL
 * return ends the parse, which is how an error stops it at once. */
static char *parser_read_line(char *str, int num, void *stream) {
        Parser *s = stream;
        const char *p, *nl;
        size_t n;

        if (s->r < 0 || s->pos >= s->size)
                return NULL;

        p = s->text + s->pos;
        nl = memchr(p, '\n', s->size - s->pos);
        n = nl ? (size_t)(nl - p) : s->size - s->pos;
        s->line++;
        s->pos += nl ? n + 1 : n;

        /* inih needs the line, its '\n' and a NUL in num bytes. */
        if (num < 2 || n > (size_t)num - 2) {
                parser_fail(s, -EINVAL, "line too long: expected at most %d characters", num - 2);
                return NULL;
        }
        memcpy(str, p, n);
        if (nl)
                str[n++] = '\n';
        str[n] = 0;

        parser_classify(s, str);
        return s->r < 0 ? NULL : str;
}

/* inih strips inline comments from key lines but not from continuation
 * lines: the same, for a continuation's value. NULL on OOM. */
static char *continuation_value(const char *value) {
        const char *end = find_chars_or_comment(value, value + strlen(value), NULL);

        while (end > value && isspace((unsigned char)end[-1]))
                end--;
        return strndup(value, (size_t)(end - value));
}

/* A line of [scopes]: "NAME = PATTERN, ..." (common/scope.h), an indented
 * line adding patterns to the client above. Appended to push_scopes in
 * canonical form; a client named twice is an error with both lines. */
static int parser_scope(Parser *s, const char *name, const char *value) {
        _cleanup_free_ char *stripped = NULL;
        const char *why = "expected a continuation of the line above";
        int r;

        if (s->continuation && !(value = stripped = continuation_value(value))) {
                s->r = -ENOMEM;
                return 0;
        }
        r = scope_entry_append(&s->config->push_scopes, name, value, s->continuation, &why);
        if (r == -EINVAL) {
                parser_fail(s, r, "[" SCOPES_SECTION "] %s: %s, got '%s'", name, why, value);
                return 0;
        }
        if (r < 0) {
                s->r = r;
                return 0;
        }
        return 1;
}

/* ini_handler: one key = value (or continuation) line. Returns 1 to go on,
 * 0 after recording the error. */
static int parser_handle(void *user, const char *section, const char *name, const char *value) {
        Parser *s = user;
        _cleanup_free_ char *stripped = NULL;
        char why[WHY_MAX];
        const ConfigKey *k;
        size_t i;
        int r;

        if (s->r < 0)
                return 0;
        s->key_seen = true;

        if (isempty(section)) {
                parser_fail(s, -EINVAL,
                            "key '%s' outside of any section: expected a [section] line above it", name);
                return 0;
        }
        if (streq(section, SCOPES_SECTION))
                return parser_scope(s, name, value);
        k = config_key_find(section, name);
        if (!k) {
                parser_fail(s, -EINVAL, "unknown key '%s' in section [%s]", name, section);
                return 0;
        }
        i = (size_t)(k - config_keys);

        if (s->continuation) {
                if (!(k->flags & KEY_LIST)) {
                        /* Most likely an indented key: say what inih made of it. */
                        parser_fail(
                                s, -EINVAL,
                                "[%s] %s: an indented line continues the value of the key above, and only "
                                "lists (server_names, allow_cidrs) continue: expected no indentation, got "
                                "'%s'",
                                section, name, value);
                        return 0;
                }
                if (!(stripped = continuation_value(value))) {
                        s->r = -ENOMEM;
                        return 0;
                }
                value = stripped;
        } else if (s->key_lines[i] > 0) {
                parser_fail(s, -EINVAL, "[%s] %s: duplicate key (first set on line %u)", section, name,
                            s->key_lines[i]);
                return 0;
        } else
                s->key_lines[i] = s->line;

        r = config_parse_value(s->config, k, value, s->continuation, why);
        if (r == -EINVAL) {
                parser_fail(s, r, "[%s] %s: %s, got '%s'", section, name, why, value);
                return 0;
        }
        if (r < 0) {
                s->r = r;
                return 0;
        }
        return 1;
}

static int config_load_text(Config *c, const char *text, size_t size, const char *name, char **ret_error) {
        _cleanup_(config_done) Config t = {};
        _cleanup_(parser_done) Parser s = {
                .name = name,
                .text = text,
                .size = size,
                .config = &t,
        };
        int r;

        r = config_copy(c, &t);
        if (r < 0)
                return r;
        /* [scopes] lines append: a file's scopes are its own lines only. */
        free_and_replace(&t.push_scopes, NULL);

        r = ini_parse_stream(parser_read_line, &s, parser_handle, &s);
        if (s.r == 0 && r < 0)
                s.r = -ENOMEM; /* -2: inih could not allocate its line buffer */
        if (s.r == 0 && r > 0) {
                /* Our reader refuses every syntax error inih knows of before inih
                 * sees it; should a future inih disagree, still say where. */
                s.line = (unsigned)r;
                parser_fail(&s, -EINVAL, "syntax error");
        }
        if (s.r == 0) {
                CheckContext x = {.name = name, .lines = s.key_lines, .ret_error = &s.error};
                s.r = config_check(&t, &x);
        }
        if (s.r < 0) {
                if (ret_error && s.error)
                        *ret_error = TAKE_PTR(s.error);
                return s.r;
        }

        config_done(c);
        *c = t;
        t = (Config){};
        return 0;
}

int config_load_string(Config *c, const char *text, const char *name, char **ret_error) {
        assert(c);
        assert(text);

        return config_load_text(c, text, strlen(text), name ?: "(string)", ret_error);
}

static int set_error(char **ret_error, const char *path, int r, const char *what) {
        if (ret_error && asprintf(ret_error, "%s: %s: %s", path, what, strerror(-r)) < 0)
                *ret_error = NULL;
        return r;
}

int config_load(Config *c, const char *path, char **ret_error) {
        _cleanup_close_ int fd = -EBADF;
        _cleanup_free_ char *text = NULL;
        const char *nul;
        struct stat st;
        size_t size = 0;

        assert(c);
        assert(path);

        fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
        if (fd < 0)
                return set_error(ret_error, path, negative_errno(), "cannot open");
        if (fstat(fd, &st) < 0)
                return set_error(ret_error, path, negative_errno(), "cannot stat");
        if (S_ISDIR(st.st_mode))
                return set_error(ret_error, path, -EISDIR, "expected a file");
        if (!S_ISREG(st.st_mode))
                return set_error(ret_error, path, -EINVAL, "expected a regular file");

        /* Read to the end rather than trusting st_size; one byte more than
         * the limit tells a file that is too big. */
        if (!(text = malloc(CONFIG_MAX_SIZE + 1)))
                return -ENOMEM;
        for (;;) {
                ssize_t n = read(fd, text + size, CONFIG_MAX_SIZE + 1 - size);
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        return set_error(ret_error, path, negative_errno(), "cannot read");
                }
                if (n == 0)
                        break;
                size += (size_t)n;
                if (size > CONFIG_MAX_SIZE)
                        return set_error(ret_error, path, -EFBIG, "expected at most 1 MiB");
        }

        nul = memchr(text, 0, size);
        if (nul) {
                unsigned line = 1;
                for (const char *q = text; q < nul; q++)
                        line += *q == '\n';
                if (ret_error && asprintf(ret_error, "%s:%u: expected text, got a NUL byte", path, line) < 0)
                        *ret_error = NULL;
                return -EINVAL;
        }

        return config_load_text(c, text, size, path, ret_error);
}

int config_server_authority(const ServerName *s, uint16_t port, char **ret) {
        bool brackets = s->is_ip && s->family == AF_INET6;
        int k = port == 443 ? asprintf(ret, brackets ? "[%s]" : "%s", s->name)
                            : asprintf(ret, brackets ? "[%s]:%u" : "%s:%u", s->name, (unsigned)port);
        return k < 0 ? -ENOMEM : 0;
}

/* SPDX-License-Identifier: MIT */
/*
 * Unit tests of common/config/config.c: defaults, a minimal and a full file,
 * every accepted form, and one case per error path, each checking that the
 * message names the file, the line and the key, and that a failed load
 * left the configuration as it was. Run from the repository root (the
 * shipped regvisor.conf is loaded and checked against the defaults).
 */

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "config.h"
#include "macro.h"
#include "tmpdir.h"

#define DIGEST "8be26f81ffea54106bae012c6f349df70f4d5e7e2ec01b143c46e2c03b9e551d"
#define OTHER_DIGEST "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
#define DEFAULT_IMAGE "docker.io/library/registry@sha256:" DIGEST
#define NAME "test.conf"
#define EXAMPLE "regvisor.conf"

/* ------------------------------------------------------------------------
 * Helpers
 */

static void config_donep(Config *c) {
        config_done(c);
}
#define _cleanup_config_ _cleanup_(config_donep)

static void defaults(Config *c) {
        assert_int_equal(config_init_defaults(c), 0);
}

/* Loads text over the defaults and fails the test with the message when
 * it does not load. */
static void load_ok(Config *c, const char *text) {
        _cleanup_free_ char *error = NULL;
        int r;

        r = config_load_string(c, text, NAME, &error);
        if (r != 0)
                fail_msg("expected to load, got %d: %s\n--- text:\n%s", r, error ?: "(no message)", text);
        assert_null(error);
}

static bool streq_null(const char *a, const char *b) {
        return (!a && !b) || (a && b && streq(a, b));
}

#define assert_str_null_equal(a, b)                                                                         \
        do {                                                                                                \
                if (!streq_null((a), (b)))                                                                  \
                        fail_msg("%s: '%s' != '%s'", #a, (a) ?: "(null)", (b) ?: "(null)");                 \
        } while (0)

static void assert_listen_equal(const ListenAddress *a, const ListenAddress *b) {
        assert_str_null_equal(a->host, b->host);
        assert_int_equal(a->port, b->port);
}

static void assert_port_equal(const PortConfig *a, const PortConfig *b) {
        assert_listen_equal(&a->listen, &b->listen);
        assert_true(a->rate == b->rate);
        assert_int_equal(a->burst, b->burst);
        assert_int_equal(a->delay, b->delay);
        assert_int_equal(a->conn_per_ip, b->conn_per_ip);
        assert_int_equal(a->n_allow_cidrs, b->n_allow_cidrs);
        assert_memory_equal(a->allow_cidrs, b->allow_cidrs, a->n_allow_cidrs * sizeof(Cidr));
}

/* Every field of Config: a field added to the header belongs here too. */
static void assert_config_equal(const Config *a, const Config *b) {
        assert_str_null_equal(a->service_user, b->service_user);
        assert_str_null_equal(a->proxy_user, b->proxy_user);
        assert_int_equal(a->subid_start, b->subid_start);
        assert_int_equal(a->subid_count, b->subid_count);

        assert_str_null_equal(a->image, b->image);
        assert_str_null_equal(a->image_digest, b->image_digest);
        assert_str_null_equal(a->image_archive, b->image_archive);
        assert_str_null_equal(a->storage, b->storage);
        assert_int_equal(a->listen.kind, b->listen.kind);
        assert_str_null_equal(a->listen.path, b->listen.path);
        assert_str_null_equal(a->listen.host, b->listen.host);
        assert_int_equal(a->listen.port, b->listen.port);
        assert_int_equal(a->memory_max, b->memory_max);
        assert_int_equal(a->cpu_quota, b->cpu_quota);

        assert_str_null_equal(a->tls_dir, b->tls_dir);
        assert_int_equal(a->n_server_names, b->n_server_names);
        for (unsigned i = 0; i < a->n_server_names; i++)
                assert_string_equal(a->server_names[i], b->server_names[i]);
        assert_int_equal(a->key_type, b->key_type);
        assert_int_equal(a->ca_days, b->ca_days);
        assert_int_equal(a->cert_days, b->cert_days);
        assert_str_null_equal(a->organization, b->organization);

        assert_int_equal(a->signing_mode, b->signing_mode);
        assert_str_null_equal(a->signing_keys, b->signing_keys);
        assert_str_null_equal(a->sigstore_key, b->sigstore_key);
        assert_int_equal(a->signature_store, b->signature_store);

        assert_port_equal(&a->pull, &b->pull);
        assert_port_equal(&a->push, &b->push);

        assert_int_equal(a->proxy.max_body, b->proxy.max_body);
        assert_int_equal(a->proxy.read_timeout, b->proxy.read_timeout);
        assert_int_equal(a->proxy.header_timeout, b->proxy.header_timeout);
        assert_int_equal(a->proxy.idle_timeout, b->proxy.idle_timeout);
        assert_int_equal(a->proxy.workers, b->proxy.workers);
        assert_int_equal(a->proxy.ipv6_prefix, b->proxy.ipv6_prefix);
        assert_int_equal(a->proxy.limits_slots, b->proxy.limits_slots);
        assert_int_equal(a->proxy.ticket_key_lifetime, b->proxy.ticket_key_lifetime);

        assert_listen_equal(&a->status_listen, &b->status_listen);
        assert_int_equal(a->status_allow_remote, b->status_allow_remote);
}

static Cidr cidr(const char *addr, unsigned prefix) {
        Cidr c = {.prefix = prefix};

        if (inet_pton(AF_INET, addr, c.addr) == 1)
                c.family = AF_INET;
        else {
                assert_int_equal(inet_pton(AF_INET6, addr, c.addr), 1);
                c.family = AF_INET6;
        }
        return c;
}

static void assert_cidr(const Cidr *got, const char *addr, unsigned prefix) {
        Cidr want = cidr(addr, prefix);

        assert_int_equal(got->family, want.family);
        assert_int_equal(got->prefix, want.prefix);
        assert_memory_equal(got->addr, want.addr, 16);
}

static char *write_temp(const char *data, size_t size) {
        char path[TMPDIR_PATH_MAX];
        int fd;

        assert_int_equal(tmpdir_template(path, sizeof path, "test-config"), 0);
        fd = mkstemp(path);

        assert_true(fd >= 0);
        assert_int_equal(write(fd, data, size), (ssize_t)size);
        assert_int_equal(close(fd), 0);
        return strdup(path);
}

/* The repository's regvisor.conf: tests run from the repository root;
 * fall back to the path relative to this source file. */
static const char *example_path(void) {
        static char path[4096];
        const char *slash;

        if (access(EXAMPLE, R_OK) == 0)
                return EXAMPLE;
        slash = strrchr(__FILE__, '/');
        (void)snprintf(path, sizeof(path), "%.*s/../../" EXAMPLE, slash ? (int)(slash - __FILE__) : 1,
                       slash ? __FILE__ : ".");
        return path;
}

/* ------------------------------------------------------------------------
 * Defaults and whole files
 */

static void test_defaults(void **state) {
        _cleanup_config_ Config c;

        (void)state;
        defaults(&c);

        assert_string_equal(c.service_user, "ci-svc");
        assert_string_equal(c.proxy_user, "registry-proxy");
        assert_int_equal(c.subid_start, 100000);
        assert_int_equal(c.subid_count, 65536);

        assert_string_equal(c.image, DEFAULT_IMAGE);
        assert_string_equal(c.image_digest, "sha256:" DIGEST);
        assert_null(c.image_archive);
        assert_string_equal(c.storage, "/var/lib/registry");
        assert_int_equal(c.listen.kind, LISTEN_UNIX);
        assert_string_equal(c.listen.path, "/run/regvisor/registry/registry.sock");
        assert_null(c.listen.host);
        assert_int_equal(c.memory_max, UINT64_C(1) << 30);
        assert_int_equal(c.cpu_quota, 100);

        assert_string_equal(c.tls_dir, "/etc/registry/certs");
        assert_int_equal(c.n_server_names, 0);
        assert_int_equal(c.key_type, KEY_EC_P256);
        assert_int_equal(c.ca_days, 3650);
        assert_int_equal(c.cert_days, 365);
        assert_string_equal(c.organization, "regvisor");

        assert_int_equal(c.signing_mode, SIGNING_GPG);
        assert_null(c.signing_keys);
        assert_string_equal(c.sigstore_key, "/etc/containers/keys/registry-cosign.pub");
        assert_int_equal(c.signature_store, SIGNATURES_LOCAL);

        assert_null(c.pull.listen.host);
        assert_int_equal(c.pull.listen.port, 443);
        assert_true(c.pull.rate == 10.0);
        assert_int_equal(c.pull.burst, 200);
        assert_false(c.pull.delay);
        assert_int_equal(c.pull.conn_per_ip, 128);
        assert_int_equal(c.pull.n_allow_cidrs, 0);
        assert_null(c.push.listen.host);
        assert_int_equal(c.push.listen.port, 4443);
        assert_true(c.push.rate == 20.0);
        assert_int_equal(c.push.burst, 500);
        assert_false(c.push.delay);
        assert_int_equal(c.push.conn_per_ip, 128);
        assert_int_equal(c.push.n_allow_cidrs, 0);

        assert_int_equal(c.proxy.max_body, UINT64_C(2) << 30);
        assert_int_equal(c.proxy.read_timeout, 300);
        assert_int_equal(c.proxy.header_timeout, 10);
        assert_int_equal(c.proxy.idle_timeout, 60);
        assert_int_equal(c.proxy.workers, 0);
        assert_int_equal(c.proxy.ipv6_prefix, 64);
        assert_int_equal(c.proxy.limits_slots, 16384);
        assert_int_equal(c.proxy.ticket_key_lifetime, 3600);

        assert_string_equal(c.status_listen.host, "127.0.0.1");
        assert_int_equal(c.status_listen.port, 9443);
        assert_false(c.status_allow_remote);
}

static void test_defaults_need_server_names(void **state) {
        _cleanup_config_ Config c;
        _cleanup_free_ char *error = NULL;

        (void)state;
        defaults(&c);
        assert_int_equal(config_validate(&c, NAME, &error), -EINVAL);
        assert_non_null(error);
        assert_non_null(strstr(error, NAME ": "));
        assert_non_null(strstr(error, "[tls] server_names is required"));

        /* Without ret_error too. */
        assert_int_equal(config_validate(&c, NAME, NULL), -EINVAL);
}

static void test_minimal(void **state) {
        _cleanup_config_ Config c, d;
        _cleanup_free_ char *error = NULL;

        (void)state;
        defaults(&c);
        defaults(&d);
        load_ok(&c, "[tls]\nserver_names = registry.example.com\n");
        assert_int_equal(config_validate(&c, NAME, &error), 0);
        assert_null(error);

        assert_int_equal(c.n_server_names, 1);
        assert_string_equal(c.server_names[0], "registry.example.com");
        /* Everything else is the default. */
        d.server_names[0] = c.server_names[0];
        d.n_server_names = 1;
        assert_config_equal(&c, &d);
        d.server_names[0] = NULL;
        d.n_server_names = 0;
}

static const char full_file[] = "; every key, none at its default\n"
                                "[host]\n"
                                "service_user = registry-svc\n"
                                "proxy_user = rp\n"
                                "subid_range = 200000-265535\n"
                                "\n"
                                "[registry]\n"
                                "image = quay.io/example/registry:2.8.3@sha256:" OTHER_DIGEST "\n"
                                "image_archive = /var/lib/regvisor/registry.oci\n"
                                "storage = /srv/registry/\n"
                                "listen = tcp:127.0.0.1:5000\n"
                                "memory_max = 512M\n"
                                "cpu_quota = 250%\n"
                                "\n"
                                "[tls]\n"
                                "dir = /etc/regvisor/pki\n"
                                "server_names = Registry.Example.COM, 192.0.2.10 2001:DB8::0010\n"
                                "key_type = rsa-4096\n"
                                "ca_days = 7300\n"
                                "cert_days = 90\n"
                                "organization = Example Corp.\n"
                                "\n"
                                "[signing]\n"
                                "mode = sigstore\n"
                                "keys = /etc/regvisor/signers.asc\n"
                                "sigstore_key = /etc/containers/keys/org-cosign.pub\n"
                                "store = registry\n"
                                "\n"
                                "[pull]\n"
                                "listen = 0.0.0.0:8443\n"
                                "rate = 600r/m\n"
                                "burst = 40\n"
                                "delay = yes\n"
                                "conn_per_ip = 0\n"
                                "allow_cidrs = 192.0.2.0/24\n"
                                "\n"
                                "[push]\n"
                                "listen = [::]:9444\n"
                                "rate = off\n"
                                "burst = 0\n"
                                "delay = no\n"
                                "conn_per_ip = 5\n"
                                "allow_cidrs = 10.0.0.0/8, 172.16.0.0/12 192.168.0.0/16,2001:db8::/32\n"
                                "\n"
                                "[proxy]\n"
                                "max_body = 4G\n"
                                "read_timeout = 10m\n"
                                "header_timeout = 30\n"
                                "idle_timeout = 2m\n"
                                "workers = 4\n"
                                "\n"
                                "[status]\n"
                                "listen = [::1]:9000\n"
                                "allow_remote = yes\n";

static void test_full(void **state) {
        _cleanup_config_ Config c;

        (void)state;
        defaults(&c);
        load_ok(&c, full_file);
        assert_int_equal(config_validate(&c, NAME, NULL), 0);

        assert_string_equal(c.service_user, "registry-svc");
        assert_string_equal(c.proxy_user, "rp");
        assert_int_equal(c.subid_start, 200000);
        assert_int_equal(c.subid_count, 65536);

        /* The tag is dropped: the digest names the image. */
        assert_string_equal(c.image, "quay.io/example/registry@sha256:" OTHER_DIGEST);
        assert_string_equal(c.image_digest, "sha256:" OTHER_DIGEST);
        assert_string_equal(c.image_archive, "/var/lib/regvisor/registry.oci");
        assert_string_equal(c.storage, "/srv/registry");
        assert_int_equal(c.listen.kind, LISTEN_TCP);
        assert_null(c.listen.path);
        assert_string_equal(c.listen.host, "127.0.0.1");
        assert_int_equal(c.listen.port, 5000);
        assert_int_equal(c.memory_max, UINT64_C(512) << 20);
        assert_int_equal(c.cpu_quota, 250);

        assert_string_equal(c.tls_dir, "/etc/regvisor/pki");
        assert_int_equal(c.n_server_names, 3);
        assert_string_equal(c.server_names[0], "registry.example.com");
        assert_string_equal(c.server_names[1], "192.0.2.10");
        assert_string_equal(c.server_names[2], "2001:db8::10");
        assert_int_equal(c.key_type, KEY_RSA_4096);
        assert_int_equal(c.ca_days, 7300);
        assert_int_equal(c.cert_days, 90);
        assert_string_equal(c.organization, "Example Corp.");

        assert_int_equal(c.signing_mode, SIGNING_SIGSTORE);
        assert_string_equal(c.signing_keys, "/etc/regvisor/signers.asc");
        assert_string_equal(c.sigstore_key, "/etc/containers/keys/org-cosign.pub");
        assert_int_equal(c.signature_store, SIGNATURES_REGISTRY);

        assert_string_equal(c.pull.listen.host, "0.0.0.0");
        assert_int_equal(c.pull.listen.port, 8443);
        assert_true(c.pull.rate == 10.0);
        assert_int_equal(c.pull.burst, 40);
        assert_true(c.pull.delay);
        assert_int_equal(c.pull.conn_per_ip, 0);
        assert_int_equal(c.pull.n_allow_cidrs, 1);
        assert_cidr(&c.pull.allow_cidrs[0], "192.0.2.0", 24);

        assert_string_equal(c.push.listen.host, "::");
        assert_int_equal(c.push.listen.port, 9444);
        assert_true(c.push.rate == 0);
        assert_int_equal(c.push.burst, 0);
        assert_false(c.push.delay);
        assert_int_equal(c.push.conn_per_ip, 5);
        assert_int_equal(c.push.n_allow_cidrs, 4);
        assert_cidr(&c.push.allow_cidrs[0], "10.0.0.0", 8);
        assert_cidr(&c.push.allow_cidrs[1], "172.16.0.0", 12);
        assert_cidr(&c.push.allow_cidrs[2], "192.168.0.0", 16);
        assert_cidr(&c.push.allow_cidrs[3], "2001:db8::", 32);

        assert_int_equal(c.proxy.max_body, UINT64_C(4) << 30);
        assert_int_equal(c.proxy.read_timeout, 600);
        assert_int_equal(c.proxy.header_timeout, 30);
        assert_int_equal(c.proxy.idle_timeout, 120);
        assert_int_equal(c.proxy.workers, 4);

        assert_string_equal(c.status_listen.host, "::1");
        assert_int_equal(c.status_listen.port, 9000);
        assert_true(c.status_allow_remote);
}

/* The same file from disk, through config_load(). */
static void test_full_from_file(void **state) {
        _cleanup_config_ Config c, d;
        _cleanup_free_ char *path = NULL, *error = NULL;

        (void)state;
        path = write_temp(full_file, strlen(full_file));
        defaults(&c);
        defaults(&d);
        assert_int_equal(config_load(&c, path, &error), 0);
        assert_null(error);
        load_ok(&d, full_file);
        assert_config_equal(&c, &d);
        assert_int_equal(unlink(path), 0);
}

/* The shipped example is a valid minimal configuration. */
static void test_example_loads(void **state) {
        _cleanup_config_ Config c;
        _cleanup_free_ char *error = NULL;
        const char *path = example_path();
        int r;

        (void)state;
        defaults(&c);
        r = config_load(&c, path, &error);
        if (r != 0)
                fail_msg("%s: %d: %s", path, r, error ?: "");
        r = config_validate(&c, path, &error);
        if (r != 0)
                fail_msg("%s: %d: %s", path, r, error ?: "");
        assert_int_equal(c.n_server_names, 2);
        assert_string_equal(c.server_names[0], "registry.example.com");
        assert_string_equal(c.server_names[1], "192.0.2.10");
}

/* Every key regvisor knows, as the example must document it. */
static const char *const documented_keys[] = {
        "service_user", "proxy_user",  "subid_range",  "image",        "image_archive",  "storage",
        "listen",       "memory_max",  "cpu_quota",
        "cache", "http_secret_file", "auth_url", "auth_version", "container", "endpoint", "region", "bucket",
        "credentials_file",    "dir",          "server_names",   "key_type",
        "ca_days",      "cert_days",   "organization", "initial_client", "mode", "keys", "sigstore_key", "store", "listen",         "rate",
        "burst",        "delay",       "conn_per_ip",  "allow_cidrs",  "listen",         "rate",
        "burst",        "delay",       "conn_per_ip",  "allow_cidrs",  "max_body",       "read_timeout",
        "header_timeout", "idle_timeout",
        "workers",      "ipv6_prefix", "limits_slots", "max_connections", "min_rate", "min_rate_window",
        "ticket_key_lifetime", "upstream_hold", "restart_delay", "restart_delay_max", "restart_limit", "restart_window",
        "healthy_reset", "probe_interval", "probe_timeout", "unhealthy_after", "stop_timeout",
        "storage_warn", "storage_crit", "cert_warn_days", "cert_crit_days",
        "max_delete_share", "upload_max_age", "drain_timeout",
        "listen",      "allow_remote",
        "htpasswd",
        "renew_before", "check_interval", "server_validity", "crl_validity",
        "trusted_proxies", "allow_cidrs",
};

/* The example's "#key = default" lines, uncommented, give exactly the
 * defaults: what the operator reads is what regvisor does. */
static void test_example_documents_defaults(void **state) {
        _cleanup_config_ Config c, d;
        _cleanup_free_ char *text = NULL, *error = NULL;
        _cleanup_fclose_ FILE *f = NULL;
        const char *path = example_path();
        size_t size = 0, n_keys = 0;
        char line[512];
        int r;

        (void)state;
        f = fopen(path, "re");
        assert_non_null(f);
        text = calloc(1, 64 * 1024);
        assert_non_null(text);
        while (fgets(line, sizeof(line), f)) {
                const char *l = line;

                if (line[0] == '#' && islower((unsigned char)line[1]) && strstr(line, " =")) {
                        size_t len = strcspn(line + 1, " ");
                        bool known = false;

                        for (size_t i = 0; i < ELEMENTSOF(documented_keys); i++)
                                known = known || (strlen(documented_keys[i]) == len &&
                                                  strneq(documented_keys[i], line + 1, len));
                        if (!known)
                                fail_msg("undocumented key in %s: %s", path, line);
                        l = line + 1;
                        n_keys++;
                }
                assert_true(size + strlen(l) < 64 * 1024);
                strcpy(text + size, l);
                size += strlen(l);
        }
        /* Every key once, and server_names is the one set in the example. */
        assert_int_equal(n_keys, ELEMENTSOF(documented_keys) - 1);

        defaults(&c);
        defaults(&d);
        r = config_load_string(&c, text, path, &error);
        if (r != 0)
                fail_msg("%s uncommented: %d: %s", path, r, error ?: "");
        /* Apart from the names, all defaults. */
        assert_int_equal(c.n_server_names, 2);
        for (unsigned i = 0; i < c.n_server_names; i++)
                free(c.server_names[i]);
        c.n_server_names = 0;
        assert_config_equal(&c, &d);
}

/* ------------------------------------------------------------------------
 * Accepted forms
 */

static void test_image_forms(void **state) {
        static const struct {
                const char *in, *out;
        } cases[] = {
                {"registry@sha256:" DIGEST, "docker.io/library/registry@sha256:" DIGEST},
                {"registry:2@sha256:" DIGEST, "docker.io/library/registry@sha256:" DIGEST},
                {"library/registry:2.8.3@sha256:" DIGEST, "docker.io/library/registry@sha256:" DIGEST},
                {"docker.io/registry@sha256:" DIGEST, "docker.io/library/registry@sha256:" DIGEST},
                {"index.docker.io/someone/reg@sha256:" DIGEST, "docker.io/someone/reg@sha256:" DIGEST},
                {"ghcr.io/a/b/c:v1_x.y-z@sha256:" DIGEST, "ghcr.io/a/b/c@sha256:" DIGEST},
                {"localhost/reg@sha256:" DIGEST, "localhost/reg@sha256:" DIGEST},
                {"localhost:5000/reg@sha256:" DIGEST, "localhost:5000/reg@sha256:" DIGEST},
                {"Registry.Example.COM:443/team/reg@sha256:" DIGEST,
                 "Registry.Example.COM:443/team/reg@sha256:" DIGEST},
                {"[2001:db8::1]:5000/reg@sha256:" DIGEST, "[2001:db8::1]:5000/reg@sha256:" DIGEST},
                {"192.0.2.1:5000/reg@sha256:" DIGEST, "192.0.2.1:5000/reg@sha256:" DIGEST},
                {"docker.io/a__b.c-d---e/f_g@sha256:" DIGEST, "docker.io/a__b.c-d---e/f_g@sha256:" DIGEST},
                /* A first component with a '.' is a registry host, as for docker. */
                {"my.host/x@sha256:" DIGEST, "my.host/x@sha256:" DIGEST},
        };

        (void)state;
        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                _cleanup_config_ Config c;
                _cleanup_free_ char *text = NULL;

                defaults(&c);
                assert_true(asprintf(&text, "[registry]\nimage = %s\n", cases[i].in) > 0);
                load_ok(&c, text);
                assert_string_equal(c.image, cases[i].out);
                assert_string_equal(c.image_digest, "sha256:" DIGEST);
        }
}

static void test_upstream_forms(void **state) {
        _cleanup_config_ Config c;

        (void)state;
        defaults(&c);
        load_ok(&c, "[registry]\nlisten = tcp:127.0.0.2:5000\n");
        assert_int_equal(c.listen.kind, LISTEN_TCP);
        assert_string_equal(c.listen.host, "127.0.0.2");
        assert_int_equal(c.listen.port, 5000);
        assert_null(c.listen.path);

        load_ok(&c, "[registry]\nlisten = tcp:[0:0::1]:65535\n");
        assert_string_equal(c.listen.host, "::1");
        assert_int_equal(c.listen.port, 65535);

        load_ok(&c, "[registry]\nlisten = unix://run//reg/sock/\n");
        assert_int_equal(c.listen.kind, LISTEN_UNIX);
        assert_string_equal(c.listen.path, "/run/reg/sock");
        assert_null(c.listen.host);
        assert_int_equal(c.listen.port, 0);

        /* 107 bytes and the NUL fill sun_path exactly. */
        {
                char text[256] = "[registry]\nlisten = unix:/";
                size_t l = strlen(text);
                memset(text + l, 'a', 106);
                text[l + 106] = 0;
                load_ok(&c, text);
                assert_int_equal(strlen(c.listen.path), 107);
        }
}

static void test_listen_forms(void **state) {
        _cleanup_config_ Config c;

        (void)state;
        defaults(&c);
        load_ok(&c, "[pull]\nlisten = 192.0.2.1:443\n[push]\nlisten = [2001:DB8:0::1]:4443\n"
                    "[status]\nlisten = 127.0.0.53:1\n");
        assert_string_equal(c.pull.listen.host, "192.0.2.1");
        assert_int_equal(c.pull.listen.port, 443);
        assert_string_equal(c.push.listen.host, "2001:db8::1");
        assert_int_equal(c.push.listen.port, 4443);
        assert_string_equal(c.status_listen.host, "127.0.0.53");
        assert_int_equal(c.status_listen.port, 1);

        load_ok(&c, "[pull]\nlisten = 65535\n[status]\nlisten = [::1]:9443\n");
        assert_null(c.pull.listen.host);
        assert_int_equal(c.pull.listen.port, 65535);
        assert_string_equal(c.status_listen.host, "::1");

        /* Non-loopback status is fine with allow_remote, in either order. */
        load_ok(&c, "[status]\nlisten = 0.0.0.0:9443\nallow_remote = true\n");
        assert_string_equal(c.status_listen.host, "0.0.0.0");
        load_ok(&c, "[status]\nallow_remote = on\nlisten = 9443\n");
        assert_null(c.status_listen.host);
        assert_true(c.status_allow_remote);

        /* Same port on distinct addresses is no clash. */
        load_ok(&c, "[pull]\nlisten = 192.0.2.1:443\n[push]\nlisten = 192.0.2.2:443\n");
        load_ok(&c, "[pull]\nlisten = 0.0.0.0:443\n[push]\nlisten = [2001:db8::1]:443\n");
}

static void test_numbers_forms(void **state) {
        static const struct {
                const char *text;
                size_t offset;
                int type; /* 0 unsigned, 1 uint64_t, 2 double */
                double value;
        } cases[] = {
#define U(t, f, v) {t, offsetof(Config, f), 0, v}
#define U64(t, f, v)                                                                                        \
        { t, offsetof(Config, f), 1, v }
#define D(t, f, v)                                                                                          \
        { t, offsetof(Config, f), 2, v }
                U64("[registry]\nmemory_max = 16M", memory_max, 16 << 20),
                U64("[registry]\nmemory_max = 2g", memory_max, 2.0 * (1 << 30)),
                U64("[registry]\nmemory_max = 1T", memory_max, 1099511627776.0),
                U64("[registry]\nmemory_max = 1048576k", memory_max, 1 << 30),
                U64("[registry]\nmemory_max = 33554432", memory_max, 32 << 20),
                U64("[proxy]\nmax_body = 1M", proxy.max_body, 1 << 20),
                U("[registry]\ncpu_quota = 1%", cpu_quota, 1),
                U("[registry]\ncpu_quota = 10000%", cpu_quota, 10000),
                U("[registry]\ncpu_quota = 50", cpu_quota, 50),
                U("[proxy]\nread_timeout = 1", proxy.read_timeout, 1),
                U("[proxy]\nread_timeout = 45s", proxy.read_timeout, 45),
                U("[proxy]\nread_timeout = 5m", proxy.read_timeout, 300),
                U("[proxy]\nread_timeout = 24h", proxy.read_timeout, 86400),
                U("[proxy]\nheader_timeout = 1h", proxy.header_timeout, 3600),
                U("[proxy]\nidle_timeout = 90", proxy.idle_timeout, 90),
                U("[proxy]\nworkers = auto", proxy.workers, 0),
                U("[proxy]\nworkers = 0", proxy.workers, 0),
                U("[proxy]\nworkers = 1024", proxy.workers, 1024),
                U("[proxy]\nipv6_prefix = 32", proxy.ipv6_prefix, 32),
                U("[proxy]\nipv6_prefix = 56", proxy.ipv6_prefix, 56),
                U("[proxy]\nipv6_prefix = 128", proxy.ipv6_prefix, 128),
                U("[proxy]\nlimits_slots = 64", proxy.limits_slots, 64),
                U("[proxy]\nlimits_slots = 1048576", proxy.limits_slots, 1048576),
                U("[proxy]\nticket_key_lifetime = 2s", proxy.ticket_key_lifetime, 2),
                U("[proxy]\nticket_key_lifetime = 24h", proxy.ticket_key_lifetime, 86400),
                U("[pull]\nburst = 0", pull.burst, 0),
                U("[pull]\nburst = 1000000", pull.burst, 1000000),
                U("[push]\nconn_per_ip = 0", push.conn_per_ip, 0),
                U("[tls]\nca_days = 36500\ncert_days = 36500", cert_days, 36500),
                U("[tls]\ncert_days = 1", cert_days, 1),
                D("[pull]\nrate = 10/s", pull.rate, 10),
                D("[pull]\nrate = 10r/s", pull.rate, 10),
                D("[pull]\nrate = 600/m", pull.rate, 10),
                D("[pull]\nrate = 30r/m", pull.rate, 0.5),
                D("[pull]\nrate = off", pull.rate, 0),
                D("[push]\nrate = OFF", push.rate, 0),
                D("[push]\nrate = 0", push.rate, 0),
                D("[push]\nrate = 1000000r/s", push.rate, 1000000),
#undef U
#undef U64
#undef D
        };

        (void)state;
        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                _cleanup_config_ Config c;
                const uint8_t *f;

                defaults(&c);
                load_ok(&c, cases[i].text);
                f = (const uint8_t *)&c + cases[i].offset;
                switch (cases[i].type) {
                case 0:
                        assert_int_equal(*(const unsigned *)f, (unsigned)cases[i].value);
                        break;
                case 1:
                        assert_int_equal(*(const uint64_t *)f, (uint64_t)cases[i].value);
                        break;
                default:
                        if (*(const double *)f != cases[i].value)
                                fail_msg("%s: %g != %g", cases[i].text, *(const double *)f, cases[i].value);
                }
        }
}

static void test_bool_forms(void **state) {
        static const char *const yes[] = {"yes", "true", "on", "1", "YES", "True"};
        static const char *const no[] = {"no", "false", "off", "0", "No", "FALSE"};

        (void)state;
        for (size_t i = 0; i < ELEMENTSOF(yes); i++) {
                _cleanup_config_ Config c;
                _cleanup_free_ char *t = NULL, *f = NULL;

                defaults(&c);
                assert_true(asprintf(&t, "[status]\nallow_remote = %s\n", yes[i]) > 0);
                assert_true(asprintf(&f, "[status]\nallow_remote = %s\n", no[i]) > 0);
                load_ok(&c, t);
                assert_true(c.status_allow_remote);
                load_ok(&c, f);
                assert_false(c.status_allow_remote);
        }
}

static void test_misc_forms(void **state) {
        _cleanup_config_ Config c;

        (void)state;
        defaults(&c);
        load_ok(&c, "[host]\nservice_user = _svc-1\nproxy_user = abcdefghijklmnopqrstuvwxyz012345\n"
                    "subid_range = 100-101\n[tls]\nkey_type = RSA-4096\norganization = "
                    "0123456789012345678901234567890123456789012345678901234567890123\n");
        assert_string_equal(c.service_user, "_svc-1");
        assert_int_equal(strlen(c.proxy_user), 32);
        assert_int_equal(c.subid_start, 100);
        assert_int_equal(c.subid_count, 2);
        assert_int_equal(c.key_type, KEY_RSA_4096);
        assert_int_equal(strlen(c.organization), 64);

        load_ok(&c, "[host]\nsubid_range = 4294901759-4294967294\n[tls]\nkey_type = ec-p256\n");
        assert_int_equal(c.subid_start, 4294901759u);
        assert_int_equal(c.subid_count, 65536);
        assert_int_equal(c.key_type, KEY_EC_P256);

        /* image_archive: set, then unset with an empty value. */
        load_ok(&c, "[registry]\nimage_archive = /srv/oci/registry+2@x.tar\n");
        assert_string_equal(c.image_archive, "/srv/oci/registry+2@x.tar");
        load_ok(&c, "[registry]\nimage_archive =\n");
        assert_null(c.image_archive);
}

static void assert_authority(const ServerName *n, uint16_t port, const char *want) {
        _cleanup_free_ char *a = NULL;

        assert_int_equal(config_server_authority(n, port, &a), 0);
        assert_string_equal(a, want);
}

/* server_names are decided once, as they are read: DNS name or IP literal
 * (with its bytes), and how a client writes each as an authority. */
static void test_server_names_parsed(void **state) {
        _cleanup_config_ Config c;
        static const uint8_t v4[4] = {192, 0, 2, 10}, v6[16] = {0x20, 0x01, 0x0d, 0xb8, [15] = 1};

        (void)state;
        defaults(&c);
        load_ok(&c, "[tls]\nserver_names = Registry.Test, 192.0.2.10, [2001:DB8::1], ::ffff:10.0.0.1\n");
        assert_int_equal(c.n_server_names, 4);
        /* A second load goes through the copy: names still point at the
         * strings this Config owns. */
        load_ok(&c, "[proxy]\nworkers = 2\n");
        for (unsigned i = 0; i < c.n_server_names; i++)
                assert_ptr_equal(c.servers[i].name, c.server_names[i]);

        assert_false(c.servers[0].is_ip);
        assert_int_equal(c.servers[0].family, 0);
        assert_string_equal(c.servers[0].name, "registry.test");
        assert_true(c.servers[1].is_ip);
        assert_int_equal(c.servers[1].family, AF_INET);
        assert_memory_equal(c.servers[1].address, v4, 4);
        assert_true(c.servers[2].is_ip);
        assert_int_equal(c.servers[2].family, AF_INET6);
        assert_memory_equal(c.servers[2].address, v6, 16);
        assert_string_equal(c.servers[2].name, "2001:db8::1");
        assert_int_equal(c.servers[3].family, AF_INET6);

        assert_authority(&c.servers[0], 443, "registry.test");
        assert_authority(&c.servers[1], 4443, "192.0.2.10:4443");
        assert_authority(&c.servers[2], 443, "[2001:db8::1]");
        assert_authority(&c.servers[3], 4443, "[::ffff:10.0.0.1]:4443");

        /* Replaced, not appended: the parsed entries follow the names. */
        load_ok(&c, "[tls]\nserver_names = 10.1.2.3\n");
        assert_int_equal(c.n_server_names, 1);
        assert_true(c.servers[0].is_ip);
        assert_int_equal(c.servers[0].family, AF_INET);
        assert_false(c.servers[1].is_ip);
        assert_null(c.servers[1].name);
}

static void test_server_names_forms(void **state) {
        _cleanup_config_ Config c;

        (void)state;
        defaults(&c);
        load_ok(&c, "[tls]\n"
                    "server_names = a.example,b.example\t c-1.example ; comment\n"
                    "  [2001:DB8::1], 192.0.2.1 ; a continuation line\n"
                    "\n"
                    "# a comment does not end the list\n"
                    "\tregistry\n"
                    "  xn--bcher-kva.example\n");
        assert_int_equal(c.n_server_names, 7);
        assert_string_equal(c.server_names[0], "a.example");
        assert_string_equal(c.server_names[1], "b.example");
        assert_string_equal(c.server_names[2], "c-1.example");
        assert_string_equal(c.server_names[3], "2001:db8::1");
        assert_string_equal(c.server_names[4], "192.0.2.1");
        assert_string_equal(c.server_names[5], "registry");
        assert_string_equal(c.server_names[6], "xn--bcher-kva.example");

        /* A second load replaces the list, it does not append to it. */
        load_ok(&c, "[tls]\nserver_names = z.example\n");
        assert_int_equal(c.n_server_names, 1);
        assert_string_equal(c.server_names[0], "z.example");

        /* An empty value empties it (config_validate() then refuses). */
        load_ok(&c, "[tls]\nserver_names =\n");
        assert_int_equal(c.n_server_names, 0);

        /* Exactly CONFIG_MAX_SERVER_NAMES, over several lines, the last of
         * 63-character labels (a 253-character name does not fit on one of
         * libinih's 198-character lines). */
        {
                char text[4096] = "[tls]\nserver_names = ";
                for (int i = 0; i < CONFIG_MAX_SERVER_NAMES - 1; i++)
                        (void)snprintf(text + strlen(text), sizeof(text) - strlen(text), "%sn%d.example%s",
                                       i % 8 == 0 && i > 0 ? "  " : "", i, i % 8 == 7 ? "\n" : ", ");
                strcat(text, "\n  ");
                /* 63 + 1 + 63 + 1 + 50 = 178 */
                for (int l = 0; l < 3; l++) {
                        size_t len = strlen(text);
                        memset(text + len, 'a' + l, l < 2 ? 63 : 50);
                        text[len + (l < 2 ? 63 : 50)] = 0;
                        if (l < 2)
                                strcat(text, ".");
                }
                strcat(text, "\n");
                load_ok(&c, text);
                assert_int_equal(c.n_server_names, CONFIG_MAX_SERVER_NAMES);
                assert_string_equal(c.server_names[30], "n30.example");
                assert_int_equal(strlen(c.server_names[31]), 178);
        }
}

static void test_cidr_forms(void **state) {
        _cleanup_config_ Config c;

        (void)state;
        defaults(&c);
        load_ok(&c, "[pull]\n"
                    "allow_cidrs = 10.1.2.3/8 192.0.2.7, 0.0.0.0/0\n"
                    "    2001:db8:ffff::1/33 ::1 ; loopback too\n"
                    "[push]\n"
                    "allow_cidrs = 198.51.100.255/25\n");
        assert_int_equal(c.pull.n_allow_cidrs, 5);
        assert_cidr(&c.pull.allow_cidrs[0], "10.0.0.0", 8);
        assert_cidr(&c.pull.allow_cidrs[1], "192.0.2.7", 32);
        assert_cidr(&c.pull.allow_cidrs[2], "0.0.0.0", 0);
        assert_cidr(&c.pull.allow_cidrs[3], "2001:db8:8000::", 33);
        assert_cidr(&c.pull.allow_cidrs[4], "::1", 128);
        assert_int_equal(c.push.n_allow_cidrs, 1);
        assert_cidr(&c.push.allow_cidrs[0], "198.51.100.128", 25);

        /* Replaced by a later load, emptied by an empty value. */
        load_ok(&c, "[pull]\nallow_cidrs = 192.0.2.0/24\n[push]\nallow_cidrs =\n");
        assert_int_equal(c.pull.n_allow_cidrs, 1);
        assert_int_equal(c.push.n_allow_cidrs, 0);

        /* CONFIG_MAX_CIDRS exactly. */
        {
                char text[2048] = "[push]\nallow_cidrs = ";
                for (int i = 0; i < CONFIG_MAX_CIDRS; i++)
                        (void)snprintf(text + strlen(text), sizeof(text) - strlen(text), "10.%d.0.0/16%s", i,
                                       i % 8 == 7 ? "\n  " : " ");
                load_ok(&c, text);
                assert_int_equal(c.push.n_allow_cidrs, CONFIG_MAX_CIDRS);
                assert_cidr(&c.push.allow_cidrs[31], "10.31.0.0", 16);
        }
}

/* [proxy] trusted_proxies and [status] allow_cidrs: CIDR lists, empty by
 * default; the status listener may then listen beyond loopback. */
static void test_cidr_list_forms(void **state) {
        _cleanup_config_ Config c;
        _cleanup_free_ char *error = NULL;

        (void)state;
        defaults(&c);
        assert_int_equal(c.proxy.trusted_proxies.n, 0);
        assert_int_equal(c.status_allow_cidrs.n, 0);
        load_ok(&c, "[tls]\nserver_names = registry.example.com\n"
                    "[proxy]\ntrusted_proxies = 198.18.0.7, 2001:db8::5/127\n"
                    "[status]\nlisten = 0.0.0.0:9443\nallow_cidrs = 198.18.0.0/15\n");
        assert_int_equal(c.proxy.trusted_proxies.n, 2);
        assert_cidr(&c.proxy.trusted_proxies.cidr[0], "198.18.0.7", 32);
        assert_cidr(&c.proxy.trusted_proxies.cidr[1], "2001:db8::4", 127);
        assert_int_equal(c.status_allow_cidrs.n, 1);
        assert_cidr(&c.status_allow_cidrs.cidr[0], "198.18.0.0", 15);
        assert_int_equal(config_validate(&c, NAME, &error), 0);
        /* Emptied (a non-loopback listen is then refused again: the
         * error rows). */
        load_ok(&c, "[proxy]\ntrusted_proxies =\n[status]\nlisten = 127.0.0.1:9443\nallow_cidrs =\n");
        assert_int_equal(c.proxy.trusted_proxies.n, 0);
        assert_int_equal(c.status_allow_cidrs.n, 0);
        assert_int_equal(c.proxy.trusted_proxies.cidr[0].prefix, 0); /* zeroed: reload compares lists whole */

        /* IPv4-mapped entries are their IPv4 networks (a dual-stack
         * listener's IPv4 clients arrive mapped and are matched as IPv4);
         * the narrowest trusted_proxies take, and any status network. */
        load_ok(&c, "[proxy]\ntrusted_proxies = ::ffff:10.0.0.1/128, ::FFFF:198.18.7.9/112 10.0.0.0/8\n"
                    "  2001:db8::/32, ::ffff:0:0/95\n"
                    "[status]\nlisten = 0.0.0.0:9443\nallow_cidrs = ::ffff:198.18.0.0/111, 0.0.0.0/0, ::/0\n"
                    "[pull]\nallow_cidrs = ::ffff:192.0.2.0/120\n");
        assert_int_equal(c.proxy.trusted_proxies.n, 5);
        assert_cidr(&c.proxy.trusted_proxies.cidr[0], "10.0.0.1", 32);
        assert_cidr(&c.proxy.trusted_proxies.cidr[1], "198.18.0.0", 16);
        assert_cidr(&c.proxy.trusted_proxies.cidr[2], "10.0.0.0", 8);
        assert_cidr(&c.proxy.trusted_proxies.cidr[3], "2001:db8::", 32);
        assert_cidr(&c.proxy.trusted_proxies.cidr[4], "::fffe:0:0", 95); /* not all mapped: stays IPv6 */
        assert_int_equal(c.status_allow_cidrs.n, 3);
        assert_cidr(&c.status_allow_cidrs.cidr[0], "198.18.0.0", 15);
        assert_cidr(&c.status_allow_cidrs.cidr[1], "0.0.0.0", 0);
        assert_cidr(&c.status_allow_cidrs.cidr[2], "::", 0);
        assert_int_equal(c.pull.n_allow_cidrs, 1);
        assert_cidr(&c.pull.allow_cidrs[0], "192.0.2.0", 24);
        assert_int_equal(config_validate(&c, NAME, &error), 0);
}

/* [scopes]: canonical text, continuation lines, only the file's own. */
static void test_scopes_forms(void **state) {
        _cleanup_config_ Config c;

        (void)state;
        defaults(&c);
        assert_null(c.push_scopes);
        load_ok(&c, "[scopes]\n"
                    "build-01 = app/*, tools/*   ; CI\n"
                    "admin = *\n"
                    "    extra ; a continuation adds to admin\n"
                    "[push]\nhtpasswd = /etc/registry/htpasswd\n");
        assert_string_equal(c.push_scopes, "build-01=app/*,tools/*\nadmin=*,extra\n");
        assert_string_equal(c.push_htpasswd, "/etc/registry/htpasswd");
        /* A reload without the section: no scopes, not the old ones. */
        load_ok(&c, "[push]\nrate = 5r/s\n");
        assert_null(c.push_scopes);
}

/* What the INI layer tolerates: CRLF, a BOM, ':' for '=', blank and
 * comment lines everywhere, indented keys right after a header, empty
 * sections, a section given twice. */
static void test_syntax_forms(void **state) {
        _cleanup_config_ Config c;

        (void)state;
        defaults(&c);
        load_ok(&c, "\xEF\xBB\xBF; BOM first\r\n"
                    "[tls]   ; comment\r\n"
                    "  server_names : a.example\r\n"
                    "# comment\r\n"
                    "\r\n"
                    "[host]\r\n"
                    "[tls] # another comment\r\n"
                    "ca_days=100\r\n"
                    "cert_days = 10 ; inline\r\n"
                    "[proxy]\n"
                    "[signing]");
        assert_int_equal(c.n_server_names, 1);
        assert_string_equal(c.server_names[0], "a.example");
        assert_int_equal(c.ca_days, 100);
        assert_int_equal(c.cert_days, 10);

        /* 198 characters is the longest line libinih takes. */
        {
                char text[256] = "[tls]\n#";
                memset(text + strlen(text), 'x', 197);
                strcat(text, "\nca_days = 101\n");
                load_ok(&c, text);
                assert_int_equal(c.ca_days, 101);
        }

        /* An empty file changes nothing. */
        load_ok(&c, "");
        assert_int_equal(c.ca_days, 101);
}

/* ------------------------------------------------------------------------
 * Loading twice, failures, files
 */

static void test_load_twice(void **state) {
        _cleanup_config_ Config c;

        (void)state;
        defaults(&c);
        load_ok(&c, full_file);
        load_ok(&c, "[host]\nservice_user = other\n[registry]\nimage = reg@sha256:" DIGEST
                    "\nlisten = unix:/run/r.sock\n[status]\nlisten = 127.0.0.1:1\n[tls]\nserver_names = "
                    "x.example\n");
        assert_string_equal(c.service_user, "other");
        assert_string_equal(c.proxy_user, "rp");
        assert_string_equal(c.image, "docker.io/library/reg@sha256:" DIGEST);
        assert_int_equal(c.listen.kind, LISTEN_UNIX);
        assert_string_equal(c.listen.path, "/run/r.sock");
        assert_null(c.listen.host);
        assert_int_equal(c.n_server_names, 1);
        /* allow_remote from the first load still holds. */
        assert_true(c.status_allow_remote);
        assert_int_equal(c.cert_days, 90);

        /* A setting in one file, the one that permits it in another. */
        load_ok(&c, "[status]\nallow_remote = yes\n");
        load_ok(&c, "[status]\nlisten = 9443\n");
        assert_null(c.status_listen.host);
}

static void test_failed_load_keeps_config(void **state) {
        _cleanup_config_ Config c, d;
        _cleanup_free_ char *error = NULL;

        (void)state;
        defaults(&c);
        defaults(&d);
        load_ok(&c, full_file);
        load_ok(&d, full_file);
        /* Everything up to the bad line parsed, then thrown away. */
        assert_int_equal(
                config_load_string(&c,
                                   "[host]\nservice_user = someone\n[tls]\nserver_names = a.example\n"
                                   "[registry]\nlisten = unix:/x\nimage = registry:2\n",
                                   NAME, &error),
                -EINVAL);
        assert_non_null(strstr(error, NAME ":7: [registry] image"));
        assert_config_equal(&c, &d);

        /* ret_error may be NULL. */
        assert_int_equal(config_load_string(&c, "[nope]\n", NAME, NULL), -EINVAL);
        assert_config_equal(&c, &d);
}

static void test_missing_file(void **state) {
        _cleanup_config_ Config c, d;
        _cleanup_free_ char *error = NULL;

        (void)state;
        defaults(&c);
        defaults(&d);
        assert_int_equal(config_load(&c, "/nonexistent/regvisor.conf", &error), -ENOENT);
        assert_non_null(error);
        assert_non_null(strstr(error, "/nonexistent/regvisor.conf"));
        assert_config_equal(&c, &d);
        assert_int_equal(config_load(&c, "/nonexistent/regvisor.conf", NULL), -ENOENT);
}

static void test_directory(void **state) {
        _cleanup_config_ Config c;
        _cleanup_free_ char *error = NULL;

        (void)state;
        defaults(&c);
        assert_int_equal(config_load(&c, "/", &error), -EISDIR);
        assert_non_null(error);
}

static void test_nul_byte(void **state) {
        static const char data[] = "[tls]\nserver_names = a.example\n# x\0y\n";
        _cleanup_config_ Config c;
        _cleanup_free_ char *path = NULL, *error = NULL;

        (void)state;
        path = write_temp(data, sizeof(data) - 1);
        defaults(&c);
        assert_int_equal(config_load(&c, path, &error), -EINVAL);
        assert_non_null(error);
        assert_non_null(strstr(error, ":3: "));
        assert_non_null(strstr(error, path));
        assert_int_equal(c.n_server_names, 0);
        assert_int_equal(unlink(path), 0);
}

static void test_file_error_names_file(void **state) {
        static const char data[] =
                "[tls]\nserver_names = a.example\n\n[registry]\nimage = registry:latest\n";
        _cleanup_config_ Config c;
        _cleanup_free_ char *path = NULL, *error = NULL, *want = NULL;

        (void)state;
        path = write_temp(data, sizeof(data) - 1);
        defaults(&c);
        assert_int_equal(config_load(&c, path, &error), -EINVAL);
        assert_true(asprintf(&want,
                             "%s:5: [registry] image: image must be pinned by digest (NAME@sha256:...), "
                             "got 'registry:latest'",
                             path) > 0);
        assert_string_equal(error, want);
        assert_int_equal(unlink(path), 0);
}

static void test_validate_cross_checks(void **state) {
        _cleanup_config_ Config c;
        _cleanup_free_ char *error = NULL;

        (void)state;
        defaults(&c);
        load_ok(&c, "[tls]\nserver_names = a.example\n");
        assert_int_equal(config_validate(&c, NAME, NULL), 0);

        /* config_validate() repeats the cross-key checks for a Config made
         * by other means, without line numbers. */
        free(c.proxy_user);
        c.proxy_user = strdup("ci-svc");
        assert_non_null(c.proxy_user);
        assert_int_equal(config_validate(&c, NAME, &error), -EINVAL);
        assert_non_null(strstr(error, NAME ": [host] service_user and proxy_user"));
}

static void test_done_twice(void **state) {
        Config c;

        (void)state;
        defaults(&c);
        config_done(&c);
        assert_null(c.image);
        assert_int_equal(c.n_server_names, 0);
        config_done(&c);
        config_done(NULL);
}

/* ------------------------------------------------------------------------
 * Error paths: one row each. The message must start "test.conf:LINE: ",
 * name the key (or section) and say what was expected.
 */

typedef struct {
        const char *name;
        const char *text;
        unsigned line;
        const char *key;  /* "[section] key", or what names the culprit */
        const char *what; /* part of what was expected */
} ErrorCase;

#define LONG_PATH                                                                                           \
        "/run/"                                                                                             \
        "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"   \
        "aaaaaaaaaaaa"
/* 33 names on one line, and over three. */
#define NAMES_33 "a b c d e f g h i j k l m n o p q r s t u v w x y z aa ab ac ad ae af ag"
#define NAMES_33_LINES                                                                                      \
        "n0.x n1.x n2.x n3.x n4.x n5.x n6.x n7.x n8.x n9.x n10.x n11.x n12.x n13.x n14.x n15.x\n"           \
        "  n16.x n17.x n18.x n19.x n20.x n21.x n22.x n23.x n24.x n25.x n26.x n27.x n28.x n29.x n30.x "      \
        "n31.x\n"                                                                                           \
        "  n32.x"
/* 33 networks on one line (duplicates are harmless), and over three. */
#define CIDRS_33                                                                                            \
        "::1 ::1 ::1 ::1 ::1 ::1 ::1 ::1 ::1 ::1 ::1 ::1 ::1 ::1 ::1 ::1 ::1 ::1 ::1 ::1 ::1 ::1 ::1 ::1 "  \
        "::1 ::1 ::1 ::1 ::1 ::1 ::1 ::1 ::1"
#define CIDRS_16                                                                                            \
        "10.0.0.0/16 10.1.0.0/16 10.2.0.0/16 10.3.0.0/16 10.4.0.0/16 10.5.0.0/16 10.6.0.0/16 10.7.0.0/16 "  \
        "10.8.0.0/16 10.9.0.0/16 10.10.0.0/16 10.11.0.0/16 10.12.0.0/16 10.13.0.0/16 10.14.0.0/16"
/* 199 characters: one more than libinih's 200-byte buffer holds with "\n". */
#define LINE_199                                                                                            \
        "# 45678901234567890123456789012345678901234567890123456789012345678901234567890123456789012345678" \
        "9012345678901234567890123456789012345678901234567890123456789012345678901234567890123456789012345" \
        "6"                                                                                                 \
        "7890"

static const ErrorCase error_cases[] = {
        /* The INI layer */
        {"unknown key", "[tls]\nserver_names = a.example\nfoo = 1\n", 3,
         "unknown key 'foo' in section [tls]", "foo"},
        {"key of another section", "[pull]\n\nmax_body = 1G\n", 3,
         "unknown key 'max_body' in section [pull]", "max_body"},
        {"unknown key, case", "[tls]\nServer_Names = a.example\n", 2, "'Server_Names'", "unknown key"},
        {"unknown section", "# c\n[tls]\nserver_names = a.example\n\n[nope]\nx = 1\n", 5, "[nope]",
         "unknown section"},
        {"unknown empty section", "[tls]\n[TLS]\n", 2, "[TLS]", "unknown section"},
        {"unknown section with spaces", "[ tls ]\n", 1, "[ tls ]", "unknown section"},
        {"key outside section", "\n; comment\nimage = x\n[registry]\n", 3, "key 'image'",
         "outside of any section"},
        {"duplicate key", "[tls]\nca_days = 10\n\nca_days = 20\n", 4, "[tls] ca_days",
         "duplicate key (first set on line 2)"},
        {"duplicate key in repeated section", "[tls]\nca_days = 10\n[host]\n[tls]\nca_days = 20\n", 5,
         "[tls] ca_days", "duplicate key"},
        {"duplicate list key", "[push]\nallow_cidrs = 10.0.0.0/8\nallow_cidrs = 192.0.2.0/24\n", 3,
         "[push] allow_cidrs", "duplicate key"},
        {"line without =", "[tls]\nserver_names\n", 2, "'server_names'", "expected 'key = value'"},
        {"= only in a comment", "[tls]\nca_days ; = 5\n", 2, "'ca_days ; = 5'", "expected 'key = value'"},
        {"unclosed section", "[tls]\nca_days = 1\n[host\n", 3, "'[host'", "expected '[section]'"},
        {"text after section", "[tls] server_names = a\n", 1, "'[tls] server_names = a'",
         "expected '[section]' alone"},
        {"line too long", "[tls]\n" LINE_199 "\n", 2, "line too long", "198"},
        {"continuation of a scalar", "[registry]\nstorage = /srv\n  /more\n", 3, "[registry] storage",
         "continues the value of the key above"},
        {"indented second key", "[tls]\n  ca_days = 100\n  cert_days = 10\n", 3, "[tls] ca_days",
         "expected no indentation, got 'cert_days = 10'"},

        /* [host] */
        {"user uppercase", "[host]\nservice_user = CI\n", 2, "[host] service_user", "expected a user name"},
        {"user digit first", "[host]\nproxy_user = 1proxy\n", 2, "[host] proxy_user",
         "expected a user name"},
        {"user with space", "[host]\nproxy_user = re proxy\n", 2, "[host] proxy_user",
         "expected a user name"},
        {"user empty", "[host]\nservice_user =\n", 2, "[host] service_user", "expected a user name"},
        {"user too long", "[host]\nservice_user = abcdefghijklmnopqrstuvwxyz0123456\n", 2,
         "[host] service_user", "at most 32"},
        {"user root", "[host]\nproxy_user = root\n", 2, "[host] proxy_user", "not root"},
        {"same users", "[host]\nservice_user = svc\nproxy_user = svc\n", 3,
         "[host] service_user and proxy_user", "two different users"},
        {"same users, default proxy", "[host]\n\nservice_user = registry-proxy\n", 3,
         "[host] service_user and proxy_user", "two different users"},
        {"subid no end", "[host]\nsubid_range = 100000\n", 2, "[host] subid_range", "START-END"},
        {"subid reversed", "[host]\nsubid_range = 165535-100000\n", 2, "[host] subid_range", "START-END"},
        {"subid empty range", "[host]\nsubid_range = 100000-100000\n", 2, "[host] subid_range", "START-END"},
        {"subid root", "[host]\nsubid_range = 0-65535\n", 2, "[host] subid_range", "START-END"},
        {"subid low", "[host]\nsubid_range = 99-1000\n", 2, "[host] subid_range", "100 <= START"},
        {"subid high", "[host]\nsubid_range = 100000-4294967295\n", 2, "[host] subid_range", "4294967294"},
        {"subid overflow", "[host]\nsubid_range = 100000-99999999999999999999999\n", 2, "[host] subid_range",
         "START-END"},
        {"subid words", "[host]\nsubid_range = a-b\n", 2, "[host] subid_range", "START-END"},
        {"subid negative", "[host]\nsubid_range = -5-10\n", 2, "[host] subid_range", "START-END"},

        /* [registry] image */
        {"image tag only", "[registry]\nimage = docker.io/library/registry:2\n", 2, "[registry] image",
         "image must be pinned by digest (NAME@sha256:...), got 'docker.io/library/registry:2'"},
        {"image bare name", "[registry]\nimage = registry\n", 2, "[registry] image",
         "image must be pinned by digest"},
        {"digest 63",
         "[registry]\nimage = "
         "registry@sha256:8be26f81ffea54106bae012c6f349df70f4d5e7e2ec01b143c46e2c03b9e551\n",
         2, "[registry] image", "64 lowercase hex"},
        {"digest 65", "[registry]\nimage = registry@sha256:" DIGEST "0\n", 2, "[registry] image",
         "64 lowercase hex"},
        {"digest uppercase",
         "[registry]\nimage = "
         "registry@sha256:8BE26F81FFEA54106BAE012C6F349DF70F4D5E7E2EC01B143C46E2C03B9E551D\n",
         2, "[registry] image", "64 lowercase hex"},
        {"digest not hex",
         "[registry]\nimage = registry@sha256:"
         "g" DIGEST "\n",
         2, "[registry] image", "64 lowercase hex"},
        {"digest sha512", "[registry]\nimage = registry@sha512:" DIGEST DIGEST "\n", 2, "[registry] image",
         "sha256"},
        {"digest empty", "[registry]\nimage = registry@\n", 2, "[registry] image", "sha256"},
        {"image uppercase path", "[registry]\nimage = Registry@sha256:" DIGEST "\n", 2, "[registry] image",
         "expected an image reference"},
        {"image empty name", "[registry]\nimage = @sha256:" DIGEST "\n", 2, "[registry] image",
         "expected an image reference"},
        {"image double slash", "[registry]\nimage = quay.io//reg@sha256:" DIGEST "\n", 2, "[registry] image",
         "expected an image reference"},
        {"image bad separator", "[registry]\nimage = a..b@sha256:" DIGEST "\n", 2, "[registry] image",
         "expected an image reference"},
        {"image trailing separator", "[registry]\nimage = a-@sha256:" DIGEST "\n", 2, "[registry] image",
         "expected an image reference"},
        {"image triple underscore", "[registry]\nimage = a___b@sha256:" DIGEST "\n", 2, "[registry] image",
         "expected an image reference"},
        {"image bad tag", "[registry]\nimage = registry:-x@sha256:" DIGEST "\n", 2, "[registry] image",
         "expected an image reference"},
        {"image empty tag", "[registry]\nimage = registry:@sha256:" DIGEST "\n", 2, "[registry] image",
         "expected an image reference"},
        {"image bad port", "[registry]\nimage = quay.io:0/reg@sha256:" DIGEST "\n", 2, "[registry] image",
         "expected an image reference"},
        {"image bad domain", "[registry]\nimage = -quay.io/reg@sha256:" DIGEST "\n", 2, "[registry] image",
         "expected an image reference"},
        {"image underscore in domain", "[registry]\nimage = a__b.c/x@sha256:" DIGEST "\n", 2,
         "[registry] image", "expected an image reference"},
        {"image bad ipv6 domain", "[registry]\nimage = [zz::1]:5000/reg@sha256:" DIGEST "\n", 2,
         "[registry] image", "expected an image reference"},

        /* [registry] listen */
        {"listen tcp any", "[registry]\nlisten = tcp:0.0.0.0:5000\n", 2, "[registry] listen", "loopback"},
        {"listen tcp private", "[registry]\nlisten = tcp:10.0.0.1:5000\n", 2, "[registry] listen",
         "no TLS or authentication"},
        {"listen tcp v6 any", "[registry]\nlisten = tcp:[::]:5000\n", 2, "[registry] listen", "loopback"},
        {"listen tcp name", "[registry]\nlisten = tcp:localhost:5000\n", 2, "[registry] listen", "loopback"},
        {"listen tcp v6 unbracketed", "[registry]\nlisten = tcp:::1:5000\n", 2, "[registry] listen",
         "brackets"},
        {"listen tcp no port", "[registry]\nlisten = tcp:127.0.0.1\n", 2, "[registry] listen",
         "tcp:127.0.0.1:PORT"},
        {"listen tcp port 0", "[registry]\nlisten = tcp:127.0.0.1:0\n", 2, "[registry] listen",
         "1 to 65535"},
        {"listen tcp port big", "[registry]\nlisten = tcp:127.0.0.1:65536\n", 2, "[registry] listen",
         "1 to 65535"},
        {"listen unix relative", "[registry]\nlisten = unix:run/registry.sock\n", 2, "[registry] listen",
         "absolute"},
        {"listen unix empty", "[registry]\nlisten = unix:\n", 2, "[registry] listen", "absolute"},
        {"listen unix too long", "[registry]\nlisten = unix:" LONG_PATH "\n", 2, "[registry] listen",
         "shorter than 108"},
        {"listen unix dotdot", "[registry]\nlisten = unix:/run/../etc/x.sock\n", 2, "[registry] listen",
         "'..'"},
        {"listen other scheme", "[registry]\nlisten = 127.0.0.1:5000\n", 2, "[registry] listen",
         "expected unix:/ABSOLUTE/PATH or tcp:127.0.0.1:PORT"},
        {"listen clash registry", "[registry]\nlisten = tcp:127.0.0.1:9443\n", 2, "[registry] listen",
         "[status] listen"},

        /* Sizes, percentages */
        {"size suffix", "[registry]\nmemory_max = 1X\n", 2, "[registry] memory_max", "K, M, G or T"},
        {"size two suffixes", "[registry]\nmemory_max = 1GB\n", 2, "[registry] memory_max", "K, M, G or T"},
        {"size empty", "[registry]\nmemory_max =\n", 2, "[registry] memory_max", "expected a size"},
        {"size negative", "[registry]\nmemory_max = -1G\n", 2, "[registry] memory_max", "expected a size"},
        {"size fraction", "[registry]\nmemory_max = 1.5G\n", 2, "[registry] memory_max", "expected a size"},
        {"size below minimum", "[registry]\nmemory_max = 1\n", 2, "[registry] memory_max", "at least 16M"},
        {"size overflow", "[registry]\nmemory_max = 99999999999999999999\n", 2, "[registry] memory_max",
         "expected a size"},
        {"size overflow suffix", "[registry]\nmemory_max = 17179869184T\n", 2, "[registry] memory_max",
         "expected a size"},
        {"max_body zero", "[proxy]\nmax_body = 0\n", 2, "[proxy] max_body", "at least 1M"},
        {"max_body space", "[proxy]\nmax_body = 2 G\n", 2, "[proxy] max_body", "expected a size"},
        {"cpu zero", "[registry]\ncpu_quota = 0%\n", 2, "[registry] cpu_quota", "1% to 10000%"},
        {"cpu too much", "[registry]\ncpu_quota = 10001%\n", 2, "[registry] cpu_quota", "1% to 10000%"},
        {"cpu space", "[registry]\ncpu_quota = 50 %\n", 2, "[registry] cpu_quota", "expected N%"},
        {"cpu words", "[registry]\ncpu_quota = half\n", 2, "[registry] cpu_quota", "expected N%"},

        /* [tls] */
        {"tls dir relative", "[tls]\ndir = certs\n", 2, "[tls] dir", "absolute"},
        {"tls dir root", "[tls]\ndir = /\n", 2, "[tls] dir", "not / itself"},
        {"tls dir empty", "[tls]\ndir =\n", 2, "[tls] dir", "absolute"},
        {"storage word", "[registry]\nstorage = ceph\n", 2, "[registry] storage", "absolute path, swift or s3"},
        {"swift no secret", "[registry]\nstorage = swift\n[store]\nauth_url = http://192.0.2.1:8080/auth/v1.0\n",
         2, "http_secret_file", "same secret file on every host"},
        {"swift no credentials", "[registry]\nstorage = swift\nhttp_secret_file = /etc/s\n", 2,
         "[store] credentials_file", "root-only"},
        {"swift no auth_url", "[registry]\nstorage = swift\nhttp_secret_file = /etc/s\n[store]\n"
         "credentials_file = /etc/c\n", 2, "[store] auth_url", "expected"},
        {"s3 no endpoint", "[registry]\nstorage = s3\nhttp_secret_file = /etc/s\n[store]\n"
         "credentials_file = /etc/c\n", 2, "[store] endpoint", "expected"},
        {"swift local signatures", "[registry]\nstorage = swift\nhttp_secret_file = /etc/s\n[store]\n"
         "credentials_file = /etc/c\nauth_url = http://192.0.2.1:8080/auth/v1.0\n", 2, "[signing] store",
         "served by every host"},
        {"store url name", "[store]\nauth_url = http://swift.example:8080/auth\n", 2, "[store] auth_url",
         "an IP address, not a name"},
        {"store url scheme", "[store]\nendpoint = ftp://192.0.2.1/\n", 2, "[store] endpoint", "http://IP"},
        {"store url v6", "[store]\nendpoint = http://[2001:db8::1]:80/\n", 2, "[store] endpoint", "no IPv6"},
        {"store url v6 bare", "[store]\nendpoint = http://2001:db8::1/\n", 2, "[store] endpoint", "http://IP"},
        {"store url quote", "[store]\nendpoint = http://192.0.2.1/\"x\n", 2, "[store] endpoint", "http://IP"},
        {"store url port", "[store]\nendpoint = http://192.0.2.1:99999/\n", 2, "[store] endpoint", "http://IP"},
        {"cache http", "[registry]\ncache = http://192.0.2.1:6379\n", 2, "[registry] cache", "redis://IP"},
        {"cache path", "[registry]\ncache = redis://192.0.2.1:6379/1\n", 2, "[registry] cache", "redis://IP"},
        {"container quote", "[store]\ncontainer = a\"b\n", 2, "[store] container", "[A-Za-z0-9._-]"},
        {"auth_version 4", "[store]\nauth_version = 4\n", 2, "[store] auth_version", "1 to 3"},
        {"storage dotdot", "[registry]\nstorage = /var/lib/../../etc\n", 2, "[registry] storage", "'..'"},
        {"storage dot", "[registry]\nstorage = /var/./lib\n", 2, "[registry] storage", "'.'"},
        {"storage colon", "[registry]\nstorage = /var/lib/reg:z\n", 2, "[registry] storage",
         "letters, digits"},
        {"storage space", "[registry]\nstorage = /var/lib/my registry\n", 2, "[registry] storage",
         "letters, digits"},
        {"image_archive relative", "[registry]\nimage_archive = registry.tar\n", 2,
         "[registry] image_archive", "or nothing"},
        {"sigstore_key relative", "[signing]\nsigstore_key = cosign.pub\n", 2, "[signing] sigstore_key",
         "absolute"},
        {"sigstore_key empty", "[signing]\nsigstore_key =\n", 2, "[signing] sigstore_key", "absolute"},
        {"signing mode", "[signing]\nmode = cosign\n", 2, "[signing] mode", "gpg or sigstore"},
        {"signing mode empty", "[signing]\nmode =\n", 2, "[signing] mode", "gpg or sigstore"},
        {"signing store", "[signing]\nstore = s3\n", 2, "[signing] store", "local or registry"},
        {"signing keys relative", "[signing]\nkeys = signers.asc\n", 2, "[signing] keys", "or nothing"},
        {"key_type", "[tls]\nkey_type = rsa-2048\n", 2, "[tls] key_type", "ec-p256 or rsa-4096"},
        {"key_type empty", "[tls]\nkey_type =\n", 2, "[tls] key_type", "ec-p256 or rsa-4096"},
        {"ca_days zero", "[tls]\nca_days = 0\n", 2, "[tls] ca_days", "1 to 36500"},
        {"ca_days big", "[tls]\nca_days = 36501\n", 2, "[tls] ca_days", "1 to 36500"},
        {"cert_days words", "[tls]\ncert_days = a year\n", 2, "[tls] cert_days", "whole number"},
        {"cert_days negative", "[tls]\ncert_days = -1\n", 2, "[tls] cert_days", "whole number"},
        {"cert outlives ca", "[tls]\ncert_days = 3651\n", 2, "[tls] cert_days", "at most ca_days (3650)"},
        {"storage crit above warn", "[health]\nstorage_crit = 30%\n", 2, "[health] storage_crit",
         "at most storage_warn (20%)"},
        {"cert crit above warn", "[health]\ncert_warn_days = 5\n", 2, "[health] cert_crit_days",
         "at most cert_warn_days (5)"},
        {"storage warn not a percent", "[health]\nstorage_warn = lots\n", 2, "[health] storage_warn", "expected"},
        {"ca shorter than cert", "[tls]\ncert_days = 30\n\nca_days = 29\n", 4, "[tls] cert_days",
         "at most ca_days (29)"},
        {"organization empty", "[tls]\norganization =\n", 2, "[tls] organization", "1 to 64 printable"},
        {"organization long",
         "[tls]\norganization = 01234567890123456789012345678901234567890123456789012345678901234\n", 2,
         "[tls] organization", "1 to 64 printable"},
        {"organization control", "[tls]\norganization = a\x01z\n", 2, "[tls] organization", "got 'a\\x01z'"},
        {"organization utf8", "[tls]\norganization = Gr\xc3\xbcn\n", 2, "[tls] organization",
         "printable ASCII"},

        /* [tls] server_names */
        {"name wildcard", "[tls]\nserver_names = a.example, *.example.com\n", 2, "[tls] server_names",
         "no wildcard"},
        {"name leading hyphen", "[tls]\nserver_names = -a.example\n", 2, "[tls] server_names",
         "'-a.example'"},
        {"name trailing hyphen", "[tls]\nserver_names = a-.example\n", 2, "[tls] server_names",
         "is neither"},
        {"name empty label", "[tls]\nserver_names = a..example\n", 2, "[tls] server_names", "is neither"},
        {"name trailing dot", "[tls]\nserver_names = a.example.\n", 2, "[tls] server_names", "is neither"},
        {"name underscore", "[tls]\nserver_names = my_host.example\n", 2, "[tls] server_names",
         "is neither"},
        {"name bad ipv4", "[tls]\nserver_names = 192.0.2.300\n", 2, "[tls] server_names", "'192.0.2.300'"},
        {"name ipv4 leading zero", "[tls]\nserver_names = 192.0.2.010\n", 2, "[tls] server_names",
         "is neither"},
        {"name ipv6 zone", "[tls]\nserver_names = fe80::1%eth0\n", 2, "[tls] server_names", "is neither"},
        {"name bracketed ipv4", "[tls]\nserver_names = [192.0.2.1]\n", 2, "[tls] server_names", "IPv6"},
        {"name url", "[tls]\nserver_names = https://registry.example\n", 2, "[tls] server_names",
         "is neither"},
        {"name label 64",
         "[tls]\nserver_names = a123456789012345678901234567890123456789012345678901234567890123.example\n",
         2, "[tls] server_names", "is neither"},
        {"name too many", "[tls]\nserver_names = " NAMES_33 "\n", 2, "[tls] server_names",
         "at most 32 names"},
        {"name too many over lines", "[tls]\nserver_names = " NAMES_33_LINES "\n", 4, "[tls] server_names",
         "at most 32"},
        {"name duplicate", "[tls]\nserver_names = a.example, b.example, A.Example\n", 2,
         "[tls] server_names", "'a.example' is listed twice"},
        {"name duplicate ipv6", "[tls]\nserver_names = 2001:db8::1 [2001:DB8:0:0::1]\n", 2,
         "[tls] server_names", "'2001:db8::1' is listed twice"},
        {"name duplicate on continuation", "[tls]\nserver_names = a.example\n  b.example\n\n  a.example\n",
         5, "[tls] server_names", "listed twice"},

        /* [pull], [push] */
        {"port listen zero", "[pull]\nlisten = 0\n", 2, "[pull] listen", "PORT, IPV4:PORT or [IPV6]:PORT"},
        {"port listen big", "[push]\nlisten = 65536\n", 2, "[push] listen", "1 to 65535"},
        {"port listen name", "[pull]\nlisten = registry.example:443\n", 2, "[pull] listen", "IPV4:PORT"},
        {"port listen v6 bare", "[pull]\nlisten = ::1:443\n", 2, "[pull] listen", "[IPV6]:PORT"},
        {"port listen v6 no colon", "[pull]\nlisten = [::1]443\n", 2, "[pull] listen", "[IPV6]:PORT"},
        {"port listen no port", "[push]\nlisten = 192.0.2.1\n", 2, "[push] listen", "IPV4:PORT"},
        {"port listen bracketed v4", "[push]\nlisten = [192.0.2.1]:443\n", 2, "[push] listen", "IPV4:PORT"},
        {"port listen empty host", "[push]\nlisten = :443\n", 2, "[push] listen", "IPV4:PORT"},
        {"port listen clash", "[push]\nlisten = 443\n", 2, "[push] listen", "[pull] listen '443'"},
        {"port listen clash wildcard", "[pull]\nlisten = 0.0.0.0:4443\n", 2, "[pull] listen",
         "[push] listen '4443'"},
        {"port listen clash v6 wildcard", "[push]\nlisten = [::]:443\n", 2, "[push] listen",
         "expected different ports"},
        {"rate per hour", "[pull]\nrate = 10/h\n", 2, "[pull] rate", "N/s or N/m"},
        {"rate no unit", "[pull]\nrate = 10\n", 2, "[pull] rate", "N/s or N/m"},
        {"rate negative", "[push]\nrate = -1/s\n", 2, "[push] rate", "N/s or N/m"},
        {"rate words", "[push]\nrate = fast\n", 2, "[push] rate", "or off"},
        {"rate too high", "[push]\nrate = 1000001r/s\n", 2, "[push] rate", "1 to 1000000"},
        {"rate fraction", "[push]\nrate = 0.5r/s\n", 2, "[push] rate", "N/s or N/m"},
        {"rate zero per second", "[push]\nrate = 0r/s\n", 2, "[push] rate", "N/s or N/m"},
        {"burst negative", "[pull]\nburst = -1\n", 2, "[pull] burst", "0 to 1000000"},
        {"burst exponent", "[pull]\nburst = 1e3\n", 2, "[pull] burst", "whole number"},
        {"burst too big", "[push]\nburst = 1000001\n", 2, "[push] burst", "0 to 1000000"},
        {"conn_per_ip words", "[push]\nconn_per_ip = many\n", 2, "[push] conn_per_ip", "whole number"},
        {"conn_per_ip empty", "[pull]\nconn_per_ip =\n", 2, "[pull] conn_per_ip", "whole number"},
        {"cidr prefix 33", "[push]\nallow_cidrs = 10.0.0.0/33\n", 2, "[push] allow_cidrs", "'10.0.0.0/33'"},
        {"cidr prefix 129", "[push]\nallow_cidrs = 10.0.0.0/8, 2001:db8::/129\n", 2, "[push] allow_cidrs",
         "'2001:db8::/129'"},
        {"cidr short address", "[push]\nallow_cidrs = 10.0.0/8\n", 2, "[push] allow_cidrs",
         "ADDRESS[/PREFIX]"},
        {"cidr name", "[pull]\nallow_cidrs = example.com\n", 2, "[pull] allow_cidrs", "ADDRESS[/PREFIX]"},
        {"cidr empty prefix", "[pull]\nallow_cidrs = 10.0.0.0/\n", 2, "[pull] allow_cidrs",
         "ADDRESS[/PREFIX]"},
        {"cidr negative prefix", "[pull]\nallow_cidrs = 10.0.0.0/-8\n", 2, "[pull] allow_cidrs",
         "ADDRESS[/PREFIX]"},
        {"cidr range", "[pull]\nallow_cidrs = 10.0.0.1-10.0.0.9\n", 2, "[pull] allow_cidrs",
         "ADDRESS[/PREFIX]"},
        /* [scopes]: one line per client certificate name */
        {"scope pattern", "[scopes]\nbuild-01 = app/*/x\n", 2, "[scopes] build-01", "NAME/*"},
        {"scope upper case", "[scopes]\nb = App/*\n", 2, "[scopes] b", "'App/*'"},
        {"scope dot-dot", "[scopes]\nb = app/../x\n", 2, "[scopes] b", "distribution grammar"},
        {"scope empty", "[scopes]\nb =\n", 2, "[scopes] b", "at least one"},
        {"scope client name", "[scopes]\nBuild = app/*\n", 2, "[scopes] Build", "client name"},
        {"scope twice", "[scopes]\nb = app/*\nc = x\nb = y\n", 4, "[scopes] b", "one line per client"},
        {"cidr on continuation", "[push]\nallow_cidrs = 10.0.0.0/8\n  # comment\n  172.16.0.0/12 nope\n", 4,
         "[push] allow_cidrs", "'nope'"},
        {"cidr too many", "[push]\nallow_cidrs = " CIDRS_33 "\n", 2, "[push] allow_cidrs",
         "at most 32 networks"},
        {"cidr too many over lines",
         "[push]\nallow_cidrs = " CIDRS_16 "\n  " CIDRS_16 "\n  192.0.2.0/24 ::1 ::2\n", 4,
         "[push] allow_cidrs", "at most 32 networks"},

        /* [proxy] */
        {"duration zero", "[proxy]\nread_timeout = 0\n", 2, "[proxy] read_timeout", "from 1s to 24h"},
        {"duration unit", "[proxy]\nread_timeout = 5x\n", 2, "[proxy] read_timeout", "s, m or h suffix"},
        {"duration days", "[proxy]\nidle_timeout = 1d\n", 2, "[proxy] idle_timeout", "s, m or h suffix"},
        {"duration too long", "[proxy]\nread_timeout = 25h\n", 2, "[proxy] read_timeout", "from 1s to 24h"},
        {"duration fraction", "[proxy]\nread_timeout = 1.5s\n", 2, "[proxy] read_timeout",
         "expected a duration"},
        {"duration compound", "[proxy]\nread_timeout = 1h30m\n", 2, "[proxy] read_timeout",
         "expected a duration"},
        {"duration overflow", "[proxy]\nidle_timeout = 99999999999999999999h\n", 2, "[proxy] idle_timeout",
         "expected a duration"},
        {"header_timeout too long", "[proxy]\nheader_timeout = 2h\n", 2, "[proxy] header_timeout",
         "from 1s to 1h"},
        {"header_timeout empty", "[proxy]\nheader_timeout =\n", 2, "[proxy] header_timeout",
         "expected a duration"},
        {"workers negative", "[proxy]\nworkers = -1\n", 2, "[proxy] workers", "auto"},
        {"workers too many", "[proxy]\nworkers = 1025\n", 2, "[proxy] workers", "1 to 1024"},
        {"workers words", "[proxy]\nworkers = many\n", 2, "[proxy] workers", "auto (one per CPU)"},
        {"ipv6_prefix too wide", "[proxy]\nipv6_prefix = 31\n", 2, "[proxy] ipv6_prefix", "32 to 128"},
        {"ipv6_prefix zero", "[proxy]\nipv6_prefix = 0\n", 2, "[proxy] ipv6_prefix", "32 to 128"},
        {"ipv6_prefix too long", "[proxy]\nipv6_prefix = 129\n", 2, "[proxy] ipv6_prefix", "32 to 128"},
        {"ipv6_prefix slash", "[proxy]\nipv6_prefix = /64\n", 2, "[proxy] ipv6_prefix", "whole number"},
        {"limits_slots not a power of two", "[proxy]\nlimits_slots = 10000\n", 2, "[proxy] limits_slots",
         "power of two from 64 to 1048576"},
        {"limits_slots too small", "[proxy]\nlimits_slots = 32\n", 2, "[proxy] limits_slots", "power of two"},
        {"limits_slots too big", "[proxy]\nlimits_slots = 2097152\n", 2, "[proxy] limits_slots",
         "power of two"},
        {"limits_slots zero", "[proxy]\nlimits_slots = 0\n", 2, "[proxy] limits_slots", "power of two"},
        {"ticket_key_lifetime zero", "[proxy]\nticket_key_lifetime = 0\n", 2, "[proxy] ticket_key_lifetime",
         "from 1s to 24h"},
        {"ticket_key_lifetime 2d", "[proxy]\nticket_key_lifetime = 25h\n", 2, "[proxy] ticket_key_lifetime",
         "from 1s to 24h"},

        /* [status] */
        {"status any", "[status]\nlisten = 0.0.0.0:9443\n", 2, "[status] listen",
         "unless [status] allow_remote"},
        {"status bare port", "[status]\n\nlisten = 9443\n", 3, "[status] listen", "got '9443'"},
        {"status v6 any", "[status]\nlisten = [::]:9443\n", 2, "[status] listen", "got '[::]:9443'"},
        {"status public", "[status]\nlisten = 192.0.2.1:9443\n", 2, "[status] listen", "loopback"},
        {"status allow_remote later no", "[status]\nlisten = 0.0.0.0:9443\nallow_remote = no\n", 3,
         "[status] listen", "allow_remote = yes"},
        {"status bad listen", "[status]\nlisten = localhost:9443\n", 2, "[status] listen", "IPV4:PORT"},
        {"status allow_cidrs empty", "[status]\nlisten = 0.0.0.0:9443\nallow_cidrs =\n", 2,
         "[status] listen", "or allow_cidrs is set"},
        {"trusted_proxies bad", "[proxy]\ntrusted_proxies = 10.0.0.0/33\n", 2, "[proxy] trusted_proxies",
         "ADDRESS[/PREFIX]"},
        {"trusted_proxies everyone", "[proxy]\ntrusted_proxies = 192.0.2.1\n  ::/0\n", 2,
         "[proxy] trusted_proxies", "got '::/0'"},
        /* Each entry on its own: two halves are everyone too. */
        {"trusted_proxies halves", "[proxy]\ntrusted_proxies = 0.0.0.0/1, 128.0.0.0/1\n", 2,
         "[proxy] trusted_proxies", "got '0.0.0.0/1'"},
        {"trusted_proxies /7", "[proxy]\ntrusted_proxies = 192.0.2.1, 10.0.0.0/7\n", 2,
         "[proxy] trusted_proxies", "/8 or longer for IPv4, /32 or longer for IPv6), got '10.0.0.0/7'"},
        {"trusted_proxies IPv6 /31", "[proxy]\ntrusted_proxies = 2001:db8::/31\n", 2,
         "[proxy] trusted_proxies", "got '2001:db8::/31'"},
        {"trusted_proxies IPv6 halves", "[proxy]\ntrusted_proxies = ::/1, 8000::/1\n", 2,
         "[proxy] trusted_proxies", "got '::/1'"},
        /* Mapped: judged as the IPv4 network it is. */
        {"trusted_proxies mapped everyone", "[proxy]\ntrusted_proxies = ::ffff:0.0.0.0/96\n", 2,
         "[proxy] trusted_proxies", "got '0.0.0.0/0'"},
        {"trusted_proxies mapped /4", "[proxy]\ntrusted_proxies = ::ffff:0:0/100\n", 2,
         "[proxy] trusted_proxies", "got '0.0.0.0/4'"},
        {"bool maybe", "[status]\nallow_remote = maybe\n", 2, "[status] allow_remote", "yes, no"},
        {"bool empty", "[status]\nallow_remote =\n", 2, "[status] allow_remote", "yes, no"},
        {"bool yes please", "[status]\nallow_remote = yes please\n", 2, "[status] allow_remote", "yes, no"},
};

static void test_error_case(void **state) {
        const ErrorCase *e = *state;
        _cleanup_config_ Config c, d;
        _cleanup_free_ char *error = NULL, *prefix = NULL;
        int r;

        defaults(&c);
        defaults(&d);
        r = config_load_string(&c, e->text, NAME, &error);
        if (r != -EINVAL)
                fail_msg("%s: expected -EINVAL, got %d (%s)", e->name, r, error ?: "no message");
        assert_non_null(error);

        assert_true(asprintf(&prefix, NAME ":%u: ", e->line) > 0);
        if (!strneq(error, prefix, strlen(prefix)) || !strstr(error, e->key) || !strstr(error, e->what))
                fail_msg("%s: message '%s' lacks '%s', '%s' or '%s'", e->name, error, prefix, e->key,
                         e->what);

        /* Nothing of the failed file was kept. */
        assert_config_equal(&c, &d);
}

/* A string value is copied into its field, and where a key may be empty
 * (cache, initial_client), an empty value clears what a previous file set. */
static void test_string_values(void **state) {
        _cleanup_config_ Config c;
        _cleanup_free_ char *error = NULL;

        (void)state;
        defaults(&c);
        if (config_load_string(&c,
                               "[host]\nservice_user = svc_1\n[registry]\nstorage = swift\ncache = redis://192.0.2.7\n"
                               "http_secret_file = /etc/regvisor/secret\n"
                               "[store]\nauth_url = http://192.0.2.1:8080/auth/v1.0\ncontainer = images-1\n"
                               "credentials_file = /etc/regvisor/swift\n[signing]\nstore = registry\n"
                               "[tls]\ninitial_client = ci-1\norganization = Example Corp.\n",
                               "t", &error) < 0)
                fail_msg("%s", error);
        assert_string_equal(c.cache, "redis://192.0.2.7");
        assert_string_equal(c.store_auth_url, "http://192.0.2.1:8080/auth/v1.0");
        assert_string_equal(c.store_container, "images-1");
        assert_string_equal(c.service_user, "svc_1");
        assert_string_equal(c.initial_client, "ci-1");
        assert_string_equal(c.organization, "Example Corp.");
        if (config_load_string(&c, "[registry]\ncache =\n[tls]\ninitial_client =\n", "t", &error) < 0)
                fail_msg("%s", error);
        assert_null(c.cache);
        assert_null(c.initial_client);
        assert_string_equal(c.service_user, "svc_1");
}

/* A shared store loads, its addresses read back, and a path is the
 * filesystem again. */
static void test_shared_store(void **state) {
        _cleanup_config_ Config c;
        _cleanup_free_ char *error = NULL;
        char host[INET6_ADDRSTRLEN];
        uint16_t port;

        (void)state;
        defaults(&c);
        assert_false(config_storage_is_shared(&c));
        assert_int_equal(config_load_string(&c,
                                            "[registry]\nstorage = swift\ncache = redis://192.0.2.7\n"
                                            "http_secret_file = /etc/regvisor/secret\n[store]\n"
                                            "auth_url = http://192.0.2.1:8080/auth/v1.0\n"
                                            "credentials_file = /etc/regvisor/swift\n"
                                            "[signing]\nstore = registry\n",
                                            "t", &error),
                         0);
        assert_true(config_storage_is_shared(&c));
        assert_int_equal(c.storage_kind, STORAGE_SWIFT);
        assert_null(c.storage);
        assert_int_equal(config_url_address(c.store_auth_url, host, &port), 0);
        assert_string_equal(host, "192.0.2.1");
        assert_int_equal(port, 8080);
        assert_int_equal(config_url_address(c.cache, host, &port), 0);
        assert_string_equal(host, "192.0.2.7");
        assert_int_equal(port, 6379);
        assert_int_equal(config_url_address("http://[2001:db8::7]:80/", host, &port), 0);
        assert_string_equal(host, "2001:db8::7");
        assert_int_equal(config_url_address("https://10.0.0.1/x", host, &port), 0);
        assert_int_equal(port, 443);
        assert_int_equal(config_load_string(&c, "[registry]\nstorage = /srv/r\n", "t", &error), 0);
        assert_false(config_storage_is_shared(&c));
        assert_string_equal(c.storage, "/srv/r");
}

int main(void) {
        static const struct CMUnitTest fixed[] = {
                cmocka_unit_test(test_defaults),
                cmocka_unit_test(test_scopes_forms),
                cmocka_unit_test(test_defaults_need_server_names),
                cmocka_unit_test(test_minimal),
                cmocka_unit_test(test_full),
                cmocka_unit_test(test_full_from_file),
                cmocka_unit_test(test_example_loads),
                cmocka_unit_test(test_example_documents_defaults),
                cmocka_unit_test(test_image_forms),
                cmocka_unit_test(test_upstream_forms),
                cmocka_unit_test(test_listen_forms),
                cmocka_unit_test(test_numbers_forms),
                cmocka_unit_test(test_bool_forms),
                cmocka_unit_test(test_misc_forms),
                cmocka_unit_test(test_server_names_forms), cmocka_unit_test(test_server_names_parsed),
                cmocka_unit_test(test_cidr_forms),
                cmocka_unit_test(test_cidr_list_forms),
                cmocka_unit_test(test_syntax_forms),
                cmocka_unit_test(test_load_twice),
                cmocka_unit_test(test_failed_load_keeps_config),
                cmocka_unit_test(test_missing_file),
                cmocka_unit_test(test_directory),
                cmocka_unit_test(test_nul_byte),
                cmocka_unit_test(test_file_error_names_file),
                cmocka_unit_test(test_validate_cross_checks),
                cmocka_unit_test(test_done_twice),
                cmocka_unit_test(test_shared_store),
                cmocka_unit_test(test_string_values),
        };
        struct CMUnitTest tests[ELEMENTSOF(fixed) + ELEMENTSOF(error_cases)];
        size_t n = 0;

        for (size_t i = 0; i < ELEMENTSOF(fixed); i++)
                tests[n++] = fixed[i];
        /* One test per error row, named after it. */
        for (size_t i = 0; i < ELEMENTSOF(error_cases); i++)
                tests[n++] = (struct CMUnitTest){
                        .name = error_cases[i].name,
                        .test_func = test_error_case,
                        .initial_state = (void *)&error_cases[i],
                };

        return _cmocka_run_group_tests("config", tests, n, NULL, NULL);
}

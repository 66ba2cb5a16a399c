/* SPDX-License-Identifier: MIT */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "config.h"
#include "fileio.h"
#include "macro.h"
#include "render.h"

static Config config;

static int setup(void **state) {
        char *err = NULL;
        if (config_init_defaults(&config) < 0)
                return -1;
        int r = config_load_string(&config,
                                   "[tls]\nserver_names = registry.test, 192.0.2.10, 2001:db8::1\n"
                                   "[registry]\nimage = localhost/regvisor-registry@sha256:"
                                   "0e399e0000000000000000000000000000000000000000000000000000000000\n"
                                   "memory_max = 512M\ncpu_quota = 50%\n",
                                   "test.conf", &err);
        free(err);
        return r < 0 ? -1 : 0;
}

static int teardown(void **state) {
        config_done(&config);
        return 0;
}

#define assert_has(hay, needle)                                                                   \
        do {                                                                                      \
                if (!strstr((hay), (needle)))                                                     \
                        fail_msg("missing '%s' in:\n%s", (needle), (hay));                         \
        } while (0)

static void test_registry_unit(void **state) {
        _cleanup_free_ char *unit = NULL;

        assert_int_equal(render_registry_unit(&config, 990, &unit), 0);
        /* Pinned by digest, never pulled at start. */
        assert_has(unit, "localhost/regvisor-registry@sha256:0e399e");
        assert_has(unit, "--pull=never");
        /* The guide's hardening. */
        assert_has(unit, "--read-only");
        assert_has(unit, "--tmpfs /tmp");
        assert_has(unit, "--cap-drop=ALL");
        assert_has(unit, "--security-opt=no-new-privileges");
        /* Default listen: unix socket, no network at all. */
        assert_has(unit, "--network=none");
        /* Nothing the registry creates is for others; the socket needs g+w. */
        assert_has(unit, "--umask=0007");
        assert_null(strstr(unit, "--umask=0000"));
        assert_has(unit, "-v /run/regvisor/registry:/run/registry:rw");
        assert_null(strstr(unit, " -p "));
        /* Podman state outside $HOME. */
        assert_has(unit, "--root=/var/tmp/podman-990/root");
        assert_has(unit, "--runroot=/run/user/990/podman-run");
        assert_has(unit, "--tmpdir=/var/tmp/podman-990/tmp");
        assert_has(unit, "Environment=XDG_DATA_HOME=/var/tmp/podman-990/xdg-data");
        assert_has(unit, "Environment=XDG_CONFIG_HOME=/var/tmp/podman-990/xdg-config");
        assert_has(unit, "MemoryMax=536870912");
        assert_has(unit, "CPUQuota=50%");
        assert_has(unit, "Restart=on-failure");
}

static void test_registry_unit_tcp(void **state) {
        _cleanup_free_ char *unit = NULL, *cfg = NULL, *err = NULL;
        Config c;

        assert_int_equal(config_init_defaults(&c), 0);
        assert_int_equal(config_load_string(&c,
                                            "[tls]\nserver_names = r.test\n[registry]\nlisten = tcp:127.0.0.1:5000\n",
                                            "t.conf", &err),
                         0);
        assert_int_equal(render_registry_unit(&c, 1000, &unit), 0);
        assert_has(unit, "-p 127.0.0.1:5000:5000");
        assert_null(strstr(unit, "--network=none"));
        assert_int_equal(render_registry_config(&c, "s3cr3t", NULL, &cfg), 0);
        assert_has(cfg, "net: tcp");
        assert_has(cfg, "addr: 0.0.0.0:5000");
        config_done(&c);
}

static void test_registry_config(void **state) {
        _cleanup_free_ char *cfg = NULL;

        assert_int_equal(render_registry_config(&config, "abc123", NULL, &cfg), 0);
        assert_has(cfg, "secret: abc123");
        assert_has(cfg, "relativeurls: true");
        assert_has(cfg, "net: unix");
        assert_has(cfg, "addr: /run/registry/registry.sock");
        assert_has(cfg, "  delete:\n    enabled: false");
        assert_null(strstr(cfg, "debug:"));
}

/* A shared store: the driver from [store] with the credentials quoted,
 * redirects disabled, the redis cache; the container on slirp4netns without
 * a storage mount; the egress table allows the store and redis only. */
static void test_registry_shared(void **state) {
        _cleanup_free_ char *cfg = NULL, *unit = NULL, *nft = NULL, *err = NULL, *s3cfg = NULL, *s3unit = NULL;
        StoreCredentials cred = {.username = (char *) "acct:user", .password = (char *) "p\"w\\d"};
        StoreCredentials keys = {.access_key = (char *) "AK", .secret_key = (char *) "SK"};
        Config c;

        assert_int_equal(config_init_defaults(&c), 0);
        assert_int_equal(config_load_string(&c,
                                            "[tls]\nserver_names = r.test\n[registry]\nstorage = swift\n"
                                            "cache = redis://198.18.5.1:6380\nhttp_secret_file = /etc/s\n"
                                            "[store]\nauth_url = http://198.18.5.1:8080/auth/v1.0\n"
                                            "credentials_file = /etc/c\n[signing]\nstore = registry\n",
                                            "t.conf", &err),
                         0);
        assert_int_equal(render_registry_config(&c, "x", NULL, &cfg), -EINVAL);
        assert_int_equal(render_registry_config(&c, "x", &cred, &cfg), 0);
        assert_has(cfg, "  swift:\n    authurl: \"http://198.18.5.1:8080/auth/v1.0\"\n    authversion: 1\n");
        assert_has(cfg, "    username: \"acct:user\"\n    password: \"p\\\"w\\\\d\"\n");
        assert_has(cfg, "    container: \"registry\"\n");
        assert_has(cfg, "  redirect:\n    disable: true\n");
        assert_has(cfg, "  cache:\n    blobdescriptor: redis\n");
        assert_has(cfg, "redis:\n  addr: \"198.18.5.1:6380\"\n");
        assert_null(strstr(cfg, "filesystem"));
        assert_int_equal(render_registry_unit(&c, 990, &unit), 0);
        assert_has(unit, "--network=slirp4netns:allow_host_loopback=false,enable_ipv6=false");
        assert_null(strstr(unit, "--network=none"));
        assert_null(strstr(unit, ":/var/lib/registry:rw"));
        assert_null(strstr(unit, "AWS_CA_BUNDLE"));
        assert_int_equal(render_registry_egress(&c, 990, &nft), 0);
        assert_has(nft, "meta skuid 990 ip daddr 198.18.5.1 tcp dport 8080 accept\n");
        assert_has(nft, "meta skuid 990 ip daddr 198.18.5.1 tcp dport 6380 accept\n");
        assert_has(nft, "meta skuid 990 counter drop\n");
        assert_has(nft, "\tcomment \"regvisor ");

        assert_int_equal(config_load_string(&c,
                                            "[registry]\nstorage = s3\ncache =\n[store]\n"
                                            "endpoint = https://192.0.2.5:7480\nregion = default\n",
                                            "t.conf", &err),
                         0);
        assert_int_equal(render_registry_config(&c, "x", &keys, &s3cfg), 0);
        assert_has(s3cfg, "  s3:\n    regionendpoint: \"https://192.0.2.5:7480\"\n    region: \"default\"\n");
        assert_has(s3cfg, "    accesskey: \"AK\"\n    secretkey: \"SK\"\n    secure: true\n");
        assert_has(s3cfg, "  redirect:\n    disable: true\n");
        assert_null(strstr(s3cfg, "redis"));
        assert_int_equal(render_registry_unit(&c, 990, &s3unit), 0);
        assert_has(s3unit, "--unsetenv=AWS_CA_BUNDLE");
        free(nft);
        nft = NULL;
        assert_int_equal(render_registry_egress(&c, 990, &nft), 0);
        assert_has(nft, "meta skuid 990 ip daddr 192.0.2.5 tcp dport 7480 accept\n");
        config_done(&c);
}

/* l is exactly want (both NULL-terminated). */
static void assert_strv_equal(char **l, const char *const *want) {
        size_t i;

        for (i = 0; want[i]; i++) {
                assert_non_null(l[i]);
                assert_string_equal(l[i], want[i]);
        }
        assert_null(l[i]);
}

static void test_registry_names(void **state) {
        _cleanup_strv_free_ char **names = NULL;

        assert_int_equal(render_registry_names(&config, &names), 0);
        assert_strv_equal(names, (const char *const[]){"registry.test", "registry.test:4443", "192.0.2.10",
                                                        "192.0.2.10:4443", "[2001:db8::1]", "[2001:db8::1]:4443",
                                                        NULL});
}

static void test_podman_conf(void **state) {
        _cleanup_free_ char *containers = NULL, *storage = NULL, *tmpfiles = NULL, *regd = NULL;

        assert_int_equal(render_containers_conf(&config, 990, &containers), 0);
        assert_has(containers, "runtime = \"runc\"");
        assert_has(containers, "keyring = false");
        assert_has(containers, "events_logger = \"file\"");
        assert_int_equal(render_storage_conf(&config, 990, &storage), 0);
        assert_has(storage, "graphroot = \"/var/tmp/podman-990/root\"");
        assert_has(storage, "runroot = \"/run/user/990/podman-run\"");
        assert_int_equal(render_tmpfiles(&config, 990, "ci-svc", "registry-proxy", &tmpfiles), 0);
        assert_has(tmpfiles, "d /run/regvisor/registry 2750 ci-svc registry-proxy -");
        assert_has(tmpfiles, "d /run/regvisor/sigstore 2750 root registry-proxy -");
        assert_has(tmpfiles, "x /var/tmp/podman-990");
        /* gpg (the default): no namespace declared, so a client's own
         * lookaside entry for this registry does not clash with it. */
        assert_int_equal(render_registries_d(&config, &regd), 0);
        assert_null(strstr(regd, "registry.test"));
        assert_null(strstr(regd, "docker:"));
}

static void test_registries_d_sigstore(void **state) {
        _cleanup_free_ char *regd = NULL;
        Config c = config;

        c.signing_mode = SIGNING_SIGSTORE;
        assert_int_equal(render_registries_d(&c, &regd), 0);
        assert_has(regd, "\"registry.test:4443\":\n    use-sigstore-attachments: true");
}

/* The podman command line of the service user, as every caller (the
 * registry's unit, provision's podman, the supervisor's preflight) uses it. */
static void test_podman_invocation(void **state) {
        _cleanup_strv_free_ char **global = NULL, **env = NULL;

        assert_int_equal(render_podman_invocation(990, &global, &env), 0);
        assert_strv_equal(global, (const char *const[]){"--root=/var/tmp/podman-990/root",
                                                         "--runroot=/run/user/990/podman-run",
                                                         "--tmpdir=/var/tmp/podman-990/tmp", "--events-backend=file",
                                                         NULL});
        assert_strv_equal(env, (const char *const[]){"XDG_RUNTIME_DIR=/run/user/990",
                                                      "XDG_DATA_HOME=/var/tmp/podman-990/xdg-data",
                                                      "XDG_CONFIG_HOME=/var/tmp/podman-990/xdg-config",
                                                      "DBUS_SESSION_BUS_ADDRESS=unix:path=/run/user/990/bus", NULL});
}

/* Every generated file starts with the header that says where it comes
 * from, the constant ones too. */
static void test_generated_header(void **state) {
        _cleanup_free_ char *dropin = NULL, *conf = NULL, *unit = NULL;
        const char *head = "# Generated by regvisor provision from its configuration; do not edit:\n";

        assert_int_equal(render_egress_dropin(&dropin), 0);
        assert_true(strncmp(dropin, head, strlen(head)) == 0);
        assert_has(dropin, "\n[Unit]\nRequires=regvisor-egress.service\nAfter=regvisor-egress.service\n");
        assert_int_equal(render_registries_conf(&config, &conf), 0);
        assert_true(strncmp(conf, head, strlen(head)) == 0);
        assert_has(conf, "\nunqualified-search-registries = [\"docker.io\"]\n");
        assert_int_equal(render_egress_unit(990, &unit), 0);
        assert_true(strncmp(unit, head, strlen(head)) == 0);
        assert_has(unit, "Before=user@990.service shutdown.target\n");
}

/* units/regvisor.socket is what provision renders for the default listen
 * addresses; a configured address becomes its own ListenStream=. */
static void test_proxy_socket_unit(void **state) {
        _cleanup_free_ char *unit = NULL, *shipped = NULL, *err = NULL;
        Config c;
        size_t n;

        assert_int_equal(config_init_defaults(&c), 0);
        assert_int_equal(render_proxy_socket_unit(&c, &unit), 0);
        assert_int_equal(read_file("units/regvisor.socket", 1 << 16, &shipped, &n), 0);
        assert_string_equal(unit, shipped);
        free(TAKE_PTR(unit));
        config_done(&c);
        assert_int_equal(config_init_defaults(&c), 0);
        assert_int_equal(config_load_string(&c, "[pull]\nlisten = 198.51.100.7:443\n[push]\nlisten = [2001:db8::1]:4443\n",
                                            "test.conf", &err),
                         0);
        assert_int_equal(render_proxy_socket_unit(&c, &unit), 0);
        assert_has(unit, "\nListenStream=198.51.100.7:443\n");
        assert_has(unit, "\nListenStream=[2001:db8::1]:4443\n");
        config_done(&c);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_registry_unit),
                cmocka_unit_test(test_registry_unit_tcp),
                cmocka_unit_test(test_registry_config),
                cmocka_unit_test(test_registry_shared),
                cmocka_unit_test(test_registry_names),
                cmocka_unit_test(test_registries_d_sigstore),
                cmocka_unit_test(test_podman_conf),
                cmocka_unit_test(test_proxy_socket_unit),
                cmocka_unit_test(test_podman_invocation),
                cmocka_unit_test(test_generated_header),
        };
        return cmocka_run_group_tests(tests, setup, teardown);
}

/* SPDX-License-Identifier: MIT */
/* The step table's shape, and a --root run: everything written once, the
 * second run changes nothing, a changed server name reissues only the
 * server certificate, and a symlink planted at a managed path is refused. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

#include "config.h"
#include "fileio.h"
#include "macro.h"
#include "provision.h"

static char root[] = "/tmp/regvisor-test-provision-XXXXXX";

static int setup(void **state) {
        return mkdtemp(root) ? 0 : -1;
}

static int teardown(void **state) {
        char cmd[256];
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", root);
        return system(cmd) == 0 ? 0 : -1;
}

static const ProvisionStep *find_step(const char *name) {
        for (size_t i = 0; i < provision_n_steps; i++)
                if (streq(provision_steps[i].name, name))
                        return &provision_steps[i];
        return NULL;
}

static void test_table_shape(void **state) {
        for (size_t i = 0; i < provision_n_steps; i++) {
                assert_non_null(provision_steps[i].name);
                assert_non_null(provision_steps[i].check);
                for (size_t j = i + 1; j < provision_n_steps; j++)
                        assert_string_not_equal(provision_steps[i].name, provision_steps[j].name);
        }
        /* What needs the real host is marked so, and --root skips it. */
        const char *host_only[] = {"service-user", "proxy-user", "service-subids", "linger", "registry-image",
                                   "user-manager-reload"};
        for (size_t i = 0; i < ELEMENTSOF(host_only); i++) {
                const ProvisionStep *s = find_step(host_only[i]);
                assert_non_null(s);
                assert_true(s->flags & STEP_HOST_ONLY);
        }
        /* Identities come before anything owned by them. */
        assert_true(find_step("service-user") < find_step("registry-storage"));
        assert_true(find_step("pki-server-ca") < find_step("pki-server-cert"));
        assert_true(find_step("pki-client-ca") < find_step("pki-client-crl"));
}

static int run_once(const char *conf, ProvisionCounts *counts) {
        Config c;
        char *err = NULL;
        int r;

        assert_int_equal(config_init_defaults(&c), 0);
        r = config_load_string(&c, conf, "test.conf", &err);
        if (r < 0)
                fail_msg("%s", err);
        Provision p = {.config = &c, .root = root};
        /* The report goes to stdout; keep the test output readable. */
        fflush(stdout);
        FILE *saved = stdout;
        stdout = fopen("/dev/null", "w");
        r = provision_run(&p, counts);
        fclose(stdout);
        stdout = saved;
        provision_done(&p);
        config_done(&c);
        return r;
}

#define CONF_A "[tls]\nserver_names = registry.test, 127.0.0.1\n[host]\nservice_user = rv-nouser-a\nproxy_user = rv-nouser-b\n"
#define CONF_B "[tls]\nserver_names = registry.test, other.test\n[host]\nservice_user = rv-nouser-a\nproxy_user = rv-nouser-b\n"

static void assert_mode(const char *rel, mode_t mode) {
        char path[512];
        struct stat st;
        snprintf(path, sizeof path, "%s%s", root, rel);
        if (lstat(path, &st) < 0)
                fail_msg("%s: %m", path);
        if ((st.st_mode & 07777) != mode)
                fail_msg("%s: mode %04o, expected %04o", path, st.st_mode & 07777, mode);
}

static void test_root_run_converges(void **state) {
        ProvisionCounts n;

        assert_int_equal(run_once(CONF_A, &n), 0);
        assert_int_equal(n.failed, 0);
        assert_true(n.changed > 10);

        assert_mode("/etc/registry/certs/private", 0750);
        assert_mode("/etc/registry/certs/private/ca.key", 0600);
        assert_mode("/etc/registry/certs/private/client-ca.key", 0600);
        assert_mode("/etc/registry/certs/private/registry.key", 0640);
        assert_mode("/etc/registry/certs/registry.crt", 0644);
        assert_mode("/etc/registry/certs/ca/ca.crt", 0644);
        assert_mode("/etc/registry/certs/clients/ca.crt", 0644);
        assert_mode("/etc/registry/certs/clients/ci.crt", 0644);
        assert_mode("/etc/registry/certs/clients/crl.pem", 0644);
        assert_mode("/etc/regvisor/registry-http-secret", 0600);
        assert_mode("/etc/regvisor/registry.yml", 0640);
        assert_mode("/etc/containers/policy.json", 0644);

        /* Second run: nothing to change. */
        assert_int_equal(run_once(CONF_A, &n), 0);
        assert_int_equal(n.changed, 0);
        assert_int_equal(n.failed, 0);
}

static void read_rel(const char *rel, char **ret) {
        char path[512];
        snprintf(path, sizeof path, "%s%s", root, rel);
        assert_int_equal(read_file(path, 1 << 20, ret, NULL), 0);
}

static void test_new_server_name_reissues_only_server_cert(void **state) {
        _cleanup_free_ char *ca1 = NULL, *ca2 = NULL, *cert1 = NULL, *cert2 = NULL, *key1 = NULL, *key2 = NULL;
        ProvisionCounts n;

        read_rel("/etc/registry/certs/ca/ca.crt", &ca1);
        read_rel("/etc/registry/certs/registry.crt", &cert1);
        read_rel("/etc/registry/certs/private/registry.key", &key1);
        assert_int_equal(run_once(CONF_B, &n), 0);
        read_rel("/etc/registry/certs/ca/ca.crt", &ca2);
        read_rel("/etc/registry/certs/registry.crt", &cert2);
        read_rel("/etc/registry/certs/private/registry.key", &key2);
        assert_string_equal(ca1, ca2);   /* the CA is kept */
        assert_string_equal(key1, key2); /* and the server key */
        assert_string_not_equal(cert1, cert2);
        assert_int_equal(run_once(CONF_B, &n), 0);
        assert_int_equal(n.changed, 0);
}

static void test_symlink_at_managed_path_refused(void **state) {
        char path[512];
        ProvisionCounts n;

        snprintf(path, sizeof path, "%s/etc/regvisor/registry.yml", root);
        assert_int_equal(unlink(path), 0);
        assert_int_equal(symlink("/etc/passwd", path), 0);
        assert_int_not_equal(run_once(CONF_B, &n), 0);
        assert_int_equal(n.failed, 1);
        assert_int_equal(unlink(path), 0);
        assert_int_equal(run_once(CONF_B, &n), 0);
        assert_int_equal(n.changed, 1);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_table_shape),
                cmocka_unit_test(test_root_run_converges),
                cmocka_unit_test(test_new_server_name_reissues_only_server_cert),
                cmocka_unit_test(test_symlink_at_managed_path_refused),
        };
        return cmocka_run_group_tests(tests, setup, teardown);
}

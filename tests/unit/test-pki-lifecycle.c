/* SPDX-License-Identifier: MIT */
/*
 * The certificate lifecycle (issue 12, part 1): the status `pki list` and
 * health give a certificate (pki_status_of), the renewal margin, validity in
 * seconds, and, on a tree provisioned below a scratch root, what `regvisor
 * run` renews when (pki_files_renew_due, with time passed in), `pki renew
 * NAME` with and without --rekey, and `pki list`'s tree entries.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "config.h"
#include "fileio.h"
#include "macro.h"
#include "needs-root.h"
#include "openssl-util.h"
#include "pki.h"
#include "provision.h"
#include "tmpdir.h"

DEFINE_TMPDIR_GROUP(root, "regvisor-test-pki-lifecycle");

#define CERTS "/etc/registry/certs"
/* 40 s of validity: renewed 20 s before the end (half, under renew_before). */
#define CONF                                                                                                      \
        "[tls]\nserver_names = registry.test, 127.0.0.1\n[host]\nservice_user = rv-nouser-a\nproxy_user = "      \
        "rv-nouser-b\n[pki]\nserver_validity = 40s\ncrl_validity = 40s\n"

static void test_status_of(void **state) {
        time_t now = 1000000;

        /* Revoked wins over every date. */
        assert_int_equal(pki_status_of(now + 1000, true, now, 10), PKI_STATUS_REVOKED);
        assert_int_equal(pki_status_of(now - 1000, true, now, 10), PKI_STATUS_REVOKED);
        /* Ending now is expired: OpenSSL refuses it. */
        assert_int_equal(pki_status_of(now, false, now, 10), PKI_STATUS_EXPIRED);
        assert_int_equal(pki_status_of(now - 1, false, now, 10), PKI_STATUS_EXPIRED);
        /* Within the margin, its boundary included. */
        assert_int_equal(pki_status_of(now + 10, false, now, 10), PKI_STATUS_EXPIRING);
        assert_int_equal(pki_status_of(now + 1, false, now, 10), PKI_STATUS_EXPIRING);
        assert_int_equal(pki_status_of(now + 11, false, now, 10), PKI_STATUS_VALID);
        /* No margin: never expiring. */
        assert_int_equal(pki_status_of(now + 1, false, now, 0), PKI_STATUS_VALID);
        assert_string_equal(pki_status_name(PKI_STATUS_VALID), "valid");
        assert_string_equal(pki_status_name(PKI_STATUS_EXPIRING), "expiring");
        assert_string_equal(pki_status_name(PKI_STATUS_EXPIRED), "expired");
        assert_string_equal(pki_status_name(PKI_STATUS_REVOKED), "revoked");
        assert_string_equal(pki_status_name((PkiStatus) 99), "unknown");
}

static void test_margin_and_validity(void **state) {
        Config c;
        char *err = NULL;

        assert_int_equal(config_init_defaults(&c), 0);
        /* Defaults: 30 days ahead, validity from cert_days. */
        assert_int_equal(c.pki_renew_before, 30 * 86400);
        assert_int_equal(c.pki_check_interval, 3600);
        assert_int_equal(config_server_validity(&c), 365 * 86400);
        assert_int_equal(config_crl_validity(&c), 365 * 86400);
        assert_int_equal(config_renew_margin(&c, config_server_validity(&c)), 30 * 86400);
        /* A short validity is renewed at half of it, not at every check. */
        assert_int_equal(config_load_string(&c, CONF, "test.conf", &err), 0);
        assert_int_equal(config_server_validity(&c), 40);
        assert_int_equal(config_renew_margin(&c, 40), 20);
        /* cert_days = 1: half a day, not 30 days (due again at once). */
        config_done(&c);
        assert_int_equal(config_init_defaults(&c), 0);
        assert_int_equal(config_load_string(&c, "[tls]\ncert_days = 1\n", "test.conf", &err), 0);
        assert_int_equal(config_renew_margin(&c, config_crl_validity(&c)), 43200);
        /* Days are not a unit: hours are. */
        assert_true(config_load_string(&c, "[pki]\nrenew_before = 30d\n", "test.conf", &err) < 0);
        free(err);
        config_done(&c);
}

/* A CRL and a server certificate valid for seconds, dates read back. */
static void test_seconds_validity(void **state) {
        _cleanup_(EVP_PKEY_freep) EVP_PKEY *ca_key = NULL, *key = NULL;
        _cleanup_(X509_freep) X509 *ca = NULL, *cert = NULL;
        _cleanup_(X509_CRL_freep) X509_CRL *crl = NULL;
        const ServerName names[] = {{.name = (char *) "registry.test"}};
        time_t before = time(NULL), this_update, next_update, not_after;

        assert_int_equal(pki_generate_key(KEY_EC_P256, &ca_key), 0);
        assert_int_equal(pki_generate_key(KEY_EC_P256, &key), 0);
        assert_int_equal(pki_make_ca(ca_key, "regvisor", "CA", 10, &ca), 0);
        assert_int_equal(pki_make_crl_for(ca, ca_key, NULL, NULL, 7, 40, &crl), 0);
        assert_int_equal(pki_crl_dates(crl, &this_update, &next_update), 0);
        assert_true(this_update >= before - 1 && this_update <= time(NULL));
        assert_int_equal(next_update - this_update, 40);
        assert_int_equal(pki_issue_server_for(ca, ca_key, key, "regvisor", names, 1, 40, NULL, &cert), 0);
        assert_int_equal(pki_cert_not_after(cert, &not_after), 0);
        assert_true(not_after >= before + 40 && not_after <= time(NULL) + 40);
        assert_int_equal(pki_issue_server_for(ca, ca_key, key, "regvisor", names, 1, 0, NULL, &cert), -EINVAL);
        assert_int_equal(pki_make_crl_for(ca, ca_key, NULL, NULL, 7, -1, &crl), -EINVAL);
}

static void read_rel(const char *rel, char **ret) {
        char path[512];
        snprintf(path, sizeof path, "%s%s", root, rel);
        assert_int_equal(read_file(path, 1 << 20, ret, NULL), 0);
}

static char *serial_of(const char *rel) {
        _cleanup_free_ char *pem = NULL;
        _cleanup_(X509_freep) X509 *cert = NULL;
        char *hex = NULL;

        read_rel(rel, &pem);
        assert_int_equal(pki_cert_from_pem(pem, strlen(pem), &cert), 0);
        assert_int_equal(pki_serial_hex(X509_get0_serialNumber(cert), &hex), 0);
        return hex;
}

static long crl_number_of(const char *rel) {
        _cleanup_free_ char *pem = NULL;
        _cleanup_(X509_CRL_freep) X509_CRL *crl = NULL;
        long n = -1;

        read_rel(rel, &pem);
        assert_int_equal(pki_crl_from_pem(pem, strlen(pem), &crl), 0);
        assert_int_equal(pki_crl_number(crl, &n), 0);
        return n;
}

/* The tree of CONF, provisioned once; p set up as `regvisor pki` does. */
static Config conf;
static Provision prov;

static void provision_tree(void) {
        ProvisionReport rep;
        char *err = NULL;

        assert_int_equal(config_init_defaults(&conf), 0);
        if (config_load_string(&conf, CONF, "test.conf", &err) < 0)
                fail_msg("%s", err);
        prov = (Provision){.config = &conf, .root = root};
        assert_int_equal(provision_run(&prov, NULL, NULL, &rep), 0);
        provision_report_done(&rep);
        assert_int_equal(provision_lookup_users(&prov), 0);
}

static void test_renew_due(void **state) {
        REQUIRE_ROOT("a provisioned tree: files owned by root and the service users");
        _cleanup_free_ char *s1 = NULL, *s2 = NULL, *s3 = NULL, *key1 = NULL, *key2 = NULL, *detail = NULL;
        long n_srv, n_cli;
        time_t now = time(NULL);

        provision_tree();
        s1 = serial_of(CERTS "/registry.crt");
        read_rel(CERTS "/private/registry.key", &key1);
        n_srv = crl_number_of(CERTS "/ca/crl.pem");
        n_cli = crl_number_of(CERTS "/clients/crl.pem");

        /* 40 s left, renewed 20 s before: nothing due yet. */
        assert_int_equal(pki_files_renew_due(&prov, now, &detail), 0);
        assert_null(detail);
        s2 = serial_of(CERTS "/registry.crt");
        assert_string_equal(s1, s2);

        /* 25 s later (the clock passed in): all three. */
        assert_int_equal(pki_files_renew_due(&prov, now + 25, &detail), 3);
        assert_non_null(strstr(detail, "server certificate"));
        assert_non_null(strstr(detail, "client CA's CRL"));
        assert_non_null(strstr(detail, "server CA's CRL"));
        s3 = serial_of(CERTS "/registry.crt");
        assert_string_not_equal(s1, s3);
        read_rel(CERTS "/private/registry.key", &key2);
        assert_string_equal(key1, key2); /* same key */
        assert_int_equal(crl_number_of(CERTS "/ca/crl.pem"), n_srv + 1);
        assert_int_equal(crl_number_of(CERTS "/clients/crl.pem"), n_cli + 1);

        /* Just renewed: nothing due now. */
        free(TAKE_PTR(detail));
        assert_int_equal(pki_files_renew_due(&prov, time(NULL), &detail), 0);
}

static void test_renew_client(void **state) {
        REQUIRE_ROOT("a provisioned tree: files owned by root and the service users");
        _cleanup_free_ char *a1 = NULL, *a2 = NULL, *a3 = NULL, *k1 = NULL, *k2 = NULL, *k3 = NULL,
                            *detail = NULL;
        char path[512];
        struct stat st;

        assert_int_equal(pki_files_issue_client(&prov, "alice", false, &detail), 0);
        free(TAKE_PTR(detail));
        a1 = serial_of(CERTS "/clients/alice.crt");
        read_rel(CERTS "/private/clients/alice.key", &k1);

        assert_int_equal(pki_files_renew_client(&prov, "alice", false, &detail), 0);
        assert_non_null(strstr(detail, "not revoked"));
        free(TAKE_PTR(detail));
        a2 = serial_of(CERTS "/clients/alice.crt");
        read_rel(CERTS "/private/clients/alice.key", &k2);
        assert_string_not_equal(a1, a2);
        assert_string_equal(k1, k2);

        assert_int_equal(pki_files_renew_client(&prov, "alice", true, &detail), 0);
        free(TAKE_PTR(detail));
        a3 = serial_of(CERTS "/clients/alice.crt");
        read_rel(CERTS "/private/clients/alice.key", &k3);
        assert_string_not_equal(a2, a3);
        assert_string_not_equal(k2, k3);
        snprintf(path, sizeof path, "%s" CERTS "/private/clients/alice.key", root);
        assert_int_equal(stat(path, &st), 0);
        assert_int_equal(st.st_mode & 07777, 0600);

        /* Nobody of that name, and a revoked name: refused. */
        assert_int_equal(pki_files_renew_client(&prov, "nobody", false, &detail), -ENOENT);
        free(TAKE_PTR(detail));
        assert_int_equal(pki_files_revoke_client(&prov, "alice", &detail), 0);
        free(TAKE_PTR(detail));
        assert_true(pki_files_renew_client(&prov, "alice", false, &detail) < 0);
        assert_non_null(detail);
}

/* pki sign --days: shorter than [tls] cert_days when asked, never longer;
 * nothing issued for a refused request. */
static void test_sign_days(void **state) {
        REQUIRE_ROOT("a provisioned tree: files owned by root and the service users");
        _cleanup_(EVP_PKEY_freep) EVP_PKEY *key = NULL;
        _cleanup_(X509_REQ_freep) X509_REQ *req = NULL;
        _cleanup_(X509_freep) X509 *cert = NULL;
        _cleanup_free_ char *csr = NULL, *detail = NULL, *name = NULL, *pem = NULL;
        char path[512];
        time_t not_after, now = time(NULL);
        size_t n;

        assert_int_equal(pki_generate_key(KEY_EC_P256, &key), 0);
        assert_int_equal(pki_make_csr(key, "bob", &req), 0);
        assert_int_equal(pki_csr_to_pem(req, &csr, &n), 0);
        assert_int_equal(pki_files_sign_request(&prov, csr, n, NULL, conf.cert_days + 1, false, &name, &detail),
                         -EPERM);
        assert_non_null(strstr(detail, "cert_days"));
        snprintf(path, sizeof path, "%s" CERTS "/clients/bob.crt", root);
        assert_int_equal(access(path, F_OK), -1);
        free(TAKE_PTR(detail));

        assert_int_equal(pki_files_sign_request(&prov, csr, n, NULL, 10, false, &name, &detail), 0);
        assert_string_equal(name, "bob");
        read_rel(CERTS "/clients/bob.crt", &pem);
        assert_int_equal(pki_cert_from_pem(pem, strlen(pem), &cert), 0);
        assert_int_equal(pki_cert_not_after(cert, &not_after), 0);
        assert_true(not_after >= now + 10 * 86400 - 60 && not_after <= time(NULL) + 10 * 86400 + 60);
}

static void test_list_tree(void **state) {
        REQUIRE_ROOT("a provisioned tree: files owned by root and the service users");
        PkiTreeEntry e[PKI_TREE_ENTRIES];
        static const char *const names[] = {"server-ca", "server", "client-ca", "server-ca-crl", "client-ca-crl"};

        assert_int_equal(pki_files_list_tree(&prov, e), 0);
        for (size_t i = 0; i < PKI_TREE_ENTRIES; i++) {
                assert_string_equal(e[i].what, names[i]);
                assert_null(e[i].error);
                assert_true(e[i].not_after > e[i].not_before);
                assert_int_equal(e[i].is_crl, i >= 3);
                if (!e[i].is_crl)
                        assert_non_null(e[i].serial);
        }
        assert_string_equal(e[1].cn, "registry.test");
        assert_int_equal(e[1].margin, 20);
        assert_int_equal(e[4].n_revoked, 1); /* alice */
        pki_tree_done(e);

        PkiClient *c = NULL;
        size_t n = 0;
        char *detail = NULL;
        assert_int_equal(pki_files_list_clients(&prov, &c, &n, &detail), 0);
        assert_int_equal(n, 1);
        assert_string_equal(c[0].name, "alice");
        assert_string_equal(c[0].cn, "alice");
        assert_true(c[0].revoked);
        pki_clients_free(c, n);
        free(detail);
}

static int teardown(void **state) {
        provision_done(&prov);
        config_done(&conf);
        return tmpdir_group_teardown(state);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_status_of),
                cmocka_unit_test(test_margin_and_validity),
                cmocka_unit_test(test_seconds_validity),
                cmocka_unit_test(test_renew_due),
                cmocka_unit_test(test_renew_client),
                cmocka_unit_test(test_list_tree),
                cmocka_unit_test(test_sign_days), /* after list: one more client */
        };
        return cmocka_run_group_tests(tests, tmpdir_group_setup, teardown);
}

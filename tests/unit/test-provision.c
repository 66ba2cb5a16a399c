/* SPDX-License-Identifier: MIT */
/* The step table's shape, and a --root run: everything written once, the
 * second run changes nothing, a changed server name reissues only the
 * server certificate, and a symlink planted at a managed path is refused.
 * Every case but the table's shape needs root (PROVISION_NEEDS_ROOT). */
#include <dirent.h>
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

#include "needs-root.h"

#include "config.h"
#include "fileio.h"
#include "macro.h"
#include "pki.h"
#include "server-names.h"
#include "provision.h"
#include "tmpdir.h"

/* A --root run writes every file owned as on a host: root and the service
 * users (fchown), which only root may do. */
#define PROVISION_NEEDS_ROOT() REQUIRE_ROOT("files owned by root and the service users: fchown")

DEFINE_TMPDIR_GROUP(root, "regvisor-test-provision");

static const ProvisionStep *find_step(const char *name) {
        for (size_t i = 0; i < provision_n_steps; i++)
                if (streq(provision_steps[i].name, name))
                        return &provision_steps[i];
        return NULL;
}

static void test_table_shape(void **state) {
        for (size_t i = 0; i < provision_n_steps; i++) {
                assert_non_null(provision_steps[i].name);
                /* provision walks every row but deprovision's own ones */
                if (!(provision_steps[i].flags & STEP_UNDO_ONLY))
                        assert_non_null(provision_steps[i].check);
                else
                        assert_null(provision_steps[i].check);
                /* an undo check without an undo could never act */
                if (provision_steps[i].undo_check)
                        assert_non_null(provision_steps[i].undo);
                /* A row that changes the host says how deprovision undoes
                 * it, or that it is data, which goes with its directory's
                 * row under --purge (the PKI files, the image). */
                if (provision_steps[i].apply && !provision_steps[i].undo_check &&
                    !(provision_steps[i].flags & STEP_DATA))
                        fail_msg("row %s has an apply but no undo", provision_steps[i].name);
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
        assert_true(find_step("pki-server-ca") < find_step("pki-server-crl"));
        assert_true(find_step("pki-client-ca") < find_step("pki-client-crl"));
        /* Whether the initial client is revoked is read from the CRL. */
        assert_true(find_step("pki-client-crl") < find_step("pki-initial-client"));
}

/* Runs provision --root from conf; the report in *ret_report when asked
 * (else freed), the counts in *counts. */
static int run_report(const char *conf, ProvisionCounts *counts, ProvisionReport *ret_report) {
        ProvisionReport rep;
        Config c;
        char *err = NULL;
        int r;

        assert_int_equal(config_init_defaults(&c), 0);
        r = config_load_string(&c, conf, "test.conf", &err);
        if (r < 0)
                fail_msg("%s", err);
        Provision p = {.config = &c, .root = root};
        r = provision_run(&p, NULL, NULL, &rep);
        *counts = rep.counts;
        if (ret_report)
                *ret_report = rep;
        else
                provision_report_done(&rep);
        provision_done(&p);
        config_done(&c);
        return r;
}

static int run_once(const char *conf, ProvisionCounts *counts) {
        return run_report(conf, counts, NULL);
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

static bool rel_exists(const char *rel) {
        char path[512];
        snprintf(path, sizeof path, "%s%s", root, rel);
        return access(path, F_OK) == 0;
}

/* A [signing] keys file that is missing or holds no key stops the run at
 * its row, which follows only the check-only image-archive row: nothing at
 * all is written (the root stays empty). Runs first, on the empty root. */
static void test_bad_signing_keys_change_nothing(void **state) {
        PROVISION_NEEDS_ROOT();
        char conf[1024], garbage[512];
        ProvisionCounts n;
        FILE *f;

        assert_ptr_equal(&provision_steps[0], find_step("image-archive"));
        /* guide-layout only looks (provision --adopt): nothing changes */
        assert_ptr_equal(&provision_steps[1], find_step("guide-layout"));
        assert_ptr_equal(&provision_steps[2], find_step("signing-keys"));
        snprintf(garbage, sizeof garbage, "%s.garbage.asc", root);
        f = fopen(garbage, "we");
        assert_non_null(f);
        fputs("-----BEGIN PGP PUBLIC KEY BLOCK-----\nnot a key\n", f);
        fclose(f);
        const char *keys[] = {"/nonexistent/signers.asc", garbage};
        for (size_t i = 0; i < ELEMENTSOF(keys); i++) {
                snprintf(conf, sizeof conf, "%s[signing]\nkeys = %s\n", CONF_A, keys[i]);
                assert_true(run_once(conf, &n) < 0);
                assert_int_equal(n.failed, 1);
                assert_int_equal(n.changed, 0);
                assert_true(n.ok <= 2); /* image-archive, guide-layout: nothing to check here */
                DIR *d = opendir(root);
                assert_non_null(d);
                struct dirent *e;
                while ((e = readdir(d)))
                        if (!streq(e->d_name, ".") && !streq(e->d_name, ".."))
                                fail_msg("%s: %s written after [signing] keys = %s was refused", root, e->d_name,
                                         keys[i]);
                closedir(d);
        }
        assert_int_equal(unlink(garbage), 0);
}

static void test_root_run_converges(void **state) {
        PROVISION_NEEDS_ROOT();
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
        assert_mode("/etc/registry/certs/clients/crl.pem", 0644);
        assert_mode("/etc/regvisor/registry-http-secret", 0600);
        assert_mode("/etc/regvisor/registry.yml", 0640);
        assert_mode("/etc/containers/policy.json", 0644);

        /* No credential nobody asked for ([tls] initial_client is empty). */
        assert_false(rel_exists("/etc/registry/certs/clients/ci.crt"));
        assert_false(rel_exists("/etc/registry/certs/private/clients/ci.key"));

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
        PROVISION_NEEDS_ROOT();
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
        PROVISION_NEEDS_ROOT();
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

#define CERTS "/etc/registry/certs"
#define CRL CERTS "/clients/crl.pem"
#define CONF_CI CONF_B "[tls]\ninitial_client = ci\n"

/* Runs fn on a Provision of conf below root, as `regvisor pki` does. */
static int with_provision(const char *conf, int (*fn)(Provision *p, void *userdata), void *userdata) {
        Provision p = {.root = root};
        Config c;
        char *err = NULL;
        int r;

        assert_int_equal(config_init_defaults(&c), 0);
        if (config_load_string(&c, conf, "test.conf", &err) < 0)
                fail_msg("%s", err);
        p.config = &c;
        assert_int_equal(provision_lookup_users(&p), 0);
        r = fn(&p, userdata);
        provision_done(&p);
        config_done(&c);
        return r;
}

typedef struct {
        const char *name;
        bool reissue;
        char *detail;
} PkiCall;

static int call_issue(Provision *p, void *userdata) {
        PkiCall *c = userdata;
        return pki_files_issue_client(p, c->name, c->reissue, &c->detail);
}

static int call_revoke(Provision *p, void *userdata) {
        PkiCall *c = userdata;
        return pki_files_revoke_client(p, c->name, &c->detail);
}

static int call_crl_check(Provision *p, void *userdata) {
        PkiCall *c = userdata;
        const ProvisionStep *s = find_step("pki-client-crl");
        return s->check(p, s, &c->detail);
}

static void write_rel(const char *rel, const char *data) {
        char path[512];
        snprintf(path, sizeof path, "%s%s", root, rel);
        assert_int_equal(write_file_atomic(path, data, strlen(data), 0644, getuid(), getgid()), 0);
}

/* Certificate and CRL of rel, parsed. */
static X509 *cert_rel(const char *rel) {
        _cleanup_free_ char *pem = NULL;
        X509 *cert = NULL;

        read_rel(rel, &pem);
        assert_int_equal(pki_cert_from_pem(pem, strlen(pem), &cert), 0);
        return cert;
}

#define SERVER_CDP(name) "https://" name "/regvisor/crl/server-ca.crl"
#define CONF_B_SWAPPED "[tls]\nserver_names = other.test, registry.test\n[host]\nservice_user = rv-nouser-a\nproxy_user = rv-nouser-b\n"

/* The server certificate names the server CA's CRL (which provision makes)
 * as its CRL distribution point; one without it (made before it existed)
 * or naming another host is reissued for the same key, once. */
static void test_crl_distribution_point(void **state) {
        _cleanup_free_ char *key1 = NULL, *key2 = NULL, *crl_pem = NULL, *old_pem = NULL;
        EVP_PKEY *ca_key = NULL, *key = NULL;
        X509 *ca = NULL, *cert = NULL, *old = NULL;
        X509_CRL *crl = NULL;
        ProvisionCounts n;
        PkiCall call = {.name = "bob"};
        const ServerName names[] = {SN_DNS("registry.test"), SN_DNS("other.test")};

        /* As provisioned: the distribution point, and a CRL of the server CA there. */
        cert = cert_rel(CERTS "/registry.crt");
        assert_int_equal(pki_cert_has_crl_uri(cert, SERVER_CDP("registry.test")), 1);
        X509_free(cert);
        ca = cert_rel(CERTS "/ca/ca.crt");
        read_rel(CERTS "/ca/crl.pem", &crl_pem);
        assert_int_equal(pki_crl_from_pem(crl_pem, strlen(crl_pem), &crl), 0);
        assert_int_equal(pki_crl_verify(crl, ca), 1);
        X509_CRL_free(crl);
        assert_mode(CERTS "/ca/crl.pem", 0644);

        /* A server certificate of the same key without it, as an older
         * provision wrote it: only that step changes, the key stays. */
        read_rel(CERTS "/private/registry.key", &key1);
        read_rel(CERTS "/private/ca.key", &old_pem);
        assert_int_equal(pki_key_from_pem(old_pem, strlen(old_pem), &ca_key), 0);
        free(old_pem);
        old_pem = NULL;
        assert_int_equal(pki_key_from_pem(key1, strlen(key1), &key), 0);
        assert_int_equal(pki_issue_server(ca, ca_key, key, "regvisor", names, 2, 365, NULL, &old), 0);
        assert_int_equal(pki_cert_to_pem(old, &old_pem, NULL), 0);
        write_rel(CERTS "/registry.crt", old_pem);
        assert_int_equal(run_once(CONF_B, &n), 0);
        assert_int_equal(n.changed, 1);
        cert = cert_rel(CERTS "/registry.crt");
        assert_int_equal(pki_cert_has_crl_uri(cert, SERVER_CDP("registry.test")), 1);
        assert_int_equal(pki_key_matches_cert(key, cert), 1);
        X509_free(cert);
        read_rel(CERTS "/private/registry.key", &key2);
        assert_string_equal(key1, key2);
        assert_int_equal(run_once(CONF_B, &n), 0);
        assert_int_equal(n.changed, 0);

        /* The same names in another order: another first name, another URI
         * (the SAN set is the same). Only the certificate changes: policy.json
         * already has every name, and with [signing] mode = gpg (the
         * default) registries.d names none. */
        assert_int_equal(run_once(CONF_B_SWAPPED, &n), 0);
        assert_int_equal(n.changed, 1);
        cert = cert_rel(CERTS "/registry.crt");
        assert_int_equal(pki_cert_has_crl_uri(cert, SERVER_CDP("other.test")), 1);
        X509_free(cert);
        assert_int_equal(run_once(CONF_B_SWAPPED, &n), 0);
        assert_int_equal(n.changed, 0);
        assert_int_equal(run_once(CONF_B, &n), 0);
        assert_int_equal(n.changed, 1);

        /* A client certificate issued now names the client CA's CRL. */
        assert_int_equal(with_provision(CONF_B, call_issue, &call), 0);
        free(call.detail);
        cert = cert_rel(CERTS "/clients/bob.crt");
        assert_int_equal(pki_cert_has_crl_uri(cert, "https://registry.test/regvisor/crl/client-ca.crl"), 1);
        X509_free(cert);

        X509_free(old);
        X509_free(ca);
        EVP_PKEY_free(key);
        EVP_PKEY_free(ca_key);
}

/* The initial client is opt-in, kept across runs, and once revoked never
 * issued again by provision; pki issue-client needs --reissue for it. */
static void test_initial_client(void **state) {
        PROVISION_NEEDS_ROOT();
        PkiCall call = {.name = "ci"};
        ProvisionCounts n;

        assert_int_equal(run_once(CONF_CI, &n), 0);
        assert_int_equal(n.changed, 1);
        assert_true(rel_exists(CERTS "/clients/ci.crt"));
        assert_mode(CERTS "/private/clients/ci.key", 0600);
        assert_int_equal(run_once(CONF_CI, &n), 0);
        assert_int_equal(n.changed, 0);

        assert_int_equal(with_provision(CONF_CI, call_revoke, &call), 0);
        assert_non_null(strstr(call.detail, "ci revoked"));
        free(call.detail);
        assert_true(rel_exists(CERTS "/clients/ci.crt.revoked"));
        assert_false(rel_exists(CERTS "/private/clients/ci.key"));

        /* Provision does not bring it back, however often it runs. */
        assert_int_equal(run_once(CONF_CI, &n), 0);
        assert_int_equal(n.changed, 0);
        assert_int_equal(n.failed, 0);
        assert_false(rel_exists(CERTS "/clients/ci.crt"));

        call = (PkiCall){.name = "ci"};
        assert_int_equal(with_provision(CONF_CI, call_issue, &call), -EPERM);
        assert_non_null(strstr(call.detail, "--reissue"));
        free(call.detail);
        assert_false(rel_exists(CERTS "/clients/ci.crt"));

        call = (PkiCall){.name = "ci", .reissue = true};
        assert_int_equal(with_provision(CONF_CI, call_issue, &call), 0);
        free(call.detail);
        assert_true(rel_exists(CERTS "/clients/ci.crt"));
        /* Reissued on purpose: provision keeps the new one as it is. */
        assert_int_equal(run_once(CONF_CI, &n), 0);
        assert_int_equal(n.changed, 0);
}

/* A CRL that does not parse or is another CA's fails the CRL step and pki
 * revoke with an error naming the file, and is left byte for byte. */
static void check_crl_kept(const char *bad, const char *what) {
        _cleanup_free_ char *after = NULL;
        PkiCall call = {};
        ProvisionCounts n;

        write_rel(CRL, bad);
        assert_int_not_equal(run_once(CONF_CI, &n), 0);
        assert_int_equal(n.failed, 1);
        read_rel(CRL, &after);
        assert_string_equal(after, bad);

        assert_true(with_provision(CONF_CI, call_crl_check, &call) < 0);
        assert_non_null(strstr(call.detail, "clients/crl.pem"));
        assert_non_null(strstr(call.detail, what));
        free(call.detail);

        call = (PkiCall){.name = "ci"};
        assert_true(with_provision(CONF_CI, call_revoke, &call) < 0);
        assert_non_null(strstr(call.detail, what));
        free(call.detail);
        free(after);
        after = NULL;
        read_rel(CRL, &after);
        assert_string_equal(after, bad);
        /* Nothing else of the revocation happened either. */
        assert_true(rel_exists(CERTS "/clients/ci.crt"));
}

static void test_bad_crl_kept(void **state) {
        PROVISION_NEEDS_ROOT();
        _cleanup_free_ char *good = NULL, *foreign_pem = NULL;
        EVP_PKEY *key = NULL;
        X509 *ca = NULL;
        X509_CRL *crl = NULL;
        ProvisionCounts n;

        read_rel(CRL, &good);
        check_crl_kept("-----BEGIN X509 CRL-----\nbm90IGEgQ1JM\n-----END X509 CRL-----\n", "does not parse");
        check_crl_kept("", "does not parse");

        /* A genuine CRL of another CA under the same name and organization. */
        assert_int_equal(pki_generate_key(KEY_EC_P256, &key), 0);
        assert_int_equal(pki_make_ca(key, "regvisor", "regvisor Client CA", 30, &ca), 0);
        assert_int_equal(pki_make_crl(ca, key, NULL, NULL, 7, 30, &crl), 0);
        assert_int_equal(pki_crl_to_pem(crl, &foreign_pem, NULL), 0);
        X509_CRL_free(crl);
        X509_free(ca);
        EVP_PKEY_free(key);
        check_crl_kept(foreign_pem, "not the client CA's CRL");

        /* Restored: everything converges again. */
        write_rel(CRL, good);
        assert_int_equal(run_once(CONF_CI, &n), 0);
        assert_int_equal(n.failed, 0);
}

/* A missing CRL is made again with every clients/NAME.crt.revoked in it. */
static void test_missing_crl_rebuilt(void **state) {
        PROVISION_NEEDS_ROOT();
        _cleanup_free_ char *pem = NULL, *cert_pem = NULL;
        X509_CRL *crl = NULL;
        X509 *cert = NULL;
        PkiCall call = {.name = "ci"};
        ProvisionCounts n;

        assert_int_equal(with_provision(CONF_CI, call_revoke, &call), 0);
        free(call.detail);
        char path[512];
        snprintf(path, sizeof path, "%s%s", root, CRL);
        assert_int_equal(unlink(path), 0);
        assert_int_equal(run_once(CONF_CI, &n), 0);
        assert_int_equal(n.failed, 0);

        read_rel(CRL, &pem);
        read_rel(CERTS "/clients/ci.crt.revoked", &cert_pem);
        assert_int_equal(pki_crl_from_pem(pem, strlen(pem), &crl), 0);
        assert_int_equal(pki_cert_from_pem(cert_pem, strlen(cert_pem), &cert), 0);
        assert_int_equal(pki_crl_has_serial(crl, X509_get0_serialNumber(cert)), 1);
        assert_false(rel_exists(CERTS "/clients/ci.crt"));
        X509_CRL_free(crl);
        X509_free(cert);
}

/* provision_run prints nothing: what happened is in the report, one result
 * per row in table order, and a skip says why (here: no such users). */
static void test_report_not_printed(void **state) {
        char out[TMPDIR_PATH_MAX];
        ProvisionReport rep;
        ProvisionCounts n;
        struct stat st;
        int fd, saved;

        fflush(stdout);
        assert_int_equal(tmpdir_template(out, sizeof out, "regvisor-test-stdout"), 0);
        fd = mkstemp(out);
        assert_true(fd >= 0);
        saved = dup(STDOUT_FILENO);
        assert_true(dup2(fd, STDOUT_FILENO) >= 0);
        int r = run_report(CONF_A, &n, &rep);
        fflush(stdout);
        assert_true(dup2(saved, STDOUT_FILENO) >= 0);
        close(saved);
        assert_int_equal(fstat(fd, &st), 0);
        close(fd);
        unlink(out);
        assert_int_equal(r, 0);
        assert_int_equal(st.st_size, 0);

        /* deprovision's own rows (system units) are last and not walked */
        size_t undo_only = 0;
        for (size_t i = 0; i < provision_n_steps; i++)
                undo_only += !!(provision_steps[i].flags & STEP_UNDO_ONLY);
        assert_int_equal(undo_only, 1);
        assert_true(provision_steps[provision_n_steps - 1].flags & STEP_UNDO_ONLY);
        assert_int_equal(rep.n_results, provision_n_steps - undo_only);
        unsigned host = 0, user = 0;
        for (size_t i = 0; i < rep.n_results; i++) {
                const ProvisionResult *x = &rep.results[i];
                assert_string_equal(x->name, provision_steps[i].name);
                assert_int_not_equal(x->result, STEP_RESULT_FAILED);
                if (x->result != STEP_RESULT_SKIPPED)
                        continue;
                assert_int_not_equal(x->skip, SKIP_NONE);
                host += x->skip == SKIP_HOST_ONLY;
                if (x->skip == SKIP_NEEDS_USER) {
                        user++;
                        assert_non_null(x->detail);
                        assert_non_null(strstr(x->detail, "rv-nouser-a"));
                }
        }
        assert_int_equal(host + user, n.skipped);
        assert_true(host > 0 && user > 0);
        provision_report_done(&rep);
}

/* An OCI layout at dir: index.json naming one manifest, {} as its blob. */
#define EMPTY_DIGEST "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"
static void write_layout(const char *dir, const char *blob) {
        char cmd[1024];
        snprintf(cmd, sizeof cmd,
                 "mkdir -p '%1$s/blobs/sha256' && printf '%%s' '%2$s' > '%1$s/blobs/sha256/%3$s' && "
                 "printf '{\"schemaVersion\":2,\"manifests\":[{\"digest\":\"%4$s\",\"annotations\":"
                 "{\"org.opencontainers.image.ref.name\":\"localhost/reg:2\"}}]}' > '%1$s/index.json'",
                 dir, blob, EMPTY_DIGEST + 7, EMPTY_DIGEST);
        assert_int_equal(system(cmd), 0);
}

/* The image-archive row runs first: an archive without the pinned digest
 * stops the run before anything is written, saying what it does hold; the
 * right archive passes, as a tar too; a damaged blob is caught. */
/* provision --adopt finds the nginx sites that hold 443/4443 by their
 * listen directives: every form nginx takes, comments and other
 * directives that merely contain the word not counted. */
static void test_nginx_listen_ports(void **state) {
        static const struct {
                const char *conf;
                unsigned ports[4];
                size_t n;
        } cases[] = {
                {"server { listen 443 ssl http2; }", {443}, 1},
                {"server {\n    listen [::]:4443 ssl;\n    listen 0.0.0.0:443;\n}", {4443, 443}, 2},
                {"server { listen *:8080; listen localhost; listen unix:/run/x.sock; }", {8080, 80}, 2},
                {"# listen 443;\nserver { listen 8080; } # listen 4443", {8080}, 1},
                {"server { access_log /var/log/listen 443; server_name listen; }", {}, 0},
                {"server{listen\t443;}", {443}, 1},
                {"server { listen [::1]; listen 99999; }", {80}, 1},
        };
        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                unsigned ports[8];
                size_t n;

                assert_int_equal(nginx_conf_listen_ports(cases[i].conf, ports, ELEMENTSOF(ports), &n), 0);
                if (n != cases[i].n)
                        fail_msg("case %zu: %zu ports, expected %zu", i, n, cases[i].n);
                for (size_t j = 0; j < n; j++)
                        assert_int_equal(ports[j], cases[i].ports[j]);
        }
}

static void test_image_archive_checked_first(void **state) {
        char layout[512], tarball[512], conf[2048], cmd[1200];
        ProvisionReport rep;
        ProvisionCounts n;

        snprintf(layout, sizeof layout, "%s/archive/layout", root);
        snprintf(tarball, sizeof tarball, "%s/archive/reg.tar", root);
        write_layout(layout, "{}");
        snprintf(cmd, sizeof cmd, "tar -C '%s' -cf '%s' index.json blobs", layout, tarball);
        assert_int_equal(system(cmd), 0);
        snprintf(cmd, sizeof cmd, "rm -rf '%s/etc'", root);
        assert_int_equal(system(cmd), 0);

        /* Only the archive set: the default image is not in it. */
        snprintf(conf, sizeof conf, CONF_A "[registry]\nimage_archive = %s\n", tarball);
        assert_true(run_report(conf, &n, &rep) < 0);
        assert_string_equal(rep.results[0].name, "image-archive");
        assert_int_equal(rep.results[0].result, STEP_RESULT_FAILED);
        assert_non_null(strstr(rep.results[0].detail, "holds localhost/reg:2 (" EMPTY_DIGEST ")"));
        assert_non_null(strstr(rep.results[0].detail, "image = localhost/reg@" EMPTY_DIGEST));
        for (size_t i = 1; i < rep.n_results; i++)
                assert_int_equal(rep.results[i].result, STEP_RESULT_NOT_RUN);
        assert_false(rel_exists("/etc"));
        provision_report_done(&rep);

        /* Pinned to what it holds: the tar and the layout pass. */
        snprintf(conf, sizeof conf, CONF_A "[registry]\nimage_archive = %s\nimage = localhost/reg@" EMPTY_DIGEST "\n",
                 tarball);
        assert_int_equal(run_report(conf, &n, &rep), 0);
        assert_int_equal(rep.results[0].result, STEP_RESULT_OK);
        provision_report_done(&rep);
        snprintf(conf, sizeof conf, CONF_A "[registry]\nimage_archive = %s\nimage = localhost/reg@" EMPTY_DIGEST "\n",
                 layout);
        assert_int_equal(run_report(conf, &n, &rep), 0);
        assert_int_equal(rep.results[0].result, STEP_RESULT_OK);
        provision_report_done(&rep);

        /* A blob that does not hash to its digest. */
        write_layout(layout, "{ }");
        assert_true(run_report(conf, &n, &rep) < 0);
        assert_int_equal(rep.results[0].result, STEP_RESULT_FAILED);
        assert_non_null(strstr(rep.results[0].detail, "does not hash to"));
        provision_report_done(&rep);
}

/* provision --adopt's rows under --root: the guide's unit, the record of
 * what guide-proxy disabled and the storage are looked for below the root,
 * never on this host (none of them is here: the real paths are absent). */
static void test_adopt_paths_below_root(void **state) {
        static const char *const host[] = {"/etc/systemd/user/registry.service", "/etc/regvisor/adopted-guide",
                                           "/var/lib/registry"};
        char path[512], cmd[2048];
        char *detail = NULL;
        Config c;
        char *err = NULL;

        for (size_t i = 0; i < ELEMENTSOF(host); i++)
                if (access(host[i], F_OK) == 0)
                        skip(); /* a guide host: the real files would answer the same */
        assert_int_equal(config_init_defaults(&c), 0);
        if (config_load_string(&c, CONF_A, "test.conf", &err) < 0)
                fail_msg("%s", err);
        Provision p = {.config = &c, .root = root, .adopt = true, .have_service_user = true};
        const ProvisionStep *unit = find_step("guide-registry-unit"), *proxy = find_step("guide-proxy"),
                            *modes = find_step("guide-storage-modes");
        assert_non_null(unit);
        assert_non_null(proxy);
        assert_non_null(modes);

        snprintf(cmd, sizeof cmd,
                 "rm -rf '%1$s/etc' '%1$s/var' && mkdir -p '%1$s/etc/systemd/user' '%1$s/etc/regvisor' "
                 "'%1$s/var/lib/registry/docker' && echo '[Service]' > '%1$s/etc/systemd/user/registry.service' "
                 "&& printf 'unit\\tregistry-proxy.service\\n' > '%1$s/etc/regvisor/adopted-guide' && "
                 "echo x > '%1$s/var/lib/registry/docker/blob' && chmod 0644 '%1$s/var/lib/registry/docker/blob' && "
                 "chmod 0750 '%1$s/var/lib/registry' '%1$s/var/lib/registry/docker'",
                 root);
        assert_int_equal(system(cmd), 0);

        /* The unit below the root is the guide's: to be set aside. */
        assert_int_equal(unit->check(&p, unit, &detail), 0);
        assert_non_null(strstr(detail, "set /etc/systemd/user/registry.service aside"));
        free(detail), detail = NULL;
        /* Deprovision: nothing set aside yet, then the kept one restored. */
        assert_int_equal(unit->undo_check(&p, unit, &detail), 1);
        free(detail), detail = NULL;
        snprintf(path, sizeof path, "%s/etc/systemd/user/registry.service", root);
        snprintf(cmd, sizeof cmd, "mv '%1$s' '%1$s.adopted'", path);
        assert_int_equal(system(cmd), 0);
        assert_int_equal(unit->undo_check(&p, unit, &detail), 0);
        assert_non_null(strstr(detail, "restore /etc/systemd/user/registry.service"));
        free(detail), detail = NULL;
        /* The record below the root. */
        assert_int_equal(proxy->undo_check(&p, proxy, &detail), 0);
        assert_non_null(strstr(detail, "enable again"));
        free(detail), detail = NULL;
        /* The storage below the root: its directories are 0750, one file
         * is open to others. */
        assert_int_equal(modes->check(&p, modes, &detail), 0);
        assert_non_null(strstr(detail, "1 files and directories below /var/lib/registry"));
        free(detail), detail = NULL;

        snprintf(cmd, sizeof cmd, "rm -rf '%1$s/etc' '%1$s/var'", root);
        assert_int_equal(system(cmd), 0);
        config_done(&c);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_table_shape),
                cmocka_unit_test(test_bad_signing_keys_change_nothing),
                cmocka_unit_test(test_root_run_converges),
                cmocka_unit_test(test_new_server_name_reissues_only_server_cert),
                cmocka_unit_test(test_symlink_at_managed_path_refused),
                cmocka_unit_test(test_crl_distribution_point),
                cmocka_unit_test(test_initial_client),
                cmocka_unit_test(test_bad_crl_kept),
                cmocka_unit_test(test_missing_crl_rebuilt),
                cmocka_unit_test(test_report_not_printed),
                cmocka_unit_test(test_image_archive_checked_first),
                cmocka_unit_test(test_nginx_listen_ports),
                cmocka_unit_test(test_adopt_paths_below_root),
        };
        return cmocka_run_group_tests(tests, tmpdir_group_setup, tmpdir_group_teardown);
}

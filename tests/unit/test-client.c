/* SPDX-License-Identifier: MIT */
/* The client bundle (pki export) and its install plan (client install). */
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

#include "bundle.h"
#include "fileio.h"
#include "install.h"
#include "macro.h"
#include "tmpdir.h"
#include "openssl-util.h"
#include "pki.h"
#include "policy.h"
#include "request.h"
#include "scope-grant.h"

DEFINE_TMPDIR_GROUP(dir, "regvisor-test-client");

static char *p(const char *fmt, ...) _printf_(1, 2);
static char *p(const char *fmt, ...) {
        static char buf[4][512];
        static unsigned i;
        char rel[400];
        va_list ap;

        va_start(ap, fmt);
        vsnprintf(rel, sizeof rel, fmt, ap);
        va_end(ap);
        i = (i + 1) % 4;
        snprintf(buf[i], sizeof buf[i], "%s/%s", dir, rel);
        return buf[i];
}

static mode_t mode_of(const char *path) {
        struct stat st;
        assert_int_equal(lstat(path, &st), 0);
        return st.st_mode & 07777;
}

static bool exists(const char *path) {
        struct stat st;
        return lstat(path, &st) == 0;
}

static char *slurp(const char *path) {
        char *data = NULL;
        assert_int_equal(read_file(path, 1 << 20, &data, NULL), 0);
        return data;
}

#define CA "-----BEGIN CERTIFICATE-----\nCA\n-----END CERTIFICATE-----\n"
#define CERT "-----BEGIN CERTIFICATE-----\nCLIENT\n-----END CERTIFICATE-----\n"
#define KEY "-----BEGIN PRIVATE KEY-----\nSECRET\n-----END PRIVATE KEY-----\n"
#define SIGNERS "-----BEGIN PGP PUBLIC KEY BLOCK-----\nKEYS\n-----END PGP PUBLIC KEY BLOCK-----\n"
/* As pki export writes it: below the registry's own name. */
#define SIGNERS_PATH "/etc/containers/keys/registry.test/regvisor-signers.gpg"

/* Every file of the client's layout that a bundle carries below files/ (and
 * lists in its MANIFEST) and client install writes, with its mode: the same
 * layout in podman's, containerd's and docker's certs.d, private keys 0600
 * and the rest 0644; containerd's hosts.toml per port; the signers' keys. */
#define CLIENT_TREE_FILES(tree)                                                                     \
        {tree "/registry.test/ca.crt", 0644}, {tree "/registry.test:4443/ca.crt", 0644},            \
        {tree "/registry.test:4443/client.cert", 0644}, {tree "/registry.test:4443/client.key", 0600}
static const struct {
        const char *path;
        mode_t mode;
} client_files[] = {
        CLIENT_TREE_FILES(CLIENT_CERTS_D),
        CLIENT_TREE_FILES(CLIENT_CONTAINERD_CERTS_D),
        CLIENT_TREE_FILES(CLIENT_DOCKER_CERTS_D),
        {CLIENT_CONTAINERD_CERTS_D "/registry.test/hosts.toml", 0644},
        {CLIENT_CONTAINERD_CERTS_D "/registry.test:4443/hosts.toml", 0644},
        {SIGNERS_PATH, 0644},
};

/* Every file of client_files below root (relative to dir), with its mode. */
static void assert_client_files(const char *root) {
        for (size_t i = 0; i < ELEMENTSOF(client_files); i++) {
                const char *path = p("%s%s", root, client_files[i].path);
                mode_t mode = mode_of(path);

                if (mode != client_files[i].mode)
                        fail_msg("%s: mode %04o, expected %04o", path, (unsigned) mode,
                                 (unsigned) client_files[i].mode);
        }
}

/* The rules pki export writes for host, its signers' key at *ret_key_path. */
static char *fragment(const char *host, char **ret_key_path) {
        _cleanup_free_ char *pull = NULL, *push = NULL;
        char *json = NULL, *err = NULL;

        assert_int_equal(bundle_authority(host, 443, &pull), 0);
        assert_int_equal(bundle_authority(host, 4443, &push), 0);
        const PolicyScope scopes[] = {{pull, push}, {push, push}};
        assert_int_equal(asprintf(ret_key_path, "/etc/containers/keys/%s/regvisor-signers.gpg", pull) > 0, 1);
        assert_int_equal(policy_merge("{}", POLICY_GPG, *ret_key_path, scopes, 2, &json, &err), 1);
        return json;
}

static int write_bundle_full(const char *host, const char *ca, const char *key, const char *to, char **ret_error) {
        _cleanup_free_ char *key_path = NULL, *frag = fragment(host, &key_path);
        BundleSpec s = {
                .client = "build-01", .host = host, .pull_port = 443, .push_port = 4443,
                .ca_pem = ca, .cert_pem = CERT, .key_pem = key,
                .signers = SIGNERS, .signers_size = strlen(SIGNERS), .key_path = key_path,
                .policy_fragment = frag,
        };
        return bundle_write(&s, to, ret_error);
}

static int write_bundle(const char *host, const char *key, const char *to, char **ret_error) {
        return write_bundle_full(host, CA, key, to, ret_error);
}

static int write_bundle_ca(const char *host, const char *ca, const char *to, char **ret_error) {
        return write_bundle_full(host, ca, KEY, to, ret_error);
}

static void test_bundle_layout_and_modes(void **state) {
        _cleanup_free_ char *err = NULL, *toml = NULL, *pull_toml = NULL, *readme = NULL, *manifest = NULL,
                            *key = NULL;
        _cleanup_free_ char *b = strdup(p("bundle"));

        assert_int_equal(write_bundle("registry.test", KEY, b, &err), 0);
        assert_int_equal(mode_of(b), 0700);
        assert_client_files("bundle/files");
        /* No private key for pulls: 443 is anonymous. */
        assert_false(exists(p("bundle/files/etc/containers/certs.d/registry.test/client.key")));
        key = slurp(p("bundle/files/etc/containers/certs.d/registry.test:4443/client.key"));
        assert_string_equal(key, KEY);

        /* containerd: a [host."https://NAME:PORT"] table with ca and client,
         * no top-level server line (containerd issue 10027). */
        toml = slurp(p("bundle/files/etc/containerd/certs.d/registry.test:4443/hosts.toml"));
        assert_non_null(strstr(toml, "[host.\"https://registry.test:4443\"]\n"));
        assert_non_null(strstr(toml, "  ca = \"/etc/containerd/certs.d/registry.test:4443/ca.crt\"\n"));
        assert_non_null(strstr(toml, "  client = [[\"/etc/containerd/certs.d/registry.test:4443/client.cert\", "
                                     "\"/etc/containerd/certs.d/registry.test:4443/client.key\"]]\n"));
        assert_null(strstr(toml, "\nserver"));
        assert_false(strncmp(toml, "server", 6) == 0);
        pull_toml = slurp(p("bundle/files/etc/containerd/certs.d/registry.test/hosts.toml"));
        assert_non_null(strstr(pull_toml, "[host.\"https://registry.test\"]\n"));
        assert_null(strstr(pull_toml, "client ="));
        assert_null(strstr(pull_toml, "\nserver"));

        manifest = slurp(p("bundle/MANIFEST"));
        for (size_t i = 0; i < ELEMENTSOF(client_files); i++) {
                char line[256];

                snprintf(line, sizeof line, "\n%04o %s\n", (unsigned) client_files[i].mode, client_files[i].path);
                if (!strstr(manifest, line))
                        fail_msg("no line '%s' in the MANIFEST", line + 1);
        }
        assert_non_null(strstr(manifest, "\npolicy policy-fragment.json\n"));
        readme = slurp(p("bundle/README"));
        assert_non_null(strstr(readme, "127.0.0.0/8"));
        assert_non_null(strstr(readme, "issue 10027"));

        /* Never into an existing directory: no mix with an older bundle. */
        free(err);
        err = NULL;
        assert_int_equal(write_bundle("registry.test", KEY, b, &err), -EEXIST);
}

static void test_bundle_without_key(void **state) {
        _cleanup_free_ char *err = NULL, *manifest = NULL, *readme = NULL;

        assert_int_equal(write_bundle("registry.test", NULL, p("nokey"), &err), 0);
        manifest = slurp(p("nokey/MANIFEST"));
        /* Not in the bundle: install takes the client's own key. */
        assert_null(strstr(manifest, "0600 "));
        assert_non_null(strstr(manifest, "\nclient-key /etc/containers/certs.d/registry.test:4443/client.key\n"));
        assert_non_null(strstr(manifest, "\nclient-key /etc/docker/certs.d/registry.test:4443/client.key\n"));
        assert_non_null(strstr(manifest, "client.cert"));
        assert_false(exists(p("nokey/files/etc/containers/certs.d/registry.test:4443/client.key")));
        readme = slurp(p("nokey/README"));
        assert_non_null(strstr(readme, "no private key"));
}

static void test_bundle_refuses_loopback(void **state) {
        static const char *const bad[] = {"127.0.0.1", "127.1.2.3", "localhost", "[::1]"};
        static const char *const good[] = {"registry.test", "198.18.0.1", "[2001:db8::1]", "10.0.0.1"};

        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                _cleanup_free_ char *err = NULL;
                assert_int_equal(bundle_host_usable(bad[i]), 0);
                assert_int_equal(write_bundle(bad[i], KEY, p("loop%zu", i), &err), -EINVAL);
                assert_non_null(strstr(err, "127"));
                assert_false(exists(p("loop%zu", i)));
        }
        for (size_t i = 0; i < ELEMENTSOF(good); i++)
                assert_int_equal(bundle_host_usable(good[i]), 1);
}

#define OTHER_POLICY                                                                                               \
        "{\"default\": [{\"type\": \"reject\"}], \"transports\": {\"docker\": {\"quay.io\": [{\"type\": "          \
        "\"insecureAcceptAnything\"}]}, \"docker-daemon\": {\"\": [{\"type\": \"insecureAcceptAnything\"}]}}}\n"

static void test_install_twice_then_uninstall(void **state) {
        _cleanup_(install_plan_done) InstallPlan plan = {}, again = {};
        _cleanup_free_ char *err = NULL, *policy = NULL, *after = NULL;
        _cleanup_free_ char *root = strdup(p("root1")), *b = strdup(p("b1"));
        size_t writes = 0, mkdirs = 0, policies = 0;

        assert_int_equal(write_bundle("registry.test", KEY, b, &err), 0);
        /* An existing policy.json with other rules, and /etc/containers. */
        assert_int_equal(mkdir_parents(p("root1/etc/containers/policy.json")), 0);
        assert_int_equal(write_file_atomic(p("root1/etc/containers/policy.json"), OTHER_POLICY,
                                           strlen(OTHER_POLICY), 0644, (uid_t) -1, (gid_t) -1),
                         0);

        assert_int_equal(client_install_plan(root, b, &plan, &err), 0);
        for (size_t i = 0; i < plan.n; i++) {
                writes += plan.actions[i].kind == INSTALL_WRITE;
                mkdirs += plan.actions[i].kind == INSTALL_MKDIR;
                policies += plan.actions[i].kind == INSTALL_POLICY;
                /* Only what does not exist yet: /etc and /etc/containers do. */
                if (plan.actions[i].kind == INSTALL_MKDIR) {
                        assert_string_not_equal(plan.actions[i].path, "/etc");
                        assert_string_not_equal(plan.actions[i].path, "/etc/containers");
                }
        }
        /* ca.crt twice, client.cert, client.key in each of 3 trees; 2 hosts.toml; signers */
        assert_int_equal(writes, 15);
        assert_int_equal(policies, 1);
        assert_true(mkdirs >= 6);
        /* --dry-run is the plan alone: nothing written yet. */
        assert_false(exists(p("root1/etc/containers/certs.d")));

        assert_int_equal(client_install_apply(root, &plan, &err), 0);
        assert_client_files("root1");
        /* The record is root's alone: it says where saved contents are. */
        assert_int_equal(mode_of(p("root1" CLIENT_RECORD_PATH)), 0600);
        policy = slurp(p("root1/etc/containers/policy.json"));
        assert_non_null(strstr(policy, "quay.io"));
        assert_non_null(strstr(policy, "docker-daemon"));
        assert_non_null(strstr(policy, "\"registry.test:4443\""));
        assert_non_null(strstr(policy, "signedBy"));

        /* A second install plans nothing. */
        assert_int_equal(client_install_plan(root, b, &again, &err), 0);
        assert_int_equal(again.n, 0);
        assert_int_equal(client_install_apply(root, &again, &err), 0);

        assert_int_equal(client_uninstall(root, false, stdout, &err), 0);
        assert_false(exists(p("root1/etc/containers/certs.d")));
        assert_false(exists(p("root1/etc/containerd")));
        assert_false(exists(p("root1/etc/docker")));
        assert_false(exists(p("root1/etc/containers/keys")));
        assert_false(exists(p("root1/var/lib/regvisor-client")));
        assert_true(exists(p("root1/etc/containers")));
        after = slurp(p("root1/etc/containers/policy.json"));
        assert_non_null(strstr(after, "quay.io"));
        assert_non_null(strstr(after, "docker-daemon"));
        assert_non_null(strstr(after, "\"reject\""));
        assert_null(strstr(after, "registry.test"));
}

static void test_uninstall_removes_created_policy_keeps_foreign_files(void **state) {
        _cleanup_(install_plan_done) InstallPlan plan = {};
        _cleanup_free_ char *err = NULL;
        _cleanup_free_ char *root = strdup(p("root2")), *b = strdup(p("b2"));

        assert_int_equal(write_bundle("registry.test", KEY, b, &err), 0);
        assert_int_equal(client_install_plan(root, b, &plan, &err), 0);
        assert_int_equal(client_install_apply(root, &plan, &err), 0);
        assert_true(exists(p("root2/etc/containers/policy.json")));
        /* Something else later puts a file into a directory install made. */
        assert_int_equal(write_file_atomic(p("root2/etc/containers/certs.d/other.example/ca.crt"), "x", 1, 0644,
                                           (uid_t) -1, (gid_t) -1) == 0 ||
                                 (mkdir(p("root2/etc/containers/certs.d/other.example"), 0755) == 0 &&
                                  write_file_atomic(p("root2/etc/containers/certs.d/other.example/ca.crt"), "x", 1,
                                                    0644, (uid_t) -1, (gid_t) -1) == 0),
                         1);

        assert_int_equal(client_uninstall(root, true, stdout, &err), 0);
        assert_true(exists(p("root2/etc/containers/certs.d/registry.test/ca.crt"))); /* dry run */
        assert_int_equal(client_uninstall(root, false, stdout, &err), 0);
        assert_false(exists(p("root2/etc/containers/policy.json")));
        assert_false(exists(p("root2/etc/containers/certs.d/registry.test")));
        assert_true(exists(p("root2/etc/containers/certs.d/other.example/ca.crt")));
        /* Nothing recorded any more: a second uninstall has nothing to do. */
        assert_int_equal(client_uninstall(root, false, stdout, &err), 0);
        assert_true(exists(p("root2/etc/containers/certs.d/other.example/ca.crt")));
}

static void test_install_refuses_bad_manifest(void **state) {
        static const char *const bad[] = {
                "0644 /etc/passwd\n",
                "0644 /etc/containers/certs.d/../../passwd\n",
                "0644 /etc/containers/certs.d/x/./y\n",
                "0644 /etc/containers/certs.d/x/..\n",
                "0644 /etc/containers/certs.d/x/.\n",
                "0644 /etc/containers/certs.d/..\n",
                "0644 /etc/containers/keys/.\n",
                "client-key /etc/containers/certs.d/x/..\n",
                "4755 /etc/containers/certs.d/x/ca.crt\n",
                "0644 relative/ca.crt\n",
                "policy ../../etc/shadow\n",
                "garbage\n",
        };
        _cleanup_free_ char *b = strdup(p("b3")), *root = strdup(p("root3"));

        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                _cleanup_(install_plan_done) InstallPlan plan = {};
                _cleanup_free_ char *err = NULL;
                assert_int_equal(mkdir_parents(p("b3/MANIFEST")), 0);
                assert_int_equal(write_file_atomic(p("b3/MANIFEST"), bad[i], strlen(bad[i]), 0644, (uid_t) -1,
                                                   (gid_t) -1),
                                 0);
                int r = client_install_plan(root, b, &plan, &err);
                if (r != -EINVAL)
                        fail_msg("%s: %d %s", bad[i], r, err ?: "");
                assert_non_null(err);
        }
        assert_false(exists(p("root3")));
}

static void test_request_csr_verifies_and_names(void **state) {
        _cleanup_(EVP_PKEY_freep) EVP_PKEY *key = NULL, *pub = NULL;
        _cleanup_(X509_REQ_freep) X509_REQ *req = NULL, *back = NULL, *bad = NULL;
        _cleanup_free_ char *pem = NULL, *cn = NULL, *csr = NULL, *err = NULL, *err2 = NULL, *key1 = NULL,
                            *key2 = NULL;
        size_t n;

        assert_int_equal(pki_generate_key(KEY_EC_P256, &key), 0);
        assert_int_equal(pki_make_csr(key, "build-02", &req), 0);
        assert_int_equal(pki_csr_to_pem(req, &pem, &n), 0);
        assert_int_equal(pki_csr_from_pem(pem, n, &back), 0);
        assert_int_equal(pki_csr_verify(back, &pub, &cn), 0);
        assert_string_equal(cn, "build-02");
        assert_int_equal(EVP_PKEY_eq(pub, key), 1);

        /* A request for one key signed by another: the requester does not
         * hold the key it asks a certificate for. Refused. */
        _cleanup_(EVP_PKEY_freep) EVP_PKEY *other = NULL;
        _cleanup_free_ char *bad_pem = NULL;
        assert_int_equal(pki_generate_key(KEY_EC_P256, &other), 0);
        bad = X509_REQ_new();
        assert_non_null(bad);
        assert_int_equal(X509_NAME_add_entry_by_NID(X509_REQ_get_subject_name(bad), NID_commonName, MBSTRING_UTF8,
                                                    (const unsigned char *) "build-02", -1, -1, 0),
                         1);
        assert_int_equal(X509_REQ_set_pubkey(bad, other), 1);
        assert_true(X509_REQ_sign(bad, key, EVP_sha256()) > 0);
        assert_int_equal(pki_csr_to_pem(bad, &bad_pem, &n), 0);
        X509_REQ_free(bad);
        bad = NULL;
        assert_int_equal(pki_csr_from_pem(bad_pem, n, &bad), 0);
        EVP_PKEY_free(pub);
        pub = NULL;
        free(cn);
        cn = NULL;
        assert_int_equal(pki_csr_verify(bad, &pub, &cn), -EBADMSG);
        assert_null(pub);

        /* client request: the key made once, 0600 in a 0700 directory; a
         * second request is for the same key. */
        char *root = strdup(p("root4"));
        assert_int_equal(mkdir(root, 0755), 0);
        assert_int_equal(client_request(root, "build-02", p("root4/a.csr"), &err), 0);
        assert_int_equal(mode_of(p("root4" CLIENT_OWN_KEYS_DIR)), 0700);
        assert_int_equal(mode_of(p("root4" CLIENT_OWN_KEYS_DIR "/build-02.key")), 0600);
        key1 = slurp(p("root4" CLIENT_OWN_KEYS_DIR "/build-02.key"));
        assert_int_equal(client_request(root, "build-02", p("root4/b.csr"), &err2), 0);
        key2 = slurp(p("root4" CLIENT_OWN_KEYS_DIR "/build-02.key"));
        assert_string_equal(key1, key2);
        csr = slurp(p("root4/b.csr"));
        assert_non_null(strstr(csr, "BEGIN CERTIFICATE REQUEST"));
        free(root);
}

/* A bundle without a key (pki sign): install copies the key client request
 * made here, and refuses clearly when there is none. */
static void test_install_keyless_bundle_uses_own_key(void **state) {
        _cleanup_(install_plan_done) InstallPlan none = {}, plan = {};
        _cleanup_free_ char *err = NULL, *err2 = NULL, *err3 = NULL, *manifest = NULL, *own = NULL,
                            *installed = NULL;
        _cleanup_free_ char *root = strdup(p("root5")), *b = strdup(p("b5"));

        assert_int_equal(write_bundle("registry.test", NULL, b, &err), 0);
        manifest = slurp(p("b5/MANIFEST"));
        assert_non_null(strstr(manifest, "\nclient build-01\n"));
        assert_non_null(strstr(manifest, "\nclient-key /etc/containers/certs.d/registry.test:4443/client.key\n"));
        assert_int_equal(mkdir(root, 0755), 0);
        assert_int_equal(client_install_plan(root, b, &none, &err2), -ENOENT);
        assert_non_null(strstr(err2, "client request build-01"));

        assert_int_equal(client_request(root, "build-01", p("root5/build-01.csr"), &err3), 0);
        assert_int_equal(client_install_plan(root, b, &plan, &err3), 0);
        assert_int_equal(client_install_apply(root, &plan, &err3), 0);
        own = slurp(p("root5" CLIENT_OWN_KEYS_DIR "/build-01.key"));
        installed = slurp(p("root5/etc/containerd/certs.d/registry.test:4443/client.key"));
        assert_string_equal(own, installed);
        assert_int_equal(mode_of(p("root5/etc/containers/certs.d/registry.test:4443/client.key")), 0600);
        assert_int_equal(client_uninstall(root, false, stdout, &err3), 0);
        assert_false(exists(p("root5/etc/containers/certs.d/registry.test:4443/client.key")));
        /* The client's own key is not install's to remove. */
        assert_true(exists(p("root5" CLIENT_OWN_KEYS_DIR "/build-01.key")));
}


/* An IPv6 literal: "[ADDR]" and "[ADDR]:PORT" in certs.d directory names
 * (containers/image's reference.Domain(), docker), containerd's hosts
 * directory and its https://[ADDR]:PORT URL, and the policy scopes. */
static void test_bundle_ipv6(void **state) {
        _cleanup_free_ char *err = NULL, *toml = NULL, *pull_toml = NULL, *auth = NULL, *auth443 = NULL;
        _cleanup_(install_plan_done) InstallPlan plan = {};
        _cleanup_free_ char *b = strdup(p("b6")), *root = strdup(p("root6"));

        assert_int_equal(bundle_authority("2001:db8::1", 4443, &auth), 0);
        assert_string_equal(auth, "[2001:db8::1]:4443");
        assert_int_equal(bundle_authority("[2001:db8::1]", 443, &auth443), 0);
        assert_string_equal(auth443, "[2001:db8::1]");
        assert_int_equal(bundle_host_usable("::1"), 0);
        assert_int_equal(bundle_host_usable("2001:db8::1"), 1);

        assert_int_equal(write_bundle("2001:db8::1", KEY, b, &err), 0);
        assert_int_equal(mode_of(p("b6/files/etc/containers/certs.d/[2001:db8::1]:4443/client.key")), 0600);
        assert_true(exists(p("b6/files/etc/containers/certs.d/[2001:db8::1]/ca.crt")));
        assert_true(exists(p("b6/files/etc/docker/certs.d/[2001:db8::1]:4443/client.cert")));
        toml = slurp(p("b6/files/etc/containerd/certs.d/[2001:db8::1]:4443/hosts.toml"));
        assert_non_null(strstr(toml, "[host.\"https://[2001:db8::1]:4443\"]\n"));
        assert_non_null(strstr(toml, "  ca = \"/etc/containerd/certs.d/[2001:db8::1]:4443/ca.crt\"\n"));
        pull_toml = slurp(p("b6/files/etc/containerd/certs.d/[2001:db8::1]/hosts.toml"));
        assert_non_null(strstr(pull_toml, "[host.\"https://[2001:db8::1]\"]\n"));

        assert_int_equal(mkdir(root, 0755), 0);
        assert_int_equal(client_install_plan(root, b, &plan, &err), 0);
        assert_int_equal(client_install_apply(root, &plan, &err), 0);
        assert_true(exists(p("root6/etc/containers/certs.d/[2001:db8::1]:4443/client.cert")));
        assert_int_equal(client_uninstall(root, false, stdout, &err), 0);
        assert_false(exists(p("root6/etc/containers/certs.d")));
}

#define COSIGN_PUB "-----BEGIN PUBLIC KEY-----\nCOSIGN\n-----END PUBLIC KEY-----\n"
#define COSIGN_PATH "/etc/containers/keys/registry.test/regvisor-sigstore.pub"

/* [signing] mode = sigstore: the cosign public key and sigstoreSigned rules. */
static void test_bundle_sigstore(void **state) {
        static const PolicyScope scopes[] = {{"registry.test", "registry.test:4443"},
                                             {"registry.test:4443", "registry.test:4443"}};
        _cleanup_(install_plan_done) InstallPlan plan = {};
        _cleanup_free_ char *err = NULL, *frag = NULL, *readme = NULL, *manifest = NULL, *policy = NULL,
                            *key = NULL;
        _cleanup_free_ char *b = strdup(p("b7")), *root = strdup(p("root7"));

        assert_int_equal(policy_merge("{}", POLICY_SIGSTORE, COSIGN_PATH, scopes, 2, &frag, &err), 1);
        BundleSpec s = {
                .client = "build-01", .host = "registry.test", .pull_port = 443, .push_port = 4443,
                .ca_pem = CA, .cert_pem = CERT, .key_pem = KEY,
                .signers = COSIGN_PUB, .signers_size = strlen(COSIGN_PUB), .key_path = COSIGN_PATH,
                .signers_kind = "the cosign public key", .policy_fragment = frag,
        };
        assert_int_equal(bundle_write(&s, b, &err), 0);
        manifest = slurp(p("b7/MANIFEST"));
        assert_non_null(strstr(manifest, "\n0644 " COSIGN_PATH "\n"));
        assert_null(strstr(manifest, "regvisor-signers.gpg"));
        readme = slurp(p("b7/README"));
        assert_non_null(strstr(readme, "the cosign public key: " COSIGN_PATH));
        assert_null(strstr(readme, "regvisor-signers.gpg"));

        assert_int_equal(mkdir(root, 0755), 0);
        assert_int_equal(client_install_plan(root, b, &plan, &err), 0);
        assert_int_equal(client_install_apply(root, &plan, &err), 0);
        key = slurp(p("root7" COSIGN_PATH));
        assert_string_equal(key, COSIGN_PUB);
        policy = slurp(p("root7/etc/containers/policy.json"));
        assert_non_null(strstr(policy, "\"sigstoreSigned\""));
        assert_non_null(strstr(policy, "\"keyPath\": \"" COSIGN_PATH "\""));
        assert_non_null(strstr(policy, "\"matchRepository\""));
        assert_null(strstr(policy, "GPGKeys"));
}

#define OLD_CA "-----BEGIN CERTIFICATE-----\nOLD\n-----END CERTIFICATE-----\n"
#define CA2 "-----BEGIN CERTIFICATE-----\nCA2\n-----END CERTIFICATE-----\n"
#define PREVIOUS_POLICY                                                                                            \
        "{\"default\": [{\"type\": \"reject\"}], \"transports\": {\"docker\": {\"registry.test\": [{\"type\": "      \
        "\"insecureAcceptAnything\"}], \"quay.io\": [{\"type\": \"reject\"}]}}}\n"

/* What install replaced, uninstall puts back: a file's content and mode, a
 * policy rule for the same scope; what it added alone goes. A second
 * install (a newer bundle) does not take install's own files for the
 * machine's. */
static void test_uninstall_restores_replaced(void **state) {
        _cleanup_(install_plan_done) InstallPlan plan = {}, plan2 = {};
        _cleanup_free_ char *err = NULL, *ca = NULL, *policy = NULL, *record = NULL, *frag = NULL,
                            *saved1 = NULL;
        _cleanup_free_ char *root = strdup(p("root8")), *b = strdup(p("b8")), *b2 = strdup(p("b8b"));
        FILE *f;
        char *out = NULL;
        size_t outn = 0;
        bool replaces = false;

        assert_int_equal(write_bundle("registry.test", KEY, b, &err), 0);
        assert_int_equal(mkdir_parents(p("root8/etc/containers/certs.d/registry.test/ca.crt")), 0);
        assert_int_equal(write_file_atomic(p("root8/etc/containers/certs.d/registry.test/ca.crt"), OLD_CA,
                                           strlen(OLD_CA), 0640, (uid_t) -1, (gid_t) -1),
                         0);
        assert_int_equal(write_file_atomic(p("root8/etc/containers/policy.json"), PREVIOUS_POLICY,
                                           strlen(PREVIOUS_POLICY), 0644, (uid_t) -1, (gid_t) -1),
                         0);
        assert_int_equal(client_install_plan(root, b, &plan, &err), 0);
        for (size_t i = 0; i < plan.n; i++)
                if (streq(plan.actions[i].path, "/etc/containers/certs.d/registry.test/ca.crt"))
                        replaces = plan.actions[i].replaces;
        assert_true(replaces);
        f = open_memstream(&out, &outn);
        install_plan_print(&plan, f);
        fclose(f);
        assert_non_null(strstr(out, "replace /etc/containers/certs.d/registry.test/ca.crt (0644)"));
        free(out);
        assert_int_equal(client_install_apply(root, &plan, &err), 0);
        ca = slurp(p("root8/etc/containers/certs.d/registry.test/ca.crt"));
        assert_string_equal(ca, CA);
        free(ca);
        record = slurp(p("root8" CLIENT_RECORD_PATH));
        assert_non_null(strstr(record, "replaced 0640 1 /etc/containers/certs.d/registry.test/ca.crt\n"));
        assert_null(strstr(record, "file /etc/containers/certs.d/registry.test/ca.crt\n"));
        assert_int_equal(mode_of(p("root8/var/lib/regvisor-client/saved")), 0700);
        assert_int_equal(mode_of(p("root8/var/lib/regvisor-client/saved/1")), 0600);
        saved1 = slurp(p("root8/var/lib/regvisor-client/saved/1"));
        assert_string_equal(saved1, OLD_CA);
        frag = slurp(p("root8/var/lib/regvisor-client/saved/policy-fragment.json"));
        assert_non_null(strstr(frag, "insecureAcceptAnything"));
        assert_null(strstr(frag, "quay.io"));
        assert_int_equal(mode_of(p("root8/var/lib/regvisor-client/saved/policy-fragment.json")), 0600);

        /* A newer bundle (another CA) replaces install's own files: the
         * machine's original stays what is restored. */
        assert_int_equal(write_bundle_ca("registry.test", CA2, b2, &err), 0);
        assert_int_equal(client_install_plan(root, b2, &plan2, &err), 0);
        assert_true(plan2.n > 0);
        assert_int_equal(client_install_apply(root, &plan2, &err), 0);
        ca = slurp(p("root8/etc/containers/certs.d/registry.test/ca.crt"));
        assert_string_equal(ca, CA2);
        free(ca);
        free(record);
        record = slurp(p("root8" CLIENT_RECORD_PATH));
        assert_null(strstr(record, "replaced 0644"));

        assert_int_equal(client_uninstall(root, false, stdout, &err), 0);
        ca = slurp(p("root8/etc/containers/certs.d/registry.test/ca.crt"));
        assert_string_equal(ca, OLD_CA);
        policy = slurp(p("root8/etc/containers/policy.json"));
        assert_non_null(strstr(policy, "\"registry.test\": [\n"));
        assert_non_null(strstr(policy, "insecureAcceptAnything"));
        assert_non_null(strstr(policy, "quay.io"));
        assert_null(strstr(policy, "registry.test:4443"));
        assert_null(strstr(policy, "signedBy"));
        assert_int_equal(mode_of(p("root8/etc/containers/certs.d/registry.test/ca.crt")), 0640);
        assert_false(exists(p("root8/etc/containers/certs.d/registry.test:4443")));
        assert_false(exists(p("root8/var/lib/regvisor-client/saved")));
        assert_false(exists(p("root8" CLIENT_RECORD_PATH)));

        /* A record naming a path install never writes: no restore there. */
        static const char bad[] = "replaced 0644 1 /etc/passwd\n";
        _cleanup_free_ char *err2 = NULL;
        assert_int_equal(mkdir_parents(p("root8/var/lib/regvisor-client/saved/1")), 0);
        assert_int_equal(write_file_atomic(p("root8/var/lib/regvisor-client/saved/1"), "x", 1, 0600, (uid_t) -1,
                                           (gid_t) -1),
                         0);
        assert_int_equal(write_file_atomic(p("root8" CLIENT_RECORD_PATH), bad, strlen(bad), 0600, (uid_t) -1,
                                           (gid_t) -1),
                         0);
        assert_int_equal(client_uninstall(root, false, stdout, &err2), -EBADMSG);
        assert_false(exists(p("root8/etc/passwd")));
}

/* pki sign --scope: a [scopes] line of its own at the end, canonical,
 * once; never a first [scopes], never over the operator's line. */
static void test_scope_grant(void **state) {
        static const char base[] = "[tls]\nserver_names = registry.test\n[scopes]\nci = *\n[push]\nrate = 10r/s\n";
        _cleanup_free_ char *text = NULL, *again = NULL, *err = NULL, *err2 = NULL, *err3 = NULL, *err4 = NULL,
                            *err5 = NULL, *x = NULL;

        assert_int_equal(scope_grant("[tls]\nserver_names = registry.test\n", "c.conf", "build-02", "app/*", &x,
                                     &err),
                         -ENOENT);
        assert_non_null(strstr(err, "no [scopes]"));
        assert_null(x);

        assert_int_equal(scope_grant(base, "c.conf", "build-02", "app/*  tools/*", &text, &err2), 1);
        assert_non_null(strstr(text, base));
        assert_non_null(strstr(text, "\n[scopes]\n# regvisor pki sign --scope\nbuild-02 = app/*,tools/*\n"));
        /* The same again: nothing to write. */
        assert_int_equal(scope_grant(text, "c.conf", "build-02", "app/*, tools/*", &again, &err3), 0);
        assert_null(again);
        /* Other patterns for a client with a line: the operator's call. */
        assert_int_equal(scope_grant(text, "c.conf", "build-02", "x/*", &again, &err4), -EEXIST);
        assert_non_null(strstr(err4, "build-02"));
        assert_int_equal(scope_grant(text, "c.conf", "ci", "*", &again, &err5), 0);
        free(err5);
        err5 = NULL;
        assert_int_equal(scope_grant(text, "c.conf", "ci", "app/*", &again, &err5), -EEXIST);

        /* Not a pattern, or more than patterns: refused, nothing made. */
        static const char *const bad[] = {"a*b", "app/../x", "app/*\nci2 = *", "app/*\n[tls]", ""};
        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                _cleanup_free_ char *e = NULL, *t = NULL;
                int r = scope_grant(base, "c.conf", "build-03", bad[i], &t, &e);
                if (r != -EINVAL)
                        fail_msg("'%s': %d %s", bad[i], r, t ?: "");
                assert_null(t);
        }
        _cleanup_free_ char *e = NULL, *t = NULL;
        assert_int_equal(scope_grant(base, "c.conf", "Build/x", "app/*", &t, &e), -EINVAL);
}

/* client_install_plan() of bundle b fails with r and an error containing
 * what and why, planning nothing, by openat2() and by the O_NOFOLLOW walk
 * alike. */
static void check_plan_refused(const char *root, const char *b, int r, const char *what, const char *why) {
        for (int walk = 0; walk < 2; walk++) {
                _cleanup_(install_plan_done) InstallPlan plan = {};
                _cleanup_free_ char *e = NULL;
                fileio_force_fd_walk = walk;
                assert_int_equal(client_install_plan(root, b, &plan, &e), r);
                assert_non_null(e);
                assert_non_null(strstr(e, what));
                assert_non_null(strstr(e, why));
                assert_int_equal(plan.n, 0);
        }
        fileio_force_fd_walk = false;
}

/* A bundle whose files/etc/containers/keys is a symlink to a directory of
 * this machine with a 0600 secret, and a MANIFEST line that installs it
 * 0644: refused before anything is written, by openat2() and by the
 * O_NOFOLLOW walk alike. */
static void test_install_refuses_symlinked_directory(void **state) {
        static const char line[] = "0644 /etc/containers/keys/registry.test/x.key\n";
        _cleanup_free_ char *err = NULL, *manifest = NULL, *m2 = NULL;
        _cleanup_free_ char *root = strdup(p("root9")), *b = strdup(p("b9"));

        assert_int_equal(write_bundle("registry.test", KEY, b, &err), 0);
        assert_int_equal(mkdir_parents(p("secret9/x.key")), 0);
        assert_int_equal(write_file_atomic(p("secret9/x.key"), KEY, strlen(KEY), 0600, (uid_t) -1, (gid_t) -1), 0);
        assert_int_equal(write_file_atomic(p("secret9/regvisor-signers.gpg"), SIGNERS, strlen(SIGNERS), 0644,
                                           (uid_t) -1, (gid_t) -1),
                         0);
        assert_int_equal(remove_directory(p("b9/files/etc/containers/keys/registry.test"), true), 1);
        assert_int_equal(symlink(p("secret9"), p("b9/files/etc/containers/keys/registry.test")), 0);
        manifest = slurp(p("b9/MANIFEST"));
        assert_int_equal(asprintf(&m2, "%s%s", manifest, line) > 0, 1);
        assert_int_equal(write_file_atomic(p("b9/MANIFEST"), m2, strlen(m2), 0644, (uid_t) -1, (gid_t) -1), 0);

        check_plan_refused(root, b, -ELOOP, "/files/etc/containers/keys/", "symbolic link");
        assert_false(exists(p("root9")));
}

/* A policy fragment whose scope carries a newline: it would be a line of
 * its own in install's record ("file /etc/victim"). Refused. */
static void test_install_refuses_injected_scope(void **state) {
        static const char frag[] = "{\"transports\": {\"docker\": "
                                   "{\"registry.test\\nfile /etc/victim\": [{\"type\": \"reject\"}]}}}\n";
        static const char *const bad[] = {"a b", "x\ty", "", "/etc", "reg\"x", "r\x7f"};
        _cleanup_(install_plan_done) InstallPlan plan = {};
        _cleanup_free_ char *err = NULL, *e2 = NULL, *json = NULL;
        _cleanup_strv_free_ char **changed = NULL;
        _cleanup_free_ char *root = strdup(p("root10")), *b = strdup(p("b10"));

        assert_int_equal(policy_merge_fragment(NULL, frag, &json, &changed, &e2), -EBADMSG);
        assert_non_null(e2);
        assert_null(json);
        assert_int_equal(write_bundle("registry.test", KEY, b, &err), 0);
        assert_int_equal(write_file_atomic(p("b10/" BUNDLE_POLICY), frag, strlen(frag), 0644, (uid_t) -1,
                                           (gid_t) -1),
                         0);
        assert_int_equal(client_install_plan(root, b, &plan, &err), -EPERM);
        assert_non_null(strstr(err, "(not a name)"));
        assert_false(exists(p("root10")));
        for (size_t i = 0; i < ELEMENTSOF(bad); i++)
                assert_false(policy_scope_valid(bad[i]));
        assert_true(policy_scope_valid("registry.test:4443"));
        assert_true(policy_scope_valid("[2001:db8::10]:4443/app/x"));
        assert_true(policy_scope_valid("*.example.com"));
}

/* A record naming a file install never writes (made by hand, or by an
 * older install from an injected scope): uninstall removes nothing. */
static void test_uninstall_refuses_foreign_record_lines(void **state) {
        static const char *const bad[] = {
                "file /etc/containers/certs.d/registry.test/ca.crt\nfile /etc/x\n",
                "dir /etc/x\n",
                "file /etc/containers/certs.d/registry.test/ca.crt\npolicy-scope a\nb\n",
                "replaced 0644 1 /etc/x\n",
                "file /etc/containers/certs.d/registry.test/..\n",
                "dir /etc/containers/certs.d/registry.test/..\n",
                "replaced 0644 1 /etc/containers/certs.d/registry.test/.\n",
        };

        assert_int_equal(mkdir_parents(p("root11/etc/containers/certs.d/registry.test/ca.crt")), 0);
        assert_int_equal(mkdir(p("root11/etc/x"), 0755) == 0 || errno == EEXIST, 1);
        assert_int_equal(mkdir_parents(p("root11" CLIENT_RECORD_PATH)), 0);
        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                _cleanup_free_ char *root = strdup(p("root11")), *err = NULL;
                assert_int_equal(write_file_atomic(p("root11/etc/containers/certs.d/registry.test/ca.crt"), CA,
                                                   strlen(CA), 0644, (uid_t) -1, (gid_t) -1),
                                 0);
                assert_int_equal(write_file_atomic(p("root11/etc/x/y"), "y", 1, 0644, (uid_t) -1, (gid_t) -1), 0);
                assert_int_equal(write_file_atomic(p("root11" CLIENT_RECORD_PATH), bad[i], strlen(bad[i]), 0600,
                                                   (uid_t) -1, (gid_t) -1),
                                 0);
                assert_int_equal(client_uninstall(root, false, stdout, &err), -EBADMSG);
                assert_non_null(err);
                assert_true(exists(p("root11/etc/containers/certs.d/registry.test/ca.crt")));
                assert_true(exists(p("root11/etc/x/y")));
                assert_true(exists(p("root11" CLIENT_RECORD_PATH)));
        }
        /* "file /etc/x" itself: a plain file there stays. */
        _cleanup_free_ char *root = strdup(p("root12")), *err = NULL;
        static const char one[] = "file /etc/x\n";
        assert_int_equal(mkdir_parents(p("root12/etc/x")), 0);
        assert_int_equal(write_file_atomic(p("root12/etc/x"), "x", 1, 0644, (uid_t) -1, (gid_t) -1), 0);
        assert_int_equal(mkdir_parents(p("root12" CLIENT_RECORD_PATH)), 0);
        assert_int_equal(write_file_atomic(p("root12" CLIENT_RECORD_PATH), one, strlen(one), 0600, (uid_t) -1,
                                           (gid_t) -1),
                         0);
        assert_int_equal(client_uninstall(root, false, stdout, &err), -EBADMSG);
        assert_true(exists(p("root12/etc/x")));
}

/* A bundle whose ca.crt is a FIFO: refused at once (opening it must not
 * wait for a writer while install runs as root), nothing written. The
 * alarm turns a regression into a failure rather than a hang. */
static void test_install_refuses_fifo(void **state) {
        _cleanup_free_ char *err = NULL;
        _cleanup_free_ char *root = strdup(p("root13")), *b = strdup(p("b13"));

        assert_int_equal(write_bundle("registry.test", KEY, b, &err), 0);
        assert_int_equal(remove_file(p("b13/files/etc/containers/certs.d/registry.test/ca.crt")), 1);
        assert_int_equal(mkfifo(p("b13/files/etc/containers/certs.d/registry.test/ca.crt"), 0644), 0);
        alarm(10);
        check_plan_refused(root, b, -EBADFD, "/files/etc/containers/certs.d/registry.test/ca.crt", "");
        alarm(0);
        assert_false(exists(p("root13")));
}

/* Adds line to bundle b's MANIFEST (a "registry" line before the others,
 * anything else at the end) and, when data, puts data at files/PATH (the
 * line's path): what a bundle tampered with in transit, or exported by a
 * compromised registry host, could hold. */
static void tamper(const char *b, const char *line, const char *path, const char *data) {
        _cleanup_free_ char *mpath = NULL, *manifest = NULL, *m2 = NULL, *fpath = NULL;
        char *at;

        assert_int_equal(asprintf(&mpath, "%s/MANIFEST", b) > 0, 1);
        manifest = slurp(mpath);
        at = strncmp(line, "registry ", 9) == 0 ? strstr(manifest, "\nregistry ") + 1 : manifest + strlen(manifest);
        assert_int_equal(asprintf(&m2, "%.*s%s\n%s", (int) (at - manifest), manifest, line, at) > 0, 1);
        assert_int_equal(write_file_atomic(mpath, m2, strlen(m2), 0644, (uid_t) -1, (gid_t) -1), 0);
        if (!data)
                return;
        assert_int_equal(asprintf(&fpath, "%s/files%s", b, path) > 0, 1);
        assert_int_equal(mkdir_parents(fpath), 0);
        assert_int_equal(write_file_atomic(fpath, data, strlen(data), 0644, (uid_t) -1, (gid_t) -1), 0);
}

#define POLICY_WITH(scope, rule)                                                                                   \
        "{\"transports\": {\"docker\": {\"registry.test\": [{\"type\": \"reject\"}], \"" scope "\": [" rule "]}}}\n"
#define ACCEPT "{\"type\": \"insecureAcceptAnything\"}"
#define SIGNED_BY_EVIL "{\"type\": \"signedBy\", \"keyType\": \"GPGKeys\", \"keyPath\": \"/tmp/evil.gpg\"}"

/* A bundle is for its own registry alone: a file in another registry's
 * certs.d directory (podman's, docker's, containerd's hosts.toml), a key
 * file that is not below the registry's own name, a policy rule for
 * another registry (or one that accepts anything for its own), a second
 * registry name: each refused with one message, nothing written. */
static void test_install_refuses_other_registry(void **state) {
        static const struct {
                const char *line, *path, *data, *policy, *expect;
        } bad[] = {
                {"0644 /etc/containers/certs.d/other.example/ca.crt", "/etc/containers/certs.d/other.example/ca.crt",
                 CA, NULL, "other.example"},
                {"0644 /etc/docker/certs.d/other.example:4443/ca.crt", "/etc/docker/certs.d/other.example:4443/ca.crt",
                 CA, NULL, "other.example:4443"},
                {"0644 /etc/containerd/certs.d/docker.io/hosts.toml", "/etc/containerd/certs.d/docker.io/hosts.toml",
                 "[host.\"https://evil.example\"]\n", NULL, "docker.io"},
                /* A prefix of the registry's name is not its name. */
                {"0644 /etc/containers/certs.d/registry.test.evil/ca.crt",
                 "/etc/containers/certs.d/registry.test.evil/ca.crt", CA, NULL, "registry.test.evil"},
                {"0644 /etc/containers/certs.d/registry.test:443/ca.crt",
                 "/etc/containers/certs.d/registry.test:443/ca.crt", CA, NULL, "registry.test:443"},
                /* Deeper than NAME/FILE: no tree of anyone's. */
                {"0644 /etc/containers/certs.d/registry.test/x/ca.crt", "/etc/containers/certs.d/registry.test/x/ca.crt",
                 CA, NULL, "registry.test/x"},
                /* Another registry's trusted keys, by a shared name. */
                {"0644 /etc/containers/keys/regvisor-signers.gpg", "/etc/containers/keys/regvisor-signers.gpg",
                 SIGNERS, NULL, "regvisor-signers.gpg"},
                {"0644 /etc/containers/keys/other.example/k.gpg", "/etc/containers/keys/other.example/k.gpg", SIGNERS,
                 NULL, "other.example"},
                {"client-key /etc/containers/certs.d/other.example:4443/client.key", NULL, NULL, NULL,
                 "other.example:4443"},
                {"0644 /etc/containers/registries.d/other.yaml", "/etc/containers/registries.d/other.yaml",
                 "docker:\n  other.example:\n    lookaside: http://evil.example\n", NULL, "registries.d"},
                {NULL, NULL, NULL, POLICY_WITH("docker.io", ACCEPT), "docker.io"},
                {NULL, NULL, NULL, POLICY_WITH("other.example/app", SIGNED_BY_EVIL), "other.example/app"},
                {NULL, NULL, NULL, POLICY_WITH("registry.testx", ACCEPT), "registry.testx"},
                {NULL, NULL, NULL, POLICY_WITH("*.test", ACCEPT), "*.test"},
                {NULL, NULL, NULL, POLICY_WITH("registry.test:4443/app", ACCEPT), "registry.test:4443/app"},
                {NULL, NULL, NULL, POLICY_WITH("registry.test:4443", ""), "registry.test:4443"},
                /* Its names: one registry, never a public nor a loopback one. */
                {"registry other.example:4443", NULL, NULL, NULL, "another registry than other.example:4443"},
                {"registry docker.io", NULL, NULL, NULL, "public registry"},
                {"registry 127.0.0.1:4443", NULL, NULL, NULL, "loopback"},
                {"registry registry.test/x", NULL, NULL, NULL, "expected HOST"},
                /* Another port of its host: not the bundle's to take over. */
                {"registry registry.test:5000", NULL, NULL, NULL, "the second name is the push name"},
                {"registry registry.test:4443", NULL, NULL, NULL, "the second name is the push name"},
        };
        static const char other_policy[] = "{\"default\": [{\"type\": \"reject\"}], \"transports\": {\"docker\": "
                                           "{\"docker.io\": [{\"type\": \"signedBy\", \"keyType\": \"GPGKeys\", "
                                           "\"keyPath\": \"/etc/pki/docker.gpg\"}]}}}\n";

        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                _cleanup_(install_plan_done) InstallPlan plan = {};
                _cleanup_free_ char *err = NULL, *b = NULL, *root = NULL, *policy = NULL, *before = NULL;
                int r;

                assert_int_equal(asprintf(&b, "%s/b15-%zu", dir, i) > 0, 1);
                assert_int_equal(asprintf(&root, "%s/root15-%zu", dir, i) > 0, 1);
                assert_int_equal(write_bundle("registry.test", i == 8 ? NULL : KEY, b, &err), 0);
                if (bad[i].line)
                        tamper(b, bad[i].line, bad[i].path, bad[i].data);
                if (bad[i].policy) {
                        assert_int_equal(asprintf(&policy, "%s/" BUNDLE_POLICY, b) > 0, 1);
                        assert_int_equal(write_file_atomic(policy, bad[i].policy, strlen(bad[i].policy), 0644,
                                                           (uid_t) -1, (gid_t) -1),
                                         0);
                }
                /* The machine: another registry's rule, the client's own key. */
                assert_int_equal(mkdir_parents(p("root15-%zu/etc/containers/policy.json", i)), 0);
                assert_int_equal(write_file_atomic(p("root15-%zu/etc/containers/policy.json", i), other_policy,
                                                   strlen(other_policy), 0644, (uid_t) -1, (gid_t) -1),
                                 0);
                assert_int_equal(client_request(root, "build-01", p("root15-%zu/build-01.csr", i), &err), 0);

                r = client_install_plan(root, b, &plan, &err);
                if (r >= 0 || !err || !strstr(err, bad[i].expect))
                        fail_msg("%zu (%s%s): %d, %s", i, bad[i].line ?: "", bad[i].policy ?: "", r, err ?: "no message");
                assert_int_equal(plan.n, 0);
                assert_false(exists(p("root15-%zu/etc/containers/certs.d", i)));
                assert_false(exists(p("root15-%zu/etc/containerd", i)));
                assert_false(exists(p("root15-%zu/etc/docker", i)));
                assert_false(exists(p("root15-%zu/etc/containers/keys", i)));
                assert_false(exists(p("root15-%zu" CLIENT_RECORD_PATH, i)));
                before = slurp(p("root15-%zu/etc/containers/policy.json", i));
                assert_string_equal(before, other_policy);
        }
}

/* Bundle b with manifest as its MANIFEST: refused (-EINVAL) with expect
 * in the message, nothing planned. */
static void manifest_refused(const char *root, const char *b, const char *manifest, const char *expect) {
        _cleanup_(install_plan_done) InstallPlan plan = {};
        _cleanup_free_ char *mpath = NULL, *err = NULL;

        assert_int_equal(asprintf(&mpath, "%s/MANIFEST", b) > 0, 1);
        assert_int_equal(write_file_atomic(mpath, manifest, strlen(manifest), 0644, (uid_t) -1, (gid_t) -1), 0);
        assert_int_equal(client_install_plan(root, b, &plan, &err), -EINVAL);
        assert_non_null(strstr(err, expect));
        assert_int_equal(plan.n, 0);
}

/* The bundle's names: as MANIFEST "registry" lines, every one the same
 * host; install shows them first. A bundle without them (from an older
 * pki export) is refused: re-export it. Its own registry's rule may be
 * replaced (a newer bundle, other keys), and the plan says so. */
static void test_install_names_its_registry(void **state) {
        _cleanup_(install_plan_done) InstallPlan plan = {};
        _cleanup_free_ char *err = NULL, *manifest = NULL, *out = NULL, *stripped = NULL, *third = NULL, *m3 = NULL;
        _cleanup_free_ char *root = strdup(p("root16")), *b = strdup(p("b16")), *ob = strdup(p("b16old")),
                            *b3 = strdup(p("b16third"));
        char *at;
        size_t outn = 0;
        FILE *f;

        assert_int_equal(write_bundle("registry.test", KEY, b, &err), 0);
        manifest = slurp(p("b16/MANIFEST"));
        assert_non_null(strstr(manifest, "\nregistry registry.test\nregistry registry.test:4443\n"));
        assert_int_equal(mkdir_parents(p("root16/etc/containers/policy.json")), 0);
        assert_int_equal(write_file_atomic(p("root16/etc/containers/policy.json"), PREVIOUS_POLICY,
                                           strlen(PREVIOUS_POLICY), 0644, (uid_t) -1, (gid_t) -1),
                         0);
        assert_int_equal(client_install_plan(root, b, &plan, &err), 0);
        f = open_memstream(&out, &outn);
        install_plan_print(&plan, f);
        fclose(f);
        assert_true(strncmp(out, "bundle for the registry registry.test (registry.test, registry.test:4443)\n",
                            strlen("bundle for the registry registry.test (registry.test, registry.test:4443)\n")) == 0);
        assert_non_null(strstr(out, "replace the rule for registry.test (insecureAcceptAnything -> signedBy)"));
        /* A third name, another port of its host: refused. */
        assert_int_equal(write_bundle("registry.test", KEY, b3, &err), 0);
        third = slurp(p("b16third/MANIFEST"));
        at = strstr(third, "registry registry.test:4443\n") + strlen("registry registry.test:4443\n");
        assert_int_equal(asprintf(&m3, "%.*sregistry registry.test:5000\n%s", (int) (at - third), third, at) > 0, 1);
        manifest_refused(root, b3, m3, "registry registry.test:5000: a third name");
        /* --registry: its pull name, exactly. */
        assert_true(install_plan_for(&plan, "registry.test"));
        assert_false(install_plan_for(&plan, "registry.test:4443"));
        assert_false(install_plan_for(&plan, "registry.tes"));
        assert_false(install_plan_for(&plan, "docker.io"));
        assert_false(install_plan_for(&plan, "registry.test:5000"));

        /* An older bundle: no registry lines. */
        assert_int_equal(write_bundle("registry.test", KEY, ob, &err), 0);
        free(manifest);
        manifest = slurp(p("b16old/MANIFEST"));
        stripped = strdup(manifest);
        char *w = stripped;
        for (char *l = manifest, *e; *l; l = e) {
                e = strchrnul(l, '\n');
                if (*e)
                        e++;
                if (strncmp(l, "registry ", 9) != 0) {
                        memcpy(w, l, (size_t) (e - l));
                        w += e - l;
                }
        }
        *w = '\0';
        manifest_refused(root, ob, stripped, "pki export");
}

/* The identities pki export writes for registry.test: the pull name's
 * signatures name the push name. */
#define ID_PULL "{\"type\": \"remapIdentity\", \"prefix\": \"registry.test\", \"signedPrefix\": \"registry.test:4443\"}"
#define ID_PUSH "{\"type\": \"matchRepoDigestOrExact\"}"
#define GPG_RULE(path, id) "[{\"type\": \"signedBy\", \"keyType\": \"GPGKeys\", \"keyPath\": \"" path "\", " \
                           "\"signedIdentity\": " id "}]"
#define FRAG2(pull, push) "{\"transports\": {\"docker\": {\"registry.test\": " pull ", \"registry.test:4443\": " push "}}}\n"
#define REJECT_RULE "[{\"type\": \"reject\"}]"

/* A bundle's policy fragment whose rule for its own registry is malformed
 * (containers/image would refuse the whole policy.json: every pull of the
 * machine), names a key the bundle does not write, or is looser or other
 * than what pki export writes: refused, nothing written. What export
 * writes is accepted (members in any order) and merged as rebuilt. */
static void test_install_refuses_malformed_rules(void **state) {
        static const struct {
                const char *frag, *expect;
        } bad[] = {
                /* No key: "Exactly one of keyPath, keyPaths and keyData must be specified". */
                {FRAG2("[{\"type\": \"signedBy\"}]", GPG_RULE(SIGNERS_PATH, ID_PUSH)), "\"registry.test\""},
                /* Unknown key "bogus". */
                {FRAG2("[{\"type\": \"reject\", \"bogus\": 1}]", REJECT_RULE), "\"registry.test\""},
                {FRAG2(REJECT_RULE, "[{\"type\": \"reject\"}, {\"type\": \"reject\"}]"), "\"registry.test:4443\""},
                /* Another registry's key, a key file the bundle does not write. */
                {FRAG2(GPG_RULE("/etc/containers/keys/other.example/regvisor-signers.gpg", ID_PULL),
                       GPG_RULE("/etc/containers/keys/other.example/regvisor-signers.gpg", ID_PUSH)),
                 "key file this bundle installs"},
                {FRAG2(GPG_RULE("/etc/containers/keys/registry.test/regvisor-sigstore.pub", ID_PULL),
                       GPG_RULE("/etc/containers/keys/registry.test/regvisor-sigstore.pub", ID_PUSH)),
                 "\"registry.test\""},
                {FRAG2("[{\"type\": \"sigstoreSigned\", \"keyPath\": \"" SIGNERS_PATH "\", \"signedIdentity\": "
                       "{\"type\": \"matchRepository\"}}]",
                       GPG_RULE(SIGNERS_PATH, ID_PUSH)),
                 "\"registry.test\""},
                /* keyPaths, keyData: not what export writes. */
                {FRAG2("[{\"type\": \"signedBy\", \"keyType\": \"GPGKeys\", \"keyPaths\": [\"" SIGNERS_PATH "\"], "
                       "\"signedIdentity\": " ID_PULL "}]",
                       GPG_RULE(SIGNERS_PATH, ID_PUSH)),
                 "\"registry.test\""},
                /* A looser identity than export's. */
                {FRAG2(GPG_RULE(SIGNERS_PATH, "{\"type\": \"matchRepository\"}"), GPG_RULE(SIGNERS_PATH, ID_PUSH)),
                 "\"registry.test\""},
                {FRAG2(GPG_RULE(SIGNERS_PATH, "{\"type\": \"remapIdentity\", \"prefix\": \"registry.test\", "
                                              "\"signedPrefix\": \"evil.example\"}"),
                       GPG_RULE(SIGNERS_PATH, ID_PUSH)),
                 "\"registry.test\""},
                /* One name without its rule; reject for one, a key for the other. */
                {"{\"transports\": {\"docker\": {\"registry.test\": " GPG_RULE(SIGNERS_PATH, ID_PULL) "}}}\n",
                 "\"registry.test:4443\": missing"},
                {FRAG2(REJECT_RULE, GPG_RULE(SIGNERS_PATH, ID_PUSH)), "\"registry.test:4443\""},
                /* A repository below its name, a default: export writes neither. */
                {"{\"transports\": {\"docker\": {\"registry.test\": " REJECT_RULE ", \"registry.test:4443\": "
                 REJECT_RULE ", \"registry.test/app\": " REJECT_RULE "}}}\n",
                 "\"registry.test/app\""},
                {"{\"default\": [{\"type\": \"insecureAcceptAnything\"}], \"transports\": {\"docker\": "
                 "{\"registry.test\": " REJECT_RULE ", \"registry.test:4443\": " REJECT_RULE "}}}\n",
                 "transports.docker only"},
                {"[]", "not a JSON object"},
        };
        static const char *const good[] = {
                FRAG2(GPG_RULE(SIGNERS_PATH, ID_PULL), GPG_RULE(SIGNERS_PATH, ID_PUSH)),
                /* Members in another order: the same rule. */
                FRAG2("[{\"signedIdentity\": " ID_PULL ", \"keyPath\": \"" SIGNERS_PATH "\", \"keyType\": "
                      "\"GPGKeys\", \"type\": \"signedBy\"}]",
                      GPG_RULE(SIGNERS_PATH, ID_PUSH)),
                FRAG2(REJECT_RULE, REJECT_RULE),
        };

        for (size_t i = 0; i < ELEMENTSOF(bad) + ELEMENTSOF(good); i++) {
                _cleanup_(install_plan_done) InstallPlan plan = {};
                _cleanup_free_ char *err = NULL, *b = NULL, *root = NULL, *policy = NULL, *after = NULL;
                const char *frag = i < ELEMENTSOF(bad) ? bad[i].frag : good[i - ELEMENTSOF(bad)];
                int r;

                assert_int_equal(asprintf(&b, "%s/b17-%zu", dir, i) > 0, 1);
                assert_int_equal(asprintf(&root, "%s/root17-%zu", dir, i) > 0, 1);
                assert_int_equal(write_bundle("registry.test", KEY, b, &err), 0);
                assert_int_equal(asprintf(&policy, "%s/" BUNDLE_POLICY, b) > 0, 1);
                assert_int_equal(write_file_atomic(policy, frag, strlen(frag), 0644, (uid_t) -1, (gid_t) -1), 0);
                assert_int_equal(mkdir_parents(p("root17-%zu/etc/containers/policy.json", i)), 0);
                assert_int_equal(write_file_atomic(p("root17-%zu/etc/containers/policy.json", i), PREVIOUS_POLICY,
                                                   strlen(PREVIOUS_POLICY), 0644, (uid_t) -1, (gid_t) -1),
                                 0);
                r = client_install_plan(root, b, &plan, &err);
                if (i >= ELEMENTSOF(bad)) {
                        if (r < 0)
                                fail_msg("good %zu: %d %s", i - ELEMENTSOF(bad), r, err ?: "");
                        assert_int_equal(client_install_apply(root, &plan, &err), 0);
                        after = slurp(p("root17-%zu/etc/containers/policy.json", i));
                        assert_non_null(strstr(after, "\"quay.io\""));
                        continue;
                }
                if (r >= 0 || !err || !strstr(err, bad[i].expect))
                        fail_msg("bad %zu: %d, %s (expected %s)", i, r, err ?: "no message", bad[i].expect);
                assert_int_equal(plan.n, 0);
                assert_false(exists(p("root17-%zu/etc/containers/certs.d", i)));
                assert_false(exists(p("root17-%zu" CLIENT_RECORD_PATH, i)));
                after = slurp(p("root17-%zu/etc/containers/policy.json", i));
                assert_string_equal(after, PREVIOUS_POLICY);
        }
}

/* Each bad fragment given to policy_merge_bundle() itself: refused, and
 * what it merges for a good one is what policy_merge() writes. */
static void test_policy_merge_bundle_rebuilds(void **state) {
        const PolicyScope scopes[] = {{"registry.test", "registry.test:4443"},
                                      {"registry.test:4443", "registry.test:4443"}};
        const PolicyRequirement allowed[] = {{POLICY_REJECT, NULL}, {POLICY_GPG, SIGNERS_PATH}};
        _cleanup_free_ char *json = NULL, *want = NULL, *err = NULL, *e2 = NULL, *e3 = NULL, *broken = NULL;
        _cleanup_strv_free_ char **changed = NULL, **replaced = NULL, **c2 = NULL;

        assert_int_equal(policy_merge_bundle(NULL, FRAG2("[{\"type\": \"signedBy\"}]", REJECT_RULE), scopes, 2,
                                             allowed, 2, &broken, &c2, NULL, &e2),
                         -EPERM);
        assert_null(broken);
        assert_int_equal(policy_merge_bundle(NULL, FRAG2(REJECT_RULE, "[{\"type\": \"reject\", \"bogus\": 1}]"),
                                             scopes, 2, allowed, 2, &broken, &c2, NULL, &e3),
                         -EPERM);
        assert_null(broken);
        assert_int_equal(policy_merge_bundle(NULL,
                                             FRAG2("[{\"keyPath\": \"" SIGNERS_PATH "\", \"type\": \"signedBy\", "
                                                   "\"signedIdentity\": " ID_PULL ", \"keyType\": \"GPGKeys\"}]",
                                                   GPG_RULE(SIGNERS_PATH, ID_PUSH)),
                                             scopes, 2, allowed, 2, &json, &changed, &replaced, &err),
                         1);
        assert_int_equal(policy_merge(NULL, POLICY_GPG, SIGNERS_PATH, scopes, 2, &want, &err), 1);
        assert_string_equal(json, want);
}

/* Public registries' names, and names below them: never a bundle's. */
static void test_bundle_host_public(void **state) {
        static const char *const public[] = {
                "docker.io", "eu.gcr.io", "europe-west1-docker.pkg.dev", "acme.azurecr.io",
                "123456789012.dkr.ecr.us-east-1.amazonaws.com", "cgr.dev", "docker.pkg.github.com", "lscr.io",
                "registry.opensuse.org", "public.ecr.aws", "QUAY.IO",
        };
        static const char *const private[] = {"registry.test", "notgcr.io", "pkg.dev.example", "azurecr.io.example"};

        for (size_t i = 0; i < ELEMENTSOF(public); i++)
                if (!bundle_host_public(public[i], strlen(public[i])))
                        fail_msg("%s: not refused as a public registry", public[i]);
        for (size_t i = 0; i < ELEMENTSOF(private); i++)
                assert_false(bundle_host_public(private[i], strlen(private[i])));
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_bundle_layout_and_modes),
                cmocka_unit_test(test_bundle_without_key),
                cmocka_unit_test(test_bundle_refuses_loopback),
                cmocka_unit_test(test_install_twice_then_uninstall),
                cmocka_unit_test(test_uninstall_removes_created_policy_keeps_foreign_files),
                cmocka_unit_test(test_install_refuses_bad_manifest),
                cmocka_unit_test(test_request_csr_verifies_and_names),
                cmocka_unit_test(test_install_keyless_bundle_uses_own_key),
                cmocka_unit_test(test_bundle_ipv6),
                cmocka_unit_test(test_bundle_sigstore),
                cmocka_unit_test(test_uninstall_restores_replaced),
                cmocka_unit_test(test_scope_grant),
                cmocka_unit_test(test_install_refuses_symlinked_directory),
                cmocka_unit_test(test_install_refuses_injected_scope),
                cmocka_unit_test(test_uninstall_refuses_foreign_record_lines),
                cmocka_unit_test(test_install_refuses_fifo),
                cmocka_unit_test(test_install_refuses_other_registry),
                cmocka_unit_test(test_install_names_its_registry),
                cmocka_unit_test(test_install_refuses_malformed_rules),
                cmocka_unit_test(test_policy_merge_bundle_rebuilds),
                cmocka_unit_test(test_bundle_host_public),
        };
        return cmocka_run_group_tests(tests, tmpdir_group_setup, tmpdir_group_teardown);
}

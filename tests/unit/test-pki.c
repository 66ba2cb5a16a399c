/* SPDX-License-Identifier: MIT */
/*
 * Unit tests for supervisor/pki/pki.c. Keys that are slow to make (RSA 4096) or
 * shared by many tests (the CAs) are made once in the group setup. Whether
 * the PEM files pass the openssl command line tools is the integration
 * tests' business; here we look at the objects themselves.
 */

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <limits.h>
#include <string.h>
#include <time.h>

#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "macro.h"
#include "openssl-util.h"
#include "pki.h"
#include "server-names.h"

#define DAY (24L * 60 * 60)


/* Shared by every test: made in group_setup, freed in group_teardown. */
static struct {
        EVP_PKEY *rsa_key; /* RSA 4096: about a second to make, so once */
        EVP_PKEY *ca_key;
        X509 *ca;
        EVP_PKEY *other_ca_key;
        X509 *other_ca;
        EVP_PKEY *server_key;
} g;

/* The test's server names, as config.c parses them. */
#define REG SN_DNS("registry.example.com")
#define V4 SN_IP4("192.0.2.10", 192, 0, 2, 10)
#define V6 SN_IP6("2001:db8::1", 0x20, 0x01, 0x0d, 0xb8, [15] = 1)
static const ServerName server_names[] = {REG, V4, V6};

static int group_setup(void **state) {
        (void)state;

        if (pki_generate_key(KEY_RSA_4096, &g.rsa_key) < 0 || pki_generate_key(KEY_EC_P256, &g.ca_key) < 0 ||
            pki_generate_key(KEY_EC_P256, &g.other_ca_key) < 0 ||
            pki_generate_key(KEY_EC_P256, &g.server_key) < 0)
                return -1;
        if (pki_make_ca(g.ca_key, "Example Org", "Example Server CA", 3650, &g.ca) < 0 ||
            pki_make_ca(g.other_ca_key, "Example Org", "Example Other CA", 3650, &g.other_ca) < 0)
                return -1;
        return 0;
}

static int group_teardown(void **state) {
        (void)state;

        EVP_PKEY_free(g.rsa_key);
        EVP_PKEY_free(g.ca_key);
        X509_free(g.ca);
        EVP_PKEY_free(g.other_ca_key);
        X509_free(g.other_ca);
        EVP_PKEY_free(g.server_key);
        return 0;
}

/* Every test starts and must end with an empty OpenSSL error queue: pki.c
 * promises to leave nothing behind, even on failure paths. */
static int test_setup(void **state) {
        (void)state;
        ERR_clear_error();
        return 0;
}

static int test_teardown(void **state) {
        (void)state;
        assert_int_equal(ERR_peek_error(), 0);
        return 0;
}

static void assert_ext_critical(X509 *cert, int nid, int critical) {
        int i = X509_get_ext_by_NID(cert, nid, -1);

        assert_true(i >= 0);
        assert_int_equal(X509_EXTENSION_get_critical(X509_get_ext(cert, i)), critical);
        /* Exactly one of each. */
        assert_true(X509_get_ext_by_NID(cert, nid, i) < 0);
}

static void assert_serial_random(X509 *cert) {
        _cleanup_(BN_freep) BIGNUM *bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(cert), NULL);

        assert_non_null(bn);
        assert_false(BN_is_negative(bn));
        assert_false(BN_is_zero(bn));
        assert_true(BN_num_bits(bn) <= 127);
        /* 128 random bits: fewer than 64 significant bits is a 2^-63 event. */
        assert_true(BN_num_bits(bn) > 64);
}

/* notBefore one hour back, notAfter `days` from now, give or take the time
 * the test takes. */
static void assert_validity(X509 *cert, unsigned days) {
        time_t now = time(NULL), t;
        int pday, psec;

        assert_int_equal(pki_cert_not_after(cert, &t), 0);
        assert_true(t >= now + (long)days * DAY - 60 && t <= now + (long)days * DAY + 60);

        assert_true(ASN1_TIME_diff(&pday, &psec, X509_get0_notBefore(cert), X509_get0_notAfter(cert)));
        assert_true(labs((long)pday * DAY + psec - ((long)days * DAY + 3600)) < 60);
}

/* The AKI of cert is the SKI of issuer. */
static void assert_aki_is(X509 *cert, X509 *issuer) {
        const ASN1_OCTET_STRING *aki = X509_get0_authority_key_id(cert);
        const ASN1_OCTET_STRING *ski = X509_get0_subject_key_id(issuer);

        assert_non_null(aki);
        assert_non_null(ski);
        assert_int_equal(ASN1_OCTET_STRING_cmp(aki, ski), 0);
}

static void assert_cn(X509 *cert, const char *expected) {
        _cleanup_free_ char *cn = NULL;

        assert_int_equal(pki_cert_common_name(cert, &cn), 0);
        assert_string_equal(cn, expected);
}

/* A self-signed v3 certificate without extensions and with the given
 * subject, for inputs pki.c itself never makes. */
static X509 *make_plain_cert(EVP_PKEY *key, const char *const *attrs, size_t n_attrs) {
        _cleanup_(X509_freep) X509 *cert = X509_new();
        _cleanup_(X509_NAME_freep) X509_NAME *name = X509_NAME_new();

        assert_non_null(cert);
        assert_non_null(name);
        for (size_t i = 0; i + 1 < n_attrs; i += 2)
                assert_true(X509_NAME_add_entry_by_txt(name, attrs[i], MBSTRING_UTF8,
                                                       (const unsigned char *)attrs[i + 1], -1, -1, 0));
        assert_true(X509_set_version(cert, X509_VERSION_3));
        assert_true(ASN1_INTEGER_set(X509_get_serialNumber(cert), 1));
        assert_non_null(X509_gmtime_adj(X509_getm_notBefore(cert), -3600));
        assert_non_null(X509_gmtime_adj(X509_getm_notAfter(cert), 30 * DAY));
        assert_true(X509_set_subject_name(cert, name));
        assert_true(X509_set_issuer_name(cert, name));
        assert_true(X509_set_pubkey(cert, key));
        assert_true(X509_sign(cert, key, EVP_sha256()) > 0);
        return TAKE_PTR(cert);
}

static X509 *issue_server(EVP_PKEY *key, const ServerName *names, size_t n_names, unsigned days) {
        X509 *cert = NULL;

        assert_int_equal(pki_issue_server(g.ca, g.ca_key, key, "Example Org", names, n_names, days, NULL, &cert),
                         0);
        assert_non_null(cert);
        return cert;
}

static X509 *issue_client(const char *cn) {
        _cleanup_(EVP_PKEY_freep) EVP_PKEY *key = NULL;
        X509 *cert = NULL;

        assert_int_equal(pki_generate_key(KEY_EC_P256, &key), 0);
        assert_int_equal(pki_issue_client(g.ca, g.ca_key, key, "Example Org", cn, 30, NULL, &cert), 0);
        return cert;
}

/* ---- keys ---------------------------------------------------------------- */

static void test_generate_key_ec(void **state) {
        _cleanup_(EVP_PKEY_freep) EVP_PKEY *key = NULL;

        (void)state;
        assert_int_equal(pki_generate_key(KEY_EC_P256, &key), 0);
        assert_non_null(key);
        assert_true(EVP_PKEY_is_a(key, "EC"));
        assert_int_equal(EVP_PKEY_get_bits(key), 256);
        assert_int_equal(pki_key_is_type(key, KEY_EC_P256), 1);
        assert_int_equal(pki_key_is_type(key, KEY_RSA_4096), 0);
}

static void test_generate_key_rsa(void **state) {
        (void)state;
        assert_true(EVP_PKEY_is_a(g.rsa_key, "RSA"));
        assert_int_equal(EVP_PKEY_get_bits(g.rsa_key), 4096);
        assert_int_equal(pki_key_is_type(g.rsa_key, KEY_RSA_4096), 1);
        assert_int_equal(pki_key_is_type(g.rsa_key, KEY_EC_P256), 0);
}

static void test_generate_key_invalid(void **state) {
        EVP_PKEY *key = (EVP_PKEY *)&g; /* a sentinel: must stay as it is */

        (void)state;
        assert_int_equal(pki_generate_key((KeyType)42, &key), -EINVAL);
        assert_ptr_equal(key, (EVP_PKEY *)&g);
        assert_int_equal(pki_generate_key(KEY_EC_P256, NULL), -EINVAL);
}

static void test_key_is_type_other(void **state) {
        _cleanup_(EVP_PKEY_freep) EVP_PKEY *p384 = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-384");
        _cleanup_(EVP_PKEY_freep) EVP_PKEY *rsa2048 = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
        _cleanup_(EVP_PKEY_freep) EVP_PKEY *ed = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");

        (void)state;
        assert_non_null(p384);
        assert_non_null(rsa2048);
        assert_non_null(ed);
        assert_int_equal(pki_key_is_type(p384, KEY_EC_P256), 0);
        assert_int_equal(pki_key_is_type(rsa2048, KEY_RSA_4096), 0);
        assert_int_equal(pki_key_is_type(ed, KEY_EC_P256), 0);
        assert_int_equal(pki_key_is_type(ed, KEY_RSA_4096), 0);
        assert_int_equal(pki_key_is_type(p384, (KeyType)42), -EINVAL);
        assert_int_equal(pki_key_is_type(NULL, KEY_EC_P256), -EINVAL);
}

static void test_key_matches_cert(void **state) {
        _cleanup_(EVP_PKEY_freep) EVP_PKEY *other = NULL;
        _cleanup_(X509_freep) X509 *server = issue_server(g.server_key, server_names, 1, 30);

        (void)state;
        assert_int_equal(pki_generate_key(KEY_EC_P256, &other), 0);

        assert_int_equal(pki_key_matches_cert(g.ca_key, g.ca), 1);
        assert_int_equal(pki_key_matches_cert(g.server_key, server), 1);
        assert_int_equal(pki_key_matches_cert(other, server), 0);
        assert_int_equal(pki_key_matches_cert(g.ca_key, server), 0);
        assert_int_equal(pki_key_matches_cert(g.rsa_key, server), 0); /* other key type */
        assert_int_equal(pki_key_matches_cert(NULL, server), -EINVAL);
        assert_int_equal(pki_key_matches_cert(other, NULL), -EINVAL);
}

/* ---- CA ------------------------------------------------------------------ */

static void check_ca(X509 *ca, EVP_PKEY *key, const char *cn, unsigned days) {
        _cleanup_(BASIC_CONSTRAINTS_freep) BASIC_CONSTRAINTS *bc = NULL;
        uint32_t flags = X509_get_extension_flags(ca);
        char buf[256];

        assert_int_equal(X509_get_version(ca), X509_VERSION_3);
        assert_true(flags & EXFLAG_CA);
        assert_true(flags & EXFLAG_BCONS);
        assert_true(flags & EXFLAG_KUSAGE);
        assert_true(flags & EXFLAG_SS);
        assert_false(flags & EXFLAG_XKUSAGE);
        assert_false(flags & EXFLAG_INVALID);
        assert_int_equal(X509_check_ca(ca), 1);
        assert_int_equal(X509_get_pathlen(ca), 0);
        assert_int_equal(X509_get_key_usage(ca), KU_KEY_CERT_SIGN | KU_CRL_SIGN);

        assert_ext_critical(ca, NID_basic_constraints, 1);
        assert_ext_critical(ca, NID_key_usage, 1);
        assert_ext_critical(ca, NID_subject_key_identifier, 0);
        assert_ext_critical(ca, NID_authority_key_identifier, 0);
        assert_true(X509_get_ext_by_NID(ca, NID_subject_alt_name, -1) < 0);
        assert_aki_is(ca, ca);

        bc = X509_get_ext_d2i(ca, NID_basic_constraints, NULL, NULL);
        assert_non_null(bc);
        assert_true(bc->ca);

        X509_NAME_oneline(X509_get_subject_name(ca), buf, sizeof buf);
        assert_true(strstr(buf, "/O=Example Org/CN=") == buf);
        assert_cn(ca, cn);
        assert_int_equal(X509_NAME_cmp(X509_get_subject_name(ca), X509_get_issuer_name(ca)), 0);

        assert_serial_random(ca);
        assert_validity(ca, days);
        assert_int_equal(X509_verify(ca, key), 1);
        assert_int_equal(X509_get_signature_nid(ca),
                         EVP_PKEY_is_a(key, "RSA") ? NID_sha256WithRSAEncryption : NID_ecdsa_with_SHA256);
        assert_int_equal(pki_cert_verify(ca, ca, time(NULL), 0), 1);
}

static void test_make_ca_ec(void **state) {
        (void)state;
        check_ca(g.ca, g.ca_key, "Example Server CA", 3650);
        check_ca(g.other_ca, g.other_ca_key, "Example Other CA", 3650);
        /* Random serials: two CAs never share one. */
        assert_int_not_equal(
                ASN1_INTEGER_cmp(X509_get0_serialNumber(g.ca), X509_get0_serialNumber(g.other_ca)), 0);
}

static void test_make_ca_rsa(void **state) {
        _cleanup_(X509_freep) X509 *ca = NULL;

        (void)state;
        assert_int_equal(pki_make_ca(g.rsa_key, "Example Org", "Example Client CA", 365, &ca), 0);
        check_ca(ca, g.rsa_key, "Example Client CA", 365);
}

static void test_make_ca_invalid(void **state) {
        char long_cn[66];
        X509 *ca = (X509 *)&g;

        (void)state;
        memset(long_cn, 'a', sizeof long_cn - 1);
        long_cn[sizeof long_cn - 1] = '\0';

        assert_int_equal(pki_make_ca(NULL, "O", "CN", 1, &ca), -EINVAL);
        assert_int_equal(pki_make_ca(g.ca_key, NULL, "CN", 1, &ca), -EINVAL);
        assert_int_equal(pki_make_ca(g.ca_key, "", "CN", 1, &ca), -EINVAL);
        assert_int_equal(pki_make_ca(g.ca_key, "O", NULL, 1, &ca), -EINVAL);
        assert_int_equal(pki_make_ca(g.ca_key, "O", "", 1, &ca), -EINVAL);
        assert_int_equal(pki_make_ca(g.ca_key, "O", long_cn, 1, &ca), -EINVAL);
        assert_int_equal(pki_make_ca(g.ca_key, "O", "a\nb", 1, &ca), -EINVAL);
        assert_int_equal(pki_make_ca(g.ca_key, "O", "CN", 0, &ca), -EINVAL);
        assert_int_equal(pki_make_ca(g.ca_key, "O", "CN", UINT_MAX, &ca), -EINVAL);
        assert_int_equal(pki_make_ca(g.ca_key, "O", "CN", 1, NULL), -EINVAL);
        assert_ptr_equal(ca, (X509 *)&g);
}

/* ---- server and client certificates --------------------------------------- */

/* The SAN of cert, in order, as "DNS:name" / "IP:addr" strings. */
static void assert_san(X509 *cert, const char *const *expected, size_t n) {
        _cleanup_(GENERAL_NAMES_freep) GENERAL_NAMES *gens = NULL;
        int crit = -1;

        gens = X509_get_ext_d2i(cert, NID_subject_alt_name, &crit, NULL);
        assert_non_null(gens);
        assert_int_equal(crit, 0);
        assert_int_equal(sk_GENERAL_NAME_num(gens), n);

        for (size_t i = 0; i < n; i++) {
                const GENERAL_NAME *gen = sk_GENERAL_NAME_value(gens, (int)i);
                int type;
                const ASN1_STRING *s = GENERAL_NAME_get0_value(gen, &type);
                char buf[INET6_ADDRSTRLEN + 8];

                if (type == GEN_DNS)
                        snprintf(buf, sizeof buf, "DNS:%.*s", ASN1_STRING_length(s),
                                 (const char *)ASN1_STRING_get0_data(s));
                else if (type == GEN_IPADD) {
                        int len = ASN1_STRING_length(s);

                        assert_true(len == 4 || len == 16);
                        strcpy(buf, "IP:");
                        assert_non_null(inet_ntop(len == 4 ? AF_INET : AF_INET6, ASN1_STRING_get0_data(s),
                                                  buf + 3, sizeof buf - 3));
                } else
                        fail_msg("unexpected SAN type %d", type);
                assert_string_equal(buf, expected[i]);
        }
}

static void check_leaf(X509 *cert, X509 *ca, uint32_t ku, uint32_t xku, const char *cn) {
        uint32_t flags = X509_get_extension_flags(cert);

        assert_int_equal(X509_get_version(cert), X509_VERSION_3);
        assert_true(flags & EXFLAG_BCONS);
        assert_false(flags & EXFLAG_CA);
        assert_false(flags & EXFLAG_SS);
        assert_false(flags & EXFLAG_INVALID);
        assert_int_equal(X509_check_ca(cert), 0);
        assert_int_equal(X509_get_key_usage(cert), ku);
        assert_int_equal(X509_get_extended_key_usage(cert), xku);

        assert_ext_critical(cert, NID_basic_constraints, 1);
        assert_ext_critical(cert, NID_key_usage, 1);
        assert_ext_critical(cert, NID_ext_key_usage, 0);
        assert_ext_critical(cert, NID_subject_key_identifier, 0);
        assert_ext_critical(cert, NID_authority_key_identifier, 0);
        assert_aki_is(cert, ca);

        assert_int_equal(X509_NAME_cmp(X509_get_issuer_name(cert), X509_get_subject_name(ca)), 0);
        assert_cn(cert, cn);
        assert_serial_random(cert);
        assert_int_equal(X509_verify(cert, X509_get0_pubkey(ca)), 1);
        assert_int_equal(pki_cert_verify(cert, ca, time(NULL), 0), 1);
}

static void test_issue_server_ec(void **state) {
        static const char *const san[] = {"DNS:registry.example.com", "IP:192.0.2.10", "IP:2001:db8::1"};
        _cleanup_(X509_freep) X509 *cert = issue_server(g.server_key, server_names, 3, 90);

        (void)state;
        check_leaf(cert, g.ca, KU_DIGITAL_SIGNATURE, XKU_SSL_SERVER, "registry.example.com");
        assert_ext_critical(cert, NID_subject_alt_name, 0);
        assert_san(cert, san, ELEMENTSOF(san));
        assert_validity(cert, 90);
        assert_int_equal(pki_key_matches_cert(g.server_key, cert), 1);
        assert_int_equal(pki_cert_matches_names(cert, server_names, 3), 1);
        assert_int_equal(X509_get_signature_nid(cert), NID_ecdsa_with_SHA256);
}

static void test_issue_server_rsa(void **state) {
        const ServerName names[] = {SN_IP4("10.0.0.1", 10, 0, 0, 1), SN_DNS("reg.internal")};
        static const char *const san[] = {"IP:10.0.0.1", "DNS:reg.internal"};
        _cleanup_(X509_freep) X509 *cert = issue_server(g.rsa_key, names, 2, 1);

        (void)state;
        /* RSA: keyEncipherment too, for TLS 1.2 RSA key exchange. */
        check_leaf(cert, g.ca, KU_DIGITAL_SIGNATURE | KU_KEY_ENCIPHERMENT, XKU_SSL_SERVER, "10.0.0.1");
        assert_san(cert, san, ELEMENTSOF(san));
        assert_int_equal(pki_cert_matches_names(cert, names, 2), 1);
}

static void test_issue_server_rsa_ca(void **state) {
        _cleanup_(X509_freep) X509 *ca = NULL, *cert = NULL;

        (void)state;
        /* An RSA CA signing an EC key: sha256WithRSAEncryption. */
        assert_int_equal(pki_make_ca(g.rsa_key, "Example Org", "RSA CA", 30, &ca), 0);
        assert_int_equal(
                pki_issue_server(ca, g.rsa_key, g.server_key, "Example Org", server_names, 3, 30, NULL, &cert), 0);
        check_leaf(cert, ca, KU_DIGITAL_SIGNATURE, XKU_SSL_SERVER, "registry.example.com");
        assert_int_equal(X509_get_signature_nid(cert), NID_sha256WithRSAEncryption);
        assert_int_equal(pki_cert_verify(cert, g.ca, time(NULL), 0), 0);
}

static void test_issue_server_invalid(void **state) {
        const ServerName comma[] = {SN_DNS("a.example,DNS:evil.example")};
        const ServerName space[] = {SN_DNS("a example")};
        const ServerName empty[] = {SN_DNS("")};
        const ServerName null[] = {SN_DNS("a.example"), SN_DNS(NULL)};
        char long_label[70];
        const ServerName long_cn[] = {SN_DNS(long_label), SN_DNS("b.example")};
        _cleanup_(X509_freep) X509 *server = issue_server(g.server_key, server_names, 1, 30);
        X509 *cert = (X509 *)&g;

        (void)state;
        memset(long_label, 'a', sizeof long_label - 1);
        long_label[sizeof long_label - 1] = '\0';

#define ISSUE(ca, ca_key, names, n, days)                                                                   \
        pki_issue_server((ca), (ca_key), g.server_key, "Example Org", (names), (n), (days), NULL, &cert)
        assert_int_equal(ISSUE(g.ca, g.ca_key, server_names, 0, 30), -EINVAL);
        assert_int_equal(ISSUE(g.ca, g.ca_key, NULL, 1, 30), -EINVAL);
        assert_int_equal(ISSUE(g.ca, g.ca_key, comma, 1, 30), -EINVAL);
        assert_int_equal(ISSUE(g.ca, g.ca_key, space, 1, 30), -EINVAL);
        assert_int_equal(ISSUE(g.ca, g.ca_key, empty, 1, 30), -EINVAL);
        assert_int_equal(ISSUE(g.ca, g.ca_key, null, 2, 30), -EINVAL);
        /* A valid DNS name, but too long to be the CN. */
        assert_int_equal(ISSUE(g.ca, g.ca_key, long_cn, 2, 30), -EINVAL);
        assert_int_equal(ISSUE(g.ca, g.ca_key, server_names, 3, 0), -EINVAL);
        /* The CA's key is not the CA's. */
        assert_int_equal(ISSUE(g.ca, g.other_ca_key, server_names, 3, 30), -EINVAL);
        /* The issuer is no CA. */
        assert_int_equal(ISSUE(server, g.server_key, server_names, 3, 30), -EINVAL);
        assert_int_equal(ISSUE(NULL, g.ca_key, server_names, 3, 30), -EINVAL);
        assert_int_equal(ISSUE(g.ca, NULL, server_names, 3, 30), -EINVAL);
#undef ISSUE
        assert_int_equal(pki_issue_server(g.ca, g.ca_key, NULL, "O", server_names, 3, 30, NULL, &cert), -EINVAL);
        assert_int_equal(pki_issue_server(g.ca, g.ca_key, g.server_key, "", server_names, 3, 30, NULL, &cert),
                         -EINVAL);
        assert_int_equal(pki_issue_server(g.ca, g.ca_key, g.server_key, "O", server_names, 3, 30, NULL, NULL),
                         -EINVAL);
        assert_ptr_equal(cert, (X509 *)&g);
}

static void test_issue_client(void **state) {
        _cleanup_(X509_freep) X509 *cert = issue_client("alice");
        const ServerName names[] = {SN_DNS("alice")};

        (void)state;
        check_leaf(cert, g.ca, KU_DIGITAL_SIGNATURE, XKU_SSL_CLIENT, "alice");
        assert_true(X509_get_ext_by_NID(cert, NID_subject_alt_name, -1) < 0);
        assert_validity(cert, 30);
        /* No SAN: matches no names. */
        assert_int_equal(pki_cert_matches_names(cert, names, 1), 0);
}

static void test_issue_client_invalid(void **state) {
        _cleanup_(X509_freep) X509 *client = issue_client("bob");
        X509 *cert = (X509 *)&g;

        (void)state;
        assert_int_equal(pki_issue_client(g.ca, g.ca_key, g.server_key, "O", "", 30, NULL, &cert), -EINVAL);
        assert_int_equal(pki_issue_client(g.ca, g.ca_key, g.server_key, "O", NULL, 30, NULL, &cert), -EINVAL);
        assert_int_equal(pki_issue_client(g.ca, g.ca_key, g.server_key, "O", "bob", 0, NULL, &cert), -EINVAL);
        assert_int_equal(pki_issue_client(g.ca, g.other_ca_key, g.server_key, "O", "bob", 30, NULL, &cert),
                         -EINVAL);
        assert_int_equal(pki_issue_client(client, g.server_key, g.server_key, "O", "bob", 30, NULL, &cert),
                         -EINVAL);
        assert_ptr_equal(cert, (X509 *)&g);
}

/* ---- names ---------------------------------------------------------------- */

static void test_matches_names(void **state) {
        _cleanup_(X509_freep) X509 *cert = issue_server(g.server_key, server_names, 3, 30);
        const ServerName reordered[] = {V6, REG, V4};
        const ServerName other_case[] = {SN_DNS("Registry.EXAMPLE.com"), V4, V6};
        const ServerName other_form[] = {REG, V4,
                                         SN_IP6("2001:0db8:0:0:0:0:0:0001", 0x20, 0x01, 0x0d, 0xb8, [15] = 1)};
        const ServerName duplicated[] = {REG, V4, V6, V4};
        const ServerName missing[] = {REG, V4};
        const ServerName extra[] = {REG, V4, V6,
                                    SN_DNS("mirror.example.com")};
        const ServerName changed_ip[] = {REG, SN_IP4("192.0.2.11", 192, 0, 2, 11), V6};
        const ServerName mapped_ip[] = {REG,
                                        SN_IP6("::ffff:192.0.2.10", [10] = 0xff, [11] = 0xff, [12] = 192, [14] = 2,
                                               [15] = 10),
                                        V6};
        const ServerName prefix[] = {SN_DNS("registry.example"), V4, V6};

        (void)state;
        assert_int_equal(pki_cert_matches_names(cert, server_names, 3), 1);
        assert_int_equal(pki_cert_matches_names(cert, reordered, ELEMENTSOF(reordered)), 1);
        assert_int_equal(pki_cert_matches_names(cert, other_case, ELEMENTSOF(other_case)), 1);
        assert_int_equal(pki_cert_matches_names(cert, other_form, ELEMENTSOF(other_form)), 1);
        assert_int_equal(pki_cert_matches_names(cert, duplicated, ELEMENTSOF(duplicated)), 1);
        assert_int_equal(pki_cert_matches_names(cert, missing, ELEMENTSOF(missing)), 0);
        assert_int_equal(pki_cert_matches_names(cert, extra, ELEMENTSOF(extra)), 0);
        assert_int_equal(pki_cert_matches_names(cert, changed_ip, ELEMENTSOF(changed_ip)), 0);
        assert_int_equal(pki_cert_matches_names(cert, mapped_ip, ELEMENTSOF(mapped_ip)), 0);
        assert_int_equal(pki_cert_matches_names(cert, prefix, ELEMENTSOF(prefix)), 0);
        assert_int_equal(pki_cert_matches_names(cert, server_names, 0), -EINVAL);
        assert_int_equal(pki_cert_matches_names(NULL, server_names, 3), -EINVAL);
        /* The CA has no SAN. */
        assert_int_equal(pki_cert_matches_names(g.ca, server_names, 3), 0);
}

static void test_matches_names_ip_not_dns(void **state) {
        /* A name that is an IP literal is an iPAddress, never a dNSName: a
         * certificate holding only the DNS spelling does not match. */
        const ServerName dns_only[] = {SN_DNS("a.example")};
        const ServerName ip[] = {V4};
        _cleanup_(X509_freep) X509 *cert = issue_server(g.server_key, dns_only, 1, 30);
        _cleanup_(X509_freep) X509 *ip_cert = issue_server(g.server_key, ip, 1, 30);
        const ServerName as_dns[] = {SN_DNS("a.example"), SN_DNS("192.0.2.10")};

        (void)state;
        assert_int_equal(pki_cert_matches_names(cert, as_dns, 2), 0);
        assert_int_equal(pki_cert_matches_names(ip_cert, ip, 1), 1);
        assert_int_equal(pki_cert_matches_names(ip_cert, dns_only, 1), 0);
}

/* pki takes the configuration's word for what a name is: the SAN entry
 * comes from is_ip and the parsed bytes, never from reading the text
 * again (config.c is the one place that decides). */
static void test_names_as_parsed(void **state) {
        const ServerName digits_as_dns[] = {SN_DNS("10.0.0.1")};
        const ServerName bytes[] = {SN_IP4("10.0.0.1", 10, 0, 0, 2)};
        static const char *const dns_san[] = {"DNS:10.0.0.1"};
        static const char *const ip_san[] = {"IP:10.0.0.2"};
        _cleanup_(X509_freep) X509 *dns = issue_server(g.server_key, digits_as_dns, 1, 30);
        _cleanup_(X509_freep) X509 *ip = issue_server(g.server_key, bytes, 1, 30);

        (void)state;
        assert_san(dns, dns_san, 1);
        assert_san(ip, ip_san, 1);
        assert_int_equal(pki_cert_matches_names(dns, digits_as_dns, 1), 1);
        assert_int_equal(pki_cert_matches_names(dns, bytes, 1), 0);
        assert_int_equal(pki_cert_matches_names(ip, bytes, 1), 1);
        assert_int_equal(pki_cert_matches_names(ip, digits_as_dns, 1), 0);
}

static void test_common_name(void **state) {
        static const char *const no_cn[] = {"O", "Example Org"};
        static const char *const two_cn[] = {"CN", "a", "CN", "b"};
        _cleanup_(X509_freep) X509 *a = make_plain_cert(g.server_key, no_cn, ELEMENTSOF(no_cn));
        _cleanup_(X509_freep) X509 *b = make_plain_cert(g.server_key, two_cn, ELEMENTSOF(two_cn));
        char *cn = (char *)&g;

        (void)state;
        assert_cn(g.ca, "Example Server CA");
        assert_int_equal(pki_cert_common_name(a, &cn), -ENOENT);
        assert_int_equal(pki_cert_common_name(b, &cn), -ENOTUNIQ);
        assert_int_equal(pki_cert_common_name(NULL, &cn), -EINVAL);
        assert_ptr_equal(cn, (char *)&g);
}

static void test_cert_not_after(void **state) {
        _cleanup_(X509_freep) X509 *cert = issue_server(g.server_key, server_names, 1, 7);
        time_t t = 42;

        (void)state;
        assert_validity(cert, 7);
        assert_int_equal(pki_cert_not_after(cert, NULL), -EINVAL);
        assert_int_equal(pki_cert_not_after(NULL, &t), -EINVAL);
        assert_int_equal(t, 42);
}

/* ---- verification ----------------------------------------------------------- */

static void test_verify(void **state) {
        _cleanup_(X509_freep) X509 *cert = issue_server(g.server_key, server_names, 3, 30);
        _cleanup_(X509_freep) X509 *client = issue_client("carol");
        _cleanup_(X509_freep) X509 *other = NULL;
        time_t now = time(NULL);

        (void)state;
        assert_int_equal(pki_issue_server(g.other_ca, g.other_ca_key, g.server_key, "Example Org",
                                          server_names, 3, 30, NULL, &other),
                         0);

        assert_int_equal(pki_cert_verify(cert, g.ca, now, 0), 1);
        assert_int_equal(pki_cert_verify(client, g.ca, now, 0), 1);
        assert_int_equal(pki_cert_verify(other, g.other_ca, now, 0), 1);
        /* The wrong CA, even one with the same organization. */
        assert_int_equal(pki_cert_verify(cert, g.other_ca, now, 0), 0);
        assert_int_equal(pki_cert_verify(other, g.ca, now, 0), 0);
        assert_int_equal(pki_cert_verify(g.other_ca, g.ca, now, 0), 0);
        /* Not a CA: a leaf cannot vouch for another, nor for itself. */
        assert_int_equal(pki_cert_verify(client, cert, now, 0), 0);
        assert_int_equal(pki_cert_verify(cert, cert, now, 0), 0);
        /* Within validity a week from now, not at expiry, not before issue. */
        assert_int_equal(pki_cert_verify(cert, g.ca, now, 7 * DAY), 1);
        assert_int_equal(pki_cert_verify(cert, g.ca, now, 31 * DAY), 0);
        assert_int_equal(pki_cert_verify(cert, g.ca, now - 2 * 3600, 0), 0);
        assert_int_equal(pki_cert_verify(cert, g.ca, now, -2 * 3600), 0);

        assert_int_equal(pki_cert_verify(NULL, g.ca, now, 0), -EINVAL);
        assert_int_equal(pki_cert_verify(cert, NULL, now, 0), -EINVAL);
        assert_int_equal(pki_cert_verify(cert, g.ca, (time_t)INT64_MAX, 1), -EINVAL);
}

static void test_verify_expiring(void **state) {
        _cleanup_(X509_freep) X509 *cert = issue_server(g.server_key, server_names, 3, 1);
        _cleanup_(X509_freep) X509 *short_ca = NULL, *long_cert = NULL;
        _cleanup_(EVP_PKEY_freep) EVP_PKEY *key = NULL;
        time_t now = time(NULL);

        (void)state;
        /* A one-day certificate is valid now, but not within a two-day
         * margin: it is about to expire and must be renewed. */
        assert_int_equal(pki_cert_verify(cert, g.ca, now, 0), 1);
        assert_int_equal(pki_cert_verify(cert, g.ca, now, 2 * DAY), 0);

        /* A CA about to expire takes its certificates with it. */
        assert_int_equal(pki_generate_key(KEY_EC_P256, &key), 0);
        assert_int_equal(pki_make_ca(key, "Example Org", "Short CA", 1, &short_ca), 0);
        assert_int_equal(pki_issue_server(short_ca, key, g.server_key, "Example Org", server_names, 3, 30,
                                          NULL, &long_cert),
                         0);
        assert_int_equal(pki_cert_verify(long_cert, short_ca, now, 0), 1);
        assert_int_equal(pki_cert_verify(long_cert, short_ca, now, 2 * DAY), 0);
        assert_int_equal(pki_cert_verify(short_ca, short_ca, now, 2 * DAY), 0);
}

static void test_verify_v1_ca(void **state) {
        /* A self-signed v1-style certificate without basicConstraints:
         * OpenSSL would accept it as a trust anchor, we do not. */
        static const char *const name[] = {"O", "Example Org", "CN", "Not A CA"};
        _cleanup_(X509_freep) X509 *fake = make_plain_cert(g.ca_key, name, ELEMENTSOF(name));

        (void)state;
        /* Same key as the real CA, so only the CA check can say no. */
        assert_int_equal(pki_cert_verify(fake, fake, time(NULL), 0), 0);
}

/* ---- PEM ---------------------------------------------------------------------- */

static void test_pem_key_roundtrip(void **state) {
        EVP_PKEY *keys[] = {g.server_key, g.rsa_key};
        const KeyType types[] = {KEY_EC_P256, KEY_RSA_4096};

        (void)state;
        for (size_t i = 0; i < ELEMENTSOF(keys); i++) {
                _cleanup_free_ char *pem = NULL;
                _cleanup_(EVP_PKEY_freep) EVP_PKEY *back = NULL;
                size_t size = 0;

                assert_int_equal(pki_key_to_pem(keys[i], &pem, &size), 0);
                assert_int_equal(strlen(pem), size);
                /* PKCS#8, unencrypted. */
                assert_true(strneq(pem, "-----BEGIN PRIVATE KEY-----\n", 28));
                assert_null(strstr(pem, "ENCRYPTED"));

                assert_int_equal(pki_key_from_pem(pem, size, &back), 0);
                assert_int_equal(EVP_PKEY_eq(back, keys[i]), 1);
                assert_int_equal(pki_key_is_type(back, types[i]), 1);
        }
}

static void test_pem_cert_roundtrip(void **state) {
        _cleanup_(X509_freep) X509 *cert = issue_server(g.server_key, server_names, 3, 30);
        _cleanup_(X509_freep) X509 *back = NULL;
        _cleanup_free_ char *pem = NULL, *pem2 = NULL;
        size_t size = 0;

        (void)state;
        assert_int_equal(pki_cert_to_pem(cert, &pem, &size), 0);
        assert_int_equal(strlen(pem), size);
        assert_true(strneq(pem, "-----BEGIN CERTIFICATE-----\n", 28));

        assert_int_equal(pki_cert_from_pem(pem, size, &back), 0);
        assert_int_equal(X509_cmp(back, cert), 0);
        assert_int_equal(pki_cert_matches_names(back, server_names, 3), 1);
        assert_int_equal(pki_key_matches_cert(g.server_key, back), 1);
        assert_int_equal(pki_cert_verify(back, g.ca, time(NULL), 0), 1);

        /* Same bytes out again; NULL size is allowed. */
        assert_int_equal(pki_cert_to_pem(back, &pem2, NULL), 0);
        assert_string_equal(pem, pem2);
}

static void assert_crl_der_equal(X509_CRL *a, X509_CRL *b) {
        unsigned char *da = NULL, *db = NULL;
        int na = i2d_X509_CRL(a, &da), nb = i2d_X509_CRL(b, &db);

        assert_true(na > 0);
        assert_int_equal(na, nb);
        assert_memory_equal(da, db, (size_t)na);
        OPENSSL_free(da);
        OPENSSL_free(db);
}

static void test_pem_crl_roundtrip(void **state) {
        _cleanup_(X509_freep) X509 *client = issue_client("dave");
        _cleanup_(X509_CRL_freep) X509_CRL *crl = NULL, *back = NULL;
        _cleanup_free_ char *pem = NULL;
        size_t size = 0;
        long number = -1;

        (void)state;
        assert_int_equal(pki_make_crl(g.ca, g.ca_key, NULL, X509_get0_serialNumber(client), 3, 7, &crl), 0);
        assert_int_equal(pki_crl_to_pem(crl, &pem, &size), 0);
        assert_int_equal(strlen(pem), size);
        assert_true(strneq(pem, "-----BEGIN X509 CRL-----\n", 25));

        assert_int_equal(pki_crl_from_pem(pem, size, &back), 0);
        assert_crl_der_equal(back, crl);
        assert_int_equal(pki_crl_has_serial(back, X509_get0_serialNumber(client)), 1);
        assert_int_equal(pki_crl_number(back, &number), 0);
        assert_int_equal(number, 3);
        assert_int_equal(X509_CRL_verify(back, X509_get0_pubkey(g.ca)), 1);
}

static char *encrypted_key_pem(EVP_PKEY *key) {
        _cleanup_(BIO_freep) BIO *bio = BIO_new(BIO_s_mem());
        char *data;
        long n;

        assert_non_null(bio);
        assert_true(
                PEM_write_bio_PKCS8PrivateKey(bio, key, EVP_aes_256_cbc(), NULL, 0, NULL, (void *)"secret"));
        n = BIO_get_mem_data(bio, &data);
        assert_true(n > 0);
        return strndup(data, (size_t)n);
}

static void test_pem_bad(void **state) {
        static const char garbage[] = "this is not PEM at all\n";
        static const char bad_base64[] = "-----BEGIN CERTIFICATE-----\n!!!!\n-----END CERTIFICATE-----\n";
        _cleanup_free_ char *cert_pem = NULL, *key_pem = NULL, *crl_pem = NULL, *enc = NULL;
        _cleanup_(X509_CRL_freep) X509_CRL *crl = NULL;
        size_t cert_size, key_size, crl_size;
        EVP_PKEY *key = (EVP_PKEY *)&g;
        X509 *cert = (X509 *)&g;
        X509_CRL *crl_out = (X509_CRL *)&g;

        (void)state;
        assert_int_equal(pki_cert_to_pem(g.ca, &cert_pem, &cert_size), 0);
        assert_int_equal(pki_key_to_pem(g.server_key, &key_pem, &key_size), 0);
        assert_int_equal(pki_make_crl(g.ca, g.ca_key, NULL, NULL, 1, 7, &crl), 0);
        assert_int_equal(pki_crl_to_pem(crl, &crl_pem, &crl_size), 0);

        /* Garbage, broken base64, empty and truncated input. */
        assert_int_equal(pki_key_from_pem(garbage, strlen(garbage), &key), -EBADMSG);
        assert_int_equal(pki_cert_from_pem(garbage, strlen(garbage), &cert), -EBADMSG);
        assert_int_equal(pki_crl_from_pem(garbage, strlen(garbage), &crl_out), -EBADMSG);
        assert_int_equal(pki_cert_from_pem(bad_base64, strlen(bad_base64), &cert), -EBADMSG);
        assert_int_equal(pki_cert_from_pem(cert_pem, 0, &cert), -EBADMSG);
        assert_int_equal(pki_cert_from_pem(cert_pem, cert_size / 2, &cert), -EBADMSG);
        assert_int_equal(pki_key_from_pem(key_pem, key_size / 2, &key), -EBADMSG);
        assert_int_equal(pki_crl_from_pem(crl_pem, crl_size - 30, &crl_out), -EBADMSG);

        /* The right PEM for the wrong function. */
        assert_int_equal(pki_key_from_pem(cert_pem, cert_size, &key), -EBADMSG);
        assert_int_equal(pki_cert_from_pem(key_pem, key_size, &cert), -EBADMSG);
        assert_int_equal(pki_crl_from_pem(cert_pem, cert_size, &crl_out), -EBADMSG);
        assert_int_equal(pki_cert_from_pem(crl_pem, crl_size, &cert), -EBADMSG);

        /* An encrypted key is refused, not prompted for. */
        enc = encrypted_key_pem(g.server_key);
        assert_non_null(enc);
        assert_non_null(strstr(enc, "ENCRYPTED PRIVATE KEY"));
        assert_int_equal(pki_key_from_pem(enc, strlen(enc), &key), -EBADMSG);

        assert_int_equal(pki_key_from_pem(NULL, 10, &key), -EINVAL);
        assert_int_equal(pki_cert_from_pem(cert_pem, (size_t)INT_MAX + 1, &cert), -EINVAL);
        assert_int_equal(pki_cert_from_pem(cert_pem, cert_size, NULL), -EINVAL);

        assert_ptr_equal(key, (EVP_PKEY *)&g);
        assert_ptr_equal(cert, (X509 *)&g);
        assert_ptr_equal(crl_out, (X509_CRL *)&g);
}

static void test_pem_invalid_args(void **state) {
        char *pem = (char *)&g;
        size_t size = 42;

        (void)state;
        assert_int_equal(pki_key_to_pem(NULL, &pem, &size), -EINVAL);
        assert_int_equal(pki_cert_to_pem(NULL, &pem, &size), -EINVAL);
        assert_int_equal(pki_crl_to_pem(NULL, &pem, &size), -EINVAL);
        assert_int_equal(pki_cert_to_pem(g.ca, NULL, &size), -EINVAL);
        assert_ptr_equal(pem, (char *)&g);
        assert_int_equal(size, 42);
}

/* ---- CRL ------------------------------------------------------------------------ */

static int crl_count(X509_CRL *crl) {
        STACK_OF(X509_REVOKED) *revoked = X509_CRL_get_REVOKED(crl);

        return revoked ? sk_X509_REVOKED_num(revoked) : 0;
}

static void test_crl(void **state) {
        _cleanup_(X509_freep) X509 *alice = issue_client("alice"), *bob = issue_client("bob");
        _cleanup_(X509_freep) X509 *carol = issue_client("carol");
        _cleanup_(X509_CRL_freep) X509_CRL *empty = NULL, *one = NULL, *two = NULL, *again = NULL;
        const ASN1_INTEGER *sa = X509_get0_serialNumber(alice), *sb = X509_get0_serialNumber(bob);
        const ASN1_INTEGER *sc = X509_get0_serialNumber(carol);
        X509_REVOKED *rev_one, *rev_two;
        time_t now = time(NULL);
        long number = -1;
        int pday, psec;

        (void)state;
        /* A fresh CRL: nothing revoked, number 1. */
        assert_int_equal(pki_make_crl(g.ca, g.ca_key, NULL, NULL, 1, 7, &empty), 0);
        assert_int_equal(crl_count(empty), 0);
        assert_int_equal(pki_crl_has_serial(empty, sa), 0);
        assert_int_equal(pki_crl_number(empty, &number), 0);
        assert_int_equal(number, 1);
        assert_int_equal(X509_CRL_get_version(empty), X509_CRL_VERSION_2);
        assert_int_equal(X509_NAME_cmp(X509_CRL_get_issuer(empty), X509_get_subject_name(g.ca)), 0);
        assert_int_equal(X509_CRL_verify(empty, X509_get0_pubkey(g.ca)), 1);
        assert_int_equal(X509_CRL_get_signature_nid(empty), NID_ecdsa_with_SHA256);
        assert_true(ASN1_TIME_diff(&pday, &psec, X509_CRL_get0_lastUpdate(empty),
                                   X509_CRL_get0_nextUpdate(empty)));
        assert_int_equal(pday, 7);
        assert_int_equal(psec, 0);
        {
                time_t lo = now - 60, hi = now + 60;

                assert_int_equal(X509_cmp_time(X509_CRL_get0_lastUpdate(empty), &lo), 1);
                assert_int_equal(X509_cmp_time(X509_CRL_get0_lastUpdate(empty), &hi), -1);
        }

        /* The AKI is the CA's SKI. */
        {
                AUTHORITY_KEYID *akid =
                        X509_CRL_get_ext_d2i(empty, NID_authority_key_identifier, NULL, NULL);

                assert_non_null(akid);
                assert_int_equal(ASN1_OCTET_STRING_cmp(akid->keyid, X509_get0_subject_key_id(g.ca)), 0);
                AUTHORITY_KEYID_free(akid);
        }

        /* Revoke alice: listed, bob is not. */
        assert_int_equal(pki_make_crl(g.ca, g.ca_key, empty, sa, 2, 7, &one), 0);
        assert_int_equal(crl_count(one), 1);
        assert_int_equal(pki_crl_has_serial(one, sa), 1);
        assert_int_equal(pki_crl_has_serial(one, sb), 0);
        assert_int_equal(pki_crl_number(one, &number), 0);
        assert_int_equal(number, 2);

        /* Revoke bob on top: alice carried forward with her revocation date. */
        assert_int_equal(pki_make_crl(g.ca, g.ca_key, one, sb, 3, 7, &two), 0);
        assert_int_equal(crl_count(two), 2);
        assert_int_equal(pki_crl_has_serial(two, sa), 1);
        assert_int_equal(pki_crl_has_serial(two, sb), 1);
        assert_int_equal(pki_crl_has_serial(two, sc), 0);
        assert_int_equal(pki_crl_number(two, &number), 0);
        assert_int_equal(number, 3);
        assert_int_equal(X509_CRL_get0_by_serial(one, &rev_one, sa), 1);
        assert_int_equal(X509_CRL_get0_by_serial(two, &rev_two, sa), 1);
        assert_int_equal(ASN1_TIME_compare(X509_REVOKED_get0_revocationDate(rev_one),
                                           X509_REVOKED_get0_revocationDate(rev_two)),
                         0);

        /* Revoking alice again, and reissuing without a new serial, adds
         * nothing. */
        assert_int_equal(pki_make_crl(g.ca, g.ca_key, two, sa, 4, 7, &again), 0);
        assert_int_equal(crl_count(again), 2);
        X509_CRL_free(TAKE_PTR(again));
        assert_int_equal(pki_make_crl(g.ca, g.ca_key, two, NULL, 5, 30, &again), 0);
        assert_int_equal(crl_count(again), 2);
        assert_int_equal(pki_crl_has_serial(again, sb), 1);
        assert_int_equal(pki_crl_number(again, &number), 0);
        assert_int_equal(number, 5);
}

static void test_crl_invalid(void **state) {
        _cleanup_(X509_freep) X509 *client = issue_client("eve");
        _cleanup_(X509_CRL_freep) X509_CRL *other = NULL;
        _cleanup_(ASN1_INTEGER_freep) ASN1_INTEGER *zero = ASN1_INTEGER_new(),
                                                   *negative = ASN1_INTEGER_new();
        const ASN1_INTEGER *serial = X509_get0_serialNumber(client);
        X509_CRL *crl = (X509_CRL *)&g;

        (void)state;
        assert_non_null(zero);
        assert_non_null(negative);
        assert_true(ASN1_INTEGER_set(zero, 0));
        assert_true(ASN1_INTEGER_set(negative, -5));

        /* An old CRL of another CA is not carried over. */
        assert_int_equal(pki_make_crl(g.other_ca, g.other_ca_key, NULL, NULL, 1, 7, &other), 0);
        assert_int_equal(pki_make_crl(g.ca, g.ca_key, other, serial, 2, 7, &crl), -EINVAL);

        assert_int_equal(pki_make_crl(g.ca, g.other_ca_key, NULL, serial, 1, 7, &crl), -EINVAL);
        assert_int_equal(pki_make_crl(client, g.server_key, NULL, serial, 1, 7, &crl), -EINVAL);
        assert_int_equal(pki_make_crl(g.ca, g.ca_key, NULL, serial, -1, 7, &crl), -EINVAL);
        assert_int_equal(pki_make_crl(g.ca, g.ca_key, NULL, serial, 1, 0, &crl), -EINVAL);
        assert_int_equal(pki_make_crl(g.ca, g.ca_key, NULL, zero, 1, 7, &crl), -EINVAL);
        assert_int_equal(pki_make_crl(g.ca, g.ca_key, NULL, negative, 1, 7, &crl), -EINVAL);
        assert_int_equal(pki_make_crl(NULL, g.ca_key, NULL, serial, 1, 7, &crl), -EINVAL);
        assert_int_equal(pki_make_crl(g.ca, g.ca_key, NULL, serial, 1, 7, NULL), -EINVAL);
        assert_ptr_equal(crl, (X509_CRL *)&g);

        assert_int_equal(pki_crl_has_serial(NULL, serial), -EINVAL);
        assert_int_equal(pki_crl_has_serial(other, NULL), -EINVAL);
}

/* What provision and pki revoke rely on before they touch a CRL file: the
 * client CA's own CRL is genuine; another CA's, one under our name signed by
 * another key, and one under another name signed by our key are not. */
static void test_crl_verify(void **state) {
        _cleanup_(X509_CRL_freep) X509_CRL *own = NULL, *other = NULL, *forged = X509_CRL_new(),
                                           *renamed = X509_CRL_new();

        (void)state;
        assert_int_equal(pki_make_crl(g.ca, g.ca_key, NULL, NULL, 1, 7, &own), 0);
        assert_int_equal(pki_crl_verify(own, g.ca), 1);
        assert_int_equal(pki_make_crl(g.other_ca, g.other_ca_key, NULL, NULL, 1, 7, &other), 0);
        assert_int_equal(pki_crl_verify(other, g.ca), 0);
        assert_int_equal(pki_crl_verify(own, g.other_ca), 0);

        assert_non_null(forged);
        assert_true(X509_CRL_set_issuer_name(forged, X509_get_subject_name(g.ca)));
        assert_true(X509_CRL_sign(forged, g.other_ca_key, EVP_sha256()) > 0);
        assert_int_equal(pki_crl_verify(forged, g.ca), 0);

        assert_non_null(renamed);
        assert_true(X509_CRL_set_issuer_name(renamed, X509_get_subject_name(g.other_ca)));
        assert_true(X509_CRL_sign(renamed, g.ca_key, EVP_sha256()) > 0);
        assert_int_equal(pki_crl_verify(renamed, g.ca), 0);

        assert_int_equal(pki_crl_verify(NULL, g.ca), -EINVAL);
        assert_int_equal(pki_crl_verify(own, NULL), -EINVAL);
}

static void test_crl_number_absent(void **state) {
        _cleanup_(X509_CRL_freep) X509_CRL *crl = X509_CRL_new();
        long number = -1;

        (void)state;
        /* A CRL some other tool made, without crlNumber. */
        assert_non_null(crl);
        assert_true(X509_CRL_set_issuer_name(crl, X509_get_subject_name(g.ca)));
        assert_true(X509_CRL_sign(crl, g.ca_key, EVP_sha256()) > 0);
        assert_int_equal(pki_crl_number(crl, &number), 0);
        assert_int_equal(number, 0);
        assert_int_equal(pki_crl_number(crl, NULL), -EINVAL);
        assert_int_equal(pki_crl_number(NULL, &number), -EINVAL);

        /* ...which is still good enough to carry forward. */
        {
                _cleanup_(X509_CRL_freep) X509_CRL *next = NULL;

                assert_int_equal(pki_make_crl(g.ca, g.ca_key, crl, NULL, 1, 7, &next), 0);
                assert_int_equal(pki_crl_number(next, &number), 0);
                assert_int_equal(number, 1);
        }
}

static void test_crl_number_large(void **state) {
        _cleanup_(X509_CRL_freep) X509_CRL *crl = NULL;
        long number = -1;

        (void)state;
        assert_int_equal(pki_make_crl(g.ca, g.ca_key, NULL, NULL, LONG_MAX, 7, &crl), 0);
        assert_int_equal(pki_crl_number(crl, &number), 0);
        assert_int_equal(number, LONG_MAX);
}

/* The CRL distribution point: written as one URI, read back as exactly
 * that URI by pki_cert_has_crl_uri() and by the openssl CLI's text form
 * (what testssl.sh greps for), refused when it is not a plain http(s) URI. */
static void test_crl_distribution_point(void **state) {
        static const char uri[] = "https://registry.example.com/regvisor/crl/server-ca.crl";
        const ServerName names[] = {REG};
        _cleanup_(X509_freep) X509 *server = NULL, *client = NULL, *plain = NULL, *bad = NULL;
        _cleanup_(EVP_PKEY_freep) EVP_PKEY *key = NULL;
        _cleanup_(BIO_freep) BIO *text = NULL;
        char *data;
        long n;

        (void)state;
        assert_int_equal(pki_issue_server(g.ca, g.ca_key, g.server_key, "O", names, 1, 30, uri, &server), 0);
        assert_int_equal(pki_cert_has_crl_uri(server, uri), 1);
        assert_int_equal(pki_cert_has_crl_uri(server, "https://other.example.com/regvisor/crl/server-ca.crl"), 0);
        assert_int_equal(pki_cert_has_crl_uri(server, "https://registry.example.com/regvisor/crl/server-ca.cr"), 0);

        text = BIO_new(BIO_s_mem());
        assert_non_null(text);
        assert_int_equal(X509_print(text, server), 1);
        n = BIO_get_mem_data(text, &data);
        assert_true(n > 0);
        assert_non_null(memmem(data, (size_t)n, "X509v3 CRL Distribution Points", 30));
        assert_non_null(memmem(data, (size_t)n, "URI:https://registry.example.com/regvisor/crl/server-ca.crl", 59));

        assert_int_equal(pki_generate_key(KEY_EC_P256, &key), 0);
        assert_int_equal(pki_issue_client(g.ca, g.ca_key, key, "O", "ci", 30, "http://[::1]:8443/c.crl", &client), 0);
        assert_int_equal(pki_cert_has_crl_uri(client, "http://[::1]:8443/c.crl"), 1);

        /* Without one, there is none. */
        assert_int_equal(pki_issue_server(g.ca, g.ca_key, g.server_key, "O", names, 1, 30, NULL, &plain), 0);
        assert_int_equal(pki_cert_has_crl_uri(plain, uri), 0);

        /* Not a URI we write: other schemes, spaces, controls, nothing. */
        assert_int_equal(pki_issue_server(g.ca, g.ca_key, g.server_key, "O", names, 1, 30, "ldap://x/y", &bad),
                         -EINVAL);
        assert_int_equal(pki_issue_server(g.ca, g.ca_key, g.server_key, "O", names, 1, 30, "https://x/a b", &bad),
                         -EINVAL);
        assert_int_equal(pki_issue_client(g.ca, g.ca_key, key, "O", "ci", 30, "https://x/\n", &bad), -EINVAL);
        assert_int_equal(pki_issue_client(g.ca, g.ca_key, key, "O", "ci", 30, "https://x/\x01", &bad), -EINVAL);
        assert_int_equal(pki_issue_client(g.ca, g.ca_key, key, "O", "ci", 30, "", &bad), -EINVAL);
        assert_null(bad);
}

#define T(f) cmocka_unit_test_setup_teardown(f, test_setup, test_teardown)

int main(void) {
        const struct CMUnitTest tests[] = {
                T(test_generate_key_ec),
                T(test_generate_key_rsa),
                T(test_generate_key_invalid),
                T(test_key_is_type_other),
                T(test_key_matches_cert),
                T(test_make_ca_ec),
                T(test_make_ca_rsa),
                T(test_make_ca_invalid),
                T(test_issue_server_ec),
                T(test_issue_server_rsa),
                T(test_issue_server_rsa_ca),
                T(test_issue_server_invalid),
                T(test_issue_client),
                T(test_issue_client_invalid),
                T(test_matches_names),
                T(test_matches_names_ip_not_dns),
                T(test_names_as_parsed),
                T(test_common_name),
                T(test_cert_not_after),
                T(test_verify),
                T(test_verify_expiring),
                T(test_verify_v1_ca),
                T(test_pem_key_roundtrip),
                T(test_pem_cert_roundtrip),
                T(test_pem_crl_roundtrip),
                T(test_pem_bad),
                T(test_pem_invalid_args),
                T(test_crl),
                T(test_crl_invalid),
                T(test_crl_verify),
                T(test_crl_number_absent),
                T(test_crl_number_large),
                T(test_crl_distribution_point),
        };

        return cmocka_run_group_tests_name("pki", tests, group_setup, group_teardown);
}

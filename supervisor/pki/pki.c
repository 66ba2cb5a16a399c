/* SPDX-License-Identifier: MIT */
/*
 * The registry's PKI over the OpenSSL 3 library: keys, a self-signed CA,
 * server and client certificates, the client CA's CRL, PEM in and out, and
 * the predicates provisioning uses to decide whether something must be made
 * again. No file I/O and no logging: see pki.h for the contracts.
 *
 * Every failure path leaves the OpenSSL error queue empty (pki_error()), so a
 * caller that logs ERR_* state after some other call does not find ours.
 */

#include <sys/socket.h>
#include <errno.h>
#include <limits.h>
#include <stdint.h>
#include <string.h>
#include <strings.h>

#include <openssl/asn1.h>
#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/conf.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "macro.h"
#include "openssl-util.h"
#include "pki.h"

/* Longest validity we accept: 100 years. Keeps day counts far from the int
 * that X509_time_adj_ex() takes and from time_t overflow. */
#define PKI_DAYS_MAX 36500U
#define PKI_SECONDS_MAX ((long)PKI_DAYS_MAX * 86400)

/* Certificates start one hour in the past, so a client whose clock is a
 * little behind ours does not reject a certificate made a moment ago. */
#define PKI_BACKDATE_SEC (-3600L)

/* RFC 5280 upper bounds for the name attributes we set (ub-organization-name,
 * ub-common-name), and RFC 1035's for a DNS name. */
#define PKI_ORG_MAX 64U
#define PKI_CN_MAX 64U
#define PKI_DNS_MAX 253U

/* Return -EINVAL from a public function when a caller broke the contract:
 * this is library code, the caller logs. */
#define assert_return(expr, r)                                                                              \
        do {                                                                                                \
                if (!(expr))                                                                                \
                        return (r);                                                                         \
        } while (0)

/* Drain the OpenSSL error queue and return `fallback`, or -ENOMEM when any
 * queued error was an allocation failure. Predicates call it with 0: "no"
 * unless the answer was really "out of memory". */
static int pki_error(int fallback) {
        unsigned long e;
        int r = fallback;

        while ((e = ERR_get_error()) != 0)
                if (ERR_GET_REASON(e) == ERR_R_MALLOC_FAILURE)
                        r = -ENOMEM;
        return r;
}

/* s is 1 to max bytes, each one accepted by ok(). */
static bool str_valid(const char *s, size_t max, bool (*ok)(unsigned char c)) {
        size_t n;

        if (!s)
                return false;
        n = strlen(s);
        if (n == 0 || n > max)
                return false;
        for (const unsigned char *p = (const unsigned char *)s; *p; p++)
                if (!ok(*p))
                        return false;
        return true;
}

static bool is_printable(unsigned char c) {
        return c >= 0x20 && c != 0x7f;
}

/* A printable, bounded string without control characters: what we accept
 * for O and CN. OpenSSL would take more (any UTF-8), but these end up in
 * file names and logs of the caller. */
static bool name_attr_valid(const char *s, size_t max) {
        return str_valid(s, max, is_printable);
}

static bool is_dns_char(unsigned char c) {
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
               (c && strchr("-._*", c));
}

/* A DNS name for the SAN: letters, digits, '-', '.', '_' and a '*' for
 * wildcards; OpenSSL would copy any bytes into the IA5String. */
static bool dns_name_valid(const char *s) {
        return str_valid(s, PKI_DNS_MAX, is_dns_char);
}

/* The address bytes of an IP server name: 4 or 16. */
static size_t ip_len(const ServerName *n) {
        return n->family == AF_INET ? 4 : 16;
}

/* A server name as the configuration decided it (common/config): an IP
 * literal with its bytes, or a DNS name. */
static bool server_name_valid(const ServerName *n) {
        if (!n->name)
                return false;
        if (n->is_ip)
                return n->family == AF_INET || n->family == AF_INET6;
        return dns_name_valid(n->name);
}

/* "/O=org/CN=cn" as a new X509_NAME. */
static int make_name(const char *org, const char *cn, X509_NAME **ret) {
        _cleanup_(X509_NAME_freep) X509_NAME *name = NULL;

        name = X509_NAME_new();
        if (!name)
                return pki_error(-ENOMEM);
        if (!X509_NAME_add_entry_by_NID(name, NID_organizationName, MBSTRING_UTF8,
                                        (const unsigned char *)org, -1, -1, 0) ||
            !X509_NAME_add_entry_by_NID(name, NID_commonName, MBSTRING_UTF8, (const unsigned char *)cn, -1,
                                        -1, 0))
                return pki_error(-EIO);

        *ret = TAKE_PTR(name);
        return 0;
}

/* A positive serial number from 128 random bits (RFC 5280 4.1.2.2: positive,
 * at most 20 octets; CA/B Forum: at least 64 bits from a CSPRNG). */
static int random_serial(ASN1_INTEGER **ret) {
        _cleanup_(BN_freep) BIGNUM *bn = NULL;
        unsigned char buf[16];
        ASN1_INTEGER *serial;

        do {
                if (RAND_bytes(buf, sizeof buf) != 1)
                        return pki_error(-EIO);
                buf[0] &= 0x7f; /* DER INTEGER is signed: keep it positive */
                BN_free(bn);
                bn = BN_bin2bn(buf, sizeof buf, NULL);
                if (!bn)
                        return pki_error(-ENOMEM);
        } while (BN_is_zero(bn)); /* zero is not a valid serial */

        serial = BN_to_ASN1_INTEGER(bn, NULL);
        if (!serial)
                return pki_error(-ENOMEM);

        *ret = serial;
        return 0;
}

/* Add one extension written in openssl.cnf syntax ("critical,CA:TRUE"). The
 * values are constants of this file: never caller strings, which could
 * smuggle in more options after a comma. */
static int add_ext(X509 *cert, X509 *issuer, int nid, const char *value) {
        _cleanup_(X509_EXTENSION_freep) X509_EXTENSION *ext = NULL;
        X509V3_CTX ctx = {};

        X509V3_set_ctx(&ctx, issuer, cert, NULL, NULL, 0);
        ext = X509V3_EXT_nconf_nid(NULL, &ctx, nid, value);
        if (!ext)
                return pki_error(-EIO);
        if (!X509_add_ext(cert, ext, -1))
                return pki_error(-EIO);
        return 0;
}

typedef struct {
        int nid;
        const char *value; /* openssl.cnf syntax, as for add_ext() */
} ExtSpec;

/* The extensions of a table, in its order. */
static int add_exts(X509 *cert, X509 *issuer, const ExtSpec *exts, size_t n) {
        for (size_t i = 0; i < n; i++) {
                int r = add_ext(cert, issuer, exts[i].nid, exts[i].value);
                if (r < 0)
                        return r;
        }
        return 0;
}

/* The part every certificate shares: version 3, random serial, validity from
 * now-1h to now+seconds, subject, issuer and public key. */
static int cert_new(X509 *issuer, EVP_PKEY *key, const char *org, const char *cn, long seconds,
                    X509 **ret) {
        _cleanup_(X509_freep) X509 *cert = NULL;
        _cleanup_(X509_NAME_freep) X509_NAME *name = NULL;
        _cleanup_(ASN1_INTEGER_freep) ASN1_INTEGER *serial = NULL;
        time_t now = time(NULL);
        int r;

        cert = X509_new();
        if (!cert)
                return pki_error(-ENOMEM);
        if (!X509_set_version(cert, X509_VERSION_3))
                return pki_error(-EIO);

        r = random_serial(&serial);
        if (r < 0)
                return r;
        if (!X509_set_serialNumber(cert, serial))
                return pki_error(-EIO);

        if (!X509_time_adj_ex(X509_getm_notBefore(cert), 0, PKI_BACKDATE_SEC, &now) ||
            !X509_time_adj_ex(X509_getm_notAfter(cert), 0, seconds, &now))
                return pki_error(-EIO);

        r = make_name(org, cn, &name);
        if (r < 0)
                return r;
        if (!X509_set_subject_name(cert, name))
                return pki_error(-EIO);
        /* Self-signed when issuer is NULL: the cert is its own issuer. */
        if (!X509_set_issuer_name(cert, issuer ? X509_get_subject_name(issuer) : name))
                return pki_error(-EIO);

        if (!X509_set_pubkey(cert, key))
                return pki_error(-EIO);

        *ret = TAKE_PTR(cert);
        return 0;
}

/* A CA that may issue: basicConstraints CA:TRUE (and keyCertSign if it has a
 * keyUsage), with ca_key its private key. */
static int check_issuer(X509 *ca, EVP_PKEY *ca_key) {
        /* X509_check_private_key() queues the mismatch: drain it. */
        if (X509_check_ca(ca) != 1 || X509_check_private_key(ca, ca_key) != 1)
                return pki_error(-EINVAL);
        return 0;
}

static int sign_cert(X509 *cert, EVP_PKEY *key) {
        if (X509_sign(cert, key, EVP_sha256()) <= 0)
                return pki_error(-EIO);
        return 0;
}

int pki_generate_key(KeyType type, EVP_PKEY **ret_key) {
        EVP_PKEY *key;

        assert_return(ret_key, -EINVAL);

        switch (type) {
        case KEY_EC_P256:
                key = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
                break;
        case KEY_RSA_4096:
                key = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)4096);
                break;
        default:
                return -EINVAL;
        }
        if (!key)
                return pki_error(-EIO);

        *ret_key = key;
        return 0;
}

static int add_crl_dp(X509 *cert, const char *uri);

/* The CRL distribution point when there is one, then the issuer's signature;
 * takes cert over (freed on failure, else *ret_cert). */
static int cert_finish(X509 *cert, EVP_PKEY *ca_key, const char *crl_uri, X509 **ret_cert) {
        _cleanup_(X509_freep) X509 *owned = cert;
        int r;

        if (crl_uri) {
                r = add_crl_dp(owned, crl_uri);
                if (r < 0)
                        return r;
        }
        r = sign_cert(owned, ca_key);
        if (r < 0)
                return r;
        *ret_cert = TAKE_PTR(owned);
        return 0;
}

static const ExtSpec ca_exts[] = {
        /* pathlen:0: this CA signs leaf certificates only, never another CA. */
        {NID_basic_constraints, "critical,CA:TRUE,pathlen:0"},
        {NID_key_usage, "critical,keyCertSign,cRLSign"},
        /* SKI first: the AKI of a self-signed certificate is copied from it. */
        {NID_subject_key_identifier, "hash"},
        {NID_authority_key_identifier, "keyid:always"},
};

int pki_make_ca(EVP_PKEY *key, const char *org, const char *cn, unsigned days, X509 **ret_cert) {
        _cleanup_(X509_freep) X509 *cert = NULL;
        int r;

        assert_return(key, -EINVAL);
        assert_return(name_attr_valid(org, PKI_ORG_MAX), -EINVAL);
        assert_return(name_attr_valid(cn, PKI_CN_MAX), -EINVAL);
        assert_return(days > 0 && days <= PKI_DAYS_MAX, -EINVAL);
        assert_return(ret_cert, -EINVAL);

        r = cert_new(NULL, key, org, cn, (long)days * 86400, &cert);
        if (r < 0)
                return r;
        r = add_exts(cert, cert, ca_exts, ELEMENTSOF(ca_exts));
        if (r < 0)
                return r;
        return cert_finish(TAKE_PTR(cert), key, NULL, ret_cert);
}

/* subjectAltName from names, built as GENERAL_NAMEs rather than a config
 * string so that no name can be read as an option. Non-critical: the subject
 * is not empty (RFC 5280 4.2.1.6). */
static int add_san(X509 *cert, const ServerName *names, size_t n_names) {
        _cleanup_(GENERAL_NAMES_freep) GENERAL_NAMES *gens = NULL;

        gens = GENERAL_NAMES_new();
        if (!gens)
                return pki_error(-ENOMEM);

        for (size_t i = 0; i < n_names; i++) {
                _cleanup_(GENERAL_NAME_freep) GENERAL_NAME *gen = NULL;

                gen = GENERAL_NAME_new();
                if (!gen)
                        return pki_error(-ENOMEM);

                if (names[i].is_ip) {
                        ASN1_OCTET_STRING *os = ASN1_OCTET_STRING_new();

                        if (!os)
                                return pki_error(-ENOMEM);
                        if (!ASN1_OCTET_STRING_set(os, names[i].address, (int)ip_len(&names[i]))) {
                                ASN1_OCTET_STRING_free(os);
                                return pki_error(-ENOMEM);
                        }
                        GENERAL_NAME_set0_value(gen, GEN_IPADD, os);
                } else {
                        ASN1_IA5STRING *ia5 = ASN1_IA5STRING_new();

                        if (!ia5)
                                return pki_error(-ENOMEM);
                        if (!ASN1_STRING_set(ia5, names[i].name, -1)) {
                                ASN1_IA5STRING_free(ia5);
                                return pki_error(-ENOMEM);
                        }
                        GENERAL_NAME_set0_value(gen, GEN_DNS, ia5);
                }

                if (!sk_GENERAL_NAME_push(gens, gen))
                        return pki_error(-ENOMEM);
                TAKE_PTR(gen);
        }

        if (X509_add1_ext_i2d(cert, NID_subject_alt_name, gens, 0, X509V3_ADD_DEFAULT) != 1)
                return pki_error(-EIO);
        return 0;
}

/* Longest CRL URI we write: far more than https://<253-byte name>:port/path. */
#define PKI_URI_MAX 512U

/* An http(s) URI of visible ASCII: it goes into an IA5String as it is, and
 * clients (and testssl.sh) read it back as text. */
static bool crl_uri_valid(const char *uri) {
        size_t n;

        if (!uri)
                return false;
        n = strlen(uri);
        if (n == 0 || n > PKI_URI_MAX || (strncmp(uri, "https://", 8) != 0 && strncmp(uri, "http://", 7) != 0))
                return false;
        for (const unsigned char *p = (const unsigned char *)uri; *p; p++)
                if (*p <= 0x20 || *p >= 0x7f)
                        return false;
        return true;
}

/* crlDistributionPoints (RFC 5280 4.2.1.13) with one DistributionPoint
 * whose fullName is the URI, no reasons and no cRLIssuer: the CRL there is
 * the issuing CA's complete CRL. Built from the ASN.1 types rather than
 * X509V3_EXT_nconf_nid("URI:..."): the URI is a caller string, and the
 * config syntax would read commas in it as more options. */
static int add_crl_dp(X509 *cert, const char *uri) {
        _cleanup_(CRL_DIST_POINTS_freep) CRL_DIST_POINTS *dps = NULL;
        _cleanup_(GENERAL_NAME_freep) GENERAL_NAME *gen = NULL;
        DIST_POINT *dp;
        ASN1_IA5STRING *ia5;

        dps = sk_DIST_POINT_new_null();
        gen = GENERAL_NAME_new();
        ia5 = ASN1_IA5STRING_new();
        if (!dps || !gen || !ia5) {
                ASN1_IA5STRING_free(ia5);
                return pki_error(-ENOMEM);
        }
        if (!ASN1_STRING_set(ia5, uri, (int)strlen(uri))) {
                ASN1_IA5STRING_free(ia5);
                return pki_error(-ENOMEM);
        }
        GENERAL_NAME_set0_value(gen, GEN_URI, ia5);

        dp = DIST_POINT_new();
        if (!dp)
                return pki_error(-ENOMEM);
        if (!sk_DIST_POINT_push(dps, dp)) {
                DIST_POINT_free(dp);
                return pki_error(-ENOMEM);
        }
        dp->distpoint = DIST_POINT_NAME_new();
        if (!dp->distpoint)
                return pki_error(-ENOMEM);
        dp->distpoint->type = 0; /* fullName */
        dp->distpoint->name.fullname = GENERAL_NAMES_new();
        if (!dp->distpoint->name.fullname || !sk_GENERAL_NAME_push(dp->distpoint->name.fullname, gen))
                return pki_error(-ENOMEM);
        TAKE_PTR(gen);

        if (X509_add1_ext_i2d(cert, NID_crl_distribution_points, dps, 0, X509V3_ADD_DEFAULT) != 1)
                return pki_error(-EIO);
        return 0;
}

/* A leaf certificate for key under ca, not yet signed: subject
 * "/O=org/CN=cn", CA:FALSE, SKI and AKI, keyUsage and extendedKeyUsage (one
 * of this file's constants each). The arguments are checked by the callers. */
static int leaf_new(X509 *ca, EVP_PKEY *ca_key, EVP_PKEY *key, const char *org, const char *cn, long seconds,
                    const char *key_usage, const char *ext_key_usage, X509 **ret_cert) {
        const ExtSpec exts[] = {
                {NID_basic_constraints, "critical,CA:FALSE"},
                {NID_subject_key_identifier, "hash"},
                {NID_authority_key_identifier, "keyid:always"}, /* from the CA's SKI */
                {NID_key_usage, key_usage},
                {NID_ext_key_usage, ext_key_usage},
        };
        _cleanup_(X509_freep) X509 *cert = NULL;
        int r;

        r = check_issuer(ca, ca_key);
        if (r < 0)
                return r;
        r = cert_new(ca, key, org, cn, seconds, &cert);
        if (r < 0)
                return r;
        r = add_exts(cert, ca, exts, ELEMENTSOF(exts));
        if (r < 0)
                return r;
        *ret_cert = TAKE_PTR(cert);
        return 0;
}

int pki_issue_server(X509 *ca, EVP_PKEY *ca_key, EVP_PKEY *key, const char *org, const ServerName *names,
                     size_t n_names, unsigned days, const char *crl_uri, X509 **ret_cert) {
        assert_return(days > 0 && days <= PKI_DAYS_MAX, -EINVAL);
        return pki_issue_server_for(ca, ca_key, key, org, names, n_names, (long)days * 86400, crl_uri, ret_cert);
}

int pki_issue_server_for(X509 *ca, EVP_PKEY *ca_key, EVP_PKEY *key, const char *org, const ServerName *names,
                         size_t n_names, long seconds, const char *crl_uri, X509 **ret_cert) {
        _cleanup_(X509_freep) X509 *cert = NULL;
        int r;

        assert_return(ca, -EINVAL);
        assert_return(ca_key, -EINVAL);
        assert_return(key, -EINVAL);
        assert_return(name_attr_valid(org, PKI_ORG_MAX), -EINVAL);
        assert_return(names && n_names > 0, -EINVAL);
        assert_return(seconds > 0 && seconds <= PKI_SECONDS_MAX, -EINVAL);
        assert_return(!crl_uri || crl_uri_valid(crl_uri), -EINVAL);
        assert_return(ret_cert, -EINVAL);
        for (size_t i = 0; i < n_names; i++)
                assert_return(server_name_valid(&names[i]), -EINVAL);
        /* The CN is names[0]; a DNS name may be longer than a CN may be. */
        assert_return(name_attr_valid(names[0].name, PKI_CN_MAX), -EINVAL);

        /* keyEncipherment only for RSA: TLS 1.2 RSA key exchange encrypts to
         * the key; an EC key is only ever used to sign (RFC 8813 / 5480). */
        r = leaf_new(ca, ca_key, key, org, names[0].name, seconds,
                     EVP_PKEY_is_a(key, "RSA") ? "critical,digitalSignature,keyEncipherment"
                                               : "critical,digitalSignature",
                     "serverAuth", &cert);
        if (r < 0)
                return r;
        r = add_san(cert, names, n_names);
        if (r < 0)
                return r;
        return cert_finish(TAKE_PTR(cert), ca_key, crl_uri, ret_cert);
}

int pki_issue_client(X509 *ca, EVP_PKEY *ca_key, EVP_PKEY *key, const char *org, const char *cn,
                     unsigned days, const char *crl_uri, X509 **ret_cert) {
        X509 *cert = NULL;
        int r;

        assert_return(ca, -EINVAL);
        assert_return(ca_key, -EINVAL);
        assert_return(key, -EINVAL);
        assert_return(name_attr_valid(org, PKI_ORG_MAX), -EINVAL);
        assert_return(name_attr_valid(cn, PKI_CN_MAX), -EINVAL);
        assert_return(days > 0 && days <= PKI_DAYS_MAX, -EINVAL);
        assert_return(!crl_uri || crl_uri_valid(crl_uri), -EINVAL);
        assert_return(ret_cert, -EINVAL);

        r = leaf_new(ca, ca_key, key, org, cn, (long)days * 86400, "critical,digitalSignature", "clientAuth",
                     &cert);
        if (r < 0)
                return r;
        return cert_finish(cert, ca_key, crl_uri, ret_cert);
}

/* Append a copy of rev to crl unless its serial is already listed. */
static int crl_add_copy(X509_CRL *crl, const X509_REVOKED *rev) {
        _cleanup_(X509_REVOKED_freep) X509_REVOKED *copy = NULL;
        X509_REVOKED *existing;

        if (X509_CRL_get0_by_serial(crl, &existing, X509_REVOKED_get0_serialNumber(rev)) > 0)
                return 0;

        copy = X509_REVOKED_dup(rev);
        if (!copy)
                return pki_error(-ENOMEM);
        if (!X509_CRL_add0_revoked(crl, copy))
                return pki_error(-ENOMEM);
        TAKE_PTR(copy);
        return 0;
}

/* Adds serial to crl as revoked at date; already revoked: keeps the first
 * revocation date. 0, or a negative errno. */
static int crl_revoke(X509_CRL *crl, const ASN1_INTEGER *serial, ASN1_TIME *date) {
        _cleanup_(X509_REVOKED_freep) X509_REVOKED *rev = NULL;
        _cleanup_(ASN1_INTEGER_freep) ASN1_INTEGER *copy = NULL;
        X509_REVOKED *existing;

        if (X509_CRL_get0_by_serial(crl, &existing, serial) > 0)
                return 0;
        rev = X509_REVOKED_new();
        copy = ASN1_INTEGER_dup(serial);
        if (!rev || !copy)
                return pki_error(-ENOMEM);
        if (!X509_REVOKED_set_serialNumber(rev, copy) || !X509_REVOKED_set_revocationDate(rev, date))
                return pki_error(-ENOMEM);
        if (!X509_CRL_add0_revoked(crl, rev))
                return pki_error(-ENOMEM);
        TAKE_PTR(rev);
        return 0;
}

/* The CRL's extensions: the issuing CA's key identifier and the CRL
 * number (RFC 5280 5.2.1, 5.2.3). */
static int crl_add_extensions(X509_CRL *crl, X509 *ca, long crl_number) {
        _cleanup_(ASN1_INTEGER_freep) ASN1_INTEGER *number = NULL;
        _cleanup_(X509_EXTENSION_freep) X509_EXTENSION *aki = NULL;
        X509V3_CTX ctx = {};

        X509V3_set_ctx(&ctx, ca, NULL, NULL, crl, 0);
        aki = X509V3_EXT_nconf_nid(NULL, &ctx, NID_authority_key_identifier, "keyid:always");
        if (!aki)
                return pki_error(-EIO);
        if (!X509_CRL_add_ext(crl, aki, -1))
                return pki_error(-EIO);

        number = ASN1_INTEGER_new();
        if (!number)
                return pki_error(-ENOMEM);
        if (!ASN1_INTEGER_set_int64(number, crl_number))
                return pki_error(-ENOMEM);
        if (X509_CRL_add1_ext_i2d(crl, NID_crl_number, number, 0, X509V3_ADD_DEFAULT) != 1)
                return pki_error(-EIO);
        return 0;
}

int pki_make_crl(X509 *ca, EVP_PKEY *ca_key, X509_CRL *old, const ASN1_INTEGER *revoke, long crl_number,
                 unsigned days, X509_CRL **ret_crl) {
        assert_return(days > 0 && days <= PKI_DAYS_MAX, -EINVAL);
        return pki_make_crl_for(ca, ca_key, old, revoke, crl_number, (long)days * 86400, ret_crl);
}

int pki_make_crl_for(X509 *ca, EVP_PKEY *ca_key, X509_CRL *old, const ASN1_INTEGER *revoke, long crl_number,
                     long seconds, X509_CRL **ret_crl) {
        _cleanup_(X509_CRL_freep) X509_CRL *crl = NULL;
        _cleanup_(ASN1_TIME_freep) ASN1_TIME *this_update = NULL, *next_update = NULL;
        time_t now = time(NULL);
        int r;

        assert_return(ca, -EINVAL);
        assert_return(ca_key, -EINVAL);
        assert_return(crl_number >= 0, -EINVAL);
        assert_return(seconds > 0 && seconds <= PKI_SECONDS_MAX, -EINVAL);
        assert_return(ret_crl, -EINVAL);
        if (revoke) {
                _cleanup_(BN_freep) BIGNUM *bn = ASN1_INTEGER_to_BN(revoke, NULL);

                if (!bn)
                        return pki_error(-EINVAL);
                assert_return(!BN_is_zero(bn) && !BN_is_negative(bn), -EINVAL);
        }

        r = check_issuer(ca, ca_key);
        if (r < 0)
                return r;

        /* Carrying entries over from a CRL some other CA signed would revoke
         * serials of certificates this CA never issued, or lose real ones. */
        if (old) {
                r = pki_crl_verify(old, ca);
                if (r < 0)
                        return r;
                if (r == 0)
                        return -EINVAL;
        }

        crl = X509_CRL_new();
        if (!crl)
                return pki_error(-ENOMEM);
        /* v2: required for extensions (RFC 5280 5.1.2.1). */
        if (!X509_CRL_set_version(crl, X509_CRL_VERSION_2))
                return pki_error(-EIO);
        if (!X509_CRL_set_issuer_name(crl, X509_get_subject_name(ca)))
                return pki_error(-EIO);

        this_update = X509_time_adj_ex(NULL, 0, 0, &now);
        next_update = X509_time_adj_ex(NULL, 0, seconds, &now);
        if (!this_update || !next_update)
                return pki_error(-ENOMEM);
        if (!X509_CRL_set1_lastUpdate(crl, this_update) || !X509_CRL_set1_nextUpdate(crl, next_update))
                return pki_error(-EIO);

        if (old) {
                STACK_OF(X509_REVOKED) *revoked = X509_CRL_get_REVOKED(old);

                for (int i = 0; i < sk_X509_REVOKED_num(revoked); i++) {
                        r = crl_add_copy(crl, sk_X509_REVOKED_value(revoked, i));
                        if (r < 0)
                                return r;
                }
        }

        if (revoke) {
                r = crl_revoke(crl, revoke, this_update);
                if (r < 0)
                        return r;
        }

        if (!X509_CRL_sort(crl))
                return pki_error(-EIO);
        r = crl_add_extensions(crl, ca, crl_number);
        if (r < 0)
                return r;
        if (X509_CRL_sign(crl, ca_key, EVP_sha256()) <= 0)
                return pki_error(-EIO);

        *ret_crl = TAKE_PTR(crl);
        return 0;
}

/* The contents of a memory BIO as a new NUL-terminated string. */
static int bio_to_string(BIO *bio, char **ret_pem, size_t *ret_size) {
        char *data, *copy;
        long n;

        n = BIO_get_mem_data(bio, &data);
        if (n <= 0)
                return pki_error(-EIO);

        copy = malloc((size_t)n + 1);
        if (!copy)
                return -ENOMEM;
        memcpy(copy, data, (size_t)n);
        copy[n] = '\0';

        *ret_pem = copy;
        if (ret_size)
                *ret_size = (size_t)n;
        return 0;
}

/* pki_*_to_pem(): obj written by write() into a memory BIO of method (BIO_s_mem(), or
 * BIO_s_secmem() for a private key: its PEM is cleared when the BIO goes), then copied out. */
#define DEFINE_TO_PEM(fn, type, method, write)                          \
        int fn(type *obj, char **ret_pem, size_t *ret_size) {           \
                _cleanup_(BIO_freep) BIO *bio = NULL;                   \
                                                                        \
                assert_return(obj, -EINVAL);                            \
                assert_return(ret_pem, -EINVAL);                        \
                                                                        \
                bio = BIO_new(method());                                \
                if (!bio)                                               \
                        return pki_error(-ENOMEM);                      \
                if (!write(bio, obj))                                   \
                        return pki_error(-EIO);                         \
                return bio_to_string(bio, ret_pem, ret_size);           \
        }

/* "PRIVATE KEY": PKCS#8 PrivateKeyInfo, unencrypted. */
static int write_private_key(BIO *bio, EVP_PKEY *key) {
        return PEM_write_bio_PrivateKey(bio, key, NULL, NULL, 0, NULL, NULL);
}

DEFINE_TO_PEM(pki_key_to_pem, EVP_PKEY, BIO_s_secmem, write_private_key)
DEFINE_TO_PEM(pki_cert_to_pem, X509, BIO_s_mem, PEM_write_bio_X509)
DEFINE_TO_PEM(pki_crl_to_pem, X509_CRL, BIO_s_mem, PEM_write_bio_X509_CRL)
DEFINE_TO_PEM(pki_csr_to_pem, X509_REQ, BIO_s_mem, PEM_write_bio_X509_REQ)

/* A read-only BIO over pem. */
static int bio_from_string(const char *pem, size_t size, BIO **ret) {
        BIO *bio;

        assert_return(pem, -EINVAL);
        assert_return(size <= INT_MAX, -EINVAL);
        if (size == 0)
                return -EBADMSG;

        bio = BIO_new_mem_buf(pem, (int)size);
        if (!bio)
                return pki_error(-ENOMEM);
        *ret = bio;
        return 0;
}

typedef enum { PEM_PRIVATE_KEY, PEM_CERTIFICATE, PEM_CRL } PemKind;

/* One PEM object of the given kind from memory; encrypted keys are refused
 * (pem_no_passphrase) rather than prompting. */
static int pem_decode(const char *pem, size_t size, PemKind kind, void **ret) {
        _cleanup_(BIO_freep) BIO *bio = NULL;
        void *obj = NULL;
        int r;

        r = bio_from_string(pem, size, &bio);
        if (r < 0)
                return r;
        switch (kind) {
        case PEM_PRIVATE_KEY:
                obj = PEM_read_bio_PrivateKey(bio, NULL, pem_no_passphrase, NULL);
                break;
        case PEM_CERTIFICATE:
                obj = PEM_read_bio_X509(bio, NULL, pem_no_passphrase, NULL);
                break;
        case PEM_CRL:
                obj = PEM_read_bio_X509_CRL(bio, NULL, pem_no_passphrase, NULL);
                break;
        }
        if (!obj)
                return pki_error(-EBADMSG);
        *ret = obj;
        return 0;
}

/* pki_key_from_pem(), pki_cert_from_pem(), pki_crl_from_pem(): pem_decode()
 * with the type the caller asked for. */
#define DEFINE_FROM_PEM(fn, type, kind)                                 \
        int fn(const char *pem, size_t size, type **ret) {              \
                void *obj;                                              \
                int r;                                                  \
                                                                        \
                assert_return(ret, -EINVAL);                            \
                r = pem_decode(pem, size, kind, &obj);                  \
                if (r >= 0)                                             \
                        *ret = obj;                                     \
                return r;                                               \
        }
DEFINE_FROM_PEM(pki_key_from_pem, EVP_PKEY, PEM_PRIVATE_KEY)
DEFINE_FROM_PEM(pki_cert_from_pem, X509, PEM_CERTIFICATE)
DEFINE_FROM_PEM(pki_crl_from_pem, X509_CRL, PEM_CRL)

int pki_key_matches_cert(EVP_PKEY *key, X509 *cert) {
        EVP_PKEY *pub;

        assert_return(key, -EINVAL);
        assert_return(cert, -EINVAL);

        pub = X509_get0_pubkey(cert);
        if (!pub)
                return pki_error(-EIO);

        /* 1 equal, 0 different, -1 different types, -2 not comparable: only
         * 1 is a match. */
        if (EVP_PKEY_eq(pub, key) == 1)
                return 1;
        return pki_error(0);
}

/* X509_cmp_time() says -1 for before, 1 for after, 0 on error. */
static bool cert_valid_at(const X509 *cert, time_t t) {
        return X509_cmp_time(X509_get0_notBefore(cert), &t) == -1 &&
               X509_cmp_time(X509_get0_notAfter(cert), &t) == 1;
}

int pki_cert_verify(X509 *cert, X509 *ca, time_t now, long margin) {
        _cleanup_(X509_STORE_freep) X509_STORE *store = NULL;
        _cleanup_(X509_STORE_CTX_freep) X509_STORE_CTX *ctx = NULL;
        time_t t;
        int r;

        assert_return(cert, -EINVAL);
        assert_return(ca, -EINVAL);
        assert_return(!__builtin_add_overflow(now, margin, &t), -EINVAL);

        /* Only a real CA (basicConstraints CA:TRUE) counts; OpenSSL would also
         * take a v1 self-signed certificate as one. */
        if (X509_check_ca(ca) != 1)
                return pki_error(0);

        /* X509_verify_cert() checks the times of the whole chain too; asking
         * first is explicit and does not depend on the verify flags. */
        if (!cert_valid_at(cert, t) || !cert_valid_at(ca, t))
                return pki_error(0);

        store = X509_STORE_new();
        ctx = X509_STORE_CTX_new();
        if (!store || !ctx)
                return pki_error(-ENOMEM);
        if (!X509_STORE_add_cert(store, ca))
                return pki_error(-EIO);
        if (!X509_STORE_CTX_init(ctx, store, cert, NULL))
                return pki_error(-EIO);
        /* Sets X509_V_FLAG_USE_CHECK_TIME. No purpose: the caller knows
         * whether it asks about a server or a client certificate. */
        X509_VERIFY_PARAM_set_time(X509_STORE_CTX_get0_param(ctx), t);

        r = X509_verify_cert(ctx);
        if (r == 1)
                return 1;
        if (r < 0)
                return pki_error(-EIO);
        return pki_error(X509_STORE_CTX_get_error(ctx) == X509_V_ERR_OUT_OF_MEM ? -ENOMEM : 0);
}

/* Whether one SAN entry stands for name: IP literals against iPAddress
 * entries byte for byte, anything else against dNSName entries ignoring
 * case. */
static bool gen_matches(const GENERAL_NAME *gen, const ServerName *name) {
        size_t n;
        int type;
        const ASN1_STRING *s = GENERAL_NAME_get0_value(gen, &type);

        if (!s)
                return false;

        if (name->is_ip)
                return type == GEN_IPADD && (size_t)ASN1_STRING_length(s) == ip_len(name) &&
                       memcmp(ASN1_STRING_get0_data(s), name->address, ip_len(name)) == 0;

        n = strlen(name->name);
        return type == GEN_DNS && (size_t)ASN1_STRING_length(s) == n &&
               strncasecmp((const char *)ASN1_STRING_get0_data(s), name->name, n) == 0 &&
               !memchr(ASN1_STRING_get0_data(s), '\0', n);
}

/* Whether one of the SAN's n_gens entries is name. */
static bool gens_have(const GENERAL_NAMES *gens, int n_gens, const ServerName *name) {
        for (int j = 0; j < n_gens; j++)
                if (gen_matches(sk_GENERAL_NAME_value(gens, j), name))
                        return true;
        return false;
}

/* Whether gen is one of names. */
static bool names_have(const ServerName *names, size_t n_names, const GENERAL_NAME *gen) {
        for (size_t i = 0; i < n_names; i++)
                if (gen_matches(gen, &names[i]))
                        return true;
        return false;
}

int pki_cert_matches_names(X509 *cert, const ServerName *names, size_t n_names) {
        _cleanup_(GENERAL_NAMES_freep) GENERAL_NAMES *gens = NULL;
        int crit = -1, n_gens;

        assert_return(cert, -EINVAL);
        assert_return(names && n_names > 0, -EINVAL);
        for (size_t i = 0; i < n_names; i++)
                assert_return(names[i].name, -EINVAL);

        gens = X509_get_ext_d2i(cert, NID_subject_alt_name, &crit, NULL);
        if (!gens) {
                /* -1: no SAN at all, so not our names; -2: two SANs, which
                 * RFC 5280 forbids; otherwise it did not decode. */
                return pki_error(crit == -1 || crit == -2 ? 0 : -EBADMSG);
        }

        n_gens = sk_GENERAL_NAME_num(gens);

        /* Compared as sets: every name is in the SAN and every SAN entry is
         * one of the names (duplicates on either side do not matter). */
        for (size_t i = 0; i < n_names; i++)
                if (!gens_have(gens, n_gens, &names[i]))
                        return 0;
        for (int j = 0; j < n_gens; j++)
                if (!names_have(names, n_names, sk_GENERAL_NAME_value(gens, j)))
                        return 0;

        return 1;
}

int pki_key_is_type(EVP_PKEY *key, KeyType type) {
        char group[64];

        assert_return(key, -EINVAL);

        switch (type) {
        case KEY_EC_P256:
                if (!EVP_PKEY_is_a(key, "EC"))
                        return 0;
                /* No group name: explicit curve parameters, not P-256 by name. */
                if (!EVP_PKEY_get_utf8_string_param(key, OSSL_PKEY_PARAM_GROUP_NAME, group, sizeof group,
                                                    NULL))
                        return pki_error(0);
                return OBJ_txt2nid(group) == NID_X9_62_prime256v1 ||
                       EC_curve_nist2nid(group) == NID_X9_62_prime256v1;
        case KEY_RSA_4096:
                return EVP_PKEY_is_a(key, "RSA") && EVP_PKEY_get_bits(key) == 4096;
        default:
                return -EINVAL;
        }
}

/* An ASN1_TIME as time_t; NULL (a CRL without nextUpdate) is -ENODATA. */
static int asn1_time_to_time(const ASN1_TIME *a, time_t *ret) {
        struct tm tm = {};
        time_t t;

        if (!a)
                return -ENODATA;
        if (!ASN1_TIME_to_tm(a, &tm))
                return pki_error(-EBADMSG);
        t = timegm(&tm);
        if (t == (time_t)-1)
                return -ERANGE;
        *ret = t;
        return 0;
}

int pki_cert_not_after(X509 *cert, time_t *ret) {
        assert_return(cert, -EINVAL);
        assert_return(ret, -EINVAL);
        return asn1_time_to_time(X509_get0_notAfter(cert), ret);
}

int pki_cert_not_before(X509 *cert, time_t *ret) {
        assert_return(cert, -EINVAL);
        assert_return(ret, -EINVAL);
        return asn1_time_to_time(X509_get0_notBefore(cert), ret);
}

int pki_crl_dates(X509_CRL *crl, time_t *ret_this_update, time_t *ret_next_update) {
        time_t this_update, next_update;
        int r;

        assert_return(crl, -EINVAL);
        r = asn1_time_to_time(X509_CRL_get0_lastUpdate(crl), &this_update);
        if (r < 0)
                return r;
        r = asn1_time_to_time(X509_CRL_get0_nextUpdate(crl), &next_update);
        if (r < 0)
                return r;
        if (ret_this_update)
                *ret_this_update = this_update;
        if (ret_next_update)
                *ret_next_update = next_update;
        return 0;
}

int pki_serial_hex(const ASN1_INTEGER *serial, char **ret_hex) {
        _cleanup_(BN_freep) BIGNUM *bn = NULL;
        char *hex, *copy;

        assert_return(serial, -EINVAL);
        assert_return(ret_hex, -EINVAL);
        bn = ASN1_INTEGER_to_BN(serial, NULL);
        hex = bn ? BN_bn2hex(bn) : NULL;
        if (!hex)
                return pki_error(-ENOMEM);
        copy = strdup(hex);
        OPENSSL_free(hex);
        if (!copy)
                return -ENOMEM;
        *ret_hex = copy;
        return 0;
}

/* Status names, as `pki list` prints them and --json carries them. */
static const char *const pki_status_names[] = {
        [PKI_STATUS_VALID] = "valid",
        [PKI_STATUS_EXPIRING] = "expiring",
        [PKI_STATUS_EXPIRED] = "expired",
        [PKI_STATUS_REVOKED] = "revoked",
};

PkiStatus pki_status_of(time_t not_after, bool revoked, time_t now, long margin) {
        /* Revoked first: a revoked certificate is refused whatever its dates. */
        if (revoked)
                return PKI_STATUS_REVOKED;
        if (not_after <= now)
                return PKI_STATUS_EXPIRED;
        if (margin > 0 && not_after - now <= margin)
                return PKI_STATUS_EXPIRING;
        return PKI_STATUS_VALID;
}

const char *pki_status_name(PkiStatus status) {
        return (size_t)status < ELEMENTSOF(pki_status_names) ? pki_status_names[status] : "unknown";
}

int pki_cert_common_name(X509 *cert, char **ret_cn) {
        _cleanup_(OPENSSL_freep) unsigned char *utf8 = NULL;
        const X509_NAME *subject;
        const X509_NAME_ENTRY *entry;
        char *cn;
        int i, n;

        assert_return(cert, -EINVAL);
        assert_return(ret_cn, -EINVAL);

        subject = X509_get_subject_name(cert);
        i = X509_NAME_get_index_by_NID(subject, NID_commonName, -1);
        if (i < 0)
                return -ENOENT;
        /* Two CNs: which one is the name? Neither. */
        if (X509_NAME_get_index_by_NID(subject, NID_commonName, i) >= 0)
                return -ENOTUNIQ;

        entry = X509_NAME_get_entry(subject, i);
        n = ASN1_STRING_to_UTF8(&utf8, X509_NAME_ENTRY_get_data(entry));
        if (n < 0)
                return pki_error(-EBADMSG);
        /* An embedded NUL would make the C string say something else. */
        if (memchr(utf8, '\0', (size_t)n))
                return -EBADMSG;

        cn = strndup((const char *)utf8, (size_t)n);
        if (!cn)
                return -ENOMEM;

        *ret_cn = cn;
        return 0;
}

int pki_crl_has_serial(X509_CRL *crl, const ASN1_INTEGER *serial) {
        X509_REVOKED *rev;

        assert_return(crl, -EINVAL);
        assert_return(serial, -EINVAL);

        /* 2 means listed with reason removeFromCRL (delta CRLs): not revoked. */
        return X509_CRL_get0_by_serial(crl, &rev, serial) == 1;
}

int pki_crl_verify(X509_CRL *crl, X509 *ca) {
        EVP_PKEY *pub;

        assert_return(crl, -EINVAL);
        assert_return(ca, -EINVAL);

        /* The name first: OpenSSL finds a certificate's CRL by issuer name,
         * so a CRL under another name revokes nothing even if our key
         * signed it. */
        if (X509_NAME_cmp(X509_CRL_get_issuer(crl), X509_get_subject_name(ca)) != 0)
                return pki_error(0);
        pub = X509_get0_pubkey(ca);
        if (!pub)
                return pki_error(-EIO);
        /* 1 good, 0 bad signature, -1 could not check: only 1 is ours. */
        return X509_CRL_verify(crl, pub) == 1 ? 1 : pki_error(0);
}

int pki_crl_number(X509_CRL *crl, long *ret_number) {
        _cleanup_(ASN1_INTEGER_freep) ASN1_INTEGER *number = NULL;
        int64_t v;
        int crit = -1;

        assert_return(crl, -EINVAL);
        assert_return(ret_number, -EINVAL);

        number = X509_CRL_get_ext_d2i(crl, NID_crl_number, &crit, NULL);
        if (!number) {
                if (crit != -1)
                        return pki_error(-EBADMSG); /* duplicated or undecodable */
                *ret_number = 0;
                return 0;
        }

        /* RFC 5280 allows up to 20 octets; we only ever write a long. */
        if (!ASN1_INTEGER_get_int64(&v, number) || v < 0 || v > LONG_MAX)
                return pki_error(-ERANGE);

        *ret_number = (long)v;
        return 0;
}

int pki_cert_has_crl_uri(X509 *cert, const char *crl_uri) {
        _cleanup_(CRL_DIST_POINTS_freep) CRL_DIST_POINTS *dps = NULL;
        const DIST_POINT *dp;
        const GENERAL_NAME *gen;
        const ASN1_STRING *s;
        int crit = -1, type;

        assert_return(cert, -EINVAL);
        assert_return(crl_uri, -EINVAL);

        dps = X509_get_ext_d2i(cert, NID_crl_distribution_points, &crit, NULL);
        if (!dps)
                /* -1: none; -2: two of them; otherwise it did not decode. */
                return pki_error(crit == -1 || crit == -2 ? 0 : -EBADMSG);

        /* Exactly what add_crl_dp() writes: one point, one full name. */
        if (sk_DIST_POINT_num(dps) != 1)
                return 0;
        dp = sk_DIST_POINT_value(dps, 0);
        if (!dp->distpoint || dp->distpoint->type != 0 || dp->reasons || dp->CRLissuer ||
            sk_GENERAL_NAME_num(dp->distpoint->name.fullname) != 1)
                return 0;
        gen = sk_GENERAL_NAME_value(dp->distpoint->name.fullname, 0);
        s = GENERAL_NAME_get0_value(gen, &type);
        return type == GEN_URI && s && (size_t)ASN1_STRING_length(s) == strlen(crl_uri) &&
               memcmp(ASN1_STRING_get0_data(s), crl_uri, strlen(crl_uri)) == 0;
}

int pki_make_csr(EVP_PKEY *key, const char *cn, X509_REQ **ret_req) {
        _cleanup_(X509_REQ_freep) X509_REQ *req = NULL;
        X509_NAME *name;

        assert_return(key, -EINVAL);
        assert_return(cn && name_attr_valid(cn, 64), -EINVAL);
        assert_return(ret_req, -EINVAL);

        req = X509_REQ_new();
        if (!req)
                return pki_error(-ENOMEM);
        name = X509_REQ_get_subject_name(req);
        if (!X509_REQ_set_version(req, 0) ||
            !X509_NAME_add_entry_by_NID(name, NID_commonName, MBSTRING_UTF8, (const unsigned char *) cn, -1, -1,
                                        0) ||
            !X509_REQ_set_pubkey(req, key) || X509_REQ_sign(req, key, EVP_sha256()) <= 0)
                return pki_error(-EIO);
        *ret_req = TAKE_PTR(req);
        return 0;
}


int pki_csr_from_pem(const char *pem, size_t size, X509_REQ **ret_req) {
        _cleanup_(BIO_freep) BIO *bio = NULL;
        X509_REQ *req;
        int r;

        assert_return(ret_req, -EINVAL);
        r = bio_from_string(pem, size, &bio);
        if (r < 0)
                return r;
        req = PEM_read_bio_X509_REQ(bio, NULL, pem_no_passphrase, NULL);
        if (!req)
                return pki_error(-EBADMSG);
        *ret_req = req;
        return 0;
}

int pki_csr_verify(X509_REQ *req, EVP_PKEY **ret_key, char **ret_cn) {
        _cleanup_(OPENSSL_freep) unsigned char *utf8 = NULL;
        _cleanup_(EVP_PKEY_freep) EVP_PKEY *key = NULL;
        const X509_NAME *subject;
        char *cn;
        int i, n;

        assert_return(req, -EINVAL);
        assert_return(ret_key, -EINVAL);
        assert_return(ret_cn, -EINVAL);

        key = X509_REQ_get_pubkey(req);
        if (!key || X509_REQ_verify(req, key) != 1)
                return pki_error(-EBADMSG);
        subject = X509_REQ_get_subject_name(req);
        i = X509_NAME_get_index_by_NID(subject, NID_commonName, -1);
        if (i < 0 || X509_NAME_get_index_by_NID(subject, NID_commonName, i) >= 0)
                return -EBADMSG;
        n = ASN1_STRING_to_UTF8(&utf8, X509_NAME_ENTRY_get_data(X509_NAME_get_entry(subject, i)));
        if (n < 0 || memchr(utf8, '\0', (size_t) n))
                return pki_error(-EBADMSG);
        cn = strndup((const char *) utf8, (size_t) n);
        if (!cn)
                return -ENOMEM;
        *ret_key = TAKE_PTR(key);
        *ret_cn = cn;
        return 0;
}

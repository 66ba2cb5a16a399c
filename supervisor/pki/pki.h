/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * The registry's PKI, made with the OpenSSL 3 library (EVP, X509): server CA,
 * server certificate, client CA, client certificates and the client CA's CRL.
 * Pure functions over OpenSSL objects and PEM buffers: no file I/O and no
 * logging here; provisioning decides what to write where.
 *
 * Every function returns 0 (or 1/0 for predicates) on success and a negative
 * errno on failure (-ENOMEM, -EINVAL for bad arguments, -EBADMSG for PEM that
 * does not parse, -EIO for any other OpenSSL failure). ret_* parameters are
 * set only on success and owned by the caller.
 */

#include <openssl/evp.h>
#include <openssl/x509.h>
#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#include "config.h"

/* Generates a new private key: EC P-256 or RSA 4096. */
int pki_generate_key(KeyType type, EVP_PKEY **ret_key);

/* Self-signed CA: subject "/O=org/CN=cn", basicConstraints critical CA:TRUE
 * pathlen:0, keyUsage critical keyCertSign+cRLSign, subjectKeyIdentifier,
 * authorityKeyIdentifier, random 128-bit serial, valid from now-1h for days. */
int pki_make_ca(EVP_PKEY *key, const char *org, const char *cn, unsigned days, X509 **ret_cert);

/* Server certificate for key signed by ca/ca_key: subject "/O=org/CN=names[0]",
 * subjectAltName with every name as the configuration parsed it (Config's
 * servers[]: is_ip ones as iPAddress from their bytes, others as dNSName),
 * basicConstraints critical CA:FALSE, keyUsage critical digitalSignature
 * (+keyEncipherment for RSA), extendedKeyUsage serverAuth, SKI and AKI, and
 * when crl_uri is non-NULL (an http:// or https:// URI of visible ASCII,
 * else -EINVAL) crlDistributionPoints with that one URI. */
int pki_issue_server(X509 *ca, EVP_PKEY *ca_key, EVP_PKEY *key, const char *org, const ServerName *names,
                     size_t n_names, unsigned days, const char *crl_uri, X509 **ret_cert);
/* The same, valid for `seconds` ([pki] server_validity: tests use seconds). */
int pki_issue_server_for(X509 *ca, EVP_PKEY *ca_key, EVP_PKEY *key, const char *org, const ServerName *names,
                         size_t n_names, long seconds, const char *crl_uri, X509 **ret_cert);

/* Client certificate "/O=org/CN=cn" with extendedKeyUsage clientAuth,
 * keyUsage digitalSignature, CA:FALSE, SKI and AKI, and crl_uri as above. */
int pki_issue_client(X509 *ca, EVP_PKEY *ca_key, EVP_PKEY *key, const char *org, const char *cn,
                     unsigned days, const char *crl_uri, X509 **ret_cert);

/* 1 when cert's crlDistributionPoints is exactly one point whose only name
 * is the URI crl_uri (byte for byte), 0 otherwise (none, another URI, more
 * points or names), -EBADMSG when the extension does not decode. */
int pki_cert_has_crl_uri(X509 *cert, const char *crl_uri);

/* A CRL signed by ca_key: lastUpdate now, nextUpdate now+days, crlNumber
 * crl_number, authorityKeyIdentifier, and every revoked serial of `old` (may
 * be NULL) plus `revoke` (may be NULL) with revocation time now. */
int pki_make_crl(X509 *ca, EVP_PKEY *ca_key, X509_CRL *old, const ASN1_INTEGER *revoke, long crl_number,
                 unsigned days, X509_CRL **ret_crl);
/* The same with nextUpdate now+seconds ([pki] crl_validity). */
int pki_make_crl_for(X509 *ca, EVP_PKEY *ca_key, X509_CRL *old, const ASN1_INTEGER *revoke, long crl_number,
                     long seconds, X509_CRL **ret_crl);

/* PEM encoding into a new NUL-terminated buffer (private keys PKCS#8,
 * unencrypted: they are protected by file modes). */
int pki_key_to_pem(EVP_PKEY *key, char **ret_pem, size_t *ret_size);
int pki_cert_to_pem(X509 *cert, char **ret_pem, size_t *ret_size);
int pki_crl_to_pem(X509_CRL *crl, char **ret_pem, size_t *ret_size);

/* PEM decoding from memory. */
int pki_key_from_pem(const char *pem, size_t size, EVP_PKEY **ret_key);
int pki_cert_from_pem(const char *pem, size_t size, X509 **ret_cert);
int pki_crl_from_pem(const char *pem, size_t size, X509_CRL **ret_crl);

/* 1 when the public half of key is the one in cert, 0 otherwise. */
int pki_key_matches_cert(EVP_PKEY *key, X509 *cert);

/* 1 when cert is signed by ca, ca is a CA, and both are within their
 * validity at time `now` plus `margin` seconds (so a certificate about to
 * expire counts as invalid); 0 otherwise. */
int pki_cert_verify(X509 *cert, X509 *ca, time_t now, long margin);

/* 1 when the subjectAltName of cert holds exactly the set of names given
 * (order does not matter; is_ip names compared as addresses with iPAddress
 * entries, others with dNSName entries ignoring case), 0 otherwise. */
int pki_cert_matches_names(X509 *cert, const ServerName *names, size_t n_names);

/* 1 when key is of the given type (EC P-256 / RSA 4096), 0 otherwise. */
int pki_key_is_type(EVP_PKEY *key, KeyType type);

/* notAfter of cert as time_t. */
int pki_cert_not_after(X509 *cert, time_t *ret);

/* notBefore of cert as time_t. */
int pki_cert_not_before(X509 *cert, time_t *ret);

/* thisUpdate and nextUpdate of crl (either ret may be NULL); -ENODATA when
 * the CRL has no nextUpdate. */
int pki_crl_dates(X509_CRL *crl, time_t *ret_this_update, time_t *ret_next_update);

/* A serial number as upper-case hex (OpenSSL's BN_bn2hex) in a new string. */
int pki_serial_hex(const ASN1_INTEGER *serial, char **ret_hex);

/* Where a certificate stands, for `pki list` and health. */
typedef enum {
        PKI_STATUS_VALID,
        PKI_STATUS_EXPIRING, /* ends within the margin ([pki] renew_before) */
        PKI_STATUS_EXPIRED,
        PKI_STATUS_REVOKED, /* on its CA's CRL, whatever its dates */
} PkiStatus;

/* The status of a certificate ending at not_after at time now: revoked
 * first, then expired (not_after <= now), expiring (within margin seconds;
 * margin <= 0: never), else valid. Pure. */
PkiStatus pki_status_of(time_t not_after, bool revoked, time_t now, long margin);
/* "valid", "expiring", "expired", "revoked". */
const char *pki_status_name(PkiStatus status);

/* Subject CN of cert into a new string. */
int pki_cert_common_name(X509 *cert, char **ret_cn);

/* 1 when cert's serial is listed in crl, 0 otherwise. */
int pki_crl_has_serial(X509_CRL *crl, const ASN1_INTEGER *serial);

/* 1 when crl is ca's own: issued under ca's subject name and signed by ca's
 * key; 0 when it is not (another CA's CRL, a forged or damaged signature). */
int pki_crl_verify(X509_CRL *crl, X509 *ca);

/* crlNumber extension of crl (0 when absent). */
int pki_crl_number(X509_CRL *crl, long *ret_number);

/* A certificate request for key, subject "/CN=cn" and nothing else (the
 * registry host decides every other field when it signs). */
int pki_make_csr(EVP_PKEY *key, const char *cn, X509_REQ **ret_req);
int pki_csr_to_pem(X509_REQ *req, char **ret_pem, size_t *ret_size);
int pki_csr_from_pem(const char *pem, size_t size, X509_REQ **ret_req);

/* The public key of req, once its self-signature verifies with it (proof
 * that the requester holds the private key), and its subject CN. Nothing
 * else of the request is read: what it asks beyond its key and name
 * (extensions, other subject fields) is never copied into a certificate.
 * -EBADMSG when the signature does not verify or there is no single CN. */
int pki_csr_verify(X509_REQ *req, EVP_PKEY **ret_key, char **ret_cn);

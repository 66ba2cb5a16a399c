/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * _cleanup_ helpers for OpenSSL objects, one for each type regvisor holds in
 * a local: `_cleanup_(X509_freep) X509 *cert = NULL;`. Named after the free
 * function they call, as systemd names its own (FOO_freep for FOO_free).
 * Each accepts NULL; hand an object on with TAKE_PTR().
 */

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#define DEFINE_OPENSSL_CLEANUP(type, func)                                                                  \
        static inline void func##p(type **p) {                                                              \
                if (*p)                                                                                     \
                        (void) func(*p);                                                                    \
        }

DEFINE_OPENSSL_CLEANUP(ASN1_INTEGER, ASN1_INTEGER_free)
DEFINE_OPENSSL_CLEANUP(ASN1_TIME, ASN1_TIME_free)
DEFINE_OPENSSL_CLEANUP(BASIC_CONSTRAINTS, BASIC_CONSTRAINTS_free)
DEFINE_OPENSSL_CLEANUP(BIGNUM, BN_free)
DEFINE_OPENSSL_CLEANUP(BIO, BIO_free)
DEFINE_OPENSSL_CLEANUP(EVP_PKEY, EVP_PKEY_free)
DEFINE_OPENSSL_CLEANUP(EVP_PKEY_CTX, EVP_PKEY_CTX_free)
DEFINE_OPENSSL_CLEANUP(GENERAL_NAME, GENERAL_NAME_free)
DEFINE_OPENSSL_CLEANUP(GENERAL_NAMES, GENERAL_NAMES_free)
DEFINE_OPENSSL_CLEANUP(SSL, SSL_free)
DEFINE_OPENSSL_CLEANUP(SSL_CTX, SSL_CTX_free)
DEFINE_OPENSSL_CLEANUP(X509, X509_free)
DEFINE_OPENSSL_CLEANUP(X509_CRL, X509_CRL_free)
DEFINE_OPENSSL_CLEANUP(X509_EXTENSION, X509_EXTENSION_free)
DEFINE_OPENSSL_CLEANUP(X509_NAME, X509_NAME_free)
DEFINE_OPENSSL_CLEANUP(X509_REQ, X509_REQ_free)
DEFINE_OPENSSL_CLEANUP(X509_REVOKED, X509_REVOKED_free)
DEFINE_OPENSSL_CLEANUP(X509_STORE, X509_STORE_free)
DEFINE_OPENSSL_CLEANUP(X509_STORE_CTX, X509_STORE_CTX_free)
DEFINE_OPENSSL_CLEANUP(CRL_DIST_POINTS, CRL_DIST_POINTS_free)

/* OPENSSL_free() is a macro: a function of its own for the helper. */
static inline void OPENSSL_freep(void *p) {
        OPENSSL_free(*(void **) p);
}

/* The passphrase callback of every PEM read: none is ever asked for, an
 * encrypted key fails to load (OpenSSL's default would prompt on the
 * terminal, and wait there). */
static inline int pem_no_passphrase(char *buf, int size, int rwflag, void *userdata) {
        (void) buf;
        (void) size;
        (void) rwflag;
        (void) userdata;
        return -1;
}

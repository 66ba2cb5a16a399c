/* SPDX-License-Identifier: MIT */
/*
 * TLS server contexts and client certificate verdicts; see tls.h.
 */

#include <errno.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509_vfy.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "macro.h"
#include "tls.h"

/* ssl_session_cache shared:SSL:10m holds about 40000 sessions; ours is per
 * worker (tickets, which every worker shares, are what clients use). */
#define TLS_SESSION_CACHE_SIZE 20480
#define TLS_SESSION_TIMEOUT 600 /* ssl_session_timeout 10m */

static void ssl_ctx_freep(SSL_CTX **c) {
        SSL_CTX_free(*c);
}

static void bio_freep(BIO **b) {
        BIO_free(*b);
}

static void x509_freep(X509 **x) {
        X509_free(*x);
}

static void x509_crl_freep(X509_CRL **x) {
        X509_CRL_free(*x);
}

/* "what: file: OpenSSL's last error"; returns -EINVAL. */
static int fail(char **ret_error, const char *what, const char *file) {
        char err[256] = "unknown error";
        unsigned long e = ERR_peek_last_error();

        if (e)
                ERR_error_string_n(e, err, sizeof(err));
        ERR_clear_error();
        if (ret_error && asprintf(ret_error, "%s %s: %s", what, file ? file : "", err) < 0)
                *ret_error = NULL;
        return -EINVAL;
}

/* Lets every handshake complete: the verdict is given in HTTP (tls.h). The
 * error stays recorded in the verify result. */
static int verify_keep_going(int preverify_ok, X509_STORE_CTX *x) {
        (void)preverify_ok;
        (void)x;
        return 1;
}

static int setup_client_auth(SSL_CTX *ctx, const TlsFiles *f, char **ret_error) {
        _cleanup_(bio_freep) BIO *b = NULL;
        _cleanup_(x509_freep) X509 *ca = NULL;
        _cleanup_(x509_crl_freep) X509_CRL *crl = NULL;
        STACK_OF(X509_NAME) *names;
        X509_STORE *store = SSL_CTX_get_cert_store(ctx);

        b = BIO_new_file(f->client_ca, "r");
        if (!b || !(ca = PEM_read_bio_X509(b, NULL, NULL, NULL)))
                return fail(ret_error, "cannot load the client CA", f->client_ca);
        BIO_free(b);
        b = BIO_new_file(f->crl, "r");
        if (!b || !(crl = PEM_read_bio_X509_CRL(b, NULL, NULL, NULL)))
                return fail(ret_error, "cannot load the client CRL", f->crl);
        /* Fail closed: a CRL that is not the client CA's would not be found
         * for its certificates (OpenSSL looks CRLs up by issuer name), and
         * with X509_V_FLAG_CRL_CHECK every push would be refused for
         * "unable to get certificate CRL": say so at start and reload
         * instead, where the parent keeps the workers it has. */
        if (X509_NAME_cmp(X509_CRL_get_issuer(crl), X509_get_subject_name(ca)) != 0)
                return fail(ret_error, "the CRL is not issued by the client CA (issuer name differs)", f->crl);
        if (X509_CRL_verify(crl, X509_get0_pubkey(ca)) != 1)
                return fail(ret_error, "the CRL is not signed by the client CA", f->crl);

        if (X509_STORE_add_cert(store, ca) != 1 || X509_STORE_add_crl(store, crl) != 1 ||
            X509_STORE_set_flags(store, X509_V_FLAG_CRL_CHECK) != 1)
                return fail(ret_error, "cannot set up client verification with", f->client_ca);

        /* The CA names go into the CertificateRequest: Go clients (podman,
         * skopeo) only send a certificate issued by one of them. */
        names = SSL_load_client_CA_file(f->client_ca);
        if (!names)
                return fail(ret_error, "cannot read the CA name of", f->client_ca);
        SSL_CTX_set_client_CA_list(ctx, names);

        SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, verify_keep_going);
        SSL_CTX_set_verify_depth(ctx, 2); /* ssl_verify_depth 2 */
        return 0;
}

int tls_ctx_new(const TlsFiles *f, const char *session_context, SSL_CTX **ret, char **ret_error) {
        _cleanup_(ssl_ctx_freep) SSL_CTX *ctx = NULL;
        int r;

        ERR_clear_error();
        ctx = SSL_CTX_new(TLS_server_method());
        if (!ctx)
                return fail(ret_error, "cannot create a TLS context", NULL);

        if (SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION) != 1 ||
            SSL_CTX_set_max_proto_version(ctx, TLS1_3_VERSION) != 1 ||
            SSL_CTX_set_cipher_list(ctx, TLS_CIPHERS) != 1 || SSL_CTX_set1_groups_list(ctx, TLS_GROUPS) != 1)
                return fail(ret_error, "cannot set TLS versions, ciphers or groups", NULL);
        SSL_CTX_set_options(ctx, SSL_OP_CIPHER_SERVER_PREFERENCE | SSL_OP_NO_RENEGOTIATION |
                                         SSL_OP_NO_COMPRESSION | SSL_OP_IGNORE_UNEXPECTED_EOF);
        /* Non-blocking writes of a buffer that moves (we compact ours), in
         * pieces; OpenSSL's buffers freed after each record (an idle
         * keep-alive connection also calls SSL_free_buffers(), worker.c:
         * the read that says WANT_READ allocates the read buffer again). */
        SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER |
                                      SSL_MODE_RELEASE_BUFFERS);
        /* Read as much as the socket has, not one record header at a time:
         * fewer system calls for bulk uploads. Records are full 16 KiB
         * (the default and maximum send fragment). */
        SSL_CTX_set_read_ahead(ctx, 1);
        SSL_CTX_set_default_read_buffer_len(ctx, 64 * 1024);

        SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_SERVER);
        SSL_CTX_sess_set_cache_size(ctx, TLS_SESSION_CACHE_SIZE);
        SSL_CTX_set_timeout(ctx, TLS_SESSION_TIMEOUT);
        if (SSL_CTX_set_session_id_context(ctx, (const unsigned char *)session_context,
                                           (unsigned)strlen(session_context)) != 1)
                return fail(ret_error, "cannot set the session id context", NULL);

        if (SSL_CTX_use_certificate_chain_file(ctx, f->cert) != 1)
                return fail(ret_error, "cannot load the server certificate", f->cert);
        if (SSL_CTX_use_PrivateKey_file(ctx, f->key, SSL_FILETYPE_PEM) != 1)
                return fail(ret_error, "cannot load the server key", f->key);
        if (SSL_CTX_check_private_key(ctx) != 1)
                return fail(ret_error, "the server key does not match the certificate", f->key);

        if (f->client_ca) {
                r = setup_client_auth(ctx, f, ret_error);
                if (r < 0)
                        return r;
        }

        *ret = TAKE_PTR(ctx);
        return 0;
}

TlsClientVerdict tls_client_verdict(SSL *ssl, const char **ret_reason, char *subject, size_t size) {
        X509 *peer = SSL_get0_peer_certificate(ssl);
        long v;

        if (subject && size > 0) {
                subject[0] = 0;
                if (peer) {
                        BIO *b = BIO_new(BIO_s_mem());
                        char *p;
                        long n;
                        if (b && X509_NAME_print_ex(b, X509_get_subject_name(peer), 0, XN_FLAG_RFC2253) >= 0 &&
                            (n = BIO_get_mem_data(b, &p)) > 0)
                                (void)snprintf(subject, size, "%.*s", (int)n, p);
                        BIO_free(b);
                }
                if (!subject[0])
                        (void)snprintf(subject, size, "-");
        }
        if (!peer)
                return TLS_CLIENT_NONE;
        v = SSL_get_verify_result(ssl);
        if (v != X509_V_OK) {
                if (ret_reason)
                        *ret_reason = X509_verify_cert_error_string(v);
                return TLS_CLIENT_INVALID;
        }
        return TLS_CLIENT_OK;
}

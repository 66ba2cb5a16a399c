/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * The proxy's TLS contexts, one per public port, and the push port's client
 * certificate verdict. OpenSSL 3.0; nothing here logs.
 *
 * Both ports: TLS 1.2 and 1.3 only; for 1.2 the guide's cipher list
 * (ECDHE with AES-GCM or ChaCha20-Poly1305, nothing else), the server's
 * preference; groups X25519 and P-256; no renegotiation, no compression.
 * Each context has its own session cache and its own session ticket keys
 * (OpenSSL draws them at random per SSL_CTX), so a session from one port can
 * never be resumed on the other. The contexts are made in the parent before
 * the workers fork, so every worker of a generation shares the ticket keys
 * of its port and resumes tickets issued by the others; a reload (SIGHUP)
 * makes new contexts, i.e. new keys: every earlier session is void, which is
 * what a CRL update needs.
 *
 * The push port asks for a client certificate (SSL_VERIFY_PEER without
 * FAIL_IF_NO_PEER_CERT) and verifies it against the client CA with the CRL
 * (X509_V_FLAG_CRL_CHECK, depth 2 as in the guide), but lets the handshake
 * complete whatever the outcome: the proxy then answers the request with an
 * HTTP 400 that says what was wrong, like nginx does, instead of a TLS alert
 * that clients report as a cryptic handshake failure. tls_client_verdict()
 * is therefore asked on every connection, resumed ones included (the verify
 * result and peer certificate travel in the session).
 */

#include <openssl/ssl.h>
#include <stdbool.h>
#include <stddef.h>

/* The guide's ssl_ciphers, for TLS 1.2 (TLS 1.3 suites are all AEADs). */
#define TLS_CIPHERS                                                                                 \
        "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305:" \
        "ECDHE-RSA-CHACHA20-POLY1305:ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256"
#define TLS_GROUPS "X25519:P-256"

typedef struct TlsFiles {
        const char *cert;      /* server certificate chain, PEM */
        const char *key;       /* its private key, PEM */
        const char *client_ca; /* push only: client CA certificate, PEM */
        const char *crl;       /* push only: the client CA's CRL, PEM */
} TlsFiles;

/* Makes a server context; client_ca and crl non-NULL make it the push
 * port's. session_context names the port ("pull", "push") for
 * SSL_CTX_set_session_id_context(). On failure returns a negative errno and
 * *ret_error (allocated) says which file and what OpenSSL said. */
int tls_ctx_new(const TlsFiles *files, const char *session_context, SSL_CTX **ret, char **ret_error);

typedef enum TlsClientVerdict {
        TLS_CLIENT_OK,      /* a certificate, verified against the CA and CRL */
        TLS_CLIENT_NONE,    /* none was sent */
        TLS_CLIENT_INVALID, /* sent but not valid: expired, revoked, unknown CA ... */
} TlsClientVerdict;

/* The verdict on the peer's certificate of a completed handshake. For
 * TLS_CLIENT_INVALID *ret_reason is OpenSSL's text for the error
 * ("certificate revoked", "certificate has expired"); static. When subject
 * is non-NULL the certificate's subject (RFC 2253 form, "-" if none) is
 * written there, truncated to size. */
TlsClientVerdict tls_client_verdict(SSL *ssl, const char **ret_reason, char *subject, size_t size);

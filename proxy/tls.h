/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * The proxy's TLS contexts, one per public port, and the push port's client
 * certificate verdict. OpenSSL 3.0; nothing here logs.
 *
 * Both ports: TLS 1.2 and 1.3 only; for 1.2 the guide's cipher list
 * (ECDHE with AES-GCM or ChaCha20-Poly1305, nothing else), the server's
 * preference; groups X25519 and P-256; no renegotiation, no compression.
 * Each context has its own session cache and its own session ticket key
 * store (TlsTicketKeys below, one per port), so a session from one port can
 * never be resumed on the other. The stores are shared mappings made by the
 * parent before the workers fork: every worker of a port encrypts tickets
 * with the same current key and decrypts with the current or the previous
 * one, and the parent rotates them on a timer ([proxy] ticket_key_lifetime)
 * while the workers run sandboxed. A reload (SIGHUP) makes new contexts and
 * starts a new key epoch: every earlier session is void, which is what a
 * CRL update needs (a resumed session carries its old verify result).
 *
 * ALPN: http/1.1 only. A client that offers it gets it; one that offers
 * only other protocols (h2) gets no ALPN at all and speaks HTTP/1.1 or
 * fails, as RFC 7301 allows (the no_application_protocol alert would be
 * the other choice; Go and curl clients then fail where HTTP/1.1 without
 * ALPN works).
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
#include <stdint.h>

/* The guide's ssl_ciphers, for TLS 1.2 (TLS 1.3 suites are all AEADs). */
#define TLS_CIPHERS                                                                                 \
        "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305:" \
        "ECDHE-RSA-CHACHA20-POLY1305:ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256"
/* TLS 1.3's three suites (OpenSSL's default set), AES-128-GCM first: as
 * strong for this use, and on this AES-NI machine a pull costs the proxy
 * ~9% less CPU per GiB than with AES-256-GCM (docs/performance.md). With
 * SSL_OP_CIPHER_SERVER_PREFERENCE the server's order decides. */
#define TLS_CIPHERSUITES "TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256"
#define TLS_GROUPS "X25519:P-256"

/* The CRLs a context publishes (proxy/crl-route.c serves them). */
typedef enum TlsCrl {
        TLS_CRL_SERVER_CA,
        TLS_CRL_CLIENT_CA,
        _TLS_CRL_MAX,
} TlsCrl;

typedef struct TlsFiles {
        const char *cert;       /* server certificate chain, PEM */
        const char *key;        /* its private key, PEM */
        const char *client_ca;  /* client CA certificate, PEM */
        const char *crl;        /* the client CA's CRL, PEM */
        const char *server_ca;  /* server CA certificate, PEM */
        const char *server_crl; /* the server CA's CRL, PEM */
        bool client_auth;       /* push: verify client certificates with client_ca and crl */
} TlsFiles;

/* Makes a server context; client_auth makes it the push port's (it then
 * needs client_ca and crl). Each CA and CRL pair given (both non-NULL) is
 * loaded, the CRL checked to be that CA's (issuer name and signature: fail
 * closed; only a missing server_crl file is let be: nothing published), and
 * published: its DER stays with the context for
 * tls_ctx_crl(), so what is served is what is enforced. session_context
 * names the port ("pull", "push") for SSL_CTX_set_session_id_context(). On
 * failure returns a negative errno and *ret_error (allocated) says which
 * file and what OpenSSL said. */
int tls_ctx_new(const TlsFiles *files, const char *session_context, SSL_CTX **ret, char **ret_error);

/* The DER of the CRL `which` that ctx was made with: *ret_der (owned by
 * ctx, valid while it lives) and *ret_size. -ENOENT when ctx has none. */
int tls_ctx_crl(SSL_CTX *ctx, TlsCrl which, const unsigned char **ret_der, size_t *ret_size);

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

/* The peer certificate's common name into cn (size bytes with the NUL): the
 * client's name that push scopes are keyed by. 0 when the subject has
 * exactly one CN of visible ASCII that fits; otherwise -ENOENT (no
 * certificate, no CN, or more than one: ambiguous) or -EINVAL (other bytes,
 * too long), and cn is "". Only meaningful with TLS_CLIENT_OK. */
int tls_client_cn(SSL *ssl, char *cn, size_t size);

/* ------------------------------------------------------------------------
 * Session ticket keys
 *
 * A store holds the current and the previous ticket key of one port in a
 * MAP_SHARED page made before fork(). Only the parent writes (rotate, new
 * epoch; a sequence counter, odd while it writes, lets readers take a
 * consistent copy without locks); workers only read, from the ticket
 * callback, with no system call. Keys: AES-256-CBC + HMAC-SHA256, a random
 * 16-byte name, as OpenSSL's own tickets.
 *
 * A ticket is issued under the current key and accepted while its key is
 * current or previous: for at most two lifetimes (and never longer than the
 * session timeout). A ticket under the previous key is accepted and renewed
 * (a new ticket under the current key). The epoch binds keys to the SSL_CTX
 * generation: a context made for epoch E issues and accepts only keys of
 * epoch E, so a new epoch voids every earlier ticket at once, even for
 * workers of an older generation that are still draining.
 */

#define TLS_TICKET_KEY_NAME_SIZE 16

typedef struct TlsTicketKey {
        unsigned char name[TLS_TICKET_KEY_NAME_SIZE];
        unsigned char aes[32];  /* AES-256-CBC */
        unsigned char hmac[32]; /* HMAC-SHA256 */
        uint64_t epoch;         /* 0: no key in this slot */
} TlsTicketKey;

typedef struct TlsTicketKeys TlsTicketKeys;

typedef enum TlsTicketKeyMatch {
        TLS_TICKET_KEY_NONE,     /* unknown name, another epoch, or too old */
        TLS_TICKET_KEY_CURRENT,  /* decrypt */
        TLS_TICKET_KEY_PREVIOUS, /* decrypt and issue a fresh ticket */
} TlsTicketKeyMatch;

/* A store with one key, epoch 1, in a shared anonymous mapping (excluded
 * from core dumps); returns 0 or a negative errno. */
int tls_ticket_keys_new(TlsTicketKeys **ret);
/* Wipes and unmaps; NULL is fine. */
void tls_ticket_keys_free(TlsTicketKeys *k);

/* Parent only. A fresh current key; the current one becomes the previous
 * one, the previous one is gone. 0 or a negative errno (no randomness). */
int tls_ticket_keys_rotate(TlsTicketKeys *k);
/* Parent only. A new epoch with a fresh current key and no previous one;
 * returns the epoch (> 0) in *ret_epoch for tls_ctx_use_ticket_keys(). */
int tls_ticket_keys_new_epoch(TlsTicketKeys *k, uint64_t *ret_epoch);
/* Parent only, from its loop: rotates when lifetime_ms has passed since the
 * last rotation or new epoch (now_ms: CLOCK_MONOTONIC). Returns 1 when it
 * rotated, 0 when not due, a negative errno on failure. */
int tls_ticket_keys_tick(TlsTicketKeys *k, uint64_t now_ms, uint64_t lifetime_ms);

/* Readers (workers). The current key of epoch into *ret: 0, or -ESTALE
 * when the store has moved to another epoch, -EBUSY if no consistent copy
 * could be taken. */
int tls_ticket_keys_current(const TlsTicketKeys *k, uint64_t epoch, TlsTicketKey *ret);
/* Which key of epoch has this name; *ret (may be NULL) gets it when found. */
TlsTicketKeyMatch tls_ticket_keys_find(const TlsTicketKeys *k, uint64_t epoch,
                                       const unsigned char name[TLS_TICKET_KEY_NAME_SIZE], TlsTicketKey *ret);

/* Makes ctx issue and accept tickets with the keys of epoch in k (the
 * store must outlive ctx). 0 or -EINVAL. */
int tls_ctx_use_ticket_keys(SSL_CTX *ctx, TlsTicketKeys *k, uint64_t epoch);

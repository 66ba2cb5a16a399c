/* SPDX-License-Identifier: MIT */
/*
 * Tests for proxy/tls.c: the session ticket key store (rotation, the
 * previous key accepted, older ones and other epochs refused, readers in
 * another process), then real TLS 1.2 and 1.3 handshakes in memory between
 * the proxy's server context and an OpenSSL client: a TLS 1.2 ticket from
 * the previous key resumes (and is renewed), one from two rotations ago or
 * from before a new epoch falls back to a full handshake; TLS 1.3 issues
 * no tickets; and ALPN.
 */

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "crl-route.h"
#include "fileio.h"
#include "macro.h"
#include "pki.h"
#include "server-names.h"
#include "tls.h"
#include "tmpdir.h"

/* ------------------------------------------------------------------------
 * The key store
 */

static void current(TlsTicketKeys *k, uint64_t epoch, TlsTicketKey *ret) {
        assert_int_equal(tls_ticket_keys_current(k, epoch, ret), 0);
        assert_int_equal(ret->epoch, epoch);
}

static void test_store_rotation(void **state) {
        TlsTicketKeys *k;
        TlsTicketKey k1, k2, k3, got;
        uint64_t epoch;

        assert_int_equal(tls_ticket_keys_new(&k), 0);
        assert_int_equal(tls_ticket_keys_new_epoch(k, &epoch), 0);
        assert_true(epoch > 0);
        current(k, epoch, &k1);
        assert_int_equal(tls_ticket_keys_find(k, epoch, k1.name, &got), TLS_TICKET_KEY_CURRENT);
        assert_memory_equal(&got, &k1, sizeof(got));

        /* One rotation: a new current key, the old one still decrypts. */
        assert_int_equal(tls_ticket_keys_rotate(k), 0);
        current(k, epoch, &k2);
        assert_memory_not_equal(k2.name, k1.name, sizeof(k1.name));
        assert_memory_not_equal(k2.aes, k1.aes, sizeof(k1.aes));
        assert_memory_not_equal(k2.hmac, k1.hmac, sizeof(k1.hmac));
        assert_int_equal(tls_ticket_keys_find(k, epoch, k2.name, NULL), TLS_TICKET_KEY_CURRENT);
        assert_int_equal(tls_ticket_keys_find(k, epoch, k1.name, &got), TLS_TICKET_KEY_PREVIOUS);
        assert_memory_equal(&got, &k1, sizeof(got));

        /* Two rotations: k1 is gone. */
        assert_int_equal(tls_ticket_keys_rotate(k), 0);
        current(k, epoch, &k3);
        assert_int_equal(tls_ticket_keys_find(k, epoch, k3.name, NULL), TLS_TICKET_KEY_CURRENT);
        assert_int_equal(tls_ticket_keys_find(k, epoch, k2.name, NULL), TLS_TICKET_KEY_PREVIOUS);
        assert_int_equal(tls_ticket_keys_find(k, epoch, k1.name, NULL), TLS_TICKET_KEY_NONE);

        /* Unknown names and an all-zero name (a cleared slot) never match. */
        unsigned char zero[TLS_TICKET_KEY_NAME_SIZE] = {};
        assert_int_equal(tls_ticket_keys_find(k, epoch, zero, NULL), TLS_TICKET_KEY_NONE);
        tls_ticket_keys_free(k);
}

static void test_store_epoch(void **state) {
        TlsTicketKeys *k;
        TlsTicketKey a, b, c;
        uint64_t e1, e2;
        unsigned char zero[TLS_TICKET_KEY_NAME_SIZE] = {};

        assert_int_equal(tls_ticket_keys_new(&k), 0);
        assert_int_equal(tls_ticket_keys_new_epoch(k, &e1), 0);
        current(k, e1, &a);
        assert_int_equal(tls_ticket_keys_rotate(k), 0);
        current(k, e1, &b);

        /* A new epoch voids both keys at once, and readers of the old
         * epoch get nothing to encrypt with. */
        assert_int_equal(tls_ticket_keys_new_epoch(k, &e2), 0);
        assert_true(e2 > e1);
        current(k, e2, &c);
        assert_int_equal(tls_ticket_keys_find(k, e2, a.name, NULL), TLS_TICKET_KEY_NONE);
        assert_int_equal(tls_ticket_keys_find(k, e2, b.name, NULL), TLS_TICKET_KEY_NONE);
        assert_int_equal(tls_ticket_keys_find(k, e1, b.name, NULL), TLS_TICKET_KEY_NONE);
        assert_int_equal(tls_ticket_keys_find(k, e1, c.name, NULL), TLS_TICKET_KEY_NONE);
        assert_int_equal(tls_ticket_keys_find(k, e2, c.name, NULL), TLS_TICKET_KEY_CURRENT);
        assert_int_equal(tls_ticket_keys_current(k, e1, &a), -ESTALE);
        /* No previous key in a new epoch: the cleared slot matches nothing. */
        assert_int_equal(tls_ticket_keys_find(k, e2, zero, NULL), TLS_TICKET_KEY_NONE);
        tls_ticket_keys_free(k);
}

static void test_store_tick(void **state) {
        TlsTicketKeys *k;
        TlsTicketKey a, b;
        uint64_t epoch;

        assert_int_equal(tls_ticket_keys_new(&k), 0);
        assert_int_equal(tls_ticket_keys_new_epoch(k, &epoch), 0);
        current(k, epoch, &a);
        assert_int_equal(tls_ticket_keys_tick(k, 10000, 3000), 0); /* starts the clock */
        assert_int_equal(tls_ticket_keys_tick(k, 12999, 3000), 0);
        current(k, epoch, &b);
        assert_memory_equal(a.name, b.name, sizeof(a.name));
        assert_int_equal(tls_ticket_keys_tick(k, 13000, 3000), 1);
        current(k, epoch, &b);
        assert_memory_not_equal(a.name, b.name, sizeof(a.name));
        assert_int_equal(tls_ticket_keys_tick(k, 15999, 3000), 0);
        assert_int_equal(tls_ticket_keys_tick(k, 16000, 3000), 1);
        assert_int_equal(tls_ticket_keys_find(k, epoch, a.name, NULL), TLS_TICKET_KEY_NONE);
        /* A new epoch restarts the clock. */
        assert_int_equal(tls_ticket_keys_new_epoch(k, &epoch), 0);
        assert_int_equal(tls_ticket_keys_tick(k, 50000, 3000), 0);
        assert_int_equal(tls_ticket_keys_tick(k, 52000, 3000), 0);
        assert_int_equal(tls_ticket_keys_tick(k, 53000, 3000), 1);
        tls_ticket_keys_free(k);
}

/* The parent rotates, a forked reader sees it: the mapping is shared. */
static void test_store_shared(void **state) {
        TlsTicketKeys *k;
        TlsTicketKey a, b;
        uint64_t epoch;
        int pipefd[2], status;
        pid_t pid;
        char ch;

        assert_int_equal(tls_ticket_keys_new(&k), 0);
        assert_int_equal(tls_ticket_keys_new_epoch(k, &epoch), 0);
        current(k, epoch, &a);
        assert_int_equal(pipe(pipefd), 0);
        pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
                TlsTicketKey c;
                close(pipefd[1]);
                if (read(pipefd[0], &ch, 1) != 1)
                        _exit(2);
                if (tls_ticket_keys_current(k, epoch, &c) < 0 || memcmp(c.name, a.name, sizeof(a.name)) == 0 ||
                    tls_ticket_keys_find(k, epoch, a.name, NULL) != TLS_TICKET_KEY_PREVIOUS)
                        _exit(1);
                _exit(0);
        }
        close(pipefd[0]);
        assert_int_equal(tls_ticket_keys_rotate(k), 0);
        current(k, epoch, &b);
        assert_int_equal(write(pipefd[1], "x", 1), 1);
        close(pipefd[1]);
        assert_int_equal(waitpid(pid, &status, 0), pid);
        assert_true(WIFEXITED(status));
        assert_int_equal(WEXITSTATUS(status), 0);
        tls_ticket_keys_free(k);
}

/* ------------------------------------------------------------------------
 * Real handshakes, in memory
 */

static char tmpdir[TMPDIR_PATH_MAX];
static char cert_path[TMPDIR_PATH_MAX + 16], key_path[TMPDIR_PATH_MAX + 16];

static int group_setup(void **state) {
        static const ServerName names[] = {SN_DNS("localhost")};
        EVP_PKEY *ca_key = NULL, *key = NULL;
        X509 *ca = NULL, *cert = NULL;
        char *pem = NULL;
        size_t size;

        if (tmpdir_make(tmpdir, sizeof tmpdir, "test-tls") < 0)
                return -1;
        (void)snprintf(cert_path, sizeof(cert_path), "%s/server.crt", tmpdir);
        (void)snprintf(key_path, sizeof(key_path), "%s/server.key", tmpdir);
        if (pki_generate_key(KEY_EC_P256, &ca_key) < 0 || pki_make_ca(ca_key, "test", "test CA", 2, &ca) < 0 ||
            pki_generate_key(KEY_EC_P256, &key) < 0 ||
            pki_issue_server(ca, ca_key, key, "test", names, 1, 2, NULL, &cert) < 0)
                return -1;
        if (pki_cert_to_pem(cert, &pem, &size) < 0 || write_file_atomic(cert_path, pem, size, 0644, getuid(), getgid()) < 0)
                return -1;
        free(pem);
        if (pki_key_to_pem(key, &pem, &size) < 0 || write_file_atomic(key_path, pem, size, 0600, getuid(), getgid()) < 0)
                return -1;
        free(pem);
        X509_free(cert);
        X509_free(ca);
        EVP_PKEY_free(key);
        EVP_PKEY_free(ca_key);
        return 0;
}

static int group_teardown(void **state) {
        /* The CAs and CRLs write_ca_crl() left there too. */
        return tmpdir_remove(tmpdir);
}

typedef struct Pair {
        SSL *client, *server;
} Pair;

/* Drives both ends over a BIO pair until both handshakes are done, then
 * sends a byte each way so that TLS 1.3's NewSessionTicket reaches the
 * client. */
static void handshake(SSL_CTX *sctx, SSL_CTX *cctx, SSL_SESSION *resume, const unsigned char *alpn,
                      unsigned alpn_len, Pair *ret) {
        BIO *cb, *sb;
        Pair p;
        char buf[8];

        assert_int_equal(BIO_new_bio_pair(&cb, 0, &sb, 0), 1);
        p.client = SSL_new(cctx);
        p.server = SSL_new(sctx);
        assert_non_null(p.client);
        assert_non_null(p.server);
        SSL_set_bio(p.client, cb, cb);
        SSL_set_bio(p.server, sb, sb);
        SSL_set_connect_state(p.client);
        SSL_set_accept_state(p.server);
        if (resume)
                assert_int_equal(SSL_set_session(p.client, resume), 1);
        if (alpn)
                assert_int_equal(SSL_set_alpn_protos(p.client, alpn, alpn_len), 0);

        for (unsigned i = 0; i < 100 && !(SSL_is_init_finished(p.client) && SSL_is_init_finished(p.server)); i++) {
                int rc = SSL_do_handshake(p.client), rs = SSL_do_handshake(p.server);
                if (rc <= 0 && SSL_get_error(p.client, rc) != SSL_ERROR_WANT_READ) {
                        ERR_print_errors_fp(stderr);
                        fail_msg("client handshake failed");
                }
                if (rs <= 0 && SSL_get_error(p.server, rs) != SSL_ERROR_WANT_READ) {
                        ERR_print_errors_fp(stderr);
                        fail_msg("server handshake failed");
                }
        }
        assert_true(SSL_is_init_finished(p.client) && SSL_is_init_finished(p.server));
        assert_int_equal(SSL_write(p.server, "s", 1), 1);
        assert_int_equal(SSL_read(p.client, buf, sizeof(buf)), 1);
        assert_int_equal(SSL_write(p.client, "c", 1), 1);
        assert_int_equal(SSL_read(p.server, buf, sizeof(buf)), 1);
        *ret = p;
}

/* As after a close_notify each way: SSL_free() of a connection that was
 * not shut down marks its session not resumable (a "bad session"). */
static void pair_free(Pair *p) {
        SSL_set_shutdown(p->client, SSL_SENT_SHUTDOWN | SSL_RECEIVED_SHUTDOWN);
        SSL_set_shutdown(p->server, SSL_SENT_SHUTDOWN | SSL_RECEIVED_SHUTDOWN);
        SSL_free(p->client);
        SSL_free(p->server);
}

static bool connect_ticket(SSL_CTX *sctx, SSL_CTX *cctx, SSL_SESSION **session, bool want_ticket) {
        Pair p;
        bool reused;

        handshake(sctx, cctx, *session, NULL, 0, &p);
        reused = SSL_session_reused(p.client);
        assert_int_equal(reused, SSL_session_reused(p.server) != 0);
        SSL_SESSION_free(*session);
        *session = SSL_get1_session(p.client);
        assert_non_null(*session);
        assert_int_equal(SSL_SESSION_has_ticket(*session), want_ticket);
        pair_free(&p);
        return reused;
}

/* Connects, resuming from *session if non-NULL; returns whether it
 * resumed, and the client's newest session in *session (replaced), which
 * has a ticket unless the server gave none (another epoch). */
static bool connect_once(SSL_CTX *sctx, SSL_CTX *cctx, SSL_SESSION **session) {
        return connect_ticket(sctx, cctx, session, true);
}

static SSL_CTX *client_ctx(int version) {
        SSL_CTX *c = SSL_CTX_new(TLS_client_method());
        assert_non_null(c);
        assert_int_equal(SSL_CTX_set_min_proto_version(c, version), 1);
        assert_int_equal(SSL_CTX_set_max_proto_version(c, version), 1);
        SSL_CTX_set_verify(c, SSL_VERIFY_NONE, NULL);
        return c;
}

static SSL_CTX *server_ctx(TlsTicketKeys *k, uint64_t epoch) {
        TlsFiles f = {.cert = cert_path, .key = key_path};
        SSL_CTX *s = NULL;
        char *error = NULL;

        assert_int_equal(tls_ctx_new(&f, "pull", &s, &error), 0);
        assert_null(error);
        assert_int_equal(tls_ctx_use_ticket_keys(s, k, epoch), 0);
        /* The proxy's own session cache stays on: with a ticket in the
         * ClientHello OpenSSL never falls back to it, which the "two
         * rotations ago" case below checks too. */
        return s;
}

static void resumption(int version) {
        TlsTicketKeys *k;
        SSL_CTX *sctx, *cctx = client_ctx(version);
        SSL_SESSION *fresh = NULL, *renewed, *old;
        uint64_t epoch;

        assert_int_equal(tls_ticket_keys_new(&k), 0);
        assert_int_equal(tls_ticket_keys_new_epoch(k, &epoch), 0);
        sctx = server_ctx(k, epoch);

        /* A full handshake gives a ticket under key 1; it resumes. */
        assert_false(connect_once(sctx, cctx, &fresh));
        old = fresh;
        assert_int_equal(SSL_SESSION_up_ref(old), 1);
        assert_true(connect_once(sctx, cctx, &fresh));

        /* Key 1 is now the previous key: its ticket still resumes, and the
         * client gets a new one under key 2. */
        assert_int_equal(tls_ticket_keys_rotate(k), 0);
        renewed = old;
        assert_int_equal(SSL_SESSION_up_ref(renewed), 1);
        assert_true(connect_once(sctx, cctx, &renewed));

        /* Two rotations after key 1: its ticket is refused, the handshake
         * is a full one (not an error); the renewed ticket (key 2, now
         * previous) still resumes. */
        assert_int_equal(tls_ticket_keys_rotate(k), 0);
        assert_false(connect_once(sctx, cctx, &old));
        assert_true(connect_once(sctx, cctx, &renewed));

        /* A new epoch (a reload) voids every ticket, and a context of the
         * old epoch (a draining worker) neither accepts nor issues any. */
        SSL_CTX *sctx2;
        uint64_t epoch2;
        assert_int_equal(tls_ticket_keys_new_epoch(k, &epoch2), 0);
        sctx2 = server_ctx(k, epoch2);
        assert_false(connect_once(sctx2, cctx, &renewed));
        assert_true(connect_once(sctx2, cctx, &renewed));
        assert_false(connect_ticket(sctx, cctx, &renewed, false));

        SSL_SESSION_free(fresh);
        SSL_SESSION_free(renewed);
        SSL_SESSION_free(old);
        SSL_CTX_free(sctx);
        SSL_CTX_free(sctx2);
        SSL_CTX_free(cctx);
        tls_ticket_keys_free(k);
}

static void test_resumption_tls12(void **state) {
        resumption(TLS1_2_VERSION);
}

static int tickets_seen;
static int count_ticket(SSL *ssl, SSL_SESSION *session) {
        (void)ssl;
        (void)session;
        tickets_seen++;
        return 0; /* not kept: the caller did not take a reference */
}

/* TLS 1.3: a full handshake issues no ticket, not OpenSSL's default two
 * (tls.c: registry clients keep no session cache), so nothing resumes;
 * TLS 1.2 still gets its ticket. */
static void test_no_ticket_tls13(void **state) {
        TlsTicketKeys *k;
        SSL_CTX *sctx, *cctx = client_ctx(TLS1_3_VERSION), *cctx12 = client_ctx(TLS1_2_VERSION);
        SSL_SESSION *session = NULL;
        uint64_t epoch;

        assert_int_equal(tls_ticket_keys_new(&k), 0);
        assert_int_equal(tls_ticket_keys_new_epoch(k, &epoch), 0);
        sctx = server_ctx(k, epoch);
        SSL_CTX_set_session_cache_mode(cctx, SSL_SESS_CACHE_CLIENT | SSL_SESS_CACHE_NO_INTERNAL_STORE);
        SSL_CTX_sess_set_new_cb(cctx, count_ticket);
        tickets_seen = 0;
        assert_false(connect_ticket(sctx, cctx, &session, false));
        assert_int_equal(tickets_seen, 0);
        assert_false(connect_ticket(sctx, cctx, &session, false));
        assert_int_equal(tickets_seen, 0);
        SSL_SESSION_free(session);
        session = NULL;
        assert_false(connect_ticket(sctx, cctx12, &session, true));
        assert_true(connect_ticket(sctx, cctx12, &session, true));
        SSL_SESSION_free(session);
        SSL_CTX_free(sctx);
        SSL_CTX_free(cctx);
        SSL_CTX_free(cctx12);
        tls_ticket_keys_free(k);
}

/* The ALPN the client sees for its offer ("" for none). */
static void alpn_case(const char *offer, size_t offer_len, const char *want) {
        TlsTicketKeys *k;
        SSL_CTX *sctx, *cctx = client_ctx(TLS1_3_VERSION);
        const unsigned char *got;
        unsigned got_len;
        uint64_t epoch;
        Pair p;

        assert_int_equal(tls_ticket_keys_new(&k), 0);
        assert_int_equal(tls_ticket_keys_new_epoch(k, &epoch), 0);
        sctx = server_ctx(k, epoch);
        handshake(sctx, cctx, NULL, (const unsigned char *)offer, (unsigned)offer_len, &p);
        SSL_get0_alpn_selected(p.client, &got, &got_len);
        assert_int_equal(got_len, strlen(want));
        if (got_len)
                assert_memory_equal(got, want, got_len);
        pair_free(&p);
        SSL_CTX_free(sctx);
        SSL_CTX_free(cctx);
        tls_ticket_keys_free(k);
}

static void test_alpn(void **state) {
        alpn_case("\x02h2\x08http/1.1", 12, "http/1.1");
        alpn_case("\x08http/1.1\x02h2", 12, "http/1.1");
        alpn_case("\x02h2", 3, "");
        alpn_case("\x08http/1.0\x02h3", 12, "");
        alpn_case(NULL, 0, "");
}

/* ------------------------------------------------------------------------
 * Published CRLs (tls_ctx_crl(), crl-route.c)
 */

/* A CA and its CRL (revoking `revoke` when non-zero) written below tmpdir
 * as NAME-ca.crt and NAME.crl; the CRL's DER in *ret_der. */
static void write_ca_crl(const char *name, long revoke, unsigned char **ret_der, int *ret_len) {
        EVP_PKEY *key = NULL;
        X509 *ca = NULL;
        X509_CRL *crl = NULL;
        ASN1_INTEGER *serial = NULL;
        char path[TMPDIR_PATH_MAX + 64], cn[64], *pem = NULL;
        size_t size;

        (void)snprintf(cn, sizeof(cn), "%s CA", name);
        assert_int_equal(pki_generate_key(KEY_EC_P256, &key), 0);
        assert_int_equal(pki_make_ca(key, "test", cn, 2, &ca), 0);
        if (revoke) {
                serial = ASN1_INTEGER_new();
                assert_non_null(serial);
                assert_int_equal(ASN1_INTEGER_set(serial, revoke), 1);
        }
        assert_int_equal(pki_make_crl(ca, key, NULL, serial, 1, 2, &crl), 0);
        (void)snprintf(path, sizeof(path), "%s/%s-ca.crt", tmpdir, name);
        assert_int_equal(pki_cert_to_pem(ca, &pem, &size), 0);
        assert_int_equal(write_file_atomic(path, pem, size, 0644, getuid(), getgid()), 0);
        free(pem);
        (void)snprintf(path, sizeof(path), "%s/%s.crl", tmpdir, name);
        assert_int_equal(pki_crl_to_pem(crl, &pem, &size), 0);
        assert_int_equal(write_file_atomic(path, pem, size, 0644, getuid(), getgid()), 0);
        free(pem);
        *ret_der = NULL;
        *ret_len = i2d_X509_CRL(crl, ret_der);
        assert_true(*ret_len > 0);
        ASN1_INTEGER_free(serial);
        X509_CRL_free(crl);
        X509_free(ca);
        EVP_PKEY_free(key);
}

/* ctx publishes WANT (WANT_LEN bytes of DER) as the CRL of WHICH. */
static void assert_crl(SSL_CTX *ctx, TlsCrl which, const unsigned char *want, int want_len) {
        const unsigned char *der;
        size_t size;

        assert_int_equal(tls_ctx_crl(ctx, which, &der, &size), 0);
        assert_int_equal(size, want_len);
        assert_memory_equal(der, want, size);
}

/* crl_route_respond() for D answers: its head, as a string, in HEAD (of
 * HEAD_SIZE bytes), its body in *ret_body. */
static void assert_crl_answer(SSL_CTX *ctx, RouteDecision d, bool close, char *head, size_t head_size,
                              const unsigned char **ret_body, size_t *ret_body_len) {
        int n = crl_route_respond(ctx, d, close, head, head_size, ret_body, ret_body_len);

        assert_true(n > 0 && (size_t)n < head_size);
        head[n] = 0;
}

/* Both CAs' CRLs are published as the DER of what was loaded, the
 * route's answer is that DER as application/pkix-crl, a CRL of another CA
 * fails the context, and a context without them publishes nothing. */
static void test_published_crls(void **state) {
        char server_ca[TMPDIR_PATH_MAX + 16], server_crl[TMPDIR_PATH_MAX + 16], client_ca[TMPDIR_PATH_MAX + 16],
                client_crl[TMPDIR_PATH_MAX + 16], head[512], *error = NULL;
        unsigned char *server_der, *client_der;
        int server_len, client_len;
        const unsigned char *der, *body;
        size_t size, body_len;
        SSL_CTX *ctx = NULL;

        (void)state;
        write_ca_crl("server", 0, &server_der, &server_len);
        write_ca_crl("client", 4242, &client_der, &client_len);
        (void)snprintf(server_ca, sizeof(server_ca), "%s/server-ca.crt", tmpdir);
        (void)snprintf(server_crl, sizeof(server_crl), "%s/server.crl", tmpdir);
        (void)snprintf(client_ca, sizeof(client_ca), "%s/client-ca.crt", tmpdir);
        (void)snprintf(client_crl, sizeof(client_crl), "%s/client.crl", tmpdir);
        TlsFiles f = {.cert = cert_path,
                      .key = key_path,
                      .client_ca = client_ca,
                      .crl = client_crl,
                      .server_ca = server_ca,
                      .server_crl = server_crl,
                      .client_auth = true};

        assert_int_equal(tls_ctx_new(&f, "push", &ctx, &error), 0);
        assert_crl(ctx, TLS_CRL_SERVER_CA, server_der, server_len);
        assert_crl(ctx, TLS_CRL_CLIENT_CA, client_der, client_len);

        assert_crl_answer(ctx, ROUTE_LOCAL_CLIENT_CRL, false, head, sizeof(head), &body, &body_len);
        assert_non_null(strstr(head, "HTTP/1.1 200 OK\r\n"));
        assert_non_null(strstr(head, "\r\nContent-Type: application/pkix-crl\r\n"));
        char length[64];
        (void)snprintf(length, sizeof(length), "\r\nContent-Length: %d\r\n", client_len);
        assert_non_null(strstr(head, length));
        assert_null(strstr(head, "Connection: close"));
        assert_int_equal(body_len, client_len);
        assert_memory_equal(body, client_der, body_len);
        assert_crl_answer(ctx, ROUTE_LOCAL_SERVER_CRL, true, head, sizeof(head), &body, &body_len);
        assert_non_null(strstr(head, "\r\nConnection: close\r\n\r\n"));
        assert_memory_equal(body, server_der, body_len);
        assert_int_equal(crl_route_respond(ctx, ROUTE_LOCAL_SERVER_CRL, true, head, 40, &body, &body_len), -ENOBUFS);
        assert_int_equal(crl_route_respond(ctx, ROUTE_ALLOW, true, head, sizeof(head), &body, &body_len), -EINVAL);
        SSL_CTX_free(ctx);
        ctx = NULL;

        /* No server CA CRL yet (a host not provisioned again): started,
         * nothing published for it; the client CA's is still required. */
        f.server_crl = "/nonexistent/crl.pem";
        assert_int_equal(tls_ctx_new(&f, "push", &ctx, &error), 0);
        assert_int_equal(tls_ctx_crl(ctx, TLS_CRL_SERVER_CA, &der, &size), -ENOENT);
        assert_int_equal(tls_ctx_crl(ctx, TLS_CRL_CLIENT_CA, &der, &size), 0);
        SSL_CTX_free(ctx);
        ctx = NULL;
        f.server_crl = server_crl;
        f.crl = "/nonexistent/crl.pem";
        assert_true(tls_ctx_new(&f, "push", &ctx, &error) < 0);
        assert_non_null(strstr(error, "cannot load the client CRL"));
        free(error);
        error = NULL;
        f.crl = client_crl;

        /* The client CA's CRL where the server CA's should be: refused. */
        f.server_crl = client_crl;
        assert_true(tls_ctx_new(&f, "push", &ctx, &error) < 0);
        assert_non_null(strstr(error, "not issued by the server CA"));
        free(error);
        error = NULL;
        assert_null(ctx);

        /* Nothing given, nothing published. */
        TlsFiles plain = {.cert = cert_path, .key = key_path};
        assert_int_equal(tls_ctx_new(&plain, "pull", &ctx, &error), 0);
        assert_int_equal(tls_ctx_crl(ctx, TLS_CRL_CLIENT_CA, &der, &size), -ENOENT);
        assert_int_equal(crl_route_respond(ctx, ROUTE_LOCAL_CLIENT_CRL, false, head, sizeof(head), &body, &body_len),
                         -ENOENT);
        SSL_CTX_free(ctx);

        OPENSSL_free(server_der);
        OPENSSL_free(client_der);
        const char *files[] = {server_ca, server_crl, client_ca, client_crl};
        for (size_t i = 0; i < ELEMENTSOF(files); i++)
                (void)unlink(files[i]);
}

/* tls_ctx_new(&f) fails, its message naming what and "not a regular file". */
static void assert_refused(const TlsFiles *f, const char *what) {
        SSL_CTX *ctx = NULL;
        char *error = NULL;

        assert_int_equal(tls_ctx_new(f, "push", &ctx, &error), -EBADFD);
        assert_null(ctx);
        assert_non_null(error);
        if (!strstr(error, what) || !strstr(error, "not a regular file"))
                fail_msg("want '%s ...: not a regular file', got '%s'", what, error);
        free(error);
}

/* A FIFO planted at any file the context reads is refused at once, never
 * waited on (OpenSSL's file loaders fopen() it and would block a reload of
 * the proxy's parent for good: alarm() ends the test then); a symlink to a
 * certificate or key still loads (certbot's live/ links), and a chain file
 * gives the leaf and its intermediates. */
static void test_files_never_block(void **state) {
        char fifo[TMPDIR_PATH_MAX + 16], cert_link[TMPDIR_PATH_MAX + 16], key_link[TMPDIR_PATH_MAX + 16],
                chain[TMPDIR_PATH_MAX + 16], client_ca[TMPDIR_PATH_MAX + 16], client_crl[TMPDIR_PATH_MAX + 16],
                *leaf = NULL, *error = NULL, *both = NULL;
        unsigned char *der;
        int der_len;
        size_t size;
        SSL_CTX *ctx = NULL;
        STACK_OF(X509) *extra = NULL;

        (void)state;
        write_ca_crl("fc", 0, &der, &der_len);
        OPENSSL_free(der);
        (void)snprintf(client_ca, sizeof(client_ca), "%s/fc-ca.crt", tmpdir);
        (void)snprintf(client_crl, sizeof(client_crl), "%s/fc.crl", tmpdir);
        (void)snprintf(fifo, sizeof(fifo), "%s/planted.pem", tmpdir);
        assert_int_equal(mkfifo(fifo, 0644), 0);
        TlsFiles good = {.cert = cert_path, .key = key_path, .client_ca = client_ca, .crl = client_crl,
                         .client_auth = true};
        TlsFiles f;

        alarm(30);
        f = good, f.crl = fifo;
        assert_refused(&f, "cannot load the client CRL");
        f = good, f.client_ca = fifo;
        assert_refused(&f, "cannot load the client CA");
        f = good, f.server_ca = client_ca, f.server_crl = fifo;
        assert_refused(&f, "cannot load the server CRL");
        f = good, f.cert = fifo;
        assert_refused(&f, "cannot load the server certificate");
        f = good, f.key = fifo;
        assert_refused(&f, "cannot load the server key");
        alarm(0);

        /* Symlinks to the certificate and key: followed. */
        (void)snprintf(cert_link, sizeof(cert_link), "%s/live-cert.pem", tmpdir);
        (void)snprintf(key_link, sizeof(key_link), "%s/live-key.pem", tmpdir);
        assert_int_equal(symlink(cert_path, cert_link), 0);
        assert_int_equal(symlink(key_path, key_link), 0);
        f = good, f.cert = cert_link, f.key = key_link;
        assert_int_equal(tls_ctx_new(&f, "push", &ctx, &error), 0);
        assert_null(error);
        assert_int_equal(SSL_CTX_get0_chain_certs(ctx, &extra), 1);
        assert_int_equal(extra ? sk_X509_num(extra) : 0, 0);
        SSL_CTX_free(ctx);
        ctx = NULL;

        /* A chain: the leaf, then (here) the client CA as an intermediate. */
        assert_int_equal(read_file(cert_path, 1 << 20, &leaf, &size), 0);
        _cleanup_free_ char *ca_pem = NULL;
        assert_int_equal(read_file(client_ca, 1 << 20, &ca_pem, NULL), 0);
        assert_true(asprintf(&both, "%s%s", leaf, ca_pem) > 0);
        (void)snprintf(chain, sizeof(chain), "%s/chain.pem", tmpdir);
        assert_int_equal(write_file_atomic(chain, both, strlen(both), 0644, getuid(), getgid()), 0);
        f = good, f.cert = chain;
        assert_int_equal(tls_ctx_new(&f, "push", &ctx, &error), 0);
        assert_int_equal(SSL_CTX_get0_chain_certs(ctx, &extra), 1);
        assert_int_equal(sk_X509_num(extra), 1);
        SSL_CTX_free(ctx);
        ctx = NULL;

        /* A key that is not the certificate's: refused as before. */
        f = good, f.key = client_ca;
        assert_true(tls_ctx_new(&f, "push", &ctx, &error) < 0);
        assert_non_null(strstr(error, "cannot load the server key"));
        free(error);

        free(leaf);
        free(both);
        const char *files[] = {fifo, cert_link, key_link, chain, client_ca, client_crl};
        for (size_t i = 0; i < ELEMENTSOF(files); i++)
                (void)unlink(files[i]);
}

int main(void) {
        const struct CMUnitTest store[] = {
                cmocka_unit_test(test_store_rotation),
                cmocka_unit_test(test_store_epoch),
                cmocka_unit_test(test_store_tick),
                cmocka_unit_test(test_store_shared),
        };
        const struct CMUnitTest tls[] = {
                cmocka_unit_test(test_resumption_tls12),
                cmocka_unit_test(test_no_ticket_tls13),
                cmocka_unit_test(test_alpn),
                cmocka_unit_test(test_published_crls),
                cmocka_unit_test(test_files_never_block),
        };
        int r = cmocka_run_group_tests_name("ticket key store", store, NULL, NULL);
        return r | cmocka_run_group_tests_name("real TLS", tls, group_setup, group_teardown);
}

/* SPDX-License-Identifier: MIT */
/*
 * TLS server contexts and client certificate verdicts; see tls.h.
 */

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509_vfy.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "fileio.h"
#include "macro.h"
#include "openssl-util.h"
#include "tls.h"

/* ssl_session_cache shared:SSL:10m holds about 40000 sessions; ours is per
 * worker (tickets, which every worker shares, are what clients use). */
#define TLS_SESSION_CACHE_SIZE 20480
#define TLS_SESSION_TIMEOUT 600 /* ssl_session_timeout 10m */

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

/* The largest certificate, chain, key or CRL file read: a CRL of some
 * 100000 revocations fits. */
#define TLS_FILE_MAX (16U * 1024U * 1024U)

/* A file read whole into memory, and a read-only BIO over it: OpenSSL's
 * file loaders fopen() the path, and a FIFO planted there would hang the
 * proxy's parent (a reload) for good. read_file_at() refuses anything but a
 * regular file before reading; a symlink is followed (operators point at
 * certbot's live/ links). A key's buffer is wiped when freed. */
typedef struct PemFile {
        char *data;
        size_t size;
        bool secret;
        BIO *bio;
} PemFile;

static void pem_file_done(PemFile *f) {
        BIO_free(f->bio);
        if (f->data && f->secret)
                OPENSSL_cleanse(f->data, f->size);
        free(f->data);
        *f = (PemFile){};
}

/* "what file: why"; returns r. */
static int fail_errno(char **ret_error, const char *what, const char *file, int r) {
        const char *why = r == -EBADFD ? "not a regular file" : strerror(-r);

        if (ret_error && asprintf(ret_error, "%s %s: %s", what, file, why) < 0)
                *ret_error = NULL;
        return r;
}

static int pem_file_read(const char *path, bool secret, const char *what, PemFile *ret, char **ret_error) {
        PemFile f = {.secret = secret};
        int r;

        r = read_file_at(AT_FDCWD, path, 0, TLS_FILE_MAX, &f.data, &f.size);
        if (r < 0)
                return fail_errno(ret_error, what, path, r);
        f.bio = BIO_new_mem_buf(f.data, (int) f.size);
        if (!f.bio) {
                pem_file_done(&f);
                return fail(ret_error, what, path);
        }
        *ret = f;
        return 0;
}

/* A CA certificate and its CRL, the CRL checked to be that CA's. Fail
 * closed: a CRL that is not the client CA's would not be found for its
 * certificates (OpenSSL looks CRLs up by issuer name), and with
 * X509_V_FLAG_CRL_CHECK every push would be refused for "unable to get
 * certificate CRL"; a foreign CRL published at a certificate's
 * distribution point would not verify for anyone. Say so at start and
 * reload instead, where the parent keeps the workers it has. */
static int load_ca_crl(const char *ca_path, const char *crl_path, const char *whose, X509 **ret_ca,
                       X509_CRL **ret_crl, char **ret_error) {
        _cleanup_(pem_file_done) PemFile ca_file = {}, crl_file = {};
        _cleanup_(X509_freep) X509 *ca = NULL;
        _cleanup_(X509_CRL_freep) X509_CRL *crl = NULL;
        char what[96];
        int r;

        (void)snprintf(what, sizeof(what), "cannot load the %s CA", whose);
        r = pem_file_read(ca_path, false, what, &ca_file, ret_error);
        if (r < 0)
                return r;
        if (!(ca = PEM_read_bio_X509(ca_file.bio, NULL, NULL, NULL)))
                return fail(ret_error, what, ca_path);
        (void)snprintf(what, sizeof(what), "cannot load the %s CRL", whose);
        r = pem_file_read(crl_path, false, what, &crl_file, ret_error);
        if (r < 0)
                return r;
        if (!(crl = PEM_read_bio_X509_CRL(crl_file.bio, NULL, NULL, NULL)))
                return fail(ret_error, what, crl_path);
        (void)snprintf(what, sizeof(what), "the CRL is not issued by the %s CA (issuer name differs)", whose);
        if (X509_NAME_cmp(X509_CRL_get_issuer(crl), X509_get_subject_name(ca)) != 0)
                return fail(ret_error, what, crl_path);
        (void)snprintf(what, sizeof(what), "the CRL is not signed by the %s CA", whose);
        if (X509_CRL_verify(crl, X509_get0_pubkey(ca)) != 1)
                return fail(ret_error, what, crl_path);

        *ret_ca = TAKE_PTR(ca);
        *ret_crl = TAKE_PTR(crl);
        return 0;
}

/* The server certificate chain (the leaf first, then its intermediates)
 * and its key, as SSL_CTX_use_certificate_chain_file() and
 * SSL_CTX_use_PrivateKey_file() would load them, read through
 * pem_file_read(). */
static int ctx_load_cert_key(SSL_CTX *ctx, const TlsFiles *f, char **ret_error) {
        _cleanup_(pem_file_done) PemFile chain = {}, key_file = {};
        _cleanup_(X509_freep) X509 *leaf = NULL;
        _cleanup_(EVP_PKEY_freep) EVP_PKEY *key = NULL;
        int r;

        r = pem_file_read(f->cert, false, "cannot load the server certificate", &chain, ret_error);
        if (r < 0)
                return r;
        leaf = PEM_read_bio_X509_AUX(chain.bio, NULL, pem_no_passphrase, NULL);
        if (!leaf || SSL_CTX_use_certificate(ctx, leaf) != 1 || SSL_CTX_clear_chain_certs(ctx) != 1)
                return fail(ret_error, "cannot load the server certificate", f->cert);
        for (;;) {
                X509 *ca = PEM_read_bio_X509(chain.bio, NULL, pem_no_passphrase, NULL);
                unsigned long e;

                if (!ca) {
                        /* The end of the file, or a block that is no certificate. */
                        e = ERR_peek_last_error();
                        if (ERR_GET_LIB(e) != ERR_LIB_PEM || ERR_GET_REASON(e) != PEM_R_NO_START_LINE)
                                return fail(ret_error, "cannot load the server certificate chain", f->cert);
                        ERR_clear_error();
                        break;
                }
                if (SSL_CTX_add0_chain_cert(ctx, ca) != 1) {
                        X509_free(ca);
                        return fail(ret_error, "cannot load the server certificate chain", f->cert);
                }
        }

        r = pem_file_read(f->key, true, "cannot load the server key", &key_file, ret_error);
        if (r < 0)
                return r;
        key = PEM_read_bio_PrivateKey(key_file.bio, NULL, pem_no_passphrase, NULL);
        if (!key || SSL_CTX_use_PrivateKey(ctx, key) != 1)
                return fail(ret_error, "cannot load the server key", f->key);
        return 0;
}

/* The DER of the CRLs a context publishes (tls_ctx_crl()), made once when
 * the context is made: workers serve it from memory, and a reload (new
 * contexts) publishes the new CRL together with enforcing it. */
typedef struct TlsPublished {
        unsigned char *der[_TLS_CRL_MAX];
        size_t size[_TLS_CRL_MAX];
} TlsPublished;

static int published_ex = -1;

static void published_free(void *parent, void *ptr, CRYPTO_EX_DATA *ad, int idx, long argl, void *argp) {
        TlsPublished *pub = ptr;

        (void)parent;
        (void)ad;
        (void)idx;
        (void)argl;
        (void)argp;
        if (!pub)
                return;
        for (int i = 0; i < _TLS_CRL_MAX; i++)
                OPENSSL_free(pub->der[i]);
        free(pub);
}

static int publish_crl(SSL_CTX *ctx, TlsCrl which, X509_CRL *crl, char **ret_error) {
        TlsPublished *pub;
        unsigned char *der = NULL;
        int n;

        if (published_ex < 0)
                published_ex = SSL_CTX_get_ex_new_index(0, NULL, NULL, NULL, published_free);
        if (published_ex < 0)
                return fail(ret_error, "cannot keep the CRL with the TLS context", NULL);
        pub = SSL_CTX_get_ex_data(ctx, published_ex);
        if (!pub) {
                pub = calloc(1, sizeof(*pub));
                if (!pub || SSL_CTX_set_ex_data(ctx, published_ex, pub) != 1) {
                        free(pub);
                        return fail(ret_error, "cannot keep the CRL with the TLS context", NULL);
                }
        }
        n = i2d_X509_CRL(crl, &der);
        if (n <= 0)
                return fail(ret_error, "cannot encode the CRL as DER", NULL);
        OPENSSL_free(pub->der[which]);
        pub->der[which] = der;
        pub->size[which] = (size_t)n;
        return 0;
}

int tls_ctx_crl(SSL_CTX *ctx, TlsCrl which, const unsigned char **ret_der, size_t *ret_size) {
        const TlsPublished *pub;

        if (!ctx || (unsigned)which >= _TLS_CRL_MAX || !ret_der || !ret_size)
                return -EINVAL;
        pub = published_ex < 0 ? NULL : SSL_CTX_get_ex_data(ctx, published_ex);
        if (!pub || !pub->der[which])
                return -ENOENT;
        *ret_der = pub->der[which];
        *ret_size = pub->size[which];
        return 0;
}

static int setup_client_auth(SSL_CTX *ctx, const TlsFiles *f, X509 *ca, X509_CRL *crl, char **ret_error) {
        X509_STORE *store = SSL_CTX_get_cert_store(ctx);

        if (X509_STORE_add_cert(store, ca) != 1 || X509_STORE_add_crl(store, crl) != 1 ||
            X509_STORE_set_flags(store, X509_V_FLAG_CRL_CHECK) != 1)
                return fail(ret_error, "cannot set up client verification with", f->client_ca);

        /* The CA names go into the CertificateRequest: Go clients (podman,
         * skopeo) only send a certificate issued by one of them. */
        if (SSL_CTX_add_client_CA(ctx, ca) != 1)
                return fail(ret_error, "cannot read the CA name of", f->client_ca);

        SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, verify_keep_going);
        SSL_CTX_set_verify_depth(ctx, 2); /* ssl_verify_depth 2 */
        return 0;
}

/* ALPN: http/1.1 if the client offers it, else no ALPN (tls.h). in is the
 * client's list of length-prefixed names; *out points into it. */
static int alpn_select(SSL *ssl, const unsigned char **out, unsigned char *outlen, const unsigned char *in,
                       unsigned inlen, void *arg) {
        static const char http11[] = "http/1.1";

        (void)ssl;
        (void)arg;
        for (unsigned i = 0; i < inlen;) {
                unsigned len = in[i];
                if (len == 0 || len > inlen - i - 1)
                        break; /* malformed: OpenSSL checks it before us; stay safe anyway */
                if (len == sizeof(http11) - 1 && memcmp(in + i + 1, http11, len) == 0) {
                        *out = in + i + 1;
                        *outlen = (unsigned char)len;
                        return SSL_TLSEXT_ERR_OK;
                }
                i += 1 + len;
        }
        return SSL_TLSEXT_ERR_NOACK;
}

/* Versions, ciphers, groups, options, buffers and the session cache of a
 * server context. */
static int ctx_set_protocol(SSL_CTX *ctx, const char *session_context, char **ret_error) {
        if (SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION) != 1 ||
            SSL_CTX_set_max_proto_version(ctx, TLS1_3_VERSION) != 1 ||
            SSL_CTX_set_cipher_list(ctx, TLS_CIPHERS) != 1 || SSL_CTX_set_ciphersuites(ctx, TLS_CIPHERSUITES) != 1 ||
            SSL_CTX_set1_groups_list(ctx, TLS_GROUPS) != 1)
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
        return 0;
}

/* The CAs' CRLs: loaded, published, and the client CA's enforced when
 * f->client_auth. */
static int ctx_load_crls(SSL_CTX *ctx, const TlsFiles *f, char **ret_error) {
        int r;

        /* Every CA's CRL given is published; the client CA's is also
         * enforced on the push port. The server CA's may be missing: it
         * revokes nothing and only certificates provision made since it
         * exists point at it, so a host not yet provisioned again keeps
         * serving (its route answers 503) rather than failing to start. */
        const struct {
                const char *ca, *crl, *whose;
                TlsCrl which;
                bool may_be_missing;
        } pairs[] = {
                {f->server_ca, f->server_crl, "server", TLS_CRL_SERVER_CA, true},
                {f->client_ca, f->crl, "client", TLS_CRL_CLIENT_CA, false},
        };
        for (size_t i = 0; i < ELEMENTSOF(pairs); i++) {
                _cleanup_(X509_freep) X509 *ca = NULL;
                _cleanup_(X509_CRL_freep) X509_CRL *crl = NULL;

                if (!pairs[i].ca || !pairs[i].crl ||
                    (pairs[i].may_be_missing && access(pairs[i].crl, F_OK) < 0 && errno == ENOENT))
                        continue;
                r = load_ca_crl(pairs[i].ca, pairs[i].crl, pairs[i].whose, &ca, &crl, ret_error);
                if (r < 0)
                        return r;
                r = publish_crl(ctx, pairs[i].which, crl, ret_error);
                if (r < 0)
                        return r;
                if (pairs[i].which == TLS_CRL_CLIENT_CA && f->client_auth) {
                        r = setup_client_auth(ctx, f, ca, crl, ret_error);
                        if (r < 0)
                                return r;
                }
        }
        return 0;
}

int tls_ctx_new(const TlsFiles *f, const char *session_context, SSL_CTX **ret, char **ret_error) {
        _cleanup_(SSL_CTX_freep) SSL_CTX *ctx = NULL;
        int r;

        ERR_clear_error();
        ctx = SSL_CTX_new(TLS_server_method());
        if (!ctx)
                return fail(ret_error, "cannot create a TLS context", NULL);

        r = ctx_set_protocol(ctx, session_context, ret_error);
        if (r < 0)
                return r;

        r = ctx_load_cert_key(ctx, f, ret_error);
        if (r < 0)
                return r;
        if (SSL_CTX_check_private_key(ctx) != 1)
                return fail(ret_error, "the server key does not match the certificate", f->key);

        SSL_CTX_set_alpn_select_cb(ctx, alpn_select, NULL);
        /* No TLS 1.3 tickets (OpenSSL sends two unasked). Debian's podman,
         * skopeo, docker and containerd keep no TLS session cache and open
         * a connection per request: every ticket was thrown away, and
         * making it (a session copy, an HKDF step, its encryption and HMAC,
         * a record and a write) cost ~5% of the proxy's CPU per connection
         * (docs/performance.md). The ticket also ACKed the client's
         * Finished at once; conn_ack_handshake() does that now, else a
         * client without TCP_NODELAY waits 40 ms on Nagle. TLS 1.2 keeps
         * its tickets (ticket_key_cb). */
        if (SSL_CTX_set_num_tickets(ctx, 0) != 1)
                return fail(ret_error, "cannot set the number of TLS 1.3 tickets", NULL);

        r = ctx_load_crls(ctx, f, ret_error);
        if (r < 0)
                return r;
        if (f->client_auth && (!f->client_ca || !f->crl))
                return fail(ret_error, "client certificates need the client CA and its CRL", NULL);

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

int tls_client_cn(SSL *ssl, char *cn, size_t size) {
        X509 *peer = SSL_get0_peer_certificate(ssl);
        const X509_NAME *name;
        const ASN1_STRING *v;
        int i;

        assert(size > 0);
        cn[0] = 0;
        if (!peer)
                return -ENOENT;
        name = X509_get_subject_name(peer);
        i = X509_NAME_get_index_by_NID(name, NID_commonName, -1);
        if (i < 0 || X509_NAME_get_index_by_NID(name, NID_commonName, i) >= 0)
                return -ENOENT;
        v = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(name, i));
        int n = ASN1_STRING_length(v);
        const unsigned char *d = ASN1_STRING_get0_data(v);
        if (n <= 0 || (size_t)n >= size)
                return -EINVAL;
        for (int k = 0; k < n; k++)
                if (d[k] <= 0x20 || d[k] >= 0x7f)
                        return -EINVAL;
        memcpy(cn, d, (size_t)n);
        cn[n] = 0;
        return 0;
}

/* ------------------------------------------------------------------------
 * Session ticket keys (tls.h)
 */

#define TICKET_KEYS_MAGIC 0x74696b6bu /* "tikk" */
#define SNAPSHOT_TRIES 1000

struct TlsTicketKeys {
        uint32_t magic;
        uint32_t seq;        /* odd while the parent writes */
        uint64_t epoch;      /* > 0 */
        uint64_t generation; /* rotations in this epoch; key[generation & 1] is current */
        TlsTicketKey key[2];
        uint64_t rotated_ms; /* parent only: last rotation or new epoch, 0 = not yet seen by tick */
};

/* What a reader copies: no parent-only fields. */
typedef struct TicketKeysView {
        uint64_t epoch, generation;
        TlsTicketKey key[2];
} TicketKeysView;

static int ticket_ex_store = -1, ticket_ex_epoch = -1;

static void write_begin(TlsTicketKeys *k) {
        __atomic_store_n(&k->seq, k->seq + 1, __ATOMIC_RELAXED);
        __atomic_thread_fence(__ATOMIC_RELEASE);
}

static void write_end(TlsTicketKeys *k) {
        __atomic_store_n(&k->seq, k->seq + 1, __ATOMIC_RELEASE);
}

/* A fresh key of epoch into *ret (not yet visible to readers). */
static int key_generate(uint64_t epoch, TlsTicketKey *ret) {
        TlsTicketKey key = {.epoch = epoch};

        if (RAND_priv_bytes(key.aes, sizeof(key.aes)) != 1 || RAND_priv_bytes(key.hmac, sizeof(key.hmac)) != 1 ||
            RAND_bytes(key.name, sizeof(key.name)) != 1) {
                OPENSSL_cleanse(&key, sizeof(key));
                return -EIO;
        }
        *ret = key;
        OPENSSL_cleanse(&key, sizeof(key));
        return 0;
}

/* A consistent copy (seqlock read side); -EBUSY if the parent kept
 * writing (it writes a few hundred bytes, only on rotation). */
static int view(const TlsTicketKeys *k, TicketKeysView *ret) {
        for (unsigned i = 0; i < SNAPSHOT_TRIES; i++) {
                uint32_t a = __atomic_load_n(&k->seq, __ATOMIC_ACQUIRE), b;
                if (a & 1)
                        continue;
                ret->epoch = __atomic_load_n(&k->epoch, __ATOMIC_RELAXED);
                ret->generation = __atomic_load_n(&k->generation, __ATOMIC_RELAXED);
                memcpy(ret->key, k->key, sizeof(ret->key));
                __atomic_thread_fence(__ATOMIC_ACQUIRE);
                b = __atomic_load_n(&k->seq, __ATOMIC_RELAXED);
                if (a == b)
                        return 0;
        }
        OPENSSL_cleanse(ret, sizeof(*ret));
        return -EBUSY;
}

int tls_ticket_keys_new(TlsTicketKeys **ret) {
        TlsTicketKeys *k;
        int r;

        k = mmap(NULL, sizeof(*k), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
        if (k == MAP_FAILED)
                return negative_errno();
        (void)madvise(k, sizeof(*k), MADV_DONTDUMP);
        k->magic = TICKET_KEYS_MAGIC;
        k->epoch = 1;
        r = key_generate(1, &k->key[0]);
        if (r < 0) {
                tls_ticket_keys_free(k);
                return r;
        }
        *ret = k;
        return 0;
}

void tls_ticket_keys_free(TlsTicketKeys *k) {
        if (!k)
                return;
        OPENSSL_cleanse(k, sizeof(*k));
        (void)munmap(k, sizeof(*k));
}

int tls_ticket_keys_rotate(TlsTicketKeys *k) {
        TlsTicketKey fresh;
        int r;

        assert(k && k->magic == TICKET_KEYS_MAGIC);
        r = key_generate(k->epoch, &fresh);
        if (r < 0)
                return r;
        write_begin(k);
        /* The slot that is not current holds the previous key: it is the
         * one that goes. */
        k->key[(k->generation + 1) & 1] = fresh;
        __atomic_store_n(&k->generation, k->generation + 1, __ATOMIC_RELAXED);
        write_end(k);
        OPENSSL_cleanse(&fresh, sizeof(fresh));
        return 0;
}

int tls_ticket_keys_new_epoch(TlsTicketKeys *k, uint64_t *ret_epoch) {
        TlsTicketKey fresh;
        uint64_t epoch;
        int r;

        assert(k && k->magic == TICKET_KEYS_MAGIC);
        epoch = k->epoch + 1;
        r = key_generate(epoch, &fresh);
        if (r < 0)
                return r;
        write_begin(k);
        __atomic_store_n(&k->epoch, epoch, __ATOMIC_RELAXED);
        __atomic_store_n(&k->generation, 0, __ATOMIC_RELAXED);
        k->key[0] = fresh;
        memset(&k->key[1], 0, sizeof(k->key[1]));
        write_end(k);
        k->rotated_ms = 0;
        OPENSSL_cleanse(&fresh, sizeof(fresh));
        *ret_epoch = epoch;
        return 0;
}

int tls_ticket_keys_tick(TlsTicketKeys *k, uint64_t now_ms, uint64_t lifetime_ms) {
        int r;

        assert(k && k->magic == TICKET_KEYS_MAGIC);
        if (k->rotated_ms == 0 || now_ms < k->rotated_ms) {
                k->rotated_ms = now_ms;
                return 0;
        }
        if (now_ms - k->rotated_ms < lifetime_ms)
                return 0;
        r = tls_ticket_keys_rotate(k);
        if (r < 0)
                return r;
        k->rotated_ms = now_ms;
        return 1;
}

int tls_ticket_keys_current(const TlsTicketKeys *k, uint64_t epoch, TlsTicketKey *ret) {
        TicketKeysView v;
        int r;

        r = view(k, &v);
        if (r < 0)
                return r;
        if (v.epoch != epoch) {
                OPENSSL_cleanse(&v, sizeof(v));
                return -ESTALE;
        }
        *ret = v.key[v.generation & 1];
        OPENSSL_cleanse(&v, sizeof(v));
        return 0;
}

TlsTicketKeyMatch tls_ticket_keys_find(const TlsTicketKeys *k, uint64_t epoch,
                                       const unsigned char name[TLS_TICKET_KEY_NAME_SIZE], TlsTicketKey *ret) {
        TlsTicketKeyMatch m = TLS_TICKET_KEY_NONE;
        TicketKeysView v;

        if (view(k, &v) < 0)
                return TLS_TICKET_KEY_NONE;
        for (unsigned i = 0; i < 2; i++) {
                const TlsTicketKey *key = &v.key[(v.generation + i) & 1];
                /* The epoch of the key itself, not only the store's: a
                 * cleared slot (epoch 0) never matches. */
                if (v.epoch != epoch || key->epoch != epoch ||
                    CRYPTO_memcmp(key->name, name, TLS_TICKET_KEY_NAME_SIZE) != 0)
                        continue;
                m = i == 0 ? TLS_TICKET_KEY_CURRENT : TLS_TICKET_KEY_PREVIOUS;
                if (ret)
                        *ret = *key;
                break;
        }
        OPENSSL_cleanse(&v, sizeof(v));
        return m;
}

/* Sets up the ticket's cipher and MAC with key; false on failure. */
static bool ticket_crypto_init(const TlsTicketKey *key, unsigned char *iv, EVP_CIPHER_CTX *cctx,
                               EVP_MAC_CTX *hctx, bool enc) {
        OSSL_PARAM params[] = {
                OSSL_PARAM_construct_octet_string(OSSL_MAC_PARAM_KEY, (void *)key->hmac, sizeof(key->hmac)),
                OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, (char *)"SHA256", 0),
                OSSL_PARAM_construct_end(),
        };

        if (EVP_MAC_CTX_set_params(hctx, params) != 1)
                return false;
        return enc ? EVP_EncryptInit_ex(cctx, EVP_aes_256_cbc(), NULL, key->aes, iv) == 1
                   : EVP_DecryptInit_ex(cctx, EVP_aes_256_cbc(), NULL, key->aes, iv) == 1;
}

/* OpenSSL's ticket key callback (SSL_CTX_set_tlsext_ticket_key_evp_cb):
 * encrypt: 1 with a ticket, 0 for none, -1 on error; decrypt: 1 valid,
 * 2 valid but renew, 0 unknown key (a full handshake), -1 on error. */
static int ticket_key_cb(SSL *ssl, unsigned char key_name[TLS_TICKET_KEY_NAME_SIZE],
                         unsigned char iv[EVP_MAX_IV_LENGTH], EVP_CIPHER_CTX *cctx, EVP_MAC_CTX *hctx, int enc) {
        SSL_CTX *ctx = SSL_get_SSL_CTX(ssl);
        const TlsTicketKeys *k = SSL_CTX_get_ex_data(ctx, ticket_ex_store);
        uint64_t epoch = (uint64_t)(uintptr_t)SSL_CTX_get_ex_data(ctx, ticket_ex_epoch);
        TlsTicketKey key;
        int r;

        if (!k)
                return 0;
        if (enc) {
                /* A draining worker of an older epoch issues none. */
                if (tls_ticket_keys_current(k, epoch, &key) < 0)
                        return 0;
                if (RAND_bytes(iv, EVP_CIPHER_get_iv_length(EVP_aes_256_cbc())) != 1)
                        r = -1;
                else {
                        memcpy(key_name, key.name, TLS_TICKET_KEY_NAME_SIZE);
                        r = ticket_crypto_init(&key, iv, cctx, hctx, true) ? 1 : -1;
                }
        } else {
                TlsTicketKeyMatch m = tls_ticket_keys_find(k, epoch, key_name, &key);
                if (m == TLS_TICKET_KEY_NONE)
                        return 0;
                r = !ticket_crypto_init(&key, iv, cctx, hctx, false) ? -1 : m == TLS_TICKET_KEY_CURRENT ? 1 : 2;
        }
        OPENSSL_cleanse(&key, sizeof(key));
        return r;
}

int tls_ctx_use_ticket_keys(SSL_CTX *ctx, TlsTicketKeys *k, uint64_t epoch) {
        assert(ctx && k && k->magic == TICKET_KEYS_MAGIC && epoch > 0);

        if (ticket_ex_store < 0) {
                ticket_ex_store = SSL_CTX_get_ex_new_index(0, NULL, NULL, NULL, NULL);
                ticket_ex_epoch = SSL_CTX_get_ex_new_index(0, NULL, NULL, NULL, NULL);
                if (ticket_ex_store < 0 || ticket_ex_epoch < 0)
                        return -EINVAL;
        }
        if (SSL_CTX_set_ex_data(ctx, ticket_ex_store, k) != 1 ||
            SSL_CTX_set_ex_data(ctx, ticket_ex_epoch, (void *)(uintptr_t)epoch) != 1 ||
            SSL_CTX_set_tlsext_ticket_key_evp_cb(ctx, ticket_key_cb) != 1)
                return -EINVAL;
        return 0;
}

/* SPDX-License-Identifier: MIT */
/*
 * Provisioning steps for the certificate tree. Each step owns one key and
 * its certificate (or the CRL). An existing valid PKI is kept: keys are
 * never regenerated while they are usable, and a certificate is reissued
 * only when it no longer matches (expired or near expiry, another CA, other
 * server names, another key type).
 *
 * The CRL is the one file that is never made again from scratch: it is the
 * only record of revocations, so a CRL that does not parse or is not the
 * client CA's fails the step and stays byte for byte as it was. A missing
 * one is made, with the serials of every clients/NAME.crt.revoked in it.
 * A client certificate is issued only for [tls] initial_client, and never
 * for a name whose last certificate was revoked.
 *
 * Each CA has a CRL, and every certificate issued here names its issuer's
 * CRL in a CRL distribution point: https://<first server_name>[:port]
 * CRL_URL_PATH_*, which the proxy serves (proxy/crl-route.c). The server
 * CA's CRL revokes nothing yet; it exists because a distribution point must
 * lead to a CRL of the certificate's own issuer (RFC 5280 6.3.3), so the
 * server certificate cannot point at the client CA's. A server certificate
 * without that distribution point (made before it existed, or before
 * server_names changed) is reissued for its key; client certificates get it
 * when they are next issued.
 */
#include <dirent.h>
#include <errno.h>
#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "detail.h"
#include "fileio.h"
#include "macro.h"
#include "openssl-util.h"
#include "paths.h"
#include "pki.h"
#include "provision.h"

/* CAs and client certificates closer than this to expiry are reissued by
 * provision; the server certificate and the CRLs by [pki] renew_before
 * (renew_margin()), which `regvisor run` uses too. */
#define RENEW_MARGIN_SECONDS (30L * 24 * 3600)
#define PEM_MAX (1024 * 1024)

typedef struct {
        const char *name;     /* step data string */
        const char *key;      /* below [tls] dir */
        mode_t key_mode;
        Owner key_owner;
        const char *cert;     /* certificate or CRL */
        const char *issuer;   /* name of the item that signs it, NULL: self */
} PkiItem;

static const PkiItem pki_items[] = {
        {"server-ca", TLS_SERVER_CA_KEY, 0600, OWNER_ROOT, TLS_SERVER_CA_CERT, NULL},
        {"server-crl", NULL, 0, OWNER_ROOT, TLS_SERVER_CRL, "server-ca"},
        /* The proxy's group reads the server key; nobody else. */
        {"server-cert", TLS_SERVER_KEY, 0640, OWNER_ROOT_PROXY, TLS_SERVER_CERT, "server-ca"},
        {"client-ca", TLS_CLIENT_CA_KEY, 0600, OWNER_ROOT, TLS_CLIENT_CA_CERT, NULL},
        {"crl", NULL, 0, OWNER_ROOT, TLS_CLIENT_CRL, "client-ca"},
        /* [tls] initial_client: key and cert are that name's, filled in by
         * judge_initial_client() and step_pki_apply(). */
        {"client", NULL, 0600, OWNER_ROOT, NULL, "client-ca"},
};

/* How long before its end provision and `regvisor run` renew item `name`. */
static long renew_margin(const Config *c, const char *name) {
        if (streq(name, "server-cert"))
                return config_renew_margin(c, config_server_validity(c));
        if (streq(name, "crl") || streq(name, "server-crl"))
                return config_renew_margin(c, config_crl_validity(c));
        return RENEW_MARGIN_SECONDS;
}

static const PkiItem *pki_item(const char *name) {
        for (size_t i = 0; i < ELEMENTSOF(pki_items); i++)
                if (streq(pki_items[i].name, name))
                        return &pki_items[i];
        return NULL;
}

/* The CRL distribution point of the certificates `issuer` (an item name)
 * signs: the first server name's authority on the pull port (bracketed
 * when an IPv6 address, no port when https' own 443). */
static int crl_uri(const Config *c, const char *issuer, char **ret) {
        _cleanup_free_ char *authority = NULL;
        int r;

        r = config_server_authority(&c->servers[0], c->pull.listen.port, &authority);
        if (r < 0)
                return r;
        if (asprintf(ret, "https://%s%s", authority,
                     streq(issuer, "server-ca") ? CRL_URL_PATH_SERVER_CA : CRL_URL_PATH_CLIENT_CA) < 0)
                return -ENOMEM;
        return 0;
}

#define _cleanup_key_ _cleanup_(EVP_PKEY_freep)
#define _cleanup_x509_ _cleanup_(X509_freep)
#define _cleanup_crl_ _cleanup_(X509_CRL_freep)

static char *tls_path(const Provision *p, const char *rel) {
        _cleanup_free_ char *path = NULL;

        if (asprintf(&path, "%s/%s", p->config->tls_dir, rel) < 0)
                return NULL;
        return provision_path(p, path);
}

/* Reads a PEM file below the tls dir. -ENOENT when missing. */
static int read_pem(const Provision *p, const char *rel, char **ret, size_t *ret_size) {
        _cleanup_free_ char *path = tls_path(p, rel);
        if (!path)
                return -ENOMEM;
        return read_file(path, PEM_MAX, ret, ret_size);
}

static int load_key(const Provision *p, const char *rel, EVP_PKEY **ret) {
        _cleanup_free_ char *pem = NULL;
        size_t n;
        int r = read_pem(p, rel, &pem, &n);
        return r < 0 ? r : pki_key_from_pem(pem, n, ret);
}

static int load_cert(const Provision *p, const char *rel, X509 **ret) {
        _cleanup_free_ char *pem = NULL;
        size_t n;
        int r = read_pem(p, rel, &pem, &n);
        return r < 0 ? r : pki_cert_from_pem(pem, n, ret);
}

static int load_crl(const Provision *p, const char *rel, X509_CRL **ret) {
        _cleanup_free_ char *pem = NULL;
        size_t n;
        int r = read_pem(p, rel, &pem, &n);
        return r < 0 ? r : pki_crl_from_pem(pem, n, ret);
}

int provision_pki_load_key(const Provision *p, const char *rel, EVP_PKEY **ret) {
        return load_key(p, rel, ret);
}

int provision_pki_load_cert(const Provision *p, const char *rel, X509 **ret) {
        return load_cert(p, rel, ret);
}

/* The full path of rel below the tls dir and the uid/gid owner means. */
static int tls_path_owner(const Provision *p, const char *rel, Owner owner, char **ret_path, uid_t *ret_uid,
                          gid_t *ret_gid) {
        char *path;
        int r;

        r = provision_owner(p, owner, ret_uid, ret_gid);
        if (r < 0)
                return r;
        path = tls_path(p, rel);
        if (!path)
                return -ENOMEM;
        *ret_path = path;
        return 0;
}

static int write_pem(const Provision *p, const char *rel, const char *pem, size_t size, mode_t mode, Owner owner) {
        _cleanup_free_ char *path = NULL;
        uid_t uid;
        gid_t gid;
        int r = tls_path_owner(p, rel, owner, &path, &uid, &gid);

        return r < 0 ? r : write_file_atomic(path, pem, size, mode, uid, gid);
}

/* key written to rel with its final mode before any key byte (see
 * write_file_atomic()), the PEM wiped after. */
static int write_key(const Provision *p, const char *rel, EVP_PKEY *key, mode_t mode, Owner owner) {
        _cleanup_free_ char *pem = NULL;
        size_t n;
        int r;

        r = pki_key_to_pem(key, &pem, &n);
        if (r < 0)
                return r;
        r = write_pem(p, rel, pem, n, mode, owner);
        OPENSSL_cleanse(pem, n);
        return r;
}

/* A new key of [tls] key_type, written to rel with its final mode before
 * any key byte (see write_file_atomic()); the key in *ret_key. */
static int new_key_file(const Provision *p, const char *rel, mode_t mode, Owner owner, EVP_PKEY **ret_key) {
        _cleanup_key_ EVP_PKEY *key = NULL;
        int r;

        r = pki_generate_key(p->config->key_type, &key);
        if (r < 0)
                return r;
        r = write_key(p, rel, key, mode, owner);
        if (r < 0)
                return r;
        *ret_key = TAKE_PTR(key);
        return 0;
}

/* cert as PEM to rel, 0644 root. */
static int write_cert(const Provision *p, const char *rel, X509 *cert) {
        _cleanup_free_ char *pem = NULL;
        size_t n;
        int r;

        r = pki_cert_to_pem(cert, &pem, &n);
        return r < 0 ? r : write_pem(p, rel, pem, n, 0644, OWNER_ROOT);
}

/* 1 when the file has this mode and owner, 0 when not. */
static int mode_right(const Provision *p, const char *rel, mode_t mode, Owner owner) {
        _cleanup_free_ char *path = NULL;
        struct stat st;
        uid_t uid;
        gid_t gid;
        int r = tls_path_owner(p, rel, owner, &path, &uid, &gid);

        if (r < 0)
                return r;
        if (lstat(path, &st) < 0)
                return negative_errno();
        if (S_ISLNK(st.st_mode))
                return -ELOOP;
        return (st.st_mode & 07777) == mode && st.st_uid == uid && st.st_gid == gid;
}

static int fix_mode(const Provision *p, const char *rel, mode_t mode, Owner owner) {
        _cleanup_free_ char *path = NULL;
        uid_t uid;
        gid_t gid;
        int r = tls_path_owner(p, rel, owner, &path, &uid, &gid);

        return r < 0 ? r : set_mode_owner(path, mode, uid, gid);
}

/* The issuer's key and certificate, both required to be present and valid:
 * steps run in order, so the issuer's own step has made them. */
static int load_issuer(const Provision *p, const PkiItem *it, EVP_PKEY **ret_key, X509 **ret_cert) {
        const PkiItem *issuer = pki_item(it->issuer);
        _cleanup_key_ EVP_PKEY *key = NULL;
        int r;

        r = load_key(p, issuer->key, &key);
        if (r < 0)
                return r;
        r = load_cert(p, issuer->cert, ret_cert);
        if (r < 0)
                return r;
        *ret_key = TAKE_PTR(key);
        return 0;
}

/* What state an item is in. */
typedef enum {
        PKI_RIGHT,
        PKI_FIX_MODES,  /* content right, mode or owner wrong */
        PKI_NEW_CERT,   /* key usable, certificate must be (re)issued */
        PKI_NEW_KEY,    /* no usable key: new key and certificate */
} PkiState;

typedef struct {
        PkiState state;
        char reason[512]; /* why not right; or, on an error, what is wrong */
} PkiVerdict;

static void verdict(PkiVerdict *v, PkiState s, const char *reason) {
        if (s > v->state || v->state == PKI_RIGHT) {
                v->state = s;
                (void) snprintf(v->reason, sizeof v->reason, "%s", reason);
        }
}

/* A PKI_FIX_MODES verdict naming what when rel's mode or owner is not
 * mode and owner; a negative errno when rel cannot be looked at. */
static int judge_mode(const Provision *p, PkiVerdict *v, const char *rel, mode_t mode, Owner owner,
                      const char *what) {
        int r = mode_right(p, rel, mode, owner);

        if (r == 0)
                verdict(v, PKI_FIX_MODES, what);
        return r < 0 ? r : 0;
}

static int judge_cert_item(const Provision *p, const PkiItem *it, PkiVerdict *v) {
        const Config *c = p->config;
        _cleanup_key_ EVP_PKEY *key = NULL, *issuer_key = NULL;
        _cleanup_x509_ X509 *cert = NULL, *issuer_cert = NULL;
        bool is_ca = !it->issuer;
        int r;

        *v = (PkiVerdict){PKI_RIGHT, ""};
        r = load_key(p, it->key, &key);
        if (r == -ENOENT)
                return verdict(v, PKI_NEW_KEY, "no key"), 0;
        if (r == -EBADMSG)
                return verdict(v, PKI_NEW_KEY, "key does not parse"), 0;
        if (r < 0)
                return r;
        if (pki_key_is_type(key, c->key_type) != 1)
                return verdict(v, PKI_NEW_KEY, "key_type changed"), 0;

        r = load_cert(p, it->cert, &cert);
        if (r == -ENOENT || r == -EBADMSG)
                return verdict(v, PKI_NEW_CERT, r == -ENOENT ? "no certificate" : "certificate does not parse"), 0;
        if (r < 0)
                return r;
        if (pki_key_matches_cert(key, cert) != 1)
                return verdict(v, PKI_NEW_CERT, "certificate is for another key"), 0;

        if (is_ca) {
                issuer_cert = X509_dup(cert);
                if (!issuer_cert)
                        return -ENOMEM;
        } else {
                r = load_issuer(p, it, &issuer_key, &issuer_cert);
                if (r == -ENOENT)
                        return verdict(v, PKI_NEW_CERT, "no CA yet"), 0;
                if (r < 0)
                        return r;
        }
        if (pki_cert_verify(cert, issuer_cert, time(NULL), renew_margin(c, it->name)) != 1)
                return verdict(v, PKI_NEW_CERT,
                               is_ca ? "CA expires within 30 days or is invalid"
                               : streq(it->name, "server-cert")
                                       ? "not signed by the current CA or expires within [pki] renew_before"
                                       : "not signed by the current CA or expires within 30 days"),
                       0;
        if (streq(it->name, "server-cert") &&
            pki_cert_matches_names(cert, c->servers, c->n_server_names) != 1)
                return verdict(v, PKI_NEW_CERT, "server_names changed"), 0;
        if (streq(it->name, "server-cert")) {
                _cleanup_free_ char *uri = NULL;

                r = crl_uri(c, it->issuer, &uri);
                if (r < 0)
                        return r;
                if (pki_cert_has_crl_uri(cert, uri) != 1) {
                        char why[sizeof v->reason];
                        (void) snprintf(why, sizeof why, "CRL distribution point is not %s", uri);
                        return verdict(v, PKI_NEW_CERT, why), 0;
                }
        }

        r = judge_mode(p, v, it->key, it->key_mode, it->key_owner, "key mode or owner");
        if (r < 0)
                return r;
        return judge_mode(p, v, it->cert, 0644, OWNER_ROOT, "certificate mode or owner");
}

/* The CRL of item `it` (signed by ca), only when it is genuine. -ENOENT
 * when there is none; any other failure (-EBADMSG: does not parse,
 * -EKEYREJECTED: not the CA's, -EFBIG, -EACCES ...) leaves reason saying
 * which file and what is wrong: the caller must then fail and leave the
 * file alone. */
static int load_genuine_crl(const Provision *p, const PkiItem *it, X509 *ca, X509_CRL **ret, char *reason,
                            size_t size) {
        _cleanup_free_ char *path = tls_path(p, it->cert);
        _cleanup_crl_ X509_CRL *crl = NULL;
        const char *keep = streq(it->name, "crl")
                                   ? "left as it is (a new CRL would forget every revocation in it): restore it "
                                     "from a backup, or remove it to have one rebuilt from clients/NAME.crt.revoked"
                                   : "left as it is (a new CRL would forget every revocation in it): restore it "
                                     "from a backup, or remove it to have an empty one made";
        int r;

        if (!path)
                return -ENOMEM;
        r = load_crl(p, it->cert, &crl);
        if (r == -ENOENT)
                return r;
        if (r == -EBADMSG)
                (void) snprintf(reason, size, "%s does not parse as a PEM X.509 CRL; %s", path, keep);
        else if (r < 0)
                (void) snprintf(reason, size, "%s: %s; %s", path, strerror(-r), keep);
        else {
                r = pki_crl_verify(crl, ca);
                if (r == 0) {
                        r = -EKEYREJECTED;
                        (void) snprintf(reason, size,
                                        "%s is not the %s CA's CRL (issued by another CA, or its signature "
                                        "does not verify with %s); %s",
                                        path, streq(it->issuer, "server-ca") ? "server" : "client",
                                        pki_item(it->issuer)->cert, keep);
                } else if (r < 0)
                        (void) snprintf(reason, size, "%s: cannot verify: %s", path, strerror(-r));
        }
        if (r < 0)
                return r;
        *ret = TAKE_PTR(crl);
        return 0;
}

/* A CRL of every clients/NAME.crt.revoked the client CA issued: what a
 * missing CRL is made of again. *ret stays NULL when there is none. */
static int crl_from_revoked(const Provision *p, X509 *ca, EVP_PKEY *ca_key, X509_CRL **ret, unsigned *ret_n) {
        _cleanup_free_ char *dir = tls_path(p, "clients");
        _cleanup_crl_ X509_CRL *crl = NULL;
        struct dirent *de;
        unsigned n = 0;
        DIR *d;
        int r = 0;

        if (!dir)
                return -ENOMEM;
        d = opendir(dir);
        if (!d)
                return errno == ENOENT ? (*ret = NULL, *ret_n = 0, 0) : negative_errno();
        while (r >= 0 && (de = readdir(d))) {
                _cleanup_free_ char *rel = NULL;
                _cleanup_x509_ X509 *cert = NULL;
                X509_CRL *next = NULL;
                size_t len = strlen(de->d_name);

                if (len <= strlen(".crt.revoked") || !streq(de->d_name + len - strlen(".crt.revoked"), ".crt.revoked"))
                        continue;
                if (asprintf(&rel, "clients/%s", de->d_name) < 0) {
                        r = -ENOMEM;
                        break;
                }
                /* Another CA's certificate revokes nothing of ours. */
                if (load_cert(p, rel, &cert) < 0 || X509_verify(cert, X509_get0_pubkey(ca)) != 1) {
                        ERR_clear_error();
                        continue;
                }
                r = pki_make_crl(ca, ca_key, crl, X509_get0_serialNumber(cert), 1, 1, &next);
                if (r < 0)
                        break;
                X509_CRL_free(crl);
                crl = next;
                n++;
        }
        closedir(d);
        if (r < 0)
                return r;
        *ret = TAKE_PTR(crl);
        *ret_n = n;
        return 0;
}

/* Whether crl (item it's) is due for its successor at time now: no
 * nextUpdate, or nextUpdate within the renewal margin. */
static bool crl_due(const Config *c, const PkiItem *it, X509_CRL *crl, time_t now) {
        time_t next;

        return pki_crl_dates(crl, NULL, &next) < 0 || next - now <= renew_margin(c, it->name);
}

static int judge_crl(const Provision *p, const PkiItem *it, PkiVerdict *v) {
        _cleanup_key_ EVP_PKEY *ca_key = NULL;
        _cleanup_x509_ X509 *ca = NULL;
        _cleanup_crl_ X509_CRL *crl = NULL;
        int r;

        *v = (PkiVerdict){PKI_RIGHT, ""};
        r = load_issuer(p, it, &ca_key, &ca);
        if (r == -ENOENT) /* only in a dry run: the CA's step would make it */
                return verdict(v, PKI_NEW_CERT, "no CA yet"), 0;
        if (r < 0)
                return r;
        r = load_genuine_crl(p, it, ca, &crl, v->reason, sizeof v->reason);
        if (r == -ENOENT)
                return verdict(v, PKI_NEW_CERT, "no CRL"), 0;
        if (r < 0)
                return r;
        if (crl_due(p->config, it, crl, time(NULL)))
                return verdict(v, PKI_NEW_CERT, "CRL's nextUpdate within [pki] renew_before"), 0;
        return judge_mode(p, v, it->cert, 0644, OWNER_ROOT, "CRL mode or owner");
}

static int client_paths(const char *name, char **ret_key, char **ret_cert) {
        if (asprintf(ret_key, TLS_CLIENT_KEY_FMT, name) < 0)
                return -ENOMEM;
        if (asprintf(ret_cert, TLS_CLIENT_CERT_FMT, name) < 0) {
                free(*ret_key);
                return -ENOMEM;
        }
        return 0;
}

/* Whether NAME's last certificate is revoked: clients/NAME.crt on the
 * (genuine) CRL, or, with no clients/NAME.crt, a clients/NAME.crt.revoked
 * left by `regvisor pki revoke`. 1 revoked, 0 not, negative errno with
 * reason set when the CRL cannot be trusted to say. */
static int client_revoked(const Provision *p, const char *name, char *reason, size_t size) {
        _cleanup_free_ char *key_rel = NULL, *cert_rel = NULL, *revoked = NULL;
        _cleanup_key_ EVP_PKEY *ca_key = NULL;
        _cleanup_x509_ X509 *cert = NULL, *ca = NULL;
        _cleanup_crl_ X509_CRL *crl = NULL;
        int r;

        r = client_paths(name, &key_rel, &cert_rel);
        if (r < 0)
                return r;
        r = load_cert(p, cert_rel, &cert);
        if (r == -ENOENT || r == -EBADMSG) {
                _cleanup_free_ char *rel = NULL;
                if (asprintf(&rel, "%s.revoked", cert_rel) < 0 || !(revoked = tls_path(p, rel)))
                        return -ENOMEM;
                return access(revoked, F_OK) == 0;
        }
        if (r < 0)
                return r;
        r = load_issuer(p, pki_item("crl"), &ca_key, &ca);
        if (r == -ENOENT)
                return 0; /* a dry run on a fresh host */
        if (r < 0)
                return r;
        r = load_genuine_crl(p, pki_item("crl"), ca, &crl, reason, size);
        if (r == -ENOENT)
                return 0;
        if (r < 0)
                return r;
        return pki_crl_has_serial(crl, X509_get0_serialNumber(cert));
}

/* The [tls] initial_client row: nothing when none is asked for, nothing
 * when that name was revoked (a revocation is undone only on purpose, with
 * `pki issue-client --reissue`), else the usual certificate item. */
static int judge_initial_client(const Provision *p, const PkiItem *it, PkiVerdict *v) {
        const char *name = p->config->initial_client;
        _cleanup_free_ char *key_rel = NULL, *cert_rel = NULL;
        PkiItem item = *it;
        int r;

        *v = (PkiVerdict){PKI_RIGHT, ""};
        if (!name) {
                (void) snprintf(v->reason, sizeof v->reason, "none asked for ([tls] initial_client is empty)");
                return 0;
        }
        r = client_revoked(p, name, v->reason, sizeof v->reason);
        if (r < 0)
                return r;
        if (r > 0) {
                (void) snprintf(v->reason, sizeof v->reason,
                                "%s's last certificate is revoked: not reissued ('regvisor pki issue-client "
                                "--reissue %s' makes a new one)",
                                name, name);
                return 0;
        }
        r = client_paths(name, &key_rel, &cert_rel);
        if (r < 0)
                return r;
        item.key = key_rel;
        item.cert = cert_rel;
        return judge_cert_item(p, &item, v);
}

static int judge(const Provision *p, const PkiItem *it, PkiVerdict *v) {
        if (streq(it->name, "client"))
                return judge_initial_client(p, it, v);
        return it->key ? judge_cert_item(p, it, v) : judge_crl(p, it, v);
}

/* What went wrong: the verdict's own words when it has them. */
static void fail_detail(const PkiItem *it, const PkiVerdict *v, int r, char **ret_detail) {
        if (ret_detail && (v->reason[0] ? asprintf(ret_detail, "%s", v->reason)
                                        : asprintf(ret_detail, "%s: %s", it->name, strerror(-r))) < 0)
                *ret_detail = NULL;
}

int step_pki_check(Provision *p, const ProvisionStep *s, char **ret_detail) {
        const PkiItem *it = pki_item(s->data);
        PkiVerdict v;
        int r;

        r = judge(p, it, &v);
        if (r < 0) {
                fail_detail(it, &v, r, ret_detail);
                return r;
        }
        /* A reason with PKI_RIGHT is a remark ("none asked for"). */
        if (ret_detail && v.reason[0] && asprintf(ret_detail, "%s", v.reason) < 0)
                *ret_detail = NULL;
        return v.state == PKI_RIGHT;
}

static int issue(const Provision *p, const PkiItem *it, EVP_PKEY *key, X509 **ret_cert) {
        const Config *c = p->config;
        _cleanup_key_ EVP_PKEY *issuer_key = NULL;
        _cleanup_x509_ X509 *issuer_cert = NULL;
        _cleanup_free_ char *cn = NULL, *uri = NULL;
        int r;

        if (streq(it->name, "server-ca")) {
                if (asprintf(&cn, "%s Registry CA", c->organization) < 0)
                        return -ENOMEM;
                return pki_make_ca(key, c->organization, cn, c->ca_days, ret_cert);
        }
        if (streq(it->name, "client-ca")) {
                if (asprintf(&cn, "%s Client CA", c->organization) < 0)
                        return -ENOMEM;
                return pki_make_ca(key, c->organization, cn, c->ca_days, ret_cert);
        }
        r = load_issuer(p, it, &issuer_key, &issuer_cert);
        if (r < 0)
                return r;
        r = crl_uri(c, it->issuer, &uri);
        if (r < 0)
                return r;
        if (streq(it->name, "server-cert"))
                return pki_issue_server_for(issuer_cert, issuer_key, key, c->organization, c->servers,
                                            c->n_server_names, config_server_validity(c), uri, ret_cert);
        return pki_issue_client(issuer_cert, issuer_key, key, c->organization, c->initial_client, c->cert_days,
                                uri, ret_cert);
}

static int apply_cert_item(Provision *p, const PkiItem *it, PkiState state) {
        _cleanup_key_ EVP_PKEY *key = NULL;
        _cleanup_x509_ X509 *cert = NULL;
        int r;

        if (state == PKI_NEW_KEY) {
                r = new_key_file(p, it->key, it->key_mode, it->key_owner, &key);
                if (r < 0)
                        return r;
                provision_kill_point("pki-key-written");
        } else {
                r = load_key(p, it->key, &key);
                if (r < 0)
                        return r;
                r = fix_mode(p, it->key, it->key_mode, it->key_owner);
                if (r < 0)
                        return r;
        }
        r = issue(p, it, key, &cert);
        if (r < 0)
                return r;
        return write_cert(p, it->cert, cert);
}

/* An exclusive flock() of the certificate tree's directory in *ret_fd. */
static int tree_lock(const Provision *p, int *ret_fd) {
        _cleanup_free_ char *dir = provision_path(p, p->config->tls_dir);
        int fd;

        if (!dir)
                return -ENOMEM;
        fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (fd < 0)
                return negative_errno();
        if (flock(fd, LOCK_EX) < 0) {
                int r = negative_errno();
                (void) close(fd);
                return r;
        }
        *ret_fd = fd;
        return 0;
}

/* The next CRL of item `it`: every revocation of the current one (or, with
 * none, for the client CA, of clients/NAME.crt.revoked) plus `revoke` (may be
 * NULL), numbered one up, and written. A current CRL that is not genuine
 * fails with reason set: it is never replaced. *ret_number (optional) is the
 * new CRL's number. */
static int write_next_crl(const Provision *p, const PkiItem *it, const ASN1_INTEGER *revoke, char *reason,
                          size_t size, long *ret_number) {
        _cleanup_key_ EVP_PKEY *ca_key = NULL;
        _cleanup_x509_ X509 *ca = NULL;
        _cleanup_crl_ X509_CRL *old = NULL, *crl = NULL;
        _cleanup_free_ char *pem = NULL;
        _cleanup_close_ int lock = -1;
        long number = 0;
        unsigned n_rebuilt = 0;
        size_t n;
        int r;

        /* Read, extend, write: `pki revoke` and the renewal of `regvisor
         * run` must not both start from the same CRL, or one revocation is
         * lost. flock() of the directory, read-only as the service's
         * sandbox may see it; released when lock is closed. */
        r = tree_lock(p, &lock);
        if (r < 0) {
                (void) snprintf(reason, size, "cannot lock %s: %s", p->config->tls_dir, strerror(-r));
                return r;
        }
        r = load_issuer(p, it, &ca_key, &ca);
        if (r < 0) {
                (void) snprintf(reason, size, "%s: %s (run regvisor provision first)", it->issuer, strerror(-r));
                return r;
        }
        r = load_genuine_crl(p, it, ca, &old, reason, size);
        if (r == -ENOENT && streq(it->name, "crl"))
                r = crl_from_revoked(p, ca, ca_key, &old, &n_rebuilt);
        else if (r == -ENOENT)
                r = 0;
        else if (r >= 0)
                r = pki_crl_number(old, &number);
        if (r < 0)
                return r;
        r = pki_make_crl_for(ca, ca_key, old, revoke, number + 1, config_crl_validity(p->config), &crl);
        if (r < 0)
                return r;
        r = pki_crl_to_pem(crl, &pem, &n);
        if (r < 0)
                return r;
        r = write_pem(p, it->cert, pem, n, 0644, OWNER_ROOT);
        if (r < 0)
                return r;
        if (n_rebuilt > 0)
                (void) snprintf(reason, size, "with the %u certificates of clients/NAME.crt.revoked", n_rebuilt);
        if (ret_number)
                *ret_number = number + 1;
        return 0;
}

int step_pki_apply(Provision *p, const ProvisionStep *s, char **ret_detail) {
        const PkiItem *it = pki_item(s->data);
        _cleanup_free_ char *key_rel = NULL, *cert_rel = NULL;
        char rebuilt[sizeof ((PkiVerdict *) NULL)->reason] = "";
        PkiItem item = {};
        PkiVerdict v;
        int r;

        /* The initial client's row works on that name's files. */
        if (streq(it->name, "client") && p->config->initial_client) {
                r = client_paths(p->config->initial_client, &key_rel, &cert_rel);
                if (r < 0)
                        return r;
                item = *it;
                item.key = key_rel;
                item.cert = cert_rel;
        }
        r = judge(p, it, &v);
        if (key_rel)
                it = &item;
        if (r < 0)
                goto fail;
        switch (v.state) {
        case PKI_RIGHT:
                return 0;
        case PKI_FIX_MODES:
                if (it->key) {
                        r = fix_mode(p, it->key, it->key_mode, it->key_owner);
                        if (r < 0)
                                goto fail;
                }
                r = fix_mode(p, it->cert, 0644, OWNER_ROOT);
                if (r < 0)
                        goto fail;
                break;
        case PKI_NEW_CERT:
        case PKI_NEW_KEY:
                if (!it->key)
                        r = write_next_crl(p, it, NULL, rebuilt, sizeof rebuilt, NULL);
                else
                        r = apply_cert_item(p, it, v.state);
                if (r < 0) {
                        if (rebuilt[0])
                                memcpy(v.reason, rebuilt, sizeof rebuilt);
                        else
                                v.reason[0] = 0;
                        goto fail;
                }
                break;
        }
        if (ret_detail) {
                const char *what = v.state == PKI_FIX_MODES ? "fixed modes"
                                   : v.state == PKI_NEW_KEY ? "new key and certificate"
                                   : it->key               ? "new certificate"
                                                           : "new CRL";
                if (asprintf(ret_detail, "%s (%s%s%s)", what, v.reason, rebuilt[0] ? "; " : "", rebuilt) < 0)
                        *ret_detail = NULL;
        }
        return 0;
fail:
        fail_detail(it, &v, r, ret_detail);
        return r;
}

/* ---- client certificates after provisioning (regvisor pki) -------------- */

/* Where NAME's client credential lives: relative to the TLS directory
 * (for write_pem and load_cert) and in full, with the .revoked name its
 * certificate gets when revoked. */
typedef struct {
        char *key_rel, *cert_rel;
        char *key_path, *cert_path, *revoked_path;
} ClientFiles;

static void client_files_done(ClientFiles *f) {
        free_many(f->key_rel, f->cert_rel, f->key_path, f->cert_path, f->revoked_path);
}

static int client_files(Provision *p, const char *name, ClientFiles *ret) {
        int r;

        r = client_paths(name, &ret->key_rel, &ret->cert_rel);
        if (r < 0)
                return r;
        ret->key_path = tls_path(p, ret->key_rel);
        ret->cert_path = tls_path(p, ret->cert_rel);
        if (!ret->key_path || !ret->cert_path || asprintf(&ret->revoked_path, "%s.revoked", ret->cert_path) < 0)
                return -ENOMEM;
        return 0;
}

/* Issues NAME's certificate for public_key (a request's, signed on the
 * client: no key is written here) or, when it is NULL, for a new key made
 * and written here. */
static int issue_client(Provision *p, const char *name, EVP_PKEY *public_key, unsigned days, bool reissue,
                        char **ret_detail) {
        _cleanup_(client_files_done) ClientFiles f = {};
        _cleanup_free_ char *pem = NULL, *uri = NULL;
        _cleanup_key_ EVP_PKEY *key = NULL, *ca_key = NULL;
        _cleanup_x509_ X509 *cert = NULL, *ca = NULL;
        size_t n;
        int r;

        /* Shorter than [tls] cert_days when asked, never longer. */
        if (days == 0)
                days = p->config->cert_days;
        if (days > p->config->cert_days)
                return detail_set(ret_detail, -EPERM, "%u days is longer than [tls] cert_days (%u)", days,
                                  p->config->cert_days);
        r = client_files(p, name, &f);
        if (r < 0)
                return r;
        if (access(f.cert_path, F_OK) == 0)
                return detail_set(ret_detail, -EEXIST, "%s exists: revoke it first to reissue", f.cert_path);
        /* A revoked name gets a new credential only when asked in so many
         * words: a script re-running issue-client must not undo a revoke. */
        if (!reissue && access(f.revoked_path, F_OK) == 0)
                return detail_set(ret_detail, -EPERM,
                                  "%s's last certificate was revoked (%s): not reissued; pass --reissue to issue "
                                  "a new certificate for the same name",
                                  name, f.revoked_path);
        r = load_issuer(p, pki_item("client"), &ca_key, &ca);
        if (r < 0)
                return detail_set(ret_detail, r, "client CA: %s (run regvisor provision first)", strerror(-r));
        if (!public_key) {
                r = new_key_file(p, f.key_rel, 0600, OWNER_ROOT, &key);
                if (r < 0)
                        return r;
        }
        r = crl_uri(p->config, "client-ca", &uri);
        if (r < 0)
                return r;
        /* Subject, validity, key usage and CRL point are this host's
         * choice: from a request only its public key is used. */
        r = pki_issue_client(ca, ca_key, public_key ?: key, p->config->organization, name, days, uri, &cert);
        if (r < 0)
                return r;
        r = pki_cert_to_pem(cert, &pem, &n);
        if (r < 0)
                return r;
        r = write_pem(p, f.cert_rel, pem, n, 0644, OWNER_ROOT);
        if (r < 0)
                return r;
        return detail_set(ret_detail, 0, "%s", f.cert_path);
}

int pki_files_issue_client(Provision *p, const char *name, bool reissue, char **ret_detail) {
        return issue_client(p, name, NULL, 0, reissue, ret_detail);
}

int pki_files_sign_request(Provision *p, const char *csr_pem, size_t size, const char *name, unsigned days,
                           bool reissue, char **ret_name, char **ret_detail) {
        _cleanup_(X509_REQ_freep) X509_REQ *req = NULL;
        _cleanup_key_ EVP_PKEY *key = NULL;
        _cleanup_free_ char *cn = NULL;
        int r;

        r = pki_csr_from_pem(csr_pem, size, &req);
        if (r >= 0)
                r = pki_csr_verify(req, &key, &cn);
        if (r < 0) {
                if (ret_detail && asprintf(ret_detail, "not a certificate request whose signature verifies "
                                                       "with its own key and that names one CN") < 0)
                        *ret_detail = NULL;
                return -EBADMSG;
        }
        if (!name)
                name = cn;
        if (!config_client_name_valid(name) || !streq(name, cn)) {
                if (ret_detail && asprintf(ret_detail, "the request names '%s'%s%s%s", cn,
                                           streq(name, cn) ? ": not a client name ([a-z0-9._-], 1-64)" : ", not '",
                                           streq(name, cn) ? "" : name, streq(name, cn) ? "" : "'") < 0)
                        *ret_detail = NULL;
                return -EPERM;
        }
        /* Only the key types this host issues (the [tls] choices). */
        if (pki_key_is_type(key, KEY_EC_P256) != 1 && pki_key_is_type(key, KEY_RSA_4096) != 1) {
                if (ret_detail && asprintf(ret_detail, "the request's key is neither EC P-256 nor RSA 4096") < 0)
                        *ret_detail = NULL;
                return -EPERM;
        }
        r = issue_client(p, name, key, days, reissue, ret_detail);
        if (r < 0)
                return r;
        if (ret_name) {
                *ret_name = strdup(name);
                if (!*ret_name)
                        return -ENOMEM;
        }
        return 0;
}

/* One clients/ entry: NAME.crt, or NAME.crt.revoked (revoked by its name). */
static int list_one(const Provision *p, const char *file, X509_CRL *crl, PkiClient *ret) {
        _cleanup_x509_ X509 *cert = NULL;
        _cleanup_free_ char *rel = NULL, *name = NULL;
        size_t len = strlen(file);
        bool revoked_file = len > 12 && streq(file + len - 12, ".crt.revoked");
        int r;

        if (!revoked_file && !(len > 4 && streq(file + len - 4, ".crt")))
                return 0;
        name = strndup(file, len - (revoked_file ? 12 : 4));
        if (!name || asprintf(&rel, "clients/%s", file) < 0)
                return -ENOMEM;
        if (!config_client_name_valid(name))
                return 0; /* ca.crt, and nothing pki issue-client made */
        r = load_cert(p, rel, &cert);
        if (r < 0)
                return r;
        r = pki_cert_not_after(cert, &ret->not_after);
        if (r < 0)
                return r;
        r = pki_serial_hex(X509_get0_serialNumber(cert), &ret->serial);
        if (r < 0)
                return r;
        /* The subject's CN is what the proxy logs and limits by. */
        r = pki_cert_common_name(cert, &ret->cn);
        if (r < 0)
                return r;
        ret->revoked = revoked_file || (crl && pki_crl_has_serial(crl, X509_get0_serialNumber(cert)) > 0);
        ret->name = TAKE_PTR(name);
        return 1;
}

static int client_cmp(const void *a, const void *b) {
        return strcmp(((const PkiClient *) a)->name, ((const PkiClient *) b)->name);
}

void pki_clients_free(PkiClient *c, size_t n) {
        for (size_t i = 0; i < n; i++) {
                free(c[i].name);
                free(c[i].serial);
                free(c[i].cn);
        }
        free(c);
}

int pki_files_list_clients(Provision *p, PkiClient **ret, size_t *ret_n, char **ret_detail) {
        _cleanup_free_ char *dir = tls_path(p, "clients");
        _cleanup_x509_ X509 *ca = NULL;
        _cleanup_crl_ X509_CRL *crl = NULL;
        char reason[sizeof ((PkiVerdict *) NULL)->reason] = "";
        PkiClient *list = NULL;
        size_t n = 0, cap = 0;
        struct dirent *de;
        DIR *d;
        int r = 0;

        if (!dir)
                return -ENOMEM;
        /* Without a genuine CRL, only the .revoked names say who is revoked:
         * the caller is told why (reason). */
        if (load_cert(p, TLS_CLIENT_CA_CERT, &ca) >= 0 && load_genuine_crl(p, pki_item("crl"), ca, &crl, reason, sizeof reason) < 0 &&
            reason[0] && ret_detail && !(*ret_detail = strdup(reason)))
                return -ENOMEM;
        d = opendir(dir);
        if (!d) {
                r = negative_errno();
                if (ret_detail && asprintf(ret_detail, "%s: %s (run regvisor provision first)", dir, strerror(-r)) < 0)
                        *ret_detail = NULL;
                return r;
        }
        while (r >= 0 && (de = readdir(d))) {
                if (n == cap) {
                        PkiClient *bigger = reallocarray(list, cap ? cap * 2 : 16, sizeof *list);
                        if (!bigger) {
                                r = -ENOMEM;
                                break;
                        }
                        list = bigger;
                        cap = cap ? cap * 2 : 16;
                }
                list[n] = (PkiClient){};
                r = list_one(p, de->d_name, crl, &list[n]);
                if (r > 0)
                        n++;
                else if (r < 0 && ret_detail) {
                        free(*ret_detail);
                        if (asprintf(ret_detail, "%s/%s: %s", dir, de->d_name, strerror(-r)) < 0)
                                *ret_detail = NULL;
                }
        }
        closedir(d);
        if (r < 0) {
                pki_clients_free(list, n);
                return r;
        }
        if (n > 0)
                qsort(list, n, sizeof *list, client_cmp);
        *ret = list;
        *ret_n = n;
        return 0;
}

/* NAME's files and its current certificate; when there is none but a
 * .revoked one, *ret_detail adds if_revoked. */
static int client_current(Provision *p, const char *name, ClientFiles *f, X509 **ret_cert, const char *if_revoked,
                          char **ret_detail) {
        int r;

        r = client_files(p, name, f);
        if (r < 0)
                return r;
        r = load_cert(p, f->cert_rel, ret_cert);
        if (r < 0)
                return detail_set(ret_detail, r, "%s: %s%s", f->cert_path, strerror(-r),
                                  r == -ENOENT && access(f->revoked_path, F_OK) == 0 ? if_revoked : "");
        return 0;
}

int pki_files_revoke_client(Provision *p, const char *name, char **ret_detail) {
        _cleanup_(client_files_done) ClientFiles f = {};
        _cleanup_x509_ X509 *cert = NULL;
        char reason[sizeof ((PkiVerdict *) NULL)->reason] = "";
        long number;
        int r;

        r = client_current(p, name, &f, &cert, " (already revoked: see its .revoked)", ret_detail);
        if (r < 0)
                return r;
        /* The CRL first: once it is written the certificate is refused,
         * whatever happens to the files below. A CRL that is not genuine
         * stops everything here, untouched. */
        r = write_next_crl(p, pki_item("crl"), X509_get0_serialNumber(cert), reason, sizeof reason, &number);
        if (r < 0)
                return detail_set(ret_detail, r, "%s", reason[0] ? reason : strerror(-r));
        if (rename(f.cert_path, f.revoked_path) < 0)
                return negative_errno();
        if (unlink(f.key_path) < 0 && errno != ENOENT)
                return negative_errno();
        return detail_set(ret_detail, 0, "%s revoked (CRL number %ld%s%s)", name, number, reason[0] ? ", " : "",
                          reason);
}

/* ---- renewal (regvisor pki renew, regvisor run) -------------------------- */

/* "SERIAL, valid until DATE" of cert into buf. */
static void describe_cert(X509 *cert, char *buf, size_t size) {
        _cleanup_free_ char *serial = NULL;
        char when[32] = "?";
        time_t t;
        struct tm tm;

        (void) pki_serial_hex(X509_get0_serialNumber(cert), &serial);
        if (pki_cert_not_after(cert, &t) >= 0 && gmtime_r(&t, &tm))
                (void) strftime(when, sizeof when, "%Y-%m-%d %H:%M:%S UTC", &tm);
        (void) snprintf(buf, size, "serial %s, valid until %s", serial ?: "?", when);
}

int pki_files_renew_client(Provision *p, const char *name, bool rekey, char **ret_detail) {
        _cleanup_(client_files_done) ClientFiles f = {};
        _cleanup_free_ char *uri = NULL;
        _cleanup_key_ EVP_PKEY *key = NULL, *ca_key = NULL;
        _cleanup_x509_ X509 *old = NULL, *cert = NULL, *ca = NULL;
        char reason[sizeof ((PkiVerdict *) NULL)->reason] = "", was[160], now[160];
        int r;

        r = client_current(p, name, &f, &old, " (revoked: 'pki issue-client --reissue' makes a new one)",
                           ret_detail);
        if (r < 0)
                return r;
        /* A revocation is undone only by issue-client --reissue, on purpose. */
        r = client_revoked(p, name, reason, sizeof reason);
        if (r != 0)
                return detail_set(ret_detail, r < 0 ? r : -EPERM, "%s",
                                  r < 0 ? reason
                                        : "revoked on the CRL: not renewed ('pki issue-client --reissue' makes a "
                                          "new one)");
        r = load_issuer(p, pki_item("client"), &ca_key, &ca);
        if (r < 0)
                return detail_set(ret_detail, r, "client CA: %s (run regvisor provision first)", strerror(-r));
        if (rekey) {
                /* A key made on the client (pki sign) stays there: a new one
                 * is that machine's to make (client request, pki sign). */
                if (access(f.key_path, F_OK) < 0)
                        return detail_set(ret_detail, -EPERM,
                                          "%s: no key here (the client made its own: run 'regvisor client request "
                                          "%s' there and 'pki sign' here instead)",
                                          f.key_path, name);
                r = pki_generate_key(p->config->key_type, &key);
                if (r < 0)
                        return r;
        } else if (!(key = EVP_PKEY_dup(X509_get0_pubkey(old)))) {
                /* The certificate's own public key: a signed client has no
                 * key file here, and needs none to be renewed. */
                return -ENOMEM;
        }
        r = crl_uri(p->config, "client-ca", &uri);
        if (r < 0)
                return r;
        r = pki_issue_client(ca, ca_key, key, p->config->organization, name, p->config->cert_days, uri, &cert);
        if (r < 0)
                return r;
        /* The key before its certificate; both are only read once exported. */
        if (rekey) {
                r = write_key(p, f.key_rel, key, 0600, OWNER_ROOT);
                if (r < 0)
                        return r;
        }
        r = write_cert(p, f.cert_rel, cert);
        if (r < 0)
                return r;
        describe_cert(old, was, sizeof was);
        describe_cert(cert, now, sizeof now);
        return detail_set(ret_detail, 0, "%s: %s (%s); the previous one (%s) is not revoked: it works until it "
                          "expires ('pki revoke' retires the name, not one certificate)",
                          f.cert_path, now, rekey ? "new key" : "same key", was);
}

/* The server certificate again, for its key (a new one when rekey), with
 * the names and CRL distribution point of the configuration, as provision
 * makes it. Without rekey the key file is not touched (not even its mode:
 * the service's sandbox may not chown it). */
static int renew_server(Provision *p, bool rekey, char *what, size_t size) {
        const PkiItem *it = pki_item("server-cert");
        _cleanup_key_ EVP_PKEY *key = NULL;
        _cleanup_x509_ X509 *old = NULL, *cert = NULL;
        char was[160] = "none", now[160];
        int r;

        if (load_cert(p, it->cert, &old) >= 0)
                describe_cert(old, was, sizeof was);
        if (rekey)
                r = apply_cert_item(p, it, PKI_NEW_KEY);
        else {
                r = load_key(p, it->key, &key);
                if (r >= 0)
                        r = issue(p, it, key, &cert);
                if (r >= 0)
                        r = write_cert(p, it->cert, cert);
        }
        if (r < 0)
                return r;
        X509_free(TAKE_PTR(cert));
        if (load_cert(p, it->cert, &cert) < 0)
                return -EIO;
        describe_cert(cert, now, sizeof now);
        (void) snprintf(what, size, "server certificate: %s (%s; was %s)", now, rekey ? "new key" : "same key",
                        was);
        return 0;
}

int pki_files_renew_server(Provision *p, bool rekey, char **ret_detail) {
        _cleanup_free_ char *path = tls_path(p, TLS_SERVER_CERT);
        char what[512];
        int r;

        if (!path)
                return -ENOMEM;
        r = renew_server(p, rekey, what, sizeof what);
        if (r < 0)
                return detail_set(ret_detail, r, "%s: %s", path, strerror(-r));
        return detail_set(ret_detail, 0, "%s", what);
}

/* Renews one CRL item: when due (or always when force). 1 renewed, 0 not
 * due, negative errno with what saying why. */
static int renew_crl(Provision *p, const char *name, time_t now, bool force, char *what, size_t size) {
        const PkiItem *it = pki_item(name);
        _cleanup_key_ EVP_PKEY *ca_key = NULL;
        _cleanup_x509_ X509 *ca = NULL;
        _cleanup_crl_ X509_CRL *crl = NULL;
        char reason[sizeof ((PkiVerdict *) NULL)->reason] = "";
        long number;
        int r;

        r = load_issuer(p, it, &ca_key, &ca);
        if (r >= 0)
                r = load_genuine_crl(p, it, ca, &crl, reason, sizeof reason);
        if (r < 0 && r != -ENOENT) {
                (void) snprintf(what, size, "%s", reason[0] ? reason : strerror(-r));
                return r;
        }
        if (r >= 0 && !force && !crl_due(p->config, it, crl, now))
                return 0;
        r = write_next_crl(p, it, NULL, reason, sizeof reason, &number);
        if (r < 0) {
                (void) snprintf(what, size, "%s", reason[0] ? reason : strerror(-r));
                return r;
        }
        (void) snprintf(what, size, "%s CA's CRL: number %ld, nextUpdate in %us",
                        streq(name, "crl") ? "client" : "server", number, config_crl_validity(p->config));
        return 1;
}

int pki_files_renew_crls(Provision *p, char **ret_detail) {
        char a[512], b[512];
        int r;

        r = renew_crl(p, "server-crl", time(NULL), true, a, sizeof a);
        if (r < 0)
                return detail_set(ret_detail, r, "%s", a);
        r = renew_crl(p, "crl", time(NULL), true, b, sizeof b);
        if (r < 0)
                return detail_set(ret_detail, r, "%s", b);
        return detail_set(ret_detail, 0, "%s; %s", a, b);
}

int pki_files_renew_due(Provision *p, time_t now, char **ret_detail) {
        static const char *const crls[] = {"server-crl", "crl"};
        _cleanup_x509_ X509 *cert = NULL;
        char done[3][512] = {"", "", ""};
        unsigned n = 0;
        time_t end;
        int r;

        r = load_cert(p, TLS_SERVER_CERT, &cert);
        if (r >= 0)
                r = pki_cert_not_after(cert, &end);
        if (r < 0)
                return detail_set(ret_detail, r, "server certificate: %s (provision makes it)", strerror(-r));
        if (end - now <= renew_margin(p->config, "server-cert")) {
                r = renew_server(p, false, done[0], sizeof done[0]);
                if (r < 0)
                        return detail_set(ret_detail, r, "server certificate: %s", strerror(-r));
                n++;
        }
        for (size_t i = 0; i < ELEMENTSOF(crls); i++) {
                r = renew_crl(p, crls[i], now, false, done[1 + i], sizeof done[1 + i]);
                if (r < 0)
                        return detail_set(ret_detail, r, "%s", done[1 + i]);
                n += (unsigned) r;
        }
        if (n == 0)
                return 0;
        r = detail_set(ret_detail, 0, "%s%s%s%s%s", done[0], done[0][0] && done[1][0] ? "; " : "", done[1],
                       (done[0][0] || done[1][0]) && done[2][0] ? "; " : "", done[2]);
        return r < 0 ? r : (int) n;
}

/* ---- the tree's certificates and CRLs (regvisor pki list) ---------------- */

static const struct {
        const char *what; /* as `pki list` names it */
        const char *item; /* pki_items[] row */
} tree_entries[PKI_TREE_ENTRIES] = {
        {"server-ca", "server-ca"},
        {"server", "server-cert"},
        {"client-ca", "client-ca"},
        {"server-ca-crl", "server-crl"},
        {"client-ca-crl", "crl"},
};

static int tree_entry(const Provision *p, const PkiItem *it, PkiTreeEntry *e) {
        _cleanup_x509_ X509 *cert = NULL, *ca = NULL;
        _cleanup_crl_ X509_CRL *crl = NULL;
        char reason[sizeof ((PkiVerdict *) NULL)->reason] = "";
        int r;

        if (it->key) {
                r = load_cert(p, it->cert, &cert);
                if (r >= 0)
                        r = pki_cert_not_before(cert, &e->not_before);
                if (r >= 0)
                        r = pki_cert_not_after(cert, &e->not_after);
                if (r >= 0)
                        r = pki_serial_hex(X509_get0_serialNumber(cert), &e->serial);
                if (r >= 0)
                        r = pki_cert_common_name(cert, &e->cn);
                return r;
        }
        /* A CRL is shown only when it is its CA's: dates of a forged one
         * would mislead. */
        e->is_crl = true;
        r = load_cert(p, pki_item(it->issuer)->cert, &ca);
        if (r >= 0)
                r = load_genuine_crl(p, it, ca, &crl, reason, sizeof reason);
        if (r >= 0)
                r = pki_crl_dates(crl, &e->not_before, &e->not_after);
        if (r >= 0)
                r = pki_crl_number(crl, &e->crl_number);
        if (r >= 0) {
                /* sk_..._num() of a CRL that revokes nothing (no list at
                 * all) is -1, not 0. */
                int n = sk_X509_REVOKED_num(X509_CRL_get_REVOKED(crl));
                e->n_revoked = n > 0 ? (unsigned) n : 0;
        }
        if (r < 0 && reason[0])
                e->error = strdup(reason);
        return r;
}

int pki_files_list_tree(Provision *p, PkiTreeEntry ret[static PKI_TREE_ENTRIES]) {
        for (size_t i = 0; i < PKI_TREE_ENTRIES; i++) {
                const PkiItem *it = pki_item(tree_entries[i].item);
                PkiTreeEntry *e = &ret[i];
                int r;

                *e = (PkiTreeEntry){.what = tree_entries[i].what, .path = tls_path(p, it->cert)};
                if (!e->path)
                        return -ENOMEM;
                e->margin = renew_margin(p->config, it->name);
                r = tree_entry(p, it, e);
                if (r < 0 && !e->error && asprintf(&e->error, "%s", strerror(-r)) < 0)
                        return -ENOMEM;
        }
        return 0;
}

void pki_tree_done(PkiTreeEntry e[static PKI_TREE_ENTRIES]) {
        for (size_t i = 0; i < PKI_TREE_ENTRIES; i++) {
                free(e[i].path);
                free(e[i].serial);
                free(e[i].cn);
                free(e[i].error);
        }
}

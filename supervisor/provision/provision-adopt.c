/* SPDX-License-Identifier: MIT */
/*
 * `regvisor provision --adopt`: taking over a host set up by hand with the
 * install guide. The guide's layout is regvisor's own in most places (the
 * certificate tree in /etc/registry/certs with the same file names, the
 * storage in /var/lib/registry owned by the service user, podman's state in
 * /var/tmp/podman-UID), so adopting is mostly keeping: the PKI rows accept
 * its CAs and keys as they are (provision-pki.c), and only three rows here
 * are new:
 *
 *   guide-layout         (first) what the guide left, checked before
 *                        anything changes: fails closed when it is half
 *                        there or inconsistent, and a plain provision on
 *                        such a host refuses (it would not keep it).
 *   guide-registry-unit  the guide's registry.service user unit stopped,
 *                        disabled and set aside (regvisor's replaces it).
 *   guide-proxy          what held 443/4443: the guide's
 *                        registry-proxy.service stopped and disabled, and
 *                        every nginx site that listens on either port
 *                        disabled (nginx.service reloaded when it runs);
 *                        other sites are left alone.
 *
 * The two last come right before regvisor's own units are loaded and
 * started, so a run that fails earlier leaves the guide's registry serving.
 */
#include <dirent.h>
#include <errno.h>
#include <ftw.h>
#include <openssl/err.h>
#include <openssl/x509.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "bus.h"
#include "detail.h"
#include "fileio.h"
#include "macro.h"
#include "openssl-util.h"
#include "paths.h"
#include "pki.h"
#include "process.h"
#include "provision.h"

/* Paths on the host: every access goes through provision_path(), so that
 * a --root run looks below its root only, even in the rows it skips (they
 * change the host) should one run there; messages name the host path. */
#define GUIDE_UNIT "registry.service"
#define GUIDE_UNIT_PATH "/etc/systemd/user/registry.service"
/* Where the guide's unit goes: a name systemd does not load. */
#define GUIDE_UNIT_KEPT GUIDE_UNIT_PATH ".adopted"
#define GUIDE_PROXY_UNIT "registry-proxy.service"
#define NGINX_UNIT "nginx.service"
#define NGINX_SITES_ENABLED "/etc/nginx/sites-enabled"
#define NGINX_SITES_AVAILABLE "/etc/nginx/sites-available"
#define NGINX_CONF_D "/etc/nginx/conf.d"
/* A conf.d file is read when it ends in .conf: this suffix disables it. */
#define NGINX_DISABLED_SUFFIX ".adopted-by-regvisor"
#define NGINX_CONF_MAX (1024 * 1024)
#define UNIT_TIMEOUT_USEC (120ULL * 1000000ULL)
/* What guide-proxy disabled, one "unit NAME", "link PATH TARGET" or "move
 * FROM TO" a line (tab-separated), for deprovision to enable again. */
#define ADOPTED_RECORD REGVISOR_ETC_DIR "/adopted-guide"

/* The ports regvisor's proxy takes over. */
static const unsigned held_ports[] = {443, 4443};

/* ---- nginx ---------------------------------------------------------------- */

/* The port of a listen directive's first argument: "443", "[::]:443",
 * "0.0.0.0:4443", "*:443", a host name alone (80), "unix:PATH" (0). */
static unsigned listen_port(const char *arg, size_t n) {
        const char *colon = NULL, *port = arg;
        unsigned v = 0;

        if (n >= 5 && strneq(arg, "unix:", 5))
                return 0;
        for (size_t i = 0; i < n; i++)
                if (arg[i] == ':')
                        colon = arg + i;
                else if (arg[i] == ']')
                        colon = NULL; /* [::1] alone: no port */
        if (colon)
                port = colon + 1;
        if (port == arg + n)
                return 0;
        for (const char *c = port; c < arg + n; c++) {
                if (*c < '0' || *c > '9')
                        return colon ? 0 : 80; /* a host name: nginx's default port */
                v = v * 10 + (unsigned) (*c - '0');
                if (v > 65535)
                        return 0;
        }
        return v;
}

int nginx_conf_listen_ports(const char *text, unsigned *ret_ports, size_t max, size_t *ret_n) {
        bool statement_start = true;
        size_t n = 0;

        for (const char *c = text; *c;) {
                if (*c == '#') {
                        c += strcspn(c, "\n");
                        continue;
                }
                if (*c == ';' || *c == '{' || *c == '}') {
                        statement_start = true;
                        c++;
                        continue;
                }
                if (strchr(" \t\r\n", *c)) {
                        c++;
                        continue;
                }
                if (statement_start && strneq(c, "listen", 6) && c[6] && strchr(" \t\r\n", c[6])) {
                        const char *arg = c + 6 + strspn(c + 6, " \t\r\n");
                        size_t len = strcspn(arg, " \t\r\n;{}#");
                        unsigned port = listen_port(arg, len);

                        if (port > 0 && n < max)
                                ret_ports[n++] = port;
                        c = arg + len;
                        statement_start = false;
                        continue;
                }
                statement_start = false;
                c++;
        }
        *ret_n = n;
        return 0;
}

/* 1 when the nginx file at path listens on 443 or 4443, 0 when not. */
static int nginx_file_holds_ports(const char *path) {
        _cleanup_free_ char *text = NULL, *real = realpath(path, NULL); /* sites-enabled/ holds links */
        unsigned ports[64];
        size_t n;
        int r;

        if (!real)
                return negative_errno();
        r = read_file(real, NGINX_CONF_MAX, &text, NULL);
        if (r < 0)
                return r;
        r = nginx_conf_listen_ports(text, ports, ELEMENTSOF(ports), &n);
        if (r < 0)
                return r;
        for (size_t i = 0; i < n; i++)
                for (size_t j = 0; j < ELEMENTSOF(held_ports); j++)
                        if (ports[i] == held_ports[j])
                                return 1;
        return 0;
}

/* An enabled nginx site that listens on a port regvisor needs. */
typedef struct {
        char *path;    /* in sites-enabled or conf.d */
        bool conf_d;
        bool symlink;  /* sites-enabled/NAME -> sites-available/NAME */
} HeldSite;

static void held_sites_free(HeldSite *s, size_t n) {
        for (size_t i = 0; i < n; i++)
                free(s[i].path);
        free(s);
}

/* Every enabled nginx site below p's root that listens on 443 or 4443. */
static int find_held_sites(const Provision *p, HeldSite **ret, size_t *ret_n) {
        static const char *const dirs[] = {NGINX_SITES_ENABLED, NGINX_CONF_D};
        HeldSite *sites = NULL;
        size_t n = 0;
        int r = 0;

        for (size_t i = 0; i < ELEMENTSOF(dirs) && r >= 0; i++) {
                _cleanup_free_ char *dir = provision_path(p, dirs[i]);
                struct dirent *de;
                DIR *d;

                if (!dir) {
                        r = -ENOMEM;
                        break;
                }
                d = opendir(dir);
                if (!d) {
                        if (errno != ENOENT)
                                r = negative_errno();
                        continue;
                }
                while (r >= 0 && (de = readdir(d))) {
                        bool conf_d = i == 1;
                        size_t len = strlen(de->d_name);
                        char *path;
                        struct stat st;
                        HeldSite *more;

                        if (de->d_name[0] == '.')
                                continue;
                        /* conf.d: nginx reads *.conf only. */
                        if (conf_d && (len < 5 || !streq(de->d_name + len - 5, ".conf")))
                                continue;
                        if (asprintf(&path, "%s/%s", dir, de->d_name) < 0) {
                                r = -ENOMEM;
                                break;
                        }
                        if (lstat(path, &st) < 0 || stat(path, &st) < 0 || !S_ISREG(st.st_mode) ||
                            nginx_file_holds_ports(path) <= 0) {
                                free(path);
                                continue;
                        }
                        more = realloc(sites, (n + 1) * sizeof *sites);
                        if (!more) {
                                free(path);
                                r = -ENOMEM;
                                break;
                        }
                        sites = more;
                        (void) lstat(path, &st);
                        sites[n++] = (HeldSite){path, conf_d, S_ISLNK(st.st_mode)};
                }
                closedir(d);
        }
        if (r < 0) {
                held_sites_free(sites, n);
                return r;
        }
        *ret = sites;
        *ret_n = n;
        return 0;
}

/* The site no longer enabled: a sites-enabled link removed (its
 * sites-available file stays), a file moved to sites-available, a conf.d
 * file renamed so that its name no longer ends in .conf. */
static int disable_site(const Provision *p, const HeldSite *s, FILE *record, char **ret_detail) {
        _cleanup_free_ char *to = NULL, *avail = NULL;
        const char *base = strrchr(s->path, '/') + 1;
        struct stat st;

        if (s->symlink && !s->conf_d) {
                char target[4096];
                ssize_t n = readlink(s->path, target, sizeof target - 1);

                if (n < 0)
                        return detail_set(ret_detail, negative_errno(), "%s: %m", s->path);
                target[n] = 0;
                fprintf(record, "link\t%s\t%s\n", s->path, target);
                if (fflush(record) != 0)
                        return -EIO;
                return unlink(s->path) < 0 ? detail_set(ret_detail, negative_errno(), "%s: %m", s->path) : 0;
        }
        if (s->conf_d) {
                if (asprintf(&to, "%s%s", s->path, NGINX_DISABLED_SUFFIX) < 0)
                        return -ENOMEM;
        } else {
                avail = provision_path(p, NGINX_SITES_AVAILABLE);
                if (!avail || asprintf(&to, "%s/%s", avail, base) < 0)
                        return -ENOMEM;
        }
        if (lstat(to, &st) == 0)
                return detail_set(ret_detail, -EEXIST, "cannot disable %s: %s exists", s->path, to);
        fprintf(record, "move\t%s\t%s\n", s->path, to);
        if (fflush(record) != 0)
                return -EIO;
        if (rename(s->path, to) < 0)
                return detail_set(ret_detail, negative_errno(), "%s -> %s: %m", s->path, to);
        return 0;
}

/* ---- systemd ------------------------------------------------------------- */

/* Whether a system unit is there and running or enabled. */
static int system_unit_held(Provision *p, const char *unit, bool *ret_running, bool *ret_enabled) {
        _cleanup_free_ char *load = NULL, *active = NULL, *file = NULL;
        sd_bus *bus;
        int r;

        *ret_running = *ret_enabled = false;
        r = provision_system_bus(p, &bus);
        if (r >= 0)
                r = bus_get_unit_string(bus, unit, "LoadState", &load, NULL);
        if (r < 0 || streq(load, "not-found") || streq(load, "masked"))
                return r < 0 ? r : 0;
        r = bus_get_unit_string(bus, unit, "ActiveState", &active, NULL);
        if (r >= 0)
                r = bus_get_unit_string(bus, unit, "UnitFileState", &file, NULL);
        if (r < 0)
                return r;
        *ret_running = !streq(active, "inactive") && !streq(active, "failed");
        *ret_enabled = streq(file, "enabled") || streq(file, "enabled-runtime");
        return *ret_running || *ret_enabled;
}

/* ---- what the guide left ---------------------------------------------- */

typedef struct {
        bool unit;          /* GUIDE_UNIT_PATH */
        bool proxy_running, proxy_enabled;
        HeldSite *sites;
        size_t n_sites;
} Guide;

static void guide_done(Guide *g) {
        held_sites_free(g->sites, g->n_sites);
        *g = (Guide){};
}

static bool guide_present(const Guide *g) {
        return g->unit || g->proxy_running || g->proxy_enabled || g->n_sites > 0;
}

static int guide_find(Provision *p, Guide *g) {
        _cleanup_free_ char *unit = provision_path(p, GUIDE_UNIT_PATH);
        struct stat st;
        int r;

        *g = (Guide){};
        if (!unit)
                return -ENOMEM;
        g->unit = lstat(unit, &st) == 0;
        if (!p->root) {
                r = system_unit_held(p, GUIDE_PROXY_UNIT, &g->proxy_running, &g->proxy_enabled);
                if (r < 0)
                        return r;
        }
        return find_held_sites(p, &g->sites, &g->n_sites);
}

/* What was found, for a message: "X, Y and Z". */
static int guide_describe(const Guide *g, char **ret) {
        _cleanup_free_ char *s = NULL;
        char *more;

        if (g->unit && asprintf(&s, "%s", GUIDE_UNIT_PATH) < 0)
                return -ENOMEM;
        if (g->proxy_running || g->proxy_enabled) {
                if (asprintf(&more, "%s%s%s (%s)", s ?: "", s ? ", " : "", GUIDE_PROXY_UNIT,
                             g->proxy_running ? "running" : "enabled") < 0)
                        return -ENOMEM;
                free(s);
                s = more;
        }
        for (size_t i = 0; i < g->n_sites; i++) {
                if (asprintf(&more, "%s%snginx site %s on 443/4443", s ?: "", s ? ", " : "", g->sites[i].path) < 0)
                        return -ENOMEM;
                free(s);
                s = more;
        }
        *ret = TAKE_PTR(s);
        return 0;
}

/* The guide's certificate tree, in regvisor's names (paths.h): key and
 * certificate of each CA and of the server. */
static const struct {
        const char *what, *key, *cert;
} guide_pki[] = {
        {"server CA", TLS_SERVER_CA_KEY, TLS_SERVER_CA_CERT},
        {"server", TLS_SERVER_KEY, TLS_SERVER_CERT},
        {"client CA", TLS_CLIENT_CA_KEY, TLS_CLIENT_CA_CERT},
};

#define _cleanup_key_ _cleanup_(EVP_PKEY_freep)
#define _cleanup_x509_ _cleanup_(X509_freep)

static const char *key_type_name(KeyType t) {
        return t == KEY_RSA_4096 ? "rsa-4096" : "ec-p256";
}

/* Every client certificate in clients/ (not the CA, not a revoked one)
 * must be the client CA's: the names in *names ("a, b"). */
static int check_clients(Provision *p, X509 *client_ca, char **names, char **ret_detail) {
        _cleanup_free_ char *dir = NULL, *rel_dir = NULL;
        struct dirent *de;
        DIR *d;
        int r = 0;

        if (asprintf(&rel_dir, "%s/clients", p->config->tls_dir) < 0 || !(dir = provision_path(p, rel_dir)))
                return -ENOMEM;
        d = opendir(dir);
        if (!d)
                return detail_set(ret_detail, negative_errno(), "%s: %m", dir);
        while (r >= 0 && (de = readdir(d))) {
                _cleanup_x509_ X509 *cert = NULL;
                _cleanup_free_ char *rel = NULL;
                size_t len = strlen(de->d_name);
                char *more;

                if (len <= 4 || !streq(de->d_name + len - 4, ".crt") || streq(de->d_name, "ca.crt"))
                        continue;
                if (asprintf(&rel, "clients/%s", de->d_name) < 0) {
                        r = -ENOMEM;
                        break;
                }
                r = provision_pki_load_cert(p, rel, &cert);
                if (r < 0) {
                        r = detail_set(ret_detail, r, "%s/%s: %s", dir, de->d_name,
                                       r == -EBADMSG ? "does not parse as a PEM certificate" : strerror(-r));
                        break;
                }
                if (X509_verify(cert, X509_get0_pubkey(client_ca)) != 1) {
                        ERR_clear_error();
                        r = detail_set(ret_detail, -EKEYREJECTED,
                                       "%s/%s is not signed by the client CA (%s): it would stop working; move it "
                                       "away or restore the CA it belongs to",
                                       dir, de->d_name, TLS_CLIENT_CA_CERT);
                        break;
                }
                if (asprintf(&more, "%s%s%.*s", *names ?: "", *names ? ", " : "", (int) (len - 4), de->d_name) < 0) {
                        r = -ENOMEM;
                        break;
                }
                free(*names);
                *names = more;
        }
        closedir(d);
        return r;
}

/* The guide's tree complete and consistent, its keys of [tls] key_type,
 * its storage the service user's. *ret_detail: what is kept. */
static int check_guide_material(Provision *p, char **ret_detail) {
        const Config *c = p->config;
        _cleanup_free_ char *missing = NULL, *clients = NULL, *storage = NULL;
        _cleanup_x509_ X509 *server_ca = NULL, *server = NULL, *client_ca = NULL;
        X509 **certs[] = {&server_ca, &server, &client_ca};
        struct passwd *pw;
        struct stat st;
        bool names_match;
        int r;

        /* Half there: name everything that is missing at once. */
        for (size_t i = 0; i < ELEMENTSOF(guide_pki); i++)
                for (size_t k = 0; k < 2; k++) {
                        const char *rel = k ? guide_pki[i].cert : guide_pki[i].key;
                        _cleanup_free_ char *abs = NULL, *full = NULL;
                        char *more;

                        if (asprintf(&abs, "%s/%s", c->tls_dir, rel) < 0 || !(full = provision_path(p, abs)))
                                return -ENOMEM;
                        if (lstat(full, &st) == 0)
                                continue;
                        if (asprintf(&more, "%s%s%s", missing ?: "", missing ? ", " : "", abs) < 0)
                                return -ENOMEM;
                        free(missing);
                        missing = more;
                }
        if (missing)
                return detail_set(ret_detail, -ENOENT,
                                  "the guide's installation is incomplete: missing %s; restore them (from a "
                                  "backup) before adopting: new CAs would cut off every client",
                                  missing);

        for (size_t i = 0; i < ELEMENTSOF(guide_pki); i++) {
                _cleanup_key_ EVP_PKEY *key = NULL;

                r = provision_pki_load_key(p, guide_pki[i].key, &key);
                if (r < 0)
                        return detail_set(ret_detail, r, "%s/%s: %s", c->tls_dir, guide_pki[i].key,
                                          r == -EBADMSG ? "does not parse as an unencrypted PEM private key"
                                                        : strerror(-r));
                r = provision_pki_load_cert(p, guide_pki[i].cert, certs[i]);
                if (r < 0)
                        return detail_set(ret_detail, r, "%s/%s: %s", c->tls_dir, guide_pki[i].cert,
                                          r == -EBADMSG ? "does not parse as a PEM certificate" : strerror(-r));
                if (pki_key_matches_cert(key, *certs[i]) != 1)
                        return detail_set(ret_detail, -EKEYREJECTED,
                                          "the %s key %s/%s does not match its certificate %s/%s: refusing to "
                                          "adopt an inconsistent PKI",
                                          guide_pki[i].what, c->tls_dir, guide_pki[i].key, c->tls_dir,
                                          guide_pki[i].cert);
                /* A key of another type than [tls] key_type would be
                 * replaced by the PKI rows: for a CA that is a new CA, and
                 * every client certificate stops working. */
                if (pki_key_is_type(key, c->key_type) != 1)
                        return detail_set(ret_detail, -EINVAL,
                                          "the %s key %s/%s is not %s ([tls] key_type): set [tls] key_type = "
                                          "%s to keep the guide's keys (the guide makes RSA-4096 keys)",
                                          guide_pki[i].what, c->tls_dir, guide_pki[i].key,
                                          key_type_name(c->key_type),
                                          key_type_name(c->key_type == KEY_RSA_4096 ? KEY_EC_P256 : KEY_RSA_4096));
        }
        if (pki_cert_verify(server_ca, server_ca, time(NULL), 0) != 1 ||
            pki_cert_verify(client_ca, client_ca, time(NULL), 0) != 1)
                return detail_set(ret_detail, -EKEYEXPIRED,
                                  "%s/%s or %s/%s is not a valid CA certificate now (expired, or no "
                                  "basicConstraints CA:TRUE)",
                                  c->tls_dir, TLS_SERVER_CA_CERT, c->tls_dir, TLS_CLIENT_CA_CERT);
        if (X509_verify(server, X509_get0_pubkey(server_ca)) != 1) {
                ERR_clear_error();
                return detail_set(ret_detail, -EKEYREJECTED, "%s/%s is not signed by the server CA %s/%s",
                                  c->tls_dir, TLS_SERVER_CERT, c->tls_dir, TLS_SERVER_CA_CERT);
        }
        r = check_clients(p, client_ca, &clients, ret_detail);
        if (r < 0)
                return r;

        /* A configured initial client named like one of the guide's would
         * get a new key and certificate in place of the guide's. */
        if (c->initial_client) {
                _cleanup_free_ char *rel = NULL, *krel = NULL, *cert = NULL, *key = NULL;

                if (asprintf(&rel, "%s/" TLS_CLIENT_CERT_FMT, c->tls_dir, c->initial_client) < 0 ||
                    asprintf(&krel, "%s/" TLS_CLIENT_KEY_FMT, c->tls_dir, c->initial_client) < 0 ||
                    !(cert = provision_path(p, rel)) || !(key = provision_path(p, krel)))
                        return -ENOMEM;
                if (lstat(cert, &st) == 0 && lstat(key, &st) < 0)
                        return detail_set(ret_detail, -EEXIST,
                                          "[tls] initial_client = %s would replace the guide's %s (its key is not "
                                          "at %s): leave initial_client empty or name another client",
                                          c->initial_client, rel, krel);
        }

        /* The storage: the guide's service user owns it and runs the
         * registry; regvisor's must be that user, or the images would
         * belong to someone else. */
        storage = provision_path(p, c->storage);
        if (!storage)
                return -ENOMEM;
        if (stat(storage, &st) < 0 || !S_ISDIR(st.st_mode))
                return detail_set(ret_detail, -ENOENT, "the guide's storage %s is not there ([registry] storage)",
                                  c->storage);
        if (!p->root) {
                pw = getpwuid(st.st_uid);
                if (!pw || !streq(pw->pw_name, c->service_user))
                        return detail_set(ret_detail, -EINVAL,
                                          "%s belongs to %s, the guide's CI_SERVICE_USER: set [host] service_user "
                                          "= %s (the registry's files are that user's)",
                                          c->storage, pw ? pw->pw_name : "an unknown uid",
                                          pw ? pw->pw_name : "THAT_USER");
        }

        names_match = pki_cert_matches_names(server, c->servers, c->n_server_names) == 1;
        return detail_set(ret_detail, 0,
                          "adopting the guide's installation: both CAs and their keys kept, client "
                          "certificates kept (%s), storage %s kept; the server key kept, its certificate %s",
                          clients ?: "none", c->storage,
                          names_match ? "reissued by pki-server-cert only to add the CRL distribution point"
                                      : "reissued by pki-server-cert for [tls] server_names (its names differ)");
}

int step_guide_layout_check(Provision *p, const ProvisionStep *s, char **ret_detail) {
        _cleanup_(guide_done) Guide g = {};
        _cleanup_free_ char *found = NULL, *ours = NULL;
        struct stat st;
        int r;

        r = guide_find(p, &g);
        if (r < 0)
                return detail_set(ret_detail, r, "looking for the guide's installation: %s", strerror(-r));
        if (!guide_present(&g)) {
                if (!p->adopt)
                        return 1;
                ours = provision_path(p, REGISTRY_UNIT_PATH);
                if (!ours)
                        return -ENOMEM;
                if (lstat(ours, &st) == 0)
                        return detail_set(ret_detail, 1, "nothing of the guide's left (adopted already)");
                return detail_set(ret_detail, -ENOENT,
                                  "--adopt: no installation of the guide here (none of %s, %s, an nginx site on "
                                  "443/4443)",
                                  GUIDE_UNIT_PATH, GUIDE_PROXY_UNIT);
        }
        r = guide_describe(&g, &found);
        if (r < 0)
                return r;
        if (!p->adopt)
                return detail_set(ret_detail, -EEXIST,
                                  "this host runs a registry set up by the install guide (%s): `regvisor provision "
                                  "--adopt` takes it over and keeps its PKI, clients and storage",
                                  found);
        r = check_guide_material(p, ret_detail);
        return r < 0 ? r : 1;
}

/* ---- the guide's registry unit ------------------------------------------ */

int step_guide_registry_unit_check(Provision *p, const ProvisionStep *s, char **ret_detail) {
        _cleanup_free_ char *unit = provision_path(p, GUIDE_UNIT_PATH);
        struct stat st;

        if (!unit)
                return -ENOMEM;
        if (lstat(unit, &st) < 0)
                return errno == ENOENT ? 1 : detail_set(ret_detail, negative_errno(), "%s: %m", GUIDE_UNIT_PATH);
        if (!p->have_service_user)
                return -ESRCH;
        return detail_set(ret_detail, 0, "stop and disable %s of %s, set %s aside as %s", GUIDE_UNIT,
                          p->config->service_user, GUIDE_UNIT_PATH, GUIDE_UNIT_KEPT);
}

int step_guide_registry_unit_apply(Provision *p, const ProvisionStep *s, char **ret_detail) {
        _cleanup_bus_ sd_bus *bus = NULL;
        _cleanup_free_ char *error = NULL, *state = NULL, *unit = provision_path(p, GUIDE_UNIT_PATH),
                            *kept = provision_path(p, GUIDE_UNIT_KEPT);
        struct stat st;
        int r;

        if (!unit || !kept)
                return -ENOMEM;
        if (lstat(kept, &st) == 0)
                return detail_set(ret_detail, -EEXIST, "%s exists: move it away first", GUIDE_UNIT_KEPT);
        /* The linger row made sure the user manager runs. */
        r = bus_open_user_manager(p->config->service_user, &bus);
        if (r < 0)
                return detail_set(ret_detail, r, "cannot reach the user manager of %s: %s", p->config->service_user,
                                  strerror(-r));
        r = bus_get_unit_active_state(bus, GUIDE_UNIT, &state, &error);
        if (r >= 0 && !streq(state, "inactive") && !streq(state, "failed"))
                /* Its ExecStop stops the container (--rm removes it): the
                 * storage is nobody's when this returns. */
                r = bus_stop_unit(bus, GUIDE_UNIT, UNIT_TIMEOUT_USEC, &error);
        if (r >= 0)
                r = bus_disable_unit(bus, GUIDE_UNIT, &error);
        if (r < 0)
                return detail_set(ret_detail, r, "%s of %s: %s", GUIDE_UNIT, p->config->service_user,
                                  error ?: strerror(-r));
        if (rename(unit, kept) < 0)
                return detail_set(ret_detail, negative_errno(), "%s -> %s: %m", GUIDE_UNIT_PATH, GUIDE_UNIT_KEPT);
        r = bus_reload_manager(bus, &error);
        if (r < 0)
                return detail_set(ret_detail, r, "reloading the user manager of %s: %s", p->config->service_user,
                                  error ?: strerror(-r));
        return detail_set(ret_detail, 0, "%s of %s stopped and disabled, kept as %s", GUIDE_UNIT,
                          p->config->service_user, GUIDE_UNIT_KEPT);
}

/* ---- what held 443/4443 ------------------------------------------------- */

int step_guide_proxy_check(Provision *p, const ProvisionStep *s, char **ret_detail) {
        _cleanup_(guide_done) Guide g = {};
        _cleanup_free_ char *found = NULL;
        int r;

        r = guide_find(p, &g);
        if (r < 0)
                return detail_set(ret_detail, r, "%s: %s", GUIDE_PROXY_UNIT, strerror(-r));
        g.unit = false; /* the row above's */
        if (!guide_present(&g))
                return 1;
        r = guide_describe(&g, &found);
        if (r < 0)
                return r;
        return detail_set(ret_detail, 0, "stop and disable what holds 443/4443: %s", found);
}

int step_guide_proxy_apply(Provision *p, const ProvisionStep *s, char **ret_detail) {
        _cleanup_(guide_done) Guide g = {};
        _cleanup_fclose_ FILE *record = NULL;
        _cleanup_free_ char *error = NULL, *found = NULL, *record_path = provision_path(p, ADOPTED_RECORD);
        bool nginx_running = false, nginx_enabled = false;
        sd_bus *bus;
        int r;

        if (!record_path)
                return -ENOMEM;
        r = guide_find(p, &g);
        if (r >= 0)
                r = provision_system_bus(p, &bus);
        if (r < 0)
                return r;
        g.unit = false;
        r = guide_describe(&g, &found);
        if (r < 0)
                return r;
        /* Written before each change, so that an interrupted run is
         * recorded too. Appended to: a second adoption adds to the first. */
        record = fopen(record_path, "ae");
        if (!record)
                return detail_set(ret_detail, negative_errno(), "%s: %m", ADOPTED_RECORD);
        if (g.proxy_enabled) {
                fprintf(record, "unit\t%s\n", GUIDE_PROXY_UNIT);
                r = fflush(record) == 0 ? bus_disable_unit(bus, GUIDE_PROXY_UNIT, &error) : -EIO;
        }
        if (r >= 0 && g.proxy_running)
                r = bus_stop_unit(bus, GUIDE_PROXY_UNIT, UNIT_TIMEOUT_USEC, &error);
        if (r < 0)
                return detail_set(ret_detail, r, "%s: %s", GUIDE_PROXY_UNIT, error ?: strerror(-r));
        for (size_t i = 0; i < g.n_sites; i++) {
                r = disable_site(p, &g.sites[i], record, ret_detail);
                if (r < 0)
                        return r;
        }
        /* nginx.service serving those sites lets go of the ports on reload;
         * its other sites go on. */
        r = system_unit_held(p, NGINX_UNIT, &nginx_running, &nginx_enabled);
        if (r >= 0 && nginx_running && g.n_sites > 0)
                r = bus_reload_unit(bus, NGINX_UNIT, UNIT_TIMEOUT_USEC, &error);
        if (r < 0)
                return detail_set(ret_detail, r, "%s: %s", NGINX_UNIT, error ?: strerror(-r));
        return detail_set(ret_detail, 0, "stopped and disabled: %s%s", found,
                          nginx_running && g.n_sites > 0 ? "; nginx.service reloaded" : "");
}

/* ---- the storage's modes ----------------------------------------------- */

/* The guide's registry wrote with umask 022: files others may read below
 * the 0750 root. regvisor's writes nothing for others (--umask=0007), and
 * the storage below is made so too. Counted by nftw(), which has no
 * userdata: provision is single-threaded. */
static unsigned n_open_to_others;

static int count_open(const char *path, const struct stat *st, int type, struct FTW *ftw) {
        if (type != FTW_SL && (st->st_mode & S_IRWXO))
                n_open_to_others++;
        return 0;
}

int step_guide_storage_modes_check(Provision *p, const ProvisionStep *s, char **ret_detail) {
        _cleanup_free_ char *storage = NULL;

        if (!p->adopt)
                return 1; /* only an adoption walks the whole storage */
        storage = provision_path(p, p->config->storage);
        if (!storage)
                return -ENOMEM;
        n_open_to_others = 0;
        if (nftw(storage, count_open, 16, FTW_PHYS | FTW_MOUNT) < 0)
                return detail_set(ret_detail, negative_errno(), "%s: %m", p->config->storage);
        if (n_open_to_others == 0)
                return 1;
        return detail_set(ret_detail, 0, "%u files and directories below %s open to others: o-rwx, as %s",
                          n_open_to_others, p->config->storage, p->config->service_user);
}

int step_guide_storage_modes_apply(Provision *p, const ProvisionStep *s, char **ret_detail) {
        _cleanup_free_ char *reuid = NULL, *regid = NULL, *err = NULL, *storage = provision_path(p, p->config->storage);
        unsigned n = n_open_to_others;
        int r;

        if (!p->have_service_user)
                return -ESRCH;
        if (!storage || asprintf(&reuid, "--reuid=%u", (unsigned) p->service_uid) < 0 ||
            asprintf(&regid, "--regid=%u", (unsigned) p->service_gid) < 0)
                return -ENOMEM;
        /* As the service user, which owns the tree: root would have to
         * guard every path against a link that user swaps in. */
        char *argv[] = {"setpriv", reuid, regid, "--clear-groups", "chmod", "-R", "o-rwx", "--",
                        storage, NULL};
        r = process_run(argv, NULL, NULL, &err);
        if (r < 0)
                return detail_set(ret_detail, r, "setpriv chmod: %s", strerror(-r));
        if (r != 0) {
                if (err)
                        err[strcspn(err, "\n")] = 0;
                return detail_set(ret_detail, -EIO, "chmod -R o-rwx %s as %s exited with %d: %s",
                                  p->config->storage, p->config->service_user, r, err ?: "");
        }
        return detail_set(ret_detail, 0, "%u files and directories below %s: others' access removed", n,
                          p->config->storage);
}

/* ---- deprovision: the guide's units and sites enabled again --------------- */

int step_guide_registry_unit_undo_check(Provision *p, const ProvisionStep *s, char **ret_detail) {
        _cleanup_free_ char *unit = provision_path(p, GUIDE_UNIT_PATH), *kept = provision_path(p, GUIDE_UNIT_KEPT);
        struct stat st;

        if (!unit || !kept)
                return -ENOMEM;
        if (lstat(kept, &st) < 0 || lstat(unit, &st) == 0)
                return 1;
        if (!p->have_service_user)
                return -ESRCH;
        return detail_set(ret_detail, 0, "restore %s from %s, enabled for %s (not started)", GUIDE_UNIT_PATH,
                          GUIDE_UNIT_KEPT, p->config->service_user);
}

int step_guide_registry_unit_undo(Provision *p, const ProvisionStep *s, char **ret_detail) {
        _cleanup_bus_ sd_bus *bus = NULL;
        _cleanup_free_ char *error = NULL, *unit = provision_path(p, GUIDE_UNIT_PATH),
                            *kept = provision_path(p, GUIDE_UNIT_KEPT);
        int r;

        if (!unit || !kept)
                return -ENOMEM;
        if (rename(kept, unit) < 0)
                return detail_set(ret_detail, negative_errno(), "%s -> %s: %m", GUIDE_UNIT_KEPT, GUIDE_UNIT_PATH);
        r = bus_open_user_manager(p->config->service_user, &bus);
        if (r >= 0)
                r = bus_reload_manager(bus, &error);
        if (r >= 0)
                r = bus_enable_unit_file(bus, GUIDE_UNIT, &error);
        if (r < 0)
                return detail_set(ret_detail, r, "%s restored; enabling it for %s: %s", GUIDE_UNIT_PATH,
                                  p->config->service_user, error ?: strerror(-r));
        return detail_set(ret_detail, 0, "%s restored and enabled for %s", GUIDE_UNIT_PATH, p->config->service_user);
}

int step_guide_proxy_undo_check(Provision *p, const ProvisionStep *s, char **ret_detail) {
        _cleanup_free_ char *record = NULL, *path = provision_path(p, ADOPTED_RECORD);
        int r;

        if (!path)
                return -ENOMEM;
        r = read_file(path, NGINX_CONF_MAX, &record, NULL);
        if (r == -ENOENT)
                return 1;
        if (r < 0)
                return detail_set(ret_detail, r, "%s: %s", ADOPTED_RECORD, strerror(-r));
        return detail_set(ret_detail, 0, "enable again what provision --adopt disabled (%s)", ADOPTED_RECORD);
}

int step_guide_proxy_undo(Provision *p, const ProvisionStep *s, char **ret_detail) {
        _cleanup_free_ char *record = NULL, *error = NULL, *path = provision_path(p, ADOPTED_RECORD);
        bool running = false, enabled = false, sites = false;
        char *line, *save = NULL;
        sd_bus *bus;
        int r;

        if (!path)
                return -ENOMEM;
        r = read_file(path, NGINX_CONF_MAX, &record, NULL);
        if (r >= 0)
                r = provision_system_bus(p, &bus);
        if (r < 0)
                return detail_set(ret_detail, r, "%s: %s", ADOPTED_RECORD, strerror(-r));
        for (line = strtok_r(record, "\n", &save); line && r >= 0; line = strtok_r(NULL, "\n", &save)) {
                char *kind = line, *a = strchr(line, '\t'), *b = a ? strchr(a + 1, '\t') : NULL;
                struct stat st;

                if (!a)
                        return detail_set(ret_detail, -EBADMSG, "%s: bad line '%s'", ADOPTED_RECORD, line);
                *a++ = 0;
                if (b)
                        *b++ = 0;
                if (streq(kind, "unit"))
                        r = bus_enable_unit_file(bus, a, &error);
                else if (b && lstat(a, &st) < 0 && streq(kind, "link"))
                        r = symlink(b, a) < 0 ? negative_errno() : (sites = true, 0);
                else if (b && lstat(a, &st) < 0 && streq(kind, "move"))
                        r = rename(b, a) < 0 ? negative_errno() : (sites = true, 0);
                if (r < 0)
                        return detail_set(ret_detail, r, "%s %s: %s", kind, a, error ?: strerror(-r));
        }
        r = system_unit_held(p, NGINX_UNIT, &running, &enabled);
        if (r >= 0 && running && sites)
                r = bus_reload_unit(bus, NGINX_UNIT, UNIT_TIMEOUT_USEC, &error);
        if (r >= 0)
                r = remove_file(path);
        if (r < 0)
                return detail_set(ret_detail, r, "%s", error ?: strerror(-r));
        return detail_set(ret_detail, 0, "enabled again what provision --adopt disabled (not started)");
}

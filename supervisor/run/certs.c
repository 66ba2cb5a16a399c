/* SPDX-License-Identifier: MIT */
/*
 * The expiry of every certificate in the tree below [tls] dir, for
 * /metrics: read at start and on each reload (certificates are public
 * files: no privilege needed). Paths from paths.h, as provision writes them.
 */
#include <glob.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fileio.h"
#include "macro.h"
#include "paths.h"
#include "pki.h"
#include "supervisor.h"

void certs_clear(Supervisor *s) {
        for (size_t i = 0; i < s->n_certs; i++)
                free(s->certs[i].name);
        s->n_certs = 0;
}

static void cert_add(Supervisor *s, const char *name, const char *path) {
        _cleanup_free_ char *pem = NULL;
        X509 *x = NULL;
        size_t n;
        time_t t;

        if (s->n_certs >= ELEMENTSOF(s->certs) || read_file(path, 1 << 20, &pem, &n) < 0 ||
            pki_cert_from_pem(pem, n, &x) < 0)
                return;
        if (pki_cert_not_after(x, &t) >= 0 && (s->certs[s->n_certs].name = strdup(name)))
                s->certs[s->n_certs++].not_after = t;
        X509_free(x);
}

/* The fixed certificates of the tree, by their /metrics name. */
static const struct {
        const char *name;
        const char *path; /* below [tls] dir */
} tree_certs[] = {
        {"server-ca", TLS_SERVER_CA_CERT},
        {"server", TLS_SERVER_CERT},
        {"client-ca", TLS_CLIENT_CA_CERT},
};

/* Every clients/NAME.crt but the client CA's own, as "client/NAME". */
static void client_certs_add(Supervisor *s) {
        _cleanup_free_ char *pattern = NULL, *ca = NULL;
        glob_t g;

        if (asprintf(&pattern, "%s/" TLS_CLIENT_CERT_FMT, s->config.tls_dir, "*") < 0 ||
            asprintf(&ca, "%s/" TLS_CLIENT_CA_CERT, s->config.tls_dir) < 0)
                return;
        if (glob(pattern, 0, NULL, &g) != 0)
                return;
        /* The name is what the pattern's "*" matched. */
        size_t prefix = (size_t) (strchr(pattern, '*') - pattern), suffix = strlen(pattern) - prefix - 1;
        for (size_t i = 0; i < g.gl_pathc; i++) {
                const char *path = g.gl_pathv[i];
                size_t len = strlen(path);
                char name[300];

                if (streq(path, ca) || len < prefix + suffix)
                        continue;
                (void) snprintf(name, sizeof name, "client/%.*s", (int) (len - prefix - suffix), path + prefix);
                cert_add(s, name, path);
        }
        globfree(&g);
}

void certs_load(Supervisor *s) {
        certs_clear(s);
        for (size_t i = 0; i < ELEMENTSOF(tree_certs); i++) {
                _cleanup_free_ char *path = NULL;
                if (asprintf(&path, "%s/%s", s->config.tls_dir, tree_certs[i].path) >= 0)
                        cert_add(s, tree_certs[i].name, path);
        }
        client_certs_add(s);
}

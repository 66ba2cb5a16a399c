/* SPDX-License-Identifier: MIT */
#include <dirent.h>
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "log.h"
#include "macro.h"
#include "paths.h"
#include "provision.h"
#include "verbs.h"

static const char *arg_config = CONFIG_DEFAULT_PATH;
static const char *arg_root = NULL;

static void help(void) {
        printf("Usage: regvisor pki [OPTIONS] COMMAND [NAME]\n\n"
               "Client certificates for machines that push (port 4443, mTLS).\n\n"
               "Commands:\n"
               "  issue-client NAME  new key and certificate for client machine NAME\n"
               "  revoke NAME        revoke NAME's certificate (CRL updated; the proxy\n"
               "                     refuses it after 'systemctl reload regvisor')\n\n"
               "  -c --config FILE  configuration (default " CONFIG_DEFAULT_PATH ")\n"
               "     --root DIR     the certificate tree below DIR\n"
               "  -h --help         this help\n");
}

static int parse_argv(int argc, char **argv) {
        enum { ARG_ROOT = 0x100 };
        static const struct option options[] = {
                {"config", required_argument, NULL, 'c'},
                {"root", required_argument, NULL, ARG_ROOT},
                {"help", no_argument, NULL, 'h'},
                {}};
        int c;

        optind = 0;
        while ((c = getopt_long(argc, argv, "+c:h", options, NULL)) >= 0)
                switch (c) {
                case 'c':
                        arg_config = optarg;
                        break;
                case ARG_ROOT:
                        arg_root = optarg;
                        break;
                case 'h':
                        help();
                        return 0;
                default:
                        return -EINVAL;
                }
        return 1;
}

/* Client names become file names and certificate CNs: keep them simple. The
 * first character is a letter or digit, so that no name reads as an option
 * ("-v", "--help") or a hidden file. */
static bool client_name_valid(const char *n) {
        size_t len = strlen(n);
        return len > 0 && len <= 64 && strspn(n, "abcdefghijklmnopqrstuvwxyz0123456789-_.") == len &&
               strchr("abcdefghijklmnopqrstuvwxyz0123456789", n[0]) && !streq(n, "ca");
}

/* "HOST" for port 443, else "HOST:PORT": the directory name podman, skopeo
 * and buildah look up below /etc/containers/certs.d/. */
static char *certs_d_name(const char *host, uint16_t port) {
        char *s;
        int r = port == 443 ? asprintf(&s, "%s", host) : asprintf(&s, "%s:%u", host, (unsigned) port);
        return r < 0 ? NULL : s;
}

/* What an operator needs after issue-client: where the certificate and the
 * key are, and where they go on the client machine. */
static int print_issued(const Provision *p, const char *name) {
        const Config *c = p->config;
        _cleanup_free_ char *cert_rel = NULL, *key_rel = NULL, *cert = NULL, *key = NULL, *ca = NULL, *push = NULL,
                            *pull = NULL;
        const char *host = c->n_server_names > 0 ? c->server_names[0] : "HOST";

        if (asprintf(&cert_rel, "%s/" TLS_CLIENT_CERT_FMT, c->tls_dir, name) < 0 ||
            asprintf(&key_rel, "%s/" TLS_CLIENT_KEY_FMT, c->tls_dir, name) < 0)
                return -ENOMEM;
        cert = provision_path(p, cert_rel);
        key = provision_path(p, key_rel);
        ca = provision_path(p, c->tls_dir);
        push = certs_d_name(host, c->push.listen.port);
        pull = certs_d_name(host, c->pull.listen.port);
        if (!cert || !key || !ca || !push || !pull)
                return -ENOMEM;
        static const struct {
                bool pull;
                const char *file, *what;
        } dest[] = {
                {false, "client.cert", "certificate"},
                {false, "client.key", "private key (mode 0600)"},
                {false, "ca.crt", "server CA (pushes)"},
                {true, "ca.crt", "server CA (pulls)"},
        };

        printf("Issued a client certificate for %s:\n"
               "  certificate  %s\n"
               "  private key  %s (root only)\n"
               "  server CA    %s/" TLS_SERVER_CA_CERT "\n\n"
               "Next, copy them to the client machine (the key over a secure channel), as root:\n",
               name, cert, key, ca);
        for (size_t i = 0; i < ELEMENTSOF(dest); i++) {
                _cleanup_free_ char *d = NULL;
                if (asprintf(&d, "/etc/containers/certs.d/%s/%s", dest[i].pull ? pull : push, dest[i].file) < 0)
                        return -ENOMEM;
                printf("  %-*s <- %s\n", (int) (strlen(push) + 36), d, dest[i].what);
        }
        printf("(rootless podman: ~/.config/containers/certs.d/ instead; a client that uses another\n"
               "name from [tls] server_names puts that name in place of %s.)\n"
               "Then push with podman push %s/IMAGE; retire the machine with 'regvisor pki revoke %s'.\n",
               host, push, name);
        return 0;
}

int verb_pki(int argc, char **argv) {
        _cleanup_free_ char *detail = NULL;
        Config config;
        const char *cmd, *name;
        int r;

        r = parse_argv(argc, argv);
        if (r <= 0)
                return r < 0 ? 2 : 0;
        if (optind >= argc) {
                log_error("pki: expected COMMAND NAME; see 'regvisor pki --help'");
                return 2;
        }
        cmd = argv[optind];
        if (!streq(cmd, "issue-client") && !streq(cmd, "revoke")) {
                log_error("pki: unknown command '%s'; see 'regvisor pki --help'", cmd);
                return 2;
        }
        if (optind + 2 != argc) {
                if (optind + 2 > argc)
                        log_error("pki %s: expected a client NAME; see 'regvisor pki --help'", cmd);
                else
                        log_error("pki %s: unexpected argument '%s' (one NAME only); see 'regvisor pki --help'",
                                  cmd, argv[optind + 2]);
                return 2;
        }
        name = argv[optind + 1];
        if (!client_name_valid(name)) {
                log_error("pki: client name '%s' must be 1-64 of [a-z0-9._-], starting with a letter or digit", name);
                return 2;
        }
        r = verb_load_config(arg_config, &config);
        if (r < 0)
                return 1;
        (void) umask(0077);

        Provision p = {.config = &config, .root = arg_root};
        r = provision_lookup_users(&p);
        if (r >= 0)
                r = streq(cmd, "issue-client") ? pki_files_issue_client(&p, name, &detail)
                                               : pki_files_revoke_client(&p, name, &detail);
        if (r < 0)
                log_error("pki %s %s: %s", cmd, name, detail ? detail : strerror(-r));
        else if (!streq(cmd, "issue-client") || print_issued(&p, name) < 0)
                printf("%s\n", detail ? detail : "done");
        provision_done(&p);
        config_done(&config);
        return r < 0 ? 1 : 0;
}

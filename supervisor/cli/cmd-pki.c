/* SPDX-License-Identifier: MIT */
#include <dirent.h>
#include <errno.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "bus.h"
#include "export.h"
#include "fileio.h"
#include "log.h"
#include "macro.h"
#include "openssl-util.h"
#include "paths.h"
#include "pki.h"
#include "provision.h"
#include "scope-grant.h"
#include "verbs.h"

/* How long `pki revoke` waits for systemd to run regvisor.service's reload. */
#define RELOAD_TIMEOUT_USEC (30ULL * 1000000ULL)

static const char *arg_config = CONFIG_DEFAULT_PATH;
static const char *arg_root = NULL;
static bool arg_reissue = false;
static const char *arg_output = NULL;
static const char *arg_host = NULL;
static const char *arg_name = NULL;
static const char *arg_days = NULL;
static const char *arg_scope = NULL;
static bool arg_json = false;
static bool arg_rekey = false;
static bool arg_server = false;
static bool arg_crl = false;

static void help(void) {
        printf("Usage: regvisor pki [OPTIONS] COMMAND [NAME]\n\n"
               "Client certificates for machines that push (port 4443, mTLS).\n\n"
               "Commands:\n"
               "  issue-client NAME  new key and certificate for client machine NAME\n"
               "  revoke NAME        revoke NAME's certificate: the CRL is updated and a\n"
               "                     running regvisor.service reloaded, so the proxy\n"
               "                     refuses NAME within 2 s\n"
               "  list               every client certificate (name, CN, serial, expiry, and\n"
               "                     valid, expiring within [pki] renew_before, expired or\n"
               "                     revoked by the CRL), the server certificate, both CAs and\n"
               "                     both CRLs (thisUpdate, nextUpdate); --json for scripts\n"
               "  renew NAME         a new certificate for NAME (same CN, new serial) for its\n"
               "                     key (--rekey: a new key); the previous one is not revoked\n"
               "  renew --server     the server certificate again (same names and CRL point;\n"
               "                     --rekey: a new key); a running regvisor.service reloads\n"
               "  renew --crl        both CRLs again now (regvisor run renews them, and the\n"
               "                     server certificate, [pki] renew_before their end)\n"
               "  export NAME        one bundle directory for client machine NAME: server CA,\n"
               "                     its certificate (and key, when made here), certs.d and\n"
               "                     containerd hosts.toml, signers' key, policy rules;\n"
               "                     install it there with 'regvisor client install\n"
               "                     --registry HOST DIR'\n"
               "  sign REQUEST       a certificate for the key of a request that 'regvisor\n"
               "                     client request NAME' made on the client (its key never\n"
               "                     leaves it); name, validity and usage are this host's,\n"
               "                     whatever the request asks; then 'pki export NAME'\n"
               "                     bundles the certificate without a key\n\n"
               "  -c --config FILE  configuration (default " CONFIG_DEFAULT_PATH ")\n"
               "     --root DIR     the certificate tree below DIR (no reload)\n"
               "     --reissue      issue-client: also for a NAME that was revoked\n"
               "  -o --output DIR   export: the new bundle directory (default regvisor-client-NAME)\n"
               "     --name NAME    sign: the client name the request must carry (its CN)\n"
               "     --days N       sign: the validity, at most [tls] cert_days (the default)\n"
               "     --scope PATTERNS  sign, issue-client: the repositories NAME may push to\n"
               "                    ('app/*, tools/*'), appended to the configuration's [scopes]\n"
               "                    (which must exist) and the running proxy reloaded; the same\n"
               "                    again does nothing\n"
               "     --host NAME    export: the registry name the client uses (one of [tls]\n"
               "                    server_names; default the first outside 127/8)\n"
               "     --json         list: one JSON object\n"
               "     --rekey        renew: a new key too\n"
               "     --server       renew: the server certificate, not a client's\n"
               "     --crl          renew: both CRLs\n"
               "  -h --help         this help\n");
}

static const VerbOption options[] = {
        OPTION_CONFIG(&arg_config),
        OPTION_ROOT(&arg_root),
        {"reissue", 0, OPTION_FLAG, &arg_reissue},
        {"output", 'o', OPTION_STRING, &arg_output},
        {"host", 0, OPTION_STRING, &arg_host},
        {"name", 0, OPTION_STRING, &arg_name},
        {"days", 0, OPTION_STRING, &arg_days},
        {"scope", 0, OPTION_STRING, &arg_scope},
        {"json", 0, OPTION_FLAG, &arg_json},
        {"rekey", 0, OPTION_FLAG, &arg_rekey},
        {"server", 0, OPTION_FLAG, &arg_server},
        {"crl", 0, OPTION_FLAG, &arg_crl},
};
/* Options anywhere: "pki issue-client --reissue NAME" reads naturally; the
 * command counts its own arguments. */
static const VerbSyntax syntax = {"pki", help, options, ELEMENTSOF(options), -1, false};

/* bus_wait_until() callback: 1 once regvisor.service is neither starting
 * nor reloading, with its state in *userdata (a char *, replaced). */
static int unit_settled(sd_bus *bus, void *userdata) {
        char **state = userdata;
        int r;

        free(*state);
        *state = NULL;
        r = bus_get_unit_active_state(bus, REGVISOR_UNIT_NAME, state, NULL);
        if (r < 0)
                return r;
        return !streq(*state, "activating") && !streq(*state, "reloading");
}

/* Makes the running proxy load the new CRL: ReloadUnit of regvisor.service
 * (its ExecReload sends SIGHUP; the proxy starts workers with the new CRL
 * and the old ones drain, closing their idle connections at once). Prints
 * whether the proxy was told; 0 when it was or nothing runs, else < 0. */
static int tell_proxy(const char *what) {
        _cleanup_bus_ sd_bus *bus = NULL;
        _cleanup_free_ char *state = NULL, *error = NULL;
        int r;

        r = bus_open_system(&bus);
        if (r >= 0)
                r = bus_get_unit_active_state(bus, REGVISOR_UNIT_NAME, &state, &error);
        if (r < 0)
                return log_error_errno(r, "pki %s: the running proxy was NOT told: cannot read the state of "
                                          "%s: %s; run 'systemctl reload %s'",
                                       what, REGVISOR_UNIT_NAME, error ?: strerror(-r), REGVISOR_UNIT_NAME);
        /* A proxy may already serve while the unit is still starting (or
         * reloading, for another reason): a reload queued now could merge
         * into that job and never run, so wait until it is active. */
        if (streq(state, "activating") || streq(state, "reloading")) {
                r = bus_wait_until(bus, RELOAD_TIMEOUT_USEC, unit_settled, &state);
                if (r < 0)
                        return log_error_errno(r, "pki %s: the running proxy was NOT told: %s did not "
                                                  "settle: %s; run 'systemctl reload %s'",
                                               what, REGVISOR_UNIT_NAME, strerror(-r), REGVISOR_UNIT_NAME);
        }
        if (!streq(state, "active")) {
                printf("%s is %s: no running proxy to tell; it loads the new files when it starts\n",
                       REGVISOR_UNIT_NAME, state);
                return 0;
        }
        r = bus_reload_unit(bus, REGVISOR_UNIT_NAME, RELOAD_TIMEOUT_USEC, &error);
        if (r < 0)
                return log_error_errno(r, "pki %s: the running proxy was NOT told: reload of %s failed: %s; "
                                          "run 'systemctl reload %s' and check 'systemctl status %s'",
                                       what, REGVISOR_UNIT_NAME, error ?: strerror(-r), REGVISOR_UNIT_NAME,
                                       REGVISOR_UNIT_NAME);
        printf("the running proxy was told (%s reloaded): its new workers load the new files\n",
               REGVISOR_UNIT_NAME);
        return 0;
}

/* "HOST" for port 443, else "HOST:PORT": the directory name podman, skopeo
 * and buildah look up below /etc/containers/certs.d/. */
static char *certs_d_name(const ServerName *host, uint16_t port) {
        char *s;
        return config_server_authority(host, port, &s) < 0 ? NULL : s;
}

/* What an operator needs after issue-client: where the certificate and the
 * key are, and where they go on the client machine. */
static int print_issued(const Provision *p, const char *name) {
        const Config *c = p->config;
        _cleanup_free_ char *cert_rel = NULL, *key_rel = NULL, *cert = NULL, *key = NULL, *ca = NULL, *push = NULL,
                            *pull = NULL;
        static const ServerName placeholder = {.name = "HOST"};
        const ServerName *host = c->n_server_names > 0 ? &c->servers[0] : &placeholder;

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
               host->name, push, name);
        return 0;
}

static int report_and_tell(int r, const char *what, const char *detail);

/* --scope, before anything is issued: *ret_pending set when NAME's
 * [scopes] line is still to be written (the check, so that a refused
 * --scope issues nothing; scope_apply() does it again under the lock). */
static int scope_text(const char *what, const char *name, bool *ret_pending) {
        _cleanup_free_ char *text = NULL, *added = NULL, *error = NULL;
        struct stat st;
        int r;

        *ret_pending = false;
        if (!arg_scope)
                return 0;
        if (stat(arg_config, &st) < 0 || !S_ISREG(st.st_mode))
                return log_error_errno(-errno ?: -EINVAL, "pki %s --scope: %s: not a file", what, arg_config);
        r = read_file(arg_config, 1024 * 1024, &text, NULL);
        if (r >= 0)
                r = scope_grant(text, arg_config, name, arg_scope, &added, &error);
        if (r == 0)
                printf("[scopes] of %s already gives %s exactly '%s'\n", arg_config, name, arg_scope);
        *ret_pending = r > 0;
        return r < 0 ? log_error_errno(r, "pki %s --scope: %s", what, error ?: strerror(-r)) : 0;
}

/* Once the certificate exists: the line added to the configuration as it
 * is now (scope_grant_file(), locked against another --scope) and the
 * running proxy told. Until then NAME may not push at all ([scopes]
 * exists, NAME has no line): closed. */
static int scope_apply(const char *what, const char *name, bool pending) {
        _cleanup_free_ char *detail = NULL, *error = NULL;
        int r;

        if (!pending)
                return 0;
        r = scope_grant_file(arg_config, name, arg_scope, &error);
        if (r < 0)
                return log_error_errno(r, "pki %s --scope: %s; %s may not push until '%s = %s' is in its "
                                          "[scopes]",
                                       what, error ?: strerror(-r), name, name, arg_scope);
        if (r == 0)
                return 0;
        if (asprintf(&detail, "%s: [scopes] %s = %s", arg_config, name, arg_scope) < 0)
                detail = NULL;
        return report_and_tell(0, what, detail);
}

static int pki_issue(Provision *p, const char *name) {
        _cleanup_free_ char *detail = NULL;
        bool pending = false;
        int r = scope_text("issue-client", name, &pending);

        if (r < 0)
                return r;
        r = pki_files_issue_client(p, name, arg_reissue, &detail);
        if (r < 0)
                return log_error_errno(r, "pki issue-client %s: %s", name, detail ?: strerror(-r));
        if (print_issued(p, name) < 0)
                printf("%s\n", detail ?: "done");
        return scope_apply("issue-client", name, pending);
}

/* After a command that changed what the proxy loads (r its result, detail
 * what it said): the outcome, then the running proxy told. */
static int report_and_tell(int r, const char *what, const char *detail) {
        if (r < 0)
                return log_error_errno(r, "pki %s: %s", what, detail ?: strerror(-r));
        printf("%s\n", detail ?: "done");
        /* A staging tree has no proxy; the host's must hear of it. */
        if (arg_root) {
                printf("--root: no running proxy was told\n");
                return 0;
        }
        return tell_proxy(what);
}

static int pki_revoke(Provision *p, const char *name) {
        _cleanup_free_ char *detail = NULL;
        int r = pki_files_revoke_client(p, name, &detail);

        _cleanup_free_ char *what = NULL;

        if (asprintf(&what, "revoke %s", name) < 0)
                return log_error_errno(-ENOMEM, "pki: out of memory");
        return report_and_tell(r, what, detail);
}

static void format_time(time_t t, char buf[static 32]) {
        struct tm tm;

        if (!gmtime_r(&t, &tm) || !strftime(buf, 32, "%Y-%m-%dT%H:%M:%SZ", &tm))
                snprintf(buf, 32, "?");
}

/* Adds key: the time as RFC 3339 UTC. */
static void json_add_time(json_object *o, const char *key, time_t t) {
        char when[32];

        format_time(t, when);
        json_object_object_add(o, key, json_object_new_string(when));
}

static json_object *json_client(const PkiClient *c, time_t now, long margin) {
        json_object *o = json_object_new_object();

        json_object_object_add(o, "name", json_object_new_string(c->name));
        json_object_object_add(o, "cn", json_object_new_string(c->cn));
        json_object_object_add(o, "serial", json_object_new_string(c->serial));
        json_add_time(o, "not_after", c->not_after);
        json_object_object_add(o, "status",
                               json_object_new_string(pki_status_name(pki_status_of(c->not_after, c->revoked, now,
                                                                                    margin))));
        return o;
}

static json_object *json_tree_entry(const PkiTreeEntry *e, time_t now) {
        json_object *o = json_object_new_object();

        json_object_object_add(o, "name", json_object_new_string(e->what));
        json_object_object_add(o, "path", json_object_new_string(e->path));
        if (e->error) {
                json_object_object_add(o, "error", json_object_new_string(e->error));
                return o;
        }
        if (e->is_crl) {
                json_add_time(o, "this_update", e->not_before);
                json_add_time(o, "next_update", e->not_after);
                json_object_object_add(o, "number", json_object_new_int64(e->crl_number));
                json_object_object_add(o, "revoked", json_object_new_int64(e->n_revoked));
        } else {
                json_object_object_add(o, "cn", json_object_new_string(e->cn));
                json_object_object_add(o, "serial", json_object_new_string(e->serial));
                json_add_time(o, "not_before", e->not_before);
                json_add_time(o, "not_after", e->not_after);
        }
        json_object_object_add(o, "renew_before", json_object_new_int64(e->margin));
        json_object_object_add(
                o, "status",
                json_object_new_string(pki_status_name(pki_status_of(e->not_after, false, now, e->margin))));
        return o;
}

static void print_json(const PkiClient *c, size_t n, const PkiTreeEntry *tree, time_t now, long margin) {
        json_object *root = json_object_new_object(), *clients = json_object_new_array(),
                    *certs = json_object_new_array(), *crls = json_object_new_array();

        for (size_t i = 0; i < n; i++)
                json_object_array_add(clients, json_client(&c[i], now, margin));
        for (size_t i = 0; i < PKI_TREE_ENTRIES; i++)
                json_object_array_add(tree[i].is_crl ? crls : certs, json_tree_entry(&tree[i], now));
        json_object_object_add(root, "clients", clients);
        json_object_object_add(root, "certificates", certs);
        json_object_object_add(root, "crls", crls);
        printf("%s\n", json_object_to_json_string_ext(root, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_NOSLASHESCAPE));
        json_object_put(root);
}

static void print_text(const PkiClient *c, size_t n, const PkiTreeEntry *tree, time_t now, long margin) {
        char from[32], until[32];

        printf("%-24s %-40s %-20s %s\n", "NAME", "SERIAL", "EXPIRES (UTC)", "STATE");
        for (size_t i = 0; i < n; i++) {
                format_time(c[i].not_after, until);
                printf("%-24s %-40s %-20s %s\n", c[i].name, c[i].serial, until,
                       pki_status_name(pki_status_of(c[i].not_after, c[i].revoked, now, margin)));
        }
        printf("\n%-14s %-40s %-20s %-20s %s\n", "CERTIFICATE", "SERIAL / CRL NUMBER", "FROM (UTC)", "UNTIL (UTC)",
               "STATE");
        for (size_t i = 0; i < PKI_TREE_ENTRIES; i++) {
                const PkiTreeEntry *e = &tree[i];
                char number[48];

                if (e->error) {
                        printf("%-14s %s: %s\n", e->what, e->path, e->error);
                        continue;
                }
                format_time(e->not_before, from);
                format_time(e->not_after, until);
                if (e->is_crl)
                        snprintf(number, sizeof number, "CRL %ld, %u revoked", e->crl_number, e->n_revoked);
                printf("%-14s %-40s %-20s %-20s %s\n", e->what, e->is_crl ? number : e->serial, from, until,
                       pki_status_name(pki_status_of(e->not_after, false, now, e->margin)));
        }
}

static int pki_list(Provision *p, const char *unused) {
        _cleanup_free_ char *detail = NULL;
        PkiClient *c = NULL;
        PkiTreeEntry tree[PKI_TREE_ENTRIES] = {};
        size_t n = 0;
        time_t now = time(NULL);
        /* A client certificate is "expiring" within renew_before, as the
         * server's: the operator renews it (pki renew NAME). */
        long margin = config_renew_margin(p->config, p->config->cert_days * 86400U);
        int r = pki_files_list_clients(p, &c, &n, &detail);

        if (r < 0)
                return log_error_errno(r, "pki list: %s", detail ?: strerror(-r));
        if (detail)
                log_warning("pki list: %s; revoked below means only a kept NAME.crt.revoked", detail);
        r = pki_files_list_tree(p, tree);
        if (r >= 0) {
                if (arg_json)
                        print_json(c, n, tree, now, margin);
                else
                        print_text(c, n, tree, now, margin);
        }
        pki_tree_done(tree);
        pki_clients_free(c, n);
        return r < 0 ? log_error_errno(r, "pki list: %s", strerror(-r)) : 0;
}

static int pki_renew(Provision *p, const char *name) {
        _cleanup_free_ char *detail = NULL;
        int r = pki_files_renew_client(p, name, arg_rekey, &detail);

        if (r < 0)
                return log_error_errno(r, "pki renew %s: %s", name, detail ?: strerror(-r));
        printf("Renewed %s: %s\nNext: 'regvisor pki export %s' and install the bundle on the client.\n", name,
               detail ?: "done", name);
        return 0;
}

/* renew --server / --crl: files the running proxy loads, so it is told. */
static int pki_renew_tree(Provision *p, const char *unused) {
        _cleanup_free_ char *detail = NULL;
        const char *what = arg_server ? "renew --server" : "renew --crl";
        int r = arg_server ? pki_files_renew_server(p, arg_rekey, &detail) : pki_files_renew_crls(p, &detail);

        return report_and_tell(r, what, detail);
}

static int pki_export(Provision *p, const char *name) {
        _cleanup_free_ char *error = NULL, *dflt = NULL, *registry = NULL;
        const char *dir = arg_output;
        int r;

        if (!dir && asprintf(&dflt, "regvisor-client-%s", name) < 0)
                return log_error_errno(-ENOMEM, "pki export %s: out of memory", name);
        dir = dir ?: dflt;
        r = client_export(p, name, arg_host, dir, &registry, &error);
        if (r < 0)
                return log_error_errno(r, "pki export %s: %s", name, error ?: strerror(-r));
        printf("Wrote the bundle for %s to %s/ (mode 0700; see its README).\n"
               "Copy it to the client machine over a secure channel, keeping its modes (scp -rp, tar -p),\n"
               "then run there, as root: regvisor client install --registry %s %s\n",
               name, dir, registry, dir);
        return 0;
}

/* The name a request will be signed for: --name, else its CN (which
 * pki_files_sign_request() checks again, with the rest). */
static int request_name(const char *csr, size_t size, char **ret) {
        _cleanup_(X509_REQ_freep) X509_REQ *req = NULL;
        _cleanup_(EVP_PKEY_freep) EVP_PKEY *key = NULL;
        int r;

        if (arg_name)
                return (*ret = strdup(arg_name)) ? 0 : -ENOMEM;
        r = pki_csr_from_pem(csr, size, &req);
        return r < 0 ? r : pki_csr_verify(req, &key, ret);
}

static int pki_sign(Provision *p, const char *file) {
        _cleanup_free_ char *detail = NULL, *csr = NULL, *name = NULL, *want = NULL;
        bool pending = false;
        unsigned days = 0;
        size_t size;
        int r;

        if (arg_days) {
                char *end;
                unsigned long d;
                errno = 0;
                d = strtoul(arg_days, &end, 10);
                if (errno || end == arg_days || *end || d == 0 || d > p->config->cert_days || arg_days[0] == '-')
                        return log_error_errno(-EINVAL, "pki sign: --days %s: expected 1 to [tls] cert_days (%u)",
                                               arg_days, p->config->cert_days);
                days = (unsigned) d;
        }
        r = read_file(file, 64 * 1024, &csr, &size);
        if (r < 0)
                return log_error_errno(r, "pki sign: %s: %s", file, strerror(-r));
        if (arg_scope) {
                r = request_name(csr, size, &want);
                if (r < 0)
                        return log_error_errno(r, "pki sign %s: not a certificate request that verifies with its "
                                                  "own key",
                                               file);
                r = scope_text("sign", want, &pending);
                if (r < 0)
                        return r;
        }
        r = pki_files_sign_request(p, csr, size, arg_name, days, arg_reissue, &name, &detail);
        if (r < 0)
                return log_error_errno(r, "pki sign %s: %s", file, detail ?: strerror(-r));
        printf("Issued %s for %s's own key (no key here); next: regvisor pki export %s\n", detail ?: "a certificate",
               name, name);
        return scope_apply("sign", want, pending);
}

/* The pki commands: name, whether it takes a client NAME, what it does. */
static const struct {
        VerbCommand command;
        int (*run)(Provision *p, const char *name);
        bool arg_is_file; /* the argument is a file, not a client NAME */
} pki_commands[] = {
        {{"issue-client", "a client NAME"}, pki_issue},
        {{"revoke", "a client NAME"}, pki_revoke},
        {{"list", NULL}, pki_list},
        {{"export", "a client NAME"}, pki_export},
        {{"sign", "a REQUEST file"}, pki_sign, true},
        {{"renew", "a client NAME"}, pki_renew},
};

/* renew --server, renew --crl: no NAME. */
static const struct {
        VerbCommand command;
        int (*run)(Provision *p, const char *name);
        bool arg_is_file;
} renew_tree_command[] = {
        {{"renew", NULL}, pki_renew_tree},
};

int verb_pki(int argc, char **argv) {
        Config config;
        const char *name = NULL;
        int first, r;
        size_t i;

        r = verb_parse_argv(&syntax, argc, argv, &first);
        if (r <= 0)
                return r < 0 ? 2 : 0;
        if (arg_name && !config_client_name_valid(arg_name)) {
                log_error("pki: --name '%s' is not a client name (1-64 of [a-z0-9._-])", arg_name);
                return 2;
        }
        if (arg_days && !(first < argc && streq(argv[first], "sign"))) {
                log_error("pki: --days goes with sign only");
                return 2;
        }
        if (arg_scope && !(first < argc && (streq(argv[first], "sign") || streq(argv[first], "issue-client")))) {
                log_error("pki: --scope goes with sign and issue-client only");
                return 2;
        }
        if (arg_server && arg_crl) {
                log_error("pki renew: --server or --crl, not both");
                return 2;
        }
        if ((arg_server || arg_crl) && !(first < argc && streq(argv[first], "renew"))) {
                log_error("pki: --server and --crl go with renew only");
                return 2;
        }
        bool tree = arg_server || arg_crl;
        r = tree ? verb_find_command("pki", renew_tree_command, 1, sizeof renew_tree_command[0], argc, argv, first)
                 : verb_find_command("pki", pki_commands, ELEMENTSOF(pki_commands), sizeof pki_commands[0], argc,
                                     argv, first);
        if (r < 0)
                return 2;
        i = (size_t) r;
        int (*run)(Provision *p, const char *name) = tree ? renew_tree_command[i].run : pki_commands[i].run;
        name = !tree && pki_commands[i].command.arg ? argv[first + 1] : NULL;
        if (!tree && pki_commands[i].command.arg && !pki_commands[i].arg_is_file) {
                if (!config_client_name_valid(name)) {
                        log_error("pki: client name '%s' must be 1-64 of [a-z0-9._-], starting with a letter or "
                                  "digit",
                                  name);
                        return 2;
                }
        }
        r = verb_load_config(arg_config, &config);
        if (r < 0)
                return 1;
        (void) umask(0077);

        Provision p = {.config = &config, .root = arg_root};
        r = provision_lookup_users(&p);
        if (r >= 0)
                r = run(&p, name);
        else
                log_error_errno(r, "pki: %s", strerror(-r));
        provision_done(&p);
        config_done(&config);
        return r < 0 ? 1 : 0;
}

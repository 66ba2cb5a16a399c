/* SPDX-License-Identifier: MIT */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bundle.h"
#include "macro.h"

int bundle_host_usable(const char *host) {
        struct in_addr a4;
        struct in6_addr a6;

        if (strcasecmp(host, "localhost") == 0)
                return 0;
        if (inet_pton(AF_INET, host, &a4) == 1)
                return (ntohl(a4.s_addr) >> 24) != 127;
        if (inet_pton(AF_INET6, host, &a6) == 1)
                return !IN6_IS_ADDR_LOOPBACK(&a6);
        if (host[0] == '[') {
                char buf[INET6_ADDRSTRLEN + 2];
                size_t n = strlen(host);
                if (n < 3 || n - 2 >= sizeof buf || host[n - 1] != ']')
                        return 0;
                memcpy(buf, host + 1, n - 2);
                buf[n - 2] = '\0';
                return inet_pton(AF_INET6, buf, &a6) == 1 && !IN6_IS_ADDR_LOOPBACK(&a6);
        }
        return 1;
}

/* A DNS name (or an IPv4 address, which is one by these rules): labels of
 * 1-63 letters, digits and '-', not at a label's ends, 253 bytes at most. */
static bool dns_name_valid(const char *s, size_t n) {
        size_t label = 0;

        if (n == 0 || n > 253)
                return false;
        for (size_t i = 0; i < n; i++) {
                char c = s[i];
                if (c == '.') {
                        if (label == 0 || s[i - 1] == '-')
                                return false;
                        label = 0;
                        continue;
                }
                if (!(c >= 'a' && c <= 'z') && !(c >= 'A' && c <= 'Z') && !(c >= '0' && c <= '9') && c != '-')
                        return false;
                if ((c == '-' && label == 0) || ++label > 63)
                        return false;
        }
        return s[n - 1] != '-' && s[n - 1] != '.';
}

int bundle_authority_split(const char *auth, size_t *ret_host_len) {
        const char *colon;
        size_t n;

        if (auth[0] == '[') {
                char buf[INET6_ADDRSTRLEN];
                struct in6_addr a6;
                const char *end = strchr(auth, ']');
                if (!end || (size_t) (end - auth - 1) >= sizeof buf)
                        return -EINVAL;
                memcpy(buf, auth + 1, (size_t) (end - auth - 1));
                buf[end - auth - 1] = '\0';
                if (inet_pton(AF_INET6, buf, &a6) != 1)
                        return -EINVAL;
                n = (size_t) (end - auth) + 1;
        } else {
                colon = strchr(auth, ':');
                n = colon ? (size_t) (colon - auth) : strlen(auth);
                if (!dns_name_valid(auth, n))
                        return -EINVAL;
        }
        if (auth[n] == ':') {
                const char *port = auth + n + 1;
                size_t digits = strspn(port, "0123456789");
                if (digits == 0 || digits > 5 || port[digits] != '\0' || port[0] == '0' || atol(port) > 65535)
                        return -EINVAL;
        } else if (auth[n] != '\0')
                return -EINVAL;
        *ret_host_len = n;
        return 0;
}

/* Public registries: what a machine pulls from besides its own; a name
 * below one (eu.gcr.io, REGION-docker.pkg.dev, ACCOUNT.dkr.ecr.REGION.
 * amazonaws.com, NAME.azurecr.io) is refused too. A backstop: the
 * operator names the registry with --registry. */
static const char *const public_registries[] = {
        "docker.io",       "index.docker.io",         "registry-1.docker.io", "registry.hub.docker.com",
        "quay.io",         "ghcr.io",                 "gcr.io",               "registry.k8s.io",
        "k8s.gcr.io",      "mcr.microsoft.com",       "public.ecr.aws",       "registry.gitlab.com",
        "nvcr.io",         "registry.access.redhat.com", "registry.redhat.io", "registry.fedoraproject.org",
        "registry.suse.com", "container-registry.oracle.com",
        "docker.com",      "pkg.dev",                 "azurecr.io",           "amazonaws.com",
        "ecr.aws",         "cgr.dev",                 "github.com",           "docker.pkg.github.com",
        "lscr.io",         "registry.opensuse.org",   "registry.centos.org",  "gitlab.com",
        "icr.io",          "ocir.io",                 "aliyuncs.com",         "jfrog.io",
};

int bundle_host_public(const char *host, size_t n) {
        for (size_t i = 0; i < ELEMENTSOF(public_registries); i++) {
                const char *p = public_registries[i];
                size_t k = strlen(p);
                /* Itself, or a name below it (eu.gcr.io). */
                if (n == k ? strncasecmp(host, p, n) == 0
                           : n > k && host[n - k - 1] == '.' && strncasecmp(host + n - k, p, k) == 0)
                        return 1;
        }
        return 0;
}

int bundle_authority(const char *host, uint16_t port, char **ret) {
        /* A bare IPv6 literal gets its brackets: "[ADDR]" and "[ADDR]:PORT"
         * are how containers/image (reference.Domain(), the certs.d
         * directory name), docker and containerd (its hosts directory
         * "[ADDR]:PORT", its URL https://[ADDR]:PORT) spell it. */
        bool v6 = strchr(host, ':') && host[0] != '[';
        int k = port == 443 ? asprintf(ret, v6 ? "[%s]" : "%s", host)
                            : asprintf(ret, v6 ? "[%s]:%u" : "%s:%u", host, (unsigned) port);
        return k < 0 ? -ENOMEM : 0;
}

int bundle_hosts_toml(const char *host, uint16_t port, int with_client, char **ret) {
        _cleanup_free_ char *auth = NULL, *client = NULL;
        int r = bundle_authority(host, port, &auth);

        if (r < 0)
                return r;
        if (with_client &&
            asprintf(&client, "  client = [[\"%s/%s/client.cert\", \"%s/%s/client.key\"]]\n", CLIENT_CONTAINERD_CERTS_D,
                     auth, CLIENT_CONTAINERD_CERTS_D, auth) < 0)
                return -ENOMEM;
        /* No top-level "server": containerd 1.6 refuses a tree with only
         * top-level server/ca/client ("invalid 'host' tree", containerd
         * issue 10027) and then falls back to plain HTTP on port 80. */
        return asprintf(ret,
                        "# regvisor client bundle: containerd (ctr --hosts-dir " CLIENT_CONTAINERD_CERTS_D
                        ", or config_path).\n"
                        "# No top-level server line: containerd 1.6 rejects it (containerd issue 10027).\n"
                        "[host.\"https://%s\"]\n"
                        "  capabilities = [%s]\n"
                        "  ca = \"%s/%s/ca.crt\"\n"
                        "%s",
                        auth, with_client ? "\"pull\", \"resolve\", \"push\"" : "\"pull\", \"resolve\"",
                        CLIENT_CONTAINERD_CERTS_D, auth, client ?: "") < 0
                       ? -ENOMEM
                       : 0;
}

/* 3 trees x 4 files, 2 hosts.toml, the signers' key, MANIFEST, the policy
 * fragment, README: 18. */
#define MAX_FILES 24

/* One file of the bundle: installed at path (below files/) or, with
 * path relative, a file of the bundle itself. */
typedef struct {
        char *path;
        const char *data;
        size_t size;
        mode_t mode;
        bool installed; /* listed in MANIFEST */
        char *owned;    /* data to free */
} BundleFile;

/* mkdir -p of every component of rel below dirfd, mode 0700. */
static int mkdirs_at(int dirfd, const char *rel) {
        _cleanup_free_ char *p = strdup(rel);

        if (!p)
                return -ENOMEM;
        for (char *s = strchr(p, '/'); s; s = strchr(s + 1, '/')) {
                *s = '\0';
                if (mkdirat(dirfd, p, 0700) < 0 && errno != EEXIST)
                        return -errno;
                *s = '/';
        }
        return 0;
}

static int write_at(int dirfd, const BundleFile *f) {
        _cleanup_close_ int fd = -EBADF;
        const char *rel = f->path[0] == '/' ? f->path + 1 : f->path;
        _cleanup_free_ char *full = NULL;
        size_t done = 0;
        int r;

        if (f->installed && asprintf(&full, BUNDLE_FILES "/%s", rel) < 0)
                return -ENOMEM;
        if (full)
                rel = full;
        r = mkdirs_at(dirfd, rel);
        if (r < 0)
                return r;
        /* Created with its final mode; fchmod only lifts what the umask
         * took from a public file, before any byte is in it. */
        fd = openat(dirfd, rel, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, f->mode);
        if (fd < 0)
                return -errno;
        if (fchmod(fd, f->mode) < 0)
                return -errno;
        while (done < f->size) {
                ssize_t n = write(fd, f->data + done, f->size - done);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0)
                        return -errno;
                done += (size_t) n;
        }
        return fsync(fd) < 0 ? -errno : 0;
}

static int add(BundleFile *files, size_t *n, bool installed, mode_t mode, const char *data, size_t size,
               char *owned, const char *fmt, ...) _printf_(8, 9);
static int add(BundleFile *files, size_t *n, bool installed, mode_t mode, const char *data, size_t size,
               char *owned, const char *fmt, ...) {
        va_list ap;
        int k;

        if (*n >= MAX_FILES) {
                free(owned);
                return -E2BIG;
        }
        va_start(ap, fmt);
        k = vasprintf(&files[*n].path, fmt, ap);
        va_end(ap);
        if (k < 0) {
                free(owned);
                return -ENOMEM;
        }
        files[*n].data = owned ?: data;
        files[*n].size = owned ? strlen(owned) : size;
        files[*n].mode = mode;
        files[*n].installed = installed;
        files[*n].owned = owned;
        (*n)++;
        return 0;
}


static void files_free(BundleFile *files, size_t n) {
        for (size_t i = 0; i < n; i++) {
                free(files[i].path);
                free(files[i].owned);
        }
}

/* The README: what the bundle holds and how to use it. */
static int readme(const BundleSpec *s, const char *pull, const char *push, char **ret) {
        return asprintf(ret,
                        "regvisor client bundle for \"%s\", registry %s\n"
                        "==========================================================\n\n"
                        "Install on the client machine, as root:\n"
                        "  regvisor client install --registry %s DIR\n"
                        "(--registry: the registry you expect, checked against the bundle's names;\n"
                        "see the plan first with --dry-run; remove with: regvisor client uninstall)\n\n"
                        "Contents (MANIFEST lists every file install writes, with its mode):\n"
                        "  - the registry's server CA, for pulls (%s) and pushes (%s)\n"
                        "  - %s's client certificate for pushes (mTLS on port %u)\n"
                        "  - %s\n"
                        "  - podman, skopeo, buildah: /etc/containers/certs.d/{%s,%s}/\n"
                        "  - docker: the same below /etc/docker/certs.d/\n"
                        "  - containerd: /etc/containerd/certs.d/{%s,%s}/hosts.toml, each a\n"
                        "    [host.\"https://NAME[:PORT]\"] table with ca and client and no top-level\n"
                        "    server line (containerd 1.6 rejects that, containerd issue 10027);\n"
                        "    ctr image pull --hosts-dir /etc/containerd/certs.d %s/IMAGE\n"
                        "  - %s%s%s\n"
                        "  - policy-fragment.json: the policy.json rules for %s and %s,\n"
                        "    merged into /etc/containers/policy.json (other entries stay)\n\n"
                        "The registry is named %s, never 127.0.0.1 or localhost: docker treats every\n"
                        "127.0.0.0/8 registry as insecure and then ignores certs.d (no CA check, no\n"
                        "client certificate), so pushes to 127.0.0.1:4443 fail.\n\n"
                        "files/etc/containers/certs.d/%s/client.key is a private key (mode 0600):\n"
                        "copy this directory only over a secure channel, keep its modes\n"
                        "(tar -p, scp -rp) and delete the copy after installing.\n",
                        s->client, s->host, pull, pull, push, s->client, (unsigned) s->push_port,
                        s->key_pem ? "its private key (mode 0600; made on the registry host)"
                                   : "no private key: it was made on the client (regvisor client request)",
                        pull, push, pull, push, pull,
                        !s->signers ? "no signing keys ([signing] keys is not set on the registry host)"
                        : s->signers_kind && *s->signers_kind ? s->signers_kind
                                                               : "the trusted signers' public keys",
                        s->signers ? ": " : "", s->signers ? s->key_path : "",
                        pull, push, s->host, push) < 0
                       ? -ENOMEM
                       : 0;
}

/* The certs.d trees a bundle fills, each in docker's layout (HOST/ca.crt,
 * HOST:PORT/{ca.crt,client.cert,client.key}): podman, skopeo and buildah
 * (containers-certs.d(5)), containerd (hosts.toml names its files; without
 * one it reads that layout too), docker. */
static const char *const trees[] = {CLIENT_CERTS_D, CLIENT_CONTAINERD_CERTS_D, CLIENT_DOCKER_CERTS_D};

/* The files install writes: CA, client certificate (and key) in both
 * trees, containerd's hosts.toml per port, the signers' keys. */
static int installed_files(const BundleSpec *s, const char *pull, const char *push, BundleFile *files, size_t *n) {
        size_t ca = strlen(s->ca_pem), cert = strlen(s->cert_pem);
        int r = 0;

        for (size_t t = 0; t < ELEMENTSOF(trees) && r >= 0; t++) {
                r = add(files, n, true, 0644, s->ca_pem, ca, NULL, "%s/%s/ca.crt", trees[t], pull);
                if (r >= 0)
                        r = add(files, n, true, 0644, s->ca_pem, ca, NULL, "%s/%s/ca.crt", trees[t], push);
                if (r >= 0)
                        r = add(files, n, true, 0644, s->cert_pem, cert, NULL, "%s/%s/client.cert", trees[t], push);
                if (r >= 0 && s->key_pem)
                        r = add(files, n, true, 0600, s->key_pem, strlen(s->key_pem), NULL, "%s/%s/client.key",
                                trees[t], push);
        }
        for (int with_client = 0; with_client <= 1 && r >= 0; with_client++) {
                char *toml;
                r = bundle_hosts_toml(s->host, with_client ? s->push_port : s->pull_port, with_client, &toml);
                if (r >= 0)
                        r = add(files, n, true, 0644, NULL, 0, toml, "%s/%s/hosts.toml", CLIENT_CONTAINERD_CERTS_D,
                                with_client ? push : pull);
        }
        if (r >= 0 && s->signers)
                r = add(files, n, true, 0644, s->signers, s->signers_size, NULL, "%s", s->key_path);
        return r;
}

/* MANIFEST: what install does, one line per file. */
static int manifest_text(const BundleSpec *s, const char *pull, const char *push, const BundleFile *files, size_t n,
                         char **ret) {
        _cleanup_free_ char *manifest = NULL;
        size_t msize = 0;
        FILE *m = open_memstream(&manifest, &msize);

        if (!m)
                return -ENOMEM;
        fprintf(m, "# regvisor client bundle for %s, registry %s\n"
                   "# MODE PATH: install writes BUNDLE/files/PATH to PATH\n"
                   "# policy FILE: install merges FILE into /etc/containers/policy.json\n"
                   "# registry NAME: the registry's names; install writes below NAME only\n"
                   "registry %s\n"
                   "registry %s\n",
                s->client, s->host, pull, push);
        for (size_t i = 0; i < n; i++)
                fprintf(m, "%04o %s\n", (unsigned) files[i].mode, files[i].path);
        /* The key stays where the client made it: install copies it from
         * CLIENT_OWN_KEYS_DIR. */
        if (!s->key_pem) {
                fprintf(m, "client %s\n", s->client);
                for (size_t t = 0; t < ELEMENTSOF(trees); t++)
                        fprintf(m, "client-key %s/%s/client.key\n", trees[t], push);
        }
        fprintf(m, "policy %s\n", BUNDLE_POLICY);
        if (fclose(m) != 0)
                return -ENOMEM;
        *ret = TAKE_PTR(manifest);
        return 0;
}

/* Writes the files into dir, a new directory (0700). */
static int write_files(const char *dir, const BundleFile *files, size_t n, char **ret_error) {
        _cleanup_close_ int dirfd = -EBADF;
        int r = 0;

        if (mkdir(dir, 0700) < 0) {
                r = -errno;
                if (asprintf(ret_error, "%s: %s%s", dir, strerror(-r),
                             r == -EEXIST ? " (a bundle is written into a new directory)" : "") < 0)
                        *ret_error = NULL;
                return r;
        }
        dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (dirfd < 0)
                r = -errno;
        for (size_t i = 0; i < n && r >= 0; i++) {
                r = write_at(dirfd, &files[i]);
                if (r < 0 && asprintf(ret_error, "%s/%s%s: %s", dir, files[i].installed ? BUNDLE_FILES : "",
                                      files[i].path, strerror(-r)) < 0)
                        *ret_error = NULL;
        }
        return r;
}

int bundle_write(const BundleSpec *s, const char *dir, char **ret_error) {
        BundleFile files[MAX_FILES] = {};
        _cleanup_free_ char *pull = NULL, *push = NULL, *manifest = NULL, *text = NULL;
        size_t n = 0;
        int r;

        if (!bundle_host_usable(s->host)) {
                if (asprintf(ret_error, "%s is in 127.0.0.0/8 or localhost: docker ignores certs.d for those; "
                                        "name the registry by a name or an address outside 127/8", s->host) < 0)
                        *ret_error = NULL;
                return -EINVAL;
        }
        if (bundle_authority(s->host, s->pull_port, &pull) < 0 || bundle_authority(s->host, s->push_port, &push) < 0)
                return -ENOMEM;

        r = installed_files(s, pull, push, files, &n);
        if (r >= 0)
                r = manifest_text(s, pull, push, files, n, &manifest);
        if (r >= 0)
                r = add(files, &n, false, 0644, manifest, strlen(manifest), NULL, BUNDLE_MANIFEST);
        if (r >= 0)
                r = add(files, &n, false, 0644, s->policy_fragment, strlen(s->policy_fragment), NULL, BUNDLE_POLICY);
        if (r >= 0 && (r = readme(s, pull, push, &text)) >= 0)
                r = add(files, &n, false, 0644, NULL, 0, TAKE_PTR(text), BUNDLE_README);
        if (r >= 0)
                r = write_files(dir, files, n, ret_error);
        files_free(files, n);
        return r;
}

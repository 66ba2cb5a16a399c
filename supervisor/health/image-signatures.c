/* SPDX-License-Identifier: MIT */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "image-signatures.h"
#include "macro.h"
#include "paths.h"
#include "sigcheck.h"
#include "sigfs.h"
#include "sigmanifest.h"
#include "sigreg.h"
#include "signkeys.h"
#include "sigverify.h"

#define REPOSITORIES_DIR "docker/registry/v2/repositories"
/* Repository names nest ("app/tools/x"); deeper than this is no registry's. */
#define REPOSITORY_DEPTH_MAX 16
/* A tag: [A-Za-z0-9_][A-Za-z0-9_.-]{0,127} (the distribution spec). */
#define TAG_MAX 128
/* How many tags the WARNING names before "and N more". */
#define REASON_TAGS 5

typedef struct {
        StoredTag *tags;
        size_t n;
} TagList;

static bool tag_valid(const char *s) {
        size_t n = strlen(s);

        if (n == 0 || n > TAG_MAX || s[0] == '.' || s[0] == '-')
                return false;
        return strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.-") == n;
}

void stored_tags_free(StoredTag *t, size_t n) {
        for (size_t i = 0; i < n; i++) {
                free(t[i].repository);
                free(t[i].tag);
        }
        free(t);
}

static void tag_list_done(TagList *l) {
        stored_tags_free(l->tags, l->n);
        *l = (TagList){};
}

static int open_dir_at(int dirfd, const char *name) {
        int fd = openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        return fd < 0 ? negative_errno() : fd;
}

/* Reads <tag>/current/link below tags_fd: "sha256:<hex>", nothing else.
 * Each component is opened without following a symlink: the storage is
 * written by the registry container, and a link planted there must not
 * make this (root) process read elsewhere. */
static int read_link(int tags_fd, const char *tag, char digest[static 72]) {
        _cleanup_close_ int tag_fd = -EBADF, current_fd = -EBADF, fd = -EBADF;
        char buf[80];
        ssize_t n;

        tag_fd = open_dir_at(tags_fd, tag);
        if (tag_fd < 0)
                return tag_fd;
        current_fd = open_dir_at(tag_fd, "current");
        if (current_fd < 0)
                return current_fd;
        fd = openat(current_fd, "link", O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
        if (fd < 0)
                return negative_errno();
        n = read(fd, buf, sizeof buf);
        if (n < 0)
                return negative_errno();
        if (!sigcheck_digest(buf, (size_t) n))
                return -EBADMSG;
        memcpy(digest, buf, (size_t) n);
        digest[n] = '\0';
        return 0;
}

static int tag_add(TagList *l, const char *repository, const char *tag, const char *digest) {
        StoredTag *t;

        if (l->n >= STORED_TAGS_MAX)
                return -E2BIG;
        t = reallocarray(l->tags, l->n + 1, sizeof *t);
        if (!t)
                return -ENOMEM;
        l->tags = t;
        t = &l->tags[l->n];
        *t = (StoredTag){.verdict = TAG_NOT_CHECKED, .why = "not checked before the deadline"};
        t->repository = strdup(repository);
        t->tag = strdup(tag);
        if (!t->repository || !t->tag) {
                free(t->repository);
                free(t->tag);
                return -ENOMEM;
        }
        (void) snprintf(t->digest, sizeof t->digest, "%s", digest);
        l->n++;
        return 0;
}

/* The tags of one repository (repo_fd holds _manifests). */
static int list_repository_tags(int repo_fd, const char *repository, TagList *l) {
        _cleanup_close_ int tags_fd = open_dir_at(repo_fd, "_manifests/tags");
        DIR *d;
        struct dirent *de;
        char digest[72];
        int r = 0;

        if (tags_fd == -ENOENT)
                return 0;
        if (tags_fd < 0)
                return tags_fd;
        d = fdopendir(tags_fd);
        if (!d)
                return negative_errno();
        tags_fd = -EBADF; /* the DIR's now */
        while (r >= 0 && (de = readdir(d))) {
                /* sha256-HEX.simplesig holds signatures ([signing] store = registry), not an image. */
                if (!tag_valid(de->d_name) || sigmanifest_is_tag(de->d_name, strlen(de->d_name)))
                        continue;
                /* A tag deleted through the API has no current/link. */
                if (read_link(dirfd(d), de->d_name, digest) < 0)
                        continue;
                r = tag_add(l, repository, de->d_name, digest);
        }
        (void) closedir(d);
        return r;
}

/* A DIR reading dir_fd's directory, on its own fd (dir_fd stays the caller's). */
static int opendir_dup(int dir_fd, DIR **ret) {
        int r, fd = fcntl(dir_fd, F_DUPFD_CLOEXEC, 3);

        if (fd < 0)
                return negative_errno();
        *ret = fdopendir(fd);
        if (!*ret) {
                r = negative_errno();
                (void) close(fd);
                return r;
        }
        return 0;
}

/* Every repository at or below dir_fd, whose name is prefix ("" at the top). */
static int walk_repositories(int dir_fd, const char *prefix, unsigned depth, TagList *l) {
        DIR *d;
        struct dirent *de;
        int r = opendir_dup(dir_fd, &d);

        if (r < 0)
                return r;
        while (r >= 0 && (de = readdir(d))) {
                _cleanup_free_ char *name = NULL;
                _cleanup_close_ int sub = -EBADF;

                if (de->d_name[0] == '_' || de->d_name[0] == '.')
                        continue;
                if (asprintf(&name, "%s%s%s", prefix, *prefix ? "/" : "", de->d_name) < 0) {
                        name = NULL;
                        r = -ENOMEM;
                        break;
                }
                if (!sigcheck_repository(name, strlen(name)))
                        continue;
                sub = open_dir_at(dirfd(d), de->d_name);
                if (sub < 0)
                        continue;
                r = list_repository_tags(sub, name, l);
                if (r >= 0 && depth < REPOSITORY_DEPTH_MAX)
                        r = walk_repositories(sub, name, depth + 1, l);
        }
        (void) closedir(d);
        return r;
}

static int tag_cmp(const void *a, const void *b) {
        const StoredTag *x = a, *y = b;
        int c = strcmp(x->repository, y->repository);
        return c ? c : strcmp(x->tag, y->tag);
}

/* Hands l's tags, sorted by repository then tag, to the caller. */
static void tag_list_take(TagList *l, StoredTag **ret, size_t *ret_n) {
        if (l->n > 0)
                qsort(l->tags, l->n, sizeof *l->tags, tag_cmp);
        *ret = TAKE_PTR(l->tags);
        *ret_n = l->n;
        l->n = 0;
}

int stored_tags_list(const char *storage, StoredTag **ret, size_t *ret_n) {
        _cleanup_close_ int top = -EBADF, repos = -EBADF;
        _cleanup_(tag_list_done) TagList l = {};
        int r;

        top = open(storage, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (top < 0)
                return negative_errno();
        repos = openat(top, REPOSITORIES_DIR, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (repos < 0 && errno != ENOENT)
                return negative_errno();
        if (repos >= 0) {
                r = walk_repositories(repos, "", 0, &l);
                if (r < 0)
                        return r;
        }
        tag_list_take(&l, ret, ret_n);
        return 0;
}

/* A shared store: the tags through the registry's API, one repository at a time. */
typedef struct {
        SigRegistry *reg;
        TagList *list;
        const char *repository;
} ApiWalk;

static int api_tag(const char *name, size_t len, void *userdata) {
        ApiWalk *w = userdata;
        char tag[TAG_MAX + 1], digest[SIGSTORE_DIGEST_LEN + 1];
        int r;

        if (len > TAG_MAX)
                return 0;
        memcpy(tag, name, len);
        tag[len] = '\0';
        /* sha256-HEX.simplesig[.<hex>] holds signatures, not an image. */
        if (!tag_valid(tag) || sigmanifest_is_tag(tag, len))
                return 0;
        r = sigreg_resolve(w->reg, w->repository, tag, digest);
        if (r == -ENOENT)
                return 0; /* deleted since it was listed */
        if (r < 0)
                return r;
        return tag_add(w->list, w->repository, tag, digest);
}

static int api_repository(const char *name, size_t len, void *userdata) {
        ApiWalk *w = userdata;
        _cleanup_free_ char *repository = strndup(name, len);

        if (!repository)
                return -ENOMEM;
        /* NAME/sha256-HEX.simplesig holds one digest's signatures, not images. */
        if (!sigcheck_repository(repository, len) || sigmanifest_is_repository(repository, len))
                return 0;
        w->repository = repository;
        return sigreg_each_tag(w->reg, repository, api_tag, w);
}

int stored_tags_list_api(SigRegistry *reg, StoredTag **ret, size_t *ret_n) {
        _cleanup_(tag_list_done) TagList l = {};
        ApiWalk w = {.reg = reg, .list = &l};
        int r;

        r = sigreg_each_repository(reg, api_repository, &w);
        if (r < 0)
                return r;
        tag_list_take(&l, ret, ret_n);
        return 0;
}

/* Opens path ("/"-separated, relative) below dir_fd one component at a time, never following a
 * symlink (the registry container writes the storage); the last one with flags. */
static int open_below(int dir_fd, const char *path, int flags) {
        _cleanup_close_ int fd = -EBADF;
        const char *p = path;

        for (;;) {
                const char *slash = strchr(p, '/');
                _cleanup_free_ char *name = slash ? strndup(p, (size_t) (slash - p)) : NULL;
                int next;

                if (slash && !name)
                        return -ENOMEM;
                if (!slash)
                        break;
                next = open_dir_at(fd >= 0 ? fd : dir_fd, name);
                if (next < 0)
                        return next;
                if (fd >= 0)
                        (void) close(fd);
                fd = next;
                p = slash + 1;
        }
        fd = openat(fd >= 0 ? fd : dir_fd, p, flags | O_NOFOLLOW | O_CLOEXEC);
        return fd < 0 ? negative_errno() : TAKE_FD(fd);
}

/* A blob's bytes from the storage's blob tree: a regular file of 1..max bytes. */
static int read_blob(int storage_fd, const char *digest, size_t max, uint8_t **ret, size_t *ret_len) {
        _cleanup_free_ char *path = NULL;
        _cleanup_close_ int fd = -EBADF;

        if (asprintf(&path, "docker/registry/v2/blobs/sha256/%.2s/%s/data", digest + 7, digest + 7) < 0) {
                path = NULL;
                return -ENOMEM;
        }
        fd = open_below(storage_fd, path, O_RDONLY | O_NONBLOCK);
        if (fd < 0)
                return fd;
        return sigfs_read_fd(fd, max, ret, ret_len);
}

/* The layers of the signature manifest at tag (below tags_fd) into layers[0..*n); nothing when
 * the tag has no current link. */
static int read_sig_manifest(int storage_fd, int tags_fd, const char *tag, const char *digest,
                             SigLayer layers[static SIGSTORE_MAX_PER_DIGEST], size_t *n) {
        _cleanup_free_ char *manifest = NULL;
        char mdigest[72];
        size_t len = 0;
        int r;

        *n = 0;
        r = read_link(tags_fd, tag, mdigest);
        if (r == -ENOENT)
                return 0;
        if (r < 0)
                return r;
        r = read_blob(storage_fd, mdigest, SIGMANIFEST_MAX, (uint8_t **) &manifest, &len);
        if (r < 0)
                return r;
        return sigmanifest_parse(manifest, len, digest, layers, n, NULL);
}

/* Adds layers[0..n) to all[0..*n_all) (room for SIGREG_SERVE_MAX), the same bytes once. */
static void add_layers(SigLayer *all, size_t *n_all, const SigLayer *layers, size_t n) {
        for (size_t i = 0; i < n && *n_all < SIGREG_SERVE_MAX; i++) {
                bool dup = false;

                for (size_t k = 0; k < *n_all; k++)
                        dup = dup || streq(all[k].digest, layers[i].digest);
                if (!dup)
                        all[(*n_all)++] = layers[i];
        }
}

/* The tags directory of a repository in the storage: an fd, 0 when there is none. */
static int open_tags_dir(int storage_fd, const char *repository, int *ret) {
        _cleanup_free_ char *tags = NULL;
        int fd;

        *ret = -EBADF;
        if (asprintf(&tags, REPOSITORIES_DIR "/%s/_manifests/tags", repository) < 0) {
                tags = NULL;
                return -ENOMEM;
        }
        fd = open_below(storage_fd, tags, O_RDONLY | O_DIRECTORY);
        if (fd == -ENOENT)
                return 0;
        if (fd < 0)
                return fd;
        *ret = fd;
        return 0;
}

/* [signing] store = registry: the signatures of repository@digest, read from the storage as the
 * signature store wrote them through the API (sigstore/sigmanifest.h, sigreg.h): the manifest at
 * sha256-HEX.simplesig in repository (the first version's, all in one) and one manifest per
 * signature at sha256-HEX.simplesig.<hex> in the digest's own repository
 * (sigmanifest_repository()), then their layers. No tag: no signature. A per-signature manifest
 * that is not the store's is left out, as the store's GET leaves it out. */
static int registry_signatures(int storage_fd, const char *repository, const char *digest, SigEntry **ret,
                               size_t *ret_n) {
        _cleanup_close_ int tags_fd = -EBADF, sig_tags_fd = -EBADF;
        SigLayer layers[SIGSTORE_MAX_PER_DIGEST], all[SIGREG_SERVE_MAX];
        char tag[SIGMANIFEST_TAG_LEN + 1], sig_repository[256];
        SigEntry *entries;
        size_t n = 0, n_all = 0;
        struct dirent *de;
        DIR *d;
        int r;

        *ret = NULL;
        *ret_n = 0;
        r = open_tags_dir(storage_fd, repository, &tags_fd);
        if (r < 0)
                return r;
        if (tags_fd < 0)
                return 0;
        sigmanifest_tag(digest, tag);
        r = read_sig_manifest(storage_fd, tags_fd, tag, digest, layers, &n);
        if (r < 0)
                return r;
        add_layers(all, &n_all, layers, n);

        if (sigmanifest_repository(repository, strlen(repository), digest, sig_repository) < 0)
                goto read;
        r = open_tags_dir(storage_fd, sig_repository, &sig_tags_fd);
        if (r < 0)
                return r;
        if (sig_tags_fd < 0)
                goto read;
        r = opendir_dup(sig_tags_fd, &d);
        if (r < 0)
                return r;
        while ((de = readdir(d)) && n_all < SIGREG_SERVE_MAX) {
                if (!sigmanifest_is_sig_tag_of(de->d_name, strlen(de->d_name), digest))
                        continue;
                r = read_sig_manifest(storage_fd, sig_tags_fd, de->d_name, digest, layers, &n);
                if (r == -EBADMSG)
                        continue;
                if (r < 0)
                        break;
                add_layers(all, &n_all, layers, n);
        }
        (void) closedir(d);
        if (r < 0 && r != -EBADMSG)
                return r;

read:
        entries = calloc(n_all ? n_all : 1, sizeof(SigEntry));
        if (!entries)
                return -ENOMEM;
        for (size_t i = 0; i < n_all; i++) {
                r = read_blob(storage_fd, all[i].digest, SIGSTORE_MAX_SIGNATURE, &entries[i].content,
                              &entries[i].content_len);
                if (r >= 0 && entries[i].content_len != all[i].size)
                        r = -EBADMSG;
                if (r < 0) {
                        sig_entries_free(entries, i + 1);
                        return r;
                }
                strcpy(entries[i].suffix, all[i].suffix);
        }
        *ret = entries;
        *ret_n = n_all;
        return 0;
}

/* The verdict on one tag: any stored signature of its digest that
 * verifies makes it signed. Signatures are read below the local store's
 * v1 (store_fd), or, with storage_fd, from the registry's storage, or, with
 * reg, through the registry's API (a shared store). */
static int judge_tag(StoredTag *t, int store_fd, int storage_fd, SigRegistry *reg, SigVerifier *v,
                     const char *const *names) {
        SigEntry *entries = NULL;
        size_t n = 0;
        int r;

        if (reg)
                r = sigreg_list(reg, t->repository, strlen(t->repository), t->digest, &entries, &n);
        else if (storage_fd >= 0)
                r = registry_signatures(storage_fd, t->repository, t->digest, &entries, &n);
        else
                r = store_fd < 0 ? 0
                                 : sigfs_list(store_fd, t->repository, strlen(t->repository), t->digest, &entries,
                                              &n);
        if (r < 0)
                return r;
        t->verdict = TAG_UNSIGNED;
        t->why = "no signature";
        for (size_t i = 0; i < n; i++) {
                const char *why = NULL;

                r = sigverify_check(v, entries[i].content, entries[i].content_len, t->repository, t->tag,
                                    t->digest, names, &why);
                if (r < 0)
                        break;
                if (r == 0) {
                        t->verdict = TAG_SIGNED;
                        t->why = NULL;
                        break;
                }
                t->verdict = TAG_BAD_SIGNATURE;
                t->why = why;
        }
        sig_entries_free(entries, n);
        return r < 0 ? r : 0;
}

/* "app/x:v1 (no signature), tools/y:2 (signed by an untrusted key) and 3 more" */
static char *unsigned_tags_text(const StoredTag *t, size_t n) {
        char *buf = NULL;
        size_t size = 0, named = 0, more = 0;
        FILE *f = open_memstream(&buf, &size);

        if (!f)
                return NULL;
        for (size_t i = 0; i < n; i++) {
                if (t[i].verdict == TAG_SIGNED || t[i].verdict == TAG_NOT_CHECKED)
                        continue;
                if (named++ < REASON_TAGS)
                        fprintf(f, "%s%s:%s (%s)", named > 1 ? ", " : "", t[i].repository, t[i].tag, t[i].why);
                else
                        more++;
        }
        if (more > 0)
                fprintf(f, " and %zu more", more);
        if (fclose(f) != 0) {
                free(buf);
                return NULL;
        }
        return buf;
}

/* The store's v1 directory, read-only; -ENOENT before anything was stored. */
static int open_store(void) {
        _cleanup_close_ int dir = open(SIGSTORE_DIR, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);

        if (dir < 0)
                return negative_errno();
        return open_dir_at(dir, "v1");
}

typedef struct {
        StoredTag *tags;
        size_t n;
        SignKeys keys;
        SigVerifier *verifier;
        int store_fd;
        int storage_fd; /* [signing] store = registry: the registry's storage */
        SigRegistry reg; /* a shared store: its API, where the proxy reaches it ([registry] listen) */
        bool api;
        char how[200];  /* which way it counted, for the message */
} Census;

static void census_done(Census *c) {
        stored_tags_free(c->tags, c->n);
        signkeys_done(&c->keys);
        sigverify_free(c->verifier);
        if (c->store_fd >= 0)
                (void) close(c->store_fd);
        if (c->storage_fd >= 0)
                (void) close(c->storage_fd);
        sigreg_done(&c->reg);
}

static int report(HealthResult *r, const Census *c, size_t counts[static _TAG_VERDICT_MAX]) {
        _cleanup_free_ char *list = NULL;
        size_t bad = counts[TAG_UNSIGNED] + counts[TAG_BAD_SIGNATURE];

        health_add_perf(r, "tags", (double) c->n, "", NULL, NULL);
        health_add_perf(r, "signed_tags", (double) counts[TAG_SIGNED], "", NULL, NULL);
        health_add_perf(r, "unsigned_tags", (double) bad, "", "0", NULL);
        if (bad > 0) {
                list = unsigned_tags_text(c->tags, c->n);
                if (!list)
                        return -ENOMEM;
                return health_set(r, HEALTH_WARNING, "%zu of %zu tags carry no valid signature by a trusted key: %s (%s)",
                                  bad, c->n, list, c->how);
        }
        if (counts[TAG_NOT_CHECKED] > 0)
                return health_set(r, HEALTH_UNKNOWN, "%zu of %zu tags checked (all signed) before the deadline (%s)",
                                  counts[TAG_SIGNED], c->n, c->how);
        return health_set(r, HEALTH_OK, "%zu of %zu tags carry a valid signature by a trusted key (%s)",
                          counts[TAG_SIGNED], c->n, c->how);
}

int health_check_image_signatures(const HealthContext *ctx, HealthResult *r) {
        const Config *cfg = ctx->config;
        _cleanup_(census_done) Census c = {.store_fd = -EBADF, .storage_fd = -EBADF};
        _cleanup_free_ char *error = NULL;
        const char *names[CONFIG_MAX_SERVER_NAMES + 1] = {};
        size_t counts[_TAG_VERDICT_MAX] = {};
        int e;

        if (cfg->signing_mode != SIGNING_GPG)
                return health_set(r, HEALTH_OK, "[signing] mode is sigstore: podman verifies those signatures "
                                                "itself; the store holds none to count");
        if (!cfg->storage) {
                /* A shared store keeps nothing here: count through the registry's API, on the
                 * address the proxy forwards to, bounded by the check's deadline. */
                char address[sizeof(((struct sockaddr_un *) NULL)->sun_path) + 16];

                c.api = true;
                e = config_registry_address(&cfg->listen, address, sizeof(address));
                if (e >= 0)
                        e = sigreg_init(&c.reg, address);
                if (e < 0)
                        return health_set(r, HEALTH_UNKNOWN, "[registry] listen: %s", strerror(-e));
                c.reg.deadline_ms = ctx->deadline_usec / 1000;
                (void) snprintf(c.how, sizeof(c.how), "counted through the registry's API at %s", address);
                e = stored_tags_list_api(&c.reg, &c.tags, &c.n);
                if (e < 0)
                        return health_set(r, HEALTH_UNKNOWN, "listing the tags through the registry's API at %s: %s (%s)",
                                          address, strerror(-e), c.reg.why);
        } else {
                (void) snprintf(c.how, sizeof(c.how), "counted in the storage directory %s", cfg->storage);
                e = stored_tags_list(cfg->storage, &c.tags, &c.n);
                if (e < 0)
                        return health_set(r, HEALTH_CRITICAL, "registry storage %s: %s", cfg->storage, strerror(-e));
        }
        if (c.n == 0)
                return health_set(r, HEALTH_OK, "no tags stored yet (%s)", c.how);
        if (!cfg->signing_keys)
                return health_set(r, HEALTH_WARNING,
                                  "%zu tags stored but [signing] keys is not set: the policy refuses every pull",
                                  c.n);
        e = signkeys_read(SIGNING_KEYS_PATH, &c.keys, &error);
        if (e < 0)
                return health_set(r, HEALTH_CRITICAL, "%s", error ? error : strerror(-e));
        e = sigverify_new(&c.keys, &c.verifier, &error);
        if (e < 0)
                return health_set(r, HEALTH_UNKNOWN, "cannot verify signatures: %s",
                                  error ? error : strerror(-e));
        if (cfg->signature_store == SIGNATURES_REGISTRY && c.api)
                ; /* the signatures through the same API */
        else if (cfg->signature_store == SIGNATURES_REGISTRY) {
                c.storage_fd = open(cfg->storage, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
                if (c.storage_fd < 0)
                        return health_set(r, HEALTH_CRITICAL, "registry storage %s: %s", cfg->storage,
                                          strerror(errno));
        } else {
                c.store_fd = open_store();
                if (c.store_fd < 0 && c.store_fd != -ENOENT)
                        return health_set(r, HEALTH_CRITICAL, "signature store %s: %s", SIGSTORE_DIR,
                                          strerror(-c.store_fd));
        }
        for (unsigned i = 0; i < cfg->n_server_names; i++)
                names[i] = cfg->servers[i].name;

        for (size_t i = 0; i < c.n; i++) {
                if (health_now_usec() >= ctx->deadline_usec)
                        break;
                e = judge_tag(&c.tags[i], c.store_fd, c.storage_fd,
                              c.api && cfg->signature_store == SIGNATURES_REGISTRY ? &c.reg : NULL, c.verifier, names);
                if (e < 0)
                        return health_set(r, HEALTH_UNKNOWN, "checking %s:%s: %s", c.tags[i].repository,
                                          c.tags[i].tag, strerror(-e));
        }
        for (size_t i = 0; i < c.n; i++)
                counts[c.tags[i].verdict]++;
        return report(r, &c, counts);
}

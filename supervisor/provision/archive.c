/* SPDX-License-Identifier: MIT */
/*
 * The manifests of an OCI image archive, read without podman: index.json of
 * an OCI layout directory, or of an OCI archive (the same layout in a tar).
 * The tar reader knows just enough of POSIX ustar for what `podman save`,
 * `skopeo copy` and GNU tar write: 512-byte headers, the ustar prefix, GNU
 * long names ('L'); extended headers are skipped.
 */
#include <errno.h>
#include <fcntl.h>
#include <json-c/json.h>
#include <openssl/evp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "archive.h"
#include "detail.h"
#include "fileio.h"
#include "macro.h"

#define INDEX_JSON_MAX (1024 * 1024)
#define TAR_BLOCK 512
#define REF_NAME_ANNOTATION "org.opencontainers.image.ref.name"

static inline void EVP_MD_CTX_freep(EVP_MD_CTX **p) {
        EVP_MD_CTX_free(*p);
}

/* ---- tar ----------------------------------------------------------------- */

static int read_full(int fd, void *buf, size_t n) {
        size_t done = 0;

        while (done < n) {
                ssize_t k = read(fd, (char *) buf + done, n - done);
                if (k < 0) {
                        if (errno == EINTR)
                                continue;
                        return negative_errno();
                }
                if (k == 0)
                        return -EBADMSG; /* truncated */
                done += (size_t) k;
        }
        return 0;
}

/* A NUL- or space-terminated octal field. */
static int tar_octal(const char *f, size_t len, uint64_t *ret) {
        uint64_t v = 0;
        size_t i = 0;

        while (i < len && f[i] == ' ')
                i++;
        for (; i < len && f[i] >= '0' && f[i] <= '7'; i++) {
                if (v > (UINT64_MAX >> 3))
                        return -EBADMSG;
                v = (v << 3) | (uint64_t) (f[i] - '0');
        }
        if (i < len && f[i] != 0 && f[i] != ' ')
                return -EBADMSG;
        *ret = v;
        return 0;
}

static uint64_t blocks(uint64_t size) {
        return (size + TAR_BLOCK - 1) / TAR_BLOCK * TAR_BLOCK;
}

/* Positions fd (from its start) at the content of the regular member
 * `name` ("./name" matches too) and returns its size in *ret_size.
 * -ENOENT when there is none, -EBADMSG when this is not a tar. */
static int tar_find(int fd, const char *name, uint64_t *ret_size) {
        _cleanup_free_ char *long_name = NULL;
        char h[TAR_BLOCK];
        int r;

        if (lseek(fd, 0, SEEK_SET) < 0)
                return negative_errno();
        for (;;) {
                char member[256 + 2];
                uint64_t size;
                const char *m;

                r = read_full(fd, h, sizeof h);
                if (r < 0)
                        return r;
                if (h[0] == 0)
                        return -ENOENT; /* the end-of-archive blocks */
                if (!strneq(h + 257, "ustar", 5) || tar_octal(h + 124, 12, &size) < 0)
                        return -EBADMSG;
                if (h[156] == 'L') { /* GNU: the next member's name */
                        if (size == 0 || size > 4096)
                                return -EBADMSG;
                        free(long_name);
                        long_name = malloc(blocks(size) + 1);
                        if (!long_name)
                                return -ENOMEM;
                        r = read_full(fd, long_name, blocks(size));
                        if (r < 0)
                                return r;
                        long_name[size] = 0;
                        continue;
                }
                if (long_name)
                        m = long_name;
                else {
                        /* prefix (155) "/" name (100), each NUL-terminated
                         * only when shorter than its field. */
                        if (h[345])
                                snprintf(member, sizeof member, "%.155s/%.100s", h + 345, h);
                        else
                                snprintf(member, sizeof member, "%.100s", h);
                        m = member;
                }
                if (strneq(m, "./", 2))
                        m += 2;
                if ((h[156] == '0' || h[156] == 0) && streq(m, name)) {
                        *ret_size = size;
                        return 0;
                }
                free(long_name);
                long_name = NULL;
                if (lseek(fd, (off_t) blocks(size), SEEK_CUR) < 0)
                        return negative_errno();
        }
}

/* ---- a file of the layout, in a directory or a tar ----------------------- */

/* Opens `member` of the archive at path: *ret_fd positioned at its content,
 * *ret_size its size. -ENOENT when the archive has no such member (or it is
 * not a regular file), -EBADMSG when path is neither a directory nor a
 * regular file. Files are opened with open_regular(): a FIFO named as the
 * archive or planted in a layout is refused at once, never waited on. */
static int member_open(const char *path, const char *member, int *ret_fd, uint64_t *ret_size) {
        _cleanup_close_ int fd = -EBADF;
        struct stat st;
        int r;

        fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (fd >= 0) {
                _cleanup_close_ int dir = TAKE_FD(fd);
                fd = open_regular(dir, member, O_NOFOLLOW, &st);
                if (fd == -EBADFD)
                        return -ENOENT;
                if (fd < 0)
                        return fd;
                *ret_size = (uint64_t) st.st_size;
        } else {
                if (errno != ENOTDIR)
                        return negative_errno();
                fd = open_regular(AT_FDCWD, path, 0, NULL);
                if (fd == -EBADFD)
                        return -EBADMSG;
                if (fd < 0)
                        return fd;
                r = tar_find(fd, member, ret_size);
                if (r < 0)
                        return r;
        }
        *ret_fd = TAKE_FD(fd);
        return 0;
}

/* ---- index.json ---------------------------------------------------------- */

static bool digest_valid(const char *d) {
        return d && strneq(d, "sha256:", 7) && strlen(d + 7) == 64 && strspn(d + 7, "0123456789abcdef") == 64;
}

static int parse_index(const char *path, const char *json, ImageArchive *a, char **ret_error) {
        json_object *root, *manifests;
        size_t n;
        int r = 0;

        root = json_tokener_parse(json);
        if (!root || !json_object_object_get_ex(root, "manifests", &manifests) ||
            !json_object_is_type(manifests, json_type_array)) {
                json_object_put(root);
                return detail_set(ret_error, -EBADMSG, "%s: index.json has no \"manifests\" array", path);
        }
        n = json_object_array_length(manifests);
        a->manifests = calloc(n ?: 1, sizeof *a->manifests);
        if (!a->manifests) {
                json_object_put(root);
                return -ENOMEM;
        }
        for (size_t i = 0; i < n && r >= 0; i++) {
                json_object *m = json_object_array_get_idx(manifests, i), *d, *ann, *ref;
                const char *digest = json_object_object_get_ex(m, "digest", &d) ? json_object_get_string(d) : NULL;

                if (!digest_valid(digest)) {
                        r = detail_set(ret_error, -EBADMSG, "%s: index.json: manifest %zu has no sha256 digest", path,
                                 i + 1);
                        break;
                }
                ArchiveManifest *out = &a->manifests[a->n_manifests++];
                bool named = json_object_object_get_ex(m, "annotations", &ann) &&
                             json_object_object_get_ex(ann, REF_NAME_ANNOTATION, &ref);
                out->digest = strdup(digest);
                out->ref_name = named ? strdup(json_object_get_string(ref)) : NULL;
                if (!out->digest || (named && !out->ref_name))
                        r = -ENOMEM;
        }
        json_object_put(root);
        return r;
}

int image_archive_read(const char *path, ImageArchive *ret, char **ret_error) {
        _cleanup_close_ int fd = -EBADF;
        _cleanup_free_ char *json = NULL;
        ImageArchive a = {};
        uint64_t size;
        int r;

        r = member_open(path, "index.json", &fd, &size);
        if (r == -ENOENT) {
                /* A docker-archive (podman save's default) has a
                 * manifest.json instead; its manifest digest exists only
                 * once loaded, so it cannot be pinned beforehand. */
                _cleanup_close_ int other = -EBADF;
                uint64_t ignored;
                if (member_open(path, "manifest.json", &other, &ignored) >= 0)
                        return detail_set(ret_error, -EMEDIUMTYPE,
                                    "%s is a docker-archive, which records no manifest digest to check against the "
                                    "pinned one: use an OCI archive (podman save --format oci-archive, or skopeo "
                                    "copy docker-archive:%s oci-archive:FILE)",
                                    path, path);
                return detail_set(ret_error, -EMEDIUMTYPE, "%s: no index.json: not an OCI archive or OCI layout", path);
        }
        if (r == -EBADMSG)
                return detail_set(ret_error, r, "%s: not an OCI archive (a tar) or an OCI layout directory", path);
        if (r < 0)
                return detail_set(ret_error, r, "%s: %s", path, strerror(-r));
        if (size > INDEX_JSON_MAX)
                return detail_set(ret_error, -EFBIG, "%s: index.json is larger than 1 MiB", path);
        json = malloc((size_t) size + 1);
        if (!json)
                return -ENOMEM;
        r = read_full(fd, json, (size_t) size);
        if (r < 0)
                return detail_set(ret_error, r, "%s: cannot read index.json: %s", path, strerror(-r));
        json[size] = 0;
        r = parse_index(path, json, &a, ret_error);
        if (r < 0) {
                image_archive_done(&a);
                return r;
        }
        *ret = a;
        return 0;
}

int image_archive_blob_ok(const char *path, const char *digest, char **ret_error) {
        _cleanup_(EVP_MD_CTX_freep) EVP_MD_CTX *md = NULL;
        _cleanup_close_ int fd = -EBADF;
        _cleanup_free_ char *member = NULL;
        unsigned char hash[EVP_MAX_MD_SIZE], buf[64 * 1024];
        char hex[2 * EVP_MAX_MD_SIZE + 1];
        unsigned hash_len = 0;
        uint64_t size;
        int r;

        if (!digest_valid(digest))
                return detail_set(ret_error, 0, "%s is not a sha256 digest", digest);
        if (asprintf(&member, "blobs/sha256/%s", digest + 7) < 0)
                return -ENOMEM;
        r = member_open(path, member, &fd, &size);
        if (r == -ENOENT)
                return detail_set(ret_error, 0, "%s: index.json lists %s but the archive has no %s", path, digest, member);
        if (r < 0)
                return detail_set(ret_error, r, "%s: %s: %s", path, member, strerror(-r));

        md = EVP_MD_CTX_new();
        if (!md || EVP_DigestInit_ex(md, EVP_sha256(), NULL) != 1)
                return -ENOMEM;
        while (size > 0) {
                size_t n = size < sizeof buf ? (size_t) size : sizeof buf;
                r = read_full(fd, buf, n);
                if (r < 0)
                        return detail_set(ret_error, r, "%s: %s: %s", path, member, strerror(-r));
                if (EVP_DigestUpdate(md, buf, n) != 1)
                        return -EIO;
                size -= n;
        }
        if (EVP_DigestFinal_ex(md, hash, &hash_len) != 1)
                return -EIO;
        for (unsigned i = 0; i < hash_len; i++)
                snprintf(hex + 2 * i, 3, "%02x", hash[i]);
        if (!streq(hex, digest + 7))
                return detail_set(ret_error, 0, "%s: %s does not hash to %s (sha256:%s): the archive is damaged", path,
                            member, digest, hex);
        return 1;
}

char *image_archive_describe(const ImageArchive *a) {
        _cleanup_free_ char *s = NULL;

        if (a->n_manifests == 0)
                return strdup("no manifests");
        for (size_t i = 0; i < a->n_manifests; i++) {
                const ArchiveManifest *m = &a->manifests[i];
                char *next;
                if (asprintf(&next, "%s%s%s%s%s%s", s ?: "", s ? ", " : "", m->ref_name ?: "", m->ref_name ? " (" : "",
                             m->digest, m->ref_name ? ")" : "") < 0)
                        return NULL;
                free(s);
                s = next;
        }
        return TAKE_PTR(s);
}

char *image_archive_manifest_name(const ArchiveManifest *m) {
        const char *slash, *colon;

        if (!m->ref_name || !(slash = strrchr(m->ref_name, '/')))
                return NULL;
        colon = strchr(slash, ':');
        return strndup(m->ref_name, colon ? (size_t) (colon - m->ref_name) : strlen(m->ref_name));
}

void image_archive_done(ImageArchive *a) {
        for (size_t i = 0; i < a->n_manifests; i++) {
                free(a->manifests[i].digest);
                free(a->manifests[i].ref_name);
        }
        free(a->manifests);
        *a = (ImageArchive){};
}

/* SPDX-License-Identifier: MIT */
/*
 * Provisioning steps that run podman as the service user: the pinned image
 * in its storage, and a check that podman keeps its state outside $HOME.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "archive.h"
#include "detail.h"
#include "macro.h"
#include "podman.h"
#include "provision.h"

static PodmanUser service_user(const Provision *p) {
        return (PodmanUser){
                .user = p->config->service_user,
                .uid = p->service_uid,
                .gid = p->service_gid,
                .home = p->service_home,
        };
}

/* "ARCHIVE holds ..., not the pinned IMAGE", and the line to pin what it
 * holds when that is one named image. */
static int archive_mismatch(const Config *c, const ImageArchive *a, char **ret_detail) {
        _cleanup_free_ char *holds = image_archive_describe(a), *name = NULL, *hint = NULL;

        if (!holds)
                return -ENOMEM;
        if (a->n_manifests == 1 && (name = image_archive_manifest_name(&a->manifests[0])) &&
            asprintf(&hint, "; to run what it holds, set [registry] image = %s@%s", name, a->manifests[0].digest) < 0)
                return -ENOMEM;
        return detail_set(ret_detail, -EBADMSG,
                          "%s holds %s, not the pinned image %s ([registry] image, or its default when unset)%s",
                          c->image_archive, holds, c->image, hint ?: "");
}

/* Before anything is created: whether [registry] image_archive holds the
 * pinned image, read from the archive itself (index.json, and the manifest
 * blob hashed). So a wrong archive, or one set without [registry] image,
 * fails here and in --dry-run, not after users and keys exist. */
int step_image_archive_check(Provision *p, const ProvisionStep *s, char **ret_detail) {
        const Config *c = p->config;
        _cleanup_(image_archive_done) ImageArchive a = {};
        _cleanup_free_ char *error = NULL;
        int r;

        if (!c->image_archive)
                return detail_set(ret_detail, 1, "none: %s is pulled", c->image);
        r = image_archive_read(c->image_archive, &a, &error);
        if (r < 0) {
                if (ret_detail)
                        *ret_detail = TAKE_PTR(error);
                return r;
        }
        for (size_t i = 0; i < a.n_manifests; i++) {
                if (!streq(a.manifests[i].digest, c->image_digest))
                        continue;
                r = image_archive_blob_ok(c->image_archive, c->image_digest, &error);
                if (r <= 0) {
                        if (ret_detail)
                                *ret_detail = TAKE_PTR(error);
                        return r < 0 ? r : -EBADMSG;
                }
                return detail_set(ret_detail, 1, "%s holds %s", c->image_archive, c->image_digest);
        }
        return archive_mismatch(c, &a, ret_detail);
}

int step_image_check(Provision *p, const ProvisionStep *s, char **ret_detail) {
        PodmanUser u;
        int r;

        if (!p->have_service_user)
                return -ESRCH;
        u = service_user(p);
        r = podman_image_present(&u, p->config->image);
        if (r == 0 && ret_detail &&
            asprintf(ret_detail, "%s %s", p->config->image_archive ? "load" : "pull", p->config->image) < 0)
                *ret_detail = NULL;
        return r;
}

int step_image_apply(Provision *p, const ProvisionStep *s, char **ret_detail) {
        const Config *c = p->config;
        _cleanup_free_ char *error = NULL, *name = NULL, *digests = NULL;
        PodmanUser u = service_user(p);
        int r;

        if (c->image_archive)
                r = podman_load(&u, c->image_archive, &error);
        else
                r = podman_pull(&u, c->image, &error);
        if (r < 0) {
                if (ret_detail && asprintf(ret_detail, "%s", error ? error : strerror(-r)) < 0)
                        *ret_detail = NULL;
                return r;
        }

        /* Never a silent retag: what was loaded must carry the pinned digest. */
        r = podman_image_present(&u, c->image);
        if (r < 0)
                return r;
        if (r == 0) {
                name = strndup(c->image, strcspn(c->image, "@"));
                if (name && strchr(name, ':') > strrchr(name, '/'))
                        *strrchr(name, ':') = 0;
                if (name)
                        (void) podman_image_digests(&u, name, &digests);
                if (ret_detail && asprintf(ret_detail, "%s does not provide %s (digests found for %s: %s)",
                                           c->image_archive ?: "the pull", c->image_digest, name ?: c->image,
                                           digests && *digests ? digests : "none") < 0)
                        *ret_detail = NULL;
                return -EBADMSG;
        }
        if (ret_detail && asprintf(ret_detail, "%s %s", c->image_archive ? "loaded" : "pulled", c->image) < 0)
                *ret_detail = NULL;
        return 0;
}

int step_podman_info_check(Provision *p, const ProvisionStep *s, char **ret_detail) {
        _cleanup_free_ char *detail = NULL;
        PodmanUser u;
        int r;

        if (!p->have_service_user)
                return -ESRCH;
        u = service_user(p);
        r = podman_state_outside_home(&u, 60, &detail);
        if (r == 1)
                return 1;
        if (ret_detail)
                *ret_detail = TAKE_PTR(detail);
        return r == 0 ? -EPERM : r;
}

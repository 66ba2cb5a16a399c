/* SPDX-License-Identifier: MIT */
/*
 * Provisioning steps that run podman as the service user: the pinned image
 * in its storage, and a check that podman keeps its state outside $HOME.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

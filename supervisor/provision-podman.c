/* SPDX-License-Identifier: MIT */
/*
 * Provisioning steps that run podman as the service user: the pinned image
 * in its storage, and a check that podman keeps its state outside $HOME.
 */
#include <errno.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

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

static bool path_below(const char *path, const char *dir) {
        size_t n = strlen(dir);
        return strneq(path, dir, n) && (path[n] == '/' || path[n] == 0);
}

/* Podman's per-user state under $HOME that must not exist. */
static const char *const home_podman_paths[] = {
        ".local/share/containers",
        ".config/containers",
        ".cache/containers",
};

int step_podman_info_check(Provision *p, const ProvisionStep *s, char **ret_detail) {
        _cleanup_free_ char *out = NULL, *err = NULL;
        json_object *root = NULL, *store, *graph, *run;
        PodmanUser u;
        int r;

        if (!p->have_service_user)
                return -ESRCH;
        u = service_user(p);
        char *args[] = {"info", "--format", "json", NULL};
        r = podman_run(&u, args, 60, &out, &err);
        if (r != 0) {
                if (ret_detail && asprintf(ret_detail, "podman info failed: %s", r < 0 ? strerror(-r) : err) < 0)
                        *ret_detail = NULL;
                return r < 0 ? r : -EIO;
        }
        root = json_tokener_parse(out);
        if (!root || !json_object_object_get_ex(root, "store", &store) ||
            !json_object_object_get_ex(store, "graphRoot", &graph) ||
            !json_object_object_get_ex(store, "runRoot", &run)) {
                json_object_put(root);
                if (ret_detail && asprintf(ret_detail, "podman info: unexpected output") < 0)
                        *ret_detail = NULL;
                return -EBADMSG;
        }
        const char *g = json_object_get_string(graph), *rr = json_object_get_string(run);
        r = 1;
        if (path_below(g, p->service_home) || path_below(rr, p->service_home)) {
                if (ret_detail && asprintf(ret_detail, "podman state under %s: GraphRoot %s, RunRoot %s",
                                           p->service_home, g, rr) < 0)
                        *ret_detail = NULL;
                r = -EPERM;
        }
        json_object_put(root);
        if (r < 0)
                return r;

        for (size_t i = 0; i < ELEMENTSOF(home_podman_paths); i++) {
                _cleanup_free_ char *path = NULL;
                struct stat st;
                if (asprintf(&path, "%s/%s", p->service_home, home_podman_paths[i]) < 0)
                        return -ENOMEM;
                if (lstat(path, &st) == 0) {
                        if (ret_detail && asprintf(ret_detail, "%s exists: podman wrote under $HOME", path) < 0)
                                *ret_detail = NULL;
                        return -EPERM;
                }
        }
        return 1;
}

/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <json-c/json.h>
#include <stdbool.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "macro.h"
#include "detail.h"
#include "podman.h"
#include "process.h"
#include "render.h"

int podman_user_run(const PodmanUser *u, char *const *argv, char *const *env, unsigned timeout_sec, bool keep_tail,
                    char **ret_stdout, char **ret_stderr) {
        ProcessOptions o = {
                .uid = u->uid,
                .gid = u->gid,
                .user = u->user,
                .home = u->home,
                .env = env,
                .timeout_usec = (uint64_t) timeout_sec * 1000000ULL,
                .keep_tail = keep_tail,
        };
        return process_run(argv, &o, ret_stdout, ret_stderr);
}

static int podman_exec(const PodmanUser *u, char *const *args, unsigned timeout_sec, bool keep_tail, char **ret_stdout,
                       char **ret_stderr) {
        _cleanup_strv_free_ char **global = NULL, **env = NULL;
        _cleanup_free_ char **argv = NULL;
        size_t n_args = strv_length(args), n_global, i = 0;
        int r;

        r = render_podman_invocation(u->uid, &global, &env);
        if (r < 0)
                return r;
        n_global = strv_length(global);
        argv = calloc(1 + n_global + n_args + 1, sizeof(char *));
        if (!argv)
                return -ENOMEM;
        argv[i++] = (char *) "podman";
        for (size_t k = 0; k < n_global; k++)
                argv[i++] = global[k];
        for (size_t k = 0; k < n_args; k++)
                argv[i++] = args[k];

        return podman_user_run(u, argv, env, timeout_sec ? timeout_sec : 120, keep_tail, ret_stdout, ret_stderr);
}

int podman_run(const PodmanUser *u, char *const *args, unsigned timeout_sec, char **ret_stdout, char **ret_stderr) {
        return podman_exec(u, args, timeout_sec, false, ret_stdout, ret_stderr);
}

int podman_run_tail(const PodmanUser *u, char *const *args, unsigned timeout_sec, char **ret_stdout,
                    char **ret_stderr) {
        return podman_exec(u, args, timeout_sec, true, ret_stdout, ret_stderr);
}

/* The first line of a tool's stderr, for one-line error messages. */
static char *first_line(char *s) {
        if (!s)
                return NULL;
        s[strcspn(s, "\n")] = 0;
        return s;
}

int podman_image_present(const PodmanUser *u, const char *reference) {
        char *args[] = {"image", "exists", (char *) reference, NULL};
        int r = podman_run(u, args, 60, NULL, NULL);

        if (r < 0)
                return r;
        return r == 0 ? 1 : r == 1 ? 0 : -EIO;
}

static int podman_simple(const PodmanUser *u, char **args, unsigned timeout, char **ret_error) {
        _cleanup_free_ char *err = NULL;
        int r = podman_run(u, args, timeout, NULL, &err);

        if (r == 0)
                return 0;
        if (ret_error && asprintf(ret_error, "podman %s: %s", args[0],
                                  r < 0 ? strerror(-r) : (first_line(err) ?: "failed")) < 0)
                *ret_error = NULL;
        return r < 0 ? r : -EIO;
}

int podman_load(const PodmanUser *u, const char *archive, char **ret_error) {
        char *args[] = {"load", "--quiet", "--input", (char *) archive, NULL};
        return podman_simple(u, args, 600, ret_error);
}

int podman_pull(const PodmanUser *u, const char *reference, char **ret_error) {
        char *args[] = {"pull", "--quiet", (char *) reference, NULL};
        return podman_simple(u, args, 1800, ret_error);
}

int podman_image_digests(const PodmanUser *u, const char *name, char **ret_digests) {
        _cleanup_free_ char *filter = NULL, *out = NULL;
        int r;

        if (asprintf(&filter, "reference=%s", name) < 0)
                return -ENOMEM;
        char *args[] = {"images", "--digests", "--noheading", "--filter", filter, "--format", "{{.Digest}}", NULL};
        r = podman_run(u, args, 60, &out, NULL);
        if (r < 0)
                return r;
        if (r != 0)
                return -EIO;
        for (char *c = out; *c; c++)
                if (*c == '\n')
                        *c = ' ';
        *ret_digests = TAKE_PTR(out);
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

int podman_state_outside_home(const PodmanUser *u, unsigned timeout_sec, char **ret_detail) {
        _cleanup_free_ char *out = NULL, *err = NULL, *where = NULL;
        json_object *root = NULL, *store, *graph, *run;
        int r;

        char *args[] = {"info", "--format", "json", NULL};
        r = podman_run(u, args, timeout_sec, &out, &err);
        if (r != 0)
                return detail_set(ret_detail, r < 0 ? r : -EIO, "podman info failed: %s",
                                  r < 0 ? strerror(-r) : (first_line(err) ?: "no message"));
        root = json_tokener_parse(out);
        if (!root || !json_object_object_get_ex(root, "store", &store) ||
            !json_object_object_get_ex(store, "graphRoot", &graph) ||
            !json_object_object_get_ex(store, "runRoot", &run)) {
                json_object_put(root);
                return detail_set(ret_detail, -EBADMSG, "podman info: unexpected output");
        }
        const char *g = json_object_get_string(graph), *rr = json_object_get_string(run);
        r = !(path_below(g, u->home) || path_below(rr, u->home));
        if (asprintf(&where, "GraphRoot %s, RunRoot %s", g, rr) < 0)
                where = NULL;
        json_object_put(root);
        if (!where)
                return -ENOMEM;
        if (r == 0)
                return detail_set(ret_detail, 0, "podman state under %s: %s", u->home, where);

        for (size_t i = 0; i < ELEMENTSOF(home_podman_paths); i++) {
                _cleanup_free_ char *path = NULL;
                struct stat st;
                if (asprintf(&path, "%s/%s", u->home, home_podman_paths[i]) < 0)
                        return -ENOMEM;
                if (lstat(path, &st) == 0)
                        return detail_set(ret_detail, 0, "%s exists: podman wrote under $HOME", path);
        }
        return detail_set(ret_detail, 1, "%s", where);
}

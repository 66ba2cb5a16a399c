/* SPDX-License-Identifier: MIT */
/* What `regvisor gc` runs as the registry's service user (gc.h): never as
 * root in a tree that user owns. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gc.h"
#include "macro.h"
#include "paths.h"
#include "process.h"

/* The collection walks every manifest and blob: give it time. */
#define COLLECT_TIMEOUT_SEC 3600
#define TOOL_TIMEOUT_SEC 600

static int tool_error(const char *what, int status, char *err, char **ret_error) {
        if (err)
                err[strcspn(err, "\n")] = 0;
        if ((status < 0 ? asprintf(ret_error, "%s: %s", what, strerror(-status))
                        : asprintf(ret_error, "%s: exit status %d%s%s", what, status, err && *err ? ": " : "",
                                   err ? err : "")) < 0)
                *ret_error = NULL;
        return status < 0 ? status : -EIO;
}

int gc_collect(const PodmanUser *u, bool dry_run, GcSummary *ret, char **ret_error) {
        _cleanup_free_ char *out = NULL, *err = NULL;
        char *args[] = {"exec",           REGISTRY_CONTAINER_NAME, "/bin/registry",
                        "garbage-collect", dry_run ? "--dry-run" : CONTAINER_CONFIG_PATH,
                        dry_run ? CONTAINER_CONFIG_PATH : NULL, NULL};
        int r;

        /* A line per manifest and blob, then the summary: on a big
         * registry that is far past the capture's cap, so keep the tail. */
        r = podman_run_tail(u, args, COLLECT_TIMEOUT_SEC, &out, &err);
        if (r != 0)
                return tool_error(dry_run ? "registry garbage-collect --dry-run" : "registry garbage-collect", r,
                                  err, ret_error);
        if (gc_parse_summary(out ? out : "", ret) < 0 && gc_parse_summary(err ? err : "", ret) < 0) {
                *ret_error = strdup("registry garbage-collect printed no summary line");
                return -EBADMSG;
        }
        return 0;
}

static int as_user(const PodmanUser *u, char *const *argv, char **ret_out, char **ret_err) {
        return podman_user_run(u, argv, NULL, TOOL_TIMEOUT_SEC, false, ret_out, ret_err);
}

int gc_purge_uploads(const PodmanUser *u, const char *storage, unsigned max_age, char **ret_error) {
        _cleanup_free_ char *root = NULL, *mmin = NULL, *out = NULL, *err = NULL;
        int r, n = 0;

        if (asprintf(&root, "%s/docker/registry/v2/repositories", storage) < 0 ||
            asprintf(&mmin, "+%u", max_age / 60) < 0)
                return -ENOMEM;
        /* An upload session is <repository>/_uploads/<id>/ with its bytes in
         * data: one whose data has not changed for max_age is abandoned. */
        char *find[] = {"find", root, "-path", "*/_uploads/*/data", "-type", "f", "-mmin", mmin,
                        "-printf", "%h\\0", NULL};
        r = as_user(u, find, &out, &err);
        if (r == 1 && err && strstr(err, "No such file"))
                return 0; /* nothing was ever pushed */
        if (r != 0)
                return tool_error("find (upload sessions)", r, err, ret_error);
        /* process_run() NUL-terminates: walk the \0-separated names up to
         * the final one (an empty list is one empty string). */
        for (char *dir = out; out && *dir; dir += strlen(dir) + 1) {
                _cleanup_free_ char *rm_err = NULL;
                /* Only a session find just named, below the repositories,
                 * whole: a name cut by the capture's cap is not one. */
                if (!gc_upload_session_dir(root, dir))
                        continue;
                char *rm[] = {"rm", "-rf", "--one-file-system", "--", dir, NULL};
                r = as_user(u, rm, NULL, &rm_err);
                if (r != 0)
                        return tool_error("rm (upload session)", r, rm_err, ret_error);
                n++;
        }
        return n;
}

int64_t gc_storage_bytes(const PodmanUser *u, const char *storage) {
        _cleanup_free_ char *out = NULL;
        char *du[] = {"du", "-s", "-B1", "--", (char *) storage, NULL};
        int64_t bytes;
        int r;

        r = as_user(u, du, &out, NULL);
        if (r != 0)
                return r < 0 ? r : -EIO;
        if (!out || sscanf(out, "%" SCNd64, &bytes) != 1 || bytes < 0)
                return -EBADMSG;
        return bytes;
}

/* SPDX-License-Identifier: MIT */
/*
 * Before `regvisor run` supervises anything: the service user's manager is
 * running (started over the system bus if need be) and reachable, and the
 * pinned image is in its storage (loaded from image_archive if not). Each
 * failure is one journal line; the caller exits.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bus.h"
#include "log.h"
#include "macro.h"
#include "paths.h"
#include "render.h"
#include "supervisor.h"

#define USER_MANAGER_TIMEOUT_USEC (60ULL * USEC_PER_SEC)
#define PODMAN_TIMEOUT_USEC (600ULL * USEC_PER_SEC)

int preflight_user_manager(Supervisor *s) {
        _cleanup_free_ char *unit = NULL, *state = NULL, *error = NULL, *linger = NULL;
        struct stat st;
        int r;

        if (asprintf(&linger, LINGER_DIR "/%s", s->config.service_user) < 0 ||
            asprintf(&unit, "user@%u.service", (unsigned) s->uid) < 0)
                return log_error_errno(-ENOMEM, "out of memory");
        if (lstat(linger, &st) < 0)
                log_warning("linger is off for %s (%s missing): its manager stops at logout; "
                            "run `regvisor provision`", s->config.service_user, linger);

        r = bus_get_unit_active_state(s->system_bus, unit, &state, &error);
        if (r < 0)
                return log_error_errno(r, "cannot read the state of %s: %s", unit, error ? error : strerror(-r));
        if (!streq(state, "active")) {
                log_unit_event(LOG_NOTICE, "user-manager-start", unit, "%s is %s: starting it", unit, state);
                free(TAKE_PTR(error));
                r = bus_start_unit(s->system_bus, unit, USER_MANAGER_TIMEOUT_USEC, &error);
                if (r < 0)
                        return log_error_errno(r, "cannot start %s: %s", unit, error ? error : strerror(-r));
        }

        r = bus_open_user_manager(s->config.service_user, &s->user_bus);
        if (r < 0)
                return log_error_errno(r, "cannot reach the user manager of %s: %s", s->config.service_user,
                                       strerror(-r));
        return 0;
}

/* Runs `podman GLOBAL-OPTIONS args...` as the service user inside its own
 * manager, as a transient unit: the supervisor itself never execs podman,
 * so its own unit can stay sandboxed (rootless podman needs setuid
 * newuidmap and more than the supervisor's capability bounding set). */
static int podman_in_user_manager(Supervisor *s, char *const *args, int *ret_status, char **ret_error) {
        _cleanup_strv_free_ char **global = NULL, **env = NULL;
        _cleanup_free_ char **argv = NULL, *name = NULL;
        static unsigned counter;
        size_t n = strv_length(args), i = 0;
        int r;

        r = render_podman_invocation(s->uid, &global, &env);
        if (r < 0)
                return r;
        argv = calloc(1 + 4 + n + 1, sizeof(char *));
        if (!argv || asprintf(&name, "regvisor-podman-%d-%u.service", (int) getpid(), ++counter) < 0)
                return -ENOMEM;
        argv[i++] = (char *) PODMAN_PATH;
        for (char **g = global; *g; g++)
                argv[i++] = *g;
        for (char *const *a = args; *a; a++)
                argv[i++] = *a;
        return bus_run_transient(s->user_bus, name, argv, env, PODMAN_TIMEOUT_USEC, ret_status, ret_error);
}

/* The image must be in the service user's storage with exactly the pinned
 * digest before anything starts; it is never run by tag. */
int preflight_image(Supervisor *s) {
        _cleanup_free_ char *error = NULL;
        char *exists[] = {(char *) "image", (char *) "exists", s->config.image, NULL};
        int status, r;

        r = podman_in_user_manager(s, exists, &status, &error);
        if (r < 0)
                return log_error_errno(r, "cannot query %s's image storage: %s", s->config.service_user,
                                       error ? error : strerror(-r));
        if (status == 0)
                return 0;
        if (status != 1)
                return log_error_errno(-EIO,
                                       "podman image exists failed with status %d (journalctl --user -M %s@ shows "
                                       "why): refusing to start",
                                       status, s->config.service_user);
        if (!s->config.image_archive)
                return log_error_errno(-ENOENT,
                                       "%s is not in %s's image storage with that digest: refusing to start "
                                       "(run `regvisor provision` to pull it, or set [registry] image_archive)",
                                       s->config.image, s->config.service_user);

        log_event(LOG_NOTICE, "image-load", "loading %s from %s", s->config.image, s->config.image_archive);
        char *load[] = {(char *) "load", (char *) "--quiet", (char *) "--input", s->config.image_archive, NULL};
        r = podman_in_user_manager(s, load, &status, &error);
        if (r >= 0 && status == 0)
                r = podman_in_user_manager(s, exists, &status, &error);
        if (r < 0 || status != 0)
                return log_error_errno(r < 0 ? r : -EBADMSG, "%s does not provide %s: refusing to start",
                                       s->config.image_archive, s->config.image);
        return 0;
}

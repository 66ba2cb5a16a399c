/* SPDX-License-Identifier: MIT */
/*
 * The supervisor's side of `regvisor gc` (common/config/maintenance.h): the
 * registry runs read-only exactly while a live gc asks for it.
 *
 * Read-only is Distribution's storage.maintenance.readonly, set through the
 * environment: the rendered unit passes REGISTRY_STORAGE_MAINTENANCE_READONLY
 * through to the container (podman --env NAME: only when set), and it is set
 * or unset in the service user's manager (SetEnvironment), then the unit is
 * restarted as a planned restart (table_restart(): not a failure). The
 * registry's config file is never touched, so nothing on disk can keep it
 * read-only: at start the variable is unset unless a live gc asks for it,
 * and on every healthy probe a gc that vanished without saying so (killed,
 * crashed) is noticed and both pushes and read-write are restored.
 */
#include <errno.h>
#include <string.h>

#include "log.h"
#include "macro.h"
#include "maintenance.h"
#include "paths.h"
#include "supervisor.h"

#define READONLY_VAR "REGISTRY_STORAGE_MAINTENANCE_READONLY"

static int set_readonly_env(Supervisor *s, bool readonly) {
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        int r;

        if (readonly)
                r = sd_bus_call_method(s->user_bus, "org.freedesktop.systemd1", "/org/freedesktop/systemd1",
                                       "org.freedesktop.systemd1.Manager", "SetEnvironment", &error, NULL, "as", 1,
                                       READONLY_VAR "={\"enabled\": true}");
        else
                r = sd_bus_call_method(s->user_bus, "org.freedesktop.systemd1", "/org/freedesktop/systemd1",
                                       "org.freedesktop.systemd1.Manager", "UnsetEnvironment", &error, NULL, "as",
                                       1, READONLY_VAR);
        if (r < 0)
                return log_error_errno(r, "cannot %s %s in the service user's manager: %s",
                                       readonly ? "set" : "unset", READONLY_VAR,
                                       error.message ? error.message : strerror(-r));
        return 0;
}

/* 1 when the service user's manager has the read-only variable set (a
 * supervisor that was killed in a gc's window left it), 0 when not. */
static int readonly_env_set(Supervisor *s) {
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        _cleanup_strv_free_ char **env = NULL;
        int r;

        r = sd_bus_get_property_strv(s->user_bus, "org.freedesktop.systemd1", "/org/freedesktop/systemd1",
                                     "org.freedesktop.systemd1.Manager", "Environment", &error, &env);
        if (r < 0)
                return log_error_errno(r, "cannot read the service user's manager's environment: %s",
                                       error.message ? error.message : strerror(-r));
        for (char **e = env; e && *e; e++)
                if (strneq(*e, READONLY_VAR "=", strlen(READONLY_VAR "=")))
                        return 1;
        return 0;
}

int maintenance_start(Supervisor *s) {
        int was;

        s->maintenance = maintenance_read(MAINTENANCE_PATH);
        s->registry_readonly = s->maintenance == MAINTENANCE_READONLY;
        was = readonly_env_set(s);
        if (was < 0)
                return was;
        if (s->registry_readonly) {
                log_event(LOG_NOTICE, "maintenance", "regvisor gc holds its window: the registry runs read-only");
                return set_readonly_env(s, true) < 0 ? -EIO : !was;
        }
        if (was)
                log_event(LOG_WARNING, "gc-abandoned",
                          "the registry was left read-only by a regvisor gc that is gone: restarting it read-write");
        return set_readonly_env(s, false) < 0 ? -EIO : was;
}

void maintenance_sync(Supervisor *s, bool reloading) {
        MaintenanceMode m = maintenance_read(MAINTENANCE_PATH);
        bool readonly = m == MAINTENANCE_READONLY;

        if ((int) m != s->maintenance) {
                bool abandoned = !reloading && m == MAINTENANCE_NONE;
                log_event(abandoned ? LOG_WARNING : LOG_NOTICE, abandoned ? "gc-abandoned" : "maintenance",
                          "maintenance %s -> %s%s", maintenance_mode_to_string(s->maintenance),
                          maintenance_mode_to_string(m),
                          abandoned ? ": regvisor gc ended without reopening; reopening pushes and read-write" : "");
                s->maintenance = m;
                /* gc reloads itself; a gc that died cannot: the proxy
                 * reads the state again now and reopens pushes. */
                if (abandoned)
                        reconf_start(s);
        }
        if (readonly == s->registry_readonly)
                return;
        if (set_readonly_env(s, readonly) < 0)
                return; /* tried again on the next tick or reload */
        s->registry_readonly = readonly;
        log_unit_event(LOG_NOTICE, "maintenance", REGISTRY_UNIT_NAME, "restarting the registry %s",
                       readonly ? "read-only (regvisor gc)" : "read-write");
        if (s->state == SUP_STARTING || s->state == SUP_WAITING_READY || s->state == SUP_RUNNING)
                table_restart(s);
        /* In backoff the next start picks the variable up; gave-up waits
         * for a reload, which starts it. */
}

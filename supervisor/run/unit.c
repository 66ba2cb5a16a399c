/* SPDX-License-Identifier: MIT */
/*
 * The registry's user unit, regvisor-registry.service, through the service
 * user's systemd manager over D-Bus: StartUnit/StopUnit jobs followed to
 * their JobRemoved, and the unit's PropertiesChanged read as "down". What
 * the bus says becomes an event of the table (table.c).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <systemd/sd-bus.h>

#include "bus.h"
#include "log.h"
#include "macro.h"
#include "paths.h"
#include "supervisor.h"

static void set_job(Supervisor *s, const char *job) {
        free(s->job);
        s->job = job ? strdup(job) : NULL;
}

static void job_finished(Supervisor *s, const char *result) {
        set_job(s, NULL);
        if (streq(result, "done"))
                table_dispatch(s, SUP_EV_JOB_DONE, NULL);
        else {
                _cleanup_free_ char *why = NULL;
                if (asprintf(&why, "job ended with result '%s'", result) < 0)
                        why = NULL;
                table_dispatch(s, SUP_EV_JOB_FAILED, why ? why : result);
        }
}

static int on_job_reply(sd_bus_message *m, void *userdata, sd_bus_error *ret_error) {
        Supervisor *s = userdata;
        const sd_bus_error *e = sd_bus_message_get_error(m);
        const char *path;

        s->job_call = sd_bus_slot_unref(s->job_call);
        if (e) {
                table_dispatch(s, SUP_EV_JOB_FAILED, e->message ? e->message : e->name);
                return 0;
        }
        if (sd_bus_message_read(m, "o", &path) < 0) {
                table_dispatch(s, SUP_EV_JOB_FAILED, "unparsable job reply");
                return 0;
        }
        if (s->early_job && streq(s->early_job, path)) {
                _cleanup_free_ char *result = TAKE_PTR(s->early_result);
                free(TAKE_PTR(s->early_job));
                job_finished(s, result);
                return 0;
        }
        set_job(s, path);
        return 0;
}

int unit_queue_job(Supervisor *s, const char *method) {
        int r;

        s->job_call = sd_bus_slot_unref(s->job_call);
        set_job(s, NULL);
        free(TAKE_PTR(s->early_job));
        free(TAKE_PTR(s->early_result));
        r = sd_bus_call_method_async(s->user_bus, &s->job_call, "org.freedesktop.systemd1",
                                     "/org/freedesktop/systemd1", "org.freedesktop.systemd1.Manager", method,
                                     on_job_reply, s, "ss", REGISTRY_UNIT_NAME, "replace");
        if (r < 0)
                return log_error_errno(r, "%s(%s): %s", method, REGISTRY_UNIT_NAME, strerror(-r));
        return 0;
}

static int on_job_removed(sd_bus_message *m, void *userdata, sd_bus_error *ret_error) {
        Supervisor *s = userdata;
        const char *path, *unit, *result;
        uint32_t id;

        if (sd_bus_message_read(m, "uoss", &id, &path, &unit, &result) < 0 || !streq(unit, REGISTRY_UNIT_NAME))
                return 0;
        if (s->job && streq(s->job, path)) {
                job_finished(s, result);
                return 0;
        }
        if (s->job_call && !s->job) {
                /* Our call's reply is still on its way: keep the result. */
                free(s->early_job);
                free(s->early_result);
                s->early_job = strdup(path);
                s->early_result = strdup(result);
        }
        return 0;
}

void unit_reset_failed(Supervisor *s) {
        sd_bus_error e = SD_BUS_ERROR_NULL;

        /* Clears the failed state and systemd's own start rate limit, which
         * would otherwise refuse our restarts. */
        (void) sd_bus_call_method(s->user_bus, "org.freedesktop.systemd1", "/org/freedesktop/systemd1",
                                  "org.freedesktop.systemd1.Manager", "ResetFailedUnit", &e, NULL, "s",
                                  REGISTRY_UNIT_NAME);
        sd_bus_error_free(&e);
}

static int on_unit_properties_changed(sd_bus_message *m, void *userdata, sd_bus_error *ret_error) {
        Supervisor *s = userdata;
        _cleanup_free_ char *active = NULL, *sub = NULL;
        sd_bus_error e = SD_BUS_ERROR_NULL;
        int r;

        r = sd_bus_get_property_string(s->user_bus, "org.freedesktop.systemd1", s->unit_path,
                                       "org.freedesktop.systemd1.Unit", "ActiveState", &e, &active);
        if (r >= 0)
                r = sd_bus_get_property_string(s->user_bus, "org.freedesktop.systemd1", s->unit_path,
                                               "org.freedesktop.systemd1.Unit", "SubState", &e, &sub);
        sd_bus_error_free(&e);
        if (r < 0)
                return 0;
        log_debug("%s: %s (%s)", REGISTRY_UNIT_NAME, active, sub);

        /* Down: failed, inactive, or waiting for systemd's own auto-restart,
         * which we take over so that our backoff and limits apply. */
        if (streq(active, "failed") || streq(active, "inactive") || streq(sub, "auto-restart")) {
                _cleanup_free_ char *why = NULL;
                if (asprintf(&why, "unit is %s (%s)", active, sub) < 0)
                        why = NULL;
                table_dispatch(s, SUP_EV_UNIT_DOWN, why ? why : active);
        }
        return 0;
}

int unit_watch(Supervisor *s) {
        _cleanup_free_ char *error = NULL;
        sd_bus_error e = SD_BUS_ERROR_NULL;
        int r;

        r = sd_bus_attach_event(s->user_bus, s->event, SD_EVENT_PRIORITY_NORMAL);
        if (r < 0)
                return log_error_errno(r, "cannot attach the user bus to the event loop: %s", strerror(-r));
        /* Without Subscribe() systemd sends no unit PropertiesChanged. */
        r = sd_bus_call_method(s->user_bus, "org.freedesktop.systemd1", "/org/freedesktop/systemd1",
                               "org.freedesktop.systemd1.Manager", "Subscribe", &e, NULL, NULL);
        if (r < 0) {
                log_error_errno(r, "Subscribe: %s", e.message ? e.message : strerror(-r));
                sd_bus_error_free(&e);
                return r;
        }
        r = bus_get_unit_path(s->user_bus, REGISTRY_UNIT_NAME, &s->unit_path, &error);
        if (r < 0)
                return log_error_errno(r, "LoadUnit(%s): %s", REGISTRY_UNIT_NAME, error ? error : strerror(-r));
        r = sd_bus_match_signal(s->user_bus, NULL, "org.freedesktop.systemd1", "/org/freedesktop/systemd1",
                                "org.freedesktop.systemd1.Manager", "JobRemoved", on_job_removed, s);
        if (r >= 0)
                r = sd_bus_match_signal(s->user_bus, NULL, "org.freedesktop.systemd1", s->unit_path,
                                        "org.freedesktop.DBus.Properties", "PropertiesChanged",
                                        on_unit_properties_changed, s);
        if (r < 0)
                return log_error_errno(r, "cannot subscribe to %s's signals: %s", REGISTRY_UNIT_NAME, strerror(-r));
        return 0;
}

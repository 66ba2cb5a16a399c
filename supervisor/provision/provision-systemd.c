/* SPDX-License-Identifier: MIT */
/*
 * Provisioning steps that talk to systemd and logind over D-Bus: linger for
 * the service user (so its user manager runs without a login) and loading
 * the registry's user unit into that manager.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bus.h"
#include "detail.h"
#include "macro.h"
#include "paths.h"
#include "provision.h"

#define USER_MANAGER_TIMEOUT_USEC (60ULL * 1000000ULL)

static int user_manager_unit(const Provision *p, char **ret) {
        return asprintf(ret, "user@%u.service", (unsigned) p->service_uid) < 0 ? -ENOMEM : 0;
}

static bool linger_file_exists(const Provision *p) {
        _cleanup_free_ char *f = NULL;
        struct stat st;

        if (asprintf(&f, LINGER_DIR "/%s", p->config->service_user) < 0)
                return false;
        return lstat(f, &st) == 0;
}

typedef struct {
        const Provision *p;
        const char *unit;
} WaitUser;

/* > 0 once user@UID.service is active and the user's manager answers on its
 * bus; 0 while not yet. */
static int user_manager_ready(sd_bus *system_bus, void *userdata) {
        WaitUser *w = userdata;
        _cleanup_free_ char *state = NULL;
        _cleanup_bus_ sd_bus *user_bus = NULL;

        if (bus_get_unit_active_state(system_bus, w->unit, &state, NULL) < 0 || !streq(state, "active"))
                return 0;
        if (bus_open_user_manager(w->p->config->service_user, &user_bus) < 0)
                return 0;
        return bus_ping_manager(user_bus, NULL) >= 0;
}

int step_linger_check(Provision *p, const ProvisionStep *s, char **ret_detail) {
        _cleanup_free_ char *unit = NULL;
        sd_bus *bus;
        int r;

        if (!p->have_service_user)
                return -ESRCH;
        r = user_manager_unit(p, &unit);
        if (r < 0)
                return r;
        r = provision_system_bus(p, &bus);
        if (r < 0) {
                if (ret_detail && asprintf(ret_detail, "cannot connect to the system bus: %s", strerror(-r)) < 0)
                        *ret_detail = NULL;
                return r;
        }
        if (!linger_file_exists(p)) {
                if (ret_detail && asprintf(ret_detail, "enable linger for %s", p->config->service_user) < 0)
                        *ret_detail = NULL;
                return 0;
        }
        r = user_manager_ready(bus, &(WaitUser){p, unit});
        if (r == 0 && ret_detail && asprintf(ret_detail, "%s is not running", unit) < 0)
                *ret_detail = NULL;
        return r;
}

int step_linger_apply(Provision *p, const ProvisionStep *s, char **ret_detail) {
        _cleanup_free_ char *unit = NULL, *error = NULL, *state = NULL;
        sd_bus *bus;
        int r;

        r = user_manager_unit(p, &unit);
        if (r < 0)
                return r;
        r = provision_system_bus(p, &bus);
        if (r < 0)
                return r;

        if (!linger_file_exists(p)) {
                r = bus_set_user_linger(bus, p->service_uid, true, &error);
                if (r < 0) {
                        if (ret_detail && asprintf(ret_detail, "SetUserLinger(%u): %s", (unsigned) p->service_uid,
                                                   error ? error : strerror(-r)) < 0)
                                *ret_detail = NULL;
                        return r;
                }
        }

        /* logind starts the user manager when linger is enabled; when linger
         * was on already but the manager is down, start it ourselves. */
        if (bus_get_unit_active_state(bus, unit, &state, NULL) >= 0 && !streq(state, "active") &&
            !streq(state, "activating")) {
                free(TAKE_PTR(error));
                r = bus_start_unit(bus, unit, USER_MANAGER_TIMEOUT_USEC, &error);
                if (r < 0) {
                        if (ret_detail && asprintf(ret_detail, "starting %s: %s", unit, error ? error : strerror(-r)) < 0)
                                *ret_detail = NULL;
                        return r;
                }
        }

        r = bus_wait_until(bus, USER_MANAGER_TIMEOUT_USEC, user_manager_ready, &(WaitUser){p, unit});
        if (r < 0) {
                if (ret_detail && asprintf(ret_detail, "%s did not become ready with its bus within %llus", unit,
                                           USER_MANAGER_TIMEOUT_USEC / 1000000ULL) < 0)
                        *ret_detail = NULL;
                return r;
        }
        if (ret_detail && asprintf(ret_detail, "linger on for %s, %s active", p->config->service_user, unit) < 0)
                *ret_detail = NULL;
        return 0;
}

/* 1 when the user manager has the registry unit loaded from its current
 * file; 0 when a daemon-reload is needed. */
int step_user_manager_reload_check(Provision *p, const ProvisionStep *s, char **ret_detail) {
        _cleanup_bus_ sd_bus *bus = NULL;
        _cleanup_free_ char *path = NULL, *error = NULL, *load_state = NULL;
        sd_bus_error e = SD_BUS_ERROR_NULL;
        int need_reload = 0, r;

        if (!p->have_service_user)
                return -ESRCH;
        r = bus_open_user_manager(p->config->service_user, &bus);
        if (r < 0) {
                if (ret_detail && asprintf(ret_detail, "cannot reach the user manager of %s: %s",
                                           p->config->service_user, strerror(-r)) < 0)
                        *ret_detail = NULL;
                return r;
        }
        r = bus_get_unit_path(bus, REGISTRY_UNIT_NAME, &path, &error);
        if (r < 0) {
                if (ret_detail && asprintf(ret_detail, "LoadUnit(%s): %s", REGISTRY_UNIT_NAME, error ? error : "") < 0)
                        *ret_detail = NULL;
                return r;
        }
        r = sd_bus_get_property_trivial(bus, "org.freedesktop.systemd1", path, "org.freedesktop.systemd1.Unit",
                                        "NeedDaemonReload", &e, 'b', &need_reload);
        if (r >= 0)
                r = sd_bus_get_property_string(bus, "org.freedesktop.systemd1", path, "org.freedesktop.systemd1.Unit",
                                               "LoadState", &e, &load_state);
        sd_bus_error_free(&e);
        if (r < 0)
                return r;
        if (!need_reload && streq(load_state, "loaded"))
                return 1;
        if (ret_detail && asprintf(ret_detail, "%s is %s%s", REGISTRY_UNIT_NAME, load_state,
                                   need_reload ? ", changed on disk" : "") < 0)
                *ret_detail = NULL;
        return 0;
}

int step_user_manager_reload_apply(Provision *p, const ProvisionStep *s, char **ret_detail) {
        _cleanup_bus_ sd_bus *bus = NULL;
        _cleanup_free_ char *error = NULL;
        int r;

        r = bus_open_user_manager(p->config->service_user, &bus);
        if (r < 0)
                return r;
        r = bus_reload_manager(bus, &error);
        if (r < 0) {
                if (ret_detail && asprintf(ret_detail, "Reload: %s", error ? error : strerror(-r)) < 0)
                        *ret_detail = NULL;
                return r;
        }
        if (ret_detail && asprintf(ret_detail, "user manager of %s reloaded", p->config->service_user) < 0)
                *ret_detail = NULL;
        return 0;
}

/* ---- deprovision ---------------------------------------------------------- */

#define STOP_TIMEOUT_USEC (120ULL * 1000000ULL)

/* A unit that is running or on its way (not "inactive" nor "failed"). */
static bool state_running(const char *state) {
        return !streq(state, "inactive") && !streq(state, "failed");
}

/* 1 when user@UID.service is running, 0 when not, negative errno. */
static int user_manager_running(Provision *p, const char *unit) {
        _cleanup_free_ char *state = NULL;
        sd_bus *bus;
        int r;

        r = provision_system_bus(p, &bus);
        if (r >= 0)
                r = bus_get_unit_active_state(bus, unit, &state, NULL);
        return r < 0 ? r : state_running(state);
}

int step_linger_undo_check(Provision *p, const ProvisionStep *s, char **ret_detail) {
        _cleanup_free_ char *unit = NULL;
        bool linger = p->have_service_user && linger_file_exists(p);
        int r = p->have_service_user ? user_manager_unit(p, &unit) : -ESRCH;

        if (r >= 0)
                r = user_manager_running(p, unit);
        if (r < 0)
                return unit ? detail_set(ret_detail, r, "%s: %s", unit, strerror(-r)) : r;
        if (!linger && !r)
                return 1;
        detail_set(ret_detail, 0, "%s%s%s", linger ? "disable linger for " : "", linger ? p->config->service_user : "",
                   r ? (linger ? ", stop user manager" : "stop user manager") : "");
        return 0;
}

int step_linger_undo(Provision *p, const ProvisionStep *s, char **ret_detail) {
        _cleanup_free_ char *unit = NULL, *error = NULL;
        sd_bus *bus;
        int r;

        r = user_manager_unit(p, &unit);
        if (r >= 0)
                r = provision_system_bus(p, &bus);
        if (r < 0)
                return r;
        if (linger_file_exists(p)) {
                r = bus_set_user_linger(bus, p->service_uid, false, &error);
                if (r < 0)
                        return detail_set(ret_detail, r, "SetUserLinger(%u, false): %s", (unsigned) p->service_uid,
                                          error ?: strerror(-r));
        }
        /* logind stops the manager of a user without linger and sessions
         * only when it collects the user; stop it now, so that nothing of
         * the user runs when its files or the user itself go next. */
        r = bus_stop_unit(bus, unit, STOP_TIMEOUT_USEC, &error);
        if (r < 0)
                return detail_set(ret_detail, r, "stopping %s: %s", unit, error ?: strerror(-r));
        return detail_set(ret_detail, 0, "linger off for %s, %s stopped", p->config->service_user, unit);
}

int step_registry_unit_undo_check(Provision *p, const ProvisionStep *s, char **ret_detail) {
        _cleanup_bus_ sd_bus *bus = NULL;
        _cleanup_free_ char *unit = NULL, *state = NULL, *error = NULL;
        int r;

        if (!p->have_service_user)
                return -ESRCH;
        r = user_manager_unit(p, &unit);
        if (r >= 0)
                r = user_manager_running(p, unit);
        if (r <= 0) /* no manager: nothing of it runs */
                return r < 0 ? detail_set(ret_detail, r, "%s: %s", unit, strerror(-r)) : 1;
        r = bus_open_user_manager(p->config->service_user, &bus);
        if (r < 0)
                return detail_set(ret_detail, r, "cannot reach the user manager of %s: %s", p->config->service_user,
                                  strerror(-r));
        r = bus_get_unit_active_state(bus, REGISTRY_UNIT_NAME, &state, &error);
        if (r < 0)
                return detail_set(ret_detail, r, "%s: %s", REGISTRY_UNIT_NAME, error ?: strerror(-r));
        if (!state_running(state))
                return 1;
        return detail_set(ret_detail, 0, "stop %s (%s)", REGISTRY_UNIT_NAME, state);
}

int step_registry_unit_undo(Provision *p, const ProvisionStep *s, char **ret_detail) {
        _cleanup_bus_ sd_bus *bus = NULL;
        _cleanup_free_ char *error = NULL;
        int r = bus_open_user_manager(p->config->service_user, &bus);

        if (r >= 0)
                r = bus_stop_unit(bus, REGISTRY_UNIT_NAME, STOP_TIMEOUT_USEC, &error);
        if (r < 0)
                return detail_set(ret_detail, r, "stopping %s: %s", REGISTRY_UNIT_NAME, error ?: strerror(-r));
        return detail_set(ret_detail, 0, "%s stopped", REGISTRY_UNIT_NAME);
}

/* The system units of regvisor, activators first (a socket or a timer left
 * running would start the service again). Ones this host does not have
 * are passed over. */
static const char *const system_units[] = {
        "regvisor.socket",
        "regvisor-gc.timer",
        "regvisor-gc.service",
        REGVISOR_UNIT_NAME,
};

/* What is left of unit: *ret_running, *ret_enabled; 0 when the host has no
 * such unit. */
static int system_unit_state(sd_bus *bus, const char *unit, bool *ret_running, bool *ret_enabled) {
        _cleanup_free_ char *load = NULL, *active = NULL, *file = NULL;
        int r;

        r = bus_get_unit_string(bus, unit, "LoadState", &load, NULL);
        if (r < 0)
                return r;
        if (streq(load, "not-found"))
                return 0;
        r = bus_get_unit_string(bus, unit, "ActiveState", &active, NULL);
        if (r >= 0)
                r = bus_get_unit_string(bus, unit, "UnitFileState", &file, NULL);
        if (r < 0)
                return r;
        *ret_running = state_running(active);
        *ret_enabled = streq(file, "enabled") || streq(file, "enabled-runtime");
        return 1;
}

int step_system_units_undo_check(Provision *p, const ProvisionStep *s, char **ret_detail) {
        _cleanup_free_ char *plan = NULL;
        sd_bus *bus;
        int r;

        r = provision_system_bus(p, &bus);
        if (r < 0)
                return detail_set(ret_detail, r, "cannot connect to the system bus: %s", strerror(-r));
        for (size_t i = 0; i < ELEMENTSOF(system_units); i++) {
                bool running = false, enabled = false;
                char *more;

                r = system_unit_state(bus, system_units[i], &running, &enabled);
                if (r < 0)
                        return detail_set(ret_detail, r, "%s: %s", system_units[i], strerror(-r));
                if (!running && !enabled)
                        continue;
                if (asprintf(&more, "%s%s%s%s%s %s", plan ?: "", plan ? ", " : "", running ? "stop" : "",
                             running && enabled ? " and " : "", enabled ? "disable" : "", system_units[i]) < 0)
                        return -ENOMEM;
                free(plan);
                plan = more;
        }
        if (!plan)
                return 1;
        return detail_set(ret_detail, 0, "%s", plan);
}

int step_system_units_undo(Provision *p, const ProvisionStep *s, char **ret_detail) {
        sd_bus *bus;
        int r;

        r = provision_system_bus(p, &bus);
        if (r < 0)
                return r;
        for (size_t i = 0; i < ELEMENTSOF(system_units); i++) {
                _cleanup_free_ char *error = NULL;
                bool running = false, enabled = false;

                r = system_unit_state(bus, system_units[i], &running, &enabled);
                if (r > 0 && enabled)
                        r = bus_disable_unit(bus, system_units[i], &error);
                if (r >= 0 && running)
                        r = bus_stop_unit(bus, system_units[i], STOP_TIMEOUT_USEC, &error);
                if (r < 0)
                        return detail_set(ret_detail, r, "%s: %s", system_units[i], error ?: strerror(-r));
        }
        return detail_set(ret_detail, 0, "regvisor's system units stopped and disabled");
}

/* regvisor.socket: loaded from its current file, enabled, and listening.
 * It is started only where regvisor.service is installed (else no one would
 * be activated) and not running: a running one binds the ports itself, and
 * hands them over at `systemctl stop regvisor; systemctl start
 * regvisor.socket regvisor` (INSTALL.md, Day 2). */
typedef struct {
        char *load, *file_state, *active, *service_load, *service_active;
        int need_reload;
} SocketState;

static void socket_state_done(SocketState *st) {
        free_many(st->load, st->file_state, st->active, st->service_load, st->service_active);
}

static int socket_state(sd_bus *bus, SocketState *st) {
        _cleanup_free_ char *path = NULL;
        sd_bus_error e = SD_BUS_ERROR_NULL;
        int r;

        r = bus_get_unit_path(bus, PROXY_SOCKET_UNIT_NAME, &path, NULL);
        if (r >= 0)
                r = sd_bus_get_property_trivial(bus, "org.freedesktop.systemd1", path, "org.freedesktop.systemd1.Unit",
                                                "NeedDaemonReload", &e, 'b', &st->need_reload);
        sd_bus_error_free(&e);
        if (r >= 0)
                r = bus_get_unit_string(bus, PROXY_SOCKET_UNIT_NAME, "LoadState", &st->load, NULL);
        if (r >= 0)
                r = bus_get_unit_string(bus, PROXY_SOCKET_UNIT_NAME, "UnitFileState", &st->file_state, NULL);
        if (r >= 0)
                r = bus_get_unit_string(bus, PROXY_SOCKET_UNIT_NAME, "ActiveState", &st->active, NULL);
        if (r >= 0)
                r = bus_get_unit_string(bus, REGVISOR_UNIT_NAME, "LoadState", &st->service_load, NULL);
        if (r >= 0)
                r = bus_get_unit_string(bus, REGVISOR_UNIT_NAME, "ActiveState", &st->service_active, NULL);
        return r;
}

/* Whether the socket should be started now: regvisor.service is there to
 * be activated and does not hold the ports itself. */
static bool socket_may_start(const SocketState *st) {
        return streq(st->service_load, "loaded") && !streq(st->active, "active") &&
               !streq(st->service_active, "active") && !streq(st->service_active, "activating") &&
               !streq(st->service_active, "reloading");
}

int step_proxy_socket_check(Provision *p, const ProvisionStep *s, char **ret_detail) {
        SocketState st = {};
        sd_bus *bus;
        int r;

        r = provision_system_bus(p, &bus);
        if (r >= 0)
                r = socket_state(bus, &st);
        if (r < 0) {
                socket_state_done(&st);
                return r;
        }
        r = !st.need_reload && streq(st.load, "loaded") && streq(st.file_state, "enabled") && !socket_may_start(&st);
        if (ret_detail && !r && asprintf(ret_detail, "%s is %s, %s, %s", PROXY_SOCKET_UNIT_NAME,
                                         st.need_reload ? "changed on disk" : st.load, st.file_state, st.active) < 0)
                *ret_detail = NULL;
        else if (ret_detail && r && !streq(st.active, "active") && streq(st.service_active, "active") &&
                 asprintf(ret_detail, "enabled; %s binds the ports itself until `systemctl stop regvisor; "
                                      "systemctl start %s regvisor`",
                          REGVISOR_UNIT_NAME, PROXY_SOCKET_UNIT_NAME) < 0)
                *ret_detail = NULL;
        socket_state_done(&st);
        return r;
}

int step_proxy_socket_apply(Provision *p, const ProvisionStep *s, char **ret_detail) {
        _cleanup_free_ char *error = NULL;
        SocketState st = {};
        const char *what = "enabled";
        sd_bus *bus;
        int r;

        r = provision_system_bus(p, &bus);
        if (r >= 0)
                r = bus_reload_manager(bus, &error);
        if (r >= 0)
                r = bus_enable_unit_file(bus, PROXY_SOCKET_UNIT_NAME, &error);
        if (r >= 0)
                r = socket_state(bus, &st);
        if (r >= 0 && socket_may_start(&st)) {
                what = "enabled and started";
                r = bus_start_unit(bus, PROXY_SOCKET_UNIT_NAME, USER_MANAGER_TIMEOUT_USEC, &error);
        }
        if (ret_detail && asprintf(ret_detail, r < 0 ? "%s: %s" : "%s %s", PROXY_SOCKET_UNIT_NAME,
                                   r < 0 ? (error ? error : strerror(-r)) : what) < 0)
                *ret_detail = NULL;
        socket_state_done(&st);
        return r;
}

/* Deprovision walks system-units first, which stops and disables the
 * socket with the service; this row finds it so, or does it when the
 * system-units row was refused and the operator runs the rest. */
static int proxy_socket_state(Provision *p, sd_bus **ret_bus, bool *ret_running, bool *ret_enabled) {
        int r = provision_system_bus(p, ret_bus);

        *ret_running = *ret_enabled = false;
        return r < 0 ? r : system_unit_state(*ret_bus, PROXY_SOCKET_UNIT_NAME, ret_running, ret_enabled);
}

int step_proxy_socket_undo_check(Provision *p, const ProvisionStep *s, char **ret_detail) {
        bool running, enabled;
        sd_bus *bus;
        int r = proxy_socket_state(p, &bus, &running, &enabled);

        if (r < 0)
                return detail_set(ret_detail, r, "%s: %s", PROXY_SOCKET_UNIT_NAME, strerror(-r));
        if (!running && !enabled)
                return 1;
        return detail_set(ret_detail, 0, "stop and disable %s", PROXY_SOCKET_UNIT_NAME);
}

int step_proxy_socket_undo(Provision *p, const ProvisionStep *s, char **ret_detail) {
        _cleanup_free_ char *error = NULL;
        bool running, enabled;
        sd_bus *bus;
        int r = proxy_socket_state(p, &bus, &running, &enabled);

        if (r > 0 && enabled)
                r = bus_disable_unit(bus, PROXY_SOCKET_UNIT_NAME, &error);
        if (r >= 0 && running)
                r = bus_stop_unit(bus, PROXY_SOCKET_UNIT_NAME, STOP_TIMEOUT_USEC, &error);
        if (r < 0)
                return detail_set(ret_detail, r, "%s: %s", PROXY_SOCKET_UNIT_NAME, error ?: strerror(-r));
        return detail_set(ret_detail, 0, "%s stopped and disabled", PROXY_SOCKET_UNIT_NAME);
}

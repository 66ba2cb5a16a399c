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
        free(st->load);
        free(st->file_state);
        free(st->active);
        free(st->service_load);
        free(st->service_active);
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

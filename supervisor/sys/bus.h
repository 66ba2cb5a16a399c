/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * The D-Bus calls regvisor makes to systemd and logind, one function per
 * method, in the shape of systemd's own callers. Library-like: returns a
 * negative errno and, where given, a message in *ret_error (owned by the
 * caller) naming the D-Bus error; the caller logs.
 */

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include <systemd/sd-bus.h>

/* The system bus, or the bus of `user` (/run/user/UID/bus, where its
 * manager answers), connected as that user by a short-lived child that
 * drops to the user's uid and gid and hands the socket back: no PAM, no
 * login session, no wtmp record. Needs CAP_SETUID/CAP_SETGID and
 * /run/user visible. -ESRCH for an unknown user, the child's errno for a
 * failed connect (-ENOENT: the user's bus is not up). */
int bus_open_system(sd_bus **ret_bus);
int bus_open_user_manager(const char *user, sd_bus **ret_bus);

/* logind: org.freedesktop.login1.Manager.SetUserLinger(uid, enable, interactive=false). */
int bus_set_user_linger(sd_bus *bus, uid_t uid, bool enable, char **ret_error);

/* systemd: ActiveState of unit ("active", "inactive", "failed", ...); a
 * unit systemd has not loaded reads as "inactive". *ret_state is allocated. */
/* A string property of org.freedesktop.systemd1.Unit ("LoadState",
 * "UnitFileState", ...) of unit (loaded first). 0, or a negative errno with
 * the bus error in *ret_error. */
int bus_get_unit_string(sd_bus *bus, const char *unit, const char *property, char **ret, char **ret_error);

/* `systemctl enable unit` over the bus (EnableUnitFiles). The manager
 * must have been reloaded since the file changed. */
int bus_enable_unit_file(sd_bus *bus, const char *unit, char **ret_error);

int bus_get_unit_active_state(sd_bus *bus, const char *unit, char **ret_state, char **ret_error);

/* systemd: D-Bus object path of a unit (LoadUnit, so it exists even when
 * inactive). */
int bus_get_unit_path(sd_bus *bus, const char *unit, char **ret_path, char **ret_error);

/* systemd: StartUnit(unit, "replace") and wait until the job is removed, at
 * most timeout_usec. Returns 0 when the job's result is "done", -EIO
 * otherwise with the result in *ret_error. */
int bus_start_unit(sd_bus *bus, const char *unit, uint64_t timeout_usec, char **ret_error);

/* systemd: ReloadUnit(unit, "replace") and wait for its job, as
 * bus_start_unit(): 0 when the reload's result is "done" (ExecReload ran and
 * succeeded), -EIO otherwise with the result in *ret_error. */
int bus_reload_unit(sd_bus *bus, const char *unit, uint64_t timeout_usec, char **ret_error);

/* systemd: StopUnit(unit, "replace"), waited for as bus_start_unit(). */
int bus_stop_unit(sd_bus *bus, const char *unit, uint64_t timeout_usec, char **ret_error);

/* systemd: DisableUnitFiles([unit], runtime=false), then Manager.Reload, as
 * `systemctl disable` does. */
int bus_disable_unit(sd_bus *bus, const char *unit, char **ret_error);

/* systemd: Manager.Reload (daemon-reload), waiting for it to finish. */
int bus_reload_manager(sd_bus *bus, char **ret_error);

/* org.freedesktop.DBus.Peer.Ping to systemd on this bus: 0 if it answers. */
int bus_ping_manager(sd_bus *bus, char **ret_error);

/* Polls fn(bus, userdata) until it returns > 0 or timeout_usec passes
 * (-ETIMEDOUT). fn returning < 0 aborts with that error. */
int bus_wait_until(sd_bus *bus, uint64_t timeout_usec, int (*fn)(sd_bus *bus, void *userdata), void *userdata);

static inline void sd_bus_unrefp_(sd_bus **b) {
        if (*b)
                sd_bus_flush_close_unref(*b);
}
#define _cleanup_bus_ _cleanup_(sd_bus_unrefp_)

/* systemd: StartTransientUnit of a oneshot service NAME running argv (with
 * env, NULL-terminated, may be NULL) in that manager, waiting at most
 * timeout_usec. *ret_exit_status is the command's exit status (0 when the
 * job finished "done"). The unit is reset afterwards so nothing is left
 * behind. Used to run podman as the service user inside its own manager
 * rather than from the sandboxed supervisor. */
int bus_run_transient(sd_bus *bus, const char *name, char *const *argv, char *const *env, uint64_t timeout_usec,
                      int *ret_exit_status, char **ret_error);

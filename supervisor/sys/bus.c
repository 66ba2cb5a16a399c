/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <grp.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <systemd/sd-bus.h>
#include <time.h>
#include <unistd.h>

#include "bus.h"
#include "macro.h"

#define SYSTEMD_DEST "org.freedesktop.systemd1"
#define SYSTEMD_PATH "/org/freedesktop/systemd1"
#define SYSTEMD_MANAGER "org.freedesktop.systemd1.Manager"
#define LOGIND_DEST "org.freedesktop.login1"
#define LOGIND_PATH "/org/freedesktop/login1"
#define LOGIND_MANAGER "org.freedesktop.login1.Manager"

static uint64_t now_usec(void) {
        struct timespec ts;
        (void) clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t) ts.tv_sec * 1000000ULL + (uint64_t) ts.tv_nsec / 1000ULL;
}

/* Turns a failed call into an allocated message for the caller to log. */
static int bus_error_to_string(const sd_bus_error *error, int r, char **ret_error) {
        if (ret_error) {
                const char *m = sd_bus_error_is_set(error) ? error->message : strerror(-r);
                const char *n = sd_bus_error_is_set(error) ? error->name : NULL;
                if (n ? asprintf(ret_error, "%s (%s)", m, n) < 0 : asprintf(ret_error, "%s", m) < 0)
                        *ret_error = NULL;
        }
        return r;
}

int bus_open_system(sd_bus **ret_bus) {
        return sd_bus_open_system(ret_bus);
}

/* How long the child may take to connect: a unix connect() only blocks
 * when the listener's backlog is full. */
#define USER_BUS_CONNECT_TIMEOUT_MS 5000

/* In the child: become uid/gid with no supplementary groups, connect to
 * path and send the connected socket (or the errno) back over fd. Only
 * async-signal-safe calls between fork and _exit. */
_noreturn_ static void connect_child(int fd, uid_t uid, gid_t gid, const char *path) {
        struct sockaddr_un sa = {.sun_family = AF_UNIX};
        int err = 0, s = -1;
        union {
                struct cmsghdr h;
                char buf[CMSG_SPACE(sizeof(int))];
        } control = {};
        struct iovec iov = {.iov_base = &err, .iov_len = sizeof err};
        struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1};

        (void) prctl(PR_SET_PDEATHSIG, SIGKILL);
        memcpy(sa.sun_path, path, strlen(path));
        /* Already that user (health run by it): nothing to drop. */
        if (geteuid() != uid &&
            (setgroups(0, NULL) < 0 || setresgid(gid, gid, gid) < 0 || setresuid(uid, uid, uid) < 0))
                err = errno;
        else if ((s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0 ||
                 connect(s, (struct sockaddr *) &sa, sizeof sa) < 0)
                err = errno;
        if (err == 0) {
                mh.msg_control = control.buf;
                mh.msg_controllen = sizeof control.buf;
                struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
                c->cmsg_level = SOL_SOCKET;
                c->cmsg_type = SCM_RIGHTS;
                c->cmsg_len = CMSG_LEN(sizeof(int));
                memcpy(CMSG_DATA(c), &s, sizeof(int));
        }
        _exit(sendmsg(fd, &mh, MSG_NOSIGNAL) == (ssize_t) sizeof err ? 0 : 1);
}

/* Receives what connect_child sent: the connected socket, or its error. */
static int receive_connection(int fd, int *ret_fd) {
        union {
                struct cmsghdr h;
                char buf[CMSG_SPACE(sizeof(int))];
        } control = {};
        int err = 0;
        struct iovec iov = {.iov_base = &err, .iov_len = sizeof err};
        struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = control.buf,
                            .msg_controllen = sizeof control.buf};
        struct pollfd pfd = {.fd = fd, .events = POLLIN};
        struct cmsghdr *c;
        int got = -EBADF;
        ssize_t n;
        int r;

        r = poll(&pfd, 1, USER_BUS_CONNECT_TIMEOUT_MS);
        if (r < 0)
                return negative_errno();
        if (r == 0)
                return -ETIMEDOUT;
        n = recvmsg(fd, &mh, MSG_CMSG_CLOEXEC);
        if (n < 0)
                return negative_errno();
        for (c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c))
                if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS &&
                    c->cmsg_len == CMSG_LEN(sizeof(int)))
                        memcpy(&got, CMSG_DATA(c), sizeof(int));
        if (n != (ssize_t) sizeof err || (mh.msg_flags & MSG_CTRUNC)) {
                if (got >= 0)
                        (void) close(got);
                return -EBADMSG;
        }
        if (err != 0 || got < 0) {
                if (got >= 0)
                        (void) close(got);
                return err > 0 ? -err : -EBADMSG;
        }
        *ret_fd = got;
        return 0;
}

/* A socket connected to path by uid/gid: connect() records the peer's
 * credentials, so the bus sees the service user; the fd itself is ours. */
static int connect_as(uid_t uid, gid_t gid, const char *path, int *ret_fd) {
        _cleanup_close_ int ours = -EBADF, theirs = -EBADF;
        int pair[2], status, r;
        pid_t pid;

        if (strlen(path) >= sizeof(((struct sockaddr_un *) NULL)->sun_path))
                return -ENAMETOOLONG;
        if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, pair) < 0)
                return negative_errno();
        ours = pair[0];
        theirs = pair[1];
        pid = fork();
        if (pid < 0)
                return negative_errno();
        if (pid == 0)
                connect_child(theirs, uid, gid, path);
        (void) close(TAKE_FD(theirs));

        r = receive_connection(ours, ret_fd);
        if (r == -ETIMEDOUT)
                (void) kill(pid, SIGKILL);
        while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
                ;
        return r;
}

int bus_open_user_manager(const char *user, sd_bus **ret_bus) {
        _cleanup_free_ char *path = NULL;
        _cleanup_close_ int fd = -EBADF;
        sd_bus *bus = NULL;
        struct passwd pwbuf, *pw = NULL;
        char buf[4096];
        int r;

        /* Not sd_bus_open_user_machine("USER@.host"): that runs
         * systemd-run -M USER@.host -pPAMName=login systemd-stdio-bridge,
         * i.e. a PAM login session (pam_unix in the journal, auth.log, a
         * wtmp record) for a nologin service user on every call. A socket
         * connected by a child running as the user is the same connection
         * the user would have: the bus authenticates it by the peer
         * credentials the kernel recorded at connect() (AUTH EXTERNAL with
         * an empty identity), whoever holds the fd afterwards. */
        /* getpwnam_r: callers hold getpwnam()'s static result. */
        r = getpwnam_r(user, &pwbuf, buf, sizeof buf, &pw);
        if (r > 0)
                return -r;
        if (!pw)
                return -ESRCH;
        if (pw->pw_uid == 0)
                return -EPERM;
        if (asprintf(&path, "/run/user/%u/bus", (unsigned) pw->pw_uid) < 0)
                return -ENOMEM;
        r = connect_as(pw->pw_uid, pw->pw_gid, path, &fd);
        if (r < 0)
                return r;

        r = sd_bus_new(&bus);
        if (r < 0)
                return r;
        (void) sd_bus_set_description(bus, "user-manager");
        r = sd_bus_set_fd(bus, fd, fd);
        if (r >= 0) {
                fd = -EBADF; /* the bus owns it now */
                r = sd_bus_set_bus_client(bus, true);
        }
        if (r >= 0)
                r = sd_bus_start(bus);
        if (r < 0) {
                sd_bus_unref(bus);
                return r;
        }
        *ret_bus = bus;
        return 0;
}

int bus_set_user_linger(sd_bus *bus, uid_t uid, bool enable, char **ret_error) {
        sd_bus_error error = SD_BUS_ERROR_NULL;
        int r;

        r = sd_bus_call_method(bus, LOGIND_DEST, LOGIND_PATH, LOGIND_MANAGER, "SetUserLinger", &error, NULL,
                               "ubb", (uint32_t) uid, (int) enable, 0);
        if (r < 0)
                r = bus_error_to_string(&error, r, ret_error);
        sd_bus_error_free(&error);
        return r;
}

int bus_get_unit_path(sd_bus *bus, const char *unit, char **ret_path, char **ret_error) {
        sd_bus_error error = SD_BUS_ERROR_NULL;
        sd_bus_message *reply = NULL;
        const char *path;
        int r;

        r = sd_bus_call_method(bus, SYSTEMD_DEST, SYSTEMD_PATH, SYSTEMD_MANAGER, "LoadUnit", &error, &reply, "s",
                               unit);
        if (r < 0) {
                r = bus_error_to_string(&error, r, ret_error);
                goto out;
        }
        r = sd_bus_message_read(reply, "o", &path);
        if (r < 0)
                goto out;
        *ret_path = strdup(path);
        r = *ret_path ? 0 : -ENOMEM;
out:
        sd_bus_message_unref(reply);
        sd_bus_error_free(&error);
        return r;
}

int bus_get_unit_string(sd_bus *bus, const char *unit, const char *property, char **ret, char **ret_error) {
        sd_bus_error error = SD_BUS_ERROR_NULL;
        _cleanup_free_ char *path = NULL;
        int r;

        r = bus_get_unit_path(bus, unit, &path, ret_error);
        if (r < 0)
                return r;
        r = sd_bus_get_property_string(bus, SYSTEMD_DEST, path, "org.freedesktop.systemd1.Unit", property, &error,
                                       ret);
        if (r < 0)
                r = bus_error_to_string(&error, r, ret_error);
        sd_bus_error_free(&error);
        return r;
}

int bus_get_unit_active_state(sd_bus *bus, const char *unit, char **ret_state, char **ret_error) {
        return bus_get_unit_string(bus, unit, "ActiveState", ret_state, ret_error);
}

int bus_enable_unit_file(sd_bus *bus, const char *unit, char **ret_error) {
        sd_bus_error error = SD_BUS_ERROR_NULL;
        int r;

        /* EnableUnitFiles(as files, b runtime, b force): the [Install]
         * section's symlinks, as `systemctl enable` makes them. */
        r = sd_bus_call_method(bus, SYSTEMD_DEST, SYSTEMD_PATH, SYSTEMD_MANAGER, "EnableUnitFiles", &error, NULL,
                               "asbb", 1, unit, 0, 0);
        if (r < 0)
                r = bus_error_to_string(&error, r, ret_error);
        sd_bus_error_free(&error);
        return r;
}

typedef struct {
        const char *job;
        char *result;
} JobWait;

static int on_job_removed(sd_bus_message *m, void *userdata, sd_bus_error *ret_error) {
        JobWait *w = userdata;
        const char *path, *unit, *result;
        uint32_t id;

        if (sd_bus_message_read(m, "uoss", &id, &path, &unit, &result) < 0)
                return 0;
        if (w->job && streq(path, w->job) && !w->result)
                w->result = strdup(result);
        return 0;
}

/* Reads the job path from a method reply and waits, at most until
 * deadline, for its JobRemoved (the match must be installed before the call
 * was made). On success w->result holds the job's result. */
static int job_wait(sd_bus *bus, sd_bus_message *reply, JobWait *w, char **ret_job, uint64_t deadline) {
        const char *p;
        int r;

        r = sd_bus_message_read(reply, "o", &p);
        if (r < 0)
                return r;
        *ret_job = strdup(p);
        if (!*ret_job)
                return -ENOMEM;
        w->job = *ret_job;
        while (!w->result) {
                uint64_t n = now_usec();
                if (n >= deadline)
                        return -ETIMEDOUT;
                r = sd_bus_process(bus, NULL);
                if (r < 0)
                        return r;
                if (r > 0)
                        continue;
                r = sd_bus_wait(bus, deadline - n);
                if (r < 0)
                        return r;
        }
        return 0;
}

/* StartUnit (and any other job-returning call). The JobRemoved match is installed before the call,
 * so a job that finishes at once is not missed (systemd sends JobRemoved to
 * the client that queued the job even without Subscribe()). */
static int unit_job(sd_bus *bus, const char *method, const char *unit, uint64_t timeout_usec, char **ret_error) {
        sd_bus_error error = SD_BUS_ERROR_NULL;
        sd_bus_message *reply = NULL;
        sd_bus_slot *slot = NULL;
        _cleanup_free_ char *job = NULL;
        JobWait w = {};
        uint64_t deadline = now_usec() + timeout_usec;
        int r;

        r = sd_bus_match_signal(bus, &slot, SYSTEMD_DEST, SYSTEMD_PATH, SYSTEMD_MANAGER, "JobRemoved",
                                on_job_removed, &w);
        if (r < 0)
                goto out;

        r = sd_bus_call_method(bus, SYSTEMD_DEST, SYSTEMD_PATH, SYSTEMD_MANAGER, method, &error, &reply, "ss", unit,
                               "replace");
        if (r < 0) {
                r = bus_error_to_string(&error, r, ret_error);
                goto out;
        }
        r = job_wait(bus, reply, &w, &job, deadline);
        if (r == -ETIMEDOUT && ret_error && asprintf(ret_error, "job for %s did not finish in time", unit) < 0)
                *ret_error = NULL;
        if (r < 0)
                goto out;
        if (streq(w.result, "done"))
                r = 0;
        else {
                r = -EIO;
                if (ret_error && asprintf(ret_error, "%s of %s ended with result '%s'", method, unit, w.result) < 0)
                        *ret_error = NULL;
        }
out:
        free(w.result);
        sd_bus_slot_unref(slot);
        sd_bus_message_unref(reply);
        sd_bus_error_free(&error);
        return r;
}

int bus_start_unit(sd_bus *bus, const char *unit, uint64_t timeout_usec, char **ret_error) {
        return unit_job(bus, "StartUnit", unit, timeout_usec, ret_error);
}

int bus_reload_unit(sd_bus *bus, const char *unit, uint64_t timeout_usec, char **ret_error) {
        return unit_job(bus, "ReloadUnit", unit, timeout_usec, ret_error);
}

int bus_stop_unit(sd_bus *bus, const char *unit, uint64_t timeout_usec, char **ret_error) {
        return unit_job(bus, "StopUnit", unit, timeout_usec, ret_error);
}

int bus_disable_unit(sd_bus *bus, const char *unit, char **ret_error) {
        sd_bus_error error = SD_BUS_ERROR_NULL;
        sd_bus_message *m = NULL;
        int r;

        r = sd_bus_message_new_method_call(bus, &m, SYSTEMD_DEST, SYSTEMD_PATH, SYSTEMD_MANAGER,
                                           "DisableUnitFiles");
        if (r >= 0)
                r = sd_bus_message_append_strv(m, (char *[]){(char *) unit, NULL});
        if (r >= 0)
                r = sd_bus_message_append(m, "b", 0); /* runtime: no, the persistent links */
        if (r >= 0) {
                r = sd_bus_call(bus, m, 0, &error, NULL);
                if (r < 0)
                        r = bus_error_to_string(&error, r, ret_error);
        }
        sd_bus_message_unref(m);
        sd_bus_error_free(&error);
        /* As systemctl disable: the manager reloads what changed. */
        return r < 0 ? r : bus_reload_manager(bus, ret_error);
}

int bus_reload_manager(sd_bus *bus, char **ret_error) {
        sd_bus_error error = SD_BUS_ERROR_NULL;
        int r;

        /* Reload returns once the manager has re-read its units. */
        r = sd_bus_call_method(bus, SYSTEMD_DEST, SYSTEMD_PATH, SYSTEMD_MANAGER, "Reload", &error, NULL, NULL);
        if (r < 0)
                r = bus_error_to_string(&error, r, ret_error);
        sd_bus_error_free(&error);
        return r;
}

int bus_ping_manager(sd_bus *bus, char **ret_error) {
        sd_bus_error error = SD_BUS_ERROR_NULL;
        int r;

        r = sd_bus_call_method(bus, SYSTEMD_DEST, SYSTEMD_PATH, "org.freedesktop.DBus.Peer", "Ping", &error, NULL,
                               NULL);
        if (r < 0)
                r = bus_error_to_string(&error, r, ret_error);
        sd_bus_error_free(&error);
        return r;
}

int bus_wait_until(sd_bus *bus, uint64_t timeout_usec, int (*fn)(sd_bus *bus, void *userdata), void *userdata) {
        uint64_t deadline = now_usec() + timeout_usec;

        for (;;) {
                int r = fn(bus, userdata);
                if (r != 0)
                        return r < 0 ? r : 0;
                if (now_usec() >= deadline)
                        return -ETIMEDOUT;
                /* A short poll: logind and the user manager offer no single
                 * signal for "user@UID.service active and its bus up". */
                struct timespec ts = {.tv_nsec = 100 * 1000 * 1000};
                (void) nanosleep(&ts, NULL);
        }
}

/* One (sv) of a property array up to its value: the struct, the name, the variant of
 * signature sig. The caller appends the value and closes the two with close_containers(). */
static int property_open(sd_bus_message *m, const char *name, const char *sig) {
        int r = sd_bus_message_open_container(m, 'r', "sv");

        if (r >= 0)
                r = sd_bus_message_append(m, "s", name);
        if (r >= 0)
                r = sd_bus_message_open_container(m, 'v', sig);
        return r;
}

static int close_containers(sd_bus_message *m, unsigned n) {
        int r = 0;

        for (unsigned i = 0; r >= 0 && i < n; i++)
                r = sd_bus_message_close_container(m);
        return r;
}

static int append_transient_properties(sd_bus_message *m, char *const *argv, char *const *env,
                                       uint64_t timeout_usec) {
        int r;

        r = sd_bus_message_open_container(m, 'a', "(sv)");
        if (r < 0)
                return r;
        r = sd_bus_message_append(m, "(sv)(sv)(sv)", "Description", "s", "regvisor: podman as the service user",
                                  "Type", "s", "oneshot", "TimeoutStartUSec", "t", timeout_usec);
        if (r < 0)
                return r;

        /* ExecStart: a(sasb) = [(path, argv, ignore_failure)] */
        r = property_open(m, "ExecStart", "a(sasb)");
        if (r >= 0)
                r = sd_bus_message_open_container(m, 'a', "(sasb)");
        if (r >= 0)
                r = sd_bus_message_open_container(m, 'r', "sasb");
        if (r >= 0)
                r = sd_bus_message_append(m, "s", argv[0]);
        if (r >= 0)
                r = sd_bus_message_append_strv(m, (char **) argv);
        if (r >= 0)
                r = sd_bus_message_append(m, "b", 0);
        if (r >= 0) /* the (sasb), the a(sasb), the variant, the (sv) */
                r = close_containers(m, 4);
        if (r < 0)
                return r;

        if (env) {
                r = property_open(m, "Environment", "as");
                if (r >= 0)
                        r = sd_bus_message_append_strv(m, (char **) env);
                if (r >= 0)
                        r = close_containers(m, 2);
                if (r < 0)
                        return r;
        }
        return sd_bus_message_close_container(m);
}

int bus_run_transient(sd_bus *bus, const char *name, char *const *argv, char *const *env, uint64_t timeout_usec,
                      int *ret_exit_status, char **ret_error) {
        sd_bus_error error = SD_BUS_ERROR_NULL;
        sd_bus_message *m = NULL, *reply = NULL;
        sd_bus_slot *slot = NULL;
        _cleanup_free_ char *job = NULL, *unit_path = NULL;
        JobWait w = {};
        uint64_t deadline = now_usec() + timeout_usec + 5000000ULL;
        int32_t status = 0;
        int r;

        r = sd_bus_match_signal(bus, &slot, SYSTEMD_DEST, SYSTEMD_PATH, SYSTEMD_MANAGER, "JobRemoved",
                                on_job_removed, &w);
        if (r < 0)
                goto out;
        r = sd_bus_message_new_method_call(bus, &m, SYSTEMD_DEST, SYSTEMD_PATH, SYSTEMD_MANAGER,
                                           "StartTransientUnit");
        if (r >= 0)
                r = sd_bus_message_append(m, "ss", name, "fail");
        if (r >= 0)
                r = append_transient_properties(m, argv, env, timeout_usec);
        if (r >= 0)
                r = sd_bus_message_append(m, "a(sa(sv))", 0);
        if (r < 0)
                goto out;
        r = sd_bus_call(bus, m, 0, &error, &reply);
        if (r < 0) {
                r = bus_error_to_string(&error, r, ret_error);
                goto out;
        }
        r = job_wait(bus, reply, &w, &job, deadline);
        if (r < 0)
                goto out;

        if (streq(w.result, "done"))
                status = 0;
        else {
                /* A failed oneshot stays loaded: read how its command exited. */
                sd_bus_error_free(&error);
                r = bus_get_unit_path(bus, name, &unit_path, NULL);
                if (r >= 0)
                        r = sd_bus_get_property_trivial(bus, SYSTEMD_DEST, unit_path,
                                                        "org.freedesktop.systemd1.Service", "ExecMainStatus",
                                                        &error, 'i', &status);
                if (r < 0 || status == 0)
                        status = 255;
        }
        r = 0;
        *ret_exit_status = status;
out:
        /* Leave nothing behind: a failed transient unit stays until reset. */
        (void) sd_bus_call_method(bus, SYSTEMD_DEST, SYSTEMD_PATH, SYSTEMD_MANAGER, "ResetFailedUnit", NULL, NULL,
                                  "s", name);
        free(w.result);
        sd_bus_slot_unref(slot);
        sd_bus_message_unref(m);
        sd_bus_message_unref(reply);
        sd_bus_error_free(&error);
        return r;
}

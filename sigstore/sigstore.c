/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <arpa/inet.h>
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "macro.h"
#include "sigfs.h"
#include "sighandle.h"
#include "sigreg.h"
#include "sigsandbox.h"
#include "sigserve.h"
#include "sigstore.h"

/* Binds a listening unix socket at path, mode 0660, in the group gid (-1: as created). A socket
 * already there (a previous run) is replaced; anything else there is an error. Its owner stays
 * root: the store never touches it again, and under regvisor.service there is no CAP_CHOWN to
 * give it away (a change of group to one of ours needs none; so does one to the group the
 * setgid socket directory already gave it). */
static int listen_unix(const char *path, gid_t gid) {
        struct sockaddr_un sa = {.sun_family = AF_UNIX};
        _cleanup_close_ int fd = -EBADF;
        struct stat st;
        mode_t old_umask;
        int r;

        if (strlen(path) >= sizeof(sa.sun_path))
                return -ENAMETOOLONG;
        strcpy(sa.sun_path, path);
        if (lstat(path, &st) == 0) {
                if (!S_ISSOCK(st.st_mode))
                        return -EEXIST;
                if (unlink(path) < 0)
                        return negative_errno();
        }

        fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        if (fd < 0)
                return negative_errno();
        /* 0660 from the start: no moment in which others could connect. */
        old_umask = umask(0117);
        r = bind(fd, (struct sockaddr *) &sa, sizeof(sa)) < 0 ? negative_errno() : 0;
        (void) umask(old_umask);
        if (r < 0)
                return r;
        if (gid != (gid_t) -1 && fchownat(AT_FDCWD, path, (uid_t) -1, gid, AT_SYMLINK_NOFOLLOW) < 0)
                return negative_errno();
        if (listen(fd, 128) < 0)
                return negative_errno();
        return TAKE_FD(fd);
}

/* The registry's TCP port for Landlock's network rule; 0 for a unix socket. */
static uint16_t registry_tcp_port(const SigRegistry *reg) {
        switch (reg->address.sa.sa_family) {
        case AF_INET:
                return ntohs(reg->address.in.sin_port);
        case AF_INET6:
                return ntohs(reg->address.in6.sin6_port);
        default:
                return 0;
        }
}

int sigstore_run(const SigstoreOptions *o) {
        _cleanup_close_ int listen_fd = -EBADF, epoll_fd = -EBADF, dir_fd = -EBADF, root_fd = -EBADF;
        _cleanup_(sigreg_done) SigRegistry registry = {};
        SigBackend backend = {.root_fd = -EBADF};
        const char *escape = NULL;
        gid_t socket_gid = (gid_t) -1;
        struct passwd *pw;
        uid_t uid;
        gid_t gid;
        int abi = 0, why = 0, r;

        pw = getpwnam(o->user);
        if (!pw)
                return log_error_errno(-ESRCH, "sigstore: no user '%s'", o->user);
        uid = pw->pw_uid;
        gid = pw->pw_gid;
        if (uid == 0)
                return log_error_errno(-EINVAL, "sigstore: refusing to run as root ('%s')", o->user);
        if (o->socket_group) {
                struct group *g = getgrnam(o->socket_group);
                if (!g)
                        return log_error_errno(-ESRCH, "sigstore: no group '%s'", o->socket_group);
                socket_gid = g->gr_gid;
        }

        /* Before the sandbox: OpenSSL's SHA-256 is fetched once (it may read its configuration). */
        if (o->registry) {
                r = sigreg_init(&registry, o->registry);
                if (r < 0)
                        return log_error_errno(r, "sigstore: --registry %s: %s", o->registry,
                                               r == -EINVAL ? "expected unix:PATH, IP:PORT or [IPV6]:PORT"
                                                            : "cannot prepare SHA-256");
                backend.registry = &registry;
        }

        listen_fd = listen_unix(o->socket_path, socket_gid);
        if (listen_fd < 0)
                return log_error_errno(listen_fd, "sigstore: cannot listen on %s: %m", o->socket_path);
        epoll_fd = epoll_create1(EPOLL_CLOEXEC);
        if (epoll_fd < 0)
                return log_error_errno(negative_errno(), "sigstore: epoll_create1: %m");

        /* Before the sandbox: one log line fixes log.c's journal-or-stderr choice (fstat), and
         * tzset() reads /etc/localtime, which the sandbox will not let it open. */
        tzset();
        if (o->registry)
                log_info("sigstore: serving %s, storing in the registry at %s as %s", o->socket_path, o->registry,
                         o->user);
        else
                log_info("sigstore: serving %s, storing below %s as %s", o->socket_path, o->dir, o->user);

        r = sigsandbox_drop(uid, gid);
        if (r < 0)
                return log_error_errno(r, "sigstore: dropping to %s failed: %m", o->user);
        /* The modes sigfs.h promises (0750 directories, 0640 files), not
         * the unit's UMask=0077: the service user's group reads the store
         * too (regvisor run's signature census). Nothing in it is secret:
         * 443 serves every signature to anyone. */
        (void) umask(0027);
        dir_fd = open(o->dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (dir_fd < 0)
                return log_error_errno(negative_errno(), "sigstore: %s is not a directory %s can open: %m",
                                       o->dir, o->user);
        r = sigsandbox_confine(dir_fd, o->registry != NULL, o->registry ? registry_tcp_port(&registry) : 0, &abi, &why);
        if (r < 0)
                return log_error_errno(r, "sigstore: the sandbox failed: %m");
        if (abi == 0)
                log_warning("sigstore: no Landlock (%s); the filesystem is confined by the user's permissions "
                            "and the seccomp table only",
                            why == EPERM ? "refused by a seccomp filter around this process"
                                         : why == EOPNOTSUPP ? "not enabled in this kernel"
                                                             : "not in this kernel");
        else
                log_info("sigstore: locked down (Landlock ABI %d: files below %s only; seccomp)", abi, o->dir);

        r = sigsandbox_test_escape(&escape);
        if (r <= 0)
                log_notice("sigstore: test hook: creating %s %s%s", escape, r == 0 ? "succeeded" : "failed: ",
                           r == 0 ? "" : strerror(-r));

        /* In the registry the directory is not used: nothing is created below it. */
        if (!o->registry) {
                root_fd = sigfs_open_at(dir_fd);
                if (root_fd < 0)
                        return log_error_errno(root_fd, "sigstore: cannot open the store below %s: %m", o->dir);
                r = sigfs_cleanup(root_fd);
                if (r < 0)
                        return log_error_errno(r, "sigstore: removing temp files below %s failed: %m", o->dir);
                if (r > 0)
                        log_notice("sigstore: removed %d temp files left by an interrupted write", r);
                backend.root_fd = root_fd;
        }

        r = sigserve_run(epoll_fd, listen_fd, &backend);
        return log_error_errno(r, "sigstore: the loop failed: %m");
}

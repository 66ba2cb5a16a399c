/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <unistd.h>

#include "macro.h"
#include "sockopen.h"

int sockopen_connect(const struct sockaddr *sa, socklen_t len) {
        int fd, r;

        fd = socket(sa->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (fd < 0)
                return negative_errno();
        if (connect(fd, sa, len) < 0 && errno != EINPROGRESS) {
                r = negative_errno();
                (void) close(fd);
                return r;
        }
        return fd;
}

int sockopen_listen(const struct sockaddr *sa, socklen_t len, int backlog) {
        int fd, one = 1, r;

        fd = socket(sa->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (fd < 0)
                return negative_errno();
        (void) setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
        if (bind(fd, sa, len) < 0 || listen(fd, backlog) < 0) {
                r = negative_errno();
                (void) close(fd);
                return r;
        }
        return fd;
}

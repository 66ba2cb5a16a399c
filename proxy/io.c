/* SPDX-License-Identifier: MIT */
/*
 * Plain and TLS non-blocking I/O behind one vtable; see io.h.
 */

#include <errno.h>
#include <limits.h>
#include <openssl/err.h>
#include <sys/socket.h>
#include <unistd.h>

#include "io.h"
#include "macro.h"

static ssize_t plain_read(IoEndpoint *e, void *buf, size_t len) {
        ssize_t n;

        e->want_write = false;
        do
                n = recv(e->fd, buf, len, 0);
        while (n < 0 && errno == EINTR);
        if (n < 0) {
                if (errno != EWOULDBLOCK)
                        return negative_errno();
                e->readable = false;
                return -EAGAIN;
        }
        /* A short read does not clear readable: a FIN that came with the
         * data raised its edge already, and only the next read sees it. */
        return n;
}

static ssize_t plain_write(IoEndpoint *e, const void *buf, size_t len) {
        ssize_t n;

        e->want_write = true;
        do
                n = send(e->fd, buf, len, MSG_NOSIGNAL);
        while (n < 0 && errno == EINTR);
        if (n < 0)
                return errno == EWOULDBLOCK ? -EAGAIN : negative_errno();
        return n;
}

static int plain_handshake(IoEndpoint *e) {
        (void)e;
        return 1;
}

static void plain_shutdown(IoEndpoint *e) {
        (void)shutdown(e->fd, SHUT_WR);
}

const IoOps io_plain_ops = {
        .read = plain_read,
        .write = plain_write,
        .handshake = plain_handshake,
        .shutdown = plain_shutdown,
};

int io_tls_status(SSL *ssl, int ret, bool *ret_want_write) {
        int e = SSL_get_error(ssl, ret), r;

        *ret_want_write = false;
        switch (e) {
        case SSL_ERROR_WANT_READ:
                r = -EAGAIN;
                break;
        case SSL_ERROR_WANT_WRITE:
                *ret_want_write = true;
                r = -EAGAIN;
                break;
        case SSL_ERROR_ZERO_RETURN:
                r = 0;
                break;
        case SSL_ERROR_SYSCALL:
                /* With SSL_OP_IGNORE_UNEXPECTED_EOF a bare EOF is
                 * ZERO_RETURN; this is a socket error. */
                r = errno > 0 ? -errno : -ECONNRESET;
                break;
        default: /* SSL_ERROR_SSL and anything new: a protocol error */
                r = -EPROTO;
                break;
        }
        ERR_clear_error();
        return r;
}

static ssize_t tls_read(IoEndpoint *e, void *buf, size_t len) {
        int n;

        ERR_clear_error();
        n = SSL_read(e->ssl, buf, len > INT_MAX ? INT_MAX : (int)len);
        if (n > 0) {
                e->want_write = false;
                return n;
        }
        n = io_tls_status(e->ssl, n, &e->want_write);
        /* WANT_READ: no whole record is buffered and the socket is empty.
         * (A read that waits for writability stays readable, to be tried
         * again.) After a successful read, records may remain buffered in
         * OpenSSL: readable stays set until a read says WANT_READ. */
        if (n == -EAGAIN && !e->want_write)
                e->readable = false;
        return n;
}

static ssize_t tls_write(IoEndpoint *e, const void *buf, size_t len) {
        int n;

        ERR_clear_error();
        n = SSL_write(e->ssl, buf, len > INT_MAX ? INT_MAX : (int)len);
        if (n > 0)
                return n;
        n = io_tls_status(e->ssl, n, &e->want_write);
        return n == 0 ? -EPIPE : n; /* the peer closed: we cannot write */
}

static int tls_handshake(IoEndpoint *e) {
        int n;

        ERR_clear_error();
        n = SSL_do_handshake(e->ssl);
        if (n == 1)
                return 1;
        n = io_tls_status(e->ssl, n, &e->want_write);
        return n == 0 ? -ECONNRESET : n;
}

static void tls_shutdown(IoEndpoint *e) {
        ERR_clear_error();
        /* Sends close_notify if it fits in the socket buffer; we do not
         * wait for the peer's (RFC 8446 §6.1 allows that). */
        if (SSL_is_init_finished(e->ssl))
                (void)SSL_shutdown(e->ssl);
        ERR_clear_error();
        (void)shutdown(e->fd, SHUT_WR);
}

const IoOps io_tls_ops = {
        .read = tls_read,
        .write = tls_write,
        .handshake = tls_handshake,
        .shutdown = tls_shutdown,
};

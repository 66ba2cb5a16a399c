/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * Non-blocking byte I/O on one side of a proxied connection, plain (the
 * upstream socket) or TLS (the client), behind one small vtable so that the
 * worker's state machine does not care which.
 *
 * Every operation returns > 0 bytes moved, 0 for an orderly end of stream
 * (read only: EOF, or the peer's TLS close_notify), -EAGAIN when it would
 * block (the endpoint's want_write tells whether TLS needs the socket to be
 * writable, for a read too), or another negative errno for a fatal error
 * (-ECONNRESET, -EPROTO for a TLS protocol error).
 */

#include <openssl/ssl.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

typedef struct IoEndpoint IoEndpoint;

typedef struct IoOps {
        ssize_t (*read)(IoEndpoint *e, void *buf, size_t len);
        ssize_t (*write)(IoEndpoint *e, const void *buf, size_t len);
        /* Handshake step; 1 done, -EAGAIN, or fatal. Plain: always 1. */
        int (*handshake)(IoEndpoint *e);
        /* Best-effort orderly close of the sending side (close_notify, then
         * shutdown(SHUT_WR)); never blocks. */
        void (*shutdown)(IoEndpoint *e);
} IoOps;

struct IoEndpoint {
        int fd;
        SSL *ssl; /* NULL for plain */
        const IoOps *ops;
        bool want_write; /* the last -EAGAIN waits for writability */
        /* The socket may have bytes to read (or OpenSSL records buffered):
         * set by the caller on an epoll edge (EPOLLIN, EPOLLRDHUP, EPOLLHUP,
         * EPOLLERR), cleared by read when it would block waiting for the
         * socket. Sockets are edge-triggered: the next arrival brings a new
         * edge, so a read is only worth trying while this is set. */
        bool readable;
        uint64_t moved; /* bytes read plus written, counted by the worker */
};

extern const IoOps io_plain_ops;
extern const IoOps io_tls_ops;

/* The one place that reads SSL_get_error(): maps the result ret of an SSL
 * call on ssl to -EAGAIN (*ret_want_write set to whether it waits for
 * writability), 0 (the peer closed: close_notify, or an EOF OpenSSL was
 * told to accept) or a fatal negative errno. Clears OpenSSL's error queue. */
int io_tls_status(SSL *ssl, int ret, bool *ret_want_write);

/* SPDX-License-Identifier: MIT */
/*
 * scripts/bench-relay.c: the copy floor of scripts/bench. The least a
 * user-space proxy must do to pass a pull through, with no TLS and no HTTP:
 * recv() from the registry into a buffer, write() it to the client, over
 * loopback. What it costs per GiB is the part of the proxy's CPU that no
 * TLS library or proxy code can remove (two kernel copies, loopback TCP on
 * both sockets, the system calls); with the crypto floor (openssl speed)
 * it is the honest bound of a user-space TLS proxy on this machine.
 *
 *   bench-relay LISTEN_PORT UPSTREAM_PORT WRITE_SIZE
 *
 * Listens on 127.0.0.1:LISTEN_PORT; serves one client at a time: connects
 * to 127.0.0.1:UPSTREAM_PORT and relays both ways until either side closes.
 * Reads are 64 KiB (the proxy's buffer, proxy/buf.h), read until the socket
 * is empty as the proxy does; writes are WRITE_SIZE bytes at most (16384:
 * one write per TLS record, as the proxy writes; 65536: batched). Blocking
 * sockets, poll() only when a read finds nothing: fewer system calls than
 * an event loop, so a floor. TCP_NODELAY on both sockets, as the proxy.
 * Not part of regvisor; built by scripts/bench with cc.
 */

#define _GNU_SOURCE /* accept4() */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define READ_SIZE (64 * 1024)

static char buf[READ_SIZE];

static int write_all(int fd, const char *p, size_t n, size_t chunk) {
        while (n > 0) {
                ssize_t k = send(fd, p, n < chunk ? n : chunk, MSG_NOSIGNAL);
                if (k < 0 && errno == EINTR)
                        continue;
                if (k <= 0)
                        return -1;
                p += k;
                n -= (size_t)k;
        }
        return 0;
}

/* Reads from one side until it would block, writing each read to the
 * other: 0 more to come, -1 closed or failed. */
static int drain(int from, int to, size_t chunk) {
        for (;;) {
                ssize_t n = recv(from, buf, sizeof(buf), MSG_DONTWAIT);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
                        return 0;
                if (n <= 0)
                        return -1;
                if (write_all(to, buf, (size_t)n, chunk) < 0)
                        return -1;
        }
}

static void relay(int client, int up, size_t chunk) {
        struct pollfd p[2] = {{.fd = client, .events = POLLIN}, {.fd = up, .events = POLLIN}};

        for (;;) {
                if (poll(p, 2, -1) < 0) {
                        if (errno == EINTR)
                                continue;
                        return;
                }
                if (p[0].revents && drain(client, up, READ_SIZE) < 0)
                        return;
                if (p[1].revents && drain(up, client, chunk) < 0)
                        return;
        }
}

int main(int argc, char **argv) {
        struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
        int one = 1, l;
        long chunk;

        if (argc != 4 || (chunk = strtol(argv[3], NULL, 10)) <= 0) {
                fprintf(stderr, "usage: bench-relay LISTEN_PORT UPSTREAM_PORT WRITE_SIZE\n");
                return 2;
        }
        signal(SIGPIPE, SIG_IGN);
        l = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        a.sin_port = htons((uint16_t)atoi(argv[1]));
        if (l < 0 || setsockopt(l, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
            bind(l, (struct sockaddr *)&a, sizeof(a)) < 0 || listen(l, 16) < 0) {
                perror("bench-relay: listen");
                return 1;
        }
        for (;;) {
                int c = accept4(l, NULL, NULL, SOCK_CLOEXEC), u;
                if (c < 0) {
                        if (errno == EINTR)
                                continue;
                        perror("bench-relay: accept");
                        return 1;
                }
                u = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
                a.sin_port = htons((uint16_t)atoi(argv[2]));
                if (u >= 0 && connect(u, (struct sockaddr *)&a, sizeof(a)) == 0) {
                        (void)setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
                        (void)setsockopt(u, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
                        relay(c, u, (size_t)chunk);
                } else
                        perror("bench-relay: connect");
                if (u >= 0)
                        close(u);
                close(c);
        }
}

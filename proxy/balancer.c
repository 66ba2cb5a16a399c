/* SPDX-License-Identifier: MIT */
/*
 * A load balancer in front of the proxy (HAProxy in TCP mode with
 * send-proxy-v2): who the client is when the TCP peer is a balancer, and
 * PROXY headers from anyone else.
 *
 * A connection from an address in [proxy] trusted_proxies starts in
 * CONN_PROXY_HEADER: it must send a PROXY v2 header (proxy-protocol.h)
 * before its TLS ClientHello, read here with reads bounded by the header's
 * own length (nothing of the ClientHello is taken from the socket: OpenSSL
 * reads it next) within header_timeout (the deadline conn_new() set, which
 * the handshake shares). No header, a broken one or a v1 text header: the
 * connection is closed, counted and logged. With a PROXY command the
 * header's source is the client; with LOCAL (the balancer's own health
 * check) the balancer is. Then, and only then, the client is admitted
 * (worker_admit(): allow_cidrs, conn_per_ip) and gets its text (c->peer)
 * and limits key (c->key): the one place the client address is decided
 * for a balanced connection, as worker_accept_one() decides it for a
 * direct one. Everything after (rate limits, X-Forwarded-For and X-Real-IP,
 * the access log, the journal) reads those two.
 *
 * Trust is decided by the TCP peer only, never by what a header says: a
 * header naming a trusted address gives nothing (its source is just a
 * client), and a connection carries one header at most.
 *
 * From any other address a PROXY header is not a ClientHello, and the TLS
 * handshake would fail on its first byte. It is looked for anyway (one
 * recv(MSG_PEEK) before the handshake) so that a balancer missing from
 * trusted_proxies, or someone trying to pass for one, is logged as such
 * and counted in regvisor_proxy_proxy_header_refused_total, not lost among
 * TLS failures.
 */

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "proxy-protocol.h"
#include "worker.h"

static void balancer_refused(Conn *c, const char *what, int error) {
        proxy_metrics_inc(&conn_metrics(c)->proxy_header_invalid);
        log_event(LOG_NOTICE, "refused", "%s %s (a trusted proxy) refused: %s (%s)", proxy_port_name(c->port),
                  c->peer, what, strerror(-error));
        conn_kill(c);
}

/* The header is complete: the client it names is admitted, or the
 * connection ends. */
static int balancer_admit(Conn *c, const ProxyProtocolHeader *h) {
        Worker *w = c->w;
        struct sockaddr_storage client = h->command == PROXY_PROTOCOL_PROXY ? h->source : c->addr;
        char via[INET6_ADDRSTRLEN];

        memcpy(via, c->peer, sizeof(via));
        worker_peer_string(&client, c->peer);
        if (!worker_admit(w, c->port, &client, c->peer, &c->key, &c->limit_slot, &c->limits_full,
                          &c->conn_over)) {
                conn_kill(c);
                return -EACCES;
        }
        log_debug("proxy: %s %s via %s%s", proxy_port_name(c->port), c->peer, via,
                  h->command == PROXY_PROTOCOL_LOCAL ? " (LOCAL: the balancer itself)" : "");
        c->addr = client;
        c->balanced = true;
        return 0;
}

int balancer_read_header(Conn *c) {
        ProxyProtocolHeader h;
        int r;

        if (!c->proxy_header) {
                c->proxy_header = malloc(PROXY_PROTOCOL_MAX);
                if (!c->proxy_header) {
                        conn_kill(c);
                        return -ENOMEM;
                }
        }
        for (;;) {
                r = proxy_protocol_parse(c->proxy_header, c->proxy_header_len, &h);
                if (r != -EAGAIN)
                        break;
                if (!c->client.readable)
                        return 0;
                size_t want = proxy_protocol_wanted(c->proxy_header, c->proxy_header_len);
                ssize_t n = recv(c->client.fd, c->proxy_header + c->proxy_header_len, want - c->proxy_header_len, 0);
                if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
                        c->client.readable = false;
                        return 0;
                }
                if (n <= 0) {
                        /* A balancer's TCP check connects and closes: no
                         * byte at all is not worth a notice. */
                        if (n == 0 && c->proxy_header_len == 0) {
                                conn_kill(c);
                                return -ECONNRESET;
                        }
                        balancer_refused(c, "the connection ended inside the PROXY header",
                                         n == 0 ? -ECONNRESET : -errno);
                        return -ECONNRESET;
                }
                c->proxy_header_len += (size_t)n;
        }
        free(c->proxy_header);
        c->proxy_header = NULL;
        if (r < 0) {
                balancer_refused(c, "expected a PROXY protocol v2 header (TCP over IPv4/IPv6, or LOCAL) "
                                    "before TLS", r);
                return r;
        }
        r = balancer_admit(c, &h);
        if (r < 0)
                return r;
        c->state = CONN_HANDSHAKE;
        return 1;
}

int balancer_refuse_header(Conn *c) {
        uint8_t b[PROXY_PROTOCOL_SIGNATURE_LEN];
        ssize_t n;

        if (c->sniffed)
                return 0;
        if (!c->client.readable)
                return -EAGAIN;
        n = recv(c->client.fd, b, sizeof(b), MSG_PEEK);
        if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
                c->client.readable = false;
                return -EAGAIN;
        }
        /* An error or EOF: the handshake finds it. */
        if (n <= 0 || !proxy_protocol_sniff(b, (size_t)n)) {
                c->sniffed = true;
                return 0;
        }
        /* The start of one, and no more yet: the bytes stay in the socket,
         * the next arrival brings a new edge (header_timeout bounds it). */
        if ((size_t)n < sizeof(b)) {
                c->client.readable = false;
                return -EAGAIN;
        }
        proxy_metrics_inc(&conn_metrics(c)->proxy_header_refused);
        log_event(LOG_NOTICE, "refused", "%s %s refused: %s", proxy_port_name(c->port), c->peer,
                  c->balanced ? "a second PROXY protocol header after the balancer's"
                              : "a PROXY protocol header from an address not in [proxy] trusted_proxies");
        conn_kill(c);
        return -EPERM;
}

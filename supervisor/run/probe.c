/* SPDX-License-Identifier: MIT */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <sys/ioctl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <stdbool.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "cidr.h"
#include "config-sockaddr.h"
#include "fileio.h"
#include "http1.h"
#include "macro.h"
#include "probe.h"
#include "proxy.h"
#include "sockopen.h"

#define PROBE_REQUEST "GET /v2/ HTTP/1.1\r\nHost: localhost\r\nUser-Agent: regvisor-probe\r\nConnection: close\r\n\r\n"
/* Answered by Go's net/http server itself (its globalOptionsHandler: 200,
 * Content-Length 0) before the registry's handler, so the registry writes no
 * log line for it: two journal lines every probe_interval otherwise. */
#define PROBE_ALIVE_REQUEST "OPTIONS * HTTP/1.1\r\nHost: localhost\r\nUser-Agent: regvisor-probe\r\nConnection: close\r\n\r\n"
#define PROBE_MAGIC 0x70726f62u

struct Probe {
        unsigned magic;
        int fd; /* -EBADF when closed */
        sd_event_source *io;
        sd_event_source *timer;
        size_t sent;
        char buf[512];
        size_t got;
        ProbeDone done;
        void *userdata;
        bool connect_only;
        const char *request; /* PROBE_REQUEST or PROBE_ALIVE_REQUEST */
};

static void probe_free(Probe *p) {
        if (!p)
                return;
        sd_event_source_disable_unref(p->io);
        sd_event_source_disable_unref(p->timer);
        closep(&p->fd);
        p->magic = 0;
        free(p);
}

void probe_cancel(Probe *p) {
        probe_free(p);
}

static void probe_finish(Probe *p, int result, unsigned status) {
        ProbeDone done = p->done;
        void *userdata = p->userdata;

        probe_free(p);
        done(result, status, userdata);
}

static int on_io(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        Probe *p = userdata;
        Http1Response resp = {};
        ssize_t n;
        int k;

        if (p->magic != PROBE_MAGIC)
                abort();

        if (p->sent < strlen(p->request)) {
                int err = 0;
                socklen_t len = sizeof err;

                /* The non-blocking connect finished: did it work? */
                if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0 || err != 0) {
                        probe_finish(p, err ? -err : negative_errno(), 0);
                        return 0;
                }
                if (p->connect_only) {
                        probe_finish(p, 0, 0);
                        return 0;
                }
                n = send(fd, p->request + p->sent, strlen(p->request) - p->sent, MSG_NOSIGNAL);
                if (n < 0) {
                        if (errno != EAGAIN && errno != EINTR)
                                probe_finish(p, negative_errno(), 0);
                        return 0;
                }
                p->sent += (size_t) n;
                if (p->sent == strlen(p->request))
                        (void) sd_event_source_set_io_events(s, EPOLLIN);
                return 0;
        }

        n = recv(fd, p->buf + p->got, sizeof p->buf - 1 - p->got, 0);
        if (n < 0) {
                if (errno != EAGAIN && errno != EINTR)
                        probe_finish(p, negative_errno(), 0);
                return 0;
        }
        p->got += (size_t) n;
        /* The status line is all we need: decide as soon as it is there,
         * or as soon as what arrived cannot become one. */
        k = http1_parse_status_line(p->buf, p->got, &resp);
        if (k > 0)
                probe_finish(p, 0, (unsigned) resp.status);
        else if (k == -1 || n == 0 || p->got == sizeof p->buf - 1)
                probe_finish(p, -EBADMSG, 0);
        return 0;
}

static int on_timeout(sd_event_source *s, uint64_t usec, void *userdata) {
        Probe *p = userdata;

        if (p->magic != PROBE_MAGIC)
                abort();
        probe_finish(p, -ETIMEDOUT, 0);
        return 0;
}

int probe_start(sd_event *e, const UpstreamAddress *a, uint64_t timeout_usec, ProbeDone done, void *userdata,
                Probe **ret_probe) {
        SocketAddress sa;
        Probe *p;
        int r;

        r = sockaddr_from_upstream(a, &sa);
        if (r < 0)
                return r;
        p = calloc(1, sizeof *p);
        if (!p)
                return -ENOMEM;
        p->magic = PROBE_MAGIC;
        p->request = PROBE_REQUEST;
        p->done = done;
        p->userdata = userdata;

        p->fd = sockopen_connect(&sa.sa, sa.len);
        if (p->fd < 0) {
                r = p->fd;
                goto fail;
        }
        r = sd_event_add_io(e, &p->io, p->fd, EPOLLOUT, on_io, p);
        if (r < 0)
                goto fail;
        r = sd_event_add_time_relative(e, &p->timer, CLOCK_MONOTONIC, timeout_usec, 0, on_timeout, p);
        if (r < 0)
                goto fail;
        if (ret_probe)
                *ret_probe = p;
        return 0;
fail:
        probe_free(p);
        return r;
}

int probe_connect_start(sd_event *e, const char *host, uint16_t port, uint64_t timeout_usec, ProbeDone done,
                        void *userdata, Probe **ret_probe) {
        UpstreamAddress a = {.kind = LISTEN_TCP, .host = (char *) host, .port = port};
        Probe *p = NULL;
        int r;

        r = probe_start(e, &a, timeout_usec, done, userdata, &p);
        if (r < 0)
                return r;
        p->connect_only = true;
        if (ret_probe)
                *ret_probe = p;
        return 0;
}

/* Whether the port's allow_cidrs admit a client at addr (family AF_INET or
 * AF_INET6), exactly as the proxy decides it. */
static bool port_admits(const PortConfig *port, int family, const void *addr) {
        struct sockaddr_storage ss = {.ss_family = (sa_family_t) family};

        if (family == AF_INET)
                memcpy(&((struct sockaddr_in *) &ss)->sin_addr, addr, sizeof(struct in_addr));
        else
                memcpy(&((struct sockaddr_in6 *) &ss)->sin6_addr, addr, sizeof(struct in6_addr));
        return cidr_allowed(port->allow_cidrs, port->n_allow_cidrs, (const struct sockaddr *) &ss);
}

/* This host's IPv4 addresses through SIOCGIFCONF on an AF_INET socket (every
 * address, secondary ones too): 0 with the first one port admits in
 * ret_host, else 1 (ret_host untouched). */
static int ipv4_admitted_by_ioctl(const PortConfig *port, char ret_host[static INET6_ADDRSTRLEN]) {
        _cleanup_close_ int fd = -EBADF;
        struct ifreq req[64];
        struct ifconf conf = {.ifc_len = sizeof req, .ifc_req = req};

        fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        if (fd < 0 || ioctl(fd, SIOCGIFCONF, &conf) < 0)
                return 1;
        for (size_t i = 0; i < (size_t) conf.ifc_len / sizeof(struct ifreq); i++) {
                const struct sockaddr_in *sin = (const struct sockaddr_in *) &req[i].ifr_addr;
                if (sin->sin_family == AF_INET && port_admits(port, AF_INET, &sin->sin_addr) &&
                    inet_ntop(AF_INET, &sin->sin_addr, ret_host, INET6_ADDRSTRLEN))
                        return 0;
        }
        return 1;
}

int probe_ipv6_admitted(const PortConfig *port, const char *if_inet6, char ret_host[static INET6_ADDRSTRLEN]) {
        for (const char *line = if_inet6; line && *line;) {
                const char *end = strchrnul(line, '\n');
                struct in6_addr a6;
                char hex[33], text[40];
                size_t k = 0;

                /* "20010db8000000000000000000000005 02 40 00 80 eth0": the
                 * first 32 hex digits are the address. */
                if (end - line >= 32 && sscanf(line, "%32[0-9a-fA-F]", hex) == 1 && strlen(hex) == 32) {
                        for (size_t i = 0; i < 32; i += 4) {
                                memcpy(text + k, hex + i, 4);
                                k += 4;
                                text[k++] = i < 28 ? ':' : '\0';
                        }
                        if (inet_pton(AF_INET6, text, &a6) == 1 && !IN6_IS_ADDR_LINKLOCAL(&a6) &&
                            port_admits(port, AF_INET6, &a6) && inet_ntop(AF_INET6, &a6, ret_host, INET6_ADDRSTRLEN))
                                return 0;
                }
                line = *end ? end + 1 : end;
        }
        return 1;
}

/* This host's IPv6 addresses without netlink: /proc/net/if_inet6, where it
 * is visible (ProcSubset=pid hides it). 0 with one port admits, else 1. */
static int ipv6_admitted_by_proc(const PortConfig *port, char ret_host[static INET6_ADDRSTRLEN]) {
        _cleanup_free_ char *text = NULL;

        if (read_file("/proc/net/if_inet6", 1024 * 1024, &text, NULL) < 0)
                return 1;
        return probe_ipv6_admitted(port, text, ret_host);
}

int probe_proxy_host(const PortConfig *port, char ret_host[static INET6_ADDRSTRLEN]) {
        struct ifaddrs *ifs = NULL;
        struct in_addr a4;
        SocketAddress where;
        int want; /* AF_UNSPEC: dual-stack, IPv4 first */
        int r = 1;

        if (!port->listen.host)
                want = AF_UNSPEC;
        else if (sockaddr_from_listen(&port->listen, &where) < 0)
                return -EINVAL;
        else if (where.sa.sa_family == AF_INET && where.in.sin_addr.s_addr == htonl(INADDR_ANY))
                want = AF_INET;
        else if (where.sa.sa_family == AF_INET6 && IN6_IS_ADDR_UNSPECIFIED(&where.in6.sin6_addr))
                want = AF_INET6;
        else {
                const void *a = where.sa.sa_family == AF_INET ? (const void *) &where.in.sin_addr
                                                          : (const void *) &where.in6.sin6_addr;
                (void) sockaddr_ip_text(&where, ret_host);
                return port_admits(port, where.sa.sa_family, a) ? 0 : 1;
        }

        /* Loopback first: the address every host has. */
        if (want == AF_INET6) {
                (void) snprintf(ret_host, INET6_ADDRSTRLEN, "::1");
                if (port_admits(port, AF_INET6, &in6addr_loopback))
                        return 0;
        } else {
                a4.s_addr = htonl(INADDR_LOOPBACK);
                (void) snprintf(ret_host, INET6_ADDRSTRLEN, "127.0.0.1");
                if (port_admits(port, AF_INET, &a4))
                        return 0;
        }
        /* Then this host's own addresses, in the kernel's order. IPv6
         * link-local ones need a scope a host string does not carry.
         * getifaddrs() asks over AF_NETLINK (regvisor.service allows it);
         * where a sandbox does not, the IPv4 ones from SIOCGIFCONF and the
         * IPv6 ones from /proc/net/if_inet6, either family's ranges in
         * allow_cidrs finding their address. */
        if (getifaddrs(&ifs) < 0) {
                r = want == AF_INET6 ? 1 : ipv4_admitted_by_ioctl(port, ret_host);
                if (r == 1 && want != AF_INET)
                        r = ipv6_admitted_by_proc(port, ret_host);
                return r;
        }
        for (struct ifaddrs *i = ifs; i; i = i->ifa_next) {
                const struct sockaddr *sa = i->ifa_addr;
                const void *a;
                if (!sa || (sa->sa_family != AF_INET && sa->sa_family != AF_INET6) ||
                    (want != AF_UNSPEC && sa->sa_family != want))
                        continue;
                if (sa->sa_family == AF_INET)
                        a = &((const struct sockaddr_in *) sa)->sin_addr;
                else {
                        a = &((const struct sockaddr_in6 *) sa)->sin6_addr;
                        if (IN6_IS_ADDR_LINKLOCAL((const struct in6_addr *) a))
                                continue;
                }
                if (port_admits(port, sa->sa_family, a) &&
                    inet_ntop(sa->sa_family, a, ret_host, INET6_ADDRSTRLEN)) {
                        r = 0;
                        break;
                }
        }
        freeifaddrs(ifs);
        return r;
}

int probe_alive_start(sd_event *e, const UpstreamAddress *a, uint64_t timeout_usec, ProbeDone done, void *userdata,
                      Probe **ret_probe) {
        Probe *p = NULL;
        int r;

        r = probe_start(e, a, timeout_usec, done, userdata, &p);
        if (r < 0)
                return r;
        p->request = PROBE_ALIVE_REQUEST;
        if (ret_probe)
                *ret_probe = p;
        return 0;
}

/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * The one place a configured address becomes a socket address: the proxy's
 * listeners and upstream, the supervisor's probes and status listener, and
 * the health checks' client all go through here, so "[::1]", "::1" and a
 * unix path mean the same thing to each of them. Pure: no I/O, no logging.
 */

#include <netinet/in.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/un.h>

/* A socket address and the length bind()/connect() take with it. */
typedef struct {
        union {
                struct sockaddr sa;
                struct sockaddr_in in;
                struct sockaddr_in6 in6;
                struct sockaddr_un un;
                struct sockaddr_storage storage;
        };
        socklen_t len;
} SocketAddress;

/* host is a numeric IPv4 or IPv6 address, IPv6 with or without brackets
 * ("127.0.0.1", "::1", "[::1]"); NULL is the IPv6 wildcard "::" (which
 * Linux binds dual-stack unless IPV6_V6ONLY is set). No names: a name would
 * need a resolver, and every configured address is a literal. Returns 0 and
 * *ret, or -EINVAL (ret untouched). */
int sockaddr_from_ip(const char *host, uint16_t port, SocketAddress *ret);

/* An AF_UNIX address for path; len covers the path and its NUL. Returns 0,
 * -EINVAL for an empty path, -ENAMETOOLONG when it does not fit sun_path. */
int sockaddr_from_unix(const char *path, SocketAddress *ret);

/* Parses a configured address in text: "PORT" (the wildcard, as
 * sockaddr_from_ip(NULL)), "IPV4:PORT", "[IPV6]:PORT" (brackets required:
 * otherwise the port could not be told from the address) or "unix:PATH".
 * PORT is 1 to 65535 in decimal digits. Returns 0 and *ret, or -EINVAL,
 * -ENAMETOOLONG (ret untouched). */
int sockaddr_parse(const char *s, SocketAddress *ret);

/* The address part of an AF_INET/AF_INET6 address as canonical text ("::1",
 * "10.0.0.1") into buf (INET6_ADDRSTRLEN bytes). Returns 0 or -EAFNOSUPPORT. */
int sockaddr_ip_text(const SocketAddress *a, char buf[static INET6_ADDRSTRLEN]);

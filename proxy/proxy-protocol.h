/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * The PROXY protocol, version 2 (HAProxy's proxy-protocol.txt, section 2.2):
 * the binary header a TCP load balancer (HAProxy's send-proxy-v2) puts
 * before the client's bytes to say who the client is. Pure: no I/O, no
 * allocation, no logging; the caller reads (proxy/conn.c) and decides who
 * may send one ([proxy] trusted_proxies).
 *
 * Accepted, and nothing else:
 *   - the 12-byte signature, version 2 (the version nibble 0x2);
 *   - command LOCAL (0x0, the balancer's own health checks): the address
 *     block, whatever its family byte says, is skipped (the spec's MUST);
 *   - command PROXY (0x1) with TCP over IPv4 (0x11, 12 address bytes) or
 *     TCP over IPv6 (0x21, 36 address bytes): the source address is the
 *     client. UNSPEC, UDP and UNIX are refused: the client address would be
 *     unknown, and the proxy will not guess it;
 *   - TLVs after the addresses, walked with strict bounds (each one's
 *     type, length and value must fit inside the header exactly) and
 *     ignored.
 * The version 1 text header ("PROXY TCP4 ...") is not accepted.
 *
 * A header is at most PROXY_PROTOCOL_MAX bytes in all: more is refused
 * before it is read (the length field is known after 16 bytes). The
 * reader reads at most proxy_protocol_wanted() bytes so that nothing of
 * the TLS ClientHello after the header is taken from the socket.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#define PROXY_PROTOCOL_SIGNATURE "\r\n\r\n\0\r\nQUIT\n"
#define PROXY_PROTOCOL_SIGNATURE_LEN 12
#define PROXY_PROTOCOL_FIXED 16 /* signature, version/command, family, length */
/* HAProxy's send-proxy-v2 sends 28 (IPv4) or 52 (IPv6) bytes, more with
 * proxy-v2-options TLVs (an authority is at most 255): 1 KiB is room for
 * those and bounds what a balancer can make a worker hold. */
#define PROXY_PROTOCOL_MAX 1024

typedef enum ProxyProtocolCommand {
        PROXY_PROTOCOL_LOCAL, /* the balancer speaking for itself */
        PROXY_PROTOCOL_PROXY, /* a relayed client: source is its address */
} ProxyProtocolCommand;

typedef struct ProxyProtocolHeader {
        ProxyProtocolCommand command;
        /* PROXY: the client's address and port (AF_INET or AF_INET6);
         * LOCAL: ss_family AF_UNSPEC. */
        struct sockaddr_storage source;
        socklen_t source_len;
} ProxyProtocolHeader;

/*
 * Parses the header at the start of buf (len bytes, which may hold less
 * than the whole header, or more: the bytes after it are not looked at).
 * Returns the header's length (> 0) with *ret filled; -EAGAIN when the
 * bytes so far are a valid beginning and more are needed (read up to
 * proxy_protocol_wanted()); -EBADMSG when buf does not start with the
 * signature (or a prefix of it) or the version is not 2; -EMSGSIZE when
 * the header is longer than PROXY_PROTOCOL_MAX; -EPROTONOSUPPORT for a
 * command other than LOCAL or PROXY; -EAFNOSUPPORT for a PROXY of another
 * family or transport than TCP over IPv4/IPv6; -EPROTO when the lengths do
 * not add up (an address block too short, a TLV beyond the end). The
 * verdict on a prefix never changes with more bytes, except -EAGAIN.
 * *ret is untouched unless a header is returned.
 */
int proxy_protocol_parse(const uint8_t *buf, size_t len, ProxyProtocolHeader *ret);

/* How many bytes buf (len so far) must have for proxy_protocol_parse() to
 * decide: PROXY_PROTOCOL_FIXED until those are there, then the header's
 * whole length (at most PROXY_PROTOCOL_MAX; call after the parse said
 * -EAGAIN). */
size_t proxy_protocol_wanted(const uint8_t *buf, size_t len);

/* Whether buf (len bytes, len > 0) starts like a PROXY header, of either
 * version: the v2 signature (or its first len bytes) or "PROXY ". For a
 * clear log line when one comes from an address that may not send it. */
bool proxy_protocol_sniff(const uint8_t *buf, size_t len);

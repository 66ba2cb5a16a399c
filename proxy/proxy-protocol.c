/* SPDX-License-Identifier: MIT */
/*
 * The PROXY protocol v2 header (proxy-protocol.h): parsed from a caller's
 * buffer, every length checked against the bytes that are there.
 */

#include <errno.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <string.h>

#include "proxy-protocol.h"

/* The 13th byte: version (high nibble) and command (low nibble). */
#define PP2_VERSION 0x20
#define PP2_CMD_LOCAL 0x00
#define PP2_CMD_PROXY 0x01
/* The 14th byte: address family (high nibble) and transport (low). */
#define PP2_TCP_OVER_IPV4 0x11
#define PP2_TCP_OVER_IPV6 0x21
#define PP2_ADDR_LEN_IPV4 12 /* source and destination address, both ports */
#define PP2_ADDR_LEN_IPV6 36
#define PP2_TLV_HEAD 3 /* type, length (2 bytes, network order) */

static size_t min_size(size_t a, size_t b) {
        return a < b ? a : b;
}

/* The length field: the bytes after the 16 fixed ones. */
static size_t payload_len(const uint8_t *buf) {
        return (size_t)buf[14] << 8 | buf[15];
}

bool proxy_protocol_sniff(const uint8_t *buf, size_t len) {
        static const char v1[] = "PROXY ";

        if (len == 0)
                return 0;
        return memcmp(buf, PROXY_PROTOCOL_SIGNATURE, min_size(len, PROXY_PROTOCOL_SIGNATURE_LEN)) == 0 ||
               memcmp(buf, v1, min_size(len, sizeof(v1) - 1)) == 0;
}

size_t proxy_protocol_wanted(const uint8_t *buf, size_t len) {
        if (len < PROXY_PROTOCOL_FIXED)
                return PROXY_PROTOCOL_FIXED;
        return min_size(PROXY_PROTOCOL_FIXED + payload_len(buf), PROXY_PROTOCOL_MAX);
}

/* The TLVs in [p, end): each must fit exactly. Their contents are not
 * used (no option of ours depends on them): ignored, but not skipped
 * blindly, so that a header whose lengths disagree is refused. */
static int tlvs_check(const uint8_t *p, const uint8_t *end) {
        while (p < end) {
                size_t n;

                if ((size_t)(end - p) < PP2_TLV_HEAD)
                        return -EPROTO;
                n = (size_t)p[1] << 8 | p[2];
                if ((size_t)(end - p) - PP2_TLV_HEAD < n)
                        return -EPROTO;
                p += PP2_TLV_HEAD + n;
        }
        return 0;
}

/* The source address of a PROXY command's address block (a, n bytes). */
static int source_parse(uint8_t family, const uint8_t *a, size_t n, ProxyProtocolHeader *h) {
        if (family == PP2_TCP_OVER_IPV4) {
                struct sockaddr_in *in = (struct sockaddr_in *)&h->source;

                if (n < PP2_ADDR_LEN_IPV4)
                        return -EPROTO;
                *in = (struct sockaddr_in){.sin_family = AF_INET};
                memcpy(&in->sin_addr, a, 4);     /* source, then destination address */
                memcpy(&in->sin_port, a + 8, 2); /* source, then destination port */
                h->source_len = sizeof(*in);
                return PP2_ADDR_LEN_IPV4;
        }
        if (family == PP2_TCP_OVER_IPV6) {
                struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&h->source;

                if (n < PP2_ADDR_LEN_IPV6)
                        return -EPROTO;
                *in6 = (struct sockaddr_in6){.sin6_family = AF_INET6};
                memcpy(&in6->sin6_addr, a, 16);
                memcpy(&in6->sin6_port, a + 32, 2);
                h->source_len = sizeof(*in6);
                return PP2_ADDR_LEN_IPV6;
        }
        /* UNSPEC, UDP (0x12, 0x22), UNIX (0x31, 0x32), anything else. */
        return -EAFNOSUPPORT;
}

int proxy_protocol_parse(const uint8_t *buf, size_t len, ProxyProtocolHeader *ret) {
        ProxyProtocolHeader h = {};
        size_t total;
        uint8_t cmd;
        int r;

        if (memcmp(buf, PROXY_PROTOCOL_SIGNATURE, min_size(len, PROXY_PROTOCOL_SIGNATURE_LEN)) != 0)
                return -EBADMSG;
        if (len <= PROXY_PROTOCOL_SIGNATURE_LEN)
                return -EAGAIN;
        if ((buf[12] & 0xf0) != PP2_VERSION)
                return -EBADMSG;
        cmd = buf[12] & 0x0f;
        if (cmd != PP2_CMD_LOCAL && cmd != PP2_CMD_PROXY)
                return -EPROTONOSUPPORT;
        if (len < PROXY_PROTOCOL_FIXED)
                return -EAGAIN;
        total = PROXY_PROTOCOL_FIXED + payload_len(buf);
        if (total > PROXY_PROTOCOL_MAX)
                return -EMSGSIZE;
        /* Decided on the fixed part alone, before the payload is read. */
        if (cmd == PP2_CMD_PROXY && buf[13] != PP2_TCP_OVER_IPV4 && buf[13] != PP2_TCP_OVER_IPV6)
                return -EAFNOSUPPORT;
        if (cmd == PP2_CMD_PROXY &&
            payload_len(buf) < (buf[13] == PP2_TCP_OVER_IPV4 ? PP2_ADDR_LEN_IPV4 : PP2_ADDR_LEN_IPV6))
                return -EPROTO;
        if (len < total)
                return -EAGAIN;

        if (cmd == PP2_CMD_LOCAL) {
                /* The address block is skipped whatever the family byte
                 * says (the spec: receivers must not assume it is empty);
                 * the connection's own peer is the client. */
                h.command = PROXY_PROTOCOL_LOCAL;
                h.source.ss_family = AF_UNSPEC;
                *ret = h;
                return (int)total;
        }
        h.command = PROXY_PROTOCOL_PROXY;
        r = source_parse(buf[13], buf + PROXY_PROTOCOL_FIXED, payload_len(buf), &h);
        if (r < 0)
                return r;
        r = tlvs_check(buf + PROXY_PROTOCOL_FIXED + r, buf + total);
        if (r < 0)
                return r;
        *ret = h;
        return (int)total;
}

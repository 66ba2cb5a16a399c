/* SPDX-License-Identifier: MIT */
/*
 * Tests for proxy/proxy-protocol.c: the PROXY protocol v2 header a load
 * balancer sends before TLS. What HAProxy sends is accepted; every length
 * that does not add up, every family but TCP over IPv4/IPv6, version 1 and
 * oversized headers are refused; a header split at every byte gives the
 * same answer; bytes after the header are never taken.
 */

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <string.h>

#include "proxy-protocol.h"

/* A header: signature, version/command byte, family byte, then body
 * (n bytes) with the length field set to n. Returns its length. */
static size_t build(uint8_t *out, uint8_t ver_cmd, uint8_t fam, const uint8_t *body, size_t n) {
        memcpy(out, PROXY_PROTOCOL_SIGNATURE, PROXY_PROTOCOL_SIGNATURE_LEN);
        out[12] = ver_cmd;
        out[13] = fam;
        out[14] = (uint8_t)(n >> 8);
        out[15] = (uint8_t)n;
        if (n > 0)
                memcpy(out + 16, body, n);
        return 16 + n;
}

/* 192.0.2.7:40000 -> 198.51.100.1:443 */
static const uint8_t ipv4_body[12] = {192, 0, 2, 7, 198, 51, 100, 1, 0x9c, 0x40, 0x01, 0xbb};

static size_t ipv6_body(uint8_t out[36]) {
        memset(out, 0, 36);
        assert_int_equal(inet_pton(AF_INET6, "2001:db8::7", out), 1);
        assert_int_equal(inet_pton(AF_INET6, "2001:db8::1", out + 16), 1);
        out[32] = 0x9c, out[33] = 0x41, out[34] = 0x11, out[35] = 0x5b;
        return 36;
}

static void test_ipv4(void **state) {
        uint8_t b[64];
        size_t n = build(b, 0x21, 0x11, ipv4_body, sizeof(ipv4_body));
        ProxyProtocolHeader h;
        char text[INET6_ADDRSTRLEN];

        assert_int_equal(n, 28); /* what HAProxy's send-proxy-v2 sends for IPv4 */
        assert_int_equal(proxy_protocol_parse(b, n, &h), 28);
        assert_int_equal(h.command, PROXY_PROTOCOL_PROXY);
        assert_int_equal(h.source.ss_family, AF_INET);
        assert_int_equal(h.source_len, sizeof(struct sockaddr_in));
        const struct sockaddr_in *in = (const struct sockaddr_in *)&h.source;
        assert_string_equal(inet_ntop(AF_INET, &in->sin_addr, text, sizeof(text)), "192.0.2.7");
        assert_int_equal(ntohs(in->sin_port), 40000);
}

static void test_ipv6(void **state) {
        uint8_t body[36], b[64];
        size_t n = build(b, 0x21, 0x21, body, ipv6_body(body));
        ProxyProtocolHeader h;
        char text[INET6_ADDRSTRLEN];

        assert_int_equal(proxy_protocol_parse(b, n, &h), 52);
        assert_int_equal(h.source.ss_family, AF_INET6);
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)&h.source;
        assert_string_equal(inet_ntop(AF_INET6, &in6->sin6_addr, text, sizeof(text)), "2001:db8::7");
        assert_int_equal(ntohs(in6->sin6_port), 40001);
}

static void test_local(void **state) {
        uint8_t b[64];
        ProxyProtocolHeader h;

        /* HAProxy's health check: LOCAL, UNSPEC, no addresses. */
        assert_int_equal(proxy_protocol_parse(b, build(b, 0x20, 0x00, NULL, 0), &h), 16);
        assert_int_equal(h.command, PROXY_PROTOCOL_LOCAL);
        assert_int_equal(h.source.ss_family, AF_UNSPEC);
        /* LOCAL with an address block: skipped, whatever the family. */
        assert_int_equal(proxy_protocol_parse(b, build(b, 0x20, 0x11, ipv4_body, 12), &h), 28);
        assert_int_equal(h.source.ss_family, AF_UNSPEC);
        assert_int_equal(proxy_protocol_parse(b, build(b, 0x20, 0x31, ipv4_body, 5), &h), 21);
}

static void test_tlvs(void **state) {
        uint8_t body[64], b[128];
        ProxyProtocolHeader h = {.source_len = 99};

        memcpy(body, ipv4_body, 12);
        /* PP2_TYPE_AUTHORITY "reg" and an empty PP2_TYPE_NOOP */
        memcpy(body + 12, "\x02\x00\x03reg\x04\x00\x00", 9);
        assert_int_equal(proxy_protocol_parse(b, build(b, 0x21, 0x11, body, 21), &h), 37);
        assert_int_equal(h.source.ss_family, AF_INET);
        /* A TLV whose length runs past the header. */
        h.source_len = 99;
        memcpy(body + 12, "\x02\x00\x04reg", 6);
        assert_int_equal(proxy_protocol_parse(b, build(b, 0x21, 0x11, body, 18), &h), -EPROTO);
        assert_int_equal(h.source_len, 99); /* untouched */
        /* A TLV head cut short (two bytes of three). */
        memcpy(body + 12, "\x04\x00", 2);
        assert_int_equal(proxy_protocol_parse(b, build(b, 0x21, 0x11, body, 14), &h), -EPROTO);
        /* One byte left over. */
        assert_int_equal(proxy_protocol_parse(b, build(b, 0x21, 0x11, body, 13), &h), -EPROTO);
}

static void test_refused(void **state) {
        uint8_t b[2048] = {}, body[1100] = {};
        ProxyProtocolHeader h;

        /* Families and transports other than TCP over IPv4/IPv6. */
        static const uint8_t fams[] = {0x00, 0x01, 0x10, 0x12, 0x20, 0x22, 0x31, 0x32, 0x13, 0x41, 0xff};
        for (size_t i = 0; i < sizeof(fams); i++)
                assert_int_equal(proxy_protocol_parse(b, build(b, 0x21, fams[i], body, 216), &h), -EAFNOSUPPORT);
        /* Address blocks too short for their family. */
        assert_int_equal(proxy_protocol_parse(b, build(b, 0x21, 0x11, ipv4_body, 11), &h), -EPROTO);
        assert_int_equal(proxy_protocol_parse(b, build(b, 0x21, 0x21, body, 35), &h), -EPROTO);
        assert_int_equal(proxy_protocol_parse(b, build(b, 0x21, 0x21, ipv4_body, 12), &h), -EPROTO);
        /* Versions other than 2, commands other than LOCAL and PROXY. */
        assert_int_equal(proxy_protocol_parse(b, build(b, 0x11, 0x11, ipv4_body, 12), &h), -EBADMSG);
        assert_int_equal(proxy_protocol_parse(b, build(b, 0x31, 0x11, ipv4_body, 12), &h), -EBADMSG);
        assert_int_equal(proxy_protocol_parse(b, build(b, 0x22, 0x11, ipv4_body, 12), &h), -EPROTONOSUPPORT);
        assert_int_equal(proxy_protocol_parse(b, build(b, 0x2f, 0x11, ipv4_body, 12), &h), -EPROTONOSUPPORT);
        /* Too long: refused from the fixed part alone. */
        memcpy(body, ipv4_body, 12);
        build(b, 0x21, 0x11, body, PROXY_PROTOCOL_MAX - 16 + 1);
        assert_int_equal(proxy_protocol_parse(b, 16, &h), -EMSGSIZE);
        assert_int_equal(proxy_protocol_parse(b, PROXY_PROTOCOL_MAX + 1, &h), -EMSGSIZE);
        /* The largest allowed: one TLV filling it. */
        size_t pad = PROXY_PROTOCOL_MAX - 16 - 12 - 3;
        body[12] = 0x04, body[13] = (uint8_t)(pad >> 8), body[14] = (uint8_t)pad;
        assert_int_equal(proxy_protocol_parse(b, build(b, 0x21, 0x11, body, PROXY_PROTOCOL_MAX - 16), &h),
                         PROXY_PROTOCOL_MAX);
        b[15] = 0xff, b[14] = 0xff; /* 65535 */
        assert_int_equal(proxy_protocol_parse(b, 16, &h), -EMSGSIZE);
        /* Version 1 text, a TLS ClientHello, HTTP: not a v2 header. */
        assert_int_equal(proxy_protocol_parse((const uint8_t *)"PROXY TCP4 1.2.3.4 5.6.7.8 1 2\r\n", 32, &h),
                         -EBADMSG);
        assert_int_equal(proxy_protocol_parse((const uint8_t *)"\x16\x03\x01\x02\x00", 5, &h), -EBADMSG);
        assert_int_equal(proxy_protocol_parse((const uint8_t *)"GET / HTTP/1.1\r\n", 16, &h), -EBADMSG);
        assert_int_equal(proxy_protocol_parse((const uint8_t *)"\r\n\r\n\0\r\nQUIT!", 12, &h), -EBADMSG);
}

/* Every split of a header: each prefix says -EAGAIN and wants more than it
 * has, never beyond the header; the whole says the same as in one piece. */
static void test_split(void **state) {
        uint8_t body[36], b[128];
        size_t n = build(b, 0x21, 0x21, body, ipv6_body(body));
        ProxyProtocolHeader h;

        for (size_t k = 0; k < n; k++) {
                assert_int_equal(proxy_protocol_parse(b, k, &h), -EAGAIN);
                size_t want = proxy_protocol_wanted(b, k);
                assert_true(want > k);
                assert_true(want <= n);
        }
        assert_int_equal(proxy_protocol_wanted(b, n), n);
        assert_int_equal(proxy_protocol_parse(b, n, &h), (int)n);
}

/* A header and the ClientHello in one segment: the header's length comes
 * back, the bytes after it are not looked at. */
static void test_followed_by_tls(void **state) {
        uint8_t b[128];
        size_t n = build(b, 0x21, 0x11, ipv4_body, 12);
        ProxyProtocolHeader h;

        memcpy(b + n, "\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03", 11);
        assert_int_equal(proxy_protocol_parse(b, n + 11, &h), (int)n);
        assert_int_equal(proxy_protocol_wanted(b, n + 11), n);
}

static void test_sniff(void **state) {
        uint8_t b[64];
        size_t n = build(b, 0x21, 0x11, ipv4_body, 12);

        for (size_t k = 1; k <= n; k++)
                assert_true(proxy_protocol_sniff(b, k));
        assert_true(proxy_protocol_sniff((const uint8_t *)"PROXY TCP4 ", 11));
        assert_true(proxy_protocol_sniff((const uint8_t *)"PRO", 3));
        assert_false(proxy_protocol_sniff((const uint8_t *)"\x16\x03\x01", 3));
        assert_false(proxy_protocol_sniff((const uint8_t *)"GET /", 5));
        assert_false(proxy_protocol_sniff(b, 0));
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_ipv4),         cmocka_unit_test(test_ipv6),
                cmocka_unit_test(test_local),        cmocka_unit_test(test_tlvs),
                cmocka_unit_test(test_refused),      cmocka_unit_test(test_split),
                cmocka_unit_test(test_followed_by_tls), cmocka_unit_test(test_sniff),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}

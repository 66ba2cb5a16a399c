/* SPDX-License-Identifier: MIT */
/*
 * Fuzzer for proxy/proxy-protocol.c. The input is what a balancer (or an
 * attacker at a trusted address) sends before TLS. Checked:
 *   - a header's length is at least 16, at most PROXY_PROTOCOL_MAX and the
 *     input's size, and agrees with the length field;
 *   - a PROXY header carries an AF_INET/AF_INET6 source of the right
 *     length, whose bytes are the input's; a LOCAL one carries AF_UNSPEC;
 *   - every prefix of the input gets -EAGAIN or the same verdict as the
 *     whole (for a header: the same length), and the reader's bounded read
 *     (proxy_protocol_wanted()) never asks for more than the header: the
 *     TLS bytes after it stay in the socket;
 *   - bytes after a complete header do not change its parse.
 */

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <netinet/in.h>

#include "proxy-protocol.h"
#include "fuzz-check.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        ProxyProtocolHeader h, h2;
        uint8_t *copy;
        int r, r2;

        /* An exact-size copy: ASan sees any read beyond the input. */
        copy = malloc(size ? size : 1);
        if (!copy)
                return 0;
        if (size > 0)
                memcpy(copy, data, size);
        r = proxy_protocol_parse(copy, size, &h);
        CHECK(r > 0 || r == -EAGAIN || r == -EBADMSG || r == -EMSGSIZE || r == -EPROTONOSUPPORT ||
              r == -EAFNOSUPPORT || r == -EPROTO);
        if (r > 0) {
                CHECK(r >= PROXY_PROTOCOL_FIXED && r <= PROXY_PROTOCOL_MAX && (size_t)r <= size);
                CHECK((size_t)r == PROXY_PROTOCOL_FIXED + ((size_t)copy[14] << 8 | copy[15]));
                if (h.command == PROXY_PROTOCOL_PROXY) {
                        CHECK(h.source.ss_family == AF_INET || h.source.ss_family == AF_INET6);
                        if (h.source.ss_family == AF_INET)
                                CHECK(h.source_len == sizeof(struct sockaddr_in) &&
                                      memcmp(&((struct sockaddr_in *)&h.source)->sin_addr, copy + 16, 4) == 0);
                        else
                                CHECK(h.source_len == sizeof(struct sockaddr_in6) &&
                                      memcmp(&((struct sockaddr_in6 *)&h.source)->sin6_addr, copy + 16, 16) == 0);
                } else
                        CHECK(h.command == PROXY_PROTOCOL_LOCAL && h.source.ss_family == AF_UNSPEC);
                /* The header alone parses the same. */
                r2 = proxy_protocol_parse(copy, (size_t)r, &h2);
                CHECK(r2 == r && h2.command == h.command && h2.source_len == h.source_len &&
                      memcmp(&h2.source, &h.source, sizeof(h.source)) == 0);
        }
        /* Prefixes, as the reader sees them read by read. */
        for (size_t k = 0; k < size && k < PROXY_PROTOCOL_MAX + 1; k++) {
                r2 = proxy_protocol_parse(copy, k, &h2);
                if (r2 == -EAGAIN) {
                        size_t want = proxy_protocol_wanted(copy, k);
                        CHECK(want > k && want <= PROXY_PROTOCOL_MAX);
                        if (r > 0)
                                CHECK(want <= (size_t)r);
                        continue;
                }
                if (r > 0)
                        CHECK(r2 == r || r2 == -EAGAIN);
                else
                        CHECK(r2 == r);
        }
        free(copy);
        return 0;
}

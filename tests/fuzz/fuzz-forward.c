/* SPDX-License-Identifier: MIT */
/*
 * Fuzzer for the trust boundary (proxy/forward.c): everything a client
 * controls goes in (the TLS SNI, the certificate subject, the request line,
 * Host and every header field, the port), and the invariant of forward.h is
 * checked on what would be written to the registry:
 *   - forward_request() either refuses (a 4xx of its own; a 500 means the
 *     serializer wrote a head its own oracle refused: a bug) or writes a
 *     head that forward_check() accepts: exactly one complete request, the
 *     approved method, path and framing, a configured Host, the peer as the
 *     only forwarded address, nothing the proxy drops;
 *   - the head does not depend on the SNI or the subject: the same request
 *     with other values gives the same bytes;
 *   - a request forwarded to the signature store is only ever one of the
 *     extension's path, GET or HEAD (PUT too on the push port), without a
 *     query, and only when a store is configured.
 *
 * Input: byte 0 flags (bit 0: push port, bit 1: a signature store is
 * configured), byte 1 SNI length, the SNI,
 * then a subject length byte, the subject, then the request head.
 */

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "forward.h"
#include "http1.h"
#include "fuzz-check.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char name0[] = "registry.test", name1[] = "192.0.2.10", name2[] = "2001:db8::10";
static char *names[] = {name0, name1, name2};

static char *take_string(const uint8_t **data, size_t *size) {
        size_t n;
        char *s;

        if (*size == 0)
                return NULL;
        n = **data;
        (*data)++, (*size)--;
        if (n > *size)
                n = *size;
        s = malloc(n + 1);
        CHECK(s);
        memcpy(s, *data, n); /* any byte, NUL, CR and LF included, as OpenSSL allows */
        s[n] = 0;
        *data += n, *size -= n;
        return s;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        static ForwardScratch scratch;
        static char out[2][HTTP1_MAX_HEAD + 4096];
        Http1Header h[HTTP1_MAX_HEADERS];
        Http1Request req = {};
        ForwardRefusal refusal[2];
        int r[2];

        if (size < 1)
                return 0;
        bool push = data[0] & 1, sigstore = data[0] & 2;
        data++, size--;
        char *sni = take_string(&data, &size);
        char *subject = take_string(&data, &size);
        char *head = malloc(size ? size : 1); /* exact size: ASan sees overreads */
        CHECK(head);
        memcpy(head, data, size);

        if (http1_parse_request(head, size, &req, h, HTTP1_MAX_HEADERS) > 0) {
                ForwardPolicy p = {
                        .push = push,
                        .port_number = push ? 4443 : 443,
                        .server_names = names,
                        .n_server_names = 3,
                        .max_body = 1u << 30,
                        .sigstore = sigstore,
                };
                ForwardClient c[2] = {
                        {.peer = "198.51.100.7", .sni = sni, .subject = subject},
                        {.peer = "198.51.100.7", .sni = "registry.test", .subject = "CN=other"},
                };
                for (int i = 0; i < 2; i++) {
                        r[i] = forward_request(&p, &c[i], &req, h, &scratch, out[i], sizeof(out[i]), &refusal[i]);
                        if (r[i] > 0)
                                CHECK(forward_check(&p, &c[i], &req, &scratch, out[i], (size_t)r[i]) == 0);
                        else if (r[i] == 0 && route_decision_local(refusal[i].route))
                                /* Answered by the proxy (a CRL): GET or HEAD only. */
                                CHECK(refusal[i].status == 200 &&
                                      ((req.method_len == 3 && memcmp(req.method, "GET", 3) == 0) ||
                                       (req.method_len == 4 && memcmp(req.method, "HEAD", 4) == 0)));
                        else if (r[i] == 0)
                                CHECK(refusal[i].status >= 400 && refusal[i].status < 500);
                        else
                                CHECK(r[i] == -ENOBUFS);
                        if (r[i] > 0 && scratch.route == ROUTE_SIGSTORE) {
                                const char *sp = memchr(out[i], ' ', (size_t)r[i]) + 1;
                                CHECK(sigstore);
                                CHECK(strncmp(sp, "/extensions/v2/", 15) == 0);
                                CHECK(memchr(sp, '?', (size_t)(strchr(sp, ' ') - sp)) == NULL);
                                CHECK((req.method_len == 3 && memcmp(req.method, "GET", 3) == 0) ||
                                      (req.method_len == 4 && memcmp(req.method, "HEAD", 4) == 0) ||
                                      (push && req.method_len == 3 && memcmp(req.method, "PUT", 3) == 0));
                        }
                }
                CHECK(r[0] == r[1]);
                if (r[0] > 0)
                        CHECK(memcmp(out[0], out[1], (size_t)r[0]) == 0);
        }
        free(head);
        free(sni);
        free(subject);
        return 0;
}

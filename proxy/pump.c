/* SPDX-License-Identifier: MIT */
/*
 * The byte pumps of a proxy worker: between an endpoint and a buffer
 * (pump_fill(), pump_flush()) and between the buffers of a connection
 * (request body cin -> uout, chunked response body uin -> cout, a
 * pass-through response body uin -> client). Each returns 1 when it moved
 * bytes, 0 when it could not, <0 to kill the connection; the state machine
 * (conn.c) calls them until none moves.
 */

#include <errno.h>
#include <string.h>

#include "worker.h"

/* Reads from an endpoint into a buffer's free tail (buf_tail()), if the
 * endpoint is readable (IoEndpoint.readable). 1 progress,
 * 0 nothing, 2 EOF (now), <0 error. */
int pump_fill(IoEndpoint *e, Buf *b) {
        size_t tail;
        ssize_t n;
        int r;

        /* Not readable: the last read found nothing, and no epoll edge
         * since (a needless read per TLS record sent cost a read() each). */
        if (!e->readable || buf_room(b) == 0)
                return 0;
        r = buf_prepare(b);
        if (r < 0)
                return r;
        tail = buf_tail(b);
        if (tail == 0)
                return 0; /* the reader drains it first; see buf_tail() */
        n = e->ops->read(e, b->data + b->end, tail);
        if (n == -EAGAIN)
                return 0;
        if (n < 0)
                return (int)n;
        if (n == 0)
                return 2;
        b->end += (size_t)n;
        e->moved += (uint64_t)n;
        return 1;
}

/* Writes a buffer's bytes to an endpoint, until it is empty or the endpoint
 * would block (TLS: one record per write). 1 progress, 0 nothing, <0. */
int pump_flush(IoEndpoint *e, Buf *b) {
        bool progress = false;
        ssize_t n;

        while (buf_len(b) > 0) {
                n = e->ops->write(e, b->data + b->start, buf_len(b));
                if (n == -EAGAIN)
                        break;
                if (n < 0)
                        return (int)n;
                buf_consume(b, (size_t)n);
                e->moved += (uint64_t)n;
                progress = true;
        }
        return progress;
}

/* A Content-Length request body: copied as it is. */
static int pump_request_length(Conn *c) {
        size_t n = buf_len(&c->cin);
        int r;

        if (n > c->req_remaining)
                n = (size_t)c->req_remaining;
        r = buf_prepare(&c->uout);
        if (r < 0)
                return r;
        if (n > buf_tail(&c->uout))
                n = buf_tail(&c->uout);
        if (n == 0)
                return 0;
        memcpy(c->uout.data + c->uout.end, c->cin.data + c->cin.start, n);
        c->uout.end += n;
        buf_consume(&c->cin, n);
        c->req_remaining -= n;
        c->bytes_in += n;
        c->req_done = c->req_remaining == 0;
        return 1;
}

enum { CHUNK_STOP, CHUNK_MORE, CHUNK_ANSWERED };

/* A chunked body the proxy will not forward the end of: answered, and the
 * registry, which may have the head already, gets no end of this body, only
 * a closed connection. */
static int pump_request_refuse(Conn *c, int status, const char *code, const char *message, const char *detail) {
        conn_upstream_close(c);
        exchange_respond_error(c, status, code, message, detail, 0, false);
        return CHUNK_ANSWERED;
}

/* One run of a chunked request body: decoded, and its data re-framed
 * canonically into uout; *progress set when bytes moved. CHUNK_MORE when
 * another run may follow, CHUNK_STOP when not now (no room, nothing
 * decoded, or the body is complete), CHUNK_ANSWERED when the body was
 * refused and answered, <0 to kill. */
static int pump_request_chunk(Conn *c, bool *progress) {
        char hdr[HTTP1_CHUNK_HEADER_MAX];
        size_t off, dlen, in_len = buf_len(&c->cin), room = buf_room(&c->uout);
        ssize_t k;
        int r;

        /* Room for a chunk header, the data run (at most in_len bytes), its
         * CRLF and the last chunk "0\r\n\r\n". */
        const size_t framing = HTTP1_CHUNK_HEADER_MAX + 2 + 5;
        if (room < framing + 1)
                return CHUNK_STOP;
        if (in_len > room - framing)
                in_len = room - framing;
        k = http1_chunked_feed(&c->req_chunked, c->cin.data + c->cin.start, in_len, &off, &dlen);
        if (k < 0)
                return pump_request_refuse(c, 400, "BAD_REQUEST", "malformed chunked body",
                                           http1_error_string(c->req_chunked.error));
        if (c->req_chunked.body_len > c->w->c->tuning.max_body)
                return pump_request_refuse(c, 413, "SIZE_INVALID", "request body too large",
                                           "the body is larger than [proxy] max_body");
        if (dlen > 0) {
                size_t h = http1_chunk_header(hdr, dlen);
                if ((r = buf_append(&c->uout, hdr, h)) < 0 ||
                    (r = buf_append(&c->uout, c->cin.data + c->cin.start + off, dlen)) < 0 ||
                    (r = buf_append(&c->uout, "\r\n", 2)) < 0)
                        return r;
        }
        buf_consume(&c->cin, (size_t)k);
        c->bytes_in += (uint64_t)k;
        if (k > 0)
                *progress = true;
        if (http1_chunked_done(&c->req_chunked)) {
                if ((r = buf_append(&c->uout, "0\r\n\r\n", 5)) < 0)
                        return r;
                c->req_done = true;
                *progress = true;
        }
        return k > 0 ? CHUNK_MORE : CHUNK_STOP;
}

/* The request body, from cin to uout. 1 progress, 0 nothing, <0 kill. */
int pump_request_body(Conn *c) {
        bool progress = false;
        int r;

        if (c->req_done || buf_len(&c->cin) == 0)
                return 0;
        if (c->req_body == HTTP1_BODY_LENGTH)
                return pump_request_length(c);
        while (!c->req_done && buf_len(&c->cin) > 0) {
                r = pump_request_chunk(c, &progress);
                if (r < 0)
                        return r;
                if (r == CHUNK_ANSWERED)
                        return 1;
                if (r == CHUNK_STOP)
                        break;
        }
        return progress;
}

/* A response body that passes through unchanged (Content-Length, or until
 * the registry closes) goes from uin to the client directly, once cout (our
 * head) is sent: no copy into cout. Every call after an -EAGAIN offers the
 * same bytes again, and at least as many (uin only grows at its end and
 * nothing is consumed meanwhile), as SSL_write() requires.
 * 1 progress, 0 nothing, <0 kill (the client is gone). */
int pump_response_direct(Conn *c) {
        bool progress = false;
        ssize_t k;
        size_t n;

        if (c->resp_stage != RESP_BODY || buf_len(&c->cout) > 0 ||
            (c->resp_body != HTTP1_BODY_LENGTH && c->resp_body != HTTP1_BODY_UNTIL_CLOSE))
                return 0;
        while ((n = buf_len(&c->uin)) > 0 && c->resp_stage == RESP_BODY) {
                if (c->resp_body == HTTP1_BODY_LENGTH && n > c->resp_remaining)
                        n = (size_t)c->resp_remaining;
                k = c->client.ops->write(&c->client, c->uin.data + c->uin.start, n);
                if (k == -EAGAIN)
                        break;
                if (k < 0)
                        return (int)k;
                buf_consume(&c->uin, (size_t)k);
                c->client.moved += (uint64_t)k;
                c->bytes_out += (uint64_t)k;
                if (c->resp_body == HTTP1_BODY_LENGTH) {
                        c->resp_remaining -= (uint64_t)k;
                        if (c->resp_remaining == 0)
                                c->resp_stage = RESP_DONE;
                }
                progress = true;
        }
        return progress;
}

/* The first bytes of a pass-through body joined to the head in cout, up to
 * one full TLS record (16 KiB, the largest SSL_write() sends at once):
 * sent apart, a small answer (GET /v2/'s "{}", a manifest) cost a second
 * record, its encryption, a write() and a packet, on every request of a
 * pull. Only what uin already holds, only while cout is under a record; the
 * rest goes direct (pump_response_direct()). Appending to cout after an
 * -EAGAIN is allowed: the same bytes are offered again, and more.
 * 1 progress, 0 nothing, <0 kill. */
int pump_response_coalesce(Conn *c) {
        size_t n, have = buf_len(&c->cout);
        int r;

        if (c->resp_stage != RESP_BODY || have == 0 || have >= SSL3_RT_MAX_PLAIN_LENGTH ||
            (c->resp_body != HTTP1_BODY_LENGTH && c->resp_body != HTTP1_BODY_UNTIL_CLOSE))
                return 0;
        n = buf_len(&c->uin);
        if (c->resp_body == HTTP1_BODY_LENGTH && n > c->resp_remaining)
                n = (size_t)c->resp_remaining;
        if (n > SSL3_RT_MAX_PLAIN_LENGTH - have)
                n = SSL3_RT_MAX_PLAIN_LENGTH - have;
        if (n == 0)
                return 0;
        r = buf_append(&c->cout, c->uin.data + c->uin.start, n); /* room: have + n <= 16 KiB */
        if (r < 0)
                return r;
        buf_consume(&c->uin, n);
        c->bytes_out += n;
        if (c->resp_body == HTTP1_BODY_LENGTH) {
                c->resp_remaining -= n;
                if (c->resp_remaining == 0)
                        c->resp_stage = RESP_DONE;
        }
        return 1;
}

/* A chunked response body, validated from uin to cout (only the data, for
 * an HTTP/1.0 client). 1 progress, 0 nothing, <0 kill. */
int pump_response_body(Conn *c) {
        size_t n, off, dlen;
        ssize_t k;
        int r;

        if (c->resp_stage != RESP_BODY || c->resp_body != HTTP1_BODY_CHUNKED || buf_len(&c->uin) == 0 ||
            buf_room(&c->cout) == 0)
                return 0;
        r = buf_prepare(&c->cout);
        if (r < 0)
                return r;
        /* Only into the free tail: see buf_tail(). */
        n = buf_len(&c->uin);
        if (n > buf_tail(&c->cout))
                n = buf_tail(&c->cout);
        if (n == 0)
                return 0;
        /* The decoder never consumes more than n, and n fits in cout's
         * tail. */
        k = http1_chunked_feed(&c->resp_chunked, c->uin.data + c->uin.start, n, &off, &dlen);
        if (k < 0) {
                log_warning("proxy: invalid chunked body from the registry: %s",
                            http1_error_string(c->resp_chunked.error));
                return -EPROTO;
        }
        if (c->resp_dechunk)
                r = dlen > 0 ? buf_append(&c->cout, c->uin.data + c->uin.start + off, dlen) : 0;
        else
                r = buf_append(&c->cout, c->uin.data + c->uin.start, (size_t)k);
        if (r < 0)
                return r;
        c->bytes_out += c->resp_dechunk ? dlen : (size_t)k;
        buf_consume(&c->uin, (size_t)k);
        if (http1_chunked_done(&c->resp_chunked))
                c->resp_stage = RESP_DONE;
        return k > 0;
}

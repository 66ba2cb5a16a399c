/* SPDX-License-Identifier: MIT */
/*
 * Tests for proxy/pump.c's response path: a small pass-through body leaves
 * in the same write (one TLS record) as its head, a large one fills the
 * first record and goes direct after it, and no byte past Content-Length
 * is ever taken from uin.
 */

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "worker.h"

/* A client endpoint that records its writes and accepts at most one TLS
 * record per call, as SSL_write() with partial writes does. */
typedef struct Sink {
        size_t writes, bytes;
        size_t first_len;
        char first[SSL3_RT_MAX_PLAIN_LENGTH];
} Sink;

static Sink sink;

static ssize_t sink_write(IoEndpoint *e, const void *buf, size_t len) {
        Sink *s = &sink;

        (void)e;
        if (len > SSL3_RT_MAX_PLAIN_LENGTH)
                len = SSL3_RT_MAX_PLAIN_LENGTH;
        if (s->writes == 0) {
                memcpy(s->first, buf, len);
                s->first_len = len;
        }
        s->writes++;
        s->bytes += len;
        return (ssize_t)len;
}

static const IoOps sink_ops = {.write = sink_write};

/* The sequence of conn.c's forward_to_client(). */
static void to_client(Conn *c) {
        assert_true(pump_response_coalesce(c) >= 0);
        assert_true(pump_flush(&c->client, &c->cout) >= 0);
        assert_true(pump_response_direct(c) >= 0);
}

static void setup(Conn *c, const char *head, size_t body_len, size_t extra, uint64_t content_length) {
        sink = (Sink){};
        *c = (Conn){
                .resp_stage = RESP_BODY, .resp_body = HTTP1_BODY_LENGTH, .resp_remaining = content_length};
        c->client = (IoEndpoint){.fd = -1, .ops = &sink_ops};
        assert_int_equal(buf_append(&c->cout, head, strlen(head)), 0);
        for (size_t i = 0; i < body_len + extra; i++)
                assert_int_equal(buf_append(&c->uin, i < body_len ? "b" : "x", 1), 0);
}

static void test_small_body_joins_head(void **state) {
        const char *head = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n";
        Conn c;

        (void)state;
        setup(&c, head, 2, 0, 2);
        to_client(&c);
        assert_int_equal(sink.writes, 1);
        assert_int_equal(sink.first_len, strlen(head) + 2);
        assert_memory_equal(sink.first + strlen(head), "bb", 2);
        assert_int_equal(c.resp_stage, RESP_DONE);
        assert_int_equal(c.bytes_out, 2);
        buf_free(&c.cout);
        buf_free(&c.uin);
}

static void test_large_body_fills_first_record(void **state) {
        const char *head = "HTTP/1.1 200 OK\r\nContent-Length: 40000\r\n\r\n";
        Conn c;

        (void)state;
        setup(&c, head, 40000, 0, 40000);
        to_client(&c);
        /* One full record with the head, then the rest direct. */
        assert_int_equal(sink.first_len, SSL3_RT_MAX_PLAIN_LENGTH);
        assert_int_equal(sink.bytes, strlen(head) + 40000);
        assert_int_equal(sink.writes, 3);
        assert_int_equal(c.resp_stage, RESP_DONE);
        assert_int_equal(c.bytes_out, 40000);
        buf_free(&c.cout);
        buf_free(&c.uin);
}

static void test_never_past_content_length(void **state) {
        const char *head = "HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\n";
        Conn c;

        (void)state;
        /* The registry sent more than it announced: the surplus stays in
         * uin (conn.c treats it as the registry's fault), never reaches the
         * client. */
        setup(&c, head, 3, 5, 3);
        to_client(&c);
        assert_int_equal(sink.bytes, strlen(head) + 3);
        assert_int_equal(buf_len(&c.uin), 5);
        assert_int_equal(c.resp_stage, RESP_DONE);
        buf_free(&c.cout);
        buf_free(&c.uin);
}

static void test_chunked_not_joined(void **state) {
        const char *head = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n";
        Conn c;

        (void)state;
        setup(&c, head, 4, 0, 0);
        c.resp_body = HTTP1_BODY_CHUNKED; /* validated by pump_response_body() */
        assert_int_equal(pump_response_coalesce(&c), 0);
        assert_int_equal(buf_len(&c.uin), 4);
        buf_free(&c.cout);
        buf_free(&c.uin);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_small_body_joins_head),
                cmocka_unit_test(test_large_body_fills_first_record),
                cmocka_unit_test(test_never_past_content_length),
                cmocka_unit_test(test_chunked_not_joined),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}

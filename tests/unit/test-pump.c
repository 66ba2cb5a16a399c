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

/* The connection of the test that runs, its buffers freed by conn_free(). */
static Conn conn;

/* conn with head in cout and, in uin, body_len bytes of body and extra bytes
 * past it, the response announcing content_length; the sink empty. */
static Conn *setup(const char *head, size_t body_len, size_t extra, uint64_t content_length) {
        Conn *c = &conn;

        sink = (Sink){};
        *c = (Conn){
                .resp_stage = RESP_BODY, .resp_body = HTTP1_BODY_LENGTH, .resp_remaining = content_length};
        c->client = (IoEndpoint){.fd = -1, .ops = &sink_ops};
        assert_int_equal(buf_append(&c->cout, head, strlen(head)), 0);
        for (size_t i = 0; i < body_len + extra; i++)
                assert_int_equal(buf_append(&c->uin, i < body_len ? "b" : "x", 1), 0);
        return c;
}

/* A response of body_len bytes as Content-Length says (extra bytes past it
 * in uin) through conn.c's forward_to_client() sequence; the response is
 * then done. */
static Conn *pass_response(const char *head, size_t body_len, size_t extra) {
        Conn *c = setup(head, body_len, extra, body_len);

        to_client(c);
        assert_int_equal(c->resp_stage, RESP_DONE);
        return c;
}

/* Each test's teardown (cmocka_unit_test_teardown). */
static int conn_free(void **state) {
        (void)state;
        buf_free(&conn.cout);
        buf_free(&conn.uin);
        return 0;
}

static void test_small_body_joins_head(void **state) {
        const char *head = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n";

        (void)state;
        Conn *c = pass_response(head, 2, 0);
        assert_int_equal(sink.writes, 1);
        assert_int_equal(sink.first_len, strlen(head) + 2);
        assert_memory_equal(sink.first + strlen(head), "bb", 2);
        assert_int_equal(c->bytes_out, 2);
}

static void test_large_body_fills_first_record(void **state) {
        const char *head = "HTTP/1.1 200 OK\r\nContent-Length: 40000\r\n\r\n";

        (void)state;
        Conn *c = pass_response(head, 40000, 0);
        /* One full record with the head, then the rest direct. */
        assert_int_equal(sink.first_len, SSL3_RT_MAX_PLAIN_LENGTH);
        assert_int_equal(sink.bytes, strlen(head) + 40000);
        assert_int_equal(sink.writes, 3);
        assert_int_equal(c->bytes_out, 40000);
}

static void test_never_past_content_length(void **state) {
        const char *head = "HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\n";

        (void)state;
        /* The registry sent more than it announced: the surplus stays in
         * uin (conn.c treats it as the registry's fault), never reaches the
         * client. */
        Conn *c = pass_response(head, 3, 5);
        assert_int_equal(sink.bytes, strlen(head) + 3);
        assert_int_equal(buf_len(&c->uin), 5);
}

static void test_chunked_not_joined(void **state) {
        const char *head = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n";

        (void)state;
        Conn *c = setup(head, 4, 0, 0);
        c->resp_body = HTTP1_BODY_CHUNKED; /* validated by pump_response_body() */
        assert_int_equal(pump_response_coalesce(c), 0);
        assert_int_equal(buf_len(&c->uin), 4);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test_teardown(test_small_body_joins_head, conn_free),
                cmocka_unit_test_teardown(test_large_body_fills_first_record, conn_free),
                cmocka_unit_test_teardown(test_never_past_content_length, conn_free),
                cmocka_unit_test_teardown(test_chunked_not_joined, conn_free),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}

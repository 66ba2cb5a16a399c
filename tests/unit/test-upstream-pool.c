/* SPDX-License-Identifier: MIT */
/*
 * Tests for proxy/upstream-pool.c: an idle connection is taken back, one
 * the registry closed or wrote on is not, nor one older than
 * UPSTREAM_POOL_IDLE_MS; a draining worker keeps none; the pool is bounded.
 */

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <fcntl.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "worker.h"

static Worker w;

/* A connected pair registered in w's epoll set, as a registry connection
 * is; *peer is the registry's end. */
static int pair(int *peer) {
        int sv[2];
        struct epoll_event ev = {.events = EPOLLIN | EPOLLET};

        assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv), 0);
        assert_int_equal(epoll_ctl(w.epfd, EPOLL_CTL_ADD, sv[0], &ev), 0);
        *peer = sv[1];
        return sv[0];
}

static int setup(void **state) {
        (void)state;
        w = (Worker){.epfd = epoll_create1(EPOLL_CLOEXEC)};
        assert_true(w.epfd >= 0);
        return 0;
}

/* Each test starts with an empty pool of a running worker. */
static void reset(void) {
        upstream_pool_sweep(&w, UINT64_MAX / 2); /* closes all */
        w.draining = false;
}

static int teardown(void **state) {
        (void)state;
        reset();
        close(w.epfd);
        return 0;
}

static void test_idle_taken_back(void **state) {
        int peer, fd = pair(&peer);
        struct epoll_event ev = {.events = EPOLLIN};

        (void)state;
        reset();
        assert_true(upstream_pool_put(&w, fd, 1000));
        /* Out of the epoll set while pooled: adding it again works. */
        assert_int_equal(epoll_ctl(w.epfd, EPOLL_CTL_ADD, fd, &ev), 0);
        assert_int_equal(epoll_ctl(w.epfd, EPOLL_CTL_DEL, fd, NULL), 0);
        assert_int_equal(upstream_pool_take(&w, 1000 + UPSTREAM_POOL_IDLE_MS - 1), fd);
        assert_int_equal(upstream_pool_take(&w, 1000), -1);
        close(fd);
        close(peer);
}

static void test_closed_or_talking_not_taken(void **state) {
        int p1, p2, a = pair(&p1), b = pair(&p2);

        (void)state;
        reset();
        assert_true(upstream_pool_put(&w, a, 1000));
        assert_true(upstream_pool_put(&w, b, 1000));
        close(p1);                              /* the registry closed a */
        assert_int_equal(write(p2, "x", 1), 1); /* and sent something unasked on b */
        assert_int_equal(upstream_pool_take(&w, 1000), -1);
        assert_int_equal(w.n_pool, 0);
        close(p2);
}

static void test_too_old_not_taken(void **state) {
        int peer, fd = pair(&peer);

        (void)state;
        reset();
        assert_true(upstream_pool_put(&w, fd, 1000));
        assert_int_equal(upstream_pool_take(&w, 1000 + UPSTREAM_POOL_IDLE_MS), -1);
        close(peer);

        fd = pair(&peer);
        assert_true(upstream_pool_put(&w, fd, 1000));
        upstream_pool_sweep(&w, 1000 + UPSTREAM_POOL_IDLE_MS);
        assert_int_equal(w.n_pool, 0);
        close(peer);
}

static void test_newest_first_and_bounded(void **state) {
        int peers[UPSTREAM_POOL_MAX + 1], fds[UPSTREAM_POOL_MAX + 1];

        (void)state;
        reset();
        for (int i = 0; i <= UPSTREAM_POOL_MAX; i++)
                fds[i] = pair(&peers[i]);
        for (int i = 0; i < UPSTREAM_POOL_MAX; i++)
                assert_true(upstream_pool_put(&w, fds[i], 1000 + (uint64_t)i));
        assert_false(upstream_pool_put(&w, fds[UPSTREAM_POOL_MAX], 2000)); /* full: the caller closes */
        assert_int_equal(upstream_pool_take(&w, 1100), fds[UPSTREAM_POOL_MAX - 1]);
        close(fds[UPSTREAM_POOL_MAX - 1]);
        close(fds[UPSTREAM_POOL_MAX]);
        for (int i = 0; i <= UPSTREAM_POOL_MAX; i++)
                close(peers[i]);
}

static void test_draining_keeps_none(void **state) {
        int peer, fd = pair(&peer);

        (void)state;
        reset();
        int peer2, fd2 = pair(&peer2);

        assert_true(upstream_pool_put(&w, fd, 1000));
        w.draining = true;
        assert_false(upstream_pool_put(&w, fd2, 1000)); /* the caller closes it */
        upstream_pool_sweep(&w, 1000);                  /* closes the pooled one */
        assert_int_equal(w.n_pool, 0);
        close(fd2);
        close(peer);
        close(peer2);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_idle_taken_back),
                cmocka_unit_test(test_closed_or_talking_not_taken),
                cmocka_unit_test(test_too_old_not_taken),
                cmocka_unit_test(test_newest_first_and_bounded),
                cmocka_unit_test(test_draining_keeps_none),
        };
        return cmocka_run_group_tests(tests, setup, teardown);
}

/* SPDX-License-Identifier: MIT */
/*
 * scope_grant_file() (supervisor/provision/scope-grant.c), the read-modify-
 * write of `regvisor pki sign --scope`: grants running at once each keep
 * their line.
 */
#include <errno.h>
#include <poll.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>

#include "fileio.h"
#include "macro.h"
#include "scope-grant.h"
#include "tmpdir.h"

DEFINE_TMPDIR_GROUP(dir, "regvisor-test-scope-grant");

#define N_GRANTS 4

static int ready_w = -1, go_r = -1;

/* Between the read and the write: tell the parent, wait for its go. */
static void hook_wait_for_go(void) {
        char c = 'r';

        if (write(ready_w, &c, 1) != 1)
                _exit(3);
        (void)!read(go_r, &c, 1); /* 0 (parent gone) also goes on */
}

/* Lets the children that wait in the hook go together, as many as reach
 * it: without the lock all N read the same text before any writes (the
 * lost update, every time); with it one at a time reaches the hook, the
 * others wait on the lock, so after a quiet 300 ms the parent lets that one
 * go. The timeout only decides how much the grants overlap, never what the
 * test expects: with the lock every line is there whatever the timing. */
static void release_children(int ready_r, int go_w, pid_t *pids) {
        unsigned pending = 0, released = 0, reaped = 0, rounds = 0;

        while (reaped < N_GRANTS) {
                struct pollfd pfd = {.fd = ready_r, .events = POLLIN};
                int n = poll(&pfd, 1, 300);
                char buf[N_GRANTS];

                assert_true(n >= 0);
                if (n > 0 && (pfd.revents & POLLIN)) {
                        ssize_t k = read(ready_r, buf, sizeof buf);
                        assert_true(k > 0);
                        pending += (unsigned)k;
                }
                if (pending > 0 && (n == 0 || released + pending == N_GRANTS)) {
                        memset(buf, 'g', pending);
                        assert_int_equal(write(go_w, buf, pending), (ssize_t)pending);
                        released += pending;
                        pending = 0;
                }
                /* POLLHUP: every child closed its end, so each is exiting
                 * and is waited for. */
                bool hup = n > 0 && !(pfd.revents & POLLIN);
                for (unsigned i = 0; i < N_GRANTS; i++) {
                        int status;
                        if (pids[i] > 0 && waitpid(pids[i], &status, hup ? 0 : WNOHANG) == pids[i]) {
                                assert_true(WIFEXITED(status));
                                assert_int_equal(WEXITSTATUS(status), 0);
                                pids[i] = 0;
                                reaped++;
                        }
                }
                if (++rounds > 200) { /* a minute: a child is stuck */
                        for (unsigned i = 0; i < N_GRANTS; i++)
                                if (pids[i] > 0)
                                        (void)kill(pids[i], SIGKILL);
                        fail_msg("the grants did not finish: %u of %u let go, %u ended", released, N_GRANTS,
                                 reaped);
                }
        }
}

static void test_concurrent_grants_keep_every_line(void **state) {
        static const char base[] = "[tls]\nserver_names = registry.test\n[scopes]\nci = *\n";
        char path[TMPDIR_PATH_MAX + 32];
        _cleanup_free_ char *text = NULL;
        int ready[2], go[2];
        pid_t pids[N_GRANTS];
        struct stat st;

        (void)state;
        snprintf(path, sizeof path, "%s/regvisor.conf", dir);
        assert_int_equal(write_file_atomic(path, base, strlen(base), 0640, (uid_t)-1, (gid_t)-1), 0);
        assert_int_equal(pipe(ready), 0);
        assert_int_equal(pipe(go), 0);

        for (unsigned i = 0; i < N_GRANTS; i++) {
                pids[i] = fork();
                assert_true(pids[i] >= 0);
                if (pids[i] == 0) {
                        char client[16];
                        char *error = NULL;
                        int r;

                        (void)close(ready[0]);
                        (void)close(go[1]);
                        ready_w = ready[1];
                        go_r = go[0];
                        scope_grant_file_hook = hook_wait_for_go;
                        snprintf(client, sizeof client, "build-%02u", i);
                        r = scope_grant_file(path, client, "app/*", &error);
                        if (r != 1)
                                fprintf(stderr, "grant %s: %d %s\n", client, r, error ?: "");
                        _exit(r == 1 ? 0 : 1);
                }
        }
        (void)close(ready[1]);
        (void)close(go[0]);
        release_children(ready[0], go[1], pids);
        (void)close(ready[0]);
        (void)close(go[1]);

        assert_int_equal(read_file_stat(path, 1 << 20, &text, NULL, &st), 0);
        assert_int_equal(st.st_mode & 07777, 0640);
        assert_non_null(strstr(text, "ci = *\n"));
        for (unsigned i = 0; i < N_GRANTS; i++) {
                char line[64];
                snprintf(line, sizeof line, "\nbuild-%02u = app/*\n", i);
                if (!strstr(text, line))
                        fail_msg("%s lost its line:\n%s", line + 1, text);
        }
}

/* The lock follows the file a rename put in place of the one it waited
 * on; a path that is not a regular file is refused, not locked. */
static void test_lock_refuses_non_files(void **state) {
        char path[TMPDIR_PATH_MAX + 32], link[TMPDIR_PATH_MAX + 32];

        (void)state;
        snprintf(path, sizeof path, "%s/fifo", dir);
        assert_int_equal(mkfifo(path, 0600), 0);
        assert_int_equal(lock_file_for_update(path), -EBADFD);
        snprintf(path, sizeof path, "%s/target.conf", dir);
        assert_int_equal(write_file_atomic(path, "x\n", 2, 0600, (uid_t)-1, (gid_t)-1), 0);
        snprintf(link, sizeof link, "%s/link.conf", dir);
        assert_int_equal(symlink(path, link), 0);
        assert_int_equal(lock_file_for_update(link), -ELOOP);
        snprintf(path, sizeof path, "%s/missing.conf", dir);
        assert_int_equal(lock_file_for_update(path), -ENOENT);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_concurrent_grants_keep_every_line),
                cmocka_unit_test(test_lock_refuses_non_files),
        };
        return cmocka_run_group_tests(tests, tmpdir_group_setup, tmpdir_group_teardown);
}

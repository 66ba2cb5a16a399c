/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>

#include "fileio.h"
#include "macro.h"
#include "needs-root.h"
#include "tmpdir.h"

DEFINE_TMPDIR_GROUP(dir, "regvisor-test-fileio");

static char *p(const char *name) {
        static char buf[512];
        snprintf(buf, sizeof buf, "%s/%s", dir, name);
        return buf;
}

static void test_write_read_roundtrip(void **state) {
        _cleanup_free_ char *data = NULL;
        size_t n;
        struct stat st;

        assert_int_equal(write_file_atomic(p("a"), "hello\n", 6, 0640, (uid_t) -1, (gid_t) -1), 0);
        assert_int_equal(read_file(p("a"), 100, &data, &n), 0);
        assert_int_equal(n, 6);
        assert_string_equal(data, "hello\n");
        assert_int_equal(stat(p("a"), &st), 0);
        assert_int_equal(st.st_mode & 07777, 0640);
}

static void test_write_replaces_and_leaves_no_temp(void **state) {
        _cleanup_free_ char *data = NULL;
        char cmd[600];

        assert_int_equal(write_file_atomic(p("b"), "one", 3, 0600, (uid_t) -1, (gid_t) -1), 0);
        assert_int_equal(write_file_atomic(p("b"), "two!", 4, 0644, (uid_t) -1, (gid_t) -1), 0);
        assert_int_equal(read_file(p("b"), 100, &data, NULL), 0);
        assert_string_equal(data, "two!");
        snprintf(cmd, sizeof cmd, "ls -a '%s' | grep -q regvisor-tmp", dir);
        assert_int_not_equal(system(cmd), 0);
}

static void test_symlink_refused(void **state) {
        _cleanup_free_ char *data = NULL;

        assert_int_equal(write_file_atomic(p("target"), "x", 1, 0644, (uid_t) -1, (gid_t) -1), 0);
        char target[512];
        snprintf(target, sizeof target, "%s", p("target"));
        assert_int_equal(symlink(target, p("link")), 0);
        assert_int_equal(write_file_atomic(p("link"), "evil", 4, 0644, (uid_t) -1, (gid_t) -1), -ELOOP);
        assert_int_equal(read_file(p("link"), 100, &data, NULL), -ELOOP);
        assert_int_equal(file_matches(p("link"), "x", 1, 0644, (uid_t) -1, (gid_t) -1, NULL), -ELOOP);
        assert_int_equal(symlink(dir, p("dirlink")), 0);
        assert_int_equal(directory_matches(p("dirlink"), 0755, (uid_t) -1, (gid_t) -1), -ELOOP);
        /* The target is untouched. */
        assert_int_equal(read_file(p("target"), 100, &data, NULL), 0);
        assert_string_equal(data, "x");
}

static void test_file_matches(void **state) {
        bool same;

        assert_int_equal(file_matches(p("missing"), "x", 1, 0644, (uid_t) -1, (gid_t) -1, &same), 0);
        assert_false(same);
        assert_int_equal(write_file_atomic(p("c"), "abc", 3, 0644, (uid_t) -1, (gid_t) -1), 0);
        assert_int_equal(file_matches(p("c"), "abc", 3, 0644, (uid_t) -1, (gid_t) -1, &same), 1);
        assert_true(same);
        assert_int_equal(file_matches(p("c"), "abc", 3, 0600, (uid_t) -1, (gid_t) -1, &same), 0);
        assert_true(same);
        assert_int_equal(file_matches(p("c"), "abd", 3, 0644, (uid_t) -1, (gid_t) -1, &same), 0);
        assert_false(same);
        assert_int_equal(file_matches(p("c"), "abcd", 4, 0644, (uid_t) -1, (gid_t) -1, &same), 0);
        assert_int_equal(file_matches(p("c"), "ab", 2, 0644, (uid_t) -1, (gid_t) -1, &same), 0);
}

static void test_read_limit(void **state) {
        _cleanup_free_ char *data = NULL;

        assert_int_equal(write_file_atomic(p("big"), "0123456789", 10, 0644, (uid_t) -1, (gid_t) -1), 0);
        assert_int_equal(read_file(p("big"), 9, &data, NULL), -EFBIG);
        assert_null(data);
        assert_int_equal(read_file(p("nope"), 9, &data, NULL), -ENOENT);
}

static void test_ensure_directory(void **state) {
        struct stat st;

        assert_int_equal(ensure_directory(p("d1/d2/d3"), 0750, (uid_t) -1, (gid_t) -1), 0);
        assert_int_equal(stat(p("d1/d2/d3"), &st), 0);
        assert_true(S_ISDIR(st.st_mode));
        assert_int_equal(st.st_mode & 07777, 0750);
        assert_int_equal(directory_matches(p("d1/d2/d3"), 0750, (uid_t) -1, (gid_t) -1), 1);
        assert_int_equal(directory_matches(p("d1/d2/d3"), 0700, (uid_t) -1, (gid_t) -1), 0);
        assert_int_equal(ensure_directory(p("d1/d2/d3"), 0700, (uid_t) -1, (gid_t) -1), 0);
        assert_int_equal(directory_matches(p("d1/d2/d3"), 0700, (uid_t) -1, (gid_t) -1), 1);
        assert_int_equal(directory_matches(p("a"), 0700, (uid_t) -1, (gid_t) -1), -ENOTDIR);
        assert_int_equal(ensure_directory(p("a"), 0700, (uid_t) -1, (gid_t) -1), -ENOTDIR);
}

/* A tree an unprivileged owner controls: tree/sub is a symlink to outside/,
 * the directory that stands for /etc. Every helper refuses a path through
 * tree/sub with -ELOOP, wherever in the path the symlink is, and nothing
 * is created or changed in outside/. */
static void check_symlinked_parent_refused(const char *base) {
        char tree[256], outside[256], link[300], path[400];
        struct stat st;
        bool same;

        snprintf(tree, sizeof tree, "%s/%s-tree", dir, base);
        snprintf(outside, sizeof outside, "%s/%s-outside", dir, base);
        snprintf(link, sizeof link, "%s/sub", tree);
        assert_int_equal(ensure_directory(tree, 0755, (uid_t) -1, (gid_t) -1), 0);
        assert_int_equal(ensure_directory(outside, 0755, (uid_t) -1, (gid_t) -1), 0);
        snprintf(path, sizeof path, "%s/deeper", outside);
        assert_int_equal(ensure_directory(path, 0755, (uid_t) -1, (gid_t) -1), 0);
        snprintf(path, sizeof path, "%s/existing", outside);
        assert_int_equal(write_file_atomic(path, "keep", 4, 0644, (uid_t) -1, (gid_t) -1), 0);
        assert_int_equal(symlink(outside, link), 0);

        /* The symlink as the direct parent. */
        snprintf(path, sizeof path, "%s/new", link);
        assert_int_equal(write_file_atomic(path, "evil", 4, 0644, (uid_t) -1, (gid_t) -1), -ELOOP);
        snprintf(path, sizeof path, "%s/existing", link);
        assert_int_equal(write_file_atomic(path, "evil", 4, 0644, (uid_t) -1, (gid_t) -1), -ELOOP);
        assert_int_equal(set_mode_owner(path, 0666, (uid_t) -1, (gid_t) -1), -ELOOP);
        assert_int_equal(file_matches(path, "keep", 4, 0644, (uid_t) -1, (gid_t) -1, &same), -ELOOP);
        snprintf(path, sizeof path, "%s/deeper", link);
        assert_int_equal(directory_matches(path, 0755, (uid_t) -1, (gid_t) -1), -ELOOP);
        snprintf(path, sizeof path, "%s/newdir", link);
        assert_int_equal(ensure_directory(path, 0700, (uid_t) -1, (gid_t) -1), -ELOOP);
        /* The symlink further up. */
        snprintf(path, sizeof path, "%s/deeper/new", link);
        assert_int_equal(write_file_atomic(path, "evil", 4, 0644, (uid_t) -1, (gid_t) -1), -ELOOP);
        assert_int_equal(mkdir_parents(path), -ELOOP);
        snprintf(path, sizeof path, "%s/made/new", link);
        assert_int_equal(mkdir_parents(path), -ELOOP);
        snprintf(path, sizeof path, "%s/deeper/d1/d2", link);
        assert_int_equal(ensure_directory(path, 0700, (uid_t) -1, (gid_t) -1), -ELOOP);

        /* Nothing was written through it. */
        const char *absent[] = {"new", "newdir", "made", "deeper/new", "deeper/d1"};
        for (size_t i = 0; i < ELEMENTSOF(absent); i++) {
                snprintf(path, sizeof path, "%s/%s", outside, absent[i]);
                assert_int_equal(lstat(path, &st), -1);
        }
        snprintf(path, sizeof path, "%s/existing", outside);
        assert_int_equal(file_matches(path, "keep", 4, 0644, (uid_t) -1, (gid_t) -1, NULL), 1);
        /* The way in without the symlink still works. */
        snprintf(path, sizeof path, "%s/deeper/ok", outside);
        assert_int_equal(write_file_atomic(path, "ok", 2, 0600, (uid_t) -1, (gid_t) -1), 0);
}

static void test_symlinked_parent_refused(void **state) {
        check_symlinked_parent_refused("openat2");
}

static void test_symlinked_parent_refused_fd_walk(void **state) {
        fileio_force_fd_walk = true;
        check_symlinked_parent_refused("walk");
        fileio_force_fd_walk = false;
}

/* Relative paths resolve from the working directory, as before. */
static void test_relative_paths(void **state) {
        _cleanup_free_ char *data = NULL;
        char cwd[512];

        assert_non_null(getcwd(cwd, sizeof cwd));
        assert_int_equal(chdir(dir), 0);
        assert_int_equal(ensure_directory("rel/a", 0750, (uid_t) -1, (gid_t) -1), 0);
        assert_int_equal(write_file_atomic("rel/a/f", "r", 1, 0600, (uid_t) -1, (gid_t) -1), 0);
        assert_int_equal(write_file_atomic("top", "t", 1, 0600, (uid_t) -1, (gid_t) -1), 0);
        assert_int_equal(chdir(cwd), 0);
        assert_int_equal(read_file(p("rel/a/f"), 10, &data, NULL), 0);
        assert_string_equal(data, "r");
        assert_int_equal(directory_matches(p("rel/a"), 0750, (uid_t) -1, (gid_t) -1), 1);
}

static void test_path_join_root(void **state) {
        _cleanup_free_ char *a = path_join_root(NULL, "/etc/x");
        _cleanup_free_ char *b = path_join_root("/", "/etc/x");
        _cleanup_free_ char *c = path_join_root("/tmp/r/", "/etc/x");
        _cleanup_free_ char *d = path_join_root("/tmp/r", "etc/x");

        assert_string_equal(a, "/etc/x");
        assert_string_equal(b, "/etc/x");
        assert_string_equal(c, "/tmp/r/etc/x");
        assert_string_equal(d, "/tmp/r/etc/x");
}

/* deprovision's removals: a file, an empty directory, a tree (a symlink
 * in it removed, not followed); a symlink on the way is refused; gone is
 * not an error. */
static char *pd(const char *name) {
        char *s = strdup(p(name));
        assert_non_null(s);
        return s;
}

static void test_remove(void **state) {
        _cleanup_free_ char *f = pd("rm-file"), *d = pd("rm-dir"), *t = pd("rm-tree"), *ts = pd("rm-tree/sub"),
                            *tf = pd("rm-tree/sub/f"), *tl = pd("rm-tree/etc-link"), *full = pd("rm-full"),
                            *ff = pd("rm-full/x"), *link = pd("rm-link"), *via = pd("rm-link/x"),
                            *target = pd("rm-target"), *kept = pd("rm-target/x");

        assert_int_equal(write_file_atomic(f, "x", 1, 0644, -1, -1), 0);
        assert_int_equal(remove_file(f), 1);
        assert_int_equal(remove_file(f), 0);
        assert_int_equal(ensure_directory(d, 0755, -1, -1), 0);
        assert_int_equal(remove_directory(d, false), 1);
        assert_int_equal(remove_directory(d, false), 0);
        assert_int_equal(ensure_directory(ts, 0700, -1, -1), 0);
        assert_int_equal(write_file_atomic(tf, "x", 1, 0600, -1, -1), 0);
        assert_int_equal(symlink("/etc", tl), 0);
        assert_int_equal(remove_directory(t, true), 1);
        assert_int_equal(access(t, F_OK), -1);
        assert_int_equal(access("/etc/passwd", F_OK), 0);
        assert_int_equal(ensure_directory(full, 0755, -1, -1), 0);
        assert_int_equal(write_file_atomic(ff, "x", 1, 0644, -1, -1), 0);
        assert_int_equal(remove_directory(full, false), -ENOTEMPTY);
        assert_int_equal(access(ff, F_OK), 0);
        assert_int_equal(ensure_directory(target, 0755, -1, -1), 0);
        assert_int_equal(write_file_atomic(kept, "x", 1, 0644, -1, -1), 0);
        assert_int_equal(symlink(target, link), 0);
        assert_int_equal(remove_file(via), -ELOOP);
        assert_true(remove_directory(link, true) < 0);
        assert_int_equal(access(kept, F_OK), 0);
}

/* A FIFO where a file is read (a client bundle's files/ comes from another
 * machine) is refused at once: opening it must not wait for a writer. The
 * alarm turns a regression into a failure rather than a hang. */
static void check_fifo_refused(int files_fd, const char *rel) {
        _cleanup_free_ char *data = NULL;
        size_t n;

        assert_int_equal(read_file_beneath(files_fd, rel, 100, &data, &n), -EBADFD);
        assert_null(data);
}

static void test_fifo_refused(void **state) {
        _cleanup_close_ int files_fd = -EBADF;
        _cleanup_free_ char *data = NULL;
        size_t n;

        assert_int_equal(mkdir_parents(p("bundle/files/etc/h/ca.crt")), 0);
        assert_int_equal(mkfifo(p("bundle/files/etc/h/ca.crt"), 0644), 0);
        assert_int_equal(mkfifo(p("fifo"), 0644), 0);
        files_fd = open(p("bundle/files"), O_PATH | O_DIRECTORY | O_CLOEXEC);
        assert_true(files_fd >= 0);

        alarm(10);
        assert_int_equal(read_file(p("fifo"), 100, &data, &n), -EBADFD);
        assert_null(data);
        check_fifo_refused(files_fd, "etc/h/ca.crt");
        fileio_force_fd_walk = true;
        check_fifo_refused(files_fd, "etc/h/ca.crt");
        fileio_force_fd_walk = false;
        assert_int_equal(open_regular(AT_FDCWD, p("fifo"), 0, NULL), -EBADFD);
        alarm(0);

        /* A regular file there is still read (O_NONBLOCK cleared again). */
        assert_int_equal(write_file_atomic(p("bundle/files/etc/h/ok"), "pem\n", 4, 0644, (uid_t) -1, (gid_t) -1),
                         0);
        assert_int_equal(read_file_beneath(files_fd, "etc/h/ok", 100, &data, &n), 0);
        assert_string_equal(data, "pem\n");
        free(data);
        data = NULL;
        fileio_force_fd_walk = true;
        assert_int_equal(read_file_beneath(files_fd, "etc/h/ok", 100, &data, &n), 0);
        fileio_force_fd_walk = false;
        assert_int_equal(n, 4);
        free(data);
        data = NULL;
        assert_int_equal(read_file(p("bundle/files/etc/h/ok"), 100, &data, &n), 0);

        /* open_regular(): the fd of a regular file, blocking again; a
         * directory is refused, and its fstat() says it was one. */
        {
                _cleanup_close_ int fd = open_regular(files_fd, "etc/h/ok", O_NOFOLLOW, NULL);
                struct stat st;

                assert_true(fd >= 0);
                assert_int_equal(fcntl(fd, F_GETFL) & O_NONBLOCK, 0);
                assert_int_equal(open_regular(files_fd, "etc/h", 0, &st), -EBADFD);
                assert_true(S_ISDIR(st.st_mode));
        }
}

/* What test_device_not_opened() checks, in a session of its own: 0, or the number of the check
 * that failed. */
static int check_device_not_opened(const char *node, int files_fd, const char *rel) {
        _cleanup_free_ char *data = NULL;
        struct stat st = {};
        size_t n;
        int fd;

        if (setsid() < 0)
                return 1;
        /* The control: opening the node runs the tty driver's open(), which has no terminal to
         * give a process without one: ENXIO. */
        fd = open(node, O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
        if (fd >= 0 || errno != ENXIO)
                return 2;
        if (open_regular(AT_FDCWD, node, 0, &st) != -EBADFD || !S_ISCHR(st.st_mode))
                return 3;
        if (open_regular(files_fd, rel, O_NOFOLLOW, NULL) != -EBADFD)
                return 4;
        if (read_file(node, 100, &data, &n) != -EBADFD)
                return 5;
        if (read_file_beneath(files_fd, rel, 100, &data, &n) != -EBADFD)
                return 6;
        fileio_force_fd_walk = true;
        if (read_file_beneath(files_fd, rel, 100, &data, &n) != -EBADFD)
                return 7;
        return 0;
}

/* A device node where a file is read (tar run as root keeps device nodes in
 * a bundle's files/): refused without being opened, so its driver's open()
 * never runs as root. Observed through /dev/tty's device (5,0) in a session
 * without a controlling terminal: its driver's open() fails with ENXIO, so
 * code that opened the node and then looked answered -ENXIO; code that
 * looks first (O_PATH, fstat) answers -EBADFD. */
static void test_device_not_opened(void **state) {
        _cleanup_close_ int files_fd = -EBADF;
        int status = 0;
        pid_t pid;

        REQUIRE_ROOT("mknod of a character device");
        assert_int_equal(mkdir_parents(p("devbundle/files/etc/tty")), 0);
        assert_int_equal(mknod(p("devbundle/files/etc/tty"), S_IFCHR | 0644, makedev(5, 0)), 0);
        files_fd = open(p("devbundle/files"), O_PATH | O_DIRECTORY | O_CLOEXEC);
        assert_true(files_fd >= 0);

        pid = fork();
        assert_true(pid >= 0);
        if (pid == 0)
                _exit(check_device_not_opened(p("devbundle/files/etc/tty"), files_fd, "etc/tty"));
        assert_int_equal(waitpid(pid, &status, 0), pid);
        assert_true(WIFEXITED(status));
        if (WEXITSTATUS(status) != 0)
                fail_msg("check %d failed (2: the node's open is not observable here; 3-7: opened "
                         "before the type check)",
                         WEXITSTATUS(status));
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_write_read_roundtrip),
                cmocka_unit_test(test_write_replaces_and_leaves_no_temp),
                cmocka_unit_test(test_symlink_refused),
                cmocka_unit_test(test_file_matches),
                cmocka_unit_test(test_read_limit),
                cmocka_unit_test(test_ensure_directory),
                cmocka_unit_test(test_symlinked_parent_refused),
                cmocka_unit_test(test_symlinked_parent_refused_fd_walk),
                cmocka_unit_test(test_relative_paths),
                cmocka_unit_test(test_path_join_root),
                cmocka_unit_test(test_remove),
                cmocka_unit_test(test_fifo_refused),
                cmocka_unit_test(test_device_not_opened),
        };
        return cmocka_run_group_tests(tests, tmpdir_group_setup, tmpdir_group_teardown);
}

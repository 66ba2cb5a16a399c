/* SPDX-License-Identifier: MIT */
/*
 * Tests for sigstore/sigsandbox.c: a child locks itself down as nobody the
 * way `regvisor sigstore` does (drop, open its directory, Landlock,
 * seccomp) and then does the store's real work in there (sigfs and
 * sighandle: PUT, GET, cleanup), so a missing table row kills it with
 * SIGSYS; writes outside its directory fail with EACCES where the kernel has
 * Landlock; calls outside the table kill; in registry mode ([signing]
 * store = registry) the store talks to a real docker-registry on a unix
 * socket and on loopback TCP, and no other TCP port. Also: the table and
 * policy/sigstore-syscalls.md agree. Needs root; skipped otherwise.
 */

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "macro.h"
#include "sandbox-test.h"
#include "sigfs.h"
#include "sighandle.h"
#include "sigsandbox.h"
#include "tmpdir.h"
#include "registry-test.h"

#define D1 "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

static uid_t nobody_uid;
static gid_t nobody_gid;
/* Below $TMPDIR (tmpdir.h): nobody must be able to reach both. */
static char store[TMPDIR_PATH_MAX];
static char outside[TMPDIR_PATH_MAX];

/* [signing] store = registry: a real registry on a unix socket and one on loopback TCP. */
static TestRegistry unix_registry, tcp_registry;

static int setup(void **state) {
        if (geteuid() != 0)
                return 0;
        if (test_registry_start(&unix_registry, 0) < 0 ||
            test_registry_start(&tcp_registry, 20000 + (unsigned) getpid() % 20000) < 0)
                return -1;
        /* The store runs as nobody: it may connect to the socket as the service user may. */
        if (unix_registry.pid > 0 && (chmod(unix_registry.dir, 0711) < 0 || chmod(unix_registry.sock, 0777) < 0))
                return -1;
        sandbox_test_nobody(&nobody_uid, &nobody_gid);
        /* Both writable by nobody: only the sandbox keeps it out of the second one. */
        assert_int_equal(tmpdir_make(store, sizeof store, "test-sigsandbox-store"), 0);
        assert_int_equal(tmpdir_make(outside, sizeof outside, "test-sigsandbox-outside"), 0);
        assert_int_equal(chown(store, nobody_uid, nobody_gid), 0);
        assert_int_equal(chown(outside, nobody_uid, nobody_gid), 0);
        return 0;
}

static int teardown(void **state) {
        if (geteuid() != 0)
                return 0;
        (void) test_registry_stop(&unix_registry);
        (void) test_registry_stop(&tcp_registry);
        return tmpdir_remove(store) == 0 && tmpdir_remove(outside) == 0 ? 0 : -1;
}

/* In a child: lock down as regvisor sigstore does; returns the store's root fd (DIR/v1) and
 * the Landlock ABI. */
static int confine_or_die(int *ret_abi) {
        int dir_fd, root_fd, r;

        r = sigsandbox_drop(nobody_uid, nobody_gid);
        CHECK(r == 0);
        dir_fd = open(store, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        CHECK(dir_fd >= 0);
        r = sigsandbox_confine(dir_fd, false, 0, ret_abi, NULL);
        CHECK(r == 0);
        root_fd = sigfs_open_at(dir_fd);
        CHECK(root_fd >= 0);
        return root_fd;
}

/* The store's whole job on backend b, under the filter: PUT, a repeat, GET, of app/web@digest. */
static void put_put_get(const SigBackend *b, const char *digest) {
        char target[160], body[256];
        SigReply rep;

        (void) snprintf(target, sizeof target, "/extensions/v2/app/web/signatures/%s", digest);
        (void) snprintf(body, sizeof body,
                        "{\"schemaVersion\":2,\"name\":\"%s@0123abcd\",\"type\":\"atomic\",\"content\":\"aGVsbG8=\"}",
                        digest);
        for (int i = 0; i < 2; i++) {
                CHECK(sighandle_request(b, "PUT", 3, target, strlen(target), body, strlen(body), &rep) == 0);
                CHECK(rep.status == 201);
                sig_reply_done(&rep);
        }
        CHECK(sighandle_request(b, "GET", 3, target, strlen(target), NULL, 0, &rep) == 0);
        CHECK(rep.status == 200 && strstr(rep.body, "\"content\":\"aGVsbG8=\""));
        sig_reply_done(&rep);
}

static void child_works(const void *arg) {
        char path[TMPDIR_PATH_MAX + 32];
        int abi, root_fd, fd;

        root_fd = confine_or_die(&abi);
        /* PUT, a repeat, GET, then crash cleanup. */
        put_put_get(&(SigBackend){.root_fd = root_fd}, D1);
        CHECK(sigfs_cleanup(root_fd) == 0);

        /* Outside the directory, where nobody may write: only Landlock says no. */
        (void) snprintf(path, sizeof(path), "%s/escaped", outside);
        fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
        if (abi > 0) {
                CHECK(fd < 0 && errno == EACCES);
                fd = open("/etc/passwd", O_RDONLY | O_CLOEXEC);
                CHECK(fd < 0 && errno == EACCES);
                (void) snprintf(path, sizeof(path), "%s/mkdir", outside);
                CHECK(mkdirat(AT_FDCWD, path, 0700) < 0 && errno == EACCES);
        } else
                fprintf(stderr, "test-sigsandbox: no Landlock on this kernel, confinement not checked\n");
        _exit(abi > 0 ? 0 : 77);
}

static void test_works(void **state) {
        char path[TMPDIR_PATH_MAX + 128];
        int status;

        REQUIRE_ROOT("the store's lockdown: setresuid, Landlock, seccomp");
        status = run_child(child_works, NULL);
        if (WIFEXITED(status) && WEXITSTATUS(status) == 77)
                skip();
        assert_exited_ok(status);
        (void) snprintf(path, sizeof(path), "%s/escaped", outside);
        assert_int_equal(access(path, F_OK), -1);
        (void) snprintf(path, sizeof(path), "%s/mkdir", outside);
        assert_int_equal(access(path, F_OK), -1);
        (void) snprintf(path, sizeof(path), "%s/v1/app+web/sha256-%s/0123abcd", store, D1 + 7);
        assert_int_equal(access(path, F_OK), 0);
}

/* The image the registry-mode children sign (the store signs only images the registry holds):
 * app/web, pushed to both registries. */
static char image_digest[72];

/* The store's work in registry mode, under its sandbox: PUT and GET through the registry at
 * t's address; on loopback TCP under Landlock ABI 4, any other port is refused. */
static void child_registry(const void *arg) {
        const TestRegistry *t = arg;
        SigRegistry reg;
        unsigned port = 0;
        int abi = 0, dir_fd, fd;

        CHECK(sigreg_init(&reg, t->address) == 0); /* before the lockdown, as sigstore.c */
        if (!t->sock[0])
                CHECK(sscanf(t->address, "127.0.0.1:%u", &port) == 1);
        CHECK(sigsandbox_drop(nobody_uid, nobody_gid) == 0);
        dir_fd = open(store, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        CHECK(dir_fd >= 0);
        CHECK(sigsandbox_confine(dir_fd, true, (uint16_t) port, &abi, NULL) == 0);

        put_put_get(&(SigBackend){.root_fd = -EBADF, .registry = &reg}, image_digest);
        if (port && abi >= 4) {
                struct sockaddr_in other = {.sin_family = AF_INET, .sin_port = htons((uint16_t) (port + 1)),
                                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};

                fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
                CHECK(fd >= 0);
                CHECK(connect(fd, (struct sockaddr *) &other, sizeof(other)) < 0 && errno == EACCES);
        }
        _exit(0);
}

static void test_registry(void **state) {
        REQUIRE_ROOT("the store's lockdown: setresuid, Landlock, seccomp");
        if (unix_registry.pid <= 0 || tcp_registry.pid <= 0) {
                fprintf(stderr, "test-sigsandbox: no %s: registry mode not checked\n", DOCKER_REGISTRY);
                skip();
        }
        assert_int_equal(test_registry_push_image(&unix_registry, "app/web", "signed", image_digest), 0);
        assert_int_equal(test_registry_push_image(&tcp_registry, "app/web", "signed", image_digest), 0);
        assert_exited_ok(run_child(child_registry, &unix_registry));
        assert_exited_ok(run_child(child_registry, &tcp_registry));
}

static void child_forbidden(const void *arg) {
        const char *what = arg;
        int abi;

        (void) confine_or_die(&abi);
        if (streq(what, "execve")) {
                char *const argv[] = {(char *) "/", NULL};
                (void) execve("/", argv, argv + 1);
        } else if (streq(what, "inet"))
                (void) socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        else if (streq(what, "rename"))
                (void) renameat(AT_FDCWD, "/nonexistent-a", AT_FDCWD, "/nonexistent-b");
        else if (streq(what, "chmod"))
                (void) syscall(SYS_fchmodat, AT_FDCWD, "/nonexistent", 0777);
        else if (streq(what, "fork"))
                (void) syscall(SYS_clone, SIGCHLD, NULL, NULL, NULL, NULL);
        else if (streq(what, "ptrace"))
                (void) syscall(SYS_ptrace, 0, 0, NULL, NULL);
        _exit(1);
}

static void test_forbidden(void **state) {
        static const char *const calls[] = {"execve", "inet", "rename", "chmod", "fork", "ptrace"};

        REQUIRE_ROOT("the store's lockdown: setresuid, Landlock, seccomp");
        for (size_t i = 0; i < ELEMENTSOF(calls); i++)
                assert_killed_by(run_child(child_forbidden, calls[i]), SIGSYS, calls[i]);
}

static void test_table(void **state) {
        assert_table_matches_doc(sigsandbox_rule_get, "policy/sigstore-syscalls.md", "sigsandbox.c", 30);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_table),
                cmocka_unit_test(test_works),
                cmocka_unit_test(test_forbidden),
                cmocka_unit_test(test_registry),
        };

        return cmocka_run_group_tests(tests, setup, teardown);
}

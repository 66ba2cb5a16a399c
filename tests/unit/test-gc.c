/* SPDX-License-Identifier: MIT */
/*
 * Tests for supervisor/gc/parse.c (garbage-collect's summary, the share
 * check, the registry's JSON with hostile names and digests) and
 * common/config/maintenance.c (the lock that makes the window count only
 * while gc lives, and the status file /metrics reads).
 */

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "macro.h"
#include "maintenance.h"
#include "parse.h"
#include "process.h"
#include "tmpdir.h"

DEFINE_TMPDIR_GROUP(dir, "test-gc");

#define D1 "sha256:1111111111111111111111111111111111111111111111111111111111111111"
#define D2 "sha256:2222222222222222222222222222222222222222222222222222222222222222"
#define D3 "sha256:3333333333333333333333333333333333333333333333333333333333333333"

static void test_summary(void **state) {
        GcSummary s;

        /* What Debian's registry 2.8 prints (dry run or not), after its
         * marking lines. */
        assert_int_equal(gc_parse_summary("app: marking manifest sha256:ab\n"
                                          "app: marking blob sha256:cd\n"
                                          "blob eligible for deletion: sha256:ef\n"
                                          "\n"
                                          "7 blobs marked, 3 blobs and 0 manifests eligible for deletion\n",
                                          &s),
                         0);
        assert_int_equal(s.marked, 7);
        assert_int_equal(s.blobs_eligible, 3);
        assert_int_equal(s.manifests_eligible, 0);
        assert_int_equal(gc_delete_share(&s), 30);
        assert_int_equal(gc_parse_summary("level=info msg=\"nothing\"\n", &s), -ENOMSG);
        assert_int_equal(gc_parse_summary("", &s), -ENOMSG);

        s = (GcSummary) {.marked = 0, .blobs_eligible = 0};
        assert_int_equal(gc_delete_share(&s), 0);
        s = (GcSummary) {.marked = 2, .blobs_eligible = 1};
        assert_int_equal(gc_delete_share(&s), 34); /* rounded up: never under-reported */
        s = (GcSummary) {.marked = 0, .blobs_eligible = 5};
        assert_int_equal(gc_delete_share(&s), 100);
}

/* registry garbage-collect prints a line per manifest and blob it marks,
 * then its summary: on a big registry megabytes before the line gc needs.
 * The capture gc_collect() uses (podman_run_tail: keep_tail) must still
 * hold it; the head capture the other tools use would not. */
#define MARKING_THEN_SUMMARY                                                                                     \
        "yes 'app: marking blob " D1 "' | head -c 3145728; echo;"                                             \
        " echo '7 blobs marked, 3 blobs and 0 manifests eligible for deletion'"

static void test_summary_after_megabytes(void **state) {
        char *argv[] = {"sh", "-c", MARKING_THEN_SUMMARY, NULL};
        ProcessOptions tail = {.keep_tail = true}, head = {};
        char *out = NULL;
        GcSummary s = {};

        assert_int_equal(process_run(argv, &tail, &out, NULL), 0);
        assert_true(strlen(out) <= PROCESS_CAPTURE_MAX);
        assert_true(strlen(out) > PROCESS_CAPTURE_MAX - 200); /* bounded, and nearly full */
        /* Starts at a whole line: the cut one was dropped. */
        assert_true(strncmp(out, "app: marking blob " D1 "\n", strlen("app: marking blob " D1 "\n")) == 0);
        assert_int_equal(gc_parse_summary(out, &s), 0);
        assert_int_equal(s.marked, 7);
        assert_int_equal(s.blobs_eligible, 3);
        free(out);
        out = NULL;

        /* What gc got before: the first MiB, no summary. */
        assert_int_equal(process_run(argv, &head, &out, NULL), 0);
        assert_int_equal(strlen(out), PROCESS_CAPTURE_MAX);
        assert_int_equal(gc_parse_summary(out, &s), -ENOMSG);
        free(out);
        out = NULL;

        /* Short output is kept whole in either mode. */
        char *small[] = {"sh", "-c", "echo first; echo '1 blobs marked, 0 blobs and 0 manifests eligible for deletion'",
                         NULL};
        assert_int_equal(process_run(small, &tail, &out, NULL), 0);
        assert_string_equal(out, "first\n1 blobs marked, 0 blobs and 0 manifests eligible for deletion\n");
        free(out);
}

/* What gc_purge_uploads() removes: whole session directories only. */
static void test_upload_session_dir(void **state) {
        static const char root[] = "/srv/registry/docker/registry/v2/repositories";
#define R "/srv/registry/docker/registry/v2/repositories"
#define U "0f9a1c2e-3b4d-4e5f-8a6b-7c8d9e0f1a2b"
        assert_true(gc_upload_session_dir(root, R "/app/_uploads/" U));
        assert_true(gc_upload_session_dir(root, R "/team/app-1/web.x/_uploads/" U));
        /* Cut short by the capture's cap: not a session (".../_uploads/"
         * would be all of them). */
        assert_false(gc_upload_session_dir(root, R "/app/_uploads/"));
        assert_false(gc_upload_session_dir(root, R "/app/_uploads/0f9a1c2e-3b4d"));
        assert_false(gc_upload_session_dir(root, R "/app/_upl"));
        assert_false(gc_upload_session_dir(root, R "/app"));
        assert_false(gc_upload_session_dir(root, R));
        assert_false(gc_upload_session_dir(root, "/srv/registry"));
        /* Below a session, beside it, or not below root at all. */
        assert_false(gc_upload_session_dir(root, R "/app/_uploads/" U "/data"));
        assert_false(gc_upload_session_dir(root, R "/app/_uploads/" U "x"));
        assert_false(gc_upload_session_dir(root, R "/app/_uploads/../../../" U));
        assert_false(gc_upload_session_dir(root, R "/../x/_uploads/" U));
        assert_false(gc_upload_session_dir(root, R "/_uploads/" U));
        assert_false(gc_upload_session_dir(root, R "x/app/_uploads/" U));
        assert_false(gc_upload_session_dir(root, "/elsewhere/app/_uploads/" U));
        assert_false(gc_upload_session_dir(root, R "/App/_uploads/" U));
        assert_false(gc_upload_session_dir(root, R "/app/_uploads/0F9A1C2E-3B4D-4E5F-8A6B-7C8D9E0F1A2B"));
#undef R
#undef U
}

static void test_strings(void **state) {
        _cleanup_strv_free_ char **l = NULL;
        char **bad = NULL;
        const char *ok = "{\"repositories\":[\"alpine\",\"team/app\"]}";
        const char *traversal = "{\"repositories\":[\"../../etc\"]}";
        const char *query = "{\"tags\":[\"v1?x=1\"]}";
        const char *nul = "{\"tags\":[\"v1\\u0000x\"]}";

        assert_int_equal(gc_parse_strings(ok, strlen(ok), "repositories", gc_valid_repository, &l), 2);
        assert_string_equal(l[0], "alpine");
        assert_string_equal(l[1], "team/app");
        assert_null(l[2]);
        assert_int_equal(gc_parse_strings(traversal, strlen(traversal), "repositories", gc_valid_repository, &bad),
                         -EINVAL);
        assert_int_equal(gc_parse_strings(query, strlen(query), "tags", gc_valid_tag, &bad), -EINVAL);
        assert_int_equal(gc_parse_strings(nul, strlen(nul), "tags", gc_valid_tag, &bad), -EINVAL);
        assert_int_equal(gc_parse_strings("[1]", 3, "tags", gc_valid_tag, &bad), -EBADMSG);
        assert_int_equal(gc_parse_strings("{\"tags\":7}", 10, "tags", gc_valid_tag, &bad), -EBADMSG);
        assert_null(bad);
        {
                _cleanup_strv_free_ char **none = NULL;
                assert_int_equal(gc_parse_strings("{\"tags\":null}", 13, "tags", gc_valid_tag, &none), 0);
                assert_null(none[0]);
        }
        assert_true(gc_valid_tag("latest", 6));
        assert_false(gc_valid_tag(".hidden", 7));
        assert_false(gc_valid_tag("a/b", 3));
}

static void test_manifest(void **state) {
        _cleanup_strv_free_ char **blobs = NULL, **children = NULL;
        char **b2 = NULL, **c2 = NULL;
        const char *image = "{\"schemaVersion\":2,\"config\":{\"digest\":\"" D1 "\"},"
                            "\"layers\":[{\"digest\":\"" D2 "\"},{\"digest\":\"" D3 "\"}]}";
        const char *index = "{\"schemaVersion\":2,\"manifests\":[{\"digest\":\"" D1 "\"}]}";
        const char *evil = "{\"config\":{\"digest\":\"sha256:../../x\"},\"layers\":[]}";
        const char *schema1 = "{\"schemaVersion\":1,\"fsLayers\":[]}";

        assert_int_equal(gc_parse_manifest(image, strlen(image), &blobs, &children), 0);
        assert_string_equal(blobs[0], D1);
        assert_string_equal(blobs[1], D2);
        assert_string_equal(blobs[2], D3);
        assert_null(blobs[3]);
        assert_null(children[0]);
        strv_free(blobs);
        strv_free(children);
        blobs = children = NULL;
        assert_int_equal(gc_parse_manifest(index, strlen(index), &blobs, &children), 0);
        assert_null(blobs[0]);
        assert_string_equal(children[0], D1);
        assert_int_equal(gc_parse_manifest(evil, strlen(evil), &b2, &c2), -EINVAL);
        assert_int_equal(gc_parse_manifest(schema1, strlen(schema1), &b2, &c2), -EBADMSG);
        assert_int_equal(gc_parse_manifest("not json", 8, &b2, &c2), -EBADMSG);
        assert_null(b2);
        assert_null(c2);
}

/* The state counts only while its holder lives: a child takes it, the
 * parent sees it, the child dies, the parent sees none (the file stays). */
static void test_maintenance_lock(void **state) {
        char path[256], ready;
        int pipefd[2], status;
        pid_t pid;

        snprintf(path, sizeof path, "%s/maintenance", dir);
        assert_int_equal(maintenance_read(path), MAINTENANCE_NONE);
        assert_int_equal(pipe(pipefd), 0);
        pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
                int fd = maintenance_take(path);
                if (fd < 0 || maintenance_set(fd, MAINTENANCE_READONLY) < 0)
                        _exit(1);
                (void) !write(pipefd[1], "x", 1);
                pause(); /* killed: a gc that crashed, never released */
                _exit(0);
        }
        close(pipefd[1]);
        assert_int_equal(read(pipefd[0], &ready, 1), 1);
        close(pipefd[0]);
        assert_int_equal(maintenance_read(path), MAINTENANCE_READONLY);
        assert_int_equal(maintenance_take(path), -EBUSY);
        assert_int_equal(kill(pid, SIGKILL), 0);
        assert_int_equal(waitpid(pid, &status, 0), pid);
        assert_int_equal(access(path, F_OK), 0);
        assert_int_equal(maintenance_read(path), MAINTENANCE_NONE);

        /* Taken again after a crash; released: gone. */
        int fd = maintenance_take(path);
        assert_true(fd >= 0);
        /* OFD locks belong to the open file description, not the process:
         * another descriptor sees it even here. */
        assert_int_equal(maintenance_read(path), MAINTENANCE_PUSH_CLOSED);
        assert_int_equal(maintenance_set(fd, _MAINTENANCE_MAX), -EINVAL);
        maintenance_release(path, fd);
        assert_int_equal(access(path, F_OK), -1);
}

static void test_maintenance_symlink(void **state) {
        char path[256], target[256];

        snprintf(path, sizeof path, "%s/link", dir);
        snprintf(target, sizeof target, "%s/target", dir);
        assert_int_equal(symlink(target, path), 0);
        assert_int_equal(maintenance_take(path), -ELOOP);
        assert_int_equal(access(target, F_OK), -1);
        assert_int_equal(maintenance_read(path), MAINTENANCE_NONE);
}

static void test_status_file(void **state) {
        GcStatus st = {.finished = 1700000000, .success = 1, .bytes_freed = 123456789, .blobs_deleted = 3,
                       .uploads_purged = 1, .seconds = 42},
                 back;
        char path[256];

        snprintf(path, sizeof path, "%s/gc-status", dir);
        assert_int_equal(gc_status_read(path, &back), -ENOENT);
        assert_int_equal(gc_status_write(path, &st), 0);
        assert_int_equal(gc_status_read(path, &back), 0);
        assert_memory_equal(&st, &back, sizeof st);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_summary),
                cmocka_unit_test(test_summary_after_megabytes),
                cmocka_unit_test(test_upload_session_dir),
                cmocka_unit_test(test_strings),
                cmocka_unit_test(test_manifest),
                cmocka_unit_test(test_maintenance_lock),
                cmocka_unit_test(test_maintenance_symlink),
                cmocka_unit_test(test_status_file),
        };
        return cmocka_run_group_tests(tests, tmpdir_group_setup, tmpdir_group_teardown);
}

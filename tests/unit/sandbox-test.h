/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * What the sandbox tests share (tests/unit/test-sandbox.c for the proxy
 * workers, test-sigsandbox.c for the signature store): children that lock
 * themselves down and are judged by their wait status, and the check that a
 * seccomp table and its page in policy/ agree. Include after cmocka.h.
 */

#include <errno.h>
#include <pwd.h>
#include <seccomp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "macro.h"

/* In a child: report a failed check and leave with the line number as exit code. */
#define CHECK(cond)                                                                                \
        do {                                                                                       \
                if (!(cond)) {                                                                     \
                        int saved_ = errno;                                                        \
                        fprintf(stderr, "%s:%d: check failed: %s (errno %d)\n", __FILE__,  \
                                __LINE__, #cond, saved_);                                          \
                        _exit(__LINE__ % 250 + 2);                                                 \
                }                                                                                  \
        } while (0)

/* Root: see needs-root.h (REQUIRE_ROOT(why) fails, never skips). */
#include "needs-root.h"

/* Runs fn in a child and returns its wait status. */
static inline int run_child(void (*fn)(const void *arg), const void *arg) {
        int status;
        pid_t pid;

        (void) fflush(NULL);
        pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
                /* cmocka catches SIGSEGV, SIGABRT ... to report a failed test; a child
                 * that kept those handlers would report, then run the rest of the suite
                 * itself, and the parent would judge whatever killed it later. */
                static const int fatal[] = {SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGABRT, SIGSYS};
                for (size_t i = 0; i < sizeof fatal / sizeof fatal[0]; i++)
                        (void) signal(fatal[i], SIG_DFL);
                fn(arg);
                _exit(0);
        }
        assert_int_equal(waitpid(pid, &status, 0), pid);
        return status;
}

static inline void assert_exited_ok(int status) {
        if (WIFSIGNALED(status))
                fail_msg("child killed by signal %d (%s)", WTERMSIG(status), strsignal(WTERMSIG(status)));
        assert_true(WIFEXITED(status));
        if (WEXITSTATUS(status) != 0)
                fail_msg("child exited with %d (see its message above)", WEXITSTATUS(status));
}

static inline void assert_killed_by(int status, int sig, const char *what) {
        if (WIFEXITED(status))
                fail_msg("%s: child exited with %d, expected signal %d", what, WEXITSTATUS(status), sig);
        assert_true(WIFSIGNALED(status));
        if (WTERMSIG(status) != sig)
                fail_msg("%s: child killed by signal %d, expected %d", what, WTERMSIG(status), sig);
}

static inline int sandbox_test_cmp_str(const void *a, const void *b) {
        return strcmp(*(char *const *) a, *(char *const *) b);
}

/* The why cell of a .md row, trimmed, without its backticks. */
static inline void sandbox_test_doc_why(const char *cell, char *out, size_t size) {
        size_t n = 0;

        while (*cell == ' ')
                cell++;
        for (; *cell && *cell != '|' && n + 1 < size; cell++)
                if (*cell != '`')
                        out[n++] = *cell;
        while (n > 0 && out[n - 1] == ' ')
                n--;
        out[n] = 0;
}

/* Fails unless the rows of a seccomp table (get: its *_rule_get()) and the rows of its
 * documentation's table (doc, relative to the source tree: lines "| `name` | arguments | action |
 * why |") name the same calls with the same actions and the same reasons. source names the C
 * file in messages. */
static inline void assert_table_matches_doc(int (*get)(size_t, const char **, const char **, const char **),
                                            const char *doc, const char *source, size_t min_rows) {
        char *from_table[256], *from_doc[256], line[1024], path[4096];
        const char *name, *action, *why, *dir;
        size_t n_table = 0, n_doc = 0;
        _cleanup_fclose_ FILE *f = NULL;

        for (size_t i = 0; get(i, &name, &action, &why) == 0; i++) {
                if (seccomp_syscall_resolve_name(name) == __NR_SCMP_ERROR)
                        fail_msg("table row %zu: unknown syscall \"%s\"", i, name);
                assert_true(why && *why);
                assert_true(n_table < ELEMENTSOF(from_table));
                assert_true(asprintf(&from_table[n_table++], "%s %s: %s", name, action, why) > 0);
        }
        assert_int_equal(get(n_table, &name, &action, &why), -ENOENT);
        assert_true(n_table > min_rows);

        /* Rows of the table in the .md: | `name` | arguments | action | why | */
        dir = getenv("REGVISOR_SRCDIR");
        (void) snprintf(path, sizeof(path), "%s/%s", dir ? dir : ".", doc);
        f = fopen(path, "re");
        if (!f)
                fail_msg("cannot open %s (run from the source tree or set REGVISOR_SRCDIR)", path);
        while (fgets(line, sizeof(line), f)) {
                char doc_name[64], doc_action[64], doc_reason[512], *cells[5], *p = line;
                size_t n = 0;

                if (!strneq(line, "| `", 3))
                        continue;
                while (n < ELEMENTSOF(cells) && (p = strchr(p, '|'))) {
                        cells[n++] = ++p;
                }
                assert_true(n >= 5);
                assert_int_equal(sscanf(cells[0], " `%63[a-z0-9_]`", doc_name), 1);
                assert_int_equal(sscanf(cells[2], " %63[a-zA-Z0-9_()]", doc_action), 1);
                sandbox_test_doc_why(cells[3], doc_reason, sizeof(doc_reason));
                assert_true(n_doc < ELEMENTSOF(from_doc));
                assert_true(asprintf(&from_doc[n_doc++], "%s %s: %s", doc_name, doc_action, doc_reason) > 0);
        }

        qsort(from_table, n_table, sizeof(char *), sandbox_test_cmp_str);
        qsort(from_doc, n_doc, sizeof(char *), sandbox_test_cmp_str);
        for (size_t i = 0, j = 0; i < n_table || j < n_doc;) {
                int c = i >= n_table ? 1 : j >= n_doc ? -1 : strcmp(from_table[i], from_doc[j]);
                if (c < 0)
                        fail_msg("in %s, not in %s: %s", source, path, from_table[i]);
                if (c > 0)
                        fail_msg("in %s, not in %s: %s", path, source, from_doc[j]);
                i++, j++;
        }
        for (size_t i = 0; i < n_table; i++)
                free(from_table[i]);
        for (size_t i = 0; i < n_doc; i++)
                free(from_doc[i]);
}

/* nobody's uid and gid, for children that lock down (tests run as root). */
static inline void sandbox_test_nobody(uid_t *ret_uid, gid_t *ret_gid) {
        struct passwd *pw = getpwnam("nobody");

        assert_non_null(pw);
        *ret_uid = pw->pw_uid;
        *ret_gid = pw->pw_gid;
}

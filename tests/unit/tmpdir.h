/* SPDX-License-Identifier: MIT */
#pragma once

/* A test's scratch files and directories, made where tmp_template()
 * (common/fileio.h) says: below $TMPDIR when it names a directory, else
 * /tmp. Buffers for these templates are TMPDIR_PATH_MAX bytes: short, so
 * that the tests' paths below them fit their buffers (and a unix socket's
 * 108 bytes); a longer $TMPDIR is refused by name, not cut. */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fileio.h"

#define TMPDIR_PATH_MAX 96

/* Fills buf[size] with the template "$TMPDIR/NAME.XXXXXX", for mkdtemp()
 * or mkstemp(). 0, or -1 when it does not fit (or on OOM). */
static inline int tmpdir_template(char *buf, size_t size, const char *name) {
        char *t = tmp_template(name);
        int r = -1;

        if (t && strlen(t) < size) {
                strcpy(buf, t);
                r = 0;
        } else if (t)
                fprintf(stderr, "tmpdir: %s is longer than the test's %zu bytes: use a shorter $TMPDIR\n", t,
                        size - 1);
        free(t);
        return r;
}

/* A test file's scratch directory (cmocka's group setup): dir[size] is
 * filled with tmpdir_template(name) and made. 0 or -1. */
static inline int tmpdir_make(char *dir, size_t size, const char *name) {
        if (tmpdir_template(dir, size, name) < 0)
                return -1;
        return mkdtemp(dir) ? 0 : -1;
}

/* Removes dir with everything below it (the group teardown). */
static inline int tmpdir_remove(const char *dir) {
        char cmd[TMPDIR_PATH_MAX + 32];
        snprintf(cmd, sizeof cmd, "rm -rf -- '%s'", dir);
        return system(cmd) == 0 ? 0 : -1;
}

/* A test file whose tests share one scratch directory: defines
 * `static char var[TMPDIR_PATH_MAX]` and the cmocka group setup and
 * teardown tmpdir_group_setup() (makes it, from name) and
 * tmpdir_group_teardown() (removes it with everything below it). */
#define DEFINE_TMPDIR_GROUP(var, name)                                      \
        static char var[TMPDIR_PATH_MAX];                                   \
        static int tmpdir_group_setup(void **state) {                      \
                (void) state;                                               \
                return tmpdir_make(var, sizeof var, name);                  \
        }                                                                   \
        static int tmpdir_group_teardown(void **state) {                   \
                (void) state;                                               \
                return tmpdir_remove(var);                                  \
        }

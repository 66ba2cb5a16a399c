/* SPDX-License-Identifier: MIT */
#pragma once

/* A test file's scratch directory: made in the group setup, removed with
 * everything below it in the group teardown. */

#include <stdio.h>
#include <stdlib.h>

/* dir: a "/tmp/...-XXXXXX" template, filled in. 0 or -1 (cmocka's setup). */
static inline int tmpdir_make(char *dir) {
        return mkdtemp(dir) ? 0 : -1;
}

static inline int tmpdir_remove(const char *dir) {
        char cmd[512];
        snprintf(cmd, sizeof cmd, "rm -rf -- '%s'", dir);
        return system(cmd) == 0 ? 0 : -1;
}

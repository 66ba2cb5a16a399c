/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * For a unit test case that needs root: without it the case FAILS and says
 * why. A cmocka skip() would count as passed in `make unit` (the binary
 * exits 0), so a run without root would look green while testing nothing.
 * Run such a file as root: `sudo make unit T=sandbox`.
 */

#include <unistd.h>

#define REQUIRE_ROOT(why)                                                                           \
        do {                                                                                        \
                if (geteuid() != 0)                                                                 \
                        fail_msg("needs root (%s): not run; run `make unit` as root", (why));       \
        } while (0)

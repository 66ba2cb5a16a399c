/* SPDX-License-Identifier: MIT */
#pragma once

/* A property the fuzzer checks: a failed one stops the run with a crash
 * libFuzzer saves as a reproducer (assert() may be compiled out). */
#define CHECK(x)                                                                                            \
        do {                                                                                                \
                if (!(x))                                                                                   \
                        __builtin_trap();                                                                   \
        } while (0)

/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * The one way provisioning code says what happened or what is wrong: an
 * allocated message in an optional *ret_detail, next to a return value.
 */

#include "macro.h"

/* When ret_detail is not NULL, sets it to the formatted message (NULL if
 * out of memory). Returns r, so "return detail_set(ret, -EINVAL, ...)"
 * both explains and fails. */
int detail_set(char **ret_detail, int r, const char *fmt, ...) _printf_(3, 4);

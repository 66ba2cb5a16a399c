/* SPDX-License-Identifier: MIT */
#include <stdarg.h>
#include <stdio.h>

#include "detail.h"

int detail_set(char **ret_detail, int r, const char *fmt, ...) {
        va_list ap;

        if (!ret_detail)
                return r;
        va_start(ap, fmt);
        if (vasprintf(ret_detail, fmt, ap) < 0)
                *ret_detail = NULL;
        va_end(ap);
        return r;
}

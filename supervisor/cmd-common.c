/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "macro.h"
#include "verbs.h"

int verb_load_config(const char *path, Config *ret) {
        _cleanup_free_ char *error = NULL;
        int r;

        r = config_init_defaults(ret);
        if (r < 0)
                return log_error_errno(r, "out of memory");
        r = config_load(ret, path, &error);
        if (r < 0)
                r = log_error_errno(r, "%s", error ? error : strerror(-r));
        if (r >= 0) {
                r = config_validate(ret, path, &error);
                if (r < 0)
                        log_error_errno(r, "%s", error ? error : strerror(-r));
        }
        if (r < 0)
                config_done(ret);
        return r;
}

/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <getopt.h>
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

bool argv_wants_help(int argc, char **argv) {
        for (int i = 0; i < argc; i++) {
                if (streq(argv[i], "--"))
                        return false;
                if (streq(argv[i], "--help"))
                        return true;
        }
        return false;
}

int verb_no_arguments(const char *verb, int argc, char **argv) {
        if (optind >= argc)
                return 0;
        log_error("%s: unexpected argument '%s' (it takes none); see 'regvisor %s --help'", verb, argv[optind], verb);
        return -EINVAL;
}
